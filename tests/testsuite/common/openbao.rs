//! The one OpenBao harness of the integration tests: finding the real `bao`, a
//! `vault` that runs it, a dev server on a free loopback port with a known root
//! token (stopped on drop), `vault` commands against it, and reading a secret back.

use super::{root, text};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The dev server's root token, which every test logs in with.
pub const ROOT_TOKEN: &str = "openbao-test-root";

/// A tool the tests need, found in the workspace's `target/venv/bin` (what `.ci/run`
/// installs) or else on PATH, or a failure saying how to get it.
pub fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::iter::once(root().join("target/venv/bin"))
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("`{name}` is missing: run `bash .ci/run`, which installs it"))
}

/// Writes `bin_dir/vault`: a script that runs `bao` by the path it was found at.
/// Not a symlink: a version manager's shim (mise, asdf, a Python entry point)
/// found as `bao` may dispatch on its own name, and would then look for a tool
/// called `vault`; not the shim's resolved target either, which is the manager
/// itself. Run by its path, the shim sees the name `bao` and finds the real one.
pub fn write_vault_wrapper(bao: &Path, bin_dir: &Path) {
    let quoted = format!("'{}'", bao.display().to_string().replace('\'', r"'\''"));
    let vault = bin_dir.join("vault");
    fs::write(&vault, format!("#!/bin/sh\nexec {quoted} \"$@\"\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&vault, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A running `bao server -dev`; killed when dropped.
pub struct OpenBao {
    child: Child,
    /// The server's address, `http://127.0.0.1:PORT`.
    pub addr: String,
    /// The folder whose `vault` runs `bao`.
    pub bin: PathBuf,
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on the loopback interface.
fn free_loopback_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl OpenBao {
    /// A dev server on a free port, logging to `work/bao.log`, with `bin/vault`
    /// written (`bin` is created if need be); returns once `vault status` answers.
    pub fn start(work: &Path, bin: &Path) -> OpenBao {
        let bao = tool("bao");
        let port = free_loopback_port();
        let log = fs::File::create(work.join("bao.log")).unwrap();
        let child = Command::new(&bao)
            .args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={ROOT_TOKEN}"),
                &format!("-dev-listen-address=127.0.0.1:{port}"),
            ])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("bao server starts");
        fs::create_dir_all(bin).unwrap();
        write_vault_wrapper(&bao, bin);
        let server = OpenBao {
            child,
            addr: format!("http://127.0.0.1:{port}"),
            bin: bin.to_path_buf(),
        };
        for _ in 0..300 {
            if server.vault(&["status"], None).status.success() {
                return server;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "the OpenBao dev server did not come up:\n{}",
            fs::read_to_string(work.join("bao.log")).unwrap_or_default()
        );
    }

    /// PATH with `bin` first.
    pub fn path_env(&self) -> String {
        let path = std::env::var("PATH").unwrap_or_default();
        format!("{}:{path}", self.bin.display())
    }

    /// A command for `program` with `bin` first on PATH and the server's address
    /// and token in VAULT_ADDR and VAULT_TOKEN (and no BAO_ADDR or BAO_TOKEN).
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("PATH", self.path_env())
            .env("VAULT_ADDR", &self.addr)
            .env("VAULT_TOKEN", ROOT_TOKEN)
            .env_remove("BAO_ADDR")
            .env_remove("BAO_TOKEN");
        cmd
    }

    /// Runs `vault ARGS` against the server, with `stdin` (if any) as its input.
    pub fn vault(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = self.command(&self.bin.join("vault"));
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        {
            use std::io::Write;
            let mut input = child.stdin.take().unwrap();
            if let Some(text) = stdin {
                input.write_all(text.as_bytes()).unwrap();
            }
        }
        child.wait_with_output().unwrap()
    }

    /// `vault kv get -format=json PATH`, read as YAML (which reads JSON); the
    /// failed command's output if there is no secret there.
    fn kv_get(&self, path: &str) -> Result<serde_yaml::Value, Output> {
        let out = self.vault(&["kv", "get", "-format=json", path], None);
        if !out.status.success() {
            return Err(out);
        }
        Ok(serde_yaml::from_slice(&out.stdout).unwrap())
    }

    /// The secret's keys and values (`data.data`), or `None` if there is none.
    pub fn secret_if_any(&self, path: &str) -> Option<BTreeMap<String, String>> {
        self.kv_get(path).ok().map(|value| data_of(&value))
    }

    /// The secret's keys and values (`data.data`); fails if there is none.
    pub fn secret(&self, path: &str) -> BTreeMap<String, String> {
        match self.kv_get(path) {
            Ok(value) => data_of(&value),
            Err(out) => panic!("{}", text(&out.stderr)),
        }
    }

    /// The secret's current version (`data.metadata.version`).
    pub fn version(&self, path: &str) -> u64 {
        let value = self
            .kv_get(path)
            .unwrap_or_else(|out| panic!("{}", text(&out.stderr)));
        value["data"]["metadata"]["version"].as_u64().unwrap()
    }
}

/// `data.data` of a `kv get` answer, as strings.
fn data_of(answer: &serde_yaml::Value) -> BTreeMap<String, String> {
    answer["data"]["data"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_string(),
                v.as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_vault_wrapper_quotes_a_path_with_a_quote() {
    let bin = super::scratch("openbao-wrapper-quote");
    write_vault_wrapper(Path::new("/opt/it's/bao"), &bin);
    let script = fs::read_to_string(bin.join("vault")).unwrap();
    assert_eq!(script, "#!/bin/sh\nexec '/opt/it'\\''s/bao' \"$@\"\n");
}

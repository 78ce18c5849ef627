//! `passwords.env`: one `ROLE=PASSWORD` line per role, mode 0600, in the cluster's
//! folder. Passwords are 32 bytes from the operating system's random source, in hex,
//! made once per role and reused; a line edited by hand is applied at the next `up`.

use anyhow::{anyhow, Result};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::cluster::Wanted;
use super::folder;
use crate::error::bad_input;

/// Bytes of randomness in a generated password.
const PASSWORD_BYTES: usize = 32;

/// 32 bytes from the operating system's random source, as hex.
pub fn new_password() -> Result<String> {
    use rand::TryRngCore;
    let mut bytes = [0u8; PASSWORD_BYTES];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| anyhow!("cannot read the operating system's random source: {e}"))?;
    Ok(hex::encode(bytes))
}

/// Parses `passwords.env`: `ROLE=PASSWORD` lines, blank lines and `#` comments.
/// An error reads `LINE: message`.
pub fn parse(text: &str) -> std::result::Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let (role, password) = line
            .split_once('=')
            .ok_or_else(|| format!("{number}: expected ROLE=PASSWORD, found a line without `=`"))?;
        let role = role.trim();
        let role_ok = role.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && role
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !role_ok {
            return Err(format!("{number}: `{role}` is not a role name"));
        }
        if password.is_empty() || !password.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "{number}: the password of `{role}` must be printable ASCII without spaces; \
                 delete the line to have a new one generated"
            ));
        }
        if out.insert(role.to_string(), password.to_string()).is_some() {
            return Err(format!("{number}: `{role}` appears twice"));
        }
    }
    Ok(out)
}

pub fn format(passwords: &BTreeMap<String, String>) -> String {
    let mut text = String::from(
        "# The passwords of the local-db roles (cargo xtask local-db), one ROLE=PASSWORD per line.\n\
         # Generated once and applied again by every `up`; delete a line to have a new one made.\n",
    );
    for (role, password) in passwords {
        text.push_str(&format!("{role}={password}\n"));
    }
    text
}

/// The passwords of every wanted role: the file's, plus a new one for each role it
/// lacks (then the file is written again, through a temporary file only this run
/// uses). The file is kept mode 0600.
pub fn load_or_make(file: &Path, wanted: &[Wanted]) -> Result<BTreeMap<String, String>> {
    let mut passwords = if folder::exists(file) {
        let text = folder::read_no_follow(file).map_err(|e| bad_input(format!("{e:#}")))?;
        parse(&text).map_err(|e| bad_input(format!("{}:{e}", file.display())))?
    } else {
        BTreeMap::new()
    };
    let mut added = false;
    for w in wanted {
        if !passwords.contains_key(&w.user) {
            passwords.insert(w.user.clone(), new_password()?);
            added = true;
        }
    }
    if added || !folder::exists(file) {
        folder::write_private(file, &format(&passwords))?;
    }
    let meta = fs::symlink_metadata(file)?;
    let mode = meta.mode() & 0o777;
    if mode != 0o600 {
        eprintln!(
            "{}: mode was {mode:o}; made it 0600 (the owner alone may read it)",
            file.display()
        );
        fs::set_permissions(file, fs::Permissions::from_mode(0o600))?;
    }
    Ok(passwords)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let passwords: BTreeMap<String, String> = [("jovyan", "ab12"), ("gafaelfawr", "cd34")]
            .iter()
            .map(|(r, p)| (r.to_string(), p.to_string()))
            .collect();
        let text = format(&passwords);
        assert!(text.starts_with('#'));
        assert!(text.ends_with("gafaelfawr=cd34\njovyan=ab12\n"), "{text}");
        assert_eq!(parse(&text).unwrap(), passwords);
        assert_eq!(parse("\n# x\na_1=p=q\r\n").unwrap()["a_1"], "p=q");
    }

    #[test]
    fn errors_name_the_line_and_never_show_a_password() {
        for (text, expected) in [
            ("a=1\nsecretwithoutequals\n", "2: expected ROLE=PASSWORD"),
            ("Bad=1\n", "1: `Bad` is not a role name"),
            ("a=\n", "1: the password of `a`"),
            ("a=has space\n", "1: the password of `a`"),
            ("a=1\na=2\n", "2: `a` appears twice"),
        ] {
            let message = parse(text).unwrap_err();
            assert!(message.starts_with(expected), "{text:?}: {message}");
            assert!(!message.contains("secretwithout"), "{message}");
        }
    }

    #[test]
    fn new_passwords_are_64_hex_digits_and_differ() {
        let a = new_password().unwrap();
        let b = new_password().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}

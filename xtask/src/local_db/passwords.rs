//! `passwords.env`: one `KEY=PASSWORD` line per secret key, as the cluster's
//! `postgres` secret holds them, mode 0600, in the cluster's folder. Passwords are 32
//! bytes from the operating system's random source, in hex, made once per key and
//! reused; a line edited by hand is applied at the next `up`. Two entries sharing a
//! role with two keys get two passwords, and the role ends with one of them, as on
//! the cluster. A file of an older local-db (one `ROLE=PASSWORD` line per role) is
//! taken over: each key whose line is missing gets its role's password.

use anyhow::{anyhow, Result};
use std::collections::{BTreeMap, BTreeSet};
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

/// Parses `passwords.env`: `KEY=PASSWORD` lines, blank lines and `#` comments.
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
            .ok_or_else(|| format!("{number}: expected KEY=PASSWORD, found a line without `=`"))?;
        let role = role.trim();
        let role_ok = role.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && role
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b));
        if !role_ok {
            return Err(format!("{number}: `{role}` is not a secret key"));
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
        "# The passwords of the local-db roles (pgdb local-db), one KEY=PASSWORD line per secret key\n\
         # of the cluster's `postgres` secret. Generated once and applied again by every `up`;\n\
         # delete a line to have a new one made.\n",
    );
    for (role, password) in passwords {
        text.push_str(&format!("{role}={password}\n"));
    }
    text
}

/// The passwords of every wanted secret key: the file's, a role's line of an older
/// file taken over, plus a new one for each key still lacking (then the file is
/// written again, through a temporary file only this run uses). The file is kept
/// mode 0600.
pub fn load_or_make(file: &Path, wanted: &[Wanted]) -> Result<BTreeMap<String, String>> {
    let mut passwords = if folder::exists(file) {
        let text = folder::read_no_follow(file).map_err(|e| bad_input(format!("{e:#}")))?;
        parse(&text).map_err(|e| bad_input(format!("{}:{e}", file.display())))?
    } else {
        BTreeMap::new()
    };
    let (taken_over, added) = complete(&mut passwords, wanted)?;
    if !taken_over.is_empty() {
        eprintln!(
            "{}: the line of role {} now stands under its secret key (one line per key)",
            file.display(),
            taken_over.join(", ")
        );
    }
    if added || !taken_over.is_empty() || !folder::exists(file) {
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

/// Gives every wanted secret key a password: the line of its role from an older
/// file when the key has none (that role line is then dropped), else a new one.
/// Returns the roles taken over and whether a password was made.
fn complete(
    passwords: &mut BTreeMap<String, String>,
    wanted: &[Wanted],
) -> Result<(Vec<String>, bool)> {
    let keys: BTreeSet<&str> = wanted.iter().map(|w| w.secret_key.as_str()).collect();
    let mut taken_over = BTreeSet::new();
    let mut added = false;
    for w in wanted {
        if passwords.contains_key(&w.secret_key) {
            continue;
        }
        let old = (!keys.contains(w.user.as_str()))
            .then(|| passwords.get(&w.user).cloned())
            .flatten();
        let password = match old {
            Some(old) => {
                taken_over.insert(w.user.clone());
                old
            }
            None => {
                added = true;
                new_password()?
            }
        };
        passwords.insert(w.secret_key.clone(), password);
    }
    for role in &taken_over {
        passwords.remove(role);
    }
    Ok((taken_over.into_iter().collect(), added))
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
            ("a=1\nsecretwithoutequals\n", "2: expected KEY=PASSWORD"),
            ("Bad=1\n", "1: `Bad` is not a secret key"),
            ("a=\n", "1: the password of `a`"),
            ("a=has space\n", "1: the password of `a`"),
            ("a=1\na=2\n", "2: `a` appears twice"),
        ] {
            let message = parse(text).unwrap_err();
            assert!(message.starts_with(expected), "{text:?}: {message}");
            assert!(!message.contains("secretwithout"), "{message}");
        }
    }

    fn want(key: &str, user: &str, secret_key: &str) -> Wanted {
        Wanted {
            key: key.into(),
            user: user.into(),
            db: user.into(),
            id: user.to_uppercase(),
            secret_key: secret_key.into(),
        }
    }

    #[test]
    fn an_older_file_of_role_lines_is_taken_over_by_key() {
        let mut passwords = parse("explorer=old1\nvo-cutouts_password=kept\n").unwrap();
        let wanted = [
            want("notebook_db", "explorer", "notebook_password"),
            want("lab_db", "explorer", "lab_password"),
            want("vo_cutouts_db", "vo", "vo-cutouts_password"),
            want("new_db", "fresh", "new_password"),
        ];
        let (taken, added) = complete(&mut passwords, &wanted).unwrap();
        assert_eq!(taken, ["explorer"]);
        assert!(added);
        assert_eq!(passwords["notebook_password"], "old1");
        assert_eq!(passwords["lab_password"], "old1");
        assert_eq!(passwords["vo-cutouts_password"], "kept");
        assert_eq!(passwords["new_password"].len(), 64);
        assert!(!passwords.contains_key("explorer"));
        // Complete already: nothing changes.
        let before = passwords.clone();
        assert_eq!(complete(&mut passwords, &wanted).unwrap(), (vec![], false));
        assert_eq!(passwords, before);
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

//! The journal's recovery on hand-made states: roll forward, drop, stop.

use super::*;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-journal-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Two files `a` and `b` planned `x-old -> x-new`, with their temporary files
/// written, and the journal naming them.
fn planned(dir: &Path) -> (Vec<Entry>, PathBuf) {
    let mut entries = Vec::new();
    for name in ["a", "b"] {
        let target = dir.join(name);
        let temp = dir.join(format!(".{name}.xtask-000000000000000{}.tmp", name.len()));
        fs::write(&target, format!("{name}-old")).unwrap();
        fs::write(&temp, format!("{name}-new")).unwrap();
        entries.push(Entry {
            target,
            temp,
            old: Some(Fingerprint::of(format!("{name}-old").as_bytes())),
            new: Fingerprint::of(format!("{name}-new").as_bytes()),
        });
    }
    let journal = dir.join("journal");
    write(&journal, &entries).unwrap();
    (entries, journal)
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

#[test]
fn a_started_change_is_finished() {
    let dir = scratch("forward");
    let (e, journal) = planned(&dir);
    fs::rename(&e[0].temp, &e[0].target).unwrap();
    recover(&journal).unwrap();
    assert_eq!(read(&e[0].target), "a-new");
    assert_eq!(read(&e[1].target), "b-new");
    assert!(!e[1].temp.exists() && !journal.exists());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_change_cut_while_staging_is_dropped_and_keeps_later_edits() {
    let dir = scratch("back");
    let (e, journal) = planned(&dir);
    fs::write(&e[1].temp, "b-ne").unwrap();
    fs::write(&e[0].target, "a-old\n# edited since\n").unwrap();
    recover(&journal).unwrap();
    assert_eq!(read(&e[0].target), "a-old\n# edited since\n");
    assert_eq!(read(&e[1].target), "b-old");
    assert!(!e[0].temp.exists() && !e[1].temp.exists() && !journal.exists());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_edit_after_the_first_rename_stops_recovery_touching_nothing() {
    let dir = scratch("edited");
    let (e, journal) = planned(&dir);
    fs::rename(&e[0].temp, &e[0].target).unwrap();
    fs::write(&e[1].target, "b-old # keep me").unwrap();
    let error = recover(&journal).unwrap_err();
    assert_eq!(crate::error::exit_status(&error), 1);
    let message = error.to_string();
    assert!(
        message.contains(&format!("{} was changed since", e[1].target.display()))
            && message.contains("rm -f --")
            && message.contains(&format!("mv -f -- {}", e[1].temp.display())),
        "{message}"
    );
    assert_eq!(read(&e[1].target), "b-old # keep me");
    assert!(e[1].temp.exists() && journal.exists());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_file_restored_after_the_renames_began_stops_recovery() {
    let dir = scratch("restored");
    let (e, journal) = planned(&dir);
    fs::rename(&e[0].temp, &e[0].target).unwrap();
    // `git checkout b` after b's rename: b holds its old bytes, its temp is gone.
    fs::rename(&e[1].temp, &e[1].target).unwrap();
    fs::write(&e[1].target, "b-old").unwrap();
    let message = recover(&journal).unwrap_err().to_string();
    assert!(message.contains("is gone or damaged"), "{message}");
    assert_eq!(read(&e[0].target), "a-new");
    assert_eq!(read(&e[1].target), "b-old");
    assert!(journal.exists());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn journals_that_cannot_be_read_are_reported() {
    let dir = scratch("damaged");
    let (e, journal) = planned(&dir);
    let whole = read(&journal);
    let entry_line = whole.lines().nth(1).unwrap().to_string();
    for (text, expected) in [
        ("xtask journal 1\nend\n".to_string(), "another version"),
        (whole.replace("\nend\n", "\n"), "no `end` line"),
        (String::new(), "empty"),
        (
            whole.replacen(&entry_line[..4], "zz", 1),
            "not a hex-encoded path",
        ),
        (
            whole.replace(&entry_line, &entry_line.replace(':', ";")),
            "damaged",
        ),
        (format!("{whole}more\n"), "text after `end`"),
    ] {
        fs::remove_file(&journal).unwrap();
        fs::write(&journal, &text).unwrap();
        let message = recover(&journal).unwrap_err().to_string();
        assert!(
            message.contains("cannot read this journal") && message.contains(expected),
            "{text:?}: {message}"
        );
        assert!(journal.exists() && e.iter().all(|e| e.temp.exists()));
        assert_eq!(read(&e[0].target), "a-old");
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_journal_killed_while_written_never_reaches_its_place() {
    let dir = scratch("cut");
    let (e, journal) = planned(&dir);
    let whole = read(&journal);
    fs::remove_file(&journal).unwrap();
    for e in &e {
        fs::remove_file(&e.temp).unwrap();
    }
    for cut in [0, 5, HEADER.len() + 1, whole.len() - 3] {
        fs::write(draft(&journal), &whole[..cut]).unwrap();
        recover(&journal).unwrap();
        assert!(!draft(&journal).exists(), "cut at {cut}");
        // At its place, the same text is a damaged journal: reported, kept.
        fs::write(&journal, &whole[..cut]).unwrap();
        let message = recover(&journal).unwrap_err().to_string();
        assert!(message.contains("cannot read this journal"), "{message}");
        fs::remove_file(&journal).unwrap();
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_entry_must_name_a_temporary_file_beside_its_target() {
    let entry = |target: &str, temp: &str| Entry {
        target: PathBuf::from(target),
        temp: PathBuf::from(temp),
        old: None,
        new: Fingerprint::of(b""),
    };
    assert!(is_temp_of_target(&entry(
        "/r/values.yaml",
        "/r/.values.yaml.xtask-0123456789abcdef.tmp"
    )));
    for temp in [
        "/elsewhere/.values.yaml.xtask-0123456789abcdef.tmp",
        "/r/.other.yaml.xtask-0123456789abcdef.tmp",
        "/r/evil",
        "/r/.values.yaml.xtask-1.tmp",
    ] {
        assert!(!is_temp_of_target(&entry("/r/values.yaml", temp)), "{temp}");
    }
}

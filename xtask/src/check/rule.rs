//! Every rule `check` knows, once: its id, severity and one-line summary, which
//! `check --help` prints; `docs/rules.md` is held to this list by a test below.

use super::Severity;

/// One rule of `check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    PasswordNotGenerated,
    DbWithoutTemplate,
    UnusedPassword,
    MalformedBlock,
    EnvIdUnderscore,
    EnvIdCollision,
    BadValuesEntry,
    SharedRole,
    StaleDependency,
    ChartNotBumped,
    SecretConditionMismatch,
    MissingVaultPath,
    YamlSyntax,
    CopyWithoutSource,
    SecretSourceAbsent,
    StrayValuesFile,
    CopySourceNotEnabled,
    CopySourceMissing,
    CopyNeedsDatabase,
    PointerUnknownDatabase,
    PointerUserMismatch,
    UnusedDatabase,
}

use Rule::*;
use Severity::{Error, Warning};

/// (rule, id, severity, summary), in the order `check --help` and the docs list them.
const TABLE: &[(Rule, &str, Severity, &str)] = &[
    (
        PasswordNotGenerated,
        "password-not-generated",
        Error,
        "a block or entry needs a password nothing makes",
    ),
    (
        DbWithoutTemplate,
        "db-without-template",
        Error,
        "a values entry with no template block",
    ),
    (
        UnusedPassword,
        "unused-password",
        Warning,
        "a password no block uses",
    ),
    (
        MalformedBlock,
        "malformed-block",
        Error,
        "a block lacking USER, DB or PASSWORD, or with the wrong key",
    ),
    (
        EnvIdUnderscore,
        "env-id-underscore",
        Error,
        "a VRO_DB_<ID> with `_` in <ID>: the container skips it",
    ),
    (
        EnvIdCollision,
        "env-id-collision",
        Error,
        "two blocks with the same <ID>",
    ),
    (
        BadValuesEntry,
        "bad-values-entry",
        Error,
        "an entry that is not {user, db} of valid identifiers",
    ),
    (
        SharedRole,
        "shared-role",
        Warning,
        "one role with two password keys in an environment",
    ),
    (
        StaleDependency,
        "stale-dependency",
        Error,
        "the umbrella's requirement does not admit the chart",
    ),
    (
        ChartNotBumped,
        "chart-not-bumped",
        Error,
        "templates changed since --base, version did not",
    ),
    (
        SecretConditionMismatch,
        "secret-condition-mismatch",
        Error,
        "a secrets.yaml entry whose `if:` is not its X_db",
    ),
    (
        MissingVaultPath,
        "missing-vault-path",
        Warning,
        "a values file with entries and no Vault path",
    ),
    (
        YamlSyntax,
        "yaml-syntax",
        Error,
        "a file that does not parse, or a duplicate key",
    ),
    (
        CopyWithoutSource,
        "copy-without-source",
        Error,
        "a copy of a postgres password nothing makes",
    ),
    (
        SecretSourceAbsent,
        "secret-source-absent",
        Warning,
        "no secret generator: passwords are set by hand",
    ),
    (
        StrayValuesFile,
        "stray-values-file",
        Warning,
        "a postgres values file outside the chart's folder",
    ),
    (
        CopySourceNotEnabled,
        "copy-source-not-enabled",
        Error,
        "a copy whose source application is not enabled there",
    ),
    (
        CopySourceMissing,
        "copy-source-missing",
        Error,
        "a copy whose source key does not exist there",
    ),
    (
        CopyNeedsDatabase,
        "copy-needs-database",
        Error,
        "a copy from postgres where the database is not set",
    ),
    (
        PointerUnknownDatabase,
        "pointer-unknown-database",
        Error,
        "an application points at a database postgres lacks",
    ),
    (
        PointerUserMismatch,
        "pointer-user-mismatch",
        Error,
        "an application connects as another user than the entry's",
    ),
    (
        UnusedDatabase,
        "unused-database",
        Warning,
        "an entry no enabled application uses",
    ),
];

impl Rule {
    /// Every rule, in table order.
    pub fn all() -> impl Iterator<Item = Rule> {
        TABLE.iter().map(|row| row.0)
    }

    fn row(self) -> &'static (Rule, &'static str, Severity, &'static str) {
        TABLE.iter().find(|row| row.0 == self).unwrap_or(&TABLE[0])
    }

    pub fn id(self) -> &'static str {
        self.row().1
    }

    pub fn severity(self) -> Severity {
        self.row().2
    }

    pub fn summary(self) -> &'static str {
        self.row().3
    }

    /// The rule of an id.
    pub fn of(id: &str) -> Option<Rule> {
        TABLE.iter().find(|row| row.1 == id).map(|row| row.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_every_variant_once() {
        let all: Vec<Rule> = Rule::all().collect();
        assert_eq!(all.len(), 22);
        for (i, rule) in all.iter().enumerate() {
            assert!(!all[..i].contains(rule), "{rule:?} twice");
            assert_eq!(Rule::of(rule.id()), Some(*rule));
        }
    }

    /// `docs/rules.md` has one table row per rule, with its severity, in order.
    #[test]
    fn docs_agree() {
        let path = crate::config::workspace_root().join("docs/rules.md");
        let docs = std::fs::read_to_string(path).unwrap();
        let table = docs
            .split("## Rules")
            .nth(1)
            .unwrap()
            .split("\n## ")
            .next()
            .unwrap();
        let rows: Vec<(String, String)> = table
            .lines()
            .filter_map(|l| {
                let mut cells = l.strip_prefix("| `")?.split('|');
                let id = cells.next()?.trim().trim_end_matches('`').to_string();
                let severity = cells.next()?.trim().to_string();
                Some((id, severity))
            })
            .collect();
        let ours: Vec<(String, String)> = Rule::all()
            .map(|r| (r.id().to_string(), r.severity().as_str().to_string()))
            .collect();
        assert_eq!(rows, ours);
    }
}

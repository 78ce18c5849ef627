//! What `local-db up` does for an environment, decided before anything runs: the
//! entries the container would create, in its order; the secret keys the rendered
//! blocks read that the secret source does not make (the cluster's pod would not
//! start: `up` refuses, or with `--skip-missing` leaves those entries out); and the
//! entries that lose a shared role or database on the cluster. Pure functions of the
//! parsed triplets.

use anyhow::Result;
use std::collections::BTreeSet;

use super::cluster::{self, Outcome, SecretRef, Skipped, Wanted};
use crate::error::refused;
use crate::names::name_of_values_key;

/// Where the files are, for messages.
pub struct Files<'a> {
    pub env: &'a str,
    /// The values file, relative to the deployment.
    pub values: &'a str,
    pub template: &'a str,
    pub secret_source: &'a str,
}

/// `up`'s decisions.
#[derive(Debug, Default)]
pub struct Plan {
    /// The entries to create, in the container's order.
    pub ordered: Vec<Wanted>,
    pub skipped: Vec<Skipped>,
    /// Values keys whose service cannot log in on the cluster (a shared role).
    pub cannot_log_in: BTreeSet<String>,
    /// One line each, for standard error.
    pub warnings: Vec<String>,
}

/// The secret keys of `refs` that `makes` says nothing makes.
pub fn missing_keys<'r>(refs: &'r [SecretRef], makes: &dyn Fn(&str) -> bool) -> Vec<&'r SecretRef> {
    refs.iter().filter(|r| !makes(&r.secret_key)).collect()
}

/// The message for secret keys nothing makes: what the cluster does, the `check`
/// finding, and the fixes.
fn missing_message(missing: &[&SecretRef], files: &Files) -> String {
    let program = crate::flags::program_name();
    let env = crate::shell::quote(files.env);
    let mut text = format!(
        "local-db {}: the cluster's postgres would not start in this environment (a secretKeyRef \
         is not optional), so local-db does not serve it either:",
        files.env
    );
    for r in missing {
        let name = name_of_values_key(&r.values_key).unwrap_or(&r.values_key);
        text.push_str(&format!(
            "\n  {}:{}: the block of `{}` reads the secret key `{}`, which {} does not make \
             (`{program} check` reports it: error[password-not-generated])\n  \
             fix: make the key (`{program} add-db {name} --env {env}` completes the missing pieces) \
             or drop the entry (`{program} remove-db {name} --env {env}`)",
            files.template, r.line, r.values_key, r.secret_key, files.secret_source
        ));
    }
    text.push_str(&format!(
        "\n  or `{program} local-db up --env {env} --skip-missing` to create the rest"
    ));
    text
}

/// Decides `up` for an environment from what the container would do (`outcome`)
/// and which secret keys the source makes.
pub fn plan(
    outcome: Outcome,
    makes: &dyn Fn(&str) -> bool,
    skip_missing: bool,
    files: &Files,
) -> Result<Plan> {
    let missing = missing_keys(&outcome.secret_refs, makes);
    if !missing.is_empty() && !skip_missing {
        return Err(refused(missing_message(&missing, files)));
    }
    let mut plan = Plan {
        skipped: outcome.skipped,
        ..Plan::default()
    };
    let missing_keys: BTreeSet<&str> = missing.iter().map(|r| r.values_key.as_str()).collect();
    for r in &missing {
        plan.warnings.push(format!(
            "warning: {}:{}: `{}` reads the secret key `{}`, which {} does not make: the cluster's postgres \
             would not start at all; left out, as --skip-missing asks",
            files.template, r.line, r.values_key, r.secret_key, files.secret_source
        ));
    }
    let mut kept = Vec::new();
    for w in outcome.wanted {
        if missing_keys.contains(w.key.as_str()) {
            plan.skipped.push(Skipped {
                key: w.key.clone(),
                line: 0,
                reason: format!(
                    "its secret key `{}` is missing (--skip-missing)",
                    w.secret_key
                ),
            });
        } else {
            kept.push(w);
        }
    }
    plan.ordered = cluster::order(&kept);
    for (key, warning) in cluster::conflicts(&plan.ordered) {
        if warning.contains("cannot log in") {
            plan.cannot_log_in.insert(key);
        }
        plan.warnings
            .push(format!("warning: {}: {warning}", files.values));
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(key: &str, user: &str, secret_key: &str) -> Wanted {
        Wanted {
            key: key.into(),
            user: user.into(),
            db: user.into(),
            id: key.trim_end_matches("_db").to_uppercase(),
            secret_key: secret_key.into(),
        }
    }

    fn files() -> Files<'static> {
        Files {
            env: "dev",
            values: "values-dev.yaml",
            template: "templates/deployment.yaml",
            secret_source: "installer/generate_secrets.py",
        }
    }

    fn outcome() -> Outcome {
        Outcome {
            wanted: vec![
                w("hub_db", "jovyan", "hub_password"),
                w("lab_db", "jovyan", "lab_password"),
                w("gone_db", "gone", "gone_password"),
            ],
            skipped: vec![],
            secret_refs: ["hub", "lab", "gone", "under_score"]
                .iter()
                .enumerate()
                .map(|(i, n)| SecretRef {
                    values_key: format!("{n}_db"),
                    secret_key: format!("{n}_password"),
                    line: 10 * (i + 1),
                })
                .collect(),
        }
    }

    fn makes(key: &str) -> bool {
        !["gone_password", "under_score_password"].contains(&key)
    }

    #[test]
    fn a_missing_key_refuses_naming_key_finding_and_fix() {
        let err = plan(outcome(), &makes, false, &files()).unwrap_err();
        assert_eq!(crate::error::exit_status(&err), 1);
        let text = err.to_string();
        for part in [
            "local-db dev: the cluster's postgres would not start",
            "templates/deployment.yaml:30: the block of `gone_db` reads the secret key `gone_password`",
            "error[password-not-generated]",
            "add-db gone --env dev",
            "remove-db gone --env dev",
            // A skipped entry's key counts too: the pod needs every key it reads.
            "`under_score_password`",
            "--skip-missing",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
    }

    #[test]
    fn skip_missing_creates_the_rest_in_order_and_warns() {
        let got = plan(outcome(), &makes, true, &files()).unwrap();
        let keys: Vec<&str> = got.ordered.iter().map(|w| w.key.as_str()).collect();
        assert_eq!(keys, ["lab_db", "hub_db"]);
        assert_eq!(got.skipped.len(), 1);
        assert_eq!(got.skipped[0].key, "gone_db");
        assert_eq!(got.cannot_log_in, BTreeSet::from(["lab_db".to_string()]));
        assert_eq!(got.warnings.len(), 3, "{:?}", got.warnings);
        assert!(
            got.warnings[0].contains("`gone_password`"),
            "{:?}",
            got.warnings
        );
        assert!(
            got.warnings[2].contains("`lab_db` cannot log in"),
            "{:?}",
            got.warnings
        );
    }
}

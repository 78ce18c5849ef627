//! The steps of adding a database: the password into Vault (or the secrets sync)
//! before the merge, the published chart in the split layout, then per environment
//! refresh, sync, verify and restart the applications that copy it.

use super::builder::Builder;
use super::model::{Phase, Target};
use super::shell_line::cmd;
use super::site::{context_word, published_chart, EnvSite};
use crate::deployment::Secrets;
use crate::files::secrets_yaml;
use crate::layout::Kind;

/// The steps of adding the database to `targets` (one site each): environments whose
/// deployed files already hold it only get the verification.
pub(super) fn add_steps(b: &mut Builder, targets: &[Target], sites: &[EnvSite]) {
    let new: Vec<(&Target, &EnvSite)> = targets
        .iter()
        .zip(sites)
        .filter(|(t, _)| !t.exists)
        .collect();
    for (target, site) in &new {
        let env = target.env.as_str();
        match &b.dep.secrets {
            Secrets::Generator(_) | Secrets::Absent(_) => put_password(b, env, site),
            Secrets::Yaml(y) => {
                let source = y.parsed.entry(&b.secret_key).map(|e| e.source.clone());
                audit_and_sync(b, env, site, source);
            }
        }
    }
    if !new.is_empty() {
        chart_published(b);
    }
    for (target, site) in targets.iter().zip(sites) {
        after_merge(b, target, site);
    }
}

/// Before the merge, generator layout (or none): the password into Vault where the
/// key is absent, and into the secrets of the applications that copy it.
fn put_password(b: &mut Builder, env: &str, site: &EnvSite) {
    let key = b.secret_key.clone();
    let by_hand = matches!(b.dep.secrets, Secrets::Absent(_));
    let (path, step) = b.vault_step(
        Phase::BeforeMerge,
        env,
        site,
        format!("Put {key} into Vault where it is absent"),
    );
    step.notes
        .push("An existing key is reported and left alone: it is the live password.".into());
    if by_hand {
        step.notes.push(
            "This repository has no secret generator: nothing else makes this password, \
             so it goes into Vault by hand, here."
                .into(),
        );
    }
    step.run(cmd("put_password_if_absent").word(path).arg(key));
    b.copy_to_consumers(Phase::BeforeMerge, env, site);
}

/// Before the merge, `secrets.yaml` layout: `phalanx secrets audit` and `sync`, with
/// what the sync does for the key's `source`.
fn audit_and_sync(
    b: &mut Builder,
    env: &str,
    site: &EnvSite,
    source: Option<secrets_yaml::Source>,
) {
    let key = b.secret_key.clone();
    b.login_step(Phase::BeforeMerge, env, site);
    let step = b.step(
        Phase::BeforeMerge,
        Some(env),
        "Audit and sync the secrets".into(),
    );
    match source {
        Some(secrets_yaml::Source::Manual) => step.notes.push(format!(
            "{key} is set by hand: put its value into {env}'s static secret store (e.g. 1Password) \
             first; the sync copies it from there and does not create it."
        )),
        Some(secrets_yaml::Source::Copy {
            application,
            key: from,
        }) => step.notes.push(format!(
            "{key} is copied from {application}'s {from}: that secret must exist first."
        )),
        _ => step.notes.push(format!(
            "The sync generates {key} where it is missing and leaves existing values alone."
        )),
    }
    step.notes.extend([
        "Run from a phalanx checkout that holds the new secrets.yaml entry (this branch)."
            .to_string(),
        "The audit only reports (it exits 1 whenever it reports anything, such as the key the \
         sync is about to create), so it never stops the runbook; the sync must succeed, and \
         when it fails the runbook stops with its message."
            .to_string(),
    ]);
    step.commands.push(format!(
        "{} || true",
        cmd("phalanx").raw("secrets audit").arg(env)
    ));
    step.run(cmd("phalanx").raw("secrets sync").arg(env));
}

/// Split layout: the charts change merged and its version published before the
/// phalanx change (a warning when the umbrella chart names no repository).
fn chart_published(b: &mut Builder) {
    match published_chart(b.dep, b.pending.chart_version.as_deref()) {
        Some((repository, chart, version)) if b.dep.layout.kind == Kind::Split => {
            let step = b.step(
                Phase::ChartPublished,
                None,
                format!("Merge the charts change, then wait for {chart} {version}"),
            );
            step.notes.push(format!(
                "The phalanx change requires {chart} {version}: merge it only once this step has passed."
            ));
            step.run(
                cmd("wait_for_chart")
                    .arg(repository)
                    .arg(chart)
                    .arg(version),
            );
        }
        _ if b.dep.layout.kind == Kind::Split => b.warnings.push(
            "the umbrella Chart.yaml names no repository for the postgres chart: check by hand that the \
             new chart version is published before merging the phalanx change"
                .into(),
        ),
        _ => {}
    }
}

/// After the merge, one environment: refresh, sync (guarded by the secret's check)
/// and the restart of the consumers where the database is new; the verification
/// everywhere.
fn after_merge(b: &mut Builder, target: &Target, site: &EnvSite) {
    let env = target.env.as_str();
    b.cluster(Phase::AfterMerge, env, site);
    if !target.exists {
        b.refresh_secret(Phase::AfterMerge, env, site);
        // Pasted after a refresh whose check failed, the sync would restart postgres
        // without the new password, and postgres would not start.
        let guard = cmd("secret_ready_for_sync")
            .word(context_word(site))
            .arg(b.secret_key.as_str());
        b.sync(Phase::AfterMerge, env, site, Some(guard));
    }
    b.verify(Phase::AfterMerge, env, site, target);
    if !target.exists {
        b.restart_consumers(Phase::AfterMerge, env, site);
    }
}

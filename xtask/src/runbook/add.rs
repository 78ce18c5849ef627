//! The steps of adding a database: the password into Vault (or the secrets sync)
//! before the merge, the published chart in the split layout, then per environment
//! refresh, sync, verify and restart the applications that copy it.

use super::builder::Builder;
use super::model::{Phase, Target};
use super::site::{context_word, published_chart, EnvSite};
use crate::deployment::Secrets;
use crate::files::secrets_yaml;
use crate::layout::Kind;
use crate::shell::quote;

pub(super) fn add_steps(b: &mut Builder, targets: &[Target], sites: &[EnvSite]) {
    let key = b.secret_key.clone();
    let new: Vec<(&Target, &EnvSite)> = targets
        .iter()
        .zip(sites)
        .filter(|(t, _)| !t.exists)
        .collect();
    for (target, site) in &new {
        let env = target.env.as_str();
        match &b.dep.secrets {
            Secrets::Generator(_) | Secrets::Absent(_) => {
                let by_hand = matches!(b.dep.secrets, Secrets::Absent(_));
                let (path, step) = b.vault_step(
                    Phase::BeforeMerge,
                    env,
                    site,
                    format!("Put {key} into Vault where it is absent"),
                );
                step.notes.push(
                    "An existing key is reported and left alone: it is the live password.".into(),
                );
                if by_hand {
                    step.notes.push(
                        "This repository has no secret generator: nothing else makes this password, \
                         so it goes into Vault by hand, here."
                            .into(),
                    );
                }
                step.commands
                    .push(format!("put_password_if_absent {path} {}", quote(&key)));
                b.copy_to_consumers(Phase::BeforeMerge, env, site);
            }
            Secrets::Yaml(y) => {
                let source = y.parsed.entry(&key).map(|e| e.source.clone());
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
                    Some(secrets_yaml::Source::Copy { application, key: from }) => {
                        step.notes.push(format!(
                            "{key} is copied from {application}'s {from}: that secret must exist first."
                        ))
                    }
                    _ => step.notes.push(format!(
                        "The sync generates {key} where it is missing and leaves existing values alone."
                    )),
                }
                step.notes.extend([
                    "Run from a phalanx checkout that holds the new secrets.yaml entry (this branch).".to_string(),
                    "The audit only reports (it exits 1 whenever it reports anything, such as the key the \
                     sync is about to create), so it never stops the runbook; the sync must succeed, and \
                     when it fails the runbook stops with its message."
                        .to_string(),
                ]);
                let env_word = quote(env);
                step.commands.extend([
                    format!("phalanx secrets audit {env_word} || true"),
                    format!("phalanx secrets sync {env_word}"),
                ]);
            }
        }
    }
    if !new.is_empty() {
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
                step.commands.push(format!(
                    "wait_for_chart {} {} {}",
                    quote(&repository),
                    quote(&chart),
                    quote(&version)
                ));
            }
            _ if b.dep.layout.kind == Kind::Split => b.warnings.push(
                "the umbrella Chart.yaml names no repository for the postgres chart: check by hand that the \
                 new chart version is published before merging the phalanx change"
                    .into(),
            ),
            _ => {}
        }
    }
    for (target, site) in targets.iter().zip(sites) {
        let env = target.env.as_str();
        b.cluster(Phase::AfterMerge, env, site);
        if !target.exists {
            b.refresh_secret(Phase::AfterMerge, env, site);
            b.sync(Phase::AfterMerge, env, site);
            // Pasted after a refresh whose check failed, the sync would restart postgres
            // without the new password, and postgres would not start.
            let guard = format!(
                "secret_ready_for_sync {} {}",
                context_word(site),
                quote(&b.secret_key)
            );
            b.steps.last_mut().expect("the sync step").guard = Some(guard);
        }
        b.verify(Phase::AfterMerge, env, site, target);
        if !target.exists {
            b.restart_consumers(Phase::AfterMerge, env, site);
        }
    }
}

//! `runbook`: the steps that follow an edit, derived from the deployment, as one list
//! of steps that `text` renders to paste and `script` renders as a bash script.
//!
//! Adding: before the merge, every chosen environment's password goes into Vault where
//! the key is absent (or `phalanx secrets audit`/`sync` in the `secrets.yaml` layout);
//! in the split layout the charts change is merged and published first; after the merge,
//! per environment: refresh the `postgres` secret, sync, wait, verify, restart the
//! applications that copy the password. An environment whose committed files already
//! hold the database only gets the verification. Rotating and removing have their own
//! phases. Every word from a file is shell-quoted; no password is ever printed or passed
//! as an argument (the helpers in `templates/runbook-helpers.sh` pipe them).

/// The bash function `confirm QUESTION` after the comment line `$comment`: it runs
/// `$first` (lines that may answer alone), then asks, returns 0 on y or yes, and
/// otherwise runs `$refused`. The text and script forms differ only in those.
macro_rules! confirm_function {
    ($comment:literal, $first:literal, $refused:literal) => {
        concat!(
            "# ",
            $comment,
            "\nconfirm() { # QUESTION\n  local answer\n",
            $first,
            r#"  read -rp "$1 [y/N] " answer
  if [ "$answer" = y ] || [ "$answer" = yes ]; then
    return 0
  fi
"#,
            $refused,
            "}\n"
        )
    };
}

mod follow;
mod helpers_file;
pub mod json;
mod move_steps;
mod script;
mod text;

use anyhow::Result;
use std::path::Path;

use crate::config::Config;
use crate::deployment::{Deployment, Secrets};
use crate::error::{bad_input, refused};
use crate::files::secrets_yaml;
use crate::flags::{self, RunbookMode};
use crate::git::Upstream;
use crate::layout::Kind;
use crate::names::{DbName, SqlIdent};
use crate::shell::quote;

pub use move_steps::build_move;
pub use script::render_script;
pub use text::render_text;

const ROOT_NOT_ROTATABLE: &str =
    "root_password cannot be rotated this way: it becomes the superuser's password only at the \
     first initdb, so a new value in Vault changes nothing in the server";

/// The shell functions every rendering starts with.
pub const HELPERS: &str = include_str!("../../../templates/runbook-helpers.sh");

/// The shell functions a runbook starts with: a move's add their own.
pub fn helpers(runbook: &Runbook) -> String {
    match runbook.mode {
        RunbookMode::Move => format!("{HELPERS}{}", move_steps::MOVE_HELPERS),
        _ => HELPERS.to_string(),
    }
}

/// When a step runs; the script takes the phase's name as its argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Passwords into Vault (or the secrets sync), before anything is merged.
    BeforeMerge,
    /// Split layout: the charts change is merged and its version published.
    ChartPublished,
    /// After the (phalanx) merge: refresh, sync, wait, verify, restart consumers.
    AfterMerge,
    /// `--rotate`: the new value into Vault (no cluster needed).
    NewPassword,
    /// `--rotate`: refresh, restart, verify, restart consumers.
    Restart,
    /// `--remove`: the key out of the Vault secret, once the database is dropped.
    DeleteKey,
    /// `--move-to`: the new server answers and is empty; versions; size.
    Preflight,
    /// `--move-to`: each consumer scaled to zero, its replica counts recorded.
    Freeze,
    /// `--move-to`: dump, role and database on the new server, restore.
    Copy,
    /// `--move-to`: the same query and the schemas on both servers.
    Verify,
    /// `--move-to`: secrets, each consumer synced and scaled back.
    Switch,
    /// `--move-to`: final dump, drop on the old server, the Vault key.
    Cleanup,
    /// `--move-to`: the consumers back on the old server (before cleanup).
    Rollback,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::BeforeMerge => "before-merge",
            Phase::ChartPublished => "chart-published",
            Phase::AfterMerge => "after-merge",
            Phase::NewPassword => "new-password",
            Phase::Restart => "restart",
            Phase::DeleteKey => "delete-key",
            Phase::Preflight => "preflight",
            Phase::Freeze => "freeze",
            Phase::Copy => "copy",
            Phase::Verify => "verify",
            Phase::Switch => "switch",
            Phase::Cleanup => "cleanup",
            Phase::Rollback => "rollback",
        }
    }

    /// What the operator does before running the phase.
    pub fn precondition(self, dep: &Deployment, mode: RunbookMode) -> &'static str {
        match (self, mode) {
            (Phase::BeforeMerge, _) => "run it before anything is merged",
            (Phase::ChartPublished, _) => {
                "merge the charts change first; this waits until its version is published"
            }
            (Phase::AfterMerge, RunbookMode::Remove) => {
                "merge the change that removes the database from the values files first"
            }
            (Phase::AfterMerge, _) if dep.layout.kind == Kind::Split => {
                "merge the phalanx change (after chart-published) first"
            }
            (Phase::AfterMerge, _) => "merge the change first",
            (Phase::NewPassword, _) => "nothing to merge; overwrites the live password in Vault",
            (Phase::Restart, _) => "right after new-password, in a maintenance window",
            (Phase::DeleteKey, _) => "once after-merge has dropped the database",
            (Phase::Preflight, _) => "any time before the move; changes nothing",
            (Phase::Freeze, _) => "at the start of the maintenance window; stops the consumers",
            (Phase::Copy, _) => "after freeze; copies into the new server",
            (Phase::Verify, _) => "right after copy, consumers still stopped",
            (Phase::Switch, _) => "merge the move-db change first; runs only after verify passed",
            (Phase::Cleanup, _) => "after the period you chose; rollback is impossible afterwards",
            (Phase::Rollback, _) => {
                "instead of going on, before cleanup: revert the move-db change and merge the revert first"
            }
        }
    }
}

/// One step: shell lines that the text form prints as they are and the script runs.
#[derive(Clone, Debug)]
pub struct Step {
    pub phase: Phase,
    /// The environment, or none for a step of the whole deployment.
    pub env: Option<String>,
    pub title: String,
    /// Comment lines (what to know, what to do by hand).
    pub notes: Vec<String>,
    /// Shell lines; empty for a step done by hand.
    pub commands: Vec<String>,
    /// The question asked before the commands run, for a destructive step.
    pub confirm: Option<String>,
    /// A check that must pass before the question is asked (a pasted block can follow
    /// one whose check failed).
    pub guard: Option<String>,
}

/// One environment's part of the runbook.
#[derive(Clone, Debug)]
pub struct Target {
    pub env: String,
    /// Checked identifiers: they go into SQL, shell lines and the dump file name.
    pub user: SqlIdent,
    pub database: SqlIdent,
    /// Whether another entry of the environment still uses the role.
    pub role_shared: bool,
    /// Whether the committed files already hold the database here (so the password
    /// is live and the runbook only verifies).
    pub exists: bool,
}

/// What the runbook knows about an environment's Vault and cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvSite {
    pub env: String,
    pub vault_addr: String,
    /// The Vault path of the `postgres` secret, when anything names it.
    pub vault_path: Option<String>,
    /// The kubectl context from `xtask.toml`'s `[kube_contexts]`.
    pub context: Option<String>,
}

/// The Vault address, Vault path and kubectl context of an environment: from
/// `environments/values-<env>.yaml` (`vaultUrl`, `vaultPathPrefix`), else the values
/// file's `vault_secrets.path`, else `xtask.toml`.
pub fn site(
    dep: &Deployment,
    contexts: &std::collections::BTreeMap<String, String>,
    env: &str,
) -> Result<EnvSite> {
    let file = dep
        .layout
        .phalanx
        .join(format!("environments/values-{env}.yaml"));
    let (mut url, mut prefix) = (None, None);
    if file.is_file() {
        let text = crate::fsio::read_text(&file).map_err(bad_input)?;
        let root = crate::files::parse_yaml(&text).map_err(|e| {
            let at = e.line.map_or_else(String::new, |l| format!(":{l}"));
            bad_input(format!(
                "{}{at}: not valid YAML: {}",
                file.display(),
                e.message
            ))
        })?;
        let string = |key: &str| root.get(key).and_then(|v| v.as_str()).map(str::to_string);
        url = string("vaultUrl");
        prefix = string("vaultPathPrefix");
    }
    let vault_path = prefix
        .map(|p| format!("{}/postgres", p.trim_end_matches('/')))
        .or_else(|| dep.env(env).and_then(|e| e.parsed.vault_path.clone()))
        .or_else(|| dep.config.vault_paths.get(env).cloned());
    let site = EnvSite {
        env: env.to_string(),
        vault_addr: url.unwrap_or_else(|| dep.config.vault_addr.clone()),
        vault_path,
        context: contexts.get(env).cloned(),
    };
    // Each goes into the shell lines quoted, but a line break would still split a
    // pasted block where it does not seem to end.
    for (what, value) in [
        ("Vault address", Some(&site.vault_addr)),
        ("Vault path", site.vault_path.as_ref()),
        ("kubectl context", site.context.as_ref()),
    ] {
        if let Some(value) = value.filter(|v| v.chars().any(char::is_control)) {
            return Err(bad_input(format!(
                "{env}: the {what} {value:?} holds a line break or another control character; fix it \
                 where it is set (environments/values-{env}.yaml, the values file or xtask.toml)"
            )));
        }
    }
    Ok(site)
}

/// Whether the Deployment in the template uses the `Recreate` strategy (then the old
/// pod is gone before the new one starts, and no ReplicaSet can be stuck).
pub fn uses_recreate(template: &str) -> bool {
    let bare = |l: &str| l.trim().replace(['"', '\''], "");
    let lines: Vec<String> = template.lines().map(bare).collect();
    lines.iter().enumerate().any(|(i, line)| {
        (line.starts_with("strategy:") && line.contains("type: Recreate"))
            || (line == "strategy:" && lines[i + 1..].iter().take(3).any(|l| l == "type: Recreate"))
    })
}

/// The chart repository and version the split layout's phalanx change requires
/// (`new_version` when an edit not yet written bumps it).
fn published_chart(
    dep: &Deployment,
    new_version: Option<&str>,
) -> Option<(String, String, String)> {
    let umbrella = dep.umbrella.as_ref()?;
    let name = dep.chart.parsed.name.clone()?;
    let version = match new_version {
        Some(v) => v.to_string(),
        None => dep.chart.parsed.version.as_ref()?.0.to_string(),
    };
    let root: serde_yaml::Value = serde_yaml::from_str(&umbrella.text).ok()?;
    let repository = root
        .get("dependencies")?
        .as_sequence()?
        .iter()
        .find(|d| d.get("name").and_then(|n| n.as_str()) == Some(name.as_str()))?
        .get("repository")?
        .as_str()?
        .to_string();
    Some((repository, name, version))
}

/// The applications that copy a database's password (also those a pending edit adds),
/// restarted after postgres. A generator's component (`_vo_cutouts`) is the
/// application `vo-cutouts`: Kubernetes names hold no `_`.
fn consumers(dep: &Deployment, pending: &Pending, secret_key: &str) -> Vec<String> {
    let mut apps: Vec<String> = dep
        .consumers_of(secret_key)
        .into_iter()
        .chain(pending.consumers.iter().cloned())
        .map(|name| name.replace('_', "-"))
        .collect();
    apps.sort();
    apps.dedup();
    apps
}

/// The whole runbook: its steps and the warnings to show beside it.
pub struct Runbook {
    pub title: String,
    pub mode: RunbookMode,
    pub steps: Vec<Step>,
    pub warnings: Vec<String>,
    /// What the runbook took as deployed (`compared_with`), for its header.
    pub compared: Option<String>,
    /// The database's name.
    pub database: String,
    /// The revision taken as deployed, when one was (for JSON).
    pub upstream: Option<Upstream>,
}

impl Runbook {
    /// What the operator does before running a phase.
    pub fn precondition(&self, phase: Phase, dep: &Deployment) -> &'static str {
        let nothing_merged = self.mode == RunbookMode::Add
            && !self.steps.iter().any(|s| s.phase == Phase::BeforeMerge);
        if phase == Phase::AfterMerge && nothing_merged {
            "the deployed files already hold the database: this only verifies it"
        } else {
            phase.precondition(dep, self.mode)
        }
    }

    /// The phases that have steps, in order.
    pub fn phases(&self) -> Vec<Phase> {
        let mut phases: Vec<Phase> = self.steps.iter().map(|s| s.phase).collect();
        phases.sort();
        phases.dedup();
        phases
    }
}

/// `kubectl --context CTX` when configured, else the context confirmed by `confirm_context`.
fn kubectl(site: &EnvSite) -> String {
    match &site.context {
        Some(context) => format!("kubectl --context {}", quote(context)),
        None => format!("kubectl --context {}", context_word(site)),
    }
}

/// The shell variable holding an environment's confirmed context (one per environment,
/// so a block pasted for one environment never runs in another's cluster).
fn context_variable(env: &str) -> String {
    let safe: String = env
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("KUBE_CONTEXT_{safe}")
}

/// The environment's name inside a `${VAR:?message}`, whose message the shell expands
/// (`$(...)`, quotes): anything but letters, digits, `-`, `_` and `.` becomes `_`.
fn message_word(env: &str) -> String {
    env.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn context_word(site: &EnvSite) -> String {
    match &site.context {
        Some(context) => quote(context),
        None => format!(
            "\"${{{}:?first confirm the cluster of {}}}\"",
            context_variable(&site.env),
            message_word(&site.env)
        ),
    }
}

struct Builder<'a> {
    dep: &'a Deployment,
    pending: &'a Pending,
    db: &'a DbName,
    secret_key: String,
    steps: Vec<Step>,
    warnings: Vec<String>,
    /// The environments of the runbook with a configured kubectl context, and it.
    configured: Vec<(String, String)>,
}

impl Builder<'_> {
    fn step(&mut self, phase: Phase, env: Option<&str>, title: String) -> &mut Step {
        self.steps.push(Step {
            phase,
            env: env.map(str::to_string),
            title,
            notes: Vec::new(),
            commands: Vec::new(),
            confirm: None,
            guard: None,
        });
        self.steps.last_mut().expect("just pushed")
    }

    fn vault_path(&mut self, env: &str, site: &EnvSite) -> String {
        match &site.vault_path {
            Some(path) => quote(path),
            None => {
                let warning = format!(
                    "{env}: no Vault path: neither environments/values-{env}.yaml (`vaultPathPrefix`), nor the \
                     values file (`vault_secrets.path`), nor xtask.toml (`[vault_paths]`) names one; set \
                     POSTGRES_VAULT_PATH before running its steps"
                );
                // Several steps of one environment read the path: say it once.
                if !self.warnings.contains(&warning) {
                    self.warnings.push(warning);
                }
                format!(
                    "\"${{POSTGRES_VAULT_PATH:?set it to the Vault path of the postgres secret of {}}}\"",
                    message_word(env)
                )
            }
        }
    }

    /// The kubectl block's first step when no context is configured.
    fn cluster(&mut self, phase: Phase, env: &str, site: &EnvSite) {
        if site.context.is_none() {
            let configured = self.configured.clone();
            let step = self.step(phase, Some(env), "Confirm the cluster".into());
            step.notes.push(format!(
                "No kubectl context is configured for {env} (xtask.toml `[kube_contexts]`): every kubectl \
                 and argocd call below uses the one you confirm here."
            ));
            // The configured clusters of the other environments are taken too: the
            // current context cannot be confirmed as one of them.
            for (other, context) in &configured {
                step.commands.push(format!(
                    "remember_context {} {}",
                    quote(other),
                    quote(context)
                ));
            }
            step.commands.push(format!(
                "confirm_context {} {}",
                quote(env),
                context_variable(env)
            ));
        }
    }

    /// A step `title` on the environment's `postgres` secret in Vault, after a step
    /// that logs in to Vault; with the secret's (quoted) path.
    fn vault_step(
        &mut self,
        phase: Phase,
        env: &str,
        site: &EnvSite,
        title: String,
    ) -> (String, &mut Step) {
        let path = self.vault_path(env, site);
        self.login_step(phase, env, site);
        (path, self.step(phase, Some(env), title))
    }

    fn vault_login(&self, step_env: &str, site: &EnvSite) -> String {
        format!(
            "vault_login {} {}",
            quote(step_env),
            quote(&site.vault_addr)
        )
    }

    /// The Vault login as a block of its own: its token prompt reads what is pasted
    /// next, so no other command may follow it in the same pasted block.
    fn login_step(&mut self, phase: Phase, env: &str, site: &EnvSite) {
        let login = self.vault_login(env, site);
        let step = self.step(phase, Some(env), "Log in to Vault".into());
        step.commands.push(login);
    }

    fn refresh_secret(&mut self, phase: Phase, env: &str, site: &EnvSite) {
        let kubectl = kubectl(site);
        let context = context_word(site);
        let key = self.secret_key.clone();
        let step = self.step(
            phase,
            Some(env),
            "Refresh the postgres secret from Vault".into(),
        );
        step.notes.push(
            "The vault secrets operator recreates a deleted secret at once (else within 60 s)."
                .into(),
        );
        step.commands.extend([
            format!("{kubectl} -n postgres delete secret postgres --ignore-not-found"),
            format!("wait_for_secret {context} postgres postgres"),
            format!("check_secret_key {context} {}", quote(&key)),
        ]);
    }

    fn rollout_wait(&self, site: &EnvSite) -> String {
        format!(
            "{} -n postgres rollout status deployment/postgres --timeout=10m",
            kubectl(site)
        )
    }

    fn sync(&mut self, phase: Phase, env: &str, site: &EnvSite) {
        let argocd = match &site.context {
            Some(context) => format!(
                "argocd app sync argocd/postgres --core --kube-context {}",
                quote(context)
            ),
            None => format!(
                "argocd app sync argocd/postgres --core --kube-context {}",
                context_word(site)
            ),
        };
        let wait = self.rollout_wait(site);
        let recreate = uses_recreate(&self.dep.template.text);
        let template = self.dep.template.file.relative.clone();
        let step = self.step(phase, Some(env), "Sync postgres and wait for it".into());
        step.confirm = Some(format!(
            "Sync postgres in {env}? It restarts the server (a brief interruption)."
        ));
        step.notes
            .push("Syncing restarts postgres: mind the maintenance window.".into());
        step.notes.push(
            "argocd/postgres names the Application in the Argo CD namespace: with --core, a bare name is \
             looked up in the context's current namespace."
                .into(),
        );
        step.commands.extend([argocd, wait.clone()]);
        if !recreate {
            let kubectl = kubectl(site);
            step.notes.extend([
                format!(
                    "{template} does not use the Recreate strategy: if the rollout times out because the old pod \
                     does not terminate, delete the ReplicaSet that owns it:"
                ),
                format!("  {kubectl} -n postgres get pods -o wide"),
                format!(
                    "  {kubectl} -n postgres get pod POD -o jsonpath='{{.metadata.ownerReferences[0].name}}'"
                ),
                format!("  {kubectl} -n postgres delete replicaset REPLICASET"),
                format!("  {wait}"),
            ]);
        }
    }

    fn restart_postgres(&mut self, phase: Phase, env: &str, site: &EnvSite) {
        let kubectl = kubectl(site);
        let wait = self.rollout_wait(site);
        let step = self.step(phase, Some(env), "Restart postgres and wait for it".into());
        step.confirm = Some(format!(
            "Restart postgres in {env}? A brief interruption for every database."
        ));
        step.notes.push(
            "The container re-applies every password at start; an Argo CD sync would do nothing \
             (the spec did not change)."
                .into(),
        );
        step.commands.extend([
            format!("{kubectl} -n postgres rollout restart deployment/postgres"),
            wait,
        ]);
    }

    fn verify(&mut self, phase: Phase, env: &str, site: &EnvSite, target: &Target) {
        let context = context_word(site);
        let id = self.db.env_id();
        let step = self.step(
            phase,
            Some(env),
            format!(
                "Verify: the role {} logs in and the database {} exists",
                target.user, target.database
            ),
        );
        step.notes
            .push("The login runs inside the pod with the pod's own copy of the password.".into());
        step.commands.extend([
            format!("check_database {context} {}", quote(&target.database)),
            format!("check_login {context} {id}"),
        ]);
    }

    /// Gives the applications that copy the password the (new) value, before the
    /// merge or right after a rotation: `phalanx secrets sync` copies it in the
    /// `secrets.yaml` layout; with a generator the copy is put by hand, Vault to Vault.
    fn copy_to_consumers(&mut self, phase: Phase, env: &str, site: &EnvSite) {
        let apps = consumers(self.dep, self.pending, &self.secret_key);
        if apps.is_empty() {
            return;
        }
        let key = self.secret_key.clone();
        let path = self.vault_path(env, site);
        let yaml = matches!(self.dep.secrets, Secrets::Yaml(_));
        let (commands, warnings) =
            follow::generator_copies(self.dep, self.pending, &key, &path, site);
        for warning in warnings {
            if !self.warnings.contains(&warning) {
                self.warnings.push(warning);
            }
        }
        let step = self.step(
            phase,
            Some(env),
            format!("Give {} the value of {key}", apps.join(", ")),
        );
        if yaml {
            step.notes.push(format!(
                "Their secrets.yaml copies {key}: the sync copies the value into their Vault secrets. Run it \
                 from a phalanx checkout."
            ));
            step.commands
                .push(format!("phalanx secrets sync {}", quote(env)));
        } else {
            step.notes.push(format!(
                "The generator copied {key} into their own Vault secrets when the environment was installed: \
                 the same value goes there too, Vault to Vault through a pipe."
            ));
            step.commands.extend(commands);
        }
    }

    fn restart_consumers(&mut self, phase: Phase, env: &str, site: &EnvSite) {
        let mut apps = consumers(self.dep, self.pending, &self.secret_key);
        apps.extend(follow::env_consumers(
            self.dep,
            &self.db.values_key(),
            &self.secret_key,
            env,
        ));
        apps.sort();
        apps.dedup();
        if apps.is_empty() {
            return;
        }
        let kubectl = kubectl(site);
        let key = self.secret_key.clone();
        let step = self.step(
            phase,
            Some(env),
            format!("Restart the applications that use {key}"),
        );
        step.notes.push(format!(
            "Their own secrets copy {key}: once their vault secrets have the value (the operator refreshes \
             them within 60 s), restart them so they read it."
        ));
        step.confirm = Some(format!("Restart {} in {env}?", apps.join(", ")));
        for app in apps {
            let app = quote(&app);
            step.commands.extend([
                format!("{kubectl} -n {app} rollout restart deployment"),
                format!(
                    "{kubectl} -n {app} wait --for=condition=Available deployment --all --timeout=10m"
                ),
            ]);
        }
    }
}

/// What edits about to be written change for the runbook (the deployment it reads is
/// the one before them).
#[derive(Clone, Debug, Default)]
pub struct Pending {
    /// The chart version the edit gives the chart (split layout).
    pub chart_version: Option<String>,
    /// Applications the edit makes copy the password (`add-db --app`).
    pub consumers: Vec<String>,
    /// The same with the key of each copy in the application's secret.
    pub copies: Vec<(String, String)>,
}

/// The runbook of a database in the given environments.
pub fn build(
    dep: &Deployment,
    db: &DbName,
    targets: &[Target],
    mode: RunbookMode,
    pending: &Pending,
) -> Result<Runbook> {
    let secret_key = dep.secret_key_of(db);
    if mode == RunbookMode::Rotate && secret_key == "root_password" {
        return Err(refused(ROOT_NOT_ROTATABLE));
    }
    let sites = targets
        .iter()
        .map(|t| site(dep, &dep.config.kube_contexts, &t.env))
        .collect::<Result<Vec<_>>>()?;
    one_cluster_per_environment(&sites)?;
    let mut b = Builder {
        dep,
        pending,
        db,
        secret_key: secret_key.clone(),
        steps: Vec::new(),
        warnings: Vec::new(),
        configured: sites
            .iter()
            .filter_map(|s| Some((s.env.clone(), s.context.clone()?)))
            .collect(),
    };
    let title = match mode {
        RunbookMode::Add => format!("adding the `{}` database", db.name),
        RunbookMode::Rotate => format!("rotating the password of the `{}` database", db.name),
        RunbookMode::Remove => format!("removing the `{}` database", db.name),
        RunbookMode::Move => {
            return Err(bad_input(
                "a move's runbook needs the new server: --move-to URL",
            ))
        }
    };
    match mode {
        RunbookMode::Add => add_steps(&mut b, targets, &sites),
        RunbookMode::Rotate => rotate_steps(&mut b, targets, &sites),
        RunbookMode::Remove => remove_steps(&mut b, targets, &sites),
        RunbookMode::Move => {}
    }
    Ok(Runbook {
        title,
        mode,
        steps: b.steps,
        warnings: b.warnings,
        compared: None,
        database: db.name.clone(),
        upstream: None,
    })
}

/// Refuses two environments of the runbook whose configured kubectl contexts are the
/// same: their steps (a sync, a drop) would run twice in one cluster.
fn one_cluster_per_environment(sites: &[EnvSite]) -> Result<()> {
    for (i, first) in sites.iter().enumerate() {
        let Some(context) = &first.context else {
            continue;
        };
        if let Some(second) = sites[i + 1..]
            .iter()
            .find(|s| s.context.as_ref() == Some(context))
        {
            return Err(bad_input(format!(
                "xtask.toml [kube_contexts]: {} and {} have the same context {context:?}; each environment \
                 needs the context of its own cluster",
                first.env, second.env
            )));
        }
    }
    Ok(())
}

/// Where the database passwords come from, for the runbook's first line.
pub(super) fn password_source(dep: &Deployment) -> String {
    match &dep.secrets {
        Secrets::Absent(_) => "Vault, put there by hand: no secret generator".to_string(),
        _ => dep.layout.secret_source.relative.clone(),
    }
}

fn add_steps(b: &mut Builder, targets: &[Target], sites: &[EnvSite]) {
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

fn rotate_steps(b: &mut Builder, targets: &[Target], sites: &[EnvSite]) {
    let key = b.secret_key.clone();
    for (target, site) in targets.iter().zip(sites) {
        let env = target.env.as_str();
        if matches!(b.dep.secrets, Secrets::Yaml(_)) {
            follow::regenerate_at_source(b, env, site);
            b.cluster(Phase::Restart, env, site);
            b.refresh_secret(Phase::Restart, env, site);
            b.restart_postgres(Phase::Restart, env, site);
            b.verify(Phase::Restart, env, site, target);
            b.restart_consumers(Phase::Restart, env, site);
            continue;
        }
        let (path, step) = b.vault_step(
            Phase::NewPassword,
            env,
            site,
            format!("A new value for {key} in Vault"),
        );
        step.notes.extend([
            "This overwrites the live password, deliberately: the application keeps the old one until it \
             restarts below."
                .to_string(),
            "(root_password cannot be rotated this way: the server takes it only at its first initdb.)"
                .to_string(),
        ]);
        step.confirm = Some(format!("Overwrite {key} in Vault for {env}?"));
        step.commands
            .push(format!("rotate_password {path} {}", quote(&key)));
        b.copy_to_consumers(Phase::NewPassword, env, site);
        b.cluster(Phase::Restart, env, site);
        b.refresh_secret(Phase::Restart, env, site);
        b.restart_postgres(Phase::Restart, env, site);
        b.verify(Phase::Restart, env, site, target);
        b.restart_consumers(Phase::Restart, env, site);
    }
}

fn remove_steps(b: &mut Builder, targets: &[Target], sites: &[EnvSite]) {
    let key = b.secret_key.clone();
    for (target, site) in targets.iter().zip(sites) {
        let env = target.env.as_str();
        b.cluster(Phase::AfterMerge, env, site);
        b.sync(Phase::AfterMerge, env, site);
        let kubectl = kubectl(site);
        let context = context_word(site);
        let file = format!("{}-{env}.dump", target.database);
        let step = b.step(
            Phase::AfterMerge,
            Some(env),
            format!("Dump {} to a local file", target.database),
        );
        step.notes.push(format!(
            "To $PGDB_DUMP_DIR/{file} (default ~/.local/state/pgdb/dumps), outside the repository."
        ));
        step.commands.push(format!(
            "dump_database {context} {} {}",
            quote(&target.database),
            quote(&file)
        ));
        let mut sql = format!("DROP DATABASE {};", target.database);
        let what = if target.role_shared {
            sql.push_str(&format!(
                "\n-- the role {} stays: another entry still uses it",
                target.user
            ));
            format!("the database {}", target.database)
        } else {
            sql.push_str(&format!("\nDROP ROLE {};", target.user));
            format!(
                "the database {} and the role {}",
                target.database, target.user
            )
        };
        let step = b.step(Phase::AfterMerge, Some(env), format!("Drop {what}"));
        step.notes.push(format!(
            "DROP DATABASE cannot be undone: keep $PGDB_DUMP_DIR/{file} until you are sure."
        ));
        step.confirm = Some(format!("Drop {what} in {env} (dumped to {file})?"));
        step.commands.push(format!(
            "dump_exists {} && {kubectl} -n postgres exec -i deployment/postgres -- psql -U postgres -v ON_ERROR_STOP=1 <<'SQL'\n{sql}\nSQL",
            quote(&file)
        ));
        if matches!(b.dep.secrets, Secrets::Generator(_)) || site.vault_path.is_some() {
            let (path, step) = b.vault_step(
                Phase::DeleteKey,
                env,
                site,
                format!("Delete {key} from the Vault secret"),
            );
            step.notes.push(
                "Reads the secret as JSON, drops the key with python3 and writes the rest back from \
                 standard input; every other key stays as it is."
                    .into(),
            );
            step.confirm = Some(format!("Delete {key} from Vault for {env}?"));
            step.commands
                .push(format!("delete_vault_key {path} {}", quote(&key)));
        }
    }
}

/// Whether the database is in the deployed version (`upstream`) of an environment's
/// values file; false without one (then every step is printed, each with its check).
fn committed(dep: &Deployment, env: &str, values_key: &str, upstream: Option<&Upstream>) -> bool {
    let (Some(values), Some(upstream)) = (dep.env(env), upstream) else {
        return false;
    };
    let root: &Path = &dep.layout.phalanx;
    crate::git::show(root, &upstream.rev, &values.env.values.relative).is_some_and(|text| {
        crate::files::values::parse(&text, dep.layout.nesting)
            .is_ok_and(|v| v.entry(values_key).is_some())
    })
}

/// The runbook's header line on what it takes as deployed.
pub fn compared_with(upstream: Option<&Upstream>) -> String {
    match upstream {
        Some(u) => format!(
            "What is deployed: {} ({}, commit {}); an environment whose values file there already \
             has the database only gets the verification.",
            u.rev, u.source, u.commit
        ),
        None => {
            "What is deployed: unknown (no origin/HEAD or origin/main, and no --deployed REV): \
                 every step is printed, and each checks before it changes anything."
                .to_string()
        }
    }
}

/// The targets of a database in the named environments (or every one that has it).
pub fn targets(
    dep: &Deployment,
    db: &DbName,
    envs: &[String],
    upstream: Option<&Upstream>,
) -> Result<Vec<Target>> {
    let key = db.values_key();
    let names: Vec<String> = if envs.is_empty() {
        dep.envs
            .iter()
            .filter(|e| e.parsed.entry(&key).is_some())
            .map(|e| e.env.name.clone())
            .collect()
    } else {
        dep.layout
            .select_environments(envs)?
            .into_iter()
            .map(|e| e.name)
            .collect()
    };
    if names.is_empty() {
        return Err(bad_input(format!(
            "no environment has `{key}`; add it with `{} add-db {}` or name environments with --env",
            crate::flags::program_name(),
            quote(&db.name)
        )));
    }
    names
        .into_iter()
        .map(|env| {
            let loaded = dep.env(&env);
            let values = loaded.map(|e| &e.parsed);
            let entry = values.and_then(|v| v.entry(&key));
            // A value from the file becomes SQL and shell words only once checked,
            // refused at its file and line.
            let at = match (loaded, entry) {
                (Some(l), Some(e)) => format!("{}:{}", l.env.values, e.line),
                _ => format!("values-{env}.yaml"),
            };
            let checked = |what: &str, value: Option<&String>| {
                SqlIdent::parse_at(&at, what, value.unwrap_or(&db.name))
            };
            let user = checked("user", entry.and_then(|e| e.user.as_ref()))?;
            let database = checked("db", entry.and_then(|e| e.db.as_ref()))?;
            let role_shared = values.is_some_and(|v| {
                v.entries
                    .iter()
                    .any(|e| e.key != key && e.user.as_deref() == Some(user.as_str()))
            });
            let exists = committed(dep, &env, &key, upstream);
            Ok(Target {
                env,
                user,
                database,
                role_shared,
                exists,
            })
        })
        .collect()
}

/// A warning per named environment whose values file lacks the database: adding or
/// rotating there would restart postgres for nothing and then not find the database.
fn envs_without_entry(dep: &Deployment, db: &DbName, targets: &[Target]) -> Vec<String> {
    let key = db.values_key();
    targets
        .iter()
        .filter_map(|t| dep.env(&t.env))
        .filter(|e| e.parsed.entry(&key).is_none())
        .map(|e| {
            format!(
                "{}: {} has no `{key}`: its steps are for once `{} add-db {} --env {}` has added it",
                e.env.name,
                e.env.values.relative,
                crate::flags::program_name(),
                quote(&db.name),
                quote(&e.env.name)
            )
        })
        .collect()
}

/// The runbook as JSON (`runbook_json`), with the helpers file written first.
pub fn to_json(runbook: &Runbook, dep: &Deployment) -> json::Json {
    let helpers = helpers_file::write(&text::helpers_file_text(runbook), &dep.layout.phalanx);
    json::runbook_json(runbook, dep, helpers.as_deref())
}

/// Prints a runbook in the chosen form, and its warnings on stderr.
pub fn print(runbook: &Runbook, dep: &Deployment, mode: flags::RenderMode) {
    for w in &runbook.warnings {
        eprintln!("warning: {w}");
    }
    match mode {
        flags::RenderMode::Script => out!("{}", render_script(runbook, dep)),
        flags::RenderMode::Text => {
            let helpers =
                helpers_file::write(&text::helpers_file_text(runbook), &dep.layout.phalanx);
            out!("{}", render_text(runbook, dep, helpers.as_deref()));
        }
    }
}

impl flags::Runbook {
    pub fn run(self, config: Config) -> Result<()> {
        if self.mode == RunbookMode::Rotate && self.name == "root" {
            return Err(refused(ROOT_NOT_ROTATABLE));
        }
        let db = crate::names::parse_db_name(&self.name)?;
        let dep = Deployment::load(config)?;
        let upstream = crate::git::upstream(&dep.layout.phalanx, self.deployed.as_deref())?;
        // A database the files no longer hold may still be deployed (its removal
        // committed or merged, its runbook not yet run).
        let removed = || crate::known::in_history(&dep, &db) == Some(true);
        if !(self.mode == RunbookMode::Remove && removed()) {
            // A typo gets the closest name; a new name, how to add it.
            let advice = if crate::known::did_you_mean(&dep, &db.name).is_empty() {
                format!(
                    "there is no runbook for it; add it with `{} add-db {}` (and --env), which prints its runbook",
                    crate::flags::program_name(),
                    db.name
                )
            } else {
                "there is no runbook for it".to_string()
            };
            crate::known::require(&dep, &db, &advice)?;
        }
        let targets = targets(&dep, &db, &self.envs, upstream.as_ref())?;
        let mut runbook = match &self.move_to {
            Some(url) => {
                let to = crate::move_db::target::parse(url)?;
                build_move(&dep, &db, &targets, &to, &Pending::default())?
            }
            None => build(&dep, &db, &targets, self.mode, &Pending::default())?,
        };
        runbook.compared = Some(compared_with(upstream.as_ref()));
        runbook.upstream = upstream;
        if self.mode != RunbookMode::Remove {
            runbook
                .warnings
                .extend(envs_without_entry(&dep, &db, &targets));
        }
        if self.format == flags::Format::Json {
            for w in &runbook.warnings {
                eprintln!("warning: {w}");
            }
            outln!("{}", to_json(&runbook, &dep).pretty());
        } else {
            print(&runbook, &dep, self.render);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recreate_is_read_from_the_template() {
        let block = "spec:\n  replicas: 1\n  strategy:\n    type: Recreate\n  selector:\n";
        assert!(uses_recreate(block));
        assert!(uses_recreate(
            "spec:\n    strategy:\n        type: \"Recreate\"\n"
        ));
        assert!(uses_recreate("spec:\n  strategy: {type: Recreate}\n"));
        assert!(!uses_recreate(
            "spec:\n  strategy:\n    type: RollingUpdate\n"
        ));
        assert!(!uses_recreate("spec:\n  replicas: 1\n"));
        // A `type: Recreate` far from any strategy (say in a comment block) does not count.
        assert!(!uses_recreate(
            "strategy:\n  a: 1\n  b: 2\n  c: 3\n  d: 4\n  type: Recreate\n"
        ));
    }

    #[test]
    fn every_phase_has_a_distinct_script_name() {
        let phases = [
            Phase::BeforeMerge,
            Phase::ChartPublished,
            Phase::AfterMerge,
            Phase::NewPassword,
            Phase::Restart,
            Phase::DeleteKey,
            Phase::Preflight,
            Phase::Freeze,
            Phase::Copy,
            Phase::Verify,
            Phase::Switch,
            Phase::Cleanup,
            Phase::Rollback,
        ];
        let mut names: Vec<&str> = phases.iter().map(|p| p.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), phases.len());
        assert!(names
            .iter()
            .all(|n| n.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')));
    }

    #[test]
    fn a_step_asks_before_its_commands_only_when_destructive() {
        let mut step = Step {
            phase: Phase::AfterMerge,
            env: Some("base".into()),
            title: "t".into(),
            notes: vec![],
            commands: vec!["a".into(), "b".into()],
            confirm: None,
            guard: None,
        };
        assert_eq!(text::step_body(&step), "a\nb\n");
        step.confirm = Some("Drop it's data?".into());
        assert_eq!(
            text::step_body(&step),
            "if confirm \"Drop it's data?\"; then\na\nb\nfi\n"
        );
        step.guard = Some("ready x".into());
        assert_eq!(
            text::step_body(&step),
            "if ready x && confirm \"Drop it's data?\"; then\na\nb\nfi\n"
        );
    }
}

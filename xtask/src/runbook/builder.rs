//! The step builder: the steps every flow shares (log in to Vault, confirm the cluster,
//! refresh the secret, sync, restart, verify, the applications that copy the password),
//! appended to one list with the warnings beside it.

use super::follow;
use super::model::{Pending, Phase, Step, Target};
use super::shell_line::{cmd, Line, Word};
use super::site::{context_variable, context_word, kubectl, message_word, uses_recreate, EnvSite};
use crate::deployment::{Deployment, Secrets};
use crate::names::DbName;

/// The applications that copy a database's password (also those a pending edit adds)
/// and run in `env` ([`follow::runs_in`]), restarted after postgres.
/// A generator's component (`_vo_cutouts`) is the application `vo-cutouts`:
/// Kubernetes names hold no `_`.
pub(super) fn consumers(
    dep: &Deployment,
    pending: &Pending,
    secret_key: &str,
    env: &str,
) -> Vec<String> {
    let mut apps: Vec<String> = dep
        .consumers_of(secret_key)
        .into_iter()
        .chain(pending.consumers.iter().cloned())
        .filter(|name| follow::runs_in(dep, env, name))
        .map(|name| name.replace('_', "-"))
        .collect();
    apps.sort();
    apps.dedup();
    apps
}

pub(super) struct Builder<'a> {
    pub(super) dep: &'a Deployment,
    pub(super) pending: &'a Pending,
    pub(super) db: &'a DbName,
    pub(super) secret_key: String,
    pub(super) steps: Vec<Step>,
    pub(super) warnings: Vec<String>,
    /// The environments of the runbook with a configured kubectl context, and it.
    pub(super) configured: Vec<(String, String)>,
}

impl Builder<'_> {
    pub(super) fn step(&mut self, phase: Phase, env: Option<&str>, title: String) -> &mut Step {
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

    /// The Vault path of the environment's `postgres` secret as a shell word, or the
    /// variable the operator sets (with a warning) when nothing names it.
    pub(super) fn vault_path(&mut self, env: &str, site: &EnvSite) -> Word {
        match &site.vault_path {
            Some(path) => Word::quoted(path),
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
                Word::Raw(format!(
                    "\"${{POSTGRES_VAULT_PATH:?set it to the Vault path of the postgres secret of {}}}\"",
                    message_word(env)
                ))
            }
        }
    }

    /// The kubectl block's first step when no context is configured.
    pub(super) fn cluster(&mut self, phase: Phase, env: &str, site: &EnvSite) {
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
                step.run(cmd("remember_context").arg(other).arg(context));
            }
            step.run(cmd("confirm_context").arg(env).raw(context_variable(env)));
        }
    }

    /// A step `title` on the environment's `postgres` secret in Vault, after a step
    /// that logs in to Vault; with the secret's (quoted) path.
    pub(super) fn vault_step(
        &mut self,
        phase: Phase,
        env: &str,
        site: &EnvSite,
        title: String,
    ) -> (Word, &mut Step) {
        let path = self.vault_path(env, site);
        self.login_step(phase, env, site);
        (path, self.step(phase, Some(env), title))
    }

    pub(super) fn vault_login(&self, step_env: &str, site: &EnvSite) -> Line {
        cmd("vault_login").arg(step_env).arg(&site.vault_addr)
    }

    /// The Vault login as a block of its own: its token prompt reads what is pasted
    /// next, so no other command may follow it in the same pasted block.
    pub(super) fn login_step(&mut self, phase: Phase, env: &str, site: &EnvSite) {
        let login = self.vault_login(env, site);
        let step = self.step(phase, Some(env), "Log in to Vault".into());
        step.run(login);
    }

    pub(super) fn refresh_secret(&mut self, phase: Phase, env: &str, site: &EnvSite) {
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
        step.run(kubectl.raw("-n postgres delete secret postgres --ignore-not-found"));
        step.run(
            cmd("wait_for_secret")
                .word(context.clone())
                .raw("postgres postgres"),
        );
        step.run(cmd("check_secret_key").word(context).arg(key));
    }

    pub(super) fn rollout_wait(&self, site: &EnvSite) -> Line {
        kubectl(site).raw("-n postgres rollout status deployment/postgres --timeout=10m")
    }

    /// The sync step (run only where `guard`, a shell check, passes first), then, where
    /// the Deployment does not use `Recreate`, the step that unsticks its rollout.
    pub(super) fn sync(&mut self, phase: Phase, env: &str, site: &EnvSite, guard: Option<Line>) {
        let argocd = cmd("argocd")
            .raw("app sync argocd/postgres --core --kube-context")
            .word(context_word(site));
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
        step.run(argocd);
        step.run(wait);
        step.guard = guard.map(|g| g.to_string());
        if !recreate {
            self.unstick(phase, env, site, &template);
        }
    }

    /// Where the Deployment does not use `Recreate`, the step after the sync: an old
    /// pod hanging in Terminating holds the rollout; its ReplicaSet is deleted once
    /// confirmed (`unstick_rollout` asks; with nothing stuck it does nothing).
    fn unstick(&mut self, phase: Phase, env: &str, site: &EnvSite, template: &str) {
        let step = self.step(
            phase,
            Some(env),
            "Unstick the rollout if an old pod hangs".into(),
        );
        step.notes.push(format!(
            "{template} does not use the Recreate strategy: an old pod that does not terminate holds the \
             rollout. This finds the postgres pods stuck in Terminating and deletes the ReplicaSet that owns \
             them once you confirm; with none stuck it does nothing."
        ));
        step.run(cmd("unstick_rollout").word(context_word(site)));
    }

    pub(super) fn restart_postgres(&mut self, phase: Phase, env: &str, site: &EnvSite) {
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
        step.run(kubectl.raw("-n postgres rollout restart deployment/postgres"));
        step.run(wait);
    }

    pub(super) fn verify(&mut self, phase: Phase, env: &str, site: &EnvSite, target: &Target) {
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
        step.run(
            cmd("check_database")
                .word(context.clone())
                .arg(target.database.as_str()),
        );
        step.run(cmd("check_login").word(context).arg(id));
    }

    /// Gives the applications that copy the password the (new) value, before the
    /// merge or right after a rotation: `phalanx secrets sync` copies it in the
    /// `secrets.yaml` layout; with a generator the copy is put by hand, Vault to Vault.
    pub(super) fn copy_to_consumers(&mut self, phase: Phase, env: &str, site: &EnvSite) {
        let apps = consumers(self.dep, self.pending, &self.secret_key, env);
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
            step.run(cmd("phalanx").raw("secrets sync").arg(env));
        } else {
            step.notes.push(format!(
                "The generator copied {key} into their own Vault secrets when the environment was installed: \
                 the same value goes there too, Vault to Vault through a pipe."
            ));
            step.commands.extend(commands);
        }
    }

    pub(super) fn restart_consumers(&mut self, phase: Phase, env: &str, site: &EnvSite) {
        let mut apps = consumers(self.dep, self.pending, &self.secret_key, env);
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
            step.run(
                kubectl
                    .clone()
                    .raw("-n")
                    .arg(&app)
                    .raw("rollout restart deployment"),
            );
            step.run(
                kubectl
                    .clone()
                    .raw("-n")
                    .arg(&app)
                    .raw("wait --for=condition=Available deployment --all --timeout=10m"),
            );
        }
    }
}

//! The steps of rotating a database's password: a new value in Vault (or regenerated
//! at its source), then per environment refresh, restart, verify and restart the
//! applications that copy it.

use super::builder::Builder;
use super::follow;
use super::model::{Phase, Target};
use super::shell_line::cmd;
use super::site::EnvSite;
use crate::deployment::Secrets;

pub(super) fn rotate_steps(b: &mut Builder, targets: &[Target], sites: &[EnvSite]) {
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
        step.run(cmd("rotate_password").word(path).arg(key.as_str()));
        b.copy_to_consumers(Phase::NewPassword, env, site);
        b.cluster(Phase::Restart, env, site);
        b.refresh_secret(Phase::Restart, env, site);
        b.restart_postgres(Phase::Restart, env, site);
        b.verify(Phase::Restart, env, site, target);
        b.restart_consumers(Phase::Restart, env, site);
    }
}

//! The steps of removing a database: sync, dump to a local file, drop the database
//! (and the role no other entry uses), then the key out of the Vault secret.

use super::builder::Builder;
use super::model::{Phase, Target};
use super::shell_line::cmd;
use super::site::{context_word, kubectl, EnvSite};
use crate::deployment::Secrets;

pub(super) fn remove_steps(b: &mut Builder, targets: &[Target], sites: &[EnvSite]) {
    let key = b.secret_key.clone();
    for (target, site) in targets.iter().zip(sites) {
        let env = target.env.as_str();
        b.cluster(Phase::AfterMerge, env, site);
        b.sync(Phase::AfterMerge, env, site, None);
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
        step.run(
            cmd("dump_database")
                .word(context)
                .arg(target.database.as_str())
                .arg(file.as_str()),
        );
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
        let psql = kubectl
            .raw("-n postgres exec -i deployment/postgres -- psql -U postgres -v ON_ERROR_STOP=1");
        step.commands.push(format!(
            "{} && {psql} <<'SQL'\n{sql}\nSQL",
            cmd("dump_exists").arg(file.as_str())
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
            step.run(cmd("delete_vault_key").word(path).arg(key.as_str()));
        }
    }
}

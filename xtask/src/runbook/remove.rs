//! The steps of removing a database: sync, dump to a local file, drop the database
//! (and the role no other entry uses), then the key out of the Vault secret.

use super::builder::Builder;
use super::model::{Phase, Target};
use super::site::{context_word, kubectl, EnvSite};
use crate::deployment::Secrets;
use crate::shell::quote;

pub(super) fn remove_steps(b: &mut Builder, targets: &[Target], sites: &[EnvSite]) {
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

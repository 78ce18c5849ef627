//! `runbook`: the steps that follow an edit, derived from the deployment, as one list
//! of steps that `text` renders to paste and `script` renders as a bash script.
//!
//! Adding: before the merge, every chosen environment's password goes into Vault where
//! the key is absent (or `phalanx secrets audit`/`sync` in the `secrets.yaml` layout);
//! in the split layout the charts change is merged and published first; after the merge,
//! per environment: refresh the `postgres` secret, sync, wait, verify, restart the
//! applications that copy the password. An environment whose committed files already
//! hold the database only gets the verification. Rotating and removing have their own
//! phases. Every word from a file is shell-quoted (by `shell_line`, the one place shell
//! lines are rendered); no password is ever printed or passed as an argument (the
//! helpers in `templates/runbook-helpers.sh` pipe them).
//!
//! The rooms: `model` (phases, steps, targets), `site` (Vault and cluster facts),
//! `targets` (which environments, what is deployed), `builder` (the shared steps),
//! `add`/`rotate`/`remove`/`move_steps`/`follow` (the flows), `shell_line`, and the
//! renderers `text`, `script` and `json`. This file is the command, `build` and `print`.

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

mod add;
mod builder;
mod follow;
mod helpers_file;
pub mod json;
mod model;
mod move_steps;
mod remove;
mod rotate;
mod script;
mod shell_line;
mod site;
mod targets;
mod text;

use anyhow::Result;

use crate::config::Config;
use crate::deployment::Deployment;
use crate::error::{bad_input, refused};
use crate::flags::{self, RunbookMode};
use crate::names::DbName;

use builder::Builder;
pub use model::{Pending, Runbook, Target};
pub use move_steps::build_move;
pub use script::render_script;
pub use targets::{compared_with, targets};
pub use text::render_text;

const ROOT_NOT_ROTATABLE: &str =
    "root_password cannot be rotated this way: it becomes the superuser's password only at the \
     first initdb, so a new value in Vault changes nothing in the server";

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
        .map(|t| site::site(dep, &dep.config.kube_contexts, &t.env))
        .collect::<Result<Vec<_>>>()?;
    site::one_cluster_per_environment(&sites)?;
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
        RunbookMode::Add => add::add_steps(&mut b, targets, &sites),
        RunbookMode::Rotate => rotate::rotate_steps(&mut b, targets, &sites),
        RunbookMode::Remove => remove::remove_steps(&mut b, targets, &sites),
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
                .extend(targets::envs_without_entry(&dep, &db, &targets));
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

//! The runbook's model: the phases, the steps (title, prose notes, shell lines, the
//! question before a destructive one), one environment's target, the whole runbook, and
//! what a pending edit changes for it. No file is read here.

use super::shell_line::Line;
use crate::deployment::Deployment;
use crate::flags::RunbookMode;
use crate::git::Upstream;
use crate::layout::Kind;
use crate::names::SqlIdent;

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

impl Step {
    /// Appends a shell line to the step's commands, rendered by the shell-line model.
    pub fn run(&mut self, line: Line) {
        self.commands.push(line.to_string());
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}

//! What an edit would break on the other side: the secret keys that `phalanx secrets
//! sync` could resolve before the planned texts and cannot after, each explained on
//! one line. `add-db` and `move-db` refuse such a plan with these lines.

use super::resolve::{Reason, Source, Unresolved};
use super::Model;
use crate::layout::RepoFile;

impl Model {
    /// One line per key that the planned texts (file, new text) leave unresolvable in
    /// an environment where it resolved before: `path:line: app/key copies SOURCE, but
    /// WHY`. Empty when nothing breaks, or when the repository has no `environments/`
    /// (then nothing says which applications run where).
    pub fn broken_by<'a>(
        &self,
        planned: impl IntoIterator<Item = (&'a RepoFile, &'a str)>,
    ) -> Vec<String> {
        if !self.environments.known() {
            return Vec::new();
        }
        let after = self.with_planned(planned);
        self.newly_unresolved(&after)
            .iter()
            .map(|(env, u)| self.explain(env, u))
            .collect()
    }

    fn explain(&self, env: &str, u: &Unresolved) -> String {
        let r = &u.required;
        let source = match &r.source {
            Source::Copy { application, key } => format!("{application}/{key}"),
            _ => {
                return format!(
                    "  {}:{}: {}/{} would no longer resolve in {env}",
                    r.file.relative, r.line, r.app, r.key
                )
            }
        };
        let why = match u.reason {
            Reason::AppNotEnabled => {
                let app = source.split('/').next().unwrap_or_default();
                let site = self
                    .environments
                    .envs
                    .get(env)
                    .map(|e| e.switch_site(app))
                    .unwrap_or_default();
                format!("{app} is not enabled in {env} ({site})")
            }
            Reason::KeyAbsent => {
                format!("{source} does not exist in {env} (its `if:` is false there)")
            }
            Reason::KeyUndeclared => format!("{source} is declared nowhere"),
            Reason::KeyUnresolved => format!("{source} does not resolve in {env}"),
        };
        format!(
            "  {}:{}: {}/{} copies {source}, but {why}",
            r.file.relative, r.line, r.app, r.key
        )
    }
}

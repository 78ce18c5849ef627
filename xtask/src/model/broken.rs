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

#[cfg(test)]
mod tests {
    use crate::layout::RepoFile;
    use crate::model::test_model;

    fn broken_by(file: &str, text: &str) -> Vec<String> {
        let model = test_model();
        let file = RepoFile::new(&model.layout.phalanx, file);
        model.broken_by([(&file, text)])
    }

    #[test]
    fn a_copy_whose_source_is_gone_is_one_line() {
        let lines = broken_by(
            "applications/gafaelfawr/values-usdfdev.yaml",
            "config:\n  internalDatabase: false\n",
        );
        assert_eq!(
            lines,
            ["  applications/postgres/secrets.yaml:7: postgres/gafaelfawr_password copies \
              gafaelfawr/database-password, but gafaelfawr/database-password does not exist in usdfdev \
              (its `if:` is false there)"]
        );
    }

    #[test]
    fn a_copy_from_an_application_not_enabled_names_the_switch() {
        let text = "x:\n  description: d\n  copy:\n    application: times-square\n    key: TS_GITHUB_APP_PRIVATE_KEY\n";
        let lines = broken_by("applications/exposurelog/secrets-usdfdev.yaml", text);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with(
                "  applications/exposurelog/secrets-usdfdev.yaml:1: exposurelog/x copies \
                 times-square/TS_GITHUB_APP_PRIVATE_KEY, but times-square is not enabled in usdfdev ("
            ),
            "{}",
            lines[0]
        );
    }

    #[test]
    fn a_harmless_text_breaks_nothing() {
        let path = "applications/nublado/values-idfdev.yaml";
        let text = std::fs::read_to_string(
            crate::config::workspace_root()
                .join("tests/fixtures/check/consumers/phalanx")
                .join(path),
        )
        .unwrap();
        assert!(broken_by(path, &format!("{text}extra: 1\n")).is_empty());
    }
}

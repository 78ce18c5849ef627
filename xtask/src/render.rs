//! The snippets in `templates/`, compiled in, and their placeholders.
//!
//! A placeholder is `@@name@@`: Helm's `{{ }}` and Python's braces appear in the
//! snippets themselves, so neither can mark a placeholder.

pub const HELM_BLOCK_PLAIN: &str = include_str!("../../templates/helm-block-plain.yaml");
pub const HELM_BLOCK_QUOTED: &str = include_str!("../../templates/helm-block-quoted.yaml");
pub const GENERATOR_LINE: &str = include_str!("../../templates/generator-line.py");
pub const GENERATOR_CALL_WRAPPED: &str = include_str!("../../templates/generator-call-wrapped.py");
pub const GENERATOR_MODULE_CALL: &str = include_str!("../../templates/generator-module-call.py");
pub const GENERATOR_DICT_ITEM: &str = include_str!("../../templates/generator-dict-item.py");
pub const SECRETS_ENTRY_GENERATE: &str =
    include_str!("../../templates/secrets-entry-generate.yaml");
pub const SECRETS_ENTRY_COPY: &str = include_str!("../../templates/secrets-entry-copy.yaml");
pub const SECRETS_ENTRY_STATIC: &str = include_str!("../../templates/secrets-entry-static.yaml");
pub const SECRETS_ENTRY_APP_COPY: &str =
    include_str!("../../templates/secrets-entry-app-copy.yaml");
pub const GENERATOR_APP_COPY: &str = include_str!("../../templates/generator-app-copy.py");

/// Replaces every `@@name@@` in `template` with its value.
pub fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find("@@") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("@@").map(|end| (&after[..end], end)) {
            Some((name, end)) if vars.iter().any(|(n, _)| *n == name) => {
                let value = vars.iter().find(|(n, _)| *n == name).map_or("", |(_, v)| v);
                out.push_str(value);
                rest = &after[end + 2..];
            }
            _ => {
                out.push_str("@@");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_and_braces_kept() {
        let out = render(
            "{{ .Values.@@key@@ }} @@q@@x@@q@@ @@other",
            &[("key", "a_db"), ("q", "\"")],
        );
        assert_eq!(out, "{{ .Values.a_db }} \"x\" @@other");
    }

    #[test]
    fn every_snippet_placeholder_is_known() {
        let known = [
            "values_key",
            "env_id",
            "secret_key",
            "q",
            "name",
            "copy_app",
            "copy_key",
            "env",
            "vault_addr",
            "vault_path",
            "instance",
            "user",
            "database",
            "namespace",
            "app",
            "layout",
            "secret_source",
            "sql_check",
            "drop_sql",
            "secret_jsonpath",
            "target",
            "app_key",
            "app_component",
        ];
        for snippet in [
            HELM_BLOCK_PLAIN,
            HELM_BLOCK_QUOTED,
            GENERATOR_LINE,
            GENERATOR_CALL_WRAPPED,
            GENERATOR_MODULE_CALL,
            GENERATOR_DICT_ITEM,
            SECRETS_ENTRY_GENERATE,
            SECRETS_ENTRY_COPY,
            SECRETS_ENTRY_STATIC,
            SECRETS_ENTRY_APP_COPY,
            GENERATOR_APP_COPY,
        ] {
            let vars: Vec<(&str, &str)> = known.iter().map(|k| (*k, "")).collect();
            let out = render(snippet, &vars);
            assert!(!out.contains("@@"), "unknown placeholder in:\n{snippet}");
        }
    }
}

//! Site facts: what the runbook knows about an environment's Vault and cluster (the
//! Vault address and path, the kubectl context) and the deployment facts its steps
//! depend on (the `Recreate` strategy, the published chart), with the shell words
//! that name an environment's cluster.

use anyhow::Result;

use super::shell_line::{cmd, Line, Word};
use crate::deployment::{Deployment, Secrets};
use crate::error::bad_input;

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
pub(super) fn published_chart(
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

/// `kubectl --context CTX` when configured, else the context confirmed by `confirm_context`.
pub(super) fn kubectl(site: &EnvSite) -> Line {
    cmd("kubectl").raw("--context").word(context_word(site))
}

/// The shell variable holding an environment's confirmed context (one per environment,
/// so a block pasted for one environment never runs in another's cluster).
pub(super) fn context_variable(env: &str) -> String {
    let safe: String = env
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("KUBE_CONTEXT_{safe}")
}

/// The environment's name inside a `${VAR:?message}`, whose message the shell expands
/// (`$(...)`, quotes): anything but letters, digits, `-`, `_` and `.` becomes `_`.
pub(super) fn message_word(env: &str) -> String {
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

/// The kubectl context of an environment as a shell word: the configured one, else
/// the variable `confirm_context` sets (the block stops when it is unset).
pub(super) fn context_word(site: &EnvSite) -> Word {
    match &site.context {
        Some(context) => Word::quoted(context),
        None => Word::Raw(format!(
            "\"${{{}:?first confirm the cluster of {}}}\"",
            context_variable(&site.env),
            message_word(&site.env)
        )),
    }
}

/// Refuses two environments of the runbook whose configured kubectl contexts are the
/// same: their steps (a sync, a drop) would run twice in one cluster.
pub(super) fn one_cluster_per_environment(sites: &[EnvSite]) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn site_of(env: &str, context: Option<&str>) -> EnvSite {
        EnvSite {
            env: env.into(),
            vault_addr: "https://vault.example.org".into(),
            vault_path: None,
            context: context.map(str::to_string),
        }
    }

    #[test]
    fn the_context_is_the_configured_one_quoted_else_the_confirmed_variable() {
        assert_eq!(
            kubectl(&site_of("base", Some("my ctx"))).to_string(),
            "kubectl --context 'my ctx'"
        );
        assert_eq!(
            context_word(&site_of("idf-dev", None)).to_string(),
            "\"${KUBE_CONTEXT_idf_dev:?first confirm the cluster of idf-dev}\""
        );
        // The shell expands the message: nothing of the name may act there.
        assert_eq!(message_word("a$(b)'c.d"), "a__b__c.d");
        assert_eq!(context_variable("a.b-c"), "KUBE_CONTEXT_a_b_c");
    }

    #[test]
    fn two_environments_may_not_share_a_configured_context() {
        let sites = [
            site_of("a", Some("x")),
            site_of("b", None),
            site_of("c", None),
        ];
        assert!(one_cluster_per_environment(&sites).is_ok());
        let sites = [site_of("a", Some("x")), site_of("b", Some("x"))];
        let error = one_cluster_per_environment(&sites).unwrap_err().to_string();
        assert!(
            error.contains("a and b have the same context \"x\""),
            "{error}"
        );
    }

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
}

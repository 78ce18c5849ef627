use super::*;

const HEAD: &str = "import secrets\n\n\nclass SecretGenerator:\n    def generate(self):\n        self._postgres()\n\n";
const NEXT: &str = "\n    def _nublado(self):\n        self._set_generated(\"nublado\", \"crypto_key\", secrets.token_hex(32))\n";

fn cat(parts: &[&str]) -> String {
    parts.concat()
}

fn cases() -> Vec<(&'static str, String, &'static str, String)> {
    vec![
        (
            "single-line calls",
            cat(&[HEAD, "    def _postgres(self):\n        self._set_generated(\"postgres\", \"root_password\", secrets.token_hex(64))\n        self._set_generated(\"postgres\", \"a_password\", secrets.token_hex(32))\n", NEXT]),
            "exposurelog_password",
            cat(&[HEAD, "    def _postgres(self):\n        self._set_generated(\"postgres\", \"root_password\", secrets.token_hex(64))\n        self._set_generated(\"postgres\", \"a_password\", secrets.token_hex(32))\n        self._set_generated(\"postgres\", \"exposurelog_password\", secrets.token_hex(32))\n", NEXT]),
        ),
        (
            "black-wrapped three-line calls",
            cat(&[HEAD, "    def _postgres(self):\n        self._set_generated(\n            \"postgres\", \"jupyterhub_password\", secrets.token_hex(32)\n        )\n        self._set_generated(\"postgres\", \"root_password\", secrets.token_hex(64))\n        self._set_generated(\n            \"postgres\", \"gafaelfawr_password\", secrets.token_hex(32)\n        )\n", NEXT]),
            "exposurelog_password",
            cat(&[HEAD, "    def _postgres(self):\n        self._set_generated(\n            \"postgres\", \"jupyterhub_password\", secrets.token_hex(32)\n        )\n        self._set_generated(\"postgres\", \"root_password\", secrets.token_hex(64))\n        self._set_generated(\n            \"postgres\", \"gafaelfawr_password\", secrets.token_hex(32)\n        )\n        self._set_generated(\n            \"postgres\", \"exposurelog_password\", secrets.token_hex(32)\n        )\n", NEXT]),
        ),
        (
            "wrapped calls, but a key short enough for one line as the single-line ones",
            cat(&[HEAD, "    def _postgres(self):\n        self._set_generated(\"postgres\", \"root_password\", secrets.token_hex(64))\n        self._set_generated(\n            \"postgres\", \"gafaelfawr_password\", secrets.token_hex(32)\n        )\n"]),
            "ab_password",
            cat(&[HEAD, "    def _postgres(self):\n        self._set_generated(\"postgres\", \"root_password\", secrets.token_hex(64))\n        self._set_generated(\n            \"postgres\", \"gafaelfawr_password\", secrets.token_hex(32)\n        )\n        self._set_generated(\"postgres\", \"ab_password\", secrets.token_hex(32))\n"]),
        ),
        (
            "single quotes, 2-space indentation",
            "class G:\n  def _postgres(self):\n    self._set_generated('postgres', 'root_password', secrets.token_hex(64))\n".to_string(),
            "exposurelog_password",
            "class G:\n  def _postgres(self):\n    self._set_generated('postgres', 'root_password', secrets.token_hex(64))\n    self._set_generated('postgres', 'exposurelog_password', secrets.token_hex(32))\n".to_string(),
        ),
        (
            "after the last generated call, before a hand-set one",
            "class G:\n    def _postgres(self):\n        self._set_generated(\"postgres\", \"root_password\", secrets.token_hex(64))\n        self._set(\"postgres\", \"legacy_password\", self._ask())\n".to_string(),
            "exposurelog_password",
            "class G:\n    def _postgres(self):\n        self._set_generated(\"postgres\", \"root_password\", secrets.token_hex(64))\n        self._set_generated(\"postgres\", \"exposurelog_password\", secrets.token_hex(32))\n        self._set(\"postgres\", \"legacy_password\", self._ask())\n".to_string(),
        ),
        (
            "method with no calls yet",
            cat(&[HEAD, "    def _postgres(self):\n        pass\n", NEXT]),
            "exposurelog_password",
            cat(&[HEAD, "    def _postgres(self):\n        pass\n        self._set_generated(\"postgres\", \"exposurelog_password\", secrets.token_hex(32))\n", NEXT]),
        ),
        (
            "no final newline",
            "class G:\n    def _postgres(self):\n        self._set_generated(\"postgres\", \"root_password\", secrets.token_hex(64))".to_string(),
            "exposurelog_password",
            "class G:\n    def _postgres(self):\n        self._set_generated(\"postgres\", \"root_password\", secrets.token_hex(64))\n        self._set_generated(\"postgres\", \"exposurelog_password\", secrets.token_hex(32))".to_string(),
        ),
    ]
}

#[test]
fn add_line_table() {
    for (what, input, key, output) in cases() {
        let got = add_line(&input, key).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(got, output, "{what}");
        let call = parse(&got).unwrap().call(key).cloned().unwrap();
        assert!(call.generated && call.in_postgres_method, "{what}");
    }
}

#[test]
fn add_then_remove_gives_the_original_bytes() {
    for (what, input, key, _) in cases() {
        let added = add_line(&input, key).unwrap();
        assert_eq!(
            remove_line(&added, key).unwrap_or_else(|e| panic!("{what}: {e}")),
            input,
            "{what}"
        );
    }
}

#[test]
fn a_missing_method_or_a_present_key_is_refused() {
    let err = add_line(
        "class G:\n    def _gafaelfawr(self):\n        pass\n",
        "a_password",
    )
    .unwrap_err();
    assert!(err.message.contains("def _postgres(self)"), "{err}");
    let text = "class G:\n    def _postgres(self):\n        self._set_generated(\n            \"postgres\", \"a_password\", secrets.token_hex(32)\n        )\n";
    let err = add_line(text, "a_password").unwrap_err();
    assert_eq!(err.line, Some(4), "{err}");
    let err = remove_line(text, "a_password").unwrap_err();
    assert!(err.message.contains("empty"), "{err}");
    let err = remove_line(text, "b_password").unwrap_err();
    assert!(err.message.contains("`b_password`"), "{err}");
}

#[test]
fn parse_reads_calls_with_lines() {
    let text = "\
class G:
    def _postgres(self):
        # self._set_generated(\"postgres\", \"commented_password\", x)
        self._set_generated(
            \"postgres\", \"a_password\", secrets.token_hex(32)
        )
        self._set('postgres', 'b_password', value)

    def _other(self):
        self._set_generated(\"nublado\", \"crypto_key\", x)
        self._set(\"postgres\", \"c_password\", f(\")\"))
";
    let g = parse(text).unwrap();
    let method = g.method.clone().unwrap();
    assert_eq!(
        (method.def_line, method.last, method.body_indent),
        (1, 6, 8)
    );
    let calls: Vec<(&str, usize, bool, bool, usize, usize)> = g
        .calls
        .iter()
        .map(|c| {
            (
                c.key.as_str(),
                c.line,
                c.generated,
                c.in_postgres_method,
                c.first,
                c.last,
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            ("a_password", 5, true, true, 3, 5),
            ("b_password", 7, false, true, 6, 6),
            ("c_password", 11, false, false, 10, 10)
        ]
    );
}

#[test]
fn an_unclosed_call_is_an_error_with_its_line() {
    let err = parse(
        "class G:\n    def _postgres(self):\n        self._set_generated(\"postgres\", \"a\",\n",
    )
    .unwrap_err();
    assert_eq!(err.line, Some(3), "{err}");
    assert!(err.message.contains("never closed"), "{err}");
}

#[test]
fn definitions_are_read_from_tokens() {
    for (text, found) in [
        ("class G:\n    def _postgres(self):\n        pass\n", true),
        (
            "class G:\n    def  _postgres( self ) -> None:\n        pass\n",
            true,
        ),
        (
            "class G:\n    def _postgres_extra(self):\n        pass\n",
            false,
        ),
        ("class G:\n    # def _postgres(self):\n    pass\n", false),
        ("class G:\n    \"\"\"def _postgres(self):\"\"\"\n", false),
    ] {
        assert_eq!(parse(text).unwrap().method.is_some(), found, "{text}");
    }
}

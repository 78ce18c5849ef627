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

/// `(what, input, key, output)` for the older shapes and the placement rules.
fn shape_cases() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    vec![
        (
            "module calls, sorted: the alphabetical place",
            "def generate(s):\n    set_generated_secret(s, \"postgres\", \"a_password\", secrets.token_hex(32))\n    set_generated_secret(s, \"postgres\", \"c_password\", secrets.token_hex(32))\n    set_generated_secret(s, \"postgres\", \"d_password\", secrets.token_hex(32))\n",
            "b_password",
            "def generate(s):\n    set_generated_secret(s, \"postgres\", \"a_password\", secrets.token_hex(32))\n    set_generated_secret(s, \"postgres\", \"b_password\", secrets.token_hex(32))\n    set_generated_secret(s, \"postgres\", \"c_password\", secrets.token_hex(32))\n    set_generated_secret(s, \"postgres\", \"d_password\", secrets.token_hex(32))\n",
        ),
        (
            "module calls at module level, unsorted, single quotes, another dict name",
            "secrets_dict = {}\nset_generated_secret(secrets_dict, 'postgres', 'root_password', secrets.token_hex(64))\nset_generated_secret(secrets_dict, 'postgres', 'a_password', secrets.token_hex(32))\nprint(secrets_dict)\n",
            "b_password",
            "secrets_dict = {}\nset_generated_secret(secrets_dict, 'postgres', 'root_password', secrets.token_hex(64))\nset_generated_secret(secrets_dict, 'postgres', 'a_password', secrets.token_hex(32))\nset_generated_secret(secrets_dict, 'postgres', 'b_password', secrets.token_hex(32))\nprint(secrets_dict)\n",
        ),
        (
            "dict literal without a trailing comma",
            "def generate_postgres_secrets():\n    return {\n        \"root_password\": secrets.token_hex(64),\n        \"a_password\": secrets.token_hex(32)\n    }\n",
            "b_password",
            "def generate_postgres_secrets():\n    return {\n        \"root_password\": secrets.token_hex(64),\n        \"a_password\": secrets.token_hex(32),\n        \"b_password\": secrets.token_hex(32)\n    }\n",
        ),
        (
            "dict literal with trailing commas, sorted",
            "def generate_postgres_secrets():\n    return {\n        'a_password': secrets.token_hex(32),\n        'c_password': secrets.token_hex(32),\n        'root_password': secrets.token_hex(64),\n    }\n",
            "b_password",
            "def generate_postgres_secrets():\n    return {\n        'a_password': secrets.token_hex(32),\n        'b_password': secrets.token_hex(32),\n        'c_password': secrets.token_hex(32),\n        'root_password': secrets.token_hex(64),\n    }\n",
        ),
        (
            "dict literal on one line",
            "def generate_postgres_secrets():\n    return {\"root_password\": secrets.token_hex(64), \"a_password\": secrets.token_hex(32)}\n",
            "b_password",
            "def generate_postgres_secrets():\n    return {\"root_password\": secrets.token_hex(64), \"a_password\": secrets.token_hex(32), \"b_password\": secrets.token_hex(32)}\n",
        ),
        (
            "a docstring holding an example call is not a call",
            "class G:\n    def _postgres(self):\n        \"\"\"One call per database, e.g.\n\n        self._set_generated(\"postgres\", \"example_password\", secrets.token_hex(32))\n        \"\"\"\n        self._set_generated(\"postgres\", \"root_password\", secrets.token_hex(64))\n",
            "b_password",
            "class G:\n    def _postgres(self):\n        \"\"\"One call per database, e.g.\n\n        self._set_generated(\"postgres\", \"example_password\", secrets.token_hex(32))\n        \"\"\"\n        self._set_generated(\"postgres\", \"root_password\", secrets.token_hex(64))\n        self._set_generated(\"postgres\", \"b_password\", secrets.token_hex(32))\n",
        ),
        (
            "never under a conditional: after the last unconditional call",
            "class G:\n    def _postgres(self):\n        self._set_generated(\"postgres\", \"root_password\", secrets.token_hex(64))\n        if self.environment != \"minikube\":\n            self._set_generated(\"postgres\", \"z_password\", secrets.token_hex(32))\n",
            "b_password",
            "class G:\n    def _postgres(self):\n        self._set_generated(\"postgres\", \"root_password\", secrets.token_hex(64))\n        self._set_generated(\"postgres\", \"b_password\", secrets.token_hex(32))\n        if self.environment != \"minikube\":\n            self._set_generated(\"postgres\", \"z_password\", secrets.token_hex(32))\n",
        ),
        (
            "only conditional calls: at the method's top level, after its body",
            "class G:\n    def _postgres(self):\n        if self.environment != \"minikube\":\n            self._set_generated(\"postgres\", \"z_password\", secrets.token_hex(32))\n\n    def _other(self):\n        pass\n",
            "b_password",
            "class G:\n    def _postgres(self):\n        if self.environment != \"minikube\":\n            self._set_generated(\"postgres\", \"z_password\", secrets.token_hex(32))\n        self._set_generated(\"postgres\", \"b_password\", secrets.token_hex(32))\n\n    def _other(self):\n        pass\n",
        ),
        (
            "tab indentation",
            "class G:\n\tdef _postgres(self):\n\t\tself._set_generated(\"postgres\", \"root_password\", secrets.token_hex(64))\n",
            "b_password",
            "class G:\n\tdef _postgres(self):\n\t\tself._set_generated(\"postgres\", \"root_password\", secrets.token_hex(64))\n\t\tself._set_generated(\"postgres\", \"b_password\", secrets.token_hex(32))\n",
        ),
        (
            "tab indentation, wrapped calls",
            "class G:\n\tdef _postgres(self):\n\t\tself._set_generated(\n\t\t\t\"postgres\", \"root_password\", secrets.token_hex(64)\n\t\t)\n",
            "b_password",
            "class G:\n\tdef _postgres(self):\n\t\tself._set_generated(\n\t\t\t\"postgres\", \"root_password\", secrets.token_hex(64)\n\t\t)\n\t\tself._set_generated(\n\t\t\t\"postgres\", \"b_password\", secrets.token_hex(32)\n\t\t)\n",
        ),
    ]
}

#[test]
fn older_shapes_and_placement_table() {
    for (what, input, key, output) in shape_cases() {
        let got = add_line(input, key).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(got, output, "{what}");
        let call = parse(&got).unwrap().call(key).cloned().unwrap();
        assert!(call.generated && call.in_postgres_method, "{what}");
        assert_eq!(
            remove_line(&got, key).unwrap_or_else(|e| panic!("{what}: {e}")),
            input,
            "{what}: remove"
        );
    }
}

#[test]
fn shapes_are_told_apart() {
    let shape = |text: &str| parse(text).unwrap().shape;
    assert_eq!(
        shape("class G:\n    def _postgres(self):\n        pass\n"),
        Shape::Methods
    );
    assert_eq!(
        shape("def generate_postgres_secrets():\n    return {\"a\": secrets.token_hex(32)}\n"),
        Shape::DictLiteral
    );
    assert_eq!(
        shape("set_generated_secret(s, \"postgres\", \"a\", secrets.token_hex(32))\n"),
        Shape::ModuleCalls
    );
    let g = parse("def generate_postgres_secrets():\n    return {\n        \"a_password\": secrets.token_hex(32),\n        \"legacy_password\": read_it(),\n    }\n").unwrap();
    let keys: Vec<(&str, bool, usize)> = g
        .calls
        .iter()
        .map(|c| (c.key.as_str(), c.generated, c.line))
        .collect();
    assert_eq!(
        keys,
        [("a_password", true, 3), ("legacy_password", false, 4)]
    );
}

#[test]
fn copies_are_reads_of_a_postgres_key_by_another_component() {
    let g = parse(
        "class G:\n    def _postgres(self):\n        self._set_generated(\"postgres\", \"a_password\", x)\n        self.secrets[\"postgres\"][\"legacy\"] = 1\n\n    def _gafaelfawr(self):\n        # self.secrets[\"postgres\"][\"commented\"]\n        db = self.secrets[\"postgres\"][\"a_password\"]\n\n    def _nublado(self):\n        self.secrets['nublado']['hub'] = self.secrets['postgres']['a_password']\n",
    )
    .unwrap();
    let copies: Vec<(&str, usize, &str)> = g
        .copies
        .iter()
        .map(|c| (c.key.as_str(), c.line, c.component.as_str()))
        .collect();
    assert_eq!(
        copies,
        [
            ("a_password", 8, "gafaelfawr"),
            ("a_password", 11, "nublado")
        ]
    );
}

#[test]
fn an_application_copy_goes_into_its_method_or_a_new_one() {
    let text = "class G:\n    def generate(self):\n        self._postgres()\n\n    def _postgres(self):\n        self._set_generated(\"postgres\", \"a_password\", secrets.token_hex(32))\n\n    def _gafaelfawr(self):\n        pass\n\n\nG().generate()\n";
    let into_existing = add_copy(text, "gafaelfawr", "a-password", "a_password").unwrap();
    assert_eq!(
        into_existing,
        text.replace(
            "        pass\n",
            "        pass\n        self._set(\"gafaelfawr\", \"a-password\", self.secrets[\"postgres\"][\"a_password\"])\n"
        )
    );
    let new_method = add_copy(text, "vo-cutouts", "database-password", "a_password").unwrap();
    assert_eq!(
        new_method,
        text.replace("        self._postgres()\n", "        self._postgres()\n        self._vo_cutouts()\n")
            .replace(
                "        pass\n",
                "        pass\n\n    def _vo_cutouts(self):\n        self._set(\"vo-cutouts\", \"database-password\", self.secrets[\"postgres\"][\"a_password\"])\n"
            )
    );
    // Idempotent: the copy is already there.
    assert_eq!(
        add_copy(&new_method, "vo-cutouts", "database-password", "a_password").unwrap(),
        new_method
    );
    // Only the methods shape has component methods.
    let dict =
        "def generate_postgres_secrets():\n    return {\"a_password\": secrets.token_hex(32)}\n";
    assert!(add_copy(dict, "x", "k", "a_password").is_err());
}

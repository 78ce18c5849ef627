//! Helm values as phalanx reads them: a chart's `values.yaml` merged with an
//! environment's `values-ENV.yaml`, and the truthiness of a dotted path that a
//! `secrets.yaml` `if:` names. Pure functions over `serde_yaml::Value`.

use serde_yaml::Value;

/// `over` merged onto `base`: mappings merge key by key, recursively; anything
/// else in `over` replaces what `base` has.
pub fn merge(base: &Value, over: &Value) -> Value {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            let mut out = b.clone();
            for (key, value) in o {
                let merged = match out.get(key) {
                    Some(old) => merge(old, value),
                    None => value.clone(),
                };
                out.insert(key.clone(), merged);
            }
            Value::Mapping(out)
        }
        _ => over.clone(),
    }
}

/// An environment's values file merged onto the chart's: an empty file (null)
/// changes nothing, as phalanx skips it.
pub fn merge_file(base: &Value, over: &Value) -> Value {
    if over.is_null() {
        base.clone()
    } else {
        merge(base, over)
    }
}

/// The value at a dotted path (`hub.internalDatabase`), through mappings only.
pub fn get<'a>(root: &'a Value, dotted: &str) -> Option<&'a Value> {
    let mut here = root;
    for part in dotted.split('.') {
        here = here.as_mapping()?.get(part)?;
    }
    Some(here)
}

/// Python's truthiness, which phalanx applies to the value an `if:` names: a
/// missing path, null, false, 0, "" and empty collections are false.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Sequence(s) => !s.is_empty(),
        Value::Mapping(m) => !m.is_empty(),
        Value::Tagged(t) => truthy(&t.value),
    }
}

/// Whether the dotted path holds a true value.
pub fn truthy_at(root: &Value, dotted: &str) -> bool {
    get(root, dotted).is_some_and(truthy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn merge_is_deep_and_overrides_scalars() {
        let base = yaml("a: {b: 1, c: 2}\nd: [1]\ne: x\n");
        let over = yaml("a: {c: 3}\nd: [2]\nf: y\n");
        assert_eq!(
            merge(&base, &over),
            yaml("a: {b: 1, c: 3}\nd: [2]\ne: x\nf: y\n")
        );
        assert_eq!(
            merge_file(&base, &Value::Null),
            base,
            "an empty file changes nothing"
        );
    }

    #[test]
    fn truthiness_follows_python() {
        let v = yaml(
            "t: true\nf: false\nz: 0\nn: 1\ne: ''\ns: x\nl: []\nm: {}\nk: {a: 1}\nnul: null\nnested: {flag: yes}\n",
        );
        for (path, expected) in [
            ("t", true),
            ("f", false),
            ("z", false),
            ("n", true),
            ("e", false),
            ("s", true),
            ("l", false),
            ("m", false),
            ("k", true),
            ("nul", false),
            ("missing", false),
            ("t.deeper", false),
            ("nested.flag", true),
        ] {
            assert_eq!(truthy_at(&v, path), expected, "{path}");
        }
    }
}

//! JSON as libvmaf's model reader sees it, parsed by serde_json: objects
//! keep their keys in order, a key given twice in one object is refused
//! (libvmaf's streaming reader acts on each in turn: a second
//! `feature_names` counts its features on top of the first's, past the
//! names it holds), and so is a string holding a NUL (libvmaf's C strings
//! end there, so it would read another key or name than the one checked).
//! serde_json refuses what is not JSON, numbers out of the `f64` range and
//! nesting over 128 levels.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value, objects as their keys and values in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number (finite: serde_json refuses the others).
    Number(f64),
    /// A string without NUL.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, each key once, in order.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parses `text`: one JSON value, nothing after it but whitespace.
    pub fn parse(text: &str) -> Result<Json, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// The value of `key` when this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(o) => o.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// What this is, for messages ("an array").
    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

fn no_nul<E: de::Error>(s: &str) -> Result<(), E> {
    if s.contains('\0') {
        Err(E::custom("a string holds a NUL character"))
    } else {
        Ok(())
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        if v.is_finite() {
            Ok(Json::Number(v))
        } else {
            Err(E::custom("a number that is not finite"))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        no_nul(v)?;
        Ok(Json::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        no_nul(&v)?;
        Ok(Json::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries: Vec<(String, Json)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            no_nul(&key)?;
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format!(
                    "the key \"{key}\" appears twice in one object"
                )));
            }
            let value = map.next_value()?;
            entries.push((key, value));
        }
        Ok(Json::Object(entries))
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_keep_their_order_and_refuse_a_key_twice() {
        let v = Json::parse(r#"{"b": [1, 2.5, -3], "a": {"x": null, "y": true}}"#).unwrap();
        let Json::Object(o) = &v else { panic!("{v:?}") };
        assert_eq!(o[0].0, "b");
        assert_eq!(
            v.get("b"),
            Some(&Json::Array(vec![
                Json::Number(1.0),
                Json::Number(2.5),
                Json::Number(-3.0)
            ]))
        );
        assert_eq!(v.get("a").and_then(|a| a.get("y")), Some(&Json::Bool(true)));
        assert_eq!(v.get("c"), None);
        let e = Json::parse(r#"{"a": 1, "b": {"k": 1, "k": 2}}"#).unwrap_err();
        assert!(e.contains("the key \"k\" appears twice"), "{e}");
    }

    #[test]
    fn not_json_nul_and_numbers_out_of_range_are_refused() {
        for (text, says) in [
            (r#"{"a": "x\u0000y"}"#, "NUL"),
            (r#"{"a\u0000b": 1}"#, "NUL"),
            (r#"{"a": 1e999}"#, "out of range"),
            (r#"{"a": NaN}"#, "expected value"),
            (r#"{"a": 1"#, "EOF"),
            (r#"{"a": 1} x"#, "trailing"),
        ] {
            let e = Json::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(Json::parse(&deep).unwrap_err().contains("recursion"));
        assert_eq!(Json::Null.kind(), "null");
        assert_eq!(Json::parse("[]").unwrap().kind(), "an array");
    }
}

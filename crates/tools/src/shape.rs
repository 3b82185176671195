//! JSON bodies read strictly: a struct only ever from a JSON object.
//!
//! serde's derived `Deserialize` also reads a struct from a JSON array of its fields in order, so
//! `{"tools": []}` would read as empty governance. Written here because serde has no switch for it
//! and no well-kept crate offers one.

use serde::{Deserialize, Deserializer, de::DeserializeOwned, de::Error as _};
use serde_json::{Map, Value};

/// Reads `T` from a JSON object, refusing any other shape.
pub fn from_object<T: DeserializeOwned>(object: Map<String, Value>) -> serde_json::Result<T> {
    T::deserialize(Value::Object(object))
}

/// A whole body: a JSON object read as `T`.
pub fn parse_object<T: DeserializeOwned>(body: &[u8]) -> serde_json::Result<T> {
    from_object(serde_json::from_slice(body)?)
}

/// For `#[serde(default, deserialize_with = "object")]` on an `Option` of a struct.
pub fn object<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    Option::<Map<String, Value>>::deserialize(deserializer)?
        .map(from_object)
        .transpose()
        .map_err(D::Error::custom)
}

/// For `#[serde(default, deserialize_with = "objects")]` on a `Vec` of structs.
pub fn objects<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    Vec::<Map<String, Value>>::deserialize(deserializer)?
        .into_iter()
        .map(from_object)
        .collect::<Result<_, _>>()
        .map_err(D::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[serde(default)]
        a: Vec<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        #[serde(default, deserialize_with = "object")]
        one: Option<Inner>,
        #[serde(default, deserialize_with = "objects")]
        many: Vec<Inner>,
    }

    #[test]
    fn structs_are_read_from_objects_only() {
        let parsed: Outer = parse_object(br#"{"one": {"a": ["x"]}, "many": [{}]}"#).expect("ok");
        assert_eq!(
            parsed.one,
            Some(Inner {
                a: vec!["x".into()]
            })
        );
        assert_eq!(parsed.many, vec![Inner::default()]);
        let absent: Outer = parse_object(br#"{"one": null}"#).expect("ok");
        assert_eq!(
            absent,
            Outer {
                one: None,
                many: Vec::new()
            }
        );
        for wrong in [
            &br#"[]"#[..],
            br#"[null, []]"#,
            br#"{"one": []}"#,
            br#"{"one": [["x"]]}"#,
            br#"{"many": [[]]}"#,
            br#"{"one": {"b": 1}}"#,
        ] {
            let text = String::from_utf8_lossy(wrong);
            assert!(parse_object::<Outer>(wrong).is_err(), "{text} was accepted");
        }
    }
}

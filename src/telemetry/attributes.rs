//! OTLP attribute values as JSON, within the configured bounds: at most
//! `max_attributes` per item (the rest dropped and counted), string values
//! cut to `max_value_bytes` at a character boundary, nesting cut at
//! [`MAX_DEPTH`].

use opentelemetry_proto::tonic::common::v1::{any_value::Value as Any, AnyValue, KeyValue};
use serde_json::{Map, Value};

/// Arrays and key-value lists nested deeper than this become a marker.
pub const MAX_DEPTH: usize = 8;

#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_attributes: usize,
    pub max_value_bytes: usize,
}

/// `attrs` as a JSON object and how many were dropped (beyond the bound,
/// or with an empty key).
pub fn object(attrs: &[KeyValue], b: Bounds) -> (Value, u32) {
    let mut out = Map::new();
    let mut dropped = 0u32;
    for kv in attrs {
        if out.len() >= b.max_attributes || kv.key.is_empty() {
            dropped += 1;
            continue;
        }
        let key = cut(&kv.key, b.max_value_bytes.min(256)).to_string();
        out.insert(key, value(kv.value.as_ref(), b, 0));
    }
    (Value::Object(out), dropped)
}

/// One value as JSON; bytes as lowercase hex.
pub fn value(v: Option<&AnyValue>, b: Bounds, depth: usize) -> Value {
    let Some(v) = v.and_then(|v| v.value.as_ref()) else {
        return Value::Null;
    };
    if depth >= MAX_DEPTH {
        return Value::String("[nested too deep]".into());
    }
    match v {
        Any::StringValue(s) => Value::String(cut(s, b.max_value_bytes).to_string()),
        Any::BoolValue(x) => Value::Bool(*x),
        Any::IntValue(i) => Value::from(*i),
        Any::DoubleValue(d) => serde_json::Number::from_f64(*d)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(d.to_string())),
        Any::BytesValue(bytes) => {
            let hex = hex::encode(bytes);
            Value::String(cut(&hex, b.max_value_bytes).to_string())
        }
        Any::ArrayValue(a) => Value::Array(
            a.values
                .iter()
                .take(b.max_attributes)
                .map(|x| value(Some(x), b, depth + 1))
                .collect(),
        ),
        Any::KvlistValue(kv) => object(&kv.values, b).0,
        // An index into a profile's string table: meaningless outside one.
        Any::StringValueStrindex(i) => Value::String(format!("[string #{i}]")),
    }
}

/// `s` cut to at most `max` bytes at a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    fn kv(k: &str, v: Any) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    #[test]
    fn bounds_drop_count_and_truncate() {
        let b = Bounds {
            max_attributes: 2,
            max_value_bytes: 5,
        };
        let attrs = vec![
            kv("a", Any::StringValue("héllo world".into())),
            kv("", Any::IntValue(1)),
            kv("b", Any::IntValue(7)),
            kv("c", Any::BoolValue(true)),
        ];
        let (v, dropped) = object(&attrs, b);
        assert_eq!(v, serde_json::json!({"a": "héll", "b": 7}));
        assert_eq!(dropped, 2);
    }

    #[test]
    fn nesting_is_cut() {
        let b = Bounds {
            max_attributes: 10,
            max_value_bytes: 100,
        };
        let mut v = Any::IntValue(1);
        for _ in 0..20 {
            v = Any::ArrayValue(ArrayValue {
                values: vec![AnyValue { value: Some(v) }],
            });
        }
        let s = value(Some(&AnyValue { value: Some(v) }), b, 0).to_string();
        assert!(s.contains("nested too deep"), "{s}");
        let list = Any::KvlistValue(KeyValueList {
            values: vec![kv("x", Any::DoubleValue(f64::NAN))],
        });
        assert_eq!(
            value(Some(&AnyValue { value: Some(list) }), b, 0),
            serde_json::json!({"x": "NaN"})
        );
    }
}

//! A WHERE clause built from optional filters, with numbered parameters,
//! so a list query reads as one line per filter.

use rusqlite::types::Value;

#[derive(Debug, Default)]
pub struct Clauses {
    parts: Vec<String>,
    args: Vec<Value>,
}

impl Clauses {
    /// Adds `clause`, each `?` in it bound to the next of `values`.
    pub fn add(&mut self, clause: &str, values: impl IntoIterator<Item = Value>) {
        let mut values = values.into_iter();
        let mut out = String::with_capacity(clause.len() + 8);
        for ch in clause.chars() {
            if ch == '?' {
                self.args.push(values.next().unwrap_or(Value::Null));
                out.push_str(&format!("?{}", self.args.len()));
            } else {
                out.push(ch);
            }
        }
        self.parts.push(out);
    }

    /// `WHERE a AND b …`, or nothing.
    pub fn where_sql(&self) -> String {
        if self.parts.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.parts.join(" AND "))
        }
    }

    /// Binds one more value (a LIMIT, say) and says its placeholder.
    pub fn bind(&mut self, v: Value) -> String {
        self.args.push(v);
        format!("?{}", self.args.len())
    }

    pub fn into_args(self) -> Vec<Value> {
        self.args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        let mut c = Clauses::default();
        assert_eq!(c.where_sql(), "");
        c.add("a = ?", [Value::Integer(1)]);
        c.add(
            "(b, c) < (?, ?)",
            [Value::Integer(2), Value::Text("x".into())],
        );
        let limit = c.bind(Value::Integer(10));
        assert_eq!(c.where_sql(), "WHERE a = ?1 AND (b, c) < (?2, ?3)");
        assert_eq!(limit, "?4");
        assert_eq!(c.into_args().len(), 4);
    }
}

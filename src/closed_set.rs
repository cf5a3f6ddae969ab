//! Closed sets (alert states, principal kinds, ...) as enums with their
//! string form, serde, OpenAPI schema and SQLite conversion written once.
//!
//! ```ignore
//! closed_set! {
//!     /// Where an alert is in its life.
//!     pub enum AlertState { Pending = "pending", Firing = "firing" }
//! }
//! ```
//!
//! gives `AlertState::ALL`, `as_str`, `parse`, `Display`, `FromStr`,
//! `Serialize`/`Deserialize` and `ToSchema` as the strings, and
//! `ToSql`/`FromSql` as TEXT (an unknown string read from the database is a
//! conversion error, not a panic).

/// What every closed set offers, for code that takes any of them.
pub trait ClosedSet: Sized + Copy + 'static {
    fn parse(s: &str) -> Option<Self>;
    /// "a, b, c": every member's string, in order.
    fn names() -> String;
}

#[macro_export]
macro_rules! closed_set {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize, utoipa::ToSchema,
        )]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] #[schema(rename = $text)] $variant ),+
        }

        impl $name {
            /// Every member, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// "a, b, c": every member's string, in order.
            pub fn names() -> String {
                let names: Vec<&str> = $name::ALL.iter().map(|m| m.as_str()).collect();
                names.join(", ")
            }

            /// "a, b or c": for messages that list the choices.
            pub fn choices() -> String {
                let names: Vec<&str> = $name::ALL.iter().map(|m| m.as_str()).collect();
                match names.split_last() {
                    Some((last, [])) => last.to_string(),
                    Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                    None => String::new(),
                }
            }
        }

        impl $crate::closed_set::ClosedSet for $name {
            fn parse(s: &str) -> Option<Self> {
                $name::parse(s)
            }

            fn names() -> String {
                $name::names()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s).ok_or_else(|| format!("must be one of {}", $name::choices()))
            }
        }

        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(
                v: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                let s = v.as_str()?;
                $name::parse(s).ok_or_else(|| {
                    rusqlite::types::FromSqlError::Other(
                        format!("{s:?} is not a {}", stringify!($name)).into(),
                    )
                })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    crate::closed_set! {
        /// A test set.
        enum Colour {
            Red = "red",
            Dark = "dark_blue",
            Green = "green",
        }
    }

    #[test]
    fn strings_serde_and_sql_agree() {
        for c in Colour::ALL {
            assert_eq!(Colour::parse(c.as_str()), Some(*c));
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        assert_eq!(Colour::parse("blue"), None);
        assert_eq!("dark_blue".parse::<Colour>(), Ok(Colour::Dark));
        assert_eq!(Colour::names(), "red, dark_blue, green");
        assert_eq!(
            "x".parse::<Colour>().unwrap_err(),
            "must be one of red, dark_blue or green"
        );
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let back: Colour = conn
            .query_row("SELECT ?1", [Colour::Green], |r| r.get(0))
            .unwrap();
        assert_eq!(back, Colour::Green);
        let bad: rusqlite::Result<Colour> = conn.query_row("SELECT 'purple'", [], |r| r.get(0));
        assert!(bad.is_err());
        // The OpenAPI schema lists the same strings.
        use utoipa::PartialSchema;
        let schema = serde_json::to_value(Colour::schema()).unwrap();
        assert_eq!(
            schema["enum"],
            serde_json::json!(["red", "dark_blue", "green"])
        );
    }
}

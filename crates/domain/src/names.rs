//! Enums with one stable string name per variant, written once.
//!
//! [`named_enum!`] takes the enum with each variant's name and emits the enum with serde (and
//! so utoipa) using those names, plus `ALL`, `as_str`, [`Display`](std::fmt::Display) and
//! [`FromStr`](std::str::FromStr). With the `sea-orm` feature it also makes each enum a text
//! column type, so database entities hold the enum itself; a stored name that is no variant
//! fails to decode with the [`ParseEnumError`] message.

/// A string that names no variant of the expected enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} \"{value}\"")]
pub struct ParseEnumError {
    /// What was being parsed, e.g. `"job status"`.
    pub kind: &'static str,
    /// The rejected input.
    pub value: String,
}

/// Declares an enum whose variants each have one name, used by serde, `as_str`, `Display`,
/// `FromStr` and (with the `sea-orm` feature) database columns:
///
/// ```text
/// named_enum! {
///     /// Docs.
///     #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
///     pub enum Priority as "priority" {
///         Low = "low",
///         Normal = "normal",
///     }
/// }
/// ```
///
/// The derives must include `Clone`, `Copy`, `Serialize` and `Deserialize`.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $ty:ident as $kind:tt {
            $( $(#[$vmeta:meta])* $variant:ident = $name:tt ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        pub enum $ty {
            $( $(#[$vmeta])* #[serde(rename = $name)] $variant ),+
        }

        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The stable name used in JSON, the database and logs.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::names::ParseEnumError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err($crate::names::ParseEnumError { kind: $kind, value: s.to_owned() }),
                }
            }
        }

        #[cfg(feature = "sea-orm")]
        $crate::names::text_column!($ty);
    };
}

pub(crate) use named_enum;

/// Makes a named enum a sea-orm text column type (see [`named_enum!`]).
#[cfg(feature = "sea-orm")]
macro_rules! text_column {
    ($ty:ident) => {
        impl From<$ty> for ::sea_orm::Value {
            fn from(value: $ty) -> Self {
                ::sea_orm::Value::String(Some(value.as_str().to_owned()))
            }
        }

        impl ::sea_orm::sea_query::Nullable for $ty {
            fn null() -> ::sea_orm::Value {
                ::sea_orm::Value::String(None)
            }
        }

        impl ::sea_orm::sea_query::ValueType for $ty {
            fn try_from(
                value: ::sea_orm::Value,
            ) -> Result<Self, ::sea_orm::sea_query::ValueTypeErr> {
                match value {
                    ::sea_orm::Value::String(Some(name)) => {
                        name.parse().map_err(|_| ::sea_orm::sea_query::ValueTypeErr)
                    }
                    _ => Err(::sea_orm::sea_query::ValueTypeErr),
                }
            }

            fn type_name() -> String {
                stringify!($ty).to_owned()
            }

            fn array_type() -> ::sea_orm::sea_query::ArrayType {
                ::sea_orm::sea_query::ArrayType::String
            }

            fn column_type() -> ::sea_orm::sea_query::ColumnType {
                ::sea_orm::sea_query::ColumnType::Text
            }
        }

        impl ::sea_orm::TryGetable for $ty {
            fn try_get_by<I: ::sea_orm::ColIdx>(
                row: &::sea_orm::QueryResult,
                index: I,
            ) -> Result<Self, ::sea_orm::TryGetError> {
                $crate::names::try_get_named(row, index)
            }
        }
    };
}

#[cfg(feature = "sea-orm")]
pub(crate) use text_column;

/// Reads a text column and parses it; a name that is no variant is a `DbErr::Type` error
/// naming the column, which the store reports as a corrupt row.
#[cfg(feature = "sea-orm")]
pub fn try_get_named<T, I>(row: &sea_orm::QueryResult, index: I) -> Result<T, sea_orm::TryGetError>
where
    T: std::str::FromStr<Err = ParseEnumError>,
    I: sea_orm::ColIdx,
{
    let name = <String as sea_orm::TryGetable>::try_get_by(row, index)?;
    name.parse().map_err(|error: ParseEnumError| {
        sea_orm::TryGetError::DbErr(sea_orm::DbErr::Type(format!("{error} in column {index:?}")))
    })
}

//! Strict JSON helpers (SPEC section 1): duplicate members refused, NumericDates bounded,
//! error texts that never echo input values.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// Describes a JSON error without echoing input bytes.
pub(crate) fn json_problem(e: &serde_json::Error) -> String {
    // serde_json messages name fields and types, never the input's values.
    // (Unknown member names are echoed, so the cut must fall on a character boundary:
    // `truncate` panics inside a multi-byte character.)
    let mut text = e.to_string();
    let mut cut = text.len().min(200);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text
}

/// Deserializes a JSON object into a map, rejecting duplicate member names (serde's maps keep
/// the last duplicate silently).
pub(crate) fn strict_map<'de, D, K, V>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord + fmt::Display,
    V: Deserialize<'de>,
{
    struct MapVisitor<K, V>(PhantomData<(K, V)>);
    impl<'de, K, V> Visitor<'de> for MapVisitor<K, V>
    where
        K: Deserialize<'de> + Ord + fmt::Display,
        V: Deserialize<'de>,
    {
        type Value = BTreeMap<K, V>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key::<K>()? {
                if out.contains_key(&key) {
                    return Err(de::Error::custom(format_args!("duplicate member `{key}`")));
                }
                let value = map.next_value()?;
                out.insert(key, value);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(MapVisitor(PhantomData))
}

/// Deserializes a NumericDate: an integer in `0..=2^53-1`.
pub(crate) fn numeric_date<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<crate::clock::UnixTime, D::Error> {
    let secs = u64::deserialize(deserializer)?;
    if secs > crate::clock::UnixTime::MAX_SECS {
        return Err(de::Error::custom("NumericDate is larger than 2^53-1"));
    }
    Ok(crate::clock::UnixTime::from_secs(secs))
}

/// Like [`numeric_date`], for an optional member.
pub(crate) fn optional_numeric_date<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<crate::clock::UnixTime>, D::Error> {
    numeric_date(deserializer).map(Some)
}

/// A JSON string borrowed from the input when it has no escapes, copied only when it has.
/// (serde's own `Cow<str>` always copies outside a derived struct field.)
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Text<'de>(pub(crate) std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

//! KMIP 1.x binary encoding (TTLV: Tag, Type, Length, Value), just enough for Rook's operations.
//!
//! Every item is a 3-byte tag (`0x42xxxx`), a 1-byte type, a 4-byte big-endian length of the value
//! without padding, and the value padded with zeros to a multiple of 8 bytes. Decoding is strict:
//! lengths must fit the buffer, fixed-size types must have their exact length, padding must be
//! zero, text must be UTF-8, and nesting is bounded, so hostile bytes give an error, not a panic.

use std::fmt;

/// Item type codes.
mod code {
    pub const STRUCTURE: u8 = 0x01;
    pub const INTEGER: u8 = 0x02;
    pub const LONG_INTEGER: u8 = 0x03;
    pub const BIG_INTEGER: u8 = 0x04;
    pub const ENUMERATION: u8 = 0x05;
    pub const BOOLEAN: u8 = 0x06;
    pub const TEXT_STRING: u8 = 0x07;
    pub const BYTE_STRING: u8 = 0x08;
    pub const DATE_TIME: u8 = 0x09;
    pub const INTERVAL: u8 = 0x0A;
}

/// The tags Rook's operations use (KMIP 1.4 numbering).
pub mod tag {
    pub const ATTRIBUTE: u32 = 0x420008;
    pub const ATTRIBUTE_NAME: u32 = 0x42000A;
    pub const ATTRIBUTE_VALUE: u32 = 0x42000B;
    pub const BATCH_COUNT: u32 = 0x42000D;
    pub const BATCH_ITEM: u32 = 0x42000F;
    pub const CRYPTOGRAPHIC_ALGORITHM: u32 = 0x420028;
    pub const CRYPTOGRAPHIC_LENGTH: u32 = 0x42002A;
    pub const KEY_BLOCK: u32 = 0x420040;
    pub const KEY_FORMAT_TYPE: u32 = 0x420042;
    pub const KEY_MATERIAL: u32 = 0x420043;
    pub const KEY_VALUE: u32 = 0x420045;
    pub const OBJECT_TYPE: u32 = 0x420057;
    pub const OPERATION: u32 = 0x42005C;
    pub const PROTOCOL_VERSION: u32 = 0x420069;
    pub const PROTOCOL_VERSION_MAJOR: u32 = 0x42006A;
    pub const PROTOCOL_VERSION_MINOR: u32 = 0x42006B;
    pub const QUERY_FUNCTION: u32 = 0x420074;
    pub const REQUEST_HEADER: u32 = 0x420077;
    pub const REQUEST_MESSAGE: u32 = 0x420078;
    pub const REQUEST_PAYLOAD: u32 = 0x420079;
    pub const RESPONSE_HEADER: u32 = 0x42007A;
    pub const RESPONSE_MESSAGE: u32 = 0x42007B;
    pub const RESPONSE_PAYLOAD: u32 = 0x42007C;
    pub const RESULT_MESSAGE: u32 = 0x42007D;
    pub const RESULT_REASON: u32 = 0x42007E;
    pub const RESULT_STATUS: u32 = 0x42007F;
    pub const SYMMETRIC_KEY: u32 = 0x42008F;
    pub const TEMPLATE_ATTRIBUTE: u32 = 0x420091;
    pub const TIME_STAMP: u32 = 0x420092;
    pub const UNIQUE_BATCH_ITEM_ID: u32 = 0x420093;
    pub const UNIQUE_IDENTIFIER: u32 = 0x420094;
}

/// Largest message we accept from a server (Rook's responses are a few hundred bytes).
pub const MAX_MESSAGE: usize = 1 << 20;
const MAX_DEPTH: usize = 16;

/// One TTLV value.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    Structure(Vec<Item>),
    Integer(i32),
    LongInteger(i64),
    BigInteger(Vec<u8>),
    Enumeration(u32),
    Boolean(bool),
    TextString(String),
    ByteString(Vec<u8>),
    DateTime(i64),
    Interval(u32),
}

/// Byte strings are key material in Get responses: `Debug` shows their length only.
impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Structure(items) => f.debug_list().entries(items).finish(),
            Value::Integer(v) => write!(f, "Integer({v})"),
            Value::LongInteger(v) => write!(f, "LongInteger({v})"),
            Value::BigInteger(v) => write!(f, "BigInteger(<{} bytes>)", v.len()),
            Value::Enumeration(v) => write!(f, "Enumeration({v:#x})"),
            Value::Boolean(v) => write!(f, "Boolean({v})"),
            Value::TextString(v) => write!(f, "TextString({v:?})"),
            Value::ByteString(v) => write!(f, "ByteString(<{} bytes>)", v.len()),
            Value::DateTime(v) => write!(f, "DateTime({v})"),
            Value::Interval(v) => write!(f, "Interval({v})"),
        }
    }
}

/// A tagged value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub tag: u32,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TtlvError {
    #[error("message truncated: item at byte {offset} needs {needed} bytes, {available} left")]
    Truncated { offset: usize, needed: usize, available: usize },
    #[error("tag {tag:#08x} at byte {offset} is not a KMIP tag (0x42xxxx)")]
    BadTag { offset: usize, tag: u32 },
    #[error("unknown item type {code:#04x} at byte {offset}")]
    BadType { offset: usize, code: u8 },
    #[error("item at byte {offset} has length {length}, which its type does not allow")]
    BadLength { offset: usize, length: usize },
    #[error("item at byte {offset} has non-zero padding")]
    BadPadding { offset: usize },
    #[error("text string at byte {offset} is not UTF-8")]
    BadText { offset: usize },
    #[error("boolean at byte {offset} is neither 0 nor 1")]
    BadBoolean { offset: usize },
    #[error("structures nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("message of {length} bytes is larger than the {MAX_MESSAGE}-byte limit")]
    TooLarge { length: usize },
    #[error("{extra} bytes after the message")]
    TrailingBytes { extra: usize },
}

impl Item {
    pub fn new(tag: u32, value: Value) -> Self {
        Self { tag, value }
    }

    pub fn structure(tag: u32, items: Vec<Item>) -> Self {
        Self::new(tag, Value::Structure(items))
    }

    /// The children of a structure (empty for other types).
    pub fn children(&self) -> &[Item] {
        match &self.value {
            Value::Structure(items) => items,
            _ => &[],
        }
    }

    /// The first child with `tag`.
    pub fn child(&self, tag: u32) -> Option<&Item> {
        self.children().iter().find(|i| i.tag == tag)
    }

    /// Every child with `tag`.
    pub fn all(&self, tag: u32) -> impl Iterator<Item = &Item> {
        self.children().iter().filter(move |i| i.tag == tag)
    }

    pub fn as_i32(&self) -> Option<i32> {
        match self.value {
            Value::Integer(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_enum(&self) -> Option<u32> {
        match self.value {
            Value::Enumeration(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match &self.value {
            Value::TextString(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.value {
            Value::ByteString(v) => Some(v),
            _ => None,
        }
    }

    /// The TTLV encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        let tag = self.tag.to_be_bytes();
        out.extend_from_slice(&tag[1..]);
        let start = out.len();
        let (kind, body): (u8, Vec<u8>) = match &self.value {
            Value::Structure(items) => {
                let mut body = Vec::new();
                for item in items {
                    item.encode_into(&mut body);
                }
                (code::STRUCTURE, body)
            }
            Value::Integer(v) => (code::INTEGER, v.to_be_bytes().to_vec()),
            Value::LongInteger(v) => (code::LONG_INTEGER, v.to_be_bytes().to_vec()),
            Value::BigInteger(v) => (code::BIG_INTEGER, v.clone()),
            Value::Enumeration(v) => (code::ENUMERATION, v.to_be_bytes().to_vec()),
            Value::Boolean(v) => (code::BOOLEAN, u64::from(*v).to_be_bytes().to_vec()),
            Value::TextString(v) => (code::TEXT_STRING, v.as_bytes().to_vec()),
            Value::ByteString(v) => (code::BYTE_STRING, v.clone()),
            Value::DateTime(v) => (code::DATE_TIME, v.to_be_bytes().to_vec()),
            Value::Interval(v) => (code::INTERVAL, v.to_be_bytes().to_vec()),
        };
        debug_assert_eq!(start, out.len());
        out.push(kind);
        // Lengths are u32 on the wire; our messages are far below 4 GiB.
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out.resize(out.len() + padding(body.len()), 0);
    }

    /// Decodes exactly one item that fills `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Item, TtlvError> {
        if bytes.len() > MAX_MESSAGE {
            return Err(TtlvError::TooLarge { length: bytes.len() });
        }
        let (item, used) = decode_at(bytes, 0, 0)?;
        if used != bytes.len() {
            return Err(TtlvError::TrailingBytes { extra: bytes.len() - used });
        }
        Ok(item)
    }
}

fn padding(len: usize) -> usize {
    (8 - len % 8) % 8
}

/// The total length (header included) of the message whose first 8 bytes are `header`, checked
/// against [`MAX_MESSAGE`] before anything is allocated.
pub fn frame_length(header: &[u8; 8]) -> Result<usize, TtlvError> {
    let length = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let total = 8 + length + padding(length);
    if total > MAX_MESSAGE {
        return Err(TtlvError::TooLarge { length: total });
    }
    Ok(total)
}

/// Decodes the item starting at `offset`; returns it and the offset just past it.
fn decode_at(buf: &[u8], offset: usize, depth: usize) -> Result<(Item, usize), TtlvError> {
    if depth > MAX_DEPTH {
        return Err(TtlvError::TooDeep);
    }
    let header = buf.get(offset..offset + 8).ok_or(TtlvError::Truncated {
        offset,
        needed: 8,
        available: buf.len().saturating_sub(offset),
    })?;
    let tag = u32::from_be_bytes([0, header[0], header[1], header[2]]);
    if header[0] != 0x42 {
        return Err(TtlvError::BadTag { offset, tag });
    }
    let kind = header[3];
    let length = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let start = offset + 8;
    let padded = length + padding(length);
    let available = buf.len() - start;
    if padded > available {
        return Err(TtlvError::Truncated { offset, needed: padded, available });
    }
    let body = &buf[start..start + length];
    if buf[start + length..start + padded].iter().any(|b| *b != 0) {
        return Err(TtlvError::BadPadding { offset });
    }
    let fixed = |n: usize| if length == n { Ok(()) } else { Err(TtlvError::BadLength { offset, length }) };
    let be4 = |b: &[u8]| [b[0], b[1], b[2], b[3]];
    let be8 = |b: &[u8]| [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
    let value = match kind {
        code::STRUCTURE => {
            let mut items = Vec::new();
            let mut at = start;
            while at < start + length {
                let (item, next) = decode_at(&buf[..start + length], at, depth + 1)?;
                items.push(item);
                at = next;
            }
            Value::Structure(items)
        }
        code::INTEGER => {
            fixed(4)?;
            Value::Integer(i32::from_be_bytes(be4(body)))
        }
        code::ENUMERATION => {
            fixed(4)?;
            Value::Enumeration(u32::from_be_bytes(be4(body)))
        }
        code::INTERVAL => {
            fixed(4)?;
            Value::Interval(u32::from_be_bytes(be4(body)))
        }
        code::LONG_INTEGER => {
            fixed(8)?;
            Value::LongInteger(i64::from_be_bytes(be8(body)))
        }
        code::DATE_TIME => {
            fixed(8)?;
            Value::DateTime(i64::from_be_bytes(be8(body)))
        }
        code::BOOLEAN => {
            fixed(8)?;
            match u64::from_be_bytes(be8(body)) {
                0 => Value::Boolean(false),
                1 => Value::Boolean(true),
                _ => return Err(TtlvError::BadBoolean { offset }),
            }
        }
        code::BIG_INTEGER => {
            if !length.is_multiple_of(8) {
                return Err(TtlvError::BadLength { offset, length });
            }
            Value::BigInteger(body.to_vec())
        }
        code::TEXT_STRING => {
            Value::TextString(String::from_utf8(body.to_vec()).map_err(|_| TtlvError::BadText { offset })?)
        }
        code::BYTE_STRING => Value::ByteString(body.to_vec()),
        other => return Err(TtlvError::BadType { offset, code: other }),
    };
    Ok((Item { tag, value }, start + padded))
}

/// Hex text to bytes, for tests written against the specification's byte examples.
#[cfg(test)]
pub(crate) fn decode_hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).filter_map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::decode_hex as hex;
    use super::*;

    #[test]
    fn every_type_round_trips_with_padding() {
        let item = Item::structure(
            tag::REQUEST_PAYLOAD,
            vec![
                Item::new(tag::PROTOCOL_VERSION_MAJOR, Value::Integer(-7)),
                Item::new(tag::TIME_STAMP, Value::LongInteger(1 << 40)),
                Item::new(tag::KEY_MATERIAL, Value::BigInteger(vec![0xff; 16])),
                Item::new(tag::OPERATION, Value::Enumeration(0x1E)),
                Item::new(tag::ATTRIBUTE_VALUE, Value::Boolean(true)),
                Item::new(tag::ATTRIBUTE_NAME, Value::TextString("Cryptographic Usage Mask".into())),
                Item::new(tag::KEY_MATERIAL, Value::ByteString(vec![1, 2, 3])),
                Item::new(tag::TIME_STAMP, Value::DateTime(1_700_000_000)),
                Item::new(tag::ATTRIBUTE_VALUE, Value::Interval(10)),
            ],
        );
        let bytes = item.encode();
        assert_eq!(bytes.len() % 8, 0);
        assert_eq!(Item::decode(&bytes).unwrap(), item);
    }

    #[test]
    fn text_is_padded_to_eight_bytes() {
        // KMIP 1.x spec example: Text String "Hello World" with tag 0x420020.
        let bytes = Item::new(0x420020, Value::TextString("Hello World".into())).encode();
        assert_eq!(bytes, hex("420020070000000B48656C6C6F20576F726C640000000000"));
    }

    #[test]
    fn hostile_bytes_are_errors() {
        let good = Item::structure(tag::BATCH_ITEM, vec![Item::new(tag::OPERATION, Value::Enumeration(1))]).encode();
        for cut in 1..good.len() {
            assert!(Item::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad_tag = good.clone();
        bad_tag[0] = 0x41;
        assert!(matches!(Item::decode(&bad_tag), Err(TtlvError::BadTag { .. })));
        let mut bad_pad = good.clone();
        let last = bad_pad.len() - 1;
        bad_pad[last] = 1;
        assert!(matches!(Item::decode(&bad_pad), Err(TtlvError::BadPadding { .. })));
        let mut bad_len = good.clone();
        bad_len[15] = 5; // the enumeration claims 5 bytes
        assert!(Item::decode(&bad_len).is_err());
        let mut trailing = good.clone();
        trailing.extend_from_slice(&[0; 8]);
        assert!(matches!(Item::decode(&trailing), Err(TtlvError::TrailingBytes { extra: 8 })));
        let huge = [0x42, 0, 0x78, 1, 0xff, 0xff, 0xff, 0xf0];
        assert!(matches!(frame_length(&huge), Err(TtlvError::TooLarge { .. })));
        // Deep nesting is bounded.
        let mut deep = Item::new(tag::OPERATION, Value::Enumeration(1));
        for _ in 0..40 {
            deep = Item::structure(tag::BATCH_ITEM, vec![deep]);
        }
        assert_eq!(Item::decode(&deep.encode()), Err(TtlvError::TooDeep));
    }

    #[test]
    fn random_and_mutated_bytes_never_panic() {
        // A small deterministic generator: every run tries the same 20,000 inputs.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let good = Item::structure(
            tag::RESPONSE_MESSAGE,
            vec![Item::structure(
                tag::BATCH_ITEM,
                vec![Item::new(tag::RESULT_MESSAGE, Value::TextString("ok".into()))],
            )],
        )
        .encode();
        for round in 0..20_000 {
            let bytes: Vec<u8> = if round % 2 == 0 {
                (0..(next() % 96) as usize).map(|_| next() as u8).collect()
            } else {
                let mut b = good.clone();
                let i = (next() as usize) % b.len();
                b[i] = next() as u8;
                b
            };
            let _ = Item::decode(&bytes);
            if let Ok(header) = <[u8; 8]>::try_from(bytes.get(..8).unwrap_or_default()) {
                let _ = frame_length(&header);
            }
        }
    }

    #[test]
    fn debug_hides_key_material() {
        let item = Item::new(tag::KEY_MATERIAL, Value::ByteString(b"super secret".to_vec()));
        let shown = format!("{item:?}");
        assert!(shown.contains("<12 bytes>") && !shown.contains("super"), "{shown}");
    }
}

//! The protobuf wire format, as much of it as the CRI messages the harness sends and reads:
//! varints, length-delimited fields (strings, bytes, nested messages) and the
//! reading of a message's fields. Field numbers live with the messages in `cri/mod.rs`.

use anyhow::{bail, Result};

/// Wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// Builds one message. Fields at their proto3 default (0, "", false) are left out, as the
/// generated encoders do.
#[derive(Debug, Default, Clone)]
pub struct Writer(Vec<u8>);

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    fn key(&mut self, field: u32, wire: u8) {
        varint(&mut self.0, (u64::from(field) << 3) | u64::from(wire));
    }

    fn len_field(mut self, field: u32, bytes: &[u8]) -> Writer {
        self.key(field, LEN);
        varint(&mut self.0, bytes.len() as u64);
        self.0.extend_from_slice(bytes);
        self
    }

    pub fn string(self, field: u32, value: &str) -> Writer {
        if value.is_empty() {
            return self;
        }
        self.len_field(field, value.as_bytes())
    }

    /// A `repeated string`: one field per element, empty ones included.
    pub fn strings<S: AsRef<str>>(self, field: u32, values: &[S]) -> Writer {
        values
            .iter()
            .fold(self, |w, v| w.len_field(field, v.as_ref().as_bytes()))
    }

    /// `uint32`, `uint64`, enums, and non-negative `int64`.
    pub fn uint(mut self, field: u32, value: u64) -> Writer {
        if value == 0 {
            return self;
        }
        self.key(field, VARINT);
        varint(&mut self.0, value);
        self
    }

    /// `int64` (a negative value is its two's complement, ten bytes long).
    pub fn int(self, field: u32, value: i64) -> Writer {
        self.uint(field, value as u64)
    }

    /// A nested message; an empty one is still written (it marks the field as set).
    pub fn message(self, field: u32, message: Writer) -> Writer {
        self.len_field(field, &message.0)
    }

    pub fn finish(self) -> Vec<u8> {
        self.0
    }
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// One field as it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed(u64),
}

/// The fields of a message, in order (a repeated field appears once per element).
pub fn fields(mut message: &[u8]) -> Result<Vec<(u32, Value<'_>)>> {
    let mut out = Vec::new();
    while !message.is_empty() {
        let key = read_varint(&mut message)?;
        let field = (key >> 3) as u32;
        let value = match (key & 7) as u8 {
            VARINT => Value::Varint(read_varint(&mut message)?),
            LEN => {
                let len = read_varint(&mut message)? as usize;
                if len > message.len() {
                    bail!("protobuf: field {field} runs past the end of the message");
                }
                let (bytes, rest) = message.split_at(len);
                message = rest;
                Value::Bytes(bytes)
            }
            FIXED64 => Value::Fixed(read_fixed(&mut message, 8)?),
            FIXED32 => Value::Fixed(read_fixed(&mut message, 4)?),
            wire => bail!("protobuf: field {field} has wire type {wire}, which is not read here"),
        };
        out.push((field, value));
    }
    Ok(out)
}

fn read_varint(input: &mut &[u8]) -> Result<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let Some((&byte, rest)) = input.split_first() else {
            bail!("protobuf: message ends inside a varint");
        };
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(value);
        }
    }
    bail!("protobuf: varint longer than ten bytes")
}

fn read_fixed(input: &mut &[u8], width: usize) -> Result<u64> {
    if input.len() < width {
        bail!("protobuf: message ends inside a fixed-width field");
    }
    let (bytes, rest) = input.split_at(width);
    *input = rest;
    Ok(bytes
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// A decoded message, read field by field; absent fields read as their defaults.
pub struct Reader<'a> {
    fields: Vec<(u32, Value<'a>)>,
}

impl<'a> Reader<'a> {
    pub fn new(message: &'a [u8]) -> Result<Reader<'a>> {
        Ok(Reader {
            fields: fields(message)?,
        })
    }

    fn last(&self, field: u32) -> Option<Value<'a>> {
        self.fields
            .iter()
            .rev()
            .find(|(f, _)| *f == field)
            .map(|(_, v)| *v)
    }

    pub fn bytes(&self, field: u32) -> &'a [u8] {
        match self.last(field) {
            Some(Value::Bytes(bytes)) => bytes,
            _ => &[],
        }
    }

    pub fn string(&self, field: u32) -> String {
        String::from_utf8_lossy(self.bytes(field)).into_owned()
    }

    pub fn uint(&self, field: u32) -> u64 {
        match self.last(field) {
            Some(Value::Varint(v)) | Some(Value::Fixed(v)) => v,
            _ => 0,
        }
    }

    /// An `int32` (negative values arrive sign-extended to 64 bits).
    pub fn int32(&self, field: u32) -> i32 {
        self.uint(field) as i64 as i32
    }

    pub fn message(&self, field: u32) -> Result<Reader<'a>> {
        Reader::new(self.bytes(field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_little_endian_groups_of_seven() {
        let mut out = Vec::new();
        varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        assert_eq!(read_varint(&mut &out[..]).unwrap(), 300);
        assert!(read_varint(&mut &[0x80u8][..]).is_err());
    }

    #[test]
    fn a_message_reads_back_what_was_written() {
        let inner = Writer::new().string(1, "pod").uint(4, 2);
        let bytes = Writer::new()
            .message(1, inner)
            .strings(3, &["sleep", "1"])
            .int(7, -1)
            .uint(12, 1)
            .message(6, Writer::new().string(1, "k").string(2, "v"))
            .string(9, "")
            .uint(10, 0)
            .finish();
        let reader = Reader::new(&bytes).unwrap();
        let meta = reader.message(1).unwrap();
        assert_eq!((meta.string(1), meta.uint(4)), ("pod".to_string(), 2));
        assert_eq!(reader.int32(7), -1);
        assert_eq!(reader.uint(12), 1);
        assert_eq!(reader.string(9), "");
        let args: Vec<_> = fields(&bytes)
            .unwrap()
            .into_iter()
            .filter(|(f, _)| *f == 3)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(
            args,
            [Value::Bytes(b"sleep"), Value::Bytes(b"1")],
            "repeated fields keep their order"
        );
        let entry = Reader::new(reader.bytes(6)).unwrap();
        assert_eq!((entry.string(1), entry.string(2)), ("k".into(), "v".into()));
    }

    #[test]
    fn the_wire_bytes_match_protoc() {
        // `VersionRequest { version: "v1" }` as protoc encodes it.
        assert_eq!(Writer::new().string(1, "v1").finish(), b"\x0a\x02v1");
        // `ExecSyncResponse { stdout: "hi", exit_code: 3 }`.
        let reader = Reader::new(b"\x0a\x02hi\x18\x03").unwrap();
        assert_eq!((reader.bytes(1), reader.int32(3)), (&b"hi"[..], 3));
    }

    #[test]
    fn truncated_messages_are_errors() {
        assert!(fields(b"\x0a\x05ab").is_err());
        assert!(fields(b"\x0b").is_err(), "wire type 3 (groups) is not read");
    }
}

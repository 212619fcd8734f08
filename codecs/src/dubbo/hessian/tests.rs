//! Unit tests of the hessian2 subset: string lengths in UTF-16 units,
//! chunks, every skip rule, and the bounds.

use super::*;
use bytes::BytesMut;

fn string(s: &str) -> Vec<u8> {
    let mut out = BytesMut::new();
    write_string(&mut out, s);
    out.to_vec()
}

fn read_back(encoded: &[u8]) -> (StrSpan, Vec<u8>, usize) {
    let mut reader = Reader::new(encoded);
    let span = reader.read_string().expect("a string");
    let mut bytes = Vec::new();
    span.collect_into(encoded, &mut bytes);
    (span, bytes, reader.pos())
}

#[test]
fn short_strings_use_the_compact_forms() {
    assert_eq!(string(""), [0x00]);
    assert_eq!(string("hello"), b"\x05hello");
    let s = "x".repeat(40);
    assert_eq!(&string(&s)[..2], [0x30, 40]);
    let s = "x".repeat(1024);
    assert_eq!(&string(&s)[..3], [b'S', 0x04, 0x00]);
}

#[test]
fn lengths_count_utf16_units_not_bytes() {
    // é: 2 bytes, €: 3 bytes, 😀: 4 bytes and two UTF-16 units.
    let s = "é€😀a";
    let encoded = string(s);
    assert_eq!(encoded[0], 5);
    let (span, bytes, end) = read_back(&encoded);
    assert!(!span.chunked);
    assert_eq!(bytes, s.as_bytes());
    assert_eq!(end, encoded.len());
}

#[test]
fn a_long_ascii_string_is_skipped_and_borrowed() {
    let s = "a".repeat(1024) + "é" + &"b".repeat(13);
    let encoded = string(&s);
    let (span, bytes, end) = read_back(&encoded);
    assert_eq!(span.contiguous(&encoded), Some(s.as_bytes()));
    assert_eq!(bytes, s.as_bytes());
    assert_eq!(end, encoded.len());
}

#[test]
fn long_strings_are_chunked_without_splitting_a_surrogate_pair() {
    // 0x7FFF ASCII units then an emoji: the pair must move to the next chunk.
    let s = "a".repeat(CHUNK_CHARS - 1) + "😀" + &"z".repeat(10);
    let encoded = string(&s);
    assert_eq!(&encoded[..3], [b'R', 0x7F, 0xFF]);
    let (span, bytes, end) = read_back(&encoded);
    assert!(span.chunked);
    assert_eq!(bytes, s.as_bytes());
    assert!(span.eq_bytes(&encoded, s.as_bytes()));
    assert!(!span.eq_bytes(&encoded, b"a"));
    assert_eq!(end, encoded.len());
}

#[test]
fn bad_strings_are_malformed() {
    for bad in [
        &b"\x05abc"[..],         // past the end
        b"\x01\x80",             // continuation byte as a lead byte
        b"\x01\xF0\x9F\x98\x80", // a 2-unit character where 1 is left
        b"R\x00\x01aN",          // a chunk followed by a non-string
        b"\x02\xE2\x82",         // truncated 3-byte sequence
        b"I",                    // not a string
    ] {
        assert!(Reader::new(bad).read_string().is_err(), "{bad:?}");
    }
}

#[test]
fn ints_in_every_form() {
    for (bytes, want) in [
        (&b"\x90"[..], 0),
        (b"\x80", -16),
        (b"\xBF", 47),
        (b"\xC8\x30", 48),
        (b"\xC0\x00", -2048),
        (b"\xD4\x0B\xB8", 3000),
        (b"\xD0\x00\x00", -262144),
        (b"I\x80\x00\x00\x00", i32::MIN),
    ] {
        assert_eq!(Reader::new(bytes).read_int().ok(), Some(want), "{bytes:?}");
    }
}

/// One value of every kind the skipper knows, each followed by a marker
/// string that must be where the skipper stops.
#[test]
fn every_tag_is_skipped_to_its_end() {
    let values: &[&[u8]] = &[
        b"N",
        b"T",
        b"F",
        b"\x90",
        b"\xC8\x01",
        b"\xD4\x01\x02",
        b"I\x00\x00\x00\x01",
        b"\xE0",
        b"\xF8\x01",
        b"\x3C\x01\x02",
        b"Y\x00\x00\x00\x01",
        b"L\x00\x00\x00\x00\x00\x00\x00\x01",
        b"\x5B",
        b"\x5C",
        b"\x5D\x01",
        b"\x5E\x01\x02",
        b"\x5F\x00\x00\x00\x01",
        b"D\x00\x00\x00\x00\x00\x00\x00\x00",
        b"J\x00\x00\x00\x00\x00\x00\x00\x00",
        b"K\x00\x00\x00\x01",
        b"\x03abc",
        b"\x30\x01x",
        b"S\x00\x01x",
        b"R\x00\x01xS\x00\x01y",
        b"\x22ab",
        b"\x34\x01x",
        b"B\x00\x01x",
        b"A\x00\x01xB\x00\x01y",
        b"W\x90\x91Z",
        b"X\x92\x01a\x01b",
        b"\x7A\x01a\x01b",
        b"\x78",
        b"U\x04[int\x90Z",
        b"V\x04[int\x92\x90\x91",
        b"\x71\x04[int\x90",
        b"H\x01a\x90Z",
        b"M\x01T\x01a\x90Z",
        b"C\x01P\x92\x01x\x01y\x60\x90\x01z",
        b"C\x01P\x91\x01xO\x90\x90",
        b"W\x90Q\x90Z",
    ];
    for value in values {
        let body = [*value, b"\x03end"].concat();
        let mut reader = Reader::new(&body);
        reader
            .skip_value()
            .unwrap_or_else(|e| panic!("{value:x?}: {e}"));
        assert_eq!(reader.pos(), value.len(), "{value:x?}");
    }
}

#[test]
fn types_and_classes_are_scoped_to_the_body() {
    // A type defined once can be referred to by index later.
    let body = b"U\x04[intZ\x70\x90";
    let mut reader = Reader::new(body);
    assert!(reader.skip_values(2).is_ok());
    // But not before it is defined.
    assert!(Reader::new(b"\x70\x90").skip_value().is_err());
    assert!(Reader::new(b"M\x91Z").skip_value().is_err());
    // Objects need their class definition.
    assert!(Reader::new(b"\x60").skip_value().is_err());
    assert!(Reader::new(b"O\x90").skip_value().is_err());
    assert!(Reader::new(b"C\x01P\x90O\x91").skip_value().is_err());
}

#[test]
fn counts_and_lengths_cannot_run_past_the_body() {
    for bad in [
        &b"X\xD7\xFF\xFF"[..], // a list of 262143 values in 4 bytes
        b"X\x8F",              // a negative count
        b"C\x01P\xD7\xFF\xFF", // a class with more fields than bytes
        b"B\xFF\xFF",          // a binary past the end
        b"A\x00\x00",          // a non-final chunk with nothing after it
        b"W\x90",              // an unterminated list
        b"Z",                  // an end where a value belongs
        b"\x40",               // a reserved tag
    ] {
        assert!(Reader::new(bad).skip_value().is_err(), "{bad:x?}");
    }
    assert!(Reader::new(b"\x90").skip_values(2).is_err());
}

#[test]
fn nesting_is_bounded_without_recursion() {
    let ok = [vec![0x79; MAX_DEPTH], vec![0x90]].concat();
    assert!(Reader::new(&ok).skip_value().is_ok());
    let over = [vec![0x79; MAX_DEPTH + 1], vec![0x90]].concat();
    assert!(Reader::new(&over).skip_value().is_err());
    for tag in [0x79, b'W', b'H'] {
        let deep = vec![tag; 100_000];
        let err = Reader::new(&deep).skip_value().expect_err("too deep");
        assert!(err.to_string().contains("nesting"), "{err}");
    }
}

#[test]
fn class_definitions_are_bounded() {
    // Each definition is 3 bytes: `C`, a 0-char name, 0 fields.
    let defs = b"C\x00\x90".repeat(MAX_CLASS_DEFS + 1);
    let body = [&defs[..], b"N"].concat();
    let err = Reader::new(&body)
        .skip_value()
        .expect_err("too many classes");
    assert!(err.to_string().contains("class"), "{err}");
}

#[test]
fn the_ascii_test_sees_every_byte_at_every_length() {
    for len in 0..300 {
        let ascii = vec![b'a'; len];
        assert!(all_ascii(&ascii), "{len}");
        for at in 0..len {
            let mut bytes = ascii.clone();
            bytes[at] = 0xC3;
            assert!(!all_ascii(&bytes), "{len} {at}");
        }
    }
}

#[test]
fn semicolons_are_found_at_every_offset() {
    for len in 0..40 {
        let mut bytes = b"Ljava/lang/String[]Ljava/util/Map$Entry".repeat(2);
        bytes.retain(|b| *b != b';');
        bytes.truncate(len);
        assert_eq!(request::find_semicolon(&bytes), None, "{len}");
        for at in 0..len {
            let mut with = bytes.clone();
            with[at] = b';';
            if let Some(later) = with.get_mut(at + 3) {
                *later = b';';
            }
            assert_eq!(request::find_semicolon(&with), Some(at), "{len} {at}");
        }
    }
}

#[test]
fn descriptors_count_their_arguments() {
    for (desc, want) in [
        (&b""[..], Some(0)),
        (b"Ljava/lang/String;", Some(1)),
        (b"Ljava/lang/String;I[J[[Ljava/util/Map;Z", Some(5)),
        (b"Ljava/lang/String", None),
        (b"Q", None),
    ] {
        assert_eq!(request::count_args_in(desc).ok(), want, "{desc:?}");
    }
}

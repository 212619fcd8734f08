//! The shared writers, byte by byte: ints at every form boundary, both
//! string dialects, and the draft's objects and lists.

use super::{draft, write_int, write_string};
use bytes::BytesMut;

fn bytes(write: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    let mut out = BytesMut::new();
    write(&mut out);
    out.to_vec()
}

#[test]
fn ints_take_the_shortest_form() {
    let cases: &[(i32, &[u8])] = &[
        (0, &[0x90]),
        (1, &[0x91]),
        (-16, &[0x80]),
        (47, &[0xBF]),
        (48, &[0xC8, 0x30]),
        (52, &[0xC8, 0x34]),
        (-17, &[0xC7, 0xEF]),
        (-2048, &[0xC0, 0x00]),
        (2047, &[0xCF, 0xFF]),
        (2048, &[0xD4, 0x08, 0x00]),
        (-262_144, &[0xD0, 0x00, 0x00]),
        (262_143, &[0xD7, 0xFF, 0xFF]),
        (262_144, &[b'I', 0x00, 0x04, 0x00, 0x00]),
        (i32::MIN, &[b'I', 0x80, 0x00, 0x00, 0x00]),
    ];
    for &(n, want) in cases {
        assert_eq!(bytes(|b| write_int(b, n)), want, "{n}");
    }
}

#[test]
fn the_dialects_agree_on_short_strings_only() {
    for s in ["", "hello", &"x".repeat(31)] {
        assert_eq!(
            bytes(|b| write_string(b, s)),
            bytes(|b| draft::write_string(b, s))
        );
    }
    let s = "x".repeat(40);
    assert_eq!(&bytes(|b| write_string(b, &s))[..2], [0x30, 40]);
    assert_eq!(&bytes(|b| draft::write_string(b, &s))[..3], [b'S', 0, 40]);
}

#[test]
fn draft_strings_are_written_per_utf16_unit() {
    // é: one unit, 2 bytes; €: one unit, 3 bytes; 😀: two surrogates of 3
    // bytes each (Java writes CESU-8, not the 4-byte UTF-8 form).
    let encoded = bytes(|b| draft::write_string(b, "é€😀a"));
    assert_eq!(
        encoded,
        [
            5, 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80, b'a'
        ]
    );
}

#[test]
fn long_draft_strings_are_chunked_with_lowercase_s() {
    // 0x7FFF units then an emoji: the pair moves to the final chunk, whose
    // 4 units take the compact form, as in Java's writer.
    let s = "a".repeat(super::CHUNK_UNITS - 1) + "😀" + "zz";
    let encoded = bytes(|b| draft::write_string(b, &s));
    assert_eq!(&encoded[..3], [b's', 0x7F, 0xFF]);
    let last = 3 + 0x7FFF;
    assert_eq!(encoded[last], 4);
    assert_eq!(encoded.len(), last + 1 + 6 + 2);
    // A longer final chunk: `S`.
    let s = "a".repeat(super::CHUNK_UNITS + 40);
    let encoded = bytes(|b| draft::write_string(b, &s));
    assert_eq!(&encoded[3 + 0x8000..3 + 0x8000 + 3], [b'S', 0, 40]);
}

#[test]
fn a_draft_object_and_typed_list() {
    let encoded = bytes(|b| {
        draft::write_class_def(b, "a.B", &["x", "y"]);
        draft::write_object(b, 0);
        write_int(b, 7);
        draft::write_list_begin(b, "[int", 1);
        write_int(b, 1);
        draft::write_list_end(b);
    });
    assert_eq!(
        encoded,
        b"O\x93a.B\x92\x01x\x01yo\x90\x97Vt\x00\x04[intn\x01\x91z"
    );
    let long = bytes(|b| draft::write_list_begin(b, "[x", 300));
    assert_eq!(long, b"Vt\x00\x02[xl\x00\x00\x01\x2C");
}

//! The header view of a frame: ordered key/value pairs that borrow from the
//! frame's wire bytes.
//!
//! Decoding a frame must not allocate per header, so an entry is a pair of
//! spans: offsets into the shared wire buffer (`Bytes`), into a small owned
//! buffer (values that were not contiguous on the wire, or were set by a
//! filter), or into a static table of well-known keys (routing keys a codec
//! derives, such as bolt's `method`). Up to `INLINE_ENTRIES` entries live
//! inline (twelve); more spill to the heap.
//!
//! Repeated keys are kept in wire order; lookups answer with the *last*
//! occurrence ("last wins", as Java's bolt and Dubbo maps behave).
//!
//! Entries are either *wire fields* (the protocol's own header map, written
//! back on re-encode) or *derived* (routing keys a codec computed from other
//! fields, e.g. Dubbo's `service` from the request head; never re-encoded as
//! header fields).

use bytes::Bytes;
use smallvec::SmallVec;
use std::fmt;
use std::ops::Range;

/// Well-known routing keys every RPC codec fills where its protocol has them.
pub mod keys {
    /// Target service (bolt `service`, Dubbo interface/path).
    pub const SERVICE: &str = "service";
    /// Method name.
    pub const METHOD: &str = "method";
    /// Service version.
    pub const VERSION: &str = "version";
    /// Service group (Dubbo attachment `group`).
    pub const GROUP: &str = "group";
}

/// Keys a codec may use for derived entries without owning their bytes.
const STATIC_KEYS: &[&str] = &[
    keys::SERVICE,
    keys::METHOD,
    keys::VERSION,
    keys::GROUP,
    "dubbo",
    "interface",
    "path",
    "timeout",
];

/// The index of `key` in [`STATIC_KEYS`]; a `match` the compiler resolves
/// at the call site for the literal keys codecs pass.
#[inline]
fn static_key_index(key: &str) -> Option<usize> {
    Some(match key {
        "service" => 0,
        "method" => 1,
        "version" => 2,
        "group" => 3,
        "dubbo" => 4,
        "interface" => 5,
        "path" => 6,
        "timeout" => 7,
        _ => return None,
    })
}

/// How many entries fit without a heap allocation.
pub(crate) const INLINE_ENTRIES: usize = 12;

const SRC_SHIFT: u32 = 30;
const LEN_MASK: u32 = (1 << SRC_SHIFT) - 1;
const SRC_WIRE: u32 = 0;
const SRC_OWNED: u32 = 1;
const SRC_STATIC: u32 = 2;

/// A string location: 30 bits of length, 2 bits naming the buffer.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    len_src: u32,
}

impl Span {
    #[inline]
    fn new(src: u32, start: usize, len: usize) -> Option<Span> {
        let start = u32::try_from(start).ok()?;
        let len = u32::try_from(len).ok().filter(|len| *len <= LEN_MASK)?;
        Some(Span {
            start,
            len_src: len | (src << SRC_SHIFT),
        })
    }

    #[inline]
    fn src(self) -> u32 {
        self.len_src >> SRC_SHIFT
    }

    #[inline]
    fn len(self) -> usize {
        (self.len_src & LEN_MASK) as usize
    }
}

/// One pair. Whether it is derived rides in the top bit of the key's
/// start, which no offset reaches (frames are at most 1 GiB), so an entry
/// is 16 bytes and twelve of them fit inline in 192.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Entry {
    key_flagged: Span,
    value: Span,
}

const DERIVED: u32 = 1 << 31;

impl Entry {
    #[inline]
    fn new(key: Span, value: Span, derived: bool) -> Option<Entry> {
        if key.start & DERIVED != 0 {
            return None;
        }
        let flag = if derived { DERIVED } else { 0 };
        Some(Entry {
            key_flagged: Span {
                start: key.start | flag,
                len_src: key.len_src,
            },
            value,
        })
    }

    #[inline]
    fn key(self) -> Span {
        Span {
            start: self.key_flagged.start & !DERIVED,
            len_src: self.key_flagged.len_src,
        }
    }

    #[inline]
    fn derived(self) -> bool {
        self.key_flagged.start & DERIVED != 0
    }
}

/// Ordered header pairs borrowing from a frame's bytes. See the module docs.
#[derive(Clone, Default)]
pub struct Headers {
    wire: Bytes,
    owned: Vec<u8>,
    entries: SmallVec<[Entry; INLINE_ENTRIES]>,
    modified: bool,
}

impl Headers {
    /// An empty header view.
    pub fn new() -> Headers {
        Headers::default()
    }

    /// An empty view whose wire spans index into `wire` (usually the shared
    /// middle of a frame, [`crate::Wire::rest`]).
    pub fn over(wire: Bytes) -> Headers {
        Headers {
            wire,
            ..Headers::default()
        }
    }

    /// The buffer wire spans index into.
    pub fn wire(&self) -> &Bytes {
        &self.wire
    }

    /// Sets the buffer wire spans index into. Lets a decoder record spans
    /// while it validates a frame still sitting in the read buffer, and bind
    /// them to the frame's bytes once it splits them off (one pass, and
    /// nothing split on error).
    pub fn bind(&mut self, wire: Bytes) {
        self.wire = wire;
    }

    /// Appends a wire field whose key and value are byte ranges of the
    /// buffer given to [`Headers::over`] or [`Headers::bind`]. Used while
    /// decoding: no copy, and no allocation until more than twelve entries.
    /// Spans are checked when read: one outside the buffer (a codec bug)
    /// reads as an empty string, never as a panic.
    #[inline]
    pub fn push_wire(&mut self, key: Range<usize>, value: Range<usize>) {
        self.push_spans(key, value, false);
    }

    /// Like [`Headers::push_wire`], for a routing key derived from a field
    /// elsewhere in the frame. `key` must be one of the well-known names
    /// (see [`keys`], plus `dubbo`, `interface`, `path`, `timeout`); any
    /// other name is stored in the owned buffer.
    #[inline]
    pub fn push_derived(&mut self, key: &'static str, value: Range<usize>) {
        let key_span = match static_key_index(key) {
            Some(index) => Span::new(SRC_STATIC, index, key.len()),
            None => self.own(key.as_bytes()),
        };
        let value_span = self.wire_span(value);
        if let (Some(key), Some(value)) = (key_span, value_span) {
            self.push_entry(Entry::new(key, value, true));
        }
    }

    /// Appends a derived routing key whose value is not in the wire buffer
    /// (copied into the owned buffer).
    pub fn push_derived_owned(&mut self, key: &'static str, value: &[u8]) {
        let key_span = match static_key_index(key) {
            Some(index) => Span::new(SRC_STATIC, index, key.len()),
            None => self.own(key.as_bytes()),
        };
        if let (Some(key), Some(value)) = (key_span, self.own(value)) {
            self.push_entry(Entry::new(key, value, true));
        }
    }

    /// Appends a wire field by copying key and value (used when the value is
    /// not contiguous on the wire, e.g. a chunked hessian string). Does not
    /// mark the headers modified.
    pub fn push_owned(&mut self, key: &[u8], value: &[u8]) {
        if let (Some(key), Some(value)) = (self.own(key), self.own(value)) {
            self.push_entry(Entry::new(key, value, false));
        }
    }

    /// Sets `key` to `value`: removes every earlier entry for `key` (wire or
    /// derived) and appends a wire field. Marks the headers modified, so the
    /// codec re-encodes the header section instead of forwarding the
    /// original bytes.
    pub fn insert(&mut self, key: &str, value: &[u8]) {
        self.remove(key);
        self.push_owned(key.as_bytes(), value);
        self.modified = true;
    }

    /// Removes every entry for `key`; true if there was one.
    pub fn remove(&mut self, key: &str) -> bool {
        let before = self.entries.len();
        let mut entries = std::mem::take(&mut self.entries);
        entries.retain(|entry| self.resolve(entry.key()) != key.as_bytes());
        self.entries = entries;
        let removed = self.entries.len() != before;
        self.modified |= removed;
        removed
    }

    /// The value of the last entry for `key`, if any.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        // Lengths first: most keys differ in length, and comparing them
        // needs no lookup of where the key's bytes are.
        self.entries
            .iter()
            .rev()
            .filter(|entry| entry.key().len() == key.len())
            .find(|entry| self.resolve(entry.key()) == key.as_bytes())
            .map(|entry| self.resolve(entry.value))
    }

    /// [`Headers::get`] as UTF-8; `None` when absent or not valid UTF-8.
    #[inline]
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// True if some entry has this key.
    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Every entry in order, duplicates included: `(key, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.entries
            .iter()
            .map(|entry| (self.resolve(entry.key()), self.resolve(entry.value)))
    }

    /// The protocol's own header fields in order (derived routing keys left
    /// out): what a codec writes back when it re-encodes the header section.
    pub fn wire_fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.entries
            .iter()
            .filter(|entry| !entry.derived())
            .map(|entry| (self.resolve(entry.key()), self.resolve(entry.value)))
    }

    /// Number of entries, duplicates and derived keys included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True once [`Headers::insert`] or [`Headers::remove`] changed something.
    pub fn is_modified(&self) -> bool {
        self.modified
    }

    /// True when the entries spilled to the heap (for allocation tests).
    pub fn spilled(&self) -> bool {
        self.entries.spilled()
    }

    #[inline]
    fn push_spans(&mut self, key: Range<usize>, value: Range<usize>, derived: bool) {
        if let (Some(key), Some(value)) = (self.wire_span(key), self.wire_span(value)) {
            self.push_entry(Entry::new(key, value, derived));
        } else {
            debug_assert!(false, "header span reversed or over 1 GiB");
        }
    }

    #[inline]
    fn push_entry(&mut self, entry: Option<Entry>) {
        match entry {
            Some(entry) => self.entries.push(entry),
            None => debug_assert!(false, "header key offset over 2 GiB"),
        }
    }

    #[inline]
    fn wire_span(&self, range: Range<usize>) -> Option<Span> {
        if range.start > range.end {
            return None;
        }
        Span::new(SRC_WIRE, range.start, range.end - range.start)
    }

    fn own(&mut self, bytes: &[u8]) -> Option<Span> {
        let span = Span::new(SRC_OWNED, self.owned.len(), bytes.len())?;
        self.owned.extend_from_slice(bytes);
        Some(span)
    }

    #[inline]
    fn resolve(&self, span: Span) -> &[u8] {
        let start = span.start as usize;
        let end = start + span.len();
        match span.src() {
            SRC_WIRE => self.wire.get(start..end).unwrap_or_default(),
            SRC_OWNED => self.owned.get(start..end).unwrap_or_default(),
            _ => STATIC_KEYS
                .get(start)
                .map(|k| k.as_bytes())
                .unwrap_or_default(),
        }
    }
}

impl PartialEq for Headers {
    /// Equal when both hold the same pairs in the same order, wherever the
    /// bytes live.
    fn eq(&self, other: &Headers) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.iter()
                    .map(|(k, v)| (String::from_utf8_lossy(k), String::from_utf8_lossy(v))),
            )
            .finish()
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> FromIterator<(K, V)> for Headers {
    /// Builds owned wire fields (tests and hand-built frames).
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Headers {
        let mut headers = Headers::new();
        for (key, value) in iter {
            headers.push_owned(key.as_ref().as_bytes(), value.as_ref());
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire_headers() -> Headers {
        // "service" "a.B:1.0" "x" "1" "x" "2"
        let wire = Bytes::from_static(b"servicea.B:1.0x1x2");
        let mut h = Headers::over(wire);
        h.push_wire(0..7, 7..14);
        h.push_wire(14..15, 15..16);
        h.push_wire(16..17, 17..18);
        h
    }

    #[test]
    fn lookups_borrow_from_the_wire_and_last_wins() {
        let h = wire_headers();
        assert_eq!(h.get_str("service"), Some("a.B:1.0"));
        assert_eq!(h.get("x"), Some(&b"2"[..]));
        assert_eq!(h.get("missing"), None);
        assert_eq!(h.len(), 3);
        assert!(!h.is_modified());
        assert!(!h.spilled());
    }

    #[test]
    fn derived_keys_are_visible_but_not_wire_fields() {
        let mut h = wire_headers();
        h.push_derived(keys::METHOD, 15..16);
        assert_eq!(h.get_str("method"), Some("1"));
        assert_eq!(h.wire_fields().count(), 3);
        assert_eq!(h.iter().count(), 4);
    }

    #[test]
    fn insert_replaces_every_occurrence_and_marks_modified() {
        let mut h = wire_headers();
        h.insert("x", b"3");
        assert_eq!(h.get_str("x"), Some("3"));
        assert_eq!(h.iter().filter(|(k, _)| *k == b"x").count(), 1);
        assert!(h.is_modified());
        assert!(h.remove("service"));
        assert!(!h.remove("service"));
        assert_eq!(h.get("service"), None);
    }

    #[test]
    fn equality_ignores_where_bytes_live() {
        let owned: Headers = [("service", "a.B:1.0"), ("x", "1"), ("x", "2")]
            .into_iter()
            .collect();
        assert_eq!(owned, wire_headers());
    }

    #[test]
    fn static_key_indexes_agree_with_the_table() {
        for (i, key) in STATIC_KEYS.iter().enumerate() {
            assert_eq!(static_key_index(key), Some(i));
        }
        assert_eq!(static_key_index("other"), None);
    }

    #[test]
    fn many_entries_spill_without_losing_any() {
        let h: Headers = (0..40)
            .map(|i| (format!("k{i}"), format!("v{i}")))
            .collect();
        assert!(h.spilled());
        assert_eq!(h.get_str("k39"), Some("v39"));
    }
}

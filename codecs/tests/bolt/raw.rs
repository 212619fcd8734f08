//! Hand-built frames, any field value allowed (for malformed inputs and
//! generators).

use bytes::{BufMut, BytesMut};

/// A raw frame, any field value allowed (for malformed inputs).
#[derive(Clone, Debug)]
pub(crate) struct Raw {
    pub(crate) proto: u8,
    pub(crate) ver1: u8,
    pub(crate) cmd_type: u8,
    pub(crate) cmd: u16,
    pub(crate) id: u32,
    pub(crate) codec: u8,
    pub(crate) switch: u8,
    pub(crate) timeout_or_status: i32,
    pub(crate) class: Vec<u8>,
    pub(crate) map: Vec<u8>,
    pub(crate) content: Vec<u8>,
    /// Overrides the declared lengths (class, header, content).
    pub(crate) lens: Option<(u16, u16, u32)>,
}

impl Raw {
    pub(crate) fn request(proto: u8) -> Raw {
        Raw {
            proto,
            ver1: 1,
            cmd_type: 1,
            cmd: 1,
            id: 42,
            codec: 1,
            switch: 0,
            timeout_or_status: 3000,
            class: b"C".to_vec(),
            map: Vec::new(),
            content: b"body".to_vec(),
            lens: None,
        }
    }

    pub(crate) fn bytes(&self) -> Vec<u8> {
        let mut b = BytesMut::new();
        let v2 = self.proto == 2;
        b.put_u8(self.proto);
        if v2 {
            b.put_u8(self.ver1);
        }
        b.put_u8(self.cmd_type);
        b.put_u16(self.cmd);
        b.put_u8(1);
        b.put_u32(self.id);
        b.put_u8(self.codec);
        if v2 {
            b.put_u8(self.switch);
        }
        if self.cmd_type == 0 {
            b.put_u16(self.timeout_or_status as u16);
        } else {
            b.put_i32(self.timeout_or_status);
        }
        let (c, h, n) = self.lens.unwrap_or((
            self.class.len() as u16,
            self.map.len() as u16,
            self.content.len() as u32,
        ));
        b.put_u16(c);
        b.put_u16(h);
        b.put_u32(n);
        b.put_slice(&self.class);
        b.put_slice(&self.map);
        b.put_slice(&self.content);
        if v2 && self.ver1 == 2 && self.switch & 1 == 1 {
            let crc = crc32fast::hash(&b);
            b.put_u32(crc);
        }
        b.to_vec()
    }
}

/// One header-map string: i32 length + bytes (`None` = null, -1).
pub(crate) fn map_string(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => {
            out.extend_from_slice(&(s.len() as i32).to_be_bytes());
            out.extend_from_slice(s);
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    }
}

/// A non-null header-map string.
pub(crate) fn s(text: &str) -> Option<&[u8]> {
    Some(text.as_bytes())
}

/// A header-map pair; `None` strings are nulls.
pub(crate) type MapPair<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

pub(crate) fn map_of(pairs: &[MapPair<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        map_string(&mut out, *k);
        map_string(&mut out, *v);
    }
    out
}

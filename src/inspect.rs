//! Inspecting captures: detect the protocol of a byte stream the way a
//! listener would, then decode every frame in it. Behind `meshgate decode`.

use bytes::BytesMut;
use meshgate_codecs::{
    CodecError, Detection, Frame, FrameKind, Limits, Protocol, Registry, RegistryError,
};
use serde_json::{Value, json};
use std::fmt::{self, Write as _};

/// What a capture holds.
#[derive(Debug)]
pub struct Inspection {
    /// Capture length in bytes.
    pub len: usize,
    /// The protocol that matched, if any.
    pub protocol: Option<String>,
    /// True when the protocol came from detection, false when forced.
    pub detected: bool,
    /// Every frame decoded, in order.
    pub frames: Vec<Decoded>,
    /// How decoding ended.
    pub end: End,
}

/// One decoded frame and where it sat in the capture.
#[derive(Debug)]
pub struct Decoded {
    /// Byte offset of the frame in the capture.
    pub offset: usize,
    /// Frame length in bytes.
    pub len: usize,
    /// The frame itself.
    pub frame: Frame,
}

/// How decoding a capture ended.
#[derive(Debug)]
pub enum End {
    /// Every byte belonged to a whole frame.
    Complete,
    /// The capture stops inside a frame.
    Incomplete {
        /// Offset where the incomplete frame starts.
        offset: usize,
        /// Bytes of it present.
        have: usize,
    },
    /// The bytes at `offset` are not a valid frame.
    Corrupt {
        /// Offset of the bad frame.
        offset: usize,
        /// Why.
        error: CodecError,
    },
    /// No selected protocol matches the first bytes.
    NoMatch,
    /// A protocol served by an HTTP library, not a frame codec: detection
    /// only.
    NotFramed,
}

impl Inspection {
    /// True when the capture decoded cleanly to the end.
    pub fn is_clean(&self) -> bool {
        matches!(self.end, End::Complete | End::NotFramed)
    }
}

/// Detects (or takes `force`d) the protocol of `bytes` among the protocols
/// `selection` names (`Auto`, a name, or a comma list) and decodes every
/// frame of it.
pub fn inspect(
    registry: &Registry,
    selection: &str,
    force: Option<&str>,
    bytes: &[u8],
    limits: &Limits,
) -> Result<Inspection, RegistryError> {
    let set = registry.select(force.unwrap_or(selection))?;
    let (protocol, detected) = match (force, set.detect(bytes)) {
        (Some(_), _) => (set.protocols().first().cloned(), false),
        (None, Detection::Match(p)) => (Some(p.clone()), true),
        (None, Detection::NeedMore | Detection::NoMatch) => (None, true),
    };
    let mut inspection = Inspection {
        len: bytes.len(),
        protocol: protocol.as_ref().map(|p| p.name().to_owned()),
        detected,
        frames: Vec::new(),
        end: End::NoMatch,
    };
    let codec = match protocol {
        Some(Protocol::Framed(codec)) => codec,
        Some(_) => {
            inspection.end = End::NotFramed;
            return Ok(inspection);
        }
        None => return Ok(inspection),
    };
    let mut buf = BytesMut::from(bytes);
    let mut offset = 0;
    inspection.end = loop {
        match codec.decode(&mut buf, limits) {
            Ok(Some(frame)) => {
                // Codecs read the header section on first use; a tool
                // reports an unreadable one as the corruption it is.
                if let Err(error) = frame.read_headers() {
                    break End::Corrupt { offset, error };
                }
                let len = frame.wire().map_or(0, |w| w.len());
                inspection.frames.push(Decoded { offset, len, frame });
                offset += len;
            }
            Ok(None) if buf.is_empty() => break End::Complete,
            Ok(None) => {
                break End::Incomplete {
                    offset,
                    have: buf.len(),
                };
            }
            Err(error) => break End::Corrupt { offset, error },
        }
    };
    Ok(inspection)
}

fn kind_name(kind: FrameKind) -> &'static str {
    match kind {
        FrameKind::Request => "request",
        FrameKind::Oneway => "oneway",
        FrameKind::Response => "response",
        FrameKind::Heartbeat { reply: false } => "heartbeat",
        FrameKind::Heartbeat { reply: true } => "heartbeat-reply",
        FrameKind::GoAway => "goaway",
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = if self.detected { "detected" } else { "forced" };
        match &self.protocol {
            Some(p) => writeln!(f, "{} bytes, protocol {p} ({how})", self.len)?,
            None => writeln!(f, "{} bytes, no protocol matches the first bytes", self.len)?,
        }
        for (n, d) in self.frames.iter().enumerate() {
            let frame = &d.frame;
            let mut line = format!(
                "#{} @{} len {} {} id={}",
                n + 1,
                d.offset,
                d.len,
                kind_name(frame.kind),
                frame.request_id
            );
            if let Some(status) = frame.status {
                let _ = write!(line, " status={} ({})", status.code, status.neutral);
            }
            if let Some(ms) = frame.timeout_ms() {
                let _ = write!(line, " timeout={ms}ms");
            }
            if !frame.class().is_empty() {
                let _ = write!(line, " class={}", lossy(frame.class()));
            }
            writeln!(f, "{line}")?;
            for (key, value) in frame.headers().iter() {
                writeln!(f, "    {}: {}", lossy(key), lossy(value))?;
            }
            writeln!(f, "    body: {} bytes", frame.body().len())?;
        }
        match &self.end {
            End::Complete => writeln!(f, "end: complete"),
            End::Incomplete { offset, have } => {
                writeln!(
                    f,
                    "end: incomplete frame at @{offset} ({have} bytes present)"
                )
            }
            End::Corrupt { offset, error } => {
                writeln!(f, "end: corrupt frame at @{offset}: {error}")
            }
            End::NoMatch => writeln!(f, "end: nothing decoded"),
            End::NotFramed => writeln!(f, "end: served by the HTTP stack; detection only"),
        }
    }
}

impl Inspection {
    /// The inspection as JSON (for scripts).
    pub fn to_json(&self) -> Value {
        let frames: Vec<Value> = self
            .frames
            .iter()
            .map(|d| {
                let frame = &d.frame;
                let headers: Vec<Value> = frame
                    .headers()
                    .iter()
                    .map(|(k, v)| json!([lossy(k), lossy(v)]))
                    .collect();
                json!({
                    "offset": d.offset,
                    "len": d.len,
                    "kind": kind_name(frame.kind),
                    "request_id": frame.request_id,
                    "status": frame.status.map(|s| json!({"code": s.code, "neutral": s.neutral})),
                    "timeout_ms": frame.timeout_ms(),
                    "class": (!frame.class().is_empty()).then(|| lossy(frame.class())),
                    "headers": headers,
                    "body_len": frame.body().len(),
                })
            })
            .collect();
        let end = match &self.end {
            End::Complete => json!({"outcome": "complete"}),
            End::Incomplete { offset, have } => {
                json!({"outcome": "incomplete", "offset": offset, "have": have})
            }
            End::Corrupt { offset, error } => {
                json!({"outcome": "corrupt", "offset": offset, "error": error.to_string()})
            }
            End::NoMatch => json!({"outcome": "no_match"}),
            End::NotFramed => json!({"outcome": "not_framed"}),
        };
        json!({
            "len": self.len,
            "protocol": self.protocol,
            "detected": self.detected,
            "frames": frames,
            "end": end,
        })
    }
}

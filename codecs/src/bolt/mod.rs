//! SOFARPC bolt v1/v2 (skeleton: replaced by the bolt codec work).
use crate::{CodecError, Detect, Frame, FrameCodec, Limits, ReplyStatus};
use bytes::BytesMut;

/// The bolt codec family.
#[derive(Debug)]
pub struct BoltCodec {
    name: &'static str,
}

impl BoltCodec {
    /// Detects bolt v1 (`0x01`).
    pub fn v1() -> BoltCodec {
        BoltCodec { name: "bolt" }
    }
    /// Detects bolt v2 (`0x02`).
    pub fn v2() -> BoltCodec {
        BoltCodec { name: "boltv2" }
    }
}

impl FrameCodec for BoltCodec {
    fn name(&self) -> &str {
        self.name
    }
    fn detect(&self, _prefix: &[u8]) -> Detect {
        Detect::NoMatch
    }
    fn decode(&self, _src: &mut BytesMut, _limits: &Limits) -> Result<Option<Frame>, CodecError> {
        Err(CodecError::unsupported("bolt", "skeleton"))
    }
    fn encode(&self, _frame: &Frame, _dst: &mut BytesMut) -> Result<(), CodecError> {
        Err(CodecError::unsupported("bolt", "skeleton"))
    }
    fn set_request_id(&self, frame: &mut Frame, id: u64) {
        frame.request_id = id;
    }
    fn error_reply(&self, _req: &Frame, _status: ReplyStatus, _msg: &str) -> Option<Frame> {
        None
    }
}

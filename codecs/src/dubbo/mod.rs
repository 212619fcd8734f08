//! Dubbo 2 (skeleton: replaced by the Dubbo codec work).
use crate::{CodecError, Detect, Frame, FrameCodec, Limits, ReplyStatus};
use bytes::BytesMut;

/// The Dubbo codec.
#[derive(Debug)]
pub struct DubboCodec {
    name: &'static str,
}

impl DubboCodec {
    /// The Dubbo codec.
    pub fn new() -> DubboCodec {
        DubboCodec { name: "dubbo" }
    }
}

impl FrameCodec for DubboCodec {
    fn name(&self) -> &str {
        self.name
    }
    fn detect(&self, _prefix: &[u8]) -> Detect {
        Detect::NoMatch
    }
    fn decode(&self, _src: &mut BytesMut, _limits: &Limits) -> Result<Option<Frame>, CodecError> {
        Err(CodecError::unsupported("dubbo", "skeleton"))
    }
    fn encode(&self, _frame: &Frame, _dst: &mut BytesMut) -> Result<(), CodecError> {
        Err(CodecError::unsupported("dubbo", "skeleton"))
    }
    fn set_request_id(&self, frame: &mut Frame, id: u64) {
        frame.request_id = id;
    }
    fn error_reply(&self, _req: &Frame, _status: ReplyStatus, _msg: &str) -> Option<Frame> {
        None
    }
}

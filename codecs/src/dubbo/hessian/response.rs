//! The body of a successful (status 20) hessian2 Dubbo response: the
//! result type, the result (skipped), and the attachments map of the types
//! that carry one.
//!
//! ```text
//!  0x90-0x95   value or exception (types 0, 1, 3, 4)   H k v k v ... Z (types 3, 4, 5)
//!  type        result                                   attachments
//! ```

use super::request::{Attachment, Attachments, AttachmentsForm, attachment, attachments};
use super::{Bad, Reader};
use crate::CodecError;
use std::ops::Range;

/// `RESPONSE_WITH_EXCEPTION`: a Throwable follows.
pub const RESPONSE_WITH_EXCEPTION: u8 = 0;
/// `RESPONSE_VALUE`: the return value follows.
pub const RESPONSE_VALUE: u8 = 1;
/// `RESPONSE_NULL_VALUE`: nothing follows.
pub const RESPONSE_NULL_VALUE: u8 = 2;
/// The types above plus this carry an attachments map after the result
/// (`RESPONSE_WITH_EXCEPTION_WITH_ATTACHMENTS` = 3, and so on).
pub const WITH_ATTACHMENTS: u8 = 3;

/// Where the parts of a response body are. Offsets are body offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseBody {
    /// The result type, 0 to 5.
    pub kind: u8,
    /// The result's bytes (the value or exception; empty for null types).
    pub result: Range<usize>,
    /// The attachments map (types 3 to 5); `None` for types 0 to 2.
    pub attachments: Option<Attachments>,
}

impl ResponseBody {
    /// The type with attachments matching this one's result (3, 4 or 5).
    pub fn kind_with_attachments(&self) -> u8 {
        self.kind % WITH_ATTACHMENTS + WITH_ATTACHMENTS
    }
}

/// Reads a successful response's body, handing each attachment pair to
/// `on_attachment` in wire order. Bytes after the attachments (or after the
/// result, for types without them) are not read.
pub fn read_response(
    body: &[u8],
    mut on_attachment: impl FnMut(&Attachment),
) -> Result<ResponseBody, CodecError> {
    let mut read = || {
        let mut reader = Reader::new(body);
        let kind = u8::try_from(reader.int()?)
            .ok()
            .filter(|k| *k <= WITH_ATTACHMENTS + RESPONSE_NULL_VALUE)
            .ok_or(Bad(&"dubbo response type is not 0-5"))?;
        let start = reader.pos();
        if kind % WITH_ATTACHMENTS != RESPONSE_NULL_VALUE {
            reader.skip_n(1)?;
        }
        let result = start..reader.pos();
        let attachments = if kind >= WITH_ATTACHMENTS {
            let found = attachments(&mut reader, |reader| {
                on_attachment(&attachment(reader)?);
                Ok(())
            })?;
            if found.form != AttachmentsForm::Map {
                return Err(Bad(&"dubbo response attachments are not a map"));
            }
            Some(found)
        } else {
            None
        };
        Ok(ResponseBody {
            kind,
            result,
            attachments,
        })
    };
    read().map_err(Bad::error)
}

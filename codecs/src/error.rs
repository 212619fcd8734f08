//! Errors of the codec layer.

use std::borrow::Cow;

/// A stream that cannot be decoded (or a frame that cannot be encoded).
/// "Need more bytes" is not an error: decode returns `Ok(None)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The bytes break the protocol's layout.
    #[error("malformed {protocol} frame: {what}")]
    Malformed {
        /// Codec name.
        protocol: &'static str,
        /// What is wrong, for the log line.
        what: Cow<'static, str>,
    },
    /// A length field declares a frame over the configured limit; rejected
    /// before buffering it.
    #[error("{protocol} frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Codec name.
        protocol: &'static str,
        /// Declared frame length.
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// A checksum in the frame does not match its bytes.
    #[error(
        "{protocol} frame CRC32 mismatch: frame says {expected:#010x}, bytes give {actual:#010x}"
    )]
    ChecksumMismatch {
        /// Codec name.
        protocol: &'static str,
        /// The checksum carried by the frame.
        expected: u32,
        /// The checksum of the bytes.
        actual: u32,
    },
    /// A valid frame using a feature this codec does not handle.
    #[error("{protocol}: {what} is not supported")]
    Unsupported {
        /// Codec name.
        protocol: &'static str,
        /// The feature.
        what: Cow<'static, str>,
    },
}

impl CodecError {
    /// Shorthand for [`CodecError::Malformed`].
    pub fn malformed(protocol: &'static str, what: impl Into<Cow<'static, str>>) -> CodecError {
        CodecError::Malformed {
            protocol,
            what: what.into(),
        }
    }

    /// Shorthand for [`CodecError::Unsupported`].
    pub fn unsupported(protocol: &'static str, what: impl Into<Cow<'static, str>>) -> CodecError {
        CodecError::Unsupported {
            protocol,
            what: what.into(),
        }
    }
}

/// A registry that cannot be built or queried as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two protocols with one name.
    #[error("a protocol named {0:?} is already registered")]
    Duplicate(String),
    /// A protocol name nobody registered.
    #[error("unknown protocol {name:?}; registered: {known}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// Comma-separated registered names, for the hint.
        known: String,
    },
    /// A name that cannot be registered (`Auto`, empty, or with a comma).
    #[error("{0:?} cannot name a protocol (reserved, empty or contains ',')")]
    InvalidName(String),
    /// An empty protocol list such as `""` or `","`.
    #[error("empty protocol list {0:?}; use a protocol name, a comma list, or \"Auto\"")]
    EmptySelection(String),
}

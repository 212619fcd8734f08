//! Why a generic protocol config was rejected. Every variant names the
//! offending field by its JSON path (`response.length_offset`,
//! `reply_copy[0].len`) and says how to fix it.

/// A [`crate::generic::GenericConfig`] that does not describe a usable
/// protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GenericConfigError {
    /// A required field is absent.
    #[error("generic protocol config: {path} is missing; {fix}")]
    Missing {
        /// JSON path of the field.
        path: String,
        /// What to write there.
        fix: &'static str,
    },
    /// A field width the codec cannot read.
    #[error("generic protocol config: {path} = {width} is not a supported width; use {allowed}")]
    Width {
        /// JSON path of the width.
        path: String,
        /// The configured width.
        width: u64,
        /// The widths that work, for the hint.
        allowed: &'static str,
    },
    /// A field that does not lie inside the fixed header it belongs to.
    #[error(
        "generic protocol config: {path} puts bytes {start}..{end} outside the {header} header \
         of {header_len} bytes; move the field below byte {header_len} or raise {header}.header_len"
    )]
    OutsideHeader {
        /// JSON path of the field.
        path: String,
        /// First byte of the field.
        start: u64,
        /// One past its last byte.
        end: u64,
        /// The layout (`request`, `response` or `layout`).
        header: &'static str,
        /// That layout's header length.
        header_len: u64,
    },
    /// Two fields claiming the same header bytes.
    #[error(
        "generic protocol config: {path} (bytes {start}..{end}) overlaps {other}; \
         give each field its own bytes"
    )]
    Overlap {
        /// JSON path of the field.
        path: String,
        /// JSON path of the field it collides with.
        other: String,
        /// First byte of the field.
        start: u64,
        /// One past its last byte.
        end: u64,
    },
    /// Any other bad value.
    #[error("generic protocol config: {path}: {problem}; {fix}")]
    Invalid {
        /// JSON path of the field.
        path: String,
        /// What is wrong with it.
        problem: String,
        /// How to fix it.
        fix: String,
    },
}

impl GenericConfigError {
    /// The JSON path of the offending field.
    pub fn path(&self) -> &str {
        match self {
            GenericConfigError::Missing { path, .. }
            | GenericConfigError::Width { path, .. }
            | GenericConfigError::OutsideHeader { path, .. }
            | GenericConfigError::Overlap { path, .. }
            | GenericConfigError::Invalid { path, .. } => path,
        }
    }

    pub(super) fn invalid(
        path: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> GenericConfigError {
        GenericConfigError::Invalid {
            path: path.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    pub(super) fn missing(path: impl Into<String>, fix: &'static str) -> GenericConfigError {
        GenericConfigError::Missing {
            path: path.into(),
            fix,
        }
    }
}

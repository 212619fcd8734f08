//! The chunked body decoder (RFC 9112 §7.1): chunk-size lines,
//! extensions ignored, trailers kept.

use super::WireError;
use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Trailer fields per chunked body.
const MAX_TRAILERS: usize = 32;
/// A chunk-size line (size and extensions) longer than this is refused.
const MAX_CHUNK_LINE: usize = 4096;

/// One step of a chunked body.
#[derive(Debug)]
pub(crate) enum ChunkStep {
    /// Body bytes.
    Data(Bytes),
    /// The trailer section (only when it has fields).
    Trailers(HeaderMap),
    /// The body is over.
    End,
    /// More bytes are needed from the socket.
    NeedMore,
}

/// The chunked decoder's place in the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Chunked {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk, this many bytes to go.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer fields, then an empty line.
    Trailers,
    /// Over.
    Done,
}

impl Chunked {
    /// Decodes what it can from the front of `buf`. `limit` bounds the
    /// trailer section.
    pub(crate) fn step(
        &mut self,
        buf: &mut BytesMut,
        limit: usize,
    ) -> Result<ChunkStep, WireError> {
        // Each turn consumes a size line or a CRLF, or returns.
        loop {
            match *self {
                Chunked::Size => {
                    let Some(end) = buf.iter().position(|&b| b == b'\n') else {
                        if buf.len() > MAX_CHUNK_LINE {
                            return Err(WireError::Chunk("chunk-size line too long"));
                        }
                        return Ok(ChunkStep::NeedMore);
                    };
                    let size = chunk_size(&buf[..end])?;
                    buf.advance(end + 1);
                    *self = if size == 0 {
                        Chunked::Trailers
                    } else {
                        Chunked::Data(size)
                    };
                }
                Chunked::Data(left) => {
                    if buf.is_empty() {
                        return Ok(ChunkStep::NeedMore);
                    }
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    let left = left - take as u64;
                    *self = if left == 0 {
                        Chunked::DataEnd
                    } else {
                        Chunked::Data(left)
                    };
                    return Ok(ChunkStep::Data(buf.split_to(take).freeze()));
                }
                Chunked::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(ChunkStep::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(WireError::Chunk("chunk data not followed by CRLF"));
                    }
                    buf.advance(2);
                    *self = Chunked::Size;
                }
                Chunked::Trailers => {
                    let mut fields = [httparse::EMPTY_HEADER; MAX_TRAILERS];
                    let (length, trailers) = match httparse::parse_headers(buf, &mut fields) {
                        Ok(httparse::Status::Complete((length, fields))) => {
                            let mut trailers = HeaderMap::with_capacity(fields.len());
                            for field in fields.iter() {
                                let name = HeaderName::from_bytes(field.name.as_bytes())
                                    .map_err(|_| WireError::Chunk("invalid trailer name"))?;
                                let value = HeaderValue::from_bytes(field.value)
                                    .map_err(|_| WireError::Chunk("invalid trailer value"))?;
                                trailers.append(name, value);
                            }
                            (length, trailers)
                        }
                        Ok(httparse::Status::Partial) if buf.len() <= limit => {
                            return Ok(ChunkStep::NeedMore);
                        }
                        Ok(httparse::Status::Partial) => {
                            return Err(WireError::Chunk("trailer section too large"));
                        }
                        Err(_) => return Err(WireError::Chunk("invalid trailer section")),
                    };
                    buf.advance(length);
                    *self = Chunked::Done;
                    if !trailers.is_empty() {
                        return Ok(ChunkStep::Trailers(trailers));
                    }
                }
                Chunked::Done => return Ok(ChunkStep::End),
            }
        }
    }
}

/// A chunk-size line without its LF: hex digits, then optional
/// extensions (ignored), then CR.
fn chunk_size(line: &[u8]) -> Result<u64, WireError> {
    let line = line
        .strip_suffix(b"\r")
        .ok_or(WireError::Chunk("chunk-size line not ended by CRLF"))?;
    let digits = line
        .iter()
        .position(|&b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    if digits == 0 || digits > 16 {
        return Err(WireError::Chunk("invalid chunk size"));
    }
    let rest = line[digits..].trim_ascii_start();
    if !(rest.is_empty() || rest.starts_with(b";")) {
        return Err(WireError::Chunk("invalid chunk size"));
    }
    let hex =
        std::str::from_utf8(&line[..digits]).map_err(|_| WireError::Chunk("invalid chunk size"))?;
    u64::from_str_radix(hex, 16).map_err(|_| WireError::Chunk("invalid chunk size"))
}

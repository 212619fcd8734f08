//! Shared by the decode targets: feed the input to a codec the way a
//! connection would (in arbitrary chunks), and check the contract on every
//! step instead of only "does not crash".

use bytes::BytesMut;
use meshgate_codecs::{FrameCodec, Limits};

/// A small limit so "never buffers past the limit" is actually exercised.
pub const LIMIT: usize = 64 * 1024;

/// Decodes `data` fed in chunks whose sizes come from the first byte, and
/// asserts the decode contract: `Ok(None)` and `Err` consume nothing, a
/// frame consumes exactly its wire length, the buffer never reserves room
/// for a frame over the limit, every decoded frame's header view reads
/// without a panic, and every decoded frame re-encodes to its own bytes and
/// survives an id patch.
pub fn decode_stream(codec: &dyn FrameCodec, data: &[u8]) {
    let Some((&chunk_seed, data)) = data.split_first() else { return };
    let chunk = usize::from(chunk_seed % 64) + 1;
    let limits = Limits::new(LIMIT);
    let mut buf = BytesMut::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            let before = buf.len();
            // The server side's decode: a request's header section is read
            // at once, and a malformed one puts the frame's bytes back.
            match codec.decode_checked(&mut buf, &limits) {
                Ok(Some(mut frame)) => {
                    // Every other frame's header section is read on first
                    // use: read it too (never a panic, whatever the bytes).
                    if let Ok(headers) = frame.read_headers() {
                        for (key, value) in headers.iter() {
                            std::hint::black_box((key, value));
                        }
                    }
                    let wire_len = frame.wire().map_or(0, |w| w.len());
                    assert_eq!(before - buf.len(), wire_len, "a frame consumes exactly its bytes");
                    assert!(wire_len <= LIMIT, "frame over the limit accepted");
                    let original = frame.wire().map(|w| w.to_vec()).unwrap_or_default();
                    let mut out = BytesMut::new();
                    codec.encode(&frame, &mut out).expect("a decoded frame re-encodes");
                    assert_eq!(&out[..], &original[..], "re-encode is byte-exact");
                    let id = frame.request_id;
                    codec.set_request_id(&mut frame, !id & codec.max_request_id());
                    codec.set_request_id(&mut frame, id);
                    out.clear();
                    codec.encode(&frame, &mut out).expect("re-encodes after patching");
                    assert_eq!(&out[..], &original[..], "patching the id back restores the bytes");
                    let _ = codec.heartbeat_reply(&frame);
                    let _ = codec.error_reply(&frame, meshgate_codecs::ReplyStatus::Internal, "fuzz");
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "Ok(None) consumes nothing");
                    assert!(buf.capacity() <= 2 * LIMIT + 4096, "buffer grew past the limit");
                    break;
                }
                Err(err) => {
                    assert_eq!(buf.len(), before, "errors consume nothing");
                    let _ = codec.decode_error_reply(&buf, &err);
                    return;
                }
            }
        }
    }
}

//! HTTP/1.x and HTTP/2 *detection*. The HTTP codecs themselves are hyper and
//! h2, driven by the gateway; this module only lets an `Auto` listener tell
//! HTTP apart from the framed RPC protocols.

mod detect;

pub use detect::{H2_PREFACE, detect_http1, detect_http2};

//! Helpers shared by meshgate's tests (a dev-dependency only, never shipped):
//! the golden wire vectors captured from real client libraries and one
//! check every framed codec's vectors go through, a tiny test codec with a
//! configurable id space and pool mode, loopback sockets, mock upstream
//! servers over any framed codec, a downstream test client, a minimal HTTP
//! client for the admin API, bounded waiting (`eventually`), and the
//! external processes (real third-party clients and servers) the interop
//! tests start and stop.

pub mod client;
pub mod frames;
pub mod http;
pub mod http_mock;
pub mod mem;
pub mod mock;
pub mod net;
pub mod process;
pub mod tcp;
pub mod test_codec;
pub mod vectors;
pub mod wait;

pub use http_mock::MockHttp;
pub use mock::{MockUpstream, Mode, echo_response};
pub use net::bind_loopback_port0;
pub use test_codec::TestCodec;
pub use wait::eventually;

//! Helpers shared by meshgate's tests (a dev-dependency only, never shipped):
//! the golden wire vectors captured from real client libraries, one check
//! every framed codec's vectors go through, and the external processes (real
//! third-party clients and servers) the interop tests start and stop.

pub mod process;
pub mod vectors;

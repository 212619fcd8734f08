//! Helpers shared by meshgate's tests (a dev-dependency only, never shipped):
//! the golden wire vectors captured from real client libraries, and one
//! check every framed codec's vectors go through.

pub mod vectors;

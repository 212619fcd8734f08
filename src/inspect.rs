//! Inspecting captures: detection plus every frame decoded.

//! The config-driven generic x-protocol codec (skeleton: replaced by the generic codec work).

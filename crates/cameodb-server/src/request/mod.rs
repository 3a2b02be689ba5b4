//! Requests as they arrive, parsed once into typed models: what both the single-node handlers
//! and the cluster layer read, so neither parses a request the other way.

pub mod bulk;
pub mod params;

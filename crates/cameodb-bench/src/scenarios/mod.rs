//! What the suite measures on a CameoDB node, one file per row group of the report.

pub mod cluster;
pub mod gossip;
pub mod ingest;
pub mod join;
pub mod lag;
pub mod reads;
pub mod replication;
pub mod resources;
pub mod same_index;

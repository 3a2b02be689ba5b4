//! A node's part in anti-entropy: hashing what it holds of some token ranges, bucket by
//! bucket, and listing the versions of the buckets that differ from another replica's.

use cameodb_search::tokens::TokenRanges;
use cameodb_storage::Stamp;

use super::Leaf;
use crate::error::ApiError;
use crate::messages::NodeReply;
use crate::messages::replica::{DIGEST_BUCKETS, DigestEntry, RepairCall, digest_bucket};
use crate::shard::run;

/// Answers a [`RepairCall`].
pub async fn serve(leaf: &Leaf, call: RepairCall) -> Result<NodeReply, ApiError> {
    Ok(match call {
        RepairCall::Digest { index, ranges } => {
            NodeReply::RangeDigest(digest(leaf, &index, ranges).await?)
        }
        RepairCall::Versions {
            index,
            ranges,
            buckets,
        } => NodeReply::Versions(versions(leaf, &index, ranges, buckets).await?),
    })
}

/// The hash of one version, added into its bucket's sum (order does not matter).
fn version_hash(id: &str, token: u64, stamp: Stamp, deleted: bool) -> u64 {
    let mut bytes = Vec::with_capacity(id.len() + 25);
    bytes.extend_from_slice(id.as_bytes());
    bytes.extend_from_slice(&token.to_le_bytes());
    bytes.extend_from_slice(&stamp.hlc.to_le_bytes());
    bytes.extend_from_slice(&stamp.origin.to_le_bytes());
    bytes.push(u8::from(deleted));
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

/// One hash per bucket of every version of `index` held here in `ranges`.
pub async fn digest(leaf: &Leaf, index: &str, ranges: TokenRanges) -> Result<Vec<u64>, ApiError> {
    let entry = leaf.catalog.require(index).await?;
    run(&entry.shard, move |store| {
        let mut buckets = vec![0u64; DIGEST_BUCKETS];
        store.versions(|id, token, _, stamp, deleted| {
            if ranges.contains(token) {
                let bucket = &mut buckets[digest_bucket(token)];
                *bucket = bucket.wrapping_add(version_hash(id, token, stamp, deleted));
            }
        })?;
        Ok(buckets)
    })
    .await
    .map_err(|e| e.with_index(index))
}

/// The versions of `index` held here in `ranges` that fall in `buckets`.
pub async fn versions(
    leaf: &Leaf,
    index: &str,
    ranges: TokenRanges,
    buckets: Vec<usize>,
) -> Result<Vec<DigestEntry>, ApiError> {
    let entry = leaf.catalog.require(index).await?;
    run(&entry.shard, move |store| {
        let mut wanted = [false; DIGEST_BUCKETS];
        for bucket in buckets.into_iter().filter(|b| *b < DIGEST_BUCKETS) {
            wanted[bucket] = true;
        }
        let mut out = Vec::new();
        store.versions(|id, token, version, stamp, deleted| {
            if ranges.contains(token) && wanted[digest_bucket(token)] {
                out.push(DigestEntry {
                    id: id.to_string(),
                    token,
                    version,
                    stamp,
                    deleted,
                });
            }
        })?;
        Ok(out)
    })
    .await
    .map_err(|e| e.with_index(index))
}

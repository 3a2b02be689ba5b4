//! Node identity: the persistent ed25519 keypair whose public key is the node's PeerId.
//!
//! The key must survive restarts so that a node keeps its id (other nodes route work to it
//! by id), and it must never be silently replaced: a corrupt key file is reported as an
//! error so an operator can decide, instead of the node quietly becoming a stranger.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use libp2p::identity::Keypair;
use tracing::info;

/// File name of the node key inside the data directory; fixed so restarts find it.
pub const NODE_KEY_FILE: &str = "node_key";

/// Loads `<data_dir>/node_key` (libp2p protobuf-encoded ed25519 keypair), or generates and
/// persists one (file mode 0600, written atomically: temp file + rename).
///
/// A file that exists but does not decode is an [`io::ErrorKind::InvalidData`] error, never a
/// silent regenerate, because a new key would give the node a new identity.
pub fn load_or_create_identity(data_dir: &Path) -> io::Result<Keypair> {
    let path = data_dir.join(NODE_KEY_FILE);
    match fs::read(&path) {
        Ok(bytes) => decode(&path, &bytes),
        Err(error) if error.kind() == io::ErrorKind::NotFound => create(data_dir, &path),
        Err(error) => Err(error),
    }
}

fn decode(path: &Path, bytes: &[u8]) -> io::Result<Keypair> {
    Keypair::from_protobuf_encoding(bytes).map_err(|error| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "node key file {} is not a valid libp2p keypair: {error}",
                path.display()
            ),
        )
    })
}

fn create(data_dir: &Path, path: &Path) -> io::Result<Keypair> {
    fs::create_dir_all(data_dir)?;
    let keypair = Keypair::generate_ed25519();
    let bytes = keypair
        .to_protobuf_encoding()
        .map_err(|error| io::Error::other(format!("failed to encode the node key: {error}")))?;
    let tmp_path = temp_path(data_dir);
    if let Err(error) = write_private(&tmp_path, &bytes).and_then(|()| fs::rename(&tmp_path, path))
    {
        let _ = fs::remove_file(&tmp_path);
        return Err(error);
    }
    // Persist the rename itself; best effort because not every platform can sync a directory.
    if let Ok(dir) = File::open(data_dir) {
        let _ = dir.sync_all();
    }
    info!(
        path = %path.display(),
        peer_id = %keypair.public().to_peer_id(),
        "generated a new node key"
    );
    Ok(keypair)
}

fn temp_path(data_dir: &Path) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or_default();
    data_dir.join(format!(
        ".{NODE_KEY_FILE}.tmp.{}.{nanos}",
        std::process::id()
    ))
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_loads_the_same_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = load_or_create_identity(dir.path()).expect("create");
        let second = load_or_create_identity(dir.path()).expect("load");
        assert_eq!(first.public().to_peer_id(), second.public().to_peer_id());
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .expect("read dir")
            .filter_map(Result::ok)
            .map(|entry| entry.file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from(NODE_KEY_FILE)]);
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        load_or_create_identity(dir.path()).expect("create");
        let mode = fs::metadata(dir.path().join(NODE_KEY_FILE))
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

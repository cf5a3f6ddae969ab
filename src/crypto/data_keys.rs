//! How data keys are sealed: the label of the key that wraps them and the
//! associated data that binds a sealed key, or a value sealed under one,
//! to its key id and version. Shared by the key rings (which seal and use
//! data keys) and a master key rotation (which rewraps them).

/// HKDF label of the key that seals the data keys of the key rings.
pub const WRAP_KEY_LABEL: &str = "data-key-wrap";

/// Associated data of a sealed data key: it cannot be moved to another row.
pub fn key_aad(key_id: &str, version: i64) -> Vec<u8> {
    aad(key_id, version, None)
}

/// Associated data: format version, key id, version, and the context
/// (flagged, so "no context" differs from an empty one).
pub fn aad(key_id: &str, version: i64, context: Option<&str>) -> Vec<u8> {
    let mut a = format!("agentry-envelope-v1\0{key_id}\0{version}\0").into_bytes();
    match context {
        Some(c) => {
            a.push(1);
            a.extend_from_slice(c.as_bytes());
        }
        None => a.push(0),
    }
    a
}

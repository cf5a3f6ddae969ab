//! The encryption service: key rings per classification (versions of data
//! keys, rotation, limits, every change audited) and envelope encryption
//! of JSON values with them. Primitives are in `crate::crypto`.

pub mod envelope;
pub mod keyring;

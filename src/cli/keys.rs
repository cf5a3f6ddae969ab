//! `agentry keys rotate-signing` and `agentry keys rotate <classification>`
//! (the master key's rotation is in `rotate_master`).

use super::*;

pub(super) fn rotate_signing(config: &Config) -> Result<(), String> {
    let kid = with_services(config, async |db, audit, master| {
        let keys = SigningKeys::new(master.derive(crate::tokens::keys::WRAP_KEY_LABEL));
        let max_token_ms = i64::from(config.tokens.lifetime_seconds) * 1000;
        keys.rotate(db, audit, &cli_context(), max_token_ms)
            .await
            .map_err(|e| e.to_string())
    })?;
    println!("new signing key {kid}; the previous key stays published until its tokens expire");
    Ok(())
}

pub(super) fn rotate_ring(config: &Config, classification: &str) -> Result<(), String> {
    let version = with_services(config, async |db, audit, master| {
        let ring = KeyRing::new(
            master.derive(crate::crypto::data_keys::WRAP_KEY_LABEL),
            Limits {
                max_encryptions: config.encryption.max_encryptions_per_key,
                rotation_days: config.encryption.rotation_days,
            },
        );
        let known = ring.rings(db, audit).await.map_err(|e| e.to_string())?;
        if !known.iter().any(|r| r.classification == classification) {
            let names: Vec<_> = known.iter().map(|r| r.classification.as_str()).collect();
            return Err(format!(
                "no classification {classification:?}; there are: {}",
                names.join(", ")
            ));
        }
        ring.rotate(audit, &cli_context(), classification, "requested")
            .await
            .map_err(|e| e.to_string())
    })?;
    println!(
        "{classification} now encrypts with key version {version}; older versions still decrypt"
    );
    Ok(())
}

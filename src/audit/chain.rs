//! The keyed hash chain: record MACs, the checkpoint MAC, and verification.
//!
//! `hash_n = HMAC-SHA256(K, canonical(record_n) || prev_hash)` where `K` is
//! derived from the master key, so someone holding only the database cannot
//! recompute the chain after editing it. Verification walks the records in
//! order and reports the first one that was modified, removed or moved.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

use super::store::RawRecord;
use crate::crypto::{constant_time_eq, hex, DerivedKey};

/// `prev_hash` of the very first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// HKDF label of the chain key (part of the on-disk format).
pub use crate::crypto::appliance_keys::AUDIT_CHAIN as KEY_LABEL;

/// Newest record's position: keep a copy off the box to detect truncation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Bad {
    /// The first sequence number that does not verify.
    pub seq: i64,
    pub problem: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VerifyReport {
    pub ok: bool,
    /// Records checked.
    pub checked: u64,
    /// The newest record (absent for an empty log).
    pub head: Option<Head>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad: Option<Bad>,
}

/// Where the retained chain starts after retention pruned older records.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub mac: String,
}

#[derive(Clone)]
pub struct ChainKey(std::sync::Arc<DerivedKey>);

impl ChainKey {
    pub fn new(key: DerivedKey) -> ChainKey {
        ChainKey(std::sync::Arc::new(key))
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_slice()).expect("HMAC takes any key length")
    }

    /// The hash of a record with this canonical form after `prev_hash`.
    pub fn record_hash(&self, canonical: &[u8], prev_hash: &str) -> String {
        let mut m = self.mac();
        m.update(canonical);
        m.update(prev_hash.as_bytes());
        hex(&m.finalize().into_bytes())
    }

    pub fn checkpoint_mac(&self, seq: i64, hash: &str) -> String {
        let mut m = self.mac();
        m.update(b"agentry-audit-checkpoint-v1\0");
        m.update(seq.to_string().as_bytes());
        m.update(b"\0");
        m.update(hash.as_bytes());
        hex(&m.finalize().into_bytes())
    }
}

/// Streaming verifier: feed records in ascending `seq`, then `finish`.
pub struct Verifier {
    key: ChainKey,
    expected_seq: i64,
    expected_prev: String,
    checked: u64,
    last: Option<Head>,
    first_bad: Option<Bad>,
    saved: Option<Head>,
    saved_seen: bool,
}

impl Verifier {
    /// `checkpoint` is where retention left the chain; `saved` a head kept
    /// elsewhere earlier.
    pub fn new(key: ChainKey, checkpoint: Option<&Checkpoint>, saved: Option<Head>) -> Verifier {
        let mut v = Verifier {
            key,
            expected_seq: 1,
            expected_prev: GENESIS.to_string(),
            checked: 0,
            last: None,
            first_bad: None,
            saved,
            saved_seen: false,
        };
        if let Some(cp) = checkpoint {
            let want = v.key.checkpoint_mac(cp.seq, &cp.hash);
            if !constant_time_eq(want.as_bytes(), cp.mac.as_bytes()) {
                v.first_bad = Some(Bad {
                    seq: cp.seq,
                    problem: "the retention checkpoint was modified".into(),
                });
            }
            v.expected_seq = cp.seq + 1;
            v.expected_prev = cp.hash.clone();
            v.last = Some(Head {
                seq: cp.seq,
                hash: cp.hash.clone(),
            });
            if let Some(s) = &v.saved {
                // A saved head older than the checkpoint cannot be checked.
                if s.seq <= cp.seq {
                    v.saved_seen = true;
                }
            }
        }
        v
    }

    /// Checks one record; returns false once a problem is found (the rest
    /// need not be read).
    pub fn push(&mut self, raw: &RawRecord) -> bool {
        if self.first_bad.is_some() {
            return false;
        }
        let r = &raw.record;
        let bad = if r.seq > self.expected_seq {
            Some(Bad {
                seq: self.expected_seq,
                problem: if r.seq == self.expected_seq + 1 {
                    format!("record {} is missing", self.expected_seq)
                } else {
                    format!("records {} to {} are missing", self.expected_seq, r.seq - 1)
                },
            })
        } else if r.seq < self.expected_seq {
            Some(Bad {
                seq: r.seq,
                problem: "record is out of order".into(),
            })
        } else if r.prev_hash != self.expected_prev {
            Some(Bad {
                seq: r.seq,
                problem: "record does not follow the previous one (records were removed, reordered or replaced)".into(),
            })
        } else if !constant_time_eq(
            self.key
                .record_hash(&raw.canonical(), &r.prev_hash)
                .as_bytes(),
            r.hash.as_bytes(),
        ) {
            Some(Bad {
                seq: r.seq,
                problem: "record content was modified".into(),
            })
        } else if self
            .saved
            .as_ref()
            .is_some_and(|s| s.seq == r.seq && s.hash != r.hash)
        {
            Some(Bad {
                seq: r.seq,
                problem: "record differs from the saved head".into(),
            })
        } else {
            None
        };
        if let Some(b) = bad {
            self.first_bad = Some(b);
            return false;
        }
        if self.saved.as_ref().is_some_and(|s| s.seq == r.seq) {
            self.saved_seen = true;
        }
        self.checked += 1;
        self.expected_seq = r.seq + 1;
        self.expected_prev = r.hash.clone();
        self.last = Some(Head {
            seq: r.seq,
            hash: r.hash.clone(),
        });
        true
    }

    pub fn finish(mut self) -> VerifyReport {
        if self.first_bad.is_none() {
            if let Some(saved) = &self.saved {
                if !self.saved_seen {
                    let end = self.last.as_ref().map(|h| h.seq).unwrap_or(0);
                    self.first_bad = Some(Bad {
                        seq: end + 1,
                        problem: format!(
                            "the log ends at record {end} but the saved head is record {}: newer records were removed",
                            saved.seq
                        ),
                    });
                }
            }
        }
        VerifyReport {
            ok: self.first_bad.is_none(),
            checked: self.checked,
            head: self.last,
            first_bad: self.first_bad,
        }
    }
}

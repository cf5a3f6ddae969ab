//! The live policy: the compiled engine, rebuilt when anything changed.
//!
//! Every change goes through an audited transaction, which moves the audit
//! writer's change generation; the next check after a change rebuilds the
//! policy, so a role edit is visible to the very next check. A short TTL
//! covers changes made by another process.

use std::sync::Arc;
use std::time::Duration;

use super::engine::{Policy, PolicyData};
use crate::audit::Audit;
use crate::cache::GenerationCache;
use crate::db::{roles, Db};
use crate::error::Result;

const TTL: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct PolicyView {
    current: GenerationCache<Policy>,
    /// One rebuild at a time; others wait for it instead of repeating it.
    rebuilding: Arc<tokio::sync::Mutex<()>>,
}

impl Default for PolicyView {
    fn default() -> Self {
        PolicyView {
            current: GenerationCache::new(TTL, 1),
            rebuilding: Arc::default(),
        }
    }
}

impl PolicyView {
    fn fresh(&self, generation: u64) -> Option<Arc<Policy>> {
        self.current.fresh(generation, "policy").flatten()
    }

    pub async fn get(&self, db: &Db, audit: &Audit) -> Result<Arc<Policy>> {
        let generation = audit.generation();
        if let Some(p) = self.fresh(generation) {
            return Ok(p);
        }
        let _one = self.rebuilding.lock().await;
        if let Some(p) = self.fresh(generation) {
            return Ok(p);
        }
        let data = PolicyData::from(db.read(roles::policy_rows).await?);
        let policy = Arc::new(
            tokio::task::spawn_blocking(move || Policy::compile(data))
                .await
                .map_err(crate::error::Error::internal)?,
        );
        self.current
            .put(generation, "policy".into(), Some(policy.clone()));
        Ok(policy)
    }
}

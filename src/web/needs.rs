//! The permission an operation needs, written once where its route is
//! registered: `cfg.service(needs(Permission::KeyManage, keys))` documents
//! the operation's security requirement (for both schemes, session and
//! bearer) from [`Permission`], so no handler spells a permission name in
//! its OpenAPI attribute. Enforcement stays in the handler (its
//! [`Guarded`](super::auth::Guarded) extractor or `Caller::require`), where
//! it runs before the body is read; the integration tests hold the two
//! together (a caller without the documented permission is refused, one
//! holding only it is not).

use actix_web::dev::{AppService, HttpServiceFactory};
use utoipa::openapi::path::{Operation, PathItem, Paths};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::RefOr;
use utoipa_actix_web::OpenApiFactory;

use crate::rbac::Permission;

/// A route whose operations need `permission`.
pub struct Needs<F> {
    permission: Permission,
    inner: F,
}

pub fn needs<F>(permission: Permission, inner: F) -> Needs<F> {
    Needs { permission, inner }
}

impl<F: HttpServiceFactory> HttpServiceFactory for Needs<F> {
    fn register(self, config: &mut AppService) {
        self.inner.register(config)
    }
}

impl<F: OpenApiFactory> OpenApiFactory for Needs<F> {
    fn paths(&self) -> Paths {
        let mut paths = self.inner.paths();
        let name = self.permission.as_str();
        for item in paths.paths.values_mut() {
            for op in operations_mut(item) {
                op.security = Some(vec![
                    SecurityRequirement::new("session", [name]),
                    SecurityRequirement::new("bearer", [name]),
                ]);
            }
        }
        paths
    }

    fn schemas(&self, schemas: &mut Vec<(String, RefOr<Schema>)>) {
        self.inner.schemas(schemas)
    }
}

/// The operations of a path item, whichever methods it has.
pub fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .flatten()
}

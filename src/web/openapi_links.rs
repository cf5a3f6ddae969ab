//! OpenAPI links from each create operation to what can be done with what
//! it created (OpenAPI 3 §4.8.20): `POST /api/v1/users` answers 201 with
//! the user, whose `id` is the `{id}` of `GET /api/v1/users/{id}`, of
//! `POST /api/v1/users/{id}/keys`, and so on. Clients and tools that follow
//! links (schemathesis's stateful phase among them) can then chain calls
//! instead of guessing identifiers.
//!
//! Derived from the paths, not written per operation: for a `POST /X` with
//! a 201 response, every operation on a path `/X/{p}...` gets a link whose
//! `p` is the created resource's key (`id` for `{id}` and `{*_id}`, the
//! field of the same name otherwise: roles and rules are addressed by
//! `name`, key rings by `classification`); any parameter `/X` itself has
//! is passed on from the request.

use serde_json::{json, Map, Value};

/// Adds the links to `doc` (the serialised document).
pub fn add(doc: &mut Value) {
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return;
    };
    let mut found: Vec<(String, Map<String, Value>)> = Vec::new();
    for (base, item) in paths {
        if item.pointer("/post/responses/201").is_none() {
            continue;
        }
        let links = links_from(base, paths);
        if !links.is_empty() {
            found.push((base.clone(), links));
        }
    }
    for (base, links) in found {
        let created = &mut doc["paths"][base.as_str()]["post"]["responses"]["201"];
        created["links"] = Value::Object(links);
    }
}

/// The links of `POST base`'s 201 response.
fn links_from(base: &str, paths: &Map<String, Value>) -> Map<String, Value> {
    let mut links = Map::new();
    let prefix = format!("{base}/{{");
    for (path, item) in paths {
        let Some(rest) = path.strip_prefix(&prefix) else {
            continue;
        };
        let Some((created, _)) = rest.split_once('}') else {
            continue;
        };
        let mut parameters = Map::new();
        for p in params(path) {
            let source = if p == created {
                let field = if p == "id" || p.ends_with("_id") {
                    "id"
                } else {
                    p
                };
                format!("$response.body#/{field}")
            } else if params(base).any(|b| b == p) {
                format!("$request.path.{p}")
            } else {
                // A parameter neither the request nor the answer gives.
                parameters.clear();
                break;
            };
            parameters.insert(p.to_string(), Value::String(source));
        }
        if parameters.is_empty() {
            continue;
        }
        let Some(ops) = item.as_object() else {
            continue;
        };
        for op in ops.values() {
            if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                links.insert(
                    id.to_string(),
                    json!({"operationId": id, "parameters": parameters}),
                );
            }
        }
    }
    links
}

/// The names of a path template's parameters, in order.
fn params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: &str) -> Value {
        json!({"operationId": id, "responses": {"201": {"description": "created"}}})
    }

    #[test]
    fn create_operations_link_to_what_they_created() {
        let mut doc = json!({"paths": {
            "/api/v1/users": {"post": op("users.create"), "get": op("users.list")},
            "/api/v1/users/{id}": {"get": op("users.get"), "delete": op("users.remove")},
            "/api/v1/users/{id}/keys": {"post": op("users.create_key")},
            "/api/v1/users/{id}/keys/{key_id}": {"delete": op("users.revoke_key")},
            "/api/v1/roles": {"post": op("roles.create")},
            "/api/v1/roles/{name}": {"put": op("roles.replace")},
            "/api/v1/other/{x}/{y}": {"get": op("other.get")},
            "/api/v1/other": {"post": op("other.create")},
        }});
        add(&mut doc);
        let links = |p: &str| doc["paths"][p]["post"]["responses"]["201"]["links"].clone();
        let users = links("/api/v1/users");
        assert_eq!(
            users["users.get"],
            json!({"operationId": "users.get", "parameters": {"id": "$response.body#/id"}})
        );
        assert!(users["users.remove"].is_object());
        assert!(users["users.create_key"].is_object());
        // Two levels down the user's key id is not known yet.
        assert!(users.get("users.revoke_key").is_none(), "{users}");
        assert_eq!(
            links("/api/v1/users/{id}/keys")["users.revoke_key"]["parameters"],
            json!({"id": "$request.path.id", "key_id": "$response.body#/id"})
        );
        assert_eq!(
            links("/api/v1/roles")["roles.replace"]["parameters"],
            json!({"name": "$response.body#/name"})
        );
        // {y} comes from neither side: no link.
        assert!(links("/api/v1/other").is_null());
        // Operations that create nothing get none.
        assert!(doc["paths"]["/api/v1/users"]["get"]["responses"]["201"]
            .get("links")
            .is_none());
    }
}

//! Roles: custom role CRUD with validated patterns and an inheritance DAG.
//! System roles keep their grants and cannot be deleted; their descriptions
//! may be edited.

use std::collections::HashMap;

use super::patterns::valid_pattern;
use crate::audit::{Audit, Context, Outcome};
use crate::db::{self, roles as repo, Db};
use crate::error::{Error, FieldErrors, Result};

pub use repo::RoleRow;

pub const MAX_DESCRIPTION: usize = 1024;
pub const MAX_PATTERNS: usize = 256;

/// The body of create and replace.
#[derive(Debug, Clone)]
pub struct RoleInput {
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
    pub inherits: Vec<String>,
}

fn check_input(input: &RoleInput) -> FieldErrors {
    let mut e = FieldErrors::new();
    if !crate::names::is_lower_snake(&input.name) {
        e.insert(
            "name".into(),
            "must be lower_snake (a-z, 0-9, _), starting with a letter, at most 64".into(),
        );
    }
    if input.description.chars().count() > MAX_DESCRIPTION {
        e.insert(
            "description".into(),
            format!("must be at most {MAX_DESCRIPTION} characters"),
        );
    }
    if input.permissions.len() > MAX_PATTERNS {
        e.insert(
            "permissions".into(),
            format!("at most {MAX_PATTERNS} patterns"),
        );
    }
    if let Some(bad) = input.permissions.iter().find(|p| !valid_pattern(p)) {
        e.insert(
            "permissions".into(),
            format!("{bad:?} is not a permission pattern (resource:action, resource:*, or *)"),
        );
    }
    if input.inherits.iter().any(|p| p == &input.name) {
        e.insert(
            "inherits".into(),
            format!("role {} cannot inherit itself", input.name),
        );
    }
    e
}

/// Finds a cycle through `role` if its parents become `parents`; returns
/// the roles on it, `role → ... → role`.
fn cycle_through(
    edges: &[(String, String)],
    role: &str,
    parents: &[String],
) -> Option<Vec<String>> {
    let mut graph: HashMap<&str, Vec<&str>> = HashMap::new();
    for (r, p) in edges.iter().filter(|(r, _)| r != role) {
        graph.entry(r.as_str()).or_default().push(p.as_str());
    }
    graph.insert(role, parents.iter().map(String::as_str).collect());
    // Depth-first from `role`, looking for a way back to it.
    fn dfs<'a>(
        g: &HashMap<&'a str, Vec<&'a str>>,
        at: &'a str,
        target: &str,
        path: &mut Vec<&'a str>,
        seen: &mut Vec<&'a str>,
    ) -> bool {
        for next in g.get(at).into_iter().flatten() {
            if *next == target {
                path.push(next);
                return true;
            }
            if seen.contains(next) {
                continue;
            }
            seen.push(next);
            path.push(next);
            if dfs(g, next, target, path, seen) {
                return true;
            }
            path.pop();
        }
        false
    }
    let mut path = vec![role];
    let mut seen = Vec::new();
    dfs(&graph, role, role, &mut path, &mut seen)
        .then(|| path.into_iter().map(str::to_string).collect())
}

/// Saves a role (create or replace) after every check, in one audited
/// transaction.
async fn save(audit: &Audit, ctx: &Context, input: RoleInput, creating: bool) -> Result<RoleRow> {
    let action = if creating {
        "role.create"
    } else {
        "role.update"
    };
    let event = ctx
        .event(action, Outcome::Success)
        .target("role", &input.name)
        .detail("permissions", &input.permissions)
        .detail("inherits", &input.inherits);
    let errors = check_input(&input);
    if !errors.is_empty() {
        return Err(audit.fail(event, Error::fields(errors)).await);
    }
    audit
        .apply(event, move |c| {
            let existing = repo::get_role(c, &input.name)?;
            match (&existing, creating) {
                (Some(_), true) => {
                    return Err(Error::Conflict(format!(
                        "role {} already exists",
                        input.name
                    )))
                }
                (None, false) => return Err(Error::NotFound(format!("role {}", input.name))),
                _ => {}
            }
            if let Some(e) = &existing {
                if e.system
                    && (sorted(&e.permissions) != sorted(&input.permissions)
                        || sorted(&e.inherits) != sorted(&input.inherits))
                {
                    return Err(Error::field(
                        "permissions",
                        format!(
                            "{} is a system role: only its description can change",
                            e.name
                        ),
                    ));
                }
            }
            let missing: Vec<&String> = input
                .inherits
                .iter()
                .filter(|p| repo::get_role(c, p).map(|r| r.is_none()).unwrap_or(true))
                .collect();
            if !missing.is_empty() {
                let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
                return Err(Error::field(
                    "inherits",
                    format!("no such role: {}", names.join(", ")),
                ));
            }
            if let Some(cycle) =
                cycle_through(&repo::all_inherits(c)?, &input.name, &input.inherits)
            {
                return Err(Error::field(
                    "inherits",
                    format!("this would make a cycle: {}", cycle.join(" → ")),
                ));
            }
            let now = db::now_ms();
            let mut permissions = input.permissions.clone();
            permissions.sort();
            permissions.dedup();
            let mut inherits = input.inherits.clone();
            inherits.sort();
            inherits.dedup();
            let row = RoleRow {
                name: input.name.clone(),
                description: input.description.clone(),
                system: existing.as_ref().is_some_and(|e| e.system),
                permissions,
                inherits,
                created_at: existing.as_ref().map(|e| e.created_at).unwrap_or(now),
                updated_at: now,
            };
            repo::save_role(c, &row, now)?;
            Ok(row)
        })
        .await
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

pub async fn create(audit: &Audit, ctx: &Context, input: RoleInput) -> Result<RoleRow> {
    save(audit, ctx, input, true).await
}

pub async fn replace(audit: &Audit, ctx: &Context, input: RoleInput) -> Result<RoleRow> {
    save(audit, ctx, input, false).await
}

pub async fn get(db: &Db, name: &str) -> Result<RoleRow> {
    let name = name.to_string();
    db.read(move |c| {
        repo::get_role(c, &name)?.ok_or_else(|| Error::NotFound(format!("role {name}")))
    })
    .await
}

pub async fn list(db: &Db, after: Option<String>, limit: u32) -> Result<Vec<RoleRow>> {
    db.read(move |c| {
        repo::role_names(c, after.as_deref(), limit)?
            .into_iter()
            .filter_map(|n| repo::get_role(c, &n).transpose())
            .collect()
    })
    .await
}

/// Deletes a custom role that nothing uses. A role in use is refused, naming
/// what uses it: remove its assignments and its children's inheritance first.
pub async fn delete(audit: &Audit, ctx: &Context, name: &str) -> Result<()> {
    let event = ctx
        .event("role.delete", Outcome::Success)
        .target("role", name);
    let name = name.to_string();
    audit
        .apply(event, move |c| {
            let role =
                repo::get_role(c, &name)?.ok_or_else(|| Error::NotFound(format!("role {name}")))?;
            if role.system {
                return Err(Error::Conflict(format!(
                    "{name} is a system role and cannot be deleted"
                )));
            }
            let (children, assignments) = repo::usage(c, &name)?;
            if !children.is_empty() || assignments > 0 {
                let mut why = Vec::new();
                if assignments > 0 {
                    why.push(format!("{assignments} assignment(s)"));
                }
                if !children.is_empty() {
                    why.push(format!("inherited by {}", children.join(", ")));
                }
                return Err(Error::Conflict(format!(
                    "role {name} is in use: {}",
                    why.join("; ")
                )));
            }
            repo::delete_role(c, &name)?;
            Ok(())
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::cycle_through;

    #[test]
    fn cycles_are_named() {
        let edges = vec![
            ("b".to_string(), "a".to_string()),
            ("c".to_string(), "b".to_string()),
        ];
        assert_eq!(
            cycle_through(&edges, "a", &["c".into()]),
            Some(vec!["a".into(), "c".into(), "b".into(), "a".into()])
        );
        assert_eq!(cycle_through(&edges, "d", &["c".into()]), None);
        assert_eq!(cycle_through(&edges, "a", &[]), None);
    }
}

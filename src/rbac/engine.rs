//! The compiled decision engine.
//!
//! A [`Policy`] is built once from roles, grants, inheritance and
//! assignments, and answers "may S do P on R?" without walking the role
//! graph or touching the database: every role's *effective* grants
//! (inheritance included) are precomputed into three lookups — exact
//! permissions, `resource:*` wildcards, and `*` — each remembering the role
//! path that grants it.

use std::collections::{HashMap, HashSet};

use super::glob::glob_match;
use crate::identity::PrincipalKind;

/// Whom a decision is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject {
    pub kind: PrincipalKind,
    pub id: String,
}

#[derive(Debug, Clone)]
pub struct Assignment {
    pub role: String,
    /// `(resource_type, glob)`: the assignment grants only for matching
    /// resources.
    pub scope: Option<(String, String)>,
}

/// Raw policy data, as stored.
#[derive(Debug, Default, Clone)]
pub struct PolicyData {
    /// role → (granted patterns, parents)
    pub roles: HashMap<String, (Vec<String>, Vec<String>)>,
    pub assignments: HashMap<Subject, Vec<Assignment>>,
}

impl From<crate::db::roles::PolicyRows> for PolicyData {
    fn from(rows: crate::db::roles::PolicyRows) -> PolicyData {
        let mut data = PolicyData::default();
        for name in rows.roles {
            data.roles.insert(name, (Vec::new(), Vec::new()));
        }
        for (role, pattern) in rows.grants {
            if let Some(entry) = data.roles.get_mut(&role) {
                entry.0.push(pattern);
            }
        }
        for (role, parent) in rows.inherits {
            if let Some(entry) = data.roles.get_mut(&role) {
                entry.1.push(parent);
            }
        }
        for a in rows.assignments {
            let subject = match (a.user_id, a.agent_id) {
                (Some(id), _) => Subject {
                    kind: PrincipalKind::User,
                    id,
                },
                (_, Some(id)) => Subject {
                    kind: PrincipalKind::Agent,
                    id,
                },
                _ => continue,
            };
            data.assignments
                .entry(subject)
                .or_default()
                .push(Assignment {
                    role: a.role,
                    scope: a.scope_type.zip(a.scope_pattern),
                });
        }
        data
    }
}

/// A role's effective grants with the path (role, parent, grandparent...)
/// through which each is held.
#[derive(Debug, Default)]
struct Effective {
    exact: HashMap<String, Vec<String>>,
    resource_wildcards: HashMap<String, Vec<String>>,
    star: Option<Vec<String>>,
}

impl Effective {
    fn grant(&mut self, pattern: &str, path: &[String]) {
        let keep = |slot: Option<&Vec<String>>| slot.is_none_or(|p| p.len() > path.len());
        if pattern == "*" {
            if keep(self.star.as_ref()) {
                self.star = Some(path.to_vec());
            }
        } else if let Some(resource) = pattern.strip_suffix(":*") {
            if keep(self.resource_wildcards.get(resource)) {
                self.resource_wildcards
                    .insert(resource.to_string(), path.to_vec());
            }
        } else if keep(self.exact.get(pattern)) {
            self.exact.insert(pattern.to_string(), path.to_vec());
        }
    }

    /// The role path granting `permission`, if any (exact first, then the
    /// resource wildcard, then `*`).
    fn lookup(&self, permission: &str) -> Option<&Vec<String>> {
        if let Some(p) = self.exact.get(permission) {
            return Some(p);
        }
        let resource = permission.split(':').next().unwrap_or(permission);
        if permission.contains(':') {
            if let Some(p) = self.resource_wildcards.get(resource) {
                return Some(p);
            }
        }
        self.star.as_ref()
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The role path that granted it (`[assigned role, ..., granting role]`).
    pub granted_by: Vec<String>,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Policy {
    effective: HashMap<String, Effective>,
    assignments: HashMap<Subject, Vec<Assignment>>,
}

impl Policy {
    /// Compiles the policy. The role graph must be a DAG (the write path
    /// refuses cycles); a cycle met here is cut, never looped on.
    pub fn compile(data: PolicyData) -> Policy {
        let mut effective = HashMap::with_capacity(data.roles.len());
        for role in data.roles.keys() {
            let mut eff = Effective::default();
            let mut on_path = HashSet::new();
            collect(
                &data.roles,
                role,
                &mut vec![role.clone()],
                &mut on_path,
                &mut eff,
            );
            effective.insert(role.clone(), eff);
        }
        Policy {
            effective,
            assignments: data.assignments,
        }
    }

    /// May `subject` do `permission` (on `resource`, a `(type, id)`)?
    pub fn check(
        &self,
        subject: &Subject,
        permission: &str,
        resource: Option<(&str, &str)>,
    ) -> Decision {
        let Some(assignments) = self.assignments.get(subject) else {
            return deny(format!(
                "{} {} has no role assignments",
                subject.kind, subject.id
            ));
        };
        let mut out_of_scope = false;
        let mut best: Option<&Vec<String>> = None;
        for a in assignments {
            if let Some((stype, pattern)) = &a.scope {
                match resource {
                    Some((rtype, rid)) if rtype == stype && glob_match(pattern, rid) => {}
                    _ => {
                        out_of_scope = true;
                        continue;
                    }
                }
            }
            if let Some(path) = self
                .effective
                .get(&a.role)
                .and_then(|e| e.lookup(permission))
            {
                if best.is_none_or(|b| path.len() < b.len()) {
                    best = Some(path);
                }
            }
        }
        match best {
            Some(path) => Decision {
                allowed: true,
                reason: format!("granted by role {}", path.join(" → ")),
                granted_by: path.clone(),
            },
            None if out_of_scope => deny(format!(
                "no role grants {permission}{}; scoped assignments do not cover this resource",
                resource
                    .map(|(t, i)| format!(" on {t} {i}"))
                    .unwrap_or_default()
            )),
            None => deny(format!("no assigned role grants {permission}")),
        }
    }

    /// May `subject` do `permission` on *some* resource of type
    /// `resource_type` whose id starts with `id_prefix`? An unscoped
    /// assignment covers every resource; a scoped one covers this question
    /// when its type matches and its pattern can match an id under the
    /// prefix. (The gateway asks this for "any access to server S", before
    /// it knows which tool will be called.)
    pub fn check_under(
        &self,
        subject: &Subject,
        permission: &str,
        resource_type: &str,
        id_prefix: &str,
    ) -> Decision {
        let granted = self.assignments.get(subject).and_then(|assignments| {
            assignments
                .iter()
                .filter(|a| match &a.scope {
                    None => true,
                    Some((stype, pattern)) => {
                        stype == resource_type
                            && super::glob::glob_may_match_under(pattern, id_prefix)
                    }
                })
                .filter_map(|a| self.effective.get(&a.role)?.lookup(permission))
                .min_by_key(|path| path.len())
        });
        match granted {
            Some(path) => Decision {
                allowed: true,
                reason: format!("granted by role {}", path.join(" → ")),
                granted_by: path.clone(),
            },
            None => deny(format!(
                "no role grants {permission} on any {resource_type} under {id_prefix}"
            )),
        }
    }

    /// Every permission pattern the subject holds without a resource scope,
    /// with the role path that grants it.
    pub fn effective_permissions(&self, subject: &Subject) -> Vec<(String, Vec<String>)> {
        self.permissions_held(subject, false)
    }

    /// The permission patterns `subject` holds on some resource at least:
    /// its unscoped ones and those of assignments scoped to resources.
    /// What a token may carry (its scope bounds what the holder may do;
    /// each decision still asks for the resource), not what it may do
    /// everywhere.
    pub fn permissions_held_anywhere(&self, subject: &Subject) -> Vec<String> {
        self.permissions_held(subject, true)
            .into_iter()
            .map(|(pattern, _)| pattern)
            .collect()
    }

    fn permissions_held(&self, subject: &Subject, scoped_too: bool) -> Vec<(String, Vec<String>)> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for a in self.assignments.get(subject).into_iter().flatten() {
            if a.scope.is_some() && !scoped_too {
                continue;
            }
            let Some(e) = self.effective.get(&a.role) else {
                continue;
            };
            let all = e
                .exact
                .iter()
                .map(|(k, v)| (k.clone(), v))
                .chain(
                    e.resource_wildcards
                        .iter()
                        .map(|(k, v)| (format!("{k}:*"), v)),
                )
                .chain(e.star.iter().map(|v| ("*".to_string(), v)));
            for (pattern, path) in all {
                if out.get(&pattern).is_none_or(|p| p.len() > path.len()) {
                    out.insert(pattern, path.clone());
                }
            }
        }
        let mut v: Vec<_> = out.into_iter().collect();
        v.sort();
        v
    }

    /// The roles that grant `permission` (themselves or by inheritance),
    /// by name, fewest grants first: what an admin could assign to someone
    /// refused it. Roles granting everything (`*`) are left out: least
    /// privilege is the suggestion, not the administrator role.
    pub fn roles_granting(&self, permission: &str) -> Vec<String> {
        let mut v: Vec<(usize, String)> = self
            .effective
            .keys()
            .filter_map(|role| {
                let grants = self.role_permissions(role);
                let everything = grants.iter().any(|(p, _)| p == "*" || p == "*:*");
                let grants_it = grants
                    .iter()
                    .any(|(pattern, _)| super::patterns::grants(pattern, permission));
                (grants_it && !everything).then(|| (grants.len(), role.clone()))
            })
            .collect();
        v.sort();
        v.into_iter().map(|(_, role)| role).collect()
    }

    /// Every pattern a role grants, inheritance included, with the path.
    pub fn role_permissions(&self, role: &str) -> Vec<(String, Vec<String>)> {
        let mut v: Vec<_> = self.effective.get(role).map(flatten).unwrap_or_default();
        v.sort();
        v
    }

    pub fn role_count(&self) -> usize {
        self.effective.len()
    }
}

/// All of a role's effective grants as `(pattern, path)`.
fn flatten(e: &Effective) -> Vec<(String, Vec<String>)> {
    e.exact
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain(
            e.resource_wildcards
                .iter()
                .map(|(k, v)| (format!("{k}:*"), v.clone())),
        )
        .chain(e.star.iter().map(|v| ("*".to_string(), v.clone())))
        .collect()
}

fn deny(reason: String) -> Decision {
    Decision {
        allowed: false,
        granted_by: Vec::new(),
        reason,
    }
}

fn collect(
    roles: &HashMap<String, (Vec<String>, Vec<String>)>,
    role: &str,
    path: &mut Vec<String>,
    on_path: &mut HashSet<String>,
    eff: &mut Effective,
) {
    if !on_path.insert(role.to_string()) {
        return; // a cycle: cut it
    }
    if let Some((grants, parents)) = roles.get(role) {
        for g in grants {
            eff.grant(g, path);
        }
        for p in parents {
            path.push(p.clone());
            collect(roles, p, path, on_path, eff);
            path.pop();
        }
    }
    on_path.remove(role);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::patterns::grants;
    use proptest::prelude::*;

    /// The reference: walk the role graph for every check.
    fn naive(
        data: &PolicyData,
        subject: &Subject,
        permission: &str,
        resource: Option<(&str, &str)>,
    ) -> bool {
        fn role_grants(
            data: &PolicyData,
            role: &str,
            permission: &str,
            seen: &mut HashSet<String>,
        ) -> bool {
            if !seen.insert(role.to_string()) {
                return false;
            }
            let Some((g, parents)) = data.roles.get(role) else {
                return false;
            };
            g.iter().any(|p| grants(p, permission))
                || parents
                    .iter()
                    .any(|p| role_grants(data, p, permission, seen))
        }
        data.assignments
            .get(subject)
            .into_iter()
            .flatten()
            .any(|a| {
                let in_scope = match (&a.scope, resource) {
                    (None, _) => true,
                    (Some((t, pat)), Some((rt, rid))) => t == rt && glob_match(pat, rid),
                    (Some(_), None) => false,
                };
                in_scope && role_grants(data, &a.role, permission, &mut HashSet::new())
            })
    }

    /// A granted path must be a real inheritance chain from an assigned
    /// role to a role that grants the permission directly.
    fn path_is_valid(data: &PolicyData, path: &[String], permission: &str) -> bool {
        let chain_ok = path.windows(2).all(|w| {
            data.roles
                .get(&w[0])
                .is_some_and(|(_, parents)| parents.contains(&w[1]))
        });
        let last = path.last().and_then(|r| data.roles.get(r));
        chain_ok && last.is_some_and(|(g, _)| g.iter().any(|p| grants(p, permission)))
    }

    const PATTERNS: &[&str] = &["a:x", "a:y", "b:x", "a:*", "b:*", "*", "c:q"];
    const PERMISSIONS: &[&str] = &["a:x", "a:y", "b:x", "b:z", "c:q", "d:w"];
    const SCOPES: &[&str] = &["w-*", "w-1", "*", "x?"];

    fn policy() -> impl Strategy<Value = PolicyData> {
        (1usize..12).prop_flat_map(|n| {
            let roles = proptest::collection::vec(
                (
                    proptest::collection::vec(0..PATTERNS.len(), 0..3),
                    proptest::collection::vec(any::<prop::sample::Index>(), 0..3),
                ),
                n,
            );
            let assignments = proptest::collection::vec(
                (
                    0usize..3,
                    0..n,
                    proptest::option::of((0usize..2, 0..SCOPES.len())),
                ),
                0..8,
            );
            (roles, assignments).prop_map(move |(roles, assignments)| {
                let mut data = PolicyData::default();
                for (i, (g, parents)) in roles.into_iter().enumerate() {
                    // Parents only among earlier roles: a DAG.
                    let parents: Vec<String> = if i == 0 {
                        Vec::new()
                    } else {
                        let mut p: Vec<String> = parents
                            .iter()
                            .map(|ix| format!("r{}", ix.index(i)))
                            .collect();
                        p.sort();
                        p.dedup();
                        p
                    };
                    let grants = g.into_iter().map(|k| PATTERNS[k].to_string()).collect();
                    data.roles.insert(format!("r{i}"), (grants, parents));
                }
                for (s, r, scope) in assignments {
                    let subject = Subject {
                        kind: PrincipalKind::Agent,
                        id: format!("s{s}"),
                    };
                    let scope =
                        scope.map(|(t, p)| (["w", "v"][t].to_string(), SCOPES[p].to_string()));
                    data.assignments
                        .entry(subject)
                        .or_default()
                        .push(Assignment {
                            role: format!("r{r}"),
                            scope,
                        });
                }
                data
            })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn compiled_engine_agrees_with_the_graph_walk(data in policy()) {
            let compiled = Policy::compile(data.clone());
            let resources: [Option<(&str, &str)>; 5] = [None, Some(("w", "w-1")), Some(("w", "w-2")), Some(("v", "x1")), Some(("w", "x1"))];
            for s in 0..3 {
                let subject = Subject { kind: PrincipalKind::Agent, id: format!("s{s}") };
                for permission in PERMISSIONS {
                    for resource in resources {
                        let d = compiled.check(&subject, permission, resource);
                        prop_assert_eq!(d.allowed, naive(&data, &subject, permission, resource), "{} {:?}", permission, resource);
                        if d.allowed {
                            prop_assert!(path_is_valid(&data, &d.granted_by, permission), "bad path {:?}", d.granted_by);
                        }
                    }
                }
            }
        }
    }
}

//! The compiled decision engine at the scale of the RBAC targets: 1,000
//! roles with inheritance chains 5 deep, 10,000 subjects, 50,000
//! assignments (a fifth of them scoped). Measures one decision and a full
//! rebuild (what a role edit costs).

use std::hint::black_box;

use agentry::identity::PrincipalKind;
use agentry::rbac::engine::{Assignment, Policy, PolicyData, Subject};
use criterion::{criterion_group, criterion_main, Criterion};

fn policy_data() -> PolicyData {
    let mut data = PolicyData::default();
    for i in 0..1000 {
        // Chains of 5: role i inherits role i-1 unless it starts a chain.
        let parents = if i % 5 == 0 {
            vec![]
        } else {
            vec![format!("role{}", i - 1)]
        };
        let grants = (0..8)
            .map(|g| format!("res{}:act{}", (i * 7 + g) % 200, g))
            .chain((i % 50 == 0).then(|| format!("res{}:*", i % 200)));
        data.roles
            .insert(format!("role{i}"), (grants.collect(), parents));
    }
    let mut n = 0u64;
    for s in 0..10_000 {
        let subject = Subject {
            kind: if s % 3 == 0 {
                PrincipalKind::User
            } else {
                PrincipalKind::Agent
            },
            id: format!("subject{s}"),
        };
        for k in 0..5 {
            n += 1;
            let scope = n
                .is_multiple_of(5)
                .then(|| ("workflow".to_string(), format!("team{}-*", s % 10)));
            data.assignments
                .entry(subject.clone())
                .or_default()
                .push(Assignment {
                    role: format!("role{}", (s * 13 + k * 101) % 1000),
                    scope,
                });
        }
    }
    data
}

/// The same policy in a migrated database (subjects as agents).
fn stored_policy(path: &std::path::Path, data: &PolicyData) -> rusqlite::Connection {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    agentry::db::migrate::migrate(&mut conn).unwrap();
    let tx = conn.transaction().unwrap();
    for (name, (grants, _)) in &data.roles {
        tx.execute(
            "INSERT INTO roles (name, created_at, updated_at) VALUES (?1, 0, 0)",
            [name],
        )
        .unwrap();
        for g in grants {
            tx.execute(
                "INSERT OR IGNORE INTO role_permissions (role, pattern) VALUES (?1, ?2)",
                [name, g],
            )
            .unwrap();
        }
    }
    for (name, (_, parents)) in &data.roles {
        for p in parents {
            tx.execute(
                "INSERT INTO role_inherits (role, parent) VALUES (?1, ?2)",
                [name, p],
            )
            .unwrap();
        }
    }
    let mut n = 0;
    for (subject, assignments) in &data.assignments {
        tx.execute(
            "INSERT INTO agents (id, name, agent_type, created_at, updated_at) VALUES (?1, ?1, 'bench', 0, 0)",
            [&subject.id],
        )
        .unwrap();
        for a in assignments {
            n += 1;
            let (t, p) = a.scope.clone().unzip();
            tx.execute(
                "INSERT OR IGNORE INTO role_assignments (id, role, agent_id, scope_type, scope_pattern, created_at) VALUES (?1, ?2, ?3, ?4, ?5, 0)",
                rusqlite::params![format!("a{n}"), a.role, subject.id, t, p],
            )
            .unwrap();
        }
    }
    tx.commit().unwrap();
    conn
}

fn bench(c: &mut Criterion) {
    let data = policy_data();
    let policy = Policy::compile(data.clone());
    let subject = Subject {
        kind: PrincipalKind::Agent,
        id: "subject4242".into(),
    };
    // Find a permission this subject holds through its deepest role, and one it lacks.
    let granted = "res10:act3";
    c.bench_function("decision (1k roles, 50k assignments)", |b| {
        b.iter(|| {
            black_box(policy.check(
                black_box(&subject),
                black_box(granted),
                Some(("workflow", "team2-x")),
            ))
        })
    });
    c.bench_function("decision, denied", |b| {
        b.iter(|| black_box(policy.check(black_box(&subject), black_box("nothing:here"), None)))
    });
    let mut group = c.benchmark_group("rebuild");
    group.sample_size(10);
    group.bench_function("compile the whole policy", |b| {
        b.iter(|| black_box(Policy::compile(black_box(data.clone()))))
    });
    // What the live view does after a change: read everything from SQLite,
    // then compile.
    let dir = tempfile::tempdir().unwrap();
    let conn = stored_policy(&dir.path().join("bench.db"), &data);
    group.bench_function("read from SQLite and compile", |b| {
        b.iter(|| {
            black_box(Policy::compile(PolicyData::from(
                agentry::db::roles::policy_rows(&conn).unwrap(),
            )))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Tests of `eval.rs`.
use super::*;
use crate::alerts::expr::{parse, MetricKind};

type Src = crate::alerts::expr::MemorySource;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Src {
    fn num(mut self, metric: &str, l: &[(&str, &str)], v: f64) -> Self {
        self.current
            .entry(metric.into())
            .or_default()
            .push((Arc::new(labels(l)), Value::Number(v)));
        self
    }
    fn text(mut self, metric: &str, l: &[(&str, &str)], v: &str) -> Self {
        self.current
            .entry(metric.into())
            .or_default()
            .push((Arc::new(labels(l)), Value::Text(v.into())));
        self
    }
    fn sum(mut self, metric: &str, window: Duration, l: &[(&str, &str)], v: f64) -> Self {
        self.sums
            .entry((metric.into(), window))
            .or_default()
            .push((Arc::new(labels(l)), v));
        self
    }
}

fn catalog(name: &str) -> Option<MetricKind> {
    match name {
        "agent_health" => Some(MetricKind::State),
        _ => Some(MetricKind::Numeric),
    }
}

/// Hits as `(labels "k=v,k=v", value)` for compact assertions.
fn run(src: &Src, rule: &str) -> Vec<(String, String)> {
    let rule = parse(rule, &catalog).unwrap_or_else(|e| panic!("{rule}: {e}"));
    evaluate(&rule, src)
        .into_iter()
        .map(|h| {
            let l: Vec<String> = h.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            (l.join(","), h.value.to_string())
        })
        .collect()
}

fn hits(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(l, v)| (l.to_string(), v.to_string()))
        .collect()
}

fn fleet() -> Src {
    Src::default()
        .num(
            "error_rate",
            &[("agent", "a1"), ("agent_type", "planner")],
            0.07,
        )
        .num(
            "error_rate",
            &[("agent", "a2"), ("agent_type", "planner")],
            0.01,
        )
        .num(
            "error_rate",
            &[("agent", "a3"), ("agent_type", "executor")],
            0.2,
        )
        .num("error_rate", &[("agent", "a4")], 0.5)
        .num("latency", &[("agent", "a1")], 12.0)
        .num("latency", &[("agent", "a3")], 1.0)
        .num("latency", &[("agent", "a5")], 30.0)
        .text(
            "agent_health",
            &[("agent", "a1"), ("instance", "i1")],
            "unhealthy",
        )
        .text(
            "agent_health",
            &[("agent", "a1"), ("instance", "i2")],
            "healthy",
        )
        .text(
            "agent_health",
            &[("agent", "a3"), ("instance", "i3")],
            "unhealthy",
        )
}

#[test]
fn per_series_hits() {
    let s = fleet();
    assert_eq!(
        run(&s, "error_rate > 5% for 5 minutes"),
        hits(&[
            ("agent=a1,agent_type=planner", "0.07"),
            ("agent=a3,agent_type=executor", "0.2"),
            ("agent=a4", "0.5"),
        ])
    );
    assert_eq!(
        run(&s, "agent_health == 'unhealthy' for 2 minutes"),
        hits(&[
            ("agent=a1,instance=i1", "unhealthy"),
            ("agent=a3,instance=i3", "unhealthy")
        ])
    );
    assert_eq!(
        run(&s, "agent_health != 'unhealthy'"),
        hits(&[("agent=a1,instance=i2", "healthy")])
    );
    assert_eq!(
        run(&s, "latency > 10"),
        hits(&[("agent=a1", "12"), ("agent=a5", "30")])
    );
    assert_eq!(run(&s, "unknown_metric > 0"), hits(&[]));
}

#[test]
fn matchers() {
    let s = fleet();
    let r = |m: &str| -> Vec<String> {
        run(&s, &format!("error_rate{{{m}}} >= 0"))
            .into_iter()
            .map(|(l, _)| l)
            .collect()
    };
    assert_eq!(
        r("agent_type='planner'"),
        ["agent=a1,agent_type=planner", "agent=a2,agent_type=planner"]
    );
    // A missing label is "": != matches it, = '' selects it.
    assert_eq!(
        r("agent_type!='planner'"),
        ["agent=a3,agent_type=executor", "agent=a4"]
    );
    assert_eq!(r("agent_type=''"), ["agent=a4"]);
    // Regexes are anchored.
    assert_eq!(
        r("agent=~'a[13]'"),
        [
            "agent=a1,agent_type=planner",
            "agent=a3,agent_type=executor"
        ]
    );
    assert_eq!(r("agent=~'a'"), Vec::<String>::new());
    assert_eq!(
        r("agent_type!~'plan.*'"),
        ["agent=a3,agent_type=executor", "agent=a4"]
    );
    assert_eq!(
        r("agent_type=~'.*'"),
        [
            "agent=a1,agent_type=planner",
            "agent=a2,agent_type=planner",
            "agent=a3,agent_type=executor",
            "agent=a4"
        ]
    );
    assert_eq!(
        r("agent_type=~'plan.*', agent!='a1'"),
        ["agent=a2,agent_type=planner"]
    );
    assert_eq!(r("agent_type=~'.+'").len(), 3);
}

#[test]
fn or_semantics() {
    let s = Src::default()
        .num("cpu_utilization", &[], 0.95)
        .num("memory_utilization", &[], 0.97)
        .num("x", &[("agent", "a1")], 1.0)
        .num("x", &[("agent", "a2")], 0.0)
        .num("y", &[("agent", "a2")], 5.0)
        .num("y", &[("agent", "a3")], 5.0);
    // Identical label sets merge: one hit, the leftmost true value.
    assert_eq!(
        run(
            &s,
            "cpu_utilization > 90% or memory_utilization > 95% for 3 minutes"
        ),
        hits(&[("", "0.95")])
    );
    assert_eq!(
        run(&s, "cpu_utilization > 96% or memory_utilization > 95%"),
        hits(&[("", "0.97")])
    );
    assert_eq!(
        run(&s, "cpu_utilization > 96% or memory_utilization > 98%"),
        hits(&[])
    );
    // Union of series.
    assert_eq!(
        run(&s, "x > 0.5 or y > 1"),
        hits(&[("agent=a1", "1"), ("agent=a2", "5"), ("agent=a3", "5")])
    );
    // Different label sets do not merge.
    assert_eq!(
        run(&s, "cpu_utilization > 0.5 or x > 0.5"),
        hits(&[("", "0.95"), ("agent=a1", "1")])
    );
}

#[test]
fn and_semantics() {
    let s = Src::default()
        .num("err", &[("agent", "a1"), ("instance", "i1")], 0.2)
        .num("err", &[("agent", "a1"), ("instance", "i2")], 0.0)
        .num("err", &[("agent", "a2"), ("instance", "i3")], 0.3)
        .num("load", &[("agent", "a1"), ("region", "eu")], 0.9)
        .num("load", &[("agent", "a2"), ("region", "us")], 0.1)
        .num("global", &[], 1.0)
        .num("up", &[("agent", "a1"), ("instance", "i1")], 1.0)
        .num("up", &[("agent", "a2"), ("instance", "i3")], 0.0);
    // Join on the shared name `agent`, labels merged.
    assert_eq!(
        run(&s, "err > 0.1 and load > 0.5"),
        hits(&[("agent=a1,instance=i1,region=eu", "0.2")])
    );
    assert_eq!(
        run(&s, "load > 0.5 and err > 0.1"),
        hits(&[("agent=a1,instance=i1,region=eu", "0.9")])
    );
    // No shared names: every pair joins.
    assert_eq!(
        run(&s, "err > 0.1 and global > 0"),
        hits(&[
            ("agent=a1,instance=i1", "0.2"),
            ("agent=a2,instance=i3", "0.3")
        ])
    );
    assert_eq!(run(&s, "err > 0.1 and global > 5"), hits(&[]));
    // Same names: equal label sets join.
    assert_eq!(
        run(&s, "err > 0.1 and up == 1"),
        hits(&[("agent=a1,instance=i1", "0.2")])
    );
    // A series missing on one side is not a hit.
    assert_eq!(run(&s, "err >= 0 and up >= 0").len(), 2);
    // Several entries merging into one label set: one hit.
    let s2 = Src::default()
        .num("p", &[("a", "1")], 1.0)
        .num("p", &[("a", "1"), ("b", "2")], 2.0)
        .num("q", &[("b", "2")], 3.0)
        .num("q", &[("a", "1"), ("b", "2")], 4.0);
    assert_eq!(run(&s2, "p > 0 and q > 0"), hits(&[("a=1,b=2", "1")]));
}

#[test]
fn not_semantics() {
    let s = Src::default()
        .num("up", &[("agent", "a1")], 1.0)
        .num("up", &[("agent", "a2")], 0.0)
        .num("err", &[("agent", "a1")], 0.5)
        .num("err", &[("agent", "a2")], 0.5)
        .num("err", &[("agent", "a3")], 0.5);
    assert_eq!(run(&s, "not up == 1"), hits(&[("agent=a2", "0")]));
    assert_eq!(run(&s, "not not up == 1"), hits(&[("agent=a1", "1")]));
    // De Morgan over the same series.
    assert_eq!(
        run(&s, "not (up == 1 and err > 0.1)"),
        run(&s, "not up == 1 or not err > 0.1")
    );
    // `not` only sees series that exist: a3 has no `up`.
    assert_eq!(
        run(&s, "err > 0.1 and not up == 1"),
        hits(&[("agent=a2", "0.5")])
    );
    // Under `not`, false entries of an `or` are kept and flipped.
    assert_eq!(
        run(&s, "not (up > 5 or err > 5)"),
        hits(&[("agent=a1", "1"), ("agent=a2", "0"), ("agent=a3", "0.5")])
    );
    // Selector still applies under not.
    assert_eq!(
        run(&s, "not up{agent='a1'} == 0"),
        hits(&[("agent=a1", "1")])
    );
}

#[test]
fn windows() {
    let m = Duration::from_secs(60);
    let s = Src::default()
        .num("failed_auth_attempts", &[("user", "x")], 1.0)
        .sum("failed_auth_attempts", m, &[("user", "x")], 12.0)
        .sum("failed_auth_attempts", m, &[("user", "y")], 3.0)
        .sum(
            "failed_auth_attempts",
            Duration::from_secs(300),
            &[("user", "y")],
            40.0,
        );
    assert_eq!(
        run(&s, "failed_auth_attempts > 10 in 1 minute"),
        hits(&[("user=x", "12")])
    );
    assert_eq!(
        run(&s, "failed_auth_attempts > 10 in 5m"),
        hits(&[("user=y", "40")])
    );
    // The window sum, not the current value, is compared and reported.
    assert_eq!(run(&s, "failed_auth_attempts > 10"), hits(&[]));
    assert_eq!(
        run(
            &s,
            "failed_auth_attempts{user='x'} > 10 in 60s or failed_auth_attempts > 0.5"
        ),
        hits(&[("user=x", "12")])
    );
}

#[test]
fn nan_compares_false() {
    let s = Src::default()
        .num("x", &[("k", "nan")], f64::NAN)
        .num("x", &[("k", "one")], 1.0)
        .text("x", &[("k", "text")], "oops")
        .sum("x", Duration::from_secs(60), &[("k", "nan")], f64::NAN);
    for op in [">", ">=", "<", "<=", "==", "!="] {
        let got = run(&s, &format!("x {op} 1"));
        assert!(got.iter().all(|(l, _)| l != "k=nan"), "{op}: {got:?}");
        assert!(run(&s, &format!("x {op} 1 in 1m")).is_empty(), "{op}");
    }
    assert_eq!(run(&s, "x != 1"), hits(&[]));
    // Negated, a NaN comparison is true; a text value of a numeric
    // comparison is left out altogether.
    assert_eq!(
        run(&s, "not x > 1"),
        hits(&[("k=nan", "NaN"), ("k=one", "1")])
    );
}

#[test]
fn join_paths_agree() {
    // Large sides take the hash path; compare with the nested loops.
    let mut s = Src::default();
    for i in 0..60 {
        let agent = format!("a{}", i % 20);
        let inst = format!("i{i}");
        s = s.num("p", &[("agent", &agent), ("instance", &inst)], i as f64);
        if i % 3 == 0 {
            s = s.num("q", &[("agent", &agent)], i as f64);
        }
        if i % 2 == 0 {
            s = s.num("r", &[("agent", &agent), ("instance", &inst)], i as f64);
        }
        if i % 4 == 0 {
            s = s.num("t", &[("zone", &format!("z{}", i % 8))], i as f64);
        }
    }
    let brute = |rule: &str| -> Vec<(String, String)> {
        // Reference: nested loops over all true entries.
        let rule = parse(rule, &catalog).unwrap();
        let Expr::And(l, r) = &rule.condition else {
            panic!()
        };
        let a = eval(l, &s, false);
        let b = eval(r, &s, false);
        let mut out = Vec::new();
        for x in &a {
            for y in &b {
                if let Some(lab) = merge_labels(&x.labels, &y.labels) {
                    out.push(Entry {
                        labels: lab,
                        truth: true,
                        value: x.value,
                    });
                }
            }
        }
        dedupe(&mut out);
        out.iter()
            .map(|e| {
                let l: Vec<String> = e
                    .labels
                    .get()
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let v = match e.value {
                    Val::Ref(v) => v.to_string(),
                    Val::Num(n) => n.to_string(),
                };
                (l.join(","), v)
            })
            .collect()
    };
    for rule in [
        "p >= 0 and q >= 0",
        "q >= 0 and p >= 0",
        "p >= 0 and r >= 0",
        "p > 10 and t >= 0",
        "t >= 0 and q >= 0",
    ] {
        let got = run(&s, rule);
        assert!(!got.is_empty(), "{rule}");
        assert_eq!(got, brute(rule), "{rule}");
    }
}

#[test]
fn shared_arcs_and_duplicates() {
    // Two metrics on the very same label set Arc: joins by pointer.
    let l = Arc::new(labels(&[("agent", "a1")]));
    let mut s = Src::default();
    s.current
        .insert("x".into(), vec![(l.clone(), Value::Number(2.0))]);
    s.current.insert(
        "y".into(),
        vec![(l.clone(), Value::Number(3.0)), (l, Value::Number(4.0))],
    );
    assert_eq!(run(&s, "x > 1 and y > 1"), hits(&[("agent=a1", "2")]));
    // A duplicated series in the source still gives one hit.
    assert_eq!(run(&s, "y > 1"), hits(&[("agent=a1", "3")]));

    // Two metrics over the same Arcs in the same order (the aligned
    // fast paths), under `not` so that false entries are kept.
    let sets: Vec<Arc<Labels>> = ["a1", "a2", "a3"]
        .iter()
        .map(|a| Arc::new(labels(&[("agent", a)])))
        .collect();
    let mut s = Src::default();
    for (m, vals) in [("u", [1.0, 0.0, 1.0]), ("v", [1.0, 1.0, 0.0])] {
        let series = sets
            .iter()
            .zip(vals)
            .map(|(l, v)| (l.clone(), Value::Number(v)))
            .collect();
        s.current.insert(m.into(), series);
    }
    assert_eq!(
        run(&s, "not (u == 1 and v == 1)"),
        hits(&[("agent=a2", "0"), ("agent=a3", "1")])
    );
    assert_eq!(run(&s, "not (u == 1 or v == 1)"), hits(&[]));
    assert_eq!(
        run(&s, "not (u == 0 or v == 0)"),
        hits(&[("agent=a1", "1")])
    );
    assert_eq!(run(&s, "not u == 1 and not v == 1"), hits(&[]));
    // Aligned, but with different name sets: not only pairwise.
    let sets = [
        Arc::new(labels(&[("a", "1")])),
        Arc::new(labels(&[("a", "1"), ("b", "2")])),
    ];
    let mut s = Src::default();
    for m in ["u", "v"] {
        let series = sets
            .iter()
            .map(|l| (l.clone(), Value::Number(1.0)))
            .collect();
        s.current.insert(m.into(), series);
    }
    assert_eq!(
        run(&s, "not (u > 1 and v > 1)"),
        hits(&[("a=1", "1"), ("a=1,b=2", "1")])
    );
    let s2 = {
        let mut s2 = Src::default();
        s2.current.insert(
            "u".into(),
            vec![
                (sets[0].clone(), Value::Number(1.0)),
                (sets[1].clone(), Value::Number(1.0)),
            ],
        );
        s2.current.insert(
            "v".into(),
            vec![
                (sets[0].clone(), Value::Number(0.0)),
                (sets[1].clone(), Value::Number(1.0)),
            ],
        );
        s2
    };
    // {a=1} of u joins {a=1,b=2} of v (true), so a=1,b=2 holds once.
    assert_eq!(run(&s2, "u > 0 and not v < 0.5"), hits(&[("a=1,b=2", "1")]));
    // Inside: {a=1} is true (u{a=1} with v{a=1}); {a=1,b=2} comes out
    // of three pairs, one of them true (u{a=1,b=2} with v{a=1}), so it
    // is true as well. Negated: nothing.
    assert_eq!(run(&s2, "not (u > 0 and v < 0.5)"), hits(&[]));
}

#[test]
fn value_display() {
    assert_eq!(Value::Number(0.07).to_string(), "0.07");
    assert_eq!(Value::Number(12.0).to_string(), "12");
    assert_eq!(Value::Number(-3.5).to_string(), "-3.5");
    assert_eq!(Value::Number(1e20).to_string(), "1e20");
    assert_eq!(Value::Text("unhealthy".into()).to_string(), "unhealthy");
}

//! One alert evaluation cycle at the scale of the alerting target: 10,000
//! series (100 metrics × 100 series, 4 labels each, label sets shared
//! between metrics as the engine interns them) and 1,000 parsed rules of
//! mixed shapes (plain comparisons, equality and regex matchers, `or`,
//! `and`, `not`, `in` windows, a state metric). A cycle evaluates every
//! rule. Also measures parsing the 1,000 rules.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentry::alerts::expr::{
    evaluate, parse, Labels, MemorySource as Mem, MetricKind, Rule, Value,
};
use criterion::{criterion_group, criterion_main, Criterion};

const METRICS: usize = 100;
const SERIES: usize = 100;
const RULES: usize = 1_000;
const AGENT_TYPES: [&str; 4] = ["planner", "executor", "retriever", "critic"];

/// Deterministic values in [0, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn metric(i: usize) -> String {
    if i == 0 {
        "agent_health".to_string()
    } else {
        format!("agent_metric_{i}")
    }
}

fn catalog(name: &str) -> Option<MetricKind> {
    if name == "agent_health" {
        Some(MetricKind::State)
    } else if name.starts_with("agent_metric_") {
        Some(MetricKind::Numeric)
    } else {
        None
    }
}

fn source() -> Mem {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // One interned label set per series, shared by all metrics.
    let labels: Vec<Arc<Labels>> = (0..SERIES)
        .map(|s| {
            Arc::new(Labels::from([
                ("agent".to_string(), format!("agent-{}", s / 4)),
                ("agent_type".to_string(), AGENT_TYPES[s % 4].to_string()),
                ("instance".to_string(), format!("instance-{s}")),
                ("region".to_string(), ["eu", "us"][s % 2].to_string()),
            ]))
        })
        .collect();
    let mut current = HashMap::new();
    let mut sums = HashMap::new();
    for m in 0..METRICS {
        let name = metric(m);
        let series = labels
            .iter()
            .map(|l| {
                let v = if m == 0 {
                    let state = if rng.next() < 0.05 {
                        "unhealthy"
                    } else {
                        "healthy"
                    };
                    Value::Text(state.to_string())
                } else {
                    Value::Number(rng.next())
                };
                (l.clone(), v)
            })
            .collect();
        current.insert(name.clone(), series);
        if m != 0 {
            for w in [60, 300] {
                let s = labels
                    .iter()
                    .map(|l| (l.clone(), (rng.next() * 60.0).floor()))
                    .collect();
                sums.insert((name.clone(), Duration::from_secs(w)), s);
            }
        }
    }
    Mem { current, sums }
}

/// Rule texts of mixed shapes; thresholds make a few percent of series fire.
fn rule_texts() -> Vec<String> {
    (0..RULES)
        .map(|i| {
            let m = |k: usize| metric(1 + (i * 7 + k * 13) % (METRICS - 1));
            let t = AGENT_TYPES[i % 4];
            match i % 10 {
                0 | 1 => format!("{} > 95% for 5 minutes", m(0)),
                2 => format!("{}{{agent_type=\"{t}\"}} > 0.9 for 2m", m(0)),
                3 => format!(
                    "{}{{agent=~\"agent-1.*\", agent_type!=\"{t}\"}} >= 0.8",
                    m(0)
                ),
                4 => format!("{} > 0.97 or {} > 98% for 3 minutes", m(0), m(1)),
                5 => format!(
                    "{} > 0.5 and {}{{region!~\"u.\"}} < 0.1 for 10m",
                    m(0),
                    m(1)
                ),
                6 => format!("{} > 50 in 1 minute", m(0)),
                7 => format!("{} > 0.9 and not ({} < 0.5 or {} > 0.9)", m(0), m(1), m(2)),
                8 => "agent_health == 'unhealthy' for 2 minutes".to_string(),
                _ => format!(
                    "({} > 0.99 or {} < 0.01) and {} > 55 in 5m",
                    m(0),
                    m(1),
                    m(2)
                ),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let src = source();
    let texts = rule_texts();
    let rules: Vec<Rule> = texts
        .iter()
        .map(|t| parse(t, &catalog).unwrap_or_else(|e| panic!("{t}: {e}")))
        .collect();

    // One plain measurement, printed, so the figure is visible without
    // criterion's report.
    let cycle = |rules: &[Rule]| rules.iter().map(|r| evaluate(r, &src).len()).sum::<usize>();
    let hits = cycle(&rules);
    let start = Instant::now();
    const N: u32 = 20;
    for _ in 0..N {
        black_box(cycle(black_box(&rules)));
    }
    println!(
        "alert_eval: {RULES} rules over {} series: {hits} hits per cycle, {:?} per cycle (mean of {N})",
        METRICS * SERIES,
        start.elapsed() / N
    );

    let mut group = c.benchmark_group("alert_eval");
    group.sample_size(20);
    group.bench_function("cycle: 1,000 rules over 10,000 series", |b| {
        b.iter(|| black_box(cycle(black_box(&rules))))
    });
    group.bench_function("parse 1,000 rules", |b| {
        b.iter(|| {
            for t in &texts {
                black_box(parse(black_box(t), &catalog).unwrap());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

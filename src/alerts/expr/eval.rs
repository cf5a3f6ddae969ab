//! Evaluation of a parsed rule against the current values of the series.
//!
//! Every node of the condition yields a set of entries `(label set, truth,
//! value)`, at most one per label set:
//!
//! - a comparison: one entry per series of its metric that its selector
//!   matches (a missing label reads as ""), true when the comparison holds
//!   (NaN compares false, even with `!=`); a series whose value has the
//!   other type (text for a numeric comparison) is left out;
//! - `not`: the same entries, truth negated;
//! - `A or B`: the union; entries with identical label sets are merged
//!   with their truths OR-ed;
//! - `A and B`: the natural join: every pair that agrees on the label names
//!   both have, with the labels merged, true when both are;
//! - entries that end up with the same label set are merged (truth OR-ed).
//!
//! The value of an entry is the value of the leftmost comparison that made
//! it true (for `in` comparisons, the window sum). The hits are the true
//! entries.
//!
//! Outside any `not`, a false entry can never contribute to a hit, so false
//! entries are dropped as soon as they appear there (and the right side of
//! an `and` whose left side is empty is not evaluated): most of a cycle's
//! comparisons are false and cost no allocation.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::ast::{write_number, Comparison, Expr, Literal, Rule};

/// The labels of one series.
pub type Labels = BTreeMap<String, String>;

/// The value of a series: a number, or a state such as `'unhealthy'`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Text(String),
}

impl fmt::Display for Value {
    /// Numbers the short way (`0.07`, `12`), text as is (no quotes): what
    /// `{{ $value }}` shows.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(n) => write_number(f, *n),
            Value::Text(s) => f.write_str(s),
        }
    }
}

/// Where the evaluator reads series from. The engine fills it once per
/// cycle (prefetching what [`Rule::metrics`] lists); at most one entry per
/// label set and metric is expected. Label sets shared between metrics
/// should be the same `Arc`: comparisons try the pointer first.
pub trait Source {
    /// Current value of every series of `metric` (the engine fills this from
    /// instance states and the latest samples).
    fn current(&self, metric: &str) -> &[(Arc<Labels>, Value)];
    /// Sum of each series' samples over the last `window` (for `in`
    /// comparisons).
    fn sum_over(&self, metric: &str, window: Duration) -> &[(Arc<Labels>, f64)];
}

/// A series for which the condition holds now.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub labels: Labels,
    pub value: Value,
}

/// The series for which the rule's condition holds now, one hit per label
/// set, in a deterministic order (left to right through the expression, then
/// source order). The `for` clause is not applied here: the caller keeps
/// per-series pending state.
pub fn evaluate(rule: &Rule, src: &dyn Source) -> Vec<Hit> {
    let mut set = eval(&rule.condition, src, false);
    set.retain(|e| e.truth);
    dedupe(&mut set);
    set.into_iter()
        .map(|e| Hit {
            labels: match e.labels {
                Lab::Src(l) => l.clone(),
                Lab::Own(rc) => Rc::try_unwrap(rc).unwrap_or_else(|rc| (*rc).clone()),
            },
            value: match e.value {
                Val::Ref(v) => v.clone(),
                Val::Num(n) => Value::Number(n),
            },
        })
        .collect()
}

/// A label set: borrowed from the source, or built by a join.
#[derive(Clone)]
enum Lab<'a> {
    Src(&'a Labels),
    Own(Rc<Labels>),
}

impl Lab<'_> {
    fn get(&self) -> &Labels {
        match self {
            Lab::Src(l) => l,
            Lab::Own(l) => l,
        }
    }
}

#[derive(Clone, Copy)]
enum Val<'a> {
    Ref(&'a Value),
    Num(f64),
}

#[derive(Clone)]
struct Entry<'a> {
    labels: Lab<'a>,
    truth: bool,
    value: Val<'a>,
}

fn same(a: &Labels, b: &Labels) -> bool {
    std::ptr::eq(a, b) || a == b
}

/// Evaluates `e`; with `keep_false` unset (no enclosing `not`), only true
/// entries are returned.
fn eval<'a>(e: &Expr, src: &'a dyn Source, keep_false: bool) -> Vec<Entry<'a>> {
    match e {
        Expr::Cmp(c) => compare(c, src, keep_false),
        Expr::Not(inner) => {
            let mut v = eval(inner, src, true);
            for x in &mut v {
                x.truth = !x.truth;
            }
            if !keep_false {
                v.retain(|x| x.truth);
            }
            v
        }
        Expr::Or(l, r) => union(eval(l, src, keep_false), eval(r, src, keep_false)),
        Expr::And(l, r) => {
            let a = eval(l, src, keep_false);
            if a.is_empty() {
                return a;
            }
            let b = eval(r, src, keep_false);
            join(a, b)
        }
    }
}

fn compare<'a>(c: &Comparison, src: &'a dyn Source, keep_false: bool) -> Vec<Entry<'a>> {
    let mut out = Vec::new();
    let sel = &c.selector;
    match (c.window, &c.literal) {
        (None, lit) => {
            for (labels, value) in src.current(&sel.metric) {
                let truth = match (value, lit) {
                    (Value::Number(v), Literal::Number(n)) => c.op.compare(*v, *n),
                    (Value::Text(v), Literal::Text(t)) => c.op.compare_text(v, t),
                    _ => continue,
                };
                // The comparison is cheaper than the matchers: test it first.
                if (truth || keep_false) && sel.matches(labels) {
                    out.push(Entry {
                        labels: Lab::Src(labels),
                        truth,
                        value: Val::Ref(value),
                    });
                }
            }
        }
        (Some(w), Literal::Number(n)) => {
            for (labels, sum) in src.sum_over(&sel.metric, w) {
                let truth = c.op.compare(*sum, *n);
                if (truth || keep_false) && sel.matches(labels) {
                    out.push(Entry {
                        labels: Lab::Src(labels),
                        truth,
                        value: Val::Num(*sum),
                    });
                }
            }
        }
        // Refused by the parser (state metrics have no window).
        (Some(_), Literal::Text(_)) => {}
    }
    out
}

/// Whether both sides hold the very same label sets (same `Arc`s) in the
/// same order: the usual case for metrics of the same series, and cheap to
/// check before any hashing.
fn aligned(a: &[Entry<'_>], b: &[Entry<'_>]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| std::ptr::eq(x.labels.get(), y.labels.get()))
}

/// Below this many pairs, plain nested loops beat hashing.
const SMALL: usize = 64;

/// `x or y` for two entries with the same label set.
fn merge_or<'a>(x: &mut Entry<'a>, y: &Entry<'a>) {
    if !x.truth && y.truth {
        x.truth = true;
        x.value = y.value;
    }
}

fn union<'a>(mut a: Vec<Entry<'a>>, b: Vec<Entry<'a>>) -> Vec<Entry<'a>> {
    if b.is_empty() {
        return a;
    }
    if a.is_empty() {
        return b;
    }
    if aligned(&a, &b) {
        for (x, y) in a.iter_mut().zip(&b) {
            merge_or(x, y);
        }
        return a;
    }
    let mut taken = vec![false; b.len()];
    if a.len() * b.len() <= SMALL {
        for x in a.iter_mut() {
            if let Some(j) = b.iter().position(|y| same(x.labels.get(), y.labels.get())) {
                taken[j] = true;
                merge_or(x, &b[j]);
            }
        }
    } else {
        let mut index: HashMap<&Labels, usize> = HashMap::with_capacity(b.len());
        for (j, y) in b.iter().enumerate() {
            index.entry(y.labels.get()).or_insert(j);
        }
        for x in a.iter_mut() {
            if let Some(&j) = index.get(x.labels.get()) {
                taken[j] = true;
                merge_or(x, &b[j]);
            }
        }
    }
    a.extend(b.into_iter().zip(taken).filter(|(_, t)| !t).map(|(y, _)| y));
    a
}

/// The merged label set of two series that agree on their shared label
/// names, or None when they disagree. Allocates only when each side has a
/// label the other lacks.
fn merge_labels<'a>(x: &Lab<'a>, y: &Lab<'a>) -> Option<Lab<'a>> {
    let (xl, yl) = (x.get(), y.get());
    if std::ptr::eq(xl, yl) {
        return Some(x.clone());
    }
    let (mut xi, mut yi) = (xl.iter().peekable(), yl.iter().peekable());
    let (mut x_extra, mut y_extra) = (false, false);
    loop {
        match (xi.peek(), yi.peek()) {
            (Some((kx, vx)), Some((ky, vy))) => match kx.cmp(ky) {
                std::cmp::Ordering::Less => {
                    x_extra = true;
                    xi.next();
                }
                std::cmp::Ordering::Greater => {
                    y_extra = true;
                    yi.next();
                }
                std::cmp::Ordering::Equal => {
                    if vx != vy {
                        return None;
                    }
                    xi.next();
                    yi.next();
                }
            },
            (Some(_), None) => {
                x_extra = true;
                break;
            }
            (None, Some(_)) => {
                y_extra = true;
                break;
            }
            (None, None) => break,
        }
    }
    Some(match (x_extra, y_extra) {
        (_, false) => x.clone(),
        (false, true) => y.clone(),
        (true, true) => {
            let mut m = xl.clone();
            for (k, v) in yl {
                m.entry(k.clone()).or_insert_with(|| v.clone());
            }
            Lab::Own(Rc::new(m))
        }
    })
}

fn same_names(a: &Labels, b: &Labels) -> bool {
    std::ptr::eq(a, b) || (a.len() == b.len() && a.keys().eq(b.keys()))
}

/// Entries grouped by their set of label names: (representative, members).
fn name_groups(v: &[Entry<'_>]) -> Vec<(usize, Vec<usize>)> {
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, e) in v.iter().enumerate() {
        let l = e.labels.get();
        match groups
            .iter_mut()
            .find(|(rep, _)| same_names(v[*rep].labels.get(), l))
        {
            Some((_, members)) => members.push(i),
            None => groups.push((i, vec![i])),
        }
    }
    groups
}

fn hash_of(labels: &Labels, names: &[&str]) -> u64 {
    let mut h = DefaultHasher::new();
    for n in names {
        labels.get(*n).hash(&mut h);
    }
    h.finish()
}

fn join<'a>(a: Vec<Entry<'a>>, b: Vec<Entry<'a>>) -> Vec<Entry<'a>> {
    if a.is_empty() || b.is_empty() {
        return Vec::new();
    }
    let pair = |x: &Entry<'a>, y: &Entry<'a>| {
        merge_labels(&x.labels, &y.labels).map(|labels| Entry {
            labels,
            truth: x.truth && y.truth,
            value: x.value,
        })
    };
    if aligned(&a, &b) {
        let names = a[0].labels.get();
        if a.iter().all(|x| same_names(names, x.labels.get())) {
            // One name set, the same label sets in the same order: each
            // entry joins its counterpart only.
            return a
                .into_iter()
                .zip(b)
                .map(|(x, y)| Entry {
                    truth: x.truth && y.truth,
                    ..x
                })
                .collect();
        }
    }
    let mut out = Vec::new();
    if a.len() * b.len() <= SMALL {
        for x in &a {
            for y in &b {
                out.extend(pair(x, y));
            }
        }
        dedupe(&mut out);
        return out;
    }
    // Hash join per pair of label-name groups, on the names they share.
    let (ga, gb) = (name_groups(&a), name_groups(&b));
    let mut unique = ga.len() == 1 && gb.len() == 1;
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    for (rep_b, members_b) in &gb {
        let names_b = b[*rep_b].labels.get();
        for (rep_a, members_a) in &ga {
            let names_a = a[*rep_a].labels.get();
            let shared: Vec<&str> = names_a
                .keys()
                .filter(|k| names_b.contains_key(*k))
                .map(String::as_str)
                .collect();
            // Both sides hold one entry per label set. When all of one
            // side's names are shared, each entry of the other side pairs
            // with at most one of its entries and keeps its own label set,
            // so the output needs no deduplication.
            unique &= shared.len() == names_a.len() || shared.len() == names_b.len();
            let mut table: Vec<(u64, usize)> = members_b
                .iter()
                .map(|&j| (hash_of(b[j].labels.get(), &shared), j))
                .collect();
            table.sort_unstable();
            for &i in members_a {
                let h = hash_of(a[i].labels.get(), &shared);
                let from = table.partition_point(|(th, _)| *th < h);
                for &(th, j) in &table[from..] {
                    if th != h {
                        break;
                    }
                    pairs.push((i, j));
                }
            }
        }
    }
    pairs.sort_unstable();
    out.extend(pairs.into_iter().filter_map(|(i, j)| pair(&a[i], &b[j])));
    if !unique {
        dedupe(&mut out);
    }
    out
}

/// Merges entries with the same label set into the first of them (truth
/// OR-ed, value of the first true one).
fn dedupe(v: &mut Vec<Entry<'_>>) {
    if v.len() < 2 {
        return;
    }
    let firsts: Vec<usize> = if v.len() <= 16 {
        (0..v.len())
            .map(|i| {
                (0..i)
                    .find(|&k| same(v[k].labels.get(), v[i].labels.get()))
                    .unwrap_or(i)
            })
            .collect()
    } else {
        let mut seen: HashMap<&Labels, usize> = HashMap::with_capacity(v.len());
        v.iter()
            .enumerate()
            .map(|(i, e)| *seen.entry(e.labels.get()).or_insert(i))
            .collect()
    };
    if firsts.iter().enumerate().all(|(i, f)| i == *f) {
        return;
    }
    for (i, &f) in firsts.iter().enumerate() {
        if f != i {
            let (lo, hi) = v.split_at_mut(i);
            merge_or(&mut lo[f], &hi[0]);
        }
    }
    let mut i = 0;
    v.retain(|_| {
        let keep = firsts[i] == i;
        i += 1;
        keep
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::expr::{parse, MetricKind};

    type Sums = HashMap<(String, Duration), Vec<(Arc<Labels>, f64)>>;

    #[derive(Default)]
    struct Src {
        current: HashMap<String, Vec<(Arc<Labels>, Value)>>,
        sums: Sums,
    }

    impl Source for Src {
        fn current(&self, metric: &str) -> &[(Arc<Labels>, Value)] {
            self.current.get(metric).map_or(&[], Vec::as_slice)
        }
        fn sum_over(&self, metric: &str, window: Duration) -> &[(Arc<Labels>, f64)] {
            self.sums
                .get(&(metric.to_string(), window))
                .map_or(&[], Vec::as_slice)
        }
    }

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
}

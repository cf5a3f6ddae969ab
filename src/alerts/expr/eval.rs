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
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::ast::{write_number, Comparison, Expr, Literal, Rule};

pub use super::ast::Labels;

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

/// Windowed sums keyed by (metric, window), as [`Source::sum_over`] answers.
pub type WindowSums = HashMap<(String, Duration), Vec<(Arc<Labels>, f64)>>;

/// A [`Source`] held in memory, filled by the caller: for tests, benchmarks
/// and anything that evaluates against figures it already has.
#[derive(Debug, Default)]
pub struct MemorySource {
    pub current: HashMap<String, Vec<(Arc<Labels>, Value)>>,
    pub sums: WindowSums,
}

impl Source for MemorySource {
    fn current(&self, metric: &str) -> &[(Arc<Labels>, Value)] {
        self.current.get(metric).map_or(&[], Vec::as_slice)
    }
    fn sum_over(&self, metric: &str, window: Duration) -> &[(Arc<Labels>, f64)] {
        self.sums
            .get(&(metric.to_string(), window))
            .map_or(&[], Vec::as_slice)
    }
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
#[path = "eval_tests.rs"]
mod tests;

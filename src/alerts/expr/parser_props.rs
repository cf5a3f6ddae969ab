//! Property tests of `parser.rs`: no input makes it panic, and every tree
//! it can print parses back to itself.
use super::*;
use proptest::prelude::*;

const TOKENS: &[&str] = &[
    "a",
    "b",
    "agent_health",
    "error_rate",
    "foo",
    "and",
    "or",
    "not",
    "for",
    "in",
    "AND",
    "(",
    ")",
    "{",
    "}",
    ",",
    "'",
    "\"",
    "'x'",
    "\"y\"",
    "\\",
    "=",
    "==",
    "!=",
    "=~",
    "!~",
    ">",
    ">=",
    "<",
    "<=",
    "!",
    "%",
    "5",
    "0",
    "1e3",
    "-3",
    ".5",
    "1.",
    "90%",
    "2",
    "m",
    "minutes",
    "1h30m",
    "500ms",
    "s",
    " ",
    "  ",
    "x",
    "__n",
    "a:b",
    "é",
    "\t",
    "\n",
    "e",
    "-",
    ".",
    "'unhealthy'",
    "agent",
    "'[a-'",
    "'.*'",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(TOKENS), prop::bool::ANY), 0..60).prop_map(
        |parts| {
            let mut s = String::new();
            for (t, space) in parts {
                s.push_str(t);
                if space {
                    s.push(' ');
                }
            }
            s
        },
    )
}

fn any_catalog(name: &str) -> Option<MetricKind> {
    if name.starts_with("state") || name == "agent_health" {
        Some(MetricKind::State)
    } else if name.starts_with("foo") {
        None
    } else {
        Some(MetricKind::Numeric)
    }
}

fn check_no_panic(src: &str) {
    match parse(src, &any_catalog) {
        Ok(r) => {
            // Whatever parses displays to something that parses again,
            // to the same canonical text.
            let shown = r.to_string();
            if shown.chars().count() > MAX_LEN {
                return;
            }
            let again =
                parse(&shown, &any_catalog).unwrap_or_else(|e| panic!("{src:?} -> {shown:?}: {e}"));
            assert_eq!(again.to_string(), shown);
        }
        Err(e) => {
            let len = src.chars().count();
            assert!(e.column >= 1 && e.column <= len + 1, "{src:?}: {e:?}");
            assert!(!e.message.is_empty() && !e.message.contains('\n'), "{e:?}");
        }
    }
}

// Round trip of generated trees.
fn metric_name() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_:]{0,6}".prop_filter("keyword or unknown", |s| {
        !matches!(s.as_str(), "and" | "or" | "not" | "for" | "in")
            && !s.starts_with("foo")
            && !s.starts_with("state")
    })
}

fn matcher() -> impl Strategy<Value = Matcher> {
    (
        "[a-z][a-z0-9_]{0,4}",
        prop::sample::select(vec![MatchOp::Eq, MatchOp::Ne, MatchOp::Re, MatchOp::NotRe]),
        prop::sample::select(vec![
            "",
            "x",
            "it's",
            "a\\b",
            "tab\there",
            "p.*",
            "a|b",
            "[0-9]+",
        ]),
    )
        .prop_map(|(n, op, v)| Matcher::new(n, op, v).unwrap())
}

fn leaf() -> impl Strategy<Value = Expr> {
    let numeric = (
        metric_name(),
        prop::collection::vec(matcher(), 0..3),
        prop::sample::select(vec![
            CmpOp::Gt,
            CmpOp::Ge,
            CmpOp::Lt,
            CmpOp::Le,
            CmpOp::Eq,
            CmpOp::Ne,
        ]),
        prop_oneof![(-1e6f64..1e6), Just(0.05), Just(-3.0), Just(1e3)],
        prop::option::of(1_000u64..90 * 86_400_000),
    )
        .prop_map(|(metric, matchers, op, n, w)| {
            Expr::Cmp(Comparison {
                selector: Selector { metric, matchers },
                op,
                literal: Literal::Number(n),
                window: w.map(Duration::from_millis),
                column: 0,
            })
        });
    let state = (prop::bool::ANY, ".{0,8}").prop_map(|(eq, s)| {
        Expr::Cmp(Comparison {
            selector: Selector {
                metric: "state_x".into(),
                matchers: vec![],
            },
            op: if eq { CmpOp::Eq } else { CmpOp::Ne },
            literal: Literal::Text(s),
            window: None,
            column: 0,
        })
    });
    prop_oneof![3 => numeric, 1 => state]
}

fn tree() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(6, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Expr::Or(Box::new(l), Box::new(r))),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Expr::And(Box::new(l), Box::new(r))),
            inner.prop_map(|e| Expr::Not(Box::new(e))),
        ]
    })
}

fn zero_columns(e: &mut Expr) {
    match e {
        Expr::Or(l, r) | Expr::And(l, r) => {
            zero_columns(l);
            zero_columns(r);
        }
        Expr::Not(i) => zero_columns(i),
        Expr::Cmp(c) => c.column = 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(src in "\\PC{0,200}") {
        check_no_panic(&src);
    }

    #[test]
    fn token_soup_never_panics(src in soup()) {
        check_no_panic(&src);
    }

    #[test]
    fn mutated_rules_never_panic(
        rule in tree(),
        edits in prop::collection::vec(
            (any::<prop::sample::Index>(), prop::option::of(prop::sample::select(
                vec!['(', ')', '{', '}', '\'', '"', '\\', '%', ',', '=', '~', '!', ' ', '5',
                     'm', 'x', '.', '-', 'e', '\n', '\u{e9}'],
            ))),
            1..4,
        ),
    ) {
        // A valid rule with a few characters inserted or deleted.
        let mut chars: Vec<char> = format!("{rule} for 2 minutes").chars().collect();
        for (at, c) in edits {
            let i = at.index(chars.len() + 1);
            match c {
                Some(c) => chars.insert(i, c),
                None if i < chars.len() => {
                    chars.remove(i);
                }
                None => {}
            }
        }
        check_no_panic(&chars.into_iter().collect::<String>());
    }

    #[test]
    fn trees_round_trip(
        condition in tree(),
        for_ms in prop::option::of(1_000u64..90 * 86_400_000),
    ) {
        let rule = Rule { condition, for_duration: for_ms.map(Duration::from_millis) };
        let shown = rule.to_string();
        prop_assume!(shown.chars().count() <= MAX_LEN);
        let mut back = parse(&shown, &any_catalog)
            .unwrap_or_else(|e| panic!("{shown:?}: {e}"));
        zero_columns(&mut back.condition);
        prop_assert_eq!(back, rule);
    }
}

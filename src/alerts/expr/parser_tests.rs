//! Tests of `parser.rs`.
use super::*;

fn catalog(name: &str) -> Option<MetricKind> {
    match name {
        "agent_health" | "state_x" => Some(MetricKind::State),
        "error_rate"
        | "workflow_success_rate"
        | "cpu_utilization"
        | "memory_utilization"
        | "failed_auth_attempts"
        | "a"
        | "b"
        | "c"
        | "job:errors:rate5m" => Some(MetricKind::Numeric),
        _ => None,
    }
}

fn p(src: &str) -> Result<Rule, ParseError> {
    parse(src, &catalog)
}

fn err(src: &str) -> ParseError {
    match p(src) {
        Ok(r) => panic!("{src:?} parsed: {r:?}"),
        Err(e) => e,
    }
}

fn cmp(e: &Expr) -> &Comparison {
    match e {
        Expr::Cmp(c) => c,
        other => panic!("not a comparison: {other:?}"),
    }
}

fn mins(n: u64) -> Option<Duration> {
    Some(Duration::from_secs(60 * n))
}

#[test]
fn seed_rules() {
    let r = p("agent_health == 'unhealthy' for 2 minutes").unwrap();
    let c = cmp(&r.condition);
    assert_eq!(c.selector.metric, "agent_health");
    assert!(c.selector.matchers.is_empty());
    assert_eq!(c.op, CmpOp::Eq);
    assert_eq!(c.literal, Literal::Text("unhealthy".into()));
    assert_eq!(c.window, None);
    assert_eq!(c.column, 1);
    assert_eq!(r.for_duration, mins(2));

    let r = p("error_rate > 5% for 5 minutes").unwrap();
    let c = cmp(&r.condition);
    assert_eq!(c.selector.metric, "error_rate");
    assert_eq!(c.op, CmpOp::Gt);
    assert_eq!(c.literal, Literal::Number(0.05));
    assert_eq!(r.for_duration, mins(5));

    let r = p("workflow_success_rate < 90% for 10 minutes").unwrap();
    let c = cmp(&r.condition);
    assert_eq!(c.selector.metric, "workflow_success_rate");
    assert_eq!(c.op, CmpOp::Lt);
    assert_eq!(c.literal, Literal::Number(0.9));
    assert_eq!(r.for_duration, mins(10));

    let r = p("cpu_utilization > 90% or memory_utilization > 95% for 3 minutes").unwrap();
    let Expr::Or(l, rr) = &r.condition else {
        panic!("{:?}", r.condition)
    };
    let (l, rr) = (cmp(l), cmp(rr));
    assert_eq!(l.selector.metric, "cpu_utilization");
    assert_eq!(l.literal, Literal::Number(0.9));
    assert_eq!(rr.selector.metric, "memory_utilization");
    assert_eq!(rr.op, CmpOp::Gt);
    assert_eq!(rr.literal, Literal::Number(0.95));
    assert_eq!(rr.column, 26);
    assert_eq!(r.for_duration, mins(3));
    assert_eq!(
        r.metrics(),
        vec![
            ("cpu_utilization".to_string(), None),
            ("memory_utilization".to_string(), None)
        ]
    );

    let r = p("failed_auth_attempts > 10 in 1 minute").unwrap();
    let c = cmp(&r.condition);
    assert_eq!(c.selector.metric, "failed_auth_attempts");
    assert_eq!(c.op, CmpOp::Gt);
    assert_eq!(c.literal, Literal::Number(10.0));
    assert_eq!(c.window, mins(1));
    assert_eq!(r.for_duration, None);
    assert_eq!(
        r.metrics(),
        vec![("failed_auth_attempts".to_string(), mins(1))]
    );
}

#[test]
fn numbers_and_strings() {
    for (src, v) in [
        ("a > 10", 10.0),
        ("a > 0.5", 0.5),
        ("a > 1e3", 1000.0),
        ("a > -3", -3.0),
        ("a > 12.5%", 0.125),
        ("a > 5 %", 0.05),
        ("a >= .5", 0.5),
    ] {
        assert_eq!(
            cmp(&p(src).unwrap().condition).literal,
            Literal::Number(v),
            "{src}"
        );
    }
    let r = p(r#"agent_health != "it's \"x\"\n""#).unwrap();
    assert_eq!(
        cmp(&r.condition).literal,
        Literal::Text("it's \"x\"\n".into())
    );
}

/// Shape of an expression as a compact string: metrics and operators.
fn shape(e: &Expr) -> String {
    match e {
        Expr::Or(l, r) => format!("or({},{})", shape(l), shape(r)),
        Expr::And(l, r) => format!("and({},{})", shape(l), shape(r)),
        Expr::Not(i) => format!("not({})", shape(i)),
        Expr::Cmp(c) => c.selector.metric.clone(),
    }
}

#[test]
fn precedence() {
    let s = |src: &str| shape(&p(src).unwrap().condition);
    assert_eq!(s("a > 1 or b > 1 and c > 1"), "or(a,and(b,c))");
    assert_eq!(s("a > 1 and b > 1 or c > 1"), "or(and(a,b),c)");
    assert_eq!(s("(a > 1 or b > 1) and c > 1"), "and(or(a,b),c)");
    assert_eq!(s("not a > 1 and b > 1"), "and(not(a),b)");
    assert_eq!(s("not (a > 1 and b > 1)"), "not(and(a,b))");
    assert_eq!(s("a > 1 or not b > 1 or c > 1"), "or(or(a,not(b)),c)");
    assert_eq!(s("a > 1 and b > 1 and c > 1"), "and(and(a,b),c)");
    assert_eq!(
        s("NOT not a > 1 AND b > 1 Or c > 1"),
        "or(and(not(not(a)),b),c)"
    );
    assert_eq!(s("((a > 1))"), "a");
    // `for` applies to the whole condition.
    let r = p("a > 1 or b > 1 for 3m").unwrap();
    assert_eq!(shape(&r.condition), "or(a,b)");
    assert_eq!(r.for_duration, mins(3));
}

#[test]
fn selectors() {
    let r = p(
        r#"a{agent_type="planner", instance!='i-1', agent=~"plan.*", region!~'eu|us',} > 1 in 30s"#,
    )
    .unwrap();
    let c = cmp(&r.condition);
    let m = &c.selector.matchers;
    assert_eq!(m.len(), 4);
    assert_eq!(
        (m[0].name.as_str(), m[0].op, m[0].value.as_str()),
        ("agent_type", MatchOp::Eq, "planner")
    );
    assert_eq!(m[1].op, MatchOp::Ne);
    assert_eq!(m[2].op, MatchOp::Re);
    assert_eq!(m[2].regex().unwrap().as_str(), "^(?:plan.*)$");
    assert_eq!(m[3].op, MatchOp::NotRe);
    assert_eq!(c.window, Some(Duration::from_secs(30)));
    assert!(p("a{} > 1").unwrap().metrics().len() == 1);
    // Metric names may contain ':'; label names may spell keywords.
    p("job:errors:rate5m{in='x', For='y'} > 1").unwrap();
    // Keywords are not metric names.
    let e = err("for > 1");
    assert_eq!((e.kind, e.column), (ErrorKind::UnexpectedToken, 1), "{e}");
    // Rule::metrics: distinct (metric, window).
    let r = p("a > 1 and a > 2 or a > 3 in 1m or b > 1 and a > 5 in 60s").unwrap();
    assert_eq!(
        r.metrics(),
        vec![
            ("a".into(), None),
            ("a".into(), mins(1)),
            ("b".into(), None)
        ]
    );
}

#[test]
fn durations() {
    for (src, secs) in [
        ("a > 1 for 30s", 30),
        ("a > 1 for 2m", 120),
        ("a > 1 for 2 minutes", 120),
        ("a > 1 for 1h", 3600),
        ("a > 1 for 1h30m", 5400),
        ("a > 1 for 1 day", 86_400),
        ("a > 1 FOR 1 Hour 30 Minutes", 5400),
    ] {
        assert_eq!(
            p(src).unwrap().for_duration,
            Some(Duration::from_secs(secs)),
            "{src}"
        );
    }
    let r = p("a > 1 in 1h30m and b > 2 in 2 minutes for 1d").unwrap();
    let Expr::And(l, rr) = &r.condition else {
        panic!()
    };
    assert_eq!(cmp(l).window, Some(Duration::from_secs(5400)));
    assert_eq!(cmp(rr).window, mins(2));
    assert_eq!(r.for_duration, Some(Duration::from_secs(86_400)));
}

#[track_caller]
fn check(src: &str, kind: ErrorKind, column: usize) {
    let e = err(src);
    assert_eq!((e.kind, e.column), (kind, column), "{src:?}: {e}");
    assert!(!e.message.is_empty());
    assert_eq!(e.to_string(), format!("column {column}: {}", e.message));
}

#[test]
fn error_columns() {
    use ErrorKind::*;
    // Unknown metric, at its name.
    check("error_rate > 5% or foo > 1", UnknownMetric, 20);
    assert_eq!(
        err("error_rate > 5% or foo > 1").to_string(),
        "column 20: unknown metric \"foo\""
    );
    // Bad durations, at the duration's start.
    check("error_rate > 5% for 5 fortnights", BadDuration, 21);
    check("error_rate > 5% for 0s", BadDuration, 21);
    check("error_rate > 5% for 5", BadDuration, 21);
    check("error_rate > 5% for 500ms", BadDuration, 21);
    check("error_rate > 5% for 91 days", BadDuration, 21);
    check("error_rate > 5 in 5 and a > 1", BadDuration, 19);
    check("error_rate > 5% for", UnexpectedEnd, 20);
    check("error_rate > 5% for five minutes", BadDuration, 21);
    // Unbalanced parentheses, both directions.
    check("(a > 1 or (b > 2)", UnbalancedParenthesis, 1);
    check("a > 1 and (b > 2 or (c > 3)", UnbalancedParenthesis, 11);
    check("a > 1)", UnbalancedParenthesis, 6);
    check("(a > 1)) or b > 2", UnbalancedParenthesis, 8);
    check("a > 1 or )", UnbalancedParenthesis, 10);
    // Trailing junk, at the first junk token.
    check("error_rate > 5 foo", TrailingInput, 16);
    check("error_rate > 5 for 2m b > 1", TrailingInput, 23);
    check("a > 1 b > 1", TrailingInput, 7);
    // Unterminated string, at the opening quote.
    check("agent_health == 'unhealthy for 2m", UnterminatedString, 17);
    check("a{x=\"y} > 1", UnterminatedString, 5);
    // Type mismatches, at the operator or the literal.
    check("agent_health > 'x'", TypeMismatch, 14);
    check("agent_health == 5", TypeMismatch, 17);
    check("agent_health == 'x' in 5m", TypeMismatch, 21);
    check("error_rate > 'high'", TypeMismatch, 14);
    // Bad regex, at the string.
    check("a{agent=~'(unclosed'} > 1", BadRegex, 10);
    assert_eq!(
        err("a{agent=~'(unclosed'} > 1").message,
        "invalid regular expression \"(unclosed\": unclosed group"
    );
    check("a{agent!~\"[z-a]\"} > 1", BadRegex, 10);
    check("a{agent=~'\\w{1000}{1000}'} > 1", BadRegex, 10);
    check("a{agent=~'\\\\w{1000}{1000}'} > 1", BadRegex, 10);
    // Bad labels.
    check("a{__name__='x'} > 1", BadLabel, 3);
    check("a{x:y='x'} > 1", BadLabel, 3);
    // Unexpected end, one past the last character.
    check("error_rate >", UnexpectedEnd, 13);
    check("error_rate > 5 and", UnexpectedEnd, 19);
    check("error_rate", UnexpectedEnd, 11);
    check("", UnexpectedEnd, 1);
    check("a{x='y'", UnexpectedEnd, 8);
    check("a > 1 in", UnexpectedEnd, 9);
    check("not", UnexpectedEnd, 4);
    // Unexpected tokens.
    check("a = 5", UnexpectedToken, 3);
    check("a > b", UnexpectedToken, 5);
    check("a{x==\"y\"} > 1", UnexpectedToken, 4);
    check("a{x='y' y='z'} > 1", UnexpectedToken, 9);
    check("(a > 1 for 2m)", UnexpectedToken, 8);
    check("() or a > 1", UnexpectedToken, 2);
    check("5 > a", UnexpectedToken, 1);
    // Lexical errors.
    check("a > 1 && b > 1", UnexpectedChar, 7);
    check("a > 5m", BadNumber, 5);
    // Columns count characters, not bytes.
    check("agent_health == 'héé' and föö > 1", UnexpectedChar, 28);
    check("agent_health == 'héé' or", UnexpectedEnd, 25);
    check("agent_health == 'héé' and zzz > 1", UnknownMetric, 27);
}

#[test]
fn limits() {
    // Depth: 32 levels parse, 33 do not (parentheses, not, or a mix).
    let nested = |n: usize| format!("{}a > 1{}", "(".repeat(n), ")".repeat(n));
    p(&nested(MAX_DEPTH)).unwrap();
    check(&nested(MAX_DEPTH + 1), ErrorKind::TooDeep, MAX_DEPTH + 1);
    let nots = |n: usize| format!("{}a > 1", "not ".repeat(n));
    p(&nots(MAX_DEPTH)).unwrap();
    check(&nots(MAX_DEPTH + 1), ErrorKind::TooDeep, 4 * MAX_DEPTH + 1);
    check(
        &format!("{}a > 1{}", "not (".repeat(17), ")".repeat(17)),
        ErrorKind::TooDeep,
        5 * 16 + 1,
    );
    // Sequential parentheses do not accumulate depth.
    let seq = vec!["(a > 1)"; 100].join(" or ");
    p(&seq).unwrap();
    // Length: 2,000 characters parse, 2,001 do not; much longer inputs
    // are refused quickly, without recursion.
    let long = |n: usize| format!("a > 1{}", " ".repeat(n - 5));
    p(&long(MAX_LEN)).unwrap();
    check(&long(MAX_LEN + 1), ErrorKind::TooLong, MAX_LEN + 1);
    check(&"(".repeat(1_000_000), ErrorKind::TooLong, MAX_LEN + 1);
    // A 2,000-character chain of `or` (deep tree, no nesting) is fine.
    let chain = vec!["a > 1"; 400].join(" or ");
    let chain = &chain[..chain.len().min(MAX_LEN)];
    let chain = chain.trim_end_matches(|c: char| c != '1');
    let r = p(chain).unwrap();
    assert_eq!(p(&r.to_string()).unwrap().to_string(), r.to_string());
}

#[test]
fn display_round_trip() {
    for src in [
        "agent_health == 'unhealthy' for 2 minutes",
        "cpu_utilization > 90% or memory_utilization > 95% for 3 minutes",
        "a > 1 or b > 1 and c > 1",
        "(a > 1 or b > 1) and not (c > 1 and a{x=~'y|z'} < 2 in 90s)",
        "a > 1 or (b > 1 or c > 1)",
        "a > 1 and (b > 1 and c > 1)",
        "not not a > -0.5",
    ] {
        let r = p(src).unwrap();
        let shown = r.to_string();
        let again = p(&shown).unwrap();
        assert_eq!(
            shape(&again.condition),
            shape(&r.condition),
            "{src} -> {shown}"
        );
        assert_eq!(again.to_string(), shown);
    }
    assert_eq!(
        p("cpu_utilization > 90% or memory_utilization > 95% for 3 minutes")
            .unwrap()
            .to_string(),
        "cpu_utilization > 0.9 or memory_utilization > 0.95 for 3m"
    );
}

/// The error table and the examples of docs/alert-expressions.md are
/// what the parser does.
#[test]
fn documented_errors_and_examples() {
    let doc = include_str!("../../../docs/alert-expressions.md");
    let cat = |n: &str| match n {
        "agent_health" => Some(MetricKind::State),
        "foo" => None,
        _ => Some(MetricKind::Numeric),
    };
    let code = |cell: &str| -> Option<String> {
        let cell = cell.trim();
        let inner = cell.strip_prefix('`')?;
        Some(inner[..inner.find('`')?].to_string())
    };
    let (mut errors, mut examples) = (0, 0);
    for line in doc.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
        if cells.len() == 4 {
            let (Some(src), Some(msg)) = (code(cells[2]), code(cells[3])) else {
                continue;
            };
            let e = parse(&src, &cat).unwrap_err();
            assert_eq!(format!("{:?}", e.kind), cells[0].trim(), "{src}");
            let shown = e.to_string();
            match msg.strip_suffix('…') {
                Some(prefix) => assert!(shown.starts_with(prefix), "{shown}\n{msg}"),
                None => assert_eq!(shown, msg),
            }
            errors += 1;
        } else if cells.len() == 2 {
            if let Some(src) = code(cells[0]) {
                parse(&src, &cat).unwrap_or_else(|e| panic!("{src}: {e}"));
                examples += 1;
            }
        }
    }
    assert!(errors >= 19 && examples >= 8, "{errors} {examples}");
    for seed in doc.split("```\n").nth(1).unwrap().lines() {
        parse(seed, &cat).unwrap_or_else(|e| panic!("{seed}: {e}"));
    }
}

//! The systemd unit is hardened: `systemd-analyze security` rates it OK.

use std::process::Command;

#[test]
fn systemd_unit_exposure_is_low() {
    let unit = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/agentry.service");
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager", unit])
        .output()
        .expect("systemd-analyze is needed (Debian package systemd; the test script installs it)");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no verdict in: {text}"));
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the score in {line}"));
    assert!(score <= 2.0, "exposure {score} is above 2.0: {line}");
}

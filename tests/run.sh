#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, the dependency policy
# (cargo-deny), unit and integration tests
# (including the headless-Chromium UI tests), then the OpenAPI fuzz run of
# tests/fuzz/schemathesis.sh and the package tests of packaging/test-deb.sh
# and packaging/test-boot.sh.
# Installs what the tests need
# when it is missing: chromium, chromium-driver, systemd (for
# systemd-analyze), prometheus (for promtool) and nginx from Debian packages, and the third-party OAuth/JWT
# clients of tests/requirements.txt and the OpenAPI fuzzer of
# tests/fuzz/requirements.txt from PyPI, and the OpenID Connect provider of
# tests/oidc from npm (node comes with the machine).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# nginx (with auth_request) in front of an MCP server, for forward auth.
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing+=(nginx)
if ((${#missing[@]})); then
    echo "installing test dependencies: ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Third-party OAuth/JWT clients and the MCP SDK for the interoperability
# tests (the SDK at its pinned version).
mcp_version="$(sed -n 's/^mcp==//p' tests/requirements.txt)"
fastmcp_version="$(sed -n 's/^fastmcp==//p' tests/requirements.txt)"
if ! python3 -c "import pyotp, jwt, authlib, requests, cryptography, httpx2
from importlib.metadata import version
assert version('mcp') == '$mcp_version'
assert version('fastmcp') == '$fastmcp_version'" 2>/dev/null; then
    echo "installing Python test dependencies (tests/requirements.txt)"
    python3 -m pip install --quiet -r tests/requirements.txt \
        || python3 -m pip install --quiet --break-system-packages -r tests/requirements.txt
fi

# A real OpenID Connect provider for the single sign-on tests: node's
# oidc-provider, at the version tests/oidc/package-lock.json pins.
if [ ! -d tests/oidc/node_modules/oidc-provider ]; then
    echo "installing the test OpenID Connect provider (tests/oidc, npm)"
    (cd tests/oidc && npm ci --no-audit --no-fund --silent)
fi

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings

# Dependency policy (deny.toml): licenses, banned and duplicate crates,
# sources (crates.io only) always; RustSec advisories when their database
# (on GitHub) can be reached, and a line saying they were not checked when
# it cannot: a network without GitHub is not a passing advisory check.
deny_version=0.20.2
if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $deny_version" ]; then
    echo "installing cargo-deny $deny_version (once)"
    cargo install --locked --quiet "cargo-deny@$deny_version"
fi
if timeout 20 git ls-remote https://github.com/rustsec/advisory-db HEAD >/dev/null 2>&1; then
    cargo deny --log-level error check
else
    cargo deny --log-level error check licenses bans sources
    echo "cargo deny: advisories NOT checked: the RustSec database (github.com/rustsec/advisory-db) is unreachable from here"
fi
cargo test --locked

# OpenAPI fuzz run: schemathesis against /api/v1/openapi.json with an admin
# API key: no 5xx, and every status, content type and body as documented.
# Bounded (25 examples per operation, fixed seed): under a minute.
fuzz_version="$(sed -n 's/^schemathesis==//p' tests/fuzz/requirements.txt)"
if [ "$(python3 -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" != "$fuzz_version" ]; then
    echo "installing the OpenAPI fuzzer (tests/fuzz/requirements.txt)"
    python3 -m pip install --quiet -r tests/fuzz/requirements.txt \
        || python3 -m pip install --quiet --break-system-packages -r tests/fuzz/requirements.txt
fi
FUZZ_MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-25}" tests/fuzz/schemathesis.sh

# The Debian package on a fresh Debian tree (debootstrap): install, the unit
# checked, the service started as its unit starts it, upgrade keeping config
# and data and migrating a first-release database, purge keeping data. It
# builds a chroot, so it needs root (as CI runs); elsewhere it says so.
# Then the same package on a booted Debian (qemu, systemd as PID 1):
# systemctl start/restart/stop, the journal, the watchdog, the running
# unit's systemd-analyze security rating.
if [ "$(id -u)" -eq 0 ]; then
    packaging/test-deb.sh
    packaging/test-boot.sh
else
    echo "packaging/test-deb.sh and packaging/test-boot.sh skipped: they need root (run them with sudo)"
fi

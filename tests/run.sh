#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit and integration tests
# (including the headless-Chromium UI tests). Installs what the tests need
# when it is missing: chromium, chromium-driver, systemd (for
# systemd-analyze) and prometheus (for promtool) from Debian packages, and the third-party OAuth/JWT
# clients of tests/requirements.txt from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if ((${#missing[@]})); then
    echo "installing test dependencies: ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Third-party OAuth/JWT clients for the interoperability test.
if ! python3 -c "import jwt, authlib, requests, cryptography" 2>/dev/null; then
    echo "installing Python test dependencies (tests/requirements.txt)"
    python3 -m pip install --quiet -r tests/requirements.txt \
        || python3 -m pip install --quiet --break-system-packages -r tests/requirements.txt
fi

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked

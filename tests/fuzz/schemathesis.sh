#!/usr/bin/env bash
# OpenAPI-driven fuzz run: schemathesis generates requests for every
# operation of GET /api/v1/openapi.json, first from data the document
# allows (the server must answer none with a 5xx, and every response must
# match the document: status code, content type, body schema), then from
# data that breaks it (each refused with a 4xx, none with a 5xx or a dropped
# connection).
#
# Starts target/debug/agentry (built when missing or stale) on a free
# loopback port with a temporary data directory, makes a broad credential
# (an agent holding `system_admin`, with an API key), runs schemathesis with
# a bounded example count and a fixed seed, and stops the server on exit.
# Exits non-zero on any failure.
#
#   tests/fuzz/schemathesis.sh                          # 25 examples per operation
#   FUZZ_MAX_EXAMPLES=200 tests/fuzz/schemathesis.sh    # a deeper run
#   FUZZ_SEED=7 tests/fuzz/schemathesis.sh              # another seed
#   FUZZ_KEEP=1 tests/fuzz/schemathesis.sh              # keep the server log
#   FUZZ_POSITIVE_ONLY=1 tests/fuzz/schemathesis.sh     # skip the second run
#
# Needs the pinned schemathesis of tests/fuzz/requirements.txt, curl and
# python3. Extra arguments are passed on to `schemathesis run`, e.g.
# `--max-failures 1`, or `--phases fuzzing` for a quicker look.
set -euo pipefail
cd "$(dirname "$0")/../.."

MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-25}"
SEED="${FUZZ_SEED:-20260101}"
# One worker: with more, Hypothesis (6.170) sometimes fails inside its own
# strategy descriptions ("AST constructor recursion depth mismatch"), which
# schemathesis reports as an error of the run.
WORKERS="${FUZZ_WORKERS:-1}"

# Run as a module: pip may put the `schemathesis` script where PATH does
# not look (~/.local/bin).
python3 -c "import schemathesis" 2>/dev/null || {
    echo "schemathesis is not installed: pip install -r tests/fuzz/requirements.txt" >&2
    exit 2
}

# Builds only what changed; a no-op when the binary is current.
cargo build --locked --quiet --bin agentry
BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/agentry"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/agentry-fuzz.XXXXXX")"
SERVER_PID=""
cleanup() {
    local rc=$?
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ] && [ -s "$WORK/server.log" ]; then
        echo "--- errors in the server log ($WORK/server.log, kept) ---" >&2
        grep -E '"level":"(ERROR|WARN)"' "$WORK/server.log" | tail -n 40 >&2 || true
    elif [ -z "${FUZZ_KEEP:-}" ]; then
        rm -rf "$WORK"
    else
        echo "server log and data kept in $WORK" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free loopback port (a small window between picking it and binding it).
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
ADMIN_PASSWORD="schemathesis fuzz admin password"

# The token endpoints' per-IP rate limit (600/min) would answer the fuzzer's
# bursts with 429s and cut those operations' coverage short: raised here,
# as is the limit on refused API credentials. The admin signs in with the
# password alone (the fuzzer works with an API key made from that session).
AGENTRY_LISTEN="127.0.0.1:$PORT" \
    AGENTRY_DATA_DIR="$WORK/data" \
    AGENTRY_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
    AGENTRY_SYSTEMD__NOTIFY=false \
    AGENTRY_TOKENS__RATE_LIMIT_PER_MINUTE=1000000 \
    AGENTRY_API__AUTH_FAILURES_PER_MINUTE=1000000 \
    AGENTRY_LOGIN__REQUIRE_SECOND_FACTOR='[]' \
    AGENTRY_CONFIG=/dev/null \
    AGENTRY_LOG__FORMAT=json \
    "$BIN" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null; then
        break
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || {
        echo "agentry exited during start-up" >&2
        exit 1
    }
    sleep 0.1
done
curl -fsS -o /dev/null "$BASE/readyz"

# --- A broad credential --------------------------------------------------
# Log in as the bootstrap admin (form + CSRF), then, with the session cookie
# and the page's CSRF token: create an agent, give it system_admin, and make
# it an API key. schemathesis sends that key as a bearer token.
JAR="$WORK/cookies"
form_token() { sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -n 1; }
meta_token() { sed -n 's/.*<meta name="csrf-token" content="\([^"]*\)".*/\1/p' | head -n 1; }
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }

login_csrf="$(curl -fsS -c "$JAR" -b "$JAR" "$BASE/login" | form_token)"
curl -fsS -o /dev/null -c "$JAR" -b "$JAR" \
    --data-urlencode "username=admin" \
    --data-urlencode "password=$ADMIN_PASSWORD" \
    --data-urlencode "csrf_token=$login_csrf" \
    "$BASE/login"
csrf="$(curl -fsS -c "$JAR" -b "$JAR" "$BASE/" | meta_token)"
[ -n "$csrf" ] || {
    echo "login failed: no CSRF token on the dashboard" >&2
    exit 1
}
api() { # METHOD PATH JSON
    curl -fsS -b "$JAR" -X "$1" -H "X-CSRF-Token: $csrf" \
        -H 'Content-Type: application/json' --data "$3" "$BASE$2"
}
agent_id="$(api POST /api/v1/agents \
    '{"name": "schemathesis", "agent_type": "validator", "description": "OpenAPI fuzzer"}' |
    json_field id)"
api POST /api/v1/role-assignments \
    "{\"subject\": {\"type\": \"agent\", \"id\": \"$agent_id\"}, \"role\": \"system_admin\"}" >/dev/null
KEY="$(api POST "/api/v1/agents/$agent_id/keys" '{"name": "schemathesis"}' | json_field key)"
case "$KEY" in
agk_*) ;;
*)
    echo "could not create an API key" >&2
    exit 1
    ;;
esac
curl -fsS -o /dev/null -H "Authorization: Bearer $KEY" "$BASE/api/v1/me"

# --- The run -------------------------------------------------------------
# Exclusions: only operations that would sabotage the run itself. The fuzzer
# reuses ids it has seen in responses (GET /api/v1/agents lists the
# credential's own agent), so each of these could cut off its credential
# and turn the rest of the run into 401/403s. The integration tests
# (tests/it/agents.rs, tests/it/rbac.rs) cover them instead.
#   DELETE /api/v1/agents/{id}               deletes the agent, and its keys
#   PATCH  /api/v1/agents/{id}               `enabled: false` disables it
#   POST   /api/v1/agents/{id}/quarantine    disables it and revokes its keys
#   DELETE /api/v1/agents/{id}/keys/{key_id} revokes the key itself
#   DELETE /api/v1/role-assignments/{id}     takes system_admin away from it
# (The master key cannot be rotated over HTTP; signing-key and data-key
# rotation do not touch API keys, so they are fuzzed.)
# schemathesis 4 runs Hypothesis without a deadline, so no flag is needed
# for slow debug-build responses.
cd "$WORK"
fuzz() {
    python3 -m schemathesis.cli run "$BASE/api/v1/openapi.json" \
        --url "$BASE" \
        --header "Authorization: Bearer $KEY" \
        --max-examples "$MAX_EXAMPLES" \
        --seed "$SEED" \
        --workers "$WORKERS" \
        --generation-database none \
        --request-timeout 30 \
        --no-color \
        --exclude-name 'DELETE /api/v1/agents/{id}' \
        --exclude-name 'PATCH /api/v1/agents/{id}' \
        --exclude-name 'POST /api/v1/agents/{id}/quarantine' \
        --exclude-name 'DELETE /api/v1/agents/{id}/keys/{key_id}' \
        --exclude-name 'DELETE /api/v1/role-assignments/{id}' \
        "$@"
}
CONFORMANCE=response_schema_conformance,status_code_conformance,content_type_conformance
set +e
# 1. Data that matches the document: no 5xx, and every response as
#    documented (status, content type, body schema).
echo "== schemathesis: data the document allows"
fuzz --checks "not_a_server_error,$CONFORMANCE" "$@"
rc=$?
# 2. Data that breaks the document (wrong types, out-of-range numbers,
#    strings against their pattern or length, missing fields): every such
#    request refused with a 4xx (the document is no looser than the API),
#    no 5xx or dropped connection, and the refusals as documented. The
#    OAuth endpoints are left out: their form fields are all optional free
#    strings, so there is no schema-breaking form to generate
#    (tests/it/oauth.rs covers their hostile input).
if [ -z "${FUZZ_POSITIVE_ONLY:-}" ]; then
    echo "== schemathesis: data the document does not allow"
    fuzz --mode negative --checks "not_a_server_error,negative_data_rejection,$CONFORMANCE" \
        --suppress-health-check filter_too_much \
        --exclude-path-regex '^/oauth/' \
        "$@"
    neg=$?
    [ "$rc" -ne 0 ] || rc=$neg
fi
set -e

# The run must not have cut off its own credential (it would have tested
# little but 401s): a failure here means an exclusion is missing.
if ! curl -fsS -o /dev/null -H "Authorization: Bearer $KEY" "$BASE/api/v1/me"; then
    echo "the fuzzer's credential stopped working during the run" >&2
    rc=1
fi
kill -0 "$SERVER_PID" 2>/dev/null || {
    echo "agentry died during the run" >&2
    rc=1
}
exit "$rc"

#!/usr/bin/env bash
# HTTP load on loopback against the release binary, reported as a ratio to
# the binary's own /healthz in the same run. Bounded: each endpoint gets
# DURATION seconds (default 5) with CONNECTIONS connections (default 64).
# All load comes from one address, so the per-address limits of the token
# endpoint and of what needs no credential (/healthz) are lifted.
#
#   benches/http_load.sh            # needs wrk (Debian package wrk)
#   BIN=/path/to/agentry benches/http_load.sh   # another build (A/B), no cargo build
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-64}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=./target/release/agentry
fi
[ -x "$BIN" ] || { echo "BIN=$BIN is not an executable" >&2; exit 2; }
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
password="load test password $$"
# The admin signs in with the password alone (login.require_second_factor
# is for deployments; the benchmark scripts its sign-in).
AGENTRY_LISTEN="127.0.0.1:$port" AGENTRY_DATA_DIR="$work/data" AGENTRY_ADMIN_PASSWORD="$password" AGENTRY_LOGIN__REQUIRE_SECOND_FACTOR='[]' \
  AGENTRY_LOG__LEVEL=warn AGENTRY_SYSTEMD__NOTIFY=false AGENTRY_TOKENS__RATE_LIMIT_PER_MINUTE=1000000 \
  AGENTRY_API__ANONYMOUS_REQUESTS_PER_MINUTE=0 \
  "$BIN" >/dev/null 2>"$work/log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.05; done

# Sign in once (every request below reuses the session cookie); an agent
# with an API key, encryption and metrics rights, and an access token.
jar="$work/cookies"
. benches/setup-agent.sh
setup_agent load-agent crypto_client
cat > "$work/check.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"permission":"metrics:report","resource":{"type":"workflow","id":"billing-42"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $access"
LUA
cat > "$work/token.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $basic"
LUA

# A 1 KiB JSON value to encrypt, and a package of it to decrypt.
value=$(python3 -c 'import json; print(json.dumps({"data": {"note": "x" * 1000}, "classification": "internal"}))')
package=$(curl -s -H "Authorization: Bearer $access" -H 'Content-Type: application/json' -d "$value" "$base/api/v1/crypto/encrypt")
cat > "$work/encrypt.lua" <<LUA
wrk.method = "POST"
wrk.body = '$value'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $access"
LUA
cat > "$work/decrypt.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"package": $package}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $access"
LUA

# 500 samples (500 series) per metrics report, each report at its own
# timestamp, so every sample is a new row (nothing collapses into an upsert).
start_s=$(( $(date +%s) - 240 ))
cat > "$work/metrics.lua" <<LUA
local threads, n = 0, 0
function setup(thread) thread:set("id", threads); threads = threads + 1 end
function init() n = 0 end
request = function()
  n = n + 1
  local ms = (n * 2 + id)
  local ts = os.date("!%Y-%m-%dT%H:%M:%S", $start_s + math.floor(ms / 1000)) .. string.format(".%03dZ", ms % 1000)
  local parts = {}
  for i = 0, 499 do
    parts[#parts + 1] = '{"name":"queue_depth","value":' .. i .. ',"labels":{"worker":"' .. i .. '"},"timestamp":"' .. ts .. '"}'
  end
  local body = '{"metrics":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["Authorization"] = "Bearer $access"}, body)
end
LUA

# Authorization codes and refresh tokens are single use: each request of
# these runs takes its own from a pool made beforehand (OAUTH_POOL per
# kind), thread by thread, for OAUTH_DURATION seconds; only answers that
# issued a token count, so a pool spent before the end makes the figure a
# lower bound (said in the output).
OAUTH_POOL=${OAUTH_POOL:-20000}
OAUTH_DURATION=${OAUTH_DURATION:-1}
for kind in codes refresh; do
  cat > "$work/$kind.lua" <<LUA
local lines, threads = {}, 0
for l in io.lines("$work/$kind") do lines[#lines + 1] = l end
function setup(thread) thread:set("id", threads); threads = threads + 1 end
function init() n = id + 1 end
request = function()
  local body = lines[n] or "grant_type=refresh_token&refresh_token=spent"
  n = n + 2
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
LUA
done

run() { # name path [wrk options...]
  local out name=$1 path=$2
  shift 2
  out=$(wrk -t2 -c"$CONNECTIONS" -d"${run_duration:-$DURATION}s" --latency "$@" "$base$path")
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  if [ -n "${only_ok:-}" ]; then
    # Requests that got a 2xx, per second of the run (spent pool entries
    # are refused and do not count).
    rps=$(awk '/requests in/ {total=$1; gsub("s,", "", $4); secs=$4} /Non-2xx/ {bad=$5}
      END { printf "%.2f", (total - bad) / secs }' <<<"$out")
    grep -q Non-2xx <<<"$out" && name="$name (pool spent: at least)"
  fi
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  printf '%-34s %12s req/s   p50 %-9s p99 %-9s' "$name" "$rps" "$p50" "$p99"
  if [ -n "${base_rps:-}" ]; then
    awk -v a="$rps" -v b="$base_rps" 'BEGIN { printf "   %.2f x /healthz\n", a / b }'
  else
    echo
  fi
  last_rps=$rps
}
echo "agentry $("$BIN" --version | cut -d' ' -f2), $CONNECTIONS connections, ${DURATION}s each, $(nproc) cores"
run "GET /healthz" /healthz; base_rps=$last_rps
run "GET /api/v1/me (session)" /api/v1/me -H "Cookie: $session"
run "GET /api/v1/audit/head (audited)" /api/v1/audit/head -H "Cookie: $session"
run "GET /api/v1/me (API key)" /api/v1/me -H "Authorization: Bearer $key"
run "GET /api/v1/me (JWT)" /api/v1/me -H "Authorization: Bearer $access"
run "POST /oauth/token" /oauth/token -s "$work/token.lua"
only_ok=1 run_duration=$OAUTH_DURATION
python3 benches/oauth_pool.py "$base" "$session" "$OAUTH_POOL" refresh "$work/refresh"
run "POST /oauth/token (refresh, rotated)" /oauth/token -s "$work/refresh.lua"
python3 benches/oauth_pool.py "$base" "$session" "$OAUTH_POOL" codes "$work/codes"
run "POST /oauth/token (code + PKCE)" /oauth/token -s "$work/codes.lua"
only_ok= run_duration=
run "POST /api/v1/authz/check (JWT, audited)" /api/v1/authz/check -s "$work/check.lua"
run "POST /api/v1/crypto/encrypt (JWT, 1 KiB)" /api/v1/crypto/encrypt -s "$work/encrypt.lua"
run "POST /api/v1/crypto/decrypt (JWT, 1 KiB)" /api/v1/crypto/decrypt -s "$work/decrypt.lua"
run "POST /api/v1/metrics (JWT, 500 samples)" /api/v1/metrics -s "$work/metrics.lua"
echo "   = $(awk -v r="$last_rps" 'BEGIN { printf "%d", r * 500 }') samples/s"

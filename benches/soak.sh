#!/usr/bin/env bash
# Mixed-workload load and soak on loopback against the release binary.
#
#   benches/soak.sh                          # 10 minutes (needs wrk)
#   DURATION=60 INTERVAL=10 benches/soak.sh  # a quick run
#
# wrk (THREADS threads, default 2; CONNECTIONS connections, default 64)
# sends, in a weighted round robin, the requests of a busy appliance:
#   token      POST /oauth/token, client credentials (Basic, the agent's key)
#   check      POST /api/v1/authz/check (JWT; every decision audited)
#   encrypt    POST /api/v1/crypto/encrypt, 1 KiB value (JWT; audited)
#   metrics    POST /api/v1/metrics, 10 samples at a timestamp of their own
#              (every sample a new row)
#   dashboard  GET / (session cookie)
#   audit      GET /audit (session cookie; the read is audited)
# WEIGHTS gives their shares in that order (default "1 1 1 1 1 1": plain
# round robin). Each request is first tried once with curl; the script stops
# if one is not 2xx/3xx.
#
# The load runs DURATION seconds (default 600) as consecutive wrk runs of
# INTERVAL seconds (default 30); after each it prints a row: elapsed_s,
# that interval's req/s, p50 and p99 (ms), responses not 2xx/3xx plus socket
# errors/timeouts, the server's VmRSS and RssAnon (/proc/PID/status) and
# the data directory's size, the largest size of the write-ahead log seen in
# the interval (sampled every second), all in MiB, and the server's thread
# count.
# Row 0 is the server before the load (signed in and set up). At the end: throughput, p50/p99 over the whole
# load (merged from the runs' latency distributions at 0.1 % resolution),
# the count of responses not 2xx/3xx by status, RSS at the start, max, end.
#
# It fails (exit 1) when
#   - more than MAX_ERRORS (default 0) responses were not 2xx/3xx, or wrk
#     saw socket errors or timeouts (10 s);
#   - RSS kept growing. The rule: the mean VmRSS of the samples in the last
#     third of the load (elapsed >= 2/3 DURATION) exceeds the mean of those
#     in the middle third by more than 10 % AND by more than 16 MiB. Growth
#     while warming up (first third) is not judged and a plateau passes;
#     growth that continues to the end fails. RSS follows the number of
#     threads in tokio's blocking pool, which under this load still grows
#     for a minute or two: a one-minute run is all warm-up and may fail
#     here; the verdict is meant for the 10-minute run;
#   - /readyz is not 200 after the load, the server does not exit 0 on
#     SIGTERM, or `agentry audit verify` on the data directory then fails.
#
# Bounded: loopback only, fixed duration (at most a day). SKIP_BUILD=1 uses
# target/release/agentry as it is instead of running cargo build first.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-600}
INTERVAL=${INTERVAL:-30}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
MAX_ERRORS=${MAX_ERRORS:-0}
WEIGHTS=${WEIGHTS:-1 1 1 1 1 1}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
for v in DURATION INTERVAL CONNECTIONS THREADS MAX_ERRORS; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a whole number" >&2; exit 2; }
done
[ "$INTERVAL" -ge 1 ] && [ "$DURATION" -ge "$INTERVAL" ] && [ "$DURATION" -le 86400 ] \
  || { echo "need 1 <= INTERVAL <= DURATION <= 86400 (seconds)" >&2; exit 2; }
[[ $WEIGHTS =~ ^[0-9]+( [0-9]+){5}$ && $WEIGHTS =~ [1-9] ]] \
  || { echo "WEIGHTS: six whole numbers, not all 0 (token check encrypt metrics dashboard audit)" >&2; exit 2; }
if [ "${SKIP_BUILD:-0}" != 1 ]; then cargo build --release --quiet; fi
bin=./target/release/agentry
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
password="soak test password $$"
export AGENTRY_DATA_DIR="$work/data" AGENTRY_LOG__LEVEL=warn AGENTRY_SYSTEMD__NOTIFY=false
# The admin signs in with the password alone (login.require_second_factor
# is for deployments; the benchmark scripts its sign-in).
AGENTRY_LISTEN="127.0.0.1:$port" AGENTRY_ADMIN_PASSWORD="$password" AGENTRY_LOGIN__REQUIRE_SECOND_FACTOR='[]' \
  AGENTRY_TOKENS__RATE_LIMIT_PER_MINUTE=1000000 AGENTRY_LOGIN__RATE_LIMIT_PER_MINUTE=100000 \
  AGENTRY_TOKENS__LIFETIME_SECONDS=86400 \
  "$bin" >/dev/null 2>"$work/log" &
pid=$!
wal_sampler=""
cleanup() {
  [ -n "$wal_sampler" ] && kill "$wal_sampler" 2>/dev/null
  kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.05; done
curl -sf -o /dev/null "$base/readyz" || { echo "the server did not become ready:" >&2; cat "$work/log" >&2; exit 1; }

# Sign in once (the UI requests reuse the session cookie); an agent with
# an API key, encryption and metrics rights, and an access token.
jar="$work/cookies"
. benches/setup-agent.sh
setup_agent soak-agent soak_client

check_body='{"permission":"metrics:report","resource":{"type":"workflow","id":"billing-42"}}'
value=$(python3 -c 'import json; print(json.dumps({"data": {"note": "x" * 1000}, "classification": "internal"}))')
# Metric timestamps: each wrk run owns span_ms milliseconds (room for
# 20,000 reports/s), starting 25 days back (inside the 30-day retention), so
# a day of load still ends days in the past; one millisecond per report.
span_ms=$(( INTERVAL * 20000 ))
start_ms=$(( ($(date +%s) - 25 * 86400) * 1000 ))
metrics_body() { # timestamp
  python3 -c 'import json,sys; print(json.dumps({"metrics": [{"name": "soak_queue_depth", "value": i, "labels": {"worker": str(i)}, "timestamp": sys.argv[1]} for i in range(10)]}, separators=(",", ":")))' "$1"
}

# Each request shape once, before the load: all must be 2xx/3xx.
probe() { # name curl-args...
  local name=$1 code
  shift
  code=$(curl -s -o "$work/probe" -w '%{http_code}' "$@")
  if [[ $code != [23]?? ]]; then
    echo "probe failed: $name -> HTTP $code" >&2
    head -c 1000 "$work/probe" >&2; echo >&2
    exit 1
  fi
  printf '  %-28s %s\n' "$name" "$code"
}
echo "probing each request once:"
probe "POST /oauth/token" -H "Authorization: Basic $basic" -d grant_type=client_credentials "$base/oauth/token"
probe "POST /api/v1/authz/check" -H "Authorization: Bearer $access" -H 'Content-Type: application/json' \
  -d "$check_body" "$base/api/v1/authz/check"
probe "POST /api/v1/crypto/encrypt" -H "Authorization: Bearer $access" -H 'Content-Type: application/json' \
  -d "$value" "$base/api/v1/crypto/encrypt"
probe "POST /api/v1/metrics" -H "Authorization: Bearer $access" -H 'Content-Type: application/json' \
  -d "$(metrics_body "$(date -u -d "@$(( start_ms / 1000 - 1 ))" +%Y-%m-%dT%H:%M:%S.000Z)")" "$base/api/v1/metrics"
probe "GET /" -H "Cookie: $session" "$base/"
probe "GET /audit" -H "Cookie: $session" "$base/audit"

# The Lua script: requests in a weighted round robin (WEIGHTS), metric
# timestamps unique across threads and across the per-interval wrk runs
# (argument 1 is the run's number), every response that is not 2xx/3xx
# counted, and the run's latency distribution written as 1,000 quantiles so
# that the whole soak's p50/p99 can be merged from the per-interval runs.
cat > "$work/mixed.lua" <<LUA
local threads, nthreads = {}, 0
function setup(thread)
  thread:set("id", nthreads)
  nthreads = nthreads + 1
  table.insert(threads, thread)
end

local names = {"token", "authz_check", "encrypt", "metrics", "ui_dashboard", "ui_audit"}
local weights = {$(tr -s ' ' ',' <<<"$WEIGHTS")}
local fixed, schedule = {}, {}

function init(args)
  run = tonumber(args[1])
  n, reports, bad = 0, 0, 0
  sent, codes, sample = {}, {}, ""
  for i = 1, #names do sent[i] = 0 end
  -- Interleaved: weights 3 1 give 1 2 1 1, not 1 1 1 2.
  local most = math.max(unpack(weights))
  for round = 1, most do
    for k = 1, #names do if weights[k] >= round then schedule[#schedule + 1] = k end end
  end
  local json, bearer = "application/json", "Bearer $access"
  fixed[1] = wrk.format("POST", "/oauth/token",
    {["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = "Basic $basic"},
    "grant_type=client_credentials")
  fixed[2] = wrk.format("POST", "/api/v1/authz/check",
    {["Content-Type"] = json, ["Authorization"] = bearer}, '$check_body')
  fixed[3] = wrk.format("POST", "/api/v1/crypto/encrypt",
    {["Content-Type"] = json, ["Authorization"] = bearer}, '$value')
  fixed[5] = wrk.format("GET", "/", {["Cookie"] = "$session"})
  fixed[6] = wrk.format("GET", "/audit", {["Cookie"] = "$session"})
end

local function metrics()
  -- Each run owns $span_ms ms of timestamps; its reports take one ms
  -- each, interleaved across threads.
  local slot = reports * $THREADS + id
  if slot >= $span_ms then error("more metric reports than timestamps: raise span_ms") end
  local ms = $start_ms + run * $span_ms + slot
  reports = reports + 1
  local ts = os.date("!%Y-%m-%dT%H:%M:%S", math.floor(ms / 1000)) .. string.format(".%03dZ", ms % 1000)
  local parts = {}
  for i = 0, 9 do
    parts[#parts + 1] = '{"name":"soak_queue_depth","value":' .. i .. ',"labels":{"worker":"' .. i .. '"},"timestamp":"' .. ts .. '"}'
  end
  return wrk.format("POST", "/api/v1/metrics",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer $access"},
    '{"metrics":[' .. table.concat(parts, ",") .. ']}')
end

request = function()
  local k = schedule[(n + id) % #schedule + 1]
  n = n + 1
  sent[k] = sent[k] + 1
  if k == 4 then return metrics() end
  return fixed[k]
end

response = function(status, headers, body)
  if status < 200 or status >= 400 then
    bad = bad + 1
    local c = tostring(status)
    codes[c] = (codes[c] or 0) + 1
    if #sample < 600 then sample = sample .. "HTTP " .. c .. ": " .. string.sub(body or "", 1, 200) .. "\n" end
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("SOAK requests %d\n", summary.requests))
  io.write(string.format("SOAK seconds %.3f\n", summary.duration / 1e6))
  io.write(string.format("SOAK p50_ms %.2f\n", latency:percentile(50) / 1000))
  io.write(string.format("SOAK p99_ms %.2f\n", latency:percentile(99) / 1000))
  io.write(string.format("SOAK max_ms %.2f\n", latency.max / 1000))
  io.write(string.format("SOAK socket_errors %d\n", e.connect + e.read + e.write + e.timeout))
  local bad_all = 0
  for _, t in ipairs(threads) do
    bad_all = bad_all + t:get("bad")
    local s = t:get("sent")
    for i = 1, #names do io.write(string.format("SOAK sent_%s %d\n", names[i], s[i] or 0)) end
    for c, v in pairs(t:get("codes")) do io.write(string.format("SOAK status_%s %d\n", c, v)) end
    local b = t:get("sample")
    if b ~= "" then io.write("BODY " .. string.gsub(b, "\n(.)", "\nBODY %1")) end
  end
  io.write(string.format("SOAK non_2xx_3xx %d\n", bad_all))
  for q = 1, 1000 do io.write(string.format("QUANTILE %.3f\n", latency:percentile(q / 10) / 1000)) end
end
LUA

# The write-ahead log's size, every second (a 30 s row would miss its peaks);
# each row shows the largest seen since the row before.
( while sleep 1; do stat -c %s "$work/data/agentry.db-wal" 2>/dev/null || echo 0; done ) >"$work/wal" &
wal_sampler=$!
wal_seen=0
wal_max_mib() { # largest sample in lines ($1, $2] of the log, in MiB
  awk -v from="$1" -v to="$2" 'NR > from && NR <= to && $1 > m {m = $1} END {printf "%.1f", m / 1048576}' "$work/wal"
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }
anon_kib() { awk '/^RssAnon:/ {print $2}' "/proc/$pid/status"; }
row() { # elapsed wrk-output|-
  local rss anon db wal threads rps=- p50=- p99=- errs=-
  [ -r "/proc/$pid/status" ] || { echo "the server has exited:" >&2; tail -20 "$work/log" >&2; exit 1; }
  rss=$(rss_kib); anon=$(anon_kib); threads=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status")
  db=$(du -sk "$work/data" | cut -f1)
  local seen; seen=$(wc -l <"$work/wal")
  wal=$(wal_max_mib "$wal_seen" "$seen"); wal_seen=$seen
  if [ "$2" != - ]; then
    get1() { awk -v k="$1" '$1=="SOAK" && $2==k {s += $3} END {print s + 0}' "$2"; }
    rps=$(awk -v r="$(get1 requests "$2")" -v s="$(get1 seconds "$2")" 'BEGIN { printf "%.0f", r / s }')
    p50=$(awk '$1=="SOAK" && $2=="p50_ms" {print $3}' "$2")
    p99=$(awk '$1=="SOAK" && $2=="p99_ms" {print $3}' "$2")
    errs=$(( $(get1 non_2xx_3xx "$2") + $(get1 socket_errors "$2") ))
  fi
  awk -v t="$1" -v rps="$rps" -v p50="$p50" -v p99="$p99" -v e="$errs" -v r="$rss" -v a="$anon" -v d="$db" -v w="$wal" -v th="$threads" \
    'BEGIN { printf "%9s %8s %8s %9s %6s %8.1f %8.1f %8.1f %8s %7s\n", t, rps, p50, p99, e, r / 1024, a / 1024, d / 1024, w, th }'
  echo "$1 $rss" >>"$work/rss"
}

echo "agentry $("$bin" --version | cut -d' ' -f2), $CONNECTIONS connections, $THREADS wrk threads, weights $WEIGHTS" \
  "(token check encrypt metrics dashboard audit), ${DURATION}s in runs of ${INTERVAL}s, $(nproc) cores"
printf '%9s %8s %8s %9s %6s %8s %8s %8s %8s %7s\n' elapsed_s req_s p50_ms p99_ms errors rss_mib anon_mib db_mib wal_max threads
t0=$(date +%s.%N)
row 0 -
done_s=0 run=0
while [ "$done_s" -lt "$DURATION" ]; do
  len=$(( DURATION - done_s < INTERVAL ? DURATION - done_s : INTERVAL ))
  out="$work/wrk.$run"
  if ! wrk -t"$THREADS" -c"$CONNECTIONS" -d"${len}s" --timeout 10s -s "$work/mixed.lua" "$base" -- "$run" >"$out" 2>&1; then
    echo "wrk failed:" >&2; cat "$out" >&2; exit 1
  fi
  grep -q '^SOAK requests' "$out" || { echo "wrk printed no summary:" >&2; cat "$out" >&2; exit 1; }
  done_s=$(( done_s + len )); run=$(( run + 1 ))
  row "$done_s" "$out"
done
wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')

cat "$work"/wrk.* >"$work/all"
sum() { awk -v k="$1" '$1=="SOAK" && $2==k {s += $3} END {print s + 0}' "$work/all"; }
requests=$(sum requests); seconds=$(sum seconds); bad=$(sum non_2xx_3xx); sockerr=$(sum socket_errors)
# Whole-run percentiles: each run's 1,000 quantiles stand for a thousandth of
# its requests each.
pct() { # percentile
  awk '$1=="SOAK" && $2=="requests" { w = $3 / 1000 } $1=="QUANTILE" { print $2, w }' "$work/all" | sort -g |
    awk -v want="$1" '{ v[NR] = $1; w[NR] = $2; total += $2 }
      END { for (i = 1; i <= NR && !found; i++) { acc += w[i]; if (acc >= total * want / 100) { printf "%.2f", v[i]; found = 1 } } }'
}
echo
echo "throughput   $(awk -v r="$requests" -v s="$seconds" 'BEGIN { printf "%.0f", r / s }') req/s ($requests requests in ${seconds%.*} s of load, ${wall} s wall)"
echo "latency      p50 $(pct 50) ms, p99 $(pct 99) ms, max $(awk '$1=="SOAK" && $2=="max_ms" && $3 > m {m = $3} END {print m}' "$work/all") ms"
echo "mix          $(awk '$1=="SOAK" && $2 ~ /^sent_/ {k = substr($2, 6); s[k] += $3; if (!(k in o)) o[k] = ++n; name[o[k]] = k}
                       END {for (i = 1; i <= n; i++) printf "%s %d  ", name[i], s[name[i]]}' "$work/all")"
echo "non-2xx/3xx  $bad $(awk '$1=="SOAK" && $2 ~ /^status_/ {s[substr($2, 8)] += $3} END {for (c in s) printf "(HTTP %s: %d) ", c, s[c]}' "$work/all")"
echo "socket errors/timeouts $sockerr"
echo "WAL          largest $(wal_max_mib 0 "$(wc -l <"$work/wal")") MiB (sampled every second)"
{ grep '^BODY ' "$work/all" || true; } | head -10 | cut -c6-

# The RSS rule (see the header): thirds by elapsed time.
verdict=$(awk -v d="$DURATION" '
  { t[NR] = $1; r[NR] = $2 / 1024 }
  END {
    start = r[1]; max = r[1]
    for (i = 1; i <= NR; i++) {
      if (r[i] > max) max = r[i]
      if (t[i] >= d / 3 && t[i] < 2 * d / 3) { ms += r[i]; mn++ }
      if (t[i] >= 2 * d / 3) { ls += r[i]; ln++ }
    }
    if (mn == 0 || ln == 0) { print "UNJUDGED too few samples in the middle or last third: lower INTERVAL"; exit }
    mid = ms / mn; last = ls / ln
    grow = (last > mid * 1.10 && last - mid > 16) ? "FAIL" : "ok"
    printf "%s start %.1f MiB, max %.1f MiB, end %.1f MiB; mean of the middle third %.1f MiB (%d samples), of the last third %.1f MiB (%d samples): %+.1f MiB, %+.1f %%\n",
      grow, start, max, r[NR], mid, mn, last, ln, last - mid, (last / mid - 1) * 100
  }' "$work/rss")
echo "RSS          ${verdict#* }"
failed=0
case "${verdict%% *}" in
  ok) ;;
  UNJUDGED) echo "FAIL: RSS cannot be judged: ${verdict#* }" >&2; failed=1 ;;
  *) echo "FAIL: RSS kept growing (last third > middle third by > 10 % and > 16 MiB)" >&2; failed=1 ;;
esac
if [ "$(( bad + sockerr ))" -gt "$MAX_ERRORS" ]; then
  echo "FAIL: $bad responses not 2xx/3xx and $sockerr socket errors/timeouts under load (MAX_ERRORS=$MAX_ERRORS)" >&2; failed=1
fi

ready=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$base/readyz" || true)
echo "/readyz      $ready"
[ "$ready" = 200 ] || { echo "FAIL: /readyz is $ready after the load" >&2; failed=1; }

kill -TERM "$pid"
stop_rc=0; wait "$pid" || stop_rc=$?
echo "SIGTERM      server exited with $stop_rc"
[ "$stop_rc" -eq 0 ] || { echo "FAIL: the server did not stop cleanly:" >&2; tail -20 "$work/log" >&2; failed=1; }
echo "data dir     $(du -sh "$work/data" | cut -f1) after shutdown"
if verify=$("$bin" audit verify 2>&1); then
  echo "audit verify ok: $(tr -d '\n ' <<<"$verify" | head -c 300)"
else
  echo "FAIL: agentry audit verify: $verify" >&2; failed=1
fi
[ "$failed" -eq 0 ] && echo "PASS" || exit 1

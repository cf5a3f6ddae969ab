#!/usr/bin/env bash
# The MCP gateway's cost, on loopback against the release binary: tool
# calls through agentry's /mcp/{name} against the same calls sent to the
# upstream directly, in the same run. Two upstreams: nginx answering every
# POST with a fixed tools/call result (the gateway's own cost, nothing
# else), and the stock MCP Python SDK server (JSON, stateless: what a user
# runs). For each: throughput at CONNECTIONS concurrent sessions (default
# 64) over DURATION seconds (default 5), and the median latency of one
# client calling in a loop. Then the memory per open event stream (GET
# /mcp/{name} held open), from agentry's resident size as STREAMS more
# streams (default 200) open. Bounded in count and time.
#
#   benches/gateway_load.sh       # needs wrk and nginx (Debian packages)
#   BIN=/path/to/agentry benches/gateway_load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-64}
STREAMS=${STREAMS:-200}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "nginx is needed: apt-get install nginx" >&2; exit 2; }
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=./target/release/agentry
fi
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port); fast_port=$(free_port); sdk_port=$(free_port); stream_port=$(free_port)
base="http://127.0.0.1:$port"
password="gateway load password $$"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT

# The admin signs in with the password alone (login.require_second_factor
# is for deployments; the benchmark scripts its sign-in).
AGENTRY_LISTEN="127.0.0.1:$port" AGENTRY_DATA_DIR="$work/data" AGENTRY_ADMIN_PASSWORD="$password" AGENTRY_LOGIN__REQUIRE_SECOND_FACTOR='[]' \
  AGENTRY_LOG__LEVEL=warn AGENTRY_SYSTEMD__NOTIFY=false AGENTRY_TOKENS__RATE_LIMIT_PER_MINUTE=1000000 \
  AGENTRY_API__ANONYMOUS_REQUESTS_PER_MINUTE=0 \
  "$BIN" >/dev/null 2>"$work/log" &
agentry_pid=$!
pids+=("$agentry_pid")

result='{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"3 documents match"}],"isError":false}}'
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<NGINX
daemon off; master_process off; worker_processes 1;
pid $work/nginx/pid; error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx; uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$fast_port;
    location /mcp { default_type application/json; return 200 '$result'; }
  }
}
NGINX
"$NGINX" -c "$work/nginx/nginx.conf" -p "$work/nginx" &
pids+=("$!")
python3 tests/mcp/upstream.py "$sdk_port" json-stateless >/dev/null 2>&1 &
pids+=("$!")
python3 tests/mcp/upstream.py "$stream_port" >/dev/null 2>&1 &
pids+=("$!")
for p in "$port" "$fast_port" "$sdk_port" "$stream_port"; do
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break
    sleep 0.05
  done
done

jar="$work/cookies"
. benches/setup-agent.sh
setup_agent gateway-agent gateway_bench
api() { curl -sf -o /dev/null -b "$jar" -H "X-CSRF-Token: $csrf" -H 'Content-Type: application/json' -d "$2" "$base$1"; }
api /api/v1/roles '{"name":"mcp_caller","permissions":["mcp:call","mcp:read","mcp:prompt"]}'
api /api/v1/role-assignments "{\"subject\":{\"type\":\"agent\",\"id\":\"$agent\"},\"role\":\"mcp_caller\"}"
api /api/v1/mcp-servers "{\"name\":\"fast\",\"upstream_url\":\"http://127.0.0.1:$fast_port/mcp\"}"
api /api/v1/mcp-servers "{\"name\":\"sdk\",\"upstream_url\":\"http://127.0.0.1:$sdk_port/mcp\"}"
api /api/v1/mcp-servers "{\"name\":\"streams\",\"upstream_url\":\"http://127.0.0.1:$stream_port/mcp\"}"
# An approval rule the benchmark's calls do not match: every tools/call
# pays the rule lookup, as it does wherever approvals are in use.
api /api/v1/approval-rules '{"name":"bench-deletes","server":"*","tools":"delete_*","approver_role":"auditor"}'

call='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{"query":"pumps"}}}'
lua() { # $1 file, $2 credential ("" for none)
  cat > "$1" <<LUA
wrk.method = "POST"
wrk.body = '$call'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-06-18"
LUA
  [ -z "$2" ] || echo "wrk.headers[\"Authorization\"] = \"Bearer $2\"" >> "$1"
}
lua "$work/direct.lua" ""
lua "$work/gateway.lua" "$key"
# A call must succeed both ways before it is timed.
for url in "http://127.0.0.1:$fast_port/mcp" "$base/mcp/fast" "http://127.0.0.1:$sdk_port/mcp" "$base/mcp/sdk"; do
  out=$(curl -s -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2025-06-18' -d "$call" "$url")
  case "$out" in *'"result"'*) ;; *) echo "no result from $url: $out" >&2; exit 1;; esac
done

# Memory per open event stream first (before the load grows the heap):
# 2 x STREAMS sessions, each with its GET stream held open through the
# gateway; the second STREAMS are measured.
python3 benches/gateway_streams.py "$base/mcp/streams" "$key" "$STREAMS" "$agentry_pid"

rps() { wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s "$1" "$2" | awk '/Requests\/sec/ {print $2}'; }
p50() { wrk -t1 -c1 -d"${DURATION}s" --latency -s "$1" "$2" | awk '$1 == "50%" {print $2}'; }
ms() { python3 -c "import sys; v=sys.argv[1]; print(float(v[:-2])/1000 if v.endswith('us') else float(v[:-2]) if v.endswith('ms') else float(v[:-1])*1000)" "$1"; }

printf '%-10s %14s %14s %7s %12s %12s %10s\n' upstream "direct req/s" "gateway req/s" ratio "direct p50" "gateway p50" "added"
for name in fast sdk; do
  case $name in fast) up="http://127.0.0.1:$fast_port/mcp";; sdk) up="http://127.0.0.1:$sdk_port/mcp";; esac
  d=$(rps "$work/direct.lua" "$up"); g=$(rps "$work/gateway.lua" "$base/mcp/$name")
  dl=$(ms "$(p50 "$work/direct.lua" "$up")"); gl=$(ms "$(p50 "$work/gateway.lua" "$base/mcp/$name")")
  python3 - "$name" "$d" "$g" "$dl" "$gl" <<'PY'
import sys
name, d, g, dl, gl = sys.argv[1], *map(float, sys.argv[2:])
print(f"{name:<10} {d:>14,.0f} {g:>14,.0f} {g/d:>6.2f}x {dl:>10.3f}ms {gl:>10.3f}ms {gl-dl:>8.3f}ms")
PY
done

# Sourced by benches/http_load.sh and benches/soak.sh once the server
# answers at $base: signs in as admin with $password (cookie jar $jar) and
# creates an agent NAME with an API key, a role ROLE holding the
# encryption and metrics permissions assigned to it, and an access token.
# Sets: session (Cookie header value), csrf, agent, key, basic (the
# agent's Basic credentials, base64) and access (the JWT). Exits when a
# step fails.
#
#   setup_agent NAME ROLE
setup_agent() {
  local name=$1 role=$2 token
  token=$(curl -s -c "$jar" "$base/login" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p')
  curl -s -o /dev/null -b "$jar" -c "$jar" --data-urlencode "username=admin" --data-urlencode "password=$password" \
    --data-urlencode "csrf_token=$token" "$base/login"
  session=$(awk '$6 ~ /agentry_session/ {print $6"="$7}' "$jar")
  [ -n "$session" ] || { echo "sign-in failed" >&2; exit 1; }
  csrf=$(curl -s -b "$jar" "$base/" | sed -n 's/.*<meta name="csrf-token" content="\([^"]*\)".*/\1/p')
  agent=$(curl -s -b "$jar" -H "X-CSRF-Token: $csrf" -H 'Content-Type: application/json' \
    -d "{\"name\":\"$name\",\"agent_type\":\"planner\"}" "$base/api/v1/agents" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
  key=$(curl -s -b "$jar" -H "X-CSRF-Token: $csrf" -H 'Content-Type: application/json' -d '{}' \
    "$base/api/v1/agents/$agent/keys" | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
  curl -sf -o /dev/null -b "$jar" -H "X-CSRF-Token: $csrf" -H 'Content-Type: application/json' \
    -d "{\"name\":\"$role\",\"permissions\":[\"crypto:encrypt\",\"crypto:decrypt\",\"metrics:report\"]}" "$base/api/v1/roles"
  curl -sf -o /dev/null -b "$jar" -H "X-CSRF-Token: $csrf" -H 'Content-Type: application/json' \
    -d "{\"subject\":{\"type\":\"agent\",\"id\":\"$agent\"},\"role\":\"$role\"}" "$base/api/v1/role-assignments"
  basic=$(printf '%s:%s' "$agent" "$key" | base64 -w0)
  access=$(curl -s -u "$agent:$key" -d grant_type=client_credentials "$base/oauth/token" \
    | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
  [ -n "$agent" ] && [ -n "$key" ] && [ -n "$access" ] || { echo "agent, key or token setup failed" >&2; exit 1; }
}

#!/usr/bin/env bash
# The Debian package on a fresh Debian: a minimal bookworm tree
# (debootstrap) stands in for a new host. The package is installed there
# with dpkg, so its maintainer scripts, sysusers and tmpfiles entries run as
# on a real host; the unit is checked with systemd-analyze; the service is
# started the way the unit starts it (as the agentry user, with the unit's
# environment and the packaged config) and answers; an upgrade to a newer
# package keeps the configuration and the data and migrates a database from
# the first release; a purge keeps the data.
#
# What it does not do: boot systemd (a container here cannot), so
# `systemctl start` itself is not run; the unit's sandboxing is covered by
# `systemd-analyze security` in tests/it/packaging.rs.
#
# Needs root, debootstrap and cargo-deb (installed when missing). The
# debootstrap tree is cached in target/pkgtest-host.tar.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "packaging/test-deb.sh needs root (it builds a chroot)" >&2; exit 2; }
command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
command -v cargo-deb >/dev/null || cargo install --locked --quiet cargo-deb@3.8.0

work=$(mktemp -d)
root="$work/host"
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    umount -l "$root/proc" 2>/dev/null || true
    umount -l "$root/dev" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }
step() { echo "test-deb: $*"; }

# The package is made from the debug build the test suite already has
# (stripped by cargo-deb): the same files, scripts and unit as the release
# package, without a second optimised build in CI.
step "building the packages"
cargo build --quiet --locked --bin agentry
for v in old:0.1.0-test1 new:0.1.0-test2; do
    cargo deb --quiet --profile dev --no-build --fast --deb-version "${v#*:}" -o "$work/agentry_${v%%:*}.deb" 2>/dev/null
done

cache=target/pkgtest-host.tar
if [ ! -f "$cache" ]; then
    step "creating a fresh Debian tree (debootstrap, once)"
    debootstrap --variant=minbase --include=systemd,adduser bookworm "$work/boot" >/dev/null
    tar -C "$work/boot" -cf "$cache" .
    rm -rf "$work/boot"
fi
mkdir -p "$root"
tar -C "$root" -xf "$cache"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
in_host() { chroot "$root" "$@"; }

step "installing"
cp "$work"/agentry_*.deb "$root/tmp/"
in_host dpkg -i /tmp/agentry_old.deb >/dev/null || fail "dpkg -i"
in_host test -x /usr/bin/agentry || fail "no /usr/bin/agentry"
in_host getent passwd agentry >/dev/null || fail "no agentry user"
[ "$(in_host stat -c '%U:%G %a' /etc/agentry/agentry.toml)" = "root:agentry 640" ] || fail "config is $(in_host stat -c '%U:%G %a' /etc/agentry/agentry.toml)"
[ "$(in_host stat -c '%U:%G %a' /var/lib/agentry)" = "agentry:agentry 700" ] || fail "state dir is $(in_host stat -c '%U:%G %a' /var/lib/agentry)"
for f in /usr/lib/systemd/system/agentry.service /usr/lib/sysusers.d/agentry.conf /usr/lib/tmpfiles.d/agentry.conf; do
    in_host test -f "$f" || fail "$f missing"
done
in_host systemctl is-enabled agentry >/dev/null 2>&1 && fail "the unit is enabled by the package"
in_host systemd-analyze verify /usr/lib/systemd/system/agentry.service || fail "systemd-analyze verify"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
# The unit's own environment lines, plus the port and the first password.
unit_env=$(sed -n 's/^Environment=//p' "$root/usr/lib/systemd/system/agentry.service")
start() {
    # shellcheck disable=SC2086
    chroot --userspec=agentry:agentry "$root" env -i PATH=/usr/bin:/bin $unit_env \
        AGENTRY_LISTEN="127.0.0.1:$port" AGENTRY_SYSTEMD__NOTIFY=false "$@" \
        /usr/bin/agentry --config /etc/agentry/agentry.toml serve >"$work/service.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf "$base/readyz" >/dev/null && return 0; sleep 0.1; done
    cat "$work/service.log" >&2
    fail "the service did not become ready"
}
stop() { kill -TERM "$pid"; wait "$pid" || fail "the service did not stop cleanly"; pid=""; }
# Signs the admin in as a person would with the packaged configuration,
# which requires a second factor of system_admin: the first sign-in on a
# database enrols an authenticator app (its codes computed by pyotp) and
# keeps the recovery codes; later ones give a recovery code.
codes="$work/recovery-codes"
field() { sed -n "s/.*$1\([^\"<]*\).*/\1/p" | head -1; }
signin() {
    jar="$work/cookies"; rm -f "$jar"
    token=$(curl -s -c "$jar" "$base/login" | field 'name="csrf_token" value="')
    to=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' -b "$jar" -c "$jar" --data-urlencode "username=admin" \
        --data-urlencode "password=$1" --data-urlencode "csrf_token=$token" "$base/login")
    case "$to" in
    "303 $base/account/second-factor")
        [ "$(curl -s -o /dev/null -w '%{http_code}' -b "$jar" "$base/")" = 303 ] || fail "the dashboard answered before enrolment"
        token=$(curl -s -b "$jar" "$base/account/second-factor" | field 'name="csrf_token" value="')
        page=$(curl -s -b "$jar" -c "$jar" --data-urlencode label=phone --data-urlencode "csrf_token=$token" "$base/account/second-factor/totp")
        secret=$(echo "$page" | field 'id="totp-secret" class="secret grouped">' | tr -d ' ')
        action=$(echo "$page" | sed -n 's/.*action="\(\/account\/second-factor\/totp\/[^"]*\)".*/\1/p' | head -1)
        [ -n "$secret" ] && [ -n "$action" ] || fail "no enrolment page after the password"
        code=$(python3 -c 'import pyotp, sys; print(pyotp.TOTP(sys.argv[1]).now())' "$secret")
        curl -s -b "$jar" -c "$jar" --data-urlencode "code=$code" --data-urlencode "csrf_token=$token" "$base$action" \
            | sed -n 's/.*<li><code>\([^<]*\)<\/code>.*/\1/p' > "$codes"
        [ "$(wc -l < "$codes")" = 10 ] || fail "enrolment gave $(wc -l < "$codes") recovery codes"
        ;;
    "303 $base/login/second-factor")
        token=$(curl -s -b "$jar" "$base/login/second-factor" | field 'name="csrf_token" value="')
        code=$(head -1 "$codes"); sed -i 1d "$codes"
        to=$(curl -s -o /dev/null -w '%{http_code}' -b "$jar" -c "$jar" --data-urlencode "code=$code" \
            --data-urlencode "csrf_token=$token" "$base/login/second-factor")
        [ "$to" = 303 ] || fail "the recovery code answered $to"
        ;;
    *) fail "sign-in answered $to" ;;
    esac
    csrf=$(curl -s -b "$jar" "$base/" | sed -n 's/.*<meta name="csrf-token" content="\([^"]*\)".*/\1/p')
    [ -n "$csrf" ] || fail "no dashboard after signing in"
}

step "starting the service as the unit does"
password="package test password"
start AGENTRY_ADMIN_PASSWORD="$password"
signin "$password"
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$jar" -H "X-CSRF-Token: $csrf" -H 'Content-Type: application/json' \
    -d '{"username":"kept-across-upgrade","password":"a long enough password"}' "$base/api/v1/users")
[ "$code" = 201 ] || fail "creating a user answered $code"
stop
[ "$(in_host stat -c '%U %a' /var/lib/agentry/master.key)" = "agentry 600" ] || fail "master key mode"

step "upgrading (configuration edited, data kept)"
echo "# edited by the operator" >> "$root/etc/agentry/agentry.toml"
in_host dpkg -i --force-confold /tmp/agentry_new.deb >/dev/null || fail "upgrade"
grep -q "edited by the operator" "$root/etc/agentry/agentry.toml" || fail "the upgrade replaced the edited config"
[ "$(in_host dpkg-query -W -f '${Version}' agentry)" = "0.1.0-test2" ] || fail "version after upgrade"
start
signin "$password"
curl -s -b "$jar" "$base/api/v1/users?limit=100" | grep -q kept-across-upgrade || fail "data lost in the upgrade"
stop

step "upgrading onto a database from the first release (migrated at start)"
install -m 0600 tests/fixtures/v1/agentry.db "$root/var/lib/agentry/agentry.db"
install -m 0600 tests/fixtures/v1/master.key "$root/var/lib/agentry/master.key"
rm -f "$root/var/lib/agentry/agentry.db-wal" "$root/var/lib/agentry/agentry.db-shm"
in_host chown agentry:agentry /var/lib/agentry/agentry.db /var/lib/agentry/master.key
start
signin "first release admin password"
curl -s -b "$jar" "$base/api/v1/users?limit=100" | grep -q '"alice"' || fail "fixture users missing after migration"
stop

step "removing and purging (data kept)"
in_host dpkg --purge agentry >/dev/null || fail "purge"
in_host test -x /usr/bin/agentry && fail "binary left after purge"
in_host test -f /var/lib/agentry/agentry.db || fail "purge deleted the database"
step "ok"

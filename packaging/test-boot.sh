#!/usr/bin/env bash
# The Debian package on a booted Debian host: a fresh bookworm system
# (debootstrap, with a kernel) is booted under qemu with systemd as PID 1,
# and a one-shot unit inside it does what an operator does:
#
#   dpkg -i agentry.deb             (maintainer scripts with systemd running)
#   systemctl start agentry         (Type=notify: returns once READY=1 is sent)
#   journalctl -u agentry           (the first administrator's password)
#
# then checks that the unit was installed but not enabled, that the service
# is active as the `agentry` user with its state directory 0700, answers
# /healthz and /readyz, signs the administrator in, rates at most 2.0 in
# `systemd-analyze security` on the running unit, is still active with no
# restart after outliving its 30 s watchdog (so WATCHDOG=1 keeps arriving),
# keeps its data across `systemctl restart`, and stops cleanly
# (`systemctl stop`: result success, exit status 0). The guest prints
# "BOOT-TEST: PASS" on its serial console and powers off; this script fails
# unless that line appears within BOOT_TIMEOUT seconds (default 600).
#
# Runs under software emulation (TCG) unless QEMU_ACCEL=kvm: KVM inside
# a virtual machine often cannot run a guest (nested virtualisation; seen
# here: qemu aborts setting an MSR, or the guest hangs at boot). Needs root, debootstrap, qemu-system-x86 and cargo-deb
# (installed when missing). The booted tree is cached in
# target/pkgtest-boot.tar; the package is built from the debug build, as in
# packaging/test-deb.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "packaging/test-boot.sh needs root (it builds a file system)" >&2; exit 2; }
BOOT_TIMEOUT=${BOOT_TIMEOUT:-600}
[[ $BOOT_TIMEOUT =~ ^[0-9]+$ ]] || { echo "BOOT_TIMEOUT must be a whole number of seconds" >&2; exit 2; }
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
if [ ${#need[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v cargo-deb >/dev/null || cargo install --locked --quiet cargo-deb@3.8.0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "test-boot: FAIL: $*" >&2; exit 1; }
step() { echo "test-boot: $*"; }

step "building the package"
cargo build --quiet --locked --bin agentry
cargo deb --quiet --profile dev --no-build --fast -o "$work/agentry.deb" >/dev/null 2>&1

cache=target/pkgtest-boot.tar
if [ ! -f "$cache" ]; then
    step "creating a bootable Debian tree (debootstrap with a kernel, once)"
    debootstrap --variant=minbase \
        --include=systemd,systemd-sysv,udev,adduser,curl,linux-image-amd64 \
        bookworm "$work/boot" >"$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap"; }
    tar -C "$work/boot" -cf "$cache" .
    rm -rf "$work/boot"
fi
root="$work/root"
mkdir -p "$root"
tar -C "$root" -xf "$cache"
kernel="$work/vmlinuz" initrd="$work/initrd.img"
cp "$(ls "$root"/boot/vmlinuz-* | head -1)" "$kernel" || fail "no kernel in the tree"
cp "$(ls "$root"/boot/initrd.img-* | head -1)" "$initrd" || fail "no initramfs in the tree"

step "preparing the guest"
echo agentry-boot-test > "$root/etc/hostname"
cp "$work/agentry.deb" "$root/root/agentry.deb"
install -m 0755 /dev/stdin "$root/root/boot-test.sh" <<'GUEST'
#!/bin/bash
# Runs inside the booted guest; reports on the console, then powers off.
set -u
say() { echo "BOOT-TEST: $*"; }
finish() { systemctl --no-block poweroff; exit "$1"; }
fail() {
    say "FAIL: $*"
    journalctl -u agentry --no-pager -n 40 -o short-monotonic
    finish 1
}
base=http://127.0.0.1:8080
signin() {
    local jar=/root/cookies token code
    rm -f "$jar"
    token=$(curl -s -c "$jar" "$base/login" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p')
    # The packaged configuration requires a second factor of system_admin:
    # the password leads to enrolment, and nothing else answers until then.
    code=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' -b "$jar" -c "$jar" --data-urlencode username=admin \
        --data-urlencode "password=$1" --data-urlencode "csrf_token=$token" "$base/login")
    [ "$code" = "303 $base/account/second-factor" ] || fail "sign-in answered $code, not enrolment"
    curl -s -b "$jar" "$base/account/second-factor" | grep -q 'id="enrol-required"' || fail "the enrolment page after sign-in"
    [ "$(curl -s -o /dev/null -w '%{http_code}' -b "$jar" "$base/")" = 303 ] || fail "the dashboard answered before enrolment"
}
say "systemd $(systemctl --version | head -1 | cut -d' ' -f2) is PID 1: $(cat /proc/1/comm)"
dpkg -i /root/agentry.deb >/root/dpkg.log 2>&1 || { cat /root/dpkg.log; fail "dpkg -i"; }
[ "$(systemctl is-enabled agentry)" = disabled ] || fail "the package enabled the unit"
started=$(date +%s%N)
systemctl start agentry || fail "systemctl start agentry"
say "systemctl start returned after $(( ($(date +%s%N) - started) / 1000000 )) ms"
[ "$(systemctl is-active agentry)" = active ] || fail "not active after start"
pid=$(systemctl show -p MainPID --value agentry)
[ "$(stat -c %U "/proc/$pid")" = agentry ] || fail "the service runs as $(stat -c %U "/proc/$pid")"
[ "$(stat -c '%U %a' /var/lib/agentry)" = "agentry 700" ] || fail "state directory is $(stat -c '%U %a' /var/lib/agentry)"
[ "$(stat -c '%U %a' /var/lib/agentry/master.key)" = "agentry 600" ] || fail "master key mode"
curl -sf "$base/healthz" >/dev/null || fail "/healthz"
curl -sf "$base/readyz" >/dev/null || fail "/readyz"
# journald takes in the service's output asynchronously: on a slow guest
# the banner may reach the journal a moment after /readyz answers. Its
# password line is looked for anywhere after the banner's first line.
password=""
for _ in $(seq 40); do
    password=$(journalctl -u agentry -o cat | sed -n '/first administrator/,$ s/^ *password: *//p' | head -1)
    [ -n "$password" ] && break
    sleep 0.25
done
[ -n "$password" ] || fail "no first administrator password in the journal (waited 10 s)"
signin "$password"
say "signed in with the password from the journal and asked to enrol a second factor"
exposure=$(systemd-analyze security --no-pager agentry | sed -n 's/.*Overall exposure level for agentry.service: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] || fail "no exposure level from systemd-analyze security"
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || fail "exposure $exposure is above 2.0"
say "systemd-analyze security on the running unit: $exposure"
[ "$(systemctl show -p WatchdogUSec --value agentry)" = 30s ] || fail "watchdog is not 30s"
sleep 40
[ "$(systemctl is-active agentry)" = active ] || fail "not active after 40 s (watchdog?)"
[ "$(systemctl show -p NRestarts --value agentry)" = 0 ] || fail "restarted within 40 s (watchdog?)"
[ "$(systemctl show -p MainPID --value agentry)" = "$pid" ] || fail "a new process within 40 s"
say "alive after 40 s with a 30 s watchdog, no restart"
systemctl restart agentry || fail "systemctl restart"
curl -sf "$base/readyz" >/dev/null || fail "/readyz after restart"
signin "$password"
systemctl stop agentry || fail "systemctl stop"
[ "$(systemctl show -p Result --value agentry)" = success ] || fail "stop result $(systemctl show -p Result --value agentry)"
[ "$(systemctl show -p ExecMainStatus --value agentry)" = 0 ] || fail "exit status $(systemctl show -p ExecMainStatus --value agentry)"
say "restarted (data kept), stopped cleanly (exit 0)"
say PASS
finish 0
GUEST
cat > "$root/etc/systemd/system/agentry-boot-test.service" <<'UNIT'
[Unit]
Description=agentry package boot test
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/root/boot-test.sh
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/agentry-boot-test.service \
    "$root/etc/systemd/system/multi-user.target.wants/agentry-boot-test.service"
# No login prompt on the console the test reports on.
ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"

img="$work/root.img"
mkfs.ext4 -q -F -L agentry-root -d "$root" "$img" 3G >/dev/null
rm -rf "$root"

accel=${QEMU_ACCEL:-tcg}
cpu=max
[ "$accel" = kvm ] && cpu=host
step "booting the guest (qemu, $accel)"
log="$work/console.log"
started=$(date +%s)
set +e
timeout "$BOOT_TIMEOUT" qemu-system-x86_64 -machine q35,accel="$accel" -cpu "$cpu" -smp 2 -m 1024 \
    -nographic -no-reboot -nic none \
    -kernel "$kernel" -initrd "$initrd" \
    -append "root=/dev/vda rw console=ttyS0 panic=-1 systemd.show_status=0" \
    -drive file="$img",format=raw,if=virtio >"$log" 2>&1
rc=$?
set -e
{ grep -a 'BOOT-TEST' "$log" || true; } | sed 's/^/test-boot: guest: /'
if ! grep -aq 'BOOT-TEST: PASS' "$log"; then
    [ "$rc" = 124 ] && echo "test-boot: the guest did not finish within $BOOT_TIMEOUT s" >&2
    tail -60 "$log" >&2
    fail "the boot test did not pass"
fi
step "ok in $(( $(date +%s) - started )) s"

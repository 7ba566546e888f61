#!/bin/sh
# Builds a tiny initramfs (cpio newc, gzip) holding a static busybox and an
# /init that prints "PLUGVIRT LINUX USERSPACE", a few facts, and powers off.
#
# Usage: tests/linux/make-initramfs.sh OUTPUT.cpio.gz
# Environment:
#   BUSYBOX               a statically linked busybox to use
#   PLUGVIRT_LINUX_CACHE  where a downloaded busybox-static is kept
#                         (default ${XDG_CACHE_HOME:-$HOME/.cache}/plugvirt/linux)
# Without BUSYBOX it uses /bin/busybox if that is static, else it fetches
# Debian's busybox-static with `apt-get download` (no installation).
set -eu

usage() {
    echo "usage: $0 OUTPUT.cpio.gz" >&2
    exit 2
}
[ $# -eq 1 ] || usage
output=$1

cache=${PLUGVIRT_LINUX_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/plugvirt/linux}

is_static() {
    if command -v readelf >/dev/null 2>&1; then
        if readelf -l "$1" 2>/dev/null | grep -q 'program interpreter'; then
            return 1
        fi
        return 0
    elif command -v file >/dev/null 2>&1; then
        file -L "$1" | grep -q 'statically linked'
    else
        return 0 # cannot tell; try it
    fi
}

find_busybox() {
    if [ -n "${BUSYBOX:-}" ]; then
        if [ ! -x "$BUSYBOX" ]; then
            echo "make-initramfs: BUSYBOX=$BUSYBOX is not an executable file" >&2
            return 1
        fi
        if ! is_static "$BUSYBOX"; then
            echo "make-initramfs: BUSYBOX=$BUSYBOX is not statically linked" >&2
            return 1
        fi
        echo "$BUSYBOX"
        return 0
    fi
    for candidate in /bin/busybox /usr/bin/busybox "$cache/busybox-static/bin/busybox"; do
        if [ -x "$candidate" ] && is_static "$candidate"; then
            echo "$candidate"
            return 0
        fi
    done
    if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
        cat >&2 <<'EOF'
make-initramfs: a statically linked busybox is needed. Install Debian's
busybox-static (apt-get install busybox-static) or set BUSYBOX=/path/to/busybox.
EOF
        return 1
    fi
    echo "make-initramfs: fetching busybox-static into $cache" >&2
    download=$(mktemp -d)
    chmod 755 "$download" # apt-get download drops to the _apt user
    if ! (cd "$download" && apt-get download busybox-static >&2); then
        rm -rf "$download"
        echo "make-initramfs: apt-get download busybox-static failed;" \
            "install busybox-static or set BUSYBOX" >&2
        return 1
    fi
    mkdir -p "$cache"
    rm -rf "$cache/busybox-static"
    dpkg-deb -x "$download"/busybox-static_*.deb "$cache/busybox-static"
    rm -rf "$download"
    echo "$cache/busybox-static/bin/busybox"
}

busybox=$(find_busybox)

staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
mkdir -p "$staging/bin" "$staging/dev" "$staging/proc" "$staging/sys" "$staging/tmp"
cp "$busybox" "$staging/bin/busybox"
chmod 755 "$staging/bin/busybox"
ln -s busybox "$staging/bin/sh"

# The kernel opens /dev/console before running /init; building that node
# needs root, so /init mounts devtmpfs and reopens the console itself.
cat >"$staging/init" <<'EOF'
#!/bin/sh
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "PLUGVIRT LINUX USERSPACE"
echo "PLUGVIRT kernel $(uname -r) cpus=$(grep -c '^processor' /proc/cpuinfo)" \
    "$(grep MemTotal /proc/meminfo | tr -s ' ')"
echo "PLUGVIRT cmdline $(cat /proc/cmdline)"
echo "PLUGVIRT uptime $(cut -d' ' -f1 /proc/uptime) s"
sync
poweroff -f
# poweroff needs ACPI; if it returns, stop with a triple fault (reboot=t).
sleep 2
reboot -f
EOF
chmod 755 "$staging/init"

if command -v cpio >/dev/null 2>&1; then
    archiver="cpio --quiet -o -H newc -R 0:0"
else
    archiver="$busybox cpio -o -H newc"
fi
tmp_output="$output.tmp.$$"
# shellcheck disable=SC2086 # $archiver is a command with its options
(cd "$staging" && find . | LC_ALL=C sort | $archiver) | gzip -9 >"$tmp_output"
mv "$tmp_output" "$output"
echo "make-initramfs: wrote $output ($(wc -c <"$output") bytes, busybox from $busybox)" >&2

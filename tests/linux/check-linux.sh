#!/bin/bash
# Opt-in slow check (make check-linux; not part of CI): boots a real Debian
# cloud kernel with a busybox initramfs in plugvirt-vmm and reports how far it
# got: decompressor, "Linux version", init, userspace.
#
# Usage: tests/linux/check-linux.sh VMM_PATH
# Environment:
#   PLUGVIRT_LINUX_TIMEOUT  seconds before giving up (default 300)
#   PLUGVIRT_LINUX_MEMORY   guest MiB (default 512)
#   PLUGVIRT_LINUX_KERNEL   kernel to boot (default: newest
#                           /boot/vmlinuz-*-cloud-amd64, else downloaded)
#   PLUGVIRT_LINUX_INITRD   initramfs to use (default: built by make-initramfs.sh)
#   PLUGVIRT_LINUX_APPEND   extra kernel command-line words
#   PLUGVIRT_LINUX_CACHE    where downloads are kept
#                           (default ${XDG_CACHE_HOME:-$HOME/.cache}/plugvirt/linux)
#   BUSYBOX                 static busybox for the initramfs
# Exit status: 0 userspace reached, 1 it was not, 2 usage, 77 prerequisites
# missing (the automake "skipped" code).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
timeout=${PLUGVIRT_LINUX_TIMEOUT:-300}
memory=${PLUGVIRT_LINUX_MEMORY:-512}
cache=${PLUGVIRT_LINUX_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/plugvirt/linux}
# noxsave: on kvm-pvm, CPUID at guest CPL0 ORs the host's XSAVE/AVX bits into whatever
# KVM_SET_CPUID2 says, so Linux would use xsave/xrstor, which PVM cannot emulate at CPL0.
cmdline="console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1 reboot=t noxsave"
if [ -n "${PLUGVIRT_LINUX_APPEND:-}" ]; then
    cmdline="$cmdline $PLUGVIRT_LINUX_APPEND"
fi

if [ $# -ne 1 ]; then
    echo "usage: $0 VMM_PATH" >&2
    exit 2
fi
vmm=$1
if [ ! -x "$vmm" ]; then
    echo "check-linux: $vmm is not an executable; build plugvirt-vmm first" >&2
    exit 2
fi
case $timeout in
'' | *[!0-9]*)
    echo "check-linux: PLUGVIRT_LINUX_TIMEOUT must be a number of seconds" >&2
    exit 2
    ;;
esac

workdir=$(mktemp -d)
vmm_pid=
# shellcheck disable=SC2317 # called through the EXIT trap
cleanup() {
    if [ -n "$vmm_pid" ] && kill -0 "$vmm_pid" 2>/dev/null; then
        kill "$vmm_pid" 2>/dev/null || true
        wait "$vmm_pid" 2>/dev/null || true
    fi
    rm -rf "$workdir"
}
trap cleanup EXIT

skip() {
    echo "check-linux: SKIP: $*" >&2
    exit 77
}

how_to_get_kernel() {
    cat >&2 <<'EOF'
check-linux: needs a Debian cloud kernel (/boot/vmlinuz-*-cloud-amd64). Either
  apt-get install linux-image-cloud-amd64
or, without installing it:
  apt-get download "$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')"
  dpkg-deb -x linux-image-*.deb DIR && PLUGVIRT_LINUX_KERNEL=DIR/boot/vmlinuz-... tests/linux/check-linux.sh VMM
EOF
}

# Newest cached or installed cloud kernel; downloads one into the cache if apt works.
find_kernel() {
    if [ -n "${PLUGVIRT_LINUX_KERNEL:-}" ]; then
        [ -r "$PLUGVIRT_LINUX_KERNEL" ] || skip "PLUGVIRT_LINUX_KERNEL=$PLUGVIRT_LINUX_KERNEL is not readable"
        echo "$PLUGVIRT_LINUX_KERNEL"
        return
    fi
    local found
    found=$(find /boot "$cache/kernel/boot" -maxdepth 1 -name 'vmlinuz-*-cloud-amd64' \
        2>/dev/null | sort -V | tail -n 1)
    if [ -n "$found" ] && [ -r "$found" ]; then
        echo "$found"
        return
    fi
    if ! command -v apt-get >/dev/null 2>&1 || ! command -v apt-cache >/dev/null 2>&1 ||
        ! command -v dpkg-deb >/dev/null 2>&1; then
        how_to_get_kernel
        skip "no cloud kernel and no apt-get/dpkg-deb to fetch one"
    fi
    local package
    package=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    if [ -z "$package" ]; then
        how_to_get_kernel
        skip "apt-cache does not know linux-image-cloud-amd64 (run apt-get update?)"
    fi
    echo "check-linux: fetching $package into $cache" >&2
    local download
    download=$(mktemp -d)
    chmod 755 "$download" # apt-get download drops to the _apt user
    if ! (cd "$download" && apt-get download "$package" >&2); then
        rm -rf "$download"
        how_to_get_kernel
        skip "apt-get download $package failed"
    fi
    mkdir -p "$cache"
    rm -rf "$cache/kernel"
    dpkg-deb -x "$download"/linux-image-*.deb "$cache/kernel"
    rm -rf "$download"
    found=$(find "$cache/kernel/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)
    [ -n "$found" ] || skip "$package holds no /boot/vmlinuz-*"
    echo "$found"
}

kernel=$(find_kernel)
if [ -n "${PLUGVIRT_LINUX_INITRD:-}" ]; then
    initrd=$PLUGVIRT_LINUX_INITRD
else
    initrd=$workdir/initramfs.cpio.gz
    PLUGVIRT_LINUX_CACHE=$cache "$here/make-initramfs.sh" "$initrd" ||
        skip "could not build the initramfs (needs a static busybox)"
fi

console=$workdir/console.log
vmm_errors=$workdir/vmm-stderr.log
echo "check-linux: kernel $kernel"
echo "check-linux: initrd $initrd"
echo "check-linux: $vmm -m $memory, timeout ${timeout}s, -append \"$cmdline\""

start=$(date +%s)
"$vmm" -machine pc -m "$memory" -smp 1 -nodefaults -no-user-config -display none \
    -serial stdio -kernel "$kernel" -initrd "$initrd" -append "$cmdline" \
    </dev/null >"$console" 2>"$vmm_errors" &
vmm_pid=$!

# Milestones, in boot order; the last one seen is how far the guest got.
# The decompressor only speaks with CONFIG_X86_VERBOSE_BOOTUP, which Debian's
# cloud kernel does not set: there the first line is "Linux version".
milestone_names=(
    "decompressor"
    "kernel proper (Linux version)"
    "init started"
    "userspace (PLUGVIRT LINUX USERSPACE)"
)
milestone_patterns=(
    'Decompressing Linux|early console in extract_kernel|Booting the kernel'
    'Linux version'
    'Run /init as init process|Freeing unused kernel'
    'PLUGVIRT LINUX USERSPACE'
)
failure_pattern='Kernel panic|BUG: |Oops: |general protection fault|Unable to mount root'

reached=-1
vmm_status=
outcome="timed out after ${timeout}s"
while :; do
    for ((i = ${#milestone_patterns[@]} - 1; i > reached; i--)); do
        if grep -aEq "${milestone_patterns[$i]}" "$console"; then
            reached=$i
            echo "check-linux: reached: ${milestone_names[$i]} after $(($(date +%s) - start)) s"
            break
        fi
    done
    if grep -aEq "$failure_pattern" "$console"; then
        outcome="the kernel failed: $(grep -aEm1 "$failure_pattern" "$console" | tr -d '\r')"
        break
    fi
    if grep -aq 'KVM internal error' "$vmm_errors"; then
        # The vCPU stopped on an instruction KVM could not run (on kvm-pvm: an instruction
        # its CPL0 emulator lacks, e.g. int3 in the kernel's alternatives self-test).
        outcome="KVM could not run the guest: $(grep -am1 'KVM internal error' "$vmm_errors")"
        break
    fi
    if ! kill -0 "$vmm_pid" 2>/dev/null; then
        vmm_status=0
        wait "$vmm_pid" || vmm_status=$?
        vmm_pid=
        outcome="plugvirt-vmm exited with status $vmm_status"
        # Catch a milestone printed just before the exit.
        if grep -aq 'PLUGVIRT LINUX USERSPACE' "$console"; then
            reached=$((${#milestone_patterns[@]} - 1))
        fi
        break
    fi
    if [ $reached -eq $((${#milestone_patterns[@]} - 1)) ] &&
        grep -aq 'PLUGVIRT uptime' "$console"; then
        # Userspace said everything; give poweroff a moment, then stop it ourselves.
        for _ in 1 2 3 4 5; do
            kill -0 "$vmm_pid" 2>/dev/null || break
            sleep 1
        done
        outcome="userspace reached; the guest did not power off within 5 s (stopped it)"
        if ! kill -0 "$vmm_pid" 2>/dev/null; then
            outcome="userspace reached and the guest powered off"
        fi
        break
    fi
    if [ $(($(date +%s) - start)) -ge "$timeout" ]; then
        break
    fi
    sleep 1
done
elapsed=$(($(date +%s) - start))
if [ -n "$vmm_pid" ] && kill -0 "$vmm_pid" 2>/dev/null; then
    kill "$vmm_pid" 2>/dev/null || true
    wait "$vmm_pid" 2>/dev/null || true
fi
vmm_pid=

echo
echo "=== last console lines ==="
tail -n 40 "$console" | tr -d '\r'
if [ -s "$vmm_errors" ]; then
    echo "=== plugvirt-vmm stderr (last lines) ==="
    tail -n 20 "$vmm_errors"
fi
echo "=========================="
if [ $reached -ge 0 ]; then
    echo "check-linux: furthest milestone: ${milestone_names[$reached]}"
else
    echo "check-linux: furthest milestone: none (no recognisable console output)"
fi
echo "check-linux: $outcome; ${elapsed}s; $(wc -l <"$console") console lines"
grep -a '^PLUGVIRT ' "$console" | tr -d '\r' || true
if [ $reached -eq $((${#milestone_patterns[@]} - 1)) ]; then
    echo "check-linux: PASS"
    exit 0
fi
echo "check-linux: FAIL"
exit 1

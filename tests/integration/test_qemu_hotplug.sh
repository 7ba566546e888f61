#!/bin/sh
# The probe guest's hotplug ABI is QEMU's: stock qemu-system-x86_64 -machine pc boots the
# guest and runs blockdev-add -> device_add -> guest ADD -> device_del -> guest EJECT ->
# DEVICE_DELETED (plus cold plug, 20 cycles, unplug=ignore/delay, evil descriptors).
# TCG keeps it fast: QEMU's SeaBIOS takes seconds under this host's KVM.
set -u
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-.}
QEMU=${QEMU:-$(command -v qemu-system-x86_64 || true)}
if [ -z "$QEMU" ]; then
    echo "SKIP: qemu-system-x86_64 is not installed (Debian package qemu-system-x86)"
    exit 77
fi
command -v python3 >/dev/null || { echo "SKIP: python3 is not installed"; exit 77; }
exec python3 "$top_srcdir/tests/guest/qemu_hotplug.py" "$top_builddir/tests/guest/probe-guest.elf" \
    --accel tcg

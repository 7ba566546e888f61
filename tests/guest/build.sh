#!/bin/sh
# Standalone build of the probe guest (the autotools build uses Makefile.frag).
# Usage: tests/guest/build.sh [--linux-entry-test] [output directory]   (default: tests/guest)
#   --linux-entry-test: also build probe-guest-linux-test.elf, which QEMU boots via PVH
#   but which enters through the Linux 64-bit entry (see test_linux_entry.c).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
linux_test=0
if [ "${1:-}" = "--linux-entry-test" ]; then
    linux_test=1
    shift
fi
out=${1:-$here}
CC=${CC:-gcc}
mkdir -p "$out/obj"
CFLAGS="-std=gnu11 -O2 -g -Wall -Wextra -Werror
    -ffreestanding -fno-builtin -nostdlib -static
    -fno-pic -fno-pie -mcmodel=small
    -fno-stack-protector -fno-asynchronous-unwind-tables -fcf-protection=none
    -fno-tree-loop-distribute-patterns
    -mno-red-zone -mgeneral-regs-only -mno-sse -march=x86-64
    -mno-popcnt -mno-lzcnt -mno-bmi -mno-bmi2 -mno-movbe"
objects=""
for source in entry.S pvh.S isr.S interrupts.c main.c console.c boot_info.c \
              options.c acpi.c memtest.c commands.c lib.c timer.c pci.c virtio_pci.c \
              virtio_blk.c virtio_net.c hotplug.c; do
    object="$out/obj/${source%.*}.o"
    # shellcheck disable=SC2086
    $CC $CFLAGS -c "$here/$source" -o "$object"
    objects="$objects $object"
done
# shellcheck disable=SC2086
$CC -nostdlib -static -no-pie -Wl,-T,"$here/probe-guest.ld" -Wl,--build-id=none \
    -Wl,-z,max-page-size=4096 -Wl,-z,noexecstack $objects -lgcc -o "$out/probe-guest.elf"
echo "built $out/probe-guest.elf"
if [ $linux_test = 1 ]; then
    # shellcheck disable=SC2086
    $CC $CFLAGS -DPROBE_PVH_CONTINUE=probe_test_linux_shim -c "$here/pvh.S" -o "$out/obj/pvh-test.o"
    # shellcheck disable=SC2086
    $CC $CFLAGS -c "$here/test_linux_entry.c" -o "$out/obj/test_linux_entry.o"
    # shellcheck disable=SC2086
    $CC -nostdlib -static -no-pie -Wl,-T,"$here/probe-guest.ld" -Wl,--build-id=none \
        -Wl,-z,max-page-size=4096 -Wl,-z,noexecstack \
        $(echo $objects | sed "s#$out/obj/pvh.o#$out/obj/pvh-test.o#") \
        "$out/obj/test_linux_entry.o" -lgcc -o "$out/probe-guest-linux-test.elf"
    echo "built $out/probe-guest-linux-test.elf"
fi

#!/bin/sh
# The ACPI tables plugvirt-vmm builds for a guest, dumped by -dump-acpi-tables,
# disassemble without errors (iasl -d) and the DSDT loads and runs in ACPICA's
# interpreter (acpiexec). Exit 77 (skip) when acpica-tools is missing.
set -u
top_builddir=${top_builddir:-.}
IASL=${IASL:-$(command -v iasl || true)}
ACPIEXEC=${ACPIEXEC:-$(command -v acpiexec || true)}
if [ -z "$IASL" ] || [ -z "$ACPIEXEC" ]; then
    echo "SKIP: iasl/acpiexec not installed (Debian package acpica-tools)"
    exit 77
fi
dir=$(mktemp -d /tmp/pv-acpi-XXXXXX)
trap 'rm -rf "$dir"' EXIT
# Without /dev/kvm plugvirt-vmm cannot start: the same builder, with the same CPUs, dumps
# the tables (tests/unit/acpi_dump_tool: 2 CPUs present, 4 possible).
if ! kvm_reason=$("$top_builddir/tests/support/kvm-check"); then
    echo "note: $kvm_reason: tables from tests/unit/acpi_dump_tool, not plugvirt-vmm"
    "$top_builddir/tests/unit/acpi_dump_tool" "$dir" 2>"$dir/vmm.err"
else
"$top_builddir/hypervisor/plugvirt-vmm" -display none -nodefaults -S -smp 2,maxcpus=4 -m 256 \
    -dump-acpi-tables "$dir" -kernel "$top_builddir/tests/guest/probe-guest.elf" \
    2>"$dir/vmm.err" &
pid=$!
for _ in $(seq 100); do
    [ -s "$dir/dsdt.dat" ] && [ -s "$dir/apic.dat" ] && break
    sleep 0.05
done
kill -TERM "$pid" 2>/dev/null
wait "$pid"
fi
status=0
for table in dsdt facp apic xsdt facs; do
    if [ ! -s "$dir/$table.dat" ]; then
        echo "FAIL: $table.dat was not dumped"; cat "$dir/vmm.err"; exit 1
    fi
done
for table in dsdt facp apic xsdt; do
    if ! (cd "$dir" && "$IASL" -d "$table.dat" >"$table.iasl.log" 2>&1); then
        echo "FAIL: iasl -d $table.dat"; cat "$dir/$table.iasl.log"; status=1
    elif grep -Eiq "^(Error|Warning) |[1-9][0-9]* Errors|[^0] Warnings" "$dir/$table.iasl.log"; then
        echo "FAIL: iasl -d $table.dat reported problems"; cat "$dir/$table.iasl.log"; status=1
    else
        echo "ok: iasl -d $table.dat"
    fi
done
grep -q "_EJ0" "$dir/dsdt.dsl" || { echo "FAIL: no _EJ0 methods in the DSDT"; status=1; }
grep -q "_E01" "$dir/dsdt.dsl" || { echo "FAIL: no \\_GPE._E01 in the DSDT"; status=1; }
# Load the DSDT in ACPICA's interpreter and run the slot and CPU methods.
commands="evaluate \\_SB.PCI0.S05._SUN
evaluate \\_SB.CPUS.C001._STA
evaluate \\_S5
quit"
if ! printf '%s\n' "$commands" | (cd "$dir" && "$ACPIEXEC" -di dsdt.dat) >"$dir/acpiexec.log" 2>&1; then
    echo "FAIL: acpiexec"; cat "$dir/acpiexec.log"; status=1
elif grep -Eq "AE_[A-Z_]+" "$dir/acpiexec.log" && grep -E "AE_[A-Z_]+" "$dir/acpiexec.log" | grep -vq "AE_OK"; then
    echo "FAIL: acpiexec reported exceptions"; grep -E "AE_" "$dir/acpiexec.log"; status=1
else
    echo "ok: acpiexec loaded the DSDT and evaluated _SUN, _STA, _S5"
fi
exit $status

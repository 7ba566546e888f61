#!/bin/sh
# The ACPI tables plugvirt-vmm builds for a guest (2 CPUs present, 4 possible),
# dumped by tests/unit/acpi_dump_tool (the same builder the VMM uses, no KVM
# needed), disassemble without errors (iasl -d) and the DSDT loads and runs in
# ACPICA's interpreter (acpiexec). Exit 77 (skip) when acpica-tools is missing.
set -u
top_builddir=${top_builddir:-.}
IASL=${IASL:-$(command -v iasl || true)}
ACPIEXEC=${ACPIEXEC:-$(command -v acpiexec || true)}
if [ -z "$IASL" ] || [ -z "$ACPIEXEC" ]; then
    echo "SKIP: iasl/acpiexec not installed (Debian package acpica-tools)"
    exit 77
fi
tool="$top_builddir/tests/unit/acpi_dump_tool"
[ -x "$tool" ] || { echo "FAIL: $tool is not built (make check builds it)"; exit 1; }
dir=$(mktemp -d /tmp/pv-acpi-XXXXXX)
trap 'rm -rf "$dir"' EXIT
if ! "$tool" "$dir" 2>"$dir/dump.err"; then
    echo "FAIL: acpi_dump_tool"; cat "$dir/dump.err"; exit 1
fi
status=0
for table in dsdt facp apic xsdt facs; do
    if [ ! -s "$dir/$table.dat" ]; then
        echo "FAIL: $table.dat was not dumped"; exit 1
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

# Runs acpiexec on the DSDT with the operation regions filled with byte $1;
# the remaining arguments are debugger commands. Output in $dir/acpiexec.log.
run_acpiexec() {
    fill=$1
    shift
    printf '%s\n' "$@" quit | (cd "$dir" && "$ACPIEXEC" -di -fv "$fill" dsdt.dat) \
        >"$dir/acpiexec.log" 2>&1
}
no_exceptions() {
    ! grep -E "AE_[A-Z_]+" "$dir/acpiexec.log" | grep -vq "AE_OK"
}

# Load the DSDT in ACPICA's interpreter and run the slot and CPU methods.
if ! run_acpiexec 0 "evaluate \\_SB.PCI0.S05._SUN" "evaluate \\_SB.CPUS.C001._STA" \
    "evaluate \\_S5"; then
    echo "FAIL: acpiexec"; cat "$dir/acpiexec.log"; status=1
elif ! no_exceptions; then
    echo "FAIL: acpiexec reported exceptions"; grep -E "AE_" "$dir/acpiexec.log"; status=1
else
    echo "ok: acpiexec loaded the DSDT and evaluated _SUN, _STA, _S5"
fi

# CSTA(cpu) with the CPU hotplug region reading what the device model
# (x86/cpu_hotplug.c) answers for that CPU: 0 for a possible but absent CPU
# (the defect: with no device the ports read 0xff and CSTA said 0xF),
# 0xF for a present one.
for case in "3 0000000000000000" "2 0000000000000000" "1 000000000000000F" "0 000000000000000F"; do
    set -- $case
    cpu=$1 expected=$2
    flags=$("$tool" --cpu-hotplug-flags "$cpu") || { echo "FAIL: flags of CPU $cpu"; status=1; continue; }
    if ! run_acpiexec "$flags" "evaluate \\_SB.CPUS.CSTA $cpu" || ! no_exceptions; then
        echo "FAIL: acpiexec CSTA $cpu"; cat "$dir/acpiexec.log"; status=1
    elif ! grep -q "\[Integer\] = $expected\$" "$dir/acpiexec.log"; then
        echo "FAIL: CSTA($cpu) with flags $flags is not $expected"
        grep -A1 "Evaluation of" "$dir/acpiexec.log"; status=1
    else
        echo "ok: CSTA($cpu) = $expected (flags $flags)"
    fi
done
# The control: an unanswered port (all ones) makes CSTA report an absent CPU present,
# so the check above depends on what the device answers.
if run_acpiexec 0xff "evaluate \\_SB.CPUS.CSTA 3" && grep -q "\[Integer\] = 000000000000000F\$" "$dir/acpiexec.log"; then
    echo "ok: with no device (0xff) CSTA(3) would be 0xF"
else
    echo "FAIL: the CSTA control with 0xff"; cat "$dir/acpiexec.log"; status=1
fi
exit $status

/* The CPU hotplug register block (x86/cpu_hotplug.c) as the DSDT's CSTA and
 * CSCN use it, for -smp 2,maxcpus=4: CPUs 0-1 present, 2-3 possible only. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "io_bus.h"
#include "vm.h"
#include "x86/cpu_hotplug.h"

static struct cpu_hotplug *hotplug;

static void setup(void)
{
    struct pv_error error = {0};
    hotplug = cpu_hotplug_create(NULL, VM_CPU_HOTPLUG_BASE, 2, 4, &error);
    cr_assert_not_null(hotplug, "%s", error.message);
}

static void teardown(void)
{
    cpu_hotplug_destroy(hotplug);
}

/* What CSTA does: select the CPU, read the flags byte. */
static uint32_t flags_of(unsigned cpu)
{
    cpu_hotplug_write(hotplug, CPU_HOTPLUG_SELECTOR, cpu, 4);
    return cpu_hotplug_read(hotplug, CPU_HOTPLUG_FLAGS, 1);
}

TestSuite(cpu_hotplug, .init = setup, .fini = teardown);

Test(cpu_hotplug, only_the_smp_cpus_are_enabled)
{
    cr_assert_eq(flags_of(0), CPU_HOTPLUG_FLAG_ENABLED);
    cr_assert_eq(flags_of(1), CPU_HOTPLUG_FLAG_ENABLED);
    cr_assert_eq(flags_of(2), 0, "a possible but absent CPU must not read as present");
    cr_assert_eq(flags_of(3), 0);
}

Test(cpu_hotplug, a_selector_beyond_maxcpus_reads_zero_everywhere)
{
    cpu_hotplug_write(hotplug, CPU_HOTPLUG_SELECTOR, 4, 4);
    for (unsigned offset = 0; offset < CPU_HOTPLUG_LENGTH; offset++)
        cr_assert_eq(cpu_hotplug_read(hotplug, offset, 1), 0, "offset %u", offset);
    cpu_hotplug_write(hotplug, CPU_HOTPLUG_COMMAND, CPU_HOTPLUG_CMD_CPU_ID, 1);
    cpu_hotplug_write(hotplug, CPU_HOTPLUG_SELECTOR, 1, 4);
    /* The command write above was ignored: the command is still 0 (next event). */
    cr_assert_eq(cpu_hotplug_read(hotplug, CPU_HOTPLUG_DATA, 4), 1);
}

Test(cpu_hotplug, modern_interface_detection_and_cpu_ids)
{
    /* The spec's detection: selector 0, command 0, command data 2 reads 0. */
    cpu_hotplug_write(hotplug, CPU_HOTPLUG_SELECTOR, 0, 4);
    cpu_hotplug_write(hotplug, CPU_HOTPLUG_COMMAND, CPU_HOTPLUG_CMD_NEXT_EVENT, 1);
    cr_assert_eq(cpu_hotplug_read(hotplug, CPU_HOTPLUG_SELECTOR, 4), 0);
    /* CPU ID: the APIC ID, which is the CPU index here. */
    cpu_hotplug_write(hotplug, CPU_HOTPLUG_SELECTOR, 3, 4);
    cpu_hotplug_write(hotplug, CPU_HOTPLUG_COMMAND, CPU_HOTPLUG_CMD_CPU_ID, 1);
    cr_assert_eq(cpu_hotplug_read(hotplug, CPU_HOTPLUG_DATA, 4), 3);
    cr_assert_eq(cpu_hotplug_read(hotplug, CPU_HOTPLUG_SELECTOR, 4), 0);
}

Test(cpu_hotplug, no_cpu_has_an_event_so_the_selector_stays)
{
    /* CSCN's loop: command 0, then the flags say no insert and no remove. */
    cpu_hotplug_write(hotplug, CPU_HOTPLUG_SELECTOR, 2, 4);
    cpu_hotplug_write(hotplug, CPU_HOTPLUG_COMMAND, CPU_HOTPLUG_CMD_NEXT_EVENT, 1);
    uint32_t flags = cpu_hotplug_read(hotplug, CPU_HOTPLUG_FLAGS, 1);
    cr_assert_eq(flags & (CPU_HOTPLUG_FLAG_INSERT | CPU_HOTPLUG_FLAG_REMOVE), 0);
    cr_assert_eq(cpu_hotplug_read(hotplug, CPU_HOTPLUG_DATA, 4), 2);
}

Test(cpu_hotplug, the_guest_cannot_change_what_is_present)
{
    /* Eject (directly or through firmware) and event acknowledgements. */
    cpu_hotplug_write(hotplug, CPU_HOTPLUG_SELECTOR, 1, 4);
    cpu_hotplug_write(hotplug, CPU_HOTPLUG_FLAGS, CPU_HOTPLUG_FLAG_EJECT, 1);
    cpu_hotplug_write(hotplug, CPU_HOTPLUG_FLAGS, CPU_HOTPLUG_FLAG_FIRMWARE_EJECT, 1);
    cpu_hotplug_write(hotplug, CPU_HOTPLUG_FLAGS, 0xff, 1);
    cr_assert_eq(flags_of(1), CPU_HOTPLUG_FLAG_ENABLED);
    cpu_hotplug_write(hotplug, CPU_HOTPLUG_SELECTOR, 2, 4);
    cpu_hotplug_write(hotplug, CPU_HOTPLUG_FLAGS, 0xff, 1);
    cr_assert_eq(flags_of(2), 0);
    /* _OST reports are taken and change nothing. */
    cpu_hotplug_write(hotplug, CPU_HOTPLUG_COMMAND, CPU_HOTPLUG_CMD_OST_STATUS, 1);
    cpu_hotplug_write(hotplug, CPU_HOTPLUG_DATA, 0x80, 4);
    cr_assert_eq(flags_of(2), 0);
}

Test(cpu_hotplug, bad_counts_are_refused)
{
    struct pv_error error = {0};
    cr_assert_null(cpu_hotplug_create(NULL, VM_CPU_HOTPLUG_BASE, 3, 2, &error));
    cr_assert_eq(error.code, -EINVAL);
    cr_assert_null(cpu_hotplug_create(NULL, VM_CPU_HOTPLUG_BASE, 0, 2, &error));
}

/* On the io_bus the block answers: before this device, the ports read as all ones
 * (no device), which the DSDT took as "every possible CPU is present". */
Test(cpu_hotplug, the_ports_are_answered_on_the_io_bus)
{
    struct io_bus bus;
    struct pv_error error = {0};
    cr_assert_eq(io_bus_init(&bus, &error), 0, "%s", error.message);
    uint8_t flags = 0;
    io_bus_access(&bus, IO_SPACE_PIO, VM_CPU_HOTPLUG_BASE + CPU_HOTPLUG_FLAGS, &flags, 1, false);
    cr_assert_eq(flags, 0xff, "an unclaimed port reads all ones");

    struct cpu_hotplug *device = cpu_hotplug_create(&bus, VM_CPU_HOTPLUG_BASE, 1, 2, &error);
    cr_assert_not_null(device, "%s", error.message);
    uint32_t selector = 1;
    io_bus_access(&bus, IO_SPACE_PIO, VM_CPU_HOTPLUG_BASE + CPU_HOTPLUG_SELECTOR, &selector, 4,
                  true);
    io_bus_access(&bus, IO_SPACE_PIO, VM_CPU_HOTPLUG_BASE + CPU_HOTPLUG_FLAGS, &flags, 1, false);
    cr_assert_eq(flags, 0, "CPU 1 of -smp 1,maxcpus=2 is not present");
    selector = 0;
    io_bus_access(&bus, IO_SPACE_PIO, VM_CPU_HOTPLUG_BASE + CPU_HOTPLUG_SELECTOR, &selector, 4,
                  true);
    io_bus_access(&bus, IO_SPACE_PIO, VM_CPU_HOTPLUG_BASE + CPU_HOTPLUG_FLAGS, &flags, 1, false);
    cr_assert_eq(flags, CPU_HOTPLUG_FLAG_ENABLED);
    cpu_hotplug_destroy(device);
    io_bus_access(&bus, IO_SPACE_PIO, VM_CPU_HOTPLUG_BASE + CPU_HOTPLUG_FLAGS, &flags, 1, false);
    cr_assert_eq(flags, 0xff, "destroy unregisters the ports");
    io_bus_destroy(&bus);
}

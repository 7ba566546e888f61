#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "acpi/acpi_pm.h"
#include "acpi/acpi_tables.h"
#include "vm.h"

#define PM1_STATUS VM_PM_BASE
#define PM1_ENABLE (VM_PM_BASE + 2)
#define PM1_CONTROL (VM_PM_BASE + 4)
#define PM_TIMER (VM_PM_BASE + 8)
#define GPE0_STATUS VM_GPE0_BASE
#define GPE0_ENABLE (VM_GPE0_BASE + 2)

struct recorder {
    bool sci;
    unsigned sci_calls;
    unsigned power_offs;
};

static void record_sci(void *opaque, bool level)
{
    struct recorder *recorder = opaque;
    recorder->sci = level;
    recorder->sci_calls++;
}

static void record_power_off(void *opaque)
{
    struct recorder *recorder = opaque;
    recorder->power_offs++;
}

static struct recorder recorder;
static struct acpi_pm *pm;

static void setup(void)
{
    memset(&recorder, 0, sizeof(recorder));
    struct acpi_pm_hooks hooks = {record_sci, record_power_off, &recorder};
    struct pv_error error = {0};
    pm = acpi_pm_create_with_hooks(&hooks, &error);
    cr_assert_not_null(pm, "%s", error.message);
}

static void teardown(void)
{
    acpi_pm_destroy(pm);
}

TestSuite(acpi_pm, .init = setup, .fini = teardown);

Test(acpi_pm, acpi_mode_is_always_on)
{
    cr_assert_eq(acpi_pm_port_read(pm, PM1_CONTROL, 2) & ACPI_PM1_CNT_SCI_EN, 1);
    acpi_pm_port_write(pm, PM1_CONTROL, 0, 2);
    cr_assert_eq(acpi_pm_port_read(pm, PM1_CONTROL, 2) & ACPI_PM1_CNT_SCI_EN, 1,
                 "SCI_EN cannot be cleared");
    cr_assert_eq(acpi_pm_port_read(pm, PM1_STATUS, 2), 0);
    cr_assert_eq(acpi_pm_port_read(pm, GPE0_STATUS, 4), 0);
}

Test(acpi_pm, power_button_raises_sci_only_when_enabled)
{
    acpi_pm_press_power_button(pm);
    cr_assert_eq(acpi_pm_port_read(pm, PM1_STATUS, 2), ACPI_PM1_POWER_BUTTON);
    cr_assert_not(recorder.sci, "PWRBTN_EN is clear");
    acpi_pm_port_write(pm, PM1_ENABLE, ACPI_PM1_POWER_BUTTON, 2);
    cr_assert(recorder.sci, "status & enable → SCI");
    cr_assert_eq(acpi_pm_port_read(pm, PM1_ENABLE, 2), ACPI_PM1_POWER_BUTTON);
    /* Writing 1 clears the status and drops the level-triggered line. */
    acpi_pm_port_write(pm, PM1_STATUS, ACPI_PM1_POWER_BUTTON, 2);
    cr_assert_eq(acpi_pm_port_read(pm, PM1_STATUS, 2), 0);
    cr_assert_not(recorder.sci);
}

Test(acpi_pm, status_writes_clear_only_the_ones)
{
    acpi_pm_press_power_button(pm);
    acpi_pm_port_write(pm, PM1_STATUS, 0, 2);
    cr_assert_eq(acpi_pm_port_read(pm, PM1_STATUS, 2), ACPI_PM1_POWER_BUTTON,
                 "writing 0 must not clear");
    acpi_pm_port_write(pm, PM1_STATUS, ACPI_PM1_TIMER | ACPI_PM1_GLOBAL, 2);
    cr_assert_eq(acpi_pm_port_read(pm, PM1_STATUS, 2), ACPI_PM1_POWER_BUTTON,
                 "other bits must not clear it");
    /* Byte access to the high byte (bit 8 = bit 0 of 0x601). */
    cr_assert_eq(acpi_pm_port_read(pm, PM1_STATUS + 1, 1), 0x01);
    acpi_pm_port_write(pm, PM1_STATUS + 1, 0x01, 1);
    cr_assert_eq(acpi_pm_port_read(pm, PM1_STATUS, 2), 0);
}

Test(acpi_pm, gpe_raise_and_acknowledge)
{
    acpi_pm_raise_gpe(pm, ACPI_GPE_PCI_HOTPLUG);
    cr_assert_eq(acpi_pm_port_read(pm, GPE0_STATUS, 1), 1u << ACPI_GPE_PCI_HOTPLUG);
    cr_assert_not(recorder.sci, "GPE not enabled yet");
    /* The probe guest and Linux enable GPEs a byte at a time. */
    acpi_pm_port_write(pm, GPE0_ENABLE, (1u << ACPI_GPE_PCI_HOTPLUG) | (1u << ACPI_GPE_CPU_HOTPLUG),
                       1);
    cr_assert(recorder.sci);
    acpi_pm_raise_gpe(pm, ACPI_GPE_CPU_HOTPLUG);
    cr_assert_eq(acpi_pm_port_read(pm, GPE0_STATUS, 1), 0x06);
    acpi_pm_port_write(pm, GPE0_STATUS, 1u << ACPI_GPE_PCI_HOTPLUG, 1);
    cr_assert_eq(acpi_pm_port_read(pm, GPE0_STATUS, 1), 1u << ACPI_GPE_CPU_HOTPLUG);
    cr_assert(recorder.sci, "the CPU hotplug GPE is still pending");
    acpi_pm_port_write(pm, GPE0_STATUS, 1u << ACPI_GPE_CPU_HOTPLUG, 1);
    cr_assert_not(recorder.sci);
    /* Dword view: status in the low half, enable in the high half. */
    cr_assert_eq(acpi_pm_port_read(pm, GPE0_STATUS, 4), 0x00060000);
}

Test(acpi_pm, high_gpe_bits_and_out_of_range)
{
    acpi_pm_port_write(pm, GPE0_ENABLE + 1, 0x80, 1);
    acpi_pm_raise_gpe(pm, 15);
    cr_assert_eq(acpi_pm_port_read(pm, GPE0_STATUS, 2), 0x8000);
    cr_assert(recorder.sci);
    unsigned calls = recorder.sci_calls;
    acpi_pm_raise_gpe(pm, ACPI_GPE0_BITS);
    cr_assert_eq(acpi_pm_port_read(pm, GPE0_STATUS, 2), 0x8000);
    cr_assert_eq(recorder.sci_calls, calls);
}

Test(acpi_pm, sci_hook_called_only_on_level_changes)
{
    acpi_pm_port_write(pm, GPE0_ENABLE, 0xff, 1);
    acpi_pm_raise_gpe(pm, 1);
    acpi_pm_raise_gpe(pm, 2);
    acpi_pm_raise_gpe(pm, 1);
    cr_assert_eq(recorder.sci_calls, 1);
    acpi_pm_port_write(pm, GPE0_STATUS, 0x06, 1);
    cr_assert_eq(recorder.sci_calls, 2);
    cr_assert_not(recorder.sci);
}

Test(acpi_pm, soft_off_requests_power_off)
{
    uint16_t s5 = (uint16_t)(ACPI_S5_SLEEP_TYPE << ACPI_PM1_CNT_SLP_TYP_SHIFT);
    acpi_pm_port_write(pm, PM1_CONTROL, s5, 2);
    cr_assert_eq(recorder.power_offs, 0, "SLP_EN not set");
    acpi_pm_port_write(pm, PM1_CONTROL, s5 | ACPI_PM1_CNT_SLP_EN | ACPI_PM1_CNT_SCI_EN, 2);
    cr_assert_eq(recorder.power_offs, 1);
    cr_assert_eq(acpi_pm_port_read(pm, PM1_CONTROL, 2) & ACPI_PM1_CNT_SLP_EN, 0,
                 "SLP_EN is write-only");
}

Test(acpi_pm, other_sleep_types_are_ignored)
{
    for (unsigned type = 1; type < 8; type++) {
        acpi_pm_port_write(pm, PM1_CONTROL,
                           (type << ACPI_PM1_CNT_SLP_TYP_SHIFT) | ACPI_PM1_CNT_SLP_EN, 2);
        cr_assert_eq((acpi_pm_port_read(pm, PM1_CONTROL, 2) & ACPI_PM1_CNT_SLP_TYP_MASK) >>
                         ACPI_PM1_CNT_SLP_TYP_SHIFT,
                     type);
    }
    cr_assert_eq(recorder.power_offs, 0);
}

Test(acpi_pm, soft_off_by_byte_write_of_the_high_byte)
{
    acpi_pm_port_write(pm, PM1_CONTROL + 1, ACPI_PM1_CNT_SLP_EN >> 8, 1);
    cr_assert_eq(recorder.power_offs, 1);
}

static uint64_t now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec;
}

Test(acpi_pm, timer_counts_at_3_58_mhz)
{
    uint64_t start_ns = now_ns();
    uint32_t start = acpi_pm_port_read(pm, PM_TIMER, 4);
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    uint32_t end = acpi_pm_port_read(pm, PM_TIMER, 4);
    uint64_t elapsed_ns = now_ns() - start_ns;
    uint32_t ticks = end - start;
    uint64_t expected_max = elapsed_ns * ACPI_PM_TIMER_HZ / 1000000000ULL + 1;
    cr_assert_geq(ticks, 20 * ACPI_PM_TIMER_HZ / 1000, "ticks %u too few", ticks);
    cr_assert_leq(ticks, expected_max, "ticks %u, at most %llu", ticks,
                  (unsigned long long)expected_max);
    /* The timer is read-only. */
    acpi_pm_port_write(pm, PM_TIMER, 0, 4);
    cr_assert_geq(acpi_pm_port_read(pm, PM_TIMER, 4) - start, ticks);
}

Test(acpi_pm, reset_clears_everything_and_lowers_the_sci)
{
    acpi_pm_port_write(pm, PM1_ENABLE, ACPI_PM1_POWER_BUTTON, 2);
    acpi_pm_press_power_button(pm);
    acpi_pm_port_write(pm, GPE0_ENABLE, 0x02, 1);
    acpi_pm_raise_gpe(pm, 1);
    acpi_pm_port_write(pm, PM1_CONTROL, 3u << ACPI_PM1_CNT_SLP_TYP_SHIFT, 2);
    cr_assert(recorder.sci);
    unsigned calls = recorder.sci_calls;
    acpi_pm_reset(pm);
    cr_assert_eq(recorder.sci_calls, calls + 1);
    cr_assert_not(recorder.sci);
    cr_assert_eq(acpi_pm_port_read(pm, PM1_STATUS, 4), 0, "status and enable");
    cr_assert_eq(acpi_pm_port_read(pm, PM1_CONTROL, 2), ACPI_PM1_CNT_SCI_EN);
    cr_assert_eq(acpi_pm_port_read(pm, GPE0_STATUS, 4), 0);
}

Test(acpi_pm, unused_ports_read_zero)
{
    cr_assert_eq(acpi_pm_port_read(pm, VM_PM_BASE + 6, 2), 0);
    cr_assert_eq(acpi_pm_port_read(pm, 0x1234, 4), 0);
}

static void *press_repeatedly(void *arg)
{
    for (int i = 0; i < 10000; i++)
        acpi_pm_raise_gpe(arg, (unsigned)(i % 2) + 1);
    return NULL;
}

Test(acpi_pm, concurrent_raise_and_acknowledge_keep_the_line_consistent)
{
    acpi_pm_port_write(pm, GPE0_ENABLE, 0x06, 1);
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, press_repeatedly, pm), 0);
    for (int i = 0; i < 10000; i++)
        acpi_pm_port_write(pm, GPE0_STATUS, 0x06, 1);
    pthread_join(thread, NULL);
    bool pending = acpi_pm_port_read(pm, GPE0_STATUS, 1) != 0;
    cr_assert_eq(recorder.sci, pending, "the line must match status & enable");
}

/* acpi_pm_create wiring: ports on the VM's io_bus (no KVM needed for accesses
 * that leave the SCI line alone). */
Test(acpi_pm_vm, registers_and_unregisters_its_ports)
{
    struct vm vm;
    memset(&vm, 0, sizeof(vm));
    vm.vm_fd = -1;
    cr_assert_eq(io_bus_init(&vm.io_bus, NULL), 0);
    struct pv_error error = {0};
    struct acpi_pm *device = acpi_pm_create(&vm, &error);
    cr_assert_not_null(device, "%s", error.message);

    uint16_t control = 0;
    cr_assert(io_bus_access(&vm.io_bus, IO_SPACE_PIO, PM1_CONTROL, &control, 2, false));
    cr_assert_eq(control & ACPI_PM1_CNT_SCI_EN, 1);
    uint8_t enable = 0x04;
    cr_assert(io_bus_access(&vm.io_bus, IO_SPACE_PIO, GPE0_ENABLE, &enable, 1, true));
    uint32_t gpe = 0;
    cr_assert(io_bus_access(&vm.io_bus, IO_SPACE_PIO, GPE0_STATUS, &gpe, 4, false));
    cr_assert_eq(gpe, 0x00040000);

    /* A second device on the same ports fails cleanly. */
    cr_assert_null(acpi_pm_create(&vm, &error));
    cr_assert_eq(error.code, -EEXIST);
    cr_assert(io_bus_access(&vm.io_bus, IO_SPACE_PIO, PM1_CONTROL, &control, 2, false),
              "the first device must still be registered");

    acpi_pm_destroy(device);
    cr_assert_not(io_bus_access(&vm.io_bus, IO_SPACE_PIO, PM1_CONTROL, &control, 2, false));
    cr_assert_not(io_bus_access(&vm.io_bus, IO_SPACE_PIO, GPE0_STATUS, &gpe, 4, false));
    io_bus_destroy(&vm.io_bus);
}

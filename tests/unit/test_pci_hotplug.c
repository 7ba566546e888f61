/* QEMU's ACPI PCI hotplug register block (0xae00) driven through the io_bus,
 * with a platform table that records GPE events, quiesce state and the work
 * posted to the main thread (run explicitly, as the main loop would). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "acpi/acpi_pm.h"
#include "pci/pci.h"
#include "pci/pci_hotplug.h"
#include "vm.h"

#define HOTPLUG_BASE VM_PCI_HOTPLUG_BASE
#define MAX_MAIN_CALLS 8

struct main_call {
    void (*fn)(void *arg);
    void *arg;
};

struct machine {
    struct vm vm; /* first: the platform callbacks cast back */
    struct pci_bus *bus;
    enum vm_run_state run_state;
    unsigned gpe_events;
    unsigned last_gpe_bit;
    int quiesce_depth;
    struct main_call main_calls[MAX_MAIN_CALLS];
    unsigned main_call_count;
    /* What the unplug callback and destroy saw. */
    char deleted_ids[4][64];
    unsigned deleted_count;
    bool quiesced_at_destroy;
    bool unplug_callback_before_destroy;
    unsigned destroyed;
};

static struct machine *machine_of(struct vm *vm)
{
    return (struct machine *)vm;
}

static enum vm_run_state current_run_state(struct vm *vm)
{
    return machine_of(vm)->run_state;
}

static void record_gpe(struct vm *vm, unsigned bit)
{
    machine_of(vm)->gpe_events++;
    machine_of(vm)->last_gpe_bit = bit;
}

static int queue_main_call(struct vm *vm, void (*fn)(void *arg), void *arg)
{
    struct machine *machine = machine_of(vm);
    if (machine->main_call_count == MAX_MAIN_CALLS)
        return -ENOMEM;
    machine->main_calls[machine->main_call_count++] = (struct main_call){fn, arg};
    return 0;
}

static void quiesce(struct vm *vm)
{
    machine_of(vm)->quiesce_depth++;
}

static void unquiesce(struct vm *vm)
{
    machine_of(vm)->quiesce_depth--;
}

static const struct pci_platform_ops test_platform = {
    .call_on_main = queue_main_call,
    .quiesce = quiesce,
    .unquiesce = unquiesce,
    .get_run_state = current_run_state,
    .raise_gpe = record_gpe,
};

static void run_main_calls(struct machine *machine)
{
    unsigned count = machine->main_call_count;
    struct main_call calls[MAX_MAIN_CALLS];
    memcpy(calls, machine->main_calls, sizeof(calls));
    machine->main_call_count = 0;
    for (unsigned i = 0; i < count; i++)
        calls[i].fn(calls[i].arg);
}

static void on_unplugged(void *opaque, struct pci_device *device)
{
    struct machine *machine = opaque;
    if (machine->deleted_count < 4)
        snprintf(machine->deleted_ids[machine->deleted_count], 64, "%s", device->id);
    machine->deleted_count++;
}

struct test_device {
    struct pci_device pci;
    struct machine *machine;
    uint64_t bar_offset_seen;
};

static void bar_write(void *opaque, uint64_t offset, const void *data, unsigned size)
{
    ((struct test_device *)opaque)->bar_offset_seen = offset;
}

static const struct io_region_ops bar_ops = {.write = bar_write};

static void test_device_destroy(struct pci_device *pci)
{
    struct test_device *device = (struct test_device *)pci;
    struct machine *machine = device->machine;
    machine->destroyed++;
    machine->quiesced_at_destroy = machine->quiesce_depth > 0;
    machine->unplug_callback_before_destroy = machine->deleted_count == machine->destroyed;
    free(device);
}

static const struct pci_device_ops test_device_ops = {.destroy = test_device_destroy};

static struct machine *machine_create(void)
{
    struct machine *machine = calloc(1, sizeof(*machine));
    cr_assert_not_null(machine);
    machine->vm.vm_fd = -1;
    machine->vm.kvm_fd = -1;
    cr_assert_eq(io_bus_init(&machine->vm.io_bus, NULL), 0);
    struct pv_error error = {0};
    machine->bus = pci_bus_create_with_platform(&machine->vm, &test_platform, NULL, &error);
    cr_assert_not_null(machine->bus, "%s", error.message);
    pci_bus_set_unplug_callback(machine->bus, on_unplugged, machine);
    return machine;
}

static void machine_destroy(struct machine *machine)
{
    pci_bus_destroy(machine->bus);
    io_bus_destroy(&machine->vm.io_bus);
    free(machine);
}

static struct test_device *plug_device(struct machine *machine, const char *id, int slot)
{
    struct test_device *device = calloc(1, sizeof(*device));
    cr_assert_not_null(device);
    device->machine = machine;
    pci_device_init(&device->pci, &test_device_ops, "virtio-blk-pci", id, 0x1af4, 0x1042, 0x010000,
                    1, 0x1af4, 0x1100);
    cr_assert_eq(pci_device_set_bar(&device->pci, 0, PCI_BAR_IO, 0x20, &bar_ops, device, NULL), 0);
    struct pv_error error = {0};
    cr_assert_eq(pci_bus_plug(machine->bus, &device->pci, slot, &error), 0, "%s", error.message);
    return device;
}

static uint32_t hotplug_read(struct machine *machine, unsigned offset)
{
    uint32_t value = 0;
    io_bus_access(&machine->vm.io_bus, IO_SPACE_PIO, HOTPLUG_BASE + offset, &value, 4, false);
    return value;
}

static void hotplug_write(struct machine *machine, unsigned offset, uint32_t value)
{
    io_bus_access(&machine->vm.io_bus, IO_SPACE_PIO, HOTPLUG_BASE + offset, &value, 4, true);
}

static uint32_t config_read32(struct machine *machine, unsigned slot, unsigned offset)
{
    uint32_t address = 0x80000000u | slot << 11 | offset, value = 0;
    io_bus_access(&machine->vm.io_bus, IO_SPACE_PIO, 0xcf8, &address, 4, true);
    io_bus_access(&machine->vm.io_bus, IO_SPACE_PIO, 0xcfc, &value, 4, false);
    return value;
}

static void sleep_ms(long ms)
{
    struct timespec delay = {.tv_sec = 0, .tv_nsec = ms * 1000000L};
    nanosleep(&delay, NULL);
}

Test(pci_hotplug, cold_plug_sends_no_event)
{
    struct machine *machine = machine_create();
    machine->run_state = VM_RUN_STATE_PRELAUNCH;
    struct test_device *device = plug_device(machine, "disk0", 3);
    cr_assert_not(device->pci.hotplugged);
    cr_assert_eq(machine->gpe_events, 0u);
    cr_assert_eq(hotplug_read(machine, PCI_HOTPLUG_UP), 0u);
    machine_destroy(machine);
}

Test(pci_hotplug, hotplug_sets_up_bit_read_to_clear_and_raises_gpe1)
{
    struct machine *machine = machine_create();
    machine->run_state = VM_RUN_STATE_RUNNING;
    struct test_device *device = plug_device(machine, "disk0", 3);
    cr_assert(device->pci.hotplugged);
    cr_assert_eq(machine->gpe_events, 1u);
    cr_assert_eq(machine->last_gpe_bit, ACPI_GPE_PCI_HOTPLUG);
    /* The device answers config cycles when the guest looks. */
    cr_assert_eq(config_read32(machine, 3, 0), 0x10421af4u);
    cr_assert_eq(hotplug_read(machine, PCI_HOTPLUG_UP), 1u << 3);
    cr_assert_eq(hotplug_read(machine, PCI_HOTPLUG_UP), 0u);
    cr_assert_eq(hotplug_read(machine, PCI_HOTPLUG_DOWN), 0u);
    machine_destroy(machine);
}

Test(pci_hotplug, static_registers)
{
    struct machine *machine = machine_create();
    cr_assert_eq(hotplug_read(machine, PCI_HOTPLUG_EJECT), 0u);
    cr_assert_eq(hotplug_read(machine, PCI_HOTPLUG_REMOVABLE), 0xfffffffeu);
    cr_assert_eq(hotplug_read(machine, PCI_HOTPLUG_BUS_SELECT), 0u);
    /* Only 32-bit accesses are valid. */
    uint16_t half = 0;
    io_bus_access(&machine->vm.io_bus, IO_SPACE_PIO, HOTPLUG_BASE + PCI_HOTPLUG_REMOVABLE, &half, 2,
                  false);
    cr_assert_eq(half, 0xffffu);
    machine_destroy(machine);
}

Test(pci_hotplug, unplug_request_sets_down_bit_and_eject_removes)
{
    struct machine *machine = machine_create();
    machine->run_state = VM_RUN_STATE_RUNNING;
    struct test_device *device = plug_device(machine, "disk0", 4);
    hotplug_read(machine, PCI_HOTPLUG_UP);
    /* Map its I/O BAR so the eject must unregister it. */
    uint32_t address = 0x80000000u | 4 << 11 | 0x10, bar = 0xc000, command = PCI_COMMAND_IO;
    io_bus_access(&machine->vm.io_bus, IO_SPACE_PIO, 0xcf8, &address, 4, true);
    io_bus_access(&machine->vm.io_bus, IO_SPACE_PIO, 0xcfc, &bar, 4, true);
    address = 0x80000000u | 4 << 11 | 0x04;
    io_bus_access(&machine->vm.io_bus, IO_SPACE_PIO, 0xcf8, &address, 4, true);
    io_bus_access(&machine->vm.io_bus, IO_SPACE_PIO, 0xcfc, &command, 2, true);
    uint8_t byte = 1;
    cr_assert(io_bus_access(&machine->vm.io_bus, IO_SPACE_PIO, 0xc004, &byte, 1, true));
    cr_assert_eq(device->bar_offset_seen, 4u);

    unsigned events = machine->gpe_events;
    struct pv_error error = {0};
    cr_assert_eq(pci_bus_request_unplug(machine->bus, &device->pci, &error), 0);
    cr_assert(device->pci.unplug_requested);
    cr_assert_eq(machine->gpe_events, events + 1);
    cr_assert_eq(hotplug_read(machine, PCI_HOTPLUG_DOWN), 1u << 4);
    cr_assert_eq(hotplug_read(machine, PCI_HOTPLUG_DOWN), 1u << 4, "not read-to-clear");

    /* The guest's _EJ0: BNUM=0, B0EJ=1<<slot. The removal runs on the main thread. */
    hotplug_write(machine, PCI_HOTPLUG_BUS_SELECT, 0);
    hotplug_write(machine, PCI_HOTPLUG_EJECT, 1u << 4);
    cr_assert_eq(hotplug_read(machine, PCI_HOTPLUG_DOWN), 0u);
    cr_assert_eq(machine->main_call_count, 1u);
    cr_assert_eq(pci_bus_get_slot(machine->bus, 4), &device->pci);
    run_main_calls(machine);

    cr_assert_null(pci_bus_get_slot(machine->bus, 4));
    cr_assert_null(pci_bus_find_by_id(machine->bus, "disk0"));
    cr_assert_eq(machine->destroyed, 1u);
    cr_assert_eq(machine->deleted_count, 1u);
    cr_assert_str_eq(machine->deleted_ids[0], "disk0");
    cr_assert(machine->quiesced_at_destroy);
    cr_assert(machine->unplug_callback_before_destroy);
    cr_assert_eq(machine->quiesce_depth, 0);
    cr_assert_eq(config_read32(machine, 4, 0), 0xffffffffu);
    cr_assert_not(io_bus_access(&machine->vm.io_bus, IO_SPACE_PIO, 0xc004, &byte, 1, true),
                  "the BAR left the io_bus");
    /* The slot can be reused. */
    plug_device(machine, "disk1", 4);
    machine_destroy(machine);
}

Test(pci_hotplug, repeated_unplug_request)
{
    struct machine *machine = machine_create();
    machine->run_state = VM_RUN_STATE_RUNNING;
    struct test_device *device = plug_device(machine, "net0", 2);
    struct pv_error error = {0};
    unsigned events = machine->gpe_events;
    struct timespec first, second;
    clock_gettime(CLOCK_MONOTONIC, &first);
    cr_assert_eq(pci_bus_request_unplug(machine->bus, &device->pci, &error), 0);
    int rc = pci_bus_request_unplug(machine->bus, &device->pci, &error);
    clock_gettime(CLOCK_MONOTONIC, &second);
    long elapsed_us =
        (second.tv_sec - first.tv_sec) * 1000000L + (second.tv_nsec - first.tv_nsec) / 1000;
    if (elapsed_us < 1000) {
        /* Within QEMU's 1 ms expiry: refused. */
        cr_assert_eq(rc, -EBUSY);
        cr_assert_str_eq(error.message, "Device net0 is already in the process of unplug");
    } else {
        /* A loaded host (or valgrind) took longer than the expiry: sent again. */
        cr_assert_eq(rc, 0);
        events++;
    }
    /* Later, while running: the request is sent again. */
    sleep_ms(3);
    cr_assert_eq(pci_bus_request_unplug(machine->bus, &device->pci, &error), 0);
    cr_assert_eq(machine->gpe_events, events + 2);
    cr_assert_eq(hotplug_read(machine, PCI_HOTPLUG_DOWN), 1u << 2);
    machine_destroy(machine);
}

Test(pci_hotplug, repeated_unplug_request_while_paused_is_refused)
{
    struct machine *machine = machine_create();
    machine->run_state = VM_RUN_STATE_PAUSED;
    struct test_device *device = plug_device(machine, "net0", 2);
    struct pv_error error = {0};
    cr_assert_eq(pci_bus_request_unplug(machine->bus, &device->pci, &error), 0);
    sleep_ms(3);
    /* No guest time has passed since the request. */
    cr_assert_eq(pci_bus_request_unplug(machine->bus, &device->pci, &error), -EBUSY);
    machine->run_state = VM_RUN_STATE_RUNNING;
    cr_assert_eq(pci_bus_request_unplug(machine->bus, &device->pci, &error), 0);
    machine_destroy(machine);
}

Test(pci_hotplug, eject_without_request_removes_like_qemu)
{
    struct machine *machine = machine_create();
    machine->run_state = VM_RUN_STATE_RUNNING;
    plug_device(machine, "disk0", 6);
    hotplug_write(machine, PCI_HOTPLUG_EJECT, 1u << 6);
    run_main_calls(machine);
    cr_assert_null(pci_bus_get_slot(machine->bus, 6));
    cr_assert_eq(machine->deleted_count, 1u);
    machine_destroy(machine);
}

Test(pci_hotplug, eject_of_empty_slot_host_bridge_or_nothing_is_ignored)
{
    struct machine *machine = machine_create();
    plug_device(machine, "disk0", 2);
    hotplug_write(machine, PCI_HOTPLUG_EJECT, 1u << 7); /* empty */
    hotplug_write(machine, PCI_HOTPLUG_EJECT, 1u << 0); /* host bridge */
    hotplug_write(machine, PCI_HOTPLUG_EJECT, 0);       /* no slot */
    cr_assert_eq(machine->main_call_count, 0u);
    cr_assert_not_null(pci_bus_get_slot(machine->bus, 0));
    cr_assert_not_null(pci_bus_get_slot(machine->bus, 2));
    /* Several bits: only the lowest slot is ejected. */
    plug_device(machine, "disk1", 5);
    hotplug_write(machine, PCI_HOTPLUG_EJECT, 1u << 5 | 1u << 2);
    run_main_calls(machine);
    cr_assert_null(pci_bus_get_slot(machine->bus, 2));
    cr_assert_not_null(pci_bus_get_slot(machine->bus, 5));
    machine_destroy(machine);
}

Test(pci_hotplug, stale_eject_does_not_remove_a_new_device)
{
    struct machine *machine = machine_create();
    struct test_device *device = plug_device(machine, "old", 3);
    hotplug_write(machine, PCI_HOTPLUG_EJECT, 1u << 3);
    /* Before the main thread runs the eject, the slot is emptied and refilled. */
    pci_bus_remove_slot(machine->bus, 3);
    (void)device;
    plug_device(machine, "new", 3);
    run_main_calls(machine);
    cr_assert_not_null(pci_bus_find_by_id(machine->bus, "new"));
    machine_destroy(machine);
}

Test(pci_hotplug, other_bus_select_values)
{
    struct machine *machine = machine_create();
    machine->run_state = VM_RUN_STATE_RUNNING;
    plug_device(machine, "disk0", 3);
    hotplug_write(machine, PCI_HOTPLUG_BUS_SELECT, 1);
    cr_assert_eq(hotplug_read(machine, PCI_HOTPLUG_BUS_SELECT), 1u);
    cr_assert_eq(hotplug_read(machine, PCI_HOTPLUG_UP), 0u);
    cr_assert_eq(hotplug_read(machine, PCI_HOTPLUG_REMOVABLE), 0xffffffffu);
    hotplug_write(machine, PCI_HOTPLUG_EJECT, 1u << 3);
    cr_assert_eq(machine->main_call_count, 0u, "no bus 1: nothing to eject");
    hotplug_write(machine, PCI_HOTPLUG_BUS_SELECT, 256);
    cr_assert_eq(hotplug_read(machine, PCI_HOTPLUG_BUS_SELECT), 0u);
    hotplug_write(machine, PCI_HOTPLUG_BUS_SELECT, 0);
    cr_assert_eq(hotplug_read(machine, PCI_HOTPLUG_UP), 1u << 3, "bus 0 kept its up bit");
    machine_destroy(machine);
}

Test(pci_hotplug, acpi_index_latch)
{
    struct machine *machine = machine_create();
    struct test_device *device = plug_device(machine, "nic", 4);
    device->pci.acpi_index = 7;
    hotplug_write(machine, PCI_HOTPLUG_ACPI_INDEX, 1u << 4);
    cr_assert_eq(hotplug_read(machine, PCI_HOTPLUG_ACPI_INDEX), 7u);
    cr_assert_eq(hotplug_read(machine, PCI_HOTPLUG_ACPI_INDEX), 0u, "read once");
    hotplug_write(machine, PCI_HOTPLUG_ACPI_INDEX, 1u << 5); /* empty slot */
    cr_assert_eq(hotplug_read(machine, PCI_HOTPLUG_ACPI_INDEX), 0u);
    hotplug_write(machine, PCI_HOTPLUG_ACPI_INDEX, 1u << 4);
    hotplug_write(machine, PCI_HOTPLUG_BUS_SELECT, 0); /* any write clears the latch */
    cr_assert_eq(hotplug_read(machine, PCI_HOTPLUG_ACPI_INDEX), 0u);
    machine_destroy(machine);
}

Test(pci_hotplug, reset_removes_devices_with_pending_unplug)
{
    struct machine *machine = machine_create();
    machine->run_state = VM_RUN_STATE_RUNNING;
    struct test_device *leaving = plug_device(machine, "leaving", 2);
    plug_device(machine, "staying", 3);
    cr_assert_eq(pci_bus_request_unplug(machine->bus, &leaving->pci, NULL), 0);
    pci_bus_reset(machine->bus);
    cr_assert_null(pci_bus_find_by_id(machine->bus, "leaving"));
    cr_assert_not_null(pci_bus_find_by_id(machine->bus, "staying"));
    cr_assert_eq(machine->deleted_count, 1u);
    cr_assert_str_eq(machine->deleted_ids[0], "leaving");
    cr_assert_eq(hotplug_read(machine, PCI_HOTPLUG_DOWN), 0u);
    machine_destroy(machine);
}

Test(pci_hotplug, destroy_does_not_report_deletions)
{
    struct machine *machine = machine_create();
    plug_device(machine, "a", 1);
    plug_device(machine, "b", 2);
    pci_bus_destroy(machine->bus);
    machine->bus = NULL;
    cr_assert_eq(machine->destroyed, 2u);
    cr_assert_eq(machine->deleted_count, 0u);
    cr_assert_eq(machine->vm.io_bus.count, 0u, "ports 0xcf8 and 0xae00 were unregistered");
    io_bus_destroy(&machine->vm.io_bus);
    free(machine);
}

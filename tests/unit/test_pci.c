/* The PCI bus without KVM: a struct vm with only an io_bus, and a platform
 * table that records MSIs, IRQ line changes and reset requests. Guest
 * accesses go through the io_bus exactly as vCPU exits do. */
#include <criterion/criterion.h>
#include <sched.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "x86/irq_routing.h"
#include "pci/pci.h"
#include "pci/pci_msix.h"
#include "vm.h"

#define MAX_RECORDED 64

struct recorded_msi {
    uint64_t address;
    uint32_t data;
};

struct machine {
    struct vm vm; /* first: the platform callbacks cast back */
    struct pci_bus *bus;
    struct recorded_msi msis[MAX_RECORDED];
    unsigned msi_count;
    int irq_level[32];
    unsigned irq_changes;
    unsigned guest_resets;
    enum vm_run_state run_state;
};

static struct machine *machine_of(struct vm *vm)
{
    return (struct machine *)vm;
}

static int record_msi(struct vm *vm, uint64_t address, uint32_t data)
{
    struct machine *machine = machine_of(vm);
    if (machine->msi_count < MAX_RECORDED)
        machine->msis[machine->msi_count++] = (struct recorded_msi){address, data};
    return 0;
}

static int record_irq_line(struct vm *vm, unsigned gsi, int level)
{
    struct machine *machine = machine_of(vm);
    machine->irq_level[gsi] = level;
    machine->irq_changes++;
    return 0;
}

static void record_guest_reset(struct vm *vm)
{
    machine_of(vm)->guest_resets++;
}

static enum vm_run_state current_run_state(struct vm *vm)
{
    return machine_of(vm)->run_state;
}

static const struct pci_platform_ops test_platform = {
    .signal_msi = record_msi,
    .set_irq_line = record_irq_line,
    .request_guest_reset = record_guest_reset,
    .get_run_state = current_run_state,
};

static struct machine *machine_create(void)
{
    struct machine *machine = calloc(1, sizeof(*machine));
    cr_assert_not_null(machine);
    machine->vm.vm_fd = -1; /* no KVM: the routing table is kept but not pushed */
    machine->vm.kvm_fd = -1;
    cr_assert_eq(io_bus_init(&machine->vm.io_bus, NULL), 0);
    struct pv_error error = {0};
    machine->bus = pci_bus_create_with_platform(&machine->vm, &test_platform, NULL, &error);
    cr_assert_not_null(machine->bus, "%s", error.message);
    return machine;
}

static void machine_destroy(struct machine *machine)
{
    pci_bus_destroy(machine->bus);
    io_bus_destroy(&machine->vm.io_bus);
    free(machine);
}

/* ---- guest-side accessors ---- */

static uint32_t pio_read(struct machine *machine, uint16_t port, unsigned size)
{
    uint32_t value = 0;
    io_bus_access(&machine->vm.io_bus, IO_SPACE_PIO, port, &value, size, false);
    return value;
}

static void pio_write(struct machine *machine, uint16_t port, uint32_t value, unsigned size)
{
    io_bus_access(&machine->vm.io_bus, IO_SPACE_PIO, port, &value, size, true);
}

static uint32_t config_address(unsigned bus, unsigned slot, unsigned function, unsigned offset)
{
    return 0x80000000u | bus << 16 | slot << 11 | function << 8 | (offset & 0xfc);
}

static uint32_t config_read(struct machine *machine, unsigned slot, unsigned offset, unsigned size)
{
    pio_write(machine, 0xcf8, config_address(0, slot, 0, offset), 4);
    return pio_read(machine, (uint16_t)(0xcfc + (offset & 3)), size);
}

static void config_write(struct machine *machine, unsigned slot, unsigned offset, uint32_t value,
                         unsigned size)
{
    pio_write(machine, 0xcf8, config_address(0, slot, 0, offset), 4);
    pio_write(machine, (uint16_t)(0xcfc + (offset & 3)), value, size);
}

static bool mmio_read32(struct machine *machine, uint64_t address, uint32_t *value)
{
    return io_bus_access(&machine->vm.io_bus, IO_SPACE_MMIO, address, value, 4, false);
}

static bool mmio_write32(struct machine *machine, uint64_t address, uint32_t value)
{
    return io_bus_access(&machine->vm.io_bus, IO_SPACE_MMIO, address, &value, 4, true);
}

/* ---- a test device: BAR0 I/O 0x40, BAR1 32-bit memory 0x1000 with MSI-X
 * (table at 0, PBA at 0x800), BAR2-3 64-bit memory 0x4000 ---- */

struct test_device {
    struct pci_device pci;
    uint64_t last_offset[PCI_BAR_COUNT];
    uint32_t last_value[PCI_BAR_COUNT];
    unsigned writes[PCI_BAR_COUNT];
    unsigned resets;
    unsigned msix_changes;
};

struct bar_handle {
    struct test_device *device;
    unsigned bar;
};

static void bar_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
    struct bar_handle *handle = opaque;
    if (pci_msix_access(&handle->device->pci, handle->bar, offset, data, size, false))
        return;
    uint32_t value = 0xb0000000u | handle->bar << 16 | (uint32_t)offset;
    memcpy(data, &value, size < 4 ? size : 4);
}

static void bar_write(void *opaque, uint64_t offset, const void *data, unsigned size)
{
    struct bar_handle *handle = opaque;
    if (pci_msix_access(&handle->device->pci, handle->bar, offset, (void *)data, size, true))
        return;
    handle->device->last_offset[handle->bar] = offset;
    handle->device->last_value[handle->bar] = 0;
    memcpy(&handle->device->last_value[handle->bar], data, size < 4 ? size : 4);
    handle->device->writes[handle->bar]++;
}

static const struct io_region_ops bar_ops = {.read = bar_read, .write = bar_write};

static void test_device_reset(struct pci_device *device)
{
    ((struct test_device *)device)->resets++;
}

static void test_device_msix_changed(struct pci_device *device)
{
    ((struct test_device *)device)->msix_changes++;
}

static void test_device_destroy(struct pci_device *device)
{
    free(device);
}

static const struct pci_device_ops test_device_ops = {
    .reset = test_device_reset,
    .msix_changed = test_device_msix_changed,
    .destroy = test_device_destroy,
};

static struct bar_handle handles[8][PCI_BAR_COUNT];

static struct test_device *test_device_create(unsigned handle_set, const char *id)
{
    struct test_device *device = calloc(1, sizeof(*device));
    cr_assert_not_null(device);
    pci_device_init(&device->pci, &test_device_ops, "test-pci", id, 0x1af4, 0x1042, 0x010000, 1,
                    0x1af4, 0x0042);
    for (unsigned bar = 0; bar < PCI_BAR_COUNT; bar++)
        handles[handle_set][bar] = (struct bar_handle){device, bar};
    struct pv_error error = {0};
    cr_assert_eq(pci_device_set_bar(&device->pci, 0, PCI_BAR_IO, 0x40, &bar_ops,
                                    &handles[handle_set][0], &error),
                 0, "%s", error.message);
    cr_assert_eq(pci_device_set_bar(&device->pci, 1, PCI_BAR_MEMORY32, 0x1000, &bar_ops,
                                    &handles[handle_set][1], &error),
                 0, "%s", error.message);
    cr_assert_eq(pci_device_set_bar(&device->pci, 2, PCI_BAR_MEMORY64, 0x4000, &bar_ops,
                                    &handles[handle_set][2], &error),
                 0, "%s", error.message);
    return device;
}

static void plug(struct machine *machine, struct test_device *device, int slot)
{
    struct pv_error error = {0};
    cr_assert_eq(pci_bus_plug(machine->bus, &device->pci, slot, &error), 0, "%s", error.message);
}

/* ---- tests ---- */

Test(pci, host_bridge_through_config_mechanism_1)
{
    struct machine *machine = machine_create();
    cr_assert_eq(config_read(machine, 0, 0x00, 4), 0x12378086u);
    cr_assert_eq(config_read(machine, 0, 0x02, 2), 0x1237u);
    cr_assert_eq(config_read(machine, 0, 0x08, 4), 0x06000002u); /* class 0600, rev 2 */
    cr_assert_eq(config_read(machine, 0, 0x0e, 1), 0x00u);
    cr_assert_eq(config_read(machine, 0, 0x2c, 4), 0x11001af4u);
    /* CONFIG_ADDRESS reads back the latched value. */
    cr_assert_eq(pio_read(machine, 0xcf8, 4), config_address(0, 0, 0, 0x2c));
    /* Without the enable bit, other functions or other buses: no device. */
    pio_write(machine, 0xcf8, 0x00000000, 4);
    cr_assert_eq(pio_read(machine, 0xcfc, 4), 0xffffffffu);
    pio_write(machine, 0xcf8, config_address(0, 0, 1, 0), 4);
    cr_assert_eq(pio_read(machine, 0xcfc, 4), 0xffffffffu);
    pio_write(machine, 0xcf8, config_address(1, 0, 0, 0), 4);
    cr_assert_eq(pio_read(machine, 0xcfc, 4), 0xffffffffu);
    /* The host bridge is read-only. */
    config_write(machine, 0, 0x04, 0x7, 2);
    cr_assert_eq(config_read(machine, 0, 0x04, 2), 0u);
    cr_assert_eq(pci_bus_get_slot(machine->bus, 0)->config[0], 0x86);
    machine_destroy(machine);
}

Test(pci, empty_slots_read_all_ones)
{
    struct machine *machine = machine_create();
    for (unsigned slot = 1; slot < 32; slot++) {
        cr_assert_eq(config_read(machine, slot, 0x00, 4), 0xffffffffu);
        cr_assert_eq(config_read(machine, slot, 0x0e, 1), 0xffu);
    }
    machine_destroy(machine);
}

Test(pci, device_identity_and_interrupt_line)
{
    struct machine *machine = machine_create();
    struct test_device *first = test_device_create(0, "disk0");
    struct test_device *third = test_device_create(1, "disk1");
    plug(machine, first, 1);
    plug(machine, third, 3);
    cr_assert_eq(config_read(machine, 1, 0x00, 4), 0x10421af4u);
    cr_assert_eq(config_read(machine, 1, 0x08, 4), 0x01000001u);
    cr_assert_eq(config_read(machine, 1, 0x2c, 4), 0x00421af4u);
    cr_assert_eq(config_read(machine, 1, PCI_INTERRUPT_PIN, 1), 1u);
    /* i440fx PIRQ swizzle: slot 1 -> PIRQA -> 10, slot 3 -> PIRQC -> 11. */
    cr_assert_eq(config_read(machine, 1, PCI_INTERRUPT_LINE, 1), 10u);
    cr_assert_eq(config_read(machine, 3, PCI_INTERRUPT_LINE, 1), 11u);
    cr_assert_eq(pci_intx_gsi(2), 10u);
    cr_assert_eq(pci_intx_gsi(4), 11u);
    cr_assert_eq(pci_intx_gsi(5), 10u);
    machine_destroy(machine);
}

Test(pci, bar_sizing)
{
    struct machine *machine = machine_create();
    struct test_device *device = test_device_create(0, "d");
    struct pv_error error = {0};
    /* BAR4-5: a 64-bit BAR larger than 4 GiB. */
    cr_assert_eq(pci_device_set_bar(&device->pci, 4, PCI_BAR_MEMORY64, 0x200000000ULL, &bar_ops,
                                    &handles[0][4], &error),
                 0);
    plug(machine, device, 2);
    cr_assert_eq(config_read(machine, 2, 0x10, 4), 0x1u); /* I/O */
    cr_assert_eq(config_read(machine, 2, 0x18, 4), 0x4u); /* 64-bit memory */

    for (unsigned offset = 0x10; offset < 0x28; offset += 4)
        config_write(machine, 2, offset, 0xffffffffu, 4);
    cr_assert_eq(config_read(machine, 2, 0x10, 4), 0xffffffc1u);
    cr_assert_eq(config_read(machine, 2, 0x14, 4), 0xfffff000u);
    cr_assert_eq(config_read(machine, 2, 0x18, 4), 0xffffc004u);
    cr_assert_eq(config_read(machine, 2, 0x1c, 4), 0xffffffffu);
    cr_assert_eq(config_read(machine, 2, 0x20, 4), 0x00000004u);
    cr_assert_eq(config_read(machine, 2, 0x24, 4), 0xfffffffeu);
    machine_destroy(machine);
}

Test(pci, bar_set_rejects_overlap_and_bad_index)
{
    struct test_device *device = test_device_create(0, "d");
    struct pv_error error = {0};
    cr_assert_eq(pci_device_set_bar(&device->pci, 3, PCI_BAR_IO, 4, &bar_ops, NULL, &error),
                 -EEXIST); /* upper half of BAR2 */
    cr_assert_eq(pci_device_set_bar(&device->pci, 5, PCI_BAR_MEMORY64, 16, &bar_ops, NULL, &error),
                 -EINVAL);
    cr_assert_eq(pci_device_set_bar(&device->pci, 6, PCI_BAR_IO, 4, &bar_ops, NULL, &error),
                 -EINVAL);
    free(device);
}

Test(pci, bar_placement_moves_the_io_bus_region)
{
    struct machine *machine = machine_create();
    struct test_device *device = test_device_create(0, "d");
    plug(machine, device, 4);
    uint32_t value = 0;

    config_write(machine, 4, 0x14, 0xc0000000u, 4);
    /* Decoding is off: nothing mapped yet. */
    cr_assert_not(mmio_read32(machine, 0xc0000010, &value));
    config_write(machine, 4, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO, 2);
    cr_assert(mmio_read32(machine, 0xc0000010, &value));
    cr_assert_eq(value, 0xb0010010u);
    cr_assert(mmio_write32(machine, 0xc0000024, 0x1234));
    cr_assert_eq(device->last_offset[1], 0x24u);
    cr_assert_eq(device->last_value[1], 0x1234u);
    uint64_t address = 0;
    cr_assert(pci_device_get_bar_mapping(&device->pci, 1, &address));
    cr_assert_eq(address, 0xc0000000u);

    /* Moving the BAR moves the region. */
    config_write(machine, 4, 0x14, 0xc0100000u, 4);
    cr_assert_not(mmio_read32(machine, 0xc0000010, &value));
    cr_assert(mmio_read32(machine, 0xc0100010, &value));
    cr_assert_eq(value, 0xb0010010u);

    /* 64-bit BAR above 4 GiB: each dword write applies at once. */
    config_write(machine, 4, 0x1c, 0x00000001u, 4);
    cr_assert(mmio_read32(machine, 0x100000008ULL, &value));
    config_write(machine, 4, 0x18, 0x40000000u, 4);
    cr_assert_not(mmio_read32(machine, 0x100000008ULL, &value));
    cr_assert(mmio_read32(machine, 0x140000008ULL, &value));
    cr_assert_eq(value, 0xb0020008u);
    cr_assert(pci_device_get_bar_mapping(&device->pci, 2, &address));
    cr_assert_eq(address, 0x140000000ULL);

    /* I/O BAR. */
    config_write(machine, 4, 0x10, 0xc040u, 4);
    cr_assert_eq(config_read(machine, 4, 0x10, 4), 0xc041u);
    cr_assert_eq(pio_read(machine, 0xc044, 4), 0xb0000004u);

    /* Turning memory decoding off unmaps the memory BARs only. */
    config_write(machine, 4, PCI_COMMAND, PCI_COMMAND_IO, 2);
    cr_assert_not(mmio_read32(machine, 0xc0100010, &value));
    cr_assert_not(mmio_read32(machine, 0x140000008ULL, &value));
    cr_assert_eq(pio_read(machine, 0xc044, 4), 0xb0000004u);
    cr_assert_not(pci_device_get_bar_mapping(&device->pci, 1, NULL));
    config_write(machine, 4, PCI_COMMAND, 0, 2);
    cr_assert_eq(pio_read(machine, 0xc044, 4), 0xffffffffu);
    machine_destroy(machine);
}

Test(pci, sizing_with_decoding_on_does_not_map_at_the_sizing_value)
{
    struct machine *machine = machine_create();
    struct test_device *device = test_device_create(0, "d");
    plug(machine, device, 1);
    uint32_t value;
    config_write(machine, 1, 0x14, 0xc0000000u, 4);
    config_write(machine, 1, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
    cr_assert(mmio_read32(machine, 0xc0000000, &value));
    config_write(machine, 1, 0x14, 0xffffffffu, 4);
    cr_assert_not(pci_device_get_bar_mapping(&device->pci, 1, NULL));
    cr_assert_not(mmio_read32(machine, 0xfffff000u, &value));
    config_write(machine, 1, 0x14, 0xc0000000u, 4);
    cr_assert(mmio_read32(machine, 0xc0000000, &value));
    machine_destroy(machine);
}

Test(pci, capability_chain)
{
    struct machine *machine = machine_create();
    struct test_device *device = test_device_create(0, "d");
    struct pv_error error = {0};
    int vendor = pci_device_add_capability(&device->pci, PCI_CAP_ID_VENDOR, 14, &error);
    cr_assert_eq(vendor, 0x40);
    cr_assert_eq(pci_device_init_msix(&device->pci, 4, 1, 0, 0x800, &error), 0, "%s",
                 error.message);
    int second_vendor = pci_device_add_capability(&device->pci, PCI_CAP_ID_VENDOR, 16, &error);
    plug(machine, device, 1);

    cr_assert(config_read(machine, 1, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
    unsigned offset = config_read(machine, 1, PCI_CAPABILITY_LIST, 1);
    unsigned ids[4], offsets[4], count = 0;
    while (offset && count < 4) {
        offsets[count] = offset;
        ids[count++] = config_read(machine, 1, offset, 1);
        offset = config_read(machine, 1, offset + 1, 1);
    }
    cr_assert_eq(count, 3);
    cr_assert_eq(ids[0], PCI_CAP_ID_VENDOR);
    cr_assert_eq(ids[1], PCI_CAP_ID_MSIX);
    cr_assert_eq(ids[2], PCI_CAP_ID_VENDOR);
    cr_assert_eq(offsets[1] % 4, 0u);
    cr_assert_eq(offsets[1], 0x50u); /* 0x40 + 14, aligned */
    cr_assert_eq((int)offsets[2], second_vendor);
    /* MSI-X: table size N-1, table and PBA in BAR1. */
    cr_assert_eq(config_read(machine, 1, offsets[1] + 2, 2), 3u);
    cr_assert_eq(config_read(machine, 1, offsets[1] + 4, 4), 0x1u);
    cr_assert_eq(config_read(machine, 1, offsets[1] + 8, 4), 0x801u);
    /* Capability bodies are read-only unless the model says otherwise. */
    config_write(machine, 1, 0x44, 0xffffffffu, 4);
    cr_assert_eq(config_read(machine, 1, 0x44, 4), 0u);
    machine_destroy(machine);
}

/* Plugs a device with 4 MSI-X vectors; BAR1 at 0xc0000000 with memory decoding on. */
static struct test_device *msix_device(struct machine *machine, unsigned *capability)
{
    struct test_device *device = test_device_create(0, "net0");
    struct pv_error error = {0};
    cr_assert_eq(pci_device_init_msix(&device->pci, 4, 1, 0, 0x800, &error), 0, "%s",
                 error.message);
    *capability = device->pci.msix.capability_offset;
    plug(machine, device, 1);
    config_write(machine, 1, 0x14, 0xc0000000u, 4);
    config_write(machine, 1, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
    return device;
}

static void program_vector(struct machine *machine, unsigned vector, uint32_t data)
{
    uint64_t entry = 0xc0000000u + vector * 16;
    cr_assert(mmio_write32(machine, entry + 0, 0xfee00000u));
    cr_assert(mmio_write32(machine, entry + 4, 0));
    cr_assert(mmio_write32(machine, entry + 8, data));
}

static uint32_t read_pba(struct machine *machine)
{
    uint32_t value = 0;
    cr_assert(mmio_read32(machine, 0xc0000800u, &value));
    return value;
}

Test(pci, msix_masking_and_pending_bits)
{
    struct machine *machine = machine_create();
    unsigned capability;
    struct test_device *device = msix_device(machine, &capability);
    uint32_t value;

    /* Vectors start masked. */
    cr_assert(mmio_read32(machine, 0xc000000c, &value));
    cr_assert_eq(value, 1u);
    program_vector(machine, 0, 0x41);
    cr_assert(mmio_read32(machine, 0xc0000008, &value));
    cr_assert_eq(value, 0x41u);

    /* Disabled: notifications are dropped, not pending. */
    pci_msix_notify(&device->pci, 0);
    cr_assert_eq(machine->msi_count, 0u);
    cr_assert_eq(read_pba(machine), 0u);

    config_write(machine, 1, capability + 2, PCI_MSIX_FLAGS_ENABLE, 2);
    cr_assert(device->pci.msix.enabled);
    cr_assert_eq(device->msix_changes, 1u);
    /* Enabled but the entry is masked: pending. */
    pci_msix_notify(&device->pci, 0);
    cr_assert_eq(machine->msi_count, 0u);
    cr_assert_eq(read_pba(machine), 1u);
    /* Unmasking delivers the pending message and clears the bit. */
    cr_assert(mmio_write32(machine, 0xc000000c, 0));
    cr_assert_eq(machine->msi_count, 1u);
    cr_assert_eq(machine->msis[0].address, 0xfee00000u);
    cr_assert_eq(machine->msis[0].data, 0x41u);
    cr_assert_eq(read_pba(machine), 0u);
    /* Unmasked: delivered at once. */
    pci_msix_notify(&device->pci, 0);
    cr_assert_eq(machine->msi_count, 2u);

    /* Function mask holds every vector. */
    config_write(machine, 1, capability + 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL, 2);
    pci_msix_notify(&device->pci, 0);
    cr_assert_eq(machine->msi_count, 2u);
    cr_assert_eq(read_pba(machine), 1u);
    config_write(machine, 1, capability + 2, PCI_MSIX_FLAGS_ENABLE, 2);
    cr_assert_eq(machine->msi_count, 3u);
    cr_assert_eq(read_pba(machine), 0u);

    /* Reserved vector-control bits read as 0; the PBA ignores writes. */
    cr_assert(mmio_write32(machine, 0xc000001c, 0xfffffffe));
    cr_assert(mmio_read32(machine, 0xc000001c, &value));
    cr_assert_eq(value, 0u);
    pci_msix_notify(&device->pci, 2); /* masked */
    cr_assert(mmio_write32(machine, 0xc0000800u, 0));
    cr_assert_eq(read_pba(machine), 4u);
    /* Table accesses never reach the model. */
    cr_assert_eq(device->writes[1], 0u);
    machine_destroy(machine);
}

Test(pci, msix_enabled_disables_intx)
{
    struct machine *machine = machine_create();
    unsigned capability;
    struct test_device *device = msix_device(machine, &capability);
    pci_set_intx(&device->pci, true);
    cr_assert_eq(machine->irq_level[10], 1);
    config_write(machine, 1, capability + 2, PCI_MSIX_FLAGS_ENABLE, 2);
    cr_assert_eq(machine->irq_level[10], 0);
    config_write(machine, 1, capability + 2, 0, 2);
    cr_assert_eq(machine->irq_level[10], 1);
    machine_destroy(machine);
}

Test(pci, msix_vector_eventfd_routes_and_collects_pending)
{
    struct machine *machine = machine_create();
    unsigned capability;
    struct test_device *device = msix_device(machine, &capability);
    struct irq_routing *routing = pci_bus_get_irq_routing(machine->bus);
    /* The default irqchip routes: 16 GSIs on PIC + IOAPIC, 8 on the IOAPIC only. */
    cr_assert_eq(irq_routing_entry_count(routing), 40u);
    cr_assert_eq(pci_msix_vector_eventfd(&device->pci, 4), -1);

    program_vector(machine, 1, 0x51);
    int fd = pci_msix_vector_eventfd(&device->pci, 1);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pci_msix_vector_eventfd(&device->pci, 1), fd); /* stable */
    int gsi = device->pci.msix.gsi[1];
    cr_assert_geq(gsi, 24);
    cr_assert_eq(irq_routing_entry_count(routing), 41u);
    cr_assert_not(device->pci.msix.irqfd_attached[1]);

    config_write(machine, 1, capability + 2, PCI_MSIX_FLAGS_ENABLE, 2);
    /* Masked: a write to the eventfd becomes a pending bit. */
    uint64_t one = 1;
    cr_assert_eq(write(fd, &one, sizeof(one)), (ssize_t)sizeof(one));
    cr_assert_eq(read_pba(machine), 2u);
    /* Unmask: the route carries the vector's message, KVM takes the irqfd over,
     * and the pending message is sent. */
    cr_assert(mmio_write32(machine, 0xc000001c, 0));
    cr_assert(device->pci.msix.irqfd_attached[1]);
    uint64_t address;
    uint32_t data;
    cr_assert(irq_routing_get_msi(routing, (unsigned)gsi, &address, &data));
    cr_assert_eq(address, 0xfee00000u);
    cr_assert_eq(data, 0x51u);
    cr_assert_eq(machine->msi_count, 1u);
    cr_assert_eq(machine->msis[0].data, 0x51u);
    cr_assert_eq(read_pba(machine), 0u);
    /* A new message while unmasked updates the route. */
    cr_assert(mmio_write32(machine, 0xc0000018, 0x52));
    cr_assert(irq_routing_get_msi(routing, (unsigned)gsi, &address, &data));
    cr_assert_eq(data, 0x52u);
    /* Masking detaches the irqfd again. */
    cr_assert(mmio_write32(machine, 0xc000001c, 1));
    cr_assert_not(device->pci.msix.irqfd_attached[1]);

    /* Writes while MSI-X is disabled are dropped. */
    config_write(machine, 1, capability + 2, 0, 2);
    cr_assert_eq(write(fd, &one, sizeof(one)), (ssize_t)sizeof(one));
    config_write(machine, 1, capability + 2, PCI_MSIX_FLAGS_ENABLE, 2);
    cr_assert_eq(read_pba(machine), 0u);
    machine_destroy(machine);
}

Test(pci, msix_route_released_on_removal)
{
    struct machine *machine = machine_create();
    struct irq_routing *routing = irq_routing_create(-1, NULL);
    cr_assert_not_null(routing);
    pci_bus_destroy(machine->bus);
    machine->bus = pci_bus_create_with_platform(&machine->vm, &test_platform, routing, NULL);
    cr_assert_not_null(machine->bus);
    unsigned capability;
    struct test_device *device = msix_device(machine, &capability);
    cr_assert_geq(pci_msix_vector_eventfd(&device->pci, 0), 0);
    cr_assert_geq(pci_msix_vector_eventfd(&device->pci, 3), 0);
    cr_assert_eq(irq_routing_entry_count(routing), 42u);
    pci_bus_destroy(machine->bus); /* removes the device */
    machine->bus = NULL;
    cr_assert_eq(irq_routing_entry_count(routing), 40u);
    irq_routing_destroy(routing);
    io_bus_destroy(&machine->vm.io_bus);
    free(machine);
}

Test(pci, intx_lines_are_shared_and_can_be_disabled)
{
    struct machine *machine = machine_create();
    struct test_device *first = test_device_create(0, "a");
    struct test_device *fifth = test_device_create(1, "b");
    plug(machine, first, 1); /* GSI 10 */
    plug(machine, fifth, 5); /* GSI 10 too */
    pci_set_intx(&first->pci, true);
    cr_assert_eq(machine->irq_level[10], 1);
    cr_assert(config_read(machine, 1, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
    pci_set_intx(&fifth->pci, true);
    pci_set_intx(&first->pci, false);
    cr_assert_eq(machine->irq_level[10], 1, "the line stays up while one device asserts it");
    pci_set_intx(&fifth->pci, false);
    cr_assert_eq(machine->irq_level[10], 0);
    cr_assert_not(config_read(machine, 1, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);

    /* COMMAND.INTX_DISABLE masks the line but not the status bit. */
    config_write(machine, 5, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, 2);
    pci_set_intx(&fifth->pci, true);
    cr_assert_eq(machine->irq_level[10], 0);
    cr_assert(config_read(machine, 5, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
    config_write(machine, 5, PCI_COMMAND, 0, 2);
    cr_assert_eq(machine->irq_level[10], 1);
    machine_destroy(machine);
}

Test(pci, slot_allocation_and_errors)
{
    struct machine *machine = machine_create();
    struct test_device *devices[32];
    struct pv_error error = {0};
    devices[0] = test_device_create(0, "first");
    plug(machine, devices[0], -1);
    cr_assert_eq(devices[0]->pci.slot, 1);
    devices[1] = test_device_create(1, "five");
    plug(machine, devices[1], 5);
    devices[2] = test_device_create(2, "second");
    plug(machine, devices[2], -1);
    cr_assert_eq(devices[2]->pci.slot, 2);

    struct test_device *clash = test_device_create(3, "clash");
    cr_assert_eq(pci_bus_plug(machine->bus, &clash->pci, 5, &error), -EBUSY);
    cr_assert_str_eq(error.message, "PCI slot 0x5 is in use by device 'five'");
    cr_assert_eq(pci_bus_plug(machine->bus, &clash->pci, 0, &error), -EINVAL);
    cr_assert_str_eq(error.message, "PCI slot must be between 1 and 31");
    cr_assert_eq(pci_bus_plug(machine->bus, &clash->pci, 32, &error), -EINVAL);
    cr_assert_str_eq(error.message, "PCI slot must be between 1 and 31");
    struct test_device *duplicate = test_device_create(4, "five");
    cr_assert_eq(pci_bus_plug(machine->bus, &duplicate->pci, -1, &error), -EEXIST);
    cr_assert_str_eq(error.message, "Duplicate device ID 'five'");
    free(duplicate);

    cr_assert_eq(pci_bus_find_by_id(machine->bus, "five"), &devices[1]->pci);
    cr_assert_null(pci_bus_find_by_id(machine->bus, "none"));
    cr_assert_null(pci_bus_find_by_id(machine->bus, ""));
    cr_assert_eq(pci_bus_get_slot(machine->bus, 2), &devices[2]->pci);

    /* Fill the rest: slots 3, 4, 6..31, then the bus is full. */
    unsigned plugged = 0;
    for (unsigned i = 0; i < 28; i++) {
        struct test_device *device = test_device_create(5, NULL);
        plug(machine, device, -1);
        plugged++;
    }
    cr_assert_eq(plugged, 28u);
    cr_assert_eq(pci_bus_plug(machine->bus, &clash->pci, -1, &error), -ENOSPC);
    cr_assert_str_eq(error.message,
                     "PCI: no slot/function available for test-pci, all in use or reserved");
    free(clash);
    machine_destroy(machine);
}

Test(pci, reset_control_register_at_0xcf9)
{
    struct machine *machine = machine_create();
    /* Bit 1 alone is remembered, not acted on. */
    pio_write(machine, 0xcf9, 0x02, 1);
    cr_assert_eq(machine->guest_resets, 0u);
    cr_assert_eq(pio_read(machine, 0xcf9, 1), 0x02u);
    /* Bit 2 resets (the FADT RESET_VALUE is 6). */
    pio_write(machine, 0xcf9, 0x06, 1);
    cr_assert_eq(machine->guest_resets, 1u);
    pio_write(machine, 0xcf9, 0x04, 1);
    cr_assert_eq(machine->guest_resets, 2u);
    /* 0xcf8 keeps working as CONFIG_ADDRESS, and a dword write there is not a reset. */
    pio_write(machine, 0xcf8, 0x80000400u, 4);
    cr_assert_eq(machine->guest_resets, 2u);
    cr_assert_eq(pio_read(machine, 0xcf8, 4), 0x80000400u);
    machine_destroy(machine);
}

Test(pci, bus_reset_restores_power_on_state)
{
    struct machine *machine = machine_create();
    unsigned capability;
    struct test_device *device = msix_device(machine, &capability);
    config_write(machine, 1, capability + 2, PCI_MSIX_FLAGS_ENABLE, 2);
    config_write(machine, 1, PCI_INTERRUPT_LINE, 5, 1);
    uint32_t value;
    cr_assert(mmio_read32(machine, 0xc0000010, &value));

    pci_bus_reset(machine->bus);
    cr_assert_eq(device->resets, 1u);
    cr_assert_eq(config_read(machine, 1, PCI_COMMAND, 2), 0u);
    cr_assert_eq(config_read(machine, 1, 0x14, 4), 0u);
    cr_assert_eq(config_read(machine, 1, capability + 2, 2), 3u);
    cr_assert_eq(config_read(machine, 1, PCI_INTERRUPT_LINE, 1), 10u);
    cr_assert_not(device->pci.msix.enabled);
    cr_assert_not(mmio_read32(machine, 0xc0000010, &value));
    cr_assert_eq(config_read(machine, 1, 0x00, 4), 0x10421af4u);
    machine_destroy(machine);
}

/* With /dev/kvm: KVM accepts the rebuilt table (default irqchip routes plus
 * MSI routes) and irqfds on it, and IOAPIC lines still work afterwards. */
Test(irq_routing, kvm_accepts_the_rebuilt_table)
{
    int kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm_fd < 0)
        cr_skip_test("no /dev/kvm");
    int vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
    cr_assert_geq(vm_fd, 0);
    cr_assert_eq(ioctl(vm_fd, KVM_CREATE_IRQCHIP, 0), 0);
    struct pv_error error = {0};
    struct irq_routing *routing = irq_routing_create(vm_fd, &error);
    cr_assert_not_null(routing, "%s", error.message);
    int gsi = irq_routing_add_msi(routing, 0xfee00000u, 0x41, &error);
    cr_assert_geq(gsi, 24, "%s", error.message);
    int second = irq_routing_add_msi(routing, 0xfee00000u, 0x42, &error);
    cr_assert_eq(second, gsi + 1);
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    cr_assert_eq(irq_routing_irqfd_assign(routing, fd, (unsigned)gsi, &error), 0, "%s",
                 error.message);
    cr_assert_eq(irq_routing_update_msi(routing, (unsigned)gsi, 0xfee00000u, 0x43, &error), 0, "%s",
                 error.message);
    cr_assert_eq(irq_routing_irqfd_deassign(routing, fd, (unsigned)gsi), 0);
    cr_assert_eq(irq_routing_remove(routing, (unsigned)gsi), 0);
    /* The freed GSI is reused. */
    cr_assert_eq(irq_routing_add_msi(routing, 0xfee00000u, 0x44, &error), gsi);
    struct kvm_irq_level line = {.irq = 10, .level = 1};
    cr_assert_geq(ioctl(vm_fd, KVM_IRQ_LINE, &line), 0);
    irq_routing_destroy(routing);
    close(fd);
    close(vm_fd);
    close(kvm_fd);
}

struct mover_race {
    struct machine *machine;
    bool stop, started;      /* atomic */
    unsigned claimed, wrong; /* atomic */
};

static void *access_bar_in_loop(void *arg)
{
    struct mover_race *race = arg;
    while (!__atomic_load_n(&race->stop, __ATOMIC_SEQ_CST)) {
        for (uint64_t base = 0xc0000000u; base <= 0xc0100000u; base += 0x100000) {
            uint32_t value = 0;
            if (mmio_read32(race->machine, base + 0x10, &value)) {
                __atomic_add_fetch(&race->claimed, 1, __ATOMIC_SEQ_CST);
                if (value != 0xb0010010u)
                    __atomic_add_fetch(&race->wrong, 1, __ATOMIC_SEQ_CST);
            }
        }
        __atomic_store_n(&race->started, true, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

/* The rule pci.h documents: a BAR may move while another vCPU accesses it; an
 * access either misses or reaches the same live device at the right offset. */
Test(pci, bar_moves_while_another_vcpu_accesses_it)
{
    struct machine *machine = machine_create();
    struct test_device *device = test_device_create(0, "d");
    plug(machine, device, 1);
    config_write(machine, 1, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
    struct mover_race race = {.machine = machine};
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, access_bar_in_loop, &race), 0);
    /* On a loaded 2-CPU host (or under ASan) the accessor may not run at all during 20000
     * moves: wait until it runs, then keep moving until it has hit the BAR often while it
     * moves (bounded by a deadline). */
    while (!__atomic_load_n(&race.started, __ATOMIC_SEQ_CST))
        sched_yield();
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    time_t deadline = now.tv_sec + 60;
    for (unsigned i = 0;
         i < 20000 || (__atomic_load_n(&race.claimed, __ATOMIC_SEQ_CST) < 1000 &&
                       (clock_gettime(CLOCK_MONOTONIC, &now), now.tv_sec < deadline));
         i++) {
        uint32_t address = i % 2 ? 0xc0000000u : 0xc0100000u;
        pio_write(machine, 0xcf8, config_address(0, 1, 0, 0x14), 4);
        pio_write(machine, 0xcfc, address, 4);
    }
    __atomic_store_n(&race.stop, true, __ATOMIC_SEQ_CST);
    pthread_join(thread, NULL);
    cr_assert_geq(race.claimed, 1000u, "the accessing thread hardly ran");
    cr_assert_eq(race.wrong, 0u);
    machine_destroy(machine);
}

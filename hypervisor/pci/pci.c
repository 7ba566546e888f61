#include "pci/pci.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "acpi/acpi_pm.h"
#include "x86/irq_routing.h"
#include "pci/pci_hotplug.h"
#include "pci/pci_msix.h"
#include "pv_log.h"

#define PCI_BAR_UNMAPPED UINT64_MAX
#define PCI_CLASS_BRIDGE_HOST 0x060000
/* A repeated device_del is accepted once the previous request is this old (QEMU: 1 ms). */
#define PCI_UNPLUG_REQUEST_EXPIRY_MS 1

/* The hotplug controller keeps one bit per slot of this bus. */
_Static_assert(PCI_SLOT_COUNT == PCI_HOTPLUG_SLOTS, "hotplug bitmaps cover the bus");

struct pci_bus {
    struct vm *vm;
    const struct pci_platform_ops *platform;
    struct irq_routing *routing;
    bool owns_routing;
    bool host_ports_registered;
    struct pci_hotplug *hotplug;
    pci_unplug_callback unplug_callback;
    void *unplug_opaque;

    /* slots, generations, CONFIG_ADDRESS and the reset control register.
     * Lock order: bus->lock, then a device's config_lock (pci_bus_plug only). */
    pthread_mutex_t lock;
    struct pci_device *slots[PCI_SLOT_COUNT];
    uint32_t slot_generation[PCI_SLOT_COUNT];
    uint32_t config_address;
    uint8_t reset_control;

    /* Devices asserting INTx per GSI: the IOAPIC line is their OR. */
    pthread_mutex_t intx_lock;
    unsigned intx_count[2];

    struct pci_device host_bridge;
};

static bool ranges_overlap(unsigned offset_a, unsigned size_a, unsigned offset_b, unsigned size_b)
{
    return offset_a < offset_b + size_b && offset_b < offset_a + size_a;
}

static int64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* ---- the default platform: the real VM ---------------------------------- */

static void kvm_raise_gpe(struct vm *vm, unsigned bit)
{
    if (vm->acpi_pm)
        acpi_pm_raise_gpe(vm->acpi_pm, bit);
}

const struct pci_platform_ops pci_platform_kvm = {
    .signal_msi = vm_signal_msi,
    .set_irq_line = vm_set_irq_line,
    .call_on_main = vm_call_on_main,
    .quiesce = vm_quiesce,
    .unquiesce = vm_unquiesce,
    .request_guest_reset = vm_request_guest_reset,
    .get_run_state = vm_get_run_state,
    .raise_gpe = kvm_raise_gpe,
};

/* ---- BAR mapping ---------------------------------------------------------- */

/* Where the BAR should be mapped per COMMAND and its register, or
 * PCI_BAR_UNMAPPED, with QEMU's rules (pci_bar_address): address 0, a range
 * that wraps and a 32-bit BAR reaching 4 GiB (the all-ones sizing value) are
 * not mapped. */
static uint64_t bar_decoded_address(const struct pci_device *device, unsigned index)
{
    const struct pci_bar *bar = &device->bars[index];
    unsigned offset = PCI_BASE_ADDRESS_0 + 4 * index;
    uint64_t address = pci_config_read32(device, offset);
    if (bar->kind == PCI_BAR_MEMORY64)
        address |= (uint64_t)pci_config_read32(device, offset + 4) << 32;
    address &= ~(bar->size - 1);
    return address & (bar->kind == PCI_BAR_IO ? ~3ULL : ~0xfULL);
}

static uint64_t bar_target_address(const struct pci_device *device, unsigned index,
                                   uint64_t address)
{
    const struct pci_bar *bar = &device->bars[index];
    uint16_t command = pci_config_read16(device, PCI_COMMAND);
    bool decode =
        bar->kind == PCI_BAR_IO ? (command & PCI_COMMAND_IO) : (command & PCI_COMMAND_MEMORY);
    if (!decode || address == 0)
        return PCI_BAR_UNMAPPED;
    uint64_t last = address + bar->size - 1;
    if (last <= address || last == PCI_BAR_UNMAPPED)
        return PCI_BAR_UNMAPPED;
    if (bar->kind != PCI_BAR_MEMORY64 && last >= UINT32_MAX)
        return PCI_BAR_UNMAPPED;
    return address;
}

static enum io_space bar_space(const struct pci_bar *bar)
{
    return bar->kind == PCI_BAR_IO ? IO_SPACE_PIO : IO_SPACE_MMIO;
}

/* Brings the io_bus registrations in line with config space; returns a
 * bitmask of the BARs whose mapping changed. Caller holds config_lock. */
static unsigned update_bar_mappings_locked(struct pci_device *device)
{
    struct io_bus *io_bus = device->bus ? &pci_bus_get_vm(device->bus)->io_bus : NULL;
    unsigned changed = 0;
    for (unsigned index = 0; index < PCI_BAR_COUNT; index++) {
        struct pci_bar *bar = &device->bars[index];
        if (bar->kind == PCI_BAR_NONE)
            continue;
        uint64_t address = bar_decoded_address(device, index);
        uint64_t target = io_bus ? bar_target_address(device, index, address) : PCI_BAR_UNMAPPED;
        bool same = bar->mapped ? target == bar->address : target == PCI_BAR_UNMAPPED;
        if (same) {
            bar->address = address;
            if (bar->kind == PCI_BAR_MEMORY64)
                index++;
            continue;
        }
        if (bar->mapped) {
            io_bus_unregister(io_bus, bar_space(bar), bar->address);
            bar->mapped = false;
        }
        bar->address = address;
        if (target != PCI_BAR_UNMAPPED) {
            /* io_bus keeps 31 characters: "<id> BARn" with the id shortened. */
            char name[32];
            snprintf(name, sizeof(name), "%.24s BAR%u", device->id[0] ? device->id : device->driver,
                     index);
            struct pv_error error = {0};
            if (io_bus_register(io_bus, bar_space(bar), target, bar->size, bar->ops, bar->opaque,
                                name, &error) == 0)
                bar->mapped = true;
            else
                pv_log_warning("PCI %02x.0: BAR %u not mapped: %s", device->slot, index,
                               error.message);
        }
        changed |= 1u << index;
        if (bar->kind == PCI_BAR_MEMORY64)
            index++;
    }
    return changed;
}

/* ---- INTx ----------------------------------------------------------------- */

static void bus_intx_adjust(struct pci_bus *bus, unsigned gsi, bool assert_line)
{
    unsigned index = gsi == PCI_INTX_GSI_AB ? 0 : 1;
    pthread_mutex_lock(&bus->intx_lock);
    bool was_high = bus->intx_count[index] > 0;
    if (assert_line)
        bus->intx_count[index]++;
    else if (bus->intx_count[index] > 0)
        bus->intx_count[index]--;
    bool is_high = bus->intx_count[index] > 0;
    /* Under the lock so line changes reach KVM in the order they were counted. */
    if (was_high != is_high && bus->platform->set_irq_line)
        bus->platform->set_irq_line(bus->vm, gsi, is_high ? 1 : 0);
    pthread_mutex_unlock(&bus->intx_lock);
}

/* Caller holds config_lock. */
static void update_intx_locked(struct pci_device *device)
{
    bool want = device->intx_level && device->bus && device->slot > 0 &&
                device->config[PCI_INTERRUPT_PIN] != 0 &&
                !(pci_config_read16(device, PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE) &&
                !device->msix.enabled;
    if (want == device->intx_asserted)
        return;
    device->intx_asserted = want;
    bus_intx_adjust(device->bus, pci_intx_gsi((unsigned)device->slot), want);
}

void pci_set_intx(struct pci_device *device, bool level)
{
    pthread_mutex_lock(&device->config_lock);
    device->intx_level = level;
    uint16_t status = pci_config_read16(device, PCI_STATUS);
    status = level ? (status | PCI_STATUS_INTERRUPT) : (status & ~PCI_STATUS_INTERRUPT);
    pci_config_write16(device, PCI_STATUS, status);
    update_intx_locked(device);
    pthread_mutex_unlock(&device->config_lock);
}

/* ---- config space access ---------------------------------------------------- */

static uint32_t device_config_read(struct pci_device *device, unsigned offset, unsigned size)
{
    uint32_t value = 0;
    pthread_mutex_lock(&device->config_lock);
    for (unsigned i = 0; i < size; i++)
        value |= (uint32_t)device->config[offset + i] << (8 * i);
    pthread_mutex_unlock(&device->config_lock);
    return value;
}

static void device_config_write(struct pci_device *device, unsigned offset, unsigned size,
                                uint32_t value)
{
    pthread_mutex_lock(&device->config_lock);
    uint16_t old_command = pci_config_read16(device, PCI_COMMAND);
    bool touched = false;
    for (unsigned i = 0; i < size; i++) {
        uint8_t mask = device->config_writable[offset + i];
        uint8_t byte = (uint8_t)(value >> (8 * i));
        if (mask) {
            device->config[offset + i] =
                (uint8_t)((device->config[offset + i] & ~mask) | (byte & mask));
            touched = true;
        }
    }
    uint16_t command = pci_config_read16(device, PCI_COMMAND);
    unsigned remapped = 0;
    bool msix_changed = false;
    if (touched) {
        if (command != old_command ||
            ranges_overlap(offset, size, PCI_BASE_ADDRESS_0, 4 * PCI_BAR_COUNT))
            remapped = update_bar_mappings_locked(device);
        if (device->msix.vector_count &&
            ranges_overlap(offset, size, device->msix.capability_offset + PCI_MSIX_FLAGS, 2))
            msix_changed = pci_msix_control_update_locked(device);
        /* MSI-X on or off also switches INTx. */
        if (msix_changed || ((command ^ old_command) & PCI_COMMAND_INTX_DISABLE))
            update_intx_locked(device);
    }
    pthread_mutex_unlock(&device->config_lock);

    const struct pci_device_ops *ops = device->ops;
    if (!ops)
        return;
    for (unsigned index = 0; index < PCI_BAR_COUNT; index++)
        if ((remapped & (1u << index)) && ops->bar_remapped)
            ops->bar_remapped(device, index);
    if (msix_changed && ops->msix_changed)
        ops->msix_changed(device);
    if (ops->config_written)
        ops->config_written(device, offset, size);
}

/* The device CONFIG_ADDRESS selects, or NULL (no device, or another bus/function). */
static struct pci_device *selected_device(struct pci_bus *bus, uint32_t address)
{
    if (!(address & PCI_CONFIG_ADDRESS_ENABLE))
        return NULL;
    unsigned bus_number = (address >> 16) & 0xff;
    unsigned slot = (address >> 11) & 0x1f;
    unsigned function = (address >> 8) & 0x7;
    if (bus_number != 0 || function != 0)
        return NULL;
    pthread_mutex_lock(&bus->lock);
    struct pci_device *device = bus->slots[slot];
    pthread_mutex_unlock(&bus->lock);
    return device;
}

static void host_ports_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
    struct pci_bus *bus = opaque;
    uint32_t value = 0xffffffffu;
    pthread_mutex_lock(&bus->lock);
    uint32_t address = bus->config_address;
    if (offset == 0 && size == 4)
        value = address;
    else if (offset == PCI_RESET_CONTROL_PORT - PCI_CONFIG_ADDRESS_PORT && size == 1)
        value = bus->reset_control;
    pthread_mutex_unlock(&bus->lock);

    if (offset >= PCI_CONFIG_DATA_PORT - PCI_CONFIG_ADDRESS_PORT) {
        unsigned register_offset =
            (address & 0xfc) +
            (unsigned)(offset - (PCI_CONFIG_DATA_PORT - PCI_CONFIG_ADDRESS_PORT));
        /* Devices are only removed with the vCPUs quiesced, so the pointer stays valid. */
        struct pci_device *device = selected_device(bus, address);
        if (device && register_offset + size <= PCI_CONFIG_SPACE_SIZE)
            value = device_config_read(device, register_offset, size);
    }
    memcpy(data, &value, size <= 4 ? size : 4);
    if (size > 4)
        memset((uint8_t *)data + 4, 0xff, size - 4);
}

static void host_ports_write(void *opaque, uint64_t offset, const void *data, unsigned size)
{
    struct pci_bus *bus = opaque;
    uint32_t value = 0;
    memcpy(&value, data, size <= 4 ? size : 4);

    if (offset == 0 && size == 4) {
        pthread_mutex_lock(&bus->lock);
        bus->config_address = value;
        pthread_mutex_unlock(&bus->lock);
        return;
    }
    if (offset == PCI_RESET_CONTROL_PORT - PCI_CONFIG_ADDRESS_PORT && size == 1) {
        /* PIIX3 RCR: bit 2 resets now; bit 1 (hard reset) is only remembered. */
        if (value & PCI_RESET_CONTROL_SYSTEM_RESET) {
            if (bus->platform->request_guest_reset)
                bus->platform->request_guest_reset(bus->vm);
            return;
        }
        pthread_mutex_lock(&bus->lock);
        bus->reset_control = (uint8_t)(value & 0x02);
        pthread_mutex_unlock(&bus->lock);
        return;
    }
    if (offset >= PCI_CONFIG_DATA_PORT - PCI_CONFIG_ADDRESS_PORT && size <= 4) {
        pthread_mutex_lock(&bus->lock);
        uint32_t address = bus->config_address;
        pthread_mutex_unlock(&bus->lock);
        unsigned register_offset =
            (address & 0xfc) +
            (unsigned)(offset - (PCI_CONFIG_DATA_PORT - PCI_CONFIG_ADDRESS_PORT));
        struct pci_device *device = selected_device(bus, address);
        if (device && register_offset + size <= PCI_CONFIG_SPACE_SIZE)
            device_config_write(device, register_offset, size, value);
    }
}

static const struct io_region_ops host_port_ops = {
    .read = host_ports_read,
    .write = host_ports_write,
};

/* ---- the bus -------------------------------------------------------------- */

struct pci_bus *pci_bus_create(struct vm *vm, struct pv_error *error)
{
    return pci_bus_create_with_platform(vm, &pci_platform_kvm, NULL, error);
}

/* ---- the ACPI PCI hotplug controller's view of the bus ------------------- */

static uint32_t hotplug_acpi_index(void *opaque, unsigned slot)
{
    struct pci_device *device = pci_bus_get_slot(opaque, slot);
    return device ? device->acpi_index : 0;
}

static void hotplug_eject_slot(void *opaque, unsigned slot)
{
    pci_bus_eject_slot(opaque, slot);
}

static void hotplug_remove_slot(void *opaque, unsigned slot)
{
    pci_bus_remove_slot(opaque, slot);
}

static void hotplug_raise_gpe(void *opaque)
{
    struct pci_bus *bus = opaque;
    if (bus->platform->raise_gpe)
        bus->platform->raise_gpe(bus->vm, ACPI_GPE_PCI_HOTPLUG);
}

static const struct pci_hotplug_bus_ops bus_hotplug_ops = {
    .acpi_index = hotplug_acpi_index,
    .eject_slot = hotplug_eject_slot,
    .remove_slot = hotplug_remove_slot,
    .raise_gpe = hotplug_raise_gpe,
};

struct pci_bus *pci_bus_create_with_platform(struct vm *vm, const struct pci_platform_ops *platform,
                                             struct irq_routing *routing, struct pv_error *error)
{
    struct pci_bus *bus = calloc(1, sizeof(*bus));
    if (!bus) {
        pv_error_set(error, -ENOMEM, "out of memory creating the PCI bus");
        return NULL;
    }
    bus->vm = vm;
    bus->platform = platform;
    pthread_mutex_init(&bus->lock, NULL);
    pthread_mutex_init(&bus->intx_lock, NULL);
    if (routing) {
        bus->routing = routing;
    } else {
        bus->routing = irq_routing_create(vm->vm_fd, error);
        if (!bus->routing)
            goto fail;
        bus->owns_routing = true;
    }

    struct pci_device *host = &bus->host_bridge;
    pci_device_init(host, NULL, "i440FX-pcihost", "", PCI_HOST_BRIDGE_VENDOR_ID,
                    PCI_HOST_BRIDGE_DEVICE_ID, PCI_CLASS_BRIDGE_HOST, PCI_HOST_BRIDGE_REVISION,
                    PCI_DEFAULT_SUBSYSTEM_VENDOR_ID, PCI_DEFAULT_SUBSYSTEM_ID);
    /* Nothing of the host bridge is guest-writable: it has no BARs or interrupt. */
    memset(host->config_writable, 0, sizeof(host->config_writable));
    host->config[PCI_INTERRUPT_PIN] = 0;
    host->bus = bus;
    host->slot = 0;
    bus->slots[0] = host;

    if (io_bus_register(&vm->io_bus, IO_SPACE_PIO, PCI_CONFIG_ADDRESS_PORT, PCI_HOST_PORTS_LENGTH,
                        &host_port_ops, bus, "pci-host", error) < 0)
        goto fail;
    bus->host_ports_registered = true;
    bus->hotplug =
        pci_hotplug_create(&vm->io_bus, VM_PCI_HOTPLUG_BASE, &bus_hotplug_ops, bus, error);
    if (!bus->hotplug)
        goto fail;
    return bus;
fail:
    pci_bus_destroy(bus);
    return NULL;
}

struct vm *pci_bus_get_vm(struct pci_bus *bus)
{
    return bus->vm;
}

struct irq_routing *pci_bus_get_irq_routing(struct pci_bus *bus)
{
    return bus->routing;
}

void pci_bus_set_unplug_callback(struct pci_bus *bus, pci_unplug_callback callback, void *opaque)
{
    bus->unplug_callback = callback;
    bus->unplug_opaque = opaque;
}

struct pci_device *pci_bus_get_slot(struct pci_bus *bus, unsigned slot)
{
    if (slot >= PCI_SLOT_COUNT)
        return NULL;
    pthread_mutex_lock(&bus->lock);
    struct pci_device *device = bus->slots[slot];
    pthread_mutex_unlock(&bus->lock);
    return device;
}

struct pci_device *pci_bus_find_by_id(struct pci_bus *bus, const char *id)
{
    if (!id || !id[0])
        return NULL;
    struct pci_device *found = NULL;
    pthread_mutex_lock(&bus->lock);
    for (unsigned slot = PCI_FIRST_DEVICE_SLOT; slot < PCI_SLOT_COUNT && !found; slot++)
        if (bus->slots[slot] && strcmp(bus->slots[slot]->id, id) == 0)
            found = bus->slots[slot];
    pthread_mutex_unlock(&bus->lock);
    return found;
}

int pci_bus_plug(struct pci_bus *bus, struct pci_device *device, int slot, struct pv_error *error)
{
    if (slot != -1 && (slot < PCI_FIRST_DEVICE_SLOT || slot >= PCI_SLOT_COUNT))
        return pv_error_set(error, -EINVAL, "PCI slot must be between 1 and 31");
    if (device->bus)
        return pv_error_set(error, -EBUSY, "device '%s' is already plugged", device->id);
    if (device->id[0] && pci_bus_find_by_id(bus, device->id))
        return pv_error_set(error, -EEXIST, "Duplicate device ID '%s'", device->id);

    pthread_mutex_lock(&bus->lock);
    if (slot == -1) {
        for (unsigned candidate = PCI_FIRST_DEVICE_SLOT; candidate < PCI_SLOT_COUNT; candidate++)
            if (!bus->slots[candidate]) {
                slot = (int)candidate;
                break;
            }
        if (slot == -1) {
            pthread_mutex_unlock(&bus->lock);
            return pv_error_set(error, -ENOSPC,
                                "PCI: no slot/function available for %s, all in use or reserved",
                                device->driver);
        }
    } else if (bus->slots[slot]) {
        const struct pci_device *occupant = bus->slots[slot];
        pv_error_set(error, -EBUSY, "PCI slot 0x%x is in use by device '%s'", (unsigned)slot,
                     occupant->id[0] ? occupant->id : occupant->driver);
        pthread_mutex_unlock(&bus->lock);
        return -EBUSY;
    }
    /* Config space must answer before the guest hears about the device. */
    pthread_mutex_lock(&device->config_lock);
    device->bus = bus;
    device->msi = (struct pci_msi_target){
        .signal_msi = bus->platform->signal_msi,
        .vm = bus->vm,
        .routing = bus->routing,
    };
    device->slot = slot;
    device->unplug_requested = false;
    if (device->config[PCI_INTERRUPT_PIN])
        device->config[PCI_INTERRUPT_LINE] = (uint8_t)pci_intx_gsi((unsigned)slot);
    pthread_mutex_unlock(&device->config_lock);
    bus->slots[slot] = device;
    bus->slot_generation[slot]++;
    pthread_mutex_unlock(&bus->lock);

    device->hotplugged = bus->platform->get_run_state &&
                         bus->platform->get_run_state(bus->vm) != VM_RUN_STATE_PRELAUNCH;
    if (device->hotplugged)
        pci_hotplug_device_plugged(bus->hotplug, (unsigned)slot);
    return 0;
}

int pci_bus_request_unplug(struct pci_bus *bus, struct pci_device *device, struct pv_error *error)
{
    if (device->bus != bus || device->slot < PCI_FIRST_DEVICE_SLOT)
        return pv_error_set(error, -ENODEV, "Device '%s' is not on bus pci.0", device->id);
    bool running = bus->platform->get_run_state &&
                   bus->platform->get_run_state(bus->vm) == VM_RUN_STATE_RUNNING;
    int64_t now = monotonic_ms();
    if (device->unplug_requested) {
        /* QEMU lets a request expire after 1 ms of guest (virtual clock) time, so
         * a request lost before the guest enabled ACPI can be repeated. Our
         * stand-in for guest time: wall time while the VM was or is running. */
        bool guest_time_passed = now - device->unplug_request_ms >= PCI_UNPLUG_REQUEST_EXPIRY_MS &&
                                 (running || device->unplug_request_while_running);
        if (!guest_time_passed)
            return pv_error_set(error, -EBUSY, "Device %s is already in the process of unplug",
                                device->id);
    }
    device->unplug_requested = true;
    device->unplug_request_ms = now;
    device->unplug_request_while_running = running;
    pci_hotplug_request_unplug(bus->hotplug, (unsigned)device->slot);
    return 0;
}

/* Takes the device in `slot` off the bus and destroys it. Main thread. */
static void remove_slot(struct pci_bus *bus, unsigned slot, bool notify, bool quiesce)
{
    if (slot < PCI_FIRST_DEVICE_SLOT || slot >= PCI_SLOT_COUNT)
        return;
    pthread_mutex_lock(&bus->lock);
    struct pci_device *device = bus->slots[slot];
    pthread_mutex_unlock(&bus->lock);
    if (!device)
        return;

    if (quiesce && bus->platform->quiesce)
        bus->platform->quiesce(bus->vm);

    int fds[PCI_MSIX_MAX_VECTORS];
    unsigned fd_count;
    unsigned unmapped = 0;
    pthread_mutex_lock(&device->config_lock);
    struct io_bus *io_bus = &bus->vm->io_bus;
    for (unsigned index = 0; index < PCI_BAR_COUNT; index++) {
        struct pci_bar *bar = &device->bars[index];
        if (bar->mapped) {
            io_bus_unregister(io_bus, bar_space(bar), bar->address);
            bar->mapped = false;
            unmapped |= 1u << index;
        }
    }
    fd_count = pci_msix_release_locked(device, fds);
    device->intx_level = false;
    update_intx_locked(device);
    pthread_mutex_unlock(&device->config_lock);

    pthread_mutex_lock(&bus->lock);
    bus->slots[slot] = NULL;
    bus->slot_generation[slot]++;
    pthread_mutex_unlock(&bus->lock);
    if (bus->hotplug)
        pci_hotplug_slot_removed(bus->hotplug, slot);

    const struct pci_device_ops *ops = device->ops;
    /* Models drop their ioeventfds on the unmapped BARs. */
    for (unsigned index = 0; index < PCI_BAR_COUNT; index++)
        if ((unmapped & (1u << index)) && ops && ops->bar_remapped)
            ops->bar_remapped(device, index);
    if (notify && bus->unplug_callback)
        bus->unplug_callback(bus->unplug_opaque, device);
    device->bus = NULL;
    device->msi = (struct pci_msi_target){0};
    device->slot = -1;
    device->unplug_requested = false;
    if (ops && ops->destroy)
        ops->destroy(device);
    for (unsigned i = 0; i < fd_count; i++)
        close(fds[i]);

    if (quiesce && bus->platform->unquiesce)
        bus->platform->unquiesce(bus->vm);
}

void pci_bus_remove_slot(struct pci_bus *bus, unsigned slot)
{
    remove_slot(bus, slot, true, true);
}

struct eject_work {
    struct pci_bus *bus;
    unsigned slot;
    uint32_t generation;
};

static void eject_on_main(void *arg)
{
    struct eject_work *work = arg;
    struct pci_bus *bus = work->bus;
    pthread_mutex_lock(&bus->lock);
    /* The slot may have been emptied (reset) or refilled since the guest's write. */
    bool current = bus->slots[work->slot] && bus->slot_generation[work->slot] == work->generation;
    pthread_mutex_unlock(&bus->lock);
    if (current)
        pci_bus_remove_slot(bus, work->slot);
    free(work);
}

void pci_bus_eject_slot(struct pci_bus *bus, unsigned slot)
{
    if (slot < PCI_FIRST_DEVICE_SLOT || slot >= PCI_SLOT_COUNT)
        return; /* the host bridge is not hotpluggable */
    pthread_mutex_lock(&bus->lock);
    bool occupied = bus->slots[slot] != NULL;
    uint32_t generation = bus->slot_generation[slot];
    pthread_mutex_unlock(&bus->lock);
    if (!occupied)
        return;
    struct eject_work *work = calloc(1, sizeof(*work));
    if (!work) {
        pv_log_error("PCI %02x.0: out of memory handling the guest's eject", slot);
        return;
    }
    work->bus = bus;
    work->slot = slot;
    work->generation = generation;
    if (!bus->platform->call_on_main ||
        bus->platform->call_on_main(bus->vm, eject_on_main, work) < 0) {
        pv_log_error("PCI %02x.0: cannot schedule the guest's eject", slot);
        free(work);
    }
}

static void reset_device(struct pci_device *device)
{
    pthread_mutex_lock(&device->config_lock);
    /* Guest-writable bits return to 0: COMMAND (decoding off), BAR addresses,
     * MSI-X enable/mask, INTERRUPT_LINE, capability fields. */
    for (unsigned i = 0; i < PCI_CONFIG_SPACE_SIZE; i++)
        device->config[i] &= (uint8_t)~device->config_writable[i];
    if (device->config[PCI_INTERRUPT_PIN] && device->slot > 0)
        device->config[PCI_INTERRUPT_LINE] = (uint8_t)pci_intx_gsi((unsigned)device->slot);
    unsigned remapped = update_bar_mappings_locked(device);
    struct pci_msix *msix = &device->msix;
    if (msix->vector_count) {
        pci_msix_control_update_locked(device);
        for (unsigned v = 0; v < msix->vector_count; v++) {
            memset(&msix->table[v], 0, sizeof(msix->table[v]));
            msix->table[v].control = PCI_MSIX_ENTRY_CTRL_MASKBIT;
            if (msix->irqfd[v] >= 0)
                pci_msix_drain_eventfd(msix->irqfd[v]);
        }
        memset(msix->pending, 0, sizeof(msix->pending));
    }
    device->intx_level = false;
    pci_config_write16(device, PCI_STATUS,
                       (uint16_t)(pci_config_read16(device, PCI_STATUS) & ~PCI_STATUS_INTERRUPT));
    update_intx_locked(device);
    pthread_mutex_unlock(&device->config_lock);

    const struct pci_device_ops *ops = device->ops;
    if (!ops)
        return;
    for (unsigned index = 0; index < PCI_BAR_COUNT; index++)
        if ((remapped & (1u << index)) && ops->bar_remapped)
            ops->bar_remapped(device, index);
    if (ops->reset)
        ops->reset(device);
}

void pci_bus_reset(struct pci_bus *bus)
{
    pci_hotplug_reset(bus->hotplug);
    for (unsigned slot = PCI_FIRST_DEVICE_SLOT; slot < PCI_SLOT_COUNT; slot++) {
        struct pci_device *device = pci_bus_get_slot(bus, slot);
        if (device)
            reset_device(device);
    }
    pthread_mutex_lock(&bus->lock);
    bus->config_address = 0;
    bus->reset_control = 0;
    pthread_mutex_unlock(&bus->lock);
}

void pci_bus_destroy(struct pci_bus *bus)
{
    if (!bus)
        return;
    for (unsigned slot = PCI_FIRST_DEVICE_SLOT; slot < PCI_SLOT_COUNT; slot++)
        remove_slot(bus, slot, false, false);
    pci_hotplug_destroy(bus->hotplug);
    bus->hotplug = NULL;
    if (bus->host_ports_registered)
        io_bus_unregister(&bus->vm->io_bus, IO_SPACE_PIO, PCI_CONFIG_ADDRESS_PORT);
    if (bus->owns_routing)
        irq_routing_destroy(bus->routing);
    pthread_mutex_destroy(&bus->host_bridge.config_lock);
    pthread_mutex_destroy(&bus->intx_lock);
    pthread_mutex_destroy(&bus->lock);
    free(bus);
}

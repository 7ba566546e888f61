#include "pci/pci_hotplug.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Slot 0 holds the host bridge, which QEMU marks not hotpluggable. */
#define PCI_HOTPLUG_REMOVABLE_SLOTS 0xfffffffeu

struct pci_hotplug {
    struct io_bus *io_bus;
    const struct pci_hotplug_bus_ops *ops;
    void *opaque;
    uint16_t base;
    bool registered;
    pthread_mutex_t lock; /* up, down, bus_select, acpi_index */
    uint32_t up, down;
    uint32_t bus_select;
    uint32_t acpi_index;
};

static void raise_event(struct pci_hotplug *hotplug)
{
    hotplug->ops->raise_gpe(hotplug->opaque);
}

uint32_t pci_hotplug_read(struct pci_hotplug *hotplug, unsigned offset)
{
    uint32_t value = 0;
    pthread_mutex_lock(&hotplug->lock);
    uint32_t select = hotplug->bus_select;
    bool root_bus = select == 0;
    if (select >= PCI_HOTPLUG_MAX_BUS_SELECT) {
        /* QEMU answers 0 for every register, BNUM included. */
        pthread_mutex_unlock(&hotplug->lock);
        return 0;
    }
    switch (offset) {
    case PCI_HOTPLUG_UP:
        if (root_bus) {
            value = hotplug->up;
            hotplug->up = 0;
        }
        break;
    case PCI_HOTPLUG_DOWN:
        if (root_bus)
            value = hotplug->down;
        break;
    case PCI_HOTPLUG_EJECT:
        value = 0; /* no feature bits */
        break;
    case PCI_HOTPLUG_REMOVABLE:
        /* Buses that do not exist keep QEMU's reset value, all ones. */
        value = root_bus ? PCI_HOTPLUG_REMOVABLE_SLOTS : 0xffffffffu;
        break;
    case PCI_HOTPLUG_BUS_SELECT:
        value = select;
        break;
    case PCI_HOTPLUG_ACPI_INDEX:
        value = hotplug->acpi_index;
        hotplug->acpi_index = 0;
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&hotplug->lock);
    return value;
}

/* Index of the lowest set bit, 32 for 0 (QEMU's ctz32). */
static unsigned lowest_slot(uint32_t bitmap)
{
    return bitmap ? (unsigned)__builtin_ctz(bitmap) : 32;
}

void pci_hotplug_write(struct pci_hotplug *hotplug, unsigned offset, uint32_t value)
{
    unsigned eject_slot = PCI_HOTPLUG_SLOTS;
    unsigned index_slot = PCI_HOTPLUG_SLOTS;

    pthread_mutex_lock(&hotplug->lock);
    hotplug->acpi_index = 0;
    switch (offset) {
    case PCI_HOTPLUG_EJECT:
        if (hotplug->bus_select == 0) {
            unsigned slot = lowest_slot(value);
            if (slot < PCI_HOTPLUG_SLOTS) {
                hotplug->up &= ~(1u << slot);
                hotplug->down &= ~(1u << slot);
                eject_slot = slot;
            }
        }
        break;
    case PCI_HOTPLUG_BUS_SELECT:
        hotplug->bus_select = value;
        break;
    case PCI_HOTPLUG_ACPI_INDEX:
        if (hotplug->bus_select == 0)
            index_slot = lowest_slot(value);
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&hotplug->lock);

    if (index_slot < PCI_HOTPLUG_SLOTS) {
        uint32_t acpi_index = hotplug->ops->acpi_index(hotplug->opaque, index_slot);
        pthread_mutex_lock(&hotplug->lock);
        hotplug->acpi_index = acpi_index;
        pthread_mutex_unlock(&hotplug->lock);
    }
    if (eject_slot < PCI_HOTPLUG_SLOTS)
        hotplug->ops->eject_slot(hotplug->opaque, eject_slot);
}

static void hotplug_port_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
    if (size != 4 || (offset & 3) != 0) {
        memset(data, 0xff, size);
        return;
    }
    uint32_t value = pci_hotplug_read(opaque, (unsigned)offset);
    memcpy(data, &value, sizeof(value));
}

static void hotplug_port_write(void *opaque, uint64_t offset, const void *data, unsigned size)
{
    if (size != 4 || (offset & 3) != 0)
        return;
    uint32_t value;
    memcpy(&value, data, sizeof(value));
    pci_hotplug_write(opaque, (unsigned)offset, value);
}

static const struct io_region_ops hotplug_port_ops = {
    .read = hotplug_port_read,
    .write = hotplug_port_write,
};

struct pci_hotplug *pci_hotplug_create(struct io_bus *io_bus, uint16_t base,
                                       const struct pci_hotplug_bus_ops *ops, void *opaque,
                                       struct pv_error *error)
{
    struct pci_hotplug *hotplug = calloc(1, sizeof(*hotplug));
    if (!hotplug) {
        pv_error_set(error, -ENOMEM, "out of memory creating the PCI hotplug controller");
        return NULL;
    }
    hotplug->io_bus = io_bus;
    hotplug->ops = ops;
    hotplug->opaque = opaque;
    hotplug->base = base;
    pthread_mutex_init(&hotplug->lock, NULL);
    if (!io_bus)
        return hotplug;
    int rc = io_bus_register(io_bus, IO_SPACE_PIO, base, PCI_HOTPLUG_LENGTH, &hotplug_port_ops,
                             hotplug, "acpi-pci-hotplug", error);
    if (rc < 0) {
        pthread_mutex_destroy(&hotplug->lock);
        free(hotplug);
        return NULL;
    }
    hotplug->registered = true;
    return hotplug;
}

void pci_hotplug_destroy(struct pci_hotplug *hotplug)
{
    if (!hotplug)
        return;
    if (hotplug->registered)
        io_bus_unregister(hotplug->io_bus, IO_SPACE_PIO, hotplug->base);
    pthread_mutex_destroy(&hotplug->lock);
    free(hotplug);
}

void pci_hotplug_device_plugged(struct pci_hotplug *hotplug, unsigned slot)
{
    pthread_mutex_lock(&hotplug->lock);
    hotplug->up |= 1u << slot;
    pthread_mutex_unlock(&hotplug->lock);
    raise_event(hotplug);
}

void pci_hotplug_request_unplug(struct pci_hotplug *hotplug, unsigned slot)
{
    pthread_mutex_lock(&hotplug->lock);
    hotplug->down |= 1u << slot;
    pthread_mutex_unlock(&hotplug->lock);
    raise_event(hotplug);
}

void pci_hotplug_slot_removed(struct pci_hotplug *hotplug, unsigned slot)
{
    pthread_mutex_lock(&hotplug->lock);
    hotplug->up &= ~(1u << slot);
    hotplug->down &= ~(1u << slot);
    pthread_mutex_unlock(&hotplug->lock);
}

void pci_hotplug_reset(struct pci_hotplug *hotplug)
{
    pthread_mutex_lock(&hotplug->lock);
    uint32_t pending = hotplug->down;
    hotplug->down = 0;
    hotplug->acpi_index = 0;
    pthread_mutex_unlock(&hotplug->lock);
    for (unsigned slot = PCI_HOTPLUG_FIRST_SLOT; slot < PCI_HOTPLUG_SLOTS; slot++)
        if (pending & (1u << slot))
            hotplug->ops->remove_slot(hotplug->opaque, slot);
}

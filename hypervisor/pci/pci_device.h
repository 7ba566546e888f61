/* A PCI function as a device model sees it: config space, BARs, capabilities,
 * the MSI-X layout, the model's callbacks, and the config space accessors.
 * The bus (pci.h) plugs such devices; MSI-X at run time is pci_msix.h. */
#ifndef PLUGVIRT_PCI_DEVICE_H
#define PLUGVIRT_PCI_DEVICE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "io_bus.h"
#include "pv_error.h"

struct pci_bus;
struct pci_device;
struct irq_routing;
struct vm;

#define PCI_BAR_COUNT 6
#define PCI_CONFIG_SPACE_SIZE 256
#define PCI_MSIX_MAX_VECTORS 64

/* QEMU's default subsystem IDs for its PCI devices. */
#define PCI_DEFAULT_SUBSYSTEM_VENDOR_ID 0x1af4
#define PCI_DEFAULT_SUBSYSTEM_ID 0x1100

/* INTx: INTA# of slot S goes to PIRQ ((S - 1) & 3), and PIRQ A/B are routed
 * to IRQ 10, C/D to IRQ 11, as QEMU's i440fx does with SeaBIOS' routing. */
#define PCI_INTX_GSI_AB 10
#define PCI_INTX_GSI_CD 11

/* Config space offsets used by models. */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION_ID 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_CLASS_DEVICE 0x0a
#define PCI_CACHE_LINE_SIZE 0x0c
#define PCI_LATENCY_TIMER 0x0d
#define PCI_HEADER_TYPE 0x0e
#define PCI_BASE_ADDRESS_0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d
#define PCI_FIRST_CAPABILITY_OFFSET 0x40

#define PCI_COMMAND_IO 0x1
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_COMMAND_PARITY 0x40
#define PCI_COMMAND_SERR 0x100
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS_INTERRUPT 0x08
#define PCI_STATUS_CAP_LIST 0x10

#define PCI_BASE_ADDRESS_SPACE_IO 0x01
#define PCI_BASE_ADDRESS_MEM_TYPE_64 0x04
#define PCI_BASE_ADDRESS_MEM_PREFETCH 0x08

#define PCI_CAP_ID_MSIX 0x11
#define PCI_CAP_ID_VENDOR 0x09

/* MSI-X capability layout and table format. */
#define PCI_MSIX_FLAGS 2 /* message control, from the capability */
#define PCI_MSIX_FLAGS_QSIZE 0x07ff
#define PCI_MSIX_FLAGS_MASKALL 0x4000
#define PCI_MSIX_FLAGS_ENABLE 0x8000
#define PCI_MSIX_TABLE 4
#define PCI_MSIX_PBA 8
#define PCI_MSIX_CAPABILITY_LENGTH 12
#define PCI_MSIX_ENTRY_SIZE 16
#define PCI_MSIX_ENTRY_CTRL_MASKBIT 0x1

enum pci_bar_kind {
    PCI_BAR_NONE = 0,
    PCI_BAR_IO,       /* port I/O */
    PCI_BAR_MEMORY32, /* 32-bit memory */
    PCI_BAR_MEMORY64, /* 64-bit memory: uses this BAR and the next */
};

struct pci_bar {
    enum pci_bar_kind kind;
    uint64_t size;     /* power of two */
    uint64_t address;  /* as programmed by the guest (decoded even when not mapped) */
    bool mapped;       /* registered on the io_bus at `address` */
    bool prefetchable; /* memory BARs: reads have no side effects (bit 3) */
    const struct io_region_ops *ops;
    void *opaque;
};

/* Device-model callbacks; every member may be NULL. None is called with a
 * bus or device lock held. */
struct pci_device_ops {
    /* After the guest wrote config space (offset, size) and the bus applied
     * the standard parts (command, BARs, MSI-X control). vCPU thread. */
    void (*config_written)(struct pci_device *device, unsigned offset, unsigned size);
    /* A BAR moved or was (un)mapped: models with ioeventfds re-register them
     * (read the new state with pci_device_get_bar_mapping). Also called with
     * the BAR unmapped when the device leaves the bus. */
    void (*bar_remapped)(struct pci_device *device, unsigned bar);
    /* MSI-X was enabled/disabled or (function-)masked: models switch between
     * MSI-X and INTx. Vector eventfds stay valid across these changes. */
    void (*msix_changed)(struct pci_device *device);
    /* System reset, after the bus reset config space (main thread, vCPUs quiesced). */
    void (*reset)(struct pci_device *device);
    /* Called on the main thread, vCPUs quiesced, after the device left the bus
     * (guest eject or VM teardown) and after the unplug callback: release
     * everything (the struct may be freed here). */
    void (*destroy)(struct pci_device *device);
};

struct pci_msix_entry {
    uint32_t address_low, address_high, data, control;
};

struct pci_msix {
    unsigned vector_count; /* 0: no MSI-X */
    unsigned bar;
    uint32_t table_offset; /* in the BAR */
    uint32_t pba_offset;
    uint8_t capability_offset;
    bool enabled, function_masked;
    struct pci_msix_entry table[PCI_MSIX_MAX_VECTORS];
    uint64_t pending[(PCI_MSIX_MAX_VECTORS + 63) / 64];
    /* irqfd routing kept in sync with the table: eventfd per vector (-1 = none),
     * its GSI (-1 = none), and whether KVM currently delivers it (the vector
     * is enabled and unmasked). */
    int irqfd[PCI_MSIX_MAX_VECTORS];
    int gsi[PCI_MSIX_MAX_VECTORS];
    bool irqfd_attached[PCI_MSIX_MAX_VECTORS];
};

/* Where a plugged device's MSI-X messages go: the bus fills it in at plug time,
 * so MSI-X (pci_msix.c) does not reach into the bus. */
struct pci_msi_target {
    int (*signal_msi)(struct vm *vm, uint64_t address, uint32_t data);
    struct vm *vm;
    struct irq_routing *routing;
};

struct pci_device {
    struct pci_bus *bus;
    struct pci_msi_target msi;
    const struct pci_device_ops *ops;
    char id[64];           /* the QEMU "id" property */
    char driver[32];       /* QEMU driver name, e.g. "virtio-blk-pci" */
    int slot;              /* -1 until plugged */
    bool hotplugged;       /* plugged after the machine started */
    bool unplug_requested; /* device_del issued, waiting for the guest's eject */
    uint32_t acpi_index;   /* QEMU's "acpi-index" property (0 = none), read through PIDX */
    pthread_mutex_t config_lock;
    uint8_t config[PCI_CONFIG_SPACE_SIZE];
    uint8_t config_writable[PCI_CONFIG_SPACE_SIZE]; /* bit mask of guest-writable bits */
    uint8_t next_capability;                        /* allocator for capabilities */
    struct pci_bar bars[PCI_BAR_COUNT];
    struct pci_msix msix;
    bool intx_level;    /* as the model set it */
    bool intx_asserted; /* what the bus counts on the line (level, unless disabled) */
    /* When device_del asked for the unplug (CLOCK_MONOTONIC ms) and whether the
     * VM was running then: decides when a repeated request is accepted. */
    int64_t unplug_request_ms;
    bool unplug_request_while_running;
};

/* Initialises identity and defaults (header type 0, capability list empty,
 * INTA#, config_lock). Overwrites the whole struct pci_device. */
void pci_device_init(struct pci_device *device, const struct pci_device_ops *ops,
                     const char *driver, const char *id, uint16_t vendor_id, uint16_t device_id,
                     uint32_t class_code /* class<<16|subclass<<8|prog_if */, uint8_t revision,
                     uint16_t subsystem_vendor_id, uint16_t subsystem_id);
/* Declares a BAR (before plugging). Size is rounded up to a power of two
 * (at least 16 bytes for memory, 4 for I/O). */
int pci_device_set_bar(struct pci_device *device, unsigned index, enum pci_bar_kind kind,
                       uint64_t size, const struct io_region_ops *ops, void *opaque,
                       struct pv_error *error);
/* Marks a declared memory BAR prefetchable (QEMU does so for virtio's modern BAR, and
 * guests place it in a prefetchable window). */
int pci_device_set_bar_prefetchable(struct pci_device *device, unsigned index,
                                    struct pv_error *error);
/* Adds a capability of `length` bytes; returns its config offset (>0) or -errno.
 * Its body is read-only to the guest unless the model sets config_writable. */
int pci_device_add_capability(struct pci_device *device, uint8_t capability_id, unsigned length,
                              struct pv_error *error);
/* Adds MSI-X with its table and PBA in `bar` (a declared memory BAR whose
 * handler passes every access to pci_msix_access first). */
int pci_device_init_msix(struct pci_device *device, unsigned vector_count, unsigned bar,
                         uint32_t table_offset, uint32_t pba_offset, struct pv_error *error);
/* The mapping of a BAR as the bus last applied it; returns whether it is mapped. */
bool pci_device_get_bar_mapping(struct pci_device *device, unsigned bar, uint64_t *address);
/* The IOAPIC GSI of INTA# for a device in `slot` (10 or 11). For the DSDT's _PRT. */
unsigned pci_intx_gsi(unsigned slot);

/* ---- config space accessors (little-endian byte arrays) --------------------- */

static inline uint16_t pci_config_read16(const struct pci_device *device, unsigned offset)
{
    return (uint16_t)(device->config[offset] | device->config[offset + 1] << 8);
}

static inline uint32_t pci_config_read32(const struct pci_device *device, unsigned offset)
{
    return (uint32_t)pci_config_read16(device, offset) |
           (uint32_t)pci_config_read16(device, offset + 2) << 16;
}

/* Config space and its writable mask are both little-endian byte arrays. */
static inline void pci_store_le(uint8_t *bytes, unsigned offset, uint32_t value, unsigned size)
{
    for (unsigned i = 0; i < size; i++)
        bytes[offset + i] = (uint8_t)(value >> (8 * i));
}

static inline void pci_config_write16(struct pci_device *device, unsigned offset, uint16_t value)
{
    pci_store_le(device->config, offset, value, 2);
}

static inline void pci_config_write32(struct pci_device *device, unsigned offset, uint32_t value)
{
    pci_store_le(device->config, offset, value, 4);
}

static inline void pci_writable_write16(struct pci_device *device, unsigned offset, uint16_t mask)
{
    pci_store_le(device->config_writable, offset, mask, 2);
}

static inline void pci_writable_write32(struct pci_device *device, unsigned offset, uint32_t mask)
{
    pci_store_le(device->config_writable, offset, mask, 4);
}

/* Bytes of the MSI-X pending bit array for `vector_count` vectors. */
static inline unsigned pci_msix_pba_length(unsigned vector_count)
{
    return (vector_count + 63) / 64 * 8;
}

#endif

/* PCI: the host bridge, bus pci.0 (config mechanism #1 at 0xcf8/0xcfc),
 * device registration, BAR placement by the guest, MSI-X and INTx.
 *
 * A device model embeds struct pci_device, fills its identity and BARs,
 * and calls pci_bus_plug. BAR accesses reach the model through the
 * io_region_ops it gave for that BAR, at offsets relative to the BAR; the
 * bus moves the io_bus registration when the guest reprograms the BAR.
 *
 * The host bridge (00:00.0, Intel 8086:1237 "i440FX" as in QEMU) owns ports
 * 0xcf8-0xcff: CONFIG_ADDRESS (0xcf8, 32-bit accesses only), CONFIG_DATA
 * (0xcfc-0xcff, any size) and, inside that range, the PIIX reset control
 * register 0xcf9 (a 1-byte write with bit 2 set resets the guest).
 *
 * Threads and locks:
 * - config space is accessed on vCPU threads under the device's config_lock;
 *   the bus never calls a model callback (ops) with config_lock or a bus lock
 *   held, so models may call any pci_* function from their callbacks;
 * - plug, unplug requests, removal, reset and destroy run on the main thread;
 *   removal happens with the vCPUs quiesced, so no handler of a removed device
 *   is running or will run;
 * - a BAR moves (io_bus unregister + register) on the vCPU thread that wrote
 *   the BAR or COMMAND, under config_lock, without quiescing. That is safe
 *   because io_bus copies (ops, opaque) under its lock and runs handlers
 *   unlocked: an access that was dispatched at the old address just before
 *   the move completes on the same, still live device, as if it had happened
 *   before the move. The rule: a BAR's ops/opaque stay valid for as long as
 *   the device is on the bus (until ops->destroy), whatever its mapping;
 * - pci_msix_notify and pci_set_intx may be called from any thread. */
#ifndef PLUGVIRT_PCI_H
#define PLUGVIRT_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "io_bus.h"
#include "pv_error.h"
#include "vm.h"

struct pci_bus;
struct pci_device;
struct irq_routing;

#define PCI_SLOT_COUNT 32 /* slot 0 is the host bridge; 1..31 take devices */
#define PCI_FIRST_DEVICE_SLOT 1
#define PCI_BAR_COUNT 6
#define PCI_CONFIG_SPACE_SIZE 256
#define PCI_MSIX_MAX_VECTORS 64

/* Ports of the host bridge. */
#define PCI_CONFIG_ADDRESS_PORT 0xcf8
#define PCI_CONFIG_DATA_PORT 0xcfc
#define PCI_HOST_PORTS_LENGTH 8
#define PCI_RESET_CONTROL_PORT 0xcf9
#define PCI_RESET_CONTROL_SYSTEM_RESET 0x04
#define PCI_CONFIG_ADDRESS_ENABLE 0x80000000u

/* The host bridge's identity (QEMU's i440FX). */
#define PCI_HOST_BRIDGE_VENDOR_ID 0x8086
#define PCI_HOST_BRIDGE_DEVICE_ID 0x1237
#define PCI_HOST_BRIDGE_REVISION 0x02
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

struct pci_device {
    struct pci_bus *bus;
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
/* For the BAR handler of the model: true if the access hit the table or PBA and was handled. */
bool pci_msix_access(struct pci_device *device, unsigned bar, uint64_t offset, void *data,
                     unsigned size, bool is_write);
/* Sends MSI-X vector `vector`, or sets its pending bit if it is masked; drops
 * it if MSI-X is disabled (as QEMU's msix_notify). Any thread. */
void pci_msix_notify(struct pci_device *device, unsigned vector);
/* The eventfd whose writes raise `vector` in the kernel (irqfd on an MSI
 * route), created on first use; -1 if the vector does not exist or the route
 * cannot be made (then use pci_msix_notify). The fd is stable until the
 * device leaves the bus: while the vector is masked the bus detaches the irqfd
 * and turns writes into pending bits, delivered at unmask; while MSI-X is
 * disabled writes are dropped. */
int pci_msix_vector_eventfd(struct pci_device *device, unsigned vector);
/* Legacy interrupt line (INTA#), level-triggered. It reaches the IOAPIC only
 * while COMMAND.INTX_DISABLE is clear and MSI-X is disabled. Any thread. */
void pci_set_intx(struct pci_device *device, bool level);
/* The mapping of a BAR as the bus last applied it; returns whether it is mapped. */
bool pci_device_get_bar_mapping(struct pci_device *device, unsigned bar, uint64_t *address);
/* The IOAPIC GSI of INTA# for a device in `slot` (10 or 11). For the DSDT's _PRT. */
unsigned pci_intx_gsi(unsigned slot);

/* Where the bus sends interrupts and how it reaches the VM's run control.
 * pci_bus_create uses pci_platform_kvm (vm_signal_msi, vm_set_irq_line, ...,
 * acpi_pm_raise_gpe on vm->acpi_pm); unit tests pass their own table to
 * observe the bus without /dev/kvm. */
struct pci_platform_ops {
    int (*signal_msi)(struct vm *vm, uint64_t address, uint32_t data);
    int (*set_irq_line)(struct vm *vm, unsigned gsi, int level);
    int (*call_on_main)(struct vm *vm, void (*fn)(void *arg), void *arg);
    void (*quiesce)(struct vm *vm);
    void (*unquiesce)(struct vm *vm);
    void (*request_guest_reset)(struct vm *vm);
    enum vm_run_state (*get_run_state)(struct vm *vm);
    void (*raise_gpe)(struct vm *vm, unsigned bit);
};
extern const struct pci_platform_ops pci_platform_kvm;

/* Creates the host bridge, registers 0xcf8-0xcff and the ACPI PCI hotplug
 * block (pci_hotplug.h) on vm->io_bus, and a GSI routing table on vm->vm_fd
 * (no KVM calls if vm_fd < 0). */
struct pci_bus *pci_bus_create(struct vm *vm, struct pv_error *error);
/* The same with an explicit platform, and a routing table shared with other
 * users of KVM_SET_GSI_ROUTING (NULL: the bus creates and owns one). */
struct pci_bus *pci_bus_create_with_platform(struct vm *vm, const struct pci_platform_ops *platform,
                                             struct irq_routing *routing, struct pv_error *error);
/* Main thread, vCPUs stopped: destroys remaining devices (no unplug callback). */
void pci_bus_destroy(struct pci_bus *bus);
/* slot -1 = first free slot. Cold plug before vm_start (run state prelaunch),
 * hotplug after: hotplug raises the ACPI PCI hotplug event (GPE bit 1).
 * Errors: "PCI slot must be between 1 and 31", "PCI slot 0x%x is in use by
 * device '%s'", "Duplicate device ID '%s'". */
int pci_bus_plug(struct pci_bus *bus, struct pci_device *device, int slot, struct pv_error *error);
/* device_del: asks the guest to eject (down bit + GPE). The device stays until
 * the guest writes the eject register; then the bus removes it on the main
 * thread with the vCPUs quiesced, calls the unplug callback and ops->destroy.
 * A repeated request re-sends the event (QEMU >= 8.0 lets the request expire
 * after 1 ms of guest time); before that, or if the VM has not run since the
 * request, it fails with -EBUSY "Device %s is already in the process of unplug". */
int pci_bus_request_unplug(struct pci_bus *bus, struct pci_device *device, struct pv_error *error);
/* Called after a device left the bus (guest eject, or reset with a pending
 * request), before ops->destroy, on the main thread: emits DEVICE_DELETED. */
typedef void (*pci_unplug_callback)(void *opaque, struct pci_device *device);
void pci_bus_set_unplug_callback(struct pci_bus *bus, pci_unplug_callback callback, void *opaque);
struct pci_device *pci_bus_find_by_id(struct pci_bus *bus, const char *id);
/* Slot 0 is the host bridge. */
struct pci_device *pci_bus_get_slot(struct pci_bus *bus, unsigned slot);
/* System reset (main thread, vCPUs quiesced): devices with a pending unplug
 * request are removed (as QEMU's acpi_pcihp_reset), then every device's config
 * space goes back to power-on values (BARs unmapped) and ops->reset runs. */
void pci_bus_reset(struct pci_bus *bus);

struct vm *pci_bus_get_vm(struct pci_bus *bus);
struct irq_routing *pci_bus_get_irq_routing(struct pci_bus *bus);
/* The guest ejected `slot` (vCPU thread): the device there, if any and not the
 * host bridge, is removed on the main thread. */
void pci_bus_eject_slot(struct pci_bus *bus, unsigned slot);
/* Removes the device in `slot` now (main thread): quiesce, unmap, unplug
 * callback, ops->destroy, unquiesce. */
void pci_bus_remove_slot(struct pci_bus *bus, unsigned slot);

#endif

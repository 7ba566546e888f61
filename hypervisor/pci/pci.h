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
#include "pci/pci_device.h"
#include "pv_error.h"
#include "vm.h"

struct irq_routing;

#define PCI_SLOT_COUNT 32 /* slot 0 is the host bridge; 1..31 take devices */
#define PCI_FIRST_DEVICE_SLOT 1

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

/* Legacy interrupt line (INTA#), level-triggered. It reaches the IOAPIC only
 * while COMMAND.INTX_DISABLE is clear and MSI-X is disabled. Any thread. */
void pci_set_intx(struct pci_device *device, bool level);

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

/* QEMU's PIIX4 ACPI PCI hotplug register block (docs/specs/acpi_pci_hotplug.rst,
 * hw/acpi/pcihp.c) at VM_PCI_HOTPLUG_BASE (0xae00), 0x18 bytes, 32-bit
 * accesses only (others read all ones and are ignored):
 *   0x00 PCIU  slots with a pending insert; read-to-clear (QEMU's default for
 *              PIIX with bridge hotplug support on)
 *   0x04 PCID  slots with an unplug request; cleared by the eject
 *   0x08 B0EJ  read 0 (no features); write a slot bitmask: slot ctz(value) of
 *              the selected bus is ejected: its up/down bits clear and the
 *              device there leaves the bus. As in QEMU the eject does not
 *              need a pending request (the guest may eject on its own); the
 *              host bridge in slot 0 is never ejected.
 *   0x0c RMV   hotpluggable slots: every slot but the host bridge's
 *   0x10 BNUM  bus select (only bus 0 exists; other values read 0 bitmaps,
 *              RMV all ones, and ejects do nothing, as in QEMU)
 *   0x14 PIDX  write a slot bitmask to latch that slot's acpi-index; read it
 *              once (then 0). Any write clears the latch.
 * Events raise GPE0 bit 1 (ACPI_GPE_PCI_HOTPLUG) through the bus platform.
 *
 * Created by pci_bus_create; the bus calls these hooks. Thread safe. */
#ifndef PLUGVIRT_PCI_HOTPLUG_H
#define PLUGVIRT_PCI_HOTPLUG_H

#include <stdint.h>

#include "io_bus.h"
#include "pv_error.h"

struct pci_hotplug;

#define PCI_HOTPLUG_LENGTH 0x18
#define PCI_HOTPLUG_UP 0x00
#define PCI_HOTPLUG_DOWN 0x04
#define PCI_HOTPLUG_EJECT 0x08
#define PCI_HOTPLUG_REMOVABLE 0x0c
#define PCI_HOTPLUG_BUS_SELECT 0x10
#define PCI_HOTPLUG_ACPI_INDEX 0x14
#define PCI_HOTPLUG_MAX_BUS_SELECT 256 /* QEMU's ACPI_PCIHP_MAX_HOTPLUG_BUS */

#define PCI_HOTPLUG_SLOTS 32     /* one bit per slot of the root bus */
#define PCI_HOTPLUG_FIRST_SLOT 1 /* slot 0 is the host bridge */

/* What the controller needs from its bus. Passed down at creation so the
 * controller does not call into pci.c, which owns it. */
struct pci_hotplug_bus_ops {
    /* The ACPI index of the device in `slot`; 0 for none or an empty slot. */
    uint32_t (*acpi_index)(void *opaque, unsigned slot);
    /* The guest ejected `slot` (vCPU thread). */
    void (*eject_slot)(void *opaque, unsigned slot);
    /* Remove the device in `slot` now (main thread, system reset). */
    void (*remove_slot)(void *opaque, unsigned slot);
    /* Raise the PCI hotplug GPE (GPE0 bit 1). */
    void (*raise_gpe)(void *opaque);
};

/* Registers the block at `base` on `io_bus` (NULL: no ports, tests drive the registers). */
struct pci_hotplug *pci_hotplug_create(struct io_bus *io_bus, uint16_t base,
                                       const struct pci_hotplug_bus_ops *ops, void *opaque,
                                       struct pv_error *error);
void pci_hotplug_destroy(struct pci_hotplug *hotplug);

/* A device was hot-plugged into `slot`: up bit + GPE. */
void pci_hotplug_device_plugged(struct pci_hotplug *hotplug, unsigned slot);
/* device_del for the device in `slot`: down bit + GPE. */
void pci_hotplug_request_unplug(struct pci_hotplug *hotplug, unsigned slot);
/* The device in `slot` left the bus: forget its pending bits. */
void pci_hotplug_slot_removed(struct pci_hotplug *hotplug, unsigned slot);
/* System reset (main thread): removes the devices with a pending unplug
 * request (pci_bus_remove_slot), as QEMU's acpi_pcihp_reset. */
void pci_hotplug_reset(struct pci_hotplug *hotplug);

/* Register access as the guest sees it (offset in the block). */
uint32_t pci_hotplug_read(struct pci_hotplug *hotplug, unsigned offset);
void pci_hotplug_write(struct pci_hotplug *hotplug, unsigned offset, uint32_t value);

#endif

/* Virtio 1.x modern PCI transport (4.1) for a struct virtio_device.
 *
 * Layout as QEMU's modern virtio-pci (non-transitional: 1af4:1040+type,
 * revision 1):
 * - BAR 1: MSI-X, 4 KiB, table at 0, PBA at 0x800;
 * - BAR 4: 64-bit memory, 16 KiB: common config at 0x0000, ISR at 0x1000,
 *   device config at 0x2000, notifications at 0x3000 (queue N at N*4,
 *   notify_off_multiplier 4);
 * - vendor capabilities COMMON, ISR, DEVICE, NOTIFY and PCI_CFG, then MSI-X.
 *
 * Notifications reach the device's I/O thread through KVM_IOEVENTFD on each
 * queue's notify address (re-registered when the guest moves BAR 4); a write
 * that still traps (other size, no ioeventfd) kicks the same eventfd.
 * Interrupts use the vector's irqfd when MSI-X is on, else INTx + ISR. */
#ifndef PLUGVIRT_VIRTIO_PCI_H
#define PLUGVIRT_VIRTIO_PCI_H

#include <stdint.h>

#include "pv_error.h"
#include "virtio/virtio.h"

struct vm;
struct pci_device;

#define VIRTIO_PCI_VENDOR_ID 0x1af4
#define VIRTIO_PCI_DEVICE_ID_BASE 0x1040
#define VIRTIO_PCI_SUBSYSTEM_ID 0x1100 /* QEMU's default subsystem (>= 0x40, as 4.1.2 asks) */

#define VIRTIO_PCI_MSIX_BAR 1
#define VIRTIO_PCI_MODERN_BAR 4
#define VIRTIO_PCI_MODERN_BAR_SIZE 0x4000
#define VIRTIO_PCI_COMMON_OFFSET 0x0000
#define VIRTIO_PCI_ISR_OFFSET 0x1000
#define VIRTIO_PCI_DEVICE_OFFSET 0x2000
#define VIRTIO_PCI_NOTIFY_OFFSET 0x3000
#define VIRTIO_PCI_REGION_SIZE 0x1000
#define VIRTIO_PCI_NOTIFY_MULTIPLIER 4

/* Wraps `virtio` (a device model) in a PCI function. `msix_vectors` is
 * usually queues + 1. The virtio device gets guest memory and the transport,
 * and its I/O thread is started. On success the PCI device owns the model:
 * its destroy op (after unplug) tears down both. On failure the caller still
 * owns `virtio`. */
struct pci_device *virtio_pci_create(struct vm *vm, struct virtio_device *virtio,
                                     const char *driver, const char *id, uint32_t class_code,
                                     unsigned msix_vectors, struct pv_error *error);
/* The virtio device behind a PCI device made by virtio_pci_create. */
struct virtio_device *virtio_pci_get_virtio(struct pci_device *device);

#endif

/* MSI-X of a PCI device at run time (the layout is set up with
 * pci_device_init_msix). Any thread unless noted; *_locked: the caller holds
 * the device's config_lock. */
#ifndef PLUGVIRT_PCI_MSIX_H
#define PLUGVIRT_PCI_MSIX_H

#include <stdbool.h>
#include <stdint.h>

#include "pci/pci_device.h"

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
/* ---- for the bus (pci.c) ---- */

/* The guest wrote MSI-X message control. Returns true if enable or function mask
 * changed (the bus then re-evaluates INTx, which MSI-X disables). */
bool pci_msix_control_update_locked(struct pci_device *device);
/* The device leaves the bus: detaches and forgets every irqfd; returns how many
 * eventfds were put in `fds` (PCI_MSIX_MAX_VECTORS), for the caller to close. */
unsigned pci_msix_release_locked(struct pci_device *device, int *fds);
/* Reads and discards what was written to an eventfd; true if anything was. */
bool pci_msix_drain_eventfd(int fd);

#endif

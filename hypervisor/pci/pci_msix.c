/* MSI-X of a PCI device: the table and PBA in a BAR, vector masking and
 * pending bits, and irqfds kept in sync with the table; see pci_msix.h. */
#include "pci/pci_msix.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pv_log.h"
#include "x86/irq_routing.h"

static bool msix_vector_masked(const struct pci_msix *msix, unsigned vector)
{
    return !msix->enabled || msix->function_masked ||
           (msix->table[vector].control & PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

static uint64_t msix_address(const struct pci_msix_entry *entry)
{
    return (uint64_t)entry->address_high << 32 | entry->address_low;
}

static bool msix_pending(const struct pci_msix *msix, unsigned vector)
{
    return msix->pending[vector / 64] & (1ULL << (vector % 64));
}

static void msix_set_pending(struct pci_msix *msix, unsigned vector, bool pending)
{
    if (pending)
        msix->pending[vector / 64] |= 1ULL << (vector % 64);
    else
        msix->pending[vector / 64] &= ~(1ULL << (vector % 64));
}

/* Reads (and so clears) the eventfd counter; true if it was written to. */
bool pci_msix_drain_eventfd(int fd)
{
    uint64_t count = 0;
    return read(fd, &count, sizeof(count)) == sizeof(count) && count > 0;
}

static void msix_send_locked(struct pci_device *device, unsigned vector)
{
    const struct pci_msix_entry *entry = &device->msix.table[vector];
    if (device->bus && device->msi.signal_msi) {
        int rc = device->msi.signal_msi(device->msi.vm, msix_address(entry), entry->data);
        if (rc < 0)
            pv_log_warning("PCI %02x.0: MSI-X vector %u not delivered: %s", device->slot, vector,
                           strerror(-rc));
    }
}

/* Applies the state of one vector after a change: attaches its irqfd while it
 * is deliverable (with the current message), detaches it while masked, and
 * delivers what became pending while masked once it is unmasked. Caller holds
 * config_lock. */
static void msix_vector_update_locked(struct pci_device *device, unsigned vector, bool was_masked)
{
    struct pci_msix *msix = &device->msix;
    struct irq_routing *routing = device->bus ? device->msi.routing : NULL;
    bool masked = msix_vector_masked(msix, vector);
    const struct pci_msix_entry *entry = &msix->table[vector];
    int fd = msix->irqfd[vector];

    if (fd >= 0 && routing) {
        if (masked && msix->irqfd_attached[vector]) {
            irq_routing_irqfd_deassign(routing, fd, (unsigned)msix->gsi[vector]);
            msix->irqfd_attached[vector] = false;
        }
        if (!masked) {
            struct pv_error error = {0};
            if (irq_routing_update_msi(routing, (unsigned)msix->gsi[vector], msix_address(entry),
                                       entry->data, &error) < 0)
                pv_log_warning("PCI %02x.0: MSI-X vector %u: %s", device->slot, vector,
                               error.message);
            if (!msix->irqfd_attached[vector]) {
                /* Writes made while masked are a pending message. */
                if (pci_msix_drain_eventfd(fd))
                    msix_set_pending(msix, vector, true);
                if (irq_routing_irqfd_assign(routing, fd, (unsigned)msix->gsi[vector], &error) == 0)
                    msix->irqfd_attached[vector] = true;
                else
                    pv_log_warning("PCI %02x.0: MSI-X vector %u: %s", device->slot, vector,
                                   error.message);
            }
        }
    }
    if (was_masked && !masked && msix_pending(msix, vector)) {
        msix_set_pending(msix, vector, false);
        msix_send_locked(device, vector);
    }
}

/* The guest wrote MSI-X message control. Returns true if enable or function
 * mask changed. Caller holds config_lock. */
bool pci_msix_control_update_locked(struct pci_device *device)
{
    struct pci_msix *msix = &device->msix;
    if (msix->vector_count == 0)
        return false;
    uint16_t control = pci_config_read16(device, msix->capability_offset + PCI_MSIX_FLAGS);
    bool enabled = control & PCI_MSIX_FLAGS_ENABLE;
    bool function_masked = control & PCI_MSIX_FLAGS_MASKALL;
    if (enabled == msix->enabled && function_masked == msix->function_masked)
        return false;
    bool was_masked[PCI_MSIX_MAX_VECTORS];
    for (unsigned v = 0; v < msix->vector_count; v++)
        was_masked[v] = msix_vector_masked(msix, v);
    if (enabled && !msix->enabled) {
        /* Messages are dropped while MSI-X is off (QEMU's msix_notify). */
        for (unsigned v = 0; v < msix->vector_count; v++)
            if (msix->irqfd[v] >= 0 && !msix->irqfd_attached[v])
                pci_msix_drain_eventfd(msix->irqfd[v]);
    }
    msix->enabled = enabled;
    msix->function_masked = function_masked;
    for (unsigned v = 0; v < msix->vector_count; v++)
        msix_vector_update_locked(device, v, was_masked[v]);
    return true;
}

/* Folds writes to detached eventfds into the pending bits. Caller holds config_lock. */
static void msix_collect_pending_locked(struct pci_device *device)
{
    struct pci_msix *msix = &device->msix;
    for (unsigned v = 0; v < msix->vector_count; v++) {
        if (msix->irqfd[v] < 0 || msix->irqfd_attached[v])
            continue;
        if (pci_msix_drain_eventfd(msix->irqfd[v]) && msix->enabled)
            msix_set_pending(msix, v, true);
    }
}

bool pci_msix_access(struct pci_device *device, unsigned bar, uint64_t offset, void *data,
                     unsigned size, bool is_write)
{
    struct pci_msix *msix = &device->msix;
    if (msix->vector_count == 0 || bar != msix->bar)
        return false;
    uint64_t table_end = msix->table_offset + (uint64_t)msix->vector_count * PCI_MSIX_ENTRY_SIZE;
    uint64_t pba_end = msix->pba_offset + (uint64_t)pci_msix_pba_length(msix->vector_count);
    uint8_t *bytes = data;

    if (offset >= msix->table_offset && offset + size <= table_end) {
        uint64_t relative = offset - msix->table_offset;
        pthread_mutex_lock(&device->config_lock);
        if (!is_write) {
            memcpy(bytes, (const uint8_t *)msix->table + relative, size);
        } else {
            unsigned first = (unsigned)(relative / PCI_MSIX_ENTRY_SIZE);
            unsigned last = (unsigned)((relative + size - 1) / PCI_MSIX_ENTRY_SIZE);
            bool was_masked[2];
            for (unsigned v = first; v <= last; v++)
                was_masked[v - first] = msix_vector_masked(msix, v);
            memcpy((uint8_t *)msix->table + relative, bytes, size);
            for (unsigned v = first; v <= last; v++) {
                /* Vector control bits 31:1 are reserved. */
                msix->table[v].control &= PCI_MSIX_ENTRY_CTRL_MASKBIT;
                msix_vector_update_locked(device, v, was_masked[v - first]);
            }
        }
        pthread_mutex_unlock(&device->config_lock);
        return true;
    }
    if (offset >= msix->pba_offset && offset + size <= pba_end) {
        if (!is_write) {
            pthread_mutex_lock(&device->config_lock);
            msix_collect_pending_locked(device);
            memcpy(bytes, (const uint8_t *)msix->pending + (offset - msix->pba_offset), size);
            pthread_mutex_unlock(&device->config_lock);
        }
        return true; /* the PBA is read-only */
    }
    return false;
}

void pci_msix_notify(struct pci_device *device, unsigned vector)
{
    struct pci_msix *msix = &device->msix;
    if (vector >= msix->vector_count)
        return;
    pthread_mutex_lock(&device->config_lock);
    if (msix->enabled) {
        if (msix_vector_masked(msix, vector))
            msix_set_pending(msix, vector, true);
        else
            msix_send_locked(device, vector);
    }
    pthread_mutex_unlock(&device->config_lock);
}

int pci_msix_vector_eventfd(struct pci_device *device, unsigned vector)
{
    struct pci_msix *msix = &device->msix;
    if (vector >= msix->vector_count || !device->bus)
        return -1;
    pthread_mutex_lock(&device->config_lock);
    int fd = msix->irqfd[vector];
    if (fd < 0) {
        fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fd < 0) {
            pv_log_warning("PCI %02x.0: cannot create an eventfd: %s", device->slot,
                           strerror(errno));
            pthread_mutex_unlock(&device->config_lock);
            return -1;
        }
        const struct pci_msix_entry *entry = &msix->table[vector];
        struct pv_error error = {0};
        int gsi =
            irq_routing_add_msi(device->msi.routing, msix_address(entry), entry->data, &error);
        if (gsi < 0) {
            pv_log_warning("PCI %02x.0: MSI-X vector %u: %s", device->slot, vector, error.message);
            close(fd);
            pthread_mutex_unlock(&device->config_lock);
            return -1;
        }
        msix->irqfd[vector] = fd;
        msix->gsi[vector] = gsi;
        msix->irqfd_attached[vector] = false;
        bool masked = msix_vector_masked(msix, vector);
        msix_vector_update_locked(device, vector, masked);
    }
    pthread_mutex_unlock(&device->config_lock);
    return fd;
}

/* Detaches and unroutes every vector eventfd; stores the fds in `fds` (to be
 * closed after ops->destroy, when no model thread can still write them) and
 * returns how many. Caller holds config_lock. */
unsigned pci_msix_release_locked(struct pci_device *device, int *fds)
{
    struct pci_msix *msix = &device->msix;
    struct irq_routing *routing = device->bus ? device->msi.routing : NULL;
    unsigned count = 0;
    for (unsigned v = 0; v < PCI_MSIX_MAX_VECTORS; v++) {
        if (msix->irqfd[v] < 0)
            continue;
        if (routing) {
            if (msix->irqfd_attached[v])
                irq_routing_irqfd_deassign(routing, msix->irqfd[v], (unsigned)msix->gsi[v]);
            irq_routing_remove(routing, (unsigned)msix->gsi[v]);
        }
        fds[count++] = msix->irqfd[v];
        msix->irqfd[v] = -1;
        msix->gsi[v] = -1;
        msix->irqfd_attached[v] = false;
    }
    return count;
}

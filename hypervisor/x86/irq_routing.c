#include "x86/irq_routing.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

#define PIC_MASTER_PINS 8
#define PIC_PINS 16

static int append_entry_locked(struct irq_routing *routing,
                               const struct kvm_irq_routing_entry *entry)
{
    if (routing->entry_count == routing->entry_capacity) {
        unsigned capacity = routing->entry_capacity ? routing->entry_capacity * 2 : 64;
        struct kvm_irq_routing_entry *entries =
            realloc(routing->entries, capacity * sizeof(*entries));
        if (!entries)
            return -ENOMEM;
        routing->entries = entries;
        routing->entry_capacity = capacity;
    }
    routing->entries[routing->entry_count++] = *entry;
    return 0;
}

static int append_irqchip_route(struct irq_routing *routing, unsigned gsi, unsigned irqchip,
                                unsigned pin)
{
    struct kvm_irq_routing_entry entry;
    memset(&entry, 0, sizeof(entry));
    entry.gsi = gsi;
    entry.type = KVM_IRQ_ROUTING_IRQCHIP;
    entry.u.irqchip.irqchip = irqchip;
    entry.u.irqchip.pin = pin;
    return append_entry_locked(routing, &entry);
}

static void mark_gsi(struct irq_routing *routing, unsigned gsi, bool used)
{
    if (used)
        routing->gsi_used[gsi / 64] |= 1ULL << (gsi % 64);
    else
        routing->gsi_used[gsi / 64] &= ~(1ULL << (gsi % 64));
}

static bool gsi_is_used(const struct irq_routing *routing, unsigned gsi)
{
    return routing->gsi_used[gsi / 64] & (1ULL << (gsi % 64));
}

struct irq_routing *irq_routing_create(int vm_fd, struct pv_error *error)
{
    struct irq_routing *routing = calloc(1, sizeof(*routing));
    if (!routing) {
        pv_error_set(error, -ENOMEM, "out of memory creating the IRQ routing table");
        return NULL;
    }
    routing->vm_fd = vm_fd;
    routing->gsi_count = 1024;
    if (vm_fd >= 0) {
        int count = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQ_ROUTING);
        if (count <= 0) {
            pv_error_set(error, -ENOTSUP, "KVM does not support GSI routing");
            free(routing);
            return NULL;
        }
        routing->gsi_count = (unsigned)count;
    }
    if (routing->gsi_count > IRQ_ROUTING_MAX_GSIS)
        routing->gsi_count = IRQ_ROUTING_MAX_GSIS;
    pthread_mutex_init(&routing->lock, NULL);

    /* The same table as KVM's default_routing, so replacing it changes nothing
     * for the IOAPIC/PIC lines (including GSI 0 -> IOAPIC pin 0 for the PIT). */
    int rc = 0;
    for (unsigned gsi = 0; gsi < IRQ_ROUTING_IOAPIC_PINS && rc == 0; gsi++) {
        rc = append_irqchip_route(routing, gsi, KVM_IRQCHIP_IOAPIC, gsi);
        if (rc == 0 && gsi < PIC_PINS)
            rc = append_irqchip_route(routing, gsi,
                                      gsi < PIC_MASTER_PINS ? KVM_IRQCHIP_PIC_MASTER
                                                            : KVM_IRQCHIP_PIC_SLAVE,
                                      gsi % PIC_MASTER_PINS);
        mark_gsi(routing, gsi, true);
    }
    if (rc < 0) {
        pv_error_set(error, rc, "out of memory creating the IRQ routing table");
        irq_routing_destroy(routing);
        return NULL;
    }
    return routing;
}

void irq_routing_destroy(struct irq_routing *routing)
{
    if (!routing)
        return;
    pthread_mutex_destroy(&routing->lock);
    free(routing->entries);
    free(routing);
}

/* Pushes the whole table; caller holds the lock. */
static int commit_locked(struct irq_routing *routing)
{
    if (routing->vm_fd < 0)
        return 0;
    size_t size = sizeof(struct kvm_irq_routing) +
                  routing->entry_count * sizeof(struct kvm_irq_routing_entry);
    struct kvm_irq_routing *table = calloc(1, size);
    if (!table)
        return -ENOMEM;
    table->nr = routing->entry_count;
    memcpy(table->entries, routing->entries,
           routing->entry_count * sizeof(struct kvm_irq_routing_entry));
    int rc = ioctl(routing->vm_fd, KVM_SET_GSI_ROUTING, table) < 0 ? -errno : 0;
    free(table);
    return rc;
}

static struct kvm_irq_routing_entry *find_msi_locked(struct irq_routing *routing, unsigned gsi)
{
    for (unsigned i = 0; i < routing->entry_count; i++)
        if (routing->entries[i].gsi == gsi && routing->entries[i].type == KVM_IRQ_ROUTING_MSI)
            return &routing->entries[i];
    return NULL;
}

int irq_routing_add_msi(struct irq_routing *routing, uint64_t address, uint32_t data,
                        struct pv_error *error)
{
    pthread_mutex_lock(&routing->lock);
    unsigned gsi = IRQ_ROUTING_IOAPIC_PINS;
    while (gsi < routing->gsi_count && gsi_is_used(routing, gsi))
        gsi++;
    if (gsi >= routing->gsi_count) {
        pthread_mutex_unlock(&routing->lock);
        return pv_error_set(error, -ENOSPC, "no free GSI for an MSI route (%u in use)",
                            routing->gsi_count);
    }
    struct kvm_irq_routing_entry entry;
    memset(&entry, 0, sizeof(entry));
    entry.gsi = gsi;
    entry.type = KVM_IRQ_ROUTING_MSI;
    entry.u.msi.address_lo = (uint32_t)address;
    entry.u.msi.address_hi = (uint32_t)(address >> 32);
    entry.u.msi.data = data;
    int rc = append_entry_locked(routing, &entry);
    if (rc < 0) {
        pthread_mutex_unlock(&routing->lock);
        return pv_error_set(error, rc, "out of memory adding an MSI route");
    }
    rc = commit_locked(routing);
    if (rc < 0) {
        routing->entry_count--;
        pthread_mutex_unlock(&routing->lock);
        return pv_error_set_errno(error, rc, "KVM_SET_GSI_ROUTING failed");
    }
    mark_gsi(routing, gsi, true);
    pthread_mutex_unlock(&routing->lock);
    return (int)gsi;
}

int irq_routing_update_msi(struct irq_routing *routing, unsigned gsi, uint64_t address,
                           uint32_t data, struct pv_error *error)
{
    pthread_mutex_lock(&routing->lock);
    struct kvm_irq_routing_entry *entry = find_msi_locked(routing, gsi);
    if (!entry) {
        pthread_mutex_unlock(&routing->lock);
        return pv_error_set(error, -ENOENT, "GSI %u has no MSI route", gsi);
    }
    if (entry->u.msi.address_lo == (uint32_t)address &&
        entry->u.msi.address_hi == (uint32_t)(address >> 32) && entry->u.msi.data == data) {
        pthread_mutex_unlock(&routing->lock);
        return 0;
    }
    struct kvm_irq_routing_entry previous = *entry;
    entry->u.msi.address_lo = (uint32_t)address;
    entry->u.msi.address_hi = (uint32_t)(address >> 32);
    entry->u.msi.data = data;
    int rc = commit_locked(routing);
    if (rc < 0) {
        *entry = previous;
        pthread_mutex_unlock(&routing->lock);
        return pv_error_set_errno(error, rc, "KVM_SET_GSI_ROUTING failed");
    }
    pthread_mutex_unlock(&routing->lock);
    return 0;
}

int irq_routing_remove(struct irq_routing *routing, unsigned gsi)
{
    pthread_mutex_lock(&routing->lock);
    struct kvm_irq_routing_entry *entry = find_msi_locked(routing, gsi);
    if (!entry) {
        pthread_mutex_unlock(&routing->lock);
        return -ENOENT;
    }
    size_t index = (size_t)(entry - routing->entries);
    memmove(entry, entry + 1, (routing->entry_count - index - 1) * sizeof(*entry));
    routing->entry_count--;
    mark_gsi(routing, gsi, false);
    /* A failed push leaves a stale route in KVM for a GSI nobody signals: harmless. */
    int rc = commit_locked(routing);
    pthread_mutex_unlock(&routing->lock);
    return rc;
}

static int irqfd_ioctl(struct irq_routing *routing, int eventfd, unsigned gsi, uint32_t flags)
{
    if (routing->vm_fd < 0)
        return 0;
    struct kvm_irqfd irqfd;
    memset(&irqfd, 0, sizeof(irqfd));
    irqfd.fd = (uint32_t)eventfd;
    irqfd.gsi = gsi;
    irqfd.flags = flags;
    return ioctl(routing->vm_fd, KVM_IRQFD, &irqfd) < 0 ? -errno : 0;
}

int irq_routing_irqfd_assign(struct irq_routing *routing, int eventfd, unsigned gsi,
                             struct pv_error *error)
{
    int rc = irqfd_ioctl(routing, eventfd, gsi, 0);
    if (rc < 0)
        return pv_error_set_errno(error, rc, "KVM_IRQFD for GSI %u failed", gsi);
    return 0;
}

int irq_routing_irqfd_deassign(struct irq_routing *routing, int eventfd, unsigned gsi)
{
    return irqfd_ioctl(routing, eventfd, gsi, KVM_IRQFD_FLAG_DEASSIGN);
}

unsigned irq_routing_entry_count(struct irq_routing *routing)
{
    pthread_mutex_lock(&routing->lock);
    unsigned count = routing->entry_count;
    pthread_mutex_unlock(&routing->lock);
    return count;
}

bool irq_routing_get_msi(struct irq_routing *routing, unsigned gsi, uint64_t *address,
                         uint32_t *data)
{
    pthread_mutex_lock(&routing->lock);
    struct kvm_irq_routing_entry *entry = find_msi_locked(routing, gsi);
    if (entry) {
        *address = (uint64_t)entry->u.msi.address_hi << 32 | entry->u.msi.address_lo;
        *data = entry->u.msi.data;
    }
    pthread_mutex_unlock(&routing->lock);
    return entry != NULL;
}

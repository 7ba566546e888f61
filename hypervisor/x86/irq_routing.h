/* The VM's KVM GSI routing table and GSI allocator, kept in one place.
 *
 * KVM_SET_GSI_ROUTING replaces the whole table, so every route the VM needs
 * lives here: the default irqchip routes KVM_CREATE_IRQCHIP installs (GSI
 * 0-15 to both the PIC and the IOAPIC pin of the same number, GSI 16-23 to the
 * IOAPIC only; vm_set_irq_line relies on them) plus the MSI routes allocated
 * for irqfds. Each change rebuilds and pushes the full table.
 *
 * With vm_fd < 0 (unit tests without /dev/kvm) the table and the allocator
 * work the same but nothing is pushed to KVM and irqfd calls succeed without
 * effect.
 *
 * Threads: every function may be called from any thread (one mutex). */
#ifndef PLUGVIRT_IRQ_ROUTING_H
#define PLUGVIRT_IRQ_ROUTING_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "pv_error.h"

#define IRQ_ROUTING_IOAPIC_PINS 24 /* GSIs below this are the irqchip pins */
#define IRQ_ROUTING_MAX_GSIS 4096  /* upper bound for the allocator */

struct kvm_irq_routing_entry;

struct irq_routing {
    int vm_fd;          /* not owned; -1 = no KVM */
    unsigned gsi_count; /* GSIs KVM accepts (KVM_CAP_IRQ_ROUTING) */
    pthread_mutex_t lock;
    struct kvm_irq_routing_entry *entries;
    unsigned entry_count, entry_capacity;
    uint64_t gsi_used[IRQ_ROUTING_MAX_GSIS / 64];
};

/* Builds the default table (as KVM_CREATE_IRQCHIP installed it) without pushing it. */
struct irq_routing *irq_routing_create(int vm_fd, struct pv_error *error);
void irq_routing_destroy(struct irq_routing *routing);

/* Allocates a GSI (>= 24) routed to the MSI (address, data) and pushes the
 * table. Returns the GSI or -errno. */
int irq_routing_add_msi(struct irq_routing *routing, uint64_t address, uint32_t data,
                        struct pv_error *error);
/* Changes the message of an MSI route; pushes the table only if it changed. */
int irq_routing_update_msi(struct irq_routing *routing, unsigned gsi, uint64_t address,
                           uint32_t data, struct pv_error *error);
/* Drops an MSI route and frees its GSI; pushes the table. */
int irq_routing_remove(struct irq_routing *routing, unsigned gsi);

/* KVM_IRQFD: writes to eventfd raise gsi in the kernel (assign) or no longer do. */
int irq_routing_irqfd_assign(struct irq_routing *routing, int eventfd, unsigned gsi,
                             struct pv_error *error);
int irq_routing_irqfd_deassign(struct irq_routing *routing, int eventfd, unsigned gsi);

/* For tests and "info": the number of entries and the MSI message of a GSI
 * (returns false if the GSI has no MSI route). */
unsigned irq_routing_entry_count(struct irq_routing *routing);
bool irq_routing_get_msi(struct irq_routing *routing, unsigned gsi, uint64_t *address,
                         uint32_t *data);

#endif

/* Device naming and PCI slot allocation: the policy plugvirt-domain(5) documents.
 * - disk aliases follow libvirt: "virtio-disk<N>" with N the index of the target name
 *   (vda = 0, vdb = 1, ...), so one target always has one alias; "ua-" aliases are the user's;
 * - interface aliases follow libvirt too: "net<N>", the lowest unused N;
 * - PCI slots: user devices get the first free slot from 3 to 31 on bus 0 (libvirt's i440fx
 *   layout keeps 1 and 2 for the ISA bridge and VGA; we keep them free so addresses move
 *   unchanged between plugvirt and libvirt). */
#ifndef PLUGVIRT_DOMAIN_ALLOC_H
#define PLUGVIRT_DOMAIN_ALLOC_H

#include <stdbool.h>

#include "domain.h"

#define DOMAIN_FIRST_PCI_SLOT 3
#define DOMAIN_LAST_PCI_SLOT 31

/* "vda" -> 0, "vdb" -> 1, "vdaa" -> 26; -1 when not a vd* name. */
int domain_disk_index(const char *target_dev);
/* The alias libvirt gives the disk (malloc'd): virtio-disk<N>, or the user's "ua-" alias;
 * NULL when the target is not a vd* name (or out of memory). */
char *domain_disk_alias(const struct domain_disk *disk);
/* Marks the bus-0 slots the definition's devices use (used[0..31]). */
void domain_collect_used_slots(const struct domain_definition *definition, bool used[32]);
/* The first slot from DOMAIN_FIRST_PCI_SLOT not marked used, or -1. */
int domain_first_free_slot(const bool used[32]);
void domain_set_pci_address(struct domain_address *address, unsigned slot);
/* Define time: checks target names and user addresses, gives every PCI device without an
 * address the first free slot. */
int domain_assign_addresses(struct domain_definition *definition, struct pv_error *error);
/* Start time: gives every disk and interface its alias (the inactive XML does not carry
 * aliases). */
int domain_assign_aliases(struct domain_definition *definition, struct pv_error *error);
/* libvirt's alias for a new interface: "net<N>", the lowest N no device of the definition
 * uses (malloc'd; NULL: out of memory). */
char *domain_interface_alias_next(const struct domain_definition *definition);
/* Whether a disk or interface of the definition has that alias. */
bool domain_alias_taken(const struct domain_definition *definition, const char *alias);

#endif

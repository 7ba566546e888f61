/* Device naming and PCI slot allocation for domain definitions (see domain_alloc.h). */
#include "domain_alloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int domain_disk_index(const char *target_dev)
{
    if (target_dev == NULL || strncmp(target_dev, "vd", 2) != 0 || target_dev[2] == '\0')
        return -1;
    int index = 0;
    for (const char *c = target_dev + 2; *c; c++) {
        if (*c < 'a' || *c > 'z')
            return -1;
        index = (index + (c == target_dev + 2 ? 0 : 1)) * 26 + (*c - 'a');
        if (index > 100000)
            return -1;
    }
    return index;
}

/* The alias libvirt gives a disk: virtio-disk<N>, or the user's own "ua-" alias. */
char *domain_disk_alias(const struct domain_disk *disk)
{
    if (disk->alias && strncmp(disk->alias, "ua-", 3) == 0)
        return strdup(disk->alias);
    int index = domain_disk_index(disk->target_dev);
    if (index < 0)
        return NULL;
    char *alias = NULL;
    if (asprintf(&alias, "virtio-disk%d", index) < 0)
        return NULL;
    return alias;
}

static void mark_slot(bool used[32], const struct domain_address *address)
{
    if (address->type == DOMAIN_ADDRESS_PCI && address->bus == 0 && address->slot < 32)
        used[address->slot] = true;
}

void domain_collect_used_slots(const struct domain_definition *definition, bool used[32])
{
    if (definition == NULL)
        return;
    for (size_t i = 0; i < definition->disk_count; i++)
        mark_slot(used, &definition->disks[i].address);
    for (size_t i = 0; i < definition->interface_count; i++)
        mark_slot(used, &definition->interfaces[i].address);
    for (size_t i = 0; i < definition->controller_count; i++)
        mark_slot(used, &definition->controllers[i].address);
    for (size_t i = 0; i < definition->hostdev_count; i++)
        mark_slot(used, &definition->hostdevs[i].address);
}

int domain_first_free_slot(const bool used[32])
{
    for (int slot = DOMAIN_FIRST_PCI_SLOT; slot <= DOMAIN_LAST_PCI_SLOT; slot++)
        if (!used[slot])
            return slot;
    return -1;
}

void domain_set_pci_address(struct domain_address *address, unsigned slot)
{
    memset(address, 0, sizeof(*address));
    address->type = DOMAIN_ADDRESS_PCI;
    address->slot = slot;
}

/* Define time: checks target names and user addresses, gives every PCI device without an
 * address the first free slot. */
int domain_assign_addresses(struct domain_definition *definition, struct pv_error *error)
{
    bool used[32] = {false};
    used[0] = true; /* host bridge */
    struct domain_address *addresses[128];
    size_t count = 0;
    for (size_t i = 0; i < definition->disk_count && count < 128; i++) {
        struct domain_disk *disk = &definition->disks[i];
        for (size_t j = 0; j < i; j++)
            if (disk->target_dev && definition->disks[j].target_dev &&
                strcmp(disk->target_dev, definition->disks[j].target_dev) == 0)
                return pv_error_set(error, -EINVAL,
                                    "target '%s' duplicated for disk sources "
                                    "'%s' and '%s'",
                                    disk->target_dev, definition->disks[j].source, disk->source);
        if (disk->target_bus == DOMAIN_DISK_BUS_VIRTIO)
            addresses[count++] = &disk->address;
    }
    for (size_t i = 0; i < definition->interface_count && count < 128; i++)
        addresses[count++] = &definition->interfaces[i].address;
    for (size_t i = 0; i < definition->hostdev_count && count < 128; i++)
        addresses[count++] = &definition->hostdevs[i].address;
    for (size_t i = 0; i < count; i++) {
        struct domain_address *address = addresses[i];
        if (address->type != DOMAIN_ADDRESS_PCI)
            continue;
        if (address->domain != 0 || address->bus != 0 || address->function != 0 ||
            address->slot > DOMAIN_LAST_PCI_SLOT)
            return pv_error_set(error, -EINVAL,
                                "PCI address %04x:%02x:%02x.%x is not usable (bus 0, slots "
                                "%d-%d, function 0)",
                                address->domain, address->bus, address->slot, address->function,
                                DOMAIN_FIRST_PCI_SLOT, DOMAIN_LAST_PCI_SLOT);
        if (used[address->slot])
            return pv_error_set(error, -EINVAL, "PCI slot 0x%02x is used by two devices",
                                address->slot);
        used[address->slot] = true;
    }
    for (size_t i = 0; i < count; i++) {
        if (addresses[i]->type == DOMAIN_ADDRESS_PCI)
            continue;
        int slot = domain_first_free_slot(used);
        if (slot < 0)
            return pv_error_set(error, -ENOSPC, "no free PCI slot left");
        domain_set_pci_address(addresses[i], (unsigned)slot);
        used[slot] = true;
    }
    return 0;
}

/* Start time: gives every disk its alias (the inactive XML does not carry aliases). */
int domain_assign_aliases(struct domain_definition *definition, struct pv_error *error)
{
    for (size_t i = 0; i < definition->disk_count; i++) {
        struct domain_disk *disk = &definition->disks[i];
        if (disk->alias &&
            (strncmp(disk->alias, "ua-", 3) == 0 || strncmp(disk->alias, "virtio-disk", 11) == 0))
            continue;
        char *alias = domain_disk_alias(disk);
        if (alias == NULL)
            return pv_error_set(error, -EINVAL, "disk target '%s' is not a virtio name (vdX)",
                                disk->target_dev ? disk->target_dev : "");
        free(disk->alias);
        disk->alias = alias;
    }
    for (size_t i = 0; i < definition->interface_count; i++) {
        struct domain_interface *interface = &definition->interfaces[i];
        if (interface->alias &&
            (strncmp(interface->alias, "ua-", 3) == 0 || strncmp(interface->alias, "net", 3) == 0))
            continue;
        char *alias = domain_interface_alias_next(definition);
        if (alias == NULL)
            return pv_error_set(error, -ENOMEM, "out of memory");
        free(interface->alias);
        interface->alias = alias;
    }
    return 0;
}

char *domain_interface_alias_next(const struct domain_definition *definition)
{
    for (unsigned index = 0;; index++) {
        char candidate[32];
        snprintf(candidate, sizeof(candidate), "net%u", index);
        if (!domain_alias_taken(definition, candidate))
            return strdup(candidate);
    }
}

bool domain_alias_taken(const struct domain_definition *definition, const char *alias)
{
    if (definition == NULL || alias == NULL)
        return false;
    for (size_t i = 0; i < definition->disk_count; i++)
        if (definition->disks[i].alias && strcmp(definition->disks[i].alias, alias) == 0)
            return true;
    for (size_t i = 0; i < definition->interface_count; i++)
        if (definition->interfaces[i].alias && strcmp(definition->interfaces[i].alias, alias) == 0)
            return true;
    return false;
}

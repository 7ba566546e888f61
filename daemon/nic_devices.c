/* Interfaces in definitions and hotplug requests: MAC uniqueness on the host, and what an
 * attached interface is given (alias, PCI slot, tap name). See domains_internal.h. */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "domain_alloc.h"
#include "domains_internal.h"
#include "tap_device.h"
#include "store.h"

static bool definition_has_mac(const struct domain_definition *definition, const char *mac,
                               const struct domain_interface *except)
{
    for (size_t i = 0; definition && i < definition->interface_count; i++) {
        const struct domain_interface *interface = &definition->interfaces[i];
        if (interface != except && interface->mac && strcasecmp(interface->mac, mac) == 0)
            return true;
    }
    return false;
}

/* The stored XML is the daemon's own formatting (lower-case MAC, one spelling of <mac>), so
 * a text search is exact and needs no parse of every definition. */
static bool xml_has_mac(const char *xml, const char *mac)
{
    char needle[64];
    snprintf(needle, sizeof(needle), "<mac address='%s'/>", mac);
    return xml && strcasestr(xml, needle) != NULL;
}

int domains_check_mac_unique(struct domains *domains, const char *self_uuid, const char *mac,
                             struct pv_error *error)
{
    if (!mac)
        return 0;
    for (struct runtime *runtime = domains->runtimes; runtime; runtime = runtime->next)
        if (strcasecmp(runtime->uuid, self_uuid) != 0 && !runtime->stopping &&
            definition_has_mac(runtime->live, mac, NULL))
            return pv_error_set(error, -EEXIST,
                                "MAC address %s is already used by domain '%s'; choose another "
                                "<mac address> or leave it out to have one generated",
                                mac, runtime->name);
    struct store_domain *rows = NULL;
    size_t count = 0;
    int rc = store_domain_list(domains->store, &rows, &count, error);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < count && rc == 0; i++)
        if (strcasecmp(rows[i].uuid, self_uuid) != 0 &&
            (xml_has_mac(rows[i].persistent_xml, mac) || xml_has_mac(rows[i].live_xml, mac)))
            rc = pv_error_set(error, -EEXIST,
                              "MAC address %s is already used by domain '%s'; choose another "
                              "<mac address> or leave it out to have one generated",
                              mac, rows[i].name);
    store_domain_list_free(rows, count);
    return rc;
}

int domains_generate_mac(struct domains *domains, char **mac, struct pv_error *error)
{
    for (int attempt = 0; attempt < 64; attempt++) {
        /* A v4 UUID's first hex digits are random: 3 bytes of them, after QEMU's prefix. */
        char uuid[DOMAIN_UUID_STRING_LENGTH + 1];
        domain_uuid_generate(uuid);
        char *candidate = NULL;
        if (asprintf(&candidate, "52:54:00:%.2s:%.2s:%.2s", uuid, uuid + 2, uuid + 4) < 0)
            return pv_error_set(error, -ENOMEM, "out of memory");
        if (domains_check_mac_unique(domains, "", candidate, NULL) == 0) {
            *mac = candidate;
            return 0;
        }
        free(candidate);
    }
    return pv_error_set(error, -EEXIST, "cannot find an unused MAC address");
}

int domains_check_definition_macs(struct domains *domains,
                                  const struct domain_definition *definition,
                                  struct pv_error *error)
{
    for (size_t i = 0; i < definition->interface_count; i++) {
        const struct domain_interface *interface = &definition->interfaces[i];
        if (definition_has_mac(definition, interface->mac, interface))
            return pv_error_set(error, -EEXIST, "MAC address %s is used by two interfaces",
                                interface->mac);
        int rc = domains_check_mac_unique(domains, definition->uuid, interface->mac, error);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* libvirt's generated tap names are "vnet<N>": the lowest N free in the namespace and in the
 * definition (a tap another job is about to open is caught by tap_device_open's existence check).
 */
static char *next_tap_name(const struct domain_definition *live)
{
    for (unsigned index = 0; index < 100000; index++) {
        char name[IFNAMSIZ];
        snprintf(name, sizeof(name), "vnet%u", index);
        bool used = tap_device_exists(name);
        for (size_t i = 0; !used && live && i < live->interface_count; i++)
            used = live->interfaces[i].target_dev && !strcmp(live->interfaces[i].target_dev, name);
        if (!used)
            return strdup(name);
    }
    return NULL;
}

int domains_allocate_interface(struct domain_definition *live, struct domain_definition *persistent,
                               struct domain_interface *interface, struct pv_error *error)
{
    if (domain_find_interface(live, interface->mac, NULL))
        return pv_error_set(error, -EEXIST, "MAC address %s is already used by this domain",
                            interface->mac);
    if (domain_find_interface(persistent, interface->mac, NULL))
        return pv_error_set(error, -EEXIST,
                            "MAC address %s is already used in the persistent definition",
                            interface->mac);
    if (!interface->alias || strncmp(interface->alias, "ua-", 3) != 0) {
        char *alias = domain_interface_alias_next(live ? live : persistent);
        if (!alias)
            return pv_error_set(error, -ENOMEM, "out of memory");
        free(interface->alias);
        interface->alias = alias;
    }
    if (domain_alias_taken(live, interface->alias))
        return pv_error_set(error, -EEXIST, "device alias '%s' is already in use",
                            interface->alias);
    if (live && interface->target_managed && !interface->target_dev) {
        /* Named now, so the journal and the live XML know the tap before it exists. */
        interface->target_dev = next_tap_name(live);
        if (!interface->target_dev)
            return pv_error_set(error, -ENOSPC, "no free tap name");
    }
    return domains_allocate_slot(live, persistent, &interface->address, error);
}

bool domains_is_generated_tap_name(const struct domain_interface *interface)
{
    /* libvirt regenerates managed "vnet" names at every start; so does plugvirt. */
    return interface->target_managed && interface->target_dev &&
           strncmp(interface->target_dev, "vnet", 4) == 0;
}

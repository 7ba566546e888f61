/* Device attach/detach requests (virsh's attach-device/detach-device with --live/--config)
 * and the hotplug ops through which the orchestrator (hotplug.c) changes the definitions.
 *
 * A live request is checked here first (so that most mistakes fail before anything is
 * queued), then queued as a hotplug job. Everything that depends on the other jobs of the
 * domain (target, alias, PCI slot, image sharing) is decided again when the job reaches the
 * head of the queue (ops_attach_prepare), and every change of the definitions is made by
 * ops_apply inside the store transaction of the job's journal step: the request's reply
 * only reports what the job did. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "domain_alloc.h"
#include "device_args.h"
#include "domains_internal.h"
#include "hotplug.h"
#include "pv_log.h"
#include "store.h"

/* --------------------------------------------------------------- image sharing --- */

/* libvirt's rule: two users of one image conflict unless both only read it or both mark it
 * <shareable/>. Images are compared by device and inode (two paths, one file). */
static bool same_image(const struct domain_disk *a, const struct stat *a_status,
                       const struct domain_disk *b)
{
    struct stat b_status;
    if (!b->source)
        return false;
    if (strcmp(a->source, b->source) == 0)
        return true;
    return a_status && stat(b->source, &b_status) == 0 && b_status.st_dev == a_status->st_dev &&
           b_status.st_ino == a_status->st_ino;
}

static bool disks_conflict(const struct domain_disk *a, const struct domain_disk *b)
{
    if (a->readonly && b->readonly)
        return false;
    return !(a->shareable && b->shareable);
}

static int sharing_error(struct pv_error *error, const struct domain_disk *disk,
                         const char *domain_name, const struct domain_disk *other)
{
    return pv_error_set(error, -EBUSY,
                        "disk source '%s' is already used %s by domain '%s' (target %s); "
                        "mark both disks <shareable/> to share it",
                        disk->source, other->readonly ? "read-only" : "read-write", domain_name,
                        other->target_dev ? other->target_dev : "?");
}

int domains_check_disk_sharing(struct domains *domains, const char *uuid,
                               const struct domain_disk *disk, struct pv_error *error)
{
    if (!disk->source)
        return 0;
    struct stat status;
    bool have_status = stat(disk->source, &status) == 0;
    for (struct runtime *runtime = domains->runtimes; runtime; runtime = runtime->next) {
        if (runtime->stopping || !runtime->live)
            continue;
        bool self = strcasecmp(runtime->uuid, uuid) == 0;
        for (size_t i = 0; i < runtime->live->disk_count; i++) {
            const struct domain_disk *other = &runtime->live->disks[i];
            if (self && other->target_dev && disk->target_dev &&
                strcmp(other->target_dev, disk->target_dev) == 0)
                continue; /* the disk itself */
            if (same_image(disk, have_status ? &status : NULL, other) &&
                disks_conflict(disk, other))
                return sharing_error(error, disk, runtime->name, other);
        }
    }
    return 0;
}

/* ----------------------------------------------------------- definition updates --- */

/* The persistent definition, for an operation with --config; NULL with `error` set when it
 * cannot be read (a transient domain: NULL, no error). */
static struct domain_definition *load_persistent(struct domains *domains, const char *uuid,
                                                 struct pv_error *error)
{
    struct store_domain row;
    if (store_domain_get(domains->store, uuid, &row, error) < 0)
        return NULL;
    struct domain_definition *persistent =
        row.persistent_xml ? domains_parse_definition(domains, row.persistent_xml, error) : NULL;
    store_domain_clear(&row);
    return persistent;
}

/* Whether the definition has the device: a disk by target, an interface by MAC. */
static bool device_in(struct domain_definition *definition, const struct domain_device *device)
{
    if (device->kind == DOMAIN_DEVICE_INTERFACE)
        return domain_find_interface(definition, device->interface.mac,
                                     device->interface.mac ? NULL : device->interface.alias) !=
               NULL;
    return domain_find_disk(definition, device->disk.target_dev) != NULL;
}

/* Removes the device (a disk or an interface) from the live definition, if it is there. */
static bool remove_live_device(struct runtime *runtime, const struct domain_device *device)
{
    if (device->kind != DOMAIN_DEVICE_INTERFACE)
        return domains_remove_live_disk(runtime, device->disk.target_dev);
    if (runtime == NULL || runtime->live == NULL || !device_in(runtime->live, device))
        return false;
    struct domain_device key = {.kind = DOMAIN_DEVICE_INTERFACE};
    key.interface.mac = device->interface.mac;
    struct pv_error error = {0};
    if (domain_definition_remove_device(runtime->live, &key, &error) < 0) {
        pv_log_error("domain %s: %s", runtime->name, error.message);
        return false;
    }
    return true;
}

/* Adds the device to (add) or removes its target from the persistent definition, if that is
 * not already so, and saves it. Idempotent: recovery may repeat it. */
static int persistent_update(struct domains *domains, const char *uuid,
                             const struct domain_device *device, bool add, struct pv_error *error)
{
    struct domain_definition *persistent = load_persistent(domains, uuid, error);
    if (!persistent) /* unreadable: the error; transient: nothing to change */
        return error->code;
    int rc = 0;
    bool present = device_in(persistent, device);
    if (add && !present) {
        struct domain_device copy = *device;
        if (device->kind == DOMAIN_DEVICE_INTERFACE) {
            copy.interface.hotplug_state = DOMAIN_HOTPLUG_ATTACHED;
            if (domains_is_generated_tap_name(&device->interface))
                copy.interface.target_dev = NULL; /* made again at each start */
        } else {
            copy.disk.hotplug_state = DOMAIN_HOTPLUG_ATTACHED;
        }
        rc = domain_definition_add_device(persistent, &copy, error);
    } else if (!add && present) {
        /* An interface by its MAC: persistent definitions carry no aliases. */
        struct domain_device key = {.kind = DOMAIN_DEVICE_INTERFACE};
        if (device->kind == DOMAIN_DEVICE_INTERFACE && device->interface.mac)
            key.interface.mac = device->interface.mac;
        rc = domain_definition_remove_device(persistent, key.interface.mac ? &key : device, error);
    } else {
        domain_definition_free(persistent);
        return 0;
    }
    if (rc == 0)
        rc = domains_save(domains, NULL, persistent, error);
    domain_definition_free(persistent);
    return rc;
}

bool domains_remove_live_disk(struct runtime *runtime, const char *target_dev)
{
    if (runtime == NULL || runtime->live == NULL || target_dev == NULL ||
        domain_find_disk(runtime->live, target_dev) == NULL)
        return false;
    struct domain_device key = {.kind = DOMAIN_DEVICE_DISK};
    key.disk.target_dev = (char *)target_dev;
    struct pv_error error = {0};
    if (domain_definition_remove_device(runtime->live, &key, &error) < 0) {
        pv_log_error("domain %s: %s", runtime->name, error.message);
        return false;
    }
    return true;
}

/* Checks the disk against a definition (live or persistent, either may be NULL) and gives it
 * its alias and, unless the user chose one, the first free PCI slot of both. */
static int check_target(struct domain_definition *live, struct domain_definition *persistent,
                        const char *target, struct pv_error *error)
{
    struct domain_disk *existing = domain_find_disk(live, target);
    if (existing)
        return pv_error_set(error, -EEXIST, "target %s is already used%s", target,
                            existing->hotplug_state == DOMAIN_HOTPLUG_DETACHING
                                ? " (by a disk the guest has not released yet)"
                                : "");
    if (domain_find_disk(persistent, target))
        return pv_error_set(error, -EEXIST,
                            "target %s is already used in the persistent definition", target);
    return 0;
}

static int allocate_disk(struct domain_definition *live, struct domain_definition *persistent,
                         struct domain_disk *disk, struct pv_error *error)
{
    int rc = check_target(live, persistent, disk->target_dev, error);
    if (rc < 0)
        return rc;
    char *alias = domain_disk_alias(disk);
    if (alias == NULL)
        return pv_error_set(error, -EINVAL, "disk target '%s' is not a virtio disk name (vdX)",
                            disk->target_dev);
    free(disk->alias);
    disk->alias = alias;
    if (domain_alias_taken(live, alias))
        return pv_error_set(error, -EEXIST, "device alias '%s' is already in use", alias);
    return domains_allocate_slot(live, persistent, &disk->address, error);
}

int domains_allocate_slot(struct domain_definition *live, struct domain_definition *persistent,
                          struct domain_address *address, struct pv_error *error)
{
    bool used[32] = {true};
    domain_collect_used_slots(live, used);
    domain_collect_used_slots(persistent, used);
    if (address->type == DOMAIN_ADDRESS_PCI) {
        if (address->bus != 0 || address->function != 0 || address->slot < DOMAIN_FIRST_PCI_SLOT ||
            address->slot > DOMAIN_LAST_PCI_SLOT || used[address->slot])
            return pv_error_set(error, -EBUSY, "PCI address %04x:%02x:%02x.%x is not free",
                                address->domain, address->bus, address->slot, address->function);
        return 0;
    }
    int slot = domain_first_free_slot(used);
    if (slot < 0)
        return pv_error_set(error, -ENOSPC, "no free PCI slot left");
    domain_set_pci_address(address, (unsigned)slot);
    return 0;
}

/* ------------------------------------------------------------------ hotplug ops --- */

static int ops_attach_prepare(void *opaque, const char *uuid, struct domain_device *device,
                              unsigned flags, struct pv_error *error)
{
    struct domains *domains = opaque;
    struct runtime *runtime = domains_find_runtime(domains, uuid);
    if (!runtime || runtime->stopping || !runtime->live)
        return pv_error_set(error, -ENOTCONN, NOT_RUNNING_MESSAGE);
    struct domain_definition *persistent = NULL;
    if (flags & DOMAINS_FLAG_CONFIG) {
        persistent = load_persistent(domains, uuid, error);
        if (!persistent && error->code)
            return error->code;
    }
    int rc;
    if (device->kind == DOMAIN_DEVICE_INTERFACE) {
        rc = domains_allocate_interface(runtime->live, persistent, &device->interface, error);
        if (rc == 0)
            rc = domains_check_mac_unique(domains, uuid, device->interface.mac, error);
    } else {
        rc = allocate_disk(runtime->live, persistent, &device->disk, error);
        if (rc == 0)
            rc = domains_check_disk_sharing(domains, uuid, &device->disk, error);
    }
    if (persistent)
        domain_definition_free(persistent);
    return rc;
}

static void set_live_state(struct runtime *runtime, const struct domain_device *device,
                           enum domain_hotplug_state state)
{
    if (device->kind == DOMAIN_DEVICE_INTERFACE) {
        struct domain_interface *interface =
            domain_find_interface(runtime->live, device->interface.mac, NULL);
        if (interface)
            interface->hotplug_state = state;
        return;
    }
    struct domain_disk *disk = domain_find_disk(runtime->live, device->disk.target_dev);
    if (disk)
        disk->hotplug_state = state;
}

static void device_detail(const struct domain_device *device, char *out, size_t size)
{
    if (device->kind == DOMAIN_DEVICE_INTERFACE) {
        const struct domain_interface *interface = &device->interface;
        snprintf(out, size, "interface %s (%s) at %02x.%x", interface->mac ? interface->mac : "",
                 interface->alias ? interface->alias : "", interface->address.slot,
                 interface->address.function);
        return;
    }
    const struct domain_disk *disk = &device->disk;
    snprintf(out, size, "%s (%s) at %02x.%x", disk->target_dev, disk->alias ? disk->alias : "",
             disk->address.slot, disk->address.function);
}

static int ops_apply(void *opaque, const char *uuid, enum hotplug_change change,
                     const struct domain_device *device, unsigned flags, struct pv_error *error)
{
    struct domains *domains = opaque;
    struct runtime *runtime = domains_find_runtime(domains, uuid);
    if (!runtime || !runtime->live ||
        (device->kind != DOMAIN_DEVICE_DISK && device->kind != DOMAIN_DEVICE_INTERFACE))
        return 0; /* the domain stopped: nothing of its live state is kept */
    bool config = (flags & DOMAINS_FLAG_CONFIG) != 0;
    const char *event = NULL;
    int rc = 0;
    switch (change) {
    case HOTPLUG_ATTACH_BEGIN:
    case HOTPLUG_ATTACH_DONE:
        if (!device_in(runtime->live, device))
            rc = domain_definition_add_device(runtime->live, device, error);
        set_live_state(runtime, device,
                       change == HOTPLUG_ATTACH_BEGIN ? DOMAIN_HOTPLUG_ATTACHING
                                                      : DOMAIN_HOTPLUG_ATTACHED);
        if (rc == 0 && change == HOTPLUG_ATTACH_DONE && config)
            rc = persistent_update(domains, uuid, device, true, error);
        /* As libvirt does after device_add: the guest may see the link up for a moment. */
        if (change == HOTPLUG_ATTACH_DONE && device->kind == DOMAIN_DEVICE_INTERFACE &&
            device->interface.link_down && device->interface.alias)
            runtime_set_link_down(runtime, device->interface.alias);
        event = change == HOTPLUG_ATTACH_DONE ? "device-added" : NULL;
        break;
    case HOTPLUG_ATTACH_UNDONE:
        remove_live_device(runtime, device);
        break;
    case HOTPLUG_DETACH_BEGIN:
    case HOTPLUG_DETACH_PENDING:
        set_live_state(runtime, device, DOMAIN_HOTPLUG_DETACHING);
        if (change == HOTPLUG_DETACH_PENDING && config)
            rc = persistent_update(domains, uuid, device, false, error);
        event = change == HOTPLUG_DETACH_PENDING ? "device-detach-pending" : NULL;
        break;
    case HOTPLUG_DETACH_DONE:
        remove_live_device(runtime, device);
        if (config)
            rc = persistent_update(domains, uuid, device, false, error);
        event = "device-removed";
        break;
    case HOTPLUG_DETACH_REFUSED:
        set_live_state(runtime, device, DOMAIN_HOTPLUG_ATTACHED);
        break;
    }
    if (rc == 0)
        rc = domains_save(domains, runtime, NULL, error);
    if (rc == 0 && event) {
        char detail[256];
        device_detail(device, detail, sizeof(detail));
        domains_emit_event(domains, runtime->uuid, runtime->name, event, detail);
    }
    return rc;
}

static struct domain_device *ops_lookup(void *opaque, const char *uuid, const char *key)
{
    struct domains *domains = opaque;
    struct runtime *runtime = domains_find_runtime(domains, uuid);
    /* The store key: a disk's target dev, an interface's MAC. */
    struct domain_interface *interface =
        runtime && key && strchr(key, ':') ? domain_find_interface(runtime->live, key, NULL) : NULL;
    if (interface) {
        struct domain_device found = {.kind = DOMAIN_DEVICE_INTERFACE, .interface = *interface};
        return domain_device_copy(&found);
    }
    struct domain_disk *disk = runtime ? domain_find_disk(runtime->live, key) : NULL;
    if (!disk)
        return NULL;
    struct domain_device found = {.kind = DOMAIN_DEVICE_DISK, .disk = *disk};
    return domain_device_copy(&found);
}

const struct hotplug_ops domains_hotplug_ops = {
    .attach_prepare = ops_attach_prepare,
    .apply = ops_apply,
    .lookup = ops_lookup,
};

/* ------------------------------------------------------------------- requests --- */

struct device_request {
    struct domains *domains;
    unsigned flags;
    domains_done_fn done;
    void *opaque;
};

/* Resolves empty flags to "current" and checks --live against the domain's state. */
static int resolve_flags(unsigned *flags, struct runtime *runtime, domains_done_fn done,
                         void *opaque)
{
    if (*flags & DOMAINS_FLAG_LIVE_IF_RUNNING) {
        *flags &= ~(unsigned)DOMAINS_FLAG_LIVE_IF_RUNNING;
        if (runtime)
            *flags |= DOMAINS_FLAG_LIVE;
    }
    if (*flags == 0)
        *flags = runtime ? DOMAINS_FLAG_LIVE : DOMAINS_FLAG_CONFIG;
    if ((*flags & DOMAINS_FLAG_LIVE) && runtime == NULL) {
        domains_reply_error(done, opaque, "not-running", NOT_RUNNING_MESSAGE);
        return -EINVAL;
    }
    if ((*flags & DOMAINS_FLAG_LIVE) && !runtime->qmp_ready) {
        domains_reply_error(done, opaque, "busy",
                            "domain is starting or being reconnected; try again in a moment");
        return -EBUSY;
    }
    return 0;
}

static void reply_interface(domains_done_fn done, void *opaque,
                            const struct domain_interface *interface)
{
    char address[32];
    snprintf(address, sizeof(address), "%04x:%02x:%02x.%x", interface->address.domain,
             interface->address.bus, interface->address.slot, interface->address.function);
    struct json_writer writer;
    json_writer_init(&writer, false);
    json_writer_begin_object(&writer);
    json_writer_member_string(&writer, "device", interface->alias ? interface->alias : "");
    json_writer_member_string(&writer, "mac", interface->mac ? interface->mac : "");
    json_writer_member_string(&writer, "target",
                              interface->target_dev ? interface->target_dev : "");
    json_writer_member_string(&writer, "address", address);
    json_writer_end_object(&writer);
    domains_reply_writer(done, opaque, &writer);
}

static void reply_device(domains_done_fn done, void *opaque, const struct domain_disk *disk)
{
    char address[32];
    snprintf(address, sizeof(address), "%04x:%02x:%02x.%x", disk->address.domain, disk->address.bus,
             disk->address.slot, disk->address.function);
    struct json_writer writer;
    json_writer_init(&writer, false);
    json_writer_begin_object(&writer);
    json_writer_member_string(&writer, "device", disk->alias ? disk->alias : "");
    json_writer_member_string(&writer, "target", disk->target_dev ? disk->target_dev : "");
    json_writer_member_string(&writer, "address", address);
    json_writer_end_object(&writer);
    domains_reply_writer(done, opaque, &writer);
}

static void reply_hotplug_failure(struct device_request *request,
                                  const struct hotplug_result *result)
{
    struct domains_result reply = {
        .code = result->code[0] ? result->code : "internal",
        .message = result->message[0] ? result->message : strerror(-result->status),
        .qmp_class = result->qmp_class[0] ? result->qmp_class : NULL,
        .step = result->step[0] ? result->step : NULL,
    };
    request->done(request->opaque, &reply);
}

static void on_attach_done(void *opaque, const struct hotplug_result *result)
{
    struct device_request *request = opaque;
    if (result->status < 0 || !result->device)
        reply_hotplug_failure(request, result);
    else if (result->device->kind == DOMAIN_DEVICE_INTERFACE)
        reply_interface(request->done, request->opaque, &result->device->interface);
    else
        reply_device(request->done, request->opaque, &result->device->disk);
    free(request);
}

static void reply_detached(domains_done_fn done, void *opaque, const char *pending_message)
{
    struct json_writer writer;
    json_writer_init(&writer, false);
    json_writer_begin_object(&writer);
    json_writer_member_string(&writer, "status", pending_message ? "pending" : "detached");
    if (pending_message)
        json_writer_member_string(&writer, "message", pending_message);
    json_writer_end_object(&writer);
    domains_reply_writer(done, opaque, &writer);
}

static void on_detach_done(void *opaque, const struct hotplug_result *result)
{
    struct device_request *request = opaque;
    if (result->status < 0 && !result->pending)
        reply_hotplug_failure(request, result);
    else
        reply_detached(request->done, request->opaque, result->pending ? result->message : NULL);
    free(request);
}

/* What attach and detach both hold while they check a request. */
struct device_operation {
    struct store_domain row;
    struct runtime *runtime; /* NULL when shut off or being stopped */
    unsigned flags;          /* resolved: DOMAINS_FLAG_LIVE and/or DOMAINS_FLAG_CONFIG */
    struct domain_device *device;
    struct domain_definition *persistent; /* with DOMAINS_FLAG_CONFIG */
};

/* Finds the domain, resolves the flags, parses the device XML and, for --config, the
 * persistent definition; on failure replies, releases what it took and returns < 0. */
static int device_operation_begin(struct device_operation *operation, struct domains *domains,
                                  const char *key, const char *xml, unsigned flags,
                                  domains_done_fn done, void *opaque)
{
    *operation = (struct device_operation){.flags = flags};
    if (domains_lookup(domains, key, &operation->row, done, opaque) < 0)
        return -1;
    struct pv_error error = {0};
    operation->runtime = domains_find_runtime(domains, operation->row.uuid);
    if (operation->runtime && operation->runtime->stopping)
        operation->runtime = NULL;
    if (resolve_flags(&operation->flags, operation->runtime, done, opaque) < 0)
        goto fail;
    operation->device =
        xml ? domain_xml_parse_device(xml, strlen(xml), domains->config->schema_dir, &error) : NULL;
    if (operation->device == NULL) {
        domains_reply_error(done, opaque, xml ? domains_xml_error_code(&error) : "invalid-argument",
                            "%s", xml ? error.message : "missing parameter 'xml'");
        goto fail;
    }
    bool is_interface = operation->device->kind == DOMAIN_DEVICE_INTERFACE;
    if (!is_interface &&
        (operation->device->kind != DOMAIN_DEVICE_DISK || !operation->device->disk.target_dev)) {
        domains_reply_error(done, opaque, "unsupported",
                            "unsupported: only <disk> (with <target dev=...>) and <interface> "
                            "devices can be attached or detached so far");
        goto fail;
    }
    if ((is_interface ? operation->device->interface.hotplug_state
                      : operation->device->disk.hotplug_state) != DOMAIN_HOTPLUG_ATTACHED) {
        domains_reply_error(done, opaque, "invalid-argument",
                            "<plugvirt:hotplug> is status that plugvirtd reports in live XML, "
                            "not part of a device definition; remove it");
        goto fail;
    }
    if ((operation->flags & DOMAINS_FLAG_CONFIG) && operation->row.persistent_xml) {
        operation->persistent =
            domains_parse_definition(domains, operation->row.persistent_xml, &error);
        if (operation->persistent == NULL) {
            domains_reply_error(done, opaque, "internal", "stored definition: %s", error.message);
            goto fail;
        }
    }
    return 0;
fail:
    if (operation->device)
        domain_device_free(operation->device);
    store_domain_clear(&operation->row);
    return -1;
}

static void device_operation_end(struct device_operation *operation)
{
    if (operation->device)
        domain_device_free(operation->device);
    if (operation->persistent)
        domain_definition_free(operation->persistent);
    store_domain_clear(&operation->row);
}

static struct device_request *device_request_new(struct domains *domains, unsigned flags,
                                                 domains_done_fn done, void *opaque)
{
    struct device_request *request = calloc(1, sizeof(*request));
    if (request == NULL) {
        domains_reply_error(done, opaque, "internal", "out of memory");
        return NULL;
    }
    *request = (struct device_request){domains, flags, done, opaque};
    return request;
}

/* attach-interface: the checks that need no job, then a job (live) or the persistent
 * definition (--config alone). */
static void attach_interface(struct domains *domains, struct device_operation *operation,
                             domains_done_fn done, void *opaque)
{
    struct pv_error error = {0};
    struct domain_interface *interface = &operation->device->interface;
    unsigned flags = operation->flags;
    if (!interface->mac && domains_generate_mac(domains, &interface->mac, &error) < 0) {
        domains_reply_error(done, opaque, "internal", "%s", error.message);
        return;
    }
    if (domains_check_mac_unique(domains, operation->row.uuid, interface->mac, &error) < 0 ||
        device_args_interface_check_model(interface, &error) < 0) {
        domains_reply_error(done, opaque, "preflight-failed", "%s", error.message);
        return;
    }
    struct runtime *runtime = operation->runtime;
    if ((flags & DOMAINS_FLAG_LIVE) && hotplug_interface_check(interface, &error) < 0) {
        domains_reply_error(done, opaque, "unsupported", "%s", error.message);
        return;
    }
    if (flags & DOMAINS_FLAG_LIVE) {
        if (domain_find_interface(runtime->live, interface->mac, NULL) ||
            domain_find_interface(operation->persistent, interface->mac, NULL)) {
            domains_reply_error(done, opaque, "preflight-failed",
                                "MAC address %s is already used by this domain", interface->mac);
            return;
        }
        struct device_request *request = device_request_new(domains, flags, done, opaque);
        if (request == NULL)
            return;
        if (hotplug_attach(domains->hotplug, operation->row.uuid, runtime->qmp, operation->device,
                           flags, on_attach_done, request, &error) < 0) {
            domains_reply_error(done, opaque,
                                error.code == -EBUSY        ? "busy"
                                : error.code == -EOPNOTSUPP ? "unsupported"
                                                            : "internal",
                                "%s", error.message);
            free(request);
        }
        return;
    }
    if (!operation->persistent) {
        domains_reply_error(done, opaque, "invalid-argument",
                            "cannot change the persistent definition of a transient domain");
        return;
    }
    if (domains_allocate_interface(NULL, operation->persistent, interface, &error) < 0 ||
        domain_definition_add_device(operation->persistent, operation->device, &error) < 0 ||
        domains_save(domains, NULL, operation->persistent, &error) < 0) {
        domains_reply_error(done, opaque, error.code == -ENOMEM ? "internal" : "preflight-failed",
                            "%s", error.message);
        return;
    }
    reply_interface(done, opaque, interface);
}

/* detach-interface: by MAC, or by alias when the XML gives no MAC. */
static void detach_interface(struct domains *domains, struct device_operation *operation,
                             int timeout_ms, domains_done_fn done, void *opaque)
{
    struct pv_error error = {0};
    const struct domain_interface *wanted = &operation->device->interface;
    if (!wanted->mac && !wanted->alias) {
        domains_reply_error(done, opaque, "invalid-argument",
                            "say which interface to detach: <mac address=...> or <alias name=...>");
        return;
    }
    const char *what = wanted->mac ? wanted->mac : wanted->alias;
    unsigned flags = operation->flags;
    bool live = (flags & DOMAINS_FLAG_LIVE) != 0;
    struct domain_interface *live_interface =
        live ? domain_find_interface(operation->runtime->live, wanted->mac,
                                     wanted->mac ? NULL : wanted->alias)
             : NULL;
    if (live && live_interface == NULL) {
        domains_reply_error(done, opaque, "invalid-argument",
                            "no interface with %s %s in the live definition",
                            wanted->mac ? "MAC address" : "alias", what);
        return;
    }
    if ((flags & DOMAINS_FLAG_CONFIG) && !device_in(operation->persistent, operation->device)) {
        domains_reply_error(done, opaque, "invalid-argument",
                            "no interface with %s %s in the persistent definition",
                            wanted->mac ? "MAC address" : "alias", what);
        return;
    }
    if (live) {
        struct device_request *request = device_request_new(domains, flags, done, opaque);
        if (request == NULL)
            return;
        struct domain_device resolved = {.kind = DOMAIN_DEVICE_INTERFACE,
                                         .interface = *live_interface};
        if (hotplug_detach(domains->hotplug, operation->row.uuid, operation->runtime->qmp,
                           &resolved, flags, timeout_ms, on_detach_done, request, &error) < 0) {
            domains_reply_error(done, opaque, error.code == -EBUSY ? "busy" : "internal", "%s",
                                error.message);
            free(request);
        }
        return;
    }
    if (persistent_update(domains, operation->row.uuid, operation->device, false, &error) < 0) {
        domains_reply_error(done, opaque, "internal",
                            "the persistent definition could not be updated: %s", error.message);
        return;
    }
    reply_detached(done, opaque, NULL);
}

void domains_attach_device(struct domains *domains, const char *key, const char *xml,
                           unsigned flags, domains_done_fn done, void *opaque)
{
    struct device_operation operation;
    if (device_operation_begin(&operation, domains, key, xml, flags, done, opaque) < 0)
        return;
    if (operation.device->kind == DOMAIN_DEVICE_INTERFACE) {
        attach_interface(domains, &operation, done, opaque);
        device_operation_end(&operation);
        return;
    }
    struct pv_error error = {0};
    struct runtime *runtime = operation.runtime;
    flags = operation.flags;
    struct domain_disk *disk = &operation.device->disk;
    bool live = (flags & DOMAINS_FLAG_LIVE) != 0;
    if (live && disk->target_bus != DOMAIN_DISK_BUS_VIRTIO) {
        domains_reply_error(done, opaque, "unsupported",
                            "unsupported: only bus='virtio' disks can be hot-plugged so far");
        goto out;
    }
    /* Preflight: what can be known now fails now; what depends on the jobs queued before
     * this one is checked again when it starts (ops_attach_prepare). */
    if (domain_disk_index(disk->target_dev) < 0) {
        domains_reply_error(done, opaque, "preflight-failed",
                            "disk target '%s' is not a virtio disk name (vda, vdb, ...)",
                            disk->target_dev);
        goto out;
    }
    if (domains_preflight_disk(disk, &error) < 0 ||
        (live && domains_check_disk_sharing(domains, operation.row.uuid, disk, &error) < 0)) {
        domains_reply_error(done, opaque, "preflight-failed", "%s", error.message);
        goto out;
    }
    if (live) {
        /* Only the target can be judged this early: allocation belongs to the job. */
        if (check_target(runtime->live, operation.persistent, disk->target_dev, &error) < 0) {
            domains_reply_error(done, opaque, "preflight-failed", "%s", error.message);
            goto out;
        }
        struct device_request *request = device_request_new(domains, flags, done, opaque);
        if (request == NULL)
            goto out;
        if (hotplug_attach(domains->hotplug, operation.row.uuid, runtime->qmp, operation.device,
                           flags, on_attach_done, request, &error) < 0) {
            domains_reply_error(done, opaque, error.code == -EBUSY ? "busy" : "internal", "%s",
                                error.message);
            free(request);
        }
        goto out;
    }
    /* --config alone: the domain is not touched, only its persistent definition. */
    if (!operation.persistent) {
        domains_reply_error(done, opaque, "invalid-argument",
                            "cannot change the persistent definition of a transient domain");
        goto out;
    }
    if (allocate_disk(NULL, operation.persistent, disk, &error) < 0 ||
        domain_definition_add_device(operation.persistent, operation.device, &error) < 0 ||
        domains_save(domains, NULL, operation.persistent, &error) < 0) {
        domains_reply_error(done, opaque, error.code == -ENOMEM ? "internal" : "preflight-failed",
                            "%s", error.message);
        goto out;
    }
    reply_device(done, opaque, disk);
out:
    device_operation_end(&operation);
}

void domains_detach_device(struct domains *domains, const char *key, const char *xml,
                           unsigned flags, int timeout_ms, domains_done_fn done, void *opaque)
{
    struct device_operation operation;
    if (device_operation_begin(&operation, domains, key, xml, flags, done, opaque) < 0)
        return;
    if (operation.device->kind == DOMAIN_DEVICE_INTERFACE) {
        detach_interface(domains, &operation, timeout_ms, done, opaque);
        device_operation_end(&operation);
        return;
    }
    struct pv_error error = {0};
    struct runtime *runtime = operation.runtime;
    flags = operation.flags;
    const char *target = operation.device->disk.target_dev;
    bool live = (flags & DOMAINS_FLAG_LIVE) != 0;
    struct domain_disk *live_disk = live ? domain_find_disk(runtime->live, target) : NULL;
    if (live && live_disk == NULL) {
        domains_reply_error(done, opaque, "invalid-argument",
                            "no disk with target %s in the live definition", target);
        goto out;
    }
    if ((flags & DOMAINS_FLAG_CONFIG) && domain_find_disk(operation.persistent, target) == NULL) {
        domains_reply_error(done, opaque, "invalid-argument",
                            "no disk with target %s in the persistent definition", target);
        goto out;
    }
    if (live) {
        struct device_request *request = device_request_new(domains, flags, done, opaque);
        if (request == NULL)
            goto out;
        struct domain_device resolved = {.kind = DOMAIN_DEVICE_DISK, .disk = *live_disk};
        if (hotplug_detach(domains->hotplug, operation.row.uuid, runtime->qmp, &resolved, flags,
                           timeout_ms, on_detach_done, request, &error) < 0) {
            domains_reply_error(done, opaque, error.code == -EBUSY ? "busy" : "internal", "%s",
                                error.message);
            free(request);
        }
        goto out;
    }
    if (persistent_update(domains, operation.row.uuid, operation.device, false, &error) < 0) {
        domains_reply_error(done, opaque, "internal",
                            "the persistent definition could not be updated: %s", error.message);
        goto out;
    }
    reply_detached(done, opaque, NULL);
out:
    device_operation_end(&operation);
}

/* The domain model: free, copy, add/remove/find devices, UUIDs and memory units. */
#include "domain.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* --- names ---------------------------------------------------------------------------- */

const char *domain_disk_type_name(enum domain_disk_type type)
{
    return type == DOMAIN_DISK_BLOCK ? "block" : "file";
}

const char *domain_disk_device_name(enum domain_disk_device device)
{
    return device == DOMAIN_DISK_DEVICE_CDROM ? "cdrom" : "disk";
}

const char *domain_disk_bus_name(enum domain_disk_bus bus)
{
    return bus == DOMAIN_DISK_BUS_SCSI ? "scsi" : "virtio";
}

const char *domain_interface_type_name(enum domain_interface_type type)
{
    switch (type) {
    case DOMAIN_INTERFACE_BRIDGE:
        return "bridge";
    case DOMAIN_INTERFACE_ETHERNET:
        break;
    }
    return "ethernet";
}

const char *domain_chardev_kind_name(enum domain_chardev_kind kind)
{
    switch (kind) {
    case DOMAIN_CHARDEV_SERIAL:
        return "serial";
    case DOMAIN_CHARDEV_CONSOLE:
        return "console";
    case DOMAIN_CHARDEV_CHANNEL:
        break;
    }
    return "channel";
}

const char *domain_device_kind_name(enum domain_device_kind kind)
{
    switch (kind) {
    case DOMAIN_DEVICE_DISK:
        return "disk";
    case DOMAIN_DEVICE_INTERFACE:
        return "interface";
    case DOMAIN_DEVICE_CONTROLLER:
        return "controller";
    case DOMAIN_DEVICE_HOSTDEV:
        return "hostdev";
    case DOMAIN_DEVICE_CHARDEV:
        return "chardev";
    }
    return "device";
}

/* --- free ----------------------------------------------------------------------------- */

void domain_disk_clear(struct domain_disk *disk)
{
    if (!disk)
        return;
    free(disk->driver_name);
    free(disk->driver_type);
    free(disk->cache);
    free(disk->io);
    free(disk->error_policy);
    free(disk->rerror_policy);
    free(disk->source);
    free(disk->target_dev);
    free(disk->serial);
    free(disk->alias);
    memset(disk, 0, sizeof(*disk));
}

void domain_interface_clear(struct domain_interface *interface)
{
    if (!interface)
        return;
    free(interface->mac);
    free(interface->source);
    free(interface->target_dev);
    free(interface->model);
    free(interface->alias);
    memset(interface, 0, sizeof(*interface));
}

void domain_controller_clear(struct domain_controller *controller)
{
    if (!controller)
        return;
    free(controller->type);
    free(controller->model);
    free(controller->alias);
    memset(controller, 0, sizeof(*controller));
}

void domain_hostdev_clear(struct domain_hostdev *hostdev)
{
    if (!hostdev)
        return;
    free(hostdev->driver_name);
    free(hostdev->alias);
    memset(hostdev, 0, sizeof(*hostdev));
}

void domain_chardev_clear(struct domain_chardev *chardev)
{
    if (!chardev)
        return;
    free(chardev->type);
    free(chardev->source_mode);
    free(chardev->source_path);
    free(chardev->source_append);
    free(chardev->target_type);
    free(chardev->target_name);
    free(chardev->target_model);
    free(chardev->alias);
    memset(chardev, 0, sizeof(*chardev));
}

void domain_device_clear(struct domain_device *device)
{
    if (!device)
        return;
    switch (device->kind) {
    case DOMAIN_DEVICE_DISK:
        domain_disk_clear(&device->disk);
        break;
    case DOMAIN_DEVICE_INTERFACE:
        domain_interface_clear(&device->interface);
        break;
    case DOMAIN_DEVICE_CONTROLLER:
        domain_controller_clear(&device->controller);
        break;
    case DOMAIN_DEVICE_HOSTDEV:
        domain_hostdev_clear(&device->hostdev);
        break;
    case DOMAIN_DEVICE_CHARDEV:
        domain_chardev_clear(&device->chardev);
        break;
    }
}

void domain_device_free(struct domain_device *device)
{
    if (!device)
        return;
    domain_device_clear(device);
    free(device);
}

void domain_definition_free(struct domain_definition *definition)
{
    if (!definition)
        return;
    char **strings[] = {
        &definition->type,
        &definition->name,
        &definition->title,
        &definition->description,
        &definition->os_type,
        &definition->os_arch,
        &definition->os_machine,
        &definition->kernel,
        &definition->initrd,
        &definition->cmdline,
        &definition->cpu_mode,
        &definition->cpu_model,
        &definition->cpu_match,
        &definition->cpu_check,
        &definition->cpu_migratable,
        &definition->cpu_model_fallback,
        &definition->on_poweroff,
        &definition->on_reboot,
        &definition->on_crash,
        &definition->clock_offset,
        &definition->pm_suspend_to_mem,
        &definition->pm_suspend_to_disk,
        &definition->emulator,
    };
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        free(*strings[i]);
    for (size_t i = 0; i < definition->disk_count; i++)
        domain_disk_clear(&definition->disks[i]);
    for (size_t i = 0; i < definition->interface_count; i++)
        domain_interface_clear(&definition->interfaces[i]);
    for (size_t i = 0; i < definition->controller_count; i++)
        domain_controller_clear(&definition->controllers[i]);
    for (size_t i = 0; i < definition->hostdev_count; i++)
        domain_hostdev_clear(&definition->hostdevs[i]);
    for (size_t i = 0; i < definition->chardev_count; i++)
        domain_chardev_clear(&definition->chardevs[i]);
    free(definition->disks);
    free(definition->interfaces);
    free(definition->controllers);
    free(definition->hostdevs);
    free(definition->chardevs);
    free(definition);
}

/* --- copy ----------------------------------------------------------------------------- */

/* Duplicates *field in place (the struct was memcpy'd from the source); false when out of
 * memory, leaving NULL so that the clear functions stay safe. */
static bool duplicate_string(char **field)
{
    if (!*field)
        return true;
    *field = strdup(*field);
    return *field != NULL;
}

const char *domain_hotplug_state_name(enum domain_hotplug_state state)
{
    switch (state) {
    case DOMAIN_HOTPLUG_ATTACHING:
        return "attaching";
    case DOMAIN_HOTPLUG_DETACHING:
        return "detaching";
    case DOMAIN_HOTPLUG_ATTACHED:
        break;
    }
    return "attached";
}

static int disk_copy(struct domain_disk *to, const struct domain_disk *from)
{
    *to = *from;
    bool ok = true;
    char **fields[] = {&to->driver_name,  &to->driver_type,   &to->cache,  &to->io,
                       &to->error_policy, &to->rerror_policy, &to->source, &to->target_dev,
                       &to->serial,       &to->alias};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        ok &= duplicate_string(fields[i]);
    if (!ok) {
        domain_disk_clear(to);
        return -ENOMEM;
    }
    return 0;
}

static int interface_copy(struct domain_interface *to, const struct domain_interface *from)
{
    *to = *from;
    bool ok = true;
    char **fields[] = {&to->mac, &to->source, &to->target_dev, &to->model, &to->alias};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        ok &= duplicate_string(fields[i]);
    if (!ok) {
        domain_interface_clear(to);
        return -ENOMEM;
    }
    return 0;
}

static int controller_copy(struct domain_controller *to, const struct domain_controller *from)
{
    *to = *from;
    bool ok = duplicate_string(&to->type);
    ok &= duplicate_string(&to->model);
    ok &= duplicate_string(&to->alias);
    if (!ok) {
        domain_controller_clear(to);
        return -ENOMEM;
    }
    return 0;
}

static int hostdev_copy(struct domain_hostdev *to, const struct domain_hostdev *from)
{
    *to = *from;
    bool ok = duplicate_string(&to->driver_name);
    ok &= duplicate_string(&to->alias);
    if (!ok) {
        domain_hostdev_clear(to);
        return -ENOMEM;
    }
    return 0;
}

static int chardev_copy(struct domain_chardev *to, const struct domain_chardev *from)
{
    *to = *from;
    bool ok = true;
    char **fields[] = {&to->type,        &to->source_mode, &to->source_path,  &to->source_append,
                       &to->target_type, &to->target_name, &to->target_model, &to->alias};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        ok &= duplicate_string(fields[i]);
    if (!ok) {
        domain_chardev_clear(to);
        return -ENOMEM;
    }
    return 0;
}

static int device_copy_into(struct domain_device *to, const struct domain_device *from)
{
    memset(to, 0, sizeof(*to));
    to->kind = from->kind;
    switch (from->kind) {
    case DOMAIN_DEVICE_DISK:
        return disk_copy(&to->disk, &from->disk);
    case DOMAIN_DEVICE_INTERFACE:
        return interface_copy(&to->interface, &from->interface);
    case DOMAIN_DEVICE_CONTROLLER:
        return controller_copy(&to->controller, &from->controller);
    case DOMAIN_DEVICE_HOSTDEV:
        return hostdev_copy(&to->hostdev, &from->hostdev);
    case DOMAIN_DEVICE_CHARDEV:
        return chardev_copy(&to->chardev, &from->chardev);
    }
    return -EINVAL;
}

struct domain_device *domain_device_copy(const struct domain_device *device)
{
    if (!device)
        return NULL;
    struct domain_device *copy = calloc(1, sizeof(*copy));
    if (!copy)
        return NULL;
    if (device_copy_into(copy, device) < 0) {
        free(copy);
        return NULL;
    }
    return copy;
}

/* Copies an array of `count` elements of `size` bytes with a per-element copy function. */
#define COPY_ARRAY(to_array, from_array, count, copy_function)                                     \
    do {                                                                                           \
        if ((count) > 0) {                                                                         \
            (to_array) = calloc((count), sizeof(*(to_array)));                                     \
            if (!(to_array))                                                                       \
                goto fail;                                                                         \
            for (size_t index_ = 0; index_ < (count); index_++) {                                  \
                if (copy_function(&(to_array)[index_], &(from_array)[index_]) < 0)                 \
                    goto fail;                                                                     \
            }                                                                                      \
        }                                                                                          \
    } while (0)

struct domain_definition *domain_definition_copy(const struct domain_definition *definition)
{
    if (!definition)
        return NULL;
    struct domain_definition *copy = calloc(1, sizeof(*copy));
    if (!copy)
        return NULL;
    *copy = *definition;
    /* Arrays are rebuilt below: start from empty ones so that failure cleanup is safe. */
    copy->disks = NULL;
    copy->interfaces = NULL;
    copy->controllers = NULL;
    copy->hostdevs = NULL;
    copy->chardevs = NULL;
    copy->disk_count = copy->interface_count = copy->controller_count = 0;
    copy->hostdev_count = copy->chardev_count = 0;

    bool ok = true;
    char **strings[] = {
        &copy->type,
        &copy->name,
        &copy->title,
        &copy->description,
        &copy->os_type,
        &copy->os_arch,
        &copy->os_machine,
        &copy->kernel,
        &copy->initrd,
        &copy->cmdline,
        &copy->cpu_mode,
        &copy->cpu_model,
        &copy->cpu_match,
        &copy->cpu_check,
        &copy->cpu_migratable,
        &copy->cpu_model_fallback,
        &copy->on_poweroff,
        &copy->on_reboot,
        &copy->on_crash,
        &copy->clock_offset,
        &copy->pm_suspend_to_mem,
        &copy->pm_suspend_to_disk,
        &copy->emulator,
    };
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        ok &= duplicate_string(strings[i]);
    if (!ok)
        goto fail;

    /* Each count is set only once its array is complete, so a failure frees what exists:
     * elements not yet copied are zeroed by calloc, which the clear functions accept. */
    copy->disk_count = definition->disk_count;
    COPY_ARRAY(copy->disks, definition->disks, definition->disk_count, disk_copy);
    copy->interface_count = definition->interface_count;
    COPY_ARRAY(copy->interfaces, definition->interfaces, definition->interface_count,
               interface_copy);
    copy->controller_count = definition->controller_count;
    COPY_ARRAY(copy->controllers, definition->controllers, definition->controller_count,
               controller_copy);
    copy->hostdev_count = definition->hostdev_count;
    COPY_ARRAY(copy->hostdevs, definition->hostdevs, definition->hostdev_count, hostdev_copy);
    copy->chardev_count = definition->chardev_count;
    COPY_ARRAY(copy->chardevs, definition->chardevs, definition->chardev_count, chardev_copy);
    return copy;

fail:
    /* A NULL array with a non-zero count means its allocation failed. */
    if (!copy->disks)
        copy->disk_count = 0;
    if (!copy->interfaces)
        copy->interface_count = 0;
    if (!copy->controllers)
        copy->controller_count = 0;
    if (!copy->hostdevs)
        copy->hostdev_count = 0;
    if (!copy->chardevs)
        copy->chardev_count = 0;
    domain_definition_free(copy);
    return NULL;
}

/* --- add / remove / find -------------------------------------------------------------- */

static bool strings_equal(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static bool address_equal(const struct domain_address *a, const struct domain_address *b)
{
    return a->type == b->type && a->domain == b->domain && a->bus == b->bus && a->slot == b->slot &&
           a->function == b->function && a->controller == b->controller && a->target == b->target &&
           a->unit == b->unit && a->port == b->port;
}

/* Every alias of the definition's devices, for the duplicate check. A console may share its
 * serial port's alias: libvirt's first console is that serial port ("serial0" twice). */
static bool alias_in_use(const struct domain_definition *definition, const char *alias,
                         const struct domain_device *device)
{
    bool is_serial_or_console =
        device->kind == DOMAIN_DEVICE_CHARDEV && device->chardev.kind != DOMAIN_CHARDEV_CHANNEL;
    if (!alias)
        return false;
    for (size_t i = 0; i < definition->disk_count; i++)
        if (strings_equal(definition->disks[i].alias, alias))
            return true;
    for (size_t i = 0; i < definition->interface_count; i++)
        if (strings_equal(definition->interfaces[i].alias, alias))
            return true;
    for (size_t i = 0; i < definition->controller_count; i++)
        if (strings_equal(definition->controllers[i].alias, alias))
            return true;
    for (size_t i = 0; i < definition->hostdev_count; i++)
        if (strings_equal(definition->hostdevs[i].alias, alias))
            return true;
    for (size_t i = 0; i < definition->chardev_count; i++) {
        const struct domain_chardev *chardev = &definition->chardevs[i];
        bool shared = is_serial_or_console && chardev->kind != DOMAIN_CHARDEV_CHANNEL &&
                      chardev->kind != device->chardev.kind;
        if (!shared && strings_equal(chardev->alias, alias))
            return true;
    }
    return false;
}

static const char *device_alias(const struct domain_device *device)
{
    switch (device->kind) {
    case DOMAIN_DEVICE_DISK:
        return device->disk.alias;
    case DOMAIN_DEVICE_INTERFACE:
        return device->interface.alias;
    case DOMAIN_DEVICE_CONTROLLER:
        return device->controller.alias;
    case DOMAIN_DEVICE_HOSTDEV:
        return device->hostdev.alias;
    case DOMAIN_DEVICE_CHARDEV:
        return device->chardev.alias;
    }
    return NULL;
}

/* Grows `*array` (of `*count` elements of `size`) by one zeroed element at `position`. */
static void *array_insert(void **array, size_t *count, size_t size, size_t position)
{
    char *grown = realloc(*array, (*count + 1) * size);
    if (!grown)
        return NULL;
    memmove(grown + (position + 1) * size, grown + position * size, (*count - position) * size);
    memset(grown + position * size, 0, size);
    *array = grown;
    (*count)++;
    return grown + position * size;
}

/* libvirt formats serials, then consoles, then channels. */
static int chardev_rank(enum domain_chardev_kind kind)
{
    switch (kind) {
    case DOMAIN_CHARDEV_SERIAL:
        return 0;
    case DOMAIN_CHARDEV_CONSOLE:
        return 1;
    case DOMAIN_CHARDEV_CHANNEL:
        break;
    }
    return 2;
}

int domain_definition_add_device(struct domain_definition *definition,
                                 const struct domain_device *device, struct pv_error *error)
{
    if (!definition || !device)
        return pv_error_set(error, -EINVAL, "no definition or device to add");
    const char *alias = device_alias(device);
    if (alias_in_use(definition, alias, device))
        return pv_error_set(error, -EEXIST, "alias '%s' is already used by another device", alias);
    struct domain_device copy;
    if (device_copy_into(&copy, device) < 0)
        return pv_error_set(error, -ENOMEM, "out of memory copying a %s",
                            domain_device_kind_name(device->kind));

    void *slot = NULL;
    switch (device->kind) {
    case DOMAIN_DEVICE_DISK:
        if (!device->disk.target_dev) {
            domain_device_clear(&copy);
            return pv_error_set(error, -EINVAL, "the disk has no target dev");
        }
        if (domain_find_disk(definition, device->disk.target_dev)) {
            domain_device_clear(&copy);
            return pv_error_set(error, -EEXIST, "disk target '%s' is already used",
                                device->disk.target_dev);
        }
        slot = array_insert((void **)&definition->disks, &definition->disk_count,
                            sizeof(struct domain_disk), definition->disk_count);
        if (slot)
            memcpy(slot, &copy.disk, sizeof(copy.disk));
        break;
    case DOMAIN_DEVICE_INTERFACE:
        slot = array_insert((void **)&definition->interfaces, &definition->interface_count,
                            sizeof(struct domain_interface), definition->interface_count);
        if (slot)
            memcpy(slot, &copy.interface, sizeof(copy.interface));
        break;
    case DOMAIN_DEVICE_CONTROLLER:
        for (size_t i = 0; i < definition->controller_count; i++) {
            const struct domain_controller *existing = &definition->controllers[i];
            if (strings_equal(existing->type, device->controller.type) &&
                existing->index == device->controller.index) {
                domain_device_clear(&copy);
                return pv_error_set(error, -EEXIST, "a %s controller with index %u exists",
                                    existing->type, existing->index);
            }
        }
        slot = array_insert((void **)&definition->controllers, &definition->controller_count,
                            sizeof(struct domain_controller), definition->controller_count);
        if (slot)
            memcpy(slot, &copy.controller, sizeof(copy.controller));
        break;
    case DOMAIN_DEVICE_HOSTDEV:
        for (size_t i = 0; i < definition->hostdev_count; i++) {
            if (address_equal(&definition->hostdevs[i].source, &device->hostdev.source)) {
                domain_device_clear(&copy);
                return pv_error_set(error, -EEXIST,
                                    "host device %04x:%02x:%02x.%x is already assigned",
                                    device->hostdev.source.domain, device->hostdev.source.bus,
                                    device->hostdev.source.slot, device->hostdev.source.function);
            }
        }
        slot = array_insert((void **)&definition->hostdevs, &definition->hostdev_count,
                            sizeof(struct domain_hostdev), definition->hostdev_count);
        if (slot)
            memcpy(slot, &copy.hostdev, sizeof(copy.hostdev));
        break;
    case DOMAIN_DEVICE_CHARDEV: {
        /* After the last chardev of the same or an earlier rank. */
        size_t position = 0;
        int rank = chardev_rank(device->chardev.kind);
        for (size_t i = 0; i < definition->chardev_count; i++)
            if (chardev_rank(definition->chardevs[i].kind) <= rank)
                position = i + 1;
        slot = array_insert((void **)&definition->chardevs, &definition->chardev_count,
                            sizeof(struct domain_chardev), position);
        if (slot)
            memcpy(slot, &copy.chardev, sizeof(copy.chardev));
        break;
    }
    }
    if (!slot) {
        domain_device_clear(&copy);
        return pv_error_set(error, -ENOMEM, "out of memory adding a %s",
                            domain_device_kind_name(device->kind));
    }
    return 0;
}

static void array_remove(void *array, size_t *count, size_t size, size_t position)
{
    char *bytes = array;
    memmove(bytes + position * size, bytes + (position + 1) * size, (*count - position - 1) * size);
    (*count)--;
}

static bool chardev_matches(const struct domain_chardev *existing,
                            const struct domain_chardev *wanted)
{
    if (existing->kind != wanted->kind)
        return false;
    if (wanted->alias)
        return strings_equal(existing->alias, wanted->alias);
    if (wanted->target_name)
        return strings_equal(existing->target_name, wanted->target_name);
    /* serial/console: by port, as libvirt matches them */
    return existing->target_port == wanted->target_port;
}

int domain_definition_remove_device(struct domain_definition *definition,
                                    const struct domain_device *device, struct pv_error *error)
{
    if (!definition || !device)
        return pv_error_set(error, -EINVAL, "no definition or device to remove");
    switch (device->kind) {
    case DOMAIN_DEVICE_DISK:
        for (size_t i = 0; i < definition->disk_count; i++) {
            if (strings_equal(definition->disks[i].target_dev, device->disk.target_dev)) {
                domain_disk_clear(&definition->disks[i]);
                array_remove(definition->disks, &definition->disk_count, sizeof(struct domain_disk),
                             i);
                return 0;
            }
        }
        return pv_error_set(error, -ENOENT, "no disk with target '%s'",
                            device->disk.target_dev ? device->disk.target_dev : "(none)");
    case DOMAIN_DEVICE_INTERFACE:
        for (size_t i = 0; i < definition->interface_count; i++) {
            const struct domain_interface *existing = &definition->interfaces[i];
            bool match = device->interface.alias
                             ? strings_equal(existing->alias, device->interface.alias)
                             : existing->mac && device->interface.mac &&
                                   strcasecmp(existing->mac, device->interface.mac) == 0;
            if (match) {
                domain_interface_clear(&definition->interfaces[i]);
                array_remove(definition->interfaces, &definition->interface_count,
                             sizeof(struct domain_interface), i);
                return 0;
            }
        }
        return pv_error_set(error, -ENOENT, "no interface with %s '%s'",
                            device->interface.alias ? "alias" : "MAC address",
                            device->interface.alias ? device->interface.alias
                            : device->interface.mac ? device->interface.mac
                                                    : "(none)");
    case DOMAIN_DEVICE_CONTROLLER:
        for (size_t i = 0; i < definition->controller_count; i++) {
            const struct domain_controller *existing = &definition->controllers[i];
            if (strings_equal(existing->type, device->controller.type) &&
                existing->index == device->controller.index) {
                domain_controller_clear(&definition->controllers[i]);
                array_remove(definition->controllers, &definition->controller_count,
                             sizeof(struct domain_controller), i);
                return 0;
            }
        }
        return pv_error_set(error, -ENOENT, "no %s controller with index %u",
                            device->controller.type ? device->controller.type : "(none)",
                            device->controller.index);
    case DOMAIN_DEVICE_HOSTDEV:
        for (size_t i = 0; i < definition->hostdev_count; i++) {
            if (address_equal(&definition->hostdevs[i].source, &device->hostdev.source)) {
                domain_hostdev_clear(&definition->hostdevs[i]);
                array_remove(definition->hostdevs, &definition->hostdev_count,
                             sizeof(struct domain_hostdev), i);
                return 0;
            }
        }
        return pv_error_set(error, -ENOENT, "no host device %04x:%02x:%02x.%x",
                            device->hostdev.source.domain, device->hostdev.source.bus,
                            device->hostdev.source.slot, device->hostdev.source.function);
    case DOMAIN_DEVICE_CHARDEV:
        for (size_t i = 0; i < definition->chardev_count; i++) {
            if (chardev_matches(&definition->chardevs[i], &device->chardev)) {
                domain_chardev_clear(&definition->chardevs[i]);
                array_remove(definition->chardevs, &definition->chardev_count,
                             sizeof(struct domain_chardev), i);
                return 0;
            }
        }
        return pv_error_set(error, -ENOENT, "no matching %s device",
                            domain_chardev_kind_name(device->chardev.kind));
    }
    return pv_error_set(error, -EINVAL, "unknown device kind");
}

struct domain_interface *domain_find_interface(struct domain_definition *definition,
                                               const char *mac, const char *alias)
{
    for (size_t i = 0; definition && i < definition->interface_count; i++) {
        struct domain_interface *interface = &definition->interfaces[i];
        if (mac ? interface->mac && strcasecmp(interface->mac, mac) == 0
                : strings_equal(interface->alias, alias))
            return interface;
    }
    return NULL;
}

struct domain_disk *domain_find_disk(struct domain_definition *definition, const char *target_dev)
{
    if (!definition || !target_dev)
        return NULL;
    for (size_t i = 0; i < definition->disk_count; i++)
        if (strings_equal(definition->disks[i].target_dev, target_dev))
            return &definition->disks[i];
    return NULL;
}

/* --- UUIDs ---------------------------------------------------------------------------- */

static void uuid_format(const unsigned char bytes[16], char out[DOMAIN_UUID_STRING_LENGTH + 1])
{
    snprintf(out, DOMAIN_UUID_STRING_LENGTH + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", bytes[0],
             bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8],
             bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]);
}

static bool random_bytes(unsigned char *buffer, size_t length)
{
    size_t filled = 0;
    while (filled < length) {
        ssize_t got = getrandom(buffer + filled, length - filled, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        filled += (size_t)got;
    }
    if (filled == length)
        return true;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    while (filled < length) {
        ssize_t got = read(fd, buffer + filled, length - filled);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        filled += (size_t)got;
    }
    close(fd);
    return filled == length;
}

void domain_uuid_generate(char out[DOMAIN_UUID_STRING_LENGTH + 1])
{
    unsigned char bytes[16];
    if (!random_bytes(bytes, sizeof(bytes))) {
        /* No entropy source at all: still unique enough within one host. */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        uint64_t seed =
            (uint64_t)now.tv_sec * 1000000007u ^ (uint64_t)now.tv_nsec ^ ((uint64_t)getpid() << 32);
        for (size_t i = 0; i < sizeof(bytes); i++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            bytes[i] = (unsigned char)(seed >> 56);
        }
    }
    bytes[6] = (unsigned char)((bytes[6] & 0x0f) | 0x40); /* version 4 */
    bytes[8] = (unsigned char)((bytes[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    uuid_format(bytes, out);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* libvirt's virUUIDParse: 32 hex digits, dashes allowed between byte pairs, surrounding
 * blanks ignored. */
int domain_uuid_parse(const char *text, char out[DOMAIN_UUID_STRING_LENGTH + 1],
                      struct pv_error *error)
{
    if (!text)
        return pv_error_set(error, -EINVAL, "no UUID");
    const char *cursor = text;
    while (isspace((unsigned char)*cursor))
        cursor++;
    unsigned char bytes[16];
    for (size_t i = 0; i < sizeof(bytes); i++) {
        while (*cursor == '-')
            cursor++;
        int high = hex_value(cursor[0]);
        int low = high < 0 ? -1 : hex_value(cursor[1]);
        if (high < 0 || low < 0)
            return pv_error_set(error, -EINVAL, "invalid UUID '%s'", text);
        bytes[i] = (unsigned char)(high << 4 | low);
        cursor += 2;
    }
    while (isspace((unsigned char)*cursor))
        cursor++;
    if (*cursor != '\0')
        return pv_error_set(error, -EINVAL, "invalid UUID '%s'", text);
    uuid_format(bytes, out);
    return 0;
}

/* --- memory units ----------------------------------------------------------------------- */

int domain_scale_to_kib(uint64_t value, const char *unit, uint64_t *kib, struct pv_error *error)
{
    uint64_t scale = 1024;
    if (unit && *unit) {
        if (strcmp(unit, "b") == 0 || strcmp(unit, "B") == 0 || strcasecmp(unit, "bytes") == 0) {
            scale = 1;
        } else {
            static const char prefixes[] = "kmgtpe";
            const char *found = strchr(prefixes, tolower((unsigned char)unit[0]));
            uint64_t base;
            if (!found || *found == '\0')
                return pv_error_set(error, -EINVAL, "unknown unit '%s'", unit);
            if (unit[1] == '\0' || strcasecmp(unit + 1, "iB") == 0)
                base = 1024;
            else if (strcasecmp(unit + 1, "B") == 0)
                base = 1000;
            else
                return pv_error_set(error, -EINVAL, "unknown unit '%s'", unit);
            scale = 1;
            for (ptrdiff_t power = found - prefixes; power >= 0; power--)
                scale *= base;
        }
    }
    const uint64_t max_bytes = INT64_MAX;
    if (value > max_bytes / scale)
        return pv_error_set(error, -ERANGE, "size %llu %s is too large", (unsigned long long)value,
                            unit ? unit : "KiB");
    uint64_t bytes = value * scale;
    *kib = bytes / 1024 + (bytes % 1024 != 0);
    return 0;
}

struct domain_chardev *domain_serial_console(struct domain_definition *definition)
{
    for (size_t i = 0; definition && i < definition->chardev_count; i++) {
        struct domain_chardev *chardev = &definition->chardevs[i];
        if (chardev->kind == DOMAIN_CHARDEV_CONSOLE &&
            (!chardev->target_type || strcmp(chardev->target_type, "serial") == 0))
            return chardev;
    }
    return NULL;
}

const struct domain_chardev *domain_serial_port(const struct domain_definition *definition)
{
    for (size_t i = 0; definition && i < definition->chardev_count; i++)
        if (definition->chardevs[i].kind == DOMAIN_CHARDEV_SERIAL)
            return &definition->chardevs[i];
    return domain_serial_console((struct domain_definition *)definition);
}

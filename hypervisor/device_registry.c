/* Devices plugged by the user: the model table, device_add/device_del,
 * DEVICE_DELETED and the PCI queries. */
#include "device_registry.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/block.h"
#include "options/json_options.h"
#include "json_util.h"
#include "pci/pci.h"
#include "pv_log.h"
#include "virtio/virtio_blk.h"
#include "virtio/virtio_net.h"
#include "vm.h"
#include "vmm_config.h"

#define DEVICE_JSON_MAX_LENGTH (64 * 1024)
#define DEVICE_JSON_MAX_DEPTH 16

struct device_entry {
    struct pci_device *device;
    const struct device_model *model;
    char qom_path[DEVICE_QOM_PATH_MAX];
    int anon_index; /* N of /machine/peripheral-anon/device[N], -1 with an id */
    struct device_entry *next;
};

struct device_registry {
    struct vm *vm;
    struct device_entry *entries;
    unsigned virtio_drive_count; /* -drive if=virtio seen so far: ids virtio0, virtio1, ... */
};

/* --- models -------------------------------------------------------------------- */

/* Every -device / device_add model: one row per file that defines one. */
static const struct device_model *const device_models[] = {
    &virtio_blk_pci_model,
    &virtio_net_pci_model,
};

/* QEMU's other NIC models: libvirt writes them for <model type='e1000'/> and the like,
 * so they get a message that says what to use instead of "not a valid device model". */
static const char *const unsupported_nic_models[] = {
    "e1000",
    "e1000-82544gc",
    "e1000-82545em",
    "e1000e",
    "igb",
    "rtl8139",
    "ne2k_pci",
    "ne2k_isa",
    "pcnet",
    "vmxnet3",
    "i82550",
    "i82551",
    "i82557a",
    "i82557b",
    "i82557c",
    "i82558a",
    "i82558b",
    "i82559a",
    "i82559b",
    "i82559c",
    "i82559er",
    "i82562",
    "i82801",
    "tulip",
    "usb-net",
    "virtio-net-pci-non-transitional",
    "virtio-net-pci-transitional",
    "virtio-net-device",
};

static bool is_unsupported_nic(const char *driver)
{
    for (size_t i = 0; i < sizeof(unsupported_nic_models) / sizeof(unsupported_nic_models[0]); i++)
        if (strcmp(unsupported_nic_models[i], driver) == 0)
            return true;
    return false;
}

static const struct device_model *find_model(const char *driver)
{
    for (size_t i = 0; i < sizeof(device_models) / sizeof(device_models[0]); i++)
        if (strcmp(device_models[i]->driver, driver) == 0)
            return device_models[i];
    return NULL;
}

/* --- registry ---------------------------------------------------------------------- */

static struct device_entry *find_entry_by_device(struct device_registry *registry,
                                                 const struct pci_device *device)
{
    for (struct device_entry *entry = registry->entries; entry; entry = entry->next)
        if (entry->device == device)
            return entry;
    return NULL;
}

static void unlink_entry(struct device_registry *registry, struct device_entry *target)
{
    for (struct device_entry **link = &registry->entries; *link; link = &(*link)->next)
        if (*link == target) {
            *link = target->next;
            return;
        }
}

static void emit_device_deleted(struct vm *vm, const char *id, const char *path)
{
    struct json_writer writer;
    json_writer_init(&writer, false);
    json_writer_begin_object(&writer);
    if (id)
        json_writer_member_string(&writer, "device", id);
    json_writer_member_string(&writer, "path", path);
    json_writer_end_object(&writer);
    if (!writer.failed)
        vm_emit_event(vm, "DEVICE_DELETED", json_writer_text(&writer));
    else
        pv_log_warning("dropped DEVICE_DELETED for %s: out of memory", path);
    json_writer_free(&writer);
}

/* The bus calls this after the guest ejected a device, before destroying it. */
static void on_device_unplugged(void *opaque, struct pci_device *device)
{
    struct device_registry *registry = opaque;
    struct device_entry *entry = find_entry_by_device(registry, device);
    if (!entry)
        return;
    if (entry->model->has_virtio_backend) {
        char backend_path[DEVICE_QOM_PATH_MAX + 32];
        snprintf(backend_path, sizeof(backend_path), "%s/virtio-backend", entry->qom_path);
        emit_device_deleted(registry->vm, NULL, backend_path);
    }
    emit_device_deleted(registry->vm, device->id[0] ? device->id : NULL, entry->qom_path);
    unlink_entry(registry, entry);
    free(entry);
}

struct device_registry *device_registry_create(struct vm *vm, struct pv_error *error)
{
    if (!vm->pci_bus || !vm->block_layer) {
        pv_error_set(error, -EINVAL, "the device registry needs the PCI bus and block layer");
        return NULL;
    }
    struct device_registry *registry = calloc(1, sizeof(*registry));
    if (!registry) {
        pv_error_set(error, -ENOMEM, "out of memory");
        return NULL;
    }
    registry->vm = vm;
    pci_bus_set_unplug_callback(vm->pci_bus, on_device_unplugged, registry);
    return registry;
}

void device_registry_destroy(struct device_registry *registry)
{
    if (!registry)
        return;
    if (registry->vm->pci_bus)
        pci_bus_set_unplug_callback(registry->vm->pci_bus, NULL, NULL);
    while (registry->entries) {
        struct device_entry *entry = registry->entries;
        registry->entries = entry->next;
        free(entry);
    }
    free(registry);
}

/* QEMU's id_wellformed: a letter, then letters, digits, '-', '.', '_'. */
static bool id_wellformed(const char *id)
{
    if (!isalpha((unsigned char)id[0]))
        return false;
    for (const char *p = id + 1; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("-._", *p))
            return false;
    return true;
}

/* QEMU's PCI "addr" property: "slot[.function]", hexadecimal, optional 0x. */
static int parse_pci_address(const char *text, const char *driver, int *slot,
                             struct pv_error *error)
{
    char *end;
    errno = 0;
    unsigned long slot_value = strtoul(text, &end, 16);
    unsigned long function = 0;
    bool ok = errno == 0 && end != text && isxdigit((unsigned char)text[0]);
    if (ok && *end == '.') {
        const char *function_text = end + 1;
        function = strtoul(function_text, &end, 16);
        ok = end != function_text && isxdigit((unsigned char)function_text[0]);
    }
    if (!ok || *end || slot_value > 0x1f || function > 7)
        return pv_error_set(error, -EINVAL, "Property '%s.addr' doesn't take value '%s'", driver,
                            text);
    if (function != 0)
        return pv_error_set(error, -EINVAL,
                            "PCI: function %lu is not supported for %s (no multifunction slots)",
                            function, driver);
    *slot = (int)slot_value;
    return 0;
}

static int lowest_free_anon_index(struct device_registry *registry)
{
    for (int candidate = 0;; candidate++) {
        bool taken = false;
        for (struct device_entry *entry = registry->entries; entry && !taken; entry = entry->next)
            taken = entry->anon_index == candidate;
        if (!taken)
            return candidate;
    }
}

int device_registry_add(struct device_registry *registry, struct qemu_options *options,
                        struct pv_error *error)
{
    struct pci_bus *bus = registry->vm->pci_bus;
    const char *driver = qemu_options_get(options, "driver");
    if (!driver)
        return pv_error_set(error, -EINVAL, "Parameter 'driver' is missing");
    const struct device_model *model = find_model(driver);
    if (!model && is_unsupported_nic(driver))
        return pv_error_set(error, -ENOTSUP,
                            "'%s' is not supported by plugvirt-vmm: use virtio-net-pci", driver);
    if (!model)
        return pv_error_set(error, -EINVAL, "'%s' is not a valid device model name", driver);
    const char *id = qemu_options_get(options, "id");
    if (id && !id_wellformed(id))
        return pv_error_set(error, -EINVAL, "Parameter 'id' expects an identifier");
    if (id && pci_bus_find_by_id(bus, id))
        return pv_error_set(error, -EEXIST, "Duplicate device ID '%s'", id);
    const char *bus_name = qemu_options_get(options, "bus");
    if (bus_name && strcmp(bus_name, "pci.0") != 0)
        return pv_error_set(error, -ENOENT, "Bus '%s' not found", bus_name);
    qemu_options_ignore(options, "bootindex"); /* no firmware: nothing boots from devices */

    int slot = -1;
    const char *address = qemu_options_get(options, "addr");
    if (address) {
        int rc = parse_pci_address(address, driver, &slot, error);
        if (rc < 0)
            return rc;
        struct pci_device *occupant = pci_bus_get_slot(bus, (unsigned)slot);
        if (occupant)
            return pv_error_set(error, -EBUSY,
                                "PCI: slot %d function 0 not available for %s, in use by %s,id=%s",
                                slot, driver, slot == 0 ? "i440FX" : occupant->driver,
                                occupant->id[0] ? occupant->id : "(null)");
    }

    struct device_entry *entry = calloc(1, sizeof(*entry));
    if (!entry)
        return pv_error_set(error, -ENOMEM, "out of memory");
    entry->model = model;
    entry->anon_index = -1;
    if (id) {
        snprintf(entry->qom_path, sizeof(entry->qom_path), "/machine/peripheral/%s", id);
    } else {
        entry->anon_index = lowest_free_anon_index(registry);
        snprintf(entry->qom_path, sizeof(entry->qom_path), "/machine/peripheral-anon/device[%d]",
                 entry->anon_index);
    }
    struct pci_device *device = model->create(registry->vm, options, id, entry->qom_path, error);
    if (!device) {
        free(entry);
        return error && error->code ? error->code : -EIO;
    }
    int rc = pci_bus_plug(bus, device, slot, error);
    if (rc < 0) {
        if (device->ops && device->ops->destroy)
            device->ops->destroy(device);
        free(entry);
        return rc;
    }
    entry->device = device;
    entry->next = registry->entries;
    registry->entries = entry;
    return 0;
}

int device_registry_request_delete(struct device_registry *registry, const char *id,
                                   struct pv_error *error)
{
    struct pci_device *device = pci_bus_find_by_id(registry->vm->pci_bus, id);
    if (!device)
        for (struct device_entry *entry = registry->entries; entry; entry = entry->next)
            if (strcmp(entry->qom_path, id) == 0)
                device = entry->device;
    if (!device)
        return pv_error_set(error, -ENODEV, "Device '%s' not found", id);
    return pci_bus_request_unplug(registry->vm->pci_bus, device, error);
}

/* --- command line ------------------------------------------------------------------- */

/* An option argument in QEMU's two syntaxes: JSON ("{...}", as libvirt writes
 * -blockdev and -device) or key=value. */
static int parse_argument(const char *text, const char *implied_key, struct qemu_options *options,
                          struct pv_error *error)
{
    memset(options, 0, sizeof(*options));
    if (text[0] != '{')
        return qemu_options_parse(options, text, implied_key, 0, error);
    yajl_val json =
        json_parse(text, strlen(text), DEVICE_JSON_MAX_LENGTH, DEVICE_JSON_MAX_DEPTH, error);
    if (!json)
        return error && error->code ? error->code : -EINVAL;
    int rc = qemu_options_from_json(json, options, error);
    yajl_tree_free(json);
    return rc;
}

/* -drive if=virtio: a drive plus an anonymous virtio-blk-pci on it, as QEMU makes. */
static int add_virtio_drive(struct device_registry *registry, struct qemu_options *options,
                            struct pv_error *error)
{
    struct qemu_option *interface = qemu_options_find(options, "if");
    char *none = strdup("none");
    if (!none)
        return pv_error_set(error, -ENOMEM, "out of memory");
    free(interface->value);
    interface->value = none;
    unsigned index = registry->virtio_drive_count++;
    if (!qemu_options_find(options, "id")) {
        /* QEMU names the drive after its interface and index. */
        struct qemu_option *items =
            realloc(options->items, (options->count + 1) * sizeof(*options->items));
        if (!items)
            return pv_error_set(error, -ENOMEM, "out of memory");
        options->items = items;
        char *key = strdup("id"), *value = NULL;
        if (!key || asprintf(&value, "virtio%u", index) < 0) {
            free(key);
            return pv_error_set(error, -ENOMEM, "out of memory");
        }
        items[options->count++] = (struct qemu_option){.key = key, .value = value, .used = false};
    }
    char *address = NULL;
    const char *given_address = qemu_options_get(options, "addr");
    if (given_address && !(address = strdup(given_address)))
        return pv_error_set(error, -ENOMEM, "out of memory");
    /* block_drive_add must not see addr: it belongs to the device. */
    qemu_options_ignore(options, "addr");
    char *drive_id = NULL;
    int rc = block_drive_add(registry->vm->block_layer, options, &drive_id, error);
    if (rc < 0) {
        free(address);
        return rc;
    }
    struct qemu_options device_options = {0};
    char *text = NULL;
    char *escaped = qemu_options_escape(drive_id);
    if (!escaped || asprintf(&text, "driver=virtio-blk-pci,drive=%s%s%s", escaped,
                             address ? ",addr=" : "", address ? address : "") < 0) {
        text = NULL;
        rc = pv_error_set(error, -ENOMEM, "out of memory");
    }
    if (rc == 0)
        rc = qemu_options_parse(&device_options, text, NULL, 0, error);
    if (rc == 0)
        rc = device_registry_add(registry, &device_options, error);
    if (rc < 0 && block_drive_exists(registry->vm->block_layer, drive_id))
        block_drive_del(registry->vm->block_layer, drive_id, NULL);
    qemu_options_free(&device_options);
    free(text);
    free(escaped);
    free(drive_id);
    free(address);
    return rc;
}

static int apply_drive(struct device_registry *registry, struct qemu_options *options,
                       struct pv_error *error)
{
    const char *interface = qemu_options_get(options, "if");
    if (interface && strcmp(interface, "virtio") == 0)
        return add_virtio_drive(registry, options, error);
    return block_drive_add(registry->vm->block_layer, options, NULL, error);
}

int device_registry_apply_config(struct device_registry *registry, const struct vmm_config *config,
                                 struct pv_error *error)
{
    struct block_layer *layer = registry->vm->block_layer;
    for (size_t i = 0; i < config->blockdev_arg_count; i++) {
        struct qemu_options options;
        int rc = parse_argument(config->blockdev_args[i], NULL, &options, error);
        if (rc == 0)
            rc = block_blockdev_add(layer, &options, error);
        qemu_options_free(&options);
        if (rc < 0)
            return pv_error_prefix(error, "-blockdev %s", config->blockdev_args[i]);
    }
    for (size_t i = 0; i < config->drive_arg_count; i++) {
        struct qemu_options options;
        int rc = qemu_options_parse(&options, config->drive_args[i], NULL, 0, error);
        if (rc == 0)
            rc = apply_drive(registry, &options, error);
        qemu_options_free(&options);
        if (rc < 0)
            return pv_error_prefix(error, "-drive %s", config->drive_args[i]);
    }
    for (size_t i = 0; i < config->device_arg_count; i++) {
        struct qemu_options options;
        int rc = parse_argument(config->device_args[i], "driver", &options, error);
        if (rc == 0)
            rc = device_registry_add(registry, &options, error);
        qemu_options_free(&options);
        if (rc < 0)
            return pv_error_prefix(error, "-device %s", config->device_args[i]);
    }
    return 0;
}

/* --- queries ---------------------------------------------------------------------------- */

/* QEMU's pci_class_descriptions, for the classes our devices use. */
static const char *class_description(uint16_t class_code)
{
    static const struct {
        uint16_t class_code;
        const char *description;
    } classes[] = {
        {0x0100, "SCSI controller"},     {0x0101, "IDE controller"}, {0x0106, "SATA controller"},
        {0x0200, "Ethernet controller"}, {0x0300, "VGA controller"}, {0x0600, "Host bridge"},
        {0x0601, "ISA bridge"},          {0x0604, "PCI bridge"},     {0x0700, "Serial port"},
        {0x0c03, "USB controller"},
    };
    for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
        if (classes[i].class_code == class_code)
            return classes[i].description;
    return NULL;
}

struct pci_region_info {
    unsigned bar;
    bool io;
    bool is_64bit;
    bool prefetch;
    bool mapped;
    uint64_t address;
    uint64_t size;
};

struct pci_function_info {
    unsigned slot;
    uint16_t vendor_id, device_id, subsystem_vendor_id, subsystem_id, class_code;
    uint8_t interrupt_line, interrupt_pin;
    char qdev_id[64];
    struct pci_region_info regions[PCI_BAR_COUNT];
    unsigned region_count;
};

static uint16_t read16(const uint8_t *config, unsigned offset)
{
    return (uint16_t)(config[offset] | config[offset + 1] << 8);
}

static void snapshot_function(struct pci_device *device, unsigned slot,
                              struct pci_function_info *info)
{
    memset(info, 0, sizeof(*info));
    info->slot = slot;
    pthread_mutex_lock(&device->config_lock);
    const uint8_t *config = device->config;
    info->vendor_id = read16(config, PCI_VENDOR_ID);
    info->device_id = read16(config, PCI_DEVICE_ID);
    info->subsystem_vendor_id = read16(config, PCI_SUBSYSTEM_VENDOR_ID);
    info->subsystem_id = read16(config, PCI_SUBSYSTEM_ID);
    info->class_code = read16(config, PCI_CLASS_DEVICE);
    info->interrupt_line = config[PCI_INTERRUPT_LINE];
    info->interrupt_pin = config[PCI_INTERRUPT_PIN];
    uint8_t bar_low[PCI_BAR_COUNT];
    for (unsigned bar = 0; bar < PCI_BAR_COUNT; bar++)
        bar_low[bar] = config[PCI_BASE_ADDRESS_0 + 4 * bar];
    pthread_mutex_unlock(&device->config_lock);
    snprintf(info->qdev_id, sizeof(info->qdev_id), "%s", device->id);
    for (unsigned bar = 0; bar < PCI_BAR_COUNT; bar++) {
        enum pci_bar_kind kind = device->bars[bar].kind;
        if (kind == PCI_BAR_NONE)
            continue;
        struct pci_region_info *region = &info->regions[info->region_count++];
        region->bar = bar;
        region->io = kind == PCI_BAR_IO;
        region->is_64bit = kind == PCI_BAR_MEMORY64;
        region->prefetch = !region->io && (bar_low[bar] & 0x08);
        region->size = device->bars[bar].size;
        region->mapped = pci_device_get_bar_mapping(device, bar, &region->address);
    }
}

/* Host bridge and devices in slot order, as QEMU lists bus 0. */
static unsigned snapshot_bus(struct device_registry *registry,
                             struct pci_function_info functions[PCI_SLOT_COUNT])
{
    unsigned count = 0;
    for (unsigned slot = 0; slot < PCI_SLOT_COUNT; slot++) {
        struct pci_device *device = pci_bus_get_slot(registry->vm->pci_bus, slot);
        if (device)
            snapshot_function(device, slot, &functions[count++]);
    }
    return count;
}

void device_registry_query_pci(struct device_registry *registry, struct json_writer *writer)
{
    struct pci_function_info functions[PCI_SLOT_COUNT];
    unsigned count = snapshot_bus(registry, functions);
    json_writer_begin_array(writer);
    json_writer_begin_object(writer);
    json_writer_member_int(writer, "bus", 0);
    json_writer_key(writer, "devices");
    json_writer_begin_array(writer);
    for (unsigned i = 0; i < count; i++) {
        const struct pci_function_info *info = &functions[i];
        json_writer_begin_object(writer);
        json_writer_member_int(writer, "bus", 0);
        json_writer_member_uint(writer, "slot", info->slot);
        json_writer_member_int(writer, "function", 0);
        json_writer_key(writer, "class_info");
        json_writer_begin_object(writer);
        const char *description = class_description(info->class_code);
        if (description)
            json_writer_member_string(writer, "desc", description);
        json_writer_member_uint(writer, "class", info->class_code);
        json_writer_end_object(writer);
        json_writer_key(writer, "id");
        json_writer_begin_object(writer);
        json_writer_member_uint(writer, "device", info->device_id);
        json_writer_member_uint(writer, "vendor", info->vendor_id);
        json_writer_member_uint(writer, "subsystem", info->subsystem_id);
        json_writer_member_uint(writer, "subsystem-vendor", info->subsystem_vendor_id);
        json_writer_end_object(writer);
        if (info->interrupt_pin)
            json_writer_member_uint(writer, "irq", info->interrupt_line);
        json_writer_member_uint(writer, "irq_pin", info->interrupt_pin);
        json_writer_member_string(writer, "qdev_id", info->qdev_id);
        json_writer_key(writer, "regions");
        json_writer_begin_array(writer);
        for (unsigned r = 0; r < info->region_count; r++) {
            const struct pci_region_info *region = &info->regions[r];
            json_writer_begin_object(writer);
            json_writer_member_uint(writer, "bar", region->bar);
            json_writer_member_string(writer, "type", region->io ? "io" : "memory");
            /* QEMU's PCI_BAR_UNMAPPED (all ones) in an int field. */
            json_writer_member_int(writer, "address",
                                   region->mapped ? (int64_t)region->address : -1);
            json_writer_member_uint(writer, "size", region->size);
            if (!region->io) {
                json_writer_member_bool(writer, "prefetch", region->prefetch);
                json_writer_member_bool(writer, "mem_type_64", region->is_64bit);
            }
            json_writer_end_object(writer);
        }
        json_writer_end_array(writer);
        json_writer_end_object(writer);
    }
    json_writer_end_array(writer);
    json_writer_end_object(writer);
    json_writer_end_array(writer);
}

static bool append_text(char **text, size_t *length, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static bool append_text(char **text, size_t *length, const char *format, ...)
{
    if (!*text)
        return false;
    va_list arguments;
    va_start(arguments, format);
    char *piece = NULL;
    int piece_length = vasprintf(&piece, format, arguments);
    va_end(arguments);
    char *grown = piece_length < 0 ? NULL : realloc(*text, *length + (size_t)piece_length + 1);
    if (!grown) {
        free(piece);
        free(*text);
        *text = NULL;
        return false;
    }
    memcpy(grown + *length, piece, (size_t)piece_length + 1);
    *length += (size_t)piece_length;
    *text = grown;
    free(piece);
    return true;
}

char *device_registry_info_pci_text(struct device_registry *registry)
{
    struct pci_function_info functions[PCI_SLOT_COUNT];
    unsigned count = snapshot_bus(registry, functions);
    char *text = strdup("");
    size_t length = 0;
    for (unsigned i = 0; i < count; i++) {
        const struct pci_function_info *info = &functions[i];
        append_text(&text, &length, "  Bus %2d, device %3u, function %d:\n    ", 0, info->slot, 0);
        const char *description = class_description(info->class_code);
        if (description)
            append_text(&text, &length, "%s", description);
        else
            append_text(&text, &length, "Class %04x", info->class_code);
        append_text(&text, &length, ": PCI device %04x:%04x\n", info->vendor_id, info->device_id);
        append_text(&text, &length, "      PCI subsystem %04x:%04x\n", info->subsystem_vendor_id,
                    info->subsystem_id);
        if (info->interrupt_pin)
            append_text(&text, &length, "      IRQ %u, pin %c\n", info->interrupt_line,
                        'A' + info->interrupt_pin - 1);
        for (unsigned r = 0; r < info->region_count; r++) {
            const struct pci_region_info *region = &info->regions[r];
            append_text(&text, &length, "      BAR%u: ", region->bar);
            if (region->io && region->mapped)
                append_text(&text, &length, "I/O at 0x%04" PRIx64 " [0x%04" PRIx64 "]\n",
                            region->address, region->address + region->size - 1);
            else if (region->io)
                append_text(&text, &length, "I/O (not mapped)\n");
            else if (region->mapped)
                append_text(&text, &length,
                            "%d bit%s memory at 0x%08" PRIx64 " [0x%08" PRIx64 "]\n",
                            region->is_64bit ? 64 : 32, region->prefetch ? " prefetchable" : "",
                            region->address, region->address + region->size - 1);
            else
                append_text(&text, &length, "%d bit%s memory (not mapped)\n",
                            region->is_64bit ? 64 : 32, region->prefetch ? " prefetchable" : "");
        }
        append_text(&text, &length, "      id \"%s\"\n", info->qdev_id);
    }
    return text;
}

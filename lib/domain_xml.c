/* libvirt domain XML (the subset in xml-schemas/) <-> struct domain_definition.
 *
 * Parsing runs in four steps, each stopping at the first problem:
 *  1. libxml2 reads the document without network access, entity substitution or DTDs;
 *  2. a walk of the tree reports what libvirt has and plugvirt does not ("unsupported"),
 *     so that such XML fails with a clear message instead of a schema error;
 *  3. RelaxNG validation against the schema, errors carrying the line;
 *  4. the mapping onto the model checks values (UUID, MAC, units, ranges, consistency).
 * Steps 1-3 are in domain_xml_check.c, step 4 here; formatting (libvirt's layout: 2-space
 * indent, single-quoted attributes) is in domain_xml_format.c. */
#include "domain.h"
#include "domain_xml_internal.h"
#include "schemas_builtin.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/relaxng.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#define DOMAIN_VCPUS_MAX 4096
#define DOMAIN_NAME_MAX 255

/* --- error helpers -------------------------------------------------------------------- */

long domain_xml_node_line(xmlNodePtr node)
{
    long line = node ? xmlGetLineNo(node) : -1;
    return line > 0 ? line : 1;
}

static int invalid(struct pv_error *error, xmlNodePtr node, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
static int invalid(struct pv_error *error, xmlNodePtr node, const char *format, ...)
{
    char message[PV_ERROR_MESSAGE_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof(message), format, args);
    va_end(args);
    return pv_error_set(error, -EINVAL, "line %ld: %s", domain_xml_node_line(node), message);
}

/* "unsupported: <what> (line N) is not supported by plugvirt[: hint]" */
int domain_xml_unsupported(struct pv_error *error, xmlNodePtr node, const char *what,
                           const char *hint)
{
    return pv_error_set(error, -EOPNOTSUPP,
                        "unsupported: %s (line %ld) is not supported by plugvirt%s%s", what,
                        domain_xml_node_line(node), hint ? ": " : "", hint ? hint : "");
}

/* --- mapping helpers ------------------------------------------------------------------ */

struct mapper {
    struct pv_error *error;
    bool out_of_memory;
    bool is_fragment; /* attach/detach: no defaults that would break matching (MAC) */
};

static char *copy_xml_string(struct mapper *mapper, xmlChar *value)
{
    if (!value)
        return NULL;
    char *copy = strdup((const char *)value);
    xmlFree(value);
    if (!copy)
        mapper->out_of_memory = true;
    return copy;
}

static char *attribute(struct mapper *mapper, xmlNodePtr node, const char *name)
{
    return node ? copy_xml_string(mapper, xmlGetNoNsProp(node, (const xmlChar *)name)) : NULL;
}

static bool attribute_is(xmlNodePtr node, const char *name, const char *value)
{
    xmlChar *text = node ? xmlGetNoNsProp(node, (const xmlChar *)name) : NULL;
    bool equal = text && strcmp((const char *)text, value) == 0;
    xmlFree(text);
    return equal;
}

static char *content(struct mapper *mapper, xmlNodePtr node)
{
    return node ? copy_xml_string(mapper, xmlNodeGetContent(node)) : NULL;
}

/* Content without surrounding blanks: for enumerations, which RelaxNG compares as tokens. */
static char *trimmed_content(struct mapper *mapper, xmlNodePtr node)
{
    char *text = content(mapper, node);
    if (!text)
        return NULL;
    size_t start = 0, end = strlen(text);
    while (start < end && isspace((unsigned char)text[start]))
        start++;
    while (end > start && isspace((unsigned char)text[end - 1]))
        end--;
    memmove(text, text + start, end - start);
    text[end - start] = '\0';
    return text;
}

static xmlNodePtr first_child(xmlNodePtr node, const char *name)
{
    for (xmlNodePtr child = node ? node->children : NULL; child; child = child->next)
        if (domain_xml_is_element(child, name))
            return child;
    return NULL;
}

/* Parses an unsigned number (base 10, or 0 for libvirt's 0x-hex PCI fields) up to `max`. */
static int parse_number(struct mapper *mapper, xmlNodePtr node, const char *what, const char *text,
                        int base, uint64_t max, uint64_t *out)
{
    if (!text)
        return invalid(mapper->error, node, "missing %s", what);
    const char *cursor = text;
    while (isspace((unsigned char)*cursor))
        cursor++;
    if (!isdigit((unsigned char)*cursor))
        return invalid(mapper->error, node, "invalid %s '%s'", what, text);
    errno = 0;
    char *end = NULL;
    unsigned long long value = strtoull(cursor, &end, base);
    while (end && isspace((unsigned char)*end))
        end++;
    if (!end || *end != '\0')
        return invalid(mapper->error, node, "invalid %s '%s'", what, text);
    if (errno == ERANGE || value > max)
        return invalid(mapper->error, node, "%s '%s' is out of range (at most %" PRIu64 ")", what,
                       text, max);
    *out = value;
    return 0;
}

/* An optional unsigned attribute: `*out` keeps its default when absent. */
static int number_attribute(struct mapper *mapper, xmlNodePtr node, const char *name, int base,
                            uint64_t max, unsigned *out)
{
    xmlChar *text = xmlGetNoNsProp(node, (const xmlChar *)name);
    if (!text)
        return 0;
    char what[64];
    snprintf(what, sizeof(what), "%s of <%s>", name, domain_xml_node_name(node));
    uint64_t value = 0;
    int result = parse_number(mapper, node, what, (const char *)text, base, max, &value);
    xmlFree(text);
    if (result == 0)
        *out = (unsigned)value;
    return result;
}

static int pci_address_fields(struct mapper *mapper, xmlNodePtr node,
                              struct domain_address *address)
{
    address->type = DOMAIN_ADDRESS_PCI;
    int result = number_attribute(mapper, node, "domain", 0, 0xffff, &address->domain);
    if (result == 0)
        result = number_attribute(mapper, node, "bus", 0, 0xff, &address->bus);
    if (result == 0)
        result = number_attribute(mapper, node, "slot", 0, 0x1f, &address->slot);
    if (result == 0)
        result = number_attribute(mapper, node, "function", 0, 7, &address->function);
    return result;
}

/* <address type=...> of a device (in the guest). */
static int parse_address(struct mapper *mapper, xmlNodePtr node, struct domain_address *address)
{
    memset(address, 0, sizeof(*address));
    if (!node)
        return 0;
    if (attribute_is(node, "type", "pci"))
        return pci_address_fields(mapper, node, address);
    int result = 0;
    if (attribute_is(node, "type", "drive")) {
        address->type = DOMAIN_ADDRESS_DRIVE;
        result = number_attribute(mapper, node, "controller", 10, 0xffff, &address->controller);
        if (result == 0)
            result = number_attribute(mapper, node, "bus", 10, 0xffff, &address->bus);
        if (result == 0)
            result = number_attribute(mapper, node, "target", 10, 0xffff, &address->target);
        if (result == 0)
            result = number_attribute(mapper, node, "unit", 10, 0xffff, &address->unit);
        return result;
    }
    if (attribute_is(node, "type", "virtio-serial")) {
        address->type = DOMAIN_ADDRESS_VIRTIO_SERIAL;
        result = number_attribute(mapper, node, "controller", 10, 0xffff, &address->controller);
        if (result == 0)
            result = number_attribute(mapper, node, "bus", 10, 0xffff, &address->bus);
        if (result == 0)
            result = number_attribute(mapper, node, "port", 10, 0xffff, &address->port);
        return result;
    }
    return invalid(mapper->error, node, "unknown address type");
}

static int require_address_type(struct mapper *mapper, xmlNodePtr node,
                                const struct domain_address *address,
                                enum domain_address_type wanted, const char *device)
{
    static const char *const names[] = {"none", "pci", "drive", "virtio-serial"};
    if (address->type == DOMAIN_ADDRESS_NONE || address->type == wanted)
        return 0;
    return invalid(mapper->error, first_child(node, "address"),
                   "%s takes an address of type '%s', not '%s'", device, names[wanted],
                   names[address->type]);
}

static char *alias_of(struct mapper *mapper, xmlNodePtr node)
{
    return attribute(mapper, first_child(node, "alias"), "name");
}

/* "52:54:00:6B:3C:58" -> "52:54:00:6b:3c:58"; unicast only, as libvirt requires. */
static int parse_mac(struct mapper *mapper, xmlNodePtr node, const char *text, char **out)
{
    unsigned bytes[6];
    char trailing;
    if (strlen(text) != 17 || sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &bytes[0], &bytes[1],
                                     &bytes[2], &bytes[3], &bytes[4], &bytes[5], &trailing) != 6)
        return invalid(mapper->error, node, "invalid MAC address '%s'", text);
    for (size_t i = 0; i < 17; i++) {
        bool separator = i % 3 == 2;
        if (separator ? text[i] != ':' : !isxdigit((unsigned char)text[i]))
            return invalid(mapper->error, node, "invalid MAC address '%s'", text);
    }
    if (bytes[0] & 1)
        return invalid(mapper->error, node, "MAC address '%s' is a multicast address", text);
    if (asprintf(out, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2], bytes[3],
                 bytes[4], bytes[5]) < 0) {
        *out = NULL;
        mapper->out_of_memory = true;
    }
    return 0;
}

static void generate_mac(struct mapper *mapper, char **out)
{
    /* The random part of a v4 UUID gives the last 3 bytes; 52:54:00 is QEMU's prefix. */
    char uuid[DOMAIN_UUID_STRING_LENGTH + 1];
    domain_uuid_generate(uuid);
    if (asprintf(out, "52:54:00:%c%c:%c%c:%c%c", uuid[0], uuid[1], uuid[2], uuid[3], uuid[4],
                 uuid[5]) < 0) {
        *out = NULL;
        mapper->out_of_memory = true;
    }
}

/* --- devices -------------------------------------------------------------------------- */

/* <plugvirt:hotplug state=...> of a live device (the daemon refuses it as input). */
static enum domain_hotplug_state hotplug_state_of(xmlNodePtr node)
{
    xmlNodePtr hotplug = first_child(node, "hotplug");
    if (hotplug && attribute_is(hotplug, "state", "attaching"))
        return DOMAIN_HOTPLUG_ATTACHING;
    if (hotplug && attribute_is(hotplug, "state", "detaching"))
        return DOMAIN_HOTPLUG_DETACHING;
    return DOMAIN_HOTPLUG_ATTACHED;
}

static int map_disk(struct mapper *mapper, xmlNodePtr node, struct domain_disk *disk)
{
    disk->type = attribute_is(node, "type", "block") ? DOMAIN_DISK_BLOCK : DOMAIN_DISK_FILE;
    disk->device =
        attribute_is(node, "device", "cdrom") ? DOMAIN_DISK_DEVICE_CDROM : DOMAIN_DISK_DEVICE_DISK;

    xmlNodePtr driver = first_child(node, "driver");
    disk->driver_name = attribute(mapper, driver, "name");
    disk->driver_type = attribute(mapper, driver, "type");
    /* 'default' is libvirt's spelling of "not set": it does not format it either. */
    if (!attribute_is(driver, "cache", "default"))
        disk->cache = attribute(mapper, driver, "cache");
    if (!attribute_is(driver, "io", "default"))
        disk->io = attribute(mapper, driver, "io");
    disk->error_policy = attribute(mapper, driver, "error_policy");
    disk->rerror_policy = attribute(mapper, driver, "rerror_policy");

    xmlNodePtr target = first_child(node, "target");
    disk->target_dev = attribute(mapper, target, "dev");
    if (!disk->target_dev)
        return mapper->out_of_memory ? -ENOMEM
                                     : invalid(mapper->error, node, "<disk> has no target dev");
    if (attribute_is(target, "bus", "scsi")) {
        disk->target_bus = DOMAIN_DISK_BUS_SCSI;
    } else if (attribute_is(target, "bus", "virtio")) {
        disk->target_bus = DOMAIN_DISK_BUS_VIRTIO;
    } else if (strncmp(disk->target_dev, "vd", 2) == 0) {
        disk->target_bus = DOMAIN_DISK_BUS_VIRTIO; /* libvirt derives the bus from the name */
    } else if (strncmp(disk->target_dev, "sd", 2) == 0) {
        disk->target_bus = DOMAIN_DISK_BUS_SCSI;
    } else {
        char what[128];
        snprintf(what, sizeof(what), "<target dev='%s'> without bus=", disk->target_dev);
        return domain_xml_unsupported(
            mapper->error, target, what,
            "its name implies IDE or another bus; use vdX (virtio) or sdX (scsi)");
    }

    xmlNodePtr source = first_child(node, "source");
    char *file = attribute(mapper, source, "file");
    char *dev = attribute(mapper, source, "dev");
    int result = 0;
    if (disk->type == DOMAIN_DISK_FILE && dev)
        result =
            invalid(mapper->error, source, "<disk type='file'> takes <source file=...>, not dev=");
    else if (disk->type == DOMAIN_DISK_BLOCK && file)
        result =
            invalid(mapper->error, source, "<disk type='block'> takes <source dev=...>, not file=");
    else if (!file && !dev && disk->device != DOMAIN_DISK_DEVICE_CDROM)
        result = invalid(mapper->error, node, "disk '%s' has no <source>", disk->target_dev);
    disk->source = file ? file : dev;
    free(file ? dev : NULL);
    if (result < 0)
        return result;

    xmlNodePtr serial = first_child(node, "serial");
    if (serial)
        disk->serial = content(mapper, serial);
    disk->readonly = first_child(node, "readonly") != NULL;
    disk->shareable = first_child(node, "shareable") != NULL;
    disk->alias = alias_of(mapper, node);
    disk->hotplug_state = hotplug_state_of(node);
    result = parse_address(mapper, first_child(node, "address"), &disk->address);
    if (result < 0)
        return result;
    return require_address_type(
        mapper, node, &disk->address,
        disk->target_bus == DOMAIN_DISK_BUS_SCSI ? DOMAIN_ADDRESS_DRIVE : DOMAIN_ADDRESS_PCI,
        disk->target_bus == DOMAIN_DISK_BUS_SCSI ? "a scsi disk" : "a virtio disk");
}

static int map_interface(struct mapper *mapper, xmlNodePtr node, struct domain_interface *interface)
{
    /* The other libvirt types were refused by name (domain_xml_check.c). */
    interface->type =
        attribute_is(node, "type", "bridge") ? DOMAIN_INTERFACE_BRIDGE : DOMAIN_INTERFACE_ETHERNET;

    xmlNodePtr mac = first_child(node, "mac");
    if (mac) {
        xmlChar *text = xmlGetNoNsProp(mac, (const xmlChar *)"address");
        int result = text ? parse_mac(mapper, mac, (const char *)text, &interface->mac)
                          : invalid(mapper->error, mac, "<mac> has no address");
        xmlFree(text);
        if (result < 0)
            return result;
    } else if (!mapper->is_fragment) {
        /* As libvirt does at define time; the daemon checks it is unique on the host. */
        generate_mac(mapper, &interface->mac);
    }

    xmlNodePtr source = first_child(node, "source");
    interface->source = attribute(mapper, source, "bridge");
    if (interface->type == DOMAIN_INTERFACE_ETHERNET && source)
        return invalid(mapper->error, source, "<interface type='ethernet'> takes no <source>");
    if (interface->type == DOMAIN_INTERFACE_BRIDGE && !interface->source)
        return invalid(mapper->error, source ? source : node,
                       "<interface type='bridge'> needs <source bridge=...>");

    xmlNodePtr target = first_child(node, "target");
    interface->target_dev = attribute(mapper, target, "dev");
    interface->target_managed = !attribute_is(target, "managed", "no");
    if (!interface->target_managed && !interface->target_dev)
        return invalid(mapper->error, target, "<target managed='no'> needs dev= (an existing tap)");
    /* Departure from libvirt, whose default model on x86 is rtl8139: plugvirt has only
     * virtio-net, and writes it into the definition so that dumpxml says what the guest gets. */
    xmlNodePtr model = first_child(node, "model");
    interface->model = model ? attribute(mapper, model, "type") : strdup("virtio");
    if (!interface->model)
        mapper->out_of_memory = true;
    xmlNodePtr link = first_child(node, "link");
    interface->link_down = attribute_is(link, "state", "down");
    int result = number_attribute(mapper, first_child(node, "driver"), "queues", 10,
                                  DOMAIN_INTERFACE_MAX_QUEUES, &interface->queues);
    if (result < 0)
        return result;
    if (first_child(node, "driver") && interface->queues == 0 &&
        xmlHasProp(first_child(node, "driver"), (const xmlChar *)"queues"))
        return invalid(mapper->error, node, "<driver queues='0'>: at least one queue");
    interface->alias = alias_of(mapper, node);
    interface->hotplug_state = hotplug_state_of(node);
    result = parse_address(mapper, first_child(node, "address"), &interface->address);
    if (result < 0)
        return result;
    return require_address_type(mapper, node, &interface->address, DOMAIN_ADDRESS_PCI,
                                "an interface");
}

static int map_controller(struct mapper *mapper, xmlNodePtr node,
                          struct domain_controller *controller)
{
    controller->type = attribute(mapper, node, "type");
    controller->model = attribute(mapper, node, "model");
    int result = number_attribute(mapper, node, "index", 10, 0xffff, &controller->index);
    if (result < 0)
        return result;
    if (!controller->type)
        return mapper->out_of_memory ? -ENOMEM
                                     : invalid(mapper->error, node, "<controller> has no type");
    char what[160];
    snprintf(what, sizeof(what), "<controller type='%s'%s%s%s index='%u'>", controller->type,
             controller->model ? " model='" : "", controller->model ? controller->model : "",
             controller->model ? "'" : "", controller->index);
    if (strcmp(controller->type, "pci") == 0) {
        if (!controller->model && controller->index == 0)
            controller->model = strdup("pci-root"); /* libvirt's default for index 0 */
        if (!controller->model)
            mapper->out_of_memory = true;
        else if (strcmp(controller->model, "pci-root") != 0 || controller->index != 0)
            return domain_xml_unsupported(
                mapper->error, node, what,
                "the guest has one PCI bus: <controller type='pci' index='0' "
                "model='pci-root'/>");
    } else if (strcmp(controller->type, "scsi") == 0) {
        if (!controller->model)
            controller->model = strdup("virtio-scsi");
        if (!controller->model)
            mapper->out_of_memory = true;
        else if (strcmp(controller->model, "virtio-scsi") != 0)
            return domain_xml_unsupported(mapper->error, node, what, "only model='virtio-scsi' is");
    } else if (strcmp(controller->type, "virtio-serial") == 0) {
        if (controller->model)
            return domain_xml_unsupported(mapper->error, node, what,
                                          "virtio-serial takes no model");
    } else if (strcmp(controller->type, "usb") == 0) {
        if (!controller->model || strcmp(controller->model, "none") != 0)
            return domain_xml_unsupported(
                mapper->error, node, what,
                "the guest has no USB; <controller type='usb' model='none'/> "
                "is accepted");
    }
    controller->alias = alias_of(mapper, node);
    result = parse_address(mapper, first_child(node, "address"), &controller->address);
    if (result < 0)
        return result;
    return require_address_type(mapper, node, &controller->address, DOMAIN_ADDRESS_PCI,
                                "a controller");
}

static int map_hostdev(struct mapper *mapper, xmlNodePtr node, struct domain_hostdev *hostdev)
{
    hostdev->managed = attribute_is(node, "managed", "yes");
    hostdev->driver_name = attribute(mapper, first_child(node, "driver"), "name");
    xmlNodePtr source_address = first_child(first_child(node, "source"), "address");
    if (!source_address)
        return invalid(mapper->error, node, "<hostdev> has no <source><address .../>");
    int result = pci_address_fields(mapper, source_address, &hostdev->source);
    if (result < 0)
        return result;
    hostdev->alias = alias_of(mapper, node);
    result = parse_address(mapper, first_child(node, "address"), &hostdev->address);
    if (result < 0)
        return result;
    return require_address_type(mapper, node, &hostdev->address, DOMAIN_ADDRESS_PCI, "a hostdev");
}

static int map_chardev(struct mapper *mapper, xmlNodePtr node, enum domain_chardev_kind kind,
                       struct domain_chardev *chardev)
{
    chardev->kind = kind;
    chardev->type = attribute(mapper, node, "type");
    if (!chardev->type)
        return mapper->out_of_memory ? -ENOMEM : invalid(mapper->error, node, "no type");
    xmlNodePtr source = first_child(node, "source");
    chardev->source_mode = attribute(mapper, source, "mode");
    chardev->source_path = attribute(mapper, source, "path");
    chardev->source_append = attribute(mapper, source, "append");
    bool needs_path = strcmp(chardev->type, "unix") == 0 || strcmp(chardev->type, "file") == 0;
    /* pty: libvirt's live XML names the pty in <source path=>; it is runtime state. */
    bool takes_source = needs_path || strcmp(chardev->type, "pty") == 0;
    if (needs_path && !chardev->source_path && !mapper->out_of_memory)
        return invalid(mapper->error, source ? source : node,
                       "<%s type='%s'> needs <source path=...>", domain_xml_node_name(node),
                       chardev->type);
    if (!takes_source && source)
        return invalid(mapper->error, source, "<%s type='%s'> takes no <source>",
                       domain_xml_node_name(node), chardev->type);
    if (chardev->source_mode && strcmp(chardev->type, "unix") != 0)
        return invalid(mapper->error, source, "source mode= is only for type='unix'");
    if (chardev->source_append && strcmp(chardev->type, "file") != 0)
        return invalid(mapper->error, source, "source append= is only for type='file'");

    xmlNodePtr target = first_child(node, "target");
    chardev->target_type = attribute(mapper, target, "type");
    chardev->target_name = attribute(mapper, target, "name");
    chardev->target_model = attribute(mapper, first_child(target, "model"), "name");
    int result =
        target ? number_attribute(mapper, target, "port", 10, 0xffff, &chardev->target_port) : 0;
    if (result < 0)
        return result;
    char what[128];
    if (kind == DOMAIN_CHARDEV_CONSOLE && chardev->target_type &&
        strcmp(chardev->target_type, "virtio") == 0)
        return domain_xml_unsupported(
            mapper->error, target, "<console> with <target type='virtio'>",
            "virtio-console is not emulated; use <target type='serial'/> (the "
            "console is then serial port 0)");
    if (kind != DOMAIN_CHARDEV_CHANNEL && chardev->target_port != 0) {
        snprintf(what, sizeof(what), "<%s> with <target port='%u'>", domain_xml_node_name(node),
                 chardev->target_port);
        return domain_xml_unsupported(mapper->error, target, what,
                                      "the guest has one serial port: port 0 (COM1)");
    }
    chardev->alias = alias_of(mapper, node);
    result = parse_address(mapper, first_child(node, "address"), &chardev->address);
    if (result < 0)
        return result;
    return require_address_type(mapper, node, &chardev->address, DOMAIN_ADDRESS_VIRTIO_SERIAL,
                                "a channel");
}

static bool optional_equal(const char *a, const char *b, const char *fallback)
{
    return strcmp(a ? a : fallback, b ? b : fallback) == 0;
}

/* libvirt's rule: a <console> with target type 'serial' is serial port 0 itself, so when both
 * are given they must describe the same backend (libvirt would silently copy the serial's). */
static int check_serial_console(struct mapper *mapper, xmlNodePtr console_node,
                                const struct domain_chardev *serial,
                                const struct domain_chardev *console)
{
    bool pty = strcmp(serial->type, "pty") == 0;
    if (strcmp(serial->type, console->type) == 0 &&
        optional_equal(serial->source_mode, console->source_mode, "connect") &&
        (pty || optional_equal(serial->source_path, console->source_path, "")) &&
        optional_equal(serial->source_append, console->source_append, "off"))
        return 0;
    return invalid(mapper->error, console_node,
                   "the <console> (target type='serial') is serial port 0: its type and "
                   "<source> must match the <serial>'s (type='%s' here, '%s' there)",
                   console->type, serial->type);
}

/* Maps one device element; false (without error) when `node` is not a device. */
static int map_device(struct mapper *mapper, xmlNodePtr node, struct domain_device *device,
                      bool *is_device)
{
    memset(device, 0, sizeof(*device));
    *is_device = true;
    int result;
    if (domain_xml_is_element(node, "disk")) {
        device->kind = DOMAIN_DEVICE_DISK;
        result = map_disk(mapper, node, &device->disk);
    } else if (domain_xml_is_element(node, "interface")) {
        device->kind = DOMAIN_DEVICE_INTERFACE;
        result = map_interface(mapper, node, &device->interface);
    } else if (domain_xml_is_element(node, "controller")) {
        device->kind = DOMAIN_DEVICE_CONTROLLER;
        result = map_controller(mapper, node, &device->controller);
    } else if (domain_xml_is_element(node, "hostdev")) {
        device->kind = DOMAIN_DEVICE_HOSTDEV;
        result = map_hostdev(mapper, node, &device->hostdev);
    } else if (domain_xml_is_element(node, "channel") || domain_xml_is_element(node, "serial") ||
               domain_xml_is_element(node, "console")) {
        device->kind = DOMAIN_DEVICE_CHARDEV;
        enum domain_chardev_kind kind =
            domain_xml_is_element(node, "channel")  ? DOMAIN_CHARDEV_CHANNEL
            : domain_xml_is_element(node, "serial") ? DOMAIN_CHARDEV_SERIAL
                                                    : DOMAIN_CHARDEV_CONSOLE;
        result = map_chardev(mapper, node, kind, &device->chardev);
    } else {
        *is_device = false;
        return 0;
    }
    if (result == 0 && mapper->out_of_memory)
        result = pv_error_set(mapper->error, -ENOMEM, "out of memory reading the XML");
    if (result < 0)
        domain_device_clear(device);
    return result;
}

/* --- the domain ----------------------------------------------------------------------- */

static int map_memory(struct mapper *mapper, xmlNodePtr node, uint64_t *kib)
{
    xmlChar *text = xmlNodeGetContent(node);
    xmlChar *unit = xmlGetNoNsProp(node, (const xmlChar *)"unit");
    uint64_t value = 0;
    char what[64];
    snprintf(what, sizeof(what), "<%s> value", domain_xml_node_name(node));
    int result = parse_number(mapper, node, what, (const char *)text, 10, UINT64_MAX, &value);
    if (result == 0) {
        struct pv_error scale_error = {0};
        result = domain_scale_to_kib(value, (const char *)unit, kib, &scale_error);
        if (result < 0)
            result = invalid(mapper->error, node, "<%s>: %s", domain_xml_node_name(node),
                             scale_error.message);
        else if (*kib == 0)
            result = invalid(mapper->error, node, "<%s> must be greater than 0",
                             domain_xml_node_name(node));
    }
    xmlFree(text);
    xmlFree(unit);
    return result;
}

static int map_name(struct mapper *mapper, xmlNodePtr node, struct domain_definition *definition)
{
    if (!node)
        return invalid(mapper->error, NULL, "<domain> has no <name>");
    definition->name = content(mapper, node);
    if (!definition->name)
        return pv_error_set(mapper->error, -ENOMEM, "out of memory reading the XML");
    const char *name = definition->name;
    if (name[0] == '\0')
        return invalid(mapper->error, node, "the domain name is empty");
    if (strlen(name) > DOMAIN_NAME_MAX)
        return invalid(mapper->error, node, "the domain name is longer than %d bytes",
                       DOMAIN_NAME_MAX);
    if (strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return invalid(mapper->error, node, "the domain name '%s' cannot be a path", name);
    for (const char *c = name; *c; c++)
        if (iscntrl((unsigned char)*c))
            return invalid(mapper->error, node, "the domain name contains control characters");
    return 0;
}

static int map_os(struct mapper *mapper, xmlNodePtr node, struct domain_definition *definition)
{
    xmlNodePtr type = first_child(node, "type");
    definition->os_type = trimmed_content(mapper, type);
    definition->os_arch = attribute(mapper, type, "arch");
    definition->os_machine = attribute(mapper, type, "machine");
    const char *machine = definition->os_machine;
    if (machine && strcmp(machine, "pc") != 0 && strncmp(machine, "pc-i440fx-", 10) != 0) {
        char what[128];
        snprintf(what, sizeof(what), "<type machine='%s'>", machine);
        return domain_xml_unsupported(mapper->error, type, what,
                                      "plugvirt-vmm emulates QEMU's 'pc' (i440FX) machine");
    }
    xmlNodePtr kernel = first_child(node, "kernel");
    xmlNodePtr initrd = first_child(node, "initrd");
    xmlNodePtr cmdline = first_child(node, "cmdline");
    if (kernel)
        definition->kernel = content(mapper, kernel);
    if (initrd)
        definition->initrd = content(mapper, initrd);
    if (cmdline)
        definition->cmdline = content(mapper, cmdline);
    return 0;
}

static int map_vcpu(struct mapper *mapper, xmlNodePtr node, struct domain_definition *definition)
{
    definition->vcpus_max = 1;
    definition->vcpus_current = 0;
    if (node) {
        xmlChar *text = xmlNodeGetContent(node);
        uint64_t value = 0;
        int result = parse_number(mapper, node, "<vcpu> count", (const char *)text, 10,
                                  DOMAIN_VCPUS_MAX, &value);
        xmlFree(text);
        if (result < 0)
            return result;
        if (value == 0)
            return invalid(mapper->error, node, "<vcpu> must be at least 1");
        definition->vcpus_max = (unsigned)value;
        result = number_attribute(mapper, node, "current", 10, DOMAIN_VCPUS_MAX,
                                  &definition->vcpus_current);
        if (result < 0)
            return result;
        if (xmlHasProp(node, (const xmlChar *)"current") && definition->vcpus_current == 0)
            return invalid(mapper->error, node, "<vcpu current=...> must be at least 1");
        if (definition->vcpus_current > definition->vcpus_max)
            return invalid(mapper->error, node,
                           "<vcpu current='%u'> is more than the maximum of %u vCPUs",
                           definition->vcpus_current, definition->vcpus_max);
    }
    if (definition->vcpus_current == 0)
        definition->vcpus_current = definition->vcpus_max;
    return 0;
}

static int map_devices(struct mapper *mapper, xmlNodePtr devices,
                       struct domain_definition *definition)
{
    xmlNodePtr serial_node = NULL, console_node = NULL;
    for (xmlNodePtr child = devices ? devices->children : NULL; child; child = child->next) {
        if (domain_xml_is_element(child, "serial") || domain_xml_is_element(child, "console")) {
            xmlNodePtr *seen =
                domain_xml_is_element(child, "serial") ? &serial_node : &console_node;
            char what[64];
            snprintf(what, sizeof(what), "a second <%s>", domain_xml_node_name(child));
            if (*seen)
                return domain_xml_unsupported(
                    mapper->error, child, what,
                    "the guest has one serial port (port 0), and a <console> "
                    "with target type='serial' is that port");
            *seen = child;
        }
        if (child->type != XML_ELEMENT_NODE)
            continue;
        if (domain_xml_is_element(child, "emulator")) {
            definition->emulator = content(mapper, child);
            continue;
        }
        struct domain_device device;
        bool is_device;
        int result = map_device(mapper, child, &device, &is_device);
        if (result < 0)
            return result;
        if (!is_device)
            return invalid(mapper->error, child, "unexpected element <%s>",
                           domain_xml_node_name(child));
        struct pv_error add_error = {0};
        result = domain_definition_add_device(definition, &device, &add_error);
        domain_device_clear(&device);
        if (result == -ENOMEM)
            return pv_error_set(mapper->error, result, "%s", add_error.message);
        if (result < 0)
            return invalid(mapper->error, child, "%s", add_error.message);
    }
    struct domain_chardev *console = domain_serial_console(definition);
    const struct domain_chardev *serial = domain_serial_port(definition);
    if (console && serial && serial != console)
        return check_serial_console(mapper, console_node, serial, console);
    return 0;
}

static int map_domain(struct mapper *mapper, xmlNodePtr root, struct domain_definition *definition)
{
    definition->type = attribute(mapper, root, "type");
    int result = map_name(mapper, first_child(root, "name"), definition);
    if (result < 0)
        return result;

    xmlNodePtr uuid = first_child(root, "uuid");
    if (uuid) {
        xmlChar *text = xmlNodeGetContent(uuid);
        struct pv_error uuid_error = {0};
        result = domain_uuid_parse((const char *)text, definition->uuid, &uuid_error);
        xmlFree(text);
        if (result < 0)
            return invalid(mapper->error, uuid, "%s", uuid_error.message);
    } else {
        domain_uuid_generate(definition->uuid);
    }

    xmlNodePtr title = first_child(root, "title");
    if (title) {
        definition->title = content(mapper, title);
        if (definition->title && strchr(definition->title, '\n'))
            return invalid(mapper->error, title, "the title cannot contain newlines");
    }
    xmlNodePtr description = first_child(root, "description");
    if (description)
        definition->description = content(mapper, description);

    xmlNodePtr memory = first_child(root, "memory");
    if (!memory)
        return invalid(mapper->error, root, "<domain> has no <memory>");
    result = map_memory(mapper, memory, &definition->memory_kib);
    if (result < 0)
        return result;
    xmlNodePtr current_memory = first_child(root, "currentMemory");
    definition->current_memory_kib = definition->memory_kib;
    if (current_memory) {
        result = map_memory(mapper, current_memory, &definition->current_memory_kib);
        if (result < 0)
            return result;
        if (definition->current_memory_kib > definition->memory_kib)
            return invalid(mapper->error, current_memory,
                           "<currentMemory> (%" PRIu64 " KiB) is more than <memory> (%" PRIu64
                           " KiB)",
                           definition->current_memory_kib, definition->memory_kib);
    }

    result = map_vcpu(mapper, first_child(root, "vcpu"), definition);
    if (result < 0)
        return result;
    result = map_os(mapper, first_child(root, "os"), definition);
    if (result < 0)
        return result;

    xmlNodePtr features = first_child(root, "features");
    definition->acpi = first_child(features, "acpi") != NULL;
    definition->apic = first_child(features, "apic") != NULL;
    definition->pae = first_child(features, "pae") != NULL;

    xmlNodePtr cpu = first_child(root, "cpu");
    definition->cpu_mode = attribute(mapper, cpu, "mode");
    definition->cpu_match = attribute(mapper, cpu, "match");
    definition->cpu_check = attribute(mapper, cpu, "check");
    definition->cpu_migratable = attribute(mapper, cpu, "migratable");
    xmlNodePtr cpu_model = first_child(cpu, "model");
    if (cpu_model) {
        definition->cpu_model = trimmed_content(mapper, cpu_model);
        definition->cpu_model_fallback = attribute(mapper, cpu_model, "fallback");
    }

    definition->clock_offset = attribute(mapper, first_child(root, "clock"), "offset");
    xmlNodePtr action;
    if ((action = first_child(root, "on_poweroff")))
        definition->on_poweroff = trimmed_content(mapper, action);
    if ((action = first_child(root, "on_reboot")))
        definition->on_reboot = trimmed_content(mapper, action);
    if ((action = first_child(root, "on_crash")))
        definition->on_crash = trimmed_content(mapper, action);
    xmlNodePtr pm = first_child(root, "pm");
    definition->pm_suspend_to_mem = attribute(mapper, first_child(pm, "suspend-to-mem"), "enabled");
    definition->pm_suspend_to_disk =
        attribute(mapper, first_child(pm, "suspend-to-disk"), "enabled");

    result = map_devices(mapper, first_child(root, "devices"), definition);
    if (result < 0)
        return result;
    if (mapper->out_of_memory)
        return pv_error_set(mapper->error, -ENOMEM, "out of memory reading the XML");
    return 0;
}

/* Reads, checks for unsupported elements, validates: the steps shared by both parsers. */
static xmlDocPtr document_prepare(const char *xml, size_t length, const char *schema_dir,
                                  const char *schema_file, const char *expected_root,
                                  struct pv_error *error)
{
    xmlDocPtr document = domain_xml_document_read(xml, length, error);
    if (!document)
        return NULL;
    xmlNodePtr root = xmlDocGetRootElement(document);
    if (expected_root && (!domain_xml_is_element(root, expected_root) || root->ns)) {
        invalid(error, root, "the root element is <%s>, expected <%s>", domain_xml_node_name(root),
                expected_root);
        xmlFreeDoc(document);
        return NULL;
    }
    struct xml_error_capture capture;
    int result = domain_xml_check_unsupported(root, expected_root ? "" : "devices", error);
    if (result == 0 && expected_root)
        result = domain_xml_domain_validate(document, schema_dir, error);
    else if (result == 0 &&
             domain_xml_validate_node(root, schema_dir, schema_file, &capture, error) > 0)
        result = domain_xml_capture_report(error, &capture);
    if (result < 0) {
        xmlFreeDoc(document);
        return NULL;
    }
    return document;
}

struct domain_definition *domain_xml_parse(const char *xml, size_t length, const char *schema_dir,
                                           struct pv_error *error)
{
    xmlDocPtr document = document_prepare(xml, length, schema_dir, "domain.rng", "domain", error);
    if (!document)
        return NULL;
    struct domain_definition *definition = calloc(1, sizeof(*definition));
    if (!definition) {
        xmlFreeDoc(document);
        return pv_error_set(error, -ENOMEM, "out of memory"), NULL;
    }
    struct mapper mapper = {.error = error};
    int result = map_domain(&mapper, xmlDocGetRootElement(document), definition);
    xmlFreeDoc(document);
    if (result < 0) {
        domain_definition_free(definition);
        return NULL;
    }
    return definition;
}

struct domain_device *domain_xml_parse_device(const char *xml, size_t length,
                                              const char *schema_dir, struct pv_error *error)
{
    xmlDocPtr document = document_prepare(xml, length, schema_dir, "device.rng", NULL, error);
    if (!document)
        return NULL;
    struct domain_device *device = calloc(1, sizeof(*device));
    if (!device) {
        xmlFreeDoc(document);
        return pv_error_set(error, -ENOMEM, "out of memory"), NULL;
    }
    struct mapper mapper = {.error = error, .is_fragment = true};
    bool is_device = false;
    xmlNodePtr root = xmlDocGetRootElement(document);
    int result = map_device(&mapper, root, device, &is_device);
    if (result == 0 && !is_device)
        result = invalid(error, root, "<%s> is not a device", domain_xml_node_name(root));
    xmlFreeDoc(document);
    if (result < 0) {
        free(device);
        return NULL;
    }
    return device;
}

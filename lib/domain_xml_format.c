/* Writing libvirt domain XML: 2-space indent, single-quoted attributes (domain.h). */
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

/* --- formatting ----------------------------------------------------------------------- */

static void write_indent(FILE *out, int level)
{
    for (int i = 0; i < level; i++)
        fputs("  ", out);
}

/* Escapes like libvirt's virBufferEscapeString: text and single-quoted attributes. */
static void write_escaped(FILE *out, const char *text)
{
    for (const char *c = text; *c; c++) {
        switch (*c) {
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '&':
            fputs("&amp;", out);
            break;
        case '\'':
            fputs("&apos;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        default:
            fputc(*c, out);
        }
    }
}

static void write_attribute(FILE *out, const char *name, const char *value)
{
    if (!value)
        return;
    fprintf(out, " %s='", name);
    write_escaped(out, value);
    fputc('\'', out);
}

static void write_text_element(FILE *out, int level, const char *name, const char *value)
{
    if (!value)
        return;
    write_indent(out, level);
    fprintf(out, "<%s>", name);
    write_escaped(out, value);
    fprintf(out, "</%s>\n", name);
}

static void write_pci_fields(FILE *out, const struct domain_address *address)
{
    fprintf(out, " domain='0x%04x' bus='0x%02x' slot='0x%02x' function='0x%x'", address->domain,
            address->bus, address->slot, address->function);
}

static void write_address(FILE *out, int level, const struct domain_address *address)
{
    switch (address->type) {
    case DOMAIN_ADDRESS_NONE:
        return;
    case DOMAIN_ADDRESS_PCI:
        write_indent(out, level);
        fputs("<address type='pci'", out);
        write_pci_fields(out, address);
        fputs("/>\n", out);
        return;
    case DOMAIN_ADDRESS_DRIVE:
        write_indent(out, level);
        fprintf(out, "<address type='drive' controller='%u' bus='%u' target='%u' unit='%u'/>\n",
                address->controller, address->bus, address->target, address->unit);
        return;
    case DOMAIN_ADDRESS_VIRTIO_SERIAL:
        write_indent(out, level);
        fprintf(out, "<address type='virtio-serial' controller='%u' bus='%u' port='%u'/>\n",
                address->controller, address->bus, address->port);
        return;
    }
}

/* The inactive XML keeps only user aliases ('ua-' prefix), as libvirt does. */
static void write_alias(FILE *out, int level, const char *alias, bool live)
{
    if (!alias || (!live && strncmp(alias, "ua-", 3) != 0))
        return;
    write_indent(out, level);
    fputs("<alias", out);
    write_attribute(out, "name", alias);
    fputs("/>\n", out);
}

/* <plugvirt:hotplug state=...>: a hot-plug in progress (live XML only). */
static void write_hotplug_state(FILE *out, int level, enum domain_hotplug_state state, bool live)
{
    if (!live || state == DOMAIN_HOTPLUG_ATTACHED)
        return;
    write_indent(out, level);
    fputs("<plugvirt:hotplug xmlns:plugvirt='" DOMAIN_XML_PLUGVIRT_NAMESPACE "'", out);
    write_attribute(out, "state", domain_hotplug_state_name(state));
    fputs("/>\n", out);
}

static void write_disk(FILE *out, int level, const struct domain_disk *disk, bool live)
{
    write_indent(out, level);
    fputs("<disk", out);
    write_attribute(out, "type", domain_disk_type_name(disk->type));
    write_attribute(out, "device", domain_disk_device_name(disk->device));
    fputs(">\n", out);
    if (disk->driver_name || disk->driver_type || disk->cache || disk->io || disk->error_policy ||
        disk->rerror_policy) {
        write_indent(out, level + 1);
        fputs("<driver", out);
        write_attribute(out, "name", disk->driver_name);
        write_attribute(out, "type", disk->driver_type);
        write_attribute(out, "cache", disk->cache);
        write_attribute(out, "error_policy", disk->error_policy);
        write_attribute(out, "rerror_policy", disk->rerror_policy);
        write_attribute(out, "io", disk->io);
        fputs("/>\n", out);
    }
    if (disk->source) {
        write_indent(out, level + 1);
        fputs("<source", out);
        write_attribute(out, disk->type == DOMAIN_DISK_BLOCK ? "dev" : "file", disk->source);
        fputs("/>\n", out);
    }
    write_indent(out, level + 1);
    fputs("<target", out);
    write_attribute(out, "dev", disk->target_dev);
    write_attribute(out, "bus", domain_disk_bus_name(disk->target_bus));
    fputs("/>\n", out);
    if (disk->readonly) {
        write_indent(out, level + 1);
        fputs("<readonly/>\n", out);
    }
    if (disk->shareable) {
        write_indent(out, level + 1);
        fputs("<shareable/>\n", out);
    }
    write_text_element(out, level + 1, "serial", disk->serial);
    write_alias(out, level + 1, disk->alias, live);
    write_hotplug_state(out, level + 1, disk->hotplug_state, live);
    write_address(out, level + 1, &disk->address);
    write_indent(out, level);
    fputs("</disk>\n", out);
}

static void write_interface(FILE *out, int level, const struct domain_interface *interface,
                            bool live)
{
    write_indent(out, level);
    fputs("<interface", out);
    write_attribute(out, "type", domain_interface_type_name(interface->type));
    fputs(">\n", out);
    if (interface->mac) {
        write_indent(out, level + 1);
        fputs("<mac", out);
        write_attribute(out, "address", interface->mac);
        fputs("/>\n", out);
    }
    if (interface->source) {
        write_indent(out, level + 1);
        fputs("<source", out);
        write_attribute(out, "bridge", interface->source);
        fputs("/>\n", out);
    }
    if (interface->target_dev) {
        write_indent(out, level + 1);
        fputs("<target", out);
        write_attribute(out, "dev", interface->target_dev);
        if (!interface->target_managed)
            write_attribute(out, "managed", "no");
        fputs("/>\n", out);
    }
    if (interface->model) {
        write_indent(out, level + 1);
        fputs("<model", out);
        write_attribute(out, "type", interface->model);
        fputs("/>\n", out);
    }
    if (interface->queues) {
        write_indent(out, level + 1);
        fprintf(out, "<driver queues='%u'/>\n", interface->queues);
    }
    if (interface->link_down) {
        write_indent(out, level + 1);
        fputs("<link state='down'/>\n", out);
    }
    write_alias(out, level + 1, interface->alias, live);
    write_hotplug_state(out, level + 1, interface->hotplug_state, live);
    write_address(out, level + 1, &interface->address);
    write_indent(out, level);
    fputs("</interface>\n", out);
}

static void write_controller(FILE *out, int level, const struct domain_controller *controller,
                             bool live)
{
    write_indent(out, level);
    fputs("<controller", out);
    write_attribute(out, "type", controller->type);
    fprintf(out, " index='%u'", controller->index);
    write_attribute(out, "model", controller->model);
    bool has_alias = controller->alias && (live || strncmp(controller->alias, "ua-", 3) == 0);
    if (!has_alias && controller->address.type == DOMAIN_ADDRESS_NONE) {
        fputs("/>\n", out);
        return;
    }
    fputs(">\n", out);
    write_alias(out, level + 1, controller->alias, live);
    write_address(out, level + 1, &controller->address);
    write_indent(out, level);
    fputs("</controller>\n", out);
}

static void write_hostdev(FILE *out, int level, const struct domain_hostdev *hostdev, bool live)
{
    write_indent(out, level);
    fputs("<hostdev mode='subsystem' type='pci'", out);
    write_attribute(out, "managed", hostdev->managed ? "yes" : "no");
    fputs(">\n", out);
    if (hostdev->driver_name) {
        write_indent(out, level + 1);
        fputs("<driver", out);
        write_attribute(out, "name", hostdev->driver_name);
        fputs("/>\n", out);
    }
    write_indent(out, level + 1);
    fputs("<source>\n", out);
    write_indent(out, level + 2);
    fputs("<address", out);
    write_pci_fields(out, &hostdev->source);
    fputs("/>\n", out);
    write_indent(out, level + 1);
    fputs("</source>\n", out);
    write_alias(out, level + 1, hostdev->alias, live);
    write_address(out, level + 1, &hostdev->address);
    write_indent(out, level);
    fputs("</hostdev>\n", out);
}

static void write_chardev(FILE *out, int level, const struct domain_chardev *chardev, bool live)
{
    const char *element = domain_chardev_kind_name(chardev->kind);
    write_indent(out, level);
    fprintf(out, "<%s", element);
    write_attribute(out, "type", chardev->type);
    fputs(">\n", out);
    /* A pty's path is runtime state: only the live XML has it, as in libvirt. */
    const char *path =
        chardev->type && strcmp(chardev->type, "pty") == 0 && !live ? NULL : chardev->source_path;
    if (chardev->source_mode || path || chardev->source_append) {
        write_indent(out, level + 1);
        fputs("<source", out);
        write_attribute(out, "mode", chardev->source_mode);
        write_attribute(out, "path", path);
        write_attribute(out, "append", chardev->source_append);
        fputs("/>\n", out);
    }
    write_indent(out, level + 1);
    fputs("<target", out);
    write_attribute(out, "type", chardev->target_type);
    write_attribute(out, "name", chardev->target_name);
    if (chardev->kind != DOMAIN_CHARDEV_CHANNEL)
        fprintf(out, " port='%u'", chardev->target_port);
    if (chardev->target_model) {
        fputs(">\n", out);
        write_indent(out, level + 2);
        fputs("<model", out);
        write_attribute(out, "name", chardev->target_model);
        fputs("/>\n", out);
        write_indent(out, level + 1);
        fputs("</target>\n", out);
    } else {
        fputs("/>\n", out);
    }
    write_alias(out, level + 1, chardev->alias, live);
    write_address(out, level + 1, &chardev->address);
    write_indent(out, level);
    fprintf(out, "</%s>\n", element);
}

static void write_device(FILE *out, int level, const struct domain_device *device, bool live)
{
    switch (device->kind) {
    case DOMAIN_DEVICE_DISK:
        write_disk(out, level, &device->disk, live);
        break;
    case DOMAIN_DEVICE_INTERFACE:
        write_interface(out, level, &device->interface, live);
        break;
    case DOMAIN_DEVICE_CONTROLLER:
        write_controller(out, level, &device->controller, live);
        break;
    case DOMAIN_DEVICE_HOSTDEV:
        write_hostdev(out, level, &device->hostdev, live);
        break;
    case DOMAIN_DEVICE_CHARDEV:
        write_chardev(out, level, &device->chardev, live);
        break;
    }
}

static void write_memory(FILE *out, const char *name, uint64_t kib)
{
    fprintf(out, "  <%s unit='KiB'>%" PRIu64 "</%s>\n", name, kib, name);
}

static void write_domain(FILE *out, const struct domain_definition *definition, bool live)
{
    fputs("<domain", out);
    write_attribute(out, "type", definition->type ? definition->type : "kvm");
    fputs(">\n", out);
    write_text_element(out, 1, "name", definition->name);
    if (definition->uuid[0])
        write_text_element(out, 1, "uuid", definition->uuid);
    write_text_element(out, 1, "title", definition->title);
    write_text_element(out, 1, "description", definition->description);
    write_memory(out, "memory", definition->memory_kib);
    write_memory(out, "currentMemory", definition->current_memory_kib);
    fputs("  <vcpu placement='static'", out);
    if (definition->vcpus_current && definition->vcpus_current != definition->vcpus_max)
        fprintf(out, " current='%u'", definition->vcpus_current);
    fprintf(out, ">%u</vcpu>\n", definition->vcpus_max);

    fputs("  <os>\n    <type", out);
    write_attribute(out, "arch", definition->os_arch);
    write_attribute(out, "machine", definition->os_machine);
    fputc('>', out);
    write_escaped(out, definition->os_type ? definition->os_type : "hvm");
    fputs("</type>\n", out);
    write_text_element(out, 2, "kernel", definition->kernel);
    write_text_element(out, 2, "initrd", definition->initrd);
    write_text_element(out, 2, "cmdline", definition->cmdline);
    fputs("  </os>\n", out);

    if (definition->acpi || definition->apic || definition->pae) {
        fputs("  <features>\n", out);
        if (definition->acpi)
            fputs("    <acpi/>\n", out);
        if (definition->apic)
            fputs("    <apic/>\n", out);
        if (definition->pae)
            fputs("    <pae/>\n", out);
        fputs("  </features>\n", out);
    }
    if (definition->cpu_mode || definition->cpu_match || definition->cpu_check ||
        definition->cpu_migratable || definition->cpu_model) {
        fputs("  <cpu", out);
        write_attribute(out, "mode", definition->cpu_mode);
        write_attribute(out, "match", definition->cpu_match);
        write_attribute(out, "check", definition->cpu_check);
        write_attribute(out, "migratable", definition->cpu_migratable);
        if (definition->cpu_model) {
            fputs(">\n    <model", out);
            write_attribute(out, "fallback", definition->cpu_model_fallback);
            fputc('>', out);
            write_escaped(out, definition->cpu_model);
            fputs("</model>\n  </cpu>\n", out);
        } else {
            fputs("/>\n", out);
        }
    }
    if (definition->clock_offset) {
        fputs("  <clock", out);
        write_attribute(out, "offset", definition->clock_offset);
        fputs("/>\n", out);
    }
    write_text_element(out, 1, "on_poweroff", definition->on_poweroff);
    write_text_element(out, 1, "on_reboot", definition->on_reboot);
    write_text_element(out, 1, "on_crash", definition->on_crash);
    if (definition->pm_suspend_to_mem || definition->pm_suspend_to_disk) {
        fputs("  <pm>\n", out);
        if (definition->pm_suspend_to_mem) {
            fputs("    <suspend-to-mem", out);
            write_attribute(out, "enabled", definition->pm_suspend_to_mem);
            fputs("/>\n", out);
        }
        if (definition->pm_suspend_to_disk) {
            fputs("    <suspend-to-disk", out);
            write_attribute(out, "enabled", definition->pm_suspend_to_disk);
            fputs("/>\n", out);
        }
        fputs("  </pm>\n", out);
    }

    fputs("  <devices>\n", out);
    write_text_element(out, 2, "emulator", definition->emulator);
    /* libvirt's order: disks, controllers, interfaces, serials, consoles, channels, hostdevs */
    for (size_t i = 0; i < definition->disk_count; i++)
        write_disk(out, 2, &definition->disks[i], live);
    for (size_t i = 0; i < definition->controller_count; i++)
        write_controller(out, 2, &definition->controllers[i], live);
    for (size_t i = 0; i < definition->interface_count; i++)
        write_interface(out, 2, &definition->interfaces[i], live);
    for (size_t i = 0; i < definition->chardev_count; i++)
        write_chardev(out, 2, &definition->chardevs[i], live);
    for (size_t i = 0; i < definition->hostdev_count; i++)
        write_hostdev(out, 2, &definition->hostdevs[i], live);
    fputs("  </devices>\n</domain>\n", out);
}

/* Runs `write` into a malloc'd string. */
static char *format_to_string(void (*write)(FILE *, const void *, bool), const void *object,
                              bool live, struct pv_error *error)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    if (!out)
        return pv_error_set_errno(error, -errno, "cannot format the XML"), NULL;
    write(out, object, live);
    bool failed = ferror(out) != 0;
    if (fclose(out) != 0 || failed) {
        free(text);
        return pv_error_set(error, -ENOMEM, "out of memory formatting the XML"), NULL;
    }
    return text;
}

static void write_domain_object(FILE *out, const void *object, bool live)
{
    write_domain(out, object, live);
}

static void write_device_object(FILE *out, const void *object, bool live)
{
    write_device(out, 0, object, live);
}

char *domain_xml_format(const struct domain_definition *definition, bool live,
                        struct pv_error *error)
{
    if (!definition)
        return pv_error_set(error, -EINVAL, "no definition to format"), NULL;
    return format_to_string(write_domain_object, definition, live, error);
}

char *domain_xml_format_device(const struct domain_device *device, struct pv_error *error)
{
    if (!device)
        return pv_error_set(error, -EINVAL, "no device to format"), NULL;
    return format_to_string(write_device_object, device, true, error);
}

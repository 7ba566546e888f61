/* The VMM command line built from a domain definition (see vmm_argv.h). */
#include "vmm_argv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device_args.h"
#include "json_util.h"

struct argv_builder {
    char **items;
    size_t count, capacity;
    bool failed;
};

static void argv_add(struct argv_builder *builder, const char *text)
{
    if (builder->failed)
        return;
    if (builder->count + 2 > builder->capacity) {
        size_t capacity = builder->capacity ? builder->capacity * 2 : 64;
        char **items = realloc(builder->items, capacity * sizeof(*items));
        if (items == NULL) {
            builder->failed = true;
            return;
        }
        builder->items = items;
        builder->capacity = capacity;
    }
    char *copy = text ? strdup(text) : NULL;
    if (copy == NULL) {
        builder->failed = true;
        return;
    }
    builder->items[builder->count++] = copy;
    builder->items[builder->count] = NULL;
}

static void argv_add_owned(struct argv_builder *builder, char *text)
{
    if (text == NULL)
        builder->failed = true;
    else
        argv_add(builder, text);
    free(text);
}

static void __attribute__((format(printf, 2, 3)))
argv_addf(struct argv_builder *builder, const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    char *text = NULL;
    if (vasprintf(&text, format, arguments) < 0)
        text = NULL;
    va_end(arguments);
    argv_add_owned(builder, text);
}

/* Adds `option value`, or nothing when the value is not set. */
static void argv_add_if_set(struct argv_builder *builder, const char *option, const char *value)
{
    if (value == NULL)
        return;
    argv_add(builder, option);
    argv_add(builder, value);
}

/* QEMU option values double their commas. */
static char *escape_commas(const char *text)
{
    size_t length = strlen(text), commas = 0;
    for (size_t i = 0; i < length; i++)
        commas += text[i] == ',';
    char *escaped = malloc(length + commas + 1);
    if (escaped == NULL)
        return NULL;
    char *out = escaped;
    for (size_t i = 0; i < length; i++) {
        *out++ = text[i];
        if (text[i] == ',')
            *out++ = ',';
    }
    *out = '\0';
    return escaped;
}

void vmm_argv_free(char **argv)
{
    if (argv == NULL)
        return;
    for (char **item = argv; *item; item++)
        free(*item);
    free(argv);
}

char *vmm_argv_to_string(char *const *argv)
{
    size_t length = 1;
    for (char *const *item = argv; *item; item++)
        length += strlen(*item) * 2 + 3;
    char *text = malloc(length);
    if (text == NULL)
        return NULL;
    char *out = text;
    for (char *const *item = argv; *item; item++) {
        if (item != argv)
            *out++ = ' ';
        bool quote = strpbrk(*item, " \"'{}") != NULL || **item == '\0';
        if (quote)
            *out++ = '\'';
        for (const char *c = *item; *c; c++)
            *out++ = *c;
        if (quote)
            *out++ = '\'';
    }
    *out = '\0';
    return text;
}

/* One -blockdev/-device JSON object from the builder shared with hot plug (device_args.h). */
static char *disk_object(const struct domain_disk *disk, int which)
{
    char storage[256], format[256];
    if (!device_args_disk_node_name(storage, sizeof(storage), disk->alias,
                                    DEVICE_ARGS_DISK_STORAGE_SUFFIX) ||
        !device_args_disk_node_name(format, sizeof(format), disk->alias,
                                    DEVICE_ARGS_DISK_FORMAT_SUFFIX))
        return NULL;
    struct json_writer writer;
    json_writer_init(&writer, false);
    json_writer_begin_object(&writer);
    int rc;
    if (which == 0)
        rc = device_args_disk_storage(&writer, disk, storage);
    else if (which == 1)
        rc = device_args_disk_format(&writer, disk, format, storage);
    else
        rc = device_args_disk_device(
            &writer, disk, disk->alias ? disk->alias : "", format,
            disk->address.type == DOMAIN_ADDRESS_PCI ? (int)disk->address.slot : -1,
            disk->address.type == DOMAIN_ADDRESS_PCI ? (int)disk->address.function : 0);
    json_writer_end_object(&writer);
    if (rc < 0) {
        json_writer_free(&writer);
        return NULL;
    }
    return json_writer_steal(&writer);
}

char *vmm_argv_disk_storage_json(const struct domain_disk *disk)
{
    return disk_object(disk, 0);
}

char *vmm_argv_disk_format_json(const struct domain_disk *disk)
{
    return disk_object(disk, 1);
}

char *vmm_argv_disk_device_json(const struct domain_disk *disk)
{
    return disk_object(disk, 2);
}

unsigned vmm_argv_nic_fd_count(const struct domain_definition *definition)
{
    unsigned count = 0;
    for (size_t i = 0; i < definition->interface_count; i++)
        count += definition->interfaces[i].queues ? definition->interfaces[i].queues : 1;
    return count;
}

char *vmm_argv_interface_netdev_json(const struct domain_interface *interface, int first_fd)
{
    char netdev[96];
    char numbers[DOMAIN_INTERFACE_MAX_QUEUES][16];
    const char *names[DOMAIN_INTERFACE_MAX_QUEUES];
    unsigned queues = interface->queues ? interface->queues : 1;
    if (queues > DOMAIN_INTERFACE_MAX_QUEUES ||
        !device_args_netdev_id(netdev, sizeof(netdev), interface->alias))
        return NULL;
    for (unsigned i = 0; i < queues; i++) {
        snprintf(numbers[i], sizeof(numbers[i]), "%d", first_fd + (int)i);
        names[i] = numbers[i];
    }
    struct json_writer writer;
    json_writer_init(&writer, false);
    json_writer_begin_object(&writer);
    int rc = device_args_interface_netdev(&writer, interface, netdev, names, queues);
    json_writer_end_object(&writer);
    if (rc < 0) {
        json_writer_free(&writer);
        return NULL;
    }
    return json_writer_steal(&writer);
}

char *vmm_argv_interface_device_json(const struct domain_interface *interface)
{
    char netdev[96];
    if (!device_args_netdev_id(netdev, sizeof(netdev), interface->alias))
        return NULL;
    struct json_writer writer;
    json_writer_init(&writer, false);
    json_writer_begin_object(&writer);
    bool pci = interface->address.type == DOMAIN_ADDRESS_PCI;
    int rc = device_args_interface_device(&writer, interface, interface->alias, netdev,
                                          pci ? (int)interface->address.slot : -1,
                                          pci ? (int)interface->address.function : 0);
    json_writer_end_object(&writer);
    if (rc < 0) {
        json_writer_free(&writer);
        return NULL;
    }
    return json_writer_steal(&writer);
}

char *vmm_argv_serial_chardev(const char *serial_socket, const char *serial_log)
{
    char *path = escape_commas(serial_socket);
    char *log = serial_log ? escape_commas(serial_log) : NULL;
    char *text = NULL;
    if (path && (log || !serial_log) &&
        asprintf(&text, "socket,id=" VMM_ARGV_SERIAL_CHARDEV_ID ",path=%s,server=on,wait=off%s%s%s",
                 path, log ? ",logfile=" : "", log ? log : "", log ? ",logappend=on" : "") < 0)
        text = NULL;
    free(path);
    free(log);
    return text;
}

int vmm_argv_check_serial(const struct domain_definition *definition, struct pv_error *error)
{
    size_t serials = 0, consoles = 0;
    for (size_t i = 0; i < definition->chardev_count; i++) {
        const struct domain_chardev *chardev = &definition->chardevs[i];
        if (chardev->kind == DOMAIN_CHARDEV_CHANNEL)
            continue;
        const char *element = domain_chardev_kind_name(chardev->kind);
        size_t *count = chardev->kind == DOMAIN_CHARDEV_SERIAL ? &serials : &consoles;
        if (++*count > 1 || chardev->target_port != 0)
            return pv_error_set(error, -EINVAL,
                                "unsupported: a second <%s> (the guest has one serial port)",
                                element);
        if (chardev->kind == DOMAIN_CHARDEV_CONSOLE && chardev->target_type &&
            strcmp(chardev->target_type, "serial") != 0)
            return pv_error_set(error, -EINVAL, "unsupported: <console> with target type '%s'",
                                chardev->target_type);
        const char *type = chardev->type ? chardev->type : "";
        bool needs_path = strcmp(type, "file") == 0 || strcmp(type, "unix") == 0;
        if (!needs_path && strcmp(type, "pty") != 0 && strcmp(type, "null") != 0)
            return pv_error_set(error, -EINVAL, "unsupported: <%s type='%s'>", element, type);
        if (needs_path && chardev->source_path == NULL)
            return pv_error_set(error, -EINVAL, "<%s type='%s'> has no source path", element, type);
        if (chardev->source_mode && strcmp(chardev->source_mode, "bind") != 0 &&
            strcmp(chardev->source_mode, "connect") != 0)
            return pv_error_set(error, -EINVAL, "unsupported: <%s> source mode '%s'", element,
                                chardev->source_mode);
    }
    return 0;
}

static int check_disk(const struct domain_disk *disk, struct pv_error *error)
{
    const char *target = disk->target_dev ? disk->target_dev : "?";
    if (disk->target_bus != DOMAIN_DISK_BUS_VIRTIO)
        return pv_error_set(error, -EINVAL,
                            "unsupported: disk '%s': only bus='virtio' disks can be started",
                            target);
    if (disk->device != DOMAIN_DISK_DEVICE_DISK)
        return pv_error_set(error, -EINVAL, "unsupported: disk '%s': only device='disk'", target);
    if (disk->source == NULL)
        return pv_error_set(error, -EINVAL, "disk '%s' has no source", target);
    if (disk->alias == NULL || disk->address.type != DOMAIN_ADDRESS_PCI)
        return pv_error_set(error, -EINVAL, "internal: disk '%s' has no alias or PCI address",
                            target);
    return device_args_disk_check(disk, error);
}

char **vmm_argv_build(const struct domain_definition *definition,
                      const struct vmm_argv_paths *paths, struct pv_error *error)
{
    if (paths->emulator == NULL || paths->qmp_socket == NULL || paths->serial_socket == NULL) {
        pv_error_set(error, -EINVAL, "internal: VMM paths missing");
        return NULL;
    }
    if (definition->hostdev_count) {
        pv_error_set(error, -EINVAL, "unsupported: <hostdev> devices cannot be started yet");
        return NULL;
    }
    for (size_t i = 0; i < definition->interface_count; i++) {
        const struct domain_interface *interface = &definition->interfaces[i];
        if (device_args_interface_check(interface, error) < 0)
            return NULL;
        if (interface->address.type != DOMAIN_ADDRESS_PCI) {
            pv_error_set(error, -EINVAL, "internal: interface %s has no PCI address",
                         interface->mac);
            return NULL;
        }
    }
    for (size_t i = 0; i < definition->chardev_count; i++) {
        const struct domain_chardev *chardev = &definition->chardevs[i];
        if (chardev->kind == DOMAIN_CHARDEV_CHANNEL) {
            pv_error_set(error, -EINVAL, "unsupported: <channel> devices cannot be started yet");
            return NULL;
        }
    }
    if (vmm_argv_check_serial(definition, error) < 0)
        return NULL;
    for (size_t i = 0; i < definition->controller_count; i++) {
        const struct domain_controller *controller = &definition->controllers[i];
        if (controller->type && strcmp(controller->type, "pci") != 0) {
            pv_error_set(error, -EINVAL,
                         "unsupported: <controller type='%s'> cannot be started yet",
                         controller->type);
            return NULL;
        }
    }
    for (size_t i = 0; i < definition->disk_count; i++)
        if (check_disk(&definition->disks[i], error) < 0)
            return NULL;

    struct argv_builder builder = {0};
    argv_add(&builder, paths->emulator);
    char *name = escape_commas(definition->name ? definition->name : "");
    argv_add(&builder, "-name");
    argv_addf(&builder, "guest=%s,debug-threads=on", name ? name : "");
    free(name);
    argv_add(&builder, "-S");
    /* <domain type='qemu'> is libvirt's TCG domain. For type='kvm' stock QEMU falls back to
     * TCG when /dev/kvm is unusable (plugvirt-vmm reads only the first accelerator: kvm). */
    argv_add(&builder, "-machine");
    argv_add(&builder, definition->type && strcmp(definition->type, "qemu") == 0
                           ? "pc,accel=tcg,usb=off"
                           : "pc,accel=kvm:tcg,usb=off");
    /* Like libvirt: no <cpu> element, no -cpu (the emulator's default model: plugvirt-vmm's
     * is host, QEMU's qemu64, which also runs under TCG and under nested KVM hosts where
     * QEMU 7.2's -cpu host aborts setting MSR_IA32_ARCH_CAPABILITIES). */
    if (definition->cpu_mode && strcmp(definition->cpu_mode, "custom") == 0 &&
        definition->cpu_model) {
        argv_add(&builder, "-cpu");
        argv_add_owned(&builder, escape_commas(definition->cpu_model));
    } else if (definition->cpu_mode) {
        argv_add(&builder, "-cpu");
        argv_add(&builder, "host");
    }
    argv_add(&builder, "-m");
    argv_addf(&builder, "size=%lluk", (unsigned long long)definition->memory_kib);
    unsigned maximum = definition->vcpus_max ? definition->vcpus_max : 1;
    unsigned current = definition->vcpus_current ? definition->vcpus_current : maximum;
    argv_add(&builder, "-smp");
    argv_addf(&builder, "%u,maxcpus=%u,sockets=%u,cores=1,threads=1", current, maximum, maximum);
    argv_add(&builder, "-uuid");
    argv_add(&builder, definition->uuid);
    argv_add(&builder, "-no-user-config");
    argv_add(&builder, "-nodefaults");
    argv_add(&builder, "-display");
    argv_add(&builder, "none");
    char *qmp = escape_commas(paths->qmp_socket);
    argv_add(&builder, "-chardev");
    argv_addf(&builder, "socket,id=charmonitor,path=%s,server=on,wait=off", qmp ? qmp : "");
    free(qmp);
    argv_add(&builder, "-mon");
    argv_add(&builder, "chardev=charmonitor,id=monitor,mode=control");
    /* Serial port 0 exists even without <serial>: the daemon's log and console need it. */
    argv_add(&builder, "-chardev");
    argv_add_owned(&builder, vmm_argv_serial_chardev(paths->serial_socket, paths->serial_log));
    argv_add(&builder, "-serial");
    argv_add(&builder, "chardev:" VMM_ARGV_SERIAL_CHARDEV_ID);
    argv_add_if_set(&builder, "-pidfile", paths->pidfile);
    argv_add_if_set(&builder, "-kernel", definition->kernel);
    argv_add_if_set(&builder, "-initrd", definition->initrd);
    argv_add_if_set(&builder, "-append", definition->cmdline);
    for (size_t i = 0; i < definition->disk_count; i++) {
        const struct domain_disk *disk = &definition->disks[i];
        argv_add(&builder, "-blockdev");
        argv_add_owned(&builder, vmm_argv_disk_storage_json(disk));
        argv_add(&builder, "-blockdev");
        argv_add_owned(&builder, vmm_argv_disk_format_json(disk));
        argv_add(&builder, "-device");
        argv_add_owned(&builder, vmm_argv_disk_device_json(disk));
    }
    int nic_fd = VMM_ARGV_FIRST_NIC_FD;
    for (size_t i = 0; i < definition->interface_count; i++) {
        const struct domain_interface *interface = &definition->interfaces[i];
        argv_add(&builder, "-netdev");
        argv_add_owned(&builder, vmm_argv_interface_netdev_json(interface, nic_fd));
        argv_add(&builder, "-device");
        argv_add_owned(&builder, vmm_argv_interface_device_json(interface));
        nic_fd += interface->queues ? (int)interface->queues : 1;
    }
    if (builder.failed) {
        if (builder.items) {
            builder.items[builder.count] = NULL;
            vmm_argv_free(builder.items);
        }
        pv_error_set(error, -ENOMEM, "out of memory");
        return NULL;
    }
    return builder.items;
}

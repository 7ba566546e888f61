/* One hotplug sequence per device kind (see hotplug.c for the engine that runs them). */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "device_args.h"
#include "hotplug_internal.h"
#include "pv_log.h"

/* --- sequences ----------------------------------------------------------------------------- */

static int disk_describe(const struct domain_device *device, bool attach,
                         struct hotplug_names *names, struct pv_error *error)
{
    const struct domain_disk *disk = &device->disk;
    if (device->kind != DOMAIN_DEVICE_DISK)
        return -EOPNOTSUPP;
    if (disk->target_bus != DOMAIN_DISK_BUS_VIRTIO || disk->device != DOMAIN_DISK_DEVICE_DISK)
        return pv_error_set(error, -EOPNOTSUPP,
                            "only virtio disks can be hot-plugged by plugvirt for now");
    if (!disk->alias || !disk->target_dev)
        return pv_error_set(error, -EINVAL, "the disk has no alias or target dev");
    if (attach && !disk->source)
        return pv_error_set(error, -EINVAL, "disk %s has no source", disk->target_dev);
    snprintf(names->alias, sizeof(names->alias), "%s", disk->alias);
    snprintf(names->target, sizeof(names->target), "%s", disk->target_dev);
    names->slot = disk->address.type == DOMAIN_ADDRESS_PCI ? (int)disk->address.slot : -1;
    names->function = disk->address.type == DOMAIN_ADDRESS_PCI ? (int)disk->address.function : 0;
    return 0;
}

static int disk_build_storage(const struct domain_device *device, const struct hotplug_names *names,
                              struct json_writer *arguments)
{
    /* The same arguments as the cold-plugged disk's -blockdev (device_args.h). */
    return device_args_disk_storage(arguments, &device->disk, names->objects[0]);
}

static int disk_build_format(const struct domain_device *device, const struct hotplug_names *names,
                             struct json_writer *arguments)
{
    return device_args_disk_format(arguments, &device->disk, names->objects[1], names->objects[0]);
}

static int disk_build_device(const struct domain_device *device, const struct hotplug_names *names,
                             struct json_writer *arguments)
{
    return device_args_disk_device(arguments, &device->disk, names->alias, names->objects[1],
                                   names->slot, names->function);
}

static const struct hotplug_step disk_steps[] = {
    {"blockdev-add", DEVICE_ARGS_DISK_STORAGE_SUFFIX, HOTPLUG_OBJECT_BLOCK_NODE, disk_build_storage,
     "blockdev-del", "node-name", NULL, NULL, NULL},
    {"blockdev-add", DEVICE_ARGS_DISK_FORMAT_SUFFIX, HOTPLUG_OBJECT_BLOCK_NODE, disk_build_format,
     "blockdev-del", "node-name", NULL, NULL, NULL},
    {"device_add", "", HOTPLUG_OBJECT_DEVICE, disk_build_device, "device_del", "id", NULL, NULL,
     NULL},
};

/* Interfaces: the daemon opens the tap and hands its descriptor over with getfd, then
 * netdev_add (which takes the descriptor out of the monitor's table: closefd afterwards finds
 * nothing, and is then a no-op) and device_add virtio-net-pci. The store key ("target") is
 * the MAC: it is unique and known before anything is allocated. */
int hotplug_interface_check(const struct domain_interface *interface, struct pv_error *error)
{
    if (interface->queues > DOMAIN_INTERFACE_MAX_QUEUES)
        return pv_error_set(error, -EINVAL, "<driver queues='%u'>: at most %d", interface->queues,
                            DOMAIN_INTERFACE_MAX_QUEUES);
    return 0;
}

static int interface_describe(const struct domain_device *device, bool attach,
                              struct hotplug_names *names, struct pv_error *error)
{
    const struct domain_interface *interface = &device->interface;
    if (device->kind != DOMAIN_DEVICE_INTERFACE)
        return -EOPNOTSUPP;
    if (attach && hotplug_interface_check(interface, error) < 0)
        return -EOPNOTSUPP;
    if (!interface->alias || !interface->mac)
        return pv_error_set(error, -EINVAL, "the interface has no alias or MAC address");
    snprintf(names->alias, sizeof(names->alias), "%s", interface->alias);
    snprintf(names->target, sizeof(names->target), "%s", interface->mac);
    bool pci = interface->address.type == DOMAIN_ADDRESS_PCI;
    names->slot = pci ? (int)interface->address.slot : -1;
    names->function = pci ? (int)interface->address.function : 0;
    return 0;
}

/* One getfd per queue: steps 0 .. DOMAIN_INTERFACE_MAX_QUEUES - 1. */
#define INTERFACE_NETDEV_STEP DOMAIN_INTERFACE_MAX_QUEUES

static unsigned interface_queues(const struct domain_device *device)
{
    return device->interface.queues ? device->interface.queues : 1;
}

static bool interface_has_queue(const struct domain_device *device, int index)
{
    return (unsigned)index < interface_queues(device);
}

/* The first getfd opens the tap (every queue); each getfd hands over its queue's descriptor. */
static int interface_open_tap(struct hotplug_job *job, int *fd, struct pv_error *error)
{
    if (job->index == 0) {
        int rc = tap_device_open(&job->device->interface, &job->tap, error);
        if (rc < 0)
            return rc;
    }
    if (job->index >= (int)job->tap.fd_count)
        return pv_error_set(error, -EBADF, "the tap of queue %d is not open", job->index);
    *fd = job->tap.fds[job->index];
    return 0;
}

/* getfd's argument is its own step's name: one builder per queue (builders get no index). */
#define INTERFACE_BUILD_GETFD(n)                                                                   \
    static int interface_build_getfd_##n(const struct domain_device *device,                       \
                                         const struct hotplug_names *names,                        \
                                         struct json_writer *arguments)                            \
    {                                                                                              \
        (void)device;                                                                              \
        json_writer_member_string(arguments, "fdname", names->objects[n]);                         \
        return 0;                                                                                  \
    }
INTERFACE_BUILD_GETFD(0)
INTERFACE_BUILD_GETFD(1)
INTERFACE_BUILD_GETFD(2)
INTERFACE_BUILD_GETFD(3)
INTERFACE_BUILD_GETFD(4)
INTERFACE_BUILD_GETFD(5)
INTERFACE_BUILD_GETFD(6)
INTERFACE_BUILD_GETFD(7)

static int interface_build_netdev(const struct domain_device *device,
                                  const struct hotplug_names *names, struct json_writer *arguments)
{
    const char *fd_names[DOMAIN_INTERFACE_MAX_QUEUES];
    unsigned queues = interface_queues(device);
    if (queues > DOMAIN_INTERFACE_MAX_QUEUES)
        return -EINVAL;
    for (unsigned i = 0; i < queues; i++)
        fd_names[i] = names->objects[i];
    return device_args_interface_netdev(arguments, &device->interface,
                                        names->objects[INTERFACE_NETDEV_STEP], fd_names, queues);
}

static int interface_build_device(const struct domain_device *device,
                                  const struct hotplug_names *names, struct json_writer *arguments)
{
    return device_args_interface_device(arguments, &device->interface, names->alias,
                                        names->objects[INTERFACE_NETDEV_STEP], names->slot,
                                        names->function);
}

/* Queue 0's names keep no suffix: "fd-net0", kill point "getfd". */
#define INTERFACE_GETFD(n, suffix)                                                                 \
    {                                                                                              \
        "getfd", suffix, HOTPLUG_OBJECT_FD, interface_build_getfd_##n, "closefd", "fdname", "fd-", \
            interface_open_tap, interface_has_queue                                                \
    }

static const struct hotplug_step interface_steps[] = {
    INTERFACE_GETFD(0, ""),
    INTERFACE_GETFD(1, "-1"),
    INTERFACE_GETFD(2, "-2"),
    INTERFACE_GETFD(3, "-3"),
    INTERFACE_GETFD(4, "-4"),
    INTERFACE_GETFD(5, "-5"),
    INTERFACE_GETFD(6, "-6"),
    INTERFACE_GETFD(7, "-7"),
    {"netdev_add", "", HOTPLUG_OBJECT_NETDEV, interface_build_netdev, "netdev_del", "id",
     DEVICE_ARGS_NETDEV_PREFIX, NULL, NULL},
    {"device_add", "", HOTPLUG_OBJECT_DEVICE, interface_build_device, "device_del", "id", NULL,
     NULL, NULL},
};

/* One entry per device kind; hostdevs (vfio-pci) and channels (chardev-add + virtserialport)
 * are each one more entry. */
static const struct hotplug_sequence hotplug_sequences[] = {
    {"disk", "disk", disk_describe, disk_steps, sizeof(disk_steps) / sizeof(disk_steps[0])},
    {"interface", "interface", interface_describe, interface_steps,
     sizeof(interface_steps) / sizeof(interface_steps[0])},
};
#define HOTPLUG_SEQUENCE_COUNT (sizeof(hotplug_sequences) / sizeof(hotplug_sequences[0]))

void hotplug_names_fill_objects(const struct hotplug_sequence *sequence,
                                struct hotplug_names *names)
{
    for (int i = 0; i < sequence->step_count; i++)
        snprintf(names->objects[i], sizeof(names->objects[i]), "%s%s%s",
                 sequence->steps[i].object_prefix ? sequence->steps[i].object_prefix : "",
                 names->alias, sequence->steps[i].object_suffix);
}

/* The sequence for the device's kind, before its names are known (attach: allocated when the
 * job starts). */
const struct hotplug_sequence *hotplug_sequence_for_kind(const struct domain_device *device,
                                                         struct pv_error *error)
{
    struct hotplug_names names;
    for (size_t i = 0; i < HOTPLUG_SEQUENCE_COUNT; i++) {
        /* -EOPNOTSUPP without a message: another kind; with one: this kind, a variant that
         * cannot be hot-plugged. Anything else (no alias yet) is for the job to settle. */
        struct pv_error verdict = {0};
        int rc = hotplug_sequences[i].describe(device, false, &names, &verdict);
        if (rc == -EOPNOTSUPP && !verdict.code)
            continue;
        if (rc == -EOPNOTSUPP) {
            if (error)
                *error = verdict;
            return NULL;
        }
        return &hotplug_sequences[i];
    }
    pv_error_set(error, -EOPNOTSUPP, "this kind of device cannot be hot-plugged by plugvirt");
    return NULL;
}

const struct hotplug_sequence *hotplug_sequence_by_name(const char *name)
{
    for (size_t i = 0; name && i < HOTPLUG_SEQUENCE_COUNT; i++)
        if (!strcmp(hotplug_sequences[i].name, name))
            return &hotplug_sequences[i];
    return NULL;
}

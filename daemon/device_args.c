/* Each device kind's QEMU arguments, built once for cold and hot plug (see device_args.h). */
#include "device_args.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* libvirt's <driver cache=> as QEMU's cache.direct, cache.no-flush and the device's
 * write-cache (libvirt: qemuDomainDiskCachemodeFlags). */
struct cache_mode {
    const char *name;
    bool direct, no_flush, write_cache;
};

static const struct cache_mode cache_modes[] = {
    {"writeback", false, false, true},     {"none", true, false, true},
    {"writethrough", false, false, false}, {"directsync", true, false, false},
    {"unsafe", false, true, true},
};

static const char *const io_modes[] = {"threads", "native", "io_uring"};
/* <driver error_policy=> as QEMU's werror ('enospace' is spelled "enospc"). */
static const char *const error_policies[][2] = {
    {"stop", "stop"}, {"report", "report"}, {"ignore", "ignore"}, {"enospace", "enospc"}};
/* QEMU has no read error policy "enospc". */
static const char *const read_error_policies[] = {"stop", "report", "ignore"};

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

static const struct cache_mode *find_cache_mode(const char *name)
{
    for (size_t i = 0; name && i < COUNT(cache_modes); i++)
        if (strcmp(cache_modes[i].name, name) == 0)
            return &cache_modes[i];
    return NULL;
}

static bool listed(const char *value, const char *const *list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(list[i], value) == 0)
            return true;
    return false;
}

static const char *write_error_policy(const char *policy)
{
    for (size_t i = 0; policy && i < COUNT(error_policies); i++)
        if (strcmp(error_policies[i][0], policy) == 0)
            return error_policies[i][1];
    return NULL;
}

/* libvirt's qemuBuildDiskGetErrorPolicy: rerror_policy, else error_policy unless that is
 * 'enospace' (QEMU's default for reads, "report", then). */
static const char *read_error_policy(const struct domain_disk *disk)
{
    if (disk->rerror_policy)
        return disk->rerror_policy;
    if (disk->error_policy && strcmp(disk->error_policy, "enospace") != 0)
        return disk->error_policy;
    return NULL;
}

int device_args_disk_check(const struct domain_disk *disk, struct pv_error *error)
{
    const char *target = disk->target_dev ? disk->target_dev : "?";
    if (disk->cache && !find_cache_mode(disk->cache))
        return pv_error_set(error, -EINVAL, "unsupported: disk '%s': <driver cache='%s'>", target,
                            disk->cache);
    if (disk->io && !listed(disk->io, io_modes, COUNT(io_modes)))
        return pv_error_set(error, -EINVAL, "unsupported: disk '%s': <driver io='%s'>", target,
                            disk->io);
    if (disk->error_policy && !write_error_policy(disk->error_policy))
        return pv_error_set(error, -EINVAL, "unsupported: disk '%s': <driver error_policy='%s'>",
                            target, disk->error_policy);
    if (disk->rerror_policy &&
        !listed(disk->rerror_policy, read_error_policies, COUNT(read_error_policies)))
        return pv_error_set(error, -EINVAL, "unsupported: disk '%s': <driver rerror_policy='%s'>",
                            target, disk->rerror_policy);
    return 0;
}

bool device_args_disk_node_name(char *out, size_t size, const char *alias, const char *suffix)
{
    int length = snprintf(out, size, "%s%s", alias ? alias : "", suffix);
    return length >= 0 && (size_t)length < size;
}

static void write_cache(struct json_writer *writer, const struct cache_mode *cache)
{
    if (cache == NULL)
        return;
    json_writer_key(writer, "cache");
    json_writer_begin_object(writer);
    json_writer_member_bool(writer, "direct", cache->direct);
    json_writer_member_bool(writer, "no-flush", cache->no_flush);
    json_writer_end_object(writer);
}

int device_args_disk_storage(struct json_writer *writer, const struct domain_disk *disk,
                             const char *storage_node)
{
    if (device_args_disk_check(disk, NULL) < 0)
        return -EINVAL;
    json_writer_member_string(writer, "driver",
                              disk->type == DOMAIN_DISK_BLOCK ? "host_device" : "file");
    json_writer_member_string(writer, "filename", disk->source ? disk->source : "");
    json_writer_member_string(writer, "node-name", storage_node);
    if (disk->io)
        json_writer_member_string(writer, "aio", disk->io);
    /* Opened read-write only while a writer uses it; the format node says read-only. */
    json_writer_member_bool(writer, "auto-read-only", true);
    json_writer_member_string(writer, "discard", "unmap");
    write_cache(writer, find_cache_mode(disk->cache));
    return 0;
}

int device_args_disk_format(struct json_writer *writer, const struct domain_disk *disk,
                            const char *format_node, const char *storage_node)
{
    if (device_args_disk_check(disk, NULL) < 0)
        return -EINVAL;
    json_writer_member_string(writer, "node-name", format_node);
    json_writer_member_bool(writer, "read-only", disk->readonly);
    write_cache(writer, find_cache_mode(disk->cache));
    json_writer_member_string(writer, "driver", disk->driver_type ? disk->driver_type : "raw");
    json_writer_member_string(writer, "file", storage_node);
    return 0;
}

static void write_pci_address(struct json_writer *writer, int slot, int function)
{
    if (slot < 0)
        return;
    char address[32];
    if (function)
        snprintf(address, sizeof(address), "0x%x.0x%x", (unsigned)slot, (unsigned)function);
    else
        snprintf(address, sizeof(address), "0x%x", (unsigned)slot);
    json_writer_member_string(writer, "bus", "pci.0");
    json_writer_member_string(writer, "addr", address);
}

int device_args_disk_device(struct json_writer *writer, const struct domain_disk *disk,
                            const char *id, const char *format_node, int slot, int function)
{
    if (device_args_disk_check(disk, NULL) < 0)
        return -EINVAL;
    json_writer_member_string(writer, "driver", "virtio-blk-pci");
    write_pci_address(writer, slot, function);
    json_writer_member_string(writer, "drive", format_node);
    json_writer_member_string(writer, "id", id);
    const struct cache_mode *cache = find_cache_mode(disk->cache);
    if (cache)
        json_writer_member_string(writer, "write-cache", cache->write_cache ? "on" : "off");
    if (disk->serial)
        json_writer_member_string(writer, "serial", disk->serial);
    /* <shareable/>: other users may write the image too (libvirt: share-rw=on); without it
     * QEMU's image locking refuses the second writer. */
    if (disk->shareable && !disk->readonly)
        json_writer_member_bool(writer, "share-rw", true);
    const char *werror = write_error_policy(disk->error_policy);
    if (werror)
        json_writer_member_string(writer, "werror", werror);
    const char *rerror = read_error_policy(disk);
    if (rerror)
        json_writer_member_string(writer, "rerror", rerror);
    return 0;
}

/* --- interfaces ---------------------------------------------------------------------------- */

bool device_args_netdev_id(char *out, size_t size, const char *alias)
{
    int length = snprintf(out, size, DEVICE_ARGS_NETDEV_PREFIX "%s", alias ? alias : "");
    return alias && length >= 0 && (size_t)length < size;
}

int device_args_interface_check_model(const struct domain_interface *interface,
                                      struct pv_error *error)
{
    if (interface->model && strcmp(interface->model, "virtio") != 0)
        return pv_error_set(error, -EINVAL,
                            "unsupported: interface %s: <model type='%s'> (only virtio)",
                            interface->mac ? interface->mac : "?", interface->model);
    return 0;
}

int device_args_interface_check(const struct domain_interface *interface, struct pv_error *error)
{
    const char *mac = interface->mac ? interface->mac : "?";
    if (device_args_interface_check_model(interface, error) < 0)
        return -EINVAL;
    if (!interface->mac)
        return pv_error_set(error, -EINVAL, "internal: interface has no MAC address");
    if (!interface->alias)
        return pv_error_set(error, -EINVAL, "internal: interface %s has no alias", mac);
    if (interface->queues > DOMAIN_INTERFACE_MAX_QUEUES)
        return pv_error_set(error, -EINVAL, "interface %s: <driver queues='%u'>: at most %d", mac,
                            interface->queues, DOMAIN_INTERFACE_MAX_QUEUES);
    return 0;
}

int device_args_interface_netdev(struct json_writer *writer,
                                 const struct domain_interface *interface, const char *netdev_id,
                                 const char *const *fd_names, unsigned fd_count)
{
    if (device_args_interface_check(interface, NULL) < 0 || fd_count == 0)
        return -EINVAL;
    json_writer_member_string(writer, "type", "tap");
    json_writer_member_string(writer, "id", netdev_id);
    if (fd_count == 1) {
        json_writer_member_string(writer, "fd", fd_names[0]);
    } else {
        char names[512] = "";
        size_t used = 0;
        for (unsigned i = 0; i < fd_count; i++) {
            int length =
                snprintf(names + used, sizeof(names) - used, "%s%s", i ? ":" : "", fd_names[i]);
            if (length < 0 || (size_t)length >= sizeof(names) - used)
                return -EINVAL;
            used += (size_t)length;
        }
        json_writer_member_string(writer, "fds", names);
    }
    json_writer_member_bool(writer, "vhost", false);
    return 0;
}

int device_args_interface_device(struct json_writer *writer,
                                 const struct domain_interface *interface, const char *id,
                                 const char *netdev_id, int slot, int function)
{
    if (device_args_interface_check(interface, NULL) < 0)
        return -EINVAL;
    json_writer_member_string(writer, "driver", "virtio-net-pci");
    json_writer_member_string(writer, "netdev", netdev_id);
    json_writer_member_string(writer, "id", id);
    json_writer_member_string(writer, "mac", interface->mac);
    write_pci_address(writer, slot, function);
    if (interface->queues > 1) {
        /* libvirt: one vector per queue direction, plus config and control. */
        json_writer_member_bool(writer, "mq", true);
        json_writer_member_int(writer, "vectors", 2 * (int64_t)interface->queues + 2);
    }
    return 0;
}

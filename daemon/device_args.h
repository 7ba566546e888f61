/* One description of each device kind's QEMU arguments, shared by cold plug (the command
 * line, vmm_argv.c) and hot plug (the QMP arguments of the hotplug sequences, hotplug.c).
 *
 * Each builder writes the members of one JSON object into `writer`, which must have that
 * object open: what `-blockdev '{...}'` / `-device '{...}'` and QMP blockdev-add /
 * device_add take, the same key/values on both paths.
 *
 * Disks (virtio bus), mapped like libvirt's qemu driver maps them:
 *   storage node  {"driver": "file"|"host_device", "filename", "node-name",
 *                  "aio" (<driver io=>), "auto-read-only": true, "discard": "unmap",
 *                  "cache": {"direct", "no-flush"} (<driver cache=>)}
 *   format node   {"node-name", "read-only" (<readonly/>), "cache": {...} (as above),
 *                  "driver" (<driver type=>, default "raw"), "file": storage node}
 *   device        {"driver": "virtio-blk-pci", "bus": "pci.0", "addr", "drive": format node,
 *                  "id": alias, "write-cache": "on"|"off" (<driver cache=>), "serial",
 *                  "werror" (<driver error_policy=>), "rerror" (<driver rerror_policy=>,
 *                  else error_policy unless that is 'enospace')}
 *   <driver cache=>   cache.direct  cache.no-flush  write-cache
 *     (unset)         -             -               -
 *     writeback       false         false           on
 *     none            true          false           on
 *     writethrough    false         false           off
 *     directsync      true          false           off
 *     unsafe          false         true            on
 * The disk's nodes are "<alias>" DEVICE_ARGS_DISK_STORAGE_SUFFIX and "<alias>"
 * DEVICE_ARGS_DISK_FORMAT_SUFFIX on both paths, so a cold-plugged disk is hot-unplugged by
 * the same sequence and restart reconciliation (domains.c) recognises both.
 *
 * Interfaces (libvirt's qemuBuildHostNetProps / qemuBuildNicDevProps), the tap opened by the
 * daemon (tap_device.h) and handed over as descriptors, never by name:
 *   netdev  {"type": "tap", "id": "host<alias>", "fd": NAME | "fds": "NAME:NAME..." (queues
 *            > 1), "vhost": false}; NAME is the descriptor number inherited on the command
 *            line, or the name a QMP getfd gave it when hot-plugged
 *   device  {"driver": "virtio-net-pci", "netdev", "id": alias, "mac", "bus": "pci.0",
 *            "addr", and for queues N > 1 "mq": true, "vectors": 2N + 2}
 * vhost is off: the VMM gets no /dev/vhost-net descriptor (the daemon would have to open it
 * too), and QEMU's own datapath works everywhere. <link state='down'/> is QMP set_link after
 * the device exists, as libvirt does (virtio-net-pci has no link property). */
#ifndef PLUGVIRT_DEVICE_ARGS_H
#define PLUGVIRT_DEVICE_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "domain.h"
#include "json_util.h"
#include "pv_error.h"

#define DEVICE_ARGS_DISK_STORAGE_SUFFIX "-storage"
#define DEVICE_ARGS_DISK_FORMAT_SUFFIX "-format"

/* 0, or -EINVAL naming the first <driver> attribute value of `disk` that the builders below
 * cannot express ("unsupported: disk 'vdb': <driver cache='bogus'>"). The XML schema admits
 * only expressible values; this guards definitions that did not come through it. */
int device_args_disk_check(const struct domain_disk *disk, struct pv_error *error);

/* "<alias><suffix>" into `out`; false when it does not fit. */
bool device_args_disk_node_name(char *out, size_t size, const char *alias, const char *suffix);

/* The members of the disk's protocol node (blockdev-add / -blockdev). 0, or -EINVAL for a
 * value device_args_disk_check refuses (then nothing is written). */
int device_args_disk_storage(struct json_writer *writer, const struct domain_disk *disk,
                             const char *storage_node);
/* The members of the disk's format node, whose "file" is `storage_node`. */
int device_args_disk_format(struct json_writer *writer, const struct domain_disk *disk,
                            const char *format_node, const char *storage_node);
/* The members of the disk's virtio-blk-pci device (device_add / -device) with id `id` on
 * `format_node`, at pci.0 slot `slot` (< 0: no address) function `function`. */
int device_args_disk_device(struct json_writer *writer, const struct domain_disk *disk,
                            const char *id, const char *format_node, int slot, int function);

/* The interface's netdev id: "host" + alias ("hostnet0" for "net0"), as libvirt names it. */
#define DEVICE_ARGS_NETDEV_PREFIX "host"
bool device_args_netdev_id(char *out, size_t size, const char *alias);

/* 0, or -EINVAL naming what the builders cannot express (a model other than virtio, no
 * MAC or alias, too many queues). */
int device_args_interface_check(const struct domain_interface *interface, struct pv_error *error);
/* Only the model: for requests, before alias and MAC are allocated. */
int device_args_interface_check_model(const struct domain_interface *interface,
                                      struct pv_error *error);
/* The members of the interface's tap netdev `netdev_id`; `fd_names` are the names (or
 * numbers) of its `fd_count` descriptors, one per queue. */
int device_args_interface_netdev(struct json_writer *writer,
                                 const struct domain_interface *interface, const char *netdev_id,
                                 const char *const *fd_names, unsigned fd_count);
/* The members of the interface's virtio-net-pci device `id` on `netdev_id` at pci.0 slot `slot`
 * (< 0: no address). */
int device_args_interface_device(struct json_writer *writer,
                                 const struct domain_interface *interface, const char *id,
                                 const char *netdev_id, int slot, int function);

#endif

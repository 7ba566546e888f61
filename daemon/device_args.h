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
 * the same sequence and restart reconciliation (domains.c) recognises both. */
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

#endif

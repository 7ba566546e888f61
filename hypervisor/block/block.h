/* The block layer: named nodes (drivers "file" and "raw"), legacy drives and
 * the attachment of devices to them, with QEMU's semantics and messages.
 *
 * Nodes form small trees: a "raw" node reads through its "file" child, which
 * is either an inline child created with it (file.driver=file,...) or an
 * existing node referenced by name (file=node-name). Every node has a
 * node-name; unnamed ones get QEMU-style "#block<N><NN>" names.
 *
 * A block_backend is what a device holds (QEMU's BlockBackend): legacy drives
 * (-drive id=drive0 / drive_add) are named backends created with their
 * nodes; attaching a device to a node name creates an anonymous backend.
 * drive_del removes the nodes from under a device: the backend stays with the
 * device and all later I/O fails with -ENOMEDIUM.
 *
 * Options come as a flattened key/value list (struct qemu_options): the
 * command line parses into it directly, QMP arguments are flattened with
 * block_options_from_json ({"file": {"filename": "x"}} → "file.filename=x").
 *
 * Threads: configuration (add/del/attach/queries) on the main thread; the
 * block_backend_* I/O calls on device I/O threads. A backend's lock keeps
 * drive_del from removing nodes under an in-flight request. */
#ifndef PLUGVIRT_BLOCK_H
#define PLUGVIRT_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "pv_error.h"
#include "qemu_options.h"

struct block_layer;
struct block_node;
struct block_backend;
struct json_writer;

#define BLOCK_SECTOR_SIZE 512

struct block_layer *block_layer_create(void);
/* Releases everything (backends still held by devices included). */
void block_layer_destroy(struct block_layer *layer);

/* blockdev-add / -blockdev: `options` holds driver, node-name, ... (dotted
 * keys for children). Unknown keys are errors. */
int block_blockdev_add(struct block_layer *layer, struct qemu_options *options,
                       struct pv_error *error);
/* blockdev-del: only monitor-owned nodes that nothing uses. */
int block_blockdev_del(struct block_layer *layer, const char *node_name, struct pv_error *error);

/* -drive / drive_add (if=none): file=,format=raw,id=,readonly=,cache=,aio=,
 * node-name=. Creates the nodes and a backend named `id` ("none<N>" when no
 * id is given). `*id_out` (may be NULL) receives the id, malloc'd. */
int block_drive_add(struct block_layer *layer, struct qemu_options *options, char **id_out,
                    struct pv_error *error);
/* drive_del: `id` names a drive (its nodes go; an attached device keeps an
 * empty backend, so later I/O fails) or a node (then like blockdev-del). */
int block_drive_del(struct block_layer *layer, const char *id, struct pv_error *error);

/* Whether a node or drive with this name exists. */
bool block_node_exists(struct block_layer *layer, const char *node_name);
bool block_drive_exists(struct block_layer *layer, const char *drive_id);

/* Device side. `name` is a drive id or a node name (drive ids win, as in
 * QEMU); `property` ("virtio-blk-pci.drive") and `qdev_path`
 * ("/machine/peripheral/vd1/virtio-backend") appear in errors and queries. */
struct block_backend *block_backend_attach(struct block_layer *layer, const char *name,
                                           const char *property, const char *qdev_path,
                                           struct pv_error *error);
/* The device is gone: anonymous backends disappear, legacy drives are deleted
 * with their device (QEMU's auto-delete), blockdev-add nodes stay. */
void block_backend_release(struct block_backend *backend);

bool block_backend_is_inserted(struct block_backend *backend);
bool block_backend_is_read_only(struct block_backend *backend);
/* QEMU's blk_set_enable_write_cache: false makes every write reach the disk before it
 * completes (write-through). Set before the device runs. */
void block_backend_set_writeback(struct block_backend *backend, bool writeback);
/* Size in bytes (0 when nothing is inserted). */
uint64_t block_backend_length(struct block_backend *backend);

#endif

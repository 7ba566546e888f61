/* virtio-blk (virtio 1.x, 5.2) on a block_backend.
 *
 * Requests: IN/OUT (preadv/pwritev straight into guest buffers), FLUSH,
 * GET_ID (the serial property, 20 bytes), DISCARD and WRITE_ZEROES (one
 * segment each, limits in config space). A read-only backend offers
 * VIRTIO_BLK_F_RO and fails writes with IOERR. After drive_del every request
 * that would touch the backend fails with IOERR.
 *
 * virtio_blk_create builds the PCI device (virtio-blk-pci) for a VM;
 * virtio_blk_new gives the transport-independent model (used by tests). */
#ifndef PLUGVIRT_VIRTIO_BLK_H
#define PLUGVIRT_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "device_model.h"
#include "pv_error.h"
#include "qemu_options.h"
#include "virtio/virtio.h"

struct vm;
struct pci_device;
struct block_layer;
struct block_backend;

#define VIRTIO_BLK_SERIAL_BYTES 20

struct virtio_blk_options {
    struct block_layer *block_layer; /* where `drive` is looked up */
    const char *id;                  /* device id; may be NULL */
    const char *drive;               /* drive id or node name */
    const char *serial;              /* may be NULL */
    const char *qdev_path;           /* NULL: "/machine/peripheral/<id>/virtio-backend" */
    unsigned num_queues;             /* 0: 1 */
    unsigned queue_size;             /* 0: 256 */
    bool discard;                    /* offer DISCARD (QEMU's default: on) */
    bool write_zeroes;               /* offer WRITE_ZEROES (default on) */
    int write_cache;                 /* write-cache: 0 auto (the drive's), 1 on, 2 off */
};

/* Defaults, then the virtio-blk-pci properties found in `options` (drive,
 * serial, num-queues, queue-size, discard, write-zeroes). Other keys (id,
 * bus, addr, ...) are left for the caller, which then checks for unused
 * ones. Strings point into `options`. */
int virtio_blk_options_from_qemu(struct qemu_options *options,
                                 struct virtio_blk_options *blk_options, struct pv_error *error);
void virtio_blk_options_init(struct virtio_blk_options *blk_options);

/* virtio-blk-pci for `vm` (not plugged yet: the caller calls pci_bus_plug).
 * Errors are QEMU's ("Property 'virtio-blk-pci.drive' can't find value 'x'"). */
struct pci_device *virtio_blk_create(struct vm *vm, const struct virtio_blk_options *options,
                                     struct pv_error *error);

/* The model alone: attaches to the drive and sets up the virtio device. Free
 * with virtio_device_destroy(virtio_blk_device(blk)). */
struct virtio_blk;
struct virtio_blk *virtio_blk_new(const struct virtio_blk_options *options, struct pv_error *error);
struct virtio_device *virtio_blk_device(struct virtio_blk *blk);
struct block_backend *virtio_blk_backend(struct virtio_blk *blk);

/* The -device / device_add model "virtio-blk-pci" (device_registry.c lists it). */
extern const struct device_model virtio_blk_pci_model;

#endif

/* Devices plugged by the user (-device, device_add) and their removal
 * (device_del, then the guest's eject), with QEMU 8.2's names, paths,
 * messages and events.
 *
 * A device model (device_model.h) lives in its own file, which defines one
 * `const struct device_model`; the registry's table lists them. Adding
 * virtio-net-pci is one new file (virtio/virtio_net.c) and one row in
 * device_models[] in device_registry.c.
 *
 * Each plugged device has a QOM path: "/machine/peripheral/<id>", or for
 * devices without id "/machine/peripheral-anon/device[N]" (the lowest free N,
 * as QOM's "device[*]" does). When the guest ejects a device the registry
 * emits DEVICE_DELETED for the virtio backend child first
 * ({"path": ".../virtio-backend"}), then for the device itself
 * ({"device": id, "path": ...}), as QEMU does.
 *
 * Everything runs on the main thread. */
#ifndef PLUGVIRT_DEVICE_REGISTRY_H
#define PLUGVIRT_DEVICE_REGISTRY_H

#include <stdbool.h>

#include "device_model.h"
#include "pv_error.h"
#include "qemu_options.h"

struct vm;
struct vmm_config;
struct pci_device;
struct json_writer;
struct device_registry;

/* Registers itself as the PCI bus's unplug callback. */
struct device_registry *device_registry_create(struct vm *vm, struct pv_error *error);
void device_registry_destroy(struct device_registry *registry);

/* -blockdev, -drive and -device from the command line, in that order; errors
 * are prefixed with the option ("-device virtio-blk-pci,drive=x: ..."). */
int device_registry_apply_config(struct device_registry *registry, const struct vmm_config *config,
                                 struct pv_error *error);

/* device_add / -device: `options` holds driver=, id=, bus=, addr= and the
 * model's properties. Errors are QEMU's texts. */
int device_registry_add(struct device_registry *registry, struct qemu_options *options,
                        struct pv_error *error);
/* device_del: `id` is a device id or a QOM path. -ENODEV with "Device 'x' not
 * found" when there is no such device (QMP class DeviceNotFound). */
int device_registry_request_delete(struct device_registry *registry, const char *id,
                                   struct pv_error *error);

/* query-pci: the JSON array of PciInfo for bus 0. */
void device_registry_query_pci(struct device_registry *registry, struct json_writer *writer);
/* HMP "info pci" text, malloc'd (NULL when out of memory). */
char *device_registry_info_pci_text(struct device_registry *registry);

#endif

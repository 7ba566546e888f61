/* Devices plugged by the user (-device, device_add) and their removal
 * (device_del, then the guest's eject), with QEMU 8.2's names, paths,
 * messages and events.
 *
 * A device model is one row of a table: its QEMU driver name and a create
 * function that reads its properties from a qemu_options list and returns an
 * unplugged pci_device. Adding virtio-net-pci is one more row.
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

#include "pv_error.h"
#include "qemu_options.h"

struct vm;
struct vmm_config;
struct pci_device;
struct json_writer;
struct device_registry;

#define DEVICE_QOM_PATH_MAX 160

/* One device model. `create` reads the model's properties from `options`
 * (id, bus, addr and driver are already consumed; leftovers are checked with
 * device_options_check_unused before anything is attached) and returns a
 * device that is not plugged yet. */
struct device_model {
    const char *driver;
    bool has_virtio_backend; /* a ".../virtio-backend" child gets its own DEVICE_DELETED */
    struct pci_device *(*create)(struct vm *vm, struct qemu_options *options, const char *id,
                                 const char *qom_path, struct pv_error *error);
};

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

/* "Property 'driver.key' not found" for the first option nobody consumed. */
int device_options_check_unused(const struct qemu_options *options, const char *driver,
                                struct pv_error *error);

/* query-pci: the JSON array of PciInfo for bus 0. */
void device_registry_query_pci(struct device_registry *registry, struct json_writer *writer);
/* HMP "info pci" text, malloc'd (NULL when out of memory). */
char *device_registry_info_pci_text(struct device_registry *registry);

#endif

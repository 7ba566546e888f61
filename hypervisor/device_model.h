/* What a -device / device_add model provides: its QEMU driver name and a create
 * function. Each model defines one `const struct device_model` in its own file
 * (virtio_blk_pci_model in virtio/virtio_blk.c); device_registry.c lists them.
 * Below the registry, so models do not depend on it. */
#ifndef PLUGVIRT_DEVICE_MODEL_H
#define PLUGVIRT_DEVICE_MODEL_H

#include <stdbool.h>

#include "pv_error.h"
#include "qemu_options.h"

struct vm;
struct pci_device;

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

/* "Property 'driver.key' not found" for the first option nobody consumed. */
int device_options_check_unused(const struct qemu_options *options, const char *driver,
                                struct pv_error *error);

#endif

/* Port I/O and MMIO dispatch for exits from KVM_RUN.
 *
 * Devices register address ranges with a small ops table. Lookup happens on
 * vCPU threads; registration on the main thread. A handler runs on the vCPU
 * thread that trapped, without any io_bus lock held, so a device protects its
 * own state with its own lock. Unregistering a range while vCPUs run is only
 * safe with the vCPUs quiesced (vm_quiesce), which guarantees no handler of
 * that device is still executing. */
#ifndef PLUGVIRT_IO_BUS_H
#define PLUGVIRT_IO_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "pv_error.h"

enum io_space { IO_SPACE_PIO, IO_SPACE_MMIO };

struct io_region_ops {
    /* `offset` is relative to the registered base; `size` is 1, 2, 4 or 8.
     * Read handlers fill `data` (little-endian, `size` bytes). A NULL read
     * handler reads as all ones, a NULL write handler ignores the write. */
    void (*read)(void *opaque, uint64_t offset, void *data, unsigned size);
    void (*write)(void *opaque, uint64_t offset, const void *data, unsigned size);
};

struct io_region {
    enum io_space space;
    uint64_t base;
    uint64_t length;
    const struct io_region_ops *ops;
    void *opaque;
    char name[32];
};

struct io_bus {
    pthread_rwlock_t lock;
    struct io_region *regions; /* sorted by (space, base), non-overlapping */
    size_t count;
    size_t capacity;
};

int io_bus_init(struct io_bus *bus, struct pv_error *error);
void io_bus_destroy(struct io_bus *bus);

/* Fails with -EEXIST when the range overlaps a registered one. */
int io_bus_register(struct io_bus *bus, enum io_space space, uint64_t base, uint64_t length,
                    const struct io_region_ops *ops, void *opaque, const char *name,
                    struct pv_error *error);
/* Removes the range registered at exactly (space, base). -ENOENT if none. */
int io_bus_unregister(struct io_bus *bus, enum io_space space, uint64_t base);

/* Returns true when a region handled the access; unclaimed reads return all
 * ones (as on real hardware) and unclaimed writes are dropped. */
bool io_bus_access(struct io_bus *bus, enum io_space space, uint64_t address, void *data,
                   unsigned size, bool is_write);

#endif

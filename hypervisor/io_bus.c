#include "io_bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int io_bus_init(struct io_bus *bus, struct pv_error *error)
{
    memset(bus, 0, sizeof(*bus));
    int rc = pthread_rwlock_init(&bus->lock, NULL);
    if (rc != 0)
        return pv_error_set_errno(error, -rc, "cannot initialise the I/O bus lock");
    return 0;
}

void io_bus_destroy(struct io_bus *bus)
{
    free(bus->regions);
    bus->regions = NULL;
    bus->count = bus->capacity = 0;
    pthread_rwlock_destroy(&bus->lock);
}

static int region_compare(enum io_space space_a, uint64_t base_a, enum io_space space_b,
                          uint64_t base_b)
{
    if (space_a != space_b)
        return space_a < space_b ? -1 : 1;
    if (base_a != base_b)
        return base_a < base_b ? -1 : 1;
    return 0;
}

/* Index of the first region not ordered before (space, address). */
static size_t lower_bound(const struct io_bus *bus, enum io_space space, uint64_t address)
{
    size_t low = 0, high = bus->count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        const struct io_region *region = &bus->regions[middle];
        if (region_compare(region->space, region->base, space, address) < 0)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

static bool ranges_overlap(uint64_t base_a, uint64_t length_a, uint64_t base_b, uint64_t length_b)
{
    return base_a < base_b + length_b && base_b < base_a + length_a;
}

int io_bus_register(struct io_bus *bus, enum io_space space, uint64_t base, uint64_t length,
                    const struct io_region_ops *ops, void *opaque, const char *name,
                    struct pv_error *error)
{
    if (length == 0 || base + length < base)
        return pv_error_set(error, -EINVAL, "invalid I/O range for %s", name);
    pthread_rwlock_wrlock(&bus->lock);
    size_t index = lower_bound(bus, space, base);
    /* Only the neighbours can overlap in a sorted non-overlapping list. */
    for (size_t i = index > 0 ? index - 1 : 0; i < bus->count && i <= index; i++) {
        const struct io_region *other = &bus->regions[i];
        if (other->space == space && ranges_overlap(other->base, other->length, base, length)) {
            pthread_rwlock_unlock(&bus->lock);
            return pv_error_set(error, -EEXIST, "%s range 0x%llx+0x%llx of %s overlaps %s",
                                space == IO_SPACE_PIO ? "port" : "MMIO", (unsigned long long)base,
                                (unsigned long long)length, name, other->name);
        }
    }
    if (bus->count == bus->capacity) {
        size_t capacity = bus->capacity ? bus->capacity * 2 : 16;
        struct io_region *regions = realloc(bus->regions, capacity * sizeof(*regions));
        if (!regions) {
            pthread_rwlock_unlock(&bus->lock);
            return pv_error_set(error, -ENOMEM, "out of memory registering %s", name);
        }
        bus->regions = regions;
        bus->capacity = capacity;
    }
    memmove(&bus->regions[index + 1], &bus->regions[index],
            (bus->count - index) * sizeof(*bus->regions));
    struct io_region *region = &bus->regions[index];
    memset(region, 0, sizeof(*region));
    region->space = space;
    region->base = base;
    region->length = length;
    region->ops = ops;
    region->opaque = opaque;
    strncpy(region->name, name ? name : "?", sizeof(region->name) - 1);
    bus->count++;
    pthread_rwlock_unlock(&bus->lock);
    return 0;
}

int io_bus_unregister(struct io_bus *bus, enum io_space space, uint64_t base)
{
    pthread_rwlock_wrlock(&bus->lock);
    size_t index = lower_bound(bus, space, base);
    if (index >= bus->count || bus->regions[index].space != space ||
        bus->regions[index].base != base) {
        pthread_rwlock_unlock(&bus->lock);
        return -ENOENT;
    }
    memmove(&bus->regions[index], &bus->regions[index + 1],
            (bus->count - index - 1) * sizeof(*bus->regions));
    bus->count--;
    pthread_rwlock_unlock(&bus->lock);
    return 0;
}

bool io_bus_access(struct io_bus *bus, enum io_space space, uint64_t address, void *data,
                   unsigned size, bool is_write)
{
    const struct io_region_ops *ops = NULL;
    void *opaque = NULL;
    uint64_t offset = 0;

    pthread_rwlock_rdlock(&bus->lock);
    size_t index = lower_bound(bus, space, address + 1);
    if (index > 0) {
        const struct io_region *region = &bus->regions[index - 1];
        if (region->space == space && address >= region->base &&
            address - region->base < region->length) {
            ops = region->ops;
            opaque = region->opaque;
            offset = address - region->base;
        }
    }
    pthread_rwlock_unlock(&bus->lock);

    /* The handler runs unlocked; device lifetime is guaranteed by vm_quiesce. */
    if (!ops) {
        if (!is_write)
            memset(data, 0xff, size);
        return false;
    }
    if (is_write) {
        if (ops->write)
            ops->write(opaque, offset, data, size);
    } else if (ops->read) {
        ops->read(opaque, offset, data, size);
    } else {
        memset(data, 0xff, size);
    }
    return true;
}

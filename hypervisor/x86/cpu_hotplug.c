/* QEMU's modern ACPI CPU hotplug registers, read side; see cpu_hotplug.h. */
#include "x86/cpu_hotplug.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pv_log.h"

struct cpu_hotplug {
    struct io_bus *io_bus; /* NULL: not registered */
    uint16_t base;
    unsigned present;  /* CPUs 0..present-1 are enabled */
    unsigned possible; /* valid selectors: 0..possible-1 */
    pthread_mutex_t lock;
    uint32_t selector; /* QEMU starts with a valid one and keeps it across reset */
    uint8_t command;
    uint32_t ost_event, ost_status; /* what _OST reported; kept, not acted on */
    bool eject_refusal_logged;
};

/* The 12 register bytes as a read sees them for the current selector and
 * command. Caller holds the lock. */
static void read_image(const struct cpu_hotplug *hotplug, uint8_t image[CPU_HOTPLUG_LENGTH])
{
    memset(image, 0, CPU_HOTPLUG_LENGTH);
    if (hotplug->selector >= hotplug->possible)
        return; /* the spec: an invalid selector reads 0 everywhere */
    if (hotplug->selector < hotplug->present)
        image[CPU_HOTPLUG_FLAGS] = CPU_HOTPLUG_FLAG_ENABLED;
    /* Offset 0 (command data 2) is the upper half of the CPU ID: 0 for 8-bit APIC IDs. */
    uint32_t data = 0;
    if (hotplug->command == CPU_HOTPLUG_CMD_NEXT_EVENT)
        data = hotplug->selector; /* no CPU has an event, so the selector stays */
    else if (hotplug->command == CPU_HOTPLUG_CMD_CPU_ID)
        data = hotplug->selector; /* APIC ID = CPU index on this machine */
    for (unsigned i = 0; i < 4; i++)
        image[CPU_HOTPLUG_DATA + i] = (uint8_t)(data >> (8 * i));
}

uint32_t cpu_hotplug_read(struct cpu_hotplug *hotplug, unsigned offset, unsigned size)
{
    uint8_t image[CPU_HOTPLUG_LENGTH];
    pthread_mutex_lock(&hotplug->lock);
    read_image(hotplug, image);
    pthread_mutex_unlock(&hotplug->lock);
    uint32_t value = 0;
    for (unsigned i = 0; i < size && i < 4; i++)
        if (offset + i < CPU_HOTPLUG_LENGTH)
            value |= (uint32_t)image[offset + i] << (8 * i);
    return value;
}

void cpu_hotplug_write(struct cpu_hotplug *hotplug, unsigned offset, uint32_t value, unsigned size)
{
    (void)size; /* QEMU takes each register's value whatever the access width */
    bool log_refusal = false;
    unsigned selector;
    pthread_mutex_lock(&hotplug->lock);
    selector = hotplug->selector;
    if (offset == CPU_HOTPLUG_SELECTOR) {
        hotplug->selector = value;
    } else if (hotplug->selector >= hotplug->possible) {
        /* Ignored until a valid CPU is selected. */
    } else if (offset == CPU_HOTPLUG_FLAGS) {
        /* Insert/remove acknowledgements have nothing to clear: there are no events.
         * Eject (directly or handed to firmware) would remove a vCPU: refused. */
        if ((value & (CPU_HOTPLUG_FLAG_EJECT | CPU_HOTPLUG_FLAG_FIRMWARE_EJECT)) &&
            !hotplug->eject_refusal_logged) {
            hotplug->eject_refusal_logged = true;
            log_refusal = true;
        }
    } else if (offset == CPU_HOTPLUG_COMMAND) {
        hotplug->command = (uint8_t)value;
    } else if (offset == CPU_HOTPLUG_DATA) {
        if (hotplug->command == CPU_HOTPLUG_CMD_OST_EVENT)
            hotplug->ost_event = value;
        else if (hotplug->command == CPU_HOTPLUG_CMD_OST_STATUS)
            hotplug->ost_status = value;
    }
    pthread_mutex_unlock(&hotplug->lock);
    if (log_refusal)
        pv_log_warning("CPU hotplug: the guest asked to eject CPU %u; vCPU unplug is not "
                       "supported, the CPU stays",
                       selector);
}

static void port_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
    uint32_t value = cpu_hotplug_read(opaque, (unsigned)offset, size);
    memset(data, 0, size);
    memcpy(data, &value, size < sizeof(value) ? size : sizeof(value));
}

static void port_write(void *opaque, uint64_t offset, const void *data, unsigned size)
{
    uint32_t value = 0;
    memcpy(&value, data, size < sizeof(value) ? size : sizeof(value));
    cpu_hotplug_write(opaque, (unsigned)offset, value, size);
}

static const struct io_region_ops port_ops = {
    .read = port_read,
    .write = port_write,
};

struct cpu_hotplug *cpu_hotplug_create(struct io_bus *io_bus, uint16_t base, unsigned present,
                                       unsigned possible, struct pv_error *error)
{
    if (present == 0 || present > possible) {
        pv_error_set(error, -EINVAL, "CPU hotplug: need 1 <= present (%u) <= possible (%u)",
                     present, possible);
        return NULL;
    }
    struct cpu_hotplug *hotplug = calloc(1, sizeof(*hotplug));
    if (!hotplug) {
        pv_error_set(error, -ENOMEM, "out of memory creating the CPU hotplug controller");
        return NULL;
    }
    hotplug->base = base;
    hotplug->present = present;
    hotplug->possible = possible;
    pthread_mutex_init(&hotplug->lock, NULL);
    if (io_bus && io_bus_register(io_bus, IO_SPACE_PIO, base, CPU_HOTPLUG_LENGTH, &port_ops,
                                  hotplug, "acpi-cpu-hotplug", error) < 0) {
        pthread_mutex_destroy(&hotplug->lock);
        free(hotplug);
        return NULL;
    }
    hotplug->io_bus = io_bus;
    return hotplug;
}

void cpu_hotplug_destroy(struct cpu_hotplug *hotplug)
{
    if (!hotplug)
        return;
    if (hotplug->io_bus)
        io_bus_unregister(hotplug->io_bus, IO_SPACE_PIO, hotplug->base);
    pthread_mutex_destroy(&hotplug->lock);
    free(hotplug);
}

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "io_bus.h"

struct recorder {
    uint64_t last_offset;
    uint32_t last_value;
    unsigned writes;
};

static void recorder_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
    (void)opaque;
    uint32_t value = 0x1000 + (uint32_t)offset;
    memcpy(data, &value, size);
}

static void recorder_write(void *opaque, uint64_t offset, const void *data, unsigned size)
{
    struct recorder *recorder = opaque;
    recorder->last_offset = offset;
    recorder->last_value = 0;
    memcpy(&recorder->last_value, data, size);
    recorder->writes++;
}

static const struct io_region_ops recorder_ops = {recorder_read, recorder_write};

Test(io_bus, dispatches_by_space_and_offset)
{
    struct io_bus bus;
    struct recorder pio = {0}, mmio = {0};
    cr_assert_eq(io_bus_init(&bus, NULL), 0);
    cr_assert_eq(io_bus_register(&bus, IO_SPACE_PIO, 0x3f8, 8, &recorder_ops, &pio, "uart", NULL),
                 0);
    cr_assert_eq(io_bus_register(&bus, IO_SPACE_MMIO, 0x3f8, 8, &recorder_ops, &mmio, "m", NULL),
                 0);

    uint8_t byte = 0x41;
    cr_assert(io_bus_access(&bus, IO_SPACE_PIO, 0x3fb, &byte, 1, true));
    cr_assert_eq(pio.last_offset, 3);
    cr_assert_eq(pio.last_value, 0x41);
    cr_assert_eq(mmio.writes, 0);

    uint32_t value = 0;
    cr_assert(io_bus_access(&bus, IO_SPACE_MMIO, 0x3ff, &value, 4, false));
    cr_assert_eq(value, 0x1007);
    io_bus_destroy(&bus);
}

Test(io_bus, unclaimed_reads_are_all_ones)
{
    struct io_bus bus;
    cr_assert_eq(io_bus_init(&bus, NULL), 0);
    uint32_t value = 0;
    cr_assert_not(io_bus_access(&bus, IO_SPACE_PIO, 0x80, &value, 4, false));
    cr_assert_eq(value, 0xffffffffu);
    io_bus_destroy(&bus);
}

Test(io_bus, overlaps_are_refused_with_a_message)
{
    struct io_bus bus;
    struct pv_error error = {0};
    cr_assert_eq(io_bus_init(&bus, NULL), 0);
    cr_assert_eq(io_bus_register(&bus, IO_SPACE_PIO, 0x600, 4, &recorder_ops, NULL, "pm1a", NULL),
                 0);
    cr_assert_eq(io_bus_register(&bus, IO_SPACE_PIO, 0x5fe, 4, &recorder_ops, NULL, "x", &error),
                 -EEXIST);
    cr_assert(strstr(error.message, "pm1a"), "%s", error.message);
    cr_assert_eq(io_bus_register(&bus, IO_SPACE_PIO, 0x603, 1, &recorder_ops, NULL, "y", NULL),
                 -EEXIST);
    /* Adjacent ranges are fine. */
    cr_assert_eq(io_bus_register(&bus, IO_SPACE_PIO, 0x604, 2, &recorder_ops, NULL, "cnt", NULL),
                 0);
    cr_assert_eq(io_bus_register(&bus, IO_SPACE_PIO, 0x5fc, 4, &recorder_ops, NULL, "z", NULL), 0);
    io_bus_destroy(&bus);
}

Test(io_bus, unregister_removes_only_the_exact_region)
{
    struct io_bus bus;
    struct recorder recorder = {0};
    cr_assert_eq(io_bus_init(&bus, NULL), 0);
    for (uint64_t base = 0x1000; base < 0x1000 + 64 * 0x10; base += 0x10)
        cr_assert_eq(
            io_bus_register(&bus, IO_SPACE_MMIO, base, 0x10, &recorder_ops, &recorder, "dev", NULL),
            0);
    cr_assert_eq(io_bus_unregister(&bus, IO_SPACE_MMIO, 0x1008), -ENOENT);
    cr_assert_eq(io_bus_unregister(&bus, IO_SPACE_MMIO, 0x1100), 0);
    uint8_t byte = 1;
    cr_assert_not(io_bus_access(&bus, IO_SPACE_MMIO, 0x1105, &byte, 1, true));
    cr_assert(io_bus_access(&bus, IO_SPACE_MMIO, 0x1115, &byte, 1, true));
    cr_assert_eq(recorder.last_offset, 5);
    io_bus_destroy(&bus);
}

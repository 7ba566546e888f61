/*
 * mem-test: pattern write + verify over free RAM, run at CPL3 (native speed
 * on the PVM host). Free RAM = RAM above the guest image, below 4 GiB (what
 * our page tables map), outside the MiB-rounded span of the ACPI tables.
 */
#include "probe.h"

#define FOUR_GIB (1ull << 32)
#define MIB (1ull << 20)

static void consider(uint64_t begin, uint64_t end, uint64_t *start, uint64_t *size)
{
    begin = (begin + 4095) & ~4095ull;
    end &= ~4095ull;
    if (end > begin && end - begin > *size) {
        *start = begin;
        *size = end - begin;
    }
}

void memtest_free_range(uint64_t *start, uint64_t *size)
{
    uint64_t floor = ((uint64_t)(uintptr_t)probe_image_end + MIB - 1) & ~(MIB - 1);
    uint64_t acpi_begin = probe_acpi.lowest_table_address & ~(MIB - 1);
    uint64_t acpi_end = (probe_acpi.table_end_address + MIB - 1) & ~(MIB - 1);
    *start = *size = 0;
    for (unsigned i = 0; i < probe_boot.range_count; i++) {
        const struct probe_memory_range *range = &probe_boot.ranges[i];
        if (range->type != 1)
            continue;
        uint64_t begin = range->address, end = range->address + range->size;
        if (begin < floor)
            begin = floor;
        if (end > FOUR_GIB)
            end = FOUR_GIB;
        if (begin >= end)
            continue;
        if (acpi_end <= begin || acpi_begin >= end) {
            consider(begin, end, start, size);
        } else {
            consider(begin, acpi_begin, start, size);
            consider(acpi_end, end, start, size);
        }
    }
}

static int check_pass(uint64_t start, uint64_t size, uint64_t salt, uint64_t *bad_address)
{
    volatile uint64_t *words = (volatile uint64_t *)(uintptr_t)start;
    uint64_t count = size / 8;
    for (uint64_t i = 0; i < count; i++)
        words[i] = (start + i * 8) ^ salt;
    for (uint64_t i = 0; i < count; i++) {
        if (words[i] != ((start + i * 8) ^ salt)) {
            *bad_address = start + i * 8;
            return -1;
        }
    }
    return 0;
}

int memtest_run(uint64_t start, uint64_t size, uint64_t *bad_address)
{
    /* Address-derived values catch aliasing; the inverted pass flips every bit. */
    if (check_pass(start, size, 0x5a5aa5a5c3c33c3cull, bad_address))
        return -1;
    return check_pass(start, size, ~0x5a5aa5a5c3c33c3cull, bad_address);
}

/*
 * Reads what the loader handed over: the Linux zero page (plugvirt-vmm) or
 * the PVH start_info (QEMU). The command line is copied, since mem-test may
 * later overwrite the loader's memory.
 */
#include "probe.h"

/* struct boot_params offsets (Documentation/arch/x86/zero-page.rst). */
#define BOOT_PARAMS_ACPI_RSDP 0x070
#define BOOT_PARAMS_EXT_CMD_LINE_PTR 0x0c8
#define BOOT_PARAMS_E820_ENTRIES 0x1e8
#define BOOT_PARAMS_CMD_LINE_PTR 0x228
#define BOOT_PARAMS_E820_TABLE 0x2d0
#define BOOT_PARAMS_E820_MAX 128
#define E820_ENTRY_SIZE 20

/* struct hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h). */
#define HVM_START_MAGIC 0x336ec578
#define HVM_MAGIC 0
#define HVM_VERSION 4
#define HVM_CMDLINE 24
#define HVM_RSDP 32
#define HVM_MEMMAP 40
#define HVM_MEMMAP_ENTRIES 48
#define HVM_MEMMAP_ENTRY_SIZE 24

struct probe_boot_info probe_boot;

static void copy_cmdline(uint64_t address)
{
    if (!address || address >= (1ull << 32))
        return;
    const char *source = (const char *)(uintptr_t)address;
    size_t i = 0;
    for (; i < PROBE_CMDLINE_SIZE - 1 && source[i]; i++)
        probe_boot.cmdline[i] = source[i];
    probe_boot.cmdline[i] = '\0';
}

static void add_range(uint64_t address, uint64_t size, uint32_t type)
{
    if (probe_boot.range_count >= PROBE_MAX_MEMORY_RANGES)
        return;
    struct probe_memory_range *range = &probe_boot.ranges[probe_boot.range_count++];
    range->address = address;
    range->size = size;
    range->type = type;
    if (type == 1)
        probe_boot.ram_bytes += size;
}

static void parse_linux(uint64_t boot_params)
{
    uint64_t cmdline = phys_read32(boot_params + BOOT_PARAMS_CMD_LINE_PTR) |
                       (uint64_t)phys_read32(boot_params + BOOT_PARAMS_EXT_CMD_LINE_PTR) << 32;
    copy_cmdline(cmdline);
    probe_boot.rsdp_address = phys_read64(boot_params + BOOT_PARAMS_ACPI_RSDP);
    unsigned entries = phys_read8(boot_params + BOOT_PARAMS_E820_ENTRIES);
    if (entries > BOOT_PARAMS_E820_MAX)
        entries = BOOT_PARAMS_E820_MAX;
    for (unsigned i = 0; i < entries; i++) {
        uint64_t entry = boot_params + BOOT_PARAMS_E820_TABLE + i * E820_ENTRY_SIZE;
        add_range(phys_read64(entry), phys_read64(entry + 8), phys_read32(entry + 16));
    }
}

static void parse_pvh(uint64_t start_info)
{
    if (phys_read32(start_info + HVM_MAGIC) != HVM_START_MAGIC)
        return;
    copy_cmdline(phys_read64(start_info + HVM_CMDLINE));
    probe_boot.rsdp_address = phys_read64(start_info + HVM_RSDP);
    if (phys_read32(start_info + HVM_VERSION) < 1)
        return;
    uint64_t memmap = phys_read64(start_info + HVM_MEMMAP);
    unsigned entries = phys_read32(start_info + HVM_MEMMAP_ENTRIES);
    for (unsigned i = 0; memmap && i < entries; i++) {
        uint64_t entry = memmap + i * HVM_MEMMAP_ENTRY_SIZE;
        add_range(phys_read64(entry), phys_read64(entry + 8), phys_read32(entry + 16));
    }
}

void boot_info_parse(int boot_kind, uint64_t data_address)
{
    probe_boot.boot_kind = boot_kind;
    if (!data_address)
        return;
    if (boot_kind == PROBE_BOOT_LINUX)
        parse_linux(data_address);
    else if (boot_kind == PROBE_BOOT_PVH)
        parse_pvh(data_address);
}

/* The Linux zero page (struct boot_params) and where the initrd goes. */
#include "boot/boot_params.h"

#include <errno.h>
#include <string.h>

#include "boot/boot_e820.h"
#include "vm.h"

#define PAGE_SIZE 4096ULL
#define E820_ENTRY_SIZE 20
#define LOADER_TYPE_UNDEFINED 0xff
#define ELF_PROTOCOL_VERSION 0x020f    /* every field we fill exists in 2.15 */
#define ELF_KERNEL_ALIGNMENT 0x1000000 /* what Firecracker gives vmlinux */
#define DEFAULT_INITRD_ADDRESS_MAX 0x37ffffffULL

static void put8(uint8_t *page, unsigned offset, uint8_t value)
{
    page[offset] = value;
}

static void put16(uint8_t *page, unsigned offset, uint16_t value)
{
    memcpy(page + offset, &value, sizeof(value));
}

static void put32(uint8_t *page, unsigned offset, uint32_t value)
{
    memcpy(page + offset, &value, sizeof(value));
}

static void put64(uint8_t *page, unsigned offset, uint64_t value)
{
    memcpy(page + offset, &value, sizeof(value));
}

int boot_place_initrd(const struct boot_memory *memory, const struct boot_kernel *kernel,
                      uint64_t initrd_size, const char *name, uint64_t *address,
                      struct pv_error *error)
{
    uint64_t address_max =
        kernel->initrd_address_max ? kernel->initrd_address_max : DEFAULT_INITRD_ADDRESS_MAX;
    uint64_t limit = memory->lowmem_size;
    if (address_max < UINT64_MAX && address_max + 1 < limit)
        limit = address_max + 1;
    /* Above the kernel (and its decompression area), or above 1 MiB if it is elsewhere. */
    uint64_t bottom = kernel->load_end < limit ? kernel->load_end : BOOT_KERNEL_LOAD_ADDRESS;
    bottom = (bottom + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    uint64_t top = limit & ~(PAGE_SIZE - 1);
    uint64_t room = top > bottom ? top - bottom : 0;
    if (initrd_size > room)
        return pv_error_set(error, -ENOMEM,
                            "initrd %s is %llu KiB, but only %llu KiB of guest RAM are free "
                            "between the kernel's end (0x%llx) and 0x%llx, the highest address "
                            "this kernel accepts for an initrd; give the VM more memory (-m) or "
                            "use a smaller initrd",
                            name, (unsigned long long)((initrd_size + 1023) >> 10),
                            (unsigned long long)(room >> 10), (unsigned long long)bottom,
                            (unsigned long long)top);
    *address = (top - initrd_size) & ~(PAGE_SIZE - 1);
    return 0;
}

static void build_elf_header(uint8_t *zero_page, const struct boot_kernel *kernel)
{
    put16(zero_page, BOOT_PARAMS_BOOT_FLAG, BOOT_FLAG_MAGIC);
    put32(zero_page, BOOT_PARAMS_HEADER, BOOT_HEADER_MAGIC);
    put16(zero_page, BOOT_PARAMS_VERSION, ELF_PROTOCOL_VERSION);
    put8(zero_page, BOOT_PARAMS_LOADFLAGS, BOOT_LOADFLAG_LOADED_HIGH);
    put32(zero_page, BOOT_PARAMS_CODE32_START, (uint32_t)kernel->load_start);
    put32(zero_page, BOOT_PARAMS_INITRD_ADDR_MAX, (uint32_t)kernel->initrd_address_max);
    put32(zero_page, BOOT_PARAMS_KERNEL_ALIGNMENT, ELF_KERNEL_ALIGNMENT);
    put8(zero_page, BOOT_PARAMS_XLOADFLAGS, BOOT_XLF_KERNEL_64);
}

unsigned boot_params_build(uint8_t *zero_page, const struct boot_params_config *config)
{
    const struct boot_kernel *kernel = config->kernel;
    memset(zero_page, 0, BOOT_PARAMS_SIZE);

    if (kernel->kind == BOOT_KERNEL_BZIMAGE) {
        /* The kernel reads its own header fields (kernel_alignment, init_size,
         * ...) back from the zero page, so keep them as the image has them. */
        memcpy(zero_page + BOOT_SETUP_HEADER_OFFSET, kernel->setup_header,
               kernel->setup_header_length);
    } else {
        build_elf_header(zero_page, kernel);
    }
    put8(zero_page, BOOT_PARAMS_TYPE_OF_LOADER, LOADER_TYPE_UNDEFINED);
    /* We run no real-mode setup code, so CAN_USE_HEAP/heap_end_ptr stay as they are. */

    put32(zero_page, BOOT_PARAMS_CMD_LINE_PTR, (uint32_t)config->cmdline_address);
    put32(zero_page, BOOT_PARAMS_EXT_CMD_LINE_PTR, (uint32_t)(config->cmdline_address >> 32));
    put32(zero_page, BOOT_PARAMS_CMDLINE_SIZE, kernel->cmdline_size_max);

    put32(zero_page, BOOT_PARAMS_RAMDISK_IMAGE, (uint32_t)config->initrd_address);
    put32(zero_page, BOOT_PARAMS_RAMDISK_SIZE, (uint32_t)config->initrd_size);
    put32(zero_page, BOOT_PARAMS_EXT_RAMDISK_IMAGE, (uint32_t)(config->initrd_address >> 32));
    put32(zero_page, BOOT_PARAMS_EXT_RAMDISK_SIZE, (uint32_t)(config->initrd_size >> 32));

    put64(zero_page, BOOT_PARAMS_ACPI_RSDP_ADDR, config->acpi_rsdp_address);

    struct boot_e820_entry entries[BOOT_PARAMS_E820_MAX];
    unsigned count = boot_e820_build(config->memory->lowmem_size, config->memory->highmem_size,
                                     entries, BOOT_PARAMS_E820_MAX);
    put8(zero_page, BOOT_PARAMS_E820_ENTRIES, (uint8_t)count);
    for (unsigned i = 0; i < count; i++) {
        unsigned offset = BOOT_PARAMS_E820_TABLE + i * E820_ENTRY_SIZE;
        put64(zero_page, offset, entries[i].address);
        put64(zero_page, offset + 8, entries[i].size);
        put32(zero_page, offset + 16, entries[i].type);
    }
    return count;
}

/* The Linux zero page (struct boot_params) and where the initrd goes. */
#ifndef PLUGVIRT_BOOT_PARAMS_H
#define PLUGVIRT_BOOT_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "boot/boot_memory.h"
#include "pv_error.h"

/* Picks the initrd address: page-aligned, as high as possible below
 * min(lowmem, initrd_address_max + 1), above the kernel. */
int boot_place_initrd(const struct boot_memory *memory, const struct boot_kernel *kernel,
                      uint64_t initrd_size, const char *name, uint64_t *address,
                      struct pv_error *error);

/* Fills the 4 KiB zero page (struct boot_params) at `zero_page`. */
struct boot_params_config {
    const struct boot_kernel *kernel;
    const struct boot_memory *memory;
    uint64_t cmdline_address;
    size_t cmdline_length; /* without the NUL */
    uint64_t initrd_address;
    uint64_t initrd_size;
    uint64_t acpi_rsdp_address;
};
#define BOOT_PARAMS_SIZE 4096
/* Returns the number of e820 entries written. */
unsigned boot_params_build(uint8_t *zero_page, const struct boot_params_config *config);

/* Zero-page offsets (Documentation/arch/x86/zero-page.rst, boot.rst). */
#define BOOT_PARAMS_ACPI_RSDP_ADDR 0x070
#define BOOT_PARAMS_EXT_RAMDISK_IMAGE 0x0c0
#define BOOT_PARAMS_EXT_RAMDISK_SIZE 0x0c4
#define BOOT_PARAMS_EXT_CMD_LINE_PTR 0x0c8
#define BOOT_PARAMS_E820_ENTRIES 0x1e8
#define BOOT_PARAMS_SENTINEL 0x1ef
#define BOOT_PARAMS_SETUP_SECTS 0x1f1
#define BOOT_PARAMS_BOOT_FLAG 0x1fe
#define BOOT_PARAMS_JUMP 0x200
#define BOOT_PARAMS_HEADER 0x202
#define BOOT_PARAMS_VERSION 0x206
#define BOOT_PARAMS_TYPE_OF_LOADER 0x210
#define BOOT_PARAMS_LOADFLAGS 0x211
#define BOOT_PARAMS_CODE32_START 0x214
#define BOOT_PARAMS_RAMDISK_IMAGE 0x218
#define BOOT_PARAMS_RAMDISK_SIZE 0x21c
#define BOOT_PARAMS_CMD_LINE_PTR 0x228
#define BOOT_PARAMS_INITRD_ADDR_MAX 0x22c
#define BOOT_PARAMS_KERNEL_ALIGNMENT 0x230
#define BOOT_PARAMS_RELOCATABLE_KERNEL 0x234
#define BOOT_PARAMS_XLOADFLAGS 0x236
#define BOOT_PARAMS_CMDLINE_SIZE 0x238
#define BOOT_PARAMS_PREF_ADDRESS 0x258
#define BOOT_PARAMS_INIT_SIZE 0x260
#define BOOT_PARAMS_E820_TABLE 0x2d0
#define BOOT_PARAMS_E820_MAX 128

#define BOOT_HEADER_MAGIC 0x53726448 /* "HdrS" */
#define BOOT_FLAG_MAGIC 0xaa55
#define BOOT_LOADFLAG_LOADED_HIGH 0x01
#define BOOT_XLF_KERNEL_64 0x01

#endif

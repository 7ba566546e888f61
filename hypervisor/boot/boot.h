/* Direct kernel boot (no BIOS): loads an ELF64 kernel (vmlinux, the probe
 * guest) or a bzImage plus initrd and command line into guest RAM, fills the
 * Linux zero page, GDT and identity page tables, and puts the boot vCPU in
 * 64-bit mode at the kernel's 64-bit entry with RSI = zero page.
 *
 * Everything but boot_setup_vcpu works on a plain host buffer (struct
 * boot_memory), so it can be tested without KVM. The pure pieces (parsers,
 * zero-page builder, table writers) are declared here for the unit tests. */
#ifndef PLUGVIRT_BOOT_H
#define PLUGVIRT_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pv_error.h"

/* Guest RAM as the host sees it: `ram` maps guest [0, lowmem_size) followed by
 * guest [4 GiB, 4 GiB + highmem_size). */
struct boot_memory {
    uint8_t *ram;
    uint64_t lowmem_size;
    uint64_t highmem_size;
    /* RAM is still all zeros (fresh anonymous memory, before the first boot): loaders then
     * skip zeroing, because on this host every first-touched page costs several us. */
    bool ram_is_zero;
};

enum boot_kernel_kind {
    BOOT_KERNEL_ELF64 = 1,
    BOOT_KERNEL_BZIMAGE,
};

/* What boot_load did, for the caller and for logs. */
struct boot_info {
    uint64_t entry; /* guest physical 64-bit entry point */
    enum boot_kernel_kind kind;
    uint16_t protocol_version; /* bzImage boot protocol (0x020f = 2.15); 0 for ELF */
    uint64_t kernel_start;     /* guest physical range the kernel occupies or needs */
    uint64_t kernel_end;       /* (bzImage: includes the decompression area) */
    uint64_t initrd_address;   /* 0 if no initrd */
    uint64_t initrd_size;
    uint64_t cmdline_address;
    size_t cmdline_length; /* without the terminating NUL */
    unsigned e820_entries;
};

/* Loads kernel, optional initrd (NULL) and command line into guest RAM and
 * writes the zero page, GDT and page tables. Fills `info` (entry point). */
int boot_load(const struct boot_memory *memory, const char *kernel_path, const char *initrd_path,
              const char *cmdline, struct boot_info *info, struct pv_error *error);

/* Puts the boot vCPU into 64-bit mode at `entry` (registers, segments,
 * control registers, FPU, MSRs), as the Linux 64-bit boot protocol wants.
 * Only for vCPU 0: the APs stay in wait-for-SIPI. */
int boot_setup_vcpu(int vcpu_fd, uint64_t entry, struct pv_error *error);

/* ---- Pieces, exposed for the unit tests ---------------------------------- */

/* Host pointer for guest [address, address + length), or NULL if any part is not RAM. */
void *boot_memory_pointer(const struct boot_memory *memory, uint64_t address, uint64_t length);

/* Everything boot_load learns from a kernel image. */
#define BOOT_SETUP_HEADER_OFFSET 0x1f1 /* struct setup_header inside the zero page */
#define BOOT_SETUP_HEADER_MAX (0x290 - BOOT_SETUP_HEADER_OFFSET)

struct boot_kernel {
    enum boot_kernel_kind kind;
    uint64_t entry;
    uint64_t load_start;         /* lowest guest address the kernel uses */
    uint64_t load_end;           /* one past the highest (initrd goes above) */
    uint16_t protocol_version;   /* 0 for ELF */
    uint64_t initrd_address_max; /* highest address the initrd's last byte may have */
    uint32_t cmdline_size_max;   /* longest command line, without the NUL */
    /* bzImage only: the image's setup header (zero-page offsets 0x1f1..). */
    uint8_t setup_header[BOOT_SETUP_HEADER_MAX];
    size_t setup_header_length;
};

/* Parses an ELF64 x86-64 image, checks all its PT_LOAD segments against
 * `memory` (in RAM, at or above 1 MiB) and only then copies them to their
 * physical addresses, zeroing bss. `name` is used in messages. */
int boot_elf_load(const struct boot_memory *memory, const uint8_t *image, size_t image_size,
                  const char *name, struct boot_kernel *kernel, struct pv_error *error);

/* Same for a bzImage: checks protocol >= 2.12 with XLF_KERNEL_64 and loads
 * the protected-mode part at 1 MiB; entry = 1 MiB + 0x200. */
int boot_bzimage_load(const struct boot_memory *memory, const uint8_t *image, size_t image_size,
                      const char *name, struct boot_kernel *kernel, struct pv_error *error);

/* Recognizes the image and calls one of the loaders above; otherwise
 * "NAME is neither an ELF64 kernel nor a bzImage". */
int boot_kernel_load(const struct boot_memory *memory, const uint8_t *image, size_t image_size,
                     const char *name, struct boot_kernel *kernel, struct pv_error *error);

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
#define BOOT_KERNEL_LOAD_ADDRESS 0x100000ULL /* protected-mode kernel / ELF minimum */

/* Writes the identity map of guest [0, 4 GiB) with 2 MiB pages at
 * VM_BOOT_PML4_ADDRESS (PML4, PDPT, 4 PDs). */
int boot_write_page_tables(const struct boot_memory *memory, struct pv_error *error);

/* Writes the boot GDT at VM_BOOT_GDT_ADDRESS: null, code64 at 0x08 and 0x10
 * (__BOOT_CS), data at 0x18 (__BOOT_DS), a 64-bit TSS at 0x20. */
#define BOOT_GDT_CODE_SELECTOR 0x10
#define BOOT_GDT_DATA_SELECTOR 0x18
#define BOOT_GDT_TSS_SELECTOR 0x20
#define BOOT_GDT_ENTRIES 6 /* the TSS descriptor takes two */
int boot_write_gdt(const struct boot_memory *memory, struct pv_error *error);

#endif

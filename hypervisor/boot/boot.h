/* Direct kernel boot (no BIOS): loads an ELF64 kernel (vmlinux, the probe
 * guest) or a bzImage plus initrd and command line into guest RAM, fills the
 * Linux zero page, GDT and identity page tables, and puts the boot vCPU in
 * 64-bit mode at the kernel's 64-bit entry with RSI = zero page.
 *
 * Everything but boot_setup_vcpu works on a plain host buffer (struct
 * boot_memory), so it can be tested without KVM. The pure pieces (parsers,
 * zero-page builder, table writers) are declared for the unit tests.
 *
 * Layers, lowest first (no file calls one above it): boot_memory (guest RAM,
 * kernel description), boot_e820, boot_params (zero page), boot_elf and
 * boot_bzimage (loaders), boot.c (boot_load, vCPU registers). */
#ifndef PLUGVIRT_BOOT_H
#define PLUGVIRT_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "boot/boot_memory.h"
#include "pv_error.h"

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

/* ---- Pieces, exposed for the unit tests (the loaders have their own headers:
 * boot_elf.h, boot_bzimage.h, boot_params.h) ------------------------------- */

/* Recognizes the image and calls boot_elf_load or boot_bzimage_load; otherwise
 * "NAME is neither an ELF64 kernel nor a bzImage". */
int boot_kernel_load(const struct boot_memory *memory, const uint8_t *image, size_t image_size,
                     const char *name, struct boot_kernel *kernel, struct pv_error *error);

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

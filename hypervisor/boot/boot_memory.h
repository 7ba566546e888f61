/* What every boot loader shares: guest RAM as a host buffer, and the description of
 * a loaded kernel. The lowest layer of boot/, so the loaders do not call into boot.c. */
#ifndef PLUGVIRT_BOOT_MEMORY_H
#define PLUGVIRT_BOOT_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

#define BOOT_KERNEL_LOAD_ADDRESS 0x100000ULL /* protected-mode kernel / ELF minimum */

#endif

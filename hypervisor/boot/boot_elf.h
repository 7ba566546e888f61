/* ELF64 kernels: Linux vmlinux and the probe guest. */
#ifndef PLUGVIRT_BOOT_ELF_H
#define PLUGVIRT_BOOT_ELF_H

#include <stddef.h>
#include <stdint.h>

#include "boot/boot_memory.h"
#include "pv_error.h"

/* Parses an ELF64 x86-64 image, checks all its PT_LOAD segments against
 * `memory` (in RAM, at or above 1 MiB) and only then copies them to their
 * physical addresses, zeroing bss. `name` is used in messages. */
int boot_elf_load(const struct boot_memory *memory, const uint8_t *image, size_t image_size,
                  const char *name, struct boot_kernel *kernel, struct pv_error *error);

#endif

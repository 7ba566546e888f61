/* bzImage kernels (boot protocol >= 2.12, 64-bit entry). */
#ifndef PLUGVIRT_BOOT_BZIMAGE_H
#define PLUGVIRT_BOOT_BZIMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "boot/boot_memory.h"
#include "pv_error.h"

/* Same for a bzImage: checks protocol >= 2.12 with XLF_KERNEL_64 and loads
 * the protected-mode part at 1 MiB; entry = 1 MiB + 0x200. */
int boot_bzimage_load(const struct boot_memory *memory, const uint8_t *image, size_t image_size,
                      const char *name, struct boot_kernel *kernel, struct pv_error *error);

#endif

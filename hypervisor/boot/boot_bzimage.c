/* bzImage kernels, entered at the 64-bit entry of the protected-mode part
 * (boot protocol 2.12+, XLF_KERNEL_64); the real-mode setup code is not run. */
#include "boot/boot_bzimage.h"

#include <errno.h>
#include <string.h>

#include "boot/boot_params.h"
#include "vm.h"

#define BZIMAGE_MIN_PROTOCOL 0x020c
#define BZIMAGE_ENTRY64_OFFSET 0x200
#define BZIMAGE_DEFAULT_SETUP_SECTS 4
#define BZIMAGE_OLD_CMDLINE_SIZE 255 /* before protocol 2.06 */

static uint8_t read8(const uint8_t *image, size_t offset)
{
    return image[offset];
}

static uint16_t read16(const uint8_t *image, size_t offset)
{
    uint16_t value;
    memcpy(&value, image + offset, sizeof(value));
    return value;
}

static uint32_t read32(const uint8_t *image, size_t offset)
{
    uint32_t value;
    memcpy(&value, image + offset, sizeof(value));
    return value;
}

static uint64_t read64(const uint8_t *image, size_t offset)
{
    uint64_t value;
    memcpy(&value, image + offset, sizeof(value));
    return value;
}

static uint64_t align_up(uint64_t value, uint64_t alignment)
{
    if (alignment == 0 || (alignment & (alignment - 1)) != 0)
        return value;
    return (value + alignment - 1) & ~(alignment - 1);
}

int boot_bzimage_load(const struct boot_memory *memory, const uint8_t *image, size_t image_size,
                      const char *name, struct boot_kernel *kernel, struct pv_error *error)
{
    /* The fields used below all lie before 0x268 (protocol 2.12 header). */
    if (image_size < BOOT_PARAMS_INIT_SIZE + 4 ||
        read32(image, BOOT_PARAMS_HEADER) != BOOT_HEADER_MAGIC)
        return pv_error_set(error, -ENOEXEC, "%s is not a bzImage (no \"HdrS\" at 0x202)", name);
    uint16_t version = read16(image, BOOT_PARAMS_VERSION);
    if (version < BZIMAGE_MIN_PROTOCOL)
        return pv_error_set(error, -ENOEXEC,
                            "%s: boot protocol %u.%02u is too old; plugvirt-vmm enters the 64-bit "
                            "entry, which needs protocol 2.12 or newer (Linux 3.8+)",
                            name, version >> 8, version & 0xff);
    if (!(read8(image, BOOT_PARAMS_XLOADFLAGS) & BOOT_XLF_KERNEL_64))
        return pv_error_set(error, -ENOEXEC,
                            "%s has no 64-bit entry point (XLF_KERNEL_64 not set): is it a 32-bit "
                            "kernel?",
                            name);
    if (!(read8(image, BOOT_PARAMS_LOADFLAGS) & BOOT_LOADFLAG_LOADED_HIGH))
        return pv_error_set(error, -ENOEXEC, "%s is a zImage (not loaded high); need a bzImage",
                            name);

    unsigned setup_sects = read8(image, BOOT_PARAMS_SETUP_SECTS);
    if (setup_sects == 0)
        setup_sects = BZIMAGE_DEFAULT_SETUP_SECTS;
    size_t setup_size = ((size_t)setup_sects + 1) * 512;
    if (setup_size >= image_size)
        return pv_error_set(error, -ENOEXEC,
                            "%s is truncated: its setup part (%zu bytes) is the whole file", name,
                            setup_size);
    size_t payload_size = image_size - setup_size;

    /* The header ends where the jump at 0x200 lands. */
    size_t header_end = BOOT_PARAMS_HEADER + read8(image, BOOT_PARAMS_JUMP + 1);
    if (header_end > BOOT_SETUP_HEADER_OFFSET + BOOT_SETUP_HEADER_MAX)
        header_end = BOOT_SETUP_HEADER_OFFSET + BOOT_SETUP_HEADER_MAX;
    if (header_end > image_size)
        header_end = image_size;

    /* The decompressor's output: aligned up from the load address, at least
     * pref_address (LOAD_PHYSICAL_ADDR), init_size bytes (head_64.S). */
    uint64_t load_address = BOOT_KERNEL_LOAD_ADDRESS;
    uint32_t alignment = read32(image, BOOT_PARAMS_KERNEL_ALIGNMENT);
    uint64_t pref_address = read64(image, BOOT_PARAMS_PREF_ADDRESS);
    uint32_t init_size = read32(image, BOOT_PARAMS_INIT_SIZE);
    uint64_t output = pref_address;
    if (read8(image, BOOT_PARAMS_RELOCATABLE_KERNEL)) {
        uint64_t aligned = align_up(load_address, alignment);
        if (aligned > output)
            output = aligned;
    }
    uint64_t end = load_address + payload_size;
    if (output + init_size > end)
        end = output + init_size;
    if (end > memory->lowmem_size)
        return pv_error_set(error, -ENOMEM,
                            "%s needs guest RAM up to 0x%llx (%llu MiB) to decompress, but low "
                            "RAM ends at 0x%llx; give the VM more memory (-m)",
                            name, (unsigned long long)end,
                            (unsigned long long)((end + 0xfffff) >> 20),
                            (unsigned long long)memory->lowmem_size);
    uint8_t *target = boot_memory_pointer(memory, load_address, payload_size);
    if (!target)
        return pv_error_set(error, -ENOMEM, "%s does not fit in guest RAM", name);
    memcpy(target, image + setup_size, payload_size);

    memset(kernel, 0, sizeof(*kernel));
    kernel->kind = BOOT_KERNEL_BZIMAGE;
    kernel->entry = load_address + BZIMAGE_ENTRY64_OFFSET;
    kernel->load_start = load_address;
    kernel->load_end = end;
    kernel->protocol_version = version;
    kernel->initrd_address_max = read32(image, BOOT_PARAMS_INITRD_ADDR_MAX);
    kernel->cmdline_size_max =
        version >= 0x0206 ? read32(image, BOOT_PARAMS_CMDLINE_SIZE) : BZIMAGE_OLD_CMDLINE_SIZE;
    if (kernel->cmdline_size_max > VM_BOOT_CMDLINE_MAX - 1)
        kernel->cmdline_size_max = VM_BOOT_CMDLINE_MAX - 1;
    kernel->setup_header_length = header_end - BOOT_SETUP_HEADER_OFFSET;
    memcpy(kernel->setup_header, image + BOOT_SETUP_HEADER_OFFSET, kernel->setup_header_length);
    return 0;
}

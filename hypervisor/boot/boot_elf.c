/* ELF64 kernels: Linux vmlinux and the probe guest. Segments are loaded at
 * their physical addresses; nothing is run before the 64-bit entry. */
#include "boot/boot_elf.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

#include "vm.h"

#define ELF_INITRD_ADDRESS_MAX 0x37ffffffULL /* Linux's default when the header has none */

static int check_header(const uint8_t *image, size_t image_size, const char *name,
                        Elf64_Ehdr *header, struct pv_error *error)
{
    if (image_size < EI_NIDENT || memcmp(image, ELFMAG, SELFMAG) != 0)
        return pv_error_set(error, -ENOEXEC, "%s is not an ELF file", name);
    if (image[EI_CLASS] == ELFCLASS32)
        return pv_error_set(error, -ENOEXEC,
                            "%s is a 32-bit ELF; plugvirt-vmm boots only ELF64 x86-64 kernels "
                            "(or a bzImage)",
                            name);
    if (image[EI_CLASS] != ELFCLASS64)
        return pv_error_set(error, -ENOEXEC, "%s: unknown ELF class %u", name, image[EI_CLASS]);
    if (image[EI_DATA] != ELFDATA2LSB)
        return pv_error_set(error, -ENOEXEC, "%s is a big-endian ELF, not an x86-64 kernel", name);
    if (image_size < sizeof(*header))
        return pv_error_set(error, -ENOEXEC, "%s: truncated ELF header (%zu bytes)", name,
                            image_size);
    memcpy(header, image, sizeof(*header));
    if (header->e_machine != EM_X86_64)
        return pv_error_set(error, -ENOEXEC, "%s is an ELF64 for machine type %u, not x86-64 (%u)",
                            name, header->e_machine, EM_X86_64);
    if (header->e_type != ET_EXEC && header->e_type != ET_DYN)
        return pv_error_set(error, -ENOEXEC, "%s is not an executable ELF (e_type %u)", name,
                            header->e_type);
    if (header->e_phnum == 0 || header->e_phnum == PN_XNUM)
        return pv_error_set(error, -ENOEXEC, "%s has no program headers to load", name);
    if (header->e_phentsize != sizeof(Elf64_Phdr))
        return pv_error_set(error, -ENOEXEC, "%s: unexpected program header size %u", name,
                            header->e_phentsize);
    if (header->e_phoff > image_size ||
        (uint64_t)header->e_phnum * sizeof(Elf64_Phdr) > image_size - header->e_phoff)
        return pv_error_set(error, -ENOEXEC,
                            "%s is truncated: its program headers end beyond the file", name);
    return 0;
}

static void read_program_header(const uint8_t *image, const Elf64_Ehdr *header, unsigned index,
                                Elf64_Phdr *program_header)
{
    memcpy(program_header, image + header->e_phoff + (uint64_t)index * sizeof(*program_header),
           sizeof(*program_header));
}

static int check_segment(const struct boot_memory *memory, size_t image_size, const char *name,
                         unsigned index, const Elf64_Phdr *segment, struct pv_error *error)
{
    if (segment->p_filesz > segment->p_memsz)
        return pv_error_set(error, -ENOEXEC, "%s: segment %u has file size > memory size", name,
                            index);
    if (segment->p_offset > image_size || segment->p_filesz > image_size - segment->p_offset)
        return pv_error_set(error, -ENOEXEC,
                            "%s is truncated: segment %u (offset 0x%llx, %llu bytes) ends beyond "
                            "the file (%zu bytes)",
                            name, index, (unsigned long long)segment->p_offset,
                            (unsigned long long)segment->p_filesz, image_size);
    uint64_t start = segment->p_paddr;
    if (segment->p_memsz > UINT64_MAX - start)
        return pv_error_set(error, -ENOEXEC, "%s: segment %u wraps around the address space", name,
                            index);
    uint64_t end = start + segment->p_memsz;
    if (start < BOOT_KERNEL_LOAD_ADDRESS)
        return pv_error_set(error, -ENOEXEC,
                            "%s: segment %u [0x%llx, 0x%llx) overlaps the boot area below 1 MiB "
                            "(zero page, page tables, command line, ACPI tables); link the kernel "
                            "at 1 MiB or above",
                            name, index, (unsigned long long)start, (unsigned long long)end);
    if (!boot_memory_pointer(memory, start, segment->p_memsz)) {
        if (memory->highmem_size)
            return pv_error_set(
                error, -ENOEXEC,
                "%s: segment %u [0x%llx, 0x%llx) is outside guest RAM ([0, 0x%llx) and "
                "[0x%llx, 0x%llx)); give the VM more memory (-m)",
                name, index, (unsigned long long)start, (unsigned long long)end,
                (unsigned long long)memory->lowmem_size, (unsigned long long)VM_HIGHMEM_START,
                (unsigned long long)(VM_HIGHMEM_START + memory->highmem_size));
        return pv_error_set(error, -ENOEXEC,
                            "%s: segment %u [0x%llx, 0x%llx) is outside guest RAM [0, 0x%llx); "
                            "give the VM more memory (-m)",
                            name, index, (unsigned long long)start, (unsigned long long)end,
                            (unsigned long long)memory->lowmem_size);
    }
    return 0;
}

/* e_entry is physical for the probe guest and recent vmlinux, but may be a
 * virtual address in the kernel's high mapping: translate it through the
 * segment that contains it. */
static int find_entry(const uint8_t *image, const Elf64_Ehdr *header, const char *name,
                      uint64_t *entry, struct pv_error *error)
{
    Elf64_Phdr segment;
    for (unsigned i = 0; i < header->e_phnum; i++) {
        read_program_header(image, header, i, &segment);
        if (segment.p_type == PT_LOAD && header->e_entry >= segment.p_paddr &&
            header->e_entry - segment.p_paddr < segment.p_memsz) {
            *entry = header->e_entry;
            return 0;
        }
    }
    for (unsigned i = 0; i < header->e_phnum; i++) {
        read_program_header(image, header, i, &segment);
        if (segment.p_type == PT_LOAD && header->e_entry >= segment.p_vaddr &&
            header->e_entry - segment.p_vaddr < segment.p_memsz) {
            *entry = header->e_entry - segment.p_vaddr + segment.p_paddr;
            return 0;
        }
    }
    return pv_error_set(error, -ENOEXEC,
                        "%s: the entry point 0x%llx is not inside any loadable segment", name,
                        (unsigned long long)header->e_entry);
}

int boot_elf_load(const struct boot_memory *memory, const uint8_t *image, size_t image_size,
                  const char *name, struct boot_kernel *kernel, struct pv_error *error)
{
    Elf64_Ehdr header;
    int rc = check_header(image, image_size, name, &header, error);
    if (rc < 0)
        return rc;

    /* Check every segment before writing any, so a bad file leaves RAM alone. */
    uint64_t load_start = UINT64_MAX, load_end = 0;
    unsigned loadable = 0;
    Elf64_Phdr segment;
    for (unsigned i = 0; i < header.e_phnum; i++) {
        read_program_header(image, &header, i, &segment);
        if (segment.p_type != PT_LOAD || segment.p_memsz == 0)
            continue;
        rc = check_segment(memory, image_size, name, i, &segment, error);
        if (rc < 0)
            return rc;
        if (segment.p_paddr < load_start)
            load_start = segment.p_paddr;
        if (segment.p_paddr + segment.p_memsz > load_end)
            load_end = segment.p_paddr + segment.p_memsz;
        loadable++;
    }
    if (loadable == 0)
        return pv_error_set(error, -ENOEXEC, "%s has no loadable (PT_LOAD) segments", name);
    uint64_t entry = 0;
    rc = find_entry(image, &header, name, &entry, error);
    if (rc < 0)
        return rc;

    for (unsigned i = 0; i < header.e_phnum; i++) {
        read_program_header(image, &header, i, &segment);
        if (segment.p_type != PT_LOAD || segment.p_memsz == 0)
            continue;
        uint8_t *target = boot_memory_pointer(memory, segment.p_paddr, segment.p_memsz);
        memcpy(target, image + segment.p_offset, segment.p_filesz);
        if (!memory->ram_is_zero)
            memset(target + segment.p_filesz, 0, segment.p_memsz - segment.p_filesz);
    }

    memset(kernel, 0, sizeof(*kernel));
    kernel->kind = BOOT_KERNEL_ELF64;
    kernel->entry = entry;
    kernel->load_start = load_start;
    kernel->load_end = load_end;
    kernel->protocol_version = 0;
    kernel->initrd_address_max = ELF_INITRD_ADDRESS_MAX;
    kernel->cmdline_size_max = VM_BOOT_CMDLINE_MAX - 1;
    return 0;
}

/* Guest RAM as a host buffer, shared by every loader in boot/. */
#include "boot/boot_memory.h"

#include "vm.h"

void *boot_memory_pointer(const struct boot_memory *memory, uint64_t address, uint64_t length)
{
    if (address <= memory->lowmem_size && length <= memory->lowmem_size - address)
        return memory->ram + address;
    if (address >= VM_HIGHMEM_START) {
        uint64_t offset = address - VM_HIGHMEM_START;
        if (offset <= memory->highmem_size && length <= memory->highmem_size - offset)
            return memory->ram + memory->lowmem_size + offset;
    }
    return NULL;
}

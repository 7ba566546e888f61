#include "boot/boot_e820.h"

#include "vm.h"

static void add_entry(struct boot_e820_entry *entries, unsigned max, unsigned *count,
                      uint64_t address, uint64_t size, uint32_t type)
{
    if (size == 0 || *count >= max)
        return;
    entries[*count].address = address;
    entries[*count].size = size;
    entries[*count].type = type;
    (*count)++;
}

unsigned boot_e820_build(uint64_t lowmem_size, uint64_t highmem_size,
                         struct boot_e820_entry *entries, unsigned max)
{
    unsigned count = 0;
    const uint64_t one_mib = 0x100000;

    uint64_t base_ram_end = lowmem_size < VM_EBDA_START ? lowmem_size : VM_EBDA_START;
    add_entry(entries, max, &count, 0, base_ram_end, BOOT_E820_RAM);
    /* EBDA, VGA hole, option ROM and BIOS area: our ACPI tables are at 0xe0000. */
    add_entry(entries, max, &count, VM_EBDA_START, one_mib - VM_EBDA_START, BOOT_E820_RESERVED);
    if (lowmem_size > one_mib)
        add_entry(entries, max, &count, one_mib, lowmem_size - one_mib, BOOT_E820_RAM);
    /* QEMU reserves the pages it gives KVM for the same purpose (at 0xfeffc000). */
    add_entry(entries, max, &count, BOOT_KVM_PRIVATE_PAGES_ADDRESS, BOOT_KVM_PRIVATE_PAGES_SIZE,
              BOOT_E820_RESERVED);
    add_entry(entries, max, &count, VM_HIGHMEM_START, highmem_size, BOOT_E820_RAM);
    return count;
}

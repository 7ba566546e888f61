/* The guest's e820 memory map, as the zero page hands it to the kernel. */
#ifndef PLUGVIRT_BOOT_E820_H
#define PLUGVIRT_BOOT_E820_H

#include <stdint.h>

#define BOOT_E820_RAM 1
#define BOOT_E820_RESERVED 2

/* Where vm.c puts KVM's identity-map page and 3-page real-mode TSS
 * (KVM_SET_IDENTITY_MAP_ADDR / KVM_SET_TSS_ADDR); keep in sync with vm.c. */
#define BOOT_KVM_PRIVATE_PAGES_ADDRESS 0xfffbc000ULL
#define BOOT_KVM_PRIVATE_PAGES_SIZE 0x4000ULL

struct boot_e820_entry {
    uint64_t address;
    uint64_t size;
    uint32_t type;
};

/* Builds the map for RAM [0, lowmem_size) + [4 GiB, 4 GiB + highmem_size),
 * sorted by address, like QEMU's: RAM below the EBDA, the EBDA/VGA/BIOS area
 * reserved up to 1 MiB (ACPI tables live there), RAM from 1 MiB, KVM's private
 * pages reserved; the PCI hole and the IOAPIC/LAPIC are not listed (QEMU does
 * not list them either). Returns the number of entries (at most `max`). */
unsigned boot_e820_build(uint64_t lowmem_size, uint64_t highmem_size,
                         struct boot_e820_entry *entries, unsigned max);

#endif

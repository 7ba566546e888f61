/*
 * Test-only shim (not part of probe-guest.elf): booted by QEMU through PVH, it
 * turns hvm_start_info into a Linux boot_params (zero page) and enters
 * probe_entry64 the way plugvirt-vmm does (long mode, paging on, RSI = zero
 * page, acpi_rsdp_addr = 0 so the BIOS-area scan runs). Build with
 * build.sh --linux-entry-test. Runs at CPL0 under QEMU only.
 */
#include "probe.h"

__asm__(".section .text\n"
        ".globl probe_test_linux_shim\n"
        "probe_test_linux_shim:\n"
        "    lea probe_test_stack_top(%rip), %rsp\n"
        "    mov %rsi, %rdi\n"
        "    call probe_test_build_boot_params\n"
        "    mov %rax, %rsi\n"
        "    xor %edi, %edi\n"
        "    jmp probe_entry64\n");

uint64_t probe_test_build_boot_params(uint64_t start_info);

/* In .data, not .bss: probe_user_start clears .bss before the zero page is read. */
static uint8_t boot_params[4096] __attribute__((aligned(4096), section(".data.test_zero_page")));
static char command_line[256] __attribute__((section(".data.test_zero_page")));
uint8_t probe_test_stack[8192] __attribute__((aligned(16)));
__asm__(".globl probe_test_stack_top\n.set probe_test_stack_top, probe_test_stack + 8192\n");

static void put32(unsigned offset, uint32_t value)
{
    __builtin_memcpy(&boot_params[offset], &value, 4);
}

static void put64(unsigned offset, uint64_t value)
{
    __builtin_memcpy(&boot_params[offset], &value, 8);
}

uint64_t probe_test_build_boot_params(uint64_t start_info)
{
    const char *source = (const char *)(uintptr_t)phys_read64(start_info + 24);
    size_t i = 0;
    for (; source && source[i] && i < sizeof(command_line) - 1; i++)
        command_line[i] = source[i];
    command_line[i] = '\0';
    put32(0x228, (uint32_t)(uintptr_t)command_line);
    put64(0x070, 0);
    uint64_t memmap = phys_read64(start_info + 40);
    uint32_t entries = phys_read32(start_info + 48);
    if (entries > 128)
        entries = 128;
    boot_params[0x1e8] = (uint8_t)entries;
    for (uint32_t e = 0; e < entries; e++) {
        unsigned offset = 0x2d0 + e * 20;
        put64(offset, phys_read64(memmap + e * 24));
        put64(offset + 8, phys_read64(memmap + e * 24 + 8));
        put32(offset + 16, phys_read32(memmap + e * 24 + 16));
    }
    return (uint64_t)(uintptr_t)boot_params;
}

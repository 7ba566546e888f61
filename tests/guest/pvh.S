/*
 * PVH entry for stock QEMU (-kernel with an ELF that is not multiboot):
 * 32-bit protected mode, paging off, EBX = struct hvm_start_info.
 * Enables long mode with our own page tables, then joins probe_common64.
 */

#define KERNEL_CS 0x08

/* Test builds (test_linux_entry.c) divert the PVH path through a shim that
 * fakes a Linux boot_params hand-over, to exercise probe_entry64 under QEMU. */
#ifndef PROBE_PVH_CONTINUE
#define PROBE_PVH_CONTINUE probe_common64
#endif
#define XEN_ELFNOTE_PHYS32_ENTRY 18

    /* PT_NOTE "Xen": QEMU reads the entry as a native-size (8-byte) value
     * and expects 4-byte note alignment. */
    .section .note.Xen, "a", @note
    .balign 4
    .long 2f - 1f       /* namesz */
    .long 4f - 3f       /* descsz */
    .long XEN_ELFNOTE_PHYS32_ENTRY
1:  .asciz "Xen"
2:  .balign 4
3:  .quad probe_entry_pvh
4:  .balign 4

    .section .text.entry, "ax"
    .code32
    .globl probe_entry_pvh
probe_entry_pvh:
    cli
    mov %ebx, %esi
    lgdt probe_gdt_pointer
    mov %cr4, %eax
    or $(1 << 5), %eax          /* PAE */
    mov %eax, %cr4
    mov $probe_pml4, %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx       /* EFER */
    rdmsr
    or $(1 << 8), %eax          /* LME */
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax        /* PG | PE */
    mov %eax, %cr0
    ljmp $KERNEL_CS, $1f

    .code64
1:  mov %esi, %esi              /* zero-extend the start_info address */
    mov $2, %edi                /* PROBE_BOOT_PVH */
    jmp PROBE_PVH_CONTINUE

    .section .note.GNU-stack, "", @progbits

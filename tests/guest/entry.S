/*
 * 64-bit entry (Linux x86-64 boot protocol) and the one-time CPL0 set-up
 * shared with the PVH path, plus the static descriptor tables.
 *
 * CPL0 code here is straight-line (no loops): on the PVM host each CPL0
 * instruction is emulated. The page tables, GDT and TSS are static data; the
 * IDT is filled later at CPL3 (interrupts.c) before the first int3.
 */

#define KERNEL_CS 0x08
#define KERNEL_DS 0x10
#define USER_DS 0x18
#define USER_CS 0x20
#define TSS_SELECTOR 0x28

#define CR4_SMEP (1 << 20)
#define CR4_SMAP (1 << 21)

    .section .text.entry, "ax"
    .code64

/* Loader entry: long mode, paging on, RSI = boot_params. */
    .globl probe_entry64
probe_entry64:
    cli
    mov $1, %edi /* PROBE_BOOT_LINUX */
    jmp probe_common64

/*
 * RDI = boot kind, RSI = boot data; both survive to probe_user_start.
 * Switch to our GDT, page tables (with the U bit) and IDT, load the TSS and
 * drop to CPL3 with interrupts off.
 */
    .globl probe_common64
probe_common64:
    lea probe_kernel_stack_top(%rip), %rsp
    lgdt probe_gdt_pointer(%rip)
    /* CPL0 stubs touch user pages: SMEP/SMAP must be off. */
    mov %cr4, %rax
    and $~(CR4_SMEP | CR4_SMAP), %rax
    mov %rax, %cr4
    lea probe_pml4(%rip), %rax
    mov %rax, %cr3
    lidt probe_idt_pointer(%rip)
    /* ltr marks the descriptor busy; clear that in case we are re-entered
     * after a reset without the image being reloaded. */
    movb $0x89, probe_gdt + TSS_SELECTOR + 5(%rip)
    mov $TSS_SELECTOR, %ax
    ltr %ax
    pushq $(USER_DS | 3)
    lea probe_user_stack_top(%rip), %rax
    push %rax
    pushq $0x2 /* IF=0 until the IDT and the interrupt controllers are ready */
    pushq $(USER_CS | 3)
    lea probe_user_start(%rip), %rax
    push %rax
    iretq

/* ---- CPL3 from here ---- */
    .section .text
probe_user_start:
    /* Zero .bss ourselves: after a reset the loader may not. */
    mov %rdi, %r12
    mov %rsi, %r13
    cld
    lea probe_bss_start(%rip), %rdi
    lea probe_bss_end(%rip), %rcx
    sub %rdi, %rcx
    shr $3, %rcx
    xor %eax, %eax
    rep stosq
    mov %r12, %rdi
    mov %r13, %rsi
    call probe_main
1:  call interrupts_idle
    jmp 1b

/* ---- descriptor tables ---- */
    .section .data
    .balign 16
probe_gdt:
    .quad 0                      /* null */
    .quad 0x00af9a000000ffff     /* 0x08 kernel code, 64-bit */
    .quad 0x00cf92000000ffff     /* 0x10 kernel data */
    .quad 0x00cff2000000ffff     /* 0x18 user data, DPL3 */
    .quad 0x00affa000000ffff     /* 0x20 user code, 64-bit, DPL3 */
    /* 0x28 64-bit TSS; base split by the linker script (probe-guest.ld) */
    .word PROBE_TSS_LIMIT
    .word PROBE_TSS_BASE_0_15
    .byte PROBE_TSS_BASE_16_23
    .byte 0x89                   /* present, available 64-bit TSS */
    .byte 0x00
    .byte PROBE_TSS_BASE_24_31
    .long 0                      /* base 32..63: the image lies below 4 GiB */
    .long 0
probe_gdt_end:

    .globl probe_gdt_pointer
probe_gdt_pointer:
    .word probe_gdt_end - probe_gdt - 1
    .quad probe_gdt

probe_idt_pointer:
    .word 256 * 16 - 1
    .quad probe_idt

/* TSS: RSP0 for CPL3 → CPL0 transitions, and an all-zero I/O bitmap so CPL3
 * may use every port (IOPL is ignored on the PVM host). */
    .balign 16
    .globl probe_tss
probe_tss:
    .long 0
    .quad probe_kernel_stack_top /* RSP0 */
    .quad 0, 0                   /* RSP1, RSP2 */
    .quad 0                      /* reserved */
    .quad 0, 0, 0, 0, 0, 0, 0    /* IST1..7 */
    .quad 0
    .word 0
    .word probe_io_bitmap - probe_tss /* iomap_base */
probe_io_bitmap:
    .skip 8192
    .byte 0xff                   /* required terminator */
    .globl probe_tss_end
probe_tss_end:

/* Identity map of 0..4 GiB with 2 MiB pages, all U (CPL3 does the work),
 * the top GiB (PCI hole, IOAPIC, LAPIC) uncached. */
    .section .data.page_tables, "aw"
    .balign 4096
    .globl probe_pml4
probe_pml4:
    .quad probe_pdpt + 0x7
    .fill 511, 8, 0
probe_pdpt:
    .quad probe_pd + 0x7
    .quad probe_pd + 0x1000 + 0x7
    .quad probe_pd + 0x2000 + 0x7
    .quad probe_pd + 0x3000 + 0x7
    .fill 508, 8, 0
probe_pd:
    .set page, 0
    .rept 1536
    .quad (page << 21) | 0x87           /* P RW U PS */
    .set page, page + 1
    .endr
    .rept 512
    .quad (page << 21) | 0x9f           /* P RW U PWT PCD PS */
    .set page, page + 1
    .endr

    .section .bss
    .balign 4096
    .globl probe_idt
probe_idt:
    .fill 256 * 16, 1, 0

/* Stacks live outside .bss, which probe_user_start clears while using the user stack. */
    .section .stack, "aw", @nobits
    .balign 16
    .skip 16384
    .globl probe_kernel_stack_top
probe_kernel_stack_top:
    .skip 65536
    .globl probe_user_stack_top
probe_user_stack_top:
    .skip 8192
    .globl probe_fault_stack_top
probe_fault_stack_top:

    .section .note.GNU-stack, "", @progbits

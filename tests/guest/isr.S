/*
 * CPL0 interrupt and exception stubs. Each is a handful of integer
 * instructions: set a pending bit, EOI where needed, iretq. The real handling
 * happens at CPL3 (main loop in main.c).
 *
 * Frame on entry (no error code): rip 0, cs 8, rflags 16, rsp 24, ss 32.
 */

#define PENDING_UART (1 << 0)
#define PENDING_SCI (1 << 1)
#define PENDING_MSI (1 << 2)
#define PENDING_TIMER (1 << 3)
#define PENDING_NET (1 << 4)

    .section .data
    .balign 8
    .globl probe_pending
probe_pending:
    .long 0
    .long 0
    .globl probe_lapic_eoi_address
probe_lapic_eoi_address:
    .quad 0xfee000b0
    .globl probe_ioapic_address
probe_ioapic_address:
    .quad 0xfec00000
    /* IOAPIC register index of the SCI pin's low dword, and its masked value. */
    .globl probe_sci_redirection
probe_sci_redirection:
    .long 0
    .globl probe_sci_redirection_masked
probe_sci_redirection_masked:
    .long 0x10000
    /* Filled by fault stubs for probe_fault_report (CPL3). */
    .globl probe_fault_info
probe_fault_info:
    .quad 0, 0, 0, 0, 0 /* vector, error, rip, cr2, rsp */

    .section .text.cpl0, "ax"
    .code64

/*
 * int3 from CPL3 (DPL3 interrupt gate, so IF=0 here): sleep unless work is
 * pending, and always return to CPL3 with IF=1. The sti;hlt pair has no
 * window: an interrupt arriving after the check wakes the hlt.
 */
    .globl probe_isr_int3
probe_isr_int3:
    cmpl $0, probe_pending(%rip)
    jne 1f
    sti
    hlt
1:  orq $0x200, 16(%rsp)
    iretq

/* UART (edge-triggered): note it and EOI at once. */
    .globl probe_isr_uart
probe_isr_uart:
    lock orl $PENDING_UART, probe_pending(%rip)
    push %rax
    mov probe_lapic_eoi_address(%rip), %rax
    movl $0, (%rax)
    pop %rax
    iretq

/* MSI-X from any device (edge): every device vector shares this stub; the
 * waiting CPL3 code looks at its own used ring. */
    .globl probe_isr_msi
probe_isr_msi:
    lock orl $PENDING_MSI, probe_pending(%rip)
    push %rax
    mov probe_lapic_eoi_address(%rip), %rax
    movl $0, (%rax)
    pop %rax
    iretq

/* MSI-X from a NIC (queues or config): its own bit, because the main loop
 * handles these, while PENDING_MSI is consumed by whoever waits for a request. */
    .globl probe_isr_net
probe_isr_net:
    lock orl $PENDING_NET, probe_pending(%rip)
    push %rax
    mov probe_lapic_eoi_address(%rip), %rax
    movl $0, (%rax)
    pop %rax
    iretq

/* LAPIC timer one-shot (edge). */
    .globl probe_isr_timer
probe_isr_timer:
    lock orl $PENDING_TIMER, probe_pending(%rip)
    push %rax
    mov probe_lapic_eoi_address(%rip), %rax
    movl $0, (%rax)
    pop %rax
    iretq

/*
 * SCI (level-triggered): mask its IOAPIC pin and EOI here (Linux's
 * handle_level_irq); CPL3 unmasks the pin once the event status is clear.
 * Deferring the EOI instead does not work on kvm-pvm: the vector does not stay
 * in service after this iretq, so the still-asserted line re-fires until KVM's
 * IOAPIC storm limit (10000 injections, ~100-400 ms) delays it.
 * Only this stub and boot code (IF=0) use the IOAPIC select register.
 */
    .globl probe_isr_sci
probe_isr_sci:
    lock orl $PENDING_SCI, probe_pending(%rip)
    push %rax
    push %rdx
    mov probe_ioapic_address(%rip), %rax
    movl probe_sci_redirection(%rip), %edx
    movl %edx, (%rax)
    movl probe_sci_redirection_masked(%rip), %edx
    movl %edx, 0x10(%rax)
    mov probe_lapic_eoi_address(%rip), %rax
    movl $0, (%rax)
    pop %rdx
    pop %rax
    iretq

    .globl probe_isr_spurious
probe_isr_spurious:
    iretq

/* Exceptions 0..31 (not 3): push a dummy error code where the CPU does not. */
.macro fault_stub vector, has_error
probe_fault_\vector:
    .if \has_error == 0
    pushq $0
    .endif
    pushq $\vector
    jmp probe_fault_common
.endm

    fault_stub 0, 0
    fault_stub 1, 0
    fault_stub 2, 0
    fault_stub 3, 0
    fault_stub 4, 0
    fault_stub 5, 0
    fault_stub 6, 0
    fault_stub 7, 0
    fault_stub 8, 1
    fault_stub 9, 0
    fault_stub 10, 1
    fault_stub 11, 1
    fault_stub 12, 1
    fault_stub 13, 1
    fault_stub 14, 1
    fault_stub 15, 0
    fault_stub 16, 0
    fault_stub 17, 1
    fault_stub 18, 0
    fault_stub 19, 0
    fault_stub 20, 0
    fault_stub 21, 1
    fault_stub 22, 0
    fault_stub 23, 0
    fault_stub 24, 0
    fault_stub 25, 0
    fault_stub 26, 0
    fault_stub 27, 0
    fault_stub 28, 0
    fault_stub 29, 1
    fault_stub 30, 1
    fault_stub 31, 0

/*
 * Stack: rax 0, vector 8, error 16, rip 24, cs 32, rflags 40, rsp 48, ss 56.
 * A fault at CPL3 is reported at CPL3: record it and "return" into
 * probe_fault_report on a fresh stack. A fault at CPL0 is fatal.
 */
probe_fault_common:
    push %rax
    testb $3, 32(%rsp)
    jz 2f
    mov 8(%rsp), %rax
    mov %rax, probe_fault_info(%rip)
    mov 16(%rsp), %rax
    mov %rax, probe_fault_info+8(%rip)
    mov 24(%rsp), %rax
    mov %rax, probe_fault_info+16(%rip)
    mov %cr2, %rax
    mov %rax, probe_fault_info+24(%rip)
    mov 48(%rsp), %rax
    mov %rax, probe_fault_info+32(%rip)
    lea probe_fault_report(%rip), %rax
    mov %rax, 24(%rsp)
    lea probe_fault_stack_top-8(%rip), %rax
    mov %rax, 48(%rsp)
    pop %rax
    add $16, %rsp
    iretq
    /* CPL0 fault: say so on the UART (no loop worth avoiding now) and stop. */
2:  lea probe_kernel_fault_message(%rip), %rsi
    mov $0x3f8, %dx
3:  lodsb
    test %al, %al
    jz 4f
    outb %al, %dx
    jmp 3b
4:  cli
    hlt
    jmp 4b

    .section .rodata
probe_kernel_fault_message:
    .asciz "PROBE FAULT cpl0\n"

    .balign 8
    .globl probe_fault_stubs
probe_fault_stubs:
    .irp vector, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad probe_fault_\vector
    .endr

    .section .note.GNU-stack, "", @progbits

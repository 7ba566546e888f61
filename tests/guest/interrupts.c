/*
 * Interrupt set-up, done at CPL3: IDT contents, legacy PIC mask, LAPIC and
 * IOAPIC programming through their U-mapped MMIO pages. CPL0 only runs the
 * stubs in isr.S.
 */
#include "probe.h"

#define KERNEL_CS 0x08
#define GATE_INTERRUPT 0x8e      /* present, DPL0, 64-bit interrupt gate */
#define GATE_INTERRUPT_USER 0xee /* present, DPL3: reachable by int3 from CPL3 */

#define LAPIC_ID 0x20
#define LAPIC_TPR 0x80
#define LAPIC_EOI 0xb0
#define LAPIC_SVR 0xf0
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_MASKED (1u << 16)

#define IOAPIC_SELECT 0x00
#define IOAPIC_WINDOW 0x10
#define IOAPIC_REDIRECTION(pin) (0x10 + 2 * (pin))
#define IOAPIC_MASKED (1u << 16)

extern uint8_t probe_idt[256 * 16];
extern const uint64_t probe_fault_stubs[32];
extern uint64_t probe_lapic_eoi_address;
extern uint64_t probe_ioapic_address;
extern uint32_t probe_sci_redirection;
extern uint32_t probe_sci_redirection_masked;
extern void probe_isr_int3(void);
extern void probe_isr_uart(void);
extern void probe_isr_sci(void);
extern void probe_isr_spurious(void);
extern void probe_isr_msi(void);
extern void probe_isr_net(void);
extern void probe_isr_timer(void);

static void idt_set_gate(unsigned vector, uint64_t handler, uint8_t type)
{
    uint8_t *gate = &probe_idt[vector * 16];
    gate[0] = handler & 0xff;
    gate[1] = (handler >> 8) & 0xff;
    gate[2] = KERNEL_CS;
    gate[3] = 0;
    gate[4] = 0; /* no IST */
    gate[5] = type;
    gate[6] = (handler >> 16) & 0xff;
    gate[7] = (handler >> 24) & 0xff;
    gate[8] = (handler >> 32) & 0xff;
    gate[9] = (handler >> 40) & 0xff;
    gate[10] = (handler >> 48) & 0xff;
    gate[11] = (handler >> 56) & 0xff;
    gate[12] = gate[13] = gate[14] = gate[15] = 0;
}

void interrupts_install_idt(void)
{
    for (unsigned vector = 0; vector < 32; vector++)
        idt_set_gate(vector, probe_fault_stubs[vector], GATE_INTERRUPT);
    idt_set_gate(3, (uint64_t)(uintptr_t)probe_isr_int3, GATE_INTERRUPT_USER);
    idt_set_gate(PROBE_VECTOR_UART, (uint64_t)(uintptr_t)probe_isr_uart, GATE_INTERRUPT);
    idt_set_gate(PROBE_VECTOR_SCI, (uint64_t)(uintptr_t)probe_isr_sci, GATE_INTERRUPT);
    idt_set_gate(PROBE_VECTOR_TIMER, (uint64_t)(uintptr_t)probe_isr_timer, GATE_INTERRUPT);
    for (unsigned i = 0; i < PROBE_VECTOR_MSI_COUNT; i++)
        idt_set_gate(PROBE_VECTOR_MSI_FIRST + i, (uint64_t)(uintptr_t)probe_isr_msi,
                     GATE_INTERRUPT);
    for (unsigned i = 0; i < PROBE_VECTOR_NET_COUNT; i++) {
        idt_set_gate(PROBE_VECTOR_NET_FIRST + i, (uint64_t)(uintptr_t)probe_isr_net,
                     GATE_INTERRUPT);
        idt_set_gate(PROBE_VECTOR_NET_CONFIG_FIRST + i, (uint64_t)(uintptr_t)probe_isr_net,
                     GATE_INTERRUPT);
    }
    idt_set_gate(PROBE_VECTOR_SPURIOUS, (uint64_t)(uintptr_t)probe_isr_spurious, GATE_INTERRUPT);
}

static uint64_t lapic_base(void)
{
    return probe_acpi.lapic_address ? probe_acpi.lapic_address : 0xfee00000;
}

uint64_t interrupts_lapic_base(void)
{
    return lapic_base();
}

uint32_t interrupts_boot_apic_id(void)
{
    return mmio_read32(lapic_base() + LAPIC_ID) >> 24;
}

static uint64_t ioapic_base(void)
{
    return probe_acpi.ioapic_address ? probe_acpi.ioapic_address : 0xfec00000;
}

static void ioapic_write(uint32_t reg, uint32_t value)
{
    mmio_write32(ioapic_base() + IOAPIC_SELECT, reg);
    mmio_write32(ioapic_base() + IOAPIC_WINDOW, value);
}

void interrupts_init_controllers(void)
{
    /* The legacy PIC would deliver its IRQs as vectors 8..15 (SeaBIOS) or
     * through LINT0 as ExtINT (KVM default), so mask both. */
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    uint64_t lapic = lapic_base();
    probe_lapic_eoi_address = lapic + LAPIC_EOI;
    mmio_write32(lapic + LAPIC_LVT_LINT0, LAPIC_LVT_MASKED);
    mmio_write32(lapic + LAPIC_TPR, 0);
    mmio_write32(lapic + LAPIC_SVR, 0x100 | PROBE_VECTOR_SPURIOUS);
}

static uint32_t redirection_low(uint8_t vector, bool level, bool active_low)
{
    uint32_t low = vector; /* fixed delivery, physical destination */
    if (active_low)
        low |= 1u << 13;
    if (level)
        low |= 1u << 15;
    return low;
}

void interrupts_route_gsi(uint32_t gsi, uint8_t vector, bool level, bool active_low)
{
    uint32_t pin = gsi - probe_acpi.ioapic_gsi_base;
    uint32_t destination = interrupts_boot_apic_id();
    ioapic_write(IOAPIC_REDIRECTION(pin) + 1, destination << 24);
    ioapic_write(IOAPIC_REDIRECTION(pin), redirection_low(vector, level, active_low));
}

static uint32_t sci_redirection_low;

void interrupts_route_sci(uint32_t gsi, bool level, bool active_low)
{
    probe_ioapic_address = ioapic_base();
    probe_sci_redirection = IOAPIC_REDIRECTION(gsi - probe_acpi.ioapic_gsi_base);
    sci_redirection_low = redirection_low(PROBE_VECTOR_SCI, level, active_low);
    probe_sci_redirection_masked = sci_redirection_low | IOAPIC_MASKED;
    interrupts_route_gsi(gsi, PROBE_VECTOR_SCI, level, active_low);
}

void interrupts_unmask_sci(void)
{
    /* The SCI pin is masked (by its stub), so no SCI can interrupt this pair of writes. */
    ioapic_write(probe_sci_redirection, sci_redirection_low);
}

uint32_t interrupts_take_pending(void)
{
    return __atomic_exchange_n(&probe_pending, 0, __ATOMIC_SEQ_CST) & ~PROBE_PENDING_KICK;
}

void interrupts_idle(void)
{
    __asm__ volatile("int3" ::: "memory");
}

void interrupts_enable(void)
{
    /* The int3 stub returns with IF=1; the kick bit keeps it from halting. */
    __atomic_or_fetch(&probe_pending, PROBE_PENDING_KICK, __ATOMIC_SEQ_CST);
    interrupts_idle();
}

void interrupts_eoi(void)
{
    mmio_write32(probe_lapic_eoi_address, 0);
}

/* ACPI fixed hardware of the "pc" machine, at PIIX4's ports:
 *   PM1a_EVT 0x600: status (u16, write 1 to clear), enable (u16) at 0x602
 *   PM1a_CNT 0x604: u16; SCI_EN always reads 1 (no SMM, ACPI mode is always
 *            on); writing SLP_EN with SLP_TYP = S5 powers the VM off
 *   PM_TMR   0x608: 32-bit counter at 3.579545 MHz (FADT TMR_VAL_EXT)
 *   GPE0     0xafe0: 2 status bytes (write 1 to clear), 2 enable bytes
 * The SCI is IOAPIC GSI 9, level-triggered, active high; it is asserted while
 * (PM1 status & enable) or (GPE0 status & enable) is non-zero.
 *
 * The register logic lives in struct acpi_pm with two hooks (SCI line,
 * power-off) so it can be tested without KVM; acpi_pm_create wires them to
 * vm_set_irq_line / vm_request_shutdown and registers the ports on the VM's
 * io_bus. All functions are thread safe (one mutex per instance). */
#ifndef PLUGVIRT_ACPI_PM_H
#define PLUGVIRT_ACPI_PM_H

#include <stdbool.h>
#include <stdint.h>

#include "pv_error.h"

struct vm;
struct acpi_pm;

/* GPE0 status bits, QEMU's guest ABI (acpi_dev_interface.h). */
#define ACPI_GPE_PCI_HOTPLUG 1
#define ACPI_GPE_CPU_HOTPLUG 2
#define ACPI_GPE0_BITS 16

/* PM1 status/enable bits. */
#define ACPI_PM1_TIMER (1u << 0)
#define ACPI_PM1_GLOBAL (1u << 5)
#define ACPI_PM1_POWER_BUTTON (1u << 8)
#define ACPI_PM1_WAKE (1u << 15)
/* PM1 control bits. */
#define ACPI_PM1_CNT_SCI_EN (1u << 0)
#define ACPI_PM1_CNT_SLP_TYP_SHIFT 10
#define ACPI_PM1_CNT_SLP_TYP_MASK (7u << 10)
#define ACPI_PM1_CNT_SLP_EN (1u << 13)

/* SLP_TYP written to PM1a_CNT for S5 (soft off): PIIX4's value, as in QEMU's _S5. */
#define ACPI_S5_SLEEP_TYPE 0

#define ACPI_PM_TIMER_HZ 3579545ULL

/* Register block layout, relative to VM_PM_BASE. */
#define ACPI_PM1_EVT_OFFSET 0
#define ACPI_PM1_CNT_OFFSET 4
#define ACPI_PM_TMR_OFFSET 8
#define ACPI_PM_BLOCK_LENGTH 12
#define ACPI_GPE0_LENGTH 4

struct acpi_pm_hooks {
    /* Sets the SCI line level; called with the device lock held, only on changes
     * (and once with 0 at reset). */
    void (*set_sci)(void *opaque, bool level);
    /* The guest entered S5 (soft off). Called without the lock held. */
    void (*power_off)(void *opaque);
    void *opaque;
};

/* The device for a real VM: registers its ports on vm->io_bus. */
struct acpi_pm *acpi_pm_create(struct vm *vm, struct pv_error *error);
/* The device without a VM (tests, other machines): no ports registered;
 * drive it with acpi_pm_port_read/acpi_pm_port_write. */
struct acpi_pm *acpi_pm_create_with_hooks(const struct acpi_pm_hooks *hooks,
                                          struct pv_error *error);
/* Unregisters the ports (if any) and frees; vCPUs must not run. */
void acpi_pm_destroy(struct acpi_pm *pm);
/* System reset: status, enable and control registers back to power-on values. */
void acpi_pm_reset(struct acpi_pm *pm);
/* Presses the (fixed-feature) power button: PWRBTN_STS, then the SCI. */
void acpi_pm_press_power_button(struct acpi_pm *pm);
/* Sets GPE0 status bit `bit` (< ACPI_GPE0_BITS) and updates the SCI. */
void acpi_pm_raise_gpe(struct acpi_pm *pm, unsigned bit);

/* Guest port access at absolute port numbers (VM_PM_BASE.. and VM_GPE0_BASE..);
 * `size` is 1, 2 or 4. Unknown ports read as 0. */
uint32_t acpi_pm_port_read(struct acpi_pm *pm, uint16_t port, unsigned size);
void acpi_pm_port_write(struct acpi_pm *pm, uint16_t port, uint32_t value, unsigned size);

#endif

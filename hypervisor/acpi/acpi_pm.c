#include "acpi/acpi_pm.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io_bus.h"
#include "pv_log.h"
#include "vm.h"

#define NANOSECONDS_PER_SECOND 1000000000ULL

struct acpi_pm {
    pthread_mutex_t lock;
    struct acpi_pm_hooks hooks;
    struct vm *vm; /* NULL when created with hooks only */
    bool pm_block_registered;
    bool gpe_block_registered;

    uint16_t pm1_status;
    uint16_t pm1_enable;
    uint16_t pm1_control; /* without SLP_EN, which is write-only */
    uint16_t gpe0_status;
    uint16_t gpe0_enable;
    bool sci_level;
    uint64_t timer_origin_ns;
};

static uint64_t monotonic_ns(void)
{
    struct timespec now;
    /* CLOCK_MONOTONIC cannot fail with a valid pointer. */
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * NANOSECONDS_PER_SECOND + (uint64_t)now.tv_nsec;
}

static uint32_t timer_value(const struct acpi_pm *pm)
{
    uint64_t elapsed = monotonic_ns() - pm->timer_origin_ns;
    /* Split to avoid overflowing 64 bits after ~85 minutes. */
    uint64_t ticks = elapsed / NANOSECONDS_PER_SECOND * ACPI_PM_TIMER_HZ +
                     elapsed % NANOSECONDS_PER_SECOND * ACPI_PM_TIMER_HZ / NANOSECONDS_PER_SECOND;
    return (uint32_t)ticks; /* 32-bit counter (FADT TMR_VAL_EXT) */
}

static void update_sci_locked(struct acpi_pm *pm)
{
    bool level = (pm->pm1_status & pm->pm1_enable) != 0 || (pm->gpe0_status & pm->gpe0_enable) != 0;
    if (level == pm->sci_level)
        return;
    pm->sci_level = level;
    if (pm->hooks.set_sci)
        pm->hooks.set_sci(pm->hooks.opaque, level);
}

static void reset_locked(struct acpi_pm *pm)
{
    pm->pm1_status = 0;
    pm->pm1_enable = 0;
    pm->pm1_control = ACPI_PM1_CNT_SCI_EN;
    pm->gpe0_status = 0;
    pm->gpe0_enable = 0;
    pm->sci_level = false;
    /* Lower the line unconditionally: the interrupt controller may have been
     * reset independently of our idea of its level. */
    if (pm->hooks.set_sci)
        pm->hooks.set_sci(pm->hooks.opaque, false);
}

static uint8_t high_byte(uint16_t value)
{
    return (uint8_t)(value >> 8);
}

static uint8_t read_byte_locked(struct acpi_pm *pm, uint16_t port, uint32_t timer)
{
    if (port >= VM_GPE0_BASE && port < VM_GPE0_BASE + ACPI_GPE0_LENGTH) {
        switch (port - VM_GPE0_BASE) {
        case 0:
            return (uint8_t)pm->gpe0_status;
        case 1:
            return high_byte(pm->gpe0_status);
        case 2:
            return (uint8_t)pm->gpe0_enable;
        default:
            return high_byte(pm->gpe0_enable);
        }
    }
    if (port < VM_PM_BASE || port >= VM_PM_BASE + ACPI_PM_BLOCK_LENGTH)
        return 0;
    unsigned offset = port - VM_PM_BASE;
    uint16_t control = pm->pm1_control | ACPI_PM1_CNT_SCI_EN;
    switch (offset) {
    case ACPI_PM1_EVT_OFFSET:
        return (uint8_t)pm->pm1_status;
    case ACPI_PM1_EVT_OFFSET + 1:
        return high_byte(pm->pm1_status);
    case ACPI_PM1_EVT_OFFSET + 2:
        return (uint8_t)pm->pm1_enable;
    case ACPI_PM1_EVT_OFFSET + 3:
        return high_byte(pm->pm1_enable);
    case ACPI_PM1_CNT_OFFSET:
        return (uint8_t)control;
    case ACPI_PM1_CNT_OFFSET + 1:
        return high_byte(control);
    case ACPI_PM_TMR_OFFSET:
    case ACPI_PM_TMR_OFFSET + 1:
    case ACPI_PM_TMR_OFFSET + 2:
    case ACPI_PM_TMR_OFFSET + 3:
        return (uint8_t)(timer >> (8 * (offset - ACPI_PM_TMR_OFFSET)));
    default:
        return 0; /* 0x606-0x607: unused */
    }
}

static uint16_t with_low_byte(uint16_t value, uint8_t byte)
{
    return (uint16_t)((value & 0xff00) | byte);
}

static uint16_t with_high_byte(uint16_t value, uint8_t byte)
{
    return (uint16_t)((value & 0x00ff) | (byte << 8));
}

/* Returns true when the write asks for soft off (S5). */
static bool write_control_high_locked(struct acpi_pm *pm, uint8_t byte)
{
    uint16_t written = (uint16_t)(byte << 8);
    pm->pm1_control = (uint16_t)((pm->pm1_control & 0x00ff) | (written & ~ACPI_PM1_CNT_SLP_EN));
    if (!(written & ACPI_PM1_CNT_SLP_EN))
        return false;
    unsigned sleep_type = (written & ACPI_PM1_CNT_SLP_TYP_MASK) >> ACPI_PM1_CNT_SLP_TYP_SHIFT;
    if (sleep_type == ACPI_S5_SLEEP_TYPE)
        return true;
    /* The DSDT offers no other sleep state; a guest asking for one gets nothing. */
    pv_log_warning("ACPI: guest requested sleep type %u, which is not supported", sleep_type);
    return false;
}

static bool write_byte_locked(struct acpi_pm *pm, uint16_t port, uint8_t byte)
{
    if (port >= VM_GPE0_BASE && port < VM_GPE0_BASE + ACPI_GPE0_LENGTH) {
        switch (port - VM_GPE0_BASE) {
        case 0:
            pm->gpe0_status &= (uint16_t)~byte;
            break;
        case 1:
            pm->gpe0_status &= (uint16_t) ~(byte << 8);
            break;
        case 2:
            pm->gpe0_enable = with_low_byte(pm->gpe0_enable, byte);
            break;
        default:
            pm->gpe0_enable = with_high_byte(pm->gpe0_enable, byte);
            break;
        }
        return false;
    }
    if (port < VM_PM_BASE || port >= VM_PM_BASE + ACPI_PM_BLOCK_LENGTH)
        return false;
    switch (port - VM_PM_BASE) {
    case ACPI_PM1_EVT_OFFSET:
        pm->pm1_status &= (uint16_t)~byte;
        break;
    case ACPI_PM1_EVT_OFFSET + 1:
        pm->pm1_status &= (uint16_t) ~(byte << 8);
        break;
    case ACPI_PM1_EVT_OFFSET + 2:
        pm->pm1_enable = with_low_byte(pm->pm1_enable, byte);
        break;
    case ACPI_PM1_EVT_OFFSET + 3:
        pm->pm1_enable = with_high_byte(pm->pm1_enable, byte);
        break;
    case ACPI_PM1_CNT_OFFSET:
        pm->pm1_control = with_low_byte(pm->pm1_control, byte) | ACPI_PM1_CNT_SCI_EN;
        break;
    case ACPI_PM1_CNT_OFFSET + 1:
        return write_control_high_locked(pm, byte);
    default:
        break; /* the timer is read-only */
    }
    return false;
}

uint32_t acpi_pm_port_read(struct acpi_pm *pm, uint16_t port, unsigned size)
{
    if (size > 4)
        size = 4;
    uint32_t value = 0;
    pthread_mutex_lock(&pm->lock);
    uint32_t timer = timer_value(pm); /* one sample for the whole access */
    for (unsigned i = 0; i < size; i++)
        value |= (uint32_t)read_byte_locked(pm, (uint16_t)(port + i), timer) << (8 * i);
    pthread_mutex_unlock(&pm->lock);
    return value;
}

void acpi_pm_port_write(struct acpi_pm *pm, uint16_t port, uint32_t value, unsigned size)
{
    if (size > 4)
        size = 4;
    bool power_off = false;
    pthread_mutex_lock(&pm->lock);
    for (unsigned i = 0; i < size; i++)
        power_off |= write_byte_locked(pm, (uint16_t)(port + i), (uint8_t)(value >> (8 * i)));
    update_sci_locked(pm);
    pthread_mutex_unlock(&pm->lock);
    if (power_off && pm->hooks.power_off)
        pm->hooks.power_off(pm->hooks.opaque);
}

void acpi_pm_press_power_button(struct acpi_pm *pm)
{
    pthread_mutex_lock(&pm->lock);
    pm->pm1_status |= ACPI_PM1_POWER_BUTTON;
    update_sci_locked(pm);
    pthread_mutex_unlock(&pm->lock);
}

void acpi_pm_raise_gpe(struct acpi_pm *pm, unsigned bit)
{
    if (bit >= ACPI_GPE0_BITS)
        return;
    pthread_mutex_lock(&pm->lock);
    pm->gpe0_status |= (uint16_t)(1u << bit);
    update_sci_locked(pm);
    pthread_mutex_unlock(&pm->lock);
}

void acpi_pm_reset(struct acpi_pm *pm)
{
    pthread_mutex_lock(&pm->lock);
    reset_locked(pm);
    pthread_mutex_unlock(&pm->lock);
}

struct acpi_pm *acpi_pm_create_with_hooks(const struct acpi_pm_hooks *hooks, struct pv_error *error)
{
    struct acpi_pm *pm = calloc(1, sizeof(*pm));
    if (!pm) {
        pv_error_set(error, -ENOMEM, "ACPI PM: out of memory");
        return NULL;
    }
    int rc = pthread_mutex_init(&pm->lock, NULL);
    if (rc != 0) {
        free(pm);
        pv_error_set_errno(error, -rc, "ACPI PM: cannot create its lock");
        return NULL;
    }
    if (hooks)
        pm->hooks = *hooks;
    pm->timer_origin_ns = monotonic_ns();
    pm->pm1_control = ACPI_PM1_CNT_SCI_EN;
    return pm;
}

/* --- wiring to a VM -------------------------------------------------------- */

static void vm_set_sci(void *opaque, bool level)
{
    int rc = vm_set_irq_line(opaque, VM_SCI_IRQ, level ? 1 : 0);
    if (rc < 0)
        pv_log_warning("ACPI: cannot set the SCI (GSI %d) to %d: %s", VM_SCI_IRQ, level ? 1 : 0,
                       strerror(-rc));
}

static void vm_power_off(void *opaque)
{
    vm_request_shutdown(opaque, true, "guest-shutdown");
}

static void store_value(void *data, uint32_t value, unsigned size)
{
    memset(data, 0, size);
    for (unsigned i = 0; i < size && i < 4; i++)
        ((uint8_t *)data)[i] = (uint8_t)(value >> (8 * i));
}

static uint32_t load_value(const void *data, unsigned size)
{
    uint32_t value = 0;
    for (unsigned i = 0; i < size && i < 4; i++)
        value |= (uint32_t)((const uint8_t *)data)[i] << (8 * i);
    return value;
}

static void pm_block_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
    store_value(data, acpi_pm_port_read(opaque, (uint16_t)(VM_PM_BASE + offset), size), size);
}

static void pm_block_write(void *opaque, uint64_t offset, const void *data, unsigned size)
{
    acpi_pm_port_write(opaque, (uint16_t)(VM_PM_BASE + offset), load_value(data, size), size);
}

static void gpe_block_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
    store_value(data, acpi_pm_port_read(opaque, (uint16_t)(VM_GPE0_BASE + offset), size), size);
}

static void gpe_block_write(void *opaque, uint64_t offset, const void *data, unsigned size)
{
    acpi_pm_port_write(opaque, (uint16_t)(VM_GPE0_BASE + offset), load_value(data, size), size);
}

static const struct io_region_ops pm_block_ops = {pm_block_read, pm_block_write};
static const struct io_region_ops gpe_block_ops = {gpe_block_read, gpe_block_write};

struct acpi_pm *acpi_pm_create(struct vm *vm, struct pv_error *error)
{
    struct acpi_pm_hooks hooks = {
        .set_sci = vm_set_sci,
        .power_off = vm_power_off,
        .opaque = vm,
    };
    struct acpi_pm *pm = acpi_pm_create_with_hooks(&hooks, error);
    if (!pm)
        return NULL;
    pm->vm = vm;
    int rc = io_bus_register(&vm->io_bus, IO_SPACE_PIO, VM_PM_BASE, ACPI_PM_BLOCK_LENGTH,
                             &pm_block_ops, pm, "acpi-pm", error);
    if (rc == 0) {
        pm->pm_block_registered = true;
        rc = io_bus_register(&vm->io_bus, IO_SPACE_PIO, VM_GPE0_BASE, ACPI_GPE0_LENGTH,
                             &gpe_block_ops, pm, "acpi-gpe0", error);
    }
    if (rc == 0) {
        pm->gpe_block_registered = true;
        return pm;
    }
    acpi_pm_destroy(pm);
    return NULL;
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
    if (!pm)
        return;
    if (pm->vm && pm->pm_block_registered)
        io_bus_unregister(&pm->vm->io_bus, IO_SPACE_PIO, VM_PM_BASE);
    if (pm->vm && pm->gpe_block_registered)
        io_bus_unregister(&pm->vm->io_bus, IO_SPACE_PIO, VM_GPE0_BASE);
    pthread_mutex_destroy(&pm->lock);
    free(pm);
}

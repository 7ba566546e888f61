/* 16550A UART model. See serial_8250.h for the threading and flow-control story.
 *
 * Simplifications, each invisible to drivers that work on QEMU:
 * - the transmitter is infinitely fast: THR and the shift register are always
 *   empty (LSR.THRE|TEMT), and every THR write re-arms the THRE interrupt;
 * - the divisor latch and line settings are stored but do not pace anything;
 * - the FIFO character timeout fires at once: whenever 0 < count < trigger
 *   level, IIR reports a timeout (0x0c) instead of waiting four character times. */
#include "chardev/serial_8250.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "chardev/chardev.h"
#include "io_bus.h"
#include "pv_log.h"
#include "vm.h"

#define FIFO_SIZE 16

#define IER_RX_DATA 0x01
#define IER_THR_EMPTY 0x02
#define IER_LINE_STATUS 0x04
#define IER_MODEM_STATUS 0x08
#define IER_MASK 0x0f

#define IIR_NO_INTERRUPT 0x01
#define IIR_MODEM_STATUS 0x00
#define IIR_THR_EMPTY 0x02
#define IIR_RX_DATA 0x04
#define IIR_LINE_STATUS 0x06
#define IIR_RX_TIMEOUT 0x0c
#define IIR_FIFO_ENABLED 0xc0

#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04
#define FCR_TRIGGER_SHIFT 6
#define FCR_TRIGGER_MASK 0xc0

#define LCR_DLAB 0x80

#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOPBACK 0x10
#define MCR_MASK 0x1f

#define LSR_DATA_READY 0x01
#define LSR_OVERRUN 0x02
#define LSR_PARITY 0x04
#define LSR_FRAMING 0x08
#define LSR_BREAK 0x10
#define LSR_THR_EMPTY 0x20
#define LSR_TX_EMPTY 0x40
#define LSR_ERRORS (LSR_OVERRUN | LSR_PARITY | LSR_FRAMING | LSR_BREAK)

#define MSR_DELTA_CTS 0x01
#define MSR_DELTA_DSR 0x02
#define MSR_TRAILING_RI 0x04
#define MSR_DELTA_DCD 0x08
#define MSR_DELTAS 0x0f
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80
/* With nothing connected to the modem lines, report an attached, ready modem (as QEMU). */
#define MSR_IDLE (MSR_CTS | MSR_DSR | MSR_DCD)

#define RESET_DIVISOR 0x0c /* 9600 baud */

static const uint8_t trigger_levels[4] = {1, 4, 8, 14};

struct serial_8250 {
    pthread_mutex_t lock;
    struct vm *vm; /* NULL when detached */
    uint16_t port;
    unsigned irq;
    serial_8250_irq_fn irq_changed;
    void *irq_opaque;
    struct chardev *chardev;

    /* Registers, guarded by lock. */
    uint8_t rx_fifo[FIFO_SIZE];
    unsigned rx_head, rx_count;
    uint8_t ier, fcr, lcr, mcr, lsr, msr, scr;
    uint16_t divisor;
    bool thr_interrupt_pending; /* THRE interrupt latched until IIR read or THR write */
    bool input_throttled;       /* can_receive said 0: the chardev waits for accept_input */
    int irq_level;
};

static bool fifo_enabled(const struct serial_8250 *serial)
{
    return serial->fcr & FCR_ENABLE;
}

/* Bytes the receiver holds at most: the FIFO, or the single holding register. */
static unsigned rx_capacity(const struct serial_8250 *serial)
{
    return fifo_enabled(serial) ? FIFO_SIZE : 1;
}

/* The highest-priority pending interrupt as IIR bits 3:0. */
static uint8_t pending_interrupt(const struct serial_8250 *serial)
{
    if ((serial->ier & IER_LINE_STATUS) && (serial->lsr & LSR_ERRORS))
        return IIR_LINE_STATUS;
    if ((serial->ier & IER_RX_DATA) && serial->rx_count > 0) {
        if (!fifo_enabled(serial))
            return IIR_RX_DATA;
        unsigned trigger = trigger_levels[serial->fcr >> FCR_TRIGGER_SHIFT];
        return serial->rx_count >= trigger ? IIR_RX_DATA : IIR_RX_TIMEOUT;
    }
    if ((serial->ier & IER_THR_EMPTY) && serial->thr_interrupt_pending)
        return IIR_THR_EMPTY;
    if ((serial->ier & IER_MODEM_STATUS) && (serial->msr & MSR_DELTAS))
        return IIR_MODEM_STATUS;
    return IIR_NO_INTERRUPT;
}

/* Drives the interrupt output; called with the lock held after every state change. */
static void update_irq(struct serial_8250 *serial)
{
    /* On the PC, OUT2 gates the UART's interrupt onto the ISA bus; loopback disconnects it. */
    bool gated = (serial->mcr & MCR_OUT2) && !(serial->mcr & MCR_LOOPBACK);
    int level = gated && pending_interrupt(serial) != IIR_NO_INTERRUPT;
    if (level == serial->irq_level)
        return;
    serial->irq_level = level;
    if (serial->irq_changed) {
        serial->irq_changed(serial->irq_opaque, level);
    } else if (serial->vm) {
        int rc = vm_set_irq_line(serial->vm, serial->irq, level);
        if (rc < 0)
            pv_log_warning("serial: cannot set IRQ %u: %s", serial->irq, strerror(-rc));
    }
}

static void rx_clear(struct serial_8250 *serial)
{
    serial->rx_head = serial->rx_count = 0;
    serial->lsr &= ~LSR_DATA_READY;
}

/* Puts one received byte in the FIFO; an overrun loses it, as on hardware. */
static void rx_push(struct serial_8250 *serial, uint8_t byte)
{
    if (serial->rx_count >= rx_capacity(serial)) {
        serial->lsr |= LSR_OVERRUN;
        return;
    }
    serial->rx_fifo[(serial->rx_head + serial->rx_count) % FIFO_SIZE] = byte;
    serial->rx_count++;
    serial->lsr |= LSR_DATA_READY;
}

static uint8_t modem_status_from_mcr(uint8_t mcr)
{
    /* Loopback wiring: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD. */
    uint8_t status = 0;
    if (mcr & MCR_RTS)
        status |= MSR_CTS;
    if (mcr & MCR_DTR)
        status |= MSR_DSR;
    if (mcr & MCR_OUT1)
        status |= MSR_RI;
    if (mcr & MCR_OUT2)
        status |= MSR_DCD;
    return status;
}

static void set_modem_lines(struct serial_8250 *serial, uint8_t lines)
{
    uint8_t old = serial->msr;
    uint8_t changed = old ^ lines;
    uint8_t deltas = old & MSR_DELTAS;
    if (changed & MSR_CTS)
        deltas |= MSR_DELTA_CTS;
    if (changed & MSR_DSR)
        deltas |= MSR_DELTA_DSR;
    if ((old & MSR_RI) && !(lines & MSR_RI))
        deltas |= MSR_TRAILING_RI;
    if (changed & MSR_DCD)
        deltas |= MSR_DELTA_DCD;
    serial->msr = (uint8_t)(lines & ~MSR_DELTAS) | deltas;
}

static void reset_locked(struct serial_8250 *serial)
{
    rx_clear(serial);
    serial->ier = 0;
    serial->fcr = 0;
    serial->lcr = 0;
    serial->mcr = 0;
    serial->lsr = LSR_THR_EMPTY | LSR_TX_EMPTY;
    serial->msr = MSR_IDLE;
    serial->scr = 0;
    serial->divisor = RESET_DIVISOR;
    serial->thr_interrupt_pending = false;
    serial->input_throttled = false; /* the caller lets the chardev resume */
    update_irq(serial);
}

/* Returns true when the receiver has room again after being full, so the
 * caller (without the lock) lets the chardev resume input. */
static bool read_locked(struct serial_8250 *serial, unsigned offset, uint8_t *value)
{
    bool room_freed = false;
    switch (offset) {
    case SERIAL_8250_RBR:
        if (serial->lcr & LCR_DLAB) {
            *value = (uint8_t)serial->divisor;
            break;
        }
        *value = 0;
        if (serial->rx_count > 0) {
            *value = serial->rx_fifo[serial->rx_head];
            serial->rx_head = (serial->rx_head + 1) % FIFO_SIZE;
            serial->rx_count--;
            /* Resume at half full: few main-loop wake-ups, and the FIFO refills while
             * the guest is still reading. */
            if (serial->input_throttled && serial->rx_count <= rx_capacity(serial) / 2) {
                serial->input_throttled = false;
                room_freed = true;
            }
        }
        if (serial->rx_count == 0)
            serial->lsr &= ~LSR_DATA_READY;
        break;
    case SERIAL_8250_IER:
        *value = (serial->lcr & LCR_DLAB) ? (uint8_t)(serial->divisor >> 8) : serial->ier;
        break;
    case SERIAL_8250_IIR: {
        uint8_t interrupt = pending_interrupt(serial);
        *value = interrupt | (fifo_enabled(serial) ? IIR_FIFO_ENABLED : 0);
        /* Reading IIR acknowledges a THRE interrupt it reports. */
        if (interrupt == IIR_THR_EMPTY)
            serial->thr_interrupt_pending = false;
        break;
    }
    case SERIAL_8250_LCR:
        *value = serial->lcr;
        break;
    case SERIAL_8250_MCR:
        *value = serial->mcr;
        break;
    case SERIAL_8250_LSR:
        *value = serial->lsr;
        serial->lsr &= ~LSR_ERRORS; /* error bits clear on read */
        break;
    case SERIAL_8250_MSR:
        *value = serial->msr;
        serial->msr &= ~MSR_DELTAS;
        break;
    default:
        *value = serial->scr;
        break;
    }
    update_irq(serial);
    return room_freed;
}

static bool write_locked(struct serial_8250 *serial, unsigned offset, uint8_t value)
{
    bool room_freed = false;
    switch (offset) {
    case SERIAL_8250_RBR:
        if (serial->lcr & LCR_DLAB) {
            serial->divisor = (uint16_t)((serial->divisor & 0xff00) | value);
            break;
        }
        serial->thr_interrupt_pending = false;
        update_irq(serial); /* a new THRE interrupt below must be a new edge */
        if (serial->mcr & MCR_LOOPBACK)
            rx_push(serial, value);
        else if (serial->chardev)
            chardev_write(serial->chardev, &value, 1);
        serial->thr_interrupt_pending = true; /* transmitted at once */
        break;
    case SERIAL_8250_IER: {
        if (serial->lcr & LCR_DLAB) {
            serial->divisor = (uint16_t)((serial->divisor & 0x00ff) | (value << 8));
            break;
        }
        uint8_t enabled = value & IER_MASK & ~serial->ier;
        serial->ier = value & IER_MASK;
        /* Enabling the THRE interrupt while THR is empty raises it at once. */
        if (enabled & IER_THR_EMPTY)
            serial->thr_interrupt_pending = true;
        if (!(serial->ier & IER_THR_EMPTY))
            serial->thr_interrupt_pending = false;
        break;
    }
    case SERIAL_8250_IIR: { /* FCR */
        uint8_t old = serial->fcr;
        serial->fcr = (value & FCR_ENABLE) ? value & (FCR_ENABLE | FCR_TRIGGER_MASK) : 0;
        bool fifo_switched = (old ^ serial->fcr) & FCR_ENABLE;
        /* Switching the FIFOs on or off empties them, as does the clear bit. */
        if (fifo_switched || ((value & FCR_ENABLE) && (value & FCR_CLEAR_RX))) {
            rx_clear(serial);
            room_freed = true;
        }
        break;
    }
    case SERIAL_8250_LCR:
        serial->lcr = value;
        break;
    case SERIAL_8250_MCR: {
        /* Leaving loopback reconnects the line: input held back meanwhile may flow again. */
        room_freed = (serial->mcr & MCR_LOOPBACK) && !(value & MCR_LOOPBACK);
        serial->mcr = value & MCR_MASK;
        set_modem_lines(serial, (serial->mcr & MCR_LOOPBACK) ? modem_status_from_mcr(serial->mcr)
                                                             : MSR_IDLE);
        break;
    }
    case SERIAL_8250_LSR:
    case SERIAL_8250_MSR:
        break; /* read-only (factory test writes are ignored) */
    default:
        serial->scr = value;
        break;
    }
    update_irq(serial);
    return room_freed;
}

uint8_t serial_8250_read_register(struct serial_8250 *serial, unsigned offset)
{
    uint8_t value;
    pthread_mutex_lock(&serial->lock);
    bool room_freed = read_locked(serial, offset & 7, &value);
    if (room_freed)
        serial->input_throttled = false;
    struct chardev *chardev = serial->chardev;
    pthread_mutex_unlock(&serial->lock);
    if (room_freed && chardev)
        chardev_accept_input(chardev);
    return value;
}

void serial_8250_write_register(struct serial_8250 *serial, unsigned offset, uint8_t value)
{
    pthread_mutex_lock(&serial->lock);
    bool room_freed = write_locked(serial, offset & 7, value);
    if (room_freed)
        serial->input_throttled = false;
    struct chardev *chardev = serial->chardev;
    pthread_mutex_unlock(&serial->lock);
    if (room_freed && chardev)
        chardev_accept_input(chardev);
}

/* Wider accesses act on consecutive registers, as the ISA bus splits them. */
static void serial_io_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
    uint8_t *bytes = data;
    for (unsigned i = 0; i < size; i++)
        bytes[i] = offset + i < 8 ? serial_8250_read_register(opaque, (unsigned)offset + i) : 0xff;
}

static void serial_io_write(void *opaque, uint64_t offset, const void *data, unsigned size)
{
    const uint8_t *bytes = data;
    for (unsigned i = 0; i < size && offset + i < 8; i++)
        serial_8250_write_register(opaque, (unsigned)offset + i, bytes[i]);
}

static const struct io_region_ops serial_io_ops = {serial_io_read, serial_io_write};

/* ---- chardev frontend (main thread) ---- */

static size_t serial_can_receive(void *opaque)
{
    struct serial_8250 *serial = opaque;
    pthread_mutex_lock(&serial->lock);
    /* In loopback the line is disconnected from the outside world. */
    size_t room = (serial->mcr & MCR_LOOPBACK) ? 0 : rx_capacity(serial) - serial->rx_count;
    if (room == 0)
        serial->input_throttled = true;
    pthread_mutex_unlock(&serial->lock);
    return room;
}

static void serial_receive(void *opaque, const uint8_t *data, size_t length)
{
    struct serial_8250 *serial = opaque;
    pthread_mutex_lock(&serial->lock);
    if (!(serial->mcr & MCR_LOOPBACK)) {
        for (size_t i = 0; i < length; i++)
            rx_push(serial, data[i]);
    }
    update_irq(serial);
    pthread_mutex_unlock(&serial->lock);
}

static const struct chardev_frontend_ops serial_frontend_ops = {
    .receive = serial_receive,
    .can_receive = serial_can_receive,
    .opened = NULL,
};

/* ---- lifetime ---- */

static struct serial_8250 *serial_alloc(struct chardev *chardev, struct pv_error *error)
{
    struct serial_8250 *serial = calloc(1, sizeof(*serial));
    if (!serial) {
        pv_error_set(error, -ENOMEM, "out of memory");
        return NULL;
    }
    int rc = pthread_mutex_init(&serial->lock, NULL);
    if (rc != 0) {
        pv_error_set_errno(error, -rc, "serial: cannot create a mutex");
        free(serial);
        return NULL;
    }
    reset_locked(serial);
    if (chardev) {
        if (chardev_attach_frontend(chardev, &serial_frontend_ops, serial, error) < 0) {
            pv_error_prefix(error, "serial");
            pthread_mutex_destroy(&serial->lock);
            free(serial);
            return NULL;
        }
        serial->chardev = chardev;
    }
    return serial;
}

struct serial_8250 *serial_8250_create_detached(serial_8250_irq_fn irq_changed, void *opaque,
                                                struct chardev *chardev, struct pv_error *error)
{
    struct serial_8250 *serial = serial_alloc(chardev, error);
    if (serial) {
        serial->irq_changed = irq_changed;
        serial->irq_opaque = opaque;
    }
    return serial;
}

struct serial_8250 *serial_8250_create(struct vm *vm, uint16_t port, unsigned irq,
                                       struct chardev *chardev, struct pv_error *error)
{
    struct serial_8250 *serial = serial_alloc(chardev, error);
    if (!serial)
        return NULL;
    serial->vm = vm;
    serial->port = port;
    serial->irq = irq;
    int rc = io_bus_register(&vm->io_bus, IO_SPACE_PIO, port, 8, &serial_io_ops, serial, "serial",
                             error);
    if (rc < 0) {
        serial->vm = NULL;
        serial_8250_destroy(serial);
        return NULL;
    }
    return serial;
}

void serial_8250_reset(struct serial_8250 *serial)
{
    pthread_mutex_lock(&serial->lock);
    reset_locked(serial);
    struct chardev *chardev = serial->chardev;
    pthread_mutex_unlock(&serial->lock);
    if (chardev)
        chardev_accept_input(chardev);
}

void serial_8250_destroy(struct serial_8250 *serial)
{
    if (!serial)
        return;
    if (serial->vm) {
        io_bus_unregister(&serial->vm->io_bus, IO_SPACE_PIO, serial->port);
        pthread_mutex_lock(&serial->lock);
        if (serial->irq_level)
            vm_set_irq_line(serial->vm, serial->irq, 0);
        pthread_mutex_unlock(&serial->lock);
    }
    if (serial->chardev)
        chardev_detach_frontend(serial->chardev, serial);
    pthread_mutex_destroy(&serial->lock);
    free(serial);
}

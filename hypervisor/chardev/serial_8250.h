/* 16550A UART (8250 family) on the ISA I/O bus, as the PC's COM1.
 *
 * Register accesses arrive on vCPU threads, received bytes on the main
 * thread; one mutex per UART guards the state. Transmitted bytes go straight
 * to the chardev (the transmitter is always empty). The 16-byte receive FIFO
 * is filled only as far as the chardev's flow control allows, so a slow
 * guest never loses input to an overrun. The interrupt output (gated by
 * MCR.OUT2, as on the PC) drives an ISA IRQ line level, changed only on
 * transitions so the edge-triggered IOAPIC pin sees each new interrupt. */
#ifndef PLUGVIRT_SERIAL_8250_H
#define PLUGVIRT_SERIAL_8250_H

#include <stdint.h>

#include "pv_error.h"

struct vm;
struct chardev;
struct serial_8250;

/* Register offsets from the base port. */
#define SERIAL_8250_RBR 0 /* read: receive buffer; write: THR; DLL with LCR.DLAB */
#define SERIAL_8250_IER 1 /* DLM with LCR.DLAB */
#define SERIAL_8250_IIR 2 /* read: interrupt identification; write: FCR */
#define SERIAL_8250_LCR 3
#define SERIAL_8250_MCR 4
#define SERIAL_8250_LSR 5
#define SERIAL_8250_MSR 6
#define SERIAL_8250_SCR 7

/* Registers the UART at `port` (8 ports) on vm->io_bus, interrupting on ISA `irq`.
 * `chardev` may be NULL: output is dropped and nothing is received. */
struct serial_8250 *serial_8250_create(struct vm *vm, uint16_t port, unsigned irq,
                                       struct chardev *chardev, struct pv_error *error);
/* Back to power-on state (system_reset); main thread, vCPUs quiesced. */
void serial_8250_reset(struct serial_8250 *serial);
/* Unregisters and frees; the vCPUs must be stopped or quiesced. */
void serial_8250_destroy(struct serial_8250 *serial);

/* The UART without a VM, for unit tests and other buses: the interrupt output
 * is reported to `irq_changed` (called with the UART lock held, on level
 * changes only), and registers are accessed with the functions below. */
typedef void (*serial_8250_irq_fn)(void *opaque, int level);
struct serial_8250 *serial_8250_create_detached(serial_8250_irq_fn irq_changed, void *opaque,
                                                struct chardev *chardev, struct pv_error *error);
uint8_t serial_8250_read_register(struct serial_8250 *serial, unsigned offset);
void serial_8250_write_register(struct serial_8250 *serial, unsigned offset, uint8_t value);

#endif

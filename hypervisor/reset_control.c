#include "reset_control.h"

#include <stdint.h>

#include "vm.h"

/* The PIIX reset control register 0xcf9 lies inside the PCI host bridge's
 * 0xcf8-0xcff range, so the bus handles it (pci.c). */
#define KEYBOARD_COMMAND_PORT 0x64
#define KEYBOARD_PULSE_RESET 0xfe

static void keyboard_command_write(void *opaque, uint64_t offset, const void *data, unsigned size)
{
    (void)offset;
    (void)size;
    if (*(const uint8_t *)data == KEYBOARD_PULSE_RESET)
        vm_request_guest_reset(opaque);
}

static void keyboard_status_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
    (void)opaque;
    (void)offset;
    /* Input and output buffers empty: lets a guest's "wait for input buffer empty" loop end. */
    for (unsigned i = 0; i < size; i++)
        ((uint8_t *)data)[i] = 0;
}

static const struct io_region_ops keyboard_command_ops = {
    .read = keyboard_status_read,
    .write = keyboard_command_write,
};

int reset_control_register(struct vm *vm, struct pv_error *error)
{
    return io_bus_register(&vm->io_bus, IO_SPACE_PIO, KEYBOARD_COMMAND_PORT, 1,
                           &keyboard_command_ops, vm, "i8042-command", error);
}

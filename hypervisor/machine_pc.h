/* The "pc" machine: puts the VM's fixed devices together (ACPI PM, UART,
 * reset control), writes the ACPI tables and loads the kernel. */
#ifndef PLUGVIRT_MACHINE_PC_H
#define PLUGVIRT_MACHINE_PC_H

#include "pv_error.h"

struct vm;
struct chardev;

struct machine_pc {
    struct vm *vm;
    struct chardev *serial_chardev; /* not owned */
};

/* `serial_chardev` may be NULL (no serial backend). */
int machine_pc_init(struct machine_pc *machine, struct vm *vm, struct chardev *serial_chardev,
                    struct pv_error *error);
void machine_pc_destroy(struct machine_pc *machine);

#endif

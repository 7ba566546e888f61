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

/* The command line's netdevs (-netdev, -net tap) into vm->net_layer; machine_pc_init calls
 * it before the devices are created (a NIC's netdev= names one). Exposed for tests. */
int machine_pc_create_netdevs(struct vm *vm, struct pv_error *error);

#endif

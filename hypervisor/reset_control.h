/* The keyboard controller's pulse-reset command (0xfe to port 0x64). The other
 * PC reset trigger, the PIIX reset control register 0xcf9 (the FADT
 * RESET_REG), lies inside the PCI host bridge's ports and lives in pci.c. */
#ifndef PLUGVIRT_RESET_CONTROL_H
#define PLUGVIRT_RESET_CONTROL_H

#include "pv_error.h"

struct vm;

int reset_control_register(struct vm *vm, struct pv_error *error);

#endif

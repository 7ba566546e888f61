/* QEMU's modern ACPI CPU hotplug register block (docs/specs/acpi_cpu_hotplug.rst),
 * 12 bytes at VM_CPU_HOTPLUG_BASE, which the DSDT's \_SB.CPUS methods read.
 *
 * Until vCPU hotplug exists this backs the block for the CPUs of -smp: the
 * first `present` of `possible` (maxcpus) CPUs read as enabled, the others as
 * absent, and no CPU ever has an insert or remove event. The guest can select
 * a CPU and issue commands, but cannot change what is present: eject requests
 * are refused (ignored, logged once). Without this device the ports read as
 * all ones and a guest saw every possible CPU as present.
 *
 * Registers (offset: read / write):
 *   0x0 (4): command data 2 (0 here: APIC IDs fit 32 bits) / CPU selector
 *   0x4 (1): flags: bit 0 enabled, 1 insert event, 2 remove event / control
 *   0x5 (1): reserved / command (0 next CPU with event, 1 OST event,
 *            2 OST status, 3 CPU ID)
 *   0x8 (4): command data (selector, or the APIC ID) / OST event or status
 * A selector >= possible reads 0 everywhere and ignores writes but a new selector.
 * All functions are thread safe. */
#ifndef PLUGVIRT_CPU_HOTPLUG_H
#define PLUGVIRT_CPU_HOTPLUG_H

#include <stdint.h>

#include "io_bus.h"
#include "pv_error.h"

#define CPU_HOTPLUG_LENGTH 12
#define CPU_HOTPLUG_SELECTOR 0x0
#define CPU_HOTPLUG_FLAGS 0x4
#define CPU_HOTPLUG_COMMAND 0x5
#define CPU_HOTPLUG_DATA 0x8

#define CPU_HOTPLUG_FLAG_ENABLED 0x01
#define CPU_HOTPLUG_FLAG_INSERT 0x02
#define CPU_HOTPLUG_FLAG_REMOVE 0x04
#define CPU_HOTPLUG_FLAG_EJECT 0x08
#define CPU_HOTPLUG_FLAG_FIRMWARE_EJECT 0x10

#define CPU_HOTPLUG_CMD_NEXT_EVENT 0
#define CPU_HOTPLUG_CMD_OST_EVENT 1
#define CPU_HOTPLUG_CMD_OST_STATUS 2
#define CPU_HOTPLUG_CMD_CPU_ID 3

struct cpu_hotplug;

/* CPUs [0, present) are enabled, [present, possible) are not. Registers the
 * block at `base` on `io_bus`; NULL io_bus: no ports (tests use the functions
 * below). */
struct cpu_hotplug *cpu_hotplug_create(struct io_bus *io_bus, uint16_t base, unsigned present,
                                       unsigned possible, struct pv_error *error);
/* Unregisters the ports (if any) and frees; vCPUs must not run. */
void cpu_hotplug_destroy(struct cpu_hotplug *hotplug);

/* Guest access at `offset` in the block, `size` 1, 2 or 4 bytes. */
uint32_t cpu_hotplug_read(struct cpu_hotplug *hotplug, unsigned offset, unsigned size);
void cpu_hotplug_write(struct cpu_hotplug *hotplug, unsigned offset, uint32_t value, unsigned size);

#endif

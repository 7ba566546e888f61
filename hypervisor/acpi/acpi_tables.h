/* ACPI tables for the "pc" machine: RSDP, XSDT, RSDT, FADT, FACS, MADT and a
 * DSDT generated with the AML builder.
 *
 * The DSDT follows QEMU's PIIX4 guest ABI so the same guest logic works on
 * both VMMs: PCI hotplug (QEMU's acpi_pci_hotplug: \_SB.PCI0.PCNT on GPE.1)
 * and modern CPU hotplug (\_SB.CPUS.CSCN on GPE.2). Slot 0 is the host
 * bridge; unlike QEMU (slot 1 = PIIX3 ISA bridge) we have no ISA bridge, so
 * slots 1..31 (S01..S1F) are all hotpluggable. */
#ifndef PLUGVIRT_ACPI_TABLES_H
#define PLUGVIRT_ACPI_TABLES_H

#include <stddef.h>
#include <stdint.h>

#include "pv_error.h"

/* FADT RESET_REG: the PIIX reset control register (reset_control.c). */
#define ACPI_RESET_PORT 0xcf9
#define ACPI_RESET_VALUE 0x06
#define ACPI_PCI_HOTPLUG_FIRST_SLOT 1
#define ACPI_PCI_HOTPLUG_LAST_SLOT 31
/* CPUs are named C000.. with 3 hex digits and 8-bit APIC IDs (0xff is broadcast). */
#define ACPI_MAX_CPUS 255

#define ACPI_TABLES_MAX 8

struct acpi_tables_config {
    unsigned cpus;     /* present at boot: 0..cpus-1 */
    unsigned max_cpus; /* possible (hotpluggable up to this); 0 means == cpus */
};

struct acpi_table_location {
    char signature[5]; /* "RSDP" stands for the "RSD PTR " structure */
    size_t offset;     /* in the buffer given to acpi_tables_build */
    size_t length;
    uint64_t gpa;
};

struct acpi_tables_layout {
    struct acpi_table_location tables[ACPI_TABLES_MAX];
    unsigned count;
    size_t used; /* bytes of the buffer the tables occupy */
};

/* Builds all tables into buffer (which the guest sees at buffer_gpa, below
 * 4 GiB). The RSDP is at offset 0; the rest of the buffer is not touched past
 * layout->used. */
int acpi_tables_build(const struct acpi_tables_config *config, uint8_t *buffer, size_t size,
                      uint64_t buffer_gpa, struct acpi_tables_layout *layout,
                      struct pv_error *error);

/* Writes each table to DIRECTORY/<signature in lower case>.dat (rsdp.dat,
 * facs.dat, facp.dat, xsdt.dat, rsdt.dat, dsdt.dat, apic.dat) as `iasl -d`
 * and acpiexec read them. Each file appears complete (written, then renamed);
 * dsdt.dat and apic.dat come last. */
int acpi_tables_dump(const uint8_t *buffer, const struct acpi_tables_layout *layout,
                     const char *directory, struct pv_error *error);

/* The location of the table with this signature, or NULL. */
const struct acpi_table_location *acpi_tables_find(const struct acpi_tables_layout *layout,
                                                   const char *signature);

#endif

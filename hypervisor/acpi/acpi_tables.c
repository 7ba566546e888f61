#include "acpi/acpi_tables.h"
#include "acpi/acpi_pm.h"
#include "x86/cpu_hotplug.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acpi/aml.h"
#include "pci/pci.h"
#include "vm.h"

#define OEM_ID "PLUGVT"
#define OEM_TABLE_ID "PVPC    "
#define OEM_REVISION 1
#define CREATOR_ID "PVMM"
#define CREATOR_REVISION 1

#define HEADER_SIZE 36
#define RSDP_SIZE 36
#define FACS_SIZE 64
#define FADT_SIZE 244 /* revision 3 (ACPI 2.0 layout, what QEMU's pc machine uses) */
#define FADT_REVISION 3
#define MADT_REVISION 5 /* ≥5: Linux honours Online Capable on disabled LAPICs */
#define DSDT_REVISION 2 /* 64-bit integers */

/* FADT field offsets (ACPI 6.x table 5.9). */
#define FADT_FIRMWARE_CTRL 36
#define FADT_DSDT 40
#define FADT_PREFERRED_PM_PROFILE 45
#define FADT_SCI_INT 46
#define FADT_SMI_CMD 48
#define FADT_PM1A_EVT_BLK 56
#define FADT_PM1A_CNT_BLK 64
#define FADT_PM_TMR_BLK 76
#define FADT_GPE0_BLK 80
#define FADT_PM1_EVT_LEN 88
#define FADT_PM1_CNT_LEN 89
#define FADT_PM_TMR_LEN 91
#define FADT_GPE0_BLK_LEN 92
#define FADT_P_LVL2_LAT 96
#define FADT_P_LVL3_LAT 98
#define FADT_IAPC_BOOT_ARCH 109
#define FADT_FLAGS 112
#define FADT_RESET_REG 116
#define FADT_RESET_VALUE 128
#define FADT_X_FIRMWARE_CTRL 132
#define FADT_X_DSDT 140
#define FADT_X_PM1A_EVT_BLK 148
#define FADT_X_PM1A_CNT_BLK 172
#define FADT_X_PM_TMR_BLK 208
#define FADT_X_GPE0_BLK 220

#define FADT_FLAG_WBINVD (1u << 0)
#define FADT_FLAG_PROC_C1 (1u << 2)
#define FADT_FLAG_SLP_BUTTON (1u << 5) /* set: no fixed-feature sleep button */
#define FADT_FLAG_FIX_RTC (1u << 6)    /* set: no RTC wake status in PM1 */
#define FADT_FLAG_TMR_VAL_EXT (1u << 8)
#define FADT_FLAG_RESET_REG_SUP (1u << 10)
#define FADT_BOOT_ARCH_VGA_NOT_PRESENT (1u << 2)
#define FADT_PM_PROFILE_UNSPECIFIED 0
#define FADT_C2_NOT_SUPPORTED 101  /* latency > 100 µs */
#define FADT_C3_NOT_SUPPORTED 1001 /* latency > 1000 µs */

#define GAS_SIZE 12
#define GAS_SYSTEM_IO 1
#define GAS_ACCESS_BYTE 1

#define PM1_EVT_LENGTH 4
#define PM1_CNT_LENGTH 2
#define PM_TMR_LENGTH 4
#define GPE0_LENGTH 4
#define PM1A_EVT_PORT VM_PM_BASE
#define PM1A_CNT_PORT (VM_PM_BASE + 4)
#define PM_TMR_PORT (VM_PM_BASE + 8)
#define PCI_HOTPLUG_LENGTH 0x18

/* MADT. */
#define MADT_FLAG_PCAT_COMPAT 1 /* the in-kernel irqchip has 8259s too */
#define MADT_TYPE_LAPIC 0
#define MADT_TYPE_IOAPIC 1
#define MADT_TYPE_OVERRIDE 2
#define MADT_TYPE_LAPIC_NMI 4
#define MADT_LAPIC_ENABLED 1
#define MADT_LAPIC_ONLINE_CAPABLE 2
#define MADT_IOAPIC_ID 0
#define MADT_INTI_ACTIVE_HIGH 0x1
#define MADT_INTI_LEVEL 0xc
#define MADT_ALL_PROCESSORS 0xff

#define TABLE_ALIGNMENT 16
#define FACS_ALIGNMENT 64

struct table_area {
    uint8_t *buffer;
    size_t size;
    size_t used;
    uint64_t gpa;
    struct acpi_tables_layout *layout;
};

static void put16(uint8_t *p, uint16_t value)
{
    p[0] = (uint8_t)value;
    p[1] = (uint8_t)(value >> 8);
}

static void put32(uint8_t *p, uint32_t value)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(value >> (8 * i));
}

static void put64(uint8_t *p, uint64_t value)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(value >> (8 * i));
}

static uint8_t checksum_of(const uint8_t *data, size_t length)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < length; i++)
        sum += data[i];
    return (uint8_t)(0 - sum);
}

/* Reserves `length` bytes for a table; returns its pointer or NULL (-ENOSPC). */
static uint8_t *area_allocate(struct table_area *area, const char *signature, size_t length,
                              size_t alignment, struct pv_error *error)
{
    size_t offset = (area->used + alignment - 1) & ~(alignment - 1);
    if (offset > area->size || length > area->size - offset) {
        pv_error_set(error, -ENOSPC, "ACPI tables: %s does not fit in %zu bytes", signature,
                     area->size);
        return NULL;
    }
    if (area->layout->count == ACPI_TABLES_MAX) {
        pv_error_set(error, -ENOSPC, "ACPI tables: too many tables");
        return NULL;
    }
    struct acpi_table_location *location = &area->layout->tables[area->layout->count++];
    snprintf(location->signature, sizeof(location->signature), "%s", signature);
    location->offset = offset;
    location->length = length;
    location->gpa = area->gpa + offset;
    area->used = offset + length;
    area->layout->used = area->used;
    memset(area->buffer + offset, 0, length);
    return area->buffer + offset;
}

static uint64_t area_gpa(const struct table_area *area, const uint8_t *table)
{
    return area->gpa + (uint64_t)(table - area->buffer);
}

/* Standard 36-byte header; the checksum is set by finish_table. */
static void write_header(uint8_t *table, const char *signature, uint32_t length, uint8_t revision)
{
    memcpy(table, signature, 4);
    put32(table + 4, length);
    table[8] = revision;
    memcpy(table + 10, OEM_ID, 6);
    memcpy(table + 16, OEM_TABLE_ID, 8);
    put32(table + 24, OEM_REVISION);
    memcpy(table + 28, CREATOR_ID, 4);
    put32(table + 32, CREATOR_REVISION);
}

static void finish_table(uint8_t *table, uint32_t length)
{
    table[9] = 0;
    table[9] = checksum_of(table, length);
}

static void write_gas_io(uint8_t *gas, unsigned bit_width, uint8_t access_size, uint64_t port)
{
    gas[0] = GAS_SYSTEM_IO;
    gas[1] = (uint8_t)bit_width;
    gas[2] = 0;
    gas[3] = access_size;
    put64(gas + 4, port);
}

/* --- DSDT ------------------------------------------------------------------ */

static void build_pci_host_bridge_resources(struct aml_builder *b)
{
    aml_name_declaration(b, "_CRS");
    aml_begin_resource_template(b);
    aml_resource_word_bus_number(b, 0x00, 0xff);
    aml_resource_io(b, 0x0cf8, 0x0cf8, 1, 8);
    aml_resource_dword_io(b, 0x0000, 0x0cf7);
    aml_resource_dword_io(b, 0x0d00, 0xffff);
    aml_resource_dword_memory(b, (uint32_t)VM_PCI_HOLE_START, (uint32_t)(VM_PCI_HOLE_END - 1), 0,
                              1);
    aml_end(b);
}

/* A PNP0A06 device that reserves an I/O range for a hotplug controller. */
static void build_io_reservation(struct aml_builder *b, const char *uid, uint16_t port,
                                 uint8_t length)
{
    aml_name_eisa_id(b, "_HID", "PNP0A06");
    aml_name_text(b, "_UID", uid);
    aml_name_declaration(b, "_CRS");
    aml_begin_resource_template(b);
    aml_resource_io(b, port, port, 1, length);
    aml_end(b);
}

/* QEMU's ACPI PCI hotplug registers (docs/specs/acpi_pci_hotplug.rst) and helpers. */
static void build_pci_hotplug(struct aml_builder *b)
{
    aml_begin_device(b, "PHPR");
    build_io_reservation(b, "PCI Hotplug resources", VM_PCI_HOTPLUG_BASE, PCI_HOTPLUG_LENGTH);
    aml_name_integer(b, "_STA", 0x0b);
    aml_end(b);

    unsigned dword_fields = AML_FIELD_DWORD_ACCESS | AML_FIELD_WRITE_AS_ZEROS;
    aml_operation_region(b, "PCST", AML_REGION_SYSTEM_IO, VM_PCI_HOTPLUG_BASE, 8);
    aml_begin_field(b, "PCST", dword_fields);
    aml_field_entry(b, "PCIU", 32);
    aml_field_entry(b, "PCID", 32);
    aml_end(b);
    aml_operation_region(b, "SEJ", AML_REGION_SYSTEM_IO, VM_PCI_HOTPLUG_BASE + 8, 4);
    aml_begin_field(b, "SEJ", dword_fields);
    aml_field_entry(b, "B0EJ", 32);
    aml_end(b);
    aml_operation_region(b, "BNMR", AML_REGION_SYSTEM_IO, VM_PCI_HOTPLUG_BASE + 0x10, 8);
    aml_begin_field(b, "BNMR", dword_fields);
    aml_field_entry(b, "BNUM", 32);
    aml_field_entry(b, "PIDX", 32);
    aml_end(b);
    aml_mutex(b, "BLCK", 0);

    /* PCEJ(bsel, slot): select the bus, then write the slot's bit to B0EJ. */
    aml_begin_method(b, "PCEJ", 2, 0);
    aml_acquire(b, "BLCK", AML_WAIT_FOREVER);
    aml_store(b), aml_arg(b, 0), aml_name(b, "BNUM");
    aml_shift_left(b), aml_integer(b, 1), aml_arg(b, 1), aml_name(b, "B0EJ");
    aml_release(b, "BLCK");
    aml_return(b), aml_integer(b, 0);
    aml_end(b);

    aml_name_integer(b, "BSEL", 0);
    for (unsigned slot = ACPI_PCI_HOTPLUG_FIRST_SLOT; slot <= ACPI_PCI_HOTPLUG_LAST_SLOT; slot++) {
        char name[8];
        snprintf(name, sizeof(name), "S%02X", slot);
        aml_begin_device(b, name);
        aml_name_integer(b, "_ADR", (uint64_t)slot << 16);
        aml_name_integer(b, "_SUN", slot);
        aml_begin_method(b, "_EJ0", 1, 0);
        aml_call(b, "PCEJ"), aml_name(b, "BSEL"), aml_name(b, "_SUN");
        aml_end(b);
        aml_end(b);
    }

    /* DVNT(bitmap, event): Notify(Sxx, event) for every slot bit set. */
    aml_begin_method(b, "DVNT", 2, 0);
    for (unsigned slot = ACPI_PCI_HOTPLUG_FIRST_SLOT; slot <= ACPI_PCI_HOTPLUG_LAST_SLOT; slot++) {
        char name[8];
        snprintf(name, sizeof(name), "S%02X", slot);
        aml_begin_if(b);
        aml_and(b), aml_arg(b, 0), aml_integer(b, 1ull << slot), aml_null_target(b);
        aml_notify(b), aml_name(b, name), aml_arg(b, 1);
        aml_end(b);
    }
    aml_end(b);

    /* PCNT: report insertions (Device Check) and removal requests (Eject Request). */
    aml_begin_method(b, "PCNT", 0, 0);
    aml_store(b), aml_integer(b, 0), aml_name(b, "BNUM");
    aml_call(b, "DVNT"), aml_name(b, "PCIU"), aml_integer(b, AML_NOTIFY_DEVICE_CHECK);
    aml_call(b, "DVNT"), aml_name(b, "PCID"), aml_integer(b, AML_NOTIFY_EJECT_REQUEST);
    aml_end(b);
}

#define CPU_LOCK "\\_SB.PCI0.PRES.CPLK"
#define CPU_FIELD(name) ("\\_SB.PCI0.PRES." name)

/* QEMU's modern CPU hotplug register block (docs/specs/acpi_cpu_hotplug.rst). */
static void build_cpu_hotplug_registers(struct aml_builder *b)
{
    aml_begin_device(b, "PRES");
    build_io_reservation(b, "CPU Hotplug resources", VM_CPU_HOTPLUG_BASE, CPU_HOTPLUG_LENGTH);
    aml_mutex(b, "CPLK", 0);
    aml_operation_region(b, "PRST", AML_REGION_SYSTEM_IO, VM_CPU_HOTPLUG_BASE, CPU_HOTPLUG_LENGTH);
    aml_begin_field(b, "PRST", AML_FIELD_BYTE_ACCESS | AML_FIELD_WRITE_AS_ZEROS);
    aml_field_reserved(b, 32);
    aml_field_entry(b, "CPEN", 1);
    aml_field_entry(b, "CINS", 1);
    aml_field_entry(b, "CRMV", 1);
    aml_field_entry(b, "CEJ0", 1);
    aml_field_reserved(b, 4);
    aml_field_entry(b, "CCMD", 8);
    aml_end(b);
    aml_begin_field(b, "PRST", AML_FIELD_DWORD_ACCESS | AML_FIELD_PRESERVE);
    aml_field_entry(b, "CSEL", 32);
    aml_field_reserved(b, 32);
    aml_field_entry(b, "CDAT", 32);
    aml_end(b);
    aml_end(b);
}

static void cpu_device_name(char *name, size_t size, unsigned index)
{
    snprintf(name, size, "C%03X", index);
}

/* A store of a field of the CPU hotplug block: FIELD = value. */
static void store_cpu_field(struct aml_builder *b, const char *field, uint64_t value)
{
    aml_store(b), aml_integer(b, value), aml_name(b, field);
}

static void build_cpus(struct aml_builder *b, unsigned cpus, unsigned max_cpus)
{
    aml_begin_device(b, "CPUS");
    aml_name_text(b, "_HID", "ACPI0010");
    aml_name_eisa_id(b, "_CID", "PNP0A05");

    /* CTFY(uid, event): Notify the CPU device with that _UID. */
    aml_begin_method(b, "CTFY", 2, 0);
    for (unsigned i = 0; i < max_cpus; i++) {
        char name[8];
        cpu_device_name(name, sizeof(name), i);
        aml_begin_if(b);
        aml_lequal(b), aml_arg(b, 0), aml_integer(b, i);
        aml_notify(b), aml_name(b, name), aml_arg(b, 1);
        aml_end(b);
    }
    aml_end(b);

    /* CSTA(uid): 0xF when the selected CPU is enabled, else 0. */
    aml_begin_method(b, "CSTA", 1, 1);
    aml_acquire(b, CPU_LOCK, AML_WAIT_FOREVER);
    aml_store(b), aml_arg(b, 0), aml_name(b, CPU_FIELD("CSEL"));
    aml_store(b), aml_integer(b, 0), aml_local(b, 0);
    aml_begin_if(b);
    aml_lequal(b), aml_name(b, CPU_FIELD("CPEN")), aml_integer(b, 1);
    aml_store(b), aml_integer(b, 0x0f), aml_local(b, 0);
    aml_end(b);
    aml_release(b, CPU_LOCK);
    aml_return(b), aml_local(b, 0);
    aml_end(b);

    /* CEJ0(uid): eject the CPU. */
    aml_begin_method(b, "CEJ0", 1, 1);
    aml_acquire(b, CPU_LOCK, AML_WAIT_FOREVER);
    aml_store(b), aml_arg(b, 0), aml_name(b, CPU_FIELD("CSEL"));
    store_cpu_field(b, CPU_FIELD("CEJ0"), 1);
    aml_release(b, CPU_LOCK);
    aml_end(b);

    /* CSCN: while a CPU has a pending event, notify it and acknowledge the event.
     * Local1 bounds the loop so a controller that never clears its flags (or
     * ports that read as all ones) cannot hang the guest's ACPI thread. */
    aml_begin_method(b, "CSCN", 0, 1);
    aml_acquire(b, CPU_LOCK, AML_WAIT_FOREVER);
    aml_store(b), aml_integer(b, 1), aml_local(b, 0);
    aml_store(b), aml_integer(b, 0), aml_local(b, 1);
    aml_begin_while(b);
    aml_land(b), aml_lequal(b), aml_local(b, 0), aml_integer(b, 1), aml_lless(b), aml_local(b, 1),
        aml_integer(b, 4 * (uint64_t)max_cpus);
    aml_increment(b), aml_local(b, 1);
    aml_store(b), aml_integer(b, 0), aml_local(b, 0);
    store_cpu_field(b, CPU_FIELD("CCMD"), 0); /* select the next CPU with an event */
    aml_begin_if(b);
    aml_lequal(b), aml_name(b, CPU_FIELD("CINS")), aml_integer(b, 1);
    aml_call(b, "CTFY"), aml_name(b, CPU_FIELD("CDAT")), aml_integer(b, AML_NOTIFY_DEVICE_CHECK);
    store_cpu_field(b, CPU_FIELD("CINS"), 1);
    aml_store(b), aml_integer(b, 1), aml_local(b, 0);
    aml_end(b);
    aml_begin_else(b);
    aml_begin_if(b);
    aml_lequal(b), aml_name(b, CPU_FIELD("CRMV")), aml_integer(b, 1);
    aml_call(b, "CTFY"), aml_name(b, CPU_FIELD("CDAT")), aml_integer(b, AML_NOTIFY_EJECT_REQUEST);
    store_cpu_field(b, CPU_FIELD("CRMV"), 1);
    aml_store(b), aml_integer(b, 1), aml_local(b, 0);
    aml_end(b);
    aml_end(b); /* Else */
    aml_end(b); /* While */
    aml_release(b, CPU_LOCK);
    aml_end(b);

    /* COST(uid, event, status): _OST reporting through commands 1 and 2. */
    aml_begin_method(b, "COST", 3, 1);
    aml_acquire(b, CPU_LOCK, AML_WAIT_FOREVER);
    aml_store(b), aml_arg(b, 0), aml_name(b, CPU_FIELD("CSEL"));
    store_cpu_field(b, CPU_FIELD("CCMD"), 1);
    aml_store(b), aml_arg(b, 1), aml_name(b, CPU_FIELD("CDAT"));
    store_cpu_field(b, CPU_FIELD("CCMD"), 2);
    aml_store(b), aml_arg(b, 2), aml_name(b, CPU_FIELD("CDAT"));
    aml_release(b, CPU_LOCK);
    aml_end(b);

    for (unsigned i = 0; i < max_cpus; i++) {
        char name[8];
        cpu_device_name(name, sizeof(name), i);
        aml_begin_device(b, name);
        aml_name_text(b, "_HID", "ACPI0007");
        aml_name_integer(b, "_UID", i);
        aml_begin_method(b, "_STA", 0, 1);
        aml_return(b), aml_call(b, "CSTA"), aml_integer(b, i);
        aml_end(b);
        /* The MADT Local APIC entry the OS uses when the CPU appears. */
        aml_name_declaration(b, "_MAT");
        aml_begin_buffer(b);
        uint8_t lapic[8] = {MADT_TYPE_LAPIC, 8, (uint8_t)i, (uint8_t)i, MADT_LAPIC_ENABLED};
        aml_bytes(b, lapic, sizeof(lapic));
        aml_end(b);
        if (i != 0) { /* the boot CPU cannot be unplugged */
            aml_begin_method(b, "_EJ0", 1, 1);
            aml_call(b, "CEJ0"), aml_integer(b, i);
            aml_end(b);
        }
        aml_begin_method(b, "_OST", 3, 1);
        aml_call(b, "COST"), aml_integer(b, i), aml_arg(b, 0), aml_arg(b, 1);
        aml_end(b);
        aml_end(b);
    }
    aml_end(b);
    (void)cpus; /* presence is read from the hotplug block at run time */
}

static void build_serial(struct aml_builder *b)
{
    aml_begin_device(b, "COM1");
    aml_name_eisa_id(b, "_HID", "PNP0501");
    aml_name_integer(b, "_UID", 1);
    aml_name_integer(b, "_STA", 0x0f);
    aml_name_declaration(b, "_CRS");
    aml_begin_resource_template(b);
    aml_resource_io(b, VM_SERIAL_PORT, VM_SERIAL_PORT, 0, 8);
    aml_resource_irq_no_flags(b, VM_SERIAL_IRQ);
    aml_end(b);
    aml_end(b);
}

static void build_gpe_handlers(struct aml_builder *b)
{
    aml_begin_scope(b, "\\_GPE");
    aml_name_text(b, "_HID", "ACPI0006");
    aml_begin_method(b, "_E01", 0, 0); /* PCI hotplug */
    aml_acquire(b, "\\_SB.PCI0.BLCK", AML_WAIT_FOREVER);
    aml_call(b, "\\_SB.PCI0.PCNT");
    aml_release(b, "\\_SB.PCI0.BLCK");
    aml_end(b);
    aml_begin_method(b, "_E02", 0, 0); /* CPU hotplug */
    aml_call(b, "\\_SB.CPUS.CSCN");
    aml_end(b);
    aml_end(b);
}

static void build_dsdt_body(struct aml_builder *b, unsigned cpus, unsigned max_cpus)
{
    aml_begin_scope(b, "\\_SB");
    aml_begin_device(b, "PCI0");
    /* No _ADR next to _HID (QEMU has both; ACPI wants one, and iasl warns). */
    aml_name_eisa_id(b, "_HID", "PNP0A03");
    aml_name_integer(b, "_UID", 0);
    build_pci_host_bridge_resources(b);
    build_pci_hotplug(b);
    build_cpu_hotplug_registers(b);
    aml_end(b); /* PCI0 */
    build_serial(b);
    build_cpus(b, cpus, max_cpus);
    aml_end(b); /* \_SB */

    build_gpe_handlers(b);

    /* _S5: SLP_TYPa, SLP_TYPb, reserved, reserved. No _S3/_S4: no suspend. */
    aml_name_declaration(b, "_S5");
    aml_begin_package(b, 4);
    aml_integer(b, ACPI_S5_SLEEP_TYPE);
    aml_integer(b, ACPI_S5_SLEEP_TYPE);
    aml_integer(b, 0);
    aml_integer(b, 0);
    aml_end(b);
}

static uint8_t *build_dsdt(struct table_area *area, unsigned cpus, unsigned max_cpus,
                           struct pv_error *error)
{
    struct aml_builder builder;
    aml_builder_init(&builder, area->size);
    build_dsdt_body(&builder, cpus, max_cpus);
    if (aml_builder_finish(&builder, error) < 0) {
        aml_builder_release(&builder);
        pv_error_prefix(error, "DSDT");
        return NULL;
    }
    size_t length = HEADER_SIZE + builder.length;
    uint8_t *table = area_allocate(area, "DSDT", length, TABLE_ALIGNMENT, error);
    if (table) {
        write_header(table, "DSDT", (uint32_t)length, DSDT_REVISION);
        memcpy(table + HEADER_SIZE, builder.data, builder.length);
        finish_table(table, (uint32_t)length);
    }
    aml_builder_release(&builder);
    return table;
}

/* --- fixed tables ------------------------------------------------------------ */

static uint8_t *build_facs(struct table_area *area, struct pv_error *error)
{
    uint8_t *facs = area_allocate(area, "FACS", FACS_SIZE, FACS_ALIGNMENT, error);
    if (!facs)
        return NULL;
    memcpy(facs, "FACS", 4);
    put32(facs + 4, FACS_SIZE);
    facs[32] = 2; /* version (has X_Firmware_Waking_Vector); no checksum in the FACS */
    return facs;
}

static uint8_t *build_fadt(struct table_area *area, uint64_t facs_gpa, uint64_t dsdt_gpa,
                           struct pv_error *error)
{
    uint8_t *fadt = area_allocate(area, "FACP", FADT_SIZE, TABLE_ALIGNMENT, error);
    if (!fadt)
        return NULL;
    write_header(fadt, "FACP", FADT_SIZE, FADT_REVISION);
    put32(fadt + FADT_FIRMWARE_CTRL, (uint32_t)facs_gpa);
    put32(fadt + FADT_DSDT, (uint32_t)dsdt_gpa);
    fadt[FADT_PREFERRED_PM_PROFILE] = FADT_PM_PROFILE_UNSPECIFIED;
    put16(fadt + FADT_SCI_INT, VM_SCI_IRQ);
    put32(fadt + FADT_SMI_CMD, 0); /* no SMM: ACPI mode is always on (SCI_EN reads 1) */
    put32(fadt + FADT_PM1A_EVT_BLK, PM1A_EVT_PORT);
    put32(fadt + FADT_PM1A_CNT_BLK, PM1A_CNT_PORT);
    put32(fadt + FADT_PM_TMR_BLK, PM_TMR_PORT);
    put32(fadt + FADT_GPE0_BLK, VM_GPE0_BASE);
    fadt[FADT_PM1_EVT_LEN] = PM1_EVT_LENGTH;
    fadt[FADT_PM1_CNT_LEN] = PM1_CNT_LENGTH;
    fadt[FADT_PM_TMR_LEN] = PM_TMR_LENGTH;
    fadt[FADT_GPE0_BLK_LEN] = GPE0_LENGTH;
    put16(fadt + FADT_P_LVL2_LAT, FADT_C2_NOT_SUPPORTED);
    put16(fadt + FADT_P_LVL3_LAT, FADT_C3_NOT_SUPPORTED);
    /* No VGA; no 8042 flag, so Linux does not probe for a keyboard controller. */
    put16(fadt + FADT_IAPC_BOOT_ARCH, FADT_BOOT_ARCH_VGA_NOT_PRESENT);
    /* PWR_BUTTON clear: the power button is the fixed feature (PM1 PWRBTN_STS). */
    put32(fadt + FADT_FLAGS, FADT_FLAG_WBINVD | FADT_FLAG_PROC_C1 | FADT_FLAG_SLP_BUTTON |
                                 FADT_FLAG_FIX_RTC | FADT_FLAG_TMR_VAL_EXT |
                                 FADT_FLAG_RESET_REG_SUP);
    write_gas_io(fadt + FADT_RESET_REG, 8, GAS_ACCESS_BYTE, ACPI_RESET_PORT);
    fadt[FADT_RESET_VALUE] = ACPI_RESET_VALUE;
    put64(fadt + FADT_X_FIRMWARE_CTRL, facs_gpa);
    put64(fadt + FADT_X_DSDT, dsdt_gpa);
    write_gas_io(fadt + FADT_X_PM1A_EVT_BLK, PM1_EVT_LENGTH * 8, 0, PM1A_EVT_PORT);
    write_gas_io(fadt + FADT_X_PM1A_CNT_BLK, PM1_CNT_LENGTH * 8, 0, PM1A_CNT_PORT);
    write_gas_io(fadt + FADT_X_PM_TMR_BLK, PM_TMR_LENGTH * 8, 0, PM_TMR_PORT);
    write_gas_io(fadt + FADT_X_GPE0_BLK, GPE0_LENGTH * 8, 0, VM_GPE0_BASE);
    finish_table(fadt, FADT_SIZE);
    return fadt;
}

static uint8_t *build_madt(struct table_area *area, unsigned cpus, unsigned max_cpus,
                           struct pv_error *error)
{
    static const uint8_t level_irqs[] = {VM_SCI_IRQ, PCI_INTX_GSI_AB, PCI_INTX_GSI_CD};
    size_t overrides = 1 + sizeof(level_irqs) / sizeof(level_irqs[0]);
    size_t length = 44 + 8 * (size_t)max_cpus + 12 + 10 * overrides + 6;
    uint8_t *madt = area_allocate(area, "APIC", length, TABLE_ALIGNMENT, error);
    if (!madt)
        return NULL;
    write_header(madt, "APIC", (uint32_t)length, MADT_REVISION);
    put32(madt + 36, (uint32_t)VM_LAPIC_ADDRESS);
    put32(madt + 40, MADT_FLAG_PCAT_COMPAT);
    uint8_t *entry = madt + 44;
    for (unsigned i = 0; i < max_cpus; i++) {
        entry[0] = MADT_TYPE_LAPIC;
        entry[1] = 8;
        entry[2] = (uint8_t)i; /* ACPI processor UID = _UID of \_SB.CPUS.Cxxx */
        entry[3] = (uint8_t)i; /* APIC ID */
        put32(entry + 4, i < cpus ? MADT_LAPIC_ENABLED : MADT_LAPIC_ONLINE_CAPABLE);
        entry += 8;
    }
    entry[0] = MADT_TYPE_IOAPIC;
    entry[1] = 12;
    entry[2] = MADT_IOAPIC_ID;
    put32(entry + 4, (uint32_t)VM_IOAPIC_ADDRESS);
    put32(entry + 8, 0); /* GSI base */
    entry += 12;
    /* ISA IRQ 0 (PIT) arrives on IOAPIC pin 2, as on every PC. */
    entry[0] = MADT_TYPE_OVERRIDE;
    entry[1] = 10;
    entry[2] = 0; /* ISA bus */
    entry[3] = 0;
    put32(entry + 4, 2);
    put16(entry + 8, 0); /* bus default: edge, active high */
    entry += 10;
    /* The SCI and the PCI INTx lines are level-triggered, active high (as in
     * QEMU's MADT). Without a _PRT, Linux takes a PCI device's IRQ from its
     * Interrupt Line register and these overrides for the trigger mode. */
    for (size_t i = 0; i < sizeof(level_irqs) / sizeof(level_irqs[0]); i++) {
        entry[0] = MADT_TYPE_OVERRIDE;
        entry[1] = 10;
        entry[2] = 0;
        entry[3] = level_irqs[i];
        put32(entry + 4, level_irqs[i]);
        put16(entry + 8, MADT_INTI_ACTIVE_HIGH | MADT_INTI_LEVEL);
        entry += 10;
    }
    /* NMI on LINT1 of every processor. */
    entry[0] = MADT_TYPE_LAPIC_NMI;
    entry[1] = 6;
    entry[2] = MADT_ALL_PROCESSORS;
    put16(entry + 3, 0);
    entry[5] = 1;
    finish_table(madt, (uint32_t)length);
    return madt;
}

static uint8_t *build_root_table(struct table_area *area, const char *signature,
                                 unsigned entry_size, const uint64_t *addresses, unsigned count,
                                 struct pv_error *error)
{
    size_t length = HEADER_SIZE + (size_t)entry_size * count;
    uint8_t *table = area_allocate(area, signature, length, TABLE_ALIGNMENT, error);
    if (!table)
        return NULL;
    write_header(table, signature, (uint32_t)length, 1);
    for (unsigned i = 0; i < count; i++) {
        if (entry_size == 8)
            put64(table + HEADER_SIZE + 8 * i, addresses[i]);
        else
            put32(table + HEADER_SIZE + 4 * i, (uint32_t)addresses[i]);
    }
    finish_table(table, (uint32_t)length);
    return table;
}

static void build_rsdp(uint8_t *rsdp, uint64_t rsdt_gpa, uint64_t xsdt_gpa)
{
    memcpy(rsdp, "RSD PTR ", 8);
    memcpy(rsdp + 9, OEM_ID, 6);
    rsdp[15] = 2; /* revision: ACPI 2.0+, has the XSDT */
    put32(rsdp + 16, (uint32_t)rsdt_gpa);
    put32(rsdp + 20, RSDP_SIZE);
    put64(rsdp + 24, xsdt_gpa);
    rsdp[8] = checksum_of(rsdp, 20);         /* ACPI 1.0 part */
    rsdp[32] = checksum_of(rsdp, RSDP_SIZE); /* whole structure */
}

int acpi_tables_build(const struct acpi_tables_config *config, uint8_t *buffer, size_t size,
                      uint64_t buffer_gpa, struct acpi_tables_layout *layout,
                      struct pv_error *error)
{
    memset(layout, 0, sizeof(*layout));
    unsigned cpus = config->cpus;
    unsigned max_cpus = config->max_cpus ? config->max_cpus : cpus;
    if (cpus == 0 || max_cpus < cpus || max_cpus > ACPI_MAX_CPUS)
        return pv_error_set(error, -EINVAL,
                            "ACPI tables: need 1 <= cpus (%u) <= max_cpus (%u) <= %u", cpus,
                            max_cpus, ACPI_MAX_CPUS);
    if (buffer_gpa + size > (1ULL << 32))
        return pv_error_set(error, -EINVAL, "ACPI tables must be below 4 GiB");
    struct table_area area = {
        .buffer = buffer,
        .size = size,
        .gpa = buffer_gpa,
        .layout = layout,
    };
    uint8_t *rsdp = area_allocate(&area, "RSDP", RSDP_SIZE, 1, error);
    if (!rsdp)
        return error ? error->code : -ENOSPC;
    uint8_t *facs = build_facs(&area, error);
    uint8_t *dsdt = facs ? build_dsdt(&area, cpus, max_cpus, error) : NULL;
    uint8_t *fadt =
        dsdt ? build_fadt(&area, area_gpa(&area, facs), area_gpa(&area, dsdt), error) : NULL;
    uint8_t *madt = fadt ? build_madt(&area, cpus, max_cpus, error) : NULL;
    if (!madt)
        return error ? error->code : -ENOSPC;
    uint64_t entries[] = {area_gpa(&area, fadt), area_gpa(&area, madt)};
    unsigned count = sizeof(entries) / sizeof(entries[0]);
    uint8_t *xsdt = build_root_table(&area, "XSDT", 8, entries, count, error);
    uint8_t *rsdt = xsdt ? build_root_table(&area, "RSDT", 4, entries, count, error) : NULL;
    if (!rsdt)
        return error ? error->code : -ENOSPC;
    build_rsdp(rsdp, area_gpa(&area, rsdt), area_gpa(&area, xsdt));
    return 0;
}

const struct acpi_table_location *acpi_tables_find(const struct acpi_tables_layout *layout,
                                                   const char *signature)
{
    for (unsigned i = 0; i < layout->count; i++) {
        if (strcmp(layout->tables[i].signature, signature) == 0)
            return &layout->tables[i];
    }
    return NULL;
}

/* --- dump ------------------------------------------------------------------------ */

static int write_all(int fd, const uint8_t *data, size_t length)
{
    while (length > 0) {
        ssize_t written = write(fd, data, length);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        data += written;
        length -= (size_t)written;
    }
    return 0;
}

static int dump_table(const uint8_t *buffer, const struct acpi_table_location *table,
                      const char *directory, struct pv_error *error)
{
    char name[8];
    for (int i = 0; i < 4; i++) {
        char c = table->signature[i];
        name[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    name[4] = '\0';
    char path[4096], temporary[4096];
    int used = snprintf(path, sizeof(path), "%s/%s.dat", directory, name);
    if (used < 0 || (size_t)used >= sizeof(path) ||
        snprintf(temporary, sizeof(temporary), "%s.tmp", path) >= (int)sizeof(temporary))
        return pv_error_set(error, -ENAMETOOLONG, "ACPI dump: directory name too long");
    int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return pv_error_set_errno(error, -errno, "ACPI dump: cannot create %s", temporary);
    int rc = write_all(fd, buffer + table->offset, table->length);
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(temporary, path) < 0)
        rc = -errno;
    if (rc < 0) {
        unlink(temporary);
        return pv_error_set_errno(error, rc, "ACPI dump: cannot write %s", path);
    }
    return 0;
}

int acpi_tables_dump(const uint8_t *buffer, const struct acpi_tables_layout *layout,
                     const char *directory, struct pv_error *error)
{
    /* Readers poll for dsdt.dat and apic.dat: write those last. */
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned i = 0; i < layout->count; i++) {
            const struct acpi_table_location *table = &layout->tables[i];
            bool last =
                strcmp(table->signature, "DSDT") == 0 || strcmp(table->signature, "APIC") == 0;
            if (last != (pass == 1))
                continue;
            int rc = dump_table(buffer, table, directory, error);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acpi/acpi_pm.h"
#include "acpi/acpi_tables.h"
#include "pci/pci.h"
#include "vm.h"

/* Offsets from the ACPI 6.x specification, independent of acpi_tables.c. */
#define RSDP_CHECKSUM_LENGTH 20
#define RSDP_REVISION 15
#define RSDP_RSDT 16
#define RSDP_LENGTH 20
#define RSDP_XSDT 24
#define FADT_FIRMWARE_CTRL 36
#define FADT_DSDT 40
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
#define FADT_FLAGS 112
#define FADT_RESET_REG 116
#define FADT_RESET_VALUE 128
#define FADT_X_FIRMWARE_CTRL 132
#define FADT_X_DSDT 140
#define FADT_X_PM1A_EVT_BLK 148
#define FADT_X_PM1A_CNT_BLK 172
#define FADT_X_PM_TMR_BLK 208
#define FADT_X_GPE0_BLK 220

static uint8_t buffer[VM_ACPI_TABLES_SIZE];
static struct acpi_tables_layout layout;

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint8_t sum(const uint8_t *data, size_t length)
{
    uint8_t total = 0;
    for (size_t i = 0; i < length; i++)
        total += data[i];
    return total;
}

/* Guest address → pointer into the buffer, checked. */
static const uint8_t *at_gpa(uint64_t gpa)
{
    cr_assert(gpa >= VM_ACPI_TABLES_ADDRESS && gpa < VM_ACPI_TABLES_ADDRESS + sizeof(buffer),
              "address 0x%llx outside the table area", (unsigned long long)gpa);
    return buffer + (gpa - VM_ACPI_TABLES_ADDRESS);
}

static const uint8_t *table(const char *signature)
{
    const struct acpi_table_location *location = acpi_tables_find(&layout, signature);
    cr_assert_not_null(location, "no %s table", signature);
    return buffer + location->offset;
}

static void build(unsigned cpus, unsigned max_cpus)
{
    memset(buffer, 0xa5, sizeof(buffer)); /* stale bytes must not matter */
    struct acpi_tables_config config = {.cpus = cpus, .max_cpus = max_cpus};
    struct pv_error error = {0};
    int rc =
        acpi_tables_build(&config, buffer, sizeof(buffer), VM_ACPI_TABLES_ADDRESS, &layout, &error);
    cr_assert_eq(rc, 0, "build failed: %s", error.message);
}

static void build_default(void)
{
    build(2, 4);
}

TestSuite(acpi_tables, .init = build_default);

Test(acpi_tables, rsdp_at_offset_zero_points_at_xsdt_and_rsdt)
{
    cr_assert_eq(memcmp(buffer, "RSD PTR ", 8), 0);
    cr_assert_eq(sum(buffer, RSDP_CHECKSUM_LENGTH), 0, "ACPI 1.0 checksum");
    cr_assert_eq(buffer[RSDP_REVISION], 2);
    cr_assert_eq(get32(buffer + RSDP_LENGTH), 36);
    cr_assert_eq(sum(buffer, 36), 0, "extended checksum");
    cr_assert_eq(get64(buffer + RSDP_XSDT), acpi_tables_find(&layout, "XSDT")->gpa);
    cr_assert_eq(get32(buffer + RSDP_RSDT), acpi_tables_find(&layout, "RSDT")->gpa);
    cr_assert_eq(memcmp(at_gpa(get64(buffer + RSDP_XSDT)), "XSDT", 4), 0);
    /* Guests without a boot_params RSDP scan 16-byte boundaries from 0xE0000. */
    cr_assert_eq(acpi_tables_find(&layout, "RSDP")->offset, 0);
    cr_assert_eq(acpi_tables_find(&layout, "RSDP")->gpa, VM_ACPI_TABLES_ADDRESS);
}

Test(acpi_tables, every_table_has_its_length_signature_and_checksum)
{
    const char *expected[] = {"RSDP", "FACS", "DSDT", "FACP", "APIC", "XSDT", "RSDT"};
    cr_assert_eq(layout.count, sizeof(expected) / sizeof(expected[0]));
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        const struct acpi_table_location *location = acpi_tables_find(&layout, expected[i]);
        cr_assert_not_null(location, "%s missing", expected[i]);
        cr_assert(location->offset + location->length <= layout.used);
        cr_assert_eq(location->gpa, VM_ACPI_TABLES_ADDRESS + location->offset);
        if (strcmp(expected[i], "RSDP") == 0)
            continue;
        const uint8_t *data = buffer + location->offset;
        cr_assert_eq(memcmp(data, expected[i], 4), 0, "%s signature", expected[i]);
        cr_assert_eq(get32(data + 4), location->length, "%s length", expected[i]);
        if (strcmp(expected[i], "FACS") == 0) {
            cr_assert_eq(location->gpa % 64, 0, "the FACS must be 64-byte aligned");
            continue; /* the FACS has no checksum */
        }
        cr_assert_eq(sum(data, location->length), 0, "%s checksum", expected[i]);
    }
    /* Tables must not overlap. */
    for (unsigned i = 0; i < layout.count; i++) {
        for (unsigned j = i + 1; j < layout.count; j++) {
            const struct acpi_table_location *a = &layout.tables[i], *b = &layout.tables[j];
            cr_assert(a->offset + a->length <= b->offset || b->offset + b->length <= a->offset,
                      "%s overlaps %s", a->signature, b->signature);
        }
    }
}

Test(acpi_tables, xsdt_and_rsdt_list_fadt_and_madt)
{
    const uint8_t *xsdt = table("XSDT");
    const uint8_t *rsdt = table("RSDT");
    cr_assert_eq(get32(xsdt + 4), 36 + 2 * 8);
    cr_assert_eq(get32(rsdt + 4), 36 + 2 * 4);
    const char *signatures[] = {"FACP", "APIC"};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(memcmp(at_gpa(get64(xsdt + 36 + 8 * i)), signatures[i], 4), 0);
        cr_assert_eq(memcmp(at_gpa(get32(rsdt + 36 + 4 * i)), signatures[i], 4), 0);
    }
}

static void assert_gas_io(const uint8_t *gas, unsigned bits, uint64_t port)
{
    cr_assert_eq(gas[0], 1, "GAS space must be SystemIO");
    cr_assert_eq(gas[1], bits);
    cr_assert_eq(get64(gas + 4), port);
}

Test(acpi_tables, fadt_fields)
{
    const uint8_t *fadt = table("FACP");
    cr_assert_eq(get32(fadt + 4), 244);
    cr_assert_geq(fadt[8], 3, "FADT revision");
    cr_assert_eq(get16(fadt + FADT_SCI_INT), VM_SCI_IRQ);
    cr_assert_eq(get32(fadt + FADT_SMI_CMD), 0);
    cr_assert_eq(get32(fadt + FADT_PM1A_EVT_BLK), VM_PM_BASE);
    cr_assert_eq(get32(fadt + FADT_PM1A_CNT_BLK), VM_PM_BASE + 4);
    cr_assert_eq(get32(fadt + FADT_PM_TMR_BLK), VM_PM_BASE + 8);
    cr_assert_eq(get32(fadt + FADT_GPE0_BLK), VM_GPE0_BASE);
    cr_assert_eq(fadt[FADT_PM1_EVT_LEN], 4);
    cr_assert_eq(fadt[FADT_PM1_CNT_LEN], 2);
    cr_assert_eq(fadt[FADT_PM_TMR_LEN], 4);
    cr_assert_eq(fadt[FADT_GPE0_BLK_LEN], 4);

    uint32_t flags = get32(fadt + FADT_FLAGS);
    cr_assert(flags & (1u << 0), "WBINVD");
    cr_assert(flags & (1u << 2), "PROC_C1");
    cr_assert_not(flags & (1u << 4), "PWR_BUTTON must be clear: fixed-feature power button");
    cr_assert(flags & (1u << 5), "SLP_BUTTON: no sleep button");
    cr_assert(flags & (1u << 8), "TMR_VAL_EXT: the PM timer is 32 bits (acpi_pm.c)");
    cr_assert(flags & (1u << 10), "RESET_REG_SUP");
    cr_assert_not(flags & (1u << 20), "not hardware-reduced");

    assert_gas_io(fadt + FADT_RESET_REG, 8, 0xcf9);
    cr_assert_eq(fadt[FADT_RESET_VALUE], 0x06);

    uint64_t facs = acpi_tables_find(&layout, "FACS")->gpa;
    uint64_t dsdt = acpi_tables_find(&layout, "DSDT")->gpa;
    cr_assert_eq(get32(fadt + FADT_FIRMWARE_CTRL), facs);
    cr_assert_eq(get64(fadt + FADT_X_FIRMWARE_CTRL), facs);
    cr_assert_eq(get32(fadt + FADT_DSDT), dsdt);
    cr_assert_eq(get64(fadt + FADT_X_DSDT), dsdt);
    assert_gas_io(fadt + FADT_X_PM1A_EVT_BLK, 32, VM_PM_BASE);
    assert_gas_io(fadt + FADT_X_PM1A_CNT_BLK, 16, VM_PM_BASE + 4);
    assert_gas_io(fadt + FADT_X_PM_TMR_BLK, 32, VM_PM_BASE + 8);
    assert_gas_io(fadt + FADT_X_GPE0_BLK, 32, VM_GPE0_BASE);
}

Test(acpi_tables, madt_lists_present_and_hotpluggable_cpus)
{
    const uint8_t *madt = table("APIC");
    cr_assert_geq(madt[8], 5, "revision >= 5 so Linux honours Online Capable");
    cr_assert_eq(get32(madt + 36), VM_LAPIC_ADDRESS);
    uint32_t length = get32(madt + 4);
    unsigned enabled = 0, online_capable = 0, lapics = 0, ioapics = 0, nmis = 0;
    bool irq0_override = false;
    unsigned level_overrides = 0;
    for (uint32_t offset = 44; offset < length;) {
        const uint8_t *entry = madt + offset;
        cr_assert_geq(entry[1], 2);
        switch (entry[0]) {
        case 0: {
            cr_assert_eq(entry[1], 8);
            cr_assert_eq(entry[2], lapics, "processor UID = index = _UID of Cxxx");
            cr_assert_eq(entry[3], lapics, "APIC ID = index");
            uint32_t flags = get32(entry + 4);
            if (lapics < 2) {
                cr_assert_eq(flags, 1, "CPU %u is present: Enabled", lapics);
                enabled++;
            } else {
                cr_assert_eq(flags, 2, "CPU %u is absent: Online Capable only", lapics);
                online_capable++;
            }
            lapics++;
            break;
        }
        case 1:
            cr_assert_eq(entry[1], 12);
            cr_assert_eq(entry[2], 0, "IOAPIC id");
            cr_assert_eq(get32(entry + 4), VM_IOAPIC_ADDRESS);
            cr_assert_eq(get32(entry + 8), 0, "GSI base");
            ioapics++;
            break;
        case 2:
            cr_assert_eq(entry[1], 10);
            cr_assert_eq(entry[2], 0, "ISA bus");
            if (entry[3] == 0) {
                cr_assert_eq(get32(entry + 4), 2);
                irq0_override = true;
            } else if (entry[3] == VM_SCI_IRQ || entry[3] == PCI_INTX_GSI_AB ||
                       entry[3] == PCI_INTX_GSI_CD) {
                cr_assert_eq(get32(entry + 4), entry[3], "identity mapped");
                cr_assert_eq(get16(entry + 8), 0x000d, "IRQ %u: level, active high", entry[3]);
                level_overrides++;
            } else {
                cr_assert_fail("unexpected override for IRQ %u", entry[3]);
            }
            break;
        case 4:
            cr_assert_eq(entry[1], 6);
            cr_assert_eq(entry[2], 0xff, "all processors");
            cr_assert_eq(entry[5], 1, "LINT1");
            nmis++;
            break;
        default:
            cr_assert_fail("unexpected MADT entry type %u", entry[0]);
        }
        offset += entry[1];
    }
    cr_assert_eq(enabled, 2);
    cr_assert_eq(online_capable, 2);
    cr_assert_eq(ioapics, 1);
    cr_assert_eq(nmis, 1);
    cr_assert(irq0_override);
    cr_assert_eq(level_overrides, 3, "SCI and both PCI INTx IRQs");
}

static const uint8_t *find_bytes(const uint8_t *data, size_t length, const void *needle,
                                 size_t needle_length)
{
    return memmem(data, length, needle, needle_length);
}

Test(acpi_tables, dsdt_has_s5_as_the_probe_guest_reads_it)
{
    const struct acpi_table_location *dsdt = acpi_tables_find(&layout, "DSDT");
    const uint8_t *data = buffer + dsdt->offset;
    cr_assert_eq(data[8], 2, "revision 2: 64-bit integers");
    /* NameOp "_S5_" PackageOp PkgLength NumElements, first element = SLP_TYPa. */
    const uint8_t *s5 = find_bytes(data, dsdt->length, "\x08_S5_\x12", 6);
    cr_assert_not_null(s5);
    cr_assert_eq(s5[7], 4, "four elements");
    cr_assert_eq(s5[8], 0x00, "SLP_TYPa is ZeroOp (PIIX4 soft-off)");
    cr_assert_eq(ACPI_S5_SLEEP_TYPE, 0);
    cr_assert_null(find_bytes(data, dsdt->length, "_S3_", 4), "no S3");
    cr_assert_null(find_bytes(data, dsdt->length, "_S4_", 4), "no S4");
}

Test(acpi_tables, dsdt_declares_slots_cpus_and_gpe_handlers)
{
    const struct acpi_table_location *dsdt = acpi_tables_find(&layout, "DSDT");
    const uint8_t *data = buffer + dsdt->offset;
    const char *names[] = {"PCI0", "PHPR", "PCEJ", "PCNT", "DVNT", "BLCK", "S01_",
                           "S1F_", "PRES", "CPUS", "CSCN", "CSTA", "C000", "C003",
                           "COM1", "_E01", "_E02", "_EJ0", "_MAT", "_SUN"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        cr_assert_not_null(find_bytes(data, dsdt->length, names[i], 4), "%s missing", names[i]);
    cr_assert_null(find_bytes(data, dsdt->length, "C004", 4), "only max_cpus CPU devices");
    cr_assert_null(find_bytes(data, dsdt->length, "S00_", 4), "slot 0 is the host bridge");
    /* The hotplug register ports, as DWord/Word integers. */
    cr_assert_not_null(find_bytes(data, dsdt->length, "\x0b\x00\xae", 3), "0xae00");
    cr_assert_not_null(find_bytes(data, dsdt->length, "\x0b\x00\xaf", 3), "0xaf00");
}

Test(acpi_tables, max_cpus_zero_means_cpus)
{
    build(3, 0);
    const uint8_t *madt = table("APIC");
    unsigned lapics = 0;
    for (uint32_t offset = 44; offset < get32(madt + 4); offset += madt[offset + 1]) {
        if (madt[offset] == 0) {
            cr_assert_eq(get32(madt + offset + 4), 1);
            lapics++;
        }
    }
    cr_assert_eq(lapics, 3);
}

Test(acpi_tables, largest_configuration_fits)
{
    build(1, ACPI_MAX_CPUS);
    const uint8_t *madt = table("APIC");
    cr_assert_eq(sum(madt, get32(madt + 4)), 0);
    cr_assert_leq(layout.used, (size_t)VM_ACPI_TABLES_SIZE);
}

Test(acpi_tables, rejects_bad_configurations)
{
    struct pv_error error = {0};
    struct acpi_tables_config none = {.cpus = 0, .max_cpus = 4};
    cr_assert_eq(
        acpi_tables_build(&none, buffer, sizeof(buffer), VM_ACPI_TABLES_ADDRESS, &layout, &error),
        -EINVAL);
    struct acpi_tables_config shrunk = {.cpus = 4, .max_cpus = 2};
    cr_assert_eq(
        acpi_tables_build(&shrunk, buffer, sizeof(buffer), VM_ACPI_TABLES_ADDRESS, &layout, &error),
        -EINVAL);
    struct acpi_tables_config too_many = {.cpus = 1, .max_cpus = ACPI_MAX_CPUS + 1};
    cr_assert_eq(acpi_tables_build(&too_many, buffer, sizeof(buffer), VM_ACPI_TABLES_ADDRESS,
                                   &layout, &error),
                 -EINVAL);
}

Test(acpi_tables, small_buffer_is_an_error_not_an_overrun)
{
    static uint8_t small[1024 + 64];
    memset(small, 0x5a, sizeof(small));
    struct acpi_tables_config config = {.cpus = 2, .max_cpus = 4};
    struct pv_error error = {0};
    cr_assert_eq(acpi_tables_build(&config, small, 1024, VM_ACPI_TABLES_ADDRESS, &layout, &error),
                 -ENOSPC);
    cr_assert(strlen(error.message) > 0);
    for (size_t i = 1024; i < sizeof(small); i++)
        cr_assert_eq(small[i], 0x5a, "wrote past the end at %zu", i);
}

Test(acpi_tables, dump_writes_one_file_per_table)
{
    char directory[] = "/tmp/pv-acpi-test-XXXXXX";
    cr_assert_not_null(mkdtemp(directory));
    struct pv_error error = {0};
    cr_assert_eq(acpi_tables_dump(buffer, &layout, directory, &error), 0, "%s", error.message);
    const char *files[] = {"rsdp", "facs", "dsdt", "facp", "apic", "xsdt", "rsdt"};
    const char *signatures[] = {"RSDP", "FACS", "DSDT", "FACP", "APIC", "XSDT", "RSDT"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s.dat", directory, files[i]);
        FILE *file = fopen(path, "rb");
        cr_assert_not_null(file, "%s not written", path);
        uint8_t content[VM_ACPI_TABLES_SIZE];
        size_t length = fread(content, 1, sizeof(content), file);
        fclose(file);
        const struct acpi_table_location *location = acpi_tables_find(&layout, signatures[i]);
        cr_assert_eq(length, location->length, "%s size", path);
        cr_assert_eq(memcmp(content, buffer + location->offset, length), 0, "%s content", path);
        unlink(path);
    }
    /* Nothing else (no temporary files) is left behind. */
    DIR *dir = opendir(directory);
    cr_assert_not_null(dir);
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL)
        cr_assert(entry->d_name[0] == '.', "left over: %s", entry->d_name);
    closedir(dir);
    cr_assert_eq(rmdir(directory), 0);
}

Test(acpi_tables, dump_into_missing_directory_fails)
{
    struct pv_error error = {0};
    cr_assert_eq(acpi_tables_dump(buffer, &layout, "/nonexistent/pv-acpi", &error), -ENOENT);
    cr_assert(strstr(error.message, "/nonexistent/pv-acpi"));
}

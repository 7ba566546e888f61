/*
 * ACPI: find RSDP → XSDT/RSDT → FADT, MADT, DSDT; count CPUs; locate the PM1
 * and GPE0 register blocks; handle the SCI (power button, GPE0 dispatch).
 */
#include "probe.h"

#define PM1_STATUS_PWRBTN (1u << 8)
#define PM1_ENABLE_PWRBTN (1u << 8)
#define PM1_CONTROL_SCI_EN (1u << 0)
#define PM1_CONTROL_SLP_TYP (7u << 10)
#define PM1_CONTROL_SLP_EN (1u << 13)
#define GPE_MAX_BITS 64
#define FOUR_GIB (1ull << 32)

/* FADT field offsets (ACPI 6.x, table 5.9). */
#define FADT_DSDT 40
#define FADT_SCI_INT 46
#define FADT_SMI_CMD 48
#define FADT_ACPI_ENABLE 52
#define FADT_PM1A_EVT_BLK 56
#define FADT_PM1A_CNT_BLK 64
#define FADT_GPE0_BLK 80
#define FADT_PM1_EVT_LEN 88
#define FADT_GPE0_BLK_LEN 92
#define FADT_X_DSDT 140
#define FADT_X_PM1A_EVT_BLK 148
#define FADT_X_PM1A_CNT_BLK 172
#define FADT_X_GPE0_BLK 220
#define GAS_SPACE_IO 1

/* MADT entry types. */
#define MADT_LAPIC 0
#define MADT_IOAPIC 1
#define MADT_OVERRIDE 2
#define MADT_X2APIC 9

struct probe_acpi probe_acpi;
static acpi_gpe_handler gpe_handlers[GPE_MAX_BITS];

static bool checksum_ok(uint64_t address, uint32_t length)
{
    uint8_t sum = 0;
    for (uint32_t i = 0; i < length; i++)
        sum += phys_read8(address + i);
    return sum == 0;
}

static uint64_t find_rsdp(void)
{
    if (probe_boot.rsdp_address)
        return probe_boot.rsdp_address;
    for (uint64_t address = 0xe0000; address < 0x100000; address += 16) {
        if (memcmp((const void *)(uintptr_t)address, "RSD PTR ", 8) == 0 &&
            checksum_ok(address, 20))
            return address;
    }
    return 0;
}

/* Returns the table's length, or 0 if it is not a sane table we can map. */
static uint32_t table_length(uint64_t address)
{
    if (!address || address + 36 > FOUR_GIB)
        return 0;
    uint32_t length = phys_read32(address + 4);
    if (length < 36 || address + length > FOUR_GIB)
        return 0;
    if (address < probe_acpi.lowest_table_address || !probe_acpi.lowest_table_address)
        probe_acpi.lowest_table_address = address;
    if (address + length > probe_acpi.table_end_address)
        probe_acpi.table_end_address = address + length;
    return length;
}

static bool has_signature(uint64_t address, const char *signature)
{
    return memcmp((const void *)(uintptr_t)address, signature, 4) == 0;
}

/* Port from a FADT block: the 32-bit field, else the X_ GAS if it is in I/O space. */
static uint16_t fadt_port(uint64_t fadt, uint32_t length, unsigned legacy, unsigned extended)
{
    uint32_t port = phys_read32(fadt + legacy);
    if (port)
        return (uint16_t)port;
    if (length >= extended + 12 && phys_read8(fadt + extended) == GAS_SPACE_IO)
        return (uint16_t)phys_read64(fadt + extended + 4);
    return 0;
}

/* QEMU's PCI hotplug block: OperationRegion (PCST, SystemIO, <integer>, ...),
 * i.e. ExtOpPrefix OpRegionOp "PCST" RegionSpace(1) then a ByteConst/WordConst/
 * DWordConst or a ZeroOp/OneOp. */
static void find_pci_hotplug_region(const uint8_t *aml, uint32_t length)
{
    for (uint32_t i = 36; i + 12 < length; i++) {
        if (aml[i] != 0x5b || aml[i + 1] != 0x80 || memcmp(&aml[i + 2], "PCST", 4) != 0 ||
            aml[i + 6] != 0x01)
            continue;
        const uint8_t *value = &aml[i + 7];
        uint32_t port;
        if (value[0] == 0x0a)
            port = value[1];
        else if (value[0] == 0x0b)
            port = value[1] | (uint32_t)value[2] << 8;
        else if (value[0] == 0x0c)
            port = value[1] | (uint32_t)value[2] << 8 | (uint32_t)value[3] << 16 |
                   (uint32_t)value[4] << 24;
        else
            continue;
        if (port && port < 0x10000) {
            probe_acpi.pci_hotplug_port = (uint16_t)port;
            return;
        }
    }
}

/* SLP_TYPa for S5: "_S5_" PackageOp PkgLength NumElements <first element>. */
static void parse_dsdt(uint64_t dsdt)
{
    uint32_t length = table_length(dsdt);
    if (!length || !has_signature(dsdt, "DSDT"))
        return;
    const uint8_t *aml = (const uint8_t *)(uintptr_t)dsdt;
    find_pci_hotplug_region(aml, length);
    /* Name + PackageOp + PkgLength + NumElements + a ByteConst: at most 10 bytes, and the
     * package may be the last object of the table. */
    for (uint32_t i = 36; i + 10 <= length; i++) {
        if (aml[i] != '_' || memcmp(&aml[i], "_S5_", 4) != 0 || aml[i + 4] != 0x12)
            continue;
        uint32_t position = i + 5;
        position += 1 + (aml[position] >> 6); /* PkgLength: lead byte + extra bytes */
        position += 1;                        /* NumElements */
        if (position + 1 >= length)
            continue;
        uint8_t element = aml[position];
        if (element == 0x0a) {
            probe_acpi.s5_sleep_type = aml[position + 1] & 7;
        } else if (element == 0x00 || element == 0x01) {
            probe_acpi.s5_sleep_type = element;
        } else {
            continue;
        }
        probe_acpi.s5_found = true;
        return;
    }
}

static void parse_fadt(uint64_t fadt, uint32_t length)
{
    if (length < FADT_GPE0_BLK_LEN + 1)
        return;
    probe_acpi.sci_irq = phys_read16(fadt + FADT_SCI_INT);
    probe_acpi.sci_gsi = probe_acpi.sci_irq;
    probe_acpi.smi_command_port = phys_read32(fadt + FADT_SMI_CMD);
    probe_acpi.acpi_enable_value = phys_read8(fadt + FADT_ACPI_ENABLE);
    probe_acpi.pm1a_event_port = fadt_port(fadt, length, FADT_PM1A_EVT_BLK, FADT_X_PM1A_EVT_BLK);
    probe_acpi.pm1a_control_port = fadt_port(fadt, length, FADT_PM1A_CNT_BLK, FADT_X_PM1A_CNT_BLK);
    probe_acpi.gpe0_port = fadt_port(fadt, length, FADT_GPE0_BLK, FADT_X_GPE0_BLK);
    probe_acpi.pm1_event_length = phys_read8(fadt + FADT_PM1_EVT_LEN);
    probe_acpi.gpe0_length = phys_read8(fadt + FADT_GPE0_BLK_LEN);
    uint64_t dsdt = 0;
    if (length >= FADT_X_DSDT + 8)
        dsdt = phys_read64(fadt + FADT_X_DSDT);
    if (!dsdt)
        dsdt = phys_read32(fadt + FADT_DSDT);
    parse_dsdt(dsdt);
}

static void apply_override(uint8_t source, uint32_t gsi, uint16_t flags)
{
    /* MPS INTI flags: polarity bits 0-1 (1 high, 3 low), trigger bits 2-3 (1 edge, 3 level);
     * 0 = bus default, which keeps what we assumed. */
    unsigned polarity = flags & 3, trigger = (flags >> 2) & 3;
    if (source == 4) {
        probe_acpi.uart_gsi = gsi;
        if (polarity)
            probe_acpi.uart_active_low = polarity == 3;
        if (trigger)
            probe_acpi.uart_level = trigger == 3;
    }
    if (source == probe_acpi.sci_irq) {
        probe_acpi.sci_gsi = gsi;
        if (polarity)
            probe_acpi.sci_active_low = polarity == 3;
        if (trigger)
            probe_acpi.sci_level = trigger == 3;
    }
}

static void parse_madt(uint64_t madt, uint32_t length)
{
    if (length < 44)
        return;
    probe_acpi.lapic_address = phys_read32(madt + 36);
    bool ioapic_seen = false;
    for (uint32_t offset = 44; offset + 2 <= length;) {
        uint64_t entry = madt + offset;
        uint8_t type = phys_read8(entry), entry_length = phys_read8(entry + 1);
        if (entry_length < 2 || offset + entry_length > length)
            break;
        if (type == MADT_LAPIC && entry_length >= 8 && (phys_read32(entry + 4) & 1))
            probe_acpi.cpu_count++;
        else if (type == MADT_X2APIC && entry_length >= 16 && (phys_read32(entry + 8) & 1))
            probe_acpi.cpu_count++;
        else if (type == MADT_IOAPIC && entry_length >= 12 && !ioapic_seen) {
            /* The first IOAPIC serves GSI 0..23, which is all we route. */
            probe_acpi.ioapic_address = phys_read32(entry + 4);
            probe_acpi.ioapic_gsi_base = phys_read32(entry + 8);
            ioapic_seen = true;
        } else if (type == MADT_OVERRIDE && entry_length >= 10 && phys_read8(entry + 2) == 0)
            apply_override(phys_read8(entry + 3), phys_read32(entry + 4), phys_read16(entry + 8));
        offset += entry_length;
    }
}

void acpi_parse(void)
{
    /* Defaults when tables say nothing: ISA UART edge/high; SCI level/high
     * (what both QEMU and plugvirt-vmm deliver). */
    probe_acpi.uart_gsi = 4;
    probe_acpi.sci_level = true;
    uint64_t rsdp = find_rsdp();
    if (!rsdp || memcmp((const void *)(uintptr_t)rsdp, "RSD PTR ", 8) != 0)
        return;
    uint64_t root = 0;
    unsigned entry_size = 4;
    if (phys_read8(rsdp + 15) >= 2 && phys_read64(rsdp + 24)) {
        root = phys_read64(rsdp + 24);
        entry_size = 8;
    } else {
        root = phys_read32(rsdp + 16);
    }
    uint32_t root_length = table_length(root);
    if (!root_length)
        return;
    probe_acpi.found = true;
    uint64_t fadt = 0, madt = 0;
    uint32_t fadt_length = 0, madt_length = 0;
    for (uint32_t offset = 36; offset + entry_size <= root_length; offset += entry_size) {
        uint64_t table = entry_size == 8 ? phys_read64(root + offset) : phys_read32(root + offset);
        uint32_t length = table_length(table);
        if (!length)
            continue;
        if (has_signature(table, "FACP") && !fadt) {
            fadt = table;
            fadt_length = length;
        } else if (has_signature(table, "APIC") && !madt) {
            madt = table;
            madt_length = length;
        }
    }
    if (fadt)
        parse_fadt(fadt, fadt_length);
    if (madt)
        parse_madt(madt, madt_length);
}

int acpi_gpe_register(unsigned bit, acpi_gpe_handler handler)
{
    if (!probe_acpi.gpe0_port || bit >= GPE_MAX_BITS ||
        bit >= (unsigned)probe_acpi.gpe0_length / 2 * 8)
        return -1;
    gpe_handlers[bit] = handler;
    uint16_t enable_port = probe_acpi.gpe0_port + probe_acpi.gpe0_length / 2 + bit / 8;
    outb(enable_port, inb(enable_port) | (uint8_t)(1u << (bit % 8)));
    return 0;
}

void acpi_enable_events(void)
{
    if (!probe_acpi.pm1a_event_port || !probe_acpi.pm1a_control_port)
        return;
    if (probe_acpi.smi_command_port && !(inw(probe_acpi.pm1a_control_port) & PM1_CONTROL_SCI_EN)) {
        outb((uint16_t)probe_acpi.smi_command_port, probe_acpi.acpi_enable_value);
        /* QEMU sets SCI_EN synchronously; the bound only guards odd firmware. */
        for (unsigned i = 0; i < 1000; i++) {
            if (inw(probe_acpi.pm1a_control_port) & PM1_CONTROL_SCI_EN)
                break;
        }
        if (!(inw(probe_acpi.pm1a_control_port) & PM1_CONTROL_SCI_EN))
            console_printf("PROBE WARN ACPI mode did not come on (SCI_EN clear)");
    }
    /* Start from a clean slate: acknowledge stale events. */
    uint16_t status = inw(probe_acpi.pm1a_event_port);
    if (status)
        outw(probe_acpi.pm1a_event_port, status);
    for (unsigned i = 0; i < probe_acpi.gpe0_length / 2u; i++) {
        uint8_t gpe_status = inb(probe_acpi.gpe0_port + i);
        if (gpe_status)
            outb(probe_acpi.gpe0_port + i, gpe_status);
    }
    uint16_t enable_port = probe_acpi.pm1a_event_port + probe_acpi.pm1_event_length / 2;
    outw(enable_port, PM1_ENABLE_PWRBTN);
    interrupts_route_sci(probe_acpi.sci_gsi, probe_acpi.sci_level, probe_acpi.sci_active_low);
}

static void power_off(void)
{
    console_printf("PROBE POWEROFF");
    uint16_t control = inw(probe_acpi.pm1a_control_port);
    control &= ~(PM1_CONTROL_SLP_TYP | PM1_CONTROL_SLP_EN);
    control |= (uint16_t)(probe_acpi.s5_sleep_type << 10) | PM1_CONTROL_SLP_EN;
    outw(probe_acpi.pm1a_control_port, control);
}

void acpi_handle_sci(void)
{
    if (probe_acpi.pm1a_event_port) {
        uint16_t status = inw(probe_acpi.pm1a_event_port);
        if (status)
            outw(probe_acpi.pm1a_event_port, status); /* write 1 to clear */
        if (status & PM1_STATUS_PWRBTN)
            power_off();
    }
    for (unsigned i = 0; i < probe_acpi.gpe0_length / 2u; i++) {
        uint8_t status = inb(probe_acpi.gpe0_port + i);
        if (!status)
            continue;
        outb(probe_acpi.gpe0_port + i, status);
        for (unsigned bit = 0; bit < 8; bit++) {
            unsigned gpe = i * 8 + bit;
            if ((status & (1u << bit)) && gpe < GPE_MAX_BITS && gpe_handlers[gpe])
                gpe_handlers[gpe](gpe);
        }
    }
    /* Level-triggered: the stub masked the pin; re-open it now that the sources
     * are quiet (an event that came meanwhile fires again at once). */
    interrupts_unmask_sci();
}

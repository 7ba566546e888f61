/*
 * PCI bus 0 through configuration mechanism #1 (0xcf8/0xcfc, CPL3 through the
 * TSS I/O bitmap): enumeration, BAR sizing and placement, capability lists,
 * MSI-X tables. Like Linux, BARs the firmware placed are kept and the others
 * (hot-plugged devices, or no firmware at all as with plugvirt-vmm) are
 * placed here, in [0xc0000000, 0xfec00000) for memory and [0xc000, 0xffff)
 * for I/O.
 *
 * Every config access costs two port exits (~60 us from CPL3 on the PVM
 * host), so the code reads each register once where it can.
 */
#include "probe.h"

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA 0xcfc
#define PCI_ID 0x00
#define PCI_STATUS 0x06
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_CLASS_REVISION 0x08
#define PCI_HEADER_DWORD 0x0c /* cache line, latency, header type, BIST */
#define PCI_BAR0 0x10
#define PCI_ROM_ADDRESS 0x30
#define PCI_ROM_ADDRESS_MASK 0xfffff800u
#define PCI_CAPABILITY_LIST 0x34
#define HEADER_TYPE_MULTI_FUNCTION 0x80
#define HEADER_TYPE_NORMAL 0
#define HEADER_TYPE_BRIDGE 1
#define CLASS_HOST_BRIDGE 0x0600

#define MSIX_CONTROL 2
#define MSIX_TABLE 4
#define MSIX_CONTROL_ENABLE 0x8000
#define MSIX_CONTROL_FUNCTION_MASK 0x4000
#define MSIX_CONTROL_TABLE_SIZE 0x7ff
#define MSIX_ENTRY_SIZE 16
#define MSIX_ENTRY_VECTOR_CONTROL_MASKED 1
#define MSI_ADDRESS_BASE 0xfee00000u

#define MEMORY_WINDOW_START 0xc0000000ull
#define MEMORY_WINDOW_END 0xfec00000ull
#define IO_WINDOW_START 0xc000ull
#define IO_WINDOW_END 0xffffull
#define FOUR_GIB (1ull << 32)
#define PAGE_SIZE 4096ull
#define MAX_RANGES 256

struct address_range {
    bool used;
    uint16_t owner; /* bdf */
    uint64_t start, end;
};

static struct address_range memory_ranges[MAX_RANGES];
static struct address_range io_ranges[MAX_RANGES];
static struct pci_function functions[PCI_SLOTS * PCI_FUNCTIONS];

/* ---- configuration space ---- */

static void select_register(uint16_t bdf, unsigned offset)
{
    outl(PCI_CONFIG_ADDRESS, 0x80000000u | (uint32_t)bdf << 8 | (offset & 0xfc));
}

uint32_t pci_read32(uint16_t bdf, unsigned offset)
{
    select_register(bdf, offset);
    return inl(PCI_CONFIG_DATA);
}

uint16_t pci_read16(uint16_t bdf, unsigned offset)
{
    select_register(bdf, offset);
    return inw(PCI_CONFIG_DATA + (offset & 2));
}

uint8_t pci_read8(uint16_t bdf, unsigned offset)
{
    select_register(bdf, offset);
    return inb(PCI_CONFIG_DATA + (offset & 3));
}

void pci_write32(uint16_t bdf, unsigned offset, uint32_t value)
{
    select_register(bdf, offset);
    outl(PCI_CONFIG_DATA, value);
}

void pci_write16(uint16_t bdf, unsigned offset, uint16_t value)
{
    select_register(bdf, offset);
    outw(PCI_CONFIG_DATA + (offset & 2), value);
}

/* ---- address space bookkeeping ---- */

static bool range_overlaps(const struct address_range *ranges, uint64_t start, uint64_t end,
                           uint64_t *blocker_end)
{
    for (unsigned i = 0; i < MAX_RANGES; i++) {
        if (ranges[i].used && start < ranges[i].end && ranges[i].start < end) {
            *blocker_end = ranges[i].end;
            return true;
        }
    }
    return false;
}

static bool range_add(struct address_range *ranges, uint64_t start, uint64_t size, uint16_t owner)
{
    for (unsigned i = 0; i < MAX_RANGES; i++) {
        if (!ranges[i].used) {
            ranges[i] = (struct address_range){true, owner, start, start + size};
            return true;
        }
    }
    return false;
}

/* Keeps [start, start+size) for owner unless it collides with something kept. */
static bool range_reserve(struct address_range *ranges, uint64_t start, uint64_t size,
                          uint16_t owner)
{
    uint64_t ignored;
    if (range_overlaps(ranges, start, start + size, &ignored))
        return false;
    return range_add(ranges, start, size, owner);
}

/* First fit in [window_start, window_end); 0 when nothing fits. */
static uint64_t range_allocate(struct address_range *ranges, uint64_t window_start,
                               uint64_t window_end, uint64_t size, uint64_t alignment,
                               uint16_t owner)
{
    uint64_t candidate = (window_start + alignment - 1) & ~(alignment - 1);
    for (;;) {
        if (candidate + size > window_end || candidate + size < candidate)
            return 0;
        uint64_t blocker_end;
        if (!range_overlaps(ranges, candidate, candidate + size, &blocker_end))
            break;
        candidate = (blocker_end + alignment - 1) & ~(alignment - 1);
    }
    return range_add(ranges, candidate, size, owner) ? candidate : 0;
}

static void range_release(struct address_range *ranges, uint16_t owner)
{
    for (unsigned i = 0; i < MAX_RANGES; i++) {
        if (ranges[i].used && ranges[i].owner == owner)
            ranges[i].used = false;
    }
}

/* ---- BARs ---- */

static unsigned bar_count(const struct pci_function *function)
{
    if (function->header_type == HEADER_TYPE_NORMAL)
        return 6;
    return function->header_type == HEADER_TYPE_BRIDGE ? 2 : 0;
}

static uint64_t lowest_set_bit(uint64_t value)
{
    return value & (~value + 1);
}

/* Decoding is switched off while BARs hold all-ones (as Linux does), except on
 * host bridges, which must keep decoding. Returns the original command. */
static uint16_t decode_off(const struct pci_function *function)
{
    uint16_t command = pci_read16(function->bdf, PCI_COMMAND);
    if ((function->class_code >> 8) != CLASS_HOST_BRIDGE &&
        (command & (PCI_COMMAND_IO | PCI_COMMAND_MEMORY)))
        pci_write16(function->bdf, PCI_COMMAND, command & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY));
    return command;
}

static void decode_restore(const struct pci_function *function, uint16_t command)
{
    if ((function->class_code >> 8) != CLASS_HOST_BRIDGE &&
        (command & (PCI_COMMAND_IO | PCI_COMMAND_MEMORY)))
        pci_write16(function->bdf, PCI_COMMAND, command);
}

static uint32_t probe_register(uint16_t bdf, unsigned offset, uint32_t original, uint32_t probe)
{
    pci_write32(bdf, offset, probe);
    uint32_t mask = pci_read32(bdf, offset);
    pci_write32(bdf, offset, original);
    return mask;
}

/* Reads sizes and current addresses of all BARs; -1 if the device stopped answering. */
static int size_bars(struct pci_function *function, uint64_t *rom_address, uint64_t *rom_size)
{
    uint16_t bdf = function->bdf;
    unsigned count = bar_count(function);
    int result = 0;
    *rom_address = *rom_size = 0;
    uint16_t command = decode_off(function);
    for (unsigned i = 0; i < count; i++) {
        unsigned offset = PCI_BAR0 + 4 * i;
        struct pci_bar *bar = &function->bars[i];
        uint32_t original = pci_read32(bdf, offset);
        if (original == 0xffffffffu) {
            console_printf("PROBE WARN %s BAR%u reads 0xffffffff: device not answering",
                           function->name, i);
            result = -1;
            break;
        }
        uint32_t mask = probe_register(bdf, offset, original, 0xffffffffu);
        if (original & 1) {
            bar->io = true;
            bar->address = original & ~3u;
            bar->size = lowest_set_bit(mask & 0xfffffffcu);
        } else {
            uint64_t mask64 = mask & ~0xfu;
            bar->address = original & ~0xfu;
            bar->prefetchable = (original & 8) != 0;
            if (((original >> 1) & 3) == 2 && i + 1 < count) {
                bar->is_64bit = true;
                uint32_t high = pci_read32(bdf, offset + 4);
                uint32_t high_mask = probe_register(bdf, offset + 4, high, 0xffffffffu);
                mask64 |= (uint64_t)high_mask << 32;
                bar->address |= (uint64_t)high << 32;
            }
            bar->size = lowest_set_bit(mask64);
        }
        if (!bar->size)
            *bar = (struct pci_bar){0};
        if (bar->is_64bit)
            i++;
    }
    if (result == 0 && function->header_type == HEADER_TYPE_NORMAL) {
        uint32_t original = pci_read32(bdf, PCI_ROM_ADDRESS);
        if (original & PCI_ROM_ADDRESS_MASK) {
            uint32_t mask = probe_register(bdf, PCI_ROM_ADDRESS, original, PCI_ROM_ADDRESS_MASK);
            *rom_address = original & PCI_ROM_ADDRESS_MASK;
            *rom_size = lowest_set_bit(mask & PCI_ROM_ADDRESS_MASK);
        }
    }
    decode_restore(function, command);
    return result;
}

/* Keeps what the firmware placed, if it is usable: below 4 GiB (our page tables
 * end there) and not colliding. Anything else is left for assign_bars. */
static void reserve_firmware_bars(struct pci_function *function, uint64_t rom_address,
                                  uint64_t rom_size)
{
    for (unsigned i = 0; i < PCI_BARS; i++) {
        struct pci_bar *bar = &function->bars[i];
        if (!bar->size || !bar->address)
            continue;
        bool kept;
        if (bar->io)
            kept = bar->address + bar->size <= 0x10000 &&
                   range_reserve(io_ranges, bar->address, bar->size, function->bdf);
        else
            kept = bar->address + bar->size <= FOUR_GIB &&
                   range_reserve(memory_ranges, bar->address, bar->size, function->bdf);
        if (!kept) {
            console_printf("PROBE WARN %s BAR%u at 0x%lx (size 0x%lx) unusable, moving it",
                           function->name, i, bar->address, bar->size);
            bar->address = 0;
        }
    }
    if (rom_size && rom_address + rom_size <= FOUR_GIB)
        range_reserve(memory_ranges, rom_address, rom_size, function->bdf);
}

static void write_bar(struct pci_function *function, unsigned index)
{
    struct pci_bar *bar = &function->bars[index];
    unsigned offset = PCI_BAR0 + 4 * index;
    pci_write32(function->bdf, offset, (uint32_t)bar->address);
    if (bar->is_64bit)
        pci_write32(function->bdf, offset + 4, (uint32_t)(bar->address >> 32));
}

/* Places every implemented BAR that has no address yet (normal headers only). */
static void assign_bars(struct pci_function *function)
{
    if (function->header_type != HEADER_TYPE_NORMAL)
        return;
    uint16_t command = 0;
    bool decoding_off = false;
    for (unsigned i = 0; i < PCI_BARS; i++) {
        struct pci_bar *bar = &function->bars[i];
        if (!bar->size || bar->address)
            continue;
        if (!decoding_off) {
            command = decode_off(function);
            decoding_off = true;
        }
        if (bar->io)
            bar->address = range_allocate(io_ranges, IO_WINDOW_START, IO_WINDOW_END, bar->size,
                                          bar->size, function->bdf);
        else
            bar->address =
                range_allocate(memory_ranges, MEMORY_WINDOW_START, MEMORY_WINDOW_END, bar->size,
                               bar->size > PAGE_SIZE ? bar->size : PAGE_SIZE, function->bdf);
        if (!bar->address)
            console_printf("PROBE WARN %s BAR%u: no room for 0x%lx bytes of %s space",
                           function->name, i, bar->size, bar->io ? "I/O" : "memory");
        write_bar(function, i);
    }
    if (decoding_off)
        decode_restore(function, command);
}

/* ---- functions ---- */

static void format_name(uint16_t bdf, char *name)
{
    probe_format(name, 8, "%02x:%02x.%x", PCI_BUS(bdf), PCI_SLOT(bdf), PCI_FUNCTION(bdf));
}

bool pci_parse_bdf(const char *text, uint16_t *bdf)
{
    unsigned values[3] = {0, 0, 0};
    const char separators[3] = {':', '.', '\0'};
    const unsigned limits[3] = {0xff, 0x1f, 7};
    for (unsigned part = 0; part < 3; part++) {
        unsigned digits = 0;
        for (; *text && *text != separators[part]; text++, digits++) {
            char c = *text;
            unsigned digit;
            if (c >= '0' && c <= '9')
                digit = (unsigned)(c - '0');
            else if (c >= 'a' && c <= 'f')
                digit = (unsigned)(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                digit = (unsigned)(c - 'A' + 10);
            else
                return false;
            values[part] = values[part] * 16 + digit;
            if (digits > 2 || values[part] > limits[part])
                return false;
        }
        if (!digits || *text != separators[part])
            return false;
        if (*text)
            text++;
    }
    *bdf = (uint16_t)(values[0] << 8 | values[1] << 3 | values[2]);
    return true;
}

struct pci_function *pci_find(uint16_t bdf)
{
    if (PCI_BUS(bdf) != 0)
        return NULL;
    struct pci_function *function = &functions[bdf & 0xff];
    return function->present ? function : NULL;
}

/* Reads identity and BARs of a function that answered with `id`; NULL (after a
 * WARN) if it stops answering halfway. Firmware BARs are reserved here. */
static struct pci_function *discover(uint16_t bdf, uint32_t id)
{
    struct pci_function *function = &functions[bdf & 0xff];
    memset(function, 0, sizeof(*function));
    function->bdf = bdf;
    format_name(bdf, function->name);
    function->vendor = (uint16_t)id;
    function->device = (uint16_t)(id >> 16);
    uint32_t class_revision = pci_read32(bdf, PCI_CLASS_REVISION);
    uint32_t header = pci_read32(bdf, PCI_HEADER_DWORD);
    if (class_revision == 0xffffffffu || header == 0xffffffffu) {
        console_printf("PROBE WARN %s %04x:%04x stopped answering config reads", function->name,
                       function->vendor, function->device);
        return NULL;
    }
    function->class_code = class_revision >> 8;
    function->header_type = (header >> 16) & 0x7f;
    function->present = true;
    uint64_t rom_address, rom_size;
    if (size_bars(function, &rom_address, &rom_size) < 0) {
        memset(function->bars, 0, sizeof(function->bars));
        return function; /* listed, but left alone */
    }
    reserve_firmware_bars(function, rom_address, rom_size);
    return function;
}

static void start(struct pci_function *function)
{
    if (virtio_blk_matches(function) && virtio_blk_attach(function) == 0)
        return;
    if (virtio_net_matches(function) && virtio_net_attach(function) == 0)
        return;
    console_printf("PROBE PCI ADD %s %04x:%04x %06x", function->name, function->vendor,
                   function->device, function->class_code);
}

void pci_remove(struct pci_function *function)
{
    bool answering = pci_read16(function->bdf, PCI_ID) == function->vendor;
    if (function->driver_kind == PCI_DRIVER_VIRTIO_BLK) {
        virtio_blk_detach(function, answering);
    } else if (function->driver_kind == PCI_DRIVER_VIRTIO_NET) {
        virtio_net_detach(function, answering);
    } else if (answering) {
        uint16_t command = pci_read16(function->bdf, PCI_COMMAND);
        pci_write16(function->bdf, PCI_COMMAND,
                    command & ~(PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY | PCI_COMMAND_IO));
    }
    range_release(memory_ranges, function->bdf);
    range_release(io_ranges, function->bdf);
    memset(function, 0, sizeof(*function));
}

static bool is_multi_function(uint16_t slot_bdf)
{
    return (pci_read8(slot_bdf, PCI_HEADER_DWORD + 2) & HEADER_TYPE_MULTI_FUNCTION) != 0;
}

void pci_init(void)
{
    /* First find everything and keep the firmware's placements, then place the
     * rest around them, then start drivers. */
    for (unsigned slot = 0; slot < PCI_SLOTS; slot++) {
        for (unsigned fn = 0; fn < PCI_FUNCTIONS; fn++) {
            uint16_t bdf = PCI_DEVFN(slot, fn);
            uint32_t id = pci_read32(bdf, PCI_ID);
            if ((uint16_t)id == 0xffff || (uint16_t)id == 0) {
                if (fn == 0)
                    break;
                continue;
            }
            discover(bdf, id);
            if (fn == 0 && !is_multi_function(bdf))
                break;
        }
    }
    for (unsigned i = 0; i < PCI_SLOTS * PCI_FUNCTIONS; i++) {
        if (functions[i].present)
            assign_bars(&functions[i]);
    }
    for (unsigned i = 0; i < PCI_SLOTS * PCI_FUNCTIONS; i++) {
        if (functions[i].present)
            start(&functions[i]);
    }
}

static void forget_slot_functions(unsigned slot, unsigned first_function)
{
    for (unsigned fn = first_function; fn < PCI_FUNCTIONS; fn++) {
        struct pci_function *function = &functions[PCI_DEVFN(slot, fn)];
        if (!function->present)
            continue;
        console_printf("PROBE WARN %s %04x:%04x disappeared without an eject", function->name,
                       function->vendor, function->device);
        pci_remove(function);
    }
}

void pci_rescan(uint32_t up_slots)
{
    for (unsigned slot = 0; slot < PCI_SLOTS; slot++) {
        uint16_t slot_bdf = PCI_DEVFN(slot, 0);
        uint32_t id = pci_read32(slot_bdf, PCI_ID);
        if ((uint16_t)id == 0xffff || (uint16_t)id == 0) {
            if (up_slots & (1u << slot))
                console_printf("PROBE WARN slot %u: insert event but no device answers", slot);
            forget_slot_functions(slot, 0);
            continue;
        }
        bool multi = is_multi_function(slot_bdf);
        for (unsigned fn = 0; fn < PCI_FUNCTIONS; fn++) {
            uint16_t bdf = PCI_DEVFN(slot, fn);
            if (fn > 0) {
                if (!multi) {
                    forget_slot_functions(slot, fn);
                    break;
                }
                id = pci_read32(bdf, PCI_ID);
            }
            struct pci_function *known = &functions[bdf];
            bool absent = (uint16_t)id == 0xffff || (uint16_t)id == 0;
            if (known->present && (absent || known->vendor != (uint16_t)id ||
                                   known->device != (uint16_t)(id >> 16))) {
                console_printf("PROBE WARN %s %04x:%04x disappeared without an eject", known->name,
                               known->vendor, known->device);
                pci_remove(known);
            }
            if (absent || known->present)
                continue;
            struct pci_function *function = discover(bdf, id);
            if (!function)
                continue;
            assign_bars(function);
            start(function);
        }
    }
}

void pci_list(void)
{
    for (unsigned i = 0; i < PCI_SLOTS * PCI_FUNCTIONS; i++) {
        if (functions[i].present)
            console_printf("PROBE PCI %s %04x:%04x", functions[i].name, functions[i].vendor,
                           functions[i].device);
    }
    console_printf("PROBE PCI END");
}

/* ---- capabilities and MSI-X ---- */

int pci_capabilities(struct pci_function *function, struct pci_capability *capabilities)
{
    uint16_t status = pci_read16(function->bdf, PCI_STATUS);
    if (status == 0xffff) {
        console_printf("PROBE WARN %s status reads 0xffff: device not answering", function->name);
        return -1;
    }
    if (!(status & PCI_STATUS_CAP_LIST))
        return 0;
    unsigned pointer = pci_read8(function->bdf, PCI_CAPABILITY_LIST) & 0xfc;
    int count = 0;
    while (pointer) {
        if (pointer < 0x40) {
            console_printf("PROBE WARN %s bad capability pointer 0x%x", function->name, pointer);
            return -1;
        }
        if (count == PCI_MAX_CAPABILITIES) {
            console_printf("PROBE WARN %s capability list does not end (loop?)", function->name);
            return -1;
        }
        uint16_t header = pci_read16(function->bdf, pointer);
        if (header == 0xffff) {
            console_printf("PROBE WARN %s capability at 0x%x reads 0xffff", function->name,
                           pointer);
            return -1;
        }
        capabilities[count].offset = (uint8_t)pointer;
        capabilities[count].id = (uint8_t)header;
        count++;
        pointer = (header >> 8) & 0xfc;
    }
    return count;
}

int pci_msix_init(struct pci_function *function, uint8_t capability, struct pci_msix *msix)
{
    uint16_t control = pci_read16(function->bdf, capability + MSIX_CONTROL);
    uint32_t table = pci_read32(function->bdf, capability + MSIX_TABLE);
    unsigned bar_index = table & 7;
    uint64_t offset = table & ~7u;
    msix->capability = 0;
    msix->table_size = (control & MSIX_CONTROL_TABLE_SIZE) + 1u;
    const struct pci_bar *bar = bar_index < PCI_BARS ? &function->bars[bar_index] : NULL;
    if (control == 0xffff || !bar || !bar->size || bar->io || !bar->address ||
        offset + msix->table_size * MSIX_ENTRY_SIZE > bar->size) {
        console_printf("PROBE WARN %s MSI-X table (BAR%u offset 0x%lx, %u entries) unusable",
                       function->name, bar_index, offset, msix->table_size);
        return -1;
    }
    msix->capability = capability;
    msix->table_address = bar->address + offset;
    return 0;
}

void pci_msix_set_vector(struct pci_msix *msix, unsigned entry, uint8_t vector)
{
    uint64_t address = msix->table_address + entry * MSIX_ENTRY_SIZE;
    /* Fixed delivery, edge, physical destination = the boot CPU. */
    mmio_write32(address, MSI_ADDRESS_BASE | interrupts_boot_apic_id() << 12);
    mmio_write32(address + 4, 0);
    mmio_write32(address + 8, vector);
    mmio_write32(address + 12, 0); /* unmasked */
}

void pci_msix_enable(struct pci_function *function, struct pci_msix *msix, bool enable)
{
    if (!msix->capability)
        return;
    unsigned offset = msix->capability + MSIX_CONTROL;
    uint16_t control = pci_read16(function->bdf, offset);
    if (enable) {
        /* Enable with the function masked, mask every entry, unmask later per entry. */
        pci_write16(function->bdf, offset,
                    control | MSIX_CONTROL_ENABLE | MSIX_CONTROL_FUNCTION_MASK);
        for (unsigned i = 0; i < msix->table_size; i++)
            mmio_write32(msix->table_address + i * MSIX_ENTRY_SIZE + 12,
                         MSIX_ENTRY_VECTOR_CONTROL_MASKED);
        pci_write16(function->bdf, offset,
                    (control | MSIX_CONTROL_ENABLE) & ~MSIX_CONTROL_FUNCTION_MASK);
    } else {
        pci_write16(function->bdf, offset, control & ~MSIX_CONTROL_ENABLE);
    }
}

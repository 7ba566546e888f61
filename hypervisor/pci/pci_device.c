/* A PCI function as a device model builds it: identity, BARs, capabilities
 * and MSI-X layout (before it is plugged); see pci_device.h. */
#include "pci/pci_device.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define PCI_MIN_MEMORY_BAR_SIZE 16
#define PCI_MIN_IO_BAR_SIZE 4
#define PCI_MAX_IO_BAR_SIZE 0x10000
#define PCI_MAX_MEMORY32_BAR_SIZE 0x80000000ULL
#define PCI_COMMAND_WRITABLE                                                                       \
    (PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_PARITY |               \
     PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE)

void pci_device_init(struct pci_device *device, const struct pci_device_ops *ops,
                     const char *driver, const char *id, uint16_t vendor_id, uint16_t device_id,
                     uint32_t class_code, uint8_t revision, uint16_t subsystem_vendor_id,
                     uint16_t subsystem_id)
{
    memset(device, 0, sizeof(*device));
    device->ops = ops;
    snprintf(device->driver, sizeof(device->driver), "%s", driver ? driver : "");
    snprintf(device->id, sizeof(device->id), "%s", id ? id : "");
    device->slot = -1;
    pthread_mutex_init(&device->config_lock, NULL);
    pci_config_write16(device, PCI_VENDOR_ID, vendor_id);
    pci_config_write16(device, PCI_DEVICE_ID, device_id);
    device->config[PCI_REVISION_ID] = revision;
    device->config[PCI_CLASS_PROG] = (uint8_t)class_code;
    pci_config_write16(device, PCI_CLASS_DEVICE, (uint16_t)(class_code >> 8));
    device->config[PCI_HEADER_TYPE] = 0;
    pci_config_write16(device, PCI_SUBSYSTEM_VENDOR_ID, subsystem_vendor_id);
    pci_config_write16(device, PCI_SUBSYSTEM_ID, subsystem_id);
    device->config[PCI_INTERRUPT_PIN] = 1; /* INTA# */
    pci_writable_write16(device, PCI_COMMAND, PCI_COMMAND_WRITABLE);
    device->config_writable[PCI_CACHE_LINE_SIZE] = 0xff;
    device->config_writable[PCI_LATENCY_TIMER] = 0xff;
    device->config_writable[PCI_INTERRUPT_LINE] = 0xff;
    device->next_capability = PCI_FIRST_CAPABILITY_OFFSET;
    for (unsigned i = 0; i < PCI_MSIX_MAX_VECTORS; i++) {
        device->msix.irqfd[i] = -1;
        device->msix.gsi[i] = -1;
    }
}

static uint64_t round_up_power_of_two(uint64_t value)
{
    uint64_t result = 1;
    while (result < value)
        result <<= 1;
    return result;
}

/* The low type bits and the writable mask of a BAR's register(s). */
static void bar_register_layout(const struct pci_bar *bar, uint32_t *type_bits, uint64_t *writable)
{
    if (bar->kind == PCI_BAR_IO) {
        *type_bits = PCI_BASE_ADDRESS_SPACE_IO;
        *writable = ~(bar->size - 1) & 0xfffffffcULL;
    } else {
        *type_bits = bar->kind == PCI_BAR_MEMORY64 ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0;
        if (bar->prefetchable)
            *type_bits |= PCI_BASE_ADDRESS_MEM_PREFETCH;
        *writable = ~(bar->size - 1) & ~0xfULL;
        if (bar->kind == PCI_BAR_MEMORY32)
            *writable &= 0xffffffffULL;
    }
}

int pci_device_set_bar(struct pci_device *device, unsigned index, enum pci_bar_kind kind,
                       uint64_t size, const struct io_region_ops *ops, void *opaque,
                       struct pv_error *error)
{
    if (index >= PCI_BAR_COUNT || kind == PCI_BAR_NONE)
        return pv_error_set(error, -EINVAL, "%s: invalid BAR %u", device->driver, index);
    if (kind == PCI_BAR_MEMORY64 && index + 1 >= PCI_BAR_COUNT)
        return pv_error_set(error, -EINVAL, "%s: a 64-bit BAR cannot start at BAR %u",
                            device->driver, index);
    if (device->bars[index].kind != PCI_BAR_NONE ||
        (index > 0 && device->bars[index - 1].kind == PCI_BAR_MEMORY64) ||
        (kind == PCI_BAR_MEMORY64 && device->bars[index + 1].kind != PCI_BAR_NONE))
        return pv_error_set(error, -EEXIST, "%s: BAR %u is already declared", device->driver,
                            index);
    uint64_t minimum = kind == PCI_BAR_IO ? PCI_MIN_IO_BAR_SIZE : PCI_MIN_MEMORY_BAR_SIZE;
    uint64_t limit = kind == PCI_BAR_IO         ? PCI_MAX_IO_BAR_SIZE
                     : kind == PCI_BAR_MEMORY32 ? PCI_MAX_MEMORY32_BAR_SIZE
                                                : 1ULL << 62;
    if (size == 0 || size > limit)
        return pv_error_set(error, -EINVAL, "%s: BAR %u size 0x%llx is out of range",
                            device->driver, index, (unsigned long long)size);
    size = round_up_power_of_two(size < minimum ? minimum : size);

    struct pci_bar *bar = &device->bars[index];
    bar->kind = kind;
    bar->size = size;
    bar->address = 0;
    bar->mapped = false;
    bar->ops = ops;
    bar->opaque = opaque;

    uint32_t type_bits;
    uint64_t writable;
    bar_register_layout(bar, &type_bits, &writable);
    unsigned offset = PCI_BASE_ADDRESS_0 + 4 * index;
    pci_config_write32(device, offset, type_bits);
    pci_writable_write32(device, offset, (uint32_t)writable);
    if (kind == PCI_BAR_MEMORY64) {
        pci_config_write32(device, offset + 4, 0);
        pci_writable_write32(device, offset + 4, (uint32_t)(writable >> 32));
    }
    return 0;
}

int pci_device_set_bar_prefetchable(struct pci_device *device, unsigned index,
                                    struct pv_error *error)
{
    if (index >= PCI_BAR_COUNT || (device->bars[index].kind != PCI_BAR_MEMORY32 &&
                                   device->bars[index].kind != PCI_BAR_MEMORY64))
        return pv_error_set(error, -EINVAL, "%s: BAR %u is not a memory BAR", device->driver,
                            index);
    struct pci_bar *bar = &device->bars[index];
    bar->prefetchable = true;
    uint32_t type_bits;
    uint64_t writable;
    bar_register_layout(bar, &type_bits, &writable);
    pci_config_write32(device, PCI_BASE_ADDRESS_0 + 4 * index, type_bits);
    return 0;
}

int pci_device_add_capability(struct pci_device *device, uint8_t capability_id, unsigned length,
                              struct pv_error *error)
{
    unsigned offset = (device->next_capability + 3u) & ~3u;
    if (length < 2 || offset < PCI_FIRST_CAPABILITY_OFFSET ||
        offset + length > PCI_CONFIG_SPACE_SIZE)
        return pv_error_set(error, -ENOSPC, "%s: no room for a %u-byte capability 0x%02x",
                            device->driver, length, capability_id);
    device->config[offset] = capability_id;
    device->config[offset + 1] = 0;
    /* Append to the end of the chain so capabilities appear in the order added. */
    if (device->config[PCI_CAPABILITY_LIST] == 0) {
        device->config[PCI_CAPABILITY_LIST] = (uint8_t)offset;
    } else {
        unsigned last = device->config[PCI_CAPABILITY_LIST];
        while (device->config[last + 1] != 0)
            last = device->config[last + 1];
        device->config[last + 1] = (uint8_t)offset;
    }
    pci_config_write16(device, PCI_STATUS,
                       (uint16_t)(pci_config_read16(device, PCI_STATUS) | PCI_STATUS_CAP_LIST));
    device->next_capability =
        (uint8_t)(offset + length < PCI_CONFIG_SPACE_SIZE ? offset + length
                                                          : PCI_CONFIG_SPACE_SIZE - 1);
    return (int)offset;
}

int pci_device_init_msix(struct pci_device *device, unsigned vector_count, unsigned bar,
                         uint32_t table_offset, uint32_t pba_offset, struct pv_error *error)
{
    if (vector_count == 0 || vector_count > PCI_MSIX_MAX_VECTORS)
        return pv_error_set(error, -EINVAL, "%s: MSI-X vector count %u is out of range",
                            device->driver, vector_count);
    if (bar >= PCI_BAR_COUNT ||
        (device->bars[bar].kind != PCI_BAR_MEMORY32 && device->bars[bar].kind != PCI_BAR_MEMORY64))
        return pv_error_set(error, -EINVAL, "%s: MSI-X needs a declared memory BAR, not %u",
                            device->driver, bar);
    uint64_t size = device->bars[bar].size;
    uint64_t table_end = (uint64_t)table_offset + vector_count * PCI_MSIX_ENTRY_SIZE;
    uint64_t pba_end = (uint64_t)pba_offset + pci_msix_pba_length(vector_count);
    if ((table_offset & 7) || (pba_offset & 7) || table_end > size || pba_end > size ||
        (table_offset < pba_end && pba_offset < table_end))
        return pv_error_set(error, -EINVAL, "%s: MSI-X table/PBA do not fit BAR %u", device->driver,
                            bar);
    int capability =
        pci_device_add_capability(device, PCI_CAP_ID_MSIX, PCI_MSIX_CAPABILITY_LENGTH, error);
    if (capability < 0)
        return capability;
    struct pci_msix *msix = &device->msix;
    msix->vector_count = vector_count;
    msix->bar = bar;
    msix->table_offset = table_offset;
    msix->pba_offset = pba_offset;
    msix->capability_offset = (uint8_t)capability;
    msix->enabled = msix->function_masked = false;
    pci_config_write16(device, (unsigned)capability + PCI_MSIX_FLAGS,
                       (uint16_t)((vector_count - 1) & PCI_MSIX_FLAGS_QSIZE));
    pci_writable_write16(device, (unsigned)capability + PCI_MSIX_FLAGS,
                         PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
    pci_config_write32(device, (unsigned)capability + PCI_MSIX_TABLE, table_offset | bar);
    pci_config_write32(device, (unsigned)capability + PCI_MSIX_PBA, pba_offset | bar);
    for (unsigned i = 0; i < PCI_MSIX_MAX_VECTORS; i++) {
        memset(&msix->table[i], 0, sizeof(msix->table[i]));
        msix->table[i].control = PCI_MSIX_ENTRY_CTRL_MASKBIT;
    }
    memset(msix->pending, 0, sizeof(msix->pending));
    return 0;
}

unsigned pci_intx_gsi(unsigned slot)
{
    unsigned pirq = (slot - 1) & 3;
    return pirq < 2 ? PCI_INTX_GSI_AB : PCI_INTX_GSI_CD;
}

bool pci_device_get_bar_mapping(struct pci_device *device, unsigned bar, uint64_t *address)
{
    if (bar >= PCI_BAR_COUNT)
        return false;
    pthread_mutex_lock(&device->config_lock);
    bool mapped = device->bars[bar].mapped;
    if (address)
        *address = device->bars[bar].address;
    pthread_mutex_unlock(&device->config_lock);
    return mapped;
}

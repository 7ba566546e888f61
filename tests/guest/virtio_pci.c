/*
 * The virtio 1.x PCI modern transport, shared by the virtio-blk and
 * virtio-net drivers: vendor capabilities (COMMON/NOTIFY/ISR/DEVICE), the
 * status handshake, feature negotiation and split-queue set-up. Transitional
 * devices are driven through the same interface; the legacy I/O BAR is never
 * touched.
 */
#include "probe.h"

#define VIRTIO_PCI_CAP_COMMON 1
#define VIRTIO_PCI_CAP_NOTIFY 2
#define VIRTIO_PCI_CAP_ISR 3
#define VIRTIO_PCI_CAP_DEVICE 4

/* virtio_pci_common_cfg */
#define COMMON_DEVICE_FEATURE_SELECT 0x00
#define COMMON_DEVICE_FEATURE 0x04
#define COMMON_DRIVER_FEATURE_SELECT 0x08
#define COMMON_DRIVER_FEATURE 0x0c
#define COMMON_CONFIG_MSIX_VECTOR 0x10
#define COMMON_DEVICE_STATUS 0x14
#define COMMON_CONFIG_GENERATION 0x15
#define COMMON_QUEUE_SELECT 0x16
#define COMMON_QUEUE_SIZE 0x18
#define COMMON_QUEUE_MSIX_VECTOR 0x1a
#define COMMON_QUEUE_ENABLE 0x1c
#define COMMON_QUEUE_NOTIFY_OFF 0x1e
#define COMMON_QUEUE_DESC 0x20
#define COMMON_QUEUE_DRIVER 0x28
#define COMMON_QUEUE_DEVICE 0x30
#define COMMON_MIN_LENGTH 0x38

#define RESET_POLL_US 1000
#define RESET_POLLS 1000

struct capability_region {
    bool found;
    uint64_t address;
    uint32_t length;
    uint32_t notify_multiplier;
};

uint8_t virtio_pci_status(const struct virtio_pci *device)
{
    return mmio_read8(device->common + COMMON_DEVICE_STATUS);
}

void virtio_pci_set_status(struct virtio_pci *device, uint8_t bits)
{
    mmio_write8(device->common + COMMON_DEVICE_STATUS, virtio_pci_status(device) | bits);
}

bool virtio_pci_reset(struct virtio_pci *device)
{
    mmio_write8(device->common + COMMON_DEVICE_STATUS, 0);
    for (unsigned i = 0; i < RESET_POLLS; i++) {
        if (virtio_pci_status(device) == 0)
            return true;
        probe_sleep_us(RESET_POLL_US);
    }
    return false;
}

const char *virtio_pci_find(struct virtio_pci *device)
{
    struct pci_function *function = device->function;
    struct pci_capability capabilities[PCI_MAX_CAPABILITIES];
    struct capability_region regions[5] = {0};
    int count = pci_capabilities(function, capabilities);
    if (count < 0)
        return "bad capability list";
    uint8_t msix_capability = 0;
    for (int i = 0; i < count; i++) {
        uint8_t offset = capabilities[i].offset;
        if (capabilities[i].id == PCI_CAP_ID_MSIX && !msix_capability)
            msix_capability = offset;
        if (capabilities[i].id != PCI_CAP_ID_VENDOR)
            continue;
        uint8_t length = pci_read8(function->bdf, offset + 2);
        uint8_t type = pci_read8(function->bdf, offset + 3);
        uint8_t bar_index = pci_read8(function->bdf, offset + 4);
        if (length < 16 || type < VIRTIO_PCI_CAP_COMMON || type > VIRTIO_PCI_CAP_DEVICE ||
            regions[type].found || bar_index >= PCI_BARS)
            continue; /* unknown, duplicate or reserved: the spec says skip it */
        uint32_t region_offset = pci_read32(function->bdf, offset + 8);
        uint32_t region_length = pci_read32(function->bdf, offset + 12);
        const struct pci_bar *bar = &function->bars[bar_index];
        if (bar->io || !bar->address || (uint64_t)region_offset + region_length > bar->size) {
            console_printf("PROBE WARN %s virtio capability %u points outside BAR%u",
                           function->name, type, bar_index);
            continue;
        }
        struct capability_region *region = &regions[type];
        region->address = bar->address + region_offset;
        region->length = region_length;
        if (type == VIRTIO_PCI_CAP_NOTIFY) {
            if (length < 20)
                continue;
            region->notify_multiplier = pci_read32(function->bdf, offset + 16);
        }
        region->found = true;
    }
    if (!regions[VIRTIO_PCI_CAP_COMMON].found || !regions[VIRTIO_PCI_CAP_NOTIFY].found ||
        !regions[VIRTIO_PCI_CAP_DEVICE].found)
        return "no usable virtio 1.x (modern) capabilities";
    if (regions[VIRTIO_PCI_CAP_COMMON].length < COMMON_MIN_LENGTH ||
        regions[VIRTIO_PCI_CAP_DEVICE].length < 8)
        return "virtio capability regions too short";
    if (!msix_capability)
        return "no MSI-X capability";
    if (pci_msix_init(function, msix_capability, &device->msix) < 0)
        return "unusable MSI-X table";
    device->common = regions[VIRTIO_PCI_CAP_COMMON].address;
    device->device_config = regions[VIRTIO_PCI_CAP_DEVICE].address;
    device->device_config_length = regions[VIRTIO_PCI_CAP_DEVICE].length;
    device->notify_base = regions[VIRTIO_PCI_CAP_NOTIFY].address;
    device->notify_length = regions[VIRTIO_PCI_CAP_NOTIFY].length;
    device->notify_multiplier = regions[VIRTIO_PCI_CAP_NOTIFY].notify_multiplier;
    return NULL;
}

const char *virtio_pci_start(struct virtio_pci *device, uint64_t wanted)
{
    struct pci_function *function = device->function;
    uint16_t command = pci_read16(function->bdf, PCI_COMMAND);
    pci_write16(function->bdf, PCI_COMMAND,
                command | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
    if (virtio_pci_status(device) == 0xff)
        return "common config reads 0xff: device not answering";
    if (!virtio_pci_reset(device))
        return "reset did not complete";
    virtio_pci_set_status(device, VIRTIO_STATUS_ACKNOWLEDGE);
    virtio_pci_set_status(device, VIRTIO_STATUS_DRIVER);

    mmio_write32(device->common + COMMON_DEVICE_FEATURE_SELECT, 0);
    uint64_t offered = mmio_read32(device->common + COMMON_DEVICE_FEATURE);
    mmio_write32(device->common + COMMON_DEVICE_FEATURE_SELECT, 1);
    offered |= (uint64_t)mmio_read32(device->common + COMMON_DEVICE_FEATURE) << 32;
    if (!(offered & VIRTIO_F_VERSION_1)) {
        virtio_pci_set_status(device, VIRTIO_STATUS_FAILED);
        return "device does not offer VIRTIO_F_VERSION_1";
    }
    device->features = offered & wanted;
    mmio_write32(device->common + COMMON_DRIVER_FEATURE_SELECT, 0);
    mmio_write32(device->common + COMMON_DRIVER_FEATURE, (uint32_t)device->features);
    mmio_write32(device->common + COMMON_DRIVER_FEATURE_SELECT, 1);
    mmio_write32(device->common + COMMON_DRIVER_FEATURE, (uint32_t)(device->features >> 32));
    virtio_pci_set_status(device, VIRTIO_STATUS_FEATURES_OK);
    if (!(virtio_pci_status(device) & VIRTIO_STATUS_FEATURES_OK)) {
        virtio_pci_set_status(device, VIRTIO_STATUS_FAILED);
        return "device refused FEATURES_OK";
    }
    pci_msix_enable(function, &device->msix, true);
    return NULL;
}

const char *virtio_pci_set_config_vector(struct virtio_pci *device, uint16_t entry)
{
    mmio_write16(device->common + COMMON_CONFIG_MSIX_VECTOR, entry);
    if (mmio_read16(device->common + COMMON_CONFIG_MSIX_VECTOR) != entry) {
        virtio_pci_set_status(device, VIRTIO_STATUS_FAILED);
        return "device rejected the MSI-X entry for config changes";
    }
    return NULL;
}

static void write64(uint64_t address, uint64_t value)
{
    mmio_write32(address, (uint32_t)value);
    mmio_write32(address + 4, (uint32_t)(value >> 32));
}

const char *virtio_pci_setup_queue(struct virtio_pci *device, struct virtio_queue_setup *setup)
{
    mmio_write16(device->common + COMMON_QUEUE_SELECT, setup->index);
    uint16_t maximum = mmio_read16(device->common + COMMON_QUEUE_SIZE);
    if (maximum == 0 || maximum == 0xffff) {
        virtio_pci_set_status(device, VIRTIO_STATUS_FAILED);
        return "queue not available";
    }
    uint16_t size = setup->size_limit;
    while (size > maximum)
        size >>= 1; /* split rings want a power of two */
    setup->size = size;
    mmio_write16(device->common + COMMON_QUEUE_SIZE, size);
    mmio_write16(device->common + COMMON_QUEUE_MSIX_VECTOR, setup->msix_entry);
    if (mmio_read16(device->common + COMMON_QUEUE_MSIX_VECTOR) != setup->msix_entry) {
        virtio_pci_set_status(device, VIRTIO_STATUS_FAILED);
        return "device rejected the queue's MSI-X entry";
    }
    write64(device->common + COMMON_QUEUE_DESC, setup->desc);
    write64(device->common + COMMON_QUEUE_DRIVER, setup->avail);
    write64(device->common + COMMON_QUEUE_DEVICE, setup->used);
    uint16_t notify_offset = mmio_read16(device->common + COMMON_QUEUE_NOTIFY_OFF);
    uint64_t notify_at = (uint64_t)notify_offset * device->notify_multiplier;
    if (notify_at + 2 > device->notify_length) {
        virtio_pci_set_status(device, VIRTIO_STATUS_FAILED);
        return "queue notify address outside the notify region";
    }
    setup->notify = device->notify_base + notify_at;
    mmio_write16(device->common + COMMON_QUEUE_ENABLE, 1);
    return NULL;
}

uint8_t virtio_pci_config_generation(const struct virtio_pci *device)
{
    return mmio_read8(device->common + COMMON_CONFIG_GENERATION);
}

void virtio_pci_stop(struct virtio_pci *device, bool device_present)
{
    if (!device_present)
        return;
    struct pci_function *function = device->function;
    if (device->common && !virtio_pci_reset(device))
        console_printf("PROBE WARN %s virtio reset did not complete", function->name);
    pci_msix_enable(function, &device->msix, false);
    uint16_t command = pci_read16(function->bdf, PCI_COMMAND);
    pci_write16(function->bdf, PCI_COMMAND, command & ~PCI_COMMAND_MASTER);
}

/* virtio-blk-pci register interface without KVM: capabilities, common config,
 * ISR/INTx, notify → I/O thread, PCI_CFG window. The device is not plugged
 * (no bus, no VM): BAR accesses go straight to the BAR handlers. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"
#include "pci/pci.h"
#include "qemu_options.h"
#include "virtio/virtio_blk.h"
#include "virtio/virtio_pci.h"

#define RAM_SIZE (1u << 20)

static uint8_t *ram;

static void *translate(void *opaque, uint64_t gpa, uint64_t length)
{
    (void)opaque;
    if (gpa >= RAM_SIZE || length > RAM_SIZE - gpa)
        return NULL;
    return ram + gpa;
}

static struct pci_device *device;
static struct block_layer *layer;
static char path[] = "/tmp/pv-vpci-XXXXXX";

static void setup(void)
{
    ram = calloc(1, RAM_SIZE);
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, 1 << 20), 0);
    close(fd);
    layer = block_layer_create();
    char text[128];
    snprintf(text, sizeof(text), "file=%s,if=none,id=drive0", path);
    struct qemu_options options;
    cr_assert_eq(qemu_options_parse(&options, text, NULL, 0, NULL), 0);
    cr_assert_eq(block_drive_add(layer, &options, NULL, NULL), 0);
    qemu_options_free(&options);
    struct virtio_blk_options blk_options;
    virtio_blk_options_init(&blk_options);
    blk_options.block_layer = layer;
    blk_options.drive = "drive0";
    blk_options.id = "vd1";
    struct pv_error error = {0};
    device = virtio_blk_create(NULL, &blk_options, &error);
    cr_assert_not_null(device, "%s", error.message);
    struct guest_memory memory = {translate, NULL};
    virtio_device_set_memory(virtio_pci_get_virtio(device), &memory);
}

static void teardown(void)
{
    device->ops->destroy(device);
    block_layer_destroy(layer);
    unlink(path);
    strcpy(path, "/tmp/pv-vpci-XXXXXX");
    free(ram);
}

static uint32_t bar_read(uint64_t offset, unsigned size)
{
    uint32_t value = 0;
    device->bars[VIRTIO_PCI_MODERN_BAR].ops->read(device->bars[VIRTIO_PCI_MODERN_BAR].opaque,
                                                  offset, &value, size);
    return value;
}

static void bar_write(uint64_t offset, uint32_t value, unsigned size)
{
    device->bars[VIRTIO_PCI_MODERN_BAR].ops->write(device->bars[VIRTIO_PCI_MODERN_BAR].opaque,
                                                   offset, &value, size);
}

static uint16_t config16(unsigned offset)
{
    uint16_t value;
    memcpy(&value, device->config + offset, 2);
    return value;
}

static uint32_t config32(unsigned offset)
{
    uint32_t value;
    memcpy(&value, device->config + offset, 4);
    return value;
}

/* Offset of the vendor capability of `type`, 0 if none. */
static unsigned find_virtio_cap(uint8_t type)
{
    for (unsigned cap = device->config[PCI_CAPABILITY_LIST]; cap; cap = device->config[cap + 1])
        if (device->config[cap] == PCI_CAP_ID_VENDOR && device->config[cap + 3] == type)
            return cap;
    return 0;
}

TestSuite(virtio_pci, .init = setup, .fini = teardown);

Test(virtio_pci, identity_bars_and_capabilities)
{
    cr_assert_eq(config16(PCI_VENDOR_ID), 0x1af4);
    cr_assert_eq(config16(PCI_DEVICE_ID), 0x1042);
    cr_assert_eq(device->config[PCI_REVISION_ID], 1);
    cr_assert_geq(config16(PCI_SUBSYSTEM_ID), 0x40);
    cr_assert_eq(device->bars[1].size, 0x1000);
    cr_assert_eq(device->bars[4].kind, PCI_BAR_MEMORY64);
    cr_assert_eq(device->bars[4].size, 0x4000);
    cr_assert_eq(device->msix.vector_count, 2);
    cr_assert_eq(device->msix.pba_offset, 0x800);

    const struct {
        uint8_t type;
        uint32_t offset;
    } expected[] = {{VIRTIO_PCI_CAP_COMMON_CFG, 0},
                    {VIRTIO_PCI_CAP_ISR_CFG, 0x1000},
                    {VIRTIO_PCI_CAP_DEVICE_CFG, 0x2000},
                    {VIRTIO_PCI_CAP_NOTIFY_CFG, 0x3000}};
    for (unsigned i = 0; i < 4; i++) {
        unsigned cap = find_virtio_cap(expected[i].type);
        cr_assert_neq(cap, 0, "capability type %u", expected[i].type);
        cr_assert_eq(device->config[cap + 4], 4);
        cr_assert_eq(config32(cap + 8), expected[i].offset);
        cr_assert_eq(config32(cap + 12), 0x1000);
    }
    cr_assert_eq(config32(find_virtio_cap(VIRTIO_PCI_CAP_NOTIFY_CFG) + 16), 4);
    cr_assert_neq(find_virtio_cap(VIRTIO_PCI_CAP_PCI_CFG), 0, "PCI_CFG is mandatory");
    cr_assert_neq(device->msix.capability_offset, 0);
}

Test(virtio_pci, driver_setup_request_and_intx_interrupt)
{
    bar_write(VIRTIO_PCI_COMMON_STATUS, 0, 1);
    bar_write(VIRTIO_PCI_COMMON_STATUS, 3, 1);
    bar_write(VIRTIO_PCI_COMMON_DFSELECT, 1, 4);
    cr_assert_eq(bar_read(VIRTIO_PCI_COMMON_DF, 4), 1, "VERSION_1");
    bar_write(VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
    bar_write(VIRTIO_PCI_COMMON_GF, 1, 4);
    bar_write(VIRTIO_PCI_COMMON_STATUS, 3 | VIRTIO_CONFIG_S_FEATURES_OK, 1);
    cr_assert(bar_read(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_FEATURES_OK);
    cr_assert_eq(bar_read(VIRTIO_PCI_COMMON_NUMQ, 2), 1);

    bar_write(VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
    cr_assert_eq(bar_read(VIRTIO_PCI_COMMON_Q_SIZE, 2), 256);
    bar_write(VIRTIO_PCI_COMMON_Q_SIZE, 16, 2);
    bar_write(VIRTIO_PCI_COMMON_Q_MSIX, 7, 2);
    cr_assert_eq(bar_read(VIRTIO_PCI_COMMON_Q_MSIX, 2), 0xffff, "only vectors 0 and 1 exist");
    bar_write(VIRTIO_PCI_COMMON_Q_MSIX, 1, 2);
    cr_assert_eq(bar_read(VIRTIO_PCI_COMMON_Q_MSIX, 2), 1);
    bar_write(VIRTIO_PCI_COMMON_Q_DESCLO, 0x1000, 4);
    bar_write(VIRTIO_PCI_COMMON_Q_DESCHI, 0, 4);
    bar_write(VIRTIO_PCI_COMMON_Q_AVAILLO, 0x2000, 4);
    bar_write(VIRTIO_PCI_COMMON_Q_USEDLO, 0x3000, 4);
    cr_assert_eq(bar_read(VIRTIO_PCI_COMMON_Q_AVAILLO, 4), 0x2000);
    cr_assert_eq(bar_read(VIRTIO_PCI_COMMON_Q_NOFF, 2), 0);
    bar_write(VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
    cr_assert_eq(bar_read(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
    bar_write(VIRTIO_PCI_COMMON_Q_DESCLO, 0x9000, 4);
    cr_assert_eq(bar_read(VIRTIO_PCI_COMMON_Q_DESCLO, 4), 0x1000, "frozen once enabled");
    bar_write(VIRTIO_PCI_COMMON_STATUS, 3 | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK,
              1);

    uint64_t capacity = 0;
    capacity = bar_read(0x2000, 4) | (uint64_t)bar_read(0x2004, 4) << 32;
    cr_assert_eq(capacity, 2048);

    /* A flush request: header + status. */
    struct virtq_desc *table = (struct virtq_desc *)(ram + 0x1000);
    uint32_t header[4] = {VIRTIO_BLK_T_FLUSH, 0, 0, 0};
    memcpy(ram + 0x10000, header, 16);
    ram[0x10010] = 0xee;
    table[0] = (struct virtq_desc){0x10000, 16, VRING_DESC_F_NEXT, 1};
    table[1] = (struct virtq_desc){0x10010, 1, VRING_DESC_F_WRITE, 0};
    uint16_t *avail = (uint16_t *)(ram + 0x2000);
    avail[2] = 0;
    __atomic_store_n(&avail[1], 1, __ATOMIC_RELEASE);
    bar_write(0x3000, 0, 2); /* notify queue 0: the I/O thread takes it */

    uint16_t *used = (uint16_t *)(ram + 0x3000);
    for (int i = 0; i < 2000 && __atomic_load_n(&used[1], __ATOMIC_ACQUIRE) == 0; i++)
        usleep(1000);
    cr_assert_eq(used[1], 1);
    cr_assert_eq(ram[0x10010], VIRTIO_BLK_S_OK);
    for (int i = 0; i < 2000 && !(config16(PCI_STATUS) & PCI_STATUS_INTERRUPT); i++)
        usleep(1000);
    cr_assert(config16(PCI_STATUS) & PCI_STATUS_INTERRUPT, "INTx raised without MSI-X");
    cr_assert_eq(bar_read(0x1000, 1), 1, "ISR: queue interrupt");
    cr_assert_eq(bar_read(0x1000, 1), 0, "read-to-clear");
    cr_assert_not(config16(PCI_STATUS) & PCI_STATUS_INTERRUPT);

    bar_write(VIRTIO_PCI_COMMON_STATUS, 0, 1);
    cr_assert_eq(bar_read(VIRTIO_PCI_COMMON_STATUS, 1), 0);
    cr_assert_eq(bar_read(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0, "reset disables the queues");
    cr_assert_eq(bar_read(VIRTIO_PCI_COMMON_Q_SIZE, 2), 256);
}

Test(virtio_pci, pci_cfg_window_reaches_the_bar)
{
    unsigned cap = find_virtio_cap(VIRTIO_PCI_CAP_PCI_CFG);
    cr_assert_eq(device->config_writable[cap + 4], 0xff);
    /* Select device_status (1 byte) in BAR 4, as the bus would after a config write. */
    device->config[cap + 4] = 4;
    uint32_t offset = VIRTIO_PCI_COMMON_STATUS, length = 1;
    memcpy(device->config + cap + 8, &offset, 4);
    memcpy(device->config + cap + 12, &length, 4);
    device->ops->config_written(device, cap + 4, 4);
    device->ops->config_written(device, cap + 8, 4);
    device->ops->config_written(device, cap + 12, 4);
    cr_assert_eq(device->config[cap + 16], 0);
    device->config[cap + 16] = VIRTIO_CONFIG_S_ACKNOWLEDGE;
    device->ops->config_written(device, cap + 16, 1);
    cr_assert_eq(bar_read(VIRTIO_PCI_COMMON_STATUS, 1), VIRTIO_CONFIG_S_ACKNOWLEDGE);
    /* Reselecting reloads the data window. */
    device->ops->config_written(device, cap + 12, 4);
    cr_assert_eq(device->config[cap + 16], VIRTIO_CONFIG_S_ACKNOWLEDGE);
}

/* Virtio modern PCI transport; see virtio_pci.h. */
#include "virtio/virtio_pci.h"

#include <errno.h>
#include <linux/kvm.h>
#include <linux/virtio_pci.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "pci/pci.h"
#include "pci/pci_msix.h"
#include "pv_log.h"
#include "vm.h"

#define COMMON_CONFIG_SIZE 0x40

struct virtio_pci {
    struct pci_device pci; /* first: pci callbacks get this pointer */
    struct vm *vm;
    struct virtio_device *virtio;
    unsigned msix_vectors;
    /* Register selectors, under virtio->lock. */
    uint32_t device_feature_select, driver_feature_select;
    uint16_t queue_select;
    uint8_t pci_cfg_capability; /* offset of the PCI_CFG capability */
    /* KVM_IOEVENTFD registrations for the notify area. */
    bool ioeventfds_registered;
    uint64_t ioeventfd_base;
    uint32_t ioeventfd_length;
};

static struct virtio_pci *virtio_pci_of(struct pci_device *device)
{
    return (struct virtio_pci *)device;
}

struct virtio_device *virtio_pci_get_virtio(struct pci_device *device)
{
    return virtio_pci_of(device)->virtio;
}

static void *translate_guest(void *opaque, uint64_t gpa, uint64_t length)
{
    return vm_guest_pointer(opaque, gpa, length);
}

static void put16(uint8_t *base, unsigned offset, uint16_t value)
{
    memcpy(base + offset, &value, 2);
}

static void put32(uint8_t *base, unsigned offset, uint32_t value)
{
    memcpy(base + offset, &value, 4);
}

static void put64(uint8_t *base, unsigned offset, uint64_t value)
{
    memcpy(base + offset, &value, 8);
}

static uint16_t get16(const uint8_t *base, unsigned offset)
{
    uint16_t value;
    memcpy(&value, base + offset, 2);
    return value;
}

static uint32_t get32(const uint8_t *base, unsigned offset)
{
    uint32_t value;
    memcpy(&value, base + offset, 4);
    return value;
}

static uint64_t get64(const uint8_t *base, unsigned offset)
{
    uint64_t value;
    memcpy(&value, base + offset, 8);
    return value;
}

/* ------------------------------------------------------------ interrupts --- */

static void raise_interrupt(struct virtio_pci *vp, uint16_t vector, uint8_t isr_bit)
{
    if (vp->pci.msix.enabled) {
        if (vector == VIRTQUEUE_NO_VECTOR || vector >= vp->msix_vectors)
            return;
        int fd = pci_msix_vector_eventfd(&vp->pci, vector);
        if (fd >= 0) {
            uint64_t one = 1;
            if (write(fd, &one, sizeof(one)) == sizeof(one))
                return;
        }
        pci_msix_notify(&vp->pci, vector); /* masked (sets pending) or no irqfd */
        return;
    }
    pthread_mutex_lock(&vp->virtio->lock);
    vp->virtio->isr |= isr_bit;
    pthread_mutex_unlock(&vp->virtio->lock);
    pci_set_intx(&vp->pci, true);
}

static void transport_notify_queue(struct virtio_device *virtio, struct virtqueue *queue)
{
    raise_interrupt(virtio->transport_opaque, queue->msix_vector, VIRTIO_ISR_QUEUE);
}

static void transport_notify_config(struct virtio_device *virtio)
{
    raise_interrupt(virtio->transport_opaque, virtio->config_msix_vector, VIRTIO_ISR_CONFIG);
}

static const struct virtio_transport_ops virtio_pci_transport_ops = {
    .notify_queue = transport_notify_queue,
    .notify_config = transport_notify_config,
};

/* ------------------------------------------------------------ ioeventfds --- */

static int ioeventfd_ioctl(struct virtio_pci *vp, uint64_t address, uint32_t length, int fd,
                           bool deassign)
{
    struct kvm_ioeventfd request = {
        .addr = address,
        .len = length,
        .fd = fd,
        .flags = deassign ? KVM_IOEVENTFD_FLAG_DEASSIGN : 0,
    };
    return ioctl(vp->vm->vm_fd, KVM_IOEVENTFD, &request) < 0 ? -errno : 0;
}

static void ioeventfds_unregister(struct virtio_pci *vp)
{
    if (!vp->ioeventfds_registered)
        return;
    for (unsigned i = 0; i < vp->virtio->queue_count; i++) {
        int fd = virtio_device_queue_eventfd(vp->virtio, i);
        uint64_t address = vp->ioeventfd_base + i * VIRTIO_PCI_NOTIFY_MULTIPLIER;
        if (fd >= 0 && ioeventfd_ioctl(vp, address, vp->ioeventfd_length, fd, true) < 0)
            pv_log_warning("%s: cannot remove ioeventfd at 0x%llx", vp->pci.driver,
                           (unsigned long long)address);
    }
    vp->ioeventfds_registered = false;
}

/* Registers one ioeventfd per queue on the notify area of BAR 4 where it is now. */
static void ioeventfds_update(struct virtio_pci *vp)
{
    if (!vp->vm || vp->vm->vm_fd < 0)
        return;
    const struct pci_bar *bar = &vp->pci.bars[VIRTIO_PCI_MODERN_BAR];
    uint64_t base = bar->mapped ? bar->address + VIRTIO_PCI_NOTIFY_OFFSET : 0;
    if (vp->ioeventfds_registered && vp->ioeventfd_base == base)
        return;
    ioeventfds_unregister(vp);
    if (!base)
        return;
    /* Any access size (len 0) if KVM allows it, else the 16-bit writes drivers use. */
    uint32_t length = 0;
    for (unsigned i = 0; i < vp->virtio->queue_count; i++) {
        int fd = virtio_device_queue_eventfd(vp->virtio, i);
        if (fd < 0)
            continue;
        uint64_t address = base + i * VIRTIO_PCI_NOTIFY_MULTIPLIER;
        int status = ioeventfd_ioctl(vp, address, length, fd, false);
        if (status == -EINVAL && i == 0 && length == 0) {
            length = 2;
            status = ioeventfd_ioctl(vp, address, length, fd, false);
        }
        if (status < 0) {
            /* Still correct without it: the trapped write kicks the same eventfd. */
            pv_log_warning("%s: KVM_IOEVENTFD at 0x%llx: %s", vp->pci.driver,
                           (unsigned long long)address, strerror(-status));
            for (unsigned j = 0; j < i; j++)
                ioeventfd_ioctl(vp, base + j * VIRTIO_PCI_NOTIFY_MULTIPLIER, length,
                                virtio_device_queue_eventfd(vp->virtio, j), true);
            return;
        }
    }
    vp->ioeventfd_base = base;
    vp->ioeventfd_length = length;
    vp->ioeventfds_registered = true;
}

/* --------------------------------------------------------- common config --- */

static uint16_t checked_vector(struct virtio_pci *vp, uint16_t vector)
{
    /* 4.1.5.1.2: an unusable vector reads back as NO_VECTOR. */
    return vector < vp->msix_vectors ? vector : VIRTQUEUE_NO_VECTOR;
}

static void common_snapshot(struct virtio_pci *vp, uint8_t *registers)
{
    struct virtio_device *virtio = vp->virtio;
    memset(registers, 0, COMMON_CONFIG_SIZE);
    pthread_mutex_lock(&virtio->lock);
    put32(registers, VIRTIO_PCI_COMMON_DFSELECT, vp->device_feature_select);
    put32(registers, VIRTIO_PCI_COMMON_DF,
          virtio_device_get_features_word(virtio, vp->device_feature_select));
    put32(registers, VIRTIO_PCI_COMMON_GFSELECT, vp->driver_feature_select);
    put32(registers, VIRTIO_PCI_COMMON_GF,
          vp->driver_feature_select < 2
              ? (uint32_t)(virtio->driver_features >> (32 * vp->driver_feature_select))
              : 0);
    put16(registers, VIRTIO_PCI_COMMON_MSIX, virtio->config_msix_vector);
    put16(registers, VIRTIO_PCI_COMMON_NUMQ, (uint16_t)virtio->queue_count);
    registers[VIRTIO_PCI_COMMON_STATUS] = virtio->status;
    registers[VIRTIO_PCI_COMMON_CFGGENERATION] = virtio->config_generation;
    put16(registers, VIRTIO_PCI_COMMON_Q_SELECT, vp->queue_select);
    if (vp->queue_select < virtio->queue_count) {
        struct virtqueue *queue = &virtio->queues[vp->queue_select];
        put16(registers, VIRTIO_PCI_COMMON_Q_SIZE, queue->size);
        put16(registers, VIRTIO_PCI_COMMON_Q_MSIX, queue->msix_vector);
        put16(registers, VIRTIO_PCI_COMMON_Q_ENABLE, queue->enabled);
        put16(registers, VIRTIO_PCI_COMMON_Q_NOFF, (uint16_t)queue->index);
        put64(registers, VIRTIO_PCI_COMMON_Q_DESCLO, queue->desc_gpa);
        put64(registers, VIRTIO_PCI_COMMON_Q_AVAILLO, queue->avail_gpa);
        put64(registers, VIRTIO_PCI_COMMON_Q_USEDLO, queue->used_gpa);
        put16(registers, 0x38, (uint16_t)queue->index); /* queue_notify_data */
    }
    pthread_mutex_unlock(&virtio->lock);
}

static bool touched(uint64_t offset, unsigned size, unsigned field, unsigned field_size)
{
    return offset < field + field_size && field < offset + size;
}

static void common_write(struct virtio_pci *vp, uint64_t offset, const void *data, unsigned size)
{
    struct virtio_device *virtio = vp->virtio;
    if (offset + size > COMMON_CONFIG_SIZE)
        return;
    uint8_t registers[COMMON_CONFIG_SIZE];
    common_snapshot(vp, registers);
    memcpy(registers + offset, data, size);

    pthread_mutex_lock(&virtio->lock);
    if (touched(offset, size, VIRTIO_PCI_COMMON_DFSELECT, 4))
        vp->device_feature_select = get32(registers, VIRTIO_PCI_COMMON_DFSELECT);
    if (touched(offset, size, VIRTIO_PCI_COMMON_GFSELECT, 4))
        vp->driver_feature_select = get32(registers, VIRTIO_PCI_COMMON_GFSELECT);
    if (touched(offset, size, VIRTIO_PCI_COMMON_MSIX, 2))
        virtio->config_msix_vector = checked_vector(vp, get16(registers, VIRTIO_PCI_COMMON_MSIX));
    if (touched(offset, size, VIRTIO_PCI_COMMON_Q_SELECT, 2))
        vp->queue_select = get16(registers, VIRTIO_PCI_COMMON_Q_SELECT);
    unsigned select = vp->driver_feature_select;
    struct virtqueue *queue =
        vp->queue_select < virtio->queue_count ? &virtio->queues[vp->queue_select] : NULL;
    if (queue && !queue->enabled) {
        /* Queue configuration is frozen once the queue is enabled. */
        if (touched(offset, size, VIRTIO_PCI_COMMON_Q_SIZE, 2)) {
            uint16_t value = get16(registers, VIRTIO_PCI_COMMON_Q_SIZE);
            if (value > 0 && value <= queue->max_size)
                queue->size = value;
        }
        if (touched(offset, size, VIRTIO_PCI_COMMON_Q_DESCLO, 8))
            queue->desc_gpa = get64(registers, VIRTIO_PCI_COMMON_Q_DESCLO);
        if (touched(offset, size, VIRTIO_PCI_COMMON_Q_AVAILLO, 8))
            queue->avail_gpa = get64(registers, VIRTIO_PCI_COMMON_Q_AVAILLO);
        if (touched(offset, size, VIRTIO_PCI_COMMON_Q_USEDLO, 8))
            queue->used_gpa = get64(registers, VIRTIO_PCI_COMMON_Q_USEDLO);
    }
    if (queue && touched(offset, size, VIRTIO_PCI_COMMON_Q_MSIX, 2))
        queue->msix_vector = checked_vector(vp, get16(registers, VIRTIO_PCI_COMMON_Q_MSIX));
    bool enable = queue && !queue->enabled &&
                  touched(offset, size, VIRTIO_PCI_COMMON_Q_ENABLE, 2) &&
                  get16(registers, VIRTIO_PCI_COMMON_Q_ENABLE) == 1;
    pthread_mutex_unlock(&virtio->lock);

    /* Outside the register lock: these take the processing lock first. */
    if (touched(offset, size, VIRTIO_PCI_COMMON_GF, 4))
        virtio_device_set_driver_features_word(virtio, select,
                                               get32(registers, VIRTIO_PCI_COMMON_GF));
    if (enable)
        virtio_device_enable_queue(virtio, queue->index, NULL);
    if (touched(offset, size, VIRTIO_PCI_COMMON_STATUS, 1)) {
        uint8_t status = registers[VIRTIO_PCI_COMMON_STATUS];
        virtio_device_set_status(virtio, status);
        if (status == 0) {
            pthread_mutex_lock(&virtio->lock);
            vp->device_feature_select = vp->driver_feature_select = 0;
            vp->queue_select = 0;
            pthread_mutex_unlock(&virtio->lock);
            pci_set_intx(&vp->pci, false);
        }
    }
}

/* ------------------------------------------------------------------ BAR 4 --- */

static void modern_read(struct virtio_pci *vp, uint64_t offset, void *data, unsigned size,
                        bool from_config_space)
{
    memset(data, 0, size);
    if (offset < VIRTIO_PCI_ISR_OFFSET) {
        if (offset + size <= COMMON_CONFIG_SIZE) {
            uint8_t registers[COMMON_CONFIG_SIZE];
            common_snapshot(vp, registers);
            memcpy(data, registers + offset, size);
        }
    } else if (offset < VIRTIO_PCI_DEVICE_OFFSET) {
        if (offset == VIRTIO_PCI_ISR_OFFSET && !from_config_space) {
            uint8_t isr = virtio_device_read_isr(vp->virtio);
            memcpy(data, &isr, 1);
            pci_set_intx(&vp->pci, false);
        }
    } else if (offset < VIRTIO_PCI_NOTIFY_OFFSET) {
        uint64_t config_offset = offset - VIRTIO_PCI_DEVICE_OFFSET;
        if (config_offset + size <= vp->virtio->config_size && vp->virtio->ops->read_config)
            vp->virtio->ops->read_config(vp->virtio, (uint32_t)config_offset, data, size);
    }
}

static void modern_write(struct virtio_pci *vp, uint64_t offset, const void *data, unsigned size,
                         bool from_config_space)
{
    if (offset < VIRTIO_PCI_ISR_OFFSET) {
        common_write(vp, offset, data, size);
    } else if (offset >= VIRTIO_PCI_DEVICE_OFFSET && offset < VIRTIO_PCI_NOTIFY_OFFSET) {
        uint64_t config_offset = offset - VIRTIO_PCI_DEVICE_OFFSET;
        if (config_offset + size <= vp->virtio->config_size && vp->virtio->ops->write_config)
            vp->virtio->ops->write_config(vp->virtio, (uint32_t)config_offset, data, size);
    } else if (offset >= VIRTIO_PCI_NOTIFY_OFFSET) {
        /* A notification that did not hit an ioeventfd. */
        uint64_t queue = (offset - VIRTIO_PCI_NOTIFY_OFFSET) / VIRTIO_PCI_NOTIFY_MULTIPLIER;
        virtio_device_kick(vp->virtio, (unsigned)queue);
    }
}

static void modern_bar_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
    modern_read(opaque, offset, data, size, false);
}

static void modern_bar_write(void *opaque, uint64_t offset, const void *data, unsigned size)
{
    modern_write(opaque, offset, data, size, false);
}

static const struct io_region_ops modern_bar_ops = {modern_bar_read, modern_bar_write};

static void msix_bar_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
    struct virtio_pci *vp = opaque;
    if (!pci_msix_access(&vp->pci, VIRTIO_PCI_MSIX_BAR, offset, data, size, false))
        memset(data, 0, size);
}

static void msix_bar_write(void *opaque, uint64_t offset, const void *data, unsigned size)
{
    struct virtio_pci *vp = opaque;
    pci_msix_access(&vp->pci, VIRTIO_PCI_MSIX_BAR, offset, (void *)data, size, true);
}

static const struct io_region_ops msix_bar_ops = {msix_bar_read, msix_bar_write};

/* ------------------------------------------------------- PCI config space --- */

/* The PCI_CFG capability (4.1.4.9) is a window onto the BARs through config
 * space: bar/offset/length select, pci_cfg_data moves the data. Writes to
 * pci_cfg_data write the BAR; changing the selection loads pci_cfg_data
 * (pci.h has no config-read hook, so reads are served from that prefetch;
 * ISR is not prefetched because reading it has a side effect). The bus
 * calls config_written without config_lock held. */
static void pci_cfg_window(struct virtio_pci *vp, unsigned offset, unsigned size)
{
    unsigned cap = vp->pci_cfg_capability;
    if (!cap || !touched(offset, size, cap + 4, 16))
        return;
    uint8_t window[20];
    pthread_mutex_lock(&vp->pci.config_lock);
    memcpy(window, vp->pci.config + cap, sizeof(window));
    pthread_mutex_unlock(&vp->pci.config_lock);
    unsigned bar = window[4];
    uint32_t bar_offset = get32(window, 8);
    uint32_t length = get32(window, 12);
    bool valid = bar == VIRTIO_PCI_MODERN_BAR && (length == 1 || length == 2 || length == 4) &&
                 bar_offset % length == 0 && bar_offset + length <= VIRTIO_PCI_MODERN_BAR_SIZE;
    if (touched(offset, size, cap + 16, 4)) {
        if (valid)
            modern_write(vp, bar_offset, window + 16, length, true);
        return;
    }
    uint8_t value[4] = {0};
    if (valid)
        modern_read(vp, bar_offset, value, length, true);
    pthread_mutex_lock(&vp->pci.config_lock);
    memcpy(vp->pci.config + cap + 16, value, 4);
    pthread_mutex_unlock(&vp->pci.config_lock);
}

static void virtio_pci_config_written(struct pci_device *device, unsigned offset, unsigned size)
{
    pci_cfg_window(virtio_pci_of(device), offset, size);
}

static void virtio_pci_bar_remapped(struct pci_device *device, unsigned bar)
{
    if (bar == VIRTIO_PCI_MODERN_BAR)
        ioeventfds_update(virtio_pci_of(device));
}

static void virtio_pci_reset(struct pci_device *device)
{
    struct virtio_pci *vp = virtio_pci_of(device);
    virtio_device_reset(vp->virtio);
    vp->device_feature_select = vp->driver_feature_select = 0;
    vp->queue_select = 0;
}

static void virtio_pci_destroy(struct pci_device *device)
{
    struct virtio_pci *vp = virtio_pci_of(device);
    ioeventfds_unregister(vp);
    virtio_device_destroy(vp->virtio); /* joins the I/O thread, frees the model */
    pthread_mutex_destroy(&vp->pci.config_lock);
    free(vp);
}

static const struct pci_device_ops virtio_pci_ops = {
    .config_written = virtio_pci_config_written,
    .bar_remapped = virtio_pci_bar_remapped,
    .msix_changed = NULL, /* irqfds are looked up per interrupt */
    .reset = virtio_pci_reset,
    .destroy = virtio_pci_destroy,
};

/* ---------------------------------------------------------------- create --- */

static int add_virtio_capability(struct virtio_pci *vp, uint8_t type, unsigned length, uint8_t bar,
                                 uint32_t offset, uint32_t region_length, struct pv_error *error)
{
    int position = pci_device_add_capability(&vp->pci, PCI_CAP_ID_VENDOR, length, error);
    if (position < 0)
        return position;
    uint8_t *config = vp->pci.config;
    config[position + 2] = (uint8_t)length; /* cap_len */
    config[position + 3] = type;            /* cfg_type */
    config[position + 4] = bar;
    config[position + 5] = 0; /* id */
    put32(config, position + 8, offset);
    put32(config, position + 12, region_length);
    return position;
}

struct pci_device *virtio_pci_create(struct vm *vm, struct virtio_device *virtio,
                                     const char *driver, const char *id, uint32_t class_code,
                                     unsigned msix_vectors, struct pv_error *error)
{
    if (msix_vectors == 0 || msix_vectors > PCI_MSIX_MAX_VECTORS) {
        pv_error_set(error, -EINVAL, "%s: invalid number of MSI-X vectors %u", driver,
                     msix_vectors);
        return NULL;
    }
    struct virtio_pci *vp = calloc(1, sizeof(*vp));
    if (!vp) {
        pv_error_set(error, -ENOMEM, "out of memory");
        return NULL;
    }
    vp->vm = vm;
    vp->virtio = virtio;
    vp->msix_vectors = msix_vectors;
    pci_device_init(&vp->pci, &virtio_pci_ops, driver, id ? id : "", VIRTIO_PCI_VENDOR_ID,
                    (uint16_t)(VIRTIO_PCI_DEVICE_ID_BASE + virtio->device_type), class_code, 1,
                    VIRTIO_PCI_VENDOR_ID, VIRTIO_PCI_SUBSYSTEM_ID);
    vp->pci.config[PCI_INTERRUPT_PIN] = 1; /* INTA#, for the INTx fallback */

    int position;
    if (pci_device_set_bar(&vp->pci, VIRTIO_PCI_MSIX_BAR, PCI_BAR_MEMORY32, 0x1000, &msix_bar_ops,
                           vp, error) < 0 ||
        pci_device_set_bar(&vp->pci, VIRTIO_PCI_MODERN_BAR, PCI_BAR_MEMORY64,
                           VIRTIO_PCI_MODERN_BAR_SIZE, &modern_bar_ops, vp, error) < 0 ||
        pci_device_set_bar_prefetchable(&vp->pci, VIRTIO_PCI_MODERN_BAR, error) < 0)
        goto fail;
    if (add_virtio_capability(vp, VIRTIO_PCI_CAP_COMMON_CFG, 16, VIRTIO_PCI_MODERN_BAR,
                              VIRTIO_PCI_COMMON_OFFSET, VIRTIO_PCI_REGION_SIZE, error) < 0 ||
        add_virtio_capability(vp, VIRTIO_PCI_CAP_ISR_CFG, 16, VIRTIO_PCI_MODERN_BAR,
                              VIRTIO_PCI_ISR_OFFSET, VIRTIO_PCI_REGION_SIZE, error) < 0 ||
        add_virtio_capability(vp, VIRTIO_PCI_CAP_DEVICE_CFG, 16, VIRTIO_PCI_MODERN_BAR,
                              VIRTIO_PCI_DEVICE_OFFSET, VIRTIO_PCI_REGION_SIZE, error) < 0)
        goto fail;
    position = add_virtio_capability(vp, VIRTIO_PCI_CAP_NOTIFY_CFG, 20, VIRTIO_PCI_MODERN_BAR,
                                     VIRTIO_PCI_NOTIFY_OFFSET, VIRTIO_PCI_REGION_SIZE, error);
    if (position < 0)
        goto fail;
    put32(vp->pci.config, position + 16, VIRTIO_PCI_NOTIFY_MULTIPLIER);
    position = add_virtio_capability(vp, VIRTIO_PCI_CAP_PCI_CFG, 20, 0, 0, 0, error);
    if (position < 0)
        goto fail;
    vp->pci_cfg_capability = (uint8_t)position;
    vp->pci.config_writable[position + 4] = 0xff;             /* bar */
    memset(&vp->pci.config_writable[position + 8], 0xff, 12); /* offset, length, data */
    if (pci_device_init_msix(&vp->pci, msix_vectors, VIRTIO_PCI_MSIX_BAR, 0, 0x800, error) < 0)
        goto fail;

    struct guest_memory memory = {translate_guest, vm};
    virtio_device_set_memory(virtio, &memory);
    virtio_device_set_transport(virtio, &virtio_pci_transport_ops, vp);
    if (virtio_device_start_io_thread(virtio, error) < 0)
        goto fail;
    return &vp->pci;

fail:
    virtio_device_set_transport(virtio, NULL, NULL);
    pthread_mutex_destroy(&vp->pci.config_lock);
    free(vp);
    return NULL;
}

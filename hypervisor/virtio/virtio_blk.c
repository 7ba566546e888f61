/* virtio-blk; see virtio_blk.h. */
#include "virtio/virtio_blk.h"

#include <errno.h>
#include <linux/virtio_blk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/block.h"
#include "block/block_io.h"
#include "device_model.h"
#include "pv_log.h"
#include "virtio/virtio_pci.h"
#include "vm.h"

#define VIRTIO_BLK_DEFAULT_QUEUE_SIZE 256
#define VIRTIO_BLK_MAX_QUEUES 16
#define VIRTIO_BLK_SIZE_MAX (1u << 20)
#define VIRTIO_BLK_MAX_DISCARD_SECTORS 0x3fffffu /* QEMU's max-discard-sectors default */
#define VIRTIO_BLK_MAX_WRITE_ZEROES_SECTORS 0x3fffffu
#define VIRTIO_BLK_DISCARD_ALIGNMENT_SECTORS 8 /* 4 KiB: what hole punching works on */
#define VIRTIO_BLK_HEADER_SIZE 16
#define VIRTIO_BLK_SEGMENT_SIZE 16

/* Config space layout (5.2.4), little-endian; we expose the first 60 bytes. */
struct virtio_blk_config_space {
    uint64_t capacity;
    uint32_t size_max;
    uint32_t seg_max;
    uint16_t cylinders;
    uint8_t heads;
    uint8_t sectors;
    uint32_t blk_size;
    uint8_t physical_block_exp;
    uint8_t alignment_offset;
    uint16_t min_io_size;
    uint32_t opt_io_size;
    uint8_t writeback;
    uint8_t unused0;
    uint16_t num_queues;
    uint32_t max_discard_sectors;
    uint32_t max_discard_seg;
    uint32_t discard_sector_alignment;
    uint32_t max_write_zeroes_sectors;
    uint32_t max_write_zeroes_seg;
    uint8_t write_zeroes_may_unmap;
    uint8_t unused1[3];
} __attribute__((packed));

_Static_assert(sizeof(struct virtio_blk_config_space) == 60, "virtio-blk config layout");

struct virtio_blk {
    struct virtio_device virtio; /* first: the ops get this pointer */
    struct block_backend *backend;
    char serial[VIRTIO_BLK_SERIAL_BYTES + 1];
    bool serial_set;
    uint16_t queue_size;
    unsigned num_queues;
    struct iovec data[VIRTQUEUE_MAX_SEGMENTS]; /* request data, for the I/O thread */
    char qdev_path[160];
};

static struct virtio_blk *blk_of(struct virtio_device *device)
{
    return (struct virtio_blk *)device;
}

void virtio_blk_options_init(struct virtio_blk_options *options)
{
    memset(options, 0, sizeof(*options));
    options->num_queues = 1;
    options->queue_size = VIRTIO_BLK_DEFAULT_QUEUE_SIZE;
    options->discard = true;
    options->write_zeroes = true;
}

int virtio_blk_options_from_qemu(struct qemu_options *options,
                                 struct virtio_blk_options *blk_options, struct pv_error *error)
{
    struct block_layer *layer = blk_options->block_layer;
    virtio_blk_options_init(blk_options);
    blk_options->block_layer = layer;
    int status;
    blk_options->drive = qemu_options_get(options, "drive");
    blk_options->serial = qemu_options_get(options, "serial");
    if ((status = qemu_options_get_unsigned(options, "num-queues", 1, &blk_options->num_queues,
                                            error)) < 0 ||
        (status = qemu_options_get_unsigned(options, "queue-size", VIRTIO_BLK_DEFAULT_QUEUE_SIZE,
                                            &blk_options->queue_size, error)) < 0 ||
        (status = qemu_options_get_bool(options, "discard", true, &blk_options->discard, error)) <
            0 ||
        (status = qemu_options_get_bool(options, "write-zeroes", true, &blk_options->write_zeroes,
                                        error)) < 0)
        return status;
    const char *write_cache = qemu_options_get(options, "write-cache");
    if (write_cache && strcmp(write_cache, "auto") != 0) {
        if (strcmp(write_cache, "on") != 0 && strcmp(write_cache, "off") != 0)
            return pv_error_set(error, -EINVAL,
                                "Parameter 'write-cache' does not accept value '%s'", write_cache);
        blk_options->write_cache = strcmp(write_cache, "on") == 0 ? 1 : 2;
    }
    /* A failed request completes with VIRTIO_BLK_S_IOERR, which is QEMU's "report"
     * ("enospc", QEMU's default for werror, is taken as such too): a policy that
     * stops the VM or hides the error from the guest is refused, not ignored. */
    static const char *const policy_keys[] = {"werror", "rerror"};
    for (size_t i = 0; i < sizeof(policy_keys) / sizeof(policy_keys[0]); i++) {
        const char *policy = qemu_options_get(options, policy_keys[i]);
        if (policy && strcmp(policy, "report") != 0 && !(i == 0 && strcmp(policy, "enospc") == 0))
            return pv_error_set(error, -EINVAL,
                                "virtio-blk-pci: %s=%s is not supported (I/O errors are "
                                "reported to the guest)",
                                policy_keys[i], policy);
    }
    /* Properties QEMU has that change nothing here. */
    static const char *const ignored[] = {"config-wce",
                                          "scsi",
                                          "request-merging",
                                          "logical_block_size",
                                          "physical_block_size",
                                          "min_io_size",
                                          "opt_io_size",
                                          "bootindex",
                                          "disable-legacy",
                                          "disable-modern",
                                          "iothread",
                                          "ioeventfd",
                                          "vectors",
                                          "event_idx",
                                          "indirect_desc",
                                          "share-rw"};
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
        qemu_options_ignore(options, ignored[i]);
    return 0;
}

/* ----------------------------------------------------------------- config --- */

static void fill_config(struct virtio_blk *blk, struct virtio_blk_config_space *config)
{
    memset(config, 0, sizeof(*config));
    config->capacity = block_backend_length(blk->backend) / BLOCK_SECTOR_SIZE;
    config->size_max = VIRTIO_BLK_SIZE_MAX;
    config->seg_max = blk->queue_size - 2; /* as QEMU: room for header and status */
    config->blk_size = BLOCK_SECTOR_SIZE;
    config->writeback = 1;
    config->num_queues = (uint16_t)blk->num_queues;
    config->max_discard_sectors = VIRTIO_BLK_MAX_DISCARD_SECTORS;
    config->max_discard_seg = 1;
    config->discard_sector_alignment = VIRTIO_BLK_DISCARD_ALIGNMENT_SECTORS;
    config->max_write_zeroes_sectors = VIRTIO_BLK_MAX_WRITE_ZEROES_SECTORS;
    config->max_write_zeroes_seg = 1;
    config->write_zeroes_may_unmap = 1;
}

static void blk_read_config(struct virtio_device *device, uint32_t offset, void *data,
                            unsigned size)
{
    struct virtio_blk_config_space config;
    fill_config(blk_of(device), &config);
    memset(data, 0, size);
    if (offset < sizeof(config)) {
        unsigned available = (unsigned)(sizeof(config) - offset);
        memcpy(data, (uint8_t *)&config + offset, size < available ? size : available);
    }
}

static void blk_write_config(struct virtio_device *device, uint32_t offset, const void *data,
                             unsigned size)
{
    /* Only "writeback" is writable, and only with CONFIG_WCE, which we do not offer. */
}

/* --------------------------------------------------------------- requests --- */

static uint8_t status_from_errno(long result)
{
    return result < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
}

/* Checks [sector, sector + bytes/512) against the capacity. */
static bool range_ok(struct virtio_blk *blk, uint64_t sector, uint64_t bytes)
{
    if (bytes % BLOCK_SECTOR_SIZE)
        return false;
    uint64_t capacity = block_backend_length(blk->backend) / BLOCK_SECTOR_SIZE;
    uint64_t sectors = bytes / BLOCK_SECTOR_SIZE;
    return sector <= capacity && sectors <= capacity - sector;
}

static uint8_t handle_discard_or_zeroes(struct virtio_blk *blk, struct virtqueue_request *request,
                                        bool write_zeroes, bool *protocol_error)
{
    uint64_t feature =
        write_zeroes ? 1ULL << VIRTIO_BLK_F_WRITE_ZEROES : 1ULL << VIRTIO_BLK_F_DISCARD;
    if (!(blk->virtio.device_features & feature))
        return VIRTIO_BLK_S_UNSUPP;
    size_t data_bytes = request->out_bytes - VIRTIO_BLK_HEADER_SIZE;
    if (data_bytes > VIRTIO_BLK_SEGMENT_SIZE) /* max_*_seg is 1 */
        return VIRTIO_BLK_S_UNSUPP;
    struct {
        uint64_t sector;
        uint32_t num_sectors;
        uint32_t flags;
    } __attribute__((packed)) segment;
    if (iov_to_buffer(request->out, request->out_count, VIRTIO_BLK_HEADER_SIZE, &segment,
                      sizeof(segment)) != sizeof(segment)) {
        *protocol_error = true;
        return VIRTIO_BLK_S_IOERR;
    }
    uint32_t allowed_flags = write_zeroes ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0;
    if (segment.flags & ~allowed_flags)
        return VIRTIO_BLK_S_UNSUPP;
    uint32_t limit =
        write_zeroes ? VIRTIO_BLK_MAX_WRITE_ZEROES_SECTORS : VIRTIO_BLK_MAX_DISCARD_SECTORS;
    if (segment.num_sectors > limit ||
        !range_ok(blk, segment.sector, (uint64_t)segment.num_sectors * BLOCK_SECTOR_SIZE))
        return VIRTIO_BLK_S_IOERR;
    uint64_t offset = segment.sector * BLOCK_SECTOR_SIZE;
    uint64_t length = (uint64_t)segment.num_sectors * BLOCK_SECTOR_SIZE;
    int result =
        write_zeroes
            ? block_backend_write_zeroes(blk->backend, offset, length,
                                         segment.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)
            : block_backend_discard(blk->backend, offset, length);
    return status_from_errno(result);
}

/* Returns false on a protocol violation (the device is then broken). */
static bool handle_request(struct virtio_blk *blk, struct virtqueue *queue,
                           struct virtqueue_request *request)
{
    struct {
        uint32_t type;
        uint32_t ioprio;
        uint64_t sector;
    } __attribute__((packed)) header;
    if (request->out_bytes < VIRTIO_BLK_HEADER_SIZE || request->in_bytes < 1) {
        virtio_device_set_broken(&blk->virtio, "virtio-blk missing headers");
        return false;
    }
    iov_to_buffer(request->out, request->out_count, 0, &header, sizeof(header));
    size_t in_data_bytes = request->in_bytes - 1;
    uint8_t status = VIRTIO_BLK_S_OK;
    bool protocol_error = false;

    switch (header.type) {
    case VIRTIO_BLK_T_IN: {
        unsigned count = iov_slice(request->in, request->in_count, 0, in_data_bytes, blk->data,
                                   VIRTQUEUE_MAX_SEGMENTS);
        if (header.sector > UINT64_MAX / BLOCK_SECTOR_SIZE ||
            !range_ok(blk, header.sector, in_data_bytes))
            status = VIRTIO_BLK_S_IOERR;
        else
            status = status_from_errno(block_backend_preadv(blk->backend, blk->data, count,
                                                            header.sector * BLOCK_SECTOR_SIZE));
        break;
    }
    case VIRTIO_BLK_T_OUT: {
        size_t data_bytes = request->out_bytes - VIRTIO_BLK_HEADER_SIZE;
        unsigned count = iov_slice(request->out, request->out_count, VIRTIO_BLK_HEADER_SIZE,
                                   data_bytes, blk->data, VIRTQUEUE_MAX_SEGMENTS);
        if (header.sector > UINT64_MAX / BLOCK_SECTOR_SIZE ||
            !range_ok(blk, header.sector, data_bytes))
            status = VIRTIO_BLK_S_IOERR;
        else
            status = status_from_errno(block_backend_pwritev(blk->backend, blk->data, count,
                                                             header.sector * BLOCK_SECTOR_SIZE));
        break;
    }
    case VIRTIO_BLK_T_FLUSH:
        status = status_from_errno(block_backend_flush(blk->backend));
        break;
    case VIRTIO_BLK_T_GET_ID: {
        /* Device property: answered even with no medium, as in QEMU. */
        size_t length = strlen(blk->serial) + 1;
        if (length > VIRTIO_BLK_SERIAL_BYTES)
            length = VIRTIO_BLK_SERIAL_BYTES;
        if (length > in_data_bytes)
            length = in_data_bytes;
        iov_from_buffer(request->in, request->in_count, 0, blk->serial, length);
        break;
    }
    case VIRTIO_BLK_T_DISCARD:
        status = handle_discard_or_zeroes(blk, request, false, &protocol_error);
        break;
    case VIRTIO_BLK_T_WRITE_ZEROES:
        status = handle_discard_or_zeroes(blk, request, true, &protocol_error);
        break;
    default:
        status = VIRTIO_BLK_S_UNSUPP;
        break;
    }
    if (protocol_error) {
        virtio_device_set_broken(&blk->virtio, "virtio-blk discard/write_zeroes header too short");
        return false;
    }
    iov_from_buffer(request->in, request->in_count, in_data_bytes, &status, 1);
    virtqueue_push(queue, request->head, (uint32_t)request->in_bytes);
    return true;
}

static void blk_handle_queue(struct virtio_device *device, struct virtqueue *queue)
{
    struct virtio_blk *blk = blk_of(device);
    bool completed = false;
    for (;;) {
        int popped = virtio_device_pop(device, queue, device->request);
        if (popped <= 0)
            break;
        if (!handle_request(blk, queue, device->request))
            break;
        completed = true;
    }
    if (completed)
        virtio_device_notify(device, queue);
}

static void blk_destroy(struct virtio_device *device)
{
    struct virtio_blk *blk = blk_of(device);
    block_backend_release(blk->backend);
    free(blk);
}

static const struct virtio_device_ops virtio_blk_ops = {
    .read_config = blk_read_config,
    .write_config = blk_write_config,
    .handle_queue = blk_handle_queue,
    .reset = NULL, /* requests complete synchronously: no state to drop */
    .destroy = blk_destroy,
};

struct virtio_blk *virtio_blk_new(const struct virtio_blk_options *options, struct pv_error *error)
{
    if (!options->block_layer) {
        pv_error_set(error, -EINVAL, "no block layer");
        return NULL;
    }
    unsigned num_queues = options->num_queues ? options->num_queues : 1;
    unsigned queue_size = options->queue_size ? options->queue_size : VIRTIO_BLK_DEFAULT_QUEUE_SIZE;
    if (num_queues > VIRTIO_BLK_MAX_QUEUES) {
        pv_error_set(error, -EINVAL, "num-queues property must be at most %u",
                     VIRTIO_BLK_MAX_QUEUES);
        return NULL;
    }
    if (queue_size <= 2 || queue_size > VIRTQUEUE_MAX_SIZE || (queue_size & (queue_size - 1))) {
        pv_error_set(error, -EINVAL,
                     "invalid queue-size property (%u), must be a power of 2 and at most %u",
                     queue_size, VIRTQUEUE_MAX_SIZE);
        return NULL;
    }
    if (options->serial && strlen(options->serial) > 36) {
        pv_error_set(error, -EINVAL, "serial property is too long");
        return NULL;
    }
    struct virtio_blk *blk = calloc(1, sizeof(*blk));
    if (!blk) {
        pv_error_set(error, -ENOMEM, "out of memory");
        return NULL;
    }
    if (options->qdev_path)
        snprintf(blk->qdev_path, sizeof(blk->qdev_path), "%s", options->qdev_path);
    else if (options->id)
        snprintf(blk->qdev_path, sizeof(blk->qdev_path), "/machine/peripheral/%s/virtio-backend",
                 options->id);
    else
        snprintf(blk->qdev_path, sizeof(blk->qdev_path),
                 "/machine/peripheral-anon/virtio-blk-pci/virtio-backend");
    if (!options->drive) {
        pv_error_set(error, -EINVAL, "drive property not set");
        free(blk);
        return NULL;
    }
    blk->backend = block_backend_attach(options->block_layer, options->drive,
                                        "virtio-blk-pci.drive", blk->qdev_path, error);
    if (!blk->backend) {
        free(blk);
        return NULL;
    }
    if (options->write_cache)
        block_backend_set_writeback(blk->backend, options->write_cache == 1);
    if (options->serial)
        snprintf(blk->serial, sizeof(blk->serial), "%.*s", VIRTIO_BLK_SERIAL_BYTES,
                 options->serial);
    blk->queue_size = (uint16_t)queue_size;
    blk->num_queues = num_queues;

    uint64_t features = VIRTIO_FEATURE_VERSION_1 | VIRTIO_FEATURE_INDIRECT_DESC |
                        VIRTIO_FEATURE_EVENT_IDX | 1ULL << VIRTIO_BLK_F_SIZE_MAX |
                        1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_BLK_SIZE |
                        1ULL << VIRTIO_BLK_F_FLUSH;
    if (num_queues > 1)
        features |= 1ULL << VIRTIO_BLK_F_MQ;
    if (block_backend_is_read_only(blk->backend))
        features |= 1ULL << VIRTIO_BLK_F_RO;
    if (options->discard)
        features |= 1ULL << VIRTIO_BLK_F_DISCARD;
    if (options->write_zeroes)
        features |= 1ULL << VIRTIO_BLK_F_WRITE_ZEROES;
    int status = virtio_device_init(&blk->virtio, "virtio-blk", VIRTIO_TYPE_BLOCK, &virtio_blk_ops,
                                    num_queues, (uint16_t)queue_size, features,
                                    sizeof(struct virtio_blk_config_space), error);
    if (status < 0) {
        block_backend_release(blk->backend);
        free(blk);
        return NULL;
    }
    return blk;
}

struct virtio_device *virtio_blk_device(struct virtio_blk *blk)
{
    return &blk->virtio;
}

struct block_backend *virtio_blk_backend(struct virtio_blk *blk)
{
    return blk->backend;
}

struct pci_device *virtio_blk_create(struct vm *vm, const struct virtio_blk_options *options,
                                     struct pv_error *error)
{
    struct virtio_blk *blk = virtio_blk_new(options, error);
    if (!blk)
        return NULL;
    /* Mass storage / SCSI class, as QEMU gives virtio-blk-pci. */
    struct pci_device *device = virtio_pci_create(vm, &blk->virtio, "virtio-blk-pci", options->id,
                                                  0x010000, blk->num_queues + 1, error);
    if (!device) {
        virtio_device_destroy(&blk->virtio);
        return NULL;
    }
    return device;
}

/* ---------------------------------------------------------------- model --- */

static struct pci_device *create_virtio_blk_pci(struct vm *vm, struct qemu_options *options,
                                                const char *id, const char *qom_path,
                                                struct pv_error *error)
{
    struct virtio_blk_options blk_options;
    if (virtio_blk_options_from_qemu(options, &blk_options, error) < 0)
        return NULL;
    if (device_options_check_unused(options, "virtio-blk-pci", error) < 0)
        return NULL;
    char backend_path[DEVICE_QOM_PATH_MAX + 32];
    snprintf(backend_path, sizeof(backend_path), "%s/virtio-backend", qom_path);
    blk_options.block_layer = vm->block_layer;
    blk_options.id = id;
    blk_options.qdev_path = backend_path;
    return virtio_blk_create(vm, &blk_options, error);
}

const struct device_model virtio_blk_pci_model = {
    .driver = "virtio-blk-pci",
    .has_virtio_backend = true,
    .create = create_virtio_blk_pci,
};

/* virtio-blk end to end without KVM: the test plays the guest driver on a
 * malloc'd "guest RAM", the device works on a temp file through the block layer. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "block/block.h"
#include "qemu_options.h"
#include "virtio/virtio.h"
#include "virtio/virtio_blk.h"

#define RAM_SIZE (4u << 20)
#define QUEUE_SIZE 256
#define DESC_GPA 0x1000
#define AVAIL_GPA 0x2000
#define USED_GPA 0x3000
#define INDIRECT_GPA 0x8000
#define BUFFER_GPA 0x10000
#define IMAGE_SIZE (1u << 20)

static uint8_t *ram;
static char directory[] = "/tmp/pv-vblk-XXXXXX";
static char image[256];
static struct block_layer *layer;
static struct virtio_blk *blk;
static struct virtio_device *device;
static atomic_uint queue_notifications, config_notifications;
static uint64_t next_buffer;
static uint16_t next_desc;

static void *translate(void *opaque, uint64_t gpa, uint64_t length)
{
    (void)opaque;
    if (gpa >= RAM_SIZE || length > RAM_SIZE - gpa)
        return NULL;
    return ram + gpa;
}

static void notify_queue(struct virtio_device *virtio, struct virtqueue *queue)
{
    queue_notifications++;
}

static void notify_config(struct virtio_device *virtio)
{
    config_notifications++;
}

static const struct virtio_transport_ops recorder = {notify_queue, notify_config};

static void make_image(void)
{
    cr_assert_not_null(mkdtemp(directory));
    snprintf(image, sizeof(image), "%s/disk.img", directory);
    int fd = open(image, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    cr_assert_geq(fd, 0);
    uint8_t *data = malloc(IMAGE_SIZE);
    for (unsigned i = 0; i < IMAGE_SIZE; i++)
        data[i] = (uint8_t)(i / 512); /* each sector holds its number */
    cr_assert_eq(write(fd, data, IMAGE_SIZE), (ssize_t)IMAGE_SIZE);
    free(data);
    close(fd);
}

static void add_drive(const char *extra)
{
    char text[512];
    snprintf(text, sizeof(text), "file=%s,if=none,id=drive0%s", image, extra);
    struct qemu_options options;
    cr_assert_eq(qemu_options_parse(&options, text, NULL, 0, NULL), 0);
    struct pv_error error = {0};
    cr_assert_eq(block_drive_add(layer, &options, NULL, &error), 0, "%s", error.message);
    qemu_options_free(&options);
}

/* Driver initialisation (3.1.1). */
static void driver_init(uint64_t accept)
{
    virtio_device_set_status(device, 0);
    virtio_device_set_status(device, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    uint64_t offered = virtio_device_get_features_word(device, 0) |
                       (uint64_t)virtio_device_get_features_word(device, 1) << 32;
    uint64_t features = offered & accept;
    virtio_device_set_driver_features_word(device, 0, (uint32_t)features);
    virtio_device_set_driver_features_word(device, 1, (uint32_t)(features >> 32));
    virtio_device_set_status(device, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                         VIRTIO_STATUS_FEATURES_OK);
    cr_assert(virtio_device_get_status(device) & VIRTIO_STATUS_FEATURES_OK);
    memset(ram, 0, BUFFER_GPA);
    struct virtqueue *queue = &device->queues[0];
    queue->size = QUEUE_SIZE;
    queue->desc_gpa = DESC_GPA;
    queue->avail_gpa = AVAIL_GPA;
    queue->used_gpa = USED_GPA;
    cr_assert_eq(virtio_device_enable_queue(device, 0, NULL), 0);
    virtio_device_set_status(device, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                         VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    next_desc = 0;
}

static void create_device(const char *serial, const char *drive_extra)
{
    ram = calloc(1, RAM_SIZE);
    cr_assert_not_null(ram);
    make_image();
    layer = block_layer_create();
    add_drive(drive_extra);
    struct virtio_blk_options options;
    virtio_blk_options_init(&options);
    options.block_layer = layer;
    options.drive = "drive0";
    options.id = "vd1";
    options.serial = serial;
    struct pv_error error = {0};
    blk = virtio_blk_new(&options, &error);
    cr_assert_not_null(blk, "%s", error.message);
    device = virtio_blk_device(blk);
    struct guest_memory memory = {translate, NULL};
    virtio_device_set_memory(device, &memory);
    virtio_device_set_transport(device, &recorder, NULL);
    queue_notifications = config_notifications = 0;
    driver_init(~0ULL);
}

static void setup(void)
{
    create_device("SN-0001", "");
}

static void teardown(void)
{
    if (device)
        virtio_device_destroy(device);
    device = NULL;
    block_layer_destroy(layer);
    free(ram);
    unlink(image);
    rmdir(directory);
    strcpy(directory, "/tmp/pv-vblk-XXXXXX");
}

static uint64_t alloc_buffer(size_t length)
{
    if (next_buffer < BUFFER_GPA || next_buffer + length > RAM_SIZE)
        next_buffer = BUFFER_GPA;
    uint64_t gpa = next_buffer;
    next_buffer += (length + 15) & ~15ULL;
    return gpa;
}

static struct virtq_desc *desc_table(void)
{
    return (struct virtq_desc *)(ram + DESC_GPA);
}

static uint16_t add_desc(uint64_t addr, uint32_t len, uint16_t flags)
{
    uint16_t index = next_desc++ % QUEUE_SIZE;
    desc_table()[index] = (struct virtq_desc){addr, len, flags, 0};
    return index;
}

static void link_desc(uint16_t from, uint16_t to)
{
    desc_table()[from].flags |= VRING_DESC_F_NEXT;
    desc_table()[from].next = to;
}

static void publish(uint16_t head)
{
    uint16_t *avail = (uint16_t *)(ram + AVAIL_GPA);
    avail[2 + avail[1] % QUEUE_SIZE] = head;
    __atomic_store_n(&avail[1], (uint16_t)(avail[1] + 1), __ATOMIC_RELEASE);
    virtio_device_kick(device, 0);
}

static uint16_t used_index(void)
{
    return __atomic_load_n((uint16_t *)(ram + USED_GPA) + 1, __ATOMIC_ACQUIRE);
}

static struct virtq_used_elem last_used(void)
{
    struct virtq_used_elem element;
    uint16_t index = (uint16_t)(used_index() - 1) % QUEUE_SIZE;
    memcpy(&element, ram + USED_GPA + 4 + 8 * index, sizeof(element));
    return element;
}

struct request {
    uint64_t data_gpa;
    uint64_t status_gpa;
    uint16_t head;
};

/* A request as Linux builds it: header, data split over two buffers, status. */
static struct request submit(uint32_t type, uint64_t sector, const void *out_data,
                             size_t data_length, bool device_writes_data)
{
    struct request request;
    uint64_t header_gpa = alloc_buffer(16);
    struct {
        uint32_t type, ioprio;
        uint64_t sector;
    } header = {type, 0, sector};
    memcpy(ram + header_gpa, &header, 16);
    request.head = add_desc(header_gpa, 16, 0);
    uint16_t last = request.head;
    request.data_gpa = data_length ? alloc_buffer(data_length) : 0;
    if (data_length) {
        if (out_data)
            memcpy(ram + request.data_gpa, out_data, data_length);
        uint16_t flags = device_writes_data ? VRING_DESC_F_WRITE : 0;
        size_t first = data_length > 512 ? data_length / 2 : data_length;
        uint16_t a = add_desc(request.data_gpa, (uint32_t)first, flags);
        link_desc(last, a);
        last = a;
        if (first < data_length) {
            uint16_t b = add_desc(request.data_gpa + first, (uint32_t)(data_length - first), flags);
            link_desc(last, b);
            last = b;
        }
    }
    request.status_gpa = alloc_buffer(1);
    ram[request.status_gpa] = 0xee;
    link_desc(last, add_desc(request.status_gpa, 1, VRING_DESC_F_WRITE));
    publish(request.head);
    return request;
}

static uint8_t request_status(const struct request *request)
{
    return ram[request->status_gpa];
}

static void read_file(uint64_t offset, void *buffer, size_t length)
{
    int fd = open(image, O_RDONLY);
    cr_assert_eq(pread(fd, buffer, length, (off_t)offset), (ssize_t)length);
    close(fd);
}

TestSuite(virtio_blk, .init = setup, .fini = teardown);

Test(virtio_blk, config_space_and_features)
{
    uint64_t capacity = 0;
    device->ops->read_config(device, 0, &capacity, 8);
    cr_assert_eq(capacity, IMAGE_SIZE / 512);
    uint32_t value = 0;
    device->ops->read_config(device, 12, &value, 4);
    cr_assert_eq(value, QUEUE_SIZE - 2, "seg_max");
    device->ops->read_config(device, 20, &value, 4);
    cr_assert_eq(value, 512, "blk_size");
    device->ops->read_config(device, 40, &value, 4);
    cr_assert_eq(value, 1, "max_discard_seg");
    uint32_t features = virtio_device_get_features_word(device, 0);
    cr_assert(features & (1u << VIRTIO_BLK_F_FLUSH));
    cr_assert(features & (1u << VIRTIO_BLK_F_DISCARD));
    cr_assert(features & (1u << VIRTIO_BLK_F_WRITE_ZEROES));
    cr_assert_not(features & (1u << VIRTIO_BLK_F_RO));
    cr_assert_eq(virtio_device_get_features_word(device, 1), 1, "VERSION_1");
}

Test(virtio_blk, features_ok_requires_version_1_and_known_bits)
{
    virtio_device_set_status(device, 0);
    virtio_device_set_status(device, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    virtio_device_set_driver_features_word(device, 0, 1u << VIRTIO_BLK_F_FLUSH);
    virtio_device_set_status(device, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                         VIRTIO_STATUS_FEATURES_OK);
    cr_assert_not(virtio_device_get_status(device) & VIRTIO_STATUS_FEATURES_OK,
                  "legacy drivers are refused");
    virtio_device_set_driver_features_word(device, 1, 1 | 0x80); /* VERSION_1 + unknown */
    virtio_device_set_status(device, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                         VIRTIO_STATUS_FEATURES_OK);
    cr_assert_not(virtio_device_get_status(device) & VIRTIO_STATUS_FEATURES_OK);
    virtio_device_set_driver_features_word(device, 1, 1);
    virtio_device_set_status(device, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                         VIRTIO_STATUS_FEATURES_OK);
    cr_assert(virtio_device_get_status(device) & VIRTIO_STATUS_FEATURES_OK);
    /* Features are frozen after FEATURES_OK. */
    virtio_device_set_driver_features_word(device, 1, 0);
    cr_assert(virtio_device_has_feature(device, VIRTIO_FEATURE_VERSION_1));
}

Test(virtio_blk, write_then_read_lands_at_the_right_offset)
{
    uint8_t data[2048];
    for (unsigned i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7 + 1);
    struct request write = submit(VIRTIO_BLK_T_OUT, 10, data, sizeof(data), false);
    cr_assert_eq(request_status(&write), VIRTIO_BLK_S_OK);
    cr_assert_eq(used_index(), 1);
    cr_assert_eq(last_used().id, write.head);
    cr_assert_eq(queue_notifications, 1);

    uint8_t check[2048 + 512];
    read_file(10 * 512 - 512, check, sizeof(check));
    cr_assert_eq(check[511], 9, "the sector before is intact");
    cr_assert_eq(memcmp(check + 512, data, sizeof(data)), 0);

    struct request read = submit(VIRTIO_BLK_T_IN, 9, NULL, 1536, true);
    cr_assert_eq(request_status(&read), VIRTIO_BLK_S_OK);
    cr_assert_eq(last_used().len, 1536 + 1, "data plus status written");
    cr_assert_eq(ram[read.data_gpa], 9);
    cr_assert_eq(memcmp(ram + read.data_gpa + 512, data, 1024), 0);
}

Test(virtio_blk, flush_get_id_and_unsupported)
{
    struct request flush = submit(VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false);
    cr_assert_eq(request_status(&flush), VIRTIO_BLK_S_OK);

    struct request id = submit(VIRTIO_BLK_T_GET_ID, 0, NULL, 20, true);
    cr_assert_eq(request_status(&id), VIRTIO_BLK_S_OK);
    cr_assert_str_eq((char *)ram + id.data_gpa, "SN-0001");

    struct request odd = submit(42, 0, NULL, 512, true);
    cr_assert_eq(request_status(&odd), VIRTIO_BLK_S_UNSUPP);

    struct request beyond = submit(VIRTIO_BLK_T_IN, IMAGE_SIZE / 512 - 1, NULL, 1024, true);
    cr_assert_eq(request_status(&beyond), VIRTIO_BLK_S_IOERR);
    struct request partial = submit(VIRTIO_BLK_T_IN, 0, NULL, 100, true);
    cr_assert_eq(request_status(&partial), VIRTIO_BLK_S_IOERR, "not a whole sector");
    uint8_t sector[512] = {0};
    struct request huge = submit(VIRTIO_BLK_T_OUT, UINT64_MAX / 256, sector, 512, false);
    cr_assert_eq(request_status(&huge), VIRTIO_BLK_S_IOERR);
    cr_assert_eq(virtio_device_get_status(device) & VIRTIO_STATUS_NEEDS_RESET, 0);
}

Test(virtio_blk, long_serials_are_cut_to_20_bytes)
{
    teardown();
    create_device("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "");
    struct request id = submit(VIRTIO_BLK_T_GET_ID, 0, NULL, 20, true);
    cr_assert_eq(request_status(&id), VIRTIO_BLK_S_OK);
    cr_assert_eq(memcmp(ram + id.data_gpa, "ABCDEFGHIJKLMNOPQRST", 20), 0);
}

static struct request submit_segment(uint32_t type, uint64_t sector, uint32_t sectors,
                                     uint32_t flags)
{
    struct {
        uint64_t sector;
        uint32_t num_sectors, flags;
    } segment = {sector, sectors, flags};
    return submit(type, 0, &segment, sizeof(segment), false);
}

Test(virtio_blk, discard_and_write_zeroes)
{
    struct request zeroes = submit_segment(VIRTIO_BLK_T_WRITE_ZEROES, 4, 3, 0);
    cr_assert_eq(request_status(&zeroes), VIRTIO_BLK_S_OK);
    uint8_t check[5 * 512];
    read_file(3 * 512, check, sizeof(check));
    cr_assert_eq(check[0], 3);
    for (unsigned i = 512; i < 4 * 512; i++)
        cr_assert_eq(check[i], 0, "byte %u", i);
    cr_assert_eq(check[4 * 512], 7);

    struct request unmap =
        submit_segment(VIRTIO_BLK_T_WRITE_ZEROES, 8, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
    cr_assert_eq(request_status(&unmap), VIRTIO_BLK_S_OK);
    read_file(8 * 512, check, 512);
    cr_assert_eq(check[0], 0);

    struct request discard = submit_segment(VIRTIO_BLK_T_DISCARD, 16, 8, 0);
    cr_assert_eq(request_status(&discard), VIRTIO_BLK_S_OK);
    struct request bad_flags = submit_segment(VIRTIO_BLK_T_DISCARD, 16, 8, 1);
    cr_assert_eq(request_status(&bad_flags), VIRTIO_BLK_S_UNSUPP);
    struct request beyond = submit_segment(VIRTIO_BLK_T_WRITE_ZEROES, IMAGE_SIZE / 512 - 1, 2, 0);
    cr_assert_eq(request_status(&beyond), VIRTIO_BLK_S_IOERR);

    uint8_t two[32] = {0};
    struct request two_segments = submit(VIRTIO_BLK_T_DISCARD, 0, two, sizeof(two), false);
    cr_assert_eq(request_status(&two_segments), VIRTIO_BLK_S_UNSUPP);
}

Test(virtio_blk, read_only_drives_reject_writes)
{
    teardown();
    create_device(NULL, ",readonly=on");
    cr_assert(virtio_device_get_features_word(device, 0) & (1u << VIRTIO_BLK_F_RO));
    uint8_t data[512];
    memset(data, 0xff, sizeof(data));
    struct request write = submit(VIRTIO_BLK_T_OUT, 1, data, sizeof(data), false);
    cr_assert_eq(request_status(&write), VIRTIO_BLK_S_IOERR);
    struct request zeroes = submit_segment(VIRTIO_BLK_T_WRITE_ZEROES, 1, 1, 0);
    cr_assert_eq(request_status(&zeroes), VIRTIO_BLK_S_IOERR);
    uint8_t check[512];
    read_file(512, check, sizeof(check));
    cr_assert_eq(check[0], 1, "the file is unchanged");
    struct request read = submit(VIRTIO_BLK_T_IN, 1, NULL, 512, true);
    cr_assert_eq(request_status(&read), VIRTIO_BLK_S_OK);
    struct request id = submit(VIRTIO_BLK_T_GET_ID, 0, NULL, 20, true);
    cr_assert_eq(request_status(&id), VIRTIO_BLK_S_OK);
    cr_assert_eq(ram[id.data_gpa], 0, "no serial: empty string");
}

Test(virtio_blk, after_drive_del_every_io_fails_and_the_file_is_untouched)
{
    struct pv_error error = {0};
    cr_assert_eq(block_drive_del(layer, "drive0", &error), 0, "%s", error.message);
    uint8_t data[512];
    memset(data, 0xff, sizeof(data));
    struct request write = submit(VIRTIO_BLK_T_OUT, 1, data, sizeof(data), false);
    cr_assert_eq(request_status(&write), VIRTIO_BLK_S_IOERR);
    struct request read = submit(VIRTIO_BLK_T_IN, 1, NULL, 512, true);
    cr_assert_eq(request_status(&read), VIRTIO_BLK_S_IOERR);
    struct request flush = submit(VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false);
    cr_assert_eq(request_status(&flush), VIRTIO_BLK_S_IOERR);
    struct request zeroes = submit_segment(VIRTIO_BLK_T_WRITE_ZEROES, 1, 1, 0);
    cr_assert_eq(request_status(&zeroes), VIRTIO_BLK_S_IOERR);
    uint64_t capacity = 1;
    device->ops->read_config(device, 0, &capacity, 8);
    cr_assert_eq(capacity, 0);
    uint8_t check[512];
    read_file(512, check, sizeof(check));
    cr_assert_eq(check[0], 1);
    cr_assert_eq(virtio_device_get_status(device) & VIRTIO_STATUS_NEEDS_RESET, 0,
                 "I/O errors are not protocol errors");
}

static void expect_broken(void)
{
    cr_assert(virtio_device_get_status(device) & VIRTIO_STATUS_NEEDS_RESET);
    cr_assert_eq(config_notifications, 1, "NEEDS_RESET comes with a config interrupt");
    /* The device does nothing more until reset... */
    uint16_t used = used_index();
    submit(VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false);
    cr_assert_eq(used_index(), used);
    /* ...and works again after it. */
    driver_init(~0ULL);
    cr_assert_not(virtio_device_get_status(device) & VIRTIO_STATUS_NEEDS_RESET);
    struct request flush = submit(VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false);
    cr_assert_eq(request_status(&flush), VIRTIO_BLK_S_OK);
}

Test(virtio_blk, evil_chain_loop)
{
    uint16_t a = add_desc(BUFFER_GPA, 16, 0);
    uint16_t b = add_desc(BUFFER_GPA, 16, 0);
    link_desc(a, b);
    link_desc(b, a);
    publish(a);
    expect_broken();
}

Test(virtio_blk, evil_chain_outside_ram)
{
    uint16_t a = add_desc(BUFFER_GPA, 16, 0);
    link_desc(a, add_desc(RAM_SIZE + 0x1000, 1, VRING_DESC_F_WRITE));
    publish(a);
    expect_broken();
}

Test(virtio_blk, evil_chain_of_1000_descriptors)
{
    /* Every descriptor points to the next one around the table: a driver
     * "chain" of 1000 (or any number of) descriptors in a 256-entry queue. */
    for (unsigned i = 0; i < QUEUE_SIZE; i++)
        desc_table()[i] = (struct virtq_desc){BUFFER_GPA, 16, VRING_DESC_F_NEXT,
                                              (uint16_t)((i + 1) % QUEUE_SIZE)};
    publish(0);
    expect_broken();
}

Test(virtio_blk, a_1000_descriptor_indirect_request_is_served)
{
    struct virtq_desc *indirect = (struct virtq_desc *)(ram + INDIRECT_GPA);
    struct {
        uint32_t type, ioprio;
        uint64_t sector;
    } header = {VIRTIO_BLK_T_IN, 0, 0};
    memcpy(ram + BUFFER_GPA, &header, 16);
    indirect[0] = (struct virtq_desc){BUFFER_GPA, 16, VRING_DESC_F_NEXT, 1};
    for (unsigned i = 1; i < 999; i++)
        indirect[i] =
            (struct virtq_desc){BUFFER_GPA + 0x1000 + 512 * (i - 1), 512,
                                VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, (uint16_t)(i + 1)};
    uint64_t status_gpa = BUFFER_GPA + 0x1000 + 512 * 998;
    indirect[999] = (struct virtq_desc){status_gpa, 1, VRING_DESC_F_WRITE, 0};
    ram[status_gpa] = 0xee;
    publish(add_desc(INDIRECT_GPA, 1000 * 16, VRING_DESC_F_INDIRECT));
    cr_assert_eq(ram[status_gpa], VIRTIO_BLK_S_OK);
    for (unsigned sector = 0; sector < 998; sector++)
        cr_assert_eq(ram[BUFFER_GPA + 0x1000 + 512 * sector], (uint8_t)sector);
    cr_assert_eq(last_used().len, 998 * 512 + 1);
}

Test(virtio_blk, evil_indirect_inside_indirect)
{
    struct virtq_desc *indirect = (struct virtq_desc *)(ram + INDIRECT_GPA);
    indirect[0] = (struct virtq_desc){INDIRECT_GPA, 32, VRING_DESC_F_INDIRECT, 0};
    indirect[1] = (struct virtq_desc){BUFFER_GPA, 1, VRING_DESC_F_WRITE, 0};
    publish(add_desc(INDIRECT_GPA, 32, VRING_DESC_F_INDIRECT));
    expect_broken();
}

Test(virtio_blk, evil_missing_header)
{
    publish(add_desc(BUFFER_GPA, 1, VRING_DESC_F_WRITE));
    expect_broken();
}

Test(virtio_blk, indirect_requests_work)
{
    struct virtq_desc *indirect = (struct virtq_desc *)(ram + INDIRECT_GPA);
    struct {
        uint32_t type, ioprio;
        uint64_t sector;
    } header = {VIRTIO_BLK_T_IN, 0, 5};
    memcpy(ram + BUFFER_GPA, &header, 16);
    indirect[0] = (struct virtq_desc){BUFFER_GPA, 16, VRING_DESC_F_NEXT, 1};
    indirect[1] =
        (struct virtq_desc){BUFFER_GPA + 0x1000, 512, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2};
    indirect[2] = (struct virtq_desc){BUFFER_GPA + 0x2000, 1, VRING_DESC_F_WRITE, 0};
    ram[BUFFER_GPA + 0x2000] = 0xee;
    publish(add_desc(INDIRECT_GPA, 48, VRING_DESC_F_INDIRECT));
    cr_assert_eq(ram[BUFFER_GPA + 0x2000], VIRTIO_BLK_S_OK);
    cr_assert_eq(ram[BUFFER_GPA + 0x1000], 5);
}

Test(virtio_blk, requests_before_driver_ok_wait)
{
    virtio_device_set_status(device, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                         VIRTIO_STATUS_FEATURES_OK);
    driver_init(~0ULL);
    /* Submit while DRIVER_OK is not set: nothing happens until it is. */
    virtio_device_set_status(device, 0);
    virtio_device_set_status(device, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    virtio_device_set_driver_features_word(device, 1, 1);
    virtio_device_set_status(device, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                         VIRTIO_STATUS_FEATURES_OK);
    memset(ram, 0, BUFFER_GPA);
    struct virtqueue *queue = &device->queues[0];
    queue->size = QUEUE_SIZE;
    queue->desc_gpa = DESC_GPA;
    queue->avail_gpa = AVAIL_GPA;
    queue->used_gpa = USED_GPA;
    cr_assert_eq(virtio_device_enable_queue(device, 0, NULL), 0);
    next_desc = 0;
    struct request flush = submit(VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false);
    cr_assert_eq(request_status(&flush), 0xee);
    virtio_device_set_status(device, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                         VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    cr_assert_eq(request_status(&flush), VIRTIO_BLK_S_OK);
}

Test(virtio_blk, the_io_thread_serves_kicks)
{
    struct pv_error error = {0};
    cr_assert_eq(virtio_device_start_io_thread(device, &error), 0, "%s", error.message);
    cr_assert_geq(virtio_device_queue_eventfd(device, 0), 0);
    uint8_t data[512];
    memset(data, 0x42, sizeof(data));
    struct request write = submit(VIRTIO_BLK_T_OUT, 3, data, sizeof(data), false);
    for (int i = 0; i < 2000 && queue_notifications == 0; i++)
        usleep(1000);
    cr_assert_eq(queue_notifications, 1);
    cr_assert_eq(request_status(&write), VIRTIO_BLK_S_OK);
    uint8_t check[512];
    read_file(3 * 512, check, sizeof(check));
    cr_assert_eq(check[0], 0x42);
    virtio_device_stop_io_thread(device);
}

Test(virtio_blk, options_from_the_command_line)
{
    struct qemu_options options;
    cr_assert_eq(qemu_options_parse(&options,
                                    "drive=drive0,serial=abc,num-queues=2,queue-size=128,"
                                    "discard=off,id=vd9,bus=pci.0",
                                    NULL, 0, NULL),
                 0);
    struct virtio_blk_options blk_options = {.block_layer = layer};
    struct pv_error error = {0};
    cr_assert_eq(virtio_blk_options_from_qemu(&options, &blk_options, &error), 0);
    cr_assert_eq(blk_options.block_layer, layer);
    cr_assert_str_eq(blk_options.drive, "drive0");
    cr_assert_str_eq(blk_options.serial, "abc");
    cr_assert_eq(blk_options.num_queues, 2);
    cr_assert_eq(blk_options.queue_size, 128);
    cr_assert_not(blk_options.discard);
    cr_assert(blk_options.write_zeroes);
    cr_assert_neq(qemu_options_check_unused(&options, &error), 0, "id and bus are the caller's");
    /* drive0 is in use by this suite's device. */
    cr_assert_null(virtio_blk_new(&blk_options, &error));
    cr_assert_str_eq(error.message, "Drive 'drive0' is already in use by another device");
    blk_options.drive = "nothing";
    cr_assert_null(virtio_blk_new(&blk_options, &error));
    cr_assert_str_eq(error.message, "Property 'virtio-blk-pci.drive' can't find value 'nothing'");
    qemu_options_free(&options);
}

/* libvirt sets write-cache on every disk with a <driver cache=> (device_args.h). */
Test(virtio_blk, write_cache_property_like_qemu)
{
    static const struct {
        const char *text;
        int write_cache;
    } cases[] = {{"drive=d", 0},
                 {"drive=d,write-cache=auto", 0},
                 {"drive=d,write-cache=on", 1},
                 {"drive=d,write-cache=off", 2}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct qemu_options options;
        cr_assert_eq(qemu_options_parse(&options, cases[i].text, NULL, 0, NULL), 0);
        struct virtio_blk_options blk_options = {.block_layer = layer};
        struct pv_error error = {0};
        cr_assert_eq(virtio_blk_options_from_qemu(&options, &blk_options, &error), 0, "%s",
                     error.message);
        cr_assert_eq(blk_options.write_cache, cases[i].write_cache, "%s", cases[i].text);
        cr_assert_eq(qemu_options_check_unused(&options, &error), 0, "%s", error.message);
        qemu_options_free(&options);
    }
    struct qemu_options options;
    cr_assert_eq(qemu_options_parse(&options, "drive=d,write-cache=maybe", NULL, 0, NULL), 0);
    struct virtio_blk_options blk_options = {.block_layer = layer};
    struct pv_error error = {0};
    cr_assert_eq(virtio_blk_options_from_qemu(&options, &blk_options, &error), -EINVAL);
    cr_assert_str_eq(error.message, "Parameter 'write-cache' does not accept value 'maybe'");
    qemu_options_free(&options);
}

/* I/O errors are always reported to the guest: policies that would stop the VM
 * or hide the error are refused by name, never accepted and ignored. */
Test(virtio_blk, error_policies_other_than_report_are_refused)
{
    static const struct {
        const char *text;
        const char *message; /* NULL: accepted */
    } cases[] = {
        {"drive=d,werror=report,rerror=report", NULL},
        {"drive=d,werror=enospc", NULL},
        {"drive=d,werror=stop", "virtio-blk-pci: werror=stop is not supported"},
        {"drive=d,werror=ignore", "virtio-blk-pci: werror=ignore is not supported"},
        {"drive=d,rerror=stop", "virtio-blk-pci: rerror=stop is not supported"},
        {"drive=d,rerror=enospc", "virtio-blk-pci: rerror=enospc is not supported"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct qemu_options options;
        cr_assert_eq(qemu_options_parse(&options, cases[i].text, NULL, 0, NULL), 0);
        struct virtio_blk_options blk_options = {.block_layer = layer};
        struct pv_error error = {0};
        int rc = virtio_blk_options_from_qemu(&options, &blk_options, &error);
        if (!cases[i].message) {
            cr_assert_eq(rc, 0, "%s: %s", cases[i].text, error.message);
            cr_assert_eq(qemu_options_check_unused(&options, &error), 0, "%s", cases[i].text);
        } else {
            cr_assert_eq(rc, -EINVAL, "%s", cases[i].text);
            cr_assert(strstr(error.message, cases[i].message), "%s: %s", cases[i].text,
                      error.message);
        }
        qemu_options_free(&options);
    }
}

/*
 * virtio-blk over the virtio 1.x PCI modern transport (virtio_pci.c), used for
 * transitional devices too. One split virtqueue, one request in flight,
 * completion by MSI-X: the CPU sleeps in the int3 idle stub until the device's
 * vector fires (probe_wait), with a 2 s limit per request.
 *
 * All DMA memory is static (.bss): one 4 KiB queue page per device context
 * and one shared data buffer, so mem-test can never overwrite it.
 */
#include "probe.h"

#define VIRTIO_BLK_MODERN 0x1042
#define VIRTIO_BLK_TRANSITIONAL 0x1001

#define FEATURE_SEG_MAX (1ull << 2)
#define FEATURE_RO (1ull << 5)
#define FEATURE_BLK_SIZE (1ull << 6)
#define FEATURE_FLUSH (1ull << 9)
#define FEATURES_WANTED                                                                            \
    (FEATURE_SEG_MAX | FEATURE_RO | FEATURE_BLK_SIZE | FEATURE_FLUSH | VIRTIO_F_INDIRECT_DESC |    \
     VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM)

#define REQUEST_IN 0
#define REQUEST_OUT 1
#define REQUEST_FLUSH 4
#define REQUEST_GET_ID 8
#define REQUEST_STATUS_OK 0
#define REQUEST_STATUS_IOERR 1
#define REQUEST_STATUS_UNSUPP 2
#define REQUEST_STATUS_UNSET 0xff /* our sentinel: the device never wrote it */

#define DESC_F_NEXT VIRTQ_DESC_F_NEXT
#define DESC_F_WRITE VIRTQ_DESC_F_WRITE
#define DESC_F_INDIRECT VIRTQ_DESC_F_INDIRECT

#define QUEUE_SIZE_MAX 128
#define MAX_DEVICES PROBE_VECTOR_MSI_COUNT
#define SECTOR_SIZE 512
#define MAX_SECTORS 128
#define ID_BYTES 20
#define REQUEST_TIMEOUT_US 2000000
#define EVIL_CHAIN_LENGTH 1000
#define EVIL_BAD_ADDRESS 0x8000000000ull /* 512 GiB: no RAM, no MMIO */

struct request_header {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};

/* Everything the device touches for one queue, in one page. */
struct queue_page {
    struct virtq_desc desc[QUEUE_SIZE_MAX];
    struct {
        uint16_t flags;
        uint16_t index;
        uint16_t ring[QUEUE_SIZE_MAX];
        uint16_t used_event;
    } avail;
    struct {
        uint16_t flags;
        uint16_t index;
        struct virtq_used_element ring[QUEUE_SIZE_MAX];
        uint16_t avail_event;
    } used __attribute__((aligned(4)));
    struct request_header header;
    uint8_t status[4]; /* [0] normal requests, [1..3] the evil ones */
    char id[ID_BYTES];
} __attribute__((aligned(4096)));
_Static_assert(sizeof(struct queue_page) == 4096, "queue page must be one page");

struct virtio_blk {
    bool in_use;
    bool broken;
    struct pci_function *function;
    struct virtio_pci pci;
    uint64_t notify;
    uint16_t queue_size;
    uint8_t vector;
    uint64_t sectors;
    char serial[ID_BYTES + 1];
    uint16_t avail_index; /* next avail.index to publish */
    uint16_t used_index;  /* used.index consumed so far */
    struct queue_page *queue;
};

static struct queue_page queue_pages[MAX_DEVICES];
static struct virtio_blk devices[MAX_DEVICES];
static uint8_t data_buffer[MAX_SECTORS * SECTOR_SIZE] __attribute__((aligned(4096)));
static struct virtq_desc evil_table[EVIL_CHAIN_LENGTH] __attribute__((aligned(16)));

static uint64_t physical(const volatile void *pointer)
{
    return (uint64_t)(uintptr_t)pointer; /* identity-mapped */
}

static void barrier(void)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

bool virtio_blk_matches(const struct pci_function *function)
{
    return function->vendor == VIRTIO_VENDOR &&
           (function->device == VIRTIO_BLK_MODERN || function->device == VIRTIO_BLK_TRANSITIONAL);
}

static uint8_t device_status(const struct virtio_blk *blk)
{
    return virtio_pci_status(&blk->pci);
}

/* ---- requests ---- */

static void notify(struct virtio_blk *blk)
{
    barrier();
    mmio_write16(blk->notify, 0); /* queue index 0 */
}

static void publish(struct virtio_blk *blk, uint16_t head)
{
    struct queue_page *queue = blk->queue;
    queue->avail.ring[blk->avail_index % blk->queue_size] = head;
    barrier();
    blk->avail_index++;
    *(volatile uint16_t *)&queue->avail.index = blk->avail_index;
}

struct used_wait {
    struct virtio_blk *blk;
    uint16_t target; /* used.index to reach */
};

static bool used_reached(void *context)
{
    struct used_wait *wait = context;
    uint16_t index = *(volatile uint16_t *)&wait->blk->queue->used.index;
    return (uint16_t)(index - wait->target) < 0x8000;
}

static const char *usable(struct virtio_blk *blk)
{
    if (blk->broken)
        return "broken";
    uint8_t status = device_status(blk);
    if (status == 0xff)
        return "not answering";
    if (status & VIRTIO_STATUS_NEEDS_RESET) {
        blk->broken = true;
        return "needs reset";
    }
    if (!(status & VIRTIO_STATUS_DRIVER_OK))
        return "not ready";
    return NULL;
}

/* One request (header, optional data, status); NULL on success, else the reason. */
static const char *run_request(struct virtio_blk *blk, uint32_t type, uint64_t sector, void *data,
                               uint32_t length, bool device_writes)
{
    const char *problem = usable(blk);
    if (problem)
        return problem;
    struct queue_page *queue = blk->queue;
    queue->header = (struct request_header){type, 0, sector};
    queue->status[0] = REQUEST_STATUS_UNSET;
    unsigned status_index = length ? 2 : 1;
    queue->desc[0] =
        (struct virtq_desc){physical(&queue->header), sizeof(queue->header), DESC_F_NEXT, 1};
    if (length)
        queue->desc[1] = (struct virtq_desc){physical(data), length,
                                             DESC_F_NEXT | (device_writes ? DESC_F_WRITE : 0), 2};
    queue->desc[status_index] =
        (struct virtq_desc){physical(&queue->status[0]), 1, DESC_F_WRITE, 0};
    publish(blk, 0);
    notify(blk);
    struct used_wait wait = {blk, (uint16_t)(blk->used_index + 1)};
    enum probe_wait_result result = probe_wait(used_reached, &wait, REQUEST_TIMEOUT_US);
    if (result == PROBE_WAIT_TIMEOUT) {
        blk->broken = true; /* the descriptors may still be in the device's hands */
        return "timeout";
    }
    if (result == PROBE_WAIT_LATE)
        console_printf("PROBE WARN %s request completed without an interrupt", blk->function->name);
    barrier();
    struct virtq_used_element element = queue->used.ring[blk->used_index % blk->queue_size];
    blk->used_index++;
    if (element.id != 0)
        console_printf("PROBE WARN %s used ring returned descriptor %u, expected 0",
                       blk->function->name, element.id);
    switch (queue->status[0]) {
    case REQUEST_STATUS_OK:
        return NULL;
    case REQUEST_STATUS_IOERR:
        return "IOERR";
    case REQUEST_STATUS_UNSUPP:
        return "UNSUPP";
    case REQUEST_STATUS_UNSET:
        return "no status written";
    default:
        return "bad status";
    }
}

/* ---- initialisation ---- */

static uint64_t read_capacity(struct virtio_blk *blk)
{
    uint64_t capacity = 0;
    uint64_t config = blk->pci.device_config;
    for (unsigned attempt = 0; attempt < 10; attempt++) {
        uint8_t generation = virtio_pci_config_generation(&blk->pci);
        capacity = mmio_read32(config) | (uint64_t)mmio_read32(config + 4) << 32;
        if (virtio_pci_config_generation(&blk->pci) == generation)
            break;
    }
    return capacity;
}

static const char *initialise(struct virtio_blk *blk)
{
    const char *problem = virtio_pci_find(&blk->pci);
    if (!problem)
        problem = virtio_pci_start(&blk->pci, FEATURES_WANTED);
    if (problem)
        return problem;
    pci_msix_set_vector(&blk->pci.msix, 0, blk->vector);
    problem = virtio_pci_set_config_vector(&blk->pci, VIRTIO_NO_VECTOR);
    if (problem)
        return problem;
    struct queue_page *queue = blk->queue;
    memset(queue, 0, sizeof(*queue));
    blk->avail_index = blk->used_index = 0;
    struct virtio_queue_setup setup = {
        .index = 0,
        .size_limit = QUEUE_SIZE_MAX,
        .msix_entry = 0,
        .desc = physical(queue->desc),
        .avail = physical(&queue->avail),
        .used = physical(&queue->used),
    };
    problem = virtio_pci_setup_queue(&blk->pci, &setup);
    if (problem)
        return problem;
    blk->queue_size = setup.size;
    blk->notify = setup.notify;
    virtio_pci_set_status(&blk->pci, VIRTIO_STATUS_DRIVER_OK);
    if (device_status(blk) & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED))
        return "device failed after DRIVER_OK";

    blk->sectors = read_capacity(blk);
    memset(queue->id, 0, sizeof(queue->id));
    if (run_request(blk, REQUEST_GET_ID, 0, queue->id, ID_BYTES, true) == NULL) {
        for (unsigned i = 0; i < ID_BYTES && queue->id[i]; i++) {
            char c = queue->id[i];
            blk->serial[i] = c >= 0x20 && c < 0x7f ? c : '?';
        }
    } else if (blk->broken) {
        return "get-id request timed out";
    }
    return NULL;
}

/* ---- probe.virtio=evil ---- */

struct evil_wait {
    struct virtio_blk *blk;
    uint16_t target;
};

static void run_evil(struct virtio_blk *blk)
{
    const char *name = blk->function->name;
    struct queue_page *queue = blk->queue;
    if (blk->queue_size < 8) {
        console_printf("PROBE WARN %s queue too small for the evil requests", name);
        return;
    }
    queue->header = (struct request_header){REQUEST_IN, 0, 0};
    queue->status[1] = queue->status[2] = queue->status[3] = REQUEST_STATUS_UNSET;
    uint64_t header = physical(&queue->header);
    /* 1: a descriptor whose next is itself. */
    queue->desc[3] = (struct virtq_desc){header, sizeof(queue->header), DESC_F_NEXT, 3};
    /* 2: data buffer outside guest RAM. */
    queue->desc[4] = (struct virtq_desc){header, sizeof(queue->header), DESC_F_NEXT, 5};
    queue->desc[5] =
        (struct virtq_desc){EVIL_BAD_ADDRESS, SECTOR_SIZE, DESC_F_NEXT | DESC_F_WRITE, 6};
    queue->desc[6] = (struct virtq_desc){physical(&queue->status[2]), 1, DESC_F_WRITE, 0};
    /* 3: 1000 chained descriptors, longer than any queue, in an indirect table. */
    evil_table[0] = (struct virtq_desc){header, sizeof(queue->header), DESC_F_NEXT, 1};
    for (uint16_t i = 1; i < EVIL_CHAIN_LENGTH - 1; i++)
        evil_table[i] = (struct virtq_desc){physical(data_buffer), SECTOR_SIZE,
                                            DESC_F_NEXT | DESC_F_WRITE, (uint16_t)(i + 1)};
    evil_table[EVIL_CHAIN_LENGTH - 1] =
        (struct virtq_desc){physical(&queue->status[3]), 1, DESC_F_WRITE, 0};
    queue->desc[7] =
        (struct virtq_desc){physical(evil_table), sizeof(evil_table), DESC_F_INDIRECT, 0};
    publish(blk, 3);
    publish(blk, 4);
    publish(blk, 7);
    notify(blk);
    console_printf("PROBE EVIL %s sent", name);
    struct used_wait wait = {blk, (uint16_t)(blk->used_index + 3)};
    enum probe_wait_result result = probe_wait(used_reached, &wait, REQUEST_TIMEOUT_US);
    uint8_t status = device_status(blk);
    if (result == PROBE_WAIT_TIMEOUT) {
        console_printf("PROBE BLK ERROR %s timeout", name);
        blk->broken = true;
    } else {
        blk->used_index += 3;
        console_printf("PROBE EVIL %s completed", name);
    }
    if (status & VIRTIO_STATUS_NEEDS_RESET) {
        console_printf("PROBE BLK ERROR %s needs reset", name);
        blk->broken = true;
    }
}

/* ---- attach / detach ---- */

int virtio_blk_attach(struct pci_function *function)
{
    struct virtio_blk *blk = NULL;
    unsigned index = 0;
    for (; index < MAX_DEVICES; index++) {
        if (!devices[index].in_use) {
            blk = &devices[index];
            break;
        }
    }
    if (!blk) {
        console_printf("PROBE WARN %s virtio-blk: no free driver slot (%u in use)", function->name,
                       MAX_DEVICES);
        return -1;
    }
    memset(blk, 0, sizeof(*blk));
    blk->in_use = true;
    blk->function = function;
    blk->pci.function = function;
    blk->queue = &queue_pages[index];
    blk->vector = (uint8_t)(PROBE_VECTOR_MSI_FIRST + index);
    function->driver_kind = PCI_DRIVER_VIRTIO_BLK;
    function->driver = blk;
    const char *problem = initialise(blk);
    if (problem) {
        console_printf("PROBE WARN %s virtio-blk: %s", function->name, problem);
        virtio_blk_detach(function, pci_read16(function->bdf, 0) == function->vendor);
        return -1;
    }
    console_printf("PROBE PCI ADD %s %04x:%04x virtio-blk sectors=%lu serial=%s", function->name,
                   function->vendor, function->device, blk->sectors, blk->serial);
    if (probe_options.virtio_evil)
        run_evil(blk);
    return 0;
}

void virtio_blk_detach(struct pci_function *function, bool device_present)
{
    struct virtio_blk *blk = function->driver;
    if (!blk)
        return;
    virtio_pci_stop(&blk->pci, device_present);
    blk->in_use = false;
    function->driver = NULL;
    function->driver_kind = PCI_DRIVER_NONE;
}

/* ---- commands ---- */

/* Resolves the <bdf> argument; prints the error and returns NULL if there is no disk. */
static struct virtio_blk *find_disk(const char *text)
{
    uint16_t bdf;
    if (!pci_parse_bdf(text, &bdf)) {
        console_printf("PROBE BLK ERROR %s no such device", text);
        return NULL;
    }
    struct pci_function *function = pci_find(bdf);
    if (!function || function->driver_kind != PCI_DRIVER_VIRTIO_BLK) {
        console_printf("PROBE BLK ERROR %02x:%02x.%x no such device", PCI_BUS(bdf), PCI_SLOT(bdf),
                       PCI_FUNCTION(bdf));
        return NULL;
    }
    return function->driver;
}

void virtio_blk_command_read(char *arguments)
{
    char *cursor = arguments;
    char *bdf_text = probe_next_word(&cursor), *lba_text = probe_next_word(&cursor);
    char *count_text = probe_next_word(&cursor);
    uint64_t lba, count;
    if (!*count_text || !probe_parse_u64(lba_text, &lba) || !probe_parse_u64(count_text, &count) ||
        count == 0 || count > MAX_SECTORS) {
        console_printf("PROBE ERROR blk-read: expected <bb:dd.f> <lba> <count 1..%u>", MAX_SECTORS);
        return;
    }
    struct virtio_blk *blk = find_disk(bdf_text);
    if (!blk)
        return;
    uint32_t length = (uint32_t)count * SECTOR_SIZE;
    memset(data_buffer, 0x5a, length); /* so a device that writes nothing is noticed */
    const char *problem = run_request(blk, REQUEST_IN, lba, data_buffer, length, true);
    if (problem)
        console_printf("PROBE BLK ERROR %s %s", blk->function->name, problem);
    else
        console_printf("PROBE BLK READ %s lba=%lu count=%lu sum=0x%08x", blk->function->name, lba,
                       count, probe_fnv1a(data_buffer, length));
}

void virtio_blk_command_write(char *arguments)
{
    char *cursor = arguments;
    char *bdf_text = probe_next_word(&cursor), *lba_text = probe_next_word(&cursor);
    char *byte_text = probe_next_word(&cursor);
    uint64_t lba, byte;
    if (!*byte_text || !probe_parse_u64(lba_text, &lba) || !probe_parse_u64(byte_text, &byte) ||
        byte > 0xff) {
        console_printf("PROBE ERROR blk-write: expected <bb:dd.f> <lba> <byte 0..255>");
        return;
    }
    struct virtio_blk *blk = find_disk(bdf_text);
    if (!blk)
        return;
    memset(data_buffer, (int)byte, SECTOR_SIZE);
    const char *problem = run_request(blk, REQUEST_OUT, lba, data_buffer, SECTOR_SIZE, false);
    if (problem)
        console_printf("PROBE BLK ERROR %s %s", blk->function->name, problem);
    else
        console_printf("PROBE BLK WRITE %s lba=%lu ok", blk->function->name, lba);
}

void virtio_blk_command_flush(char *arguments)
{
    char *cursor = arguments;
    char *bdf_text = probe_next_word(&cursor);
    if (!*bdf_text) {
        console_printf("PROBE ERROR blk-flush: expected <bb:dd.f>");
        return;
    }
    struct virtio_blk *blk = find_disk(bdf_text);
    if (!blk)
        return;
    if (!(blk->pci.features & FEATURE_FLUSH)) {
        console_printf("PROBE BLK ERROR %s flush not offered", blk->function->name);
        return;
    }
    const char *problem = run_request(blk, REQUEST_FLUSH, 0, NULL, 0, false);
    if (problem)
        console_printf("PROBE BLK ERROR %s %s", blk->function->name, problem);
    else
        console_printf("PROBE BLK FLUSH %s ok", blk->function->name);
}

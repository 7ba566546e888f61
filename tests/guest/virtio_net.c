/*
 * virtio-net over the virtio 1.x PCI modern transport (virtio_pci.c), for
 * 1af4:1041 and transitional 1af4:1000. Queue 0 receives, queue 1 transmits;
 * no control queue and no offloads (nothing that would need checksum or GSO
 * handling is negotiated).
 *
 * Receiving is interrupt driven from the main loop: the NIC's MSI-X vector
 * sets PROBE_PENDING_NET, virtio_net_poll drains the used ring, reports or
 * echoes each frame and gives every buffer straight back, so the ring stays
 * full. Transmitting publishes one descriptor (header + frame, contiguous);
 * net-send sleeps until the device returns it, echo does not wait.
 *
 * All DMA memory is static (.bss) so mem-test never overwrites it.
 */
#include "probe.h"

#define VIRTIO_NET_MODERN 0x1041
#define VIRTIO_NET_TRANSITIONAL 0x1000

#define FEATURE_MAC (1ull << 5)
#define FEATURE_MRG_RXBUF (1ull << 15)
#define FEATURE_STATUS (1ull << 16)
#define FEATURES_WANTED                                                                            \
    (FEATURE_MAC | FEATURE_MRG_RXBUF | FEATURE_STATUS | VIRTIO_F_VERSION_1 |                       \
     VIRTIO_F_ACCESS_PLATFORM)
#define CONFIG_MAC 0
#define CONFIG_STATUS 6
#define STATUS_LINK_UP 1

#define QUEUE_RX 0
#define QUEUE_TX 1
#define MSIX_ENTRY_RX 0
#define MSIX_ENTRY_TX 1
#define MSIX_ENTRY_CONFIG 2
#define MSIX_ENTRIES_NEEDED 3

#define MAX_NICS PROBE_VECTOR_NET_COUNT
#define QUEUE_SIZE_MAX 64
#define BUFFER_SIZE 2048
/* With MRG_RXBUF the device may spread a frame over several buffers; posting
 * half of each one makes every frame over 1012 bytes do so, which keeps the
 * num_buffers path exercised. Without it a buffer must hold header + 1514. */
#define RX_POST_MERGEABLE 1024
#define HEADER_SIZE 12 /* struct virtio_net_hdr with num_buffers (VERSION_1) */
#define ETHERNET_HEADER 14
#define MAX_SEND_BYTES 120 /* what fits in a 255-character command line */
#define TX_TIMEOUT_US 2000000
#define RX_LINES_PER_SECOND 64
#define RX_WINDOW_US 1000000

struct virtio_net_header {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t header_length;
    uint16_t gso_size;
    uint16_t checksum_start;
    uint16_t checksum_offset;
    uint16_t num_buffers;
};
_Static_assert(sizeof(struct virtio_net_header) == HEADER_SIZE, "virtio_net_hdr is 12 bytes");

/* One split virtqueue, in one page. */
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
} __attribute__((aligned(4096)));
_Static_assert(sizeof(struct queue_page) == 4096, "queue page must be one page");
#define USED_F_NO_NOTIFY 1

struct queue {
    struct queue_page *page;
    uint16_t size;
    uint16_t avail_index; /* next avail.index to publish */
    uint16_t used_index;  /* used.index consumed so far */
    uint64_t notify;
};

struct virtio_net {
    bool in_use;
    bool echo;
    bool link_up;
    struct pci_function *function;
    struct virtio_pci pci;
    uint8_t mac[6];
    uint8_t vector, config_vector;
    struct queue rx, tx;
    uint32_t rx_posted_length;
    bool tx_busy[QUEUE_SIZE_MAX];
    uint64_t rx_frames, tx_frames, dropped;
    /* RX line budget: RX_LINES_PER_SECOND per window, the rest counted. */
    struct probe_timer window;
    unsigned window_lines;
    uint64_t window_suppressed;
};

struct nic_memory {
    struct queue_page rx_queue, tx_queue;
    uint8_t rx_buffers[QUEUE_SIZE_MAX][BUFFER_SIZE];
    uint8_t tx_buffers[QUEUE_SIZE_MAX][BUFFER_SIZE];
};

static struct nic_memory memory[MAX_NICS];
static struct virtio_net nics[MAX_NICS];

static uint64_t physical(const volatile void *pointer)
{
    return (uint64_t)(uintptr_t)pointer; /* identity-mapped */
}

static void barrier(void)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

bool virtio_net_matches(const struct pci_function *function)
{
    return function->vendor == VIRTIO_VENDOR &&
           (function->device == VIRTIO_NET_MODERN || function->device == VIRTIO_NET_TRANSITIONAL);
}

static unsigned nic_index(const struct virtio_net *nic)
{
    return (unsigned)(nic - nics);
}

/* ---- rings ---- */

static void publish(struct queue *queue, uint16_t head)
{
    queue->page->avail.ring[queue->avail_index % queue->size] = head;
    queue->avail_index++;
}

static void kick(struct queue *queue, uint16_t queue_index)
{
    barrier();
    *(volatile uint16_t *)&queue->page->avail.index = queue->avail_index;
    barrier();
    /* The device says when it does not want notifications (e.g. while it is
     * already processing the queue); skipping them saves an exit per frame. */
    if (!(*(volatile uint16_t *)&queue->page->used.flags & USED_F_NO_NOTIFY))
        mmio_write16(queue->notify, queue_index);
}

static uint16_t used_available(const struct queue *queue)
{
    uint16_t index = *(volatile uint16_t *)&queue->page->used.index;
    return (uint16_t)(index - queue->used_index);
}

/* Takes back every transmit descriptor the device has finished with. */
static void reclaim_tx(struct virtio_net *nic)
{
    while (used_available(&nic->tx)) {
        barrier();
        struct virtq_used_element element =
            nic->tx.page->used.ring[nic->tx.used_index % nic->tx.size];
        nic->tx.used_index++;
        if (element.id >= nic->tx.size || !nic->tx_busy[element.id]) {
            console_printf("PROBE WARN %s transmit used ring returned descriptor %u",
                           nic->function->name, element.id);
            continue;
        }
        nic->tx_busy[element.id] = false;
        nic->tx_frames++;
    }
}

/* Copies header + frame into a free transmit slot and publishes it; the slot,
 * or -1 when every slot is still with the device. */
static int transmit(struct virtio_net *nic, const uint8_t *frame, uint32_t length)
{
    reclaim_tx(nic);
    uint16_t slot = nic->tx.avail_index % nic->tx.size;
    if (nic->tx_busy[slot])
        return -1;
    unsigned index = nic_index(nic);
    uint8_t *buffer = memory[index].tx_buffers[slot];
    memset(buffer, 0, HEADER_SIZE); /* no offloads: flags 0, GSO_NONE */
    memcpy(buffer + HEADER_SIZE, frame, length);
    nic->tx.page->desc[slot] = (struct virtq_desc){physical(buffer), HEADER_SIZE + length, 0, 0};
    nic->tx_busy[slot] = true;
    publish(&nic->tx, slot);
    kick(&nic->tx, QUEUE_TX);
    return slot;
}

/* ---- receiving ---- */

static void report_frame(struct virtio_net *nic, uint32_t length, uint32_t sum)
{
    if (!nic->window.active) {
        timer_start(&nic->window, RX_WINDOW_US);
        nic->window_lines = 0;
        nic->window_suppressed = 0;
    }
    if (nic->window_lines >= RX_LINES_PER_SECOND) {
        nic->window_suppressed++;
        return;
    }
    nic->window_lines++;
    console_printf("PROBE NET RX %s len=%u sum=0x%08x", nic->function->name, length, sum);
}

/* Ends an RX line window whose second is over, saying how many lines it held back. */
static void close_window(struct virtio_net *nic, bool force)
{
    if (!nic->window.active || (!force && !timer_expired(&nic->window)))
        return;
    timer_stop(&nic->window);
    if (nic->window_suppressed)
        console_printf("PROBE NET RX-SUPPRESSED %s lines=%lu", nic->function->name,
                       nic->window_suppressed);
    nic->window_lines = 0;
    nic->window_suppressed = 0;
}

/* Swaps destination and source MAC and sends the frame back (net-echo on). */
static void echo_frame(struct virtio_net *nic, uint8_t *frame, uint32_t length)
{
    if (length < ETHERNET_HEADER) {
        nic->dropped++;
        return;
    }
    uint8_t destination[6];
    memcpy(destination, frame, 6);
    memcpy(frame, frame + 6, 6);
    memcpy(frame + 6, destination, 6);
    if (transmit(nic, frame, length) < 0)
        nic->dropped++; /* every transmit slot is still in flight */
}

static void repost_rx(struct virtio_net *nic, uint16_t id)
{
    nic->rx.page->desc[id] = (struct virtq_desc){physical(memory[nic_index(nic)].rx_buffers[id]),
                                                 nic->rx_posted_length, VIRTQ_DESC_F_WRITE, 0};
    publish(&nic->rx, id);
}

/* Takes one frame (num_buffers used entries) off the receive ring; false when
 * the rest of it is not in the used ring yet. */
static bool receive_one(struct virtio_net *nic, uint8_t *echo_buffer)
{
    struct queue *rx = &nic->rx;
    unsigned index = nic_index(nic);
    uint16_t available = used_available(rx);
    barrier();
    struct virtq_used_element first = rx->page->used.ring[rx->used_index % rx->size];
    if (first.id >= rx->size) {
        console_printf("PROBE WARN %s receive used ring returned descriptor %u",
                       nic->function->name, first.id);
        rx->used_index++;
        nic->dropped++;
        return true;
    }
    uint16_t buffers = 1;
    if (nic->pci.features & FEATURE_MRG_RXBUF) {
        const struct virtio_net_header *header = (const void *)memory[index].rx_buffers[first.id];
        buffers = header->num_buffers ? header->num_buffers : 1;
        if (buffers > rx->size) {
            /* Never satisfiable: waiting for it would stop receiving for good. */
            console_printf("PROBE WARN %s frame claims %u receive buffers, the ring has %u",
                           nic->function->name, buffers, rx->size);
            rx->used_index++;
            repost_rx(nic, (uint16_t)first.id);
            nic->dropped++;
            return true;
        }
    }
    if (buffers > available)
        return false;
    uint32_t hash = PROBE_FNV1A_INITIAL, length = 0;
    bool bad = false, fits_echo = true;
    for (uint16_t i = 0; i < buffers; i++) {
        struct virtq_used_element element = rx->page->used.ring[rx->used_index % rx->size];
        rx->used_index++;
        if (element.id >= rx->size || element.length > nic->rx_posted_length ||
            (i == 0 && element.length < HEADER_SIZE)) {
            bad = true;
            if (element.id < rx->size)
                repost_rx(nic, (uint16_t)element.id);
            continue;
        }
        const uint8_t *data = memory[index].rx_buffers[element.id];
        uint32_t piece = element.length;
        if (i == 0) {
            data += HEADER_SIZE;
            piece -= HEADER_SIZE;
        }
        hash = probe_fnv1a_continue(hash, data, piece);
        if (nic->echo && length + piece <= BUFFER_SIZE - HEADER_SIZE)
            memcpy(echo_buffer + length, data, piece);
        else
            fits_echo = false;
        length += piece;
        repost_rx(nic, (uint16_t)element.id);
    }
    if (bad) {
        console_printf("PROBE WARN %s malformed receive used entry", nic->function->name);
        nic->dropped++;
        return true;
    }
    nic->rx_frames++;
    if (!nic->echo)
        report_frame(nic, length, hash);
    else if (fits_echo)
        echo_frame(nic, echo_buffer, length);
    else
        nic->dropped++;
    return true;
}

static void receive(struct virtio_net *nic)
{
    static uint8_t echo_buffer[BUFFER_SIZE];
    uint16_t reposted_from = nic->rx.avail_index;
    while (used_available(&nic->rx)) {
        if (!receive_one(nic, echo_buffer))
            break;
    }
    if (nic->rx.avail_index != reposted_from)
        kick(&nic->rx, QUEUE_RX);
}

/* ---- configuration: MAC and link ---- */

static uint16_t read_link_status(struct virtio_net *nic)
{
    uint16_t status = 0;
    for (unsigned attempt = 0; attempt < 10; attempt++) {
        uint8_t generation = virtio_pci_config_generation(&nic->pci);
        status = mmio_read16(nic->pci.device_config + CONFIG_STATUS);
        if (virtio_pci_config_generation(&nic->pci) == generation)
            break;
    }
    return status;
}

static bool link_is_up(struct virtio_net *nic)
{
    if (!(nic->pci.features & FEATURE_STATUS))
        return true; /* the spec: without STATUS the link is assumed up */
    return (read_link_status(nic) & STATUS_LINK_UP) != 0;
}

static void read_mac(struct virtio_net *nic)
{
    if (!(nic->pci.features & FEATURE_MAC)) {
        /* Like Linux, make one up (locally administered); the device does not need it. */
        const uint8_t made_up[6] = {0x02, 0, 0, 0, 0, (uint8_t)nic_index(nic)};
        memcpy(nic->mac, made_up, sizeof(made_up));
        return;
    }
    for (unsigned attempt = 0; attempt < 10; attempt++) {
        uint8_t generation = virtio_pci_config_generation(&nic->pci);
        for (unsigned i = 0; i < 6; i++)
            nic->mac[i] = mmio_read8(nic->pci.device_config + CONFIG_MAC + i);
        if (virtio_pci_config_generation(&nic->pci) == generation)
            break;
    }
}

static void check_link(struct virtio_net *nic)
{
    bool up = link_is_up(nic);
    if (up == nic->link_up)
        return;
    nic->link_up = up;
    console_printf("PROBE NET LINK %s %s", nic->function->name, up ? "up" : "down");
}

void virtio_net_poll(bool interrupt)
{
    for (unsigned i = 0; i < MAX_NICS; i++) {
        struct virtio_net *nic = &nics[i];
        if (!nic->in_use)
            continue;
        if (interrupt) {
            receive(nic);
            reclaim_tx(nic);
            check_link(nic);
        }
        close_window(nic, false);
    }
}

/* ---- attach / detach ---- */

static const char *setup_queue(struct virtio_net *nic, struct queue *queue, struct queue_page *page,
                               uint16_t index, uint16_t entry)
{
    memset(page, 0, sizeof(*page));
    struct virtio_queue_setup setup = {
        .index = index,
        .size_limit = QUEUE_SIZE_MAX,
        .msix_entry = entry,
        .desc = physical(page->desc),
        .avail = physical(&page->avail),
        .used = physical(&page->used),
    };
    const char *problem = virtio_pci_setup_queue(&nic->pci, &setup);
    if (problem)
        return problem;
    *queue = (struct queue){page, setup.size, 0, 0, setup.notify};
    return NULL;
}

static const char *initialise(struct virtio_net *nic)
{
    const char *problem = virtio_pci_find(&nic->pci);
    if (problem)
        return problem;
    if (nic->pci.msix.table_size < MSIX_ENTRIES_NEEDED)
        return "MSI-X table has fewer than 3 entries (receive, transmit, config)";
    if (nic->pci.device_config_length < CONFIG_STATUS + 2)
        return "device config region too short for mac and status";
    problem = virtio_pci_start(&nic->pci, FEATURES_WANTED);
    if (problem)
        return problem;
    pci_msix_set_vector(&nic->pci.msix, MSIX_ENTRY_RX, nic->vector);
    pci_msix_set_vector(&nic->pci.msix, MSIX_ENTRY_TX, nic->vector);
    pci_msix_set_vector(&nic->pci.msix, MSIX_ENTRY_CONFIG, nic->config_vector);
    problem = virtio_pci_set_config_vector(&nic->pci, MSIX_ENTRY_CONFIG);
    if (!problem)
        problem =
            setup_queue(nic, &nic->rx, &memory[nic_index(nic)].rx_queue, QUEUE_RX, MSIX_ENTRY_RX);
    if (!problem)
        problem =
            setup_queue(nic, &nic->tx, &memory[nic_index(nic)].tx_queue, QUEUE_TX, MSIX_ENTRY_TX);
    if (problem)
        return problem;
    nic->rx_posted_length = nic->pci.features & FEATURE_MRG_RXBUF ? RX_POST_MERGEABLE : BUFFER_SIZE;
    for (uint16_t id = 0; id < nic->rx.size; id++)
        repost_rx(nic, id);
    /* The ring is full before DRIVER_OK, so the device can receive at once. */
    barrier();
    *(volatile uint16_t *)&nic->rx.page->avail.index = nic->rx.avail_index;
    virtio_pci_set_status(&nic->pci, VIRTIO_STATUS_DRIVER_OK);
    if (virtio_pci_status(&nic->pci) & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED))
        return "device failed after DRIVER_OK";
    mmio_write16(nic->rx.notify, QUEUE_RX);
    read_mac(nic);
    nic->link_up = link_is_up(nic);
    return NULL;
}

int virtio_net_attach(struct pci_function *function)
{
    struct virtio_net *nic = NULL;
    for (unsigned i = 0; i < MAX_NICS; i++) {
        if (!nics[i].in_use) {
            nic = &nics[i];
            break;
        }
    }
    if (!nic) {
        console_printf("PROBE WARN %s virtio-net: no free driver slot (%u in use)", function->name,
                       MAX_NICS);
        return -1;
    }
    memset(nic, 0, sizeof(*nic));
    nic->in_use = true;
    nic->function = function;
    nic->pci.function = function;
    nic->vector = (uint8_t)(PROBE_VECTOR_NET_FIRST + nic_index(nic));
    nic->config_vector = (uint8_t)(PROBE_VECTOR_NET_CONFIG_FIRST + nic_index(nic));
    function->driver_kind = PCI_DRIVER_VIRTIO_NET;
    function->driver = nic;
    const char *problem = initialise(nic);
    if (problem) {
        console_printf("PROBE WARN %s virtio-net: %s", function->name, problem);
        virtio_net_detach(function, pci_read16(function->bdf, 0) == function->vendor);
        return -1;
    }
    const uint8_t *mac = nic->mac;
    console_printf("PROBE PCI ADD %s %04x:%04x virtio-net mac=%02x:%02x:%02x:%02x:%02x:%02x "
                   "link=%s",
                   function->name, function->vendor, function->device, mac[0], mac[1], mac[2],
                   mac[3], mac[4], mac[5], nic->link_up ? "up" : "down");
    return 0;
}

void virtio_net_detach(struct pci_function *function, bool device_present)
{
    struct virtio_net *nic = function->driver;
    if (!nic)
        return;
    virtio_pci_stop(&nic->pci, device_present);
    close_window(nic, true);
    nic->in_use = false;
    function->driver = NULL;
    function->driver_kind = PCI_DRIVER_NONE;
}

/* ---- commands ---- */

/* Resolves the <bdf> argument; prints the error and returns NULL if there is no NIC. */
static struct virtio_net *find_nic(const char *text)
{
    uint16_t bdf;
    if (!pci_parse_bdf(text, &bdf)) {
        console_printf("PROBE NET ERROR %s no such device", text);
        return NULL;
    }
    struct pci_function *function = pci_find(bdf);
    if (!function || function->driver_kind != PCI_DRIVER_VIRTIO_NET) {
        console_printf("PROBE NET ERROR %02x:%02x.%x no such device", PCI_BUS(bdf), PCI_SLOT(bdf),
                       PCI_FUNCTION(bdf));
        return NULL;
    }
    return function->driver;
}

static const char *usable(struct virtio_net *nic)
{
    uint8_t status = virtio_pci_status(&nic->pci);
    if (status == 0xff)
        return "not answering";
    if (status & VIRTIO_STATUS_NEEDS_RESET)
        return "needs reset";
    if (!(status & VIRTIO_STATUS_DRIVER_OK))
        return "not ready";
    if (!link_is_up(nic))
        return "link down"; /* Linux keeps the carrier off and sends nothing either */
    return NULL;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes an even number of hex digits; the byte count, or -1. */
static int parse_hex(const char *text, uint8_t *bytes, unsigned capacity)
{
    unsigned count = 0;
    for (; text[0]; text += 2) {
        int high = hex_digit(text[0]), low = text[1] ? hex_digit(text[1]) : -1;
        if (high < 0 || low < 0 || count == capacity)
            return -1;
        bytes[count++] = (uint8_t)(high << 4 | low);
    }
    return (int)count;
}

struct tx_wait {
    struct virtio_net *nic;
    int slot;
};

static bool tx_done(void *context)
{
    struct tx_wait *wait = context;
    reclaim_tx(wait->nic);
    return !wait->nic->tx_busy[wait->slot];
}

void virtio_net_command_send(char *arguments)
{
    char *cursor = arguments;
    char *bdf_text = probe_next_word(&cursor), *hex_text = probe_next_word(&cursor);
    uint8_t frame[MAX_SEND_BYTES];
    int length = *hex_text ? parse_hex(hex_text, frame, sizeof(frame)) : -1;
    if (length < ETHERNET_HEADER || *probe_next_word(&cursor)) {
        console_printf("PROBE ERROR net-send: expected <bb:dd.f> <frame as %u..%u hex bytes>",
                       ETHERNET_HEADER, MAX_SEND_BYTES);
        return;
    }
    struct virtio_net *nic = find_nic(bdf_text);
    if (!nic)
        return;
    const char *name = nic->function->name;
    const char *problem = usable(nic);
    if (problem) {
        console_printf("PROBE NET ERROR %s %s", name, problem);
        return;
    }
    int slot = transmit(nic, frame, (uint32_t)length);
    if (slot < 0) {
        console_printf("PROBE NET ERROR %s queue full", name);
        return;
    }
    struct tx_wait wait = {nic, slot};
    enum probe_wait_result result = probe_wait(tx_done, &wait, TX_TIMEOUT_US);
    if (result == PROBE_WAIT_TIMEOUT) {
        console_printf("PROBE NET ERROR %s timeout", name);
        return;
    }
    if (result == PROBE_WAIT_LATE)
        console_printf("PROBE WARN %s transmit completed without an interrupt", name);
    console_printf("PROBE NET TX %s len=%d ok", name, length);
}

void virtio_net_command_echo(char *arguments)
{
    char *cursor = arguments;
    char *bdf_text = probe_next_word(&cursor), *mode = probe_next_word(&cursor);
    bool on = strcmp(mode, "on") == 0;
    if ((!on && strcmp(mode, "off") != 0) || *probe_next_word(&cursor)) {
        console_printf("PROBE ERROR net-echo: expected <bb:dd.f> on|off");
        return;
    }
    struct virtio_net *nic = find_nic(bdf_text);
    if (!nic)
        return;
    nic->echo = on;
    console_printf("PROBE NET ECHO %s %s", nic->function->name, on ? "on" : "off");
}

void virtio_net_command_stats(char *arguments)
{
    char *cursor = arguments;
    char *bdf_text = probe_next_word(&cursor);
    if (!*bdf_text || *probe_next_word(&cursor)) {
        console_printf("PROBE ERROR net-stats: expected <bb:dd.f>");
        return;
    }
    struct virtio_net *nic = find_nic(bdf_text);
    if (!nic)
        return;
    /* Frames that arrived since the last interrupt was handled count too. */
    receive(nic);
    reclaim_tx(nic);
    console_printf("PROBE NET STATS %s rx=%lu tx=%lu dropped=%lu", nic->function->name,
                   nic->rx_frames, nic->tx_frames, nic->dropped);
}

/* virtio-net end to end without KVM: the test plays the guest driver on a malloc'd
 * "guest RAM"; the device's netdev is a real tap inside a network namespace this test
 * makes, and the host side of the wire is an AF_PACKET socket bound to that tap.
 * Waits are on the device's interrupts (an eventfd the transport recorder writes),
 * never on time. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "block/block.h"
#include "device_registry.h"
#include "json_util.h"
#include "net/net.h"
#include "pci/pci.h"
#include "qemu_options.h"
#include "virtio/virtio.h"
#include "virtio/virtio_net.h"
#include "vm.h"

#define RAM_SIZE (16u << 20)
#define QUEUE_SIZE 256
#define CONTROL_QUEUE_SIZE 64
#define RING_BASE 0x10000
#define RING_STRIDE 0x4000
#define BUFFER_GPA 0x100000
#define HEADER 12
#define ETHERTYPE_TEST 0x88b5 /* IEEE local experimental: nothing else on the wire uses it */
#define WAIT_MS 10000
#define TAP_NAME "pvtap0"

static const uint8_t guest_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
static const uint8_t host_mac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};

static uint8_t *ram;
static struct net_layer *layer;
static struct virtio_net *net;
static struct virtio_device *device;
static int packet_socket = -1;
static int notify_fd = -1; /* written on every interrupt and event */
static atomic_uint config_notifications;
static uint64_t next_buffer;
/* EVENT_IDX as Linux uses it: kicks only past avail_event, used_event set before waiting. */
static bool use_event_idx;

struct driver_queue {
    uint16_t size;
    uint16_t next_desc;
    uint16_t seen_used;
};
static struct driver_queue queues[8];

static pthread_mutex_t events_lock = PTHREAD_MUTEX_INITIALIZER;
static char events[8][256];
static unsigned event_count;

/* ------------------------------------------------------------ environment --- */

static void *translate(void *opaque, uint64_t gpa, uint64_t length)
{
    (void)opaque;
    if (gpa >= RAM_SIZE || length > RAM_SIZE - gpa)
        return NULL;
    return ram + gpa;
}

static void signal_test(void)
{
    uint64_t one = 1;
    cr_assert_eq(write(notify_fd, &one, sizeof(one)), (ssize_t)sizeof(one));
}

static void notify_queue(struct virtio_device *virtio, struct virtqueue *queue)
{
    signal_test();
}

static void notify_config(struct virtio_device *virtio)
{
    config_notifications++;
    signal_test();
}

static const struct virtio_transport_ops recorder = {notify_queue, notify_config};

static void record_event(void *opaque, const char *name, const char *data)
{
    pthread_mutex_lock(&events_lock);
    if (event_count < 8)
        snprintf(events[event_count++], sizeof(events[0]), "%s %s", name, data ? data : "");
    pthread_mutex_unlock(&events_lock);
    signal_test();
}

/* Blocks until the device signals something (interrupt or event), or fails the test. */
static void wait_signal(const char *what)
{
    struct pollfd pfd = {.fd = notify_fd, .events = POLLIN};
    int ready = poll(&pfd, 1, WAIT_MS);
    cr_assert_eq(ready, 1, "no interrupt within %d ms while waiting for %s", WAIT_MS, what);
    uint64_t value;
    cr_assert_eq(read(notify_fd, &value, sizeof(value)), (ssize_t)sizeof(value));
}

static void write_proc(const char *path, const char *value)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return; /* no IPv6 in this kernel: nothing to silence */
    cr_assert_eq(write(fd, value, strlen(value)), (ssize_t)strlen(value));
    close(fd);
}

/* A private network namespace: the tap and everything on it exist only for this test. */
static void enter_network_namespace(void)
{
    if (access("/dev/net/tun", R_OK | W_OK) != 0)
        cr_skip_test("/dev/net/tun is not usable: %s", strerror(errno));
    if (unshare(CLONE_NEWNET) != 0)
        cr_skip_test("cannot make a network namespace (unshare(CLONE_NEWNET): %s)",
                     strerror(errno));
    /* No IPv6 autoconfiguration traffic (DAD, MLD, router solicitations) on the tap. */
    write_proc("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
    write_proc("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
}

static void bring_up(const char *ifname)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct ifreq request = {0};
    snprintf(request.ifr_name, sizeof(request.ifr_name), "%s", ifname);
    cr_assert_eq(ioctl(fd, SIOCGIFFLAGS, &request), 0, "%s", strerror(errno));
    request.ifr_flags |= IFF_UP;
    cr_assert_eq(ioctl(fd, SIOCSIFFLAGS, &request), 0, "%s", strerror(errno));
    close(fd);
}

static void open_packet_socket(const char *ifname)
{
    packet_socket = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETHERTYPE_TEST));
    cr_assert_geq(packet_socket, 0, "%s", strerror(errno));
    struct sockaddr_ll address = {.sll_family = AF_PACKET,
                                  .sll_protocol = htons(ETHERTYPE_TEST),
                                  .sll_ifindex = (int)if_nametoindex(ifname)};
    cr_assert_neq(address.sll_ifindex, 0);
    cr_assert_eq(bind(packet_socket, (struct sockaddr *)&address, sizeof(address)), 0);
    int one = 1;
    /* Only what the guest sent, not our own frames going the other way. */
    cr_assert_eq(setsockopt(packet_socket, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)),
                 0);
}

struct device_config {
    const char *netdev_extra; /* appended to the netdev options */
    bool mq;
    uint16_t host_mtu;
};

static void create_device(const struct device_config *config)
{
    enter_network_namespace();
    ram = calloc(1, RAM_SIZE);
    cr_assert_not_null(ram);
    notify_fd = eventfd(0, EFD_CLOEXEC);
    cr_assert_geq(notify_fd, 0);
    layer = net_layer_create();
    cr_assert_not_null(layer);
    char text[256];
    snprintf(text, sizeof(text),
             "type=tap,id=hostnet0,ifname=" TAP_NAME ",script=no,downscript=no%s",
             config->netdev_extra ? config->netdev_extra : "");
    struct qemu_options options;
    struct pv_error error = {0};
    cr_assert_eq(qemu_options_parse(&options, text, NULL, 0, &error), 0, "%s", error.message);
    cr_assert_eq(net_netdev_add(layer, &options, NET_SYNTAX_COMMAND_LINE, &error), 0, "%s",
                 error.message);
    qemu_options_free(&options);
    bring_up(TAP_NAME);
    open_packet_socket(TAP_NAME);

    struct virtio_net_options net_options;
    virtio_net_options_init(&net_options);
    net_options.net_layer = layer;
    net_options.netdev = "hostnet0";
    net_options.id = "net0";
    net_options.name = "net0";
    net_options.qdev_path = "/machine/peripheral/net0/virtio-backend";
    net_options.mq = config->mq;
    net_options.host_mtu = config->host_mtu;
    memcpy(net_options.mac, guest_mac, 6);
    net_options.emit_event = record_event;
    net = virtio_net_new(&net_options, &error);
    cr_assert_not_null(net, "%s", error.message);
    device = virtio_net_device(net);
    struct guest_memory memory = {translate, NULL};
    virtio_device_set_memory(device, &memory);
    virtio_device_set_transport(device, &recorder, NULL);
    cr_assert_eq(virtio_device_start_io_thread(device, &error), 0, "%s", error.message);
}

static void teardown(void)
{
    if (device)
        virtio_device_destroy(device);
    device = NULL;
    net = NULL;
    if (layer)
        net_layer_destroy(layer);
    layer = NULL;
    if (packet_socket >= 0)
        close(packet_socket);
    packet_socket = -1;
    if (notify_fd >= 0)
        close(notify_fd);
    notify_fd = -1;
    free(ram);
    ram = NULL;
    event_count = 0;
    config_notifications = 0;
    use_event_idx = false;
}

/* ----------------------------------------------------------------- driver --- */

static uint64_t offered_features(void)
{
    return virtio_device_get_features_word(device, 0) |
           (uint64_t)virtio_device_get_features_word(device, 1) << 32;
}

static bool offered(unsigned bit)
{
    return offered_features() & (1ULL << bit);
}

static uint64_t ring_base(unsigned queue)
{
    return RING_BASE + (uint64_t)queue * RING_STRIDE;
}

/* Driver initialisation (3.1.1), accepting `accept` of the offered features. No
 * EVENT_IDX: every completion interrupts, which the waits rely on. */
static void driver_init(uint64_t accept)
{
    virtio_device_set_status(device, 0);
    virtio_device_set_status(device, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    uint64_t features = offered_features() & accept;
    if (!use_event_idx)
        features &= ~VIRTIO_FEATURE_EVENT_IDX;
    virtio_device_set_driver_features_word(device, 0, (uint32_t)features);
    virtio_device_set_driver_features_word(device, 1, (uint32_t)(features >> 32));
    virtio_device_set_status(device, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                         VIRTIO_STATUS_FEATURES_OK);
    cr_assert(virtio_device_get_status(device) & VIRTIO_STATUS_FEATURES_OK);
    memset(ram, 0, BUFFER_GPA);
    memset(queues, 0, sizeof(queues));
    for (unsigned i = 0; i < device->queue_count; i++) {
        struct virtqueue *queue = &device->queues[i];
        queues[i].size = queue->max_size < QUEUE_SIZE ? queue->max_size : QUEUE_SIZE;
        queue->size = queues[i].size;
        queue->desc_gpa = ring_base(i);
        queue->avail_gpa = ring_base(i) + 0x1000;
        queue->used_gpa = ring_base(i) + 0x2000;
        cr_assert_eq(virtio_device_enable_queue(device, i, NULL), 0);
    }
    virtio_device_set_status(device, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                         VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    next_buffer = BUFFER_GPA;
}

static uint64_t alloc_buffer(size_t length)
{
    if (next_buffer + length > RAM_SIZE)
        next_buffer = BUFFER_GPA;
    uint64_t gpa = next_buffer;
    next_buffer += (length + 63) & ~63ULL;
    return gpa;
}

static struct virtq_desc *desc_table(unsigned queue)
{
    return (struct virtq_desc *)(ram + ring_base(queue));
}

static uint16_t add_desc(unsigned queue, uint64_t addr, uint32_t len, uint16_t flags)
{
    uint16_t index = queues[queue].next_desc++ % queues[queue].size;
    desc_table(queue)[index] = (struct virtq_desc){addr, len, flags, 0};
    return index;
}

static void link_desc(unsigned queue, uint16_t from, uint16_t to)
{
    desc_table(queue)[from].flags |= VRING_DESC_F_NEXT;
    desc_table(queue)[from].next = to;
}

static uint16_t *avail_ring(unsigned queue)
{
    return (uint16_t *)(ram + ring_base(queue) + 0x1000);
}

/* Makes `head` available without notifying. */
static void make_available(unsigned queue, uint16_t head)
{
    uint16_t *avail = avail_ring(queue);
    avail[2 + avail[1] % queues[queue].size] = head;
    __atomic_store_n(&avail[1], (uint16_t)(avail[1] + 1), __ATOMIC_RELEASE);
}

static uint16_t *used_ring(unsigned queue)
{
    return (uint16_t *)(ram + ring_base(queue) + 0x2000);
}

static void publish(unsigned queue, uint16_t head)
{
    uint16_t old = avail_ring(queue)[1];
    make_available(queue, head);
    if (use_event_idx) {
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        uint16_t avail_event =
            __atomic_load_n(&used_ring(queue)[2 + 4 * queues[queue].size], __ATOMIC_ACQUIRE);
        uint16_t new = avail_ring(queue)[1];
        if ((uint16_t)(new - avail_event - 1) >= (uint16_t)(new - old))
            return; /* the device said it will look without a notification */
    }
    virtio_device_kick(device, queue);
}

static uint16_t used_index(unsigned queue)
{
    return __atomic_load_n((uint16_t *)(ram + ring_base(queue) + 0x2000) + 1, __ATOMIC_ACQUIRE);
}

static struct virtq_used_elem used_element(unsigned queue, uint16_t position)
{
    struct virtq_used_elem element;
    memcpy(&element, ram + ring_base(queue) + 0x2000 + 4 + 8 * (position % queues[queue].size),
           sizeof(element));
    return element;
}

/* Waits until `count` more chains of `queue` are used; returns the first new position. */
static uint16_t wait_used(unsigned queue, unsigned count, const char *what)
{
    uint16_t first = queues[queue].seen_used;
    /* used_event: interrupt once the chains waited for are used. */
    uint16_t *used_event = &avail_ring(queue)[2 + queues[queue].size];
    __atomic_store_n(used_event, (uint16_t)(first + count - 1), __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    while ((uint16_t)(used_index(queue) - first) < count)
        wait_signal(what);
    queues[queue].seen_used = (uint16_t)(first + count);
    return first;
}

static uint8_t device_status(void)
{
    return virtio_device_get_status(device);
}

/* Waits for NEEDS_RESET (it comes with a config interrupt). */
static void wait_needs_reset(void)
{
    while (!(device_status() & VIRTIO_STATUS_NEEDS_RESET))
        wait_signal("NEEDS_RESET");
}

/* ------------------------------------------------------------------ frames --- */

struct rx_buffer {
    uint64_t gpa;
    uint32_t length;
    uint16_t head;
};

static struct rx_buffer post_rx_buffer(unsigned queue, uint32_t length, bool kick)
{
    struct rx_buffer buffer = {.gpa = alloc_buffer(length), .length = length};
    memset(ram + buffer.gpa, 0xee, length);
    buffer.head = add_desc(queue, buffer.gpa, length, VRING_DESC_F_WRITE);
    if (kick)
        publish(queue, buffer.head);
    else
        make_available(queue, buffer.head);
    return buffer;
}

static size_t build_frame(uint8_t *frame, const uint8_t destination[6], uint8_t seed,
                          size_t payload)
{
    memcpy(frame, destination, 6);
    memcpy(frame + 6, host_mac, 6);
    frame[12] = ETHERTYPE_TEST >> 8;
    frame[13] = ETHERTYPE_TEST & 0xff;
    for (size_t i = 0; i < payload; i++)
        frame[14 + i] = (uint8_t)(seed + i);
    return 14 + payload;
}

/* An IPv4/UDP frame: the tap spreads such flows over its queues by their ports. */
static size_t build_udp_frame(uint8_t *frame, const uint8_t destination[6], uint16_t port)
{
    static const uint8_t header[] = {0x08, 0x00, 0x45, 0,  0, 60, 0, 1,  0, 0, 64,
                                     17,   0,    0,    10, 0, 0,  1, 10, 0, 0, 2};
    memcpy(frame, destination, 6);
    memcpy(frame + 6, host_mac, 6);
    memcpy(frame + 12, header, sizeof(header));
    uint8_t *udp = frame + 12 + sizeof(header);
    udp[0] = (uint8_t)(port >> 8);
    udp[1] = (uint8_t)port;
    udp[2] = 0;
    udp[3] = 9;
    udp[4] = 0;
    udp[5] = 40;
    udp[6] = udp[7] = 0;
    for (unsigned i = 0; i < 32; i++)
        udp[8 + i] = (uint8_t)(port + i);
    return 12 + sizeof(header) + 8 + 32;
}

static void host_send(const uint8_t *frame, size_t length)
{
    cr_assert_eq(send(packet_socket, frame, length, 0), (ssize_t)length, "%s", strerror(errno));
}

/* The next frame the guest sent, as the host sees it. */
static ssize_t host_receive(uint8_t *frame, size_t size)
{
    struct pollfd pfd = {.fd = packet_socket, .events = POLLIN};
    cr_assert_eq(poll(&pfd, 1, WAIT_MS), 1, "the host received nothing within %d ms", WAIT_MS);
    return recv(packet_socket, frame, size, 0);
}

/* The guest sends one frame (header + frame in two descriptors, as Linux does). */
static void guest_send(unsigned queue, const uint8_t *frame, size_t length)
{
    uint64_t header_gpa = alloc_buffer(HEADER);
    memset(ram + header_gpa, 0, HEADER);
    uint64_t data_gpa = alloc_buffer(length);
    memcpy(ram + data_gpa, frame, length);
    uint16_t head = add_desc(queue, header_gpa, HEADER, 0);
    link_desc(queue, head, add_desc(queue, data_gpa, (uint32_t)length, 0));
    publish(queue, head);
    wait_used(queue, 1, "the transmit completion");
}

static uint16_t num_buffers(uint64_t header_gpa)
{
    uint16_t value;
    memcpy(&value, ram + header_gpa + 10, 2);
    return value;
}

/* A control command; returns the device's ack. */
static uint8_t control(unsigned queue, uint8_t class, uint8_t command, const void *data,
                       size_t length)
{
    uint64_t header_gpa = alloc_buffer(2);
    ram[header_gpa] = class;
    ram[header_gpa + 1] = command;
    uint16_t head = add_desc(queue, header_gpa, 2, 0), last = head;
    if (length) {
        uint64_t data_gpa = alloc_buffer(length);
        memcpy(ram + data_gpa, data, length);
        uint16_t next = add_desc(queue, data_gpa, (uint32_t)length, 0);
        link_desc(queue, last, next);
        last = next;
    }
    uint64_t ack_gpa = alloc_buffer(1);
    ram[ack_gpa] = 0xee;
    link_desc(queue, last, add_desc(queue, ack_gpa, 1, VRING_DESC_F_WRITE));
    publish(queue, head);
    wait_used(queue, 1, "the control command's ack");
    return ram[ack_gpa];
}

static void read_config(uint32_t offset, void *data, unsigned size)
{
    device->ops->read_config(device, offset, data, size);
}

/* -------------------------------------------------------------------- tests --- */

static const struct device_config plain = {NULL, false, 0};
static const struct device_config no_vnet_hdr = {",vnet_hdr=off", false, 0};

TestSuite(virtio_net, .fini = teardown);
TestSuite(virtio_net_models, .fini = teardown);

Test(virtio_net, features_with_vnet_hdr_offer_offloads)
{
    create_device(&plain);
    cr_assert(offered(VIRTIO_NET_F_MAC));
    cr_assert(offered(VIRTIO_NET_F_STATUS));
    cr_assert(offered(VIRTIO_NET_F_MRG_RXBUF));
    cr_assert(offered(VIRTIO_NET_F_CTRL_VQ));
    cr_assert(offered(VIRTIO_NET_F_CTRL_RX));
    cr_assert(offered(VIRTIO_NET_F_CTRL_RX_EXTRA));
    cr_assert(offered(VIRTIO_NET_F_CTRL_MAC_ADDR));
    cr_assert(offered(VIRTIO_NET_F_CSUM));
    cr_assert(offered(VIRTIO_NET_F_GUEST_CSUM));
    cr_assert(offered(VIRTIO_NET_F_HOST_TSO4));
    cr_assert(offered(VIRTIO_NET_F_GUEST_TSO6));
    cr_assert_not(offered(VIRTIO_NET_F_MQ), "one tap queue: no MQ");
    cr_assert_not(offered(VIRTIO_NET_F_CTRL_VLAN));
    cr_assert(offered_features() & VIRTIO_FEATURE_VERSION_1);
    cr_assert_eq(device->queue_count, 3, "rx, tx, control");
    driver_init(~0ULL);
    cr_assert(device_status() & VIRTIO_STATUS_DRIVER_OK);
}

Test(virtio_net, features_without_vnet_hdr_offer_no_offloads)
{
    create_device(&no_vnet_hdr);
    cr_assert(offered(VIRTIO_NET_F_MAC));
    cr_assert(offered(VIRTIO_NET_F_MRG_RXBUF));
    const unsigned offloads[] = {VIRTIO_NET_F_CSUM,       VIRTIO_NET_F_GUEST_CSUM,
                                 VIRTIO_NET_F_HOST_TSO4,  VIRTIO_NET_F_HOST_TSO6,
                                 VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6,
                                 VIRTIO_NET_F_HOST_ECN,   VIRTIO_NET_F_GUEST_ECN,
                                 VIRTIO_NET_F_HOST_UFO,   VIRTIO_NET_F_GUEST_UFO};
    for (size_t i = 0; i < sizeof(offloads) / sizeof(offloads[0]); i++)
        cr_assert_not(offered(offloads[i]), "feature %u offered without vnet_hdr", offloads[i]);
}

/* An offload flag of the tap interface, as ethtool -k shows it. */
static uint32_t tap_offload(uint32_t command)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct ethtool_value value = {.cmd = command};
    struct ifreq request = {0};
    snprintf(request.ifr_name, sizeof(request.ifr_name), "%s", TAP_NAME);
    request.ifr_data = (void *)&value;
    cr_assert_eq(ioctl(fd, SIOCETHTOOL, &request), 0, "%s", strerror(errno));
    close(fd);
    return value.data;
}

/* One frame out, so the device has seen the negotiated features and set the tap up. */
static void send_one_frame(void)
{
    uint8_t frame[200], received[200];
    size_t length = build_frame(frame, host_mac, 4, 60);
    guest_send(1, frame, length);
    cr_assert_eq(host_receive(received, sizeof(received)), (ssize_t)length);
}

Test(virtio_net, tap_offloads_follow_what_the_guest_accepted)
{
    create_device(&plain);
    driver_init(~0ULL);
    send_one_frame();
    cr_assert_eq(tap_offload(ETHTOOL_GTXCSUM), 1, "GUEST_CSUM accepted: TUN_F_CSUM");
    cr_assert_eq(tap_offload(ETHTOOL_GTSO), 1, "GUEST_TSO4 accepted: TUN_F_TSO4");
    uint64_t guest_offloads = 1ULL << VIRTIO_NET_F_GUEST_CSUM | 1ULL << VIRTIO_NET_F_GUEST_TSO4 |
                              1ULL << VIRTIO_NET_F_GUEST_TSO6 | 1ULL << VIRTIO_NET_F_GUEST_ECN |
                              1ULL << VIRTIO_NET_F_GUEST_UFO;
    driver_init(~guest_offloads);
    send_one_frame();
    cr_assert_eq(tap_offload(ETHTOOL_GTSO), 0, "a guest without TSO gets no TSO frames");
    cr_assert_eq(tap_offload(ETHTOOL_GTXCSUM), 0);
}

Test(virtio_net, config_space_has_mac_and_link_status)
{
    create_device(&plain);
    driver_init(~0ULL);
    uint8_t mac[6];
    read_config(0, mac, 6);
    cr_assert_arr_eq(mac, guest_mac, 6);
    uint16_t status = 0;
    read_config(6, &status, 2);
    cr_assert_eq(status, VIRTIO_NET_S_LINK_UP);
    cr_assert_not(offered(VIRTIO_NET_F_MTU), "no host_mtu: no MTU advice");
}

Test(virtio_net, host_mtu_is_advised_in_config_space)
{
    static const struct device_config jumbo = {NULL, false, 9000};
    create_device(&jumbo);
    cr_assert(offered(VIRTIO_NET_F_MTU));
    uint16_t mtu = 0;
    read_config(10, &mtu, 2);
    cr_assert_eq(mtu, 9000);
}

/* A frame from the host to the guest and one back, with or without the tap's header. */
static void round_trip(void)
{
    driver_init(~0ULL);
    struct rx_buffer buffer = post_rx_buffer(0, 2048, true);
    uint8_t frame[1600], received[1600];
    size_t length = build_frame(frame, guest_mac, 7, 200);
    host_send(frame, length);
    uint16_t position = wait_used(0, 1, "the received frame");
    struct virtq_used_elem used = used_element(0, position);
    cr_assert_eq(used.id, buffer.head);
    cr_assert_eq(used.len, HEADER + length);
    cr_assert_eq(num_buffers(buffer.gpa), 1);
    cr_assert_arr_eq(ram + buffer.gpa + HEADER, frame, length);

    uint8_t reply[1600];
    size_t reply_length = build_frame(reply, host_mac, 99, 300);
    memcpy(reply + 6, guest_mac, 6);
    guest_send(1, reply, reply_length);
    ssize_t got = host_receive(received, sizeof(received));
    cr_assert_eq(got, (ssize_t)reply_length);
    cr_assert_arr_eq(received, reply, reply_length);
}

Test(virtio_net, frames_cross_with_vnet_hdr)
{
    create_device(&plain);
    round_trip();
}

Test(virtio_net, frames_cross_with_event_idx)
{
    create_device(&plain);
    use_event_idx = true;
    round_trip();
    /* Buffers added one at a time while frames arrive: the kicks the driver skips (the
     * device had not reached avail_event) must not leave frames waiting. */
    for (unsigned i = 0; i < 8; i++) {
        struct rx_buffer buffer = post_rx_buffer(0, 2048, true);
        uint8_t frame[200];
        size_t length = build_frame(frame, guest_mac, (uint8_t)i, 100);
        host_send(frame, length);
        uint16_t position = wait_used(0, 1, "a frame with EVENT_IDX");
        cr_assert_eq(used_element(0, position).id, buffer.head);
        cr_assert_arr_eq(ram + buffer.gpa + HEADER, frame, length);
    }
}

Test(virtio_net, frames_cross_without_vnet_hdr)
{
    create_device(&no_vnet_hdr);
    round_trip();
}

Test(virtio_net, mergeable_buffers_hold_a_frame_spanning_several)
{
    create_device(&plain);
    driver_init(~0ULL);
    struct rx_buffer buffers[8];
    for (unsigned i = 0; i < 8; i++)
        buffers[i] = post_rx_buffer(0, 256, i == 7);
    uint8_t frame[1200];
    size_t length = build_frame(frame, guest_mac, 3, 1000);
    host_send(frame, length);
    unsigned expected = (unsigned)((HEADER + length + 255) / 256);
    uint16_t position = wait_used(0, expected, "a frame over several buffers");
    cr_assert_eq(num_buffers(buffers[0].gpa), expected);
    uint8_t assembled[1400];
    size_t offset = 0;
    for (unsigned i = 0; i < expected; i++) {
        struct virtq_used_elem used = used_element(0, (uint16_t)(position + i));
        cr_assert_eq(used.id, buffers[i].head);
        memcpy(assembled + offset, ram + buffers[i].gpa, used.len);
        offset += used.len;
    }
    cr_assert_eq(offset, HEADER + length);
    cr_assert_arr_eq(assembled + HEADER, frame, length);
}

Test(virtio_net, a_frame_waits_for_enough_mergeable_buffers)
{
    create_device(&plain);
    driver_init(~0ULL);
    struct rx_buffer buffers[4];
    buffers[0] = post_rx_buffer(0, 256, true);
    uint8_t frame[1200];
    size_t length = build_frame(frame, guest_mac, 21, 900);
    host_send(frame, length);
    /* One buffer cannot hold it: nothing is used until there are enough. */
    cr_assert_eq(used_index(0), 0);
    for (unsigned i = 1; i < 4; i++)
        buffers[i] = post_rx_buffer(0, 256, true);
    uint16_t position = wait_used(0, 4, "the frame once the buffers suffice");
    cr_assert_eq(num_buffers(buffers[0].gpa), 4);
    size_t offset = 0;
    uint8_t assembled[1200];
    for (unsigned i = 0; i < 4; i++) {
        struct virtq_used_elem used = used_element(0, (uint16_t)(position + i));
        cr_assert_eq(used.id, buffers[i].head);
        memcpy(assembled + offset, ram + buffers[i].gpa, used.len);
        offset += used.len;
    }
    cr_assert_eq(offset, HEADER + length);
    cr_assert_arr_eq(assembled + HEADER, frame, length);
}

Test(virtio_net, frames_wait_in_the_tap_until_the_guest_adds_buffers)
{
    create_device(&plain);
    driver_init(~0ULL);
    uint8_t frame[200];
    size_t length = build_frame(frame, guest_mac, 11, 100);
    host_send(frame, length);
    /* No receive buffer: nothing can be used, and the frame is not lost. */
    cr_assert_eq(used_index(0), 0);
    struct rx_buffer buffer = post_rx_buffer(0, 2048, true);
    uint16_t position = wait_used(0, 1, "the frame queued before the buffers");
    cr_assert_eq(used_element(0, position).len, HEADER + length);
    cr_assert_arr_eq(ram + buffer.gpa + HEADER, frame, length);
}

static bool has_event(const char *text)
{
    pthread_mutex_lock(&events_lock);
    bool found = false;
    for (unsigned i = 0; i < event_count; i++)
        found = found || strcmp(events[i], text) == 0;
    pthread_mutex_unlock(&events_lock);
    return found;
}

static char *query_rx_filter(void)
{
    struct json_writer writer;
    json_writer_init(&writer, false);
    struct pv_error error = {0};
    cr_assert_eq(net_layer_query_rx_filter(layer, "net0", &writer, &error), 0, "%s", error.message);
    char *text = json_writer_steal(&writer);
    json_writer_free(&writer);
    return text;
}

#define RX_FILTER_EVENT                                                                            \
    "NIC_RX_FILTER_CHANGED "                                                                       \
    "{\"name\": \"net0\", \"path\": \"/machine/peripheral/net0/virtio-backend\"}"

Test(virtio_net, control_queue_sets_rx_mode_and_mac_table)
{
    create_device(&plain);
    driver_init(~0ULL);
    uint8_t off = 0, on = 1;
    cr_assert_eq(control(2, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &off, 1),
                 VIRTIO_NET_OK);
    cr_assert_eq(event_count, 1);
    cr_assert(has_event(RX_FILTER_EVENT), "%s", events[0]);
    /* Not re-armed yet: no second event. */
    cr_assert_eq(control(2, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLMULTI, &on, 1),
                 VIRTIO_NET_OK);
    cr_assert_eq(event_count, 1);
    cr_assert_eq(control(2, VIRTIO_NET_CTRL_RX, 42, &on, 1), VIRTIO_NET_ERR);

    char *json = query_rx_filter();
    cr_assert_not_null(strstr(json, "\"promiscuous\": false"), "%s", json);
    cr_assert_not_null(strstr(json, "\"multicast\": \"all\""), "%s", json);
    cr_assert_not_null(strstr(json, "\"main-mac\": \"52:54:00:12:34:56\""), "%s", json);
    free(json);

    /* A unicast table with one extra address, no multicast entries. */
    uint8_t table[4 + 6 + 4] = {1, 0, 0, 0, 0x02, 0, 0, 0, 0x77, 0x01, 0, 0, 0, 0};
    cr_assert_eq(
        control(2, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, table, sizeof(table)),
        VIRTIO_NET_OK);
    cr_assert_eq(event_count, 2, "query-rx-filter re-arms the event");
    json = query_rx_filter();
    cr_assert_not_null(strstr(json, "\"unicast-table\": [\"02:00:00:00:77:01\"]"), "%s", json);
    free(json);
    uint8_t short_table[4] = {1, 0, 0, 0};
    cr_assert_eq(control(2, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, short_table,
                         sizeof(short_table)),
                 VIRTIO_NET_ERR);

    /* Filtering: a frame for an unknown unicast MAC is dropped, the table's passes. The
     * tap keeps order, so the first frame the guest sees tells which were dropped. */
    struct rx_buffer buffer = post_rx_buffer(0, 2048, true);
    uint8_t stranger[6] = {0x02, 0, 0, 0, 0, 0x99}, frame[200];
    size_t length = build_frame(frame, stranger, 1, 64);
    host_send(frame, length);
    length = build_frame(frame, table + 4, 2, 64);
    host_send(frame, length);
    wait_used(0, 1, "the frame for the MAC table's address");
    cr_assert_arr_eq(ram + buffer.gpa + HEADER, frame, length);

    /* MAC_ADDR_SET changes the config space MAC. */
    uint8_t new_mac[6] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef}, mac[6];
    cr_assert_eq(control(2, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, new_mac, 6),
                 VIRTIO_NET_OK);
    read_config(0, mac, 6);
    cr_assert_arr_eq(mac, new_mac, 6);
    /* A reset restores the mac property and promiscuous mode. */
    driver_init(~0ULL);
    read_config(0, mac, 6);
    cr_assert_arr_eq(mac, guest_mac, 6);
    json = query_rx_filter();
    cr_assert_not_null(strstr(json, "\"promiscuous\": true"), "%s", json);
    free(json);
}

/* Sends `dropped` (which the filter must refuse) then `passed`, and checks that the guest's
 * next frame is `passed`: the tap keeps their order, so `dropped` did not get through. */
static void expect_filtered(const uint8_t dropped_mac[6], const uint8_t passed_mac[6], uint8_t seed)
{
    struct rx_buffer buffer = post_rx_buffer(0, 2048, true);
    uint8_t frame[200];
    host_send(frame, build_frame(frame, dropped_mac, seed, 50));
    size_t length = build_frame(frame, passed_mac, (uint8_t)(seed + 1), 50);
    host_send(frame, length);
    wait_used(0, 1, "the frame the filter passes");
    cr_assert_arr_eq(ram + buffer.gpa + HEADER, frame, length, "the first frame got through");
}

Test(virtio_net, rx_modes_and_table_overflow_filter_frames)
{
    create_device(&plain);
    driver_init(~0ULL);
    static const uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t multicast[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};
    static const uint8_t stranger[6] = {0x02, 0, 0, 0, 0, 0x42};
    uint8_t off = 0, on = 1;
    cr_assert_eq(control(2, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &off, 1),
                 VIRTIO_NET_OK);
    expect_filtered(stranger, guest_mac, 10);
    expect_filtered(multicast, broadcast, 20); /* no table entry: multicast dropped */
    cr_assert_eq(control(2, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_NOBCAST, &on, 1), VIRTIO_NET_OK);
    expect_filtered(broadcast, guest_mac, 30);
    cr_assert_eq(control(2, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLMULTI, &on, 1),
                 VIRTIO_NET_OK);
    cr_assert_eq(control(2, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_NOMULTI, &on, 1), VIRTIO_NET_OK);
    expect_filtered(multicast, guest_mac, 40); /* nomulti wins over allmulti, as in QEMU */
    cr_assert_eq(control(2, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_NOUNI, &on, 1), VIRTIO_NET_OK);
    cr_assert_eq(control(2, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_NOMULTI, &off, 1),
                 VIRTIO_NET_OK);
    expect_filtered(guest_mac, multicast, 50); /* nouni: not even our own MAC */
    cr_assert_eq(control(2, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_NOUNI, &off, 1), VIRTIO_NET_OK);

    /* 65 unicast entries: more than the table holds, so every unicast frame passes. */
    uint8_t table[4 + 65 * 6 + 4] = {65};
    for (unsigned i = 0; i < 65; i++) {
        table[4 + 6 * i] = 0x02;
        table[4 + 6 * i + 5] = (uint8_t)(0x80 + i);
    }
    cr_assert_eq(
        control(2, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, table, sizeof(table)),
        VIRTIO_NET_OK);
    char *json = query_rx_filter();
    cr_assert_not_null(strstr(json, "\"unicast-overflow\": true"), "%s", json);
    cr_assert_not_null(strstr(json, "\"unicast-table\": []"), "%s", json);
    cr_assert_not_null(strstr(json, "\"broadcast-allowed\": true"), "QEMU reports nobcast: %s",
                       json);
    free(json);
    struct rx_buffer buffer = post_rx_buffer(0, 2048, true);
    uint8_t frame[200];
    size_t length = build_frame(frame, stranger, 60, 50);
    host_send(frame, length);
    wait_used(0, 1, "a unicast frame with the table overflowed");
    cr_assert_arr_eq(ram + buffer.gpa + HEADER, frame, length);
}

Test(virtio_net, link_down_interrupts_and_drops_transmitted_frames)
{
    create_device(&plain);
    driver_init(~0ULL);
    struct pv_error error = {0};
    unsigned before = config_notifications;
    cr_assert_eq(net_layer_set_link(layer, "net0", false, &error), 0, "%s", error.message);
    cr_assert_eq(config_notifications, before + 1, "a config interrupt for the link change");
    uint16_t status = 0xffff;
    read_config(6, &status, 2);
    cr_assert_eq(status, 0);
    uint8_t frame[200], received[200];
    size_t length = build_frame(frame, host_mac, 1, 50);
    guest_send(1, frame, length); /* completed, but nothing reaches the wire */
    cr_assert_eq(net_layer_set_link(layer, "hostnet0", true, &error), 0, "%s", error.message);
    cr_assert_eq(config_notifications, before + 2);
    read_config(6, &status, 2);
    cr_assert_eq(status, VIRTIO_NET_S_LINK_UP);
    length = build_frame(frame, host_mac, 2, 50);
    guest_send(1, frame, length);
    cr_assert_eq(host_receive(received, sizeof(received)), (ssize_t)length);
    cr_assert_arr_eq(received, frame, length, "the frame sent while down was dropped");
}

Test(virtio_net, multiqueue_with_two_tap_queues)
{
    static const struct device_config two = {",queues=2", true, 0};
    create_device(&two);
    cr_assert(offered(VIRTIO_NET_F_MQ));
    cr_assert_eq(device->queue_count, 5, "two pairs and the control queue");
    uint16_t pairs = 0;
    read_config(8, &pairs, 2);
    cr_assert_eq(pairs, 2);
    driver_init(~0ULL);
    uint16_t two_pairs = 2, three_pairs = 3;
    cr_assert_eq(control(4, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &three_pairs, 2),
                 VIRTIO_NET_ERR);
    cr_assert_eq(control(4, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &two_pairs, 2),
                 VIRTIO_NET_OK);
    /* Transmit on the second pair. */
    uint8_t frame[200], received[200];
    size_t length = build_frame(frame, host_mac, 5, 80);
    guest_send(3, frame, length);
    cr_assert_eq(host_receive(received, sizeof(received)), (ssize_t)length);
    cr_assert_arr_eq(received, frame, length);
    /* Receive: the kernel picks the tap queue; either receive queue may get it. */
    struct rx_buffer first = post_rx_buffer(0, 2048, true);
    struct rx_buffer second = post_rx_buffer(2, 2048, true);
    length = build_frame(frame, guest_mac, 6, 80);
    host_send(frame, length);
    while (used_index(0) == 0 && used_index(2) == 0)
        wait_signal("the frame on either receive queue");
    struct rx_buffer *got = used_index(0) ? &first : &second;
    cr_assert_arr_eq(ram + got->gpa + HEADER, frame, length);
}

Test(virtio_net, the_netdev_is_free_once_the_nic_is_gone)
{
    create_device(&plain);
    struct pv_error error = {0};
    cr_assert_lt(net_netdev_del(layer, "hostnet0", &error), 0, "netdev_del while the NIC uses it");
    virtio_device_destroy(device);
    device = NULL;
    net = NULL;
    error = (struct pv_error){0};
    cr_assert_eq(net_netdev_del(layer, "hostnet0", &error), 0, "%s", error.message);
}

Test(virtio_net, two_tap_queues_without_mq_feed_the_one_receive_queue)
{
    static const struct device_config two = {",queues=2", false, 0};
    create_device(&two);
    cr_assert_not(offered(VIRTIO_NET_F_MQ));
    cr_assert_eq(device->queue_count, 3);
    driver_init(~0ULL);
    /* Frames of several flows, which the kernel spreads over both tap queues. */
    for (unsigned i = 0; i < 16; i++) {
        struct rx_buffer buffer = post_rx_buffer(0, 2048, true);
        uint8_t frame[200];
        size_t length = build_udp_frame(frame, guest_mac, (uint16_t)(1000 + 7 * i));
        host_send(frame, length);
        wait_used(0, 1, "a frame from either tap queue");
        cr_assert_arr_eq(ram + buffer.gpa + HEADER, frame, length);
    }
}

Test(virtio_net, short_transmit_header_needs_reset)
{
    create_device(&plain);
    driver_init(~0ULL);
    uint64_t gpa = alloc_buffer(4);
    publish(1, add_desc(1, gpa, 4, 0));
    wait_needs_reset();
    /* A reset brings the device back. */
    driver_init(~0ULL);
    cr_assert_not(device_status() & VIRTIO_STATUS_NEEDS_RESET);
    uint8_t frame[200], received[200];
    size_t length = build_frame(frame, host_mac, 9, 40);
    guest_send(1, frame, length);
    cr_assert_eq(host_receive(received, sizeof(received)), (ssize_t)length);
}

Test(virtio_net, read_only_receive_buffer_needs_reset)
{
    create_device(&plain);
    driver_init(~0ULL);
    uint64_t gpa = alloc_buffer(2048);
    publish(0, add_desc(0, gpa, 2048, 0)); /* not device-writable */
    uint8_t frame[200];
    host_send(frame, build_frame(frame, guest_mac, 1, 40));
    wait_needs_reset();
}

Test(virtio_net, buffer_outside_ram_needs_reset)
{
    create_device(&plain);
    driver_init(~0ULL);
    publish(0, add_desc(0, RAM_SIZE + 0x1000, 2048, VRING_DESC_F_WRITE));
    uint8_t frame[200];
    host_send(frame, build_frame(frame, guest_mac, 1, 40));
    wait_needs_reset();
}

Test(virtio_net, control_command_without_ack_needs_reset)
{
    create_device(&plain);
    driver_init(~0ULL);
    uint64_t gpa = alloc_buffer(2);
    publish(2, add_desc(2, gpa, 2, 0));
    wait_needs_reset();
}

/* ---------------------------------------------------- device_add / -device --- */

struct fake_machine {
    struct vm vm;
};

static void mark_guest_reset(struct vm *vm)
{
    (void)vm;
}

static enum vm_run_state run_state(struct vm *vm)
{
    return VM_RUN_STATE_RUNNING;
}

static int no_msi(struct vm *vm, uint64_t address, uint32_t data)
{
    return 0;
}

static int no_irq(struct vm *vm, unsigned gsi, int level)
{
    return 0;
}

static void quiesce_nothing(struct vm *vm)
{
    (void)vm;
}

static const struct pci_platform_ops fake_platform = {
    .signal_msi = no_msi,
    .set_irq_line = no_irq,
    .request_guest_reset = mark_guest_reset,
    .get_run_state = run_state,
    .quiesce = quiesce_nothing,
    .unquiesce = quiesce_nothing,
};

static struct vm *fake_machine_create(struct fake_machine *machine)
{
    memset(machine, 0, sizeof(*machine));
    struct vm *vm = &machine->vm;
    vm->vm_fd = vm->kvm_fd = -1;
    vm->main_thread = pthread_self();
    cr_assert_eq(io_bus_init(&vm->io_bus, NULL), 0);
    struct pv_error error = {0};
    vm->pci_bus = pci_bus_create_with_platform(vm, &fake_platform, NULL, &error);
    cr_assert_not_null(vm->pci_bus, "%s", error.message);
    vm->block_layer = block_layer_create();
    vm->net_layer = net_layer_create();
    cr_assert(vm->block_layer && vm->net_layer);
    vm->device_registry = device_registry_create(vm, &error);
    cr_assert_not_null(vm->device_registry, "%s", error.message);
    return vm;
}

static void fake_machine_destroy(struct fake_machine *machine)
{
    struct vm *vm = &machine->vm;
    device_registry_destroy(vm->device_registry);
    pci_bus_destroy(vm->pci_bus); /* destroys the NICs, which release their netdevs */
    net_layer_destroy(vm->net_layer);
    block_layer_destroy(vm->block_layer);
    io_bus_destroy(&vm->io_bus);
}

static int try_device_add(struct vm *vm, const char *text, struct pv_error *error)
{
    struct qemu_options options;
    cr_assert_eq(qemu_options_parse(&options, text, "driver", 0, error), 0);
    int status = device_registry_add(vm->device_registry, &options, error);
    qemu_options_free(&options);
    return status;
}

Test(virtio_net_models, other_nic_models_are_refused_by_name)
{
    struct fake_machine machine;
    struct vm *vm = fake_machine_create(&machine);
    struct pv_error error = {0};

    const char *models[] = {"e1000", "e1000e",  "rtl8139", "ne2k_pci",
                            "pcnet", "vmxnet3", "i82559er"};
    for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
        char text[64], expected[128];
        snprintf(text, sizeof(text), "%s,id=n%zu", models[i], i);
        snprintf(expected, sizeof(expected),
                 "'%s' is not supported by plugvirt-vmm: use virtio-net-pci", models[i]);
        error = (struct pv_error){0};
        cr_assert_lt(try_device_add(vm, text, &error), 0);
        cr_assert_str_eq(error.message, expected);
    }
    error = (struct pv_error){0};
    cr_assert_lt(try_device_add(vm, "nosuchthing", &error), 0);
    cr_assert_str_eq(error.message, "'nosuchthing' is not a valid device model name");
    /* virtio-net-pci's own errors, in QEMU 7.2's words. */
    error = (struct pv_error){0};
    cr_assert_lt(try_device_add(vm, "virtio-net-pci,netdev=nope", &error), 0);
    cr_assert_str_eq(error.message, "Property 'virtio-net-device.netdev' can't find value 'nope'");
    error = (struct pv_error){0};
    cr_assert_lt(try_device_add(vm, "virtio-net-pci,bogus=1", &error), 0);
    cr_assert_str_eq(error.message, "Property 'virtio-net-pci.bogus' not found");
    error = (struct pv_error){0};
    cr_assert_lt(try_device_add(vm, "virtio-net-pci,mac=zz", &error), 0);
    cr_assert_str_eq(error.message, "Property 'virtio-net-device.mac' doesn't take value 'zz'");
    error = (struct pv_error){0};
    cr_assert_lt(try_device_add(vm, "virtio-net-pci,rx_queue_size=100", &error), 0);
    cr_assert_str_eq(error.message,
                     "Invalid rx_queue_size (= 100), must be a power of 2 between 256 and 1024.");
    error = (struct pv_error){0};
    cr_assert_lt(try_device_add(vm, "virtio-net-pci,host_mtu=70000", &error), 0);
    cr_assert_str_eq(error.message, "Parameter 'host_mtu' expects uint16_t");
    error = (struct pv_error){0};
    cr_assert_lt(try_device_add(vm, "virtio-net-pci,tx=timer", &error), 0);
    cr_assert_not_null(strstr(error.message, "tx=timer is not supported"), "%s", error.message);
    error = (struct pv_error){0};
    cr_assert_lt(try_device_add(vm, "virtio-net-pci,ctrl_vlan=on", &error), 0);
    cr_assert_not_null(strstr(error.message, "ctrl_vlan=on is not supported"), "%s", error.message);
    error = (struct pv_error){0};
    cr_assert_lt(try_device_add(vm, "virtio-net-pci,romfile=efi-virtio.rom", &error), 0);
    cr_assert_not_null(strstr(error.message, "romfile='efi-virtio.rom' is not supported"), "%s",
                       error.message);

    /* A NIC without netdev= is accepted, as by QEMU, with the first default MAC; the
     * next NIC gets the next one. */
    error = (struct pv_error){0};
    cr_assert_eq(try_device_add(vm, "virtio-net-pci,id=nic0", &error), 0, "%s", error.message);
    error = (struct pv_error){0};
    cr_assert_eq(try_device_add(vm, "virtio-net-pci", &error), 0, "%s", error.message);
    struct pci_device *nic = pci_bus_find_by_id(vm->pci_bus, "nic0");
    cr_assert_not_null(nic);
    uint16_t ids[2];
    memcpy(ids, nic->config, 4);
    cr_assert_eq(ids[0], 0x1af4);
    cr_assert_eq(ids[1], 0x1041);
    cr_assert_eq(nic->config[0x0b], 0x02, "network controller class");
    cr_assert_eq(nic->config[0x0a], 0x00, "Ethernet subclass");
    struct json_writer writer;
    json_writer_init(&writer, false);
    cr_assert_eq(net_layer_query_rx_filter(vm->net_layer, NULL, &writer, &error), 0);
    const char *json = json_writer_text(&writer);
    cr_assert_not_null(strstr(json, "\"name\": \"nic0\", \"main-mac\": \"52:54:00:12:34:56\""),
                       "%s", json);
    cr_assert_not_null(
        strstr(json, "\"name\": \"virtio-net-pci.0\", \"main-mac\": \"52:54:00:12:34:57\""), "%s",
        json);
    json_writer_free(&writer);

    fake_machine_destroy(&machine);
}

static void record_vm_event(void *opaque, const char *name, const char *data)
{
    record_event(opaque, name, data);
}

Test(virtio_net_models, unplug_reports_both_deletions_and_frees_the_netdev)
{
    enter_network_namespace();
    notify_fd = eventfd(0, EFD_CLOEXEC);
    cr_assert_geq(notify_fd, 0);
    struct fake_machine machine;
    struct vm *vm = fake_machine_create(&machine);
    vm_add_event_listener(vm, record_vm_event, NULL);
    struct pv_error error = {0};
    struct qemu_options options;
    cr_assert_eq(qemu_options_parse(
                     &options, "type=tap,id=hostnet0,ifname=" TAP_NAME ",script=no,downscript=no",
                     NULL, 0, &error),
                 0);
    cr_assert_eq(net_netdev_add(vm->net_layer, &options, NET_SYNTAX_QMP, &error), 0, "%s",
                 error.message);
    qemu_options_free(&options);
    cr_assert_eq(try_device_add(vm, "virtio-net-pci,netdev=hostnet0,id=nic1,mq=on", &error), 0,
                 "%s", error.message);
    error = (struct pv_error){0};
    cr_assert_lt(try_device_add(vm, "virtio-net-pci,netdev=hostnet0,id=nic2", &error), 0);
    cr_assert_str_eq(
        error.message,
        "Property 'virtio-net-device.netdev' can't take value 'hostnet0', it's in use");
    struct pci_device *nic = pci_bus_find_by_id(vm->pci_bus, "nic1");
    cr_assert_not_null(nic);
    error = (struct pv_error){0};
    cr_assert_lt(net_netdev_del(vm->net_layer, "hostnet0", &error), 0);

    pci_bus_remove_slot(vm->pci_bus, (unsigned)nic->slot); /* what the guest's eject does */
    cr_assert_eq(event_count, 2);
    cr_assert_str_eq(events[0],
                     "DEVICE_DELETED {\"path\": \"/machine/peripheral/nic1/virtio-backend\"}");
    cr_assert_str_eq(
        events[1], "DEVICE_DELETED {\"device\": \"nic1\", \"path\": \"/machine/peripheral/nic1\"}");
    error = (struct pv_error){0};
    cr_assert_eq(net_netdev_del(vm->net_layer, "hostnet0", &error), 0, "%s", error.message);
    fake_machine_destroy(&machine);
}

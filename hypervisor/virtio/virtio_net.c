/* virtio-net; see virtio_net.h. */
#include "virtio/virtio_net.h"

#include <errno.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_util.h"
#include "net/net.h"
#include "pv_log.h"
#include "virtio/virtio_net_filter.h"

#define F(bit) (1ULL << VIRTIO_NET_F_##bit)
/* The modern header (struct virtio_net_hdr_v1): num_buffers is always there. */
#define NET_HEADER_SIZE 12
#define NET_NUM_BUFFERS_OFFSET 10
/* A header and the largest frame a tap hands over (64 KiB GSO frame plus Ethernet/VLAN). */
#define RX_FRAME_MAX (NET_HEADER_SIZE + 65536 + 64)
/* Frames one tap readiness handles before the thread looks at its other descriptors. */
#define RX_BUDGET 256
#define QUEUE_SIZE_MIN 256
#define QUEUE_SIZE_DEFAULT 256
/* QEMU caps tx_queue_size at 256 for every peer but vhost-user (virtio_net_max_tx_queue_size). */
#define TX_QUEUE_SIZE_TAP_MAX 256
#define CONTROL_DATA_MAX 16384 /* a MAC table of ~2700 entries; longer ones are refused */

struct net_config_space {
    uint8_t mac[6];
    uint16_t status;
    uint16_t max_virtqueue_pairs;
    uint16_t mtu;
} __attribute__((packed));

/* One queue of the tap and the frame read from it that waits for guest buffers. */
struct tap_queue {
    int handle; /* in the I/O thread's wait set */
    uint8_t *frame;
    size_t length;
    bool held; /* `frame` was read and passed the filter, but did not fit yet */
};

struct virtio_net {
    struct virtio_device virtio; /* first: the ops get this pointer */
    struct net_backend *backend;
    struct virtio_net_filter filter;
    uint8_t config_mac[6]; /* the mac property: what a reset restores */
    char name[64];
    char id[64]; /* empty: no id (the event then has no "name") */
    char qdev_path[DEVICE_QOM_PATH_MAX + 32];
    bool vnet_hdr;
    unsigned tap_queues;
    unsigned max_pairs;
    uint16_t mtu; /* host_mtu; 0: VIRTIO_NET_F_MTU not offered */
    bool has_control_queue;
    virtio_net_event_fn emit_event;
    void *event_opaque;
    atomic_bool link_up;
    atomic_bool rx_filter_notify; /* NIC_RX_FILTER_CHANGED armed (query-rx-filter re-arms) */
    bool drop_logged;

    /* Under processing_lock (I/O thread, reset). */
    unsigned active_pairs;
    bool backend_configured; /* offloads applied for the negotiated features */
    struct tap_queue taps[NET_MAX_QUEUES];
    struct iovec tx_iov[VIRTQUEUE_MAX_SEGMENTS];
    uint8_t control_data[CONTROL_DATA_MAX];
};

static struct virtio_net *net_of(struct virtio_device *device)
{
    return (struct virtio_net *)device;
}

struct virtio_device *virtio_net_device(struct virtio_net *net)
{
    return &net->virtio;
}

void virtio_net_get_mac(struct virtio_net *net, uint8_t mac[6])
{
    virtio_net_filter_get_mac(&net->filter, mac);
}

const uint8_t *virtio_net_config_mac(struct virtio_net *net)
{
    return net->config_mac;
}

const char *virtio_net_name(struct virtio_net *net)
{
    return net->name;
}

void virtio_net_options_init(struct virtio_net_options *options)
{
    memset(options, 0, sizeof(*options));
    net_default_mac(0, options->mac);
    options->rx_queue_size = QUEUE_SIZE_DEFAULT;
    options->tx_queue_size = QUEUE_SIZE_DEFAULT;
    bool *on[] = {&options->status,       &options->mrg_rxbuf,     &options->ctrl_vq,
                  &options->ctrl_rx,      &options->ctrl_rx_extra, &options->ctrl_mac_addr,
                  &options->csum,         &options->guest_csum,    &options->gso,
                  &options->host_tso4,    &options->host_tso6,     &options->host_ecn,
                  &options->host_ufo,     &options->guest_tso4,    &options->guest_tso6,
                  &options->guest_ecn,    &options->guest_ufo,     &options->event_idx,
                  &options->indirect_desc};
    for (size_t i = 0; i < sizeof(on) / sizeof(on[0]); i++)
        *on[i] = true;
}

static bool device_live(struct virtio_net *net)
{
    uint8_t status = virtio_device_get_status(&net->virtio);
    return (status & VIRTIO_STATUS_DRIVER_OK) &&
           !(status & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED));
}

/* ----------------------------------------------------------------- config --- */

static void net_read_config(struct virtio_device *device, uint32_t offset, void *data,
                            unsigned size)
{
    struct virtio_net *net = net_of(device);
    struct net_config_space config = {0};
    virtio_net_filter_get_mac(&net->filter, config.mac);
    config.status = atomic_load(&net->link_up) ? VIRTIO_NET_S_LINK_UP : 0;
    config.max_virtqueue_pairs = (uint16_t)net->max_pairs;
    config.mtu = net->mtu;
    memset(data, 0, size);
    if (offset < sizeof(config)) {
        unsigned available = (unsigned)(sizeof(config) - offset);
        memcpy(data, (uint8_t *)&config + offset, size < available ? size : available);
    }
}

static void net_write_config(struct virtio_device *device, uint32_t offset, const void *data,
                             unsigned size)
{
    /* Read-only with VERSION_1: the MAC changes through VIRTIO_NET_CTRL_MAC_ADDR_SET. */
}

/* ---------------------------------------------------------------- backend --- */

static unsigned tun_offloads(struct virtio_net *net)
{
    struct virtio_device *device = &net->virtio;
    unsigned flags = 0;
    if (virtio_device_has_feature(device, F(GUEST_CSUM))) {
        flags |= TUN_F_CSUM;
        if (virtio_device_has_feature(device, F(GUEST_TSO4)))
            flags |= TUN_F_TSO4;
        if (virtio_device_has_feature(device, F(GUEST_TSO6)))
            flags |= TUN_F_TSO6;
        if (virtio_device_has_feature(device, F(GUEST_ECN)))
            flags |= TUN_F_TSO_ECN;
        if (virtio_device_has_feature(device, F(GUEST_UFO)))
            flags |= TUN_F_UFO;
    }
    return flags;
}

/* The tap produces only what the guest accepted (TUNSETOFFLOAD); done on the first
 * queue activity after DRIVER_OK, when the features are final. */
static void configure_backend(struct virtio_net *net)
{
    if (net->backend_configured)
        return;
    net->backend_configured = true;
    if (!net->vnet_hdr)
        return;
    struct pv_error error = {0};
    if (net_backend_set_offload(net->backend, tun_offloads(net), &error) < 0)
        pv_log_warning("%s: %s", net->name, error.message);
}

/* --------------------------------------------------------------------- RX --- */

static struct virtqueue *rx_queue_of(struct virtio_net *net, unsigned tap)
{
    /* Tap queues beyond the active pairs still receive (the kernel spreads flows over
     * them): their frames go to an active receive queue rather than waiting forever. */
    return &net->virtio.queues[2 * (tap % net->active_pairs)];
}

static void set_polling(struct virtio_net *net, unsigned tap, bool polling)
{
    if (net->taps[tap].handle >= 0)
        virtio_device_set_io_fd_polling(&net->virtio, net->taps[tap].handle, polling);
}

/* Reads one frame into tap->frame as the guest will see it (header, then the frame). */
static ssize_t read_frame(struct virtio_net *net, unsigned index)
{
    struct tap_queue *tap = &net->taps[index];
    struct iovec iov;
    if (net->vnet_hdr) {
        iov = (struct iovec){tap->frame, RX_FRAME_MAX};
    } else {
        memset(tap->frame, 0, NET_HEADER_SIZE);
        iov = (struct iovec){tap->frame + NET_HEADER_SIZE, RX_FRAME_MAX - NET_HEADER_SIZE};
    }
    ssize_t length = net_backend_receive(net->backend, index, &iov, 1);
    if (length < 0)
        return length;
    if (!net->vnet_hdr)
        length += NET_HEADER_SIZE;
    if (length < NET_HEADER_SIZE)
        return -EIO;
    if (!virtio_device_has_feature(&net->virtio, F(GUEST_CSUM)))
        tap->frame[0] = 0; /* DATA_VALID/NEEDS_CSUM mean nothing to this guest */
    tap->length = (size_t)length;
    return length;
}

/* Copies a frame into the receive queue's buffers: one chain, or with MRG_RXBUF as
 * many as it takes, published together with num_buffers set. Returns 1 when the
 * frame was delivered (or dropped: too big for a single buffer), 0 when the queue
 * has too few buffers (nothing consumed), -EPROTO when the driver broke the ring. */
static int place_frame(struct virtio_net *net, struct virtqueue *queue, const uint8_t *frame,
                       size_t length)
{
    struct virtio_device *device = &net->virtio;
    struct virtqueue_request *request = device->request;
    bool mergeable = virtio_device_has_feature(device, F(MRG_RXBUF));
    struct iovec header[NET_HEADER_SIZE];
    unsigned header_count = 0, used = 0;
    size_t offset = 0;
    while (offset < length && (used == 0 || mergeable)) {
        int popped = virtio_device_pop(device, queue, request);
        if (popped < 0)
            return -EPROTO;
        if (popped == 0) {
            virtqueue_unpop(queue, used);
            return 0;
        }
        used++;
        if (request->out_count > 0 || request->in_bytes < (used == 1 ? NET_HEADER_SIZE : 1)) {
            virtio_device_set_broken(device, "virtio-net: receive buffer read-only or shorter "
                                             "than the virtio-net header");
            return -EPROTO;
        }
        if (used == 1)
            header_count = iov_slice(request->in, request->in_count, 0, NET_HEADER_SIZE, header,
                                     NET_HEADER_SIZE);
        size_t copied =
            iov_from_buffer(request->in, request->in_count, 0, frame + offset, length - offset);
        virtqueue_fill(queue, used - 1, request->head, (uint32_t)copied);
        offset += copied;
    }
    if (offset < length) {
        /* Without MRG_RXBUF the driver sized its buffers for the frames it accepts. */
        virtqueue_unpop(queue, used);
        if (!net->drop_logged)
            pv_log_warning("%s: dropped a %zu-byte frame: receive buffer too small", net->name,
                           length - NET_HEADER_SIZE);
        net->drop_logged = true;
        return 1;
    }
    uint16_t buffers = (uint16_t)used;
    iov_from_buffer(header, header_count, NET_NUM_BUFFERS_OFFSET, &buffers, sizeof(buffers));
    virtqueue_flush(queue, used);
    return 1;
}

/* Moves frames from tap queue `index` to the guest while it has buffers; the tap is
 * polled afterwards only when it ran dry (-EAGAIN) or the budget ran out, never while
 * the ring is full or the device stopped, so a full ring never spins. */
static void receive_from_tap(struct virtio_net *net, unsigned index)
{
    struct tap_queue *tap = &net->taps[index];
    struct virtqueue *queue = rx_queue_of(net, index);
    bool delivered = false, polling = true; /* true: the budget runs out */
    configure_backend(net);
    for (unsigned budget = 0; budget < RX_BUDGET; budget++) {
        if (!device_live(net) || !queue->enabled || queue->broken) {
            polling = false;
            break;
        }
        if (!tap->held) {
            if (!virtqueue_has_pending(queue)) {
                polling = false; /* the receive queue's notification resumes */
                break;
            }
            ssize_t length = read_frame(net, index);
            if (length == -EAGAIN)
                break;
            if (length < 0) {
                /* Not a transient condition for a tap: waiting on it again would spin. The
                 * next receive-queue notification tries again. */
                pv_log_warning("%s: receive: %s", net->name, strerror((int)-length));
                polling = false;
                break;
            }
            if (!virtio_net_filter_accepts(&net->filter, tap->frame + NET_HEADER_SIZE,
                                           tap->length - NET_HEADER_SIZE))
                continue;
            tap->held = true;
        }
        int placed = place_frame(net, queue, tap->frame, tap->length);
        if (placed <= 0) {
            polling = false; /* too few buffers (the frame stays held) or a broken ring */
            break;
        }
        tap->held = false;
        delivered = true;
    }
    set_polling(net, index, polling);
    if (delivered)
        virtio_device_notify(&net->virtio, queue);
}

static void tap_readable(struct virtio_device *device, void *opaque)
{
    struct virtio_net *net = net_of(device);
    receive_from_tap(net, (unsigned)((struct tap_queue *)opaque - net->taps));
}

/* The driver added receive buffers: the taps that feed this queue resume. */
static void receive_queue_kicked(struct virtio_net *net, struct virtqueue *queue)
{
    for (unsigned index = 0; index < net->tap_queues; index++)
        if (net->taps[index].handle >= 0 && rx_queue_of(net, index) == queue)
            receive_from_tap(net, index);
}

/* --------------------------------------------------------------------- TX --- */

static void transmit(struct virtio_net *net, struct virtqueue *queue, unsigned tap)
{
    struct virtio_device *device = &net->virtio;
    struct virtqueue_request *request = device->request;
    bool completed = false;
    configure_backend(net);
    for (;;) {
        int popped = virtio_device_pop(device, queue, request);
        if (popped <= 0)
            break;
        if (request->in_count > 0 || request->out_bytes < NET_HEADER_SIZE) {
            virtio_device_set_broken(device, "virtio-net: transmit chain without a virtio-net "
                                             "header or with device-writable buffers");
            break;
        }
        /* With vnet_hdr the tap takes the guest's header as is (its offload requests). */
        size_t skip = net->vnet_hdr ? 0 : NET_HEADER_SIZE;
        unsigned count = iov_slice(request->out, request->out_count, skip,
                                   request->out_bytes - skip, net->tx_iov, VIRTQUEUE_MAX_SEGMENTS);
        /* A tap does not push back (a full qdisc drops), so a failed frame is dropped. */
        ssize_t sent = net_backend_send(net->backend, tap, net->tx_iov, (int)count);
        if (sent < 0 && !net->drop_logged) {
            pv_log_warning("%s: transmit: %s", net->name, strerror((int)-sent));
            net->drop_logged = true;
        }
        virtqueue_push(queue, request->head, 0);
        completed = true;
    }
    if (completed)
        virtio_device_notify(device, queue);
}

/* ---------------------------------------------------------------- control --- */

static void rx_filter_changed(struct virtio_net *net)
{
    /* One event until query-rx-filter re-arms it: a guest cannot flood the monitor. */
    if (!atomic_exchange(&net->rx_filter_notify, false) || !net->emit_event)
        return;
    struct json_writer writer;
    json_writer_init(&writer, false);
    json_writer_begin_object(&writer);
    if (net->id[0])
        json_writer_member_string(&writer, "name", net->id);
    json_writer_member_string(&writer, "path", net->qdev_path);
    json_writer_end_object(&writer);
    if (json_writer_status(&writer) == 0)
        net->emit_event(net->event_opaque, "NIC_RX_FILTER_CHANGED", json_writer_text(&writer));
    json_writer_free(&writer);
}

static uint8_t control_rx(struct virtio_net *net, uint8_t command, const uint8_t *data,
                          size_t length)
{
    struct virtio_device *device = &net->virtio;
    uint64_t needed = command <= VIRTIO_NET_CTRL_RX_ALLMULTI ? F(CTRL_RX) : F(CTRL_RX_EXTRA);
    if (!virtio_device_has_feature(device, needed) || length != 1)
        return VIRTIO_NET_ERR;
    if (virtio_net_filter_set_rx_mode(&net->filter, command, data[0] != 0) < 0)
        return VIRTIO_NET_ERR;
    rx_filter_changed(net);
    return VIRTIO_NET_OK;
}

static uint8_t control_mac(struct virtio_net *net, uint8_t command, const uint8_t *data,
                           size_t length)
{
    struct virtio_device *device = &net->virtio;
    if (command == VIRTIO_NET_CTRL_MAC_ADDR_SET) {
        if (!virtio_device_has_feature(device, F(CTRL_MAC_ADDR)) || length != 6)
            return VIRTIO_NET_ERR;
        virtio_net_filter_set_mac(&net->filter, data);
        net_backend_set_nic_mac(net->backend, data);
    } else if (command == VIRTIO_NET_CTRL_MAC_TABLE_SET) {
        if (!virtio_device_has_feature(device, F(CTRL_RX)) ||
            virtio_net_filter_set_table(&net->filter, data, length) < 0)
            return VIRTIO_NET_ERR;
    } else {
        return VIRTIO_NET_ERR;
    }
    rx_filter_changed(net);
    return VIRTIO_NET_OK;
}

static uint8_t control_mq(struct virtio_net *net, uint8_t command, const uint8_t *data,
                          size_t length)
{
    uint16_t pairs;
    if (!virtio_device_has_feature(&net->virtio, F(MQ)) ||
        command != VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET || length != sizeof(pairs))
        return VIRTIO_NET_ERR;
    memcpy(&pairs, data, sizeof(pairs));
    if (pairs < VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN || pairs > net->max_pairs)
        return VIRTIO_NET_ERR;
    net->active_pairs = pairs;
    /* The taps now feed other receive queues: each one looks at its new queue. */
    for (unsigned index = 0; index < net->tap_queues; index++)
        if (net->taps[index].handle >= 0)
            receive_from_tap(net, index);
    return VIRTIO_NET_OK;
}

static void control(struct virtio_net *net, struct virtqueue *queue)
{
    struct virtio_device *device = &net->virtio;
    struct virtqueue_request *request = device->request;
    bool completed = false;
    for (;;) {
        int popped = virtio_device_pop(device, queue, request);
        if (popped <= 0)
            break;
        struct {
            uint8_t class;
            uint8_t command;
        } header;
        if (request->out_bytes < sizeof(header) || request->in_bytes < 1) {
            virtio_device_set_broken(device, "virtio-net: control command without header or ack");
            break;
        }
        iov_to_buffer(request->out, request->out_count, 0, &header, sizeof(header));
        size_t length = request->out_bytes - sizeof(header);
        uint8_t ack = VIRTIO_NET_ERR;
        if (length <= sizeof(net->control_data)) {
            iov_to_buffer(request->out, request->out_count, sizeof(header), net->control_data,
                          length);
            if (header.class == VIRTIO_NET_CTRL_RX)
                ack = control_rx(net, header.command, net->control_data, length);
            else if (header.class == VIRTIO_NET_CTRL_MAC)
                ack = control_mac(net, header.command, net->control_data, length);
            else if (header.class == VIRTIO_NET_CTRL_MQ)
                ack = control_mq(net, header.command, net->control_data, length);
        }
        iov_from_buffer(request->in, request->in_count, 0, &ack, sizeof(ack));
        virtqueue_push(queue, request->head, sizeof(ack));
        completed = true;
    }
    if (completed)
        virtio_device_notify(device, queue);
}

/* ------------------------------------------------------------------ queues --- */

/* 5.1.2: the control queue follows the pairs with MQ, else it is queue 2. */
static int control_queue_index(struct virtio_net *net)
{
    if (!net->has_control_queue)
        return -1;
    return virtio_device_has_feature(&net->virtio, F(MQ)) ? (int)(2 * net->max_pairs) : 2;
}

static void net_handle_queue(struct virtio_device *device, struct virtqueue *queue)
{
    struct virtio_net *net = net_of(device);
    configure_backend(net);
    int control_index = control_queue_index(net);
    if ((int)queue->index == control_index)
        control(net, queue);
    else if (control_index >= 0 && (int)queue->index > control_index)
        return; /* pairs the driver did not take (no MQ) */
    else if (queue->index % 2 == 0)
        receive_queue_kicked(net, queue);
    else
        transmit(net, queue, queue->index / 2);
}

static void net_reset(struct virtio_device *device)
{
    struct virtio_net *net = net_of(device);
    for (unsigned index = 0; index < net->tap_queues; index++) {
        set_polling(net, index, false);
        net->taps[index].held = false; /* the old driver's frame: the new one never asked */
    }
    net->active_pairs = 1;
    net->backend_configured = false;
    virtio_net_filter_reset(&net->filter, net->config_mac);
    net_backend_set_nic_mac(net->backend, net->config_mac);
}

static void free_net(struct virtio_net *net)
{
    for (unsigned index = 0; index < NET_MAX_QUEUES; index++)
        free(net->taps[index].frame);
    virtio_net_filter_destroy(&net->filter);
    free(net);
}

static void net_destroy(struct virtio_device *device)
{
    struct virtio_net *net = net_of(device);
    /* The netdev outlives the NIC: netdev_del works once the device is gone. */
    net_backend_release(net->backend);
    free_net(net);
}

static const struct virtio_device_ops virtio_net_ops = {
    .read_config = net_read_config,
    .write_config = net_write_config,
    .handle_queue = net_handle_queue,
    .reset = net_reset,
    .destroy = net_destroy,
};

/* ------------------------------------------------------------- monitors --- */

static void nic_set_link(void *opaque, bool up)
{
    struct virtio_net *net = opaque;
    bool was_up = atomic_exchange(&net->link_up, up);
    if (was_up != up && (net->virtio.device_features & F(STATUS)))
        virtio_device_config_changed(&net->virtio);
}

static void nic_query_rx_filter(void *opaque, struct json_writer *writer)
{
    struct virtio_net *net = opaque;
    virtio_net_filter_write_json(&net->filter, net->name, writer);
    atomic_store(&net->rx_filter_notify, true);
}

static const struct net_nic_ops virtio_net_nic_ops = {
    .set_link = nic_set_link,
    .query_rx_filter = nic_query_rx_filter,
};

/* ------------------------------------------------------------------ setup --- */

static bool valid_queue_size(unsigned size)
{
    return size >= QUEUE_SIZE_MIN && size <= VIRTQUEUE_MAX_SIZE && !(size & (size - 1));
}

static uint64_t offered_features(struct virtio_net *net, const struct virtio_net_options *options,
                                 bool has_ufo)
{
    uint64_t features = VIRTIO_FEATURE_VERSION_1 | F(MAC);
    if (options->event_idx)
        features |= VIRTIO_FEATURE_EVENT_IDX;
    if (options->indirect_desc)
        features |= VIRTIO_FEATURE_INDIRECT_DESC;
    const struct {
        bool on;
        uint64_t bit;
        bool needs_vnet_hdr;
    } table[] = {
        {options->status, F(STATUS), false},
        {options->mrg_rxbuf, F(MRG_RXBUF), false},
        {options->ctrl_vq, F(CTRL_VQ), false},
        {options->ctrl_vq && options->ctrl_rx, F(CTRL_RX), false},
        {options->ctrl_vq && options->ctrl_rx_extra, F(CTRL_RX_EXTRA), false},
        {options->ctrl_vq && options->ctrl_mac_addr, F(CTRL_MAC_ADDR), false},
        {options->csum, F(CSUM), true},
        {options->csum && options->gso, F(GSO), true},
        {options->csum && options->host_tso4, F(HOST_TSO4), true},
        {options->csum && options->host_tso6, F(HOST_TSO6), true},
        {options->csum && options->host_ecn && (options->host_tso4 || options->host_tso6),
         F(HOST_ECN), true},
        {options->csum && options->host_ufo && has_ufo, F(HOST_UFO), true},
        {options->guest_csum, F(GUEST_CSUM), true},
        {options->guest_csum && options->guest_tso4, F(GUEST_TSO4), true},
        {options->guest_csum && options->guest_tso6, F(GUEST_TSO6), true},
        {options->guest_csum && options->guest_ecn && (options->guest_tso4 || options->guest_tso6),
         F(GUEST_ECN), true},
        {options->guest_csum && options->guest_ufo && has_ufo, F(GUEST_UFO), true},
    };
    /* Each offload also needs what 5.1.3.1 makes it depend on (TSO needs CSUM, ECN needs
     * TSO), so switching one property off never leaves a feature without its base. */
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (table[i].on && (net->vnet_hdr || !table[i].needs_vnet_hdr))
            features |= table[i].bit;
    if (net->max_pairs > 1)
        features |= F(MQ);
    if (net->mtu)
        features |= F(MTU);
    return features;
}

/* The tap's header and offload support (QEMU's tap_probe_has_ufo). */
static int setup_backend(struct virtio_net *net, bool *has_ufo, struct pv_error *error)
{
    net->tap_queues = net_backend_queue_count(net->backend);
    net->vnet_hdr = net_backend_has_vnet_hdr(net->backend);
    *has_ufo = false;
    if (!net->vnet_hdr)
        return 0;
    int status = net_backend_set_vnet_hdr_len(net->backend, NET_HEADER_SIZE, error);
    if (status < 0)
        return status;
    *has_ufo = net_backend_set_offload(net->backend, TUN_F_CSUM | TUN_F_UFO, NULL) == 0;
    return net_backend_set_offload(net->backend, 0, error);
}

static int setup_taps(struct virtio_net *net, struct pv_error *error)
{
    for (unsigned index = 0; index < net->tap_queues; index++) {
        struct tap_queue *tap = &net->taps[index];
        tap->handle = -1;
        int fd = net_backend_queue_fd(net->backend, index);
        if (fd < 0)
            continue; /* no netdev: nothing to receive, ever */
        tap->frame = malloc(RX_FRAME_MAX);
        if (!tap->frame)
            return pv_error_set(error, -ENOMEM, "out of memory");
        int handle = virtio_device_add_io_fd(&net->virtio, fd, tap_readable, tap, error);
        if (handle < 0)
            return handle;
        tap->handle = handle;
    }
    return 0;
}

static int check_options(const struct virtio_net_options *options, struct pv_error *error)
{
    if (!options->net_layer)
        return pv_error_set(error, -EINVAL, "no network layer");
    if (!valid_queue_size(options->rx_queue_size))
        return pv_error_set(error, -EINVAL,
                            "Invalid rx_queue_size (= %u), must be a power of 2 between %d and %d.",
                            options->rx_queue_size, QUEUE_SIZE_MIN, VIRTQUEUE_MAX_SIZE);
    if (!valid_queue_size(options->tx_queue_size))
        return pv_error_set(error, -EINVAL,
                            "Invalid tx_queue_size (= %u), must be a power of 2 between %d and %d",
                            options->tx_queue_size, QUEUE_SIZE_MIN, VIRTQUEUE_MAX_SIZE);
    if (options->mq && !options->ctrl_vq)
        return pv_error_set(error, -EINVAL,
                            "virtio-net-pci: mq=on needs ctrl_vq=on (the guest sets the number "
                            "of queue pairs through the control queue)");
    return 0;
}

struct virtio_net *virtio_net_new(const struct virtio_net_options *options, struct pv_error *error)
{
    if (check_options(options, error) < 0)
        return NULL;
    struct virtio_net *net = calloc(1, sizeof(*net));
    if (!net) {
        pv_error_set(error, -ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(net->config_mac, options->mac, 6);
    virtio_net_filter_init(&net->filter, options->mac);
    snprintf(net->name, sizeof(net->name), "%s", options->name ? options->name : "virtio-net-pci");
    snprintf(net->id, sizeof(net->id), "%s", options->id ? options->id : "");
    snprintf(net->qdev_path, sizeof(net->qdev_path), "%s",
             options->qdev_path ? options->qdev_path
                                : "/machine/peripheral-anon/virtio-net-pci/virtio-backend");
    net->emit_event = options->emit_event;
    net->event_opaque = options->event_opaque;
    atomic_init(&net->link_up, true);
    atomic_init(&net->rx_filter_notify, true);
    net->active_pairs = 1;

    struct net_nic_info info = {
        .name = net->name,
        .model = "virtio-net-pci",
        .mac = net->config_mac,
        .ops = &virtio_net_nic_ops,
        .opaque = net,
    };
    net->backend = net_backend_attach(options->net_layer, options->netdev,
                                      "virtio-net-device.netdev", &info, error);
    if (!net->backend) {
        virtio_net_filter_destroy(&net->filter);
        free(net);
        return NULL;
    }
    bool has_ufo;
    if (setup_backend(net, &has_ufo, error) < 0)
        goto fail_backend;
    atomic_store(&net->link_up, net_backend_link_up(net->backend));
    net->max_pairs = options->mq && net->tap_queues > 1 ? net->tap_queues : 1;
    net->has_control_queue = options->ctrl_vq;
    net->mtu = options->host_mtu;
    unsigned queue_count = 2 * net->max_pairs + (net->has_control_queue ? 1 : 0);
    unsigned tx_size = options->tx_queue_size < TX_QUEUE_SIZE_TAP_MAX ? options->tx_queue_size
                                                                      : TX_QUEUE_SIZE_TAP_MAX;
    unsigned largest = options->rx_queue_size > tx_size ? options->rx_queue_size : tx_size;
    if (virtio_device_init(&net->virtio, "virtio-net", VIRTIO_TYPE_NET, &virtio_net_ops,
                           queue_count, (uint16_t)largest, offered_features(net, options, has_ufo),
                           sizeof(struct net_config_space), error) < 0)
        goto fail_backend;
    for (unsigned i = 0; i < 2 * net->max_pairs; i++) {
        net->virtio.queues[i].max_size = (uint16_t)(i % 2 ? tx_size : options->rx_queue_size);
        virtqueue_reset(&net->virtio.queues[i]);
    }
    if (net->has_control_queue) {
        net->virtio.queues[queue_count - 1].max_size = 64; /* QEMU's control queue size */
        virtqueue_reset(&net->virtio.queues[queue_count - 1]);
    }
    if (setup_taps(net, error) < 0) {
        virtio_device_destroy(&net->virtio); /* releases the backend and frees `net` */
        return NULL;
    }
    return net;

fail_backend:
    net_backend_release(net->backend);
    free_net(net);
    return NULL;
}

/* virtio-net receive filter; see virtio_net_filter.h. */
#include "virtio/virtio_net_filter.h"

#include <errno.h>
#include <linux/virtio_net.h>
#include <stdio.h>
#include <string.h>

#include "json_util.h"

#define VLAN_COUNT 4096

void virtio_net_filter_init(struct virtio_net_filter *filter, const uint8_t mac[6])
{
    memset(filter, 0, sizeof(*filter));
    pthread_mutex_init(&filter->lock, NULL);
    virtio_net_filter_reset(filter, mac);
}

void virtio_net_filter_destroy(struct virtio_net_filter *filter)
{
    pthread_mutex_destroy(&filter->lock);
}

void virtio_net_filter_reset(struct virtio_net_filter *filter, const uint8_t mac[6])
{
    pthread_mutex_lock(&filter->lock);
    memcpy(filter->mac, mac, 6);
    /* A driver that never uses the control queue still receives everything, as on QEMU. */
    filter->promisc = true;
    filter->allmulti = filter->alluni = filter->nomulti = filter->nouni = filter->nobcast = false;
    filter->uni_overflow = filter->multi_overflow = false;
    filter->in_use = filter->first_multi = 0;
    pthread_mutex_unlock(&filter->lock);
}

static bool table_has(const struct virtio_net_filter *filter, unsigned from, unsigned to,
                      const uint8_t *mac)
{
    for (unsigned i = from; i < to; i++)
        if (memcmp(filter->macs[i], mac, 6) == 0)
            return true;
    return false;
}

static bool accepts_locked(const struct virtio_net_filter *filter, const uint8_t *frame,
                           size_t length)
{
    static const uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    if (filter->promisc)
        return true;
    if (length < 6)
        return false;
    /* No CTRL_VLAN: every VLAN passes, so tagged frames go through the MAC checks only. */
    if (frame[0] & 1) {
        if (memcmp(frame, broadcast, 6) == 0)
            return !filter->nobcast;
        if (filter->nomulti)
            return false;
        if (filter->allmulti || filter->multi_overflow)
            return true;
        return table_has(filter, filter->first_multi, filter->in_use, frame);
    }
    if (filter->nouni)
        return false;
    if (filter->alluni || filter->uni_overflow)
        return true;
    if (memcmp(frame, filter->mac, 6) == 0)
        return true;
    return table_has(filter, 0, filter->first_multi, frame);
}

bool virtio_net_filter_accepts(struct virtio_net_filter *filter, const uint8_t *frame,
                               size_t length)
{
    pthread_mutex_lock(&filter->lock);
    bool accepted = accepts_locked(filter, frame, length);
    pthread_mutex_unlock(&filter->lock);
    return accepted;
}

int virtio_net_filter_set_rx_mode(struct virtio_net_filter *filter, uint8_t command, bool on)
{
    bool *mode;
    switch (command) {
    case VIRTIO_NET_CTRL_RX_PROMISC:
        mode = &filter->promisc;
        break;
    case VIRTIO_NET_CTRL_RX_ALLMULTI:
        mode = &filter->allmulti;
        break;
    case VIRTIO_NET_CTRL_RX_ALLUNI:
        mode = &filter->alluni;
        break;
    case VIRTIO_NET_CTRL_RX_NOMULTI:
        mode = &filter->nomulti;
        break;
    case VIRTIO_NET_CTRL_RX_NOUNI:
        mode = &filter->nouni;
        break;
    case VIRTIO_NET_CTRL_RX_NOBCAST:
        mode = &filter->nobcast;
        break;
    default:
        return -EINVAL;
    }
    pthread_mutex_lock(&filter->lock);
    *mode = on;
    pthread_mutex_unlock(&filter->lock);
    return 0;
}

/* One table of MAC_TABLE_SET: le32 count then count MACs. Returns bytes consumed or -EINVAL. */
static long parse_table(const uint8_t *data, size_t length, uint32_t *entries)
{
    if (length < 4)
        return -EINVAL;
    memcpy(entries, data, 4);
    if ((uint64_t)*entries * 6 > length - 4)
        return -EINVAL;
    return 4 + (long)*entries * 6;
}

int virtio_net_filter_set_table(struct virtio_net_filter *filter, const uint8_t *data,
                                size_t length)
{
    uint32_t unicast, multicast;
    long first = parse_table(data, length, &unicast);
    if (first < 0)
        return -EINVAL;
    long second = parse_table(data + first, length - (size_t)first, &multicast);
    if (second < 0 || (size_t)(first + second) != length)
        return -EINVAL;
    pthread_mutex_lock(&filter->lock);
    filter->in_use = 0;
    filter->uni_overflow = filter->multi_overflow = false;
    /* A table too long to keep overflows: QEMU then passes every frame of that kind. */
    if (unicast <= VIRTIO_NET_MAC_TABLE_ENTRIES) {
        memcpy(filter->macs, data + 4, unicast * 6);
        filter->in_use = unicast;
    } else {
        filter->uni_overflow = true;
    }
    filter->first_multi = filter->in_use;
    if (filter->in_use + multicast <= VIRTIO_NET_MAC_TABLE_ENTRIES) {
        memcpy(filter->macs[filter->in_use], data + first + 4, multicast * 6);
        filter->in_use += multicast;
    } else {
        filter->multi_overflow = true;
    }
    pthread_mutex_unlock(&filter->lock);
    return 0;
}

void virtio_net_filter_set_mac(struct virtio_net_filter *filter, const uint8_t mac[6])
{
    pthread_mutex_lock(&filter->lock);
    memcpy(filter->mac, mac, 6);
    pthread_mutex_unlock(&filter->lock);
}

void virtio_net_filter_get_mac(struct virtio_net_filter *filter, uint8_t mac[6])
{
    pthread_mutex_lock(&filter->lock);
    memcpy(mac, filter->mac, 6);
    pthread_mutex_unlock(&filter->lock);
}

static void write_mac(struct json_writer *writer, const uint8_t *mac)
{
    char text[18];
    snprintf(text, sizeof(text), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
             mac[4], mac[5]);
    json_writer_string(writer, text);
}

static const char *mode_name(bool none, bool all)
{
    return none ? "none" : all ? "all" : "normal";
}

void virtio_net_filter_write_json(struct virtio_net_filter *filter, const char *name,
                                  struct json_writer *writer)
{
    pthread_mutex_lock(&filter->lock);
    json_writer_begin_object(writer);
    json_writer_member_bool(writer, "promiscuous", filter->promisc);
    json_writer_member_string(writer, "name", name);
    json_writer_key(writer, "main-mac");
    write_mac(writer, filter->mac);
    json_writer_member_string(writer, "unicast", mode_name(filter->nouni, filter->alluni));
    /* No CTRL_VLAN: QEMU reports "all" and every VLAN id, highest first. */
    json_writer_member_string(writer, "vlan", "all");
    json_writer_key(writer, "vlan-table");
    json_writer_begin_array(writer);
    for (int vlan = VLAN_COUNT - 1; vlan >= 0; vlan--)
        json_writer_int(writer, vlan);
    json_writer_end_array(writer);
    json_writer_key(writer, "unicast-table");
    json_writer_begin_array(writer);
    for (unsigned i = 0; i < filter->first_multi; i++)
        write_mac(writer, filter->macs[i]);
    json_writer_end_array(writer);
    json_writer_member_string(writer, "multicast", mode_name(filter->nomulti, filter->allmulti));
    json_writer_member_bool(writer, "multicast-overflow", filter->multi_overflow);
    json_writer_member_bool(writer, "unicast-overflow", filter->uni_overflow);
    json_writer_key(writer, "multicast-table");
    json_writer_begin_array(writer);
    for (unsigned i = filter->first_multi; i < filter->in_use; i++)
        write_mac(writer, filter->macs[i]);
    json_writer_end_array(writer);
    /* QEMU 7.2 reports its nobcast flag under this name (virtio_net_query_rxfilter). */
    json_writer_member_bool(writer, "broadcast-allowed", filter->nobcast);
    json_writer_end_object(writer);
    pthread_mutex_unlock(&filter->lock);
}

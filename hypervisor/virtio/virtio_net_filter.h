/* virtio-net's receive filter (5.1.6.5.1-2): the MAC, the RX modes and the
 * MAC table the driver sets through the control queue, applied to every
 * received frame as QEMU applies them, and reported by query-rx-filter.
 *
 * Threads: the I/O thread filters frames and changes the state (control
 * queue); the main thread reads it (query-rx-filter) and resets it with the
 * device. `lock` makes each of those atomic. */
#ifndef PLUGVIRT_VIRTIO_NET_FILTER_H
#define PLUGVIRT_VIRTIO_NET_FILTER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct json_writer;

#define VIRTIO_NET_MAC_TABLE_ENTRIES 64 /* QEMU's MAC_TABLE_ENTRIES */

struct virtio_net_filter {
    pthread_mutex_t lock;
    uint8_t mac[6];
    bool promisc, allmulti, alluni, nomulti, nouni, nobcast;
    bool uni_overflow, multi_overflow;
    unsigned in_use, first_multi; /* unicast entries [0, first_multi), multicast after */
    uint8_t macs[VIRTIO_NET_MAC_TABLE_ENTRIES][6];
};

void virtio_net_filter_init(struct virtio_net_filter *filter, const uint8_t mac[6]);
void virtio_net_filter_destroy(struct virtio_net_filter *filter);
/* Device reset: QEMU's state after reset (promiscuous, empty table, `mac`). */
void virtio_net_filter_reset(struct virtio_net_filter *filter, const uint8_t mac[6]);

/* Whether a frame (starting at its destination MAC) reaches the guest. */
bool virtio_net_filter_accepts(struct virtio_net_filter *filter, const uint8_t *frame,
                               size_t length);

/* VIRTIO_NET_CTRL_RX_* command `command` with its on/off byte. -EINVAL: unknown command. */
int virtio_net_filter_set_rx_mode(struct virtio_net_filter *filter, uint8_t command, bool on);
/* VIRTIO_NET_CTRL_MAC_TABLE_SET's payload (two tables: le32 entries, then MACs).
 * -EINVAL when malformed; the state is then unchanged. */
int virtio_net_filter_set_table(struct virtio_net_filter *filter, const uint8_t *data,
                                size_t length);
void virtio_net_filter_set_mac(struct virtio_net_filter *filter, const uint8_t mac[6]);
void virtio_net_filter_get_mac(struct virtio_net_filter *filter, uint8_t mac[6]);

/* One RxFilterInfo object, QEMU 7.2's members and values. */
void virtio_net_filter_write_json(struct virtio_net_filter *filter, const char *name,
                                  struct json_writer *writer);

#endif

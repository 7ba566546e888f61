/* The network layer: named netdevs (-netdev / netdev_add) and the NICs that use them, with
 * QEMU's semantics and messages.
 *
 * A netdev is a host backend; the only type is "tap". QMP netdev_add must name it
 * ("type": "tap"): QEMU 7.2 answers "Parameter 'type' is missing" without it, and so do we.
 * A NIC (virtio-net-pci) attaches to one netdev by id, which makes them peers: a netdev
 * serves at most one NIC, and netdev_del refuses a netdev that a NIC still uses (QEMU would
 * close the tap under the NIC; here the NIC's I/O threads use its descriptors). The NIC
 * registers a few callbacks so that set_link, info network and query-rx-filter, which name
 * either side, reach it.
 *
 * Tap descriptors come from the caller whenever it can: fd=/fds= name descriptors that
 * arrived with the command line (a number) or by QMP getfd (a name, kept by
 * net_layer_add_named_fd until a netdev takes it or closefd closes it). Opening /dev/net/tun by
 * ifname= needs CAP_NET_ADMIN and is there for hand-run VMMs; plugvirtd always passes fds.
 *
 * Threads: configuration and queries on the main thread; net_backend_send/receive on
 * device I/O threads (a netdev's queues are independent; one thread per queue at most). */
#ifndef PLUGVIRT_NET_H
#define PLUGVIRT_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "pv_error.h"
#include "qemu_options.h"

struct net_layer;
struct net_backend;
struct json_writer;

#define NET_MAX_QUEUES 16
#define NET_MAC_STRING_LENGTH 17 /* "52:54:00:12:34:56" */

/* What the monitors need from a NIC; all run on the main thread. */
struct net_nic_ops {
    /* set_link on the NIC or on its netdev: the NIC updates its link status bit (and tells
     * the guest with a config interrupt). */
    void (*set_link)(void *opaque, bool up);
    /* query-rx-filter: one RxFilterInfo object (QEMU 7.2's members: name, promiscuous,
     * multicast, unicast, vlan, broadcast-allowed, multicast-overflow, unicast-overflow,
     * main-mac, vlan-table, unicast-table, multicast-table), written with `writer`. Also
     * re-arms NIC_RX_FILTER_CHANGED, as QEMU does. */
    void (*query_rx_filter)(void *opaque, struct json_writer *writer);
};

/* What a NIC tells the layer about itself when it attaches. */
struct net_nic_info {
    const char *name;   /* the device id, or "<model>.<n>" when it has none (info network) */
    const char *model;  /* "virtio-net-pci" */
    const uint8_t *mac; /* 6 bytes; later changes: net_backend_set_nic_mac */
    const struct net_nic_ops *ops;
    void *opaque;
};

struct net_layer *net_layer_create(void);
/* Closes every netdev and named fd (NICs must be gone). */
void net_layer_destroy(struct net_layer *layer);

/* Where an option list came from: QEMU words a few errors differently for QMP
 * ("Parameter 'x' is unexpected", "Duplicate ID 'n'") and for the command line and HMP
 * ("Invalid parameter 'x'", "Duplicate ID 'n' for netdev"). */
enum net_syntax { NET_SYNTAX_QMP, NET_SYNTAX_COMMAND_LINE };

/* -netdev / netdev_add / host_net_add. `options` holds type (required, "tap"), id and the
 * backend's keys; tap: ifname, fd, fds, script, downscript, vnet_hdr, sndbuf, queues, vhost,
 * vhostfd, vhostfds, vhostforce, helper (refused), br (refused), poll-us (refused). Unknown
 * keys are errors with QEMU's wording; so is vhost=on where /dev/vhost-net cannot be opened
 * (where it can: "not supported yet", the vhost data path is not implemented). */
int net_netdev_add(struct net_layer *layer, struct qemu_options *options, enum net_syntax syntax,
                   struct pv_error *error);
/* The checks of net_netdev_add that need no layer and open nothing (type, id, keys, their
 * combinations), for the command line parser. */
int net_netdev_check(struct qemu_options *options, enum net_syntax syntax, struct pv_error *error);
/* netdev_del: "Device 'x' not found" (class DeviceNotFound), refused while a NIC uses it. */
int net_netdev_del(struct net_layer *layer, const char *id, struct pv_error *error);
bool net_netdev_exists(struct net_layer *layer, const char *id);
/* Whether a NIC is attached to netdev `id`. */
bool net_netdev_has_nic(struct net_layer *layer, const char *id);

/* Descriptors the monitor received (getfd name= with SCM_RIGHTS). The layer owns `fd` from
 * the call on (also on error) until closefd or until a netdev takes it (fd=name). A name
 * already present is replaced (QEMU closes the old descriptor and keeps the new). A name
 * starting with a digit is refused, as QEMU does (it would read as a descriptor number). */
int net_layer_add_named_fd(struct net_layer *layer, const char *name, int fd,
                           struct pv_error *error);
int net_layer_close_named_fd(struct net_layer *layer, const char *name, struct pv_error *error);
bool net_layer_has_named_fd(struct net_layer *layer, const char *name);

/* set_link: `name` is a NIC name or a netdev id ("Device 'x' not found" otherwise). */
int net_layer_set_link(struct net_layer *layer, const char *name, bool up, struct pv_error *error);
/* query-rx-filter: every NIC, or the one named (which must be a NIC: "net client(x) isn't a
 * NIC"). Writes a JSON array. */
int net_layer_query_rx_filter(struct net_layer *layer, const char *name, struct json_writer *writer,
                              struct pv_error *error);
/* info network: QEMU's text ("\n" line ends; HMP adds the "\r"), in creation order as
 * QEMU lists its clients: a NIC with its netdev indented under it (" \\ "), one pair of
 * lines per queue; a netdev with no NIC on its own. Malloc'd; NULL when out of memory. */
char *net_layer_info_network(struct net_layer *layer);

/* NIC side. Attaches the NIC to netdev `netdev_id` (NULL: a NIC without netdev=, as QEMU
 * allows: one queue, no descriptor, frames sent are dropped, nothing is received); `property`
 * ("virtio-net-pci.netdev") appears in QEMU's errors: "Property 'virtio-net-pci.netdev' can't find
 * value 'x'" and
 * "... can't take value 'x', it's in use". */
struct net_backend *net_backend_attach(struct net_layer *layer, const char *netdev_id,
                                       const char *property, const struct net_nic_info *nic,
                                       struct pv_error *error);
/* The NIC is gone: the netdev stays (netdev_del removes it later), unpeered. */
void net_backend_release(struct net_backend *backend);

unsigned net_backend_queue_count(struct net_backend *backend);
/* The queue's descriptor (non-blocking), for the device's I/O thread to poll for RX. */
int net_backend_queue_fd(struct net_backend *backend, unsigned queue);
bool net_backend_link_up(struct net_backend *backend);

/* Offloads: only a tap opened with IFF_VNET_HDR can carry a virtio-net header. */
bool net_backend_has_vnet_hdr(struct net_backend *backend);
/* Header length the tap reads and writes before each frame (10 or 12, TUNSETVNETHDRSZ). */
int net_backend_set_vnet_hdr_len(struct net_backend *backend, int length, struct pv_error *error);
/* TUNSETOFFLOAD with TUN_F_* flags, for what the guest accepted (csum, TSO4/6, ECN, UFO). */
int net_backend_set_offload(struct net_backend *backend, unsigned tun_flags,
                            struct pv_error *error);

/* One frame (with the vnet header when set). Return bytes, -EAGAIN when the tap has
 * nothing / no room, other -errno on failure. Dropped while the link is down (TX reports
 * success, RX reads and discards, as QEMU does). Counters: net_backend_get_counters (QEMU's
 * info network shows none, so neither does ours). */
ssize_t net_backend_send(struct net_backend *backend, unsigned queue, const struct iovec *iov,
                         int iov_count);
ssize_t net_backend_receive(struct net_backend *backend, unsigned queue, const struct iovec *iov,
                            int iov_count);

/* Per-queue counters (since attach). */
struct net_counters {
    uint64_t tx_packets, tx_bytes, tx_dropped;
    uint64_t rx_packets, rx_bytes, rx_dropped;
};
void net_backend_get_counters(struct net_backend *backend, unsigned queue,
                              struct net_counters *out);
/* The tap's interface name ("" when unknown), NULL without a netdev. */
const char *net_backend_ifname(struct net_backend *backend);

/* The guest set a new MAC (control queue): shown by info network and query-rx-filter. */
void net_backend_set_nic_mac(struct net_backend *backend, const uint8_t mac[6]);

/* Parses "52:54:00:12:34:56" (QEMU's macaddr property; '-' separators too). 0 / -EINVAL. */
int net_parse_mac(const char *text, uint8_t mac[6]);
/* QEMU's default NIC MAC for the n-th NIC without macaddr: 52:54:00:12:34:(0x56 + n). */
void net_default_mac(unsigned index, uint8_t mac[6]);

#endif

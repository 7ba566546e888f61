/* virtio-net (virtio 1.x, 5.1) on a netdev of the network layer (net/net.h).
 *
 * Queues: receiveq/transmitq pairs (rx 2k, tx 2k+1), then the control queue
 * (at 2N with MQ negotiated, else at 2). Features: MAC, STATUS, MRG_RXBUF, MTU,
 * CTRL_VQ with CTRL_RX, CTRL_RX_EXTRA and CTRL_MAC_ADDR, MQ when the netdev
 * has several queues and mq=on, and the checksum/segmentation offloads only
 * when the tap carries a virtio-net header (vnet_hdr).
 *
 * Data path, all on the device's I/O thread: TX runs on the transmit
 * queues' notifications; RX waits on the tap's queue descriptors, but only
 * while the receive queue has buffers: a full ring stops polling and the next
 * receive-queue notification resumes it, so frames wait in the tap (whose
 * queue drops on overflow, as with QEMU) and the thread never spins.
 *
 * virtio_net_new gives the transport-independent model (tests use it);
 * virtio_net_pci_model is the -device / device_add "virtio-net-pci". */
#ifndef PLUGVIRT_VIRTIO_NET_H
#define PLUGVIRT_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "device_model.h"
#include "pv_error.h"
#include "qemu_options.h"
#include "virtio/virtio.h"

struct net_layer;
struct virtio_net;

/* Events the device emits (NIC_RX_FILTER_CHANGED); any thread. */
typedef void (*virtio_net_event_fn)(void *opaque, const char *event_name, const char *data_json);

struct virtio_net_options {
    struct net_layer *net_layer;
    const char *netdev;    /* netdev id; NULL: no peer, as QEMU allows (sent frames dropped) */
    const char *id;        /* the device id, or NULL */
    const char *name;      /* the NIC's name: device id or "virtio-net-pci.<n>" */
    const char *qdev_path; /* ".../virtio-backend", for NIC_RX_FILTER_CHANGED */
    uint8_t mac[6];
    bool mq;                /* offer MQ when the netdev has several queues */
    uint16_t host_mtu;      /* 0: no VIRTIO_NET_F_MTU; else the MTU advised to the guest */
    unsigned rx_queue_size; /* 256..1024, power of two */
    unsigned tx_queue_size;
    bool status, mrg_rxbuf, ctrl_vq, ctrl_rx, ctrl_rx_extra, ctrl_mac_addr;
    bool csum, guest_csum, gso, host_tso4, host_tso6, host_ecn, host_ufo;
    bool guest_tso4, guest_tso6, guest_ecn, guest_ufo;
    bool event_idx, indirect_desc; /* the ring features (QEMU's virtio properties) */
    virtio_net_event_fn emit_event;
    void *event_opaque;
};

/* QEMU's defaults (every feature on, mq off, queue sizes 256). */
void virtio_net_options_init(struct virtio_net_options *options);

/* The virtio-net-pci properties found in `options` (netdev, mac, mq, the queue
 * sizes, the feature switches), over the values already in `net`; properties
 * naming what this device does not do are refused by name. Transport keys
 * (id, bus, addr, vectors) are left for the caller. Strings point into
 * `options`. */
int virtio_net_options_from_qemu(struct qemu_options *options, struct virtio_net_options *net,
                                 struct pv_error *error);

/* Attaches to the netdev and sets up the device. Free with
 * virtio_device_destroy(virtio_net_device(net)), which releases the netdev. */
struct virtio_net *virtio_net_new(const struct virtio_net_options *options, struct pv_error *error);
struct virtio_device *virtio_net_device(struct virtio_net *net);
/* The guest's current MAC (the control queue may change it). */
void virtio_net_get_mac(struct virtio_net *net, uint8_t mac[6]);
/* The mac property (what a reset restores), and the NIC's name. */
const uint8_t *virtio_net_config_mac(struct virtio_net *net);
const char *virtio_net_name(struct virtio_net *net);

/* The -device / device_add model "virtio-net-pci" (virtio_net_pci.c; device_registry.c
 * lists it). */
extern const struct device_model virtio_net_pci_model;

#endif

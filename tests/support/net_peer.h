/* A host-side frame peer for tests and benches: a private network namespace,
 * tap devices in it, and raw Ethernet frames through AF_PACKET. Nothing here
 * touches the host's own interfaces: callers enter a namespace first.
 * Every function returns 0 (or an fd / a length) or -errno, and fills `error`
 * (may be NULL) with a line a person can act on. */
#ifndef PLUGVIRT_TEST_NET_PEER_H
#define PLUGVIRT_TEST_NET_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NET_PEER_ERROR_SIZE 256
#define NET_PEER_MAX_FRAME 65536

struct net_peer_error {
    char message[NET_PEER_ERROR_SIZE];
};

/* Moves the calling process (and the children it starts later) into a new,
 * empty network namespace (unshare(CLONE_NEWNET)). Needs CAP_SYS_ADMIN. */
int net_peer_enter_new_namespace(struct net_peer_error *error);
/* Joins the network namespace of process `pid` (setns on /proc/<pid>/ns/net). */
int net_peer_enter_namespace_of(pid_t pid, struct net_peer_error *error);

/* Creates tap device `name` (IFF_TAP | IFF_NO_PI). With `persist` the device
 * stays after the fd is closed (for QEMU's ifname=), and the fd is closed and 0
 * returned; otherwise the open fd is returned (for fd= passing). IPv6 is
 * switched off on it so the kernel sends no frames of its own. */
int net_peer_create_tap(const char *name, bool persist, struct net_peer_error *error);
/* Removes a persistent tap device. */
int net_peer_delete_tap(const char *name, struct net_peer_error *error);
/* Sets IFF_UP on an interface. */
int net_peer_link_up(const char *name, struct net_peer_error *error);
/* Sets the interface's MTU (AF_PACKET refuses frames longer than MTU + 14). */
int net_peer_set_mtu(const char *name, int mtu, struct net_peer_error *error);

/* An AF_PACKET socket bound to `name`, seeing every EtherType. */
int net_peer_open_packet(const char *name, struct net_peer_error *error);
/* Sends one whole frame (destination MAC first). */
int net_peer_send(int fd, const void *frame, size_t length, struct net_peer_error *error);
/* Receives the next frame that came *from* the interface's other side (frames
 * this host sent are skipped) and, if `ether_type` is not 0, has that
 * EtherType. Waits until one arrives; `timeout_ms` only bounds a failure.
 * Returns the length, or -ETIMEDOUT. */
ssize_t net_peer_receive(int fd, uint16_t ether_type, void *frame, size_t size, int timeout_ms,
                         struct net_peer_error *error);

/* FNV-1a 32-bit, the probe guest's checksum. */
uint32_t net_peer_fnv1a(const void *data, size_t length);
/* Fills `frame` with destination, source, EtherType and `payload_length`
 * payload bytes derived from `seed`; returns the frame length. */
size_t net_peer_build_frame(uint8_t *frame, const uint8_t destination[6], const uint8_t source[6],
                            uint16_t ether_type, size_t payload_length, uint32_t seed);
/* "aa:bb:cc:dd:ee:ff" → bytes; -EINVAL when malformed. */
int net_peer_parse_mac(const char *text, uint8_t mac[6]);

#endif

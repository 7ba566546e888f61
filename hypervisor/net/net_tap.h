/* The tap backend of the network layer: opens or adopts tap descriptors from a -netdev tap
 * option list with QEMU 7.2's semantics and messages, runs the up/down scripts, and moves
 * frames. Only net.c uses it. */
#ifndef PLUGVIRT_NET_TAP_H
#define PLUGVIRT_NET_TAP_H

#include <net/if.h>
#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "pv_error.h"
#include "qemu_options.h"

/* Resolves a fd=/fds= element that is not a number (a getfd name): returns the descriptor,
 * now owned by the caller, or -errno with QEMU's "File descriptor named 'x' has not been
 * found". */
typedef int (*net_tap_fd_lookup)(void *opaque, const char *name, struct pv_error *error);

#define NET_TAP_MAX_QUEUES 16 /* net.h's NET_MAX_QUEUES; net.c checks they agree */

struct net_tap {
    unsigned queue_count;
    int fds[NET_TAP_MAX_QUEUES];
    bool vnet_hdr;         /* the tap carries a virtio-net header before each frame */
    char ifname[IFNAMSIZ]; /* empty when the fd came from outside and TUNGETIFF had none */
    char *downscript;      /* run at close; NULL for none */
    char *info;            /* info network's description: "ifname=t0,script=no,..." */
};

/* The checks of net_tap_open that open nothing: values parse, no refused key, QEMU's
 * combinations. */
int net_tap_check(struct qemu_options *options, struct pv_error *error);
/* Reads the tap keys of `options` (the caller has taken type and id) and opens the
 * backend. Every key it does not know is left unused for the caller's check. */
int net_tap_open(struct net_tap *tap, struct qemu_options *options, net_tap_fd_lookup lookup,
                 void *lookup_opaque, struct pv_error *error);
/* Runs the downscript (a failure is logged: the netdev goes anyway, as in QEMU) and closes
 * every queue. */
void net_tap_close(struct net_tap *tap);

ssize_t net_tap_writev(struct net_tap *tap, unsigned queue, const struct iovec *iov, int count);
ssize_t net_tap_readv(struct net_tap *tap, unsigned queue, const struct iovec *iov, int count);
int net_tap_set_vnet_hdr_len(struct net_tap *tap, int length, struct pv_error *error);
int net_tap_set_offload(struct net_tap *tap, unsigned flags, struct pv_error *error);

#endif

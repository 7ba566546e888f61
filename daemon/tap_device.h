/* The daemon's side of a NIC: it opens and configures the tap itself, so the VMM gets only
 * file descriptors and needs no network privileges (as libvirt does).
 *
 * A managed tap (the default) is created non-persistent through /dev/net/tun: it exists as
 * long as one of its descriptors is open, so it vanishes when the VMM (the last holder, once
 * the daemon closed its copies) closes it or exits. Its MAC is the guest's with the first
 * byte 0xfe (libvirt: the host side never wins the bridge's lowest-MAC election), its link
 * is set up, and for <interface type='bridge'> it is enslaved to that existing bridge.
 * A <target managed='no'> tap must exist already; plugvirt only opens it. */
#ifndef PLUGVIRT_TAP_DEVICE_H
#define PLUGVIRT_TAP_DEVICE_H

#include <net/if.h>
#include <stdbool.h>

#include "domain.h"
#include "pv_error.h"

/* The kernel's template for a tap name when <target dev> is absent (libvirt's "vnet%d"). */
#define TAP_DEVICE_NAME_TEMPLATE "vnet%d"

struct tap_device {
    char name[IFNAMSIZ]; /* the kernel's name (the template resolved) */
    int fds[DOMAIN_INTERFACE_MAX_QUEUES];
    unsigned fd_count; /* queues: IFF_MULTI_QUEUE when > 1 */
};

/* Opens the interface's tap (interface->queues descriptors, at least one), configures it as
 * above and fills `tap`. 0, or -errno with an error naming the tap or the bridge; nothing is
 * left open then. */
int tap_device_open(const struct domain_interface *interface, struct tap_device *tap,
                    struct pv_error *error);
/* Cold plug: opens the taps of every interface of `definition` (the live one, about to start),
 * writing the kernel's name into each <target dev> left empty, as libvirt's live XML shows it.
 * `*fds` (malloc'd, one per queue in the order of the interfaces, see vmm_argv.h) and
 * `*count`; on failure nothing stays open. */
int tap_device_open_definition(struct domain_definition *definition, int **fds, unsigned *count,
                               struct pv_error *error);
/* Closes and frees what tap_device_open_definition gave. */
void tap_device_close_fds(int *fds, unsigned count);
/* Closes the daemon's descriptors (a managed tap goes away with the VMM's). */
void tap_device_close(struct tap_device *tap);
/* Whether a network interface of that name exists (in the daemon's network namespace). */
bool tap_device_exists(const char *name);
/* Deletes a managed tap left behind with nobody holding it (recovery): a non-persistent tap
 * cannot outlive its holders, so this clears the persist flag of one that was made
 * persistent. 0 when it does not exist (anymore). */
int tap_device_delete(const char *name, struct pv_error *error);

#endif

/* Opening and configuring a NIC's tap (see tap_device.h). */
#include "tap_device.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if_arp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define TUN_DEVICE "/dev/net/tun"

static int open_queue(const char *name, short flags, char resolved[IFNAMSIZ],
                      struct pv_error *error)
{
    int fd = open(TUN_DEVICE, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return pv_error_set_errno(error, -errno, "cannot open " TUN_DEVICE);
    struct ifreq request = {0};
    snprintf(request.ifr_name, sizeof(request.ifr_name), "%s", name);
    request.ifr_flags = flags;
    if (ioctl(fd, TUNSETIFF, &request) < 0) {
        int rc = -errno;
        close(fd);
        return pv_error_set_errno(error, rc, "cannot open tap '%s' (TUNSETIFF)", name);
    }
    snprintf(resolved, IFNAMSIZ, "%s", request.ifr_name);
    return fd;
}

/* An AF_INET datagram socket is what the SIOC* interface ioctls go through. */
static int control_socket(struct pv_error *error)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return pv_error_set_errno(error, -errno, "socket(AF_INET)");
    return fd;
}

static int configure(const struct domain_interface *interface, const char *name,
                     struct pv_error *error)
{
    unsigned bytes[6];
    if (!interface->mac || sscanf(interface->mac, "%2x:%2x:%2x:%2x:%2x:%2x", &bytes[0], &bytes[1],
                                  &bytes[2], &bytes[3], &bytes[4], &bytes[5]) != 6)
        return pv_error_set(error, -EINVAL, "interface has no valid MAC address");
    int sock = control_socket(error);
    if (sock < 0)
        return sock;
    struct ifreq request = {0};
    snprintf(request.ifr_name, sizeof(request.ifr_name), "%s", name);
    request.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    /* libvirt: the host side's MAC is the guest's with 0xfe first, so a bridge (which takes
     * its lowest port MAC) never takes the tap's. */
    request.ifr_hwaddr.sa_data[0] = (char)0xfe;
    for (int i = 1; i < 6; i++)
        request.ifr_hwaddr.sa_data[i] = (char)bytes[i];
    int rc = 0;
    if (ioctl(sock, SIOCSIFHWADDR, &request) < 0) {
        rc = pv_error_set_errno(error, -errno, "cannot set the MAC address of tap '%s'", name);
        goto out;
    }
    if (interface->type == DOMAIN_INTERFACE_BRIDGE) {
        unsigned index = if_nametoindex(name);
        struct ifreq bridge = {0};
        snprintf(bridge.ifr_name, sizeof(bridge.ifr_name), "%s",
                 interface->source ? interface->source : "");
        bridge.ifr_ifindex = (int)index;
        if (index == 0 || ioctl(sock, SIOCBRADDIF, &bridge) < 0) {
            int code = index == 0 ? -ENODEV : -errno;
            if (code == -ENODEV || code == -EINVAL || code == -EOPNOTSUPP)
                rc = pv_error_set(error, code,
                                  "bridge '%s' does not exist (or is not a Linux bridge): "
                                  "create it first, e.g. 'ip link add %s type bridge'",
                                  bridge.ifr_name, bridge.ifr_name);
            else
                rc = pv_error_set_errno(error, code, "cannot add tap '%s' to bridge '%s'", name,
                                        bridge.ifr_name);
            goto out;
        }
    }
    struct ifreq flags = {0};
    snprintf(flags.ifr_name, sizeof(flags.ifr_name), "%s", name);
    if (ioctl(sock, SIOCGIFFLAGS, &flags) < 0) {
        rc = pv_error_set_errno(error, -errno, "cannot read the flags of tap '%s'", name);
        goto out;
    }
    flags.ifr_flags |= IFF_UP;
    if (ioctl(sock, SIOCSIFFLAGS, &flags) < 0)
        rc = pv_error_set_errno(error, -errno, "cannot set tap '%s' up", name);
out:
    close(sock);
    return rc;
}

int tap_device_open(const struct domain_interface *interface, struct tap_device *tap,
                    struct pv_error *error)
{
    *tap = (struct tap_device){0};
    unsigned queues = interface->queues ? interface->queues : 1;
    if (queues > DOMAIN_INTERFACE_MAX_QUEUES)
        return pv_error_set(error, -EINVAL, "at most %d queues", DOMAIN_INTERFACE_MAX_QUEUES);
    /* vnet headers: virtio-net passes offloads through them (QEMU's vnet_hdr=on). */
    short flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (queues > 1 ? IFF_MULTI_QUEUE : 0);
    const char *name = interface->target_dev ? interface->target_dev : TAP_DEVICE_NAME_TEMPLATE;
    if (strlen(name) >= IFNAMSIZ)
        return pv_error_set(error, -EINVAL, "tap name '%s' is longer than %d characters", name,
                            IFNAMSIZ - 1);
    if (!interface->target_managed && !tap_device_exists(name))
        return pv_error_set(error, -ENODEV,
                            "tap '%s' does not exist: <target managed='no'> uses an existing tap",
                            name);
    if (interface->target_managed && interface->target_dev && tap_device_exists(name))
        return pv_error_set(error, -EEXIST,
                            "a network interface named '%s' already exists: choose another "
                            "<target dev>, or use managed='no' to use that tap",
                            name);
    for (unsigned i = 0; i < queues; i++) {
        /* The later queues join the tap the first one made. */
        int fd = open_queue(i == 0 ? name : tap->name, flags, tap->name, error);
        if (fd < 0) {
            int rc = fd;
            tap_device_close(tap);
            return rc;
        }
        tap->fds[tap->fd_count++] = fd;
    }
    if (interface->target_managed) {
        int rc = configure(interface, tap->name, error);
        if (rc < 0) {
            tap_device_close(tap);
            return rc;
        }
    }
    return 0;
}

void tap_device_close(struct tap_device *tap)
{
    for (unsigned i = 0; i < tap->fd_count; i++)
        if (tap->fds[i] >= 0)
            close(tap->fds[i]);
    tap->fd_count = 0;
}

bool tap_device_exists(const char *name)
{
    return name && if_nametoindex(name) != 0;
}

int tap_device_delete(const char *name, struct pv_error *error)
{
    if (!tap_device_exists(name))
        return 0;
    char resolved[IFNAMSIZ];
    int fd = open_queue(name, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, resolved, error);
    if (fd < 0)
        return fd;
    int rc = 0;
    if (ioctl(fd, TUNSETPERSIST, 0) < 0)
        rc = pv_error_set_errno(error, -errno, "cannot delete tap '%s' (TUNSETPERSIST)", name);
    close(fd);
    return rc;
}

void tap_device_close_fds(int *fds, unsigned count)
{
    for (unsigned i = 0; fds && i < count; i++)
        close(fds[i]);
    free(fds);
}

int tap_device_open_definition(struct domain_definition *definition, int **fds, unsigned *count,
                               struct pv_error *error)
{
    *fds = NULL;
    *count = 0;
    unsigned total = 0;
    for (size_t i = 0; i < definition->interface_count; i++)
        total += definition->interfaces[i].queues ? definition->interfaces[i].queues : 1;
    if (total == 0)
        return 0;
    int *all = calloc(total, sizeof(*all));
    if (!all)
        return pv_error_set(error, -ENOMEM, "out of memory");
    unsigned used = 0;
    for (size_t i = 0; i < definition->interface_count; i++) {
        struct domain_interface *interface = &definition->interfaces[i];
        struct tap_device tap;
        int rc = tap_device_open(interface, &tap, error);
        char *name = rc == 0 && !interface->target_dev ? strdup(tap.name) : NULL;
        if (rc == 0 && !interface->target_dev && !name) {
            tap_device_close(&tap);
            rc = pv_error_set(error, -ENOMEM, "out of memory");
        }
        if (rc < 0) {
            tap_device_close_fds(all, used);
            return rc;
        }
        if (name)
            interface->target_dev = name;
        for (unsigned q = 0; q < tap.fd_count; q++)
            all[used++] = tap.fds[q];
    }
    *fds = all;
    *count = used;
    return 0;
}

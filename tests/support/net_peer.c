/* Host-side frame peer: namespaces, taps, AF_PACKET (see net_peer.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "net_peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int fail(struct net_peer_error *error, int rc, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct net_peer_error *error, int rc, const char *format, ...)
{
    if (error) {
        va_list arguments;
        va_start(arguments, format);
        vsnprintf(error->message, sizeof(error->message), format, arguments);
        va_end(arguments);
    }
    return rc;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int net_peer_enter_new_namespace(struct net_peer_error *error)
{
    if (unshare(CLONE_NEWNET) < 0) {
        int rc = -errno;
        return fail(error, rc, "unshare(CLONE_NEWNET) failed: %s (needs root or CAP_SYS_ADMIN)",
                    strerror(-rc));
    }
    return 0;
}

int net_peer_enter_namespace_of(pid_t pid, struct net_peer_error *error)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        return fail(error, rc, "cannot open %s: %s", path, strerror(-rc));
    }
    int rc = setns(fd, CLONE_NEWNET) < 0 ? -errno : 0;
    close(fd);
    if (rc < 0)
        return fail(error, rc, "setns(%s) failed: %s", path, strerror(-rc));
    return 0;
}

/* The kernel would otherwise send router solicitations and MLD reports on the
 * tap, which a test would see as frames it did not send. */
static int disable_ipv6(const char *name, struct net_peer_error *error)
{
    char path[128];
    snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0; /* no IPv6 in this kernel: nothing to silence */
        int rc = -errno;
        return fail(error, rc, "cannot open %s: %s", path, strerror(-rc));
    }
    int rc = write(fd, "1", 1) == 1 ? 0 : -errno;
    close(fd);
    if (rc < 0)
        return fail(error, rc, "cannot write %s: %s", path, strerror(-rc));
    return 0;
}

int net_peer_create_tap(const char *name, bool persist, struct net_peer_error *error)
{
    if (strlen(name) >= IFNAMSIZ)
        return fail(error, -EINVAL, "interface name '%s' is longer than %d characters", name,
                    IFNAMSIZ - 1);
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        return fail(error, rc, "cannot open /dev/net/tun: %s", strerror(-rc));
    }
    struct ifreq request = {0};
    snprintf(request.ifr_name, sizeof(request.ifr_name), "%s", name);
    request.ifr_flags = IFF_TAP | IFF_NO_PI;
    if (ioctl(fd, TUNSETIFF, &request) < 0) {
        int rc = -errno;
        close(fd);
        return fail(error, rc, "TUNSETIFF %s failed: %s", name, strerror(-rc));
    }
    if (persist && ioctl(fd, TUNSETPERSIST, 1) < 0) {
        int rc = -errno;
        close(fd);
        return fail(error, rc, "TUNSETPERSIST %s failed: %s", name, strerror(-rc));
    }
    int rc = disable_ipv6(name, error);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    if (!persist)
        return fd;
    close(fd);
    return 0;
}

int net_peer_delete_tap(const char *name, struct net_peer_error *error)
{
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        return fail(error, rc, "cannot open /dev/net/tun: %s", strerror(-rc));
    }
    struct ifreq request = {0};
    snprintf(request.ifr_name, sizeof(request.ifr_name), "%s", name);
    request.ifr_flags = IFF_TAP | IFF_NO_PI;
    int rc = 0;
    if (ioctl(fd, TUNSETIFF, &request) < 0 || ioctl(fd, TUNSETPERSIST, 0) < 0) {
        rc = -errno;
        fail(error, rc, "cannot delete tap %s: %s", name, strerror(-rc));
    }
    close(fd);
    return rc;
}

int net_peer_link_up(const char *name, struct net_peer_error *error)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int rc = -errno;
        return fail(error, rc, "socket(AF_INET) failed: %s", strerror(-rc));
    }
    struct ifreq request = {0};
    snprintf(request.ifr_name, sizeof(request.ifr_name), "%s", name);
    int rc = 0;
    if (ioctl(fd, SIOCGIFFLAGS, &request) < 0) {
        rc = -errno;
        fail(error, rc, "SIOCGIFFLAGS %s failed: %s", name, strerror(-rc));
    } else {
        request.ifr_flags |= IFF_UP;
        if (ioctl(fd, SIOCSIFFLAGS, &request) < 0) {
            rc = -errno;
            fail(error, rc, "cannot bring %s up: %s", name, strerror(-rc));
        }
    }
    close(fd);
    return rc;
}

int net_peer_set_mtu(const char *name, int mtu, struct net_peer_error *error)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int rc = -errno;
        return fail(error, rc, "socket(AF_INET) failed: %s", strerror(-rc));
    }
    struct ifreq request = {0};
    snprintf(request.ifr_name, sizeof(request.ifr_name), "%s", name);
    request.ifr_mtu = mtu;
    int rc = 0;
    if (ioctl(fd, SIOCSIFMTU, &request) < 0) {
        rc = -errno;
        fail(error, rc, "cannot set the MTU of %s to %d: %s", name, mtu, strerror(-rc));
    }
    close(fd);
    return rc;
}

int net_peer_open_packet(const char *name, struct net_peer_error *error)
{
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd < 0) {
        int rc = -errno;
        return fail(error, rc, "socket(AF_PACKET) failed: %s", strerror(-rc));
    }
    /* SIOCGIFINDEX rather than if_nametoindex: <net/if.h> clashes with <linux/if.h>. */
    struct ifreq request = {0};
    snprintf(request.ifr_name, sizeof(request.ifr_name), "%s", name);
    if (ioctl(fd, SIOCGIFINDEX, &request) < 0) {
        int rc = -errno;
        close(fd);
        return fail(error, rc, "no interface %s: %s", name, strerror(-rc));
    }
    int index = request.ifr_ifindex;
    /* Straight to the driver: a tap that QEMU has only just attached has its
     * carrier on at once, but its qdisc stays the dropping noop one until the
     * kernel's linkwatch work runs, which under load is late (frames lost). */
    int one = 1;
    if (setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0) {
        int rc = -errno;
        close(fd);
        return fail(error, rc, "PACKET_QDISC_BYPASS on %s failed: %s", name, strerror(-rc));
    }
    struct sockaddr_ll address = {
        .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = (int)index};
    if (bind(fd, (struct sockaddr *)&address, sizeof(address)) < 0) {
        int rc = -errno;
        close(fd);
        return fail(error, rc, "cannot bind a packet socket to %s: %s", name, strerror(-rc));
    }
    return fd;
}

int net_peer_send(int fd, const void *frame, size_t length, struct net_peer_error *error)
{
    ssize_t sent = send(fd, frame, length, 0);
    if (sent < 0) {
        int rc = -errno;
        return fail(error, rc, "sending a %zu-byte frame failed: %s", length, strerror(-rc));
    }
    if ((size_t)sent != length)
        return fail(error, -EIO, "sent %zd of %zu bytes", sent, length);
    return 0;
}

ssize_t net_peer_receive(int fd, uint16_t ether_type, void *frame, size_t size, int timeout_ms,
                         struct net_peer_error *error)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return fail(error, -ETIMEDOUT, "no frame%s within %d ms",
                        ether_type ? " of the expected EtherType" : "", timeout_ms);
        struct pollfd pfd = {fd, POLLIN, 0};
        int ready = poll(&pfd, 1, (int)left);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            int rc = -errno;
            return fail(error, rc, "poll failed: %s", strerror(-rc));
        }
        if (ready == 0)
            continue;
        struct sockaddr_ll from;
        socklen_t from_length = sizeof(from);
        ssize_t got = recvfrom(fd, frame, size, MSG_TRUNC, (struct sockaddr *)&from, &from_length);
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            int rc = -errno;
            return fail(error, rc, "recvfrom failed: %s", strerror(-rc));
        }
        if (from.sll_pkttype == PACKET_OUTGOING)
            continue; /* our own frame, on its way to the guest */
        if ((size_t)got > size)
            return fail(error, -EMSGSIZE, "a %zd-byte frame does not fit in %zu bytes", got, size);
        if (ether_type && (got < 14 || (((const uint8_t *)frame)[12] << 8 |
                                        ((const uint8_t *)frame)[13]) != ether_type))
            continue;
        return got;
    }
}

uint32_t net_peer_fnv1a(const void *data, size_t length)
{
    const uint8_t *bytes = data;
    uint32_t hash = 0x811c9dc5u;
    for (size_t i = 0; i < length; i++) {
        hash ^= bytes[i];
        hash *= 0x01000193u;
    }
    return hash;
}

size_t net_peer_build_frame(uint8_t *frame, const uint8_t destination[6], const uint8_t source[6],
                            uint16_t ether_type, size_t payload_length, uint32_t seed)
{
    memcpy(frame, destination, 6);
    memcpy(frame + 6, source, 6);
    frame[12] = (uint8_t)(ether_type >> 8);
    frame[13] = (uint8_t)ether_type;
    uint32_t state = seed * 2654435761u + 1;
    for (size_t i = 0; i < payload_length; i++) {
        state = state * 1103515245u + 12345u;
        frame[14 + i] = (uint8_t)(state >> 16);
    }
    return 14 + payload_length;
}

int net_peer_parse_mac(const char *text, uint8_t mac[6])
{
    unsigned values[6];
    char end;
    if (sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &values[0], &values[1], &values[2], &values[3],
               &values[4], &values[5], &end) != 6)
        return -EINVAL;
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)values[i];
    return 0;
}

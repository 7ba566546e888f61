/* The tap backend: -netdev tap with QEMU 7.2's keys, checks and messages (net/tap.c and
 * net/tap-linux.c there). Three ways to get the descriptors, as in QEMU: fd= (one
 * descriptor the caller already has), fds= (one per queue), or ifname= / nothing (open
 * /dev/net/tun ourselves, which needs CAP_NET_ADMIN, and run the up script). */
#include "net/net_tap.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_tun.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pv_log.h"

/* QEMU's defaults (DEFAULT_NETWORK_SCRIPT / DEFAULT_NETWORK_DOWN_SCRIPT with
 * sysconfdir=/etc, as distributions build it). */
#define NET_TAP_DEFAULT_SCRIPT "/etc/qemu-ifup"
#define NET_TAP_DEFAULT_DOWNSCRIPT "/etc/qemu-ifdown"
#define NET_TUN_PATH "/dev/net/tun"
#define NET_VHOST_PATH "/dev/vhost-net"

/* Which keys were given: QEMU's conflict checks are about presence, not values. */
struct tap_keys {
    const char *id; /* the netdev's, for QEMU's "<id>: Can't use file descriptor N" */
    const char *ifname, *fd, *fds, *script, *downscript, *helper, *br, *vhostfd, *vhostfds;
    bool has_vnet_hdr, vnet_hdr;
    bool has_queues;
    unsigned queues;
    bool has_sndbuf;
    uint64_t sndbuf;
    bool vhost, vhostforce, has_vhost;
    bool has_poll_us;
};

static bool script_disabled(const char *script)
{
    return !script || script[0] == '\0' || strcmp(script, "no") == 0;
}

static int read_keys(struct qemu_options *options, struct tap_keys *keys, struct pv_error *error)
{
    int rc;
    memset(keys, 0, sizeof(*keys));
    keys->id = qemu_options_get(options, "id");
    keys->ifname = qemu_options_get(options, "ifname");
    keys->fd = qemu_options_get(options, "fd");
    keys->fds = qemu_options_get(options, "fds");
    keys->script = qemu_options_get(options, "script");
    keys->downscript = qemu_options_get(options, "downscript");
    keys->helper = qemu_options_get(options, "helper");
    keys->br = qemu_options_get(options, "br");
    keys->vhostfd = qemu_options_get(options, "vhostfd");
    keys->vhostfds = qemu_options_get(options, "vhostfds");
    keys->has_vnet_hdr = qemu_options_find(options, "vnet_hdr") != NULL;
    if ((rc = qemu_options_get_bool(options, "vnet_hdr", true, &keys->vnet_hdr, error)) < 0)
        return rc;
    keys->has_queues = qemu_options_find(options, "queues") != NULL;
    if ((rc = qemu_options_get_unsigned(options, "queues", 1, &keys->queues, error)) < 0)
        return rc;
    keys->has_sndbuf = qemu_options_find(options, "sndbuf") != NULL;
    /* QEMU's sndbuf is a size ("sndbuf=1M" works on its command line). */
    if ((rc = qemu_options_get_size(options, "sndbuf", 1, 0, &keys->sndbuf, error)) < 0)
        return rc;
    keys->has_vhost = qemu_options_find(options, "vhost") != NULL;
    if ((rc = qemu_options_get_bool(options, "vhost", false, &keys->vhost, error)) < 0)
        return rc;
    if ((rc = qemu_options_get_bool(options, "vhostforce", false, &keys->vhostforce, error)) < 0)
        return rc;
    keys->has_poll_us = qemu_options_find(options, "poll-us") != NULL;
    return 0;
}

/* Keys QEMU has that plugvirt-vmm cannot honour yet: refused by name. */
static int refuse_unsupported(const struct tap_keys *keys, struct pv_error *error)
{
    if (keys->helper)
        return pv_error_set(error, -ENOTSUP,
                            "helper=: the bridge helper is not supported by plugvirt-vmm; create "
                            "the tap yourself and pass it with fd= (or use ifname= and script=)");
    if (keys->br)
        return pv_error_set(error, -ENOTSUP,
                            "br=: the bridge helper is not supported by plugvirt-vmm; attach the "
                            "tap to the bridge in script= or before passing it with fd=");
    if (keys->has_poll_us)
        return pv_error_set(error, -ENOTSUP,
                            "poll-us=: vhost-net busy polling is not supported by plugvirt-vmm");
    if (keys->vhostfd || keys->vhostfds)
        return pv_error_set(error, -ENOTSUP,
                            "%s=: vhost-net is not supported yet by plugvirt-vmm (the vhost data "
                            "path is not implemented); use vhost=off",
                            keys->vhostfd ? "vhostfd" : "vhostfds");
    return 0;
}

/* QEMU's checks of which keys go together (net_init_tap), with its messages. */
static int check_combinations(const struct tap_keys *keys, struct pv_error *error)
{
    if (keys->fd) {
        if (keys->ifname || keys->script || keys->downscript || keys->has_vnet_hdr ||
            keys->helper || keys->has_queues || keys->fds || keys->vhostfds)
            return pv_error_set(error, -EINVAL,
                                "ifname=, script=, downscript=, vnet_hdr=, helper=, queues=, "
                                "fds=, and vhostfds= are invalid with fd=");
    } else if (keys->fds) {
        if (keys->ifname || keys->script || keys->downscript || keys->has_vnet_hdr ||
            keys->helper || keys->has_queues || keys->vhostfd)
            return pv_error_set(error, -EINVAL,
                                "ifname=, script=, downscript=, vnet_hdr=, helper=, queues=, and "
                                "vhostfd= are invalid with fds=");
    } else if (keys->vhostfds) {
        return pv_error_set(error, -EINVAL, "vhostfds= is invalid if fds= wasn't specified");
    } else if (keys->queues < 1 || keys->queues > NET_TAP_MAX_QUEUES) {
        /* QEMU allows up to 1024 and crashes on 0. */
        return pv_error_set(error, -EINVAL, "queues=%u: plugvirt-vmm supports 1 to %d queues",
                            keys->queues, NET_TAP_MAX_QUEUES);
    }
    return 0;
}

/* vhost=on (or vhostforce) needs /dev/vhost-net. Checked before any tap is opened or script
 * run, so a refusal leaves nothing behind. */
static int check_vhost(const struct tap_keys *keys, struct pv_error *error)
{
    bool wanted = keys->has_vhost ? keys->vhost : keys->vhostforce;
    if (!wanted)
        return 0;
    int fd = open(NET_VHOST_PATH, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return pv_error_set_errno(error, -errno, "tap: open vhost char device failed");
    close(fd);
    return pv_error_set(error, -ENOTSUP,
                        "vhost=on: vhost-net is not supported yet by plugvirt-vmm (the vhost data "
                        "path is not implemented); use vhost=off");
}

/* QEMU's launch_script: the script gets the interface name, keeps the tap open, and must
 * exit 0. Only async-signal-safe calls in the child: the VMM has threads. */
static int run_script(const char *script, const char *ifname, int keep_fd, struct pv_error *error)
{
    pid_t pid = fork();
    if (pid < 0)
        return pv_error_set_errno(error, -errno, "could not launch network script %s", script);
    if (pid == 0) {
        if (keep_fd > 3)
            close_range(3, (unsigned)keep_fd - 1, 0);
        close_range(keep_fd >= 3 ? (unsigned)keep_fd + 1 : 3, ~0U, 0);
        char *const argv[] = {(char *)script, (char *)ifname, NULL};
        execv(script, argv);
        _exit(1);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return pv_error_set_errno(error, -errno, "network script %s: waitpid", script);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    return pv_error_set(error, -EIO, "network script %s failed with status %d", script, status);
}

static int set_nonblocking(int fd, const char *what, struct pv_error *error)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return pv_error_set_errno(error, -errno, "%s: Can't use file descriptor %d", what, fd);
    return 0;
}

/* QEMU's tap_open for Linux. `ifname` is in/out: empty asks the kernel for "tap%d". */
static int open_tun(char ifname[IFNAMSIZ], bool *vnet_hdr, bool vnet_hdr_required, bool multi_queue,
                    struct pv_error *error)
{
    int fd = open(NET_TUN_PATH, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return pv_error_set_errno(error, -errno, "could not open %s", NET_TUN_PATH);
    unsigned int features = 0;
    if (ioctl(fd, TUNGETFEATURES, &features) < 0) {
        pv_log_warning("TUNGETFEATURES failed: %s", strerror(errno));
        features = 0;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    if (*vnet_hdr) {
        *vnet_hdr = (features & IFF_VNET_HDR) != 0;
        if (*vnet_hdr)
            ifr.ifr_flags |= IFF_VNET_HDR;
        else if (vnet_hdr_required) {
            close(fd);
            return pv_error_set(
                error, -ENOTSUP,
                "vnet_hdr=1 requested, but no kernel support for IFF_VNET_HDR available");
        }
    }
    if (multi_queue) {
        if (!(features & IFF_MULTI_QUEUE)) {
            close(fd);
            return pv_error_set(
                error, -ENOTSUP,
                "multiqueue required, but no kernel support for IFF_MULTI_QUEUE available");
        }
        ifr.ifr_flags |= IFF_MULTI_QUEUE;
    }
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname[0] ? ifname : "tap%d");
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int rc = -errno;
        close(fd);
        if (ifname[0])
            return pv_error_set_errno(error, rc, "could not configure %s (%s)", NET_TUN_PATH,
                                      ifr.ifr_name);
        return pv_error_set_errno(error, rc, "could not configure %s", NET_TUN_PATH);
    }
    snprintf(ifname, IFNAMSIZ, "%s", ifr.ifr_name);
    int rc = set_nonblocking(fd, ifname, error);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

/* QEMU's tap_probe_vnet_hdr; also learns the interface name. */
static int probe_fd(int fd, char ifname[IFNAMSIZ], bool *vnet_hdr, struct pv_error *error)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    if (ioctl(fd, TUNGETIFF, &ifr) < 0)
        return pv_error_set_errno(error, -errno, "Unable to query TUNGETIFF on FD %d", fd);
    if (!(ifr.ifr_flags & IFF_TAP))
        return pv_error_set(error, -EINVAL, "fd=%d is a tun (layer 3) device, not a tap", fd);
    snprintf(ifname, IFNAMSIZ, "%s", ifr.ifr_name);
    *vnet_hdr = (ifr.ifr_flags & IFF_VNET_HDR) != 0;
    return 0;
}

/* QEMU's monitor_fd_param: a number is a descriptor this process already has, anything
 * else a getfd name. Either way the backend owns the descriptor from here on. */
static int resolve_fd(const char *text, net_tap_fd_lookup lookup, void *opaque,
                      struct pv_error *error)
{
    if (text[0] >= '0' && text[0] <= '9') {
        char *end;
        errno = 0;
        long value = strtol(text, &end, 10);
        if (errno || *end || value < 0 || value > INT_MAX)
            return pv_error_set(error, -EINVAL, "Invalid file descriptor number '%s'", text);
        return (int)value;
    }
    if (!lookup)
        return pv_error_set(error, -ENOENT, "File descriptor named '%s' has not been found", text);
    return lookup(opaque, text, error);
}

static int set_sndbuf(int fd, const struct tap_keys *keys, struct pv_error *error)
{
    int size = (keys->has_sndbuf && keys->sndbuf)
                   ? (int)(keys->sndbuf > INT_MAX ? INT_MAX : keys->sndbuf)
                   : INT_MAX;
    /* QEMU ignores the failure unless sndbuf= was asked for. */
    if (ioctl(fd, TUNSETSNDBUF, &size) < 0 && keys->has_sndbuf)
        return pv_error_set_errno(error, -errno, "TUNSETSNDBUF ioctl failed");
    return 0;
}

static void close_queues(struct net_tap *tap)
{
    for (unsigned i = 0; i < tap->queue_count; i++) {
        if (tap->fds[i] >= 0)
            close(tap->fds[i]);
        tap->fds[i] = -1;
    }
    tap->queue_count = 0;
}

static int adopt_fds(struct net_tap *tap, const struct tap_keys *keys, net_tap_fd_lookup lookup,
                     void *opaque, struct pv_error *error)
{
    char *list = strdup(keys->fd ? keys->fd : keys->fds);
    if (!list)
        return pv_error_set(error, -ENOMEM, "out of memory");
    int rc = 0;
    char *save = NULL;
    for (char *item = strtok_r(list, ":", &save); item; item = strtok_r(NULL, ":", &save)) {
        if (tap->queue_count == NET_TAP_MAX_QUEUES) {
            rc = pv_error_set(error, -EINVAL, "fds=: plugvirt-vmm supports at most %d queues",
                              NET_TAP_MAX_QUEUES);
            break;
        }
        int fd = resolve_fd(item, lookup, opaque, error);
        if (fd < 0) {
            rc = fd;
            break;
        }
        tap->fds[tap->queue_count++] = fd;
        if ((rc = set_nonblocking(fd, keys->id ? keys->id : item, error)) < 0)
            break;
        char ifname[IFNAMSIZ];
        bool vnet_hdr = false;
        if ((rc = probe_fd(fd, ifname, &vnet_hdr, error)) < 0)
            break;
        if (tap->queue_count == 1) {
            tap->vnet_hdr = vnet_hdr;
            memcpy(tap->ifname, ifname, IFNAMSIZ);
        } else if (vnet_hdr != tap->vnet_hdr) {
            rc = pv_error_set(error, -EINVAL, "vnet_hdr not consistent across given tap fds");
            break;
        }
        if ((rc = set_sndbuf(fd, keys, error)) < 0)
            break;
    }
    free(list);
    if (rc == 0 && tap->queue_count == 0)
        rc = pv_error_set(error, -EINVAL, "fds=: no file descriptor given");
    if (rc < 0)
        return rc;
    size_t length = (size_t)tap->queue_count * 16;
    tap->info = malloc(length);
    if (!tap->info)
        return pv_error_set(error, -ENOMEM, "out of memory");
    tap->info[0] = '\0';
    /* info network shows one line per queue, each "fd=N"; the lines are split by '\n'. */
    size_t used = 0;
    for (unsigned i = 0; i < tap->queue_count; i++)
        used += (size_t)snprintf(tap->info + used, length - used, "%sfd=%d", i ? "\n" : "",
                                 tap->fds[i]);
    return 0;
}

static int open_ifname(struct net_tap *tap, const struct tap_keys *keys, struct pv_error *error)
{
    const char *script = keys->script ? keys->script : NET_TAP_DEFAULT_SCRIPT;
    const char *downscript = keys->downscript ? keys->downscript : NET_TAP_DEFAULT_DOWNSCRIPT;
    snprintf(tap->ifname, IFNAMSIZ, "%s", keys->ifname ? keys->ifname : "");
    if (keys->ifname && strlen(keys->ifname) >= IFNAMSIZ)
        return pv_error_set(error, -EINVAL, "ifname=%s: longer than %d characters", keys->ifname,
                            IFNAMSIZ - 1);
    for (unsigned i = 0; i < keys->queues; i++) {
        bool vnet_hdr = keys->vnet_hdr;
        int fd = open_tun(tap->ifname, &vnet_hdr, keys->has_vnet_hdr && keys->vnet_hdr,
                          keys->queues > 1, error);
        if (fd < 0)
            return fd;
        tap->fds[tap->queue_count++] = fd;
        tap->vnet_hdr = vnet_hdr;
        int rc = set_sndbuf(fd, keys, error);
        if (rc < 0)
            return rc;
        /* As in QEMU, only the first queue runs the scripts. */
        if (i == 0 && !script_disabled(script) &&
            (rc = run_script(script, tap->ifname, fd, error)) < 0)
            return rc;
    }
    if (!script_disabled(downscript) && !(tap->downscript = strdup(downscript)))
        return pv_error_set(error, -ENOMEM, "out of memory");
    char *info = NULL;
    char *rest = NULL;
    if (asprintf(&info, "ifname=%s,script=%s,downscript=%s", tap->ifname, script, downscript) < 0)
        return pv_error_set(error, -ENOMEM, "out of memory");
    for (unsigned i = 1; i < keys->queues; i++) {
        if (asprintf(&rest, "%s\nifname=%s,script=no,downscript=no", info, tap->ifname) < 0) {
            free(info);
            return pv_error_set(error, -ENOMEM, "out of memory");
        }
        free(info);
        info = rest;
    }
    tap->info = info;
    return 0;
}

int net_tap_check(struct qemu_options *options, struct pv_error *error)
{
    struct tap_keys keys;
    int rc = read_keys(options, &keys, error);
    if (rc < 0 || (rc = refuse_unsupported(&keys, error)) < 0)
        return rc;
    return check_combinations(&keys, error);
}

int net_tap_open(struct net_tap *tap, struct qemu_options *options, net_tap_fd_lookup lookup,
                 void *lookup_opaque, struct pv_error *error)
{
    memset(tap, 0, sizeof(*tap));
    for (unsigned i = 0; i < NET_TAP_MAX_QUEUES; i++)
        tap->fds[i] = -1;
    struct tap_keys keys;
    int rc = read_keys(options, &keys, error);
    if (rc < 0 || (rc = refuse_unsupported(&keys, error)) < 0 ||
        (rc = check_combinations(&keys, error)) < 0 || (rc = check_vhost(&keys, error)) < 0)
        return rc;
    if (keys.fd || keys.fds)
        rc = adopt_fds(tap, &keys, lookup, lookup_opaque, error);
    else
        rc = open_ifname(tap, &keys, error);
    if (rc < 0) {
        /* Nothing was announced yet: no downscript, as QEMU on a failed netdev_add. */
        free(tap->downscript);
        tap->downscript = NULL;
        close_queues(tap);
        free(tap->info);
        tap->info = NULL;
    }
    return rc;
}

void net_tap_close(struct net_tap *tap)
{
    if (tap->downscript && tap->queue_count > 0) {
        struct pv_error error = {0};
        if (run_script(tap->downscript, tap->ifname, tap->fds[0], &error) < 0)
            pv_log_warning("%s", error.message);
    }
    close_queues(tap);
    free(tap->downscript);
    tap->downscript = NULL;
    free(tap->info);
    tap->info = NULL;
}

ssize_t net_tap_writev(struct net_tap *tap, unsigned queue, const struct iovec *iov, int count)
{
    ssize_t written;
    do
        written = writev(tap->fds[queue], iov, count);
    while (written < 0 && errno == EINTR);
    return written < 0 ? -errno : written;
}

ssize_t net_tap_readv(struct net_tap *tap, unsigned queue, const struct iovec *iov, int count)
{
    ssize_t got;
    do
        got = readv(tap->fds[queue], iov, count);
    while (got < 0 && errno == EINTR);
    return got < 0 ? -errno : got;
}

int net_tap_set_vnet_hdr_len(struct net_tap *tap, int length, struct pv_error *error)
{
    if (!tap->vnet_hdr)
        return pv_error_set(error, -ENOTSUP, "tap %s was opened without IFF_VNET_HDR", tap->ifname);
    for (unsigned i = 0; i < tap->queue_count; i++) {
        if (ioctl(tap->fds[i], TUNSETVNETHDRSZ, &length) < 0)
            return pv_error_set_errno(error, -errno, "TUNSETVNETHDRSZ ioctl() failed on %s",
                                      tap->ifname);
    }
    return 0;
}

int net_tap_set_offload(struct net_tap *tap, unsigned flags, struct pv_error *error)
{
    for (unsigned i = 0; i < tap->queue_count; i++) {
        if (ioctl(tap->fds[i], TUNSETOFFLOAD, (unsigned long)flags) < 0)
            return pv_error_set_errno(error, -errno, "TUNSETOFFLOAD ioctl() failed on %s",
                                      tap->ifname);
    }
    return 0;
}

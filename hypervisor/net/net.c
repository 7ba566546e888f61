/* The network layer: netdevs by id, descriptors named by getfd, and the NICs peered with
 * netdevs (see net.h). QEMU keeps every queue of every netdev and NIC in one list of "net
 * clients"; here a netdev is one record with its queues and a NIC one record, and a creation
 * sequence number keeps info network in QEMU's order. */
#include "net/net.h"

#include <ctype.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json_util.h"
#include "net/net_tap.h"

_Static_assert(NET_MAX_QUEUES == NET_TAP_MAX_QUEUES, "a backend's queues are its tap's");

struct net_named_fd {
    char *name;
    int fd;
    struct net_named_fd *next;
};

struct net_netdev {
    char *id;
    unsigned long sequence;
    struct net_tap tap;
    atomic_bool link_up;      /* set_link on the netdev */
    struct net_backend *peer; /* the NIC, or NULL */
    struct net_netdev *next;
};

struct net_queue_counters {
    atomic_uint_fast64_t tx_packets, tx_bytes, tx_dropped;
    atomic_uint_fast64_t rx_packets, rx_bytes, rx_dropped;
};

struct net_backend {
    struct net_layer *layer;
    struct net_netdev *netdev; /* NULL: a NIC without netdev= (frames go nowhere) */
    char *name;
    char *model;
    /* The MAC in the low 48 bits: the guest changes it from an I/O or vCPU thread (control
     * queue, reset) while info network reads it on the main thread. */
    _Atomic uint64_t mac_bits;
    const struct net_nic_ops *ops;
    void *opaque;
    unsigned long sequence;
    atomic_bool link_up; /* set_link on the NIC (or on its netdev) */
    struct net_queue_counters counters[NET_MAX_QUEUES];
    struct net_backend *next;
};

struct net_layer {
    struct net_netdev *netdevs;
    struct net_backend *nics;
    struct net_named_fd *named_fds;
    unsigned long next_sequence;
};

/* QEMU's netdev types: named so that a refusal says "not supported" rather than "unknown". */
static uint64_t mac_to_bits(const uint8_t mac[6])
{
    uint64_t bits = 0;
    for (int i = 0; i < 6; i++)
        bits = bits << 8 | mac[i];
    return bits;
}

static void mac_from_bits(uint64_t bits, uint8_t mac[6])
{
    for (int i = 5; i >= 0; i--, bits >>= 8)
        mac[i] = (uint8_t)bits;
}

static const char *const other_types[] = {
    "user",  "bridge",     "socket",     "vde",          "l2tpv3",        "stream",
    "dgram", "vhost-user", "hubport",    "vhost-vdpa",   "netmap",        "none",
    "nic",   "af-xdp",     "vmnet-host", "vmnet-shared", "vmnet-bridged",
};

struct net_layer *net_layer_create(void)
{
    return calloc(1, sizeof(struct net_layer));
}

static void free_netdev(struct net_netdev *netdev)
{
    net_tap_close(&netdev->tap);
    free(netdev->id);
    free(netdev);
}

void net_layer_destroy(struct net_layer *layer)
{
    if (!layer)
        return;
    /* NICs should be gone; if one is not, it must not keep a pointer into freed memory. */
    for (struct net_backend *nic = layer->nics; nic; nic = nic->next) {
        if (nic->netdev)
            nic->netdev->peer = NULL;
        nic->netdev = NULL;
        nic->layer = NULL;
    }
    while (layer->netdevs) {
        struct net_netdev *next = layer->netdevs->next;
        free_netdev(layer->netdevs);
        layer->netdevs = next;
    }
    while (layer->named_fds) {
        struct net_named_fd *next = layer->named_fds->next;
        close(layer->named_fds->fd);
        free(layer->named_fds->name);
        free(layer->named_fds);
        layer->named_fds = next;
    }
    free(layer);
}

static struct net_netdev *find_netdev(struct net_layer *layer, const char *id)
{
    for (struct net_netdev *netdev = layer->netdevs; netdev; netdev = netdev->next) {
        if (strcmp(netdev->id, id) == 0)
            return netdev;
    }
    return NULL;
}

static struct net_backend *find_nic(struct net_layer *layer, const char *name)
{
    for (struct net_backend *nic = layer->nics; nic; nic = nic->next) {
        if (strcmp(nic->name, name) == 0)
            return nic;
    }
    return NULL;
}

bool net_netdev_exists(struct net_layer *layer, const char *id)
{
    return find_netdev(layer, id) != NULL;
}

bool net_netdev_has_nic(struct net_layer *layer, const char *id)
{
    struct net_netdev *netdev = find_netdev(layer, id);
    return netdev && netdev->peer;
}

/* QEMU's id_wellformed: a letter, then letters, digits, '-', '.', '_'. */
static bool id_wellformed(const char *id)
{
    if (!isalpha((unsigned char)id[0]))
        return false;
    for (const char *c = id + 1; *c; c++) {
        if (!isalnum((unsigned char)*c) && !strchr("-._", *c))
            return false;
    }
    return true;
}

static int take_named_fd(void *opaque, const char *name, struct pv_error *error)
{
    struct net_layer *layer = opaque;
    for (struct net_named_fd **link = &layer->named_fds; *link; link = &(*link)->next) {
        struct net_named_fd *entry = *link;
        if (strcmp(entry->name, name) == 0) {
            int fd = entry->fd;
            *link = entry->next;
            free(entry->name);
            free(entry);
            return fd;
        }
    }
    return pv_error_set(error, -ENOENT, "File descriptor named '%s' has not been found", name);
}

static bool is_tap_key(const char *key)
{
    static const char *const tap_keys[] = {
        "ifname",   "fd",         "fds",    "script", "downscript",
        "vnet_hdr", "sndbuf",     "queues", "vhost",  "vhostfd",
        "vhostfds", "vhostforce", "helper", "br",     "poll-us",
    };
    for (size_t k = 0; k < sizeof(tap_keys) / sizeof(tap_keys[0]); k++) {
        if (strcmp(key, tap_keys[k]) == 0)
            return true;
    }
    return false;
}

int net_netdev_check(struct qemu_options *options, enum net_syntax syntax, struct pv_error *error)
{
    /* QEMU's order: the id first, then the type, then the type's members. */
    const char *id = qemu_options_get(options, "id");
    if (!id)
        return pv_error_set(error, -EINVAL, "Parameter 'id' is missing");
    const char *type = qemu_options_get(options, "type");
    /* QMP netdev_add without "type" means tap, as it did in QEMU before 6.0 and as the
     * recipes users follow still write it; the command line keeps QEMU 7.2's rule. */
    if (!type && syntax == NET_SYNTAX_QMP)
        type = "tap";
    if (!type)
        return pv_error_set(error, -EINVAL, "Parameter 'type' is missing");
    if (strcmp(type, "tap") != 0) {
        for (size_t i = 0; i < sizeof(other_types) / sizeof(other_types[0]); i++) {
            if (strcmp(type, other_types[i]) == 0)
                return pv_error_set(error, -ENOTSUP,
                                    "netdev type '%s' is not supported by plugvirt-vmm (only "
                                    "tap)",
                                    type);
        }
        return pv_error_set(error, -EINVAL, "Parameter 'type' does not accept value '%s'", type);
    }
    if (!id_wellformed(id))
        return pv_error_set(error, -EINVAL, "Parameter 'id' expects an identifier");
    /* Unknown keys before anything is opened, so a typo costs no tap and runs no script. */
    for (size_t i = 0; i < options->count; i++) {
        struct qemu_option *option = &options->items[i];
        if (option->used || is_tap_key(option->key))
            continue;
        if (syntax == NET_SYNTAX_QMP)
            return pv_error_set(error, -EINVAL, "Parameter '%s' is unexpected", option->key);
        return pv_error_set(error, -EINVAL, "Invalid parameter '%s'", option->key);
    }
    return net_tap_check(options, error);
}

int net_netdev_add(struct net_layer *layer, struct qemu_options *options, enum net_syntax syntax,
                   struct pv_error *error)
{
    int rc = net_netdev_check(options, syntax, error);
    if (rc < 0)
        return rc;
    const char *id = qemu_options_get(options, "id");
    if (find_netdev(layer, id))
        return pv_error_set(error, -EEXIST, "Duplicate ID '%s'%s", id,
                            syntax == NET_SYNTAX_QMP ? "" : " for netdev");
    struct net_netdev *netdev = calloc(1, sizeof(*netdev));
    if (!netdev || !(netdev->id = strdup(id))) {
        free(netdev);
        return pv_error_set(error, -ENOMEM, "out of memory");
    }
    rc = net_tap_open(&netdev->tap, options, take_named_fd, layer, error);
    if (rc < 0) {
        free(netdev->id);
        free(netdev);
        return rc;
    }
    atomic_init(&netdev->link_up, true);
    netdev->sequence = layer->next_sequence++;
    struct net_netdev **tail = &layer->netdevs;
    while (*tail)
        tail = &(*tail)->next;
    *tail = netdev;
    return 0;
}

int net_netdev_del(struct net_layer *layer, const char *id, struct pv_error *error)
{
    struct net_netdev **link = &layer->netdevs;
    while (*link && strcmp((*link)->id, id) != 0)
        link = &(*link)->next;
    if (!*link)
        return pv_error_set(error, -ENODEV, "Device '%s' not found", id);
    struct net_netdev *netdev = *link;
    /* QEMU would close the tap under the NIC and keep a placeholder until the NIC goes;
     * here the NIC's I/O threads use the descriptors, so the order is device_del first. */
    if (netdev->peer)
        return pv_error_set(error, -EBUSY,
                            "netdev '%s' is in use by device '%s': remove the device first "
                            "(device_del %s)",
                            id, netdev->peer->name, netdev->peer->name);
    *link = netdev->next;
    free_netdev(netdev);
    return 0;
}

int net_layer_add_named_fd(struct net_layer *layer, const char *name, int fd,
                           struct pv_error *error)
{
    if (isdigit((unsigned char)name[0])) {
        close(fd);
        return pv_error_set(error, -EINVAL,
                            "Parameter 'fdname' expects a name not starting with a digit");
    }
    for (struct net_named_fd *entry = layer->named_fds; entry; entry = entry->next) {
        if (strcmp(entry->name, name) == 0) {
            /* QEMU's getfd: the old descriptor is closed, the name now means the new one. */
            close(entry->fd);
            entry->fd = fd;
            return 0;
        }
    }
    struct net_named_fd *entry = calloc(1, sizeof(*entry));
    if (!entry || !(entry->name = strdup(name))) {
        free(entry);
        close(fd);
        return pv_error_set(error, -ENOMEM, "out of memory");
    }
    entry->fd = fd;
    entry->next = layer->named_fds;
    layer->named_fds = entry;
    return 0;
}

int net_layer_close_named_fd(struct net_layer *layer, const char *name, struct pv_error *error)
{
    for (struct net_named_fd **link = &layer->named_fds; *link; link = &(*link)->next) {
        struct net_named_fd *entry = *link;
        if (strcmp(entry->name, name) == 0) {
            *link = entry->next;
            close(entry->fd);
            free(entry->name);
            free(entry);
            return 0;
        }
    }
    return pv_error_set(error, -ENOENT, "File descriptor named '%s' not found", name);
}

bool net_layer_has_named_fd(struct net_layer *layer, const char *name)
{
    for (struct net_named_fd *entry = layer->named_fds; entry; entry = entry->next) {
        if (strcmp(entry->name, name) == 0)
            return true;
    }
    return false;
}

static void notify_link(struct net_backend *nic)
{
    if (nic->ops && nic->ops->set_link)
        nic->ops->set_link(nic->opaque, atomic_load(&nic->link_up));
}

int net_layer_set_link(struct net_layer *layer, const char *name, bool up, struct pv_error *error)
{
    /* As QEMU's qmp_set_link: on a NIC only the NIC's side changes; on a netdev the netdev
     * and its NIC change, and the NIC tells the guest. */
    struct net_backend *nic = find_nic(layer, name);
    if (nic) {
        atomic_store(&nic->link_up, up);
        notify_link(nic);
        return 0;
    }
    struct net_netdev *netdev = find_netdev(layer, name);
    if (!netdev)
        return pv_error_set(error, -ENODEV, "Device '%s' not found", name);
    atomic_store(&netdev->link_up, up);
    if (netdev->peer) {
        atomic_store(&netdev->peer->link_up, up);
        notify_link(netdev->peer);
    }
    return 0;
}

int net_layer_query_rx_filter(struct net_layer *layer, const char *name, struct json_writer *writer,
                              struct pv_error *error)
{
    if (name) {
        struct net_backend *nic = find_nic(layer, name);
        if (!nic) {
            if (find_netdev(layer, name))
                return pv_error_set(error, -EINVAL, "net client(%s) isn't a NIC", name);
            return pv_error_set(error, -ENOENT, "invalid net client name: %s", name);
        }
        if (!nic->ops || !nic->ops->query_rx_filter)
            return pv_error_set(error, -ENOTSUP,
                                "net client(%s) doesn't support rx-filter querying", name);
    }
    json_writer_begin_array(writer);
    for (struct net_backend *nic = layer->nics; nic; nic = nic->next) {
        if (name && strcmp(nic->name, name) != 0)
            continue;
        if (nic->ops && nic->ops->query_rx_filter)
            nic->ops->query_rx_filter(nic->opaque, writer);
    }
    json_writer_end_array(writer);
    return 0;
}

/* One line per queue of `info` ("a\nb"), each "<name>: index=<i>,type=<type>,<line>". */
static int append_client(FILE *out, const char *prefix, const char *name, bool count_index,
                         const char *type, const char *info, unsigned queue)
{
    const char *line = info;
    for (unsigned i = 0; i < queue && line; i++) {
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    if (!line)
        line = "";
    int length = (int)strcspn(line, "\n");
    return fprintf(out, "%s%s: index=%u,type=%s,%.*s\n", prefix, name, count_index ? queue : 0,
                   type, length, line);
}

static void format_mac(const uint8_t mac[6], char text[NET_MAC_STRING_LENGTH + 1])
{
    snprintf(text, NET_MAC_STRING_LENGTH + 1, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1],
             mac[2], mac[3], mac[4], mac[5]);
}

char *net_layer_info_network(struct net_layer *layer)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    if (!out)
        return NULL;
    /* QEMU prints its clients in creation order: a NIC with its netdev under it (a NIC
     * queue per netdev queue), a netdev without NIC on its own. */
    struct net_netdev *netdev = layer->netdevs;
    struct net_backend *nic = layer->nics;
    while (netdev || nic) {
        while (netdev && netdev->peer)
            netdev = netdev->next;
        if (!netdev && !nic)
            break;
        if (nic && (!netdev || nic->sequence < netdev->sequence)) {
            char mac[NET_MAC_STRING_LENGTH + 1];
            uint8_t mac_bytes[6];
            mac_from_bits(atomic_load(&nic->mac_bits), mac_bytes);
            format_mac(mac_bytes, mac);
            char nic_info[128];
            snprintf(nic_info, sizeof(nic_info), "model=%s,macaddr=%s", nic->model, mac);
            unsigned queues = nic->netdev ? nic->netdev->tap.queue_count : 1;
            for (unsigned q = 0; q < queues; q++) {
                /* Every NIC queue shows the same description, under its own index. */
                fprintf(out, "%s: index=%u,type=nic,%s\n", nic->name, q, nic_info);
                if (nic->netdev)
                    append_client(out, " \\ ", nic->netdev->id, false, "tap", nic->netdev->tap.info,
                                  q);
            }
            nic = nic->next;
        } else if (netdev) {
            for (unsigned q = 0; q < netdev->tap.queue_count; q++)
                append_client(out, "", netdev->id, false, "tap", netdev->tap.info, q);
            netdev = netdev->next;
        }
    }
    if (fclose(out) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

struct net_backend *net_backend_attach(struct net_layer *layer, const char *netdev_id,
                                       const char *property, const struct net_nic_info *info,
                                       struct pv_error *error)
{
    struct net_netdev *netdev = NULL;
    if (netdev_id) {
        netdev = find_netdev(layer, netdev_id);
        if (!netdev) {
            pv_error_set(error, -ENOENT, "Property '%s' can't find value '%s'", property,
                         netdev_id);
            return NULL;
        }
        if (netdev->peer) {
            pv_error_set(error, -EBUSY, "Property '%s' can't take value '%s', it's in use",
                         property, netdev_id);
            return NULL;
        }
    }
    struct net_backend *nic = calloc(1, sizeof(*nic));
    if (!nic || !(nic->name = strdup(info->name)) || !(nic->model = strdup(info->model))) {
        if (nic)
            free(nic->name);
        free(nic);
        pv_error_set(error, -ENOMEM, "out of memory");
        return NULL;
    }
    nic->layer = layer;
    nic->netdev = netdev;
    atomic_init(&nic->mac_bits, mac_to_bits(info->mac));
    nic->ops = info->ops;
    nic->opaque = info->opaque;
    nic->sequence = layer->next_sequence++;
    /* A netdev whose link was set down before the NIC came keeps it down for the NIC too. */
    atomic_init(&nic->link_up, netdev ? atomic_load(&netdev->link_up) : true);
    if (netdev)
        netdev->peer = nic;
    struct net_backend **tail = &layer->nics;
    while (*tail)
        tail = &(*tail)->next;
    *tail = nic;
    return nic;
}

void net_backend_release(struct net_backend *backend)
{
    if (!backend)
        return;
    if (backend->netdev)
        backend->netdev->peer = NULL;
    if (backend->layer) {
        for (struct net_backend **link = &backend->layer->nics; *link; link = &(*link)->next) {
            if (*link == backend) {
                *link = backend->next;
                break;
            }
        }
    }
    free(backend->name);
    free(backend->model);
    free(backend);
}

unsigned net_backend_queue_count(struct net_backend *backend)
{
    return backend->netdev ? backend->netdev->tap.queue_count : 1;
}

int net_backend_queue_fd(struct net_backend *backend, unsigned queue)
{
    if (!backend->netdev || queue >= backend->netdev->tap.queue_count)
        return -1;
    return backend->netdev->tap.fds[queue];
}

bool net_backend_link_up(struct net_backend *backend)
{
    return atomic_load(&backend->link_up);
}

bool net_backend_has_vnet_hdr(struct net_backend *backend)
{
    return backend->netdev && backend->netdev->tap.vnet_hdr;
}

int net_backend_set_vnet_hdr_len(struct net_backend *backend, int length, struct pv_error *error)
{
    if (length != 10 && length != 12)
        return pv_error_set(error, -EINVAL, "virtio-net header length %d (must be 10 or 12)",
                            length);
    if (!backend->netdev)
        return pv_error_set(error, -ENOTSUP, "NIC '%s' has no netdev", backend->name);
    return net_tap_set_vnet_hdr_len(&backend->netdev->tap, length, error);
}

int net_backend_set_offload(struct net_backend *backend, unsigned tun_flags, struct pv_error *error)
{
    if (!backend->netdev)
        return pv_error_set(error, -ENOTSUP, "NIC '%s' has no netdev", backend->name);
    return net_tap_set_offload(&backend->netdev->tap, tun_flags, error);
}

static size_t iov_length(const struct iovec *iov, int count)
{
    size_t total = 0;
    for (int i = 0; i < count; i++)
        total += iov[i].iov_len;
    return total;
}

static bool path_up(struct net_backend *backend)
{
    return atomic_load(&backend->link_up) && backend->netdev &&
           atomic_load(&backend->netdev->link_up);
}

ssize_t net_backend_send(struct net_backend *backend, unsigned queue, const struct iovec *iov,
                         int iov_count)
{
    if (queue >= net_backend_queue_count(backend))
        return -EINVAL;
    struct net_queue_counters *counters = &backend->counters[queue];
    if (!path_up(backend)) {
        /* QEMU's qemu_send_packet: a down link (or no peer) swallows the frame. */
        atomic_fetch_add(&counters->tx_dropped, 1);
        return (ssize_t)iov_length(iov, iov_count);
    }
    ssize_t written = net_tap_writev(&backend->netdev->tap, queue, iov, iov_count);
    if (written >= 0) {
        atomic_fetch_add(&counters->tx_packets, 1);
        atomic_fetch_add(&counters->tx_bytes, (uint_fast64_t)written);
    } else if (written != -EAGAIN) {
        atomic_fetch_add(&counters->tx_dropped, 1);
    }
    return written;
}

ssize_t net_backend_receive(struct net_backend *backend, unsigned queue, const struct iovec *iov,
                            int iov_count)
{
    if (queue >= net_backend_queue_count(backend))
        return -EINVAL;
    if (!backend->netdev)
        return -EAGAIN;
    struct net_queue_counters *counters = &backend->counters[queue];
    for (;;) {
        ssize_t got = net_tap_readv(&backend->netdev->tap, queue, iov, iov_count);
        if (got < 0)
            return got;
        if (path_up(backend)) {
            atomic_fetch_add(&counters->rx_packets, 1);
            atomic_fetch_add(&counters->rx_bytes, (uint_fast64_t)got);
            return got;
        }
        /* Link down: the frame is read and dropped, so the tap does not fill up. */
        atomic_fetch_add(&counters->rx_dropped, 1);
    }
}

void net_backend_get_counters(struct net_backend *backend, unsigned queue, struct net_counters *out)
{
    memset(out, 0, sizeof(*out));
    if (queue >= NET_MAX_QUEUES)
        return;
    struct net_queue_counters *counters = &backend->counters[queue];
    out->tx_packets = atomic_load(&counters->tx_packets);
    out->tx_bytes = atomic_load(&counters->tx_bytes);
    out->tx_dropped = atomic_load(&counters->tx_dropped);
    out->rx_packets = atomic_load(&counters->rx_packets);
    out->rx_bytes = atomic_load(&counters->rx_bytes);
    out->rx_dropped = atomic_load(&counters->rx_dropped);
}

void net_backend_set_nic_mac(struct net_backend *backend, const uint8_t mac[6])
{
    atomic_store(&backend->mac_bits, mac_to_bits(mac));
}

const char *net_backend_ifname(struct net_backend *backend)
{
    return backend->netdev ? backend->netdev->tap.ifname : NULL;
}

int net_parse_mac(const char *text, uint8_t mac[6])
{
    /* QEMU's macaddr property: six pairs of hex digits separated by ':' or '-'. */
    if (strlen(text) != NET_MAC_STRING_LENGTH)
        return -EINVAL;
    for (int i = 0; i < 6; i++) {
        const char *pair = text + i * 3;
        if (!isxdigit((unsigned char)pair[0]) || !isxdigit((unsigned char)pair[1]))
            return -EINVAL;
        if (i < 5 && pair[2] != ':' && pair[2] != '-')
            return -EINVAL;
        char digits[3] = {pair[0], pair[1], '\0'};
        mac[i] = (uint8_t)strtoul(digits, NULL, 16);
    }
    return 0;
}

void net_default_mac(unsigned index, uint8_t mac[6])
{
    static const uint8_t base[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    memcpy(mac, base, 6);
    mac[5] = (uint8_t)(0x56 + index);
}

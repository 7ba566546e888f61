/* The network layer, its tap backend and its monitor commands, on real tap devices.
 *
 * Every test runs in its own network namespace (Criterion forks each test; the init calls
 * unshare(CLONE_NEWNET)), so the taps it makes never touch the host's interfaces. Frames go
 * through net_backend_send/receive against an AF_PACKET socket on the tap; descriptors go
 * through a real socketpair with SCM_RIGHTS into QMP getfd.
 *
 * Error texts marked "QEMU 7.2" were produced by
 *   unshare -n qemu-system-x86_64 -M pc -accel tcg -nographic -nodefaults -qmp stdio
 * with the QMP command shown next to each (or -monitor stdio for HMP). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block.h"
#include "device_registry.h"
#include "io_bus.h"
#include "machine_pc.h"
#include "json_util.h"
#include "monitor/monitor_hmp.h"
#include "monitor/monitor_qmp.h"
#include "monitor/qmp_commands.h"
#include "net/net.h"
#include "pci/pci.h"
#include "qemu_options.h"
#include "vm.h"
#include "vmm_config.h"
#include "cmdline.h"

#define TEST_ETHERTYPE 0x88b5 /* IEEE local experimental: nothing else sends it */
#define WAIT_MS 10000         /* bound for an event that must come */

static struct net_layer *layer;
static struct vm fake_vm;
static char directory[] = "/tmp/pv-net-XXXXXX";

static void setup(void)
{
    if (access("/dev/net/tun", R_OK | W_OK) != 0)
        cr_skip_test("/dev/net/tun is not available: %s", strerror(errno));
    if (unshare(CLONE_NEWNET) != 0)
        cr_skip_test("cannot make a network namespace (unshare(CLONE_NEWNET)): %s",
                     strerror(errno));
    layer = net_layer_create();
    cr_assert_not_null(layer);
    memset(&fake_vm, 0, sizeof(fake_vm));
    fake_vm.net_layer = layer;
    cr_assert_not_null(mkdtemp(directory));
}

static void teardown(void)
{
    net_layer_destroy(layer);
    layer = NULL;
    char command[128];
    snprintf(command, sizeof(command), "rm -rf %s", directory);
    cr_assert_eq(system(command), 0);
}

TestSuite(net, .init = setup, .fini = teardown);

static int netdev_add(const char *text, struct pv_error *error)
{
    struct qemu_options options;
    cr_assert_eq(qemu_options_parse(&options, text, "type", 0, NULL), 0);
    int rc = net_netdev_add(layer, &options, NET_SYNTAX_COMMAND_LINE, error);
    qemu_options_free(&options);
    return rc;
}

static void expect_add_error(const char *text, const char *message)
{
    struct pv_error error = {0};
    cr_assert_lt(netdev_add(text, &error), 0, "%s was accepted", text);
    cr_assert_str_eq(error.message, message, "%s: %s", text, error.message);
}

static void set_up(const char *ifname)
{
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(sock, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
    cr_assert_eq(ioctl(sock, SIOCGIFFLAGS, &ifr), 0);
    ifr.ifr_flags |= IFF_UP;
    cr_assert_eq(ioctl(sock, SIOCSIFFLAGS, &ifr), 0, "%s up: %s", ifname, strerror(errno));
    close(sock);
}

static int packet_socket(const char *ifname)
{
    int sock = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(TEST_ETHERTYPE));
    cr_assert_geq(sock, 0, "AF_PACKET: %s", strerror(errno));
    struct sockaddr_ll address = {
        .sll_family = AF_PACKET,
        .sll_protocol = htons(TEST_ETHERTYPE),
        .sll_ifindex = (int)if_nametoindex(ifname),
    };
    cr_assert_neq(address.sll_ifindex, 0);
    cr_assert_eq(bind(sock, (struct sockaddr *)&address, sizeof(address)), 0);
    return sock;
}

static void wait_readable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int ready;
    do
        ready = poll(&pfd, 1, WAIT_MS);
    while (ready < 0 && errno == EINTR);
    cr_assert_eq(ready, 1, "no frame within %d ms", WAIT_MS);
}

/* A broadcast frame of our ethertype whose payload starts with `tag`. */
static size_t make_frame(uint8_t *frame, uint8_t tag)
{
    memset(frame, 0xff, 6);
    const uint8_t source[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    memcpy(frame + 6, source, 6);
    frame[12] = TEST_ETHERTYPE >> 8;
    frame[13] = TEST_ETHERTYPE & 0xff;
    memset(frame + 14, tag, 46);
    return 60;
}

static int link_calls, link_last;
static void nic_set_link(void *opaque, bool up)
{
    link_calls++;
    link_last = up;
}
static void nic_query_rx_filter(void *opaque, struct json_writer *writer)
{
    json_writer_begin_object(writer);
    json_writer_member_string(writer, "name", opaque);
    json_writer_end_object(writer);
}
static const struct net_nic_ops nic_ops = {.set_link = nic_set_link,
                                           .query_rx_filter = nic_query_rx_filter};
static const uint8_t nic_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

static struct net_backend *attach(const char *netdev, const char *name, struct pv_error *error)
{
    struct net_nic_info info = {.name = name,
                                .model = "virtio-net-pci",
                                .mac = nic_mac,
                                .ops = &nic_ops,
                                .opaque = (void *)name};
    return net_backend_attach(layer, netdev, "virtio-net-pci.netdev", &info, error);
}

Test(net, tap_by_ifname_appears_and_goes)
{
    struct pv_error error = {0};
    cr_assert_eq(netdev_add("tap,id=n0,ifname=pvt0,script=no,downscript=no", &error), 0, "%s",
                 error.message);
    cr_assert_neq(if_nametoindex("pvt0"), 0);
    cr_assert(net_netdev_exists(layer, "n0"));
    char *text = net_layer_info_network(layer);
    cr_assert_str_eq(text, "n0: index=0,type=tap,ifname=pvt0,script=no,downscript=no\n");
    free(text);
    /* QEMU 7.2 netdev_add twice with id h0: "Duplicate ID 'h0'" (-netdev: "... for netdev") */
    expect_add_error("tap,id=n0,ifname=pvt1,script=no", "Duplicate ID 'n0' for netdev");
    cr_assert_eq(net_netdev_del(layer, "n0", &error), 0);
    cr_assert_eq(if_nametoindex("pvt0"), 0, "the tap outlived its netdev");
    /* QEMU 7.2 {"execute":"netdev_del","arguments":{"id":"nope"}}: DeviceNotFound */
    cr_assert_eq(net_netdev_del(layer, "n0", &error), -ENODEV);
    cr_assert_str_eq(error.message, "Device 'n0' not found");
}

Test(net, kernel_names_the_tap_and_multiqueue_opens_one_fd_per_queue)
{
    struct pv_error error = {0};
    cr_assert_eq(netdev_add("tap,id=mq,queues=2,script=no,downscript=no", &error), 0, "%s",
                 error.message);
    struct net_backend *backend = attach("mq", "nic0", &error);
    cr_assert_not_null(backend, "%s", error.message);
    cr_assert_eq(net_backend_queue_count(backend), 2);
    int fd0 = net_backend_queue_fd(backend, 0), fd1 = net_backend_queue_fd(backend, 1);
    cr_assert(fd0 >= 0 && fd1 >= 0 && fd0 != fd1);
    cr_assert(fcntl(fd0, F_GETFL) & O_NONBLOCK);
    cr_assert_str_eq(net_backend_ifname(backend), "tap0");
    cr_assert(net_backend_has_vnet_hdr(backend), "IFF_VNET_HDR is on by default");
    char *text = net_layer_info_network(layer);
    /* QEMU 7.2 shows one line per queue, the tap's under the NIC's. */
    cr_assert_str_eq(text, "nic0: index=0,type=nic,model=virtio-net-pci,macaddr=52:54:00:12:34:56\n"
                           " \\ mq: index=0,type=tap,ifname=tap0,script=no,downscript=no\n"
                           "nic0: index=1,type=nic,model=virtio-net-pci,macaddr=52:54:00:12:34:56\n"
                           " \\ mq: index=0,type=tap,ifname=tap0,script=no,downscript=no\n");
    free(text);
    net_backend_release(backend);
}

Test(net, frames_go_both_ways_and_are_counted)
{
    struct pv_error error = {0};
    cr_assert_eq(netdev_add("tap,id=n0,ifname=pvt0,vnet_hdr=off,script=no,downscript=no", &error),
                 0, "%s", error.message);
    struct net_backend *backend = attach("n0", "nic0", &error);
    cr_assert_not_null(backend);
    cr_assert_not(net_backend_has_vnet_hdr(backend));
    set_up("pvt0");
    int sock = packet_socket("pvt0");

    /* Guest to host: net_backend_send, seen by the packet socket. */
    uint8_t frame[60], got[2048];
    size_t length = make_frame(frame, 0xa1);
    struct iovec iov = {.iov_base = frame, .iov_len = length};
    cr_assert_eq(net_backend_send(backend, 0, &iov, 1), (ssize_t)length);
    wait_readable(sock);
    cr_assert_eq(recv(sock, got, sizeof(got), 0), (ssize_t)length);
    cr_assert_eq(memcmp(got, frame, length), 0);

    /* Host to guest: the packet socket sends, net_backend_receive reads. */
    length = make_frame(frame, 0xb2);
    cr_assert_eq(send(sock, frame, length, 0), (ssize_t)length);
    int fd = net_backend_queue_fd(backend, 0);
    for (;;) {
        wait_readable(fd);
        struct iovec in = {.iov_base = got, .iov_len = sizeof(got)};
        ssize_t n = net_backend_receive(backend, 0, &in, 1);
        cr_assert_gt(n, 0);
        /* The kernel may send its own frames (IPv6) to the tap: skip them. */
        if (n >= 14 && got[12] == (TEST_ETHERTYPE >> 8) && got[13] == (TEST_ETHERTYPE & 0xff)) {
            cr_assert_eq(n, (ssize_t)length);
            cr_assert_eq(memcmp(got, frame, length), 0);
            break;
        }
    }
    struct net_counters counters;
    net_backend_get_counters(backend, 0, &counters);
    cr_assert_eq(counters.tx_packets, 1);
    cr_assert_eq(counters.tx_bytes, 60);
    cr_assert_geq(counters.rx_packets, 1);
    close(sock);
    net_backend_release(backend);
}

Test(net, vnet_header_travels_in_front_of_the_frame)
{
    struct pv_error error = {0};
    cr_assert_eq(netdev_add("tap,id=n0,ifname=pvt0,vnet_hdr=on,script=no,downscript=no", &error), 0,
                 "%s", error.message);
    struct net_backend *backend = attach("n0", "nic0", &error);
    cr_assert(net_backend_has_vnet_hdr(backend));
    cr_assert_eq(net_backend_set_vnet_hdr_len(backend, 12, &error), 0, "%s", error.message);
    cr_assert_eq(net_backend_set_offload(backend, 0, &error), 0, "%s", error.message);
    cr_assert_eq(net_backend_set_vnet_hdr_len(backend, 11, &error), -EINVAL);
    set_up("pvt0");
    int sock = packet_socket("pvt0");
    uint8_t header[12] = {0}, frame[60], got[2048];
    size_t length = make_frame(frame, 0xc3);
    struct iovec iov[2] = {{header, sizeof(header)}, {frame, length}};
    cr_assert_eq(net_backend_send(backend, 0, iov, 2), (ssize_t)(sizeof(header) + length));
    wait_readable(sock);
    cr_assert_eq(recv(sock, got, sizeof(got), 0), (ssize_t)length, "the header reached the wire");
    cr_assert_eq(memcmp(got, frame, length), 0);
    close(sock);
    net_backend_release(backend);
}

Test(net, link_down_drops_and_tells_the_nic)
{
    struct pv_error error = {0};
    cr_assert_eq(netdev_add("tap,id=n0,ifname=pvt0,vnet_hdr=off,script=no,downscript=no", &error),
                 0);
    struct net_backend *backend = attach("n0", "nic0", &error);
    set_up("pvt0");
    int sock = packet_socket("pvt0");
    cr_assert_eq(net_layer_set_link(layer, "n0", false, &error), 0);
    cr_assert_eq(link_calls, 1);
    cr_assert_eq(link_last, false);
    cr_assert_not(net_backend_link_up(backend));
    uint8_t dropped[60], passed[60], got[2048];
    size_t length = make_frame(dropped, 0x01);
    make_frame(passed, 0x02);
    struct iovec iov = {.iov_base = dropped, .iov_len = length};
    /* As QEMU: a down link swallows the frame and reports it sent. */
    cr_assert_eq(net_backend_send(backend, 0, &iov, 1), (ssize_t)length);
    cr_assert_eq(net_layer_set_link(layer, "nic0", true, &error), 0);
    cr_assert_eq(link_last, true);
    cr_assert_eq(net_layer_set_link(layer, "n0", true, &error), 0);
    iov.iov_base = passed;
    cr_assert_eq(net_backend_send(backend, 0, &iov, 1), (ssize_t)length);
    /* The first frame on the wire is the second one sent: the first was dropped. */
    wait_readable(sock);
    cr_assert_eq(recv(sock, got, sizeof(got), 0), (ssize_t)length);
    cr_assert_eq(got[14], 0x02);
    struct net_counters counters;
    net_backend_get_counters(backend, 0, &counters);
    cr_assert_eq(counters.tx_dropped, 1);
    cr_assert_eq(counters.tx_packets, 1);
    /* QEMU 7.2 {"execute":"set_link","arguments":{"name":"x","up":false}}: DeviceNotFound */
    cr_assert_eq(net_layer_set_link(layer, "x", false, &error), -ENODEV);
    cr_assert_str_eq(error.message, "Device 'x' not found");
    close(sock);
    net_backend_release(backend);
}

Test(net, a_netdev_serves_one_nic_and_outlives_it)
{
    struct pv_error error = {0};
    cr_assert_eq(netdev_add("tap,id=n0,ifname=pvt0,script=no,downscript=no", &error), 0);
    /* QEMU 7.2 device_add virtio-net-pci,netdev=nope (its property is
     * virtio-net-device.netdev; the NIC names its own) */
    cr_assert_null(attach("nope", "nic0", &error));
    cr_assert_str_eq(error.message, "Property 'virtio-net-pci.netdev' can't find value 'nope'");
    struct net_backend *backend = attach("n0", "nic0", &error);
    cr_assert_not_null(backend);
    cr_assert(net_netdev_has_nic(layer, "n0"));
    cr_assert_null(attach("n0", "nic1", &error));
    cr_assert_str_eq(error.message, "Property 'virtio-net-pci.netdev' can't take value 'n0', it's "
                                    "in use");
    /* QEMU would close the tap under the NIC; here the order is device_del, then netdev_del. */
    cr_assert_eq(net_netdev_del(layer, "n0", &error), -EBUSY);
    cr_assert_str_eq(error.message, "netdev 'n0' is in use by device 'nic0': remove the device "
                                    "first (device_del nic0)");
    net_backend_release(backend);
    cr_assert(net_netdev_exists(layer, "n0"));
    cr_assert_eq(net_netdev_del(layer, "n0", &error), 0);
    /* A NIC without netdev: one queue, no descriptor, frames go nowhere. */
    backend = attach(NULL, "lonely", &error);
    cr_assert_not_null(backend);
    cr_assert_eq(net_backend_queue_fd(backend, 0), -1);
    uint8_t frame[60];
    struct iovec iov = {.iov_base = frame, .iov_len = make_frame(frame, 0)};
    cr_assert_eq(net_backend_send(backend, 0, &iov, 1), 60);
    cr_assert_eq(net_backend_receive(backend, 0, &iov, 1), -EAGAIN);
    net_backend_release(backend);
}

static char *write_script(const char *name, const char *log)
{
    char *path = NULL;
    cr_assert_geq(asprintf(&path, "%s/%s", directory, name), 0);
    FILE *file = fopen(path, "w");
    cr_assert_not_null(file);
    fprintf(file, "#!/bin/sh\necho \"%s $1\" >> %s/log\n", name, log);
    cr_assert_eq(fclose(file), 0);
    cr_assert_eq(chmod(path, 0700), 0);
    return path;
}

static char *read_log(void)
{
    char path[128], *text = calloc(1, 4096);
    snprintf(path, sizeof(path), "%s/log", directory);
    FILE *file = fopen(path, "r");
    if (file) {
        size_t n = fread(text, 1, 4095, file);
        text[n] = '\0';
        fclose(file);
    }
    return text;
}

Test(net, scripts_run_with_the_interface_name)
{
    char *up = write_script("up", directory), *down = write_script("down", directory);
    char options[512];
    snprintf(options, sizeof(options), "tap,id=n0,ifname=pvt0,script=%s,downscript=%s", up, down);
    struct pv_error error = {0};
    cr_assert_eq(netdev_add(options, &error), 0, "%s", error.message);
    char *log = read_log();
    cr_assert_str_eq(log, "up pvt0\n");
    free(log);
    cr_assert_eq(net_netdev_del(layer, "n0", &error), 0);
    log = read_log();
    cr_assert_str_eq(log, "up pvt0\ndown pvt0\n");
    free(log);
    /* QEMU 7.2 netdev_add ...,"script":"/bin/false": the wait status, as QEMU prints it */
    expect_add_error("tap,id=n1,ifname=pvt1,script=/bin/false,downscript=no",
                     "network script /bin/false failed with status 256");
    cr_assert_eq(if_nametoindex("pvt1"), 0, "a failed netdev_add left its tap");
    expect_add_error("tap,id=n1,ifname=pvt1,script=/nonexist,downscript=no",
                     "network script /nonexist failed with status 256");
    free(up);
    free(down);
}

Test(net, option_errors_match_qemu)
{
    /* QEMU 7.2 netdev_add with "fd":"3","ifname":"x" */
    expect_add_error("tap,id=h3,fd=3,ifname=x",
                     "ifname=, script=, downscript=, vnet_hdr=, helper=, queues=, fds=, and "
                     "vhostfds= are invalid with fd=");
    /* QEMU 7.2 netdev_add with "fds":"a:b","queues":2 */
    expect_add_error("tap,id=h0,fds=a:b,queues=2",
                     "ifname=, script=, downscript=, vnet_hdr=, helper=, queues=, and vhostfd= "
                     "are invalid with fds=");
    /* QEMU 7.2 netdev_add with "fd":"foo" / "fds":"a:b" */
    expect_add_error("tap,id=h2,fd=foo", "File descriptor named 'foo' has not been found");
    expect_add_error("tap,id=h2,fds=a:b", "File descriptor named 'a' has not been found");
    /* QEMU 7.2 -netdev tap,id=n0,bogus=1 */
    expect_add_error("tap,id=h4,bogus=3", "Invalid parameter 'bogus'");
    /* QEMU 7.2 netdev_add with "type":"foo" / no id / id 9bad */
    expect_add_error("foo,id=h5", "Parameter 'type' does not accept value 'foo'");
    expect_add_error("tap", "Parameter 'id' is missing");
    expect_add_error("tap,id=9bad", "Parameter 'id' expects an identifier");
    /* QEMU 7.2 netdev_add with "vhostforce":true on a host without /dev/vhost-net */
    if (access("/dev/vhost-net", F_OK) != 0)
        expect_add_error("tap,id=h0,ifname=t0,script=no,vhostforce=on",
                         "tap: open vhost char device failed: No such file or directory");
    else
        expect_add_error("tap,id=h0,ifname=t0,script=no,vhostforce=on",
                         "vhost=on: vhost-net is not supported yet by plugvirt-vmm (the vhost "
                         "data path is not implemented); use vhost=off");
    /* QEMU 7.2 netdev_add with "fd":"999" */
    expect_add_error("tap,id=h0,fd=999", "h0: Can't use file descriptor 999: Bad file descriptor");
    /* A descriptor that is not a tap (QEMU 7.2's tap_probe_vnet_hdr wording). */
    int pipe_fds[2];
    cr_assert_eq(pipe(pipe_fds), 0);
    char text[64], message[128];
    snprintf(text, sizeof(text), "tap,id=h0,fd=%d", pipe_fds[0]);
    snprintf(message, sizeof(message),
             "Unable to query TUNGETIFF on FD %d: Inappropriate ioctl for device", pipe_fds[0]);
    expect_add_error(text, message);
    cr_assert_eq(fcntl(pipe_fds[0], F_GETFD), -1, "a refused fd= is closed, as QEMU does");
    close(pipe_fds[1]);
    /* Ours, refused by name. */
    expect_add_error("user,id=u0",
                     "netdev type 'user' is not supported by plugvirt-vmm (only tap)");
    expect_add_error("tap,id=h0,helper=/usr/lib/qemu/qemu-bridge-helper",
                     "helper=: the bridge helper is not supported by plugvirt-vmm; create the tap "
                     "yourself and pass it with fd= (or use ifname= and script=)");
    expect_add_error("tap,id=h0,queues=17", "queues=17: plugvirt-vmm supports 1 to 16 queues");
    char *info = net_layer_info_network(layer);
    cr_assert_str_eq(info, "", "a failed netdev_add left a netdev");
    free(info);
}

/* --- monitors ------------------------------------------------------------------------- */

struct qmp_fixture {
    struct qmp_command_registry registry;
    struct qmp_command_context context;
};

static void qmp_init(struct qmp_fixture *fixture)
{
    qmp_command_registry_init(&fixture->registry);
    memset(&fixture->context, 0, sizeof(fixture->context));
    fixture->context.vm = &fake_vm;
    fixture->context.registry = &fixture->registry;
    fixture->context.negotiated = true;
    fixture->context.received_fd = -1;
}

/* One request, its reply without the trailing "\r\n". */
static char *qmp(struct qmp_fixture *fixture, const char *request)
{
    struct json_writer reply;
    json_writer_init(&reply, false);
    cr_assert_eq(qmp_dispatch(&fixture->context, request, strlen(request), &reply), 0);
    char *text = json_writer_steal(&reply);
    json_writer_free(&reply);
    text[strcspn(text, "\r\n")] = '\0';
    return text;
}

static void expect_qmp(struct qmp_fixture *fixture, const char *request, const char *reply)
{
    char *text = qmp(fixture, request);
    cr_assert_str_eq(text, reply, "%s", request);
    free(text);
}

Test(net, qmp_seed_forms_and_errors)
{
    struct qmp_fixture f;
    qmp_init(&f);
    /* The seed forms as written. Without "type" netdev_add makes a tap (QEMU 7.2
     * says "Parameter 'type' is missing"; older QEMU and the recipes take tap). */
    expect_qmp(&f,
               "{\"execute\":\"netdev_add\",\"arguments\":{\"id\":\"net-0\",\"ifname\":\"tap0\","
               "\"script\":\"no\",\"downscript\":\"no\"}}",
               "{\"return\": {}}");
    cr_assert_neq(if_nametoindex("tap0"), 0);
    expect_qmp(&f, "{\"execute\":\"netdev_del\",\"arguments\":{\"id\":\"net-0\"}}",
               "{\"return\": {}}");
    expect_qmp(&f,
               "{\"execute\":\"netdev_add\",\"arguments\":{\"type\":\"tap\",\"id\":\"net-0\","
               "\"ifname\":\"tap0\",\"script\":\"no\",\"downscript\":\"no\"}}",
               "{\"return\": {}}");
    /* "vhost": "on" as a string (pre-6.0 QEMU's form): fails only because this host has no
     * /dev/vhost-net. A string that is no boolean keeps QEMU 7.2's type error. */
    if (access("/dev/vhost-net", F_OK) != 0) {
        expect_qmp(&f,
                   "{\"execute\":\"netdev_add\",\"arguments\":{\"type\":\"tap\",\"id\":"
                   "\"hostnet0\",\"script\":\"no\",\"vhost\":\"on\"}}",
                   "{\"error\": {\"class\": \"GenericError\", \"desc\": \"tap: open vhost char "
                   "device failed: No such file or directory\"}}");
        expect_qmp(&f,
                   "{\"execute\":\"netdev_add\",\"arguments\":{\"type\":\"tap\",\"id\":"
                   "\"hostnet0\",\"script\":\"no\",\"vhost\":true}}",
                   "{\"error\": {\"class\": \"GenericError\", \"desc\": \"tap: open vhost char "
                   "device failed: No such file or directory\"}}");
    }
    expect_qmp(&f,
               "{\"execute\":\"netdev_add\",\"arguments\":{\"type\":\"tap\",\"id\":\"hostnet0\","
               "\"script\":\"no\",\"vhost\":\"maybe\"}}",
               "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Invalid parameter type for "
               "'vhost', expected: boolean\"}}");
    /* QEMU 7.2, each with the arguments shown. */
    expect_qmp(&f,
               "{\"execute\":\"netdev_add\",\"arguments\":{\"type\":\"tap\",\"id\":\"h\","
               "\"sndbuf\":\"abc\"}}",
               "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Parameter 'sndbuf' expects "
               "uint64\"}}");
    expect_qmp(&f,
               "{\"execute\":\"netdev_add\",\"arguments\":{\"type\":\"tap\",\"id\":\"h\","
               "\"queues\":-1}}",
               "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Parameter 'queues' expects "
               "uint32_t\"}}");
    expect_qmp(&f,
               "{\"execute\":\"netdev_add\",\"arguments\":{\"type\":\"tap\",\"id\":\"h\","
               "\"fd\":3}}",
               "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Invalid parameter type for "
               "'fd', expected: string\"}}");
    expect_qmp(&f,
               "{\"execute\":\"netdev_add\",\"arguments\":{\"type\":\"tap\",\"id\":\"h\","
               "\"bogus\":\"3\"}}",
               "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Parameter 'bogus' is "
               "unexpected\"}}");
    expect_qmp(&f, "{\"execute\":\"netdev_add\"}",
               "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Parameter 'id' is "
               "missing\"}}");
    expect_qmp(&f,
               "{\"execute\":\"netdev_add\",\"arguments\":{\"type\":\"tap\",\"id\":\"net-0\","
               "\"ifname\":\"tap1\",\"script\":\"no\"}}",
               "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Duplicate ID 'net-0'\"}}");
    expect_qmp(&f, "{\"execute\":\"netdev_del\",\"arguments\":{\"id\":\"nope\"}}",
               "{\"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"Device 'nope' not "
               "found\"}}");
    expect_qmp(&f, "{\"execute\":\"set_link\",\"arguments\":{\"name\":\"x\",\"up\":false}}",
               "{\"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"Device 'x' not found\"}}");
    expect_qmp(&f, "{\"execute\":\"set_link\",\"arguments\":{\"name\":\"x\"}}",
               "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Parameter 'up' is "
               "missing\"}}");
    expect_qmp(&f, "{\"execute\":\"query-rx-filter\",\"arguments\":{\"name\":\"x\"}}",
               "{\"error\": {\"class\": \"GenericError\", \"desc\": \"invalid net client name: "
               "x\"}}");
    expect_qmp(&f, "{\"execute\":\"query-rx-filter\",\"arguments\":{\"name\":\"net-0\"}}",
               "{\"error\": {\"class\": \"GenericError\", \"desc\": \"net client(net-0) isn't a "
               "NIC\"}}");
    expect_qmp(&f, "{\"execute\":\"query-rx-filter\"}", "{\"return\": []}");
    struct pv_error error = {0};
    struct net_backend *backend = attach("net-0", "nic0", &error);
    expect_qmp(&f, "{\"execute\":\"query-rx-filter\"}", "{\"return\": [{\"name\": \"nic0\"}]}");
    expect_qmp(&f, "{\"execute\":\"set_link\",\"arguments\":{\"name\":\"nic0\",\"up\":false}}",
               "{\"return\": {}}");
    cr_assert_eq(link_last, false);
    expect_qmp(&f, "{\"execute\":\"netdev_del\",\"arguments\":{\"id\":\"net-0\"}}",
               "{\"error\": {\"class\": \"GenericError\", \"desc\": \"netdev 'net-0' is in use by "
               "device 'nic0': remove the device first (device_del nic0)\"}}");
    net_backend_release(backend);
    expect_qmp(&f, "{\"execute\":\"netdev_del\",\"arguments\":{\"id\":\"net-0\"}}",
               "{\"return\": {}}");
    cr_assert_eq(if_nametoindex("tap0"), 0);
}

static int open_tap(const char *name)
{
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
    cr_assert_eq(ioctl(fd, TUNSETIFF, &ifr), 0, "TUNSETIFF: %s", strerror(errno));
    return fd;
}

/* The way plugvirtd hands a tap over: getfd with the descriptor in SCM_RIGHTS, then
 * netdev_add fd=<name>. */
Test(net, getfd_over_a_real_socket_then_netdev_add_fd)
{
    struct qmp_fixture f;
    qmp_init(&f);
    expect_qmp(&f, "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"tapfd\"}}",
               "{\"error\": {\"class\": \"GenericError\", \"desc\": \"No file descriptor supplied "
               "via SCM_RIGHTS\"}}");
    int pair[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    int tap = open_tap("pvfd0");
    const char request[] = "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"tapfd\"}}";
    struct iovec iov = {.iov_base = (void *)request, .iov_len = strlen(request)};
    union {
        char buffer[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof(control));
    struct msghdr message = {.msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = control.buffer,
                             .msg_controllen = sizeof(control.buffer)};
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &tap, sizeof(int));
    cr_assert_eq(sendmsg(pair[0], &message, 0), (ssize_t)strlen(request));
    close(tap); /* the VMM's copy is the one that counts now */

    char text[256];
    wait_readable(pair[1]);
    ssize_t got = monitor_qmp_receive(pair[1], text, sizeof(text) - 1, &f.context.received_fd);
    cr_assert_eq(got, (ssize_t)strlen(request), "a whole request in one read");
    text[got] = '\0';
    cr_assert_geq(f.context.received_fd, 0, "no descriptor arrived");
    expect_qmp(&f, text, "{\"return\": {}}");
    cr_assert_eq(f.context.received_fd, -1, "getfd took the descriptor");
    cr_assert(net_layer_has_named_fd(layer, "tapfd"));

    expect_qmp(&f,
               "{\"execute\":\"netdev_add\",\"arguments\":{\"type\":\"tap\",\"id\":\"n1\","
               "\"fd\":\"tapfd\"}}",
               "{\"return\": {}}");
    /* netdev_add took it: the name is gone, as in QEMU. QEMU 7.2 closefd of an unknown name: */
    cr_assert_not(net_layer_has_named_fd(layer, "tapfd"));
    expect_qmp(&f, "{\"execute\":\"closefd\",\"arguments\":{\"fdname\":\"tapfd\"}}",
               "{\"error\": {\"class\": \"GenericError\", \"desc\": \"File descriptor named "
               "'tapfd' not found\"}}");
    struct pv_error error = {0};
    struct net_backend *backend = attach("n1", "nic0", &error);
    cr_assert_str_eq(net_backend_ifname(backend), "pvfd0");
    char *info = net_layer_info_network(layer);
    char expected[256];
    snprintf(expected, sizeof(expected),
             "nic0: index=0,type=nic,model=virtio-net-pci,macaddr=52:54:00:12:34:56\n"
             " \\ n1: index=0,type=tap,fd=%d\n",
             net_backend_queue_fd(backend, 0));
    cr_assert_str_eq(info, expected);
    free(info);
    net_backend_release(backend);

    /* A second descriptor, named and closed again; a name like a number is refused. */
    int other = open_tap("pvfd1");
    cr_assert_eq(net_layer_add_named_fd(layer, "spare", other, &error), 0);
    expect_qmp(&f, "{\"execute\":\"closefd\",\"arguments\":{\"fdname\":\"spare\"}}",
               "{\"return\": {}}");
    cr_assert_eq(fcntl(other, F_GETFD), -1, "closefd left the descriptor open");
    cr_assert_eq(net_layer_add_named_fd(layer, "3x", open_tap("pvfd2"), &error), -EINVAL);
    cr_assert_str_eq(error.message, "Parameter 'fdname' expects a name not starting with a digit");
    close(pair[0]);
    close(pair[1]);
}

static char *hmp(const char *line)
{
    struct hmp_output output;
    hmp_output_init(&output);
    struct hmp_context context = {.vm = &fake_vm, .output = &output};
    hmp_execute(&context, line);
    char *text = strdup(hmp_output_text(&output));
    hmp_output_free(&output);
    return text;
}

static void expect_hmp(const char *line, const char *output)
{
    char *text = hmp(line);
    cr_assert_str_eq(text, output, "%s", line);
    free(text);
}

Test(net, hmp_commands)
{
    expect_hmp("netdev_add tap,id=nic1,ifname=pvh0,script=no,downscript=no", "");
    cr_assert_neq(if_nametoindex("pvh0"), 0);
    expect_hmp("info network", "nic1: index=0,type=tap,ifname=pvh0,script=no,downscript=no\r\n");
    /* QEMU 7.2 -monitor stdio, each line as typed */
    expect_hmp("netdev_add tap,id=nic1,ifname=pvh1,script=no",
               "Duplicate ID 'nic1' for netdev\r\nTry \"help netdev_add\" for more "
               "information\r\n");
    expect_hmp("netdev_add tap,id=x,bogus=1", "Error: Invalid parameter 'bogus'\r\n");
    expect_hmp("netdev_add id=x", "Error: Parameter 'type' is missing\r\n");
    expect_hmp("netdev_add tap", "Error: Parameter 'id' is missing\r\n");
    expect_hmp("netdev_del nope", "Error: Device 'nope' not found\r\n");
    expect_hmp("netdev_del",
               "netdev_del: string expected\r\nTry \"help netdev_del\" for more information\r\n");
    expect_hmp("set_link nic1 maybe",
               "Expected 'on' or 'off'\r\nTry \"help set_link\" for more information\r\n");
    expect_hmp("set_link nope on", "Error: Device 'nope' not found\r\n");
    expect_hmp("set_link nic1 off", "");
    expect_hmp("getfd foo", "Error: No file descriptor supplied via SCM_RIGHTS\r\n");
    expect_hmp("closefd foo", "Error: File descriptor named 'foo' not found\r\n");
    expect_hmp("help set_link",
               "set_link name on|off -- change the link status of a network adapter\r\n");
    expect_hmp("help getfd", "getfd getfd name -- receive a file descriptor via SCM rights and "
                             "assign it a name\r\n");
    expect_hmp("help info network", "info network  -- show the network state\r\n");
    expect_hmp("netdev_del nic1", "");
    cr_assert_eq(if_nametoindex("pvh0"), 0);
    expect_hmp("info network", "");
}

/* QEMU 1.x-2.x's host_net_add / host_net_remove (gone from 7.2: texts from its sources). */
Test(net, hmp_host_net_add_and_remove)
{
    expect_hmp("host_net_add tap ifname=pvv0,script=no,downscript=no", "");
    expect_hmp("info network", "tap.0: index=0,type=tap,ifname=pvv0,script=no,downscript=no\r\n");
    expect_hmp("host_net_add user", "invalid host network device user\r\n");
    expect_hmp("host_net_add tap ifname=pvv1,script=/bin/false,downscript=no",
               "network script /bin/false failed with status 256\r\nadding host network device "
               "tap failed\r\n");
    expect_hmp("host_net_remove 1 tap.0", "Host network device 'tap.0' on hub '1' not found\r\n");
    expect_hmp("host_net_remove 0 tap.0", "");
    cr_assert_eq(if_nametoindex("pvv0"), 0);
}

/* --- pci_add / pci_del on a machine without KVM ----------------------------------------- */

static int no_msi(struct vm *vm, uint64_t address, uint32_t data)
{
    return 0;
}
static int no_irq(struct vm *vm, unsigned gsi, int level)
{
    return 0;
}
static void no_reset(struct vm *vm)
{
}
static enum vm_run_state running(struct vm *vm)
{
    return VM_RUN_STATE_RUNNING;
}
static void no_quiesce(struct vm *vm)
{
}
static const struct pci_platform_ops fake_platform = {
    .signal_msi = no_msi,
    .set_irq_line = no_irq,
    .request_guest_reset = no_reset,
    .get_run_state = running,
    .quiesce = no_quiesce,
    .unquiesce = no_quiesce,
};

static void fake_machine_create(void)
{
    fake_vm.vm_fd = fake_vm.kvm_fd = -1;
    fake_vm.main_thread = pthread_self();
    cr_assert_eq(io_bus_init(&fake_vm.io_bus, NULL), 0);
    struct pv_error error = {0};
    fake_vm.pci_bus = pci_bus_create_with_platform(&fake_vm, &fake_platform, NULL, &error);
    cr_assert_not_null(fake_vm.pci_bus, "%s", error.message);
    fake_vm.block_layer = block_layer_create();
    fake_vm.device_registry = device_registry_create(&fake_vm, &error);
    cr_assert_not_null(fake_vm.device_registry, "%s", error.message);
}

static void fake_machine_destroy(void)
{
    device_registry_destroy(fake_vm.device_registry);
    pci_bus_destroy(fake_vm.pci_bus); /* the NICs go and release their netdevs */
    block_layer_destroy(fake_vm.block_layer);
    io_bus_destroy(&fake_vm.io_bus);
}

/* Whether this build has virtio-net-pci (it comes with branch vmm-virtio-net). */
static bool virtio_net_available(void)
{
    struct qemu_options probe;
    cr_assert_eq(qemu_options_parse(&probe, "virtio-net-pci,id=probe,addr=1f", "driver", 0, NULL),
                 0);
    struct pv_error error = {0};
    int rc = device_registry_add(fake_vm.device_registry, &probe, &error);
    qemu_options_free(&probe);
    return rc == 0;
}

/* QEMU 1.x-2.x's pci_add nic / pci_del (texts from its hw/pci/pci-hotplug-old.c). */
Test(net, hmp_pci_add_puts_a_virtio_nic_on_the_hub_tap)
{
    fake_machine_create();
    if (!virtio_net_available())
        cr_skip_test("virtio-net-pci is not in this build");
    expect_hmp("host_net_add tap ifname=pvp0,script=no,downscript=no", "");
    expect_hmp("pci_add auto storage file=x", "invalid type: storage\r\n");
    expect_hmp("pci_add auto nic model=e1000",
               "pci_add nic: model e1000 is not supported by plugvirt-vmm (only model=virtio)\r\n"
               "failed to add model=e1000\r\n");
    char *text = hmp("pci_add pci_addr=auto nic model=virtio,macaddr=52:54:00:00:00:07");
    int slot = -1;
    cr_assert_eq(sscanf(text, "OK domain 0, bus 0, slot %d, function 0\r\n", &slot), 1, "%s", text);
    free(text);
    cr_assert(net_netdev_has_nic(layer, "tap.0"), "the NIC did not take the hub's tap");
    text = hmp("info network");
    cr_assert(strstr(text, "macaddr=52:54:00:00:00:07\r\n \\ tap.0: index=0,type=tap,ifname=pvp0"),
              "%s", text);
    free(text);
    expect_hmp("pci_del 1e", "slot 30 empty\r\n");
    char line[32];
    snprintf(line, sizeof(line), "pci_del %x", slot);
    expect_hmp(line, "");
    fake_machine_destroy();
}

/* The HMP seed: a tap netdev, then a virtio-net-pci with the seed's MAC on it. */
Test(net, hmp_netdev_add_then_device_add_virtio_net_pci)
{
    fake_machine_create();
    if (!virtio_net_available())
        cr_skip_test("virtio-net-pci is not in this build");
    expect_hmp("netdev_add tap,id=nic1,ifname=pvs0,script=no,downscript=no", "");
    expect_hmp("device_add virtio-net-pci,netdev=nic1,id=nic2,mac=62:56:00:94:a3:16", "");
    cr_assert(net_netdev_has_nic(layer, "nic1"));
    char *text = hmp("info network");
    cr_assert(strstr(text, "nic2: index=0,type=nic,model=virtio-net-pci,macaddr=62:56:00:94:a3:16"
                           "\r\n \\ nic1: index=0,type=tap,ifname=pvs0,script=no,downscript=no"),
              "%s", text);
    free(text);
    /* The netdev serves one NIC, and stays while that NIC does. */
    text = hmp("device_add virtio-net-pci,netdev=nic1,id=nic3");
    cr_assert(strstr(text, "it's in use"), "%s", text);
    free(text);
    text = hmp("netdev_del nic1");
    cr_assert(strstr(text, "Error: "), "%s", text);
    free(text);
    fake_machine_destroy();
}

/* The command line end to end, without KVM: -net nic,model=virtio -net tap and -netdev +
 * -device become taps with NICs on them, netdevs first. */
Test(net, command_line_netdevs_come_before_their_nics)
{
    fake_machine_create();
    if (!virtio_net_available())
        cr_skip_test("virtio-net-pci is not in this build");
    char *argv[] = {"plugvirt-vmm",
                    "-netdev",
                    "tap,id=n0,ifname=pvc0,script=no,downscript=no",
                    "-device",
                    "virtio-net-pci,netdev=n0,id=nic0,mac=52:54:00:00:00:01",
                    "-net",
                    "nic,model=virtio,macaddr=52:54:00:00:00:02",
                    "-net",
                    "tap,ifname=pvc1,script=no,downscript=no",
                    NULL};
    struct vmm_config config;
    bool exit_early;
    struct pv_error error = {0};
    cr_assert_eq(vmm_config_parse(&config, 9, argv, &exit_early, &error), 0, "%s", error.message);
    fake_vm.config = &config;
    cr_assert_eq(machine_pc_create_netdevs(&fake_vm, &error), 0, "%s", error.message);
    cr_assert_eq(device_registry_apply_config(fake_vm.device_registry, &config, &error), 0, "%s",
                 error.message);
    cr_assert(net_netdev_has_nic(layer, "n0"));
    cr_assert(net_netdev_has_nic(layer, "tap.0"));
    char *text = net_layer_info_network(layer);
    cr_assert(strstr(text, "nic0: index=0,type=nic,model=virtio-net-pci,macaddr=52:54:00:00:00:01\n"
                           " \\ n0: index=0,type=tap,ifname=pvc0,script=no,downscript=no\n"),
              "%s", text);
    cr_assert(strstr(text, "macaddr=52:54:00:00:00:02\n"
                           " \\ tap.0: index=0,type=tap,ifname=pvc1,script=no,downscript=no\n"),
              "%s", text);
    free(text);
    fake_machine_destroy();
    fake_vm.config = NULL;
    vmm_config_free(&config);
}

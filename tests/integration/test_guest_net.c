/* The probe guest's virtio-net driver against stock QEMU (the reference for
 * plugvirt-vmm's NIC): inside a private network namespace QEMU (TCG) gets a tap
 * device, and a packet socket on the host side of that tap checks what the
 * guest receives and sends, byte for byte. Also link changes (QMP set_link)
 * and hotplug (netdev_add + device_add, device_del + netdev_del), for the
 * transitional (1af4:1000) and the modern-only (1af4:1041) device. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "net_peer.h"

#ifndef PLUGVIRT_QEMU_PATH
#define PLUGVIRT_QEMU_PATH ""
#endif

#define BOOT_TIMEOUT_MS 60000
#define STEP_TIMEOUT_MS 10000
#define TEST_ETHER_TYPE 0x88b5 /* IEEE 802 local experimental */
#define GUEST_MAC "34:40:b5:9e:d3:90"
#define GUEST_BDF "00:05.0"
#define HOST_MAC_BYTES                                                                             \
    {                                                                                              \
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01                                                         \
    }

struct guest {
    struct vmm_process process;
    struct qmp_client qmp;
    char qmp_path[320];
    char qmp_option[400];
    int packet_fd;
    size_t ready_end; /* console offset after the READY line */
};

static struct guest guest = {.packet_fd = -1, .qmp = {.fd = -1}};
static const uint8_t host_mac[6] = HOST_MAC_BYTES;
static uint8_t guest_mac[6];

static const char *qemu_path(void)
{
    const char *path = getenv("QEMU");
    return path && *path ? path : PLUGVIRT_QEMU_PATH;
}

/* Every test: QEMU installed, a fresh network namespace with tap0 up. */
static void setup(void)
{
    const char *qemu = qemu_path();
    if (!*qemu || access(qemu, X_OK) < 0)
        cr_skip_test("qemu-system-x86_64 is not installed (Debian package qemu-system-x86)");
    if (access("/dev/net/tun", R_OK | W_OK) < 0)
        cr_skip_test("/dev/net/tun is not usable: %s", strerror(errno));
    struct net_peer_error error;
    if (net_peer_enter_new_namespace(&error) < 0)
        cr_skip_test("%s", error.message);
    cr_assert_eq(net_peer_create_tap("tap0", true, &error), 0, "%s", error.message);
    cr_assert_eq(net_peer_link_up("tap0", &error), 0, "%s", error.message);
    guest.packet_fd = net_peer_open_packet("tap0", &error);
    cr_assert_geq(guest.packet_fd, 0, "%s", error.message);
    cr_assert_eq(net_peer_parse_mac(GUEST_MAC, guest_mac), 0);
}

static void teardown(void)
{
    if (guest.qmp.fd >= 0)
        qmp_client_close(&guest.qmp);
    vmm_process_cleanup(&guest.process);
    if (guest.packet_fd >= 0)
        close(guest.packet_fd);
    guest.packet_fd = -1;
}

TestSuite(guest_net, .init = setup, .fini = teardown, .timeout = 180);

static void dump_and_fail(const char *what)
{
    /* Interface counters tell a frame the host kernel dropped from one the guest lost. */
    if (system("ip -s link show >&2") != 0)
        fprintf(stderr, "(ip -s link show failed)\n");
    cr_assert_fail("%s\n--- console ---\n%s\n--- qemu stderr ---\n%s", what, guest.process.console,
                   guest.process.errors);
}

/* Boots QEMU -M pc (TCG) with the probe guest plus `extra`, waits for READY, connects QMP. */
static void boot(const char *const *extra)
{
    struct vmm_process *process = &guest.process;
    memset(process, 0, sizeof(*process));
    snprintf(process->directory, sizeof(process->directory), "/tmp/pv-guest-net-XXXXXX");
    cr_assert_not_null(mkdtemp(process->directory), "mkdtemp: %s", strerror(errno));
    snprintf(guest.qmp_path, sizeof(guest.qmp_path), "%s/qmp.sock", process->directory);
    snprintf(guest.qmp_option, sizeof(guest.qmp_option), "unix:%s,server=on,wait=off",
             guest.qmp_path);
    const char *arguments[48] = {"-machine",    "pc",
                                 "-accel",      "tcg",
                                 "-m",          "128",
                                 "-nodefaults", "-display",
                                 "none",        "-no-reboot",
                                 "-serial",     "stdio",
                                 "-qmp",        guest.qmp_option,
                                 "-kernel",     harness_probe_guest_path()};
    size_t count = 16;
    for (size_t i = 0; extra && extra[i] && count < 47; i++)
        arguments[count++] = extra[i];
    arguments[count] = NULL;
    setenv("PLUGVIRT_VMM", qemu_path(), 1);
    cr_assert_eq(vmm_process_start_raw(process, arguments), 0);
    if (vmm_process_wait_line(process, "PROBE READY", BOOT_TIMEOUT_MS, NULL, 0) < 0)
        dump_and_fail("no PROBE READY");
    guest.ready_end = process->console_consumed;
    process->console_consumed = 0; /* the boot ADD lines came before READY */
    cr_assert_eq(qmp_client_connect(&guest.qmp, guest.qmp_path, true, NULL, 0, STEP_TIMEOUT_MS), 0,
                 "QMP connect to %s failed", guest.qmp_path);
}

/* Waits for the next line starting with `prefix` (earlier lines are skipped). */
static void expect_line(const char *prefix, char *line, size_t size)
{
    char local[512];
    if (!line) {
        line = local;
        size = sizeof(local);
    }
    if (vmm_process_wait_line(&guest.process, prefix, STEP_TIMEOUT_MS, line, size) < 0) {
        char what[600];
        snprintf(what, sizeof(what), "no line starting with '%s'", prefix);
        dump_and_fail(what);
    }
}

/* Sends a serial command and expects its answer to be exactly `answer`. */
static void command_expect(const char *command, const char *answer)
{
    char text[400], line[512];
    snprintf(text, sizeof(text), "%s\n", command);
    cr_assert_eq(vmm_process_send(&guest.process, text), 0);
    expect_line("PROBE ", line, sizeof(line));
    cr_assert_str_eq(line, answer, "'%s' answered '%s'", command, line);
}

static void qmp_expect_return(const char *command)
{
    char reply[4096];
    cr_assert_eq(qmp_client_execute(&guest.qmp, command, reply, sizeof(reply), STEP_TIMEOUT_MS), 0,
                 "no reply to %s", command);
    cr_assert(strstr(reply, "\"return\""), "%s failed: %s", command, reply);
}

/* Host → guest: the guest prints the frame's length and FNV-1a. */
static void host_sends_guest_reports(const char *bdf, const uint8_t *mac, size_t payload,
                                     uint32_t seed)
{
    uint8_t frame[4096];
    cr_assert_leq(payload + 14, sizeof(frame));
    size_t length = net_peer_build_frame(frame, mac, host_mac, TEST_ETHER_TYPE, payload, seed);
    struct net_peer_error error;
    cr_assert_eq(net_peer_send(guest.packet_fd, frame, length, &error), 0, "%s", error.message);
    char expected[128], line[512];
    snprintf(expected, sizeof(expected), "PROBE NET RX %s len=%zu sum=0x%08x", bdf, length,
             net_peer_fnv1a(frame, length));
    expect_line("PROBE NET RX ", line, sizeof(line));
    cr_assert_str_eq(line, expected);
}

static size_t hex_frame(char *text, size_t size, const uint8_t *frame, size_t length)
{
    size_t used = 0;
    for (size_t i = 0; i < length && used + 3 <= size; i++)
        used += (size_t)snprintf(text + used, size - used, "%02x", frame[i]);
    return used;
}

/* Guest → host: net-send arrives with identical bytes. */
static void guest_sends_host_receives(const char *bdf, uint32_t seed)
{
    uint8_t frame[128], received[2048];
    size_t length = net_peer_build_frame(frame, host_mac, guest_mac, TEST_ETHER_TYPE, 90, seed);
    char command[400], answer[128];
    int used = snprintf(command, sizeof(command), "net-send %s ", bdf);
    hex_frame(command + used, sizeof(command) - (size_t)used, frame, length);
    snprintf(answer, sizeof(answer), "PROBE NET TX %s len=%zu ok", bdf, length);
    command_expect(command, answer);
    struct net_peer_error error;
    ssize_t got = net_peer_receive(guest.packet_fd, TEST_ETHER_TYPE, received, sizeof(received),
                                   STEP_TIMEOUT_MS, &error);
    cr_assert_eq(got, (ssize_t)length, "%s", got < 0 ? error.message : "wrong length");
    cr_assert_arr_eq(received, frame, length, "the host received other bytes than were sent");
}

static void expect_add_line(const char *bdf, const char *id, const char *mac)
{
    char line[512], expected[160];
    snprintf(expected, sizeof(expected), "PROBE PCI ADD %s %s virtio-net mac=%s link=up", bdf, id,
             mac);
    snprintf(line, sizeof(line), "PROBE PCI ADD %s ", bdf);
    expect_line(line, line, sizeof(line));
    cr_assert_str_eq(line, expected);
    if (guest.process.console_consumed < guest.ready_end)
        guest.process.console_consumed = guest.ready_end; /* answers come after READY */
}

Test(guest_net, transitional_nic_receives_sends_echoes_and_counts)
{
    const char *extra[] = {"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no", "-device",
                           "virtio-net-pci,netdev=n0,mac=" GUEST_MAC ",addr=5,romfile=", NULL};
    boot(extra);
    expect_add_line(GUEST_BDF, "1af4:1000", GUEST_MAC);

    host_sends_guest_reports(GUEST_BDF, guest_mac, 46, 1);   /* minimum Ethernet payload */
    host_sends_guest_reports(GUEST_BDF, guest_mac, 1400, 2); /* spans two merged buffers */
    host_sends_guest_reports(GUEST_BDF, guest_mac, 1500, 3); /* full MTU */
    guest_sends_host_receives(GUEST_BDF, 4);

    command_expect("net-echo " GUEST_BDF " on", "PROBE NET ECHO " GUEST_BDF " on");
    const size_t payloads[] = {46, 700, 1500};
    for (size_t i = 0; i < 3; i++) {
        uint8_t frame[2048], expected[2048], received[2048];
        size_t length = net_peer_build_frame(frame, guest_mac, host_mac, TEST_ETHER_TYPE,
                                             payloads[i], 10 + (uint32_t)i);
        memcpy(expected, frame, length);
        memcpy(expected, frame + 6, 6);
        memcpy(expected + 6, frame, 6);
        struct net_peer_error error;
        cr_assert_eq(net_peer_send(guest.packet_fd, frame, length, &error), 0, "%s", error.message);
        ssize_t got = net_peer_receive(guest.packet_fd, TEST_ETHER_TYPE, received, sizeof(received),
                                       STEP_TIMEOUT_MS, &error);
        cr_assert_eq(got, (ssize_t)length, "echo %zu: %s", i, got < 0 ? error.message : "length");
        cr_assert_arr_eq(received, expected, length, "echo %zu is not the frame, MACs swapped", i);
    }
    command_expect("net-echo " GUEST_BDF " off", "PROBE NET ECHO " GUEST_BDF " off");
    /* 3 reported + 3 echoed received; 1 net-send + 3 echoes sent. */
    command_expect("net-stats " GUEST_BDF, "PROBE NET STATS " GUEST_BDF " rx=6 tx=4 dropped=0");
    host_sends_guest_reports(GUEST_BDF, guest_mac, 60, 20); /* echo is really off again */

    command_expect("net-send 00:09.0 ffffffffffff02000000000188b5",
                   "PROBE NET ERROR 00:09.0 no such device");
    command_expect("net-send " GUEST_BDF " ffffffffffff0200000000",
                   "PROBE ERROR net-send: expected <bb:dd.f> <frame as 14..120 hex bytes>");
    command_expect("net-send " GUEST_BDF " ffffffffffff02000000000188bx",
                   "PROBE ERROR net-send: expected <bb:dd.f> <frame as 14..120 hex bytes>");
    command_expect("net-echo " GUEST_BDF " maybe",
                   "PROBE ERROR net-echo: expected <bb:dd.f> on|off");
    command_expect("net-stats 00:01.0", "PROBE NET ERROR 00:01.0 no such device");
}

Test(guest_net, modern_only_nic_works_the_same)
{
    const char *extra[] = {"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no", "-device",
                           "virtio-net-pci,netdev=n0,mac=" GUEST_MAC
                           ",addr=5,romfile=,disable-legacy=on,disable-modern=off",
                           NULL};
    boot(extra);
    expect_add_line(GUEST_BDF, "1af4:1041", GUEST_MAC);
    host_sends_guest_reports(GUEST_BDF, guest_mac, 1400, 5);
    guest_sends_host_receives(GUEST_BDF, 6);
    command_expect("net-stats " GUEST_BDF, "PROBE NET STATS " GUEST_BDF " rx=1 tx=1 dropped=0");
}

Test(guest_net, without_mergeable_buffers_full_frames_still_arrive)
{
    const char *extra[] = {
        "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no", "-device",
        "virtio-net-pci,netdev=n0,mac=" GUEST_MAC ",addr=5,romfile=,mrg_rxbuf=off", NULL};
    boot(extra);
    expect_add_line(GUEST_BDF, "1af4:1000", GUEST_MAC);
    host_sends_guest_reports(GUEST_BDF, guest_mac, 1500, 7);
    host_sends_guest_reports(GUEST_BDF, guest_mac, 46, 8);
    guest_sends_host_receives(GUEST_BDF, 9);
}

Test(guest_net, set_link_off_and_on_reaches_the_guest)
{
    const char *extra[] = {
        "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no", "-device",
        "virtio-net-pci,netdev=n0,id=nic0,mac=" GUEST_MAC ",addr=5,romfile=", NULL};
    boot(extra);
    expect_add_line(GUEST_BDF, "1af4:1000", GUEST_MAC);
    qmp_expect_return(
        "{\"execute\": \"set_link\", \"arguments\": {\"name\": \"n0\", \"up\": false}}");
    char line[512];
    expect_line("PROBE NET LINK ", line, sizeof(line));
    cr_assert_str_eq(line, "PROBE NET LINK " GUEST_BDF " down");
    command_expect("net-send " GUEST_BDF " ffffffffffff02000000000188b5",
                   "PROBE NET ERROR " GUEST_BDF " link down");
    qmp_expect_return(
        "{\"execute\": \"set_link\", \"arguments\": {\"name\": \"n0\", \"up\": true}}");
    expect_line("PROBE NET LINK ", line, sizeof(line));
    cr_assert_str_eq(line, "PROBE NET LINK " GUEST_BDF " up");
    guest_sends_host_receives(GUEST_BDF, 11);
}

Test(guest_net, netdev_add_device_add_then_device_del_netdev_del)
{
    boot(NULL);
    struct net_peer_error error;
    cr_assert_eq(net_peer_create_tap("tap1", true, &error), 0, "%s", error.message);
    cr_assert_eq(net_peer_link_up("tap1", &error), 0, "%s", error.message);
    close(guest.packet_fd);
    guest.packet_fd = net_peer_open_packet("tap1", &error);
    cr_assert_geq(guest.packet_fd, 0, "%s", error.message);
    for (int cycle = 0; cycle < 3; cycle++) {
        qmp_expect_return("{\"execute\": \"netdev_add\", \"arguments\": {\"type\": \"tap\", "
                          "\"id\": \"n1\", \"ifname\": \"tap1\", \"script\": \"no\", "
                          "\"downscript\": \"no\"}}");
        qmp_expect_return("{\"execute\": \"device_add\", \"arguments\": {\"driver\": "
                          "\"virtio-net-pci\", \"netdev\": \"n1\", \"id\": \"nic1\", "
                          "\"mac\": \"52:54:00:12:34:56\", \"addr\": \"6\", \"romfile\": \"\"}}");
        expect_add_line("00:06.0", "1af4:1000", "52:54:00:12:34:56");
        uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
        host_sends_guest_reports("00:06.0", mac, 100, 30 + (uint32_t)cycle);
        memcpy(guest_mac, mac, 6);
        guest_sends_host_receives("00:06.0", 40 + (uint32_t)cycle);
        qmp_expect_return("{\"execute\": \"device_del\", \"arguments\": {\"id\": \"nic1\"}}");
        char line[512];
        expect_line("PROBE PCI EJECT ", line, sizeof(line));
        cr_assert_str_eq(line, "PROBE PCI EJECT 00:06.0");
        for (;;) { /* QEMU also reports the virtio backend child; wait for the device */
            char event[4096];
            cr_assert_eq(qmp_client_wait_event(&guest.qmp, "DEVICE_DELETED", event, sizeof(event),
                                               STEP_TIMEOUT_MS),
                         0, "no DEVICE_DELETED for nic1");
            if (strstr(event, "\"device\": \"nic1\""))
                break;
        }
        qmp_expect_return("{\"execute\": \"netdev_del\", \"arguments\": {\"id\": \"n1\"}}");
        command_expect("net-stats 00:06.0", "PROBE NET ERROR 00:06.0 no such device");
    }
}

Test(guest_net, receive_lines_are_limited_and_the_rest_counted)
{
    const char *extra[] = {"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no", "-device",
                           "virtio-net-pci,netdev=n0,mac=" GUEST_MAC ",addr=5,romfile=", NULL};
    boot(extra);
    expect_add_line(GUEST_BDF, "1af4:1000", GUEST_MAC);
    enum { FRAMES = 200 };
    for (uint32_t i = 0; i < FRAMES; i++) {
        uint8_t frame[128];
        size_t length = net_peer_build_frame(frame, guest_mac, host_mac, TEST_ETHER_TYPE, 46, i);
        struct net_peer_error error;
        cr_assert_eq(net_peer_send(guest.packet_fd, frame, length, &error), 0, "%s", error.message);
    }
    /* Every frame shows up once: as an RX line or in a RX-SUPPRESSED count. */
    unsigned lines = 0, suppressed = 0;
    while (lines + suppressed < FRAMES) {
        char line[512];
        expect_line("PROBE NET RX", line, sizeof(line));
        unsigned count;
        if (sscanf(line, "PROBE NET RX-SUPPRESSED " GUEST_BDF " lines=%u", &count) == 1)
            suppressed += count;
        else
            lines++;
    }
    cr_assert_eq(lines + suppressed, FRAMES);
    cr_assert_geq(lines, 64u);
    command_expect("net-stats " GUEST_BDF, "PROBE NET STATS " GUEST_BDF " rx=200 tx=0 dropped=0");
}

Test(guest_net, without_status_the_link_is_up_and_set_link_is_not_seen)
{
    const char *extra[] = {"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no", "-device",
                           "virtio-net-pci,netdev=n0,mac=" GUEST_MAC ",addr=5,romfile=,status=off",
                           NULL};
    boot(extra);
    expect_add_line(GUEST_BDF, "1af4:1000", GUEST_MAC);
    qmp_expect_return(
        "{\"execute\": \"set_link\", \"arguments\": {\"name\": \"n0\", \"up\": false}}");
    /* No config interrupt and no STATUS to read: the next line answers the ping. */
    command_expect("ping", "PROBE PONG");
    /* The guest cannot know, so it sends; QEMU drops the frame but completes it. */
    command_expect("net-send " GUEST_BDF " ffffffffffff02000000000188b5",
                   "PROBE NET TX " GUEST_BDF " len=14 ok");
}

Test(guest_net, jumbo_frames_span_three_buffers_and_too_long_echoes_are_dropped)
{
    struct net_peer_error error;
    cr_assert_eq(net_peer_set_mtu("tap0", 4000, &error), 0, "%s", error.message);
    const char *extra[] = {"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no", "-device",
                           "virtio-net-pci,netdev=n0,mac=" GUEST_MAC ",addr=5,romfile=", NULL};
    boot(extra);
    expect_add_line(GUEST_BDF, "1af4:1000", GUEST_MAC);
    /* 12 + 3000 bytes over 1024-byte merged buffers: num_buffers = 3. */
    host_sends_guest_reports(GUEST_BDF, guest_mac, 2986, 50);
    command_expect("net-echo " GUEST_BDF " on", "PROBE NET ECHO " GUEST_BDF " on");
    uint8_t frame[4096];
    size_t length = net_peer_build_frame(frame, guest_mac, host_mac, TEST_ETHER_TYPE, 2986, 51);
    cr_assert_eq(net_peer_send(guest.packet_fd, frame, length, &error), 0, "%s", error.message);
    /* A transmit buffer holds 2036 frame bytes: the echo cannot be sent. A small
     * frame after it comes back, and the tap keeps the order: by then the jumbo
     * frame was handled. */
    uint8_t small[128], received[4096];
    size_t small_length = net_peer_build_frame(small, guest_mac, host_mac, TEST_ETHER_TYPE, 46, 52);
    cr_assert_eq(net_peer_send(guest.packet_fd, small, small_length, &error), 0, "%s",
                 error.message);
    ssize_t got = net_peer_receive(guest.packet_fd, TEST_ETHER_TYPE, received, sizeof(received),
                                   STEP_TIMEOUT_MS, &error);
    cr_assert_eq(got, (ssize_t)small_length, "%s", got < 0 ? error.message : "not the small echo");
    command_expect("net-stats " GUEST_BDF, "PROBE NET STATS " GUEST_BDF " rx=3 tx=1 dropped=1");
}

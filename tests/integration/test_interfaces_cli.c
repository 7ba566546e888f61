/* pvsh's network interface commands as a user runs them: the pvsh binary against a private
 * plugvirtd whose domains run the probe guest, NICs on taps in the harness's private network
 * namespace (never the host's interfaces). attach-interface, domiflist, domif-setlink and
 * domif-getlink (seen by the guest when its virtio-net driver reports link changes, and in
 * the live XML), domifstat counters that grow with real frames, detach-interface, and the
 * errors a user gets. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "json_util.h"

static struct daemon_process daemon_under_test;
static struct daemon_process *const daemon_p = &daemon_under_test;
static void setup(void)
{
    memset(&daemon_under_test, 0, sizeof(daemon_under_test));
    int rc = daemon_start(&daemon_under_test);
    cr_assert_eq(rc, 0, "plugvirtd did not start: %s", strerror(-rc));
    /* plugvirtd, its VMMs and taps run in the harness's private network namespace. */
    daemon_harness_require_netns(daemon_p);
}

static void teardown(void)
{
    daemon_cleanup(&daemon_under_test);
}

TestSuite(interfaces_cli, .init = setup, .fini = teardown, .timeout = 240);

#define GUEST_TIMEOUT_MS 30000
#define GUEST_MAC "52:54:00:aa:10:01"
#define NIC_BDF "00:03.0"

/* --- pvsh ---------------------------------------------------------------------------------- */

struct pvsh_run {
    int status;
    char out[8192];
    char err[4096];
};

/* Reads both pipes to their end (a full pipe must not block pvsh). */
static void drain(int out_fd, int err_fd, struct pvsh_run *run)
{
    size_t out_length = 0, err_length = 0;
    struct pollfd fds[2] = {{.fd = out_fd, .events = POLLIN}, {.fd = err_fd, .events = POLLIN}};
    int open_count = 2;
    while (open_count > 0) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char *buffer = i == 0 ? run->out : run->err;
            size_t *length = i == 0 ? &out_length : &err_length;
            size_t size = i == 0 ? sizeof(run->out) : sizeof(run->err);
            char scratch[512];
            bool room = *length + 1 < size;
            ssize_t got = read(fds[i].fd, room ? buffer + *length : scratch,
                               room ? size - 1 - *length : sizeof(scratch));
            if (got <= 0) {
                fds[i].fd = -1;
                open_count--;
            } else if (room) {
                *length += (size_t)got;
            }
        }
    }
    run->out[out_length] = '\0';
    run->err[err_length] = '\0';
}

/* Runs the pvsh binary with "-c <socket>" and `words`; returns its exit status and output. */
static void pvsh(struct pvsh_run *run, const char *const *words)
{
    memset(run, 0, sizeof(*run));
    const char *argv[32] = {PLUGVIRT_BUILDDIR "/client/pvsh", "-c", daemon_p->socket_path};
    size_t argc = 3;
    for (size_t i = 0; words[i] && argc < 31; i++)
        argv[argc++] = words[i];
    argv[argc] = NULL;
    int out_pipe[2], err_pipe[2];
    cr_assert_eq(pipe2(out_pipe, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(err_pipe, O_CLOEXEC), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(out_pipe[1], STDOUT_FILENO);
        dup2(err_pipe[1], STDERR_FILENO);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(out_pipe[1]);
    close(err_pipe[1]);
    drain(out_pipe[0], err_pipe[0], run);
    close(out_pipe[0]);
    close(err_pipe[0]);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    run->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#define PVSH(run, ...) pvsh((run), (const char *const[]){__VA_ARGS__, NULL})

/* pvsh must succeed and print exactly `expected`. */
static void pvsh_expect(const char *expected, const char *const *words)
{
    struct pvsh_run run;
    pvsh(&run, words);
    cr_assert_eq(run.status, 0, "pvsh %s %s: status %d, stderr: %s", words[0], words[1], run.status,
                 run.err);
    cr_assert_str_eq(run.out, expected, "pvsh %s %s printed:\n%s", words[0], words[1], run.out);
}
#define PVSH_EXPECT(expected, ...) pvsh_expect((expected), (const char *const[]){__VA_ARGS__, NULL})

/* --- the domain and its guest -------------------------------------------------------------- */

static void define_and_boot(const char *name, const char *devices_xml)
{
    char *xml = daemon_domain_xml(name, NULL, NULL, devices_xml);
    char *params = daemon_xml_params(NULL, xml, NULL);
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.define", params, &reply);
    api_reply_free(&reply);
    free(params);
    free(xml);
    daemon_call_simple(daemon_p, "domain.start", name);
    daemon_wait_booted(daemon_p, name);
}

/* Waits for the guest's whole "PROBE PCI ADD <bdf> ..." line; true when it comes from the
 * probe guest's virtio-net driver ("... virtio-net mac=... link=..."), which also reports
 * link changes and takes frames; false for a guest that only lists the function. */
static bool wait_nic(const char *name)
{
    char line[512];
    cr_assert_eq(daemon_wait_serial_line(daemon_p, name, "PROBE PCI ADD " NIC_BDF " ",
                                         GUEST_TIMEOUT_MS, line, sizeof(line)),
                 0, "the guest of %s did not see a NIC at " NIC_BDF, name);
    cr_assert(strstr(line, " 1af4:1000 ") || strstr(line, " 1af4:1041 "), "not virtio-net: %s",
              line);
    return strstr(line, " virtio-net ") != NULL;
}

/* One command on the guest's serial console (domain.console, forced: the test owns it);
 * copies the first whole answer line starting with `prefix` into `line`. */
static void guest_command(const char *name, const char *command, const char *prefix, char *line,
                          size_t size)
{
    struct pv_error error = {0};
    struct api_client *console = api_client_connect(daemon_p->socket_path, &error);
    cr_assert_not_null(console, "%s", error.message);
    char params[200];
    snprintf(params, sizeof(params), "{\"domain\": \"%s\", \"force\": true}", name);
    struct api_reply reply;
    int rc = api_client_call(console, "domain.console", params, 30000, &reply, &error);
    cr_assert(rc == 0 && !reply.error_code, "domain.console: %s",
              rc < 0 ? error.message : reply.error_message);
    api_reply_free(&reply);
    int fd = api_client_fd(console);
    char buffer[16384];
    size_t length = api_client_take_buffered(console, buffer, sizeof(buffer) - 1);
    size_t command_length = strlen(command);
    cr_assert_eq(write(fd, command, command_length), (ssize_t)command_length);
    cr_assert_eq(write(fd, "\n", 1), 1);
    long long deadline = daemon_now_ms() + GUEST_TIMEOUT_MS;
    bool found = false;
    while (!found && daemon_now_ms() < deadline) {
        buffer[length] = '\0';
        for (char *start = buffer; !found;) {
            char *end = strchr(start, '\n');
            if (!end)
                break;
            if (strncmp(start, prefix, strlen(prefix)) == 0) {
                size_t line_length = (size_t)(end - start);
                if (line_length && start[line_length - 1] == '\r')
                    line_length--;
                snprintf(line, size, "%.*s", (int)line_length, start);
                found = true;
            }
            start = end + 1;
        }
        struct pollfd wait = {.fd = fd, .events = POLLIN};
        if (!found && poll(&wait, 1, 200) == 1) {
            ssize_t got = read(fd, buffer + length, sizeof(buffer) - 1 - length);
            cr_assert_gt(got, 0, "the console closed before '%s' came", prefix);
            length += (size_t)got;
            cr_assert_lt(length, sizeof(buffer) - 1, "no '%s' in 16 KiB of console output", prefix);
        }
    }
    api_client_close(console);
    cr_assert(found, "the guest did not answer '%s' with a '%s' line", command, prefix);
}

/* --- counters and frames ------------------------------------------------------------------- */

struct if_counters {
    unsigned long long rx_bytes, rx_packets, rx_errs, rx_drop;
    unsigned long long tx_bytes, tx_packets, tx_errs, tx_drop;
};

/* `pvsh domifstat`: all eight virsh lines, in virsh's order, for `interface`. */
static void domifstat(const char *name, const char *interface, struct if_counters *counters)
{
    struct pvsh_run run;
    PVSH(&run, "domifstat", name, interface);
    cr_assert_eq(run.status, 0, "domifstat: %s", run.err);
    static const char *const names[] = {"rx_bytes", "rx_packets", "rx_errs", "rx_drop",
                                        "tx_bytes", "tx_packets", "tx_errs", "tx_drop"};
    unsigned long long *values[] = {
        &counters->rx_bytes, &counters->rx_packets, &counters->rx_errs, &counters->rx_drop,
        &counters->tx_bytes, &counters->tx_packets, &counters->tx_errs, &counters->tx_drop};
    char *line = run.out;
    for (size_t i = 0; i < 8; i++) {
        char expected[64];
        snprintf(expected, sizeof(expected), "%s %s ", interface, names[i]);
        cr_assert(strncmp(line, expected, strlen(expected)) == 0, "line %zu of domifstat: %s", i,
                  run.out);
        char *end = NULL;
        *values[i] = strtoull(line + strlen(expected), &end, 10);
        cr_assert(end && *end == '\n', "domifstat: %s", run.out);
        line = end + 1;
    }
    cr_assert_str_eq(line, "\n", "domifstat ends with virsh's empty line: %s", run.out);
}

/* Frame `index` of send_frames: to the guest, from a locally administered address, IEEE 802
 * local experimental ethertype, the index in the first payload byte. */
static void test_frame(unsigned index, unsigned char frame[60])
{
    static const unsigned char head[14] = {0x52, 0x54, 0x00, 0xaa, 0x10, 0x01, 0x02,
                                           0x00, 0x00, 0x00, 0x00, 0x01, 0x88, 0xb5};
    memset(frame, 0, 60);
    memcpy(frame, head, sizeof(head));
    frame[14] = (unsigned char)index;
}

/* The probe guest's checksum of a received frame (FNV-1a, 32 bits; tests/guest/README). */
static unsigned fnv1a(const unsigned char *bytes, size_t length)
{
    unsigned hash = 2166136261u;
    for (size_t i = 0; i < length; i++) {
        hash ^= bytes[i];
        hash *= 16777619u;
    }
    return hash;
}

/* Sends `count` 60-byte frames to the guest's MAC on `tap`, from plugvirtd's namespace (a
 * child joins it: setns would move the whole test otherwise). */
static void send_frames(const char *tap, unsigned count)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)daemon_p->pid);
    int netns = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(netns, 0, "%s: %s", path, strerror(errno));
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        if (setns(netns, CLONE_NEWNET) < 0)
            _exit(10);
        int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
        unsigned index = if_nametoindex(tap);
        if (fd < 0 || index == 0)
            _exit(11);
        struct sockaddr_ll address = {
            .sll_family = AF_PACKET, .sll_ifindex = (int)index, .sll_halen = ETH_ALEN};
        unsigned char frame[60];
        for (unsigned i = 0; i < count; i++) {
            test_frame(i, frame);
            memcpy(address.sll_addr, frame, ETH_ALEN);
            if (sendto(fd, frame, sizeof(frame), 0, (struct sockaddr *)&address, sizeof(address)) !=
                (ssize_t)sizeof(frame))
                _exit(12);
        }
        _exit(0);
    }
    close(netns);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "sending frames on %s failed (status %d: 10 setns, 11 socket/tap, 12 sendto)", tap,
              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* --- tests --------------------------------------------------------------------------------- */

static const char list_header[] = " Interface   Type       Source   Model    MAC\n"
                                  "-------------------------------------------------------------\n";

Test(interfaces_cli, cold_nic_list_link_and_errors)
{
    define_and_boot("cold", "<interface type='ethernet'><mac address='" GUEST_MAC "'/>"
                            "</interface>");
    bool driver = wait_nic("cold");

    char table[512];
    snprintf(table, sizeof(table), "%s vnet0       ethernet   -        virtio   " GUEST_MAC "\n\n",
             list_header);
    PVSH_EXPECT(table, "domiflist", "cold");
    snprintf(table, sizeof(table), "%s -           ethernet   -        virtio   " GUEST_MAC "\n\n",
             list_header);
    PVSH_EXPECT(table, "domiflist", "cold", "--inactive");

    PVSH_EXPECT("vnet0 up\n\n", "domif-getlink", "cold", "vnet0");
    PVSH_EXPECT("Device updated successfully\n\n", "domif-setlink", "cold", "vnet0", "down");
    if (driver)
        cr_assert_eq(daemon_wait_serial(daemon_p, "cold", "PROBE NET LINK " NIC_BDF " down",
                                        GUEST_TIMEOUT_MS),
                     0, "the guest did not see its link go down");
    cr_assert(daemon_domain_xml_contains(daemon_p, "cold", false, "<link state='down'/>"),
              "the live XML records the link state");
    cr_assert_not(daemon_domain_xml_contains(daemon_p, "cold", true, "<link state="),
                  "a live change leaves the definition alone");
    /* By MAC, in another case, as virsh accepts it. */
    PVSH_EXPECT("52:54:00:AA:10:01 down\n\n", "domif-getlink", "cold", "52:54:00:AA:10:01");
    PVSH_EXPECT("Device updated successfully\n\n", "domif-setlink", "cold", GUEST_MAC, "up");
    if (driver)
        cr_assert_eq(
            daemon_wait_serial(daemon_p, "cold", "PROBE NET LINK " NIC_BDF " up", GUEST_TIMEOUT_MS),
            0, "the guest did not see its link come back");
    PVSH_EXPECT("vnet0 up\n\n", "domif-getlink", "cold", "vnet0");

    /* --config: the definition only, named by MAC (it names no tap). */
    PVSH_EXPECT("Device updated successfully\n\n", "domif-setlink", "cold", GUEST_MAC, "down",
                "--config");
    PVSH_EXPECT(GUEST_MAC " down\n\n", "domif-getlink", "cold", GUEST_MAC, "--config");
    PVSH_EXPECT("vnet0 up\n\n", "domif-getlink", "cold", "vnet0");
    cr_assert(daemon_domain_xml_contains(daemon_p, "cold", true, "<link state='down'/>"));

    struct if_counters counters;
    domifstat("cold", "vnet0", &counters);
    cr_expect_eq(counters.rx_errs + counters.tx_errs, 0);

    /* What a user gets wrong. */
    struct pvsh_run run;
    PVSH(&run, "domif-getlink", "cold", "vnet9");
    cr_expect_eq(run.status, 1);
    cr_expect_str_eq(run.err, "error: no interface 'vnet9' in domain 'cold' (name it by its tap "
                              "or MAC address: pvsh domiflist cold lists them)\n");
    PVSH(&run, "domif-setlink", "cold", "vnet9", "down");
    cr_expect_eq(run.status, 1);
    cr_expect_str_eq(run.err, "error: no interface 'vnet9' in domain 'cold' (name it by its tap "
                              "or MAC address: pvsh domiflist cold lists them)\n");
    PVSH(&run, "domifstat", "cold", "vnet9");
    cr_expect_eq(run.status, 1);
    cr_expect(strstr(run.err, "no interface 'vnet9'"), "%s", run.err);
    PVSH(&run, "domif-setlink", "cold", "vnet0", "sideways");
    cr_expect_eq(run.status, 1);
    cr_expect_str_eq(run.err, "error: invalid link state 'sideways': it is 'up' or 'down'\n");
    PVSH(&run, "attach-interface", "cold", "--type", "bridge", "--source", "br0", "--script",
         "/etc/qemu-ifup");
    cr_expect_eq(run.status, 1);
    cr_expect(strstr(run.err, "error: option --script is not supported by plugvirt"), "%s",
              run.err);

    /* The read-only socket lists and counts but does not change links. */
    struct pv_error error = {0};
    struct api_client *reader = api_client_connect(daemon_p->read_only_socket_path, &error);
    cr_assert_not_null(reader, "%s", error.message);
    struct api_reply reply;
    cr_assert_eq(
        api_client_call(reader, "domain.iflist", "{\"domain\": \"cold\"}", 30000, &reply, &error),
        0, "%s", error.message);
    cr_expect_null(reply.error_code, "domain.iflist: %s", reply.error_message);
    api_reply_free(&reply);
    cr_assert_eq(api_client_call(reader, "domain.ifstat",
                                 "{\"domain\": \"cold\", \"interface\": \"vnet0\"}", 30000, &reply,
                                 &error),
                 0, "%s", error.message);
    cr_expect_null(reply.error_code, "domain.ifstat: %s", reply.error_message);
    api_reply_free(&reply);
    cr_assert_eq(api_client_call(reader, "domain.set_link",
                                 "{\"domain\": \"cold\", \"interface\": \"vnet0\", "
                                 "\"state\": \"down\"}",
                                 30000, &reply, &error),
                 0, "%s", error.message);
    cr_expect_str_eq(reply.error_code ? reply.error_code : "", "permission-denied");
    api_reply_free(&reply);
    api_client_close(reader);
    daemon_expect_error(daemon_p, "domain.set_link",
                        "{\"domain\": \"cold\", \"interface\": \"vnet0\", \"state\": "
                        "\"down\", \"flags\": [\"live\", \"config\"]}",
                        "invalid-argument", "either 'live' or 'config'");

    daemon_call_simple(daemon_p, "domain.destroy", "cold");
    PVSH(&run, "domifstat", "cold", "vnet0");
    cr_expect_eq(run.status, 1);
    cr_expect_str_eq(run.err, "error: Requested operation is not valid: domain is not running\n");
    /* The next start takes the definition's link state. */
    daemon_call_simple(daemon_p, "domain.start", "cold");
    daemon_wait_booted(daemon_p, "cold");
    PVSH_EXPECT("vnet0 down\n\n", "domif-getlink", "cold", "vnet0");
}

Test(interfaces_cli, attach_list_stat_detach)
{
    define_and_boot("hot", NULL);
    struct pvsh_run run;
    PVSH(&run, "attach-interface", "hot", "--type", "ethernet", "--model", "virtio", "--mac",
         GUEST_MAC, "--print-xml");
    cr_assert_eq(run.status, 0, "%s", run.err);
    cr_assert_str_eq(run.out, "<interface type='ethernet'>\n"
                              "  <mac address='" GUEST_MAC "'/>\n"
                              "  <model type='virtio'/>\n"
                              "</interface>\n\n");
    cr_assert_not(daemon_domain_xml_contains(daemon_p, "hot", false, "<interface"),
                  "--print-xml attaches nothing");

    PVSH_EXPECT("Interface attached successfully\n\n", "attach-interface", "hot", "--type",
                "ethernet", "--model", "virtio", "--mac", GUEST_MAC);
    bool driver = wait_nic("hot");
    char table[512];
    snprintf(table, sizeof(table), "%s vnet0       ethernet   -        virtio   " GUEST_MAC "\n\n",
             list_header);
    PVSH_EXPECT(table, "domiflist", "hot");
    PVSH_EXPECT("vnet0 up\n\n", "domif-getlink", "hot", "vnet0");
    PVSH_EXPECT("Device updated successfully\n\n", "domif-setlink", "hot", "vnet0", "down");
    PVSH_EXPECT("vnet0 down\n\n", "domif-getlink", "hot", "vnet0");
    if (driver)
        cr_assert_eq(daemon_wait_serial(daemon_p, "hot", "PROBE NET LINK " NIC_BDF " down",
                                        GUEST_TIMEOUT_MS),
                     0, "the guest did not see its link go down");
    PVSH_EXPECT("Device updated successfully\n\n", "domif-setlink", "hot", "vnet0", "up");
    PVSH_EXPECT("vnet0 up\n\n", "domif-getlink", "hot", "vnet0");

    struct if_counters before, after;
    domifstat("hot", "vnet0", &before);
    if (driver) {
        if (daemon_wait_serial(daemon_p, "hot", "PROBE NET LINK " NIC_BDF " up",
                               GUEST_TIMEOUT_MS) != 0)
            cr_assert_fail("the guest did not see its link come back");
        /* Host to guest: the tap transmits, the guest receives (the guest counts them too). */
        send_frames("vnet0", 4);
        /* The last frame's RX line: the tap has handed all four to QEMU by then. */
        unsigned char last[60];
        test_frame(3, last);
        char prefix[96];
        snprintf(prefix, sizeof(prefix), "PROBE NET RX " NIC_BDF " len=60 sum=0x%08x",
                 fnv1a(last, sizeof(last)));
        cr_assert_eq(daemon_wait_serial(daemon_p, "hot", prefix, GUEST_TIMEOUT_MS), 0,
                     "the guest did not receive the frames (no '%s')", prefix);
        char line[256];
        /* Guest to host. */
        guest_command("hot",
                      "net-send " NIC_BDF " 020000000001"
                      "525400aa1001"
                      "88b5"
                      "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
                      "202122232425262728292a2b2c2d",
                      "PROBE NET TX " NIC_BDF " ", line, sizeof(line));
        cr_assert_str_eq(line, "PROBE NET TX " NIC_BDF " len=60 ok");
        domifstat("hot", "vnet0", &after);
        cr_expect_geq(after.rx_packets, before.rx_packets + 4, "rx_packets %llu -> %llu",
                      before.rx_packets, after.rx_packets);
        cr_expect_geq(after.rx_bytes, before.rx_bytes + 4 * 60, "rx_bytes %llu -> %llu",
                      before.rx_bytes, after.rx_bytes);
        cr_expect_geq(after.tx_packets, before.tx_packets + 1, "tx_packets %llu -> %llu",
                      before.tx_packets, after.tx_packets);
        cr_expect_geq(after.tx_bytes, before.tx_bytes + 60, "tx_bytes %llu -> %llu",
                      before.tx_bytes, after.tx_bytes);
    } else {
        /* A guest without a virtio-net driver never sets DRIVER_OK: QEMU reads at most one
         * frame from the tap and the guest sends none, so only the host side can be shown
         * to count (frames queued for the guest, or dropped once its queue is full). */
        send_frames("vnet0", 4);
        domifstat("hot", "vnet0", &after);
        cr_expect_geq(after.rx_packets + after.rx_drop, before.rx_packets + before.rx_drop,
                      "counters never go back");
        fprintf(stderr,
                "NOTE: the probe guest has no virtio-net driver: frames in both directions are "
                "checked once it has\n");
    }

    PVSH(&run, "detach-interface", "hot", "ethernet", "--wait=60");
    cr_assert_eq(run.status, 0, "detach-interface: status %d: %s%s", run.status, run.out, run.err);
    cr_assert_str_eq(run.out, "Interface detached successfully\n\n");
    /* An empty table is as wide as its header. */
    PVSH_EXPECT(" Interface   Type   Source   Model   MAC\n"
                "------------------------------------------\n\n",
                "domiflist", "hot");
    PVSH(&run, "detach-interface", "hot", "ethernet");
    cr_expect_eq(run.status, 1);
    cr_expect_str_eq(run.err, "error: No interface found whose type is ethernet\n");
}

Test(interfaces_cli, detach_interface_needs_mac_with_two_of_a_type)
{
    define_and_boot("two", "<interface type='ethernet'><mac address='52:54:00:aa:20:01'/>"
                           "</interface><interface type='ethernet'><mac "
                           "address='52:54:00:aa:20:02'/></interface>");
    struct pvsh_run run;
    PVSH(&run, "detach-interface", "two", "ethernet", "--config");
    cr_expect_eq(run.status, 1);
    cr_expect_str_eq(run.err, "error: Domain has 2 interfaces. Please specify which one to detach "
                              "using --mac\n");
    PVSH_EXPECT("Interface detached successfully\n\n", "detach-interface", "two", "ethernet",
                "--mac", "52:54:00:AA:20:02", "--config");
    char table[512];
    snprintf(table, sizeof(table),
             "%s -           ethernet   -        virtio   52:54:00:aa:20:01\n\n", list_header);
    PVSH_EXPECT(table, "domiflist", "two", "--inactive");
}

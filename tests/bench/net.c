/* Benchmark: virtio-net frame latency and receive rate of plugvirt-vmm against
 * stock QEMU, both running the probe guest with the same NIC command line
 * (-netdev tap,... -device virtio-net-pci,...), in the same run, inside a
 * private network namespace (the host's interfaces are never touched).
 *   round trip: host sends a frame on the tap, the guest (net-echo on) swaps
 *     the MACs and sends it back, the host receives it: median, p90, min;
 *   one way: the host sends frames in bursts (each followed by net-stats, so
 *     at most one burst waits in the tap queue) and the guest counts them
 *     (net-stats rx): frames per second until the last one was counted.
 * plugvirt-vmm needs /dev/kvm: without it its half is skipped, saying why, and
 * no ratio is printed. QEMU uses KVM when /dev/kvm works, TCG otherwise, and
 * the label says which.
 *
 * Usage: net [round trips] [one-way frames]
 *        (environment: PLUGVIRT_VMM, PLUGVIRT_PROBE_GUEST, QEMU)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "kvm_check.h"
#include "net_peer.h"

#define DEFAULT_ROUND_TRIPS 200
#define DEFAULT_ONE_WAY_FRAMES 5000
#define WARM_UP_FRAMES 5
#define BURST 200  /* below the tap's queue (500 frames): a burst is never dropped there */
#define PAYLOAD 46 /* minimum Ethernet frame, 60 bytes */
#define ETHER_TYPE 0x88b5
#define GUEST_MAC "34:40:b5:9e:d3:90"
#define MEMORY_MIB "128"
#define BOOT_TIMEOUT_MS 60000
#define STEP_TIMEOUT_MS 10000

struct run {
    const char *label;
    bool valid;
    char skipped[300]; /* why it did not run, or "" */
    double *round_trips_us;
    int round_trip_count;
    double frames_per_second;
    unsigned long lost;
};

struct statistics {
    double median, p90, min;
};

static const uint8_t host_mac[6] = {0x02, 0, 0, 0, 0, 0x01};
static uint8_t guest_mac[6];

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static struct statistics statistics_of(double *samples, int count)
{
    struct statistics result = {0};
    if (count < 1)
        return result;
    qsort(samples, (size_t)count, sizeof(double), compare_doubles);
    result.median =
        count % 2 ? samples[count / 2] : (samples[count / 2 - 1] + samples[count / 2]) / 2;
    result.p90 = samples[(9 * count + 9) / 10 - 1]; /* nearest rank: ceil(0.9 n) */
    result.min = samples[0];
    return result;
}

/* The harness keeps every console byte; drop the lines already matched so long
 * runs (RX lines while one-way frames arrive) never fill its buffer. */
static void compact_console(struct vmm_process *process)
{
    if (!process->console_consumed)
        return;
    memmove(process->console, process->console + process->console_consumed,
            process->console_length - process->console_consumed);
    process->console_length -= process->console_consumed;
    process->console_consumed = 0;
    process->console[process->console_length] = '\0';
}

static int wait_line(struct vmm_process *process, const char *prefix, char *line, size_t size)
{
    compact_console(process);
    int rc = vmm_process_wait_line(process, prefix, STEP_TIMEOUT_MS, line, size);
    if (rc < 0)
        fprintf(stderr, "net: no '%s' line\n  console tail:\n%s\n  stderr:\n%s\n", prefix,
                process->console +
                    (process->console_length > 2000 ? process->console_length - 2000 : 0),
                process->errors);
    return rc;
}

static int command(struct vmm_process *process, const char *text, const char *prefix, char *line,
                   size_t size)
{
    char buffer[300];
    snprintf(buffer, sizeof(buffer), "%s\n", text);
    if (vmm_process_send(process, buffer) < 0)
        return -EPIPE;
    return wait_line(process, prefix, line, size);
}

static int measure_round_trips(struct run *run, struct vmm_process *process, const char *bdf,
                               int packet_fd)
{
    char text[64], line[512];
    snprintf(text, sizeof(text), "net-echo %s on", bdf);
    if (command(process, text, "PROBE NET ECHO ", line, sizeof(line)) < 0)
        return -EIO;
    for (int i = -WARM_UP_FRAMES; i < run->round_trip_count; i++) {
        uint8_t frame[128], expected[128], received[2048];
        size_t length = net_peer_build_frame(frame, guest_mac, host_mac, ETHER_TYPE, PAYLOAD,
                                             (uint32_t)(i + WARM_UP_FRAMES));
        memcpy(expected, frame + 6, 6);
        memcpy(expected + 6, frame, 6);
        memcpy(expected + 12, frame + 12, length - 12);
        struct net_peer_error error;
        double start = now_us();
        if (net_peer_send(packet_fd, frame, length, &error) < 0) {
            fprintf(stderr, "%s: %s\n", run->label, error.message);
            return -EIO;
        }
        ssize_t got = net_peer_receive(packet_fd, ETHER_TYPE, received, sizeof(received),
                                       STEP_TIMEOUT_MS, &error);
        double elapsed = now_us() - start;
        if (got != (ssize_t)length || memcmp(received, expected, length) != 0) {
            fprintf(stderr, "%s: round trip %d: %s\n", run->label, i,
                    got < 0 ? error.message : "the echo is not the frame with MACs swapped");
            return -EIO;
        }
        if (i >= 0)
            run->round_trips_us[i] = elapsed;
    }
    snprintf(text, sizeof(text), "net-echo %s off", bdf);
    return command(process, text, "PROBE NET ECHO ", line, sizeof(line)) < 0 ? -EIO : 0;
}

static int read_rx(struct vmm_process *process, const char *bdf, unsigned long *rx)
{
    char text[64], line[512];
    snprintf(text, sizeof(text), "net-stats %s", bdf);
    if (command(process, text, "PROBE NET STATS ", line, sizeof(line)) < 0)
        return -EIO;
    const char *field = strstr(line, " rx=");
    if (!field)
        return -EPROTO;
    *rx = strtoul(field + 4, NULL, 10);
    return 0;
}

static int measure_one_way(struct run *run, struct vmm_process *process, const char *bdf,
                           int packet_fd, int frames)
{
    unsigned long first, rx = 0;
    if (read_rx(process, bdf, &first) < 0)
        return -EIO;
    uint8_t frame[128];
    size_t length = net_peer_build_frame(frame, guest_mac, host_mac, ETHER_TYPE, PAYLOAD, 7);
    double start = now_us();
    for (int sent = 0; sent < frames;) {
        for (int i = 0; i < BURST && sent < frames; i++, sent++) {
            struct net_peer_error error;
            if (net_peer_send(packet_fd, frame, length, &error) < 0) {
                fprintf(stderr, "%s: %s\n", run->label, error.message);
                return -EIO;
            }
        }
        if (read_rx(process, bdf, &rx) < 0)
            return -EIO;
    }
    /* The last burst may still be on its way: ask until it is counted or stops
     * moving (frames lost between the tap and the guest). */
    unsigned long previous = 0;
    for (int unchanged = 0; rx - first < (unsigned long)frames && unchanged < 100;) {
        previous = rx;
        if (read_rx(process, bdf, &rx) < 0)
            return -EIO;
        unchanged = rx == previous ? unchanged + 1 : 0;
    }
    double elapsed = now_us() - start;
    unsigned long counted = rx - first;
    run->lost = counted < (unsigned long)frames ? (unsigned long)frames - counted : 0;
    run->frames_per_second = (double)counted / (elapsed / 1e6);
    return 0;
}

static void measure(struct run *run, const char *program, const char *const *arguments,
                    struct vmm_process *process, int packet_fd, int one_way_frames)
{
    setenv("PLUGVIRT_VMM", program, 1);
    int rc = vmm_process_start_raw(process, arguments);
    if (rc < 0) {
        snprintf(run->skipped, sizeof(run->skipped), "cannot start %s: %s", program, strerror(-rc));
        return;
    }
    char line[512], bdf[16] = "";
    if (wait_line(process, "PROBE PCI ADD ", line, sizeof(line)) < 0)
        return;
    /* The NIC's ADD line: the bdf is the fourth word. */
    for (;;) {
        if (strstr(line, " virtio-net ")) {
            sscanf(line, "PROBE PCI ADD %15s", bdf);
            break;
        }
        if (wait_line(process, "PROBE PCI ADD ", line, sizeof(line)) < 0)
            return;
    }
    if (wait_line(process, "PROBE READY", line, sizeof(line)) < 0)
        return;
    if (measure_round_trips(run, process, bdf, packet_fd) < 0 ||
        measure_one_way(run, process, bdf, packet_fd, one_way_frames) < 0)
        return;
    run->valid = true;
}

static int prepare_directory(struct vmm_process *process, char *qmp_option, size_t size)
{
    memset(process, 0, sizeof(*process));
    snprintf(process->directory, sizeof(process->directory), "/tmp/pv-bench-net-XXXXXX");
    if (!mkdtemp(process->directory))
        return -errno;
    snprintf(qmp_option, size, "unix:%s/qmp.sock,server=on,wait=off", process->directory);
    return 0;
}

static void print_run(const struct run *run)
{
    if (!run->valid) {
        printf("%-22s skipped: %s\n", run->label,
               run->skipped[0] ? run->skipped : "failed (see above)");
        return;
    }
    double samples[run->round_trip_count > 0 ? run->round_trip_count : 1];
    memcpy(samples, run->round_trips_us, (size_t)run->round_trip_count * sizeof(double));
    struct statistics s = statistics_of(samples, run->round_trip_count);
    printf("%-22s %10.1f %10.1f %10.1f %14.0f %8lu\n", run->label, s.median, s.p90, s.min,
           run->frames_per_second, run->lost);
}

int main(int argc, char **argv)
{
    int round_trips = argc > 1 ? atoi(argv[1]) : DEFAULT_ROUND_TRIPS;
    int one_way_frames = argc > 2 ? atoi(argv[2]) : DEFAULT_ONE_WAY_FRAMES;
    if (round_trips < 1)
        round_trips = 1;
    if (one_way_frames < 1)
        one_way_frames = 1;
    char *ours_program = strdup(harness_vmm_path()); /* setenv below replaces it */
    const char *qemu = getenv("QEMU") ? getenv("QEMU") : "/usr/bin/qemu-system-x86_64";
    net_peer_parse_mac(GUEST_MAC, guest_mac);

    struct net_peer_error error;
    int packet_fd = -1;
    if (net_peer_enter_new_namespace(&error) < 0 || net_peer_create_tap("tap0", true, &error) < 0 ||
        net_peer_link_up("tap0", &error) < 0 ||
        (packet_fd = net_peer_open_packet("tap0", &error)) < 0) {
        printf("SKIP: %s\n", error.message);
        return 77;
    }

    struct run ours = {.label = "plugvirt-vmm", .round_trip_count = round_trips};
    struct run theirs = {.label = "qemu", .round_trip_count = round_trips};
    ours.round_trips_us = calloc((size_t)round_trips, sizeof(double));
    theirs.round_trips_us = calloc((size_t)round_trips, sizeof(double));
    if (!ours.round_trips_us || !theirs.round_trips_us)
        return 1;
    char kvm_reason[256];
    bool have_kvm = test_kvm_check(kvm_reason, sizeof(kvm_reason)) == 0;
    const char *netdev = "tap,id=n0,ifname=tap0,script=no,downscript=no";
    const char *device = "virtio-net-pci,netdev=n0,mac=" GUEST_MAC;

    struct vmm_process process;
    char qmp_option[400];
    if (!have_kvm) {
        snprintf(ours.skipped, sizeof(ours.skipped), "%s", kvm_reason);
    } else if (prepare_directory(&process, qmp_option, sizeof(qmp_option)) == 0) {
        const char *arguments[] = {"-display",
                                   "none",
                                   "-nodefaults",
                                   "-m",
                                   MEMORY_MIB,
                                   "-serial",
                                   "stdio",
                                   "-qmp",
                                   qmp_option,
                                   "-kernel",
                                   harness_probe_guest_path(),
                                   "-netdev",
                                   netdev,
                                   "-device",
                                   device,
                                   NULL};
        measure(&ours, ours_program, arguments, &process, packet_fd, one_way_frames);
        vmm_process_cleanup(&process);
    }

    if (access(qemu, X_OK) < 0) {
        snprintf(theirs.skipped, sizeof(theirs.skipped), "%s is not installed", qemu);
    } else if (prepare_directory(&process, qmp_option, sizeof(qmp_option)) == 0) {
        const char *accelerator = have_kvm ? "kvm" : "tcg";
        theirs.label = have_kvm ? "qemu (kvm)" : "qemu (tcg)";
        /* romfile= keeps iPXE out: only QEMU loads option ROMs, and only for boot time. */
        char qemu_device[200];
        snprintf(qemu_device, sizeof(qemu_device), "%s,romfile=", device);
        const char *arguments[] = {
            "-machine", "pc",          "-accel",   accelerator, "-m",
            MEMORY_MIB, "-nodefaults", "-display", "none",      "-serial",
            "stdio",    "-qmp",        qmp_option, "-kernel",   harness_probe_guest_path(),
            "-netdev",  netdev,        "-device",  qemu_device, NULL};
        measure(&theirs, qemu, arguments, &process, packet_fd, one_way_frames);
        vmm_process_cleanup(&process);
    }

    printf("net: probe guest, virtio-net-pci on a tap in a private netns, -m %s; %d round trips "
           "of %d-byte frames (host tap -> guest net-echo -> tap), %d frames one way "
           "(host -> guest, counted with net-stats)\n",
           MEMORY_MIB, round_trips, 14 + PAYLOAD, one_way_frames);
    printf("%-22s %10s %10s %10s %14s %8s\n", "", "rt median", "rt p90", "rt min", "frames/s",
           "lost");
    printf("%-22s %10s %10s %10s %14s %8s\n", "", "(us)", "(us)", "(us)", "one way", "");
    print_run(&ours);
    print_run(&theirs);
    if (ours.valid && theirs.valid) {
        double mine[round_trips], other[round_trips];
        memcpy(mine, ours.round_trips_us, sizeof(mine));
        memcpy(other, theirs.round_trips_us, sizeof(other));
        struct statistics a = statistics_of(mine, round_trips),
                          b = statistics_of(other, round_trips);
        printf("ratio QEMU/plugvirt-vmm: round trip median %.2fx; plugvirt-vmm/QEMU: one-way "
               "frames/s %.2fx%s\n",
               a.median > 0 ? b.median / a.median : 0.0,
               theirs.frames_per_second > 0 ? ours.frames_per_second / theirs.frames_per_second
                                            : 0.0,
               strstr(theirs.label, "tcg") ? " (QEMU ran TCG: not comparable)" : "");
    } else {
        printf("no ratio: %s did not run\n", ours.valid ? theirs.label : "plugvirt-vmm");
    }
    close(packet_fd);
    free(ours.round_trips_us);
    free(theirs.round_trips_us);
    free(ours_program);
    return ours.valid || theirs.valid ? 0 : 1;
}

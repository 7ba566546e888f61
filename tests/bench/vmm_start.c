/* Benchmark: start-up and QMP latency of plugvirt-vmm against QEMU, measured
 * in the same run on the same host. Prints figures and ratios; no pass/fail.
 *
 * Usage: vmm-start [runs]   (environment: PLUGVIRT_VMM, PLUGVIRT_PROBE_GUEST, QEMU)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "kvm_check.h"

#define ROUND_TRIPS 200
#define MEMORY_MIB 128

struct figures {
    double greeting_ms;   /* exec → QMP greeting read */
    double round_trip_us; /* median query-status round trip */
    double rss_kib;       /* VmRSS after start */
    double guest_rss_kib; /* part of it that is guest RAM the guest touched */
    double ready_ms;      /* exec → PROBE READY (ours only) */
    bool valid;
};

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

/* VmRSS, and the Rss of the mapping whose size is the guest RAM size. */
static void read_memory(pid_t pid, double *rss_kib, double *guest_kib)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *file = fopen(path, "r");
    *rss_kib = *guest_kib = 0;
    if (!file)
        return;
    while (fgets(line, sizeof(line), file))
        if (sscanf(line, "VmRSS: %lf kB", rss_kib) == 1)
            break;
    fclose(file);
    snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
    file = fopen(path, "r");
    if (!file)
        return;
    bool in_guest_ram = false;
    while (fgets(line, sizeof(line), file)) {
        unsigned long long start, end;
        double value;
        if (sscanf(line, "%llx-%llx ", &start, &end) == 2 && strchr(line, ' ') &&
            !strstr(line, "kB")) {
            unsigned long long size = end - start;
            in_guest_ram = size >= ((unsigned long long)MEMORY_MIB << 20) &&
                           size <= ((unsigned long long)MEMORY_MIB << 20) + (4ULL << 20);
        } else if (in_guest_ram && sscanf(line, "Rss: %lf kB", &value) == 1) {
            *guest_kib += value;
        }
    }
    fclose(file);
}

static struct figures measure(const char *const *arguments, const char *qmp_path, bool wait_ready,
                              struct vmm_process *process)
{
    struct figures result = {0};
    struct qmp_client client;
    char greeting[4096], reply[4096];
    double start = now_us();
    if (vmm_process_start_raw(process, arguments) < 0)
        return result;
    if (qmp_client_connect(&client, qmp_path, false, greeting, sizeof(greeting), 20000) < 0) {
        fprintf(stderr, "no QMP greeting from %s\n", arguments[0]);
        return result;
    }
    result.greeting_ms = (now_us() - start) / 1e3;
    if (wait_ready) {
        if (vmm_process_wait_line(process, "PROBE READY", 30000, NULL, 0) == 0)
            result.ready_ms = (now_us() - start) / 1e3;
    }
    qmp_client_execute(&client, "{\"execute\": \"qmp_capabilities\"}", reply, sizeof(reply), 5000);
    double samples[ROUND_TRIPS];
    for (int i = 0; i < ROUND_TRIPS; i++) {
        double t0 = now_us();
        if (qmp_client_execute(&client, "{\"execute\": \"query-status\"}", reply, sizeof(reply),
                               5000) < 0)
            return result;
        samples[i] = now_us() - t0;
    }
    qsort(samples, ROUND_TRIPS, sizeof(double), compare_doubles);
    result.round_trip_us = samples[ROUND_TRIPS / 2];
    usleep(200000); /* let start-up settle before reading memory */
    read_memory(process->pid, &result.rss_kib, &result.guest_rss_kib);
    qmp_client_execute(&client, "{\"execute\": \"quit\"}", reply, sizeof(reply), 5000);
    qmp_client_close(&client);
    vmm_process_wait_exit(process, 5000);
    result.valid = true;
    return result;
}

static void print_ratio(const char *what, double ours, double theirs, bool lower_is_better)
{
    if (ours <= 0 || theirs <= 0) {
        printf("  %-34s n/a\n", what);
        return;
    }
    double ratio = lower_is_better ? theirs / ours : ours / theirs;
    printf("  %-34s %.1fx %s\n", what, ratio, ratio >= 1 ? "better than QEMU" : "worse than QEMU");
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    if (runs < 1)
        runs = 1;
    const char *qemu = getenv("QEMU") ? getenv("QEMU") : "/usr/bin/qemu-system-x86_64";
    bool have_qemu = access(qemu, X_OK) == 0;
    char kvm_reason[256];
    if (test_kvm_check(kvm_reason, sizeof(kvm_reason)) < 0) {
        printf("SKIP: %s\n", kvm_reason);
        return 77;
    }
    char memory[16];
    snprintf(memory, sizeof(memory), "%d", MEMORY_MIB);

    struct figures ours_best = {0}, qemu_best = {0};
    for (int run = 0; run < runs; run++) {
        struct vmm_process process;
        memset(&process, 0, sizeof(process));
        snprintf(process.directory, sizeof(process.directory), "/tmp/pv-bench-XXXXXX");
        if (!mkdtemp(process.directory))
            return 1;
        char qmp_path[400], qmp_option[450];
        snprintf(qmp_path, sizeof(qmp_path), "%s/qmp.sock", process.directory);
        snprintf(qmp_option, sizeof(qmp_option), "unix:%s,server=on,wait=off", qmp_path);
        const char *ours_args[] = {"-display",
                                   "none",
                                   "-nodefaults",
                                   "-m",
                                   memory,
                                   "-serial",
                                   "stdio",
                                   "-qmp",
                                   qmp_option,
                                   "-kernel",
                                   harness_probe_guest_path(),
                                   NULL};
        struct figures ours = measure(ours_args, qmp_path, true, &process);
        vmm_process_cleanup(&process);
        if (!ours.valid) {
            fprintf(stderr, "plugvirt-vmm run failed: %s\n", process.errors);
            return 1;
        }
        if (!ours_best.valid || ours.greeting_ms < ours_best.greeting_ms)
            ours_best.greeting_ms = ours.greeting_ms, ours_best.ready_ms = ours.ready_ms;
        if (!ours_best.valid || ours.round_trip_us < ours_best.round_trip_us)
            ours_best.round_trip_us = ours.round_trip_us;
        ours_best.rss_kib = ours.rss_kib;
        ours_best.guest_rss_kib = ours.guest_rss_kib;
        ours_best.valid = true;

        if (!have_qemu)
            continue;
        memset(&process, 0, sizeof(process));
        snprintf(process.directory, sizeof(process.directory), "/tmp/pv-bench-XXXXXX");
        if (!mkdtemp(process.directory))
            return 1;
        snprintf(qmp_path, sizeof(qmp_path), "%s/qmp.sock", process.directory);
        snprintf(qmp_option, sizeof(qmp_option), "unix:%s,server=on,wait=off", qmp_path);
        setenv("PLUGVIRT_VMM", qemu, 1);
        const char *qemu_args[] = {"-machine", "pc",   "-accel",   "kvm",      "-accel",
                                   "tcg",      "-S",   "-display", "none",     "-nodefaults",
                                   "-m",       memory, "-qmp",     qmp_option, NULL};
        struct figures theirs = measure(qemu_args, qmp_path, false, &process);
        unsetenv("PLUGVIRT_VMM");
        vmm_process_cleanup(&process);
        if (!theirs.valid)
            continue;
        if (!qemu_best.valid || theirs.greeting_ms < qemu_best.greeting_ms)
            qemu_best.greeting_ms = theirs.greeting_ms;
        if (!qemu_best.valid || theirs.round_trip_us < qemu_best.round_trip_us)
            qemu_best.round_trip_us = theirs.round_trip_us;
        qemu_best.rss_kib = theirs.rss_kib;
        qemu_best.guest_rss_kib = theirs.guest_rss_kib;
        qemu_best.valid = true;
    }

    printf("vmm-start: best of %d runs, -m %d, median of %d QMP round trips\n", runs, MEMORY_MIB,
           ROUND_TRIPS);
    printf("%-36s %14s %14s\n", "", "plugvirt-vmm", have_qemu ? "qemu -S" : "(no qemu)");
    printf("%-36s %14.2f %14.2f\n", "exec -> QMP greeting (ms)", ours_best.greeting_ms,
           qemu_best.greeting_ms);
    printf("%-36s %14.1f %14.1f\n", "QMP query-status round trip (us)", ours_best.round_trip_us,
           qemu_best.round_trip_us);
    printf("%-36s %14.0f %14.0f\n", "RSS after start (KiB)", ours_best.rss_kib, qemu_best.rss_kib);
    printf("%-36s %14.0f %14.0f\n", "  of which guest RAM touched (KiB)", ours_best.guest_rss_kib,
           qemu_best.guest_rss_kib);
    printf("%-36s %14.0f %14.0f\n", "  VMM itself (KiB)",
           ours_best.rss_kib - ours_best.guest_rss_kib,
           qemu_best.rss_kib - qemu_best.guest_rss_kib);
    printf("%-36s %14.2f %14s\n", "exec -> PROBE READY (ms)", ours_best.ready_ms, "-");
    if (qemu_best.valid) {
        printf("ratios (QEMU / plugvirt-vmm; target >= 10x for the first two):\n");
        print_ratio("greeting time", ours_best.greeting_ms, qemu_best.greeting_ms, true);
        print_ratio("QMP round trip", ours_best.round_trip_us, qemu_best.round_trip_us, true);
        print_ratio("VMM RSS (excluding guest RAM)", ours_best.rss_kib - ours_best.guest_rss_kib,
                    qemu_best.rss_kib - qemu_best.guest_rss_kib, true);
    }
    printf("target: VMM RSS under 4096 KiB beside guest RAM: %s\n",
           ours_best.rss_kib - ours_best.guest_rss_kib < 4096 ? "met" : "NOT met");
    return 0;
}

/* Benchmark: disk hotplug latency of plugvirt-vmm against stock QEMU -machine pc,
 * both running the probe guest, measured in the same run on the same host.
 * Each cycle: blockdev-add → device_add virtio-blk-pci → guest prints
 * "PROBE PCI ADD" → device_del → guest prints "PROBE PCI EJECT" and ejects →
 * DEVICE_DELETED → blockdev-del. Prints medians, p90 and minima, the ratios
 * QEMU / plugvirt-vmm, and whether attach → guest-visible is under 20 ms.
 *
 * Usage: hotplug [cycles]   (environment: PLUGVIRT_VMM, PLUGVIRT_PROBE_GUEST, QEMU)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "kvm_check.h"

#define DEFAULT_CYCLES 50
#define MEMORY_MIB "128"
#define DISK_SIZE (1024 * 1024)
#define OURS_BOOT_TIMEOUT_MS 20000
#define QEMU_BOOT_TIMEOUT_MS 60000 /* SeaBIOS alone takes 5-6 s under this host's KVM */
#define STEP_TIMEOUT_MS 10000
#define TARGET_ATTACH_VISIBLE_MS 20.0

/* One figure per cycle, in milliseconds. */
enum figure {
    FIGURE_ADD_REPLY,       /* device_add sent → QMP reply read */
    FIGURE_ADD_VISIBLE,     /* device_add sent → guest's PROBE PCI ADD line read */
    FIGURE_ADD_AFTER_REPLY, /* QMP reply read → ADD line read (the guest's share) */
    FIGURE_ADD_PRINTING,    /* first console byte → whole ADD line read (serial output) */
    FIGURE_DEL_REPLY,       /* device_del sent → QMP reply read */
    FIGURE_DEL_EJECT,       /* device_del sent → guest's PROBE PCI EJECT line read */
    FIGURE_DEL_DELETED,     /* device_del sent → DEVICE_DELETED for the device read */
    FIGURE_COUNT
};

static const char *const figure_names[FIGURE_COUNT] = {
    [FIGURE_ADD_REPLY] = "device_add QMP round trip",
    [FIGURE_ADD_VISIBLE] = "device_add -> guest ADD",
    [FIGURE_ADD_AFTER_REPLY] = "  of which after the reply",
    [FIGURE_ADD_PRINTING] = "  of which printing the line",
    [FIGURE_DEL_REPLY] = "device_del QMP round trip",
    [FIGURE_DEL_EJECT] = "device_del -> guest EJECT",
    [FIGURE_DEL_DELETED] = "device_del -> DEVICE_DELETED",
};

struct run {
    const char *label;
    bool valid;
    int cycles;
    double *samples[FIGURE_COUNT];
    double boot_ms; /* exec → PROBE READY */
    char note[128];
};

struct statistics {
    double median, p90, min;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static struct statistics statistics_of(const double *samples, int count)
{
    struct statistics result = {0};
    if (count < 1)
        return result;
    double *sorted = malloc((size_t)count * sizeof(double));
    if (!sorted)
        return result;
    memcpy(sorted, samples, (size_t)count * sizeof(double));
    qsort(sorted, (size_t)count, sizeof(double), compare_doubles);
    result.median = count % 2 ? sorted[count / 2] : (sorted[count / 2 - 1] + sorted[count / 2]) / 2;
    result.p90 = sorted[(9 * count + 9) / 10 - 1]; /* nearest rank: ceil(0.9 n) */
    result.min = sorted[0];
    free(sorted);
    return result;
}

/* Reads whatever the VMM wrote to serial, stderr and the QMP socket, waiting
 * up to timeout_ms for something. The harness keeps consumed console lines;
 * drop them so long runs do not fill its buffer. stderr is drained so a
 * chatty VMM never blocks on a full pipe. */
static void read_available(struct vmm_process *process, struct qmp_client *client, int timeout_ms)
{
    struct pollfd fds[3] = {
        {process->serial_out, POLLIN, 0}, {process->stderr_fd, POLLIN, 0}, {client->fd, POLLIN, 0}};
    if (poll(fds, 3, timeout_ms) <= 0)
        return;
    if (fds[0].revents) {
        if (process->console_consumed > 0) {
            memmove(process->console, process->console + process->console_consumed,
                    process->console_length - process->console_consumed);
            process->console_length -= process->console_consumed;
            process->console_consumed = 0;
            process->console[process->console_length] = '\0';
        }
        size_t room = sizeof(process->console) - 1 - process->console_length;
        ssize_t got =
            room ? read(process->serial_out, process->console + process->console_length, room) : 0;
        if (got > 0) {
            process->console_length += (size_t)got;
            process->console[process->console_length] = '\0';
        }
    }
    if (fds[1].revents) {
        char discard[4096];
        ssize_t got = read(process->stderr_fd, discard, sizeof(discard));
        size_t room = sizeof(process->errors) - 1 - process->errors_length;
        if (got > 0 && room > 0) {
            size_t copy = (size_t)got < room ? (size_t)got : room;
            memcpy(process->errors + process->errors_length, discard, copy);
            process->errors_length += copy;
            process->errors[process->errors_length] = '\0';
        }
    }
    if (fds[2].revents && client->length < sizeof(client->buffer)) {
        ssize_t got = recv(client->fd, client->buffer + client->length,
                           sizeof(client->buffer) - client->length, MSG_DONTWAIT);
        if (got > 0)
            client->length += (size_t)got;
    }
}

/* What one step waits for; each found item gets its time (ms since `start`). */
struct step {
    const char *line_prefix; /* console line, or NULL */
    const char *event_text;  /* text in a QMP event, or NULL */
    double start, reply_at, line_at, event_at;
    double output_at; /* first console byte after `start` */
    char reply[4096];
    char line[512];
};

/* Sends `command` and waits for its reply plus the expected line and event. */
static int run_step(struct vmm_process *process, struct qmp_client *client, const char *command,
                    struct step *step)
{
    step->reply_at = step->line_at = step->event_at = step->output_at = -1;
    size_t console_before = process->console_length - process->console_consumed;
    step->start = now_ms();
    if (qmp_client_send(client, command) < 0)
        return -EPIPE;
    double deadline = step->start + STEP_TIMEOUT_MS;
    for (;;) {
        double now = now_ms();
        char message[4096];
        while (qmp_client_read(client, message, sizeof(message), 0) == 0) {
            if (!strstr(message, "\"event\"")) {
                snprintf(step->reply, sizeof(step->reply), "%s", message);
                step->reply_at = now - step->start;
            } else if (step->event_text && step->event_at < 0 &&
                       strstr(message, step->event_text)) {
                step->event_at = now - step->start;
            }
        }
        if (step->output_at < 0 &&
            process->console_length - process->console_consumed > console_before)
            step->output_at = now - step->start;
        if (step->line_prefix && step->line_at < 0 &&
            vmm_process_wait_line(process, step->line_prefix, 0, step->line, sizeof(step->line)) ==
                0)
            step->line_at = now - step->start;
        if (step->reply_at >= 0 && (!step->line_prefix || step->line_at >= 0) &&
            (!step->event_text || step->event_at >= 0))
            return strstr(step->reply, "\"return\"") ? 0 : -EINVAL;
        if (step->reply_at >= 0 && !strstr(step->reply, "\"return\""))
            return -EINVAL;
        if (now >= deadline)
            return -ETIMEDOUT;
        read_available(process, client, (int)(deadline - now) + 1);
    }
}

static void report_failure(const struct run *run, const char *what, const struct step *step,
                           const struct vmm_process *process)
{
    fprintf(stderr, "%s: %s failed (reply: %s)\n", run->label, what,
            step->reply_at >= 0 ? step->reply : "none");
    if (step->line_prefix && step->line_at < 0)
        fprintf(stderr, "  no '%s' line\n", step->line_prefix);
    if (step->event_text && step->event_at < 0)
        fprintf(stderr, "  no event with %s\n", step->event_text);
    size_t tail = process->console_length > 2000 ? process->console_length - 2000 : 0;
    fprintf(stderr, "  console tail:\n%s\n  stderr:\n%s\n", process->console + tail,
            process->errors);
}

/* Boots `program` with `arguments`, waits for PROBE READY, then runs the cycles. */
static void measure(struct run *run, const char *program, const char *const *arguments,
                    const char *qmp_path, struct vmm_process *process, const char *disk_path,
                    int boot_timeout_ms)
{
    struct qmp_client client = {.fd = -1};
    double start = now_ms();
    setenv("PLUGVIRT_VMM", program, 1);
    int rc = vmm_process_start_raw(process, arguments);
    if (rc < 0) {
        fprintf(stderr, "%s: cannot start %s: %s\n", run->label, program, strerror(-rc));
        return;
    }
    char line[512];
    if (vmm_process_wait_line(process, "PROBE READY", boot_timeout_ms, line, sizeof(line)) < 0) {
        fprintf(stderr, "%s: no PROBE READY within %d ms\n  console:\n%s\n  stderr:\n%s\n",
                run->label, boot_timeout_ms, process->console, process->errors);
        return;
    }
    run->boot_ms = now_ms() - start;
    if (qmp_client_connect(&client, qmp_path, true, NULL, 0, STEP_TIMEOUT_MS) < 0) {
        fprintf(stderr, "%s: QMP connect failed\n", run->label);
        return;
    }

    char blockdev_add[1024];
    snprintf(blockdev_add, sizeof(blockdev_add),
             "{\"execute\": \"blockdev-add\", \"arguments\": {\"driver\": \"raw\", \"node-name\": "
             "\"d1\", \"file\": {\"driver\": \"file\", \"filename\": \"%s\"}}}",
             disk_path);
    static const char device_add[] =
        "{\"execute\": \"device_add\", \"arguments\": {\"driver\": \"virtio-blk-pci\", "
        "\"drive\": \"d1\", \"id\": \"vd1\"}}";
    static const char device_del[] =
        "{\"execute\": \"device_del\", \"arguments\": {\"id\": \"vd1\"}}";
    static const char blockdev_del[] =
        "{\"execute\": \"blockdev-del\", \"arguments\": {\"node-name\": \"d1\"}}";

    for (int cycle = 0; cycle < run->cycles; cycle++) {
        struct step step = {0};
        if (run_step(process, &client, blockdev_add, &step) < 0) {
            report_failure(run, "blockdev-add", &step, process);
            goto out;
        }
        step = (struct step){.line_prefix = "PROBE PCI ADD "};
        if (run_step(process, &client, device_add, &step) < 0) {
            report_failure(run, "device_add", &step, process);
            goto out;
        }
        run->samples[FIGURE_ADD_REPLY][cycle] = step.reply_at;
        run->samples[FIGURE_ADD_VISIBLE][cycle] = step.line_at;
        run->samples[FIGURE_ADD_AFTER_REPLY][cycle] = step.line_at - step.reply_at;
        run->samples[FIGURE_ADD_PRINTING][cycle] = step.line_at - step.output_at;
        if (!strstr(step.line, "virtio-blk sectors=")) {
            fprintf(stderr, "%s: unexpected ADD line: %s\n", run->label, step.line);
            goto out;
        }
        /* QEMU also reports the virtio backend child; wait for the device itself. */
        step =
            (struct step){.line_prefix = "PROBE PCI EJECT ", .event_text = "\"device\": \"vd1\""};
        if (run_step(process, &client, device_del, &step) < 0) {
            report_failure(run, "device_del", &step, process);
            goto out;
        }
        run->samples[FIGURE_DEL_REPLY][cycle] = step.reply_at;
        run->samples[FIGURE_DEL_EJECT][cycle] = step.line_at;
        run->samples[FIGURE_DEL_DELETED][cycle] = step.event_at;
        step = (struct step){0};
        if (run_step(process, &client, blockdev_del, &step) < 0) {
            report_failure(run, "blockdev-del", &step, process);
            goto out;
        }
    }
    run->valid = true;
    char reply[4096];
    qmp_client_execute(&client, "{\"execute\": \"quit\"}", reply, sizeof(reply), 5000);
    vmm_process_wait_exit(process, 5000);
out:
    qmp_client_close(&client);
}

/* Fresh private directory, QMP socket path and option for one VMM process. */
static int prepare_process(struct vmm_process *process, char *qmp_path, size_t qmp_path_size,
                           char *qmp_option, size_t qmp_option_size)
{
    memset(process, 0, sizeof(*process));
    snprintf(process->directory, sizeof(process->directory), "/tmp/pv-bench-XXXXXX");
    if (!mkdtemp(process->directory))
        return -errno;
    snprintf(qmp_path, qmp_path_size, "%s/qmp.sock", process->directory);
    snprintf(qmp_option, qmp_option_size, "unix:%s,server=on,wait=off", qmp_path);
    return 0;
}

static int make_disk(const char *directory, char *path, size_t path_size)
{
    snprintf(path, path_size, "%s/disk.raw", directory);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = ftruncate(fd, DISK_SIZE) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static bool allocate_run(struct run *run, const char *label, int cycles)
{
    memset(run, 0, sizeof(*run));
    run->label = label;
    run->cycles = cycles;
    for (int i = 0; i < FIGURE_COUNT; i++) {
        run->samples[i] = calloc((size_t)cycles, sizeof(double));
        if (!run->samples[i])
            return false;
    }
    return true;
}

static void free_run(struct run *run)
{
    for (int i = 0; i < FIGURE_COUNT; i++)
        free(run->samples[i]);
}

int main(int argc, char **argv)
{
    int cycles = argc > 1 ? atoi(argv[1]) : DEFAULT_CYCLES;
    if (cycles < 1)
        cycles = 1;
    char *ours_program = strdup(harness_vmm_path()); /* setenv below replaces it */
    const char *qemu = getenv("QEMU") ? getenv("QEMU") : "/usr/bin/qemu-system-x86_64";
    bool have_qemu = access(qemu, X_OK) == 0;
    char kvm_reason[256];
    if (test_kvm_check(kvm_reason, sizeof(kvm_reason)) < 0) {
        printf("SKIP: %s\n", kvm_reason);
        return 77;
    }

    char disk_directory[] = "/tmp/pv-bench-disk-XXXXXX";
    char disk_path[300];
    if (!mkdtemp(disk_directory) || make_disk(disk_directory, disk_path, sizeof(disk_path)) < 0) {
        fprintf(stderr, "hotplug: cannot create the disk image: %s\n", strerror(errno));
        return 1;
    }

    struct run ours, theirs;
    if (!allocate_run(&ours, "plugvirt-vmm", cycles) || !allocate_run(&theirs, "qemu", cycles))
        return 1;

    struct vmm_process process;
    char qmp_path[400], qmp_option[450];
    if (prepare_process(&process, qmp_path, sizeof(qmp_path), qmp_option, sizeof(qmp_option)) < 0)
        return 1;
    const char *ours_args[] = {"-display",
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
                               NULL};
    measure(&ours, ours_program, ours_args, qmp_path, &process, disk_path, OURS_BOOT_TIMEOUT_MS);
    vmm_process_cleanup(&process);

    /* QEMU with KVM first; TCG only if KVM does not get the guest to READY. */
    const char *accelerators[] = {"kvm", "tcg"};
    for (int i = 0; have_qemu && ours.valid && i < 2 && !theirs.valid; i++) {
        if (prepare_process(&process, qmp_path, sizeof(qmp_path), qmp_option, sizeof(qmp_option)) <
            0)
            return 1;
        const char *qemu_args[] = {"-machine",
                                   "pc",
                                   "-accel",
                                   accelerators[i],
                                   "-m",
                                   MEMORY_MIB,
                                   "-nodefaults",
                                   "-display",
                                   "none",
                                   "-serial",
                                   "stdio",
                                   "-kernel",
                                   harness_probe_guest_path(),
                                   "-qmp",
                                   qmp_option,
                                   NULL};
        theirs.label = i == 0 ? "qemu (kvm)" : "qemu (tcg)";
        measure(&theirs, qemu, qemu_args, qmp_path, &process, disk_path, QEMU_BOOT_TIMEOUT_MS);
        vmm_process_cleanup(&process);
        if (!theirs.valid && i == 0)
            fprintf(stderr, "hotplug: QEMU with -accel kvm failed, retrying with -accel tcg\n");
    }
    unlink(disk_path);
    rmdir(disk_directory);
    if (!ours.valid)
        return 1;

    const char *qemu_label = !have_qemu ? "(no qemu)" : theirs.valid ? theirs.label : "(failed)";
    printf("hotplug: %d cycles of blockdev-add, device_add virtio-blk-pci, device_del, "
           "blockdev-del; probe guest, -m %s; times in ms\n",
           cycles, MEMORY_MIB);
    if (theirs.valid && strstr(theirs.label, "tcg"))
        printf("NOTE: QEMU ran with -accel tcg (KVM failed); its guest-side figures are not "
               "comparable\n");
    printf("boot to PROBE READY: plugvirt-vmm %.1f ms, %s %.1f ms\n", ours.boot_ms, qemu_label,
           theirs.valid ? theirs.boot_ms : 0.0);
    printf("%-30s %26s %26s %8s\n", "", "plugvirt-vmm", qemu_label, "QEMU/");
    printf("%-30s %8s %8s %8s %8s %8s %8s %8s\n", "", "median", "p90", "min", "median", "p90",
           "min", "ours");
    for (int i = 0; i < FIGURE_COUNT; i++) {
        struct statistics mine = statistics_of(ours.samples[i], cycles);
        printf("%-30s %8.2f %8.2f %8.2f", figure_names[i], mine.median, mine.p90, mine.min);
        if (theirs.valid) {
            struct statistics other = statistics_of(theirs.samples[i], cycles);
            printf(" %8.2f %8.2f %8.2f", other.median, other.p90, other.min);
            if (mine.median > 0 && other.median > 0)
                printf(" %7.1fx", other.median / mine.median);
            else
                printf(" %8s", "n/a");
        }
        printf("\n");
    }
    struct statistics visible = statistics_of(ours.samples[FIGURE_ADD_VISIBLE], cycles);
    printf("target: device_add -> guest ADD under %.0f ms (plugvirt-vmm, median): %s "
           "(median %.2f, p90 %.2f)\n",
           TARGET_ATTACH_VISIBLE_MS, visible.median < TARGET_ATTACH_VISIBLE_MS ? "met" : "NOT met",
           visible.median, visible.p90);
    free_run(&ours);
    free_run(&theirs);
    free(ours_program);
    return 0;
}

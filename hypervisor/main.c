/* plugvirt-vmm: one process per VM, driven by a QEMU-compatible command line,
 * QMP and HMP. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chardev/chardev.h"
#include "chardev/chardev_host.h"
#include "machine_pc.h"
#include "monitor/monitor_hmp.h"
#include "monitor/monitor_qmp.h"
#include "pv_error.h"
#include "pv_log.h"
#include "vm.h"
#include "cmdline.h"
#include "vmm_config.h"

#define PROGRAM_NAME "plugvirt-vmm"

struct vmm {
    struct vmm_config config;
    struct event_base *event_base;
    struct vm vm;
    bool vm_created;
    struct machine_pc machine;
    struct chardev *stdio_mux; /* shared by the serial port and HMP under -nographic */
    struct chardev *serial_chardev;
    struct chardev *monitor_chardevs[VMM_MAX_MONITORS];
    struct monitor_qmp *qmp_monitors[VMM_MAX_MONITORS];
    struct monitor_hmp *hmp_monitors[VMM_MAX_MONITORS];
    struct event *signal_events[3];
    int daemon_status_fd; /* -daemonize: the parent waits for a byte here */
    int pidfile_fd;
};

static void on_terminate_signal(evutil_socket_t signal_number, short events, void *arg)
{
    struct vmm *vmm = arg;
    (void)events;
    pv_log(PV_LOG_WARNING, "terminating on signal %d", (int)signal_number);
    vm_request_shutdown(&vmm->vm, false, "host-signal");
}

static void on_mux_quit(void *arg)
{
    struct vmm *vmm = arg;
    vm_request_shutdown(&vmm->vm, false, "host-ui");
}

/* -nographic and mon:stdio share one mux chardev between serial and monitor. */
static struct chardev *open_chardev(struct vmm *vmm, const struct chardev_spec *spec, bool *shared,
                                    struct pv_error *error)
{
    *shared = false;
    if (spec->kind == CHARDEV_KIND_NONE)
        return NULL;
    if (spec->kind == CHARDEV_KIND_MUX_STDIO) {
        *shared = true;
        if (!vmm->stdio_mux) {
            vmm->stdio_mux = chardev_open(vmm->event_base, spec, error);
            if (vmm->stdio_mux)
                chardev_set_quit_handler(vmm->stdio_mux, on_mux_quit, vmm);
        }
        return vmm->stdio_mux;
    }
    return chardev_open(vmm->event_base, spec, error);
}

static int write_pidfile(struct vmm *vmm, struct pv_error *error)
{
    const char *path = vmm->config.pidfile;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return pv_error_set_errno(error, -errno, "cannot create PID file %s", path);
    /* The lock shows the file belongs to a live process, as QEMU does. */
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int rc = -errno;
        close(fd);
        return pv_error_set_errno(error, rc, "cannot lock PID file %s", path);
    }
    char text[32];
    int length = snprintf(text, sizeof(text), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || write(fd, text, (size_t)length) != length) {
        int rc = -errno;
        close(fd);
        return pv_error_set_errno(error, rc, "cannot write PID file %s", path);
    }
    vmm->pidfile_fd = fd;
    return 0;
}

/* Forks; the parent waits until the child reports that it is ready (one byte:
 * 0 = ok) and exits with the matching status, as qemu -daemonize does. */
static int daemonize(struct vmm *vmm, struct pv_error *error)
{
    int status_pipe[2];
    if (pipe2(status_pipe, O_CLOEXEC) < 0)
        return pv_error_set_errno(error, -errno, "cannot create a pipe");
    pid_t pid = fork();
    if (pid < 0)
        return pv_error_set_errno(error, -errno, "cannot fork");
    if (pid > 0) {
        close(status_pipe[1]);
        char status = 1;
        ssize_t got;
        do {
            got = read(status_pipe[0], &status, 1);
        } while (got < 0 && errno == EINTR);
        _exit(got == 1 && status == 0 ? 0 : 1);
    }
    close(status_pipe[0]);
    if (setsid() < 0)
        return pv_error_set_errno(error, -errno, "setsid failed");
    vmm->daemon_status_fd = status_pipe[1];
    return 0;
}

static void daemon_report_ready(struct vmm *vmm)
{
    if (vmm->daemon_status_fd < 0)
        return;
    char ok = 0;
    if (write(vmm->daemon_status_fd, &ok, 1) != 1)
        pv_log_warning("cannot report readiness to the parent process");
    close(vmm->daemon_status_fd);
    vmm->daemon_status_fd = -1;
    /* Like QEMU, a daemon lets go of the terminal once it has started. */
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd >= 0) {
        dup2(null_fd, STDIN_FILENO);
        dup2(null_fd, STDOUT_FILENO);
        dup2(null_fd, STDERR_FILENO);
        close(null_fd);
    }
}

static int setup(struct vmm *vmm, struct pv_error *error)
{
    struct vmm_config *config = &vmm->config;
    if (config->daemonize) {
        int rc = daemonize(vmm, error);
        if (rc < 0)
            return rc;
    }
    if (config->pidfile) {
        int rc = write_pidfile(vmm, error);
        if (rc < 0)
            return rc;
    }
    if (evthread_use_pthreads() < 0)
        return pv_error_set(error, -ENOMEM, "libevent has no pthreads support");
    vmm->event_base = event_base_new();
    if (!vmm->event_base)
        return pv_error_set(error, -ENOMEM, "cannot create the event loop");

    int rc = vm_create(&vmm->vm, config, vmm->event_base, error);
    if (rc < 0)
        return rc;
    vmm->vm_created = true;
    vmm->vm.no_reboot = config->no_reboot;
    vmm->vm.no_shutdown = config->no_shutdown;

    bool shared;
    vmm->serial_chardev = open_chardev(vmm, &config->serial, &shared, error);
    if (config->serial.kind != CHARDEV_KIND_NONE && !vmm->serial_chardev)
        return pv_error_prefix(error, "-serial");
    if (shared)
        vmm->serial_chardev = NULL; /* owned through stdio_mux */
    rc = machine_pc_init(&vmm->machine, &vmm->vm, shared ? vmm->stdio_mux : vmm->serial_chardev,
                         error);
    if (rc < 0)
        return rc;

    for (size_t i = 0; i < config->monitor_count; i++) {
        const struct monitor_spec *spec = &config->monitors[i];
        if (spec->mode == MONITOR_MODE_QMP) {
            vmm->qmp_monitors[i] = monitor_qmp_create(&vmm->vm, vmm->event_base, spec, error);
            if (!vmm->qmp_monitors[i])
                return pv_error_prefix(error, "-qmp");
            continue;
        }
        struct chardev *chardev = open_chardev(vmm, &spec->transport, &shared, error);
        if (!chardev)
            return pv_error_prefix(error, "-monitor");
        if (!shared)
            vmm->monitor_chardevs[i] = chardev;
        vmm->hmp_monitors[i] = monitor_hmp_create(&vmm->vm, chardev, error);
        if (!vmm->hmp_monitors[i])
            return pv_error_prefix(error, "-monitor");
    }

    const int signals[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < 3; i++) {
        vmm->signal_events[i] = evsignal_new(vmm->event_base, signals[i], on_terminate_signal, vmm);
        if (!vmm->signal_events[i] || event_add(vmm->signal_events[i], NULL) < 0)
            return pv_error_set(error, -ENOMEM, "cannot watch signal %d", signals[i]);
    }
    signal(SIGPIPE, SIG_IGN);
    return vm_start(&vmm->vm, error);
}

static void teardown(struct vmm *vmm)
{
    if (vmm->vm_created)
        vm_stop_vcpus(&vmm->vm);
    for (size_t i = 0; i < VMM_MAX_MONITORS; i++) {
        if (vmm->qmp_monitors[i])
            monitor_qmp_destroy(vmm->qmp_monitors[i]);
        if (vmm->hmp_monitors[i])
            monitor_hmp_destroy(vmm->hmp_monitors[i]);
    }
    machine_pc_destroy(&vmm->machine);
    for (size_t i = 0; i < VMM_MAX_MONITORS; i++)
        if (vmm->monitor_chardevs[i])
            chardev_close(vmm->monitor_chardevs[i]);
    if (vmm->serial_chardev)
        chardev_close(vmm->serial_chardev);
    if (vmm->stdio_mux)
        chardev_close(vmm->stdio_mux);
    chardev_restore_terminals();
    if (vmm->vm_created)
        vm_destroy(&vmm->vm);
    for (size_t i = 0; i < 3; i++)
        if (vmm->signal_events[i])
            event_free(vmm->signal_events[i]);
    if (vmm->event_base)
        event_base_free(vmm->event_base);
    if (vmm->pidfile_fd >= 0) {
        unlink(vmm->config.pidfile);
        close(vmm->pidfile_fd);
    }
    vmm_config_free(&vmm->config);
}

int main(int argc, char **argv)
{
    static struct vmm vmm; /* big; not on the stack */
    struct pv_error error = {0};
    bool exit_early = false;
    vmm.daemon_status_fd = -1;
    vmm.pidfile_fd = -1;
    pv_log_set_program(PROGRAM_NAME);
    if (getenv("PLUGVIRT_DEBUG"))
        pv_log_set_level(PV_LOG_DEBUG);

    if (vmm_config_parse(&vmm.config, argc, argv, &exit_early, &error) < 0) {
        fprintf(stderr, PROGRAM_NAME ": %s\n", error.message);
        vmm_config_free(&vmm.config);
        return 1;
    }
    if (exit_early) {
        vmm_config_free(&vmm.config);
        return 0;
    }
    if (setup(&vmm, &error) < 0) {
        fprintf(stderr, PROGRAM_NAME ": %s\n", error.message);
        teardown(&vmm);
        return 1;
    }
    daemon_report_ready(&vmm);
    event_base_dispatch(vmm.event_base);
    int status = vmm.vm.exit_status;
    teardown(&vmm);
    return status;
}

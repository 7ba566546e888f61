/* A domain's VMM process: spawned in its own session, watched through a pidfd, driven over
 * its QMP connection (events, commands); its exit stops the runtime (see domains.h). */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "console.h"
#include "domains_internal.h"
#include "vmm_argv.h"
#include "hotplug.h"
#include "json_util.h"
#include "pv_log.h"
#include "qmp_connection.h"
#include "store.h"

#define QMP_CONNECT_TIMEOUT_MS 10000

/* ------------------------------------------------------------------- process --- */

uint64_t runtime_process_start_time(pid_t pid)
{
    char path[64], buffer[2048];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t length = read(fd, buffer, sizeof(buffer) - 1);
    close(fd);
    if (length <= 0)
        return 0;
    buffer[length] = '\0';
    /* The command name (field 2) may hold spaces and parentheses: start after the last ')'. */
    char *cursor = strrchr(buffer, ')');
    if (cursor == NULL)
        return 0;
    cursor++;
    /* Field 3 is the state: a zombie has exited already (its new parent has not reaped it,
     * which happens to VMMs reparented after a daemon crash). */
    if (cursor[0] == ' ' && (cursor[1] == 'Z' || cursor[1] == 'X'))
        return 0;
    /* Fields 3.. follow; the start time is field 22, the 20th after the ')'. */
    for (int field = 3; field < 22; field++) {
        cursor = strchr(cursor + 1, ' ');
        if (cursor == NULL)
            return 0;
    }
    return strtoull(cursor + 1, NULL, 10);
}

static int pidfd_open_process(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static void read_log_tail(const char *path, char *out, size_t size)
{
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    off_t end = lseek(fd, 0, SEEK_END);
    off_t start = end > (off_t)size - 1 ? end - (off_t)size + 1 : 0;
    ssize_t length = pread(fd, out, size - 1, start);
    close(fd);
    if (length < 0)
        length = 0;
    out[length] = '\0';
    while (length > 0 && (out[length - 1] == '\n' || out[length - 1] == '\r'))
        out[--length] = '\0';
    for (ssize_t i = 0; i < length; i++)
        if (out[i] == '\n')
            out[i] = ' ';
}

/* -------------------------------------------------------------- runtime life --- */

void runtime_free_waiter_list(struct waiter **list, const char *code, const char *message)
{
    while (*list) {
        struct waiter *waiter = *list;
        *list = waiter->next;
        if (waiter->timer)
            event_free(waiter->timer);
        if (code)
            domains_reply_error(waiter->done, waiter->opaque, code, "%s", message);
        else
            domains_reply_ok(waiter->done, waiter->opaque, "{}");
        free(waiter);
    }
}

int runtime_add_waiter(struct waiter **list, struct runtime *runtime, domains_done_fn done,
                       void *opaque)
{
    struct waiter *waiter = calloc(1, sizeof(*waiter));
    if (waiter == NULL)
        return -ENOMEM;
    waiter->runtime = runtime;
    waiter->done = done;
    waiter->opaque = opaque;
    waiter->next = *list;
    *list = waiter;
    return 0;
}

void runtime_kill(struct runtime *runtime, int signal_number)
{
    if (syscall(SYS_pidfd_send_signal, runtime->pidfd, signal_number, NULL, 0) < 0 &&
        errno != ESRCH)
        pv_log_warning("domain %s: cannot signal VMM %d: %s", runtime->name, (int)runtime->pid,
                       strerror(errno));
}

struct runtime *runtime_new(struct domains *domains, const char *uuid, const char *name)
{
    struct runtime *runtime = calloc(1, sizeof(*runtime));
    if (runtime == NULL)
        return NULL;
    runtime->domains = domains;
    runtime->pidfd = -1;
    snprintf(runtime->uuid, sizeof(runtime->uuid), "%s", uuid);
    runtime->name = strdup(name);
    char directory[PATH_MAX - 32];
    domains_directory(domains, name, directory, sizeof(directory));
    snprintf(runtime->qmp_path, sizeof(runtime->qmp_path), "%s/qmp.sock", directory);
    snprintf(runtime->pidfile_path, sizeof(runtime->pidfile_path), "%s/vmm.pid", directory);
    snprintf(runtime->log_path, sizeof(runtime->log_path), "%s/vmm.log", directory);
    if (runtime->name == NULL) {
        free(runtime);
        return NULL;
    }
    return runtime;
}

void runtime_free(struct runtime *runtime)
{
    if (runtime->pidfd_event)
        event_free(runtime->pidfd_event);
    if (runtime->kill_timer)
        event_free(runtime->kill_timer);
    if (runtime->pidfd >= 0)
        close(runtime->pidfd);
    if (runtime->live)
        domain_definition_free(runtime->live);
    console_free(runtime->console);
    free(runtime->name);
    free(runtime);
}

static void runtime_unlink(struct domains *domains, struct runtime *runtime)
{
    for (struct runtime **link = &domains->runtimes; *link; link = &(*link)->next) {
        if (*link == runtime) {
            *link = runtime->next;
            return;
        }
    }
}

/* The VMM is gone: record the new state, release everything, answer the waiters. */
static void runtime_stop(struct runtime *runtime, enum store_domain_state state, const char *reason,
                         const char *detail)
{
    struct domains *domains = runtime->domains;
    runtime->stopping = true;
    hotplug_domain_stopped(domains->hotplug, runtime->uuid);
    if (runtime->qmp) {
        struct qmp_connection *qmp = runtime->qmp;
        runtime->qmp = NULL;
        runtime->qmp_ready = false;
        qmp_connection_close(qmp);
    }
    struct pv_error error = {0};
    struct store_domain row;
    if (store_domain_get(domains->store, runtime->uuid, &row, &error) == 0) {
        free(row.live_xml);
        row.live_xml = NULL;
        row.state = state;
        row.pid = 0;
        row.pid_start_time = 0;
        if (store_domain_put(domains->store, &row, &error) < 0)
            pv_log_error("domain %s: %s", runtime->name, error.message);
        store_domain_clear(&row);
        if (store_device_delete_all(domains->store, runtime->uuid, &error) < 0)
            pv_log_warning("domain %s: %s", runtime->name, error.message);
    }
    unlink(runtime->qmp_path);
    unlink(runtime->pidfile_path);
    domains_set_stop_reason(domains, runtime->uuid, reason);
    domains_emit_event(domains, runtime->uuid, runtime->name, "lifecycle", detail);
    runtime_unlink(domains, runtime);
    char message[1024];
    char log_tail[600];
    read_log_tail(runtime->log_path, log_tail, sizeof(log_tail));
    snprintf(message, sizeof(message), "the VMM exited during start (%s)%s%s", detail,
             log_tail[0] ? ": " : "", log_tail);
    runtime_free_waiter_list(&runtime->start_waiters, "internal", message);
    runtime_free_waiter_list(&runtime->stop_waiters, NULL, NULL);
    runtime_free(runtime);
}

static void describe_exit(int status, char *out, size_t size)
{
    if (WIFEXITED(status))
        snprintf(out, size, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, size, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(out, size, "wait status 0x%x", status);
}

static void on_process_exit(evutil_socket_t fd, short what, void *opaque)
{
    struct runtime *runtime = opaque;
    char how[128] = "exit status unknown (the daemon was restarted)";
    bool clean = false;
    if (runtime->child) {
        int status = 0;
        pid_t reaped = waitpid(runtime->pid, &status, WNOHANG);
        if (reaped == runtime->pid) {
            describe_exit(status, how, sizeof(how));
            clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        } else if (reaped == 0) {
            return; /* spurious: still running */
        }
    } else {
        clean = runtime->guest_shutdown;
    }
    char detail[256];
    if (runtime->destroying && !runtime->start_failed) {
        snprintf(detail, sizeof(detail), "stopped: destroyed (%s)", how);
        runtime_stop(runtime, STORE_DOMAIN_SHUTOFF, "destroyed", detail);
    } else if (runtime->start_failed || (!runtime->started && !runtime->restored)) {
        /* The guest never ran: libvirt's "shut off (failed)", not a crash. */
        snprintf(detail, sizeof(detail), "stopped: failed to start (%s)", how);
        runtime_stop(runtime, STORE_DOMAIN_SHUTOFF, "failed", detail);
    } else if (clean) {
        snprintf(detail, sizeof(detail), "stopped: shut off (%s)", how);
        runtime_stop(runtime, STORE_DOMAIN_SHUTOFF, "shutdown", detail);
    } else {
        snprintf(detail, sizeof(detail), "crashed: the VMM died (%s)", how);
        runtime_stop(runtime, STORE_DOMAIN_CRASHED, "crashed", detail);
    }
}

void runtime_set_state(struct runtime *runtime, enum store_domain_state state, const char *detail)
{
    if (runtime->state == state)
        return;
    runtime->state = state;
    struct pv_error error = {0};
    if (store_domain_set_state(runtime->domains->store, runtime->uuid, state, runtime->pid,
                               runtime->start_time, &error) < 0)
        pv_log_warning("domain %s: %s", runtime->name, error.message);
    if (detail)
        domains_emit_event(runtime->domains, runtime->uuid, runtime->name, "lifecycle", detail);
}

static void on_qmp_event(void *opaque, const char *event_name, const char *data_json)
{
    struct runtime *runtime = opaque;
    struct domains *domains = runtime->domains;
    pv_log_debug("domain %s: QMP event %s %s", runtime->name, event_name,
                 data_json ? data_json : "");
    if (strcmp(event_name, "SHUTDOWN") == 0) {
        runtime->guest_shutdown = true;
        runtime_set_state(runtime, STORE_DOMAIN_SHUTDOWN, NULL);
    } else if (strcmp(event_name, "STOP") == 0 && runtime->qmp_ready &&
               runtime->start_waiters == NULL) {
        runtime_set_state(runtime, STORE_DOMAIN_PAUSED, "suspended");
    } else if (strcmp(event_name, "RESUME") == 0 && runtime->start_waiters == NULL) {
        runtime_set_state(runtime, STORE_DOMAIN_RUNNING, "resumed");
    } else if (strcmp(event_name, "RESET") == 0) {
        domains_emit_event(domains, runtime->uuid, runtime->name, "reboot", "reset");
    }
    hotplug_handle_event(domains->hotplug, runtime->uuid, event_name, data_json);
}

static void on_qmp_closed(void *opaque)
{
    struct runtime *runtime = opaque;
    if (runtime->stopping)
        return;
    pv_log_warning("domain %s: QMP connection closed", runtime->name);
    runtime->qmp_ready = false;
    /* The connection object is freed by its owner: drop our pointer only when the process is
     * gone (runtime_stop); a closed connection stays unusable, commands fail at once. */
}

/* ----------------------------------------------------------------- QMP calls --- */

struct qmp_call {
    struct domains *domains;
    char uuid[DOMAIN_UUID_STRING_LENGTH + 1];
    runtime_reply_fn callback;
    void *context;
};

static void on_qmp_call_reply(void *opaque, const struct qmp_connection_reply *reply)
{
    struct qmp_call *call = opaque;
    call->callback(call->domains, call->uuid, reply, call->context);
    free(call);
}

/* Runs a QMP command on the runtime; the callback gets the reply (or a synthesized
 * -ECONNRESET reply when the command could not be queued). */
void runtime_execute(struct runtime *runtime, const char *command, const char *arguments,
                     int timeout_ms, runtime_reply_fn callback, void *context)
{
    struct domains *domains = runtime->domains;
    struct qmp_call *call = calloc(1, sizeof(*call));
    struct pv_error error = {0};
    if (call && runtime->qmp) {
        call->domains = domains;
        snprintf(call->uuid, sizeof(call->uuid), "%s", runtime->uuid);
        call->callback = callback;
        call->context = context;
        if (qmp_connection_execute(runtime->qmp, command, arguments,
                                   timeout_ms > 0 ? timeout_ms : domains->config->qmp_timeout_ms,
                                   on_qmp_call_reply, call, &error) == 0)
            return;
    }
    free(call);
    struct qmp_connection_reply reply = {
        .status = -ECONNRESET,
        .error_desc = error.message[0] ? error.message : "the QMP monitor is not connected",
    };
    callback(domains, runtime->uuid, &reply, context);
}

/* --------------------------------------------------------- spawn and connect --- */

static void on_started_cont(struct domains *domains, const char *uuid,
                            const struct qmp_connection_reply *reply, void *context)
{
    struct runtime *runtime = domains_find_runtime(domains, uuid);
    if (runtime == NULL || runtime->stopping)
        return; /* runtime_stop answered the waiters */
    if (reply->status < 0) {
        char message[700];
        snprintf(message, sizeof(message), "cont failed: %s",
                 reply->error_desc ? reply->error_desc : strerror(-reply->status));
        runtime_free_waiter_list(&runtime->start_waiters, "qmp-error", message);
        runtime->destroying = runtime->start_failed = true;
        runtime_kill(runtime, SIGKILL);
        return;
    }
    runtime->state = STORE_DOMAIN_RUNNING;
    runtime->started = true;
    struct pv_error error = {0};
    if (domains_save(domains, runtime, NULL, &error) < 0)
        pv_log_error("domain %s: %s", runtime->name, error.message);
    domains_emit_event(domains, runtime->uuid, runtime->name, "lifecycle", "started: booted");
    runtime_free_waiter_list(&runtime->start_waiters, NULL, NULL);
}

static void on_set_link(struct domains *domains, const char *uuid,
                        const struct qmp_connection_reply *reply, void *context)
{
    (void)domains;
    if (reply->status < 0)
        pv_log_error("domain %s: set_link down failed: %s", uuid,
                     reply->error_desc ? reply->error_desc : strerror(-reply->status));
}

void runtime_set_link_down(struct runtime *runtime, const char *alias)
{
    struct json_writer arguments;
    json_writer_init(&arguments, false);
    json_writer_begin_object(&arguments);
    json_writer_member_string(&arguments, "name", alias);
    json_writer_member_bool(&arguments, "up", false);
    json_writer_end_object(&arguments);
    runtime_execute(runtime, "set_link", json_writer_text(&arguments), 0, on_set_link, NULL);
    json_writer_free(&arguments);
}

/* <link state='down'/>: virtio-net-pci has no such property; like libvirt, the link is set
 * down over QMP before the guest runs (QMP answers in order, so before "cont"). */
static void set_links_down(struct runtime *runtime)
{
    for (size_t i = 0; runtime->live && i < runtime->live->interface_count; i++) {
        const struct domain_interface *interface = &runtime->live->interfaces[i];
        if (interface->link_down && interface->alias)
            runtime_set_link_down(runtime, interface->alias);
    }
}

static void on_qmp_ready(void *opaque, int status, const char *message)
{
    struct runtime *runtime = opaque;
    if (runtime->stopping)
        return;
    struct pv_error error = {0};
    if (status == 0 && runtime->console && console_connect_vmm(runtime->console, &error) < 0) {
        pv_log_warning("domain %s: %s", runtime->name, error.message);
        if (!runtime->restored) /* a VMM started by an older plugvirtd has no serial.sock */
            status = error.code, message = error.message;
    }
    if (status < 0) {
        pv_log_error("domain %s: QMP: %s", runtime->name, message ? message : "failed");
        if (runtime->start_waiters) {
            char text[700];
            snprintf(text, sizeof(text), "cannot connect to the VMM's QMP socket: %s",
                     message ? message : strerror(-status));
            runtime_free_waiter_list(&runtime->start_waiters, "internal", text);
            runtime->destroying = runtime->start_failed = true;
            runtime_kill(runtime, SIGKILL);
        }
        return;
    }
    runtime->qmp_ready = true;
    if (runtime->restored) {
        domains_reconcile_after_restore(runtime);
        return;
    }
    set_links_down(runtime);
    runtime_execute(runtime, "cont", NULL, 0, on_started_cont, NULL);
}

int runtime_spawn_vmm(struct runtime *runtime, char **argv, const int *nic_fds,
                      unsigned nic_fd_count, struct pv_error *error)
{
    int pipe_fds[2];
    /* Allocated before fork: the child may only make async-signal-safe calls. */
    int *moved = nic_fd_count ? calloc(nic_fd_count, sizeof(*moved)) : NULL;
    if (nic_fd_count && !moved)
        return pv_error_set(error, -ENOMEM, "out of memory");
    if (pipe2(pipe_fds, O_CLOEXEC) < 0) {
        free(moved);
        return pv_error_set_errno(error, -errno, "pipe");
    }
    int log_fd = open(runtime->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) {
        int rc = pv_error_set_errno(error, -errno, "cannot open %s", runtime->log_path);
        free(moved);
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        return rc;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int rc = pv_error_set_errno(error, -errno, "fork");
        free(moved);
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        close(log_fd);
        return rc;
    }
    if (pid == 0) {
        /* Child: its own session so that the daemon's death (or a signal to its process
         * group) never takes the VM with it. Only async-signal-safe calls from here on. */
        int report = pipe_fds[1];
        setsid();
        /* The taps go to VMM_ARGV_FIRST_NIC_FD.. (vmm_argv.h) and the exec report to 3: first
         * everything moves above that range, so that no move overwrites a descriptor not
         * moved yet; dup2 leaves the final tap descriptors without FD_CLOEXEC, so only they
         * are inherited. */
        int above = VMM_ARGV_FIRST_NIC_FD + (int)nic_fd_count;
        report = fcntl(report, F_DUPFD_CLOEXEC, above);
        if (report < 0)
            _exit(126);
        for (unsigned i = 0; i < nic_fd_count; i++)
            if ((moved[i] = fcntl(nic_fds[i], F_DUPFD_CLOEXEC, above)) < 0)
                _exit(126);
        if (dup3(report, 3, O_CLOEXEC) < 0)
            _exit(126);
        report = 3;
        for (unsigned i = 0; i < nic_fd_count; i++)
            if (dup2(moved[i], VMM_ARGV_FIRST_NIC_FD + (int)i) < 0)
                _exit(126);
        int null_fd = open("/dev/null", O_RDONLY);
        if (null_fd >= 0 && null_fd != STDIN_FILENO) {
            dup2(null_fd, STDIN_FILENO);
            close(null_fd);
        }
        dup2(log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
        syscall(SYS_close_range, VMM_ARGV_FIRST_NIC_FD + nic_fd_count, ~0U, 0);
        struct sigaction action = {.sa_handler = SIG_DFL};
        for (int sig = 1; sig < NSIG; sig++)
            sigaction(sig, &action, NULL);
        sigset_t mask;
        sigemptyset(&mask);
        sigprocmask(SIG_SETMASK, &mask, NULL);
        execv(argv[0], argv);
        int code = errno;
        ssize_t ignored = write(report, &code, sizeof(code));
        (void)ignored;
        _exit(127);
    }
    free(moved);
    close(pipe_fds[1]);
    close(log_fd);
    int code = 0;
    ssize_t length;
    do {
        length = read(pipe_fds[0], &code, sizeof(code));
    } while (length < 0 && errno == EINTR);
    close(pipe_fds[0]);
    if (length == (ssize_t)sizeof(code)) {
        waitpid(pid, NULL, 0);
        return pv_error_set_errno(error, -code, "cannot execute %s", argv[0]);
    }
    runtime->pid = pid;
    runtime->child = true;
    return 0;
}

int runtime_watch(struct runtime *runtime, struct pv_error *error)
{
    runtime->pidfd = pidfd_open_process(runtime->pid);
    if (runtime->pidfd < 0)
        return pv_error_set_errno(error, -errno, "pidfd_open(%d)", (int)runtime->pid);
    runtime->pidfd_event = event_new(runtime->domains->base, runtime->pidfd, EV_READ | EV_PERSIST,
                                     on_process_exit, runtime);
    if (runtime->pidfd_event == NULL || event_add(runtime->pidfd_event, NULL) < 0)
        return pv_error_set(error, -ENOMEM, "cannot watch the VMM process");
    return 0;
}

int runtime_connect(struct runtime *runtime, struct pv_error *error)
{
    struct qmp_connection_callbacks callbacks = {
        .ready = on_qmp_ready,
        .event = on_qmp_event,
        .closed = on_qmp_closed,
        .opaque = runtime,
    };
    runtime->qmp = qmp_connection_open(runtime->domains->base, runtime->qmp_path,
                                       QMP_CONNECT_TIMEOUT_MS, &callbacks, error);
    return runtime->qmp ? 0 : (error && error->code ? error->code : -EIO);
}

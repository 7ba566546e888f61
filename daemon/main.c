/* plugvirtd: the plugvirt management daemon (DESIGN.md §4).
 *
 * Startup: settings, daemonize (unless --foreground), pidfile lock in the run directory,
 * API sockets (systemd socket activation or our own), SQLite store, restore of running
 * VMMs, autostart, sd_notify READY=1, then the libevent loop. SIGTERM/SIGINT stop accepting
 * and exit 0; running VMs are left alone (their VMMs live in their own sessions). */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "api_server.h"
#include "daemon_config.h"
#include "domains.h"
#include "pv_error.h"
#include "pv_log.h"
#include "store.h"

#ifndef PLUGVIRT_VERSION
#define PLUGVIRT_VERSION "0.1.0"
#endif

struct daemon_state {
    struct daemon_config config;
    int pidfile_fd;
    char pidfile_path[4096];
    char socket_path[4096];
    char read_only_socket_path[4096];
    bool own_sockets; /* created by us (not socket-activated): unlinked at exit */
    int ready_pipe;   /* daemonizing: tells the waiting parent that startup succeeded */
};

static int make_directory(const char *path, mode_t mode, struct pv_error *error)
{
    if (mkdir(path, mode) == 0 || errno == EEXIST)
        return 0;
    return pv_error_set_errno(error, -errno, "cannot create directory %s", path);
}

/* Forks; the parent waits for the child's startup verdict and exits with it. */
static int daemonize(struct daemon_state *state, struct pv_error *error)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return pv_error_set_errno(error, -errno, "pipe");
    pid_t pid = fork();
    if (pid < 0)
        return pv_error_set_errno(error, -errno, "fork");
    if (pid > 0) {
        close(fds[1]);
        char verdict = 1;
        ssize_t length;
        do {
            length = read(fds[0], &verdict, 1);
        } while (length < 0 && errno == EINTR);
        _exit(length == 1 && verdict == 0 ? 0 : 1);
    }
    close(fds[0]);
    state->ready_pipe = fds[1];
    if (setsid() < 0)
        return pv_error_set_errno(error, -errno, "setsid");
    return 0;
}

static void report_ready(struct daemon_state *state, bool success)
{
    if (state->ready_pipe < 0)
        return;
    char verdict = success ? 0 : 1;
    ssize_t ignored = write(state->ready_pipe, &verdict, 1);
    (void)ignored;
    close(state->ready_pipe);
    state->ready_pipe = -1;
}

static int lock_pidfile(struct daemon_state *state, struct pv_error *error)
{
    snprintf(state->pidfile_path, sizeof(state->pidfile_path), "%s/plugvirtd.pid",
             state->config.run_dir);
    int fd = open(state->pidfile_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return pv_error_set_errno(error, -errno, "cannot open %s", state->pidfile_path);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int rc = -errno;
        char text[32] = "";
        ssize_t length = pread(fd, text, sizeof(text) - 1, 0);
        text[length > 0 ? length : 0] = '\0';
        text[strcspn(text, "\n")] = '\0';
        close(fd);
        if (rc == -EWOULDBLOCK)
            return pv_error_set(error, -EBUSY, "another plugvirtd (pid %s) uses %s",
                                text[0] ? text : "?", state->config.run_dir);
        return pv_error_set_errno(error, rc, "cannot lock %s", state->pidfile_path);
    }
    char text[32];
    int length = snprintf(text, sizeof(text), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, text, (size_t)length, 0) != length) {
        int rc = pv_error_set_errno(error, -errno, "cannot write %s", state->pidfile_path);
        close(fd);
        return rc;
    }
    state->pidfile_fd = fd;
    return 0;
}

/* Socket activation: fds named "*ro*" (FileDescriptorName=) are read-only; without names,
 * the first is read-write and the second read-only. */
static int activated_sockets(int *read_write_fd, int *read_only_fd)
{
    char **names = NULL;
    int count = sd_listen_fds_with_names(1, &names);
    if (count <= 0)
        return count;
    for (int i = 0; i < count; i++) {
        int fd = SD_LISTEN_FDS_START + i;
        const char *name = names && names[i] ? names[i] : "";
        bool read_only = strstr(name, "ro") != NULL && strcmp(name, "unknown") != 0;
        if (strcmp(name, "unknown") == 0 || name[0] == '\0')
            read_only = i == 1;
        if (read_only && *read_only_fd < 0)
            *read_only_fd = fd;
        else if (!read_only && *read_write_fd < 0)
            *read_write_fd = fd;
        else
            close(fd);
    }
    if (names) {
        for (int i = 0; i < count; i++)
            free(names[i]);
        free(names);
    }
    return count;
}

static void on_stop_signal(evutil_socket_t signal_number, short what, void *opaque)
{
    struct event_base *base = opaque;
    pv_log_info("signal %d: stopping (running VMs are left alone)", (int)signal_number);
    event_base_loopbreak(base);
}

static void redirect_stdio(const struct daemon_config *config)
{
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd >= 0) {
        dup2(null_fd, STDIN_FILENO);
        dup2(null_fd, STDOUT_FILENO);
        close(null_fd);
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/plugvirtd.log", config->run_dir);
    int log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd >= 0) {
        dup2(log_fd, STDERR_FILENO);
        close(log_fd);
    }
}

int main(int argc, char **argv)
{
    struct daemon_state state = {.pidfile_fd = -1, .ready_pipe = -1};
    struct pv_error error = {0};
    struct event_base *base = NULL;
    struct store *store = NULL;
    struct api_server *server = NULL;
    struct domains *domains = NULL;
    struct event *signal_events[2] = {NULL, NULL};
    int read_write_fd = -1, read_only_fd = -1;
    int status = 1;

    pv_log_set_program("plugvirtd");
    daemon_config_init(&state.config);
    if (daemon_config_load(&state.config, argc, argv, &error) < 0) {
        fprintf(stderr, "plugvirtd: %s\n", error.message);
        fprintf(stderr, "Try 'plugvirtd --help'.\n");
        daemon_config_free(&state.config);
        return 1;
    }
    if (state.config.show_help) {
        daemon_config_print_help(argv[0]);
        daemon_config_free(&state.config);
        return 0;
    }
    if (state.config.show_version) {
        printf("plugvirtd %s\n", PLUGVIRT_VERSION);
        daemon_config_free(&state.config);
        return 0;
    }
    pv_log_set_level(state.config.log_level);
    daemon_config_resolve_vmm(&state.config);
    signal(SIGPIPE, SIG_IGN);

    if (make_directory(state.config.state_dir, 0700, &error) < 0 ||
        make_directory(state.config.run_dir, 0755, &error) < 0)
        goto out;
    if (!state.config.foreground && daemonize(&state, &error) < 0)
        goto out;
    if (lock_pidfile(&state, &error) < 0)
        goto out;

    int activated = activated_sockets(&read_write_fd, &read_only_fd);
    if (activated < 0) {
        pv_error_set_errno(&error, activated, "sd_listen_fds");
        goto out;
    }
    if (activated == 0) {
        snprintf(state.socket_path, sizeof(state.socket_path), "%s/plugvirtd.sock",
                 state.config.run_dir);
        snprintf(state.read_only_socket_path, sizeof(state.read_only_socket_path),
                 "%s/plugvirtd-ro.sock", state.config.run_dir);
        state.own_sockets = true;
        read_write_fd = api_server_listen_unix(state.socket_path, 0600, &error);
        if (read_write_fd < 0)
            goto out;
        read_only_fd = api_server_listen_unix(state.read_only_socket_path, 0666, &error);
        if (read_only_fd < 0)
            goto out;
    }

    base = event_base_new();
    if (base == NULL) {
        pv_error_set(&error, -ENOMEM, "cannot create the event loop");
        goto out;
    }
    store = store_open(state.config.state_dir, &error);
    if (store == NULL)
        goto out;
    server = api_server_create(base, read_write_fd, read_only_fd, &error);
    if (server == NULL) {
        read_write_fd = read_only_fd = -1; /* closed by api_server_free */
        goto out;
    }
    read_write_fd = read_only_fd = -1;
    domains =
        domains_create(base, store, &state.config, api_server_broadcast_event, server, &error);
    if (domains == NULL)
        goto out;
    api_server_set_domains(server, domains);
    if (domains_restore(domains, &error) < 0)
        goto out;

    signal_events[0] = evsignal_new(base, SIGTERM, on_stop_signal, base);
    signal_events[1] = evsignal_new(base, SIGINT, on_stop_signal, base);
    for (int i = 0; i < 2; i++) {
        if (signal_events[i] == NULL || event_add(signal_events[i], NULL) < 0) {
            pv_error_set(&error, -ENOMEM, "cannot watch signals");
            goto out;
        }
    }
    pv_log_info("plugvirtd %s ready: state %s, run %s, emulator %s, schemas %s", PLUGVIRT_VERSION,
                state.config.state_dir, state.config.run_dir,
                state.config.vmm_path ? state.config.vmm_path : "?",
                state.config.schema_dir ? state.config.schema_dir : "built-in");
    sd_notify(0, "READY=1\nSTATUS=accepting requests");
    report_ready(&state, true);
    if (!state.config.foreground)
        redirect_stdio(&state.config);

    if (event_base_dispatch(base) < 0) {
        pv_error_set(&error, -EIO, "event loop failed");
        goto out;
    }
    sd_notify(0, "STOPPING=1");
    status = 0;
out:
    if (status != 0)
        pv_log_error("%s", error.message[0] ? error.message : "startup failed");
    report_ready(&state, false);
    for (int i = 0; i < 2; i++)
        if (signal_events[i])
            event_free(signal_events[i]);
    api_server_free(server); /* stop accepting before anything else goes */
    if (read_write_fd >= 0)
        close(read_write_fd);
    if (read_only_fd >= 0)
        close(read_only_fd);
    if (state.own_sockets) {
        unlink(state.socket_path);
        unlink(state.read_only_socket_path);
    }
    domains_free(domains); /* VMMs keep running */
    store_close(store);
    if (base)
        event_base_free(base);
    if (state.pidfile_fd >= 0) {
        unlink(state.pidfile_path);
        close(state.pidfile_fd);
    }
    daemon_config_free(&state.config);
    return status;
}

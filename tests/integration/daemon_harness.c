/* Integration-test harness for plugvirtd (see daemon_harness.h). */
#include "daemon_harness.h"

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "json_util.h"
#include "kvm_check.h"

#ifndef PLUGVIRT_BUILDDIR
#define PLUGVIRT_BUILDDIR "."
#endif
#ifndef PLUGVIRT_SRCDIR
#define PLUGVIRT_SRCDIR "."
#endif
#ifndef PLUGVIRT_QEMU_PATH
#define PLUGVIRT_QEMU_PATH ""
#endif

const char *daemon_harness_plugvirtd_path(void)
{
    const char *path = getenv("PLUGVIRTD");
    return path ? path : PLUGVIRT_BUILDDIR "/daemon/plugvirtd";
}

const char *daemon_harness_vmm_path(void)
{
    const char *path = getenv("PLUGVIRT_VMM");
    return path ? path : PLUGVIRT_BUILDDIR "/hypervisor/plugvirt-vmm";
}

const char *daemon_harness_probe_guest_path(void)
{
    const char *path = getenv("PLUGVIRT_PROBE_GUEST");
    return path ? path : PLUGVIRT_BUILDDIR "/tests/guest/probe-guest.elf";
}

const char *daemon_harness_schema_dir(void)
{
    return PLUGVIRT_SRCDIR "/xml-schemas";
}

const char *daemon_harness_qemu_path(void)
{
    const char *path = getenv("PLUGVIRT_TEST_QEMU");
    if (path == NULL || path[0] == '\0')
        path = PLUGVIRT_QEMU_PATH;
    return path[0] && access(path, X_OK) == 0 ? path : NULL;
}

const char *daemon_harness_backend_name(enum daemon_backend backend)
{
    return backend == DAEMON_BACKEND_VMM ? "vmm" : "qemu";
}

/* The backend, or -1 and why none can run; `description` says what was chosen and why. */
static int choose_backend(enum daemon_backend *backend, char *description, size_t size)
{
    char kvm_reason[256] = "";
    bool kvm = test_kvm_check(kvm_reason, sizeof(kvm_reason)) == 0;
    const char *qemu = daemon_harness_qemu_path();
    const char *forced = getenv("PLUGVIRT_TEST_BACKEND");
    if (forced && forced[0] == '\0')
        forced = NULL;
    if (forced && strcmp(forced, "vmm") != 0 && strcmp(forced, "qemu") != 0) {
        snprintf(description, size, "PLUGVIRT_TEST_BACKEND=%s is neither vmm nor qemu", forced);
        return -1;
    }
    if (forced ? strcmp(forced, "vmm") == 0 : kvm) {
        *backend = DAEMON_BACKEND_VMM;
        if (!kvm) {
            snprintf(description, size, "backend vmm (PLUGVIRT_TEST_BACKEND) cannot run: %s",
                     kvm_reason);
            return -1;
        }
        snprintf(description, size, "backend vmm: %s with /dev/kvm%s", daemon_harness_vmm_path(),
                 forced ? " (PLUGVIRT_TEST_BACKEND)" : "");
        return 0;
    }
    *backend = DAEMON_BACKEND_QEMU;
    if (qemu == NULL) {
        snprintf(description, size,
                 "backend qemu cannot run: qemu-system-x86_64 is not installed (Debian package "
                 "qemu-system-x86)%s%s",
                 kvm ? "" : ", and ", kvm ? "" : kvm_reason);
        return -1;
    }
    snprintf(description, size, "backend qemu: %s with TCG (%s)", qemu,
             forced ? "PLUGVIRT_TEST_BACKEND" : kvm_reason);
    return 0;
}

enum daemon_backend daemon_harness_backend(void)
{
    static bool chosen;
    static int status;
    static enum daemon_backend backend;
    static char description[512];
    if (!chosen) {
        status = choose_backend(&backend, description, sizeof(description));
        chosen = true;
    }
    if (status < 0)
        cr_skip_test("%s", description);
    return backend;
}

void daemon_harness_require_backend(enum daemon_backend backend, const char *why)
{
    if (daemon_harness_backend() != backend)
        cr_skip_test("only on backend %s: %s", daemon_harness_backend_name(backend), why);
}

/* Once per test program, in the runner: which VMM the domains run on. */
ReportHook(PRE_ALL)(struct criterion_test_set *tests)
{
    enum daemon_backend backend;
    char description[512];
    choose_backend(&backend, description, sizeof(description));
    fprintf(stderr, "daemon tests: %s\n", description);
    fflush(stderr);
}

long long daemon_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

void daemon_sleep_ms(int milliseconds)
{
    struct timespec delay = {milliseconds / 1000, (milliseconds % 1000) * 1000000L};
    nanosleep(&delay, NULL);
}

/* A new network namespace with its loopback up, kept alive by a descriptor: a child makes
 * it, the parent opens /proc/<child>/ns/net and lets the child go. */
static int make_netns(struct daemon_process *daemon)
{
    int ready[2], go[2];
    if (pipe2(ready, O_CLOEXEC) < 0)
        return -errno;
    if (pipe2(go, O_CLOEXEC) < 0) {
        int rc = -errno;
        close(ready[0]);
        close(ready[1]);
        return rc;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int rc = -errno;
        close(ready[0]);
        close(ready[1]);
        close(go[0]);
        close(go[1]);
        return rc;
    }
    if (pid == 0) {
        close(ready[0]);
        close(go[1]); /* or the read below never sees the parent's end close */
        char status = unshare(CLONE_NEWNET) == 0 ? 0 : 1;
        if (status == 0) {
            int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            struct ifreq request = {0};
            snprintf(request.ifr_name, sizeof(request.ifr_name), "lo");
            if (sock < 0 || ioctl(sock, SIOCGIFFLAGS, &request) < 0)
                status = 2;
            request.ifr_flags |= IFF_UP;
            if (status == 0 && ioctl(sock, SIOCSIFFLAGS, &request) < 0)
                status = 2;
        }
        if (write(ready[1], &status, 1) != 1)
            _exit(1);
        char byte;
        ssize_t ignored = read(go[0], &byte, 1); /* until the parent holds the namespace */
        (void)ignored;
        _exit(0);
    }
    close(ready[1]);
    close(go[0]);
    char status = 1;
    int rc = read(ready[0], &status, 1) == 1 && status == 0 ? 0 : -EPERM;
    if (rc == 0) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
        daemon->netns_fd = open(path, O_RDONLY | O_CLOEXEC);
        if (daemon->netns_fd < 0)
            rc = -errno;
        else
            daemon->has_netns = true;
    }
    close(go[1]);
    close(ready[0]);
    waitpid(pid, NULL, 0);
    return rc;
}

void daemon_harness_require_netns(struct daemon_process *daemon)
{
    if (!daemon->has_netns)
        cr_skip_test("no private network namespace (unshare(CLONE_NEWNET) needs root): "
                     "NIC tests would touch the host's interfaces");
}

int daemon_netns_run(struct daemon_process *daemon, const char *command, char *output, size_t size)
{
    if (!daemon->has_netns)
        return -ENOENT;
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int rc = -errno;
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        return rc;
    }
    if (pid == 0) {
        dup2(pipe_fds[1], STDOUT_FILENO);
        dup2(pipe_fds[1], STDERR_FILENO);
        if (setns(daemon->netns_fd, CLONE_NEWNET) < 0)
            _exit(126);
        execl("/bin/sh", "sh", "-c", command, (char *)NULL);
        _exit(127);
    }
    close(pipe_fds[1]);
    size_t length = 0;
    char scratch[256];
    for (;;) {
        char *into = output && length + 1 < size ? output + length : scratch;
        size_t room = output && length + 1 < size ? size - 1 - length : sizeof(scratch);
        ssize_t got = read(pipe_fds[0], into, room);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        if (into != scratch)
            length += (size_t)got;
    }
    close(pipe_fds[0]);
    if (output && size)
        output[length] = '\0';
    int status;
    if (waitpid(pid, &status, 0) < 0)
        return -errno;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int daemon_netns_interfaces(struct daemon_process *daemon, char *out, size_t size)
{
    /* ip run in the namespace: the test process's /sys would show the host's interfaces. */
    int rc = daemon_netns_run(daemon,
                              "ip -o link show | cut -d: -f2 | cut -d@ -f1 | "
                              "tr -d ' ' | sort",
                              out, size);
    return rc < 0 ? rc : rc ? -EIO : 0;
}

int daemon_start(struct daemon_process *daemon)
{
    if (daemon->directory[0] == '\0') {
        snprintf(daemon->directory, sizeof(daemon->directory), "/tmp/plugvirtd-test-XXXXXX");
        if (mkdtemp(daemon->directory) == NULL)
            return -errno;
        snprintf(daemon->state_dir, sizeof(daemon->state_dir), "%s/state", daemon->directory);
        snprintf(daemon->run_dir, sizeof(daemon->run_dir), "%s/run", daemon->directory);
        snprintf(daemon->socket_path, sizeof(daemon->socket_path), "%s/plugvirtd.sock",
                 daemon->run_dir);
        snprintf(daemon->read_only_socket_path, sizeof(daemon->read_only_socket_path),
                 "%s/plugvirtd-ro.sock", daemon->run_dir);
        snprintf(daemon->log_path, sizeof(daemon->log_path), "%s/plugvirtd.log", daemon->directory);
        /* Without a namespace (not root) the tests that need one skip. */
        if (make_netns(daemon) < 0)
            daemon->has_netns = false;
    }
    char config_path[400];
    snprintf(config_path, sizeof(config_path), "%s/plugvirtd.conf", daemon->directory);
    FILE *config = fopen(config_path, "w");
    if (config == NULL)
        return -errno;
    /* No schema_dir by default: plugvirtd uses the schemas built into it, as when it runs
     * from a build tree. */
    fprintf(config,
            "# written by the integration tests\nvmm_path = %s\n%s%s%s"
            "detach_timeout_ms = 5000\nqmp_timeout_ms = 5000\n%s\n",
            daemon_harness_vmm_path(), daemon->schema_dir[0] ? "schema_dir = " : "",
            daemon->schema_dir, daemon->schema_dir[0] ? "\n" : "", daemon->extra_config);
    fclose(config);
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        int log_fd = open(daemon->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (log_fd >= 0) {
            dup2(log_fd, STDOUT_FILENO);
            dup2(log_fd, STDERR_FILENO);
        }
        if (daemon->has_netns && setns(daemon->netns_fd, CLONE_NEWNET) < 0)
            _exit(126);
        unsetenv("NOTIFY_SOCKET");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDNAMES");
        if (daemon->notify_socket[0])
            setenv("NOTIFY_SOCKET", daemon->notify_socket, 1);
        const char *arguments[48];
        size_t count = 0;
        for (size_t i = 0; daemon->launcher && daemon->launcher[i] && count < 32; i++)
            arguments[count++] = daemon->launcher[i];
        const char *const own[] = {daemon_harness_plugvirtd_path(),
                                   "--foreground",
                                   "--verbose",
                                   "--state-dir",
                                   daemon->state_dir,
                                   "--run-dir",
                                   daemon->run_dir,
                                   "--config",
                                   config_path};
        for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
            arguments[count++] = own[i];
        arguments[count] = NULL;
        execv(arguments[0], (char *const *)arguments);
        _exit(127);
    }
    daemon->pid = pid;
    long long deadline = daemon_now_ms() + 10000;
    while (daemon_now_ms() < deadline) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            daemon->pid = 0;
            return -ECHILD;
        }
        daemon->client = api_client_connect(daemon->socket_path, NULL);
        if (daemon->client) {
            struct api_reply reply = {0};
            int rc = api_client_call(daemon->client, "daemon.ping", NULL, 5000, &reply, NULL);
            api_reply_free(&reply);
            if (rc == 0)
                return 0;
            api_client_close(daemon->client);
            daemon->client = NULL;
        }
        daemon_sleep_ms(20);
    }
    return -ETIMEDOUT;
}

int daemon_kill(struct daemon_process *daemon, int signal_number, int *exit_status)
{
    if (daemon->client) {
        api_client_close(daemon->client);
        daemon->client = NULL;
    }
    if (daemon->pid <= 0)
        return -ESRCH;
    kill(daemon->pid, signal_number);
    int status = 0;
    long long deadline = daemon_now_ms() + 10000;
    while (daemon_now_ms() < deadline) {
        pid_t reaped = waitpid(daemon->pid, &status, WNOHANG);
        if (reaped == daemon->pid) {
            daemon->pid = 0;
            if (exit_status)
                *exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
            return 0;
        }
        daemon_sleep_ms(10);
    }
    return -ETIMEDOUT;
}

pid_t daemon_vmm_pid(struct daemon_process *daemon, const char *name)
{
    char path[600], text[32] = "";
    snprintf(path, sizeof(path), "%s/domains/%s/vmm.pid", daemon->run_dir, name);
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return -1;
    if (fgets(text, sizeof(text), file) == NULL)
        text[0] = '\0';
    fclose(file);
    pid_t pid = (pid_t)atoi(text);
    return pid > 0 ? pid : -1;
}

static void remove_tree(const char *path)
{
    DIR *directory = opendir(path);
    if (directory) {
        struct dirent *entry;
        while ((entry = readdir(directory))) {
            if (!strcmp(entry->d_name, ".") || !strcmp(entry->d_name, ".."))
                continue;
            char child[1024];
            snprintf(child, sizeof(child), "%s/%s", path, entry->d_name);
            struct stat status;
            if (lstat(child, &status) == 0 && S_ISDIR(status.st_mode))
                remove_tree(child);
            else
                unlink(child);
        }
        closedir(directory);
    }
    rmdir(path);
}

void daemon_cleanup(struct daemon_process *daemon)
{
    if (daemon->directory[0] == '\0')
        return;
    daemon_kill(daemon, SIGKILL, NULL);
    char domains_path[400];
    snprintf(domains_path, sizeof(domains_path), "%s/domains", daemon->run_dir);
    DIR *directory = opendir(domains_path);
    if (directory) {
        struct dirent *entry;
        while ((entry = readdir(directory))) {
            if (entry->d_name[0] == '.')
                continue;
            pid_t pid = daemon_vmm_pid(daemon, entry->d_name);
            /* Only a VMM whose command line names our private directory is ours. */
            char cmdline_path[64], cmdline[4096] = "";
            snprintf(cmdline_path, sizeof(cmdline_path), "/proc/%d/cmdline", (int)pid);
            int fd = pid > 0 ? open(cmdline_path, O_RDONLY) : -1;
            if (fd >= 0) {
                ssize_t length = read(fd, cmdline, sizeof(cmdline) - 1);
                close(fd);
                for (ssize_t i = 0; i < length; i++)
                    if (cmdline[i] == '\0')
                        cmdline[i] = ' ';
                if (length > 0)
                    cmdline[length] = '\0';
                if (strstr(cmdline, daemon->directory))
                    kill(pid, SIGKILL);
            }
        }
        closedir(directory);
    }
    if (getenv("PLUGVIRT_KEEP_TEST_DIR") == NULL)
        remove_tree(daemon->directory);
    daemon->directory[0] = '\0';
    if (daemon->has_netns)
        close(daemon->netns_fd);
    daemon->has_netns = false;
}

int daemon_call(struct daemon_process *daemon, const char *method, const char *params_json,
                struct api_reply *reply)
{
    memset(reply, 0, sizeof(*reply));
    struct pv_error error = {0};
    int rc = api_client_call(daemon->client, method, params_json, 60000, reply, &error);
    if (rc < 0)
        cr_log_error("%s: %s", method, error.message);
    return rc;
}

void daemon_call_ok(struct daemon_process *daemon, const char *method, const char *params_json,
                    struct api_reply *reply)
{
    int rc = daemon_call(daemon, method, params_json, reply);
    cr_assert_eq(rc, 0, "%s: transport error %d", method, rc);
    cr_assert_null(reply->error_code, "%s %s: %s: %s", method, params_json ? params_json : "",
                   reply->error_code, reply->error_message);
}

const char *daemon_make_image(struct daemon_process *daemon, const char *name, unsigned size_mib)
{
    static char path[600];
    snprintf(path, sizeof(path), "%s/%s", daemon->directory, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0, "cannot create %s", path);
    cr_assert_eq(ftruncate(fd, (off_t)size_mib << 20), 0);
    close(fd);
    return path;
}

char *daemon_domain_xml(const char *name, const char *uuid, const char *cmdline,
                        const char *disks_xml)
{
    return daemon_domain_xml_options(name, uuid, cmdline, disks_xml, NULL);
}

char *daemon_domain_xml_options(const char *name, const char *uuid, const char *cmdline,
                                const char *disks_xml, const struct daemon_domain_options *options)
{
    char *xml = NULL;
    char uuid_element[80] = "", emulator_element[400] = "";
    if (uuid)
        snprintf(uuid_element, sizeof(uuid_element), "  <uuid>%s</uuid>\n", uuid);
    bool qemu = daemon_harness_backend() == DAEMON_BACKEND_QEMU;
    const char *emulator = options && options->emulator ? options->emulator
                           : qemu                       ? daemon_harness_qemu_path()
                                                        : NULL;
    const char *type = options && options->type ? options->type : qemu ? "qemu" : "kvm";
    if (emulator)
        snprintf(emulator_element, sizeof(emulator_element), "    <emulator>%s</emulator>\n",
                 emulator);
    if (asprintf(&xml,
                 "<domain type='%s'>\n"
                 "  <name>%s</name>\n"
                 "%s"
                 "  <memory unit='MiB'>%u</memory>\n"
                 "  <vcpu>1</vcpu>\n"
                 "  <os>\n"
                 "    <type arch='x86_64' machine='pc'>hvm</type>\n"
                 "    <kernel>%s</kernel>\n"
                 "    <cmdline>%s</cmdline>\n"
                 "  </os>\n"
                 "  <features><acpi/></features>\n"
                 "  <devices>\n%s%s  </devices>\n"
                 "</domain>\n",
                 type, name, uuid_element,
                 options && options->memory_mib ? options->memory_mib : 128,
                 daemon_harness_probe_guest_path(), cmdline ? cmdline : "console=ttyS0",
                 emulator_element, disks_xml ? disks_xml : "") < 0)
        return NULL;
    return xml;
}

char *daemon_json_string(const char *text)
{
    struct json_writer writer;
    json_writer_init(&writer, false);
    json_writer_string(&writer, text);
    return json_writer_steal(&writer);
}

int daemon_wait_serial_line(struct daemon_process *daemon, const char *name, const char *prefix,
                            int timeout_ms, char *line, size_t line_size)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/domains/%s/serial.log", daemon->run_dir, name);
    size_t prefix_length = strlen(prefix);
    long long deadline = daemon_now_ms() + timeout_ms;
    char *text = NULL;
    size_t text_size = 0;
    do {
        FILE *file = fopen(path, "r");
        if (file) {
            ssize_t length;
            while ((length = getline(&text, &text_size, file)) > 0) {
                /* Only a complete line: the guest may still be writing the rest of it. */
                if (text[length - 1] != '\n')
                    break;
                text[--length] = '\0';
                if (length > 0 && text[length - 1] == '\r')
                    text[--length] = '\0';
                if ((size_t)length >= prefix_length && memcmp(text, prefix, prefix_length) == 0) {
                    if (line && line_size)
                        snprintf(line, line_size, "%s", text);
                    fclose(file);
                    free(text);
                    return 0;
                }
            }
            fclose(file);
        }
        daemon_sleep_ms(20);
    } while (daemon_now_ms() < deadline);
    free(text);
    return -ETIMEDOUT;
}

int daemon_wait_serial(struct daemon_process *daemon, const char *name, const char *prefix,
                       int timeout_ms)
{
    return daemon_wait_serial_line(daemon, name, prefix, timeout_ms, NULL, 0);
}

int daemon_wait_state(struct daemon_process *daemon, const char *domain, const char *state,
                      int timeout_ms)
{
    char params[300];
    snprintf(params, sizeof(params), "{\"domain\": \"%s\"}", domain);
    long long deadline = daemon_now_ms() + timeout_ms;
    do {
        struct api_reply reply;
        if (daemon_call(daemon, "domain.state", params, &reply) == 0 && reply.result) {
            const char *current = json_get_string(reply.result, "state");
            bool match = current && strcmp(current, state) == 0;
            api_reply_free(&reply);
            if (match)
                return 0;
        } else {
            api_reply_free(&reply);
        }
        daemon_sleep_ms(20);
    } while (daemon_now_ms() < deadline);
    return -ETIMEDOUT;
}

/* ------------------------------------------------------------------ raw QMP --- */

/* Next line (without the newline) into `line`; 0, -ETIMEDOUT or -EIO. */
static int qmp_read_line(struct daemon_qmp *qmp, char *line, size_t size, int timeout_ms)
{
    long long deadline = daemon_now_ms() + timeout_ms;
    for (;;) {
        char *end = memchr(qmp->buffer, '\n', qmp->length);
        if (end) {
            size_t length = (size_t)(end - qmp->buffer);
            snprintf(line, size, "%.*s", (int)length, qmp->buffer);
            memmove(qmp->buffer, end + 1, qmp->length - length - 1);
            qmp->length -= length + 1;
            return 0;
        }
        long long left = deadline - daemon_now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd poll_fd = {.fd = qmp->fd, .events = POLLIN};
        if (poll(&poll_fd, 1, (int)left) <= 0)
            continue;
        if (qmp->length >= sizeof(qmp->buffer) - 1)
            return -EIO;
        ssize_t got =
            read(qmp->fd, qmp->buffer + qmp->length, sizeof(qmp->buffer) - 1 - qmp->length);
        if (got <= 0)
            return -EIO;
        qmp->length += (size_t)got;
    }
}

/* Remembers the event's name; tells whether the line was an event. */
static bool qmp_note_event(struct daemon_qmp *qmp, const char *line)
{
    const char *key = strstr(line, "\"event\"");
    if (key == NULL || strstr(line, "\"return\"") || strstr(line, "\"error\""))
        return false;
    const char *open_quote = strchr(key + 7, '"');
    const char *close_quote = open_quote ? strchr(open_quote + 1, '"') : NULL;
    if (close_quote) {
        size_t used = strlen(qmp->events);
        snprintf(qmp->events + used, sizeof(qmp->events) - used, "%.*s\n",
                 (int)(close_quote - open_quote - 1), open_quote + 1);
    }
    return true;
}

int daemon_qmp_execute(struct daemon_qmp *qmp, const char *command_json, char *reply, size_t size,
                       int timeout_ms)
{
    /* One send with the newline: QEMU runs a command as soon as its closing brace arrives,
     * so a command that makes the VMM exit (system_powerdown of a quick guest, quit) could
     * otherwise close the socket before a separate newline is sent (EPIPE).
     * MSG_NOSIGNAL: a VMM that closed the monitor fails the call, it does not kill the test
     * process with SIGPIPE (which Criterion reports as a crash without a reason). */
    char *line = NULL;
    int length = asprintf(&line, "%s\n", command_json);
    if (length < 0)
        return -ENOMEM;
    for (int sent = 0; sent < length;) {
        ssize_t done = send(qmp->fd, line + sent, (size_t)(length - sent), MSG_NOSIGNAL);
        if (done < 0 && errno == EINTR)
            continue;
        if (done < 0) {
            int rc = -errno;
            cr_log_error("QMP %s: %s", command_json, strerror(errno));
            free(line);
            return rc;
        }
        sent += (int)done;
    }
    free(line);
    long long deadline = daemon_now_ms() + timeout_ms;
    for (;;) {
        int rc = qmp_read_line(qmp, reply, size, (int)(deadline - daemon_now_ms()));
        if (rc < 0)
            return rc;
        if (!qmp_note_event(qmp, reply))
            return 0;
    }
}

int daemon_qmp_wait_event(struct daemon_qmp *qmp, const char *name, int timeout_ms)
{
    char wanted[128], line[8192];
    snprintf(wanted, sizeof(wanted), "%s\n", name);
    long long deadline = daemon_now_ms() + timeout_ms;
    while (strstr(qmp->events, wanted) == NULL) {
        int rc = qmp_read_line(qmp, line, sizeof(line), (int)(deadline - daemon_now_ms()));
        if (rc < 0)
            return rc;
        qmp_note_event(qmp, line);
    }
    return 0;
}

int daemon_qmp_connect(struct daemon_qmp *qmp, struct daemon_process *daemon, const char *name)
{
    memset(qmp, 0, sizeof(*qmp));
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    char path[600];
    snprintf(path, sizeof(path), "%s/domains/%s/qmp.sock", daemon->run_dir, name);
    if (strlen(path) >= sizeof(address.sun_path))
        return -ENAMETOOLONG;
    memcpy(address.sun_path, path, strlen(path) + 1);
    qmp->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (qmp->fd < 0)
        return -errno;
    if (connect(qmp->fd, (struct sockaddr *)&address, sizeof(address)) < 0) {
        int rc = -errno;
        daemon_qmp_close(qmp);
        return rc;
    }
    char line[8192];
    int rc = qmp_read_line(qmp, line, sizeof(line), 5000); /* the greeting */
    if (rc == 0 && strstr(line, "\"QMP\"") == NULL)
        rc = -EPROTO;
    if (rc == 0)
        rc = daemon_qmp_execute(qmp, "{\"execute\": \"qmp_capabilities\"}", line, sizeof(line),
                                5000);
    if (rc == 0 && strstr(line, "\"return\"") == NULL)
        rc = -EPROTO;
    if (rc < 0)
        daemon_qmp_close(qmp);
    return rc;
}

void daemon_qmp_close(struct daemon_qmp *qmp)
{
    if (qmp->fd >= 0)
        close(qmp->fd);
    qmp->fd = -1;
}

char *daemon_xml_params(const char *domain, const char *xml, const char *extra)
{
    char *quoted = daemon_json_string(xml);
    char *params = NULL;
    int rc = domain ? asprintf(&params, "{\"domain\": \"%s\", \"xml\": %s%s%s}", domain, quoted,
                               extra ? ", " : "", extra ? extra : "")
                    : asprintf(&params, "{\"xml\": %s}", quoted);
    free(quoted);
    cr_assert_geq(rc, 0, "out of memory");
    return params;
}

char *daemon_disk_xml(const char *source, const char *target, const char *extra)
{
    char *xml = NULL;
    cr_assert_geq(asprintf(&xml,
                           "<disk type='file' device='disk'>\n"
                           "  <driver name='qemu' type='raw'/>\n"
                           "  <source file='%s'/>\n"
                           "  <target dev='%s' bus='virtio'/>\n%s"
                           "</disk>\n",
                           source, target, extra ? extra : ""),
                  0);
    return xml;
}

/* The last `size` - 1 bytes of a file, for failure messages. */
static void file_tail(const char *path, char *out, size_t size)
{
    out[0] = '\0';
    FILE *file = fopen(path, "r");
    if (!file)
        return;
    if (fseek(file, 0, SEEK_END) == 0) {
        long length = ftell(file);
        fseek(file, length > (long)size - 1 ? length - ((long)size - 1) : 0, SEEK_SET);
    }
    size_t got = fread(out, 1, size - 1, file);
    out[got] = '\0';
    fclose(file);
}

void daemon_wait_booted(struct daemon_process *daemon, const char *name)
{
    if (daemon_wait_serial(daemon, name, "PROBE READY", DAEMON_BOOT_TIMEOUT_MS) == 0)
        return;
    char path[700], serial[600], log[1200];
    snprintf(path, sizeof(path), "%.600s/domains/%.64s/serial.log", daemon->run_dir, name);
    file_tail(path, serial, sizeof(serial));
    file_tail(daemon->log_path, log, sizeof(log));
    cr_assert_fail("the guest of %s did not print PROBE READY within %d s; serial.log ends "
                   "with:\n%s\nplugvirtd's log ends with:\n%s",
                   name, DAEMON_BOOT_TIMEOUT_MS / 1000, serial, log);
}

void daemon_call_simple(struct daemon_process *daemon, const char *method, const char *domain)
{
    char params[512];
    snprintf(params, sizeof(params), "{\"domain\": \"%s\"}", domain);
    struct api_reply reply;
    daemon_call_ok(daemon, method, params, &reply);
    api_reply_free(&reply);
}

void daemon_expect_error(struct daemon_process *daemon, const char *method, const char *params,
                         const char *code, const char *message_part)
{
    struct api_reply reply;
    cr_assert_eq(daemon_call(daemon, method, params, &reply), 0);
    cr_assert_not_null(reply.error_code, "%s should fail with %s", method, code);
    cr_assert_str_eq(reply.error_code, code, "%s: %s", method, reply.error_message);
    if (message_part)
        cr_assert(strstr(reply.error_message, message_part) != NULL, "'%s' lacks '%s'",
                  reply.error_message, message_part);
    api_reply_free(&reply);
}

bool daemon_domain_xml_contains(struct daemon_process *daemon, const char *domain, bool inactive,
                                const char *text)
{
    char params[300];
    snprintf(params, sizeof(params), "{\"domain\": \"%s\", \"inactive\": %s}", domain,
             inactive ? "true" : "false");
    struct api_reply reply;
    daemon_call_ok(daemon, "domain.xml", params, &reply);
    bool found = strstr(json_get_string(reply.result, "xml"), text) != NULL;
    api_reply_free(&reply);
    return found;
}

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PLUGVIRT_BUILDDIR
#define PLUGVIRT_BUILDDIR "."
#endif

#define MAX_PENDING_EVENTS 64

/* Events read while waiting for a command reply, per client. Tests are
 * single-threaded, so a small table keyed by the client is enough. */
struct pending_events {
    const struct qmp_client *client;
    char *messages[MAX_PENDING_EVENTS];
    int count;
};
static struct pending_events pending[8];

static struct pending_events *pending_for(const struct qmp_client *client)
{
    for (int i = 0; i < 8; i++)
        if (pending[i].client == client)
            return &pending[i];
    for (int i = 0; i < 8; i++)
        if (!pending[i].client) {
            pending[i].client = client;
            return &pending[i];
        }
    return NULL;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *harness_vmm_path(void)
{
    const char *path = getenv("PLUGVIRT_VMM");
    return path ? path : PLUGVIRT_BUILDDIR "/hypervisor/plugvirt-vmm";
}

const char *harness_probe_guest_path(void)
{
    const char *path = getenv("PLUGVIRT_PROBE_GUEST");
    return path ? path : PLUGVIRT_BUILDDIR "/tests/guest/probe-guest.elf";
}

static void set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int vmm_process_start_raw(struct vmm_process *process, const char *const *arguments)
{
    int in_pipe[2], out_pipe[2], err_pipe[2];
    if (!process->directory[0]) {
        snprintf(process->directory, sizeof(process->directory), "/tmp/pv-test-XXXXXX");
        if (!mkdtemp(process->directory))
            return -errno;
    }
    if (pipe2(in_pipe, O_CLOEXEC) < 0 || pipe2(out_pipe, O_CLOEXEC) < 0 ||
        pipe2(err_pipe, O_CLOEXEC) < 0)
        return -errno;
    size_t count = 0;
    while (arguments[count])
        count++;
    const char **argv = calloc(count + 2, sizeof(*argv));
    argv[0] = harness_vmm_path();
    for (size_t i = 0; i < count; i++)
        argv[i + 1] = arguments[i];
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        dup2(in_pipe[0], STDIN_FILENO);
        dup2(out_pipe[1], STDOUT_FILENO);
        dup2(err_pipe[1], STDERR_FILENO);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "cannot execute %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    free(argv);
    close(in_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    process->pid = pid;
    process->serial_in = in_pipe[1];
    process->serial_out = out_pipe[0];
    process->stderr_fd = err_pipe[0];
    set_nonblocking(process->serial_out);
    set_nonblocking(process->stderr_fd);
    process->exited = false;
    return 0;
}

int vmm_process_start(struct vmm_process *process, const char *const *extra)
{
    memset(process, 0, sizeof(*process));
    snprintf(process->directory, sizeof(process->directory), "/tmp/pv-test-XXXXXX");
    if (!mkdtemp(process->directory))
        return -errno;
    snprintf(process->qmp_path, sizeof(process->qmp_path), "%s/qmp.sock", process->directory);
    char qmp_option[400];
    snprintf(qmp_option, sizeof(qmp_option), "unix:%s,server=on,wait=off", process->qmp_path);
    const char *arguments[64];
    size_t count = 0;
    const char *base[] = {"-display", "none",    "-nodefaults",
                          "-serial",  "stdio",   "-qmp",
                          qmp_option, "-kernel", harness_probe_guest_path()};
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
        arguments[count++] = base[i];
    for (size_t i = 0; extra && extra[i] && count < 63; i++)
        arguments[count++] = extra[i];
    arguments[count] = NULL;
    return vmm_process_start_raw(process, arguments);
}

/* Reads what is available from the console and stderr, waiting up to timeout_ms. */
static void pump(struct vmm_process *process, int timeout_ms)
{
    struct pollfd fds[2] = {{process->serial_out, POLLIN, 0}, {process->stderr_fd, POLLIN, 0}};
    if (poll(fds, 2, timeout_ms) <= 0)
        return;
    if (fds[0].revents) {
        size_t room = sizeof(process->console) - 1 - process->console_length;
        ssize_t got =
            room ? read(process->serial_out, process->console + process->console_length, room) : 0;
        if (got > 0) {
            process->console_length += (size_t)got;
            process->console[process->console_length] = '\0';
        }
    }
    if (fds[1].revents) {
        size_t room = sizeof(process->errors) - 1 - process->errors_length;
        ssize_t got =
            room ? read(process->stderr_fd, process->errors + process->errors_length, room) : 0;
        if (got > 0) {
            process->errors_length += (size_t)got;
            process->errors[process->errors_length] = '\0';
        }
    }
}

int vmm_process_wait_line(struct vmm_process *process, const char *prefix, int timeout_ms,
                          char *line, size_t line_size)
{
    long long deadline = now_ms() + timeout_ms;
    size_t prefix_length = strlen(prefix);
    for (;;) {
        /* Scan complete lines after the last match. */
        size_t start = process->console_consumed;
        for (size_t i = start; i < process->console_length; i++) {
            if (process->console[i] != '\n')
                continue;
            size_t length = i - start;
            const char *text = process->console + start;
            if (length > 0 && text[length - 1] == '\r')
                length--;
            if (length >= prefix_length && memcmp(text, prefix, prefix_length) == 0) {
                if (line && line_size) {
                    size_t copy = length < line_size - 1 ? length : line_size - 1;
                    memcpy(line, text, copy);
                    line[copy] = '\0';
                }
                process->console_consumed = i + 1;
                return 0;
            }
            start = i + 1;
        }
        long long left = deadline - now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        pump(process, (int)(left < 100 ? left : 100));
    }
}

int vmm_process_send(struct vmm_process *process, const char *text)
{
    size_t length = strlen(text);
    while (length > 0) {
        ssize_t written = write(process->serial_in, text, length);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        text += written;
        length -= (size_t)written;
    }
    return 0;
}

int vmm_process_wait_exit(struct vmm_process *process, int timeout_ms)
{
    if (process->exited)
        return 0;
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        int status;
        pid_t done = waitpid(process->pid, &status, WNOHANG);
        if (done == process->pid) {
            process->exited = true;
            process->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            pump(process, 0);
            return 0;
        }
        if (now_ms() >= deadline)
            return -ETIMEDOUT;
        pump(process, 20);
    }
}

void vmm_process_cleanup(struct vmm_process *process)
{
    if (process->pid > 0 && !process->exited) {
        kill(process->pid, SIGKILL);
        waitpid(process->pid, NULL, 0);
        process->exited = true;
    }
    if (process->serial_in > 0)
        close(process->serial_in);
    if (process->serial_out > 0)
        close(process->serial_out);
    if (process->stderr_fd > 0)
        close(process->stderr_fd);
    process->serial_in = process->serial_out = process->stderr_fd = -1;
    if (process->directory[0]) {
        char command[400];
        snprintf(command, sizeof(command), "rm -rf '%s'", process->directory);
        if (system(command) != 0)
            fprintf(stderr, "cannot remove %s\n", process->directory);
        process->directory[0] = '\0';
    }
}

int qmp_client_send(struct qmp_client *client, const char *text)
{
    size_t length = strlen(text);
    while (length > 0) {
        ssize_t written = send(client->fd, text, length, MSG_NOSIGNAL);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        text += written;
        length -= (size_t)written;
    }
    return 0;
}

int qmp_client_read(struct qmp_client *client, char *message, size_t size, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        char *newline = memchr(client->buffer, '\n', client->length);
        if (newline) {
            size_t length = (size_t)(newline - client->buffer);
            size_t copy = length;
            if (copy > 0 && client->buffer[copy - 1] == '\r')
                copy--;
            if (copy >= size)
                copy = size - 1;
            memcpy(message, client->buffer, copy);
            message[copy] = '\0';
            memmove(client->buffer, newline + 1, client->length - length - 1);
            client->length -= length + 1;
            return 0;
        }
        long long left = deadline - now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd pfd = {client->fd, POLLIN, 0};
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        if (client->length == sizeof(client->buffer))
            return -EMSGSIZE;
        ssize_t got = recv(client->fd, client->buffer + client->length,
                           sizeof(client->buffer) - client->length, 0);
        if (got == 0)
            return -ECONNRESET;
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -errno;
        }
        client->length += (size_t)got;
    }
}

int qmp_client_connect(struct qmp_client *client, const char *path, bool negotiate, char *greeting,
                       size_t greeting_size, int timeout_ms)
{
    memset(client, 0, sizeof(*client));
    client->fd = -1;
    long long deadline = now_ms() + timeout_ms;
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    snprintf(address.sun_path, sizeof(address.sun_path), "%s", path);
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -errno;
        if (connect(fd, (struct sockaddr *)&address, sizeof(address)) == 0) {
            client->fd = fd;
            break;
        }
        close(fd);
        if (now_ms() >= deadline)
            return -ETIMEDOUT;
        usleep(200); /* fine-grained: the benchmark times the greeting with this loop */
    }
    char local[4096];
    int rc = qmp_client_read(client, greeting ? greeting : local,
                             greeting ? greeting_size : sizeof(local), timeout_ms);
    if (rc < 0 || !negotiate)
        return rc;
    char reply[4096];
    return qmp_client_execute(client, "{\"execute\": \"qmp_capabilities\"}", reply, sizeof(reply),
                              timeout_ms);
}

int qmp_client_execute(struct qmp_client *client, const char *command_json, char *reply,
                       size_t size, int timeout_ms)
{
    int rc = qmp_client_send(client, command_json);
    if (rc < 0)
        return rc;
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        rc = qmp_client_read(client, reply, size, (int)left);
        if (rc < 0)
            return rc;
        if (!strstr(reply, "\"event\"")) /* replies carry "return" or "error" */
            return 0;
        struct pending_events *events = pending_for(client);
        if (events && events->count < MAX_PENDING_EVENTS)
            events->messages[events->count++] = strdup(reply);
    }
}

/* True when `message` is the event `name`, whatever the JSON spacing. */
static bool is_event(const char *message, const char *name)
{
    const char *key = strstr(message, "\"event\"");
    if (!key)
        return false;
    key += strlen("\"event\"");
    while (*key == ' ' || *key == ':')
        key++;
    size_t length = strlen(name);
    return *key == '"' && strncmp(key + 1, name, length) == 0 && key[1 + length] == '"';
}

int qmp_client_wait_event(struct qmp_client *client, const char *name, char *message, size_t size,
                          int timeout_ms)
{
    struct pending_events *events = pending_for(client);
    for (int i = 0; events && i < events->count; i++) {
        if (is_event(events->messages[i], name)) {
            snprintf(message, size, "%s", events->messages[i]);
            free(events->messages[i]);
            memmove(&events->messages[i], &events->messages[i + 1],
                    (size_t)(events->count - i - 1) * sizeof(char *));
            events->count--;
            return 0;
        }
    }
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        int rc = qmp_client_read(client, message, size, (int)left);
        if (rc < 0)
            return rc;
        if (is_event(message, name))
            return 0;
    }
}

void qmp_client_close(struct qmp_client *client)
{
    struct pending_events *events = pending_for(client);
    for (int i = 0; events && i < events->count; i++)
        free(events->messages[i]);
    if (events)
        memset(events, 0, sizeof(*events));
    if (client->fd >= 0)
        close(client->fd);
    client->fd = -1;
}

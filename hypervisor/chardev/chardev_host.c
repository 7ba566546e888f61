/* The host side of a chardev: opens the descriptors of each kind (stdio,
 * file, unix socket server and client, pty) and puts them back; the event
 * loop side (queues, flow control, mux) is chardev.c. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "chardev/chardev_host.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "pv_log.h"

/* Terminal state of the process's stdin: process wide by nature, restored at exit. */
static struct {
    bool in_use;
    bool termios_saved;
    struct termios termios;
    bool stdout_flags_changed;
    int stdout_flags;
    bool atexit_registered;
} stdio_state;

static void set_raw_mode(struct termios *termios)
{
    /* Raw input, but keep output processing (\n -> \r\n) and signals (Ctrl-C), as QEMU does. */
    termios->c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    termios->c_oflag |= OPOST;
    termios->c_lflag &= ~(ECHO | ECHONL | ICANON | IEXTEN);
    termios->c_cflag &= ~(CSIZE | PARENB);
    termios->c_cflag |= CS8;
    termios->c_cc[VMIN] = 1;
    termios->c_cc[VTIME] = 0;
}

void chardev_restore_terminals(void)
{
    if (stdio_state.termios_saved) {
        if (tcsetattr(STDIN_FILENO, TCSANOW, &stdio_state.termios) < 0)
            pv_log_warning("cannot restore the terminal settings: %s", strerror(errno));
        stdio_state.termios_saved = false;
    }
    if (stdio_state.stdout_flags_changed) {
        if (fcntl(STDOUT_FILENO, F_SETFL, stdio_state.stdout_flags) < 0)
            pv_log_warning("cannot restore the flags of stdout: %s", strerror(errno));
        stdio_state.stdout_flags_changed = false;
    }
}

static void restore_terminals_at_exit(void)
{
    chardev_restore_terminals();
}

/* Whether `fd` can be waited on: epoll refuses regular files and some devices
 * (/dev/null). Probed with a private epoll set so libevent logs no warning. */
static bool fd_is_pollable(int fd)
{
    int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0)
        return true; /* cannot tell; libevent will report a failure later */
    struct epoll_event event = {.events = EPOLLIN};
    bool pollable = epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) == 0 || errno != EPERM;
    close(epoll_fd);
    return pollable;
}

/* A private open file description, so O_NONBLOCK does not leak to the shell
 * or to stderr sharing the same terminal. Returns -1 if impossible. */
static int reopen_nonblocking(int fd, int access_mode)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    return open(path, access_mode | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
}

static int open_stdio(struct chardev_host *host, struct pv_error *error)
{
    if (stdio_state.in_use)
        return pv_error_set(error, -EBUSY, "stdio is already used by another character device");
    struct stat status;
    if (fstat(STDIN_FILENO, &status) == 0) {
        host->input_fd = STDIN_FILENO;
        if (S_ISSOCK(status.st_mode)) {
            host->input_is_socket = true;
        } else if (S_ISCHR(status.st_mode) || S_ISFIFO(status.st_mode)) {
            int fd = reopen_nonblocking(STDIN_FILENO, O_RDONLY);
            if (fd >= 0) {
                host->input_fd = fd;
                host->input_fd_owned = true;
            }
        }
        host->input_pollable = !S_ISREG(status.st_mode) && fd_is_pollable(host->input_fd);
        if (isatty(STDIN_FILENO) && !stdio_state.termios_saved) {
            struct termios termios;
            if (tcgetattr(STDIN_FILENO, &termios) == 0) {
                stdio_state.termios = termios;
                stdio_state.termios_saved = true;
                set_raw_mode(&termios);
                if (tcsetattr(STDIN_FILENO, TCSANOW, &termios) < 0)
                    pv_log_warning("cannot put the terminal in raw mode: %s", strerror(errno));
            }
        }
    } else {
        host->input_eof = true; /* stdin is closed */
    }

    if (fstat(STDOUT_FILENO, &status) == 0) {
        host->output_fd = STDOUT_FILENO;
        if (S_ISSOCK(status.st_mode)) {
            host->output_is_socket = true; /* send(MSG_DONTWAIT) needs no flag change */
        } else if (!S_ISREG(status.st_mode)) {
            int fd = reopen_nonblocking(STDOUT_FILENO, O_WRONLY);
            if (fd >= 0) {
                host->output_fd = fd;
                host->output_fd_owned = true;
            } else {
                int flags = fcntl(STDOUT_FILENO, F_GETFL);
                if (flags >= 0 && !(flags & O_NONBLOCK) &&
                    fcntl(STDOUT_FILENO, F_SETFL, flags | O_NONBLOCK) == 0) {
                    stdio_state.stdout_flags = flags;
                    stdio_state.stdout_flags_changed = true;
                }
            }
        }
        /* Regular files never make a writer wait for long, and cannot be polled. */
        host->output_pollable = !S_ISREG(status.st_mode) && fd_is_pollable(host->output_fd);
    }
    if (!stdio_state.atexit_registered && atexit(restore_terminals_at_exit) == 0)
        stdio_state.atexit_registered = true;
    stdio_state.in_use = true;
    host->owns_stdio = true;
    return 0;
}

static int open_file(struct chardev_host *host, const char *path, struct pv_error *error)
{
    if (!path)
        return pv_error_set(error, -EINVAL, "chardev 'file' needs a path");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0666);
    if (fd < 0)
        return pv_error_set_errno(error, -errno, "cannot open '%s'", path);
    struct stat status;
    if (fstat(fd, &status) < 0) {
        int rc = pv_error_set_errno(error, -errno, "cannot stat '%s'", path);
        close(fd);
        return rc;
    }
    if (!S_ISREG(status.st_mode)) {
        int flags = fcntl(fd, F_GETFL);
        if (flags >= 0)
            fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        host->output_pollable = fd_is_pollable(fd);
    }
    host->output_fd = fd;
    host->output_fd_owned = true;
    host->input_eof = true;
    return 0;
}

static int make_unix_address(const char *path, struct sockaddr_un *address, struct pv_error *error)
{
    if (!path || !*path)
        return pv_error_set(error, -EINVAL, "unix socket chardev needs a path");
    memset(address, 0, sizeof(*address));
    address->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(address->sun_path))
        return pv_error_set(error, -ENAMETOOLONG, "unix socket path '%s' is too long", path);
    strcpy(address->sun_path, path);
    return 0;
}

static int open_unix_server(struct chardev_host *host, const struct chardev_spec *spec,
                            struct pv_error *error)
{
    if (spec->wait)
        return pv_error_set(error, -ENOTSUP,
                            "wait=on is not supported for socket chardevs; use wait=off");
    struct sockaddr_un address;
    int rc = make_unix_address(spec->path, &address, error);
    if (rc < 0)
        return rc;
    struct stat status;
    if (lstat(spec->path, &status) == 0) {
        if (!S_ISSOCK(status.st_mode))
            return pv_error_set(error, -EEXIST, "'%s' exists and is not a socket", spec->path);
        if (unlink(spec->path) < 0) /* stale socket of an earlier run */
            return pv_error_set_errno(error, -errno, "cannot remove stale socket '%s'", spec->path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return pv_error_set_errno(error, -errno, "cannot create a unix socket");
    if (bind(fd, (struct sockaddr *)&address, sizeof(address)) < 0) {
        rc = pv_error_set_errno(error, -errno, "Failed to bind socket to %s", spec->path);
        close(fd);
        return rc;
    }
    if (listen(fd, 1) < 0 || stat(spec->path, &status) < 0) {
        rc = pv_error_set_errno(error, -errno, "Failed to listen on %s", spec->path);
        close(fd);
        unlink(spec->path);
        return rc;
    }
    host->listen_fd = fd;
    host->socket_device = status.st_dev;
    host->socket_inode = status.st_ino;
    host->socket_path = strdup(spec->path);
    if (!host->socket_path)
        return pv_error_set(error, -ENOMEM, "cannot watch socket %s", spec->path);
    return 0;
}

static int open_unix_client(struct chardev_host *host, const char *path, struct pv_error *error)
{
    struct sockaddr_un address;
    int rc = make_unix_address(path, &address, error);
    if (rc < 0)
        return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return pv_error_set_errno(error, -errno, "cannot create a unix socket");
    if (connect(fd, (struct sockaddr *)&address, sizeof(address)) < 0) {
        rc = pv_error_set_errno(error, -errno, "Failed to connect to '%s'", path);
        close(fd);
        return rc;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        rc = pv_error_set_errno(error, -errno, "cannot make socket '%s' non-blocking", path);
        close(fd);
        return rc;
    }
    host->input_fd = host->output_fd = fd;
    host->input_fd_owned = host->output_fd_owned = true;
    host->input_is_socket = host->output_is_socket = true;
    host->input_pollable = host->output_pollable = true;
    return 0;
}

static int open_pty(struct chardev_host *host, const char *label, struct pv_error *error)
{
    int fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return pv_error_set_errno(error, -errno, "cannot open a pseudo terminal");
    int rc = 0;
    struct termios termios;
    if (grantpt(fd) < 0 || unlockpt(fd) < 0 ||
        ptsname_r(fd, host->pty_path, sizeof(host->pty_path)) != 0) {
        rc = pv_error_set_errno(error, -errno, "cannot set up a pseudo terminal");
        goto fail;
    }
    /* Termios requests on the master act on the slave: make it raw before anyone opens it. */
    if (tcgetattr(fd, &termios) == 0) {
        cfmakeraw(&termios);
        if (tcsetattr(fd, TCSANOW, &termios) < 0)
            pv_log_warning("cannot make %s raw: %s", host->pty_path, strerror(errno));
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        rc = pv_error_set_errno(error, -errno, "cannot make the pseudo terminal non-blocking");
        goto fail;
    }
    host->input_fd = host->output_fd = fd;
    host->input_fd_owned = host->output_fd_owned = true;
    host->input_pollable = host->output_pollable = true;
    fprintf(stderr, "char device redirected to %s (label %s)\n", host->pty_path, label);
    return 0;
fail:
    close(fd);
    return rc;
}

void chardev_host_init(struct chardev_host *host)
{
    memset(host, 0, sizeof(*host));
    host->input_fd = host->output_fd = host->listen_fd = -1;
}

int chardev_host_open(struct chardev_host *host, const struct chardev_spec *spec, const char *label,
                      struct pv_error *error)
{
    switch (spec->kind) {
    case CHARDEV_KIND_NULL:
        return 0;
    case CHARDEV_KIND_STDIO:
    case CHARDEV_KIND_MUX_STDIO:
        return open_stdio(host, error);
    case CHARDEV_KIND_FILE:
        return open_file(host, spec->path, error);
    case CHARDEV_KIND_UNIX_SERVER:
        return open_unix_server(host, spec, error);
    case CHARDEV_KIND_UNIX_CLIENT:
        return open_unix_client(host, spec->path, error);
    case CHARDEV_KIND_PTY:
        return open_pty(host, label, error);
    default:
        return pv_error_set(error, -EINVAL, "unsupported chardev kind %d", (int)spec->kind);
    }
}

void chardev_host_close(struct chardev_host *host)
{
    if (host->listen_fd >= 0)
        close(host->listen_fd);
    host->listen_fd = -1;
    if (host->socket_path) {
        /* Only remove the socket if it is still ours (not replaced by a new VMM). */
        struct stat status;
        if (lstat(host->socket_path, &status) == 0 && status.st_dev == host->socket_device &&
            status.st_ino == host->socket_inode)
            unlink(host->socket_path);
        free(host->socket_path);
        host->socket_path = NULL;
    }
    if (host->owns_stdio) {
        chardev_restore_terminals();
        stdio_state.in_use = false;
        host->owns_stdio = false;
    }
}

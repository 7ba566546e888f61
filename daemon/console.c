/* The daemon's end of a domain's serial port 0 (see console.h). */
#include "console.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "pv_log.h"

/* Most output queued for one peer (console session, pty, unix peer, the VMM's input). */
#define CONSOLE_MAX_PENDING (1024u * 1024)
#define CONSOLE_READ_CHUNK 4096

enum console_backend { BACKEND_NULL, BACKEND_FILE, BACKEND_PTY, BACKEND_UNIX };

struct console {
    struct event_base *base;
    char *name;
    char socket_path[PATH_MAX]; /* the VMM's serial.sock */
    enum console_backend backend;
    int file_fd;      /* BACKEND_FILE */
    int pty_slave_fd; /* BACKEND_PTY: kept open so the master never sees a hang-up */
    char *unix_path;  /* BACKEND_UNIX, mode bind: removed at free */
    struct evconnlistener *listener;
    struct bufferevent *vmm;     /* the VMM's serial socket */
    struct bufferevent *user;    /* pty master or the unix peer */
    struct bufferevent *session; /* pvsh console */
};

static int write_all(int fd, const void *data, size_t length)
{
    const char *bytes = data;
    while (length > 0) {
        ssize_t written = write(fd, bytes, length);
        if (written < 0 && errno == EINTR)
            continue;
        if (written < 0)
            return -errno;
        bytes += written;
        length -= (size_t)written;
    }
    return 0;
}

/* Writes to one of our files; on failure says so once and stops writing it. */
static void write_file(struct console *console, int *fd, const char *what, const void *data,
                       size_t length)
{
    if (*fd < 0)
        return;
    int rc = write_all(*fd, data, length);
    if (rc < 0) {
        pv_log_warning("domain %s: cannot write the serial output to %s: %s; no longer writing it",
                       console->name, what, strerror(-rc));
        close(*fd);
        *fd = -1;
    }
}

/* Queues `data` for a peer unless it already has too much unread. */
static void send_to(struct bufferevent *peer, const void *data, size_t length)
{
    if (peer == NULL)
        return;
    struct evbuffer *output = bufferevent_get_output(peer);
    if (evbuffer_get_length(output) + length > CONSOLE_MAX_PENDING)
        return;
    if (evbuffer_add(output, data, length) < 0)
        pv_log_warning("console: out of memory queueing serial data");
}

static void free_peer(struct bufferevent **peer)
{
    if (*peer) {
        bufferevent_free(*peer);
        *peer = NULL;
    }
}

/* ------------------------------------------------------------- the guest's output --- */

static void on_vmm_read(struct bufferevent *buffer, void *opaque)
{
    struct console *console = opaque;
    struct evbuffer *input = bufferevent_get_input(buffer);
    char chunk[CONSOLE_READ_CHUNK];
    for (;;) {
        int length = evbuffer_remove(input, chunk, sizeof(chunk));
        if (length <= 0)
            break;
        write_file(console, &console->file_fd, "the <serial> file", chunk, (size_t)length);
        send_to(console->user, chunk, (size_t)length);
        send_to(console->session, chunk, (size_t)length);
    }
}

static void on_vmm_event(struct bufferevent *buffer, short what, void *opaque)
{
    struct console *console = opaque;
    (void)buffer;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        pv_log_debug("domain %s: the VMM closed its serial port", console->name);
        free_peer(&console->vmm);
    }
}

/* --------------------------------------------------------------- input for the guest --- */

/* Moves a peer's input to the guest. Until the VMM's serial socket is connected (a console
 * opened right after a daemon restart), it waits in the peer's buffer, bounded like the
 * rest, and goes out on connection (console_connect_vmm). */
static void forward_to_guest(struct console *console, struct bufferevent *from)
{
    struct evbuffer *input = bufferevent_get_input(from);
    if (console->vmm == NULL) {
        size_t length = evbuffer_get_length(input);
        if (length > CONSOLE_MAX_PENDING)
            evbuffer_drain(input, length - CONSOLE_MAX_PENDING);
        return;
    }
    struct evbuffer *output = bufferevent_get_output(console->vmm);
    size_t room = CONSOLE_MAX_PENDING > evbuffer_get_length(output)
                      ? CONSOLE_MAX_PENDING - evbuffer_get_length(output)
                      : 0;
    size_t length = evbuffer_get_length(input);
    if (length > room) {
        evbuffer_drain(input, length - room);
        length = room;
    }
    if (length > 0 && evbuffer_remove_buffer(input, output, length) < 0)
        pv_log_warning("domain %s: cannot queue console input", console->name);
}

static void on_session_read(struct bufferevent *buffer, void *opaque)
{
    forward_to_guest(opaque, buffer);
}

static void on_session_event(struct bufferevent *buffer, short what, void *opaque)
{
    struct console *console = opaque;
    (void)buffer;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        pv_log_debug("domain %s: console session closed", console->name);
        free_peer(&console->session);
    }
}

static void on_user_read(struct bufferevent *buffer, void *opaque)
{
    forward_to_guest(opaque, buffer);
}

static void on_user_event(struct bufferevent *buffer, short what, void *opaque)
{
    struct console *console = opaque;
    (void)buffer;
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    free_peer(&console->user);
    if (console->listener) {
        /* mode='bind': the next client may connect. */
        evconnlistener_enable(console->listener);
    } else if (console->backend == BACKEND_UNIX) {
        pv_log_warning("domain %s: the serial port's unix socket peer went away; its output "
                       "now goes to serial.log only",
                       console->name);
    } else if (console->backend == BACKEND_PTY) {
        pv_log_warning("domain %s: the serial pty failed", console->name);
    }
}

static int user_peer(struct console *console, int fd, struct pv_error *error)
{
    console->user = bufferevent_socket_new(console->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (console->user == NULL) {
        close(fd);
        return pv_error_set(error, -ENOMEM, "out of memory");
    }
    bufferevent_setcb(console->user, on_user_read, NULL, on_user_event, console);
    if (bufferevent_enable(console->user, EV_READ | EV_WRITE) < 0) {
        free_peer(&console->user);
        return pv_error_set(error, -EIO, "cannot watch the serial port's peer");
    }
    return 0;
}

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *address,
                      int length, void *opaque)
{
    struct console *console = opaque;
    (void)address;
    (void)length;
    if (console->user) {
        close(fd); /* the listener is disabled while a peer is there: a race only */
        return;
    }
    struct pv_error error = {0};
    if (user_peer(console, fd, &error) < 0) {
        pv_log_warning("domain %s: serial socket client: %s", console->name, error.message);
        return;
    }
    evconnlistener_disable(listener);
}

/* ------------------------------------------------------------------- backends --- */

static int unix_address(const char *path, struct sockaddr_un *address, struct pv_error *error)
{
    memset(address, 0, sizeof(*address));
    address->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(address->sun_path))
        return pv_error_set(error, -ENAMETOOLONG, "the socket path '%s' is too long", path);
    memcpy(address->sun_path, path, strlen(path) + 1);
    return 0;
}

static int open_unix(struct console *console, const struct domain_chardev *port,
                     struct pv_error *error)
{
    struct sockaddr_un address;
    int rc = unix_address(port->source_path, &address, error);
    if (rc < 0)
        return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return pv_error_set_errno(error, -errno, "socket");
    bool bind_mode = port->source_mode && strcmp(port->source_mode, "bind") == 0;
    if (!bind_mode) {
        if (connect(fd, (struct sockaddr *)&address, sizeof(address)) < 0 && errno != EINPROGRESS) {
            rc = pv_error_set_errno(error, -errno,
                                    "<serial type='unix'> mode='connect': cannot connect to %s",
                                    port->source_path);
            close(fd);
            return rc;
        }
        return user_peer(console, fd, error);
    }
    struct stat status;
    if (lstat(port->source_path, &status) == 0 && S_ISSOCK(status.st_mode) &&
        unlink(port->source_path) < 0)
        pv_log_warning("cannot remove the stale socket %s: %s", port->source_path, strerror(errno));
    if (bind(fd, (struct sockaddr *)&address, sizeof(address)) < 0 || listen(fd, 1) < 0) {
        rc = pv_error_set_errno(error, -errno,
                                "<serial type='unix'> mode='bind': cannot listen on %s",
                                port->source_path);
        close(fd);
        return rc;
    }
    console->unix_path = strdup(port->source_path);
    console->listener = evconnlistener_new(console->base, on_accept, console,
                                           LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
    if (console->listener == NULL) {
        close(fd);
        return pv_error_set(error, -ENOMEM, "cannot listen on %s", port->source_path);
    }
    return console->unix_path ? 0 : pv_error_set(error, -ENOMEM, "out of memory");
}

static int open_pty(struct console *console, char **path, struct pv_error *error)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (master < 0)
        return pv_error_set_errno(error, -errno, "cannot open a pty");
    char name[128];
    int rc = 0;
    if (grantpt(master) != 0 || unlockpt(master) != 0 || ptsname_r(master, name, sizeof(name)))
        rc = pv_error_set_errno(error, -errno, "cannot set up the pty");
    if (rc == 0) {
        console->pty_slave_fd = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (console->pty_slave_fd < 0)
            rc = pv_error_set_errno(error, -errno, "cannot open %s", name);
    }
    struct termios termios;
    if (rc == 0 && tcgetattr(console->pty_slave_fd, &termios) == 0) {
        cfmakeraw(&termios); /* bytes pass unchanged, no echo: as QEMU's pty chardev */
        if (tcsetattr(console->pty_slave_fd, TCSANOW, &termios) < 0)
            rc = pv_error_set_errno(error, -errno, "cannot make %s raw", name);
    } else if (rc == 0) {
        rc = pv_error_set_errno(error, -errno, "tcgetattr %s", name);
    }
    if (rc == 0 && (*path = strdup(name)) == NULL)
        rc = pv_error_set(error, -ENOMEM, "out of memory");
    if (rc < 0) {
        close(master);
        return rc;
    }
    return user_peer(console, master, error);
}

static int open_log(const char *path, bool truncate, int *fd, struct pv_error *error)
{
    *fd =
        open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY | (truncate ? O_TRUNC : 0),
             0600);
    return *fd < 0 ? pv_error_set_errno(error, -errno, "cannot open %s", path) : 0;
}

/* Writes the pty's path into the serial port and its console alias. */
static int set_pty_path(struct domain_definition *live, const char *path, struct pv_error *error)
{
    for (size_t i = 0; i < live->chardev_count; i++) {
        struct domain_chardev *chardev = &live->chardevs[i];
        if (chardev->kind == DOMAIN_CHARDEV_CHANNEL || chardev->type == NULL ||
            strcmp(chardev->type, "pty") != 0)
            continue;
        char *copy = strdup(path);
        if (copy == NULL)
            return pv_error_set(error, -ENOMEM, "out of memory");
        free(chardev->source_path);
        chardev->source_path = copy;
    }
    return 0;
}

struct console *console_create(struct event_base *base, const char *name, const char *directory,
                               struct domain_definition *live, bool restored,
                               struct pv_error *error)
{
    struct console *console = calloc(1, sizeof(*console));
    if (console == NULL || (console->name = strdup(name)) == NULL) {
        free(console);
        pv_error_set(error, -ENOMEM, "out of memory");
        return NULL;
    }
    console->base = base;
    console->file_fd = console->pty_slave_fd = -1;
    snprintf(console->socket_path, sizeof(console->socket_path), "%s/serial.sock", directory);
    /* The VMM appends to serial.log (logfile=); a new start begins it afresh. */
    char log_path[PATH_MAX];
    snprintf(log_path, sizeof(log_path), "%s/serial.log", directory);
    int rc = 0;
    if (!restored) {
        int log_fd = -1;
        rc = open_log(log_path, true, &log_fd, error);
        if (log_fd >= 0)
            close(log_fd);
    }
    if (rc == 0 && !restored && unlink(console->socket_path) < 0 && errno != ENOENT)
        rc = pv_error_set_errno(error, -errno, "cannot remove %s", console->socket_path);

    const struct domain_chardev *port = domain_serial_port(live);
    const char *type = port && port->type ? port->type : "null";
    char *pty_path = NULL;
    if (rc < 0) {
    } else if (strcmp(type, "file") == 0) {
        console->backend = BACKEND_FILE;
        bool append = restored || (port->source_append && strcmp(port->source_append, "on") == 0);
        rc = open_log(port->source_path, !append, &console->file_fd, error);
    } else if (strcmp(type, "pty") == 0) {
        console->backend = BACKEND_PTY;
        rc = open_pty(console, &pty_path, error);
        if (rc == 0)
            rc = set_pty_path(live, pty_path, error);
    } else if (strcmp(type, "unix") == 0) {
        console->backend = BACKEND_UNIX;
        rc = open_unix(console, port, error);
    } else if (strcmp(type, "null") != 0) {
        rc = pv_error_set(error, -EINVAL, "unsupported: <serial type='%s'>", type);
    }
    free(pty_path);
    if (rc < 0) {
        console_free(console);
        return NULL;
    }
    return console;
}

int console_connect_vmm(struct console *console, struct pv_error *error)
{
    if (console->vmm)
        return 0;
    struct sockaddr_un address;
    int rc = unix_address(console->socket_path, &address, error);
    if (rc < 0)
        return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return pv_error_set_errno(error, -errno, "socket");
    if (connect(fd, (struct sockaddr *)&address, sizeof(address)) < 0 && errno != EINPROGRESS) {
        rc = pv_error_set_errno(error, -errno, "cannot connect to the VMM's serial port %s",
                                console->socket_path);
        close(fd);
        return rc;
    }
    console->vmm = bufferevent_socket_new(console->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (console->vmm == NULL) {
        close(fd);
        return pv_error_set(error, -ENOMEM, "out of memory");
    }
    bufferevent_setcb(console->vmm, on_vmm_read, NULL, on_vmm_event, console);
    if (bufferevent_enable(console->vmm, EV_READ | EV_WRITE) < 0) {
        free_peer(&console->vmm);
        return pv_error_set(error, -EIO, "cannot watch the VMM's serial port");
    }
    /* what was typed while the serial port was not connected yet */
    if (console->user)
        forward_to_guest(console, console->user);
    if (console->session)
        forward_to_guest(console, console->session);
    return 0;
}

void console_free(struct console *console)
{
    if (console == NULL)
        return;
    free_peer(&console->session);
    free_peer(&console->user);
    free_peer(&console->vmm);
    if (console->listener)
        evconnlistener_free(console->listener);
    if (console->unix_path && unlink(console->unix_path) < 0 && errno != ENOENT)
        pv_log_warning("cannot remove %s: %s", console->unix_path, strerror(errno));
    int *fds[] = {&console->file_fd, &console->pty_slave_fd};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (*fds[i] >= 0 && close(*fds[i]) < 0)
            pv_log_warning("console: close: %s", strerror(errno));
    free(console->unix_path);
    free(console->name);
    free(console);
}

const char *console_domain_name(const struct console *console)
{
    return console->name;
}

bool console_busy(const struct console *console)
{
    return console->session != NULL;
}

int console_attach_client(struct console *console, struct bufferevent *client, bool force,
                          struct pv_error *error)
{
    if (console->session && !force) {
        bufferevent_free(client);
        return pv_error_set(error, -EBUSY,
                            "operation failed: Active console session exists for this domain");
    }
    if (console->session)
        pv_log_info("domain %s: console session taken over (--force)", console->name);
    free_peer(&console->session);
    console->session = client;
    bufferevent_setcb(client, on_session_read, NULL, on_session_event, console);
    if (bufferevent_enable(client, EV_READ | EV_WRITE) < 0) {
        free_peer(&console->session);
        return pv_error_set(error, -EIO, "cannot watch the console client");
    }
    /* Keystrokes that arrived with the request. */
    if (evbuffer_get_length(bufferevent_get_input(client)) > 0)
        forward_to_guest(console, client);
    return 0;
}

/* QMP server: sessions over a unix socket or stdio, driven by libevent. */
#include "monitor/monitor_qmp.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "json_util.h"
#include "pv_log.h"
#include "qmp_codec.h"
#include "monitor/qmp_commands.h"
#include "vm.h"

/* A client that does not read its replies stops being read from once this
 * much output is queued, so it cannot make us buffer without bound. */
#define QMP_OUTPUT_HIGH_WATER (1024 * 1024)
#define QMP_READ_CHUNK 16384

struct qmp_session {
    struct monitor_qmp *monitor;
    struct qmp_session *next;
    /* Sockets: a bufferevent for output, socket_reader for input. stdio uses one
     * bufferevent per direction, or plain read()/write() for files epoll cannot watch. */
    struct bufferevent *input;
    struct bufferevent *output;
    int input_fd;
    int output_fd;
    struct event *file_reader; /* stdin is a regular file or /dev/null */
    /* Sockets are read with recv() from a plain event rather than through the bufferevent,
     * which would ask FIONREAD before every read: one syscall less per request. */
    struct event *socket_reader;
    bool owns_fds;  /* close the socket on free (not stdio) */
    bool throttled; /* reading paused until output drains */
    struct qmp_stream stream;
    struct qmp_command_context context;
    struct json_writer out;
};

struct monitor_qmp {
    struct vm *vm;
    struct event_base *base;
    struct qmp_command_registry registry;
    bool pretty;
    bool offer_oob;
    char *socket_path; /* unix server: unlinked at destroy */
    struct evconnlistener *listener;
    struct qmp_session *sessions;
    bool listening_to_events;
    struct json_writer event_text;
};

/* --- output --------------------------------------------------------------- */

static void session_free(struct qmp_session *session);

static void write_all(int fd, const char *text, size_t length)
{
    while (length > 0) {
        ssize_t written = write(fd, text, length);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            return; /* the peer is gone or not keeping up: the text is lost */
        }
        text += written;
        length -= (size_t)written;
    }
}

static void session_send(struct qmp_session *session, const char *text, size_t length)
{
    if (!text || length == 0)
        return;
    if (session->output) {
        /* Fast path: with nothing queued, send at once instead of arming EV_WRITE for the
         * next loop turn; this saves three syscalls and a loop turn per reply. */
        struct evbuffer *queued = bufferevent_get_output(session->output);
        if (evbuffer_get_length(queued) == 0) {
            ssize_t sent =
                send(bufferevent_getfd(session->output), text, length, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (sent > 0) {
                text += sent;
                length -= (size_t)sent;
            }
            if (length == 0)
                return;
        }
        if (bufferevent_write(session->output, text, length) < 0)
            pv_log_warning("QMP: cannot queue %zu bytes of output", length);
        return;
    }
    if (session->output_fd >= 0)
        write_all(session->output_fd, text, length);
}

static size_t session_queued_output(struct qmp_session *session)
{
    return session->output ? evbuffer_get_length(bufferevent_get_output(session->output)) : 0;
}

/* Best effort at teardown: push what is queued without waiting, so the
 * reply to quit and the SHUTDOWN event reach the client. */
static void session_flush(struct qmp_session *session)
{
    if (!session->output)
        return;
    struct evbuffer *buffer = bufferevent_get_output(session->output);
    evutil_socket_t fd = bufferevent_getfd(session->output);
    while (evbuffer_get_length(buffer) > 0) {
        if (evbuffer_write(buffer, fd) <= 0)
            break;
    }
}

/* --- requests ------------------------------------------------------------- */

static void on_message(void *opaque, const char *message, size_t length, const char *error_text)
{
    struct qmp_session *session = opaque;
    struct json_writer *out = &session->out;
    json_writer_reset(out);
    if (error_text) {
        struct qmp_error error;
        qmp_error_set(&error, QMP_ERROR_GENERIC_ERROR, "%s", error_text);
        qmp_format_error(out, &error, NULL);
    } else {
        qmp_dispatch(&session->context, message, length, out);
    }
    if (out->failed)
        pv_log_warning("QMP: out of memory formatting a reply");
    else
        session_send(session, out->text, out->length);
    if (session->context.after_reply) {
        void (*after_reply)(struct vm *) = session->context.after_reply;
        session->context.after_reply = NULL;
        after_reply(session->monitor->vm);
    }
}

static void feed(struct qmp_session *session, const char *data, size_t length)
{
    if (qmp_stream_feed(&session->stream, data, length) < 0)
        pv_log_warning("QMP: out of memory reading a request");
}

static void update_throttle(struct qmp_session *session)
{
    if (!session->input && !session->socket_reader)
        return;
    bool over = session_queued_output(session) > QMP_OUTPUT_HIGH_WATER;
    if (over && !session->throttled) {
        session->throttled = true;
        if (session->socket_reader)
            event_del(session->socket_reader);
        else
            bufferevent_disable(session->input, EV_READ);
    }
}

ssize_t monitor_qmp_receive(int fd, void *buffer, size_t size, int *received_fd)
{
    struct iovec iov = {.iov_base = buffer, .iov_len = size};
    union {
        char buffer[CMSG_SPACE(MONITOR_QMP_MAX_FDS_PER_MESSAGE * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct msghdr message = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = control.buffer,
        .msg_controllen = sizeof(control.buffer),
    };
    ssize_t got = recvmsg(fd, &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (got < 0)
        return -errno;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header;
         header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS)
            continue;
        size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int fds[MONITOR_QMP_MAX_FDS_PER_MESSAGE];
        memcpy(fds, CMSG_DATA(header), count * sizeof(int));
        /* QEMU's getfd takes the last descriptor received: older ones would leak. */
        for (size_t i = 0; i < count; i++) {
            if (*received_fd >= 0)
                close(*received_fd);
            *received_fd = fds[i];
        }
    }
    return got;
}

static void on_socket_readable(evutil_socket_t fd, short what, void *arg)
{
    struct qmp_session *session = arg;
    char chunk[QMP_READ_CHUNK];
    while (!session->throttled) {
        ssize_t got = monitor_qmp_receive(fd, chunk, sizeof(chunk), &session->context.received_fd);
        if (got < 0) {
            errno = (int)-got;
            got = -1;
        }
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (got <= 0) {
            pv_log_debug("QMP: client disconnected");
            session_free(session);
            return;
        }
        feed(session, chunk, (size_t)got);
        update_throttle(session);
        if ((size_t)got < sizeof(chunk))
            return; /* a short read drained the socket: no need to ask again */
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct qmp_session *session = arg;
    struct evbuffer *input = bufferevent_get_input(bev);
    char chunk[QMP_READ_CHUNK];
    while (!session->throttled) {
        int got = evbuffer_remove(input, chunk, sizeof(chunk));
        if (got <= 0)
            break;
        feed(session, chunk, (size_t)got);
        update_throttle(session);
    }
}

static void on_write_drained(struct bufferevent *bev, void *arg)
{
    struct qmp_session *session = arg;
    if (!session->throttled)
        return;
    session->throttled = false;
    if (session->socket_reader) {
        event_add(session->socket_reader, NULL);
        event_active(session->socket_reader, EV_READ, 0); /* input that arrived meanwhile */
        return;
    }
    if (!session->input)
        return;
    bufferevent_enable(session->input, EV_READ);
    on_read(session->input, session); /* input that arrived meanwhile */
}

static void on_input_event(struct bufferevent *bev, short events, void *arg)
{
    struct qmp_session *session = arg;
    if (!(events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    /* stdio (the only input bufferevent): no more requests, but events still go to stdout. */
    bufferevent_free(session->input);
    session->input = NULL;
}

static void on_output_event(struct bufferevent *bev, short events, void *arg)
{
    if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        session_free(arg);
}

/* stdin that epoll cannot watch (a file): read it in chunks from a timer. */
static void on_file_readable(evutil_socket_t fd, short what, void *arg)
{
    struct qmp_session *session = arg;
    char chunk[QMP_READ_CHUNK];
    ssize_t got;
    do {
        got = read(session->input_fd, chunk, sizeof(chunk));
    } while (got < 0 && errno == EINTR);
    if (got <= 0)
        return; /* end of input: the timer is not re-armed */
    feed(session, chunk, (size_t)got);
    struct timeval now = {0, 0};
    event_add(session->file_reader, &now);
}

/* --- sessions ------------------------------------------------------------- */

static struct qmp_session *session_new(struct monitor_qmp *monitor)
{
    struct qmp_session *session = calloc(1, sizeof(*session));
    if (!session)
        return NULL;
    session->monitor = monitor;
    session->input_fd = -1;
    session->output_fd = -1;
    qmp_stream_init(&session->stream, QMP_MAX_MESSAGE_SIZE, on_message, session);
    json_writer_init(&session->out, monitor->pretty);
    session->context.vm = monitor->vm;
    session->context.registry = &monitor->registry;
    session->context.oob_offered = monitor->offer_oob;
    session->context.received_fd = -1;
    return session;
}

static void session_start(struct qmp_session *session)
{
    struct monitor_qmp *monitor = session->monitor;
    session->next = monitor->sessions;
    monitor->sessions = session;
    json_writer_reset(&session->out);
    qmp_format_greeting(&session->out, QMP_QEMU_VERSION_MAJOR, QMP_QEMU_VERSION_MINOR,
                        QMP_QEMU_VERSION_MICRO, QMP_PACKAGE, monitor->offer_oob);
    if (!session->out.failed)
        session_send(session, session->out.text, session->out.length);
}

static void session_free(struct qmp_session *session)
{
    struct monitor_qmp *monitor = session->monitor;
    for (struct qmp_session **link = &monitor->sessions; *link; link = &(*link)->next) {
        if (*link == session) {
            *link = session->next;
            break;
        }
    }
    if (session->output && session->output != session->input)
        bufferevent_free(session->output);
    if (session->input)
        bufferevent_free(session->input);
    if (session->file_reader)
        event_free(session->file_reader);
    if (session->socket_reader)
        event_free(session->socket_reader);
    if (session->owns_fds && session->input_fd >= 0)
        close(session->input_fd);
    if (session->context.received_fd >= 0)
        close(session->context.received_fd);
    qmp_stream_destroy(&session->stream);
    json_writer_free(&session->out);
    free(session);
}

static int add_socket_session(struct monitor_qmp *monitor, int fd, struct pv_error *error)
{
    if (evutil_make_socket_nonblocking(fd) < 0)
        return pv_error_set_errno(error, -errno, "cannot make the QMP connection non-blocking");
    struct qmp_session *session = session_new(monitor);
    if (!session)
        return pv_error_set(error, -ENOMEM, "out of memory");
    session->output = bufferevent_socket_new(monitor->base, fd, 0);
    session->socket_reader =
        event_new(monitor->base, fd, EV_READ | EV_PERSIST, on_socket_readable, session);
    if (!session->output || !session->socket_reader) {
        session_free(session);
        return pv_error_set(error, -ENOMEM, "cannot create a QMP connection");
    }
    session->input_fd = session->output_fd = fd;
    session->owns_fds = true;
    bufferevent_setcb(session->output, NULL, on_write_drained, on_output_event, session);
    if (bufferevent_enable(session->output, EV_WRITE) < 0 ||
        event_add(session->socket_reader, NULL) < 0) {
        session->owns_fds = false; /* the caller closes fd on failure */
        session_free(session);
        return pv_error_set(error, -EIO, "cannot watch a QMP connection");
    }
    session_start(session);
    return 0;
}

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *address,
                      int address_length, void *arg)
{
    struct monitor_qmp *monitor = arg;
    struct pv_error error = {0};
    if (add_socket_session(monitor, fd, &error) < 0) {
        pv_log_warning("QMP: %s", error.message);
        close(fd);
        return;
    }
    pv_log_debug("QMP: client connected");
}

static void on_accept_error(struct evconnlistener *listener, void *arg)
{
    /* EMFILE and friends: log and keep listening; libevent retries. */
    pv_log_warning("QMP: cannot accept a connection: %s", strerror(errno));
}

/* epoll refuses regular files and some devices (/dev/null). */
static bool fd_is_pollable(int fd)
{
    int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0)
        return false;
    struct epoll_event event = {.events = EPOLLIN};
    bool pollable = epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) == 0;
    close(epoll_fd);
    return pollable;
}

static int add_stdio_session(struct monitor_qmp *monitor, struct pv_error *error)
{
    struct qmp_session *session = session_new(monitor);
    if (!session)
        return pv_error_set(error, -ENOMEM, "out of memory");
    session->input_fd = STDIN_FILENO;
    session->output_fd = STDOUT_FILENO;
    if (fd_is_pollable(STDIN_FILENO)) {
        session->input = bufferevent_socket_new(monitor->base, STDIN_FILENO, 0);
        if (!session->input)
            goto fail;
        bufferevent_setcb(session->input, on_read, NULL, on_input_event, session);
        if (bufferevent_enable(session->input, EV_READ) < 0)
            goto fail;
    } else {
        session->file_reader = evtimer_new(monitor->base, on_file_readable, session);
        struct timeval now = {0, 0};
        if (!session->file_reader || event_add(session->file_reader, &now) < 0)
            goto fail;
    }
    if (fd_is_pollable(STDOUT_FILENO)) {
        session->output = bufferevent_socket_new(monitor->base, STDOUT_FILENO, 0);
        if (!session->output)
            goto fail;
        bufferevent_setcb(session->output, NULL, on_write_drained, on_output_event, session);
        if (bufferevent_enable(session->output, EV_WRITE) < 0)
            goto fail;
    }
    session_start(session);
    return 0;
fail:
    session_free(session);
    return pv_error_set(error, -ENOMEM, "cannot set up QMP on stdio");
}

/* --- events --------------------------------------------------------------- */

static void on_vm_event(void *opaque, const char *event_name, const char *data_json)
{
    struct monitor_qmp *monitor = opaque;
    struct json_writer *text = &monitor->event_text;
    json_writer_reset(text);
    if (qmp_format_event_now(text, event_name, data_json) < 0) {
        pv_log_warning("QMP: out of memory formatting event %s", event_name);
        return;
    }
    /* Only negotiated sessions get events, as in QEMU. */
    for (struct qmp_session *session = monitor->sessions; session; session = session->next)
        if (session->context.negotiated)
            session_send(session, text->text, text->length);
}

/* vm.h has no way to unregister a listener; take ours out of the table so
 * the VM never calls into a freed monitor. */
static void remove_event_listener(struct monitor_qmp *monitor)
{
    struct vm *vm = monitor->vm;
    for (unsigned i = 0; i < vm->listener_count; i++) {
        if (vm->listeners[i].callback == on_vm_event && vm->listeners[i].opaque == monitor) {
            memmove(&vm->listeners[i], &vm->listeners[i + 1],
                    (vm->listener_count - i - 1) * sizeof(vm->listeners[0]));
            vm->listener_count--;
            return;
        }
    }
}

/* --- unix socket ---------------------------------------------------------- */

/* server=on,wait=on: like QEMU, start only once a client is connected. */
static int wait_for_first_client(struct monitor_qmp *monitor, int listen_fd, struct pv_error *error)
{
    pv_log_info("QEMU waiting for connection on: disconnected:unix:%s,server=on",
                monitor->socket_path);
    for (;;) {
        struct pollfd poll_fd = {.fd = listen_fd, .events = POLLIN};
        int ready = poll(&poll_fd, 1, -1);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0)
            return pv_error_set_errno(error, -errno, "cannot wait for a QMP client");
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED)
                continue;
            return pv_error_set_errno(error, -errno, "cannot accept a QMP client");
        }
        int rc = add_socket_session(monitor, fd, error);
        if (rc < 0)
            close(fd);
        return rc;
    }
}

static int listen_unix(struct monitor_qmp *monitor, const struct chardev_spec *transport,
                       struct pv_error *error)
{
    const char *path = transport->path;
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (!path || !*path)
        return pv_error_set(error, -EINVAL, "a unix socket path is required");
    if (strlen(path) >= sizeof(address.sun_path))
        return pv_error_set(error, -ENAMETOOLONG, "socket path %s is too long", path);
    memcpy(address.sun_path, path, strlen(path) + 1);
    monitor->socket_path = strdup(path);
    if (!monitor->socket_path)
        return pv_error_set(error, -ENOMEM, "out of memory");

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return pv_error_set_errno(error, -errno, "cannot create a unix socket");
    /* A socket left by an earlier run would make bind fail. */
    struct stat status;
    if (lstat(path, &status) == 0 && S_ISSOCK(status.st_mode) && unlink(path) < 0) {
        int rc = -errno;
        close(fd);
        return pv_error_set_errno(error, rc, "cannot remove stale socket %s", path);
    }
    if (bind(fd, (struct sockaddr *)&address, sizeof(address)) < 0) {
        int rc = -errno;
        close(fd);
        return pv_error_set_errno(error, rc, "Failed to bind socket to %s", path);
    }
    if (listen(fd, 16) < 0) {
        int rc = -errno;
        close(fd);
        unlink(path);
        return pv_error_set_errno(error, rc, "Failed to listen on socket %s", path);
    }
    monitor->listener = evconnlistener_new(monitor->base, on_accept, monitor,
                                           LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
    if (!monitor->listener) {
        close(fd);
        unlink(path);
        return pv_error_set(error, -ENOMEM, "cannot watch socket %s", path);
    }
    evconnlistener_set_error_cb(monitor->listener, on_accept_error);
    if (transport->wait)
        return wait_for_first_client(monitor, fd, error);
    return 0;
}

/* --- monitor -------------------------------------------------------------- */

struct monitor_qmp *monitor_qmp_create(struct vm *vm, struct event_base *base,
                                       const struct monitor_spec *spec, struct pv_error *error)
{
    struct monitor_qmp *monitor = calloc(1, sizeof(*monitor));
    if (!monitor) {
        pv_error_set(error, -ENOMEM, "out of memory");
        return NULL;
    }
    monitor->vm = vm;
    monitor->base = base;
    monitor->pretty = spec->pretty;
    qmp_command_registry_init(&monitor->registry);
    json_writer_init(&monitor->event_text, spec->pretty);

    int rc;
    switch (spec->transport.kind) {
    case CHARDEV_KIND_UNIX_SERVER:
        /* QEMU offers OOB where the chardev can run in the monitor I/O thread: sockets. */
        monitor->offer_oob = true;
        rc = listen_unix(monitor, &spec->transport, error);
        break;
    case CHARDEV_KIND_STDIO:
        rc = add_stdio_session(monitor, error);
        break;
    default:
        rc = pv_error_set(error, -ENOTSUP,
                          "QMP works on a unix socket server or stdio only (kind %d)",
                          (int)spec->transport.kind);
        break;
    }
    if (rc < 0) {
        monitor_qmp_destroy(monitor);
        return NULL;
    }
    vm_add_event_listener(vm, on_vm_event, monitor);
    monitor->listening_to_events = true;
    return monitor;
}

void monitor_qmp_destroy(struct monitor_qmp *monitor)
{
    if (!monitor)
        return;
    if (monitor->listening_to_events)
        remove_event_listener(monitor);
    while (monitor->sessions) {
        session_flush(monitor->sessions);
        session_free(monitor->sessions);
    }
    if (monitor->listener)
        evconnlistener_free(monitor->listener);
    if (monitor->socket_path) {
        if (monitor->listener)
            unlink(monitor->socket_path);
        free(monitor->socket_path);
    }
    json_writer_free(&monitor->event_text);
    free(monitor);
}

struct qmp_command_registry *monitor_qmp_registry(struct monitor_qmp *monitor)
{
    return &monitor->registry;
}

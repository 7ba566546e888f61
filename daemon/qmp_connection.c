/* Asynchronous QMP client: see qmp_connection.h.
 *
 * Lifetime: callbacks may call qmp_connection_close on their own connection, even while we
 * are inside the stream parser or a libevent callback. So the struct is reference counted:
 * every entry point from the loop holds a reference, close() tears the transport down at
 * once (idempotent) and drops the owner's reference, and the memory goes with the last one. */
#include "qmp_connection.h"

#include <errno.h>
#include <fcntl.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "pv_log.h"
#include "qmp_codec.h"

#define QMP_CONNECTION_DEFAULT_TIMEOUT_MS 5000
#define QMP_CONNECTION_RETRY_MS 20

enum qmp_connection_state {
    QMP_CONNECTION_CONNECTING,  /* waiting for the socket to appear */
    QMP_CONNECTION_GREETING,    /* connected, waiting for {"QMP": ...} */
    QMP_CONNECTION_NEGOTIATING, /* qmp_capabilities sent */
    QMP_CONNECTION_READY,
    QMP_CONNECTION_CLOSED,
};

struct qmp_command {
    struct qmp_command *next;
    char *command;
    char *request; /* the formatted request, "\r\n" included */
    uint64_t id;
    int timeout_ms;
    qmp_connection_reply_fn callback;
    void *opaque;
    int fd; /* sent along (SCM_RIGHTS) with the request, -1: none; owned */
};

struct qmp_connection {
    unsigned references;
    enum qmp_connection_state state;
    struct event_base *base;
    char *socket_path;
    struct qmp_connection_callbacks callbacks;
    struct timespec deadline; /* end of connecting + handshake */
    struct event *connect_timer;
    struct event *command_timer;
    struct bufferevent *transport;
    struct qmp_stream stream;
    struct qmp_command *queue_head, *queue_tail; /* waiting, not sent */
    struct qmp_command *in_flight;
    uint64_t next_id;
};

static void connection_ref(struct qmp_connection *connection)
{
    connection->references++;
}

static void connection_unref(struct qmp_connection *connection)
{
    if (--connection->references > 0)
        return;
    qmp_stream_destroy(&connection->stream);
    free(connection->socket_path);
    free(connection);
}

static void command_free(struct qmp_command *command)
{
    if (!command)
        return;
    free(command->command);
    free(command->request);
    if (command->fd >= 0)
        close(command->fd);
    free(command);
}

static int64_t milliseconds_until(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(deadline->tv_sec - now.tv_sec) * 1000 +
           (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

static void timer_arm(struct event *timer, int64_t milliseconds)
{
    if (milliseconds < 0)
        milliseconds = 0;
    struct timeval delay = {.tv_sec = milliseconds / 1000, .tv_usec = (milliseconds % 1000) * 1000};
    evtimer_add(timer, &delay);
}

static void reply_status(struct qmp_command *command, int status)
{
    struct qmp_connection_reply reply = {.status = status};
    command->callback(command->opaque, &reply);
}

/* Stops the transport and fails every command with `status` (the first, in flight, may get a
 * different one: -ETIMEDOUT). Then tells the owner, unless it asked for this itself. */
static void connection_shutdown(struct qmp_connection *connection, int in_flight_status,
                                const char *reason, bool notify)
{
    if (connection->state == QMP_CONNECTION_CLOSED)
        return;
    enum qmp_connection_state previous = connection->state;
    connection->state = QMP_CONNECTION_CLOSED;
    if (connection->transport) {
        bufferevent_free(connection->transport);
        connection->transport = NULL;
    }
    if (connection->connect_timer)
        event_free(connection->connect_timer);
    connection->connect_timer = NULL;
    if (connection->command_timer)
        event_free(connection->command_timer);
    connection->command_timer = NULL;

    connection_ref(connection);
    struct qmp_command *in_flight = connection->in_flight;
    connection->in_flight = NULL;
    if (in_flight) {
        reply_status(in_flight, in_flight_status);
        command_free(in_flight);
    }
    while (connection->queue_head) {
        struct qmp_command *command = connection->queue_head;
        connection->queue_head = command->next;
        reply_status(command, -ECONNRESET);
        command_free(command);
    }
    connection->queue_tail = NULL;
    if (notify) {
        if (previous == QMP_CONNECTION_READY) {
            pv_log_debug("QMP %s: closed: %s", connection->socket_path, reason);
            if (connection->callbacks.closed)
                connection->callbacks.closed(connection->callbacks.opaque);
        } else if (connection->callbacks.ready) {
            int status = in_flight_status == -ETIMEDOUT || previous == QMP_CONNECTION_CONNECTING
                             ? -ETIMEDOUT
                             : -ECONNRESET;
            connection->callbacks.ready(connection->callbacks.opaque, status, reason);
        }
    }
    connection_unref(connection);
}

/* Writes the start of the request with the descriptor attached (SCM_RIGHTS, as QEMU's getfd
 * and add-fd expect it: with the bytes of the command that uses it) straight to the socket,
 * and leaves the rest of it, if any, to the buffered writer. The output buffer is empty here:
 * the previous command was answered, so its bytes were all written. */
static int send_with_fd(struct qmp_connection *connection, struct qmp_command *command)
{
    struct evbuffer *output = bufferevent_get_output(connection->transport);
    if (evbuffer_get_length(output) != 0)
        return -EAGAIN;
    size_t length = strlen(command->request);
    struct iovec data = {.iov_base = command->request, .iov_len = length};
    union {
        char buffer[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof(control));
    struct msghdr message = {
        .msg_iov = &data,
        .msg_iovlen = 1,
        .msg_control = control.buffer,
        .msg_controllen = sizeof(control.buffer),
    };
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &command->fd, sizeof(int));
    ssize_t sent;
    do {
        sent = sendmsg(bufferevent_getfd(connection->transport), &message, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    if (sent <= 0)
        return sent < 0 ? -errno : -EIO;
    close(command->fd);
    command->fd = -1;
    memmove(command->request, command->request + sent, length - (size_t)sent + 1);
    return 0;
}

static void send_next(struct qmp_connection *connection)
{
    if (connection->state != QMP_CONNECTION_READY || connection->in_flight ||
        !connection->queue_head)
        return;
    struct qmp_command *command = connection->queue_head;
    connection->queue_head = command->next;
    if (!connection->queue_head)
        connection->queue_tail = NULL;
    command->next = NULL;
    connection->in_flight = command;
    if (command->fd >= 0 && send_with_fd(connection, command) < 0) {
        connection_shutdown(connection, -ECONNRESET, "sending a descriptor failed", true);
        return;
    }
    if (command->request[0] &&
        bufferevent_write(connection->transport, command->request, strlen(command->request)) < 0) {
        connection_shutdown(connection, -ECONNRESET, "write failed", true);
        return;
    }
    timer_arm(connection->command_timer, command->timeout_ms);
}

static void handle_reply(struct qmp_connection *connection, struct qmp_message *message)
{
    struct qmp_command *command = connection->in_flight;
    uint64_t id = 0;
    if (!command || !message->id || !json_value_uint64(message->id, &id) || id != command->id) {
        /* A reply nobody waits for: the peer is confused, or it is the answer to a command
         * that already timed out (impossible here: a timeout closes the connection). */
        pv_log_warning("QMP %s: ignoring a reply that matches no pending command",
                       connection->socket_path);
        return;
    }
    evtimer_del(connection->command_timer);
    connection->in_flight = NULL;

    struct json_writer text;
    json_writer_init(&text, false);
    struct qmp_connection_reply reply = {0};
    if (message->kind == QMP_MESSAGE_RETURN) {
        json_writer_value(&text, message->value);
        reply.return_json = json_writer_text(&text);
        if (!reply.return_json)
            reply.status = -ENOMEM;
    } else {
        yajl_val error_object = json_get_object(message->root, "error");
        reply.status = -EREMOTEIO;
        reply.error_class = json_get_string(error_object, "class");
        reply.error_desc = message->error.desc;
    }
    command->callback(command->opaque, &reply);
    json_writer_free(&text);
    command_free(command);
    send_next(connection);
}

static void handle_message(void *opaque, const char *text, size_t length, const char *error)
{
    struct qmp_connection *connection = opaque;
    if (connection->state == QMP_CONNECTION_CLOSED)
        return; /* closed by a callback of an earlier message in the same read */
    if (!text) {
        pv_log_warning("QMP %s: %s", connection->socket_path, error);
        return;
    }
    struct qmp_message message;
    struct pv_error parse_error = {0};
    if (qmp_message_parse(text, length, &message, &parse_error) < 0) {
        pv_log_warning("QMP %s: %s", connection->socket_path, parse_error.message);
        qmp_message_free(&message);
        return;
    }
    switch (connection->state) {
    case QMP_CONNECTION_GREETING:
        if (message.kind != QMP_MESSAGE_GREETING) {
            connection_shutdown(connection, -EPROTO, "the peer did not send a QMP greeting", true);
            break;
        }
        {
            static const char request[] = "{\"execute\": \"qmp_capabilities\"}\r\n";
            connection->state = QMP_CONNECTION_NEGOTIATING;
            if (bufferevent_write(connection->transport, request, sizeof(request) - 1) < 0)
                connection_shutdown(connection, -ECONNRESET, "write failed", true);
        }
        break;
    case QMP_CONNECTION_NEGOTIATING:
        if (message.kind == QMP_MESSAGE_EVENT)
            break;
        if (message.kind != QMP_MESSAGE_RETURN) {
            char reason[PV_ERROR_MESSAGE_MAX + 32];
            snprintf(reason, sizeof(reason), "qmp_capabilities failed: %s",
                     message.kind == QMP_MESSAGE_ERROR ? message.error.desc : "unexpected reply");
            connection_shutdown(connection, -EPROTO, reason, true);
            break;
        }
        connection->state = QMP_CONNECTION_READY;
        evtimer_del(connection->connect_timer);
        if (connection->callbacks.ready)
            connection->callbacks.ready(connection->callbacks.opaque, 0, "connected");
        send_next(connection);
        break;
    case QMP_CONNECTION_READY:
        if (message.kind == QMP_MESSAGE_EVENT) {
            if (connection->callbacks.event) {
                struct json_writer data;
                json_writer_init(&data, false);
                if (message.value)
                    json_writer_value(&data, message.value);
                else
                    json_writer_json(&data, "{}");
                connection->callbacks.event(connection->callbacks.opaque, message.event,
                                            json_writer_text(&data));
                json_writer_free(&data);
            }
        } else if (message.kind == QMP_MESSAGE_RETURN || message.kind == QMP_MESSAGE_ERROR) {
            handle_reply(connection, &message);
        }
        break;
    default:
        break;
    }
    qmp_message_free(&message);
}

static void on_read(struct bufferevent *transport, void *opaque)
{
    struct qmp_connection *connection = opaque;
    connection_ref(connection);
    struct evbuffer *input = bufferevent_get_input(transport);
    char chunk[4096];
    while (connection->state != QMP_CONNECTION_CLOSED) {
        int length = evbuffer_remove(input, chunk, sizeof(chunk));
        if (length <= 0)
            break;
        if (qmp_stream_feed(&connection->stream, chunk, (size_t)length) < 0)
            pv_log_warning("QMP %s: out of memory, message dropped", connection->socket_path);
    }
    connection_unref(connection);
}

static void on_transport_event(struct bufferevent *transport, short events, void *opaque)
{
    struct qmp_connection *connection = opaque;
    if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        connection_ref(connection);
        connection_shutdown(
            connection, -ECONNRESET,
            events & BEV_EVENT_EOF ? "the peer closed the connection" : "connection error", true);
        connection_unref(connection);
    }
}

/* One non-blocking connect attempt: 1 connected, 0 not yet (retry), <0 fatal. */
static int try_connect(struct qmp_connection *connection)
{
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    snprintf(address.sun_path, sizeof(address.sun_path), "%s", connection->socket_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&address, sizeof(address)) < 0) {
        int rc = -errno;
        close(fd);
        /* Not created yet, not listening yet, or its backlog is full: all transient. */
        if (rc == -ENOENT || rc == -ECONNREFUSED || rc == -EAGAIN)
            return 0;
        return rc;
    }
    connection->transport = bufferevent_socket_new(connection->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!connection->transport) {
        close(fd);
        return -ENOMEM;
    }
    bufferevent_setcb(connection->transport, on_read, NULL, on_transport_event, connection);
    if (bufferevent_enable(connection->transport, EV_READ | EV_WRITE) < 0)
        return -EIO;
    connection->state = QMP_CONNECTION_GREETING;
    return 1;
}

static void on_connect_timer(evutil_socket_t fd, short what, void *opaque)
{
    struct qmp_connection *connection = opaque;
    connection_ref(connection);
    int64_t remaining = milliseconds_until(&connection->deadline);
    if (connection->state == QMP_CONNECTION_CONNECTING) {
        int rc = try_connect(connection);
        if (rc < 0) {
            char reason[PV_ERROR_MESSAGE_MAX];
            snprintf(reason, sizeof(reason), "cannot connect to %s: %s", connection->socket_path,
                     strerror(-rc));
            connection_shutdown(connection, rc, reason, true);
        } else if (rc == 0 && remaining <= 0) {
            char reason[PV_ERROR_MESSAGE_MAX];
            snprintf(reason, sizeof(reason), "QMP socket %s did not appear in time",
                     connection->socket_path);
            connection_shutdown(connection, -ETIMEDOUT, reason, true);
        } else if (rc == 0) {
            timer_arm(connection->connect_timer,
                      remaining < QMP_CONNECTION_RETRY_MS ? remaining : QMP_CONNECTION_RETRY_MS);
        } else {
            timer_arm(connection->connect_timer, remaining); /* bounds the handshake */
        }
    } else if (connection->state != QMP_CONNECTION_READY &&
               connection->state != QMP_CONNECTION_CLOSED) {
        connection_shutdown(connection, -ETIMEDOUT, "no QMP greeting in time", true);
    }
    connection_unref(connection);
}

static void on_command_timeout(evutil_socket_t fd, short what, void *opaque)
{
    struct qmp_connection *connection = opaque;
    if (!connection->in_flight)
        return;
    connection_ref(connection);
    char reason[256];
    snprintf(reason, sizeof(reason), "QMP command '%s' timed out after %d ms",
             connection->in_flight->command, connection->in_flight->timeout_ms);
    pv_log_warning("QMP %s: %s; closing the connection", connection->socket_path, reason);
    /* A late reply would be taken for the next command's: QMP replies carry no ordering
     * guarantee we could resynchronise on without ids we trust, so the connection goes. */
    connection_shutdown(connection, -ETIMEDOUT, reason, true);
    connection_unref(connection);
}

struct qmp_connection *qmp_connection_open(struct event_base *base, const char *socket_path,
                                           int connect_timeout_ms,
                                           const struct qmp_connection_callbacks *callbacks,
                                           struct pv_error *error)
{
    if (strlen(socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        pv_error_set(error, -ENAMETOOLONG, "QMP socket path too long: %s", socket_path);
        return NULL;
    }
    struct qmp_connection *connection = calloc(1, sizeof(*connection));
    if (!connection) {
        pv_error_set(error, -ENOMEM, "out of memory");
        return NULL;
    }
    connection->references = 1;
    connection->base = base;
    connection->next_id = 1;
    connection->socket_path = strdup(socket_path);
    if (callbacks)
        connection->callbacks = *callbacks;
    qmp_stream_init(&connection->stream, QMP_MAX_MESSAGE_SIZE, handle_message, connection);
    connection->connect_timer = evtimer_new(base, on_connect_timer, connection);
    connection->command_timer = evtimer_new(base, on_command_timeout, connection);
    if (!connection->socket_path || !connection->connect_timer || !connection->command_timer) {
        pv_error_set(error, -ENOMEM, "out of memory");
        connection->callbacks = (struct qmp_connection_callbacks){0};
        qmp_connection_close(connection);
        return NULL;
    }
    clock_gettime(CLOCK_MONOTONIC, &connection->deadline);
    int64_t total = (int64_t)connection->deadline.tv_nsec +
                    (int64_t)(connect_timeout_ms > 0 ? connect_timeout_ms : 0) * 1000000;
    connection->deadline.tv_sec += total / 1000000000;
    connection->deadline.tv_nsec = total % 1000000000;
    /* The first attempt runs from the loop too, so `ready` never runs inside open(). */
    timer_arm(connection->connect_timer, 0);
    return connection;
}

int qmp_connection_execute(struct qmp_connection *connection, const char *command,
                           const char *arguments_json, int timeout_ms,
                           qmp_connection_reply_fn callback, void *opaque, struct pv_error *error)
{
    return qmp_connection_execute_fd(connection, command, arguments_json, -1, timeout_ms, callback,
                                     opaque, error);
}

int qmp_connection_execute_fd(struct qmp_connection *connection, const char *command,
                              const char *arguments_json, int fd, int timeout_ms,
                              qmp_connection_reply_fn callback, void *opaque,
                              struct pv_error *error)
{
    if (connection->state == QMP_CONNECTION_CLOSED)
        return pv_error_set(error, -ENOTCONN, "the QMP connection is closed");
    struct qmp_command *entry = calloc(1, sizeof(*entry));
    if (!entry)
        return pv_error_set(error, -ENOMEM, "out of memory");
    entry->fd = -1;
    if (fd >= 0 && (entry->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0) {
        int rc = -errno;
        free(entry);
        return pv_error_set_errno(error, rc, "cannot duplicate the descriptor to send");
    }
    entry->id = connection->next_id++;
    entry->timeout_ms = timeout_ms > 0 ? timeout_ms : QMP_CONNECTION_DEFAULT_TIMEOUT_MS;
    entry->callback = callback;
    entry->opaque = opaque;
    entry->command = strdup(command);
    char id_text[32];
    snprintf(id_text, sizeof(id_text), "%llu", (unsigned long long)entry->id);
    struct json_writer request;
    json_writer_init(&request, false);
    int rc = qmp_format_request(&request, command, arguments_json, id_text, false);
    entry->request = rc < 0 ? NULL : json_writer_steal(&request);
    json_writer_free(&request);
    if (!entry->command || !entry->request) {
        command_free(entry);
        return pv_error_set(error, -ENOMEM, "out of memory");
    }
    if (connection->queue_tail)
        connection->queue_tail->next = entry;
    else
        connection->queue_head = entry;
    connection->queue_tail = entry;
    send_next(connection);
    return 0;
}

bool qmp_connection_is_ready(const struct qmp_connection *connection)
{
    return connection && connection->state == QMP_CONNECTION_READY;
}

void qmp_connection_close(struct qmp_connection *connection)
{
    if (!connection)
        return;
    connection_shutdown(connection, -ECONNRESET, "closed", false);
    connection_unref(connection);
}

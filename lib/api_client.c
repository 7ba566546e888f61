/* Blocking client for the plugvirtd JSON API: one request at a time, replies matched
 * by id, events kept in arrival order. */
#include "api_client.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "json_util.h"

struct api_event_entry {
    yajl_val event;
    struct api_event_entry *next;
};

struct api_client {
    int fd;
    uint64_t next_id;
    char *buffer; /* bytes received but not yet consumed as lines */
    size_t length;
    size_t capacity;
    bool closed; /* the daemon closed its end: no more bytes will come */
    struct api_event_entry *events_head;
    struct api_event_entry *events_tail;
};

struct api_client *api_client_connect(const char *socket_path, struct pv_error *error)
{
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (!socket_path || !*socket_path) {
        pv_error_set(error, -EINVAL, "no socket path given");
        return NULL;
    }
    if (strlen(socket_path) >= sizeof(address.sun_path)) {
        pv_error_set(error, -ENAMETOOLONG, "socket path '%s' is too long", socket_path);
        return NULL;
    }
    strcpy(address.sun_path, socket_path);

    struct api_client *client = calloc(1, sizeof(*client));
    if (!client) {
        pv_error_set(error, -ENOMEM, "out of memory");
        return NULL;
    }
    client->next_id = 1;
    client->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (client->fd < 0) {
        pv_error_set_errno(error, -errno, "cannot create a unix socket");
        free(client);
        return NULL;
    }
    if (connect(client->fd, (struct sockaddr *)&address, sizeof(address)) < 0) {
        int rc = -errno;
        pv_error_set(error, rc,
                     "failed to connect to the daemon at '%s': %s (is plugvirtd running? -c SOCKET "
                     "or PLUGVIRT_SOCKET selects another socket)",
                     socket_path, strerror(-rc));
        close(client->fd);
        free(client);
        return NULL;
    }
    return client;
}

void api_client_close(struct api_client *client)
{
    if (!client)
        return;
    if (client->fd >= 0)
        close(client->fd);
    while (client->events_head) {
        struct api_event_entry *entry = client->events_head;
        client->events_head = entry->next;
        yajl_tree_free(entry->event);
        free(entry);
    }
    free(client->buffer);
    free(client);
}

int api_client_fd(const struct api_client *client)
{
    return client->fd;
}

static int write_all(int fd, const char *data, size_t length, struct pv_error *error)
{
    while (length > 0) {
        /* MSG_NOSIGNAL: a daemon that went away is an error, not a SIGPIPE. */
        ssize_t written = send(fd, data, length, MSG_NOSIGNAL);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            return pv_error_set_errno(error, -errno, "failed to send the request");
        }
        data += written;
        length -= (size_t)written;
    }
    return 0;
}

int api_client_send(struct api_client *client, const char *method, const char *params_json,
                    uint64_t *id, struct pv_error *error)
{
    uint64_t request_id = client->next_id++;
    struct json_writer writer;
    json_writer_init(&writer, false);
    json_writer_begin_object(&writer);
    json_writer_member_uint(&writer, "id", request_id);
    json_writer_member_string(&writer, "method", method);
    json_writer_key(&writer, "params");
    if (params_json) {
        /* Re-laid-out through the parser, which also refuses a broken text. */
        struct pv_error parse_error = {0};
        yajl_val params = json_parse(params_json, strlen(params_json), API_CLIENT_MAX_LINE,
                                     JSON_MAX_DEPTH, &parse_error);
        if (!params || !YAJL_IS_OBJECT(params)) {
            yajl_tree_free(params);
            json_writer_free(&writer);
            return pv_error_set(error, -EINVAL, "request parameters are not a JSON object%s%s",
                                parse_error.code ? ": " : "", parse_error.message);
        }
        json_writer_value(&writer, params);
        yajl_tree_free(params);
    } else {
        json_writer_begin_object(&writer);
        json_writer_end_object(&writer);
    }
    json_writer_end_object(&writer);
    json_writer_append_raw(&writer, "\n", 1);
    if (json_writer_status(&writer) < 0) {
        json_writer_free(&writer);
        return pv_error_set(error, -ENOMEM, "out of memory");
    }
    int ret = write_all(client->fd, json_writer_text(&writer), writer.length, error);
    json_writer_free(&writer);
    if (ret == 0 && id)
        *id = request_id;
    return ret;
}

static int64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Takes one complete line out of the buffer, or returns NULL. */
static char *take_buffered_line(struct api_client *client)
{
    char *newline = memchr(client->buffer, '\n', client->length);
    if (!newline)
        return NULL;
    size_t line_length = (size_t)(newline - client->buffer);
    char *line = malloc(line_length + 1);
    if (!line)
        return NULL;
    memcpy(line, client->buffer, line_length);
    line[line_length] = '\0';
    client->length -= line_length + 1;
    memmove(client->buffer, newline + 1, client->length);
    return line;
}

static int fill_buffer(struct api_client *client, struct pv_error *error)
{
    if (client->length == client->capacity) {
        if (client->capacity >= API_CLIENT_MAX_LINE)
            return pv_error_set(error, -E2BIG, "the daemon sent a line longer than %u bytes",
                                API_CLIENT_MAX_LINE);
        size_t capacity = client->capacity ? client->capacity * 2 : 4096;
        char *buffer = realloc(client->buffer, capacity);
        if (!buffer)
            return pv_error_set(error, -ENOMEM, "out of memory");
        client->buffer = buffer;
        client->capacity = capacity;
    }
    ssize_t received =
        read(client->fd, client->buffer + client->length, client->capacity - client->length);
    if (received < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return 0;
        return pv_error_set_errno(error, -errno, "failed to read from the daemon");
    }
    if (received == 0) {
        client->closed = true;
        return 0;
    }
    client->length += (size_t)received;
    return 0;
}

static int read_line(struct api_client *client, int timeout_ms, bool interruptible, char **line,
                     struct pv_error *error)
{
    int64_t deadline = timeout_ms < 0 ? -1 : monotonic_ms() + timeout_ms;
    for (;;) {
        if (client->length > 0 && memchr(client->buffer, '\n', client->length)) {
            *line = take_buffered_line(client);
            return *line ? 0 : pv_error_set(error, -ENOMEM, "out of memory");
        }
        if (client->closed)
            return pv_error_set(error, -ECONNRESET, "the daemon closed the connection");
        int wait_ms = -1;
        if (deadline >= 0) {
            int64_t left = deadline - monotonic_ms();
            if (left <= 0)
                return pv_error_set(error, -ETIMEDOUT, "timed out waiting for the daemon");
            wait_ms = left > INT32_MAX ? INT32_MAX : (int)left;
        }
        struct pollfd poll_fd = {.fd = client->fd, .events = POLLIN};
        int ready = poll(&poll_fd, 1, wait_ms);
        if (ready < 0) {
            if (errno == EINTR) {
                if (interruptible)
                    return pv_error_set(error, -EINTR, "interrupted");
                continue;
            }
            return pv_error_set_errno(error, -errno, "failed to wait for the daemon");
        }
        if (ready == 0)
            continue; /* the deadline check above reports the timeout */
        int ret = fill_buffer(client, error);
        if (ret < 0)
            return ret;
    }
}

int api_client_read_line(struct api_client *client, int timeout_ms, char **line,
                         struct pv_error *error)
{
    return read_line(client, timeout_ms, true, line, error);
}

static int queue_event(struct api_client *client, yajl_val event, struct pv_error *error)
{
    struct api_event_entry *entry = calloc(1, sizeof(*entry));
    if (!entry) {
        yajl_tree_free(event);
        return pv_error_set(error, -ENOMEM, "out of memory");
    }
    entry->event = event;
    if (client->events_tail)
        client->events_tail->next = entry;
    else
        client->events_head = entry;
    client->events_tail = entry;
    return 0;
}

static yajl_val parse_line(const char *line, struct pv_error *error)
{
    struct pv_error parse_error = {0};
    yajl_val value =
        json_parse(line, strlen(line), API_CLIENT_MAX_LINE, JSON_MAX_DEPTH, &parse_error);
    if (!value) {
        pv_error_set(error, -EPROTO, "the daemon sent invalid JSON: %s", parse_error.message);
        return NULL;
    }
    if (!YAJL_IS_OBJECT(value)) {
        yajl_tree_free(value);
        pv_error_set(error, -EPROTO, "the daemon sent a JSON %s instead of an object",
                     json_type_name(value));
        return NULL;
    }
    return value;
}

static int fill_reply(yajl_val root, struct api_reply *reply, struct pv_error *error)
{
    memset(reply, 0, sizeof(*reply));
    reply->root = root;
    yajl_val error_object = json_object_get(root, "error");
    if (error_object) {
        if (!YAJL_IS_OBJECT(error_object))
            return pv_error_set(error, -EPROTO, "the daemon sent a malformed error reply");
        reply->error = error_object;
        reply->error_code = json_get_string(error_object, "code");
        reply->error_message = json_get_string(error_object, "message");
        reply->qmp_class = json_get_string(error_object, "qmp_class");
        reply->step = json_get_string(error_object, "step");
        if (!reply->error_code)
            reply->error_code = "internal";
        if (!reply->error_message)
            reply->error_message = reply->error_code;
        return 0;
    }
    /* yajl represents a JSON null as a node of type null, so presence is distinguishable. */
    reply->result = json_object_get(root, "result");
    if (!reply->result)
        return pv_error_set(error, -EPROTO, "the daemon sent a reply without result or error");
    return 0;
}

int api_client_call(struct api_client *client, const char *method, const char *params_json,
                    int timeout_ms, struct api_reply *reply, struct pv_error *error)
{
    memset(reply, 0, sizeof(*reply));
    uint64_t id = 0;
    int ret = api_client_send(client, method, params_json, &id, error);
    if (ret < 0)
        return ret;
    int64_t deadline = timeout_ms < 0 ? -1 : monotonic_ms() + timeout_ms;
    for (;;) {
        int wait_ms = -1;
        if (deadline >= 0) {
            int64_t left = deadline - monotonic_ms();
            wait_ms = left < 0 ? 0 : (int)(left > INT32_MAX ? INT32_MAX : left);
        }
        char *line = NULL;
        ret = read_line(client, wait_ms, false, &line, error);
        if (ret == -ETIMEDOUT)
            return pv_error_set(error, -ETIMEDOUT,
                                "timed out after %d ms waiting for the reply to '%s'", timeout_ms,
                                method);
        if (ret < 0)
            return ret;
        yajl_val root = parse_line(line, error);
        free(line);
        if (!root)
            return -EPROTO;
        if (json_object_get(root, "event")) {
            ret = queue_event(client, root, error);
            if (ret < 0)
                return ret;
            continue;
        }
        uint64_t reply_id = 0;
        yajl_val id_value = json_object_get(root, "id");
        bool anonymous_error = (!id_value || YAJL_IS_NULL(id_value)) &&
                               json_object_get(root, "error"); /* request not understood */
        if (!anonymous_error && (!json_get_uint64(root, "id", &reply_id) || reply_id != id)) {
            /* A reply to an earlier request that timed out on our side: skip it. */
            if (json_object_get(root, "id") && reply_id < id) {
                yajl_tree_free(root);
                continue;
            }
            yajl_tree_free(root);
            return pv_error_set(error, -EPROTO, "the daemon replied with an unexpected id");
        }
        ret = fill_reply(root, reply, error);
        if (ret < 0) {
            api_reply_free(reply);
            return ret;
        }
        return 0;
    }
}

int api_client_read_event(struct api_client *client, int timeout_ms, yajl_val *event,
                          struct pv_error *error)
{
    *event = NULL;
    int64_t deadline = timeout_ms < 0 ? -1 : monotonic_ms() + timeout_ms;
    for (;;) {
        if (client->events_head) {
            struct api_event_entry *entry = client->events_head;
            client->events_head = entry->next;
            if (!client->events_head)
                client->events_tail = NULL;
            *event = entry->event;
            free(entry);
            return 0;
        }
        int wait_ms = -1;
        if (deadline >= 0) {
            int64_t left = deadline - monotonic_ms();
            wait_ms = left < 0 ? 0 : (int)(left > INT32_MAX ? INT32_MAX : left);
        }
        char *line = NULL;
        int ret = read_line(client, wait_ms, true, &line, error);
        if (ret < 0)
            return ret;
        yajl_val root = parse_line(line, error);
        free(line);
        if (!root)
            return -EPROTO;
        if (!json_object_get(root, "event")) {
            /* Not an event: a late reply to a request that timed out. */
            yajl_tree_free(root);
            continue;
        }
        *event = root;
        return 0;
    }
}

void api_reply_free(struct api_reply *reply)
{
    if (!reply)
        return;
    yajl_tree_free(reply->root);
    memset(reply, 0, sizeof(*reply));
}

size_t api_client_take_buffered(struct api_client *client, void *out, size_t size)
{
    size_t length = client->length < size ? client->length : size;
    memcpy(out, client->buffer, length);
    memmove(client->buffer, client->buffer + length, client->length - length);
    client->length -= length;
    return length;
}

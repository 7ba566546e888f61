/* The plugvirtd JSON API over unix sockets (see api_server.h). */
#include "api_server.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "domains.h"
#include "console.h"
#include "json_util.h"
#include "pv_log.h"

#ifndef PLUGVIRT_VERSION
#define PLUGVIRT_VERSION "0.1.0"
#endif

struct api_connection {
    struct api_server *server;
    struct bufferevent *buffer;
    bool read_only;
    bool closed;
    bool close_when_flushed;
    /* After "request line too long": what is left of that line is read and dropped (so the
     * client, still writing, gets the error reply rather than EPIPE), then the connection
     * closes once the reply went out. */
    bool discarding;
    size_t discarded;
    bool subscribed;
    char *subscribed_domain; /* NULL: every domain */
    unsigned references;
    uid_t uid;
    pid_t pid;
    struct api_connection *previous, *next;
};

struct api_server {
    struct event_base *base;
    struct domains *domains;
    struct evconnlistener *read_write_listener;
    struct evconnlistener *read_only_listener;
    struct api_connection *connections;
};

/* A request waiting for its domains_done_fn. */
struct api_request {
    struct api_connection *connection;
    char *id_json;
};

/* ------------------------------------------------------------- connections --- */

static void connection_unref(struct api_connection *connection)
{
    if (--connection->references > 0)
        return;
    free(connection->subscribed_domain);
    free(connection);
}

static void connection_close(struct api_connection *connection)
{
    if (connection->closed)
        return;
    connection->closed = true;
    bufferevent_free(connection->buffer);
    connection->buffer = NULL;
    struct api_server *server = connection->server;
    if (connection->previous)
        connection->previous->next = connection->next;
    else
        server->connections = connection->next;
    if (connection->next)
        connection->next->previous = connection->previous;
    pv_log_debug("api: client pid %d closed", (int)connection->pid);
    connection_unref(connection);
}

/* Queues one line; drops the client when it does not read its output. */
static void connection_send(struct api_connection *connection, const char *text)
{
    if (connection->closed || text == NULL)
        return;
    struct evbuffer *output = bufferevent_get_output(connection->buffer);
    size_t length = strlen(text);
    if (evbuffer_get_length(output) + length + 1 > API_SERVER_MAX_OUTPUT) {
        pv_log_warning("api: client pid %d does not read its replies/events: dropped",
                       (int)connection->pid);
        connection_close(connection);
        return;
    }
    if (evbuffer_add(output, text, length) < 0 || evbuffer_add(output, "\n", 1) < 0)
        connection_close(connection);
}

/* Every reply is one object that echoes the request's id (null when it had none). */
static void begin_reply(struct json_writer *writer, const char *id_json)
{
    json_writer_init(writer, false);
    json_writer_begin_object(writer);
    json_writer_key(writer, "id");
    if (id_json)
        json_writer_json(writer, id_json);
    else
        json_writer_null(writer);
}

/* Closes the reply object begun by begin_reply() and sends it. */
static void send_reply(struct api_connection *connection, struct json_writer *writer)
{
    json_writer_end_object(writer);
    connection_send(connection, json_writer_text(writer));
    json_writer_free(writer);
}

static void send_error(struct api_connection *connection, const char *id_json, const char *code,
                       const char *message, const char *qmp_class, const char *step)
{
    struct json_writer writer;
    begin_reply(&writer, id_json);
    json_writer_key(&writer, "error");
    json_writer_begin_object(&writer);
    json_writer_member_string(&writer, "code", code);
    json_writer_member_string(&writer, "message", message ? message : code);
    if (qmp_class)
        json_writer_member_string(&writer, "qmp_class", qmp_class);
    if (step)
        json_writer_member_string(&writer, "step", step);
    json_writer_end_object(&writer);
    send_reply(connection, &writer);
}

static void send_result(struct api_connection *connection, const char *id_json,
                        const char *result_json)
{
    struct json_writer writer;
    begin_reply(&writer, id_json);
    json_writer_key(&writer, "result");
    json_writer_json(&writer, result_json ? result_json : "{}");
    send_reply(connection, &writer);
}

static void on_request_done(void *opaque, const struct domains_result *result)
{
    struct api_request *request = opaque;
    struct api_connection *connection = request->connection;
    if (!connection->closed) {
        if (result->code)
            send_error(connection, request->id_json, result->code, result->message,
                       result->qmp_class, result->step);
        else
            send_result(connection, request->id_json, result->result_json);
    }
    connection_unref(connection);
    free(request->id_json);
    free(request);
}

/* ---------------------------------------------------------------- dispatch --- */

struct method {
    const char *name;
    bool read_only; /* allowed on the read-only socket */
};

static const struct method methods[] = {
    {"daemon.ping", true},
    {"domain.list", true},
    {"domain.info", true},
    {"domain.state", true},
    {"domain.xml", true},
    {"domain.blklist", true},
    {"domain.iflist", true},
    {"domain.ifstat", true},
    {"events.subscribe", true},
    {"domain.define", false},
    {"domain.undefine", false},
    {"domain.start", false},
    {"domain.destroy", false},
    {"domain.shutdown", false},
    {"domain.reboot", false},
    {"domain.suspend", false},
    {"domain.resume", false},
    {"domain.set_autostart", false},
    {"domain.attach_device", false},
    {"domain.detach_device", false},
    {"domain.set_link", false},
    {"domain.qemu_monitor_command", false},
    {"domain.console", false},
};

static bool param_bool(yajl_val params, const char *key)
{
    bool value = false;
    return json_get_bool(params, key, &value) && value;
}

/* "flags": ["live", "config"] (also "persistent" = config + live when running, "current"). */
static int parse_flags(yajl_val params, unsigned *flags, bool *persistent, char *error,
                       size_t error_size)
{
    *flags = 0;
    *persistent = false;
    yajl_val array = json_get_array(params, "flags");
    if (array == NULL)
        return json_object_get(params, "flags") ? -EINVAL : 0;
    for (size_t i = 0; i < YAJL_GET_ARRAY(array)->len; i++) {
        yajl_val item = YAJL_GET_ARRAY(array)->values[i];
        const char *flag = YAJL_IS_STRING(item) ? YAJL_GET_STRING(item) : NULL;
        if (flag == NULL) {
            snprintf(error, error_size, "flags must be strings");
            return -EINVAL;
        }
        if (strcmp(flag, "live") == 0)
            *flags |= DOMAINS_FLAG_LIVE;
        else if (strcmp(flag, "config") == 0)
            *flags |= DOMAINS_FLAG_CONFIG;
        else if (strcmp(flag, "persistent") == 0)
            *persistent = true;
        else if (strcmp(flag, "current") != 0) {
            snprintf(error, error_size, "unknown flag '%s'", flag);
            return -EINVAL;
        }
    }
    return 0;
}

struct console_lookup {
    char code[64];
    char message[PV_ERROR_MESSAGE_MAX];
};

static void on_console_lookup_error(void *opaque, const struct domains_result *result)
{
    struct console_lookup *lookup = opaque;
    snprintf(lookup->code, sizeof(lookup->code), "%s", result->code ? result->code : "internal");
    snprintf(lookup->message, sizeof(lookup->message), "%s",
             result->message ? result->message : "");
}

/* domain.console: after the JSON reply the connection is a raw byte stream to and from the
 * guest's serial port 0 (console.h); the daemon closes it when the domain stops or another
 * client takes the console with "force". */
static void start_console(struct api_connection *connection, yajl_val params, const char *id_json)
{
    struct console_lookup lookup = {.code = {0}};
    struct console *console =
        domains_console(connection->server->domains, json_get_string(params, "domain"),
                        on_console_lookup_error, &lookup);
    if (console == NULL) {
        send_error(connection, id_json, lookup.code, lookup.message, NULL, NULL);
        return;
    }
    bool force = param_bool(params, "force");
    if (console_busy(console) && !force) {
        send_error(connection, id_json, "operation-failed",
                   "operation failed: Active console session exists for this domain", NULL, NULL);
        return;
    }
    struct json_writer result;
    json_writer_init(&result, false);
    json_writer_begin_object(&result);
    json_writer_member_string(&result, "domain", console_domain_name(console));
    json_writer_end_object(&result);
    send_result(connection, id_json, json_writer_text(&result));
    json_writer_free(&result);
    if (connection->closed)
        return;
    /* Hand the buffer (reply queued, any early keystrokes in its input) to the console. */
    struct bufferevent *buffer = connection->buffer;
    connection->buffer = NULL;
    connection->closed = true;
    struct api_server *server = connection->server;
    if (connection->previous)
        connection->previous->next = connection->next;
    else
        server->connections = connection->next;
    if (connection->next)
        connection->next->previous = connection->previous;
    connection_unref(connection);
    struct pv_error error = {0};
    if (console_attach_client(console, buffer, force, &error) < 0)
        pv_log_warning("api: console: %s", error.message);
}

static void dispatch(struct api_connection *connection, const char *method, yajl_val params,
                     const char *id_json)
{
    struct api_server *server = connection->server;
    const struct method *known = NULL;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strcmp(methods[i].name, method) == 0)
            known = &methods[i];
    if (known == NULL) {
        char message[256];
        snprintf(message, sizeof(message), "unknown method '%.100s'", method);
        send_error(connection, id_json, "invalid-argument", message, NULL, NULL);
        return;
    }
    if (connection->read_only && !known->read_only) {
        char message[256];
        snprintf(message, sizeof(message),
                 "'%s' is not allowed on the read-only socket: use the read-write socket", method);
        send_error(connection, id_json, "permission-denied", message, NULL, NULL);
        return;
    }
    if (strcmp(method, "daemon.ping") == 0) {
        send_result(connection, id_json, "{\"version\": \"" PLUGVIRT_VERSION "\"}");
        return;
    }
    if (strcmp(method, "events.subscribe") == 0) {
        const char *domain = json_get_string(params, "domain");
        free(connection->subscribed_domain);
        connection->subscribed_domain = domain ? strdup(domain) : NULL;
        connection->subscribed = true;
        send_result(connection, id_json, "{\"subscribed\": true}");
        return;
    }
    if (server->domains == NULL) {
        send_error(connection, id_json, "internal", "the daemon is still starting", NULL, NULL);
        return;
    }
    if (strcmp(method, "domain.console") == 0) {
        start_console(connection, params, id_json);
        return;
    }
    struct api_request *request = calloc(1, sizeof(*request));
    if (request == NULL || (id_json && (request->id_json = strdup(id_json)) == NULL)) {
        free(request);
        send_error(connection, id_json, "internal", "out of memory", NULL, NULL);
        return;
    }
    request->connection = connection;
    connection->references++;
    struct domains *domains = server->domains;
    const char *domain = json_get_string(params, "domain");
    if (strcmp(method, "domain.define") == 0) {
        domains_define(domains, json_get_string(params, "xml"), on_request_done, request);
    } else if (strcmp(method, "domain.undefine") == 0) {
        domains_undefine(domains, domain, param_bool(params, "managed"), on_request_done, request);
    } else if (strcmp(method, "domain.start") == 0) {
        domains_start(domains, domain, on_request_done, request);
    } else if (strcmp(method, "domain.destroy") == 0) {
        domains_destroy(domains, domain, on_request_done, request);
    } else if (strcmp(method, "domain.shutdown") == 0) {
        double timeout = -1;
        bool has_timeout = json_get_double(params, "timeout", &timeout);
        int timeout_s = -1;
        if (has_timeout)
            timeout_s = timeout < 0 ? 0 : (int)ceil(timeout);
        else if (param_bool(params, "wait"))
            timeout_s = 30;
        domains_shutdown(domains, domain, timeout_s, on_request_done, request);
    } else if (strcmp(method, "domain.reboot") == 0) {
        domains_reboot(domains, domain, on_request_done, request);
    } else if (strcmp(method, "domain.suspend") == 0) {
        domains_suspend(domains, domain, on_request_done, request);
    } else if (strcmp(method, "domain.resume") == 0) {
        domains_resume(domains, domain, on_request_done, request);
    } else if (strcmp(method, "domain.list") == 0) {
        domains_list(domains, param_bool(params, "all"), on_request_done, request);
    } else if (strcmp(method, "domain.info") == 0) {
        domains_info(domains, domain, on_request_done, request);
    } else if (strcmp(method, "domain.state") == 0) {
        domains_state(domains, domain, on_request_done, request);
    } else if (strcmp(method, "domain.xml") == 0) {
        domains_xml(domains, domain, param_bool(params, "inactive"), on_request_done, request);
    } else if (strcmp(method, "domain.blklist") == 0) {
        domains_blklist(domains, domain, param_bool(params, "inactive"), on_request_done, request);
    } else if (strcmp(method, "domain.iflist") == 0) {
        domains_iflist(domains, domain, param_bool(params, "inactive"), on_request_done, request);
    } else if (strcmp(method, "domain.ifstat") == 0) {
        domains_ifstat(domains, domain, json_get_string(params, "interface"), on_request_done,
                       request);
    } else if (strcmp(method, "domain.set_link") == 0) {
        unsigned flags = 0;
        bool persistent = false;
        char message[256] = "'flags' must be an array of strings";
        if (parse_flags(params, &flags, &persistent, message, sizeof(message)) < 0) {
            struct domains_result result = {.code = "invalid-argument", .message = message};
            on_request_done(request, &result);
            return;
        }
        if (persistent) /* virsh domif-setlink: --persistent is an alias of --config */
            flags |= DOMAINS_FLAG_CONFIG;
        domains_set_link(domains, domain, json_get_string(params, "interface"),
                         json_get_string(params, "state"), flags, on_request_done, request);
    } else if (strcmp(method, "domain.set_autostart") == 0) {
        bool enabled = true;
        if (json_object_get(params, "enabled") && !json_get_bool(params, "enabled", &enabled)) {
            struct domains_result result = {.code = "invalid-argument",
                                            .message = "'enabled' must be a boolean"};
            on_request_done(request, &result);
            return;
        }
        domains_set_autostart(domains, domain, enabled, on_request_done, request);
    } else if (strcmp(method, "domain.attach_device") == 0 ||
               strcmp(method, "domain.detach_device") == 0) {
        unsigned flags = 0;
        bool persistent = false;
        char message[256] = "'flags' must be an array of strings";
        if (parse_flags(params, &flags, &persistent, message, sizeof(message)) < 0) {
            struct domains_result result = {.code = "invalid-argument", .message = message};
            on_request_done(request, &result);
            return;
        }
        /* virsh --persistent: --config, plus --live when the domain is running. */
        if (persistent)
            flags |= DOMAINS_FLAG_CONFIG | DOMAINS_FLAG_LIVE_IF_RUNNING;
        const char *xml = json_get_string(params, "xml");
        if (strcmp(method, "domain.attach_device") == 0) {
            domains_attach_device(domains, domain, xml, flags, on_request_done, request);
        } else {
            double timeout = -1;
            int timeout_ms = -1;
            if (json_get_double(params, "timeout", &timeout) && timeout >= 0)
                timeout_ms = (int)(timeout * 1000.0);
            domains_detach_device(domains, domain, xml, flags, timeout_ms, on_request_done,
                                  request);
        }
    } else if (strcmp(method, "domain.qemu_monitor_command") == 0) {
        domains_monitor_command(domains, domain, json_get_string(params, "command"),
                                param_bool(params, "hmp"), on_request_done, request);
    } else {
        struct domains_result result = {.code = "internal", .message = "method not wired"};
        on_request_done(request, &result);
    }
}

static void handle_line(struct api_connection *connection, const char *line, size_t length)
{
    while (length > 0 && (line[length - 1] == '\r' || line[length - 1] == ' '))
        length--;
    if (length == 0)
        return;
    struct pv_error error = {0};
    yajl_val root = json_parse(line, length, API_SERVER_MAX_REQUEST, 64, &error);
    if (root == NULL || !YAJL_IS_OBJECT(root)) {
        char message[700];
        snprintf(message, sizeof(message), "invalid request: %s",
                 root ? "not a JSON object" : error.message);
        send_error(connection, NULL, "invalid-argument", message, NULL, NULL);
        if (root)
            yajl_tree_free(root);
        return;
    }
    char *id_json = NULL;
    yajl_val id = json_object_get(root, "id");
    if (id) {
        struct json_writer writer;
        json_writer_init(&writer, false);
        json_writer_value(&writer, id);
        id_json = json_writer_steal(&writer);
    }
    const char *method = json_get_string(root, "method");
    yajl_val params = json_object_get(root, "params");
    if (method == NULL) {
        send_error(connection, id_json, "invalid-argument", "missing member 'method'", NULL, NULL);
    } else if (params && !YAJL_IS_OBJECT(params)) {
        send_error(connection, id_json, "invalid-argument", "'params' must be an object", NULL,
                   NULL);
    } else {
        dispatch(connection, method, params, id_json);
    }
    free(id_json);
    yajl_tree_free(root);
}

/* Drops input up to the end of the over-long line; the connection then closes once its
 * error reply is flushed. A peer that never ends the line is cut off after
 * API_SERVER_MAX_DISCARD bytes. */
static void discard_rest_of_line(struct api_connection *connection, struct evbuffer *input)
{
    struct evbuffer_ptr end = evbuffer_search_eol(input, NULL, NULL, EVBUFFER_EOL_LF);
    size_t drop = end.pos >= 0 ? (size_t)end.pos + 1 : evbuffer_get_length(input);
    evbuffer_drain(input, drop);
    connection->discarded += drop;
    if (end.pos < 0 && connection->discarded <= API_SERVER_MAX_DISCARD)
        return;
    connection->discarding = false;
    connection->close_when_flushed = true;
    bufferevent_disable(connection->buffer, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(connection->buffer)) == 0)
        connection_close(connection);
}

static void on_read(struct bufferevent *buffer, void *opaque)
{
    struct api_connection *connection = opaque;
    struct evbuffer *input = bufferevent_get_input(buffer);
    connection->references++; /* a reply may close it while we loop */
    while (!connection->closed && !connection->close_when_flushed) {
        if (connection->discarding) {
            discard_rest_of_line(connection, input);
            break;
        }
        size_t length = 0;
        char *line = evbuffer_readln(input, &length, EVBUFFER_EOL_LF);
        if (line == NULL) {
            if (evbuffer_get_length(input) > API_SERVER_MAX_REQUEST) {
                char message[128];
                snprintf(message, sizeof(message),
                         "request line too long (more than %u bytes); closing the connection",
                         (unsigned)API_SERVER_MAX_REQUEST);
                send_error(connection, NULL, "invalid-argument", message, NULL, NULL);
                connection->discarding = true;
                continue;
            }
            break;
        }
        handle_line(connection, line, length);
        free(line);
    }
    connection_unref(connection);
}

static void on_write(struct bufferevent *buffer, void *opaque)
{
    struct api_connection *connection = opaque;
    if (connection->close_when_flushed && evbuffer_get_length(bufferevent_get_output(buffer)) == 0)
        connection_close(connection);
}

static void on_buffer_event(struct bufferevent *buffer, short what, void *opaque)
{
    struct api_connection *connection = opaque;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        connection_close(connection);
}

static void accept_connection(struct api_server *server, evutil_socket_t fd, bool read_only)
{
    struct ucred credentials = {0};
    socklen_t length = sizeof(credentials);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) < 0) {
        pv_log_warning("api: SO_PEERCRED: %s", strerror(errno));
        close(fd);
        return;
    }
    struct api_connection *connection = calloc(1, sizeof(*connection));
    struct bufferevent *buffer =
        connection ? bufferevent_socket_new(server->base, fd, BEV_OPT_CLOSE_ON_FREE) : NULL;
    if (buffer == NULL) {
        free(connection);
        close(fd);
        return;
    }
    connection->server = server;
    connection->buffer = buffer;
    connection->read_only = read_only;
    connection->uid = credentials.uid;
    connection->pid = credentials.pid;
    connection->references = 1;
    connection->next = server->connections;
    if (server->connections)
        server->connections->previous = connection;
    server->connections = connection;
    bufferevent_setcb(buffer, on_read, on_write, on_buffer_event, connection);
    bufferevent_enable(buffer, EV_READ | EV_WRITE);
    pv_log_debug("api: client pid %d uid %d on the %s socket", (int)credentials.pid,
                 (int)credentials.uid, read_only ? "read-only" : "read-write");
    /* The socket's mode already keeps others out; the check covers a socket handed over by
     * systemd with a looser mode. */
    if (!read_only && credentials.uid != 0 && credentials.uid != geteuid()) {
        send_error(connection, NULL, "permission-denied",
                   "the read-write socket is for root and the daemon's user only", NULL, NULL);
        connection->close_when_flushed = true;
        bufferevent_disable(buffer, EV_READ);
    }
}

static void on_accept_read_write(struct evconnlistener *listener, evutil_socket_t fd,
                                 struct sockaddr *address, int length, void *opaque)
{
    accept_connection(opaque, fd, false);
}

static void on_accept_read_only(struct evconnlistener *listener, evutil_socket_t fd,
                                struct sockaddr *address, int length, void *opaque)
{
    accept_connection(opaque, fd, true);
}

static void on_accept_error(struct evconnlistener *listener, void *opaque)
{
    pv_log_warning("api: accept: %s", strerror(errno));
}

static struct evconnlistener *listen_on(struct api_server *server, int fd,
                                        evconnlistener_cb callback)
{
    evutil_make_socket_nonblocking(fd);
    evutil_make_socket_closeonexec(fd);
    struct evconnlistener *listener =
        evconnlistener_new(server->base, callback, server, LEV_OPT_CLOSE_ON_FREE, 0, fd);
    if (listener)
        evconnlistener_set_error_cb(listener, on_accept_error);
    return listener;
}

struct api_server *api_server_create(struct event_base *base, int read_write_fd, int read_only_fd,
                                     struct pv_error *error)
{
    struct api_server *server = calloc(1, sizeof(*server));
    if (server == NULL) {
        pv_error_set(error, -ENOMEM, "out of memory");
        return NULL;
    }
    server->base = base;
    if (read_write_fd >= 0) {
        server->read_write_listener = listen_on(server, read_write_fd, on_accept_read_write);
        if (server->read_write_listener == NULL)
            goto fail;
    }
    if (read_only_fd >= 0) {
        server->read_only_listener = listen_on(server, read_only_fd, on_accept_read_only);
        if (server->read_only_listener == NULL)
            goto fail;
    }
    return server;
fail:
    pv_error_set(error, -ENOMEM, "cannot listen on the API sockets");
    api_server_free(server);
    return NULL;
}

void api_server_set_domains(struct api_server *server, struct domains *domains)
{
    server->domains = domains;
}

void api_server_free(struct api_server *server)
{
    if (server == NULL)
        return;
    if (server->read_write_listener)
        evconnlistener_free(server->read_write_listener);
    if (server->read_only_listener)
        evconnlistener_free(server->read_only_listener);
    while (server->connections)
        connection_close(server->connections);
    free(server);
}

void api_server_broadcast_event(void *opaque, const char *type, const char *domain_name,
                                const char *uuid, const char *detail)
{
    struct api_server *server = opaque;
    struct timeval now;
    gettimeofday(&now, NULL);
    struct json_writer writer;
    json_writer_init(&writer, false);
    json_writer_begin_object(&writer);
    json_writer_member_string(&writer, "event", type);
    json_writer_member_string(&writer, "domain", domain_name ? domain_name : "");
    json_writer_member_string(&writer, "uuid", uuid ? uuid : "");
    json_writer_member_string(&writer, "detail", detail ? detail : "");
    json_writer_key(&writer, "timestamp");
    json_writer_double(&writer, (double)now.tv_sec + (double)now.tv_usec / 1e6);
    json_writer_end_object(&writer);
    const char *text = json_writer_text(&writer);
    struct api_connection *connection = server->connections;
    while (connection) {
        struct api_connection *next = connection->next; /* send may drop it */
        const char *filter = connection->subscribed_domain;
        if (connection->subscribed &&
            (filter == NULL || (domain_name && strcmp(filter, domain_name) == 0) ||
             (uuid && strcasecmp(filter, uuid) == 0)))
            connection_send(connection, text);
        connection = next;
    }
    json_writer_free(&writer);
}

int api_server_listen_unix(const char *path, unsigned mode, struct pv_error *error)
{
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(address.sun_path))
        return pv_error_set(error, -ENAMETOOLONG, "socket path too long: %s", path);
    strcpy(address.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return pv_error_set_errno(error, -errno, "socket");
    struct stat status;
    if (lstat(path, &status) == 0 && S_ISSOCK(status.st_mode))
        unlink(path); /* stale: the pidfile lock proved no other daemon runs */
    if (bind(fd, (struct sockaddr *)&address, sizeof(address)) < 0) {
        int rc = pv_error_set_errno(error, -errno, "cannot bind %s", path);
        close(fd);
        return rc;
    }
    if (chmod(path, mode) < 0 || listen(fd, 128) < 0) {
        int rc = pv_error_set_errno(error, -errno, "cannot listen on %s", path);
        close(fd);
        unlink(path);
        return rc;
    }
    return fd;
}

/* A scripted QMP server for unit tests: see fake_qmp_peer.h. */
#include "fake_qmp_peer.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "json_util.h"
#include "qmp_codec.h"

#define FAKE_QMP_MAX_OBJECTS 64
#define FAKE_QMP_MAX_FAULTS 64
#define FAKE_QMP_MAX_COMMANDS 512

struct fake_node {
    char name[96];
    char child[96];
};

struct fake_device {
    char id[96];
    char drive[96];
    bool deleting; /* device_del received, the guest has not released it */
};

struct fake_fault {
    bool by_index;
    size_t index;
    char command[64];
    enum fake_qmp_fault fault;
    char error_class[64];
    char desc[256];
    bool used;
};

struct fake_reply {
    char command[64];
    char *return_json;
};

struct fake_record {
    char *command;
    char *arguments;
    char summary[160];
};

struct fake_qmp_peer {
    struct event_base *base;
    char socket_path[108];
    struct evconnlistener *listener;
    struct bufferevent *client;
    bool negotiated;
    struct qmp_stream stream;
    size_t connection_count;
    bool auto_release;

    struct fake_node nodes[FAKE_QMP_MAX_OBJECTS];
    size_t node_count;
    struct fake_device devices[FAKE_QMP_MAX_OBJECTS];
    size_t device_count;
    struct fake_fault faults[FAKE_QMP_MAX_FAULTS];
    size_t fault_count;
    struct fake_reply replies[16];
    size_t reply_count;
    struct fake_record records[FAKE_QMP_MAX_COMMANDS];
    size_t record_count;
};

static void send_text(struct fake_qmp_peer *peer, const char *text)
{
    if (peer->client && text)
        bufferevent_write(peer->client, text, strlen(text));
}

static void send_return(struct fake_qmp_peer *peer, const char *return_json, yajl_val id)
{
    struct json_writer out;
    json_writer_init(&out, false);
    qmp_format_return(&out, return_json, id);
    send_text(peer, json_writer_text(&out));
    json_writer_free(&out);
}

/* The class is written as given (tests use classes qmp_codec has no enum for, too). */
static void send_error(struct fake_qmp_peer *peer, const char *error_class, const char *desc,
                       yajl_val id)
{
    struct json_writer out;
    json_writer_init(&out, false);
    json_writer_begin_object(&out);
    if (id) {
        json_writer_key(&out, "id");
        json_writer_value(&out, id);
    }
    json_writer_key(&out, "error");
    json_writer_begin_object(&out);
    json_writer_member_string(&out, "class", error_class);
    json_writer_member_string(&out, "desc", desc);
    json_writer_end_object(&out);
    json_writer_end_object(&out);
    json_writer_append_raw(&out, "\r\n", 2);
    send_text(peer, json_writer_text(&out));
    json_writer_free(&out);
}

void fake_qmp_peer_emit_event(struct fake_qmp_peer *peer, const char *event_name,
                              const char *data_json)
{
    struct json_writer out;
    json_writer_init(&out, false);
    qmp_format_event_now(&out, event_name, data_json);
    send_text(peer, json_writer_text(&out));
    json_writer_free(&out);
}

static struct fake_node *find_node(struct fake_qmp_peer *peer, const char *name)
{
    for (size_t i = 0; name && i < peer->node_count; i++)
        if (!strcmp(peer->nodes[i].name, name))
            return &peer->nodes[i];
    return NULL;
}

static struct fake_device *find_device(struct fake_qmp_peer *peer, const char *id)
{
    for (size_t i = 0; id && i < peer->device_count; i++)
        if (!strcmp(peer->devices[i].id, id))
            return &peer->devices[i];
    return NULL;
}

void fake_qmp_peer_add_node(struct fake_qmp_peer *peer, const char *node_name,
                            const char *child_node_name)
{
    if (peer->node_count == FAKE_QMP_MAX_OBJECTS)
        return;
    struct fake_node *node = &peer->nodes[peer->node_count++];
    snprintf(node->name, sizeof(node->name), "%s", node_name);
    snprintf(node->child, sizeof(node->child), "%s", child_node_name ? child_node_name : "");
}

void fake_qmp_peer_add_device(struct fake_qmp_peer *peer, const char *id, const char *drive)
{
    if (peer->device_count == FAKE_QMP_MAX_OBJECTS)
        return;
    struct fake_device *device = &peer->devices[peer->device_count++];
    memset(device, 0, sizeof(*device));
    snprintf(device->id, sizeof(device->id), "%s", id);
    snprintf(device->drive, sizeof(device->drive), "%s", drive ? drive : "");
}

static void remove_device(struct fake_qmp_peer *peer, struct fake_device *device)
{
    size_t index = (size_t)(device - peer->devices);
    memmove(&peer->devices[index], &peer->devices[index + 1],
            (peer->device_count - index - 1) * sizeof(*device));
    peer->device_count--;
}

bool fake_qmp_peer_release(struct fake_qmp_peer *peer, const char *device_id)
{
    struct fake_device *device = find_device(peer, device_id);
    if (!device)
        return false;
    char data[256];
    snprintf(data, sizeof(data), "{\"device\": \"%s\", \"path\": \"/machine/peripheral/%s\"}",
             device->id, device->id);
    remove_device(peer, device);
    fake_qmp_peer_emit_event(peer, "DEVICE_DELETED", data);
    return true;
}

static bool node_in_use(struct fake_qmp_peer *peer, const char *name)
{
    for (size_t i = 0; i < peer->node_count; i++)
        if (!strcmp(peer->nodes[i].child, name))
            return true;
    for (size_t i = 0; i < peer->device_count; i++)
        if (!strcmp(peer->devices[i].drive, name))
            return true;
    return false;
}

/* Applies a command to the model; fills the error or the return value. */
static bool model_apply(struct fake_qmp_peer *peer, const char *command, yajl_val arguments,
                        char *error_class, char *desc, size_t desc_size, const char **return_json,
                        char *released_device /* set when device_del released at once */)
{
    *return_json = "{}";
    if (!strcmp(command, "blockdev-add")) {
        const char *name = json_get_string(arguments, "node-name");
        const char *file = json_get_string(arguments, "file");
        if (!name) {
            snprintf(desc, desc_size, "Parameter 'node-name' is missing");
        } else if (find_node(peer, name)) {
            snprintf(desc, desc_size, "Duplicate nodes with node-name='%s'", name);
        } else if (file && !find_node(peer, file)) {
            snprintf(desc, desc_size, "Cannot find device='' nor node-name='%s'", file);
        } else {
            fake_qmp_peer_add_node(peer, name, file);
            return true;
        }
    } else if (!strcmp(command, "blockdev-del")) {
        const char *name = json_get_string(arguments, "node-name");
        struct fake_node *node = find_node(peer, name);
        if (!node) {
            snprintf(desc, desc_size, "Failed to find node with node-name='%s'", name ? name : "");
        } else if (node_in_use(peer, name)) {
            snprintf(desc, desc_size, "Node '%s' is busy: node is used as backing hd", name);
        } else {
            size_t index = (size_t)(node - peer->nodes);
            memmove(&peer->nodes[index], &peer->nodes[index + 1],
                    (peer->node_count - index - 1) * sizeof(*node));
            peer->node_count--;
            return true;
        }
    } else if (!strcmp(command, "device_add")) {
        const char *id = json_get_string(arguments, "id");
        const char *drive = json_get_string(arguments, "drive");
        if (id && find_device(peer, id)) {
            snprintf(desc, desc_size, "Duplicate device ID '%s' for device", id);
        } else if (drive && !find_node(peer, drive)) {
            snprintf(desc, desc_size, "Property 'virtio-blk-device.drive' can't find value '%s'",
                     drive);
        } else {
            fake_qmp_peer_add_device(peer, id ? id : "", drive);
            return true;
        }
    } else if (!strcmp(command, "device_del")) {
        const char *id = json_get_string(arguments, "id");
        struct fake_device *device = find_device(peer, id);
        if (!device) {
            snprintf(error_class, 64, "DeviceNotFound");
            snprintf(desc, desc_size, "Device '%s' not found", id ? id : "");
            return false;
        }
        device->deleting = true;
        if (peer->auto_release)
            snprintf(released_device, 96, "%s", device->id);
        return true;
    } else if (!strcmp(command, "query-pci") || !strcmp(command, "query-named-block-nodes")) {
        return true; /* formatted by the caller */
    } else {
        for (size_t i = 0; i < peer->reply_count; i++)
            if (!strcmp(peer->replies[i].command, command)) {
                *return_json = peer->replies[i].return_json;
                return true;
            }
        snprintf(error_class, 64, "CommandNotFound");
        snprintf(desc, desc_size, "The command %s has not been found", command);
        return false;
    }
    snprintf(error_class, 64, "GenericError");
    return false;
}

static char *format_query(struct fake_qmp_peer *peer, const char *command)
{
    struct json_writer out;
    json_writer_init(&out, false);
    json_writer_begin_array(&out);
    if (!strcmp(command, "query-pci")) {
        json_writer_begin_object(&out);
        json_writer_member_int(&out, "bus", 0);
        json_writer_key(&out, "devices");
        json_writer_begin_array(&out);
        for (size_t i = 0; i < peer->device_count; i++) {
            json_writer_begin_object(&out);
            json_writer_member_int(&out, "bus", 0);
            json_writer_member_uint(&out, "slot", 3 + i);
            json_writer_member_int(&out, "function", 0);
            json_writer_member_string(&out, "qdev_id", peer->devices[i].id);
            json_writer_end_object(&out);
        }
        json_writer_end_array(&out);
        json_writer_end_object(&out);
    } else {
        for (size_t i = 0; i < peer->node_count; i++) {
            json_writer_begin_object(&out);
            json_writer_member_string(&out, "node-name", peer->nodes[i].name);
            json_writer_member_string(&out, "drv", peer->nodes[i].child[0] ? "raw" : "file");
            json_writer_end_object(&out);
        }
    }
    json_writer_end_array(&out);
    char *text = json_writer_steal(&out);
    json_writer_free(&out);
    return text;
}

static struct fake_fault *take_fault(struct fake_qmp_peer *peer, size_t index, const char *command)
{
    for (size_t i = 0; i < peer->fault_count; i++) {
        struct fake_fault *fault = &peer->faults[i];
        if (fault->used)
            continue;
        if ((fault->by_index && fault->index == index) ||
            (!fault->by_index && !strcmp(fault->command, command))) {
            fault->used = true;
            return fault;
        }
    }
    return NULL;
}

static void record_command(struct fake_qmp_peer *peer, const char *command, yajl_val arguments)
{
    if (peer->record_count == FAKE_QMP_MAX_COMMANDS)
        return;
    struct fake_record *record = &peer->records[peer->record_count++];
    record->command = strdup(command);
    struct json_writer out;
    json_writer_init(&out, false);
    if (arguments)
        json_writer_value(&out, arguments);
    else
        json_writer_json(&out, "{}");
    record->arguments = json_writer_steal(&out);
    json_writer_free(&out);
    const char *name = json_get_string(arguments, "node-name");
    if (!name)
        name = json_get_string(arguments, "id");
    snprintf(record->summary, sizeof(record->summary), "%s%s%s", command, name ? " " : "",
             name ? name : "");
}

static void handle_request(struct fake_qmp_peer *peer, const char *text, size_t length)
{
    struct qmp_request request;
    struct qmp_error parse_error = {0};
    if (qmp_request_parse(text, length, false, &request, &parse_error) < 0) {
        send_error(peer, "GenericError", parse_error.desc, request.id);
        qmp_request_free(&request);
        return;
    }
    if (!peer->negotiated) {
        if (!strcmp(request.command, "qmp_capabilities")) {
            peer->negotiated = true;
            send_return(peer, NULL, request.id);
        } else {
            send_error(peer, "CommandNotFound",
                       "Expecting capabilities negotiation with 'qmp_capabilities'", request.id);
        }
        qmp_request_free(&request);
        return;
    }
    size_t index = peer->record_count;
    record_command(peer, request.command, request.arguments);
    struct fake_fault *fault = take_fault(peer, index, request.command);
    if (fault && fault->fault == FAKE_QMP_CLOSE) {
        qmp_request_free(&request);
        fake_qmp_peer_disconnect(peer);
        return;
    }
    if (fault && fault->fault == FAKE_QMP_REPLY_ERROR) {
        send_error(peer, fault->error_class, fault->desc, request.id);
        qmp_request_free(&request);
        return;
    }
    if (fault && fault->fault == FAKE_QMP_NO_REPLY) {
        qmp_request_free(&request);
        return;
    }
    char error_class[64] = "", desc[256] = "", released[96] = "";
    const char *return_json = NULL;
    bool ok = model_apply(peer, request.command, request.arguments, error_class, desc, sizeof(desc),
                          &return_json, released);
    if (!fault) {
        if (!ok) {
            send_error(peer, error_class, desc, request.id);
        } else if (!strcmp(request.command, "query-pci") ||
                   !strcmp(request.command, "query-named-block-nodes")) {
            char *result = format_query(peer, request.command);
            send_return(peer, result, request.id);
            free(result);
        } else {
            send_return(peer, return_json, request.id);
        }
    }
    if (released[0])
        fake_qmp_peer_release(peer, released);
    qmp_request_free(&request);
}

static void on_stream_message(void *opaque, const char *message, size_t length, const char *error)
{
    if (message)
        handle_request(opaque, message, length);
}

static void on_client_read(struct bufferevent *client, void *opaque)
{
    struct fake_qmp_peer *peer = opaque;
    struct evbuffer *input = bufferevent_get_input(client);
    char chunk[4096];
    int length;
    while (peer->client == client && (length = evbuffer_remove(input, chunk, sizeof(chunk))) > 0)
        qmp_stream_feed(&peer->stream, chunk, (size_t)length);
}

static void on_client_event(struct bufferevent *client, short events, void *opaque)
{
    struct fake_qmp_peer *peer = opaque;
    if ((events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) && peer->client == client)
        fake_qmp_peer_disconnect(peer);
}

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *address,
                      int address_length, void *opaque)
{
    struct fake_qmp_peer *peer = opaque;
    fake_qmp_peer_disconnect(peer); /* one client at a time, like a QEMU monitor */
    peer->client = bufferevent_socket_new(peer->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!peer->client) {
        close(fd);
        return;
    }
    peer->connection_count++;
    peer->negotiated = false;
    qmp_stream_reset(&peer->stream);
    bufferevent_setcb(peer->client, on_client_read, NULL, on_client_event, peer);
    bufferevent_enable(peer->client, EV_READ | EV_WRITE);
    struct json_writer out;
    json_writer_init(&out, false);
    qmp_format_greeting(&out, 8, 2, 0, "fake", false);
    send_text(peer, json_writer_text(&out));
    json_writer_free(&out);
}

struct fake_qmp_peer *fake_qmp_peer_create(struct event_base *base, const char *directory,
                                           bool start_listening)
{
    struct fake_qmp_peer *peer = calloc(1, sizeof(*peer));
    if (!peer)
        return NULL;
    peer->base = base;
    peer->auto_release = true;
    snprintf(peer->socket_path, sizeof(peer->socket_path), "%s/qmp.sock", directory);
    qmp_stream_init(&peer->stream, QMP_MAX_MESSAGE_SIZE, on_stream_message, peer);
    if (start_listening && fake_qmp_peer_listen(peer) < 0) {
        fake_qmp_peer_destroy(peer);
        return NULL;
    }
    return peer;
}

int fake_qmp_peer_listen(struct fake_qmp_peer *peer)
{
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    snprintf(address.sun_path, sizeof(address.sun_path), "%s", peer->socket_path);
    unlink(peer->socket_path);
    peer->listener = evconnlistener_new_bind(peer->base, on_accept, peer,
                                             LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 4,
                                             (struct sockaddr *)&address, sizeof(address));
    return peer->listener ? 0 : -errno;
}

void fake_qmp_peer_disconnect(struct fake_qmp_peer *peer)
{
    if (peer->client) {
        bufferevent_free(peer->client);
        peer->client = NULL;
    }
}

void fake_qmp_peer_destroy(struct fake_qmp_peer *peer)
{
    if (!peer)
        return;
    fake_qmp_peer_disconnect(peer);
    if (peer->listener)
        evconnlistener_free(peer->listener);
    unlink(peer->socket_path);
    qmp_stream_destroy(&peer->stream);
    for (size_t i = 0; i < peer->record_count; i++) {
        free(peer->records[i].command);
        free(peer->records[i].arguments);
    }
    for (size_t i = 0; i < peer->reply_count; i++)
        free(peer->replies[i].return_json);
    free(peer);
}

const char *fake_qmp_peer_socket_path(const struct fake_qmp_peer *peer)
{
    return peer->socket_path;
}

static void add_fault(struct fake_qmp_peer *peer, struct fake_fault fault, const char *error_class,
                      const char *desc)
{
    if (peer->fault_count == FAKE_QMP_MAX_FAULTS)
        return;
    snprintf(fault.error_class, sizeof(fault.error_class), "%s",
             error_class ? error_class : "GenericError");
    snprintf(fault.desc, sizeof(fault.desc), "%s", desc ? desc : "injected failure");
    peer->faults[peer->fault_count++] = fault;
}

void fake_qmp_peer_fault_at(struct fake_qmp_peer *peer, size_t index, enum fake_qmp_fault fault,
                            const char *error_class, const char *desc)
{
    add_fault(peer, (struct fake_fault){.by_index = true, .index = index, .fault = fault},
              error_class, desc);
}

void fake_qmp_peer_fault_next(struct fake_qmp_peer *peer, const char *command,
                              enum fake_qmp_fault fault, const char *error_class, const char *desc)
{
    struct fake_fault entry = {.fault = fault};
    snprintf(entry.command, sizeof(entry.command), "%s", command);
    add_fault(peer, entry, error_class, desc);
}

void fake_qmp_peer_set_reply(struct fake_qmp_peer *peer, const char *command,
                             const char *return_json)
{
    if (peer->reply_count == sizeof(peer->replies) / sizeof(peer->replies[0]))
        return;
    struct fake_reply *reply = &peer->replies[peer->reply_count++];
    snprintf(reply->command, sizeof(reply->command), "%s", command);
    reply->return_json = strdup(return_json);
}

void fake_qmp_peer_set_auto_release(struct fake_qmp_peer *peer, bool auto_release)
{
    peer->auto_release = auto_release;
}

bool fake_qmp_peer_has_node(const struct fake_qmp_peer *peer, const char *node_name)
{
    return find_node((struct fake_qmp_peer *)peer, node_name) != NULL;
}

bool fake_qmp_peer_has_device(const struct fake_qmp_peer *peer, const char *id)
{
    return find_device((struct fake_qmp_peer *)peer, id) != NULL;
}

size_t fake_qmp_peer_node_count(const struct fake_qmp_peer *peer)
{
    return peer->node_count;
}

size_t fake_qmp_peer_device_count(const struct fake_qmp_peer *peer)
{
    return peer->device_count;
}

size_t fake_qmp_peer_command_count(const struct fake_qmp_peer *peer)
{
    return peer->record_count;
}

const char *fake_qmp_peer_command(const struct fake_qmp_peer *peer, size_t index)
{
    return index < peer->record_count ? peer->records[index].command : NULL;
}

const char *fake_qmp_peer_arguments(const struct fake_qmp_peer *peer, size_t index)
{
    return index < peer->record_count ? peer->records[index].arguments : NULL;
}

const char *fake_qmp_peer_summary(const struct fake_qmp_peer *peer, size_t index)
{
    return index < peer->record_count ? peer->records[index].summary : NULL;
}

size_t fake_qmp_peer_connection_count(const struct fake_qmp_peer *peer)
{
    return peer->connection_count;
}

static void on_run_guard(evutil_socket_t fd, short what, void *opaque)
{
    *(bool *)opaque = true;
}

bool fake_qmp_run_until(struct event_base *base, int *counter, int target, int timeout_ms)
{
    bool expired = false;
    struct event *guard = evtimer_new(base, on_run_guard, &expired);
    struct timeval delay = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(guard, &delay);
    while (*counter < target && !expired)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(guard);
    return *counter >= target;
}

/* The asynchronous QMP client against the scripted fake peer. */
#include <criterion/criterion.h>
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_qmp_peer.h"
#include "qmp_connection.h"

static struct event_base *base;
static struct fake_qmp_peer *peer;
static char directory[64];

struct observed {
    int ready_calls, ready_status, closed_calls, event_calls;
    char event_name[64], event_data[256];
};

struct reply_record {
    int calls, status;
    char return_json[256], error_class[64], error_desc[256];
    int order; /* position among all replies */
};
static int reply_counter;

static void on_ready(void *opaque, int status, const char *message)
{
    struct observed *observed = opaque;
    observed->ready_calls++;
    observed->ready_status = status;
}

static void on_event(void *opaque, const char *name, const char *data)
{
    struct observed *observed = opaque;
    observed->event_calls++;
    snprintf(observed->event_name, sizeof(observed->event_name), "%s", name);
    snprintf(observed->event_data, sizeof(observed->event_data), "%s", data);
}

static void on_closed(void *opaque)
{
    struct observed *observed = opaque;
    observed->closed_calls++;
}

static void on_reply(void *opaque, const struct qmp_connection_reply *reply)
{
    struct reply_record *record = opaque;
    record->calls++;
    record->status = reply->status;
    record->order = ++reply_counter;
    snprintf(record->return_json, sizeof(record->return_json), "%s",
             reply->return_json ? reply->return_json : "");
    snprintf(record->error_class, sizeof(record->error_class), "%s",
             reply->error_class ? reply->error_class : "");
    snprintf(record->error_desc, sizeof(record->error_desc), "%s",
             reply->error_desc ? reply->error_desc : "");
}

static bool run_until(int *counter, int target, int timeout_ms)
{
    return fake_qmp_run_until(base, counter, target, timeout_ms);
}

static void setup(void)
{
    snprintf(directory, sizeof(directory), "/tmp/qmpconn-XXXXXX");
    cr_assert_not_null(mkdtemp(directory));
    base = event_base_new();
    peer = fake_qmp_peer_create(base, directory, true);
    cr_assert_not_null(peer);
    reply_counter = 0;
}

static void teardown(void)
{
    fake_qmp_peer_destroy(peer);
    event_base_free(base);
    rmdir(directory);
}

static struct qmp_connection *open_ready(struct observed *observed)
{
    struct qmp_connection_callbacks callbacks = {on_ready, on_event, on_closed, observed};
    struct pv_error error = {0};
    struct qmp_connection *connection =
        qmp_connection_open(base, fake_qmp_peer_socket_path(peer), 2000, &callbacks, &error);
    cr_assert_not_null(connection, "%s", error.message);
    cr_assert(run_until(&observed->ready_calls, 1, 3000));
    cr_assert_eq(observed->ready_status, 0);
    cr_assert(qmp_connection_is_ready(connection));
    return connection;
}

TestSuite(qmp_connection, .init = setup, .fini = teardown, .timeout = 20);

Test(qmp_connection, replies_come_back_in_order_with_values_and_errors)
{
    struct observed observed = {0};
    fake_qmp_peer_set_reply(peer, "query-status", "{\"status\": \"running\", \"running\": true}");
    struct qmp_connection_callbacks callbacks = {on_ready, on_event, on_closed, &observed};
    struct qmp_connection *connection =
        qmp_connection_open(base, fake_qmp_peer_socket_path(peer), 2000, &callbacks, NULL);
    /* queued before the handshake finished */
    struct reply_record first = {0}, second = {0}, third = {0};
    cr_assert_eq(
        qmp_connection_execute(connection, "query-status", NULL, 1000, on_reply, &first, NULL), 0);
    cr_assert_eq(qmp_connection_execute(connection, "no-such-command", "{\"a\": 1}", 1000, on_reply,
                                        &second, NULL),
                 0);
    cr_assert_eq(qmp_connection_execute(connection, "device_del", "{\"id\": \"nothing\"}", 1000,
                                        on_reply, &third, NULL),
                 0);
    cr_assert_eq(first.calls, 0, "callbacks never run inside execute");
    cr_assert(run_until(&reply_counter, 3, 3000));
    cr_assert_eq(observed.ready_calls, 1);
    cr_assert_eq(first.status, 0);
    cr_assert_str_eq(first.return_json, "{\"status\": \"running\", \"running\": true}");
    cr_assert_eq(second.status, -EREMOTEIO);
    cr_assert_str_eq(second.error_class, "CommandNotFound");
    cr_assert_eq(third.status, -EREMOTEIO);
    cr_assert_str_eq(third.error_class, "DeviceNotFound");
    cr_assert_str_eq(third.error_desc, "Device 'nothing' not found");
    cr_assert(first.order < second.order && second.order < third.order);
    cr_assert_eq(fake_qmp_peer_command_count(peer), 3);
    cr_assert_str_eq(fake_qmp_peer_arguments(peer, 1), "{\"a\": 1}");
    qmp_connection_close(connection);
    cr_assert_eq(observed.closed_calls, 0, "closing it ourselves does not call `closed`");
}

static void start_listening(evutil_socket_t fd, short what, void *opaque)
{
    cr_assert_eq(fake_qmp_peer_listen(opaque), 0);
}

Test(qmp_connection, retries_until_the_socket_appears)
{
    fake_qmp_peer_destroy(peer);
    peer = fake_qmp_peer_create(base, directory, false);
    struct event *later = evtimer_new(base, start_listening, peer);
    struct timeval delay = {0, 150 * 1000};
    evtimer_add(later, &delay);
    struct observed observed = {0};
    struct qmp_connection_callbacks callbacks = {on_ready, on_event, on_closed, &observed};
    struct qmp_connection *connection =
        qmp_connection_open(base, fake_qmp_peer_socket_path(peer), 3000, &callbacks, NULL);
    cr_assert(run_until(&observed.ready_calls, 1, 4000));
    cr_assert_eq(observed.ready_status, 0);
    event_free(later);
    qmp_connection_close(connection);
}

Test(qmp_connection, gives_up_when_no_socket_appears)
{
    fake_qmp_peer_destroy(peer);
    peer = fake_qmp_peer_create(base, directory, false);
    struct observed observed = {0};
    struct reply_record queued = {0};
    struct qmp_connection_callbacks callbacks = {on_ready, on_event, on_closed, &observed};
    struct qmp_connection *connection =
        qmp_connection_open(base, fake_qmp_peer_socket_path(peer), 100, &callbacks, NULL);
    qmp_connection_execute(connection, "query-status", NULL, 1000, on_reply, &queued, NULL);
    cr_assert(run_until(&observed.ready_calls, 1, 2000));
    cr_assert_eq(observed.ready_status, -ETIMEDOUT);
    cr_assert_eq(queued.calls, 1);
    cr_assert_eq(queued.status, -ECONNRESET);
    cr_assert_eq(observed.closed_calls, 0);
    cr_assert_eq(qmp_connection_execute(connection, "x", NULL, 10, on_reply, &queued, NULL),
                 -ENOTCONN);
    qmp_connection_close(connection);
}

Test(qmp_connection, a_timeout_fails_the_command_and_closes_the_connection)
{
    struct observed observed = {0};
    struct qmp_connection *connection = open_ready(&observed);
    fake_qmp_peer_fault_at(peer, 0, FAKE_QMP_NO_REPLY, NULL, NULL);
    struct reply_record slow = {0}, behind = {0};
    qmp_connection_execute(connection, "query-pci", NULL, 100, on_reply, &slow, NULL);
    qmp_connection_execute(connection, "query-pci", NULL, 5000, on_reply, &behind, NULL);
    cr_assert(run_until(&observed.closed_calls, 1, 2000));
    cr_assert_eq(slow.status, -ETIMEDOUT);
    cr_assert_eq(behind.status, -ECONNRESET);
    cr_assert(slow.order < behind.order);
    cr_assert_eq(fake_qmp_peer_command_count(peer), 1, "one command on the wire at a time");
    cr_assert_not(qmp_connection_is_ready(connection));
    qmp_connection_close(connection);
}

Test(qmp_connection, peer_close_resets_pending_commands_then_reports_closed)
{
    struct observed observed = {0};
    struct qmp_connection *connection = open_ready(&observed);
    fake_qmp_peer_fault_at(peer, 0, FAKE_QMP_CLOSE, NULL, NULL);
    struct reply_record first = {0}, second = {0};
    qmp_connection_execute(connection, "query-pci", NULL, 1000, on_reply, &first, NULL);
    qmp_connection_execute(connection, "query-pci", NULL, 1000, on_reply, &second, NULL);
    cr_assert(run_until(&observed.closed_calls, 1, 2000));
    cr_assert_eq(first.status, -ECONNRESET);
    cr_assert_eq(second.status, -ECONNRESET);
    qmp_connection_close(connection);
}

Test(qmp_connection, events_are_dispatched)
{
    struct observed observed = {0};
    struct qmp_connection *connection = open_ready(&observed);
    fake_qmp_peer_emit_event(peer, "DEVICE_DELETED", "{\"device\": \"virtio-disk1\"}");
    cr_assert(run_until(&observed.event_calls, 1, 2000));
    cr_assert_str_eq(observed.event_name, "DEVICE_DELETED");
    cr_assert_str_eq(observed.event_data, "{\"device\": \"virtio-disk1\"}");
    qmp_connection_close(connection);
}

static struct qmp_connection *closing_connection;
static void close_from_callback(void *opaque, const struct qmp_connection_reply *reply)
{
    on_reply(opaque, reply);
    qmp_connection_close(closing_connection);
}

Test(qmp_connection, close_from_inside_a_reply_callback)
{
    struct observed observed = {0};
    closing_connection = open_ready(&observed);
    struct reply_record first = {0}, second = {0};
    qmp_connection_execute(closing_connection, "query-pci", NULL, 1000, close_from_callback, &first,
                           NULL);
    qmp_connection_execute(closing_connection, "query-pci", NULL, 1000, on_reply, &second, NULL);
    cr_assert(run_until(&reply_counter, 2, 2000));
    cr_assert_eq(first.status, 0);
    cr_assert_eq(second.status, -ECONNRESET);
    cr_assert_eq(observed.closed_calls, 0);
}

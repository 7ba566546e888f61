/* The hotplug orchestrator against the scripted fake QMP peer and a real store: ordering,
 * rollback at every step, timeouts at every step, detach with prompt/late/no event, parallel
 * domains, queueing, and recovery from a crash at every step. */
#include <criterion/criterion.h>
#include <errno.h>
#include <event2/event.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake_qmp_peer.h"
#include "hotplug.h"
#include "qmp_connection.h"
#include "store.h"

#define UUID_A "11111111-2222-4333-8444-555555555555"
#define UUID_B "66666666-7777-4888-9999-aaaaaaaaaaaa"

static struct event_base *base;
static struct store *store;
static struct hotplug_manager *manager;
static char directory[64];
static int removed_calls;
static char removed_alias[64];

struct side {
    char directory[96];
    struct fake_qmp_peer *peer;
    struct qmp_connection *qmp;
    int ready;
};
static struct side side_a, side_b;

struct outcome {
    int calls;
    int order;
    struct hotplug_result result;
};
static int done_counter;

static void on_done(void *opaque, const struct hotplug_result *result)
{
    struct outcome *outcome = opaque;
    outcome->calls++;
    outcome->order = ++done_counter;
    outcome->result = *result;
}

/* The daemon's side of the manager reduced to what these tests observe: removals. */
static int on_apply(void *opaque, const char *uuid, enum hotplug_change change,
                    const struct domain_device *device, unsigned flags, struct pv_error *error)
{
    if (change == HOTPLUG_DETACH_DONE) {
        removed_calls++;
        snprintf(removed_alias, sizeof(removed_alias), "%s", device->disk.alias);
    }
    return 0;
}
static const struct hotplug_ops removal_ops = {.apply = on_apply};

static void on_ready(void *opaque, int status, const char *message)
{
    struct side *side = opaque;
    cr_assert_eq(status, 0, "%s", message);
    side->ready = 1;
}

static const char *side_uuid(struct side *side)
{
    return side == &side_a ? UUID_A : UUID_B;
}

static void on_event(void *opaque, const char *name, const char *data)
{
    hotplug_handle_event(manager, side_uuid(opaque), name, data);
}

static bool run_until(int *counter, int target, int timeout_ms)
{
    return fake_qmp_run_until(base, counter, target, timeout_ms);
}

static void run_for(int milliseconds)
{
    int never = 0;
    run_until(&never, 1, milliseconds);
}

static void connect_side(struct side *side)
{
    side->ready = 0;
    struct qmp_connection_callbacks callbacks = {on_ready, on_event, NULL, side};
    side->qmp =
        qmp_connection_open(base, fake_qmp_peer_socket_path(side->peer), 2000, &callbacks, NULL);
    cr_assert_not_null(side->qmp);
    cr_assert(run_until(&side->ready, 1, 3000));
    hotplug_set_qmp(manager, side_uuid(side), side->qmp);
}

static void reconnect_side(struct side *side)
{
    hotplug_set_qmp(manager, side_uuid(side), NULL);
    qmp_connection_close(side->qmp);
    connect_side(side);
}

static void put_domain(const char *uuid, const char *name)
{
    struct store_domain domain = {.name = (char *)name, .state = STORE_DOMAIN_RUNNING};
    snprintf(domain.uuid, sizeof(domain.uuid), "%s", uuid);
    struct pv_error error = {0};
    cr_assert_eq(store_domain_put(store, &domain, &error), 0, "%s", error.message);
}

static void setup_side(struct side *side, const char *name)
{
    snprintf(side->directory, sizeof(side->directory), "%s/%s", directory, name);
    cr_assert_eq(mkdir(side->directory, 0700), 0);
    side->peer = fake_qmp_peer_create(base, side->directory, true);
    cr_assert_not_null(side->peer);
    connect_side(side);
}

static void setup(void)
{
    snprintf(directory, sizeof(directory), "/tmp/hotplug-XXXXXX");
    cr_assert_not_null(mkdtemp(directory));
    base = event_base_new();
    struct pv_error error = {0};
    store = store_open(directory, &error);
    cr_assert_not_null(store, "%s", error.message);
    put_domain(UUID_A, "a");
    put_domain(UUID_B, "b");
    struct hotplug_config config = {
        .qmp_timeout_ms = 200, .detach_timeout_ms = 200, .ops = &removal_ops};
    manager = hotplug_manager_create(base, store, &config, &error);
    cr_assert_not_null(manager);
    setup_side(&side_a, "a");
    setup_side(&side_b, "b");
    done_counter = 0;
    removed_calls = 0;
    removed_alias[0] = 0;
}

static void teardown(void)
{
    hotplug_manager_destroy(manager);
    struct side *sides[] = {&side_a, &side_b};
    for (int i = 0; i < 2; i++) {
        qmp_connection_close(sides[i]->qmp);
        fake_qmp_peer_destroy(sides[i]->peer);
        rmdir(sides[i]->directory);
    }
    store_close(store);
    event_base_free(base);
    char command[128];
    snprintf(command, sizeof(command), "rm -rf %s", directory);
    cr_assert_eq(system(command), 0);
}

TestSuite(hotplug, .init = setup, .fini = teardown, .timeout = 60);

static struct domain_device make_disk(const char *target, const char *alias, unsigned slot)
{
    struct domain_device device = {.kind = DOMAIN_DEVICE_DISK};
    device.disk.type = DOMAIN_DISK_FILE;
    device.disk.source = (char *)"/var/lib/images/data.img";
    device.disk.target_dev = (char *)target;
    device.disk.alias = (char *)alias;
    device.disk.serial = (char *)"SERIAL1";
    device.disk.cache = (char *)"none";
    device.disk.io = (char *)"native";
    device.disk.address.type = DOMAIN_ADDRESS_PCI;
    device.disk.address.slot = slot;
    return device;
}

static struct outcome attach(struct side *side, const struct domain_device *device)
{
    struct outcome outcome = {0};
    struct pv_error error = {0};
    cr_assert_eq(
        hotplug_attach(manager, side_uuid(side), side->qmp, device, 0, on_done, &outcome, &error),
        0, "%s", error.message);
    cr_assert(run_until(&outcome.calls, 1, 5000));
    return outcome;
}

static struct outcome detach(struct side *side, const struct domain_device *device, int timeout)
{
    struct outcome outcome = {0};
    struct pv_error error = {0};
    cr_assert_eq(hotplug_detach(manager, side_uuid(side), side->qmp, device, 0, timeout, on_done,
                                &outcome, &error),
                 0, "%s", error.message);
    cr_assert(run_until(&outcome.calls, 1, 5000));
    return outcome;
}

static struct outcome recover(struct side *side)
{
    struct outcome outcome = {0};
    cr_assert_eq(hotplug_recover(manager, side_uuid(side), side->qmp, on_done, &outcome, NULL), 0);
    cr_assert(run_until(&outcome.calls, 1, 5000));
    return outcome;
}

/* The command summaries from `from` on, joined by " | ". */
static const char *commands_since(struct side *side, size_t from)
{
    static char text[2048];
    text[0] = 0;
    for (size_t i = from; i < fake_qmp_peer_command_count(side->peer); i++) {
        if (text[0])
            strcat(text, " | ");
        strcat(text, fake_qmp_peer_summary(side->peer, i));
    }
    return text;
}

/* "state" of the device row, or "none". */
static const char *device_state(const char *uuid, const char *key, char *data_json, size_t size)
{
    struct store_device *devices = NULL;
    size_t count = 0;
    cr_assert_eq(store_device_list(store, uuid, &devices, &count, NULL), 0);
    const char *state = "none";
    for (size_t i = 0; i < count; i++)
        if (!strcmp(devices[i].key, key)) {
            state = devices[i].state == STORE_DEVICE_ATTACHED    ? "attached"
                    : devices[i].state == STORE_DEVICE_DETACHING ? "detaching"
                                                                 : "attaching";
            if (data_json)
                snprintf(data_json, size, "%s", devices[i].data_json ? devices[i].data_json : "");
        }
    store_device_list_free(devices, count);
    return state;
}

static size_t unfinished_jobs(const char *uuid)
{
    struct store_job *jobs = NULL;
    size_t count = 0, mine = 0;
    cr_assert_eq(store_job_list_unfinished(store, &jobs, &count, NULL), 0);
    for (size_t i = 0; i < count; i++)
        mine += !strcasecmp(jobs[i].domain_uuid, uuid);
    store_job_list_free(jobs, count);
    return mine;
}

/* The status of the newest job, read straight from the database file. */
static const char *last_job_status(void)
{
    static char status[32];
    char path[128];
    snprintf(path, sizeof(path), "%s/plugvirt.db", directory);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *statement;
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT status FROM jobs ORDER BY id DESC LIMIT 1", -1,
                                    &statement, NULL),
                 SQLITE_OK);
    status[0] = 0;
    if (sqlite3_step(statement) == SQLITE_ROW)
        snprintf(status, sizeof(status), "%s", sqlite3_column_text(statement, 0));
    sqlite3_finalize(statement);
    sqlite3_close(db);
    return status;
}

static const char *const attach_commands[] = {"blockdev-add virtio-disk1-storage",
                                              "blockdev-add virtio-disk1-format",
                                              "device_add virtio-disk1"};
static const char *const undo_commands[] = {"blockdev-del virtio-disk1-storage",
                                            "blockdev-del virtio-disk1-format",
                                            "device_del virtio-disk1"};

Test(hotplug, attach_sends_the_sequence_and_records_the_device)
{
    struct domain_device disk = make_disk("vdb", "virtio-disk1", 5);
    struct outcome outcome = attach(&side_a, &disk);
    cr_assert_eq(outcome.result.status, 0, "%s", outcome.result.message);
    cr_assert_str_eq(commands_since(&side_a, 0),
                     "blockdev-add virtio-disk1-storage | blockdev-add virtio-disk1-format | "
                     "device_add virtio-disk1");
    /* The arguments come from device_args.h, like the cold-plugged disk's (test_device_args). */
    cr_assert_str_eq(fake_qmp_peer_arguments(side_a.peer, 0),
                     "{\"driver\": \"file\", \"filename\": \"/var/lib/images/data.img\", "
                     "\"node-name\": \"virtio-disk1-storage\", \"aio\": \"native\", "
                     "\"auto-read-only\": true, \"discard\": \"unmap\", \"cache\": "
                     "{\"direct\": true, \"no-flush\": false}}");
    cr_assert_str_eq(fake_qmp_peer_arguments(side_a.peer, 1),
                     "{\"node-name\": \"virtio-disk1-format\", \"read-only\": false, "
                     "\"cache\": {\"direct\": true, \"no-flush\": false}, \"driver\": "
                     "\"raw\", \"file\": \"virtio-disk1-storage\"}");
    cr_assert_str_eq(fake_qmp_peer_arguments(side_a.peer, 2),
                     "{\"driver\": \"virtio-blk-pci\", \"bus\": \"pci.0\", \"addr\": "
                     "\"0x5\", \"drive\": \"virtio-disk1-format\", \"id\": \"virtio-disk1\", "
                     "\"write-cache\": \"on\", \"serial\": \"SERIAL1\"}");
    char data[512];
    cr_assert_str_eq(device_state(UUID_A, "vdb", data, sizeof(data)), "attached");
    cr_assert(strstr(data, "\"format\": \"virtio-disk1-format\""), "%s", data);
    cr_assert(strstr(data, "\"storage\": \"virtio-disk1-storage\""), "%s", data);
    cr_assert_eq(unfinished_jobs(UUID_A), 0);
    cr_assert_str_eq(last_job_status(), "done");
    cr_assert_null(hotplug_busy_description(manager, UUID_A));
}

Test(hotplug, an_error_at_every_attach_step_undoes_exactly_the_steps_before_it)
{
    struct domain_device disk = make_disk("vdb", "virtio-disk1", 5);
    for (size_t k = 0; k < 3; k++) {
        size_t start = fake_qmp_peer_command_count(side_a.peer);
        fake_qmp_peer_fault_at(side_a.peer, start + k, FAKE_QMP_REPLY_ERROR, "GenericError",
                               "injected");
        struct outcome outcome = attach(&side_a, &disk);
        cr_assert_eq(outcome.result.status, -EREMOTEIO);
        cr_assert_str_eq(outcome.result.code, "qmp-error");
        cr_assert_str_eq(outcome.result.qmp_class, "GenericError");
        cr_assert_str_eq(outcome.result.step, k == 2 ? "device_add" : "blockdev-add");
        cr_assert(strstr(outcome.result.message, "injected"), "%s", outcome.result.message);
        char expected[1024] = "";
        for (size_t i = 0; i <= k; i++)
            snprintf(expected + strlen(expected), sizeof(expected) - strlen(expected), "%s%s",
                     i ? " | " : "", attach_commands[i]);
        for (size_t i = k; i-- > 0;)
            snprintf(expected + strlen(expected), sizeof(expected) - strlen(expected), " | %s",
                     undo_commands[i]);
        cr_assert_str_eq(commands_since(&side_a, start), expected, "k=%zu", k);
        cr_assert_eq(fake_qmp_peer_node_count(side_a.peer), 0);
        cr_assert_eq(fake_qmp_peer_device_count(side_a.peer), 0);
        cr_assert_str_eq(device_state(UUID_A, "vdb", NULL, 0), "none");
        cr_assert_eq(unfinished_jobs(UUID_A), 0);
        cr_assert_str_eq(last_job_status(), "rolled-back");
    }
}

Test(hotplug, a_failed_rollback_is_reported_and_the_rest_still_undone)
{
    struct domain_device disk = make_disk("vdb", "virtio-disk1", 5);
    fake_qmp_peer_fault_next(side_a.peer, "device_add", FAKE_QMP_REPLY_ERROR, "GenericError",
                             "no slot");
    fake_qmp_peer_fault_next(side_a.peer, "blockdev-del", FAKE_QMP_REPLY_ERROR, "GenericError",
                             "node is busy");
    struct outcome outcome = attach(&side_a, &disk);
    cr_assert_str_eq(outcome.result.code, "qmp-error");
    cr_assert_str_eq(outcome.result.step, "device_add");
    cr_assert(strstr(outcome.result.message, "left behind: blockdev-del virtio-disk1-format"), "%s",
              outcome.result.message);
    cr_assert(fake_qmp_peer_has_node(side_a.peer, "virtio-disk1-format"));
    cr_assert(strstr(commands_since(&side_a, 0), "blockdev-del virtio-disk1-storage"));
    cr_assert_str_eq(last_job_status(), "failed");
}

Test(hotplug, a_timeout_at_every_attach_step_is_finished_by_recovery)
{
    struct domain_device disk = make_disk("vdb", "virtio-disk1", 5);
    for (size_t k = 0; k < 3; k++) {
        for (int applied = 0; applied < 2; applied++) {
            size_t start = fake_qmp_peer_command_count(side_a.peer);
            fake_qmp_peer_fault_at(side_a.peer, start + k,
                                   applied ? FAKE_QMP_NO_REPLY_APPLIED : FAKE_QMP_NO_REPLY, NULL,
                                   NULL);
            struct outcome outcome = attach(&side_a, &disk);
            cr_assert_eq(outcome.result.status, -ETIMEDOUT);
            cr_assert_str_eq(outcome.result.code, "timeout");
            cr_assert_str_eq(outcome.result.step, k == 2 ? "device_add" : "blockdev-add");
            cr_assert_eq(fake_qmp_peer_command_count(side_a.peer), start + k + 1,
                         "nothing is sent after a timeout");
            cr_assert_eq(unfinished_jobs(UUID_A), 1, "the journal keeps the job");
            reconnect_side(&side_a);
            struct outcome recovered = recover(&side_a);
            cr_assert_eq(recovered.result.status, 0, "%s", recovered.result.message);
            cr_assert_eq(unfinished_jobs(UUID_A), 0);
            if (k == 2 && applied) { /* device_add went through: the attach is completed */
                cr_assert_str_eq(device_state(UUID_A, "vdb", NULL, 0), "attached");
                cr_assert_eq(fake_qmp_peer_node_count(side_a.peer), 2);
                cr_assert(fake_qmp_peer_has_device(side_a.peer, "virtio-disk1"));
                cr_assert(strstr(recovered.result.message, "completed"));
                struct outcome removed = detach(&side_a, &disk, 1000);
                cr_assert_eq(removed.result.status, 0, "%s", removed.result.message);
            } else {
                cr_assert_str_eq(device_state(UUID_A, "vdb", NULL, 0), "none");
                cr_assert_str_eq(last_job_status(), "rolled-back");
            }
            cr_assert_eq(fake_qmp_peer_node_count(side_a.peer), 0, "k=%zu applied=%d", k, applied);
            cr_assert_eq(fake_qmp_peer_device_count(side_a.peer), 0);
        }
    }
}

Test(hotplug, detach_with_a_prompt_event_releases_everything_in_order)
{
    struct domain_device disk = make_disk("vdb", "virtio-disk1", 5);
    cr_assert_eq(attach(&side_a, &disk).result.status, 0);
    size_t start = fake_qmp_peer_command_count(side_a.peer);
    struct outcome outcome = detach(&side_a, &disk, -1);
    cr_assert_eq(outcome.result.status, 0, "%s", outcome.result.message);
    cr_assert_not(outcome.result.pending);
    cr_assert_str_eq(commands_since(&side_a, start),
                     "device_del virtio-disk1 | blockdev-del virtio-disk1-format | "
                     "blockdev-del virtio-disk1-storage");
    cr_assert_eq(removed_calls, 1);
    cr_assert_str_eq(removed_alias, "virtio-disk1");
    cr_assert_str_eq(device_state(UUID_A, "vdb", NULL, 0), "none");
    cr_assert_eq(fake_qmp_peer_node_count(side_a.peer), 0);
    cr_assert_str_eq(last_job_status(), "done");
}

Test(hotplug, detach_of_a_device_already_gone_cleans_up)
{
    struct domain_device disk = make_disk("vdb", "virtio-disk1", 5);
    fake_qmp_peer_add_node(side_a.peer, "virtio-disk1-storage", NULL);
    fake_qmp_peer_add_node(side_a.peer, "virtio-disk1-format", "virtio-disk1-storage");
    struct outcome outcome = detach(&side_a, &disk, -1);
    cr_assert_eq(outcome.result.status, 0, "%s", outcome.result.message);
    cr_assert_str_eq(commands_since(&side_a, 0),
                     "device_del virtio-disk1 | blockdev-del virtio-disk1-format | "
                     "blockdev-del virtio-disk1-storage");
    cr_assert_eq(fake_qmp_peer_node_count(side_a.peer), 0);
    cr_assert_eq(removed_calls, 1);
}

Test(hotplug, a_refused_device_del_keeps_the_device_attached)
{
    struct domain_device disk = make_disk("vdb", "virtio-disk1", 5);
    cr_assert_eq(attach(&side_a, &disk).result.status, 0);
    fake_qmp_peer_fault_next(side_a.peer, "device_del", FAKE_QMP_REPLY_ERROR, "GenericError",
                             "Bus 'pci.0' does not support hotplugging");
    struct outcome outcome = detach(&side_a, &disk, -1);
    cr_assert_str_eq(outcome.result.code, "qmp-error");
    cr_assert_str_eq(outcome.result.step, "device_del");
    cr_assert_str_eq(device_state(UUID_A, "vdb", NULL, 0), "attached");
    cr_assert_eq(fake_qmp_peer_node_count(side_a.peer), 2);
    cr_assert_eq(removed_calls, 0);
}

Test(hotplug, a_late_event_after_the_timeout_finishes_the_detach)
{
    struct domain_device disk = make_disk("vdb", "virtio-disk1", 5);
    cr_assert_eq(attach(&side_a, &disk).result.status, 0);
    fake_qmp_peer_set_auto_release(side_a.peer, false);
    size_t start = fake_qmp_peer_command_count(side_a.peer);
    struct outcome outcome = detach(&side_a, &disk, 100);
    cr_assert_eq(outcome.result.status, 0);
    cr_assert(outcome.result.pending);
    cr_assert_str_eq(outcome.result.code, "detach-pending");
    cr_assert_str_eq(outcome.result.message,
                     "detach requested; the guest has not released vdb yet");
    cr_assert_str_eq(device_state(UUID_A, "vdb", NULL, 0), "detaching");
    cr_assert_null(hotplug_busy_description(manager, UUID_A), "pending does not hold the domain");
    cr_assert_eq(removed_calls, 0);
    /* A second detach waits again without resending device_del. */
    outcome = detach(&side_a, &disk, 50);
    cr_assert(outcome.result.pending);
    cr_assert_str_eq(commands_since(&side_a, start), "device_del virtio-disk1");

    cr_assert(fake_qmp_peer_release(side_a.peer, "virtio-disk1"));
    cr_assert(run_until(&removed_calls, 1, 3000));
    run_for(50);
    cr_assert_str_eq(commands_since(&side_a, start),
                     "device_del virtio-disk1 | blockdev-del virtio-disk1-format | "
                     "blockdev-del virtio-disk1-storage");
    cr_assert_str_eq(device_state(UUID_A, "vdb", NULL, 0), "none");
    cr_assert_eq(unfinished_jobs(UUID_A), 0);
    cr_assert_str_eq(last_job_status(), "done");
    cr_assert_eq(fake_qmp_peer_node_count(side_a.peer), 0);
}

Test(hotplug, domains_run_in_parallel_and_jobs_queue_per_domain)
{
    struct domain_device disk1 = make_disk("vdb", "virtio-disk1", 5);
    struct domain_device disk2 = make_disk("vdc", "virtio-disk2", 6);
    cr_assert_eq(attach(&side_a, &disk1).result.status, 0);
    fake_qmp_peer_set_auto_release(side_a.peer, false);
    struct outcome slow = {0}, queued = {0}, other = {0};
    cr_assert_eq(hotplug_detach(manager, UUID_A, side_a.qmp, &disk1, 0, 800, on_done, &slow, NULL),
                 0);
    cr_assert_eq(hotplug_attach(manager, UUID_A, side_a.qmp, &disk2, 0, on_done, &queued, NULL), 0);
    cr_assert_eq(hotplug_attach(manager, UUID_B, side_b.qmp, &disk2, 0, on_done, &other, NULL), 0);
    cr_assert(run_until(&other.calls, 1, 700));
    cr_assert_eq(other.result.status, 0, "domain b is not blocked by domain a");
    cr_assert_eq(slow.calls, 0);
    cr_assert_eq(queued.calls, 0, "the second job of domain a waits");
    const char *busy = hotplug_busy_description(manager, UUID_A);
    cr_assert_not_null(busy);
    cr_assert(strstr(busy, "detach-disk vdb: waiting"), "%s", busy);
    cr_assert(strstr(busy, "virtio-disk1"), "%s", busy);
    cr_assert(strstr(busy, "(1 more queued)"), "%s", busy);
    cr_assert_null(hotplug_busy_description(manager, UUID_B));
    cr_assert(fake_qmp_peer_release(side_a.peer, "virtio-disk1"));
    cr_assert(run_until(&queued.calls, 1, 3000));
    cr_assert_eq(slow.result.status, 0);
    cr_assert_not(slow.result.pending);
    cr_assert(slow.order < queued.order);
    cr_assert_eq(queued.result.status, 0, "%s", queued.result.message);
}

Test(hotplug, a_job_waiting_too_long_behind_another_fails_busy_naming_the_holder)
{
    /* A manager whose queue wait is short. */
    hotplug_manager_destroy(manager);
    struct hotplug_config config = {.qmp_timeout_ms = 200,
                                    .detach_timeout_ms = 200,
                                    .job_wait_timeout_ms = 300,
                                    .ops = &removal_ops};
    manager = hotplug_manager_create(base, store, &config, NULL);
    cr_assert_not_null(manager);
    hotplug_set_qmp(manager, UUID_A, side_a.qmp);
    hotplug_set_qmp(manager, UUID_B, side_b.qmp);
    struct domain_device disk1 = make_disk("vdb", "virtio-disk1", 5);
    struct domain_device disk2 = make_disk("vdc", "virtio-disk2", 6);
    struct domain_device disk3 = make_disk("vdd", "virtio-disk3", 7);
    cr_assert_eq(attach(&side_a, &disk1).result.status, 0);
    fake_qmp_peer_set_auto_release(side_a.peer, false);
    struct outcome holder = {0}, waiting = {0}, third = {0};
    cr_assert_eq(
        hotplug_detach(manager, UUID_A, side_a.qmp, &disk1, 0, 2000, on_done, &holder, NULL), 0);
    cr_assert_eq(hotplug_attach(manager, UUID_A, side_a.qmp, &disk2, 0, on_done, &waiting, NULL),
                 0);
    cr_assert(run_until(&waiting.calls, 1, 1500), "the queued job waited without bound");
    cr_assert_eq(waiting.result.status, -EBUSY);
    cr_assert_str_eq(waiting.result.code, "busy");
    cr_assert(strstr(waiting.result.message, "detach-disk vdb: waiting"), "%s",
              waiting.result.message);
    cr_assert(strstr(waiting.result.message, "attach-disk vdc gave up after waiting 0.3 s"), "%s",
              waiting.result.message);
    cr_assert_eq(holder.calls, 0, "the holder is not disturbed");
    cr_assert_str_eq(device_state(UUID_A, "vdc", NULL, 0), "none", "nothing was sent for vdc");
    /* A job that starts within its wait is not cancelled afterwards. */
    cr_assert_eq(hotplug_attach(manager, UUID_A, side_a.qmp, &disk3, 0, on_done, &third, NULL), 0);
    cr_assert(fake_qmp_peer_release(side_a.peer, "virtio-disk1"));
    cr_assert(run_until(&third.calls, 1, 3000));
    cr_assert_eq(holder.result.status, 0);
    cr_assert_not(holder.result.pending);
    cr_assert_eq(third.result.status, 0, "%s", third.result.message);
    run_for(400);
    cr_assert_eq(third.calls, 1);
}

Test(hotplug, busy_names_the_step_in_flight)
{
    struct domain_device disk = make_disk("vdb", "virtio-disk1", 5);
    fake_qmp_peer_fault_at(side_a.peer, 1, FAKE_QMP_NO_REPLY, NULL, NULL);
    struct outcome outcome = {0};
    cr_assert_eq(hotplug_attach(manager, UUID_A, side_a.qmp, &disk, 0, on_done, &outcome, NULL), 0);
    run_for(100);
    const char *busy = hotplug_busy_description(manager, UUID_A);
    cr_assert_not_null(busy);
    cr_assert(strstr(busy, "attach-disk vdb: blockdev-add virtio-disk1-format sent 0."), "%s",
              busy);
    cr_assert(run_until(&outcome.calls, 1, 3000));
}

/* Writes a journal entry as the orchestrator leaves it when the daemon dies at `step`. */
static void journal_crash(const char *kind, const char *phase, int step, const char *row_state)
{
    char data[512];
    snprintf(data, sizeof(data),
             "{\"sequence\": \"disk\", \"alias\": \"virtio-disk1\", \"target\": \"vdb\", "
             "\"slot\": 5, \"function\": 0, \"phase\": \"%s\"}",
             phase);
    int64_t id;
    cr_assert_eq(store_job_begin(store, UUID_A, kind, "vdb", data, &id, NULL), 0);
    cr_assert_eq(store_job_step(store, id, step, data, NULL), 0);
    struct store_device row = {.kind = (char *)"disk",
                               .key = (char *)"vdb",
                               .alias = (char *)"virtio-disk1",
                               .pci_slot = 5,
                               .state = !strcmp(row_state, "attaching") ? STORE_DEVICE_ATTACHING
                                                                        : STORE_DEVICE_DETACHING};
    snprintf(row.domain_uuid, sizeof(row.domain_uuid), "%s", UUID_A);
    cr_assert_eq(store_device_put(store, &row, NULL), 0);
}

static void peer_objects(int count)
{
    if (count > 0)
        fake_qmp_peer_add_node(side_a.peer, "virtio-disk1-storage", NULL);
    if (count > 1)
        fake_qmp_peer_add_node(side_a.peer, "virtio-disk1-format", "virtio-disk1-storage");
    if (count > 2)
        fake_qmp_peer_add_device(side_a.peer, "virtio-disk1", "virtio-disk1-format");
}

Test(hotplug, recovery_after_a_crash_at_every_attach_step_leaves_nothing_half_attached)
{
    for (int step = 0; step < 3; step++) {
        for (int sent = 0; sent < 2; sent++) { /* did the journaled step reach the VMM? */
            int existing = step + sent;
            journal_crash("attach-disk", "do", step, "attaching");
            peer_objects(existing);
            size_t start = fake_qmp_peer_command_count(side_a.peer);
            struct outcome outcome = recover(&side_a);
            cr_assert_eq(outcome.result.status, 0, "%s", outcome.result.message);
            cr_assert_eq(unfinished_jobs(UUID_A), 0);
            if (existing == 3) {
                cr_assert_str_eq(device_state(UUID_A, "vdb", NULL, 0), "attached");
                cr_assert_str_eq(commands_since(&side_a, start),
                                 "query-pci | query-named-block-nodes");
                cr_assert(detach(&side_a,
                                 &(struct domain_device){.kind = DOMAIN_DEVICE_DISK,
                                                         .disk =
                                                             {
                                                                 .alias = "virtio-disk1",
                                                                 .target_dev = "vdb",
                                                             }},
                                 -1)
                              .result.status == 0);
            } else {
                char expected[512] = "query-pci | query-named-block-nodes";
                for (int i = existing; i-- > 0;)
                    snprintf(expected + strlen(expected), sizeof(expected) - strlen(expected),
                             " | %s", undo_commands[i]);
                cr_assert_str_eq(commands_since(&side_a, start), expected, "step %d sent %d", step,
                                 sent);
                cr_assert_str_eq(device_state(UUID_A, "vdb", NULL, 0), "none");
                cr_assert_str_eq(last_job_status(), "rolled-back");
            }
            cr_assert_eq(fake_qmp_peer_node_count(side_a.peer), 0);
            cr_assert_eq(fake_qmp_peer_device_count(side_a.peer), 0);
        }
    }
}

Test(hotplug, recovery_of_an_interrupted_rollback_unplugs_a_present_device)
{
    journal_crash("attach-disk", "undo", 2, "attaching");
    peer_objects(3);
    struct outcome outcome = recover(&side_a);
    cr_assert_eq(outcome.result.status, 0, "%s", outcome.result.message);
    cr_assert_str_eq(commands_since(&side_a, 0),
                     "query-pci | query-named-block-nodes | device_del virtio-disk1 | "
                     "blockdev-del virtio-disk1-format | blockdev-del virtio-disk1-storage");
    cr_assert_eq(fake_qmp_peer_node_count(side_a.peer), 0);
    cr_assert_eq(unfinished_jobs(UUID_A), 0);
}

Test(hotplug, recovery_of_a_detach_waits_or_cleans_up)
{
    /* a detach that had ended pending, the device still there: keep waiting, do not ask
     * the guest again */
    journal_crash("detach-disk", "pending", 2, "detaching");
    peer_objects(3);
    fake_qmp_peer_set_auto_release(side_a.peer, false);
    struct outcome outcome = recover(&side_a);
    cr_assert_eq(outcome.result.status, 0, "%s", outcome.result.message);
    cr_assert(strstr(outcome.result.message, "still pending"), "%s", outcome.result.message);
    cr_assert_str_eq(commands_since(&side_a, 0), "query-pci | query-named-block-nodes");
    cr_assert_str_eq(device_state(UUID_A, "vdb", NULL, 0), "detaching");
    cr_assert_eq(unfinished_jobs(UUID_A), 1);
    /* the guest lets go later: the event finishes it */
    cr_assert(fake_qmp_peer_release(side_a.peer, "virtio-disk1"));
    cr_assert(run_until(&removed_calls, 1, 3000));
    run_for(50);
    cr_assert_str_eq(commands_since(&side_a, 2),
                     "blockdev-del virtio-disk1-format | blockdev-del virtio-disk1-storage");
    cr_assert_eq(unfinished_jobs(UUID_A), 0);
    cr_assert_str_eq(device_state(UUID_A, "vdb", NULL, 0), "none");

    /* the device left while the daemon was down: cleanup right away */
    journal_crash("detach-disk", "undo", 2, "detaching");
    peer_objects(2);
    size_t start = fake_qmp_peer_command_count(side_a.peer);
    outcome = recover(&side_a);
    cr_assert_eq(outcome.result.status, 0, "%s", outcome.result.message);
    cr_assert_str_eq(commands_since(&side_a, start),
                     "query-pci | query-named-block-nodes | blockdev-del virtio-disk1-format | "
                     "blockdev-del virtio-disk1-storage");
    cr_assert_eq(removed_calls, 2);
    cr_assert_eq(unfinished_jobs(UUID_A), 0);

    /* the daemon died with device_del journaled, before the guest answered: the detach goes
     * on as the job would have: device_del (again), and the release once the guest lets go */
    journal_crash("detach-disk", "undo", 2, "detaching");
    peer_objects(3);
    fake_qmp_peer_set_auto_release(side_a.peer, true);
    start = fake_qmp_peer_command_count(side_a.peer);
    outcome = recover(&side_a);
    cr_assert_eq(outcome.result.status, 0, "%s", outcome.result.message);
    cr_assert(strstr(outcome.result.message, "resumed"), "%s", outcome.result.message);
    cr_assert_str_eq(commands_since(&side_a, start),
                     "query-pci | query-named-block-nodes | device_del virtio-disk1 | "
                     "blockdev-del virtio-disk1-format | blockdev-del virtio-disk1-storage");
    cr_assert_eq(removed_calls, 3);
    cr_assert_eq(unfinished_jobs(UUID_A), 0);
}

Test(hotplug, a_stopped_domain_ends_its_jobs)
{
    struct domain_device disk = make_disk("vdb", "virtio-disk1", 5);
    cr_assert_eq(attach(&side_a, &disk).result.status, 0);
    fake_qmp_peer_set_auto_release(side_a.peer, false);
    struct outcome waiting = {0}, queued = {0};
    hotplug_detach(manager, UUID_A, side_a.qmp, &disk, 0, 5000, on_done, &waiting, NULL);
    hotplug_attach(manager, UUID_A, side_a.qmp, &disk, 0, on_done, &queued, NULL);
    run_for(100);
    hotplug_domain_stopped(manager, UUID_A);
    cr_assert_eq(waiting.calls, 1);
    cr_assert_eq(queued.calls, 1);
    cr_assert_str_eq(waiting.result.code, "not-running");
    cr_assert_eq(unfinished_jobs(UUID_A), 0);
    cr_assert_str_eq(device_state(UUID_A, "vdb", NULL, 0), "none");
}

Test(hotplug, unsupported_devices_are_refused_up_front)
{
    struct domain_device disk = make_disk("sdb", "scsi0-0-0-1", 5);
    disk.disk.target_bus = DOMAIN_DISK_BUS_SCSI;
    struct pv_error error = {0};
    cr_assert_eq(hotplug_attach(manager, UUID_A, side_a.qmp, &disk, 0, on_done, NULL, &error),
                 -EOPNOTSUPP);
    cr_assert(strstr(error.message, "virtio"), "%s", error.message);
}

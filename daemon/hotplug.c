/* The hotplug orchestrator: see hotplug.h.
 *
 * A device kind is one entry of `hotplug_sequences`: an ordered list of steps, each a QMP
 * command with an argument builder (do) and the command that removes the object it created
 * (undo, keyed by the object's id). Everything else is generic:
 *   attach   = do steps 0..n-1; on a QMP error, undo the completed steps in reverse;
 *   detach   = undo the device step (device_del), wait for DEVICE_DELETED, undo the rest in
 *              reverse;
 *   recovery = look at which objects exist (query-pci, query-named-block-nodes) and undo the
 *              existing ones in reverse, or complete an attach whose device exists.
 * The step about to be sent is journaled (store_job_step) before it is sent, with the phase
 * ("do"/"undo") and the object names, so recovery needs nothing but the journal.
 *
 * A timeout or a lost connection ends a job at once: the QMP connection is closed then (see
 * qmp_connection.h), so nothing can be undone on it. The journal entry stays RUNNING and
 * hotplug_recover, run by the daemon once it has reconnected, finishes the job. */
#include "hotplug.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "device_args.h"
#include "json_util.h"
#include "pv_log.h"
#include "qmp_connection.h"
#include "store.h"

#define HOTPLUG_MAX_STEPS 8
#define HOTPLUG_DEFAULT_TIMEOUT_MS 5000
#define HOTPLUG_DEFAULT_JOB_WAIT_MS 30000
#define HOTPLUG_MAX_QUERY_SIZE (16 * 1024 * 1024)

/* --- sequences ----------------------------------------------------------------------------- */

struct hotplug_names {
    char alias[64];
    char target[64]; /* the store key: target dev for disks */
    int slot;        /* PCI slot, -1 when none */
    int function;
    char objects[HOTPLUG_MAX_STEPS][96]; /* per step: the id of the object it creates */
};

/* How recovery finds out whether a step's object exists. */
enum hotplug_object_kind { HOTPLUG_OBJECT_BLOCK_NODE, HOTPLUG_OBJECT_DEVICE };

struct hotplug_step {
    const char *command;
    const char *object_suffix; /* object id = alias + suffix */
    enum hotplug_object_kind object_kind;
    int (*build)(const struct domain_device *device, const struct hotplug_names *names,
                 struct json_writer *arguments);
    const char *undo_command;
    const char *undo_id_member;
};

struct hotplug_sequence {
    const char *name; /* job kinds are "attach-<name>" and "detach-<name>" */
    const char *store_kind;
    /* Fills alias/target/slot; -EOPNOTSUPP when this sequence cannot handle the device. */
    int (*describe)(const struct domain_device *device, bool attach, struct hotplug_names *names,
                    struct pv_error *error);
    const struct hotplug_step *steps;
    int step_count; /* the last step creates the guest-visible device (HOTPLUG_OBJECT_DEVICE) */
};

static int disk_describe(const struct domain_device *device, bool attach,
                         struct hotplug_names *names, struct pv_error *error)
{
    const struct domain_disk *disk = &device->disk;
    if (device->kind != DOMAIN_DEVICE_DISK)
        return -EOPNOTSUPP;
    if (disk->target_bus != DOMAIN_DISK_BUS_VIRTIO || disk->device != DOMAIN_DISK_DEVICE_DISK)
        return pv_error_set(error, -EOPNOTSUPP,
                            "only virtio disks can be hot-plugged by plugvirt for now");
    if (!disk->alias || !disk->target_dev)
        return pv_error_set(error, -EINVAL, "the disk has no alias or target dev");
    if (attach && !disk->source)
        return pv_error_set(error, -EINVAL, "disk %s has no source", disk->target_dev);
    snprintf(names->alias, sizeof(names->alias), "%s", disk->alias);
    snprintf(names->target, sizeof(names->target), "%s", disk->target_dev);
    names->slot = disk->address.type == DOMAIN_ADDRESS_PCI ? (int)disk->address.slot : -1;
    names->function = disk->address.type == DOMAIN_ADDRESS_PCI ? (int)disk->address.function : 0;
    return 0;
}

static int disk_build_storage(const struct domain_device *device, const struct hotplug_names *names,
                              struct json_writer *arguments)
{
    /* The same arguments as the cold-plugged disk's -blockdev (device_args.h). */
    return device_args_disk_storage(arguments, &device->disk, names->objects[0]);
}

static int disk_build_format(const struct domain_device *device, const struct hotplug_names *names,
                             struct json_writer *arguments)
{
    return device_args_disk_format(arguments, &device->disk, names->objects[1], names->objects[0]);
}

static int disk_build_device(const struct domain_device *device, const struct hotplug_names *names,
                             struct json_writer *arguments)
{
    return device_args_disk_device(arguments, &device->disk, names->alias, names->objects[1],
                                   names->slot, names->function);
}

static const struct hotplug_step disk_steps[] = {
    {"blockdev-add", DEVICE_ARGS_DISK_STORAGE_SUFFIX, HOTPLUG_OBJECT_BLOCK_NODE, disk_build_storage,
     "blockdev-del", "node-name"},
    {"blockdev-add", DEVICE_ARGS_DISK_FORMAT_SUFFIX, HOTPLUG_OBJECT_BLOCK_NODE, disk_build_format,
     "blockdev-del", "node-name"},
    {"device_add", "", HOTPLUG_OBJECT_DEVICE, disk_build_device, "device_del", "id"},
};

/* One entry per device kind; interfaces (netdev_add + virtio-net-pci), hostdevs (vfio-pci),
 * channels (chardev-add + virtserialport) are each one more entry. */
static const struct hotplug_sequence hotplug_sequences[] = {
    {"disk", "disk", disk_describe, disk_steps, sizeof(disk_steps) / sizeof(disk_steps[0])},
};
#define HOTPLUG_SEQUENCE_COUNT (sizeof(hotplug_sequences) / sizeof(hotplug_sequences[0]))

static void names_fill_objects(const struct hotplug_sequence *sequence, struct hotplug_names *names)
{
    for (int i = 0; i < sequence->step_count; i++)
        snprintf(names->objects[i], sizeof(names->objects[i]), "%s%s", names->alias,
                 sequence->steps[i].object_suffix);
}

/* The sequence for the device's kind, before its names are known (attach: allocated when the
 * job starts). */
static const struct hotplug_sequence *sequence_for_kind(const struct domain_device *device,
                                                        struct pv_error *error)
{
    struct hotplug_names names;
    for (size_t i = 0; i < HOTPLUG_SEQUENCE_COUNT; i++) {
        /* -EOPNOTSUPP without a message: another kind; with one: this kind, a variant that
         * cannot be hot-plugged. Anything else (no alias yet) is for the job to settle. */
        struct pv_error verdict = {0};
        int rc = hotplug_sequences[i].describe(device, false, &names, &verdict);
        if (rc == -EOPNOTSUPP && !verdict.code)
            continue;
        if (rc == -EOPNOTSUPP) {
            if (error)
                *error = verdict;
            return NULL;
        }
        return &hotplug_sequences[i];
    }
    pv_error_set(error, -EOPNOTSUPP, "this kind of device cannot be hot-plugged by plugvirt");
    return NULL;
}

static const struct hotplug_sequence *sequence_by_name(const char *name)
{
    for (size_t i = 0; name && i < HOTPLUG_SEQUENCE_COUNT; i++)
        if (!strcmp(hotplug_sequences[i].name, name))
            return &hotplug_sequences[i];
    return NULL;
}

/* --- state ----------------------------------------------------------------------------------- */

enum hotplug_job_type { JOB_ATTACH, JOB_DETACH, JOB_CLEANUP, JOB_RECOVER };
enum hotplug_phase { PHASE_IDLE, PHASE_DO, PHASE_UNDO, PHASE_WAIT, PHASE_QUERY };

/* A detach that ended pending: the device is still in the guest, its journal job RUNNING. */
struct hotplug_pending {
    struct hotplug_pending *next;
    const struct hotplug_sequence *sequence;
    struct domain_device *device;
    struct hotplug_names names;
    unsigned flags;
    int64_t journal_id;
    bool released; /* DEVICE_DELETED came; a cleanup job is queued */
};

struct hotplug_domain;

struct hotplug_job {
    struct hotplug_job *next;
    struct hotplug_domain *domain;
    enum hotplug_job_type type;
    enum hotplug_job_type operation; /* ATTACH or DETACH: what the steps belong to */
    const struct hotplug_sequence *sequence;
    struct domain_device *device;
    struct hotplug_names names;
    unsigned flags; /* the caller's, kept in the journal */
    char kind[48];  /* "attach-disk" */
    int64_t journal_id;
    int wait_timeout_ms;
    enum hotplug_phase phase;
    int index;
    bool skip[HOTPLUG_MAX_STEPS]; /* undo: the object does not exist (recovery) */
    bool device_released;         /* DEVICE_DELETED seen for names.alias */
    bool command_in_flight;
    bool orphaned; /* the manager or domain went away while a command was in flight */
    bool failed;   /* a do step failed: undoing is a rollback */
    bool undo_failed;
    struct event *wait_timer;
    struct event *queue_timer; /* bounds the wait in the domain's queue (job_wait_timeout_ms) */
    struct timespec queued_at;
    struct timespec step_started;
    char step_label[128];
    struct hotplug_result result;
    char undone[512];
    char undo_errors[512];
    hotplug_done_fn done;
    void *opaque;
    /* recovery */
    struct store_job *entries;
    size_t entry_count, entry_index, entries_total;
    char *existing_devices; /* query-pci and query-named-block-nodes results (JSON) */
    char *existing_nodes;
    char report[1024];
    bool recovery_failed;
};

struct hotplug_domain {
    struct hotplug_domain *next;
    struct hotplug_manager *manager;
    char uuid[37];
    struct qmp_connection *qmp;
    struct hotplug_job *running;
    struct hotplug_job *queue_head, *queue_tail;
    struct hotplug_pending *pending;
    struct event *kick;
    char busy[320];
};

struct hotplug_manager {
    struct event_base *base;
    struct store *store;
    struct hotplug_config config;
    struct hotplug_domain *domains;
    char abort_after_step[64]; /* test-only, see hotplug_config */
};

static void step_run(struct hotplug_job *job);
static void recovery_next(struct hotplug_job *job);

static double elapsed_seconds(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - since->tv_sec) + (now.tv_nsec - since->tv_nsec) / 1e9;
}

static void append(char *buffer, size_t size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
static void append(char *buffer, size_t size, const char *format, ...)
{
    size_t used = strlen(buffer);
    if (used + 1 >= size)
        return;
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(buffer + used, size - used, format, arguments);
    va_end(arguments);
}

static void result_set(struct hotplug_result *result, int status, const char *code,
                       const char *qmp_class, const char *step, const char *format, ...)
    __attribute__((format(printf, 6, 7)));
static void result_set(struct hotplug_result *result, int status, const char *code,
                       const char *qmp_class, const char *step, const char *format, ...)
{
    result->status = status;
    snprintf(result->code, sizeof(result->code), "%s", code ? code : "");
    snprintf(result->qmp_class, sizeof(result->qmp_class), "%s", qmp_class ? qmp_class : "");
    snprintf(result->step, sizeof(result->step), "%s", step ? step : "");
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(result->message, sizeof(result->message), format, arguments);
    va_end(arguments);
}

/* Adds one entry to a recovery job's report (entries are separated by "; "). */
static void report_add(struct hotplug_job *job, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
static void report_add(struct hotplug_job *job, const char *format, ...)
{
    char entry[sizeof(job->report)];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(entry, sizeof(entry), format, arguments);
    va_end(arguments);
    append(job->report, sizeof(job->report), "%s%s", job->report[0] ? "; " : "", entry);
}

static struct hotplug_domain *domain_find(struct hotplug_manager *manager, const char *uuid)
{
    for (struct hotplug_domain *domain = manager->domains; domain; domain = domain->next)
        if (!strcasecmp(domain->uuid, uuid))
            return domain;
    return NULL;
}

static void on_kick(evutil_socket_t fd, short what, void *opaque);

static struct hotplug_domain *domain_get(struct hotplug_manager *manager, const char *uuid,
                                         struct pv_error *error)
{
    struct hotplug_domain *domain = domain_find(manager, uuid);
    if (domain)
        return domain;
    domain = calloc(1, sizeof(*domain));
    if (!domain || !(domain->kick = evtimer_new(manager->base, on_kick, domain))) {
        free(domain);
        pv_error_set(error, -ENOMEM, "out of memory");
        return NULL;
    }
    domain->manager = manager;
    snprintf(domain->uuid, sizeof(domain->uuid), "%s", uuid);
    domain->next = manager->domains;
    manager->domains = domain;
    return domain;
}

static void domain_schedule(struct hotplug_domain *domain)
{
    /* From the loop, never inline: `done` callbacks must not run inside the caller's call. */
    struct timeval now = {0, 0};
    evtimer_add(domain->kick, &now);
}

static void pending_free(struct hotplug_pending *pending)
{
    if (pending) {
        domain_device_free(pending->device);
        free(pending);
    }
}

static struct hotplug_pending *pending_take(struct hotplug_domain *domain, const char *alias)
{
    for (struct hotplug_pending **link = &domain->pending; *link; link = &(*link)->next)
        if (!strcmp((*link)->names.alias, alias)) {
            struct hotplug_pending *pending = *link;
            *link = pending->next;
            pending->next = NULL;
            return pending;
        }
    return NULL;
}

static struct hotplug_pending *pending_find(struct hotplug_domain *domain, const char *alias)
{
    for (struct hotplug_pending *pending = domain->pending; pending; pending = pending->next)
        if (!strcmp(pending->names.alias, alias))
            return pending;
    return NULL;
}

static void job_free(struct hotplug_job *job)
{
    if (!job)
        return;
    if (job->wait_timer)
        event_free(job->wait_timer);
    if (job->queue_timer)
        event_free(job->queue_timer);
    domain_device_free(job->device);
    store_job_list_free(job->entries, job->entries_total);
    free(job->existing_devices);
    free(job->existing_nodes);
    free(job);
}

static struct hotplug_job *job_new(struct hotplug_domain *domain, enum hotplug_job_type type,
                                   hotplug_done_fn done, void *opaque, struct pv_error *error)
{
    struct hotplug_job *job = calloc(1, sizeof(*job));
    if (!job) {
        pv_error_set(error, -ENOMEM, "out of memory");
        return NULL;
    }
    job->domain = domain;
    job->type = type;
    job->operation = type;
    job->done = done;
    job->opaque = opaque;
    job->journal_id = -1;
    job->wait_timeout_ms = domain->manager->config.detach_timeout_ms;
    return job;
}

static void job_enqueue(struct hotplug_domain *domain, struct hotplug_job *job)
{
    if (domain->queue_tail)
        domain->queue_tail->next = job;
    else
        domain->queue_head = job;
    domain->queue_tail = job;
    domain_schedule(domain);
}

static void journal_finish(struct hotplug_job *job, enum store_job_status status)
{
    if (job->journal_id < 0)
        return;
    struct pv_error error = {0};
    if (store_job_finish(job->domain->manager->store, job->journal_id, status, &error) < 0)
        pv_log_error("hotplug journal %lld: %s", (long long)job->journal_id, error.message);
}

static char *journal_data(const struct hotplug_job *job, const char *phase, int index)
{
    struct json_writer data;
    json_writer_init(&data, false);
    json_writer_begin_object(&data);
    json_writer_member_string(&data, "sequence", job->sequence->name);
    json_writer_member_string(&data, "alias", job->names.alias);
    json_writer_member_string(&data, "target", job->names.target);
    json_writer_member_int(&data, "slot", job->names.slot);
    json_writer_member_int(&data, "function", job->names.function);
    json_writer_member_int(&data, "flags", job->flags);
    json_writer_member_string(&data, "phase", phase);
    if (index >= 0 && index < job->sequence->step_count) {
        char step[160];
        const struct hotplug_step *entry = &job->sequence->steps[index];
        snprintf(step, sizeof(step), "%s %s",
                 strcmp(phase, "do") == 0 ? entry->command : entry->undo_command,
                 job->names.objects[index]);
        json_writer_member_string(&data, "step", step);
    }
    json_writer_end_object(&data);
    char *text = json_writer_steal(&data);
    json_writer_free(&data);
    return text;
}

static int device_row_put(struct hotplug_job *job, enum store_device_state state)
{
    struct hotplug_manager *manager = job->domain->manager;
    struct json_writer data;
    json_writer_init(&data, false);
    json_writer_begin_object(&data);
    json_writer_member_string(&data, "sequence", job->sequence->name);
    json_writer_key(&data, "objects");
    json_writer_begin_object(&data);
    for (int i = 0; i < job->sequence->step_count; i++) {
        const char *suffix = job->sequence->steps[i].object_suffix;
        json_writer_member_string(&data, suffix[0] ? suffix + 1 : "device", job->names.objects[i]);
    }
    json_writer_end_object(&data);
    json_writer_end_object(&data);
    char *xml = job->device ? domain_xml_format_device(job->device, NULL) : NULL;
    struct store_device row = {
        .kind = (char *)job->sequence->store_kind,
        .key = job->names.target,
        .alias = job->names.alias,
        .pci_slot = job->names.slot,
        .state = state,
        .xml = xml,
        .data_json = (char *)json_writer_text(&data),
    };
    snprintf(row.domain_uuid, sizeof(row.domain_uuid), "%s", job->domain->uuid);
    struct pv_error error = {0};
    int rc = store_device_put(manager->store, &row, &error);
    if (rc < 0)
        pv_log_error("hotplug: cannot record device %s: %s", job->names.target, error.message);
    free(xml);
    json_writer_free(&data);
    return rc;
}

/* TEST-ONLY: dies like a SIGKILLed daemon at the named point (hotplug_config). */
static void test_abort_at(struct hotplug_job *job, const char *point)
{
    const char *wanted = job->domain->manager->abort_after_step;
    if (wanted[0] != '\0' && strcmp(point, wanted) == 0) {
        pv_log_warning("fault injection: killing the daemon after %s (%s %s)", point, job->kind,
                       job->names.target);
        raise(SIGKILL);
    }
}

static const char *change_name(enum hotplug_change change)
{
    static const char *const names[] = {"attach-begin",  "attach-done",    "attach-undone",
                                        "detach-begin",  "detach-pending", "detach-done",
                                        "detach-refused"};
    return names[change];
}

/* What one job_commit writes: the definitions (ops->apply), the device row, the journal. */
enum row_action { ROW_KEEP = -2, ROW_DELETE = -1 };
enum journal_action { JOURNAL_KEEP = -2, JOURNAL_BEGIN = -1 };
struct job_commit {
    struct hotplug_job *job;
    enum hotplug_change change;
    int row;     /* enum row_action or a store_device_state */
    int journal; /* enum journal_action or a store_job_status */
};

static int journal_begin_in(struct hotplug_job *job, struct pv_error *error);

static int job_commit_in_transaction(struct store *store, void *arg, struct pv_error *error)
{
    struct job_commit *commit = arg;
    struct hotplug_job *job = commit->job;
    struct hotplug_manager *manager = job->domain->manager;
    const struct hotplug_ops *ops = manager->config.ops;
    int rc = 0;
    if (ops && ops->apply && job->device)
        rc = ops->apply(manager->config.opaque, job->domain->uuid, commit->change, job->device,
                        job->flags, error);
    if (rc == 0 && commit->row == ROW_DELETE) {
        rc = store_device_delete(store, job->domain->uuid, job->names.target, error);
        if (rc == -ENOENT)
            rc = 0;
    } else if (rc == 0 && commit->row >= 0) {
        rc = device_row_put(job, (enum store_device_state)commit->row);
    }
    if (rc == 0 && commit->change == HOTPLUG_DETACH_PENDING && job->journal_id >= 0) {
        /* The journal says the guest was asked and did not answer: recovery waits again
         * instead of repeating device_del. */
        char *data = journal_data(job, "pending", job->sequence->step_count - 1);
        rc = data ? store_job_step(store, job->journal_id, job->sequence->step_count - 1, data,
                                   error)
                  : pv_error_set(error, -ENOMEM, "out of memory");
        free(data);
    }
    if (rc == 0 && commit->journal == JOURNAL_BEGIN)
        rc = journal_begin_in(job, error);
    else if (rc == 0 && commit->journal >= 0 && job->journal_id >= 0)
        rc =
            store_job_finish(store, job->journal_id, (enum store_job_status)commit->journal, error);
    return rc;
}

/* Applies one change of the job in one transaction; a failure is logged and reported in the
 * job's result message (the QMP side already happened and cannot be taken back here). */
static int job_commit(struct hotplug_job *job, enum hotplug_change change, int row, int journal)
{
    struct job_commit commit = {job, change, row, journal};
    struct pv_error error = {0};
    int rc =
        store_transaction(job->domain->manager->store, job_commit_in_transaction, &commit, &error);
    if (rc < 0) {
        pv_log_error("hotplug %s %s: cannot record %s: %s", job->kind, job->names.target,
                     change_name(change), error.message);
        append(job->result.message, sizeof(job->result.message), "; cannot record %s: %s",
               change_name(change), error.message);
        return rc;
    }
    test_abort_at(job, change_name(change));
    return 0;
}

/* Ends the running job: `done`, then the next job of the domain. */
static void job_end(struct hotplug_job *job)
{
    struct hotplug_domain *domain = job->domain;
    if (job->wait_timer)
        evtimer_del(job->wait_timer);
    if (domain->running == job)
        domain->running = NULL;
    job->result.device = job->device;
    if (job->done)
        job->done(job->opaque, &job->result);
    job_free(job);
    domain_schedule(domain);
}

/* Timeout or lost connection: nothing more can be sent; the journal keeps the job RUNNING so
 * that hotplug_recover completes or rolls it back on the next connection. */
static void job_end_deferred(struct hotplug_job *job, int status, const char *command)
{
    char detail[160];
    if (status == -ETIMEDOUT)
        snprintf(detail, sizeof(detail), "timed out after %d ms",
                 job->domain->manager->config.qmp_timeout_ms);
    else
        snprintf(detail, sizeof(detail), "failed: %s", strerror(-status));
    result_set(&job->result, status, status == -ETIMEDOUT ? "timeout" : "internal", NULL, command,
               "%s %s: QMP command %s %s; the QMP connection was reset, and the job is completed "
               "or rolled back when the daemon reconnects",
               job->kind, job->names.target, command, detail);
    if (job->type == JOB_RECOVER)
        append(job->result.message, sizeof(job->result.message), " (recovery: %s)", job->report);
    job_end(job);
}

static void wait_timed_out(evutil_socket_t fd, short what, void *opaque);

static void on_step_reply(void *opaque, const struct qmp_connection_reply *reply);

static int send_command(struct hotplug_job *job, const char *command, const char *arguments)
{
    struct hotplug_domain *domain = job->domain;
    struct pv_error error = {0};
    clock_gettime(CLOCK_MONOTONIC, &job->step_started);
    int rc = domain->qmp ? qmp_connection_execute(domain->qmp, command, arguments,
                                                  domain->manager->config.qmp_timeout_ms,
                                                  on_step_reply, job, &error)
                         : pv_error_set(&error, -ENOTCONN, "no QMP connection");
    if (rc == 0)
        job->command_in_flight = true;
    return rc;
}

static void fail_unsent(struct hotplug_job *job, const char *command, int rc)
{
    result_set(&job->result, rc, "internal", NULL, command, "%s %s: cannot send %s: %s", job->kind,
               job->names.target, command,
               rc == -ENOTCONN ? "the QMP connection is closed" : strerror(-rc));
    job_end(job);
}

/* Closes the arguments object the caller filled, sends the step at job->index and frees the
 * arguments; a command that cannot be sent ends the job. */
static void send_step(struct hotplug_job *job, const char *command, struct json_writer *arguments)
{
    json_writer_end_object(arguments);
    snprintf(job->step_label, sizeof(job->step_label), "%s %s", command,
             job->names.objects[job->index]);
    int rc = json_writer_status(arguments) < 0
                 ? -ENOMEM
                 : send_command(job, command, json_writer_text(arguments));
    json_writer_free(arguments);
    if (rc < 0)
        fail_unsent(job, command, rc);
}

static void journal_step(struct hotplug_job *job, const char *phase)
{
    if (job->journal_id < 0)
        return;
    char *data = journal_data(job, phase, job->index);
    struct pv_error error = {0};
    if (store_job_step(job->domain->manager->store, job->journal_id, job->index, data, &error) < 0)
        pv_log_error("hotplug journal %lld: %s", (long long)job->journal_id, error.message);
    free(data);
    const struct hotplug_step *step = &job->sequence->steps[job->index];
    char point[96];
    snprintf(point, sizeof(point), "journal:%s%s",
             strcmp(phase, "undo") ? step->command : step->undo_command, step->object_suffix);
    test_abort_at(job, point);
}

/* --- endings ----------------------------------------------------------------------------- */

static void attach_succeeded(struct hotplug_job *job)
{
    job_commit(job, HOTPLUG_ATTACH_DONE, STORE_DEVICE_ATTACHED, STORE_JOB_DONE);
    result_set(&job->result, 0, "", NULL, NULL, "attached %s as %s", job->names.target,
               job->names.alias);
    job_end(job);
}

/* A recovery job's undo steps all ran: reports what was undone and goes on to the next entry. */
static void recovery_undo_finished(struct hotplug_job *job, const char *outcome)
{
    report_add(job, "%s %s %s (%s)%s%s", job->kind, job->names.target, outcome,
               job->undone[0] ? job->undone : "nothing was left",
               job->undo_failed ? "; left behind: " : "", job->undo_errors);
    job->recovery_failed |= job->undo_failed;
    recovery_next(job);
}

/* All undo steps ran (or were skipped). */
static void undo_finished(struct hotplug_job *job)
{
    if (job->operation == JOB_ATTACH) {
        /* A rollback: the device never became visible to the guest. */
        job_commit(job, HOTPLUG_ATTACH_UNDONE, ROW_DELETE,
                   job->undo_failed ? STORE_JOB_FAILED : STORE_JOB_ROLLED_BACK);
        if (job->type == JOB_RECOVER) {
            recovery_undo_finished(job, "rolled back");
            return;
        }
        if (job->undo_failed)
            append(job->result.message, sizeof(job->result.message),
                   "; rollback incomplete, left behind: %s", job->undo_errors);
        else
            append(job->result.message, sizeof(job->result.message), "; rolled back: %s",
                   job->undone[0] ? job->undone : "nothing to undo");
        job_end(job);
        return;
    }
    /* A detach: the guest released the device and its backends were deleted. */
    job_commit(job, HOTPLUG_DETACH_DONE, ROW_DELETE,
               job->undo_failed ? STORE_JOB_FAILED : STORE_JOB_DONE);
    if (job->type == JOB_RECOVER) {
        recovery_undo_finished(job, "finished");
        return;
    }
    if (job->undo_failed)
        result_set(&job->result, -EREMOTEIO, "qmp-error", job->result.qmp_class, job->result.step,
                   "%s left the guest, but releasing its backend failed, left behind: %s",
                   job->names.target, job->undo_errors);
    else
        result_set(&job->result, 0, "", NULL, NULL, "detached %s", job->names.target);
    job_end(job);
}

/* Moves the job's device onto the domain's list of devices the guest has not released yet
 * (best effort: without memory the device is only left in the store as detaching). */
static void pending_park(struct hotplug_job *job)
{
    struct hotplug_pending *pending = calloc(1, sizeof(*pending));
    if (!pending)
        return;
    pending->sequence = job->sequence;
    pending->device = job->device;
    job->device = NULL;
    pending->names = job->names;
    pending->flags = job->flags;
    pending->journal_id = job->journal_id;
    pending->next = job->domain->pending;
    job->domain->pending = pending;
}

/* The guest did not release the device in time: the job ends, the device stays detaching. */
static void detach_pending(struct hotplug_job *job)
{
    job_commit(job, HOTPLUG_DETACH_PENDING, STORE_DEVICE_DETACHING, JOURNAL_KEEP);
    pending_park(job);
    if (job->type == JOB_RECOVER) {
        report_add(job, "%s %s: device_del sent, still pending", job->kind, job->names.target);
        recovery_next(job);
        return;
    }
    job->result.status = 0;
    job->result.pending = true;
    snprintf(job->result.code, sizeof(job->result.code), "detach-pending");
    snprintf(job->result.message, sizeof(job->result.message),
             "detach requested; the guest has not released %s yet", job->names.target);
    job_end(job);
}

/* --- the step engine --------------------------------------------------------------------- */

static void wait_for_release(struct hotplug_job *job)
{
    job->phase = PHASE_WAIT;
    clock_gettime(CLOCK_MONOTONIC, &job->step_started);
    snprintf(job->step_label, sizeof(job->step_label), "waiting for the guest to release %s",
             job->names.alias);
    if (job->device_released) {
        job->index--;
        job->phase = PHASE_UNDO;
        step_run(job);
        return;
    }
    if (!job->wait_timer)
        job->wait_timer = evtimer_new(job->domain->manager->base, wait_timed_out, job);
    int timeout = job->wait_timeout_ms >= 0 ? job->wait_timeout_ms : HOTPLUG_DEFAULT_TIMEOUT_MS;
    struct timeval delay = {.tv_sec = timeout / 1000, .tv_usec = (timeout % 1000) * 1000};
    if (!job->wait_timer || evtimer_add(job->wait_timer, &delay) < 0)
        detach_pending(job);
}

static void wait_timed_out(evutil_socket_t fd, short what, void *opaque)
{
    struct hotplug_job *job = opaque;
    if (job->phase != PHASE_WAIT)
        return;
    if (job->device_released) {
        job->phase = PHASE_UNDO;
        job->index--;
        step_run(job);
    } else {
        detach_pending(job);
    }
}

static void step_run(struct hotplug_job *job)
{
    const struct hotplug_sequence *sequence = job->sequence;
    if (job->phase == PHASE_DO) {
        if (job->index >= sequence->step_count) {
            attach_succeeded(job);
            return;
        }
        const struct hotplug_step *step = &sequence->steps[job->index];
        journal_step(job, "do");
        struct json_writer arguments;
        json_writer_init(&arguments, false);
        json_writer_begin_object(&arguments);
        if (step->build(job->device, &job->names, &arguments) < 0) {
            /* Nothing was sent for this step: undo the ones before it. */
            json_writer_free(&arguments);
            job->failed = true;
            result_set(&job->result, -EINVAL, "internal", NULL, step->command,
                       "%s %s: cannot build the arguments of %s %s", job->kind, job->names.target,
                       step->command, job->names.objects[job->index]);
            job->phase = PHASE_UNDO;
            job->index--;
            step_run(job);
            return;
        }
        send_step(job, step->command, &arguments);
        return;
    }
    /* PHASE_UNDO */
    while (job->index >= 0 && job->skip[job->index])
        job->index--;
    if (job->index < 0) {
        undo_finished(job);
        return;
    }
    const struct hotplug_step *step = &sequence->steps[job->index];
    journal_step(job, "undo");
    struct json_writer arguments;
    json_writer_init(&arguments, false);
    json_writer_begin_object(&arguments);
    json_writer_member_string(&arguments, step->undo_id_member, job->names.objects[job->index]);
    send_step(job, step->undo_command, &arguments);
}

static void query_reply(struct hotplug_job *job, const struct qmp_connection_reply *reply);

static void test_abort_after(struct hotplug_job *job, const struct hotplug_step *step,
                             const char *command)
{
    char point[96];
    snprintf(point, sizeof(point), "%s%s", command, step->object_suffix);
    test_abort_at(job, point);
}

static void on_step_reply(void *opaque, const struct qmp_connection_reply *reply)
{
    struct hotplug_job *job = opaque;
    job->command_in_flight = false;
    if (job->orphaned) {
        job_free(job);
        return;
    }
    if (job->phase == PHASE_QUERY) {
        query_reply(job, reply);
        return;
    }
    const struct hotplug_step *step = &job->sequence->steps[job->index];
    const char *command = job->phase == PHASE_DO ? step->command : step->undo_command;
    if (reply->status == -ETIMEDOUT || reply->status == -ECONNRESET || reply->status == -ENOMEM) {
        job_end_deferred(job, reply->status, command);
        return;
    }
    if (reply->status == 0)
        test_abort_after(job, step, job->phase == PHASE_DO ? step->command : step->undo_command);
    if (job->phase == PHASE_DO) {
        if (reply->status == 0) {
            job->index++;
            step_run(job);
            return;
        }
        /* QMP errors are atomic: the failed step created nothing; undo the ones before it. */
        job->failed = true;
        result_set(&job->result, reply->status, "qmp-error", reply->error_class, step->command,
                   "%s %s: %s %s failed: %s", job->kind, job->names.target, step->command,
                   job->names.objects[job->index], reply->error_desc ? reply->error_desc : "");
        job->phase = PHASE_UNDO;
        job->index--;
        step_run(job);
        return;
    }
    /* PHASE_UNDO */
    bool device_step = step->object_kind == HOTPLUG_OBJECT_DEVICE;
    bool gone = reply->status == -EREMOTEIO && device_step && reply->error_class &&
                !strcmp(reply->error_class, "DeviceNotFound");
    if (reply->status == 0 || gone) {
        append(job->undone, sizeof(job->undone), "%s%s %s", job->undone[0] ? ", " : "",
               step->undo_command, job->names.objects[job->index]);
        if (device_step && !gone) {
            wait_for_release(job);
            return;
        }
        job->index--;
        step_run(job);
        return;
    }
    if (device_step) {
        /* device_del refused: the device stays, and so must everything it uses. */
        if (job->operation == JOB_DETACH && job->type != JOB_RECOVER) {
            job_commit(job, HOTPLUG_DETACH_REFUSED, STORE_DEVICE_ATTACHED, STORE_JOB_FAILED);
            result_set(&job->result, reply->status, "qmp-error", reply->error_class,
                       step->undo_command, "detach %s: %s %s failed: %s", job->names.target,
                       step->undo_command, job->names.alias,
                       reply->error_desc ? reply->error_desc : "");
            job_end(job);
            return;
        }
        job->undo_failed = true;
        append(job->undo_errors, sizeof(job->undo_errors), "%s%s %s: %s",
               job->undo_errors[0] ? ", " : "", step->undo_command, job->names.objects[job->index],
               reply->error_desc ? reply->error_desc : "");
        if (job->type == JOB_RECOVER) {
            /* The device stays in the guest: the definitions say so. */
            report_add(job, "%s %s: %s", job->kind, job->names.target, job->undo_errors);
            job->recovery_failed = true;
            job_commit(job,
                       job->operation == JOB_ATTACH ? HOTPLUG_ATTACH_DONE : HOTPLUG_DETACH_REFUSED,
                       STORE_DEVICE_ATTACHED, STORE_JOB_FAILED);
            recovery_next(job);
            return;
        }
        job_end(job);
        return;
    }
    /* A backend refused to go: report it, and keep undoing the rest. */
    job->undo_failed = true;
    if (!job->failed) {
        snprintf(job->result.qmp_class, sizeof(job->result.qmp_class), "%s",
                 reply->error_class ? reply->error_class : "");
        snprintf(job->result.step, sizeof(job->result.step), "%s", step->undo_command);
    }
    append(job->undo_errors, sizeof(job->undo_errors), "%s%s %s (%s)",
           job->undo_errors[0] ? ", " : "", step->undo_command, job->names.objects[job->index],
           reply->error_desc ? reply->error_desc : "");
    job->index--;
    step_run(job);
}

/* --- job starts ---------------------------------------------------------------------------- */

static int journal_begin_in(struct hotplug_job *job, struct pv_error *error)
{
    char *data = journal_data(job, job->operation == JOB_ATTACH ? "do" : "undo", -1);
    int rc = data ? store_job_begin(job->domain->manager->store, job->domain->uuid, job->kind,
                                    job->names.target, data, &job->journal_id, error)
                  : pv_error_set(error, -ENOMEM, "out of memory");
    free(data);
    if (rc < 0)
        job->journal_id = -1;
    return rc;
}

/* Fills the job's names from its (resolved) device; < 0 ends the job. */
static int job_describe(struct hotplug_job *job, bool attach)
{
    struct pv_error error = {0};
    memset(&job->names, 0, sizeof(job->names));
    if (job->sequence->describe(job->device, attach, &job->names, &error) < 0) {
        result_set(&job->result, error.code ? error.code : -EINVAL, "preflight-failed", NULL, NULL,
                   "%s", error.message);
        return -EINVAL;
    }
    names_fill_objects(job->sequence, &job->names);
    return 0;
}

/* The first change of a job: journal entry, device row and definition in one transaction. */
static int job_begin(struct hotplug_job *job, enum hotplug_change change,
                     enum store_device_state row)
{
    struct job_commit commit = {job, change, row, JOURNAL_BEGIN};
    struct pv_error error = {0};
    int rc =
        store_transaction(job->domain->manager->store, job_commit_in_transaction, &commit, &error);
    if (rc < 0) {
        job->journal_id = -1;
        result_set(&job->result, rc, "internal", NULL, NULL, "%s %s: cannot journal the job: %s",
                   job->kind, job->names.target, error.message);
        return rc;
    }
    test_abort_at(job, change_name(change));
    return 0;
}

static void job_start(struct hotplug_job *job)
{
    struct hotplug_domain *domain = job->domain;
    int device_index = job->sequence ? job->sequence->step_count - 1 : 0;
    switch (job->type) {
    case JOB_ATTACH: {
        /* Allocation happens here, at the head of the domain's queue, so that jobs queued
         * together see each other's devices (slots, aliases, targets). */
        const struct hotplug_ops *ops = domain->manager->config.ops;
        struct pv_error error = {0};
        if (ops && ops->attach_prepare &&
            ops->attach_prepare(domain->manager->config.opaque, domain->uuid, job->device,
                                job->flags, &error) < 0) {
            result_set(&job->result, error.code ? error.code : -EINVAL,
                       error.code == -EBUSY ? "busy" : "preflight-failed", NULL, NULL, "%s",
                       error.message);
            job_end(job);
            return;
        }
        if (job_describe(job, true) < 0) {
            job_end(job);
            return;
        }
        if (pending_find(domain, job->names.alias)) {
            result_set(&job->result, -EBUSY, "busy", NULL, NULL,
                       "%s is still being detached (%s); it cannot be attached again yet",
                       job->names.target, job->names.alias);
            job_end(job);
            return;
        }
        if (job_begin(job, HOTPLUG_ATTACH_BEGIN, STORE_DEVICE_ATTACHING) < 0) {
            job_end(job);
            return;
        }
        job->phase = PHASE_DO;
        job->index = 0;
        step_run(job);
        return;
    }
    case JOB_DETACH: {
        /* The device as the domain has it now (an earlier job may have changed it). */
        const struct hotplug_ops *ops = domain->manager->config.ops;
        if (ops && ops->lookup) {
            struct domain_device *current =
                ops->lookup(domain->manager->config.opaque, domain->uuid, job->names.target);
            if (!current) {
                result_set(&job->result, -ENOENT, "invalid-argument", NULL, NULL,
                           "no %s with target %s in the live definition", job->sequence->name,
                           job->names.target);
                job_end(job);
                return;
            }
            domain_device_free(job->device);
            job->device = current;
        }
        if (job_describe(job, false) < 0) {
            job_end(job);
            return;
        }
        /* Never resend device_del for a device the guest was already asked to release. */
        struct hotplug_pending *pending = pending_take(domain, job->names.alias);
        if (pending) {
            job->journal_id = pending->journal_id;
            job->flags |= pending->flags;
            job->device_released = pending->released;
            pending_free(pending);
            job->index = device_index;
            wait_for_release(job);
            return;
        }
        if (job_begin(job, HOTPLUG_DETACH_BEGIN, STORE_DEVICE_DETACHING) < 0) {
            job_end(job);
            return;
        }
        job->phase = PHASE_UNDO;
        job->index = device_index;
        step_run(job);
        return;
    }
    case JOB_CLEANUP: {
        struct hotplug_pending *pending = pending_take(domain, job->names.alias);
        if (!pending) { /* a detach job took it over meanwhile */
            job->done = NULL;
            job_end(job);
            return;
        }
        job->sequence = pending->sequence;
        job->names = pending->names;
        job->flags = pending->flags;
        job->journal_id = pending->journal_id;
        job->device = pending->device;
        pending->device = NULL;
        pending_free(pending);
        snprintf(job->kind, sizeof(job->kind), "detach-%s", job->sequence->name);
        job->device_released = true;
        job->phase = PHASE_UNDO;
        job->index = job->sequence->step_count - 2;
        step_run(job);
        return;
    }
    case JOB_RECOVER:
        job->phase = PHASE_QUERY;
        job->index = 0;
        snprintf(job->step_label, sizeof(job->step_label), "query-pci");
        int rc = send_command(job, "query-pci", NULL);
        if (rc < 0)
            fail_unsent(job, "query-pci", rc);
        return;
    }
}

static void on_kick(evutil_socket_t fd, short what, void *opaque)
{
    struct hotplug_domain *domain = opaque;
    if (domain->running || !domain->queue_head)
        return;
    struct hotplug_job *job = domain->queue_head;
    domain->queue_head = job->next;
    if (!domain->queue_head)
        domain->queue_tail = NULL;
    job->next = NULL;
    if (job->queue_timer)
        evtimer_del(job->queue_timer);
    domain->running = job;
    job_start(job);
}

/* --- recovery ------------------------------------------------------------------------------ */

static bool id_listed(yajl_val list, const char *member, const char *id)
{
    if (!YAJL_IS_ARRAY(list))
        return false;
    for (size_t i = 0; i < list->u.array.len; i++) {
        yajl_val entry = list->u.array.values[i];
        const char *value = json_get_string(entry, member);
        if (value && !strcmp(value, id))
            return true;
        /* query-pci nests devices per bus, and behind bridges */
        if (id_listed(json_get_array(entry, "devices"), member, id))
            return true;
        yajl_val bridge = json_get_object(entry, "pci_bridge");
        if (bridge && id_listed(json_get_array(bridge, "devices"), member, id))
            return true;
    }
    return false;
}

static bool object_exists(struct hotplug_job *job, enum hotplug_object_kind kind, const char *id)
{
    const char *text = kind == HOTPLUG_OBJECT_DEVICE ? job->existing_devices : job->existing_nodes;
    yajl_val root =
        text ? json_parse(text, strlen(text), HOTPLUG_MAX_QUERY_SIZE, JSON_MAX_DEPTH, NULL) : NULL;
    bool found = id_listed(root, kind == HOTPLUG_OBJECT_DEVICE ? "qdev_id" : "node-name", id);
    if (root)
        yajl_tree_free(root);
    return found;
}

static struct domain_device *minimal_device(const struct hotplug_names *names)
{
    struct domain_device *device = calloc(1, sizeof(*device));
    if (!device)
        return NULL;
    device->kind = DOMAIN_DEVICE_DISK;
    device->disk.alias = strdup(names->alias);
    device->disk.target_dev = strdup(names->target);
    if (names->slot >= 0) {
        device->disk.address.type = DOMAIN_ADDRESS_PCI;
        device->disk.address.slot = (unsigned)names->slot;
        device->disk.address.function = (unsigned)names->function;
    }
    return device;
}

static void recovery_finish(struct hotplug_job *job)
{
    if (job->recovery_failed)
        result_set(&job->result, -EREMOTEIO, "qmp-error", NULL, NULL, "recovery incomplete: %s",
                   job->report);
    else
        result_set(&job->result, 0, "", NULL, NULL, "%s",
                   job->report[0] ? job->report : "nothing to recover");
    job_end(job);
}

/* Sets the job up for the next journal entry and runs it; entries needing no QMP loop here. */
static void recovery_next(struct hotplug_job *job)
{
    for (;;) {
        domain_device_free(job->device);
        job->device = NULL;
        if (job->entry_index >= job->entry_count) {
            job->journal_id = -1;
            recovery_finish(job);
            return;
        }
        struct store_job *entry = &job->entries[job->entry_index++];
        job->journal_id = entry->id;
        snprintf(job->kind, sizeof(job->kind), "%s", entry->kind ? entry->kind : "?");
        yajl_val data = entry->data_json ? json_parse(entry->data_json, strlen(entry->data_json),
                                                      65536, 16, NULL)
                                         : NULL;
        const struct hotplug_sequence *sequence =
            sequence_by_name(json_get_string(data, "sequence"));
        const char *alias = json_get_string(data, "alias");
        const char *phase = json_get_string(data, "phase");
        bool attach = entry->kind && !strncmp(entry->kind, "attach-", 7);
        if (!sequence || !alias || !phase) {
            report_add(job, "job %lld (%s): unreadable journal entry", (long long)entry->id,
                       job->kind);
            job->recovery_failed = true;
            journal_finish(job, STORE_JOB_FAILED);
            if (data)
                yajl_tree_free(data);
            continue;
        }
        memset(&job->names, 0, sizeof(job->names));
        snprintf(job->names.alias, sizeof(job->names.alias), "%s", alias);
        snprintf(job->names.target, sizeof(job->names.target), "%s",
                 json_get_string(data, "target") ? json_get_string(data, "target")
                                                 : entry->device_key);
        int64_t number = -1;
        job->names.slot = json_get_int64(data, "slot", &number) ? (int)number : -1;
        job->names.function = json_get_int64(data, "function", &number) ? (int)number : 0;
        job->flags = json_get_int64(data, "flags", &number) ? (unsigned)number : 0;
        bool rolling_back = strcmp(phase, "do") != 0;
        /* Whether any step was journaled: a detach's first step is device_del. */
        bool step_journaled = json_get_string(data, "step") != NULL;
        /* The detach had already ended as pending (the guest was asked, and did not
         * answer in time): asking again would only delay recovery by a full timeout. */
        bool was_pending = !strcmp(phase, "pending");
        yajl_tree_free(data);
        job->sequence = sequence;
        names_fill_objects(sequence, &job->names);
        /* The device as the job's first change put it into the live definition (the same
         * transaction that began this journal entry); the journal's names otherwise. */
        const struct hotplug_ops *ops = job->domain->manager->config.ops;
        job->device = ops && ops->lookup ? ops->lookup(job->domain->manager->config.opaque,
                                                       job->domain->uuid, job->names.target)
                                         : NULL;
        if (!job->device)
            job->device = minimal_device(&job->names);
        job->operation = attach ? JOB_ATTACH : JOB_DETACH;
        job->failed = rolling_back && attach;
        job->undo_failed = false;
        job->device_released = false;
        job->undone[0] = job->undo_errors[0] = 0;
        bool all_exist = true;
        int device_index = sequence->step_count - 1;
        for (int i = 0; i < sequence->step_count; i++) {
            job->skip[i] =
                !object_exists(job, sequence->steps[i].object_kind, job->names.objects[i]);
            all_exist &= !job->skip[i];
        }
        bool device_present = !job->skip[device_index];
        if (attach && !rolling_back && all_exist) {
            /* device_add went through before the crash: finish what the user asked for,
             * exactly as the job would have. */
            job_commit(job, HOTPLUG_ATTACH_DONE, STORE_DEVICE_ATTACHED, STORE_JOB_DONE);
            report_add(job, "%s %s completed", job->kind, job->names.target);
            continue;
        }
        if (!attach && device_present && !was_pending) {
            /* device_del was not sent, or was sent (step_journaled) but the daemon died
             * before the guest answered: carry the detach on as the job would have
             * (device_del again: QEMU accepts a repeated request once its first expired). */
            (void)step_journaled;
            report_add(job, "%s %s resumed", job->kind, job->names.target);
            job->phase = PHASE_UNDO;
            job->index = device_index;
            step_run(job);
            return;
        }
        if (!attach && device_present) {
            /* a pending detach: keep waiting, do not resend device_del. */
            job_commit(job, HOTPLUG_DETACH_PENDING, STORE_DEVICE_DETACHING, JOURNAL_KEEP);
            pending_park(job);
            report_add(job, "%s %s still pending", job->kind, job->names.target);
            continue;
        }
        /* Undo whatever exists, newest first; a present device is unplugged first (and its
         * backends released only once the guest let it go). */
        job->phase = PHASE_UNDO;
        job->index = device_index;
        step_run(job);
        return;
    }
}

static void query_reply(struct hotplug_job *job, const struct qmp_connection_reply *reply)
{
    const char *command = job->index == 0 ? "query-pci" : "query-named-block-nodes";
    if (reply->status == -ETIMEDOUT || reply->status == -ECONNRESET || reply->status == -ENOMEM) {
        job_end_deferred(job, reply->status, command);
        return;
    }
    if (reply->status < 0) {
        result_set(&job->result, reply->status, "qmp-error", reply->error_class, command,
                   "recovery: %s failed: %s", command, reply->error_desc ? reply->error_desc : "");
        job_end(job);
        return;
    }
    char *copy = strdup(reply->return_json);
    if (job->index == 0) {
        job->existing_devices = copy;
        job->index = 1;
        snprintf(job->step_label, sizeof(job->step_label), "query-named-block-nodes");
        int rc = send_command(job, "query-named-block-nodes", "{\"flat\": true}");
        if (rc < 0)
            fail_unsent(job, "query-named-block-nodes", rc);
        return;
    }
    job->existing_nodes = copy;
    /* The journal entries of this domain, minus the ones a pending detach already holds. */
    struct store_job *all = NULL;
    size_t count = 0;
    struct pv_error error = {0};
    if (store_job_list_unfinished(job->domain->manager->store, &all, &count, &error) < 0) {
        result_set(&job->result, error.code, "internal", NULL, NULL,
                   "recovery: cannot read the journal: %s", error.message);
        job_end(job);
        return;
    }
    size_t kept = 0;
    for (size_t i = 0; i < count; i++) {
        bool held = false;
        for (struct hotplug_pending *p = job->domain->pending; p; p = p->next)
            held |= p->journal_id == all[i].id;
        if (!held && !strcasecmp(all[i].domain_uuid, job->domain->uuid)) {
            struct store_job swap = all[kept];
            all[kept++] = all[i];
            all[i] = swap;
        }
    }
    /* The walk stops at `kept`; the rest (other domains) is only freed with the list. */
    job->entries = all;
    job->entries_total = count;
    job->entry_count = kept;
    job->entry_index = 0;
    recovery_next(job);
}

/* --- public API ------------------------------------------------------------------------------ */

struct hotplug_manager *hotplug_manager_create(struct event_base *base, struct store *store,
                                               const struct hotplug_config *config,
                                               struct pv_error *error)
{
    struct hotplug_manager *manager = calloc(1, sizeof(*manager));
    if (!manager) {
        pv_error_set(error, -ENOMEM, "out of memory");
        return NULL;
    }
    manager->base = base;
    manager->store = store;
    if (config)
        manager->config = *config;
    if (manager->config.qmp_timeout_ms <= 0)
        manager->config.qmp_timeout_ms = HOTPLUG_DEFAULT_TIMEOUT_MS;
    if (manager->config.detach_timeout_ms <= 0)
        manager->config.detach_timeout_ms = HOTPLUG_DEFAULT_TIMEOUT_MS;
    if (manager->config.job_wait_timeout_ms <= 0)
        manager->config.job_wait_timeout_ms = HOTPLUG_DEFAULT_JOB_WAIT_MS;
    if (manager->config.abort_after_step && manager->config.abort_after_step[0]) {
        snprintf(manager->abort_after_step, sizeof(manager->abort_after_step), "%s",
                 manager->config.abort_after_step);
        pv_log_warning("fault injection: the daemon kills itself after the hotplug point %s",
                       manager->abort_after_step);
    }
    manager->config.abort_after_step = NULL;
    return manager;
}

/* A job whose QMP command is still in flight cannot be freed: its reply callback will run
 * (the connection guarantees it), so it is marked and freed there. */
static void job_discard(struct hotplug_job *job)
{
    if (job->wait_timer)
        evtimer_del(job->wait_timer);
    if (job->command_in_flight)
        job->orphaned = true;
    else
        job_free(job);
}

void hotplug_manager_destroy(struct hotplug_manager *manager)
{
    if (!manager)
        return;
    while (manager->domains) {
        struct hotplug_domain *domain = manager->domains;
        manager->domains = domain->next;
        if (domain->running)
            job_discard(domain->running);
        while (domain->queue_head) {
            struct hotplug_job *job = domain->queue_head;
            domain->queue_head = job->next;
            job_free(job);
        }
        while (domain->pending) {
            struct hotplug_pending *pending = domain->pending;
            domain->pending = pending->next;
            pending_free(pending);
        }
        event_free(domain->kick);
        free(domain);
    }
    free(manager);
}

void hotplug_set_qmp(struct hotplug_manager *manager, const char *domain_uuid,
                     struct qmp_connection *qmp)
{
    struct hotplug_domain *domain = domain_find(manager, domain_uuid);
    if (domain)
        domain->qmp = qmp;
    else if (qmp && (domain = domain_get(manager, domain_uuid, NULL)))
        domain->qmp = qmp;
}

/* A request waited job_wait_timeout_ms behind another job: it fails with "busy", naming the
 * job that holds the domain, instead of hanging behind a guest that never answers. */
static void queue_wait_timed_out(evutil_socket_t fd, short what, void *opaque)
{
    struct hotplug_job *job = opaque;
    struct hotplug_domain *domain = job->domain;
    struct hotplug_job *previous = NULL, *entry = domain->queue_head;
    while (entry && entry != job) {
        previous = entry;
        entry = entry->next;
    }
    if (!entry) /* started meanwhile */
        return;
    if (previous)
        previous->next = job->next;
    else
        domain->queue_head = job->next;
    if (domain->queue_tail == job)
        domain->queue_tail = previous;
    job->next = NULL;
    const char *holder = hotplug_busy_description(domain->manager, domain->uuid);
    result_set(&job->result, -EBUSY, "busy", NULL, NULL,
               "domain is busy with %s; %s %s gave up after waiting %.1f s",
               holder ? holder : "another job", job->kind, job->names.target,
               elapsed_seconds(&job->queued_at));
    pv_log_warning("domain %s: %s", domain->uuid, job->result.message);
    if (job->done)
        job->done(job->opaque, &job->result);
    job_free(job);
}

static int queue_device_job(struct hotplug_manager *manager, enum hotplug_job_type type,
                            const char *domain_uuid, struct qmp_connection *qmp,
                            const struct domain_device *device, unsigned flags, int timeout_ms,
                            hotplug_done_fn done, void *opaque, struct pv_error *error)
{
    const struct hotplug_sequence *sequence = sequence_for_kind(device, error);
    if (!sequence)
        return error && error->code ? error->code : -EOPNOTSUPP;
    struct hotplug_names names = {.slot = -1};
    if (device->kind == DOMAIN_DEVICE_DISK && device->disk.target_dev)
        snprintf(names.target, sizeof(names.target), "%s", device->disk.target_dev);
    struct hotplug_domain *domain = domain_get(manager, domain_uuid, error);
    if (!domain)
        return -ENOMEM;
    struct hotplug_job *job = job_new(domain, type, done, opaque, error);
    if (!job)
        return -ENOMEM;
    job->sequence = sequence;
    job->names = names;
    job->flags = flags;
    job->device = domain_device_copy(device);
    if (!job->device) {
        job_free(job);
        return pv_error_set(error, -ENOMEM, "out of memory");
    }
    snprintf(job->kind, sizeof(job->kind), "%s-%s", type == JOB_ATTACH ? "attach" : "detach",
             sequence->name);
    if (timeout_ms >= 0)
        job->wait_timeout_ms = timeout_ms;
    if (qmp)
        domain->qmp = qmp;
    clock_gettime(CLOCK_MONOTONIC, &job->queued_at);
    if (domain->running || domain->queue_head) {
        int wait_ms = manager->config.job_wait_timeout_ms;
        struct timeval delay = {.tv_sec = wait_ms / 1000, .tv_usec = (wait_ms % 1000) * 1000};
        job->queue_timer = evtimer_new(manager->base, queue_wait_timed_out, job);
        if (!job->queue_timer || evtimer_add(job->queue_timer, &delay) < 0) {
            job_free(job);
            return pv_error_set(error, -ENOMEM, "cannot arm the job wait timer");
        }
    }
    job_enqueue(domain, job);
    return 0;
}

int hotplug_attach(struct hotplug_manager *manager, const char *domain_uuid,
                   struct qmp_connection *qmp, const struct domain_device *device, unsigned flags,
                   hotplug_done_fn done, void *opaque, struct pv_error *error)
{
    return queue_device_job(manager, JOB_ATTACH, domain_uuid, qmp, device, flags, -1, done, opaque,
                            error);
}

int hotplug_detach(struct hotplug_manager *manager, const char *domain_uuid,
                   struct qmp_connection *qmp, const struct domain_device *device, unsigned flags,
                   int timeout_ms, hotplug_done_fn done, void *opaque, struct pv_error *error)
{
    return queue_device_job(manager, JOB_DETACH, domain_uuid, qmp, device, flags, timeout_ms, done,
                            opaque, error);
}

const char *hotplug_busy_description(struct hotplug_manager *manager, const char *domain_uuid)
{
    struct hotplug_domain *domain = domain_find(manager, domain_uuid);
    if (!domain || !domain->running)
        return NULL;
    struct hotplug_job *job = domain->running;
    double seconds = elapsed_seconds(&job->step_started);
    const char *prefix = job->type == JOB_RECOVER ? "recovery: " : "";
    if (job->phase == PHASE_WAIT)
        snprintf(domain->busy, sizeof(domain->busy),
                 "%s%s %s: waiting %.1f s for the guest to release %s", prefix, job->kind,
                 job->names.target, seconds, job->names.alias);
    else if (job->step_label[0])
        snprintf(domain->busy, sizeof(domain->busy), "%s%s %s: %s sent %.1f s ago", prefix,
                 job->kind, job->names.target, job->step_label, seconds);
    else
        snprintf(domain->busy, sizeof(domain->busy), "%s%s %s: starting", prefix, job->kind,
                 job->names.target);
    size_t queued = 0;
    for (struct hotplug_job *next = domain->queue_head; next; next = next->next)
        queued++;
    if (queued)
        append(domain->busy, sizeof(domain->busy), " (%zu more queued)", queued);
    return domain->busy;
}

void hotplug_handle_event(struct hotplug_manager *manager, const char *domain_uuid,
                          const char *event_name, const char *data_json)
{
    if (strcmp(event_name, "DEVICE_DELETED") || !data_json)
        return;
    struct hotplug_domain *domain = domain_find(manager, domain_uuid);
    if (!domain)
        return;
    yajl_val data = json_parse(data_json, strlen(data_json), 65536, 16, NULL);
    const char *alias = json_get_string(data, "device");
    if (!alias) { /* devices without an id only have a "path" */
        if (data)
            yajl_tree_free(data);
        return;
    }
    struct hotplug_job *job = domain->running;
    if (job && job->sequence && !strcmp(job->names.alias, alias) &&
        (job->phase == PHASE_UNDO || job->phase == PHASE_WAIT)) {
        job->device_released = true;
        if (job->phase == PHASE_WAIT && job->wait_timer) {
            /* Continue from the loop (not inside the caller's event dispatch). */
            struct timeval now = {0, 0};
            evtimer_add(job->wait_timer, &now);
        }
    } else {
        struct hotplug_pending *pending = pending_find(domain, alias);
        if (pending && !pending->released) {
            pending->released = true;
            struct hotplug_job *cleanup = job_new(domain, JOB_CLEANUP, NULL, NULL, NULL);
            if (cleanup) {
                cleanup->operation = JOB_DETACH;
                cleanup->names = pending->names;
                snprintf(cleanup->kind, sizeof(cleanup->kind), "detach-%s",
                         pending->sequence->name);
                job_enqueue(domain, cleanup);
            }
        }
    }
    yajl_tree_free(data);
}

int hotplug_recover(struct hotplug_manager *manager, const char *domain_uuid,
                    struct qmp_connection *qmp, hotplug_done_fn done, void *opaque,
                    struct pv_error *error)
{
    struct hotplug_domain *domain = domain_get(manager, domain_uuid, error);
    if (!domain)
        return -ENOMEM;
    struct hotplug_job *job = job_new(domain, JOB_RECOVER, done, opaque, error);
    if (!job)
        return -ENOMEM;
    snprintf(job->kind, sizeof(job->kind), "recover");
    if (qmp)
        domain->qmp = qmp;
    job_enqueue(domain, job);
    return 0;
}

void hotplug_domain_stopped(struct hotplug_manager *manager, const char *domain_uuid)
{
    struct hotplug_domain *domain = domain_find(manager, domain_uuid);
    if (!domain)
        return;
    domain->qmp = NULL;
    /* Unhook everything first: the `done` callbacks may queue new work. */
    struct hotplug_job *running = domain->running;
    struct hotplug_job *queued = domain->queue_head;
    domain->running = NULL;
    domain->queue_head = domain->queue_tail = NULL;
    while (domain->pending) {
        struct hotplug_pending *pending = domain->pending;
        domain->pending = pending->next;
        pending_free(pending);
    }
    /* Nothing of the VMM is left: unfinished journal jobs and transitional rows go. */
    struct store_job *jobs = NULL;
    size_t count = 0;
    if (store_job_list_unfinished(manager->store, &jobs, &count, NULL) == 0) {
        for (size_t i = 0; i < count; i++)
            if (!strcasecmp(jobs[i].domain_uuid, domain->uuid))
                store_job_finish(manager->store, jobs[i].id, STORE_JOB_FAILED, NULL);
        store_job_list_free(jobs, count);
    }
    struct store_device *devices = NULL;
    if (store_device_list(manager->store, domain->uuid, &devices, &count, NULL) == 0) {
        for (size_t i = 0; i < count; i++)
            if (devices[i].state != STORE_DEVICE_ATTACHED)
                store_device_delete(manager->store, domain->uuid, devices[i].key, NULL);
        store_device_list_free(devices, count);
    }
    for (struct hotplug_job *job = running; job;) {
        struct hotplug_job *next = job == running ? queued : job->next;
        result_set(&job->result, -ECONNRESET, "not-running", NULL, NULL,
                   "%s %s: the domain stopped", job->kind, job->names.target);
        if (job->done)
            job->done(job->opaque, &job->result);
        job_discard(job);
        job = next;
    }
    if (!running)
        for (struct hotplug_job *job = queued; job;) {
            struct hotplug_job *next = job->next;
            result_set(&job->result, -ECONNRESET, "not-running", NULL, NULL,
                       "%s %s: the domain stopped", job->kind, job->names.target);
            if (job->done)
                job->done(job->opaque, &job->result);
            job_free(job);
            job = next;
        }
}

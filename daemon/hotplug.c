/* The hotplug orchestrator: see hotplug.h.
 *
 * The parts: hotplug_sequences.c (the sequence table), hotplug_steps.c (the step engine),
 * hotplug_journal.c (journal, device rows, definition changes), hotplug_recovery.c (replay
 * after a restart); this file holds the queues, job starts and the public API.
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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hotplug_internal.h"
#include "pv_log.h"

static double elapsed_seconds(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - since->tv_sec) + (now.tv_nsec - since->tv_nsec) / 1e9;
}

void hotplug_append(char *buffer, size_t size, const char *format, ...)
{
    size_t used = strlen(buffer);
    if (used + 1 >= size)
        return;
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(buffer + used, size - used, format, arguments);
    va_end(arguments);
}

void hotplug_result_set(struct hotplug_result *result, int status, const char *code,
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
void hotplug_report_add(struct hotplug_job *job, const char *format, ...)
{
    char entry[sizeof(job->report)];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(entry, sizeof(entry), format, arguments);
    va_end(arguments);
    hotplug_append(job->report, sizeof(job->report), "%s%s", job->report[0] ? "; " : "", entry);
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

void hotplug_domain_schedule(struct hotplug_domain *domain)
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

void hotplug_job_free(struct hotplug_job *job)
{
    if (!job)
        return;
    if (job->wait_timer)
        event_free(job->wait_timer);
    if (job->queue_timer)
        event_free(job->queue_timer);
    tap_device_close(&job->tap);
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
    hotplug_domain_schedule(domain);
}

/* --- job starts ---------------------------------------------------------------------------- */
/* Fills the job's names from its (resolved) device; < 0 ends the job. */
static int job_describe(struct hotplug_job *job, bool attach)
{
    struct pv_error error = {0};
    memset(&job->names, 0, sizeof(job->names));
    if (job->sequence->describe(job->device, attach, &job->names, &error) < 0) {
        hotplug_result_set(&job->result, error.code ? error.code : -EINVAL, "preflight-failed",
                           NULL, NULL, "%s", error.message);
        return -EINVAL;
    }
    hotplug_names_fill_objects(job->sequence, &job->names);
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
            hotplug_result_set(&job->result, error.code ? error.code : -EINVAL,
                               error.code == -EBUSY ? "busy" : "preflight-failed", NULL, NULL, "%s",
                               error.message);
            hotplug_job_end(job);
            return;
        }
        if (job_describe(job, true) < 0) {
            hotplug_job_end(job);
            return;
        }
        if (pending_find(domain, job->names.alias)) {
            hotplug_result_set(&job->result, -EBUSY, "busy", NULL, NULL,
                               "%s is still being detached (%s); it cannot be attached again yet",
                               job->names.target, job->names.alias);
            hotplug_job_end(job);
            return;
        }
        if (hotplug_job_begin(job, HOTPLUG_ATTACH_BEGIN, STORE_DEVICE_ATTACHING) < 0) {
            hotplug_job_end(job);
            return;
        }
        job->phase = PHASE_DO;
        job->index = 0;
        hotplug_step_run(job);
        return;
    }
    case JOB_DETACH: {
        /* The device as the domain has it now (an earlier job may have changed it). */
        const struct hotplug_ops *ops = domain->manager->config.ops;
        if (ops && ops->lookup) {
            struct domain_device *current =
                ops->lookup(domain->manager->config.opaque, domain->uuid, job->names.target);
            if (!current) {
                hotplug_result_set(&job->result, -ENOENT, "invalid-argument", NULL, NULL,
                                   "no %s with target %s in the live definition",
                                   job->sequence->name, job->names.target);
                hotplug_job_end(job);
                return;
            }
            domain_device_free(job->device);
            job->device = current;
        }
        if (job_describe(job, false) < 0) {
            hotplug_job_end(job);
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
            hotplug_wait_for_release(job);
            return;
        }
        if (hotplug_job_begin(job, HOTPLUG_DETACH_BEGIN, STORE_DEVICE_DETACHING) < 0) {
            hotplug_job_end(job);
            return;
        }
        job->phase = PHASE_UNDO;
        job->index = device_index;
        hotplug_step_run(job);
        return;
    }
    case JOB_CLEANUP: {
        struct hotplug_pending *pending = pending_take(domain, job->names.alias);
        if (!pending) { /* a detach job took it over meanwhile */
            job->done = NULL;
            hotplug_job_end(job);
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
        hotplug_step_run(job);
        return;
    }
    case JOB_RECOVER:
        job->phase = PHASE_QUERY;
        job->index = 0;
        snprintf(job->step_label, sizeof(job->step_label), "query-pci");
        int rc = hotplug_send_command(job, "query-pci", NULL);
        if (rc < 0)
            hotplug_fail_unsent(job, "query-pci", rc);
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
        hotplug_job_free(job);
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
            hotplug_job_free(job);
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
    hotplug_result_set(&job->result, -EBUSY, "busy", NULL, NULL,
                       "domain is busy with %s; %s %s gave up after waiting %.1f s",
                       holder ? holder : "another job", job->kind, job->names.target,
                       elapsed_seconds(&job->queued_at));
    pv_log_warning("domain %s: %s", domain->uuid, job->result.message);
    if (job->done)
        job->done(job->opaque, &job->result);
    hotplug_job_free(job);
}

static int queue_device_job(struct hotplug_manager *manager, enum hotplug_job_type type,
                            const char *domain_uuid, struct qmp_connection *qmp,
                            const struct domain_device *device, unsigned flags, int timeout_ms,
                            hotplug_done_fn done, void *opaque, struct pv_error *error)
{
    const struct hotplug_sequence *sequence = hotplug_sequence_for_kind(device, error);
    if (!sequence)
        return error && error->code ? error->code : -EOPNOTSUPP;
    struct hotplug_names names = {.slot = -1};
    if (device->kind == DOMAIN_DEVICE_DISK && device->disk.target_dev)
        snprintf(names.target, sizeof(names.target), "%s", device->disk.target_dev);
    if (device->kind == DOMAIN_DEVICE_INTERFACE && device->interface.mac)
        snprintf(names.target, sizeof(names.target), "%s", device->interface.mac);
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
        hotplug_job_free(job);
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
            hotplug_job_free(job);
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
        hotplug_append(domain->busy, sizeof(domain->busy), " (%zu more queued)", queued);
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
        hotplug_result_set(&job->result, -ECONNRESET, "not-running", NULL, NULL,
                           "%s %s: the domain stopped", job->kind, job->names.target);
        if (job->done)
            job->done(job->opaque, &job->result);
        job_discard(job);
        job = next;
    }
    if (!running)
        for (struct hotplug_job *job = queued; job;) {
            struct hotplug_job *next = job->next;
            hotplug_result_set(&job->result, -ECONNRESET, "not-running", NULL, NULL,
                               "%s %s: the domain stopped", job->kind, job->names.target);
            if (job->done)
                job->done(job->opaque, &job->result);
            hotplug_job_free(job);
            job = next;
        }
}

/* The step engine: runs a job's steps, undoes them, waits for the guest to release a
 * device, and ends the job (see hotplug.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotplug_internal.h"
#include "pv_log.h"

/* Ends the running job: `done`, then the next job of the domain. */
void hotplug_job_end(struct hotplug_job *job)
{
    struct hotplug_domain *domain = job->domain;
    if (job->wait_timer)
        evtimer_del(job->wait_timer);
    if (domain->running == job)
        domain->running = NULL;
    job->result.device = job->device;
    if (job->done)
        job->done(job->opaque, &job->result);
    hotplug_job_free(job);
    hotplug_domain_schedule(domain);
}

/* Timeout or lost connection: nothing more can be sent; the journal keeps the job RUNNING so
 * that hotplug_recover completes or rolls it back on the next connection. */
void hotplug_job_end_deferred(struct hotplug_job *job, int status, const char *command)
{
    char detail[160];
    if (status == -ETIMEDOUT)
        snprintf(detail, sizeof(detail), "timed out after %d ms",
                 job->domain->manager->config.qmp_timeout_ms);
    else
        snprintf(detail, sizeof(detail), "failed: %s", strerror(-status));
    hotplug_result_set(
        &job->result, status, status == -ETIMEDOUT ? "timeout" : "internal", NULL, command,
        "%s %s: QMP command %s %s; the QMP connection was reset, and the job is completed "
        "or rolled back when the daemon reconnects",
        job->kind, job->names.target, command, detail);
    if (job->type == JOB_RECOVER)
        hotplug_append(job->result.message, sizeof(job->result.message), " (recovery: %s)",
                       job->report);
    hotplug_job_end(job);
}

static void wait_timed_out(evutil_socket_t fd, short what, void *opaque);

static void on_step_reply(void *opaque, const struct qmp_connection_reply *reply);

int hotplug_send_command(struct hotplug_job *job, const char *command, const char *arguments)
{
    return hotplug_send_command_fd(job, command, arguments, -1);
}

int hotplug_send_command_fd(struct hotplug_job *job, const char *command, const char *arguments,
                            int fd)
{
    struct hotplug_domain *domain = job->domain;
    struct pv_error error = {0};
    clock_gettime(CLOCK_MONOTONIC, &job->step_started);
    int rc = domain->qmp ? qmp_connection_execute_fd(domain->qmp, command, arguments, fd,
                                                     domain->manager->config.qmp_timeout_ms,
                                                     on_step_reply, job, &error)
                         : pv_error_set(&error, -ENOTCONN, "no QMP connection");
    if (rc == 0)
        job->command_in_flight = true;
    return rc;
}

void hotplug_fail_unsent(struct hotplug_job *job, const char *command, int rc)
{
    hotplug_result_set(&job->result, rc, "internal", NULL, command, "%s %s: cannot send %s: %s",
                       job->kind, job->names.target, command,
                       rc == -ENOTCONN ? "the QMP connection is closed" : strerror(-rc));
    hotplug_job_end(job);
}

/* Closes the arguments object the caller filled, sends the step at job->index and frees the
 * arguments; a command that cannot be sent ends the job. */
static void send_step(struct hotplug_job *job, const char *command, struct json_writer *arguments,
                      int fd)
{
    json_writer_end_object(arguments);
    snprintf(job->step_label, sizeof(job->step_label), "%s %s", command,
             job->names.objects[job->index]);
    int rc = json_writer_status(arguments) < 0
                 ? -ENOMEM
                 : hotplug_send_command_fd(job, command, json_writer_text(arguments), fd);
    json_writer_free(arguments);
    /* The command holds its own copy of the descriptor: once the last queue's is handed
     * over the daemon's copies go, so the tap lives exactly as long as the VMM keeps it. */
    if (fd < 0 || job->index + 1 >= (int)job->tap.fd_count)
        tap_device_close(&job->tap);
    if (rc < 0)
        hotplug_fail_unsent(job, command, rc);
}

/* --- endings ----------------------------------------------------------------------------- */

static void attach_succeeded(struct hotplug_job *job)
{
    if (hotplug_job_commit(job, HOTPLUG_ATTACH_DONE, STORE_DEVICE_ATTACHED, STORE_JOB_DONE) < 0)
        /* The guest has it; the journal keeps the job running, so the next start of the
         * daemon completes the record (recovery). */
        hotplug_result_set(&job->result, -EIO, "internal", NULL, NULL,
                           "%s is in the guest as %s, but the daemon could not record it%s",
                           job->names.target, job->names.alias, job->result.message);
    else
        hotplug_result_set(&job->result, 0, "", NULL, NULL, "attached %s as %s", job->names.target,
                           job->names.alias);
    hotplug_job_end(job);
}

/* All undo steps ran (or were skipped). */
static void undo_finished(struct hotplug_job *job)
{
    if (job->operation == JOB_ATTACH) {
        /* A rollback: the device never became visible to the guest. */
        hotplug_job_commit(job, HOTPLUG_ATTACH_UNDONE, ROW_DELETE,
                           job->undo_failed ? STORE_JOB_FAILED : STORE_JOB_ROLLED_BACK);
        if (job->type == JOB_RECOVER) {
            hotplug_recovery_undo_finished(job, "rolled back");
            return;
        }
        if (job->undo_failed)
            hotplug_append(job->result.message, sizeof(job->result.message),
                           "; rollback incomplete, left behind: %s", job->undo_errors);
        else
            hotplug_append(job->result.message, sizeof(job->result.message), "; rolled back: %s",
                           job->undone[0] ? job->undone : "nothing to undo");
        hotplug_job_end(job);
        return;
    }
    /* A detach: the guest released the device and its backends were deleted. */
    hotplug_job_commit(job, HOTPLUG_DETACH_DONE, ROW_DELETE,
                       job->undo_failed ? STORE_JOB_FAILED : STORE_JOB_DONE);
    if (job->type == JOB_RECOVER) {
        hotplug_recovery_undo_finished(job, "finished");
        return;
    }
    if (job->undo_failed)
        hotplug_result_set(&job->result, -EREMOTEIO, "qmp-error", job->result.qmp_class,
                           job->result.step,
                           "%s left the guest, but releasing its backend failed, left behind: %s",
                           job->names.target, job->undo_errors);
    else
        hotplug_result_set(&job->result, 0, "", NULL, NULL, "detached %s", job->names.target);
    hotplug_job_end(job);
}

/* Moves the job's device onto the domain's list of devices the guest has not released yet
 * (best effort: without memory the device is only left in the store as detaching). */
void hotplug_pending_park(struct hotplug_job *job)
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
    hotplug_job_commit(job, HOTPLUG_DETACH_PENDING, STORE_DEVICE_DETACHING, JOURNAL_KEEP);
    hotplug_pending_park(job);
    if (job->type == JOB_RECOVER) {
        hotplug_report_add(job, "%s %s: device_del sent, still pending", job->kind,
                           job->names.target);
        hotplug_recovery_next(job);
        return;
    }
    job->result.status = 0;
    job->result.pending = true;
    snprintf(job->result.code, sizeof(job->result.code), "detach-pending");
    snprintf(job->result.message, sizeof(job->result.message),
             "detach requested; the guest has not released %s yet", job->names.target);
    hotplug_job_end(job);
}

/* --- the step engine --------------------------------------------------------------------- */

void hotplug_wait_for_release(struct hotplug_job *job)
{
    job->phase = PHASE_WAIT;
    clock_gettime(CLOCK_MONOTONIC, &job->step_started);
    snprintf(job->step_label, sizeof(job->step_label), "waiting for the guest to release %s",
             job->names.alias);
    if (job->device_released) {
        job->index--;
        job->phase = PHASE_UNDO;
        hotplug_step_run(job);
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
        hotplug_step_run(job);
    } else {
        detach_pending(job);
    }
}

static bool step_applies(const struct hotplug_job *job, int index)
{
    const struct hotplug_step *step = &job->sequence->steps[index];
    return !step->applies || (job->device && step->applies(job->device, index));
}

void hotplug_step_run(struct hotplug_job *job)
{
    const struct hotplug_sequence *sequence = job->sequence;
    if (job->phase == PHASE_DO) {
        while (job->index < sequence->step_count && !step_applies(job, job->index))
            job->index++;
        if (job->index >= sequence->step_count) {
            attach_succeeded(job);
            return;
        }
        const struct hotplug_step *step = &sequence->steps[job->index];
        hotplug_journal_step(job, "do");
        int fd = -1;
        struct pv_error error = {0};
        if (step->prepare && step->prepare(job, &fd, &error) < 0) {
            job->failed = true;
            hotplug_result_set(&job->result, error.code, "preflight-failed", NULL, step->command,
                               "%s %s: %s", job->kind, job->names.target, error.message);
            job->phase = PHASE_UNDO;
            job->index--;
            hotplug_step_run(job);
            return;
        }
        struct json_writer arguments;
        json_writer_init(&arguments, false);
        json_writer_begin_object(&arguments);
        if (step->build(job->device, &job->names, &arguments) < 0) {
            /* Nothing was sent for this step: undo the ones before it. */
            json_writer_free(&arguments);
            tap_device_close(&job->tap);
            job->failed = true;
            hotplug_result_set(&job->result, -EINVAL, "internal", NULL, step->command,
                               "%s %s: cannot build the arguments of %s %s", job->kind,
                               job->names.target, step->command, job->names.objects[job->index]);
            job->phase = PHASE_UNDO;
            job->index--;
            hotplug_step_run(job);
            return;
        }
        send_step(job, step->command, &arguments, fd);
        return;
    }
    /* PHASE_UNDO */
    while (job->index >= 0 && (job->skip[job->index] || !step_applies(job, job->index)))
        job->index--;
    if (job->index < 0) {
        undo_finished(job);
        return;
    }
    const struct hotplug_step *step = &sequence->steps[job->index];
    hotplug_journal_step(job, "undo");
    struct json_writer arguments;
    json_writer_init(&arguments, false);
    json_writer_begin_object(&arguments);
    json_writer_member_string(&arguments, step->undo_id_member, job->names.objects[job->index]);
    send_step(job, step->undo_command, &arguments, -1);
}

static void test_abort_after(struct hotplug_job *job, const struct hotplug_step *step,
                             const char *command)
{
    char point[96];
    snprintf(point, sizeof(point), "%s%s", command, step->object_suffix);
    hotplug_test_abort_at(job, point);
}

/* The undo found nothing to remove: QEMU's "not found" answers (a device or netdev:
 * DeviceNotFound; a getfd name: "File descriptor named '...' not found", GenericError). */
static bool undo_target_gone(const struct hotplug_step *step,
                             const struct qmp_connection_reply *reply)
{
    if (reply->status != -EREMOTEIO || !reply->error_class)
        return false;
    switch (step->object_kind) {
    case HOTPLUG_OBJECT_DEVICE:
    case HOTPLUG_OBJECT_NETDEV:
        return !strcmp(reply->error_class, "DeviceNotFound");
    case HOTPLUG_OBJECT_FD:
        return reply->error_desc && strstr(reply->error_desc, "not found");
    case HOTPLUG_OBJECT_BLOCK_NODE:
        break;
    }
    return false;
}

static void on_step_reply(void *opaque, const struct qmp_connection_reply *reply)
{
    struct hotplug_job *job = opaque;
    job->command_in_flight = false;
    if (job->orphaned) {
        hotplug_job_free(job);
        return;
    }
    if (job->phase == PHASE_QUERY) {
        hotplug_query_reply(job, reply);
        return;
    }
    const struct hotplug_step *step = &job->sequence->steps[job->index];
    const char *command = job->phase == PHASE_DO ? step->command : step->undo_command;
    if (reply->status == -ETIMEDOUT || reply->status == -ECONNRESET || reply->status == -ENOMEM) {
        hotplug_job_end_deferred(job, reply->status, command);
        return;
    }
    if (reply->status == 0)
        test_abort_after(job, step, job->phase == PHASE_DO ? step->command : step->undo_command);
    if (job->phase == PHASE_DO) {
        if (reply->status == 0) {
            job->index++;
            hotplug_step_run(job);
            return;
        }
        /* QMP errors are atomic: the failed step created nothing; undo the ones before it. */
        job->failed = true;
        hotplug_result_set(&job->result, reply->status, "qmp-error", reply->error_class,
                           step->command, "%s %s: %s %s failed: %s", job->kind, job->names.target,
                           step->command, job->names.objects[job->index],
                           reply->error_desc ? reply->error_desc : "");
        job->phase = PHASE_UNDO;
        job->index--;
        hotplug_step_run(job);
        return;
    }
    /* PHASE_UNDO */
    bool device_step = step->object_kind == HOTPLUG_OBJECT_DEVICE;
    bool gone = undo_target_gone(step, reply);
    if (reply->status == 0 || (gone && device_step)) {
        hotplug_append(job->undone, sizeof(job->undone), "%s%s %s", job->undone[0] ? ", " : "",
                       step->undo_command, job->names.objects[job->index]);
        if (device_step && !gone) {
            hotplug_wait_for_release(job);
            return;
        }
        job->index--;
        hotplug_step_run(job);
        return;
    }
    if (gone) {
        /* Nothing to undo: a getfd descriptor netdev_add consumed, or (recovery) an object
         * that was never made. */
        job->index--;
        hotplug_step_run(job);
        return;
    }
    if (device_step) {
        /* device_del refused: the device stays, and so must everything it uses. */
        if (job->operation == JOB_DETACH && job->type != JOB_RECOVER) {
            hotplug_job_commit(job, HOTPLUG_DETACH_REFUSED, STORE_DEVICE_ATTACHED,
                               STORE_JOB_FAILED);
            hotplug_result_set(&job->result, reply->status, "qmp-error", reply->error_class,
                               step->undo_command, "detach %s: %s %s failed: %s", job->names.target,
                               step->undo_command, job->names.alias,
                               reply->error_desc ? reply->error_desc : "");
            hotplug_job_end(job);
            return;
        }
        job->undo_failed = true;
        hotplug_append(job->undo_errors, sizeof(job->undo_errors), "%s%s %s: %s",
                       job->undo_errors[0] ? ", " : "", step->undo_command,
                       job->names.objects[job->index], reply->error_desc ? reply->error_desc : "");
        if (job->type == JOB_RECOVER) {
            /* The device stays in the guest: the definitions say so. */
            hotplug_report_add(job, "%s %s: %s", job->kind, job->names.target, job->undo_errors);
            job->recovery_failed = true;
            hotplug_job_commit(
                job, job->operation == JOB_ATTACH ? HOTPLUG_ATTACH_DONE : HOTPLUG_DETACH_REFUSED,
                STORE_DEVICE_ATTACHED, STORE_JOB_FAILED);
            hotplug_recovery_next(job);
            return;
        }
        hotplug_job_end(job);
        return;
    }
    /* A backend refused to go: report it, and keep undoing the rest. */
    job->undo_failed = true;
    if (!job->failed) {
        snprintf(job->result.qmp_class, sizeof(job->result.qmp_class), "%s",
                 reply->error_class ? reply->error_class : "");
        snprintf(job->result.step, sizeof(job->result.step), "%s", step->undo_command);
    }
    hotplug_append(job->undo_errors, sizeof(job->undo_errors), "%s%s %s (%s)",
                   job->undo_errors[0] ? ", " : "", step->undo_command,
                   job->names.objects[job->index], reply->error_desc ? reply->error_desc : "");
    job->index--;
    hotplug_step_run(job);
}

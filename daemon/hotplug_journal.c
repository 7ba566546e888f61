/* The hotplug journal: every step is journaled before it is sent, and every change of the
 * definitions is one transaction with the journal entry and the device row (hotplug.h). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotplug_internal.h"
#include "pv_log.h"

void hotplug_journal_finish(struct hotplug_job *job, enum store_job_status status)
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
void hotplug_test_abort_at(struct hotplug_job *job, const char *point)
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

struct hotplug_job_commit {
    struct hotplug_job *job;
    enum hotplug_change change;
    int row;     /* enum row_action or a store_device_state */
    int journal; /* enum journal_action or a store_job_status */
};

static int journal_begin_in(struct hotplug_job *job, struct pv_error *error);

static int job_commit_in_transaction(struct store *store, void *arg, struct pv_error *error)
{
    struct hotplug_job_commit *commit = arg;
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
int hotplug_job_commit(struct hotplug_job *job, enum hotplug_change change, int row, int journal)
{
    struct hotplug_job_commit commit = {job, change, row, journal};
    struct pv_error error = {0};
    int rc =
        store_transaction(job->domain->manager->store, job_commit_in_transaction, &commit, &error);
    if (rc < 0) {
        pv_log_error("hotplug %s %s: cannot record %s: %s", job->kind, job->names.target,
                     change_name(change), error.message);
        hotplug_append(job->result.message, sizeof(job->result.message), "; cannot record %s: %s",
                       change_name(change), error.message);
        return rc;
    }
    hotplug_test_abort_at(job, change_name(change));
    return 0;
}

void hotplug_journal_step(struct hotplug_job *job, const char *phase)
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
    hotplug_test_abort_at(job, point);
}

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

/* The first change of a job: journal entry, device row and definition in one transaction. */
int hotplug_job_begin(struct hotplug_job *job, enum hotplug_change change,
                      enum store_device_state row)
{
    struct hotplug_job_commit commit = {job, change, row, JOURNAL_BEGIN};
    struct pv_error error = {0};
    int rc =
        store_transaction(job->domain->manager->store, job_commit_in_transaction, &commit, &error);
    if (rc < 0) {
        job->journal_id = -1;
        hotplug_result_set(&job->result, rc, "internal", NULL, NULL,
                           "%s %s: cannot journal the job: %s", job->kind, job->names.target,
                           error.message);
        return rc;
    }
    hotplug_test_abort_at(job, change_name(change));
    return 0;
}

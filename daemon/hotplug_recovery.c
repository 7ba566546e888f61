/* Recovery after a daemon restart: replays the unfinished journal entries of a domain to
 * the state their jobs would have reached uninterrupted (hotplug.h, hotplug_recover). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hotplug_internal.h"
#include "pv_log.h"

/* A recovery job's undo steps all ran: reports what was undone and goes on to the next entry. */
/* An interface's tap normally goes with the VMM's last descriptor (netdev_del, closefd). One
 * still there after the undo was made persistent behind plugvirt's back, or is still held:
 * deleted by name, or reported as left behind. */
static void delete_leftover_tap(struct hotplug_job *job)
{
    const struct domain_interface *interface =
        job->device && job->device->kind == DOMAIN_DEVICE_INTERFACE ? &job->device->interface : NULL;
    if (!interface || !interface->target_managed || !tap_device_exists(interface->target_dev))
        return;
    struct pv_error error = {0};
    if (tap_device_delete(interface->target_dev, &error) < 0) {
        job->undo_failed = true;
        hotplug_append(job->undo_errors, sizeof(job->undo_errors), "%s%s",
                       job->undo_errors[0] ? ", " : "", error.message);
        return;
    }
    hotplug_append(job->undone, sizeof(job->undone), "%stap %s deleted", job->undone[0] ? ", " : "",
                   interface->target_dev);
}

void hotplug_recovery_undo_finished(struct hotplug_job *job, const char *outcome)
{
    delete_leftover_tap(job);
    hotplug_report_add(job, "%s %s %s (%s)%s%s", job->kind, job->names.target, outcome,
                       job->undone[0] ? job->undone : "nothing was left",
                       job->undo_failed ? "; left behind: " : "", job->undo_errors);
    job->recovery_failed |= job->undo_failed;
    hotplug_recovery_next(job);
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
    /* Not listable in QEMU 7.2: assumed present, the undo's "not found" says otherwise. */
    if (kind == HOTPLUG_OBJECT_NETDEV || kind == HOTPLUG_OBJECT_FD)
        return true;
    const char *text = kind == HOTPLUG_OBJECT_DEVICE ? job->existing_devices : job->existing_nodes;
    yajl_val root =
        text ? json_parse(text, strlen(text), HOTPLUG_MAX_QUERY_SIZE, JSON_MAX_DEPTH, NULL) : NULL;
    bool found = id_listed(root, kind == HOTPLUG_OBJECT_DEVICE ? "qdev_id" : "node-name", id);
    if (root)
        yajl_tree_free(root);
    return found;
}

static struct domain_device *minimal_device(const struct hotplug_sequence *sequence,
                                            const struct hotplug_names *names)
{
    struct domain_device *device = calloc(1, sizeof(*device));
    if (!device)
        return NULL;
    if (!strcmp(sequence->name, "interface")) {
        device->kind = DOMAIN_DEVICE_INTERFACE;
        device->interface.alias = strdup(names->alias);
        device->interface.mac = strdup(names->target);
        device->interface.target_managed = true;
        if (names->slot >= 0) {
            device->interface.address.type = DOMAIN_ADDRESS_PCI;
            device->interface.address.slot = (unsigned)names->slot;
        }
        return device;
    }
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
        hotplug_result_set(&job->result, -EREMOTEIO, "qmp-error", NULL, NULL,
                           "recovery incomplete: %s", job->report);
    else
        hotplug_result_set(&job->result, 0, "", NULL, NULL, "%s",
                           job->report[0] ? job->report : "nothing to recover");
    hotplug_job_end(job);
}

/* Sets the job up for the next journal entry and runs it; entries needing no QMP loop here. */
void hotplug_recovery_next(struct hotplug_job *job)
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
            hotplug_sequence_by_name(json_get_string(data, "sequence"));
        const char *alias = json_get_string(data, "alias");
        const char *phase = json_get_string(data, "phase");
        bool attach = entry->kind && !strncmp(entry->kind, "attach-", 7);
        if (!sequence || !alias || !phase) {
            hotplug_report_add(job, "job %lld (%s): unreadable journal entry", (long long)entry->id,
                               job->kind);
            job->recovery_failed = true;
            hotplug_journal_finish(job, STORE_JOB_FAILED);
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
        /* The detach had already ended as pending (the guest was asked, and did not
         * answer in time): asking again would only delay recovery by a full timeout. */
        bool was_pending = !strcmp(phase, "pending");
        yajl_tree_free(data);
        job->sequence = sequence;
        hotplug_names_fill_objects(sequence, &job->names);
        /* The device as the job's first change put it into the live definition (the same
         * transaction that began this journal entry); the journal's names otherwise. */
        const struct hotplug_ops *ops = job->domain->manager->config.ops;
        job->device = ops && ops->lookup ? ops->lookup(job->domain->manager->config.opaque,
                                                       job->domain->uuid, job->names.target)
                                         : NULL;
        if (!job->device)
            job->device = minimal_device(sequence, &job->names);
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
            hotplug_job_commit(job, HOTPLUG_ATTACH_DONE, STORE_DEVICE_ATTACHED, STORE_JOB_DONE);
            hotplug_report_add(job, "%s %s completed", job->kind, job->names.target);
            continue;
        }
        if (!attach && device_present && !was_pending) {
            /* device_del was not sent, or was sent but the daemon died before the guest
             * answered: carry the detach on as the job would have (device_del again: QEMU
             * accepts a repeated request once its first expired). */
            hotplug_report_add(job, "%s %s resumed", job->kind, job->names.target);
            job->phase = PHASE_UNDO;
            job->index = device_index;
            hotplug_step_run(job);
            return;
        }
        if (!attach && device_present) {
            /* a pending detach: keep waiting, do not resend device_del. */
            hotplug_job_commit(job, HOTPLUG_DETACH_PENDING, STORE_DEVICE_DETACHING, JOURNAL_KEEP);
            hotplug_pending_park(job);
            hotplug_report_add(job, "%s %s still pending", job->kind, job->names.target);
            continue;
        }
        /* Undo whatever exists, newest first; a present device is unplugged first (and its
         * backends released only once the guest let it go). */
        job->phase = PHASE_UNDO;
        job->index = device_index;
        hotplug_step_run(job);
        return;
    }
}

void hotplug_query_reply(struct hotplug_job *job, const struct qmp_connection_reply *reply)
{
    const char *command = job->index == 0 ? "query-pci" : "query-named-block-nodes";
    if (reply->status == -ETIMEDOUT || reply->status == -ECONNRESET || reply->status == -ENOMEM) {
        hotplug_job_end_deferred(job, reply->status, command);
        return;
    }
    if (reply->status < 0) {
        hotplug_result_set(&job->result, reply->status, "qmp-error", reply->error_class, command,
                           "recovery: %s failed: %s", command,
                           reply->error_desc ? reply->error_desc : "");
        hotplug_job_end(job);
        return;
    }
    char *copy = strdup(reply->return_json);
    if (job->index == 0) {
        job->existing_devices = copy;
        job->index = 1;
        snprintf(job->step_label, sizeof(job->step_label), "query-named-block-nodes");
        int rc = hotplug_send_command(job, "query-named-block-nodes", "{\"flat\": true}");
        if (rc < 0)
            hotplug_fail_unsent(job, "query-named-block-nodes", rc);
        return;
    }
    job->existing_nodes = copy;
    /* The journal entries of this domain, minus the ones a pending detach already holds. */
    struct store_job *all = NULL;
    size_t count = 0;
    struct pv_error error = {0};
    if (store_job_list_unfinished(job->domain->manager->store, &all, &count, &error) < 0) {
        hotplug_result_set(&job->result, error.code, "internal", NULL, NULL,
                           "recovery: cannot read the journal: %s", error.message);
        hotplug_job_end(job);
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
    hotplug_recovery_next(job);
}

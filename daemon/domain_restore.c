/* Daemon restart: VMMs a previous plugvirtd left running are found (pid + start time),
 * reconnected, their hotplug journal replayed and their devices reconciled; the others are
 * marked shut off; then autostart (see domains.h). */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "console.h"
#include "device_args.h"
#include "domain.h"
#include "domain_alloc.h"
#include "domains_internal.h"
#include "hotplug.h"
#include "json_util.h"
#include "pv_log.h"
#include "qmp_connection.h"
#include "store.h"

/* ------------------------------------------------------------ reconciliation --- */

/* After a daemon restart, a VMM we adopted is compared with what the daemon knows, once the
 * hotplug journal was replayed (hotplug_recover): query-pci (devices), query-block (which
 * block nodes a device uses) and query-named-block-nodes (every node). Disks gone from the
 * VMM leave the live definition; devices nobody knows are reported, never adopted blindly;
 * the "<alias>-format"/"<alias>-storage" nodes of a disk whose device went away while the
 * daemon was down are released with blockdev-del. */
struct reconcile {
    struct domains *domains;
    char uuid[DOMAIN_UUID_STRING_LENGTH + 1];
    char **device_ids; /* qdev ids from query-pci */
    size_t device_count;
    char **used_nodes; /* root nodes of block backends attached to a device (query-block) */
    size_t used_count;
    char report[600];       /* what the journal recovery did, for the "reconciled" event */
    size_t step;            /* index into reconcile_steps of the command in flight */
    struct reconcile *next; /* in domains->reconciles while the recovery runs */
};

static void string_list_add(char ***list, size_t *count, const char *text)
{
    char *copy = strdup(text);
    char **grown = copy ? realloc(*list, (*count + 1) * sizeof(**list)) : NULL;
    if (grown == NULL) {
        free(copy);
        return;
    }
    *list = grown;
    (*list)[(*count)++] = copy;
}

static bool string_list_has(char **list, size_t count, const char *text)
{
    for (size_t i = 0; i < count; i++)
        if (list[i] && text && strcmp(list[i], text) == 0)
            return true;
    return false;
}

static void string_list_free(char **list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(list[i]);
    free(list);
}

static void reconcile_free(struct reconcile *reconcile)
{
    if (reconcile == NULL)
        return;
    string_list_free(reconcile->device_ids, reconcile->device_count);
    string_list_free(reconcile->used_nodes, reconcile->used_count);
    free(reconcile);
}

void domains_reconcile_free_all(struct domains *domains)
{
    while (domains->reconciles) {
        struct reconcile *reconcile = domains->reconciles;
        domains->reconciles = reconcile->next;
        reconcile_free(reconcile);
    }
}

/* The reconciliation ended (completely or not): the domain is no longer "recovering", and
 * subscribers (and tests) learn it from a "reconciled" event. */
static void reconcile_end(struct reconcile *reconcile)
{
    struct runtime *runtime = domains_find_runtime(reconcile->domains, reconcile->uuid);
    if (runtime && runtime->recovering) {
        runtime->recovering = false;
        domains_emit_event(reconcile->domains, runtime->uuid, runtime->name, "reconciled",
                           reconcile->report[0] ? reconcile->report : "nothing to recover");
    }
    reconcile_free(reconcile);
}

static void reconcile_unlink(struct reconcile *reconcile)
{
    for (struct reconcile **link = &reconcile->domains->reconciles; *link; link = &(*link)->next) {
        if (*link == reconcile) {
            *link = reconcile->next;
            break;
        }
    }
    reconcile->next = NULL;
}

/* The runtime the reconciliation is about, or NULL when it went away (then it stops). */
static struct runtime *reconcile_runtime(struct reconcile *reconcile,
                                         const struct qmp_connection_reply *reply,
                                         const char *command)
{
    struct runtime *runtime = domains_find_runtime(reconcile->domains, reconcile->uuid);
    if (runtime == NULL || runtime->stopping || runtime->live == NULL)
        return NULL;
    if (reply && (reply->status < 0 || reply->return_json == NULL)) {
        pv_log_warning("domain %s: reconciliation stopped: %s failed: %s", runtime->name, command,
                       reply->error_desc ? reply->error_desc : strerror(-reply->status));
        return NULL;
    }
    return runtime;
}

/* The parsed JSON array a reconciliation step's command returned, and the domain's runtime;
 * NULL when the domain went away, the command failed or the reply is not an array: the
 * reconciliation then ends here (and is freed). */
static yajl_val reconcile_reply(struct reconcile *reconcile,
                                const struct qmp_connection_reply *reply, const char *command,
                                struct runtime **runtime_out)
{
    struct runtime *runtime = reconcile_runtime(reconcile, reply, command);
    yajl_val root = runtime ? json_parse(reply->return_json, strlen(reply->return_json),
                                         DOMAINS_MAX_JSON, JSON_MAX_DEPTH, NULL)
                            : NULL;
    if (root && !YAJL_IS_ARRAY(root)) {
        yajl_tree_free(root);
        root = NULL;
    }
    if (root == NULL)
        reconcile_end(reconcile);
    *runtime_out = runtime;
    return root;
}

static void collect_qdev_ids(yajl_val value, char ***ids, size_t *count)
{
    if (YAJL_IS_ARRAY(value)) {
        for (size_t i = 0; i < YAJL_GET_ARRAY(value)->len; i++)
            collect_qdev_ids(YAJL_GET_ARRAY(value)->values[i], ids, count);
        return;
    }
    if (!YAJL_IS_OBJECT(value))
        return;
    const char *qdev = json_get_string(value, "qdev_id");
    if (qdev && *qdev)
        string_list_add(ids, count, qdev);
    collect_qdev_ids(json_get_array(value, "devices"), ids, count);
    yajl_val bridge = json_get_object(value, "pci_bridge");
    if (bridge)
        collect_qdev_ids(json_get_array(bridge, "devices"), ids, count);
}

/* query-block names a device "/machine/peripheral/<id>/virtio-backend" (QEMU's QOM path) or
 * plainly "<id>"; the id, in `out`. */
static void qdev_id_of(const char *qdev, char *out, size_t size)
{
    static const char prefix[] = "/machine/peripheral/";
    if (strncmp(qdev, prefix, sizeof(prefix) - 1) == 0) {
        const char *id = qdev + sizeof(prefix) - 1;
        snprintf(out, size, "%.*s", (int)strcspn(id, "/"), id);
    } else {
        snprintf(out, size, "%s", qdev);
    }
}

/* Tells whether `node` is a disk's format or storage node (our naming, device_args.h); the
 * alias goes to `alias`. */
static bool node_alias(const char *node, char *alias, size_t size, bool *format)
{
    static const char *const suffixes[] = {DEVICE_ARGS_DISK_FORMAT_SUFFIX,
                                           DEVICE_ARGS_DISK_STORAGE_SUFFIX};
    size_t length = strlen(node);
    for (size_t i = 0; i < 2; i++) {
        size_t suffix = strlen(suffixes[i]);
        if (length > suffix && strcmp(node + length - suffix, suffixes[i]) == 0) {
            snprintf(alias, size, "%.*s", (int)(length - suffix), node);
            *format = i == 0;
            return true;
        }
    }
    return false;
}

static bool store_knows_alias(const struct store_device *devices, size_t count, const char *alias)
{
    for (size_t i = 0; i < count; i++)
        if (devices[i].alias && strcmp(devices[i].alias, alias) == 0)
            return true;
    return false;
}

static void on_reconcile_blockdev_del(struct domains *domains, const char *uuid,
                                      const struct qmp_connection_reply *reply, void *context)
{
    char *node = context;
    struct runtime *runtime = domains_find_runtime(domains, uuid);
    if (runtime && reply->status == 0) {
        char detail[256];
        snprintf(detail, sizeof(detail),
                 "block node %s released: no device uses it (its disk left the VMM while the "
                 "daemon was down)",
                 node);
        domains_emit_event(domains, uuid, runtime->name, "block-node-released", detail);
    } else if (runtime) {
        pv_log_warning("domain %s: blockdev-del %s: %s", runtime->name, node,
                       reply->error_desc ? reply->error_desc : strerror(-reply->status));
    }
    free(node);
}

/* query-named-block-nodes: our disks' nodes that no device uses and nobody accounts for are
 * released (blockdev-del, not waited for); other nodes are only reported. */
static int reconcile_block_nodes(struct reconcile *reconcile, struct runtime *runtime,
                                 yajl_val root)
{
    struct domains *domains = reconcile->domains;
    struct store_device *devices = NULL;
    size_t device_count = 0;
    if (store_device_list(domains->store, runtime->uuid, &devices, &device_count, NULL) < 0)
        return -EIO;
    char **orphans = NULL;
    size_t orphan_count = 0;
    /* Two passes: every format node before any storage node (a format node holds its
     * storage node as its file child). */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < YAJL_GET_ARRAY(root)->len; i++) {
            const char *node = json_get_string(YAJL_GET_ARRAY(root)->values[i], "node-name");
            if (node == NULL || node[0] == '\0' ||
                string_list_has(reconcile->used_nodes, reconcile->used_count, node))
                continue;
            char alias[128], format_node[160];
            bool format = false;
            if (!node_alias(node, alias, sizeof(alias), &format)) {
                if (pass == 0)
                    pv_log_info("domain %s: block node %s is not attached to a device; not ours, "
                                "left alone",
                                runtime->name, node);
                continue;
            }
            if (format != (pass == 0))
                continue;
            snprintf(format_node, sizeof(format_node), "%s" DEVICE_ARGS_DISK_FORMAT_SUFFIX, alias);
            /* Still in use, or somebody (a job, the live definition) accounts for it. */
            if (string_list_has(reconcile->used_nodes, reconcile->used_count, format_node) ||
                string_list_has(reconcile->device_ids, reconcile->device_count, alias) ||
                domain_alias_taken(runtime->live, alias) ||
                store_knows_alias(devices, device_count, alias))
                continue;
            string_list_add(&orphans, &orphan_count, node);
        }
    }
    store_device_list_free(devices, device_count);
    for (size_t i = 0; i < orphan_count; i++) {
        pv_log_info("domain %s: block node %s has no device any more: blockdev-del", runtime->name,
                    orphans[i]);
        struct json_writer writer;
        json_writer_init(&writer, false);
        json_writer_begin_object(&writer);
        json_writer_member_string(&writer, "node-name", orphans[i]);
        json_writer_end_object(&writer);
        char *arguments = json_writer_steal(&writer);
        /* The node name moves into the callback's context. */
        runtime_execute(runtime, "blockdev-del", arguments, 0, on_reconcile_blockdev_del,
                        orphans[i]);
        free(arguments);
        orphans[i] = NULL;
    }
    free(orphans);
    return 0;
}

/* query-block: which root nodes devices use (for the next step); block devices no
 * definition knows, and disks without a backend, are reported. */
static int reconcile_query_block(struct reconcile *reconcile, struct runtime *runtime,
                                 yajl_val root)
{
    char **backend_devices = NULL;
    size_t backend_count = 0;
    for (size_t i = 0; i < YAJL_GET_ARRAY(root)->len; i++) {
        yajl_val entry = YAJL_GET_ARRAY(root)->values[i];
        const char *qdev = json_get_string(entry, "qdev");
        if (qdev == NULL || qdev[0] == '\0')
            continue; /* a backend without a device: its nodes are judged below */
        char id[128];
        qdev_id_of(qdev, id, sizeof(id));
        string_list_add(&backend_devices, &backend_count, id);
        const char *node = json_get_string(json_get_object(entry, "inserted"), "node-name");
        if (node && node[0])
            string_list_add(&reconcile->used_nodes, &reconcile->used_count, node);
        if (!domain_alias_taken(runtime->live, id))
            pv_log_warning("domain %s: the VMM has a block device '%s' (node %s) that no "
                           "definition knows; left alone",
                           runtime->name, id, node ? node : "none");
    }
    for (size_t i = 0; i < runtime->live->disk_count; i++) {
        const struct domain_disk *disk = &runtime->live->disks[i];
        if (disk->alias && !string_list_has(backend_devices, backend_count, disk->alias))
            pv_log_warning("domain %s: disk %s (%s) has no block backend in the VMM", runtime->name,
                           disk->target_dev ? disk->target_dev : "?", disk->alias);
    }
    string_list_free(backend_devices, backend_count);
    return 0;
}

/* query-pci: disks the live definition has but the VMM lost (a detach finished while the
 * daemon was down) leave the live definition and the store; disks the VMM has that the
 * definition lacks are taken from the store's device table when it knows them, else only
 * reported. */
static int reconcile_query_pci(struct reconcile *reconcile, struct runtime *runtime, yajl_val root)
{
    struct domains *domains = reconcile->domains;
    collect_qdev_ids(root, &reconcile->device_ids, &reconcile->device_count);
    char **ids = reconcile->device_ids;
    size_t count = reconcile->device_count;
    bool changed = false;
    for (size_t i = runtime->live->disk_count; i-- > 0;) {
        struct domain_disk *disk = &runtime->live->disks[i];
        if (disk->alias && string_list_has(ids, count, disk->alias))
            continue;
        char detail[256];
        snprintf(detail, sizeof(detail), "%s (%s): gone from the VMM while the daemon was down",
                 disk->target_dev, disk->alias ? disk->alias : "");
        char *target = strdup(disk->target_dev ? disk->target_dev : "");
        if (target && domains_remove_live_disk(runtime, target)) {
            changed = true;
            store_device_delete(domains->store, runtime->uuid, target, NULL);
            domains_emit_event(domains, runtime->uuid, runtime->name, "device-removed", detail);
        }
        free(target);
    }
    /* Interfaces likewise (their netdev and tap went with the journal's recovery). */
    for (size_t i = runtime->live->interface_count; i-- > 0;) {
        struct domain_interface *interface = &runtime->live->interfaces[i];
        if (!interface->alias || string_list_has(ids, count, interface->alias) || !interface->mac)
            continue;
        char detail[256];
        snprintf(detail, sizeof(detail),
                 "interface %s (%s): gone from the VMM while the daemon was down", interface->mac,
                 interface->alias);
        struct domain_device key = {.kind = DOMAIN_DEVICE_INTERFACE};
        key.interface.mac = strdup(interface->mac);
        if (key.interface.mac && domain_definition_remove_device(runtime->live, &key, NULL) == 0) {
            changed = true;
            store_device_delete(domains->store, runtime->uuid, key.interface.mac, NULL);
            domains_emit_event(domains, runtime->uuid, runtime->name, "device-removed", detail);
        }
        free(key.interface.mac);
    }
    struct store_device *devices = NULL;
    size_t device_count = 0;
    if (store_device_list(domains->store, runtime->uuid, &devices, &device_count, NULL) == 0) {
        for (size_t j = 0; j < count; j++) {
            if (domain_alias_taken(runtime->live, ids[j]))
                continue;
            for (size_t k = 0; k < device_count; k++) {
                if (!devices[k].alias || strcmp(devices[k].alias, ids[j]) != 0 || !devices[k].xml)
                    continue;
                struct domain_device *device = domain_xml_parse_device(
                    devices[k].xml, strlen(devices[k].xml), domains->config->schema_dir, NULL);
                if (device && device->kind == DOMAIN_DEVICE_DISK) {
                    if (device->disk.alias == NULL)
                        device->disk.alias = strdup(ids[j]);
                    if (domain_definition_add_device(runtime->live, device, NULL) == 0) {
                        changed = true;
                        domains_emit_event(domains, runtime->uuid, runtime->name, "device-added",
                                           ids[j]);
                    }
                }
                if (device)
                    domain_device_free(device);
            }
            if (!domain_alias_taken(runtime->live, ids[j]))
                pv_log_warning("domain %s: the VMM has device '%s' that no definition knows; "
                               "left alone",
                               runtime->name, ids[j]);
        }
        store_device_list_free(devices, device_count);
    }
    if (changed) {
        struct pv_error error = {0};
        if (domains_save(domains, runtime, NULL, &error) < 0)
            pv_log_error("domain %s: %s", runtime->name, error.message);
    }
    return 0;
}

/* The device reconciliation, in order: each command's reply (a JSON array) goes to its
 * handler, which may use what the steps before it collected in the reconcile. A failed
 * command, a reply that is not an array, a handler returning < 0 or the domain going away
 * ends the reconciliation there; it also ends after the last step. query-status and the
 * journal replay run before it (on_reconcile_status): neither ends it when it fails. */
struct reconcile_step {
    const char *command;
    const char *arguments; /* JSON object text, or NULL */
    int (*handler)(struct reconcile *reconcile, struct runtime *runtime, yajl_val reply);
};

static const struct reconcile_step reconcile_steps[] = {
    {"query-pci", NULL, reconcile_query_pci},
    {"query-block", NULL, reconcile_query_block},
    {"query-named-block-nodes", "{\"flat\": true}", reconcile_block_nodes},
};

static void on_reconcile_step(struct domains *domains, const char *uuid,
                              const struct qmp_connection_reply *reply, void *context);

/* Runs the reconcile's current step, or ends the reconciliation past the last one. */
static void reconcile_run_step(struct reconcile *reconcile)
{
    struct runtime *runtime = reconcile_runtime(reconcile, NULL, NULL);
    if (runtime == NULL ||
        reconcile->step >= sizeof(reconcile_steps) / sizeof(reconcile_steps[0])) {
        reconcile_end(reconcile);
        return;
    }
    const struct reconcile_step *step = &reconcile_steps[reconcile->step];
    runtime_execute(runtime, step->command, step->arguments, 0, on_reconcile_step, reconcile);
}

static void on_reconcile_step(struct domains *domains, const char *uuid,
                              const struct qmp_connection_reply *reply, void *context)
{
    struct reconcile *reconcile = context;
    const struct reconcile_step *step = &reconcile_steps[reconcile->step];
    struct runtime *runtime;
    yajl_val root = reconcile_reply(reconcile, reply, step->command, &runtime);
    if (root == NULL)
        return; /* reconcile_reply ended it */
    int rc = step->handler(reconcile, runtime, root);
    yajl_tree_free(root);
    if (rc < 0) {
        reconcile_end(reconcile);
        return;
    }
    reconcile->step++;
    reconcile_run_step(reconcile);
}

static void reconcile_devices(struct reconcile *reconcile)
{
    reconcile->step = 0;
    reconcile_run_step(reconcile);
}

/* The journal was replayed: what is left is compared with the VMM's devices. */
static void on_restore_recovered(void *opaque, const struct hotplug_result *result)
{
    struct reconcile *reconcile = opaque;
    reconcile_unlink(reconcile);
    if (result->status < 0)
        pv_log_warning("hotplug recovery: %s", result->message);
    else if (result->message[0])
        pv_log_info("hotplug recovery: %s", result->message);
    snprintf(reconcile->report, sizeof(reconcile->report), "%s%s",
             result->status < 0 ? "recovery incomplete: " : "", result->message);
    reconcile_devices(reconcile);
}

static void on_reconcile_status(struct domains *domains, const char *uuid,
                                const struct qmp_connection_reply *reply, void *context)
{
    struct runtime *runtime = domains_find_runtime(domains, uuid);
    if (runtime == NULL || runtime->stopping)
        return;
    if (reply->status == 0 && reply->return_json) {
        yajl_val root =
            json_parse(reply->return_json, strlen(reply->return_json), 65536, JSON_MAX_DEPTH, NULL);
        bool running = false;
        if (root && json_get_bool(root, "running", &running))
            runtime_set_state(runtime, running ? STORE_DOMAIN_RUNNING : STORE_DOMAIN_PAUSED, NULL);
        if (root)
            yajl_tree_free(root);
    }
    struct reconcile *reconcile = calloc(1, sizeof(*reconcile));
    if (reconcile == NULL) {
        pv_log_error("domain %s: out of memory", runtime->name);
        return;
    }
    reconcile->domains = domains;
    snprintf(reconcile->uuid, sizeof(reconcile->uuid), "%s", runtime->uuid);
    reconcile->next = domains->reconciles;
    domains->reconciles = reconcile;
    struct pv_error error = {0};
    if (hotplug_recover(domains->hotplug, runtime->uuid, runtime->qmp, on_restore_recovered,
                        reconcile, &error) < 0) {
        pv_log_warning("domain %s: hotplug recovery: %s", runtime->name, error.message);
        reconcile_unlink(reconcile);
        reconcile_devices(reconcile);
    }
}

void domains_reconcile_after_restore(struct runtime *runtime)
{
    domains_emit_event(runtime->domains, runtime->uuid, runtime->name, "lifecycle",
                       "reconnected: the VMM survived the daemon restart");
    runtime_execute(runtime, "query-status", NULL, 0, on_reconcile_status, NULL);
}

/* ------------------------------------------------------------------- restore --- */

static void finish_jobs_of(struct domains *domains, const char *uuid)
{
    struct store_job *jobs = NULL;
    size_t count = 0;
    if (store_job_list_unfinished(domains->store, &jobs, &count, NULL) < 0)
        return;
    for (size_t i = 0; i < count; i++)
        if (strcasecmp(jobs[i].domain_uuid, uuid) == 0)
            store_job_finish(domains->store, jobs[i].id, STORE_JOB_FAILED, NULL);
    store_job_list_free(jobs, count);
}

static void restore_one(struct domains *domains, struct store_domain *row)
{
    struct pv_error error = {0};
    uint64_t start_time = row->pid > 0 ? runtime_process_start_time(row->pid) : 0;
    if (row->pid > 0 && start_time != 0 && start_time == row->pid_start_time) {
        struct runtime *runtime = runtime_new(domains, row->uuid, row->name);
        if (runtime == NULL)
            return;
        runtime->pid = row->pid;
        runtime->start_time = start_time;
        runtime->restored = true;
        runtime->recovering = true;
        runtime->state = row->state == STORE_DOMAIN_SHUTOFF ? STORE_DOMAIN_RUNNING : row->state;
        if (row->qmp_path)
            snprintf(runtime->qmp_path, sizeof(runtime->qmp_path), "%s", row->qmp_path);
        if (row->live_xml)
            runtime->live = domains_parse_definition(domains, row->live_xml, &error);
        if (runtime->live == NULL && row->persistent_xml) {
            pv_log_warning("domain %s: live definition unreadable (%s), using the persistent "
                           "one",
                           row->name, error.message);
            runtime->live = domains_parse_definition(domains, row->persistent_xml, &error);
            if (runtime->live)
                domain_assign_aliases(runtime->live, NULL);
        }
        char directory[PATH_MAX - 32];
        domains_directory(domains, row->name, directory, sizeof(directory));
        if (runtime->live &&
            (!(runtime->console = console_create(domains->base, row->name, directory, runtime->live,
                                                 true, &error)) ||
             domains_save(domains, runtime, NULL, &error) < 0)) /* a pty's path */
            pv_log_warning("domain %s: serial port: %s", row->name, error.message);
        runtime->next = domains->runtimes;
        domains->runtimes = runtime;
        if (runtime_watch(runtime, &error) < 0 || runtime_connect(runtime, &error) < 0)
            pv_log_error("domain %s: %s", row->name, error.message);
        pv_log_info("domain %s: found its VMM (pid %d) still running", row->name, (int)row->pid);
        return;
    }
    if (row->pid > 0 || domains_state_is_active(row->state)) {
        row->state = STORE_DOMAIN_SHUTOFF;
        row->pid = 0;
        row->pid_start_time = 0;
        free(row->live_xml);
        row->live_xml = NULL;
        if (store_domain_put(domains->store, row, &error) < 0)
            pv_log_error("domain %s: %s", row->name, error.message);
        store_device_delete_all(domains->store, row->uuid, NULL);
        finish_jobs_of(domains, row->uuid);
        domains_set_stop_reason(domains, row->uuid, "unknown");
        domains_emit_event(
            domains, row->uuid, row->name, "lifecycle",
            "stopped: the VMM is gone, exit status unknown (the daemon was restarted)");
    }
}

static void on_autostart_done(void *opaque, const struct domains_result *result)
{
    char *name = opaque;
    if (result->code)
        pv_log_error("autostart of domain %s failed: %s", name, result->message);
    free(name);
}

int domains_restore(struct domains *domains, struct pv_error *error)
{
    struct store_domain *rows = NULL;
    size_t count = 0;
    int rc = store_domain_list(domains->store, &rows, &count, error);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < count; i++)
        restore_one(domains, &rows[i]);
    for (size_t i = 0; i < count; i++) {
        if (!rows[i].autostart || domains_find_runtime(domains, rows[i].uuid))
            continue;
        char *name = strdup(rows[i].name);
        if (name)
            domains_start(domains, rows[i].uuid, on_autostart_done, name);
    }
    store_domain_list_free(rows, count);
    return 0;
}

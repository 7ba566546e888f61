/* Read-only queries of the API: list, info, state, xml, blklist (see domains.h). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"
#include "domains_internal.h"
#include "json_util.h"
#include "store.h"

/* ------------------------------------------------------------------- queries --- */

void domains_list(struct domains *domains, bool all, domains_done_fn done, void *opaque)
{
    struct store_domain *rows = NULL;
    size_t count = 0;
    struct pv_error error = {0};
    int rc = store_domain_list(domains->store, &rows, &count, &error);
    if (rc < 0) {
        domains_reply_error(done, opaque, "internal", "%s", error.message);
        return;
    }
    struct json_writer writer;
    json_writer_init(&writer, false);
    json_writer_begin_array(&writer);
    for (size_t i = 0; i < count; i++) {
        struct store_domain *row = &rows[i];
        struct runtime *runtime = domains_find_runtime(domains, row->uuid);
        enum store_domain_state state = runtime ? runtime->state : row->state;
        if (!all && !domains_state_is_active(state))
            continue;
        json_writer_begin_object(&writer);
        json_writer_key(&writer, "id");
        if (runtime)
            json_writer_int(&writer, runtime->pid);
        else
            json_writer_null(&writer);
        json_writer_member_string(&writer, "name", row->name);
        json_writer_member_string(&writer, "uuid", row->uuid);
        json_writer_member_string(&writer, "state", store_domain_state_name(state));
        json_writer_member_bool(&writer, "persistent", row->persistent);
        json_writer_member_bool(&writer, "autostart", row->autostart);
        json_writer_end_object(&writer);
    }
    json_writer_end_array(&writer);
    store_domain_list_free(rows, count);
    domains_reply_writer(done, opaque, &writer);
}

/* The definition to show: live when running (unless inactive), else the persistent one.
 * Replies on failure. The caller frees the result when *owned. */
static struct domain_definition *current_definition(struct domains *domains,
                                                    const struct store_domain *row, bool inactive,
                                                    bool *owned, domains_done_fn done, void *opaque)
{
    struct runtime *runtime = domains_find_runtime(domains, row->uuid);
    if (runtime && runtime->live && !inactive) {
        *owned = false;
        return runtime->live;
    }
    struct pv_error error = {0};
    *owned = true;
    struct domain_definition *definition =
        domains_parse_definition(domains, row->persistent_xml, &error);
    if (definition == NULL)
        domains_reply_error(done, opaque, "internal", "stored definition: %s", error.message);
    return definition;
}

void domains_info(struct domains *domains, const char *key, domains_done_fn done, void *opaque)
{
    struct store_domain row;
    if (domains_lookup(domains, key, &row, done, opaque) < 0)
        return;
    bool owned = false;
    struct domain_definition *definition =
        current_definition(domains, &row, false, &owned, done, opaque);
    if (definition) {
        struct runtime *runtime = domains_find_runtime(domains, row.uuid);
        struct json_writer writer;
        json_writer_init(&writer, false);
        json_writer_begin_object(&writer);
        json_writer_key(&writer, "id");
        if (runtime)
            json_writer_int(&writer, runtime->pid);
        else
            json_writer_null(&writer);
        json_writer_member_string(&writer, "name", row.name);
        json_writer_member_string(&writer, "uuid", row.uuid);
        json_writer_member_string(&writer, "os_type",
                                  definition->os_type ? definition->os_type : "hvm");
        json_writer_member_string(&writer, "state",
                                  store_domain_state_name(runtime ? runtime->state : row.state));
        json_writer_member_uint(&writer, "vcpus", definition->vcpus_current);
        json_writer_member_uint(&writer, "max_memory_kib", definition->memory_kib);
        json_writer_member_uint(&writer, "memory_kib", definition->current_memory_kib);
        json_writer_member_bool(&writer, "persistent", row.persistent);
        json_writer_member_bool(&writer, "autostart", row.autostart);
        /* Found running after a daemon restart, journal not replayed yet. */
        json_writer_member_bool(&writer, "recovering", runtime && runtime->recovering);
        json_writer_key(&writer, "hotplug"); /* devices attaching or detaching */
        json_writer_begin_array(&writer);
        for (size_t i = 0; runtime && i < definition->disk_count; i++) {
            const struct domain_disk *disk = &definition->disks[i];
            if (disk->hotplug_state == DOMAIN_HOTPLUG_ATTACHED)
                continue;
            json_writer_begin_object(&writer);
            json_writer_member_string(&writer, "target", disk->target_dev);
            json_writer_member_string(&writer, "state",
                                      domain_hotplug_state_name(disk->hotplug_state));
            json_writer_end_object(&writer);
        }
        json_writer_end_array(&writer);
        json_writer_end_object(&writer);
        domains_reply_writer(done, opaque, &writer);
        if (owned)
            domain_definition_free(definition);
    }
    store_domain_clear(&row);
}

void domains_state(struct domains *domains, const char *key, domains_done_fn done, void *opaque)
{
    struct store_domain row;
    if (domains_lookup(domains, key, &row, done, opaque) < 0)
        return;
    struct runtime *runtime = domains_find_runtime(domains, row.uuid);
    enum store_domain_state state = runtime ? runtime->state : row.state;
    const char *reason = "unknown";
    switch (state) {
    case STORE_DOMAIN_RUNNING:
        reason = runtime && runtime->restored ? "unknown" : "booted";
        break;
    case STORE_DOMAIN_PAUSED:
        reason = runtime && runtime->start_waiters ? "starting up" : "user";
        break;
    case STORE_DOMAIN_SHUTDOWN:
        reason = "user";
        break;
    case STORE_DOMAIN_SHUTOFF:
    case STORE_DOMAIN_CRASHED:
        reason = domains_stop_reason(domains, row.uuid);
        break;
    }
    struct json_writer writer;
    json_writer_init(&writer, false);
    json_writer_begin_object(&writer);
    json_writer_member_string(&writer, "state", store_domain_state_name(state));
    json_writer_member_string(&writer, "reason", reason);
    json_writer_end_object(&writer);
    domains_reply_writer(done, opaque, &writer);
    store_domain_clear(&row);
}

void domains_xml(struct domains *domains, const char *key, bool inactive, domains_done_fn done,
                 void *opaque)
{
    struct store_domain row;
    if (domains_lookup(domains, key, &row, done, opaque) < 0)
        return;
    struct runtime *runtime = domains_find_runtime(domains, row.uuid);
    struct pv_error error = {0};
    char *xml = NULL;
    if (runtime && runtime->live && !inactive)
        xml = domain_xml_format(runtime->live, true, &error);
    else
        xml = row.persistent_xml ? strdup(row.persistent_xml) : NULL;
    if (xml == NULL) {
        domains_reply_error(done, opaque, "internal", "%s",
                            error.message[0] ? error.message : "no definition");
    } else {
        struct json_writer writer;
        json_writer_init(&writer, false);
        json_writer_begin_object(&writer);
        json_writer_member_string(&writer, "xml", xml);
        json_writer_end_object(&writer);
        domains_reply_writer(done, opaque, &writer);
        free(xml);
    }
    store_domain_clear(&row);
}

void domains_blklist(struct domains *domains, const char *key, bool inactive, domains_done_fn done,
                     void *opaque)
{
    struct store_domain row;
    if (domains_lookup(domains, key, &row, done, opaque) < 0)
        return;
    bool owned = false;
    struct domain_definition *definition =
        current_definition(domains, &row, inactive, &owned, done, opaque);
    if (definition) {
        struct json_writer writer;
        json_writer_init(&writer, false);
        json_writer_begin_array(&writer);
        for (size_t i = 0; i < definition->disk_count; i++) {
            const struct domain_disk *disk = &definition->disks[i];
            json_writer_begin_object(&writer);
            json_writer_member_string(&writer, "target", disk->target_dev ? disk->target_dev : "");
            json_writer_member_string(&writer, "source", disk->source ? disk->source : "-");
            json_writer_member_string(&writer, "type",
                                      disk->type == DOMAIN_DISK_BLOCK ? "block" : "file");
            json_writer_member_string(&writer, "device",
                                      disk->device == DOMAIN_DISK_DEVICE_CDROM ? "cdrom" : "disk");
            if (!inactive && domains_find_runtime(domains, row.uuid))
                json_writer_member_string(&writer, "state",
                                          domain_hotplug_state_name(disk->hotplug_state));
            json_writer_end_object(&writer);
        }
        json_writer_end_array(&writer);
        domains_reply_writer(done, opaque, &writer);
        if (owned)
            domain_definition_free(definition);
    }
    store_domain_clear(&row);
}

/* A domain's network interfaces as the API shows and changes them outside hot-plug:
 * domain.iflist (virsh domiflist, domif-getlink, and the lookup of detach-interface),
 * domain.set_link (domif-setlink: QMP set_link on the VMM, then <link state> in the live
 * definition; or <link state> in the persistent one) and domain.ifstat (domifstat: the tap's
 * counters as the guest sees them). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "domains_internal.h"
#include "json_util.h"
#include "qmp_connection.h"

#define SET_LINK_TIMEOUT_MS 10000

/* An interface is named by its tap (target dev) or its MAC address (any case), as virsh
 * names it. */
static struct domain_interface *find_interface(struct domain_definition *definition,
                                               const char *name)
{
    for (size_t i = 0; definition && i < definition->interface_count; i++) {
        struct domain_interface *interface = &definition->interfaces[i];
        if ((interface->target_dev && strcmp(interface->target_dev, name) == 0) ||
            (interface->mac && strcasecmp(interface->mac, name) == 0))
            return interface;
    }
    return NULL;
}

static struct domain_interface *find_interface_by_alias(struct domain_definition *definition,
                                                        const char *alias)
{
    for (size_t i = 0; definition && i < definition->interface_count; i++) {
        struct domain_interface *interface = &definition->interfaces[i];
        if (interface->alias && strcmp(interface->alias, alias) == 0)
            return interface;
    }
    return NULL;
}

static void reply_no_interface(domains_done_fn done, void *opaque, const char *name,
                               const char *domain, const char *which)
{
    domains_reply_error(done, opaque, "no-device",
                        "no interface '%s' in %sdomain '%s' (name it by its tap or MAC address: "
                        "pvsh domiflist %s%s lists them)",
                        name, which, domain, domain, *which ? " --inactive" : "");
}

/* ---------------------------------------------------------------------- list --- */

void domains_iflist(struct domains *domains, const char *key, bool inactive, domains_done_fn done,
                    void *opaque)
{
    struct store_domain row;
    if (domains_lookup(domains, key, &row, done, opaque) < 0)
        return;
    struct runtime *runtime = domains_find_runtime(domains, row.uuid);
    struct domain_definition *definition = NULL;
    struct domain_definition *parsed = NULL;
    if (runtime && runtime->live && !inactive) {
        definition = runtime->live;
    } else {
        struct pv_error error = {0};
        const char *xml = row.persistent_xml ? row.persistent_xml : row.live_xml;
        parsed = xml ? domains_parse_definition(domains, xml, &error) : NULL;
        if (!parsed) {
            domains_reply_error(done, opaque, "internal", "stored definition: %s",
                                xml ? error.message : "none");
            store_domain_clear(&row);
            return;
        }
        definition = parsed;
    }
    struct json_writer writer;
    json_writer_init(&writer, false);
    json_writer_begin_array(&writer);
    for (size_t i = 0; i < definition->interface_count; i++) {
        const struct domain_interface *interface = &definition->interfaces[i];
        json_writer_begin_object(&writer);
        json_writer_member_string(&writer, "type", domain_interface_type_name(interface->type));
        json_writer_member_string(&writer, "source", interface->source ? interface->source : "");
        json_writer_member_string(&writer, "target",
                                  interface->target_dev ? interface->target_dev : "");
        json_writer_member_string(&writer, "model", interface->model ? interface->model : "");
        json_writer_member_string(&writer, "mac", interface->mac ? interface->mac : "");
        json_writer_member_string(&writer, "alias", interface->alias ? interface->alias : "");
        json_writer_member_string(&writer, "link", interface->link_down ? "down" : "up");
        if (interface->queues)
            json_writer_member_uint(&writer, "queues", interface->queues);
        if (runtime && definition == runtime->live)
            json_writer_member_string(&writer, "state",
                                      domain_hotplug_state_name(interface->hotplug_state));
        json_writer_end_object(&writer);
    }
    json_writer_end_array(&writer);
    domains_reply_writer(done, opaque, &writer);
    if (parsed)
        domain_definition_free(parsed);
    store_domain_clear(&row);
}

/* ------------------------------------------------------------------ set link --- */

struct set_link_request {
    domains_done_fn done;
    void *opaque;
    char alias[64];
    bool up;
};

static void on_set_link_reply(struct domains *domains, const char *uuid,
                              const struct qmp_connection_reply *reply, void *context)
{
    struct set_link_request *request = context;
    if (reply->status < 0) {
        domains_reply_qmp_failure(request->done, request->opaque, "set_link", reply);
        free(request);
        return;
    }
    /* The VMM changed the link: the live definition says so too, so that dumpxml,
     * domif-getlink and a daemon restart agree with the guest. */
    struct runtime *runtime = domains_find_runtime(domains, uuid);
    struct domain_interface *interface =
        runtime ? find_interface_by_alias(runtime->live, request->alias) : NULL;
    if (!interface) {
        domains_reply_error(request->done, request->opaque, "no-device",
                            "interface %s went away while its link was being set", request->alias);
        free(request);
        return;
    }
    interface->link_down = !request->up;
    struct pv_error error = {0};
    if (domains_save(domains, runtime, NULL, &error) < 0)
        domains_reply_error(request->done, request->opaque, "internal",
                            "the link is %s but the live definition could not be saved: %s",
                            request->up ? "up" : "down", error.message);
    else
        domains_reply_ok(request->done, request->opaque, "{}");
    free(request);
}

static void set_link_live(struct domains *domains, struct runtime *runtime, const char *domain,
                          const char *name, bool up, domains_done_fn done, void *opaque)
{
    struct domain_interface *interface = find_interface(runtime->live, name);
    if (!interface) {
        reply_no_interface(done, opaque, name, domain, "");
        return;
    }
    if (interface->hotplug_state != DOMAIN_HOTPLUG_ATTACHED || !interface->alias) {
        domains_reply_error(done, opaque, "busy",
                            "interface '%s' of domain '%s' is %s: set its link once that is done",
                            name, domain, domain_hotplug_state_name(interface->hotplug_state));
        return;
    }
    struct set_link_request *request = calloc(1, sizeof(*request));
    if (!request) {
        domains_reply_error(done, opaque, "internal", "out of memory");
        return;
    }
    request->done = done;
    request->opaque = opaque;
    request->up = up;
    snprintf(request->alias, sizeof(request->alias), "%s", interface->alias);
    /* QMP set_link names the NIC by its device id, which is the alias (net0, ...). */
    struct json_writer arguments;
    json_writer_init(&arguments, false);
    json_writer_begin_object(&arguments);
    json_writer_member_string(&arguments, "name", interface->alias);
    json_writer_member_bool(&arguments, "up", up);
    json_writer_end_object(&arguments);
    runtime_execute(runtime, "set_link", json_writer_text(&arguments), SET_LINK_TIMEOUT_MS,
                    on_set_link_reply, request);
    json_writer_free(&arguments);
}

static void set_link_config(struct domains *domains, const struct store_domain *row,
                            const char *name, bool up, domains_done_fn done, void *opaque)
{
    if (!row->persistent_xml) {
        domains_reply_error(done, opaque, "invalid-argument",
                            "cannot change the persistent definition of a transient domain");
        return;
    }
    struct pv_error error = {0};
    struct domain_definition *persistent =
        domains_parse_definition(domains, row->persistent_xml, &error);
    if (!persistent) {
        domains_reply_error(done, opaque, "internal", "stored definition: %s", error.message);
        return;
    }
    struct domain_interface *interface = find_interface(persistent, name);
    if (!interface) {
        reply_no_interface(done, opaque, name, row->name, "the persistent definition of ");
    } else {
        interface->link_down = !up;
        if (domains_save(domains, NULL, persistent, &error) < 0)
            domains_reply_error(done, opaque, "internal", "%s", error.message);
        else
            domains_reply_ok(done, opaque, "{}");
    }
    domain_definition_free(persistent);
}

void domains_set_link(struct domains *domains, const char *key, const char *name, const char *state,
                      unsigned flags, domains_done_fn done, void *opaque)
{
    if (!name || !*name) {
        domains_reply_error(done, opaque, "invalid-argument", "missing parameter 'interface'");
        return;
    }
    if (!state || (strcmp(state, "up") != 0 && strcmp(state, "down") != 0)) {
        domains_reply_error(done, opaque, "invalid-argument",
                            "invalid link state '%s': it is 'up' or 'down'", state ? state : "");
        return;
    }
    if ((flags & DOMAINS_FLAG_LIVE) && (flags & DOMAINS_FLAG_CONFIG)) {
        /* virsh domif-setlink changes one definition; both at once would need a rollback
         * of the live change when the persistent one fails. */
        domains_reply_error(done, opaque, "invalid-argument",
                            "set the link with either 'live' or 'config', not both");
        return;
    }
    bool up = strcmp(state, "up") == 0;
    struct store_domain row;
    if (domains_lookup(domains, key, &row, done, opaque) < 0)
        return;
    struct runtime *runtime = domains_find_runtime(domains, row.uuid);
    bool live = flags & DOMAINS_FLAG_LIVE;
    if (!(flags & (DOMAINS_FLAG_LIVE | DOMAINS_FLAG_CONFIG))) /* current */
        live = runtime && runtime->live;
    if (live) {
        runtime = domains_running_runtime(domains, row.uuid, done, opaque);
        if (runtime)
            set_link_live(domains, runtime, row.name, name, up, done, opaque);
    } else {
        set_link_config(domains, &row, name, up, done, opaque);
    }
    store_domain_clear(&row);
}

/* ---------------------------------------------------------------- statistics --- */

/* The tap's counters from /proc/net/dev, which (unlike /sys/class/net) always shows the
 * daemon's own network namespace. Fields after "name:": rx bytes packets errs drop fifo
 * frame compressed multicast, tx bytes packets errs drop ... */
struct tap_counters {
    unsigned long long rx_bytes, rx_packets, rx_errs, rx_drop;
    unsigned long long tx_bytes, tx_packets, tx_errs, tx_drop;
};

static int read_tap_counters(const char *tap, struct tap_counters *counters, struct pv_error *error)
{
    FILE *file = fopen("/proc/net/dev", "re");
    if (!file)
        return pv_error_set(error, -errno, "cannot read /proc/net/dev: %s", strerror(errno));
    char *line = NULL;
    size_t capacity = 0;
    int rc = -ENODEV;
    size_t tap_length = strlen(tap);
    while (rc == -ENODEV && getline(&line, &capacity, file) >= 0) {
        const char *name = line + strspn(line, " ");
        if (strncmp(name, tap, tap_length) != 0 || name[tap_length] != ':')
            continue;
        unsigned long long skip;
        int fields = sscanf(name + tap_length + 1,
                            "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
                            &counters->rx_bytes, &counters->rx_packets, &counters->rx_errs,
                            &counters->rx_drop, &skip, &skip, &skip, &skip, &counters->tx_bytes,
                            &counters->tx_packets, &counters->tx_errs, &counters->tx_drop);
        rc = fields == 12 ? 0 : -EPROTO;
    }
    bool failed = ferror(file);
    free(line);
    fclose(file);
    if (failed)
        return pv_error_set(error, -EIO, "cannot read /proc/net/dev");
    if (rc == -EPROTO)
        return pv_error_set(error, rc, "/proc/net/dev has an unexpected line for %s", tap);
    if (rc == -ENODEV)
        return pv_error_set(
            error, rc, "tap %s is not in plugvirtd's network namespace (was it deleted?)", tap);
    return 0;
}

void domains_ifstat(struct domains *domains, const char *key, const char *name,
                    domains_done_fn done, void *opaque)
{
    if (!name || !*name) {
        domains_reply_error(done, opaque, "invalid-argument", "missing parameter 'interface'");
        return;
    }
    struct runtime *runtime = domains_running_runtime(domains, key, done, opaque);
    if (!runtime)
        return;
    struct domain_interface *interface = find_interface(runtime->live, name);
    if (!interface) {
        reply_no_interface(done, opaque, name, runtime->name, "");
        return;
    }
    if (!interface->target_dev) {
        domains_reply_error(done, opaque, "busy",
                            "interface '%s' of domain '%s' has no tap yet (it is %s)", name,
                            runtime->name, domain_hotplug_state_name(interface->hotplug_state));
        return;
    }
    struct tap_counters tap = {0};
    struct pv_error error = {0};
    if (read_tap_counters(interface->target_dev, &tap, &error) < 0) {
        domains_reply_error(done, opaque, "operation-failed", "%s", error.message);
        return;
    }
    /* What the tap transmits the guest receives, and the other way round: the counters are
     * swapped, as libvirt does, so that rx/tx are the guest's. */
    struct json_writer writer;
    json_writer_init(&writer, false);
    json_writer_begin_object(&writer);
    json_writer_member_string(&writer, "interface", name);
    json_writer_member_string(&writer, "tap", interface->target_dev);
    json_writer_member_uint(&writer, "rx_bytes", tap.tx_bytes);
    json_writer_member_uint(&writer, "rx_packets", tap.tx_packets);
    json_writer_member_uint(&writer, "rx_errs", tap.tx_errs);
    json_writer_member_uint(&writer, "rx_drop", tap.tx_drop);
    json_writer_member_uint(&writer, "tx_bytes", tap.rx_bytes);
    json_writer_member_uint(&writer, "tx_packets", tap.rx_packets);
    json_writer_member_uint(&writer, "tx_errs", tap.rx_errs);
    json_writer_member_uint(&writer, "tx_drop", tap.rx_drop);
    json_writer_end_object(&writer);
    domains_reply_writer(done, opaque, &writer);
}

/* Runtime domains: create/free, replies, events and the helpers the domain layer's files
 * share (domains_internal.h; daemon/README maps the files). */
#include "domains.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "domain.h"
#include "domains_internal.h"
#include "hotplug.h"
#include "json_util.h"
#include "pv_log.h"
#include "qmp_connection.h"
#include "store.h"

/* ------------------------------------------------------------------- replies --- */

void domains_reply_ok(domains_done_fn done, void *opaque, const char *json)
{
    struct domains_result result = {.result_json = json ? json : "{}"};
    done(opaque, &result);
}

void domains_reply_error(domains_done_fn done, void *opaque, const char *code, const char *format,
                         ...)
{
    char message[1024];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(message, sizeof(message), format, arguments);
    va_end(arguments);
    struct domains_result result = {.code = code, .message = message};
    done(opaque, &result);
}

void domains_reply_writer(domains_done_fn done, void *opaque, struct json_writer *writer)
{
    if (json_writer_status(writer) < 0)
        domains_reply_error(done, opaque, "internal", "out of memory");
    else
        domains_reply_ok(done, opaque, json_writer_text(writer));
    json_writer_free(writer);
}

void domains_reply_qmp_failure(domains_done_fn done, void *opaque, const char *step,
                               const struct qmp_connection_reply *reply)
{
    char message[1024];
    const char *code = "qmp-error";
    if (reply->status == -ETIMEDOUT) {
        code = "timeout";
        snprintf(message, sizeof(message), "%s: no reply from the VMM in time", step);
    } else if (reply->status == -ECONNRESET) {
        code = "not-running";
        snprintf(message, sizeof(message), "%s: %s", step,
                 reply->error_desc ? reply->error_desc : "the QMP connection was lost");
    } else {
        snprintf(message, sizeof(message), "%s: %s", step,
                 reply->error_desc ? reply->error_desc : "QMP error");
    }
    struct domains_result result = {
        .code = code,
        .message = message,
        .qmp_class = reply->status == -EREMOTEIO ? reply->error_class : NULL,
        .step = step,
    };
    done(opaque, &result);
}

const char *domains_store_error_code(int status)
{
    switch (status) {
    case -ENOENT:
        return "no-domain";
    case -EEXIST:
        return "domain-exists";
    default:
        return "internal";
    }
}

/* -------------------------------------------------------------------- events --- */

void domains_emit_event(struct domains *domains, const char *uuid, const char *name,
                        const char *type, const char *detail)
{
    struct pv_error error = {0};
    if (store_event_add(domains->store, uuid, type, detail, &error) < 0)
        pv_log_warning("event log: %s", error.message);
    pv_log_info("domain %s: %s: %s", name ? name : uuid, type, detail);
    if (domains->event)
        domains->event(domains->event_opaque, type, name, uuid, detail);
}

void domains_set_stop_reason(struct domains *domains, const char *uuid, const char *reason)
{
    struct stop_reason *entry = domains->reasons;
    while (entry && strcasecmp(entry->uuid, uuid) != 0)
        entry = entry->next;
    if (entry == NULL) {
        entry = calloc(1, sizeof(*entry));
        if (entry == NULL)
            return;
        snprintf(entry->uuid, sizeof(entry->uuid), "%s", uuid);
        entry->next = domains->reasons;
        domains->reasons = entry;
    }
    snprintf(entry->reason, sizeof(entry->reason), "%s", reason);
}

const char *domains_stop_reason(struct domains *domains, const char *uuid)
{
    for (struct stop_reason *entry = domains->reasons; entry; entry = entry->next)
        if (strcasecmp(entry->uuid, uuid) == 0)
            return entry->reason;
    return "unknown";
}

/* ------------------------------------------------------------------- helpers --- */

struct runtime *domains_find_runtime(struct domains *domains, const char *uuid)
{
    for (struct runtime *runtime = domains->runtimes; runtime; runtime = runtime->next)
        if (strcasecmp(runtime->uuid, uuid) == 0)
            return runtime;
    return NULL;
}

struct runtime *domains_running_runtime(struct domains *domains, const char *key,
                                        domains_done_fn done, void *opaque)
{
    struct store_domain row;
    if (domains_lookup(domains, key, &row, done, opaque) < 0)
        return NULL;
    struct runtime *runtime = domains_find_runtime(domains, row.uuid);
    store_domain_clear(&row);
    if (runtime == NULL || runtime->stopping)
        domains_reply_error(done, opaque, "not-running", NOT_RUNNING_MESSAGE);
    return runtime && !runtime->stopping ? runtime : NULL;
}

/* Looks the domain up; on failure replies and returns < 0. */
int domains_lookup(struct domains *domains, const char *key, struct store_domain *out,
                   domains_done_fn done, void *opaque)
{
    struct pv_error error = {0};
    if (key == NULL || *key == '\0') {
        domains_reply_error(done, opaque, "invalid-argument", "missing parameter 'domain'");
        return -EINVAL;
    }
    int rc = store_domain_get(domains->store, key, out, &error);
    if (rc < 0) {
        if (rc == -ENOENT)
            domains_reply_error(done, opaque, "no-domain",
                                "Domain not found: no domain with matching "
                                "name or uuid '%s'",
                                key);
        else
            domains_reply_error(done, opaque, domains_store_error_code(rc), "%s", error.message);
    }
    return rc;
}

struct domain_definition *domains_parse_definition(struct domains *domains, const char *xml,
                                                   struct pv_error *error)
{
    if (xml == NULL) {
        pv_error_set(error, -EINVAL, "no XML");
        return NULL;
    }
    return domain_xml_parse(xml, strlen(xml), domains->config->schema_dir, error);
}

const char *domains_xml_error_code(const struct pv_error *error)
{
    if (error->code == -ENOTSUP || error->code == -EOPNOTSUPP ||
        strncmp(error->message, "unsupported", 11) == 0 || strstr(error->message, "unsupported:"))
        return "unsupported";
    if (error->code == -ENOMEM)
        return "internal";
    return "invalid-xml";
}

bool domains_state_is_active(enum store_domain_state state)
{
    return state == STORE_DOMAIN_RUNNING || state == STORE_DOMAIN_PAUSED ||
           state == STORE_DOMAIN_SHUTDOWN;
}

int domains_make_directory(const char *path, mode_t mode)
{
    if (mkdir(path, mode) == 0 || errno == EEXIST)
        return 0;
    return -errno;
}

void domains_directory(struct domains *domains, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/domains/%s", domains->config->run_dir, name);
}

/* Writes the runtime's live definition (and optionally a new persistent one) into the
 * store in one transaction (store_domain_put is one). */
int domains_save(struct domains *domains, struct runtime *runtime,
                 const struct domain_definition *persistent, struct pv_error *error)
{
    const char *uuid = runtime ? runtime->uuid : persistent->uuid;
    struct store_domain row;
    int rc = store_domain_get(domains->store, uuid, &row, error);
    if (rc < 0)
        return rc;
    char *live_xml = NULL, *persistent_xml = NULL;
    if (runtime && runtime->live) {
        live_xml = domain_xml_format(runtime->live, true, error);
        if (live_xml == NULL) {
            store_domain_clear(&row);
            return error && error->code ? error->code : -ENOMEM;
        }
        free(row.live_xml);
        row.live_xml = live_xml;
        row.state = runtime->state;
        row.pid = runtime->pid;
        row.pid_start_time = runtime->start_time;
        free(row.qmp_path);
        row.qmp_path = strdup(runtime->qmp_path);
    }
    if (persistent) {
        persistent_xml = domain_xml_format(persistent, false, error);
        if (persistent_xml == NULL) {
            store_domain_clear(&row);
            return error && error->code ? error->code : -ENOMEM;
        }
        free(row.persistent_xml);
        row.persistent_xml = persistent_xml;
    }
    rc = store_domain_put(domains->store, &row, error);
    store_domain_clear(&row);
    return rc;
}

/* --------------------------------------------------------------- create/free --- */

struct domains *domains_create(struct event_base *base, struct store *store,
                               const struct daemon_config *config, domains_event_fn event,
                               void *event_opaque, struct pv_error *error)
{
    struct domains *domains = calloc(1, sizeof(*domains));
    if (domains == NULL) {
        pv_error_set(error, -ENOMEM, "out of memory");
        return NULL;
    }
    domains->base = base;
    domains->store = store;
    domains->config = config;
    domains->event = event;
    domains->event_opaque = event_opaque;
    struct hotplug_config hotplug_config = {
        .qmp_timeout_ms = config->qmp_timeout_ms,
        .detach_timeout_ms = config->detach_timeout_ms,
        .job_wait_timeout_ms = config->job_wait_timeout_ms,
        .abort_after_step = config->fault_injection_point,
        .ops = &domains_hotplug_ops,
        .opaque = domains,
    };
    domains->hotplug = hotplug_manager_create(base, store, &hotplug_config, error);
    if (domains->hotplug == NULL) {
        free(domains);
        return NULL;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/domains", config->run_dir);
    int rc = domains_make_directory(path, 0700);
    if (rc < 0) {
        pv_error_set_errno(error, rc, "cannot create %s", path);
        hotplug_manager_destroy(domains->hotplug);
        free(domains);
        return NULL;
    }
    return domains;
}

void domains_free(struct domains *domains)
{
    if (domains == NULL)
        return;
    while (domains->runtimes) {
        struct runtime *runtime = domains->runtimes;
        domains->runtimes = runtime->next;
        runtime->stopping = true; /* the VMM keeps running: only our side goes */
        if (runtime->qmp) {
            struct qmp_connection *qmp = runtime->qmp;
            runtime->qmp = NULL;
            qmp_connection_close(qmp);
        }
        runtime_free_waiter_list(&runtime->start_waiters, "internal", "the daemon is stopping");
        runtime_free_waiter_list(&runtime->stop_waiters, "internal", "the daemon is stopping");
        runtime_free(runtime);
    }
    hotplug_manager_destroy(domains->hotplug);
    /* Recoveries that never ended (their jobs were dropped with the manager). */
    domains_reconcile_free_all(domains);
    while (domains->reasons) {
        struct stop_reason *reason = domains->reasons;
        domains->reasons = reason->next;
        free(reason);
    }
    free(domains);
}

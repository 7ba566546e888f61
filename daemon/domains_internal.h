/* What the parts of the daemon's domain layer share (domains.c: lifecycle, supervision,
 * restore; domain_devices.c: attach/detach and the hotplug ops). Not for other modules. */
#ifndef PLUGVIRT_DOMAINS_INTERNAL_H
#define PLUGVIRT_DOMAINS_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "domain.h"
#include "domains.h"
#include "json_util.h"
#include "store.h"

struct event;
struct qmp_connection;
struct hotplug_manager;
struct console;

#define NOT_RUNNING_MESSAGE "Requested operation is not valid: domain is not running"

struct waiter {
    struct runtime *runtime;
    domains_done_fn done;
    void *opaque;
    struct event *timer; /* shutdown --timeout */
    struct waiter *next;
};

/* A domain whose VMM process exists (started by us or found at daemon start). */
struct runtime {
    struct domains *domains;
    char uuid[DOMAIN_UUID_STRING_LENGTH + 1];
    char *name;
    pid_t pid;
    uint64_t start_time;
    int pidfd;
    struct event *pidfd_event;
    bool child; /* forked by this daemon: waitpid gives the exit status */
    struct qmp_connection *qmp;
    bool qmp_ready;
    struct domain_definition *live;
    struct console *console; /* serial port 0 (console.h) */
    enum store_domain_state state;
    bool guest_shutdown; /* SHUTDOWN event seen */
    bool destroying;
    bool stopping;     /* runtime_stop in progress */
    bool restored;     /* found at daemon start */
    bool started;      /* the guest ran (start completed, or found running) */
    bool recovering;   /* restored: journal recovery and reconciliation not finished yet */
    bool start_failed; /* killed because its start failed: "shut off (failed)" */
    struct event *kill_timer;
    struct waiter *start_waiters;
    struct waiter *stop_waiters;
    char qmp_path[PATH_MAX];
    char pidfile_path[PATH_MAX];
    char log_path[PATH_MAX];
    struct runtime *next;
};

struct stop_reason {
    char uuid[DOMAIN_UUID_STRING_LENGTH + 1];
    char reason[32];
    struct stop_reason *next;
};

struct reconcile;

struct domains {
    struct event_base *base;
    struct store *store;
    const struct daemon_config *config;
    struct hotplug_manager *hotplug;
    domains_event_fn event;
    void *event_opaque;
    struct runtime *runtimes;
    struct stop_reason *reasons;
    struct reconcile *reconciles; /* restored domains waiting for their journal recovery */
};

/* Replies: each calls `done` exactly once. */
void domains_reply_ok(domains_done_fn done, void *opaque, const char *json);
void domains_reply_error(domains_done_fn done, void *opaque, const char *code, const char *format,
                         ...) __attribute__((format(printf, 4, 5)));
void domains_reply_writer(domains_done_fn done, void *opaque, struct json_writer *writer);
/* Logs the event, stores it in the event log and passes it to subscribers. */
void domains_emit_event(struct domains *domains, const char *uuid, const char *name,
                        const char *type, const char *detail);
struct runtime *domains_find_runtime(struct domains *domains, const char *uuid);
/* Looks the domain up by name or uuid; on failure replies and returns < 0. */
int domains_lookup(struct domains *domains, const char *key, struct store_domain *out,
                   domains_done_fn done, void *opaque);
struct domain_definition *domains_parse_definition(struct domains *domains, const char *xml,
                                                   struct pv_error *error);
/* The API code of a parse error: "unsupported", "invalid-xml" or "internal". */
const char *domains_xml_error_code(const struct pv_error *error);
/* Writes the runtime's live definition and/or a new persistent one in one store_domain_put
 * (joins the caller's store transaction, if any). */
int domains_save(struct domains *domains, struct runtime *runtime,
                 const struct domain_definition *persistent, struct pv_error *error);
/* The disk's source exists, has the right type and the access it needs. */
int domains_preflight_disk(const struct domain_disk *disk, struct pv_error *error);
/* The first disk of a running domain other than `self` (a live definition) that uses `disk`'s
 * source in a way that conflicts with it (libvirt: read-write, not <shareable/> on both);
 * 0 or -EBUSY with the other domain and target named. */
int domains_check_disk_sharing(struct domains *domains, const char *uuid,
                               const struct domain_disk *disk, struct pv_error *error);

/* domain_devices.c */
extern const struct hotplug_ops domains_hotplug_ops;
/* Removes a disk from the live definition (if there); true when it was. */
bool domains_remove_live_disk(struct runtime *runtime, const char *target_dev);

#endif

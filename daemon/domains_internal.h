/* What the parts of the daemon's domain layer share (domains.c: create/free, replies, events,
 * shared helpers; domain_runtime.c: VMM process and QMP connection; domain_lifecycle.c;
 * domain_queries.c; domain_monitor.c; domain_restore.c: restart and reconciliation;
 * domain_devices.c: attach/detach and the hotplug ops). Not for other modules. */
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
struct qmp_connection_reply;

#define NOT_RUNNING_MESSAGE "Requested operation is not valid: domain is not running"
#define DOMAINS_MAX_JSON (16u * 1024 * 1024)

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

/* A request answered by one QMP command's reply (reboot/suspend/resume, monitor command). */
struct simple_request {
    domains_done_fn done;
    void *opaque;
    char step[32];
};

/* Replies: each calls `done` exactly once. */
void domains_reply_ok(domains_done_fn done, void *opaque, const char *json);
void domains_reply_error(domains_done_fn done, void *opaque, const char *code, const char *format,
                         ...) __attribute__((format(printf, 4, 5)));
void domains_reply_writer(domains_done_fn done, void *opaque, struct json_writer *writer);
/* A failed QMP step as the API's error: "timeout", "not-running" or "qmp-error". */
void domains_reply_qmp_failure(domains_done_fn done, void *opaque, const char *step,
                               const struct qmp_connection_reply *reply);
/* The API code of a store error: "no-domain", "domain-exists" or "internal". */
const char *domains_store_error_code(int status);
/* Logs the event, stores it in the event log and passes it to subscribers. */
void domains_emit_event(struct domains *domains, const char *uuid, const char *name,
                        const char *type, const char *detail);
/* Why a domain last stopped (virsh domstate --reason); "unknown" when not known. */
void domains_set_stop_reason(struct domains *domains, const char *uuid, const char *reason);
const char *domains_stop_reason(struct domains *domains, const char *uuid);
struct runtime *domains_find_runtime(struct domains *domains, const char *uuid);
/* The runtime of a running domain; on failure replies ("no-domain", "not-running") and
 * returns NULL. */
struct runtime *domains_running_runtime(struct domains *domains, const char *key,
                                        domains_done_fn done, void *opaque);
bool domains_state_is_active(enum store_domain_state state);
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
/* mkdir that accepts an existing directory; 0 or -errno. */
int domains_make_directory(const char *path, mode_t mode);
/* The domain's run directory (sockets, pidfile, logs). */
void domains_directory(struct domains *domains, const char *name, char *out, size_t size);
/* The disk's source exists, has the right type and the access it needs. */
int domains_preflight_disk(const struct domain_disk *disk, struct pv_error *error);
/* The first disk of a running domain other than `self` (a live definition) that uses `disk`'s
 * source in a way that conflicts with it (libvirt: read-write, not <shareable/> on both);
 * 0 or -EBUSY with the other domain and target named. */
int domains_check_disk_sharing(struct domains *domains, const char *uuid,
                               const struct domain_disk *disk, struct pv_error *error);

/* domain_runtime.c: the VMM process and its QMP connection. */
typedef void (*runtime_reply_fn)(struct domains *domains, const char *uuid,
                                 const struct qmp_connection_reply *reply, void *context);
struct runtime *runtime_new(struct domains *domains, const char *uuid, const char *name);
void runtime_free(struct runtime *runtime);
/* The process's start time (/proc/PID/stat field 22), 0 when gone or a zombie. */
uint64_t runtime_process_start_time(pid_t pid);
/* Forks and execs argv[0] in its own session, output to the log; 0 once exec succeeded. */
/* Forks and executes the VMM; `nic_fds` (the taps, one per queue) are its descriptors
 * VMM_ARGV_FIRST_NIC_FD.. (inherited, the only ones besides stdio). */
int runtime_spawn_vmm(struct runtime *runtime, char **argv, const int *nic_fds,
                      unsigned nic_fd_count, struct pv_error *error);
/* Watches the process through a pidfd: its exit stops the runtime at once. */
int runtime_watch(struct runtime *runtime, struct pv_error *error);
/* Opens the QMP connection; once ready, a started VMM gets "cont", a restored one is
 * reconciled (domain_restore.c). */
int runtime_connect(struct runtime *runtime, struct pv_error *error);
void runtime_kill(struct runtime *runtime, int signal_number);
int runtime_add_waiter(struct waiter **list, struct runtime *runtime, domains_done_fn done,
                       void *opaque);
/* Answers and frees every waiter: with the error when code is set, else with success. */
void runtime_free_waiter_list(struct waiter **list, const char *code, const char *message);
/* Stores the new state; emits a "lifecycle" event with the detail unless NULL. */
void runtime_set_state(struct runtime *runtime, enum store_domain_state state, const char *detail);
/* Runs a QMP command on the runtime; the callback gets the reply (or a synthesized
 * -ECONNRESET reply when the command could not be queued). timeout_ms <= 0: the default. */
/* QMP set_link {name: alias, up: false} (<link state='down'/>); a failure is logged. */
void runtime_set_link_down(struct runtime *runtime, const char *alias);
void runtime_execute(struct runtime *runtime, const char *command, const char *arguments,
                     int timeout_ms, runtime_reply_fn callback, void *context);

/* domain_restore.c */
/* A VMM found at daemon start is connected: replay its journal, compare its devices. */
void domains_reconcile_after_restore(struct runtime *runtime);
/* Frees reconciliations still waiting for their journal recovery (daemon stopping). */
void domains_reconcile_free_all(struct domains *domains);

/* domain_devices.c */
extern const struct hotplug_ops domains_hotplug_ops;
/* Removes a disk from the live definition (if there); true when it was. */
bool domains_remove_live_disk(struct runtime *runtime, const char *target_dev);
/* Gives `address` the first PCI slot free in both definitions (either may be NULL), or checks
 * the user's. */
int domains_allocate_slot(struct domain_definition *live, struct domain_definition *persistent,
                          struct domain_address *address, struct pv_error *error);

/* nic_devices.c */
/* -EEXIST naming the other domain when one (defined or running) has this MAC. */
int domains_check_mac_unique(struct domains *domains, const char *self_uuid, const char *mac,
                             struct pv_error *error);
/* A new MAC as libvirt makes one (52:54:00 and 3 random bytes), unused on the host. */
int domains_generate_mac(struct domains *domains, char **mac, struct pv_error *error);
/* Every interface's MAC unique in the definition and on the host (define). */
int domains_check_definition_macs(struct domains *domains,
                                  const struct domain_definition *definition,
                                  struct pv_error *error);
/* An interface joining `live` (hot plug) or only `persistent`: MAC not used there, alias
 * net<N>, a tap name (live, managed, none given) and a PCI slot. */
int domains_allocate_interface(struct domain_definition *live, struct domain_definition *persistent,
                               struct domain_interface *interface, struct pv_error *error);
/* A managed tap named "vnet..." (libvirt's generated names: not kept in persistent
 * definitions, made again at each start). */
bool domains_is_generated_tap_name(const struct domain_interface *interface);

#endif

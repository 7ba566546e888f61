/* Runtime domains: the lifecycle of every defined domain, VMM supervision, restart
 * reconciliation, virsh's --live/--config semantics for devices, event fan-out (the files
 * behind this interface: daemon/README).
 *
 * Every operation completes through a `domains_done_fn` that runs exactly once, either
 * before the call returns (most queries) or later on the event loop (start, destroy, attach,
 * detach, shutdown with a wait). The result is JSON text for the API's "result" member, or a
 * stable error code (DESIGN.md §4: "no-domain", "invalid-xml", "not-running", ...).
 *
 * Allocation (lib/domain_alloc.h, documented in plugvirt-domain(5)): the slot is written into
 * the persistent XML at define time (and at attach with --config), so the live and persistent
 * definitions agree. The VMM runs in its own session (setsid): killing plugvirtd never kills
 * a VM. Device attach/detach requests are in domain_devices.c. */
#ifndef PLUGVIRT_DOMAINS_H
#define PLUGVIRT_DOMAINS_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon_config.h"
#include "pv_error.h"

struct event_base;
struct store;
struct domains;

struct domains_result {
    const char *code;      /* NULL on success, else the API error code */
    const char *message;   /* error message */
    const char *qmp_class; /* NULL unless a QMP step failed */
    const char *step;
    const char *result_json; /* success: JSON text of the result ("{}" when nothing) */
};
typedef void (*domains_done_fn)(void *opaque, const struct domains_result *result);

/* An event for subscribers: {"event": type, "domain": name, "uuid", "detail", "timestamp"}. */
typedef void (*domains_event_fn)(void *opaque, const char *type, const char *domain_name,
                                 const char *uuid, const char *detail);

struct domains *domains_create(struct event_base *base, struct store *store,
                               const struct daemon_config *config, domains_event_fn event,
                               void *event_opaque, struct pv_error *error);
/* Leaves every VMM running (the next plugvirtd reconnects). */
void domains_free(struct domains *domains);
/* Finds running VMMs of a previous daemon, reconnects, reconciles; then autostarts. */
int domains_restore(struct domains *domains, struct pv_error *error);

/* Flags of attach/detach (virsh: --live, --config; none = current). */
enum domains_flags {
    DOMAINS_FLAG_LIVE = 1 << 0,
    DOMAINS_FLAG_CONFIG = 1 << 1,
    DOMAINS_FLAG_LIVE_IF_RUNNING = 1 << 2, /* virsh --persistent */
};

void domains_define(struct domains *domains, const char *xml, domains_done_fn done, void *opaque);
void domains_undefine(struct domains *domains, const char *key, bool managed, domains_done_fn done,
                      void *opaque);
void domains_start(struct domains *domains, const char *key, domains_done_fn done, void *opaque);
void domains_destroy(struct domains *domains, const char *key, domains_done_fn done, void *opaque);
/* timeout_s < 0: return once the power button was pressed (like virsh); else wait for the
 * VMM to exit, up to timeout_s, "timeout" error past it. */
void domains_shutdown(struct domains *domains, const char *key, int timeout_s, domains_done_fn done,
                      void *opaque);
void domains_reboot(struct domains *domains, const char *key, domains_done_fn done, void *opaque);
void domains_suspend(struct domains *domains, const char *key, domains_done_fn done, void *opaque);
void domains_resume(struct domains *domains, const char *key, domains_done_fn done, void *opaque);
void domains_list(struct domains *domains, bool all, domains_done_fn done, void *opaque);
void domains_info(struct domains *domains, const char *key, domains_done_fn done, void *opaque);
void domains_state(struct domains *domains, const char *key, domains_done_fn done, void *opaque);
void domains_xml(struct domains *domains, const char *key, bool inactive, domains_done_fn done,
                 void *opaque);
void domains_set_autostart(struct domains *domains, const char *key, bool enabled,
                           domains_done_fn done, void *opaque);
void domains_blklist(struct domains *domains, const char *key, bool inactive, domains_done_fn done,
                     void *opaque);
/* flags: enum domains_flags; 0 = current. timeout_ms < 0: the configured detach timeout. */
void domains_attach_device(struct domains *domains, const char *key, const char *xml,
                           unsigned flags, domains_done_fn done, void *opaque);
void domains_detach_device(struct domains *domains, const char *key, const char *xml,
                           unsigned flags, int timeout_ms, domains_done_fn done, void *opaque);
/* domain_interfaces.c: the interfaces of the live (or, with inactive, the persistent)
 * definition; a link change (flags: DOMAINS_FLAG_LIVE or _CONFIG, 0 = current) of the
 * interface named by its tap or MAC, state "up" | "down"; its tap's counters, as the guest
 * sees them. */
void domains_iflist(struct domains *domains, const char *key, bool inactive, domains_done_fn done,
                    void *opaque);
void domains_set_link(struct domains *domains, const char *key, const char *interface,
                      const char *state, unsigned flags, domains_done_fn done, void *opaque);
void domains_ifstat(struct domains *domains, const char *key, const char *interface,
                    domains_done_fn done, void *opaque);
void domains_monitor_command(struct domains *domains, const char *key, const char *command,
                             bool hmp, domains_done_fn done, void *opaque);

/* The serial console of a running domain (daemon/console.h), for the API's domain.console.
 * On failure (no such domain, not running, unreachable) replies through `done` and returns
 * NULL; on success `done` is not called. */
struct console;
struct console *domains_console(struct domains *domains, const char *key, domains_done_fn done,
                                void *opaque);

#endif

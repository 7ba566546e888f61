/* The hotplug orchestrator: turns attach/detach requests into per-domain QMP sequences
 * (DESIGN.md §4), one job at a time per domain, domains in parallel, every step journaled in
 * the store *before* it is sent, rollback at every step, a bounded wait for DEVICE_DELETED.
 *
 * Disk (virtio bus) attach:  blockdev-add (file node "<alias>-storage")
 *                          → blockdev-add (raw node "<alias>-format", file = storage)
 *                          → device_add virtio-blk-pci (drive = format node, id = alias,
 *                            addr = slot, serial)          [rollback: blockdev-del both]
 * Disk detach: device_del alias → wait DEVICE_DELETED (timeout) → blockdev-del format, storage.
 * On timeout the job ends with `pending`; the device stays "detaching" in the store, and a
 * late DEVICE_DELETED (hotplug_handle_event) finishes the cleanup and reports completion
 * through the `device_removed` callback.
 * The device given is fully resolved by the caller (alias, target, PCI address, source). */
#ifndef PLUGVIRT_HOTPLUG_H
#define PLUGVIRT_HOTPLUG_H

#include <stdbool.h>

#include "domain.h"
#include "pv_error.h"

struct event_base;
struct store;
struct qmp_connection;
struct hotplug_manager;

struct hotplug_result {
    int status;         /* 0 ok; -errno */
    bool pending;       /* detach: requested, the guest has not released the device yet */
    char code[48];      /* stable code for the API: "qmp-error", "timeout", "busy", ... */
    char qmp_class[48]; /* when a QMP command failed */
    char step[48];      /* the failed step: "blockdev-add", "device_add", ... */
    char message[512];  /* for a user: what failed and what was undone */
    /* The device as the job resolved it (alias, PCI address), valid during the callback;
     * NULL when the job never got that far. */
    const struct domain_device *device;
};
typedef void (*hotplug_done_fn)(void *opaque, const struct hotplug_result *result);

/* What a job changes in the domain's definitions, in the order jobs reach them. Each change
 * is applied in ONE store transaction together with the job's journal entry and device row,
 * so that after a crash the journal, the rows and the definitions always agree, and recovery
 * replays exactly the change an uninterrupted job would have made. */
enum hotplug_change {
    HOTPLUG_ATTACH_BEGIN,   /* the device enters the live definition as "attaching" */
    HOTPLUG_ATTACH_DONE,    /* in the guest: "attached"; with CONFIG also persistent */
    HOTPLUG_ATTACH_UNDONE,  /* rolled back: it leaves the live definition */
    HOTPLUG_DETACH_BEGIN,   /* "detaching" in the live definition */
    HOTPLUG_DETACH_PENDING, /* the guest keeps it for now; with CONFIG it leaves persistent */
    HOTPLUG_DETACH_DONE,    /* gone from the guest: leaves live (and persistent with CONFIG) */
    HOTPLUG_DETACH_REFUSED, /* device_del refused: "attached" again */
};

/* The daemon's side of a job (domains.c). `flags` are the caller's (virsh --live/--config),
 * kept in the journal and given back unchanged. */
struct hotplug_ops {
    /* An attach job reached the head of its domain's queue: check the device against the
     * domain as it is NOW (target, alias, image sharing) and allocate what it needs (alias,
     * PCI slot) in `device`. < 0 with `error` refuses the job before anything is sent. */
    int (*attach_prepare)(void *opaque, const char *domain_uuid, struct domain_device *device,
                          unsigned flags, struct pv_error *error);
    /* Applies `change` to the definitions. Runs inside the store transaction of the change;
     * must be idempotent (recovery may apply a change that already took effect). */
    int (*apply)(void *opaque, const char *domain_uuid, enum hotplug_change change,
                 const struct domain_device *device, unsigned flags, struct pv_error *error);
    /* A copy of the live definition's device with that store key (target dev), or NULL. */
    struct domain_device *(*lookup)(void *opaque, const char *domain_uuid, const char *key);
};

struct hotplug_config {
    int qmp_timeout_ms;    /* every QMP command, default 5000 */
    int detach_timeout_ms; /* default wait for DEVICE_DELETED (<= 0: 5000) */
    /* How long an attach/detach waits in the domain's queue behind another job before it
     * fails with code "busy" and a message naming the holder (<= 0: 30000). */
    int job_wait_timeout_ms;
    /* TEST-ONLY fault injection (builds configured with --enable-fault-injection): the name of
     * a step ("device_add", "blockdev-add-format", "journal-begin", ...) after which the
     * daemon SIGKILLs itself; NULL or "" = never. */
    const char *abort_after_step;
    const struct hotplug_ops *ops; /* may be NULL (unit tests): definitions are not touched */
    void *opaque;
};

struct hotplug_manager *hotplug_manager_create(struct event_base *base, struct store *store,
                                               const struct hotplug_config *config,
                                               struct pv_error *error);
void hotplug_manager_destroy(struct hotplug_manager *manager);

/* Queues a job for the domain; `done` runs once when it ends. timeout_ms < 0: default.
 * A job queued behind another one fails with code "busy" (the message names the holder, see
 * hotplug_busy_description) when it has not started within config.job_wait_timeout_ms. */
int hotplug_attach(struct hotplug_manager *manager, const char *domain_uuid,
                   struct qmp_connection *qmp, const struct domain_device *device, unsigned flags,
                   hotplug_done_fn done, void *opaque, struct pv_error *error);
/* The device is looked up again (ops->lookup) when the job starts: the caller's copy only
 * names it. */
int hotplug_detach(struct hotplug_manager *manager, const char *domain_uuid,
                   struct qmp_connection *qmp, const struct domain_device *device, unsigned flags,
                   int timeout_ms, hotplug_done_fn done, void *opaque, struct pv_error *error);
/* "attach-disk vdb: device_add sent 0.4 s ago" while a job runs on the domain, else NULL. */
const char *hotplug_busy_description(struct hotplug_manager *manager, const char *domain_uuid);
/* QMP events of the domain (DEVICE_DELETED finishes detaches, including late ones). */
void hotplug_handle_event(struct hotplug_manager *manager, const char *domain_uuid,
                          const char *event_name, const char *data_json);
/* After a daemon restart: complete or roll back the domain's unfinished journal jobs, and
 * resume waiting for devices still "detaching". `done` reports what was done. */
int hotplug_recover(struct hotplug_manager *manager, const char *domain_uuid,
                    struct qmp_connection *qmp, hotplug_done_fn done, void *opaque,
                    struct pv_error *error);
/* The domain's QMP connection to use from now on (NULL: it closed; jobs then fail until the
 * next call). attach/detach/recover set it too. The manager keeps the pointer: tell it before
 * freeing the connection. A late DEVICE_DELETED cleanup uses the latest connection. */
void hotplug_set_qmp(struct hotplug_manager *manager, const char *domain_uuid,
                     struct qmp_connection *qmp);
/* The domain stopped: drop its queue (jobs end with -ECONNRESET) and its detaching devices. */
void hotplug_domain_stopped(struct hotplug_manager *manager, const char *domain_uuid);

/* An error for an interface the interface sequence cannot hot-plug (more queues than
 * DOMAIN_INTERFACE_MAX_QUEUES). */
int hotplug_interface_check(const struct domain_interface *interface, struct pv_error *error);

#endif

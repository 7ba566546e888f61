/* The daemon's persistent state: one SQLite database (WAL) under the state directory.
 *
 * Tables (schema versioned through PRAGMA user_version, migrations applied in order at open):
 *   domains  (uuid PK, name UNIQUE, persistent_xml, live_xml, state, pid, pid_start_time,
 *             qmp_path, autostart, persistent, updated_at)
 *   devices  (domain_uuid, key (target dev / alias), kind, alias, pci_slot, state
 *             attaching|attached|detaching, xml, data_json (node names, netdev id...),
 *             updated_at); PK (domain_uuid, key); deleted with their domain
 *   jobs     (id PK, domain_uuid, kind, device_key, step, status running|done|rolled-back|failed,
 *             started_at, updated_at, data JSON)  -- the hotplug journal, deleted with the domain
 *   events   (id PK, domain_uuid, time, type, detail)  -- the event log; outlives its domain
 * UUIDs compare case-insensitively. Every change is one transaction; functions return
 * 0 / -errno and fill `error` with a message that names the database file.
 * The store is used from the daemon's main thread only. */
#ifndef PLUGVIRT_STORE_H
#define PLUGVIRT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pv_error.h"

#define STORE_FILE_NAME "plugvirt.db"

struct store;

/* Domain run states, as virsh shows them ("running", "paused", "shut off", "crashed"...). */
enum store_domain_state {
    STORE_DOMAIN_SHUTOFF = 0,
    STORE_DOMAIN_RUNNING,
    STORE_DOMAIN_PAUSED,
    STORE_DOMAIN_SHUTDOWN, /* shutting down (ACPI requested) */
    STORE_DOMAIN_CRASHED,
};
const char *store_domain_state_name(enum store_domain_state state); /* virsh's words */

struct store_domain {
    char uuid[37];
    char *name;
    char *persistent_xml; /* NULL for a transient domain */
    char *live_xml;       /* NULL when not running */
    enum store_domain_state state;
    pid_t pid;               /* 0 when not running */
    uint64_t pid_start_time; /* /proc/PID/stat field 22, to recognise the process */
    char *qmp_path;
    bool autostart;
    bool persistent;
};
void store_domain_clear(struct store_domain *domain); /* frees members */

enum store_device_state {
    STORE_DEVICE_ATTACHING = 0,
    STORE_DEVICE_ATTACHED,
    STORE_DEVICE_DETACHING
};
struct store_device {
    char domain_uuid[37];
    char *kind;   /* "disk", "interface", ... */
    char *key;    /* target dev ("vdb") or alias: unique per domain */
    char *alias;  /* QEMU id, e.g. "virtio-disk1" */
    int pci_slot; /* -1 if none */
    enum store_device_state state;
    char *xml;       /* the device's XML */
    char *data_json; /* node names, netdev id, ... for cleanup */
};
void store_device_clear(struct store_device *device);

enum store_job_status {
    STORE_JOB_RUNNING = 0,
    STORE_JOB_DONE,
    STORE_JOB_ROLLED_BACK,
    STORE_JOB_FAILED
};
struct store_job {
    int64_t id;
    char domain_uuid[37];
    char *kind; /* "attach-disk", "detach-disk", ... */
    char *device_key;
    int step; /* last step journaled (sent or about to be sent) */
    enum store_job_status status;
    char *data_json;
};
void store_job_clear(struct store_job *job);

/* Opens (creating, mode 0600) state_dir/plugvirt.db, WAL mode, runs migrations. The state
 * directory must exist. A database written by a newer plugvirt (higher schema version) is
 * refused with -ENOTSUP; a file that is not a database or is corrupted gives -EUCLEAN. */
struct store *store_open(const char *state_dir, struct pv_error *error);
void store_close(struct store *store);
int store_schema_version(struct store *store);
const char *store_path(struct store *store); /* ".../plugvirt.db" */

/* Domains. put = insert, or replace the whole row of the same uuid (one transaction); a name
 * taken by another uuid gives -EEXIST "domain 'x' already exists". Devices and jobs of the
 * domain are kept by put. */
int store_domain_put(struct store *store, const struct store_domain *domain,
                     struct pv_error *error);
/* Insert only: -EEXIST when the name or the uuid is already used (define of a new domain). */
int store_domain_add(struct store *store, const struct store_domain *domain,
                     struct pv_error *error);
/* Lookup by uuid or by name (`key` may be either; a uuid match wins); -ENOENT with
 * "domain 'x' not found". `out` is overwritten (it needs no clearing before), and on error it
 * is left cleared. */
int store_domain_get(struct store *store, const char *key, struct store_domain *out,
                     struct pv_error *error);
/* Deletes the domain with its devices and jobs (-ENOENT if unknown). */
int store_domain_delete(struct store *store, const char *uuid, struct pv_error *error);
/* Lists all domains (sorted by name); *out is a malloc'd array of *count entries. */
int store_domain_list(struct store *store, struct store_domain **out, size_t *count,
                      struct pv_error *error);
void store_domain_list_free(struct store_domain *domains, size_t count);
/* Changes only state, pid and pid_start_time (live_xml and the rest are left alone). */
int store_domain_set_state(struct store *store, const char *uuid, enum store_domain_state state,
                           pid_t pid, uint64_t pid_start_time, struct pv_error *error);

/* Devices (live state of hot-plugged devices). put inserts or replaces (domain_uuid, key);
 * -ENOENT when the domain does not exist. */
int store_device_put(struct store *store, const struct store_device *device,
                     struct pv_error *error);
int store_device_get(struct store *store, const char *domain_uuid, const char *key,
                     struct store_device *out, struct pv_error *error);
int store_device_set_state(struct store *store, const char *domain_uuid, const char *key,
                           enum store_device_state state, struct pv_error *error);
int store_device_delete(struct store *store, const char *domain_uuid, const char *key,
                        struct pv_error *error);
/* Sorted by key. */
int store_device_list(struct store *store, const char *domain_uuid, struct store_device **out,
                      size_t *count, struct pv_error *error);
void store_device_list_free(struct store_device *devices, size_t count);
int store_device_delete_all(struct store *store, const char *domain_uuid, struct pv_error *error);

/* Job journal: begin returns the new id (ids are never reused); step records progress
 * *before* the step is sent; a NULL data_json keeps the previous data. step and finish on a job
 * that is no longer running give -EINVAL, on an unknown id -ENOENT. */
int store_job_begin(struct store *store, const char *domain_uuid, const char *kind,
                    const char *device_key, const char *data_json, int64_t *id,
                    struct pv_error *error);
int store_job_step(struct store *store, int64_t id, int step, const char *data_json,
                   struct pv_error *error);
int store_job_finish(struct store *store, int64_t id, enum store_job_status status,
                     struct pv_error *error);
/* Jobs still RUNNING (interrupted by a daemon crash), oldest first. */
int store_job_list_unfinished(struct store *store, struct store_job **out, size_t *count,
                              struct pv_error *error);
void store_job_list_free(struct store_job *jobs, size_t count);
/* Deletes finished jobs but the newest `keep` of them (the journal would grow forever). */
int store_job_prune(struct store *store, size_t keep, struct pv_error *error);

/* Event log. */
int store_event_add(struct store *store, const char *domain_uuid, const char *type,
                    const char *detail, struct pv_error *error);
struct store_event {
    int64_t id;
    char domain_uuid[37]; /* "" when the event belongs to no domain */
    double time;          /* seconds since the epoch */
    char *type, *detail;
};
/* Events with id > after_id, oldest first. */
int store_event_list(struct store *store, const char *domain_uuid /* NULL = all */,
                     int64_t after_id, struct store_event **out, size_t *count,
                     struct pv_error *error);
void store_event_list_free(struct store_event *events, size_t count);
/* Deletes all events but the newest `keep`. */
int store_event_prune(struct store *store, size_t keep, struct pv_error *error);

/* Runs fn inside one transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error). The store_*
 * writes fn calls join it (each in a savepoint, so a failed write leaves the transaction
 * usable); store_transaction may nest. */
int store_transaction(struct store *store,
                      int (*fn)(struct store *store, void *arg, struct pv_error *error), void *arg,
                      struct pv_error *error);

/* Schema migrations: entry i brings the schema from version i to version i + 1 (`version` =
 * i + 1), each in its own transaction. The daemon's list is built in; tests pass their own
 * list to prove that an older file is brought forward. */
struct store_migration {
    int version;
    const char *description;
    const char *sql; /* constant SQL, may hold several statements */
};
struct store *store_open_with_migrations(const char *state_dir,
                                         const struct store_migration *migrations, size_t count,
                                         struct pv_error *error);
/* The daemon's built-in list (tests extend it with one more entry). */
const struct store_migration *store_builtin_migrations(size_t *count);

#endif

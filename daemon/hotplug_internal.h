/* The hotplug orchestrator's parts (hotplug.c: queues, job starts and the public API;
 * hotplug_sequences.c: one sequence per device kind; hotplug_steps.c: the step engine;
 * hotplug_journal.c: the journal, device rows and definition changes, one transaction each;
 * hotplug_recovery.c: replaying the journal after a restart). Not for other modules. */
#ifndef PLUGVIRT_HOTPLUG_INTERNAL_H
#define PLUGVIRT_HOTPLUG_INTERNAL_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <yajl/yajl_tree.h>

#include "domain.h"
#include "hotplug.h"
#include "json_util.h"
#include "tap_device.h"
#include "qmp_connection.h"
#include "store.h"

#define HOTPLUG_MAX_STEPS 12
#define HOTPLUG_DEFAULT_TIMEOUT_MS 5000
#define HOTPLUG_DEFAULT_JOB_WAIT_MS 30000
#define HOTPLUG_MAX_QUERY_SIZE (16 * 1024 * 1024)

struct hotplug_names {
    char alias[64];
    char target[64]; /* the store key: target dev for disks */
    int slot;        /* PCI slot, -1 when none */
    int function;
    char objects[HOTPLUG_MAX_STEPS][96]; /* per step: the id of the object it creates */
};

/* How recovery finds out whether a step's object exists. QEMU 7.2 lists neither netdevs nor
 * getfd descriptors, so for those recovery sends the undo anyway and takes "not found" as
 * already gone. */
enum hotplug_object_kind {
    HOTPLUG_OBJECT_BLOCK_NODE,
    HOTPLUG_OBJECT_DEVICE,
    HOTPLUG_OBJECT_NETDEV,
    HOTPLUG_OBJECT_FD,
};

struct hotplug_job;

struct hotplug_step {
    const char *command;
    const char *object_suffix; /* object id = alias + suffix */
    enum hotplug_object_kind object_kind;
    int (*build)(const struct domain_device *device, const struct hotplug_names *names,
                 struct json_writer *arguments);
    const char *undo_command;
    const char *undo_id_member;
    const char *object_prefix; /* object id = prefix + alias + suffix; NULL: none */
    /* Local work before the command (NULL: none): opens what the command hands over and
     * gives the descriptor to send with it (SCM_RIGHTS), or -1. */
    int (*prepare)(struct hotplug_job *job, int *fd, struct pv_error *error);
    /* Whether the step is part of this device's sequence (NULL: always): a NIC has one getfd
     * per queue. Steps that do not apply are neither sent nor undone. */
    bool (*applies)(const struct domain_device *device, int index);
};

struct hotplug_sequence {
    const char *name; /* job kinds are "attach-<name>" and "detach-<name>" */
    const char *store_kind;
    /* Fills alias/target/slot; -EOPNOTSUPP when this sequence cannot handle the device. */
    int (*describe)(const struct domain_device *device, bool attach, struct hotplug_names *names,
                    struct pv_error *error);
    const struct hotplug_step *steps;
    int step_count; /* the last step creates the guest-visible device (HOTPLUG_OBJECT_DEVICE) */
};

enum hotplug_job_type { JOB_ATTACH, JOB_DETACH, JOB_CLEANUP, JOB_RECOVER };
enum hotplug_phase { PHASE_IDLE, PHASE_DO, PHASE_UNDO, PHASE_WAIT, PHASE_QUERY };

/* A detach that ended pending: the device is still in the guest, its journal job RUNNING. */
struct hotplug_pending {
    struct hotplug_pending *next;
    const struct hotplug_sequence *sequence;
    struct domain_device *device;
    struct hotplug_names names;
    unsigned flags;
    int64_t journal_id;
    bool released; /* DEVICE_DELETED came; a cleanup job is queued */
};

struct hotplug_domain;

struct hotplug_job {
    struct hotplug_job *next;
    struct hotplug_domain *domain;
    enum hotplug_job_type type;
    enum hotplug_job_type operation; /* ATTACH or DETACH: what the steps belong to */
    const struct hotplug_sequence *sequence;
    struct domain_device *device;
    struct hotplug_names names;
    unsigned flags; /* the caller's, kept in the journal */
    char kind[48];  /* "attach-disk" */
    int64_t journal_id;
    int wait_timeout_ms;
    enum hotplug_phase phase;
    int index;
    bool skip[HOTPLUG_MAX_STEPS]; /* undo: the object does not exist (recovery) */
    bool device_released;         /* DEVICE_DELETED seen for names.alias */
    bool command_in_flight;
    bool orphaned; /* the manager or domain went away while a command was in flight */
    bool failed;   /* a do step failed: undoing is a rollback */
    bool undo_failed;
    struct event *wait_timer;
    struct event *queue_timer; /* bounds the wait in the domain's queue (job_wait_timeout_ms) */
    struct timespec queued_at;
    struct timespec step_started;
    char step_label[128];
    struct hotplug_result result;
    struct tap_device tap; /* the daemon's copy of an interface's tap, until the VMM has it */
    char undone[512];
    char undo_errors[512];
    hotplug_done_fn done;
    void *opaque;
    /* recovery */
    struct store_job *entries;
    size_t entry_count, entry_index, entries_total;
    char *existing_devices; /* query-pci and query-named-block-nodes results (JSON) */
    char *existing_nodes;
    char report[1024];
    bool recovery_failed;
};

struct hotplug_domain {
    struct hotplug_domain *next;
    struct hotplug_manager *manager;
    char uuid[37];
    struct qmp_connection *qmp;
    struct hotplug_job *running;
    struct hotplug_job *queue_head, *queue_tail;
    struct hotplug_pending *pending;
    struct event *kick;
    char busy[320];
};

struct hotplug_manager {
    struct event_base *base;
    struct store *store;
    struct hotplug_config config;
    struct hotplug_domain *domains;
    char abort_after_step[64]; /* test-only, see hotplug_config */
};

/* What one job_commit writes: the definitions (ops->apply), the device row, the journal. */
enum row_action { ROW_KEEP = -2, ROW_DELETE = -1 };
enum journal_action { JOURNAL_KEEP = -2, JOURNAL_BEGIN = -1 };

void hotplug_names_fill_objects(const struct hotplug_sequence *sequence,
                                struct hotplug_names *names);
const struct hotplug_sequence *hotplug_sequence_for_kind(const struct domain_device *device,
                                                         struct pv_error *error);
const struct hotplug_sequence *hotplug_sequence_by_name(const char *name);
void hotplug_journal_finish(struct hotplug_job *job, enum store_job_status status);
void hotplug_test_abort_at(struct hotplug_job *job, const char *point);
int hotplug_job_commit(struct hotplug_job *job, enum hotplug_change change, int row, int journal);
void hotplug_journal_step(struct hotplug_job *job, const char *phase);
int hotplug_job_begin(struct hotplug_job *job, enum hotplug_change change,
                      enum store_device_state row);
void hotplug_job_end(struct hotplug_job *job);
void hotplug_job_end_deferred(struct hotplug_job *job, int status, const char *command);
int hotplug_send_command(struct hotplug_job *job, const char *command, const char *arguments);
int hotplug_send_command_fd(struct hotplug_job *job, const char *command, const char *arguments,
                            int fd);
void hotplug_fail_unsent(struct hotplug_job *job, const char *command, int rc);
void hotplug_pending_park(struct hotplug_job *job);
void hotplug_wait_for_release(struct hotplug_job *job);
void hotplug_step_run(struct hotplug_job *job);
void hotplug_recovery_undo_finished(struct hotplug_job *job, const char *outcome);
void hotplug_recovery_next(struct hotplug_job *job);
void hotplug_query_reply(struct hotplug_job *job, const struct qmp_connection_reply *reply);
void hotplug_append(char *buffer, size_t size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
void hotplug_result_set(struct hotplug_result *result, int status, const char *code,
                        const char *qmp_class, const char *step, const char *format, ...)
    __attribute__((format(printf, 6, 7)));
void hotplug_report_add(struct hotplug_job *job, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
void hotplug_domain_schedule(struct hotplug_domain *domain);
void hotplug_job_free(struct hotplug_job *job);

#endif

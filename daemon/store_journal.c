/* The store's job journal and event log (store.h). */
#include "store.h"
#include "store_internal.h"

#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "pv_log.h"

/* --- job journal ----------------------------------------------------------- */

void store_job_clear(struct store_job *job)
{
    if (!job)
        return;
    free(job->kind);
    free(job->device_key);
    free(job->data_json);
    memset(job, 0, sizeof(*job));
}

int store_job_begin(struct store *store, const char *domain_uuid, const char *kind,
                    const char *device_key, const char *data_json, int64_t *id,
                    struct pv_error *error)
{
    *id = 0;
    if (store_text_empty(domain_uuid) || store_text_empty(kind))
        return pv_error_set(error, -EINVAL, "a job needs a domain uuid and a kind");
    int code = store_transaction_begin(store, error);
    if (code)
        return code;
    sqlite3_stmt *statement;
    code =
        store_prepare(store,
                      "INSERT INTO jobs (domain_uuid, kind, device_key, step, status, started_at, "
                      "updated_at, data_json) VALUES (?1, ?2, ?3, 0, 'running', ?4, ?4, ?5)",
                      &statement, error);
    if (code == 0) {
        sqlite3_bind_text(statement, 1, domain_uuid, -1, SQLITE_STATIC);
        sqlite3_bind_text(statement, 2, kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(statement, 3, device_key, -1, SQLITE_STATIC);
        sqlite3_bind_double(statement, 4, store_now_seconds());
        sqlite3_bind_text(statement, 5, data_json, -1, SQLITE_STATIC);
        int result = sqlite3_step(statement);
        int extended = sqlite3_extended_errcode(store->db);
        sqlite3_finalize(statement);
        if (result == SQLITE_DONE)
            *id = sqlite3_last_insert_rowid(store->db);
        else if (extended == SQLITE_CONSTRAINT_FOREIGNKEY)
            code = pv_error_set(error, -ENOENT, "domain '%s' not found", domain_uuid);
        else
            code = store_fail(store, extended, error, "cannot journal job '%s'", kind);
    }
    code = store_transaction_end(store, code, error);
    if (code)
        *id = 0;
    return code;
}

/* Tells apart an unknown job and a finished one after an UPDATE ... AND status = 'running'
 * changed nothing. */
static int job_not_running(struct store *store, int64_t id, struct pv_error *error)
{
    sqlite3_stmt *statement;
    int code = store_prepare(store, "SELECT status FROM jobs WHERE id = ?1", &statement, error);
    if (code)
        return code;
    sqlite3_bind_int64(statement, 1, id);
    int result = sqlite3_step(statement);
    if (result == SQLITE_ROW)
        code = pv_error_set(error, -EINVAL, "job %lld is no longer running (it is %s)",
                            (long long)id, (const char *)sqlite3_column_text(statement, 0));
    else if (result == SQLITE_DONE)
        code = pv_error_set(error, -ENOENT, "job %lld not found", (long long)id);
    else
        code = store_fail(store, sqlite3_extended_errcode(store->db), error,
                          "cannot look up job %lld", (long long)id);
    sqlite3_finalize(statement);
    return code;
}

int store_job_step(struct store *store, int64_t id, int step, const char *data_json,
                   struct pv_error *error)
{
    int code = store_transaction_begin(store, error);
    if (code)
        return code;
    sqlite3_stmt *statement;
    code = store_prepare(
        store,
        "UPDATE jobs SET step = ?2, data_json = coalesce(?3, data_json), updated_at = "
        "?4 WHERE id = ?1 AND status = 'running'",
        &statement, error);
    if (code == 0) {
        sqlite3_bind_int64(statement, 1, id);
        sqlite3_bind_int(statement, 2, step);
        sqlite3_bind_text(statement, 3, data_json, -1, SQLITE_STATIC);
        sqlite3_bind_double(statement, 4, store_now_seconds());
        code = store_run_statement(store, statement, error, "cannot journal the job step");
        if (code == 0 && sqlite3_changes(store->db) == 0)
            code = job_not_running(store, id, error);
    }
    return store_transaction_end(store, code, error);
}

int store_job_finish(struct store *store, int64_t id, enum store_job_status status,
                     struct pv_error *error)
{
    if (status == STORE_JOB_RUNNING || (unsigned)status >= ARRAY_SIZE(job_status_tokens))
        return pv_error_set(error, -EINVAL, "job %lld: invalid final status %d", (long long)id,
                            (int)status);
    int code = store_transaction_begin(store, error);
    if (code)
        return code;
    sqlite3_stmt *statement;
    code = store_prepare(store,
                         "UPDATE jobs SET status = ?2, updated_at = ?3 WHERE id = ?1 AND status = "
                         "'running'",
                         &statement, error);
    if (code == 0) {
        sqlite3_bind_int64(statement, 1, id);
        sqlite3_bind_text(statement, 2, job_status_tokens[status], -1, SQLITE_STATIC);
        sqlite3_bind_double(statement, 3, store_now_seconds());
        code = store_run_statement(store, statement, error, "cannot journal the end of the job");
        if (code == 0 && sqlite3_changes(store->db) == 0)
            code = job_not_running(store, id, error);
    }
    return store_transaction_end(store, code, error);
}

int store_job_list_unfinished(struct store *store, struct store_job **out, size_t *count,
                              struct pv_error *error)
{
    *out = NULL;
    *count = 0;
    sqlite3_stmt *statement;
    int code = store_prepare(store,
                             "SELECT id, domain_uuid, kind, device_key, step, data_json FROM jobs "
                             "WHERE status = 'running' ORDER BY id",
                             &statement, error);
    if (code)
        return code;
    struct store_job *jobs = NULL;
    size_t used = 0;
    int result = SQLITE_DONE;
    while (code == 0 && (result = sqlite3_step(statement)) == SQLITE_ROW) {
        struct store_job *grown = store_array_append(jobs, sizeof(*jobs), &used);
        if (!grown) {
            code = pv_error_set(error, -ENOMEM, "cannot list jobs: out of memory");
            break;
        }
        jobs = grown;
        struct store_job *job = &jobs[used - 1];
        job->id = sqlite3_column_int64(statement, 0);
        store_column_uuid(statement, 1, job->domain_uuid);
        job->step = sqlite3_column_int(statement, 4);
        job->status = STORE_JOB_RUNNING;
        if (store_column_strdup(statement, 2, &job->kind) ||
            store_column_strdup(statement, 3, &job->device_key) ||
            store_column_strdup(statement, 5, &job->data_json))
            code = pv_error_set(error, -ENOMEM, "cannot list jobs: out of memory");
    }
    if (code == 0 && result != SQLITE_DONE)
        code = store_fail(store, sqlite3_extended_errcode(store->db), error, "cannot list jobs");
    sqlite3_finalize(statement);
    if (code) {
        store_job_list_free(jobs, used);
        return code;
    }
    *out = jobs;
    *count = used;
    return 0;
}

void store_job_list_free(struct store_job *jobs, size_t count)
{
    for (size_t i = 0; jobs && i < count; i++)
        store_job_clear(&jobs[i]);
    free(jobs);
}

/* Runs a DELETE whose ?1 is the number of newest rows to keep. */
static int prune(struct store *store, const char *sql, size_t keep, struct pv_error *error,
                 const char *context)
{
    int code = store_transaction_begin(store, error);
    if (code)
        return code;
    sqlite3_stmt *statement;
    code = store_prepare(store, sql, &statement, error);
    if (code == 0) {
        sqlite3_bind_int64(statement, 1, keep > INT64_MAX ? INT64_MAX : (sqlite3_int64)keep);
        code = store_run_statement(store, statement, error, context);
    }
    return store_transaction_end(store, code, error);
}

int store_job_prune(struct store *store, size_t keep, struct pv_error *error)
{
    return prune(store,
                 "DELETE FROM jobs WHERE status <> 'running' AND id NOT IN (SELECT id FROM jobs "
                 "WHERE status <> 'running' ORDER BY id DESC LIMIT ?1)",
                 keep, error, "cannot prune finished jobs");
}

/* --- event log ------------------------------------------------------------- */

int store_event_add(struct store *store, const char *domain_uuid, const char *type,
                    const char *detail, struct pv_error *error)
{
    if (store_text_empty(type))
        return pv_error_set(error, -EINVAL, "an event needs a type");
    int code = store_transaction_begin(store, error);
    if (code)
        return code;
    sqlite3_stmt *statement;
    code = store_prepare(store,
                         "INSERT INTO events (domain_uuid, time, type, detail) VALUES (?1, ?2, "
                         "?3, ?4)",
                         &statement, error);
    if (code == 0) {
        sqlite3_bind_text(statement, 1, store_text_empty(domain_uuid) ? NULL : domain_uuid, -1,
                          SQLITE_STATIC);
        sqlite3_bind_double(statement, 2, store_now_seconds());
        sqlite3_bind_text(statement, 3, type, -1, SQLITE_STATIC);
        sqlite3_bind_text(statement, 4, detail, -1, SQLITE_STATIC);
        code = store_run_statement(store, statement, error, "cannot log the event");
    }
    return store_transaction_end(store, code, error);
}

int store_event_list(struct store *store, const char *domain_uuid, int64_t after_id,
                     struct store_event **out, size_t *count, struct pv_error *error)
{
    *out = NULL;
    *count = 0;
    sqlite3_stmt *statement;
    int code =
        store_prepare(store,
                      "SELECT id, domain_uuid, time, type, detail FROM events WHERE id > ?1 AND "
                      "(?2 IS NULL OR domain_uuid = ?2) ORDER BY id",
                      &statement, error);
    if (code)
        return code;
    sqlite3_bind_int64(statement, 1, after_id);
    sqlite3_bind_text(statement, 2, domain_uuid, -1, SQLITE_STATIC);
    struct store_event *events = NULL;
    size_t used = 0;
    int result = SQLITE_DONE;
    while (code == 0 && (result = sqlite3_step(statement)) == SQLITE_ROW) {
        struct store_event *grown = store_array_append(events, sizeof(*events), &used);
        if (!grown) {
            code = pv_error_set(error, -ENOMEM, "cannot list events: out of memory");
            break;
        }
        events = grown;
        struct store_event *event = &events[used - 1];
        event->id = sqlite3_column_int64(statement, 0);
        store_column_uuid(statement, 1, event->domain_uuid);
        event->time = sqlite3_column_double(statement, 2);
        if (store_column_strdup(statement, 3, &event->type) ||
            store_column_strdup(statement, 4, &event->detail))
            code = pv_error_set(error, -ENOMEM, "cannot list events: out of memory");
    }
    if (code == 0 && result != SQLITE_DONE)
        code = store_fail(store, sqlite3_extended_errcode(store->db), error, "cannot list events");
    sqlite3_finalize(statement);
    if (code) {
        store_event_list_free(events, used);
        return code;
    }
    *out = events;
    *count = used;
    return 0;
}

void store_event_list_free(struct store_event *events, size_t count)
{
    for (size_t i = 0; events && i < count; i++) {
        free(events[i].type);
        free(events[i].detail);
    }
    free(events);
}

int store_event_prune(struct store *store, size_t keep, struct pv_error *error)
{
    return prune(store,
                 "DELETE FROM events WHERE id NOT IN (SELECT id FROM events ORDER BY id DESC "
                 "LIMIT ?1)",
                 keep, error, "cannot prune the event log");
}

/* The store's domains and devices tables (store.h). */
#include "store.h"
#include "store_internal.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pv_log.h"

/* --- domains --------------------------------------------------------------- */

void store_domain_clear(struct store_domain *domain)
{
    if (!domain)
        return;
    free(domain->name);
    free(domain->persistent_xml);
    free(domain->live_xml);
    free(domain->qmp_path);
    memset(domain, 0, sizeof(*domain));
}

static int domain_check(const struct store_domain *domain, struct pv_error *error)
{
    if (strnlen(domain->uuid, sizeof(domain->uuid)) != 36)
        return pv_error_set(error, -EINVAL, "domain uuid '%.*s' is not 36 characters long",
                            (int)sizeof(domain->uuid), domain->uuid);
    if (store_text_empty(domain->name))
        return pv_error_set(error, -EINVAL, "domain %s has no name", domain->uuid);
    if ((unsigned)domain->state >= ARRAY_SIZE(domain_state_tokens))
        return pv_error_set(error, -EINVAL, "domain '%s': invalid state %d", domain->name,
                            (int)domain->state);
    return 0;
}

/* Turns a UNIQUE violation on insert into the message the user reads. */
static int domain_conflict(struct store *store, const struct store_domain *domain,
                           struct pv_error *error)
{
    struct store_domain existing;
    int code = store_domain_get(store, domain->name, &existing, NULL);
    if (code == 0 && strcasecmp(existing.uuid, domain->uuid) != 0) {
        store_domain_clear(&existing);
        return pv_error_set(error, -EEXIST, "domain '%s' already exists", domain->name);
    }
    store_domain_clear(&existing);
    code = store_domain_get(store, domain->uuid, &existing, NULL);
    if (code == 0) {
        code = pv_error_set(error, -EEXIST, "domain '%s' already exists with uuid %s",
                            existing.name, existing.uuid);
        store_domain_clear(&existing);
        return code;
    }
    return pv_error_set(error, -EEXIST, "domain '%s' already exists", domain->name);
}

static const char domain_insert_sql[] =
    "INSERT INTO domains (uuid, name, persistent_xml, live_xml, state, pid, pid_start_time, "
    "qmp_path, autostart, persistent, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
    "?10, ?11)";
/* An upsert, not INSERT OR REPLACE: REPLACE would delete the row (and cascade to its devices
 * and jobs), and would silently delete another domain that holds the name. */
static const char domain_upsert_sql[] =
    " ON CONFLICT (uuid) DO UPDATE SET name = excluded.name, persistent_xml = "
    "excluded.persistent_xml, live_xml = excluded.live_xml, state = excluded.state, pid = "
    "excluded.pid, pid_start_time = excluded.pid_start_time, qmp_path = excluded.qmp_path, "
    "autostart = excluded.autostart, persistent = excluded.persistent, updated_at = "
    "excluded.updated_at";

static int domain_write(struct store *store, const struct store_domain *domain, bool replace,
                        struct pv_error *error)
{
    int code = domain_check(domain, error);
    if (code)
        return code;
    char sql[sizeof(domain_insert_sql) + sizeof(domain_upsert_sql)];
    snprintf(sql, sizeof(sql), "%s%s", domain_insert_sql, replace ? domain_upsert_sql : "");
    code = store_transaction_begin(store, error);
    if (code)
        return code;
    sqlite3_stmt *statement;
    code = store_prepare(store, sql, &statement, error);
    if (code == 0) {
        sqlite3_bind_text(statement, 1, domain->uuid, -1, SQLITE_STATIC);
        sqlite3_bind_text(statement, 2, domain->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(statement, 3, domain->persistent_xml, -1, SQLITE_STATIC);
        sqlite3_bind_text(statement, 4, domain->live_xml, -1, SQLITE_STATIC);
        sqlite3_bind_text(statement, 5, domain_state_tokens[domain->state], -1, SQLITE_STATIC);
        sqlite3_bind_int64(statement, 6, domain->pid);
        sqlite3_bind_int64(statement, 7, (sqlite3_int64)domain->pid_start_time);
        sqlite3_bind_text(statement, 8, domain->qmp_path, -1, SQLITE_STATIC);
        sqlite3_bind_int(statement, 9, domain->autostart ? 1 : 0);
        sqlite3_bind_int(statement, 10, domain->persistent ? 1 : 0);
        sqlite3_bind_double(statement, 11, store_now_seconds());
        int result = sqlite3_step(statement);
        int extended = sqlite3_extended_errcode(store->db);
        sqlite3_finalize(statement);
        if (result != SQLITE_DONE) {
            if (extended == SQLITE_CONSTRAINT_UNIQUE || extended == SQLITE_CONSTRAINT_PRIMARYKEY)
                code = domain_conflict(store, domain, error);
            else
                code = store_fail(store, extended, error, "cannot save domain '%s'", domain->name);
        }
    }
    return store_transaction_end(store, code, error);
}

int store_domain_put(struct store *store, const struct store_domain *domain, struct pv_error *error)
{
    return domain_write(store, domain, true, error);
}

int store_domain_add(struct store *store, const struct store_domain *domain, struct pv_error *error)
{
    return domain_write(store, domain, false, error);
}

#define DOMAIN_COLUMNS                                                                             \
    "uuid, name, persistent_xml, live_xml, state, pid, pid_start_time, qmp_path, autostart, "      \
    "persistent"

static int domain_from_row(struct store *store, sqlite3_stmt *statement, struct store_domain *out,
                           struct pv_error *error)
{
    memset(out, 0, sizeof(*out));
    store_column_uuid(statement, 0, out->uuid);
    int code = store_column_strdup(statement, 1, &out->name);
    if (code == 0)
        code = store_column_strdup(statement, 2, &out->persistent_xml);
    if (code == 0)
        code = store_column_strdup(statement, 3, &out->live_xml);
    if (code == 0)
        code = store_column_strdup(statement, 7, &out->qmp_path);
    if (code) {
        store_domain_clear(out);
        return pv_error_set(error, code, "cannot read a domain: out of memory");
    }
    const char *state = (const char *)sqlite3_column_text(statement, 4);
    int parsed = store_token_parse(domain_state_tokens, ARRAY_SIZE(domain_state_tokens), state);
    if (parsed < 0) {
        code = pv_error_set(error, -EUCLEAN, "domain '%s' in store '%s' has unknown state '%s'",
                            out->name, store->path, state ? state : "");
        store_domain_clear(out);
        return code;
    }
    out->state = (enum store_domain_state)parsed;
    out->pid = (pid_t)sqlite3_column_int64(statement, 5);
    out->pid_start_time = (uint64_t)sqlite3_column_int64(statement, 6);
    out->autostart = sqlite3_column_int(statement, 8) != 0;
    out->persistent = sqlite3_column_int(statement, 9) != 0;
    return 0;
}

int store_domain_get(struct store *store, const char *key, struct store_domain *out,
                     struct pv_error *error)
{
    memset(out, 0, sizeof(*out));
    if (store_text_empty(key))
        return pv_error_set(error, -EINVAL, "no domain name or uuid given");
    sqlite3_stmt *statement;
    /* A name may look like a uuid: the uuid match wins, as in virsh. */
    int code = store_prepare(store,
                             "SELECT " DOMAIN_COLUMNS " FROM domains WHERE uuid = ?1 OR name = ?1 "
                             "ORDER BY uuid = ?1 DESC LIMIT 1",
                             &statement, error);
    if (code)
        return code;
    sqlite3_bind_text(statement, 1, key, -1, SQLITE_STATIC);
    int result = sqlite3_step(statement);
    if (result == SQLITE_ROW)
        code = domain_from_row(store, statement, out, error);
    else if (result == SQLITE_DONE)
        code = pv_error_set(error, -ENOENT, "domain '%s' not found", key);
    else
        code = store_fail(store, sqlite3_extended_errcode(store->db), error,
                          "cannot look up domain '%s'", key);
    sqlite3_finalize(statement);
    return code;
}

/* Runs a one-row UPDATE/DELETE keyed by the domain uuid; -ENOENT when no row changed. */
static int domain_change(struct store *store, sqlite3_stmt *statement, const char *uuid,
                         struct pv_error *error, const char *context)
{
    int code = store_run_statement(store, statement, error, context);
    if (code == 0 && sqlite3_changes(store->db) == 0)
        code = pv_error_set(error, -ENOENT, "domain '%s' not found", uuid);
    return code;
}

int store_domain_delete(struct store *store, const char *uuid, struct pv_error *error)
{
    if (store_text_empty(uuid))
        return pv_error_set(error, -EINVAL, "no domain uuid given");
    int code = store_transaction_begin(store, error);
    if (code)
        return code;
    sqlite3_stmt *statement;
    code = store_prepare(store, "DELETE FROM domains WHERE uuid = ?1", &statement, error);
    if (code == 0) {
        sqlite3_bind_text(statement, 1, uuid, -1, SQLITE_STATIC);
        code = domain_change(store, statement, uuid, error, "cannot delete the domain");
    }
    return store_transaction_end(store, code, error);
}

int store_domain_list(struct store *store, struct store_domain **out, size_t *count,
                      struct pv_error *error)
{
    *out = NULL;
    *count = 0;
    sqlite3_stmt *statement;
    int code = store_prepare(store, "SELECT " DOMAIN_COLUMNS " FROM domains ORDER BY name",
                             &statement, error);
    if (code)
        return code;
    struct store_domain *domains = NULL;
    size_t used = 0;
    int result = SQLITE_DONE;
    while (code == 0 && (result = sqlite3_step(statement)) == SQLITE_ROW) {
        struct store_domain *grown = store_array_append(domains, sizeof(*domains), &used);
        if (!grown) {
            code = pv_error_set(error, -ENOMEM, "cannot list domains: out of memory");
            break;
        }
        domains = grown;
        code = domain_from_row(store, statement, &domains[used - 1], error);
    }
    if (code == 0 && result != SQLITE_DONE)
        code = store_fail(store, sqlite3_extended_errcode(store->db), error, "cannot list domains");
    sqlite3_finalize(statement);
    if (code) {
        store_domain_list_free(domains, used);
        return code;
    }
    *out = domains;
    *count = used;
    return 0;
}

void store_domain_list_free(struct store_domain *domains, size_t count)
{
    for (size_t i = 0; domains && i < count; i++)
        store_domain_clear(&domains[i]);
    free(domains);
}

int store_domain_set_state(struct store *store, const char *uuid, enum store_domain_state state,
                           pid_t pid, uint64_t pid_start_time, struct pv_error *error)
{
    if (store_text_empty(uuid))
        return pv_error_set(error, -EINVAL, "no domain uuid given");
    if ((unsigned)state >= ARRAY_SIZE(domain_state_tokens))
        return pv_error_set(error, -EINVAL, "invalid domain state %d", (int)state);
    int code = store_transaction_begin(store, error);
    if (code)
        return code;
    sqlite3_stmt *statement;
    code = store_prepare(
        store,
        "UPDATE domains SET state = ?2, pid = ?3, pid_start_time = ?4, updated_at = ?5 "
        "WHERE uuid = ?1",
        &statement, error);
    if (code == 0) {
        sqlite3_bind_text(statement, 1, uuid, -1, SQLITE_STATIC);
        sqlite3_bind_text(statement, 2, domain_state_tokens[state], -1, SQLITE_STATIC);
        sqlite3_bind_int64(statement, 3, pid);
        sqlite3_bind_int64(statement, 4, (sqlite3_int64)pid_start_time);
        sqlite3_bind_double(statement, 5, store_now_seconds());
        code = domain_change(store, statement, uuid, error, "cannot save the domain state");
    }
    return store_transaction_end(store, code, error);
}

/* --- devices --------------------------------------------------------------- */

void store_device_clear(struct store_device *device)
{
    if (!device)
        return;
    free(device->kind);
    free(device->key);
    free(device->alias);
    free(device->xml);
    free(device->data_json);
    memset(device, 0, sizeof(*device));
}

int store_device_put(struct store *store, const struct store_device *device, struct pv_error *error)
{
    if (store_text_empty(device->domain_uuid) || store_text_empty(device->key) ||
        store_text_empty(device->kind))
        return pv_error_set(error, -EINVAL, "a device needs a domain uuid, a key and a kind");
    if ((unsigned)device->state >= ARRAY_SIZE(device_state_tokens))
        return pv_error_set(error, -EINVAL, "device '%s': invalid state %d", device->key,
                            (int)device->state);
    int code = store_transaction_begin(store, error);
    if (code)
        return code;
    sqlite3_stmt *statement;
    code =
        store_prepare(store,
                      "INSERT INTO devices (domain_uuid, key, kind, alias, pci_slot, state, xml, "
                      "data_json, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
                      "ON CONFLICT (domain_uuid, key) DO UPDATE SET kind = excluded.kind, alias = "
                      "excluded.alias, pci_slot = excluded.pci_slot, state = excluded.state, xml = "
                      "excluded.xml, data_json = excluded.data_json, updated_at = "
                      "excluded.updated_at",
                      &statement, error);
    if (code == 0) {
        sqlite3_bind_text(statement, 1, device->domain_uuid, -1, SQLITE_STATIC);
        sqlite3_bind_text(statement, 2, device->key, -1, SQLITE_STATIC);
        sqlite3_bind_text(statement, 3, device->kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(statement, 4, device->alias, -1, SQLITE_STATIC);
        sqlite3_bind_int(statement, 5, device->pci_slot);
        sqlite3_bind_text(statement, 6, device_state_tokens[device->state], -1, SQLITE_STATIC);
        sqlite3_bind_text(statement, 7, device->xml, -1, SQLITE_STATIC);
        sqlite3_bind_text(statement, 8, device->data_json, -1, SQLITE_STATIC);
        sqlite3_bind_double(statement, 9, store_now_seconds());
        int result = sqlite3_step(statement);
        int extended = sqlite3_extended_errcode(store->db);
        sqlite3_finalize(statement);
        if (result != SQLITE_DONE) {
            if (extended == SQLITE_CONSTRAINT_FOREIGNKEY)
                code = pv_error_set(error, -ENOENT, "domain '%s' not found", device->domain_uuid);
            else
                code = store_fail(store, extended, error, "cannot save device '%s'", device->key);
        }
    }
    return store_transaction_end(store, code, error);
}

#define DEVICE_COLUMNS "domain_uuid, key, kind, alias, pci_slot, state, xml, data_json"

static int device_from_row(struct store *store, sqlite3_stmt *statement, struct store_device *out,
                           struct pv_error *error)
{
    memset(out, 0, sizeof(*out));
    store_column_uuid(statement, 0, out->domain_uuid);
    int code = store_column_strdup(statement, 1, &out->key);
    if (code == 0)
        code = store_column_strdup(statement, 2, &out->kind);
    if (code == 0)
        code = store_column_strdup(statement, 3, &out->alias);
    if (code == 0)
        code = store_column_strdup(statement, 6, &out->xml);
    if (code == 0)
        code = store_column_strdup(statement, 7, &out->data_json);
    if (code) {
        store_device_clear(out);
        return pv_error_set(error, code, "cannot read a device: out of memory");
    }
    out->pci_slot = sqlite3_column_int(statement, 4);
    const char *state = (const char *)sqlite3_column_text(statement, 5);
    int parsed = store_token_parse(device_state_tokens, ARRAY_SIZE(device_state_tokens), state);
    if (parsed < 0) {
        code = pv_error_set(error, -EUCLEAN, "device '%s' in store '%s' has unknown state '%s'",
                            out->key, store->path, state ? state : "");
        store_device_clear(out);
        return code;
    }
    out->state = (enum store_device_state)parsed;
    return 0;
}

int store_device_get(struct store *store, const char *domain_uuid, const char *key,
                     struct store_device *out, struct pv_error *error)
{
    memset(out, 0, sizeof(*out));
    if (store_text_empty(domain_uuid) || store_text_empty(key))
        return pv_error_set(error, -EINVAL, "no domain uuid or device key given");
    sqlite3_stmt *statement;
    int code = store_prepare(
        store, "SELECT " DEVICE_COLUMNS " FROM devices WHERE domain_uuid = ?1 AND key = ?2",
        &statement, error);
    if (code)
        return code;
    sqlite3_bind_text(statement, 1, domain_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(statement, 2, key, -1, SQLITE_STATIC);
    int result = sqlite3_step(statement);
    if (result == SQLITE_ROW)
        code = device_from_row(store, statement, out, error);
    else if (result == SQLITE_DONE)
        code = pv_error_set(error, -ENOENT, "device '%s' of domain %s not found", key, domain_uuid);
    else
        code = store_fail(store, sqlite3_extended_errcode(store->db), error,
                          "cannot look up device '%s'", key);
    sqlite3_finalize(statement);
    return code;
}

int store_device_set_state(struct store *store, const char *domain_uuid, const char *key,
                           enum store_device_state state, struct pv_error *error)
{
    if (store_text_empty(domain_uuid) || store_text_empty(key))
        return pv_error_set(error, -EINVAL, "no domain uuid or device key given");
    if ((unsigned)state >= ARRAY_SIZE(device_state_tokens))
        return pv_error_set(error, -EINVAL, "device '%s': invalid state %d", key, (int)state);
    int code = store_transaction_begin(store, error);
    if (code)
        return code;
    sqlite3_stmt *statement;
    code =
        store_prepare(store,
                      "UPDATE devices SET state = ?3, updated_at = ?4 WHERE domain_uuid = ?1 AND "
                      "key = ?2",
                      &statement, error);
    if (code == 0) {
        sqlite3_bind_text(statement, 1, domain_uuid, -1, SQLITE_STATIC);
        sqlite3_bind_text(statement, 2, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(statement, 3, device_state_tokens[state], -1, SQLITE_STATIC);
        sqlite3_bind_double(statement, 4, store_now_seconds());
        code = store_run_statement(store, statement, error, "cannot save the device state");
        if (code == 0 && sqlite3_changes(store->db) == 0)
            code = pv_error_set(error, -ENOENT, "device '%s' of domain %s not found", key,
                                domain_uuid);
    }
    return store_transaction_end(store, code, error);
}

int store_device_delete(struct store *store, const char *domain_uuid, const char *key,
                        struct pv_error *error)
{
    if (store_text_empty(domain_uuid) || store_text_empty(key))
        return pv_error_set(error, -EINVAL, "no domain uuid or device key given");
    int code = store_transaction_begin(store, error);
    if (code)
        return code;
    sqlite3_stmt *statement;
    code = store_prepare(store, "DELETE FROM devices WHERE domain_uuid = ?1 AND key = ?2",
                         &statement, error);
    if (code == 0) {
        sqlite3_bind_text(statement, 1, domain_uuid, -1, SQLITE_STATIC);
        sqlite3_bind_text(statement, 2, key, -1, SQLITE_STATIC);
        code = store_run_statement(store, statement, error, "cannot delete the device");
        if (code == 0 && sqlite3_changes(store->db) == 0)
            code = pv_error_set(error, -ENOENT, "device '%s' of domain %s not found", key,
                                domain_uuid);
    }
    return store_transaction_end(store, code, error);
}

int store_device_delete_all(struct store *store, const char *domain_uuid, struct pv_error *error)
{
    if (store_text_empty(domain_uuid))
        return pv_error_set(error, -EINVAL, "no domain uuid given");
    int code = store_transaction_begin(store, error);
    if (code)
        return code;
    sqlite3_stmt *statement;
    code = store_prepare(store, "DELETE FROM devices WHERE domain_uuid = ?1", &statement, error);
    if (code == 0) {
        sqlite3_bind_text(statement, 1, domain_uuid, -1, SQLITE_STATIC);
        code = store_run_statement(store, statement, error, "cannot delete the devices");
    }
    return store_transaction_end(store, code, error);
}

int store_device_list(struct store *store, const char *domain_uuid, struct store_device **out,
                      size_t *count, struct pv_error *error)
{
    *out = NULL;
    *count = 0;
    if (store_text_empty(domain_uuid))
        return pv_error_set(error, -EINVAL, "no domain uuid given");
    sqlite3_stmt *statement;
    int code = store_prepare(
        store, "SELECT " DEVICE_COLUMNS " FROM devices WHERE domain_uuid = ?1 ORDER BY key",
        &statement, error);
    if (code)
        return code;
    sqlite3_bind_text(statement, 1, domain_uuid, -1, SQLITE_STATIC);
    struct store_device *devices = NULL;
    size_t used = 0;
    int result = SQLITE_DONE;
    while (code == 0 && (result = sqlite3_step(statement)) == SQLITE_ROW) {
        struct store_device *grown = store_array_append(devices, sizeof(*devices), &used);
        if (!grown) {
            code = pv_error_set(error, -ENOMEM, "cannot list devices: out of memory");
            break;
        }
        devices = grown;
        code = device_from_row(store, statement, &devices[used - 1], error);
    }
    if (code == 0 && result != SQLITE_DONE)
        code = store_fail(store, sqlite3_extended_errcode(store->db), error, "cannot list devices");
    sqlite3_finalize(statement);
    if (code) {
        store_device_list_free(devices, used);
        return code;
    }
    *out = devices;
    *count = used;
    return 0;
}

void store_device_list_free(struct store_device *devices, size_t count)
{
    for (size_t i = 0; devices && i < count; i++)
        store_device_clear(&devices[i]);
    free(devices);
}

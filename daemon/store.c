/* The daemon's SQLite store: see store.h for the tables. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pv_log.h"

/* How long a statement waits for a lock held by another connection (sqlite3 CLI, backup). */
#define STORE_BUSY_TIMEOUT_MS 5000

struct store {
    sqlite3 *db;
    char *path;
    int schema_version;
    int transaction_depth; /* 0 = no transaction; >1 = inside savepoints */
};

/* --- schema ---------------------------------------------------------------- */

static const char store_schema_v1[] =
    "CREATE TABLE domains (\n"
    "    uuid TEXT PRIMARY KEY NOT NULL COLLATE NOCASE CHECK (length(uuid) = 36),\n"
    "    name TEXT NOT NULL UNIQUE CHECK (name <> ''),\n"
    "    persistent_xml TEXT,\n"
    "    live_xml TEXT,\n"
    "    state TEXT NOT NULL DEFAULT 'shutoff'\n"
    "        CHECK (state IN ('shutoff', 'running', 'paused', 'shutdown', 'crashed')),\n"
    "    pid INTEGER NOT NULL DEFAULT 0,\n"
    "    pid_start_time INTEGER NOT NULL DEFAULT 0,\n"
    "    qmp_path TEXT,\n"
    "    autostart INTEGER NOT NULL DEFAULT 0 CHECK (autostart IN (0, 1)),\n"
    "    persistent INTEGER NOT NULL DEFAULT 0 CHECK (persistent IN (0, 1)),\n"
    "    updated_at REAL NOT NULL\n"
    ");\n"
    "CREATE TABLE devices (\n"
    "    domain_uuid TEXT NOT NULL COLLATE NOCASE\n"
    "        REFERENCES domains (uuid) ON DELETE CASCADE,\n"
    "    key TEXT NOT NULL CHECK (key <> ''),\n"
    "    kind TEXT NOT NULL,\n"
    "    alias TEXT,\n"
    "    pci_slot INTEGER NOT NULL DEFAULT -1,\n"
    "    state TEXT NOT NULL CHECK (state IN ('attaching', 'attached', 'detaching')),\n"
    "    xml TEXT,\n"
    "    data_json TEXT,\n"
    "    updated_at REAL NOT NULL,\n"
    "    PRIMARY KEY (domain_uuid, key)\n"
    ");\n"
    /* AUTOINCREMENT: a job id is never reused, so a log line naming a job stays unambiguous. */
    "CREATE TABLE jobs (\n"
    "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    domain_uuid TEXT NOT NULL COLLATE NOCASE\n"
    "        REFERENCES domains (uuid) ON DELETE CASCADE,\n"
    "    kind TEXT NOT NULL,\n"
    "    device_key TEXT,\n"
    "    step INTEGER NOT NULL DEFAULT 0,\n"
    "    status TEXT NOT NULL DEFAULT 'running'\n"
    "        CHECK (status IN ('running', 'done', 'rolled-back', 'failed')),\n"
    "    started_at REAL NOT NULL,\n"
    "    updated_at REAL NOT NULL,\n"
    "    data_json TEXT\n"
    ");\n"
    "CREATE INDEX jobs_by_domain ON jobs (domain_uuid);\n"
    "CREATE INDEX jobs_running ON jobs (id) WHERE status = 'running';\n"
    /* No foreign key: the log keeps the events of undefined domains. */
    "CREATE TABLE events (\n"
    "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    domain_uuid TEXT COLLATE NOCASE,\n"
    "    time REAL NOT NULL,\n"
    "    type TEXT NOT NULL,\n"
    "    detail TEXT\n"
    ");\n"
    "CREATE INDEX events_by_domain ON events (domain_uuid, id);\n";

/* Version N+1 is one more entry. A migration that must rebuild a table follows SQLite's
 * "12-step" ALTER TABLE procedure; the foreign keys are checked before each commit. */
static const struct store_migration store_migrations[] = {
    {1, "domains, devices, jobs, events", store_schema_v1},
};

const struct store_migration *store_builtin_migrations(size_t *count)
{
    *count = sizeof(store_migrations) / sizeof(store_migrations[0]);
    return store_migrations;
}

/* --- enum <-> text --------------------------------------------------------- */

static const char *const domain_state_tokens[] = {"shutoff", "running", "paused", "shutdown",
                                                  "crashed"};
static const char *const domain_state_names[] = {"shut off", "running", "paused", "in shutdown",
                                                 "crashed"};
static const char *const device_state_tokens[] = {"attaching", "attached", "detaching"};
static const char *const job_status_tokens[] = {"running", "done", "rolled-back", "failed"};

#define ARRAY_SIZE(array) (sizeof(array) / sizeof((array)[0]))

const char *store_domain_state_name(enum store_domain_state state)
{
    if ((unsigned)state >= ARRAY_SIZE(domain_state_names))
        return "unknown";
    return domain_state_names[state];
}

static int token_parse(const char *const *tokens, size_t count, const char *text)
{
    for (size_t i = 0; text && i < count; i++)
        if (strcmp(tokens[i], text) == 0)
            return (int)i;
    return -1;
}

/* --- errors ---------------------------------------------------------------- */

static int sqlite_to_errno(int result, int system_errno)
{
    switch (result & 0xff) {
    case SQLITE_CONSTRAINT:
        if (result == SQLITE_CONSTRAINT_FOREIGNKEY)
            return -ENOENT;
        if (result == SQLITE_CONSTRAINT_UNIQUE || result == SQLITE_CONSTRAINT_PRIMARYKEY)
            return -EEXIST;
        return -EINVAL;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        return -EUCLEAN;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
        return system_errno > 0 ? -system_errno : -EIO;
    default:
        return -EIO;
    }
}

/* What the user can do about the failure, or NULL when SQLite's own message says enough. */
static const char *sqlite_hint(int result, int code)
{
    switch (result & 0xff) {
    case SQLITE_FULL:
        return "the disk is full: free space on the file system of the state directory";
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return "the database is locked by another process: is another plugvirtd using the "
               "same state directory?";
    case SQLITE_READONLY:
    case SQLITE_PERM:
        return "permission denied: plugvirtd needs read and write access to the file and its "
               "directory";
    case SQLITE_NOTADB:
        return "the file is not a SQLite database: move it away to start with an empty store";
    case SQLITE_CORRUPT:
        return "the database is corrupted: restore it from a backup or move it away";
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
        if (code == -EACCES || code == -EPERM)
            return "permission denied: plugvirtd needs read and write access to the file and "
                   "its directory";
        if (code == -ENOSPC)
            return "the disk is full: free space on the file system of the state directory";
        return NULL;
    default:
        return NULL;
    }
}

/* Records "<context> in store '<path>': <reason>" and returns the matching -errno. Call it
 * right where SQLite failed: a later ROLLBACK replaces sqlite3_errmsg(). */
static int store_fail(struct store *store, int result, struct pv_error *error, const char *format,
                      ...) __attribute__((format(printf, 4, 5)));
static int store_fail(struct store *store, int result, struct pv_error *error, const char *format,
                      ...)
{
    int code = sqlite_to_errno(result, sqlite3_system_errno(store->db));
    char context[PV_ERROR_MESSAGE_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(context, sizeof(context), format, args);
    va_end(args);
    const char *hint = sqlite_hint(result, code);
    if (!hint)
        hint = sqlite3_errmsg(store->db);
    return pv_error_set(error, code, "%s in store '%s': %s", context, store->path, hint);
}

/* --- small helpers --------------------------------------------------------- */

static double now_seconds(void)
{
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0)
        return (double)time(NULL);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static int prepare(struct store *store, const char *sql, sqlite3_stmt **statement,
                   struct pv_error *error)
{
    int result = sqlite3_prepare_v2(store->db, sql, -1, statement, NULL);
    if (result != SQLITE_OK) {
        *statement = NULL;
        return store_fail(store, result, error, "cannot prepare a query");
    }
    return 0;
}

/* Steps a statement that returns no row, then finalizes it. */
static int run_statement(struct store *store, sqlite3_stmt *statement, struct pv_error *error,
                         const char *context)
{
    int result = sqlite3_step(statement);
    int code = 0;
    if (result != SQLITE_DONE)
        code = store_fail(store, sqlite3_extended_errcode(store->db), error, "%s", context);
    sqlite3_finalize(statement);
    return code;
}

static int column_strdup(sqlite3_stmt *statement, int column, char **out)
{
    *out = NULL;
    if (sqlite3_column_type(statement, column) == SQLITE_NULL)
        return 0;
    const unsigned char *text = sqlite3_column_text(statement, column);
    if (!text) /* a non-NULL value without text: SQLite ran out of memory converting it */
        return -ENOMEM;
    *out = strdup((const char *)text);
    return *out ? 0 : -ENOMEM;
}

static void column_uuid(sqlite3_stmt *statement, int column, char uuid[37])
{
    const unsigned char *text = sqlite3_column_text(statement, column);
    snprintf(uuid, 37, "%s", text ? (const char *)text : "");
}

/* Grows a malloc'd array by one zeroed element. */
static void *array_append(void *array, size_t element_size, size_t *count)
{
    char *grown = realloc(array, element_size * (*count + 1));
    if (!grown)
        return NULL;
    memset(grown + element_size * *count, 0, element_size);
    (*count)++;
    return grown;
}

static bool text_empty(const char *text)
{
    return !text || !*text;
}

/* --- transactions ---------------------------------------------------------- */

static int exec_sql(struct store *store, const char *sql, struct pv_error *error,
                    const char *context)
{
    int result = sqlite3_exec(store->db, sql, NULL, NULL, NULL);
    if (result != SQLITE_OK)
        return store_fail(store, sqlite3_extended_errcode(store->db), error, "%s", context);
    return 0;
}

/* The outermost level is BEGIN IMMEDIATE (takes the write lock now, so the transaction cannot
 * fail later with SQLITE_BUSY on lock upgrade); inner levels are savepoints. */
static int transaction_begin(struct store *store, struct pv_error *error)
{
    /* SQLite rolls the whole transaction back by itself on some errors (disk full, I/O): the
     * writes that follow must not run outside the caller's transaction. */
    if (store->transaction_depth > 0 && sqlite3_get_autocommit(store->db))
        return pv_error_set(error, -EIO,
                            "store '%s': the enclosing transaction was rolled back after an "
                            "error",
                            store->path);
    const char *sql = store->transaction_depth == 0 ? "BEGIN IMMEDIATE" : "SAVEPOINT store_level";
    int code = exec_sql(store, sql, error, "cannot start a transaction");
    if (code == 0)
        store->transaction_depth++;
    return code;
}

static void transaction_rollback(struct store *store)
{
    /* The error message was recorded already; a failing rollback is only logged. */
    const char *sql =
        store->transaction_depth == 0 ? "ROLLBACK" : "ROLLBACK TO store_level; RELEASE store_level";
    if (store->transaction_depth == 0 && sqlite3_get_autocommit(store->db))
        return; /* SQLite rolled back already (e.g. after SQLITE_FULL) */
    if (sqlite3_exec(store->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        pv_log_error("store '%s': rollback failed: %s", store->path, sqlite3_errmsg(store->db));
}

/* Commits when `code` is 0, rolls back otherwise; returns the final code. */
static int transaction_end(struct store *store, int code, struct pv_error *error)
{
    store->transaction_depth--;
    if (code == 0) {
        const char *sql = store->transaction_depth == 0 ? "COMMIT" : "RELEASE store_level";
        code = exec_sql(store, sql, error, "cannot commit a transaction");
        if (code == 0)
            return 0;
    }
    transaction_rollback(store);
    return code;
}

int store_transaction(struct store *store,
                      int (*fn)(struct store *store, void *arg, struct pv_error *error), void *arg,
                      struct pv_error *error)
{
    int code = transaction_begin(store, error);
    if (code)
        return code;
    code = fn(store, arg, error);
    if (code > 0) /* a callback must return -errno; do not commit a half-done change */
        code = pv_error_set(error, -EINVAL, "transaction callback returned %d", code);
    return transaction_end(store, code, error);
}

/* --- open / close / migrations --------------------------------------------- */

static int pragma_integer(struct store *store, const char *sql, int *value, struct pv_error *error,
                          const char *context)
{
    sqlite3_stmt *statement;
    int code = prepare(store, sql, &statement, error);
    if (code) {
        pv_error_prefix(error, "%s", context);
        return code;
    }
    int result = sqlite3_step(statement);
    if (result == SQLITE_ROW)
        *value = sqlite3_column_int(statement, 0);
    else
        code = store_fail(store, sqlite3_extended_errcode(store->db), error, "%s", context);
    sqlite3_finalize(statement);
    return code;
}

/* PRAGMA quick_check: catches a damaged file at start instead of in the middle of a hotplug.
 * It reads the whole file, which is small (definitions, journal, a pruned event log). */
static int check_integrity(struct store *store, struct pv_error *error)
{
    sqlite3_stmt *statement;
    int code = prepare(store, "PRAGMA quick_check(1)", &statement, error);
    if (code)
        return code;
    int result = sqlite3_step(statement);
    if (result == SQLITE_ROW) {
        const unsigned char *text = sqlite3_column_text(statement, 0);
        if (!text || strcmp((const char *)text, "ok") != 0) {
            code = pv_error_set(error, -EUCLEAN,
                                "store '%s' is corrupted (%s): restore it from a backup or move "
                                "it away",
                                store->path, text ? (const char *)text : "no detail");
            /* quick_check reports on several lines; a pv_error is one line */
            for (char *newline = error ? strchr(error->message, '\n') : NULL; newline;
                 newline = strchr(newline, '\n'))
                *newline = ' ';
        }
    } else {
        code = store_fail(store, sqlite3_extended_errcode(store->db), error,
                          "cannot check the integrity");
    }
    sqlite3_finalize(statement);
    return code;
}

static int foreign_keys_check(struct store *store, struct pv_error *error)
{
    sqlite3_stmt *statement;
    int code = prepare(store, "PRAGMA foreign_key_check", &statement, error);
    if (code)
        return code;
    int result = sqlite3_step(statement);
    if (result == SQLITE_ROW)
        code = pv_error_set(error, -EINVAL, "rows of table '%s' refer to missing rows of '%s'",
                            (const char *)sqlite3_column_text(statement, 0),
                            (const char *)sqlite3_column_text(statement, 2));
    else if (result != SQLITE_DONE)
        code = store_fail(store, sqlite3_extended_errcode(store->db), error,
                          "cannot check foreign keys");
    sqlite3_finalize(statement);
    return code;
}

static int migration_apply(struct store *store, const struct store_migration *migration,
                           struct pv_error *error)
{
    int code = transaction_begin(store, error);
    if (code)
        return code;
    /* Read again under the write lock: another process may have migrated meanwhile. */
    int version = 0;
    code = pragma_integer(store, "PRAGMA user_version", &version, error,
                          "cannot read the schema version");
    if (code == 0 && version >= migration->version)
        return transaction_end(store, 0, error);
    if (code == 0 && version != migration->version - 1)
        code = pv_error_set(error, -EINVAL, "schema version %d is not %d", version,
                            migration->version - 1);
    if (code == 0 && sqlite3_exec(store->db, migration->sql, NULL, NULL, NULL) != SQLITE_OK)
        code = store_fail(store, sqlite3_extended_errcode(store->db), error, "%s",
                          migration->description);
    if (code == 0)
        code = foreign_keys_check(store, error);
    if (code == 0) {
        char sql[64]; /* a PRAGMA takes no bound parameter; the value is our own integer */
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", migration->version);
        code = exec_sql(store, sql, error, "cannot record the schema version");
    }
    code = transaction_end(store, code, error);
    if (code)
        pv_error_prefix(error, "cannot migrate store '%s' from schema version %d to %d",
                        store->path, migration->version - 1, migration->version);
    return code;
}

static int migrations_run(struct store *store, const struct store_migration *migrations,
                          size_t count, struct pv_error *error)
{
    for (size_t i = 0; i < count; i++)
        if (migrations[i].version != (int)i + 1 || !migrations[i].sql)
            return pv_error_set(error, -EINVAL,
                                "migration list is broken: entry %zu has version %d", i,
                                migrations[i].version);
    int version = 0;
    int code = pragma_integer(store, "PRAGMA user_version", &version, error,
                              "cannot read the schema version");
    if (code)
        return code;
    if (version < 0 || (size_t)version > count)
        return pv_error_set(error, -ENOTSUP,
                            "store '%s' has schema version %d but this plugvirtd knows only "
                            "versions up to %zu: it was written by a newer plugvirt; upgrade "
                            "plugvirtd, or move the file away to start with an empty store",
                            store->path, version, count);
    for (size_t i = (size_t)version; i < count; i++) {
        if (version > 0)
            pv_log_info("store '%s': migrating schema version %d to %d (%s)", store->path,
                        migrations[i].version - 1, migrations[i].version,
                        migrations[i].description);
        code = migration_apply(store, &migrations[i], error);
        if (code)
            return code;
    }
    store->schema_version = (int)count;
    return 0;
}

/* Creates the file ourselves so that it gets mode 0600 (domain XML names host paths); SQLite
 * gives its -wal and -shm files the same mode. */
static int database_file_create(const char *path, struct pv_error *error)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int code = -errno;
        if (code == -EACCES || code == -EPERM || code == -EROFS)
            return pv_error_set_errno(error, code,
                                      "cannot open store '%s' (plugvirtd needs read and write "
                                      "access to the file and its directory)",
                                      path);
        return pv_error_set_errno(error, code, "cannot open store '%s'", path);
    }
    if (close(fd) != 0)
        return pv_error_set_errno(error, -errno, "cannot open store '%s'", path);
    return 0;
}

static int store_configure(struct store *store, struct pv_error *error)
{
    sqlite3_extended_result_codes(store->db, 1);
    if (sqlite3_db_readonly(store->db, "main") == 1)
        return pv_error_set(error, -EACCES,
                            "store '%s' can only be opened read-only: plugvirtd needs read and "
                            "write access to the file and its directory",
                            store->path);
    sqlite3_busy_timeout(store->db, STORE_BUSY_TIMEOUT_MS);
    /* The first read: a file that is not a database fails here, with a clear message. */
    int version = 0;
    int code =
        pragma_integer(store, "PRAGMA user_version", &version, error, "cannot open the database");
    if (code)
        return code;

    /* WAL: readers never block the writer, and a commit is one append to the -wal file. */
    sqlite3_stmt *statement;
    code = prepare(store, "PRAGMA journal_mode = WAL", &statement, error);
    if (code)
        return code;
    int result = sqlite3_step(statement);
    if (result != SQLITE_ROW) {
        code = store_fail(store, sqlite3_extended_errcode(store->db), error,
                          "cannot switch to WAL mode");
    } else {
        const char *mode = (const char *)sqlite3_column_text(statement, 0);
        if (!mode || strcmp(mode, "wal") != 0)
            code = pv_error_set(error, -ENOTSUP,
                                "cannot switch store '%s' to WAL mode (journal mode stays '%s'): "
                                "the file system of the state directory must support shared "
                                "memory mappings",
                                store->path, mode ? mode : "unknown");
    }
    sqlite3_finalize(statement);
    if (code)
        return code;

    /* synchronous=NORMAL in WAL mode: a commit is written to the -wal file before COMMIT
     * returns but not fsync'ed. That is durable against a crash of the process (SIGKILL of
     * plugvirtd: the kernel still holds the written pages), which is what the daemon must
     * survive; a power loss may lose the last transactions but never corrupts the file. FULL
     * would fsync every hotplug journal step. foreign_keys is off by default in SQLite. */
    code = exec_sql(store, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON", error,
                    "cannot configure the connection");
    if (code)
        return code;
    return check_integrity(store, error);
}

struct store *store_open_with_migrations(const char *state_dir,
                                         const struct store_migration *migrations, size_t count,
                                         struct pv_error *error)
{
    if (text_empty(state_dir)) {
        pv_error_set(error, -EINVAL, "no state directory given for the store");
        return NULL;
    }
    struct stat state_dir_status;
    if (stat(state_dir, &state_dir_status) != 0) {
        pv_error_set_errno(error, -errno, "cannot open the store: state directory '%s'", state_dir);
        return NULL;
    }
    if (!S_ISDIR(state_dir_status.st_mode)) {
        pv_error_set(error, -ENOTDIR,
                     "cannot open the store: state directory '%s' is not a directory", state_dir);
        return NULL;
    }
    struct store *store = calloc(1, sizeof(*store));
    if (!store || asprintf(&store->path, "%s/%s", state_dir, STORE_FILE_NAME) < 0) {
        free(store);
        pv_error_set(error, -ENOMEM, "cannot open the store: out of memory");
        return NULL;
    }
    int code = database_file_create(store->path, error);
    if (code)
        goto fail;
    /* NOMUTEX: the daemon uses the store from its main thread only. */
    int result =
        sqlite3_open_v2(store->path, &store->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (result != SQLITE_OK) {
        if (!store->db) {
            pv_error_set(error, -ENOMEM, "cannot open store '%s': out of memory", store->path);
            goto fail;
        }
        store_fail(store, sqlite3_extended_errcode(store->db), error, "cannot open the database");
        goto fail;
    }
    if (store_configure(store, error) != 0 || migrations_run(store, migrations, count, error) != 0)
        goto fail;
    return store;
fail:
    store_close(store);
    return NULL;
}

struct store *store_open(const char *state_dir, struct pv_error *error)
{
    size_t count;
    const struct store_migration *migrations = store_builtin_migrations(&count);
    return store_open_with_migrations(state_dir, migrations, count, error);
}

void store_close(struct store *store)
{
    if (!store)
        return;
    if (store->db && sqlite3_close(store->db) != SQLITE_OK)
        pv_log_error("store '%s': close failed: %s", store->path, sqlite3_errmsg(store->db));
    free(store->path);
    free(store);
}

int store_schema_version(struct store *store)
{
    return store->schema_version;
}

const char *store_path(struct store *store)
{
    return store->path;
}

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
    if (text_empty(domain->name))
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
    code = transaction_begin(store, error);
    if (code)
        return code;
    sqlite3_stmt *statement;
    code = prepare(store, sql, &statement, error);
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
        sqlite3_bind_double(statement, 11, now_seconds());
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
    return transaction_end(store, code, error);
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
    column_uuid(statement, 0, out->uuid);
    int code = column_strdup(statement, 1, &out->name);
    if (code == 0)
        code = column_strdup(statement, 2, &out->persistent_xml);
    if (code == 0)
        code = column_strdup(statement, 3, &out->live_xml);
    if (code == 0)
        code = column_strdup(statement, 7, &out->qmp_path);
    if (code) {
        store_domain_clear(out);
        return pv_error_set(error, code, "cannot read a domain: out of memory");
    }
    const char *state = (const char *)sqlite3_column_text(statement, 4);
    int parsed = token_parse(domain_state_tokens, ARRAY_SIZE(domain_state_tokens), state);
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
    if (text_empty(key))
        return pv_error_set(error, -EINVAL, "no domain name or uuid given");
    sqlite3_stmt *statement;
    /* A name may look like a uuid: the uuid match wins, as in virsh. */
    int code = prepare(store,
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
    int code = run_statement(store, statement, error, context);
    if (code == 0 && sqlite3_changes(store->db) == 0)
        code = pv_error_set(error, -ENOENT, "domain '%s' not found", uuid);
    return code;
}

int store_domain_delete(struct store *store, const char *uuid, struct pv_error *error)
{
    if (text_empty(uuid))
        return pv_error_set(error, -EINVAL, "no domain uuid given");
    int code = transaction_begin(store, error);
    if (code)
        return code;
    sqlite3_stmt *statement;
    code = prepare(store, "DELETE FROM domains WHERE uuid = ?1", &statement, error);
    if (code == 0) {
        sqlite3_bind_text(statement, 1, uuid, -1, SQLITE_STATIC);
        code = domain_change(store, statement, uuid, error, "cannot delete the domain");
    }
    return transaction_end(store, code, error);
}

int store_domain_list(struct store *store, struct store_domain **out, size_t *count,
                      struct pv_error *error)
{
    *out = NULL;
    *count = 0;
    sqlite3_stmt *statement;
    int code =
        prepare(store, "SELECT " DOMAIN_COLUMNS " FROM domains ORDER BY name", &statement, error);
    if (code)
        return code;
    struct store_domain *domains = NULL;
    size_t used = 0;
    int result = SQLITE_DONE;
    while (code == 0 && (result = sqlite3_step(statement)) == SQLITE_ROW) {
        struct store_domain *grown = array_append(domains, sizeof(*domains), &used);
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
    if (text_empty(uuid))
        return pv_error_set(error, -EINVAL, "no domain uuid given");
    if ((unsigned)state >= ARRAY_SIZE(domain_state_tokens))
        return pv_error_set(error, -EINVAL, "invalid domain state %d", (int)state);
    int code = transaction_begin(store, error);
    if (code)
        return code;
    sqlite3_stmt *statement;
    code = prepare(store,
                   "UPDATE domains SET state = ?2, pid = ?3, pid_start_time = ?4, updated_at = ?5 "
                   "WHERE uuid = ?1",
                   &statement, error);
    if (code == 0) {
        sqlite3_bind_text(statement, 1, uuid, -1, SQLITE_STATIC);
        sqlite3_bind_text(statement, 2, domain_state_tokens[state], -1, SQLITE_STATIC);
        sqlite3_bind_int64(statement, 3, pid);
        sqlite3_bind_int64(statement, 4, (sqlite3_int64)pid_start_time);
        sqlite3_bind_double(statement, 5, now_seconds());
        code = domain_change(store, statement, uuid, error, "cannot save the domain state");
    }
    return transaction_end(store, code, error);
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
    if (text_empty(device->domain_uuid) || text_empty(device->key) || text_empty(device->kind))
        return pv_error_set(error, -EINVAL, "a device needs a domain uuid, a key and a kind");
    if ((unsigned)device->state >= ARRAY_SIZE(device_state_tokens))
        return pv_error_set(error, -EINVAL, "device '%s': invalid state %d", device->key,
                            (int)device->state);
    int code = transaction_begin(store, error);
    if (code)
        return code;
    sqlite3_stmt *statement;
    code = prepare(store,
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
        sqlite3_bind_double(statement, 9, now_seconds());
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
    return transaction_end(store, code, error);
}

#define DEVICE_COLUMNS "domain_uuid, key, kind, alias, pci_slot, state, xml, data_json"

static int device_from_row(struct store *store, sqlite3_stmt *statement, struct store_device *out,
                           struct pv_error *error)
{
    memset(out, 0, sizeof(*out));
    column_uuid(statement, 0, out->domain_uuid);
    int code = column_strdup(statement, 1, &out->key);
    if (code == 0)
        code = column_strdup(statement, 2, &out->kind);
    if (code == 0)
        code = column_strdup(statement, 3, &out->alias);
    if (code == 0)
        code = column_strdup(statement, 6, &out->xml);
    if (code == 0)
        code = column_strdup(statement, 7, &out->data_json);
    if (code) {
        store_device_clear(out);
        return pv_error_set(error, code, "cannot read a device: out of memory");
    }
    out->pci_slot = sqlite3_column_int(statement, 4);
    const char *state = (const char *)sqlite3_column_text(statement, 5);
    int parsed = token_parse(device_state_tokens, ARRAY_SIZE(device_state_tokens), state);
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
    if (text_empty(domain_uuid) || text_empty(key))
        return pv_error_set(error, -EINVAL, "no domain uuid or device key given");
    sqlite3_stmt *statement;
    int code =
        prepare(store, "SELECT " DEVICE_COLUMNS " FROM devices WHERE domain_uuid = ?1 AND key = ?2",
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
    if (text_empty(domain_uuid) || text_empty(key))
        return pv_error_set(error, -EINVAL, "no domain uuid or device key given");
    if ((unsigned)state >= ARRAY_SIZE(device_state_tokens))
        return pv_error_set(error, -EINVAL, "device '%s': invalid state %d", key, (int)state);
    int code = transaction_begin(store, error);
    if (code)
        return code;
    sqlite3_stmt *statement;
    code = prepare(store,
                   "UPDATE devices SET state = ?3, updated_at = ?4 WHERE domain_uuid = ?1 AND "
                   "key = ?2",
                   &statement, error);
    if (code == 0) {
        sqlite3_bind_text(statement, 1, domain_uuid, -1, SQLITE_STATIC);
        sqlite3_bind_text(statement, 2, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(statement, 3, device_state_tokens[state], -1, SQLITE_STATIC);
        sqlite3_bind_double(statement, 4, now_seconds());
        code = run_statement(store, statement, error, "cannot save the device state");
        if (code == 0 && sqlite3_changes(store->db) == 0)
            code = pv_error_set(error, -ENOENT, "device '%s' of domain %s not found", key,
                                domain_uuid);
    }
    return transaction_end(store, code, error);
}

int store_device_delete(struct store *store, const char *domain_uuid, const char *key,
                        struct pv_error *error)
{
    if (text_empty(domain_uuid) || text_empty(key))
        return pv_error_set(error, -EINVAL, "no domain uuid or device key given");
    int code = transaction_begin(store, error);
    if (code)
        return code;
    sqlite3_stmt *statement;
    code = prepare(store, "DELETE FROM devices WHERE domain_uuid = ?1 AND key = ?2", &statement,
                   error);
    if (code == 0) {
        sqlite3_bind_text(statement, 1, domain_uuid, -1, SQLITE_STATIC);
        sqlite3_bind_text(statement, 2, key, -1, SQLITE_STATIC);
        code = run_statement(store, statement, error, "cannot delete the device");
        if (code == 0 && sqlite3_changes(store->db) == 0)
            code = pv_error_set(error, -ENOENT, "device '%s' of domain %s not found", key,
                                domain_uuid);
    }
    return transaction_end(store, code, error);
}

int store_device_delete_all(struct store *store, const char *domain_uuid, struct pv_error *error)
{
    if (text_empty(domain_uuid))
        return pv_error_set(error, -EINVAL, "no domain uuid given");
    int code = transaction_begin(store, error);
    if (code)
        return code;
    sqlite3_stmt *statement;
    code = prepare(store, "DELETE FROM devices WHERE domain_uuid = ?1", &statement, error);
    if (code == 0) {
        sqlite3_bind_text(statement, 1, domain_uuid, -1, SQLITE_STATIC);
        code = run_statement(store, statement, error, "cannot delete the devices");
    }
    return transaction_end(store, code, error);
}

int store_device_list(struct store *store, const char *domain_uuid, struct store_device **out,
                      size_t *count, struct pv_error *error)
{
    *out = NULL;
    *count = 0;
    if (text_empty(domain_uuid))
        return pv_error_set(error, -EINVAL, "no domain uuid given");
    sqlite3_stmt *statement;
    int code =
        prepare(store, "SELECT " DEVICE_COLUMNS " FROM devices WHERE domain_uuid = ?1 ORDER BY key",
                &statement, error);
    if (code)
        return code;
    sqlite3_bind_text(statement, 1, domain_uuid, -1, SQLITE_STATIC);
    struct store_device *devices = NULL;
    size_t used = 0;
    int result = SQLITE_DONE;
    while (code == 0 && (result = sqlite3_step(statement)) == SQLITE_ROW) {
        struct store_device *grown = array_append(devices, sizeof(*devices), &used);
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
    if (text_empty(domain_uuid) || text_empty(kind))
        return pv_error_set(error, -EINVAL, "a job needs a domain uuid and a kind");
    int code = transaction_begin(store, error);
    if (code)
        return code;
    sqlite3_stmt *statement;
    code = prepare(store,
                   "INSERT INTO jobs (domain_uuid, kind, device_key, step, status, started_at, "
                   "updated_at, data_json) VALUES (?1, ?2, ?3, 0, 'running', ?4, ?4, ?5)",
                   &statement, error);
    if (code == 0) {
        sqlite3_bind_text(statement, 1, domain_uuid, -1, SQLITE_STATIC);
        sqlite3_bind_text(statement, 2, kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(statement, 3, device_key, -1, SQLITE_STATIC);
        sqlite3_bind_double(statement, 4, now_seconds());
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
    code = transaction_end(store, code, error);
    if (code)
        *id = 0;
    return code;
}

/* Tells apart an unknown job and a finished one after an UPDATE ... AND status = 'running'
 * changed nothing. */
static int job_not_running(struct store *store, int64_t id, struct pv_error *error)
{
    sqlite3_stmt *statement;
    int code = prepare(store, "SELECT status FROM jobs WHERE id = ?1", &statement, error);
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
    int code = transaction_begin(store, error);
    if (code)
        return code;
    sqlite3_stmt *statement;
    code = prepare(store,
                   "UPDATE jobs SET step = ?2, data_json = coalesce(?3, data_json), updated_at = "
                   "?4 WHERE id = ?1 AND status = 'running'",
                   &statement, error);
    if (code == 0) {
        sqlite3_bind_int64(statement, 1, id);
        sqlite3_bind_int(statement, 2, step);
        sqlite3_bind_text(statement, 3, data_json, -1, SQLITE_STATIC);
        sqlite3_bind_double(statement, 4, now_seconds());
        code = run_statement(store, statement, error, "cannot journal the job step");
        if (code == 0 && sqlite3_changes(store->db) == 0)
            code = job_not_running(store, id, error);
    }
    return transaction_end(store, code, error);
}

int store_job_finish(struct store *store, int64_t id, enum store_job_status status,
                     struct pv_error *error)
{
    if (status == STORE_JOB_RUNNING || (unsigned)status >= ARRAY_SIZE(job_status_tokens))
        return pv_error_set(error, -EINVAL, "job %lld: invalid final status %d", (long long)id,
                            (int)status);
    int code = transaction_begin(store, error);
    if (code)
        return code;
    sqlite3_stmt *statement;
    code = prepare(store,
                   "UPDATE jobs SET status = ?2, updated_at = ?3 WHERE id = ?1 AND status = "
                   "'running'",
                   &statement, error);
    if (code == 0) {
        sqlite3_bind_int64(statement, 1, id);
        sqlite3_bind_text(statement, 2, job_status_tokens[status], -1, SQLITE_STATIC);
        sqlite3_bind_double(statement, 3, now_seconds());
        code = run_statement(store, statement, error, "cannot journal the end of the job");
        if (code == 0 && sqlite3_changes(store->db) == 0)
            code = job_not_running(store, id, error);
    }
    return transaction_end(store, code, error);
}

int store_job_list_unfinished(struct store *store, struct store_job **out, size_t *count,
                              struct pv_error *error)
{
    *out = NULL;
    *count = 0;
    sqlite3_stmt *statement;
    int code = prepare(store,
                       "SELECT id, domain_uuid, kind, device_key, step, data_json FROM jobs "
                       "WHERE status = 'running' ORDER BY id",
                       &statement, error);
    if (code)
        return code;
    struct store_job *jobs = NULL;
    size_t used = 0;
    int result = SQLITE_DONE;
    while (code == 0 && (result = sqlite3_step(statement)) == SQLITE_ROW) {
        struct store_job *grown = array_append(jobs, sizeof(*jobs), &used);
        if (!grown) {
            code = pv_error_set(error, -ENOMEM, "cannot list jobs: out of memory");
            break;
        }
        jobs = grown;
        struct store_job *job = &jobs[used - 1];
        job->id = sqlite3_column_int64(statement, 0);
        column_uuid(statement, 1, job->domain_uuid);
        job->step = sqlite3_column_int(statement, 4);
        job->status = STORE_JOB_RUNNING;
        if (column_strdup(statement, 2, &job->kind) ||
            column_strdup(statement, 3, &job->device_key) ||
            column_strdup(statement, 5, &job->data_json))
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
    int code = transaction_begin(store, error);
    if (code)
        return code;
    sqlite3_stmt *statement;
    code = prepare(store, sql, &statement, error);
    if (code == 0) {
        sqlite3_bind_int64(statement, 1, keep > INT64_MAX ? INT64_MAX : (sqlite3_int64)keep);
        code = run_statement(store, statement, error, context);
    }
    return transaction_end(store, code, error);
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
    if (text_empty(type))
        return pv_error_set(error, -EINVAL, "an event needs a type");
    int code = transaction_begin(store, error);
    if (code)
        return code;
    sqlite3_stmt *statement;
    code = prepare(store,
                   "INSERT INTO events (domain_uuid, time, type, detail) VALUES (?1, ?2, "
                   "?3, ?4)",
                   &statement, error);
    if (code == 0) {
        sqlite3_bind_text(statement, 1, text_empty(domain_uuid) ? NULL : domain_uuid, -1,
                          SQLITE_STATIC);
        sqlite3_bind_double(statement, 2, now_seconds());
        sqlite3_bind_text(statement, 3, type, -1, SQLITE_STATIC);
        sqlite3_bind_text(statement, 4, detail, -1, SQLITE_STATIC);
        code = run_statement(store, statement, error, "cannot log the event");
    }
    return transaction_end(store, code, error);
}

int store_event_list(struct store *store, const char *domain_uuid, int64_t after_id,
                     struct store_event **out, size_t *count, struct pv_error *error)
{
    *out = NULL;
    *count = 0;
    sqlite3_stmt *statement;
    int code = prepare(store,
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
        struct store_event *grown = array_append(events, sizeof(*events), &used);
        if (!grown) {
            code = pv_error_set(error, -ENOMEM, "cannot list events: out of memory");
            break;
        }
        events = grown;
        struct store_event *event = &events[used - 1];
        event->id = sqlite3_column_int64(statement, 0);
        column_uuid(statement, 1, event->domain_uuid);
        event->time = sqlite3_column_double(statement, 2);
        if (column_strdup(statement, 3, &event->type) ||
            column_strdup(statement, 4, &event->detail))
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

/* The daemon's SQLite store: see store.h for the tables. */
#include "store.h"
#include "store_internal.h"

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

int store_token_parse(const char *const *tokens, size_t count, const char *text)
{
    for (size_t i = 0; text && i < count; i++)
        if (strcmp(tokens[i], text) == 0)
            return (int)i;
    return -1;
}

const char *store_domain_state_name(enum store_domain_state state)
{
    if ((unsigned)state >= ARRAY_SIZE(domain_state_names))
        return "unknown";
    return domain_state_names[state];
}

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
int store_fail(struct store *store, int result, struct pv_error *error, const char *format, ...)
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

double store_now_seconds(void)
{
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0)
        return (double)time(NULL);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

int store_prepare(struct store *store, const char *sql, sqlite3_stmt **statement,
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
int store_run_statement(struct store *store, sqlite3_stmt *statement, struct pv_error *error,
                        const char *context)
{
    int result = sqlite3_step(statement);
    int code = 0;
    if (result != SQLITE_DONE)
        code = store_fail(store, sqlite3_extended_errcode(store->db), error, "%s", context);
    sqlite3_finalize(statement);
    return code;
}

int store_column_strdup(sqlite3_stmt *statement, int column, char **out)
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

void store_column_uuid(sqlite3_stmt *statement, int column, char uuid[37])
{
    const unsigned char *text = sqlite3_column_text(statement, column);
    snprintf(uuid, 37, "%s", text ? (const char *)text : "");
}

/* Grows a malloc'd array by one zeroed element. */
void *store_array_append(void *array, size_t element_size, size_t *count)
{
    char *grown = realloc(array, element_size * (*count + 1));
    if (!grown)
        return NULL;
    memset(grown + element_size * *count, 0, element_size);
    (*count)++;
    return grown;
}

bool store_text_empty(const char *text)
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
int store_transaction_begin(struct store *store, struct pv_error *error)
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
int store_transaction_end(struct store *store, int code, struct pv_error *error)
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
    int code = store_transaction_begin(store, error);
    if (code)
        return code;
    code = fn(store, arg, error);
    if (code > 0) /* a callback must return -errno; do not commit a half-done change */
        code = pv_error_set(error, -EINVAL, "transaction callback returned %d", code);
    return store_transaction_end(store, code, error);
}

/* --- open / close / migrations --------------------------------------------- */

static int pragma_integer(struct store *store, const char *sql, int *value, struct pv_error *error,
                          const char *context)
{
    sqlite3_stmt *statement;
    int code = store_prepare(store, sql, &statement, error);
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
    int code = store_prepare(store, "PRAGMA quick_check(1)", &statement, error);
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
    int code = store_prepare(store, "PRAGMA foreign_key_check", &statement, error);
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
    int code = store_transaction_begin(store, error);
    if (code)
        return code;
    /* Read again under the write lock: another process may have migrated meanwhile. */
    int version = 0;
    code = pragma_integer(store, "PRAGMA user_version", &version, error,
                          "cannot read the schema version");
    if (code == 0 && version >= migration->version)
        return store_transaction_end(store, 0, error);
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
    code = store_transaction_end(store, code, error);
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
    code = store_prepare(store, "PRAGMA journal_mode = WAL", &statement, error);
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
    if (store_text_empty(state_dir)) {
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

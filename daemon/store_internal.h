/* What the parts of the store share (store.c: open, migrations, transactions, errors;
 * store_records.c: domains and devices; store_journal.c: the job journal and the event
 * log). Not for other modules. */
#ifndef PLUGVIRT_STORE_INTERNAL_H
#define PLUGVIRT_STORE_INTERNAL_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#include "store.h"

/* How long a statement waits for a lock held by another connection (sqlite3 CLI, backup). */
#define STORE_BUSY_TIMEOUT_MS 5000

struct store {
    sqlite3 *db;
    char *path;
    int schema_version;
    int transaction_depth; /* 0 = no transaction; >1 = inside savepoints */
};

/* The text forms of the enumerations in the database. */
static const char *const domain_state_tokens[] = {"shutoff", "running", "paused", "shutdown",
                                                  "crashed"};
static const char *const domain_state_names[] = {"shut off", "running", "paused", "in shutdown",
                                                 "crashed"};
static const char *const device_state_tokens[] = {"attaching", "attached", "detaching"};
static const char *const job_status_tokens[] = {"running", "done", "rolled-back", "failed"};

#define ARRAY_SIZE(array) (sizeof(array) / sizeof((array)[0]))

int store_token_parse(const char *const *tokens, size_t count, const char *text);
int store_fail(struct store *store, int result, struct pv_error *error, const char *format, ...)
    __attribute__((format(printf, 4, 5)));
double store_now_seconds(void);
int store_prepare(struct store *store, const char *sql, sqlite3_stmt **statement,
                  struct pv_error *error);
int store_run_statement(struct store *store, sqlite3_stmt *statement, struct pv_error *error,
                        const char *context);
int store_column_strdup(sqlite3_stmt *statement, int column, char **out);
void store_column_uuid(sqlite3_stmt *statement, int column, char uuid[37]);
void *store_array_append(void *array, size_t element_size, size_t *count);
bool store_text_empty(const char *text);
int store_transaction_begin(struct store *store, struct pv_error *error);
int store_transaction_end(struct store *store, int code, struct pv_error *error);

#endif

/* The daemon's SQLite store, on real database files in a temporary directory. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define UUID_A "8f0c6a52-3d0e-4c1b-9a4e-0b7f2a6c1d01"
#define UUID_B "8f0c6a52-3d0e-4c1b-9a4e-0b7f2a6c1d02"
#define UUID_C "8f0c6a52-3d0e-4c1b-9a4e-0b7f2a6c1d03"

static char state_dir[64];
static char db_path[128];

static void remove_suffix(const char *suffix)
{
    char path[160];
    snprintf(path, sizeof(path), "%s%s", db_path, suffix);
    unlink(path);
}

static void setup(void)
{
    snprintf(state_dir, sizeof(state_dir), "/tmp/test_store.XXXXXX");
    cr_assert_not_null(mkdtemp(state_dir));
    snprintf(db_path, sizeof(db_path), "%s/plugvirt.db", state_dir);
}

static void teardown(void)
{
    remove_suffix("");
    remove_suffix("-wal");
    remove_suffix("-shm");
    remove_suffix("-journal");
    rmdir(state_dir);
}

TestSuite(store, .init = setup, .fini = teardown);

static struct store *open_or_fail(void)
{
    struct pv_error error = {0};
    struct store *store = store_open(state_dir, &error);
    cr_assert_not_null(store, "store_open: %s", error.message);
    return store;
}

static void domain_fill(struct store_domain *domain, const char *uuid, const char *name)
{
    memset(domain, 0, sizeof(*domain));
    snprintf(domain->uuid, sizeof(domain->uuid), "%s", uuid);
    domain->name = (char *)name;
    domain->persistent_xml = "<domain type='kvm'><name>x</name></domain>";
    domain->persistent = true;
    domain->state = STORE_DOMAIN_SHUTOFF;
}

static void put_or_fail(struct store *store, const char *uuid, const char *name)
{
    struct store_domain domain;
    domain_fill(&domain, uuid, name);
    struct pv_error error = {0};
    cr_assert_eq(store_domain_put(store, &domain, &error), 0, "%s", error.message);
}

static bool file_exists(const char *suffix)
{
    char path[160];
    snprintf(path, sizeof(path), "%s%s", db_path, suffix);
    return access(path, F_OK) == 0;
}

/* Runs SQL on the file through a separate connection, as an older plugvirt (or a user with
 * the sqlite3 shell) would have. */
static void raw_exec(const char *sql)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    char *message = NULL;
    int result = sqlite3_exec(db, sql, NULL, NULL, &message);
    cr_assert_eq(result, SQLITE_OK, "%s: %s", sql, message ? message : "");
    sqlite3_close(db);
}

static long long raw_integer(const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *statement;
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &statement, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(statement), SQLITE_ROW, "%s", sql);
    long long value = sqlite3_column_int64(statement, 0);
    sqlite3_finalize(statement);
    sqlite3_close(db);
    return value;
}

/* --- open ------------------------------------------------------------------- */

Test(store, open_creates_a_wal_database)
{
    struct store *store = open_or_fail();
    cr_expect_eq(store_schema_version(store), 1);
    cr_expect_str_eq(store_path(store), db_path);
    put_or_fail(store, UUID_A, "web");
    cr_expect(file_exists(""));
    cr_expect(file_exists("-wal"), "the WAL file exists while the store is open");
    cr_expect(file_exists("-shm"));
    struct stat status;
    cr_assert_eq(stat(db_path, &status), 0);
    cr_expect_eq(status.st_mode & 0777, 0600, "the database is private: mode %o",
                 status.st_mode & 0777);
    store_close(store);
    cr_expect_eq(raw_integer("PRAGMA user_version"), 1);
    /* journal_mode=WAL is persistent: a fresh connection sees it. */
    sqlite3 *db;
    sqlite3_stmt *statement;
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &statement, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(statement), SQLITE_ROW);
    cr_expect_str_eq((const char *)sqlite3_column_text(statement, 0), "wal");
    sqlite3_finalize(statement);
    sqlite3_close(db);
}

Test(store, reopen_keeps_the_data)
{
    struct store *store = open_or_fail();
    struct store_domain domain;
    domain_fill(&domain, UUID_A, "web");
    domain.live_xml = "<domain><name>web</name><devices/></domain>";
    domain.state = STORE_DOMAIN_RUNNING;
    domain.pid = 4242;
    domain.pid_start_time = 123456789012ULL;
    domain.qmp_path = "/run/plugvirt/domains/web/qmp.sock";
    domain.autostart = true;
    struct pv_error error = {0};
    cr_assert_eq(store_domain_put(store, &domain, &error), 0, "%s", error.message);
    store_close(store);

    store = open_or_fail();
    struct store_domain got;
    cr_assert_eq(store_domain_get(store, "web", &got, &error), 0, "%s", error.message);
    cr_expect_str_eq(got.uuid, UUID_A);
    cr_expect_str_eq(got.name, "web");
    cr_expect_str_eq(got.persistent_xml, domain.persistent_xml);
    cr_expect_str_eq(got.live_xml, domain.live_xml);
    cr_expect_eq(got.state, STORE_DOMAIN_RUNNING);
    cr_expect_eq(got.pid, 4242);
    cr_expect_eq(got.pid_start_time, 123456789012ULL);
    cr_expect_str_eq(got.qmp_path, domain.qmp_path);
    cr_expect(got.autostart);
    cr_expect(got.persistent);
    store_domain_clear(&got);
    store_close(store);
}

Test(store, missing_state_directory_is_named)
{
    struct pv_error error = {0};
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/does-not-exist", state_dir);
    cr_assert_null(store_open(missing, &error));
    cr_expect_eq(error.code, -ENOENT);
    cr_expect_not_null(strstr(error.message, missing), "%s", error.message);
}

Test(store, unwritable_file_is_refused_with_its_path)
{
    if (geteuid() == 0) {
        teardown(); /* Criterion runs no .fini for a skipped test */
        cr_skip_test("root ignores file permissions");
    }
    int fd = open(db_path, O_CREAT | O_WRONLY, 0400);
    cr_assert_geq(fd, 0);
    close(fd);
    struct pv_error error = {0};
    cr_assert_null(store_open(state_dir, &error));
    cr_expect_eq(error.code, -EACCES);
    cr_expect_not_null(strstr(error.message, db_path), "%s", error.message);
    cr_expect_not_null(strstr(error.message, "access"), "%s", error.message);
}

/* --- domains ---------------------------------------------------------------- */

Test(store, domain_put_get_list_delete)
{
    struct store *store = open_or_fail();
    put_or_fail(store, UUID_B, "zeta");
    put_or_fail(store, UUID_A, "alpha");
    put_or_fail(store, UUID_C, "mid");

    struct pv_error error = {0};
    struct store_domain got;
    cr_assert_eq(store_domain_get(store, UUID_C, &got, &error), 0, "%s", error.message);
    cr_expect_str_eq(got.name, "mid");
    store_domain_clear(&got);
    /* UUIDs compare without case, as libvirt parses them. */
    char upper[37];
    for (size_t i = 0; i < sizeof(upper); i++)
        upper[i] = (char)toupper((unsigned char)UUID_C[i]);
    cr_assert_eq(store_domain_get(store, upper, &got, &error), 0, "%s", error.message);
    cr_expect_str_eq(got.name, "mid");
    store_domain_clear(&got);

    struct store_domain *domains;
    size_t count;
    cr_assert_eq(store_domain_list(store, &domains, &count, &error), 0, "%s", error.message);
    cr_assert_eq(count, 3);
    cr_expect_str_eq(domains[0].name, "alpha");
    cr_expect_str_eq(domains[1].name, "mid");
    cr_expect_str_eq(domains[2].name, "zeta");
    cr_expect_str_eq(domains[2].uuid, UUID_B);
    store_domain_list_free(domains, count);

    cr_assert_eq(store_domain_delete(store, UUID_C, &error), 0, "%s", error.message);
    cr_expect_eq(store_domain_get(store, "mid", &got, &error), -ENOENT);
    cr_expect_str_eq(error.message, "domain 'mid' not found");
    cr_expect_null(got.name, "the output is left cleared");
    cr_expect_eq(store_domain_delete(store, UUID_C, &error), -ENOENT);
    cr_assert_eq(store_domain_list(store, &domains, &count, &error), 0, "%s", error.message);
    cr_expect_eq(count, 2);
    store_domain_list_free(domains, count);
    store_close(store);
}

Test(store, empty_list)
{
    struct store *store = open_or_fail();
    struct store_domain *domains = (void *)1;
    size_t count = 99;
    cr_assert_eq(store_domain_list(store, &domains, &count, NULL), 0);
    cr_expect_eq(count, 0);
    cr_expect_null(domains);
    store_close(store);
}

Test(store, put_replaces_the_row_of_the_same_uuid)
{
    struct store *store = open_or_fail();
    put_or_fail(store, UUID_A, "web");
    struct store_device device = {.domain_uuid = UUID_A,
                                  .kind = "disk",
                                  .key = "vdb",
                                  .pci_slot = 5,
                                  .state = STORE_DEVICE_ATTACHED};
    struct pv_error error = {0};
    cr_assert_eq(store_device_put(store, &device, &error), 0, "%s", error.message);

    struct store_domain domain;
    domain_fill(&domain, UUID_A, "web-renamed");
    domain.persistent_xml = NULL;
    domain.persistent = false;
    cr_assert_eq(store_domain_put(store, &domain, &error), 0, "%s", error.message);
    struct store_domain got;
    cr_assert_eq(store_domain_get(store, UUID_A, &got, &error), 0, "%s", error.message);
    cr_expect_str_eq(got.name, "web-renamed");
    cr_expect_null(got.persistent_xml);
    cr_expect_not(got.persistent);
    store_domain_clear(&got);
    cr_expect_eq(store_domain_get(store, "web", &got, &error), -ENOENT);

    struct store_device *devices;
    size_t count;
    cr_assert_eq(store_device_list(store, UUID_A, &devices, &count, &error), 0);
    cr_expect_eq(count, 1, "replacing a domain keeps its devices");
    store_device_list_free(devices, count);
    store_close(store);
}

Test(store, names_and_uuids_are_unique)
{
    struct store *store = open_or_fail();
    put_or_fail(store, UUID_A, "web");
    struct store_domain domain;
    struct pv_error error = {0};

    domain_fill(&domain, UUID_B, "web");
    cr_expect_eq(store_domain_put(store, &domain, &error), -EEXIST);
    cr_expect_str_eq(error.message, "domain 'web' already exists");
    cr_expect_eq(store_domain_add(store, &domain, &error), -EEXIST);
    cr_expect_str_eq(error.message, "domain 'web' already exists");

    domain_fill(&domain, UUID_A, "other");
    cr_expect_eq(store_domain_add(store, &domain, &error), -EEXIST);
    cr_expect_str_eq(error.message, "domain 'web' already exists with uuid " UUID_A);

    /* Nothing of the refused writes stays behind, and the store is still usable. */
    struct store_domain *domains;
    size_t count;
    cr_assert_eq(store_domain_list(store, &domains, &count, &error), 0);
    cr_assert_eq(count, 1);
    cr_expect_str_eq(domains[0].name, "web");
    cr_expect_str_eq(domains[0].uuid, UUID_A);
    store_domain_list_free(domains, count);
    domain_fill(&domain, UUID_B, "db");
    cr_expect_eq(store_domain_add(store, &domain, &error), 0, "%s", error.message);
    store_close(store);
}

Test(store, a_name_that_looks_like_a_uuid)
{
    struct store *store = open_or_fail();
    put_or_fail(store, UUID_A, UUID_B); /* legal, if unwise */
    put_or_fail(store, UUID_B, "real-b");
    struct store_domain got;
    cr_assert_eq(store_domain_get(store, UUID_B, &got, NULL), 0);
    cr_expect_str_eq(got.name, "real-b", "a uuid match wins over a name match");
    store_domain_clear(&got);
    store_close(store);
}

Test(store, invalid_domains_are_refused)
{
    struct store *store = open_or_fail();
    struct store_domain domain;
    struct pv_error error = {0};
    domain_fill(&domain, "not-a-uuid", "web");
    cr_expect_eq(store_domain_put(store, &domain, &error), -EINVAL);
    cr_expect_not_null(strstr(error.message, "not-a-uuid"), "%s", error.message);
    domain_fill(&domain, UUID_A, "");
    cr_expect_eq(store_domain_put(store, &domain, &error), -EINVAL);
    domain_fill(&domain, UUID_A, "web");
    domain.state = (enum store_domain_state)42;
    cr_expect_eq(store_domain_put(store, &domain, &error), -EINVAL);
    cr_expect_eq(store_domain_get(store, "", &domain, &error), -EINVAL);
    store_close(store);
}

Test(store, state_updates)
{
    struct store *store = open_or_fail();
    put_or_fail(store, UUID_A, "web");
    struct pv_error error = {0};
    cr_assert_eq(store_domain_set_state(store, UUID_A, STORE_DOMAIN_RUNNING, 777, 99, &error), 0,
                 "%s", error.message);
    struct store_domain got;
    cr_assert_eq(store_domain_get(store, "web", &got, &error), 0);
    cr_expect_eq(got.state, STORE_DOMAIN_RUNNING);
    cr_expect_eq(got.pid, 777);
    cr_expect_eq(got.pid_start_time, 99);
    cr_expect_str_eq(got.persistent_xml, "<domain type='kvm'><name>x</name></domain>",
                     "set_state leaves the rest alone");
    store_domain_clear(&got);

    cr_assert_eq(store_domain_set_state(store, UUID_A, STORE_DOMAIN_CRASHED, 0, 0, &error), 0);
    cr_assert_eq(store_domain_get(store, "web", &got, &error), 0);
    cr_expect_eq(got.state, STORE_DOMAIN_CRASHED);
    cr_expect_eq(got.pid, 0);
    store_domain_clear(&got);

    cr_expect_eq(store_domain_set_state(store, UUID_B, STORE_DOMAIN_RUNNING, 1, 1, &error),
                 -ENOENT);
    cr_expect_str_eq(error.message, "domain '" UUID_B "' not found");
    cr_expect_eq(store_domain_set_state(store, UUID_A, (enum store_domain_state)9, 1, 1, &error),
                 -EINVAL);
    store_close(store);
}

Test(store, state_names_are_virsh_words)
{
    cr_expect_str_eq(store_domain_state_name(STORE_DOMAIN_SHUTOFF), "shut off");
    cr_expect_str_eq(store_domain_state_name(STORE_DOMAIN_RUNNING), "running");
    cr_expect_str_eq(store_domain_state_name(STORE_DOMAIN_PAUSED), "paused");
    cr_expect_str_eq(store_domain_state_name(STORE_DOMAIN_SHUTDOWN), "in shutdown");
    cr_expect_str_eq(store_domain_state_name(STORE_DOMAIN_CRASHED), "crashed");
}

/* --- devices ---------------------------------------------------------------- */

Test(store, devices_per_domain_with_states)
{
    struct store *store = open_or_fail();
    put_or_fail(store, UUID_A, "web");
    put_or_fail(store, UUID_B, "db");
    struct pv_error error = {0};
    struct store_device vdc = {.domain_uuid = UUID_A,
                               .kind = "disk",
                               .key = "vdc",
                               .alias = "virtio-disk2",
                               .pci_slot = 6,
                               .state = STORE_DEVICE_ATTACHING,
                               .xml = "<disk type='file'><target dev='vdc'/></disk>",
                               .data_json = "{\"nodes\": [\"file-vdc\", \"fmt-vdc\"]}"};
    struct store_device vdb = vdc;
    vdb.key = "vdb";
    vdb.alias = "virtio-disk1";
    vdb.pci_slot = 5;
    vdb.state = STORE_DEVICE_ATTACHED;
    struct store_device other = vdb;
    snprintf(other.domain_uuid, sizeof(other.domain_uuid), "%s", UUID_B);
    cr_assert_eq(store_device_put(store, &vdc, &error), 0, "%s", error.message);
    cr_assert_eq(store_device_put(store, &vdb, &error), 0, "%s", error.message);
    cr_assert_eq(store_device_put(store, &other, &error), 0, "%s", error.message);

    struct store_device *devices;
    size_t count;
    cr_assert_eq(store_device_list(store, UUID_A, &devices, &count, &error), 0, "%s",
                 error.message);
    cr_assert_eq(count, 2);
    cr_expect_str_eq(devices[0].key, "vdb");
    cr_expect_eq(devices[0].state, STORE_DEVICE_ATTACHED);
    cr_expect_eq(devices[0].pci_slot, 5);
    cr_expect_str_eq(devices[1].key, "vdc");
    cr_expect_eq(devices[1].state, STORE_DEVICE_ATTACHING);
    cr_expect_str_eq(devices[1].alias, "virtio-disk2");
    cr_expect_str_eq(devices[1].kind, "disk");
    cr_expect_str_eq(devices[1].xml, vdc.xml);
    cr_expect_str_eq(devices[1].data_json, vdc.data_json);
    cr_expect_str_eq(devices[1].domain_uuid, UUID_A);
    store_device_list_free(devices, count);

    cr_assert_eq(store_device_set_state(store, UUID_A, "vdc", STORE_DEVICE_DETACHING, &error), 0,
                 "%s", error.message);
    struct store_device got;
    cr_assert_eq(store_device_get(store, UUID_A, "vdc", &got, &error), 0, "%s", error.message);
    cr_expect_eq(got.state, STORE_DEVICE_DETACHING);
    store_device_clear(&got);
    /* put replaces the device of the same key */
    vdc.state = STORE_DEVICE_ATTACHED;
    vdc.alias = NULL;
    cr_assert_eq(store_device_put(store, &vdc, &error), 0, "%s", error.message);
    cr_assert_eq(store_device_get(store, UUID_A, "vdc", &got, &error), 0, "%s", error.message);
    cr_expect_eq(got.state, STORE_DEVICE_ATTACHED);
    cr_expect_null(got.alias);
    store_device_clear(&got);

    cr_assert_eq(store_device_delete(store, UUID_A, "vdc", &error), 0, "%s", error.message);
    cr_expect_eq(store_device_get(store, UUID_A, "vdc", &got, &error), -ENOENT);
    cr_expect_eq(store_device_delete(store, UUID_A, "vdc", &error), -ENOENT);
    cr_expect_eq(store_device_set_state(store, UUID_A, "vdc", STORE_DEVICE_ATTACHED, &error),
                 -ENOENT);

    cr_assert_eq(store_device_delete_all(store, UUID_A, &error), 0, "%s", error.message);
    cr_assert_eq(store_device_list(store, UUID_A, &devices, &count, &error), 0);
    cr_expect_eq(count, 0);
    store_device_list_free(devices, count);
    cr_assert_eq(store_device_list(store, UUID_B, &devices, &count, &error), 0);
    cr_expect_eq(count, 1, "the other domain's device is untouched");
    store_device_list_free(devices, count);

    /* A device of an unknown domain is refused; deleting a domain deletes its devices. */
    struct store_device orphan = vdb;
    snprintf(orphan.domain_uuid, sizeof(orphan.domain_uuid), "%s", UUID_C);
    cr_expect_eq(store_device_put(store, &orphan, &error), -ENOENT);
    cr_expect_str_eq(error.message, "domain '" UUID_C "' not found");
    cr_assert_eq(store_domain_delete(store, UUID_B, &error), 0, "%s", error.message);
    cr_expect_eq(raw_integer("SELECT count(*) FROM devices"), 0);
    store_close(store);
}

/* --- job journal ------------------------------------------------------------ */

Test(store, job_journal)
{
    struct store *store = open_or_fail();
    put_or_fail(store, UUID_A, "web");
    struct pv_error error = {0};
    int64_t first, second;
    cr_assert_eq(store_job_begin(store, UUID_A, "attach-disk", "vdb", "{\"source\": \"/a.img\"}",
                                 &first, &error),
                 0, "%s", error.message);
    cr_assert_eq(store_job_begin(store, UUID_A, "detach-disk", "vdc", NULL, &second, &error), 0,
                 "%s", error.message);
    cr_expect_gt(second, first);
    cr_assert_eq(store_job_step(store, first, 1, NULL, &error), 0, "%s", error.message);
    cr_assert_eq(store_job_step(store, first, 2, "{\"node\": \"fmt-vdb\"}", &error), 0, "%s",
                 error.message);
    cr_assert_eq(store_job_step(store, second, 1, NULL, &error), 0, "%s", error.message);

    struct store_job *jobs;
    size_t count;
    cr_assert_eq(store_job_list_unfinished(store, &jobs, &count, &error), 0, "%s", error.message);
    cr_assert_eq(count, 2);
    cr_expect_eq(jobs[0].id, first);
    cr_expect_str_eq(jobs[0].kind, "attach-disk");
    cr_expect_str_eq(jobs[0].device_key, "vdb");
    cr_expect_str_eq(jobs[0].domain_uuid, UUID_A);
    cr_expect_eq(jobs[0].step, 2);
    cr_expect_str_eq(jobs[0].data_json, "{\"node\": \"fmt-vdb\"}");
    cr_expect_eq(jobs[0].status, STORE_JOB_RUNNING);
    cr_expect_eq(jobs[1].id, second);
    cr_expect_null(jobs[1].data_json);
    store_job_list_free(jobs, count);

    cr_assert_eq(store_job_finish(store, first, STORE_JOB_DONE, &error), 0, "%s", error.message);
    cr_expect_eq(store_job_step(store, first, 3, NULL, &error), -EINVAL);
    cr_expect_not_null(strstr(error.message, "no longer running"), "%s", error.message);
    cr_expect_eq(store_job_finish(store, first, STORE_JOB_FAILED, &error), -EINVAL);
    cr_expect_eq(store_job_step(store, 9999, 1, NULL, &error), -ENOENT);
    cr_expect_str_eq(error.message, "job 9999 not found");
    cr_expect_eq(store_job_finish(store, second, STORE_JOB_RUNNING, &error), -EINVAL);
    cr_assert_eq(store_job_finish(store, second, STORE_JOB_ROLLED_BACK, &error), 0);
    cr_assert_eq(store_job_list_unfinished(store, &jobs, &count, &error), 0);
    cr_expect_eq(count, 0);
    store_job_list_free(jobs, count);
    cr_expect_eq(raw_integer("SELECT count(*) FROM jobs WHERE status = 'rolled-back'"), 1);

    int64_t orphan;
    cr_expect_eq(store_job_begin(store, UUID_B, "attach-disk", "vdb", NULL, &orphan, &error),
                 -ENOENT);
    cr_expect_eq(orphan, 0);

    /* prune keeps the running jobs and the newest finished ones */
    int64_t running;
    cr_assert_eq(store_job_begin(store, UUID_A, "attach-disk", "vdd", NULL, &running, &error), 0);
    cr_assert_eq(store_job_prune(store, 1, &error), 0, "%s", error.message);
    cr_expect_eq(raw_integer("SELECT count(*) FROM jobs"), 2);
    cr_expect_eq(raw_integer("SELECT count(*) FROM jobs WHERE status = 'running'"), 1);
    cr_expect_eq(raw_integer("SELECT count(*) FROM jobs WHERE status = 'rolled-back'"), 1);
    store_close(store);
}

Test(store, interrupted_job_is_listed_after_reopen)
{
    struct store *store = open_or_fail();
    put_or_fail(store, UUID_A, "web");
    struct pv_error error = {0};
    int64_t id;
    cr_assert_eq(store_job_begin(store, UUID_A, "attach-disk", "vdb", NULL, &id, &error), 0);
    cr_assert_eq(store_job_step(store, id, 1, "{\"step\": \"blockdev-add file\"}", &error), 0);
    store_close(store); /* no finish */

    store = open_or_fail();
    struct store_job *jobs;
    size_t count;
    cr_assert_eq(store_job_list_unfinished(store, &jobs, &count, &error), 0, "%s", error.message);
    cr_assert_eq(count, 1);
    cr_expect_eq(jobs[0].id, id);
    cr_expect_eq(jobs[0].step, 1);
    cr_expect_str_eq(jobs[0].data_json, "{\"step\": \"blockdev-add file\"}");
    store_job_list_free(jobs, count);
    store_close(store);
}

/* What the daemon must survive: SIGKILL right after a journal write, nothing closed. */
Test(store, job_survives_sigkill_of_the_writer)
{
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        struct store *store = store_open(state_dir, NULL);
        if (!store)
            _exit(1);
        struct store_domain domain;
        domain_fill(&domain, UUID_A, "web");
        int64_t id;
        if (store_domain_put(store, &domain, NULL) != 0 ||
            store_job_begin(store, UUID_A, "attach-disk", "vdb", NULL, &id, NULL) != 0 ||
            store_job_step(store, id, 2, "{\"sent\": \"device_add\"}", NULL) != 0)
            _exit(2);
        raise(SIGKILL);
        _exit(3);
    }
    int status;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %#x", status);

    struct store *store = open_or_fail();
    struct store_job *jobs;
    size_t count;
    cr_assert_eq(store_job_list_unfinished(store, &jobs, &count, NULL), 0);
    cr_assert_eq(count, 1);
    cr_expect_eq(jobs[0].step, 2);
    cr_expect_str_eq(jobs[0].data_json, "{\"sent\": \"device_add\"}");
    store_job_list_free(jobs, count);
    store_close(store);
}

/* --- event log -------------------------------------------------------------- */

Test(store, event_log)
{
    struct store *store = open_or_fail();
    struct pv_error error = {0};
    /* Wall-clock time: allow for clock steps (NTP) while the test runs. */
    double before = (double)time(NULL) - 300;
    cr_assert_eq(store_event_add(store, UUID_A, "lifecycle", "started", &error), 0, "%s",
                 error.message);
    cr_assert_eq(store_event_add(store, UUID_B, "lifecycle", "started", &error), 0);
    cr_assert_eq(store_event_add(store, UUID_A, "device-added", "vdb", &error), 0);
    cr_assert_eq(store_event_add(store, NULL, "daemon", NULL, &error), 0);
    cr_expect_eq(store_event_add(store, UUID_A, "", "x", &error), -EINVAL);

    struct store_event *events;
    size_t count;
    cr_assert_eq(store_event_list(store, NULL, 0, &events, &count, &error), 0, "%s", error.message);
    cr_assert_eq(count, 4);
    cr_expect_str_eq(events[0].type, "lifecycle");
    cr_expect_str_eq(events[0].detail, "started");
    cr_expect_str_eq(events[0].domain_uuid, UUID_A);
    cr_expect_geq(events[0].time, before);
    cr_expect_leq(events[0].time, (double)time(NULL) + 300);
    cr_expect_str_eq(events[3].domain_uuid, "");
    cr_expect_null(events[3].detail);
    for (size_t i = 1; i < count; i++)
        cr_expect_gt(events[i].id, events[i - 1].id);
    int64_t first_id = events[0].id;
    store_event_list_free(events, count);

    cr_assert_eq(store_event_list(store, UUID_A, 0, &events, &count, &error), 0);
    cr_assert_eq(count, 2);
    cr_expect_str_eq(events[1].type, "device-added");
    store_event_list_free(events, count);

    cr_assert_eq(store_event_list(store, UUID_A, first_id, &events, &count, &error), 0);
    cr_assert_eq(count, 1);
    cr_expect_str_eq(events[0].detail, "vdb");
    store_event_list_free(events, count);

    cr_assert_eq(store_event_prune(store, 2, &error), 0, "%s", error.message);
    cr_assert_eq(store_event_list(store, NULL, 0, &events, &count, &error), 0);
    cr_assert_eq(count, 2);
    cr_expect_str_eq(events[0].type, "device-added", "the newest events are kept");
    store_event_list_free(events, count);
    store_close(store);
}

/* --- transactions ----------------------------------------------------------- */

static int put_domain_and_device_then_fail(struct store *store, void *arg, struct pv_error *error)
{
    struct store_domain domain;
    domain_fill(&domain, UUID_A, "web");
    int code = store_domain_put(store, &domain, error);
    if (code)
        return code;
    struct store_device device = {
        .domain_uuid = UUID_A, .kind = "disk", .key = "vdb", .state = STORE_DEVICE_ATTACHED};
    code = store_device_put(store, &device, error);
    if (code)
        return code;
    code = store_event_add(store, UUID_A, "lifecycle", "defined", error);
    if (code)
        return code;
    bool *fail = arg;
    if (*fail)
        return pv_error_set(error, -EIO, "simulated failure after three writes");
    return 0;
}

Test(store, failed_transaction_leaves_nothing)
{
    struct store *store = open_or_fail();
    struct pv_error error = {0};
    bool fail = true;
    cr_expect_eq(store_transaction(store, put_domain_and_device_then_fail, &fail, &error), -EIO);
    cr_expect_str_eq(error.message, "simulated failure after three writes");
    cr_expect_eq(raw_integer("SELECT count(*) FROM domains"), 0);
    cr_expect_eq(raw_integer("SELECT count(*) FROM devices"), 0);
    cr_expect_eq(raw_integer("SELECT count(*) FROM events"), 0);

    fail = false;
    cr_assert_eq(store_transaction(store, put_domain_and_device_then_fail, &fail, &error), 0, "%s",
                 error.message);
    cr_expect_eq(raw_integer("SELECT count(*) FROM domains"), 1);
    cr_expect_eq(raw_integer("SELECT count(*) FROM devices"), 1);
    cr_expect_eq(raw_integer("SELECT count(*) FROM events"), 1);
    store_close(store);
}

/* A write that fails inside a transaction undoes only itself; the callback decides. */
static int add_twice_ignoring_the_conflict(struct store *store, void *arg, struct pv_error *error)
{
    struct store_domain domain;
    domain_fill(&domain, UUID_A, "web");
    int code = store_domain_add(store, &domain, error);
    if (code)
        return code;
    int *conflict = arg;
    *conflict = store_domain_add(store, &domain, error);
    domain_fill(&domain, UUID_B, "db");
    return store_domain_add(store, &domain, error);
}

static int nested(struct store *store, void *arg, struct pv_error *error)
{
    return store_transaction(store, add_twice_ignoring_the_conflict, arg, error);
}

Test(store, failed_write_inside_a_transaction)
{
    struct store *store = open_or_fail();
    struct pv_error error = {0};
    int conflict = 0;
    cr_assert_eq(store_transaction(store, nested, &conflict, &error), 0, "%s", error.message);
    cr_expect_eq(conflict, -EEXIST);
    cr_expect_eq(raw_integer("SELECT count(*) FROM domains"), 2);
    store_close(store);
}

static int positive_return(struct store *store, void *arg, struct pv_error *error)
{
    put_or_fail(store, UUID_C, "c");
    return 1;
}

Test(store, callback_must_return_an_errno)
{
    struct store *store = open_or_fail();
    struct pv_error error = {0};
    cr_expect_eq(store_transaction(store, positive_return, NULL, &error), -EINVAL);
    cr_expect_eq(raw_integer("SELECT count(*) FROM domains"), 0);
    store_close(store);
}

/* --- migrations ------------------------------------------------------------- */

Test(store, empty_v0_file_is_migrated)
{
    int fd = open(db_path, O_CREAT | O_WRONLY, 0600);
    cr_assert_geq(fd, 0);
    close(fd);
    struct store *store = open_or_fail();
    cr_expect_eq(store_schema_version(store), 1);
    put_or_fail(store, UUID_A, "web");
    store_close(store);
    cr_expect_eq(raw_integer("PRAGMA user_version"), 1);
}

/* A v1 file as an older plugvirtd wrote it, with a v2 that adds a column. */
static const struct store_migration *migrations_v2(size_t *count, const char *v2_sql)
{
    static struct store_migration list[8];
    size_t builtin_count;
    const struct store_migration *builtin = store_builtin_migrations(&builtin_count);
    cr_assert_eq(builtin_count, 1, "extend this test when v2 becomes real");
    memcpy(list, builtin, sizeof(*builtin) * builtin_count);
    list[builtin_count] = (struct store_migration){2, "domain titles", v2_sql};
    *count = builtin_count + 1;
    return list;
}

Test(store, older_file_is_migrated)
{
    struct store *store = open_or_fail();
    put_or_fail(store, UUID_A, "web");
    store_close(store);
    cr_assert_eq(raw_integer("PRAGMA user_version"), 1);

    size_t count;
    const struct store_migration *list = migrations_v2(
        &count, "ALTER TABLE domains ADD COLUMN title TEXT; UPDATE domains SET title = name");
    struct pv_error error = {0};
    store = store_open_with_migrations(state_dir, list, count, &error);
    cr_assert_not_null(store, "%s", error.message);
    cr_expect_eq(store_schema_version(store), 2);
    struct store_domain got;
    cr_assert_eq(store_domain_get(store, "web", &got, &error), 0, "%s", error.message);
    store_domain_clear(&got);
    store_close(store);
    cr_expect_eq(raw_integer("PRAGMA user_version"), 2);
    cr_expect_eq(raw_integer("SELECT count(*) FROM domains WHERE title = 'web'"), 1);

    /* Opening again applies nothing twice. */
    store = store_open_with_migrations(state_dir, list, count, &error);
    cr_assert_not_null(store, "%s", error.message);
    store_close(store);
}

Test(store, failed_migration_changes_nothing)
{
    struct store *store = open_or_fail();
    put_or_fail(store, UUID_A, "web");
    store_close(store);
    size_t count;
    const struct store_migration *list = migrations_v2(
        &count, "CREATE TABLE titles (name TEXT); INSERT INTO no_such_table VALUES (1)");
    struct pv_error error = {0};
    cr_assert_null(store_open_with_migrations(state_dir, list, count, &error));
    cr_expect_not_null(strstr(error.message, "from schema version 1 to 2"), "%s", error.message);
    cr_expect_not_null(strstr(error.message, db_path), "%s", error.message);
    cr_expect_not_null(strstr(error.message, "no_such_table"), "%s", error.message);
    cr_expect_eq(raw_integer("PRAGMA user_version"), 1);
    cr_expect_eq(raw_integer("SELECT count(*) FROM sqlite_schema WHERE name = 'titles'"), 0);
    store = open_or_fail(); /* the current plugvirtd still opens it */
    store_close(store);
}

Test(store, hand_made_v1_file_keeps_its_rows)
{
    /* Written without the store, as a v1 plugvirtd left it (rollback journal, not WAL). */
    size_t count;
    const struct store_migration *builtin = store_builtin_migrations(&count);
    raw_exec(builtin[0].sql);
    raw_exec("PRAGMA user_version = 1;"
             "INSERT INTO domains (uuid, name, state, updated_at) VALUES ('" UUID_A
             "', 'old', 'paused', 0)");
    struct store *store = open_or_fail();
    struct store_domain got;
    cr_assert_eq(store_domain_get(store, "old", &got, NULL), 0);
    cr_expect_eq(got.state, STORE_DOMAIN_PAUSED);
    store_domain_clear(&got);
    store_close(store);
}

Test(store, newer_version_is_refused)
{
    raw_exec("CREATE TABLE future (x); PRAGMA user_version = 99");
    struct pv_error error = {0};
    cr_assert_null(store_open(state_dir, &error));
    cr_expect_eq(error.code, -ENOTSUP);
    cr_expect_not_null(strstr(error.message, "schema version 99"), "%s", error.message);
    cr_expect_not_null(strstr(error.message, "newer plugvirt"), "%s", error.message);
    cr_expect_not_null(strstr(error.message, db_path), "%s", error.message);
    cr_expect_eq(raw_integer("PRAGMA user_version"), 99, "the file is left alone");
}

/* --- damaged files ---------------------------------------------------------- */

Test(store, garbage_file_gives_a_clear_error)
{
    FILE *file = fopen(db_path, "w");
    cr_assert_not_null(file);
    for (int i = 0; i < 512; i++)
        fputs("this is not a database. ", file);
    fclose(file);
    struct pv_error error = {0};
    cr_assert_null(store_open(state_dir, &error));
    cr_expect_eq(error.code, -EUCLEAN);
    cr_expect_not_null(strstr(error.message, db_path), "%s", error.message);
    cr_expect_not_null(strstr(error.message, "not a SQLite database"), "%s", error.message);
}

Test(store, damaged_pages_give_a_clear_error)
{
    struct store *store = open_or_fail();
    char name[32];
    for (int i = 0; i < 200; i++) {
        char uuid[37];
        snprintf(uuid, sizeof(uuid), "8f0c6a52-3d0e-4c1b-9a4e-%012d", i);
        snprintf(name, sizeof(name), "domain-%d", i);
        put_or_fail(store, uuid, name);
    }
    store_close(store); /* checkpoints the WAL into the main file */
    cr_assert_not(file_exists("-wal"));

    /* Overwrite everything but the header page. */
    int fd = open(db_path, O_WRONLY);
    cr_assert_geq(fd, 0);
    struct stat status;
    cr_assert_eq(fstat(fd, &status), 0);
    char junk[4096];
    memset(junk, 0x5a, sizeof(junk));
    for (off_t offset = 4096; offset < status.st_size; offset += (off_t)sizeof(junk))
        cr_assert_eq(pwrite(fd, junk, sizeof(junk), offset), (ssize_t)sizeof(junk));
    close(fd);

    struct pv_error error = {0};
    cr_assert_null(store_open(state_dir, &error));
    cr_expect_eq(error.code, -EUCLEAN, "%d: %s", error.code, error.message);
    cr_expect_not_null(strstr(error.message, db_path), "%s", error.message);
    cr_expect_not_null(strstr(error.message, "corrupt"), "%s", error.message);
}

/* plugvirtd end to end: a real daemon in a private directory, real plugvirt-vmm processes
 * running the probe guest, requests through lib/api_client. Nothing is mocked. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "json_util.h"
#include "store.h"

static struct daemon_process daemon_under_test;

static void setup(void)
{
    memset(&daemon_under_test, 0, sizeof(daemon_under_test));
    int rc = daemon_start(&daemon_under_test);
    if (rc < 0) {
        char command[700];
        snprintf(command, sizeof(command), "cat %s >&2", daemon_under_test.log_path);
        if (system(command) < 0)
            perror("cat");
    }
    cr_assert_eq(rc, 0, "plugvirtd did not start: %s", strerror(-rc));
}

static void teardown(void)
{
    daemon_cleanup(&daemon_under_test);
}

TestSuite(daemon, .init = setup, .fini = teardown, .timeout = 120);

static struct daemon_process *const daemon_p = &daemon_under_test;

/* A process that exited but was not reaped yet (a reparented VMM) counts as gone. */
static bool process_alive(pid_t pid)
{
    char path[64], text[512] = "";
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return false;
    size_t length = fread(text, 1, sizeof(text) - 1, file);
    fclose(file);
    text[length] = '\0';
    const char *end = strrchr(text, ')');
    return end && end[1] == ' ' && end[2] != 'Z' && end[2] != 'X';
}

/* {"xml": "<escaped xml>"} plus an optional extra member text. */
static void define_domain(const char *name, const char *uuid, const char *cmdline,
                          const char *disks_xml)
{
    char *xml = daemon_domain_xml(name, uuid, cmdline, disks_xml);
    char *params = daemon_xml_params(NULL, xml, NULL);
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.define", params, &reply);
    cr_assert_str_eq(json_get_string(reply.result, "name"), name);
    api_reply_free(&reply);
    free(params);
    free(xml);
}

static void start_and_wait_ready(const char *name)
{
    daemon_call_simple(daemon_p, "domain.start", name);
    daemon_wait_booted(daemon_p, name);
}

/* The probe guest's line for a virtio-blk it found: "PROBE PCI ADD <bdf> 1af4:<id> virtio-blk
 * sectors=<n> serial=<text>". The id is the VMM's: plugvirt-vmm's device is modern (1042),
 * QEMU's virtio-blk-pci transitional (1001); both are a virtio-blk. */
struct disk_line {
    char bdf[16];
    unsigned long sectors;
    char serial[128];
};

static bool parse_disk_line(const char *line, struct disk_line *disk)
{
    unsigned vendor = 0, device = 0;
    int serial_at = -1;
    memset(disk, 0, sizeof(*disk));
    if (sscanf(line, "PROBE PCI ADD %15s %4x:%4x virtio-blk sectors=%lu serial=%n", disk->bdf,
               &vendor, &device, &disk->sectors, &serial_at) < 4 ||
        serial_at < 0)
        return false;
    snprintf(disk->serial, sizeof(disk->serial), "%s", line + serial_at);
    return vendor == 0x1af4 && (device == 0x1042 || device == 0x1001);
}

/* Waits for the guest's complete ADD line for `bdf` and checks it is a virtio-blk. */
static void wait_disk_added(const char *name, const char *bdf, int timeout_ms,
                            struct disk_line *disk)
{
    char prefix[64], line[1024];
    snprintf(prefix, sizeof(prefix), "PROBE PCI ADD %s ", bdf);
    cr_assert_eq(daemon_wait_serial_line(daemon_p, name, prefix, timeout_ms, line, sizeof(line)), 0,
                 "the guest of %s did not see a device at %s", name, bdf);
    struct disk_line parsed;
    cr_assert(parse_disk_line(line, disk ? disk : &parsed), "%s: not a virtio-blk: %s", name, line);
}

Test(daemon, ping_and_version)
{
    struct api_reply reply;
    daemon_call_ok(daemon_p, "daemon.ping", NULL, &reply);
    cr_assert_not_null(json_get_string(reply.result, "version"));
    api_reply_free(&reply);
    daemon_expect_error(daemon_p, "no.such.method", NULL, "invalid-argument", "unknown method");
}

Test(daemon, define_start_list_dumpxml_destroy_undefine)
{
    const char *image = daemon_make_image(daemon_p, "root.img", 16);
    char *disk = daemon_disk_xml(image, "vda", NULL);
    define_domain("life", NULL, NULL, disk);
    free(disk);

    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.list", "{}", &reply);
    cr_assert_eq(YAJL_GET_ARRAY(reply.result)->len, 0, "list without --all shows active only");
    api_reply_free(&reply);
    daemon_call_ok(daemon_p, "domain.list", "{\"all\": true}", &reply);
    cr_assert_eq(YAJL_GET_ARRAY(reply.result)->len, 1);
    yajl_val entry = YAJL_GET_ARRAY(reply.result)->values[0];
    cr_assert_str_eq(json_get_string(entry, "state"), "shut off");
    api_reply_free(&reply);

    /* The PCI slot is allocated at define time and kept in the persistent XML. */
    daemon_call_ok(daemon_p, "domain.xml", "{\"domain\": \"life\", \"inactive\": true}", &reply);
    cr_assert(strstr(json_get_string(reply.result, "xml"), "slot='0x03'") != NULL);
    api_reply_free(&reply);

    start_and_wait_ready("life");
    daemon_call_ok(daemon_p, "domain.list", "{}", &reply);
    cr_assert_eq(YAJL_GET_ARRAY(reply.result)->len, 1);
    entry = YAJL_GET_ARRAY(reply.result)->values[0];
    cr_assert_str_eq(json_get_string(entry, "state"), "running");
    int64_t id = 0;
    cr_assert(json_get_int64(entry, "id", &id));
    cr_assert_eq((pid_t)id, daemon_vmm_pid(daemon_p, "life"));
    api_reply_free(&reply);

    daemon_call_ok(daemon_p, "domain.xml", "{\"domain\": \"life\"}", &reply);
    const char *live = json_get_string(reply.result, "xml");
    cr_assert(strstr(live, "<alias name='virtio-disk0'/>") != NULL, "%s", live);
    api_reply_free(&reply);

    daemon_call_ok(daemon_p, "domain.info", "{\"domain\": \"life\"}", &reply);
    uint64_t memory = 0;
    cr_assert(json_get_uint64(reply.result, "max_memory_kib", &memory));
    cr_assert_eq(memory, 131072);
    api_reply_free(&reply);

    daemon_expect_error(daemon_p, "domain.start", "{\"domain\": \"life\"}", "already-running",
                        NULL);
    daemon_expect_error(daemon_p, "domain.undefine", "{\"domain\": \"life\"}", "already-running",
                        NULL);
    daemon_call_simple(daemon_p, "domain.suspend", "life");
    cr_assert_eq(daemon_wait_state(daemon_p, "life", "paused", 5000), 0);
    daemon_call_simple(daemon_p, "domain.resume", "life");
    cr_assert_eq(daemon_wait_state(daemon_p, "life", "running", 5000), 0);

    daemon_call_simple(daemon_p, "domain.destroy", "life");
    daemon_call_ok(daemon_p, "domain.state", "{\"domain\": \"life\"}", &reply);
    cr_assert_str_eq(json_get_string(reply.result, "state"), "shut off");
    cr_assert_str_eq(json_get_string(reply.result, "reason"), "destroyed");
    api_reply_free(&reply);
    daemon_expect_error(daemon_p, "domain.destroy", "{\"domain\": \"life\"}", "not-running",
                        "not running");

    daemon_call_simple(daemon_p, "domain.undefine", "life");
    daemon_expect_error(daemon_p, "domain.info", "{\"domain\": \"life\"}", "no-domain", NULL);
}

Test(daemon, shutdown_through_acpi_waits_for_the_vmm)
{
    define_domain("acpi", NULL, NULL, NULL);
    start_and_wait_ready("acpi");
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.shutdown", "{\"domain\": \"acpi\", \"timeout\": 20}", &reply);
    api_reply_free(&reply);
    daemon_call_ok(daemon_p, "domain.state", "{\"domain\": \"acpi\"}", &reply);
    cr_assert_str_eq(json_get_string(reply.result, "state"), "shut off");
    cr_assert_str_eq(json_get_string(reply.result, "reason"), "shutdown");
    api_reply_free(&reply);
}

Test(daemon, malformed_xml_and_schema_errors_name_the_line)
{
    char *params =
        daemon_xml_params(NULL, "<domain type='kvm'>\n  <name>x</name>\n  <oops>\n</domain>", NULL);
    daemon_expect_error(daemon_p, "domain.define", params, "invalid-xml", "line");
    free(params);
    /* Well-formed, but <vcpu> must be a number: a schema error. */
    params = daemon_xml_params(NULL,
                               "<domain type='kvm'>\n  <name>bad</name>\n"
                               "  <memory unit='MiB'>64</memory>\n  <vcpu>many</vcpu>\n"
                               "  <os><type>hvm</type></os>\n</domain>\n",
                               NULL);
    daemon_expect_error(daemon_p, "domain.define", params, "invalid-xml", "line");
    free(params);
    daemon_expect_error(daemon_p, "domain.define", "{}", "invalid-xml", NULL);
    daemon_expect_error(daemon_p, "domain.start", "{\"domain\": \"ghost\"}", "no-domain", "ghost");
    daemon_expect_error(daemon_p, "domain.xml",
                        "{\"domain\": \"00000000-0000-4000-8000-000000000000\"}", "no-domain",
                        NULL);
    daemon_expect_error(daemon_p, "domain.start", "{}", "invalid-argument", NULL);
}

Test(daemon, duplicate_names_and_uuids_are_refused)
{
    define_domain("dup", "6c1f3e0a-1111-4222-8333-944455556666", NULL, NULL);
    /* Same name and uuid: an update (libvirt's redefinition). */
    define_domain("dup", "6c1f3e0a-1111-4222-8333-944455556666", "console=ttyS0 x=1", NULL);
    char *xml = daemon_domain_xml("dup", "6c1f3e0a-1111-4222-8333-944455550000", NULL, NULL);
    char *params = daemon_xml_params(NULL, xml, NULL);
    daemon_expect_error(daemon_p, "domain.define", params, "domain-exists", "dup");
    free(params);
    free(xml);
    xml = daemon_domain_xml("other", "6c1f3e0a-1111-4222-8333-944455556666", NULL, NULL);
    params = daemon_xml_params(NULL, xml, NULL);
    daemon_expect_error(daemon_p, "domain.define", params, "domain-exists", "dup");
    free(params);
    free(xml);
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.list", "{\"all\": true}", &reply);
    cr_assert_eq(YAJL_GET_ARRAY(reply.result)->len, 1);
    api_reply_free(&reply);
}

Test(daemon, read_only_socket_refuses_changes)
{
    define_domain("ro", NULL, NULL, NULL);
    struct api_client *client = api_client_connect(daemon_p->read_only_socket_path, NULL);
    cr_assert_not_null(client);
    struct api_reply reply = {0};
    cr_assert_eq(api_client_call(client, "domain.list", "{\"all\": true}", 5000, &reply, NULL), 0);
    cr_assert_null(reply.error_code);
    api_reply_free(&reply);
    cr_assert_eq(
        api_client_call(client, "domain.start", "{\"domain\": \"ro\"}", 5000, &reply, NULL), 0);
    cr_assert_str_eq(reply.error_code, "permission-denied");
    api_reply_free(&reply);
    api_client_close(client);
    struct stat status;
    cr_assert_eq(stat(daemon_p->socket_path, &status), 0);
    cr_assert_eq(status.st_mode & 0777, 0600);
    cr_assert_eq(stat(daemon_p->read_only_socket_path, &status), 0);
    cr_assert_eq(status.st_mode & 0777, 0666);
}

Test(daemon, killed_vmm_marks_the_domain_crashed)
{
    define_domain("crash", NULL, NULL, NULL);
    struct api_client *events = api_client_connect(daemon_p->socket_path, NULL);
    cr_assert_not_null(events);
    struct api_reply reply = {0};
    cr_assert_eq(
        api_client_call(events, "events.subscribe", "{\"domain\": \"crash\"}", 5000, &reply, NULL),
        0);
    api_reply_free(&reply);
    start_and_wait_ready("crash");
    pid_t vmm = daemon_vmm_pid(daemon_p, "crash");
    cr_assert_gt(vmm, 0);
    cr_assert_eq(kill(vmm, SIGKILL), 0);
    cr_assert_eq(daemon_wait_state(daemon_p, "crash", "crashed", 5000), 0);
    /* The crash event carries the signal. */
    bool seen = false;
    for (int i = 0; i < 10 && !seen; i++) {
        yajl_val event = NULL;
        if (api_client_read_event(events, 5000, &event, NULL) < 0)
            break;
        const char *detail = json_get_string(event, "detail");
        seen = detail && strstr(detail, "crashed") && strstr(detail, "signal 9");
        yajl_tree_free(event);
    }
    cr_assert(seen, "no crash event with the exit status");
    api_client_close(events);
    /* It can be started again. */
    start_and_wait_ready("crash");
    daemon_call_simple(daemon_p, "domain.destroy", "crash");
}

Test(daemon, sigkill_of_the_daemon_leaves_vms_running_and_controllable)
{
    define_domain("survivor", NULL, NULL, NULL);
    start_and_wait_ready("survivor");
    pid_t vmm = daemon_vmm_pid(daemon_p, "survivor");
    cr_assert_gt(vmm, 0);
    cr_assert_eq(daemon_kill(daemon_p, SIGKILL, NULL), 0);
    cr_assert(process_alive(vmm), "the VMM died with the daemon");
    cr_assert_eq(daemon_start(daemon_p), 0);
    cr_assert_eq(daemon_wait_state(daemon_p, "survivor", "running", 5000), 0);
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.list", "{}", &reply);
    cr_assert_eq(YAJL_GET_ARRAY(reply.result)->len, 1);
    int64_t id = 0;
    cr_assert(json_get_int64(YAJL_GET_ARRAY(reply.result)->values[0], "id", &id));
    cr_assert_eq((pid_t)id, vmm);
    api_reply_free(&reply);
    /* Still controllable through the reconnected QMP socket. */
    daemon_call_simple(daemon_p, "domain.suspend", "survivor");
    cr_assert_eq(daemon_wait_state(daemon_p, "survivor", "paused", 5000), 0);
    daemon_call_simple(daemon_p, "domain.resume", "survivor");
    daemon_call_simple(daemon_p, "domain.destroy", "survivor");
    for (int i = 0; i < 100 && process_alive(vmm); i++)
        usleep(20000);
    cr_assert_not(process_alive(vmm));
}

Test(daemon, sigterm_exits_cleanly_and_leaves_vms_alone)
{
    define_domain("keep", NULL, NULL, NULL);
    start_and_wait_ready("keep");
    pid_t vmm = daemon_vmm_pid(daemon_p, "keep");
    int status = -1;
    cr_assert_eq(daemon_kill(daemon_p, SIGTERM, &status), 0);
    cr_assert_eq(status, 0);
    cr_assert(process_alive(vmm));
    cr_assert_neq(access(daemon_p->socket_path, F_OK), 0, "socket left behind");
    cr_assert_eq(daemon_start(daemon_p), 0);
    cr_assert_eq(daemon_wait_state(daemon_p, "keep", "running", 5000), 0);
    daemon_call_simple(daemon_p, "domain.destroy", "keep");
}

Test(daemon, vmm_gone_while_the_daemon_was_down_is_shut_off)
{
    define_domain("gone", NULL, NULL, NULL);
    start_and_wait_ready("gone");
    pid_t vmm = daemon_vmm_pid(daemon_p, "gone");
    cr_assert_eq(daemon_kill(daemon_p, SIGKILL, NULL), 0);
    cr_assert_eq(kill(vmm, SIGKILL), 0);
    /* SIGKILL is delivered asynchronously: wait until the VMM is gone (a zombie counts as
     * gone for the daemon too), not for a fixed time. */
    for (int i = 0; i < 500 && process_alive(vmm); i++)
        usleep(10000);
    cr_assert_not(process_alive(vmm), "the VMM survived SIGKILL");
    cr_assert_eq(daemon_start(daemon_p), 0);
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.state", "{\"domain\": \"gone\"}", &reply);
    cr_assert_str_eq(json_get_string(reply.result, "state"), "shut off");
    api_reply_free(&reply);
    start_and_wait_ready("gone");
    daemon_call_simple(daemon_p, "domain.destroy", "gone");
}

Test(daemon, attach_and_detach_disk_live_and_config)
{
    define_domain("hot", NULL, NULL, NULL);
    start_and_wait_ready("hot");
    const char *image = daemon_make_image(daemon_p, "data.img", 32);
    char *disk = daemon_disk_xml(image, "vdb", NULL);
    char *params = daemon_xml_params("hot", disk, "\"flags\": [\"live\", \"config\"]");
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.attach_device", params, &reply);
    cr_assert_str_eq(json_get_string(reply.result, "target"), "vdb");
    cr_assert_str_eq(json_get_string(reply.result, "device"), "virtio-disk1");
    cr_assert_str_eq(json_get_string(reply.result, "address"), "0000:00:03.0");
    api_reply_free(&reply);
    wait_disk_added("hot", "00:03.0", 10000, NULL);
    daemon_call_ok(daemon_p, "domain.blklist", "{\"domain\": \"hot\"}", &reply);
    cr_assert_eq(YAJL_GET_ARRAY(reply.result)->len, 1);
    api_reply_free(&reply);
    daemon_call_ok(daemon_p, "domain.blklist", "{\"domain\": \"hot\", \"inactive\": true}", &reply);
    cr_assert_eq(YAJL_GET_ARRAY(reply.result)->len, 1, "--config part missing");
    api_reply_free(&reply);
    /* Same target again: refused before any QMP. */
    daemon_expect_error(daemon_p, "domain.attach_device", params, "preflight-failed", "vdb");
    free(params);

    params = daemon_xml_params("hot", disk, "\"flags\": [\"live\", \"config\"]");
    daemon_call_ok(daemon_p, "domain.detach_device", params, &reply);
    cr_assert_str_eq(json_get_string(reply.result, "status"), "detached");
    api_reply_free(&reply);
    cr_assert_eq(daemon_wait_serial(daemon_p, "hot", "PROBE PCI EJECT 00:03.0", 5000), 0);
    daemon_call_ok(daemon_p, "domain.blklist", "{\"domain\": \"hot\"}", &reply);
    cr_assert_eq(YAJL_GET_ARRAY(reply.result)->len, 0);
    api_reply_free(&reply);
    daemon_call_ok(daemon_p, "domain.blklist", "{\"domain\": \"hot\", \"inactive\": true}", &reply);
    cr_assert_eq(YAJL_GET_ARRAY(reply.result)->len, 0);
    api_reply_free(&reply);
    free(params);
    free(disk);
    daemon_call_simple(daemon_p, "domain.destroy", "hot");
}

Test(daemon, attach_flags_and_preflight)
{
    define_domain("flags", NULL, NULL, NULL);
    const char *image = daemon_make_image(daemon_p, "cfg.img", 8);
    char *disk = daemon_disk_xml(image, "vdc", NULL);
    /* --live on a stopped domain. */
    char *params = daemon_xml_params("flags", disk, "\"flags\": [\"live\"]");
    daemon_expect_error(daemon_p, "domain.attach_device", params, "not-running", "not running");
    free(params);
    /* current = config when stopped. */
    params = daemon_xml_params("flags", disk, "\"flags\": []");
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.attach_device", params, &reply);
    api_reply_free(&reply);
    free(params);
    daemon_call_ok(daemon_p, "domain.blklist", "{\"domain\": \"flags\", \"inactive\": true}",
                   &reply);
    cr_assert_eq(YAJL_GET_ARRAY(reply.result)->len, 1);
    api_reply_free(&reply);
    /* Missing source file: preflight. */
    char *missing = daemon_disk_xml("/nonexistent/plugvirt.img", "vdd", NULL);
    params = daemon_xml_params("flags", missing, "\"flags\": [\"config\"]");
    daemon_expect_error(daemon_p, "domain.attach_device", params, "preflight-failed",
                        "/nonexistent");
    free(params);
    free(missing);
    /* The cold-plugged disk boots with the domain, and live attach takes the next slot. */
    start_and_wait_ready("flags");
    wait_disk_added("flags", "00:03.0", 1000, NULL);
    const char *second = daemon_make_image(daemon_p, "live.img", 8);
    char *live_disk = daemon_disk_xml(second, "vde", NULL);
    params = daemon_xml_params("flags", live_disk, NULL); /* current = live when running */
    daemon_call_ok(daemon_p, "domain.attach_device", params, &reply);
    cr_assert_str_eq(json_get_string(reply.result, "address"), "0000:00:04.0");
    api_reply_free(&reply);
    free(params);
    daemon_call_ok(daemon_p, "domain.blklist", "{\"domain\": \"flags\", \"inactive\": true}",
                   &reply);
    cr_assert_eq(YAJL_GET_ARRAY(reply.result)->len, 1, "a live attach changed the config");
    api_reply_free(&reply);
    free(live_disk);
    free(disk);
    daemon_call_simple(daemon_p, "domain.destroy", "flags");
}

Test(daemon, detach_timeout_reports_pending_not_detached)
{
    define_domain("stubborn", NULL, "console=ttyS0 probe.unplug=ignore", NULL);
    start_and_wait_ready("stubborn");
    const char *image = daemon_make_image(daemon_p, "stuck.img", 8);
    char *disk = daemon_disk_xml(image, "vdb", NULL);
    char *params = daemon_xml_params("stubborn", disk, NULL);
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.attach_device", params, &reply);
    api_reply_free(&reply);
    free(params);
    params = daemon_xml_params("stubborn", disk, "\"timeout\": 1");
    daemon_call_ok(daemon_p, "domain.detach_device", params, &reply);
    cr_assert_str_eq(json_get_string(reply.result, "status"), "pending");
    cr_assert(strstr(json_get_string(reply.result, "message"), "has not released vdb") != NULL);
    api_reply_free(&reply);
    /* Still in the live definition: the guest has it. */
    daemon_call_ok(daemon_p, "domain.blklist", "{\"domain\": \"stubborn\"}", &reply);
    cr_assert_eq(YAJL_GET_ARRAY(reply.result)->len, 1);
    api_reply_free(&reply);
    free(params);
    free(disk);
    daemon_call_simple(daemon_p, "domain.destroy", "stubborn");
}

/* ------------------------------------------------------------------ helpers for the tests
 * below: monitor queries, the store as the daemon left it, parallel requests. */

/* Defines a domain and returns its uuid in `uuid` (37 bytes). */
static void define_domain_with(const char *name, const char *cmdline, const char *disks_xml,
                               const struct daemon_domain_options *options, char *uuid)
{
    char *xml = daemon_domain_xml_options(name, NULL, cmdline, disks_xml, options);
    char *params = daemon_xml_params(NULL, xml, NULL);
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.define", params, &reply);
    cr_assert_str_eq(json_get_string(reply.result, "name"), name);
    if (uuid)
        snprintf(uuid, 37, "%s", json_get_string(reply.result, "uuid"));
    api_reply_free(&reply);
    free(params);
    free(xml);
}

/* Any string value (not key) in the tree equal to `text`. */
static bool json_has_string(yajl_val value, const char *text)
{
    if (value == NULL)
        return false;
    if (YAJL_IS_STRING(value)) {
        const char *string = YAJL_GET_STRING(value);
        return string && strcmp(string, text) == 0;
    }
    if (YAJL_IS_ARRAY(value)) {
        for (size_t i = 0; i < value->u.array.len; i++)
            if (json_has_string(value->u.array.values[i], text))
                return true;
    } else if (YAJL_IS_OBJECT(value)) {
        for (size_t i = 0; i < value->u.object.len; i++)
            if (json_has_string(value->u.object.values[i], text))
                return true;
    }
    return false;
}

/* Runs a QMP command (no arguments) through domain.qemu_monitor_command and tells whether
 * its reply holds the string `text` (a node-name, a qdev_id). */
static bool monitor_reply_has(const char *domain, const char *command, const char *text)
{
    char qmp[200], *quoted, *params;
    if (strcmp(command, "query-named-block-nodes") == 0)
        snprintf(qmp, sizeof(qmp), "{\"execute\": \"%s\", \"arguments\": {\"flat\": true}}",
                 command);
    else
        snprintf(qmp, sizeof(qmp), "{\"execute\": \"%s\"}", command);
    quoted = daemon_json_string(qmp);
    cr_assert_geq(asprintf(&params, "{\"domain\": \"%s\", \"command\": %s}", domain, quoted), 0);
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.qemu_monitor_command", params, &reply);
    yajl_val answer = json_object_get(reply.result, "reply");
    cr_assert_not_null(answer, "%s: no reply", command);
    bool found = json_has_string(answer, text);
    api_reply_free(&reply);
    free(params);
    free(quoted);
    return found;
}

/* What the store holds for the domain: device rows, and unfinished journal jobs. */
static void store_counts(const char *uuid, size_t *devices, size_t *running_jobs,
                         enum store_device_state *first_state)
{
    struct pv_error error = {0};
    struct store *store = store_open(daemon_p->state_dir, &error);
    cr_assert_not_null(store, "store_open: %s", error.message);
    struct store_device *rows = NULL;
    size_t count = 0;
    cr_assert_eq(store_device_list(store, uuid, &rows, &count, &error), 0, "%s", error.message);
    *devices = count;
    if (first_state && count)
        *first_state = rows[0].state;
    store_device_list_free(rows, count);
    struct store_job *jobs = NULL;
    cr_assert_eq(store_job_list_unfinished(store, &jobs, &count, &error), 0, "%s", error.message);
    *running_jobs = 0;
    for (size_t i = 0; i < count; i++)
        *running_jobs += strcasecmp(jobs[i].domain_uuid, uuid) == 0;
    store_job_list_free(jobs, count);
    store_close(store);
}

static size_t blklist_length(const char *domain, bool inactive)
{
    char params[200];
    snprintf(params, sizeof(params), "{\"domain\": \"%s\", \"inactive\": %s}", domain,
             inactive ? "true" : "false");
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.blklist", params, &reply);
    size_t length = YAJL_GET_ARRAY(reply.result)->len;
    api_reply_free(&reply);
    return length;
}

/* The daemon's log (plugvirtd --verbose output) contains `text`. */
static bool daemon_log_contains(const char *text)
{
    FILE *file = fopen(daemon_p->log_path, "r");
    if (file == NULL)
        return false;
    char line[2048];
    bool found = false;
    while (!found && fgets(line, sizeof(line), file))
        found = strstr(line, text) != NULL;
    fclose(file);
    return found;
}

static char *disk_xml_with_serial(const char *source, const char *target, const char *serial)
{
    char *xml = NULL;
    cr_assert_geq(asprintf(&xml,
                           "<disk type='file' device='disk'>\n"
                           "  <driver name='qemu' type='raw'/>\n"
                           "  <source file='%s'/>\n"
                           "  <target dev='%s' bus='virtio'/>\n"
                           "  <serial>%s</serial>\n"
                           "</disk>\n",
                           source, target, serial),
                  0);
    return xml;
}

/* Sends the request on every client first, then collects every reply: the daemon has all
 * of them in flight at once. replies[i] is the parsed reply line (yajl_tree_free it). */
static void call_parallel(struct api_client **clients, size_t count, const char *method,
                          char **params, yajl_val *replies)
{
    for (size_t i = 0; i < count; i++) {
        struct pv_error error = {0};
        cr_assert_eq(api_client_send(clients[i], method, params[i], NULL, &error), 0, "%s: %s",
                     method, error.message);
    }
    for (size_t i = 0; i < count; i++) {
        char *line = NULL;
        struct pv_error error = {0};
        cr_assert_eq(api_client_read_line(clients[i], 60000, &line, &error), 0, "%s #%zu: %s",
                     method, i, error.message);
        replies[i] = json_parse(line, strlen(line), API_CLIENT_MAX_LINE, JSON_MAX_DEPTH, NULL);
        cr_assert_not_null(replies[i], "%s #%zu: bad reply %s", method, i, line);
        yajl_val failure = json_get_object(replies[i], "error");
        cr_assert_null(failure, "%s #%zu: %s: %s", method, i, json_get_string(failure, "code"),
                       json_get_string(failure, "message"));
        free(line);
    }
}

/* --------------------------------------------------------------------- stock QEMU --- */

/* <emulator> names stock QEMU: same argv builder, same QMP sequences. Paused, so no guest
 * answers: the attach is accepted by QEMU, the detach times out as pending, and the daemon
 * stays consistent until destroy cleans up. */
Test(daemon, qemu_emulator_attach_to_paused_vm_detach_stays_pending)
{
    const char *qemu = daemon_harness_qemu_path();
    if (qemu == NULL)
        cr_skip_test("qemu-system-x86_64 is not installed (Debian package qemu-system-x86)");
    /* type='qemu' (TCG): QEMU's SeaBIOS takes ~5 s under this host's KVM, TCG ~0.1 s. */
    struct daemon_domain_options options = {.type = "qemu", .emulator = qemu};
    char uuid[37];
    define_domain_with("stock", NULL, NULL, &options, uuid);
    start_and_wait_ready("stock");
    cr_assert_eq(daemon_wait_serial(daemon_p, "stock", "PROBE BOOT entry=pvh", 1000), 0,
                 "QEMU did not boot the probe guest through its PVH note");
    pid_t vmm = daemon_vmm_pid(daemon_p, "stock");
    cr_assert_gt(vmm, 0);
    char cmdline_path[64], cmdline[256] = "";
    snprintf(cmdline_path, sizeof(cmdline_path), "/proc/%d/cmdline", (int)vmm);
    FILE *file = fopen(cmdline_path, "r");
    cr_assert_not_null(file);
    cr_assert_gt(fread(cmdline, 1, sizeof(cmdline) - 1, file), 0);
    fclose(file);
    cr_assert_str_eq(cmdline, qemu, "the VMM is not stock QEMU");

    daemon_call_simple(daemon_p, "domain.suspend", "stock");
    cr_assert_eq(daemon_wait_state(daemon_p, "stock", "paused", 5000), 0);
    const char *image = daemon_make_image(daemon_p, "qemu.img", 16);
    char *disk = disk_xml_with_serial(image, "vdb", "qemu-vdb");
    char *params = daemon_xml_params("stock", disk, "\"flags\": [\"live\"]");
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.attach_device", params, &reply);
    cr_assert_str_eq(json_get_string(reply.result, "device"), "virtio-disk1");
    cr_assert_str_eq(json_get_string(reply.result, "address"), "0000:00:03.0");
    api_reply_free(&reply);
    free(params);
    cr_assert(monitor_reply_has("stock", "query-named-block-nodes", "virtio-disk1-storage"));
    cr_assert(monitor_reply_has("stock", "query-named-block-nodes", "virtio-disk1-format"));
    cr_assert(monitor_reply_has("stock", "query-pci", "virtio-disk1"));

    params = daemon_xml_params("stock", disk, "\"flags\": [\"live\"], \"timeout\": 1");
    long long started = daemon_now_ms();
    daemon_call_ok(daemon_p, "domain.detach_device", params, &reply);
    cr_assert_str_eq(json_get_string(reply.result, "status"), "pending");
    cr_assert(strstr(json_get_string(reply.result, "message"), "has not released vdb"));
    api_reply_free(&reply);
    cr_assert_lt(daemon_now_ms() - started, 5000, "the detach timeout was not honoured");
    free(params);

    /* Consistent: still in the live definition and the store (detaching), still in QEMU. */
    cr_assert_eq(blklist_length("stock", false), 1);
    cr_assert(daemon_domain_xml_contains(daemon_p, "stock", false, "<target dev='vdb'"));
    cr_assert_not(daemon_domain_xml_contains(daemon_p, "stock", true, "<target dev='vdb'"));
    size_t devices = 0, jobs = 0;
    enum store_device_state state = STORE_DEVICE_ATTACHED;
    store_counts(uuid, &devices, &jobs, &state);
    cr_assert_eq(devices, 1);
    cr_assert_eq(state, STORE_DEVICE_DETACHING);
    cr_assert(monitor_reply_has("stock", "query-pci", "virtio-disk1"));
    /* A second detach does not resend device_del; it waits again and stays pending. */
    params = daemon_xml_params("stock", disk, "\"flags\": [\"live\"], \"timeout\": 0.2");
    daemon_call_ok(daemon_p, "domain.detach_device", params, &reply);
    cr_assert_str_eq(json_get_string(reply.result, "status"), "pending");
    api_reply_free(&reply);
    free(params);
    free(disk);

    daemon_call_simple(daemon_p, "domain.destroy", "stock");
    for (int i = 0; i < 100 && process_alive(vmm); i++)
        usleep(20000);
    cr_assert_not(process_alive(vmm), "QEMU still runs after destroy");
    store_counts(uuid, &devices, &jobs, NULL);
    cr_assert_eq(devices, 0, "destroy left device rows behind");
    cr_assert_eq(jobs, 0, "destroy left journal jobs running");
    cr_assert_eq(blklist_length("stock", false), 0);
}

/* ---------------------------------------------------- SIGKILL inside an attach job --- */

Test(daemon, sigkill_between_blockdev_add_and_device_add_is_rolled_back)
{
    /* A daemon that kills itself right after blockdev-add of the format node succeeded. */
    cr_assert_eq(daemon_kill(daemon_p, SIGTERM, NULL), 0);
    setenv("PLUGVIRT_TEST_ABORT_AFTER_STEP", "blockdev-add-format", 1);
    cr_assert_eq(daemon_start(daemon_p), 0);
    unsetenv("PLUGVIRT_TEST_ABORT_AFTER_STEP");

    char uuid[37];
    define_domain_with("window", NULL, NULL, NULL, uuid);
    start_and_wait_ready("window");
    pid_t vmm = daemon_vmm_pid(daemon_p, "window");
    const char *image = daemon_make_image(daemon_p, "window.img", 8);
    char *disk = daemon_disk_xml(image, "vdb", NULL);
    char *params = daemon_xml_params("window", disk, "\"flags\": [\"live\", \"config\"]");
    /* Not daemon_call: its error log would fail the run although the failure is expected. */
    struct api_reply reply = {0};
    int rc = api_client_call(daemon_p->client, "domain.attach_device", params, 10000, &reply, NULL);
    api_reply_free(&reply);
    cr_assert_lt(rc, 0, "the daemon answered instead of dying inside the job");
    int status = 0;
    cr_assert_eq(daemon_kill(daemon_p, SIGKILL, &status), 0);
    cr_assert_eq(status, -SIGKILL);
    cr_assert(process_alive(vmm), "the VM died with the daemon");
    /* The window was hit: the journal has the job running, the device is half attached. */
    size_t devices = 0, jobs = 0;
    enum store_device_state state = STORE_DEVICE_ATTACHED;
    store_counts(uuid, &devices, &jobs, &state);
    cr_assert_eq(jobs, 1);
    cr_assert_eq(devices, 1);
    cr_assert_eq(state, STORE_DEVICE_ATTACHING);

    cr_assert_eq(daemon_start(daemon_p), 0);
    cr_assert_eq(daemon_wait_state(daemon_p, "window", "running", 5000), 0);
    long long deadline = daemon_now_ms() + 10000;
    do {
        store_counts(uuid, &devices, &jobs, NULL);
        if (jobs == 0)
            break;
        usleep(20000);
    } while (daemon_now_ms() < deadline);
    cr_assert_eq(jobs, 0, "the interrupted job was not finished");
    cr_assert_eq(devices, 0, "a half-attached device stayed in the store");
    cr_assert_not(monitor_reply_has("window", "query-named-block-nodes", "virtio-disk1-format"));
    cr_assert_not(monitor_reply_has("window", "query-named-block-nodes", "virtio-disk1-storage"));
    cr_assert_not(monitor_reply_has("window", "query-pci", "virtio-disk1"));
    cr_assert_eq(blklist_length("window", false), 0);
    cr_assert_eq(blklist_length("window", true), 0);
    cr_assert_not(daemon_domain_xml_contains(daemon_p, "window", false, "vdb"));
    cr_assert_not(daemon_domain_xml_contains(daemon_p, "window", true, "vdb"));
    cr_assert(daemon_log_contains("rolled back"), "the recovery did not report the rollback");
    /* Nothing stands in the way of the same attach now. */
    daemon_call_ok(daemon_p, "domain.attach_device", params, &reply);
    cr_assert_str_eq(json_get_string(reply.result, "target"), "vdb");
    api_reply_free(&reply);
    wait_disk_added("window", "00:03.0", 5000, NULL);
    free(params);
    free(disk);
    daemon_call_simple(daemon_p, "domain.destroy", "window");
}

/* How many complete lines of the domain's serial log start with `prefix`. */
static int serial_lines(const char *name, const char *prefix)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/domains/%s/serial.log", daemon_p->run_dir, name);
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return 0;
    char *line = NULL;
    size_t size = 0;
    ssize_t length;
    int count = 0;
    while ((length = getline(&line, &size, file)) > 0 && line[length - 1] == '\n')
        count += strncmp(line, prefix, strlen(prefix)) == 0;
    free(line);
    fclose(file);
    return count;
}

/* How many complete virtio-blk ADD lines the domain's serial log has. */
static int serial_disk_lines(const char *name)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/domains/%s/serial.log", daemon_p->run_dir, name);
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return 0;
    char *line = NULL;
    size_t size = 0;
    ssize_t length;
    int count = 0;
    struct disk_line disk;
    while ((length = getline(&line, &size, file)) > 0 && line[length - 1] == '\n') {
        line[length - 1] = '\0';
        count += parse_disk_line(line, &disk);
    }
    free(line);
    fclose(file);
    return count;
}

/* ------------------------------------------------------- 20 domains in parallel --- */

#define PARALLEL_DOMAINS 20

Test(daemon, twenty_domains_hotplug_in_parallel_without_cross_talk, .timeout = 180)
{
    struct api_client *clients[PARALLEL_DOMAINS];
    char *params[PARALLEL_DOMAINS], *disks[PARALLEL_DOMAINS], names[PARALLEL_DOMAINS][16];
    char images[PARALLEL_DOMAINS][600];
    yajl_val replies[PARALLEL_DOMAINS];
    struct daemon_domain_options options = {.memory_mib = 32};
    for (int i = 0; i < PARALLEL_DOMAINS; i++) {
        snprintf(names[i], sizeof(names[i]), "par%02d", i);
        define_domain_with(names[i], NULL, NULL, &options, NULL);
        clients[i] = api_client_connect(daemon_p->socket_path, NULL);
        cr_assert_not_null(clients[i]);
        char image_name[32];
        snprintf(image_name, sizeof(image_name), "%s.img", names[i]);
        /* Distinct sizes too: each guest must report its own disk's capacity. */
        snprintf(images[i], sizeof(images[i]), "%s",
                 daemon_make_image(daemon_p, image_name, 1 + (unsigned)i));
        disks[i] = disk_xml_with_serial(images[i], "vdb", names[i]);
    }
    for (int i = 0; i < PARALLEL_DOMAINS; i++)
        cr_assert_geq(asprintf(&params[i], "{\"domain\": \"%s\"}", names[i]), 0);
    call_parallel(clients, PARALLEL_DOMAINS, "domain.start", params, replies);
    for (int i = 0; i < PARALLEL_DOMAINS; i++) {
        yajl_tree_free(replies[i]);
        free(params[i]);
        cr_assert_eq(daemon_wait_serial(daemon_p, names[i], "PROBE READY", DAEMON_BOOT_TIMEOUT_MS),
                     0, "%s did not boot", names[i]);
        params[i] = daemon_xml_params(names[i], disks[i], "\"flags\": [\"live\"]");
    }

    call_parallel(clients, PARALLEL_DOMAINS, "domain.attach_device", params, replies);
    for (int i = 0; i < PARALLEL_DOMAINS; i++) {
        yajl_val result = json_object_get(replies[i], "result");
        cr_assert_str_eq(json_get_string(result, "target"), "vdb");
        cr_assert_str_eq(json_get_string(result, "address"), "0000:00:03.0");
        yajl_tree_free(replies[i]);
    }
    for (int i = 0; i < PARALLEL_DOMAINS; i++) {
        /* Exactly one new virtio-blk, with this domain's serial and this image's size. */
        struct disk_line disk;
        wait_disk_added(names[i], "00:03.0", 10000, &disk);
        cr_assert_eq(disk.sectors, (1ul + (unsigned long)i) * 2048, "%s saw another disk's size",
                     names[i]);
        cr_assert_str_eq(disk.serial, names[i], "%s saw another disk's serial", names[i]);
        int disks_seen = serial_disk_lines(names[i]);
        cr_assert_eq(disks_seen, 1, "%s saw %d disks", names[i], disks_seen);
        char blk_params[512];
        snprintf(blk_params, sizeof(blk_params), "{\"domain\": \"%s\"}", names[i]);
        struct api_reply reply;
        daemon_call_ok(daemon_p, "domain.blklist", blk_params, &reply);
        cr_assert_eq(YAJL_GET_ARRAY(reply.result)->len, 1);
        cr_assert_str_eq(json_get_string(YAJL_GET_ARRAY(reply.result)->values[0], "source"),
                         images[i]);
        api_reply_free(&reply);
    }

    call_parallel(clients, PARALLEL_DOMAINS, "domain.detach_device", params, replies);
    for (int i = 0; i < PARALLEL_DOMAINS; i++) {
        yajl_val result = json_object_get(replies[i], "result");
        cr_assert_str_eq(json_get_string(result, "status"), "detached", "%s", names[i]);
        yajl_tree_free(replies[i]);
        cr_assert_eq(daemon_wait_serial(daemon_p, names[i], "PROBE PCI EJECT 00:03.0", 5000), 0);
        cr_assert_eq(blklist_length(names[i], false), 0);
        free(params[i]);
        free(disks[i]);
        api_client_close(clients[i]);
    }
    for (int i = 0; i < PARALLEL_DOMAINS; i++)
        daemon_call_simple(daemon_p, "domain.destroy", names[i]);
}

/* ------------------------------------------------------------------- late eject --- */

Test(daemon, late_eject_finishes_a_pending_detach)
{
    char uuid[37];
    define_domain_with("late", "console=ttyS0 probe.unplug=delay:3000", NULL, NULL, uuid);
    start_and_wait_ready("late");
    struct api_client *events = api_client_connect(daemon_p->socket_path, NULL);
    cr_assert_not_null(events);
    struct api_reply reply = {0};
    cr_assert_eq(
        api_client_call(events, "events.subscribe", "{\"domain\": \"late\"}", 5000, &reply, NULL),
        0);
    api_reply_free(&reply);
    const char *image = daemon_make_image(daemon_p, "late.img", 8);
    char *disk = daemon_disk_xml(image, "vdb", NULL);
    char *params = daemon_xml_params("late", disk, NULL);
    daemon_call_ok(daemon_p, "domain.attach_device", params, &reply);
    api_reply_free(&reply);
    free(params);
    wait_disk_added("late", "00:03.0", 5000, NULL);

    params = daemon_xml_params("late", disk, "\"timeout\": 1");
    long long requested = daemon_now_ms();
    daemon_call_ok(daemon_p, "domain.detach_device", params, &reply);
    cr_assert_str_eq(json_get_string(reply.result, "status"), "pending");
    api_reply_free(&reply);
    free(params);
    free(disk);
    cr_assert_eq(blklist_length("late", false), 1, "pending, yet gone from the live definition");

    /* The guest ejects ~3 s after the request; the daemon then finishes on its own. */
    bool removed = false;
    while (!removed && daemon_now_ms() - requested < 15000) {
        yajl_val event = NULL;
        if (api_client_read_event(events, 1000, &event, NULL) < 0)
            continue;
        const char *type = json_get_string(event, "event");
        const char *detail = json_get_string(event, "detail");
        removed = type && !strcmp(type, "device-removed") && detail && strstr(detail, "vdb");
        yajl_tree_free(event);
    }
    cr_assert(removed, "no device-removed event after the late eject");
    cr_assert_geq(daemon_now_ms() - requested, 2500, "removed before the guest's delay");
    api_client_close(events);
    cr_assert_eq(daemon_wait_serial(daemon_p, "late", "PROBE PCI EJECT 00:03.0", 1000), 0);
    cr_assert_eq(blklist_length("late", false), 0);
    cr_assert_not(monitor_reply_has("late", "query-named-block-nodes", "virtio-disk1-format"));
    cr_assert_not(monitor_reply_has("late", "query-named-block-nodes", "virtio-disk1-storage"));
    cr_assert_not(monitor_reply_has("late", "query-pci", "virtio-disk1"));
    size_t devices = 0, jobs = 0;
    store_counts(uuid, &devices, &jobs, NULL);
    cr_assert_eq(devices, 0);
    cr_assert_eq(jobs, 0);
    daemon_call_simple(daemon_p, "domain.destroy", "late");
}

/* ------------------------------------------------------------ busy domain --- */

Test(daemon, request_waiting_on_a_busy_domain_names_the_holder)
{
    cr_assert_eq(daemon_kill(daemon_p, SIGTERM, NULL), 0);
    snprintf(daemon_p->extra_config, sizeof(daemon_p->extra_config), "job_wait_timeout_ms = 500");
    cr_assert_eq(daemon_start(daemon_p), 0);
    define_domain("busy", NULL, "console=ttyS0 probe.unplug=ignore", NULL);
    start_and_wait_ready("busy");
    const char *image = daemon_make_image(daemon_p, "busy.img", 8);
    char *disk = daemon_disk_xml(image, "vdb", NULL);
    char *params = daemon_xml_params("busy", disk, NULL);
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.attach_device", params, &reply);
    api_reply_free(&reply);
    free(params);

    /* A detach that waits long for a guest that never releases the disk holds the domain. */
    struct api_client *holder = api_client_connect(daemon_p->socket_path, NULL);
    cr_assert_not_null(holder);
    params = daemon_xml_params("busy", disk, "\"timeout\": 20");
    cr_assert_eq(api_client_send(holder, "domain.detach_device", params, NULL, NULL), 0);
    free(params);
    free(disk);
    cr_assert_eq(daemon_wait_serial(daemon_p, "busy", "PROBE PCI UNPLUG-IGNORED 00:03.0", 5000), 0);

    const char *second = daemon_make_image(daemon_p, "second.img", 8);
    disk = daemon_disk_xml(second, "vdc", NULL);
    params = daemon_xml_params("busy", disk, NULL);
    long long started = daemon_now_ms();
    daemon_expect_error(daemon_p, "domain.attach_device", params, "busy", "detach-disk vdb");
    long long waited = daemon_now_ms() - started;
    cr_assert_geq(waited, 400, "did not wait in the queue (%lld ms)", waited);
    cr_assert_lt(waited, 5000, "job_wait_timeout_ms not honoured (%lld ms)", waited);
    cr_assert(daemon_log_contains("domain is busy with detach-disk vdb"),
              "the busy refusal was not logged");
    free(params);
    free(disk);
    /* The holder is unaffected; destroying the domain ends it. */
    daemon_call_simple(daemon_p, "domain.destroy", "busy");
    char *line = NULL;
    cr_assert_eq(api_client_read_line(holder, 5000, &line, NULL), 0);
    free(line);
    api_client_close(holder);
}

/* ------------------------------------------------------------------ autostart --- */

static bool listed_with_autostart(const char *name)
{
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.list", "{\"all\": true}", &reply);
    bool autostart = false, found = false;
    for (size_t i = 0; i < YAJL_GET_ARRAY(reply.result)->len; i++) {
        yajl_val entry = YAJL_GET_ARRAY(reply.result)->values[i];
        if (strcmp(json_get_string(entry, "name"), name) == 0)
            found = json_get_bool(entry, "autostart", &autostart);
    }
    api_reply_free(&reply);
    return found && autostart;
}

Test(daemon, autostart_starts_shut_off_domains_and_adopts_running_ones)
{
    define_domain("cold", NULL, NULL, NULL);
    define_domain("warm", NULL, NULL, NULL);
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.set_autostart", "{\"domain\": \"cold\", \"enabled\": true}",
                   &reply);
    api_reply_free(&reply);
    daemon_call_ok(daemon_p, "domain.set_autostart", "{\"domain\": \"warm\", \"enabled\": true}",
                   &reply);
    api_reply_free(&reply);
    cr_assert(listed_with_autostart("cold"));
    start_and_wait_ready("warm");
    pid_t warm_vmm = daemon_vmm_pid(daemon_p, "warm");
    cr_assert_gt(warm_vmm, 0);
    int status = -1;
    cr_assert_eq(daemon_kill(daemon_p, SIGTERM, &status), 0);
    cr_assert_eq(status, 0);
    cr_assert_lt(daemon_vmm_pid(daemon_p, "cold"), 0, "cold started before the restart");

    cr_assert_eq(daemon_start(daemon_p), 0);
    cr_assert_eq(daemon_wait_serial(daemon_p, "cold", "PROBE READY", DAEMON_BOOT_TIMEOUT_MS), 0,
                 "the autostarted guest did not boot");
    cr_assert_eq(daemon_wait_state(daemon_p, "cold", "running", 5000), 0);
    cr_assert(listed_with_autostart("cold"));
    cr_assert(listed_with_autostart("warm"));
    /* Adopted, not started a second time: same VMM, one boot in its serial log. */
    cr_assert_eq(daemon_wait_state(daemon_p, "warm", "running", 5000), 0);
    cr_assert_eq(daemon_vmm_pid(daemon_p, "warm"), warm_vmm);
    cr_assert(process_alive(warm_vmm));
    cr_assert_eq(serial_lines("warm", "PROBE READY"), 1, "warm booted twice");
    cr_assert_not(daemon_log_contains("autostart of domain"), "an autostart failed");
    daemon_call_simple(daemon_p, "domain.destroy", "cold");
    daemon_call_simple(daemon_p, "domain.destroy", "warm");
}

/* ------------------------------------------------------------------ reboot --- */

Test(daemon, reboot_boots_the_guest_again_and_keeps_it_running)
{
    define_domain("again", NULL, NULL, NULL);
    start_and_wait_ready("again");
    pid_t vmm = daemon_vmm_pid(daemon_p, "again");
    cr_assert_eq(serial_lines("again", "PROBE READY"), 1);
    daemon_call_simple(daemon_p, "domain.reboot", "again");
    long long deadline = daemon_now_ms() + 20000;
    while (serial_lines("again", "PROBE READY") < 2 && daemon_now_ms() < deadline)
        usleep(20000);
    cr_assert_eq(serial_lines("again", "PROBE READY"), 2, "the guest did not boot again");
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.state", "{\"domain\": \"again\"}", &reply);
    cr_assert_str_eq(json_get_string(reply.result, "state"), "running");
    api_reply_free(&reply);
    cr_assert_eq(daemon_vmm_pid(daemon_p, "again"), vmm, "reboot replaced the VMM");
    cr_assert(process_alive(vmm));
    daemon_call_simple(daemon_p, "domain.destroy", "again");
}

/* ------------------------------------------------- reconciliation after restart --- */

static bool event_logged(const char *uuid, const char *type, const char *text)
{
    struct pv_error error = {0};
    struct store *store = store_open(daemon_p->state_dir, &error);
    cr_assert_not_null(store, "store_open: %s", error.message);
    struct store_event *events = NULL;
    size_t count = 0;
    cr_assert_eq(store_event_list(store, uuid, 0, &events, &count, &error), 0, "%s", error.message);
    bool found = false;
    for (size_t i = 0; i < count && !found; i++)
        found = events[i].type && strcmp(events[i].type, type) == 0 && events[i].detail &&
                strstr(events[i].detail, text);
    store_event_list_free(events, count);
    store_close(store);
    return found;
}

static void qmp_ok(struct daemon_qmp *qmp, const char *command)
{
    char reply[8192];
    cr_assert_eq(daemon_qmp_execute(qmp, command, reply, sizeof(reply), 5000), 0, "%s", command);
    cr_assert(strstr(reply, "\"return\"") != NULL, "%s: %s", command, reply);
}

/* A disk removed through the VMM's own QMP socket while plugvirtd was down leaves the live
 * definition, its block nodes are released; a device nobody defined is reported and kept. */
Test(daemon, restart_reconciles_devices_with_query_pci_and_query_block)
{
    const char *root_image = daemon_make_image(daemon_p, "recon-root.img", 8);
    char *root_disk = daemon_disk_xml(root_image, "vda", NULL);
    char uuid[37];
    define_domain_with("recon", NULL, root_disk, NULL, uuid);
    free(root_disk);
    start_and_wait_ready("recon");
    const char *image = daemon_make_image(daemon_p, "recon.img", 8);
    char *disk = daemon_disk_xml(image, "vdb", NULL);
    char *params = daemon_xml_params("recon", disk, "\"flags\": [\"live\"]");
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.attach_device", params, &reply);
    cr_assert_str_eq(json_get_string(reply.result, "device"), "virtio-disk1");
    api_reply_free(&reply);
    free(params);
    free(disk);
    wait_disk_added("recon", "00:04.0", 5000, NULL);
    pid_t vmm = daemon_vmm_pid(daemon_p, "recon");
    cr_assert_eq(daemon_kill(daemon_p, SIGKILL, NULL), 0);

    /* Behind the daemon's back: unplug vdb (its nodes stay), plug a device of our own. */
    struct daemon_qmp qmp;
    cr_assert_eq(daemon_qmp_connect(&qmp, daemon_p, "recon"), 0);
    qmp_ok(&qmp, "{\"execute\": \"device_del\", \"arguments\": {\"id\": \"virtio-disk1\"}}");
    cr_assert_eq(daemon_qmp_wait_event(&qmp, "DEVICE_DELETED", 5000), 0);
    const char *stranger_image = daemon_make_image(daemon_p, "stranger.img", 4);
    char command[1200];
    snprintf(command, sizeof(command),
             "{\"execute\": \"blockdev-add\", \"arguments\": {\"driver\": \"file\", "
             "\"filename\": \"%s\", \"node-name\": \"stranger-storage\"}}",
             stranger_image);
    qmp_ok(&qmp, command);
    qmp_ok(&qmp, "{\"execute\": \"blockdev-add\", \"arguments\": {\"driver\": \"raw\", "
                 "\"file\": \"stranger-storage\", \"node-name\": \"stranger-format\"}}");
    qmp_ok(&qmp, "{\"execute\": \"device_add\", \"arguments\": {\"driver\": \"virtio-blk-pci\", "
                 "\"id\": \"stranger\", \"drive\": \"stranger-format\", \"addr\": \"0x9\"}}");
    char nodes[16384];
    cr_assert_eq(daemon_qmp_execute(&qmp,
                                    "{\"execute\": \"query-named-block-nodes\", \"arguments\": "
                                    "{\"flat\": true}}",
                                    nodes, sizeof(nodes), 5000),
                 0);
    cr_assert(strstr(nodes, "\"virtio-disk1-format\""), "device_del took the nodes: %s", nodes);
    cr_assert(strstr(nodes, "\"virtio-disk1-storage\""));
    daemon_qmp_close(&qmp);

    cr_assert_eq(daemon_start(daemon_p), 0);
    cr_assert_eq(daemon_wait_state(daemon_p, "recon", "running", 5000), 0);
    cr_assert_eq(daemon_vmm_pid(daemon_p, "recon"), vmm);
    long long deadline = daemon_now_ms() + 10000;
    while (daemon_now_ms() < deadline &&
           (blklist_length("recon", false) != 1 ||
            monitor_reply_has("recon", "query-named-block-nodes", "virtio-disk1-storage")))
        usleep(20000);
    cr_assert_eq(blklist_length("recon", false), 1, "vdb is still in the live definition");
    cr_assert_not(daemon_domain_xml_contains(daemon_p, "recon", false, "vdb"));
    cr_assert_not(monitor_reply_has("recon", "query-named-block-nodes", "virtio-disk1-format"));
    cr_assert_not(monitor_reply_has("recon", "query-named-block-nodes", "virtio-disk1-storage"));
    /* vda is ours and in use: untouched. The stranger is reported, neither adopted nor cut. */
    cr_assert(monitor_reply_has("recon", "query-named-block-nodes", "virtio-disk0-format"));
    cr_assert(monitor_reply_has("recon", "query-named-block-nodes", "virtio-disk0-storage"));
    cr_assert(monitor_reply_has("recon", "query-named-block-nodes", "stranger-format"));
    cr_assert(monitor_reply_has("recon", "query-named-block-nodes", "stranger-storage"));
    cr_assert(monitor_reply_has("recon", "query-pci", "stranger"));
    cr_assert_not(daemon_domain_xml_contains(daemon_p, "recon", false, "stranger"));
    cr_assert(daemon_log_contains("the VMM has device 'stranger' that no definition knows"),
              "the unknown device was not reported");
    cr_assert(event_logged(uuid, "device-removed", "vdb (virtio-disk1): gone from the VMM"));
    cr_assert(event_logged(uuid, "block-node-released", "virtio-disk1-format"));
    cr_assert(event_logged(uuid, "block-node-released", "virtio-disk1-storage"));
    size_t devices = 0, jobs = 0;
    store_counts(uuid, &devices, &jobs, NULL);
    cr_assert_eq(devices, 0, "the store still has vdb");
    cr_assert_eq(jobs, 0);
    daemon_call_simple(daemon_p, "domain.destroy", "recon");
}

/* ------------------------------------------------------------------- systemd --- */

#define SOCKET_ACTIVATE_PATH "/usr/bin/systemd-socket-activate"

Test(daemon, socket_activation_serves_read_write_and_read_only_sockets)
{
    if (access(SOCKET_ACTIVATE_PATH, X_OK) != 0)
        cr_skip("%s is not installed (Debian package systemd)", SOCKET_ACTIVATE_PATH);
    cr_assert_eq(daemon_kill(daemon_p, SIGTERM, NULL), 0);
    char read_write[400], read_only[400];
    snprintf(read_write, sizeof(read_write), "--listen=%s", daemon_p->socket_path);
    snprintf(read_only, sizeof(read_only), "--listen=%s", daemon_p->read_only_socket_path);
    /* Without --accept it execs plugvirtd in place on the first connection. */
    const char *const launcher[] = {SOCKET_ACTIVATE_PATH, read_write, read_only,
                                    "--fdname=plugvirtd:plugvirtd-ro", NULL};
    daemon_p->launcher = launcher;
    int rc = daemon_start(daemon_p);
    daemon_p->launcher = NULL;
    cr_assert_eq(rc, 0, "plugvirtd did not start under systemd-socket-activate");
    /* The read-write socket is the activated one: it takes changes. */
    define_domain("activated", NULL, NULL, NULL);
    struct api_client *client = api_client_connect(daemon_p->read_only_socket_path, NULL);
    cr_assert_not_null(client);
    struct api_reply reply = {0};
    cr_assert_eq(api_client_call(client, "daemon.ping", NULL, 5000, &reply, NULL), 0);
    cr_assert_null(reply.error_code);
    api_reply_free(&reply);
    cr_assert_eq(api_client_call(client, "domain.list", "{\"all\": true}", 5000, &reply, NULL), 0);
    cr_assert_null(reply.error_code);
    cr_assert_eq(YAJL_GET_ARRAY(reply.result)->len, 1);
    api_reply_free(&reply);
    cr_assert_eq(api_client_call(client, "domain.undefine", "{\"domain\": \"activated\"}", 5000,
                                 &reply, NULL),
                 0);
    cr_assert_str_eq(reply.error_code, "permission-denied");
    api_reply_free(&reply);
    api_client_close(client);
    /* Activated sockets belong to the service manager: plugvirtd does not unlink them. */
    int status = -1;
    cr_assert_eq(daemon_kill(daemon_p, SIGTERM, &status), 0);
    cr_assert_eq(status, 0);
    cr_assert_eq(access(daemon_p->socket_path, F_OK), 0);
}

Test(daemon, sd_notify_reports_ready_and_stopping)
{
    cr_assert_eq(daemon_kill(daemon_p, SIGTERM, NULL), 0);
    snprintf(daemon_p->notify_socket, sizeof(daemon_p->notify_socket), "%s/notify.sock",
             daemon_p->directory);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    cr_assert_lt(strlen(daemon_p->notify_socket), sizeof(address.sun_path));
    memcpy(address.sun_path, daemon_p->notify_socket, strlen(daemon_p->notify_socket) + 1);
    cr_assert_eq(bind(fd, (struct sockaddr *)&address, sizeof(address)), 0, "%s", strerror(errno));
    int rc = daemon_start(daemon_p);
    daemon_p->notify_socket[0] = '\0';
    cr_assert_eq(rc, 0);
    char messages[4096] = "";
    size_t used = 0;
    long long deadline = daemon_now_ms() + 5000;
    while (daemon_now_ms() < deadline && !strstr(messages, "STOPPING=1")) {
        if (strstr(messages, "READY=1") && daemon_p->pid > 0)
            cr_assert_eq(daemon_kill(daemon_p, SIGTERM, NULL), 0);
        struct pollfd poll_fd = {.fd = fd, .events = POLLIN};
        if (poll(&poll_fd, 1, 100) <= 0)
            continue;
        ssize_t length = recv(fd, messages + used, sizeof(messages) - 1 - used, 0);
        cr_assert_gt(length, 0);
        used += (size_t)length;
        messages[used++] = '\n';
        messages[used] = '\0';
    }
    close(fd);
    cr_assert(strstr(messages, "READY=1"), "no READY=1 (got: %s)", messages);
    cr_assert(strstr(messages, "STOPPING=1"), "no STOPPING=1 (got: %s)", messages);
    cr_assert_lt(strstr(messages, "READY=1"), strstr(messages, "STOPPING=1"));
}

/* ------------------------------------------------------------------ schemas --- */

/* Issue 9, defect 4: a plugvirtd run from the build tree (no --schema-dir, no schema_dir,
 * nothing installed) could not define any domain. The schemas are built into it. */
Test(daemon, defines_a_domain_with_the_built_in_schemas)
{
    cr_assert_eq(daemon_p->schema_dir[0], '\0', "the harness gave plugvirtd a schema_dir");
    if (access(PLUGVIRT_DATADIR "/schemas/domain.rng", F_OK) == 0)
        cr_log_warn("schemas are installed in %s/schemas: the test cannot tell them apart "
                    "from the built-in ones",
                    PLUGVIRT_DATADIR);
    define_domain("builtin", NULL, NULL, NULL);
    /* And they validate: a schema error still names the line. */
    char *params = daemon_xml_params(NULL,
                                     "<domain type='kvm'>\n  <name>bad</name>\n"
                                     "  <memory unit='MiB'>64</memory>\n  <vcpu>many</vcpu>\n"
                                     "  <os><type>hvm</type></os>\n</domain>\n",
                                     NULL);
    daemon_expect_error(daemon_p, "domain.define", params, "invalid-xml", "line 4");
    free(params);
    cr_assert(daemon_log_contains("schemas built-in"), "the daemon does not say which schemas");
}

/* schema_dir (and --schema-dir) still override the built-in schemas. */
Test(daemon, schema_dir_overrides_the_built_in_schemas)
{
    cr_assert_eq(daemon_kill(daemon_p, SIGTERM, NULL), 0);
    snprintf(daemon_p->schema_dir, sizeof(daemon_p->schema_dir), "%s/no-schemas",
             daemon_p->directory);
    cr_assert_eq(daemon_start(daemon_p), 0);
    char *xml = daemon_domain_xml("elsewhere", NULL, NULL, NULL);
    char *params = daemon_xml_params(NULL, xml, NULL);
    daemon_expect_error(daemon_p, "domain.define", params, "invalid-xml", "/no-schemas/domain.rng");
    free(params);
    free(xml);

    cr_assert_eq(daemon_kill(daemon_p, SIGTERM, NULL), 0);
    snprintf(daemon_p->schema_dir, sizeof(daemon_p->schema_dir), "%s", daemon_harness_schema_dir());
    cr_assert_eq(daemon_start(daemon_p), 0);
    define_domain("elsewhere", NULL, NULL, NULL);
}

/* ------------------------------------------------------------------ the harness --- */

/* Issue 9, defect 5: a wait for a line prefix matched a line the guest was still writing,
 * and the caller then read a log without the rest of the line. Only complete lines match,
 * and the caller gets the whole line. */
Test(harness, serial_waits_match_complete_lines_only)
{
    struct daemon_process fake = {0};
    snprintf(fake.run_dir, sizeof(fake.run_dir), "/tmp/plugvirt-harness-XXXXXX");
    cr_assert_not_null(mkdtemp(fake.run_dir));
    char path[700];
    snprintf(path, sizeof(path), "%s/domains", fake.run_dir);
    cr_assert_eq(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/domains/half", fake.run_dir);
    cr_assert_eq(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/domains/half/serial.log", fake.run_dir);
    FILE *serial = fopen(path, "w");
    cr_assert_not_null(serial);
    fputs("PROBE READY cpus=1 mem=128\nPROBE PCI ADD 00:03.0 1af4:1042 virt", serial);
    fflush(serial);
    char line[256] = "";
    cr_assert_eq(
        daemon_wait_serial_line(&fake, "half", "PROBE PCI ADD 00:03.0", 200, line, sizeof(line)),
        -ETIMEDOUT, "matched a line still being written: '%s'", line);
    fputs("io-blk sectors=2048 serial=x\r\n", serial);
    fclose(serial);
    cr_assert_eq(
        daemon_wait_serial_line(&fake, "half", "PROBE PCI ADD 00:03.0", 200, line, sizeof(line)),
        0);
    cr_assert_str_eq(line, "PROBE PCI ADD 00:03.0 1af4:1042 virtio-blk sectors=2048 serial=x");
    cr_assert_eq(daemon_wait_serial(&fake, "half", "PROBE READY", 200), 0);
    unlink(path);
    snprintf(path, sizeof(path), "%s/domains/half", fake.run_dir);
    rmdir(path);
    snprintf(path, sizeof(path), "%s/domains", fake.run_dir);
    rmdir(path);
    rmdir(fake.run_dir);
}

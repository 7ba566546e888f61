/* plugvirtd end to end: a real daemon in a private directory, real plugvirt-vmm processes
 * running the probe guest, requests through lib/api_client. Nothing is mocked. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "json_util.h"

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
static char *xml_params(const char *domain, const char *xml, const char *extra)
{
    char *quoted = daemon_json_string(xml);
    char *params = NULL;
    if (domain)
        cr_assert_geq(asprintf(&params, "{\"domain\": \"%s\", \"xml\": %s%s%s}", domain, quoted,
                               extra ? ", " : "", extra ? extra : ""),
                      0);
    else
        cr_assert_geq(asprintf(&params, "{\"xml\": %s}", quoted), 0);
    free(quoted);
    return params;
}

static void define_domain(const char *name, const char *uuid, const char *cmdline,
                          const char *disks_xml)
{
    char *xml = daemon_domain_xml(name, uuid, cmdline, disks_xml);
    char *params = xml_params(NULL, xml, NULL);
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.define", params, &reply);
    cr_assert_str_eq(json_get_string(reply.result, "name"), name);
    api_reply_free(&reply);
    free(params);
    free(xml);
}

static char *disk_xml(const char *source, const char *target)
{
    char *xml = NULL;
    cr_assert_geq(asprintf(&xml,
                           "<disk type='file' device='disk'>\n"
                           "  <driver name='qemu' type='raw'/>\n"
                           "  <source file='%s'/>\n"
                           "  <target dev='%s' bus='virtio'/>\n"
                           "</disk>\n",
                           source, target),
                  0);
    return xml;
}

static void call_simple(const char *method, const char *domain)
{
    char params[256];
    snprintf(params, sizeof(params), "{\"domain\": \"%s\"}", domain);
    struct api_reply reply;
    daemon_call_ok(daemon_p, method, params, &reply);
    api_reply_free(&reply);
}

static void expect_error(const char *method, const char *params, const char *code,
                         const char *message_part)
{
    struct api_reply reply;
    cr_assert_eq(daemon_call(daemon_p, method, params, &reply), 0);
    cr_assert_not_null(reply.error_code, "%s should fail with %s", method, code);
    cr_assert_str_eq(reply.error_code, code, "%s: %s", method, reply.error_message);
    if (message_part)
        cr_assert(strstr(reply.error_message, message_part) != NULL, "'%s' lacks '%s'",
                  reply.error_message, message_part);
    api_reply_free(&reply);
}

static void start_and_wait_ready(const char *name)
{
    call_simple("domain.start", name);
    cr_assert_eq(daemon_wait_serial(daemon_p, name, "PROBE READY", 30000), 0,
                 "the guest of %s did not boot", name);
}

Test(daemon, ping_and_version)
{
    struct api_reply reply;
    daemon_call_ok(daemon_p, "daemon.ping", NULL, &reply);
    cr_assert_not_null(json_get_string(reply.result, "version"));
    api_reply_free(&reply);
    expect_error("no.such.method", NULL, "invalid-argument", "unknown method");
}

Test(daemon, define_start_list_dumpxml_destroy_undefine)
{
    const char *image = daemon_make_image(daemon_p, "root.img", 16);
    char *disk = disk_xml(image, "vda");
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

    expect_error("domain.start", "{\"domain\": \"life\"}", "already-running", NULL);
    expect_error("domain.undefine", "{\"domain\": \"life\"}", "already-running", NULL);
    call_simple("domain.suspend", "life");
    cr_assert_eq(daemon_wait_state(daemon_p, "life", "paused", 5000), 0);
    call_simple("domain.resume", "life");
    cr_assert_eq(daemon_wait_state(daemon_p, "life", "running", 5000), 0);

    call_simple("domain.destroy", "life");
    daemon_call_ok(daemon_p, "domain.state", "{\"domain\": \"life\"}", &reply);
    cr_assert_str_eq(json_get_string(reply.result, "state"), "shut off");
    cr_assert_str_eq(json_get_string(reply.result, "reason"), "destroyed");
    api_reply_free(&reply);
    expect_error("domain.destroy", "{\"domain\": \"life\"}", "not-running", "not running");

    call_simple("domain.undefine", "life");
    expect_error("domain.info", "{\"domain\": \"life\"}", "no-domain", NULL);
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
        xml_params(NULL, "<domain type='kvm'>\n  <name>x</name>\n  <oops>\n</domain>", NULL);
    expect_error("domain.define", params, "invalid-xml", "line");
    free(params);
    /* Well-formed, but <vcpu> must be a number: a schema error. */
    params = xml_params(NULL,
                        "<domain type='kvm'>\n  <name>bad</name>\n"
                        "  <memory unit='MiB'>64</memory>\n  <vcpu>many</vcpu>\n"
                        "  <os><type>hvm</type></os>\n</domain>\n",
                        NULL);
    expect_error("domain.define", params, "invalid-xml", "line");
    free(params);
    expect_error("domain.define", "{}", "invalid-xml", NULL);
    expect_error("domain.start", "{\"domain\": \"ghost\"}", "no-domain", "ghost");
    expect_error("domain.xml", "{\"domain\": \"00000000-0000-4000-8000-000000000000\"}",
                 "no-domain", NULL);
    expect_error("domain.start", "{}", "invalid-argument", NULL);
}

Test(daemon, duplicate_names_and_uuids_are_refused)
{
    define_domain("dup", "6c1f3e0a-1111-4222-8333-944455556666", NULL, NULL);
    /* Same name and uuid: an update (libvirt's redefinition). */
    define_domain("dup", "6c1f3e0a-1111-4222-8333-944455556666", "console=ttyS0 x=1", NULL);
    char *xml = daemon_domain_xml("dup", "6c1f3e0a-1111-4222-8333-944455550000", NULL, NULL);
    char *params = xml_params(NULL, xml, NULL);
    expect_error("domain.define", params, "domain-exists", "dup");
    free(params);
    free(xml);
    xml = daemon_domain_xml("other", "6c1f3e0a-1111-4222-8333-944455556666", NULL, NULL);
    params = xml_params(NULL, xml, NULL);
    expect_error("domain.define", params, "domain-exists", "dup");
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
    call_simple("domain.destroy", "crash");
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
    call_simple("domain.suspend", "survivor");
    cr_assert_eq(daemon_wait_state(daemon_p, "survivor", "paused", 5000), 0);
    call_simple("domain.resume", "survivor");
    call_simple("domain.destroy", "survivor");
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
    call_simple("domain.destroy", "keep");
}

Test(daemon, vmm_gone_while_the_daemon_was_down_is_shut_off)
{
    define_domain("gone", NULL, NULL, NULL);
    start_and_wait_ready("gone");
    pid_t vmm = daemon_vmm_pid(daemon_p, "gone");
    cr_assert_eq(daemon_kill(daemon_p, SIGKILL, NULL), 0);
    cr_assert_eq(kill(vmm, SIGKILL), 0);
    usleep(200000);
    cr_assert_eq(daemon_start(daemon_p), 0);
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.state", "{\"domain\": \"gone\"}", &reply);
    cr_assert_str_eq(json_get_string(reply.result, "state"), "shut off");
    api_reply_free(&reply);
    start_and_wait_ready("gone");
    call_simple("domain.destroy", "gone");
}

Test(daemon, attach_and_detach_disk_live_and_config)
{
    define_domain("hot", NULL, NULL, NULL);
    start_and_wait_ready("hot");
    const char *image = daemon_make_image(daemon_p, "data.img", 32);
    char *disk = disk_xml(image, "vdb");
    char *params = xml_params("hot", disk, "\"flags\": [\"live\", \"config\"]");
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.attach_device", params, &reply);
    cr_assert_str_eq(json_get_string(reply.result, "target"), "vdb");
    cr_assert_str_eq(json_get_string(reply.result, "device"), "virtio-disk1");
    cr_assert_str_eq(json_get_string(reply.result, "address"), "0000:00:03.0");
    api_reply_free(&reply);
    cr_assert_eq(daemon_wait_serial(daemon_p, "hot", "PROBE PCI ADD 00:03.0 1af4:1042", 10000), 0,
                 "the guest did not see the disk");
    daemon_call_ok(daemon_p, "domain.blklist", "{\"domain\": \"hot\"}", &reply);
    cr_assert_eq(YAJL_GET_ARRAY(reply.result)->len, 1);
    api_reply_free(&reply);
    daemon_call_ok(daemon_p, "domain.blklist", "{\"domain\": \"hot\", \"inactive\": true}", &reply);
    cr_assert_eq(YAJL_GET_ARRAY(reply.result)->len, 1, "--config part missing");
    api_reply_free(&reply);
    /* Same target again: refused before any QMP. */
    expect_error("domain.attach_device", params, "preflight-failed", "vdb");
    free(params);

    params = xml_params("hot", disk, "\"flags\": [\"live\", \"config\"]");
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
    call_simple("domain.destroy", "hot");
}

Test(daemon, attach_flags_and_preflight)
{
    define_domain("flags", NULL, NULL, NULL);
    const char *image = daemon_make_image(daemon_p, "cfg.img", 8);
    char *disk = disk_xml(image, "vdc");
    /* --live on a stopped domain. */
    char *params = xml_params("flags", disk, "\"flags\": [\"live\"]");
    expect_error("domain.attach_device", params, "not-running", "not running");
    free(params);
    /* current = config when stopped. */
    params = xml_params("flags", disk, "\"flags\": []");
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.attach_device", params, &reply);
    api_reply_free(&reply);
    free(params);
    daemon_call_ok(daemon_p, "domain.blklist", "{\"domain\": \"flags\", \"inactive\": true}",
                   &reply);
    cr_assert_eq(YAJL_GET_ARRAY(reply.result)->len, 1);
    api_reply_free(&reply);
    /* Missing source file: preflight. */
    char *missing = disk_xml("/nonexistent/plugvirt.img", "vdd");
    params = xml_params("flags", missing, "\"flags\": [\"config\"]");
    expect_error("domain.attach_device", params, "preflight-failed", "/nonexistent");
    free(params);
    free(missing);
    /* The cold-plugged disk boots with the domain, and live attach takes the next slot. */
    start_and_wait_ready("flags");
    cr_assert_eq(daemon_wait_serial(daemon_p, "flags", "PROBE PCI ADD 00:03.0", 1000), 0);
    const char *second = daemon_make_image(daemon_p, "live.img", 8);
    char *live_disk = disk_xml(second, "vde");
    params = xml_params("flags", live_disk, NULL); /* current = live when running */
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
    call_simple("domain.destroy", "flags");
}

Test(daemon, detach_timeout_reports_pending_not_detached)
{
    define_domain("stubborn", NULL, "console=ttyS0 probe.unplug=ignore", NULL);
    start_and_wait_ready("stubborn");
    const char *image = daemon_make_image(daemon_p, "stuck.img", 8);
    char *disk = disk_xml(image, "vdb");
    char *params = xml_params("stubborn", disk, NULL);
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.attach_device", params, &reply);
    api_reply_free(&reply);
    free(params);
    params = xml_params("stubborn", disk, "\"timeout\": 1");
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
    call_simple("domain.destroy", "stubborn");
}

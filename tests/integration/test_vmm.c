/* plugvirt-vmm end to end: real KVM, the real probe guest, real sockets. Without a usable
 * /dev/kvm the tests that boot a VM are skipped, saying why; the command-line checks that
 * fail before KVM is opened run everywhere. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "kvm_check.h"

#define BOOT_TIMEOUT_MS 20000
#define REPLY_TIMEOUT_MS 5000

static struct vmm_process vmm;
static struct qmp_client qmp;

static void teardown(void)
{
    qmp_client_close(&qmp);
    if (vmm.errors_length)
        fprintf(stderr, "plugvirt-vmm stderr:\n%s\n", vmm.errors);
    vmm_process_cleanup(&vmm);
}

/* Suite init: every test of the suite boots plugvirt-vmm, which needs /dev/kvm. */
static void require_kvm(void)
{
    char reason[256];
    if (test_kvm_check(reason, sizeof(reason)) < 0)
        cr_skip_test("%s", reason);
}

static void boot(const char *const *extra)
{
    cr_assert_eq(vmm_process_start(&vmm, extra), 0);
    char line[256];
    int rc = vmm_process_wait_line(&vmm, "PROBE READY", BOOT_TIMEOUT_MS, line, sizeof(line));
    cr_assert_eq(rc, 0, "no PROBE READY; console: %s; stderr: %s", vmm.console, vmm.errors);
    cr_assert_eq(qmp_client_connect(&qmp, vmm.qmp_path, true, NULL, 0, REPLY_TIMEOUT_MS), 0);
}

static void execute(const char *command, char *reply, size_t size)
{
    int rc = qmp_client_execute(&qmp, command, reply, size, REPLY_TIMEOUT_MS);
    cr_assert_eq(rc, 0, "no reply to %s (%d)", command, rc);
}

TestSuite(vmm, .init = require_kvm, .fini = teardown, .timeout = 60);
/* Options refused before /dev/kvm is opened: no KVM needed. */
TestSuite(vmm_command_line, .fini = teardown, .timeout = 60);

Test(vmm, boots_probe_guest_with_smp_and_memory)
{
    const char *extra[] = {"-smp", "2", "-m", "128", NULL};
    cr_assert_eq(vmm_process_start(&vmm, extra), 0);
    char line[256];
    int rc = vmm_process_wait_line(&vmm, "PROBE READY", BOOT_TIMEOUT_MS, line, sizeof(line));
    cr_assert_eq(rc, 0, "no PROBE READY; console: %s; stderr: %s", vmm.console, vmm.errors);
    cr_assert_str_eq(line, "PROBE READY cpus=2 mem=128");
}

Test(vmm, memory_size_and_cpu_count_follow_the_command_line)
{
    const char *extra[] = {"-smp", "3,maxcpus=4", "-m", "512M", NULL};
    cr_assert_eq(vmm_process_start(&vmm, extra), 0);
    char line[256];
    cr_assert_eq(vmm_process_wait_line(&vmm, "PROBE READY", BOOT_TIMEOUT_MS, line, sizeof(line)), 0,
                 "console: %s; stderr: %s", vmm.console, vmm.errors);
    cr_assert_str_eq(line, "PROBE READY cpus=3 mem=512");
}

Test(vmm, serial_commands_reach_the_guest)
{
    boot(NULL);
    char line[256];
    cr_assert_eq(vmm_process_send(&vmm, "ping\n"), 0);
    cr_assert_eq(vmm_process_wait_line(&vmm, "PROBE", REPLY_TIMEOUT_MS, line, sizeof(line)), 0);
    cr_assert_str_eq(line, "PROBE PONG");
    cr_assert_eq(vmm_process_send(&vmm, "mem-test 16\n"), 0);
    cr_assert_eq(vmm_process_wait_line(&vmm, "PROBE MEMTEST", 30000, line, sizeof(line)), 0,
                 "console: %s", vmm.console);
    cr_assert_str_eq(line, "PROBE MEMTEST ok");
    cr_assert_eq(vmm_process_send(&vmm, "no-such-command\n"), 0);
    cr_assert_eq(vmm_process_wait_line(&vmm, "PROBE", REPLY_TIMEOUT_MS, line, sizeof(line)), 0);
    cr_assert_str_eq(line, "PROBE ERROR unknown command: no-such-command");
}

Test(vmm, stop_and_cont_change_the_run_state)
{
    boot(NULL);
    char reply[4096], event[4096];
    execute("{\"execute\": \"query-status\", \"id\": 7}", reply, sizeof(reply));
    cr_assert(strstr(reply, "\"running\"") && strstr(reply, "\"id\": 7"), "%s", reply);

    execute("{\"execute\": \"stop\"}", reply, sizeof(reply));
    cr_assert(strstr(reply, "\"return\""), "%s", reply);
    cr_assert_eq(qmp_client_wait_event(&qmp, "STOP", event, sizeof(event), REPLY_TIMEOUT_MS), 0);
    cr_assert(strstr(event, "\"timestamp\"") && strstr(event, "\"seconds\""), "%s", event);
    execute("{\"execute\": \"query-status\"}", reply, sizeof(reply));
    cr_assert(strstr(reply, "\"paused\"") && strstr(reply, "false"), "%s", reply);

    /* A paused guest does not answer its console. */
    vmm_process_send(&vmm, "ping\n");
    cr_assert_eq(vmm_process_wait_line(&vmm, "PROBE PONG", 300, NULL, 0), -ETIMEDOUT);

    execute("{\"execute\": \"cont\"}", reply, sizeof(reply));
    cr_assert_eq(qmp_client_wait_event(&qmp, "RESUME", event, sizeof(event), REPLY_TIMEOUT_MS), 0);
    execute("{\"execute\": \"query-status\"}", reply, sizeof(reply));
    cr_assert(strstr(reply, "\"running\""), "%s", reply);
    cr_assert_eq(vmm_process_wait_line(&vmm, "PROBE PONG", REPLY_TIMEOUT_MS, NULL, 0), 0,
                 "the ping sent while paused is answered after cont");
}

Test(vmm, two_qmp_clients_at_once)
{
    boot(NULL);
    struct qmp_client second;
    char greeting[4096], reply[4096], event[4096];
    cr_assert_eq(qmp_client_connect(&second, vmm.qmp_path, false, greeting, sizeof(greeting),
                                    REPLY_TIMEOUT_MS),
                 0);
    cr_assert(strstr(greeting, "\"QMP\"") && strstr(greeting, "\"capabilities\""), "%s", greeting);
    /* Before negotiation only qmp_capabilities is accepted. */
    cr_assert_eq(qmp_client_execute(&second, "{\"execute\": \"query-status\"}", reply,
                                    sizeof(reply), REPLY_TIMEOUT_MS),
                 0);
    cr_assert(strstr(reply, "CommandNotFound"), "%s", reply);
    cr_assert_eq(qmp_client_execute(&second, "{\"execute\": \"qmp_capabilities\"}", reply,
                                    sizeof(reply), REPLY_TIMEOUT_MS),
                 0);
    execute("{\"execute\": \"stop\"}", reply, sizeof(reply));
    /* Both negotiated clients see the event. */
    cr_assert_eq(qmp_client_wait_event(&qmp, "STOP", event, sizeof(event), REPLY_TIMEOUT_MS), 0);
    cr_assert_eq(qmp_client_wait_event(&second, "STOP", event, sizeof(event), REPLY_TIMEOUT_MS), 0);
    cr_assert_eq(qmp_client_execute(&second, "{\"execute\": \"query-status\"}", reply,
                                    sizeof(reply), REPLY_TIMEOUT_MS),
                 0);
    cr_assert(strstr(reply, "\"paused\""), "%s", reply);
    qmp_client_close(&second);
    execute("{\"execute\": \"cont\"}", reply, sizeof(reply));
    cr_assert(strstr(reply, "\"return\""), "%s", reply);
}

Test(vmm, bad_json_gets_an_error_and_the_connection_survives)
{
    boot(NULL);
    char reply[4096];
    execute("{\"execute\": }\n", reply, sizeof(reply));
    cr_assert(strstr(reply, "\"error\"") && strstr(reply, "GenericError"), "%s", reply);
    execute("{\"execute\": \"no-such-command\"}", reply, sizeof(reply));
    cr_assert(strstr(reply, "CommandNotFound"), "%s", reply);
    execute("[1, 2]", reply, sizeof(reply));
    cr_assert(strstr(reply, "\"error\""), "%s", reply);
    execute("{\"execute\": \"query-name\"}", reply, sizeof(reply));
    cr_assert(strstr(reply, "\"return\""), "%s", reply);
}

Test(vmm, system_powerdown_shuts_the_guest_down)
{
    boot(NULL);
    char reply[4096], event[4096];
    execute("{\"execute\": \"system_powerdown\"}", reply, sizeof(reply));
    cr_assert(strstr(reply, "\"return\""), "%s", reply);
    cr_assert_eq(qmp_client_wait_event(&qmp, "POWERDOWN", event, sizeof(event), REPLY_TIMEOUT_MS),
                 0);
    cr_assert_eq(vmm_process_wait_line(&vmm, "PROBE POWEROFF", REPLY_TIMEOUT_MS, NULL, 0), 0,
                 "console: %s", vmm.console);
    cr_assert_eq(qmp_client_wait_event(&qmp, "SHUTDOWN", event, sizeof(event), REPLY_TIMEOUT_MS),
                 0);
    cr_assert(strstr(event, "guest-shutdown"), "%s", event);
    cr_assert_eq(vmm_process_wait_exit(&vmm, REPLY_TIMEOUT_MS), 0);
    cr_assert_eq(vmm.exit_status, 0);
}

Test(vmm, system_reset_reboots_the_guest)
{
    boot(NULL);
    char reply[4096], event[4096];
    execute("{\"execute\": \"system_reset\"}", reply, sizeof(reply));
    cr_assert(strstr(reply, "\"return\""), "%s", reply);
    cr_assert_eq(qmp_client_wait_event(&qmp, "RESET", event, sizeof(event), REPLY_TIMEOUT_MS), 0);
    cr_assert_eq(vmm_process_wait_line(&vmm, "PROBE READY", BOOT_TIMEOUT_MS, NULL, 0), 0,
                 "console: %s; stderr: %s", vmm.console, vmm.errors);
    vmm_process_send(&vmm, "ping\n");
    cr_assert_eq(vmm_process_wait_line(&vmm, "PROBE PONG", REPLY_TIMEOUT_MS, NULL, 0), 0);
}

Test(vmm, quit_ends_the_process)
{
    boot(NULL);
    char reply[4096], event[4096];
    execute("{\"execute\": \"quit\"}", reply, sizeof(reply));
    cr_assert(strstr(reply, "\"return\""), "%s", reply);
    cr_assert_eq(qmp_client_wait_event(&qmp, "SHUTDOWN", event, sizeof(event), REPLY_TIMEOUT_MS),
                 0);
    cr_assert(strstr(event, "host-qmp-quit"), "%s", event);
    cr_assert_eq(vmm_process_wait_exit(&vmm, REPLY_TIMEOUT_MS), 0);
    cr_assert_eq(vmm.exit_status, 0);
}

Test(vmm, human_monitor_command_runs_hmp)
{
    boot(NULL);
    char reply[4096];
    execute("{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": \"info "
            "status\"}}",
            reply, sizeof(reply));
    cr_assert(strstr(reply, "VM status: running"), "%s", reply);
    execute("{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": \"info "
            "cpus\"}}",
            reply, sizeof(reply));
    cr_assert(strstr(reply, "CPU #0"), "%s", reply);
}

Test(vmm, query_commands_and_cpus)
{
    const char *extra[] = {"-smp", "2", "-name", "probe-vm", NULL};
    boot(extra);
    char reply[16384];
    execute("{\"execute\": \"query-cpus-fast\"}", reply, sizeof(reply));
    cr_assert(strstr(reply, "\"cpu-index\": 1") && strstr(reply, "\"thread-id\""), "%s", reply);
    execute("{\"execute\": \"query-name\"}", reply, sizeof(reply));
    cr_assert(strstr(reply, "probe-vm"), "%s", reply);
    execute("{\"execute\": \"query-kvm\"}", reply, sizeof(reply));
    cr_assert(strstr(reply, "\"enabled\": true"), "%s", reply);
    execute("{\"execute\": \"query-version\"}", reply, sizeof(reply));
    cr_assert(strstr(reply, "\"qemu\""), "%s", reply);
    execute("{\"execute\": \"query-commands\"}", reply, sizeof(reply));
    cr_assert(strstr(reply, "system_powerdown") && strstr(reply, "human-monitor-command"), "%s",
              reply);
}

Test(vmm, start_paused_with_dash_s)
{
    const char *extra[] = {"-S", NULL};
    cr_assert_eq(vmm_process_start(&vmm, extra), 0);
    cr_assert_eq(qmp_client_connect(&qmp, vmm.qmp_path, true, NULL, 0, REPLY_TIMEOUT_MS), 0);
    char reply[4096];
    execute("{\"execute\": \"query-status\"}", reply, sizeof(reply));
    cr_assert(strstr(reply, "\"prelaunch\""), "%s", reply);
    cr_assert_eq(vmm_process_wait_line(&vmm, "PROBE READY", 300, NULL, 0), -ETIMEDOUT);
    execute("{\"execute\": \"cont\"}", reply, sizeof(reply));
    cr_assert_eq(vmm_process_wait_line(&vmm, "PROBE READY", BOOT_TIMEOUT_MS, NULL, 0), 0);
}

Test(vmm_command_line, bad_command_line_exits_1_with_a_message)
{
    const char *arguments[] = {"-m", "12X", "-kernel", harness_probe_guest_path(), NULL};
    cr_assert_eq(vmm_process_start_raw(&vmm, arguments), 0);
    cr_assert_eq(vmm_process_wait_exit(&vmm, REPLY_TIMEOUT_MS), 0);
    cr_assert_eq(vmm.exit_status, 1);
    cr_assert(strstr(vmm.errors, "-m") && strstr(vmm.errors, "12X"), "%s", vmm.errors);
    cr_assert_eq(strchr(vmm.errors, '\n'), vmm.errors + vmm.errors_length - 1, "one line: %s",
                 vmm.errors);
}

Test(vmm_command_line, unknown_option_exits_1)
{
    const char *arguments[] = {"-no-such-option", NULL};
    cr_assert_eq(vmm_process_start_raw(&vmm, arguments), 0);
    cr_assert_eq(vmm_process_wait_exit(&vmm, REPLY_TIMEOUT_MS), 0);
    cr_assert_eq(vmm.exit_status, 1);
    cr_assert(strstr(vmm.errors, "-no-such-option"), "%s", vmm.errors);
}

Test(vmm, missing_kernel_file_is_a_clear_error)
{
    const char *arguments[] = {"-display", "none", "-kernel", "/nonexistent/kernel.elf", NULL};
    cr_assert_eq(vmm_process_start_raw(&vmm, arguments), 0);
    cr_assert_eq(vmm_process_wait_exit(&vmm, REPLY_TIMEOUT_MS), 0);
    cr_assert_eq(vmm.exit_status, 1);
    cr_assert(strstr(vmm.errors, "/nonexistent/kernel.elf"), "%s", vmm.errors);
}

/* The launch line of the seeds' vCPU walkthrough, as written, plus our guest. */
Test(vmm, seed_launch_line_starts_as_written)
{
    memset(&vmm, 0, sizeof(vmm));
    snprintf(vmm.directory, sizeof(vmm.directory), "/tmp/pv-test-XXXXXX");
    cr_assert_not_null(mkdtemp(vmm.directory));
    snprintf(vmm.qmp_path, sizeof(vmm.qmp_path), "%s/qmp.sock", vmm.directory);
    char qmp_option[400];
    snprintf(qmp_option, sizeof(qmp_option), "unix:%s,server=on,wait=off", vmm.qmp_path);
    const char *arguments[] = {"-display",
                               "none",
                               "-no-user-config",
                               "-m",
                               "2048",
                               "-nodefaults",
                               "-monitor",
                               "stdio",
                               "-machine",
                               "pc,accel=kvm,usb=off",
                               "-smp",
                               "1,maxcpus=2",
                               "-cpu",
                               "IvyBridge-IBRS",
                               "-qmp",
                               qmp_option,
                               "-kernel",
                               harness_probe_guest_path(),
                               NULL};
    cr_assert_eq(vmm_process_start_raw(&vmm, arguments), 0);
    cr_assert_eq(qmp_client_connect(&qmp, vmm.qmp_path, true, NULL, 0, REPLY_TIMEOUT_MS), 0,
                 "stderr: %s", vmm.errors);
    char reply[4096];
    execute("{\"execute\": \"query-status\"}", reply, sizeof(reply));
    cr_assert(strstr(reply, "\"running\""), "%s", reply);
    /* The HMP monitor owns stdio here. */
    cr_assert_eq(vmm_process_send(&vmm, "info status\n"), 0);
    cr_assert_eq(vmm_process_wait_line(&vmm, "VM status: running", REPLY_TIMEOUT_MS, NULL, 0), 0,
                 "stdout: %s", vmm.console);
    cr_assert_eq(vmm_process_send(&vmm, "quit\n"), 0);
    cr_assert_eq(vmm_process_wait_exit(&vmm, REPLY_TIMEOUT_MS), 0);
    cr_assert_eq(vmm.exit_status, 0);
}

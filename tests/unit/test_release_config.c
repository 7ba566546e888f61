/* daemon/daemon_config.c as a release build compiles it (without --enable-fault-injection,
 * see Makefile.am): the test-only fault injection cannot be switched on by accident, and a
 * release plugvirtd refuses to start when PLUGVIRT_TEST_ABORT_AFTER_STEP is set instead of
 * ignoring it (issue 9, defect 7). The test build's own daemon honours it (test_drills). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon_config.h"

#ifdef PLUGVIRT_FAULT_INJECTION
#error "this test must be compiled without PLUGVIRT_FAULT_INJECTION"
#endif

static int load(const char *value, struct daemon_config *config, struct pv_error *error)
{
    char path[] = "/tmp/plugvirtd-release-XXXXXX"; /* an empty configuration file */
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    char *argv[] = {"plugvirtd", "--config", path, NULL};
    if (value)
        setenv(DAEMON_CONFIG_FAULT_INJECTION_VARIABLE, value, 1);
    else
        unsetenv(DAEMON_CONFIG_FAULT_INJECTION_VARIABLE);
    daemon_config_init(config);
    int rc = daemon_config_load(config, 3, argv, error);
    unlink(path);
    close(fd);
    return rc;
}

Test(release_config, fault_injection_is_refused_by_name)
{
    struct daemon_config config;
    struct pv_error error = {0};
    int rc = load("device_add", &config, &error);
    cr_assert_lt(rc, 0, "a release plugvirtd accepted the fault injection variable");
    cr_assert(strstr(error.message, DAEMON_CONFIG_FAULT_INJECTION_VARIABLE), "%s", error.message);
    cr_assert(strstr(error.message, "--enable-fault-injection"), "%s", error.message);
    cr_assert_null(config.fault_injection_point);
    daemon_config_free(&config);
}

Test(release_config, without_the_variable_the_release_daemon_starts)
{
    struct daemon_config config;
    struct pv_error error = {0};
    cr_assert_eq(load(NULL, &config, &error), 0, "%s", error.message);
    cr_assert_null(config.fault_injection_point);
    daemon_config_free(&config);
    cr_assert_eq(load("", &config, &error), 0, "an empty variable is unset: %s", error.message);
    daemon_config_free(&config);
}

/* Display, run control, process and the libvirt options whose QEMU meaning
 * already holds here. */
#include "options/misc_options.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "options/option_helpers.h"

/* --- display and defaults ------------------------------------------------------ */

static int option_nographic(struct parse_state *state, const char *argument, struct pv_error *error)
{
    state->config->nographic = true;
    return 0;
}

static int option_nodefaults(struct parse_state *state, const char *argument,
                             struct pv_error *error)
{
    state->config->nodefaults = true;
    return 0;
}

static int apply_display(struct parse_state *state, struct qemu_options *options,
                         struct pv_error *error)
{
    const char *type = qemu_options_get(options, "type");
    if (type && strcmp(type, "none") != 0)
        return pv_error_set(error, -EINVAL, "display %s is not supported (only none)", type);
    return 0;
}

static int option_display(struct parse_state *state, const char *argument, struct pv_error *error)
{
    return option_with(state, argument, "type", apply_display, error);
}

static int option_vga(struct parse_state *state, const char *argument, struct pv_error *error)
{
    if (strcmp(argument, "none") != 0)
        return pv_error_set(error, -EINVAL, "'%s' is not supported (only none)", argument);
    return 0;
}

/* --- run control and process ----------------------------------------------------- */

static int option_no_reboot(struct parse_state *state, const char *argument, struct pv_error *error)
{
    state->config->no_reboot = true;
    return 0;
}

static int option_no_shutdown(struct parse_state *state, const char *argument,
                              struct pv_error *error)
{
    state->config->no_shutdown = true;
    return 0;
}

static int option_start_paused(struct parse_state *state, const char *argument,
                               struct pv_error *error)
{
    state->config->start_paused = true;
    return 0;
}

static int option_daemonize(struct parse_state *state, const char *argument, struct pv_error *error)
{
    state->config->daemonize = true;
    return 0;
}

static int option_pidfile(struct parse_state *state, const char *argument, struct pv_error *error)
{
    if (!*argument)
        return pv_error_set(error, -EINVAL, "empty path");
    return option_set_string(&state->config->pidfile, argument, error);
}

static int option_dump_acpi_tables(struct parse_state *state, const char *argument,
                                   struct pv_error *error)
{
    if (!*argument)
        return pv_error_set(error, -EINVAL, "empty directory");
    return option_set_string(&state->config->acpi_dump_dir, argument, error);
}

/* --- accepted, harmless libvirt options -------------------------------------------- */

static int apply_overcommit(struct parse_state *state, struct qemu_options *options,
                            struct pv_error *error)
{
    static const char *const mem_lock_values[] = {"off", "no", "false", NULL};
    int rc = option_check_value("mem-lock", qemu_options_get(options, "mem-lock"), mem_lock_values,
                                error);
    if (rc == 0)
        rc = option_require_bool(options, "cpu-pm", false, "vCPUs do not own host CPUs", error);
    return rc;
}

static int option_overcommit(struct parse_state *state, const char *argument,
                             struct pv_error *error)
{
    return option_with(state, argument, NULL, apply_overcommit, error);
}

static int apply_msg(struct parse_state *state, struct qemu_options *options,
                     struct pv_error *error)
{
    /* Message decoration only; our log lines have their own format. */
    bool ignored;
    int rc = qemu_options_get_bool(options, "timestamp", false, &ignored, error);
    if (rc == 0)
        rc = qemu_options_get_bool(options, "guest-name", false, &ignored, error);
    return rc;
}

static int option_msg(struct parse_state *state, const char *argument, struct pv_error *error)
{
    return option_with(state, argument, NULL, apply_msg, error);
}

static int apply_rtc(struct parse_state *state, struct qemu_options *options,
                     struct pv_error *error)
{
    static const char *const base_values[] = {"utc", NULL};
    static const char *const clock_values[] = {"host", "rt", "vm", NULL};
    static const char *const driftfix_values[] = {"none", "slew", NULL};
    int rc = option_check_value("base", qemu_options_get(options, "base"), base_values, error);
    if (rc == 0)
        rc = option_check_value("clock", qemu_options_get(options, "clock"), clock_values, error);
    if (rc == 0)
        rc = option_check_value("driftfix", qemu_options_get(options, "driftfix"), driftfix_values,
                                error);
    return rc;
}

static int option_rtc(struct parse_state *state, const char *argument, struct pv_error *error)
{
    return option_with(state, argument, NULL, apply_rtc, error);
}

static int apply_sandbox(struct parse_state *state, struct qemu_options *options,
                         struct pv_error *error)
{
    return option_require_bool(options, "enable", false,
                               "there is no seccomp sandbox; use -sandbox off", error);
}

static int option_sandbox(struct parse_state *state, const char *argument, struct pv_error *error)
{
    return option_with(state, argument, "enable", apply_sandbox, error);
}

static int option_global(struct parse_state *state, const char *argument, struct pv_error *error)
{
    /* Only settings that describe what this VMM does anyway: the in-kernel PIT
     * reinjects lost ticks, and there are no S3/S4 sleep states. */
    static const char *const accepted[] = {"kvm-pit.lost_tick_policy=delay",
                                           "PIIX4_PM.disable_s3=1", "PIIX4_PM.disable_s4=1", NULL};
    for (size_t i = 0; accepted[i]; i++)
        if (strcmp(argument, accepted[i]) == 0)
            return 0;
    return pv_error_set(error, -EINVAL, "'%s' is not supported", argument);
}

static int option_ignored(struct parse_state *state, const char *argument, struct pv_error *error)
{
    return 0;
}

static int option_no_acpi(struct parse_state *state, const char *argument, struct pv_error *error)
{
    return pv_error_set(error, -EINVAL,
                        "ACPI cannot be disabled (hotplug and power button use it)");
}

static int option_readconfig(struct parse_state *state, const char *argument,
                             struct pv_error *error)
{
    return pv_error_set(error, -EINVAL, "configuration files are not supported");
}

const struct option_handler misc_options[] = {
    {"nographic", false, option_nographic},
    {"display", true, option_display},
    {"vga", true, option_vga},
    {"nodefaults", false, option_nodefaults},
    {"no-user-config", false, option_ignored},
    {"nodefconfig", false, option_ignored},
    {"S", false, option_start_paused},
    {"no-reboot", false, option_no_reboot},
    {"no-shutdown", false, option_no_shutdown},
    {"daemonize", false, option_daemonize},
    {"pidfile", true, option_pidfile},
    {"dump-acpi-tables", true, option_dump_acpi_tables},
    {"overcommit", true, option_overcommit},
    {"msg", true, option_msg},
    {"rtc", true, option_rtc},
    {"sandbox", true, option_sandbox},
    {"global", true, option_global},
    {"no-hpet", false, option_ignored},
    {"no-acpi", false, option_no_acpi},
    {"readconfig", true, option_readconfig},
    {NULL, false, NULL},
};

/* Direct kernel boot: -kernel, -initrd, -append, -boot. */
#include "options/boot_options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "options/option_helpers.h"

/* --- boot ------------------------------------------------------------------ */

static int option_kernel(struct parse_state *state, const char *argument, struct pv_error *error)
{
    if (!*argument)
        return pv_error_set(error, -EINVAL, "empty path");
    return option_set_string(&state->config->kernel_path, argument, error);
}

static int option_initrd(struct parse_state *state, const char *argument, struct pv_error *error)
{
    if (!*argument)
        return pv_error_set(error, -EINVAL, "empty path");
    return option_set_string(&state->config->initrd_path, argument, error);
}

static int option_append(struct parse_state *state, const char *argument, struct pv_error *error)
{
    return option_set_string(&state->config->kernel_cmdline, argument, error);
}

static int apply_boot(struct parse_state *state, struct qemu_options *options,
                      struct pv_error *error)
{
    /* We boot the -kernel directly, with no firmware: the boot order and menu
     * have nothing to act on. The values are still checked. */
    bool ignored;
    int rc = qemu_options_get_bool(options, "menu", false, &ignored, error);
    if (rc == 0)
        rc = qemu_options_get_bool(options, "strict", false, &ignored, error);
    qemu_options_ignore(options, "order");
    qemu_options_ignore(options, "once");
    qemu_options_ignore(options, "splash");
    qemu_options_ignore(options, "splash-time");
    qemu_options_ignore(options, "reboot-timeout");
    return rc;
}

static int option_boot(struct parse_state *state, const char *argument, struct pv_error *error)
{
    return option_with(state, argument, "order", apply_boot, error);
}

const struct option_handler boot_options[] = {
    {"kernel", true, option_kernel},
    {"initrd", true, option_initrd},
    {"append", true, option_append},
    {"boot", true, option_boot},
    {NULL, false, NULL},
};

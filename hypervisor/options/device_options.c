/* Devices and their backends: -device, -blockdev, -drive, -netdev, -net. */
#include "options/device_options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "options/option_helpers.h"

static int option_net(struct parse_state *state, const char *argument, struct pv_error *error)
{
    if (strcmp(argument, "none") != 0)
        return pv_error_set(error, -EINVAL,
                            "only 'none' is supported; use -netdev and -device instead");
    return 0;
}

/* --- device-level options, kept verbatim ---------------------------------------- */

static int option_device(struct parse_state *state, const char *argument, struct pv_error *error)
{
    struct vmm_config *config = state->config;
    /* An explicit serial device replaces the default one, as in QEMU. */
    if (strncmp(argument, "isa-serial", 10) == 0 && (argument[10] == ',' || !argument[10]))
        state->default_serial = false;
    return option_append_string(&config->device_args, &config->device_arg_count, argument, error);
}

static int option_blockdev(struct parse_state *state, const char *argument, struct pv_error *error)
{
    struct vmm_config *config = state->config;
    return option_append_string(&config->blockdev_args, &config->blockdev_arg_count, argument,
                                error);
}

static int option_drive(struct parse_state *state, const char *argument, struct pv_error *error)
{
    struct vmm_config *config = state->config;
    return option_append_string(&config->drive_args, &config->drive_arg_count, argument, error);
}

static int option_netdev(struct parse_state *state, const char *argument, struct pv_error *error)
{
    /* Refused until virtio-net exists: accepting it would give the guest no NIC. */
    return pv_error_set(error, -ENOTSUP, "not supported yet (no network backends)");
}

const struct option_handler device_options[] = {
    {"net", true, option_net},           {"device", true, option_device},
    {"blockdev", true, option_blockdev}, {"drive", true, option_drive},
    {"netdev", true, option_netdev},     {NULL, false, NULL},
};

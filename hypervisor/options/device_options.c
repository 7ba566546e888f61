/* Devices and their block backends: -device, -blockdev, -drive (network: net_options.c). */
#include "options/device_options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "options/option_helpers.h"

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

const struct option_handler device_options[] = {
    {"device", true, option_device},
    {"blockdev", true, option_blockdev},
    {"drive", true, option_drive},
    {NULL, false, NULL},
};

/* The VMM configuration: what the command line (cmdline.c, options/) fills in. */
#include "vmm_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void chardev_spec_clear(struct chardev_spec *spec)
{
    free(spec->path);
    free(spec->id);
    free(spec->log_path);
    memset(spec, 0, sizeof(*spec));
}

int chardev_spec_copy(struct chardev_spec *target, const struct chardev_spec *source,
                      struct pv_error *error)
{
    struct chardev_spec copy = *source;
    copy.path = source->path ? strdup(source->path) : NULL;
    copy.id = source->id ? strdup(source->id) : NULL;
    copy.log_path = source->log_path ? strdup(source->log_path) : NULL;
    if ((source->path && !copy.path) || (source->id && !copy.id) ||
        (source->log_path && !copy.log_path)) {
        chardev_spec_clear(&copy);
        return pv_error_set(error, -ENOMEM, "out of memory");
    }
    chardev_spec_clear(target);
    *target = copy;
    return 0;
}

const struct chardev_definition *vmm_config_find_chardev(const struct vmm_config *config,
                                                         const char *id)
{
    for (size_t i = 0; i < config->chardev_count; i++)
        if (config->chardevs[i].spec.id && strcmp(config->chardevs[i].spec.id, id) == 0)
            return &config->chardevs[i];
    return NULL;
}

static void free_strings(char **strings, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(strings[i]);
    free(strings);
}

void vmm_config_free(struct vmm_config *config)
{
    if (!config)
        return;
    free(config->name);
    free(config->machine_type);
    free(config->cpu_model);
    free_strings(config->cpu_features, config->cpu_feature_count);
    free(config->kernel_path);
    free(config->initrd_path);
    free(config->kernel_cmdline);
    chardev_spec_clear(&config->serial);
    for (size_t i = 0; i < VMM_MAX_MONITORS; i++)
        chardev_spec_clear(&config->monitors[i].transport);
    for (size_t i = 0; i < config->chardev_count; i++)
        chardev_spec_clear(&config->chardevs[i].spec);
    free(config->chardevs);
    free(config->uuid);
    free(config->pidfile);
    free(config->acpi_dump_dir);
    free_strings(config->device_args, config->device_arg_count);
    free_strings(config->blockdev_args, config->blockdev_arg_count);
    free_strings(config->drive_args, config->drive_arg_count);
    free_strings(config->chardev_args, config->chardev_arg_count);
    free_strings(config->netdev_args, config->netdev_arg_count);
    free(config->hub_tap_id);
    memset(config, 0, sizeof(*config));
}

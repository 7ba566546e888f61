/* Helpers for device models; see device_model.h. */
#include "device_model.h"

#include <errno.h>

int device_options_check_unused(const struct qemu_options *options, const char *driver,
                                struct pv_error *error)
{
    for (size_t i = 0; i < options->count; i++)
        if (!options->items[i].used)
            return pv_error_set(error, -EINVAL, "Property '%s.%s' not found", driver,
                                options->items[i].key);
    return 0;
}

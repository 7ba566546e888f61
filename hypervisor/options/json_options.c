/* QMP arguments as command-line options: blockdev-add, device_add and drive_add
 * take the same keys as -blockdev and -device, so their JSON objects are flattened
 * into dotted keys ("file.filename") and go through the same option code. */
#include "options/json_options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int flatten_json(yajl_val value, const char *prefix, struct qemu_options *options,
                        struct pv_error *error)
{
    if (YAJL_IS_OBJECT(value)) {
        for (size_t i = 0; i < value->u.object.len; i++) {
            const char *key = value->u.object.keys[i];
            size_t length = strlen(prefix) + strlen(key) + 2;
            char *full = malloc(length);
            if (!full)
                return pv_error_set(error, -ENOMEM, "out of memory");
            snprintf(full, length, "%s%s%s", prefix, *prefix ? "." : "", key);
            int status = flatten_json(value->u.object.values[i], full, options, error);
            free(full);
            if (status < 0)
                return status;
        }
        return 0;
    }
    const char *text;
    if (YAJL_IS_STRING(value))
        text = value->u.string;
    else if (YAJL_IS_TRUE(value))
        text = "on";
    else if (YAJL_IS_FALSE(value))
        text = "off";
    else if (YAJL_IS_NUMBER(value))
        text = value->u.number.r;
    else
        return pv_error_set(error, -EINVAL, "Invalid parameter type for '%s'", prefix);
    struct qemu_option *items =
        realloc(options->items, (options->count + 1) * sizeof(options->items[0]));
    if (!items)
        return pv_error_set(error, -ENOMEM, "out of memory");
    options->items = items;
    items[options->count] = (struct qemu_option){strdup(prefix), strdup(text), false};
    options->count++;
    if (!items[options->count - 1].key || !items[options->count - 1].value)
        return pv_error_set(error, -ENOMEM, "out of memory");
    return 0;
}

int qemu_options_from_json(yajl_val object, struct qemu_options *options, struct pv_error *error)
{
    options->items = NULL;
    options->count = 0;
    if (!YAJL_IS_OBJECT(object))
        return pv_error_set(error, -EINVAL, "Invalid parameter type, expected: object");
    return flatten_json(object, "", options, error);
}

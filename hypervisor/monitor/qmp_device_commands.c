/* QMP commands for disks and devices: blockdev-add/del, device_add/del, the
 * RHEL drive commands, and the PCI and block queries. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/block.h"
#include "block/block_query.h"
#include "options/json_options.h"
#include "device_registry.h"
#include "monitor/qmp_commands.h"
#include "vm.h"

static int from_pv_error(struct qmp_error *error, int rc, const struct pv_error *vm_error)
{
    enum qmp_error_class error_class = QMP_ERROR_GENERIC_ERROR;
    if (rc == -ENODEV)
        error_class = QMP_ERROR_DEVICE_NOT_FOUND;
    qmp_error_set(error, error_class, "%s",
                  vm_error->message[0] ? vm_error->message : "operation failed");
    return rc < 0 ? rc : -EIO;
}

/* The arguments as a flat option list; no arguments is an empty list. */
static int arguments_to_options(yajl_val arguments, struct qemu_options *options,
                                struct qmp_error *error)
{
    memset(options, 0, sizeof(*options));
    if (!arguments)
        return 0;
    struct pv_error flatten_error = {0};
    int rc = qemu_options_from_json(arguments, options, &flatten_error);
    if (rc < 0) {
        qemu_options_free(options);
        return from_pv_error(error, rc, &flatten_error);
    }
    return 0;
}

static int blockdev_add(struct qmp_command_context *context, yajl_val arguments,
                        struct json_writer *result, struct qmp_error *error)
{
    struct qemu_options options;
    int rc = arguments_to_options(arguments, &options, error);
    if (rc < 0)
        return rc;
    struct pv_error vm_error = {0};
    rc = block_blockdev_add(context->vm->block_layer, &options, &vm_error);
    qemu_options_free(&options);
    return rc < 0 ? from_pv_error(error, rc, &vm_error) : 0;
}

static int blockdev_del(struct qmp_command_context *context, yajl_val arguments,
                        struct json_writer *result, struct qmp_error *error)
{
    struct pv_error vm_error = {0};
    int rc = block_blockdev_del(context->vm->block_layer, json_get_string(arguments, "node-name"),
                                &vm_error);
    return rc < 0 ? from_pv_error(error, rc, &vm_error) : 0;
}

static int device_add(struct qmp_command_context *context, yajl_val arguments,
                      struct json_writer *result, struct qmp_error *error)
{
    yajl_val driver = json_object_get(arguments, "driver");
    if (!driver)
        return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR, "Parameter 'driver' is missing");
    if (!YAJL_IS_STRING(driver))
        return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR,
                             "Invalid parameter type for 'driver', expected: string");
    struct qemu_options options;
    int rc = arguments_to_options(arguments, &options, error);
    if (rc < 0)
        return rc;
    /* A JSON integer addr is a devfn (slot << 3 | function), as QEMU's PCI address property
     * takes it; the option text form is "slot.function". */
    int64_t devfn;
    struct qemu_option *address = qemu_options_find(&options, "addr");
    if (address && json_get_int64(arguments, "addr", &devfn) && devfn >= 0 && devfn < 256) {
        char *text = NULL;
        if (asprintf(&text, "%x.%x", (unsigned)(devfn >> 3), (unsigned)(devfn & 7)) < 0) {
            qemu_options_free(&options);
            return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR, "out of memory");
        }
        free(address->value);
        address->value = text;
    }
    if (address)
        address->used = false; /* device_registry_add reads it */
    struct pv_error vm_error = {0};
    rc = device_registry_add(context->vm->device_registry, &options, &vm_error);
    qemu_options_free(&options);
    /* device_add reports an unknown device by GenericError, unlike device_del. */
    if (rc == -ENODEV)
        rc = -EINVAL;
    return rc < 0 ? from_pv_error(error, rc, &vm_error) : 0;
}

static int device_del(struct qmp_command_context *context, yajl_val arguments,
                      struct json_writer *result, struct qmp_error *error)
{
    struct pv_error vm_error = {0};
    int rc = device_registry_request_delete(context->vm->device_registry,
                                            json_get_string(arguments, "id"), &vm_error);
    return rc < 0 ? from_pv_error(error, rc, &vm_error) : 0;
}

static int query_pci(struct qmp_command_context *context, yajl_val arguments,
                     struct json_writer *result, struct qmp_error *error)
{
    device_registry_query_pci(context->vm->device_registry, result);
    return 0;
}

static int query_block(struct qmp_command_context *context, yajl_val arguments,
                       struct json_writer *result, struct qmp_error *error)
{
    block_query_block(context->vm->block_layer, result);
    return 0;
}

static int query_named_block_nodes(struct qmp_command_context *context, yajl_val arguments,
                                   struct json_writer *result, struct qmp_error *error)
{
    block_query_named_block_nodes(context->vm->block_layer, result);
    return 0;
}

/* RHEL's legacy drive_add over QMP: the options of HMP drive_add, if=none only. */
static int redhat_drive_add(struct qmp_command_context *context, yajl_val arguments,
                            struct json_writer *result, struct qmp_error *error)
{
    struct qemu_options options;
    int rc = arguments_to_options(arguments, &options, error);
    if (rc < 0)
        return rc;
    struct pv_error vm_error = {0};
    rc = block_drive_add(context->vm->block_layer, &options, NULL, &vm_error);
    qemu_options_free(&options);
    return rc < 0 ? from_pv_error(error, rc, &vm_error) : 0;
}

static int redhat_drive_del(struct qmp_command_context *context, yajl_val arguments,
                            struct json_writer *result, struct qmp_error *error)
{
    struct pv_error vm_error = {0};
    int rc = block_drive_del(context->vm->block_layer, json_get_string(arguments, "id"), &vm_error);
    if (rc == -ENOENT)
        rc = -ENODEV; /* "Device 'x' not found" is a DeviceNotFound */
    return rc < 0 ? from_pv_error(error, rc, &vm_error) : 0;
}

const struct qmp_command_spec qmp_device_commands[] = {
    {.name = "blockdev-add", .handler = blockdev_add, .flags = QMP_COMMAND_ANY_ARGUMENTS},
    {
        .name = "blockdev-del",
        .handler = blockdev_del,
        .parameters = {{.name = "node-name", .type = QMP_PARAMETER_STRING}},
    },
    {.name = "device_add", .handler = device_add, .flags = QMP_COMMAND_ANY_ARGUMENTS},
    {
        .name = "device_del",
        .handler = device_del,
        .parameters = {{.name = "id", .type = QMP_PARAMETER_STRING}},
    },
    {.name = "query-pci", .handler = query_pci},
    {.name = "query-block", .handler = query_block},
    {
        .name = "query-named-block-nodes",
        .handler = query_named_block_nodes,
        .parameters = {{.name = "flat", .type = QMP_PARAMETER_BOOL, .optional = true}},
    },
    {.name = "__com.redhat_drive_add",
     .handler = redhat_drive_add,
     .flags = QMP_COMMAND_ANY_ARGUMENTS},
    {
        .name = "__com.redhat_drive_del",
        .handler = redhat_drive_del,
        .parameters = {{.name = "id", .type = QMP_PARAMETER_STRING}},
    },
};

const size_t qmp_device_command_count =
    sizeof(qmp_device_commands) / sizeof(qmp_device_commands[0]);

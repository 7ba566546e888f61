/* QMP commands for networking: netdev_add, netdev_del, getfd, closefd, set_link and
 * query-rx-filter, with QEMU 7.2's argument checks and error classes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "monitor/qmp_commands.h"
#include "net/net.h"
#include "net/net_json.h"
#include "options/json_options.h"
#include "vm.h"

static int from_pv_error(struct qmp_error *error, int rc, const struct pv_error *net_error)
{
    /* Only "Device 'x' not found" (netdev_del, set_link) is a DeviceNotFound in QEMU. */
    enum qmp_error_class error_class =
        rc == -ENODEV ? QMP_ERROR_DEVICE_NOT_FOUND : QMP_ERROR_GENERIC_ERROR;
    qmp_error_set(error, error_class, "%s",
                  net_error->message[0] ? net_error->message : "operation failed");
    return rc < 0 ? rc : -EIO;
}

static int netdev_add(struct qmp_command_context *context, yajl_val arguments,
                      struct json_writer *result, struct qmp_error *error)
{
    if (arguments && !YAJL_IS_OBJECT(arguments))
        return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR,
                             "QMP input member 'arguments' must be an object");
    struct qemu_options options;
    memset(&options, 0, sizeof(options));
    struct pv_error net_error = {0};
    int rc = net_netdev_check_json(arguments, &net_error);
    if (rc < 0)
        return from_pv_error(error, rc, &net_error);
    rc = qemu_options_from_json(arguments, &options, &net_error);
    if (rc == 0)
        rc = net_netdev_add(context->vm->net_layer, &options, NET_SYNTAX_QMP, &net_error);
    qemu_options_free(&options);
    return rc < 0 ? from_pv_error(error, rc, &net_error) : 0;
}

static int netdev_del(struct qmp_command_context *context, yajl_val arguments,
                      struct json_writer *result, struct qmp_error *error)
{
    struct pv_error net_error = {0};
    int rc = net_netdev_del(context->vm->net_layer, json_get_string(arguments, "id"), &net_error);
    return rc < 0 ? from_pv_error(error, rc, &net_error) : 0;
}

static int getfd(struct qmp_command_context *context, yajl_val arguments,
                 struct json_writer *result, struct qmp_error *error)
{
    if (context->received_fd < 0)
        return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR,
                             "No file descriptor supplied via SCM_RIGHTS");
    int fd = context->received_fd;
    context->received_fd = -1; /* the layer owns it now, also when it refuses the name */
    struct pv_error net_error = {0};
    int rc = net_layer_add_named_fd(context->vm->net_layer, json_get_string(arguments, "fdname"),
                                    fd, &net_error);
    return rc < 0 ? from_pv_error(error, rc, &net_error) : 0;
}

static int closefd(struct qmp_command_context *context, yajl_val arguments,
                   struct json_writer *result, struct qmp_error *error)
{
    struct pv_error net_error = {0};
    int rc = net_layer_close_named_fd(context->vm->net_layer, json_get_string(arguments, "fdname"),
                                      &net_error);
    return rc < 0 ? from_pv_error(error, rc, &net_error) : 0;
}

static int set_link(struct qmp_command_context *context, yajl_val arguments,
                    struct json_writer *result, struct qmp_error *error)
{
    bool up = false;
    json_get_bool(arguments, "up", &up);
    struct pv_error net_error = {0};
    int rc = net_layer_set_link(context->vm->net_layer, json_get_string(arguments, "name"), up,
                                &net_error);
    return rc < 0 ? from_pv_error(error, rc, &net_error) : 0;
}

static int query_rx_filter(struct qmp_command_context *context, yajl_val arguments,
                           struct json_writer *result, struct qmp_error *error)
{
    struct pv_error net_error = {0};
    /* The layer checks the name before it writes anything. */
    int rc = net_layer_query_rx_filter(context->vm->net_layer, json_get_string(arguments, "name"),
                                       result, &net_error);
    return rc < 0 ? from_pv_error(error, rc, &net_error) : 0;
}

const struct qmp_command_spec qmp_net_commands[] = {
    {.name = "netdev_add", .handler = netdev_add, .flags = QMP_COMMAND_ANY_ARGUMENTS},
    {
        .name = "netdev_del",
        .handler = netdev_del,
        .parameters = {{.name = "id", .type = QMP_PARAMETER_STRING}},
    },
    {
        .name = "getfd",
        .handler = getfd,
        .parameters = {{.name = "fdname", .type = QMP_PARAMETER_STRING}},
    },
    {
        .name = "closefd",
        .handler = closefd,
        .parameters = {{.name = "fdname", .type = QMP_PARAMETER_STRING}},
    },
    {
        .name = "set_link",
        .handler = set_link,
        .parameters = {{.name = "name", .type = QMP_PARAMETER_STRING},
                       {.name = "up", .type = QMP_PARAMETER_BOOL}},
    },
    {
        .name = "query-rx-filter",
        .handler = query_rx_filter,
        .parameters = {{.name = "name", .type = QMP_PARAMETER_STRING, .optional = true}},
    },
};

const size_t qmp_net_command_count = sizeof(qmp_net_commands) / sizeof(qmp_net_commands[0]);

/* QMP commands for networking: netdev_add, netdev_del, getfd, closefd, set_link and
 * query-rx-filter, with QEMU 7.2's argument checks and error classes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "monitor/qmp_commands.h"
#include "net/net.h"
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

/* The tap members' QAPI types (NetdevTapOptions): netdev_add takes any arguments, so the
 * handler checks them the way QEMU's visitor does before anything is flattened. */
enum member_type { MEMBER_STRING, MEMBER_BOOL, MEMBER_UINT32, MEMBER_UINT64 };

static const struct {
    const char *name;
    enum member_type type;
} tap_members[] = {
    {"id", MEMBER_STRING},         {"type", MEMBER_STRING},     {"ifname", MEMBER_STRING},
    {"fd", MEMBER_STRING},         {"fds", MEMBER_STRING},      {"script", MEMBER_STRING},
    {"downscript", MEMBER_STRING}, {"br", MEMBER_STRING},       {"helper", MEMBER_STRING},
    {"sndbuf", MEMBER_UINT64},     {"vnet_hdr", MEMBER_BOOL},   {"vhost", MEMBER_BOOL},
    {"vhostfd", MEMBER_STRING},    {"vhostfds", MEMBER_STRING}, {"vhostforce", MEMBER_BOOL},
    {"queues", MEMBER_UINT32},     {"poll-us", MEMBER_UINT32},
};

static int check_member(const char *name, enum member_type type, yajl_val value,
                        struct qmp_error *error)
{
    switch (type) {
    case MEMBER_STRING:
        if (!YAJL_IS_STRING(value))
            return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR,
                                 "Invalid parameter type for '%s', expected: string", name);
        return 0;
    case MEMBER_BOOL:
        if (!YAJL_IS_TRUE(value) && !YAJL_IS_FALSE(value))
            return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR,
                                 "Invalid parameter type for '%s', expected: boolean", name);
        return 0;
    case MEMBER_UINT32:
    case MEMBER_UINT64:
        /* QEMU 7.2's netdev_add answers like this for strings and negative numbers alike
         * (it visits the arguments as keyval strings). */
        if (!YAJL_IS_INTEGER(value) || YAJL_GET_INTEGER(value) < 0)
            return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR, "Parameter '%s' expects %s", name,
                                 type == MEMBER_UINT32 && YAJL_IS_INTEGER(value) ? "uint32_t"
                                                                                 : "uint64");
        if (type == MEMBER_UINT32 && YAJL_GET_INTEGER(value) > UINT32_MAX)
            return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR, "Parameter '%s' expects uint32_t",
                                 name);
        return 0;
    }
    return 0;
}

static int check_netdev_arguments(yajl_val arguments, struct qmp_error *error)
{
    /* QEMU's order: id, type, then the members of the type. */
    static const char *const first[] = {"id", "type"};
    for (size_t i = 0; i < 2; i++) {
        yajl_val value = json_object_get(arguments, first[i]);
        if (!value)
            return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR, "Parameter '%s' is missing",
                                 first[i]);
        if (check_member(first[i], MEMBER_STRING, value, error) < 0)
            return -EINVAL;
    }
    if (strcmp(json_get_string(arguments, "type"), "tap") != 0)
        return 0; /* net_netdev_check says what is wrong with the type */
    for (size_t i = 0; i < sizeof(tap_members) / sizeof(tap_members[0]); i++) {
        yajl_val value = json_object_get(arguments, tap_members[i].name);
        if (value && check_member(tap_members[i].name, tap_members[i].type, value, error) < 0)
            return -EINVAL;
    }
    return 0;
}

static int netdev_add(struct qmp_command_context *context, yajl_val arguments,
                      struct json_writer *result, struct qmp_error *error)
{
    if (arguments && !YAJL_IS_OBJECT(arguments))
        return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR,
                             "QMP input member 'arguments' must be an object");
    int rc = check_netdev_arguments(arguments, error);
    if (rc < 0)
        return rc;
    struct qemu_options options;
    struct pv_error net_error = {0};
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

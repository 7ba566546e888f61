/* Built-in QMP commands and the dispatcher. */
#include "monitor/qmp_commands.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "monitor/monitor_hmp.h"
#include "vm.h"

/* --- argument checking ----------------------------------------------------- */

static const char *expected_type_name(enum qmp_parameter_type type)
{
    switch (type) {
    case QMP_PARAMETER_STRING:
        return "string";
    case QMP_PARAMETER_INT:
        return "integer";
    case QMP_PARAMETER_BOOL:
        return "boolean";
    case QMP_PARAMETER_NUMBER:
        return "number";
    case QMP_PARAMETER_OBJECT:
        return "object";
    case QMP_PARAMETER_ARRAY:
        return "array";
    default:
        return "value";
    }
}

static int check_type(const struct qmp_parameter *parameter, yajl_val value,
                      struct qmp_error *error)
{
    bool ok;
    switch (parameter->type) {
    case QMP_PARAMETER_STRING:
        ok = YAJL_IS_STRING(value);
        break;
    case QMP_PARAMETER_INT: {
        int64_t unused;
        ok = json_value_int64(value, &unused);
        break;
    }
    case QMP_PARAMETER_UINT: {
        uint64_t unsigned_value;
        int64_t signed_value;
        if (json_value_uint64(value, &unsigned_value) || json_value_int64(value, &signed_value))
            return 0;
        return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR, "Parameter '%s' expects uint64",
                             parameter->name);
    }
    case QMP_PARAMETER_BOOL:
        ok = YAJL_IS_TRUE(value) || YAJL_IS_FALSE(value);
        break;
    case QMP_PARAMETER_NUMBER:
        ok = YAJL_IS_NUMBER(value);
        break;
    case QMP_PARAMETER_OBJECT:
        ok = YAJL_IS_OBJECT(value);
        break;
    case QMP_PARAMETER_ARRAY:
        ok = YAJL_IS_ARRAY(value);
        break;
    default:
        ok = true;
        break;
    }
    if (ok)
        return 0;
    return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR,
                         "Invalid parameter type for '%s', expected: %s", parameter->name,
                         expected_type_name(parameter->type));
}

int qmp_check_arguments(const struct qmp_parameter *parameters, yajl_val arguments,
                        struct qmp_error *error)
{
    /* Like QEMU's input visitor: members in schema order first (missing,
     * wrong type), leftovers last. */
    for (size_t i = 0; i < QMP_MAX_PARAMETERS && parameters[i].name; i++) {
        yajl_val value = json_object_get(arguments, parameters[i].name);
        if (!value) {
            if (parameters[i].optional)
                continue;
            return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR, "Parameter '%s' is missing",
                                 parameters[i].name);
        }
        int rc = check_type(&parameters[i], value, error);
        if (rc < 0)
            return rc;
    }
    for (size_t j = 0; YAJL_IS_OBJECT(arguments) && j < arguments->u.object.len; j++) {
        const char *key = arguments->u.object.keys[j];
        bool known = false;
        for (size_t i = 0; i < QMP_MAX_PARAMETERS && parameters[i].name && !known; i++)
            known = strcmp(parameters[i].name, key) == 0;
        if (!known)
            return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR, "Parameter '%s' is unexpected",
                                 key);
    }
    return 0;
}

/* --- commands -------------------------------------------------------------- */

static int set_error_from(struct qmp_error *error, int rc, const struct pv_error *vm_error)
{
    qmp_error_set(error, QMP_ERROR_GENERIC_ERROR, "%s",
                  vm_error->message[0] ? vm_error->message : "operation failed");
    return rc < 0 ? rc : -EIO;
}

static int qmp_capabilities(struct qmp_command_context *context, yajl_val arguments,
                            struct json_writer *result, struct qmp_error *error)
{
    if (context->negotiated)
        return qmp_error_set(error, QMP_ERROR_COMMAND_NOT_FOUND,
                             "Capabilities negotiation is already complete, command ignored");
    bool enable_oob = false;
    yajl_val enable = json_get_array(arguments, "enable");
    for (size_t i = 0; enable && i < enable->u.array.len; i++) {
        yajl_val capability = enable->u.array.values[i];
        if (!YAJL_IS_STRING(capability))
            return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR,
                                 "Invalid parameter type for 'enable[%zu]', expected: string", i);
        if (strcmp(capability->u.string, "oob") != 0)
            return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR,
                                 "Parameter 'enable[%zu]' does not accept value '%s'", i,
                                 capability->u.string);
        if (!context->oob_offered)
            return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR, "Capability '%s' not available",
                                 "oob");
        enable_oob = true;
    }
    context->negotiated = true;
    context->oob_enabled = enable_oob;
    return 0;
}

static void write_version(struct json_writer *result)
{
    json_writer_begin_object(result);
    json_writer_key(result, "qemu");
    json_writer_begin_object(result);
    json_writer_member_int(result, "micro", QMP_QEMU_VERSION_MICRO);
    json_writer_member_int(result, "minor", QMP_QEMU_VERSION_MINOR);
    json_writer_member_int(result, "major", QMP_QEMU_VERSION_MAJOR);
    json_writer_end_object(result);
    json_writer_member_string(result, "package", QMP_PACKAGE);
    json_writer_end_object(result);
}

static int query_version(struct qmp_command_context *context, yajl_val arguments,
                         struct json_writer *result, struct qmp_error *error)
{
    write_version(result);
    return 0;
}

static void write_command_name(void *opaque, const struct qmp_command_spec *spec)
{
    struct json_writer *result = opaque;
    json_writer_begin_object(result);
    json_writer_member_string(result, "name", spec->name);
    json_writer_end_object(result);
}

static int query_commands(struct qmp_command_context *context, yajl_val arguments,
                          struct json_writer *result, struct qmp_error *error)
{
    json_writer_begin_array(result);
    qmp_command_foreach(context->registry, write_command_name, result);
    json_writer_end_array(result);
    return 0;
}

static int query_status(struct qmp_command_context *context, yajl_val arguments,
                        struct json_writer *result, struct qmp_error *error)
{
    enum vm_run_state state = vm_get_run_state(context->vm);
    json_writer_begin_object(result);
    json_writer_member_string(result, "status", vm_run_state_name(state));
    json_writer_member_bool(result, "singlestep", false);
    json_writer_member_bool(result, "running", state == VM_RUN_STATE_RUNNING);
    json_writer_end_object(result);
    return 0;
}

static int query_name(struct qmp_command_context *context, yajl_val arguments,
                      struct json_writer *result, struct qmp_error *error)
{
    const char *name = context->vm->config ? context->vm->config->name : NULL;
    json_writer_begin_object(result);
    if (name)
        json_writer_member_string(result, "name", name);
    json_writer_end_object(result);
    return 0;
}

static unsigned or_one(unsigned value)
{
    return value ? value : 1;
}

static int query_cpus_fast(struct qmp_command_context *context, yajl_val arguments,
                           struct json_writer *result, struct qmp_error *error)
{
    struct vm *vm = context->vm;
    struct vm_vcpu_info info[VMM_MAX_VCPUS];
    unsigned count = vm_get_vcpu_info(vm, info, VMM_MAX_VCPUS);
    /* x86 topology ids as QEMU derives them from -smp sockets/cores/threads. */
    unsigned threads = vm->config ? or_one(vm->config->threads) : 1;
    unsigned cores = vm->config ? or_one(vm->config->cores) : 1;
    json_writer_begin_array(result);
    for (unsigned i = 0; i < count; i++) {
        unsigned index = info[i].index;
        char qom_path[64];
        snprintf(qom_path, sizeof(qom_path), "/machine/unattached/device[%u]", index);
        json_writer_begin_object(result);
        json_writer_member_int(result, "thread-id", info[i].thread_id);
        json_writer_key(result, "props");
        json_writer_begin_object(result);
        json_writer_member_uint(result, "core-id", (index / threads) % cores);
        json_writer_member_uint(result, "thread-id", index % threads);
        json_writer_member_uint(result, "socket-id", index / (threads * cores));
        json_writer_end_object(result);
        json_writer_member_string(result, "qom-path", qom_path);
        json_writer_member_uint(result, "cpu-index", index);
        json_writer_member_string(result, "target", "x86_64");
        json_writer_end_object(result);
    }
    json_writer_end_array(result);
    return 0;
}

static int query_kvm(struct qmp_command_context *context, yajl_val arguments,
                     struct json_writer *result, struct qmp_error *error)
{
    json_writer_begin_object(result);
    json_writer_member_bool(result, "enabled", true);
    json_writer_member_bool(result, "present", true);
    json_writer_end_object(result);
    return 0;
}

static int stop(struct qmp_command_context *context, yajl_val arguments, struct json_writer *result,
                struct qmp_error *error)
{
    struct pv_error vm_error = {0};
    int rc = vm_pause(context->vm, &vm_error);
    return rc < 0 ? set_error_from(error, rc, &vm_error) : 0;
}

static int cont(struct qmp_command_context *context, yajl_val arguments, struct json_writer *result,
                struct qmp_error *error)
{
    struct pv_error vm_error = {0};
    int rc = vm_resume(context->vm, &vm_error);
    return rc < 0 ? set_error_from(error, rc, &vm_error) : 0;
}

static int system_reset(struct qmp_command_context *context, yajl_val arguments,
                        struct json_writer *result, struct qmp_error *error)
{
    struct pv_error vm_error = {0};
    int rc = vm_reset(context->vm, &vm_error);
    return rc < 0 ? set_error_from(error, rc, &vm_error) : 0;
}

static int system_powerdown(struct qmp_command_context *context, yajl_val arguments,
                            struct json_writer *result, struct qmp_error *error)
{
    struct pv_error vm_error = {0};
    int rc = vm_powerdown(context->vm, &vm_error);
    return rc < 0 ? set_error_from(error, rc, &vm_error) : 0;
}

static void quit_after_reply(struct vm *vm)
{
    vm_request_shutdown(vm, false, "host-qmp-quit");
}

static int quit(struct qmp_command_context *context, yajl_val arguments, struct json_writer *result,
                struct qmp_error *error)
{
    /* The reply goes out first; the VM then ends (it leaves time to flush). */
    context->after_reply = quit_after_reply;
    return 0;
}

static int human_monitor_command(struct qmp_command_context *context, yajl_val arguments,
                                 struct json_writer *result, struct qmp_error *error)
{
    const char *command_line = json_get_string(arguments, "command-line");
    int64_t cpu_index = 0;
    json_get_int64(arguments, "cpu-index", &cpu_index);
    struct hmp_output output;
    hmp_output_init(&output);
    struct hmp_context hmp = {
        .vm = context->vm,
        .output = &output,
        .current_cpu = (int)cpu_index,
    };
    hmp_execute(&hmp, command_line);
    int rc = 0;
    if (output.failed)
        rc = qmp_error_set(error, QMP_ERROR_GENERIC_ERROR, "out of memory");
    else
        json_writer_string_length(result, hmp_output_text(&output), output.length);
    hmp_output_free(&output);
    context->after_reply = hmp.after_output;
    return rc;
}

static const struct qmp_command_spec builtin_commands[] = {
    {
        .name = "qmp_capabilities",
        .handler = qmp_capabilities,
        .parameters = {{.name = "enable", .type = QMP_PARAMETER_ARRAY, .optional = true}},
        .flags = QMP_COMMAND_NEGOTIATION,
    },
    {.name = "query-version", .handler = query_version},
    {.name = "query-commands", .handler = query_commands},
    {.name = "query-status", .handler = query_status},
    {.name = "query-name", .handler = query_name},
    {.name = "query-cpus-fast", .handler = query_cpus_fast},
    {.name = "query-kvm", .handler = query_kvm},
    {.name = "stop", .handler = stop},
    {.name = "cont", .handler = cont},
    {.name = "system_reset", .handler = system_reset},
    {.name = "system_powerdown", .handler = system_powerdown},
    {.name = "quit", .handler = quit},
    {
        .name = "human-monitor-command",
        .handler = human_monitor_command,
        .parameters = {{.name = "command-line", .type = QMP_PARAMETER_STRING},
                       {.name = "cpu-index", .type = QMP_PARAMETER_INT, .optional = true}},
    },
};

/* --- registry ---------------------------------------------------------------- */

void qmp_command_registry_init(struct qmp_command_registry *registry)
{
    memset(registry, 0, sizeof(*registry));
    registry->tables[0] = builtin_commands;
    registry->table_sizes[0] = sizeof(builtin_commands) / sizeof(builtin_commands[0]);
    registry->tables[1] = qmp_device_commands;
    registry->table_sizes[1] = qmp_device_command_count;
    registry->tables[2] = qmp_net_commands;
    registry->table_sizes[2] = qmp_net_command_count;
    registry->table_count = 3;
}

int qmp_command_registry_add(struct qmp_command_registry *registry,
                             const struct qmp_command_spec *table, size_t count,
                             struct pv_error *error)
{
    if (registry->table_count == QMP_MAX_COMMAND_TABLES)
        return pv_error_set(error, -ENOSPC, "too many QMP command tables");
    for (size_t i = 0; i < count; i++)
        if (qmp_command_find(registry, table[i].name))
            return pv_error_set(error, -EEXIST, "QMP command %s is already registered",
                                table[i].name);
    registry->tables[registry->table_count] = table;
    registry->table_sizes[registry->table_count] = count;
    registry->table_count++;
    return 0;
}

const struct qmp_command_spec *qmp_command_find(const struct qmp_command_registry *registry,
                                                const char *name)
{
    for (size_t t = 0; t < registry->table_count; t++)
        for (size_t i = 0; i < registry->table_sizes[t]; i++)
            if (strcmp(registry->tables[t][i].name, name) == 0)
                return &registry->tables[t][i];
    return NULL;
}

void qmp_command_foreach(const struct qmp_command_registry *registry,
                         void (*fn)(void *opaque, const struct qmp_command_spec *spec),
                         void *opaque)
{
    for (size_t t = 0; t < registry->table_count; t++)
        for (size_t i = 0; i < registry->table_sizes[t]; i++)
            fn(opaque, &registry->tables[t][i]);
}

/* --- dispatch ------------------------------------------------------------------ */

static int run_request(struct qmp_command_context *context, const struct qmp_request *request,
                       struct json_writer *result, struct qmp_error *error)
{
    const struct qmp_command_spec *spec = qmp_command_find(context->registry, request->command);
    if (!spec || (!context->negotiated && !(spec->flags & QMP_COMMAND_NEGOTIATION)))
        return qmp_error_set(error, QMP_ERROR_COMMAND_NOT_FOUND,
                             "The command %s has not been found", request->command);
    if (request->oob && !(spec->flags & QMP_COMMAND_ALLOW_OOB))
        return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR, "The command %s does not support OOB",
                             request->command);
    if (!(spec->flags & QMP_COMMAND_ANY_ARGUMENTS)) {
        int rc = qmp_check_arguments(spec->parameters, request->arguments, error);
        if (rc < 0)
            return rc;
    }
    int rc = spec->handler(context, request->arguments, result, error);
    if (rc < 0 && !error->desc[0])
        qmp_error_set(error, QMP_ERROR_GENERIC_ERROR, "%s failed", request->command);
    return rc;
}

int qmp_dispatch(struct qmp_command_context *context, const char *text, size_t length,
                 struct json_writer *reply)
{
    struct qmp_request request;
    struct qmp_error error = {QMP_ERROR_GENERIC_ERROR, ""};
    struct json_writer result;
    json_writer_init(&result, false);
    bool negotiating = !context->negotiated;

    int rc = qmp_request_parse(text, length, context->oob_enabled, &request, &error);
    if (rc == 0)
        rc = run_request(context, &request, &result, &error);
    if (rc == 0 && result.failed)
        rc = qmp_error_set(&error, QMP_ERROR_GENERIC_ERROR, "out of memory");

    int format_rc;
    if (rc < 0) {
        /* QEMU's hint while only qmp_capabilities is available. */
        if (negotiating && error.error_class == QMP_ERROR_COMMAND_NOT_FOUND)
            qmp_error_set(&error, QMP_ERROR_COMMAND_NOT_FOUND,
                          "Expecting capabilities negotiation with 'qmp_capabilities'");
        context->after_reply = NULL;
        format_rc = qmp_format_error(reply, &error, request.id);
    } else {
        format_rc =
            qmp_format_return(reply, result.length ? json_writer_text(&result) : NULL, request.id);
    }
    json_writer_free(&result);
    qmp_request_free(&request);
    return format_rc;
}

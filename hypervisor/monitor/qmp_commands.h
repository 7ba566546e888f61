/* QMP commands of plugvirt-vmm: a table of command specs, a registry that
 * holds such tables, and the dispatcher that turns one request text into
 * one reply, with QEMU 8.2's checks and error texts.
 *
 * Adding a command is one more entry in a table: its name, its parameters
 * (checked before the handler runs: "Parameter 'x' is missing",
 * "Parameter 'x' is unexpected", "Invalid parameter type for 'x', expected:
 * string") and a handler that writes the "return" value with a json_writer.
 * Modules may also register a table of their own with
 * qmp_command_registry_add. Everything runs on the main thread. */
#ifndef PLUGVIRT_QMP_COMMANDS_H
#define PLUGVIRT_QMP_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_tree.h>

#include "json_util.h"
#include "pv_error.h"
#include "monitor/qmp_version.h"
#include "qmp_codec.h"

struct vm;
struct qmp_command_registry;

/* Per-session state a command may read or change. */
struct qmp_command_context {
    struct vm *vm;
    const struct qmp_command_registry *registry;
    bool negotiated;  /* qmp_capabilities done: every command is available */
    bool oob_offered; /* the greeting listed "oob" */
    bool oob_enabled; /* the client enabled it: exec-oob is accepted */
    /* The last descriptor that arrived with SCM_RIGHTS on this session and that getfd has
     * not taken yet, or -1 (the session closes it when it ends). */
    int received_fd;
    /* Set by a handler for work that must follow its reply (quit); the
     * monitor calls it once the reply is queued, then clears it. */
    void (*after_reply)(struct vm *vm);
};

/* Writes the "return" value into `result` (nothing written means {}).
 * Returns 0, or a negative errno with `error` filled. Arguments have been
 * checked against the spec; `arguments` is NULL when the request had none. */
typedef int (*qmp_command_handler)(struct qmp_command_context *context, yajl_val arguments,
                                   struct json_writer *result, struct qmp_error *error);

enum qmp_parameter_type {
    QMP_PARAMETER_STRING,
    QMP_PARAMETER_INT,  /* int64 */
    QMP_PARAMETER_UINT, /* uint64 (QEMU also takes negative numbers here) */
    QMP_PARAMETER_BOOL,
    QMP_PARAMETER_NUMBER, /* any number */
    QMP_PARAMETER_OBJECT,
    QMP_PARAMETER_ARRAY,
    QMP_PARAMETER_ANY,
};

struct qmp_parameter {
    const char *name; /* NULL ends the list */
    enum qmp_parameter_type type;
    bool optional;
};

#define QMP_MAX_PARAMETERS 16

enum qmp_command_flags {
    QMP_COMMAND_NEGOTIATION = 1 << 0,   /* available before qmp_capabilities */
    QMP_COMMAND_ANY_ARGUMENTS = 1 << 1, /* the handler checks its arguments (device_add) */
    QMP_COMMAND_ALLOW_OOB = 1 << 2,     /* may be sent with exec-oob */
};

struct qmp_command_spec {
    const char *name;
    qmp_command_handler handler;
    struct qmp_parameter parameters[QMP_MAX_PARAMETERS];
    unsigned flags;
};

#define QMP_MAX_COMMAND_TABLES 16

struct qmp_command_registry {
    const struct qmp_command_spec *tables[QMP_MAX_COMMAND_TABLES];
    size_t table_sizes[QMP_MAX_COMMAND_TABLES];
    size_t table_count;
};

/* Disk and device commands (qmp_device_commands.c), part of every registry. */
extern const struct qmp_command_spec qmp_device_commands[];
extern const size_t qmp_device_command_count;

/* Network commands (qmp_net_commands.c), part of every registry. */
extern const struct qmp_command_spec qmp_net_commands[];
extern const size_t qmp_net_command_count;

/* A registry holding the built-in, device and network commands. */
void qmp_command_registry_init(struct qmp_command_registry *registry);
/* Adds a table (kept by pointer: static storage). A name already present is
 * an error (-EEXIST), as is a full registry (-ENOSPC). */
int qmp_command_registry_add(struct qmp_command_registry *registry,
                             const struct qmp_command_spec *table, size_t count,
                             struct pv_error *error);
const struct qmp_command_spec *qmp_command_find(const struct qmp_command_registry *registry,
                                                const char *name);
/* Calls fn for every registered command, in registration order. */
void qmp_command_foreach(const struct qmp_command_registry *registry,
                         void (*fn)(void *opaque, const struct qmp_command_spec *spec),
                         void *opaque);

/* Checks arguments against a spec (exposed for tests and for handlers that
 * take nested objects). Returns 0 or -EINVAL with QEMU's message. */
int qmp_check_arguments(const struct qmp_parameter *parameters, yajl_val arguments,
                        struct qmp_error *error);

/* Handles one request text (a complete JSON value from qmp_stream) and
 * appends exactly one reply message, "\r\n" included, to `reply`. Returns 0,
 * or -ENOMEM when the reply could not be formatted. */
int qmp_dispatch(struct qmp_command_context *context, const char *text, size_t length,
                 struct json_writer *reply);

#endif

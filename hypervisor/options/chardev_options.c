/* Character devices and their frontends: -chardev, -serial, -monitor, -qmp,
 * -mon, and what QEMU decides about them after the last option. */
#include "options/chardev_options.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "options/option_helpers.h"

/* --- chardevs, serial, monitors ---------------------------------------------------- */

static int apply_unix_socket(struct qemu_options *options, struct chardev_spec *spec,
                             struct pv_error *error)
{
    const char *path = qemu_options_get(options, "path");
    if (!path || !*path)
        return pv_error_set(error, -EINVAL, "a unix socket needs a path");
    bool server, wait;
    int rc = qemu_options_get_bool(options, "server", false, &server, error);
    if (rc == 0)
        rc = qemu_options_get_bool(options, "wait", true, &wait, error);
    if (rc < 0)
        return rc;
    if (!server && qemu_options_get(options, "wait"))
        return pv_error_set(error, -EINVAL, "wait= is only valid with server=on");
    spec->kind = server ? CHARDEV_KIND_UNIX_SERVER : CHARDEV_KIND_UNIX_CLIENT;
    spec->wait = server && wait;
    return option_set_string(&spec->path, path, error);
}

static const char legacy_chardev_forms[] =
    "use stdio, null, pty, file:PATH, unix:PATH[,server=on,wait=off] or chardev:ID";

/* QEMU's short chardev syntax of -serial, -monitor and -qmp. "chardev:ID"
 * leaves kind NONE with the id set, resolved by finish_config(). */
static int parse_legacy_chardev(const char *text, bool allow_mux, struct chardev_spec *spec,
                                struct pv_error *error)
{
    chardev_spec_clear(spec);
    if (strcmp(text, "stdio") == 0) {
        spec->kind = CHARDEV_KIND_STDIO;
    } else if (strcmp(text, "null") == 0) {
        spec->kind = CHARDEV_KIND_NULL;
    } else if (strcmp(text, "pty") == 0) {
        spec->kind = CHARDEV_KIND_PTY;
    } else if (strcmp(text, "mon:stdio") == 0 && allow_mux) {
        spec->kind = CHARDEV_KIND_MUX_STDIO;
    } else if (strncmp(text, "file:", 5) == 0) {
        /* As in QEMU, the rest is the path verbatim, commas included. */
        if (!text[5])
            return pv_error_set(error, -EINVAL, "file: needs a path");
        spec->kind = CHARDEV_KIND_FILE;
        return option_set_string(&spec->path, text + 5, error);
    } else if (strncmp(text, "unix:", 5) == 0) {
        struct qemu_options options;
        int rc = qemu_options_parse(&options, text + 5, "path", QEMU_OPTIONS_FLAG_SHORTHAND, error);
        if (rc == 0)
            rc = apply_unix_socket(&options, spec, error);
        if (rc == 0)
            rc = qemu_options_check_unused(&options, error);
        qemu_options_free(&options);
        return rc;
    } else if (strncmp(text, "chardev:", 8) == 0) {
        if (!option_id_is_wellformed(text + 8))
            return pv_error_set(error, -EINVAL, "invalid chardev id '%s'", text + 8);
        return option_set_string(&spec->id, text + 8, error);
    } else {
        return pv_error_set(error, -EINVAL, "'%s' is not supported (%s)", text,
                            legacy_chardev_forms);
    }
    return 0;
}

static int add_monitor(struct parse_state *state, const char *option_name,
                       struct monitor_spec **monitor, struct pv_error *error)
{
    struct vmm_config *config = state->config;
    if (config->monitor_count >= VMM_MAX_MONITORS)
        return pv_error_set(error, -EINVAL, "too many monitors (at most %d)", VMM_MAX_MONITORS);
    state->monitor_options[config->monitor_count] = option_name;
    *monitor = &config->monitors[config->monitor_count++];
    memset(*monitor, 0, sizeof(**monitor));
    return 0;
}

static int option_serial(struct parse_state *state, const char *argument, struct pv_error *error)
{
    struct vmm_config *config = state->config;
    if (state->serial_given)
        return pv_error_set(error, -EINVAL, "only one serial port is supported");
    state->serial_given = true;
    state->default_serial = false;
    if (strcmp(argument, "none") == 0)
        return 0;
    int rc = parse_legacy_chardev(argument, true, &config->serial, error);
    if (rc < 0 || config->serial.kind != CHARDEV_KIND_MUX_STDIO)
        return rc;
    /* "mon:" puts an HMP monitor on the same mux, and replaces the default monitor. */
    state->default_monitor = false;
    struct monitor_spec *monitor = NULL;
    rc = add_monitor(state, "-serial", &monitor, error);
    if (rc < 0)
        return rc;
    monitor->mode = MONITOR_MODE_HMP;
    monitor->transport.kind = CHARDEV_KIND_MUX_STDIO;
    return 0;
}

static int add_legacy_monitor(struct parse_state *state, const char *option_name,
                              const char *argument, enum monitor_mode mode, bool pretty,
                              struct pv_error *error)
{
    struct monitor_spec *monitor = NULL;
    int rc = add_monitor(state, option_name, &monitor, error);
    if (rc < 0)
        return rc;
    monitor->mode = mode;
    monitor->pretty = pretty;
    return parse_legacy_chardev(argument, false, &monitor->transport, error);
}

static int option_monitor(struct parse_state *state, const char *argument, struct pv_error *error)
{
    state->default_monitor = false;
    if (strcmp(argument, "none") == 0)
        return 0;
    return add_legacy_monitor(state, "-monitor", argument, MONITOR_MODE_HMP, false, error);
}

static int option_qmp(struct parse_state *state, const char *argument, struct pv_error *error)
{
    state->default_monitor = false;
    return add_legacy_monitor(state, "-qmp", argument, MONITOR_MODE_QMP, false, error);
}

static int option_qmp_pretty(struct parse_state *state, const char *argument,
                             struct pv_error *error)
{
    state->default_monitor = false;
    return add_legacy_monitor(state, "-qmp-pretty", argument, MONITOR_MODE_QMP, true, error);
}

static int apply_mon(struct parse_state *state, struct qemu_options *options,
                     struct pv_error *error)
{
    const char *chardev_id;
    int rc = qemu_options_get_required(options, "chardev", &chardev_id, error);
    if (rc < 0)
        return rc;
    const char *mode = qemu_options_get(options, "mode");
    if (mode && strcmp(mode, "control") != 0 && strcmp(mode, "readline") != 0)
        return pv_error_set(error, -EINVAL, "mode '%s' is not valid (use control or readline)",
                            mode);
    bool qmp = mode && strcmp(mode, "control") == 0;
    bool pretty;
    rc = qemu_options_get_bool(options, "pretty", false, &pretty, error);
    if (rc < 0)
        return rc;
    if (pretty && !qmp)
        return pv_error_set(error, -EINVAL, "pretty=on is only valid with mode=control");
    qemu_options_ignore(options, "id");
    if (!option_id_is_wellformed(chardev_id))
        return pv_error_set(error, -EINVAL, "invalid chardev id '%s'", chardev_id);
    struct monitor_spec *monitor = NULL;
    rc = add_monitor(state, "-mon", &monitor, error);
    if (rc < 0)
        return rc;
    monitor->mode = qmp ? MONITOR_MODE_QMP : MONITOR_MODE_HMP;
    monitor->pretty = pretty;
    return option_set_string(&monitor->transport.id, chardev_id, error);
}

static int option_mon(struct parse_state *state, const char *argument, struct pv_error *error)
{
    state->default_monitor = false;
    return option_with(state, argument, "chardev", apply_mon, error);
}

static int apply_chardev(struct parse_state *state, struct qemu_options *options,
                         struct pv_error *error)
{
    struct vmm_config *config = state->config;
    const char *backend;
    const char *id;
    int rc = qemu_options_get_required(options, "backend", &backend, error);
    if (rc == 0)
        rc = qemu_options_get_required(options, "id", &id, error);
    if (rc < 0)
        return rc;
    if (!option_id_is_wellformed(id))
        return pv_error_set(error, -EINVAL, "invalid id '%s'", id);
    if (vmm_config_find_chardev(config, id))
        return pv_error_set(error, -EINVAL, "duplicate id '%s'", id);
    bool mux;
    rc = qemu_options_get_bool(options, "mux", false, &mux, error);
    if (rc < 0)
        return rc;
    if (mux && strcmp(backend, "stdio") != 0)
        return pv_error_set(error, -EINVAL, "mux=on is only supported with the stdio backend");

    struct chardev_spec spec = {0};
    if (strcmp(backend, "socket") == 0) {
        if (qemu_options_get(options, "host") || qemu_options_get(options, "port") ||
            qemu_options_get(options, "fd"))
            return pv_error_set(error, -EINVAL, "only unix sockets (path=) are supported");
        rc = apply_unix_socket(options, &spec, error);
    } else if (strcmp(backend, "file") == 0) {
        const char *path;
        rc = qemu_options_get_required(options, "path", &path, error);
        spec.kind = CHARDEV_KIND_FILE;
        if (rc == 0)
            rc = option_set_string(&spec.path, path, error);
    } else if (strcmp(backend, "pty") == 0) {
        spec.kind = CHARDEV_KIND_PTY;
    } else if (strcmp(backend, "null") == 0) {
        spec.kind = CHARDEV_KIND_NULL;
    } else if (strcmp(backend, "stdio") == 0) {
        spec.kind = mux ? CHARDEV_KIND_MUX_STDIO : CHARDEV_KIND_STDIO;
    } else {
        return pv_error_set(error, -EINVAL,
                            "backend '%s' is not supported (use socket, file, pty, null or stdio)",
                            backend);
    }
    if (rc == 0)
        rc = option_set_string(&spec.id, id, error);
    const char *log_path = qemu_options_get(options, "logfile");
    if (rc == 0 && log_path)
        rc = option_set_string(&spec.log_path, log_path, error);
    if (rc == 0)
        rc = qemu_options_get_bool(options, "logappend", false, &spec.log_append, error);
    if (rc == 0 && spec.log_append && !log_path)
        rc = pv_error_set(error, -EINVAL, "logappend=on needs logfile=");
    struct chardev_definition *grown =
        rc == 0 ? realloc(config->chardevs, (config->chardev_count + 1) * sizeof(*grown)) : NULL;
    if (rc == 0 && !grown)
        rc = pv_error_set(error, -ENOMEM, "out of memory");
    if (rc < 0) {
        chardev_spec_clear(&spec);
        return rc;
    }
    config->chardevs = grown;
    config->chardevs[config->chardev_count++] = (struct chardev_definition){.spec = spec};
    return 0;
}

static int option_chardev(struct parse_state *state, const char *argument, struct pv_error *error)
{
    struct vmm_config *config = state->config;
    int rc = option_with(state, argument, "backend", apply_chardev, error);
    if (rc < 0)
        return rc;
    return option_append_string(&config->chardev_args, &config->chardev_arg_count, argument, error);
}

/* --- after the last option ------------------------------------------------------- */

static int resolve_chardev_reference(struct vmm_config *config, struct chardev_spec *spec,
                                     const char *option_name, struct pv_error *error)
{
    if (spec->kind != CHARDEV_KIND_NONE || !spec->id)
        return 0;
    struct chardev_definition *definition =
        (struct chardev_definition *)vmm_config_find_chardev(config, spec->id);
    if (!definition)
        return pv_error_set(error, -EINVAL, "%s: chardev '%s' not found", option_name, spec->id);
    if (definition->claimed && definition->spec.kind != CHARDEV_KIND_MUX_STDIO)
        return pv_error_set(error, -EINVAL,
                            "%s: chardev '%s' is already in use (only stdio,mux=on is shared)",
                            option_name, spec->id);
    definition->claimed = true;
    return chardev_spec_copy(spec, &definition->spec, error);
}

static int add_default_monitor(struct parse_state *state, enum chardev_kind kind,
                               struct pv_error *error)
{
    struct monitor_spec *monitor = NULL;
    int rc = add_monitor(state, "-nographic", &monitor, error);
    if (rc < 0)
        return rc;
    monitor->mode = MONITOR_MODE_HMP;
    monitor->transport.kind = kind;
    return 0;
}

/* Only one plain user of stdio; mux users all share one (QEMU: "cannot use
 * stdio by multiple character devices"). */
static int check_stdio_users(struct parse_state *state, struct pv_error *error)
{
    struct vmm_config *config = state->config;
    const char *plain_user = NULL;
    const char *mux_user = NULL;
    const struct chardev_spec *specs[VMM_MAX_MONITORS + 1];
    const char *options[VMM_MAX_MONITORS + 1];
    size_t count = 0;
    specs[count] = &config->serial;
    options[count++] = "-serial";
    for (size_t i = 0; i < config->monitor_count; i++) {
        specs[count] = &config->monitors[i].transport;
        options[count++] = state->monitor_options[i];
    }
    for (size_t i = 0; i < count; i++) {
        enum chardev_kind kind = specs[i]->kind;
        if (kind != CHARDEV_KIND_STDIO && kind != CHARDEV_KIND_MUX_STDIO)
            continue;
        if (config->daemonize)
            return pv_error_set(error, -EINVAL, "%s: cannot use stdio with -daemonize", options[i]);
        const char *other = plain_user ? plain_user : mux_user;
        if (other && (kind == CHARDEV_KIND_STDIO || plain_user))
            return pv_error_set(error, -EINVAL, "%s: stdio is already used by %s", options[i],
                                other);
        if (kind == CHARDEV_KIND_STDIO)
            plain_user = options[i];
        else if (!mux_user)
            mux_user = options[i];
    }
    return 0;
}

int chardev_options_finish(struct parse_state *state, struct pv_error *error)
{
    struct vmm_config *config = state->config;
    if (config->nographic && config->daemonize)
        return pv_error_set(error, -EINVAL, "-nographic cannot be used with -daemonize");
    /* QEMU's defaults: without -nographic the serial port goes to a virtual
     * console and the monitor to a display, neither of which exists with
     * -display none, so there are none. */
    if (config->nographic && !config->nodefaults) {
        int rc = 0;
        if (state->default_serial && state->default_monitor) {
            config->serial.kind = CHARDEV_KIND_MUX_STDIO;
            rc = add_default_monitor(state, CHARDEV_KIND_MUX_STDIO, error);
        } else if (state->default_serial) {
            config->serial.kind = CHARDEV_KIND_STDIO;
        } else if (state->default_monitor) {
            rc = add_default_monitor(state, CHARDEV_KIND_STDIO, error);
        }
        if (rc < 0)
            return rc;
    }
    int rc = resolve_chardev_reference(config, &config->serial, "-serial", error);
    for (size_t i = 0; rc == 0 && i < config->monitor_count; i++)
        rc = resolve_chardev_reference(config, &config->monitors[i].transport,
                                       state->monitor_options[i], error);
    if (rc == 0)
        rc = check_stdio_users(state, error);
    return rc;
}

const struct option_handler chardev_options[] = {
    {"serial", true, option_serial},
    {"monitor", true, option_monitor},
    {"qmp", true, option_qmp},
    {"qmp-pretty", true, option_qmp_pretty},
    {"mon", true, option_mon},
    {"chardev", true, option_chardev},
    {NULL, false, NULL},
};

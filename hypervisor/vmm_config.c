/* The QEMU-compatible command line of plugvirt-vmm.
 *
 * Options are handled in order, as QEMU does: -version or -help print and
 * stop at once, and the last of a repeated scalar option wins. What QEMU
 * decides after the whole line is read (default serial and monitor for
 * -nographic, -serial chardev:ID and -mon chardev=ID references, stdio
 * users) is done in finish_config(). Options QEMU has and we do not
 * implement are errors, never silently ignored; the few that are accepted
 * and ignored are those whose QEMU meaning already holds here (-no-hpet: we
 * have no HPET) or has no effect for a direct kernel boot (-boot). */
#include "vmm_config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "x86/cpu_models.h"
#include "qemu_options.h"

#ifndef PLUGVIRT_VERSION
#define PLUGVIRT_VERSION "0.1.0"
#endif

#define DEFAULT_MEMORY_BYTES (128 * QEMU_SIZE_MIB)
/* QEMU rounds -m up to this; we do the same so both VMMs agree on the RAM size. */
#define MEMORY_SIZE_ALIGNMENT 8192
#define MAX_MEMORY_SLOTS 256

struct parse_state {
    struct vmm_config *config;
    FILE *output;
    bool *exit_early;
    /* QEMU's default_serial / default_monitor: cleared by options that configure them. */
    bool default_serial;
    bool default_monitor;
    bool serial_given;
    /* The option each monitor came from, for error messages. */
    const char *monitor_options[VMM_MAX_MONITORS];
};

struct option_handler {
    const char *name; /* without the leading '-' */
    bool has_argument;
    int (*handle)(struct parse_state *state, const char *argument, struct pv_error *error);
};

/* --- small helpers ----------------------------------------------------------- */

static int set_string(char **slot, const char *value, struct pv_error *error)
{
    char *copy = strdup(value);
    if (!copy)
        return pv_error_set(error, -ENOMEM, "out of memory");
    free(*slot);
    *slot = copy;
    return 0;
}

static int append_string(char ***array, size_t *count, const char *value, struct pv_error *error)
{
    char *copy = strdup(value);
    char **grown = copy ? realloc(*array, (*count + 1) * sizeof(**array)) : NULL;
    if (!grown) {
        free(copy);
        return pv_error_set(error, -ENOMEM, "out of memory");
    }
    grown[(*count)++] = copy;
    *array = grown;
    return 0;
}

static void chardev_spec_clear(struct chardev_spec *spec)
{
    free(spec->path);
    free(spec->id);
    memset(spec, 0, sizeof(*spec));
}

static int chardev_spec_copy(struct chardev_spec *target, const struct chardev_spec *source,
                             struct pv_error *error)
{
    struct chardev_spec copy = *source;
    copy.path = source->path ? strdup(source->path) : NULL;
    copy.id = source->id ? strdup(source->id) : NULL;
    if ((source->path && !copy.path) || (source->id && !copy.id)) {
        chardev_spec_clear(&copy);
        return pv_error_set(error, -ENOMEM, "out of memory");
    }
    chardev_spec_clear(target);
    *target = copy;
    return 0;
}

/* Parses `text` as an option string and checks afterwards that every key was
 * understood; `apply` reads the keys it knows. */
static int with_options(struct parse_state *state, const char *text, const char *implied_key,
                        int (*apply)(struct parse_state *, struct qemu_options *,
                                     struct pv_error *),
                        struct pv_error *error)
{
    struct qemu_options options;
    int rc = qemu_options_parse(&options, text, implied_key, QEMU_OPTIONS_FLAG_SHORTHAND, error);
    if (rc == 0)
        rc = apply(state, &options, error);
    if (rc == 0)
        rc = qemu_options_check_unused(&options, error);
    qemu_options_free(&options);
    return rc;
}

/* QEMU's rule for ids: a letter, then letters, digits, '-', '.', '_'. */
static bool id_is_wellformed(const char *id)
{
    if (!isalpha((unsigned char)id[0]))
        return false;
    for (const char *c = id + 1; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.' && *c != '_')
            return false;
    return true;
}

static int check_value(const char *key, const char *value, const char *const *allowed,
                       struct pv_error *error)
{
    if (!value)
        return 0;
    for (size_t i = 0; allowed[i]; i++)
        if (strcmp(value, allowed[i]) == 0)
            return 0;
    return pv_error_set(error, -EINVAL, "%s=%s is not supported", key, value);
}

static int require_bool(struct qemu_options *options, const char *key, bool required,
                        const char *why, struct pv_error *error)
{
    bool value = required;
    int rc = qemu_options_get_bool(options, key, required, &value, error);
    if (rc < 0)
        return rc;
    if (value != required)
        return pv_error_set(error, -EINVAL, "%s=%s is not supported (%s)", key,
                            value ? "on" : "off", why);
    return 0;
}

/* --- memory ------------------------------------------------------------------ */

int vmm_parse_memory_size(const char *text, uint64_t *bytes, struct pv_error *error)
{
    uint64_t size;
    if (!text || !*text)
        return pv_error_set(error, -EINVAL, "empty memory size");
    int rc = qemu_parse_size(text, QEMU_SIZE_MIB, &size, error);
    if (rc < 0)
        return rc;
    if (size == 0)
        return pv_error_set(error, -EINVAL, "memory size must be greater than zero");
    *bytes = size;
    return 0;
}

static int apply_memory(struct parse_state *state, struct qemu_options *options,
                        struct pv_error *error)
{
    struct vmm_config *config = state->config;
    const char *size_text = qemu_options_get(options, "size");
    uint64_t size = config->memory_bytes;
    if (size_text) {
        int rc = vmm_parse_memory_size(size_text, &size, error);
        if (rc < 0)
            return rc;
        if (size > UINT64_MAX - MEMORY_SIZE_ALIGNMENT)
            return pv_error_set(error, -ERANGE, "memory size '%s' is too large", size_text);
        size = (size + MEMORY_SIZE_ALIGNMENT - 1) / MEMORY_SIZE_ALIGNMENT * MEMORY_SIZE_ALIGNMENT;
    }
    uint64_t max_bytes;
    unsigned slots;
    int rc = qemu_options_get_size(options, "maxmem", 1, 0, &max_bytes, error);
    if (rc == 0)
        rc = qemu_options_get_unsigned(options, "slots", 0, &slots, error);
    if (rc < 0)
        return rc;
    if (qemu_options_get(options, "maxmem")) {
        if (max_bytes < size)
            return pv_error_set(error, -EINVAL,
                                "maxmem (%llu bytes) must be at least the memory size (%llu bytes)",
                                (unsigned long long)max_bytes, (unsigned long long)size);
        if (slots > 0 && max_bytes == size)
            return pv_error_set(error, -EINVAL,
                                "maxmem must be greater than the memory size when slots are given");
    } else if (slots > 0) {
        return pv_error_set(error, -EINVAL, "slots needs maxmem");
    }
    if (slots > MAX_MEMORY_SLOTS)
        return pv_error_set(error, -EINVAL, "slots (%u) must be at most %u", slots,
                            MAX_MEMORY_SLOTS);
    config->memory_bytes = size;
    config->memory_max_bytes = max_bytes;
    config->memory_slots = slots;
    return 0;
}

static int option_memory(struct parse_state *state, const char *argument, struct pv_error *error)
{
    return with_options(state, argument, "size", apply_memory, error);
}

/* --- CPUs ------------------------------------------------------------------- */

static int apply_smp(struct parse_state *state, struct qemu_options *options,
                     struct pv_error *error)
{
    enum { CPUS, MAX_CPUS, SOCKETS, DIES, CLUSTERS, CORES, THREADS, SMP_KEY_COUNT };
    static const char *const keys[SMP_KEY_COUNT] = {"cpus",     "maxcpus", "sockets", "dies",
                                                    "clusters", "cores",   "threads"};
    unsigned values[SMP_KEY_COUNT]; /* 0 = not given */
    for (size_t i = 0; i < SMP_KEY_COUNT; i++) {
        int rc = qemu_options_get_unsigned(options, keys[i], 0, &values[i], error);
        if (rc < 0)
            return rc;
        if (qemu_options_get(options, keys[i]) && values[i] == 0)
            return pv_error_set(error, -EINVAL, "%s must be greater than zero", keys[i]);
    }
    /* The pc machine has one die per socket and one cluster per die. */
    if (values[DIES] > 1 || values[CLUSTERS] > 1) {
        size_t key = values[DIES] > 1 ? DIES : CLUSTERS;
        return pv_error_set(error, -EINVAL, "%s=%u is not supported (only 1)", keys[key],
                            values[key]);
    }
    unsigned cpus = values[CPUS], max_cpus = values[MAX_CPUS], sockets = values[SOCKETS],
             cores = values[CORES], threads = values[THREADS];

    /* QEMU's rules for the pc machine (6.2 and later): omitted values are
     * derived from the given ones, preferring cores over sockets. */
    if (cpus == 0 && max_cpus == 0) {
        sockets = sockets ? sockets : 1;
        cores = cores ? cores : 1;
        threads = threads ? threads : 1;
    } else {
        max_cpus = max_cpus ? max_cpus : cpus;
        if (cores == 0) {
            sockets = sockets ? sockets : 1;
            threads = threads ? threads : 1;
            cores = (unsigned)(max_cpus / ((uint64_t)sockets * threads));
        } else if (sockets == 0) {
            threads = threads ? threads : 1;
            sockets = (unsigned)(max_cpus / ((uint64_t)cores * threads));
        }
        if (!threads && sockets && cores)
            threads = (unsigned)(max_cpus / ((uint64_t)sockets * cores));
    }
    uint64_t product = (uint64_t)sockets * cores * threads;
    max_cpus = max_cpus ? max_cpus : (product > UINT32_MAX ? UINT32_MAX : (unsigned)product);
    cpus = cpus ? cpus : max_cpus;

    if (product != max_cpus)
        return pv_error_set(error, -EINVAL,
                            "sockets (%u) * cores (%u) * threads (%u) = %llu does not match "
                            "maxcpus (%u)",
                            sockets, cores, threads, (unsigned long long)product, max_cpus);
    if (max_cpus < cpus)
        return pv_error_set(error, -EINVAL, "maxcpus (%u) must be >= cpus (%u)", max_cpus, cpus);
    if (max_cpus > VMM_MAX_VCPUS)
        return pv_error_set(error, -EINVAL, "maxcpus (%u) exceeds the maximum of %u", max_cpus,
                            VMM_MAX_VCPUS);
    struct vmm_config *config = state->config;
    config->cpus = cpus;
    config->max_cpus = max_cpus;
    config->sockets = sockets;
    config->cores = cores;
    config->threads = threads;
    return 0;
}

static int option_smp(struct parse_state *state, const char *argument, struct pv_error *error)
{
    return with_options(state, argument, "cpus", apply_smp, error);
}

static bool feature_name_is_valid(const char *name, size_t length)
{
    if (length == 0)
        return false;
    for (size_t i = 0; i < length; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '-' && name[i] != '.')
            return false;
    return true;
}

/* One -cpu feature element, normalized to "+name", "-name" or "name=value". */
static int add_cpu_feature(struct vmm_config *config, const char *element, struct pv_error *error)
{
    char normalized[256];
    const char *equals = strchr(element, '=');
    size_t name_length = equals ? (size_t)(equals - element) : strlen(element);
    if ((element[0] == '+' || element[0] == '-') && !equals) {
        if (!feature_name_is_valid(element + 1, name_length - 1))
            return pv_error_set(error, -EINVAL, "invalid feature '%s'", element);
        snprintf(normalized, sizeof(normalized), "%s", element);
    } else if (!feature_name_is_valid(element, name_length)) {
        return pv_error_set(error, -EINVAL, "invalid feature '%s'", element);
    } else if (!equals) {
        snprintf(normalized, sizeof(normalized), "+%s", element);
    } else {
        bool enabled;
        if (qemu_parse_bool(equals + 1, &enabled, NULL) == 0)
            snprintf(normalized, sizeof(normalized), "%c%.*s", enabled ? '+' : '-',
                     (int)name_length, element);
        else
            snprintf(normalized, sizeof(normalized), "%s", element);
    }
    if (strlen(element) >= sizeof(normalized) - 1)
        return pv_error_set(error, -EINVAL, "feature '%.40s...' is too long", element);
    return append_string(&config->cpu_features, &config->cpu_feature_count, normalized, error);
}

static int option_cpu(struct parse_state *state, const char *argument, struct pv_error *error)
{
    struct vmm_config *config = state->config;
    size_t model_length = strcspn(argument, ",");
    char *model_name = strndup(argument, model_length);
    if (!model_name)
        return pv_error_set(error, -ENOMEM, "out of memory");
    if (strcmp(model_name, "help") == 0 || strcmp(model_name, "?") == 0) {
        free(model_name);
        cpu_model_print_help(state->output);
        *state->exit_early = true;
        return 0;
    }
    const struct cpu_model *model = cpu_model_find(model_name);
    if (!model) {
        int rc = pv_error_set(error, -EINVAL, "unknown CPU model '%s' (see -cpu help)", model_name);
        free(model_name);
        return rc;
    }
    free(model_name);
    int rc = set_string(&config->cpu_model, model->name, error);
    if (rc < 0)
        return rc;

    /* As in QEMU, the last -cpu replaces earlier flags too. QEMU splits
     * features on every ',' (no ",," escaping) and skips empty ones. */
    for (size_t i = 0; i < config->cpu_feature_count; i++)
        free(config->cpu_features[i]);
    free(config->cpu_features);
    config->cpu_features = NULL;
    config->cpu_feature_count = 0;
    const char *cursor = argument + model_length;
    while (*cursor == ',') {
        cursor++;
        size_t length = strcspn(cursor, ",");
        if (length > 0) {
            char *element = strndup(cursor, length);
            if (!element)
                return pv_error_set(error, -ENOMEM, "out of memory");
            rc = add_cpu_feature(config, element, error);
            free(element);
            if (rc < 0)
                return rc;
        }
        cursor += length;
    }
    return 0;
}

/* --- machine and accelerator ----------------------------------------------------- */

static int check_accelerator(const char *accelerators, struct pv_error *error)
{
    /* QEMU takes a ':'-separated preference list; the first one is used when available. */
    size_t first_length = strcspn(accelerators, ":");
    if (first_length == 3 && strncmp(accelerators, "kvm", 3) == 0)
        return 0;
    return pv_error_set(error, -EINVAL, "accelerator '%.*s' is not supported (only kvm)",
                        (int)first_length, accelerators);
}

static int set_machine_type(struct parse_state *state, const char *type, struct pv_error *error)
{
    /* Versioned i440FX types are all the same machine here. */
    if (strcmp(type, "pc") != 0 && strncmp(type, "pc-i440fx-", 10) != 0)
        return pv_error_set(error, -EINVAL, "unsupported machine type '%s' (use pc)", type);
    return set_string(&state->config->machine_type, "pc", error);
}

static int apply_machine(struct parse_state *state, struct qemu_options *options,
                         struct pv_error *error)
{
    static const char *const vmport_values[] = {"off", "auto", NULL};
    static const char *const smm_values[] = {"off", "auto", NULL};
    static const char *const acpi_values[] = {"on", "auto", NULL};
    static const char *const irqchip_values[] = {"on", NULL};
    const char *type = qemu_options_get(options, "type");
    if (type && (strcmp(type, "help") == 0 || strcmp(type, "?") == 0)) {
        fprintf(state->output, "Supported machines are:\n"
                               "pc                   Standard PC (i440FX + PIIX, 1996) (default)\n"
                               "pc-i440fx-*          the same machine (versions are aliases)\n");
        *state->exit_early = true;
        return 0;
    }
    int rc = 0;
    if (type)
        rc = set_machine_type(state, type, error);
    const char *accel = qemu_options_get(options, "accel");
    if (rc == 0 && accel)
        rc = check_accelerator(accel, error);
    if (rc == 0)
        rc = require_bool(options, "usb", false, "there is no USB controller", error);
    if (rc == 0)
        rc = require_bool(options, "hpet", false, "there is no HPET", error);
    if (rc == 0)
        rc = check_value("vmport", qemu_options_get(options, "vmport"), vmport_values, error);
    if (rc == 0)
        rc = check_value("smm", qemu_options_get(options, "smm"), smm_values, error);
    if (rc == 0)
        rc = check_value("acpi", qemu_options_get(options, "acpi"), acpi_values, error);
    if (rc == 0)
        rc = check_value("kernel_irqchip", qemu_options_get(options, "kernel_irqchip"),
                         irqchip_values, error);
    /* Accepted as booleans, no effect: guest memory is always in core dumps and
     * KSM merging is the kernel's default policy for anonymous memory. */
    bool ignored;
    if (rc == 0)
        rc = qemu_options_get_bool(options, "dump-guest-core", true, &ignored, error);
    if (rc == 0)
        rc = qemu_options_get_bool(options, "mem-merge", true, &ignored, error);
    if (rc == 0)
        rc = qemu_options_get_bool(options, "graphics", false, &ignored, error);
    return rc;
}

static int option_machine(struct parse_state *state, const char *argument, struct pv_error *error)
{
    return with_options(state, argument, "type", apply_machine, error);
}

static int apply_accel(struct parse_state *state, struct qemu_options *options,
                       struct pv_error *error)
{
    static const char *const irqchip_values[] = {"on", NULL};
    const char *accel;
    int rc = qemu_options_get_required(options, "accel", &accel, error);
    if (rc == 0)
        rc = check_accelerator(accel, error);
    if (rc == 0)
        rc = check_value("kernel-irqchip", qemu_options_get(options, "kernel-irqchip"),
                         irqchip_values, error);
    return rc;
}

static int option_accel(struct parse_state *state, const char *argument, struct pv_error *error)
{
    return with_options(state, argument, "accel", apply_accel, error);
}

static int option_enable_kvm(struct parse_state *state, const char *argument,
                             struct pv_error *error)
{
    return 0;
}

/* --- name, uuid --------------------------------------------------------------- */

static int apply_name(struct parse_state *state, struct qemu_options *options,
                      struct pv_error *error)
{
    const char *guest = qemu_options_get(options, "guest");
    bool debug_threads;
    /* process= (the process title) and debug-threads= (thread names) only
     * affect how the host shows us; accepted and ignored. */
    qemu_options_ignore(options, "process");
    int rc = qemu_options_get_bool(options, "debug-threads", false, &debug_threads, error);
    if (rc == 0 && guest)
        rc = set_string(&state->config->name, guest, error);
    return rc;
}

static int option_name(struct parse_state *state, const char *argument, struct pv_error *error)
{
    return with_options(state, argument, "guest", apply_name, error);
}

static int option_uuid(struct parse_state *state, const char *argument, struct pv_error *error)
{
    static const char pattern[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    bool valid = strlen(argument) == sizeof(pattern) - 1;
    for (size_t i = 0; valid && pattern[i]; i++)
        valid = pattern[i] == '-' ? argument[i] == '-' : isxdigit((unsigned char)argument[i]);
    if (!valid)
        return pv_error_set(error, -EINVAL, "'%s' is not a UUID", argument);
    return set_string(&state->config->uuid, argument, error);
}

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
    return set_string(&spec->path, path, error);
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
        return set_string(&spec->path, text + 5, error);
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
        if (!id_is_wellformed(text + 8))
            return pv_error_set(error, -EINVAL, "invalid chardev id '%s'", text + 8);
        return set_string(&spec->id, text + 8, error);
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
    if (!id_is_wellformed(chardev_id))
        return pv_error_set(error, -EINVAL, "invalid chardev id '%s'", chardev_id);
    struct monitor_spec *monitor = NULL;
    rc = add_monitor(state, "-mon", &monitor, error);
    if (rc < 0)
        return rc;
    monitor->mode = qmp ? MONITOR_MODE_QMP : MONITOR_MODE_HMP;
    monitor->pretty = pretty;
    return set_string(&monitor->transport.id, chardev_id, error);
}

static int option_mon(struct parse_state *state, const char *argument, struct pv_error *error)
{
    state->default_monitor = false;
    return with_options(state, argument, "chardev", apply_mon, error);
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
    if (!id_is_wellformed(id))
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
            rc = set_string(&spec.path, path, error);
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
        rc = set_string(&spec.id, id, error);
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
    int rc = with_options(state, argument, "backend", apply_chardev, error);
    if (rc < 0)
        return rc;
    return append_string(&config->chardev_args, &config->chardev_arg_count, argument, error);
}

/* --- display and defaults ------------------------------------------------------ */

static int option_nographic(struct parse_state *state, const char *argument, struct pv_error *error)
{
    state->config->nographic = true;
    return 0;
}

static int option_nodefaults(struct parse_state *state, const char *argument,
                             struct pv_error *error)
{
    state->config->nodefaults = true;
    return 0;
}

static int apply_display(struct parse_state *state, struct qemu_options *options,
                         struct pv_error *error)
{
    const char *type = qemu_options_get(options, "type");
    if (type && strcmp(type, "none") != 0)
        return pv_error_set(error, -EINVAL, "display %s is not supported (only none)", type);
    return 0;
}

static int option_display(struct parse_state *state, const char *argument, struct pv_error *error)
{
    return with_options(state, argument, "type", apply_display, error);
}

static int option_vga(struct parse_state *state, const char *argument, struct pv_error *error)
{
    if (strcmp(argument, "none") != 0)
        return pv_error_set(error, -EINVAL, "'%s' is not supported (only none)", argument);
    return 0;
}

static int option_net(struct parse_state *state, const char *argument, struct pv_error *error)
{
    if (strcmp(argument, "none") != 0)
        return pv_error_set(error, -EINVAL,
                            "only 'none' is supported; use -netdev and -device instead");
    return 0;
}

/* --- run control and process ----------------------------------------------------- */

static int option_no_reboot(struct parse_state *state, const char *argument, struct pv_error *error)
{
    state->config->no_reboot = true;
    return 0;
}

static int option_no_shutdown(struct parse_state *state, const char *argument,
                              struct pv_error *error)
{
    state->config->no_shutdown = true;
    return 0;
}

static int option_start_paused(struct parse_state *state, const char *argument,
                               struct pv_error *error)
{
    state->config->start_paused = true;
    return 0;
}

static int option_daemonize(struct parse_state *state, const char *argument, struct pv_error *error)
{
    state->config->daemonize = true;
    return 0;
}

static int option_pidfile(struct parse_state *state, const char *argument, struct pv_error *error)
{
    if (!*argument)
        return pv_error_set(error, -EINVAL, "empty path");
    return set_string(&state->config->pidfile, argument, error);
}

static int option_dump_acpi_tables(struct parse_state *state, const char *argument,
                                   struct pv_error *error)
{
    if (!*argument)
        return pv_error_set(error, -EINVAL, "empty directory");
    return set_string(&state->config->acpi_dump_dir, argument, error);
}

/* --- boot ------------------------------------------------------------------ */

static int option_kernel(struct parse_state *state, const char *argument, struct pv_error *error)
{
    if (!*argument)
        return pv_error_set(error, -EINVAL, "empty path");
    return set_string(&state->config->kernel_path, argument, error);
}

static int option_initrd(struct parse_state *state, const char *argument, struct pv_error *error)
{
    if (!*argument)
        return pv_error_set(error, -EINVAL, "empty path");
    return set_string(&state->config->initrd_path, argument, error);
}

static int option_append(struct parse_state *state, const char *argument, struct pv_error *error)
{
    return set_string(&state->config->kernel_cmdline, argument, error);
}

static int apply_boot(struct parse_state *state, struct qemu_options *options,
                      struct pv_error *error)
{
    /* We boot the -kernel directly, with no firmware: the boot order and menu
     * have nothing to act on. The values are still checked. */
    bool ignored;
    int rc = qemu_options_get_bool(options, "menu", false, &ignored, error);
    if (rc == 0)
        rc = qemu_options_get_bool(options, "strict", false, &ignored, error);
    qemu_options_ignore(options, "order");
    qemu_options_ignore(options, "once");
    qemu_options_ignore(options, "splash");
    qemu_options_ignore(options, "splash-time");
    qemu_options_ignore(options, "reboot-timeout");
    return rc;
}

static int option_boot(struct parse_state *state, const char *argument, struct pv_error *error)
{
    return with_options(state, argument, "order", apply_boot, error);
}

/* --- accepted, harmless libvirt options -------------------------------------------- */

static int apply_overcommit(struct parse_state *state, struct qemu_options *options,
                            struct pv_error *error)
{
    static const char *const mem_lock_values[] = {"off", "no", "false", NULL};
    int rc = check_value("mem-lock", qemu_options_get(options, "mem-lock"), mem_lock_values, error);
    if (rc == 0)
        rc = require_bool(options, "cpu-pm", false, "vCPUs do not own host CPUs", error);
    return rc;
}

static int option_overcommit(struct parse_state *state, const char *argument,
                             struct pv_error *error)
{
    return with_options(state, argument, NULL, apply_overcommit, error);
}

static int apply_msg(struct parse_state *state, struct qemu_options *options,
                     struct pv_error *error)
{
    /* Message decoration only; our log lines have their own format. */
    bool ignored;
    int rc = qemu_options_get_bool(options, "timestamp", false, &ignored, error);
    if (rc == 0)
        rc = qemu_options_get_bool(options, "guest-name", false, &ignored, error);
    return rc;
}

static int option_msg(struct parse_state *state, const char *argument, struct pv_error *error)
{
    return with_options(state, argument, NULL, apply_msg, error);
}

static int apply_rtc(struct parse_state *state, struct qemu_options *options,
                     struct pv_error *error)
{
    static const char *const base_values[] = {"utc", NULL};
    static const char *const clock_values[] = {"host", "rt", "vm", NULL};
    static const char *const driftfix_values[] = {"none", "slew", NULL};
    int rc = check_value("base", qemu_options_get(options, "base"), base_values, error);
    if (rc == 0)
        rc = check_value("clock", qemu_options_get(options, "clock"), clock_values, error);
    if (rc == 0)
        rc = check_value("driftfix", qemu_options_get(options, "driftfix"), driftfix_values, error);
    return rc;
}

static int option_rtc(struct parse_state *state, const char *argument, struct pv_error *error)
{
    return with_options(state, argument, NULL, apply_rtc, error);
}

static int apply_sandbox(struct parse_state *state, struct qemu_options *options,
                         struct pv_error *error)
{
    return require_bool(options, "enable", false, "there is no seccomp sandbox; use -sandbox off",
                        error);
}

static int option_sandbox(struct parse_state *state, const char *argument, struct pv_error *error)
{
    return with_options(state, argument, "enable", apply_sandbox, error);
}

static int option_global(struct parse_state *state, const char *argument, struct pv_error *error)
{
    /* Only settings that describe what this VMM does anyway: the in-kernel PIT
     * reinjects lost ticks, and there are no S3/S4 sleep states. */
    static const char *const accepted[] = {"kvm-pit.lost_tick_policy=delay",
                                           "PIIX4_PM.disable_s3=1", "PIIX4_PM.disable_s4=1", NULL};
    for (size_t i = 0; accepted[i]; i++)
        if (strcmp(argument, accepted[i]) == 0)
            return 0;
    return pv_error_set(error, -EINVAL, "'%s' is not supported", argument);
}

static int option_ignored(struct parse_state *state, const char *argument, struct pv_error *error)
{
    return 0;
}

static int option_no_acpi(struct parse_state *state, const char *argument, struct pv_error *error)
{
    return pv_error_set(error, -EINVAL,
                        "ACPI cannot be disabled (hotplug and power button use it)");
}

static int option_readconfig(struct parse_state *state, const char *argument,
                             struct pv_error *error)
{
    return pv_error_set(error, -EINVAL, "configuration files are not supported");
}

/* --- device-level options, kept verbatim ---------------------------------------- */

static int option_device(struct parse_state *state, const char *argument, struct pv_error *error)
{
    struct vmm_config *config = state->config;
    /* An explicit serial device replaces the default one, as in QEMU. */
    if (strncmp(argument, "isa-serial", 10) == 0 && (argument[10] == ',' || !argument[10]))
        state->default_serial = false;
    return append_string(&config->device_args, &config->device_arg_count, argument, error);
}

static int option_blockdev(struct parse_state *state, const char *argument, struct pv_error *error)
{
    struct vmm_config *config = state->config;
    return append_string(&config->blockdev_args, &config->blockdev_arg_count, argument, error);
}

static int option_drive(struct parse_state *state, const char *argument, struct pv_error *error)
{
    struct vmm_config *config = state->config;
    return append_string(&config->drive_args, &config->drive_arg_count, argument, error);
}

static int option_netdev(struct parse_state *state, const char *argument, struct pv_error *error)
{
    struct vmm_config *config = state->config;
    return append_string(&config->netdev_args, &config->netdev_arg_count, argument, error);
}

/* --- information ------------------------------------------------------------ */

static int option_version(struct parse_state *state, const char *argument, struct pv_error *error)
{
    fprintf(state->output,
            "QEMU emulator version " VMM_QEMU_COMPAT_VERSION " (plugvirt-vmm " PLUGVIRT_VERSION
            ")\n"
            "plugvirt-vmm is a KVM virtual machine monitor with a QEMU-compatible command line\n");
    *state->exit_early = true;
    return 0;
}

static const char usage_text[] =
    "usage: plugvirt-vmm [options]\n"
    "\n"
    "A KVM virtual machine monitor with a QEMU-compatible command line (a subset).\n"
    "Options may be spelled -option or --option.\n"
    "\n"
    "Machine:\n"
    "  -machine|-M pc[,accel=kvm][,usb=off][,dump-guest-core=on|off][,mem-merge=on|off]\n"
    "                       the i440FX PC (pc-i440fx-* are aliases); -machine help lists it\n"
    "  -accel kvm, -enable-kvm\n"
    "                       KVM is the only accelerator\n"
    "  -cpu MODEL[,+feature][,-feature][,feature=on|off]\n"
    "                       CPU model name (default host); -cpu help lists the models\n"
    "  -m [size=]SIZE[,slots=N,maxmem=SIZE]\n"
    "                       guest RAM; a plain number is MiB, suffixes K M G T (default 128M)\n"
    "  -smp [cpus=]N[,maxcpus=M][,sockets=S][,cores=C][,threads=T]\n"
    "                       vCPUs at start and the hotpluggable maximum (at most 64)\n"
    "  -name [guest=]NAME[,debug-threads=on|off][,process=NAME]\n"
    "  -uuid UUID\n"
    "\n"
    "Boot (direct kernel boot, no firmware):\n"
    "  -kernel FILE         ELF (vmlinux) or bzImage to boot\n"
    "  -initrd FILE         initial ramdisk\n"
    "  -append CMDLINE      kernel command line\n"
    "  -boot ...            accepted; nothing to choose without firmware\n"
    "\n"
    "Character devices and monitors:\n"
    "  CHARDEV is stdio | null | pty | file:PATH | unix:PATH[,server=on|off][,wait=on|off]\n"
    "             | chardev:ID\n"
    "  -serial CHARDEV|mon:stdio|none\n"
    "                       the COM1 UART (default: none, or stdio with -nographic)\n"
    "  -monitor CHARDEV|none\n"
    "                       HMP monitor\n"
    "  -qmp CHARDEV, -qmp-pretty CHARDEV\n"
    "                       QMP monitor (pretty-printed JSON with -qmp-pretty)\n"
    "  -chardev socket,id=ID,path=PATH[,server=on|off][,wait=on|off]\n"
    "  -chardev file,id=ID,path=PATH | pty,id=ID | null,id=ID | stdio,id=ID[,mux=on|off]\n"
    "  -mon [chardev=]ID[,mode=control|readline][,pretty=on|off]\n"
    "  -nographic           serial port and HMP monitor multiplexed on stdio (Ctrl-a h)\n"
    "  -display none, -vga none\n"
    "                       there is no display\n"
    "  -nodefaults          no default serial port or monitor\n"
    "\n"
    "Devices (handled by the device layers, QEMU syntax):\n"
    "  -device DRIVER[,prop=value...]\n"
    "  -blockdev OPTIONS, -drive OPTIONS, -netdev OPTIONS\n"
    "  -net none\n"
    "\n"
    "Run control:\n"
    "  -S                   do not start the vCPUs (use cont)\n"
    "  -no-reboot           exit instead of rebooting\n"
    "  -no-shutdown         stop the VM instead of exiting when the guest powers off\n"
    "  -daemonize           detach once the VM is set up\n"
    "  -pidfile FILE        write and lock a PID file\n"
    "  -dump-acpi-tables DIR\n"
    "                       write the generated ACPI tables to DIR (debugging)\n"
    "\n"
    "Accepted for libvirt compatibility, without effect:\n"
    "  -no-user-config, -nodefconfig, -no-hpet, -rtc base=utc[,clock=..][,driftfix=..],\n"
    "  -msg timestamp=on|off, -overcommit mem-lock=off[,cpu-pm=off], -sandbox off,\n"
    "  -global kvm-pit.lost_tick_policy=delay, -global PIIX4_PM.disable_s3=1 (and s4)\n"
    "\n"
    "Information:\n"
    "  -version, --version  print the version\n"
    "  -h, -help, --help    print this help\n";

static int option_help(struct parse_state *state, const char *argument, struct pv_error *error)
{
    fputs(usage_text, state->output);
    *state->exit_early = true;
    return 0;
}

static const struct option_handler option_handlers[] = {
    {"name", true, option_name},
    {"uuid", true, option_uuid},
    {"machine", true, option_machine},
    {"M", true, option_machine},
    {"accel", true, option_accel},
    {"enable-kvm", false, option_enable_kvm},
    {"cpu", true, option_cpu},
    {"m", true, option_memory},
    {"smp", true, option_smp},
    {"kernel", true, option_kernel},
    {"initrd", true, option_initrd},
    {"append", true, option_append},
    {"boot", true, option_boot},
    {"serial", true, option_serial},
    {"monitor", true, option_monitor},
    {"qmp", true, option_qmp},
    {"qmp-pretty", true, option_qmp_pretty},
    {"mon", true, option_mon},
    {"chardev", true, option_chardev},
    {"nographic", false, option_nographic},
    {"display", true, option_display},
    {"vga", true, option_vga},
    {"nodefaults", false, option_nodefaults},
    {"no-user-config", false, option_ignored},
    {"nodefconfig", false, option_ignored},
    {"net", true, option_net},
    {"device", true, option_device},
    {"blockdev", true, option_blockdev},
    {"drive", true, option_drive},
    {"netdev", true, option_netdev},
    {"S", false, option_start_paused},
    {"no-reboot", false, option_no_reboot},
    {"no-shutdown", false, option_no_shutdown},
    {"daemonize", false, option_daemonize},
    {"pidfile", true, option_pidfile},
    {"dump-acpi-tables", true, option_dump_acpi_tables},
    {"overcommit", true, option_overcommit},
    {"msg", true, option_msg},
    {"rtc", true, option_rtc},
    {"sandbox", true, option_sandbox},
    {"global", true, option_global},
    {"no-hpet", false, option_ignored},
    {"no-acpi", false, option_no_acpi},
    {"readconfig", true, option_readconfig},
    {"version", false, option_version},
    {"h", false, option_help},
    {"help", false, option_help},
};

static const struct option_handler *find_handler(const char *name)
{
    for (size_t i = 0; i < sizeof(option_handlers) / sizeof(option_handlers[0]); i++)
        if (strcmp(option_handlers[i].name, name) == 0)
            return &option_handlers[i];
    return NULL;
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

static int finish_config(struct parse_state *state, struct pv_error *error)
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

/* --- entry points ------------------------------------------------------------ */

static int set_defaults(struct vmm_config *config, struct pv_error *error)
{
    config->memory_bytes = DEFAULT_MEMORY_BYTES;
    config->cpus = config->max_cpus = 1;
    config->sockets = config->cores = config->threads = 1;
    int rc = set_string(&config->machine_type, "pc", error);
    if (rc == 0)
        rc = set_string(&config->cpu_model, "host", error);
    if (rc == 0)
        rc = set_string(&config->kernel_cmdline, "", error);
    return rc;
}

int vmm_config_parse_to(struct vmm_config *config, int argc, char **argv, bool *exit_early,
                        FILE *output, struct pv_error *error)
{
    memset(config, 0, sizeof(*config));
    *exit_early = false;
    struct parse_state state = {
        .config = config,
        .output = output,
        .exit_early = exit_early,
        .default_serial = true,
        .default_monitor = true,
    };
    int rc = set_defaults(config, error);
    if (rc < 0)
        return rc;
    for (int index = 1; index < argc; index++) {
        const char *word = argv[index];
        if (!word)
            return pv_error_set(error, -EINVAL, "argument %d is missing", index);
        if (word[0] != '-' || word[1] == '\0')
            return pv_error_set(error, -EINVAL,
                                "unexpected argument '%s' (disk images are given with -drive or "
                                "-blockdev)",
                                word);
        const char *name = word + (word[1] == '-' ? 2 : 1);
        const struct option_handler *handler = find_handler(name);
        if (!handler)
            return pv_error_set(error, -EINVAL, "unknown option '%s'", word);
        const char *argument = NULL;
        if (handler->has_argument) {
            if (index + 1 >= argc || !argv[index + 1])
                return pv_error_set(error, -EINVAL, "option '-%s' needs an argument",
                                    handler->name);
            argument = argv[++index];
        }
        rc = handler->handle(&state, argument, error);
        if (rc < 0)
            return pv_error_prefix(error, "-%s", handler->name);
        if (*exit_early)
            return 0;
    }
    return finish_config(&state, error);
}

int vmm_config_parse(struct vmm_config *config, int argc, char **argv, bool *exit_early,
                     struct pv_error *error)
{
    return vmm_config_parse_to(config, argc, argv, exit_early, stdout, error);
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
    free_strings(config->netdev_args, config->netdev_arg_count);
    free_strings(config->chardev_args, config->chardev_arg_count);
    memset(config, 0, sizeof(*config));
}

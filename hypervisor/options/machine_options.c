/* Options that shape the machine: -name, -uuid, -machine, -accel, -cpu, -m, -smp. */
#include "options/machine_options.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "x86/cpu_models.h"
#include "options/option_helpers.h"

/* QEMU rounds -m up to this; we do the same so both VMMs agree on the RAM size. */
#define MEMORY_SIZE_ALIGNMENT 8192
#define MAX_MEMORY_SLOTS 256

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
    return option_with(state, argument, "size", apply_memory, error);
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
    return option_with(state, argument, "cpus", apply_smp, error);
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
    return option_append_string(&config->cpu_features, &config->cpu_feature_count, normalized,
                                error);
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
    int rc = option_set_string(&config->cpu_model, model->name, error);
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
    return option_set_string(&state->config->machine_type, "pc", error);
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
        rc = option_require_bool(options, "usb", false, "there is no USB controller", error);
    if (rc == 0)
        rc = option_require_bool(options, "hpet", false, "there is no HPET", error);
    if (rc == 0)
        rc =
            option_check_value("vmport", qemu_options_get(options, "vmport"), vmport_values, error);
    if (rc == 0)
        rc = option_check_value("smm", qemu_options_get(options, "smm"), smm_values, error);
    if (rc == 0)
        rc = option_check_value("acpi", qemu_options_get(options, "acpi"), acpi_values, error);
    if (rc == 0)
        rc = option_check_value("kernel_irqchip", qemu_options_get(options, "kernel_irqchip"),
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
    return option_with(state, argument, "type", apply_machine, error);
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
        rc = option_check_value("kernel-irqchip", qemu_options_get(options, "kernel-irqchip"),
                                irqchip_values, error);
    return rc;
}

static int option_accel(struct parse_state *state, const char *argument, struct pv_error *error)
{
    return option_with(state, argument, "accel", apply_accel, error);
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
        rc = option_set_string(&state->config->name, guest, error);
    return rc;
}

static int option_name(struct parse_state *state, const char *argument, struct pv_error *error)
{
    return option_with(state, argument, "guest", apply_name, error);
}

static int option_uuid(struct parse_state *state, const char *argument, struct pv_error *error)
{
    static const char pattern[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    bool valid = strlen(argument) == sizeof(pattern) - 1;
    for (size_t i = 0; valid && pattern[i]; i++)
        valid = pattern[i] == '-' ? argument[i] == '-' : isxdigit((unsigned char)argument[i]);
    if (!valid)
        return pv_error_set(error, -EINVAL, "'%s' is not a UUID", argument);
    return option_set_string(&state->config->uuid, argument, error);
}

const struct option_handler machine_options[] = {
    {"name", true, option_name},       {"uuid", true, option_uuid},
    {"machine", true, option_machine}, {"M", true, option_machine},
    {"accel", true, option_accel},     {"enable-kvm", false, option_enable_kvm},
    {"cpu", true, option_cpu},         {"m", true, option_memory},
    {"smp", true, option_smp},         {NULL, false, NULL},
};

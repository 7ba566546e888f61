/* plugvirtd's settings: defaults, configuration file, command line. */
#include "daemon_config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PLUGVIRT_DATADIR
#define PLUGVIRT_DATADIR "/usr/local/share/plugvirt"
#endif

static void replace_string(char **field, const char *value)
{
    char *copy = value ? strdup(value) : NULL;
    free(*field);
    *field = copy;
}

void daemon_config_init(struct daemon_config *config)
{
    memset(config, 0, sizeof(*config));
    config->state_dir = strdup(DAEMON_CONFIG_DEFAULT_STATE_DIR);
    config->run_dir = strdup(DAEMON_CONFIG_DEFAULT_RUN_DIR);
    config->schema_dir = NULL; /* the schemas built into plugvirtd */
    config->detach_timeout_ms = 5000;
    config->qmp_timeout_ms = 5000;
    config->job_wait_timeout_ms = 30000;
    config->log_level = PV_LOG_INFO;
}

void daemon_config_free(struct daemon_config *config)
{
    free(config->state_dir);
    free(config->run_dir);
    free(config->config_file);
    free(config->schema_dir);
    free(config->vmm_path);
    free(config->probe_guest_path);
    free(config->fault_injection_point);
    memset(config, 0, sizeof(*config));
}

static int parse_milliseconds(const char *key, const char *value, int *out, struct pv_error *error)
{
    char *end = NULL;
    errno = 0;
    long number = strtol(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || number <= 0 || number > INT_MAX)
        return pv_error_set(error, -EINVAL, "%s: '%s' is not a positive number of milliseconds",
                            key, value);
    *out = (int)number;
    return 0;
}

static int parse_log_level(const char *value, enum pv_log_level *level, struct pv_error *error)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(value, names[i]) == 0) {
            *level = (enum pv_log_level)i;
            return 0;
        }
    }
    return pv_error_set(error, -EINVAL, "log_level: '%s' is not one of error, warning, info, debug",
                        value);
}

int daemon_config_set(struct daemon_config *config, const char *key, const char *value,
                      struct pv_error *error)
{
    if (strcmp(key, "detach_timeout_ms") == 0)
        return parse_milliseconds(key, value, &config->detach_timeout_ms, error);
    if (strcmp(key, "qmp_timeout_ms") == 0)
        return parse_milliseconds(key, value, &config->qmp_timeout_ms, error);
    if (strcmp(key, "job_wait_timeout_ms") == 0)
        return parse_milliseconds(key, value, &config->job_wait_timeout_ms, error);
    if (strcmp(key, "log_level") == 0)
        return parse_log_level(value, &config->log_level, error);
    char **field = NULL;
    if (strcmp(key, "vmm_path") == 0)
        field = &config->vmm_path;
    else if (strcmp(key, "probe_guest_path") == 0)
        field = &config->probe_guest_path;
    else if (strcmp(key, "schema_dir") == 0)
        field = &config->schema_dir;
    else if (strcmp(key, "state_dir") == 0)
        field = &config->state_dir;
    else if (strcmp(key, "run_dir") == 0)
        field = &config->run_dir;
    if (field == NULL)
        return pv_error_set(error, -EINVAL, "unknown setting '%s'", key);
    if (value[0] == '\0')
        return pv_error_set(error, -EINVAL, "%s: empty value", key);
    replace_string(field, value);
    return *field ? 0 : pv_error_set(error, -ENOMEM, "out of memory");
}

static char *trim(char *text)
{
    while (isspace((unsigned char)*text))
        text++;
    size_t length = strlen(text);
    while (length > 0 && isspace((unsigned char)text[length - 1]))
        text[--length] = '\0';
    return text;
}

int daemon_config_load_file(struct daemon_config *config, struct pv_error *error)
{
    const char *path = config->config_file ? config->config_file : DAEMON_CONFIG_DEFAULT_FILE;
    FILE *file = fopen(path, "re");
    if (file == NULL) {
        if (errno == ENOENT && config->config_file == NULL)
            return 0; /* the default file is optional */
        return pv_error_set_errno(error, -errno, "cannot open configuration file %s", path);
    }
    char line[4096];
    unsigned line_number = 0;
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), file)) {
        line_number++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *text = trim(line);
        if (*text == '\0')
            continue;
        char *equals = strchr(text, '=');
        if (equals == NULL) {
            rc = pv_error_set(error, -EINVAL, "%s:%u: expected 'key = value'", path, line_number);
            break;
        }
        *equals = '\0';
        char *key = trim(text);
        char *value = trim(equals + 1);
        size_t value_length = strlen(value);
        if (value_length >= 2 && (value[0] == '"' || value[0] == '\'') &&
            value[value_length - 1] == value[0]) {
            value[value_length - 1] = '\0';
            value++;
        }
        rc = daemon_config_set(config, key, value, error);
        if (rc < 0)
            pv_error_prefix(error, "%s:%u", path, line_number);
    }
    fclose(file);
    return rc;
}

enum {
    OPTION_STATE_DIR = 256,
    OPTION_RUN_DIR,
    OPTION_SCHEMA_DIR,
    OPTION_VMM_PATH,
};

int daemon_config_parse_arguments(struct daemon_config *config, int argc, char **argv,
                                  struct pv_error *error)
{
    static const struct option options[] = {
        {"state-dir", required_argument, NULL, OPTION_STATE_DIR},
        {"run-dir", required_argument, NULL, OPTION_RUN_DIR},
        {"config", required_argument, NULL, 'c'},
        {"schema-dir", required_argument, NULL, OPTION_SCHEMA_DIR},
        {"vmm-path", required_argument, NULL, OPTION_VMM_PATH},
        {"foreground", no_argument, NULL, 'f'},
        {"verbose", no_argument, NULL, 'v'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 0; /* full re-initialisation: argv is parsed twice */
    opterr = 0;
    int option;
    while ((option = getopt_long(argc, argv, "c:fvVh", options, NULL)) != -1) {
        int rc = 0;
        switch (option) {
        case OPTION_STATE_DIR:
            rc = daemon_config_set(config, "state_dir", optarg, error);
            break;
        case OPTION_RUN_DIR:
            rc = daemon_config_set(config, "run_dir", optarg, error);
            break;
        case OPTION_SCHEMA_DIR:
            rc = daemon_config_set(config, "schema_dir", optarg, error);
            break;
        case OPTION_VMM_PATH:
            rc = daemon_config_set(config, "vmm_path", optarg, error);
            break;
        case 'c':
            replace_string(&config->config_file, optarg);
            break;
        case 'f':
            config->foreground = true;
            break;
        case 'v':
            config->log_level = PV_LOG_DEBUG;
            break;
        case 'V':
            config->show_version = true;
            break;
        case 'h':
            config->show_help = true;
            break;
        default:
            if (optopt && optopt < 256)
                return pv_error_set(error, -EINVAL, "unknown or incomplete option '-%c'", optopt);
            return pv_error_set(error, -EINVAL, "unknown or incomplete option '%s'",
                                argv[optind - 1]);
        }
        if (rc < 0)
            return rc;
    }
    if (optind < argc)
        return pv_error_set(error, -EINVAL, "unexpected argument '%s'", argv[optind]);
    return 0;
}

int daemon_config_load(struct daemon_config *config, int argc, char **argv, struct pv_error *error)
{
    int rc = daemon_config_parse_arguments(config, argc, argv, error);
    if (rc < 0 || config->show_help || config->show_version)
        return rc;
    bool verbose = config->log_level == PV_LOG_DEBUG;
    rc = daemon_config_load_file(config, error);
    if (rc < 0)
        return rc;
    rc = daemon_config_parse_arguments(config, argc, argv, error);
    if (rc == 0 && verbose)
        config->log_level = PV_LOG_DEBUG;
    const char *point = getenv(DAEMON_CONFIG_FAULT_INJECTION_VARIABLE);
    if (rc == 0 && point && point[0]) {
#ifdef PLUGVIRT_FAULT_INJECTION
        free(config->fault_injection_point);
        config->fault_injection_point = strdup(point);
#else
        rc = pv_error_set(error, -EINVAL,
                          "%s is set, but this plugvirtd was built without "
                          "--enable-fault-injection (a test-only switch); unset it",
                          DAEMON_CONFIG_FAULT_INJECTION_VARIABLE);
#endif
    }
    return rc;
}

void daemon_config_resolve_vmm(struct daemon_config *config)
{
    if (config->vmm_path)
        return;
    char self[PATH_MAX];
    ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (length <= 0)
        return;
    self[length] = '\0';
    char *slash = strrchr(self, '/');
    if (slash == NULL)
        return;
    *slash = '\0';
    char candidate[PATH_MAX + 64];
    snprintf(candidate, sizeof(candidate), "%s/plugvirt-vmm", self);
    if (access(candidate, X_OK) == 0) {
        config->vmm_path = strdup(candidate);
        return;
    }
    /* Build tree: build/daemon/plugvirtd next to build/hypervisor/plugvirt-vmm. */
    snprintf(candidate, sizeof(candidate), "%s/../hypervisor/plugvirt-vmm", self);
    if (access(candidate, X_OK) == 0)
        config->vmm_path = realpath(candidate, NULL);
    if (config->vmm_path == NULL) {
        snprintf(candidate, sizeof(candidate), "%s/plugvirt-vmm", self);
        config->vmm_path = strdup(candidate); /* start reports it missing */
    }
}

void daemon_config_print_help(const char *program)
{
    printf("Usage: %s [OPTIONS]\n"
           "The plugvirt management daemon.\n\n"
           "  --state-dir DIR    database directory (default %s)\n"
           "  --run-dir DIR      sockets, pidfile, per-domain files (default %s)\n"
           "  -c, --config FILE  configuration file (default %s)\n"
           "  --schema-dir DIR   RelaxNG schemas of the domain XML\n"
           "  --vmm-path FILE    default emulator (plugvirt-vmm)\n"
           "  -f, --foreground   do not daemonize\n"
           "  -v, --verbose      debug logging\n"
           "  -V, --version      print the version and exit\n"
           "  -h, --help         print this help and exit\n",
           program, DAEMON_CONFIG_DEFAULT_STATE_DIR, DAEMON_CONFIG_DEFAULT_RUN_DIR,
           DAEMON_CONFIG_DEFAULT_FILE);
}

/* plugvirtd's settings: command-line options and the key = value configuration file.
 *
 * Precedence: built-in defaults < configuration file < command line. The file is optional
 * when it is the default path (/etc/plugvirt/plugvirtd.conf) and required when --config
 * names it. Keys: detach_timeout_ms, qmp_timeout_ms, job_wait_timeout_ms, vmm_path,
 * probe_guest_path, log_level (error|warning|info|debug), schema_dir, state_dir, run_dir. '#'
 * starts a comment. */
#ifndef PLUGVIRT_DAEMON_CONFIG_H
#define PLUGVIRT_DAEMON_CONFIG_H

#include <stdbool.h>

#include "pv_error.h"
#include "pv_log.h"

#define DAEMON_CONFIG_DEFAULT_FILE "/etc/plugvirt/plugvirtd.conf"
#define DAEMON_CONFIG_DEFAULT_STATE_DIR "/var/lib/plugvirt"
#define DAEMON_CONFIG_DEFAULT_RUN_DIR "/run/plugvirt"
#define DAEMON_CONFIG_FAULT_INJECTION_VARIABLE "PLUGVIRT_TEST_ABORT_AFTER_STEP"

struct daemon_config {
    char *state_dir;         /* plugvirt.db */
    char *run_dir;           /* sockets, pidfile, domains/<name>/ */
    char *config_file;       /* NULL: the default file, if it exists */
    char *schema_dir;        /* RelaxNG schemas (xml-schemas/); NULL: the built-in copies */
    char *vmm_path;          /* default emulator; NULL: plugvirt-vmm next to plugvirtd */
    char *probe_guest_path;  /* informational (the demo VM's kernel) */
    int detach_timeout_ms;   /* default wait for DEVICE_DELETED */
    int qmp_timeout_ms;      /* every QMP command */
    int job_wait_timeout_ms; /* how long a hotplug request waits for a busy domain */
    /* Test builds (--enable-fault-injection) only: PLUGVIRT_TEST_ABORT_AFTER_STEP, the hotplug
     * point after which the daemon SIGKILLs itself (hotplug_config.abort_after_step). */
    char *fault_injection_point;
    enum pv_log_level log_level;
    bool foreground;
    bool show_version;
    bool show_help;
};

void daemon_config_init(struct daemon_config *config); /* built-in defaults */
void daemon_config_free(struct daemon_config *config);

/* Parses argv (getopt_long). Returns 0, or -EINVAL with a message for a bad option. */
int daemon_config_parse_arguments(struct daemon_config *config, int argc, char **argv,
                                  struct pv_error *error);
/* Reads the configuration file (config->config_file, or the default one when it exists).
 * The command line wins over the file: daemon_config_load parses argv once to find
 * --config, reads the file, then applies argv again. */
int daemon_config_load_file(struct daemon_config *config, struct pv_error *error);
int daemon_config_load(struct daemon_config *config, int argc, char **argv, struct pv_error *error);
/* Applies one "key = value" setting; -EINVAL for an unknown key or a bad value. */
int daemon_config_set(struct daemon_config *config, const char *key, const char *value,
                      struct pv_error *error);
/* Fills vmm_path (when unset) from the daemon's own location: plugvirt-vmm in the same
 * directory, else ../hypervisor/plugvirt-vmm (the build tree). */
void daemon_config_resolve_vmm(struct daemon_config *config);

void daemon_config_print_help(const char *program);

#endif

/* The VMM configuration, as parsed from the QEMU-style command line (cmdline.h). */
#ifndef PLUGVIRT_VMM_CONFIG_H
#define PLUGVIRT_VMM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pv_error.h"

#define VMM_MAX_VCPUS 64
#define VMM_MAX_MONITORS 8

/* The QEMU release whose command line, QMP and HMP we follow (-version, query-version). */
#ifndef VMM_QEMU_COMPAT_VERSION
#define VMM_QEMU_COMPAT_VERSION "8.2.0"
#endif

enum chardev_kind {
    CHARDEV_KIND_NONE = 0, /* not configured */
    CHARDEV_KIND_NULL,
    CHARDEV_KIND_STDIO,
    CHARDEV_KIND_FILE,        /* path */
    CHARDEV_KIND_UNIX_SERVER, /* path; listening socket, wait=off */
    CHARDEV_KIND_UNIX_CLIENT, /* path; connects to an existing socket */
    CHARDEV_KIND_PTY,
    CHARDEV_KIND_MUX_STDIO, /* "mon:stdio" / -nographic: serial and HMP share stdio */
};

struct chardev_spec {
    enum chardev_kind kind;
    char *path; /* owned; FILE, UNIX_* */
    bool wait;  /* UNIX_SERVER: block start until a client connects (wait=on) */
    char *id;   /* owned; optional chardev id (-chardev id=...) */
    /* owned; QEMU's logfile=: everything the frontend writes is also appended here, whether
     * a peer is connected or not (a socket with no client drops the data, the log keeps
     * it); log_append = logappend=on, else the file is truncated when opened. */
    char *log_path;
    bool log_append;
};

/* A -chardev definition. `claimed` is set once a frontend (-serial chardev:ID,
 * -mon chardev=ID) took it: a chardev that is not a mux has one frontend. */
struct chardev_definition {
    struct chardev_spec spec; /* spec.id is the chardev id */
    bool claimed;
};

enum monitor_mode { MONITOR_MODE_HMP, MONITOR_MODE_QMP };

struct monitor_spec {
    enum monitor_mode mode;
    struct chardev_spec transport;
    bool pretty; /* QMP pretty printing (-mon pretty=on) */
};

struct vmm_config {
    char *name;                /* -name; NULL if not given */
    char *machine_type;        /* "pc" */
    char *cpu_model;           /* -cpu, "host" by default; a name cpu_model_find() knows */
    char **cpu_features;       /* -cpu MODEL,FLAGS as "+name", "-name" or "name=value", */
    size_t cpu_feature_count;  /* accepted, recorded, not applied (see cpu_models.h) */
    uint64_t memory_bytes;     /* -m, 128 MiB by default as in QEMU */
    uint64_t memory_max_bytes; /* -m maxmem=, 0 when not given */
    unsigned memory_slots;     /* -m slots=, 0 when not given */
    unsigned cpus;             /* -smp N */
    unsigned max_cpus;         /* -smp maxcpus=M (>= cpus) */
    unsigned sockets, cores, threads;

    char *kernel_path;    /* -kernel */
    char *initrd_path;    /* -initrd */
    char *kernel_cmdline; /* -append, "" by default */

    struct chardev_spec serial;                     /* -serial; KIND_NONE = none */
    struct monitor_spec monitors[VMM_MAX_MONITORS]; /* -qmp, -monitor, -mon */
    size_t monitor_count;

    /* -chardev definitions (also kept verbatim in chardev_args); -serial
     * chardev:ID and -mon chardev=ID are resolved into copies of these. */
    struct chardev_definition *chardevs;
    size_t chardev_count;

    char *uuid;          /* -uuid, NULL if not given */
    bool nodefaults;     /* -nodefaults */
    bool nographic;      /* -nographic */
    bool start_paused;   /* -S */
    bool no_reboot;      /* -no-reboot: a guest reset exits the VMM instead */
    bool no_shutdown;    /* -no-shutdown: a guest poweroff stops the VM instead of exiting */
    bool daemonize;      /* -daemonize */
    char *pidfile;       /* -pidfile */
    char *acpi_dump_dir; /* -dump-acpi-tables DIR (plugvirt debug option) */

    /* Device-level options, kept verbatim for the device layers: each entry is the option
     * argument of one -device/-blockdev/-drive/-chardev/-netdev in command-line order.
     * -net nic entries become virtio-net-pci device_args (first, in -net order) and -net
     * tap entries netdev_args (see options/net_options.c). */
    char **device_args;
    size_t device_arg_count;
    char **blockdev_args;
    size_t blockdev_arg_count;
    char **drive_args;
    size_t drive_arg_count;
    char **chardev_args;
    size_t chardev_arg_count;
    char **netdev_args;
    size_t netdev_arg_count;
    size_t legacy_nic_count; /* device_args[0..n) came from -net nic */
    size_t hub_nic_slot;     /* 1 + the device_args index of hub 0's -net nic; 0: none */
    char *hub_tap_id;        /* netdev id of hub 0's -net tap; NULL: none */
};

/* Frees what `config` owns and zeroes it; safe on a zeroed or partially
 * parsed config, and twice. */
void vmm_config_free(struct vmm_config *config);

/* Frees what `spec` owns and zeroes it. */
void chardev_spec_clear(struct chardev_spec *spec);
/* Replaces `target` with a deep copy of `source`. */
int chardev_spec_copy(struct chardev_spec *target, const struct chardev_spec *source,
                      struct pv_error *error);

/* The -chardev definition with this id, or NULL. */
const struct chardev_definition *vmm_config_find_chardev(const struct vmm_config *config,
                                                         const char *id);

#endif

/* Integration-test harness for plugvirtd: a private daemon in a temporary directory
 * (--state-dir/--run-dir), real VMM processes (plugvirt-vmm, or stock QEMU with TCG where
 * /dev/kvm is not usable: see daemon_harness_backend), the probe guest. Talks to the daemon
 * with lib/api_client.h; cleans up by pid (the daemon's and the VMMs' pidfiles in the
 * private run directory), never by name. */
#ifndef PLUGVIRT_DAEMON_HARNESS_H
#define PLUGVIRT_DAEMON_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "api_client.h"

struct daemon_process {
    pid_t pid;
    char directory[256]; /* private temporary directory */
    char state_dir[300];
    char run_dir[300];
    char socket_path[340];
    char read_only_socket_path[340];
    char log_path[340];
    char extra_config[512]; /* "key = value" lines appended to plugvirtd.conf by daemon_start */
    char schema_dir[300];   /* schema_dir in plugvirtd.conf; "" = none: the built-in schemas */
    /* NULL-terminated argv prefix plugvirtd runs under (e.g. systemd-socket-activate -l ...);
     * NULL: plugvirtd is exec'd directly. The launcher must exec plugvirtd in place. */
    const char *const *launcher;
    char notify_socket[340];   /* NOTIFY_SOCKET given to plugvirtd; "" = none */
    struct api_client *client; /* connected to the read-write socket */
    /* The private network namespace plugvirtd (and so every VMM and tap) runs in, made by the
     * first daemon_start and kept by this descriptor: taps never appear on the host. */
    bool has_netns;
    int netns_fd;
};

const char *daemon_harness_plugvirtd_path(void);
const char *daemon_harness_vmm_path(void);
const char *daemon_harness_probe_guest_path(void);
/* xml-schemas/ in the source tree (for a test's daemon_process.schema_dir). */
const char *daemon_harness_schema_dir(void);
/* The qemu-system-x86_64 configure found ($PLUGVIRT_TEST_QEMU overrides), or NULL when there
 * is none. */
const char *daemon_harness_qemu_path(void);

/* The VMM every test's domain runs on, chosen once per process:
 *   vmm:  plugvirt-vmm, <domain type='kvm'> without <emulator>; needs a usable /dev/kvm;
 *   qemu: stock QEMU with TCG, <domain type='qemu'> and <emulator> = daemon_harness_qemu_path.
 * plugvirt-vmm when /dev/kvm is usable, else QEMU; PLUGVIRT_TEST_BACKEND=vmm|qemu forces one.
 * When the chosen backend cannot run here, the calling test is skipped (cr_skip_test) with
 * the reason. */
enum daemon_backend { DAEMON_BACKEND_VMM, DAEMON_BACKEND_QEMU };
enum daemon_backend daemon_harness_backend(void);
/* "vmm" or "qemu". */
const char *daemon_harness_backend_name(enum daemon_backend backend);
/* Skips the calling test, with `why`, unless the backend is `backend`: for the few tests
 * about one VMM's own behaviour. */
void daemon_harness_require_backend(enum daemon_backend backend, const char *why);

/* Creates the directory (first time) and starts plugvirtd --foreground; waits until it
 * answers daemon.ping. Returns 0 or -errno. */
int daemon_start(struct daemon_process *daemon);
/* Runs `command` (sh -c) inside the daemon's network namespace; its stdout (and stderr) go
 * into `output` (may be NULL). Returns the exit status (0 = success) or -errno. */
int daemon_netns_run(struct daemon_process *daemon, const char *command, char *output, size_t size);
/* The names of the network interfaces in the daemon's namespace, sorted, one per line, into
 * `out` (for leak checks: it is "lo\n" when no tap is left). 0 or -errno. */
int daemon_netns_interfaces(struct daemon_process *daemon, char *out, size_t size);
/* Skips the calling test when the harness could not make a network namespace (needs root). */
void daemon_harness_require_netns(struct daemon_process *daemon);
/* Sends `signal_number` and reaps the daemon (VMMs are not touched). */
int daemon_kill(struct daemon_process *daemon, int signal_number, int *exit_status);
/* Kills the daemon and every VMM whose pidfile is in the private run directory, removes
 * the directory. */
void daemon_cleanup(struct daemon_process *daemon);

/* {"domain": DOMAIN} to `method`, which must succeed. */
void daemon_call_simple(struct daemon_process *daemon, const char *method, const char *domain);
/* `method` must fail with the API error `code` and a message containing `message_part`. */
void daemon_expect_error(struct daemon_process *daemon, const char *method, const char *params,
                         const char *code, const char *message_part);
/* Whether the domain's live (or inactive) XML contains `text`. */
bool daemon_domain_xml_contains(struct daemon_process *daemon, const char *domain, bool inactive,
                                const char *text);
/* One call on the read-write client; the reply must be freed with api_reply_free. */
int daemon_call(struct daemon_process *daemon, const char *method, const char *params_json,
                struct api_reply *reply);
/* Like daemon_call, but a failure (transport or error reply) fails the test. */
void daemon_call_ok(struct daemon_process *daemon, const char *method, const char *params_json,
                    struct api_reply *reply);

/* A file of `size_mib` MiB in the private directory; returns its path (static buffer). */
const char *daemon_make_image(struct daemon_process *daemon, const char *name, unsigned size_mib);
/* A domain XML for the probe guest with `disks_xml` inside <devices>, on the backend
 * (daemon_harness_backend); malloc'd. */
char *daemon_domain_xml(const char *name, const char *uuid, const char *cmdline,
                        const char *disks_xml);
/* daemon_domain_xml with more choices (0/NULL: the defaults of daemon_domain_xml). */
struct daemon_domain_options {
    unsigned memory_mib;  /* default 128 */
    const char *type;     /* <domain type=...>, default: the backend's ('kvm' or 'qemu') */
    const char *emulator; /* <emulator>, default: the backend's (none for plugvirt-vmm) */
};
char *daemon_domain_xml_options(const char *name, const char *uuid, const char *cmdline,
                                const char *disks_xml, const struct daemon_domain_options *options);
/* Waits for the guest's PROBE READY line; fails the test with the tails of serial.log and
 * of plugvirtd's log. The bound is generous: under ASan and a loaded host (stress-ng on both
 * CPUs) a TCG guest has been seen to take more than 30 s. */
#define DAEMON_BOOT_TIMEOUT_MS 120000
void daemon_wait_booted(struct daemon_process *daemon, const char *name);
/* CLOCK_MONOTONIC in milliseconds, and a plain pause (for polling loops with a deadline). */
long long daemon_now_ms(void);
void daemon_sleep_ms(int milliseconds);
/* {"domain": DOMAIN, "xml": XML[, EXTRA]} (without "domain" when DOMAIN is NULL); malloc'd. */
char *daemon_xml_params(const char *domain, const char *xml, const char *extra);
/* A raw virtio <disk> on `source` as `target`, EXTRA elements inside; malloc'd. */
char *daemon_disk_xml(const char *source, const char *target, const char *extra);
/* A JSON string literal of `text` (quoted, escaped); malloc'd. */
char *daemon_json_string(const char *text);

/* Waits for the first complete line (ended by '\n') starting with `prefix` in
 * run-dir/domains/<name>/serial.log and copies it, without the line end, into `line` (may
 * be NULL). A line still being written never matches: check the rest of a line in `line`,
 * never by reading the log again. 0 or -ETIMEDOUT. */
int daemon_wait_serial_line(struct daemon_process *daemon, const char *name, const char *prefix,
                            int timeout_ms, char *line, size_t line_size);
/* daemon_wait_serial_line without the copy. */
int daemon_wait_serial(struct daemon_process *daemon, const char *name, const char *prefix,
                       int timeout_ms);
/* The VMM pid from run-dir/domains/<name>/vmm.pid, or -1. */
pid_t daemon_vmm_pid(struct daemon_process *daemon, const char *name);
/* Polls domain.state until it is `state` (e.g. "crashed"); 0 or -ETIMEDOUT. */
int daemon_wait_state(struct daemon_process *daemon, const char *domain, const char *state,
                      int timeout_ms);

/* A raw QMP session on a domain's VMM (run-dir/domains/<name>/qmp.sock), behind the
 * daemon's back: only while plugvirtd is down (the VMM serves one monitor client). */
struct daemon_qmp {
    int fd;
    char buffer[65536];
    size_t length;
    char events[4096]; /* names of events read while waiting for replies, "NAME\n"... */
};
/* Connects, reads the greeting and negotiates capabilities. 0 or -errno. */
int daemon_qmp_connect(struct daemon_qmp *qmp, struct daemon_process *daemon, const char *name);
/* Sends one command (JSON text) and copies its reply line into `reply`. 0 or -errno. */
int daemon_qmp_execute(struct daemon_qmp *qmp, const char *command_json, char *reply, size_t size,
                       int timeout_ms);
/* Waits for the event `name` (also one seen during daemon_qmp_execute). 0 or -ETIMEDOUT. */
int daemon_qmp_wait_event(struct daemon_qmp *qmp, const char *name, int timeout_ms);
void daemon_qmp_close(struct daemon_qmp *qmp);

#endif

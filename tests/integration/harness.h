/* Integration-test harness: runs a real plugvirt-vmm process, talks to its
 * serial console through pipes and to its QMP socket. Nothing is mocked. */
#ifndef PLUGVIRT_TEST_HARNESS_H
#define PLUGVIRT_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct vmm_process {
    pid_t pid;
    int serial_in;       /* child's stdin: serial input */
    int serial_out;      /* child's stdout: serial output */
    int stderr_fd;       /* child's stderr */
    char directory[256]; /* private temporary directory, removed by vmm_process_cleanup */
    char qmp_path[300];
    char console[65536]; /* everything read from serial_out so far */
    size_t console_length;
    size_t console_consumed; /* lines before this offset were already matched */
    char errors[8192];
    size_t errors_length;
    bool exited;
    int exit_status;
};

/* Path of a built artefact: the VMM binary or the probe guest. */
const char *harness_vmm_path(void);
const char *harness_probe_guest_path(void);

/* Starts plugvirt-vmm with -serial stdio, a QMP socket in a private directory,
 * -display none -nodefaults -kernel <probe guest>, plus `extra` arguments
 * (NULL-terminated). Returns 0 or -errno. */
int vmm_process_start(struct vmm_process *process, const char *const *extra);
/* Starts with exactly these arguments (argv[0] excluded), stdio captured. */
int vmm_process_start_raw(struct vmm_process *process, const char *const *arguments);

/* Waits for a console line starting with `prefix`, after the last matched one.
 * Copies the whole line into `line` (may be NULL). Returns 0, or -ETIMEDOUT. */
int vmm_process_wait_line(struct vmm_process *process, const char *prefix, int timeout_ms,
                          char *line, size_t line_size);
int vmm_process_send(struct vmm_process *process, const char *text);
/* Waits for the process to exit; returns 0 and sets exit_status (-1 if killed by a signal). */
int vmm_process_wait_exit(struct vmm_process *process, int timeout_ms);
/* Kills (if still running), reaps, closes fds and removes the directory. */
void vmm_process_cleanup(struct vmm_process *process);

struct qmp_client {
    int fd;
    char buffer[262144];
    size_t length;
};

/* Connects (retrying until the socket appears), reads the greeting into
 * `greeting` (may be NULL) and, when `negotiate`, sends qmp_capabilities. */
int qmp_client_connect(struct qmp_client *client, const char *path, bool negotiate, char *greeting,
                       size_t greeting_size, int timeout_ms);
/* Sends one raw text. */
int qmp_client_send(struct qmp_client *client, const char *text);
/* Reads the next JSON message (one line) whatever it is. */
int qmp_client_read(struct qmp_client *client, char *message, size_t size, int timeout_ms);
/* Sends a command and returns the first non-event reply; events seen on the
 * way are kept for qmp_client_wait_event. */
int qmp_client_execute(struct qmp_client *client, const char *command_json, char *reply,
                       size_t size, int timeout_ms);
/* Waits for an event named `name` ("\"event\": \"NAME\"" in the message). */
int qmp_client_wait_event(struct qmp_client *client, const char *name, char *message, size_t size,
                          int timeout_ms);
void qmp_client_close(struct qmp_client *client);

#endif

/* The human monitor (HMP): QEMU's text commands, on a chardev and for the
 * QMP command human-monitor-command.
 *
 * The command table is shared by both uses. Adding a command is one more
 * entry in a table in monitor_hmp.c: names ("cont|c"), a parameter hint and
 * help text for `help`, and a handler that prints with hmp_printf. `info`
 * subcommands live in their own table. Output follows QEMU's monitor: every
 * "\n" goes out as "\r\n". Everything runs on the main thread. */
#ifndef PLUGVIRT_MONITOR_HMP_H
#define PLUGVIRT_MONITOR_HMP_H

#include <stdbool.h>
#include <stddef.h>

#include "monitor/hmp_output.h"
#include "pv_error.h"

struct vm;
struct chardev;
struct monitor_hmp;

struct hmp_command {
    const char *names;  /* "cont|c": the first is the main name */
    const char *params; /* shown by help, "" when none; "" also rejects arguments */
    const char *help;
    /* `arguments` is the rest of the line with surrounding blanks removed. */
    void (*handler)(struct hmp_context *context, const char *arguments);
    const struct hmp_command *subcommands; /* "info": its table, ended by names == NULL */
};

/* Runs one command line, printing into context->output. */
void hmp_execute(struct hmp_context *context, const char *command_line);

/* The interactive monitor on a chardev: banner and prompt when a peer
 * connects, minimal line editing, output through chardev_write. */
struct monitor_hmp *monitor_hmp_create(struct vm *vm, struct chardev *chardev,
                                       struct pv_error *error);
void monitor_hmp_destroy(struct monitor_hmp *monitor);

#endif

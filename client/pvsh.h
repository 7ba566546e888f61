/* pvsh: the plugvirt shell, a virsh-compatible command line client of plugvirtd.
 *
 * Shared declarations of the client: the session context, the command table types,
 * argument parsing (arguments.c), output helpers (output.c) and the per-area command
 * tables (commands_*.c). main() lives in pvsh_main.c so that the unit tests can drive
 * pvsh_run() with their own streams. */
#ifndef PLUGVIRT_PVSH_H
#define PLUGVIRT_PVSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "api_client.h"
#include "json_util.h"
#include "pv_error.h"

/* Exit statuses (documented in pvsh(1)). */
enum pvsh_exit {
    PVSH_EXIT_SUCCESS = 0,
    PVSH_EXIT_FAILURE = 1,
    /* detach-device/detach-disk: the unplug was requested but the guest has not
     * released the device yet (it may still do so later). */
    PVSH_EXIT_PENDING = 2,
};

/* How long pvsh waits for a reply unless a command needs longer (start, --wait). */
#define PVSH_DEFAULT_REPLY_TIMEOUT_MS 120000
/* detach-device/detach-disk --wait without a value. */
#define PVSH_DEFAULT_WAIT_SECONDS 60

struct pvsh_context {
    const char *socket_path;
    bool json;        /* --json: machine-readable results (and errors) on stdout */
    bool quiet;       /* -q: no informational messages, no table headers */
    bool interactive; /* reading commands from the prompt */
    FILE *out;
    FILE *err;
    int reply_timeout_ms;
    struct api_client *client; /* connected on the first command that needs it */
};

enum pvsh_option_kind {
    PVSH_OPTION_BOOL,            /* --flag */
    PVSH_OPTION_STRING,          /* --name VALUE or --name=VALUE (or positional) */
    PVSH_OPTION_OPTIONAL_STRING, /* --name or --name=VALUE (e.g. --wait[=SECONDS]) */
    PVSH_OPTION_REST,            /* all remaining positional words */
};

/* Option flags. */
#define PVSH_POSITIONAL 1u /* may be given without its --name, in table order */
#define PVSH_REQUIRED 2u

struct pvsh_option {
    const char *name; /* without the leading "--" */
    enum pvsh_option_kind kind;
    unsigned flags;
    const char *help;
};

#define PVSH_MAX_OPTIONS 24

struct pvsh_arguments;

struct pvsh_command {
    const char *name;
    const char *summary;
    const struct pvsh_option *options; /* terminated by {NULL} */
    /* Returns an enum pvsh_exit value; it prints its own output and errors. */
    int (*run)(struct pvsh_context *context, const struct pvsh_arguments *arguments);
};

struct pvsh_arguments {
    const struct pvsh_command *command;
    const char *values[PVSH_MAX_OPTIONS]; /* by option index; "" for a bool/valueless option */
    bool present[PVSH_MAX_OPTIONS];
    const char **rest; /* PVSH_OPTION_REST words (points into argv) */
    size_t rest_count;
};

/* --- arguments.c ---------------------------------------------------------------------- */

/* Parses a command's words (argv[0] is the command name) with virsh's rules: --name VALUE,
 * --name=VALUE, positional values in table order, "--" ends the options. The result
 * points into argv. Errors use virsh's messages. Free with pvsh_arguments_free. */
int pvsh_arguments_parse(const struct pvsh_command *command, int argc, char **argv,
                         struct pvsh_arguments *arguments, struct pv_error *error);
void pvsh_arguments_free(struct pvsh_arguments *arguments);
/* The value of an option, or NULL when it was not given. */
const char *pvsh_argument_string(const struct pvsh_arguments *arguments, const char *name);
bool pvsh_argument_bool(const struct pvsh_arguments *arguments, const char *name);
/* 0 and *value, 1 when the option was not given (value untouched), -EINVAL when the text
 * is not a number in [0, max]. */
int pvsh_argument_uint(const struct pvsh_arguments *arguments, const char *name,
                       unsigned long long max, unsigned long long *value, struct pv_error *error);

/* Splits one interactive line into words: blanks separate words, '...' is literal,
 * "..." allows \" and \\, a backslash outside quotes escapes the next character, an
 * unquoted ';' ends a command and an unquoted '#' at the start of a word starts a
 * comment. Returns the words of the first command (NULL-terminated, *count words, free
 * with pvsh_words_free) and sets *rest to the text after ';' (or NULL at the end). */
char **pvsh_split_line(const char *line, int *count, const char **rest, struct pv_error *error);
void pvsh_words_free(char **words);

/* --- output.c ------------------------------------------------------------------------- */

/* A table in virsh's layout: " Id   Name   State\n" + dashes + rows, columns as wide as
 * their widest cell (header included) plus two spaces. */
struct pvsh_table {
    size_t columns;
    size_t rows; /* including the header row */
    char **cells;
    bool failed;
};
void pvsh_table_init(struct pvsh_table *table, size_t columns, const char *const *header);
/* Appends a row of `columns` cells; NULL cells print as "-". */
void pvsh_table_add_row(struct pvsh_table *table, const char *const *cells);
/* Writes the table; `header` false leaves out the header and the dashes (-q). */
int pvsh_table_print(const struct pvsh_table *table, bool header, FILE *out);
void pvsh_table_free(struct pvsh_table *table);

/* An informational message on stdout, unless --quiet or --json. */
void pvsh_message(struct pvsh_context *context, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
/* "error: <message>" on stderr; with --json also {"error": {"code": code, "message": ...}}
 * on stdout. Returns PVSH_EXIT_FAILURE. */
int pvsh_report_error(struct pvsh_context *context, const char *code, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
/* The same for a daemon error reply (code, message, qmp_class, step). */
int pvsh_report_reply_error(struct pvsh_context *context, const struct api_reply *reply);
/* --json: the value on stdout as one line of JSON. */
void pvsh_print_json(struct pvsh_context *context, yajl_val value);

/* --- pvsh.c --------------------------------------------------------------------------- */

/* Connects if needed and performs one API call; on a daemon or transport error prints it
 * and returns PVSH_EXIT_FAILURE (reply freed), else PVSH_EXIT_SUCCESS with the reply.
 * `params` may be NULL. `timeout_ms` 0 means the context's default. */
int pvsh_call(struct pvsh_context *context, const char *method, struct json_writer *params,
              int timeout_ms, struct api_reply *reply);
/* The command tables, NULL-terminated arrays of commands. */
extern const struct pvsh_command pvsh_domain_commands[];
extern const struct pvsh_command pvsh_device_commands[];
extern const struct pvsh_command pvsh_host_commands[];
/* commands_console.c: console DOMAIN [--force] */
extern const struct pvsh_option pvsh_console_options[];
int pvsh_run_console(struct pvsh_context *context, const struct pvsh_arguments *arguments);
const struct pvsh_command *pvsh_find_command(const char *name);
/* Runs one command given as words (words[0] is the command name). */
int pvsh_run_command(struct pvsh_context *context, int count, char **words);
/* The whole program: global options, then one command or the interactive prompt read
 * from `in`. Returns the exit status. */
int pvsh_run(int argc, char **argv, FILE *in, FILE *out, FILE *err);
/* help [COMMAND] output. */
int pvsh_print_help(struct pvsh_context *context, const char *command_name);

/* --- commands_device.c ---------------------------------------------------------------- */

/* The <disk> element attach-disk sends, as virsh builds it. NULL (error set) on bad
 * values. free() the result. */
struct pvsh_disk_options {
    const char *source;
    const char *target;
    const char *source_type; /* "file" | "block"; NULL: block for block devices, else file */
    const char *device;      /* "disk" (default) | "cdrom" */
    const char *driver;      /* <driver name=> */
    const char *subdriver;   /* <driver type=> */
    const char *cache;
    const char *io;
    const char *serial;
    const char *target_bus;
    const char *mode; /* "readonly" | "shareable" | NULL */
};
char *pvsh_build_disk_xml(const struct pvsh_disk_options *options, struct pv_error *error);

/* Resolves --live/--config/--persistent/--current with virsh's rules into the "flags"
 * array written to `params` (querying the domain state for --persistent). Returns
 * PVSH_EXIT_SUCCESS or prints the error and returns PVSH_EXIT_FAILURE. */
int pvsh_resolve_flags(struct pvsh_context *context, const struct pvsh_arguments *arguments,
                       const char *domain, struct json_writer *params);

/* Sends domain.attach_device with `xml` and the resolved --live/--config/... flags; prints
 * `success_message`. Returns the exit status. */
int pvsh_attach_xml(struct pvsh_context *context, const struct pvsh_arguments *arguments,
                    const char *xml, const char *success_message);
/* attach-disk / attach-interface: with --print-xml only prints `xml` (virsh does not even
 * look the domain up), otherwise attaches it. Frees `xml`. */
int pvsh_print_or_attach_xml(struct pvsh_context *context, const struct pvsh_arguments *arguments,
                             char *xml, const char *success_message);
/* domblklist / domiflist: `method` (domain.blklist, domain.iflist) into `reply`, whose result
 * must be an array; `what` names the list in the error ("disk list"). */
int pvsh_fetch_device_list(struct pvsh_context *context, const char *method, const char *domain,
                           bool inactive, const char *what, struct api_reply *reply);
/* What detach-device, detach-disk and detach-interface resolve before they build the XML. */
struct pvsh_detach_options {
    bool live;
    bool config;
    bool wait; /* --wait was given: the daemon waits up to `seconds` for the guest */
    unsigned long long seconds;
};
/* --wait, then the --live/--config/--current/--persistent flags; returns the exit status. */
int pvsh_parse_detach_options(struct pvsh_context *context, const struct pvsh_arguments *arguments,
                              const char *domain, struct pvsh_detach_options *options);
/* Sends domain.detach_device; a detach the guest has not completed yet prints the daemon's
 * message and returns PVSH_EXIT_PENDING. `target` names the device in that message. */
int pvsh_detach_xml(struct pvsh_context *context, const struct pvsh_arguments *arguments,
                    const char *xml, const struct pvsh_detach_options *options, const char *target,
                    const char *success_message);

/* --- xml_builder.c -------------------------------------------------------------------- */

struct pvsh_xml {
    char *text;
    size_t length;
    size_t capacity;
    bool failed;
};
/* Appends `format`, each '%' replaced by the next (const char *) argument, XML-escaped
 * (NULL as ""). */
void pvsh_xml_append(struct pvsh_xml *xml, const char *format, ...);
/* The text (free() it), or NULL with -ENOMEM in `error` when an append failed. */
char *pvsh_xml_take(struct pvsh_xml *xml, struct pv_error *error);

/* --- commands_interface.c ------------------------------------------------------------- */

extern const struct pvsh_command pvsh_interface_commands[];
/* The <interface> element attach-interface sends, in virsh's layout. NULL (error set) for a
 * type pvsh cannot describe or a missing/unused --source. free() the result. */
struct pvsh_interface_options {
    const char *type; /* ethernet | bridge | network | direct | ... */
    const char *source;
    const char *target;
    const char *mac;
    const char *model;
    const char *alias;
};
char *pvsh_build_interface_xml(const struct pvsh_interface_options *options,
                               struct pv_error *error);

#endif

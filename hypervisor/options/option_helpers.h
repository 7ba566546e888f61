/* What every option family in options/ shares: the parser state, the shape of an
 * option handler, and small helpers. The parse loop (cmdline.c) looks each option
 * up in the families' tables. */
#ifndef PLUGVIRT_OPTION_HELPERS_H
#define PLUGVIRT_OPTION_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "pv_error.h"
#include "qemu_options.h"
#include "vmm_config.h"

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

/* A family's table ends with an entry whose name is NULL. */

/* Replaces the string in *slot with a copy of `value`. */
int option_set_string(char **slot, const char *value, struct pv_error *error);
/* Appends a copy of `value` to a growable array of strings. */
int option_append_string(char ***array, size_t *count, const char *value, struct pv_error *error);
/* Parses `text` as an option string and checks afterwards that every key was
 * understood; `apply` reads the keys it knows. */
int option_with(struct parse_state *state, const char *text, const char *implied_key,
                int (*apply)(struct parse_state *, struct qemu_options *, struct pv_error *),
                struct pv_error *error);
/* QEMU's rule for ids: a letter, then letters, digits, '-', '.', '_'. */
bool option_id_is_wellformed(const char *id);
/* A NULL value passes; otherwise it must be one of `allowed` (NULL-terminated). */
int option_check_value(const char *key, const char *value, const char *const *allowed,
                       struct pv_error *error);
/* The boolean `key`, when given, must be `required`; `why` explains the refusal. */
int option_require_bool(struct qemu_options *options, const char *key, bool required,
                        const char *why, struct pv_error *error);

#endif

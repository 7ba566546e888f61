/* Helpers shared by the option families in options/. */
#include "options/option_helpers.h"

#include <ctype.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* --- small helpers ----------------------------------------------------------- */

int option_set_string(char **slot, const char *value, struct pv_error *error)
{
    char *copy = strdup(value);
    if (!copy)
        return pv_error_set(error, -ENOMEM, "out of memory");
    free(*slot);
    *slot = copy;
    return 0;
}

int option_append_string(char ***array, size_t *count, const char *value, struct pv_error *error)
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

/* Parses `text` as an option string and checks afterwards that every key was
 * understood; `apply` reads the keys it knows. */
int option_with(struct parse_state *state, const char *text, const char *implied_key,
                int (*apply)(struct parse_state *, struct qemu_options *, struct pv_error *),
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
bool option_id_is_wellformed(const char *id)
{
    if (!isalpha((unsigned char)id[0]))
        return false;
    for (const char *c = id + 1; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.' && *c != '_')
            return false;
    return true;
}

int option_check_value(const char *key, const char *value, const char *const *allowed,
                       struct pv_error *error)
{
    if (!value)
        return 0;
    for (size_t i = 0; allowed[i]; i++)
        if (strcmp(value, allowed[i]) == 0)
            return 0;
    return pv_error_set(error, -EINVAL, "%s=%s is not supported", key, value);
}

int option_require_bool(struct qemu_options *options, const char *key, bool required,
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

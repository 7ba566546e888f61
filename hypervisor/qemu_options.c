/* QEMU option strings; see qemu_options.h for the syntax. */
#include "qemu_options.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int add_option(struct qemu_options *options, char *key, char *value, struct pv_error *error)
{
    struct qemu_option *items =
        realloc(options->items, (options->count + 1) * sizeof(options->items[0]));
    if (!items) {
        free(key);
        free(value);
        return pv_error_set(error, -ENOMEM, "out of memory");
    }
    options->items = items;
    items[options->count++] = (struct qemu_option){.key = key, .value = value, .used = false};
    return 0;
}

/* Reads a value up to the next single ',' (",," is a literal comma) and
 * advances *cursor to that comma or the end. */
static char *parse_value(const char **cursor)
{
    const char *start = *cursor;
    size_t length = 0;
    const char *scan = start;
    while (*scan) {
        if (*scan == ',') {
            if (scan[1] != ',')
                break;
            scan++;
        }
        scan++;
        length++;
    }
    char *value = malloc(length + 1);
    if (!value)
        return NULL;
    size_t out = 0;
    for (const char *in = start; in < scan; in++) {
        value[out++] = *in;
        if (*in == ',')
            in++; /* skip the second comma of ",," */
    }
    value[out] = '\0';
    *cursor = scan;
    return value;
}

int qemu_options_parse(struct qemu_options *options, const char *text, const char *implied_key,
                       unsigned flags, struct pv_error *error)
{
    options->items = NULL;
    options->count = 0;
    if (!text)
        return pv_error_set(error, -EINVAL, "missing option string");
    const char *cursor = text;
    bool first = true;
    while (*cursor) {
        size_t name_length = strcspn(cursor, "=,");
        char *key;
        char *value;
        if (cursor[name_length] == '=') {
            key = strndup(cursor, name_length);
            cursor += name_length + 1;
            value = parse_value(&cursor);
        } else if (first && implied_key) {
            key = strdup(implied_key);
            value = parse_value(&cursor);
        } else if (flags & QEMU_OPTIONS_FLAG_SHORTHAND) {
            bool negated = name_length > 2 && strncmp(cursor, "no", 2) == 0;
            key = negated ? strndup(cursor + 2, name_length - 2) : strndup(cursor, name_length);
            value = strdup(negated ? "off" : "on");
            cursor += name_length;
        } else {
            if (name_length == 0)
                return pv_error_set(error, -EINVAL, "empty parameter name");
            return pv_error_set(error, -EINVAL, "parameter '%.*s' needs a value ('%.*s=...')",
                                (int)name_length, cursor, (int)name_length, cursor);
        }
        if (!key || !value) {
            free(key);
            free(value);
            return pv_error_set(error, -ENOMEM, "out of memory");
        }
        if (key[0] == '\0') {
            free(key);
            free(value);
            return pv_error_set(error, -EINVAL, "empty parameter name");
        }
        int rc = add_option(options, key, value, error);
        if (rc < 0)
            return rc;
        if (*cursor == ',')
            cursor++;
        first = false;
    }
    return 0;
}

void qemu_options_free(struct qemu_options *options)
{
    if (!options)
        return;
    for (size_t i = 0; i < options->count; i++) {
        free(options->items[i].key);
        free(options->items[i].value);
    }
    free(options->items);
    options->items = NULL;
    options->count = 0;
}

struct qemu_option *qemu_options_find(struct qemu_options *options, const char *key)
{
    struct qemu_option *found = NULL;
    for (size_t i = 0; i < options->count; i++) {
        if (strcmp(options->items[i].key, key) == 0) {
            /* Earlier duplicates count as consumed: the last one wins, as in QEMU. */
            options->items[i].used = true;
            found = &options->items[i];
        }
    }
    return found;
}

const char *qemu_options_get(struct qemu_options *options, const char *key)
{
    struct qemu_option *option = qemu_options_find(options, key);
    return option ? option->value : NULL;
}

int qemu_options_get_required(struct qemu_options *options, const char *key, const char **value,
                              struct pv_error *error)
{
    *value = qemu_options_get(options, key);
    if (!*value)
        return pv_error_set(error, -EINVAL, "parameter '%s' is missing", key);
    return 0;
}

/* Names the key in a value's parse error; returns `rc`. */
static int prefix_key(struct pv_error *error, int rc, const char *key)
{
    pv_error_prefix(error, "parameter '%s'", key);
    return rc;
}

int qemu_options_get_bool(struct qemu_options *options, const char *key, bool default_value,
                          bool *value, struct pv_error *error)
{
    const char *text = qemu_options_get(options, key);
    *value = default_value;
    if (!text)
        return 0;
    int rc = qemu_parse_bool(text, value, error);
    return rc < 0 ? prefix_key(error, rc, key) : 0;
}

int qemu_options_get_uint64(struct qemu_options *options, const char *key, uint64_t default_value,
                            uint64_t *value, struct pv_error *error)
{
    const char *text = qemu_options_get(options, key);
    *value = default_value;
    if (!text)
        return 0;
    int rc = qemu_parse_uint64(text, value, error);
    return rc < 0 ? prefix_key(error, rc, key) : 0;
}

int qemu_options_get_unsigned(struct qemu_options *options, const char *key, unsigned default_value,
                              unsigned *value, struct pv_error *error)
{
    uint64_t wide;
    int rc = qemu_options_get_uint64(options, key, default_value, &wide, error);
    if (rc < 0)
        return rc;
    if (wide > UINT32_MAX)
        return pv_error_set(error, -ERANGE, "parameter '%s': %s is too large", key,
                            qemu_options_get(options, key));
    *value = (unsigned)wide;
    return 0;
}

int qemu_options_get_size(struct qemu_options *options, const char *key, uint64_t default_unit,
                          uint64_t default_value, uint64_t *value, struct pv_error *error)
{
    const char *text = qemu_options_get(options, key);
    *value = default_value;
    if (!text)
        return 0;
    int rc = qemu_parse_size(text, default_unit, value, error);
    return rc < 0 ? prefix_key(error, rc, key) : 0;
}

void qemu_options_ignore(struct qemu_options *options, const char *key)
{
    qemu_options_find(options, key);
}

int qemu_options_check_unused(const struct qemu_options *options, struct pv_error *error)
{
    for (size_t i = 0; i < options->count; i++)
        if (!options->items[i].used)
            return pv_error_set(error, -EINVAL, "invalid parameter '%s'", options->items[i].key);
    return 0;
}

int qemu_parse_bool(const char *text, bool *value, struct pv_error *error)
{
    static const char *const true_words[] = {"on", "yes", "true", "y"};
    static const char *const false_words[] = {"off", "no", "false", "n"};
    for (size_t i = 0; i < sizeof(true_words) / sizeof(true_words[0]); i++) {
        if (strcmp(text, true_words[i]) == 0) {
            *value = true;
            return 0;
        }
        if (strcmp(text, false_words[i]) == 0) {
            *value = false;
            return 0;
        }
    }
    return pv_error_set(error, -EINVAL, "'%s' is not a boolean (use on or off)", text);
}

int qemu_parse_uint64(const char *text, uint64_t *value, struct pv_error *error)
{
    if (!isdigit((unsigned char)text[0]))
        return pv_error_set(error, -EINVAL, "'%s' is not a number", text);
    uint64_t result = 0;
    for (const char *digit = text; *digit; digit++) {
        if (!isdigit((unsigned char)*digit))
            return pv_error_set(error, -EINVAL, "'%s' is not a number", text);
        unsigned next = (unsigned)(*digit - '0');
        if (result > (UINT64_MAX - next) / 10)
            return pv_error_set(error, -ERANGE, "%s is too large", text);
        result = result * 10 + next;
    }
    *value = result;
    return 0;
}

static uint64_t suffix_unit(char suffix)
{
    switch (toupper((unsigned char)suffix)) {
    case 'B':
        return 1;
    case 'K':
        return UINT64_C(1) << 10;
    case 'M':
        return UINT64_C(1) << 20;
    case 'G':
        return UINT64_C(1) << 30;
    case 'T':
        return UINT64_C(1) << 40;
    case 'P':
        return UINT64_C(1) << 50;
    case 'E':
        return UINT64_C(1) << 60;
    default:
        return 0;
    }
}

#define MAX_FRACTION_DIGITS 18 /* 10^18 still fits in 64 bits */

int qemu_parse_size(const char *text, uint64_t default_unit, uint64_t *bytes,
                    struct pv_error *error)
{
    const char *cursor = text;
    if (!isdigit((unsigned char)*cursor))
        return pv_error_set(error, -EINVAL, "invalid size '%s'", text);
    uint64_t whole = 0;
    for (; isdigit((unsigned char)*cursor); cursor++) {
        unsigned next = (unsigned)(*cursor - '0');
        if (whole > (UINT64_MAX - next) / 10)
            return pv_error_set(error, -ERANGE, "size '%s' is too large", text);
        whole = whole * 10 + next;
    }
    uint64_t fraction = 0, denominator = 1;
    bool has_fraction = false;
    if (*cursor == '.') {
        cursor++;
        if (!isdigit((unsigned char)*cursor))
            return pv_error_set(error, -EINVAL, "invalid size '%s'", text);
        has_fraction = true;
        for (unsigned digits = 0; isdigit((unsigned char)*cursor); cursor++, digits++) {
            if (digits >= MAX_FRACTION_DIGITS)
                return pv_error_set(error, -EINVAL, "size '%s' has too many decimals", text);
            fraction = fraction * 10 + (unsigned)(*cursor - '0');
            denominator *= 10;
        }
    }
    uint64_t unit = default_unit;
    if (*cursor) {
        unit = suffix_unit(*cursor);
        if (!unit)
            return pv_error_set(error, -EINVAL, "invalid size '%s' (unknown suffix '%s')", text,
                                cursor);
        bool is_byte_suffix = toupper((unsigned char)*cursor) == 'B';
        cursor++;
        /* "2GB" and "2GiB" mean the same as "2G". */
        if (!is_byte_suffix && (*cursor == 'B' || *cursor == 'b'))
            cursor++;
        else if (!is_byte_suffix && *cursor == 'i' && (cursor[1] == 'B' || cursor[1] == 'b'))
            cursor += 2;
        if (*cursor)
            return pv_error_set(error, -EINVAL, "invalid size '%s' (trailing '%s')", text, cursor);
    }
    if (has_fraction && unit == 1)
        return pv_error_set(error, -EINVAL, "invalid size '%s' (fraction of a byte)", text);
    unsigned __int128 total = (unsigned __int128)whole * unit;
    total += (unsigned __int128)fraction * unit / denominator;
    if (total > UINT64_MAX)
        return pv_error_set(error, -ERANGE, "size '%s' is too large", text);
    *bytes = (uint64_t)total;
    return 0;
}

char *qemu_options_escape(const char *text)
{
    size_t length = 0;
    for (const char *in = text; *in; in++)
        length += *in == ',' ? 2 : 1;
    char *escaped = malloc(length + 1);
    if (!escaped)
        return NULL;
    char *out = escaped;
    for (const char *in = text; *in; in++) {
        *out++ = *in;
        if (*in == ',')
            *out++ = ',';
    }
    *out = '\0';
    return escaped;
}

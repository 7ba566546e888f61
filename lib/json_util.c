/* JSON writer in QEMU's layout and yajl tree helpers. */
#include "json_util.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- writer ------------------------------------------------------------- */

void json_writer_init(struct json_writer *writer, bool pretty)
{
    memset(writer, 0, sizeof(*writer));
    writer->pretty = pretty;
}

void json_writer_free(struct json_writer *writer)
{
    free(writer->text);
    bool pretty = writer->pretty;
    json_writer_init(writer, pretty);
}

void json_writer_reset(struct json_writer *writer)
{
    writer->length = 0;
    if (writer->text)
        writer->text[0] = '\0';
    writer->failed = false;
    writer->depth = 0;
    writer->last = 0;
}

const char *json_writer_text(const struct json_writer *writer)
{
    if (writer->failed)
        return NULL;
    return writer->text ? writer->text : "";
}

char *json_writer_steal(struct json_writer *writer)
{
    char *text = NULL;
    if (!writer->failed)
        text = writer->text ? writer->text : strdup("");
    else
        free(writer->text);
    writer->text = NULL;
    writer->capacity = 0;
    json_writer_reset(writer);
    return text;
}

int json_writer_status(const struct json_writer *writer)
{
    return writer->failed ? -ENOMEM : 0;
}

static bool reserve(struct json_writer *writer, size_t extra)
{
    if (writer->failed)
        return false;
    if (extra > SIZE_MAX / 2 - writer->length) {
        writer->failed = true;
        return false;
    }
    size_t needed = writer->length + extra + 1;
    if (needed <= writer->capacity)
        return true;
    size_t capacity = writer->capacity ? writer->capacity : 256;
    while (capacity < needed)
        capacity *= 2;
    char *text = realloc(writer->text, capacity);
    if (!text) {
        writer->failed = true;
        return false;
    }
    writer->text = text;
    writer->capacity = capacity;
    return true;
}

void json_writer_append_raw(struct json_writer *writer, const char *text, size_t length)
{
    if (!reserve(writer, length))
        return;
    memcpy(writer->text + writer->length, text, length);
    writer->length += length;
    writer->text[writer->length] = '\0';
}

static void append(struct json_writer *writer, const char *text)
{
    json_writer_append_raw(writer, text, strlen(text));
}

static void append_char(struct json_writer *writer, char c)
{
    json_writer_append_raw(writer, &c, 1);
}

static void newline_indent(struct json_writer *writer, unsigned depth)
{
    if (!writer->pretty)
        return;
    append_char(writer, '\n');
    for (unsigned i = 0; i < depth; i++)
        append(writer, "    ");
}

/* Separator and indentation before a value or a key. */
static void before_item(struct json_writer *writer)
{
    if (writer->last == ':')
        return; /* the value of a member: ": " is already there */
    if (writer->last == 'v')
        append(writer, writer->pretty ? "," : ", ");
    if (writer->last == 'v' || writer->last == '{' || writer->last == '[')
        newline_indent(writer, writer->depth);
}

static void begin_container(struct json_writer *writer, char open)
{
    before_item(writer);
    append_char(writer, open);
    writer->depth++;
    writer->last = open;
}

static void end_container(struct json_writer *writer, char close)
{
    if (writer->depth > 0)
        writer->depth--;
    /* QEMU puts the closing bracket on its own line in pretty mode, even when empty. */
    newline_indent(writer, writer->depth);
    append_char(writer, close);
    writer->last = 'v';
}

void json_writer_begin_object(struct json_writer *writer)
{
    begin_container(writer, '{');
}

void json_writer_end_object(struct json_writer *writer)
{
    end_container(writer, '}');
}

void json_writer_begin_array(struct json_writer *writer)
{
    begin_container(writer, '[');
}

void json_writer_end_array(struct json_writer *writer)
{
    end_container(writer, ']');
}

/* Decodes one UTF-8 sequence; returns the code point or -1 (invalid), and
 * the number of bytes consumed in *used (at least 1). */
static int32_t utf8_decode(const unsigned char *text, size_t length, size_t *used)
{
    unsigned char first = text[0];
    *used = 1;
    if (first < 0x80)
        return first;
    size_t count;
    int32_t code_point, minimum;
    if ((first & 0xe0) == 0xc0) {
        count = 2, code_point = first & 0x1f, minimum = 0x80;
    } else if ((first & 0xf0) == 0xe0) {
        count = 3, code_point = first & 0x0f, minimum = 0x800;
    } else if ((first & 0xf8) == 0xf0) {
        count = 4, code_point = first & 0x07, minimum = 0x10000;
    } else {
        return -1;
    }
    for (size_t i = 1; i < count; i++) {
        if (i >= length || (text[i] & 0xc0) != 0x80) {
            *used = i;
            return -1;
        }
        code_point = (code_point << 6) | (text[i] & 0x3f);
    }
    *used = count;
    if (code_point < minimum || code_point > 0x10ffff ||
        (code_point >= 0xd800 && code_point <= 0xdfff))
        return -1;
    return code_point;
}

static void write_escaped(struct json_writer *writer, const char *value, size_t length)
{
    const unsigned char *text = (const unsigned char *)value;
    append_char(writer, '"');
    size_t i = 0;
    while (i < length) {
        /* Copy runs of plain ASCII at once. */
        size_t run = i;
        while (run < length && text[run] >= 0x20 && text[run] < 0x7f && text[run] != '"' &&
               text[run] != '\\')
            run++;
        if (run > i) {
            json_writer_append_raw(writer, value + i, run - i);
            i = run;
            continue;
        }
        size_t used;
        int32_t code_point = utf8_decode(text + i, length - i, &used);
        i += used;
        char escape[16];
        switch (code_point) {
        case '"':
            append(writer, "\\\"");
            continue;
        case '\\':
            append(writer, "\\\\");
            continue;
        case '\b':
            append(writer, "\\b");
            continue;
        case '\f':
            append(writer, "\\f");
            continue;
        case '\n':
            append(writer, "\\n");
            continue;
        case '\r':
            append(writer, "\\r");
            continue;
        case '\t':
            append(writer, "\\t");
            continue;
        default:
            break;
        }
        if (code_point < 0)
            code_point = 0xfffd;
        if (code_point > 0xffff) {
            code_point -= 0x10000;
            snprintf(escape, sizeof(escape), "\\u%04X\\u%04X", 0xd800 + (code_point >> 10),
                     0xdc00 + (code_point & 0x3ff));
        } else {
            snprintf(escape, sizeof(escape), "\\u%04X", (unsigned)code_point);
        }
        append(writer, escape);
    }
    append_char(writer, '"');
}

void json_writer_key(struct json_writer *writer, const char *key)
{
    before_item(writer);
    write_escaped(writer, key, strlen(key));
    append(writer, ": ");
    writer->last = ':';
}

static void scalar(struct json_writer *writer, const char *text)
{
    before_item(writer);
    append(writer, text);
    writer->last = 'v';
}

void json_writer_string_length(struct json_writer *writer, const char *value, size_t length)
{
    before_item(writer);
    write_escaped(writer, value, length);
    writer->last = 'v';
}

void json_writer_string(struct json_writer *writer, const char *value)
{
    if (!value) {
        json_writer_null(writer);
        return;
    }
    json_writer_string_length(writer, value, strlen(value));
}

void json_writer_int(struct json_writer *writer, int64_t value)
{
    char text[32];
    snprintf(text, sizeof(text), "%" PRId64, value);
    scalar(writer, text);
}

void json_writer_uint(struct json_writer *writer, uint64_t value)
{
    char text[32];
    snprintf(text, sizeof(text), "%" PRIu64, value);
    scalar(writer, text);
}

void json_writer_double(struct json_writer *writer, double value)
{
    if (!isfinite(value)) {
        scalar(writer, "null"); /* JSON has no representation for these */
        return;
    }
    char text[64];
    snprintf(text, sizeof(text), "%.17g", value);
    scalar(writer, text);
}

void json_writer_bool(struct json_writer *writer, bool value)
{
    scalar(writer, value ? "true" : "false");
}

void json_writer_null(struct json_writer *writer)
{
    scalar(writer, "null");
}

void json_writer_value(struct json_writer *writer, yajl_val value)
{
    if (!value) {
        json_writer_null(writer);
        return;
    }
    switch (value->type) {
    case yajl_t_string:
        json_writer_string(writer, value->u.string);
        break;
    case yajl_t_number:
        scalar(writer, value->u.number.r);
        break;
    case yajl_t_object:
        json_writer_begin_object(writer);
        for (size_t i = 0; i < value->u.object.len; i++) {
            json_writer_key(writer, value->u.object.keys[i]);
            json_writer_value(writer, value->u.object.values[i]);
        }
        json_writer_end_object(writer);
        break;
    case yajl_t_array:
        json_writer_begin_array(writer);
        for (size_t i = 0; i < value->u.array.len; i++)
            json_writer_value(writer, value->u.array.values[i]);
        json_writer_end_array(writer);
        break;
    case yajl_t_true:
        json_writer_bool(writer, true);
        break;
    case yajl_t_false:
        json_writer_bool(writer, false);
        break;
    default:
        json_writer_null(writer);
        break;
    }
}

void json_writer_json(struct json_writer *writer, const char *json_text)
{
    size_t length = strlen(json_text);
    yajl_val value = json_parse(json_text, length, length, JSON_MAX_DEPTH, NULL);
    if (value) {
        json_writer_value(writer, value);
        yajl_tree_free(value);
        return;
    }
    scalar(writer, json_text);
}

void json_writer_member_string(struct json_writer *writer, const char *key, const char *value)
{
    json_writer_key(writer, key);
    json_writer_string(writer, value);
}

void json_writer_member_int(struct json_writer *writer, const char *key, int64_t value)
{
    json_writer_key(writer, key);
    json_writer_int(writer, value);
}

void json_writer_member_uint(struct json_writer *writer, const char *key, uint64_t value)
{
    json_writer_key(writer, key);
    json_writer_uint(writer, value);
}

void json_writer_member_bool(struct json_writer *writer, const char *key, bool value)
{
    json_writer_key(writer, key);
    json_writer_bool(writer, value);
}

/* --- parsing ------------------------------------------------------------ */

/* Deepest bracket nesting outside strings; yajl's tree code recurses when
 * freeing, so depth is checked before handing text to it. */
static size_t nesting_depth(const char *text, size_t length)
{
    size_t depth = 0, deepest = 0;
    bool in_string = false, escaped = false;
    for (size_t i = 0; i < length; i++) {
        char c = text[i];
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > deepest)
                deepest = depth;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return deepest;
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Returns the first duplicated key found in the tree, or NULL. */
static const char *find_duplicate_key(yajl_val value, int *rc)
{
    if (YAJL_IS_ARRAY(value)) {
        for (size_t i = 0; i < value->u.array.len; i++) {
            const char *duplicate = find_duplicate_key(value->u.array.values[i], rc);
            if (duplicate || *rc)
                return duplicate;
        }
        return NULL;
    }
    if (!YAJL_IS_OBJECT(value))
        return NULL;
    size_t count = value->u.object.len;
    if (count > 1) {
        const char **keys = malloc(count * sizeof(*keys));
        if (!keys) {
            *rc = -ENOMEM;
            return NULL;
        }
        memcpy(keys, value->u.object.keys, count * sizeof(*keys));
        qsort(keys, count, sizeof(*keys), compare_keys);
        const char *duplicate = NULL;
        for (size_t i = 1; i < count && !duplicate; i++)
            if (strcmp(keys[i - 1], keys[i]) == 0)
                duplicate = keys[i];
        free(keys);
        if (duplicate)
            return duplicate;
    }
    for (size_t i = 0; i < count; i++) {
        const char *duplicate = find_duplicate_key(value->u.object.values[i], rc);
        if (duplicate || *rc)
            return duplicate;
    }
    return NULL;
}

/* yajl's messages look like "parse error: <what>\n <context>"; keep <what>. */
static void set_yajl_error(struct pv_error *error, const char *message)
{
    const char *start = message;
    const char *colon = strstr(message, "error: ");
    if (colon && (size_t)(colon - message) < 16)
        start = colon + strlen("error: ");
    size_t length = strcspn(start, "\n");
    while (length > 0 && (start[length - 1] == '.' || start[length - 1] == ' '))
        length--;
    if (length == 0) {
        pv_error_set(error, -EINVAL, "invalid JSON");
        return;
    }
    pv_error_set(error, -EINVAL, "%.*s", (int)length, start);
}

yajl_val json_parse(const char *text, size_t length, size_t max_length, unsigned max_depth,
                    struct pv_error *error)
{
    if (max_depth > JSON_MAX_DEPTH)
        max_depth = JSON_MAX_DEPTH;
    if (length > max_length) {
        pv_error_set(error, -E2BIG, "JSON text larger than %zu bytes", max_length);
        return NULL;
    }
    if (memchr(text, '\0', length)) {
        pv_error_set(error, -EINVAL, "NUL byte in JSON text");
        return NULL;
    }
    if (nesting_depth(text, length) > max_depth) {
        pv_error_set(error, -E2BIG, "nesting depth limit exceeded");
        return NULL;
    }
    char *copy = malloc(length + 1);
    if (!copy) {
        pv_error_set(error, -ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(copy, text, length);
    copy[length] = '\0';
    char message[256] = "";
    yajl_val value = yajl_tree_parse(copy, message, sizeof(message));
    free(copy);
    if (!value) {
        set_yajl_error(error, message);
        return NULL;
    }
    int rc = 0;
    const char *duplicate = find_duplicate_key(value, &rc);
    if (rc < 0 || duplicate) {
        if (rc < 0)
            pv_error_set(error, rc, "out of memory");
        else
            pv_error_set(error, -EINVAL, "duplicate key '%s'", duplicate);
        yajl_tree_free(value);
        return NULL;
    }
    return value;
}

yajl_val json_object_get(yajl_val object, const char *key)
{
    if (!YAJL_IS_OBJECT(object) || !key)
        return NULL;
    for (size_t i = 0; i < object->u.object.len; i++)
        if (strcmp(object->u.object.keys[i], key) == 0)
            return object->u.object.values[i];
    return NULL;
}

const char *json_get_string(yajl_val object, const char *key)
{
    yajl_val value = json_object_get(object, key);
    return YAJL_IS_STRING(value) ? value->u.string : NULL;
}

yajl_val json_get_object(yajl_val object, const char *key)
{
    yajl_val value = json_object_get(object, key);
    return YAJL_IS_OBJECT(value) ? value : NULL;
}

yajl_val json_get_array(yajl_val object, const char *key)
{
    yajl_val value = json_object_get(object, key);
    return YAJL_IS_ARRAY(value) ? value : NULL;
}

bool json_get_bool(yajl_val object, const char *key, bool *value)
{
    yajl_val member = json_object_get(object, key);
    if (!YAJL_IS_TRUE(member) && !YAJL_IS_FALSE(member))
        return false;
    *value = YAJL_IS_TRUE(member);
    return true;
}

bool json_value_is_integer(yajl_val value)
{
    if (!YAJL_IS_NUMBER(value) || !value->u.number.r)
        return false;
    return strpbrk(value->u.number.r, ".eE") == NULL;
}

bool json_value_int64(yajl_val value, int64_t *result)
{
    if (!json_value_is_integer(value) || !(value->u.number.flags & YAJL_NUMBER_INT_VALID))
        return false;
    *result = value->u.number.i;
    return true;
}

bool json_value_uint64(yajl_val value, uint64_t *result)
{
    if (!json_value_is_integer(value) || value->u.number.r[0] == '-')
        return false;
    /* yajl keeps only long long; values up to 2^64-1 are parsed from the text. */
    errno = 0;
    char *end;
    unsigned long long parsed = strtoull(value->u.number.r, &end, 10);
    if (errno || *end)
        return false;
    *result = parsed;
    return true;
}

bool json_get_int64(yajl_val object, const char *key, int64_t *value)
{
    return json_value_int64(json_object_get(object, key), value);
}

bool json_get_uint64(yajl_val object, const char *key, uint64_t *value)
{
    return json_value_uint64(json_object_get(object, key), value);
}

bool json_get_double(yajl_val object, const char *key, double *value)
{
    yajl_val member = json_object_get(object, key);
    if (!YAJL_IS_NUMBER(member))
        return false;
    if (member->u.number.flags & YAJL_NUMBER_DOUBLE_VALID)
        *value = member->u.number.d;
    else
        *value = strtod(member->u.number.r, NULL);
    return true;
}

const char *json_type_name(yajl_val value)
{
    if (!value)
        return "null";
    switch (value->type) {
    case yajl_t_string:
        return "string";
    case yajl_t_number:
        return "number";
    case yajl_t_object:
        return "object";
    case yajl_t_array:
        return "array";
    case yajl_t_true:
    case yajl_t_false:
        return "boolean";
    default:
        return "null";
    }
}

/* JSON helpers on top of yajl 2: a growable writer that produces QEMU's text
 * layout, and tree parsing with limits plus typed member getters.
 *
 * The writer emits what QEMU's qobject_to_json() emits: `{"a": 1, "b": [1, 2]}`
 * (", " and ": " separators), or with `pretty` set, 4-space indentation and
 * "\n" line breaks. Strings are escaped the same way QEMU does: quote,
 * backslash and \b \f \n \r \t get short escapes, other control characters
 * and every non-ASCII character become \uXXXX (surrogate pairs beyond the BMP,
 * U+FFFD for invalid UTF-8). */
#ifndef PLUGVIRT_JSON_UTIL_H
#define PLUGVIRT_JSON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_tree.h>

#include "pv_error.h"

/* Nesting limit of parsed documents (the same as QEMU's JSON parser). */
#define JSON_MAX_DEPTH 1024

struct json_writer {
    char *text; /* NUL-terminated once anything was written */
    size_t length;
    size_t capacity;
    bool failed;    /* an allocation failed; the text is incomplete */
    bool pretty;    /* QEMU's pretty layout (-mon pretty=on) */
    unsigned depth; /* open containers, for indentation */
    char last;      /* last structural token: 0, '{', '[', ':' or 'v' (a value) */
};

void json_writer_init(struct json_writer *writer, bool pretty);
/* Frees the text. The writer may be initialised again afterwards. */
void json_writer_free(struct json_writer *writer);
/* Forgets the content but keeps the buffer and the pretty setting. */
void json_writer_reset(struct json_writer *writer);
/* The text so far ("" when empty), or NULL after an allocation failure. */
const char *json_writer_text(const struct json_writer *writer);
/* Hands the text over to the caller (free() it); the writer is reset. NULL on failure. */
char *json_writer_steal(struct json_writer *writer);
/* 0, or -ENOMEM when any earlier write failed. */
int json_writer_status(const struct json_writer *writer);

void json_writer_begin_object(struct json_writer *writer);
void json_writer_end_object(struct json_writer *writer);
void json_writer_begin_array(struct json_writer *writer);
void json_writer_end_array(struct json_writer *writer);
/* An object member name; the value written next belongs to it. */
void json_writer_key(struct json_writer *writer, const char *key);

void json_writer_string(struct json_writer *writer, const char *value);
void json_writer_string_length(struct json_writer *writer, const char *value, size_t length);
void json_writer_int(struct json_writer *writer, int64_t value);
void json_writer_uint(struct json_writer *writer, uint64_t value);
void json_writer_double(struct json_writer *writer, double value);
void json_writer_bool(struct json_writer *writer, bool value);
void json_writer_null(struct json_writer *writer);
/* A parsed value, written back in this writer's layout. Numbers keep their
 * original text, so 64-bit values and ids round-trip exactly. */
void json_writer_value(struct json_writer *writer, yajl_val value);
/* A JSON text from elsewhere, re-laid-out; written verbatim if it does not parse. */
void json_writer_json(struct json_writer *writer, const char *json_text);
/* Bytes appended as they are, outside the JSON structure (e.g. "\r\n"). */
void json_writer_append_raw(struct json_writer *writer, const char *text, size_t length);

/* Shorthands for object members. */
void json_writer_member_string(struct json_writer *writer, const char *key, const char *value);
void json_writer_member_int(struct json_writer *writer, const char *key, int64_t value);
void json_writer_member_uint(struct json_writer *writer, const char *key, uint64_t value);
void json_writer_member_bool(struct json_writer *writer, const char *key, bool value);

/* Parses `length` bytes (need not be NUL-terminated) into a tree; free it
 * with yajl_tree_free. Rejects texts longer than max_length, nested deeper
 * than max_depth (at most JSON_MAX_DEPTH), with NUL bytes or with duplicate
 * object keys. On failure returns NULL with a message such as
 * "unallowed token at this point in JSON text" in `error` (-EINVAL, -E2BIG
 * for limits, -ENOMEM). */
yajl_val json_parse(const char *text, size_t length, size_t max_length, unsigned max_depth,
                    struct pv_error *error);

/* Member lookup in an object; NULL when `object` is not an object or has no such key. */
yajl_val json_object_get(yajl_val object, const char *key);
/* Typed getters: the member's value, or NULL / false when it is absent or has another type. */
const char *json_get_string(yajl_val object, const char *key);
yajl_val json_get_object(yajl_val object, const char *key);
yajl_val json_get_array(yajl_val object, const char *key);
bool json_get_bool(yajl_val object, const char *key, bool *value);
bool json_get_int64(yajl_val object, const char *key, int64_t *value);
bool json_get_uint64(yajl_val object, const char *key, uint64_t *value);
bool json_get_double(yajl_val object, const char *key, double *value);

/* Value conversions used by the getters. */
bool json_value_int64(yajl_val value, int64_t *result);
bool json_value_uint64(yajl_val value, uint64_t *result);
/* True for numbers written without fraction or exponent (any size). */
bool json_value_is_integer(yajl_val value);

/* QEMU's name of a JSON type as used in its error messages: "string",
 * "number", "object", "array", "boolean", "null". */
const char *json_type_name(yajl_val value);

#endif

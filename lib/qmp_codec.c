/* QMP framing, request checking and message formatting. */
#include "qmp_codec.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static const char *const error_class_names[] = {
    [QMP_ERROR_GENERIC_ERROR] = "GenericError",
    [QMP_ERROR_COMMAND_NOT_FOUND] = "CommandNotFound",
    [QMP_ERROR_DEVICE_NOT_ACTIVE] = "DeviceNotActive",
    [QMP_ERROR_DEVICE_NOT_FOUND] = "DeviceNotFound",
    [QMP_ERROR_KVM_MISSING_CAP] = "KVMMissingCap",
};

#define ERROR_CLASS_COUNT (sizeof(error_class_names) / sizeof(error_class_names[0]))

const char *qmp_error_class_name(enum qmp_error_class error_class)
{
    if ((size_t)error_class >= ERROR_CLASS_COUNT)
        return "GenericError";
    return error_class_names[error_class];
}

bool qmp_error_class_from_name(const char *name, enum qmp_error_class *error_class)
{
    for (size_t i = 0; name && i < ERROR_CLASS_COUNT; i++) {
        if (strcmp(name, error_class_names[i]) == 0) {
            *error_class = (enum qmp_error_class)i;
            return true;
        }
    }
    *error_class = QMP_ERROR_GENERIC_ERROR;
    return false;
}

int qmp_error_set(struct qmp_error *error, enum qmp_error_class error_class, const char *format,
                  ...)
{
    if (error) {
        error->error_class = error_class;
        va_list arguments;
        va_start(arguments, format);
        vsnprintf(error->desc, sizeof(error->desc), format, arguments);
        va_end(arguments);
    }
    return -EINVAL;
}

/* --- framing ---------------------------------------------------------------- */

void qmp_stream_init(struct qmp_stream *stream, size_t max_message_size,
                     qmp_stream_message_fn callback, void *opaque)
{
    memset(stream, 0, sizeof(*stream));
    stream->callback = callback;
    stream->opaque = opaque;
    stream->max_message_size = max_message_size ? max_message_size : QMP_MAX_MESSAGE_SIZE;
}

void qmp_stream_destroy(struct qmp_stream *stream)
{
    free(stream->buffer);
    stream->buffer = NULL;
    stream->capacity = 0;
    qmp_stream_reset(stream);
}

void qmp_stream_reset(struct qmp_stream *stream)
{
    stream->length = 0;
    stream->active = false;
    stream->scalar = false;
    stream->discarding = false;
    stream->escaped = false;
    stream->quote = 0;
    stream->depth = 0;
}

/* Enters discard mode and reports why, once per message. */
static void stream_fail(struct qmp_stream *stream, const char *why)
{
    if (stream->discarding)
        return;
    stream->discarding = true;
    stream->length = 0;
    stream->callback(stream->opaque, NULL, 0, why);
}

static int stream_store(struct qmp_stream *stream, const char *bytes, size_t count)
{
    if (stream->discarding)
        return 0;
    if (stream->length + count > stream->max_message_size) {
        stream_fail(stream, "JSON token size limit exceeded");
        return 0;
    }
    if (stream->length + count + 1 > stream->capacity) {
        size_t capacity = stream->capacity ? stream->capacity : 1024;
        while (capacity < stream->length + count + 1)
            capacity *= 2;
        if (capacity > stream->max_message_size + 1)
            capacity = stream->max_message_size + 1;
        char *buffer = realloc(stream->buffer, capacity);
        if (!buffer) {
            qmp_stream_reset(stream);
            return -ENOMEM;
        }
        stream->buffer = buffer;
        stream->capacity = capacity;
    }
    memcpy(stream->buffer + stream->length, bytes, count);
    stream->length += count;
    return 0;
}

static void stream_emit(struct qmp_stream *stream)
{
    if (!stream->discarding) {
        stream->buffer[stream->length] = '\0';
        stream->callback(stream->opaque, stream->buffer, stream->length, NULL);
    }
    qmp_stream_reset(stream);
}

static bool is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool ends_scalar(char c)
{
    return is_json_space(c) || strchr("{}[],:\"'", c) != NULL;
}

/* One byte inside a string: QEMU accepts \' in both quote styles, and a
 * double quote inside a single-quoted string is plain text. */
static int stream_string_byte(struct qmp_stream *stream, char c)
{
    if (stream->escaped) {
        stream->escaped = false;
        if (c == '\'')
            return stream_store(stream, "'", 1);
        char escape[2] = {'\\', c};
        return stream_store(stream, escape, 2);
    }
    if (c == '\\') {
        stream->escaped = true;
        return 0;
    }
    if (c == stream->quote) {
        stream->quote = 0;
        int rc = stream_store(stream, "\"", 1);
        if (rc == 0 && stream->depth == 0)
            stream_emit(stream);
        return rc;
    }
    if (c == '"')
        return stream_store(stream, "\\\"", 2);
    return stream_store(stream, &c, 1);
}

static int stream_byte(struct qmp_stream *stream, char c)
{
    if (stream->quote)
        return stream_string_byte(stream, c);
    if (stream->active && stream->scalar) {
        if (!ends_scalar(c))
            return stream_store(stream, &c, 1);
        stream_emit(stream); /* the delimiter then starts afresh */
    }
    if (!stream->active) {
        if (is_json_space(c))
            return 0;
        stream->active = true;
        if (c == '}' || c == ']') {
            /* A stray closer: hand it on alone so the parser reports it. */
            int rc = stream_store(stream, &c, 1);
            if (rc == 0)
                stream_emit(stream);
            return rc;
        }
        if (c != '{' && c != '[' && c != '"' && c != '\'') {
            stream->scalar = true;
            return stream_store(stream, &c, 1);
        }
    }
    switch (c) {
    case '"':
    case '\'':
        stream->quote = c;
        return stream_store(stream, "\"", 1);
    case '{':
    case '[':
        stream->depth++;
        if (stream->depth > JSON_MAX_DEPTH)
            stream_fail(stream, "JSON nesting depth limit exceeded");
        return stream_store(stream, &c, 1);
    case '}':
    case ']': {
        int rc = stream_store(stream, &c, 1);
        if (--stream->depth == 0 && rc == 0)
            stream_emit(stream);
        return rc;
    }
    default:
        return stream_store(stream, &c, 1);
    }
}

int qmp_stream_feed(struct qmp_stream *stream, const void *data, size_t length)
{
    const char *bytes = data;
    int result = 0;
    for (size_t i = 0; i < length; i++) {
        int rc = stream_byte(stream, bytes[i]);
        if (rc < 0)
            result = rc;
    }
    return result;
}

/* --- requests ------------------------------------------------------------------ */

int qmp_request_parse(const char *text, size_t length, bool allow_oob, struct qmp_request *request,
                      struct qmp_error *error)
{
    memset(request, 0, sizeof(*request));
    struct pv_error parse_error = {0};
    request->root = json_parse(text, length, QMP_MAX_MESSAGE_SIZE, JSON_MAX_DEPTH, &parse_error);
    if (!request->root)
        return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR, "JSON parse error, %s",
                             parse_error.message);
    yajl_val root = request->root;
    if (!YAJL_IS_OBJECT(root))
        return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR, "QMP input must be a JSON object");
    request->id = json_object_get(root, "id");

    /* Members are checked in input order, as QEMU does, so the first bad one is named. */
    const char *command_key = NULL;
    for (size_t i = 0; i < root->u.object.len; i++) {
        const char *key = root->u.object.keys[i];
        yajl_val value = root->u.object.values[i];
        if (strcmp(key, "execute") == 0 || (allow_oob && strcmp(key, "exec-oob") == 0)) {
            if (!YAJL_IS_STRING(value))
                return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR,
                                     "QMP input member '%s' must be a string", key);
            if (command_key)
                return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR,
                                     "QMP input member '%s' clashes with '%s'", key, command_key);
            command_key = key;
            request->command = value->u.string;
            request->oob = strcmp(key, "exec-oob") == 0;
        } else if (strcmp(key, "arguments") == 0) {
            if (!YAJL_IS_OBJECT(value))
                return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR,
                                     "QMP input member 'arguments' must be an object");
            request->arguments = value;
        } else if (strcmp(key, "id") != 0) {
            return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR,
                                 "QMP input member '%s' is unexpected", key);
        }
    }
    if (!command_key)
        return qmp_error_set(error, QMP_ERROR_GENERIC_ERROR, "QMP input lacks member 'execute'");
    return 0;
}

void qmp_request_free(struct qmp_request *request)
{
    if (request->root)
        yajl_tree_free(request->root);
    memset(request, 0, sizeof(*request));
}

/* --- formatting ------------------------------------------------------------------ */

/* Ends a message begun at `start`: QEMU's monitor turns every "\n" into
 * "\r\n", which only matters for pretty output (compact text has none). */
static int finish_message(struct json_writer *out, size_t start)
{
    if (out->pretty && !out->failed) {
        size_t newlines = 0;
        for (size_t i = start; i < out->length; i++)
            if (out->text[i] == '\n')
                newlines++;
        if (newlines > 0) {
            size_t old_length = out->length;
            /* Grow by the number of '\r' to insert, then move text back to front. */
            for (size_t i = 0; i < newlines; i++)
                json_writer_append_raw(out, " ", 1);
            if (out->failed)
                return -ENOMEM;
            size_t to = out->length;
            for (size_t from = old_length; from > start; from--) {
                char c = out->text[from - 1];
                out->text[--to] = c;
                if (c == '\n')
                    out->text[--to] = '\r';
            }
        }
    }
    json_writer_append_raw(out, "\r\n", 2);
    out->depth = 0;
    out->last = 0;
    return json_writer_status(out);
}

static void begin_message(struct json_writer *out)
{
    /* Each message is a fresh top-level value, even after earlier ones. */
    out->depth = 0;
    out->last = 0;
}

int qmp_format_greeting(struct json_writer *out, int major, int minor, int micro,
                        const char *package, bool offer_oob)
{
    size_t start = out->length;
    begin_message(out);
    json_writer_begin_object(out);
    json_writer_key(out, "QMP");
    json_writer_begin_object(out);
    json_writer_key(out, "version");
    json_writer_begin_object(out);
    json_writer_key(out, "qemu");
    json_writer_begin_object(out);
    json_writer_member_int(out, "micro", micro);
    json_writer_member_int(out, "minor", minor);
    json_writer_member_int(out, "major", major);
    json_writer_end_object(out);
    json_writer_member_string(out, "package", package ? package : "");
    json_writer_end_object(out);
    json_writer_key(out, "capabilities");
    json_writer_begin_array(out);
    if (offer_oob)
        json_writer_string(out, "oob");
    json_writer_end_array(out);
    json_writer_end_object(out);
    json_writer_end_object(out);
    return finish_message(out, start);
}

int qmp_format_return(struct json_writer *out, const char *result_json, yajl_val id)
{
    size_t start = out->length;
    begin_message(out);
    json_writer_begin_object(out);
    json_writer_key(out, "return");
    if (result_json && *result_json) {
        json_writer_json(out, result_json);
    } else {
        json_writer_begin_object(out);
        json_writer_end_object(out);
    }
    if (id) {
        json_writer_key(out, "id");
        json_writer_value(out, id);
    }
    json_writer_end_object(out);
    return finish_message(out, start);
}

int qmp_format_error(struct json_writer *out, const struct qmp_error *error, yajl_val id)
{
    size_t start = out->length;
    begin_message(out);
    json_writer_begin_object(out);
    if (id) {
        json_writer_key(out, "id");
        json_writer_value(out, id);
    }
    json_writer_key(out, "error");
    json_writer_begin_object(out);
    json_writer_member_string(out, "class", qmp_error_class_name(error->error_class));
    json_writer_member_string(out, "desc", error->desc);
    json_writer_end_object(out);
    json_writer_end_object(out);
    return finish_message(out, start);
}

int qmp_format_event(struct json_writer *out, const char *event_name, const char *data_json,
                     int64_t seconds, int64_t microseconds)
{
    size_t start = out->length;
    begin_message(out);
    json_writer_begin_object(out);
    json_writer_key(out, "timestamp");
    json_writer_begin_object(out);
    json_writer_member_int(out, "seconds", seconds);
    json_writer_member_int(out, "microseconds", microseconds);
    json_writer_end_object(out);
    json_writer_member_string(out, "event", event_name);
    if (data_json && *data_json) {
        json_writer_key(out, "data");
        json_writer_json(out, data_json);
    }
    json_writer_end_object(out);
    return finish_message(out, start);
}

int qmp_format_event_now(struct json_writer *out, const char *event_name, const char *data_json)
{
    struct timeval now;
    gettimeofday(&now, NULL);
    return qmp_format_event(out, event_name, data_json, now.tv_sec, now.tv_usec);
}

int qmp_format_request(struct json_writer *out, const char *command, const char *arguments_json,
                       const char *id_json, bool oob)
{
    size_t start = out->length;
    begin_message(out);
    json_writer_begin_object(out);
    json_writer_member_string(out, oob ? "exec-oob" : "execute", command);
    if (arguments_json) {
        json_writer_key(out, "arguments");
        json_writer_json(out, arguments_json);
    }
    if (id_json) {
        json_writer_key(out, "id");
        json_writer_json(out, id_json);
    }
    json_writer_end_object(out);
    return finish_message(out, start);
}

/* --- received messages ----------------------------------------------------------- */

int qmp_message_parse(const char *text, size_t length, struct qmp_message *message,
                      struct pv_error *error)
{
    memset(message, 0, sizeof(*message));
    struct pv_error parse_error = {0};
    message->root = json_parse(text, length, QMP_MAX_MESSAGE_SIZE, JSON_MAX_DEPTH, &parse_error);
    if (!message->root)
        return pv_error_set(error, -EINVAL, "invalid QMP message: %s", parse_error.message);
    yajl_val root = message->root;
    if (!YAJL_IS_OBJECT(root))
        return pv_error_set(error, -EINVAL, "invalid QMP message: not a JSON object");
    message->id = json_object_get(root, "id");

    yajl_val value;
    if ((value = json_object_get(root, "return")) != NULL) {
        message->kind = QMP_MESSAGE_RETURN;
        message->value = value;
        return 0;
    }
    if ((value = json_object_get(root, "error")) != NULL) {
        const char *class_name = json_get_string(value, "class");
        const char *desc = json_get_string(value, "desc");
        if (!class_name || !desc)
            return pv_error_set(error, -EINVAL, "invalid QMP error: no class or desc");
        message->kind = QMP_MESSAGE_ERROR;
        qmp_error_class_from_name(class_name, &message->error.error_class);
        snprintf(message->error.desc, sizeof(message->error.desc), "%s", desc);
        return 0;
    }
    if ((value = json_object_get(root, "event")) != NULL) {
        if (!YAJL_IS_STRING(value))
            return pv_error_set(error, -EINVAL, "invalid QMP event: name is not a string");
        message->kind = QMP_MESSAGE_EVENT;
        message->event = value->u.string;
        message->value = json_object_get(root, "data");
        yajl_val timestamp = json_get_object(root, "timestamp");
        json_get_int64(timestamp, "seconds", &message->seconds);
        json_get_int64(timestamp, "microseconds", &message->microseconds);
        return 0;
    }
    if ((value = json_get_object(root, "QMP")) != NULL) {
        message->kind = QMP_MESSAGE_GREETING;
        message->value = value;
        return 0;
    }
    return pv_error_set(error, -EINVAL, "invalid QMP message: no return, error, event or QMP");
}

void qmp_message_free(struct qmp_message *message)
{
    if (message->root)
        yajl_tree_free(message->root);
    memset(message, 0, sizeof(*message));
}

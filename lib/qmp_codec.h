/* QMP wire format, shared by the VMM's QMP server and the daemon's QMP client.
 *
 * Framing: QMP is a stream of JSON values, not of lines. Like QEMU's JSON
 * streamer, qmp_stream cuts the input where braces and brackets balance
 * (outside strings), so several messages in one read and messages split
 * across reads both work, and newlines are just whitespace. QEMU's
 * single-quoted strings ('...') are accepted and turned into JSON strings.
 * A message above the size limit or nested deeper than JSON_MAX_DEPTH is
 * reported once as an error; the rest of it is skipped until the brackets
 * balance again, so memory stays bounded whatever a peer sends.
 *
 * Messages are formatted as QEMU 8.2 writes them: one line of JSON ended by
 * "\r\n", members in QEMU's order, e.g.
 *   {"return": {}, "id": 1}
 *   {"id": 1, "error": {"class": "GenericError", "desc": "..."}}
 *   {"timestamp": {"seconds": S, "microseconds": U}, "event": "STOP"} */
#ifndef PLUGVIRT_QMP_CODEC_H
#define PLUGVIRT_QMP_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_tree.h>

#include "json_util.h"
#include "pv_error.h"

#define QMP_MAX_MESSAGE_SIZE (1024 * 1024)

/* QEMU's QapiErrorClass values. */
enum qmp_error_class {
    QMP_ERROR_GENERIC_ERROR,
    QMP_ERROR_COMMAND_NOT_FOUND,
    QMP_ERROR_DEVICE_NOT_ACTIVE,
    QMP_ERROR_DEVICE_NOT_FOUND,
    QMP_ERROR_KVM_MISSING_CAP,
};

struct qmp_error {
    enum qmp_error_class error_class;
    char desc[PV_ERROR_MESSAGE_MAX];
};

/* "GenericError", "CommandNotFound", ... */
const char *qmp_error_class_name(enum qmp_error_class error_class);
/* Unknown names map to QMP_ERROR_GENERIC_ERROR (and return false). */
bool qmp_error_class_from_name(const char *name, enum qmp_error_class *error_class);
/* Records an error and returns -EINVAL; `error` may be NULL. */
int qmp_error_set(struct qmp_error *error, enum qmp_error_class error_class, const char *format,
                  ...) __attribute__((format(printf, 3, 4)));

/* --- framing ---------------------------------------------------------------- */

/* Called for each complete message (`message` is NUL-terminated, `error` is
 * NULL) or for a framing error (`message` is NULL, `error` says what, e.g.
 * "JSON token size limit exceeded"). The stream must not be fed from here. */
typedef void (*qmp_stream_message_fn)(void *opaque, const char *message, size_t length,
                                      const char *error);

struct qmp_stream {
    qmp_stream_message_fn callback;
    void *opaque;
    size_t max_message_size;
    char *buffer; /* the message being assembled */
    size_t length;
    size_t capacity;
    bool active;     /* a message has started */
    bool scalar;     /* it is a bare top-level scalar (number, keyword) */
    bool discarding; /* over a limit: skipping to the end of the message */
    bool escaped;    /* after a backslash inside a string */
    char quote;      /* inside a string: its quote character, else 0 */
    size_t depth;    /* open braces and brackets */
};

void qmp_stream_init(struct qmp_stream *stream, size_t max_message_size,
                     qmp_stream_message_fn callback, void *opaque);
void qmp_stream_destroy(struct qmp_stream *stream);
/* Drops any partial message (a new connection). */
void qmp_stream_reset(struct qmp_stream *stream);
/* Consumes bytes, calling the callback for each complete message or error.
 * Returns 0, or -ENOMEM (the partial message is dropped). */
int qmp_stream_feed(struct qmp_stream *stream, const void *data, size_t length);

/* --- server side -------------------------------------------------------------- */

struct qmp_request {
    yajl_val root;       /* owns everything below */
    const char *command; /* "execute" or "exec-oob" value */
    bool oob;            /* sent with "exec-oob" */
    yajl_val arguments;  /* object, or NULL when absent */
    yajl_val id;         /* any JSON value, or NULL when absent */
};

/* Parses and checks a request as QEMU's qmp_dispatch() does. On failure the
 * error carries QEMU's text ("JSON parse error, ...", "QMP input must be a
 * JSON object", "QMP input member 'execute' must be a string", ...) and
 * request->id is still set when the input had one, so the reply can carry
 * it. Always call qmp_request_free afterwards. */
int qmp_request_parse(const char *text, size_t length, bool allow_oob, struct qmp_request *request,
                      struct qmp_error *error);
void qmp_request_free(struct qmp_request *request);

/* The formatters append one complete message, "\r\n" included, to `out`
 * (which may hold earlier messages). Return 0 or -ENOMEM. With out->pretty,
 * the layout is QEMU's pretty one and every line ends in "\r\n". */
int qmp_format_greeting(struct json_writer *out, int major, int minor, int micro,
                        const char *package, bool offer_oob);
/* `result_json` is the value of "return" as JSON text; NULL means {}. */
int qmp_format_return(struct json_writer *out, const char *result_json, yajl_val id);
int qmp_format_error(struct json_writer *out, const struct qmp_error *error, yajl_val id);
/* `data_json` is a JSON object text or NULL (no "data" member). */
int qmp_format_event(struct json_writer *out, const char *event_name, const char *data_json,
                     int64_t seconds, int64_t microseconds);
/* Current wall-clock time, as QEMU stamps events. */
int qmp_format_event_now(struct json_writer *out, const char *event_name, const char *data_json);

/* --- client side -------------------------------------------------------------- */

/* {"execute": command, "arguments": ..., "id": ...}; arguments_json and
 * id_json are JSON texts or NULL. */
int qmp_format_request(struct json_writer *out, const char *command, const char *arguments_json,
                       const char *id_json, bool oob);

enum qmp_message_kind {
    QMP_MESSAGE_GREETING,
    QMP_MESSAGE_RETURN,
    QMP_MESSAGE_ERROR,
    QMP_MESSAGE_EVENT,
};

struct qmp_message {
    enum qmp_message_kind kind;
    yajl_val root;     /* owns everything below */
    yajl_val id;       /* RETURN/ERROR: the echoed id, or NULL */
    yajl_val value;    /* GREETING: the "QMP" object; RETURN: the result; EVENT: "data" or NULL */
    const char *event; /* EVENT: its name */
    int64_t seconds;   /* EVENT: timestamp */
    int64_t microseconds;
    struct qmp_error error; /* ERROR: class and desc */
};

/* Classifies a message received from a QMP server. Returns -EINVAL with a
 * message when it is not valid JSON or none of the four kinds. Always call
 * qmp_message_free afterwards. */
int qmp_message_parse(const char *text, size_t length, struct qmp_message *message,
                      struct pv_error *error);
void qmp_message_free(struct qmp_message *message);

#endif

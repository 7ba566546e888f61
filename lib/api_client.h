/* A small blocking client for the plugvirtd API (DESIGN.md §4).
 *
 * The protocol is newline-delimited JSON over a unix socket: requests
 * {"id": N, "method": "...", "params": {...}}, replies {"id": N, "result": ...} or
 * {"id": N, "error": {"code", "message", "qmp_class"?, "step"?}}, and, after
 * "events.subscribe", unsolicited {"event": ...} lines. Used by pvsh and by the
 * integration tests; everything blocks with a timeout (poll), no event loop. */
#ifndef PLUGVIRT_API_CLIENT_H
#define PLUGVIRT_API_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <yajl/yajl_tree.h>

#include "pv_error.h"

/* Where pvsh and the tests connect when nothing else is said. */
#define API_CLIENT_DEFAULT_SOCKET "/run/plugvirt/plugvirtd.sock"
#define API_CLIENT_DEFAULT_READONLY_SOCKET "/run/plugvirt/plugvirtd-ro.sock"
/* Longest line accepted from the daemon (a domain XML fits easily). */
#define API_CLIENT_MAX_LINE (16u * 1024 * 1024)

struct api_client;

/* One reply. Exactly one of `result` (may be a JSON null) or `error_code` is set;
 * everything points into `root`, freed by api_reply_free. */
struct api_reply {
    yajl_val root;
    yajl_val result;           /* the "result" member, or NULL for an error reply */
    yajl_val error;            /* the "error" object, or NULL */
    const char *error_code;    /* "no-domain", "invalid-xml", ... */
    const char *error_message; /* human readable */
    const char *qmp_class;     /* QMP error class when a QMP step failed, else NULL */
    const char *step;          /* the failed step, else NULL */
};

/* Connects to the daemon's socket. NULL with the reason in `error` (-ENOENT when the
 * socket does not exist, -ECONNREFUSED when nobody listens, -EACCES, ...). */
struct api_client *api_client_connect(const char *socket_path, struct pv_error *error);
void api_client_close(struct api_client *client);
/* The socket, e.g. to poll it together with other descriptors. */
int api_client_fd(const struct api_client *client);

/* Sends one request; `params_json` is a JSON object text or NULL for {}. The id used is
 * stored in *id when `id` is not NULL. */
int api_client_send(struct api_client *client, const char *method, const char *params_json,
                    uint64_t *id, struct pv_error *error);

/* Sends a request and waits up to `timeout_ms` (-1: forever) for its reply. Event lines
 * that arrive meanwhile are kept for api_client_read_event. Returns 0 when a reply
 * arrived (check reply->error_code), -ETIMEDOUT, -ECONNRESET when the daemon closed the
 * connection, -EPROTO for a line that is not a valid reply, or another -errno. */
int api_client_call(struct api_client *client, const char *method, const char *params_json,
                    int timeout_ms, struct api_reply *reply, struct pv_error *error);

/* The next event ({"event": ...} object), first from those kept by api_client_call.
 * Free *event with yajl_tree_free. Returns 0, -ETIMEDOUT, -ECONNRESET, -EINTR when a
 * signal interrupted the wait (so callers can react to SIGINT), or another -errno. */
int api_client_read_event(struct api_client *client, int timeout_ms, yajl_val *event,
                          struct pv_error *error);

/* The next raw line from the socket (without the newline), for tests that want to see
 * exactly what the daemon sends. free() *line. Same returns as api_client_read_event. */
int api_client_read_line(struct api_client *client, int timeout_ms, char **line,
                         struct pv_error *error);

/* Moves up to `size` bytes received but not yet taken as lines into `out` and returns how
 * many: after a reply that turns the connection into a byte stream (domain.console), the
 * first bytes of the stream may already have been read with the reply. */
size_t api_client_take_buffered(struct api_client *client, void *out, size_t size);

void api_reply_free(struct api_reply *reply);

#endif

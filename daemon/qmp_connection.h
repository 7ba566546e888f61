/* An asynchronous QMP client on the daemon's libevent loop: one per running domain.
 *
 * Connects to the VMM's QMP socket, reads the greeting, negotiates capabilities, then
 * runs commands one at a time in submission order (QMP answers in order); each command has
 * a bounded timeout. Events are passed to the event callback as they arrive. Works the same
 * against plugvirt-vmm and qemu-system-x86_64 (lib/qmp_codec.h does the framing/parsing). */
#ifndef PLUGVIRT_QMP_CONNECTION_H
#define PLUGVIRT_QMP_CONNECTION_H

#include <stdbool.h>

#include "pv_error.h"

struct event_base;
struct qmp_connection;

struct qmp_connection_reply {
    /* 0: "return" (return_json set); -EREMOTEIO: QMP "error" (error_class, error_desc set);
     * -ETIMEDOUT: no reply in time (the connection is then closed: QMP replies are ordered
     * and a late one would be matched to the wrong command); -ECONNRESET: connection lost. */
    int status;
    const char *return_json;
    const char *error_class; /* "GenericError", "CommandNotFound", "DeviceNotFound", ... */
    const char *error_desc;
};
typedef void (*qmp_connection_reply_fn)(void *opaque, const struct qmp_connection_reply *reply);
typedef void (*qmp_connection_event_fn)(void *opaque, const char *event_name,
                                        const char *data_json);
/* The connection went away (VMM exited or timeout); pending commands got -ECONNRESET first.
 * Only called after a successful `ready`; the handle stays valid (and must still be freed
 * with qmp_connection_close), further qmp_connection_execute calls fail with -ENOTCONN. */
typedef void (*qmp_connection_closed_fn)(void *opaque);
/* Greeting read and qmp_capabilities accepted (status 0), or the failure (-ETIMEDOUT: no
 * socket / no greeting within connect_timeout_ms; -ECONNRESET, -EPROTO, ...). After a failure
 * neither `closed` nor anything else runs; commands queued meanwhile got -ECONNRESET. */
typedef void (*qmp_connection_ready_fn)(void *opaque, int status, const char *message);

struct qmp_connection_callbacks {
    qmp_connection_ready_fn ready;
    qmp_connection_event_fn event;
    qmp_connection_closed_fn closed;
    void *opaque;
};

/* Starts connecting (non-blocking; retries for up to `connect_timeout_ms` while the socket does
 * not exist yet, as a just-started VMM may not have created it). */
struct qmp_connection *qmp_connection_open(struct event_base *base, const char *socket_path,
                                           int connect_timeout_ms,
                                           const struct qmp_connection_callbacks *callbacks,
                                           struct pv_error *error);
/* Queues `{"execute": command, "arguments": arguments_json}`; arguments_json may be NULL.
 * Commands may be queued before `ready`; they are sent after capabilities negotiation.
 * One command is on the wire at a time (not pipelined), so timeout_ms (<= 0: 5000) measures
 * the command itself, not the time spent behind others. Returns -ENOTCONN once closed.
 * The callback always runs exactly once (later, on the loop), unless the connection is
 * freed first with qmp_connection_close, in which case it runs with -ECONNRESET. */
int qmp_connection_execute(struct qmp_connection *connection, const char *command,
                           const char *arguments_json, int timeout_ms,
                           qmp_connection_reply_fn callback, void *opaque, struct pv_error *error);
/* qmp_connection_execute sending a copy of `fd` along with the command (SCM_RIGHTS), as
 * QMP getfd takes it; the caller keeps its own descriptor. */
int qmp_connection_execute_fd(struct qmp_connection *connection, const char *command,
                              const char *arguments_json, int fd, int timeout_ms,
                              qmp_connection_reply_fn callback, void *opaque,
                              struct pv_error *error);
bool qmp_connection_is_ready(const struct qmp_connection *connection);
/* Frees the connection; safe from inside any of its callbacks. Pending commands get
 * -ECONNRESET (synchronously, from here); `closed` is not called. NULL is a no-op. */
void qmp_connection_close(struct qmp_connection *connection);

#endif

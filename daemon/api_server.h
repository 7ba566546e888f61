/* The plugvirtd JSON API over unix sockets (DESIGN.md §4, notes/issue4-design.md).
 *
 * Newline-delimited JSON: {"id": N, "method": "...", "params": {...}} in,
 * {"id": N, "result": ...} or {"id": N, "error": {"code", "message", "qmp_class"?, "step"?}}
 * out, and {"event": ...} lines for subscribers. Two listening sockets: read-write (0600,
 * peers must be root or the daemon's own uid, checked with SO_PEERCRED) and read-only
 * (0666: queries and events only, anything else gets "permission-denied"). Requests of one
 * client are answered as they complete (an attach does not hold up a ping). A client whose
 * unread output grows past a bound (a subscriber that stopped reading) is dropped, so no
 * client can block or bloat the daemon. */
#ifndef PLUGVIRT_API_SERVER_H
#define PLUGVIRT_API_SERVER_H

#include <stdbool.h>

#include "pv_error.h"

struct event_base;
struct domains;
struct api_server;

/* Bounds: longest request line, most unread output per client. */
#define API_SERVER_MAX_REQUEST (16u * 1024 * 1024)
/* What is read and dropped of an over-long request line before the connection is cut. */
#define API_SERVER_MAX_DISCARD (256u * 1024 * 1024)
#define API_SERVER_MAX_OUTPUT (8u * 1024 * 1024)

/* Listens on the given sockets (already bound and listening; either may be -1). The server
 * owns the descriptors. `domains` may be set later with api_server_set_domains. */
struct api_server *api_server_create(struct event_base *base, int read_write_fd, int read_only_fd,
                                     struct pv_error *error);
void api_server_set_domains(struct api_server *server, struct domains *domains);
/* Stops accepting, closes every connection. */
void api_server_free(struct api_server *server);
/* Sends an event line to every subscriber (domains_event_fn compatible). */
void api_server_broadcast_event(void *server, const char *type, const char *domain_name,
                                const char *uuid, const char *detail);

/* Creates, binds and listens on a unix socket at `path` with `mode` (a stale socket file
 * is replaced). Returns the fd or -errno. */
int api_server_listen_unix(const char *path, unsigned mode, struct pv_error *error);

#endif

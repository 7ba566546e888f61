/* The QMP monitor: -qmp unix:PATH,server=on (any number of concurrent
 * clients, each its own QMP session) or -qmp stdio (one session on
 * stdin/stdout). Sessions get QEMU's greeting, must negotiate with
 * qmp_capabilities, and once negotiated receive every VM event. Runs on the
 * main thread's libevent loop. */
#ifndef PLUGVIRT_MONITOR_QMP_H
#define PLUGVIRT_MONITOR_QMP_H

#include <sys/types.h>

#include "pv_error.h"
#include "vmm_config.h"

struct vm;
struct event_base;
struct monitor_qmp;
struct qmp_command_registry;

struct monitor_qmp *monitor_qmp_create(struct vm *vm, struct event_base *base,
                                       const struct monitor_spec *spec, struct pv_error *error);
/* Flushes what can be sent without blocking, closes every session and
 * removes the socket file. */
void monitor_qmp_destroy(struct monitor_qmp *monitor);

/* The monitor's commands, for modules that register a table of their own. */
struct qmp_command_registry *monitor_qmp_registry(struct monitor_qmp *monitor);

#define MONITOR_QMP_MAX_FDS_PER_MESSAGE 16

/* One non-blocking read of a QMP socket (recvmsg): the bytes go to `buffer`, descriptors
 * that came with SCM_RIGHTS to *received_fd (the last one wins; one it replaces is closed),
 * for getfd. Returns the byte count, 0 at end of stream, or -errno (-EAGAIN: nothing yet). */
ssize_t monitor_qmp_receive(int fd, void *buffer, size_t size, int *received_fd);

#endif

/* A scripted QMP server for unit tests, on the test's libevent base (single threaded, so the
 * test decides exactly when each reply and event goes out by running the loop).
 *
 * It listens on "<dir>/qmp.sock", greets every client like QEMU 8.2, accepts
 * qmp_capabilities, records every later command (name + arguments), and answers from a small
 * model of a VMM: block nodes (blockdev-add/del, with QEMU's duplicate/busy/not-found errors),
 * devices (device_add/del, DeviceNotFound), query-pci (qdev_id per device) and
 * query-named-block-nodes. Faults are scripted per command: the Nth command (counting from 0
 * after qmp_capabilities), or the next command with a given name, gets an error, no reply at
 * all, or a dropped connection. device_del either releases the device at once (DEVICE_DELETED
 * right after the reply, like a cooperative guest) or holds it until the test calls
 * fake_qmp_peer_release (a slow or hung guest). */
#ifndef PLUGVIRT_FAKE_QMP_PEER_H
#define PLUGVIRT_FAKE_QMP_PEER_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct fake_qmp_peer;

enum fake_qmp_fault {
    FAKE_QMP_REPLY_ERROR,      /* {"error": {"class": ..., "desc": ...}}; the model is unchanged */
    FAKE_QMP_NO_REPLY,         /* swallow the command (the model is unchanged) */
    FAKE_QMP_NO_REPLY_APPLIED, /* apply it to the model but never answer (reply lost) */
    FAKE_QMP_CLOSE,            /* drop the connection instead of answering */
};

/* Listens on <directory>/qmp.sock; listening can be delayed (start_listening = false). */
struct fake_qmp_peer *fake_qmp_peer_create(struct event_base *base, const char *directory,
                                           bool start_listening);
int fake_qmp_peer_listen(struct fake_qmp_peer *peer);
void fake_qmp_peer_destroy(struct fake_qmp_peer *peer);
const char *fake_qmp_peer_socket_path(const struct fake_qmp_peer *peer);

/* Fault for the command with this index (0 = first after qmp_capabilities, over the peer's
 * life, across reconnections). class/desc are used for FAKE_QMP_REPLY_ERROR only. */
void fake_qmp_peer_fault_at(struct fake_qmp_peer *peer, size_t index, enum fake_qmp_fault fault,
                            const char *error_class, const char *desc);
/* Fault for the next command named `command` (consumed once). */
void fake_qmp_peer_fault_next(struct fake_qmp_peer *peer, const char *command,
                              enum fake_qmp_fault fault, const char *error_class, const char *desc);
/* The return value for a command the model does not know (JSON text); default CommandNotFound. */
void fake_qmp_peer_set_reply(struct fake_qmp_peer *peer, const char *command,
                             const char *return_json);
/* device_del: true (default) = DEVICE_DELETED right after the reply; false = the device stays
 * until fake_qmp_peer_release. */
void fake_qmp_peer_set_auto_release(struct fake_qmp_peer *peer, bool auto_release);
/* The guest released a device (normally after device_del): removes it, sends DEVICE_DELETED.
 * Returns false if there is no such device. */
bool fake_qmp_peer_release(struct fake_qmp_peer *peer, const char *device_id);
void fake_qmp_peer_emit_event(struct fake_qmp_peer *peer, const char *event_name,
                              const char *data_json);
void fake_qmp_peer_disconnect(struct fake_qmp_peer *peer);

/* Model state, to set up a crash scenario or to check what is left. */
void fake_qmp_peer_add_node(struct fake_qmp_peer *peer, const char *node_name,
                            const char *child_node_name /* NULL */);
void fake_qmp_peer_add_device(struct fake_qmp_peer *peer, const char *id, const char *drive);
bool fake_qmp_peer_has_node(const struct fake_qmp_peer *peer, const char *node_name);
bool fake_qmp_peer_has_device(const struct fake_qmp_peer *peer, const char *id);
size_t fake_qmp_peer_node_count(const struct fake_qmp_peer *peer);
size_t fake_qmp_peer_device_count(const struct fake_qmp_peer *peer);

/* The commands received after qmp_capabilities, in order. */
size_t fake_qmp_peer_command_count(const struct fake_qmp_peer *peer);
const char *fake_qmp_peer_command(const struct fake_qmp_peer *peer, size_t index);
const char *fake_qmp_peer_arguments(const struct fake_qmp_peer *peer, size_t index); /* JSON */
/* "blockdev-add virtio-disk1-storage" style summary: command + its node-name/id argument. */
const char *fake_qmp_peer_summary(const struct fake_qmp_peer *peer, size_t index);
size_t fake_qmp_peer_connection_count(const struct fake_qmp_peer *peer);

/* Runs `base` until *counter reaches `target` or `timeout_ms` passes; true if reached.
 * Shared by the tests that drive the daemon's QMP code against the fake peer. */
bool fake_qmp_run_until(struct event_base *base, int *counter, int target, int timeout_ms);

#endif

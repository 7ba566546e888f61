/* Character device backends: where a serial port or a monitor's bytes go.
 *
 * A chardev is opened on the main thread and driven by its libevent loop.
 * Frontends (the 8250 UART, the HMP monitor) attach with an ops table;
 * received bytes are delivered on the main thread. chardev_write may be
 * called from any thread (vCPU threads write serial output): it never
 * blocks on a slow peer; it queues output and drops the oldest bytes beyond
 * a bound, counting them.
 *
 * A "mux" chardev (-nographic, -serial mon:stdio) has several frontends and
 * one focus, switched with Ctrl-a c as in QEMU; Ctrl-a x quits the VMM,
 * Ctrl-a h prints help, Ctrl-a Ctrl-a sends a literal Ctrl-a. */
#ifndef PLUGVIRT_CHARDEV_H
#define PLUGVIRT_CHARDEV_H

#include <stddef.h>
#include <stdint.h>

#include "pv_error.h"
#include "vmm_config.h"

struct event_base;
struct chardev;

struct chardev_frontend_ops {
    /* Bytes from the outside world for this frontend. */
    void (*receive)(void *opaque, const uint8_t *data, size_t length);
    /* How many bytes the frontend can take now (flow control); NULL = unlimited. */
    size_t (*can_receive)(void *opaque);
    /* A peer connected (unix server) or the frontend gained mux focus; may be NULL.
     * The HMP monitor prints its banner and prompt here. */
    void (*opened)(void *opaque);
};

/* Called when the user asks to quit through the mux escape (Ctrl-a x). */
typedef void (*chardev_quit_fn)(void *opaque);

struct chardev *chardev_open(struct event_base *event_base, const struct chardev_spec *spec,
                             struct pv_error *error);
void chardev_close(struct chardev *chardev);

/* Attaches a frontend. Plain chardevs take one; mux chardevs several (the
 * first attached has the focus). Returns -EBUSY when full. */
int chardev_attach_frontend(struct chardev *chardev, const struct chardev_frontend_ops *ops,
                            void *opaque, struct pv_error *error);
void chardev_set_quit_handler(struct chardev *chardev, chardev_quit_fn quit, void *opaque);
/* Removes the frontend attached with `opaque` (a device going away before its
 * chardev); no callback of it runs afterwards. Main thread. */
void chardev_detach_frontend(struct chardev *chardev, void *opaque);

/* Flow control: a frontend whose can_receive returned 0 calls this once it
 * has room again; reading resumes on the main thread. Thread safe. */
void chardev_accept_input(struct chardev *chardev);

/* Output from a frontend; thread safe, non-blocking. For a mux, output of
 * any frontend is written (as in QEMU). Bytes written while no peer is
 * connected (unix server) are discarded. */
void chardev_write(struct chardev *chardev, const void *data, size_t length);

/* Output bytes dropped so far because the queue was over its bound (1 MiB). */
uint64_t chardev_dropped_bytes(struct chardev *chardev);

/* The pty path for CHARDEV_KIND_PTY (for "char device redirected to ..."), else NULL. */
const char *chardev_pty_path(const struct chardev *chardev);

#endif

/* Virtio device core, independent of the transport (virtio 1.x).
 *
 * A device model (blk, net, scsi, console) embeds struct virtio_device, fills
 * a small ops table and calls virtio_device_init; a transport (virtio_pci.c)
 * exposes the registers to the guest and delivers interrupts through
 * virtio_transport_ops. This file owns what every device shares: feature
 * negotiation (VERSION_1 required), the status state machine with reset, the
 * queues, NEEDS_RESET on protocol violations, and the per-device I/O thread.
 *
 * Threads and locks:
 * - `lock` guards the registers (features, status, queue configuration, ISR);
 *   vCPU threads take it for register accesses.
 * - `processing_lock` is held while a queue is processed (on the I/O thread)
 *   and while queues are enabled or the device is reset, so a reset never
 *   races with a request in progress. Order: processing_lock, then lock.
 * - The I/O thread (one per device, as kvmtool does) waits on one eventfd per
 *   queue; KVM writes them directly on guest notifications (ioeventfd), so a
 *   kick costs no userspace exit and never waits for the main loop, which may
 *   be busy with monitors. Blocking file I/O stays off the main loop too. */
#ifndef PLUGVIRT_VIRTIO_H
#define PLUGVIRT_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "pv_error.h"
#include "virtio/virtqueue.h"

/* Device status bits (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER 0x02
#define VIRTIO_STATUS_DRIVER_OK 0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

/* Transport-independent feature bits (6). */
#define VIRTIO_FEATURE_INDIRECT_DESC (1ULL << 28)
#define VIRTIO_FEATURE_EVENT_IDX (1ULL << 29)
#define VIRTIO_FEATURE_VERSION_1 (1ULL << 32)

/* Device types (5). */
#define VIRTIO_TYPE_NET 1
#define VIRTIO_TYPE_BLOCK 2
#define VIRTIO_TYPE_CONSOLE 3
#define VIRTIO_TYPE_SCSI 8

#define VIRTIO_ISR_QUEUE 0x1
#define VIRTIO_ISR_CONFIG 0x2

struct virtio_device;

struct virtio_device_ops {
    /* Device config space (offset relative to its start, bounds checked). */
    void (*read_config)(struct virtio_device *device, uint32_t offset, void *data, unsigned size);
    void (*write_config)(struct virtio_device *device, uint32_t offset, const void *data,
                         unsigned size);
    /* The driver notified `queue` (or DRIVER_OK found buffers waiting). Runs
     * with processing_lock held, only while the device is live. Pop with
     * virtio_device_pop, complete with virtqueue_push + virtio_device_notify. */
    void (*handle_queue)(struct virtio_device *device, struct virtqueue *queue);
    /* Device reset (status 0 or system reset), processing_lock held. */
    void (*reset)(struct virtio_device *device);
    /* Frees the model; the last call a device receives. */
    void (*destroy)(struct virtio_device *device);
};

struct virtio_transport_ops {
    /* Interrupt for used buffers on `queue` / for a config change; any thread. */
    void (*notify_queue)(struct virtio_device *device, struct virtqueue *queue);
    void (*notify_config)(struct virtio_device *device);
};

/* An extra descriptor the I/O thread waits on (virtio-net's tap queues). The
 * callback runs on the I/O thread with processing_lock held, whatever the
 * device status: the model decides what readiness means and turns polling off
 * when it cannot consume (a full RX ring must not make the thread spin). */
typedef void (*virtio_io_fd_fn)(struct virtio_device *device, void *opaque);

#define VIRTIO_MAX_IO_FDS 16

struct virtio_io_fd {
    int fd;
    virtio_io_fd_fn callback;
    void *opaque;
    bool polling;
    bool broken; /* reported an error or hang-up: out of the wait set */
};

struct virtio_device {
    const char *name; /* for logs: "virtio-blk" */
    uint16_t device_type;
    const struct virtio_device_ops *ops;
    const struct virtio_transport_ops *transport;
    void *transport_opaque;
    struct guest_memory memory;

    pthread_mutex_t lock;
    pthread_mutex_t processing_lock;
    uint64_t device_features;
    uint64_t driver_features;
    uint8_t status;
    uint8_t config_generation;
    uint16_t config_msix_vector;
    uint8_t isr; /* INTx interrupt status, read-to-clear */
    uint32_t config_size;

    unsigned queue_count;
    struct virtqueue *queues;
    struct virtqueue_request *request; /* scratch for handlers (processing_lock) */

    int *queue_eventfds; /* per queue; -1 until the I/O thread exists */
    int stop_eventfd;
    int epoll_fd; /* the I/O thread's; -1 until it starts */
    struct virtio_io_fd io_fds[VIRTIO_MAX_IO_FDS];
    unsigned io_fd_count;
    pthread_t io_thread;
    bool io_thread_running;
};

/* `device_features` should include VIRTIO_FEATURE_VERSION_1 (added if not). */
int virtio_device_init(struct virtio_device *device, const char *name, uint16_t device_type,
                       const struct virtio_device_ops *ops, unsigned queue_count,
                       uint16_t queue_max_size, uint64_t device_features, uint32_t config_size,
                       struct pv_error *error);
/* Stops the I/O thread, frees the queues and calls ops->destroy. */
void virtio_device_destroy(struct virtio_device *device);

void virtio_device_set_memory(struct virtio_device *device, const struct guest_memory *memory);
void virtio_device_set_transport(struct virtio_device *device,
                                 const struct virtio_transport_ops *transport, void *opaque);

/* The I/O thread and its per-queue eventfds (for KVM_IOEVENTFD). */
int virtio_device_start_io_thread(struct virtio_device *device, struct pv_error *error);
void virtio_device_stop_io_thread(struct virtio_device *device);
int virtio_device_queue_eventfd(struct virtio_device *device, unsigned queue_index);
/* Adds `fd` to the I/O thread's wait set (before or after the thread starts),
 * not polled until virtio_device_set_io_fd_polling turns it on. Returns a
 * handle >= 0. The caller keeps owning `fd` and closes it after
 * virtio_device_destroy. */
int virtio_device_add_io_fd(struct virtio_device *device, int fd, virtio_io_fd_fn callback,
                            void *opaque, struct pv_error *error);
/* Starts or stops waiting for `handle`'s fd to become readable. From the I/O
 * thread's callbacks or with processing_lock held. */
int virtio_device_set_io_fd_polling(struct virtio_device *device, int handle, bool polling);
/* A guest notification that did not go through an ioeventfd: wakes the I/O
 * thread, or without one processes the queue right here. */
void virtio_device_kick(struct virtio_device *device, unsigned queue_index);
/* Processes a queue now (the I/O thread's work; tests call it directly). */
void virtio_device_process_queue(struct virtio_device *device, unsigned queue_index);

/* Register semantics used by transports (and by tests acting as the driver). */
uint32_t virtio_device_get_features_word(struct virtio_device *device, unsigned select);
/* Ignored once FEATURES_OK is set. */
void virtio_device_set_driver_features_word(struct virtio_device *device, unsigned select,
                                            uint32_t value);
uint8_t virtio_device_get_status(struct virtio_device *device);
/* Writes the status register: 0 resets; FEATURES_OK is refused (left clear)
 * when the driver accepted unknown features or not VERSION_1; DRIVER_OK
 * starts processing. */
void virtio_device_set_status(struct virtio_device *device, uint8_t status);
/* queue_enable = 1 for the selected queue; a bad ring marks NEEDS_RESET. */
int virtio_device_enable_queue(struct virtio_device *device, unsigned queue_index,
                               struct pv_error *error);
/* Full device reset (as status 0). */
void virtio_device_reset(struct virtio_device *device);
bool virtio_device_has_feature(struct virtio_device *device, uint64_t feature);

/* For device models. */
/* virtqueue_pop that marks the device broken on a malformed chain. */
int virtio_device_pop(struct virtio_device *device, struct virtqueue *queue,
                      struct virtqueue_request *request);
/* Interrupt after pushes, if the driver wants one. */
void virtio_device_notify(struct virtio_device *device, struct virtqueue *queue);
/* The driver broke the protocol: NEEDS_RESET, config interrupt, stop processing. */
void virtio_device_set_broken(struct virtio_device *device, const char *reason);
/* The device config changed: bump the generation, config interrupt. */
void virtio_device_config_changed(struct virtio_device *device);
/* ISR read for INTx transports: returns and clears it. */
uint8_t virtio_device_read_isr(struct virtio_device *device);

#endif

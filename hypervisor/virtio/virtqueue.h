/* Split virtqueues (virtio 1.x, 2.7) living in guest memory.
 *
 * The device side of a queue: it walks descriptor chains the driver made
 * available, hands them to the device model as iovecs pointing straight into
 * guest RAM, and publishes completions on the used ring.
 *
 * Everything the guest wrote is untrusted: each descriptor is copied once
 * before use, every buffer must lie inside guest RAM, a chain may not be
 * longer than the queue (which also catches loops), indirect tables are
 * bounded and may not nest. Any violation makes virtqueue_pop fail with
 * -EPROTO and sets `broken`; the caller then marks the device NEEDS_RESET.
 *
 * Threads: a queue is used by one thread at a time (the device's I/O thread);
 * the transport configures it while that thread cannot touch it. */
#ifndef PLUGVIRT_VIRTQUEUE_H
#define PLUGVIRT_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "pv_error.h"

#define VIRTQUEUE_MAX_SIZE 1024
/* Upper bound of buffers in one request, direct or through an indirect table. */
#define VIRTQUEUE_MAX_SEGMENTS VIRTQUEUE_MAX_SIZE
#define VIRTQUEUE_NO_VECTOR 0xffff

/* Guest physical → host translation: NULL unless all of [gpa, gpa+length) is RAM. */
struct guest_memory {
    void *(*translate)(void *opaque, uint64_t gpa, uint64_t length);
    void *opaque;
};

/* Ring layouts (little-endian on x86, so plain integers). */
struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct virtq_used_elem {
    uint32_t id;
    uint32_t len;
};

struct virtqueue {
    unsigned index;
    uint16_t max_size; /* what the device offers */
    uint16_t size;     /* what the driver chose (power of two) */
    bool enabled;      /* queue_enable written and the rings translated */
    bool broken;       /* the driver violated the ring protocol */
    bool event_idx;    /* VIRTIO_F_EVENT_IDX negotiated */
    bool indirect;     /* VIRTIO_F_INDIRECT_DESC negotiated */
    uint16_t msix_vector;
    uint64_t desc_gpa, avail_gpa, used_gpa;

    /* Valid while enabled. */
    struct guest_memory memory;
    struct virtq_desc *desc;
    uint16_t *avail; /* flags, idx, ring[size], used_event */
    uint16_t *used;  /* flags, idx, then virtq_used_elem ring[size], avail_event */

    uint16_t last_avail_idx; /* next avail entry the device reads */
    uint16_t used_idx;       /* next used entry the device writes */
    uint16_t signalled_used; /* used_idx at the last interrupt (EVENT_IDX) */
    bool signalled_used_valid;
};

/* One descriptor chain: device-readable buffers first, then device-writable. */
struct virtqueue_request {
    uint16_t head;
    unsigned out_count; /* driver → device */
    unsigned in_count;  /* device → driver */
    size_t out_bytes, in_bytes;
    struct iovec out[VIRTQUEUE_MAX_SEGMENTS];
    struct iovec in[VIRTQUEUE_MAX_SEGMENTS];
};

/* Sets up a queue in its reset state. */
void virtqueue_init(struct virtqueue *queue, unsigned index, uint16_t max_size);
/* Back to the reset state (size = max_size, addresses 0, disabled). */
void virtqueue_reset(struct virtqueue *queue);
/* Translates the three ring areas and starts using them. -EINVAL when a size
 * is not a power of two or an area is outside RAM or misaligned. */
int virtqueue_enable(struct virtqueue *queue, const struct guest_memory *memory,
                     struct pv_error *error);

/* Takes the next available chain. Returns 1 with `request` filled, 0 when the
 * ring is empty (or the queue is disabled/broken: nothing to do), -EPROTO when
 * the chain is malformed (the queue is then broken; `error` says why). */
int virtqueue_pop(struct virtqueue *queue, struct virtqueue_request *request,
                  struct pv_error *error);
/* Returns a completed chain: `written` bytes were stored in its in-buffers. */
void virtqueue_push(struct virtqueue *queue, uint16_t head, uint32_t written);
/* Several chains completed at once (virtio-net's mergeable RX buffers): fill
 * writes the used element at used_idx + position without publishing it; flush
 * publishes `count` filled elements, so the driver sees them together. */
void virtqueue_fill(struct virtqueue *queue, unsigned position, uint16_t head, uint32_t written);
void virtqueue_flush(struct virtqueue *queue, unsigned count);
/* Gives back the last `count` popped chains, unused (the driver still owns them
 * until they are used, so popping them again later is correct). */
void virtqueue_unpop(struct virtqueue *queue, unsigned count);
/* After pushing: whether the driver wants an interrupt now (respects
 * VRING_AVAIL_F_NO_INTERRUPT or used_event with EVENT_IDX). */
bool virtqueue_should_notify(struct virtqueue *queue);
/* True when the driver has made buffers available that were not popped yet. */
bool virtqueue_has_pending(struct virtqueue *queue);

/* Copying helpers over iovec arrays; return the bytes copied. */
size_t iov_to_buffer(const struct iovec *iov, unsigned count, size_t offset, void *buffer,
                     size_t length);
size_t iov_from_buffer(const struct iovec *iov, unsigned count, size_t offset, const void *buffer,
                       size_t length);
/* Fills `result` with the part of `iov` in [offset, offset+length); returns its count. */
unsigned iov_slice(const struct iovec *iov, unsigned count, size_t offset, size_t length,
                   struct iovec *result, unsigned result_capacity);

#endif

/* Split virtqueues; see virtqueue.h. */
#include "virtio/virtqueue.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/virtio_ring.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void virtqueue_init(struct virtqueue *queue, unsigned index, uint16_t max_size)
{
    memset(queue, 0, sizeof(*queue));
    queue->index = index;
    queue->max_size = max_size;
    virtqueue_reset(queue);
}

void virtqueue_reset(struct virtqueue *queue)
{
    unsigned index = queue->index;
    uint16_t max_size = queue->max_size;
    memset(queue, 0, sizeof(*queue));
    queue->index = index;
    queue->max_size = max_size;
    queue->size = max_size;
    queue->msix_vector = VIRTQUEUE_NO_VECTOR;
}

static uint64_t avail_area_size(uint16_t size)
{
    return 6 + 2 * (uint64_t)size; /* flags, idx, ring[size], used_event */
}

static uint64_t used_area_size(uint16_t size)
{
    return 6 + 8 * (uint64_t)size; /* flags, idx, ring[size], avail_event */
}

int virtqueue_enable(struct virtqueue *queue, const struct guest_memory *memory,
                     struct pv_error *error)
{
    uint16_t size = queue->size;
    if (size == 0 || (size & (size - 1)) || size > queue->max_size)
        return pv_error_set(error, -EINVAL, "virtqueue %u: invalid size %u", queue->index, size);
    /* Alignments from the spec (2.7): desc 16, avail 2, used 4. */
    if ((queue->desc_gpa & 15) || (queue->avail_gpa & 1) || (queue->used_gpa & 3))
        return pv_error_set(error, -EINVAL, "virtqueue %u: misaligned ring address", queue->index);
    void *desc = memory->translate(memory->opaque, queue->desc_gpa, 16 * (uint64_t)size);
    void *avail = memory->translate(memory->opaque, queue->avail_gpa, avail_area_size(size));
    void *used = memory->translate(memory->opaque, queue->used_gpa, used_area_size(size));
    if (!desc || !avail || !used)
        return pv_error_set(error, -EINVAL, "virtqueue %u: ring outside guest RAM", queue->index);
    queue->memory = *memory;
    queue->desc = desc;
    queue->avail = avail;
    queue->used = used;
    queue->last_avail_idx = 0;
    queue->used_idx = 0;
    queue->signalled_used_valid = false;
    queue->broken = false;
    queue->enabled = true;
    return 0;
}

static uint16_t load16(const uint16_t *address)
{
    return __atomic_load_n(address, __ATOMIC_ACQUIRE);
}

static int chain_error(struct virtqueue *queue, struct pv_error *error, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static int chain_error(struct virtqueue *queue, struct pv_error *error, const char *format, ...)
{
    queue->broken = true;
    char message[200];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(message, sizeof(message), format, arguments);
    va_end(arguments);
    return pv_error_set(error, -EPROTO, "virtqueue %u: %s", queue->index, message);
}

bool virtqueue_has_pending(struct virtqueue *queue)
{
    if (!queue->enabled || queue->broken)
        return false;
    return load16(&queue->avail[1]) != queue->last_avail_idx;
}

int virtqueue_pop(struct virtqueue *queue, struct virtqueue_request *request,
                  struct pv_error *error)
{
    if (!queue->enabled || queue->broken)
        return 0;
    uint16_t avail_idx = load16(&queue->avail[1]);
    uint16_t pending = (uint16_t)(avail_idx - queue->last_avail_idx);
    if (pending == 0)
        return 0;
    if (pending > queue->size)
        return chain_error(queue, error, "driver moved avail index from %u to %u",
                           queue->last_avail_idx, avail_idx);

    uint16_t head = load16(&queue->avail[2 + queue->last_avail_idx % queue->size]);
    if (head >= queue->size)
        return chain_error(queue, error, "head index %u out of range (size %u)", head, queue->size);

    request->head = head;
    request->out_count = request->in_count = 0;
    request->out_bytes = request->in_bytes = 0;

    const struct virtq_desc *table = queue->desc;
    unsigned table_size = queue->size;
    unsigned index = head;
    unsigned visited = 0;
    bool in_indirect_table = false;
    for (;;) {
        /* The count bounds the walk, so a chain that loops fails here. */
        if (visited >= table_size)
            return chain_error(queue, error,
                               "descriptor chain longer than its table (%u"
                               " entries) or looping at %u",
                               table_size, index);
        struct virtq_desc desc;
        memcpy(&desc, &table[index], sizeof(desc)); /* one read: the guest may change it */
        visited++;

        if (desc.flags & VRING_DESC_F_INDIRECT) {
            if (!queue->indirect)
                return chain_error(queue, error, "indirect descriptor %u without INDIRECT_DESC",
                                   index);
            if (in_indirect_table)
                return chain_error(queue, error, "nested indirect descriptor at %u", index);
            if (visited != 1 || (desc.flags & VRING_DESC_F_NEXT))
                return chain_error(queue, error,
                                   "indirect descriptor %u"
                                   " must be alone in its chain",
                                   index);
            if (desc.len == 0 || desc.len % sizeof(struct virtq_desc) ||
                desc.len / sizeof(struct virtq_desc) > VIRTQUEUE_MAX_SEGMENTS)
                return chain_error(queue, error, "invalid indirect table length %u at %u", desc.len,
                                   index);
            table = queue->memory.translate(queue->memory.opaque, desc.addr, desc.len);
            if (!table)
                return chain_error(queue, error,
                                   "indirect table at 0x%" PRIx64 " (+%u"
                                   ") outside guest RAM",
                                   desc.addr, desc.len);
            table_size = desc.len / sizeof(struct virtq_desc);
            index = 0;
            visited = 0;
            in_indirect_table = true;
            continue;
        }

        if (desc.len > 0) {
            void *buffer = queue->memory.translate(queue->memory.opaque, desc.addr, desc.len);
            if (!buffer)
                return chain_error(queue, error, "buffer at 0x%" PRIx64 " (+%u) outside guest RAM",
                                   desc.addr, desc.len);
            if (desc.flags & VRING_DESC_F_WRITE) {
                if (request->in_count >= VIRTQUEUE_MAX_SEGMENTS)
                    return chain_error(queue, error, "too many buffers (%u)", request->in_count);
                request->in[request->in_count++] = (struct iovec){buffer, desc.len};
                request->in_bytes += desc.len;
            } else {
                if (request->in_count > 0)
                    return chain_error(queue, error,
                                       "device-readable descriptor %u"
                                       " after a device-writable one",
                                       index);
                if (request->out_count >= VIRTQUEUE_MAX_SEGMENTS)
                    return chain_error(queue, error, "too many buffers (%u)", request->out_count);
                request->out[request->out_count++] = (struct iovec){buffer, desc.len};
                request->out_bytes += desc.len;
            }
        }

        if (!(desc.flags & VRING_DESC_F_NEXT))
            break;
        if (desc.next >= table_size)
            return chain_error(queue, error, "next index %u out of range (table of %u)", desc.next,
                               table_size);
        index = desc.next;
    }

    queue->last_avail_idx++;
    if (queue->event_idx) {
        /* avail_event sits after the used ring: tell the driver how far we read. */
        uint16_t *avail_event = &queue->used[2 + 4 * queue->size];
        __atomic_store_n(avail_event, queue->last_avail_idx, __ATOMIC_RELEASE);
    }
    return 1;
}

void virtqueue_push(struct virtqueue *queue, uint16_t head, uint32_t written)
{
    virtqueue_fill(queue, 0, head, written);
    virtqueue_flush(queue, 1);
}

void virtqueue_fill(struct virtqueue *queue, unsigned position, uint16_t head, uint32_t written)
{
    if (!queue->enabled)
        return;
    struct virtq_used_elem *ring = (struct virtq_used_elem *)&queue->used[2];
    struct virtq_used_elem element = {.id = head, .len = written};
    memcpy(&ring[(uint16_t)(queue->used_idx + position) % queue->size], &element, sizeof(element));
}

void virtqueue_flush(struct virtqueue *queue, unsigned count)
{
    if (!queue->enabled)
        return;
    queue->used_idx = (uint16_t)(queue->used_idx + count);
    /* Release: the elements are visible before the index that publishes them. */
    __atomic_store_n(&queue->used[1], queue->used_idx, __ATOMIC_RELEASE);
}

void virtqueue_unpop(struct virtqueue *queue, unsigned count)
{
    queue->last_avail_idx = (uint16_t)(queue->last_avail_idx - count);
}

bool virtqueue_should_notify(struct virtqueue *queue)
{
    if (!queue->enabled)
        return false;
    /* The used index store must be ordered before reading the driver's flags. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (queue->event_idx) {
        uint16_t old_used = queue->signalled_used;
        uint16_t new_used = queue->used_idx;
        bool valid = queue->signalled_used_valid;
        queue->signalled_used = new_used;
        queue->signalled_used_valid = true;
        if (!valid)
            return true;
        uint16_t used_event = load16(&queue->avail[2 + queue->size]);
        return (uint16_t)(new_used - used_event - 1) < (uint16_t)(new_used - old_used);
    }
    return !(load16(&queue->avail[0]) & VRING_AVAIL_F_NO_INTERRUPT);
}

size_t iov_to_buffer(const struct iovec *iov, unsigned count, size_t offset, void *buffer,
                     size_t length)
{
    size_t copied = 0;
    for (unsigned i = 0; i < count && copied < length; i++) {
        if (offset >= iov[i].iov_len) {
            offset -= iov[i].iov_len;
            continue;
        }
        size_t chunk = iov[i].iov_len - offset;
        if (chunk > length - copied)
            chunk = length - copied;
        memcpy((uint8_t *)buffer + copied, (uint8_t *)iov[i].iov_base + offset, chunk);
        copied += chunk;
        offset = 0;
    }
    return copied;
}

size_t iov_from_buffer(const struct iovec *iov, unsigned count, size_t offset, const void *buffer,
                       size_t length)
{
    size_t copied = 0;
    for (unsigned i = 0; i < count && copied < length; i++) {
        if (offset >= iov[i].iov_len) {
            offset -= iov[i].iov_len;
            continue;
        }
        size_t chunk = iov[i].iov_len - offset;
        if (chunk > length - copied)
            chunk = length - copied;
        memcpy((uint8_t *)iov[i].iov_base + offset, (const uint8_t *)buffer + copied, chunk);
        copied += chunk;
        offset = 0;
    }
    return copied;
}

unsigned iov_slice(const struct iovec *iov, unsigned count, size_t offset, size_t length,
                   struct iovec *result, unsigned result_capacity)
{
    unsigned produced = 0;
    for (unsigned i = 0; i < count && length > 0 && produced < result_capacity; i++) {
        if (offset >= iov[i].iov_len) {
            offset -= iov[i].iov_len;
            continue;
        }
        size_t chunk = iov[i].iov_len - offset;
        if (chunk > length)
            chunk = length;
        result[produced++] = (struct iovec){(uint8_t *)iov[i].iov_base + offset, chunk};
        length -= chunk;
        offset = 0;
    }
    return produced;
}

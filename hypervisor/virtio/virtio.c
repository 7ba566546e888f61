/* Virtio device core; see virtio.h. */
#include "virtio/virtio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pv_log.h"

int virtio_device_init(struct virtio_device *device, const char *name, uint16_t device_type,
                       const struct virtio_device_ops *ops, unsigned queue_count,
                       uint16_t queue_max_size, uint64_t device_features, uint32_t config_size,
                       struct pv_error *error)
{
    memset(device, 0, sizeof(*device));
    if (queue_count == 0 || queue_max_size == 0 || queue_max_size > VIRTQUEUE_MAX_SIZE ||
        (queue_max_size & (queue_max_size - 1)))
        return pv_error_set(error, -EINVAL, "%s: invalid queue configuration", name);
    device->name = name;
    device->device_type = device_type;
    device->ops = ops;
    device->device_features = device_features | VIRTIO_FEATURE_VERSION_1;
    device->config_size = config_size;
    device->config_msix_vector = VIRTQUEUE_NO_VECTOR;
    device->stop_eventfd = -1;
    device->epoll_fd = -1;
    device->queue_count = queue_count;
    device->queues = calloc(queue_count, sizeof(*device->queues));
    device->queue_eventfds = malloc(queue_count * sizeof(int));
    device->request = malloc(sizeof(*device->request));
    if (!device->queues || !device->queue_eventfds || !device->request) {
        free(device->queues);
        free(device->queue_eventfds);
        free(device->request);
        return pv_error_set(error, -ENOMEM, "out of memory");
    }
    for (unsigned i = 0; i < queue_count; i++) {
        virtqueue_init(&device->queues[i], i, queue_max_size);
        device->queue_eventfds[i] = -1;
    }
    pthread_mutex_init(&device->lock, NULL);
    pthread_mutex_init(&device->processing_lock, NULL);
    return 0;
}

void virtio_device_destroy(struct virtio_device *device)
{
    virtio_device_stop_io_thread(device);
    for (unsigned i = 0; i < device->queue_count; i++)
        if (device->queue_eventfds[i] >= 0)
            close(device->queue_eventfds[i]);
    free(device->queues);
    free(device->queue_eventfds);
    free(device->request);
    pthread_mutex_destroy(&device->lock);
    pthread_mutex_destroy(&device->processing_lock);
    if (device->ops->destroy)
        device->ops->destroy(device); /* may free `device` itself */
}

void virtio_device_set_memory(struct virtio_device *device, const struct guest_memory *memory)
{
    device->memory = *memory;
}

void virtio_device_set_transport(struct virtio_device *device,
                                 const struct virtio_transport_ops *transport, void *opaque)
{
    device->transport = transport;
    device->transport_opaque = opaque;
}

/* ------------------------------------------------------------- I/O thread --- */

#define IO_FD_TAG 0x80000000u

static uint32_t io_fd_events(const struct virtio_io_fd *io_fd)
{
    return io_fd->polling ? EPOLLIN : 0;
}

static void run_io_fd(struct virtio_device *device, unsigned handle)
{
    pthread_mutex_lock(&device->processing_lock);
    struct virtio_io_fd *io_fd = &device->io_fds[handle];
    /* Polling may have stopped since epoll_wait returned (another event in the batch). */
    if (io_fd->polling)
        io_fd->callback(device, io_fd->opaque);
    pthread_mutex_unlock(&device->processing_lock);
}

/* epoll reports errors and hang-ups even with no events asked for: a descriptor that
 * broke (a tap whose interface was deleted) would make the thread spin, so it leaves the
 * wait set for good. */
static void drop_io_fd(struct virtio_device *device, unsigned handle)
{
    pthread_mutex_lock(&device->processing_lock);
    struct virtio_io_fd *io_fd = &device->io_fds[handle];
    if (!io_fd->broken) {
        io_fd->broken = true;
        io_fd->polling = false;
        if (epoll_ctl(device->epoll_fd, EPOLL_CTL_DEL, io_fd->fd, NULL) < 0)
            pv_log_error("%s: epoll_ctl: %s", device->name, strerror(errno));
        pv_log_warning("%s: descriptor %d reports an error or hang-up: no longer waited on",
                       device->name, io_fd->fd);
    }
    pthread_mutex_unlock(&device->processing_lock);
}

static void *io_thread_main(void *opaque)
{
    struct virtio_device *device = opaque;
    for (;;) {
        struct epoll_event events[16];
        int count = epoll_wait(device->epoll_fd, events, 16, -1);
        if (count < 0) {
            if (errno == EINTR)
                continue;
            pv_log_error("%s: epoll_wait: %s", device->name, strerror(errno));
            break;
        }
        bool stop = false;
        for (int i = 0; i < count; i++) {
            uint32_t index = events[i].data.u32;
            if (index == UINT32_MAX) {
                stop = true;
                continue;
            }
            if (index & IO_FD_TAG) {
                if (events[i].events & (EPOLLERR | EPOLLHUP))
                    drop_io_fd(device, index & ~IO_FD_TAG);
                else
                    run_io_fd(device, index & ~IO_FD_TAG);
                continue;
            }
            uint64_t value;
            if (read(device->queue_eventfds[index], &value, sizeof(value)) != sizeof(value))
                continue; /* EAGAIN: someone else drained it */
            virtio_device_process_queue(device, index);
        }
        if (stop)
            break;
    }
    return NULL;
}

/* The wait set: stop eventfd, queue eventfds, then the model's fds. */
static int build_epoll_set(struct virtio_device *device, struct pv_error *error)
{
    device->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (device->epoll_fd < 0)
        return pv_error_set_errno(error, -errno, "%s: epoll_create1", device->name);
    struct epoll_event event = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    if (epoll_ctl(device->epoll_fd, EPOLL_CTL_ADD, device->stop_eventfd, &event) < 0)
        return pv_error_set_errno(error, -errno, "%s: epoll_ctl", device->name);
    for (unsigned i = 0; i < device->queue_count; i++) {
        event.data.u32 = i;
        if (epoll_ctl(device->epoll_fd, EPOLL_CTL_ADD, device->queue_eventfds[i], &event) < 0)
            return pv_error_set_errno(error, -errno, "%s: epoll_ctl", device->name);
    }
    for (unsigned i = 0; i < device->io_fd_count; i++) {
        event = (struct epoll_event){.events = io_fd_events(&device->io_fds[i]),
                                     .data.u32 = IO_FD_TAG | i};
        if (epoll_ctl(device->epoll_fd, EPOLL_CTL_ADD, device->io_fds[i].fd, &event) < 0)
            return pv_error_set_errno(error, -errno, "%s: epoll_ctl", device->name);
    }
    return 0;
}

int virtio_device_add_io_fd(struct virtio_device *device, int fd, virtio_io_fd_fn callback,
                            void *opaque, struct pv_error *error)
{
    if (device->io_fd_count >= VIRTIO_MAX_IO_FDS)
        return pv_error_set(error, -ENOSPC, "%s: too many descriptors for the I/O thread",
                            device->name);
    unsigned handle = device->io_fd_count;
    device->io_fds[handle] =
        (struct virtio_io_fd){.fd = fd, .callback = callback, .opaque = opaque, .polling = false};
    if (device->epoll_fd >= 0) {
        struct epoll_event event = {.events = 0, .data.u32 = IO_FD_TAG | handle};
        if (epoll_ctl(device->epoll_fd, EPOLL_CTL_ADD, fd, &event) < 0)
            return pv_error_set_errno(error, -errno, "%s: epoll_ctl", device->name);
    }
    device->io_fd_count++;
    return (int)handle;
}

int virtio_device_set_io_fd_polling(struct virtio_device *device, int handle, bool polling)
{
    if (handle < 0 || (unsigned)handle >= device->io_fd_count)
        return -EINVAL;
    struct virtio_io_fd *io_fd = &device->io_fds[handle];
    if (io_fd->polling == polling || io_fd->broken)
        return 0;
    io_fd->polling = polling;
    if (device->epoll_fd < 0)
        return 0;
    struct epoll_event event = {.events = io_fd_events(io_fd), .data.u32 = IO_FD_TAG | handle};
    if (epoll_ctl(device->epoll_fd, EPOLL_CTL_MOD, io_fd->fd, &event) < 0) {
        int status = -errno;
        pv_log_error("%s: epoll_ctl: %s", device->name, strerror(errno));
        return status;
    }
    return 0;
}

int virtio_device_start_io_thread(struct virtio_device *device, struct pv_error *error)
{
    if (device->io_thread_running)
        return 0;
    for (unsigned i = 0; i < device->queue_count; i++) {
        if (device->queue_eventfds[i] >= 0)
            continue;
        device->queue_eventfds[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (device->queue_eventfds[i] < 0)
            return pv_error_set_errno(error, -errno, "%s: eventfd", device->name);
    }
    if (device->stop_eventfd < 0) {
        device->stop_eventfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (device->stop_eventfd < 0)
            return pv_error_set_errno(error, -errno, "%s: eventfd", device->name);
    }
    int status = build_epoll_set(device, error);
    if (status == 0) {
        status = -pthread_create(&device->io_thread, NULL, io_thread_main, device);
        if (status)
            pv_error_set_errno(error, status, "%s: cannot start the I/O thread", device->name);
    }
    if (status < 0) {
        if (device->epoll_fd >= 0)
            close(device->epoll_fd);
        device->epoll_fd = -1;
        return status;
    }
    device->io_thread_running = true;
    return 0;
}

void virtio_device_stop_io_thread(struct virtio_device *device)
{
    if (device->io_thread_running) {
        uint64_t one = 1;
        if (write(device->stop_eventfd, &one, sizeof(one)) != sizeof(one))
            pv_log_error("%s: cannot stop the I/O thread: %s", device->name, strerror(errno));
        pthread_join(device->io_thread, NULL);
        device->io_thread_running = false;
    }
    if (device->stop_eventfd >= 0) {
        close(device->stop_eventfd);
        device->stop_eventfd = -1;
    }
    if (device->epoll_fd >= 0) {
        close(device->epoll_fd);
        device->epoll_fd = -1;
    }
}

int virtio_device_queue_eventfd(struct virtio_device *device, unsigned queue_index)
{
    return queue_index < device->queue_count ? device->queue_eventfds[queue_index] : -1;
}

void virtio_device_kick(struct virtio_device *device, unsigned queue_index)
{
    if (queue_index >= device->queue_count)
        return;
    if (device->io_thread_running) {
        uint64_t one = 1;
        if (write(device->queue_eventfds[queue_index], &one, sizeof(one)) != sizeof(one))
            pv_log_error("%s: kick: %s", device->name, strerror(errno));
        return;
    }
    virtio_device_process_queue(device, queue_index);
}

static bool device_is_live(uint8_t status)
{
    return (status & VIRTIO_STATUS_DRIVER_OK) &&
           !(status & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED));
}

void virtio_device_process_queue(struct virtio_device *device, unsigned queue_index)
{
    if (queue_index >= device->queue_count)
        return;
    pthread_mutex_lock(&device->processing_lock);
    pthread_mutex_lock(&device->lock);
    bool live = device_is_live(device->status);
    pthread_mutex_unlock(&device->lock);
    struct virtqueue *queue = &device->queues[queue_index];
    if (live && queue->enabled && !queue->broken && device->ops->handle_queue)
        device->ops->handle_queue(device, queue);
    pthread_mutex_unlock(&device->processing_lock);
}

/* ------------------------------------------------------------- registers --- */

uint32_t virtio_device_get_features_word(struct virtio_device *device, unsigned select)
{
    return select < 2 ? (uint32_t)(device->device_features >> (32 * select)) : 0;
}

void virtio_device_set_driver_features_word(struct virtio_device *device, unsigned select,
                                            uint32_t value)
{
    if (select >= 2)
        return;
    pthread_mutex_lock(&device->lock);
    if (!(device->status & VIRTIO_STATUS_FEATURES_OK)) {
        uint64_t mask = 0xffffffffULL << (32 * select);
        device->driver_features =
            (device->driver_features & ~mask) | ((uint64_t)value << (32 * select));
    }
    pthread_mutex_unlock(&device->lock);
}

bool virtio_device_has_feature(struct virtio_device *device, uint64_t feature)
{
    return (device->driver_features & feature) == feature;
}

uint8_t virtio_device_get_status(struct virtio_device *device)
{
    pthread_mutex_lock(&device->lock);
    uint8_t status = device->status;
    pthread_mutex_unlock(&device->lock);
    return status;
}

/* With both locks held. */
static void reset_locked(struct virtio_device *device)
{
    for (unsigned i = 0; i < device->queue_count; i++)
        virtqueue_reset(&device->queues[i]);
    device->status = 0;
    device->driver_features = 0;
    device->isr = 0;
    device->config_msix_vector = VIRTQUEUE_NO_VECTOR;
    if (device->ops->reset)
        device->ops->reset(device);
}

void virtio_device_reset(struct virtio_device *device)
{
    pthread_mutex_lock(&device->processing_lock);
    pthread_mutex_lock(&device->lock);
    reset_locked(device);
    pthread_mutex_unlock(&device->lock);
    pthread_mutex_unlock(&device->processing_lock);
}

void virtio_device_set_status(struct virtio_device *device, uint8_t status)
{
    if (status == 0) {
        virtio_device_reset(device);
        return;
    }
    pthread_mutex_lock(&device->lock);
    uint8_t old = device->status;
    /* NEEDS_RESET is the device's to set; only a reset clears it. */
    uint8_t value =
        (uint8_t)((status & ~VIRTIO_STATUS_NEEDS_RESET) | (old & VIRTIO_STATUS_NEEDS_RESET));
    if ((value & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
        uint64_t accepted = device->driver_features;
        if ((accepted & ~device->device_features) || !(accepted & VIRTIO_FEATURE_VERSION_1)) {
            pv_log_warning("%s: driver accepted features 0x%llx of 0x%llx: refusing FEATURES_OK",
                           device->name, (unsigned long long)accepted,
                           (unsigned long long)device->device_features);
            value &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
        } else {
            for (unsigned i = 0; i < device->queue_count; i++) {
                device->queues[i].event_idx = accepted & VIRTIO_FEATURE_EVENT_IDX;
                device->queues[i].indirect = accepted & VIRTIO_FEATURE_INDIRECT_DESC;
            }
        }
    }
    device->status = value;
    bool started = !(old & VIRTIO_STATUS_DRIVER_OK) && (value & VIRTIO_STATUS_DRIVER_OK);
    pthread_mutex_unlock(&device->lock);
    if (started) {
        /* Buffers made available before DRIVER_OK had no notification to trigger them. */
        for (unsigned i = 0; i < device->queue_count; i++)
            virtio_device_kick(device, i);
    }
}

int virtio_device_enable_queue(struct virtio_device *device, unsigned queue_index,
                               struct pv_error *error)
{
    if (queue_index >= device->queue_count)
        return pv_error_set(error, -EINVAL, "%s: no queue %u", device->name, queue_index);
    pthread_mutex_lock(&device->processing_lock);
    pthread_mutex_lock(&device->lock);
    struct virtqueue *queue = &device->queues[queue_index];
    int status = 0;
    if (!queue->enabled) {
        queue->event_idx = device->driver_features & VIRTIO_FEATURE_EVENT_IDX;
        queue->indirect = device->driver_features & VIRTIO_FEATURE_INDIRECT_DESC;
        status = virtqueue_enable(queue, &device->memory, error);
    }
    pthread_mutex_unlock(&device->lock);
    pthread_mutex_unlock(&device->processing_lock);
    if (status < 0)
        virtio_device_set_broken(device, error ? error->message : "invalid queue configuration");
    return status;
}

/* --------------------------------------------------------- notifications --- */

int virtio_device_pop(struct virtio_device *device, struct virtqueue *queue,
                      struct virtqueue_request *request)
{
    struct pv_error error = {0};
    int status = virtqueue_pop(queue, request, &error);
    if (status < 0)
        virtio_device_set_broken(device, error.message);
    return status;
}

void virtio_device_notify(struct virtio_device *device, struct virtqueue *queue)
{
    if (virtqueue_should_notify(queue) && device->transport && device->transport->notify_queue)
        device->transport->notify_queue(device, queue);
}

void virtio_device_set_broken(struct virtio_device *device, const char *reason)
{
    pthread_mutex_lock(&device->lock);
    bool already = device->status & VIRTIO_STATUS_NEEDS_RESET;
    device->status |= VIRTIO_STATUS_NEEDS_RESET;
    bool interrupt = !already && (device->status & VIRTIO_STATUS_DRIVER_OK);
    if (interrupt)
        device->config_generation++;
    pthread_mutex_unlock(&device->lock);
    if (!already)
        pv_log_warning("%s: device needs reset: %s", device->name, reason);
    /* 2.1.2: with DRIVER_OK set, NEEDS_RESET comes with a config change notification. */
    if (interrupt && device->transport && device->transport->notify_config)
        device->transport->notify_config(device);
}

void virtio_device_config_changed(struct virtio_device *device)
{
    pthread_mutex_lock(&device->lock);
    device->config_generation++;
    bool interrupt = device->status & VIRTIO_STATUS_DRIVER_OK;
    pthread_mutex_unlock(&device->lock);
    if (interrupt && device->transport && device->transport->notify_config)
        device->transport->notify_config(device);
}

uint8_t virtio_device_read_isr(struct virtio_device *device)
{
    pthread_mutex_lock(&device->lock);
    uint8_t isr = device->isr;
    device->isr = 0;
    pthread_mutex_unlock(&device->lock);
    return isr;
}

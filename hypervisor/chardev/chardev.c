/* Character device backends: null, stdio, file, unix socket (server and
 * client), pty and the stdio multiplexer (-nographic, mon:stdio).
 *
 * Output: chardev_write appends to a bounded ring under `lock` from any
 * thread and wakes the main loop with event_active (libevent threading is
 * enabled by main.c); the main thread writes the ring out with non-blocking
 * I/O and waits for EV_WRITE when the peer is slow.
 *
 * Input: the main thread reads one chunk at a time into `input` and hands it
 * to the frontend only as fast as can_receive allows; while bytes are left
 * over it stops reading until the frontend calls chardev_accept_input. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "chardev/chardev.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "chardev/chardev_host.h"
#include "pv_log.h"

#define CHARDEV_OUTPUT_LIMIT (1u << 20) /* queued output bytes kept per chardev */
#define CHARDEV_OUTPUT_INITIAL 4096
#define CHARDEV_WRITE_CHUNK 65536
#define CHARDEV_INPUT_CHUNK 4096
#define CHARDEV_MAX_FRONTENDS 4
#define CHARDEV_PTY_RETRY_SECONDS 1
#define MUX_ESCAPE_CHAR 0x01 /* Ctrl-a */

struct chardev_frontend {
    const struct chardev_frontend_ops *ops;
    void *opaque;
    bool open_pending; /* `opened` is due on the main loop */
};

/* Ring of bytes waiting to be written; guarded by chardev->lock. */
struct output_queue {
    uint8_t *data;
    size_t capacity;
    size_t head;       /* index of the oldest byte */
    size_t length;     /* bytes queued */
    uint64_t consumed; /* bytes ever removed from the head, written or dropped */
    uint64_t dropped;  /* bytes dropped because of the bound */
};

struct chardev {
    struct event_base *event_base;
    enum chardev_kind kind;
    char *label;
    bool mux;

    /* Host side: descriptors, socket, pty (chardev_host.c). Main thread. */
    struct chardev_host host;
    bool connected; /* a peer is there (always, except unix sockets between peers) */

    struct event *read_event;
    bool read_event_added;
    struct event *write_event;
    struct event *accept_event;
    struct event *wake_event; /* activated from any thread */
    struct event *pty_retry_timer;

    pthread_mutex_t lock;
    int log_fd;                  /* logfile=, or -1; written under lock */
    struct output_queue output;  /* guarded by lock */
    bool output_open;            /* guarded by lock: false = discard writes */
    bool wake_pending;           /* guarded by lock */
    bool input_resume_requested; /* guarded by lock */

    /* Main thread only. */
    struct chardev_frontend frontends[CHARDEV_MAX_FRONTENDS];
    unsigned frontend_count;
    unsigned focus;
    bool escape_pending;
    chardev_quit_fn quit;
    void *quit_opaque;
    uint8_t input[CHARDEV_INPUT_CHUNK];
    size_t input_offset, input_length;
    uint8_t *write_scratch;
};

static void update_input_watch(struct chardev *chardev);
static void deliver_input(struct chardev *chardev);

/* ---- output queue ---- */

static void output_queue_drop_head(struct output_queue *queue, size_t count, bool is_drop)
{
    if (count > queue->length)
        count = queue->length;
    queue->head = queue->capacity ? (queue->head + count) % queue->capacity : 0;
    queue->length -= count;
    queue->consumed += count;
    if (is_drop)
        queue->dropped += count;
}

static bool output_queue_grow(struct output_queue *queue, size_t needed)
{
    if (needed <= queue->capacity)
        return true;
    size_t capacity = queue->capacity ? queue->capacity : CHARDEV_OUTPUT_INITIAL;
    while (capacity < needed && capacity < CHARDEV_OUTPUT_LIMIT)
        capacity *= 2;
    if (capacity > CHARDEV_OUTPUT_LIMIT)
        capacity = CHARDEV_OUTPUT_LIMIT;
    if (capacity <= queue->capacity)
        return false;
    uint8_t *data = malloc(capacity);
    if (!data)
        return false;
    size_t first = queue->length;
    if (queue->head + first > queue->capacity)
        first = queue->capacity - queue->head;
    if (queue->length) {
        memcpy(data, queue->data + queue->head, first);
        memcpy(data + first, queue->data, queue->length - first);
    }
    free(queue->data);
    queue->data = data;
    queue->capacity = capacity;
    queue->head = 0;
    return true;
}

static void output_queue_append(struct output_queue *queue, const uint8_t *data, size_t length)
{
    if (length > CHARDEV_OUTPUT_LIMIT) {
        /* Only the newest bytes of a huge write can be kept. */
        queue->dropped += length - CHARDEV_OUTPUT_LIMIT;
        data += length - CHARDEV_OUTPUT_LIMIT;
        length = CHARDEV_OUTPUT_LIMIT;
    }
    output_queue_grow(queue, queue->length + length);
    if (queue->capacity < length) {
        queue->dropped += length; /* out of memory: lose the new bytes */
        return;
    }
    if (queue->length + length > queue->capacity)
        output_queue_drop_head(queue, queue->length + length - queue->capacity, true);
    size_t tail = (queue->head + queue->length) % queue->capacity;
    size_t first = length;
    if (tail + first > queue->capacity)
        first = queue->capacity - tail;
    memcpy(queue->data + tail, data, first);
    memcpy(queue->data, data + first, length - first);
    queue->length += length;
}

static void output_discard_locked(struct chardev *chardev)
{
    output_queue_drop_head(&chardev->output, chardev->output.length, false);
}

static void wake_main_loop(struct chardev *chardev, bool resume_input)
{
    pthread_mutex_lock(&chardev->lock);
    bool need_wake = !chardev->wake_pending;
    chardev->wake_pending = true;
    if (resume_input)
        chardev->input_resume_requested = true;
    pthread_mutex_unlock(&chardev->lock);
    if (need_wake)
        event_active(chardev->wake_event, EV_READ, 0);
}

/* logfile=: written where the output is produced, in order, before any peer sees it. A
 * failing log is reported once and then left alone: the guest must not stall on it. */
static void log_write_locked(struct chardev *chardev, const void *data, size_t length)
{
    const char *cursor = data;
    while (chardev->log_fd >= 0 && length > 0) {
        ssize_t written = write(chardev->log_fd, cursor, length);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0) {
            pv_log_warning("chardev %s: cannot write its log file: %s; no longer logging",
                           chardev->label, written < 0 ? strerror(errno) : "short write");
            close(chardev->log_fd);
            chardev->log_fd = -1;
            return;
        }
        cursor += written;
        length -= (size_t)written;
    }
}

void chardev_write(struct chardev *chardev, const void *data, size_t length)
{
    if (!chardev || length == 0)
        return;
    pthread_mutex_lock(&chardev->lock);
    log_write_locked(chardev, data, length);
    if (!chardev->output_open) {
        pthread_mutex_unlock(&chardev->lock);
        return;
    }
    output_queue_append(&chardev->output, data, length);
    bool need_wake = !chardev->wake_pending;
    chardev->wake_pending = true;
    pthread_mutex_unlock(&chardev->lock);
    if (need_wake)
        event_active(chardev->wake_event, EV_READ, 0);
}

uint64_t chardev_dropped_bytes(struct chardev *chardev)
{
    pthread_mutex_lock(&chardev->lock);
    uint64_t dropped = chardev->output.dropped;
    pthread_mutex_unlock(&chardev->lock);
    return dropped;
}

/* ---- connection handling ---- */

static void close_connection(struct chardev *chardev);

static void set_output_open(struct chardev *chardev, bool open)
{
    pthread_mutex_lock(&chardev->lock);
    chardev->output_open = open;
    if (!open)
        output_discard_locked(chardev);
    pthread_mutex_unlock(&chardev->lock);
}

/* Writes queued output until the queue is empty or the descriptor is full. */
static void flush_output(struct chardev *chardev)
{
    for (;;) {
        pthread_mutex_lock(&chardev->lock);
        struct output_queue *queue = &chardev->output;
        if (queue->length == 0 || chardev->host.output_fd < 0) {
            pthread_mutex_unlock(&chardev->lock);
            return;
        }
        size_t chunk = queue->length;
        if (queue->head + chunk > queue->capacity)
            chunk = queue->capacity - queue->head;
        if (chunk > CHARDEV_WRITE_CHUNK)
            chunk = CHARDEV_WRITE_CHUNK;
        /* Copied out so that vCPU threads can keep queueing during the write. */
        memcpy(chardev->write_scratch, queue->data + queue->head, chunk);
        uint64_t position = queue->consumed;
        pthread_mutex_unlock(&chardev->lock);

        ssize_t written;
        if (chardev->host.output_is_socket)
            written = send(chardev->host.output_fd, chardev->write_scratch, chunk,
                           MSG_DONTWAIT | MSG_NOSIGNAL);
        else
            written = write(chardev->host.output_fd, chardev->write_scratch, chunk);
        if (written < 0 && errno == EINTR)
            continue;
        if (written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (chardev->host.output_pollable && event_add(chardev->write_event, NULL) == 0)
                return;
            pv_log_warning("chardev %s: cannot wait for output; dropping it", chardev->label);
            written = -1;
            errno = EIO;
        }
        if (written <= 0) {
            int saved_errno = errno;
            if (chardev->kind == CHARDEV_KIND_UNIX_SERVER ||
                chardev->kind == CHARDEV_KIND_UNIX_CLIENT) {
                close_connection(chardev);
            } else if (chardev->kind == CHARDEV_KIND_PTY) {
                /* Nobody has the pty open: output has no reader, as in QEMU. */
                pthread_mutex_lock(&chardev->lock);
                output_discard_locked(chardev);
                pthread_mutex_unlock(&chardev->lock);
            } else {
                pv_log_warning("chardev %s: output failed (%s); discarding further output",
                               chardev->label, written < 0 ? strerror(saved_errno) : "no progress");
                set_output_open(chardev, false);
            }
            return;
        }
        pthread_mutex_lock(&chardev->lock);
        /* Bytes dropped meanwhile left from the head we copied; skip only what remains. */
        uint64_t already = queue->consumed - position;
        if ((uint64_t)written > already)
            output_queue_drop_head(queue, (size_t)((uint64_t)written - already), false);
        pthread_mutex_unlock(&chardev->lock);
    }
}

static void on_output_ready(evutil_socket_t fd, short events, void *arg)
{
    (void)fd;
    (void)events;
    flush_output(arg);
}

static void on_input_ready(evutil_socket_t fd, short events, void *arg);

/* Takes ownership of the descriptors' events; fds may be equal. */
static int setup_events(struct chardev *chardev, struct pv_error *error)
{
    if (chardev->host.input_fd >= 0 && chardev->host.input_pollable) {
        chardev->read_event = event_new(chardev->event_base, chardev->host.input_fd,
                                        EV_READ | EV_PERSIST, on_input_ready, chardev);
        if (!chardev->read_event)
            return pv_error_set(error, -ENOMEM, "cannot create an input event");
    }
    if (chardev->host.output_fd >= 0 && chardev->host.output_pollable) {
        chardev->write_event = event_new(chardev->event_base, chardev->host.output_fd, EV_WRITE,
                                         on_output_ready, chardev);
        if (!chardev->write_event)
            return pv_error_set(error, -ENOMEM, "cannot create an output event");
    }
    return 0;
}

static void release_fds(struct chardev *chardev)
{
    if (chardev->read_event) {
        event_free(chardev->read_event);
        chardev->read_event = NULL;
    }
    chardev->read_event_added = false;
    if (chardev->write_event) {
        event_free(chardev->write_event);
        chardev->write_event = NULL;
    }
    if (chardev->host.input_fd >= 0 && chardev->host.input_fd_owned)
        close(chardev->host.input_fd);
    if (chardev->host.output_fd >= 0 && chardev->host.output_fd_owned &&
        chardev->host.output_fd != chardev->host.input_fd)
        close(chardev->host.output_fd);
    chardev->host.input_fd = -1;
    chardev->host.output_fd = -1;
    chardev->host.input_fd_owned = false;
    chardev->host.output_fd_owned = false;
}

/* The unix socket peer went away: forget its bytes, wait for the next one. */
static void close_connection(struct chardev *chardev)
{
    set_output_open(chardev, false);
    release_fds(chardev);
    chardev->connected = false;
    chardev->input_offset = chardev->input_length = 0;
    chardev->escape_pending = false;
    if (chardev->accept_event && event_add(chardev->accept_event, NULL) < 0)
        pv_log_error("chardev %s: cannot watch for new connections", chardev->label);
}

static void notify_opened(struct chardev *chardev)
{
    /* Plain chardevs have one frontend; a mux tells the frontend with the focus. */
    for (unsigned i = 0; i < chardev->frontend_count; i++) {
        if (chardev->mux && i != chardev->focus)
            continue;
        chardev->frontends[i].open_pending = true;
    }
    wake_main_loop(chardev, false);
}

static void on_accept(evutil_socket_t fd, short events, void *arg)
{
    struct chardev *chardev = arg;
    (void)events;
    int peer = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (peer < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
            pv_log_warning("chardev %s: accept failed: %s", chardev->label, strerror(errno));
        return;
    }
    chardev->host.input_fd = chardev->host.output_fd = peer;
    chardev->host.input_fd_owned = chardev->host.output_fd_owned = true;
    chardev->host.input_is_socket = chardev->host.output_is_socket = true;
    chardev->host.input_pollable = chardev->host.output_pollable = true;
    chardev->host.input_eof = false;
    if (setup_events(chardev, NULL) < 0) {
        release_fds(chardev);
        return;
    }
    /* One peer at a time: later clients wait in the backlog until this one leaves. */
    event_del(chardev->accept_event);
    chardev->connected = true;
    set_output_open(chardev, true);
    notify_opened(chardev);
    update_input_watch(chardev);
}

/* ---- input ---- */

static bool has_receiver(struct chardev *chardev)
{
    return chardev->frontend_count > 0;
}

static void on_pty_retry(evutil_socket_t fd, short events, void *arg)
{
    (void)fd;
    (void)events;
    update_input_watch(arg);
}

/* Reads (or stops reading) according to the buffer, the frontends and EOF. */
static void update_input_watch(struct chardev *chardev)
{
    bool wanted = chardev->host.input_fd >= 0 && !chardev->host.input_eof &&
                  has_receiver(chardev) && chardev->input_offset >= chardev->input_length;
    if (chardev->pty_retry_timer && evtimer_pending(chardev->pty_retry_timer, NULL))
        wanted = false;
    if (!chardev->host.input_pollable) {
        /* Regular files are always readable: read the next chunk from the wake callback. */
        if (wanted)
            wake_main_loop(chardev, true);
        return;
    }
    if (!chardev->read_event)
        return;
    if (wanted && !chardev->read_event_added) {
        if (event_add(chardev->read_event, NULL) == 0)
            chardev->read_event_added = true;
        else
            pv_log_error("chardev %s: cannot watch for input", chardev->label);
    } else if (!wanted && chardev->read_event_added) {
        event_del(chardev->read_event);
        chardev->read_event_added = false;
    }
}

static void input_ended(struct chardev *chardev, int error_number)
{
    switch (chardev->kind) {
    case CHARDEV_KIND_UNIX_SERVER:
    case CHARDEV_KIND_UNIX_CLIENT:
        close_connection(chardev);
        return;
    case CHARDEV_KIND_PTY:
        if (error_number == EIO || error_number == 0) {
            /* The slave side was closed; a new reader may open it later. */
            struct timeval delay = {CHARDEV_PTY_RETRY_SECONDS, 0};
            if (chardev->read_event_added) {
                event_del(chardev->read_event);
                chardev->read_event_added = false;
            }
            evtimer_add(chardev->pty_retry_timer, &delay);
            return;
        }
        break;
    default:
        break;
    }
    if (error_number)
        pv_log_warning("chardev %s: input failed: %s", chardev->label, strerror(error_number));
    /* stdin at EOF: keep writing, stop reading. */
    chardev->host.input_eof = true;
    update_input_watch(chardev);
}

static void read_input(struct chardev *chardev)
{
    if (chardev->host.input_fd < 0 || chardev->host.input_eof ||
        chardev->input_offset < chardev->input_length)
        return;
    ssize_t got;
    do {
        if (chardev->host.input_is_socket)
            got =
                recv(chardev->host.input_fd, chardev->input, sizeof(chardev->input), MSG_DONTWAIT);
        else
            got = read(chardev->host.input_fd, chardev->input, sizeof(chardev->input));
    } while (got < 0 && errno == EINTR);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (got <= 0) {
        input_ended(chardev, got < 0 ? errno : 0);
        return;
    }
    chardev->input_offset = 0;
    chardev->input_length = (size_t)got;
    deliver_input(chardev);
}

static void on_input_ready(evutil_socket_t fd, short events, void *arg)
{
    (void)fd;
    (void)events;
    read_input(arg);
}

static const char *const mux_help_lines[] = {
    "C-a h    print this help\r\n",
    "C-a x    exit emulator\r\n",
    "C-a c    switch between console and monitor\r\n",
    "C-a C-a  sends C-a\r\n",
};

static void mux_switch_focus(struct chardev *chardev)
{
    if (chardev->frontend_count == 0)
        return;
    chardev->focus = (chardev->focus + 1) % chardev->frontend_count;
    struct chardev_frontend *frontend = &chardev->frontends[chardev->focus];
    frontend->open_pending = false;
    if (frontend->ops->opened)
        frontend->ops->opened(frontend->opaque);
}

/* Handles the byte after Ctrl-a. Returns false when it is a literal Ctrl-a
 * that must go to the frontend. */
static bool mux_handle_escape(struct chardev *chardev, uint8_t byte)
{
    switch (byte) {
    case MUX_ESCAPE_CHAR:
        return false;
    case 'h':
    case '?':
        chardev_write(chardev, "\r\n", 2);
        for (size_t i = 0; i < sizeof(mux_help_lines) / sizeof(mux_help_lines[0]); i++)
            chardev_write(chardev, mux_help_lines[i], strlen(mux_help_lines[i]));
        return true;
    case 'x': {
        static const char message[] = "plugvirt-vmm: Terminated\r\n";
        chardev_write(chardev, message, sizeof(message) - 1);
        if (chardev->quit)
            chardev->quit(chardev->quit_opaque);
        return true;
    }
    case 'c':
        mux_switch_focus(chardev);
        return true;
    default:
        return true; /* unknown commands are swallowed, as in QEMU */
    }
}

static size_t frontend_room(struct chardev_frontend *frontend, size_t wanted)
{
    if (!frontend->ops->can_receive)
        return wanted;
    size_t room = frontend->ops->can_receive(frontend->opaque);
    return room < wanted ? room : wanted;
}

/* Hands buffered input to the frontend as far as it takes it. */
static void deliver_input(struct chardev *chardev)
{
    while (chardev->input_offset < chardev->input_length && has_receiver(chardev)) {
        uint8_t *bytes = chardev->input + chardev->input_offset;
        size_t available = chardev->input_length - chardev->input_offset;
        struct chardev_frontend *frontend = &chardev->frontends[chardev->mux ? chardev->focus : 0];
        if (chardev->mux) {
            if (chardev->escape_pending) {
                if (mux_handle_escape(chardev, bytes[0])) {
                    chardev->escape_pending = false;
                    chardev->input_offset++;
                    continue;
                }
                /* A literal Ctrl-a: the frontend must have room for it. */
                if (frontend_room(frontend, 1) == 0)
                    break;
                chardev->escape_pending = false;
                chardev->input_offset++;
                frontend->ops->receive(frontend->opaque, bytes, 1);
                continue;
            }
            if (bytes[0] == MUX_ESCAPE_CHAR) {
                chardev->escape_pending = true;
                chardev->input_offset++;
                continue;
            }
            uint8_t *escape = memchr(bytes, MUX_ESCAPE_CHAR, available);
            if (escape)
                available = (size_t)(escape - bytes);
        }
        size_t count = frontend_room(frontend, available);
        if (count == 0)
            break; /* throttled until chardev_accept_input */
        chardev->input_offset += count;
        frontend->ops->receive(frontend->opaque, bytes, count);
    }
    update_input_watch(chardev);
}

void chardev_accept_input(struct chardev *chardev)
{
    if (chardev)
        wake_main_loop(chardev, true);
}

static void on_wake(evutil_socket_t fd, short events, void *arg)
{
    struct chardev *chardev = arg;
    (void)fd;
    (void)events;
    pthread_mutex_lock(&chardev->lock);
    chardev->wake_pending = false;
    bool resume_input = chardev->input_resume_requested;
    chardev->input_resume_requested = false;
    pthread_mutex_unlock(&chardev->lock);

    for (unsigned i = 0; i < chardev->frontend_count; i++) {
        struct chardev_frontend *frontend = &chardev->frontends[i];
        if (!frontend->open_pending)
            continue;
        frontend->open_pending = false;
        if (frontend->ops->opened)
            frontend->ops->opened(frontend->opaque);
    }
    flush_output(chardev);
    if (resume_input) {
        deliver_input(chardev);
        if (!chardev->host.input_pollable)
            read_input(chardev);
    }
}

struct chardev *chardev_open(struct event_base *event_base, const struct chardev_spec *spec,
                             struct pv_error *error)
{
    struct chardev *chardev = calloc(1, sizeof(*chardev));
    if (!chardev) {
        pv_error_set(error, -ENOMEM, "out of memory");
        return NULL;
    }
    chardev->event_base = event_base;
    chardev->kind = spec->kind;
    chardev->mux = spec->kind == CHARDEV_KIND_MUX_STDIO;
    chardev_host_init(&chardev->host);
    chardev->log_fd = -1;
    chardev->connected = true;
    pthread_mutex_init(&chardev->lock, NULL);
    chardev->label = strdup(spec->id ? spec->id : "serial0");
    chardev->write_scratch = malloc(CHARDEV_WRITE_CHUNK);
    chardev->wake_event = event_new(event_base, -1, 0, on_wake, chardev);
    if (!chardev->label || !chardev->write_scratch || !chardev->wake_event) {
        pv_error_set(error, -ENOMEM, "out of memory");
        chardev_close(chardev);
        return NULL;
    }

    int rc = 0;
    if (spec->log_path) {
        chardev->log_fd = open(spec->log_path,
                               O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY |
                                   (spec->log_append ? O_APPEND : O_TRUNC),
                               0600);
        if (chardev->log_fd < 0)
            rc = pv_error_set_errno(error, -errno, "chardev '%s': cannot open logfile '%s'",
                                    chardev->label, spec->log_path);
    }
    /* Before the pty is opened, so a failure prints no "redirected" line. */
    if (rc == 0 && spec->kind == CHARDEV_KIND_PTY) {
        chardev->pty_retry_timer = evtimer_new(event_base, on_pty_retry, chardev);
        if (!chardev->pty_retry_timer)
            rc = pv_error_set(error, -ENOMEM, "cannot create a timer");
    }
    if (rc == 0)
        rc = chardev_host_open(&chardev->host, spec, chardev->label, error);
    if (rc == 0 && chardev->host.listen_fd >= 0) {
        chardev->accept_event = event_new(chardev->event_base, chardev->host.listen_fd,
                                          EV_READ | EV_PERSIST, on_accept, chardev);
        if (!chardev->accept_event || event_add(chardev->accept_event, NULL) < 0)
            rc = pv_error_set(error, -ENOMEM, "cannot watch socket %s", spec->path);
        chardev->connected = false;
    }
    if (rc == 0)
        rc = setup_events(chardev, error);
    if (rc < 0) {
        chardev_close(chardev);
        return NULL;
    }
    chardev->output_open = chardev->connected && chardev->host.output_fd >= 0;
    return chardev;
}

void chardev_close(struct chardev *chardev)
{
    if (!chardev)
        return;
    /* Last chance for queued output (e.g. the final console lines); never waits. */
    if (chardev->host.output_fd >= 0 && chardev->write_scratch)
        flush_output(chardev);
    release_fds(chardev);
    if (chardev->accept_event)
        event_free(chardev->accept_event);
    if (chardev->pty_retry_timer)
        event_free(chardev->pty_retry_timer);
    if (chardev->wake_event)
        event_free(chardev->wake_event);
    chardev_host_close(&chardev->host);
    if (chardev->log_fd >= 0)
        close(chardev->log_fd);
    pthread_mutex_destroy(&chardev->lock);
    free(chardev->output.data);
    free(chardev->write_scratch);
    free(chardev->label);
    free(chardev);
}

int chardev_attach_frontend(struct chardev *chardev, const struct chardev_frontend_ops *ops,
                            void *opaque, struct pv_error *error)
{
    unsigned limit = chardev->mux ? CHARDEV_MAX_FRONTENDS : 1;
    if (chardev->frontend_count >= limit)
        return pv_error_set(error, -EBUSY, "chardev '%s' is already in use", chardev->label);
    struct chardev_frontend *frontend = &chardev->frontends[chardev->frontend_count];
    frontend->ops = ops;
    frontend->opaque = opaque;
    frontend->open_pending = false;
    unsigned index = chardev->frontend_count++;
    /* Deferred to the loop: the frontend may still be finishing its own setup. */
    if (chardev->connected && (!chardev->mux || index == chardev->focus)) {
        frontend->open_pending = true;
        wake_main_loop(chardev, false);
    }
    update_input_watch(chardev);
    return 0;
}

void chardev_detach_frontend(struct chardev *chardev, void *opaque)
{
    if (!chardev)
        return;
    for (unsigned i = 0; i < chardev->frontend_count; i++) {
        if (chardev->frontends[i].opaque != opaque)
            continue;
        memmove(&chardev->frontends[i], &chardev->frontends[i + 1],
                (chardev->frontend_count - i - 1) * sizeof(chardev->frontends[0]));
        chardev->frontend_count--;
        if (chardev->focus > i)
            chardev->focus--;
        if (chardev->focus >= chardev->frontend_count)
            chardev->focus = 0;
        break;
    }
    update_input_watch(chardev);
}

void chardev_set_quit_handler(struct chardev *chardev, chardev_quit_fn quit, void *opaque)
{
    chardev->quit = quit;
    chardev->quit_opaque = opaque;
}

const char *chardev_pty_path(const struct chardev *chardev)
{
    if (!chardev || chardev->kind != CHARDEV_KIND_PTY)
        return NULL;
    return chardev->host.pty_path;
}

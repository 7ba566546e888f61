/* Character device backends, driven through a real libevent loop and real
 * descriptors (files, unix sockets, ptys). */
#include <criterion/criterion.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "chardev/chardev.h"
#include "chardev/chardev_host.h"

/* ---- helpers ---- */

struct recorder {
    uint8_t data[8192];
    size_t length;
    size_t room; /* what can_receive reports; SIZE_MAX = unlimited */
    unsigned opened;
};

static void recorder_receive(void *opaque, const uint8_t *data, size_t length)
{
    struct recorder *recorder = opaque;
    cr_assert_leq(length, recorder->room, "delivered %zu bytes, only %zu allowed", length,
                  recorder->room);
    cr_assert_leq(recorder->length + length, sizeof(recorder->data));
    memcpy(recorder->data + recorder->length, data, length);
    recorder->length += length;
    if (recorder->room != SIZE_MAX)
        recorder->room -= length;
}

static size_t recorder_can_receive(void *opaque)
{
    return ((struct recorder *)opaque)->room;
}

static void recorder_opened(void *opaque)
{
    ((struct recorder *)opaque)->opened++;
}

static const struct chardev_frontend_ops recorder_ops = {
    .receive = recorder_receive,
    .can_receive = recorder_can_receive,
    .opened = recorder_opened,
};

static void recorder_init(struct recorder *recorder)
{
    memset(recorder, 0, sizeof(*recorder));
    recorder->room = SIZE_MAX;
}

static struct event_base *new_base(void)
{
    cr_assert_eq(evthread_use_pthreads(), 0);
    struct event_base *base = event_base_new();
    cr_assert_not_null(base);
    return base;
}

static double now_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* Runs the loop until `done` holds, for at most two seconds. */
#define RUN_UNTIL(base, condition)                                                                 \
    ({                                                                                             \
        double deadline_ = now_seconds() + 2.0;                                                    \
        while (!(condition) && now_seconds() < deadline_) {                                        \
            event_base_loop((base), EVLOOP_NONBLOCK);                                              \
            if (!(condition))                                                                      \
                usleep(1000);                                                                      \
        }                                                                                          \
        (condition);                                                                               \
    })

static void run_for(struct event_base *base, double seconds)
{
    double deadline = now_seconds() + seconds;
    while (now_seconds() < deadline) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        usleep(1000);
    }
}

static char *temp_dir(void)
{
    char *dir = strdup("/tmp/pv-chardev-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    return dir;
}

static char *join(const char *dir, const char *name)
{
    char *path;
    cr_assert_gt(asprintf(&path, "%s/%s", dir, name), 0);
    return path;
}

static int connect_unix(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strncpy(address.sun_path, path, sizeof(address.sun_path) - 1);
    cr_assert_eq(connect(fd, (struct sockaddr *)&address, sizeof(address)), 0, "connect: %s",
                 strerror(errno));
    return fd;
}

/* Reads what is available on a non-blocking copy of `fd` into buffer[*length...]. */
static void drain(int fd, char *buffer, size_t size, size_t *length)
{
    for (;;) {
        ssize_t got = recv(fd, buffer + *length, size - *length - 1, MSG_DONTWAIT);
        if (got < 0 && errno == ENOTSOCK)
            got = read(fd, buffer + *length, size - *length - 1);
        if (got <= 0)
            break;
        *length += (size_t)got;
    }
    buffer[*length] = '\0';
}

static size_t file_size(const char *path)
{
    struct stat status;
    if (stat(path, &status) < 0)
        return 0;
    return (size_t)status.st_size;
}

static char *read_file(const char *path, size_t *length)
{
    FILE *file = fopen(path, "rb");
    cr_assert_not_null(file);
    size_t size = file_size(path);
    char *data = malloc(size + 1);
    cr_assert_eq(fread(data, 1, size, file), size);
    data[size] = '\0';
    fclose(file);
    *length = size;
    return data;
}

/* ---- null and file ---- */

Test(chardev, null_discards_output_and_has_no_input)
{
    struct event_base *base = new_base();
    struct chardev_spec spec = {.kind = CHARDEV_KIND_NULL};
    struct pv_error error = {0};
    struct chardev *chardev = chardev_open(base, &spec, &error);
    cr_assert_not_null(chardev, "%s", error.message);
    struct recorder recorder;
    recorder_init(&recorder);
    cr_assert_eq(chardev_attach_frontend(chardev, &recorder_ops, &recorder, NULL), 0);
    /* A plain chardev takes one frontend. */
    cr_assert_eq(chardev_attach_frontend(chardev, &recorder_ops, &recorder, &error), -EBUSY);
    chardev_write(chardev, "hello", 5);
    run_for(base, 0.02);
    cr_assert_eq(recorder.length, 0);
    cr_assert_eq(chardev_dropped_bytes(chardev), 0, "discarding is not dropping");
    cr_assert_null(chardev_pty_path(chardev));
    chardev_close(chardev);
    event_base_free(base);
}

Test(chardev, file_writes_reach_the_file_and_truncate_it)
{
    struct event_base *base = new_base();
    char *dir = temp_dir();
    char *path = join(dir, "serial.log");
    FILE *old = fopen(path, "w");
    fputs("old contents that must go", old);
    fclose(old);

    struct chardev_spec spec = {.kind = CHARDEV_KIND_FILE, .path = path};
    struct pv_error error = {0};
    struct chardev *chardev = chardev_open(base, &spec, &error);
    cr_assert_not_null(chardev, "%s", error.message);
    cr_assert_eq(file_size(path), 0);
    chardev_write(chardev, "PROBE ", 6);
    chardev_write(chardev, "READY\n", 6);
    cr_assert(RUN_UNTIL(base, file_size(path) == 12));
    size_t length;
    char *contents = read_file(path, &length);
    cr_assert_str_eq(contents, "PROBE READY\n");
    free(contents);
    chardev_close(chardev);

    spec.path = "/nonexistent-dir/x.log";
    cr_assert_null(chardev_open(base, &spec, &error));
    cr_assert_eq(error.code, -ENOENT);
    cr_assert(strstr(error.message, "/nonexistent-dir/x.log"));
    unlink(path);
    rmdir(dir);
    free(path);
    free(dir);
    event_base_free(base);
}

Test(chardev, output_beyond_the_bound_drops_the_oldest_bytes)
{
    struct event_base *base = new_base();
    char *dir = temp_dir();
    char *path = join(dir, "big.log");
    struct chardev_spec spec = {.kind = CHARDEV_KIND_FILE, .path = path};
    struct chardev *chardev = chardev_open(base, &spec, NULL);
    cr_assert_not_null(chardev);
    /* The loop does not run: everything stays queued until close flushes it. */
    const size_t total = (3u << 20) / 2, limit = 1u << 20;
    uint8_t block[4096];
    for (size_t offset = 0; offset < total; offset += sizeof(block)) {
        for (size_t i = 0; i < sizeof(block); i++)
            block[i] = (uint8_t)((offset + i) / 4096 * 7 + (offset + i));
        chardev_write(chardev, block, sizeof(block));
    }
    cr_assert_eq(chardev_dropped_bytes(chardev), total - limit);
    chardev_close(chardev);
    size_t length;
    uint8_t *contents = (uint8_t *)read_file(path, &length);
    cr_assert_eq(length, limit);
    for (size_t i = 0; i < length; i++) {
        size_t position = total - limit + i;
        if (contents[i] != (uint8_t)(position / 4096 * 7 + position))
            cr_assert_fail("byte %zu is not the newest data", i);
    }
    free(contents);
    unlink(path);
    rmdir(dir);
    free(path);
    free(dir);
    event_base_free(base);
}

/* ---- concurrent writers ---- */

#define WRITER_THREADS 4
#define WRITER_RECORDS 20000

struct writer {
    struct chardev *chardev;
    uint8_t id;
    bool per_byte;
};

static void *writer_main(void *arg)
{
    struct writer *writer = arg;
    for (uint32_t sequence = 0; sequence < WRITER_RECORDS; sequence++) {
        if (writer->per_byte) {
            uint8_t byte = (uint8_t)('A' + writer->id);
            chardev_write(writer->chardev, &byte, 1);
            continue;
        }
        uint8_t record[8] = {'R',
                             writer->id,
                             (uint8_t)(sequence >> 24),
                             (uint8_t)(sequence >> 16),
                             (uint8_t)(sequence >> 8),
                             (uint8_t)sequence,
                             0,
                             '\n'};
        record[6] = (uint8_t)(record[1] ^ record[2] ^ record[3] ^ record[4] ^ record[5]);
        chardev_write(writer->chardev, record, sizeof(record));
    }
    return NULL;
}

static volatile bool writers_done;

static void check_concurrent_writes(bool per_byte)
{
    struct event_base *base = new_base();
    char *dir = temp_dir();
    char *path = join(dir, "concurrent.log");
    struct chardev_spec spec = {.kind = CHARDEV_KIND_FILE, .path = path};
    struct chardev *chardev = chardev_open(base, &spec, NULL);
    cr_assert_not_null(chardev);

    pthread_t threads[WRITER_THREADS];
    struct writer writers[WRITER_THREADS];
    for (int i = 0; i < WRITER_THREADS; i++) {
        writers[i] = (struct writer){chardev, (uint8_t)i, per_byte};
        cr_assert_eq(pthread_create(&threads[i], NULL, writer_main, &writers[i]), 0);
    }
    /* The main loop flushes while the writers append. */
    size_t expected = WRITER_THREADS * WRITER_RECORDS * (per_byte ? 1 : 8);
    cr_assert(RUN_UNTIL(base, file_size(path) == expected), "file has %zu of %zu bytes",
              file_size(path), expected);
    for (int i = 0; i < WRITER_THREADS; i++)
        pthread_join(threads[i], NULL);
    cr_assert_eq(chardev_dropped_bytes(chardev), 0);
    chardev_close(chardev);

    size_t length;
    uint8_t *contents = (uint8_t *)read_file(path, &length);
    cr_assert_eq(length, expected);
    if (per_byte) {
        size_t counts[WRITER_THREADS] = {0};
        for (size_t i = 0; i < length; i++) {
            cr_assert(contents[i] >= 'A' && contents[i] < 'A' + WRITER_THREADS);
            counts[contents[i] - 'A']++;
        }
        for (int i = 0; i < WRITER_THREADS; i++)
            cr_assert_eq(counts[i], WRITER_RECORDS);
    } else {
        uint32_t next[WRITER_THREADS] = {0};
        for (size_t i = 0; i < length; i += 8) {
            uint8_t *record = contents + i;
            cr_assert_eq(record[0], 'R', "corrupt record at %zu", i);
            cr_assert_eq(record[7], '\n');
            cr_assert_eq(record[6],
                         (uint8_t)(record[1] ^ record[2] ^ record[3] ^ record[4] ^ record[5]));
            cr_assert_lt(record[1], WRITER_THREADS);
            uint32_t sequence = (uint32_t)record[2] << 24 | (uint32_t)record[3] << 16 |
                                (uint32_t)record[4] << 8 | record[5];
            cr_assert_eq(sequence, next[record[1]], "thread %u out of order", record[1]);
            next[record[1]]++;
        }
        for (int i = 0; i < WRITER_THREADS; i++)
            cr_assert_eq(next[i], WRITER_RECORDS);
    }
    free(contents);
    unlink(path);
    rmdir(dir);
    free(path);
    free(dir);
    event_base_free(base);
}

Test(chardev, concurrent_writers_lose_and_corrupt_nothing)
{
    check_concurrent_writes(false);
}

Test(chardev, concurrent_single_byte_writers_lose_nothing)
{
    check_concurrent_writes(true);
}

/* ---- unix sockets ---- */

Test(chardev, unix_server_accepts_one_peer_at_a_time)
{
    struct event_base *base = new_base();
    char *dir = temp_dir();
    char *path = join(dir, "serial.sock");
    /* A stale socket from an earlier run is replaced. */
    int stale = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strncpy(address.sun_path, path, sizeof(address.sun_path) - 1);
    cr_assert_eq(bind(stale, (struct sockaddr *)&address, sizeof(address)), 0);
    close(stale);

    struct chardev_spec spec = {.kind = CHARDEV_KIND_UNIX_SERVER, .path = path};
    struct pv_error error = {0};
    struct chardev *chardev = chardev_open(base, &spec, &error);
    cr_assert_not_null(chardev, "%s", error.message);
    struct recorder recorder;
    recorder_init(&recorder);
    cr_assert_eq(chardev_attach_frontend(chardev, &recorder_ops, &recorder, NULL), 0);

    /* Nobody connected: output is discarded, not saved for the first client. */
    chardev_write(chardev, "lost", 4);
    run_for(base, 0.01);

    int first = connect_unix(path);
    cr_assert(RUN_UNTIL(base, recorder.opened == 1));
    cr_assert_eq(send(first, "abc", 3, 0), 3);
    cr_assert(RUN_UNTIL(base, recorder.length == 3));
    cr_assert_arr_eq(recorder.data, "abc", 3);
    chardev_write(chardev, "xyz", 3);
    char buffer[64];
    size_t length = 0;
    cr_assert(RUN_UNTIL(base, (drain(first, buffer, sizeof(buffer), &length), length >= 3)));
    cr_assert_str_eq(buffer, "xyz");

    /* A second client waits while the first is connected. */
    int second = connect_unix(path);
    cr_assert_eq(send(second, "queued", 6, 0), 6);
    run_for(base, 0.05);
    cr_assert_eq(recorder.opened, 1);
    cr_assert_eq(recorder.length, 3);

    close(first);
    cr_assert(RUN_UNTIL(base, recorder.opened == 2));
    cr_assert(RUN_UNTIL(base, recorder.length == 9));
    cr_assert_arr_eq(recorder.data + 3, "queued", 6);
    chardev_write(chardev, "to second", 9);
    length = 0;
    cr_assert(RUN_UNTIL(base, (drain(second, buffer, sizeof(buffer), &length), length >= 9)));
    cr_assert_str_eq(buffer, "to second");
    close(second);
    run_for(base, 0.01);

    chardev_close(chardev);
    cr_assert_neq(access(path, F_OK), 0, "the socket is removed on close");
    free(path);
    rmdir(dir);
    free(dir);
    event_base_free(base);
}

/* logfile= keeps what a socket with no client would drop, in order; logappend=on keeps
 * the old contents, off truncates (QEMU's meaning). */
Test(chardev, logfile_keeps_the_output_whether_or_not_a_peer_is_connected)
{
    struct event_base *base = new_base();
    char *dir = temp_dir();
    char *socket_path = join(dir, "serial.sock");
    char *log_path = join(dir, "serial.log");
    FILE *old = fopen(log_path, "w");
    fputs("before\n", old);
    fclose(old);
    struct chardev_spec spec = {.kind = CHARDEV_KIND_UNIX_SERVER,
                                .path = socket_path,
                                .log_path = log_path,
                                .log_append = true};
    struct pv_error error = {0};
    struct chardev *chardev = chardev_open(base, &spec, &error);
    cr_assert_not_null(chardev, "%s", error.message);
    struct recorder recorder;
    recorder_init(&recorder);
    cr_assert_eq(chardev_attach_frontend(chardev, &recorder_ops, &recorder, NULL), 0);
    chardev_write(chardev, "nobody listens\n", 15);
    int peer = connect_unix(socket_path);
    cr_assert(RUN_UNTIL(base, recorder.opened == 1));
    chardev_write(chardev, "seen\n", 5);
    char buffer[64];
    size_t length = 0;
    cr_assert(RUN_UNTIL(base, (drain(peer, buffer, sizeof(buffer), &length), length >= 5)));
    cr_assert_str_eq(buffer, "seen\n", "the peer gets only what came after it connected");
    close(peer);
    chardev_close(chardev);
    char *contents = read_file(log_path, &length);
    cr_assert_str_eq(contents, "before\nnobody listens\nseen\n");
    free(contents);
    /* logappend off: truncated */
    spec.log_append = false;
    chardev = chardev_open(base, &spec, &error);
    cr_assert_not_null(chardev, "%s", error.message);
    chardev_write(chardev, "new\n", 4);
    chardev_close(chardev);
    contents = read_file(log_path, &length);
    cr_assert_str_eq(contents, "new\n");
    free(contents);
    /* an unusable log path fails the open and names the path */
    spec.log_path = "/nonexistent-dir/serial.log";
    cr_assert_null(chardev_open(base, &spec, &error));
    cr_assert(strstr(error.message, "/nonexistent-dir/serial.log"), "%s", error.message);
    unlink(log_path);
    rmdir(dir);
    free(socket_path);
    free(log_path);
    free(dir);
    event_base_free(base);
}

Test(chardev, unix_server_refuses_wait_on_and_non_sockets)
{
    struct event_base *base = new_base();
    char *dir = temp_dir();
    char *path = join(dir, "plain-file");
    struct chardev_spec spec = {.kind = CHARDEV_KIND_UNIX_SERVER, .path = path, .wait = true};
    struct pv_error error = {0};
    cr_assert_null(chardev_open(base, &spec, &error));
    cr_assert_eq(error.code, -ENOTSUP);

    FILE *file = fopen(path, "w");
    fclose(file);
    spec.wait = false;
    cr_assert_null(chardev_open(base, &spec, &error));
    cr_assert_eq(error.code, -EEXIST);
    cr_assert_eq(access(path, F_OK), 0, "a regular file is never removed");
    unlink(path);
    rmdir(dir);
    free(path);
    free(dir);
    event_base_free(base);
}

Test(chardev, unix_client_connects_and_exchanges_bytes)
{
    struct event_base *base = new_base();
    char *dir = temp_dir();
    char *path = join(dir, "peer.sock");
    int listener = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strncpy(address.sun_path, path, sizeof(address.sun_path) - 1);
    cr_assert_eq(bind(listener, (struct sockaddr *)&address, sizeof(address)), 0);
    cr_assert_eq(listen(listener, 1), 0);

    struct chardev_spec spec = {.kind = CHARDEV_KIND_UNIX_CLIENT, .path = path};
    struct pv_error error = {0};
    struct chardev *chardev = chardev_open(base, &spec, &error);
    cr_assert_not_null(chardev, "%s", error.message);
    int peer = accept(listener, NULL, NULL);
    cr_assert_geq(peer, 0);
    struct recorder recorder;
    recorder_init(&recorder);
    cr_assert_eq(chardev_attach_frontend(chardev, &recorder_ops, &recorder, NULL), 0);
    cr_assert(RUN_UNTIL(base, recorder.opened == 1));

    chardev_write(chardev, "ping", 4);
    char buffer[64];
    size_t length = 0;
    cr_assert(RUN_UNTIL(base, (drain(peer, buffer, sizeof(buffer), &length), length >= 4)));
    cr_assert_str_eq(buffer, "ping");
    cr_assert_eq(send(peer, "pong", 4, 0), 4);
    cr_assert(RUN_UNTIL(base, recorder.length == 4));
    cr_assert_arr_eq(recorder.data, "pong", 4);
    close(peer);
    chardev_close(chardev);

    close(listener);
    unlink(path);
    cr_assert_null(chardev_open(base, &spec, &error));
    cr_assert(strstr(error.message, path), "%s", error.message);
    rmdir(dir);
    free(path);
    free(dir);
    event_base_free(base);
}

Test(chardev, input_is_paced_by_can_receive)
{
    struct event_base *base = new_base();
    char *dir = temp_dir();
    char *path = join(dir, "paced.sock");
    struct chardev_spec spec = {.kind = CHARDEV_KIND_UNIX_SERVER, .path = path};
    struct chardev *chardev = chardev_open(base, &spec, NULL);
    cr_assert_not_null(chardev);
    struct recorder recorder;
    recorder_init(&recorder);
    recorder.room = 5;
    cr_assert_eq(chardev_attach_frontend(chardev, &recorder_ops, &recorder, NULL), 0);
    int client = connect_unix(path);
    char message[200];
    for (size_t i = 0; i < sizeof(message); i++)
        message[i] = (char)('a' + i % 26);
    cr_assert_eq(send(client, message, sizeof(message), 0), (ssize_t)sizeof(message));

    cr_assert(RUN_UNTIL(base, recorder.length == 5));
    run_for(base, 0.02);
    cr_assert_eq(recorder.length, 5, "nothing more until the frontend has room");
    while (recorder.length < sizeof(message)) {
        size_t before = recorder.length;
        recorder.room = 7;
        chardev_accept_input(chardev);
        cr_assert(RUN_UNTIL(base, recorder.length > before));
        run_for(base, 0.002);
        cr_assert_leq(recorder.length - before, 7);
    }
    cr_assert_arr_eq(recorder.data, message, sizeof(message));
    close(client);
    chardev_close(chardev);
    free(path);
    rmdir(dir);
    free(dir);
    event_base_free(base);
}

/* ---- pty ---- */

Test(chardev, pty_is_raw_and_carries_both_directions)
{
    struct event_base *base = new_base();
    struct chardev_spec spec = {.kind = CHARDEV_KIND_PTY, .id = "serial0"};
    struct pv_error error = {0};
    struct chardev *chardev = chardev_open(base, &spec, &error);
    cr_assert_not_null(chardev, "%s", error.message);
    const char *pty = chardev_pty_path(chardev);
    cr_assert_not_null(pty);
    cr_assert_eq(strncmp(pty, "/dev/pts/", 9), 0, "%s", pty);
    struct recorder recorder;
    recorder_init(&recorder);
    cr_assert_eq(chardev_attach_frontend(chardev, &recorder_ops, &recorder, NULL), 0);

    int slave = open(pty, O_RDWR | O_NOCTTY | O_NONBLOCK);
    cr_assert_geq(slave, 0);
    struct termios termios;
    cr_assert_eq(tcgetattr(slave, &termios), 0);
    cr_assert_eq(termios.c_lflag & (ICANON | ECHO), 0, "the pty is raw");

    chardev_write(chardev, "out\n", 4);
    char buffer[64];
    size_t length = 0;
    cr_assert(RUN_UNTIL(base, (drain(slave, buffer, sizeof(buffer), &length), length >= 4)));
    cr_assert_str_eq(buffer, "out\n", "raw: no \\r added");
    cr_assert_eq(write(slave, "in\x01", 3), 3);
    cr_assert(RUN_UNTIL(base, recorder.length == 3));
    cr_assert_arr_eq(recorder.data, "in\x01", 3);

    /* The reader goes away and comes back: input works again. */
    close(slave);
    run_for(base, 0.05);
    slave = open(pty, O_RDWR | O_NOCTTY | O_NONBLOCK);
    cr_assert_geq(slave, 0);
    cr_assert_eq(write(slave, "again", 5), 5);
    /* Input is retried once a second after the reader left. */
    cr_assert(RUN_UNTIL(base, recorder.length == 8));
    cr_assert_arr_eq(recorder.data + 3, "again", 5);
    close(slave);
    chardev_close(chardev);
    event_base_free(base);
}

/* ---- stdio and the mux ---- */

struct saved_stdio {
    int input, output;
};

static struct saved_stdio replace_stdio(int input, int output)
{
    struct saved_stdio saved = {dup(STDIN_FILENO), dup(STDOUT_FILENO)};
    cr_assert_eq(dup2(input, STDIN_FILENO), STDIN_FILENO);
    cr_assert_eq(dup2(output, STDOUT_FILENO), STDOUT_FILENO);
    return saved;
}

static void restore_stdio(struct saved_stdio saved)
{
    dup2(saved.input, STDIN_FILENO);
    dup2(saved.output, STDOUT_FILENO);
    close(saved.input);
    close(saved.output);
}

Test(chardev, stdio_keeps_writing_after_stdin_eof_and_keeps_stdout_blocking)
{
    struct event_base *base = new_base();
    int input[2], output[2];
    cr_assert_eq(pipe(input), 0);
    cr_assert_eq(pipe(output), 0);
    close(input[1]); /* stdin at EOF */
    struct saved_stdio saved = replace_stdio(input[0], output[1]);

    struct chardev_spec spec = {.kind = CHARDEV_KIND_STDIO};
    struct pv_error error = {0};
    struct chardev *chardev = chardev_open(base, &spec, &error);
    cr_assert_not_null(chardev, "%s", error.message);
    struct chardev *second = chardev_open(base, &spec, &error);
    cr_assert_null(second, "stdio can only be used once");
    cr_assert_eq(error.code, -EBUSY);
    struct recorder recorder;
    recorder_init(&recorder);
    cr_assert_eq(chardev_attach_frontend(chardev, &recorder_ops, &recorder, NULL), 0);
    run_for(base, 0.05);
    cr_assert_eq(fcntl(STDOUT_FILENO, F_GETFL) & O_NONBLOCK, 0,
                 "O_NONBLOCK must not leak onto the shared stdout");

    chardev_write(chardev, "still here", 10);
    char buffer[64];
    size_t length = 0;
    fcntl(output[0], F_SETFL, O_NONBLOCK);
    cr_assert(RUN_UNTIL(base, (drain(output[0], buffer, sizeof(buffer), &length), length >= 10)));
    cr_assert_str_eq(buffer, "still here");
    cr_assert_eq(recorder.length, 0);
    chardev_close(chardev);
    restore_stdio(saved);
    close(input[0]);
    close(output[0]);
    close(output[1]);
    event_base_free(base);
}

Test(chardev, stdio_output_to_a_full_pipe_never_blocks_the_writer)
{
    struct event_base *base = new_base();
    int output[2];
    cr_assert_eq(pipe(output), 0);
    int null_input = open("/dev/null", O_RDONLY);
    struct saved_stdio saved = replace_stdio(null_input, output[1]);
    struct chardev_spec spec = {.kind = CHARDEV_KIND_STDIO};
    struct chardev *chardev = chardev_open(base, &spec, NULL);
    cr_assert_not_null(chardev);

    /* Nobody reads the pipe (64 KiB): 300 KiB must still be accepted at once. */
    static uint8_t block[1024];
    memset(block, 'z', sizeof(block));
    double start = now_seconds();
    for (int i = 0; i < 300; i++) {
        chardev_write(chardev, block, sizeof(block));
        event_base_loop(base, EVLOOP_NONBLOCK);
    }
    cr_assert_lt(now_seconds() - start, 1.0);
    cr_assert_eq(chardev_dropped_bytes(chardev), 0);

    /* Once the reader catches up, everything arrives. */
    fcntl(output[0], F_SETFL, O_NONBLOCK);
    size_t total = 0;
    double deadline = now_seconds() + 3;
    while (total < sizeof(block) * 300 && now_seconds() < deadline) {
        uint8_t buffer[65536];
        ssize_t got = read(output[0], buffer, sizeof(buffer));
        if (got > 0)
            total += (size_t)got;
        event_base_loop(base, EVLOOP_NONBLOCK);
    }
    cr_assert_eq(total, sizeof(block) * 300);
    chardev_close(chardev);
    restore_stdio(saved);
    close(null_input);
    close(output[0]);
    close(output[1]);
    event_base_free(base);
}

static void count_quit(void *opaque)
{
    (*(int *)opaque)++;
}

Test(chardev, mux_switches_focus_and_handles_escapes)
{
    struct event_base *base = new_base();
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    cr_assert_geq(master, 0);
    cr_assert_eq(grantpt(master), 0);
    cr_assert_eq(unlockpt(master), 0);
    int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    cr_assert_geq(slave, 0);
    struct termios before;
    cr_assert_eq(tcgetattr(slave, &before), 0);
    cr_assert_neq(before.c_lflag & ICANON, 0);
    struct saved_stdio saved = replace_stdio(slave, slave);

    struct chardev_spec spec = {.kind = CHARDEV_KIND_MUX_STDIO};
    struct pv_error error = {0};
    struct chardev *chardev = chardev_open(base, &spec, &error);
    cr_assert_not_null(chardev, "%s", error.message);
    struct termios raw;
    cr_assert_eq(tcgetattr(slave, &raw), 0);
    cr_assert_eq(raw.c_lflag & (ICANON | ECHO), 0, "stdin tty is in raw mode");

    struct recorder serial, monitor;
    recorder_init(&serial);
    recorder_init(&monitor);
    int quits = 0;
    chardev_set_quit_handler(chardev, count_quit, &quits);
    cr_assert_eq(chardev_attach_frontend(chardev, &recorder_ops, &serial, NULL), 0);
    cr_assert_eq(chardev_attach_frontend(chardev, &recorder_ops, &monitor, NULL), 0);
    cr_assert(RUN_UNTIL(base, serial.opened == 1), "the first frontend has the focus");
    cr_assert_eq(monitor.opened, 0);

    cr_assert_eq(write(master,
                       "ab\x01"
                       "c",
                       4),
                 4);
    cr_assert(RUN_UNTIL(base, monitor.opened == 1));
    cr_assert_eq(serial.length, 2);
    cr_assert_arr_eq(serial.data, "ab", 2);
    cr_assert_eq(write(master,
                       "cd\x01\x01"
                       "e\x01z",
                       7),
                 7);
    cr_assert(RUN_UNTIL(base, monitor.length == 4));
    cr_assert_arr_eq(monitor.data,
                     "cd\x01"
                     "e",
                     4, "C-a C-a is a literal C-a; C-a z is eaten");
    cr_assert_eq(serial.length, 2);

    /* Both frontends' output goes out, whatever the focus. */
    chardev_write(chardev, "[serial]", 8);
    chardev_write(chardev, "[monitor]", 9);
    char buffer[1024];
    size_t length = 0;
    fcntl(master, F_SETFL, O_NONBLOCK);
    cr_assert(RUN_UNTIL(base, (drain(master, buffer, sizeof(buffer), &length), length >= 17)));
    cr_assert_str_eq(buffer, "[serial][monitor]");

    cr_assert_eq(write(master, "\x01h", 2), 2);
    length = 0;
    cr_assert(RUN_UNTIL(
        base, (drain(master, buffer, sizeof(buffer), &length), strstr(buffer, "C-a c") != NULL)));
    cr_assert(strstr(buffer, "C-a x"));

    cr_assert_eq(write(master,
                       "\x01"
                       "c"
                       "back",
                       6),
                 6);
    cr_assert(RUN_UNTIL(base, serial.length == 6));
    cr_assert_arr_eq(serial.data + 2, "back", 4);
    cr_assert_eq(serial.opened, 2);
    cr_assert_eq(quits, 0);
    cr_assert_eq(write(master, "\x01x", 2), 2);
    cr_assert(RUN_UNTIL(base, quits == 1));
    cr_assert_eq(monitor.length, 4);
    cr_assert_eq(serial.length, 6);

    chardev_close(chardev);
    struct termios after;
    cr_assert_eq(tcgetattr(slave, &after), 0);
    cr_assert_neq(after.c_lflag & ICANON, 0, "terminal settings are restored");
    chardev_restore_terminals(); /* safe twice */
    restore_stdio(saved);
    close(slave);
    close(master);
    event_base_free(base);
}

Test(chardev, mux_literal_escape_waits_for_room)
{
    struct event_base *base = new_base();
    int pair[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    struct saved_stdio saved = replace_stdio(pair[1], pair[1]);
    struct chardev_spec spec = {.kind = CHARDEV_KIND_MUX_STDIO};
    struct chardev *chardev = chardev_open(base, &spec, NULL);
    cr_assert_not_null(chardev);
    struct recorder serial;
    recorder_init(&serial);
    serial.room = 1;
    cr_assert_eq(chardev_attach_frontend(chardev, &recorder_ops, &serial, NULL), 0);
    cr_assert_eq(write(pair[0],
                       "a\x01\x01"
                       "b",
                       4),
                 4);
    cr_assert(RUN_UNTIL(base, serial.length == 1));
    run_for(base, 0.02);
    cr_assert_eq(serial.length, 1);
    serial.room = 1;
    chardev_accept_input(chardev);
    cr_assert(RUN_UNTIL(base, serial.length == 2));
    cr_assert_eq(serial.data[1], 0x01);
    serial.room = 10;
    chardev_accept_input(chardev);
    cr_assert(RUN_UNTIL(base, serial.length == 3));
    cr_assert_eq(serial.data[2], 'b');
    chardev_close(chardev);
    restore_stdio(saved);
    close(pair[0]);
    close(pair[1]);
    event_base_free(base);
}

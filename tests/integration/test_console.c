/* The guest's serial port through plugvirtd (issue 9, defect 3): <serial type='file'> and
 * type='unix' mode='bind' reach the user, serial.log stays the daemon's, and `pvsh console`
 * works through the daemon (Ctrl-] detaches, one session at a time, --force takes over).
 * Stock QEMU with TCG runs the probe guest (no /dev/kvm needed). Every wait is for a whole
 * line (inotify for files, poll for descriptors), never a sleep. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "json_util.h"

#define QEMU_PATH "/usr/bin/qemu-system-x86_64"
#define TIMEOUT_MS 30000
#define ACTIVE_SESSION "error: operation failed: Active console session exists for this domain"

static struct daemon_process daemon_under_test;
static struct daemon_process *const daemon_p = &daemon_under_test;

static void setup(void)
{
    if (access(QEMU_PATH, X_OK) != 0)
        cr_skip("%s is not installed (Debian package qemu-system-x86)", QEMU_PATH);
    memset(&daemon_under_test, 0, sizeof(daemon_under_test));
    int rc = daemon_start(&daemon_under_test);
    cr_assert_eq(rc, 0, "plugvirtd did not start: %s", strerror(-rc));
}

static void teardown(void)
{
    daemon_cleanup(&daemon_under_test);
}

TestSuite(console, .init = setup, .fini = teardown, .timeout = 120);

static long long now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1000LL + now.tv_nsec / 1000000;
}

static int remaining_ms(long long deadline)
{
    long long left = deadline - now_ms();
    return left > 0 ? (int)left : 0;
}

/* The end of the first complete line (ended by '\n') of `text` containing `needle`, or NULL. */
static const char *whole_line_end(const char *text, size_t length, const char *needle)
{
    const char *line = text;
    for (const char *end; (end = memchr(line, '\n', length - (size_t)(line - text)));
         line = end + 1) {
        size_t line_length = (size_t)(end - line);
        char copy[4096];
        if (line_length >= sizeof(copy))
            line_length = sizeof(copy) - 1;
        memcpy(copy, line, line_length);
        copy[line_length] = '\0';
        if (strstr(copy, needle))
            return end;
    }
    return NULL;
}

static bool has_whole_line(const char *text, size_t length, const char *needle)
{
    return whole_line_end(text, length, needle) != NULL;
}

static bool file_has_line(const char *path, const char *needle)
{
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return false;
    static char text[1 << 20];
    size_t length = fread(text, 1, sizeof(text), file);
    fclose(file);
    return has_whole_line(text, length, needle);
}

/* Waits (inotify on the file's directory) for a whole line containing `needle`. */
static int wait_file_line(const char *path, const char *needle, int timeout_ms)
{
    char directory[600];
    snprintf(directory, sizeof(directory), "%s", path);
    char *slash = strrchr(directory, '/');
    cr_assert_not_null(slash);
    *slash = '\0';
    int watch = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    cr_assert_geq(watch, 0);
    cr_assert_geq(inotify_add_watch(watch, directory, IN_MODIFY | IN_CREATE | IN_CLOSE_WRITE), 0);
    long long deadline = now_ms() + timeout_ms;
    int rc = -ETIMEDOUT;
    while (true) {
        if (file_has_line(path, needle)) {
            rc = 0;
            break;
        }
        struct pollfd fd = {.fd = watch, .events = POLLIN};
        int ready = poll(&fd, 1, remaining_ms(deadline));
        if (ready <= 0)
            break;
        char events[4096];
        while (read(watch, events, sizeof(events)) > 0)
            ;
    }
    close(watch);
    return rc;
}

/* Bytes read from a descriptor, kept to match whole lines ('\r' counts as a line end too:
 * a raw terminal shows the guest's CR LF). */
struct reader {
    int fd;
    char text[1 << 16];
    size_t length;
    bool eof;
};

static int read_more(struct reader *reader, int timeout_ms)
{
    struct pollfd fd = {.fd = reader->fd, .events = POLLIN};
    int ready = poll(&fd, 1, timeout_ms);
    if (ready <= 0)
        return ready == 0 ? -ETIMEDOUT : -errno;
    if (reader->length + 1 >= sizeof(reader->text))
        reader->length = 0; /* old output: already matched or irrelevant */
    ssize_t length =
        read(reader->fd, reader->text + reader->length, sizeof(reader->text) - 1 - reader->length);
    if (length <= 0) { /* EOF, or EIO: the pty's other side closed */
        reader->eof = true;
        return -ECONNRESET;
    }
    for (ssize_t i = 0; i < length; i++)
        if (reader->text[reader->length + (size_t)i] == '\r')
            reader->text[reader->length + (size_t)i] = '\n';
    reader->length += (size_t)length;
    return 0;
}

/* Waits for a whole line containing `needle`, then forgets what was read up to its end. */
static int wait_line(struct reader *reader, const char *needle, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    const char *end;
    while (!(end = whole_line_end(reader->text, reader->length, needle))) {
        int rc = read_more(reader, remaining_ms(deadline));
        if (rc < 0)
            return rc;
    }
    size_t used = (size_t)(end + 1 - reader->text);
    memmove(reader->text, end + 1, reader->length - used);
    reader->length -= used;
    return 0;
}

static void write_text(int fd, const char *text)
{
    size_t length = strlen(text);
    cr_assert_eq(write(fd, text, length), (ssize_t)length, "write: %s", strerror(errno));
}

static void define_and_start(const char *name, const char *devices_xml)
{
    struct daemon_domain_options options = {.type = "qemu", .emulator = QEMU_PATH};
    char *xml = daemon_domain_xml_options(name, NULL, NULL, devices_xml, &options);
    char *xml_json = daemon_json_string(xml);
    char params[16384];
    snprintf(params, sizeof(params), "{\"xml\": %s}", xml_json);
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.define", params, &reply);
    api_reply_free(&reply);
    free(xml_json);
    free(xml);
    snprintf(params, sizeof(params), "{\"domain\": \"%s\"}", name);
    daemon_call_ok(daemon_p, "domain.start", params, &reply);
    api_reply_free(&reply);
}

static void serial_log_path(const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/domains/%s/serial.log", daemon_p->run_dir, name);
}

static void wait_ready(const char *name)
{
    char log[600];
    serial_log_path(name, log, sizeof(log));
    cr_assert_eq(wait_file_line(log, "PROBE READY", DAEMON_BOOT_TIMEOUT_MS), 0,
                 "the guest of %s did not boot (serial.log)", name);
}

static bool live_xml_contains(const char *name, const char *needle)
{
    char params[300];
    snprintf(params, sizeof(params), "{\"domain\": \"%s\"}", name);
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.xml", params, &reply);
    const char *xml = json_get_string(reply.result, "xml");
    bool found = xml && strstr(xml, needle);
    api_reply_free(&reply);
    return found;
}

Test(console, file_serial_reaches_the_user_file_and_serial_log)
{
    char user_file[600], devices[2048];
    snprintf(user_file, sizeof(user_file), "%s/guest-console.log", daemon_p->directory);
    /* append='on': what was there stays. */
    FILE *file = fopen(user_file, "w");
    cr_assert_not_null(file);
    fputs("BEFORE START\n", file);
    fclose(file);
    snprintf(devices, sizeof(devices),
             "<serial type='file'><source path='%s' append='on'/><target port='0'/></serial>"
             "<console type='file'><source path='%s' append='on'/><target type='serial'/>"
             "</console>",
             user_file, user_file);
    define_and_start("filed", devices);
    cr_assert_eq(wait_file_line(user_file, "PROBE READY", TIMEOUT_MS), 0,
                 "the guest's output did not reach the <serial> file");
    wait_ready("filed");
    cr_assert(file_has_line(user_file, "BEFORE START"), "append='on' truncated the file");
    char log[600];
    serial_log_path("filed", log, sizeof(log));
    cr_assert_not(file_has_line(log, "BEFORE START"));
    cr_assert(live_xml_contains("filed", "append='on'"));
}

Test(console, unix_bind_socket_answers_ping)
{
    char socket_path[600], devices[2048];
    snprintf(socket_path, sizeof(socket_path), "%s/user-serial.sock", daemon_p->directory);
    snprintf(devices, sizeof(devices),
             "<serial type='unix'><source mode='bind' path='%s'/></serial>", socket_path);
    define_and_start("sock", devices);
    wait_ready("sock");
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    cr_assert_lt(strlen(socket_path), sizeof(address.sun_path));
    memcpy(address.sun_path, socket_path, strlen(socket_path) + 1);
    cr_assert_eq(connect(fd, (struct sockaddr *)&address, sizeof(address)), 0,
                 "cannot connect to the <serial type='unix'> socket: %s", strerror(errno));
    write_text(fd, "ping\n");
    struct reader reader = {.fd = fd};
    cr_assert_eq(wait_line(&reader, "PROBE PONG", TIMEOUT_MS), 0,
                 "no PROBE PONG on the unix socket");
    char log[600];
    serial_log_path("sock", log, sizeof(log));
    cr_assert_eq(wait_file_line(log, "PROBE PONG", TIMEOUT_MS), 0,
                 "serial.log did not get the reply too");
    close(fd);
}

/* pvsh console on a new pty; *master is the terminal's other side. */
static pid_t spawn_pvsh_console(const char *name, bool force, int *master)
{
    int slave = -1;
    cr_assert_eq(openpty(master, &slave, NULL, NULL, NULL), 0, "openpty: %s", strerror(errno));
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        setsid();
        dup2(slave, STDIN_FILENO);
        dup2(slave, STDOUT_FILENO);
        dup2(slave, STDERR_FILENO);
        close(slave);
        close(*master);
        execl(PLUGVIRT_BUILDDIR "/client/pvsh", "pvsh", "-c", daemon_p->socket_path, "console",
              name, force ? "--force" : NULL, (char *)NULL);
        _exit(127);
    }
    close(slave);
    return pid;
}

static int wait_exit(pid_t pid, int timeout_ms)
{
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    cr_assert_geq(pidfd, 0, "pidfd_open: %s", strerror(errno));
    struct pollfd fd = {.fd = pidfd, .events = POLLIN};
    int ready = poll(&fd, 1, timeout_ms);
    close(pidfd);
    int status = 0;
    if (ready <= 0)
        kill(pid, SIGKILL);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    if (ready <= 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* pvsh console without a terminal: its exit status and stderr. */
static int run_pvsh_console_plain(const char *name, char *err, size_t size)
{
    int pipe_fds[2];
    cr_assert_eq(pipe(pipe_fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int null_fd = open("/dev/null", O_RDWR);
        dup2(null_fd, STDIN_FILENO);
        dup2(null_fd, STDOUT_FILENO);
        dup2(pipe_fds[1], STDERR_FILENO);
        close(pipe_fds[0]);
        execl(PLUGVIRT_BUILDDIR "/client/pvsh", "pvsh", "-c", daemon_p->socket_path, "console",
              name, (char *)NULL);
        _exit(127);
    }
    close(pipe_fds[1]);
    struct reader reader = {.fd = pipe_fds[0]};
    while (read_more(&reader, TIMEOUT_MS) == 0)
        ;
    close(pipe_fds[0]);
    reader.text[reader.length] = '\0';
    size_t length = reader.length < size - 1 ? reader.length : size - 1;
    memcpy(err, reader.text, length);
    err[length] = '\0';
    return wait_exit(pid, TIMEOUT_MS);
}

Test(console, pvsh_console_ping_escape_busy_and_force)
{
    define_and_start("talk", "<serial type='null'/>");
    wait_ready("talk");

    int first_master;
    pid_t first = spawn_pvsh_console("talk", false, &first_master);
    struct reader first_reader = {.fd = first_master};
    cr_assert_eq(wait_line(&first_reader, "Connected to domain 'talk'", TIMEOUT_MS), 0);
    cr_assert_eq(wait_line(&first_reader, "Escape character is ^] (Ctrl + ])", TIMEOUT_MS), 0);
    write_text(first_master, "ping\r");
    cr_assert_eq(wait_line(&first_reader, "PROBE PONG", TIMEOUT_MS), 0,
                 "no PROBE PONG through pvsh console");

    /* A second client without --force is refused, as virsh's. */
    char err[4096];
    cr_assert_eq(run_pvsh_console_plain("talk", err, sizeof(err)), 1, "%s", err);
    cr_assert_not_null(strstr(err, ACTIVE_SESSION), "%s", err);

    /* Ctrl-] detaches: exit 0, the terminal restored. */
    write_text(first_master, "\x1d");
    cr_assert_eq(wait_exit(first, TIMEOUT_MS), 0);
    close(first_master);

    /* --force takes the console from a client that holds it. */
    int holder_master, taker_master;
    pid_t holder = spawn_pvsh_console("talk", false, &holder_master);
    struct reader holder_reader = {.fd = holder_master};
    cr_assert_eq(wait_line(&holder_reader, "Escape character is", TIMEOUT_MS), 0);
    pid_t taker = spawn_pvsh_console("talk", true, &taker_master);
    struct reader taker_reader = {.fd = taker_master};
    cr_assert_eq(wait_line(&taker_reader, "Escape character is", TIMEOUT_MS), 0);
    cr_assert_eq(wait_exit(holder, TIMEOUT_MS), 0, "the displaced client did not end");
    close(holder_master);
    write_text(taker_master, "ping\r");
    cr_assert_eq(wait_line(&taker_reader, "PROBE PONG", TIMEOUT_MS), 0);
    write_text(taker_master, "\x1d");
    cr_assert_eq(wait_exit(taker, TIMEOUT_MS), 0);
    close(taker_master);

    /* serial.log kept everything the sessions saw. */
    char log[600];
    serial_log_path("talk", log, sizeof(log));
    cr_assert(file_has_line(log, "PROBE PONG"));
}

Test(console, pty_serial_is_reported_in_the_live_xml_and_answers)
{
    define_and_start("ptyd", "<serial type='pty'/><console type='pty'><target type='serial'/>"
                             "</console>");
    wait_ready("ptyd");
    char params[300];
    snprintf(params, sizeof(params), "{\"domain\": \"ptyd\"}");
    struct api_reply reply;
    daemon_call_ok(daemon_p, "domain.xml", params, &reply);
    const char *xml = json_get_string(reply.result, "xml");
    cr_assert_not_null(xml);
    const char *source = strstr(xml, "<source path='/dev/pts/");
    cr_assert_not_null(source, "%s", xml);
    char pty[64] = "";
    cr_assert_eq(sscanf(source, "<source path='%63[^']'", pty), 1);
    api_reply_free(&reply);
    int fd = open(pty, O_RDWR | O_NOCTTY | O_CLOEXEC);
    cr_assert_geq(fd, 0, "open %s: %s", pty, strerror(errno));
    write_text(fd, "ping\n");
    struct reader reader = {.fd = fd};
    cr_assert_eq(wait_line(&reader, "PROBE PONG", TIMEOUT_MS), 0, "no PROBE PONG on %s", pty);
    close(fd);
}

/* plugvirtd restarted under a running guest: the new daemon reconnects to the VMM's serial
 * socket, serial.log goes on, and the console works again. */
Test(console, console_survives_a_daemon_restart)
{
    define_and_start("again", "<serial type='null'/>");
    wait_ready("again");
    int status = 0;
    cr_assert_eq(daemon_kill(daemon_p, SIGKILL, &status), 0);
    cr_assert_eq(daemon_start(daemon_p), 0);
    int master;
    pid_t pvsh = spawn_pvsh_console("again", false, &master);
    struct reader reader = {.fd = master};
    cr_assert_eq(wait_line(&reader, "Escape character is", TIMEOUT_MS), 0);
    write_text(master, "ping\r");
    cr_assert_eq(wait_line(&reader, "PROBE PONG", TIMEOUT_MS), 0,
                 "no console after the daemon restart");
    write_text(master, "\x1d");
    cr_assert_eq(wait_exit(pvsh, TIMEOUT_MS), 0);
    close(master);
    char log[600];
    serial_log_path("again", log, sizeof(log));
    cr_assert(file_has_line(log, "PROBE READY"), "serial.log was truncated by the restart");
    cr_assert(file_has_line(log, "PROBE PONG"));
}

/* The VMM keeps serial.log itself (chardev logfile=): what the guest prints while the daemon
 * is down is in the log too, although no daemon reads the serial socket then. */
Test(console, serial_log_keeps_what_the_guest_printed_while_the_daemon_was_down)
{
    define_and_start("unattended", "");
    wait_ready("unattended");
    cr_assert_eq(daemon_kill(daemon_p, SIGKILL, NULL), 0);
    struct daemon_qmp qmp;
    cr_assert_eq(daemon_qmp_connect(&qmp, daemon_p, "unattended"), 0);
    char reply[4096];
    int rc = daemon_qmp_execute(&qmp, "{\"execute\": \"system_powerdown\"}", reply, sizeof(reply),
                                10000);
    cr_assert_eq(rc, 0, "system_powerdown over QMP: %s", strerror(-rc));
    char path[700];
    serial_log_path("unattended", path, sizeof(path));
    cr_assert_eq(wait_file_line(path, "PROBE POWEROFF", 30000), 0,
                 "the guest's power-off line did not reach serial.log with the daemon down");
    daemon_qmp_close(&qmp);
}

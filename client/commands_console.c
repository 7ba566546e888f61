/* pvsh console: the domain's serial console through the daemon (API method domain.console).
 *
 * As virsh: "Connected to domain 'NAME'", the terminal in raw mode, Ctrl-] detaches (exit 0),
 * --force takes the console from another client. The terminal is restored on every exit,
 * also when a signal ends pvsh. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "pvsh.h"

#define CONSOLE_ESCAPE 0x1d /* Ctrl-] */

static struct {
    bool saved;
    int fd;
    struct termios termios;
} saved_terminal;

static void restore_terminal(void)
{
    if (saved_terminal.saved) {
        tcsetattr(saved_terminal.fd, TCSADRAIN, &saved_terminal.termios);
        saved_terminal.saved = false;
    }
}

static const int restore_signals[] = {SIGTERM, SIGHUP, SIGQUIT, SIGINT, SIGPIPE};

/* Restores the terminal and dies of the signal (async-signal-safe calls only). */
static void on_fatal_signal(int signal_number)
{
    if (saved_terminal.saved)
        tcsetattr(saved_terminal.fd, TCSADRAIN, &saved_terminal.termios);
    signal(signal_number, SIG_DFL);
    raise(signal_number);
}

static int make_raw(int fd, struct sigaction *previous)
{
    if (!isatty(fd))
        return 0;
    if (tcgetattr(fd, &saved_terminal.termios) < 0)
        return -errno;
    struct termios raw = saved_terminal.termios;
    cfmakeraw(&raw);
    saved_terminal.fd = fd;
    saved_terminal.saved = true;
    struct sigaction action = {.sa_handler = on_fatal_signal};
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < sizeof(restore_signals) / sizeof(restore_signals[0]); i++)
        if (sigaction(restore_signals[i], &action, &previous[i]) < 0)
            return -errno;
    /* TCSANOW: keystrokes typed ahead stay (TCSAFLUSH would drop them). */
    if (tcsetattr(fd, TCSANOW, &raw) < 0) {
        saved_terminal.saved = false;
        return -errno;
    }
    return 0;
}

static void leave_raw(const struct sigaction *previous)
{
    bool was_raw = saved_terminal.saved;
    restore_terminal();
    if (was_raw)
        for (size_t i = 0; i < sizeof(restore_signals) / sizeof(restore_signals[0]); i++)
            sigaction(restore_signals[i], &previous[i], NULL);
}

static int write_all(int fd, const char *data, size_t length)
{
    while (length > 0) {
        ssize_t written = write(fd, data, length);
        if (written < 0 && errno == EINTR)
            continue;
        if (written < 0)
            return -errno;
        data += written;
        length -= (size_t)written;
    }
    return 0;
}

/* Copies between the terminal and the console stream until Ctrl-], end of input or the
 * daemon closing the stream. 0 or -errno. */
static int relay(int input, int output, int stream, const char *early, size_t early_length)
{
    int rc = write_all(output, early, early_length);
    char buffer[4096];
    bool input_open = true;
    while (rc == 0) {
        struct pollfd fds[2] = {{.fd = stream, .events = POLLIN},
                                {.fd = input_open ? input : -1, .events = POLLIN}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (fds[0].revents) {
            ssize_t length = read(stream, buffer, sizeof(buffer));
            if (length < 0 && errno == EINTR)
                continue;
            if (length < 0)
                return -errno;
            if (length == 0)
                return 0; /* the domain stopped or another client took the console */
            rc = write_all(output, buffer, (size_t)length);
        }
        if (rc == 0 && fds[1].revents) {
            ssize_t length = read(input, buffer, sizeof(buffer));
            if (length < 0 && errno == EINTR)
                continue;
            if (length < 0)
                return -errno;
            if (length == 0) {
                input_open = false; /* keep showing the guest's output */
                continue;
            }
            char *escape = memchr(buffer, CONSOLE_ESCAPE, (size_t)length);
            size_t send = escape ? (size_t)(escape - buffer) : (size_t)length;
            rc = write_all(stream, buffer, send);
            if (escape)
                return rc;
        }
    }
    return rc;
}

int pvsh_run_console(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    struct json_writer params;
    json_writer_init(&params, false);
    json_writer_begin_object(&params);
    json_writer_member_string(&params, "domain", pvsh_argument_string(arguments, "domain"));
    if (pvsh_argument_bool(arguments, "force"))
        json_writer_member_bool(&params, "force", true);
    json_writer_end_object(&params);
    struct api_reply reply;
    int status = pvsh_call(context, "domain.console", &params, 0, &reply);
    json_writer_free(&params);
    if (status != PVSH_EXIT_SUCCESS)
        return status;
    const char *name = json_get_string(reply.result, "domain");
    fprintf(context->out, "Connected to domain '%s'\nEscape character is ^] (Ctrl + ])\n",
            name ? name : pvsh_argument_string(arguments, "domain"));
    api_reply_free(&reply);
    fflush(context->out);

    /* The API connection is the console stream now: it goes away with this command. */
    struct api_client *client = context->client;
    context->client = NULL;
    char early[4096];
    size_t early_length = api_client_take_buffered(client, early, sizeof(early));
    struct sigaction previous[sizeof(restore_signals) / sizeof(restore_signals[0])];
    int output = fileno(context->out);
    int rc = make_raw(STDIN_FILENO, previous);
    if (rc == 0)
        rc = relay(STDIN_FILENO, output, api_client_fd(client), early, early_length);
    leave_raw(previous);
    api_client_close(client);
    if (rc < 0)
        return pvsh_report_error(context, "internal", "console: %s", strerror(-rc));
    fputc('\n', context->out);
    return PVSH_EXIT_SUCCESS;
}

const struct pvsh_option pvsh_console_options[] = {
    {"domain", PVSH_OPTION_STRING, PVSH_POSITIONAL | PVSH_REQUIRED, "domain name or uuid"},
    {"force", PVSH_OPTION_BOOL, 0,
     "force console connection (disconnect already connected sessions)"},
    {NULL},
};

/* pvsh monitoring and miscellaneous commands: event, qemu-monitor-command, version, help. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pvsh.h"

#ifndef PLUGVIRT_VERSION
#define PLUGVIRT_VERSION "unknown"
#endif

/* --- event ------------------------------------------------------------------------------- */

static volatile sig_atomic_t event_interrupted;

static void on_interrupt(int signal_number)
{
    event_interrupted = 1;
}

/* "2024-01-02 03:04:05.678+0000" from the event's timestamp: seconds (number), an
 * object {"seconds", "microseconds"} (QMP's form) or a string kept as it is. */
static void format_timestamp(yajl_val timestamp, char *text, size_t size)
{
    double seconds = 0;
    int64_t whole = 0;
    int64_t micro = 0;
    if (timestamp && YAJL_IS_STRING(timestamp)) {
        snprintf(text, size, "%s", YAJL_GET_STRING(timestamp));
        return;
    }
    if (timestamp && YAJL_IS_NUMBER(timestamp) && json_value_int64(timestamp, &whole)) {
        seconds = (double)whole;
    } else if (timestamp && YAJL_IS_NUMBER(timestamp)) {
        seconds = YAJL_GET_DOUBLE(timestamp);
    } else if (timestamp && YAJL_IS_OBJECT(timestamp) &&
               json_get_int64(timestamp, "seconds", &whole)) {
        json_get_int64(timestamp, "microseconds", &micro);
        seconds = (double)whole + (double)micro / 1e6;
    } else {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        seconds = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    }
    time_t when = (time_t)seconds;
    struct tm utc;
    gmtime_r(&when, &utc);
    char date[32];
    strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &utc);
    snprintf(text, size, "%s.%03d+0000", date, (int)((seconds - (double)when) * 1000) % 1000);
}

static void print_event(struct pvsh_context *context, yajl_val event, bool timestamp)
{
    if (context->json) {
        pvsh_print_json(context, event);
        fflush(context->out);
        return;
    }
    if (timestamp) {
        char text[64];
        format_timestamp(json_object_get(event, "timestamp"), text, sizeof(text));
        fprintf(context->out, "%s: ", text);
    }
    const char *name = json_get_string(event, "event");
    const char *domain = json_get_string(event, "domain");
    fprintf(context->out, "event '%s' for domain '%s'", name ? name : "?", domain ? domain : "?");
    yajl_val detail = json_object_get(event, "detail");
    if (detail && YAJL_IS_STRING(detail)) {
        fprintf(context->out, ": %s", YAJL_GET_STRING(detail));
    } else if (detail && !YAJL_IS_NULL(detail)) {
        struct json_writer writer;
        json_writer_init(&writer, false);
        json_writer_value(&writer, detail);
        const char *text = json_writer_text(&writer);
        if (text)
            fprintf(context->out, ": %s", text);
        json_writer_free(&writer);
    }
    fputc('\n', context->out);
    fflush(context->out);
}

static int run_event(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    const char *domain = pvsh_argument_string(arguments, "domain");
    const char *only_event = pvsh_argument_string(arguments, "event");
    bool loop = pvsh_argument_bool(arguments, "loop");
    bool timestamp = pvsh_argument_bool(arguments, "timestamp");
    unsigned long long timeout_seconds = 0;
    struct pv_error error = {0};
    int has_timeout =
        pvsh_argument_uint(arguments, "timeout", 365ull * 24 * 3600, &timeout_seconds, &error);
    if (has_timeout < 0)
        return pvsh_report_error(context, "invalid-argument", "%s", error.message);

    struct json_writer params;
    json_writer_init(&params, false);
    json_writer_begin_object(&params);
    if (domain)
        json_writer_member_string(&params, "domain", domain);
    json_writer_end_object(&params);
    struct api_reply reply;
    int status = pvsh_call(context, "events.subscribe", &params, 0, &reply);
    json_writer_free(&params);
    if (status != PVSH_EXIT_SUCCESS)
        return status;
    api_reply_free(&reply);

    /* Ctrl-C ends the loop (as in virsh) instead of killing pvsh mid-line. */
    struct sigaction interrupt_action = {.sa_handler = on_interrupt};
    struct sigaction previous_action;
    sigemptyset(&interrupt_action.sa_mask);
    sigaction(SIGINT, &interrupt_action, &previous_action);
    event_interrupted = 0;

    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    unsigned count = 0;
    const char *ending = NULL;
    for (;;) {
        int wait_ms = -1;
        if (has_timeout == 0) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            long long elapsed_ms =
                (now.tv_sec - start.tv_sec) * 1000LL + (now.tv_nsec - start.tv_nsec) / 1000000;
            long long left = (long long)timeout_seconds * 1000 - elapsed_ms;
            if (left <= 0) {
                ending = "event loop timed out";
                break;
            }
            wait_ms = left > 0x7fffffff ? 0x7fffffff : (int)left;
        }
        yajl_val event = NULL;
        int ret = api_client_read_event(context->client, wait_ms, &event, &error);
        if (event_interrupted || ret == -EINTR) {
            ending = "event loop interrupted";
            break;
        }
        if (ret == -ETIMEDOUT) {
            ending = "event loop timed out";
            break;
        }
        if (ret < 0) {
            sigaction(SIGINT, &previous_action, NULL);
            api_client_close(context->client);
            context->client = NULL;
            return pvsh_report_error(context, "connection-failed", "%s", error.message);
        }
        const char *name = json_get_string(event, "event");
        if (!only_event || (name && strcmp(name, only_event) == 0)) {
            print_event(context, event, timestamp);
            count++;
        }
        yajl_tree_free(event);
        if (count > 0 && !loop)
            break;
    }
    sigaction(SIGINT, &previous_action, NULL);
    /* The subscription lives as long as the connection: drop it so that later commands
     * (interactive mode) do not receive events. */
    api_client_close(context->client);
    context->client = NULL;
    if (ending)
        pvsh_message(context, "%s\n", ending);
    pvsh_message(context, "events received: %u\n", count);
    return count > 0 ? PVSH_EXIT_SUCCESS : PVSH_EXIT_FAILURE;
}

/* --- qemu-monitor-command ---------------------------------------------------------------- */

static int run_qemu_monitor_command(struct pvsh_context *context,
                                    const struct pvsh_arguments *arguments)
{
    /* virsh joins the command words with spaces. */
    size_t length = 1;
    for (size_t i = 0; i < arguments->rest_count; i++)
        length += strlen(arguments->rest[i]) + 1;
    char *command = calloc(1, length);
    if (!command)
        return pvsh_report_error(context, "internal", "out of memory");
    for (size_t i = 0; i < arguments->rest_count; i++) {
        if (i > 0)
            strcat(command, " ");
        strcat(command, arguments->rest[i]);
    }
    bool hmp = pvsh_argument_bool(arguments, "hmp");
    struct json_writer params;
    json_writer_init(&params, false);
    json_writer_begin_object(&params);
    json_writer_member_string(&params, "domain", pvsh_argument_string(arguments, "domain"));
    json_writer_member_string(&params, "command", command);
    if (hmp)
        json_writer_member_bool(&params, "hmp", true);
    json_writer_end_object(&params);
    free(command);
    struct api_reply reply;
    int status = pvsh_call(context, "domain.qemu_monitor_command", &params, 0, &reply);
    json_writer_free(&params);
    if (status != PVSH_EXIT_SUCCESS)
        return status;
    if (context->json) {
        pvsh_print_json(context, reply.result);
    } else {
        const char *output = json_get_string(reply.result, "output");
        yajl_val qmp_reply = json_object_get(reply.result, "reply");
        if (output) {
            size_t output_length = strlen(output);
            fputs(output, context->out);
            if (output_length == 0 || output[output_length - 1] != '\n')
                fputc('\n', context->out);
        } else if (qmp_reply) {
            struct json_writer writer;
            json_writer_init(&writer, pvsh_argument_bool(arguments, "pretty"));
            json_writer_value(&writer, qmp_reply);
            const char *text = json_writer_text(&writer);
            if (text)
                fprintf(context->out, "%s\n", text);
            json_writer_free(&writer);
        }
    }
    api_reply_free(&reply);
    return PVSH_EXIT_SUCCESS;
}

/* --- version / help ---------------------------------------------------------------------- */

static int run_version(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    struct api_reply reply;
    if (!context->json)
        fprintf(context->out, "Compiled against library: plugvirt %s\n", PLUGVIRT_VERSION);
    int status = pvsh_call(context, "daemon.ping", NULL, 0, &reply);
    if (status != PVSH_EXIT_SUCCESS)
        return status;
    const char *daemon_version = json_get_string(reply.result, "version");
    if (context->json) {
        struct json_writer writer;
        json_writer_init(&writer, false);
        json_writer_begin_object(&writer);
        json_writer_member_string(&writer, "client", PLUGVIRT_VERSION);
        json_writer_member_string(&writer, "daemon", daemon_version ? daemon_version : "");
        json_writer_end_object(&writer);
        const char *text = json_writer_text(&writer);
        if (text)
            fprintf(context->out, "%s\n", text);
        json_writer_free(&writer);
    } else {
        fprintf(context->out, "Running daemon: plugvirtd %s\n",
                daemon_version ? daemon_version : "unknown");
    }
    api_reply_free(&reply);
    return PVSH_EXIT_SUCCESS;
}

static int run_help(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    return pvsh_print_help(context, pvsh_argument_string(arguments, "command"));
}

static const struct pvsh_option event_options[] = {
    {"domain", PVSH_OPTION_STRING, PVSH_POSITIONAL, "filter by domain name or uuid"},
    {"event", PVSH_OPTION_STRING, 0,
     "which event type to wait for (lifecycle, device-added, device-removed, ...)"},
    {"all", PVSH_OPTION_BOOL, 0, "wait for all events (the default)"},
    {"loop", PVSH_OPTION_BOOL, 0, "loop until timeout or interrupt, rather than one event"},
    {"timeout", PVSH_OPTION_STRING, 0, "timeout seconds"},
    {"timestamp", PVSH_OPTION_BOOL, 0, "show timestamp for each printed event"},
    {NULL},
};
static const struct pvsh_option qemu_monitor_command_options[] = {
    {"domain", PVSH_OPTION_STRING, PVSH_POSITIONAL | PVSH_REQUIRED, "domain name or uuid"},
    {"hmp", PVSH_OPTION_BOOL, 0, "command is in human monitor protocol"},
    {"pretty", PVSH_OPTION_BOOL, 0, "pretty-print any qemu monitor protocol output"},
    {"cmd", PVSH_OPTION_REST, PVSH_REQUIRED, "command"},
    {NULL},
};
static const struct pvsh_option no_options[] = {{NULL}};
static const struct pvsh_option help_options[] = {
    {"command", PVSH_OPTION_STRING, PVSH_POSITIONAL, "name of the command"},
    {NULL},
};

const struct pvsh_command pvsh_host_commands[] = {
    {"event", "Domain Events", event_options, run_event},
    {"qemu-monitor-command", "QEMU Monitor Command", qemu_monitor_command_options,
     run_qemu_monitor_command},
    {"version", "show version", no_options, run_version},
    {"help", "print help", help_options, run_help},
    {NULL},
};

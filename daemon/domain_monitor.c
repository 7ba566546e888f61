/* A running domain's VMM reached directly through the API: domain.monitor_command (a QMP
 * command, or HMP through human-monitor-command) and domain.console (its serial console). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "domains_internal.h"
#include "json_util.h"
#include "qmp_connection.h"

#define MONITOR_COMMAND_TIMEOUT_MS 30000

/* ----------------------------------------------------------- monitor command --- */

static void on_monitor_reply(struct domains *domains, const char *uuid,
                             const struct qmp_connection_reply *reply, void *context)
{
    struct simple_request *request = context;
    if (reply->status < 0) {
        domains_reply_qmp_failure(request->done, request->opaque, request->step, reply);
        free(request);
        return;
    }
    struct json_writer writer;
    json_writer_init(&writer, false);
    json_writer_begin_object(&writer);
    if (strcmp(request->step, "human-monitor-command") == 0) {
        yajl_val value = json_parse(reply->return_json, strlen(reply->return_json),
                                    DOMAINS_MAX_JSON, JSON_MAX_DEPTH, NULL);
        json_writer_member_string(&writer, "output",
                                  YAJL_IS_STRING(value) ? YAJL_GET_STRING(value) : "");
        if (value)
            yajl_tree_free(value);
    } else {
        json_writer_key(&writer, "reply");
        json_writer_begin_object(&writer);
        json_writer_key(&writer, "return");
        json_writer_json(&writer, reply->return_json ? reply->return_json : "{}");
        json_writer_end_object(&writer);
    }
    json_writer_end_object(&writer);
    domains_reply_writer(request->done, request->opaque, &writer);
    free(request);
}

void domains_monitor_command(struct domains *domains, const char *key, const char *command,
                             bool hmp, domains_done_fn done, void *opaque)
{
    if (command == NULL) {
        domains_reply_error(done, opaque, "invalid-argument", "missing parameter 'command'");
        return;
    }
    struct runtime *runtime = domains_running_runtime(domains, key, done, opaque);
    if (runtime == NULL)
        return;
    struct simple_request *request = calloc(1, sizeof(*request));
    if (request == NULL) {
        domains_reply_error(done, opaque, "internal", "out of memory");
        return;
    }
    request->done = done;
    request->opaque = opaque;
    if (hmp) {
        snprintf(request->step, sizeof(request->step), "human-monitor-command");
        struct json_writer arguments;
        json_writer_init(&arguments, false);
        json_writer_begin_object(&arguments);
        json_writer_member_string(&arguments, "command-line", command);
        json_writer_end_object(&arguments);
        runtime_execute(runtime, "human-monitor-command", json_writer_text(&arguments),
                        MONITOR_COMMAND_TIMEOUT_MS, on_monitor_reply, request);
        json_writer_free(&arguments);
        return;
    }
    struct pv_error error = {0};
    yajl_val root = json_parse(command, strlen(command), DOMAINS_MAX_JSON, JSON_MAX_DEPTH, &error);
    const char *execute = root ? json_get_string(root, "execute") : NULL;
    if (execute == NULL) {
        domains_reply_error(done, opaque, "invalid-argument",
                            "the command must be a QMP command object {\"execute\": ...}%s%s",
                            root ? "" : ": ", root ? "" : error.message);
        free(request);
        if (root)
            yajl_tree_free(root);
        return;
    }
    snprintf(request->step, sizeof(request->step), "%s", execute);
    yajl_val arguments = json_get_object(root, "arguments");
    char *arguments_json = NULL;
    if (arguments) {
        struct json_writer writer;
        json_writer_init(&writer, false);
        json_writer_value(&writer, arguments);
        arguments_json = json_writer_steal(&writer);
    }
    runtime_execute(runtime, execute, arguments_json, MONITOR_COMMAND_TIMEOUT_MS, on_monitor_reply,
                    request);
    free(arguments_json);
    yajl_tree_free(root);
}

/* ------------------------------------------------------------------- console --- */

struct console *domains_console(struct domains *domains, const char *key, domains_done_fn done,
                                void *opaque)
{
    struct runtime *runtime = domains_running_runtime(domains, key, done, opaque);
    if (runtime && runtime->console == NULL)
        domains_reply_error(done, opaque, "operation-failed",
                            "operation failed: the serial console of domain '%s' is not reachable "
                            "(its VMM was started by an older plugvirtd)",
                            runtime->name);
    return runtime ? runtime->console : NULL;
}

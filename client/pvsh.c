/* pvsh: global options, command dispatch, the daemon connection and the prompt. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pvsh.h"

#ifndef PLUGVIRT_VERSION
#define PLUGVIRT_VERSION "unknown"
#endif

static const struct pvsh_command *const command_tables[] = {
    pvsh_domain_commands,
    pvsh_device_commands,
    pvsh_interface_commands,
    pvsh_host_commands,
};
static const char *const command_table_titles[] = {
    "Domain Management",
    "Device Management",
    "Network Interfaces",
    "Monitoring and Miscellaneous",
};
#define COMMAND_TABLE_COUNT (sizeof(command_tables) / sizeof(command_tables[0]))

const struct pvsh_command *pvsh_find_command(const char *name)
{
    for (size_t table = 0; table < COMMAND_TABLE_COUNT; table++) {
        for (const struct pvsh_command *command = command_tables[table]; command->name; command++) {
            if (strcmp(command->name, name) == 0)
                return command;
        }
    }
    return NULL;
}

int pvsh_call(struct pvsh_context *context, const char *method, struct json_writer *params,
              int timeout_ms, struct api_reply *reply)
{
    struct pv_error error = {0};
    memset(reply, 0, sizeof(*reply));
    if (!context->client) {
        context->client = api_client_connect(context->socket_path, &error);
        if (!context->client)
            return pvsh_report_error(context, "connection-failed", "%s", error.message);
    }
    const char *params_text = NULL;
    if (params) {
        params_text = json_writer_text(params);
        if (!params_text)
            return pvsh_report_error(context, "internal", "out of memory");
    }
    int ret =
        api_client_call(context->client, method, params_text,
                        timeout_ms > 0 ? timeout_ms : context->reply_timeout_ms, reply, &error);
    if (ret < 0) {
        /* The connection state is unknown (a late reply may still come): start afresh
         * on the next command. */
        api_client_close(context->client);
        context->client = NULL;
        return pvsh_report_error(context, ret == -ETIMEDOUT ? "timeout" : "connection-failed", "%s",
                                 error.message);
    }
    if (reply->error_code) {
        pvsh_report_reply_error(context, reply);
        api_reply_free(reply);
        return PVSH_EXIT_FAILURE;
    }
    return PVSH_EXIT_SUCCESS;
}

static void print_synopsis(struct pvsh_context *context, const struct pvsh_command *command)
{
    fprintf(context->out, "    %s", command->name);
    for (const struct pvsh_option *option = command->options; option && option->name; option++) {
        const char *open = option->flags & PVSH_REQUIRED ? "" : "[";
        const char *close = option->flags & PVSH_REQUIRED ? "" : "]";
        switch (option->kind) {
        case PVSH_OPTION_BOOL:
            fprintf(context->out, " [--%s]", option->name);
            break;
        case PVSH_OPTION_STRING:
            if (option->flags & PVSH_POSITIONAL)
                fprintf(context->out, " %s[--%s] <%s>%s", open, option->name, option->name, close);
            else
                fprintf(context->out, " %s--%s <%s>%s", open, option->name, option->name, close);
            break;
        case PVSH_OPTION_OPTIONAL_STRING:
            fprintf(context->out, " [--%s[=<%s>]]", option->name, option->name);
            break;
        case PVSH_OPTION_REST:
            fprintf(context->out, " %s<%s>...%s", open, option->name, close);
            break;
        }
    }
    fputc('\n', context->out);
}

int pvsh_print_help(struct pvsh_context *context, const char *command_name)
{
    if (!command_name) {
        fprintf(context->out, "Grouped commands:\n\n");
        for (size_t table = 0; table < COMMAND_TABLE_COUNT; table++) {
            fprintf(context->out, " %s:\n", command_table_titles[table]);
            for (const struct pvsh_command *command = command_tables[table]; command->name;
                 command++)
                fprintf(context->out, "    %-24s %s\n", command->name, command->summary);
            fputc('\n', context->out);
        }
        fprintf(context->out, " Interactive mode:\n    %-24s %s\n", "quit, exit",
                "leave the interactive prompt");
        return PVSH_EXIT_SUCCESS;
    }
    const struct pvsh_command *command = pvsh_find_command(command_name);
    if (!command)
        return pvsh_report_error(context, "invalid-argument", "command '%s' doesn't exist",
                                 command_name);
    fprintf(context->out, "  NAME\n    %s - %s\n\n  SYNOPSIS\n", command->name, command->summary);
    print_synopsis(context, command);
    if (command->options && command->options[0].name) {
        fprintf(context->out, "\n  OPTIONS\n");
        for (const struct pvsh_option *option = command->options; option->name; option++) {
            char label[96];
            if (option->kind == PVSH_OPTION_BOOL)
                snprintf(label, sizeof(label), "--%s", option->name);
            else if (option->kind == PVSH_OPTION_OPTIONAL_STRING)
                snprintf(label, sizeof(label), "--%s[=<%s>]", option->name, option->name);
            else if (option->kind == PVSH_OPTION_REST)
                snprintf(label, sizeof(label), "<%s>...", option->name);
            else if (option->flags & PVSH_POSITIONAL)
                snprintf(label, sizeof(label), "[--%s] <string>", option->name);
            else
                snprintf(label, sizeof(label), "--%s <string>", option->name);
            fprintf(context->out, "    %-26s %s\n", label, option->help);
        }
    }
    return PVSH_EXIT_SUCCESS;
}

int pvsh_run_command(struct pvsh_context *context, int count, char **words)
{
    const struct pvsh_command *command = pvsh_find_command(words[0]);
    int status;
    if (!command) {
        status = pvsh_report_error(context, "invalid-argument", "unknown command: '%s'", words[0]);
    } else {
        struct pvsh_arguments arguments;
        struct pv_error error = {0};
        if (pvsh_arguments_parse(command, count, words, &arguments, &error) < 0) {
            status = pvsh_report_error(context, "invalid-argument", "%s", error.message);
        } else {
            status = command->run(context, &arguments);
            pvsh_arguments_free(&arguments);
        }
    }
    /* virsh ends the output of every command with an empty line, unless quiet. */
    if (!context->quiet && !context->json)
        fputc('\n', context->out);
    fflush(context->out);
    return status;
}

static void print_usage(FILE *out)
{
    fprintf(out,
            "pvsh [options]... [<command_string>]\n"
            "pvsh [options]... <command> [args...]\n\n"
            "  options:\n"
            "    -c | --connect=SOCKET   plugvirtd socket (default $PLUGVIRT_SOCKET or %s)\n"
            "    -r | --readonly         use the read-only socket (%s)\n"
            "    --json                  print results (and errors) as JSON on stdout\n"
            "    -q | --quiet            quiet mode\n"
            "    -h | --help             this help\n"
            "    -v | --version          program version\n\n"
            "  commands (non interactive mode):\n\n",
            API_CLIENT_DEFAULT_SOCKET, API_CLIENT_DEFAULT_READONLY_SOCKET);
}

static int run_interactive(struct pvsh_context *context, FILE *in)
{
    bool terminal = isatty(fileno(in)) == 1;
    int status = PVSH_EXIT_SUCCESS;
    context->interactive = true;
    if (terminal && !context->quiet)
        fprintf(context->out, "Welcome to pvsh, the plugvirt interactive terminal.\n\n"
                              "Type:  'help' for help with commands\n"
                              "       'quit' to quit\n\n");
    char *line = NULL;
    size_t capacity = 0;
    for (;;) {
        if (terminal) {
            fputs("pvsh # ", context->out);
            fflush(context->out);
        }
        if (getline(&line, &capacity, in) < 0) {
            if (terminal)
                fputc('\n', context->out);
            break;
        }
        const char *next = line;
        bool quit = false;
        while (next && !quit) {
            struct pv_error error = {0};
            int count = 0;
            char **words = pvsh_split_line(next, &count, &next, &error);
            if (!words) {
                status = pvsh_report_error(context, "invalid-argument", "%s", error.message);
                break;
            }
            if (count > 0) {
                if (strcmp(words[0], "quit") == 0 || strcmp(words[0], "exit") == 0)
                    quit = true;
                else
                    status = pvsh_run_command(context, count, words);
            }
            pvsh_words_free(words);
        }
        if (quit)
            break;
    }
    free(line);
    return status;
}

int pvsh_run(int argc, char **argv, FILE *in, FILE *out, FILE *err)
{
    struct pvsh_context context = {
        .out = out,
        .err = err,
        .reply_timeout_ms = PVSH_DEFAULT_REPLY_TIMEOUT_MS,
    };
    const char *socket_path = getenv("PLUGVIRT_SOCKET");
    if (socket_path && !*socket_path)
        socket_path = NULL;
    bool readonly = false;
    const char *explicit_socket = NULL;
    int index = 1;
    for (; index < argc; index++) {
        const char *word = argv[index];
        if (strcmp(word, "-c") == 0 || strcmp(word, "--connect") == 0) {
            if (index + 1 >= argc) {
                pvsh_report_error(&context, "invalid-argument", "option %s requires a socket",
                                  word);
                return PVSH_EXIT_FAILURE;
            }
            explicit_socket = argv[++index];
        } else if (strncmp(word, "--connect=", 10) == 0) {
            explicit_socket = word + 10;
        } else if (strcmp(word, "--json") == 0) {
            context.json = true;
        } else if (strcmp(word, "-q") == 0 || strcmp(word, "--quiet") == 0) {
            context.quiet = true;
        } else if (strcmp(word, "-r") == 0 || strcmp(word, "--readonly") == 0) {
            readonly = true;
        } else if (strcmp(word, "-h") == 0 || strcmp(word, "--help") == 0) {
            print_usage(out);
            pvsh_print_help(&context, NULL);
            return PVSH_EXIT_SUCCESS;
        } else if (strcmp(word, "-v") == 0 || strcmp(word, "--version") == 0) {
            fprintf(out, "%s\n", PLUGVIRT_VERSION);
            return PVSH_EXIT_SUCCESS;
        } else if (strcmp(word, "--") == 0) {
            index++;
            break;
        } else if (word[0] == '-') {
            pvsh_report_error(&context, "invalid-argument", "unsupported option '%s'. See --help.",
                              word);
            return PVSH_EXIT_FAILURE;
        } else {
            break;
        }
    }
    if (explicit_socket)
        context.socket_path = explicit_socket;
    else if (readonly)
        context.socket_path = API_CLIENT_DEFAULT_READONLY_SOCKET;
    else
        context.socket_path = socket_path ? socket_path : API_CLIENT_DEFAULT_SOCKET;

    int status;
    if (index < argc)
        status = pvsh_run_command(&context, argc - index, argv + index);
    else
        status = run_interactive(&context, in);
    api_client_close(context.client);
    fflush(out);
    fflush(err);
    return status;
}

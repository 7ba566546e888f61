/* pvsh: argument parsing, word splitting, virsh's output formats, the disk XML it builds,
 * and end-to-end runs of pvsh_run() against a scripted fake daemon on a unix socket that
 * checks every request pvsh sends. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "pvsh.h"

/* Script steps list only the members they use (most send no events afterwards). */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* --- argument parsing ------------------------------------------------------------------- */

static const struct pvsh_option test_options[] = {
    {"domain", PVSH_OPTION_STRING, PVSH_POSITIONAL | PVSH_REQUIRED, "domain"},
    {"target", PVSH_OPTION_STRING, PVSH_POSITIONAL, "target"},
    {"live", PVSH_OPTION_BOOL, 0, "live"},
    {"cache", PVSH_OPTION_STRING, 0, "cache"},
    {"wait", PVSH_OPTION_OPTIONAL_STRING, 0, "wait"},
    {NULL},
};
static int run_nothing(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    return 0;
}
static const struct pvsh_command test_command = {"try", "a test command", test_options,
                                                 run_nothing};

static int parse(struct pvsh_arguments *arguments, struct pv_error *error, const char **words)
{
    int count = 0;
    while (words[count])
        count++;
    return pvsh_arguments_parse(&test_command, count, (char **)words, arguments, error);
}

Test(pvsh_arguments, positional_named_and_equals_forms)
{
    struct pvsh_arguments arguments;
    struct pv_error error = {0};
    const char *words[] = {"try", "--cache=none", "demo", "--live", "--target", "vdb", NULL};
    cr_assert_eq(parse(&arguments, &error, words), 0, "%s", error.message);
    cr_expect_str_eq(pvsh_argument_string(&arguments, "domain"), "demo");
    cr_expect_str_eq(pvsh_argument_string(&arguments, "target"), "vdb");
    cr_expect_str_eq(pvsh_argument_string(&arguments, "cache"), "none");
    cr_expect(pvsh_argument_bool(&arguments, "live"));
    cr_expect_null(pvsh_argument_string(&arguments, "wait"));
    pvsh_arguments_free(&arguments);
}

Test(pvsh_arguments, optional_value_only_with_equals)
{
    struct pvsh_arguments arguments;
    struct pv_error error = {0};
    const char *bare[] = {"try", "demo", "--wait", "vdb", NULL};
    cr_assert_eq(parse(&arguments, &error, bare), 0, "%s", error.message);
    cr_expect_str_eq(pvsh_argument_string(&arguments, "wait"), "");
    cr_expect_str_eq(pvsh_argument_string(&arguments, "target"), "vdb");
    pvsh_arguments_free(&arguments);

    const char *valued[] = {"try", "demo", "--wait=30", NULL};
    cr_assert_eq(parse(&arguments, &error, valued), 0, "%s", error.message);
    unsigned long long seconds = 0;
    cr_expect_eq(pvsh_argument_uint(&arguments, "wait", 100, &seconds, &error), 0);
    cr_expect_eq(seconds, 30);
    cr_expect_eq(pvsh_argument_uint(&arguments, "cache", 100, &seconds, &error), 1);
    pvsh_arguments_free(&arguments);
}

Test(pvsh_arguments, errors_use_virsh_messages)
{
    struct pvsh_arguments arguments;
    struct pv_error error = {0};
    const char *missing[] = {"try", "--live", NULL};
    cr_expect_eq(parse(&arguments, &error, missing), -EINVAL);
    cr_expect_str_eq(error.message, "command 'try' requires <domain> option");
    const char *unknown[] = {"try", "demo", "--bogus", NULL};
    cr_expect_eq(parse(&arguments, &error, unknown), -EINVAL);
    cr_expect_str_eq(error.message, "command 'try' doesn't support option --bogus");
    const char *extra[] = {"try", "demo", "vdb", "more", NULL};
    cr_expect_eq(parse(&arguments, &error, extra), -EINVAL);
    cr_expect_str_eq(error.message, "unexpected data 'more'");
    const char *no_value[] = {"try", "demo", "--cache", NULL};
    cr_expect_eq(parse(&arguments, &error, no_value), -EINVAL);
    cr_expect_str_eq(error.message, "expected syntax: --cache <string>");
    const char *bool_value[] = {"try", "demo", "--live=yes", NULL};
    cr_expect_eq(parse(&arguments, &error, bool_value), -EINVAL);
    const char *twice[] = {"try", "demo", "--live", "--live", NULL};
    cr_expect_eq(parse(&arguments, &error, twice), -EINVAL);
}

Test(pvsh_arguments, double_dash_ends_options)
{
    struct pvsh_arguments arguments;
    struct pv_error error = {0};
    const char *words[] = {"try", "--", "--odd-name", NULL};
    cr_assert_eq(parse(&arguments, &error, words), 0, "%s", error.message);
    cr_expect_str_eq(pvsh_argument_string(&arguments, "domain"), "--odd-name");
    pvsh_arguments_free(&arguments);
}

Test(pvsh_arguments, numbers_are_checked)
{
    struct pvsh_arguments arguments;
    struct pv_error error = {0};
    const char *words[] = {"try", "demo", "--wait=12x", NULL};
    cr_assert_eq(parse(&arguments, &error, words), 0);
    unsigned long long value = 0;
    cr_expect_eq(pvsh_argument_uint(&arguments, "wait", 100, &value, &error), -EINVAL);
    cr_expect_str_eq(error.message,
                     "Numeric value '12x' for <wait> option is malformed or out of range");
    pvsh_arguments_free(&arguments);
}

/* --- word splitting --------------------------------------------------------------------- */

Test(pvsh_split, quotes_escapes_separators_and_comments)
{
    struct pv_error error = {0};
    const char *rest = NULL;
    int count = 0;
    char **words = pvsh_split_line("attach-disk 'my vm' \"/tmp/a \\\"b\\\".img\" vd\\ b ; list",
                                   &count, &rest, &error);
    cr_assert_not_null(words, "%s", error.message);
    cr_assert_eq(count, 4);
    cr_expect_str_eq(words[0], "attach-disk");
    cr_expect_str_eq(words[1], "my vm");
    cr_expect_str_eq(words[2], "/tmp/a \"b\".img");
    cr_expect_str_eq(words[3], "vd b");
    cr_expect_null(words[4]);
    cr_assert_not_null(rest);
    cr_expect_str_eq(rest, " list");
    pvsh_words_free(words);

    words = pvsh_split_line("  list --all # all of them", &count, &rest, &error);
    cr_assert_not_null(words);
    cr_expect_eq(count, 2);
    cr_expect_null(rest);
    pvsh_words_free(words);

    words = pvsh_split_line("echo ''", &count, &rest, &error);
    cr_assert_not_null(words);
    cr_expect_eq(count, 2);
    cr_expect_str_eq(words[1], "");
    pvsh_words_free(words);

    words = pvsh_split_line("   ", &count, &rest, &error);
    cr_assert_not_null(words);
    cr_expect_eq(count, 0);
    pvsh_words_free(words);
}

Test(pvsh_split, unterminated_quotes_fail)
{
    struct pv_error error = {0};
    const char *rest = NULL;
    int count = 0;
    cr_expect_null(pvsh_split_line("start 'demo", &count, &rest, &error));
    cr_expect_str_eq(error.message, "missing '");
    cr_expect_null(pvsh_split_line("start \"demo", &count, &rest, &error));
    cr_expect_str_eq(error.message, "missing \"");
}

/* --- tables ----------------------------------------------------------------------------- */

static char *table_text(const struct pvsh_table *table, bool header)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    cr_assert_not_null(out);
    cr_assert_eq(pvsh_table_print(table, header, out), 0);
    fclose(out);
    return text;
}

Test(pvsh_table, virsh_list_layout)
{
    static const char *const header[] = {"Id", "Name", "State"};
    struct pvsh_table table;
    pvsh_table_init(&table, 3, header);
    const char *row[] = {"1", "demo", "running"};
    pvsh_table_add_row(&table, row);
    char *text = table_text(&table, true);
    /* The exact output of virsh list for one running domain (libvirt's virshtest). */
    cr_expect_str_eq(text, " Id   Name   State\n----------------------\n 1    demo   running\n");
    free(text);
    text = table_text(&table, false);
    cr_expect_str_eq(text, " 1   demo   running\n");
    free(text);
    pvsh_table_free(&table);
}

Test(pvsh_table, widths_follow_content_and_missing_cells_print_dashes)
{
    static const char *const header[] = {"Target", "Source"};
    struct pvsh_table table;
    pvsh_table_init(&table, 2, header);
    const char *first[] = {"vda", "/var/lib/plugvirt/images/root.img"};
    const char *second[] = {"vdb", NULL};
    const char *third[] = {"vdc", "tab\there"};
    pvsh_table_add_row(&table, first);
    pvsh_table_add_row(&table, second);
    pvsh_table_add_row(&table, third);
    char *text = table_text(&table, true);
    cr_expect_str_eq(text, " Target   Source\n"
                           "---------------------------------------------\n"
                           " vda      /var/lib/plugvirt/images/root.img\n"
                           " vdb      -\n"
                           " vdc      tab\\x09here\n");
    free(text);
    pvsh_table_free(&table);
}

/* --- disk XML --------------------------------------------------------------------------- */

Test(pvsh_disk_xml, full_and_minimal_forms)
{
    struct pv_error error = {0};
    struct pvsh_disk_options options = {
        .source = "/tmp/scratch.img",
        .target = "vdb",
        .driver = "qemu",
        .subdriver = "raw",
        .cache = "none",
        .io = "native",
        .serial = "S<1>",
        .target_bus = "virtio",
        .mode = "readonly",
    };
    char *xml = pvsh_build_disk_xml(&options, &error);
    cr_assert_not_null(xml, "%s", error.message);
    cr_expect_str_eq(xml, "<disk type='file' device='disk'>\n"
                          "  <driver name='qemu' type='raw' cache='none' io='native'/>\n"
                          "  <source file='/tmp/scratch.img'/>\n"
                          "  <target dev='vdb' bus='virtio'/>\n"
                          "  <serial>S&lt;1&gt;</serial>\n"
                          "  <readonly/>\n"
                          "</disk>\n");
    free(xml);

    struct pvsh_disk_options minimal = {.source = "/dev/null-ish'", .target = "vdc"};
    xml = pvsh_build_disk_xml(&minimal, &error);
    cr_assert_not_null(xml);
    cr_expect_str_eq(xml, "<disk type='file' device='disk'>\n"
                          "  <source file='/dev/null-ish&apos;'/>\n"
                          "  <target dev='vdc'/>\n"
                          "</disk>\n");
    free(xml);
}

Test(pvsh_disk_xml, block_devices_and_bad_values)
{
    struct pv_error error = {0};
    struct pvsh_disk_options options = {
        .source = "/dev/loop0", .target = "vdb", .source_type = "block"};
    char *xml = pvsh_build_disk_xml(&options, &error);
    cr_assert_not_null(xml);
    cr_expect(strstr(xml, "<disk type='block' device='disk'>") != NULL);
    cr_expect(strstr(xml, "<source dev='/dev/loop0'/>") != NULL);
    free(xml);

    options.source_type = "network";
    cr_expect_null(pvsh_build_disk_xml(&options, &error));
    cr_expect_str_eq(error.message, "Unknown source type: 'network'");
    options.source_type = NULL;
    options.mode = "writable";
    cr_expect_null(pvsh_build_disk_xml(&options, &error));
    cr_expect_str_eq(error.message, "No support for writable in command 'attach-disk'");
}

/* --- the scripted fake daemon ----------------------------------------------------------- */

/* One expected request and the answer. `params` is compared with the received params in
 * json_writer's compact layout; `reply` is the reply's members after the id (e.g.
 * "\"result\": null"); `after` are lines sent after the reply (events). */
struct fake_step {
    const char *method;
    const char *params;
    const char *reply;
    const char *after[3];
};

struct fake_daemon {
    char directory[64];
    char socket_path[128];
    int listen_fd;
    pthread_t thread;
    const struct fake_step *steps;
    size_t step_count;
    size_t steps_done;
    volatile bool stop;
    char failure[1024];
};

static void fake_fail(struct fake_daemon *daemon, const char *what, const char *line)
{
    if (!daemon->failure[0])
        snprintf(daemon->failure, sizeof(daemon->failure), "step %zu: %s (got: %s)",
                 daemon->steps_done, what, line);
}

static void send_line(int fd, const char *text)
{
    size_t length = strlen(text);
    while (length > 0) {
        ssize_t written = send(fd, text, length, MSG_NOSIGNAL);
        if (written <= 0)
            return;
        text += written;
        length -= (size_t)written;
    }
}

static void handle_request(struct fake_daemon *daemon, int fd, const char *line)
{
    struct pv_error error = {0};
    yajl_val request = json_parse(line, strlen(line), 1 << 24, 64, &error);
    uint64_t id = 0;
    if (!request || !json_get_uint64(request, "id", &id)) {
        fake_fail(daemon, "not a request with an id", line);
        yajl_tree_free(request);
        return;
    }
    char head[64];
    snprintf(head, sizeof(head), "{\"id\": %llu, ", (unsigned long long)id);
    if (daemon->steps_done >= daemon->step_count) {
        fake_fail(daemon, "unexpected request", line);
        send_line(fd, head);
        send_line(fd, "\"error\": {\"code\": \"internal\", \"message\": \"unexpected\"}}\n");
        yajl_tree_free(request);
        return;
    }
    const struct fake_step *step = &daemon->steps[daemon->steps_done];
    const char *method = json_get_string(request, "method");
    struct json_writer params;
    json_writer_init(&params, false);
    json_writer_value(&params, json_object_get(request, "params"));
    if (!method || strcmp(method, step->method) != 0)
        fake_fail(daemon, step->method, line);
    else if (strcmp(json_writer_text(&params), step->params) != 0)
        fake_fail(daemon, step->params, json_writer_text(&params));
    json_writer_free(&params);
    yajl_tree_free(request);
    daemon->steps_done++;
    send_line(fd, head);
    send_line(fd, step->reply);
    send_line(fd, "}\n");
    for (size_t i = 0; i < 3 && step->after[i]; i++) {
        send_line(fd, step->after[i]);
        send_line(fd, "\n");
    }
}

static void serve_connection(struct fake_daemon *daemon, int fd)
{
    char buffer[65536];
    size_t length = 0;
    while (!daemon->stop) {
        struct pollfd poll_fd = {.fd = fd, .events = POLLIN};
        if (poll(&poll_fd, 1, 50) <= 0)
            continue;
        ssize_t got = read(fd, buffer + length, sizeof(buffer) - 1 - length);
        if (got <= 0)
            return;
        length += (size_t)got;
        buffer[length] = '\0';
        char *newline;
        while ((newline = memchr(buffer, '\n', length))) {
            *newline = '\0';
            handle_request(daemon, fd, buffer);
            size_t used = (size_t)(newline - buffer) + 1;
            memmove(buffer, newline + 1, length - used);
            length -= used;
        }
    }
}

static void *fake_daemon_thread(void *opaque)
{
    struct fake_daemon *daemon = opaque;
    while (!daemon->stop) {
        struct pollfd poll_fd = {.fd = daemon->listen_fd, .events = POLLIN};
        if (poll(&poll_fd, 1, 50) <= 0)
            continue;
        int fd = accept(daemon->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        serve_connection(daemon, fd);
        close(fd);
    }
    return NULL;
}

static void fake_daemon_start(struct fake_daemon *daemon, const struct fake_step *steps,
                              size_t step_count)
{
    memset(daemon, 0, sizeof(*daemon));
    strcpy(daemon->directory, "/tmp/pvsh-test-XXXXXX");
    cr_assert_not_null(mkdtemp(daemon->directory));
    snprintf(daemon->socket_path, sizeof(daemon->socket_path), "%s/plugvirtd.sock",
             daemon->directory);
    daemon->steps = steps;
    daemon->step_count = step_count;
    daemon->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    cr_assert_geq(daemon->listen_fd, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strcpy(address.sun_path, daemon->socket_path);
    cr_assert_eq(bind(daemon->listen_fd, (struct sockaddr *)&address, sizeof(address)), 0);
    cr_assert_eq(listen(daemon->listen_fd, 4), 0);
    cr_assert_eq(pthread_create(&daemon->thread, NULL, fake_daemon_thread, daemon), 0);
}

/* Stops the daemon and checks that every step happened as scripted. */
static void fake_daemon_finish(struct fake_daemon *daemon)
{
    daemon->stop = true;
    pthread_join(daemon->thread, NULL);
    close(daemon->listen_fd);
    unlink(daemon->socket_path);
    rmdir(daemon->directory);
    cr_expect_eq(daemon->failure[0], '\0', "%s", daemon->failure);
    cr_expect_eq(daemon->steps_done, daemon->step_count, "%zu of %zu requests were made",
                 daemon->steps_done, daemon->step_count);
}

struct pvsh_result {
    int status;
    char *out;
    char *err;
};

/* Runs pvsh with "-c <socket>" prepended; `input` feeds interactive mode. */
static struct pvsh_result run_pvsh(struct fake_daemon *daemon, const char *input,
                                   const char **words)
{
    const char *argv[32] = {"pvsh", "-c", daemon->socket_path};
    int argc = 3;
    for (size_t i = 0; words[i]; i++)
        argv[argc++] = words[i];
    argv[argc] = NULL;
    struct pvsh_result result = {0};
    size_t out_size = 0;
    size_t err_size = 0;
    FILE *out = open_memstream(&result.out, &out_size);
    FILE *err = open_memstream(&result.err, &err_size);
    FILE *in = fmemopen((void *)(input ? input : ""), input ? strlen(input) + 1 : 1, "r");
    cr_assert(out && err && in);
    result.status = pvsh_run(argc, (char **)argv, in, out, err);
    fclose(in);
    fclose(out);
    fclose(err);
    return result;
}

static void result_free(struct pvsh_result *result)
{
    free(result->out);
    free(result->err);
}

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

/* --- end to end ------------------------------------------------------------------------- */

static const char list_reply[] =
    "\"result\": [{\"id\": null, \"name\": \"zeta\", \"uuid\": "
    "\"6f1f7a8e-0d7e-4d5e-9a3c-2a8d3f0b1c11\", \"state\": \"shut off\", \"persistent\": true, "
    "\"autostart\": false}, {\"id\": 4242, \"name\": \"demo\", \"uuid\": "
    "\"0c2e4a1b-3d5f-4e6a-8b7c-9d0e1f2a3b4c\", \"state\": \"running\", \"persistent\": true, "
    "\"autostart\": true}, {\"id\": null, \"name\": \"alpha\", \"uuid\": "
    "\"11111111-2222-4333-8444-555555555555\", \"state\": \"shut off\", \"persistent\": true, "
    "\"autostart\": false}]";

Test(pvsh_end_to_end, list_all_prints_virsh_table_in_virsh_order)
{
    const struct fake_step steps[] = {{"domain.list", "{\"all\": true}", list_reply}};
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result result = run_pvsh(&daemon, NULL, (const char *[]){"list", "--all", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 0);
    cr_expect_str_eq(result.out, " Id     Name    State\n"
                                 "--------------------------\n"
                                 " 4242   demo    running\n"
                                 " -      alpha   shut off\n"
                                 " -      zeta    shut off\n"
                                 "\n");
    cr_expect_str_eq(result.err, "");
    result_free(&result);
}

Test(pvsh_end_to_end, list_without_all_hides_inactive_and_name_prints_names)
{
    const struct fake_step steps[] = {{"domain.list", "{\"all\": false}", list_reply}};
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result result =
        run_pvsh(&daemon, NULL, (const char *[]){"-q", "list", "--name", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 0);
    cr_expect_str_eq(result.out, "demo\n");
    result_free(&result);
}

Test(pvsh_end_to_end, start_prints_virsh_message)
{
    const struct fake_step steps[] = {
        {"domain.start", "{\"domain\": \"demo\"}", "\"result\": null"}};
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result result = run_pvsh(&daemon, NULL, (const char *[]){"start", "demo", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 0);
    cr_expect_str_eq(result.out, "Domain 'demo' started\n\n");
    result_free(&result);
}

Test(pvsh_end_to_end, define_sends_the_file_and_names_it)
{
    char path[] = "/tmp/pvsh-define-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char *xml = "<domain type='kvm'>\n  <name>demo</name>\n</domain>\n";
    cr_assert_eq(write(fd, xml, strlen(xml)), (ssize_t)strlen(xml));
    close(fd);
    const struct fake_step steps[] = {
        {"domain.define", "{\"xml\": \"<domain type='kvm'>\\n  <name>demo</name>\\n</domain>\\n\"}",
         "\"result\": {\"uuid\": \"0c2e4a1b-3d5f-4e6a-8b7c-9d0e1f2a3b4c\", \"name\": \"demo\"}"}};
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result result = run_pvsh(&daemon, NULL, (const char *[]){"define", path, NULL});
    fake_daemon_finish(&daemon);
    unlink(path);
    cr_expect_eq(result.status, 0);
    char expected[128];
    snprintf(expected, sizeof(expected), "Domain 'demo' defined from %s\n\n", path);
    cr_expect_str_eq(result.out, expected);
    result_free(&result);
}

Test(pvsh_end_to_end, define_of_a_missing_file_sends_nothing)
{
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, NULL, 0);
    struct pvsh_result result =
        run_pvsh(&daemon, NULL, (const char *[]){"define", "/nonexistent/demo.xml", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 1);
    cr_expect_str_eq(result.err,
                     "error: Failed to open file '/nonexistent/demo.xml': No such file or "
                     "directory\n");
    result_free(&result);
}

Test(pvsh_end_to_end, undefine_managed_and_shutdown_timeout)
{
    const struct fake_step steps[] = {
        {"domain.undefine", "{\"domain\": \"demo\", \"managed\": true}", "\"result\": null"}};
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result result =
        run_pvsh(&daemon, NULL, (const char *[]){"undefine", "demo", "--managed", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 0);
    cr_expect_str_eq(result.out, "Domain 'demo' has been undefined\n\n");
    result_free(&result);

    const struct fake_step shutdown_steps[] = {
        {"domain.shutdown", "{\"domain\": \"demo\", \"timeout\": 7}", "\"result\": null"}};
    fake_daemon_start(&daemon, shutdown_steps, COUNT(shutdown_steps));
    result = run_pvsh(&daemon, NULL,
                      (const char *[]){"shutdown", "--domain", "demo", "--timeout", "7", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 0);
    cr_expect_str_eq(result.out, "Domain 'demo' is being shutdown\n\n");
    result_free(&result);
}

Test(pvsh_end_to_end, dominfo_and_domstate_layouts)
{
    const struct fake_step steps[] = {
        {"domain.info", "{\"domain\": \"demo\"}",
         "\"result\": {\"id\": 4242, \"name\": \"demo\", \"uuid\": "
         "\"0c2e4a1b-3d5f-4e6a-8b7c-9d0e1f2a3b4c\", \"os_type\": \"hvm\", \"state\": "
         "\"running\", \"vcpus\": 2, \"max_memory_kib\": 131072, \"memory_kib\": 131072, "
         "\"persistent\": true, \"autostart\": false}"},
        {"domain.state", "{\"domain\": \"demo\"}",
         "\"result\": {\"state\": \"running\", \"reason\": \"booted\"}"},
    };
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result result =
        run_pvsh(&daemon, "dominfo demo\ndomstate demo --reason\n", (const char *[]){NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 0);
    cr_expect_str_eq(result.out, "Id:             4242\n"
                                 "Name:           demo\n"
                                 "UUID:           0c2e4a1b-3d5f-4e6a-8b7c-9d0e1f2a3b4c\n"
                                 "OS Type:        hvm\n"
                                 "State:          running\n"
                                 "CPU(s):         2\n"
                                 "Max memory:     131072 KiB\n"
                                 "Used memory:    131072 KiB\n"
                                 "Persistent:     yes\n"
                                 "Autostart:      disable\n"
                                 "\n"
                                 "running (booted)\n"
                                 "\n");
    result_free(&result);
}

Test(pvsh_end_to_end, attach_disk_persistent_asks_the_state_and_sends_live_and_config)
{
    const struct fake_step steps[] = {
        {"domain.state", "{\"domain\": \"demo\"}",
         "\"result\": {\"state\": \"running\", \"reason\": \"booted\"}"},
        {"domain.attach_device",
         "{\"domain\": \"demo\", \"xml\": \"<disk type='file' device='disk'>\\n  <driver "
         "name='qemu' type='raw' cache='none'/>\\n  <source file='/tmp/scratch.img'/>\\n  "
         "<target dev='vdb'/>\\n  <serial>disk1</serial>\\n</disk>\\n\", \"flags\": [\"live\", "
         "\"config\"]}",
         "\"result\": {\"device\": \"virtio-disk1\", \"target\": \"vdb\", \"address\": "
         "\"0000:00:05.0\"}"},
    };
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result result =
        run_pvsh(&daemon, NULL,
                 (const char *[]){"attach-disk", "demo", "/tmp/scratch.img", "vdb", "--driver",
                                  "qemu", "--subdriver", "raw", "--cache", "none", "--serial",
                                  "disk1", "--persistent", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 0, "%s", result.err);
    cr_expect_str_eq(result.out, "Disk attached successfully\n\n");
    result_free(&result);
}

Test(pvsh_end_to_end, persistent_on_a_shut_off_domain_is_config_only)
{
    char path[] = "/tmp/pvsh-device-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char *xml = "<disk type='file'><source file='/x'/><target dev='vdc'/></disk>";
    cr_assert_eq(write(fd, xml, strlen(xml)), (ssize_t)strlen(xml));
    close(fd);
    const struct fake_step steps[] = {
        {"domain.state", "{\"domain\": \"demo\"}",
         "\"result\": {\"state\": \"shut off\", \"reason\": \"destroyed\"}"},
        {"domain.attach_device",
         "{\"domain\": \"demo\", \"xml\": \"<disk type='file'><source file='/x'/><target "
         "dev='vdc'/></disk>\", \"flags\": [\"config\"]}",
         "\"result\": {\"device\": \"virtio-disk2\", \"target\": \"vdc\"}"},
    };
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result result = run_pvsh(
        &daemon, NULL, (const char *[]){"attach-device", "demo", path, "--persistent", NULL});
    fake_daemon_finish(&daemon);
    unlink(path);
    cr_expect_eq(result.status, 0, "%s", result.err);
    cr_expect_str_eq(result.out, "Device attached successfully\n\n");
    result_free(&result);
}

Test(pvsh_end_to_end, current_with_live_is_refused_before_any_request)
{
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, NULL, 0);
    struct pvsh_result result = run_pvsh(
        &daemon, NULL,
        (const char *[]){"attach-disk", "demo", "/tmp/x.img", "vdb", "--current", "--live", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 1);
    cr_expect_str_eq(result.err, "error: Options --current and --live are mutually exclusive\n");
    result_free(&result);
}

Test(pvsh_end_to_end, detach_disk_pending_exits_2_and_wait_passes_the_timeout)
{
    const struct fake_step steps[] = {
        {"domain.blklist", "{\"domain\": \"demo\"}",
         "\"result\": [{\"target\": \"vda\", \"source\": \"/img/root.img\", \"type\": \"file\", "
         "\"device\": \"disk\"}, {\"target\": \"vdb\", \"source\": \"/tmp/scratch.img\", "
         "\"type\": \"file\", \"device\": \"disk\"}]"},
        {"domain.detach_device",
         "{\"domain\": \"demo\", \"xml\": \"<disk type='file' device='disk'>\\n  <source "
         "file='/tmp/scratch.img'/>\\n  <target dev='vdb'/>\\n</disk>\\n\", \"flags\": [\"live\"], "
         "\"timeout\": 30}",
         "\"result\": {\"status\": \"pending\", \"message\": \"detach requested; the guest has "
         "not released vdb yet\"}"},
    };
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result result = run_pvsh(
        &daemon, NULL, (const char *[]){"detach-disk", "demo", "vdb", "--live", "--wait=30", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 2);
    cr_expect_str_eq(result.out, "detach requested; the guest has not released vdb yet\n\n");
    cr_expect_str_eq(result.err, "");
    result_free(&result);
}

Test(pvsh_end_to_end, bad_wait_value_is_refused_before_any_request)
{
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, NULL, 0);
    struct pvsh_result result = run_pvsh(
        &daemon, NULL, (const char *[]){"detach-disk", "demo", "vdb", "--wait=soon", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 1);
    cr_expect_str_eq(
        result.err, "error: Numeric value 'soon' for <wait> option is malformed or out of range\n");
    result_free(&result);
}

Test(pvsh_end_to_end, detach_disk_config_reads_the_inactive_disks)
{
    const struct fake_step steps[] = {
        {"domain.blklist", "{\"domain\": \"demo\", \"inactive\": true}",
         "\"result\": [{\"target\": \"vdb\", \"source\": \"/dev/sdz\", \"type\": \"block\", "
         "\"device\": \"disk\"}]"},
        {"domain.detach_device",
         "{\"domain\": \"demo\", \"xml\": \"<disk type='block' device='disk'>\\n  <source "
         "dev='/dev/sdz'/>\\n  <target dev='vdb'/>\\n</disk>\\n\", \"flags\": [\"config\"]}",
         "\"result\": {\"status\": \"detached\"}"},
    };
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result result = run_pvsh(
        &daemon, NULL, (const char *[]){"detach-disk", "demo", "/dev/sdz", "--config", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 0, "%s", result.err);
    cr_expect_str_eq(result.out, "Disk detached successfully\n\n");
    result_free(&result);
}

Test(pvsh_end_to_end, detach_disk_of_an_unknown_target_fails)
{
    const struct fake_step steps[] = {
        {"domain.blklist", "{\"domain\": \"demo\"}", "\"result\": []"}};
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result result =
        run_pvsh(&daemon, NULL, (const char *[]){"detach-disk", "demo", "vdq", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 1);
    cr_expect_str_eq(result.err, "error: No disk found whose source path or target is vdq\n");
    result_free(&result);
}

Test(pvsh_end_to_end, daemon_errors_print_and_json_carries_class_and_step)
{
    static const char error_reply[] =
        "\"error\": {\"code\": \"qmp-error\", \"message\": \"device_add failed: Duplicate ID "
        "'virtio-disk1' for device\", \"qmp_class\": \"GenericError\", \"step\": "
        "\"device_add\"}";
    const struct fake_step steps[] = {
        {"domain.attach_device",
         "{\"domain\": \"demo\", \"xml\": \"<disk type='file' device='disk'>\\n  <source "
         "file='/tmp/s.img'/>\\n  <target dev='vdb'/>\\n</disk>\\n\", \"flags\": [\"live\"]}",
         error_reply}};
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result result =
        run_pvsh(&daemon, NULL,
                 (const char *[]){"--json", "attach-disk", "demo", "/tmp/s.img", "vdb", "--live",
                                  "--sourcetype", "file", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 1);
    cr_expect_str_eq(result.err,
                     "error: device_add failed: Duplicate ID 'virtio-disk1' for device\n");
    cr_expect_str_eq(result.out,
                     "{\"error\": {\"code\": \"qmp-error\", \"message\": \"device_add failed: "
                     "Duplicate ID 'virtio-disk1' for device\", \"qmp_class\": \"GenericError\", "
                     "\"step\": \"device_add\"}}\n");
    result_free(&result);
}

Test(pvsh_end_to_end, json_prints_the_result)
{
    const struct fake_step steps[] = {
        {"domain.state", "{\"domain\": \"demo\"}",
         "\"result\": {\"state\": \"paused\", \"reason\": \"user\"}"}};
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result result =
        run_pvsh(&daemon, NULL, (const char *[]){"--json", "domstate", "demo", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 0);
    cr_expect_str_eq(result.out, "{\"state\": \"paused\", \"reason\": \"user\"}\n");
    result_free(&result);
}

Test(pvsh_end_to_end, domblklist_details)
{
    const struct fake_step steps[] = {
        {"domain.blklist", "{\"domain\": \"demo\", \"inactive\": true}",
         "\"result\": [{\"target\": \"vda\", \"source\": \"/img/root.img\", \"type\": \"file\", "
         "\"device\": \"disk\"}, {\"target\": \"hdc\", \"source\": null, \"type\": \"file\", "
         "\"device\": \"cdrom\"}]"}};
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result result = run_pvsh(
        &daemon, NULL, (const char *[]){"domblklist", "demo", "--inactive", "--details", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 0);
    /* The inactive list has no hot-plug state: the State column says "-". */
    cr_expect_str_eq(result.out, " Type   Device   Target   Source          State\n"
                                 "-------------------------------------------------\n"
                                 " file   disk     vda      /img/root.img   -\n"
                                 " file   cdrom    hdc      -               -\n"
                                 "\n");
    result_free(&result);
}

Test(pvsh_end_to_end, qemu_monitor_command_joins_words)
{
    const struct fake_step steps[] = {
        {"domain.qemu_monitor_command",
         "{\"domain\": \"demo\", \"command\": \"info status\", \"hmp\": true}",
         "\"result\": {\"output\": \"VM status: running\\r\\n\"}"},
        {"domain.qemu_monitor_command",
         "{\"domain\": \"demo\", \"command\": \"{\\\"execute\\\": \\\"query-status\\\"}\"}",
         "\"result\": {\"reply\": {\"return\": {\"status\": \"running\", \"running\": true}}}"},
    };
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result result =
        run_pvsh(&daemon,
                 "qemu-monitor-command demo --hmp info status\n"
                 "qemu-monitor-command demo '{\"execute\": \"query-status\"}'\n",
                 (const char *[]){"-q", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 0, "%s", result.err);
    cr_expect_str_eq(result.out, "VM status: running\r\n"
                                 "{\"return\": {\"status\": \"running\", \"running\": true}}\n");
    result_free(&result);
}

Test(pvsh_end_to_end, event_prints_one_event_then_stops)
{
    const struct fake_step steps[] = {
        {"events.subscribe",
         "{\"domain\": \"demo\"}",
         "\"result\": {\"subscribed\": true}",
         {"{\"event\": \"lifecycle\", \"domain\": \"demo\", \"uuid\": "
          "\"0c2e4a1b-3d5f-4e6a-8b7c-9d0e1f2a3b4c\", \"detail\": \"Started Booted\", "
          "\"timestamp\": 1700000000.5}",
          "{\"event\": \"device-removed\", \"domain\": \"demo\", \"detail\": \"virtio-disk1\"}"}},
    };
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result result = run_pvsh(
        &daemon, NULL, (const char *[]){"event", "demo", "--timeout", "5", "--timestamp", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 0, "%s", result.err);
    cr_expect_str_eq(result.out, "2023-11-14 22:13:20.500+0000: event 'lifecycle' for domain "
                                 "'demo': Started Booted\n"
                                 "events received: 1\n"
                                 "\n");
    result_free(&result);
}

Test(pvsh_end_to_end, event_loop_filters_and_times_out)
{
    const struct fake_step steps[] = {
        {"events.subscribe",
         "{}",
         "\"result\": {\"subscribed\": true}",
         {"{\"event\": \"lifecycle\", \"domain\": \"demo\", \"detail\": \"Started Booted\"}",
          "{\"event\": \"device-removed\", \"domain\": \"demo\", \"detail\": \"virtio-disk1\"}"}},
    };
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result result = run_pvsh(
        &daemon, NULL,
        (const char *[]){"event", "--loop", "--event", "device-removed", "--timeout", "1", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 0, "%s", result.err);
    cr_expect_str_eq(result.out, "event 'device-removed' for domain 'demo': virtio-disk1\n"
                                 "event loop timed out\n"
                                 "events received: 1\n"
                                 "\n");
    result_free(&result);
}

Test(pvsh_end_to_end, interactive_mode_runs_lines_until_quit)
{
    const struct fake_step steps[] = {
        {"domain.suspend", "{\"domain\": \"my vm\"}", "\"result\": null"},
        {"domain.resume", "{\"domain\": \"my vm\"}", "\"result\": null"},
    };
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result result =
        run_pvsh(&daemon, "suspend 'my vm'; resume \"my vm\"\n\nquit\nstart never\n",
                 (const char *[]){NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 0);
    cr_expect_str_eq(result.out, "Domain 'my vm' suspended\n\nDomain 'my vm' resumed\n\n");
    result_free(&result);
}

Test(pvsh_end_to_end, unknown_command_and_connection_failure)
{
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, NULL, 0);
    struct pvsh_result result =
        run_pvsh(&daemon, NULL, (const char *[]){"frobnicate", "demo", NULL});
    cr_expect_eq(result.status, 1);
    cr_expect_str_eq(result.err, "error: unknown command: 'frobnicate'\n");
    result_free(&result);
    fake_daemon_finish(&daemon);

    const char *argv[] = {"pvsh", "--connect=/nonexistent/plugvirtd.sock", "start", "demo", NULL};
    size_t size = 0;
    char *out = NULL;
    char *err = NULL;
    FILE *out_stream = open_memstream(&out, &size);
    FILE *err_stream = open_memstream(&err, &size);
    int status = pvsh_run(4, (char **)argv, stdin, out_stream, err_stream);
    fclose(out_stream);
    fclose(err_stream);
    cr_expect_eq(status, 1);
    cr_expect_str_eq(err, "error: failed to connect to the daemon at "
                          "'/nonexistent/plugvirtd.sock': No such file or directory (is "
                          "plugvirtd running? -c SOCKET or PLUGVIRT_SOCKET selects another "
                          "socket)\n");
    free(out);
    free(err);
}

Test(pvsh_end_to_end, socket_from_the_environment)
{
    const struct fake_step steps[] = {
        {"daemon.ping", "{}", "\"result\": {\"version\": \"0.1.0\"}"}};
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    setenv("PLUGVIRT_SOCKET", daemon.socket_path, 1);
    const char *argv[] = {"pvsh", "--json", "version", NULL};
    size_t out_size = 0;
    size_t err_size = 0;
    char *out = NULL;
    char *err = NULL;
    FILE *out_stream = open_memstream(&out, &out_size);
    FILE *err_stream = open_memstream(&err, &err_size);
    int status = pvsh_run(3, (char **)argv, stdin, out_stream, err_stream);
    fclose(out_stream);
    fclose(err_stream);
    unsetenv("PLUGVIRT_SOCKET");
    fake_daemon_finish(&daemon);
    cr_expect_eq(status, 0, "%s", err);
    cr_expect(strstr(out, "\"daemon\": \"0.1.0\"") != NULL, "%s", out);
    free(out);
    free(err);
}

/* --- network interfaces ----------------------------------------------------------------- */

Test(pvsh_interface_xml, virsh_layout_and_escaping)
{
    struct pv_error error = {0};
    struct pvsh_interface_options options = {
        .type = "ethernet",
        .target = "tap'0",
        .mac = "52:54:00:12:34:56",
        .model = "virtio",
        .alias = "ua-net<1>",
    };
    char *xml = pvsh_build_interface_xml(&options, &error);
    cr_assert_not_null(xml, "%s", error.message);
    cr_expect_str_eq(xml, "<interface type='ethernet'>\n"
                          "  <target dev='tap&apos;0'/>\n"
                          "  <mac address='52:54:00:12:34:56'/>\n"
                          "  <model type='virtio'/>\n"
                          "  <alias name='ua-net&lt;1&gt;'/>\n"
                          "</interface>\n");
    free(xml);

    struct pvsh_interface_options bridge = {.type = "bridge", .source = "br0"};
    xml = pvsh_build_interface_xml(&bridge, &error);
    cr_assert_not_null(xml, "%s", error.message);
    cr_expect_str_eq(xml, "<interface type='bridge'>\n"
                          "  <source bridge='br0'/>\n"
                          "</interface>\n");
    free(xml);

    /* Types the daemon decides about go out without a source. */
    struct pvsh_interface_options user = {.type = "user"};
    xml = pvsh_build_interface_xml(&user, &error);
    cr_assert_not_null(xml, "%s", error.message);
    cr_expect_str_eq(xml, "<interface type='user'>\n</interface>\n");
    free(xml);
}

Test(pvsh_interface_xml, refusals)
{
    struct pv_error error = {0};
    struct pvsh_interface_options no_bridge = {.type = "bridge"};
    cr_expect_null(pvsh_build_interface_xml(&no_bridge, &error));
    cr_expect_str_eq(error.message, "--type bridge needs --source (the bridge to connect to)");
    struct pvsh_interface_options ethernet_source = {.type = "ethernet", .source = "br0"};
    cr_expect_null(pvsh_build_interface_xml(&ethernet_source, &error));
    cr_expect_str_eq(error.message, "--source is not used with --type ethernet: name the tap with "
                                    "--target, or use --type bridge --source BRIDGE");
    struct pvsh_interface_options unknown = {.type = "wifi"};
    cr_expect_null(pvsh_build_interface_xml(&unknown, &error));
    cr_expect_str_eq(error.message, "No support for wifi in command 'attach-interface'");
}

Test(pvsh_end_to_end, attach_interface_print_xml_sends_nothing)
{
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, NULL, 0);
    struct pvsh_result result =
        run_pvsh(&daemon, NULL,
                 (const char *[]){"attach-interface", "demo", "bridge", "br0", "--model", "virtio",
                                  "--mac", "52:54:00:00:00:07", "--print-xml", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 0, "%s", result.err);
    cr_expect_str_eq(result.out, "<interface type='bridge'>\n"
                                 "  <source bridge='br0'/>\n"
                                 "  <mac address='52:54:00:00:00:07'/>\n"
                                 "  <model type='virtio'/>\n"
                                 "</interface>\n"
                                 "\n");
    result_free(&result);
}

Test(pvsh_end_to_end, attach_interface_persistent_sends_live_and_config)
{
    const struct fake_step steps[] = {
        {"domain.state", "{\"domain\": \"demo\"}",
         "\"result\": {\"state\": \"running\", \"reason\": \"booted\"}"},
        {"domain.attach_device",
         "{\"domain\": \"demo\", \"xml\": \"<interface type='ethernet'>\\n  <model "
         "type='virtio'/>\\n</interface>\\n\", \"flags\": [\"live\", \"config\"]}",
         "\"result\": {\"device\": \"net0\", \"address\": \"0000:00:05.0\"}"},
    };
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result result =
        run_pvsh(&daemon, NULL,
                 (const char *[]){"attach-interface", "demo", "--type", "ethernet", "--model",
                                  "virtio", "--persistent", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 0, "%s", result.err);
    cr_expect_str_eq(result.out, "Interface attached successfully\n\n");
    result_free(&result);
}

Test(pvsh_end_to_end, attach_interface_refuses_unsupported_virsh_options_by_name)
{
    static const char *const options[][3] = {
        {"--script", "/etc/qemu-ifup", "script"},   {"--inbound", "100", "inbound"},
        {"--outbound", "100", "outbound"},          {"--managed", NULL, "managed"},
        {"--source-mode", "server", "source-mode"},
    };
    for (size_t i = 0; i < COUNT(options); i++) {
        struct fake_daemon daemon;
        fake_daemon_start(&daemon, NULL, 0);
        const char *words[] = {"attach-interface", "demo",        "bridge", "br0",
                               options[i][0],      options[i][1], NULL};
        struct pvsh_result result = run_pvsh(&daemon, NULL, words);
        fake_daemon_finish(&daemon);
        cr_expect_eq(result.status, 1);
        char expected[64];
        snprintf(expected, sizeof(expected),
                 "error: option --%s is not supported by plugvirt: ", options[i][2]);
        cr_expect(strncmp(result.err, expected, strlen(expected)) == 0, "%s", result.err);
        result_free(&result);
    }
}

static const char two_bridges_reply[] =
    "\"result\": [{\"type\": \"bridge\", \"source\": \"br0\", \"target\": \"vnet0\", \"model\": "
    "\"virtio\", \"mac\": \"52:54:00:00:00:01\", \"alias\": \"net0\", \"link\": \"up\"}, "
    "{\"type\": \"ethernet\", \"source\": \"\", \"target\": \"vnet1\", \"model\": \"virtio\", "
    "\"mac\": \"52:54:00:00:00:02\", \"alias\": \"net1\", \"link\": \"down\"}, "
    "{\"type\": \"bridge\", \"source\": \"br1\", \"target\": \"vnet2\", \"model\": \"virtio\", "
    "\"mac\": \"52:54:00:00:00:03\", \"alias\": \"net2\", \"link\": \"up\"}]";

Test(pvsh_end_to_end, domiflist_prints_virsh_table)
{
    const struct fake_step steps[] = {
        {"domain.iflist", "{\"domain\": \"demo\"}", two_bridges_reply}};
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result result =
        run_pvsh(&daemon, NULL, (const char *[]){"domiflist", "demo", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 0, "%s", result.err);
    cr_expect_str_eq(result.out, " Interface   Type       Source   Model    MAC\n"
                                 "-------------------------------------------------------------\n"
                                 " vnet0       bridge     br0      virtio   52:54:00:00:00:01\n"
                                 " vnet1       ethernet   -        virtio   52:54:00:00:00:02\n"
                                 " vnet2       bridge     br1      virtio   52:54:00:00:00:03\n"
                                 "\n");
    result_free(&result);
}

Test(pvsh_end_to_end, detach_interface_needs_mac_when_the_type_is_ambiguous)
{
    const struct fake_step steps[] = {
        {"domain.iflist", "{\"domain\": \"demo\"}", two_bridges_reply}};
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result result = run_pvsh(
        &daemon, NULL, (const char *[]){"detach-interface", "demo", "bridge", "--live", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 1);
    cr_expect_str_eq(result.err,
                     "error: Domain has 2 interfaces. Please specify which one to detach using "
                     "--mac\n");
    result_free(&result);
}

Test(pvsh_end_to_end, detach_interface_by_mac_sends_that_interface)
{
    const struct fake_step steps[] = {
        {"domain.iflist", "{\"domain\": \"demo\"}", two_bridges_reply},
        {"domain.detach_device",
         "{\"domain\": \"demo\", \"xml\": \"<interface type='bridge'>\\n  <source "
         "bridge='br1'/>\\n  <mac address='52:54:00:00:00:03'/>\\n</interface>\\n\", \"flags\": "
         "[\"live\"]}",
         "\"result\": {\"status\": \"detached\"}"},
    };
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result result =
        run_pvsh(&daemon, NULL,
                 (const char *[]){"detach-interface", "demo", "bridge", "--mac",
                                  "52:54:00:00:00:03", "--live", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 0, "%s", result.err);
    cr_expect_str_eq(result.out, "Interface detached successfully\n\n");
    result_free(&result);
}

Test(pvsh_end_to_end, detach_interface_single_of_its_type_and_config_reads_inactive)
{
    const struct fake_step steps[] = {
        {"domain.iflist", "{\"domain\": \"demo\", \"inactive\": true}", two_bridges_reply},
        {"domain.detach_device",
         "{\"domain\": \"demo\", \"xml\": \"<interface type='ethernet'>\\n  <mac "
         "address='52:54:00:00:00:02'/>\\n</interface>\\n\", \"flags\": [\"config\"]}",
         "\"result\": {\"status\": \"detached\"}"},
    };
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result result = run_pvsh(
        &daemon, NULL, (const char *[]){"detach-interface", "demo", "ethernet", "--config", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 0, "%s", result.err);
    cr_expect_str_eq(result.out, "Interface detached successfully\n\n");
    result_free(&result);
}

Test(pvsh_end_to_end, detach_interface_of_an_unknown_mac_or_type_fails)
{
    const struct fake_step steps[] = {
        {"domain.iflist", "{\"domain\": \"demo\"}", two_bridges_reply},
        {"domain.iflist", "{\"domain\": \"demo\"}", "\"result\": []"},
    };
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result by_mac = run_pvsh(
        &daemon, NULL,
        (const char *[]){"detach-interface", "demo", "bridge", "--mac", "52:54:00:00:00:99", NULL});
    struct pvsh_result by_type =
        run_pvsh(&daemon, NULL, (const char *[]){"detach-interface", "demo", "ethernet", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(by_mac.status, 1);
    cr_expect_str_eq(by_mac.err, "error: No interface with MAC address 52:54:00:00:00:99 was "
                                 "found\n");
    cr_expect_eq(by_type.status, 1);
    cr_expect_str_eq(by_type.err, "error: No interface found whose type is ethernet\n");
    result_free(&by_mac);
    result_free(&by_type);
}

Test(pvsh_end_to_end, domif_getlink_by_tap_or_mac)
{
    const struct fake_step steps[] = {
        {"domain.iflist", "{\"domain\": \"demo\"}", two_bridges_reply},
        {"domain.iflist", "{\"domain\": \"demo\", \"inactive\": true}", two_bridges_reply},
        {"domain.iflist", "{\"domain\": \"demo\"}", two_bridges_reply},
    };
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result tap =
        run_pvsh(&daemon, NULL, (const char *[]){"domif-getlink", "demo", "vnet1", NULL});
    struct pvsh_result mac =
        run_pvsh(&daemon, NULL,
                 (const char *[]){"domif-getlink", "demo", "52:54:00:00:00:03", "--config", NULL});
    struct pvsh_result missing = run_pvsh(
        &daemon, NULL, (const char *[]){"domif-getlink", "demo", "52:54:00:00:00:0A", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(tap.status, 0, "%s", tap.err);
    cr_expect_str_eq(tap.out, "vnet1 down\n\n");
    cr_expect_eq(mac.status, 0, "%s", mac.err);
    cr_expect_str_eq(mac.out, "52:54:00:00:00:03 up\n\n");
    cr_expect_eq(missing.status, 1);
    cr_expect_str_eq(missing.err, "error: no interface '52:54:00:00:00:0A' in domain 'demo' (name "
                                  "it by its tap or MAC address: pvsh domiflist demo lists "
                                  "them)\n");
    result_free(&tap);
    result_free(&mac);
    result_free(&missing);
}

Test(pvsh_end_to_end, domif_setlink_sends_state_and_config)
{
    const struct fake_step steps[] = {
        {"domain.set_link", "{\"domain\": \"demo\", \"interface\": \"vnet0\", \"state\": \"down\"}",
         "\"result\": {}"},
        {"domain.set_link",
         "{\"domain\": \"demo\", \"interface\": \"52:54:00:00:00:01\", \"state\": \"up\", "
         "\"flags\": [\"config\"]}",
         "\"error\": {\"code\": \"no-device\", \"message\": \"no interface '52:54:00:00:00:01' "
         "in the persistent definition of domain 'demo'\"}"},
    };
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result down =
        run_pvsh(&daemon, NULL, (const char *[]){"domif-setlink", "demo", "vnet0", "down", NULL});
    struct pvsh_result config = run_pvsh(
        &daemon, NULL,
        (const char *[]){"domif-setlink", "demo", "52:54:00:00:00:01", "up", "--config", NULL});
    struct pvsh_result bad =
        run_pvsh(&daemon, NULL, (const char *[]){"domif-setlink", "demo", "vnet0", "off", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(down.status, 0, "%s", down.err);
    cr_expect_str_eq(down.out, "Device updated successfully\n\n");
    cr_expect_eq(config.status, 1);
    cr_expect_str_eq(config.err, "error: no interface '52:54:00:00:00:01' in the persistent "
                                 "definition of domain 'demo'\n");
    cr_expect_eq(bad.status, 1);
    cr_expect_str_eq(bad.err, "error: invalid link state 'off': it is 'up' or 'down'\n");
    result_free(&down);
    result_free(&config);
    result_free(&bad);
}

Test(pvsh_end_to_end, domifstat_prints_virsh_lines)
{
    const struct fake_step steps[] = {
        {"domain.ifstat", "{\"domain\": \"demo\", \"interface\": \"vnet0\"}",
         "\"result\": {\"interface\": \"vnet0\", \"tap\": \"vnet0\", \"rx_bytes\": 1200, "
         "\"rx_packets\": 10, \"rx_errs\": 0, \"rx_drop\": 1, \"tx_bytes\": 640, \"tx_packets\": "
         "5, \"tx_errs\": 0, \"tx_drop\": 0}"}};
    struct fake_daemon daemon;
    fake_daemon_start(&daemon, steps, COUNT(steps));
    struct pvsh_result result =
        run_pvsh(&daemon, NULL, (const char *[]){"domifstat", "demo", "vnet0", NULL});
    fake_daemon_finish(&daemon);
    cr_expect_eq(result.status, 0, "%s", result.err);
    cr_expect_str_eq(result.out, "vnet0 rx_bytes 1200\n"
                                 "vnet0 rx_packets 10\n"
                                 "vnet0 rx_errs 0\n"
                                 "vnet0 rx_drop 1\n"
                                 "vnet0 tx_bytes 640\n"
                                 "vnet0 tx_packets 5\n"
                                 "vnet0 tx_errs 0\n"
                                 "vnet0 tx_drop 0\n"
                                 "\n");
    result_free(&result);
}

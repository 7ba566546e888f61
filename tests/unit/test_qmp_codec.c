/* QMP codec and JSON writer: framing, request checks, QEMU's text layout. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "json_util.h"
#include "qmp_codec.h"

/* --- helpers -------------------------------------------------------------- */

#define MAX_COLLECTED 64

struct collected {
    char *messages[MAX_COLLECTED]; /* NULL entries are errors */
    char *errors[MAX_COLLECTED];
    int count;
};

static void collect(void *opaque, const char *message, size_t length, const char *error)
{
    struct collected *collected = opaque;
    cr_assert_lt(collected->count, MAX_COLLECTED);
    if (message) {
        cr_assert_eq(strlen(message), length, "message length matches its text");
        collected->messages[collected->count] = strdup(message);
    } else {
        collected->errors[collected->count] = strdup(error);
    }
    collected->count++;
}

static void collected_free(struct collected *collected)
{
    for (int i = 0; i < collected->count; i++) {
        free(collected->messages[i]);
        free(collected->errors[i]);
    }
    memset(collected, 0, sizeof(*collected));
}

static struct qmp_stream stream;
static struct collected got;

static void setup_stream(void)
{
    memset(&got, 0, sizeof(got));
    qmp_stream_init(&stream, QMP_MAX_MESSAGE_SIZE, collect, &got);
}

static void teardown_stream(void)
{
    qmp_stream_destroy(&stream);
    collected_free(&got);
}

static void feed_text(const char *text)
{
    cr_assert_eq(qmp_stream_feed(&stream, text, strlen(text)), 0);
}

/* --- writer ------------------------------------------------------------- */

Test(json_writer, compact_layout_matches_qemu)
{
    struct json_writer writer;
    json_writer_init(&writer, false);
    json_writer_begin_object(&writer);
    json_writer_member_int(&writer, "a", -1);
    json_writer_key(&writer, "b");
    json_writer_begin_array(&writer);
    json_writer_uint(&writer, 18446744073709551615ULL);
    json_writer_bool(&writer, false);
    json_writer_null(&writer);
    json_writer_end_array(&writer);
    json_writer_key(&writer, "c");
    json_writer_begin_object(&writer);
    json_writer_end_object(&writer);
    json_writer_key(&writer, "d");
    json_writer_begin_array(&writer);
    json_writer_end_array(&writer);
    json_writer_member_string(&writer, "e", "x");
    json_writer_end_object(&writer);
    cr_assert_str_eq(json_writer_text(&writer),
                     "{\"a\": -1, \"b\": [18446744073709551615, false, null], \"c\": {}, "
                     "\"d\": [], \"e\": \"x\"}");
    json_writer_free(&writer);
}

Test(json_writer, pretty_layout_matches_qemu)
{
    struct json_writer writer;
    json_writer_init(&writer, true);
    json_writer_begin_object(&writer);
    json_writer_member_int(&writer, "a", 1);
    json_writer_key(&writer, "b");
    json_writer_begin_array(&writer);
    json_writer_int(&writer, 2);
    json_writer_int(&writer, 3);
    json_writer_end_array(&writer);
    json_writer_key(&writer, "c");
    json_writer_begin_object(&writer);
    json_writer_end_object(&writer);
    json_writer_end_object(&writer);
    cr_assert_str_eq(json_writer_text(&writer), "{\n"
                                                "    \"a\": 1,\n"
                                                "    \"b\": [\n"
                                                "        2,\n"
                                                "        3\n"
                                                "    ],\n"
                                                "    \"c\": {\n"
                                                "    }\n"
                                                "}");
    json_writer_free(&writer);
}

Test(json_writer, escapes_like_qemu)
{
    struct json_writer writer;
    json_writer_init(&writer, false);
    /* quote, backslash, short escapes, other control, DEL, e-acute, an
     * emoji (surrogate pair) and an invalid byte (replacement character). */
    json_writer_string(&writer, "q\"b\\n\n\t\r\b\f\x01\x7f\xc3\xa9\xf0\x9f\x98\x80\xff/");
    cr_assert_str_eq(json_writer_text(&writer),
                     "\"q\\\"b\\\\n\\n\\t\\r\\b\\f\\u0001\\u007F\\u00E9\\uD83D\\uDE00\\uFFFD/\"");
    json_writer_free(&writer);
}

Test(json_writer, rewrites_parsed_values_keeping_numbers_exact)
{
    const char *text = "{\"id\":18446744073709551615,\"f\":1.50,\"s\":[\"\\u00e9\",true,null]}";
    yajl_val value = json_parse(text, strlen(text), 1024, JSON_MAX_DEPTH, NULL);
    cr_assert_not_null(value);
    struct json_writer writer;
    json_writer_init(&writer, false);
    json_writer_value(&writer, value);
    cr_assert_str_eq(
        json_writer_text(&writer),
        "{\"id\": 18446744073709551615, \"f\": 1.50, \"s\": [\"\\u00E9\", true, null]}");
    uint64_t id = 0;
    cr_assert(json_get_uint64(value, "id", &id));
    cr_assert_eq(id, 18446744073709551615ULL);
    int64_t signed_id;
    cr_assert_not(json_get_int64(value, "id", &signed_id), "too big for int64");
    cr_assert_not(json_get_int64(value, "f", &signed_id), "not an integer");
    yajl_tree_free(value);
    json_writer_free(&writer);
}

Test(json_parse, rejects_duplicates_depth_size_and_nul)
{
    struct pv_error error = {0};
    cr_assert_null(json_parse("{\"a\": 1, \"a\": 2}", 16, 100, 10, &error));
    cr_assert(strstr(error.message, "duplicate key 'a'"), "%s", error.message);
    cr_assert_null(json_parse("[[[1]]]", 7, 100, 2, &error));
    cr_assert_eq(error.code, -E2BIG);
    yajl_val shallow = json_parse("[[1]]", 5, 100, 2, &error);
    cr_assert_not_null(shallow);
    yajl_tree_free(shallow);
    cr_assert_null(json_parse("[1, 2, 3]", 9, 4, 10, &error));
    cr_assert_eq(error.code, -E2BIG);
    cr_assert_null(json_parse("[1,\0 2]", 7, 100, 10, &error));
    cr_assert_null(json_parse("{\"a\": }", 7, 100, 10, &error));
    cr_assert_str_eq(error.message, "unallowed token at this point in JSON text");
}

Test(json_parse, typed_getters)
{
    const char *text = "{\"s\": \"x\", \"b\": true, \"n\": -3, \"d\": 2.5, \"o\": {}, \"a\": []}";
    yajl_val value = json_parse(text, strlen(text), 1024, 8, NULL);
    cr_assert_not_null(value);
    cr_assert_str_eq(json_get_string(value, "s"), "x");
    cr_assert_null(json_get_string(value, "b"));
    bool flag = false;
    cr_assert(json_get_bool(value, "b", &flag) && flag);
    int64_t number;
    cr_assert(json_get_int64(value, "n", &number) && number == -3);
    uint64_t unsigned_number;
    cr_assert_not(json_get_uint64(value, "n", &unsigned_number));
    double real;
    cr_assert(json_get_double(value, "d", &real) && real == 2.5);
    cr_assert_not_null(json_get_object(value, "o"));
    cr_assert_not_null(json_get_array(value, "a"));
    cr_assert_null(json_get_array(value, "o"));
    cr_assert_null(json_object_get(value, "missing"));
    cr_assert_str_eq(json_type_name(json_object_get(value, "b")), "boolean");
    cr_assert_str_eq(json_type_name(json_object_get(value, "a")), "array");
    yajl_tree_free(value);
}

/* --- framing ------------------------------------------------------------- */

TestSuite(qmp_stream, .init = setup_stream, .fini = teardown_stream);

Test(qmp_stream, several_messages_in_one_read)
{
    feed_text("{\"execute\": \"a\"}{\"execute\": \"b\"}\r\n  [1, 2]\n");
    cr_assert_eq(got.count, 3);
    cr_assert_str_eq(got.messages[0], "{\"execute\": \"a\"}");
    cr_assert_str_eq(got.messages[1], "{\"execute\": \"b\"}");
    cr_assert_str_eq(got.messages[2], "[1, 2]");
}

Test(qmp_stream, message_split_byte_by_byte)
{
    const char *text =
        "{\"execute\": \"query-status\", \"arguments\": {\"a\": [1, {}]}, \"id\": 7}";
    for (size_t i = 0; text[i]; i++) {
        cr_assert_eq(got.count, 0, "complete only at the last byte (%zu)", i);
        cr_assert_eq(qmp_stream_feed(&stream, text + i, 1), 0);
    }
    cr_assert_eq(got.count, 1);
    cr_assert_str_eq(got.messages[0], text);
}

Test(qmp_stream, braces_and_quotes_inside_strings)
{
    feed_text("{\"a\": \"}{][\", \"b\": \"\\\"}\\\\\"}");
    cr_assert_eq(got.count, 1);
    cr_assert_str_eq(got.messages[0], "{\"a\": \"}{][\", \"b\": \"\\\"}\\\\\"}");
    yajl_val value = json_parse(got.messages[0], strlen(got.messages[0]), 100, 4, NULL);
    cr_assert_not_null(value);
    cr_assert_str_eq(json_get_string(value, "b"), "\"}\\");
    yajl_tree_free(value);
}

Test(qmp_stream, single_quoted_strings_become_json)
{
    feed_text("{'execute': 'say \"hi\" it\\'s'}");
    cr_assert_eq(got.count, 1);
    cr_assert_str_eq(got.messages[0], "{\"execute\": \"say \\\"hi\\\" it's\"}");
}

Test(qmp_stream, top_level_scalars_end_at_a_delimiter)
{
    feed_text("12");
    cr_assert_eq(got.count, 0);
    feed_text("3 true\"s\"");
    cr_assert_eq(got.count, 3);
    cr_assert_str_eq(got.messages[0], "123");
    cr_assert_str_eq(got.messages[1], "true");
    cr_assert_str_eq(got.messages[2], "\"s\"");
}

Test(qmp_stream, malformed_json_is_reported_and_the_next_message_works)
{
    feed_text("{\"execute\": }\n{\"execute\": \"x\"}");
    cr_assert_eq(got.count, 2);
    struct qmp_request request;
    struct qmp_error error = {0};
    cr_assert_lt(
        qmp_request_parse(got.messages[0], strlen(got.messages[0]), false, &request, &error), 0);
    cr_assert_eq(error.error_class, QMP_ERROR_GENERIC_ERROR);
    cr_assert(strncmp(error.desc, "JSON parse error, ", 18) == 0, "%s", error.desc);
    qmp_request_free(&request);
    cr_assert_eq(
        qmp_request_parse(got.messages[1], strlen(got.messages[1]), false, &request, &error), 0);
    cr_assert_str_eq(request.command, "x");
    qmp_request_free(&request);
}

Test(qmp_stream, stray_closer_is_its_own_message)
{
    feed_text("}{\"a\": 1}");
    cr_assert_eq(got.count, 2);
    cr_assert_str_eq(got.messages[0], "}");
    cr_assert_str_eq(got.messages[1], "{\"a\": 1}");
}

Test(qmp_stream, ten_mebibytes_of_brackets_stay_bounded, .timeout = 30)
{
    size_t size = 10 * 1024 * 1024;
    char *brackets = malloc(size);
    cr_assert_not_null(brackets);
    memset(brackets, '[', size);
    cr_assert_eq(qmp_stream_feed(&stream, brackets, size), 0);
    cr_assert_eq(got.count, 1, "one error, not one per byte");
    cr_assert_null(got.messages[0]);
    cr_assert_str_eq(got.errors[0], "JSON nesting depth limit exceeded");
    cr_assert_leq(stream.capacity, 4096, "nothing is kept past the limit");
    /* Once the brackets balance, the stream is back in step. */
    memset(brackets, ']', size);
    cr_assert_eq(qmp_stream_feed(&stream, brackets, size), 0);
    free(brackets);
    feed_text("{\"execute\": \"after\"}");
    cr_assert_eq(got.count, 2);
    cr_assert_str_eq(got.messages[1], "{\"execute\": \"after\"}");
}

Test(qmp_stream, oversized_message_is_skipped)
{
    size_t size = 2 * QMP_MAX_MESSAGE_SIZE;
    char *big = malloc(size + 32);
    cr_assert_not_null(big);
    strcpy(big, "{\"a\": \"");
    memset(big + 7, 'x', size);
    strcpy(big + 7 + size, "\"}{\"b\": 2}");
    cr_assert_eq(qmp_stream_feed(&stream, big, strlen(big)), 0);
    free(big);
    cr_assert_eq(got.count, 2);
    cr_assert_str_eq(got.errors[0], "JSON token size limit exceeded");
    cr_assert_str_eq(got.messages[1], "{\"b\": 2}");
    cr_assert_leq(stream.capacity, QMP_MAX_MESSAGE_SIZE + 1);
}

/* --- requests ------------------------------------------------------------- */

static void expect_request_error(const char *text, bool allow_oob, const char *desc,
                                 const char *id_text)
{
    struct qmp_request request;
    struct qmp_error error = {0};
    cr_assert_lt(qmp_request_parse(text, strlen(text), allow_oob, &request, &error), 0, "%s", text);
    cr_assert_eq(error.error_class, QMP_ERROR_GENERIC_ERROR);
    cr_assert_str_eq(error.desc, desc, "for %s", text);
    if (id_text) {
        cr_assert_not_null(request.id, "id kept for %s", text);
        cr_assert_str_eq(request.id->u.number.r, id_text);
    } else {
        cr_assert_null(request.id);
    }
    qmp_request_free(&request);
}

Test(qmp_request, shapes_are_checked_with_qemu_texts)
{
    expect_request_error("[1, 2]", false, "QMP input must be a JSON object", NULL);
    expect_request_error("{\"execute\": 1, \"id\": 4}", false,
                         "QMP input member 'execute' must be a string", "4");
    expect_request_error("{\"execute\": \"x\", \"arguments\": [], \"id\": 5}", false,
                         "QMP input member 'arguments' must be an object", "5");
    expect_request_error("{\"execute\": \"x\", \"foo\": 1}", false,
                         "QMP input member 'foo' is unexpected", NULL);
    expect_request_error("{\"arguments\": {}}", false, "QMP input lacks member 'execute'", NULL);
    expect_request_error("{\"exec-oob\": \"x\"}", false,
                         "QMP input member 'exec-oob' is unexpected", NULL);
    expect_request_error("{\"execute\": \"x\", \"exec-oob\": \"y\"}", true,
                         "QMP input member 'exec-oob' clashes with 'execute'", NULL);
}

Test(qmp_request, valid_request)
{
    const char *text = "{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": "
                       "\"info status\"}, \"id\": {\"a\": [1]}}";
    struct qmp_request request;
    struct qmp_error error = {0};
    cr_assert_eq(qmp_request_parse(text, strlen(text), false, &request, &error), 0, "%s",
                 error.desc);
    cr_assert_str_eq(request.command, "human-monitor-command");
    cr_assert_not(request.oob);
    cr_assert_str_eq(json_get_string(request.arguments, "command-line"), "info status");
    cr_assert(YAJL_IS_OBJECT(request.id));
    qmp_request_free(&request);

    const char *oob = "{\"exec-oob\": \"migrate-pause\"}";
    cr_assert_eq(qmp_request_parse(oob, strlen(oob), true, &request, &error), 0);
    cr_assert(request.oob);
    cr_assert_null(request.arguments);
    qmp_request_free(&request);
}

/* --- formatting ------------------------------------------------------------ */

static yajl_val parse_text(const char *text)
{
    yajl_val value = json_parse(text, strlen(text), 1024, 16, NULL);
    cr_assert_not_null(value);
    return value;
}

Test(qmp_format, greeting)
{
    struct json_writer out;
    json_writer_init(&out, false);
    cr_assert_eq(qmp_format_greeting(&out, 8, 2, 0, "plugvirt-vmm 0.1.0", true), 0);
    cr_assert_str_eq(
        json_writer_text(&out),
        "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 8}, "
        "\"package\": \"plugvirt-vmm 0.1.0\"}, \"capabilities\": [\"oob\"]}}\r\n");
    json_writer_free(&out);
}

Test(qmp_format, return_with_and_without_id)
{
    struct json_writer out;
    json_writer_init(&out, false);
    yajl_val id = parse_text("\"libvirt-1\"");
    cr_assert_eq(qmp_format_return(&out, NULL, id), 0);
    cr_assert_eq(qmp_format_return(&out, "{\"status\":\"running\",\"running\":true}", NULL), 0);
    cr_assert_str_eq(json_writer_text(&out),
                     "{\"return\": {}, \"id\": \"libvirt-1\"}\r\n"
                     "{\"return\": {\"status\": \"running\", \"running\": true}}\r\n");
    yajl_tree_free(id);
    json_writer_free(&out);
}

Test(qmp_format, error_puts_id_first_like_qemu)
{
    struct json_writer out;
    json_writer_init(&out, false);
    struct qmp_error error;
    qmp_error_set(&error, QMP_ERROR_COMMAND_NOT_FOUND, "The command %s has not been found", "foo");
    yajl_val id = parse_text("7");
    cr_assert_eq(qmp_format_error(&out, &error, id), 0);
    cr_assert_str_eq(json_writer_text(&out),
                     "{\"id\": 7, \"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The "
                     "command foo has not been found\"}}\r\n");
    yajl_tree_free(id);
    json_writer_free(&out);
}

Test(qmp_format, events_with_and_without_data)
{
    struct json_writer out;
    json_writer_init(&out, false);
    cr_assert_eq(qmp_format_event(&out, "STOP", NULL, 1700000000, 42), 0);
    cr_assert_eq(
        qmp_format_event(&out, "SHUTDOWN", "{\"guest\":false,\"reason\":\"host-qmp-quit\"}", 5, 6),
        0);
    cr_assert_str_eq(
        json_writer_text(&out),
        "{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 42}, \"event\": "
        "\"STOP\"}\r\n"
        "{\"timestamp\": {\"seconds\": 5, \"microseconds\": 6}, \"event\": "
        "\"SHUTDOWN\", \"data\": {\"guest\": false, \"reason\": \"host-qmp-quit\"}}\r\n");
    json_writer_free(&out);
}

Test(qmp_format, pretty_messages_end_every_line_with_crlf)
{
    struct json_writer out;
    json_writer_init(&out, true);
    cr_assert_eq(qmp_format_return(&out, "{\"a\": 1}", NULL), 0);
    cr_assert_str_eq(json_writer_text(&out),
                     "{\r\n    \"return\": {\r\n        \"a\": 1\r\n    }\r\n}\r\n");
    json_writer_free(&out);
}

Test(qmp_format, request_for_the_client_side)
{
    struct json_writer out;
    json_writer_init(&out, false);
    cr_assert_eq(qmp_format_request(&out, "device_del", "{\"id\":\"disk1\"}", "\"c-1\"", false), 0);
    cr_assert_str_eq(json_writer_text(&out),
                     "{\"execute\": \"device_del\", \"arguments\": {\"id\": \"disk1\"}, \"id\": "
                     "\"c-1\"}\r\n");
    json_writer_free(&out);
}

/* --- received messages -------------------------------------------------------- */

Test(qmp_message, classifies_what_a_server_sends)
{
    struct qmp_message message;
    struct pv_error error = {0};
    const char *greeting = "{\"QMP\": {\"version\": {}, \"capabilities\": []}}";
    cr_assert_eq(qmp_message_parse(greeting, strlen(greeting), &message, &error), 0);
    cr_assert_eq(message.kind, QMP_MESSAGE_GREETING);
    qmp_message_free(&message);

    const char *reply = "{\"return\": [1], \"id\": \"x\"}";
    cr_assert_eq(qmp_message_parse(reply, strlen(reply), &message, &error), 0);
    cr_assert_eq(message.kind, QMP_MESSAGE_RETURN);
    cr_assert(YAJL_IS_ARRAY(message.value));
    cr_assert_str_eq(message.id->u.string, "x");
    qmp_message_free(&message);

    const char *failure =
        "{\"id\": 3, \"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"no\"}}";
    cr_assert_eq(qmp_message_parse(failure, strlen(failure), &message, &error), 0);
    cr_assert_eq(message.kind, QMP_MESSAGE_ERROR);
    cr_assert_eq(message.error.error_class, QMP_ERROR_DEVICE_NOT_FOUND);
    cr_assert_str_eq(message.error.desc, "no");
    qmp_message_free(&message);

    const char *event = "{\"timestamp\": {\"seconds\": 10, \"microseconds\": 20}, \"event\": "
                        "\"DEVICE_DELETED\", \"data\": {\"device\": \"d\"}}";
    cr_assert_eq(qmp_message_parse(event, strlen(event), &message, &error), 0);
    cr_assert_eq(message.kind, QMP_MESSAGE_EVENT);
    cr_assert_str_eq(message.event, "DEVICE_DELETED");
    cr_assert_eq(message.seconds, 10);
    cr_assert_eq(message.microseconds, 20);
    cr_assert_str_eq(json_get_string(message.value, "device"), "d");
    qmp_message_free(&message);

    cr_assert_lt(qmp_message_parse("{\"x\": 1}", 8, &message, &error), 0);
    qmp_message_free(&message);
    cr_assert_lt(qmp_message_parse("{\"x\": ", 6, &message, &error), 0);
    qmp_message_free(&message);
}

Test(qmp_error, class_names_round_trip)
{
    enum qmp_error_class error_class;
    cr_assert(qmp_error_class_from_name("CommandNotFound", &error_class));
    cr_assert_eq(error_class, QMP_ERROR_COMMAND_NOT_FOUND);
    cr_assert_str_eq(qmp_error_class_name(QMP_ERROR_GENERIC_ERROR), "GenericError");
    cr_assert_not(qmp_error_class_from_name("Nope", &error_class));
    cr_assert_eq(error_class, QMP_ERROR_GENERIC_ERROR);
}

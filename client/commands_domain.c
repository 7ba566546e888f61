/* pvsh domain commands: define/undefine, lifecycle, list, dominfo, domstate, dumpxml,
 * autostart. Output formats are virsh's. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pvsh.h"

#define DOMAIN_OPTION                                                                              \
    {                                                                                              \
        "domain", PVSH_OPTION_STRING, PVSH_POSITIONAL | PVSH_REQUIRED, "domain name or uuid"       \
    }

/* {"domain": <domain>} plus whatever the caller adds before end_object. */
static void begin_domain_params(struct json_writer *params, const char *domain)
{
    json_writer_init(params, false);
    json_writer_begin_object(params);
    json_writer_member_string(params, "domain", domain);
}

/* The name to show in messages: the daemon's when it says, else what the user typed. */
static const char *display_name(const struct api_reply *reply, const char *domain)
{
    const char *name = reply->result ? json_get_string(reply->result, "name") : NULL;
    return name ? name : domain;
}

/* A lifecycle call with {"domain"} (+ extra members written by `extra`), then virsh's
 * message "Domain '<name>' <verb>". */
static int domain_action(struct pvsh_context *context, const struct pvsh_arguments *arguments,
                         const char *method, const char *message_format,
                         void (*extra)(const struct pvsh_arguments *, struct json_writer *),
                         int timeout_ms)
{
    const char *domain = pvsh_argument_string(arguments, "domain");
    struct json_writer params;
    begin_domain_params(&params, domain);
    if (extra)
        extra(arguments, &params);
    json_writer_end_object(&params);
    struct api_reply reply;
    int status = pvsh_call(context, method, &params, timeout_ms, &reply);
    json_writer_free(&params);
    if (status != PVSH_EXIT_SUCCESS)
        return status;
    if (context->json)
        pvsh_print_json(context, reply.result);
    pvsh_message(context, message_format, display_name(&reply, domain));
    api_reply_free(&reply);
    return PVSH_EXIT_SUCCESS;
}

/* --- define / undefine ------------------------------------------------------------------ */

static char *read_whole_file(const char *path, struct pv_error *error)
{
    FILE *file = fopen(path, "r");
    if (!file) {
        pv_error_set_errno(error, -errno, "Failed to open file '%s'", path);
        return NULL;
    }
    char *text = NULL;
    size_t length = 0;
    size_t capacity = 0;
    for (;;) {
        if (capacity - length < 4096) {
            if (capacity >= API_CLIENT_MAX_LINE) {
                pv_error_set(error, -EFBIG, "file '%s' is too large", path);
                goto fail;
            }
            capacity = capacity ? capacity * 2 : 8192;
            char *grown = realloc(text, capacity + 1);
            if (!grown) {
                pv_error_set(error, -ENOMEM, "out of memory");
                goto fail;
            }
            text = grown;
        }
        size_t got = fread(text + length, 1, capacity - length, file);
        length += got;
        if (got == 0) {
            if (ferror(file)) {
                pv_error_set_errno(error, -EIO, "Failed to read file '%s'", path);
                goto fail;
            }
            break;
        }
    }
    fclose(file);
    text[length] = '\0';
    return text;

fail:
    free(text);
    fclose(file);
    return NULL;
}

static int run_define(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    const char *path = pvsh_argument_string(arguments, "file");
    struct pv_error error = {0};
    char *xml = read_whole_file(path, &error);
    if (!xml)
        return pvsh_report_error(context, "invalid-argument", "%s", error.message);
    struct json_writer params;
    json_writer_init(&params, false);
    json_writer_begin_object(&params);
    json_writer_member_string(&params, "xml", xml);
    json_writer_end_object(&params);
    free(xml);
    struct api_reply reply;
    int status = pvsh_call(context, "domain.define", &params, 0, &reply);
    json_writer_free(&params);
    if (status != PVSH_EXIT_SUCCESS)
        return status;
    if (context->json)
        pvsh_print_json(context, reply.result);
    const char *name = json_get_string(reply.result, "name");
    pvsh_message(context, "Domain '%s' defined from %s\n", name ? name : "?", path);
    api_reply_free(&reply);
    return PVSH_EXIT_SUCCESS;
}

static void undefine_extra(const struct pvsh_arguments *arguments, struct json_writer *params)
{
    if (pvsh_argument_bool(arguments, "managed"))
        json_writer_member_bool(params, "managed", true);
}

static int run_undefine(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    return domain_action(context, arguments, "domain.undefine", "Domain '%s' has been undefined\n",
                         undefine_extra, 0);
}

/* --- lifecycle -------------------------------------------------------------------------- */

static int run_start(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    return domain_action(context, arguments, "domain.start", "Domain '%s' started\n", NULL, 0);
}

static int run_destroy(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    return domain_action(context, arguments, "domain.destroy", "Domain '%s' destroyed\n", NULL, 0);
}

static void shutdown_extra(const struct pvsh_arguments *arguments, struct json_writer *params)
{
    const char *timeout = pvsh_argument_string(arguments, "timeout");
    if (timeout)
        json_writer_member_uint(params, "timeout", strtoull(timeout, NULL, 10));
}

static int run_shutdown(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    unsigned long long timeout = 0;
    struct pv_error error = {0};
    int ret = pvsh_argument_uint(arguments, "timeout", 24 * 3600, &timeout, &error);
    if (ret < 0)
        return pvsh_report_error(context, "invalid-argument", "%s", error.message);
    /* The daemon may wait up to the timeout for the guest: wait a little longer. */
    int reply_timeout_ms = ret == 0 ? (int)(timeout * 1000) + context->reply_timeout_ms : 0;
    return domain_action(context, arguments, "domain.shutdown", "Domain '%s' is being shutdown\n",
                         shutdown_extra, reply_timeout_ms);
}

static int run_reboot(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    return domain_action(context, arguments, "domain.reboot", "Domain '%s' is being rebooted\n",
                         NULL, 0);
}

static int run_suspend(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    return domain_action(context, arguments, "domain.suspend", "Domain '%s' suspended\n", NULL, 0);
}

static int run_resume(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    return domain_action(context, arguments, "domain.resume", "Domain '%s' resumed\n", NULL, 0);
}

static void autostart_extra(const struct pvsh_arguments *arguments, struct json_writer *params)
{
    json_writer_member_bool(params, "enabled", !pvsh_argument_bool(arguments, "disable"));
}

static int run_autostart(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    return domain_action(context, arguments, "domain.set_autostart",
                         pvsh_argument_bool(arguments, "disable")
                             ? "Domain '%s' unmarked as autostarted\n"
                             : "Domain '%s' marked as autostarted\n",
                         autostart_extra, 0);
}

/* --- list ------------------------------------------------------------------------------- */

static bool domain_is_active(const char *state)
{
    return state && strcmp(state, "shut off") != 0 && strcmp(state, "crashed") != 0;
}

/* virsh's order: running domains by id, then the others by name. */
static int compare_domains(const void *left_pointer, const void *right_pointer)
{
    yajl_val left = *(yajl_val const *)left_pointer;
    yajl_val right = *(yajl_val const *)right_pointer;
    int64_t left_id = -1;
    int64_t right_id = -1;
    bool left_has_id = json_get_int64(left, "id", &left_id);
    bool right_has_id = json_get_int64(right, "id", &right_id);
    if (left_has_id != right_has_id)
        return left_has_id ? -1 : 1;
    if (left_has_id && left_id != right_id)
        return left_id < right_id ? -1 : 1;
    const char *left_name = json_get_string(left, "name");
    const char *right_name = json_get_string(right, "name");
    return strcasecmp(left_name ? left_name : "", right_name ? right_name : "");
}

static int run_list(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    bool all = pvsh_argument_bool(arguments, "all");
    bool inactive_only = pvsh_argument_bool(arguments, "inactive");
    bool names = pvsh_argument_bool(arguments, "name");
    bool uuids = pvsh_argument_bool(arguments, "uuid");
    if (all && inactive_only)
        return pvsh_report_error(context, "invalid-argument",
                                 "Options --all and --inactive are mutually exclusive");
    struct json_writer params;
    json_writer_init(&params, false);
    json_writer_begin_object(&params);
    json_writer_member_bool(&params, "all", all || inactive_only);
    json_writer_end_object(&params);
    struct api_reply reply;
    int status = pvsh_call(context, "domain.list", &params, 0, &reply);
    json_writer_free(&params);
    if (status != PVSH_EXIT_SUCCESS)
        return status;
    if (!YAJL_IS_ARRAY(reply.result)) {
        api_reply_free(&reply);
        return pvsh_report_error(context, "internal", "the daemon sent a malformed domain list");
    }

    size_t count = 0;
    yajl_val *domains = calloc(reply.result->u.array.len + 1, sizeof(*domains));
    if (!domains) {
        api_reply_free(&reply);
        return pvsh_report_error(context, "internal", "out of memory");
    }
    for (size_t i = 0; i < reply.result->u.array.len; i++) {
        yajl_val domain = reply.result->u.array.values[i];
        const char *state = json_get_string(domain, "state");
        if (inactive_only && domain_is_active(state))
            continue;
        if (!all && !inactive_only && !domain_is_active(state))
            continue;
        domains[count++] = domain;
    }
    qsort(domains, count, sizeof(*domains), compare_domains);

    if (context->json) {
        /* The filtered list, in the order shown. */
        struct json_writer writer;
        json_writer_init(&writer, false);
        json_writer_begin_array(&writer);
        for (size_t i = 0; i < count; i++)
            json_writer_value(&writer, domains[i]);
        json_writer_end_array(&writer);
        const char *text = json_writer_text(&writer);
        if (text)
            fprintf(context->out, "%s\n", text);
        json_writer_free(&writer);
    } else if (names || uuids) {
        for (size_t i = 0; i < count; i++) {
            const char *name = json_get_string(domains[i], "name");
            const char *uuid = json_get_string(domains[i], "uuid");
            if (names && uuids)
                fprintf(context->out, "%-36s  %s\n", uuid ? uuid : "", name ? name : "");
            else
                fprintf(context->out, "%s\n", (names ? name : uuid) ? (names ? name : uuid) : "");
        }
    } else {
        static const char *const header[] = {"Id", "Name", "State"};
        struct pvsh_table table;
        pvsh_table_init(&table, 3, header);
        for (size_t i = 0; i < count; i++) {
            int64_t id = 0;
            char id_text[24] = "-";
            if (json_get_int64(domains[i], "id", &id))
                snprintf(id_text, sizeof(id_text), "%" PRId64, id);
            const char *cells[] = {id_text, json_get_string(domains[i], "name"),
                                   json_get_string(domains[i], "state")};
            pvsh_table_add_row(&table, cells);
        }
        int ret = pvsh_table_print(&table, !context->quiet, context->out);
        pvsh_table_free(&table);
        if (ret < 0) {
            free(domains);
            api_reply_free(&reply);
            return pvsh_report_error(context, "internal", "out of memory");
        }
    }
    free(domains);
    api_reply_free(&reply);
    return PVSH_EXIT_SUCCESS;
}

/* --- dominfo / domstate / dumpxml ------------------------------------------------------- */

/* Calls `method` with {"domain"} (+ "inactive" when asked) and returns the reply. */
static int domain_query(struct pvsh_context *context, const struct pvsh_arguments *arguments,
                        const char *method, bool inactive, struct api_reply *reply)
{
    struct json_writer params;
    begin_domain_params(&params, pvsh_argument_string(arguments, "domain"));
    if (inactive)
        json_writer_member_bool(&params, "inactive", true);
    json_writer_end_object(&params);
    int status = pvsh_call(context, method, &params, 0, reply);
    json_writer_free(&params);
    return status;
}

static void print_info_line(struct pvsh_context *context, const char *label, const char *value)
{
    fprintf(context->out, "%-15s %s\n", label, value ? value : "-");
}

static int run_dominfo(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    struct api_reply reply;
    int status = domain_query(context, arguments, "domain.info", false, &reply);
    if (status != PVSH_EXIT_SUCCESS)
        return status;
    yajl_val info = reply.result;
    if (context->json) {
        pvsh_print_json(context, info);
        api_reply_free(&reply);
        return PVSH_EXIT_SUCCESS;
    }
    char number[64];
    int64_t id = 0;
    uint64_t value = 0;
    bool flag = false;
    if (json_get_int64(info, "id", &id)) {
        snprintf(number, sizeof(number), "%" PRId64, id);
        print_info_line(context, "Id:", number);
    } else {
        print_info_line(context, "Id:", "-");
    }
    print_info_line(context, "Name:", json_get_string(info, "name"));
    print_info_line(context, "UUID:", json_get_string(info, "uuid"));
    if (json_get_string(info, "os_type"))
        print_info_line(context, "OS Type:", json_get_string(info, "os_type"));
    print_info_line(context, "State:", json_get_string(info, "state"));
    if (json_get_uint64(info, "vcpus", &value)) {
        snprintf(number, sizeof(number), "%" PRIu64, value);
        print_info_line(context, "CPU(s):", number);
    }
    if (json_get_uint64(info, "max_memory_kib", &value)) {
        snprintf(number, sizeof(number), "%" PRIu64 " KiB", value);
        print_info_line(context, "Max memory:", number);
    }
    if (json_get_uint64(info, "memory_kib", &value)) {
        snprintf(number, sizeof(number), "%" PRIu64 " KiB", value);
        print_info_line(context, "Used memory:", number);
    }
    if (json_get_bool(info, "persistent", &flag))
        print_info_line(context, "Persistent:", flag ? "yes" : "no");
    else
        print_info_line(context, "Persistent:", "unknown");
    if (json_get_bool(info, "autostart", &flag))
        print_info_line(context, "Autostart:", flag ? "enable" : "disable");
    /* plugvirt's line: devices a hot-plug job or the guest has not finished with. */
    yajl_val changing = json_get_array(info, "hotplug");
    if (changing && changing->u.array.len) {
        char line[512] = "";
        for (size_t i = 0; i < changing->u.array.len; i++) {
            yajl_val entry = changing->u.array.values[i];
            size_t used = strlen(line);
            snprintf(line + used, sizeof(line) - used, "%s%s %s", i ? ", " : "",
                     json_get_string(entry, "target") ? json_get_string(entry, "target") : "?",
                     json_get_string(entry, "state") ? json_get_string(entry, "state") : "?");
        }
        print_info_line(context, "Hotplug:", line);
    }
    api_reply_free(&reply);
    return PVSH_EXIT_SUCCESS;
}

static int run_domstate(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    struct api_reply reply;
    int status = domain_query(context, arguments, "domain.state", false, &reply);
    if (status != PVSH_EXIT_SUCCESS)
        return status;
    if (context->json) {
        pvsh_print_json(context, reply.result);
    } else {
        const char *state = json_get_string(reply.result, "state");
        const char *reason = json_get_string(reply.result, "reason");
        if (pvsh_argument_bool(arguments, "reason"))
            fprintf(context->out, "%s (%s)\n", state ? state : "unknown",
                    reason ? reason : "unknown");
        else
            fprintf(context->out, "%s\n", state ? state : "unknown");
    }
    api_reply_free(&reply);
    return PVSH_EXIT_SUCCESS;
}

static int run_dumpxml(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    struct api_reply reply;
    int status = domain_query(context, arguments, "domain.xml",
                              pvsh_argument_bool(arguments, "inactive"), &reply);
    if (status != PVSH_EXIT_SUCCESS)
        return status;
    if (context->json) {
        pvsh_print_json(context, reply.result);
    } else {
        const char *xml = json_get_string(reply.result, "xml");
        if (!xml) {
            api_reply_free(&reply);
            return pvsh_report_error(context, "internal", "the daemon sent no XML");
        }
        size_t length = strlen(xml);
        fputs(xml, context->out);
        if (length == 0 || xml[length - 1] != '\n')
            fputc('\n', context->out);
    }
    api_reply_free(&reply);
    return PVSH_EXIT_SUCCESS;
}

/* --- the table -------------------------------------------------------------------------- */

static const struct pvsh_option define_options[] = {
    {"file", PVSH_OPTION_STRING, PVSH_POSITIONAL | PVSH_REQUIRED,
     "file containing an XML domain description"},
    {NULL},
};
static const struct pvsh_option undefine_options[] = {
    DOMAIN_OPTION,
    {"managed", PVSH_OPTION_BOOL, 0, "also undefine a running domain (plugvirtd stops it first)"},
    {NULL},
};
static const struct pvsh_option domain_only_options[] = {DOMAIN_OPTION, {NULL}};
static const struct pvsh_option shutdown_options[] = {
    DOMAIN_OPTION,
    {"timeout", PVSH_OPTION_STRING, 0, "seconds to wait for the guest to power off before failing"},
    {NULL},
};
static const struct pvsh_option list_options[] = {
    {"all", PVSH_OPTION_BOOL, 0, "list inactive & active domains"},
    {"inactive", PVSH_OPTION_BOOL, 0, "list inactive domains"},
    {"name", PVSH_OPTION_BOOL, 0, "list domain names only"},
    {"uuid", PVSH_OPTION_BOOL, 0, "list uuid's only"},
    {NULL},
};
static const struct pvsh_option domstate_options[] = {
    DOMAIN_OPTION,
    {"reason", PVSH_OPTION_BOOL, 0, "also print reason for the state"},
    {NULL},
};
static const struct pvsh_option dumpxml_options[] = {
    DOMAIN_OPTION,
    {"inactive", PVSH_OPTION_BOOL, 0, "show inactive defined XML"},
    {NULL},
};
static const struct pvsh_option autostart_options[] = {
    DOMAIN_OPTION,
    {"disable", PVSH_OPTION_BOOL, 0, "disable autostarting"},
    {NULL},
};

const struct pvsh_command pvsh_domain_commands[] = {
    {"define", "define (but don't start) a domain from an XML file", define_options, run_define},
    {"undefine", "undefine a domain", undefine_options, run_undefine},
    {"start", "start a (previously defined) inactive domain", domain_only_options, run_start},
    {"destroy", "destroy (stop) a domain", domain_only_options, run_destroy},
    {"shutdown", "gracefully shutdown a domain (ACPI power button)", shutdown_options,
     run_shutdown},
    {"reboot", "reboot a domain", domain_only_options, run_reboot},
    {"suspend", "suspend a domain", domain_only_options, run_suspend},
    {"resume", "resume a domain", domain_only_options, run_resume},
    {"autostart", "autostart a domain", autostart_options, run_autostart},
    {"list", "list domains", list_options, run_list},
    {"dominfo", "domain information", domain_only_options, run_dominfo},
    {"domstate", "domain state", domstate_options, run_domstate},
    {"dumpxml", "domain information in XML", dumpxml_options, run_dumpxml},
    {"console", "connect to the guest console", pvsh_console_options, pvsh_run_console},
    {NULL},
};

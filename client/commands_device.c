/* pvsh device commands: attach-device, detach-device, attach-disk, detach-disk,
 * domblklist, with virsh's --live/--config/--persistent/--current rules. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pvsh.h"

#define DOMAIN_OPTION                                                                              \
    {                                                                                              \
        "domain", PVSH_OPTION_STRING, PVSH_POSITIONAL | PVSH_REQUIRED, "domain name or uuid"       \
    }
#define FLAG_OPTIONS                                                                               \
    {"persistent", PVSH_OPTION_BOOL, 0, "make live change persistent"},                            \
        {"config", PVSH_OPTION_BOOL, 0, "affect next boot"},                                       \
        {"live", PVSH_OPTION_BOOL, 0, "affect running domain"},                                    \
    {                                                                                              \
        "current", PVSH_OPTION_BOOL, 0, "affect current domain"                                    \
    }

/* --- flags ------------------------------------------------------------------------------- */

static int check_exclusive(struct pvsh_context *context, const struct pvsh_arguments *arguments,
                           const char *first, const char *second)
{
    if (pvsh_argument_bool(arguments, first) && pvsh_argument_bool(arguments, second))
        return pvsh_report_error(context, "invalid-argument",
                                 "Options --%s and --%s are mutually exclusive", first, second);
    return PVSH_EXIT_SUCCESS;
}

static int resolve_flags(struct pvsh_context *context, const struct pvsh_arguments *arguments,
                         const char *domain, bool *live, bool *config)
{
    if (check_exclusive(context, arguments, "current", "live") ||
        check_exclusive(context, arguments, "current", "config") ||
        check_exclusive(context, arguments, "persistent", "current"))
        return PVSH_EXIT_FAILURE;
    *live = pvsh_argument_bool(arguments, "live");
    *config = pvsh_argument_bool(arguments, "config");
    if (pvsh_argument_bool(arguments, "persistent")) {
        /* virsh: the definition always, the running domain too when it is active. */
        *config = true;
        struct json_writer params;
        json_writer_init(&params, false);
        json_writer_begin_object(&params);
        json_writer_member_string(&params, "domain", domain);
        json_writer_end_object(&params);
        struct api_reply reply;
        int status = pvsh_call(context, "domain.state", &params, 0, &reply);
        json_writer_free(&params);
        if (status != PVSH_EXIT_SUCCESS)
            return status;
        const char *state = json_get_string(reply.result, "state");
        if (state && strcmp(state, "shut off") != 0 && strcmp(state, "crashed") != 0)
            *live = true;
        api_reply_free(&reply);
    }
    return PVSH_EXIT_SUCCESS;
}

static void write_flags(struct json_writer *params, bool live, bool config)
{
    json_writer_key(params, "flags");
    json_writer_begin_array(params);
    if (live)
        json_writer_string(params, "live");
    if (config)
        json_writer_string(params, "config");
    json_writer_end_array(params);
}

int pvsh_resolve_flags(struct pvsh_context *context, const struct pvsh_arguments *arguments,
                       const char *domain, struct json_writer *params)
{
    bool live = false;
    bool config = false;
    int status = resolve_flags(context, arguments, domain, &live, &config);
    if (status == PVSH_EXIT_SUCCESS)
        write_flags(params, live, config);
    return status;
}

/* --- disk XML ---------------------------------------------------------------------------- */

char *pvsh_build_disk_xml(const struct pvsh_disk_options *options, struct pv_error *error)
{
    if (!options->source || !*options->source || !options->target || !*options->target) {
        pv_error_set(error, -EINVAL, "a source and a target are required");
        return NULL;
    }
    const char *source_type = options->source_type;
    if (source_type && strcmp(source_type, "file") != 0 && strcmp(source_type, "block") != 0) {
        pv_error_set(error, -EINVAL, "Unknown source type: '%s'", source_type);
        return NULL;
    }
    if (!source_type) {
        struct stat status;
        source_type =
            stat(options->source, &status) == 0 && S_ISBLK(status.st_mode) ? "block" : "file";
    }
    if (options->mode && strcmp(options->mode, "readonly") != 0 &&
        strcmp(options->mode, "shareable") != 0) {
        pv_error_set(error, -EINVAL, "No support for %s in command 'attach-disk'", options->mode);
        return NULL;
    }

    struct pvsh_xml buffer = {0};
    pvsh_xml_append(&buffer, "<disk type='%' device='%'>\n", source_type,
                    options->device ? options->device : "disk");
    if (options->driver || options->subdriver || options->cache || options->io) {
        pvsh_xml_append(&buffer, "  <driver");
        if (options->driver)
            pvsh_xml_append(&buffer, " name='%'", options->driver);
        if (options->subdriver)
            pvsh_xml_append(&buffer, " type='%'", options->subdriver);
        if (options->cache)
            pvsh_xml_append(&buffer, " cache='%'", options->cache);
        if (options->io)
            pvsh_xml_append(&buffer, " io='%'", options->io);
        pvsh_xml_append(&buffer, "/>\n");
    }
    pvsh_xml_append(&buffer,
                    strcmp(source_type, "block") == 0 ? "  <source dev='%'/>\n"
                                                      : "  <source file='%'/>\n",
                    options->source);
    if (options->target_bus)
        pvsh_xml_append(&buffer, "  <target dev='%' bus='%'/>\n", options->target,
                        options->target_bus);
    else
        pvsh_xml_append(&buffer, "  <target dev='%'/>\n", options->target);
    if (options->serial)
        pvsh_xml_append(&buffer, "  <serial>%</serial>\n", options->serial);
    if (options->mode)
        pvsh_xml_append(&buffer, strcmp(options->mode, "readonly") == 0 ? "  <readonly/>\n"
                                                                        : "  <shareable/>\n");
    pvsh_xml_append(&buffer, "</disk>\n");
    return pvsh_xml_take(&buffer, error);
}

/* --- attach / detach --------------------------------------------------------------------- */

static char *read_xml_file(struct pvsh_context *context, const char *path)
{
    FILE *file = fopen(path, "r");
    if (!file) {
        pvsh_report_error(context, "invalid-argument", "Failed to open file '%s': %s", path,
                          strerror(errno));
        return NULL;
    }
    char *text = NULL;
    size_t capacity = 0;
    ssize_t length = getdelim(&text, &capacity, '\0', file);
    bool failed = ferror(file);
    fclose(file);
    if (length < 0 && !failed) { /* an empty file */
        free(text);
        text = strdup("");
    }
    if (failed || !text) {
        free(text);
        pvsh_report_error(context, "invalid-argument", "Failed to read file '%s'", path);
        return NULL;
    }
    return text;
}

int pvsh_attach_xml(struct pvsh_context *context, const struct pvsh_arguments *arguments,
                    const char *xml, const char *success_message)
{
    const char *domain = pvsh_argument_string(arguments, "domain");
    struct json_writer params;
    json_writer_init(&params, false);
    json_writer_begin_object(&params);
    json_writer_member_string(&params, "domain", domain);
    json_writer_member_string(&params, "xml", xml);
    int status = pvsh_resolve_flags(context, arguments, domain, &params);
    if (status != PVSH_EXIT_SUCCESS) {
        json_writer_free(&params);
        return status;
    }
    json_writer_end_object(&params);
    struct api_reply reply;
    status = pvsh_call(context, "domain.attach_device", &params, 0, &reply);
    json_writer_free(&params);
    if (status != PVSH_EXIT_SUCCESS)
        return status;
    if (context->json)
        pvsh_print_json(context, reply.result);
    pvsh_message(context, "%s\n", success_message);
    api_reply_free(&reply);
    return PVSH_EXIT_SUCCESS;
}

/* --wait[=SECONDS]: 0 and *seconds, 1 when absent, or -1 after reporting a bad value. */
static int wait_seconds(struct pvsh_context *context, const struct pvsh_arguments *arguments,
                        unsigned long long *seconds)
{
    const char *text = pvsh_argument_string(arguments, "wait");
    if (!text)
        return 1;
    if (!*text) {
        *seconds = PVSH_DEFAULT_WAIT_SECONDS;
        return 0;
    }
    struct pv_error error = {0};
    if (pvsh_argument_uint(arguments, "wait", 24 * 3600, seconds, &error) < 0 || *seconds == 0) {
        pvsh_report_error(context, "invalid-argument", "%s",
                          error.code ? error.message : "--wait needs a positive number of seconds");
        return -1;
    }
    return 0;
}

int pvsh_parse_detach_options(struct pvsh_context *context, const struct pvsh_arguments *arguments,
                              const char *domain, struct pvsh_detach_options *options)
{
    *options = (struct pvsh_detach_options){0};
    int wait_absent = wait_seconds(context, arguments, &options->seconds);
    if (wait_absent < 0)
        return PVSH_EXIT_FAILURE;
    options->wait = wait_absent == 0;
    return resolve_flags(context, arguments, domain, &options->live, &options->config);
}

int pvsh_detach_xml(struct pvsh_context *context, const struct pvsh_arguments *arguments,
                    const char *xml, const struct pvsh_detach_options *options, const char *target,
                    const char *success_message)
{
    struct json_writer params;
    json_writer_init(&params, false);
    json_writer_begin_object(&params);
    json_writer_member_string(&params, "domain", pvsh_argument_string(arguments, "domain"));
    json_writer_member_string(&params, "xml", xml);
    write_flags(&params, options->live, options->config);
    if (options->wait)
        json_writer_member_uint(&params, "timeout", options->seconds);
    json_writer_end_object(&params);
    struct api_reply reply;
    int reply_timeout_ms =
        options->wait ? (int)(options->seconds * 1000) + context->reply_timeout_ms : 0;
    int status = pvsh_call(context, "domain.detach_device", &params, reply_timeout_ms, &reply);
    json_writer_free(&params);
    if (status != PVSH_EXIT_SUCCESS)
        return status;
    const char *outcome = json_get_string(reply.result, "status");
    bool pending = outcome && strcmp(outcome, "pending") == 0;
    if (context->json)
        pvsh_print_json(context, reply.result);
    if (pending) {
        /* Never reported as detached: the guest still has the device. */
        const char *message = json_get_string(reply.result, "message");
        if (!context->json) {
            if (message)
                fprintf(context->out, "%s\n", message);
            else
                fprintf(context->out, "detach requested; the guest has not released %s yet\n",
                        target ? target : "the device");
        }
        api_reply_free(&reply);
        return PVSH_EXIT_PENDING;
    }
    pvsh_message(context, "%s\n", success_message);
    api_reply_free(&reply);
    return PVSH_EXIT_SUCCESS;
}

static int run_attach_device(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    char *xml = read_xml_file(context, pvsh_argument_string(arguments, "file"));
    if (!xml)
        return PVSH_EXIT_FAILURE;
    int status = pvsh_attach_xml(context, arguments, xml, "Device attached successfully");
    free(xml);
    return status;
}

/* The target dev='...' of a device XML, for the pending message (best effort). */
static char *find_target_dev(const char *xml)
{
    const char *target = strstr(xml, "<target");
    const char *dev = target ? strstr(target, "dev=") : NULL;
    if (!dev || (dev[4] != '\'' && dev[4] != '"'))
        return NULL;
    const char *end = strchr(dev + 5, dev[4]);
    return end ? strndup(dev + 5, (size_t)(end - dev - 5)) : NULL;
}

static int run_detach_device(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    const char *domain = pvsh_argument_string(arguments, "domain");
    struct pvsh_detach_options detach_options;
    int status = pvsh_parse_detach_options(context, arguments, domain, &detach_options);
    if (status != PVSH_EXIT_SUCCESS)
        return status;
    char *xml = read_xml_file(context, pvsh_argument_string(arguments, "file"));
    if (!xml)
        return PVSH_EXIT_FAILURE;
    char *target = find_target_dev(xml);
    status = pvsh_detach_xml(context, arguments, xml, &detach_options, target,
                             "Device detached successfully");
    free(target);
    free(xml);
    return status;
}

static int run_attach_disk(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    struct pvsh_disk_options options = {
        .source = pvsh_argument_string(arguments, "source"),
        .target = pvsh_argument_string(arguments, "target"),
        .source_type = pvsh_argument_string(arguments, "sourcetype"),
        .device = pvsh_argument_string(arguments, "type"),
        .driver = pvsh_argument_string(arguments, "driver"),
        .subdriver = pvsh_argument_string(arguments, "subdriver"),
        .cache = pvsh_argument_string(arguments, "cache"),
        .io = pvsh_argument_string(arguments, "io"),
        .serial = pvsh_argument_string(arguments, "serial"),
        .target_bus = pvsh_argument_string(arguments, "targetbus"),
        .mode = pvsh_argument_string(arguments, "mode"),
    };
    struct pv_error error = {0};
    char *xml = pvsh_build_disk_xml(&options, &error);
    if (!xml)
        return pvsh_report_error(context, "invalid-argument", "%s", error.message);
    return pvsh_print_or_attach_xml(context, arguments, xml, "Disk attached successfully");
}

int pvsh_print_or_attach_xml(struct pvsh_context *context, const struct pvsh_arguments *arguments,
                             char *xml, const char *success_message)
{
    int status;
    if (pvsh_argument_bool(arguments, "print-xml")) {
        fputs(xml, context->out);
        status = PVSH_EXIT_SUCCESS;
    } else {
        status = pvsh_attach_xml(context, arguments, xml, success_message);
    }
    free(xml);
    return status;
}

int pvsh_fetch_device_list(struct pvsh_context *context, const char *method, const char *domain,
                           bool inactive, const char *what, struct api_reply *reply)
{
    struct json_writer params;
    json_writer_init(&params, false);
    json_writer_begin_object(&params);
    json_writer_member_string(&params, "domain", domain);
    if (inactive)
        json_writer_member_bool(&params, "inactive", true);
    json_writer_end_object(&params);
    int status = pvsh_call(context, method, &params, 0, reply);
    json_writer_free(&params);
    if (status == PVSH_EXIT_SUCCESS && !YAJL_IS_ARRAY(reply->result)) {
        api_reply_free(reply);
        return pvsh_report_error(context, "internal", "the daemon sent a malformed %s", what);
    }
    return status;
}

/* Fetches the domain's disks (domain.blklist) into `reply`. */
static int fetch_disks(struct pvsh_context *context, const char *domain, bool inactive,
                       struct api_reply *reply)
{
    return pvsh_fetch_device_list(context, "domain.blklist", domain, inactive, "disk list", reply);
}

static int run_detach_disk(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    const char *domain = pvsh_argument_string(arguments, "domain");
    const char *target = pvsh_argument_string(arguments, "target");
    struct pvsh_detach_options detach_options;
    int status = pvsh_parse_detach_options(context, arguments, domain, &detach_options);
    if (status != PVSH_EXIT_SUCCESS)
        return status;
    /* As virsh does: find the disk (by target or source path) in the definition that is
     * going to change, and send its description. */
    struct api_reply disks;
    status = fetch_disks(context, domain, detach_options.config && !detach_options.live, &disks);
    if (status != PVSH_EXIT_SUCCESS)
        return status;
    /* A target wins; a source path must name exactly one disk (two disks may share an image
     * marked <shareable/>, and detaching "the first" would be a guess). */
    yajl_val found = NULL;
    char sharing[256] = "";
    size_t source_matches = 0;
    for (size_t i = 0; i < disks.result->u.array.len; i++) {
        yajl_val disk = disks.result->u.array.values[i];
        const char *disk_target = json_get_string(disk, "target");
        const char *disk_source = json_get_string(disk, "source");
        if (disk_target && strcmp(disk_target, target) == 0) {
            found = disk;
            source_matches = 0;
            break;
        }
        if (disk_source && strcmp(disk_source, target) == 0) {
            found = disk;
            size_t used = strlen(sharing);
            snprintf(sharing + used, sizeof(sharing) - used, "%s%s", source_matches ? ", " : "",
                     disk_target ? disk_target : "?");
            source_matches++;
        }
    }
    if (source_matches > 1) {
        api_reply_free(&disks);
        return pvsh_report_error(context, "invalid-argument",
                                 "source %s is used by more than one disk of %s (%s); name the "
                                 "target to detach",
                                 target, domain, sharing);
    }
    if (!found) {
        api_reply_free(&disks);
        return pvsh_report_error(context, "invalid-argument",
                                 "No disk found whose source path or target is %s", target);
    }
    const char *type = json_get_string(found, "type");
    struct pvsh_disk_options options = {
        .source = json_get_string(found, "source"),
        .target = json_get_string(found, "target"),
        .source_type = type && strcmp(type, "block") == 0 ? "block" : "file",
        .device = json_get_string(found, "device"),
    };
    struct pv_error error = {0};
    char *xml = NULL;
    if (options.source && *options.source) {
        xml = pvsh_build_disk_xml(&options, &error);
    } else if (asprintf(&xml, "<disk type='%s' device='%s'>\n  <target dev='%s'/>\n</disk>\n",
                        options.source_type, options.device ? options.device : "disk",
                        options.target) < 0) {
        xml = NULL;
        pv_error_set(&error, -ENOMEM, "out of memory");
    }
    char *disk_target = options.target ? strdup(options.target) : NULL;
    api_reply_free(&disks);
    if (!xml) {
        free(disk_target);
        return pvsh_report_error(context, "internal", "%s", error.message);
    }
    status = pvsh_detach_xml(context, arguments, xml, &detach_options, disk_target,
                             "Disk detached successfully");
    free(disk_target);
    free(xml);
    return status;
}

static int run_domblklist(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    struct api_reply reply;
    int status = fetch_disks(context, pvsh_argument_string(arguments, "domain"),
                             pvsh_argument_bool(arguments, "inactive"), &reply);
    if (status != PVSH_EXIT_SUCCESS)
        return status;
    if (context->json) {
        pvsh_print_json(context, reply.result);
        api_reply_free(&reply);
        return PVSH_EXIT_SUCCESS;
    }
    bool details = pvsh_argument_bool(arguments, "details");
    static const char *const header[] = {"Target", "Source"};
    /* State (plugvirt's column): attached, or attaching/detaching while a hot-plug job or
     * the guest has not finished. */
    static const char *const details_header[] = {"Type", "Device", "Target", "Source", "State"};
    struct pvsh_table table;
    pvsh_table_init(&table, details ? 5 : 2, details ? details_header : header);
    for (size_t i = 0; i < reply.result->u.array.len; i++) {
        yajl_val disk = reply.result->u.array.values[i];
        const char *source = json_get_string(disk, "source");
        if (source && !*source)
            source = NULL;
        const char *target = json_get_string(disk, "target");
        if (details) {
            const char *state = json_get_string(disk, "state");
            const char *cells[] = {json_get_string(disk, "type"), json_get_string(disk, "device"),
                                   target, source, state ? state : "-"};
            pvsh_table_add_row(&table, cells);
        } else {
            const char *cells[] = {target, source};
            pvsh_table_add_row(&table, cells);
        }
    }
    int ret = pvsh_table_print(&table, !context->quiet, context->out);
    pvsh_table_free(&table);
    api_reply_free(&reply);
    if (ret < 0)
        return pvsh_report_error(context, "internal", "out of memory");
    return PVSH_EXIT_SUCCESS;
}

/* --- the table -------------------------------------------------------------------------- */

static const struct pvsh_option attach_device_options[] = {
    DOMAIN_OPTION,
    {"file", PVSH_OPTION_STRING, PVSH_POSITIONAL | PVSH_REQUIRED, "XML file"},
    FLAG_OPTIONS,
    {NULL},
};
static const struct pvsh_option detach_device_options[] = {
    DOMAIN_OPTION,
    {"file", PVSH_OPTION_STRING, PVSH_POSITIONAL | PVSH_REQUIRED, "XML file"},
    FLAG_OPTIONS,
    {"wait", PVSH_OPTION_OPTIONAL_STRING, 0,
     "wait up to SECONDS (default 60) for the guest to release the device"},
    {NULL},
};
static const struct pvsh_option attach_disk_options[] = {
    DOMAIN_OPTION,
    {"source", PVSH_OPTION_STRING, PVSH_POSITIONAL | PVSH_REQUIRED,
     "source of disk device or path to storage"},
    {"target", PVSH_OPTION_STRING, PVSH_POSITIONAL | PVSH_REQUIRED, "target of disk device"},
    {"targetbus", PVSH_OPTION_STRING, 0, "target bus of disk device"},
    {"driver", PVSH_OPTION_STRING, 0, "driver of disk device"},
    {"subdriver", PVSH_OPTION_STRING, 0, "subdriver of disk device (raw, qcow2)"},
    {"cache", PVSH_OPTION_STRING, 0, "cache mode of disk device"},
    {"io", PVSH_OPTION_STRING, 0, "io policy of disk device"},
    {"type", PVSH_OPTION_STRING, 0, "target device type (disk, cdrom)"},
    {"mode", PVSH_OPTION_STRING, 0, "mode of device reading and writing (readonly)"},
    {"sourcetype", PVSH_OPTION_STRING, 0, "type of source (block|file)"},
    {"serial", PVSH_OPTION_STRING, 0, "serial of disk device"},
    {"print-xml", PVSH_OPTION_BOOL, 0, "print XML document rather than attach the disk"},
    FLAG_OPTIONS,
    {NULL},
};
static const struct pvsh_option detach_disk_options[] = {
    DOMAIN_OPTION,
    {"target", PVSH_OPTION_STRING, PVSH_POSITIONAL | PVSH_REQUIRED,
     "target of disk device (or its source path)"},
    FLAG_OPTIONS,
    {"wait", PVSH_OPTION_OPTIONAL_STRING, 0,
     "wait up to SECONDS (default 60) for the guest to release the disk"},
    {NULL},
};
static const struct pvsh_option domblklist_options[] = {
    DOMAIN_OPTION,
    {"inactive", PVSH_OPTION_BOOL, 0, "get inactive rather than running configuration"},
    {"details", PVSH_OPTION_BOOL, 0, "additionally display the type and device value"},
    {NULL},
};

const struct pvsh_command pvsh_device_commands[] = {
    {"attach-device", "attach device from an XML file", attach_device_options, run_attach_device},
    {"detach-device", "detach device from an XML file", detach_device_options, run_detach_device},
    {"attach-disk", "attach disk device", attach_disk_options, run_attach_disk},
    {"detach-disk", "detach disk device", detach_disk_options, run_detach_disk},
    {"domblklist", "list all domain blocks", domblklist_options, run_domblklist},
    {NULL},
};

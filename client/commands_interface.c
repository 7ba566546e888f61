/* pvsh network interface commands, with virsh's names, options and output: attach-interface,
 * detach-interface, domiflist, domif-setlink, domif-getlink, domifstat. The interface lists
 * come from the daemon's domain.iflist, link changes go through domain.set_link and the
 * counters through domain.ifstat (plugvirtd(8)). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* virsh options plugvirt has no equivalent for, each with what to do instead. They are in
 * the option table (so virsh's command lines parse) and refused by name when given. */
static const struct {
    const char *name;
    const char *reason;
} unsupported_options[] = {
    {"script", "plugvirt runs no interface scripts: use --type bridge --source BRIDGE, or "
               "create the tap yourself and name it with --target"},
    {"inbound", "plugvirt has no bandwidth limits (<bandwidth>)"},
    {"outbound", "plugvirt has no bandwidth limits (<bandwidth>)"},
    {"managed", "it only applies to --type hostdev, which plugvirt does not support"},
    {"source-mode", "it only applies to --type vhostuser, which plugvirt does not support"},
};

static int refuse_unsupported(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    for (size_t i = 0; i < sizeof(unsupported_options) / sizeof(unsupported_options[0]); i++) {
        if (pvsh_argument_bool(arguments, unsupported_options[i].name))
            return pvsh_report_error(context, "unsupported",
                                     "option --%s is not supported by plugvirt: %s",
                                     unsupported_options[i].name, unsupported_options[i].reason);
    }
    return PVSH_EXIT_SUCCESS;
}

/* --- the <interface> element --------------------------------------------------------------- */

/* libvirt's interface types (virDomainNetType). pvsh writes the <source> of bridge, network
 * and direct; other types go without one, and the daemon accepts or refuses each type with
 * its own message (plugvirt-domain(5)). */
static const char *const known_types[] = {
    "user",     "ethernet", "vhostuser", "server", "client", "mcast", "network", "bridge",
    "internal", "direct",   "hostdev",   "udp",    "vdpa",   "null",  "vds",
};

static bool known_type(const char *type)
{
    for (size_t i = 0; i < sizeof(known_types) / sizeof(known_types[0]); i++)
        if (strcmp(known_types[i], type) == 0)
            return true;
    return false;
}

char *pvsh_build_interface_xml(const struct pvsh_interface_options *options, struct pv_error *error)
{
    const char *type = options->type;
    const char *source = options->source && *options->source ? options->source : NULL;
    /* <source> attribute per type; NULL: the type has no source pvsh can write. */
    const char *source_attribute = NULL;
    if (!type || !known_type(type)) {
        pv_error_set(error, -EINVAL, "No support for %s in command 'attach-interface'",
                     type ? type : "");
        return NULL;
    }
    if (strcmp(type, "bridge") == 0)
        source_attribute = "bridge";
    else if (strcmp(type, "network") == 0)
        source_attribute = "network";
    else if (strcmp(type, "direct") == 0)
        source_attribute = "dev";
    if (source_attribute && !source) {
        pv_error_set(error, -EINVAL, "--type %s needs --source (the %s to connect to)", type,
                     strcmp(source_attribute, "dev") == 0 ? "host device" : source_attribute);
        return NULL;
    }
    if (!source_attribute && source) {
        /* An ethernet interface is a tap of its own: a source would be silently dropped. */
        if (strcmp(type, "ethernet") == 0)
            pv_error_set(error, -EINVAL,
                         "--source is not used with --type ethernet: name the tap with --target, "
                         "or use --type bridge --source BRIDGE");
        else
            pv_error_set(error, -EINVAL,
                         "No support for --source with --type %s in command "
                         "'attach-interface'",
                         type);
        return NULL;
    }

    struct pvsh_xml xml = {0};
    pvsh_xml_append(&xml, "<interface type='%'>\n", type);
    if (source_attribute) {
        pvsh_xml_append(&xml, "  <source ");
        pvsh_xml_append(&xml, source_attribute);
        pvsh_xml_append(&xml, "='%'/>\n", source);
    }
    if (options->target)
        pvsh_xml_append(&xml, "  <target dev='%'/>\n", options->target);
    if (options->mac)
        pvsh_xml_append(&xml, "  <mac address='%'/>\n", options->mac);
    if (options->model)
        pvsh_xml_append(&xml, "  <model type='%'/>\n", options->model);
    if (options->alias)
        pvsh_xml_append(&xml, "  <alias name='%'/>\n", options->alias);
    pvsh_xml_append(&xml, "</interface>\n");
    return pvsh_xml_take(&xml, error);
}

static int run_attach_interface(struct pvsh_context *context,
                                const struct pvsh_arguments *arguments)
{
    if (refuse_unsupported(context, arguments) != PVSH_EXIT_SUCCESS)
        return PVSH_EXIT_FAILURE;
    struct pvsh_interface_options options = {
        .type = pvsh_argument_string(arguments, "type"),
        .source = pvsh_argument_string(arguments, "source"),
        .target = pvsh_argument_string(arguments, "target"),
        .mac = pvsh_argument_string(arguments, "mac"),
        .model = pvsh_argument_string(arguments, "model"),
        .alias = pvsh_argument_string(arguments, "alias"),
    };
    struct pv_error error = {0};
    char *xml = pvsh_build_interface_xml(&options, &error);
    if (!xml)
        return pvsh_report_error(context, "invalid-argument", "%s", error.message);
    return pvsh_print_or_attach_xml(context, arguments, xml, "Interface attached successfully");
}

/* --- the interface list ------------------------------------------------------------------ */

/* domain.iflist into `reply`: an array of {type, source, target, model, mac, alias, link}. */
static int fetch_interfaces(struct pvsh_context *context, const char *domain, bool inactive,
                            struct api_reply *reply)
{
    return pvsh_fetch_device_list(context, "domain.iflist", domain, inactive, "interface list",
                                  reply);
}

/* MAC addresses compare without regard to case, as libvirt does. */
static bool same_mac(const char *a, const char *b)
{
    return a && b && strcasecmp(a, b) == 0;
}

/* The interface named by its tap (target dev) or its MAC address, or NULL. */
static yajl_val find_interface(yajl_val list, const char *name)
{
    for (size_t i = 0; i < list->u.array.len; i++) {
        yajl_val interface = list->u.array.values[i];
        const char *target = json_get_string(interface, "target");
        if ((target && strcmp(target, name) == 0) ||
            same_mac(json_get_string(interface, "mac"), name))
            return interface;
    }
    return NULL;
}

static int run_domiflist(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    struct api_reply reply;
    int status = fetch_interfaces(context, pvsh_argument_string(arguments, "domain"),
                                  pvsh_argument_bool(arguments, "inactive"), &reply);
    if (status != PVSH_EXIT_SUCCESS)
        return status;
    if (context->json) {
        pvsh_print_json(context, reply.result);
        api_reply_free(&reply);
        return PVSH_EXIT_SUCCESS;
    }
    static const char *const header[] = {"Interface", "Type", "Source", "Model", "MAC"};
    struct pvsh_table table;
    pvsh_table_init(&table, 5, header);
    for (size_t i = 0; i < reply.result->u.array.len; i++) {
        yajl_val interface = reply.result->u.array.values[i];
        const char *cells[5] = {
            json_get_string(interface, "target"), json_get_string(interface, "type"),
            json_get_string(interface, "source"), json_get_string(interface, "model"),
            json_get_string(interface, "mac"),
        };
        for (size_t cell = 0; cell < 5; cell++)
            if (cells[cell] && !*cells[cell])
                cells[cell] = NULL; /* printed as "-", like virsh */
        pvsh_table_add_row(&table, cells);
    }
    int ret = pvsh_table_print(&table, !context->quiet, context->out);
    pvsh_table_free(&table);
    api_reply_free(&reply);
    if (ret < 0)
        return pvsh_report_error(context, "internal", "out of memory");
    return PVSH_EXIT_SUCCESS;
}

static int run_detach_interface(struct pvsh_context *context,
                                const struct pvsh_arguments *arguments)
{
    const char *domain = pvsh_argument_string(arguments, "domain");
    const char *type = pvsh_argument_string(arguments, "type");
    const char *mac = pvsh_argument_string(arguments, "mac");
    struct pvsh_detach_options detach_options;
    int status = pvsh_parse_detach_options(context, arguments, domain, &detach_options);
    if (status != PVSH_EXIT_SUCCESS)
        return status;
    /* As virsh does: find the interface in the definition that is going to change. */
    struct api_reply interfaces;
    status = fetch_interfaces(context, domain, detach_options.config && !detach_options.live,
                              &interfaces);
    if (status != PVSH_EXIT_SUCCESS)
        return status;
    yajl_val found = NULL;
    size_t of_type = 0;
    for (size_t i = 0; i < interfaces.result->u.array.len; i++) {
        yajl_val interface = interfaces.result->u.array.values[i];
        const char *interface_type = json_get_string(interface, "type");
        if (!interface_type || strcmp(interface_type, type) != 0)
            continue;
        of_type++;
        if (!mac || same_mac(json_get_string(interface, "mac"), mac))
            found = found ? found : interface;
    }
    if (!mac && of_type > 1) {
        api_reply_free(&interfaces);
        return pvsh_report_error(context, "invalid-argument",
                                 "Domain has %zu interfaces. Please specify which one to detach "
                                 "using --mac",
                                 of_type);
    }
    if (!found) {
        api_reply_free(&interfaces);
        if (mac)
            return pvsh_report_error(context, "invalid-argument",
                                     "No interface with MAC address %s was found", mac);
        return pvsh_report_error(context, "invalid-argument", "No interface found whose type is %s",
                                 type);
    }
    /* The daemon matches an interface by its MAC (or, lacking one, its alias); the source
     * is part of a valid element of its type. */
    const char *found_mac = json_get_string(found, "mac");
    const char *found_alias = json_get_string(found, "alias");
    const char *found_source = json_get_string(found, "source");
    struct pvsh_interface_options element = {
        .type = type,
        .source = found_source && *found_source ? found_source : NULL,
        .mac = found_mac && *found_mac ? found_mac : NULL,
        .alias = !(found_mac && *found_mac) && found_alias && *found_alias ? found_alias : NULL,
    };
    struct pv_error error = {0};
    char *xml = pvsh_build_interface_xml(&element, &error);
    const char *found_target = json_get_string(found, "target");
    char *target = strdup(found_target && *found_target ? found_target
                          : found_mac                   ? found_mac
                                                        : type);
    api_reply_free(&interfaces);
    if (!xml || !target) {
        free(xml);
        free(target);
        return pvsh_report_error(context, "internal", "%s", xml ? "out of memory" : error.message);
    }
    status = pvsh_detach_xml(context, arguments, xml, &detach_options, target,
                             "Interface detached successfully");
    free(target);
    free(xml);
    return status;
}

/* --- link state and counters ------------------------------------------------------------- */

static int run_domif_getlink(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    const char *domain = pvsh_argument_string(arguments, "domain");
    const char *name = pvsh_argument_string(arguments, "interface");
    struct api_reply reply;
    int status = fetch_interfaces(context, domain, pvsh_argument_bool(arguments, "config"), &reply);
    if (status != PVSH_EXIT_SUCCESS)
        return status;
    yajl_val interface = find_interface(reply.result, name);
    if (!interface) {
        api_reply_free(&reply);
        bool config = pvsh_argument_bool(arguments, "config");
        /* The daemon's wording for the same mistake (domain.set_link, domain.ifstat). */
        return pvsh_report_error(context, "no-device",
                                 "no interface '%s' in %sdomain '%s' (name it by its tap or MAC "
                                 "address: pvsh domiflist %s%s lists them)",
                                 name, config ? "the persistent definition of " : "", domain,
                                 domain, config ? " --inactive" : "");
    }
    const char *link = json_get_string(interface, "link");
    if (context->json)
        pvsh_print_json(context, interface);
    else
        fprintf(context->out, "%s %s\n", name, link ? link : "up");
    api_reply_free(&reply);
    return PVSH_EXIT_SUCCESS;
}

static int run_domif_setlink(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    const char *state = pvsh_argument_string(arguments, "state");
    if (strcmp(state, "up") != 0 && strcmp(state, "down") != 0)
        return pvsh_report_error(context, "invalid-argument",
                                 "invalid link state '%s': it is 'up' or 'down'", state);
    struct json_writer params;
    json_writer_init(&params, false);
    json_writer_begin_object(&params);
    json_writer_member_string(&params, "domain", pvsh_argument_string(arguments, "domain"));
    json_writer_member_string(&params, "interface", pvsh_argument_string(arguments, "interface"));
    json_writer_member_string(&params, "state", state);
    /* virsh: --config (or its alias --persistent) changes the definition; without it the
     * running domain, or the definition of a shut off one. */
    if (pvsh_argument_bool(arguments, "config") || pvsh_argument_bool(arguments, "persistent")) {
        json_writer_key(&params, "flags");
        json_writer_begin_array(&params);
        json_writer_string(&params, "config");
        json_writer_end_array(&params);
    }
    json_writer_end_object(&params);
    struct api_reply reply;
    int status = pvsh_call(context, "domain.set_link", &params, 0, &reply);
    json_writer_free(&params);
    if (status != PVSH_EXIT_SUCCESS)
        return status;
    if (context->json)
        pvsh_print_json(context, reply.result);
    pvsh_message(context, "Device updated successfully\n");
    api_reply_free(&reply);
    return PVSH_EXIT_SUCCESS;
}

/* virsh's counters, in its order. */
static const char *const counter_names[] = {
    "rx_bytes", "rx_packets", "rx_errs", "rx_drop", "tx_bytes", "tx_packets", "tx_errs", "tx_drop",
};

static int run_domifstat(struct pvsh_context *context, const struct pvsh_arguments *arguments)
{
    const char *name = pvsh_argument_string(arguments, "interface");
    struct json_writer params;
    json_writer_init(&params, false);
    json_writer_begin_object(&params);
    json_writer_member_string(&params, "domain", pvsh_argument_string(arguments, "domain"));
    json_writer_member_string(&params, "interface", name);
    json_writer_end_object(&params);
    struct api_reply reply;
    int status = pvsh_call(context, "domain.ifstat", &params, 0, &reply);
    json_writer_free(&params);
    if (status != PVSH_EXIT_SUCCESS)
        return status;
    if (context->json) {
        pvsh_print_json(context, reply.result);
        api_reply_free(&reply);
        return PVSH_EXIT_SUCCESS;
    }
    for (size_t i = 0; i < sizeof(counter_names) / sizeof(counter_names[0]); i++) {
        uint64_t value = 0;
        /* virsh prints only the counters the hypervisor reports. */
        if (json_get_uint64(reply.result, counter_names[i], &value))
            fprintf(context->out, "%s %s %llu\n", name, counter_names[i],
                    (unsigned long long)value);
    }
    api_reply_free(&reply);
    return PVSH_EXIT_SUCCESS;
}

/* --- the table -------------------------------------------------------------------------- */

static const struct pvsh_option attach_interface_options[] = {
    DOMAIN_OPTION,
    {"type", PVSH_OPTION_STRING, PVSH_POSITIONAL | PVSH_REQUIRED,
     "network interface type (ethernet, bridge)"},
    {"source", PVSH_OPTION_STRING, PVSH_POSITIONAL,
     "source of network interface (the bridge for --type bridge)"},
    {"target", PVSH_OPTION_STRING, 0, "target network name (the tap device)"},
    {"mac", PVSH_OPTION_STRING, 0, "MAC address"},
    {"script", PVSH_OPTION_STRING, 0, "not supported (script used to bridge network interface)"},
    {"model", PVSH_OPTION_STRING, 0, "model type (virtio)"},
    {"alias", PVSH_OPTION_STRING, 0, "custom alias name of interface device"},
    {"inbound", PVSH_OPTION_STRING, 0, "not supported (control domain's incoming traffics)"},
    {"outbound", PVSH_OPTION_STRING, 0, "not supported (control domain's outgoing traffics)"},
    FLAG_OPTIONS,
    {"print-xml", PVSH_OPTION_BOOL, 0, "print XML document rather than attach the interface"},
    {"managed", PVSH_OPTION_BOOL, 0, "not supported (hostdev interfaces)"},
    {"source-mode", PVSH_OPTION_STRING, 0, "not supported (vhostuser interfaces)"},
    {NULL},
};
static const struct pvsh_option detach_interface_options[] = {
    DOMAIN_OPTION,
    {"type", PVSH_OPTION_STRING, PVSH_POSITIONAL | PVSH_REQUIRED, "network interface type"},
    {"mac", PVSH_OPTION_STRING, 0, "MAC address"},
    FLAG_OPTIONS,
    {"wait", PVSH_OPTION_OPTIONAL_STRING, 0,
     "wait up to SECONDS (default 60) for the guest to release the interface"},
    {NULL},
};
static const struct pvsh_option domiflist_options[] = {
    DOMAIN_OPTION,
    {"inactive", PVSH_OPTION_BOOL, 0, "get inactive rather than running configuration"},
    {NULL},
};
static const struct pvsh_option domif_setlink_options[] = {
    DOMAIN_OPTION,
    {"interface", PVSH_OPTION_STRING, PVSH_POSITIONAL | PVSH_REQUIRED,
     "interface device (tap name or MAC address)"},
    {"state", PVSH_OPTION_STRING, PVSH_POSITIONAL | PVSH_REQUIRED, "new state of the device"},
    {"config", PVSH_OPTION_BOOL, 0, "affect next boot"},
    {"persistent", PVSH_OPTION_BOOL, 0, "alias of --config"},
    {NULL},
};
static const struct pvsh_option domif_getlink_options[] = {
    DOMAIN_OPTION,
    {"interface", PVSH_OPTION_STRING, PVSH_POSITIONAL | PVSH_REQUIRED,
     "interface device (tap name or MAC address)"},
    {"config", PVSH_OPTION_BOOL, 0, "Get persistent interface state"},
    {NULL},
};
static const struct pvsh_option domifstat_options[] = {
    DOMAIN_OPTION,
    {"interface", PVSH_OPTION_STRING, PVSH_POSITIONAL | PVSH_REQUIRED,
     "interface device (tap name or MAC address)"},
    {NULL},
};

const struct pvsh_command pvsh_interface_commands[] = {
    {"attach-interface", "attach network interface", attach_interface_options,
     run_attach_interface},
    {"detach-interface", "detach network interface", detach_interface_options,
     run_detach_interface},
    {"domiflist", "list all domain virtual interfaces", domiflist_options, run_domiflist},
    {"domif-setlink", "set link state of a virtual interface", domif_setlink_options,
     run_domif_setlink},
    {"domif-getlink", "get link state of a virtual interface", domif_getlink_options,
     run_domif_getlink},
    {"domifstat", "get network interface stats for a domain", domifstat_options, run_domifstat},
    {NULL},
};

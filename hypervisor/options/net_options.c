/* Network options: -netdev, the legacy -net, and -nic.
 *
 * -netdev is checked here (type, id, keys and their combinations, as QEMU does when it
 * parses its command line) and kept verbatim; machine_pc.c creates the netdevs before the
 * devices. -net nic / -net tap are QEMU's old "hub" form: a NIC and a tap on hub 0 exchange
 * frames. Without a hub model, one NIC and one tap on hub 0 become what they mean: a netdev
 * and a virtio-net-pci device on it; anything a hub would really be needed for (two NICs or
 * two taps on hub 0) is refused. -net nic,netdev=ID needs no hub at all. */
#include "options/net_options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_util.h"
#include "net/net.h"
#include "net/net_json.h"
#include "options/json_options.h"

#define NETDEV_JSON_MAX_LENGTH (64 * 1024)
#define NETDEV_JSON_MAX_DEPTH 8

#define NETDEV_FORM "-netdev tap,id=ID,... -device virtio-net-pci,netdev=ID"

int net_options_parse_netdev(const char *text, struct qemu_options *options, bool *json,
                             struct pv_error *error)
{
    memset(options, 0, sizeof(*options));
    *json = text[0] == '{';
    if (!*json)
        return qemu_options_parse(options, text, "type", 0, error);
    /* libvirt writes -netdev as JSON (QAPI's Netdev), like -device and -blockdev. */
    yajl_val value =
        json_parse(text, strlen(text), NETDEV_JSON_MAX_LENGTH, NETDEV_JSON_MAX_DEPTH, error);
    if (!value)
        return error && error->code ? error->code : -EINVAL;
    int rc = net_netdev_check_json(value, error);
    if (rc == 0)
        rc = qemu_options_from_json(value, options, error);
    yajl_tree_free(value);
    return rc;
}

/* The id of a stored -netdev argument (malloc'd), NULL when it has none. */
static char *netdev_arg_id(const char *text)
{
    struct qemu_options options;
    bool json;
    char *id = NULL;
    if (net_options_parse_netdev(text, &options, &json, NULL) == 0) {
        const char *value = qemu_options_get(&options, "id");
        id = value ? strdup(value) : NULL;
    }
    qemu_options_free(&options);
    return id;
}

static int check_unique(struct vmm_config *config, const char *id, struct pv_error *error)
{
    for (size_t i = 0; i < config->netdev_arg_count; i++) {
        char *other = netdev_arg_id(config->netdev_args[i]);
        bool same = other && strcmp(other, id) == 0;
        free(other);
        if (same)
            return pv_error_set(error, -EEXIST, "Duplicate ID '%s' for netdev", id);
    }
    return 0;
}

static int add_netdev(struct vmm_config *config, const char *text, struct pv_error *error)
{
    struct qemu_options options;
    bool json;
    int rc = net_options_parse_netdev(text, &options, &json, error);
    if (rc == 0)
        rc = net_netdev_check(&options, json ? NET_SYNTAX_QMP : NET_SYNTAX_COMMAND_LINE, error);
    if (rc == 0)
        rc = check_unique(config, qemu_options_get(&options, "id"), error);
    qemu_options_free(&options);
    if (rc < 0)
        return rc;
    return option_append_string(&config->netdev_args, &config->netdev_arg_count, text, error);
}

static int option_netdev(struct parse_state *state, const char *argument, struct pv_error *error)
{
    return add_netdev(state->config, argument, error);
}

/* Appends ",key=value" with the value escaped. */
static int append_key(char **text, const char *key, const char *value, struct pv_error *error)
{
    char *escaped = qemu_options_escape(value);
    char *joined = NULL;
    if (!escaped || asprintf(&joined, "%s,%s=%s", *text, key, escaped) < 0) {
        free(escaped);
        return pv_error_set(error, -ENOMEM, "out of memory");
    }
    free(escaped);
    free(*text);
    *text = joined;
    return 0;
}

/* -net tap,...: a netdev named by name= or id= (QEMU's client name), else "tap.0". */
static int legacy_tap(struct vmm_config *config, struct qemu_options *options,
                      struct pv_error *error)
{
    if (config->hub_tap_id)
        return pv_error_set(error, -ENOTSUP,
                            "tap: a second -net tap on QEMU's hub 0 is not supported by "
                            "plugvirt-vmm (no hub); use " NETDEV_FORM);
    const char *name = qemu_options_get(options, "name");
    const char *id = qemu_options_get(options, "id");
    const char *netdev_id = name ? name : id ? id : "tap.0";
    char *text = strdup("tap");
    if (!text)
        return pv_error_set(error, -ENOMEM, "out of memory");
    int rc = append_key(&text, "id", netdev_id, error);
    for (size_t i = 0; rc == 0 && i < options->count; i++) {
        struct qemu_option *option = &options->items[i];
        if (strcmp(option->key, "type") == 0 || strcmp(option->key, "name") == 0 ||
            strcmp(option->key, "id") == 0)
            continue;
        option->used = true;
        rc = append_key(&text, option->key, option->value, error);
    }
    if (rc == 0)
        rc = add_netdev(config, text, error);
    if (rc == 0 && !(config->hub_tap_id = strdup(netdev_id)))
        rc = pv_error_set(error, -ENOMEM, "out of memory");
    free(text);
    return rc < 0 ? pv_error_prefix(error, "tap") : 0;
}

/* Inserts a device argument after the earlier -net NICs: QEMU creates -net NICs with the
 * machine, before any -device, so they get the first free slots. */
static int insert_legacy_device(struct vmm_config *config, char *text, struct pv_error *error)
{
    int rc = option_append_string(&config->device_args, &config->device_arg_count, text, error);
    if (rc < 0)
        return rc;
    char *added = config->device_args[config->device_arg_count - 1];
    size_t position = config->legacy_nic_count++;
    memmove(&config->device_args[position + 1], &config->device_args[position],
            (config->device_arg_count - 1 - position) * sizeof(char *));
    config->device_args[position] = added;
    return (int)position;
}

static int legacy_nic(struct vmm_config *config, struct qemu_options *options,
                      struct pv_error *error)
{
    const char *model = qemu_options_get(options, "model");
    if (!model)
        return pv_error_set(error, -ENOTSUP,
                            "nic: QEMU's default model e1000 is not supported by plugvirt-vmm; "
                            "use -net nic,model=virtio or " NETDEV_FORM);
    if (strcmp(model, "virtio") != 0 && strcmp(model, "virtio-net-pci") != 0)
        return pv_error_set(
            error, -ENOTSUP,
            "nic,model=%s: not supported by plugvirt-vmm (only virtio); use " NETDEV_FORM, model);
    const char *netdev = qemu_options_get(options, "netdev");
    if (!netdev && config->hub_nic_slot)
        return pv_error_set(error, -ENOTSUP,
                            "nic: a second -net nic on QEMU's hub 0 is not supported by "
                            "plugvirt-vmm (no hub); use " NETDEV_FORM);
    const char *mac = qemu_options_get(options, "macaddr");
    uint8_t parsed[6];
    if (mac && net_parse_mac(mac, parsed) < 0)
        return pv_error_set(error, -EINVAL, "nic: Parameter 'macaddr' expects a MAC address");
    const char *name = qemu_options_get(options, "name");
    const char *id = qemu_options_get(options, "id");
    char *text = strdup("virtio-net-pci");
    if (!text)
        return pv_error_set(error, -ENOMEM, "out of memory");
    int rc = 0;
    /* QEMU's name= names the NIC in info network; a device id does that here. */
    if (name || id)
        rc = append_key(&text, "id", name ? name : id, error);
    if (rc == 0 && netdev)
        rc = append_key(&text, "netdev", netdev, error);
    if (rc == 0 && mac)
        rc = append_key(&text, "mac", mac, error);
    static const char *const passed[] = {"addr", "vectors"};
    for (size_t i = 0; rc == 0 && i < sizeof(passed) / sizeof(passed[0]); i++) {
        const char *value = qemu_options_get(options, passed[i]);
        if (value)
            rc = append_key(&text, passed[i], value, error);
    }
    if (rc == 0)
        rc = qemu_options_check_unused(options, error);
    if (rc == 0)
        rc = insert_legacy_device(config, text, error);
    free(text);
    if (rc >= 0 && !netdev)
        config->hub_nic_slot = (size_t)rc + 1;
    return rc < 0 ? rc : 0;
}

static int option_net(struct parse_state *state, const char *argument, struct pv_error *error)
{
    struct qemu_options options;
    int rc = qemu_options_parse(&options, argument, "type", 0, error);
    if (rc < 0) {
        qemu_options_free(&options);
        return rc;
    }
    const char *type = qemu_options_get(&options, "type");
    if (!type)
        rc = pv_error_set(error, -EINVAL, "Parameter 'type' is missing");
    else if (strcmp(type, "none") == 0)
        rc = qemu_options_check_unused(&options, error);
    else if (strcmp(type, "nic") == 0)
        rc = legacy_nic(state->config, &options, error);
    else if (strcmp(type, "tap") == 0)
        rc = legacy_tap(state->config, &options, error);
    else {
        /* The type's own message: "not supported (only tap)" or "does not accept value". */
        struct qemu_options probe;
        memset(&probe, 0, sizeof(probe));
        char *text = NULL;
        if (asprintf(&text, "%s,id=x", type) < 0)
            rc = pv_error_set(error, -ENOMEM, "out of memory");
        else if ((rc = qemu_options_parse(&probe, text, "type", 0, error)) == 0)
            rc = net_netdev_check(&probe, NET_SYNTAX_COMMAND_LINE, error);
        free(text);
        qemu_options_free(&probe);
        if (rc == 0)
            rc = pv_error_set(error, -EINVAL, "Parameter 'type' does not accept value '%s'", type);
    }
    qemu_options_free(&options);
    return rc;
}

static int option_nic(struct parse_state *state, const char *argument, struct pv_error *error)
{
    /* -nic none: no default NIC, which plugvirt-vmm never has anyway. */
    if (strcmp(argument, "none") == 0)
        return 0;
    return pv_error_set(error, -ENOTSUP, "not supported by plugvirt-vmm; use " NETDEV_FORM);
}

int net_options_finish(struct parse_state *state, struct pv_error *error)
{
    struct vmm_config *config = state->config;
    if (!config->hub_nic_slot || !config->hub_tap_id)
        return 0;
    char **slot = &config->device_args[config->hub_nic_slot - 1];
    int rc = append_key(slot, "netdev", config->hub_tap_id, error);
    return rc < 0 ? pv_error_prefix(error, "-net") : 0;
}

const struct option_handler net_options[] = {
    {"netdev", true, option_netdev},
    {"net", true, option_net},
    {"nic", true, option_nic},
    {NULL, false, NULL},
};

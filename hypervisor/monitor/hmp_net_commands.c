/* HMP commands for networking, with QEMU's texts: netdev_add, netdev_del, set_link, getfd,
 * closefd and info network (QEMU 7.2), and the old host_net_add / host_net_remove /
 * pci_add / pci_del (QEMU 1.x-2.x, gone from 7.2) mapped onto netdevs and virtio-net-pci.
 *
 * The old commands worked on QEMU's "VLANs" (later hubs): host_net_add put a tap on hub N,
 * pci_add nic put a NIC on hub N, and the hub joined them. There is no hub here: a NIC added
 * by pci_add takes the one tap of its hub that has no NIC yet, and two such taps on one hub
 * are refused by name. */
#include "monitor/hmp_net_commands.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device_registry.h"
#include "json_util.h"
#include "net/net.h"
#include "qemu_options.h"
#include "vm.h"

#define HMP_NET_HUB_TAPS 64

/* The taps host_net_add made, with their hub, so host_net_remove and pci_add find them.
 * HMP runs on the main thread only. */
static struct {
    char *id;
    int hub;
} hub_taps[HMP_NET_HUB_TAPS];

static void print_error(struct hmp_context *context, const struct pv_error *error)
{
    hmp_printf(context->output, "Error: %s\n",
               error->message[0] ? error->message : "operation failed");
}

/* QEMU's answer to an argument its parser could not take. */
static void print_usage_error(struct hmp_context *context, const char *command, const char *what)
{
    hmp_printf(context->output, "%s\nTry \"help %s\" for more information\n", what, command);
}

static char *next_word(const char **text)
{
    const char *start = *text + strspn(*text, " \t");
    size_t length = strcspn(start, " \t");
    if (length == 0)
        return NULL;
    *text = start + length;
    return strndup(start, length);
}

static int add_netdev_text(struct hmp_context *context, const char *text, struct pv_error *error)
{
    struct qemu_options options;
    int rc = qemu_options_parse(&options, text, "type", 0, error);
    if (rc == 0)
        rc = net_netdev_add(context->vm->net_layer, &options, NET_SYNTAX_COMMAND_LINE, error);
    qemu_options_free(&options);
    return rc;
}

void hmp_netdev_add(struct hmp_context *context, const char *arguments)
{
    if (!*arguments) {
        print_usage_error(context, "netdev_add", "netdev_add: string expected");
        return;
    }
    struct pv_error error = {0};
    int rc = add_netdev_text(context, arguments, &error);
    /* QEMU finds a duplicate id while it parses the argument, hence the usage form. */
    if (rc == -EEXIST)
        print_usage_error(context, "netdev_add", error.message);
    else if (rc < 0)
        print_error(context, &error);
}

void hmp_netdev_del(struct hmp_context *context, const char *arguments)
{
    if (!*arguments) {
        print_usage_error(context, "netdev_del", "netdev_del: string expected");
        return;
    }
    struct pv_error error = {0};
    if (net_netdev_del(context->vm->net_layer, arguments, &error) < 0)
        print_error(context, &error);
}

void hmp_set_link(struct hmp_context *context, const char *arguments)
{
    const char *rest = arguments;
    char *name = next_word(&rest);
    char *state = next_word(&rest);
    bool up = state && strcmp(state, "on") == 0;
    if (!name) {
        print_usage_error(context, "set_link", "set_link: string expected");
    } else if (!state || (!up && strcmp(state, "off") != 0)) {
        print_usage_error(context, "set_link", "Expected 'on' or 'off'");
    } else {
        struct pv_error error = {0};
        if (net_layer_set_link(context->vm->net_layer, name, up, &error) < 0)
            print_error(context, &error);
    }
    free(name);
    free(state);
}

void hmp_getfd(struct hmp_context *context, const char *arguments)
{
    if (!*arguments) {
        print_usage_error(context, "getfd", "getfd: string expected");
        return;
    }
    /* The HMP chardev and human-monitor-command carry no descriptors (QEMU's
     * human-monitor-command cannot either); QMP's getfd can. */
    hmp_printf(context->output, "Error: No file descriptor supplied via SCM_RIGHTS\n");
}

void hmp_closefd(struct hmp_context *context, const char *arguments)
{
    if (!*arguments) {
        print_usage_error(context, "closefd", "closefd: string expected");
        return;
    }
    struct pv_error error = {0};
    if (net_layer_close_named_fd(context->vm->net_layer, arguments, &error) < 0)
        print_error(context, &error);
}

void hmp_info_network(struct hmp_context *context, const char *arguments)
{
    char *text = net_layer_info_network(context->vm->net_layer);
    if (!text) {
        context->output->failed = true;
        return;
    }
    hmp_printf(context->output, "%s", text);
    free(text);
}

/* --- the old VLAN commands ---------------------------------------------------------- */

static void forget_hub_tap(const char *id)
{
    for (size_t i = 0; i < HMP_NET_HUB_TAPS; i++) {
        if (hub_taps[i].id && strcmp(hub_taps[i].id, id) == 0) {
            free(hub_taps[i].id);
            hub_taps[i].id = NULL;
        }
    }
}

/* Forgets taps that are gone (netdev_del on one host_net_add made). */
static void prune_hub_taps(struct net_layer *layer)
{
    for (size_t i = 0; i < HMP_NET_HUB_TAPS; i++) {
        if (hub_taps[i].id && !net_netdev_exists(layer, hub_taps[i].id)) {
            free(hub_taps[i].id);
            hub_taps[i].id = NULL;
        }
    }
}

static int parse_hub(const char *text, int *hub)
{
    char *end;
    long value = strtol(text, &end, 10);
    if (*end || value < 0 || value > 65535)
        return -EINVAL;
    *hub = (int)value;
    return 0;
}

/* host_net_add tap [options]: a tap on hub `vlan=` (0), named name= or "tap.<n>". */
void hmp_host_net_add(struct hmp_context *context, const char *arguments)
{
    const char *rest = arguments;
    char *device = next_word(&rest);
    if (!device) {
        print_usage_error(context, "host_net_add", "host_net_add: string expected");
        return;
    }
    struct pv_error error = {0};
    struct qemu_options options;
    int rc = strcmp(device, "tap") == 0 ? 0 : -EINVAL;
    if (rc < 0) {
        hmp_printf(context->output, "invalid host network device %s\n", device);
        free(device);
        return;
    }
    prune_hub_taps(context->vm->net_layer);
    size_t slot = HMP_NET_HUB_TAPS;
    for (size_t i = 0; i < HMP_NET_HUB_TAPS && slot == HMP_NET_HUB_TAPS; i++)
        slot = hub_taps[i].id ? slot : i;
    rc = qemu_options_parse(&options, rest + strspn(rest, " \t"), NULL, 0, &error);
    int hub = 0;
    const char *vlan = rc == 0 ? qemu_options_get(&options, "vlan") : NULL;
    if (vlan && parse_hub(vlan, &hub) < 0)
        rc = pv_error_set(&error, -EINVAL, "Parameter 'vlan' expects a number");
    if (rc == 0 && slot == HMP_NET_HUB_TAPS)
        rc = pv_error_set(&error, -ENOSPC, "too many host_net_add taps");
    char *text = NULL;
    if (rc == 0) {
        const char *name = qemu_options_get(&options, "name");
        char generated[32];
        for (unsigned n = 0; !name; n++) {
            snprintf(generated, sizeof(generated), "tap.%u", n);
            if (!net_netdev_exists(context->vm->net_layer, generated))
                name = generated;
        }
        char *escaped = qemu_options_escape(name);
        if (!escaped || asprintf(&text, "tap,id=%s", escaped) < 0)
            rc = pv_error_set(&error, -ENOMEM, "out of memory");
        free(escaped);
        for (size_t i = 0; rc == 0 && i < options.count; i++) {
            struct qemu_option *option = &options.items[i];
            if (strcmp(option->key, "vlan") == 0 || strcmp(option->key, "name") == 0)
                continue;
            char *value = qemu_options_escape(option->value);
            char *joined = NULL;
            if (!value || asprintf(&joined, "%s,%s=%s", text, option->key, value) < 0)
                rc = pv_error_set(&error, -ENOMEM, "out of memory");
            free(value);
            free(text);
            text = joined;
        }
        if (rc == 0)
            rc = add_netdev_text(context, text, &error);
        if (rc == 0 && !(hub_taps[slot].id = strdup(name))) {
            net_netdev_del(context->vm->net_layer, name, NULL);
            rc = pv_error_set(&error, -ENOMEM, "out of memory");
        }
        hub_taps[slot].hub = hub;
    }
    qemu_options_free(&options);
    free(text);
    if (rc < 0) {
        /* QEMU reports the cause, then which command failed. */
        hmp_printf(context->output, "%s\nadding host network device %s failed\n", error.message,
                   device);
    }
    free(device);
}

/* host_net_remove <vlan> <device> */
void hmp_host_net_remove(struct hmp_context *context, const char *arguments)
{
    const char *rest = arguments;
    char *vlan = next_word(&rest);
    char *device = next_word(&rest);
    int hub = -1;
    if (!vlan || parse_hub(vlan, &hub) < 0) {
        print_usage_error(context, "host_net_remove", "host_net_remove: integer expected");
    } else if (!device) {
        print_usage_error(context, "host_net_remove", "host_net_remove: string expected");
    } else {
        prune_hub_taps(context->vm->net_layer);
        bool found = false;
        for (size_t i = 0; i < HMP_NET_HUB_TAPS && !found; i++)
            found = hub_taps[i].id && hub_taps[i].hub == hub && !strcmp(hub_taps[i].id, device);
        struct pv_error error = {0};
        if (!found)
            hmp_printf(context->output, "Host network device '%s' on hub '%d' not found\n", device,
                       hub);
        else if (net_netdev_del(context->vm->net_layer, device, &error) < 0)
            hmp_printf(context->output, "%s\n", error.message);
        else
            forget_hub_tap(device);
    }
    free(vlan);
    free(device);
}

/* The slot of device `id` on pci.0 from query-pci, or -1; with `id` NULL, the qdev id of
 * the device in `slot` (malloc'd, "" for a device without id) through *found_id. */
static int find_pci_device(struct hmp_context *context, const char *id, int slot, char **found_id)
{
    struct json_writer writer;
    json_writer_init(&writer, false);
    device_registry_query_pci(context->vm->device_registry, &writer);
    int result = -1;
    yajl_val root = NULL;
    if (json_writer_status(&writer) == 0)
        root = json_parse(json_writer_text(&writer), strlen(json_writer_text(&writer)),
                          16 * 1024 * 1024, 16, NULL);
    json_writer_free(&writer);
    if (!root || !YAJL_IS_ARRAY(root) || root->u.array.len == 0) {
        yajl_tree_free(root);
        return -1;
    }
    yajl_val devices = json_object_get(root->u.array.values[0], "devices");
    for (size_t i = 0; devices && YAJL_IS_ARRAY(devices) && i < devices->u.array.len; i++) {
        yajl_val device = devices->u.array.values[i];
        yajl_val device_slot = json_object_get(device, "slot");
        const char *qdev_id = json_get_string(device, "qdev_id");
        if (!device_slot || !YAJL_IS_INTEGER(device_slot))
            continue;
        if (id && qdev_id && strcmp(qdev_id, id) == 0) {
            result = (int)YAJL_GET_INTEGER(device_slot);
            break;
        }
        if (!id && YAJL_GET_INTEGER(device_slot) == slot) {
            *found_id = strdup(qdev_id ? qdev_id : "");
            result = slot;
            break;
        }
    }
    yajl_tree_free(root);
    return result;
}

/* The hub's tap without NIC: its id, or NULL (none; -EBUSY in *rc when several). */
static const char *free_hub_tap(struct hmp_context *context, int hub, int *rc)
{
    const char *found = NULL;
    prune_hub_taps(context->vm->net_layer);
    for (size_t i = 0; i < HMP_NET_HUB_TAPS; i++) {
        if (!hub_taps[i].id || hub_taps[i].hub != hub)
            continue;
        if (net_netdev_has_nic(context->vm->net_layer, hub_taps[i].id))
            continue;
        if (found) {
            *rc = -EBUSY;
            return NULL;
        }
        found = hub_taps[i].id;
    }
    return found;
}

/* pci_add [pci_addr=]auto|[[<domain>:]<bus>:]<slot> nic [model=virtio][,macaddr=]... */
void hmp_pci_add(struct hmp_context *context, const char *arguments)
{
    const char *rest = arguments;
    char *address = next_word(&rest);
    char *type = next_word(&rest);
    const char *options_text = rest + strspn(rest, " \t");
    if (!address || !type) {
        print_usage_error(context, "pci_add", "pci_add: string expected");
        free(address);
        free(type);
        return;
    }
    const char *where = strncmp(address, "pci_addr=", 9) == 0 ? address + 9 : address;
    struct qemu_options options;
    memset(&options, 0, sizeof(options));
    struct pv_error error = {0};
    char *text = NULL;
    char id[32];
    int rc = 0;
    if (strcmp(type, "nic") != 0) {
        /* storage went with if=virtio drives; drive_add + device_add do it today. */
        hmp_printf(context->output, "invalid type: %s\n", type);
        goto out;
    }
    rc = qemu_options_parse(&options, options_text, NULL, 0, &error);
    const char *model = rc == 0 ? qemu_options_get(&options, "model") : NULL;
    if (rc == 0 && (!model || (strcmp(model, "virtio") && strcmp(model, "virtio-net-pci"))))
        rc = pv_error_set(&error, -ENOTSUP,
                          "pci_add nic: model %s is not supported by plugvirt-vmm (only "
                          "model=virtio)",
                          model ? model : "rtl8139 (the default)");
    const char *mac = rc == 0 ? qemu_options_get(&options, "macaddr") : NULL;
    uint8_t parsed[6];
    if (mac && net_parse_mac(mac, parsed) < 0)
        rc = pv_error_set(&error, -EINVAL, "Parameter 'macaddr' expects a MAC address");
    const char *netdev = rc == 0 ? qemu_options_get(&options, "netdev") : NULL;
    int hub = 0;
    const char *vlan = rc == 0 ? qemu_options_get(&options, "vlan") : NULL;
    if (vlan && parse_hub(vlan, &hub) < 0)
        rc = pv_error_set(&error, -EINVAL, "Parameter 'vlan' expects a number");
    if (rc == 0 && !netdev) {
        netdev = free_hub_tap(context, hub, &rc);
        if (rc < 0)
            pv_error_set(&error, rc,
                         "more than one tap without NIC on hub %d: not supported by "
                         "plugvirt-vmm (no hub); give netdev=",
                         hub);
    }
    if (rc == 0)
        rc = qemu_options_check_unused(&options, &error);
    /* The device needs an id for pci_del to find it by slot later. */
    for (unsigned n = 0; rc == 0; n++) {
        snprintf(id, sizeof(id), "pci_add.nic%u", n);
        if (find_pci_device(context, id, -1, NULL) < 0)
            break;
    }
    if (rc == 0 && asprintf(&text, "driver=virtio-net-pci,id=%s", id) < 0)
        rc = pv_error_set(&error, -ENOMEM, "out of memory");
    char *joined = NULL;
    if (rc == 0 && netdev) {
        rc = asprintf(&joined, "%s,netdev=%s", text, netdev) < 0 ? -ENOMEM : 0;
        free(text);
        text = joined;
    }
    if (rc == 0 && mac) {
        rc = asprintf(&joined, "%s,mac=%s", text, mac) < 0 ? -ENOMEM : 0;
        free(text);
        text = joined;
    }
    if (rc == 0 && strcmp(where, "auto") != 0) {
        /* [[<domain>:]<bus>:]<slot>: only slot numbers on pci.0 */
        const char *slot = strrchr(where, ':') ? strrchr(where, ':') + 1 : where;
        rc = asprintf(&joined, "%s,addr=%s", text, slot) < 0 ? -ENOMEM : 0;
        free(text);
        text = joined;
    }
    if (rc == -ENOMEM)
        pv_error_set(&error, rc, "out of memory");
    struct qemu_options device;
    memset(&device, 0, sizeof(device));
    if (rc == 0)
        rc = qemu_options_parse(&device, text, NULL, 0, &error);
    if (rc == 0)
        rc = device_registry_add(context->vm->device_registry, &device, &error);
    qemu_options_free(&device);
    if (rc < 0) {
        hmp_printf(context->output, "%s\nfailed to add %s\n", error.message, options_text);
        goto out;
    }
    int slot = find_pci_device(context, id, -1, NULL);
    hmp_printf(context->output, "OK domain 0, bus 0, slot %d, function 0\n", slot < 0 ? 0 : slot);
out:
    qemu_options_free(&options);
    free(text);
    free(address);
    free(type);
}

/* pci_del [pci_addr=][[<domain>:]<bus>:]<slot>: device_del on the device in that slot. */
void hmp_pci_del(struct hmp_context *context, const char *arguments)
{
    if (!*arguments) {
        print_usage_error(context, "pci_del", "pci_del: string expected");
        return;
    }
    const char *where = strncmp(arguments, "pci_addr=", 9) == 0 ? arguments + 9 : arguments;
    const char *slot_text = strrchr(where, ':') ? strrchr(where, ':') + 1 : where;
    char *end;
    long slot = strtol(slot_text, &end, 16);
    if (!*slot_text || *end || slot < 0 || slot > 31) {
        hmp_printf(context->output, "Invalid pci address\n");
        return;
    }
    char *id = NULL;
    if (find_pci_device(context, NULL, (int)slot, &id) < 0) {
        hmp_printf(context->output, "slot %ld empty\n", slot);
        return;
    }
    struct pv_error error = {0};
    if (!id || !id[0])
        hmp_printf(context->output, "Error: the device in slot %ld has no id\n", slot);
    else if (device_registry_request_delete(context->vm->device_registry, id, &error) < 0)
        print_error(context, &error);
    free(id);
}

/* The human monitor: command table, QEMU's output formats, and the
 * interactive front end on a chardev. */
#include "monitor/monitor_hmp.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/block.h"
#include "block/block_query.h"
#include "chardev/chardev.h"
#include "device_registry.h"
#include "monitor/hmp_net_commands.h"
#include "pv_log.h"
#include "monitor/qmp_version.h"
#include "vm.h"

#define HMP_LINE_MAX 4096 /* QEMU's readline buffer */
#define HMP_PROMPT "(qemu) "

/* --- output ------------------------------------------------------------------ */

/* --- commands ------------------------------------------------------------------ */

static void print_error(struct hmp_context *context, const struct pv_error *error)
{
    hmp_printf(context->output, "Error: %s\n",
               error->message[0] ? error->message : "operation failed");
}

static void hmp_cont(struct hmp_context *context, const char *arguments)
{
    struct pv_error error = {0};
    if (vm_resume(context->vm, &error) < 0)
        print_error(context, &error);
}

static void hmp_stop(struct hmp_context *context, const char *arguments)
{
    struct pv_error error = {0};
    if (vm_pause(context->vm, &error) < 0)
        print_error(context, &error);
}

static void hmp_system_reset(struct hmp_context *context, const char *arguments)
{
    struct pv_error error = {0};
    if (vm_reset(context->vm, &error) < 0)
        print_error(context, &error);
}

static void hmp_system_powerdown(struct hmp_context *context, const char *arguments)
{
    struct pv_error error = {0};
    if (vm_powerdown(context->vm, &error) < 0)
        print_error(context, &error);
}

static void quit_after_output(struct vm *vm)
{
    /* QEMU's HMP quit is qmp_quit underneath, hence the QMP reason. */
    vm_request_shutdown(vm, false, "host-qmp-quit");
}

static void hmp_quit(struct hmp_context *context, const char *arguments)
{
    context->after_output = quit_after_output;
}

static void hmp_info_status(struct hmp_context *context, const char *arguments)
{
    enum vm_run_state state = vm_get_run_state(context->vm);
    bool running = state == VM_RUN_STATE_RUNNING;
    hmp_printf(context->output, "VM status: %s", running ? "running" : "paused");
    if (!running && state != VM_RUN_STATE_PAUSED)
        hmp_printf(context->output, " (%s)", vm_run_state_name(state));
    hmp_printf(context->output, "\n");
}

static void hmp_info_cpus(struct hmp_context *context, const char *arguments)
{
    struct vm_vcpu_info info[VMM_MAX_VCPUS];
    unsigned count = vm_get_vcpu_info(context->vm, info, VMM_MAX_VCPUS);
    for (unsigned i = 0; i < count; i++)
        hmp_printf(context->output, "%c CPU #%u: thread_id=%d\n",
                   (int)info[i].index == context->current_cpu ? '*' : ' ', info[i].index,
                   info[i].thread_id);
}

static void hmp_info_version(struct hmp_context *context, const char *arguments)
{
    hmp_printf(context->output, "%d.%d.%d (%s)\n", QMP_QEMU_VERSION_MAJOR, QMP_QEMU_VERSION_MINOR,
               QMP_QEMU_VERSION_MICRO, QMP_PACKAGE);
}

static void hmp_info_name(struct hmp_context *context, const char *arguments)
{
    const char *name = context->vm->config ? context->vm->config->name : NULL;
    if (name)
        hmp_printf(context->output, "%s\n", name);
}

static void hmp_info_kvm(struct hmp_context *context, const char *arguments)
{
    hmp_printf(context->output, "kvm support: enabled\n");
}

/* --- disks and devices ----------------------------------------------------------- */

static const char *skip_blanks(const char *text);

/* Splits off the next blank-separated word of *text; returns it (malloc'd) or NULL. */
static char *next_word(const char **text)
{
    const char *start = skip_blanks(*text);
    size_t length = strcspn(start, " \t\r\n");
    if (length == 0)
        return NULL;
    *text = start + length;
    return strndup(start, length);
}

/* drive_add [-n] <pci_addr> <options>: the address is ignored (QEMU >= 2.x
 * only takes if=none here); -n adds a node as -blockdev. QEMU prints drive
 * errors without an "Error: " prefix. */
static void hmp_drive_add(struct hmp_context *context, const char *arguments)
{
    const char *rest = arguments;
    char *first = next_word(&rest);
    bool node = first && strcmp(first, "-n") == 0;
    if (node) {
        free(first);
        first = next_word(&rest);
    }
    const char *text = skip_blanks(rest);
    if (!first || !*text) {
        hmp_printf(context->output, "drive_add: missing argument\n");
        free(first);
        return;
    }
    free(first);
    struct qemu_options options;
    struct pv_error error = {0};
    int rc = qemu_options_parse(&options, text, NULL, 0, &error);
    if (rc == 0)
        rc = node ? block_blockdev_add(context->vm->block_layer, &options, &error)
                  : block_drive_add(context->vm->block_layer, &options, NULL, &error);
    qemu_options_free(&options);
    if (rc < 0)
        hmp_printf(context->output, "%s\n", error.message);
    else if (!node)
        hmp_printf(context->output, "OK\n");
}

static void hmp_drive_del(struct hmp_context *context, const char *arguments)
{
    struct pv_error error = {0};
    if (block_drive_del(context->vm->block_layer, arguments, &error) < 0)
        hmp_printf(context->output, "%s\n", error.message);
}

static void hmp_device_add(struct hmp_context *context, const char *arguments)
{
    struct qemu_options options;
    struct pv_error error = {0};
    int rc = qemu_options_parse(&options, arguments, "driver", 0, &error);
    if (rc == 0)
        rc = device_registry_add(context->vm->device_registry, &options, &error);
    qemu_options_free(&options);
    if (rc < 0)
        print_error(context, &error);
}

static void hmp_device_del(struct hmp_context *context, const char *arguments)
{
    struct pv_error error = {0};
    if (device_registry_request_delete(context->vm->device_registry, arguments, &error) < 0)
        print_error(context, &error);
}

static void hmp_info_pci(struct hmp_context *context, const char *arguments)
{
    char *text = device_registry_info_pci_text(context->vm->device_registry);
    if (!text) {
        context->output->failed = true;
        return;
    }
    hmp_printf(context->output, "%s", text);
    free(text);
}

/* info block [-n] [device] */
static void hmp_info_block(struct hmp_context *context, const char *arguments)
{
    const char *rest = arguments;
    bool nodes_only = false;
    char *device = NULL;
    char *word;
    while ((word = next_word(&rest))) {
        if (strcmp(word, "-n") == 0) {
            nodes_only = true;
            free(word);
        } else if (strcmp(word, "-v") == 0) {
            free(word); /* verbose adds image details we do not have */
        } else {
            free(device);
            device = word;
        }
    }
    char *text = block_info_block_text(context->vm->block_layer, device, nodes_only);
    free(device);
    if (!text) {
        context->output->failed = true;
        return;
    }
    hmp_printf(context->output, "%s", text);
    free(text);
}

static void hmp_help(struct hmp_context *context, const char *arguments);
static void hmp_info(struct hmp_context *context, const char *arguments);

static const struct hmp_command info_commands[] = {
    {"block", "[-n] [-v] [device]", "show info of one block device or all block devices",
     hmp_info_block, NULL},
    {"cpus", "", "show infos for each CPU", hmp_info_cpus, NULL},
    {"kvm", "", "show KVM information", hmp_info_kvm, NULL},
    {"name", "", "show the current VM name", hmp_info_name, NULL},
    {"network", "", "show the network state", hmp_info_network, NULL},
    {"pci", "", "show PCI info", hmp_info_pci, NULL},
    {"status", "", "show the current VM status (running|paused)", hmp_info_status, NULL},
    {"version", "", "show the version of QEMU", hmp_info_version, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static const struct hmp_command hmp_commands[] = {
    {"cont|c", "", "resume emulation", hmp_cont, NULL},
    {"device_add", "driver[,prop=value][,...]", "add device, like -device on the command line",
     hmp_device_add, NULL},
    {"closefd", "closefd name", "close a file descriptor previously passed via SCM rights",
     hmp_closefd, NULL},
    {"device_del", "device", "remove device", hmp_device_del, NULL},
    {"drive_add", "[-n] [[<domain>:]<bus>:]<slot>\n[file=file][,if=type][,bus=n]\n...",
     "add drive to PCI storage controller", hmp_drive_add, NULL},
    {"drive_del", "device", "remove host block device", hmp_drive_del, NULL},
    {"getfd", "getfd name", "receive a file descriptor via SCM rights and assign it a name",
     hmp_getfd, NULL},
    {"help|?", "[cmd]", "show the help", hmp_help, NULL},
    {"host_net_add", "tap [options]", "add host VLAN client (deprecated, use netdev_add)",
     hmp_host_net_add, NULL},
    {"host_net_remove", "vlan_id name", "remove host VLAN client (deprecated, use netdev_del)",
     hmp_host_net_remove, NULL},
    {"info", "[subcommand]", "show various information about the system state", hmp_info,
     info_commands},
    {"netdev_add",
     "[user|tap|socket|stream|dgram|vde|bridge|hubport|netmap|vhost-user],id=str[,prop=value][,"
     "...]",
     "add host network device", hmp_netdev_add, NULL},
    {"netdev_del", "id", "remove host network device", hmp_netdev_del, NULL},
    {"pci_add", "auto|[[<domain>:]<bus>:]<slot> nic [[vlan=n][,macaddr=addr][,model=type]]",
     "hot-add PCI device (deprecated, use device_add)", hmp_pci_add, NULL},
    {"pci_del", "[[<domain>:]<bus>:]<slot>", "hot remove PCI device (deprecated, use device_del)",
     hmp_pci_del, NULL},
    {"quit|q", "", "quit the emulator", hmp_quit, NULL},
    {"set_link", "name on|off", "change the link status of a network adapter", hmp_set_link, NULL},
    {"stop|s", "", "stop emulation", hmp_stop, NULL},
    {"system_powerdown", "", "send system power down event", hmp_system_powerdown, NULL},
    {"system_reset", "", "reset the system", hmp_system_reset, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

/* --- parsing ------------------------------------------------------------------- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static const char *skip_blanks(const char *text)
{
    while (*text && is_blank(*text))
        text++;
    return text;
}

/* True when `word` (length bytes) is one of the '|'-separated names. */
static bool names_match(const char *names, const char *word, size_t length)
{
    const char *name = names;
    while (*name) {
        size_t name_length = strcspn(name, "|");
        if (name_length == length && memcmp(name, word, length) == 0)
            return true;
        name += name_length;
        if (*name == '|')
            name++;
    }
    return false;
}

static const struct hmp_command *find_command(const struct hmp_command *table, const char *word,
                                              size_t length)
{
    for (size_t i = 0; table[i].names; i++)
        if (names_match(table[i].names, word, length))
            return &table[i];
    return NULL;
}

static size_t main_name_length(const struct hmp_command *command)
{
    return strcspn(command->names, "|");
}

static void dump_help(struct hmp_context *context, const char *prefix,
                      const struct hmp_command *command)
{
    hmp_printf(context->output, "%s%s %s -- %s\n", prefix, command->names, command->params,
               command->help);
}

static void dump_table(struct hmp_context *context, const char *prefix,
                       const struct hmp_command *table)
{
    for (size_t i = 0; table[i].names; i++)
        dump_help(context, prefix, &table[i]);
}

static void hmp_help(struct hmp_context *context, const char *arguments)
{
    if (!*arguments) {
        dump_table(context, "", hmp_commands);
        return;
    }
    size_t length = strcspn(arguments, " \t");
    const struct hmp_command *command = find_command(hmp_commands, arguments, length);
    if (!command) {
        hmp_printf(context->output, "unknown command: '%.*s'\n", (int)length, arguments);
        return;
    }
    const char *rest = skip_blanks(arguments + length);
    if (!command->subcommands) {
        dump_help(context, "", command);
        return;
    }
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "%.*s ", (int)main_name_length(command), command->names);
    if (!*rest) {
        dump_table(context, prefix, command->subcommands);
        return;
    }
    size_t sub_length = strcspn(rest, " \t");
    const struct hmp_command *sub = find_command(command->subcommands, rest, sub_length);
    if (sub)
        dump_help(context, prefix, sub);
    else
        hmp_printf(context->output, "unknown command: '%.*s'\n", (int)sub_length, rest);
}

static void hmp_info(struct hmp_context *context, const char *arguments)
{
    /* Only reached without a subcommand: list them, as QEMU does. */
    hmp_help(context, "info");
}

/* Looks the next word up in `table`; `line` is the whole command line so
 * errors quote everything up to the unknown word, as QEMU does. */
static void execute_in(struct hmp_context *context, const char *line, const char *position,
                       const struct hmp_command *table)
{
    const char *word = skip_blanks(position);
    size_t length = strcspn(word, " \t\r\n");
    const struct hmp_command *command = find_command(table, word, length);
    if (!command) {
        hmp_printf(context->output, "unknown command: '%.*s'\n", (int)(word + length - line), line);
        return;
    }
    const char *rest = skip_blanks(word + length);
    if (command->subcommands && *rest) {
        execute_in(context, line, rest, command->subcommands);
        return;
    }
    /* The arguments without trailing blanks. */
    size_t rest_length = strlen(rest);
    while (rest_length > 0 && is_blank(rest[rest_length - 1]))
        rest_length--;
    char *arguments = strndup(rest, rest_length);
    if (!arguments) {
        context->output->failed = true;
        return;
    }
    if (command->params[0] == '\0' && arguments[0] != '\0')
        hmp_printf(context->output, "%.*s: extraneous characters at the end of line\n",
                   (int)main_name_length(command), command->names);
    else
        command->handler(context, arguments);
    free(arguments);
}

void hmp_execute(struct hmp_context *context, const char *command_line)
{
    const char *line = skip_blanks(command_line ? command_line : "");
    if (!*line)
        return;
    execute_in(context, line, line, hmp_commands);
}

/* --- interactive monitor ----------------------------------------------------------- */

enum input_state {
    INPUT_NORMAL,
    INPUT_ESCAPE, /* after ESC */
    INPUT_CSI,    /* after ESC [: parameters until a final byte */
    INPUT_SS3,    /* after ESC O: one more byte */
};

struct monitor_hmp {
    struct vm *vm;
    struct chardev *chardev;
    char line[HMP_LINE_MAX];
    size_t line_length;
    enum input_state state;
    bool last_was_cr;
};

static void write_text(struct monitor_hmp *monitor, const char *text)
{
    chardev_write(monitor->chardev, text, strlen(text));
}

static void run_line(struct monitor_hmp *monitor)
{
    monitor->line[monitor->line_length] = '\0';
    monitor->line_length = 0;
    write_text(monitor, "\r\n");

    struct hmp_output output;
    hmp_output_init(&output);
    struct hmp_context context = {.vm = monitor->vm, .output = &output, .current_cpu = 0};
    hmp_execute(&context, monitor->line);
    if (output.length)
        chardev_write(monitor->chardev, output.text, output.length);
    if (output.failed)
        write_text(monitor, "Error: out of memory\r\n");
    hmp_output_free(&output);
    if (context.after_output) {
        context.after_output(monitor->vm); /* quit: no new prompt */
        return;
    }
    write_text(monitor, HMP_PROMPT);
}

static void receive_byte(struct monitor_hmp *monitor, unsigned char c)
{
    switch (monitor->state) {
    case INPUT_ESCAPE:
        monitor->state = c == '[' ? INPUT_CSI : c == 'O' ? INPUT_SS3 : INPUT_NORMAL;
        return;
    case INPUT_CSI:
        if (c >= 0x40 && c <= 0x7e)
            monitor->state = INPUT_NORMAL;
        return;
    case INPUT_SS3:
        monitor->state = INPUT_NORMAL;
        return;
    case INPUT_NORMAL:
        break;
    }
    bool was_cr = monitor->last_was_cr;
    monitor->last_was_cr = c == '\r';
    if (c == '\r' || c == '\n') {
        if (c == '\n' && was_cr)
            return; /* the second half of "\r\n" */
        run_line(monitor);
        return;
    }
    if (c == 0x1b) {
        monitor->state = INPUT_ESCAPE;
        return;
    }
    if (c == 0x7f || c == 0x08) {
        if (monitor->line_length > 0) {
            monitor->line_length--;
            write_text(monitor, "\b \b");
        }
        return;
    }
    if (c < 0x20)
        return; /* other control characters have no meaning here */
    if (monitor->line_length + 1 >= sizeof(monitor->line))
        return;
    monitor->line[monitor->line_length++] = (char)c;
    chardev_write(monitor->chardev, &c, 1); /* echo, as QEMU's readline does */
}

static void on_receive(void *opaque, const uint8_t *data, size_t length)
{
    struct monitor_hmp *monitor = opaque;
    for (size_t i = 0; i < length; i++)
        receive_byte(monitor, data[i]);
}

static void on_opened(void *opaque)
{
    struct monitor_hmp *monitor = opaque;
    monitor->line_length = 0;
    monitor->state = INPUT_NORMAL;
    monitor->last_was_cr = false;
    char banner[128];
    snprintf(banner, sizeof(banner),
             "QEMU %d.%d.%d monitor - type 'help' for more information\r\n" HMP_PROMPT,
             QMP_QEMU_VERSION_MAJOR, QMP_QEMU_VERSION_MINOR, QMP_QEMU_VERSION_MICRO);
    write_text(monitor, banner);
}

static const struct chardev_frontend_ops hmp_frontend_ops = {
    .receive = on_receive,
    .can_receive = NULL,
    .opened = on_opened,
};

struct monitor_hmp *monitor_hmp_create(struct vm *vm, struct chardev *chardev,
                                       struct pv_error *error)
{
    if (!chardev) {
        pv_error_set(error, -EINVAL, "the monitor needs a character device");
        return NULL;
    }
    struct monitor_hmp *monitor = calloc(1, sizeof(*monitor));
    if (!monitor) {
        pv_error_set(error, -ENOMEM, "out of memory");
        return NULL;
    }
    monitor->vm = vm;
    monitor->chardev = chardev;
    if (chardev_attach_frontend(chardev, &hmp_frontend_ops, monitor, error) < 0) {
        free(monitor);
        return NULL;
    }
    return monitor;
}

void monitor_hmp_destroy(struct monitor_hmp *monitor)
{
    /* The chardev is closed by its owner after the monitors are destroyed;
     * chardev.h has no detach, so nothing may arrive for us after this. */
    free(monitor);
}

/*
 * Serial commands: one per line, one answer line each. Add a command by
 * adding a row to command_table.
 */
#include "probe.h"

struct command_entry {
    const char *name;
    void (*run)(char *arguments);
};

static void command_ping(char *arguments)
{
    (void)arguments;
    console_printf("PROBE PONG");
}

static void command_cpus(char *arguments)
{
    (void)arguments;
    console_printf("PROBE CPUS %u", probe_acpi.cpu_count ? probe_acpi.cpu_count : 1);
}

static void command_mem_test(char *arguments)
{
    uint64_t mib;
    if (!*arguments || !probe_parse_u64(arguments, &mib) || mib == 0) {
        console_printf("PROBE ERROR mem-test: expected a size in MiB, got '%s'", arguments);
        return;
    }
    uint64_t start, size;
    memtest_free_range(&start, &size);
    if (mib > size >> 20) {
        console_printf("PROBE ERROR mem-test: %lu MiB requested, %lu MiB free", mib, size >> 20);
        return;
    }
    uint64_t bad_address;
    if (memtest_run(start, mib << 20, &bad_address) == 0)
        console_printf("PROBE MEMTEST ok");
    else
        console_printf("PROBE MEMTEST fail at 0x%lx", bad_address);
}

static void command_pci(char *arguments)
{
    (void)arguments;
    pci_list();
}

#ifdef PROBE_DEBUG_COMMANDS
/* Debug builds only: checks that a CPL3 fault is reported (PROBE FAULT ...). */
static void command_fault(char *arguments)
{
    (void)arguments;
    (void)*(volatile uint64_t *)(uintptr_t)0x500000000ull; /* above the 4 GiB we map */
}
#endif

static const struct command_entry command_table[] = {
    {"ping", command_ping},
    {"cpus", command_cpus},
    {"mem-test", command_mem_test},
    {"pci", command_pci},
    {"blk-read", virtio_blk_command_read},
    {"blk-write", virtio_blk_command_write},
    {"blk-flush", virtio_blk_command_flush},
    {"net-send", virtio_net_command_send},
    {"net-echo", virtio_net_command_echo},
    {"net-stats", virtio_net_command_stats},
#ifdef PROBE_DEBUG_COMMANDS
    {"fault", command_fault},
#endif
};

void commands_handle_line(char *line)
{
    while (*line == ' ' || *line == '\t')
        line++;
    char *arguments = line;
    while (*arguments && *arguments != ' ' && *arguments != '\t')
        arguments++;
    if (*arguments)
        *arguments++ = '\0';
    while (*arguments == ' ' || *arguments == '\t')
        arguments++;
    size_t length = strlen(arguments);
    while (length && (arguments[length - 1] == ' ' || arguments[length - 1] == '\t'))
        arguments[--length] = '\0';
    if (!*line)
        return;
    for (size_t i = 0; i < sizeof(command_table) / sizeof(command_table[0]); i++) {
        if (strcmp(line, command_table[i].name) == 0) {
            command_table[i].run(arguments);
            return;
        }
    }
    console_printf("PROBE ERROR unknown command: %s", line);
}

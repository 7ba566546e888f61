/* Builds the "pc" machine's ACPI tables (2 CPUs present, 4 possible) and
 * dumps them to the directory given as argv[1], so `iasl -d` and acpiexec
 * can check them without starting a VM.
 *
 * `--cpu-hotplug-flags N` prints instead the flags byte the CPU hotplug
 * registers (x86/cpu_hotplug.c) answer for CPU N in the same machine, which
 * the acpiexec test feeds to the DSDT's operation region. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acpi/acpi_tables.h"
#include "vm.h"
#include "x86/cpu_hotplug.h"

#define DUMP_CPUS 2
#define DUMP_MAX_CPUS 4

static int print_cpu_hotplug_flags(const char *cpu_text)
{
    char *end;
    unsigned long cpu = strtoul(cpu_text, &end, 0);
    struct pv_error error = {0};
    struct cpu_hotplug *hotplug =
        cpu_hotplug_create(NULL, VM_CPU_HOTPLUG_BASE, DUMP_CPUS, DUMP_MAX_CPUS, &error);
    if (*end || !hotplug) {
        fprintf(stderr, "acpi_dump_tool: %s\n", hotplug ? "bad CPU number" : error.message);
        cpu_hotplug_destroy(hotplug);
        return 2;
    }
    cpu_hotplug_write(hotplug, CPU_HOTPLUG_SELECTOR, (uint32_t)cpu, 4);
    printf("0x%02x\n", cpu_hotplug_read(hotplug, CPU_HOTPLUG_FLAGS, 1));
    cpu_hotplug_destroy(hotplug);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--cpu-hotplug-flags") == 0)
        return print_cpu_hotplug_flags(argv[2]);
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIRECTORY | --cpu-hotplug-flags CPU\n", argv[0]);
        return 2;
    }
    uint8_t *buffer = calloc(1, VM_ACPI_TABLES_SIZE);
    if (!buffer) {
        fprintf(stderr, "acpi_dump_tool: out of memory\n");
        return 1;
    }
    struct acpi_tables_config config = {.cpus = DUMP_CPUS, .max_cpus = DUMP_MAX_CPUS};
    struct acpi_tables_layout layout;
    struct pv_error error = {0};
    int rc = acpi_tables_build(&config, buffer, VM_ACPI_TABLES_SIZE, VM_ACPI_TABLES_ADDRESS,
                               &layout, &error);
    if (rc == 0)
        rc = acpi_tables_dump(buffer, &layout, argv[1], &error);
    free(buffer);
    if (rc < 0) {
        fprintf(stderr, "acpi_dump_tool: %s\n", error.message);
        return 1;
    }
    return 0;
}

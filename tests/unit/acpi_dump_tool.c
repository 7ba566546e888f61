/* Builds the "pc" machine's ACPI tables (2 CPUs present, 4 possible) and
 * dumps them to the directory given as argv[1], so `iasl -d` and acpiexec
 * can check them without starting a VM. */
#include <stdio.h>
#include <stdlib.h>

#include "acpi/acpi_tables.h"
#include "vm.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
        return 2;
    }
    uint8_t *buffer = calloc(1, VM_ACPI_TABLES_SIZE);
    if (!buffer) {
        fprintf(stderr, "acpi_dump_tool: out of memory\n");
        return 1;
    }
    struct acpi_tables_config config = {.cpus = 2, .max_cpus = 4};
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

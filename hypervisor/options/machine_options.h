/* Options that shape the machine: -name, -uuid, -machine, -accel, -cpu, -m, -smp. */
#ifndef PLUGVIRT_MACHINE_OPTIONS_H
#define PLUGVIRT_MACHINE_OPTIONS_H

#include "options/option_helpers.h"

extern const struct option_handler machine_options[];

/* Parses sizes as -m takes them: "128", "128M", "2G", "512k", "1.5G", "2GB";
 * a plain number is MiB. 0, overflow and garbage are errors. */
int vmm_parse_memory_size(const char *text, uint64_t *bytes, struct pv_error *error);

#endif

/* The QEMU-compatible command line of plugvirt-vmm: the parse loop. Each option
 * lives in one family table in options/ (machine, boot, chardev, device, misc). */
#ifndef PLUGVIRT_CMDLINE_H
#define PLUGVIRT_CMDLINE_H

#include <stdbool.h>
#include <stdio.h>

#include "pv_error.h"
#include "vmm_config.h"

/* Parses argv (argv[0] is the program name) into `config`, which is
 * overwritten (not freed) first. On error returns -EINVAL and a one-line
 * message naming the option; call vmm_config_free() in both cases.
 * `*exit_early` is set for --version, -help, -cpu help and -machine help
 * (their text is written to stdout). */
int vmm_config_parse(struct vmm_config *config, int argc, char **argv, bool *exit_early,
                     struct pv_error *error);
/* Like vmm_config_parse, writing help and version text to `output`. */
int vmm_config_parse_to(struct vmm_config *config, int argc, char **argv, bool *exit_early,
                        FILE *output, struct pv_error *error);
#endif

/* Character devices and their frontends: -chardev, -serial, -monitor, -qmp,
 * -mon, and what QEMU decides about them after the last option. */
#ifndef PLUGVIRT_CHARDEV_OPTIONS_H
#define PLUGVIRT_CHARDEV_OPTIONS_H

#include "options/option_helpers.h"

extern const struct option_handler chardev_options[];

/* After the last option: QEMU's default serial and monitor for -nographic,
 * -serial chardev:ID and -mon chardev=ID references, and the users of stdio. */
int chardev_options_finish(struct parse_state *state, struct pv_error *error);

#endif

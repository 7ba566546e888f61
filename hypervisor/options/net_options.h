/* Network options: -netdev, -net, -nic (see net_options.c). */
#ifndef PLUGVIRT_NET_OPTIONS_H
#define PLUGVIRT_NET_OPTIONS_H

#include <stdbool.h>

#include "options/option_helpers.h"

extern const struct option_handler net_options[];

/* After the parse loop: pairs the -net nic and -net tap of QEMU's hub 0. */
int net_options_finish(struct parse_state *state, struct pv_error *error);

/* One stored -netdev argument as options: "tap,id=n0,..." (implied key "type") or JSON
 * ({"type":"tap","id":"n0",...}, `*json` set: QMP's wording applies to its errors). */
int net_options_parse_netdev(const char *text, struct qemu_options *options, bool *json,
                             struct pv_error *error);

#endif

/* Direct kernel boot: -kernel, -initrd, -append, -boot. */
#ifndef PLUGVIRT_BOOT_OPTIONS_H
#define PLUGVIRT_BOOT_OPTIONS_H

#include "options/option_helpers.h"

extern const struct option_handler boot_options[];

#endif

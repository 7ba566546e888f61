/* Display, run control, process and the libvirt options whose QEMU meaning
 * already holds here. */
#ifndef PLUGVIRT_MISC_OPTIONS_H
#define PLUGVIRT_MISC_OPTIONS_H

#include "options/option_helpers.h"

extern const struct option_handler misc_options[];

#endif

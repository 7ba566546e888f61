/* Devices and their block backends: -device, -blockdev, -drive (network: net_options.h). */
#ifndef PLUGVIRT_DEVICE_OPTIONS_H
#define PLUGVIRT_DEVICE_OPTIONS_H

#include "options/option_helpers.h"

extern const struct option_handler device_options[];

#endif

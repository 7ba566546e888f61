/* Devices and their backends: -device, -blockdev, -drive, -netdev, -net. */
#ifndef PLUGVIRT_DEVICE_OPTIONS_H
#define PLUGVIRT_DEVICE_OPTIONS_H

#include "options/option_helpers.h"

extern const struct option_handler device_options[];

#endif

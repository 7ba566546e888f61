/* QMP argument objects as option lists (see json_options.c). */
#ifndef PLUGVIRT_JSON_OPTIONS_H
#define PLUGVIRT_JSON_OPTIONS_H

#include <yajl/yajl_tree.h>

#include "pv_error.h"
#include "qemu_options.h"

/* Flattens a QMP argument object into `options` (initialised here; free with
 * qemu_options_free): nested objects become dotted keys, booleans "on"/"off",
 * numbers their text. Arrays and null are rejected. */
int qemu_options_from_json(yajl_val object, struct qemu_options *options, struct pv_error *error);

#endif

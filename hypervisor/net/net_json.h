/* Type checks of netdev arguments given as JSON (see net_json.c). */
#ifndef PLUGVIRT_NET_JSON_H
#define PLUGVIRT_NET_JSON_H

#include <yajl/yajl_tree.h>

#include "pv_error.h"

/* id and type present and strings, then the tap members' types: "Parameter 'id' is
 * missing", "Invalid parameter type for 'vhost', expected: boolean", "Parameter 'sndbuf'
 * expects uint64"... (-EINVAL). Other types pass: net_netdev_check refuses them by name. */
int net_netdev_check_json(yajl_val arguments, struct pv_error *error);

#endif

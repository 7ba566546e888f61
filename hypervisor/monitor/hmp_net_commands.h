/* HMP commands for networking (see hmp_net_commands.c); rows in monitor_hmp.c's tables. */
#ifndef PLUGVIRT_HMP_NET_COMMANDS_H
#define PLUGVIRT_HMP_NET_COMMANDS_H

#include "monitor/hmp_output.h"

void hmp_netdev_add(struct hmp_context *context, const char *arguments);
void hmp_netdev_del(struct hmp_context *context, const char *arguments);
void hmp_set_link(struct hmp_context *context, const char *arguments);
void hmp_getfd(struct hmp_context *context, const char *arguments);
void hmp_closefd(struct hmp_context *context, const char *arguments);
void hmp_info_network(struct hmp_context *context, const char *arguments);
void hmp_host_net_add(struct hmp_context *context, const char *arguments);
void hmp_host_net_remove(struct hmp_context *context, const char *arguments);
void hmp_pci_add(struct hmp_context *context, const char *arguments);
void hmp_pci_del(struct hmp_context *context, const char *arguments);

#endif

/* The block layer as the monitors show it (QMP query-block, HMP info block). */
#ifndef PLUGVIRT_BLOCK_QUERY_H
#define PLUGVIRT_BLOCK_QUERY_H

#include <stdbool.h>

struct block_layer;
struct json_writer;

/* query-block: the JSON array of BlockInfo. */
void block_query_block(struct block_layer *layer, struct json_writer *writer);
/* query-named-block-nodes: the JSON array of BlockDeviceInfo. */
void block_query_named_block_nodes(struct block_layer *layer, struct json_writer *writer);
/* HMP "info block [-n] [device]" text, malloc'd ("" when there is nothing). */
char *block_info_block_text(struct block_layer *layer, const char *device, bool nodes_only);

#endif

/* What the files of the block layer share: the node, backend and layer
 * structures. Only the files in block/ include this; everyone else uses block.h,
 * block_io.h and block_query.h. */
#ifndef PLUGVIRT_BLOCK_INTERNAL_H
#define PLUGVIRT_BLOCK_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

enum block_driver { BLOCK_DRIVER_FILE, BLOCK_DRIVER_RAW };

struct block_node {
    struct block_node *next;
    struct block_layer *layer;
    char *node_name;
    enum block_driver driver;
    bool read_only;
    bool monitor_owned;    /* blockdev-add root: blockdev-del may remove it */
    unsigned parent_count; /* raw nodes using this one as their file */
    unsigned backend_count;
    bool direct, no_flush;
    char aio[16];

    /* driver "file" */
    char *filename;
    int fd;
    unsigned alignment; /* O_DIRECT: offset, length and memory alignment */

    /* driver "raw" */
    struct block_node *file;
    uint64_t offset, size;
    bool has_size;
};

struct block_backend {
    struct block_backend *next;
    struct block_layer *layer;
    char *name;        /* drive id; NULL once anonymous */
    bool legacy_drive; /* -drive / drive_add: deleted with its device */
    struct block_node *root;
    char *qdev_path; /* attached device, NULL if none */
    bool writeback;
    pthread_rwlock_t lock; /* I/O holds it shared; drive_del exclusively */
};

struct block_layer {
    struct block_node *nodes;
    struct block_backend *backends;
    unsigned name_counter;
    unsigned none_counter;
    uint32_t random_state;
};

/* Length of what the node exposes, in bytes (block.c). */
uint64_t block_node_length(struct block_node *node);
/* The "file" node under `node`, adding a raw node's offset to *offset (block_io.c). */
struct block_node *block_node_file_of(struct block_node *node, uint64_t *offset);

#endif

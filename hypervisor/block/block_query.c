/* What the monitors show of the block layer: query-block,
 * query-named-block-nodes and HMP info block; see block_query.h. */
#include "block/block_query.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block_internal.h"
#include "json_util.h"

/* --------------------------------------------------------------- queries --- */

static const char *driver_name(const struct block_node *node)
{
    return node->driver == BLOCK_DRIVER_RAW ? "raw" : "file";
}

static const char *node_filename(struct block_node *node)
{
    uint64_t ignored = 0;
    return block_node_file_of(node, &ignored)->filename;
}

static void write_node_info(struct json_writer *writer, struct block_node *node, bool writeback)
{
    uint64_t ignored = 0;
    struct block_node *file = block_node_file_of(node, &ignored);
    struct stat status;
    uint64_t actual_size = 0;
    if (fstat(file->fd, &status) == 0)
        actual_size = (uint64_t)status.st_blocks * 512;

    json_writer_begin_object(writer);
    json_writer_member_string(writer, "file", node_filename(node));
    json_writer_member_string(writer, "node-name", node->node_name);
    json_writer_member_bool(writer, "ro", node->read_only);
    json_writer_member_string(writer, "drv", driver_name(node));
    json_writer_member_int(writer, "backing_file_depth", 0);
    json_writer_member_bool(writer, "encrypted", false);
    json_writer_member_string(writer, "detect_zeroes", "off");
    static const char *const zero_limits[] = {"bps",  "bps_rd",  "bps_wr",
                                              "iops", "iops_rd", "iops_wr"};
    for (size_t i = 0; i < sizeof(zero_limits) / sizeof(zero_limits[0]); i++)
        json_writer_member_int(writer, zero_limits[i], 0);
    json_writer_member_int(writer, "write_threshold", 0);
    json_writer_key(writer, "cache");
    json_writer_begin_object(writer);
    json_writer_member_bool(writer, "writeback", writeback);
    json_writer_member_bool(writer, "direct", node->direct);
    json_writer_member_bool(writer, "no-flush", node->no_flush);
    json_writer_end_object(writer);
    json_writer_key(writer, "image");
    json_writer_begin_object(writer);
    json_writer_member_uint(writer, "virtual-size", block_node_length(node));
    json_writer_member_string(writer, "filename", node_filename(node));
    json_writer_member_string(writer, "format", driver_name(node));
    json_writer_member_uint(writer, "actual-size", actual_size);
    json_writer_member_bool(writer, "dirty-flag", false);
    json_writer_end_object(writer);
    json_writer_end_object(writer);
}

/* Backends in creation order (the list is kept newest first). */
static size_t collect_backends(struct block_layer *layer, struct block_backend ***result)
{
    size_t count = 0;
    for (struct block_backend *b = layer->backends; b; b = b->next)
        count++;
    struct block_backend **array = calloc(count ? count : 1, sizeof(*array));
    if (!array) {
        *result = NULL;
        return 0;
    }
    size_t i = count;
    for (struct block_backend *b = layer->backends; b; b = b->next)
        array[--i] = b;
    *result = array;
    return count;
}

static bool backend_listed(const struct block_backend *backend)
{
    /* QEMU skips anonymous backends without a device. */
    return backend->name || backend->qdev_path;
}

void block_query_block(struct block_layer *layer, struct json_writer *writer)
{
    struct block_backend **backends;
    size_t count = collect_backends(layer, &backends);
    json_writer_begin_array(writer);
    for (size_t i = 0; i < count; i++) {
        struct block_backend *backend = backends[i];
        if (!backend_listed(backend))
            continue;
        json_writer_begin_object(writer);
        json_writer_member_string(writer, "device", backend->name ? backend->name : "");
        if (backend->qdev_path)
            json_writer_member_string(writer, "qdev", backend->qdev_path);
        json_writer_member_string(writer, "type", "unknown");
        json_writer_member_bool(writer, "removable", false);
        json_writer_member_bool(writer, "locked", false);
        if (backend->root) {
            json_writer_key(writer, "inserted");
            write_node_info(writer, backend->root, backend->writeback);
        }
        if (backend->qdev_path)
            json_writer_member_string(writer, "io-status", "ok");
        json_writer_end_object(writer);
    }
    json_writer_end_array(writer);
    free(backends);
}

void block_query_named_block_nodes(struct block_layer *layer, struct json_writer *writer)
{
    json_writer_begin_array(writer);
    for (struct block_node *node = layer->nodes; node; node = node->next)
        write_node_info(writer, node, true);
    json_writer_end_array(writer);
}

struct text {
    char *data;
    size_t length;
    bool failed;
};

static void text_append(struct text *text, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void text_append(struct text *text, const char *format, ...)
{
    if (text->failed)
        return;
    va_list arguments;
    va_start(arguments, format);
    char *piece = NULL;
    int length = vasprintf(&piece, format, arguments);
    va_end(arguments);
    char *grown = length < 0 ? NULL : realloc(text->data, text->length + (size_t)length + 1);
    if (!grown) {
        free(piece);
        text->failed = true;
        return;
    }
    memcpy(grown + text->length, piece, (size_t)length + 1);
    text->data = grown;
    text->length += (size_t)length;
    free(piece);
}

/* One entry in QEMU's print_block_info layout. */
static void print_block_info(struct text *text, struct block_backend *backend,
                             struct block_node *inserted)
{
    if (backend && backend->name) {
        text_append(text, "%s", backend->name);
        if (inserted)
            text_append(text, " (%s)", inserted->node_name);
    } else {
        text_append(text, "%s",
                    inserted                        ? inserted->node_name
                    : backend && backend->qdev_path ? backend->qdev_path
                                                    : "<anonymous>");
    }
    if (inserted)
        text_append(text, ": %s (%s%s)\n", node_filename(inserted), driver_name(inserted),
                    inserted->read_only ? ", read-only" : "");
    else
        text_append(text, ": [not inserted]\n");
    if (backend && backend->qdev_path)
        text_append(text, "    Attached to:      %s\n", backend->qdev_path);
    if (!inserted)
        return;
    bool writeback = backend ? backend->writeback : true;
    text_append(text, "    Cache mode:       %s%s%s\n", writeback ? "writeback" : "writethrough",
                inserted->direct ? ", direct" : "", inserted->no_flush ? ", ignore flushes" : "");
}

char *block_info_block_text(struct block_layer *layer, const char *device, bool nodes_only)
{
    struct text text = {0};
    text_append(&text, "%s", "");
    bool printed = false;
    if (!nodes_only) {
        struct block_backend **backends;
        size_t count = collect_backends(layer, &backends);
        for (size_t i = 0; i < count; i++) {
            struct block_backend *backend = backends[i];
            if (!backend_listed(backend))
                continue;
            if (device && strcmp(device, backend->name ? backend->name : ""))
                continue;
            if (printed)
                text_append(&text, "\n");
            print_block_info(&text, backend, backend->root);
            printed = true;
        }
        free(backends);
    }
    if ((device || nodes_only) && !printed) {
        bool first = true;
        for (struct block_node *node = layer->nodes; node; node = node->next) {
            if (device && strcmp(device, node->node_name))
                continue;
            if (!first)
                text_append(&text, "\n");
            print_block_info(&text, NULL, node);
            first = false;
        }
    }
    if (text.failed) {
        free(text.data);
        return NULL;
    }
    return text.data;
}

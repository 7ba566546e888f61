/* The block layer; see block.h. */
#include "block/block.h"

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

struct block_layer *block_layer_create(void)
{
    struct block_layer *layer = calloc(1, sizeof(*layer));
    if (layer)
        layer->random_state = (uint32_t)getpid() * 2654435761u ^ 0x9e3779b9u;
    return layer;
}

/* ---------------------------------------------------------------- lookup --- */

static struct block_node *find_node(struct block_layer *layer, const char *name)
{
    for (struct block_node *node = layer->nodes; node; node = node->next)
        if (!strcmp(node->node_name, name))
            return node;
    return NULL;
}

static struct block_backend *find_drive(struct block_layer *layer, const char *name)
{
    for (struct block_backend *backend = layer->backends; backend; backend = backend->next)
        if (backend->name && !strcmp(backend->name, name))
            return backend;
    return NULL;
}

bool block_node_exists(struct block_layer *layer, const char *node_name)
{
    return node_name && find_node(layer, node_name);
}

bool block_drive_exists(struct block_layer *layer, const char *drive_id)
{
    return drive_id && find_drive(layer, drive_id);
}

/* QEMU's id_wellformed: a letter, then letters, digits, '-', '.', '_'. */
static bool name_wellformed(const char *name)
{
    if (!isalpha((unsigned char)name[0]))
        return false;
    for (const char *p = name + 1; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
            return false;
    return true;
}

static char *generate_node_name(struct block_layer *layer)
{
    /* QEMU appends two random digits to a counter: "#block" N NN. */
    for (;;) {
        layer->random_state = layer->random_state * 1103515245u + 12345u;
        unsigned random_digits = (layer->random_state >> 16) % 100;
        char name[32];
        snprintf(name, sizeof(name), "#block%u%02u", layer->name_counter++, random_digits);
        if (!find_node(layer, name))
            return strdup(name);
    }
}

static int check_new_node_name(struct block_layer *layer, const char *name, struct pv_error *error)
{
    if (!name_wellformed(name))
        return pv_error_set(error, -EINVAL, "Invalid node-name: '%s'", name);
    if (find_drive(layer, name))
        return pv_error_set(error, -EINVAL, "node-name=%s is conflicting with a device id", name);
    if (find_node(layer, name))
        return pv_error_set(error, -EEXIST, "Duplicate nodes with node-name='%s'", name);
    if (strlen(name) >= 32)
        return pv_error_set(error, -EINVAL, "Node name too long");
    return 0;
}

/* ------------------------------------------------------------ node life --- */

static void node_unlink(struct block_layer *layer, struct block_node *node)
{
    for (struct block_node **link = &layer->nodes; *link; link = &(*link)->next) {
        if (*link == node) {
            *link = node->next;
            return;
        }
    }
}

/* Frees `node` and, recursively, inline children nobody else uses. */
static void node_delete(struct block_node *node)
{
    struct block_layer *layer = node->layer;
    node_unlink(layer, node);
    struct block_node *child = node->file;
    if (child) {
        child->parent_count--;
        if (!child->monitor_owned && child->parent_count == 0 && child->backend_count == 0)
            node_delete(child);
    }
    if (node->fd >= 0)
        close(node->fd);
    free(node->filename);
    free(node->node_name);
    free(node);
}

/* For O_DIRECT: the smallest alignment (512 or 4096) the file accepts. */
static unsigned probe_direct_alignment(int fd)
{
    int sector_size = 0;
    if (ioctl(fd, BLKSSZGET, &sector_size) == 0 && sector_size >= 512)
        return (unsigned)sector_size < 4096 ? 4096 : (unsigned)sector_size;
    void *buffer = NULL;
    if (posix_memalign(&buffer, 4096, 4096))
        return 4096;
    unsigned alignment = 4096;
    if (pread(fd, buffer, 512, 0) >= 0)
        alignment = 512;
    free(buffer);
    return alignment;
}

static int open_file_node(struct block_node *node, struct qemu_options *options,
                          struct pv_error *error)
{
    const char *filename = qemu_options_get(options, "filename");
    if (!filename)
        return pv_error_set(error, -EINVAL, "Parameter 'filename' is missing");
    const char *aio = qemu_options_get(options, "aio");
    if (aio && strcmp(aio, "threads") && strcmp(aio, "native") && strcmp(aio, "io_uring"))
        return pv_error_set(error, -EINVAL, "Parameter 'aio' does not accept value '%s'", aio);
    snprintf(node->aio, sizeof(node->aio), "%s", aio ? aio : "threads");
    if (aio && !strcmp(aio, "native") && !node->direct)
        return pv_error_set(error, -EINVAL,
                            "aio=native was specified, but it requires cache.direct=on, "
                            "which was not specified.");
    /* Accepted for compatibility; they change nothing here. */
    qemu_options_ignore(options, "locking");
    qemu_options_ignore(options, "aio-max-batch");
    qemu_options_ignore(options, "drop-cache");
    qemu_options_ignore(options, "x-check-cache-dropped");

    node->filename = strdup(filename);
    if (!node->filename)
        return pv_error_set(error, -ENOMEM, "out of memory");
    int flags = (node->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    if (node->direct)
        flags |= O_DIRECT;
    node->fd = open(filename, flags);
    if (node->fd < 0)
        return pv_error_set_errno(error, -errno, "Could not open '%s'", filename);
    struct stat status;
    if (fstat(node->fd, &status) < 0)
        return pv_error_set_errno(error, -errno, "Could not stat '%s'", filename);
    if (S_ISDIR(status.st_mode))
        return pv_error_set_errno(error, -EISDIR, "Could not open '%s'", filename);
    node->alignment = node->direct ? probe_direct_alignment(node->fd) : 1;
    return 0;
}

static int file_length(struct block_node *node, uint64_t *length)
{
    struct stat status;
    if (fstat(node->fd, &status) < 0)
        return -errno;
    if (S_ISBLK(status.st_mode)) {
        uint64_t bytes = 0;
        if (ioctl(node->fd, BLKGETSIZE64, &bytes) < 0)
            return -errno;
        *length = bytes;
        return 0;
    }
    *length = (uint64_t)status.st_size;
    return 0;
}

uint64_t block_node_length(struct block_node *node)
{
    if (node->driver == BLOCK_DRIVER_FILE) {
        uint64_t length = 0;
        return file_length(node, &length) == 0 ? length : 0;
    }
    if (node->has_size)
        return node->size;
    uint64_t file = block_node_length(node->file);
    return file > node->offset ? file - node->offset : 0;
}

static int open_node(struct block_layer *layer, struct qemu_options *options, bool is_root,
                     bool parent_read_only, bool parent_direct, bool parent_no_flush,
                     struct block_node **result, struct pv_error *error);

/* The sub-options of `prefix.` (prefix stripped), marking them used. */
static int extract_child_options(struct qemu_options *options, const char *prefix,
                                 struct qemu_options *child, struct pv_error *error)
{
    child->items = NULL;
    child->count = 0;
    size_t prefix_length = strlen(prefix);
    for (size_t i = 0; i < options->count; i++) {
        struct qemu_option *option = &options->items[i];
        if (strncmp(option->key, prefix, prefix_length) || option->key[prefix_length] != '.')
            continue;
        struct qemu_option *items =
            realloc(child->items, (child->count + 1) * sizeof(child->items[0]));
        if (!items)
            return pv_error_set(error, -ENOMEM, "out of memory");
        child->items = items;
        items[child->count].key = strdup(option->key + prefix_length + 1);
        items[child->count].value = strdup(option->value);
        items[child->count].used = false;
        child->count++;
        if (!items[child->count - 1].key || !items[child->count - 1].value)
            return pv_error_set(error, -ENOMEM, "out of memory");
        option->used = true;
    }
    return 0;
}

static int open_raw_node(struct block_layer *layer, struct block_node *node,
                         struct qemu_options *options, struct pv_error *error)
{
    int result;
    struct qemu_options child_options;
    result = extract_child_options(options, "file", &child_options, error);
    if (result < 0) {
        qemu_options_free(&child_options);
        return result;
    }
    const char *reference = qemu_options_get(options, "file");
    if (reference && child_options.count > 0) {
        qemu_options_free(&child_options);
        return pv_error_set(error, -EINVAL,
                            "Cannot reference an existing block device with additional "
                            "options or a new filename");
    }
    if (reference) {
        qemu_options_free(&child_options);
        struct block_node *child = find_node(layer, reference);
        if (!child) {
            struct block_backend *drive = find_drive(layer, reference);
            child = drive ? drive->root : NULL;
        }
        if (!child)
            return pv_error_set(error, -ENOENT, "Cannot find device='%s' nor node-name='%s'",
                                reference, reference);
        if (child->read_only && !node->read_only)
            return pv_error_set(error, -EACCES, "Block node is read-only");
        node->file = child;
        child->parent_count++;
    } else {
        if (child_options.count == 0) {
            qemu_options_free(&child_options);
            return pv_error_set(error, -EINVAL, "A block device must be specified for \"file\"");
        }
        struct block_node *child = NULL;
        result = open_node(layer, &child_options, false, node->read_only, node->direct,
                           node->no_flush, &child, error);
        qemu_options_free(&child_options);
        if (result < 0)
            return result;
        node->file = child;
        child->parent_count++;
    }

    result = qemu_options_get_uint64(options, "offset", 0, &node->offset, error);
    if (result < 0)
        return result;
    node->has_size = qemu_options_find(options, "size") != NULL;
    result = qemu_options_get_uint64(options, "size", 0, &node->size, error);
    if (result < 0)
        return result;
    uint64_t file_size = block_node_length(node->file);
    if (node->offset > file_size)
        return pv_error_set(error, -EINVAL,
                            "Offset (%" PRIu64
                            ") cannot be greater than size of the containing file (%" PRIu64 ")",
                            node->offset, file_size);
    if (node->has_size && node->offset + node->size > file_size)
        return pv_error_set(error, -EINVAL,
                            "The sum of offset (%" PRIu64 ") and size (%" PRIu64
                            ") has to be smaller or equal to the  actual size of the "
                            "containing file (%" PRIu64 ")",
                            node->offset, node->size, file_size);
    if (node->has_size && node->size % BLOCK_SECTOR_SIZE)
        return pv_error_set(error, -EINVAL, "Specified size is not multiple of %u",
                            BLOCK_SECTOR_SIZE);
    return 0;
}

static int open_node(struct block_layer *layer, struct qemu_options *options, bool is_root,
                     bool parent_read_only, bool parent_direct, bool parent_no_flush,
                     struct block_node **result, struct pv_error *error)
{
    int status;
    const char *driver = qemu_options_get(options, "driver");
    if (!driver)
        return pv_error_set(error, -EINVAL, "Parameter 'driver' is missing");
    enum block_driver kind;
    if (!strcmp(driver, "file") || !strcmp(driver, "host_device"))
        kind = BLOCK_DRIVER_FILE;
    else if (!strcmp(driver, "raw"))
        kind = BLOCK_DRIVER_RAW;
    else
        return pv_error_set(error, -EINVAL, "Parameter 'driver' does not accept value '%s'",
                            driver);

    const char *node_name = qemu_options_get(options, "node-name");
    if (is_root && !node_name)
        return pv_error_set(error, -EINVAL, "'node-name' must be specified for the root node");
    if (node_name) {
        status = check_new_node_name(layer, node_name, error);
        if (status < 0)
            return status;
    }

    struct block_node *node = calloc(1, sizeof(*node));
    if (!node)
        return pv_error_set(error, -ENOMEM, "out of memory");
    node->layer = layer;
    node->fd = -1;
    node->driver = kind;

    if ((status = qemu_options_get_bool(options, "read-only", parent_read_only, &node->read_only,
                                        error)) < 0 ||
        (status = qemu_options_get_bool(options, "cache.direct", parent_direct, &node->direct,
                                        error)) < 0 ||
        (status = qemu_options_get_bool(options, "cache.no-flush", parent_no_flush, &node->no_flush,
                                        error)) < 0)
        goto fail;
    qemu_options_ignore(options, "auto-read-only");
    qemu_options_ignore(options, "force-share");
    qemu_options_ignore(options, "detect-zeroes");
    const char *discard = qemu_options_get(options, "discard");
    if (discard && strcmp(discard, "ignore") && strcmp(discard, "unmap") &&
        strcmp(discard, "off") && strcmp(discard, "on")) {
        status =
            pv_error_set(error, -EINVAL, "Parameter 'discard' does not accept value '%s'", discard);
        goto fail;
    }

    if (kind == BLOCK_DRIVER_FILE)
        status = open_file_node(node, options, error);
    else
        status = open_raw_node(layer, node, options, error);
    if (status < 0)
        goto fail;
    status = qemu_options_check_unused(options, error);
    if (status < 0)
        goto fail;

    node->node_name = node_name ? strdup(node_name) : generate_node_name(layer);
    if (!node->node_name) {
        status = pv_error_set(error, -ENOMEM, "out of memory");
        goto fail;
    }
    /* Appended: query-named-block-nodes lists nodes in creation order, children first. */
    struct block_node **link = &layer->nodes;
    while (*link)
        link = &(*link)->next;
    *link = node;
    *result = node;
    return 0;

fail:
    if (node->file) {
        struct block_node *child = node->file;
        child->parent_count--;
        if (!child->monitor_owned && child->parent_count == 0 && child->backend_count == 0)
            node_delete(child);
    }
    if (node->fd >= 0)
        close(node->fd);
    free(node->filename);
    free(node);
    return status;
}

int block_blockdev_add(struct block_layer *layer, struct qemu_options *options,
                       struct pv_error *error)
{
    struct block_node *node = NULL;
    int status = open_node(layer, options, true, false, false, false, &node, error);
    if (status < 0)
        return status;
    node->monitor_owned = true;
    return 0;
}

int block_blockdev_del(struct block_layer *layer, const char *node_name, struct pv_error *error)
{
    struct block_node *node = find_node(layer, node_name);
    if (!node)
        return pv_error_set(error, -ENOENT, "Failed to find node with node-name='%s'", node_name);
    if (node->backend_count > 0)
        return pv_error_set(error, -EBUSY, "Node %s is in use", node_name);
    if (!node->monitor_owned)
        return pv_error_set(error, -EPERM, "Node %s is not owned by the monitor", node_name);
    if (node->parent_count > 0)
        return pv_error_set(error, -EBUSY, "Block device %s is in use", node_name);
    node_delete(node);
    return 0;
}

/* ---------------------------------------------------------------- drives --- */

static void backend_unlink(struct block_layer *layer, struct block_backend *backend)
{
    for (struct block_backend **link = &layer->backends; *link; link = &(*link)->next) {
        if (*link == backend) {
            *link = backend->next;
            return;
        }
    }
}

static void backend_free(struct block_backend *backend)
{
    pthread_rwlock_destroy(&backend->lock);
    free(backend->name);
    free(backend->qdev_path);
    free(backend);
}

static struct block_backend *backend_new(struct block_layer *layer, struct block_node *root)
{
    struct block_backend *backend = calloc(1, sizeof(*backend));
    if (!backend)
        return NULL;
    if (pthread_rwlock_init(&backend->lock, NULL)) {
        free(backend);
        return NULL;
    }
    backend->layer = layer;
    backend->root = root;
    backend->writeback = true;
    if (root)
        root->backend_count++;
    backend->next = layer->backends;
    layer->backends = backend;
    return backend;
}

/* Detaches the root from the backend (waiting for in-flight I/O) and
 * deletes the nodes the drive created. */
static void backend_remove_root(struct block_backend *backend)
{
    pthread_rwlock_wrlock(&backend->lock);
    struct block_node *root = backend->root;
    backend->root = NULL;
    pthread_rwlock_unlock(&backend->lock);
    if (!root)
        return;
    root->backend_count--;
    if (!root->monitor_owned && root->parent_count == 0 && root->backend_count == 0)
        node_delete(root);
}

struct cache_mode {
    const char *name;
    bool writeback, direct, no_flush;
};

static const struct cache_mode cache_modes[] = {
    {"writeback", true, false, false},     {"none", true, true, false},
    {"writethrough", false, false, false}, {"directsync", false, true, false},
    {"unsafe", true, false, true},
};

int block_drive_add(struct block_layer *layer, struct qemu_options *options, char **id_out,
                    struct pv_error *error)
{
    int status;
    const char *interface = qemu_options_get(options, "if");
    if (interface && strcmp(interface, "none"))
        return pv_error_set(error, -EINVAL,
                            "Drive interface '%s' is not supported (use if=none and -device)",
                            interface);
    const char *id = qemu_options_get(options, "id");
    char generated_id[32];
    if (!id) {
        do {
            snprintf(generated_id, sizeof(generated_id), "none%u", layer->none_counter++);
        } while (find_drive(layer, generated_id) || find_node(layer, generated_id));
        id = generated_id;
    } else {
        if (!name_wellformed(id))
            return pv_error_set(error, -EINVAL, "Parameter 'id' expects an identifier");
        if (find_drive(layer, id))
            return pv_error_set(error, -EEXIST, "Duplicate ID '%s' for drive", id);
        if (find_node(layer, id))
            return pv_error_set(error, -EEXIST, "Device with node-name '%s' already exists", id);
    }

    const char *format = qemu_options_get(options, "format");
    if (format && strcmp(format, "raw") && strcmp(format, "file"))
        return pv_error_set(error, -EINVAL, "'%s' invalid format", format);
    const char *media = qemu_options_get(options, "media");
    if (media && strcmp(media, "disk"))
        return pv_error_set(error, -EINVAL, "'%s' invalid media", media);
    bool read_only = false;
    if ((status = qemu_options_get_bool(options, "readonly", false, &read_only, error)) < 0)
        return status;

    const struct cache_mode *cache = &cache_modes[0];
    const char *cache_name = qemu_options_get(options, "cache");
    if (cache_name) {
        cache = NULL;
        for (size_t i = 0; i < sizeof(cache_modes) / sizeof(cache_modes[0]); i++)
            if (!strcmp(cache_modes[i].name, cache_name))
                cache = &cache_modes[i];
        if (!cache)
            return pv_error_set(error, -EINVAL, "invalid cache option");
    }
    bool direct = cache->direct, no_flush = cache->no_flush;
    if ((status = qemu_options_get_bool(options, "cache.direct", direct, &direct, error)) < 0 ||
        (status = qemu_options_get_bool(options, "cache.no-flush", no_flush, &no_flush, error)) < 0)
        return status;
    const char *aio = qemu_options_get(options, "aio");
    const char *node_name = qemu_options_get(options, "node-name");
    const char *filename = qemu_options_get(options, "file");
    /* Accepted and without effect here (errors are always reported to the guest). */
    const char *ignored[] = {"werror",   "rerror",         "discard",     "detect-zeroes",
                             "snapshot", "copy-on-read",   "index",       "bus",
                             "unit",     "auto-read-only", "force-share", "locking"};
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
        qemu_options_ignore(options, ignored[i]);
    if ((status = qemu_options_check_unused(options, error)) < 0)
        return status;

    struct block_node *root = NULL;
    if (filename) {
        if (node_name && (status = check_new_node_name(layer, node_name, error)) < 0)
            return status;
        /* The same tree -drive builds in QEMU: a format node over a file node. */
        struct qemu_options file_options = {0};
        char read_only_text[4], direct_text[4], no_flush_text[4];
        snprintf(read_only_text, sizeof(read_only_text), "%s", read_only ? "on" : "off");
        snprintf(direct_text, sizeof(direct_text), "%s", direct ? "on" : "off");
        snprintf(no_flush_text, sizeof(no_flush_text), "%s", no_flush ? "on" : "off");
        const char *pairs[][2] = {
            {"driver", "raw"},
            {"read-only", read_only_text},
            {"cache.direct", direct_text},
            {"cache.no-flush", no_flush_text},
            {"file.driver", "file"},
            {"file.filename", filename},
            {"file.aio", aio},
            {"node-name", node_name},
        };
        bool only_file = format && !strcmp(format, "file");
        for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
            const char *key = pairs[i][0];
            if (!pairs[i][1])
                continue;
            if (only_file) {
                if (!strcmp(key, "driver"))
                    continue;
                if (!strncmp(key, "file.", 5))
                    key += 5;
            }
            struct qemu_option *items = realloc(
                file_options.items, (file_options.count + 1) * sizeof(file_options.items[0]));
            if (!items) {
                qemu_options_free(&file_options);
                return pv_error_set(error, -ENOMEM, "out of memory");
            }
            file_options.items = items;
            items[file_options.count++] =
                (struct qemu_option){strdup(key), strdup(pairs[i][1]), false};
        }
        status = open_node(layer, &file_options, false, false, false, false, &root, error);
        qemu_options_free(&file_options);
        if (status < 0)
            return status;
    }

    struct block_backend *backend = backend_new(layer, root);
    if (!backend || !(backend->name = strdup(id))) {
        if (backend) {
            backend_unlink(layer, backend);
            backend_free(backend);
        }
        if (root) {
            root->backend_count = 0;
            node_delete(root);
        }
        return pv_error_set(error, -ENOMEM, "out of memory");
    }
    backend->legacy_drive = true;
    backend->writeback = cache->writeback;
    if (id_out)
        *id_out = strdup(id);
    return 0;
}

int block_drive_del(struct block_layer *layer, const char *id, struct pv_error *error)
{
    if (find_node(layer, id))
        return block_blockdev_del(layer, id, error);
    struct block_backend *backend = find_drive(layer, id);
    if (!backend)
        return pv_error_set(error, -ENOENT, "Device '%s' not found", id);
    if (!backend->legacy_drive)
        return pv_error_set(error, -EINVAL,
                            "Deleting device added with blockdev-add is not supported");
    backend_remove_root(backend);
    /* The name goes at once; a device keeps the empty backend until it leaves. */
    free(backend->name);
    backend->name = NULL;
    if (!backend->qdev_path) {
        backend_unlink(layer, backend);
        backend_free(backend);
    }
    return 0;
}

void block_layer_destroy(struct block_layer *layer)
{
    if (!layer)
        return;
    while (layer->backends) {
        struct block_backend *backend = layer->backends;
        layer->backends = backend->next;
        if (backend->root)
            backend->root->backend_count--;
        backend_free(backend);
    }
    /* Parents before children: a node with no parents left can always go. */
    while (layer->nodes) {
        struct block_node *node = layer->nodes;
        while (node && node->parent_count > 0)
            node = node->next;
        if (!node)
            node = layer->nodes;    /* cannot happen with a tree; be safe */
        node->monitor_owned = true; /* keep node_delete from recursing into freed memory */
        if (node->file) {
            node->file->parent_count--;
            node->file = NULL;
        }
        node_delete(node);
    }
    free(layer);
}

/* ------------------------------------------------------------- attaching --- */

struct block_backend *block_backend_attach(struct block_layer *layer, const char *name,
                                           const char *property, const char *qdev_path,
                                           struct pv_error *error)
{
    if (!name || !*name) {
        pv_error_set(error, -EINVAL, "drive property not set");
        return NULL;
    }
    struct block_backend *backend = find_drive(layer, name);
    if (backend) {
        if (backend->qdev_path) {
            pv_error_set(error, -EBUSY, "Drive '%s' is already in use by another device", name);
            return NULL;
        }
    } else {
        struct block_node *node = find_node(layer, name);
        if (!node) {
            pv_error_set(error, -ENOENT, "Property '%s' can't find value '%s'",
                         property ? property : "drive", name);
            return NULL;
        }
        if (node->backend_count > 0) {
            pv_error_set(error, -EBUSY, "Drive '%s' is already in use by another device", name);
            return NULL;
        }
        backend = backend_new(layer, node);
        if (!backend) {
            pv_error_set(error, -ENOMEM, "out of memory");
            return NULL;
        }
    }
    backend->qdev_path = strdup(qdev_path ? qdev_path : "");
    if (!backend->qdev_path) {
        block_backend_release(backend);
        pv_error_set(error, -ENOMEM, "out of memory");
        return NULL;
    }
    return backend;
}

void block_backend_release(struct block_backend *backend)
{
    if (!backend)
        return;
    struct block_layer *layer = backend->layer;
    free(backend->qdev_path);
    backend->qdev_path = NULL;
    if (backend->name && !backend->legacy_drive)
        return;
    /* Anonymous backends go with their device; so do legacy drives (QEMU's
     * blockdev_auto_del), nodes and all. */
    backend_remove_root(backend);
    backend_unlink(layer, backend);
    backend_free(backend);
}

bool block_backend_is_inserted(struct block_backend *backend)
{
    return backend && backend->root;
}

bool block_backend_is_read_only(struct block_backend *backend)
{
    return backend && backend->root && backend->root->read_only;
}

void block_backend_set_writeback(struct block_backend *backend, bool writeback)
{
    pthread_rwlock_wrlock(&backend->lock);
    backend->writeback = writeback;
    pthread_rwlock_unlock(&backend->lock);
}

uint64_t block_backend_length(struct block_backend *backend)
{
    pthread_rwlock_rdlock(&backend->lock);
    uint64_t length = backend->root ? block_node_length(backend->root) : 0;
    pthread_rwlock_unlock(&backend->lock);
    return length;
}

/* Block layer: blockdev-add/del, drives, attachment, I/O and queries on temp files. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "block/block.h"
#include "block/block_io.h"
#include "block/block_query.h"
#include "options/json_options.h"
#include "json_util.h"
#include "qemu_options.h"

static char directory[] = "/tmp/pv-block-XXXXXX";
static char image[256];
static struct block_layer *layer;

static void make_image(const char *path, size_t size, uint8_t fill)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    cr_assert_geq(fd, 0);
    uint8_t *buffer = malloc(size);
    memset(buffer, fill, size);
    cr_assert_eq(write(fd, buffer, size), (ssize_t)size);
    free(buffer);
    close(fd);
}

static void setup(void)
{
    cr_assert_not_null(mkdtemp(directory));
    snprintf(image, sizeof(image), "%s/disk.img", directory);
    make_image(image, 1 << 20, 0x11);
    layer = block_layer_create();
    cr_assert_not_null(layer);
}

static void teardown(void)
{
    block_layer_destroy(layer);
    unlink(image);
    char other[300];
    snprintf(other, sizeof(other), "%s/other.img", directory);
    unlink(other);
    rmdir(directory);
    strcpy(directory, "/tmp/pv-block-XXXXXX");
}

/* Parses a -blockdev/-drive style string and runs `action` on it. */
static int blockdev_add(const char *text, struct pv_error *error)
{
    struct qemu_options options;
    cr_assert_eq(qemu_options_parse(&options, text, NULL, 0, NULL), 0);
    int status = block_blockdev_add(layer, &options, error);
    qemu_options_free(&options);
    return status;
}

static int drive_add(const char *text, char **id, struct pv_error *error)
{
    struct qemu_options options;
    cr_assert_eq(qemu_options_parse(&options, text, NULL, 0, NULL), 0);
    int status = block_drive_add(layer, &options, id, error);
    qemu_options_free(&options);
    return status;
}

static char *format(const char *pattern, const char *argument)
{
    char *text = NULL;
    cr_assert_geq(asprintf(&text, pattern, argument), 0);
    return text;
}

TestSuite(block, .init = setup, .fini = teardown);

Test(block, blockdev_add_inline_file_child)
{
    struct pv_error error = {0};
    char *text = format("driver=raw,node-name=disk0,file.driver=file,file.filename=%s", image);
    cr_assert_eq(blockdev_add(text, &error), 0, "%s", error.message);
    free(text);
    cr_assert(block_node_exists(layer, "disk0"));

    /* The inline child got an automatic "#block..." name. */
    char *info = block_info_block_text(layer, NULL, true);
    cr_assert_not_null(strstr(info, "#block"), "%s", info);
    cr_assert_not_null(strstr(info, "disk0: "), "%s", info);
    free(info);

    cr_assert_eq(block_blockdev_del(layer, "disk0", &error), 0, "%s", error.message);
    cr_assert_not(block_node_exists(layer, "disk0"));
    info = block_info_block_text(layer, NULL, true);
    cr_assert_str_eq(info, "", "the inline child went with its parent");
    free(info);
}

Test(block, blockdev_add_errors_use_qemu_messages)
{
    struct pv_error error = {0};
    char *text = format("driver=file,filename=%s", image);
    cr_assert_eq(blockdev_add(text, &error), -EINVAL);
    cr_assert_str_eq(error.message, "'node-name' must be specified for the root node");
    free(text);

    cr_assert_lt(blockdev_add("driver=file,node-name=f0,filename=/nonexistent/x.img", &error), 0);
    cr_assert_str_eq(error.message,
                     "Could not open '/nonexistent/x.img': No such file or directory");

    text = format("driver=file,node-name=f0,filename=%s", image);
    cr_assert_eq(blockdev_add(text, &error), 0, "%s", error.message);
    cr_assert_eq(blockdev_add(text, &error), -EEXIST);
    cr_assert_str_eq(error.message, "Duplicate nodes with node-name='f0'");
    free(text);

    cr_assert_lt(blockdev_add("driver=qcow9,node-name=q", &error), 0);
    cr_assert_str_eq(error.message, "Parameter 'driver' does not accept value 'qcow9'");
    cr_assert_lt(blockdev_add("driver=raw,node-name=r,file=nothere", &error), 0);
    cr_assert_str_eq(error.message, "Cannot find device='nothere' nor node-name='nothere'");
    cr_assert_lt(blockdev_add("driver=raw,node-name=9bad,file=f0", &error), 0);
    cr_assert_str_eq(error.message, "Invalid node-name: '9bad'");
    cr_assert_lt(blockdev_add("driver=raw,node-name=r,file=f0,bogus=1", &error), 0);
    cr_assert_not_null(strstr(error.message, "bogus"), "%s", error.message);
    cr_assert_eq(block_blockdev_del(layer, "nothere", &error), -ENOENT);
    cr_assert_str_eq(error.message, "Failed to find node with node-name='nothere'");
    /* Nothing half-made stayed behind. */
    cr_assert_not(block_node_exists(layer, "r"));
}

Test(block, referenced_nodes_and_devices_refuse_deletion)
{
    struct pv_error error = {0};
    char *text = format("driver=file,node-name=file0,filename=%s", image);
    cr_assert_eq(blockdev_add(text, &error), 0, "%s", error.message);
    free(text);
    cr_assert_eq(blockdev_add("driver=raw,node-name=disk0,file=file0", &error), 0, "%s",
                 error.message);

    cr_assert_eq(block_blockdev_del(layer, "file0", &error), -EBUSY);
    cr_assert_str_eq(error.message, "Block device file0 is in use");

    struct block_backend *backend = block_backend_attach(
        layer, "disk0", "virtio-blk-pci.drive", "/machine/peripheral/vd0/virtio-backend", &error);
    cr_assert_not_null(backend, "%s", error.message);
    cr_assert_eq(block_blockdev_del(layer, "disk0", &error), -EBUSY);
    cr_assert_str_eq(error.message, "Node disk0 is in use");
    cr_assert_null(block_backend_attach(layer, "disk0", "virtio-blk-pci.drive", "/x", &error));
    cr_assert_str_eq(error.message, "Drive 'disk0' is already in use by another device");
    cr_assert_null(block_backend_attach(layer, "none", "virtio-blk-pci.drive", "/x", &error));
    cr_assert_str_eq(error.message, "Property 'virtio-blk-pci.drive' can't find value 'none'");

    block_backend_release(backend); /* device unplugged: the node stays */
    cr_assert(block_node_exists(layer, "disk0"));
    cr_assert_eq(block_blockdev_del(layer, "disk0", &error), 0, "%s", error.message);
    cr_assert_eq(block_blockdev_del(layer, "file0", &error), 0, "%s", error.message);
}

Test(block, drive_add_builds_nodes_and_info_block_matches_qemu)
{
    struct pv_error error = {0};
    char *id = NULL;
    char *text = format("file=%s,format=raw,if=none,id=drive0", image);
    cr_assert_eq(drive_add(text, &id, &error), 0, "%s", error.message);
    cr_assert_str_eq(id, "drive0");
    free(id);
    cr_assert_eq(drive_add(text, NULL, &error), -EEXIST);
    cr_assert_str_eq(error.message, "Duplicate ID 'drive0' for drive");
    free(text);

    struct block_backend *backend = block_backend_attach(
        layer, "drive0", "virtio-blk-pci.drive", "/machine/peripheral/vd1/virtio-backend", &error);
    cr_assert_not_null(backend, "%s", error.message);

    char *info = block_info_block_text(layer, NULL, false);
    char *expected = NULL;
    cr_assert_geq(asprintf(&expected,
                           "drive0 (%%s): %s (raw)\n"
                           "    Attached to:      /machine/peripheral/vd1/virtio-backend\n"
                           "    Cache mode:       writeback\n",
                           image),
                  0);
    char node_name[64] = {0};
    cr_assert_eq(sscanf(info, "drive0 (%63[^)])", node_name), 1, "%s", info);
    cr_assert_eq(strncmp(node_name, "#block", 6), 0, "%s", node_name);
    char *filled = NULL;
    cr_assert_geq(asprintf(&filled, expected, node_name), 0);
    cr_assert_str_eq(info, filled);
    free(info);
    free(filled);
    free(expected);

    /* A read-only, cache=none drive without a device. */
    text = format("file=%s,if=none,id=drive1,readonly=on,cache=none,node-name=ro1", image);
    cr_assert_eq(drive_add(text, NULL, &error), 0, "%s", error.message);
    free(text);
    info = block_info_block_text(layer, "drive1", false);
    expected = format("drive1 (ro1): %s (raw, read-only)\n"
                      "    Cache mode:       writeback, direct\n",
                      image);
    cr_assert_str_eq(info, expected);
    free(info);
    free(expected);

    cr_assert_eq(block_drive_del(layer, "drive1", &error), 0, "%s", error.message);
    cr_assert_not(block_drive_exists(layer, "drive1"));
    cr_assert_not(block_node_exists(layer, "ro1"));
    cr_assert_eq(block_drive_del(layer, "drive1", &error), -ENOENT);
    cr_assert_str_eq(error.message, "Device 'drive1' not found");
    block_backend_release(backend); /* legacy drives go with their device */
    cr_assert_not(block_drive_exists(layer, "drive0"));
}

Test(block, drive_del_detaches_the_backend_and_io_fails)
{
    struct pv_error error = {0};
    char *text = format("file=%s,if=none,id=drive0", image);
    cr_assert_eq(drive_add(text, NULL, &error), 0, "%s", error.message);
    free(text);
    struct block_backend *backend = block_backend_attach(
        layer, "drive0", "virtio-blk-pci.drive", "/machine/peripheral/vd1/virtio-backend", &error);
    cr_assert_not_null(backend);
    uint8_t buffer[512];
    struct iovec iov = {buffer, sizeof(buffer)};
    cr_assert_eq(block_backend_preadv(backend, &iov, 1, 0), 512);
    cr_assert_eq(buffer[100], 0x11);

    cr_assert_eq(block_drive_del(layer, "drive0", &error), 0, "%s", error.message);
    cr_assert_not(block_backend_is_inserted(backend));
    cr_assert_eq(block_backend_preadv(backend, &iov, 1, 0), -ENOMEDIUM);
    memset(buffer, 0x99, sizeof(buffer));
    cr_assert_eq(block_backend_pwritev(backend, &iov, 1, 0), -ENOMEDIUM);
    cr_assert_eq(block_backend_flush(backend), -ENOMEDIUM);
    cr_assert_eq(block_backend_length(backend), 0);
    /* The device is still there, empty, as in QEMU. */
    char *info = block_info_block_text(layer, NULL, false);
    cr_assert_str_eq(info, "/machine/peripheral/vd1/virtio-backend: [not inserted]\n"
                           "    Attached to:      /machine/peripheral/vd1/virtio-backend\n");
    free(info);
    block_backend_release(backend);

    /* The file was not touched by the failed write. */
    int fd = open(image, O_RDONLY);
    cr_assert_eq(pread(fd, buffer, 512, 0), 512);
    close(fd);
    cr_assert_eq(buffer[0], 0x11);

    cr_assert_eq(
        blockdev_add("driver=raw,node-name=n1,file.driver=file,file.filename=/dev/null", &error), 0,
        "%s", error.message);
    cr_assert_eq(block_drive_del(layer, "n1", &error), 0, "drive_del on a node name");
    cr_assert_not(block_node_exists(layer, "n1"));
}

Test(block, drive_del_refuses_blockdev_backends)
{
    struct pv_error error = {0};
    char *text = format("driver=raw,node-name=disk0,file.driver=file,file.filename=%s", image);
    cr_assert_eq(blockdev_add(text, &error), 0);
    free(text);
    cr_assert_eq(block_drive_del(layer, "nosuch", &error), -ENOENT);
    cr_assert_str_eq(error.message, "Device 'nosuch' not found");
    text = format("file=%s,if=ide,id=d", image);
    cr_assert_lt(drive_add(text, NULL, &error), 0);
    free(text);
    text = format("file=%s,if=none,id=d,aio=native", image);
    cr_assert_lt(drive_add(text, NULL, &error), 0);
    cr_assert_str_eq(error.message, "aio=native was specified, but it requires cache.direct=on, "
                                    "which was not specified.");
    free(text);
    char *id = NULL;
    text = format("file=%s,if=none", image);
    cr_assert_eq(drive_add(text, &id, &error), 0, "%s", error.message);
    cr_assert_str_eq(id, "none0");
    free(id);
    free(text);
}

Test(block, io_through_raw_offset_and_size)
{
    struct pv_error error = {0};
    char *text = format(
        "driver=raw,node-name=part,offset=4096,size=8192,file.driver=file,file.filename=%s", image);
    cr_assert_eq(blockdev_add(text, &error), 0, "%s", error.message);
    free(text);
    struct block_backend *backend = block_backend_attach(layer, "part", NULL, "/d", &error);
    cr_assert_not_null(backend);
    cr_assert_eq(block_backend_length(backend), 8192);

    uint8_t pattern[1024];
    memset(pattern, 0xab, sizeof(pattern));
    struct iovec iov[2] = {{pattern, 512}, {pattern + 512, 512}};
    cr_assert_eq(block_backend_pwritev(backend, iov, 2, 1024), 1024);
    cr_assert_eq(block_backend_pwritev(backend, iov, 2, 8192 - 512), -EINVAL, "past the end");
    cr_assert_eq(block_backend_flush(backend), 0);

    int fd = open(image, O_RDONLY);
    uint8_t check[1024];
    cr_assert_eq(pread(fd, check, sizeof(check), 4096 + 1024), 1024);
    cr_assert_eq(memcmp(check, pattern, sizeof(check)), 0);
    cr_assert_eq(pread(fd, check, 1, 4096 + 1023), 1);
    cr_assert_eq(check[0], 0x11);

    cr_assert_eq(block_backend_write_zeroes(backend, 1024, 512, false), 0);
    cr_assert_eq(pread(fd, check, 1024, 4096 + 1024), 1024);
    cr_assert_eq(check[0], 0);
    cr_assert_eq(check[511], 0);
    cr_assert_eq(check[512], 0xab);
    cr_assert_eq(block_backend_discard(backend, 0, 4096), 0);
    close(fd);
    block_backend_release(backend);

    text = format("driver=raw,node-name=big,size=4194304,file.driver=file,file.filename=%s", image);
    cr_assert_lt(blockdev_add(text, &error), 0);
    cr_assert_str_eq(error.message,
                     "The sum of offset (0) and size (4194304) has to be smaller or equal to the "
                     " actual size of the containing file (1048576)");
    free(text);
}

Test(block, read_only_nodes_refuse_writes)
{
    struct pv_error error = {0};
    char *text =
        format("driver=raw,node-name=ro,read-only=on,file.driver=file,file.filename=%s", image);
    cr_assert_eq(blockdev_add(text, &error), 0, "%s", error.message);
    free(text);
    struct block_backend *backend = block_backend_attach(layer, "ro", NULL, "/d", &error);
    cr_assert(block_backend_is_read_only(backend));
    uint8_t buffer[512] = {0};
    struct iovec iov = {buffer, sizeof(buffer)};
    cr_assert_eq(block_backend_pwritev(backend, &iov, 1, 0), -EACCES);
    cr_assert_eq(block_backend_write_zeroes(backend, 0, 512, true), -EACCES);
    cr_assert_eq(block_backend_preadv(backend, &iov, 1, 0), 512);
    block_backend_release(backend);
}

Test(block, direct_io_with_unaligned_buffers_bounces)
{
    struct pv_error error = {0};
    char *text = format("driver=raw,node-name=d,cache.direct=on,file.driver=file,"
                        "file.filename=%s,file.aio=native",
                        image);
    int status = blockdev_add(text, &error);
    free(text);
    if (status == -EINVAL && strstr(error.message, "Invalid argument"))
        cr_skip_test("O_DIRECT not supported on %s", directory);
    cr_assert_eq(status, 0, "%s", error.message);
    struct block_backend *backend = block_backend_attach(layer, "d", NULL, "/d", &error);
    uint8_t *raw = malloc(8192);
    uint8_t *unaligned = raw + 3;
    memset(unaligned, 0x5a, 1536);
    struct iovec iov = {unaligned, 1536};
    cr_assert_eq(block_backend_pwritev(backend, &iov, 1, 512), 1536);
    memset(unaligned, 0, 1536);
    cr_assert_eq(block_backend_preadv(backend, &iov, 1, 512), 1536);
    cr_assert_eq(unaligned[0], 0x5a);
    cr_assert_eq(unaligned[1535], 0x5a);
    struct iovec around = {unaligned, 2048};
    cr_assert_eq(block_backend_preadv(backend, &around, 1, 0), 2048);
    cr_assert_eq(unaligned[511], 0x11, "the bytes before the write are intact");
    cr_assert_eq(unaligned[512], 0x5a);
    free(raw);
    block_backend_release(backend);
}

Test(block, options_from_json_flatten_nested_objects)
{
    char json[600];
    snprintf(json, sizeof(json),
             "{\"driver\": \"raw\", \"node-name\": \"j0\", \"read-only\": false,"
             " \"file\": {\"driver\": \"file\", \"filename\": \"%s\","
             " \"cache\": {\"direct\": false}}, \"offset\": 512}",
             image);
    char message[128];
    yajl_val tree = yajl_tree_parse(json, message, sizeof(message));
    cr_assert_not_null(tree, "%s", message);
    struct qemu_options options;
    struct pv_error error = {0};
    cr_assert_eq(qemu_options_from_json(tree, &options, &error), 0, "%s", error.message);
    yajl_tree_free(tree);
    cr_assert_str_eq(qemu_options_get(&options, "file.cache.direct"), "off");
    cr_assert_str_eq(qemu_options_get(&options, "offset"), "512");
    for (size_t i = 0; i < options.count; i++)
        options.items[i].used = false;
    cr_assert_eq(block_blockdev_add(layer, &options, &error), 0, "%s", error.message);
    qemu_options_free(&options);
    struct block_backend *backend = block_backend_attach(layer, "j0", NULL, "/d", NULL);
    cr_assert_eq(block_backend_length(backend), (1 << 20) - 512);
    block_backend_release(backend);
}

Test(block, query_block_and_named_nodes_json)
{
    struct pv_error error = {0};
    char *text = format("file=%s,if=none,id=drive0,node-name=top0", image);
    cr_assert_eq(drive_add(text, NULL, &error), 0, "%s", error.message);
    free(text);
    struct block_backend *backend = block_backend_attach(
        layer, "drive0", "virtio-blk-pci.drive", "/machine/peripheral/vd1/virtio-backend", &error);
    cr_assert_not_null(backend);

    struct json_writer writer;
    json_writer_init(&writer, false);
    block_query_block(layer, &writer);
    char message[128];
    yajl_val tree = yajl_tree_parse(json_writer_text(&writer), message, sizeof(message));
    cr_assert_not_null(tree, "%s: %s", message, json_writer_text(&writer));
    cr_assert(YAJL_IS_ARRAY(tree));
    cr_assert_eq(tree->u.array.len, 1);
    yajl_val info = tree->u.array.values[0];
    cr_assert_str_eq(json_get_string(info, "device"), "drive0");
    cr_assert_str_eq(json_get_string(info, "qdev"), "/machine/peripheral/vd1/virtio-backend");
    cr_assert_str_eq(json_get_string(info, "io-status"), "ok");
    yajl_val inserted = json_get_object(info, "inserted");
    cr_assert_str_eq(json_get_string(inserted, "node-name"), "top0");
    cr_assert_str_eq(json_get_string(inserted, "file"), image);
    cr_assert_str_eq(json_get_string(inserted, "drv"), "raw");
    uint64_t size = 0;
    cr_assert(json_get_uint64(json_get_object(inserted, "image"), "virtual-size", &size));
    cr_assert_eq(size, 1 << 20);
    yajl_tree_free(tree);

    json_writer_reset(&writer);
    block_query_named_block_nodes(layer, &writer);
    tree = yajl_tree_parse(json_writer_text(&writer), message, sizeof(message));
    cr_assert_not_null(tree);
    cr_assert_eq(tree->u.array.len, 2, "the file node and the raw node");
    cr_assert_str_eq(json_get_string(tree->u.array.values[0], "drv"), "file");
    cr_assert_str_eq(json_get_string(tree->u.array.values[1], "node-name"), "top0");
    yajl_tree_free(tree);
    json_writer_free(&writer);
    block_backend_release(backend);
}

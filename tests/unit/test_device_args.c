/* One description of each device kind (daemon/device_args.c): a disk gets the same QEMU
 * arguments cold-plugged (the -blockdev/-device objects of vmm_argv's command line) and
 * hot-plugged (the blockdev-add/device_add arguments the hotplug orchestrator sends), for
 * every supported <driver> attribute value; and the libvirt mapping of each value. */
#include <criterion/criterion.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "device_args.h"
#include "fake_qmp_peer.h"
#include "hotplug.h"
#include "json_util.h"
#include "qmp_connection.h"
#include "store.h"
#include "vmm_argv.h"

#define UUID "11111111-2222-4333-8444-555555555555"

static const char *const caches[] = {NULL,           "none",       "writeback",
                                     "writethrough", "directsync", "unsafe"};
static const char *const ios[] = {NULL, "threads", "native", "io_uring"};
static const char *const error_policies[] = {NULL, "stop", "report", "ignore", "enospace"};
static const char *const rerror_policies[] = {NULL, "stop", "report", "ignore"};
#define COUNT(array) (sizeof(array) / sizeof((array)[0]))
/* The least common multiple of the lists' lengths (and of 2 for the booleans): every value
 * of every attribute, in many combinations. */
#define DISK_VARIANTS 60

/* The i-th disk of the matrix; `target` and `alias` are the caller's buffers. */
static struct domain_disk variant(unsigned i, char target[16], char alias[32])
{
    struct domain_disk disk = {0};
    snprintf(target, 16, "vd%c%c", 'a' + i / 26, 'a' + i % 26);
    snprintf(alias, 32, "virtio-disk%u", i);
    disk.type = (i / 3) % 2 ? DOMAIN_DISK_BLOCK : DOMAIN_DISK_FILE;
    disk.source = (char *)((i / 3) % 2 ? "/dev/sdz" : "/var/lib/images/data,1.img");
    disk.driver_name = (char *)"qemu";
    disk.driver_type = (char *)"raw";
    disk.cache = (char *)caches[i % COUNT(caches)];
    disk.io = (char *)ios[i % COUNT(ios)];
    disk.error_policy = (char *)error_policies[i % COUNT(error_policies)];
    disk.rerror_policy = (char *)rerror_policies[(i / 2) % COUNT(rerror_policies)];
    disk.readonly = i % 2;
    disk.serial = (i / 2) % 2 ? (char *)"SER,1 x" : NULL;
    disk.target_dev = target;
    disk.alias = alias;
    disk.address.type = DOMAIN_ADDRESS_PCI;
    disk.address.slot = 3 + i % 29;
    disk.address.function = 0;
    return disk;
}

/* --- JSON comparison ----------------------------------------------------------------- */

static bool json_equal(yajl_val a, yajl_val b)
{
    if (a == NULL || b == NULL || a->type != b->type)
        return a == b;
    if (YAJL_IS_STRING(a))
        return strcmp(a->u.string, b->u.string) == 0;
    if (YAJL_IS_NUMBER(a))
        return strcmp(a->u.number.r, b->u.number.r) == 0;
    if (YAJL_IS_OBJECT(a)) {
        if (YAJL_GET_OBJECT(a)->len != YAJL_GET_OBJECT(b)->len)
            return false;
        for (size_t i = 0; i < YAJL_GET_OBJECT(a)->len; i++)
            if (!json_equal(YAJL_GET_OBJECT(a)->values[i],
                            json_object_get(b, YAJL_GET_OBJECT(a)->keys[i])))
                return false;
        return true;
    }
    if (YAJL_IS_ARRAY(a)) {
        if (YAJL_GET_ARRAY(a)->len != YAJL_GET_ARRAY(b)->len)
            return false;
        for (size_t i = 0; i < YAJL_GET_ARRAY(a)->len; i++)
            if (!json_equal(YAJL_GET_ARRAY(a)->values[i], YAJL_GET_ARRAY(b)->values[i]))
                return false;
        return true;
    }
    return true; /* true, false, null: same type */
}

static yajl_val parse(const char *text, const char *what)
{
    cr_assert_not_null(text, "%s: nothing", what);
    struct pv_error error = {0};
    yajl_val value = json_parse(text, strlen(text), 1 << 20, 64, &error);
    cr_assert_not_null(value, "%s is not JSON (%s): %s", what, error.message, text);
    cr_assert(YAJL_IS_OBJECT(value), "%s is not an object: %s", what, text);
    return value;
}

static void expect_same(const char *cold, const char *hot, const char *what, unsigned i)
{
    yajl_val cold_value = parse(cold, what), hot_value = parse(hot, what);
    cr_expect(json_equal(cold_value, hot_value), "disk %u, %s differs:\n  cold %s\n  hot  %s", i,
              what, cold, hot);
    yajl_tree_free(cold_value);
    yajl_tree_free(hot_value);
}

/* --- cold: the command line ------------------------------------------------------------ */

struct cold_objects {
    char *storage, *format, *device; /* point into argv */
};

/* The disk's -blockdev (storage, format) and -device arguments in `argv`, found by their
 * node-name / drive, parsed back from the command line. */
static struct cold_objects cold_objects(char **argv)
{
    struct cold_objects objects = {0};
    int blockdevs = 0;
    for (int i = 0; argv[i] && argv[i + 1]; i++) {
        if (strcmp(argv[i], "-blockdev") == 0)
            *(blockdevs++ == 0 ? &objects.storage : &objects.format) = argv[i + 1];
        else if (strcmp(argv[i], "-device") == 0)
            objects.device = argv[i + 1];
    }
    cr_assert_eq(blockdevs, 2, "one disk: two -blockdev");
    cr_assert_not_null(objects.device, "one disk: one -device");
    return objects;
}

static char **cold_argv(const struct domain_disk *disk)
{
    struct domain_definition definition = {0};
    definition.name = (char *)"demo";
    strcpy(definition.uuid, UUID);
    definition.memory_kib = definition.current_memory_kib = 131072;
    definition.vcpus_max = definition.vcpus_current = 1;
    definition.kernel = (char *)"/boot/vmlinuz";
    definition.disks = (struct domain_disk *)disk;
    definition.disk_count = 1;
    struct vmm_argv_paths paths = {.emulator = "/usr/bin/qemu-system-x86_64",
                                   .qmp_socket = "/run/demo/qmp.sock",
                                   .serial_socket = "/run/demo/serial.sock"};
    struct pv_error error = {0};
    char **argv = vmm_argv_build(&definition, &paths, &error);
    cr_assert_not_null(argv, "%s", error.message);
    return argv;
}

/* --- hot: the orchestrator against the fake QMP peer ---------------------------------- */

static struct event_base *base;
static struct store *store;
static struct hotplug_manager *manager;
static struct fake_qmp_peer *peer;
static struct qmp_connection *qmp;
static char directory[64], peer_directory[96];
static int ready;

static void on_ready(void *opaque, int status, const char *message)
{
    (void)opaque;
    cr_assert_eq(status, 0, "%s", message);
    ready = 1;
}

static void on_event(void *opaque, const char *name, const char *data)
{
    (void)opaque;
    hotplug_handle_event(manager, UUID, name, data);
}

struct outcome {
    int calls;
    struct hotplug_result result;
};

static void on_done(void *opaque, const struct hotplug_result *result)
{
    struct outcome *outcome = opaque;
    outcome->calls++;
    outcome->result = *result;
}

static void setup(void)
{
    snprintf(directory, sizeof(directory), "/tmp/device-args-XXXXXX");
    cr_assert_not_null(mkdtemp(directory));
    base = event_base_new();
    struct pv_error error = {0};
    store = store_open(directory, &error);
    cr_assert_not_null(store, "%s", error.message);
    struct store_domain domain = {.name = (char *)"demo", .state = STORE_DOMAIN_RUNNING};
    snprintf(domain.uuid, sizeof(domain.uuid), "%s", UUID);
    cr_assert_eq(store_domain_put(store, &domain, &error), 0, "%s", error.message);
    struct hotplug_config config = {.qmp_timeout_ms = 2000, .detach_timeout_ms = 2000};
    manager = hotplug_manager_create(base, store, &config, &error);
    cr_assert_not_null(manager, "%s", error.message);
    snprintf(peer_directory, sizeof(peer_directory), "%s/peer", directory);
    cr_assert_eq(mkdir(peer_directory, 0700), 0);
    peer = fake_qmp_peer_create(base, peer_directory, true);
    cr_assert_not_null(peer);
    ready = 0;
    struct qmp_connection_callbacks callbacks = {on_ready, on_event, NULL, NULL};
    qmp = qmp_connection_open(base, fake_qmp_peer_socket_path(peer), 2000, &callbacks, NULL);
    cr_assert_not_null(qmp);
    cr_assert(fake_qmp_run_until(base, &ready, 1, 3000));
    hotplug_set_qmp(manager, UUID, qmp);
}

static void teardown(void)
{
    hotplug_manager_destroy(manager);
    qmp_connection_close(qmp);
    fake_qmp_peer_destroy(peer);
    store_close(store);
    event_base_free(base);
    char command[128];
    snprintf(command, sizeof(command), "rm -rf %s", directory);
    cr_assert_eq(system(command), 0);
}

/* Attaches the disk; returns the index of its first command (blockdev-add storage). */
static size_t hot_attach(const struct domain_disk *disk)
{
    size_t first = fake_qmp_peer_command_count(peer);
    struct domain_device device = {.kind = DOMAIN_DEVICE_DISK, .disk = *disk};
    struct outcome outcome = {0};
    struct pv_error error = {0};
    cr_assert_eq(hotplug_attach(manager, UUID, qmp, &device, 0, on_done, &outcome, &error), 0, "%s",
                 error.message);
    cr_assert(fake_qmp_run_until(base, &outcome.calls, 1, 5000));
    cr_assert_eq(outcome.result.status, 0, "%s: %s %s", disk->target_dev, outcome.result.code,
                 outcome.result.message);
    cr_assert_eq(fake_qmp_peer_command_count(peer), first + 3);
    cr_assert_str_eq(fake_qmp_peer_command(peer, first), "blockdev-add");
    cr_assert_str_eq(fake_qmp_peer_command(peer, first + 1), "blockdev-add");
    cr_assert_str_eq(fake_qmp_peer_command(peer, first + 2), "device_add");
    return first;
}

/* Detaches it again (the fake peer holds 64 objects). */
static void hot_detach(const struct domain_disk *disk)
{
    struct domain_device device = {.kind = DOMAIN_DEVICE_DISK, .disk = *disk};
    struct outcome outcome = {0};
    struct pv_error error = {0};
    cr_assert_eq(hotplug_detach(manager, UUID, qmp, &device, 0, -1, on_done, &outcome, &error), 0,
                 "%s", error.message);
    cr_assert(fake_qmp_run_until(base, &outcome.calls, 1, 5000));
    cr_assert_eq(outcome.result.status, 0, "%s", outcome.result.message);
}

TestSuite(device_args, .init = setup, .fini = teardown, .timeout = 60);

Test(device_args, every_driver_attribute_gives_the_same_arguments_cold_and_hot)
{
    for (unsigned i = 0; i < DISK_VARIANTS; i++) {
        char target[16], alias[32];
        struct domain_disk disk = variant(i, target, alias);
        char **argv = cold_argv(&disk);
        struct cold_objects cold = cold_objects(argv);
        size_t first = hot_attach(&disk);
        expect_same(cold.storage, fake_qmp_peer_arguments(peer, first), "storage node", i);
        expect_same(cold.format, fake_qmp_peer_arguments(peer, first + 1), "format node", i);
        expect_same(cold.device, fake_qmp_peer_arguments(peer, first + 2), "device", i);
        hot_detach(&disk);
        vmm_argv_free(argv);
    }
}

/* --- the mapping itself (libvirt's) ------------------------------------------------------ */

static char *build(int which, const struct domain_disk *disk)
{
    struct json_writer writer;
    json_writer_init(&writer, false);
    json_writer_begin_object(&writer);
    int rc = which == 0   ? device_args_disk_storage(&writer, disk, "d-storage")
             : which == 1 ? device_args_disk_format(&writer, disk, "d-format", "d-storage")
                          : device_args_disk_device(&writer, disk, "d", "d-format", 4, 0);
    json_writer_end_object(&writer);
    cr_assert_eq(rc, 0);
    return json_writer_steal(&writer);
}

static struct domain_disk plain_disk(void)
{
    struct domain_disk disk = {0};
    disk.source = (char *)"/images/d.img";
    disk.target_dev = (char *)"vdb";
    disk.alias = (char *)"d";
    return disk;
}

Test(device_args, cache_modes_map_like_libvirt)
{
    static const struct {
        const char *cache;
        const char *cache_object; /* on both nodes, NULL: no "cache" member */
        const char *write_cache;  /* NULL: no "write-cache" */
    } modes[] = {
        {NULL, NULL, NULL},
        {"writeback", "{\"direct\": false, \"no-flush\": false}", "on"},
        {"none", "{\"direct\": true, \"no-flush\": false}", "on"},
        {"writethrough", "{\"direct\": false, \"no-flush\": false}", "off"},
        {"directsync", "{\"direct\": true, \"no-flush\": false}", "off"},
        {"unsafe", "{\"direct\": false, \"no-flush\": true}", "on"},
    };
    for (size_t i = 0; i < COUNT(modes); i++) {
        struct domain_disk disk = plain_disk();
        disk.cache = (char *)modes[i].cache;
        for (int which = 0; which < 2; which++) {
            char *text = build(which, &disk);
            const char *cache = strstr(text, "\"cache\": ");
            if (modes[i].cache_object) {
                cr_assert_not_null(cache, "%s: %s", modes[i].cache, text);
                cr_assert_eq(
                    strncmp(cache + 9, modes[i].cache_object, strlen(modes[i].cache_object)), 0,
                    "%s: %s", modes[i].cache, text);
            } else {
                cr_assert_null(cache, "%s", text);
            }
            free(text);
        }
        char *device = build(2, &disk);
        yajl_val value = parse(device, "device");
        const char *write_cache = json_get_string(value, "write-cache");
        if (modes[i].write_cache)
            cr_assert_str_eq(write_cache ? write_cache : "(none)", modes[i].write_cache, "%s: %s",
                             modes[i].cache, device);
        else
            cr_assert_null(write_cache, "%s", device);
        yajl_tree_free(value);
        free(device);
    }
}

Test(device_args, error_policies_map_like_libvirt)
{
    static const struct {
        const char *error_policy, *rerror_policy, *werror, *rerror;
    } policies[] = {
        {NULL, NULL, NULL, NULL},
        {"stop", NULL, "stop", "stop"},
        {"report", NULL, "report", "report"},
        {"ignore", NULL, "ignore", "ignore"},
        {"enospace", NULL, "enospc", NULL},
        {"enospace", "stop", "enospc", "stop"},
        {NULL, "ignore", NULL, "ignore"},
        {"stop", "report", "stop", "report"},
    };
    for (size_t i = 0; i < COUNT(policies); i++) {
        struct domain_disk disk = plain_disk();
        disk.error_policy = (char *)policies[i].error_policy;
        disk.rerror_policy = (char *)policies[i].rerror_policy;
        char *device = build(2, &disk);
        yajl_val value = parse(device, "device");
        const char *werror = json_get_string(value, "werror");
        const char *rerror = json_get_string(value, "rerror");
        cr_assert_str_eq(werror ? werror : "(none)",
                         policies[i].werror ? policies[i].werror : "(none)", "%s", device);
        cr_assert_str_eq(rerror ? rerror : "(none)",
                         policies[i].rerror ? policies[i].rerror : "(none)", "%s", device);
        yajl_tree_free(value);
        free(device);
    }
}

Test(device_args, io_readonly_serial_and_address)
{
    struct domain_disk disk = plain_disk();
    disk.io = (char *)"io_uring";
    disk.readonly = true;
    disk.serial = (char *)"A,B";
    char *storage = build(0, &disk), *format = build(1, &disk), *device = build(2, &disk);
    cr_assert_str_eq(storage, "{\"driver\": \"file\", \"filename\": \"/images/d.img\", "
                              "\"node-name\": \"d-storage\", \"aio\": \"io_uring\", "
                              "\"auto-read-only\": true, \"discard\": \"unmap\"}");
    cr_assert_str_eq(format, "{\"node-name\": \"d-format\", \"read-only\": true, \"driver\": "
                             "\"raw\", \"file\": \"d-storage\"}");
    cr_assert_str_eq(device, "{\"driver\": \"virtio-blk-pci\", \"bus\": \"pci.0\", \"addr\": "
                             "\"0x4\", \"drive\": \"d-format\", \"id\": \"d\", \"serial\": "
                             "\"A,B\"}");
    free(storage);
    free(format);
    free(device);
}

Test(device_args, values_it_cannot_express_are_refused_by_name)
{
    static const struct {
        const char *attribute, *value, *message;
    } bad[] = {
        {"cache", "bogus", "unsupported: disk 'vdb': <driver cache='bogus'>"},
        {"io", "posix", "unsupported: disk 'vdb': <driver io='posix'>"},
        {"error_policy", "retry", "unsupported: disk 'vdb': <driver error_policy='retry'>"},
        {"rerror_policy", "enospace", "unsupported: disk 'vdb': <driver rerror_policy='enospace'>"},
    };
    for (size_t i = 0; i < COUNT(bad); i++) {
        struct domain_disk disk = plain_disk();
        char **field = !strcmp(bad[i].attribute, "cache")          ? &disk.cache
                       : !strcmp(bad[i].attribute, "io")           ? &disk.io
                       : !strcmp(bad[i].attribute, "error_policy") ? &disk.error_policy
                                                                   : &disk.rerror_policy;
        *field = (char *)bad[i].value;
        struct pv_error error = {0};
        cr_assert_eq(device_args_disk_check(&disk, &error), -EINVAL);
        cr_assert_str_eq(error.message, bad[i].message);
        struct json_writer writer;
        json_writer_init(&writer, false);
        json_writer_begin_object(&writer);
        cr_assert_eq(device_args_disk_storage(&writer, &disk, "d-storage"), -EINVAL);
        cr_assert_eq(device_args_disk_device(&writer, &disk, "d", "d-format", 4, 0), -EINVAL);
        json_writer_free(&writer);
        /* and the command line is refused with the same message */
        disk.alias = (char *)"virtio-disk1";
        disk.address.type = DOMAIN_ADDRESS_PCI;
        disk.address.slot = 5;
        struct domain_definition definition = {0};
        definition.name = (char *)"demo";
        strcpy(definition.uuid, UUID);
        definition.memory_kib = 131072;
        definition.disks = &disk;
        definition.disk_count = 1;
        struct vmm_argv_paths paths = {
            .emulator = "/bin/vmm", .qmp_socket = "/q", .serial_socket = "/s"};
        struct pv_error argv_error = {0};
        cr_assert_null(vmm_argv_build(&definition, &paths, &argv_error));
        cr_assert_str_eq(argv_error.message, bad[i].message);
    }
}

Test(device_args, node_names_are_the_hotplug_sequence_s)
{
    /* The hotplug step table names a disk's objects alias + suffix; device_args.h's suffixes
     * are the ones restart reconciliation parses: the same strings. */
    char target[16], alias[32];
    struct domain_disk disk = variant(1, target, alias);
    size_t first = hot_attach(&disk);
    char expected[64];
    snprintf(expected, sizeof(expected), "blockdev-add %s" DEVICE_ARGS_DISK_STORAGE_SUFFIX, alias);
    cr_assert_str_eq(fake_qmp_peer_summary(peer, first), expected);
    snprintf(expected, sizeof(expected), "blockdev-add %s" DEVICE_ARGS_DISK_FORMAT_SUFFIX, alias);
    cr_assert_str_eq(fake_qmp_peer_summary(peer, first + 1), expected);
}

/* --- interfaces ---------------------------------------------------------------------------- */

static char *interface_netdev(const struct domain_interface *interface, const char *const *fds,
                              unsigned count)
{
    struct json_writer writer;
    json_writer_init(&writer, false);
    json_writer_begin_object(&writer);
    int rc = device_args_interface_netdev(&writer, interface, "hostnet0", fds, count);
    json_writer_end_object(&writer);
    if (rc < 0) {
        json_writer_free(&writer);
        return NULL;
    }
    return json_writer_steal(&writer);
}

Test(device_args, interface_netdev_and_device_cold_and_hot)
{
    struct domain_interface interface = {
        .mac = "52:54:00:12:34:56", .model = "virtio", .alias = "net0", .target_managed = true};
    interface.address.type = DOMAIN_ADDRESS_PCI;
    interface.address.slot = 5;
    /* Hot: the descriptor's getfd name; cold: its number in the VMM (vmm_argv.h). */
    const char *hot_fd[] = {"fd-net0"};
    char *hot = interface_netdev(&interface, hot_fd, 1);
    cr_assert_str_eq(
        hot, "{\"type\": \"tap\", \"id\": \"hostnet0\", \"fd\": \"fd-net0\", \"vhost\": false}");
    char *cold = vmm_argv_interface_netdev_json(&interface, VMM_ARGV_FIRST_NIC_FD);
    cr_assert_str_eq(cold,
                     "{\"type\": \"tap\", \"id\": \"hostnet0\", \"fd\": \"4\", \"vhost\": false}");
    free(hot);
    free(cold);
    char *device = vmm_argv_interface_device_json(&interface);
    cr_assert_str_eq(device,
                     "{\"driver\": \"virtio-net-pci\", \"netdev\": \"hostnet0\", \"id\": \"net0\", "
                     "\"mac\": \"52:54:00:12:34:56\", \"bus\": \"pci.0\", \"addr\": \"0x5\"}");
    free(device);

    /* queues=N: one descriptor per queue ("fds"), and libvirt's mq=on, vectors=2N+2. */
    interface.queues = 3;
    cold = vmm_argv_interface_netdev_json(&interface, 7);
    cr_assert_str_eq(
        cold, "{\"type\": \"tap\", \"id\": \"hostnet0\", \"fds\": \"7:8:9\", \"vhost\": false}");
    free(cold);
    device = vmm_argv_interface_device_json(&interface);
    cr_assert(strstr(device, "\"mq\": true, \"vectors\": 8}"), "%s", device);
    free(device);
}

Test(device_args, interface_values_it_cannot_express_are_refused)
{
    struct domain_interface interface = {
        .mac = "52:54:00:12:34:56", .model = "e1000", .alias = "net0"};
    struct pv_error error = {0};
    cr_assert_eq(device_args_interface_check(&interface, &error), -EINVAL);
    cr_assert(strstr(error.message, "unsupported") && strstr(error.message, "e1000"), "%s",
              error.message);
    cr_assert_null(vmm_argv_interface_device_json(&interface));
    interface.model = "virtio";
    interface.alias = NULL;
    cr_assert_eq(device_args_interface_check(&interface, &error), -EINVAL);
    cr_assert(strstr(error.message, "alias"), "%s", error.message);
}

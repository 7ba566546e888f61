/* Disk hotplug end to end: real KVM, the probe guest's virtio-blk and ACPI PCI
 * hotplug drivers, real image files, QMP and HMP as libvirt and users drive them. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "kvm_check.h"

#define BOOT_TIMEOUT_MS 20000
#define REPLY_TIMEOUT_MS 5000
#define GUEST_TIMEOUT_MS 10000
#define DISK_SIZE (1024 * 1024)
#define DISK_SECTORS (DISK_SIZE / 512)

static struct vmm_process vmm;
static struct qmp_client qmp;
static char disk_directory[256];

/* Every test boots plugvirt-vmm: without a usable /dev/kvm each is skipped, saying why. */
static void setup(void)
{
    char reason[256];
    if (test_kvm_check(reason, sizeof(reason)) < 0)
        cr_skip_test("%s", reason);
    snprintf(disk_directory, sizeof(disk_directory), "/tmp/plugvirt-hotplug-XXXXXX");
    cr_assert_not_null(mkdtemp(disk_directory));
}

static void teardown(void)
{
    qmp_client_close(&qmp);
    if (vmm.errors_length)
        fprintf(stderr, "plugvirt-vmm stderr:\n%s\n", vmm.errors);
    vmm_process_cleanup(&vmm);
    DIR *directory = opendir(disk_directory);
    if (directory) {
        struct dirent *entry;
        while ((entry = readdir(directory))) {
            if (entry->d_name[0] == '.')
                continue;
            char path[600];
            snprintf(path, sizeof(path), "%s/%s", disk_directory, entry->d_name);
            unlink(path);
        }
        closedir(directory);
    }
    rmdir(disk_directory);
}

TestSuite(hotplug, .init = setup, .fini = teardown, .timeout = 120);

/* --- helpers ------------------------------------------------------------------- */

/* A DISK_SIZE raw image in the test directory; sector `lba` holds `byte`s. */
static void make_disk(const char *name, char *path, size_t path_size, unsigned lba, uint8_t byte)
{
    snprintf(path, path_size, "%s/%s", disk_directory, name);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert_geq(fd, 0, "cannot create %s: %s", path, strerror(errno));
    cr_assert_eq(ftruncate(fd, DISK_SIZE), 0);
    uint8_t sector[512];
    memset(sector, byte, sizeof(sector));
    cr_assert_eq(pwrite(fd, sector, sizeof(sector), (off_t)lba * 512), (ssize_t)sizeof(sector));
    close(fd);
}

static void read_sector(const char *path, unsigned lba, uint8_t sector[512])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, sector, 512, (off_t)lba * 512), 512);
    close(fd);
}

/* The probe guest's checksum: FNV-1a, 32 bit. */
static uint32_t fnv1a_of_filled(uint8_t byte, size_t length)
{
    uint32_t hash = 0x811c9dc5u;
    for (size_t i = 0; i < length; i++) {
        hash ^= byte;
        hash *= 0x01000193u;
    }
    return hash;
}

static void start(const char *const *extra)
{
    cr_assert_eq(vmm_process_start(&vmm, extra), 0);
}

static void expect_line(const char *prefix, const char *expected, int timeout_ms)
{
    char line[512];
    int rc = vmm_process_wait_line(&vmm, prefix, timeout_ms, line, sizeof(line));
    cr_assert_eq(rc, 0, "no '%s' line; console:\n%s\nstderr: %s", prefix, vmm.console, vmm.errors);
    if (expected)
        cr_assert_str_eq(line, expected);
}

static void wait_ready_and_connect(void)
{
    expect_line("PROBE READY", NULL, BOOT_TIMEOUT_MS);
    cr_assert_eq(qmp_client_connect(&qmp, vmm.qmp_path, true, NULL, 0, REPLY_TIMEOUT_MS), 0);
}

static void boot(const char *const *extra)
{
    start(extra);
    wait_ready_and_connect();
}

static void execute(const char *command, char *reply, size_t size)
{
    int rc = qmp_client_execute(&qmp, command, reply, size, REPLY_TIMEOUT_MS);
    cr_assert_eq(rc, 0, "no reply to %s (%d)", command, rc);
}

static void execute_ok(const char *command)
{
    char reply[65536];
    execute(command, reply, sizeof(reply));
    cr_assert(strstr(reply, "\"return\""), "%s failed: %s", command, reply);
}

/* Runs a command that must fail; the reply must contain `expected`. */
static void execute_error(const char *command, const char *expected)
{
    char reply[8192];
    execute(command, reply, sizeof(reply));
    cr_assert(strstr(reply, "\"error\""), "%s did not fail: %s", command, reply);
    cr_assert(strstr(reply, expected), "%s: expected '%s' in %s", command, expected, reply);
}

/* human-monitor-command; `output` receives the JSON string's raw text. */
static void hmp(const char *command_line, char *output, size_t size)
{
    char command[2048];
    snprintf(command, sizeof(command),
             "{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": \"%s\"}}",
             command_line);
    char reply[65536];
    execute(command, reply, sizeof(reply));
    const char *start_text = strstr(reply, "\"return\": \"");
    cr_assert_not_null(start_text, "%s failed: %s", command_line, reply);
    start_text += strlen("\"return\": \"");
    const char *end = strrchr(start_text, '"');
    cr_assert_not_null(end);
    snprintf(output, size, "%.*s", (int)(end - start_text), start_text);
}

static void guest(const char *command)
{
    char text[256];
    snprintf(text, sizeof(text), "%s\n", command);
    cr_assert_eq(vmm_process_send(&vmm, text), 0);
}

static void expect_read(const char *bdf, unsigned lba, uint8_t byte)
{
    char command[128], expected[256];
    snprintf(command, sizeof(command), "blk-read %s %u 1", bdf, lba);
    guest(command);
    snprintf(expected, sizeof(expected), "PROBE BLK READ %s lba=%u count=1 sum=0x%08x", bdf, lba,
             fnv1a_of_filled(byte, 512));
    expect_line("PROBE BLK", expected, GUEST_TIMEOUT_MS);
}

static void expect_write(const char *bdf, unsigned lba, uint8_t byte)
{
    char command[128], expected[256];
    snprintf(command, sizeof(command), "blk-write %s %u %u", bdf, lba, byte);
    guest(command);
    snprintf(expected, sizeof(expected), "PROBE BLK WRITE %s lba=%u ok", bdf, lba);
    expect_line("PROBE BLK", expected, GUEST_TIMEOUT_MS);
}

static void expect_add(const char *bdf, const char *serial)
{
    char prefix[64], expected[256];
    snprintf(prefix, sizeof(prefix), "PROBE PCI ADD %s", bdf);
    snprintf(expected, sizeof(expected),
             "PROBE PCI ADD %s 1af4:1042 virtio-blk sectors=%d serial=%s", bdf, DISK_SECTORS,
             serial);
    expect_line(prefix, expected, GUEST_TIMEOUT_MS);
}

static void expect_eject(const char *bdf)
{
    char expected[64];
    snprintf(expected, sizeof(expected), "PROBE PCI EJECT %s", bdf);
    expect_line("PROBE PCI EJECT", expected, GUEST_TIMEOUT_MS);
}

/* QEMU sends two DEVICE_DELETED: the virtio backend child, then the device. */
static void expect_device_deleted(const char *id)
{
    char message[4096], path[256];
    int rc =
        qmp_client_wait_event(&qmp, "DEVICE_DELETED", message, sizeof(message), GUEST_TIMEOUT_MS);
    cr_assert_eq(rc, 0, "no DEVICE_DELETED for the backend of %s", id);
    snprintf(path, sizeof(path), "\"data\": {\"path\": \"/machine/peripheral/%s/virtio-backend\"}",
             id);
    cr_assert(strstr(message, path), "backend event: %s", message);
    rc = qmp_client_wait_event(&qmp, "DEVICE_DELETED", message, sizeof(message), GUEST_TIMEOUT_MS);
    cr_assert_eq(rc, 0, "no DEVICE_DELETED for %s", id);
    snprintf(path, sizeof(path),
             "\"data\": {\"device\": \"%s\", \"path\": \"/machine/peripheral/%s\"}", id, id);
    cr_assert(strstr(message, path), "device event: %s", message);
}

static void blockdev_add_raw(const char *node_name, const char *path)
{
    char command[1024];
    snprintf(command, sizeof(command),
             "{\"execute\": \"blockdev-add\", \"arguments\": {\"driver\": \"raw\", \"node-name\": "
             "\"%s\", \"file\": {\"driver\": \"file\", \"filename\": \"%s\"}}}",
             node_name, path);
    execute_ok(command);
}

static void device_add(const char *id, const char *drive, const char *address, const char *serial)
{
    char command[1024];
    snprintf(
        command, sizeof(command),
        "{\"execute\": \"device_add\", \"arguments\": {\"driver\": \"virtio-blk-pci\", \"id\": "
        "\"%s\", \"drive\": \"%s\", \"addr\": \"%s\", \"serial\": \"%s\", \"bus\": \"pci.0\"}}",
        id, drive, address, serial);
    execute_ok(command);
}

static void device_del(const char *id)
{
    char command[256];
    snprintf(command, sizeof(command),
             "{\"execute\": \"device_del\", \"arguments\": {\"id\": \"%s\"}}", id);
    execute_ok(command);
}

static unsigned count_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *directory = opendir(path);
    cr_assert_not_null(directory);
    unsigned count = 0;
    struct dirent *entry;
    while ((entry = readdir(directory)))
        count += entry->d_name[0] != '.';
    closedir(directory);
    return count;
}

/* --- tests ---------------------------------------------------------------------- */

Test(hotplug, cold_plugged_disk_has_size_serial_and_real_io)
{
    char path[512], blockdev_file[700],
        device[] = "virtio-blk-pci,drive=disk0,id=vd0,serial=COLD0,"
                   "addr=0x4,bus=pci.0";
    make_disk("cold.raw", path, sizeof(path), 5, 0xab);
    snprintf(blockdev_file, sizeof(blockdev_file), "driver=file,filename=%s,node-name=disk0-file",
             path);
    const char *extra[] = {
        "-blockdev", blockdev_file, "-blockdev", "driver=raw,file=disk0-file,node-name=disk0",
        "-device",   device,        NULL};
    start(extra);
    expect_add("00:04.0", "COLD0");
    wait_ready_and_connect();

    expect_read("00:04.0", 5, 0xab);
    expect_write("00:04.0", 9, 0x3c);
    uint8_t sector[512], expected[512];
    read_sector(path, 9, sector);
    memset(expected, 0x3c, sizeof(expected));
    cr_assert_arr_eq(sector, expected, sizeof(sector), "the guest's write is not in the file");

    /* Written by the host while the VM runs: the guest reads it (no caching in between). */
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    memset(sector, 0x77, sizeof(sector));
    cr_assert_eq(pwrite(fd, sector, sizeof(sector), 12 * 512), 512);
    close(fd);
    expect_read("00:04.0", 12, 0x77);

    char reply[65536];
    execute("{\"execute\": \"query-pci\"}", reply, sizeof(reply));
    cr_assert(strstr(reply, "\"slot\": 4, \"function\": 0, \"class_info\": {\"desc\": \"SCSI "
                            "controller\", \"class\": 256}, \"id\": {\"device\": 4162, \"vendor\": "
                            "6900, \"subsystem\": 4352, \"subsystem-vendor\": 6900}"),
              "%s", reply);
    cr_assert(strstr(reply, "\"qdev_id\": \"vd0\""), "%s", reply);
}

Test(hotplug, drive_if_none_and_device_on_the_command_line)
{
    char path[512], drive[700];
    make_disk("drive.raw", path, sizeof(path), 1, 0x11);
    snprintf(drive, sizeof(drive), "file=%s,format=raw,if=none,id=drive-virtio-disk0", path);
    const char *extra[] = {"-drive", drive, "-device",
                           "virtio-blk-pci,drive=drive-virtio-disk0,id=virtio-disk0,addr=0x5",
                           NULL};
    start(extra);
    expect_add("00:05.0", "");
    wait_ready_and_connect();
    expect_read("00:05.0", 1, 0x11);
    char output[8192];
    hmp("info block", output, sizeof(output));
    cr_assert(strstr(output, "drive-virtio-disk0"), "%s", output);
}

Test(hotplug, qmp_blockdev_add_device_add_device_del_blockdev_del)
{
    char path[512];
    make_disk("hot.raw", path, sizeof(path), 3, 0x5e);
    boot(NULL);

    blockdev_add_raw("hot1", path);
    device_add("vd1", "hot1", "0x6", "HOT1");
    expect_add("00:06.0", "HOT1");
    expect_read("00:06.0", 3, 0x5e);
    expect_write("00:06.0", 4, 0x42);

    char reply[65536];
    execute("{\"execute\": \"query-pci\"}", reply, sizeof(reply));
    cr_assert(strstr(reply, "\"slot\": 6,") && strstr(reply, "\"qdev_id\": \"vd1\""), "%s", reply);
    execute("{\"execute\": \"query-block\"}", reply, sizeof(reply));
    cr_assert(strstr(reply, "\"qdev\": \"/machine/peripheral/vd1/virtio-backend\""), "%s", reply);
    execute_error("{\"execute\": \"blockdev-del\", \"arguments\": {\"node-name\": \"hot1\"}}",
                  "in use");

    device_del("vd1");
    expect_eject("00:06.0");
    expect_device_deleted("vd1");
    execute_ok("{\"execute\": \"blockdev-del\", \"arguments\": {\"node-name\": \"hot1\"}}");

    execute("{\"execute\": \"query-pci\"}", reply, sizeof(reply));
    cr_assert_null(strstr(reply, "vd1"), "%s", reply);
    execute("{\"execute\": \"query-named-block-nodes\"}", reply, sizeof(reply));
    cr_assert_null(strstr(reply, "hot1"), "%s", reply);
    uint8_t sector[512], expected[512];
    read_sector(path, 4, sector);
    memset(expected, 0x42, sizeof(expected));
    cr_assert_arr_eq(sector, expected, sizeof(sector));
}

Test(hotplug, hmp_drive_add_device_add_device_del_drive_del)
{
    char path[512], command[1024], output[8192];
    make_disk("hmp.raw", path, sizeof(path), 2, 0x99);
    boot(NULL);

    snprintf(command, sizeof(command), "drive_add dummy file=%s,if=none,format=raw,id=drive-hmp1",
             path);
    hmp(command, output, sizeof(output));
    cr_assert_str_eq(output, "OK\\r\\n");
    hmp("device_add virtio-blk-pci,drive=drive-hmp1,id=hmp1,addr=0x7,serial=HMP1", output,
        sizeof(output));
    cr_assert_str_eq(output, "");
    expect_add("00:07.0", "HMP1");
    expect_read("00:07.0", 2, 0x99);

    hmp("info pci", output, sizeof(output));
    cr_assert(strstr(output,
                     "  Bus  0, device   7, function 0:\\r\\n    SCSI controller: PCI "
                     "device 1af4:1042\\r\\n      PCI subsystem 1af4:1100\\r\\n      IRQ 11, "
                     "pin A\\r\\n      BAR1: 32 bit memory at 0x"),
              "%s", output);
    cr_assert(strstr(output, "      id \\\"hmp1\\\"\\r\\n"), "%s", output);
    hmp("info block", output, sizeof(output));
    cr_assert(strstr(output, "drive-hmp1"), "%s", output);

    /* libvirt's legacy order: device_del, then drive_del at once. */
    hmp("device_del hmp1", output, sizeof(output));
    cr_assert_str_eq(output, "");
    hmp("drive_del drive-hmp1", output, sizeof(output));
    cr_assert_str_eq(output, "");
    expect_eject("00:07.0");
    expect_device_deleted("hmp1");
    hmp("info block", output, sizeof(output));
    cr_assert_null(strstr(output, "drive-hmp1"), "%s", output);
    hmp("info pci", output, sizeof(output));
    cr_assert_null(strstr(output, "hmp1"), "%s", output);

    hmp("drive_del drive-hmp1", output, sizeof(output));
    cr_assert_str_eq(output, "Device 'drive-hmp1' not found\\r\\n");
    hmp("device_del hmp1", output, sizeof(output));
    cr_assert_str_eq(output, "Error: Device 'hmp1' not found\\r\\n");
}

Test(hotplug, redhat_drive_add_and_drive_del)
{
    char path[512], command[1024];
    make_disk("rh.raw", path, sizeof(path), 8, 0xc3);
    boot(NULL);

    snprintf(command, sizeof(command),
             "{\"execute\": \"__com.redhat_drive_add\", \"arguments\": {\"id\": \"drive-rh1\", "
             "\"file\": \"%s\", \"format\": \"raw\"}}",
             path);
    execute_ok(command);
    device_add("rh1", "drive-rh1", "0x8", "RH1");
    expect_add("00:08.0", "RH1");
    expect_read("00:08.0", 8, 0xc3);
    device_del("rh1");
    execute_ok("{\"execute\": \"__com.redhat_drive_del\", \"arguments\": {\"id\": \"drive-rh1\"}}");
    expect_eject("00:08.0");
    expect_device_deleted("rh1");
    execute_error(
        "{\"execute\": \"__com.redhat_drive_del\", \"arguments\": {\"id\": \"drive-rh1\"}}",
        "\"class\": \"DeviceNotFound\"");
}

Test(hotplug, twenty_add_del_cycles_with_io_leak_no_fds, .timeout = 240)
{
    char path[512];
    make_disk("cycle.raw", path, sizeof(path), 0, 0);
    boot(NULL);
    unsigned fds_before = count_fds(vmm.pid);

    for (unsigned cycle = 0; cycle < 20; cycle++) {
        char node[32], id[32], serial[32];
        snprintf(node, sizeof(node), "cycle-node%u", cycle);
        snprintf(id, sizeof(id), "cycle%u", cycle);
        snprintf(serial, sizeof(serial), "CYC%u", cycle);
        blockdev_add_raw(node, path);
        device_add(id, node, "0x9", serial);
        expect_add("00:09.0", serial);
        expect_write("00:09.0", 20 + cycle, (uint8_t)(cycle + 1));
        expect_read("00:09.0", 20 + cycle, (uint8_t)(cycle + 1));
        if (cycle > 0)
            expect_read("00:09.0", 20 + cycle - 1, (uint8_t)cycle);
        device_del(id);
        expect_eject("00:09.0");
        expect_device_deleted(id);
        char command[256];
        snprintf(command, sizeof(command),
                 "{\"execute\": \"blockdev-del\", \"arguments\": {\"node-name\": \"%s\"}}", node);
        execute_ok(command);
    }
    cr_assert_eq(count_fds(vmm.pid), fds_before, "fds before %u, after %u", fds_before,
                 count_fds(vmm.pid));
}

Test(hotplug, guest_that_ignores_unplug_keeps_the_device)
{
    char path_a[512], path_b[512], command[1024], output[8192];
    make_disk("ignore-a.raw", path_a, sizeof(path_a), 1, 0x0a);
    make_disk("ignore-b.raw", path_b, sizeof(path_b), 1, 0x0b);
    const char *extra[] = {"-append", "probe.unplug=ignore", NULL};
    boot(extra);

    blockdev_add_raw("ign-a", path_a);
    device_add("ign-a", "ign-a", "0xa", "IGNA");
    expect_add("00:0a.0", "IGNA");
    snprintf(command, sizeof(command), "drive_add 0 file=%s,if=none,format=raw,id=drive-ign-b",
             path_b);
    hmp(command, output, sizeof(output));
    cr_assert_str_eq(output, "OK\\r\\n");
    device_add("ign-b", "drive-ign-b", "0xb", "IGNB");
    expect_add("00:0b.0", "IGNB");

    device_del("ign-a");
    expect_line("PROBE PCI UNPLUG-IGNORED", "PROBE PCI UNPLUG-IGNORED 00:0a.0", GUEST_TIMEOUT_MS);
    char message[4096];
    cr_assert_eq(qmp_client_wait_event(&qmp, "DEVICE_DELETED", message, sizeof(message), 2000),
                 -ETIMEDOUT, "unexpected %s", message);
    execute_error("{\"execute\": \"blockdev-del\", \"arguments\": {\"node-name\": \"ign-a\"}}",
                  "in use");
    expect_read("00:0a.0", 1, 0x0a); /* still there and working */

    device_del("ign-b");
    expect_line("PROBE PCI UNPLUG-IGNORED", "PROBE PCI UNPLUG-IGNORED 00:0b.0", GUEST_TIMEOUT_MS);
    hmp("drive_del drive-ign-b", output, sizeof(output));
    cr_assert_str_eq(output, "");
    guest("blk-read 00:0b.0 1 1");
    char line[256];
    cr_assert_eq(vmm_process_wait_line(&vmm, "PROBE BLK", GUEST_TIMEOUT_MS, line, sizeof(line)), 0);
    cr_assert(strncmp(line, "PROBE BLK ERROR 00:0b.0", strlen("PROBE BLK ERROR 00:0b.0")) == 0,
              "%s", line);
    execute_ok("{\"execute\": \"query-status\"}");
    cr_assert_eq(qmp_client_wait_event(&qmp, "DEVICE_DELETED", message, sizeof(message), 500),
                 -ETIMEDOUT, "unexpected %s", message);
}

Test(hotplug, errors_are_qemus)
{
    char path[512], command[1024];
    make_disk("err.raw", path, sizeof(path), 0, 0);
    boot(NULL);
    blockdev_add_raw("err1", path);
    device_add("verr", "err1", "0xc", "ERR");
    expect_add("00:0c.0", "ERR");

    blockdev_add_raw("err2", path);
    execute_error("{\"execute\": \"device_add\", \"arguments\": {\"driver\": \"virtio-blk-pci\", "
                  "\"id\": \"verr\", \"drive\": \"err2\"}}",
                  "Duplicate device ID 'verr'");
    execute_error("{\"execute\": \"device_add\", \"arguments\": {\"driver\": \"virtio-blk-pci\", "
                  "\"id\": \"v2\", \"drive\": \"err2\", \"addr\": \"0xc\"}}",
                  "PCI: slot 12 function 0 not available for virtio-blk-pci, in use by "
                  "virtio-blk-pci,id=verr");
    execute_error("{\"execute\": \"device_add\", \"arguments\": {\"driver\": \"virtio-blk-pci\", "
                  "\"id\": \"v2\", \"drive\": \"err2\", \"addr\": \"0x20\"}}",
                  "Property 'virtio-blk-pci.addr' doesn't take value '0x20'");
    execute_error("{\"execute\": \"device_add\", \"arguments\": {\"driver\": \"virtio-blk-pci\", "
                  "\"id\": \"v2\", \"drive\": \"nonode\"}}",
                  "Property 'virtio-blk-pci.drive' can't find value 'nonode'");
    execute_error("{\"execute\": \"device_add\", \"arguments\": {\"driver\": \"virtio-blk-pci\", "
                  "\"id\": \"v2\", \"drive\": \"err1\"}}",
                  "\"class\": \"GenericError\"");
    execute_error(
        "{\"execute\": \"device_add\", \"arguments\": {\"driver\": \"foo\", \"id\": \"x\"}}",
        "\"desc\": \"'foo' is not a valid device model name\"");
    execute_error("{\"execute\": \"device_add\", \"arguments\": {\"id\": \"x\"}}",
                  "Parameter 'driver' is missing");
    execute_error("{\"execute\": \"device_del\", \"arguments\": {\"id\": \"nodev\"}}",
                  "{\"class\": \"DeviceNotFound\", \"desc\": \"Device 'nodev' not found\"}");
    snprintf(command, sizeof(command),
             "{\"execute\": \"blockdev-add\", \"arguments\": {\"driver\": \"file\", \"node-name\": "
             "\"missing\", \"filename\": \"%s/no-such-file.raw\"}}",
             disk_directory);
    execute_error(command, "No such file or directory");
    execute_error("{\"execute\": \"blockdev-del\", \"arguments\": {\"node-name\": \"nonode\"}}",
                  "\"class\": \"GenericError\"");

    /* Nothing half-made stayed behind: slot 0xd is free and err2 attachable. */
    device_add("v3", "err2", "0xd", "OK3");
    expect_add("00:0d.0", "OK3");
}

Test(hotplug, command_line_device_errors_exit_1)
{
    const char *extra[] = {"-device", "virtio-blk-pci,drive=nowhere,id=vd0", NULL};
    start(extra);
    cr_assert_eq(vmm_process_wait_exit(&vmm, BOOT_TIMEOUT_MS), 0);
    cr_assert_eq(vmm.exit_status, 1);
    cr_assert(strstr(vmm.errors, "-device virtio-blk-pci,drive=nowhere,id=vd0: Property "
                                 "'virtio-blk-pci.drive' can't find value 'nowhere'"),
              "%s", vmm.errors);
}

Test(hotplug, qmp_keeps_answering_after_an_evil_guest)
{
    char path[512], blockdev[700];
    make_disk("evil.raw", path, sizeof(path), 0, 0);
    snprintf(blockdev, sizeof(blockdev),
             "{\"driver\": \"raw\", \"node-name\": \"evil\", \"file\": {\"driver\": \"file\", "
             "\"filename\": \"%s\"}}",
             path);
    const char *extra[] = {"-append",
                           "probe.virtio=evil",
                           "-blockdev",
                           blockdev,
                           "-device",
                           "{\"driver\": \"virtio-blk-pci\", \"drive\": \"evil\", \"id\": "
                           "\"vdevil\", \"addr\": \"0x4\"}",
                           NULL};
    start(extra);
    expect_line("PROBE EVIL", "PROBE EVIL 00:04.0 sent", BOOT_TIMEOUT_MS);
    wait_ready_and_connect();
    for (int i = 0; i < 3; i++)
        execute_ok("{\"execute\": \"query-status\"}");
    execute_ok("{\"execute\": \"query-pci\"}");
    /* The device can still be removed, and the VMM still hot-plugs. */
    device_del("vdevil");
    expect_eject("00:04.0");
    expect_device_deleted("vdevil");
    execute_ok("{\"execute\": \"query-block\"}");
    cr_assert_eq(kill(vmm.pid, 0), 0, "the VMM died");
}

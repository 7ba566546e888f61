/* The VMM command line built from domain definitions (daemon/vmm_argv.c). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"
#include "vmm_argv.h"

static const struct vmm_argv_paths paths = {
    .emulator = "/usr/bin/plugvirt-vmm",
    .qmp_socket = "/run/plugvirt/domains/demo/qmp.sock",
    .serial_socket = "/run/plugvirt/domains/demo/serial.sock",
    .pidfile = "/run/plugvirt/domains/demo/vmm.pid",
};

static void init_definition(struct domain_definition *definition)
{
    memset(definition, 0, sizeof(*definition));
    definition->name = "demo";
    strcpy(definition->uuid, "2b5e1c52-9c9b-4c5b-9f6f-3a0c7d1e2f10");
    definition->memory_kib = 131072;
    definition->current_memory_kib = 131072;
    definition->vcpus_max = 2;
    definition->vcpus_current = 1;
    definition->kernel = "/usr/share/plugvirt/probe-guest.elf";
    definition->cmdline = "console=ttyS0 probe.unplug=ignore";
}

/* Index of `option` followed by `value` in argv, or -1. */
static int find_pair(char **argv, const char *option, const char *value)
{
    for (int i = 0; argv[i] && argv[i + 1]; i++)
        if (strcmp(argv[i], option) == 0 && strcmp(argv[i + 1], value) == 0)
            return i;
    return -1;
}

static int count(char **argv)
{
    int n = 0;
    while (argv[n])
        n++;
    return n;
}

Test(vmm_argv, minimal_domain_gets_libvirt_layout)
{
    struct domain_definition definition;
    init_definition(&definition);
    struct pv_error error = {0};
    char **argv = vmm_argv_build(&definition, &paths, &error);
    cr_assert_not_null(argv, "%s", error.message);
    cr_assert_str_eq(argv[0], "/usr/bin/plugvirt-vmm");
    cr_assert_geq(find_pair(argv, "-name", "guest=demo,debug-threads=on"), 0);
    cr_assert_geq(find_pair(argv, "-machine", "pc,accel=kvm:tcg,usb=off"), 0);
    for (int i = 0; argv[i]; i++)
        cr_assert_str_neq(argv[i], "-cpu", "no <cpu>: the emulator's default model");
    cr_assert_geq(find_pair(argv, "-m", "size=131072k"), 0);
    cr_assert_geq(find_pair(argv, "-smp", "1,maxcpus=2,sockets=2,cores=1,threads=1"), 0);
    cr_assert_geq(find_pair(argv, "-uuid", "2b5e1c52-9c9b-4c5b-9f6f-3a0c7d1e2f10"), 0);
    cr_assert_geq(find_pair(argv, "-chardev",
                            "socket,id=charmonitor,path=/run/plugvirt/domains/demo/qmp.sock,"
                            "server=on,wait=off"),
                  0);
    cr_assert_geq(find_pair(argv, "-mon", "chardev=charmonitor,id=monitor,mode=control"), 0);
    cr_assert_geq(find_pair(argv, "-chardev",
                            "socket,id=charserial0,path=/run/plugvirt/domains/demo/serial.sock,"
                            "server=on,wait=off"),
                  0);
    cr_assert_geq(find_pair(argv, "-serial", "chardev:charserial0"), 0);
    cr_assert_geq(find_pair(argv, "-pidfile", "/run/plugvirt/domains/demo/vmm.pid"), 0);
    cr_assert_geq(find_pair(argv, "-kernel", "/usr/share/plugvirt/probe-guest.elf"), 0);
    cr_assert_geq(find_pair(argv, "-append", "console=ttyS0 probe.unplug=ignore"), 0);
    cr_assert_geq(find_pair(argv, "-display", "none"), 0);
    bool paused = false, nodefaults = false, no_shutdown = false, initrd = false;
    for (int i = 0; argv[i]; i++) {
        paused |= strcmp(argv[i], "-S") == 0;
        nodefaults |= strcmp(argv[i], "-nodefaults") == 0;
        no_shutdown |= strcmp(argv[i], "-no-shutdown") == 0;
        initrd |= strcmp(argv[i], "-initrd") == 0;
    }
    cr_assert(paused, "the VMM must start paused (-S), the daemon sends cont");
    cr_assert(nodefaults);
    cr_assert_not(no_shutdown, "guest poweroff must end the VMM");
    cr_assert_not(initrd, "no -initrd without <initrd>");
    vmm_argv_free(argv);
}

Test(vmm_argv, disks_use_the_hotplug_node_names)
{
    struct domain_definition definition;
    init_definition(&definition);
    struct domain_disk disks[2];
    memset(disks, 0, sizeof(disks));
    disks[0].source = "/var/lib/images/root.img";
    disks[0].target_dev = "vda";
    disks[0].alias = "virtio-disk0";
    disks[0].address.type = DOMAIN_ADDRESS_PCI;
    disks[0].address.slot = 3;
    disks[1].type = DOMAIN_DISK_BLOCK;
    disks[1].source = "/dev/sdz";
    disks[1].target_dev = "vdb";
    disks[1].alias = "virtio-disk1";
    disks[1].address.type = DOMAIN_ADDRESS_PCI;
    disks[1].address.slot = 10;
    disks[1].readonly = true;
    disks[1].cache = "none";
    disks[1].serial = "SER,1";
    disks[1].driver_type = "qcow2";
    definition.disks = disks;
    definition.disk_count = 2;
    struct pv_error error = {0};
    char **argv = vmm_argv_build(&definition, &paths, &error);
    cr_assert_not_null(argv, "%s", error.message);
    cr_assert_geq(find_pair(argv, "-blockdev",
                            "{\"driver\": \"file\", \"filename\": \"/var/lib/images/root.img\", "
                            "\"node-name\": \"virtio-disk0-storage\", \"auto-read-only\": true, "
                            "\"discard\": \"unmap\"}"),
                  0);
    cr_assert_geq(find_pair(argv, "-blockdev",
                            "{\"node-name\": \"virtio-disk0-format\", \"read-only\": false, "
                            "\"driver\": \"raw\", \"file\": \"virtio-disk0-storage\"}"),
                  0);
    cr_assert_geq(find_pair(argv, "-device",
                            "{\"driver\": \"virtio-blk-pci\", \"bus\": \"pci.0\", \"addr\": "
                            "\"0x3\", \"drive\": \"virtio-disk0-format\", \"id\": "
                            "\"virtio-disk0\"}"),
                  0);
    cr_assert_geq(find_pair(argv, "-blockdev",
                            "{\"driver\": \"host_device\", \"filename\": \"/dev/sdz\", "
                            "\"node-name\": \"virtio-disk1-storage\", \"auto-read-only\": true, "
                            "\"discard\": \"unmap\", \"cache\": {\"direct\": true, "
                            "\"no-flush\": false}}"),
                  0);
    cr_assert_geq(find_pair(argv, "-blockdev",
                            "{\"node-name\": \"virtio-disk1-format\", \"read-only\": true, "
                            "\"cache\": {\"direct\": true, \"no-flush\": false}, \"driver\": "
                            "\"qcow2\", \"file\": \"virtio-disk1-storage\"}"),
                  0);
    /* JSON -device: the serial's comma needs no QemuOpts escaping. */
    const char *vdb = "{\"driver\": \"virtio-blk-pci\", \"bus\": \"pci.0\", \"addr\": \"0xa\", "
                      "\"drive\": \"virtio-disk1-format\", \"id\": \"virtio-disk1\", "
                      "\"write-cache\": \"on\", \"serial\": \"SER,1\"}";
    cr_assert_geq(find_pair(argv, "-device", vdb), 0);
    /* Disk order is the definition's: vda's -device comes before vdb's. */
    cr_assert_lt(find_pair(argv, "-device",
                           "{\"driver\": \"virtio-blk-pci\", \"bus\": \"pci.0\", \"addr\": "
                           "\"0x3\", \"drive\": \"virtio-disk0-format\", \"id\": "
                           "\"virtio-disk0\"}"),
                 find_pair(argv, "-device", vdb));
    vmm_argv_free(argv);
}

Test(vmm_argv, qemu_emulator_gets_the_same_argv)
{
    struct domain_definition definition;
    init_definition(&definition);
    definition.initrd = "/boot/initrd.img";
    definition.cpu_mode = "custom";
    definition.cpu_model = "IvyBridge-IBRS";
    struct vmm_argv_paths qemu_paths = paths;
    qemu_paths.emulator = "/usr/bin/qemu-system-x86_64";
    char **ours = vmm_argv_build(&definition, &paths, NULL);
    char **qemu = vmm_argv_build(&definition, &qemu_paths, NULL);
    cr_assert_not_null(ours);
    cr_assert_not_null(qemu);
    cr_assert_str_eq(qemu[0], "/usr/bin/qemu-system-x86_64");
    cr_assert_eq(count(ours), count(qemu));
    for (int i = 1; ours[i]; i++)
        cr_assert_str_eq(ours[i], qemu[i]);
    cr_assert_geq(find_pair(qemu, "-cpu", "IvyBridge-IBRS"), 0);
    cr_assert_geq(find_pair(qemu, "-initrd", "/boot/initrd.img"), 0);
    vmm_argv_free(ours);
    vmm_argv_free(qemu);
}

Test(vmm_argv, domain_type_and_cpu_mode_choose_accelerator_and_model)
{
    struct domain_definition definition;
    init_definition(&definition);
    definition.type = "qemu";
    definition.cpu_mode = "host-passthrough";
    char **argv = vmm_argv_build(&definition, &paths, NULL);
    cr_assert_not_null(argv);
    cr_assert_geq(find_pair(argv, "-machine", "pc,accel=tcg,usb=off"), 0);
    cr_assert_geq(find_pair(argv, "-cpu", "host"), 0);
    vmm_argv_free(argv);
}

Test(vmm_argv, names_and_paths_with_commas_are_escaped)
{
    struct domain_definition definition;
    init_definition(&definition);
    definition.name = "a,b";
    struct vmm_argv_paths odd = paths;
    odd.qmp_socket = "/tmp/x,y/qmp.sock";
    char **argv = vmm_argv_build(&definition, &odd, NULL);
    cr_assert_not_null(argv);
    cr_assert_geq(find_pair(argv, "-name", "guest=a,,b,debug-threads=on"), 0);
    cr_assert_geq(find_pair(argv, "-chardev",
                            "socket,id=charmonitor,path=/tmp/x,,y/qmp.sock,server=on,wait=off"),
                  0);
    vmm_argv_free(argv);
}

Test(vmm_argv, unsupported_definitions_are_refused)
{
    struct domain_definition definition;
    init_definition(&definition);
    struct domain_disk disk = {0};
    disk.source = "/img";
    disk.target_dev = "sda";
    disk.target_bus = DOMAIN_DISK_BUS_SCSI;
    disk.alias = "scsi0-0-0-0";
    disk.address.type = DOMAIN_ADDRESS_PCI;
    definition.disks = &disk;
    definition.disk_count = 1;
    struct pv_error error = {0};
    cr_assert_null(vmm_argv_build(&definition, &paths, &error));
    cr_assert(strstr(error.message, "unsupported") != NULL, "%s", error.message);

    disk.target_bus = DOMAIN_DISK_BUS_VIRTIO;
    disk.target_dev = "vda";
    disk.alias = NULL; /* not resolved by the caller */
    cr_assert_null(vmm_argv_build(&definition, &paths, &error));
    cr_assert(strstr(error.message, "alias") != NULL, "%s", error.message);
}

/* Interfaces: -netdev/-device per NIC, descriptors numbered from VMM_ARGV_FIRST_NIC_FD in
 * the order of the interfaces, one per queue. */
Test(vmm_argv, interfaces_get_netdev_and_device_with_inherited_descriptors)
{
    struct domain_definition definition;
    init_definition(&definition);
    struct domain_interface interfaces[2] = {
        {.mac = "52:54:00:00:00:01", .model = "virtio", .alias = "net0", .queues = 2},
        {.mac = "52:54:00:00:00:02", .model = "virtio", .alias = "net1"},
    };
    interfaces[0].address = (struct domain_address){.type = DOMAIN_ADDRESS_PCI, .slot = 3};
    interfaces[1].address = (struct domain_address){.type = DOMAIN_ADDRESS_PCI, .slot = 4};
    definition.interfaces = interfaces;
    definition.interface_count = 2;
    cr_assert_eq(vmm_argv_nic_fd_count(&definition), 3);
    struct pv_error error = {0};
    char **argv = vmm_argv_build(&definition, &paths, &error);
    cr_assert_not_null(argv, "%s", error.message);
    cr_assert_geq(find_pair(argv, "-netdev",
                            "{\"type\": \"tap\", \"id\": \"hostnet0\", \"fds\": \"4:5\", "
                            "\"vhost\": false}"),
                  0);
    cr_assert_geq(find_pair(argv, "-netdev",
                            "{\"type\": \"tap\", \"id\": \"hostnet1\", \"fd\": \"6\", "
                            "\"vhost\": false}"),
                  0);
    cr_assert_geq(find_pair(argv, "-device",
                            "{\"driver\": \"virtio-net-pci\", \"netdev\": \"hostnet1\", "
                            "\"id\": \"net1\", \"mac\": \"52:54:00:00:00:02\", \"bus\": "
                            "\"pci.0\", \"addr\": \"0x4\"}"),
                  0);
    vmm_argv_free(argv);

    interfaces[1].model = "rtl8139";
    cr_assert_null(vmm_argv_build(&definition, &paths, &error));
    cr_assert(strstr(error.message, "unsupported") && strstr(error.message, "rtl8139"), "%s",
              error.message);
}

/* Every serial type gives the VMM the same end: the daemon's socket (daemon/console.c
 * connects the user's backend), so no user path reaches the VMM's command line. */
Test(vmm_argv, every_serial_type_is_the_daemon_socket)
{
    static const struct {
        const char *type, *mode, *path;
    } cases[] = {
        {"file", NULL, "/var/log/guest.log"},
        {"pty", NULL, NULL},
        {"unix", "bind", "/tmp/user.sock"},
        {"unix", "connect", "/tmp/user.sock"},
        {"null", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int kind = DOMAIN_CHARDEV_SERIAL; kind <= DOMAIN_CHARDEV_CONSOLE; kind++) {
            struct domain_definition definition;
            init_definition(&definition);
            struct domain_chardev chardev = {0};
            chardev.kind = kind;
            chardev.type = (char *)cases[i].type;
            chardev.source_mode = (char *)cases[i].mode;
            chardev.source_path = (char *)cases[i].path;
            if (kind == DOMAIN_CHARDEV_CONSOLE)
                chardev.target_type = "serial";
            definition.chardevs = &chardev;
            definition.chardev_count = 1;
            struct pv_error error = {0};
            char **argv = vmm_argv_build(&definition, &paths, &error);
            cr_assert_not_null(argv, "%s: %s", cases[i].type, error.message);
            cr_assert_geq(find_pair(argv, "-chardev",
                                    "socket,id=charserial0,path=/run/plugvirt/domains/demo/"
                                    "serial.sock,server=on,wait=off"),
                          0, "%s", cases[i].type);
            cr_assert_geq(find_pair(argv, "-serial", "chardev:charserial0"), 0);
            int serials = 0;
            for (int j = 0; argv[j]; j++) {
                serials += strcmp(argv[j], "-serial") == 0;
                if (cases[i].path)
                    cr_assert_null(strstr(argv[j], cases[i].path), "%s", argv[j]);
            }
            cr_assert_eq(serials, 1);
            vmm_argv_free(argv);
        }
    }
}

Test(vmm_argv, serial_chardev_escapes_commas)
{
    char *text = vmm_argv_serial_chardev("/run/a,b/serial.sock", NULL);
    cr_assert_str_eq(text, "socket,id=charserial0,path=/run/a,,b/serial.sock,server=on,wait=off");
    free(text);
    text = vmm_argv_serial_chardev("/run/a,b/serial.sock", "/run/a,b/serial.log");
    cr_assert_str_eq(text, "socket,id=charserial0,path=/run/a,,b/serial.sock,server=on,wait=off,"
                           "logfile=/run/a,,b/serial.log,logappend=on");
    free(text);
}

Test(vmm_argv, serial_layouts_it_cannot_run_are_refused)
{
    struct domain_definition definition;
    init_definition(&definition);
    struct domain_chardev chardevs[2] = {{0}};
    chardevs[0].kind = chardevs[1].kind = DOMAIN_CHARDEV_SERIAL;
    chardevs[0].type = chardevs[1].type = "null";
    definition.chardevs = chardevs;
    definition.chardev_count = 2;
    struct pv_error error = {0};
    cr_assert_null(vmm_argv_build(&definition, &paths, &error));
    cr_assert_not_null(strstr(error.message, "a second <serial>"), "%s", error.message);

    definition.chardev_count = 1;
    chardevs[0].type = "tcp";
    cr_assert_null(vmm_argv_build(&definition, &paths, &error));
    cr_assert_not_null(strstr(error.message, "<serial type='tcp'>"), "%s", error.message);

    chardevs[0].type = "file";
    cr_assert_null(vmm_argv_build(&definition, &paths, &error));
    cr_assert_not_null(strstr(error.message, "no source path"), "%s", error.message);

    chardevs[0].kind = DOMAIN_CHARDEV_CONSOLE;
    chardevs[0].type = "pty";
    chardevs[0].target_type = "virtio";
    cr_assert_null(vmm_argv_build(&definition, &paths, &error));
    cr_assert_not_null(strstr(error.message, "target type 'virtio'"), "%s", error.message);
}

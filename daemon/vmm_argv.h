/* The VMM command line built from a domain definition.
 *
 * One builder for both emulators: plugvirt-vmm and qemu-system-x86_64 accept the same
 * QEMU-style options (DESIGN.md §2), laid out the way libvirt lays them out:
 *   -name guest=NAME,debug-threads=on -S -machine pc,accel=kvm,usb=off -cpu host
 *   -m size=NK -smp CUR,maxcpus=MAX,sockets=MAX,cores=1,threads=1 -uuid U
 *   -no-user-config -nodefaults -display none
 *   -chardev socket,id=charmonitor,path=QMP,server=on,wait=off
 *   -mon chardev=charmonitor,id=monitor,mode=control
 *   -chardev socket,id=charserial0,path=SERIAL_SOCKET,server=on,wait=off
 *   -serial chardev:charserial0 -pidfile PIDFILE
 *   -kernel K -initrd I -append CMDLINE
 *   per virtio disk: -blockdev {file node "<alias>-storage"} -blockdev {format node
 *   "<alias>-format"} -device {virtio-blk-pci, bus pci.0, addr 0xS, drive <alias>-format,
 *   id <alias>}, all three JSON objects built by device_args.h, which also builds the QMP
 *   arguments of a hot-plugged disk: a disk gets the same arguments cold and hot.
 *   per interface: -netdev {tap "host<alias>", fd(s) N} -device {virtio-net-pci, id <alias>,
 *   mac, bus pci.0, addr 0xS} (device_args.h). The taps are opened by the daemon; their
 *   descriptors are inherited by the VMM at fixed numbers: VMM_ARGV_FIRST_NIC_FD onwards, one
 *   per queue, in the order of the interfaces (runtime_spawn_vmm puts them there).
 * The node names are the ones the hotplug orchestrator uses, so a cold-plugged disk can be
 * hot-unplugged with the same sequence. -S: the daemon sends "cont" once QMP is connected.
 * No -no-shutdown: the VMM exits when the guest powers off (exit status 0 = shut off).
 * The definition must be resolved: every disk has its alias and PCI address. */
#ifndef PLUGVIRT_VMM_ARGV_H
#define PLUGVIRT_VMM_ARGV_H

#include "domain.h"
#include "pv_error.h"

struct vmm_argv_paths {
    const char *emulator;      /* argv[0]: the binary to exec */
    const char *qmp_socket;    /* run-dir/domains/<name>/qmp.sock */
    const char *serial_socket; /* run-dir/domains/<name>/serial.sock */
    const char *serial_log;    /* run-dir/domains/<name>/serial.log, the VMM's logfile=; or NULL */
    const char *pidfile;       /* run-dir/domains/<name>/vmm.pid; may be NULL */
};

/* A NULL-terminated malloc'd argv (free with vmm_argv_free), or NULL with the reason
 * (-EINVAL "unsupported: ..." for definitions the builder cannot express). */
char **vmm_argv_build(const struct domain_definition *definition,
                      const struct vmm_argv_paths *paths, struct pv_error *error);
void vmm_argv_free(char **argv);
/* The argv as one shell-like line (for logs), malloc'd. */
char *vmm_argv_to_string(char *const *argv);

/* Serial port 0. Whatever the <serial>/<console> type, the VMM's end is a unix socket server
 * in the run directory and the daemon is its one client (daemon/console.h): the daemon keeps
 * serial.log, serves `pvsh console` and connects the user's backend (file, pty, unix, null).
 * So the -chardev value is the same for every type and for both emulators:
 * "socket,id=charserial0,path=SOCKET,server=on,wait=off,logfile=LOG,logappend=on" (malloc'd,
 * NULL on allocation failure; no logfile when `serial_log` is NULL): the VMM itself keeps
 * serial.log, also while the daemon is down. The frontend is "-serial chardev:charserial0". */
#define VMM_ARGV_SERIAL_CHARDEV_ID "charserial0"
char *vmm_argv_serial_chardev(const char *serial_socket, const char *serial_log);
/* Checks the definition's serial port 0 is one the daemon can connect: type file (with a
 * path), pty, unix (with a path, mode bind or connect) or null. -EINVAL "unsupported: ..." */
int vmm_argv_check_serial(const struct domain_definition *definition, struct pv_error *error);

/* The -blockdev JSON of a disk's protocol ("file") node and format node, and its -device
 * JSON (device_args.h); malloc'd, NULL on allocation failure or a value device_args refuses.
 * Shared with tests. */
char *vmm_argv_disk_storage_json(const struct domain_disk *disk);
char *vmm_argv_disk_format_json(const struct domain_disk *disk);
char *vmm_argv_disk_device_json(const struct domain_disk *disk);

/* The first descriptor number of the NICs' taps in the VMM (0-2: stdio, 3: the spawn's
 * exec-error pipe, closed on exec). */
#define VMM_ARGV_FIRST_NIC_FD 4
/* How many tap descriptors the definition's interfaces take (one per queue). */
unsigned vmm_argv_nic_fd_count(const struct domain_definition *definition);
/* The -netdev JSON of an interface whose descriptors are numbers first_fd.. (one per queue),
 * and its -device JSON; malloc'd, NULL on allocation failure or what device_args refuses. */
char *vmm_argv_interface_netdev_json(const struct domain_interface *interface, int first_fd);
char *vmm_argv_interface_device_json(const struct domain_interface *interface);

#endif

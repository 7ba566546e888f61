/* The domain model: what a domain XML definition says, as C structs.
 *
 * lib/domain_xml.c parses libvirt's domain XML (the subset in xml-schemas/) into
 * this model and formats it back; the daemon builds the VMM command line and the
 * hotplug sequences from it. Strings are owned (malloc'd) and NULL when absent. */
#ifndef PLUGVIRT_DOMAIN_H
#define PLUGVIRT_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pv_error.h"

#define DOMAIN_UUID_STRING_LENGTH 36

/* Error codes of the XML functions: -EINVAL for invalid XML (API code "invalid-xml", the
 * message starts with "line N: "), -EOPNOTSUPP for what libvirt has and plugvirt does not
 * (API code "unsupported", the message starts with "unsupported: "). */

/* Largest XML document domain_xml_parse accepts (a definition is a few KiB). */
#define DOMAIN_XML_MAX_LENGTH (1024 * 1024)

/* <address type='pci' domain bus slot function/> ; <address type='drive' controller bus target
 * unit/> ; <address type='virtio-serial' controller bus port/> */
enum domain_address_type {
    DOMAIN_ADDRESS_NONE = 0,
    DOMAIN_ADDRESS_PCI,
    DOMAIN_ADDRESS_DRIVE,
    DOMAIN_ADDRESS_VIRTIO_SERIAL,
};
struct domain_address {
    enum domain_address_type type;
    unsigned domain, bus, slot, function; /* PCI */
    unsigned controller, target, unit;    /* drive (bus is shared with PCI's field) */
    unsigned port;                        /* virtio-serial (controller, bus shared) */
};

enum domain_disk_type { DOMAIN_DISK_FILE = 0, DOMAIN_DISK_BLOCK };
enum domain_disk_device { DOMAIN_DISK_DEVICE_DISK = 0, DOMAIN_DISK_DEVICE_CDROM };
enum domain_disk_bus { DOMAIN_DISK_BUS_VIRTIO = 0, DOMAIN_DISK_BUS_SCSI };

/* Where a hot-plugged device stands (live definitions only; plugvirt-domain(5)): formatted as
 * <plugvirt:hotplug state='attaching|detaching'/> inside the device, nothing when attached. */
enum domain_hotplug_state {
    DOMAIN_HOTPLUG_ATTACHED = 0,
    DOMAIN_HOTPLUG_ATTACHING,
    DOMAIN_HOTPLUG_DETACHING,
};
#define DOMAIN_XML_PLUGVIRT_NAMESPACE "https://plugvirt.org/xmlns/domain/1.0"
const char *domain_hotplug_state_name(enum domain_hotplug_state state); /* "attached", ... */

struct domain_disk {
    enum domain_disk_type type;
    enum domain_disk_device device;
    char *driver_name;   /* <driver name='qemu'> */
    char *driver_type;   /* 'raw' (default) | 'qcow2' */
    char *cache;         /* none|writeback|writethrough|directsync|unsafe or NULL */
    char *io;            /* threads|native|io_uring or NULL */
    char *error_policy;  /* stop|report|ignore|enospace or NULL */
    char *rerror_policy; /* stop|report|ignore or NULL: reads (default: error_policy) */
    char *source;        /* <source file=> or <source dev=> */
    char *target_dev;    /* <target dev='vdb'> */
    enum domain_disk_bus target_bus;
    char *serial;
    bool readonly;
    bool shareable; /* <shareable/>: other domains may use the image read-write too */
    char *alias;    /* <alias name=>: 'virtio-disk1' or user 'ua-...' */
    struct domain_address address;
    enum domain_hotplug_state hotplug_state;
};

/* <interface type=...>: plugvirt opens a tap itself (ethernet) and may enslave it to an
 * existing Linux bridge (bridge); libvirt's other types are refused by the parser. */
enum domain_interface_type { DOMAIN_INTERFACE_ETHERNET = 0, DOMAIN_INTERFACE_BRIDGE };
struct domain_interface {
    enum domain_interface_type type;
    char *mac;           /* "52:54:00:xx:xx:xx" (generated at define/attach when absent) */
    char *source;        /* <source bridge=> */
    char *target_dev;    /* tap name; live XML: the one the kernel gave ("vnet%d") */
    bool target_managed; /* <target managed='no'>: an existing tap plugvirt only opens */
    char *model;         /* 'virtio' (written at define when absent) */
    bool link_down;      /* <link state='down'/> */
    unsigned queues;     /* <driver queues='N'/>; 0: not set (one queue) */
    char *alias;         /* 'net0' ... */
    struct domain_address address;
    enum domain_hotplug_state hotplug_state;
};
/* Most queues <driver queues=> takes (QEMU's MAX_QUEUE_NUM for tap). */
#define DOMAIN_INTERFACE_MAX_QUEUES 8

struct domain_controller {
    char *type; /* 'pci' | 'scsi' | 'virtio-serial' */
    unsigned index;
    char *model; /* 'pci-root' | 'virtio-scsi' | ... */
    char *alias;
    struct domain_address address;
};

struct domain_hostdev {
    bool managed;
    char *driver_name;            /* <driver name='vfio'/> or NULL */
    struct domain_address source; /* host PCI address */
    char *alias;
    struct domain_address address; /* guest PCI address */
};

/* <channel type='unix'> / <serial> / <console> */
enum domain_chardev_kind {
    DOMAIN_CHARDEV_CHANNEL = 0,
    DOMAIN_CHARDEV_SERIAL,
    DOMAIN_CHARDEV_CONSOLE
};
struct domain_chardev {
    enum domain_chardev_kind kind;
    char *type;          /* 'unix' | 'pty' | 'file' | 'null' | 'stdio' */
    char *source_mode;   /* 'bind' | 'connect' */
    char *source_path;   /* pty: the live XML's /dev/pts/N (runtime state, not persistent) */
    char *source_append; /* file: 'on' | 'off' (NULL: off, the file is truncated) */
    char *target_type;   /* channel: 'virtio'; serial: 'isa-serial'; console: 'serial'|'virtio' */
    char *target_name;   /* channel: 'org.qemu.guest_agent.0' */
    unsigned target_port;
    char *target_model; /* serial: <target><model name='isa-serial'/> */
    char *alias;
    struct domain_address address;
};

struct domain_definition {
    char *type; /* <domain type='kvm'> */
    char *name;
    char uuid[DOMAIN_UUID_STRING_LENGTH + 1]; /* canonical lower-case; generated if absent */
    char *title, *description;
    uint64_t memory_kib;         /* <memory>, converted from its unit */
    uint64_t current_memory_kib; /* <currentMemory>, = memory when absent */
    unsigned vcpus_max;          /* <vcpu>N</vcpu> */
    unsigned vcpus_current;      /* current=, = max when absent */
    char *os_type;               /* 'hvm' */
    char *os_arch, *os_machine;  /* 'x86_64', 'pc' */
    char *kernel, *initrd, *cmdline;
    char *cpu_mode;  /* <cpu mode='host-passthrough'|'host-model'|'custom'> */
    char *cpu_model; /* <cpu><model>IvyBridge-IBRS</model> */
    char *cpu_match, *cpu_check, *cpu_migratable, *cpu_model_fallback; /* kept for dumpxml */
    char *on_poweroff, *on_reboot, *on_crash;     /* destroy|restart|preserve */
    bool acpi;                                    /* <features><acpi/> */
    bool apic, pae;                               /* <features><apic/><pae/> */
    char *clock_offset;                           /* <clock offset='utc'|'localtime'/> or NULL */
    char *pm_suspend_to_mem, *pm_suspend_to_disk; /* <pm><suspend-to-*> enabled: 'yes'|'no' */
    char *emulator;                               /* <devices><emulator>; NULL = plugvirt-vmm */

    struct domain_disk *disks;
    size_t disk_count;
    struct domain_interface *interfaces;
    size_t interface_count;
    struct domain_controller *controllers;
    size_t controller_count;
    struct domain_hostdev *hostdevs;
    size_t hostdev_count;
    struct domain_chardev *chardevs;
    size_t chardev_count;
};

/* One device, as attach-device/detach-device take it. */
enum domain_device_kind {
    DOMAIN_DEVICE_DISK,
    DOMAIN_DEVICE_INTERFACE,
    DOMAIN_DEVICE_CONTROLLER,
    DOMAIN_DEVICE_HOSTDEV,
    DOMAIN_DEVICE_CHARDEV,
};
struct domain_device {
    enum domain_device_kind kind;
    union {
        struct domain_disk disk;
        struct domain_interface interface;
        struct domain_controller controller;
        struct domain_hostdev hostdev;
        struct domain_chardev chardev;
    };
};

void domain_definition_free(
    struct domain_definition *definition); /* frees members and the struct */
/* Free the members of one device (not the struct itself) and zero it. */
void domain_disk_clear(struct domain_disk *disk);
void domain_interface_clear(struct domain_interface *interface);
void domain_controller_clear(struct domain_controller *controller);
void domain_hostdev_clear(struct domain_hostdev *hostdev);
void domain_chardev_clear(struct domain_chardev *chardev);
void domain_device_clear(struct domain_device *device);
struct domain_definition *domain_definition_copy(const struct domain_definition *definition);
void domain_device_free(struct domain_device *device); /* frees members and the struct */
struct domain_device *domain_device_copy(const struct domain_device *device);

/* Adds a copy of `device` to the definition (disk, interface, ...). -EEXIST (and a message)
 * when a disk's target dev or a device's alias is already used. Chardevs are kept grouped
 * as libvirt formats them: serials, consoles, channels. */
int domain_definition_add_device(struct domain_definition *definition,
                                 const struct domain_device *device, struct pv_error *error);
/* Removes the device matching `device` (disk: by target dev; interface: by mac or alias;
 * hostdev: by source address; chardev: by target name or alias); -ENOENT if none. */
int domain_definition_remove_device(struct domain_definition *definition,
                                    const struct domain_device *device, struct pv_error *error);
struct domain_disk *domain_find_disk(struct domain_definition *definition, const char *target_dev);
/* The interface with this MAC (case-insensitive) or, when mac is NULL, this alias; NULL if none. */
struct domain_interface *domain_find_interface(struct domain_definition *definition,
                                               const char *mac, const char *alias);
/* The guest's serial port 0: the <serial> if there is one, else a <console> with target type
 * 'serial' (or none), which libvirt treats as an alias of the first serial port; NULL when
 * the definition has neither. The parser has already refused other layouts. */
const struct domain_chardev *domain_serial_port(const struct domain_definition *definition);
/* The <console> aliasing serial port 0, NULL if none. */
struct domain_chardev *domain_serial_console(struct domain_definition *definition);

/* libvirt's names of the enumerations ("file", "cdrom", "virtio", "bridge", "channel", ...). */
const char *domain_disk_type_name(enum domain_disk_type type);
const char *domain_disk_device_name(enum domain_disk_device device);
const char *domain_disk_bus_name(enum domain_disk_bus bus);
const char *domain_interface_type_name(enum domain_interface_type type);
const char *domain_chardev_kind_name(enum domain_chardev_kind kind);
const char *domain_device_kind_name(enum domain_device_kind kind); /* "disk", "interface", ... */

/* Converts `value` `unit` (libvirt's units: b, bytes, KB=1000, k/KiB=1024, MB, M/MiB, ...
 * up to E/EiB; NULL = KiB) to KiB, rounding up like libvirt. -EINVAL for an unknown unit,
 * -ERANGE when the size does not fit (above 2^63 - 1 bytes). */
int domain_scale_to_kib(uint64_t value, const char *unit, uint64_t *kib, struct pv_error *error);

/* Generates a random RFC 4122 v4 UUID string. */
void domain_uuid_generate(char out[DOMAIN_UUID_STRING_LENGTH + 1]);
/* Checks and canonicalises (lower case, with dashes) a UUID; accepts libvirt's forms. */
int domain_uuid_parse(const char *text, char out[DOMAIN_UUID_STRING_LENGTH + 1],
                      struct pv_error *error);

/* --- XML (lib/domain_xml.c, libxml2) ------------------------------------------------------
 * Parsing validates against the RelaxNG schemas in `schema_dir` (xml-schemas/; NULL: the
 * copies built into the program, lib/schemas_builtin.h), then maps
 * the document onto the model. Errors name the line: "line 12: ...". Elements and
 * attributes libvirt has but plugvirt does not support are an error ("unsupported: <video>
 * at line 20 is not supported by plugvirt"), never silently dropped. */
struct domain_definition *domain_xml_parse(const char *xml, size_t length, const char *schema_dir,
                                           struct pv_error *error);
struct domain_device *domain_xml_parse_device(const char *xml, size_t length,
                                              const char *schema_dir, struct pv_error *error);
/* Formats libvirt-style XML (2-space indent). `live` adds <alias> elements and the
 * assigned addresses; the inactive form keeps only what the user defined plus the
 * addresses allocated at define time. Returns a malloc'd string or NULL. */
char *domain_xml_format(const struct domain_definition *definition, bool live,
                        struct pv_error *error);
char *domain_xml_format_device(const struct domain_device *device, struct pv_error *error);

#endif

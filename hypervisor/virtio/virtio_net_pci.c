/* virtio-net-pci: the -device / device_add model over virtio_net.c, with QEMU
 * 7.2's property names, defaults and messages (virtio-net-pci and its
 * virtio-net-device child share the properties; errors name the child, as
 * QEMU's do). Properties for what the device does not do are refused by name. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "device_model.h"
#include "net/net.h"
#include "pci/pci.h"
#include "virtio/virtio_net.h"
#include "virtio/virtio_pci.h"
#include "vm.h"

static struct virtio_net *net_on_slot(struct vm *vm, unsigned slot)
{
    struct pci_device *device = pci_bus_get_slot(vm->pci_bus, slot);
    if (!device || strcmp(device->driver, "virtio-net-pci") != 0)
        return NULL;
    return (struct virtio_net *)virtio_pci_get_virtio(device); /* virtio is its first member */
}

/* QEMU gives NICs without mac= the lowest 52:54:00:12:34:xx not in use. */
static void pick_default_mac(struct vm *vm, uint8_t mac[6])
{
    for (unsigned index = 0;; index++) {
        net_default_mac(index, mac);
        bool taken = false;
        for (unsigned slot = 0; slot < PCI_SLOT_COUNT && !taken; slot++) {
            struct virtio_net *other = net_on_slot(vm, slot);
            taken = other && memcmp(virtio_net_config_mac(other), mac, 6) == 0;
        }
        if (!taken || index == 255)
            return;
    }
}

/* QEMU names a NIC without id "<model>.<n>", the lowest n free. */
static void pick_anonymous_name(struct vm *vm, char *name, size_t size)
{
    for (unsigned index = 0;; index++) {
        snprintf(name, size, "virtio-net-pci.%u", index);
        bool taken = false;
        for (unsigned slot = 0; slot < PCI_SLOT_COUNT && !taken; slot++) {
            struct virtio_net *other = net_on_slot(vm, slot);
            taken = other && strcmp(virtio_net_name(other), name) == 0;
        }
        if (!taken)
            return;
    }
}

/* Properties that name a feature we do not have: refused when asked for, since QEMU's
 * defaults for them are on, an explicit "off" is what we already do. */
static int refuse_unimplemented(struct qemu_options *options, struct pv_error *error)
{
    static const char *const features[] = {"ctrl_vlan",
                                           "guest_announce",
                                           "ctrl_guest_offloads",
                                           "rss",
                                           "hash",
                                           "failover",
                                           "guest_rsc_ext",
                                           "packed",
                                           "page-per-vq",
                                           "iommu_platform",
                                           "ats"};
    for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++) {
        bool on;
        int status = qemu_options_get_bool(options, features[i], false, &on, error);
        if (status < 0)
            return status;
        if (on)
            return pv_error_set(error, -EINVAL,
                                "virtio-net-pci: %s=on is not supported by plugvirt-vmm "
                                "(use %s=off or leave it out)",
                                features[i], features[i]);
    }
    static const char *const values[] = {"speed", "duplex", "x-txtimer", "x-txburst"};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
        if (qemu_options_get(options, values[i]))
            return pv_error_set(error, -EINVAL,
                                "virtio-net-pci: property '%s' is not supported by plugvirt-vmm",
                                values[i]);
    /* "bh" is how TX already works here: on the queue's notification, without a timer. */
    const char *tx = qemu_options_get(options, "tx");
    if (tx && strcmp(tx, "bh") != 0)
        return pv_error_set(error, -EINVAL,
                            "virtio-net-pci: tx=%s is not supported by plugvirt-vmm (only tx=bh: "
                            "frames are sent when the guest notifies)",
                            tx);
    const char *romfile = qemu_options_get(options, "romfile");
    if (romfile && romfile[0])
        return pv_error_set(error, -EINVAL,
                            "virtio-net-pci: romfile='%s' is not supported (plugvirt-vmm boots "
                            "without firmware, so there is no option ROM): use romfile=",
                            romfile);
    return 0;
}

/* Transport properties: only the values that describe this device. */
static int check_transport(struct qemu_options *options, struct pv_error *error)
{
    static const struct {
        const char *key;
        bool required;
    } fixed[] = {{"disable-legacy", true}, {"disable-modern", false}, {"ioeventfd", true}};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        const char *text = qemu_options_get(options, fixed[i].key);
        bool value;
        if (!text || (fixed[i].required && strcmp(text, "auto") == 0))
            continue;
        int status = qemu_parse_bool(text, &value, error);
        if (status < 0)
            return pv_error_prefix(error, "Parameter '%s'", fixed[i].key);
        if (value != fixed[i].required)
            return pv_error_set(error, -EINVAL,
                                "virtio-net-pci: %s=%s is not supported (plugvirt-vmm's "
                                "virtio-net-pci is a modern-only device using ioeventfd)",
                                fixed[i].key, text);
    }
    return 0;
}

int virtio_net_options_from_qemu(struct qemu_options *options, struct virtio_net_options *net,
                                 struct pv_error *error)
{
    net->netdev = qemu_options_get(options, "netdev");
    const char *mac = qemu_options_get(options, "mac");
    if (mac && net_parse_mac(mac, net->mac) < 0)
        return pv_error_set(error, -EINVAL,
                            "Property 'virtio-net-device.mac' doesn't take value "
                            "'%s'",
                            mac);
    const struct {
        const char *key;
        bool *value;
    } bools[] = {
        {"mq", &net->mq},
        {"status", &net->status},
        {"mrg_rxbuf", &net->mrg_rxbuf},
        {"ctrl_vq", &net->ctrl_vq},
        {"ctrl_rx", &net->ctrl_rx},
        {"ctrl_rx_extra", &net->ctrl_rx_extra},
        {"ctrl_mac_addr", &net->ctrl_mac_addr},
        {"csum", &net->csum},
        {"guest_csum", &net->guest_csum},
        {"gso", &net->gso},
        {"host_tso4", &net->host_tso4},
        {"host_tso6", &net->host_tso6},
        {"host_ecn", &net->host_ecn},
        {"host_ufo", &net->host_ufo},
        {"guest_tso4", &net->guest_tso4},
        {"guest_tso6", &net->guest_tso6},
        {"guest_ecn", &net->guest_ecn},
        {"guest_ufo", &net->guest_ufo},
        {"event_idx", &net->event_idx},
        {"indirect_desc", &net->indirect_desc},
    };
    int status;
    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++)
        if ((status = qemu_options_get_bool(options, bools[i].key, *bools[i].value, bools[i].value,
                                            error)) < 0)
            return status;
    if ((status = qemu_options_get_unsigned(options, "rx_queue_size", net->rx_queue_size,
                                            &net->rx_queue_size, error)) < 0 ||
        (status = qemu_options_get_unsigned(options, "tx_queue_size", net->tx_queue_size,
                                            &net->tx_queue_size, error)) < 0)
        return status;
    unsigned mtu = net->host_mtu;
    if ((status = qemu_options_get_unsigned(options, "host_mtu", mtu, &mtu, error)) < 0)
        return status;
    if (mtu > UINT16_MAX)
        return pv_error_set(error, -EINVAL, "Parameter 'host_mtu' expects uint16_t");
    net->host_mtu = (uint16_t)mtu;
    if ((status = refuse_unimplemented(options, error)) < 0 ||
        (status = check_transport(options, error)) < 0)
        return status;
    return 0;
}

static void emit_vm_event(void *opaque, const char *event_name, const char *data_json)
{
    vm_emit_event(opaque, event_name, data_json);
}

static struct pci_device *create_virtio_net_pci(struct vm *vm, struct qemu_options *options,
                                                const char *id, const char *qom_path,
                                                struct pv_error *error)
{
    struct virtio_net_options net_options;
    virtio_net_options_init(&net_options);
    pick_default_mac(vm, net_options.mac);
    if (virtio_net_options_from_qemu(options, &net_options, error) < 0)
        return NULL;
    unsigned vectors = 0;
    if (qemu_options_get_unsigned(options, "vectors", 0, &vectors, error) < 0)
        return NULL;
    bool vectors_given = qemu_options_find(options, "vectors") != NULL;
    if (vectors_given && (vectors == 0 || vectors > PCI_MSIX_MAX_VECTORS)) {
        pv_error_set(error, -EINVAL,
                     "virtio-net-pci: vectors=%u is not supported (plugvirt-vmm needs MSI-X, "
                     "with 1 to %d vectors)",
                     vectors, PCI_MSIX_MAX_VECTORS);
        return NULL;
    }
    if (device_options_check_unused(options, "virtio-net-pci", error) < 0)
        return NULL;
    char name[64], backend_path[DEVICE_QOM_PATH_MAX + 32];
    if (id)
        snprintf(name, sizeof(name), "%s", id);
    else
        pick_anonymous_name(vm, name, sizeof(name));
    snprintf(backend_path, sizeof(backend_path), "%s/virtio-backend", qom_path);
    net_options.net_layer = vm->net_layer;
    net_options.name = name;
    net_options.id = id;
    net_options.qdev_path = backend_path;
    net_options.emit_event = emit_vm_event;
    net_options.event_opaque = vm;
    struct virtio_net *net = virtio_net_new(&net_options, error);
    if (!net)
        return NULL;
    /* QEMU's default: a vector per queue plus one for configuration changes. */
    if (!vectors_given)
        vectors = virtio_net_device(net)->queue_count + 1;
    struct pci_device *device = virtio_pci_create(vm, virtio_net_device(net), "virtio-net-pci", id,
                                                  0x020000, vectors, error);
    if (!device) {
        virtio_device_destroy(virtio_net_device(net));
        return NULL;
    }
    return device;
}

const struct device_model virtio_net_pci_model = {
    .driver = "virtio-net-pci",
    .has_virtio_backend = true,
    .create = create_virtio_net_pci,
};

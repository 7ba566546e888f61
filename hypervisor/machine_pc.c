#include "machine_pc.h"

#include <errno.h>
#include <string.h>

#include "acpi/acpi_pm.h"
#include "acpi/acpi_tables.h"
#include "block/block.h"
#include "boot/boot.h"
#include "net/net.h"
#include "options/net_options.h"
#include "device_registry.h"
#include "pci/pci.h"
#include "pv_log.h"
#include "reset_control.h"
#include "chardev/serial_8250.h"
#include "x86/vcpu.h"
#include "vm.h"
#include "x86/cpu_hotplug.h"

#define MACHINE_MIN_MEMORY (16ULL << 20)

static int load_acpi_tables(struct vm *vm, struct pv_error *error)
{
    struct acpi_tables_config config;
    memset(&config, 0, sizeof(config));
    config.cpus = vm->config->cpus;
    config.max_cpus = vm->config->max_cpus;
    uint8_t *buffer = vm_guest_pointer(vm, VM_ACPI_TABLES_ADDRESS, VM_ACPI_TABLES_SIZE);
    if (!buffer)
        return pv_error_set(error, -EINVAL, "the ACPI table area is not in guest RAM");
    if (vm->ram_dirty)
        memset(buffer, 0, VM_ACPI_TABLES_SIZE);
    struct acpi_tables_layout layout;
    int rc = acpi_tables_build(&config, buffer, VM_ACPI_TABLES_SIZE, VM_ACPI_TABLES_ADDRESS,
                               &layout, error);
    if (rc < 0)
        return rc;
    if (vm->config->acpi_dump_dir) {
        rc = acpi_tables_dump(buffer, &layout, vm->config->acpi_dump_dir, error);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Loads the kernel and sets the boot vCPU's entry state; used at start and on reset. */
static int load_kernel(struct vm *vm, struct pv_error *error)
{
    struct boot_memory memory = {
        .ram = vm->ram,
        .lowmem_size = vm->lowmem_size,
        .highmem_size = vm->highmem_size,
        .ram_is_zero = !vm->ram_dirty,
    };
    struct boot_info info;
    memset(&info, 0, sizeof(info));
    int rc = boot_load(&memory, vm->config->kernel_path, vm->config->initrd_path,
                       vm->config->kernel_cmdline ? vm->config->kernel_cmdline : "", &info, error);
    if (rc < 0)
        return rc;
    return boot_setup_vcpu(vm->vcpus[0]->fd, info.entry, error);
}

static int machine_pc_reset(struct vm *vm, struct pv_error *error)
{
    acpi_pm_reset(vm->acpi_pm);
    pci_bus_reset(vm->pci_bus);
    if (vm->serial)
        serial_8250_reset(vm->serial);
    /* Tables and kernel may have been overwritten by the guest: write them again. */
    int rc = load_acpi_tables(vm, error);
    if (rc == 0)
        rc = load_kernel(vm, error);
    return rc;
}

static void machine_pc_press_power_button(struct vm *vm)
{
    acpi_pm_press_power_button(vm->acpi_pm);
}

int machine_pc_create_netdevs(struct vm *vm, struct pv_error *error)
{
    const struct vmm_config *config = vm->config;
    for (size_t i = 0; i < config->netdev_arg_count; i++) {
        struct qemu_options options;
        bool json;
        int rc = net_options_parse_netdev(config->netdev_args[i], &options, &json, error);
        if (rc == 0)
            rc = net_netdev_add(vm->net_layer, &options,
                                json ? NET_SYNTAX_QMP : NET_SYNTAX_COMMAND_LINE, error);
        qemu_options_free(&options);
        if (rc < 0)
            return pv_error_prefix(error, "-netdev %s", config->netdev_args[i]);
    }
    return 0;
}

int machine_pc_init(struct machine_pc *machine, struct vm *vm, struct chardev *serial_chardev,
                    struct pv_error *error)
{
    memset(machine, 0, sizeof(*machine));
    machine->vm = vm;
    machine->serial_chardev = serial_chardev;
    if (vm->ram_size < MACHINE_MIN_MEMORY)
        return pv_error_set(error, -EINVAL, "-m: the pc machine needs at least %llu MiB",
                            MACHINE_MIN_MEMORY >> 20);
    if (!vm->config->kernel_path)
        return pv_error_set(error, -EINVAL,
                            "no kernel given: plugvirt-vmm boots a kernel directly (-kernel "
                            "FILE); it has no BIOS");

    vm->acpi_pm = acpi_pm_create(vm, error);
    if (!vm->acpi_pm)
        return error ? error->code : -EIO;
    vm->power_button_hook = machine_pc_press_power_button;
    /* The DSDT reads CPU presence from these registers: without them a guest
     * would see every possible CPU as present. */
    vm->cpu_hotplug =
        cpu_hotplug_create(&vm->io_bus, VM_CPU_HOTPLUG_BASE, vm->config->cpus,
                           vm->config->max_cpus ? vm->config->max_cpus : vm->config->cpus, error);
    if (!vm->cpu_hotplug)
        return error ? error->code : -EIO;
    vm->pci_bus = pci_bus_create(vm, error);
    if (!vm->pci_bus)
        return error ? error->code : -EIO;
    vm->block_layer = block_layer_create();
    if (!vm->block_layer)
        return pv_error_set(error, -ENOMEM, "cannot create the block layer");
    vm->net_layer = net_layer_create();
    if (!vm->net_layer)
        return pv_error_set(error, -ENOMEM, "cannot create the network layer");
    vm->device_registry = device_registry_create(vm, error);
    if (!vm->device_registry)
        return error ? error->code : -EIO;
    int rc = reset_control_register(vm, error);
    if (rc < 0)
        return rc;
    vm->serial = serial_8250_create(vm, VM_SERIAL_PORT, VM_SERIAL_IRQ, serial_chardev, error);
    if (!vm->serial)
        return error ? error->code : -EIO;
    /* Netdevs before devices: a NIC's netdev= names one. */
    if ((rc = machine_pc_create_netdevs(vm, error)) < 0)
        return rc;
    /* Cold plug: the devices are there before the first vCPU instruction. */
    rc = device_registry_apply_config(vm->device_registry, vm->config, error);
    if (rc < 0)
        return rc;
    if ((rc = load_acpi_tables(vm, error)) < 0 || (rc = load_kernel(vm, error)) < 0)
        return rc;
    vm->ram_dirty = true; /* from here on the guest writes to it */
    vm->reset_hook = machine_pc_reset;
    return 0;
}

void machine_pc_destroy(struct machine_pc *machine)
{
    struct vm *vm = machine->vm;
    if (!vm)
        return;
    if (vm->serial)
        serial_8250_destroy(vm->serial);
    vm->serial = NULL;
    /* The bus destroys the remaining devices, which release their block backends; the
     * registry only forgets them, and the block layer goes last. */
    if (vm->pci_bus)
        pci_bus_destroy(vm->pci_bus);
    vm->pci_bus = NULL;
    device_registry_destroy(vm->device_registry);
    vm->device_registry = NULL;
    if (vm->block_layer)
        block_layer_destroy(vm->block_layer);
    vm->block_layer = NULL;
    /* After the devices: NICs release their netdevs when they go. */
    net_layer_destroy(vm->net_layer);
    vm->net_layer = NULL;
    vm->power_button_hook = NULL;
    cpu_hotplug_destroy(vm->cpu_hotplug);
    vm->cpu_hotplug = NULL;
    if (vm->acpi_pm)
        acpi_pm_destroy(vm->acpi_pm);
    vm->acpi_pm = NULL;
}

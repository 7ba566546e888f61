/* The virtual machine: KVM handles, guest memory, vCPUs, buses and run state.
 *
 * Threads: one main thread runs the libevent loop (monitors, chardevs,
 * timers); one thread per vCPU runs KVM_RUN and handles exits inline.
 * All mutable VM state lives in struct vm; there are no globals. */
#ifndef PLUGVIRT_VM_H
#define PLUGVIRT_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "io_bus.h"
#include "pv_error.h"
#include "vmm_config.h"

struct event_base;
struct vcpu;
struct acpi_pm;
struct cpu_hotplug;
struct serial_8250;
struct pci_bus;
struct block_layer;
struct net_layer;
struct device_registry;

/* Guest physical memory map (i440fx "pc"-like). */
#define VM_LOWMEM_LIMIT 0xc0000000ULL   /* RAM above this moves to 4 GiB */
#define VM_PCI_HOLE_START 0xc0000000ULL /* 32-bit MMIO window for PCI BARs */
#define VM_PCI_HOLE_END 0xfec00000ULL
#define VM_IOAPIC_ADDRESS 0xfec00000ULL
#define VM_LAPIC_ADDRESS 0xfee00000ULL
#define VM_HIGHMEM_START 0x100000000ULL

/* Fixed low-memory layout used by direct boot (all below 1 MiB). */
#define VM_BOOT_GDT_ADDRESS 0x500
#define VM_BOOT_PARAMS_ADDRESS 0x7000
#define VM_BOOT_STACK_TOP 0x8ff0
#define VM_BOOT_PML4_ADDRESS 0x9000 /* PML4, PDPT, then 4 PDs: 0x9000..0xefff */
#define VM_BOOT_CMDLINE_ADDRESS 0x20000
#define VM_BOOT_CMDLINE_MAX 0x10000
#define VM_EBDA_START 0x9fc00          /* e820: RAM ends here, reserved to 1 MiB */
#define VM_ACPI_TABLES_ADDRESS 0xe0000 /* RSDP first, tables after, up to 0xfffff */
#define VM_ACPI_TABLES_SIZE 0x20000

/* Ports of the ACPI/PM hardware; the same as QEMU's PIIX4 so one guest
 * driver works on both VMMs. */
#define VM_PM_BASE 0x600           /* PM1a_EVT 0x600 (4), PM1a_CNT 0x604 (2), PM_TMR 0x608 */
#define VM_GPE0_BASE 0xafe0        /* 2 status bytes + 2 enable bytes */
#define VM_PCI_HOTPLUG_BASE 0xae00 /* QEMU ACPI PCI hotplug, 0x18 bytes */
#define VM_CPU_HOTPLUG_BASE 0xaf00 /* QEMU modern ACPI CPU hotplug, 12 bytes */
#define VM_SCI_IRQ 9
#define VM_SERIAL_IRQ 4
#define VM_SERIAL_PORT 0x3f8

enum vm_run_state {
    VM_RUN_STATE_PRELAUNCH, /* created, vCPUs not yet started (-S before first cont) */
    VM_RUN_STATE_RUNNING,
    VM_RUN_STATE_PAUSED,   /* stop / -S */
    VM_RUN_STATE_SHUTDOWN, /* guest powered off or quit requested */
    VM_RUN_STATE_INTERNAL_ERROR,
};

/* A listener for VM events (QMP events). `data_json` is a JSON object text
 * or NULL. Always called on the main thread. */
typedef void (*vm_event_listener_fn)(void *opaque, const char *event_name, const char *data_json);

struct vm_event_listener {
    vm_event_listener_fn callback;
    void *opaque;
};

struct vm {
    struct vmm_config *config;
    int kvm_fd;
    int vm_fd;
    int vcpu_mmap_size;

    uint8_t *ram;          /* host mapping of guest RAM (MAP_NORESERVE) */
    uint64_t ram_size;     /* bytes of guest RAM */
    uint64_t lowmem_size;  /* RAM mapped at [0, lowmem_size) */
    uint64_t highmem_size; /* RAM mapped at [4 GiB, 4 GiB + highmem_size) */

    struct io_bus io_bus;
    struct event_base *event_base;

    unsigned vcpu_count; /* present vCPUs */
    unsigned max_vcpus;
    struct vcpu *vcpus[VMM_MAX_VCPUS];

    /* Run state, protected by state_lock; vCPU threads wait on state_cond. */
    pthread_mutex_t state_lock;
    pthread_cond_t state_cond;
    enum vm_run_state run_state;
    unsigned quiesce_depth;  /* >0: vCPUs must park (stop, device removal) */
    unsigned parked_vcpus;   /* vCPUs currently parked */
    bool shutdown_requested; /* the process should exit */
    int exit_status;         /* process exit status once shut down */
    /* Registering guest RAM with KVM waits for an RCU grace period (4-7 ms here), and so
     * may creating the PIT: both run on their own thread while the rest of the machine
     * and the monitors come up; vCPUs stay parked until memory_ready. */
    pthread_t memory_thread;
    bool memory_thread_started;
    bool memory_ready; /* protected by state_lock */

    /* Work posted from any thread to run on the main thread. */
    int main_call_eventfd;
    struct event *main_call_event;
    pthread_mutex_t main_call_lock;
    struct vm_main_call *main_calls_head, *main_calls_tail;

    struct vm_event_listener listeners[8];
    unsigned listener_count;

    /* Devices every VM has. */
    struct acpi_pm *acpi_pm;
    struct cpu_hotplug *cpu_hotplug; /* QEMU's CPU hotplug registers at VM_CPU_HOTPLUG_BASE */
    struct serial_8250 *serial;
    struct pci_bus *pci_bus;                 /* bus pci.0 with the host bridge and hotplug slots */
    struct block_layer *block_layer;         /* block nodes and drives (-blockdev, -drive) */
    struct net_layer *net_layer;             /* netdevs, getfd names, NIC peers (-netdev) */
    struct device_registry *device_registry; /* -device / device_add devices on pci.0 */

    /* Machine hook for system_reset: re-initialises devices and reloads the
     * kernel while the vCPUs are quiesced. Set by the machine setup. */
    int (*reset_hook)(struct vm *vm, struct pv_error *error);
    /* Machine hook for system_powerdown: presses the power button (the machine owns the
     * ACPI device, so vm.c does not call into it). NULL: the machine has none. */
    void (*power_button_hook)(struct vm *vm);
    bool ram_dirty;   /* guest RAM is no longer all zeros (set after the first kernel load) */
    bool no_reboot;   /* -no-reboot: a guest reset ends the VM instead */
    bool no_shutdown; /* -no-shutdown: a guest power-off stops the VM, the process stays */

    pthread_t main_thread;
};

/* Creates the KVM VM (irqchip, PIT, memory) but does not load a kernel or start vCPUs. */
int vm_create(struct vm *vm, struct vmm_config *config, struct event_base *event_base,
              struct pv_error *error);
/* Ends the vCPU threads (joins them); devices can be torn down afterwards. */
void vm_stop_vcpus(struct vm *vm);
/* Frees everything; call after the devices registered on the VM are destroyed. */
void vm_destroy(struct vm *vm);

/* Host pointer for guest physical [gpa, gpa+length), or NULL if any part is not RAM. */
void *vm_guest_pointer(struct vm *vm, uint64_t gpa, uint64_t length);

/* Sets the level of a GSI (IOAPIC pin). Edge interrupts: raise then lower. */
int vm_set_irq_line(struct vm *vm, unsigned gsi, int level);
/* Injects an MSI directly (KVM_SIGNAL_MSI). */
int vm_signal_msi(struct vm *vm, uint64_t address, uint32_t data);

/* Runs fn(arg) on the main thread, soon. Safe from any thread. */
int vm_call_on_main(struct vm *vm, void (*fn)(void *arg), void *arg);

/* Events: emitted from any thread; listeners run on the main thread. */
void vm_add_event_listener(struct vm *vm, vm_event_listener_fn callback, void *opaque);
void vm_emit_event(struct vm *vm, const char *event_name, const char *data_json);

/* Run control, called on the main thread (monitors). */
int vm_start(struct vm *vm, struct pv_error *error);     /* start vCPU threads */
int vm_pause(struct vm *vm, struct pv_error *error);     /* "stop": emits STOP */
int vm_resume(struct vm *vm, struct pv_error *error);    /* "cont": emits RESUME */
int vm_reset(struct vm *vm, struct pv_error *error);     /* system_reset: emits RESET */
int vm_powerdown(struct vm *vm, struct pv_error *error); /* ACPI power button: emits POWERDOWN */
/* Ends the VM: emits SHUTDOWN {guest, reason} and stops the main loop.
 * reason is QEMU's: "guest-shutdown", "host-qmp-quit", "host-signal", ... */
void vm_request_shutdown(struct vm *vm, bool by_guest, const char *reason);
/* From vCPU threads: the guest reset itself (triple fault, reset register). */
void vm_request_guest_reset(struct vm *vm);
/* From vCPU threads: KVM could not run the guest; the VM stops in "internal-error". */
void vm_report_internal_error(struct vm *vm);
enum vm_run_state vm_get_run_state(struct vm *vm);
/* QEMU's spelling of the run state for query-status: "running", "paused", "prelaunch", "shutdown",
 * "internal-error". */
const char *vm_run_state_name(enum vm_run_state state);

/* Parks every vCPU outside KVM_RUN and device handlers; nests. Main thread only. */
void vm_quiesce(struct vm *vm);
void vm_unquiesce(struct vm *vm);

/* Per-vCPU facts for query-cpus-fast / info cpus. */
struct vm_vcpu_info {
    unsigned index;
    int thread_id; /* host TID */
};
unsigned vm_get_vcpu_info(struct vm *vm, struct vm_vcpu_info *info, unsigned max);

#endif

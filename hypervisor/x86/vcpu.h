/* One virtual CPU: its KVM fd, its thread and its exit handling. */
#ifndef PLUGVIRT_VCPU_H
#define PLUGVIRT_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "io_bus.h"
#include "pv_error.h"

struct vcpu;

/* What a vCPU needs from the VM that owns it. Passed down at creation so the vCPU does not
 * call back into vm.c (the VM creates, runs and parks its vCPUs). */
struct vcpu_host_ops {
    /* Blocks while the VM wants its vCPUs parked, marking `vcpu` parked meanwhile.
     * Returns false when the vCPU thread must end. */
    bool (*wait_runnable)(void *opaque, struct vcpu *vcpu);
    void (*guest_reset)(void *opaque);    /* triple fault or a KVM reset event */
    void (*guest_shutdown)(void *opaque); /* a KVM shutdown event */
    void (*internal_error)(void *opaque); /* KVM could not run the guest */
};

struct vcpu_host {
    int kvm_fd;
    int vm_fd;
    int mmap_size; /* KVM_GET_VCPU_MMAP_SIZE */
    unsigned max_vcpus;
    struct io_bus *io_bus; /* port and MMIO exits go here */
    const struct vcpu_host_ops *ops;
    void *opaque;
};

struct vcpu {
    struct vcpu_host host;
    unsigned index; /* also its APIC ID */
    int fd;
    struct kvm_run *run;
    pthread_t thread;
    bool thread_started;
    int thread_id; /* host TID, for query-cpus-fast */
    bool parked;   /* owned by host->ops->wait_runnable (the VM's state lock) */
    /* Saved at creation so system_reset can restore a freshly-created state. */
    struct kvm_lapic_state initial_lapic;
    struct kvm_sregs initial_sregs;
};

/* Creates the KVM vCPU, maps its kvm_run and sets its CPUID; no thread yet. */
struct vcpu *vcpu_create(const struct vcpu_host *host, unsigned index, struct pv_error *error);
void vcpu_destroy(struct vcpu *vcpu);
int vcpu_start_thread(struct vcpu *vcpu, struct pv_error *error);
/* Makes the vCPU leave KVM_RUN soon (signal + immediate_exit). Any thread. */
void vcpu_kick(struct vcpu *vcpu);
/* Restores the state the vCPU had right after creation (APs wait for INIT/SIPI again). */
int vcpu_reset_state(struct vcpu *vcpu, struct pv_error *error);

#endif

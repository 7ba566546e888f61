/* One virtual CPU: its KVM fd, its thread and its exit handling. */
#ifndef PLUGVIRT_VCPU_H
#define PLUGVIRT_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "pv_error.h"

struct vm;

struct vcpu {
    struct vm *vm;
    unsigned index; /* also its APIC ID */
    int fd;
    struct kvm_run *run;
    pthread_t thread;
    bool thread_started;
    int thread_id; /* host TID, for query-cpus-fast */
    bool parked;   /* protected by vm->state_lock */
    /* Saved at creation so system_reset can restore a freshly-created state. */
    struct kvm_lapic_state initial_lapic;
    struct kvm_sregs initial_sregs;
};

/* Creates the KVM vCPU, maps its kvm_run and sets its CPUID; no thread yet. */
struct vcpu *vcpu_create(struct vm *vm, unsigned index, struct pv_error *error);
void vcpu_destroy(struct vcpu *vcpu);
int vcpu_start_thread(struct vcpu *vcpu, struct pv_error *error);
/* Makes the vCPU leave KVM_RUN soon (signal + immediate_exit). Any thread. */
void vcpu_kick(struct vcpu *vcpu);
/* Restores the state the vCPU had right after creation (APs wait for INIT/SIPI again). */
int vcpu_reset_state(struct vcpu *vcpu, struct pv_error *error);

/* CPUID for this host: KVM's supported set minus what PVM cannot execute. */
int cpuid_setup_vcpu(int kvm_fd, int vcpu_fd, unsigned vcpu_index, unsigned max_vcpus,
                     struct pv_error *error);

#endif

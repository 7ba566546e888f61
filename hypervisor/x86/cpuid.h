/* CPUID for this host: KVM's supported set minus what PVM cannot execute. */
#ifndef PLUGVIRT_CPUID_H
#define PLUGVIRT_CPUID_H

#include "pv_error.h"

int cpuid_setup_vcpu(int kvm_fd, int vcpu_fd, unsigned vcpu_index, unsigned max_vcpus,
                     struct pv_error *error);

#endif

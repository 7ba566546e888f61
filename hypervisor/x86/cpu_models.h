/* QEMU's x86 CPU model names, for -cpu.
 *
 * plugvirt-vmm always gives guests KVM's supported CPUID minus what the PVM
 * backend cannot run (cpuid.c); it does not build a model's feature set. A
 * model here therefore records what QEMU's model of that name identifies as
 * (vendor, family/model/stepping, description), so that a command line
 * written for QEMU is accepted and the name can be reported back (QMP
 * query-cpus-fast, query-cpu-definitions); it does not change the CPUID the
 * guest sees. */
#ifndef PLUGVIRT_CPU_MODELS_H
#define PLUGVIRT_CPU_MODELS_H

#include <stdbool.h>
#include <stdio.h>

enum cpu_vendor {
    CPU_VENDOR_HOST = 0, /* whatever the host CPU is */
    CPU_VENDOR_INTEL,
    CPU_VENDOR_AMD,
};

struct cpu_model {
    const char *name;        /* QEMU's spelling, matched case-sensitively as QEMU does */
    const char *description; /* shown by -cpu help */
    enum cpu_vendor vendor;
    unsigned family, model, stepping; /* QEMU's values; 0 for host/max/base */
    bool host_passthrough;            /* host, max: the host's CPUID as KVM offers it */
};

/* The model named `name`, or NULL. */
const struct cpu_model *cpu_model_find(const char *name);

/* All models, terminated by an entry with name == NULL. */
const struct cpu_model *cpu_model_table(void);

/* Writes the -cpu help text (one model per line). */
void cpu_model_print_help(FILE *output);

#endif

/* QEMU's x86 CPU model names; see cpu_models.h for what a model means here. */
#include "x86/cpu_models.h"

#include <string.h>

#define INTEL(name_, description_, family_, model_, stepping_)                                     \
    {                                                                                              \
        .name = name_, .description = description_, .vendor = CPU_VENDOR_INTEL, .family = family_, \
        .model = model_, .stepping = stepping_                                                     \
    }
#define AMD(name_, description_, family_, model_, stepping_)                                       \
    {                                                                                              \
        .name = name_, .description = description_, .vendor = CPU_VENDOR_AMD, .family = family_,   \
        .model = model_, .stepping = stepping_                                                     \
    }

/* Family/model/stepping are the values QEMU's models of the same name report. The -IBRS,
 * -IBPB and -noTSX variants differ from their base model only in feature flags, which
 * KVM's supported CPUID decides here. */
static const struct cpu_model models[] = {
    {.name = "host", .description = "the host CPU as KVM offers it", .host_passthrough = true},
    {.name = "max",
     .description = "all features KVM supports (same as host)",
     .host_passthrough = true},
    {.name = "base",
     .description = "QEMU's featureless base model (here: the features KVM offers)"},
    AMD("qemu64", "QEMU Virtual CPU (64-bit)", 15, 107, 1),
    INTEL("kvm64", "Common KVM processor", 15, 6, 1),
    INTEL("Nehalem", "Intel Core i7 9xx (Nehalem Class Core i7)", 6, 26, 3),
    INTEL("Nehalem-IBRS", "Intel Core i7 9xx (Nehalem Core i7, IBRS update)", 6, 26, 3),
    INTEL("Westmere", "Westmere E56xx/L56xx/X56xx (Nehalem-C)", 6, 44, 1),
    INTEL("Westmere-IBRS", "Westmere E56xx/L56xx/X56xx (IBRS update)", 6, 44, 1),
    INTEL("SandyBridge", "Intel Xeon E312xx (Sandy Bridge)", 6, 42, 1),
    INTEL("SandyBridge-IBRS", "Intel Xeon E312xx (Sandy Bridge, IBRS update)", 6, 42, 1),
    INTEL("IvyBridge", "Intel Xeon E3-12xx v2 (Ivy Bridge)", 6, 58, 9),
    INTEL("IvyBridge-IBRS", "Intel Xeon E3-12xx v2 (Ivy Bridge, IBRS)", 6, 58, 9),
    INTEL("Haswell", "Intel Core Processor (Haswell)", 6, 60, 4),
    INTEL("Haswell-IBRS", "Intel Core Processor (Haswell, IBRS)", 6, 60, 4),
    INTEL("Haswell-noTSX", "Intel Core Processor (Haswell, no TSX)", 6, 60, 4),
    INTEL("Haswell-noTSX-IBRS", "Intel Core Processor (Haswell, no TSX, IBRS)", 6, 60, 4),
    INTEL("Broadwell", "Intel Core Processor (Broadwell)", 6, 61, 2),
    INTEL("Broadwell-IBRS", "Intel Core Processor (Broadwell, IBRS)", 6, 61, 2),
    INTEL("Broadwell-noTSX", "Intel Core Processor (Broadwell, no TSX)", 6, 61, 2),
    INTEL("Broadwell-noTSX-IBRS", "Intel Core Processor (Broadwell, no TSX, IBRS)", 6, 61, 2),
    INTEL("Skylake-Client", "Intel Core Processor (Skylake)", 6, 94, 3),
    INTEL("Skylake-Client-IBRS", "Intel Core Processor (Skylake, IBRS)", 6, 94, 3),
    INTEL("Skylake-Client-noTSX-IBRS", "Intel Core Processor (Skylake, IBRS, no TSX)", 6, 94, 3),
    INTEL("Skylake-Server", "Intel Xeon Processor (Skylake)", 6, 85, 4),
    INTEL("Skylake-Server-IBRS", "Intel Xeon Processor (Skylake, IBRS)", 6, 85, 4),
    INTEL("Skylake-Server-noTSX-IBRS", "Intel Xeon Processor (Skylake, IBRS, no TSX)", 6, 85, 4),
    INTEL("Cascadelake-Server", "Intel Xeon Processor (Cascadelake)", 6, 85, 6),
    INTEL("Cascadelake-Server-noTSX", "Intel Xeon Processor (Cascadelake, no TSX)", 6, 85, 6),
    INTEL("Icelake-Server", "Intel Xeon Processor (Icelake)", 6, 134, 0),
    INTEL("Icelake-Server-noTSX", "Intel Xeon Processor (Icelake, no TSX)", 6, 134, 0),
    AMD("EPYC", "AMD EPYC Processor", 23, 1, 2),
    AMD("EPYC-IBPB", "AMD EPYC Processor (with IBPB)", 23, 1, 2),
    AMD("EPYC-Rome", "AMD EPYC-Rome Processor", 23, 49, 0),
    AMD("EPYC-Milan", "AMD EPYC-Milan Processor", 25, 1, 1),
    {.name = NULL},
};

const struct cpu_model *cpu_model_find(const char *name)
{
    if (!name)
        return NULL;
    for (const struct cpu_model *model = models; model->name; model++)
        if (strcmp(model->name, name) == 0)
            return model;
    return NULL;
}

const struct cpu_model *cpu_model_table(void)
{
    return models;
}

void cpu_model_print_help(FILE *output)
{
    fprintf(output, "Available CPUs:\n");
    for (const struct cpu_model *model = models; model->name; model++)
        fprintf(output, "x86 %-26s %s\n", model->name, model->description);
    fprintf(output, "\nEvery model runs with the CPUID features KVM supports on this host;\n"
                    "the model name only sets what the VM reports, and feature flags\n"
                    "(+feature, -feature, feature=on|off) are accepted but not applied.\n");
}

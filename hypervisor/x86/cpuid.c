/* CPUID for guests on this host.
 *
 * Start from KVM_GET_SUPPORTED_CPUID and hide what the PVM backend cannot
 * run at guest CPL0 (research/pvm-kvm-findings.md, instruction matrix): a
 * guest kernel that sees a feature uses it in its own code (alternatives,
 * crypto, xsave context switching) and then dies on an emulation failure.
 *
 * Measured on this host's kvm-pvm: CPUID executed at guest CPL0 returns our leaf 1 ECX OR'd
 * with host bits (0x76d81203 here: XSAVE, AVX, SSE4.x, POPCNT...), so these masks cannot hide
 * XSAVE from a kernel there; Linux needs `noxsave` on its command line (tests/linux does
 * that). On a VMX/SVM host the masks take effect. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "x86/cpuid.h"

#define CPUID_MAX_ENTRIES 256

struct cpuid_mask {
    uint32_t function;
    int ecx_bits_index;          /* unused index marker: -1 = any index */
    uint32_t eax, ebx, ecx, edx; /* bits to clear */
};

#define BIT(n) (1u << (n))

static const struct cpuid_mask pvm_masks[] = {
    /* Leaf 1: PCLMULQDQ, SSSE3, FMA, CX16 (cmpxchg16b fails), PCID, SSE4.1, SSE4.2 (crc32
     * fails), MOVBE (#UD), POPCNT (fails), AES, XSAVE, OSXSAVE, AVX, F16C. */
    {1, -1, 0, 0,
     BIT(1) | BIT(9) | BIT(12) | BIT(13) | BIT(17) | BIT(19) | BIT(20) | BIT(22) | BIT(23) |
         BIT(25) | BIT(26) | BIT(27) | BIT(28) | BIT(29),
     0},
    /* Leaf 7.0: BMI1, AVX2, BMI2, INVPCID, AVX512*, ADX, SMAP, SHA; ECX: AVX512 VBMI, PKU,
     * OSPKE, VBMI2, GFNI, VAES, VPCLMULQDQ, AVX512 VNNI/BITALG/VPOPCNTDQ, RDPID; EDX: AVX512
     * 4VNNIW/4FMAPS, AMX, AVX512 FP16. */
    {7, 0, 0,
     BIT(3) | BIT(5) | BIT(8) | BIT(10) | BIT(16) | BIT(17) | BIT(19) | BIT(20) | BIT(21) |
         BIT(26) | BIT(27) | BIT(28) | BIT(29) | BIT(30) | BIT(31),
     BIT(1) | BIT(3) | BIT(4) | BIT(6) | BIT(8) | BIT(9) | BIT(10) | BIT(11) | BIT(12) | BIT(14) |
         BIT(22),
     BIT(2) | BIT(3) | BIT(22) | BIT(23) | BIT(24) | BIT(25)},
    /* Leaf 7.1: AVX-VNNI, AVX512 BF16. */
    {7, 1, BIT(4) | BIT(5), 0, 0, 0},
    /* Extended leaf 1: LZCNT/ABM (wrong results), SSE4a, XOP, FMA4, TBM; EDX: 1 GiB pages
     * (#PF RSVD), RDTSCP (fails). */
    {0x80000001, -1, 0, 0, BIT(5) | BIT(6) | BIT(11) | BIT(16) | BIT(21), BIT(26) | BIT(27)},
};

static void apply_masks(struct kvm_cpuid_entry2 *entry)
{
    for (size_t i = 0; i < sizeof(pvm_masks) / sizeof(pvm_masks[0]); i++) {
        const struct cpuid_mask *mask = &pvm_masks[i];
        if (mask->function != entry->function)
            continue;
        if (mask->ecx_bits_index >= 0 && (uint32_t)mask->ecx_bits_index != entry->index)
            continue;
        entry->eax &= ~mask->eax;
        entry->ebx &= ~mask->ebx;
        entry->ecx &= ~mask->ecx;
        entry->edx &= ~mask->edx;
    }
}

int cpuid_setup_vcpu(int kvm_fd, int vcpu_fd, unsigned vcpu_index, unsigned max_vcpus,
                     struct pv_error *error)
{
    size_t bytes = sizeof(struct kvm_cpuid2) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *cpuid = calloc(1, bytes);
    if (!cpuid)
        return pv_error_set(error, -ENOMEM, "out of memory for CPUID");
    cpuid->nent = CPUID_MAX_ENTRIES;
    if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
        int rc = -errno;
        free(cpuid);
        return pv_error_set_errno(error, rc, "KVM_GET_SUPPORTED_CPUID failed");
    }
    for (uint32_t i = 0; i < cpuid->nent; i++) {
        struct kvm_cpuid_entry2 *entry = &cpuid->entries[i];
        apply_masks(entry);
        switch (entry->function) {
        case 1:
            /* Initial APIC ID, logical processor count, HTT, hypervisor present. */
            entry->ebx = (entry->ebx & 0x0000ffffu) | (vcpu_index << 24) |
                         ((max_vcpus > 255 ? 255 : max_vcpus) << 16);
            entry->ecx |= BIT(31);
            if (max_vcpus > 1)
                entry->edx |= BIT(28);
            break;
        case 0xa: /* no PMU: PVM does not virtualise it */
            entry->eax = entry->ebx = entry->ecx = entry->edx = 0;
            break;
        case 0xd: /* XSAVE is hidden, so is its enumeration */
            entry->eax = entry->ebx = entry->ecx = entry->edx = 0;
            break;
        case 0xb:
        case 0x1f:
            entry->edx = vcpu_index; /* x2APIC ID */
            break;
        default:
            break;
        }
    }
    int rc = 0;
    if (ioctl(vcpu_fd, KVM_SET_CPUID2, cpuid) < 0)
        rc = pv_error_set_errno(error, -errno, "KVM_SET_CPUID2 failed for vCPU %u", vcpu_index);
    free(cpuid);
    return rc;
}

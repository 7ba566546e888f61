/* boot_load (files → guest RAM) and the boot vCPU's 64-bit entry state. */
#include "boot/boot.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot/boot_bzimage.h"
#include "boot/boot_elf.h"
#include "boot/boot_params.h"
#include "pv_log.h"
#include "vm.h"

#define PAGE_SIZE 4096ULL
#define PAGE_PRESENT 0x1ULL
#define PAGE_WRITABLE 0x2ULL
#define PAGE_LARGE 0x80ULL /* 2 MiB page in a PD entry; no 1 GiB pages: they fault on PVM */
#define PAGE_TABLE_ENTRIES 512
#define IDENTITY_MAPPED_GIB 4

/* Descriptors (base 0, limit 4 GiB). */
#define GDT_CODE64 0x00af9b000000ffffULL /* P, DPL0, code exec/read accessed, L, G */
#define GDT_DATA 0x00cf93000000ffffULL   /* P, DPL0, data read/write accessed, D/B, G */
#define TSS_LIMIT 0x67
#define GDT_TSS64_LOW (0x00008b0000000000ULL | TSS_LIMIT) /* P, busy 64-bit TSS, base 0 */

#define CR0_PE 0x1ULL
#define CR0_MP 0x2ULL
#define CR0_ET 0x10ULL
#define CR0_NE 0x20ULL
#define CR0_WP 0x10000ULL
#define CR0_PG 0x80000000ULL
#define CR4_PAE 0x20ULL
#define CR4_OSFXSR 0x200ULL
#define CR4_OSXMMEXCPT 0x400ULL
#define EFER_LME 0x100ULL
#define EFER_LMA 0x400ULL

#define MSR_IA32_TSC 0x10
#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_IA32_MISC_ENABLE_FAST_STRING 0x1ULL
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_MTRR_ENABLE 0x800ULL
#define MSR_MTRR_TYPE_WRITE_BACK 0x6ULL
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102

#define FPU_CONTROL_WORD_DEFAULT 0x37f
#define MXCSR_DEFAULT 0x1f80
#define RFLAGS_RESERVED_ONE 0x2

int boot_kernel_load(const struct boot_memory *memory, const uint8_t *image, size_t image_size,
                     const char *name, struct boot_kernel *kernel, struct pv_error *error)
{
    if (image_size >= 4 && memcmp(image, "\177ELF", 4) == 0)
        return boot_elf_load(memory, image, image_size, name, kernel, error);
    uint32_t magic = 0;
    if (image_size >= BOOT_PARAMS_HEADER + sizeof(magic))
        memcpy(&magic, image + BOOT_PARAMS_HEADER, sizeof(magic));
    if (magic == BOOT_HEADER_MAGIC)
        return boot_bzimage_load(memory, image, image_size, name, kernel, error);
    return pv_error_set(error, -ENOEXEC, "%s is neither an ELF64 kernel nor a bzImage", name);
}

int boot_write_page_tables(const struct boot_memory *memory, struct pv_error *error)
{
    const uint64_t pml4_address = VM_BOOT_PML4_ADDRESS;
    const uint64_t pdpt_address = pml4_address + PAGE_SIZE;
    const uint64_t pd_address = pdpt_address + PAGE_SIZE;
    const uint64_t total = (2 + IDENTITY_MAPPED_GIB) * PAGE_SIZE;
    uint8_t *tables = boot_memory_pointer(memory, pml4_address, total);
    if (!tables)
        return pv_error_set(error, -EINVAL, "the boot page tables are not in guest RAM");
    memset(tables, 0, total);
    uint64_t *pml4 = (uint64_t *)tables;
    uint64_t *pdpt = (uint64_t *)(tables + PAGE_SIZE);
    uint64_t *pd = (uint64_t *)(tables + 2 * PAGE_SIZE);
    pml4[0] = pdpt_address | PAGE_PRESENT | PAGE_WRITABLE;
    for (unsigned gib = 0; gib < IDENTITY_MAPPED_GIB; gib++) {
        pdpt[gib] = (pd_address + gib * PAGE_SIZE) | PAGE_PRESENT | PAGE_WRITABLE;
        for (unsigned i = 0; i < PAGE_TABLE_ENTRIES; i++) {
            uint64_t address = ((uint64_t)gib << 30) | ((uint64_t)i << 21);
            pd[gib * PAGE_TABLE_ENTRIES + i] = address | PAGE_PRESENT | PAGE_WRITABLE | PAGE_LARGE;
        }
    }
    return 0;
}

int boot_write_gdt(const struct boot_memory *memory, struct pv_error *error)
{
    uint64_t gdt[BOOT_GDT_ENTRIES] = {
        0,             /* null */
        GDT_CODE64,    /* 0x08: what Firecracker uses as CS */
        GDT_CODE64,    /* 0x10: __BOOT_CS */
        GDT_DATA,      /* 0x18: __BOOT_DS */
        GDT_TSS64_LOW, /* 0x20: TSS (needed for a valid TR on VM entry) */
        0,             /* 0x28: upper half of the TSS descriptor (base 63:32) */
    };
    uint8_t *target = boot_memory_pointer(memory, VM_BOOT_GDT_ADDRESS, sizeof(gdt));
    if (!target)
        return pv_error_set(error, -EINVAL, "the boot GDT is not in guest RAM");
    memcpy(target, gdt, sizeof(gdt));
    return 0;
}

static int open_regular_file(const char *path, const char *what, uint64_t *size,
                             struct pv_error *error)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pv_error_set_errno(error, -errno, "cannot open %s %s", what, path);
    struct stat status;
    if (fstat(fd, &status) < 0) {
        int rc = pv_error_set_errno(error, -errno, "cannot stat %s %s", what, path);
        close(fd);
        return rc;
    }
    if (!S_ISREG(status.st_mode)) {
        close(fd);
        return pv_error_set(error, -EINVAL, "%s %s is not a regular file", what, path);
    }
    *size = (uint64_t)status.st_size;
    return fd;
}

static int read_fully(int fd, uint8_t *buffer, uint64_t size, const char *what, const char *path,
                      struct pv_error *error)
{
    uint64_t done = 0;
    while (done < size) {
        size_t chunk = size - done > (1u << 30) ? (1u << 30) : (size_t)(size - done);
        ssize_t got = pread(fd, buffer + done, chunk, (off_t)done);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return pv_error_set_errno(error, -errno, "cannot read %s %s", what, path);
        }
        if (got == 0)
            return pv_error_set(error, -EIO, "%s %s shrank while being read", what, path);
        done += (uint64_t)got;
    }
    return 0;
}

static int load_kernel_file(const struct boot_memory *memory, const char *path,
                            struct boot_kernel *kernel, struct pv_error *error)
{
    uint64_t size;
    int fd = open_regular_file(path, "kernel", &size, error);
    if (fd < 0)
        return fd;
    int rc;
    if (size == 0) {
        rc = pv_error_set(error, -ENOEXEC, "kernel %s is empty", path);
        goto out;
    }
    if (size > memory->lowmem_size + memory->highmem_size) {
        rc = pv_error_set(error, -EFBIG, "kernel %s (%llu MiB) is larger than guest RAM", path,
                          (unsigned long long)(size >> 20));
        goto out;
    }
    uint8_t *image = malloc(size);
    if (!image) {
        rc = pv_error_set(error, -ENOMEM, "out of memory reading kernel %s", path);
        goto out;
    }
    rc = read_fully(fd, image, size, "kernel", path, error);
    if (rc == 0)
        rc = boot_kernel_load(memory, image, size, path, kernel, error);
    free(image);
out:
    close(fd);
    return rc;
}

static int load_initrd_file(const struct boot_memory *memory, const struct boot_kernel *kernel,
                            const char *path, uint64_t *address, uint64_t *size,
                            struct pv_error *error)
{
    int fd = open_regular_file(path, "initrd", size, error);
    if (fd < 0)
        return fd;
    if (*size == 0) { /* an empty initrd is no initrd */
        *address = 0;
        close(fd);
        return 0;
    }
    int rc = boot_place_initrd(memory, kernel, *size, path, address, error);
    if (rc == 0) {
        uint8_t *target = boot_memory_pointer(memory, *address, *size);
        rc = target ? read_fully(fd, target, *size, "initrd", path, error)
                    : pv_error_set(error, -ENOMEM, "initrd %s is not in guest RAM", path);
    }
    close(fd);
    return rc;
}

int boot_load(const struct boot_memory *memory, const char *kernel_path, const char *initrd_path,
              const char *cmdline, struct boot_info *info, struct pv_error *error)
{
    if (!kernel_path)
        return pv_error_set(error, -EINVAL, "no kernel to boot");
    if (!cmdline)
        cmdline = "";
    if (memory->lowmem_size < BOOT_KERNEL_LOAD_ADDRESS)
        return pv_error_set(error, -EINVAL, "guest RAM is too small for direct kernel boot");

    struct boot_kernel kernel;
    int rc = load_kernel_file(memory, kernel_path, &kernel, error);
    if (rc < 0)
        return rc;

    size_t cmdline_length = strlen(cmdline);
    if (cmdline_length > kernel.cmdline_size_max)
        return pv_error_set(error, -E2BIG,
                            "the kernel command line is %zu bytes; %s accepts at most %u",
                            cmdline_length, kernel_path, kernel.cmdline_size_max);
    char *cmdline_target =
        boot_memory_pointer(memory, VM_BOOT_CMDLINE_ADDRESS, VM_BOOT_CMDLINE_MAX);
    if (!cmdline_target)
        return pv_error_set(error, -EINVAL, "the command line area is not in guest RAM");
    if (!memory->ram_is_zero)
        memset(cmdline_target, 0, VM_BOOT_CMDLINE_MAX);
    memcpy(cmdline_target, cmdline, cmdline_length);
    cmdline_target[cmdline_length] = '\0';

    uint64_t initrd_address = 0, initrd_size = 0;
    if (initrd_path) {
        rc = load_initrd_file(memory, &kernel, initrd_path, &initrd_address, &initrd_size, error);
        if (rc < 0)
            return rc;
    }

    uint8_t *zero_page = boot_memory_pointer(memory, VM_BOOT_PARAMS_ADDRESS, BOOT_PARAMS_SIZE);
    if (!zero_page)
        return pv_error_set(error, -EINVAL, "the zero page is not in guest RAM");
    struct boot_params_config params = {
        .kernel = &kernel,
        .memory = memory,
        .cmdline_address = VM_BOOT_CMDLINE_ADDRESS,
        .cmdline_length = cmdline_length,
        .initrd_address = initrd_address,
        .initrd_size = initrd_size,
        .acpi_rsdp_address = VM_ACPI_TABLES_ADDRESS, /* the RSDP comes first there */
    };
    unsigned e820_entries = boot_params_build(zero_page, &params);
    if ((rc = boot_write_gdt(memory, error)) < 0 ||
        (rc = boot_write_page_tables(memory, error)) < 0)
        return rc;

    if (info) {
        memset(info, 0, sizeof(*info));
        info->entry = kernel.entry;
        info->kind = kernel.kind;
        info->protocol_version = kernel.protocol_version;
        info->kernel_start = kernel.load_start;
        info->kernel_end = kernel.load_end;
        info->initrd_address = initrd_address;
        info->initrd_size = initrd_size;
        info->cmdline_address = VM_BOOT_CMDLINE_ADDRESS;
        info->cmdline_length = cmdline_length;
        info->e820_entries = e820_entries;
    }
    pv_log_debug("boot: %s %s, entry 0x%llx, kernel [0x%llx, 0x%llx), initrd %llu bytes at 0x%llx",
                 kernel.kind == BOOT_KERNEL_BZIMAGE ? "bzImage" : "ELF64", kernel_path,
                 (unsigned long long)kernel.entry, (unsigned long long)kernel.load_start,
                 (unsigned long long)kernel.load_end, (unsigned long long)initrd_size,
                 (unsigned long long)initrd_address);
    return 0;
}

static void set_flat_segment(struct kvm_segment *segment, uint16_t selector, uint8_t type,
                             bool code64)
{
    memset(segment, 0, sizeof(*segment));
    segment->base = 0;
    segment->limit = 0xffffffff;
    segment->selector = selector;
    segment->type = type;
    segment->present = 1;
    segment->dpl = 0;
    segment->db = code64 ? 0 : 1; /* L=1 requires D=0 */
    segment->s = 1;
    segment->l = code64 ? 1 : 0;
    segment->g = 1;
}

static int set_special_registers(int vcpu_fd, struct pv_error *error)
{
    struct kvm_sregs sregs;
    if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
        return pv_error_set_errno(error, -errno, "KVM_GET_SREGS failed");

    set_flat_segment(&sregs.cs, BOOT_GDT_CODE_SELECTOR, 0xb, true);
    set_flat_segment(&sregs.ds, BOOT_GDT_DATA_SELECTOR, 0x3, false);
    sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;

    memset(&sregs.tr, 0, sizeof(sregs.tr));
    sregs.tr.selector = BOOT_GDT_TSS_SELECTOR;
    sregs.tr.limit = TSS_LIMIT;
    sregs.tr.type = 0xb; /* busy 64-bit TSS */
    sregs.tr.present = 1;

    sregs.gdt.base = VM_BOOT_GDT_ADDRESS;
    sregs.gdt.limit = BOOT_GDT_ENTRIES * 8 - 1;
    /* No IDT: the kernel installs its own before enabling interrupts. */
    sregs.idt.base = 0;
    sregs.idt.limit = 0;

    sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    sregs.cr3 = VM_BOOT_PML4_ADDRESS;
    sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
    sregs.efer = EFER_LME | EFER_LMA;
    if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
        return pv_error_set_errno(error, -errno, "KVM_SET_SREGS (64-bit boot state) failed");
    return 0;
}

static int set_general_registers(int vcpu_fd, uint64_t entry, struct pv_error *error)
{
    struct kvm_regs regs;
    memset(&regs, 0, sizeof(regs));
    regs.rflags = RFLAGS_RESERVED_ONE;
    regs.rip = entry;
    regs.rsp = VM_BOOT_STACK_TOP;
    regs.rbp = VM_BOOT_STACK_TOP;
    regs.rsi = VM_BOOT_PARAMS_ADDRESS;
    if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
        return pv_error_set_errno(error, -errno, "KVM_SET_REGS failed");
    return 0;
}

static int set_fpu(int vcpu_fd, struct pv_error *error)
{
    struct kvm_fpu fpu;
    memset(&fpu, 0, sizeof(fpu));
    fpu.fcw = FPU_CONTROL_WORD_DEFAULT;
    fpu.mxcsr = MXCSR_DEFAULT;
    if (ioctl(vcpu_fd, KVM_SET_FPU, &fpu) < 0)
        return pv_error_set_errno(error, -errno, "KVM_SET_FPU failed");
    return 0;
}

/* Firecracker's boot MSRs. KVM_SET_MSRS stops at the first MSR it refuses
 * and returns how many it set; a refused one is logged and skipped, since
 * none is essential to the kernel (it programs them itself). */
static int set_msrs(int vcpu_fd, struct pv_error *error)
{
    static const struct {
        uint32_t index;
        uint64_t value;
    } boot_msrs[] = {
        {MSR_IA32_SYSENTER_CS, 0},
        {MSR_IA32_SYSENTER_ESP, 0},
        {MSR_IA32_SYSENTER_EIP, 0},
        {MSR_STAR, 0},
        {MSR_CSTAR, 0},
        {MSR_KERNEL_GS_BASE, 0},
        {MSR_SYSCALL_MASK, 0},
        {MSR_LSTAR, 0},
        {MSR_IA32_TSC, 0},
        {MSR_IA32_MISC_ENABLE, MSR_IA32_MISC_ENABLE_FAST_STRING},
        {MSR_MTRR_DEF_TYPE, MSR_MTRR_ENABLE | MSR_MTRR_TYPE_WRITE_BACK},
    };
    const unsigned count = sizeof(boot_msrs) / sizeof(boot_msrs[0]);
    struct kvm_msrs *msrs =
        calloc(1, sizeof(struct kvm_msrs) + count * sizeof(struct kvm_msr_entry));
    if (!msrs)
        return pv_error_set(error, -ENOMEM, "out of memory for the boot MSRs");

    int rc = 0;
    unsigned next = 0;
    while (next < count) {
        msrs->nmsrs = count - next;
        for (unsigned i = next; i < count; i++) {
            msrs->entries[i - next].index = boot_msrs[i].index;
            msrs->entries[i - next].data = boot_msrs[i].value;
        }
        int set = ioctl(vcpu_fd, KVM_SET_MSRS, msrs);
        if (set < 0) {
            rc = pv_error_set_errno(error, -errno, "KVM_SET_MSRS failed");
            break;
        }
        next += (unsigned)set;
        if (next < count) {
            pv_log_warning("boot: KVM refused MSR 0x%x; the kernel will set it itself",
                           boot_msrs[next].index);
            next++;
        }
    }
    free(msrs);
    return rc;
}

int boot_setup_vcpu(int vcpu_fd, uint64_t entry, struct pv_error *error)
{
    int rc;
    if ((rc = set_special_registers(vcpu_fd, error)) < 0 ||
        (rc = set_general_registers(vcpu_fd, entry, error)) < 0 ||
        (rc = set_fpu(vcpu_fd, error)) < 0 || (rc = set_msrs(vcpu_fd, error)) < 0)
        return rc;
    return 0;
}

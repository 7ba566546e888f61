/* Direct kernel boot without KVM: e820, zero page, page tables, GDT, ELF and
 * bzImage loading into a plain buffer, and every rejected input. */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "boot/boot.h"
#include "boot/boot_bzimage.h"
#include "boot/boot_elf.h"
#include "boot/boot_params.h"
#include "boot/boot_e820.h"
#include "vm.h"

#define MIB (1ULL << 20)
#define GIB (1ULL << 30)

/* ---- helpers -------------------------------------------------------------- */

static struct boot_memory test_memory;
static uint64_t test_memory_bytes;

static void map_ram(uint64_t lowmem, uint64_t highmem)
{
    test_memory_bytes = lowmem + highmem;
    void *ram = mmap(NULL, test_memory_bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    cr_assert_neq(ram, MAP_FAILED);
    test_memory.ram = ram;
    test_memory.lowmem_size = lowmem;
    test_memory.highmem_size = highmem;
}

static void setup_128(void)
{
    map_ram(128 * MIB, 0);
}

static void teardown_ram(void)
{
    munmap(test_memory.ram, test_memory_bytes);
}

static char temp_paths[4][64];
static unsigned temp_count;

static const char *write_temp_file(const void *data, size_t size)
{
    cr_assert_lt(temp_count, 4);
    char *path = temp_paths[temp_count++];
    snprintf(path, sizeof(temp_paths[0]), "/tmp/test_boot.XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, data, size), (ssize_t)size);
    close(fd);
    return path;
}

static void remove_temp_files(void)
{
    for (unsigned i = 0; i < temp_count; i++)
        unlink(temp_paths[i]);
    temp_count = 0;
}

static void teardown_all(void)
{
    remove_temp_files();
    teardown_ram();
}

static uint8_t read8(const uint8_t *base, uint64_t offset)
{
    return base[offset];
}

static uint32_t read32(const uint8_t *base, uint64_t offset)
{
    uint32_t value;
    memcpy(&value, base + offset, sizeof(value));
    return value;
}

static uint64_t read64(const uint8_t *base, uint64_t offset)
{
    uint64_t value;
    memcpy(&value, base + offset, sizeof(value));
    return value;
}

static void write16(uint8_t *base, uint64_t offset, uint16_t value)
{
    memcpy(base + offset, &value, sizeof(value));
}

static void write32(uint8_t *base, uint64_t offset, uint32_t value)
{
    memcpy(base + offset, &value, sizeof(value));
}

static void write64(uint8_t *base, uint64_t offset, uint64_t value)
{
    memcpy(base + offset, &value, sizeof(value));
}

/* A small ELF64 image: a text segment and a data segment with bss. */
#define TEST_TEXT_PADDR 0x200000ULL
#define TEST_DATA_PADDR 0x201000ULL
#define TEST_TEXT_SIZE 0x100
#define TEST_DATA_FILE_SIZE 0x80
#define TEST_DATA_MEM_SIZE 0x3000
#define TEST_ELF_SIZE 0x2000

struct test_elf {
    uint8_t bytes[TEST_ELF_SIZE];
    Elf64_Ehdr *header;
    Elf64_Phdr *segments;
};

static void build_elf(struct test_elf *elf, uint64_t text_vaddr, uint64_t entry)
{
    memset(elf->bytes, 0, sizeof(elf->bytes));
    Elf64_Ehdr header = {0};
    memcpy(header.e_ident, ELFMAG, SELFMAG);
    header.e_ident[EI_CLASS] = ELFCLASS64;
    header.e_ident[EI_DATA] = ELFDATA2LSB;
    header.e_ident[EI_VERSION] = EV_CURRENT;
    header.e_type = ET_EXEC;
    header.e_machine = EM_X86_64;
    header.e_version = EV_CURRENT;
    header.e_entry = entry;
    header.e_phoff = sizeof(Elf64_Ehdr);
    header.e_ehsize = sizeof(Elf64_Ehdr);
    header.e_phentsize = sizeof(Elf64_Phdr);
    header.e_phnum = 3;
    memcpy(elf->bytes, &header, sizeof(header));

    Elf64_Phdr segments[3] = {
        {.p_type = PT_LOAD,
         .p_flags = PF_R | PF_X,
         .p_offset = 0x1000,
         .p_vaddr = text_vaddr,
         .p_paddr = TEST_TEXT_PADDR,
         .p_filesz = TEST_TEXT_SIZE,
         .p_memsz = TEST_TEXT_SIZE,
         .p_align = 0x1000},
        {.p_type = PT_NOTE, .p_offset = 0x200, .p_filesz = 0x10, .p_memsz = 0x10},
        {.p_type = PT_LOAD,
         .p_flags = PF_R | PF_W,
         .p_offset = 0x1800,
         .p_vaddr = text_vaddr + (TEST_DATA_PADDR - TEST_TEXT_PADDR),
         .p_paddr = TEST_DATA_PADDR,
         .p_filesz = TEST_DATA_FILE_SIZE,
         .p_memsz = TEST_DATA_MEM_SIZE,
         .p_align = 0x1000},
    };
    memcpy(elf->bytes + sizeof(header), segments, sizeof(segments));
    memset(elf->bytes + 0x1000, 0xc3, TEST_TEXT_SIZE);
    memset(elf->bytes + 0x1800, 0x5a, TEST_DATA_FILE_SIZE);
    elf->header = (Elf64_Ehdr *)elf->bytes;
    elf->segments = (Elf64_Phdr *)(elf->bytes + sizeof(header));
}

/* A synthetic bzImage: 4 setup sectors + boot sector, then a payload. */
#define TEST_BZ_SETUP_SECTS 4
#define TEST_BZ_SETUP_SIZE ((TEST_BZ_SETUP_SECTS + 1) * 512)
#define TEST_BZ_PAYLOAD_SIZE 0x3000
#define TEST_BZ_SIZE (TEST_BZ_SETUP_SIZE + TEST_BZ_PAYLOAD_SIZE)
#define TEST_BZ_PREF_ADDRESS 0x1000000ULL
#define TEST_BZ_INIT_SIZE 0x800000U
#define TEST_BZ_CMDLINE_SIZE 2047

static void build_bzimage(uint8_t *image)
{
    memset(image, 0, TEST_BZ_SIZE);
    image[BOOT_PARAMS_SETUP_SECTS] = TEST_BZ_SETUP_SECTS;
    write16(image, BOOT_PARAMS_BOOT_FLAG, BOOT_FLAG_MAGIC);
    image[BOOT_PARAMS_JUMP] = 0xeb;
    image[BOOT_PARAMS_JUMP + 1] = 0x6a; /* header ends at 0x26c, as in Linux 5.5+ */
    write32(image, BOOT_PARAMS_HEADER, BOOT_HEADER_MAGIC);
    write16(image, BOOT_PARAMS_VERSION, 0x020f);
    image[BOOT_PARAMS_LOADFLAGS] = BOOT_LOADFLAG_LOADED_HIGH;
    write32(image, BOOT_PARAMS_CODE32_START, 0x100000);
    write32(image, BOOT_PARAMS_INITRD_ADDR_MAX, 0x7fffffff);
    write32(image, BOOT_PARAMS_KERNEL_ALIGNMENT, 0x200000);
    image[BOOT_PARAMS_RELOCATABLE_KERNEL] = 1;
    write16(image, BOOT_PARAMS_XLOADFLAGS, 0x7f);
    write32(image, BOOT_PARAMS_CMDLINE_SIZE, TEST_BZ_CMDLINE_SIZE);
    write64(image, BOOT_PARAMS_PREF_ADDRESS, TEST_BZ_PREF_ADDRESS);
    write32(image, BOOT_PARAMS_INIT_SIZE, TEST_BZ_INIT_SIZE);
    for (unsigned i = 0; i < TEST_BZ_PAYLOAD_SIZE; i++)
        image[TEST_BZ_SETUP_SIZE + i] = (uint8_t)(i * 7 + 1);
}

static uint64_t e820_ram_mib_ceiling(const struct boot_e820_entry *entries, unsigned count)
{
    uint64_t ram = 0;
    for (unsigned i = 0; i < count; i++)
        if (entries[i].type == BOOT_E820_RAM)
            ram += entries[i].size;
    return (ram + MIB - 1) / MIB;
}

static void assert_sorted_disjoint(const struct boot_e820_entry *entries, unsigned count)
{
    for (unsigned i = 1; i < count; i++)
        cr_assert_geq(entries[i].address, entries[i - 1].address + entries[i - 1].size,
                      "e820 entry %u overlaps or is out of order", i);
}

static void assert_error_contains(const struct pv_error *error, const char *text)
{
    cr_assert_lt(error->code, 0);
    cr_assert(strstr(error->message, text), "message '%s' lacks '%s'", error->message, text);
}

/* ---- e820 ----------------------------------------------------------------- */

Test(boot_e820, map_for_128_mib)
{
    struct boot_e820_entry entries[BOOT_PARAMS_E820_MAX];
    unsigned count = boot_e820_build(128 * MIB, 0, entries, BOOT_PARAMS_E820_MAX);
    cr_assert_eq(count, 4);
    cr_assert_eq(entries[0].address, 0);
    cr_assert_eq(entries[0].size, 0x9fc00);
    cr_assert_eq(entries[0].type, BOOT_E820_RAM);
    cr_assert_eq(entries[1].address, 0x9fc00);
    cr_assert_eq(entries[1].address + entries[1].size, 0x100000);
    cr_assert_eq(entries[1].type, BOOT_E820_RESERVED);
    cr_assert_eq(entries[2].address, 0x100000);
    cr_assert_eq(entries[2].address + entries[2].size, 128 * MIB);
    cr_assert_eq(entries[2].type, BOOT_E820_RAM);
    cr_assert_eq(entries[3].type, BOOT_E820_RESERVED);
    cr_assert_geq(entries[3].address, VM_LAPIC_ADDRESS + 0x1000);
    assert_sorted_disjoint(entries, count);
    cr_assert_eq(e820_ram_mib_ceiling(entries, count), 128);
}

Test(boot_e820, map_for_3_gib_has_no_highmem)
{
    struct boot_e820_entry entries[BOOT_PARAMS_E820_MAX];
    unsigned count = boot_e820_build(3 * GIB, 0, entries, BOOT_PARAMS_E820_MAX);
    assert_sorted_disjoint(entries, count);
    for (unsigned i = 0; i < count; i++) {
        cr_assert_lt(entries[i].address, VM_HIGHMEM_START);
        if (entries[i].type == BOOT_E820_RAM)
            cr_assert_leq(entries[i].address + entries[i].size, VM_PCI_HOLE_START,
                          "RAM must not reach into the PCI hole");
    }
    cr_assert_eq(e820_ram_mib_ceiling(entries, count), 3072);
}

Test(boot_e820, map_for_5_gib_puts_2_gib_above_4_gib)
{
    struct boot_e820_entry entries[BOOT_PARAMS_E820_MAX];
    unsigned count = boot_e820_build(3 * GIB, 2 * GIB, entries, BOOT_PARAMS_E820_MAX);
    assert_sorted_disjoint(entries, count);
    const struct boot_e820_entry *last = &entries[count - 1];
    cr_assert_eq(last->address, VM_HIGHMEM_START);
    cr_assert_eq(last->size, 2 * GIB);
    cr_assert_eq(last->type, BOOT_E820_RAM);
    /* Nothing in the PCI hole or over the IOAPIC/LAPIC is listed as RAM. */
    for (unsigned i = 0; i < count; i++) {
        if (entries[i].type != BOOT_E820_RAM)
            continue;
        uint64_t end = entries[i].address + entries[i].size;
        cr_assert(end <= VM_PCI_HOLE_START || entries[i].address >= VM_HIGHMEM_START);
    }
    cr_assert_eq(e820_ram_mib_ceiling(entries, count), 5120);
}

Test(boot_e820, respects_the_entry_limit)
{
    struct boot_e820_entry entries[2];
    cr_assert_eq(boot_e820_build(3 * GIB, 2 * GIB, entries, 2), 2);
}

/* ---- page tables and GDT --------------------------------------------------- */

/* Walks the 4-level tables the way the CPU does; returns the physical address
 * or UINT64_MAX when not mapped. Fails the test on a 1 GiB page. */
static uint64_t translate(const struct boot_memory *memory, uint64_t cr3, uint64_t virtual_address)
{
    const uint64_t address_mask = 0x000ffffffffff000ULL;
    uint64_t pml4e = read64(memory->ram, cr3 + ((virtual_address >> 39) & 511) * 8);
    if (!(pml4e & 1))
        return UINT64_MAX;
    uint64_t pdpte =
        read64(memory->ram, (pml4e & address_mask) + ((virtual_address >> 30) & 511) * 8);
    if (!(pdpte & 1))
        return UINT64_MAX;
    cr_assert_eq(pdpte & 0x80, 0, "1 GiB page used (faults on PVM)");
    cr_assert_eq(pdpte & 2, 2);
    uint64_t pde =
        read64(memory->ram, (pdpte & address_mask) + ((virtual_address >> 21) & 511) * 8);
    if (!(pde & 1))
        return UINT64_MAX;
    cr_assert_eq(pde & 0x80, 0x80, "expected 2 MiB pages");
    cr_assert_eq(pde & 2, 2, "not writable");
    return (pde & 0x000fffffffe00000ULL) | (virtual_address & 0x1fffff);
}

Test(boot_page_tables, identity_map_first_4_gib, .init = setup_128, .fini = teardown_ram)
{
    memset(test_memory.ram + VM_BOOT_PML4_ADDRESS, 0xee, 0x6000); /* stale data must go */
    cr_assert_eq(boot_write_page_tables(&test_memory, NULL), 0);
    const uint64_t samples[] = {0,          0x7000,     0x100000,   0x1234567,  0x7fffffff,
                                0xbfffffff, 0xc0000000, 0xfec00000, 0xfee00fff, 0xffffffff};
    for (unsigned i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
        cr_assert_eq(translate(&test_memory, VM_BOOT_PML4_ADDRESS, samples[i]), samples[i],
                     "0x%llx not identity-mapped", (unsigned long long)samples[i]);
    for (uint64_t address = 0; address < 4 * GIB; address += 2 * MIB)
        cr_assert_eq(translate(&test_memory, VM_BOOT_PML4_ADDRESS, address), address);
    cr_assert_eq(translate(&test_memory, VM_BOOT_PML4_ADDRESS, 4 * GIB), UINT64_MAX);
    cr_assert_eq(translate(&test_memory, VM_BOOT_PML4_ADDRESS, 1ULL << 39), UINT64_MAX);
    /* The tables fit in 0x9000..0xefff. */
    cr_assert_eq(read64(test_memory.ram, 0xf000), 0);
}

Test(boot_page_tables, gdt_has_linux_boot_selectors, .init = setup_128, .fini = teardown_ram)
{
    cr_assert_eq(boot_write_gdt(&test_memory, NULL), 0);
    const uint8_t *gdt = test_memory.ram + VM_BOOT_GDT_ADDRESS;
    cr_assert_eq(read64(gdt, 0), 0);
    for (unsigned selector = 0x08; selector <= BOOT_GDT_CODE_SELECTOR; selector += 8) {
        uint64_t code = read64(gdt, selector);
        cr_assert_eq((code >> 40) & 0xff, 0x9b, "code: present, DPL0, exec/read");
        cr_assert_eq((code >> 53) & 1, 1, "code: L=1");
        cr_assert_eq((code >> 54) & 1, 0, "code: D=0 with L=1");
    }
    uint64_t data = read64(gdt, BOOT_GDT_DATA_SELECTOR);
    cr_assert_eq((data >> 40) & 0xff, 0x93);
    uint64_t tss = read64(gdt, BOOT_GDT_TSS_SELECTOR);
    cr_assert_eq((tss >> 40) & 0x1f, 0x0b, "busy 64-bit TSS");
    cr_assert_eq((tss >> 47) & 1, 1);
}

/* ---- ELF loading ------------------------------------------------------------ */

Test(boot_elf, loads_segments_at_physical_addresses, .init = setup_128, .fini = teardown_ram)
{
    struct test_elf elf;
    build_elf(&elf, TEST_TEXT_PADDR, TEST_TEXT_PADDR + 0x10);
    memset(test_memory.ram + TEST_DATA_PADDR, 0xaa, TEST_DATA_MEM_SIZE + 0x100);
    struct boot_kernel kernel;
    struct pv_error error = {0};
    cr_assert_eq(
        boot_kernel_load(&test_memory, elf.bytes, sizeof(elf.bytes), "test.elf", &kernel, &error),
        0, "%s", error.message);
    cr_assert_eq(kernel.kind, BOOT_KERNEL_ELF64);
    cr_assert_eq(kernel.entry, TEST_TEXT_PADDR + 0x10);
    cr_assert_eq(kernel.load_start, TEST_TEXT_PADDR);
    cr_assert_eq(kernel.load_end, TEST_DATA_PADDR + TEST_DATA_MEM_SIZE);
    for (unsigned i = 0; i < TEST_TEXT_SIZE; i++)
        cr_assert_eq(test_memory.ram[TEST_TEXT_PADDR + i], 0xc3);
    for (unsigned i = 0; i < TEST_DATA_FILE_SIZE; i++)
        cr_assert_eq(test_memory.ram[TEST_DATA_PADDR + i], 0x5a);
    for (unsigned i = TEST_DATA_FILE_SIZE; i < TEST_DATA_MEM_SIZE; i++)
        cr_assert_eq(test_memory.ram[TEST_DATA_PADDR + i], 0, "bss not zeroed at +0x%x", i);
    cr_assert_eq(test_memory.ram[TEST_DATA_PADDR + TEST_DATA_MEM_SIZE], 0xaa,
                 "wrote past the segment");
}

Test(boot_elf, translates_a_virtual_entry_point, .init = setup_128, .fini = teardown_ram)
{
    /* Like vmlinux: linked at 0xffffffff81000000, loaded at p_paddr. */
    const uint64_t virtual_base = 0xffffffff81000000ULL;
    struct test_elf elf;
    build_elf(&elf, virtual_base, virtual_base + 0x40);
    struct boot_kernel kernel;
    struct pv_error error = {0};
    cr_assert_eq(
        boot_elf_load(&test_memory, elf.bytes, sizeof(elf.bytes), "vmlinux", &kernel, &error), 0,
        "%s", error.message);
    cr_assert_eq(kernel.entry, TEST_TEXT_PADDR + 0x40);
}

Test(boot_elf, rejects_an_entry_outside_the_segments, .init = setup_128, .fini = teardown_ram)
{
    struct test_elf elf;
    build_elf(&elf, TEST_TEXT_PADDR, 0x5000000);
    struct boot_kernel kernel;
    struct pv_error error = {0};
    cr_assert_eq(boot_elf_load(&test_memory, elf.bytes, sizeof(elf.bytes), "k", &kernel, &error),
                 -ENOEXEC);
    assert_error_contains(&error, "entry point 0x5000000");
}

static void expect_elf_error(struct test_elf *elf, size_t size, const char *text)
{
    struct boot_kernel kernel;
    struct pv_error error = {0};
    memset(test_memory.ram + TEST_TEXT_PADDR, 0x11, 0x10);
    int rc = boot_kernel_load(&test_memory, elf->bytes, size, "bad.elf", &kernel, &error);
    cr_assert_lt(rc, 0);
    assert_error_contains(&error, text);
    assert_error_contains(&error, "bad.elf");
    cr_assert_eq(test_memory.ram[TEST_TEXT_PADDR], 0x11, "a rejected ELF was partly loaded");
}

Test(boot_elf, rejects_bad_images, .init = setup_128, .fini = teardown_ram)
{
    struct test_elf elf;

    build_elf(&elf, TEST_TEXT_PADDR, TEST_TEXT_PADDR);
    expect_elf_error(&elf, 40, "truncated ELF header");
    expect_elf_error(&elf, sizeof(Elf64_Ehdr) + 10, "program headers end beyond the file");
    expect_elf_error(&elf, 0x1820, "is truncated: segment 2");

    build_elf(&elf, TEST_TEXT_PADDR, TEST_TEXT_PADDR);
    elf.bytes[EI_CLASS] = ELFCLASS32;
    expect_elf_error(&elf, sizeof(elf.bytes), "32-bit ELF");

    build_elf(&elf, TEST_TEXT_PADDR, TEST_TEXT_PADDR);
    elf.header->e_machine = EM_AARCH64;
    expect_elf_error(&elf, sizeof(elf.bytes), "not x86-64");

    build_elf(&elf, TEST_TEXT_PADDR, TEST_TEXT_PADDR);
    elf.segments[2].p_paddr = 128 * MIB - 0x1000; /* bss runs past the end of RAM */
    expect_elf_error(&elf, sizeof(elf.bytes), "outside guest RAM");

    build_elf(&elf, TEST_TEXT_PADDR, TEST_TEXT_PADDR);
    elf.segments[2].p_paddr = 0xfffffffffffff000ULL;
    expect_elf_error(&elf, sizeof(elf.bytes), "wraps around");

    build_elf(&elf, TEST_TEXT_PADDR, TEST_TEXT_PADDR);
    elf.segments[2].p_paddr = 0x8000; /* over the zero page and page tables */
    expect_elf_error(&elf, sizeof(elf.bytes), "below 1 MiB");

    build_elf(&elf, TEST_TEXT_PADDR, TEST_TEXT_PADDR);
    elf.segments[0].p_filesz = TEST_TEXT_SIZE + 1;
    elf.segments[0].p_memsz = TEST_TEXT_SIZE;
    expect_elf_error(&elf, sizeof(elf.bytes), "file size > memory size");

    build_elf(&elf, TEST_TEXT_PADDR, TEST_TEXT_PADDR);
    elf.segments[0].p_type = PT_NULL;
    elf.segments[2].p_type = PT_NULL;
    expect_elf_error(&elf, sizeof(elf.bytes), "no loadable");

    build_elf(&elf, TEST_TEXT_PADDR, TEST_TEXT_PADDR);
    elf.header->e_phentsize = 32;
    expect_elf_error(&elf, sizeof(elf.bytes), "program header size");
}

Test(boot_elf, accepts_a_segment_in_high_memory)
{
    map_ram(3 * GIB, 64 * MIB);
    struct test_elf elf;
    build_elf(&elf, TEST_TEXT_PADDR, TEST_TEXT_PADDR);
    elf.segments[2].p_paddr = VM_HIGHMEM_START + 0x1000;
    struct boot_kernel kernel;
    struct pv_error error = {0};
    cr_assert_eq(boot_elf_load(&test_memory, elf.bytes, sizeof(elf.bytes), "k", &kernel, &error), 0,
                 "%s", error.message);
    cr_assert_eq(test_memory.ram[3 * GIB + 0x1000], 0x5a);
    elf.segments[2].p_paddr = VM_HIGHMEM_START + 64 * MIB - 0x100;
    cr_assert_eq(boot_elf_load(&test_memory, elf.bytes, sizeof(elf.bytes), "k", &kernel, &error),
                 -ENOEXEC);
    assert_error_contains(&error, "outside guest RAM");
    teardown_ram();
}

Test(boot_kernel, garbage_is_neither_elf_nor_bzimage, .init = setup_128, .fini = teardown_ram)
{
    uint8_t garbage[4096];
    for (unsigned i = 0; i < sizeof(garbage); i++)
        garbage[i] = (uint8_t)(i * 31 + 7);
    struct boot_kernel kernel;
    struct pv_error error = {0};
    cr_assert_eq(
        boot_kernel_load(&test_memory, garbage, sizeof(garbage), "junk.bin", &kernel, &error),
        -ENOEXEC);
    cr_assert_str_eq(error.message, "junk.bin is neither an ELF64 kernel nor a bzImage");
    cr_assert_eq(boot_kernel_load(&test_memory, garbage, 3, "tiny", &kernel, &error), -ENOEXEC);
}

/* Random corruptions of valid images: every outcome is 0 or an error with a
 * message, never a crash or an out-of-bounds access (run under ASan too). */
Test(boot_kernel, survives_corrupted_images, .init = setup_128, .fini = teardown_ram)
{
    static uint8_t bzimage[TEST_BZ_SIZE];
    struct test_elf elf;
    unsigned seed = 12345;
    for (unsigned round = 0; round < 3000; round++) {
        const bool use_elf = round % 2 == 0;
        uint8_t *image = use_elf ? elf.bytes : bzimage;
        size_t size = use_elf ? sizeof(elf.bytes) : sizeof(bzimage);
        if (use_elf)
            build_elf(&elf, TEST_TEXT_PADDR, TEST_TEXT_PADDR);
        else
            build_bzimage(bzimage);
        unsigned flips = 1 + rand_r(&seed) % 8;
        for (unsigned i = 0; i < flips; i++) {
            /* Aim at the headers, where the parsing happens. */
            size_t offset = rand_r(&seed) % (use_elf ? 0x100 : 0x280);
            image[offset] = (uint8_t)rand_r(&seed);
        }
        size_t length = rand_r(&seed) % 4 == 0 ? rand_r(&seed) % size : size;
        struct boot_kernel kernel;
        struct pv_error error = {0};
        int rc = boot_kernel_load(&test_memory, image, length, "fuzz", &kernel, &error);
        if (rc < 0)
            cr_assert_neq(error.message[0], '\0');
        else
            cr_assert(kernel.entry >= BOOT_KERNEL_LOAD_ADDRESS);
    }
}

/* ---- bzImage ---------------------------------------------------------------- */

Test(boot_bzimage, loads_the_protected_mode_part_at_1_mib, .init = setup_128, .fini = teardown_ram)
{
    static uint8_t image[TEST_BZ_SIZE];
    build_bzimage(image);
    struct boot_kernel kernel;
    struct pv_error error = {0};
    cr_assert_eq(boot_kernel_load(&test_memory, image, sizeof(image), "bzImage", &kernel, &error),
                 0, "%s", error.message);
    cr_assert_eq(kernel.kind, BOOT_KERNEL_BZIMAGE);
    cr_assert_eq(kernel.entry, 0x100200);
    cr_assert_eq(kernel.protocol_version, 0x020f);
    cr_assert_eq(kernel.load_start, 0x100000);
    cr_assert_eq(kernel.load_end, TEST_BZ_PREF_ADDRESS + TEST_BZ_INIT_SIZE);
    cr_assert_eq(kernel.cmdline_size_max, TEST_BZ_CMDLINE_SIZE);
    cr_assert_eq(kernel.setup_header_length, 0x26c - 0x1f1);
    cr_assert_eq(
        memcmp(test_memory.ram + 0x100000, image + TEST_BZ_SETUP_SIZE, TEST_BZ_PAYLOAD_SIZE), 0);
}

Test(boot_bzimage, setup_sects_zero_means_four, .init = setup_128, .fini = teardown_ram)
{
    static uint8_t image[TEST_BZ_SIZE];
    build_bzimage(image);
    image[BOOT_PARAMS_SETUP_SECTS] = 0;
    struct boot_kernel kernel;
    cr_assert_eq(boot_bzimage_load(&test_memory, image, sizeof(image), "bz", &kernel, NULL), 0);
    cr_assert_eq(test_memory.ram[0x100000], image[TEST_BZ_SETUP_SIZE]);
}

Test(boot_bzimage, rejects_unusable_kernels, .init = setup_128, .fini = teardown_ram)
{
    static uint8_t image[TEST_BZ_SIZE];
    struct boot_kernel kernel;
    struct pv_error error = {0};

    build_bzimage(image);
    write16(image, BOOT_PARAMS_VERSION, 0x020a);
    cr_assert_eq(boot_kernel_load(&test_memory, image, sizeof(image), "old", &kernel, &error),
                 -ENOEXEC);
    assert_error_contains(&error, "protocol 2.10 is too old");

    build_bzimage(image);
    write16(image, BOOT_PARAMS_XLOADFLAGS, 0);
    cr_assert_eq(boot_kernel_load(&test_memory, image, sizeof(image), "k32", &kernel, &error),
                 -ENOEXEC);
    assert_error_contains(&error, "XLF_KERNEL_64");

    build_bzimage(image);
    image[BOOT_PARAMS_LOADFLAGS] = 0;
    cr_assert_eq(boot_kernel_load(&test_memory, image, sizeof(image), "z", &kernel, &error),
                 -ENOEXEC);
    assert_error_contains(&error, "zImage");

    build_bzimage(image);
    cr_assert_eq(boot_kernel_load(&test_memory, image, TEST_BZ_SETUP_SIZE, "cut", &kernel, &error),
                 -ENOEXEC);
    assert_error_contains(&error, "truncated");
}

Test(boot_bzimage, needs_room_to_decompress)
{
    map_ram(16 * MIB, 0);
    static uint8_t image[TEST_BZ_SIZE];
    build_bzimage(image);
    struct boot_kernel kernel;
    struct pv_error error = {0};
    cr_assert_eq(boot_bzimage_load(&test_memory, image, sizeof(image), "big", &kernel, &error),
                 -ENOMEM);
    assert_error_contains(&error, "to decompress");
    assert_error_contains(&error, "-m");
    teardown_ram();
}

/* ---- boot_load: files, zero page, command line, initrd ----------------------- */

static const uint8_t *zero_page(void)
{
    return test_memory.ram + VM_BOOT_PARAMS_ADDRESS;
}

/* What the probe guest computes: ceil(sum of e820 RAM / 1 MiB). */
static uint64_t zero_page_ram_mib(void)
{
    unsigned entries = read8(zero_page(), BOOT_PARAMS_E820_ENTRIES);
    cr_assert_leq(entries, BOOT_PARAMS_E820_MAX);
    uint64_t ram = 0;
    for (unsigned i = 0; i < entries; i++) {
        uint64_t entry = BOOT_PARAMS_E820_TABLE + i * 20;
        if (read32(zero_page(), entry + 16) == BOOT_E820_RAM)
            ram += read64(zero_page(), entry + 8);
    }
    return (ram + MIB - 1) / MIB;
}

Test(boot_load, elf_zero_page_fields, .init = setup_128, .fini = teardown_all)
{
    struct test_elf elf;
    build_elf(&elf, TEST_TEXT_PADDR, TEST_TEXT_PADDR + 4);
    const char *kernel_path = write_temp_file(elf.bytes, sizeof(elf.bytes));
    memset(test_memory.ram + VM_BOOT_PARAMS_ADDRESS, 0x77, BOOT_PARAMS_SIZE);
    struct boot_info info;
    struct pv_error error = {0};
    cr_assert_eq(
        boot_load(&test_memory, kernel_path, NULL, "console=ttyS0 probe.x=1", &info, &error), 0,
        "%s", error.message);
    cr_assert_eq(info.entry, TEST_TEXT_PADDR + 4);
    cr_assert_eq(info.kind, BOOT_KERNEL_ELF64);
    cr_assert_eq(info.initrd_address, 0);

    const uint8_t *page = zero_page();
    cr_assert_eq(read64(page, BOOT_PARAMS_ACPI_RSDP_ADDR), VM_ACPI_TABLES_ADDRESS);
    uint64_t cmdline = read32(page, BOOT_PARAMS_CMD_LINE_PTR) |
                       (uint64_t)read32(page, BOOT_PARAMS_EXT_CMD_LINE_PTR) << 32;
    cr_assert_eq(cmdline, VM_BOOT_CMDLINE_ADDRESS);
    cr_assert_str_eq((const char *)test_memory.ram + cmdline, "console=ttyS0 probe.x=1");
    cr_assert_eq(read8(page, BOOT_PARAMS_E820_ENTRIES), info.e820_entries);
    cr_assert_eq(zero_page_ram_mib(), 128);
    cr_assert_eq(read8(page, BOOT_PARAMS_SENTINEL), 0);
    cr_assert_eq(read32(page, BOOT_PARAMS_HEADER), BOOT_HEADER_MAGIC);
    cr_assert_eq(read8(page, BOOT_PARAMS_BOOT_FLAG) | read8(page, BOOT_PARAMS_BOOT_FLAG + 1) << 8,
                 BOOT_FLAG_MAGIC);
    cr_assert_eq(read8(page, BOOT_PARAMS_TYPE_OF_LOADER), 0xff);
    cr_assert_eq(read32(page, BOOT_PARAMS_RAMDISK_IMAGE), 0);
    cr_assert_eq(read32(page, BOOT_PARAMS_RAMDISK_SIZE), 0);
    cr_assert_eq(read32(page, BOOT_PARAMS_CMDLINE_SIZE), VM_BOOT_CMDLINE_MAX - 1);
    cr_assert_eq(read32(page, 0x300 + 20 * 5), 0, "stale data left in the zero page");
    /* GDT and page tables were written too. */
    cr_assert_eq(translate(&test_memory, VM_BOOT_PML4_ADDRESS, 0xfee00000), 0xfee00000);
    cr_assert_neq(read64(test_memory.ram, VM_BOOT_GDT_ADDRESS + BOOT_GDT_CODE_SELECTOR), 0);
}

Test(boot_load, zero_page_for_5_gib_lists_high_memory, .fini = teardown_all)
{
    map_ram(3 * GIB, 2 * GIB);
    struct test_elf elf;
    build_elf(&elf, TEST_TEXT_PADDR, TEST_TEXT_PADDR);
    const char *kernel_path = write_temp_file(elf.bytes, sizeof(elf.bytes));
    struct pv_error error = {0};
    struct boot_info info;
    cr_assert_eq(boot_load(&test_memory, kernel_path, NULL, "", &info, &error), 0, "%s",
                 error.message);
    cr_assert_eq(zero_page_ram_mib(), 5120);
    cr_assert_eq(test_memory.ram[VM_BOOT_CMDLINE_ADDRESS], 0, "empty command line");
}

Test(boot_load, bzimage_with_initrd, .init = setup_128, .fini = teardown_all)
{
    static uint8_t image[TEST_BZ_SIZE];
    build_bzimage(image);
    const char *kernel_path = write_temp_file(image, sizeof(image));
    static uint8_t initrd[300000];
    for (unsigned i = 0; i < sizeof(initrd); i++)
        initrd[i] = (uint8_t)(i ^ (i >> 8));
    const char *initrd_path = write_temp_file(initrd, sizeof(initrd));

    struct boot_info info;
    struct pv_error error = {0};
    cr_assert_eq(boot_load(&test_memory, kernel_path, initrd_path, "console=ttyS0", &info, &error),
                 0, "%s", error.message);
    cr_assert_eq(info.kind, BOOT_KERNEL_BZIMAGE);
    cr_assert_eq(info.entry, 0x100200);
    cr_assert_eq(info.initrd_size, sizeof(initrd));
    cr_assert_eq(info.initrd_address % 4096, 0);
    cr_assert_geq(info.initrd_address, TEST_BZ_PREF_ADDRESS + TEST_BZ_INIT_SIZE,
                  "initrd inside the decompression area");
    cr_assert_leq(info.initrd_address + info.initrd_size, 128 * MIB);
    cr_assert_gt(info.initrd_address + info.initrd_size, 128 * MIB - 4096, "not at the top");
    cr_assert_eq(memcmp(test_memory.ram + info.initrd_address, initrd, sizeof(initrd)), 0);

    const uint8_t *page = zero_page();
    cr_assert_eq(read32(page, BOOT_PARAMS_RAMDISK_IMAGE), info.initrd_address);
    cr_assert_eq(read32(page, BOOT_PARAMS_RAMDISK_SIZE), sizeof(initrd));
    cr_assert_eq(read32(page, BOOT_PARAMS_EXT_RAMDISK_IMAGE), 0);
    cr_assert_eq(read32(page, BOOT_PARAMS_EXT_RAMDISK_SIZE), 0);
    /* The image's header is kept; the loader fields are ours. */
    cr_assert_eq(read32(page, BOOT_PARAMS_INIT_SIZE), TEST_BZ_INIT_SIZE);
    cr_assert_eq(read32(page, BOOT_PARAMS_KERNEL_ALIGNMENT), 0x200000);
    cr_assert_eq(read64(page, BOOT_PARAMS_PREF_ADDRESS), TEST_BZ_PREF_ADDRESS);
    cr_assert_eq(read32(page, BOOT_PARAMS_CMDLINE_SIZE), TEST_BZ_CMDLINE_SIZE);
    cr_assert_eq(read8(page, BOOT_PARAMS_TYPE_OF_LOADER), 0xff);
    cr_assert_eq(read8(page, BOOT_PARAMS_SETUP_SECTS), TEST_BZ_SETUP_SECTS);
    cr_assert_eq(read32(page, BOOT_PARAMS_HEADER), BOOT_HEADER_MAGIC);
    cr_assert_eq(read32(page, BOOT_PARAMS_CMD_LINE_PTR), VM_BOOT_CMDLINE_ADDRESS);
    cr_assert_eq(read64(page, BOOT_PARAMS_ACPI_RSDP_ADDR), VM_ACPI_TABLES_ADDRESS);
    cr_assert_eq(zero_page_ram_mib(), 128);
}

Test(boot_load, initrd_respects_initrd_addr_max, .init = setup_128, .fini = teardown_ram)
{
    struct boot_kernel kernel = {.kind = BOOT_KERNEL_ELF64,
                                 .load_start = 0x100000,
                                 .load_end = 0x400000,
                                 .initrd_address_max = 0x1ffffff};
    uint64_t address = 0;
    cr_assert_eq(boot_place_initrd(&test_memory, &kernel, 5000, "initrd", &address, NULL), 0);
    cr_assert_eq(address, 0x2000000 - 8192);
}

Test(boot_load, rejects_oversize_command_lines, .init = setup_128, .fini = teardown_all)
{
    static uint8_t image[TEST_BZ_SIZE];
    build_bzimage(image);
    const char *bz_path = write_temp_file(image, sizeof(image));
    static char cmdline[VM_BOOT_CMDLINE_MAX + 1];
    memset(cmdline, 'a', TEST_BZ_CMDLINE_SIZE);
    cmdline[TEST_BZ_CMDLINE_SIZE] = '\0';
    struct boot_info info;
    struct pv_error error = {0};
    cr_assert_eq(boot_load(&test_memory, bz_path, NULL, cmdline, &info, &error), 0, "%s",
                 error.message);
    cmdline[TEST_BZ_CMDLINE_SIZE] = 'b';
    cmdline[TEST_BZ_CMDLINE_SIZE + 1] = '\0';
    cr_assert_eq(boot_load(&test_memory, bz_path, NULL, cmdline, &info, &error), -E2BIG);
    assert_error_contains(&error, "command line is 2048 bytes");
    assert_error_contains(&error, "at most 2047");

    struct test_elf elf;
    build_elf(&elf, TEST_TEXT_PADDR, TEST_TEXT_PADDR);
    const char *elf_path = write_temp_file(elf.bytes, sizeof(elf.bytes));
    memset(cmdline, 'c', VM_BOOT_CMDLINE_MAX);
    cmdline[VM_BOOT_CMDLINE_MAX] = '\0';
    cr_assert_eq(boot_load(&test_memory, elf_path, NULL, cmdline, &info, &error), -E2BIG);
    cmdline[VM_BOOT_CMDLINE_MAX - 1] = '\0';
    cr_assert_eq(boot_load(&test_memory, elf_path, NULL, cmdline, &info, &error), 0, "%s",
                 error.message);
    cr_assert_eq(test_memory.ram[VM_BOOT_CMDLINE_ADDRESS + VM_BOOT_CMDLINE_MAX - 1], 0);
}

Test(boot_load, rejects_an_initrd_that_does_not_fit)
{
    map_ram(16 * MIB, 0);
    struct test_elf elf;
    build_elf(&elf, TEST_TEXT_PADDR, TEST_TEXT_PADDR);
    const char *kernel_path = write_temp_file(elf.bytes, sizeof(elf.bytes));
    /* A sparse 20 MiB file: larger than all of RAM above the kernel. */
    const char *initrd_path = write_temp_file("x", 1);
    cr_assert_eq(truncate(initrd_path, 20 * MIB), 0);
    struct boot_info info;
    struct pv_error error = {0};
    cr_assert_eq(boot_load(&test_memory, kernel_path, initrd_path, "", &info, &error), -ENOMEM);
    assert_error_contains(&error, initrd_path);
    assert_error_contains(&error, "-m");
    teardown_all();
}

Test(boot_load, reports_file_problems, .init = setup_128, .fini = teardown_all)
{
    struct boot_info info;
    struct pv_error error = {0};
    cr_assert_eq(boot_load(&test_memory, "/nonexistent/vmlinuz", NULL, "", &info, &error), -ENOENT);
    assert_error_contains(&error, "cannot open kernel /nonexistent/vmlinuz");

    cr_assert_eq(boot_load(&test_memory, "/tmp", NULL, "", &info, &error), -EINVAL);
    assert_error_contains(&error, "not a regular file");

    const char *empty = write_temp_file("", 0);
    cr_assert_eq(boot_load(&test_memory, empty, NULL, "", &info, &error), -ENOEXEC);
    assert_error_contains(&error, "is empty");

    static const char text[] = "#!/bin/sh\necho this is not a kernel\n";
    const char *script = write_temp_file(text, sizeof(text));
    cr_assert_eq(boot_load(&test_memory, script, NULL, "", &info, &error), -ENOEXEC);
    assert_error_contains(&error, "neither an ELF64 kernel nor a bzImage");

    struct test_elf elf;
    build_elf(&elf, TEST_TEXT_PADDR, TEST_TEXT_PADDR);
    const char *kernel_path = write_temp_file(elf.bytes, sizeof(elf.bytes));
    cr_assert_eq(boot_load(&test_memory, kernel_path, "/nonexistent/initrd", "", &info, &error),
                 -ENOENT);
    assert_error_contains(&error, "cannot open initrd /nonexistent/initrd");

    cr_assert_eq(boot_load(&test_memory, NULL, NULL, "", &info, NULL), -EINVAL);
}

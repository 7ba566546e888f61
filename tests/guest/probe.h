/*
 * Shared declarations of the probe guest (freestanding, no libc).
 *
 * Privilege split (see README): everything in C runs at CPL3; CPL0 is only the
 * assembler stubs in entry.S and isr.S, because on the PVM host every
 * CPL0 instruction is emulated (~1 us each).
 */
#ifndef PROBE_H
#define PROBE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Boot sources, passed by the entry stubs in RDI (RSI = their data). */
#define PROBE_BOOT_LINUX 1 /* RSI = struct boot_params (zero page) */
#define PROBE_BOOT_PVH 2   /* RSI = struct hvm_start_info */

/* Interrupt vectors. The SCI stub masks its IOAPIC pin and EOIs; CPL3 unmasks
 * it after handling. New sources use vectors >= 0x40 all the same. */
#define PROBE_VECTOR_SCI 0x30
#define PROBE_VECTOR_UART 0x40
#define PROBE_VECTOR_TIMER 0x41     /* LAPIC timer, one-shot */
#define PROBE_VECTOR_MSI_FIRST 0x50 /* MSI-X: one vector per virtio device */
#define PROBE_VECTOR_MSI_COUNT 32
#define PROBE_VECTOR_NET_FIRST 0x70        /* MSI-X: one per NIC, its queues */
#define PROBE_VECTOR_NET_CONFIG_FIRST 0x78 /* MSI-X: one per NIC, config changes */
#define PROBE_VECTOR_NET_COUNT 4
#define PROBE_VECTOR_SPURIOUS 0xff

/* Bits of probe_pending, set by the CPL0 interrupt stubs. */
#define PROBE_PENDING_UART (1u << 0)
#define PROBE_PENDING_SCI (1u << 1)
#define PROBE_PENDING_MSI (1u << 2)   /* some device's MSI-X vector fired */
#define PROBE_PENDING_TIMER (1u << 3) /* the LAPIC one-shot expired */
#define PROBE_PENDING_NET (1u << 4)   /* a NIC's vector: the main loop polls the NICs */
#define PROBE_PENDING_KICK (1u << 31) /* makes the next idle int3 return at once */

/* ---- lib.c: string, memory and formatting helpers ---- */
void *memset(void *destination, int value, size_t length);
void *memcpy(void *destination, const void *source, size_t length);
int memcmp(const void *a, const void *b, size_t length);
size_t strlen(const char *string);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t length);
/* Parses a decimal or 0x-prefixed unsigned number; returns false on junk. */
bool probe_parse_u64(const char *text, uint64_t *value);
/* printf subset: %s %c %d %u %x %p, l/ll modifiers, 0-padding and width. */
size_t probe_vformat(char *buffer, size_t size, const char *format, va_list arguments);
size_t probe_format(char *buffer, size_t size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- console.c: 8250 UART at 0x3f8 ---- */
void console_init(void);
void console_write(const char *data, size_t length);
/* Prints one formatted line; the "\n" is added. */
void console_printf(const char *format, ...) __attribute__((format(printf, 1, 2)));
/* Drains the receive FIFO, calling on_line for every complete line. */
void console_receive(void (*on_line)(char *line));

/* ---- boot_info.c: what the loader handed over ---- */
#define PROBE_MAX_MEMORY_RANGES 64
#define PROBE_CMDLINE_SIZE 1024
struct probe_memory_range {
    uint64_t address;
    uint64_t size;
    uint32_t type; /* e820 type: 1 = RAM */
};
struct probe_boot_info {
    int boot_kind;
    char cmdline[PROBE_CMDLINE_SIZE];
    struct probe_memory_range ranges[PROBE_MAX_MEMORY_RANGES];
    unsigned range_count;
    uint64_t rsdp_address; /* 0 = not given, scan the BIOS area */
    uint64_t ram_bytes;    /* sum of type-1 ranges */
};
extern struct probe_boot_info probe_boot;
void boot_info_parse(int boot_kind, uint64_t data_address);

/* ---- options.c: kernel command-line switches ---- */
enum probe_unplug_mode { PROBE_UNPLUG_NORMAL, PROBE_UNPLUG_IGNORE, PROBE_UNPLUG_DELAY };
struct probe_options {
    enum probe_unplug_mode unplug;
    uint64_t unplug_delay_ms;
    bool virtio_evil;
};
extern struct probe_options probe_options;
void options_parse(const char *cmdline);

/* ---- acpi.c ---- */
struct probe_acpi {
    bool found;
    uint64_t lowest_table_address; /* [lowest, end) holds every table we read: */
    uint64_t table_end_address;    /* mem-test keeps out of it */
    unsigned cpu_count;            /* enabled LAPIC + x2APIC entries */
    uint64_t lapic_address;
    uint64_t ioapic_address;
    uint32_t ioapic_gsi_base;
    uint16_t sci_irq;
    uint32_t sci_gsi;
    bool sci_active_low;
    bool sci_level;
    uint32_t uart_gsi; /* ISA IRQ 4 after overrides */
    bool uart_active_low;
    bool uart_level;
    uint32_t smi_command_port;
    uint8_t acpi_enable_value;
    uint16_t pm1a_event_port;
    uint16_t pm1a_control_port;
    uint8_t pm1_event_length;
    uint16_t gpe0_port;
    uint8_t gpe0_length; /* whole block: status half + enable half */
    uint8_t s5_sleep_type;
    bool s5_found;
    uint16_t pci_hotplug_port; /* DSDT OperationRegion PCST, 0 = not found */
};
extern struct probe_acpi probe_acpi;
void acpi_parse(void);
/* Turns ACPI mode on (SMI_CMD) and enables the power button event. */
void acpi_enable_events(void);
/* Handles a pending SCI at CPL3: power button, GPE0 dispatch, then EOI. */
void acpi_handle_sci(void);
/* Later work (PCI/CPU hotplug) registers GPE0 bit handlers here. */
typedef void (*acpi_gpe_handler)(unsigned bit);
int acpi_gpe_register(unsigned bit, acpi_gpe_handler handler);

/* ---- interrupts.c / isr.S ---- */
extern volatile uint32_t probe_pending;
void interrupts_install_idt(void);
void interrupts_init_controllers(void);
/* Routes a GSI to a vector on the boot CPU through the IOAPIC. */
void interrupts_route_gsi(uint32_t gsi, uint8_t vector, bool level, bool active_low);
/* Routes the SCI; its stub masks the pin and EOIs, interrupts_unmask_sci re-opens it. */
void interrupts_route_sci(uint32_t gsi, bool level, bool active_low);
void interrupts_unmask_sci(void);
void interrupts_enable(void);
/* Sleeps at CPL0 (int3 → sti;hlt) unless something is pending. */
void interrupts_idle(void);
void interrupts_eoi(void);
uint32_t interrupts_take_pending(void);
uint64_t interrupts_lapic_base(void);
uint32_t interrupts_boot_apic_id(void);

/* ---- timer.c: LAPIC one-shot timer, tickless clock, sleeping waits ---- */
struct probe_timer {
    uint64_t deadline; /* clock ticks */
    bool active;
};
void timer_init(void);
uint64_t timer_now_us(void);
/* Arms `timer` to expire delay_us from now (re-arming an active one is fine). */
void timer_start(struct probe_timer *timer, uint64_t delay_us);
void timer_stop(struct probe_timer *timer);
bool timer_expired(const struct probe_timer *timer);
/* Called on PROBE_PENDING_TIMER: re-arms the LAPIC for the next deadline. */
void timer_handle_interrupt(void);
/* Sleeps (int3 idle) until done(context) is true or timeout_us passed.
 * Events other than MSIs are kept for the main loop. */
enum probe_wait_result {
    PROBE_WAIT_DONE,
    PROBE_WAIT_TIMEOUT,
    PROBE_WAIT_LATE, /* done, but only seen at the deadline: no interrupt woke us */
};
enum probe_wait_result probe_wait(bool (*done)(void *context), void *context, uint64_t timeout_us);
void probe_sleep_us(uint64_t delay_us);
/* Pending events for the main loop, including those a probe_wait set aside. */
uint32_t probe_take_events(void);

/* ---- pci.c: bus 0 through config mechanism #1, BARs, capabilities, MSI-X ---- */
#define PCI_SLOTS 32
#define PCI_FUNCTIONS 8
#define PCI_BARS 6
#define PCI_DEVFN(slot, function) ((uint16_t)((slot) << 3 | (function)))
#define PCI_SLOT(bdf) (((bdf) >> 3) & 0x1f)
#define PCI_FUNCTION(bdf) ((bdf)&7)
#define PCI_BUS(bdf) ((bdf) >> 8)
#define PCI_COMMAND 0x04
#define PCI_COMMAND_IO 0x1
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_CAP_ID_VENDOR 0x09
#define PCI_CAP_ID_MSIX 0x11
#define PCI_MAX_CAPABILITIES 48

enum pci_driver_kind { PCI_DRIVER_NONE, PCI_DRIVER_VIRTIO_BLK, PCI_DRIVER_VIRTIO_NET };

struct pci_bar {
    uint64_t address; /* 0 = not assigned */
    uint64_t size;    /* 0 = BAR not implemented */
    bool io;
    bool is_64bit; /* also uses the next BAR slot */
    bool prefetchable;
};

struct pci_function {
    bool present;
    uint16_t bdf; /* bus << 8 | slot << 3 | function; bus is always 0 */
    char name[8]; /* "bb:dd.f" */
    uint16_t vendor, device;
    uint32_t class_code; /* base << 16 | sub << 8 | prog-if */
    uint8_t header_type; /* without the multi-function bit */
    struct pci_bar bars[PCI_BARS];
    enum pci_driver_kind driver_kind;
    void *driver;
};

struct pci_capability {
    uint8_t offset;
    uint8_t id;
};

struct pci_msix {
    uint8_t capability; /* config offset, 0 = none */
    unsigned table_size;
    uint64_t table_address;
};

uint32_t pci_read32(uint16_t bdf, unsigned offset);
uint16_t pci_read16(uint16_t bdf, unsigned offset);
uint8_t pci_read8(uint16_t bdf, unsigned offset);
void pci_write32(uint16_t bdf, unsigned offset, uint32_t value);
void pci_write16(uint16_t bdf, unsigned offset, uint16_t value);
/* Boot: enumerate bus 0, keep firmware BARs, assign the rest, start drivers,
 * print PROBE PCI ADD for every function. */
void pci_init(void);
/* After a hotplug event: functions that appeared are added (ADD lines),
 * functions that vanished without an eject are dropped (WARN). */
void pci_rescan(uint32_t up_slots);
/* Quiesces the function's driver (if the device still answers), frees its BARs
 * and forgets it. Prints nothing. */
void pci_remove(struct pci_function *function);
struct pci_function *pci_find(uint16_t bdf);
bool pci_parse_bdf(const char *text, uint16_t *bdf);
void pci_list(void);
/* Fills up to PCI_MAX_CAPABILITIES entries; returns the count, or -1 (after a
 * PROBE WARN) when the list is malformed. */
int pci_capabilities(struct pci_function *function, struct pci_capability *capabilities);
/* MSI-X: locate the table (its BAR must be an assigned memory BAR). */
int pci_msix_init(struct pci_function *function, uint8_t capability, struct pci_msix *msix);
void pci_msix_set_vector(struct pci_msix *msix, unsigned entry, uint8_t vector);
void pci_msix_enable(struct pci_function *function, struct pci_msix *msix, bool enable);

/* ---- virtio_pci.c: virtio 1.x modern PCI transport ---- */
#define VIRTIO_VENDOR 0x1af4
#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER 0x02
#define VIRTIO_STATUS_DRIVER_OK 0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80
#define VIRTIO_F_INDIRECT_DESC (1ull << 28)
#define VIRTIO_F_VERSION_1 (1ull << 32)
#define VIRTIO_F_ACCESS_PLATFORM (1ull << 33)
#define VIRTIO_NO_VECTOR 0xffff
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4

struct virtq_desc {
    uint64_t address;
    uint32_t length;
    uint16_t flags;
    uint16_t next;
};

struct virtq_used_element {
    uint32_t id;
    uint32_t length;
};

struct virtio_pci {
    struct pci_function *function;
    uint64_t common, device_config, notify_base;
    uint32_t device_config_length, notify_length, notify_multiplier;
    uint64_t features; /* negotiated */
    struct pci_msix msix;
};

struct virtio_queue_setup {
    uint16_t index;
    uint16_t size_limit; /* a power of two; the device's maximum may lower it */
    uint16_t msix_entry;
    uint64_t desc, avail, used; /* physical addresses */
    uint16_t size;              /* out: the size in use */
    uint64_t notify;            /* out: where to write the queue index */
};

/* Locates the capability regions and the MSI-X table (function must be set). */
const char *virtio_pci_find(struct virtio_pci *device);
/* Bus master on, reset, ACKNOWLEDGE, DRIVER, features (offered & wanted; VERSION_1
 * required), FEATURES_OK, MSI-X enabled with every entry masked. NULL or the reason. */
const char *virtio_pci_start(struct virtio_pci *device, uint64_t wanted);
const char *virtio_pci_set_config_vector(struct virtio_pci *device, uint16_t entry);
const char *virtio_pci_setup_queue(struct virtio_pci *device, struct virtio_queue_setup *setup);
uint8_t virtio_pci_status(const struct virtio_pci *device);
void virtio_pci_set_status(struct virtio_pci *device, uint8_t bits);
uint8_t virtio_pci_config_generation(const struct virtio_pci *device);
/* Writes 0 and waits (sleeping between polls, 1 s at most) until it reads back 0. */
bool virtio_pci_reset(struct virtio_pci *device);
/* Quiesces: reset, MSI-X off, bus master off (only when device_present). */
void virtio_pci_stop(struct virtio_pci *device, bool device_present);

/* ---- virtio_blk.c ---- */
bool virtio_blk_matches(const struct pci_function *function);
/* Initialises the device and prints its PROBE PCI ADD line (and the evil
 * requests when probe.virtio=evil); < 0 after a PROBE WARN if it cannot. */
int virtio_blk_attach(struct pci_function *function);
/* Resets the device (when device_present), disables MSI-X and bus mastering. */
void virtio_blk_detach(struct pci_function *function, bool device_present);
void virtio_blk_command_read(char *arguments);
void virtio_blk_command_write(char *arguments);
void virtio_blk_command_flush(char *arguments);

/* ---- virtio_net.c ---- */
bool virtio_net_matches(const struct pci_function *function);
/* Initialises the NIC, fills its receive ring and prints its PROBE PCI ADD line;
 * < 0 after a PROBE WARN if it cannot. */
int virtio_net_attach(struct pci_function *function);
void virtio_net_detach(struct pci_function *function, bool device_present);
/* Main loop: on PROBE_PENDING_NET (rings, link) and on timers (RX line budget). */
void virtio_net_poll(bool interrupt);
void virtio_net_command_send(char *arguments);
void virtio_net_command_echo(char *arguments);
void virtio_net_command_stats(char *arguments);

/* FNV-1a, 32 bit (lib.c): the checksum blk-read and the NET RX lines report. */
#define PROBE_FNV1A_INITIAL 0x811c9dc5u
uint32_t probe_fnv1a(const uint8_t *data, size_t length);
/* Continues a hash over more bytes (a frame spread over several buffers). */
uint32_t probe_fnv1a_continue(uint32_t hash, const uint8_t *data, size_t length);
/* Splits off the next blank-separated word of *cursor (lib.c). */
char *probe_next_word(char **cursor);

/* ---- hotplug.c: QEMU ACPI PCI hotplug (PIIX4 registers, GPE0 bit 1) ---- */
void hotplug_init(void);
/* Runs delayed ejects (probe.unplug=delay:MS) whose time has come. */
void hotplug_poll(void);

/* ---- memtest.c ---- */
/* Largest free RAM range above the image, below 4 GiB, outside the ACPI tables. */
void memtest_free_range(uint64_t *start, uint64_t *size);
/* 0 = ok; otherwise fills *bad_address. */
int memtest_run(uint64_t start, uint64_t size, uint64_t *bad_address);

/* ---- commands.c ---- */
void commands_handle_line(char *line);

/* ---- port and MMIO access (CPL3 through the TSS I/O bitmap) ---- */
static inline void outb(uint16_t port, uint8_t value)
{
    __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}
static inline void outw(uint16_t port, uint16_t value)
{
    __asm__ volatile("outw %0, %1" : : "a"(value), "Nd"(port));
}
static inline void outl(uint16_t port, uint32_t value)
{
    __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port));
}
static inline uint32_t inl(uint16_t port)
{
    uint32_t value;
    __asm__ volatile("inl %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}
static inline uint8_t inb(uint16_t port)
{
    uint8_t value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}
static inline uint16_t inw(uint16_t port)
{
    uint16_t value;
    __asm__ volatile("inw %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}
static inline uint32_t mmio_read32(uint64_t address)
{
    return *(volatile uint32_t *)(uintptr_t)address;
}
static inline void mmio_write32(uint64_t address, uint32_t value)
{
    *(volatile uint32_t *)(uintptr_t)address = value;
}
static inline uint8_t mmio_read8(uint64_t address)
{
    return *(volatile uint8_t *)(uintptr_t)address;
}
static inline void mmio_write8(uint64_t address, uint8_t value)
{
    *(volatile uint8_t *)(uintptr_t)address = value;
}
static inline uint16_t mmio_read16(uint64_t address)
{
    return *(volatile uint16_t *)(uintptr_t)address;
}
static inline void mmio_write16(uint64_t address, uint16_t value)
{
    *(volatile uint16_t *)(uintptr_t)address = value;
}

/* Unaligned little-endian loads from physical (identity-mapped) addresses. */
static inline uint8_t phys_read8(uint64_t address)
{
    return *(const volatile uint8_t *)(uintptr_t)address;
}
static inline uint16_t phys_read16(uint64_t address)
{
    uint16_t value;
    __builtin_memcpy(&value, (const void *)(uintptr_t)address, sizeof(value));
    return value;
}
static inline uint32_t phys_read32(uint64_t address)
{
    uint32_t value;
    __builtin_memcpy(&value, (const void *)(uintptr_t)address, sizeof(value));
    return value;
}
static inline uint64_t phys_read64(uint64_t address)
{
    uint64_t value;
    __builtin_memcpy(&value, (const void *)(uintptr_t)address, sizeof(value));
    return value;
}

/* Linker-script symbols. */
extern char probe_image_start[], probe_image_end[];

#endif

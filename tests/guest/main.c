/*
 * CPL3 main: boot-time discovery, interrupt set-up, then an event loop that
 * sleeps in CPL0 (int3 → sti;hlt) whenever nothing is pending.
 */
#include "probe.h"

extern const uint64_t probe_fault_info[5];

void probe_main(uint64_t boot_kind, uint64_t boot_data);
void probe_fault_report(void);

void probe_main(uint64_t boot_kind, uint64_t boot_data)
{
    boot_info_parse((int)boot_kind, boot_data);
    interrupts_install_idt();
    console_init();
    console_printf("PROBE BOOT entry=%s cmdline=\"%s\"",
                   probe_boot.boot_kind == PROBE_BOOT_PVH ? "pvh" : "linux64", probe_boot.cmdline);
    options_parse(probe_boot.cmdline);
    acpi_parse();
    if (probe_acpi.found)
        console_printf("PROBE ACPI sci=%u pm1a_evt=0x%x pm1a_cnt=0x%x gpe0=0x%x/%u s5=%u%s",
                       probe_acpi.sci_gsi, probe_acpi.pm1a_event_port, probe_acpi.pm1a_control_port,
                       probe_acpi.gpe0_port, probe_acpi.gpe0_length, probe_acpi.s5_sleep_type,
                       probe_acpi.s5_found ? "" : " (no _S5_, default)");
    else
        console_printf("PROBE WARN no ACPI tables found");
    interrupts_init_controllers();
    interrupts_route_gsi(probe_acpi.uart_gsi, PROBE_VECTOR_UART, probe_acpi.uart_level,
                         probe_acpi.uart_active_low);
    acpi_enable_events();
    timer_init();
    hotplug_init();
    interrupts_enable();
    /* Needs interrupts: drivers sleep until their device's MSI arrives. */
    pci_init();

    uint64_t mib = (probe_boot.ram_bytes + (1ull << 20) - 1) >> 20;
    unsigned cpus = probe_acpi.cpu_count ? probe_acpi.cpu_count : 1;
    console_printf("PROBE READY cpus=%u mem=%lu", cpus, mib);
    /* Input that arrived before the UART interrupt was routed raised no edge. */
    console_receive(commands_handle_line);

    for (;;) {
        uint32_t pending = probe_take_events();
        if (pending & PROBE_PENDING_TIMER)
            timer_handle_interrupt();
        if (pending & PROBE_PENDING_UART)
            console_receive(commands_handle_line);
        if (pending & PROBE_PENDING_SCI)
            acpi_handle_sci();
        hotplug_poll();
        virtio_net_poll((pending & PROBE_PENDING_NET) != 0);
        /* Disk MSIs need nothing here: every request is waited for where it is sent. */
        if (!pending)
            interrupts_idle();
    }
}

/* Reached (at CPL3, on the fault stack) when CPL3 code faults. */
void probe_fault_report(void)
{
    console_printf("PROBE FAULT vector=%lu error=0x%lx rip=0x%lx cr2=0x%lx rsp=0x%lx",
                   probe_fault_info[0], probe_fault_info[1], probe_fault_info[2],
                   probe_fault_info[3], probe_fault_info[4]);
    for (;;)
        interrupts_idle();
}

/*
 * ACPI PCI hotplug the way Linux acpiphp does it, but straight on QEMU's
 * registers instead of through AML (no interpreter here): GPE0 bit 1 → select
 * bus 0 (BNUM), read the insert (PCIU, read-to-clear) and removal-request
 * (PCID) slot bitmaps, rescan/init new devices, quiesce and eject removed ones
 * (B0EJ). The register block is where the DSDT's OperationRegion PCST says
 * (0xae00 on QEMU's pc machine).
 */
#include "probe.h"

#define PCIHP_DEFAULT_PORT 0xae00
#define PCIHP_UP 0x00
#define PCIHP_DOWN 0x04
#define PCIHP_EJECT 0x08
#define PCIHP_BUS_SELECT 0x10
#define PCIHP_GPE_BIT 1

struct slot_state {
    bool unplug_reported; /* probe.unplug=ignore: said so once for this device */
    bool eject_scheduled; /* probe.unplug=delay: eject_timer is running */
    struct probe_timer eject_timer;
};

static uint16_t hotplug_port;
static struct slot_state slots[PCI_SLOTS];

/* The name of the slot's first known function, or of function 0. */
static void slot_name(unsigned slot, char *name, size_t size)
{
    for (unsigned fn = 0; fn < PCI_FUNCTIONS; fn++) {
        struct pci_function *function = pci_find(PCI_DEVFN(slot, fn));
        if (function) {
            probe_format(name, size, "%s", function->name);
            return;
        }
    }
    probe_format(name, size, "00:%02x.0", slot);
}

static void eject_slot(unsigned slot)
{
    bool any = false;
    for (unsigned fn = 0; fn < PCI_FUNCTIONS; fn++) {
        struct pci_function *function = pci_find(PCI_DEVFN(slot, fn));
        if (!function)
            continue;
        char name[8];
        memcpy(name, function->name, sizeof(name));
        pci_remove(function);
        console_printf("PROBE PCI EJECT %s", name);
        any = true;
    }
    if (!any)
        console_printf("PROBE PCI EJECT 00:%02x.0", slot);
    outl(hotplug_port + PCIHP_BUS_SELECT, 0);
    outl(hotplug_port + PCIHP_EJECT, 1u << slot);
    if (slots[slot].eject_scheduled)
        timer_stop(&slots[slot].eject_timer);
    memset(&slots[slot], 0, sizeof(slots[slot]));
}

static void unplug_requested(unsigned slot)
{
    struct slot_state *state = &slots[slot];
    switch (probe_options.unplug) {
    case PROBE_UNPLUG_IGNORE:
        /* PCID stays set until an eject, so later events show it again. */
        if (!state->unplug_reported) {
            char name[8];
            slot_name(slot, name, sizeof(name));
            console_printf("PROBE PCI UNPLUG-IGNORED %s", name);
            state->unplug_reported = true;
        }
        break;
    case PROBE_UNPLUG_DELAY:
        if (!state->eject_scheduled) {
            state->eject_scheduled = true;
            timer_start(&state->eject_timer, probe_options.unplug_delay_ms * 1000);
        }
        break;
    case PROBE_UNPLUG_NORMAL:
        eject_slot(slot);
        break;
    }
}

static void hotplug_event(unsigned bit)
{
    (void)bit;
    outl(hotplug_port + PCIHP_BUS_SELECT, 0);
    uint32_t up = inl(hotplug_port + PCIHP_UP);
    uint32_t down = inl(hotplug_port + PCIHP_DOWN);
    if (up == 0xffffffffu && down == 0xffffffffu) {
        console_printf("PROBE WARN PCI hotplug registers at 0x%x do not answer", hotplug_port);
        return;
    }
    /* Enumerate the whole bus: new functions are started and reported. */
    pci_rescan(up);
    for (unsigned slot = 0; slot < PCI_SLOTS; slot++) {
        if (down & (1u << slot))
            unplug_requested(slot);
    }
}

void hotplug_init(void)
{
    hotplug_port = probe_acpi.pci_hotplug_port ? probe_acpi.pci_hotplug_port : PCIHP_DEFAULT_PORT;
    if (acpi_gpe_register(PCIHP_GPE_BIT, hotplug_event) < 0)
        console_printf("PROBE WARN PCI hotplug: no GPE0 bit %u to listen on", PCIHP_GPE_BIT);
}

void hotplug_poll(void)
{
    for (unsigned slot = 0; slot < PCI_SLOTS; slot++) {
        if (slots[slot].eject_scheduled && timer_expired(&slots[slot].eject_timer))
            eject_slot(slot);
    }
}

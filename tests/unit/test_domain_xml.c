/* Domain model and libvirt domain XML: the examples in tests/data/domain, round trips,
 * errors with line numbers, unsupported elements, units, device fragments, UUIDs. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"

#ifndef PLUGVIRT_SRCDIR
#error "the build passes -DPLUGVIRT_SRCDIR"
#endif

#define SCHEMA_DIR PLUGVIRT_SRCDIR "/xml-schemas"
#define DATA_DIR PLUGVIRT_SRCDIR "/tests/data/domain"

/* --- helpers ---------------------------------------------------------------------------- */

static char *read_data(const char *name, size_t *length)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", DATA_DIR, name);
    FILE *file = fopen(path, "r");
    cr_assert_not_null(file, "open %s", path);
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    cr_assert_not_null(out);
    char buffer[4096];
    size_t got;
    while ((got = fread(buffer, 1, sizeof(buffer), file)) > 0)
        fwrite(buffer, 1, got, out);
    fclose(file);
    fclose(out);
    *length = size;
    return text;
}

static bool has_suffix(const char *name, const char *suffix)
{
    size_t length = strlen(name), suffix_length = strlen(suffix);
    return length >= suffix_length && strcmp(name + length - suffix_length, suffix) == 0;
}

/* The data files, sorted, filtered by `wanted`. */
static size_t list_data(bool (*wanted)(const char *), char names[][256], size_t max)
{
    DIR *directory = opendir(DATA_DIR);
    cr_assert_not_null(directory, "open %s", DATA_DIR);
    size_t count = 0;
    struct dirent *entry;
    while ((entry = readdir(directory)) != NULL) {
        if (!has_suffix(entry->d_name, ".xml") || !wanted(entry->d_name))
            continue;
        cr_assert_lt(count, max);
        snprintf(names[count++], 256, "%s", entry->d_name);
    }
    closedir(directory);
    qsort(names, count, 256, (int (*)(const void *, const void *))strcmp);
    return count;
}

static bool is_fragment(const char *name)
{
    return strncmp(name, "device-", 7) == 0;
}

static bool is_bad(const char *name)
{
    return has_suffix(name, "-invalid.xml") || has_suffix(name, "-unsupported.xml");
}

static bool is_good_domain(const char *name)
{
    return !is_fragment(name) && !is_bad(name);
}

static bool is_good_fragment(const char *name)
{
    return is_fragment(name) && !is_bad(name);
}

static bool is_invalid(const char *name)
{
    return has_suffix(name, "-invalid.xml");
}

static bool is_unsupported(const char *name)
{
    return has_suffix(name, "-unsupported.xml");
}

static struct domain_definition *parse_text(const char *xml, struct pv_error *error)
{
    return domain_xml_parse(xml, strlen(xml), SCHEMA_DIR, error);
}

static struct domain_definition *parse_file(const char *name)
{
    size_t length;
    char *xml = read_data(name, &length);
    struct pv_error error = {0};
    struct domain_definition *definition = domain_xml_parse(xml, length, SCHEMA_DIR, &error);
    cr_assert_not_null(definition, "%s: %s", name, error.message);
    free(xml);
    return definition;
}

static struct domain_device *parse_device_text(const char *xml, struct pv_error *error)
{
    return domain_xml_parse_device(xml, strlen(xml), SCHEMA_DIR, error);
}

static const char minimal_head[] = "<domain type='kvm'>\n"
                                   "  <name>unit</name>\n"
                                   "  <os><type>hvm</type></os>\n";

/* A domain with `body` after the minimal head (which has no <memory>). */
static struct domain_definition *parse_with(const char *body, struct pv_error *error)
{
    char xml[4096];
    snprintf(xml, sizeof(xml), "%s%s</domain>\n", minimal_head, body);
    return parse_text(xml, error);
}

/* --- good examples ---------------------------------------------------------------------- */

Test(domain_xml, good_examples_round_trip)
{
    char names[64][256];
    size_t count = list_data(is_good_domain, names, 64);
    cr_assert_geq(count, 3, "full.xml, minimal.xml, libvirt-dumpxml.xml at least");
    for (size_t i = 0; i < count; i++) {
        struct domain_definition *first = parse_file(names[i]);
        for (int live = 0; live <= 1; live++) {
            struct pv_error error = {0};
            char *formatted = domain_xml_format(first, live, &error);
            cr_assert_not_null(formatted, "%s: %s", names[i], error.message);
            struct domain_definition *second = parse_text(formatted, &error);
            cr_assert_not_null(second, "%s reparse: %s\n%s", names[i], error.message, formatted);
            char *again = domain_xml_format(second, live, &error);
            cr_assert_str_eq(again, formatted, "%s: format is stable", names[i]);
            if (live) {
                /* parse(format(parse(x))) == parse(x): the live form keeps everything */
                cr_assert_str_eq(second->uuid, first->uuid);
                cr_assert_eq(second->disk_count, first->disk_count);
                cr_assert_eq(second->chardev_count, first->chardev_count);
                cr_assert_eq(second->memory_kib, first->memory_kib);
            }
            free(again);
            free(formatted);
            domain_definition_free(second);
        }
        domain_definition_free(first);
    }
}

Test(domain_xml, full_example_fields)
{
    struct domain_definition *definition = parse_file("full.xml");
    cr_assert_str_eq(definition->type, "kvm");
    cr_assert_str_eq(definition->name, "full");
    cr_assert_str_eq(definition->uuid, "c7a5fdbd-edaf-9455-926a-d65c16db1809");
    cr_assert_str_eq(definition->title, "A full example");
    cr_assert_str_eq(definition->description, "Every supported element & attribute.");
    cr_assert_eq(definition->memory_kib, 1048576);
    cr_assert_eq(definition->current_memory_kib, 524288);
    cr_assert_eq(definition->vcpus_max, 2);
    cr_assert_eq(definition->vcpus_current, 1);
    cr_assert_str_eq(definition->os_type, "hvm");
    cr_assert_str_eq(definition->os_arch, "x86_64");
    cr_assert_str_eq(definition->os_machine, "pc");
    cr_assert_str_eq(definition->kernel, "/var/lib/plugvirt/probe-guest.elf");
    cr_assert_str_eq(definition->cmdline, "console=ttyS0 probe.unplug=ack");
    cr_assert(definition->acpi && definition->apic && definition->pae);
    cr_assert_str_eq(definition->cpu_mode, "custom");
    cr_assert_str_eq(definition->cpu_model, "qemu64");
    cr_assert_str_eq(definition->on_crash, "preserve");
    cr_assert_str_eq(definition->emulator, "/usr/bin/plugvirt-vmm");

    cr_assert_eq(definition->disk_count, 3);
    const struct domain_disk *root = &definition->disks[0];
    cr_assert_eq(root->type, DOMAIN_DISK_FILE);
    cr_assert_str_eq(root->driver_type, "qcow2");
    cr_assert_str_eq(root->cache, "none");
    cr_assert_str_eq(root->io, "native");
    cr_assert_str_eq(root->error_policy, "stop");
    cr_assert_str_eq(root->rerror_policy, "report");
    cr_assert_str_eq(root->source, "/var/lib/plugvirt/images/root.qcow2");
    cr_assert_str_eq(root->target_dev, "vda");
    cr_assert_eq(root->target_bus, DOMAIN_DISK_BUS_VIRTIO);
    cr_assert_str_eq(root->serial, "ROOT-0001");
    cr_assert_str_eq(root->alias, "ua-root");
    cr_assert_eq(root->address.type, DOMAIN_ADDRESS_PCI);
    cr_assert_eq(root->address.slot, 4);
    const struct domain_disk *data = &definition->disks[1];
    cr_assert_eq(data->type, DOMAIN_DISK_BLOCK);
    cr_assert_eq(data->target_bus, DOMAIN_DISK_BUS_SCSI);
    cr_assert_eq(data->address.type, DOMAIN_ADDRESS_DRIVE);
    cr_assert_eq(definition->disks[2].device, DOMAIN_DISK_DEVICE_CDROM);
    cr_assert(definition->disks[2].readonly);

    cr_assert_eq(definition->controller_count, 4);
    cr_assert_str_eq(definition->controllers[1].model, "virtio-scsi");
    cr_assert_eq(definition->interface_count, 3);
    cr_assert_eq(definition->interfaces[0].type, DOMAIN_INTERFACE_BRIDGE);
    cr_assert_str_eq(definition->interfaces[0].source, "br0");
    cr_assert(definition->interfaces[0].target_managed);
    cr_assert_not(definition->interfaces[1].target_managed);
    cr_assert_eq(definition->interfaces[2].type, DOMAIN_INTERFACE_ETHERNET);
    cr_assert_not_null(definition->interfaces[2].mac, "a MAC is generated, as libvirt does");
    cr_assert_eq(strncmp(definition->interfaces[2].mac, "52:54:00:", 9), 0);
    cr_assert_str_eq(definition->interfaces[2].model, "virtio",
                     "virtio is written when absent (libvirt's default would be rtl8139)");
    cr_assert_eq(definition->interfaces[2].queues, 2);
    cr_assert(definition->interfaces[2].link_down);
    cr_assert_not(definition->interfaces[1].link_down);

    cr_assert_eq(definition->chardev_count, 3);
    cr_assert_eq(definition->chardevs[0].kind, DOMAIN_CHARDEV_SERIAL);
    cr_assert_str_eq(definition->chardevs[0].target_model, "isa-serial");
    cr_assert_eq(definition->chardevs[1].kind, DOMAIN_CHARDEV_CONSOLE);
    cr_assert_eq(definition->chardevs[2].kind, DOMAIN_CHARDEV_CHANNEL);
    cr_assert_str_eq(definition->chardevs[2].target_name, "org.qemu.guest_agent.0");
    cr_assert_eq(definition->chardevs[2].address.type, DOMAIN_ADDRESS_VIRTIO_SERIAL);
    cr_assert_eq(definition->chardevs[2].address.port, 1);

    cr_assert_eq(definition->hostdev_count, 1);
    cr_assert(definition->hostdevs[0].managed);
    cr_assert_eq(definition->hostdevs[0].source.bus, 6);
    cr_assert_eq(definition->hostdevs[0].source.slot, 0x12);
    cr_assert_eq(definition->hostdevs[0].source.function, 5);
    domain_definition_free(definition);
}

Test(domain_xml, minimal_defaults)
{
    struct domain_definition *definition = parse_file("minimal.xml");
    cr_assert_eq(definition->memory_kib, 65536, "KiB by default");
    cr_assert_eq(definition->current_memory_kib, 65536);
    cr_assert_eq(definition->vcpus_max, 1);
    cr_assert_eq(definition->vcpus_current, 1);
    cr_assert_eq(strlen(definition->uuid), DOMAIN_UUID_STRING_LENGTH, "generated");
    cr_assert_null(definition->emulator);
    char *xml = domain_xml_format(definition, false, NULL);
    cr_assert_not_null(strstr(xml, "<domain type='kvm'>\n  <name>minimal</name>\n  <uuid>"));
    cr_assert_not_null(strstr(xml, "  <memory unit='KiB'>65536</memory>\n"
                                   "  <currentMemory unit='KiB'>65536</currentMemory>\n"
                                   "  <vcpu placement='static'>1</vcpu>\n"));
    free(xml);
    domain_definition_free(definition);
}

Test(domain_xml, live_format_keeps_aliases_inactive_keeps_user_aliases)
{
    struct domain_definition *definition = parse_file("libvirt-dumpxml.xml");
    char *live = domain_xml_format(definition, true, NULL);
    char *inactive = domain_xml_format(definition, false, NULL);
    cr_assert_not_null(strstr(live, "<alias name='virtio-disk0'/>"));
    cr_assert_null(strstr(inactive, "<alias name='virtio-disk0'/>"));
    cr_assert_not_null(strstr(inactive, "<address type='pci' domain='0x0000' bus='0x00' "
                                        "slot='0x04' function='0x0'/>"),
                       "addresses stay in the inactive XML");
    free(live);
    free(inactive);
    free(definition->disks[0].alias);
    definition->disks[0].alias = strdup("ua-mine");
    inactive = domain_xml_format(definition, false, NULL);
    cr_assert_not_null(strstr(inactive, "<alias name='ua-mine'/>"));
    free(inactive);
    domain_definition_free(definition);
}

/* --- bad examples ----------------------------------------------------------------------- */

Test(domain_xml, invalid_examples_fail_with_a_line)
{
    char names[128][256];
    size_t count = list_data(is_invalid, names, 128);
    cr_assert_geq(count, 20);
    for (size_t i = 0; i < count; i++) {
        size_t length;
        char *xml = read_data(names[i], &length);
        struct pv_error error = {0};
        if (is_fragment(names[i])) {
            struct domain_device *device = domain_xml_parse_device(xml, length, SCHEMA_DIR, &error);
            cr_assert_null(device, "%s parses", names[i]);
        } else {
            struct domain_definition *definition =
                domain_xml_parse(xml, length, SCHEMA_DIR, &error);
            cr_assert_null(definition, "%s parses", names[i]);
        }
        cr_assert_eq(error.code, -EINVAL, "%s: %d %s", names[i], error.code, error.message);
        cr_assert_eq(strncmp(error.message, "line ", 5), 0, "%s: %s", names[i], error.message);
        free(xml);
    }
}

Test(domain_xml, unsupported_examples_say_so)
{
    char names[64][256];
    size_t count = list_data(is_unsupported, names, 64);
    cr_assert_geq(count, 10);
    for (size_t i = 0; i < count; i++) {
        size_t length;
        char *xml = read_data(names[i], &length);
        struct pv_error error = {0};
        void *result = is_fragment(names[i])
                           ? (void *)domain_xml_parse_device(xml, length, SCHEMA_DIR, &error)
                           : (void *)domain_xml_parse(xml, length, SCHEMA_DIR, &error);
        cr_assert_null(result, "%s parses", names[i]);
        cr_assert_eq(error.code, -EOPNOTSUPP, "%s: %s", names[i], error.message);
        cr_assert_eq(strncmp(error.message, "unsupported: <", 14), 0, "%s: %s", names[i],
                     error.message);
        cr_assert_not_null(strstr(error.message, "(line "), "%s: %s", names[i], error.message);
        cr_assert_not_null(strstr(error.message, "is not supported by plugvirt"));
        free(xml);
    }
}

static void expect_message(const char *file, const char *expected)
{
    size_t length;
    char *xml = read_data(file, &length);
    struct pv_error error = {0};
    cr_assert_null(domain_xml_parse(xml, length, SCHEMA_DIR, &error));
    cr_assert_str_eq(error.message, expected);
    free(xml);
}

Test(domain_xml, precise_messages)
{
    expect_message("extra-content-invalid.xml", "line 12: Element disk has extra content: foo");
    expect_message("disk-rerror-enospace-unsupported.xml",
                   "unsupported: <driver rerror_policy='enospace'> (line 10) is not supported by "
                   "plugvirt: QEMU has no read error policy 'enospc' (libvirt's schema refuses it "
                   "too)");
    expect_message("interface-network-unsupported.xml",
                   "unsupported: <interface type='network'> (line 9) is not supported by plugvirt: "
                   "plugvirt supports type 'ethernet' and 'bridge'");
    expect_message("interface-e1000-unsupported.xml",
                   "unsupported: <model type='e1000'> (line 10) is not supported by plugvirt: "
                   "only model type='virtio' is");
    expect_message("interface-driver-txmode-unsupported.xml",
                   "unsupported: <driver name='vhost'> (line 10) is not supported by "
                   "plugvirt: plugvirt supports only <driver queues='N'/> (the VMM gets a tap, "
                   "vhost is off)");
    expect_message("interface-vlan-unsupported.xml",
                   "unsupported: <vlan> (line 11) is not supported by plugvirt");
    expect_message("interface-unmanaged-no-dev-invalid.xml",
                   "line 10: <target managed='no'> needs dev= (an existing tap)");
    expect_message("interface-queues-zero-invalid.xml",
                   "line 9: <driver queues='0'>: at least one queue");
    expect_message("video-unsupported.xml",
                   "unsupported: <video> (line 9) is not supported by plugvirt");
    expect_message("duplicate-target-invalid.xml", "line 13: disk target 'vda' is already used");
    expect_message("bad-uuid-invalid.xml",
                   "line 8: invalid UUID 'c7a5fdbd-edaf-9455-926a-d65c16db18'");
    expect_message("bad-mac-invalid.xml", "line 10: invalid MAC address '52:54:00:zz:00:01'");
    expect_message("vcpu-current-invalid.xml",
                   "line 8: <vcpu current='4'> is more than the maximum of 2 vCPUs");
    expect_message("memory-zero-invalid.xml", "line 3: <memory> must be greater than 0");
    expect_message("wrong-root-invalid.xml",
                   "line 1: the root element is <network>, expected <domain>");
    expect_message("bad-lifecycle-invalid.xml",
                   "line 8: Error validating value of <on_reboot> 'explode'");
    size_t length;
    char *xml = read_data("boot-unsupported.xml", &length);
    struct pv_error error = {0};
    cr_assert_null(domain_xml_parse(xml, length, SCHEMA_DIR, &error));
    cr_assert_not_null(strstr(error.message, "boots a kernel directly"), "%s", error.message);
    free(xml);
}

Test(domain_xml, degenerate_input_never_crashes)
{
    struct pv_error error = {0};
    cr_assert_null(domain_xml_parse(NULL, 0, SCHEMA_DIR, &error));
    cr_assert_eq(error.code, -EINVAL);
    cr_assert_null(domain_xml_parse("", 0, SCHEMA_DIR, &error));
    cr_assert_str_eq(error.message, "line 1: the XML document is empty");
    cr_assert_null(domain_xml_parse("<domain", 7, SCHEMA_DIR, NULL), "NULL error is fine");
    cr_assert_null(domain_xml_parse_device("", 0, SCHEMA_DIR, &error));
    cr_assert_null(parse_device_text("<domain type='kvm'/>", &error));
    cr_assert_eq(error.code, -EINVAL);

    size_t size = DOMAIN_XML_MAX_LENGTH + 1;
    char *huge = malloc(size);
    memset(huge, ' ', size);
    memcpy(huge, "<domain>", 8);
    cr_assert_null(domain_xml_parse(huge, size, SCHEMA_DIR, &error));
    cr_assert_not_null(strstr(error.message, "too large"));
    free(huge);

    /* A missing schema is an error, not a crash (and not "valid"). */
    size_t length;
    char *xml = read_data("minimal.xml", &length);
    cr_assert_null(domain_xml_parse(xml, length, "/nonexistent/schemas", &error));
    cr_assert_not_null(strstr(error.message, "cannot load the schema"), "%s", error.message);
    free(xml);

    /* A length shorter than the text: only that prefix is parsed. */
    const char *text = "<domain type='kvm'><name>x</name></domain>";
    cr_assert_null(domain_xml_parse(text, 10, SCHEMA_DIR, &error));
    cr_assert_eq(strncmp(error.message, "line 1: ", 8), 0);
}

Test(domain_xml, names_titles_and_vcpus)
{
    struct pv_error error = {0};
    struct domain_definition *definition =
        parse_with("<memory>1024</memory><vcpu current='2'>4</vcpu>", &error);
    cr_assert_not_null(definition, "%s", error.message);
    cr_assert_eq(definition->vcpus_max, 4);
    cr_assert_eq(definition->vcpus_current, 2);
    char *xml = domain_xml_format(definition, false, NULL);
    cr_assert_not_null(strstr(xml, "<vcpu placement='static' current='2'>4</vcpu>"));
    free(xml);
    domain_definition_free(definition);

    cr_assert_null(parse_with("<memory>1024</memory><vcpu>5000</vcpu>", &error));
    cr_assert_not_null(strstr(error.message, "out of range"), "%s", error.message);
    cr_assert_null(parse_with("<memory>1024</memory><title>a\nb</title>", &error));
    cr_assert_not_null(strstr(error.message, "newlines"), "%s", error.message);
    cr_assert_null(parse_with("<memory>1024</memory><uuid>not-a-uuid</uuid>", &error));
    cr_assert_not_null(strstr(error.message, "invalid UUID"));

    definition = parse_with("<memory>1024</memory><title>T &amp; &lt;x&gt; 'q'</title>", &error);
    cr_assert_not_null(definition, "%s", error.message);
    xml = domain_xml_format(definition, false, NULL);
    cr_assert_not_null(strstr(xml, "<title>T &amp; &lt;x&gt; &apos;q&apos;</title>"), "%s", xml);
    free(xml);
    domain_definition_free(definition);
}

/* --- units ------------------------------------------------------------------------------ */

Test(domain_units, libvirt_semantics)
{
    struct {
        uint64_t value;
        const char *unit;
        uint64_t kib;
    } cases[] = {
        {1024, NULL, 1024},
        {1024, "KiB", 1024},
        {1, "k", 1},
        {1, "K", 1},
        {1000, "KB", 977},
        {2048, "KB", 2000},
        {1024, "b", 1},
        {1, "bytes", 1},
        {1025, "B", 2},
        {1, "MB", 977},
        {1, "M", 1024},
        {1, "MiB", 1024},
        {1, "GB", 976563},
        {1, "G", 1048576},
        {1, "GiB", 1048576},
        {1, "TB", 976562500},
        {1, "T", 1073741824},
        {1, "TiB", 1073741824},
        {1, "PiB", 1ull << 40},
        {7, "EiB", 7ull << 50},
        {0, "GiB", 0},
        {3, "gib", 3145728},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t kib = 12345;
        struct pv_error error = {0};
        cr_assert_eq(domain_scale_to_kib(cases[i].value, cases[i].unit, &kib, &error), 0, "%s: %s",
                     cases[i].unit, error.message);
        cr_assert_eq(kib, cases[i].kib, "%llu %s -> %llu KiB, expected %llu",
                     (unsigned long long)cases[i].value, cases[i].unit ? cases[i].unit : "",
                     (unsigned long long)kib, (unsigned long long)cases[i].kib);
    }
    uint64_t kib;
    cr_assert_eq(domain_scale_to_kib(8, "EiB", &kib, NULL), -ERANGE);
    cr_assert_eq(domain_scale_to_kib(UINT64_MAX, "b", &kib, NULL), -ERANGE);
    cr_assert_eq(domain_scale_to_kib(1, "furlongs", &kib, NULL), -EINVAL);
    cr_assert_eq(domain_scale_to_kib(1, "KiBB", &kib, NULL), -EINVAL);
}

Test(domain_units, in_the_xml)
{
    struct pv_error error = {0};
    struct domain_definition *definition = parse_with(
        "<memory unit='KB'>1000</memory><currentMemory unit='bytes'>524288</currentMemory>",
        &error);
    cr_assert_not_null(definition, "%s", error.message);
    cr_assert_eq(definition->memory_kib, 977);
    cr_assert_eq(definition->current_memory_kib, 512);
    char *xml = domain_xml_format(definition, false, NULL);
    cr_assert_not_null(strstr(xml, "<memory unit='KiB'>977</memory>"));
    free(xml);
    domain_definition_free(definition);

    cr_assert_null(parse_with("<memory unit='EiB'>8</memory>", &error));
    cr_assert_not_null(strstr(error.message, "too large"), "%s", error.message);
    cr_assert_null(parse_with("<memory>-5</memory>", &error));
    cr_assert_eq(strncmp(error.message, "line ", 5), 0);
}

/* --- device fragments ------------------------------------------------------------------- */

Test(domain_device, fragments_parse_and_round_trip)
{
    char names[32][256];
    size_t count = list_data(is_good_fragment, names, 32);
    cr_assert_geq(count, 7);
    for (size_t i = 0; i < count; i++) {
        size_t length;
        char *xml = read_data(names[i], &length);
        struct pv_error error = {0};
        struct domain_device *device = domain_xml_parse_device(xml, length, SCHEMA_DIR, &error);
        cr_assert_not_null(device, "%s: %s", names[i], error.message);
        char *formatted = domain_xml_format_device(device, &error);
        cr_assert_not_null(formatted);
        struct domain_device *again = parse_device_text(formatted, &error);
        cr_assert_not_null(again, "%s: %s\n%s", names[i], error.message, formatted);
        char *formatted_again = domain_xml_format_device(again, NULL);
        cr_assert_str_eq(formatted_again, formatted);
        struct domain_device *copy = domain_device_copy(device);
        char *formatted_copy = domain_xml_format_device(copy, NULL);
        cr_assert_str_eq(formatted_copy, formatted);
        free(formatted_copy);
        free(formatted_again);
        free(formatted);
        domain_device_free(copy);
        domain_device_free(again);
        domain_device_free(device);
        free(xml);
    }
}

Test(domain_device, fragment_kinds)
{
    struct pv_error error = {0};
    struct domain_device *device =
        parse_device_text("<interface type='ethernet'><target dev='tap0'/></interface>", &error);
    cr_assert_not_null(device, "%s", error.message);
    cr_assert_eq(device->kind, DOMAIN_DEVICE_INTERFACE);
    cr_assert_null(device->interface.mac, "fragments get no generated MAC (detach matches it)");
    domain_device_free(device);

    device =
        parse_device_text("<disk type='file' device='cdrom'><target dev='sdc'/></disk>", &error);
    cr_assert_not_null(device, "%s", error.message);
    cr_assert_eq(device->kind, DOMAIN_DEVICE_DISK);
    cr_assert_eq(device->disk.target_bus, DOMAIN_DISK_BUS_SCSI, "derived from 'sd'");
    cr_assert_null(device->disk.source, "an empty cdrom");
    domain_device_free(device);

    cr_assert_null(parse_device_text("<video><model type='vga'/></video>", &error));
    cr_assert_eq(error.code, -EOPNOTSUPP);
    cr_assert_null(
        parse_device_text("<disk><target dev='hda'/><source file='/a'/></disk>", &error));
    cr_assert_eq(error.code, -EOPNOTSUPP, "%s", error.message);
    cr_assert_null(parse_device_text("<name>x</name>", &error));
    cr_assert_eq(error.code, -EINVAL);
    cr_assert_null(parse_device_text(
        "<disk type='file'><source file='/a'/><target dev='vdb'/>"
        "<address type='drive' controller='0' bus='0' target='0' unit='0'/></disk>",
        &error));
    cr_assert_not_null(strstr(error.message, "address of type 'pci'"), "%s", error.message);
}

/* --- model: add / remove / copy --------------------------------------------------------- */

Test(domain_model, add_find_remove)
{
    struct domain_definition *definition = parse_file("minimal.xml");
    struct pv_error error = {0};
    struct domain_device *disk = parse_device_text(
        "<disk type='file'><source file='/img/b.img'/><target dev='vdb'/></disk>", &error);
    cr_assert_not_null(disk, "%s", error.message);
    cr_assert_eq(domain_definition_add_device(definition, disk, &error), 0, "%s", error.message);
    struct domain_disk *found = domain_find_disk(definition, "vdb");
    cr_assert_not_null(found);
    cr_assert_str_eq(found->source, "/img/b.img");
    cr_assert_neq(found->source, disk->disk.source, "the definition holds a copy");
    cr_assert_eq(domain_definition_add_device(definition, disk, &error), -EEXIST);
    cr_assert_not_null(strstr(error.message, "vdb"));
    cr_assert_null(domain_find_disk(definition, "vdc"));

    struct domain_device *channel = parse_device_text(
        "<channel type='unix'><source mode='bind' path='/run/a.sock'/>"
        "<target type='virtio' name='org.example.0'/><alias name='ua-chan'/></channel>",
        &error);
    struct domain_device *serial =
        parse_device_text("<serial type='pty'><target port='0'/></serial>", &error);
    cr_assert_not_null(channel);
    cr_assert_not_null(serial);
    cr_assert_eq(domain_definition_add_device(definition, channel, &error), 0);
    cr_assert_eq(domain_definition_add_device(definition, serial, &error), 0);
    cr_assert_eq(definition->chardevs[0].kind, DOMAIN_CHARDEV_SERIAL, "serials come first");
    cr_assert_eq(definition->chardevs[1].kind, DOMAIN_CHARDEV_CHANNEL);
    cr_assert_eq(domain_definition_add_device(definition, channel, &error), -EEXIST,
                 "alias already used");

    struct domain_device *interface =
        parse_device_text("<interface type='bridge'><mac address='52:54:00:00:00:0A'/>"
                          "<source bridge='br0'/></interface>",
                          &error);
    cr_assert_not_null(interface);
    cr_assert_eq(domain_definition_add_device(definition, interface, &error), 0);

    struct domain_definition *copy = domain_definition_copy(definition);
    cr_assert_not_null(copy);
    char *original_xml = domain_xml_format(definition, true, NULL);
    char *copy_xml = domain_xml_format(copy, true, NULL);
    cr_assert_str_eq(copy_xml, original_xml);
    free(original_xml);
    free(copy_xml);

    cr_assert_eq(domain_definition_remove_device(definition, disk, &error), 0);
    cr_assert_null(domain_find_disk(definition, "vdb"));
    cr_assert_not_null(domain_find_disk(copy, "vdb"), "the copy is independent");
    cr_assert_eq(domain_definition_remove_device(definition, disk, &error), -ENOENT);
    cr_assert_eq(domain_definition_remove_device(definition, channel, &error), 0);
    cr_assert_eq(definition->chardev_count, 1);
    cr_assert_eq(domain_definition_remove_device(definition, interface, &error), 0, "by MAC: %s",
                 error.message);
    cr_assert_eq(definition->interface_count, 0);
    cr_assert_eq(domain_definition_remove_device(definition, interface, &error), -ENOENT);

    domain_device_free(disk);
    domain_device_free(channel);
    domain_device_free(serial);
    domain_device_free(interface);
    domain_definition_free(copy);
    domain_definition_free(definition);
    domain_definition_free(NULL);
    domain_device_free(NULL);
}

/* --- UUIDs ------------------------------------------------------------------------------ */

Test(domain_uuid, parse_forms)
{
    char out[DOMAIN_UUID_STRING_LENGTH + 1];
    const char *good[] = {
        "c7a5fdbd-edaf-9455-926a-d65c16db1809",    "C7A5FDBD-EDAF-9455-926A-D65C16DB1809",
        "c7a5fdbdedaf9455926ad65c16db1809",        "  c7a5fdbd-edaf-9455-926a-d65c16db1809\n",
        "c7a5-fdbd-edaf-9455-926a-d65c-16db-1809",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct pv_error error = {0};
        cr_assert_eq(domain_uuid_parse(good[i], out, &error), 0, "'%s': %s", good[i],
                     error.message);
        cr_assert_str_eq(out, "c7a5fdbd-edaf-9455-926a-d65c16db1809");
    }
    const char *bad[] = {
        "",
        "c7a5fdbd",
        "c7a5fdbd-edaf-9455-926a-d65c16db180",
        "c7a5fdbd-edaf-9455-926a-d65c16db18099",
        "g7a5fdbd-edaf-9455-926a-d65c16db1809",
        "c7a5fdbd edaf 9455 926a d65c16db1809",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct pv_error error = {0};
        cr_assert_eq(domain_uuid_parse(bad[i], out, &error), -EINVAL, "'%s'", bad[i]);
        cr_assert_not_null(strstr(error.message, "invalid UUID"));
    }
    cr_assert_eq(domain_uuid_parse(NULL, out, NULL), -EINVAL);
}

Test(domain_uuid, generate_version_4)
{
    char first[DOMAIN_UUID_STRING_LENGTH + 1], second[DOMAIN_UUID_STRING_LENGTH + 1];
    domain_uuid_generate(first);
    domain_uuid_generate(second);
    cr_assert_str_neq(first, second);
    char canonical[DOMAIN_UUID_STRING_LENGTH + 1];
    cr_assert_eq(domain_uuid_parse(first, canonical, NULL), 0);
    cr_assert_str_eq(canonical, first, "already canonical");
    cr_assert_eq(first[14], '4', "version 4: %s", first);
    cr_assert(strchr("89ab", first[19]) != NULL, "RFC 4122 variant: %s", first);
}

/* --- serial port and console (issue 9, defect 3) ---------------------------------------- */

#define MEMORY "<memory>131072</memory>"

static struct domain_definition *parse_devices(const char *devices, struct pv_error *error)
{
    char body[2048];
    snprintf(body, sizeof(body), MEMORY "<devices>%s</devices>\n", devices);
    return parse_with(body, error);
}

static void expect_refused(const char *devices, int code, const char *needle)
{
    struct pv_error error = {0};
    struct domain_definition *definition = parse_devices(devices, &error);
    cr_assert_null(definition, "accepted: %s", devices);
    cr_assert_eq(error.code, code, "%s: %d %s", devices, error.code, error.message);
    cr_assert_not_null(strstr(error.message, needle), "%s: '%s' lacks '%s'", devices, error.message,
                       needle);
}

Test(domain_xml, serial_types_file_pty_unix_null_are_accepted)
{
    static const char *const accepted[] = {
        "<serial type='file'><source path='/tmp/s.log'/></serial>",
        "<serial type='file'><source path='/tmp/s.log' append='on'/><target port='0'/></serial>",
        "<serial type='file'><source path='/tmp/s.log' append='off'/></serial>",
        "<serial type='pty'/>",
        "<serial type='unix'><source mode='bind' path='/tmp/s.sock'/></serial>",
        "<serial type='unix'><source mode='connect' path='/tmp/s.sock'/></serial>",
        "<serial type='null'/>",
        "<console type='pty'><target type='serial' port='0'/></console>",
        "<console type='file'><source path='/tmp/c.log'/><target type='serial'/></console>",
        "<serial type='file'><source path='/tmp/s.log' append='on'/></serial>"
        "<console type='file'><source path='/tmp/s.log' append='on'/><target type='serial'/>"
        "</console>",
        "<serial type='pty'><source path='/dev/pts/3'/></serial>"
        "<console type='pty'><source path='/dev/pts/3'/><target type='serial'/></console>",
    };
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        struct pv_error error = {0};
        struct domain_definition *definition = parse_devices(accepted[i], &error);
        cr_assert_not_null(definition, "%s: %s", accepted[i], error.message);
        cr_assert_not_null(domain_serial_port(definition));
        domain_definition_free(definition);
    }
}

Test(domain_xml, serial_file_append_and_pty_path_round_trip)
{
    struct pv_error error = {0};
    struct domain_definition *definition = parse_devices(
        "<serial type='file'><source path='/tmp/s.log' append='on'/></serial>", &error);
    cr_assert_not_null(definition, "%s", error.message);
    cr_assert_str_eq(domain_serial_port(definition)->source_append, "on");
    char *xml = domain_xml_format(definition, false, &error);
    cr_assert_not_null(strstr(xml, "<source path='/tmp/s.log' append='on'/>"), "%s", xml);
    free(xml);
    domain_definition_free(definition);

    definition = parse_devices("<serial type='pty'><source path='/dev/pts/3'/></serial>"
                               "<console type='pty'><source path='/dev/pts/3'/></console>",
                               &error);
    cr_assert_not_null(definition, "%s", error.message);
    char *live = domain_xml_format(definition, true, &error);
    char *inactive = domain_xml_format(definition, false, &error);
    cr_assert_not_null(strstr(live, "<source path='/dev/pts/3'/>"), "%s", live);
    cr_assert_null(strstr(inactive, "/dev/pts/3"), "a pty's path is runtime state: %s", inactive);
    free(live);
    free(inactive);
    domain_definition_free(definition);
}

Test(domain_xml, serial_refusals_name_the_problem)
{
    static const char *const types[] = {"tcp",      "udp",          "stdio", "vc",
                                        "spicevmc", "pipe",         "dev",   "spiceport",
                                        "nmdm",     "qemu-vdagent", "dbus"};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        char devices[256], needle[64];
        snprintf(devices, sizeof(devices), "<serial type='%s'/>", types[i]);
        snprintf(needle, sizeof(needle), "<serial type='%s'>", types[i]);
        expect_refused(devices, -EOPNOTSUPP, needle);
        snprintf(devices, sizeof(devices), "<console type='%s'/>", types[i]);
        snprintf(needle, sizeof(needle), "<console type='%s'>", types[i]);
        expect_refused(devices, -EOPNOTSUPP, needle);
    }
    expect_refused("<serial type='pty'/><serial type='null'/>", -EOPNOTSUPP, "a second <serial>");
    expect_refused("<serial type='file'><source path='/tmp/a'/><target port='1'/></serial>",
                   -EOPNOTSUPP, "<target port='1'>");
    expect_refused("<console type='pty'/><console type='pty'/>", -EOPNOTSUPP, "a second <console>");
    expect_refused("<console type='pty'><target type='virtio'/></console>", -EOPNOTSUPP,
                   "target type='virtio'");
    expect_refused("<serial type='pty'/><console type='null'><target type='serial'/></console>",
                   -EINVAL, "must match the <serial>");
    expect_refused("<serial type='file'><source path='/tmp/a'/></serial>"
                   "<console type='file'><source path='/tmp/b'/></console>",
                   -EINVAL, "must match the <serial>");
    expect_refused("<serial type='file'/>", -EINVAL, "needs <source path=...>");
    expect_refused("<serial type='unix'><source mode='bind'/></serial>", -EINVAL,
                   "needs <source path=...>");
    expect_refused("<serial type='null'><source path='/tmp/a'/></serial>", -EINVAL,
                   "takes no <source>");
    expect_refused("<serial type='pty'><source append='on'/></serial>", -EINVAL,
                   "append= is only for type='file'");
    expect_refused("<serial type='file'><source mode='bind' path='/tmp/a'/></serial>", -EINVAL,
                   "mode= is only for type='unix'");
    /* Unknown attributes and elements, by name. */
    expect_refused("<serial type='file'><source path='/tmp/a' bogus='1'/></serial>", -EINVAL,
                   "bogus");
    expect_refused("<serial type='file' bogus='1'><source path='/tmp/a'/></serial>", -EINVAL,
                   "bogus");
    expect_refused("<serial type='file'><source path='/tmp/a' append='yes'/></serial>", -EINVAL,
                   "append");
    expect_refused("<serial type='unix'><source mode='listen' path='/tmp/a'/></serial>", -EINVAL,
                   "mode");
    expect_refused("<serial type='file'><source path='/tmp/a'/><log file='/tmp/l'/></serial>",
                   -EOPNOTSUPP, "<log>");
    expect_refused("<serial type='unix'><source mode='connect' path='/tmp/a'>"
                   "<reconnect enabled='yes' timeout='1'/></source></serial>",
                   -EOPNOTSUPP, "<reconnect>");
    expect_refused("<serial type='pty'><target type='pci-serial'/></serial>", -EOPNOTSUPP,
                   "pci-serial");
}

/* Reading domain XML safely, refusing what plugvirt does not support, RelaxNG validation
 * (see domain_xml.c). */
#include "domain.h"
#include "domain_xml_internal.h"
#include "schemas_builtin.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/relaxng.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#define DOMAIN_VCPUS_MAX 4096
#define DOMAIN_NAME_MAX 255

/* --- error capture -------------------------------------------------------------------- */

const char *domain_xml_node_name(xmlNodePtr node)
{
    return node && node->name ? (const char *)node->name : "";
}

/* The first error libxml2 reports, with its line: later ones are mostly consequences. */

static void capture_error(struct xml_error_capture *capture, xml_error_pointer xml_error)
{
    if (!xml_error || xml_error->level < XML_ERR_ERROR)
        return;
    long line = xml_error->line;
    if (line <= 0 && xml_error->node)
        line = xmlGetLineNo((xmlNodePtr)xml_error->node);
    if (capture->captured) {
        /* Some first errors have no node ("Extra element X in interleave"): take the line
         * of the next one, which names the element. */
        if (capture->line <= 0)
            capture->line = line;
        return;
    }
    capture->captured = true;
    capture->line = line;
    snprintf(capture->message, sizeof(capture->message), "%s",
             xml_error->message ? xml_error->message : "unknown XML error");
    size_t length = strlen(capture->message);
    while (length > 0 && isspace((unsigned char)capture->message[length - 1]))
        capture->message[--length] = '\0';
    /* "Error validating value" says neither which element nor which value. */
    xmlNodePtr node = xml_error->node;
    if (node && node->type == XML_ELEMENT_NODE &&
        !strstr(capture->message, domain_xml_node_name(node))) {
        xmlChar *value =
            node->children && !node->children->next && node->children->type == XML_TEXT_NODE
                ? xmlNodeGetContent(node)
                : NULL;
        snprintf(capture->message + length, sizeof(capture->message) - length, " of <%s>%s%s%s",
                 domain_xml_node_name(node), value ? " '" : "", value ? (const char *)value : "",
                 value ? "'" : "");
        xmlFree(value);
    }
}

static void capture_validation_error(void *data, xml_error_pointer xml_error)
{
    capture_error(data, xml_error);
}

#if LIBXML_VERSION < 21300
/* Before 2.13 the parser's structured handler receives the parser context (its userData);
 * the capture hangs off its _private field. */
static void capture_parser_error(void *data, xml_error_pointer xml_error)
{
    xmlParserCtxtPtr parser = data;
    capture_error(parser->_private, xml_error);
}
#endif

/* --- unsupported libvirt elements and attributes --------------------------------------- */

/* Names separated by '|'. */
static bool name_in_list(const char *name, const char *list)
{
    size_t length = strlen(name);
    for (const char *cursor = list; cursor && *cursor;) {
        const char *end = strchr(cursor, '|');
        size_t item = end ? (size_t)(end - cursor) : strlen(cursor);
        if (item == length && strncmp(cursor, name, length) == 0)
            return true;
        cursor = end ? end + 1 : NULL;
    }
    return false;
}

struct unsupported_element {
    const char *parents;  /* '|'-separated element names */
    const char *elements; /* '|'-separated */
    const char *hint;
};

static const struct unsupported_element unsupported_elements[] = {
    {"domain",
     "memoryBacking|blkiotune|memtune|cputune|numatune|resource|sysinfo|bootloader|"
     "bootloader_args|iothreads|iothreadids|defaultiothread|maxMemory|vcpus|idmap|perf|"
     "seclabel|keywrap|launchSecurity|genid|metadata|on_lockfailure|throttlegroups",
     NULL},
    {"os", "boot", "plugvirt-vmm boots a kernel directly; use <kernel>, <initrd> and <cmdline>"},
    {"os",
     "loader|nvram|bootmenu|smbios|bios|init|initarg|initenv|initdir|inituser|initgroup|dtb|"
     "acpi|firmware|shim|varstore",
     "plugvirt-vmm boots a kernel directly; use <kernel>, <initrd> and <cmdline>"},
    {"features",
     "hap|viridian|privnet|hyperv|kvm|xen|pvspinlock|capabilities|pmu|vmport|gic|smm|ioapic|"
     "hpt|vmcoreinfo|htm|nested-hv|msrs|ccf-assist|cfpc|sbbo|ibs|tcg|async-teardown|ras|ps2|"
     "aia|sev",
     "only <acpi/>, <apic/> and <pae/> are"},
    {"cpu", "vendor|topology|feature|numa|cache|maxphysaddr", NULL},
    {"clock", "timer", NULL},
    {"devices",
     "graphics|video|sound|audio|input|memballoon|rng|watchdog|smartcard|redirdev|redirfilter|"
     "tpm|filesystem|hub|lease|parallel|panic|shmem|memory|iommu|vsock|nvram|crypto|pstore",
     NULL},
    {"disk",
     "boot|transient|iotune|encryption|auth|backingStore|geometry|blockio|wwn|"
     "vendor|product|mirror|throttlefilters|backenddomain",
     NULL},
    {"interface",
     "boot|bandwidth|vlan|virtualport|filterref|tune|rom|mtu|coalesce|ip|route|"
     "script|downscript|guest|backend|teaming|port|acpi",
     NULL},
    {"driver", "host|guest", NULL},
    {"hostdev", "boot|rom|acpi", NULL},
    {"controller", "driver|model|target|pcihole64|master", NULL},
    {"serial|console|channel", "log|protocol", NULL},
    {"source", "reconnect|seclabel", NULL},
};

struct unsupported_attribute {
    const char *parents;    /* '|'-separated, NULL: anywhere */
    const char *elements;   /* '|'-separated */
    const char *attributes; /* '|'-separated */
    const char *values;     /* '|'-separated, NULL: the attribute itself */
    const char *hint;
};

static const struct unsupported_attribute unsupported_attributes[] = {
    {NULL, "domain", "type",
     "xen|lxc|uml|openvz|test|vmware|hyperv|vbox|phyp|vz|parallels|bhyve|hvf|kqemu|ch", NULL},
    {"domain", "memory|currentMemory", "dumpCore", NULL, NULL},
    {"domain", "vcpu", "cpuset", NULL, NULL},
    {"domain", "vcpu", "placement", "auto", NULL},
    {"domain", "os", "firmware", NULL,
     "plugvirt-vmm boots a kernel directly; use <kernel>, <initrd> and <cmdline>"},
    {"os", "type", "arch",
     "i686|aarch64|armv6l|armv7l|armv7b|ppc|ppc64|ppc64le|s390|s390x|riscv32|riscv64|mips|"
     "mipsel|mips64|mips64el|sparc|sparc64|alpha|cris|lm32|m68k|microblaze|microblazeel|"
     "loongarch64",
     "plugvirt runs x86_64 guests"},
    {"devices", "disk", "type", "network|volume|dir|nvme|vhostuser|vhostvdpa", NULL},
    {"devices", "disk", "device", "floppy|lun", NULL},
    {"disk", "target", "bus", "ide|sata|usb|sd|fdc|xen|uml", "use bus='virtio' or bus='scsi'"},
    {"disk", "target", "tray|removable|rotation_rate", NULL, NULL},
    {"disk", "driver",
     "discard|detect_zeroes|iothread|queues|queue_size|copy_on_read|event_idx|ioeventfd|"
     "metadata_cache|discard_no_unref|statistics",
     NULL, NULL},
    {"disk", "driver", "rerror_policy", "enospace",
     "QEMU has no read error policy 'enospc' (libvirt's schema refuses it too)"},
    {"disk", "source", "startupPolicy", NULL, NULL},
    {"devices", "interface", "type",
     "network|user|direct|vhostuser|hostdev|mcast|server|client|udp|vdpa|null|vds|internal",
     "plugvirt supports type 'ethernet' and 'bridge'"},
    {"interface", "driver", "name", "qemu|vhost|tap|kvm|vfio|xen|hostdev",
     "plugvirt supports only <driver queues='N'/> (the VMM gets a tap, vhost is off)"},
    {"interface", "driver",
     "name|txmode|ioeventfd|event_idx|rx_queue_size|tx_queue_size|queue_size|page_per_vq|"
     "iommu|ats|packed|rss|rss_hash_report",
     NULL, "plugvirt supports only <driver queues='N'/>"},
    {"interface", "source", "network|dev|mode|path|type|address|port|portgroup", NULL,
     "<interface type='bridge'> takes <source bridge=...>"},
    {"interface", "model", "type",
     "e1000|e1000e|rtl8139|ne2k_pci|pcnet|vmxnet3|i82551|i82557b|i82559er|virtio-transitional|"
     "virtio-non-transitional|igb|usb-net",
     "only model type='virtio' is"},
    {"devices", "controller", "type", "ide|fdc|sata|ccid|xenbus|isa", NULL},
    {"devices", "controller", "ports|vectors|maxGrantFrames|maxEventChannels", NULL, NULL},
    {"devices", "hostdev", "mode", "capabilities", NULL},
    {"devices", "hostdev", "type", "usb|scsi|scsi_host|mdev", NULL},
    {"devices", "channel", "type", "dev|pipe|tcp|udp|vc|spicevmc|spiceport|nmdm|qemu-vdagent|dbus",
     NULL},
    {"devices", "serial|console", "type",
     "dev|pipe|tcp|udp|vc|spicevmc|spiceport|nmdm|qemu-vdagent|dbus|stdio",
     "a serial port or console can be type='file', 'pty', 'unix' or 'null' (use 'pvsh console' "
     "for an interactive console)"},
    {"channel", "target", "type", "guestfwd|xen", NULL},
    {"serial", "target", "type",
     "pci-serial|usb-serial|spapr-vio-serial|system-serial|sclp-serial|isa-debug", NULL},
    {"console", "target", "type", "xen|uml|lxc|openvz|sclp|sclplm|s390", NULL},
    {NULL, "address", "type", "ccw|virtio-mmio|spapr-vio|isa|dimm|ccid|usb|unassigned|s390", NULL},
    {NULL, "address", "multifunction", NULL, NULL},
};

/* Elements whose every attribute is known: an unknown one is named (libxml2's RelaxNG
 * reports it inside an interleave only as "Extra element source in interleave"). */
struct known_attributes {
    const char *grandparents; /* '|'-separated, NULL: any */
    const char *parents;      /* '|'-separated */
    const char *elements;     /* '|'-separated */
    const char *attributes;   /* '|'-separated */
};

static const struct known_attributes known_attributes[] = {
    {NULL, "devices", "serial|console", "type"},
    {"devices", "serial|console", "source", "mode|path|append"},
    {"devices", "serial|console", "target", "type|port"},
    {"devices", "serial|console", "alias", "name"},
};

bool domain_xml_is_element(xmlNodePtr node, const char *name)
{
    return node && node->type == XML_ELEMENT_NODE && strcmp(domain_xml_node_name(node), name) == 0;
}

/* The parent element's name; `root_parent` for the root (a device fragment's is "devices"). */
static const char *parent_name(xmlNodePtr node, const char *root_parent)
{
    return node->parent && node->parent->type == XML_ELEMENT_NODE
               ? domain_xml_node_name(node->parent)
               : root_parent;
}

static int check_unknown_attributes(xmlNodePtr node, const char *root_parent,
                                    struct pv_error *error)
{
    const char *name = domain_xml_node_name(node);
    const char *parent = parent_name(node, root_parent);
    const char *grandparent = node->parent && node->parent->type == XML_ELEMENT_NODE
                                  ? parent_name(node->parent, root_parent)
                                  : "";
    for (size_t i = 0; i < sizeof(known_attributes) / sizeof(known_attributes[0]); i++) {
        const struct known_attributes *rule = &known_attributes[i];
        if (!name_in_list(name, rule->elements) || !name_in_list(parent, rule->parents) ||
            (rule->grandparents && !name_in_list(grandparent, rule->grandparents)))
            continue;
        for (xmlAttrPtr attribute = node->properties; attribute; attribute = attribute->next) {
            const char *attribute_name = (const char *)attribute->name;
            if (attribute->ns || !name_in_list(attribute_name, rule->attributes))
                return pv_error_set(
                    error, -EINVAL, "line %ld: unknown attribute '%s' of <%s> in <%s> (known: %s)",
                    domain_xml_node_line(node), attribute_name, name, parent, rule->attributes);
            const char *values = strcmp(attribute_name, "append") == 0 ? "on|off"
                                 : strcmp(attribute_name, "mode") == 0 ? "bind|connect"
                                                                       : NULL;
            xmlChar *value =
                values ? xmlNodeListGetString(node->doc, attribute->children, 1) : NULL;
            bool valid = !values || (value && name_in_list((const char *)value, values));
            int result = valid
                             ? 0
                             : pv_error_set(error, -EINVAL,
                                            "line %ld: invalid %s='%s' of <%s> in <%s> "
                                            "(use %s)",
                                            domain_xml_node_line(node), attribute_name,
                                            value ? (const char *)value : "", name, parent, values);
            xmlFree(value);
            if (result < 0)
                return result;
        }
    }
    return 0;
}

static int check_unsupported_attributes(xmlNodePtr node, const char *root_parent,
                                        struct pv_error *error)
{
    const char *name = domain_xml_node_name(node);
    const char *parent = parent_name(node, root_parent);
    for (size_t i = 0; i < sizeof(unsupported_attributes) / sizeof(unsupported_attributes[0]);
         i++) {
        const struct unsupported_attribute *rule = &unsupported_attributes[i];
        if (!name_in_list(name, rule->elements) ||
            (rule->parents && !name_in_list(parent, rule->parents)))
            continue;
        for (xmlAttrPtr attribute = node->properties; attribute; attribute = attribute->next) {
            const char *attribute_name = (const char *)attribute->name;
            if (attribute->ns || !name_in_list(attribute_name, rule->attributes))
                continue;
            char what[PV_ERROR_MESSAGE_MAX / 2];
            if (rule->values) {
                xmlChar *value = xmlNodeListGetString(node->doc, attribute->children, 1);
                bool listed = value && name_in_list((const char *)value, rule->values);
                snprintf(what, sizeof(what), "<%s %s='%s'>", name, attribute_name,
                         value ? (const char *)value : "");
                xmlFree(value);
                if (!listed)
                    continue;
            } else {
                snprintf(what, sizeof(what), "attribute '%s' of <%s>", attribute_name, name);
            }
            return domain_xml_unsupported(error, node, what, rule->hint);
        }
    }
    return 0;
}

/* Walks the tree in document order and reports the first unsupported element. */
int domain_xml_check_unsupported(xmlNodePtr node, const char *root_parent, struct pv_error *error)
{
    for (; node; node = node->next) {
        if (node->type != XML_ELEMENT_NODE)
            continue;
        char what[PV_ERROR_MESSAGE_MAX / 2];
        if (node->ns && node->ns->href && node->ns->href[0] &&
            strcmp((const char *)node->ns->href, DOMAIN_XML_PLUGVIRT_NAMESPACE) == 0 &&
            strcmp(domain_xml_node_name(node), "hotplug") == 0 &&
            (strcmp(parent_name(node, root_parent), "disk") == 0 ||
             strcmp(parent_name(node, root_parent), "interface") == 0))
            continue; /* our own status element (live XML); the daemon refuses it as input */
        if (node->ns && node->ns->href && node->ns->href[0]) {
            /* libvirt's extension namespaces (qemu:commandline, metadata, ...) */
            snprintf(what, sizeof(what), "<%s%s%s> (namespace %s)",
                     node->ns->prefix ? (const char *)node->ns->prefix : "",
                     node->ns->prefix ? ":" : "", domain_xml_node_name(node),
                     (const char *)node->ns->href);
            return domain_xml_unsupported(error, node, what, NULL);
        }
        const char *parent = parent_name(node, root_parent);
        for (size_t i = 0; i < sizeof(unsupported_elements) / sizeof(unsupported_elements[0]);
             i++) {
            const struct unsupported_element *rule = &unsupported_elements[i];
            if (name_in_list(parent, rule->parents) &&
                name_in_list(domain_xml_node_name(node), rule->elements)) {
                snprintf(what, sizeof(what), "<%s>", domain_xml_node_name(node));
                return domain_xml_unsupported(error, node, what, rule->hint);
            }
        }
        int result = check_unsupported_attributes(node, root_parent, error);
        if (result == 0)
            result = check_unknown_attributes(node, root_parent, error);
        if (result < 0)
            return result;
        result = domain_xml_check_unsupported(node->children, root_parent, error);
        if (result < 0)
            return result;
    }
    return 0;
}

/* --- schemas (compiled once per file) ------------------------------------------------- */

struct schema_cache_entry {
    char *path;
    xmlRelaxNGPtr schema;
};

static pthread_mutex_t schema_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct schema_cache_entry schema_cache[8];

/* Without a schema directory the schemas built into the program are used (run from a build
 * tree, nothing installed). libxml2 reads a RelaxNG <include href> through its external
 * entity loader; URLs under this prefix are served from builtin_schemas, others go to the
 * loader that was there before. */
#define BUILTIN_SCHEMA_PREFIX "plugvirt-builtin:/"

static xmlExternalEntityLoader previous_entity_loader;
static pthread_once_t builtin_loader_once = PTHREAD_ONCE_INIT;

static xmlParserInputPtr builtin_entity_loader(const char *url, const char *id,
                                               xmlParserCtxtPtr context)
{
    size_t prefix_length = strlen(BUILTIN_SCHEMA_PREFIX);
    if (url == NULL || strncmp(url, BUILTIN_SCHEMA_PREFIX, prefix_length) != 0)
        return previous_entity_loader ? previous_entity_loader(url, id, context) : NULL;
    for (const struct builtin_schema *schema = builtin_schemas; schema->name; schema++) {
        if (strcmp(url + prefix_length, schema->name) != 0)
            continue;
        /* A copy: libxml2 2.9's static buffers read past the end of the text. */
        xmlParserInputBufferPtr buffer = xmlParserInputBufferCreateMem(
            schema->text, (int)strlen(schema->text), XML_CHAR_ENCODING_NONE);
        if (buffer == NULL)
            return NULL;
        xmlParserInputPtr input = xmlNewIOInputStream(context, buffer, XML_CHAR_ENCODING_NONE);
        if (input == NULL) {
            xmlFreeParserInputBuffer(buffer);
            return NULL;
        }
        /* The document's URL: relative includes resolve under the prefix again. */
        input->filename = (const char *)xmlStrdup((const xmlChar *)url);
        return input;
    }
    return NULL;
}

static void install_builtin_loader(void)
{
    previous_entity_loader = xmlGetExternalEntityLoader();
    xmlSetExternalEntityLoader(builtin_entity_loader);
}

static xmlRelaxNGPtr schema_load(const char *schema_dir, const char *file, struct pv_error *error)
{
    char *path = NULL;
    if (schema_dir ? asprintf(&path, "%s/%s", schema_dir, file) < 0
                   : asprintf(&path, "%s%s", BUILTIN_SCHEMA_PREFIX, file) < 0)
        return pv_error_set(error, -ENOMEM, "out of memory"), NULL;
    if (!schema_dir)
        pthread_once(&builtin_loader_once, install_builtin_loader);

    pthread_mutex_lock(&schema_cache_lock);
    xmlRelaxNGPtr schema = NULL;
    size_t free_slot = SIZE_MAX;
    for (size_t i = 0; i < sizeof(schema_cache) / sizeof(schema_cache[0]); i++) {
        if (schema_cache[i].path && strcmp(schema_cache[i].path, path) == 0) {
            schema = schema_cache[i].schema;
            break;
        }
        if (!schema_cache[i].path && free_slot == SIZE_MAX)
            free_slot = i;
    }
    if (!schema && schema_dir && access(path, R_OK) != 0) {
        /* Checked first: libxml2 would print its own warning on stderr. */
        pv_error_set_errno(error, -errno, "cannot load the schema %s", path);
    } else if (!schema) {
        struct xml_error_capture capture = {0};
        xmlRelaxNGParserCtxtPtr parser = xmlRelaxNGNewParserCtxt(path);
        if (parser) {
            xmlRelaxNGSetParserStructuredErrors(parser, capture_validation_error, &capture);
            schema = xmlRelaxNGParse(parser);
            xmlRelaxNGFreeParserCtxt(parser);
        }
        if (!schema) {
            pv_error_set(error, -ENOENT, "cannot load the schema %s: %s", path,
                         capture.captured ? capture.message : "cannot read it");
        } else if (free_slot != SIZE_MAX) {
            schema_cache[free_slot].path = path;
            schema_cache[free_slot].schema = schema;
            path = NULL;
        }
        /* With the cache full (many schema dirs: tests only), the schema is compiled on
         * each use and leaks: acceptable for such a process. */
    }
    pthread_mutex_unlock(&schema_cache_lock);
    free(path);
    return schema;
}

/* --- reading -------------------------------------------------------------------------- */

/* Counts the lines before `position`: for the DOCTYPE message (a DTD node has no line). */
static long line_of_offset(const char *xml, size_t position)
{
    long line = 1;
    for (size_t i = 0; i < position; i++)
        if (xml[i] == '\n')
            line++;
    return line;
}

xmlDocPtr domain_xml_document_read(const char *xml, size_t length, struct pv_error *error)
{
    size_t first = 0;
    while (xml && first < length && isspace((unsigned char)xml[first]))
        first++;
    if (!xml || first == length)
        return pv_error_set(error, -EINVAL, "line 1: the XML document is empty"), NULL;
    if (length > DOMAIN_XML_MAX_LENGTH)
        return pv_error_set(error, -EINVAL,
                            "line 1: the XML document is too large (%zu bytes, at most %d)", length,
                            DOMAIN_XML_MAX_LENGTH),
               NULL;
    if (length > INT_MAX)
        return NULL;

    xmlInitParser();
    xmlParserCtxtPtr parser = xmlNewParserCtxt();
    if (!parser)
        return pv_error_set(error, -ENOMEM, "out of memory creating an XML parser"), NULL;
    struct xml_error_capture capture = {0};
#if LIBXML_VERSION >= 21300
    xmlCtxtSetErrorHandler(parser, capture_validation_error, &capture);
#else
    parser->_private = &capture;
    parser->sax->serror = capture_parser_error;
#endif
    /* No network, no DTD loading, no entity substitution (XML_PARSE_NOENT is absent). */
    int options = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA |
                  XML_PARSE_BIG_LINES;
    xmlDocPtr document = xmlCtxtReadMemory(parser, xml, (int)length, "domain.xml", NULL, options);
    xmlFreeParserCtxt(parser);
    if (!document || capture.captured) {
        if (capture.captured)
            pv_error_set(error, -EINVAL, "line %ld: %s", capture.line > 0 ? capture.line : 1,
                         capture.message);
        else
            pv_error_set(error, -EINVAL, "line 1: not an XML document");
        xmlFreeDoc(document);
        return NULL;
    }
    if (document->intSubset || document->extSubset) {
        const char *doctype = memmem(xml, length, "<!DOCTYPE", 9);
        pv_error_set(error, -EINVAL, "line %ld: DOCTYPE declarations are not accepted",
                     doctype ? line_of_offset(xml, (size_t)(doctype - xml)) : 1);
        xmlFreeDoc(document);
        return NULL;
    }
    if (!xmlDocGetRootElement(document)) {
        pv_error_set(error, -EINVAL, "line 1: the XML document has no root element");
        xmlFreeDoc(document);
        return NULL;
    }
    return document;
}

/* Validates `node` against the schema `file`: 0 when valid, 1 when not (with the first error
 * in `capture`), < 0 when the schema cannot be loaded. A node other than the root is
 * validated as a copy, root of a document of its own (copies keep their line numbers). */
int domain_xml_validate_node(xmlNodePtr node, const char *schema_dir, const char *file,
                             struct xml_error_capture *capture, struct pv_error *error)
{
    xmlRelaxNGPtr schema = schema_load(schema_dir, file, error);
    if (!schema)
        return error && error->code ? error->code : -ENOENT;
    xmlDocPtr document = node->doc;
    xmlDocPtr alone = NULL;
    if (node != xmlDocGetRootElement(node->doc)) {
        alone = xmlNewDoc((const xmlChar *)"1.0");
        xmlNodePtr copy = alone ? xmlDocCopyNode(node, alone, 1) : NULL;
        if (!copy) {
            xmlFreeDoc(alone);
            return pv_error_set(error, -ENOMEM, "out of memory validating the XML");
        }
        xmlDocSetRootElement(alone, copy);
        document = alone;
    }
    xmlRelaxNGValidCtxtPtr validator = xmlRelaxNGNewValidCtxt(schema);
    if (!validator) {
        xmlFreeDoc(alone);
        return pv_error_set(error, -ENOMEM, "out of memory creating a validator");
    }
    memset(capture, 0, sizeof(*capture));
    xmlRelaxNGSetValidStructuredErrors(validator, capture_validation_error, capture);
    int result = xmlRelaxNGValidateDoc(validator, document);
    xmlRelaxNGFreeValidCtxt(validator);
    xmlFreeDoc(alone);
    if (result == 0)
        return 0;
    if (!capture->captured) {
        capture->captured = true;
        snprintf(capture->message, sizeof(capture->message), "<%s> does not match the schema",
                 domain_xml_node_name(node));
    }
    if (capture->line <= 0)
        capture->line = domain_xml_node_line(node);
    return 1;
}

int domain_xml_capture_report(struct pv_error *error, const struct xml_error_capture *capture)
{
    return pv_error_set(error, -EINVAL, "line %ld: %s", capture->line > 0 ? capture->line : 1,
                        capture->message);
}

/* libxml2 reports an error inside an <interleave> (every child of <domain>) only as "Extra
 * element devices in interleave": when the domain fails, validate its children alone, and
 * the devices one by one, to name the real problem ("Element disk has extra content: foo"). */
int domain_xml_domain_validate(xmlDocPtr document, const char *schema_dir, struct pv_error *error)
{
    xmlNodePtr root = xmlDocGetRootElement(document);
    struct xml_error_capture whole;
    int result = domain_xml_validate_node(root, schema_dir, "domain.rng", &whole, error);
    if (result <= 0)
        return result;
    for (xmlNodePtr child = root->children; child; child = child->next) {
        if (child->type != XML_ELEMENT_NODE)
            continue;
        struct xml_error_capture part;
        result = domain_xml_validate_node(child, schema_dir, "domain-part.rng", &part, error);
        if (result < 0)
            return result;
        if (result == 0)
            continue;
        for (xmlNodePtr device = domain_xml_is_element(child, "devices") ? child->children : NULL;
             device; device = device->next) {
            if (device->type != XML_ELEMENT_NODE || domain_xml_is_element(device, "emulator"))
                continue;
            struct xml_error_capture device_capture;
            result =
                domain_xml_validate_node(device, schema_dir, "device.rng", &device_capture, error);
            if (result < 0)
                return result;
            if (result > 0)
                return domain_xml_capture_report(error, &device_capture);
        }
        return domain_xml_capture_report(error, &part);
    }
    return domain_xml_capture_report(error, &whole);
}

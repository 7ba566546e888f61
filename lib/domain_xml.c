/* libvirt domain XML (the subset in xml-schemas/) <-> struct domain_definition.
 *
 * Parsing runs in four steps, each stopping at the first problem:
 *  1. libxml2 reads the document without network access, entity substitution or DTDs;
 *  2. a walk of the tree reports what libvirt has and plugvirt does not ("unsupported"),
 *     so that such XML fails with a clear message instead of a schema error;
 *  3. RelaxNG validation against the schema, errors carrying the line;
 *  4. the mapping onto the model checks values (UUID, MAC, units, ranges, consistency).
 * Formatting writes libvirt's layout: 2-space indent, single-quoted attributes. */
#include "domain.h"
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

/* libxml2 2.12 made the structured error argument const. */
#if LIBXML_VERSION >= 21200
typedef const xmlError *xml_error_pointer;
#else
typedef xmlError *xml_error_pointer;
#endif

/* --- error capture -------------------------------------------------------------------- */

static const char *node_name(xmlNodePtr node)
{
    return node && node->name ? (const char *)node->name : "";
}

/* The first error libxml2 reports, with its line: later ones are mostly consequences. */
struct xml_error_capture {
    bool captured;
    long line;
    char message[PV_ERROR_MESSAGE_MAX];
};

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
    if (node && node->type == XML_ELEMENT_NODE && !strstr(capture->message, node_name(node))) {
        xmlChar *value =
            node->children && !node->children->next && node->children->type == XML_TEXT_NODE
                ? xmlNodeGetContent(node)
                : NULL;
        snprintf(capture->message + length, sizeof(capture->message) - length, " of <%s>%s%s%s",
                 node_name(node), value ? " '" : "", value ? (const char *)value : "",
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

/* --- error helpers -------------------------------------------------------------------- */

static long node_line(xmlNodePtr node)
{
    long line = node ? xmlGetLineNo(node) : -1;
    return line > 0 ? line : 1;
}

static int invalid(struct pv_error *error, xmlNodePtr node, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
static int invalid(struct pv_error *error, xmlNodePtr node, const char *format, ...)
{
    char message[PV_ERROR_MESSAGE_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof(message), format, args);
    va_end(args);
    return pv_error_set(error, -EINVAL, "line %ld: %s", node_line(node), message);
}

/* "unsupported: <what> (line N) is not supported by plugvirt[: hint]" */
static int unsupported(struct pv_error *error, xmlNodePtr node, const char *what, const char *hint)
{
    return pv_error_set(error, -EOPNOTSUPP,
                        "unsupported: %s (line %ld) is not supported by plugvirt%s%s", what,
                        node_line(node), hint ? ": " : "", hint ? hint : "");
}

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
     "boot|bandwidth|vlan|virtualport|filterref|tune|rom|link|mtu|coalesce|driver|ip|route|"
     "script|downscript|guest|backend|teaming|port|acpi",
     NULL},
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
     "user|direct|vhostuser|hostdev|mcast|server|client|udp|vdpa|null|vds|internal", NULL},
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

static bool is_element(xmlNodePtr node, const char *name)
{
    return node && node->type == XML_ELEMENT_NODE && strcmp(node_name(node), name) == 0;
}

/* The parent element's name; `root_parent` for the root (a device fragment's is "devices"). */
static const char *parent_name(xmlNodePtr node, const char *root_parent)
{
    return node->parent && node->parent->type == XML_ELEMENT_NODE ? node_name(node->parent)
                                                                  : root_parent;
}

static int check_unknown_attributes(xmlNodePtr node, const char *root_parent,
                                    struct pv_error *error)
{
    const char *name = node_name(node);
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
                    node_line(node), attribute_name, name, parent, rule->attributes);
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
                                            node_line(node), attribute_name,
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
    const char *name = node_name(node);
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
            return unsupported(error, node, what, rule->hint);
        }
    }
    return 0;
}

/* Walks the tree in document order and reports the first unsupported element. */
static int check_unsupported(xmlNodePtr node, const char *root_parent, struct pv_error *error)
{
    for (; node; node = node->next) {
        if (node->type != XML_ELEMENT_NODE)
            continue;
        char what[PV_ERROR_MESSAGE_MAX / 2];
        if (node->ns && node->ns->href && node->ns->href[0] &&
            strcmp((const char *)node->ns->href, DOMAIN_XML_PLUGVIRT_NAMESPACE) == 0 &&
            strcmp(node_name(node), "hotplug") == 0 &&
            strcmp(parent_name(node, root_parent), "disk") == 0)
            continue; /* our own status element (live XML); the daemon refuses it as input */
        if (node->ns && node->ns->href && node->ns->href[0]) {
            /* libvirt's extension namespaces (qemu:commandline, metadata, ...) */
            snprintf(what, sizeof(what), "<%s%s%s> (namespace %s)",
                     node->ns->prefix ? (const char *)node->ns->prefix : "",
                     node->ns->prefix ? ":" : "", node_name(node), (const char *)node->ns->href);
            return unsupported(error, node, what, NULL);
        }
        const char *parent = parent_name(node, root_parent);
        for (size_t i = 0; i < sizeof(unsupported_elements) / sizeof(unsupported_elements[0]);
             i++) {
            const struct unsupported_element *rule = &unsupported_elements[i];
            if (name_in_list(parent, rule->parents) &&
                name_in_list(node_name(node), rule->elements)) {
                snprintf(what, sizeof(what), "<%s>", node_name(node));
                return unsupported(error, node, what, rule->hint);
            }
        }
        int result = check_unsupported_attributes(node, root_parent, error);
        if (result == 0)
            result = check_unknown_attributes(node, root_parent, error);
        if (result < 0)
            return result;
        result = check_unsupported(node->children, root_parent, error);
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

static xmlDocPtr document_read(const char *xml, size_t length, struct pv_error *error)
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
static int validate_node(xmlNodePtr node, const char *schema_dir, const char *file,
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
                 node_name(node));
    }
    if (capture->line <= 0)
        capture->line = node_line(node);
    return 1;
}

static int capture_report(struct pv_error *error, const struct xml_error_capture *capture)
{
    return pv_error_set(error, -EINVAL, "line %ld: %s", capture->line > 0 ? capture->line : 1,
                        capture->message);
}

/* libxml2 reports an error inside an <interleave> (every child of <domain>) only as "Extra
 * element devices in interleave": when the domain fails, validate its children alone, and
 * the devices one by one, to name the real problem ("Element disk has extra content: foo"). */
static int domain_validate(xmlDocPtr document, const char *schema_dir, struct pv_error *error)
{
    xmlNodePtr root = xmlDocGetRootElement(document);
    struct xml_error_capture whole;
    int result = validate_node(root, schema_dir, "domain.rng", &whole, error);
    if (result <= 0)
        return result;
    for (xmlNodePtr child = root->children; child; child = child->next) {
        if (child->type != XML_ELEMENT_NODE)
            continue;
        struct xml_error_capture part;
        result = validate_node(child, schema_dir, "domain-part.rng", &part, error);
        if (result < 0)
            return result;
        if (result == 0)
            continue;
        for (xmlNodePtr device = is_element(child, "devices") ? child->children : NULL; device;
             device = device->next) {
            if (device->type != XML_ELEMENT_NODE || is_element(device, "emulator"))
                continue;
            struct xml_error_capture device_capture;
            result = validate_node(device, schema_dir, "device.rng", &device_capture, error);
            if (result < 0)
                return result;
            if (result > 0)
                return capture_report(error, &device_capture);
        }
        return capture_report(error, &part);
    }
    return capture_report(error, &whole);
}

/* --- mapping helpers ------------------------------------------------------------------ */

struct mapper {
    struct pv_error *error;
    bool out_of_memory;
    bool is_fragment; /* attach/detach: no defaults that would break matching (MAC) */
};

static char *copy_xml_string(struct mapper *mapper, xmlChar *value)
{
    if (!value)
        return NULL;
    char *copy = strdup((const char *)value);
    xmlFree(value);
    if (!copy)
        mapper->out_of_memory = true;
    return copy;
}

static char *attribute(struct mapper *mapper, xmlNodePtr node, const char *name)
{
    return node ? copy_xml_string(mapper, xmlGetNoNsProp(node, (const xmlChar *)name)) : NULL;
}

static bool attribute_is(xmlNodePtr node, const char *name, const char *value)
{
    xmlChar *text = node ? xmlGetNoNsProp(node, (const xmlChar *)name) : NULL;
    bool equal = text && strcmp((const char *)text, value) == 0;
    xmlFree(text);
    return equal;
}

static char *content(struct mapper *mapper, xmlNodePtr node)
{
    return node ? copy_xml_string(mapper, xmlNodeGetContent(node)) : NULL;
}

/* Content without surrounding blanks: for enumerations, which RelaxNG compares as tokens. */
static char *trimmed_content(struct mapper *mapper, xmlNodePtr node)
{
    char *text = content(mapper, node);
    if (!text)
        return NULL;
    size_t start = 0, end = strlen(text);
    while (start < end && isspace((unsigned char)text[start]))
        start++;
    while (end > start && isspace((unsigned char)text[end - 1]))
        end--;
    memmove(text, text + start, end - start);
    text[end - start] = '\0';
    return text;
}

static xmlNodePtr first_child(xmlNodePtr node, const char *name)
{
    for (xmlNodePtr child = node ? node->children : NULL; child; child = child->next)
        if (is_element(child, name))
            return child;
    return NULL;
}

/* Parses an unsigned number (base 10, or 0 for libvirt's 0x-hex PCI fields) up to `max`. */
static int parse_number(struct mapper *mapper, xmlNodePtr node, const char *what, const char *text,
                        int base, uint64_t max, uint64_t *out)
{
    if (!text)
        return invalid(mapper->error, node, "missing %s", what);
    const char *cursor = text;
    while (isspace((unsigned char)*cursor))
        cursor++;
    if (!isdigit((unsigned char)*cursor))
        return invalid(mapper->error, node, "invalid %s '%s'", what, text);
    errno = 0;
    char *end = NULL;
    unsigned long long value = strtoull(cursor, &end, base);
    while (end && isspace((unsigned char)*end))
        end++;
    if (!end || *end != '\0')
        return invalid(mapper->error, node, "invalid %s '%s'", what, text);
    if (errno == ERANGE || value > max)
        return invalid(mapper->error, node, "%s '%s' is out of range (at most %" PRIu64 ")", what,
                       text, max);
    *out = value;
    return 0;
}

/* An optional unsigned attribute: `*out` keeps its default when absent. */
static int number_attribute(struct mapper *mapper, xmlNodePtr node, const char *name, int base,
                            uint64_t max, unsigned *out)
{
    xmlChar *text = xmlGetNoNsProp(node, (const xmlChar *)name);
    if (!text)
        return 0;
    char what[64];
    snprintf(what, sizeof(what), "%s of <%s>", name, node_name(node));
    uint64_t value = 0;
    int result = parse_number(mapper, node, what, (const char *)text, base, max, &value);
    xmlFree(text);
    if (result == 0)
        *out = (unsigned)value;
    return result;
}

static int pci_address_fields(struct mapper *mapper, xmlNodePtr node,
                              struct domain_address *address)
{
    address->type = DOMAIN_ADDRESS_PCI;
    int result = number_attribute(mapper, node, "domain", 0, 0xffff, &address->domain);
    if (result == 0)
        result = number_attribute(mapper, node, "bus", 0, 0xff, &address->bus);
    if (result == 0)
        result = number_attribute(mapper, node, "slot", 0, 0x1f, &address->slot);
    if (result == 0)
        result = number_attribute(mapper, node, "function", 0, 7, &address->function);
    return result;
}

/* <address type=...> of a device (in the guest). */
static int parse_address(struct mapper *mapper, xmlNodePtr node, struct domain_address *address)
{
    memset(address, 0, sizeof(*address));
    if (!node)
        return 0;
    if (attribute_is(node, "type", "pci"))
        return pci_address_fields(mapper, node, address);
    int result = 0;
    if (attribute_is(node, "type", "drive")) {
        address->type = DOMAIN_ADDRESS_DRIVE;
        result = number_attribute(mapper, node, "controller", 10, 0xffff, &address->controller);
        if (result == 0)
            result = number_attribute(mapper, node, "bus", 10, 0xffff, &address->bus);
        if (result == 0)
            result = number_attribute(mapper, node, "target", 10, 0xffff, &address->target);
        if (result == 0)
            result = number_attribute(mapper, node, "unit", 10, 0xffff, &address->unit);
        return result;
    }
    if (attribute_is(node, "type", "virtio-serial")) {
        address->type = DOMAIN_ADDRESS_VIRTIO_SERIAL;
        result = number_attribute(mapper, node, "controller", 10, 0xffff, &address->controller);
        if (result == 0)
            result = number_attribute(mapper, node, "bus", 10, 0xffff, &address->bus);
        if (result == 0)
            result = number_attribute(mapper, node, "port", 10, 0xffff, &address->port);
        return result;
    }
    return invalid(mapper->error, node, "unknown address type");
}

static int require_address_type(struct mapper *mapper, xmlNodePtr node,
                                const struct domain_address *address,
                                enum domain_address_type wanted, const char *device)
{
    static const char *const names[] = {"none", "pci", "drive", "virtio-serial"};
    if (address->type == DOMAIN_ADDRESS_NONE || address->type == wanted)
        return 0;
    return invalid(mapper->error, first_child(node, "address"),
                   "%s takes an address of type '%s', not '%s'", device, names[wanted],
                   names[address->type]);
}

static char *alias_of(struct mapper *mapper, xmlNodePtr node)
{
    return attribute(mapper, first_child(node, "alias"), "name");
}

/* "52:54:00:6B:3C:58" -> "52:54:00:6b:3c:58"; unicast only, as libvirt requires. */
static int parse_mac(struct mapper *mapper, xmlNodePtr node, const char *text, char **out)
{
    unsigned bytes[6];
    char trailing;
    if (strlen(text) != 17 || sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &bytes[0], &bytes[1],
                                     &bytes[2], &bytes[3], &bytes[4], &bytes[5], &trailing) != 6)
        return invalid(mapper->error, node, "invalid MAC address '%s'", text);
    for (size_t i = 0; i < 17; i++) {
        bool separator = i % 3 == 2;
        if (separator ? text[i] != ':' : !isxdigit((unsigned char)text[i]))
            return invalid(mapper->error, node, "invalid MAC address '%s'", text);
    }
    if (bytes[0] & 1)
        return invalid(mapper->error, node, "MAC address '%s' is a multicast address", text);
    if (asprintf(out, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2], bytes[3],
                 bytes[4], bytes[5]) < 0) {
        *out = NULL;
        mapper->out_of_memory = true;
    }
    return 0;
}

static void generate_mac(struct mapper *mapper, char **out)
{
    /* The random part of a v4 UUID gives the last 3 bytes; 52:54:00 is QEMU's prefix. */
    char uuid[DOMAIN_UUID_STRING_LENGTH + 1];
    domain_uuid_generate(uuid);
    if (asprintf(out, "52:54:00:%c%c:%c%c:%c%c", uuid[0], uuid[1], uuid[2], uuid[3], uuid[4],
                 uuid[5]) < 0) {
        *out = NULL;
        mapper->out_of_memory = true;
    }
}

/* --- devices -------------------------------------------------------------------------- */

static int map_disk(struct mapper *mapper, xmlNodePtr node, struct domain_disk *disk)
{
    disk->type = attribute_is(node, "type", "block") ? DOMAIN_DISK_BLOCK : DOMAIN_DISK_FILE;
    disk->device =
        attribute_is(node, "device", "cdrom") ? DOMAIN_DISK_DEVICE_CDROM : DOMAIN_DISK_DEVICE_DISK;

    xmlNodePtr driver = first_child(node, "driver");
    disk->driver_name = attribute(mapper, driver, "name");
    disk->driver_type = attribute(mapper, driver, "type");
    /* 'default' is libvirt's spelling of "not set": it does not format it either. */
    if (!attribute_is(driver, "cache", "default"))
        disk->cache = attribute(mapper, driver, "cache");
    if (!attribute_is(driver, "io", "default"))
        disk->io = attribute(mapper, driver, "io");
    disk->error_policy = attribute(mapper, driver, "error_policy");
    disk->rerror_policy = attribute(mapper, driver, "rerror_policy");

    xmlNodePtr target = first_child(node, "target");
    disk->target_dev = attribute(mapper, target, "dev");
    if (!disk->target_dev)
        return mapper->out_of_memory ? -ENOMEM
                                     : invalid(mapper->error, node, "<disk> has no target dev");
    if (attribute_is(target, "bus", "scsi")) {
        disk->target_bus = DOMAIN_DISK_BUS_SCSI;
    } else if (attribute_is(target, "bus", "virtio")) {
        disk->target_bus = DOMAIN_DISK_BUS_VIRTIO;
    } else if (strncmp(disk->target_dev, "vd", 2) == 0) {
        disk->target_bus = DOMAIN_DISK_BUS_VIRTIO; /* libvirt derives the bus from the name */
    } else if (strncmp(disk->target_dev, "sd", 2) == 0) {
        disk->target_bus = DOMAIN_DISK_BUS_SCSI;
    } else {
        char what[128];
        snprintf(what, sizeof(what), "<target dev='%s'> without bus=", disk->target_dev);
        return unsupported(mapper->error, target, what,
                           "its name implies IDE or another bus; use vdX (virtio) or sdX (scsi)");
    }

    xmlNodePtr source = first_child(node, "source");
    char *file = attribute(mapper, source, "file");
    char *dev = attribute(mapper, source, "dev");
    int result = 0;
    if (disk->type == DOMAIN_DISK_FILE && dev)
        result =
            invalid(mapper->error, source, "<disk type='file'> takes <source file=...>, not dev=");
    else if (disk->type == DOMAIN_DISK_BLOCK && file)
        result =
            invalid(mapper->error, source, "<disk type='block'> takes <source dev=...>, not file=");
    else if (!file && !dev && disk->device != DOMAIN_DISK_DEVICE_CDROM)
        result = invalid(mapper->error, node, "disk '%s' has no <source>", disk->target_dev);
    disk->source = file ? file : dev;
    free(file ? dev : NULL);
    if (result < 0)
        return result;

    xmlNodePtr serial = first_child(node, "serial");
    if (serial)
        disk->serial = content(mapper, serial);
    disk->readonly = first_child(node, "readonly") != NULL;
    disk->shareable = first_child(node, "shareable") != NULL;
    disk->alias = alias_of(mapper, node);
    xmlNodePtr hotplug = first_child(node, "hotplug");
    if (hotplug && attribute_is(hotplug, "state", "attaching"))
        disk->hotplug_state = DOMAIN_HOTPLUG_ATTACHING;
    else if (hotplug && attribute_is(hotplug, "state", "detaching"))
        disk->hotplug_state = DOMAIN_HOTPLUG_DETACHING;
    result = parse_address(mapper, first_child(node, "address"), &disk->address);
    if (result < 0)
        return result;
    return require_address_type(
        mapper, node, &disk->address,
        disk->target_bus == DOMAIN_DISK_BUS_SCSI ? DOMAIN_ADDRESS_DRIVE : DOMAIN_ADDRESS_PCI,
        disk->target_bus == DOMAIN_DISK_BUS_SCSI ? "a scsi disk" : "a virtio disk");
}

static int map_interface(struct mapper *mapper, xmlNodePtr node, struct domain_interface *interface)
{
    if (attribute_is(node, "type", "bridge"))
        interface->type = DOMAIN_INTERFACE_BRIDGE;
    else if (attribute_is(node, "type", "network"))
        interface->type = DOMAIN_INTERFACE_NETWORK;
    else
        interface->type = DOMAIN_INTERFACE_ETHERNET;

    xmlNodePtr mac = first_child(node, "mac");
    if (mac) {
        xmlChar *text = xmlGetNoNsProp(mac, (const xmlChar *)"address");
        int result = text ? parse_mac(mapper, mac, (const char *)text, &interface->mac)
                          : invalid(mapper->error, mac, "<mac> has no address");
        xmlFree(text);
        if (result < 0)
            return result;
    } else if (!mapper->is_fragment) {
        generate_mac(mapper, &interface->mac); /* as libvirt does at define time */
    }

    xmlNodePtr source = first_child(node, "source");
    char *bridge = attribute(mapper, source, "bridge");
    char *network = attribute(mapper, source, "network");
    int result = 0;
    if (interface->type == DOMAIN_INTERFACE_ETHERNET && source)
        result = invalid(mapper->error, source, "<interface type='ethernet'> takes no <source>");
    else if (interface->type == DOMAIN_INTERFACE_BRIDGE && !bridge)
        result = invalid(mapper->error, source ? source : node,
                         "<interface type='bridge'> needs <source bridge=...>");
    else if (interface->type == DOMAIN_INTERFACE_NETWORK && !network)
        result = invalid(mapper->error, source ? source : node,
                         "<interface type='network'> needs <source network=...>");
    interface->source = bridge ? bridge : network;
    free(bridge ? network : NULL);
    if (result < 0)
        return result;

    xmlNodePtr target = first_child(node, "target");
    interface->target_dev = attribute(mapper, target, "dev");
    interface->target_managed = !attribute_is(target, "managed", "no");
    interface->model = attribute(mapper, first_child(node, "model"), "type");
    interface->alias = alias_of(mapper, node);
    result = parse_address(mapper, first_child(node, "address"), &interface->address);
    if (result < 0)
        return result;
    return require_address_type(mapper, node, &interface->address, DOMAIN_ADDRESS_PCI,
                                "an interface");
}

static int map_controller(struct mapper *mapper, xmlNodePtr node,
                          struct domain_controller *controller)
{
    controller->type = attribute(mapper, node, "type");
    controller->model = attribute(mapper, node, "model");
    int result = number_attribute(mapper, node, "index", 10, 0xffff, &controller->index);
    if (result < 0)
        return result;
    if (!controller->type)
        return mapper->out_of_memory ? -ENOMEM
                                     : invalid(mapper->error, node, "<controller> has no type");
    char what[160];
    snprintf(what, sizeof(what), "<controller type='%s'%s%s%s index='%u'>", controller->type,
             controller->model ? " model='" : "", controller->model ? controller->model : "",
             controller->model ? "'" : "", controller->index);
    if (strcmp(controller->type, "pci") == 0) {
        if (!controller->model && controller->index == 0)
            controller->model = strdup("pci-root"); /* libvirt's default for index 0 */
        if (!controller->model)
            mapper->out_of_memory = true;
        else if (strcmp(controller->model, "pci-root") != 0 || controller->index != 0)
            return unsupported(mapper->error, node, what,
                               "the guest has one PCI bus: <controller type='pci' index='0' "
                               "model='pci-root'/>");
    } else if (strcmp(controller->type, "scsi") == 0) {
        if (!controller->model)
            controller->model = strdup("virtio-scsi");
        if (!controller->model)
            mapper->out_of_memory = true;
        else if (strcmp(controller->model, "virtio-scsi") != 0)
            return unsupported(mapper->error, node, what, "only model='virtio-scsi' is");
    } else if (strcmp(controller->type, "virtio-serial") == 0) {
        if (controller->model)
            return unsupported(mapper->error, node, what, "virtio-serial takes no model");
    } else if (strcmp(controller->type, "usb") == 0) {
        if (!controller->model || strcmp(controller->model, "none") != 0)
            return unsupported(mapper->error, node, what,
                               "the guest has no USB; <controller type='usb' model='none'/> "
                               "is accepted");
    }
    controller->alias = alias_of(mapper, node);
    result = parse_address(mapper, first_child(node, "address"), &controller->address);
    if (result < 0)
        return result;
    return require_address_type(mapper, node, &controller->address, DOMAIN_ADDRESS_PCI,
                                "a controller");
}

static int map_hostdev(struct mapper *mapper, xmlNodePtr node, struct domain_hostdev *hostdev)
{
    hostdev->managed = attribute_is(node, "managed", "yes");
    hostdev->driver_name = attribute(mapper, first_child(node, "driver"), "name");
    xmlNodePtr source_address = first_child(first_child(node, "source"), "address");
    if (!source_address)
        return invalid(mapper->error, node, "<hostdev> has no <source><address .../>");
    int result = pci_address_fields(mapper, source_address, &hostdev->source);
    if (result < 0)
        return result;
    hostdev->alias = alias_of(mapper, node);
    result = parse_address(mapper, first_child(node, "address"), &hostdev->address);
    if (result < 0)
        return result;
    return require_address_type(mapper, node, &hostdev->address, DOMAIN_ADDRESS_PCI, "a hostdev");
}

static int map_chardev(struct mapper *mapper, xmlNodePtr node, enum domain_chardev_kind kind,
                       struct domain_chardev *chardev)
{
    chardev->kind = kind;
    chardev->type = attribute(mapper, node, "type");
    if (!chardev->type)
        return mapper->out_of_memory ? -ENOMEM : invalid(mapper->error, node, "no type");
    xmlNodePtr source = first_child(node, "source");
    chardev->source_mode = attribute(mapper, source, "mode");
    chardev->source_path = attribute(mapper, source, "path");
    chardev->source_append = attribute(mapper, source, "append");
    bool needs_path = strcmp(chardev->type, "unix") == 0 || strcmp(chardev->type, "file") == 0;
    /* pty: libvirt's live XML names the pty in <source path=>; it is runtime state. */
    bool takes_source = needs_path || strcmp(chardev->type, "pty") == 0;
    if (needs_path && !chardev->source_path && !mapper->out_of_memory)
        return invalid(mapper->error, source ? source : node,
                       "<%s type='%s'> needs <source path=...>", node_name(node), chardev->type);
    if (!takes_source && source)
        return invalid(mapper->error, source, "<%s type='%s'> takes no <source>", node_name(node),
                       chardev->type);
    if (chardev->source_mode && strcmp(chardev->type, "unix") != 0)
        return invalid(mapper->error, source, "source mode= is only for type='unix'");
    if (chardev->source_append && strcmp(chardev->type, "file") != 0)
        return invalid(mapper->error, source, "source append= is only for type='file'");

    xmlNodePtr target = first_child(node, "target");
    chardev->target_type = attribute(mapper, target, "type");
    chardev->target_name = attribute(mapper, target, "name");
    chardev->target_model = attribute(mapper, first_child(target, "model"), "name");
    int result =
        target ? number_attribute(mapper, target, "port", 10, 0xffff, &chardev->target_port) : 0;
    if (result < 0)
        return result;
    char what[128];
    if (kind == DOMAIN_CHARDEV_CONSOLE && chardev->target_type &&
        strcmp(chardev->target_type, "virtio") == 0)
        return unsupported(mapper->error, target, "<console> with <target type='virtio'>",
                           "virtio-console is not emulated; use <target type='serial'/> (the "
                           "console is then serial port 0)");
    if (kind != DOMAIN_CHARDEV_CHANNEL && chardev->target_port != 0) {
        snprintf(what, sizeof(what), "<%s> with <target port='%u'>", node_name(node),
                 chardev->target_port);
        return unsupported(mapper->error, target, what,
                           "the guest has one serial port: port 0 (COM1)");
    }
    chardev->alias = alias_of(mapper, node);
    result = parse_address(mapper, first_child(node, "address"), &chardev->address);
    if (result < 0)
        return result;
    return require_address_type(mapper, node, &chardev->address, DOMAIN_ADDRESS_VIRTIO_SERIAL,
                                "a channel");
}

static bool optional_equal(const char *a, const char *b, const char *fallback)
{
    return strcmp(a ? a : fallback, b ? b : fallback) == 0;
}

/* libvirt's rule: a <console> with target type 'serial' is serial port 0 itself, so when both
 * are given they must describe the same backend (libvirt would silently copy the serial's). */
static int check_serial_console(struct mapper *mapper, xmlNodePtr console_node,
                                const struct domain_chardev *serial,
                                const struct domain_chardev *console)
{
    bool pty = strcmp(serial->type, "pty") == 0;
    if (strcmp(serial->type, console->type) == 0 &&
        optional_equal(serial->source_mode, console->source_mode, "connect") &&
        (pty || optional_equal(serial->source_path, console->source_path, "")) &&
        optional_equal(serial->source_append, console->source_append, "off"))
        return 0;
    return invalid(mapper->error, console_node,
                   "the <console> (target type='serial') is serial port 0: its type and "
                   "<source> must match the <serial>'s (type='%s' here, '%s' there)",
                   console->type, serial->type);
}

/* Maps one device element; false (without error) when `node` is not a device. */
static int map_device(struct mapper *mapper, xmlNodePtr node, struct domain_device *device,
                      bool *is_device)
{
    memset(device, 0, sizeof(*device));
    *is_device = true;
    int result;
    if (is_element(node, "disk")) {
        device->kind = DOMAIN_DEVICE_DISK;
        result = map_disk(mapper, node, &device->disk);
    } else if (is_element(node, "interface")) {
        device->kind = DOMAIN_DEVICE_INTERFACE;
        result = map_interface(mapper, node, &device->interface);
    } else if (is_element(node, "controller")) {
        device->kind = DOMAIN_DEVICE_CONTROLLER;
        result = map_controller(mapper, node, &device->controller);
    } else if (is_element(node, "hostdev")) {
        device->kind = DOMAIN_DEVICE_HOSTDEV;
        result = map_hostdev(mapper, node, &device->hostdev);
    } else if (is_element(node, "channel") || is_element(node, "serial") ||
               is_element(node, "console")) {
        device->kind = DOMAIN_DEVICE_CHARDEV;
        enum domain_chardev_kind kind = is_element(node, "channel")  ? DOMAIN_CHARDEV_CHANNEL
                                        : is_element(node, "serial") ? DOMAIN_CHARDEV_SERIAL
                                                                     : DOMAIN_CHARDEV_CONSOLE;
        result = map_chardev(mapper, node, kind, &device->chardev);
    } else {
        *is_device = false;
        return 0;
    }
    if (result == 0 && mapper->out_of_memory)
        result = pv_error_set(mapper->error, -ENOMEM, "out of memory reading the XML");
    if (result < 0)
        domain_device_clear(device);
    return result;
}

/* --- the domain ----------------------------------------------------------------------- */

static int map_memory(struct mapper *mapper, xmlNodePtr node, uint64_t *kib)
{
    xmlChar *text = xmlNodeGetContent(node);
    xmlChar *unit = xmlGetNoNsProp(node, (const xmlChar *)"unit");
    uint64_t value = 0;
    char what[64];
    snprintf(what, sizeof(what), "<%s> value", node_name(node));
    int result = parse_number(mapper, node, what, (const char *)text, 10, UINT64_MAX, &value);
    if (result == 0) {
        struct pv_error scale_error = {0};
        result = domain_scale_to_kib(value, (const char *)unit, kib, &scale_error);
        if (result < 0)
            result = invalid(mapper->error, node, "<%s>: %s", node_name(node), scale_error.message);
        else if (*kib == 0)
            result = invalid(mapper->error, node, "<%s> must be greater than 0", node_name(node));
    }
    xmlFree(text);
    xmlFree(unit);
    return result;
}

static int map_name(struct mapper *mapper, xmlNodePtr node, struct domain_definition *definition)
{
    if (!node)
        return invalid(mapper->error, NULL, "<domain> has no <name>");
    definition->name = content(mapper, node);
    if (!definition->name)
        return pv_error_set(mapper->error, -ENOMEM, "out of memory reading the XML");
    const char *name = definition->name;
    if (name[0] == '\0')
        return invalid(mapper->error, node, "the domain name is empty");
    if (strlen(name) > DOMAIN_NAME_MAX)
        return invalid(mapper->error, node, "the domain name is longer than %d bytes",
                       DOMAIN_NAME_MAX);
    if (strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return invalid(mapper->error, node, "the domain name '%s' cannot be a path", name);
    for (const char *c = name; *c; c++)
        if (iscntrl((unsigned char)*c))
            return invalid(mapper->error, node, "the domain name contains control characters");
    return 0;
}

static int map_os(struct mapper *mapper, xmlNodePtr node, struct domain_definition *definition)
{
    xmlNodePtr type = first_child(node, "type");
    definition->os_type = trimmed_content(mapper, type);
    definition->os_arch = attribute(mapper, type, "arch");
    definition->os_machine = attribute(mapper, type, "machine");
    const char *machine = definition->os_machine;
    if (machine && strcmp(machine, "pc") != 0 && strncmp(machine, "pc-i440fx-", 10) != 0) {
        char what[128];
        snprintf(what, sizeof(what), "<type machine='%s'>", machine);
        return unsupported(mapper->error, type, what,
                           "plugvirt-vmm emulates QEMU's 'pc' (i440FX) machine");
    }
    xmlNodePtr kernel = first_child(node, "kernel");
    xmlNodePtr initrd = first_child(node, "initrd");
    xmlNodePtr cmdline = first_child(node, "cmdline");
    if (kernel)
        definition->kernel = content(mapper, kernel);
    if (initrd)
        definition->initrd = content(mapper, initrd);
    if (cmdline)
        definition->cmdline = content(mapper, cmdline);
    return 0;
}

static int map_vcpu(struct mapper *mapper, xmlNodePtr node, struct domain_definition *definition)
{
    definition->vcpus_max = 1;
    definition->vcpus_current = 0;
    if (node) {
        xmlChar *text = xmlNodeGetContent(node);
        uint64_t value = 0;
        int result = parse_number(mapper, node, "<vcpu> count", (const char *)text, 10,
                                  DOMAIN_VCPUS_MAX, &value);
        xmlFree(text);
        if (result < 0)
            return result;
        if (value == 0)
            return invalid(mapper->error, node, "<vcpu> must be at least 1");
        definition->vcpus_max = (unsigned)value;
        result = number_attribute(mapper, node, "current", 10, DOMAIN_VCPUS_MAX,
                                  &definition->vcpus_current);
        if (result < 0)
            return result;
        if (xmlHasProp(node, (const xmlChar *)"current") && definition->vcpus_current == 0)
            return invalid(mapper->error, node, "<vcpu current=...> must be at least 1");
        if (definition->vcpus_current > definition->vcpus_max)
            return invalid(mapper->error, node,
                           "<vcpu current='%u'> is more than the maximum of %u vCPUs",
                           definition->vcpus_current, definition->vcpus_max);
    }
    if (definition->vcpus_current == 0)
        definition->vcpus_current = definition->vcpus_max;
    return 0;
}

static int map_devices(struct mapper *mapper, xmlNodePtr devices,
                       struct domain_definition *definition)
{
    xmlNodePtr serial_node = NULL, console_node = NULL;
    for (xmlNodePtr child = devices ? devices->children : NULL; child; child = child->next) {
        if (is_element(child, "serial") || is_element(child, "console")) {
            xmlNodePtr *seen = is_element(child, "serial") ? &serial_node : &console_node;
            char what[64];
            snprintf(what, sizeof(what), "a second <%s>", node_name(child));
            if (*seen)
                return unsupported(mapper->error, child, what,
                                   "the guest has one serial port (port 0), and a <console> "
                                   "with target type='serial' is that port");
            *seen = child;
        }
        if (child->type != XML_ELEMENT_NODE)
            continue;
        if (is_element(child, "emulator")) {
            definition->emulator = content(mapper, child);
            continue;
        }
        struct domain_device device;
        bool is_device;
        int result = map_device(mapper, child, &device, &is_device);
        if (result < 0)
            return result;
        if (!is_device)
            return invalid(mapper->error, child, "unexpected element <%s>", node_name(child));
        struct pv_error add_error = {0};
        result = domain_definition_add_device(definition, &device, &add_error);
        domain_device_clear(&device);
        if (result == -ENOMEM)
            return pv_error_set(mapper->error, result, "%s", add_error.message);
        if (result < 0)
            return invalid(mapper->error, child, "%s", add_error.message);
    }
    struct domain_chardev *console = domain_serial_console(definition);
    const struct domain_chardev *serial = domain_serial_port(definition);
    if (console && serial && serial != console)
        return check_serial_console(mapper, console_node, serial, console);
    return 0;
}

static int map_domain(struct mapper *mapper, xmlNodePtr root, struct domain_definition *definition)
{
    definition->type = attribute(mapper, root, "type");
    int result = map_name(mapper, first_child(root, "name"), definition);
    if (result < 0)
        return result;

    xmlNodePtr uuid = first_child(root, "uuid");
    if (uuid) {
        xmlChar *text = xmlNodeGetContent(uuid);
        struct pv_error uuid_error = {0};
        result = domain_uuid_parse((const char *)text, definition->uuid, &uuid_error);
        xmlFree(text);
        if (result < 0)
            return invalid(mapper->error, uuid, "%s", uuid_error.message);
    } else {
        domain_uuid_generate(definition->uuid);
    }

    xmlNodePtr title = first_child(root, "title");
    if (title) {
        definition->title = content(mapper, title);
        if (definition->title && strchr(definition->title, '\n'))
            return invalid(mapper->error, title, "the title cannot contain newlines");
    }
    xmlNodePtr description = first_child(root, "description");
    if (description)
        definition->description = content(mapper, description);

    xmlNodePtr memory = first_child(root, "memory");
    if (!memory)
        return invalid(mapper->error, root, "<domain> has no <memory>");
    result = map_memory(mapper, memory, &definition->memory_kib);
    if (result < 0)
        return result;
    xmlNodePtr current_memory = first_child(root, "currentMemory");
    definition->current_memory_kib = definition->memory_kib;
    if (current_memory) {
        result = map_memory(mapper, current_memory, &definition->current_memory_kib);
        if (result < 0)
            return result;
        if (definition->current_memory_kib > definition->memory_kib)
            return invalid(mapper->error, current_memory,
                           "<currentMemory> (%" PRIu64 " KiB) is more than <memory> (%" PRIu64
                           " KiB)",
                           definition->current_memory_kib, definition->memory_kib);
    }

    result = map_vcpu(mapper, first_child(root, "vcpu"), definition);
    if (result < 0)
        return result;
    result = map_os(mapper, first_child(root, "os"), definition);
    if (result < 0)
        return result;

    xmlNodePtr features = first_child(root, "features");
    definition->acpi = first_child(features, "acpi") != NULL;
    definition->apic = first_child(features, "apic") != NULL;
    definition->pae = first_child(features, "pae") != NULL;

    xmlNodePtr cpu = first_child(root, "cpu");
    definition->cpu_mode = attribute(mapper, cpu, "mode");
    definition->cpu_match = attribute(mapper, cpu, "match");
    definition->cpu_check = attribute(mapper, cpu, "check");
    definition->cpu_migratable = attribute(mapper, cpu, "migratable");
    xmlNodePtr cpu_model = first_child(cpu, "model");
    if (cpu_model) {
        definition->cpu_model = trimmed_content(mapper, cpu_model);
        definition->cpu_model_fallback = attribute(mapper, cpu_model, "fallback");
    }

    definition->clock_offset = attribute(mapper, first_child(root, "clock"), "offset");
    xmlNodePtr action;
    if ((action = first_child(root, "on_poweroff")))
        definition->on_poweroff = trimmed_content(mapper, action);
    if ((action = first_child(root, "on_reboot")))
        definition->on_reboot = trimmed_content(mapper, action);
    if ((action = first_child(root, "on_crash")))
        definition->on_crash = trimmed_content(mapper, action);
    xmlNodePtr pm = first_child(root, "pm");
    definition->pm_suspend_to_mem = attribute(mapper, first_child(pm, "suspend-to-mem"), "enabled");
    definition->pm_suspend_to_disk =
        attribute(mapper, first_child(pm, "suspend-to-disk"), "enabled");

    result = map_devices(mapper, first_child(root, "devices"), definition);
    if (result < 0)
        return result;
    if (mapper->out_of_memory)
        return pv_error_set(mapper->error, -ENOMEM, "out of memory reading the XML");
    return 0;
}

/* Reads, checks for unsupported elements, validates: the steps shared by both parsers. */
static xmlDocPtr document_prepare(const char *xml, size_t length, const char *schema_dir,
                                  const char *schema_file, const char *expected_root,
                                  struct pv_error *error)
{
    xmlDocPtr document = document_read(xml, length, error);
    if (!document)
        return NULL;
    xmlNodePtr root = xmlDocGetRootElement(document);
    if (expected_root && (!is_element(root, expected_root) || root->ns)) {
        invalid(error, root, "the root element is <%s>, expected <%s>", node_name(root),
                expected_root);
        xmlFreeDoc(document);
        return NULL;
    }
    struct xml_error_capture capture;
    int result = check_unsupported(root, expected_root ? "" : "devices", error);
    if (result == 0 && expected_root)
        result = domain_validate(document, schema_dir, error);
    else if (result == 0 && validate_node(root, schema_dir, schema_file, &capture, error) > 0)
        result = capture_report(error, &capture);
    if (result < 0) {
        xmlFreeDoc(document);
        return NULL;
    }
    return document;
}

struct domain_definition *domain_xml_parse(const char *xml, size_t length, const char *schema_dir,
                                           struct pv_error *error)
{
    xmlDocPtr document = document_prepare(xml, length, schema_dir, "domain.rng", "domain", error);
    if (!document)
        return NULL;
    struct domain_definition *definition = calloc(1, sizeof(*definition));
    if (!definition) {
        xmlFreeDoc(document);
        return pv_error_set(error, -ENOMEM, "out of memory"), NULL;
    }
    struct mapper mapper = {.error = error};
    int result = map_domain(&mapper, xmlDocGetRootElement(document), definition);
    xmlFreeDoc(document);
    if (result < 0) {
        domain_definition_free(definition);
        return NULL;
    }
    return definition;
}

struct domain_device *domain_xml_parse_device(const char *xml, size_t length,
                                              const char *schema_dir, struct pv_error *error)
{
    xmlDocPtr document = document_prepare(xml, length, schema_dir, "device.rng", NULL, error);
    if (!document)
        return NULL;
    struct domain_device *device = calloc(1, sizeof(*device));
    if (!device) {
        xmlFreeDoc(document);
        return pv_error_set(error, -ENOMEM, "out of memory"), NULL;
    }
    struct mapper mapper = {.error = error, .is_fragment = true};
    bool is_device = false;
    xmlNodePtr root = xmlDocGetRootElement(document);
    int result = map_device(&mapper, root, device, &is_device);
    if (result == 0 && !is_device)
        result = invalid(error, root, "<%s> is not a device", node_name(root));
    xmlFreeDoc(document);
    if (result < 0) {
        free(device);
        return NULL;
    }
    return device;
}

/* --- formatting ----------------------------------------------------------------------- */

static void write_indent(FILE *out, int level)
{
    for (int i = 0; i < level; i++)
        fputs("  ", out);
}

/* Escapes like libvirt's virBufferEscapeString: text and single-quoted attributes. */
static void write_escaped(FILE *out, const char *text)
{
    for (const char *c = text; *c; c++) {
        switch (*c) {
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '&':
            fputs("&amp;", out);
            break;
        case '\'':
            fputs("&apos;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        default:
            fputc(*c, out);
        }
    }
}

static void write_attribute(FILE *out, const char *name, const char *value)
{
    if (!value)
        return;
    fprintf(out, " %s='", name);
    write_escaped(out, value);
    fputc('\'', out);
}

static void write_text_element(FILE *out, int level, const char *name, const char *value)
{
    if (!value)
        return;
    write_indent(out, level);
    fprintf(out, "<%s>", name);
    write_escaped(out, value);
    fprintf(out, "</%s>\n", name);
}

static void write_pci_fields(FILE *out, const struct domain_address *address)
{
    fprintf(out, " domain='0x%04x' bus='0x%02x' slot='0x%02x' function='0x%x'", address->domain,
            address->bus, address->slot, address->function);
}

static void write_address(FILE *out, int level, const struct domain_address *address)
{
    switch (address->type) {
    case DOMAIN_ADDRESS_NONE:
        return;
    case DOMAIN_ADDRESS_PCI:
        write_indent(out, level);
        fputs("<address type='pci'", out);
        write_pci_fields(out, address);
        fputs("/>\n", out);
        return;
    case DOMAIN_ADDRESS_DRIVE:
        write_indent(out, level);
        fprintf(out, "<address type='drive' controller='%u' bus='%u' target='%u' unit='%u'/>\n",
                address->controller, address->bus, address->target, address->unit);
        return;
    case DOMAIN_ADDRESS_VIRTIO_SERIAL:
        write_indent(out, level);
        fprintf(out, "<address type='virtio-serial' controller='%u' bus='%u' port='%u'/>\n",
                address->controller, address->bus, address->port);
        return;
    }
}

/* The inactive XML keeps only user aliases ('ua-' prefix), as libvirt does. */
static void write_alias(FILE *out, int level, const char *alias, bool live)
{
    if (!alias || (!live && strncmp(alias, "ua-", 3) != 0))
        return;
    write_indent(out, level);
    fputs("<alias", out);
    write_attribute(out, "name", alias);
    fputs("/>\n", out);
}

static void write_disk(FILE *out, int level, const struct domain_disk *disk, bool live)
{
    write_indent(out, level);
    fputs("<disk", out);
    write_attribute(out, "type", domain_disk_type_name(disk->type));
    write_attribute(out, "device", domain_disk_device_name(disk->device));
    fputs(">\n", out);
    if (disk->driver_name || disk->driver_type || disk->cache || disk->io || disk->error_policy ||
        disk->rerror_policy) {
        write_indent(out, level + 1);
        fputs("<driver", out);
        write_attribute(out, "name", disk->driver_name);
        write_attribute(out, "type", disk->driver_type);
        write_attribute(out, "cache", disk->cache);
        write_attribute(out, "error_policy", disk->error_policy);
        write_attribute(out, "rerror_policy", disk->rerror_policy);
        write_attribute(out, "io", disk->io);
        fputs("/>\n", out);
    }
    if (disk->source) {
        write_indent(out, level + 1);
        fputs("<source", out);
        write_attribute(out, disk->type == DOMAIN_DISK_BLOCK ? "dev" : "file", disk->source);
        fputs("/>\n", out);
    }
    write_indent(out, level + 1);
    fputs("<target", out);
    write_attribute(out, "dev", disk->target_dev);
    write_attribute(out, "bus", domain_disk_bus_name(disk->target_bus));
    fputs("/>\n", out);
    if (disk->readonly) {
        write_indent(out, level + 1);
        fputs("<readonly/>\n", out);
    }
    if (disk->shareable) {
        write_indent(out, level + 1);
        fputs("<shareable/>\n", out);
    }
    write_text_element(out, level + 1, "serial", disk->serial);
    write_alias(out, level + 1, disk->alias, live);
    if (live && disk->hotplug_state != DOMAIN_HOTPLUG_ATTACHED) {
        write_indent(out, level + 1);
        fputs("<plugvirt:hotplug xmlns:plugvirt='" DOMAIN_XML_PLUGVIRT_NAMESPACE "'", out);
        write_attribute(out, "state", domain_hotplug_state_name(disk->hotplug_state));
        fputs("/>\n", out);
    }
    write_address(out, level + 1, &disk->address);
    write_indent(out, level);
    fputs("</disk>\n", out);
}

static void write_interface(FILE *out, int level, const struct domain_interface *interface,
                            bool live)
{
    write_indent(out, level);
    fputs("<interface", out);
    write_attribute(out, "type", domain_interface_type_name(interface->type));
    fputs(">\n", out);
    if (interface->mac) {
        write_indent(out, level + 1);
        fputs("<mac", out);
        write_attribute(out, "address", interface->mac);
        fputs("/>\n", out);
    }
    if (interface->source) {
        write_indent(out, level + 1);
        fputs("<source", out);
        write_attribute(out, interface->type == DOMAIN_INTERFACE_NETWORK ? "network" : "bridge",
                        interface->source);
        fputs("/>\n", out);
    }
    if (interface->target_dev) {
        write_indent(out, level + 1);
        fputs("<target", out);
        write_attribute(out, "dev", interface->target_dev);
        if (!interface->target_managed)
            write_attribute(out, "managed", "no");
        fputs("/>\n", out);
    }
    if (interface->model) {
        write_indent(out, level + 1);
        fputs("<model", out);
        write_attribute(out, "type", interface->model);
        fputs("/>\n", out);
    }
    write_alias(out, level + 1, interface->alias, live);
    write_address(out, level + 1, &interface->address);
    write_indent(out, level);
    fputs("</interface>\n", out);
}

static void write_controller(FILE *out, int level, const struct domain_controller *controller,
                             bool live)
{
    write_indent(out, level);
    fputs("<controller", out);
    write_attribute(out, "type", controller->type);
    fprintf(out, " index='%u'", controller->index);
    write_attribute(out, "model", controller->model);
    bool has_alias = controller->alias && (live || strncmp(controller->alias, "ua-", 3) == 0);
    if (!has_alias && controller->address.type == DOMAIN_ADDRESS_NONE) {
        fputs("/>\n", out);
        return;
    }
    fputs(">\n", out);
    write_alias(out, level + 1, controller->alias, live);
    write_address(out, level + 1, &controller->address);
    write_indent(out, level);
    fputs("</controller>\n", out);
}

static void write_hostdev(FILE *out, int level, const struct domain_hostdev *hostdev, bool live)
{
    write_indent(out, level);
    fputs("<hostdev mode='subsystem' type='pci'", out);
    write_attribute(out, "managed", hostdev->managed ? "yes" : "no");
    fputs(">\n", out);
    if (hostdev->driver_name) {
        write_indent(out, level + 1);
        fputs("<driver", out);
        write_attribute(out, "name", hostdev->driver_name);
        fputs("/>\n", out);
    }
    write_indent(out, level + 1);
    fputs("<source>\n", out);
    write_indent(out, level + 2);
    fputs("<address", out);
    write_pci_fields(out, &hostdev->source);
    fputs("/>\n", out);
    write_indent(out, level + 1);
    fputs("</source>\n", out);
    write_alias(out, level + 1, hostdev->alias, live);
    write_address(out, level + 1, &hostdev->address);
    write_indent(out, level);
    fputs("</hostdev>\n", out);
}

static void write_chardev(FILE *out, int level, const struct domain_chardev *chardev, bool live)
{
    const char *element = domain_chardev_kind_name(chardev->kind);
    write_indent(out, level);
    fprintf(out, "<%s", element);
    write_attribute(out, "type", chardev->type);
    fputs(">\n", out);
    /* A pty's path is runtime state: only the live XML has it, as in libvirt. */
    const char *path =
        chardev->type && strcmp(chardev->type, "pty") == 0 && !live ? NULL : chardev->source_path;
    if (chardev->source_mode || path || chardev->source_append) {
        write_indent(out, level + 1);
        fputs("<source", out);
        write_attribute(out, "mode", chardev->source_mode);
        write_attribute(out, "path", path);
        write_attribute(out, "append", chardev->source_append);
        fputs("/>\n", out);
    }
    write_indent(out, level + 1);
    fputs("<target", out);
    write_attribute(out, "type", chardev->target_type);
    write_attribute(out, "name", chardev->target_name);
    if (chardev->kind != DOMAIN_CHARDEV_CHANNEL)
        fprintf(out, " port='%u'", chardev->target_port);
    if (chardev->target_model) {
        fputs(">\n", out);
        write_indent(out, level + 2);
        fputs("<model", out);
        write_attribute(out, "name", chardev->target_model);
        fputs("/>\n", out);
        write_indent(out, level + 1);
        fputs("</target>\n", out);
    } else {
        fputs("/>\n", out);
    }
    write_alias(out, level + 1, chardev->alias, live);
    write_address(out, level + 1, &chardev->address);
    write_indent(out, level);
    fprintf(out, "</%s>\n", element);
}

static void write_device(FILE *out, int level, const struct domain_device *device, bool live)
{
    switch (device->kind) {
    case DOMAIN_DEVICE_DISK:
        write_disk(out, level, &device->disk, live);
        break;
    case DOMAIN_DEVICE_INTERFACE:
        write_interface(out, level, &device->interface, live);
        break;
    case DOMAIN_DEVICE_CONTROLLER:
        write_controller(out, level, &device->controller, live);
        break;
    case DOMAIN_DEVICE_HOSTDEV:
        write_hostdev(out, level, &device->hostdev, live);
        break;
    case DOMAIN_DEVICE_CHARDEV:
        write_chardev(out, level, &device->chardev, live);
        break;
    }
}

static void write_memory(FILE *out, const char *name, uint64_t kib)
{
    fprintf(out, "  <%s unit='KiB'>%" PRIu64 "</%s>\n", name, kib, name);
}

static void write_domain(FILE *out, const struct domain_definition *definition, bool live)
{
    fputs("<domain", out);
    write_attribute(out, "type", definition->type ? definition->type : "kvm");
    fputs(">\n", out);
    write_text_element(out, 1, "name", definition->name);
    if (definition->uuid[0])
        write_text_element(out, 1, "uuid", definition->uuid);
    write_text_element(out, 1, "title", definition->title);
    write_text_element(out, 1, "description", definition->description);
    write_memory(out, "memory", definition->memory_kib);
    write_memory(out, "currentMemory", definition->current_memory_kib);
    fputs("  <vcpu placement='static'", out);
    if (definition->vcpus_current && definition->vcpus_current != definition->vcpus_max)
        fprintf(out, " current='%u'", definition->vcpus_current);
    fprintf(out, ">%u</vcpu>\n", definition->vcpus_max);

    fputs("  <os>\n    <type", out);
    write_attribute(out, "arch", definition->os_arch);
    write_attribute(out, "machine", definition->os_machine);
    fputc('>', out);
    write_escaped(out, definition->os_type ? definition->os_type : "hvm");
    fputs("</type>\n", out);
    write_text_element(out, 2, "kernel", definition->kernel);
    write_text_element(out, 2, "initrd", definition->initrd);
    write_text_element(out, 2, "cmdline", definition->cmdline);
    fputs("  </os>\n", out);

    if (definition->acpi || definition->apic || definition->pae) {
        fputs("  <features>\n", out);
        if (definition->acpi)
            fputs("    <acpi/>\n", out);
        if (definition->apic)
            fputs("    <apic/>\n", out);
        if (definition->pae)
            fputs("    <pae/>\n", out);
        fputs("  </features>\n", out);
    }
    if (definition->cpu_mode || definition->cpu_match || definition->cpu_check ||
        definition->cpu_migratable || definition->cpu_model) {
        fputs("  <cpu", out);
        write_attribute(out, "mode", definition->cpu_mode);
        write_attribute(out, "match", definition->cpu_match);
        write_attribute(out, "check", definition->cpu_check);
        write_attribute(out, "migratable", definition->cpu_migratable);
        if (definition->cpu_model) {
            fputs(">\n    <model", out);
            write_attribute(out, "fallback", definition->cpu_model_fallback);
            fputc('>', out);
            write_escaped(out, definition->cpu_model);
            fputs("</model>\n  </cpu>\n", out);
        } else {
            fputs("/>\n", out);
        }
    }
    if (definition->clock_offset) {
        fputs("  <clock", out);
        write_attribute(out, "offset", definition->clock_offset);
        fputs("/>\n", out);
    }
    write_text_element(out, 1, "on_poweroff", definition->on_poweroff);
    write_text_element(out, 1, "on_reboot", definition->on_reboot);
    write_text_element(out, 1, "on_crash", definition->on_crash);
    if (definition->pm_suspend_to_mem || definition->pm_suspend_to_disk) {
        fputs("  <pm>\n", out);
        if (definition->pm_suspend_to_mem) {
            fputs("    <suspend-to-mem", out);
            write_attribute(out, "enabled", definition->pm_suspend_to_mem);
            fputs("/>\n", out);
        }
        if (definition->pm_suspend_to_disk) {
            fputs("    <suspend-to-disk", out);
            write_attribute(out, "enabled", definition->pm_suspend_to_disk);
            fputs("/>\n", out);
        }
        fputs("  </pm>\n", out);
    }

    fputs("  <devices>\n", out);
    write_text_element(out, 2, "emulator", definition->emulator);
    /* libvirt's order: disks, controllers, interfaces, serials, consoles, channels, hostdevs */
    for (size_t i = 0; i < definition->disk_count; i++)
        write_disk(out, 2, &definition->disks[i], live);
    for (size_t i = 0; i < definition->controller_count; i++)
        write_controller(out, 2, &definition->controllers[i], live);
    for (size_t i = 0; i < definition->interface_count; i++)
        write_interface(out, 2, &definition->interfaces[i], live);
    for (size_t i = 0; i < definition->chardev_count; i++)
        write_chardev(out, 2, &definition->chardevs[i], live);
    for (size_t i = 0; i < definition->hostdev_count; i++)
        write_hostdev(out, 2, &definition->hostdevs[i], live);
    fputs("  </devices>\n</domain>\n", out);
}

/* Runs `write` into a malloc'd string. */
static char *format_to_string(void (*write)(FILE *, const void *, bool), const void *object,
                              bool live, struct pv_error *error)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    if (!out)
        return pv_error_set_errno(error, -errno, "cannot format the XML"), NULL;
    write(out, object, live);
    bool failed = ferror(out) != 0;
    if (fclose(out) != 0 || failed) {
        free(text);
        return pv_error_set(error, -ENOMEM, "out of memory formatting the XML"), NULL;
    }
    return text;
}

static void write_domain_object(FILE *out, const void *object, bool live)
{
    write_domain(out, object, live);
}

static void write_device_object(FILE *out, const void *object, bool live)
{
    write_device(out, 0, object, live);
}

char *domain_xml_format(const struct domain_definition *definition, bool live,
                        struct pv_error *error)
{
    if (!definition)
        return pv_error_set(error, -EINVAL, "no definition to format"), NULL;
    return format_to_string(write_domain_object, definition, live, error);
}

char *domain_xml_format_device(const struct domain_device *device, struct pv_error *error)
{
    if (!device)
        return pv_error_set(error, -EINVAL, "no device to format"), NULL;
    return format_to_string(write_device_object, device, true, error);
}

/* What the parts of the domain XML code share (domain_xml.c: mapping XML onto the model;
 * domain_xml_check.c: reading, refusing what plugvirt does not support, schema validation;
 * domain_xml_format.c: writing XML). Not for other modules. */
#ifndef PLUGVIRT_DOMAIN_XML_INTERNAL_H
#define PLUGVIRT_DOMAIN_XML_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include "domain.h"

/* libxml2 2.12 made the structured error argument const. */
#if LIBXML_VERSION >= 21200
typedef const xmlError *xml_error_pointer;
#else
typedef xmlError *xml_error_pointer;
#endif

struct xml_error_capture {
    bool captured;
    long line;
    char message[PV_ERROR_MESSAGE_MAX];
};

long domain_xml_node_line(xmlNodePtr node);
int domain_xml_unsupported(struct pv_error *error, xmlNodePtr node, const char *what,
                           const char *hint);
const char *domain_xml_node_name(xmlNodePtr node);
bool domain_xml_is_element(xmlNodePtr node, const char *name);
int domain_xml_check_unsupported(xmlNodePtr node, const char *root_parent, struct pv_error *error);
xmlDocPtr domain_xml_document_read(const char *xml, size_t length, struct pv_error *error);
int domain_xml_validate_node(xmlNodePtr node, const char *schema_dir, const char *file,
                             struct xml_error_capture *capture, struct pv_error *error);
int domain_xml_capture_report(struct pv_error *error, const struct xml_error_capture *capture);
int domain_xml_domain_validate(xmlDocPtr document, const char *schema_dir, struct pv_error *error);

#endif

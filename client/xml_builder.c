/* pvsh's XML builder: the device elements attach-disk and attach-interface send, with every
 * value escaped so that a path or name with quotes cannot change the element's meaning. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "pvsh.h"

static void buffer_append(struct pvsh_xml *xml, const char *piece, size_t piece_length)
{
    if (xml->failed)
        return;
    if (xml->length + piece_length + 1 > xml->capacity) {
        size_t capacity = (xml->capacity + piece_length + 1) * 2;
        char *grown = realloc(xml->text, capacity);
        if (!grown) {
            xml->failed = true;
            return;
        }
        xml->text = grown;
        xml->capacity = capacity;
    }
    memcpy(xml->text + xml->length, piece, piece_length);
    xml->length += piece_length;
    xml->text[xml->length] = '\0';
}

static void buffer_append_escaped(struct pvsh_xml *xml, const char *text)
{
    for (; *text; text++) {
        switch (*text) {
        case '&':
            buffer_append(xml, "&amp;", 5);
            break;
        case '<':
            buffer_append(xml, "&lt;", 4);
            break;
        case '>':
            buffer_append(xml, "&gt;", 4);
            break;
        case '\'':
            buffer_append(xml, "&apos;", 6);
            break;
        case '"':
            buffer_append(xml, "&quot;", 6);
            break;
        default:
            buffer_append(xml, text, 1);
        }
    }
}

void pvsh_xml_append(struct pvsh_xml *xml, const char *format, ...)
{
    va_list values;
    va_start(values, format);
    for (const char *p = format; *p; p++) {
        if (*p == '%') {
            const char *value = va_arg(values, const char *);
            buffer_append_escaped(xml, value ? value : "");
        } else {
            buffer_append(xml, p, 1);
        }
    }
    va_end(values);
}

char *pvsh_xml_take(struct pvsh_xml *xml, struct pv_error *error)
{
    if (xml->failed || !xml->text) {
        free(xml->text);
        *xml = (struct pvsh_xml){0};
        pv_error_set(error, -ENOMEM, "out of memory");
        return NULL;
    }
    char *text = xml->text;
    *xml = (struct pvsh_xml){0};
    return text;
}

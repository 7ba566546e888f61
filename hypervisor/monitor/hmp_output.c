/* HMP output text (see hmp_output.h). */
#include "monitor/hmp_output.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hmp_output_init(struct hmp_output *output)
{
    memset(output, 0, sizeof(*output));
}

void hmp_output_free(struct hmp_output *output)
{
    free(output->text);
    hmp_output_init(output);
}

const char *hmp_output_text(const struct hmp_output *output)
{
    return output->text ? output->text : "";
}

static bool output_reserve(struct hmp_output *output, size_t extra)
{
    if (output->failed)
        return false;
    size_t needed = output->length + extra + 1;
    if (needed <= output->capacity)
        return true;
    size_t capacity = output->capacity ? output->capacity : 256;
    while (capacity < needed)
        capacity *= 2;
    char *text = realloc(output->text, capacity);
    if (!text) {
        output->failed = true;
        return false;
    }
    output->text = text;
    output->capacity = capacity;
    return true;
}

void hmp_printf(struct hmp_output *output, const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    char *text = NULL;
    int length = vasprintf(&text, format, arguments);
    va_end(arguments);
    if (length < 0) {
        output->failed = true;
        return;
    }
    size_t newlines = 0;
    for (int i = 0; i < length; i++)
        newlines += text[i] == '\n';
    if (output_reserve(output, (size_t)length + newlines)) {
        /* QEMU's monitor sends "\r\n" for every "\n". */
        for (int i = 0; i < length; i++) {
            if (text[i] == '\n')
                output->text[output->length++] = '\r';
            output->text[output->length++] = text[i];
        }
        output->text[output->length] = '\0';
    }
    free(text);
}

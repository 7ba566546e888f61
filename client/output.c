/* pvsh output: virsh's tables, messages, errors and --json. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "pvsh.h"

void pvsh_table_init(struct pvsh_table *table, size_t columns, const char *const *header)
{
    memset(table, 0, sizeof(*table));
    table->columns = columns;
    pvsh_table_add_row(table, header);
}

/* A copy of the cell with control characters written as \xNN (as virsh does), so that
 * every byte left has a width of one column or is part of a UTF-8 sequence. */
static char *encode_cell(const char *cell)
{
    if (!cell)
        cell = "-";
    char *encoded = malloc(strlen(cell) * 4 + 1);
    if (!encoded)
        return NULL;
    char *out = encoded;
    for (const unsigned char *p = (const unsigned char *)cell; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            out += sprintf(out, "\\x%02x", *p);
        else
            *out++ = (char)*p;
    }
    *out = '\0';
    return encoded;
}

void pvsh_table_add_row(struct pvsh_table *table, const char *const *cells)
{
    if (table->failed)
        return;
    char **grown = realloc(table->cells, (table->rows + 1) * table->columns * sizeof(*grown));
    if (!grown) {
        table->failed = true;
        return;
    }
    table->cells = grown;
    char **row = table->cells + table->rows * table->columns;
    for (size_t column = 0; column < table->columns; column++) {
        row[column] = encode_cell(cells[column]);
        if (!row[column])
            table->failed = true;
    }
    table->rows++;
}

/* Display width: UTF-8 continuation bytes take no column. */
static size_t text_width(const char *text)
{
    size_t width = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if ((*p & 0xc0) != 0x80)
            width++;
    }
    return width;
}

static void print_row(const struct pvsh_table *table, size_t row, const size_t *widths, FILE *out)
{
    for (size_t column = 0; column < table->columns; column++) {
        const char *cell = table->cells[row * table->columns + column];
        fprintf(out, " %s", cell ? cell : "");
        if (column + 1 < table->columns) {
            size_t padding = widths[column] - text_width(cell ? cell : "") + 2;
            fprintf(out, "%*s", (int)padding, "");
        }
    }
    fputc('\n', out);
}

int pvsh_table_print(const struct pvsh_table *table, bool header, FILE *out)
{
    if (table->failed)
        return -ENOMEM;
    size_t *widths = calloc(table->columns ? table->columns : 1, sizeof(*widths));
    if (!widths)
        return -ENOMEM;
    for (size_t row = header ? 0 : 1; row < table->rows; row++) {
        for (size_t column = 0; column < table->columns; column++) {
            size_t width = text_width(table->cells[row * table->columns + column]);
            if (width > widths[column])
                widths[column] = width;
        }
    }
    if (header && table->rows > 0) {
        print_row(table, 0, widths, out);
        for (size_t column = 0; column < table->columns; column++) {
            for (size_t i = 0; i < widths[column] + 3; i++)
                fputc('-', out);
        }
        fputc('\n', out);
    }
    for (size_t row = 1; row < table->rows; row++)
        print_row(table, row, widths, out);
    free(widths);
    return 0;
}

void pvsh_table_free(struct pvsh_table *table)
{
    if (table->cells) {
        for (size_t i = 0; i < table->rows * table->columns; i++)
            free(table->cells[i]);
    }
    free(table->cells);
    memset(table, 0, sizeof(*table));
}

void pvsh_message(struct pvsh_context *context, const char *format, ...)
{
    if (context->quiet || context->json)
        return;
    va_list arguments;
    va_start(arguments, format);
    vfprintf(context->out, format, arguments);
    va_end(arguments);
}

static void print_error_json(struct pvsh_context *context, const char *code, const char *message,
                             const char *qmp_class, const char *step)
{
    struct json_writer writer;
    json_writer_init(&writer, false);
    json_writer_begin_object(&writer);
    json_writer_key(&writer, "error");
    json_writer_begin_object(&writer);
    json_writer_member_string(&writer, "code", code);
    json_writer_member_string(&writer, "message", message);
    if (qmp_class)
        json_writer_member_string(&writer, "qmp_class", qmp_class);
    if (step)
        json_writer_member_string(&writer, "step", step);
    json_writer_end_object(&writer);
    json_writer_end_object(&writer);
    const char *text = json_writer_text(&writer);
    if (text)
        fprintf(context->out, "%s\n", text);
    json_writer_free(&writer);
}

int pvsh_report_error(struct pvsh_context *context, const char *code, const char *format, ...)
{
    char message[PV_ERROR_MESSAGE_MAX * 2];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(message, sizeof(message), format, arguments);
    va_end(arguments);
    fprintf(context->err, "error: %s\n", message);
    if (context->json)
        print_error_json(context, code, message, NULL, NULL);
    return PVSH_EXIT_FAILURE;
}

int pvsh_report_reply_error(struct pvsh_context *context, const struct api_reply *reply)
{
    fprintf(context->err, "error: %s\n", reply->error_message);
    if (context->json)
        print_error_json(context, reply->error_code, reply->error_message, reply->qmp_class,
                         reply->step);
    return PVSH_EXIT_FAILURE;
}

void pvsh_print_json(struct pvsh_context *context, yajl_val value)
{
    struct json_writer writer;
    json_writer_init(&writer, false);
    if (value)
        json_writer_value(&writer, value);
    else
        json_writer_null(&writer);
    const char *text = json_writer_text(&writer);
    if (text)
        fprintf(context->out, "%s\n", text);
    json_writer_free(&writer);
}

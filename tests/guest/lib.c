/* The few libc pieces the guest needs (the compiler may also call memset/memcpy). */
#include "probe.h"

void *memset(void *destination, int value, size_t length)
{
    uint8_t *bytes = destination;
    for (size_t i = 0; i < length; i++)
        bytes[i] = (uint8_t)value;
    return destination;
}

void *memcpy(void *destination, const void *source, size_t length)
{
    uint8_t *to = destination;
    const uint8_t *from = source;
    for (size_t i = 0; i < length; i++)
        to[i] = from[i];
    return destination;
}

int memcmp(const void *a, const void *b, size_t length)
{
    const uint8_t *x = a, *y = b;
    for (size_t i = 0; i < length; i++) {
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    }
    return 0;
}

size_t strlen(const char *string)
{
    size_t length = 0;
    while (string[length])
        length++;
    return length;
}

int strncmp(const char *a, const char *b, size_t length)
{
    for (size_t i = 0; i < length; i++) {
        if (a[i] != b[i])
            return (uint8_t)a[i] < (uint8_t)b[i] ? -1 : 1;
        if (!a[i])
            return 0;
    }
    return 0;
}

int strcmp(const char *a, const char *b)
{
    return strncmp(a, b, (size_t)-1);
}

bool probe_parse_u64(const char *text, uint64_t *value)
{
    unsigned base = 10;
    uint64_t result = 0;
    if (text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        base = 16;
        text += 2;
    }
    if (!*text)
        return false;
    for (; *text; text++) {
        unsigned digit;
        if (*text >= '0' && *text <= '9')
            digit = *text - '0';
        else if (base == 16 && *text >= 'a' && *text <= 'f')
            digit = *text - 'a' + 10;
        else if (base == 16 && *text >= 'A' && *text <= 'F')
            digit = *text - 'A' + 10;
        else
            return false;
        if (result > (UINT64_MAX - digit) / base)
            return false;
        result = result * base + digit;
    }
    *value = result;
    return true;
}

struct format_output {
    char *buffer;
    size_t size;
    size_t length;
};

static void put_char(struct format_output *out, char c)
{
    if (out->length + 1 < out->size)
        out->buffer[out->length] = c;
    out->length++;
}

static void put_number(struct format_output *out, uint64_t value, unsigned base, bool negative,
                       unsigned width, char pad)
{
    char digits[24];
    unsigned count = 0;
    do {
        unsigned digit = value % base;
        digits[count++] = (char)(digit < 10 ? '0' + digit : 'a' + digit - 10);
        value /= base;
    } while (value);
    if (negative)
        digits[count++] = '-';
    while (count < width--)
        put_char(out, pad);
    while (count)
        put_char(out, digits[--count]);
}

size_t probe_vformat(char *buffer, size_t size, const char *format, va_list arguments)
{
    struct format_output out = {buffer, size, 0};
    for (; *format; format++) {
        if (*format != '%') {
            put_char(&out, *format);
            continue;
        }
        format++;
        char pad = ' ';
        unsigned width = 0;
        if (*format == '0') {
            pad = '0';
            format++;
        }
        while (*format >= '0' && *format <= '9')
            width = width * 10 + (unsigned)(*format++ - '0');
        unsigned longs = 0;
        while (*format == 'l') {
            longs++;
            format++;
        }
        switch (*format) {
        case 'd': {
            int64_t value = longs ? va_arg(arguments, int64_t) : va_arg(arguments, int);
            put_number(&out, value < 0 ? -(uint64_t)value : (uint64_t)value, 10, value < 0, width,
                       pad);
            break;
        }
        case 'u':
        case 'x': {
            uint64_t value = longs ? va_arg(arguments, uint64_t) : va_arg(arguments, unsigned);
            put_number(&out, value, *format == 'u' ? 10 : 16, false, width, pad);
            break;
        }
        case 'p':
            put_char(&out, '0');
            put_char(&out, 'x');
            put_number(&out, (uint64_t)(uintptr_t)va_arg(arguments, void *), 16, false, width, pad);
            break;
        case 's': {
            const char *string = va_arg(arguments, const char *);
            for (; *string; string++)
                put_char(&out, *string);
            break;
        }
        case 'c':
            put_char(&out, (char)va_arg(arguments, int));
            break;
        case '%':
            put_char(&out, '%');
            break;
        case '\0':
            format--;
            break;
        default:
            put_char(&out, '%');
            put_char(&out, *format);
            break;
        }
    }
    if (size)
        buffer[out.length < size ? out.length : size - 1] = '\0';
    return out.length;
}

size_t probe_format(char *buffer, size_t size, const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    size_t length = probe_vformat(buffer, size, format, arguments);
    va_end(arguments);
    return length;
}

uint32_t probe_fnv1a_continue(uint32_t hash, const uint8_t *data, size_t length)
{
    for (size_t i = 0; i < length; i++) {
        hash ^= data[i];
        hash *= 0x01000193u;
    }
    return hash;
}

uint32_t probe_fnv1a(const uint8_t *data, size_t length)
{
    return probe_fnv1a_continue(PROBE_FNV1A_INITIAL, data, length);
}

char *probe_next_word(char **cursor)
{
    char *word = *cursor;
    while (*word == ' ' || *word == '\t')
        word++;
    char *end = word;
    while (*end && *end != ' ' && *end != '\t')
        end++;
    if (*end)
        *end++ = '\0';
    *cursor = end;
    return word;
}

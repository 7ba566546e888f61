#include "pv_error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int error_vset(struct pv_error *error, int code, int with_errno, const char *format,
                      va_list args)
{
    if (!error)
        return code;
    error->code = code;
    int used = vsnprintf(error->message, sizeof(error->message), format, args);
    if (with_errno && used >= 0 && (size_t)used < sizeof(error->message))
        snprintf(error->message + used, sizeof(error->message) - (size_t)used, ": %s",
                 strerror(code < 0 ? -code : code));
    return code;
}

int pv_error_set(struct pv_error *error, int code, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    error_vset(error, code, 0, format, args);
    va_end(args);
    return code;
}

int pv_error_set_errno(struct pv_error *error, int code, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    error_vset(error, code, 1, format, args);
    va_end(args);
    return code;
}

int pv_error_prefix(struct pv_error *error, const char *format, ...)
{
    if (!error)
        return 0;
    char prefix[PV_ERROR_MESSAGE_MAX];
    char old[PV_ERROR_MESSAGE_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(prefix, sizeof(prefix), format, args);
    va_end(args);
    memcpy(old, error->message, sizeof(old));
    /* Truncation is acceptable: the start of the message carries the context. */
    size_t used = strnlen(prefix, sizeof(error->message) - 1);
    memcpy(error->message, prefix, used);
    const char *rest[] = {": ", old};
    for (size_t part = 0; part < 2; part++) {
        size_t length = strnlen(rest[part], sizeof(old));
        size_t room = sizeof(error->message) - 1 - used;
        if (length > room)
            length = room;
        memcpy(error->message + used, rest[part], length);
        used += length;
    }
    error->message[used] = '\0';
    return error->code;
}

void pv_error_clear(struct pv_error *error)
{
    if (!error)
        return;
    error->code = 0;
    error->message[0] = '\0';
}

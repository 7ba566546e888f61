#include "pv_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static enum pv_log_level current_level = PV_LOG_WARNING;
static const char *program = "plugvirt";

void pv_log_set_level(enum pv_log_level level)
{
    current_level = level;
}

void pv_log_set_program(const char *program_name)
{
    program = program_name;
}

void pv_log(enum pv_log_level level, const char *format, ...)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    if (level > current_level)
        return;
    char line[1024];
    int used = snprintf(line, sizeof(line), "%s: %s: ", program, names[level]);
    va_list args;
    va_start(args, format);
    int more = vsnprintf(line + used, sizeof(line) - (size_t)used, format, args);
    va_end(args);
    size_t length = (size_t)used + (more > 0 ? (size_t)more : 0);
    if (length > sizeof(line) - 2)
        length = sizeof(line) - 2;
    line[length++] = '\n';
    /* One write() keeps lines from different threads whole. */
    ssize_t ignored = write(STDERR_FILENO, line, length);
    (void)ignored;
}

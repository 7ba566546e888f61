/* What an HMP command prints into and runs with: the growable output text (QEMU's monitor
 * turns every "\n" into "\r\n") and the command context. Below monitor_hmp.c so that
 * command files (hmp_net_commands.c) need not include the monitor that lists them. */
#ifndef PLUGVIRT_HMP_OUTPUT_H
#define PLUGVIRT_HMP_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>

struct vm;

/* Growable output text of one command. */
struct hmp_output {
    char *text; /* NUL-terminated once anything was printed */
    size_t length;
    size_t capacity;
    bool failed; /* an allocation failed; the text is incomplete */
};

void hmp_output_init(struct hmp_output *output);
void hmp_output_free(struct hmp_output *output);
/* printf into the output, "\n" becoming "\r\n". */
void hmp_printf(struct hmp_output *output, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
/* The text so far, "" when empty. */
const char *hmp_output_text(const struct hmp_output *output);

struct hmp_context {
    struct vm *vm;
    struct hmp_output *output;
    int current_cpu; /* the CPU `info cpus` marks with '*' */
    /* Set by a command for work that must follow its output (quit). */
    void (*after_output)(struct vm *vm);
};

#endif

/* Error reporting shared by every plugvirt component.
 *
 * Functions return 0 or a negative errno (or NULL) and fill a struct pv_error
 * with a message a user can act on. The caller owns the struct; it may pass
 * NULL when it does not care about the message. */
#ifndef PLUGVIRT_PV_ERROR_H
#define PLUGVIRT_PV_ERROR_H

#include <stddef.h>

#define PV_ERROR_MESSAGE_MAX 512

struct pv_error {
    int code;                           /* negative errno, 0 when no error is recorded */
    char message[PV_ERROR_MESSAGE_MAX]; /* human readable, no trailing newline */
};

/* Record an error and return `code` (a negative errno) so callers can write
 * `return pv_error_set(error, -EINVAL, "bad size '%s'", text);`.
 * `error` may be NULL. */
int pv_error_set(struct pv_error *error, int code, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* Like pv_error_set, appending ": <strerror(-code)>" to the message. */
int pv_error_set_errno(struct pv_error *error, int code, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix an existing message with more context: "<prefix>: <old message>". */
int pv_error_prefix(struct pv_error *error, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

void pv_error_clear(struct pv_error *error);

#endif

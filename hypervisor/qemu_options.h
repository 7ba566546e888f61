/* QEMU option strings: "value,key=value,key2=value2".
 *
 * The syntax follows QEMU's QemuOpts so that one argv works for both VMMs:
 * - elements are separated by ','; inside a value ",," stands for a literal ',';
 * - the first element may omit its key when the option has an implied key
 *   ("-m 2G" is "-m size=2G", "-smp 2" is "-smp cpus=2");
 * - with QEMU_OPTIONS_FLAG_SHORTHAND, a bare "key" means key=on and a bare
 *   "nokey" means key=off ("-qmp unix:x,server,nowait");
 * - a key given twice keeps both entries; lookups return the last one, as
 *   QEMU does.
 *
 * Lookups mark entries as used, so after a consumer has read everything it
 * understands, qemu_options_check_unused() turns any leftover key into an
 * error instead of silently ignoring it. */
#ifndef PLUGVIRT_QEMU_OPTIONS_H
#define PLUGVIRT_QEMU_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pv_error.h"

#define QEMU_SIZE_KIB (UINT64_C(1) << 10)
#define QEMU_SIZE_MIB (UINT64_C(1) << 20)

enum qemu_options_flags {
    QEMU_OPTIONS_FLAG_SHORTHAND = 1 << 0, /* bare "key" = on, bare "nokey" = off */
};

struct qemu_option {
    char *key;   /* owned, never empty */
    char *value; /* owned, ",," already unescaped */
    bool used;   /* set by the lookups below */
};

struct qemu_options {
    struct qemu_option *items; /* in the order given */
    size_t count;
};

/* Parses `text` into `options` (overwritten; free with qemu_options_free
 * also on error). `implied_key` may be NULL when the option has none.
 * Errors: -EINVAL "empty parameter name" / "parameter 'x' needs a value"... */
int qemu_options_parse(struct qemu_options *options, const char *text, const char *implied_key,
                       unsigned flags, struct pv_error *error);
void qemu_options_free(struct qemu_options *options);

/* The last entry for `key`, marked used; NULL when absent. */
struct qemu_option *qemu_options_find(struct qemu_options *options, const char *key);
/* The last value for `key` (marks it used), or NULL. */
const char *qemu_options_get(struct qemu_options *options, const char *key);
/* Like qemu_options_get, but a missing key is an error: "parameter 'key' is missing". */
int qemu_options_get_required(struct qemu_options *options, const char *key, const char **value,
                              struct pv_error *error);

/* Typed lookups: leave *value = default_value when the key is absent; fail
 * with a message naming the key when the value does not parse. */
int qemu_options_get_bool(struct qemu_options *options, const char *key, bool default_value,
                          bool *value, struct pv_error *error);
int qemu_options_get_uint64(struct qemu_options *options, const char *key, uint64_t default_value,
                            uint64_t *value, struct pv_error *error);
int qemu_options_get_unsigned(struct qemu_options *options, const char *key, unsigned default_value,
                              unsigned *value, struct pv_error *error);
/* `default_unit` is the multiplier of a number without suffix (1 for bytes). */
int qemu_options_get_size(struct qemu_options *options, const char *key, uint64_t default_unit,
                          uint64_t default_value, uint64_t *value, struct pv_error *error);

/* Marks every entry of `key` used without reading it (accepted and ignored). */
void qemu_options_ignore(struct qemu_options *options, const char *key);
/* -EINVAL "invalid parameter 'x'" for the first entry no lookup has used. */
int qemu_options_check_unused(const struct qemu_options *options, struct pv_error *error);

/* on/off/yes/no/true/false (QEMU's booleans). */
int qemu_parse_bool(const char *text, bool *value, struct pv_error *error);
/* A decimal unsigned number, no sign, no trailing characters. */
int qemu_parse_uint64(const char *text, uint64_t *value, struct pv_error *error);
/* A size: a decimal number (optionally with a fraction, "1.5G") and an
 * optional suffix B, K, M, G, T, P, E (case-insensitive, power of 1024),
 * itself optionally followed by 'B' or "iB" ("2GB", "2GiB"). Without a
 * suffix the number is multiplied by `default_unit`. Overflow and garbage
 * are errors. */
int qemu_parse_size(const char *text, uint64_t default_unit, uint64_t *bytes,
                    struct pv_error *error);

/* `text` with every ',' doubled, for building option strings; malloc'd, NULL when out of
 * memory. */
char *qemu_options_escape(const char *text);

#endif

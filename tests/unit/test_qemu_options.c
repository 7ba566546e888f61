#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu_options.h"

static void parse_ok(struct qemu_options *options, const char *text, const char *implied_key)
{
    struct pv_error error = {0};
    int rc = qemu_options_parse(options, text, implied_key, QEMU_OPTIONS_FLAG_SHORTHAND, &error);
    cr_assert_eq(rc, 0, "parsing '%s' failed: %s", text, error.message);
}

Test(qemu_options, implied_key_and_pairs)
{
    struct qemu_options options;
    parse_ok(&options, "pc,accel=kvm,usb=off", "type");
    cr_assert_eq(options.count, 3);
    cr_assert_str_eq(options.items[0].key, "type");
    cr_assert_str_eq(options.items[0].value, "pc");
    cr_assert_str_eq(qemu_options_get(&options, "accel"), "kvm");
    cr_assert_str_eq(qemu_options_get(&options, "usb"), "off");
    cr_assert_null(qemu_options_get(&options, "missing"));
    qemu_options_free(&options);
}

Test(qemu_options, first_element_with_key_does_not_use_implied_key)
{
    struct qemu_options options;
    parse_ok(&options, "size=2048,slots=4", "size");
    cr_assert_eq(options.count, 2);
    cr_assert_str_eq(qemu_options_get(&options, "size"), "2048");
    qemu_options_free(&options);
}

Test(qemu_options, comma_escape)
{
    struct qemu_options options;
    parse_ok(&options, "/tmp/a,,b,,,,c,server=on", "path");
    cr_assert_eq(options.count, 2);
    cr_assert_str_eq(qemu_options_get(&options, "path"), "/tmp/a,b,,c");
    cr_assert_str_eq(qemu_options_get(&options, "server"), "on");
    qemu_options_free(&options);

    parse_ok(&options, "id=x,path=a,,b", NULL);
    cr_assert_str_eq(qemu_options_get(&options, "path"), "a,b");
    qemu_options_free(&options);
}

Test(qemu_options, equals_inside_value)
{
    struct qemu_options options;
    parse_ok(&options, "append=console=ttyS0 root=/dev/vda", NULL);
    cr_assert_str_eq(qemu_options_get(&options, "append"), "console=ttyS0 root=/dev/vda");
    qemu_options_free(&options);
}

Test(qemu_options, shorthand_flags)
{
    struct qemu_options options;
    parse_ok(&options, "/run/q.sock,server,nowait", "path");
    cr_assert_str_eq(qemu_options_get(&options, "server"), "on");
    cr_assert_str_eq(qemu_options_get(&options, "wait"), "off");
    qemu_options_free(&options);
}

Test(qemu_options, shorthand_needs_the_flag)
{
    struct qemu_options options;
    struct pv_error error = {0};
    int rc = qemu_options_parse(&options, "a=1,server", NULL, 0, &error);
    cr_assert_eq(rc, -EINVAL);
    cr_assert(strstr(error.message, "server"), "message: %s", error.message);
    qemu_options_free(&options);
}

Test(qemu_options, empty_name_is_an_error)
{
    struct qemu_options options;
    struct pv_error error = {0};
    cr_assert_eq(qemu_options_parse(&options, "a=1,=2", NULL, QEMU_OPTIONS_FLAG_SHORTHAND, &error),
                 -EINVAL);
    cr_assert(strstr(error.message, "empty parameter name"), "message: %s", error.message);
    qemu_options_free(&options);
    cr_assert_eq(qemu_options_parse(&options, "a=1,,,=2", NULL, 0, &error), -EINVAL);
    qemu_options_free(&options);
}

Test(qemu_options, empty_string_and_trailing_comma)
{
    struct qemu_options options;
    parse_ok(&options, "", "type");
    cr_assert_eq(options.count, 0);
    qemu_options_free(&options);
    parse_ok(&options, "cpus=2,", "cpus");
    cr_assert_eq(options.count, 1);
    qemu_options_free(&options);
}

Test(qemu_options, last_duplicate_wins_and_all_are_used)
{
    struct qemu_options options;
    struct pv_error error = {0};
    parse_ok(&options, "a=1,a=2", NULL);
    cr_assert_str_eq(qemu_options_get(&options, "a"), "2");
    cr_assert_eq(qemu_options_check_unused(&options, &error), 0);
    qemu_options_free(&options);
}

Test(qemu_options, unused_key_is_reported)
{
    struct qemu_options options;
    struct pv_error error = {0};
    parse_ok(&options, "pc,bogus=1", "type");
    qemu_options_get(&options, "type");
    cr_assert_eq(qemu_options_check_unused(&options, &error), -EINVAL);
    cr_assert_str_eq(error.message, "invalid parameter 'bogus'");
    qemu_options_ignore(&options, "bogus");
    cr_assert_eq(qemu_options_check_unused(&options, &error), 0);
    qemu_options_free(&options);
}

Test(qemu_options, typed_lookups)
{
    struct qemu_options options;
    struct pv_error error = {0};
    parse_ok(&options, "on=yes,off=off,n=42,size=1G", NULL);
    bool flag = false;
    cr_assert_eq(qemu_options_get_bool(&options, "on", false, &flag, &error), 0);
    cr_assert(flag);
    cr_assert_eq(qemu_options_get_bool(&options, "off", true, &flag, &error), 0);
    cr_assert_not(flag);
    cr_assert_eq(qemu_options_get_bool(&options, "absent", true, &flag, &error), 0);
    cr_assert(flag);
    unsigned number = 0;
    cr_assert_eq(qemu_options_get_unsigned(&options, "n", 7, &number, &error), 0);
    cr_assert_eq(number, 42);
    cr_assert_eq(qemu_options_get_unsigned(&options, "absent", 7, &number, &error), 0);
    cr_assert_eq(number, 7);
    uint64_t size = 0;
    cr_assert_eq(qemu_options_get_size(&options, "size", 1, 0, &size, &error), 0);
    cr_assert_eq(size, UINT64_C(1) << 30);
    const char *value = NULL;
    cr_assert_eq(qemu_options_get_required(&options, "absent", &value, &error), -EINVAL);
    cr_assert_str_eq(error.message, "parameter 'absent' is missing");
    qemu_options_free(&options);
}

Test(qemu_options, typed_lookup_errors_name_the_key)
{
    struct qemu_options options;
    struct pv_error error = {0};
    parse_ok(&options, "flag=maybe,n=12x,big=99999999999", NULL);
    bool flag;
    cr_assert_eq(qemu_options_get_bool(&options, "flag", false, &flag, &error), -EINVAL);
    cr_assert(strstr(error.message, "parameter 'flag'"), "message: %s", error.message);
    unsigned number;
    cr_assert_lt(qemu_options_get_unsigned(&options, "n", 0, &number, &error), 0);
    cr_assert(strstr(error.message, "parameter 'n'"), "message: %s", error.message);
    cr_assert_eq(qemu_options_get_unsigned(&options, "big", 0, &number, &error), -ERANGE);
    cr_assert(strstr(error.message, "'big'"), "message: %s", error.message);
    qemu_options_free(&options);
}

Test(qemu_options, booleans)
{
    const char *truths[] = {"on", "yes", "true", "y"};
    const char *falsehoods[] = {"off", "no", "false", "n"};
    for (size_t i = 0; i < 4; i++) {
        bool value = false;
        cr_assert_eq(qemu_parse_bool(truths[i], &value, NULL), 0);
        cr_assert(value);
        cr_assert_eq(qemu_parse_bool(falsehoods[i], &value, NULL), 0);
        cr_assert_not(value);
    }
    bool value;
    cr_assert_eq(qemu_parse_bool("ON", &value, NULL), -EINVAL);
    cr_assert_eq(qemu_parse_bool("", &value, NULL), -EINVAL);
    cr_assert_eq(qemu_parse_bool("1", &value, NULL), -EINVAL);
}

Test(qemu_options, numbers)
{
    uint64_t value;
    cr_assert_eq(qemu_parse_uint64("0", &value, NULL), 0);
    cr_assert_eq(value, 0);
    cr_assert_eq(qemu_parse_uint64("18446744073709551615", &value, NULL), 0);
    cr_assert_eq(value, UINT64_MAX);
    cr_assert_eq(qemu_parse_uint64("18446744073709551616", &value, NULL), -ERANGE);
    cr_assert_eq(qemu_parse_uint64("", &value, NULL), -EINVAL);
    cr_assert_eq(qemu_parse_uint64("-1", &value, NULL), -EINVAL);
    cr_assert_eq(qemu_parse_uint64(" 1", &value, NULL), -EINVAL);
    cr_assert_eq(qemu_parse_uint64("0x10", &value, NULL), -EINVAL);
}

Test(qemu_options, sizes)
{
    struct {
        const char *text;
        uint64_t default_unit;
        uint64_t expected;
    } cases[] = {
        {"128", QEMU_SIZE_MIB, 128 * QEMU_SIZE_MIB},
        {"128", 1, 128},
        {"512k", QEMU_SIZE_MIB, 512 * QEMU_SIZE_KIB},
        {"512K", QEMU_SIZE_MIB, 512 * QEMU_SIZE_KIB},
        {"2G", QEMU_SIZE_MIB, UINT64_C(2) << 30},
        {"2g", QEMU_SIZE_MIB, UINT64_C(2) << 30},
        {"2GB", QEMU_SIZE_MIB, UINT64_C(2) << 30},
        {"2GiB", QEMU_SIZE_MIB, UINT64_C(2) << 30},
        {"1T", QEMU_SIZE_MIB, UINT64_C(1) << 40},
        {"1.5G", QEMU_SIZE_MIB, UINT64_C(3) << 29},
        {"0.5", QEMU_SIZE_MIB, QEMU_SIZE_MIB / 2},
        {"4096B", QEMU_SIZE_MIB, 4096},
        {"15E", 1, UINT64_C(15) << 60}, /* the largest whole number of EiB that fits */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t bytes = 0;
        struct pv_error error = {0};
        cr_assert_eq(qemu_parse_size(cases[i].text, cases[i].default_unit, &bytes, &error), 0,
                     "'%s': %s", cases[i].text, error.message);
        cr_assert_eq(bytes, cases[i].expected, "'%s' gave %llu", cases[i].text,
                     (unsigned long long)bytes);
    }
}

Test(qemu_options, bad_sizes)
{
    const char *bad[] = {"",    "G",   "-1",   "1X",          "1GG", "1.G",  "1..5G",
                         " 1",  "1 G", "16E",  "1.5B",        "1.5", "0x10", "99999999999999999999",
                         "1Gx", "1iB", "1BiB", "17179869184G"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t bytes = 0;
        struct pv_error error = {0};
        int rc = qemu_parse_size(bad[i], 1, &bytes, &error);
        cr_assert_lt(rc, 0, "'%s' was accepted as %llu", bad[i], (unsigned long long)bytes);
        cr_assert_neq(error.message[0], '\0');
    }
}

Test(qemu_options, escape_round_trips)
{
    char *escaped = qemu_options_escape("/tmp/a,b,,c");
    cr_assert_str_eq(escaped, "/tmp/a,,b,,,,c");
    struct qemu_options options;
    char text[64];
    snprintf(text, sizeof(text), "path=%s,server=on", escaped);
    parse_ok(&options, text, NULL);
    cr_assert_str_eq(qemu_options_get(&options, "path"), "/tmp/a,b,,c");
    qemu_options_free(&options);
    free(escaped);
}

Test(qemu_options, free_twice_is_safe)
{
    struct qemu_options options;
    parse_ok(&options, "a=1", NULL);
    qemu_options_free(&options);
    qemu_options_free(&options);
    cr_assert_eq(options.count, 0);
}

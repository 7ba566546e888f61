/* Netdev arguments as JSON (QMP netdev_add, -netdev '{...}'): QEMU checks the members'
 * QAPI types before anything else, with its visitor's messages; the option list that
 * qemu_options_from_json makes from them has lost the types. */
#include "net/net_json.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "json_util.h"

/* The tap members' QAPI types (QEMU 7.2's NetdevTapOptions). */
enum member_type { MEMBER_STRING, MEMBER_BOOL, MEMBER_UINT32, MEMBER_UINT64 };

static const struct {
    const char *name;
    enum member_type type;
} tap_members[] = {
    {"id", MEMBER_STRING},         {"type", MEMBER_STRING},     {"ifname", MEMBER_STRING},
    {"fd", MEMBER_STRING},         {"fds", MEMBER_STRING},      {"script", MEMBER_STRING},
    {"downscript", MEMBER_STRING}, {"br", MEMBER_STRING},       {"helper", MEMBER_STRING},
    {"sndbuf", MEMBER_UINT64},     {"vnet_hdr", MEMBER_BOOL},   {"vhost", MEMBER_BOOL},
    {"vhostfd", MEMBER_STRING},    {"vhostfds", MEMBER_STRING}, {"vhostforce", MEMBER_BOOL},
    {"queues", MEMBER_UINT32},     {"poll-us", MEMBER_UINT32},
};

static int check_member(const char *name, enum member_type type, yajl_val value,
                        struct pv_error *error)
{
    switch (type) {
    case MEMBER_STRING:
        if (!YAJL_IS_STRING(value))
            return pv_error_set(error, -EINVAL, "Invalid parameter type for '%s', expected: string",
                                name);
        return 0;
    case MEMBER_BOOL:
        /* "on"/"off" strings too: netdev_add took its arguments as option strings before
         * QEMU 6.0, and scripts (and libvirt's older code) still send "vhost": "on". */
        if (YAJL_IS_STRING(value) &&
            (strcmp(value->u.string, "on") == 0 || strcmp(value->u.string, "off") == 0))
            return 0;
        if (!YAJL_IS_TRUE(value) && !YAJL_IS_FALSE(value))
            return pv_error_set(error, -EINVAL,
                                "Invalid parameter type for '%s', expected: boolean", name);
        return 0;
    case MEMBER_UINT32:
    case MEMBER_UINT64:
        /* QEMU 7.2's netdev_add answers like this for strings and negative numbers alike
         * (it visits the arguments as keyval strings). */
        if (!YAJL_IS_INTEGER(value) || YAJL_GET_INTEGER(value) < 0)
            return pv_error_set(error, -EINVAL, "Parameter '%s' expects %s", name,
                                type == MEMBER_UINT32 && YAJL_IS_INTEGER(value) ? "uint32_t"
                                                                                : "uint64");
        if (type == MEMBER_UINT32 && YAJL_GET_INTEGER(value) > UINT32_MAX)
            return pv_error_set(error, -EINVAL, "Parameter '%s' expects uint32_t", name);
        return 0;
    }
    return 0;
}

int net_netdev_check_json(yajl_val arguments, struct pv_error *error)
{
    /* QEMU's order: id, type, then the members of the type. */
    static const char *const first[] = {"id", "type"};
    for (size_t i = 0; i < 2; i++) {
        yajl_val value = json_object_get(arguments, first[i]);
        if (!value && i == 1)
            break; /* no "type": tap (net_netdev_check) */
        if (!value)
            return pv_error_set(error, -EINVAL, "Parameter '%s' is missing", first[i]);
        if (check_member(first[i], MEMBER_STRING, value, error) < 0)
            return -EINVAL;
    }
    const char *type = json_get_string(arguments, "type");
    if (type && strcmp(type, "tap") != 0)
        return 0; /* net_netdev_check says what is wrong with the type */
    for (size_t i = 0; i < sizeof(tap_members) / sizeof(tap_members[0]); i++) {
        yajl_val value = json_object_get(arguments, tap_members[i].name);
        if (value && check_member(tap_members[i].name, tap_members[i].type, value, error) < 0)
            return -EINVAL;
    }
    return 0;
}

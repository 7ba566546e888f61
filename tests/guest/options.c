/*
 * Kernel command-line switches: `key=value` words. Add a switch by adding a
 * row to option_table; unknown keys are ignored (the line may be a Linux one).
 */
#include "probe.h"

struct probe_options probe_options;

struct option_entry {
    const char *key;
    /* Returns false if the value is not understood (the switch is then ignored). */
    bool (*apply)(const char *value);
};

static bool apply_unplug(const char *value)
{
    if (strcmp(value, "ignore") == 0) {
        probe_options.unplug = PROBE_UNPLUG_IGNORE;
        return true;
    }
    if (strncmp(value, "delay:", 6) == 0 &&
        probe_parse_u64(value + 6, &probe_options.unplug_delay_ms)) {
        probe_options.unplug = PROBE_UNPLUG_DELAY;
        return true;
    }
    return false;
}

static bool apply_virtio(const char *value)
{
    if (strcmp(value, "evil") == 0) {
        probe_options.virtio_evil = true;
        return true;
    }
    return false;
}

static const struct option_entry option_table[] = {
    {"probe.unplug", apply_unplug},
    {"probe.virtio", apply_virtio},
};

static void apply_word(char *word)
{
    char *equals = word;
    while (*equals && *equals != '=')
        equals++;
    if (!*equals)
        return;
    *equals = '\0';
    for (size_t i = 0; i < sizeof(option_table) / sizeof(option_table[0]); i++) {
        if (strcmp(word, option_table[i].key) == 0) {
            if (!option_table[i].apply(equals + 1))
                console_printf("PROBE WARN bad value for %s: %s", word, equals + 1);
            return;
        }
    }
}

void options_parse(const char *cmdline)
{
    char word[128];
    while (*cmdline) {
        while (*cmdline == ' ' || *cmdline == '\t')
            cmdline++;
        size_t length = 0;
        while (*cmdline && *cmdline != ' ' && *cmdline != '\t') {
            if (length < sizeof(word) - 1)
                word[length++] = *cmdline;
            cmdline++;
        }
        word[length] = '\0';
        if (length)
            apply_word(word);
    }
}

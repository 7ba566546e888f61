/* pvsh command arguments: virsh's option syntax, and word splitting for the prompt. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pvsh.h"

static int option_index(const struct pvsh_command *command, const char *name, size_t length)
{
    for (int i = 0; command->options && command->options[i].name; i++) {
        if (strlen(command->options[i].name) == length &&
            strncmp(command->options[i].name, name, length) == 0)
            return i;
    }
    return -1;
}

/* The next positional option not given yet, or the REST option, or -1. */
static int next_positional(const struct pvsh_command *command,
                           const struct pvsh_arguments *arguments)
{
    for (int i = 0; command->options && command->options[i].name; i++) {
        const struct pvsh_option *option = &command->options[i];
        if (option->kind == PVSH_OPTION_REST)
            return i;
        if ((option->flags & PVSH_POSITIONAL) && !arguments->present[i])
            return i;
    }
    return -1;
}

static int add_rest(struct pvsh_arguments *arguments, const char *word, struct pv_error *error)
{
    const char **rest = realloc(arguments->rest, (arguments->rest_count + 1) * sizeof(*rest));
    if (!rest)
        return pv_error_set(error, -ENOMEM, "out of memory");
    rest[arguments->rest_count++] = word;
    arguments->rest = rest;
    return 0;
}

int pvsh_arguments_parse(const struct pvsh_command *command, int argc, char **argv,
                         struct pvsh_arguments *arguments, struct pv_error *error)
{
    memset(arguments, 0, sizeof(*arguments));
    arguments->command = command;
    bool options_ended = false;
    int ret = 0;

    for (int word_index = 1; word_index < argc; word_index++) {
        const char *word = argv[word_index];
        if (!options_ended && strcmp(word, "--") == 0) {
            options_ended = true;
            continue;
        }
        if (!options_ended && strncmp(word, "--", 2) == 0) {
            const char *name = word + 2;
            const char *equals = strchr(name, '=');
            size_t name_length = equals ? (size_t)(equals - name) : strlen(name);
            int index = option_index(command, name, name_length);
            if (index < 0 || command->options[index].kind == PVSH_OPTION_REST) {
                ret = pv_error_set(error, -EINVAL, "command '%s' doesn't support option --%.*s",
                                   command->name, (int)name_length, name);
                goto fail;
            }
            const struct pvsh_option *option = &command->options[index];
            if (arguments->present[index]) {
                ret = pv_error_set(error, -EINVAL, "option --%s already seen", option->name);
                goto fail;
            }
            const char *value = "";
            if (option->kind == PVSH_OPTION_BOOL) {
                if (equals) {
                    ret = pv_error_set(error, -EINVAL, "option --%s does not take a value",
                                       option->name);
                    goto fail;
                }
            } else if (option->kind == PVSH_OPTION_OPTIONAL_STRING) {
                if (equals)
                    value = equals + 1;
            } else if (equals) {
                value = equals + 1;
            } else if (word_index + 1 < argc) {
                value = argv[++word_index];
            } else {
                ret = pv_error_set(error, -EINVAL, "expected syntax: --%s <string>", option->name);
                goto fail;
            }
            arguments->present[index] = true;
            arguments->values[index] = value;
            continue;
        }
        int index = next_positional(command, arguments);
        if (index < 0) {
            ret = pv_error_set(error, -EINVAL, "unexpected data '%s'", word);
            goto fail;
        }
        if (command->options[index].kind == PVSH_OPTION_REST) {
            ret = add_rest(arguments, word, error);
            if (ret < 0)
                goto fail;
            arguments->present[index] = true;
            continue;
        }
        arguments->present[index] = true;
        arguments->values[index] = word;
    }

    for (int i = 0; command->options && command->options[i].name; i++) {
        const struct pvsh_option *option = &command->options[i];
        if ((option->flags & PVSH_REQUIRED) && !arguments->present[i]) {
            ret = pv_error_set(error, -EINVAL, "command '%s' requires <%s> option", command->name,
                               option->name);
            goto fail;
        }
    }
    return 0;

fail:
    pvsh_arguments_free(arguments);
    return ret;
}

void pvsh_arguments_free(struct pvsh_arguments *arguments)
{
    free(arguments->rest);
    arguments->rest = NULL;
    arguments->rest_count = 0;
}

static int find_option(const struct pvsh_arguments *arguments, const char *name)
{
    return option_index(arguments->command, name, strlen(name));
}

const char *pvsh_argument_string(const struct pvsh_arguments *arguments, const char *name)
{
    int index = find_option(arguments, name);
    if (index < 0 || !arguments->present[index])
        return NULL;
    return arguments->values[index];
}

bool pvsh_argument_bool(const struct pvsh_arguments *arguments, const char *name)
{
    int index = find_option(arguments, name);
    return index >= 0 && arguments->present[index];
}

int pvsh_argument_uint(const struct pvsh_arguments *arguments, const char *name,
                       unsigned long long max, unsigned long long *value, struct pv_error *error)
{
    const char *text = pvsh_argument_string(arguments, name);
    if (!text)
        return 1;
    char *end = NULL;
    errno = 0;
    unsigned long long parsed = strtoull(text, &end, 10);
    if (!*text || *text == '-' || *end || errno || parsed > max)
        return pv_error_set(error, -EINVAL,
                            "Numeric value '%s' for <%s> option is malformed or out of range", text,
                            name);
    *value = parsed;
    return 0;
}

/* --- word splitting ------------------------------------------------------------------ */

struct word_list {
    char **words;
    int count;
    char *current;
    size_t current_length;
    bool in_word;
};

static int append_char(struct word_list *list, char c)
{
    char *current = realloc(list->current, list->current_length + 2);
    if (!current)
        return -ENOMEM;
    current[list->current_length++] = c;
    current[list->current_length] = '\0';
    list->current = current;
    list->in_word = true;
    return 0;
}

static int finish_word(struct word_list *list)
{
    if (!list->in_word)
        return 0;
    if (!list->current) {
        list->current = strdup("");
        if (!list->current)
            return -ENOMEM;
    }
    char **words = realloc(list->words, (size_t)(list->count + 2) * sizeof(*words));
    if (!words)
        return -ENOMEM;
    words[list->count++] = list->current;
    words[list->count] = NULL;
    list->words = words;
    list->current = NULL;
    list->current_length = 0;
    list->in_word = false;
    return 0;
}

char **pvsh_split_line(const char *line, int *count, const char **rest, struct pv_error *error)
{
    struct word_list list = {0};
    const char *p = line;
    *rest = NULL;
    int ret = 0;

    while (*p && ret == 0) {
        char c = *p;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            ret = finish_word(&list);
            p++;
        } else if (c == ';') {
            ret = finish_word(&list);
            *rest = p + 1;
            break;
        } else if (c == '#' && !list.in_word) {
            break; /* a comment up to the end of the line */
        } else if (c == '\'') {
            const char *close = strchr(p + 1, '\'');
            if (!close) {
                pv_error_set(error, -EINVAL, "missing '");
                goto fail;
            }
            list.in_word = true;
            for (const char *q = p + 1; q < close && ret == 0; q++)
                ret = append_char(&list, *q);
            p = close + 1;
        } else if (c == '"') {
            p++;
            list.in_word = true;
            while (*p && *p != '"' && ret == 0) {
                if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                    p++;
                ret = append_char(&list, *p++);
            }
            if (*p != '"') {
                pv_error_set(error, -EINVAL, "missing \"");
                goto fail;
            }
            p++;
        } else if (c == '\\' && p[1]) {
            ret = append_char(&list, p[1]);
            p += 2;
        } else {
            ret = append_char(&list, c);
            p++;
        }
    }
    if (ret == 0)
        ret = finish_word(&list);
    if (ret < 0) {
        pv_error_set(error, -ENOMEM, "out of memory");
        goto fail;
    }
    if (!list.words) {
        list.words = calloc(1, sizeof(*list.words));
        if (!list.words) {
            pv_error_set(error, -ENOMEM, "out of memory");
            goto fail;
        }
    }
    *count = list.count;
    return list.words;

fail:
    free(list.current);
    if (list.words)
        pvsh_words_free(list.words);
    *count = 0;
    *rest = NULL;
    return NULL;
}

void pvsh_words_free(char **words)
{
    if (!words)
        return;
    for (char **word = words; *word; word++)
        free(*word);
    free(words);
}

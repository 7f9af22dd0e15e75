/*
 * cli.c - option parsing shared by the subcommands (see cli.h).
 */
#include "cli.h"

#include <string.h>

/* Matches argv[*i] against "--name VALUE" or "--name=VALUE".  Returns 1 and
 * advances *i past the value, 0 when argv[*i] is another option, -1 when the
 * value is missing. */
int cli_opt_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);
    const char *a = argv[*i];

    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *value = argv[++*i];
    return 1;
}

int cli_is_help(const char *a)
{
    return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

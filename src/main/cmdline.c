/*
 * The option loop every subcommand shares (ch_main__parse in main.h): common options and the
 * command's flags, --help, one switch, positional arguments, and the message for anything else;
 * and the parsers of values several commands take (ids, counts).
 */
#include "main/main.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ch_main__parse(ch_main_cmdline_t *c, ch_main_opts_t *opts, int argc, char **argv, int first)
{
    memset(opts, 0, sizeof(*opts));
    c->npos = 0;
    for (int i = first; i < argc; i++) {
        int r = ch_main__option(opts, argc, argv, &i, c->flags);
        if (r < 0) {
            return CH_EXIT_USAGE;
        }
        if (r > 0) {
            continue;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(c->usage, stdout);
            return CH_EXIT_OK;
        }
        if (c->sw != NULL && strcmp(argv[i], c->sw) == 0) {
            *c->sw_set = 1;
            continue;
        }
        if (argv[i][0] == '-' || c->npos == c->pos_max) {
            if (c->strict) {
                fprintf(stderr, "cctvhub %s: unknown or incomplete option \"%s\"\n\n%s", c->cmd,
                        argv[i], c->usage);
            } else {
                fprintf(stderr, "cctvhub %s: unexpected \"%s\"\n\n%s", c->cmd, argv[i], c->usage);
            }
            return CH_EXIT_USAGE;
        }
        c->pos[c->npos++] = argv[i];
    }
    return -1;
}

int ch_main__parse_id(const char *s, int64_t *out)
{
    return ch_parse_int64(s, strlen(s), out) == 0 && *out > 0 ? 0 : -1;
}

int ch_main__parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || *s < '0' || *s > '9') {
        return -1;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') {
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

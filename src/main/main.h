/*
 * main: the cctvhub command. Each subcommand lives in its own file and returns one of the
 * documented exit codes below.
 */
#ifndef CH_MAIN_H
#define CH_MAIN_H

#include "core/config.h"

/* Exit codes, the same for every subcommand (README "Exit codes"). */
#define CH_EXIT_OK      0 /* done */
#define CH_EXIT_FAILURE 1 /* the work failed (a file rejected, a runtime error) */
#define CH_EXIT_USAGE   2 /* bad command line */
#define CH_EXIT_CONFIG  3 /* bad configuration: the message names the key */
#define CH_EXIT_STORE   4 /* the store cannot be opened, or the listener cannot bind */

int ch_main_serve(int argc, char **argv);
int ch_main_import(int argc, char **argv);
/* cctvhub keys init; cctvhub audit verify|show|prove|append (audit_cmd.c). */
int ch_main_keys(int argc, char **argv);
int ch_main_audit(int argc, char **argv);
/* cctvhub user add|disable|enable|list; cctvhub apikey create|revoke|list (account_cmd.c). */
int ch_main_user(int argc, char **argv);
int ch_main_apikey(int argc, char **argv);
/* cctvhub ledger (ledger_cmd.c). */
int ch_main_ledger(int argc, char **argv);
/* cctvhub report availability (report_cmd.c). */
int ch_main_report(int argc, char **argv);
/* cctvhub tls init|client|revoke|fingerprint: a private CA and its certificates (tls_cmd.c). */
int ch_main_tls(int argc, char **argv);

/*
 * Common options of every subcommand: --config FILE, --data-dir DIR, --store URL,
 * --log-level L.
 * ch_main__common_option() looks at argv[*i]; when it is a common option it consumes it (and
 * its value), records it in opts and returns 1; returns 0 when argv[*i] is not one, and -1
 * (after printing why) when its value is missing.
 */
typedef struct ch_main_opts {
    const char *config_file;
    ch_config_override_t overrides[16];
    size_t n_overrides;
} ch_main_opts_t;

int ch_main__common_option(ch_main_opts_t *opts, int argc, char **argv, int *i);
void ch_main__add_override(ch_main_opts_t *opts, const char *key, const char *value);
/* A command's own "--flag VALUE" or "--flag=VALUE" at argv[*i]: 1 and *value (consumed), 0
 * when argv[*i] is another argument, -1 (after printing why) when the value is missing. */
int ch_main__flag_value(int argc, char **argv, int *i, const char *flag, const char **value);
/* A command's value flags, a table ended by {NULL, NULL}: "--role" sets *value. */
typedef struct ch_main_flag {
    const char *name;
    const char **value;
} ch_main_flag_t;
/* argv[*i] as a common option or one of flags: 1 (consumed), 0 (another argument), -1 (after
 * printing why). Every command's option loop is this call, then its own arguments. */
int ch_main__option(ch_main_opts_t *opts, int argc, char **argv, int *i,
                    const ch_main_flag_t *flags);
/* What a subcommand's command line may hold, for ch_main__parse. */
typedef struct ch_main_cmdline {
    const char *cmd;             /* its name in messages: "audit show" */
    const char *usage;           /* printed for --help (stdout) and after a bad argument */
    const ch_main_flag_t *flags; /* its value flags, or NULL */
    const char *sw;              /* a switch without a value ("--json"), or NULL */
    int *sw_set;                 /* set to 1 when sw is given */
    const char **pos;            /* where positional arguments go (pos_max of them) */
    int pos_max;
    int npos;   /* out: the positional arguments given */
    int strict; /* the message for another argument: 1 "unknown or incomplete option", 0
                   "unexpected" */
} ch_main_cmdline_t;
/* The option loop of a subcommand, from argv[first]: common options and flags into opts (which
 * it clears), --help, the switch, positional arguments. -1 once the command line is read, else
 * the exit code to return at once (CH_EXIT_OK after --help, CH_EXIT_USAGE after saying why). */
int ch_main__parse(ch_main_cmdline_t *c, ch_main_opts_t *opts, int argc, char **argv, int first);

/* Parses an id given on the command line (an agency, a camera, an event, an API key: a
 * positive integer, as the API's queries take it) into *out; 0, or -1 when s is not one. */
int ch_main__parse_id(const char *s, int64_t *out);

/* Parses a whole decimal unsigned number (a count, a record number); 0, or -1. */
int ch_main__parse_u64(const char *s, uint64_t *out);
/* Loads the configuration with opts; prints the error and returns CH_EXIT_CONFIG on failure. */
int ch_main__load_config(const ch_main_opts_t *opts, ch_config_t *cfg);
/* Creates dir and its parents (mode 0750); 0 or -errno. */
int ch_main__mkdir_p(const char *dir);

#endif /* CH_MAIN_H */

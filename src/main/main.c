/*
 * The cctvhub command: dispatch to subcommands, and the options they share.
 */
#include "main/main.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

extern char **environ;

static const char ch__usage[] =
    "usage: cctvhub <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve     run the hub: HTTP API on http.listen (default 127.0.0.1:8080)\n"
    "  import    import CCTV inventory files (national CCTV standard data, emergency bells,\n"
    "            Seoul Ansimi lists) into the store\n"
    "  keys      keys init: make the node's Ed25519 key pair (signs the audit log)\n"
    "  audit     audit verify|show|prove|append: the audit log, offline (no running hub)\n"
    "  user      user add|disable|enable|list: people who log in\n"
    "  apikey    apikey create|revoke|list: API keys of agencies' systems\n"
    "  ledger    the provision ledger (PIPA Decree Art. 15) from the audit log, CSV or JSON\n"
    "  report    report availability --month YYYY-MM: cameras' availability per provider\n"
    "  tls       tls init|client|revoke|fingerprint: a private CA, the hub's certificate,\n"
    "            agencies' client certificates\n"
    "  version   print the version\n"
    "  help      print this text\n"
    "\n"
    "Run 'cctvhub <command> --help' for a command's options.\n"
    "\n"
    "exit codes: 0 done; 1 the work failed; 2 bad command line; 3 bad configuration;\n"
    "            4 store or audit log cannot be opened, or address cannot be bound\n";

int ch_main__common_option(ch_main_opts_t *opts, int argc, char **argv, int *i)
{
    static const struct {
        const char *flag;
        const char *key; /* NULL: the configuration file itself */
    } common[] = {
        {"--config", NULL},
        {"--data-dir", "hub.data_dir"},
        {"--log-level", "log.level"},
        {"--store", "store.url"},
    };
    for (size_t k = 0; k < CH_ARRAY_SIZE(common); k++) {
        const char *value = NULL;
        int r = ch_main__flag_value(argc, argv, i, common[k].flag, &value);
        if (r <= 0) {
            if (r < 0) {
                return r;
            }
            continue;
        }
        if (common[k].key == NULL) {
            opts->config_file = value;
        } else {
            ch_main__add_override(opts, common[k].key, value);
        }
        return 1;
    }
    return 0;
}

void ch_main__add_override(ch_main_opts_t *opts, const char *key, const char *value)
{
    /* Later flags win: replace an earlier value of the same key. */
    for (size_t i = 0; i < opts->n_overrides; i++) {
        if (strcmp(opts->overrides[i].key, key) == 0) {
            opts->overrides[i].value = value;
            return;
        }
    }
    if (opts->n_overrides < CH_ARRAY_SIZE(opts->overrides)) {
        opts->overrides[opts->n_overrides].key = key;
        opts->overrides[opts->n_overrides].value = value;
        opts->n_overrides++;
    }
}

int ch_main__load_config(const ch_main_opts_t *opts, ch_config_t *cfg)
{
    char *err = NULL;
    if (ch_config_load(cfg, opts->config_file, environ, opts->overrides, opts->n_overrides, &err) !=
        0) {
        fprintf(stderr, "cctvhub: configuration error: %s\n", err ? err : "unknown");
        ch_free(err);
        return CH_EXIT_CONFIG;
    }
    ch_log_set_level(cfg->log_level);
    return CH_EXIT_OK;
}

int ch_main__mkdir_p(const char *dir)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(path)) {
        return -ENAMETOOLONG;
    }
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] == '/' || path[i] == '\0') {
            char saved = path[i];
            path[i] = '\0';
            if (mkdir(path, 0750) != 0 && errno != EEXIST) {
                return -errno;
            }
            path[i] = saved;
        }
    }
    return 0;
}

int ch_main__flag_value(int argc, char **argv, int *i, const char *flag, const char **value)
{
    const char *arg = argv[*i];
    size_t flen = strlen(flag);
    if (strcmp(arg, flag) == 0) {
        if (*i + 1 >= argc) {
            fprintf(stderr, "cctvhub: %s needs a value\n", flag);
            return -1;
        }
        *value = argv[++*i];
        return 1;
    }
    if (strncmp(arg, flag, flen) == 0 && arg[flen] == '=') {
        *value = arg + flen + 1;
        return 1;
    }
    return 0;
}

int ch_main__option(ch_main_opts_t *opts, int argc, char **argv, int *i,
                    const ch_main_flag_t *flags)
{
    int r = ch_main__common_option(opts, argc, argv, i);
    for (; r == 0 && flags != NULL && flags->name != NULL; flags++) {
        r = ch_main__flag_value(argc, argv, i, flags->name, flags->value);
    }
    return r;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(ch__usage, stderr);
        return CH_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0) {
        return ch_main_serve(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "import") == 0) {
        return ch_main_import(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "keys") == 0) {
        return ch_main_keys(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "audit") == 0) {
        return ch_main_audit(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "user") == 0) {
        return ch_main_user(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "apikey") == 0) {
        return ch_main_apikey(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "ledger") == 0) {
        return ch_main_ledger(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "report") == 0) {
        return ch_main_report(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "tls") == 0) {
        return ch_main_tls(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("cctvhub %s (%s)\n", CH_VERSION, CH_GIT_REV);
        return CH_EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(ch__usage, stdout);
        return CH_EXIT_OK;
    }
    fprintf(stderr, "cctvhub: unknown command \"%s\"\n\n%s", cmd, ch__usage);
    return CH_EXIT_USAGE;
}

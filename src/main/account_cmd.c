/*
 * cctvhub user ... and cctvhub apikey ...: accounts from the command line, for the first
 * administrator and for an emergency (disable a user now). They work whether or not the hub
 * runs: each change and its audit record go into the store in one transaction (the record into
 * the audit outbox), and the record is appended to the log at once when the log is free, or by
 * the running hub within a second. The hub reads accounts from the store on every request, so
 * a disabled user or a revoked key is refused from the next request on.
 */
#include "main/main.h"

#include "auth/auth.h"
#include "main/hub_audit.h"
#include "store/store.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char user_usage[] =
    "usage: cctvhub user add NAME --role ROLE [--agency ID] --password-stdin [options]\n"
    "       cctvhub user disable NAME [options]\n"
    "       cctvhub user enable NAME [options]   (also lifts a lock-out)\n"
    "       cctvhub user list [options]\n"
    "\n"
    "People who log in to the hub (POST /api/v1/session). ROLE is admin, operator, agency,\n"
    "provider or auditor; agency and provider need --agency ID (the agency's id). The password\n"
    "is read from standard input (one line, at least 10 bytes) and stored as Argon2id.\n"
    "Disabling ends the user's sessions at once.\n"
    "\n"
    "options: --data-dir DIR, --config FILE, --store URL, --log-level L\n"
    "exit codes: 0 done; 1 refused (unknown user, name taken, bad password); 2 bad command\n"
    "            line; 3 bad configuration; 4 the store cannot be opened.\n";

static const char apikey_usage[] =
    "usage: cctvhub apikey create --agency ID [--role agency|provider] [--label TEXT]\n"
    "                             [--tls-key sha256:HEX] [options]\n"
    "       cctvhub apikey revoke ID [options]\n"
    "       cctvhub apikey list [options]\n"
    "\n"
    "API keys of agencies' systems, sent as \"Authorization: Bearer <key>\". create prints the\n"
    "key once on standard output; only its SHA-256 is kept. The role defaults to provider for\n"
    "an agency of kind provider, else agency. --tls-key binds the key to the agency's client\n"
    "certificate (its key's fingerprint: cctvhub tls fingerprint CERT): the agency's system\n"
    "must then show that certificate over HTTPS with the key, and either alone is refused.\n"
    "\n"
    "options: --data-dir DIR, --config FILE, --store URL, --log-level L\n"
    "exit codes: 0 done; 1 refused (unknown agency or key); 2 bad command line; 3 bad\n"
    "            configuration; 4 the store cannot be opened.\n";

typedef struct acct {
    ch_config_t cfg;
    ch_store_t *st;
    char actor[96];
    ch_auth_outbox_t outbox; /* the audit records' way to the log (st, actor) */
} acct_t;

static int acct_open(acct_t *a, const ch_main_opts_t *opts)
{
    memset(a, 0, sizeof(*a));
    int rc = ch_main__load_config(opts, &a->cfg);
    if (rc != CH_EXIT_OK) {
        return rc;
    }
    if (ch_main__mkdir_p(a->cfg.data_dir) != 0) {
        fprintf(stderr, "cctvhub: cannot create the data directory %s\n", a->cfg.data_dir);
        ch_config_fini(&a->cfg);
        return CH_EXIT_STORE;
    }
    char *err = NULL;
    if (ch_store_open(a->cfg.store_url, &a->st, &err) != 0) {
        fprintf(stderr, "cctvhub: cannot open the store: %s\n", err ? err : "unknown");
        ch_free(err);
        ch_config_fini(&a->cfg);
        return CH_EXIT_STORE;
    }
    ch_main__local_actor(a->actor);
    a->outbox.st = a->st;
    a->outbox.actor = a->actor;
    return CH_EXIT_OK;
}

/* Appends the outbox now when the log is free; leaves it to the running hub otherwise. */
static void acct_close(acct_t *a)
{
    ch_audit_t *log = NULL;
    int rc = ch_main__audit_try_open(&a->cfg, &log);
    if (rc == 0) {
        if (ch_auth_outbox_drain(a->st, ch_audit_append_queued, log) != 0) {
            fprintf(stderr, "cctvhub: the change is made; its audit record waits in the store's "
                            "outbox and will be appended by the next hub start\n");
        }
        ch_audit_close(log);
    } else if (rc == CH_ECONFLICT) {
        ch_log(CH_LOG_DEBUG, "main", "msg=\"audit log held by the hub; it appends the record\"");
    }
    ch_store_close(a->st);
    ch_config_fini(&a->cfg);
}

/* A use case's store or audit failure (the use case has rolled back): the store's message. */
static int acct_store_failed(acct_t *a, const char *what)
{
    fprintf(stderr, "cctvhub: %s: %s\n", what, ch_store_errmsg(a->st));
    return CH_EXIT_FAILURE;
}

/* Reads one line (the password) from stdin, without its line end. */
static char *read_password(size_t *len)
{
    size_t cap = CH_AUTH_PASSWORD_MAX + 3;
    char *buf = ch_malloc(cap);
    size_t n = 0;
    int ch;
    while ((ch = getchar()) != EOF && ch != '\n' && n < cap - 1) {
        buf[n++] = (char)ch;
    }
    if (n > 0 && buf[n - 1] == '\r') {
        n--;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* ---- user ---------------------------------------------------------------------------------- */

/* cctvhub user add, once the command line passed ch_auth_user_check without a store: reads
 * the password and adds the user through the use case (which checks it and the agency, and
 * hashes it here: no hash pool in a command). */
static int user_add(acct_t *a, const ch_auth_user_req_t *given)
{
    ch_auth_user_req_t req = *given;
    ch_fault_t err;
    size_t len = 0;
    char *pw = read_password(&len);
    req.password = pw;
    req.password_len = len;
    ch_auth_recorder_t rec = ch_auth_outbox_recorder(&a->outbox);
    ch_user_t u;
    int rc = ch_auth_user_add(a->st, &req, &rec, &u, &err);
    sodium_memzero(pw, len);
    ch_free(pw);
    if (rc != 0) {
        if (err.kind == CH_FAULT_CONFLICT) {
            fprintf(stderr, "cctvhub user add: a user named \"%s\" exists\n", req.name);
        } else if (strcmp(err.rule, "hash") == 0) {
            fprintf(stderr, "cctvhub user add: the password could not be hashed\n");
        } else if (err.kind == CH_FAULT_INTERNAL || err.kind == CH_FAULT_AUDIT) {
            acct_store_failed(a, "user add");
        } else if (strcmp(err.rule, "agency_exists") == 0) {
            fprintf(stderr, "cctvhub user add: no agency has id %lld\n", (long long)req.agency_id);
        } else {
            fprintf(stderr, "cctvhub user add: %s\n", err.message);
        }
        return CH_EXIT_FAILURE;
    }
    printf("user %s added (id %lld, role %s)\n", u.name, (long long)u.id, u.role);
    ch_user_fini(&u);
    return CH_EXIT_OK;
}

/* cctvhub user disable|enable: enabling also lifts a lock-out. */
static int user_set_disabled(acct_t *a, const char *name, int disabled)
{
    ch_auth_user_change_t req = {.name = name, .disabled = disabled, .unlock = !disabled};
    ch_auth_recorder_t rec = ch_auth_outbox_recorder(&a->outbox);
    ch_fault_t err;
    ch_user_t u;
    if (ch_auth_user_update(a->st, &req, NULL, &rec, &u, &err) != 0) {
        if (err.kind == CH_FAULT_NOT_FOUND) {
            fprintf(stderr, "cctvhub user: no user named \"%s\"\n", name);
            return CH_EXIT_FAILURE;
        }
        return acct_store_failed(a, "user");
    }
    ch_user_fini(&u);
    printf("user %s %s\n", name, disabled ? "disabled; its sessions ended" : "enabled");
    return CH_EXIT_OK;
}

static int user_list(acct_t *a)
{
    ch_store_filter_t f = {.limit = 1000};
    for (;;) {
        ch_user_list_t l;
        if (ch_store_user_list(a->st, &f, &l) != 0) {
            fprintf(stderr, "cctvhub user list: %s\n", ch_store_errmsg(a->st));
            return CH_EXIT_FAILURE;
        }
        for (size_t i = 0; i < l.count; i++) {
            const ch_user_t *u = &l.items[i];
            printf("%lld\t%s\t%s\t%lld\t%s\n", (long long)u->id, u->name, u->role,
                   (long long)u->agency_id, u->disabled ? "disabled" : "active");
        }
        f.after_id = l.next_id;
        ch_user_list_free(&l);
        if (f.after_id == 0) {
            return CH_EXIT_OK;
        }
    }
}

int ch_main_user(int argc, char **argv)
{
    ch_main_opts_t opts;
    const char *role = NULL, *agency = NULL, *pos[2] = {NULL, NULL};
    int pw_stdin = 0;
    const ch_main_flag_t flags[] = {{"--role", &role}, {"--agency", &agency}, {NULL, NULL}};
    ch_main_cmdline_t c = {.cmd = "user",
                           .usage = user_usage,
                           .flags = flags,
                           .sw = "--password-stdin",
                           .sw_set = &pw_stdin,
                           .pos = pos,
                           .pos_max = 2};
    int exit_code = ch_main__parse(&c, &opts, argc, argv, 1);
    if (exit_code >= 0) {
        return exit_code;
    }
    const char *cmd = pos[0], *name = pos[1];
    int64_t agency_id = 0;
    int is_add = cmd != NULL && strcmp(cmd, "add") == 0;
    int is_list = cmd != NULL && strcmp(cmd, "list") == 0;
    int is_set = cmd != NULL && (strcmp(cmd, "disable") == 0 || strcmp(cmd, "enable") == 0);
    if (cmd == NULL || (!is_add && !is_list && !is_set) || (is_list != (name == NULL))) {
        fprintf(stderr, "%s", user_usage);
        return CH_EXIT_USAGE;
    }
    ch_auth_user_req_t req = {.name = name, .role = role};
    if (is_add) {
        if (role == NULL || ch_auth_role_bit(role) == 0) {
            fprintf(stderr, "cctvhub user add: --role must be admin, operator, agency, provider "
                            "or auditor\n");
            return CH_EXIT_USAGE;
        }
        if (!pw_stdin) {
            fprintf(stderr, "cctvhub user add: give the password on standard input with "
                            "--password-stdin\n");
            return CH_EXIT_USAGE;
        }
        if (agency != NULL && ch_main__parse_id(agency, &agency_id) != 0) {
            fprintf(stderr, "cctvhub user add: --agency must be an agency id\n");
            return CH_EXIT_USAGE;
        }
        req.agency_id = agency_id;
        /* The rules that need no store are a bad command line (exit 2), before it is opened. */
        ch_fault_t err;
        if (ch_auth_user_check(NULL, &req, &err) != 0) {
            if (strcmp(err.rule, "agency_required") == 0) {
                fprintf(stderr, "cctvhub user add: the role %s needs --agency ID\n", role);
            } else if (strcmp(err.rule, "name") == 0) {
                fprintf(stderr, "cctvhub user add: a name has 1 to 64 bytes and no ':'\n");
            } else {
                fprintf(stderr, "cctvhub user add: %s\n", err.message);
            }
            return CH_EXIT_USAGE;
        }
    } else if (role != NULL || agency != NULL || pw_stdin) {
        fprintf(stderr, "cctvhub user %s: --role, --agency and --password-stdin are for add\n",
                cmd);
        return CH_EXIT_USAGE;
    }
    acct_t a;
    int rc = acct_open(&a, &opts);
    if (rc != CH_EXIT_OK) {
        return rc;
    }
    if (is_add) {
        rc = user_add(&a, &req);
    } else if (is_list) {
        rc = user_list(&a);
    } else {
        rc = user_set_disabled(&a, name, strcmp(cmd, "disable") == 0);
    }
    acct_close(&a);
    return rc;
}

/* ---- apikey -------------------------------------------------------------------------------- */

static int apikey_create(acct_t *a, const ch_auth_apikey_req_t *req)
{
    ch_auth_recorder_t rec = ch_auth_outbox_recorder(&a->outbox);
    ch_auth_apikey_made_t made;
    ch_fault_t err;
    if (ch_auth_apikey_create(a->st, req, &rec, &made, &err) != 0) {
        if (err.kind == CH_FAULT_INVALID && strcmp(err.rule, "agency_exists") == 0) {
            fprintf(stderr, "cctvhub apikey create: no agency has id %lld\n",
                    (long long)req->agency_id);
            return CH_EXIT_FAILURE;
        }
        if (err.kind == CH_FAULT_INVALID) {
            fprintf(stderr, "cctvhub apikey create: %s\n", err.message);
            return CH_EXIT_FAILURE;
        }
        return acct_store_failed(a, "apikey create");
    }
    printf("%s\n", made.text);
    fflush(stdout);
    sodium_memzero(made.text, sizeof(made.text));
    fprintf(stderr, "API key %lld for agency %lld (role %s): shown once, keep it safe\n",
            (long long)made.key.id, (long long)made.key.agency_id, made.key.role);
    ch_apikey_fini(&made.key);
    return CH_EXIT_OK;
}

static int apikey_revoke(acct_t *a, int64_t id)
{
    ch_auth_recorder_t rec = ch_auth_outbox_recorder(&a->outbox);
    ch_fault_t err;
    if (ch_auth_apikey_revoke(a->st, id, &rec, &err) != 0) {
        if (err.kind == CH_FAULT_NOT_FOUND) {
            fprintf(stderr, "cctvhub apikey revoke: no API key has id %lld\n", (long long)id);
            return CH_EXIT_FAILURE;
        }
        return acct_store_failed(a, "apikey revoke");
    }
    printf("API key %lld revoked\n", (long long)id);
    return CH_EXIT_OK;
}

static int apikey_list(acct_t *a)
{
    ch_store_filter_t f = {.limit = 1000};
    for (;;) {
        ch_apikey_list_t l;
        if (ch_store_apikey_list(a->st, &f, &l) != 0) {
            fprintf(stderr, "cctvhub apikey list: %s\n", ch_store_errmsg(a->st));
            return CH_EXIT_FAILURE;
        }
        for (size_t i = 0; i < l.count; i++) {
            const ch_apikey_t *k = &l.items[i];
            printf("%lld\t%lld\t%s\t%s\t%s\t%s\n", (long long)k->id, (long long)k->agency_id,
                   k->role, k->revoked_at ? "revoked" : "live", k->label ? k->label : "",
                   k->tls_key ? k->tls_key : "");
        }
        f.after_id = l.next_id;
        ch_apikey_list_free(&l);
        if (f.after_id == 0) {
            return CH_EXIT_OK;
        }
    }
}

int ch_main_apikey(int argc, char **argv)
{
    ch_main_opts_t opts;
    const char *role = NULL, *agency = NULL, *label = NULL, *tls_key = NULL;
    const char *pos[2] = {NULL, NULL};
    const ch_main_flag_t flags[] = {{"--role", &role},
                                    {"--agency", &agency},
                                    {"--label", &label},
                                    {"--tls-key", &tls_key},
                                    {NULL, NULL}};
    ch_main_cmdline_t c = {
        .cmd = "apikey", .usage = apikey_usage, .flags = flags, .pos = pos, .pos_max = 2};
    int exit_code = ch_main__parse(&c, &opts, argc, argv, 1);
    if (exit_code >= 0) {
        return exit_code;
    }
    int npos = c.npos;
    const char *cmd = pos[0];
    int64_t id = 0;
    int ok = 0;
    ch_auth_apikey_req_t req = {.role = role, .label = label, .tls_key = tls_key};
    ch_fault_t err;
    if (cmd != NULL && strcmp(cmd, "create") == 0) {
        ok = npos == 1 && agency != NULL && ch_main__parse_id(agency, &req.agency_id) == 0;
        /* The rules that need no store (the role, the label) are a bad command line. */
        if (ok && ch_auth_apikey_check(NULL, &req, &err) != 0) {
            if (strcmp(err.rule, "label") == 0 || strcmp(err.rule, "tls_key") == 0) {
                fprintf(stderr, "cctvhub apikey create: %s\n\n", err.message);
            }
            ok = 0;
        }
    } else if (cmd != NULL && strcmp(cmd, "revoke") == 0) {
        ok = npos == 2 && ch_main__parse_id(pos[1], &id) == 0 && role == NULL && agency == NULL;
    } else if (cmd != NULL && strcmp(cmd, "list") == 0) {
        ok = npos == 1 && role == NULL && agency == NULL;
    }
    if (!ok) {
        fprintf(stderr, "%s", apikey_usage);
        return CH_EXIT_USAGE;
    }
    acct_t a;
    int rc = acct_open(&a, &opts);
    if (rc != CH_EXIT_OK) {
        return rc;
    }
    if (strcmp(cmd, "create") == 0) {
        rc = apikey_create(&a, &req);
    } else if (strcmp(cmd, "revoke") == 0) {
        rc = apikey_revoke(&a, id);
    } else {
        rc = apikey_list(&a);
    }
    acct_close(&a);
    return rc;
}

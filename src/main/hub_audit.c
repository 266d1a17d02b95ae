/*
 * Opening the audit log for the hub's commands. See hub_audit.h.
 */
#include "main/hub_audit.h"

#include "main/main.h"

#include <jansson.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int audit_open(const ch_config_t *cfg, int create_key, int quiet_busy, int accept,
                      ch_audit_t **out)
{
    ch_audit_node_req_t req = {.data_dir = cfg->data_dir, .make_key = create_key};
    req.options.node_id = cfg->node_id;
    req.options.checkpoint_every_records = (uint32_t)cfg->audit_checkpoint_records;
    req.options.checkpoint_every_ms = (uint32_t)cfg->audit_checkpoint_ms;
    req.options.refusal_interval_ms = (uint32_t)cfg->audit_refusal_interval_ms;
    req.options.reserve_bytes = cfg->audit_reserve_bytes;
    req.options.accept_unchecked = accept;
    ch_fault_t f;
    char *why = NULL;
    int rc = ch_audit_open_node(&req, out, &f, &why);
    if (rc == 0) {
        return CH_EXIT_OK;
    }
    if (strcmp(f.rule, "key") == 0) {
        fprintf(stderr, "cctvhub: cannot load the node key in %s/keys: %s%s\n", cfg->data_dir, why,
                rc == CH_ENOENT ? " (run `cctvhub keys init`)" : "");
        ch_free(why);
        return CH_EXIT_STORE;
    }
    if (rc != CH_ECONFLICT || !quiet_busy) {
        fprintf(stderr, "cctvhub: cannot open the audit log %s/audit: %s%s\n", cfg->data_dir, why,
                rc == CH_ECONFLICT ? " (is the hub running? import through POST /api/v1/imports)"
                                   : "");
    }
    ch_free(why);
    return rc == CH_ECONFLICT && quiet_busy ? CH_ECONFLICT : CH_EXIT_STORE;
}

int ch_main__audit_open_read(const char *cmd, const ch_main_opts_t *opts, ch_config_t *cfg,
                             ch_audit_t **out)
{
    *out = NULL;
    int exit_code = ch_main__load_config(opts, cfg);
    if (exit_code != CH_EXIT_OK) {
        return exit_code;
    }
    ch_audit_node_req_t req = {.data_dir = cfg->data_dir, .read_only = 1};
    ch_fault_t f;
    char *why = NULL;
    int rc = ch_audit_open_node(&req, out, &f, &why);
    if (rc == CH_ETOOBIG && strcmp(f.rule, "dir") == 0) {
        fprintf(stderr, "cctvhub: data directory path too long\n");
        exit_code = CH_EXIT_CONFIG;
    } else if (rc != 0) {
        fprintf(stderr, "cctvhub %s: cannot open the audit log %s/audit: %s\n", cmd, cfg->data_dir,
                why);
        exit_code = CH_EXIT_STORE;
    }
    ch_free(why);
    if (exit_code != CH_EXIT_OK) {
        ch_config_fini(cfg);
    }
    return exit_code;
}

int ch_main__audit_open(const ch_config_t *cfg, int create_key, ch_audit_t **out)
{
    return audit_open(cfg, create_key, 0, 0, out);
}

int ch_main__audit_open_accept(const ch_config_t *cfg, ch_audit_t **out)
{
    return audit_open(cfg, 0, 0, 1, out);
}

int ch_main__audit_try_open(const ch_config_t *cfg, ch_audit_t **out)
{
    return audit_open(cfg, 1, 1, 0, out);
}

int ch_main__audit_check_kept(const ch_config_t *cfg, ch_audit_t *a, ch_store_t *st)
{
    ch_audit_kept_t kept;
    const char *why = NULL;
    int rc = ch_audit_kept_check(a, &ch_main__store_keeper, st, &kept, &why);
    if (rc == 0) {
        return CH_EXIT_OK;
    }
    if (rc != CH_ECONFLICT) {
        fprintf(stderr, "cctvhub: cannot read the audit checkpoint kept in the store: %s\n",
                ch_store_errmsg(st));
        return CH_EXIT_STORE;
    }
    char hex[65];
    ch_hex_encode(hex, sizeof(hex), kept.root, sizeof(kept.root), 0);
    fprintf(stderr,
            "cctvhub: the audit log %s/audit does not extend the checkpoint kept in the "
            "store (size %lld, root %s): the log holds %llu records and %s. It was cut or "
            "rewritten. Run `cctvhub audit verify` (with a key and a checkpoint kept "
            "elsewhere); to start with this log anyway, an operator's decision put on the "
            "record, run `cctvhub audit accept --reason TEXT`.\n",
            cfg->data_dir, (long long)kept.size, hex, (unsigned long long)ch_audit_size(a), why);
    return CH_EXIT_STORE;
}

/* The store as the audit log's keeper of its latest checkpoint: records_audit.h's row. */
static int keeper_get(void *ud, ch_audit_kept_t *out)
{
    ch_store_audit_checkpoint_t row;
    int rc = ch_store_audit_checkpoint_get(ud, &row);
    if (rc == 0) {
        out->size = (uint64_t)row.size;
        memcpy(out->root, row.root, sizeof(out->root));
        out->note = NULL;
        ch_free(row.note);
    }
    return rc;
}

static int keeper_put(void *ud, const ch_audit_kept_t *kept)
{
    ch_store_audit_checkpoint_t row = {.size = (int64_t)kept->size, .note = (char *)kept->note};
    memcpy(row.root, kept->root, sizeof(row.root));
    return ch_store_audit_checkpoint_put(ud, &row);
}

static const char *keeper_errmsg(void *ud)
{
    return ch_store_errmsg(ud);
}

const ch_audit_keeper_t ch_main__store_keeper = {keeper_get, keeper_put, keeper_errmsg};

void ch_main__local_actor(char out[96])
{
    struct passwd pw, *res = NULL;
    char buf[1024];
    if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res != NULL) {
        snprintf(out, 96, "user:%s", res->pw_name);
    } else {
        snprintf(out, 96, "user:uid-%u", (unsigned)getuid());
    }
}

void ch_main__audit_tls_refusal(ch_audit_t *a, const char *listener, const char *peer,
                                const char *reason)
{
    json_t *details =
        json_pack("{s:s, s:s, s:s}", "reason", reason, "listener", listener, "peer", peer);
    ch_audit_entry_t e = {.actor = "anonymous",
                          .action = "tls.refuse",
                          .object = "tls",
                          .outcome = "denied",
                          .details = details};
    if (ch_audit_refusal(a, peer, 401, &e) < 0) {
        ch_log(CH_LOG_ERROR, "main", "msg=\"TLS refusal not audited\" listener=%s", listener);
    }
    json_decref(details);
}

/*
 * Opening the audit log for the hub's commands. See hub_audit.h.
 */
#include "main/hub_audit.h"

#include "auth/auth.h"
#include "main/main.h"

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
    ch_store_audit_checkpoint_t kept;
    int rc = ch_store_audit_checkpoint_get(st, &kept);
    if (rc == CH_ENOTFOUND) {
        return CH_EXIT_OK; /* none kept yet: a new hub, or one from before the store kept it */
    }
    if (rc != 0) {
        fprintf(stderr, "cctvhub: cannot read the audit checkpoint kept in the store: %s\n",
                ch_store_errmsg(st));
        return CH_EXIT_STORE;
    }
    const char *why = ch_audit_extends(a, (uint64_t)kept.size, kept.root);
    if (why != NULL) {
        char hex[65];
        ch_hex_encode(hex, sizeof(hex), kept.root, sizeof(kept.root), 0);
        fprintf(stderr,
                "cctvhub: the audit log %s/audit does not extend the checkpoint kept in the "
                "store (size %lld, root %s): the log holds %llu records and %s. It was cut or "
                "rewritten. Run `cctvhub audit verify` (with a key and a checkpoint kept "
                "elsewhere); to start with this log anyway, an operator's decision put on the "
                "record, run `cctvhub audit accept --reason TEXT`.\n",
                cfg->data_dir, (long long)kept.size, hex, (unsigned long long)ch_audit_size(a),
                why);
        ch_log(CH_LOG_ERROR, "audit",
               "msg=\"the audit log does not extend the checkpoint kept in the store\" "
               "kept_size=%lld records=%llu",
               (long long)kept.size, (unsigned long long)ch_audit_size(a));
    }
    ch_free(kept.note);
    return why != NULL ? CH_EXIT_STORE : CH_EXIT_OK;
}

int ch_main__audit_keep_checkpoint(ch_audit_t *a, ch_store_t *st, uint64_t *kept_size)
{
    char *note = NULL;
    ch_audit_checkpoint_t cp;
    int rc = ch_audit_checkpoint_latest_parsed(a, &cp, &note);
    if (rc == CH_ENOTFOUND) {
        return 0;
    }
    if (rc == 0 && cp.size != *kept_size) {
        ch_store_audit_checkpoint_t k = {.size = (int64_t)cp.size, .note = note};
        memcpy(k.root, cp.root, sizeof(k.root));
        rc = ch_store_audit_checkpoint_put(st, &k);
        if (rc == 0) {
            *kept_size = cp.size;
        } else {
            ch_log(CH_LOG_ERROR, "audit",
                   "msg=\"the latest checkpoint could not be kept in the store\" error=\"%s\"",
                   ch_store_errmsg(st));
        }
    }
    ch_free(note);
    return rc;
}

/* The outbox's records go to the log (ch_auth_outbox_drain decides which end access). */
static int outbox_append(void *ud, const char *actor, const char *action, const char *object,
                         json_t *details, int ends_access)
{
    ch_audit_entry_t e = {
        .actor = actor, .action = action, .object = object, .outcome = "ok", .details = details};
    return ends_access ? ch_audit_append_ending(ud, &e, NULL) : ch_audit_append(ud, &e, NULL);
}

int ch_main__outbox_drain(ch_store_t *st, ch_audit_t *a)
{
    return ch_auth_outbox_drain(st, outbox_append, a);
}

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

/*
 * Opening the audit log for the hub's commands. See hub_audit.h.
 */
#include "main/hub_audit.h"

#include "main/main.h"

#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int ch_main__audit_open(const ch_config_t *cfg, int create_key, ch_audit_t **out)
{
    ch_audit_key_t key;
    char *err = NULL;
    *out = NULL;
    memset(&key, 0, sizeof(key));
    int rc = ch_audit_keys_load(cfg->data_dir, &key, &err);
    if (rc == CH_ENOENT && create_key) {
        ch_free(err);
        err = NULL;
        rc = ch_audit_keys_init(cfg->data_dir, &err);
        if (rc == 0) {
            rc = ch_audit_keys_load(cfg->data_dir, &key, &err);
        }
        if (rc == 0) {
            char pub[CH_AUDIT_KEY_NAME_MAX + 64];
            if (ch_audit_pubkey_format(&key, pub, sizeof(pub)) == 0) {
                ch_log(CH_LOG_INFO, "audit",
                       "msg=\"node key created; give the public key to auditors\" key=%s", pub);
            }
        }
    }
    if (rc != 0) {
        fprintf(stderr, "cctvhub: cannot load the node key in %s/keys: %s%s\n", cfg->data_dir,
                err ? err : ch_strerror(rc), rc == CH_ENOENT ? " (run `cctvhub keys init`)" : "");
        ch_free(err);
        ch_audit_key_wipe(&key);
        return CH_EXIT_STORE;
    }
    ch_buf_t dir;
    ch_buf_init(&dir);
    ch_buf_appendf(&dir, "%s/audit", cfg->data_dir);
    ch_audit_options_t opt;
    memset(&opt, 0, sizeof(opt));
    opt.dir = dir.data;
    opt.key = &key;
    opt.node_id = cfg->node_id;
    opt.checkpoint_every_records = (uint32_t)cfg->audit_checkpoint_records;
    opt.checkpoint_every_ms = (uint32_t)cfg->audit_checkpoint_ms;
    rc = ch_audit_open(&opt, out, &err);
    ch_audit_key_wipe(&key);
    if (rc != 0) {
        fprintf(stderr, "cctvhub: cannot open the audit log %s: %s%s\n", dir.data,
                err ? err : ch_strerror(rc),
                rc == CH_ECONFLICT ? " (is the hub running? import through POST /api/v1/imports)"
                                   : "");
        ch_free(err);
        ch_buf_fini(&dir);
        return CH_EXIT_STORE;
    }
    ch_buf_fini(&dir);
    return CH_EXIT_OK;
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

/*
 * The node's log: DATA_DIR/audit opened with the node key of DATA_DIR/keys, and the key made
 * for a node (`cctvhub keys init`). See audit.h ("the node's log").
 */
#include "audit/audit.h"

#include <stdio.h>
#include <string.h>

int ch_audit_node_dir(const char *data_dir, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/audit", data_dir);
    return n < 0 || (size_t)n >= cap ? CH_ETOOBIG : 0;
}

/* Fills f for a failure (its rule says which part failed): err when the audit module said
 * why, else the code's text. The whole text goes to *why when why is not NULL (a message may
 * name long paths: f->message keeps 255 bytes), else err is freed. Returns rc. */
static int node_fault(ch_fault_t *f, char **why, int rc, const char *rule, char *err)
{
    if (err == NULL) {
        err = ch_strdup(ch_strerror(rc));
    }
    ch_fault_set(f, rc, CH_FAULT_UNAVAILABLE, NULL, NULL, "%s", err);
    if (f != NULL) {
        f->rule = rule;
        f->rc = rc;
    }
    if (why != NULL) {
        *why = err;
    } else {
        ch_free(err);
    }
    return rc;
}

/* Loads the node key into *key, first making one when there is none and make is set (its
 * public key logged, for the auditors). */
static int node_key(const char *data_dir, int make, ch_audit_key_t *key, ch_fault_t *f, char **why)
{
    char *err = NULL;
    int rc = ch_audit_keys_load(data_dir, key, &err);
    if (rc == CH_ENOENT && make) {
        ch_free(err);
        err = NULL;
        rc = ch_audit_keys_init(data_dir, &err);
        if (rc == 0) {
            rc = ch_audit_keys_load(data_dir, key, &err);
        }
        if (rc == 0) {
            char pub[CH_AUDIT_KEY_NAME_MAX + 64];
            if (ch_audit_pubkey_format(key, pub, sizeof(pub)) == 0) {
                ch_log(CH_LOG_INFO, "audit",
                       "msg=\"node key created; give the public key to auditors\" key=%s", pub);
            }
        }
    }
    if (rc != 0) {
        return node_fault(f, why, rc, "key", err);
    }
    return 0;
}

int ch_audit_open_node(const ch_audit_node_req_t *req, ch_audit_t **out, ch_fault_t *f, char **why)
{
    char dir[4096];
    ch_audit_key_t key;
    memset(&key, 0, sizeof(key));
    *out = NULL;
    if (why != NULL) {
        *why = NULL;
    }
    if (ch_audit_node_dir(req->data_dir, dir, sizeof(dir)) != 0) {
        return node_fault(f, why, CH_ETOOBIG, "dir", ch_strdup("data directory path too long"));
    }
    ch_audit_options_t o = req->options;
    o.dir = dir;
    o.key = NULL;
    if (!req->read_only) {
        int rc = node_key(req->data_dir, req->make_key, &key, f, why);
        if (rc != 0) {
            ch_audit_key_wipe(&key);
            return rc;
        }
        o.key = &key;
    }
    char *err = NULL;
    int rc = ch_audit_open(&o, out, &err);
    ch_audit_key_wipe(&key); /* the handle keeps its own copy */
    if (rc != 0) {
        return node_fault(f, why, rc, "log", err);
    }
    return 0;
}

int ch_audit_node_key_make(const char *data_dir, char *pub, size_t cap, ch_fault_t *f, char **why)
{
    char *err = NULL;
    if (why != NULL) {
        *why = NULL;
    }
    int rc = ch_audit_keys_init(data_dir, &err);
    if (rc != 0) {
        return node_fault(f, why, rc, rc == CH_EEXIST ? "exists" : "make", err);
    }
    ch_free(err);
    err = NULL;
    ch_audit_key_t key;
    memset(&key, 0, sizeof(key));
    rc = ch_audit_keys_load_public(data_dir, &key, &err);
    if (rc == 0) {
        rc = ch_audit_pubkey_format(&key, pub, cap);
    }
    ch_audit_key_wipe(&key);
    if (rc != 0) {
        return node_fault(f, why, rc, "read_back", err);
    }
    ch_free(err);
    return 0;
}

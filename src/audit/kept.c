/*
 * The copy of the latest checkpoint kept outside the log (the hub keeps it in its store), so
 * that whoever cuts the log's end and deletes its checkpoints file must find and change a
 * second place too; and the records that commands queued while the hub held the log. See the
 * "kept outside the log" part of audit.h.
 */
#include "audit/audit.h"

#include <string.h>

int ch_audit_kept_check(ch_audit_t *a, const ch_audit_keeper_t *k, void *ud, ch_audit_kept_t *kept,
                        const char **departs)
{
    *departs = NULL;
    memset(kept, 0, sizeof(*kept));
    int rc = k->get(ud, kept);
    if (rc == CH_ENOTFOUND) {
        return 0; /* none kept yet: a new hub, or one from before the store kept it */
    }
    if (rc != 0) {
        return rc;
    }
    *departs = ch_audit_extends(a, kept->size, kept->root);
    if (*departs == NULL) {
        return 0;
    }
    ch_log(CH_LOG_ERROR, "audit",
           "msg=\"the audit log does not extend the checkpoint kept in the store\" "
           "kept_size=%lld records=%llu",
           (long long)kept->size, (unsigned long long)ch_audit_size(a));
    return CH_ECONFLICT;
}

int ch_audit_kept_update(ch_audit_t *a, const ch_audit_keeper_t *k, void *ud, uint64_t *kept_size)
{
    char *note = NULL;
    ch_audit_checkpoint_t cp;
    int rc = ch_audit_checkpoint_latest_parsed(a, &cp, &note);
    if (rc == CH_ENOTFOUND) {
        return 0;
    }
    if (rc == 0 && cp.size != *kept_size) {
        ch_audit_kept_t kept = {.size = cp.size, .note = note};
        memcpy(kept.root, cp.root, sizeof(kept.root));
        rc = k->put(ud, &kept);
        if (rc == 0) {
            *kept_size = cp.size;
        } else {
            ch_log(CH_LOG_ERROR, "audit",
                   "msg=\"the latest checkpoint could not be kept in the store\" error=\"%s\"",
                   k->errmsg(ud));
        }
    }
    ch_free(note);
    return rc;
}

/* Names in f (filled, or NULL) the part of the acceptance that failed with rc; returns rc. */
static int accept_failed(ch_fault_t *f, const char *rule, int rc)
{
    if (f != NULL) {
        f->rule = rule;
        f->rc = rc;
    }
    return rc;
}

int ch_audit_accept_kept(ch_audit_t *a, const ch_audit_keeper_t *k, void *ud, const char *actor,
                         const char *reason, uint64_t *seq, uint64_t *kept_size, ch_fault_t *f)
{
    ch_audit_kept_t kept;
    memset(&kept, 0, sizeof(kept));
    int rc = k->get(ud, &kept);
    if (rc != 0 && rc != CH_ENOTFOUND) {
        ch_fault_set(f, rc, CH_FAULT_INTERNAL, NULL, NULL, "%s", k->errmsg(ud));
        return accept_failed(f, "read", rc);
    }
    ch_audit_accept_t req = {
        .actor = actor, .reason = reason, .kept = rc == 0, .kept_size = kept.size};
    memcpy(req.kept_root, kept.root, sizeof(req.kept_root));
    *kept_size = 0;
    rc = ch_audit_accept(a, &req, seq);
    if (rc == 0) {
        rc = ch_audit_kept_update(a, k, ud, kept_size);
    }
    if (rc != 0) {
        ch_fault_set(f, rc, CH_FAULT_AUDIT, NULL, NULL, "%s", ch_strerror(rc));
        return accept_failed(f, "record", rc);
    }
    return 0;
}

int ch_audit_append_queued(void *log, const char *actor, const char *action, const char *object,
                           json_t *details, int ends_access)
{
    ch_audit_entry_t e = {
        .actor = actor, .action = action, .object = object, .outcome = "ok", .details = details};
    return ends_access ? ch_audit_append_ending(log, &e, NULL) : ch_audit_append(log, &e, NULL);
}

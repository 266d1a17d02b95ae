/*
 * Reading the log for a person: which records match a filter (`cctvhub audit show`), the
 * proofs an auditor asks for (`cctvhub audit prove`), whether the log still extends a
 * checkpoint kept elsewhere, and an operator's acceptance of a log that does not. See the
 * "queries" part of audit.h.
 */
#include "audit/audit.h"

#include <stdio.h>
#include <string.h>

void ch_audit_filter_init(ch_audit_filter_t *f)
{
    memset(f, 0, sizeof(*f));
    f->since_ns = INT64_MIN;
    f->until_ns = INT64_MAX;
}

int64_t ch_audit_record_time_ns(const json_t *rec)
{
    const json_t *t = json_object_get(rec, "time");
    if (json_is_integer(t)) {
        return (int64_t)json_integer_value(t);
    }
    int64_t ns;
    if (json_is_string(t) && ch_time_parse_ns(json_string_value(t), &ns) == 0) {
        return ns;
    }
    return -1;
}

/* Whether the string member name of rec is pattern: exactly, or within a family when pattern
 * ends in ".*" ("grant.*" matches "grant.create" and "grant.deny"). */
static int member_is(const json_t *rec, const char *name, const char *pattern, int family)
{
    const json_t *v = json_object_get(rec, name);
    if (!json_is_string(v)) {
        return 0;
    }
    const char *s = json_string_value(v);
    size_t n = strlen(pattern);
    if (family && n >= 2 && strcmp(pattern + n - 2, ".*") == 0) {
        return strncmp(s, pattern, n - 1) == 0;
    }
    return strcmp(s, pattern) == 0;
}

int ch_audit_filter_match(const json_t *rec, const ch_audit_filter_t *f)
{
    if (f->since_ns != INT64_MIN || f->until_ns != INT64_MAX) {
        int64_t t = ch_audit_record_time_ns(rec);
        if (t < 0 || t < f->since_ns || t > f->until_ns) {
            return 0;
        }
    }
    if (f->actor != NULL && !member_is(rec, "actor", f->actor, 0)) {
        return 0;
    }
    if (f->action != NULL && !member_is(rec, "action", f->action, 1)) {
        return 0;
    }
    /* What a record is about is the one rule of refs.c, the one the API's index applies. */
    const int64_t ids[] = {
        [CH_AUDIT_CAMERA] = f->camera, [CH_AUDIT_AGENCY] = f->agency, [CH_AUDIT_EVENT] = f->event};
    for (int k = CH_AUDIT_CAMERA; k <= CH_AUDIT_EVENT; k++) {
        if (ids[k] != 0 && !ch_audit_refers_to(rec, (ch_audit_kind_t)k, ids[k])) {
            return 0;
        }
    }
    return 1;
}

int ch_audit_select(ch_audit_t *a, const ch_audit_filter_t *f, uint64_t limit,
                    ch_audit_select_fn fn, void *ud, uint64_t *at)
{
    ch_audit_iter_t *it = NULL;
    *at = 0; /* the record the iterator reads next */
    int rc = ch_audit_iter_new(a, 0, &it);
    uint64_t shown = 0;
    while (rc == 0 && shown < limit) {
        ch_audit_record_t rec;
        memset(&rec, 0, sizeof(rec));
        rc = ch_audit_iter_next(it, &rec);
        if (rc == CH_ENOTFOUND) {
            rc = 0;
            break;
        }
        if (rc != 0) {
            break;
        }
        *at = rec.seq;
        json_error_t jerr;
        json_t *j = json_loadb(rec.json, rec.len, 0, &jerr);
        if (!json_is_object(j)) {
            json_decref(j);
            rc = CH_EPARSE;
            break;
        }
        if (ch_audit_filter_match(j, f)) {
            fn(ud, &rec, j);
            shown++;
        }
        json_decref(j);
        *at = rec.seq + 1;
    }
    ch_audit_iter_free(it);
    return rc;
}

uint64_t ch_audit_signed_size(ch_audit_t *a)
{
    char *note = NULL;
    uint64_t size = ch_audit_size(a);
    if (ch_audit_checkpoint_latest(a, &note) == 0) {
        ch_audit_checkpoint_t cp;
        char *err = NULL;
        if (ch_audit_checkpoint_parse(note, strlen(note), NULL, &cp, &err) == 0 &&
            cp.size <= size) {
            size = cp.size;
        }
        ch_free(err);
    }
    ch_free(note);
    return size;
}

/* CH_EINVAL (fault "size") when size is beyond the log. */
static int check_size(ch_audit_t *a, uint64_t size, ch_fault_t *fault)
{
    uint64_t have = ch_audit_size(a);
    if (size > have) {
        return ch_fault_set(fault, CH_EINVAL, CH_FAULT_INVALID, NULL, "size",
                            "size %llu is larger than the log (%llu records)",
                            (unsigned long long)size, (unsigned long long)have);
    }
    return 0;
}

/* A failure to read the log (rc) as a fault: "record N: why", or only why. */
static void internal(ch_fault_t *fault, int rc, uint64_t seq)
{
    if (seq != UINT64_MAX) {
        ch_fault_set(fault, rc, CH_FAULT_INTERNAL, NULL, NULL, "record %llu: %s",
                     (unsigned long long)seq, ch_strerror(rc));
    } else {
        ch_fault_set(fault, rc, CH_FAULT_INTERNAL, NULL, NULL, "%s", ch_strerror(rc));
    }
    if (fault != NULL) {
        fault->rc = rc;
    }
}

int ch_audit_inclusion(ch_audit_t *a, uint64_t index, uint64_t size, ch_audit_inclusion_t *out,
                       ch_fault_t *fault)
{
    int rc = check_size(a, size, fault);
    if (rc != 0) {
        return rc;
    }
    if (index >= size) {
        return ch_fault_set(fault, CH_EINVAL, CH_FAULT_INVALID, NULL, "index",
                            "record %llu is not in a tree of size %llu", (unsigned long long)index,
                            (unsigned long long)size);
    }
    out->index = index;
    out->size = size;
    char *record = NULL;
    size_t len = 0;
    rc = ch_audit_read(a, index, &record, &len);
    if (rc == 0) {
        ch_audit_leaf_hash(record, len, out->leaf_hash);
        rc = ch_audit_prove_inclusion(a, index, size, &out->proof);
    }
    if (rc == 0) {
        rc = ch_audit_root(a, size, out->root);
    }
    ch_free(record);
    if (rc != 0) {
        internal(fault, rc, index);
    }
    return rc;
}

int ch_audit_consistency(ch_audit_t *a, uint64_t first, uint64_t second,
                         ch_audit_consistency_t *out, ch_fault_t *fault)
{
    int rc = check_size(a, second, fault);
    if (rc != 0) {
        return rc;
    }
    if (first == 0 || first > second) {
        return ch_fault_set(fault, CH_EINVAL, CH_FAULT_INVALID, NULL, "first",
                            "a consistency proof needs 0 < N1 <= N2 (%llu, %llu)",
                            (unsigned long long)first, (unsigned long long)second);
    }
    out->first = first;
    out->second = second;
    rc = ch_audit_prove_consistency(a, first, second, &out->proof);
    if (rc == 0) {
        rc = ch_audit_root(a, first, out->root1);
    }
    if (rc == 0) {
        rc = ch_audit_root(a, second, out->root2);
    }
    if (rc != 0) {
        internal(fault, rc, UINT64_MAX);
    }
    return rc;
}

json_t *ch_audit_hash_json(const uint8_t hash[CH_AUDIT_HASH_SIZE])
{
    char hex[2 * CH_AUDIT_HASH_SIZE + 1];
    ch_hex_encode(hex, sizeof(hex), hash, CH_AUDIT_HASH_SIZE, 0);
    return json_string(hex);
}

json_t *ch_audit_proof_json(const ch_audit_proof_t *p)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < p->count; i++) {
        json_array_append_new(arr, ch_audit_hash_json(p->hash[i]));
    }
    return arr;
}

int ch_audit_checkpoint_latest_parsed(ch_audit_t *a, ch_audit_checkpoint_t *cp, char **note)
{
    int rc = ch_audit_checkpoint_latest(a, note);
    if (rc != 0) {
        *note = NULL;
        return rc;
    }
    char *err = NULL;
    rc = ch_audit_checkpoint_parse(*note, strlen(*note), NULL, cp, &err);
    if (rc != 0) {
        ch_log(CH_LOG_ERROR, "audit", "msg=\"the latest checkpoint does not parse\" error=\"%s\"",
               err != NULL ? err : ch_strerror(rc));
        ch_free(*note);
        *note = NULL;
    }
    ch_free(err);
    return rc;
}

json_t *ch_audit_inclusion_json(const ch_audit_inclusion_t *p)
{
    return json_pack("{s:I, s:I, s:o, s:o, s:o}", "index", (json_int_t)p->index, "size",
                     (json_int_t)p->size, "leaf_hash", ch_audit_hash_json(p->leaf_hash), "root",
                     ch_audit_hash_json(p->root), "path", ch_audit_proof_json(&p->proof));
}

json_t *ch_audit_consistency_json(const ch_audit_consistency_t *p)
{
    return json_pack("{s:I, s:I, s:o, s:o, s:o}", "first", (json_int_t)p->first, "second",
                     (json_int_t)p->second, "root1", ch_audit_hash_json(p->root1), "root2",
                     ch_audit_hash_json(p->root2), "path", ch_audit_proof_json(&p->proof));
}

const char *ch_audit_extends(ch_audit_t *a, uint64_t size, const uint8_t root[CH_AUDIT_HASH_SIZE])
{
    uint8_t mine[CH_AUDIT_HASH_SIZE];
    if (size > ch_audit_size(a)) {
        return "records were removed from its end";
    }
    if (ch_audit_root(a, size, mine) != 0 || memcmp(mine, root, sizeof(mine)) != 0) {
        return "its records up to that size are not the ones signed (rewritten)";
    }
    return NULL;
}

int ch_audit_accept(ch_audit_t *a, const ch_audit_accept_t *req, uint64_t *seq)
{
    json_t *d =
        json_pack("{s:s, s:I}", "reason", req->reason, "records", (json_int_t)ch_audit_size(a));
    if (req->kept) {
        json_object_set_new(d, "kept_size", json_integer((json_int_t)req->kept_size));
        json_object_set_new(d, "kept_root", ch_audit_hash_json(req->kept_root));
        const char *why = ch_audit_extends(a, req->kept_size, req->kept_root);
        json_object_set_new(d, "mismatch", why != NULL ? json_string(why) : json_null());
    } else {
        json_object_set_new(d, "kept_size", json_null());
    }
    ch_audit_entry_t e = {.actor = req->actor,
                          .action = "audit.accept",
                          .object = "audit",
                          .outcome = "ok",
                          .details = d};
    int rc = ch_audit_append(a, &e, seq);
    json_decref(d);
    if (rc == 0) {
        rc = ch_audit_checkpoint_now(a);
    }
    return rc;
}

/*
 * The audit routes: what an auditor or a privacy officer asks of the record over HTTP.
 *
 *   GET /api/v1/audit              records by time, camera, agency, event, actor, action
 *   GET /api/v1/audit/checkpoint   the latest signed checkpoint (C2SP signed note)
 *   GET /api/v1/audit/proof        inclusion proof of one record in a tree size
 *   GET /api/v1/audit/consistency  consistency proof between two tree sizes
 *
 * Queries go through the audit index of the store, which this file keeps in step with the log
 * before each query: the log is the truth, and an index that is behind catches up, one that
 * claims more than the log holds (a restored database, a replaced log) is rebuilt. What a
 * record is about (camera, agency, event) is the audit module's rule, ch_audit_refs, the one
 * `cctvhub audit show` applies too.
 */
#include "api/api_ctx.h"

#include "audit/audit.h"

#include <inttypes.h>
#include <string.h>

int ch_api__audit_sync_index(ch_audit_t *audit, ch_store_t *st)
{
    int64_t last = -1;
    int rc = ch_store_audit_index_last(st, &last);
    if (rc != 0) {
        return rc;
    }
    uint64_t size = ch_audit_size(audit);
    if (last >= 0 && (uint64_t)last >= size) {
        ch_log(CH_LOG_WARN, "api",
               "msg=\"audit index claims more than the log holds; rebuilding from the log\" "
               "index_last=%" PRId64 " log_size=%" PRIu64,
               last, size);
        if ((rc = ch_store_audit_index_clear(st)) != 0) {
            return rc;
        }
        last = -1;
    }
    if ((uint64_t)(last + 1) >= size) {
        return 0;
    }
    ch_audit_iter_t *it = NULL;
    if ((rc = ch_audit_iter_new(audit, (uint64_t)(last + 1), &it)) != 0) {
        return rc;
    }
    /* One transaction for the batch: a rebuild of a million records is one commit. */
    if ((rc = ch_store_begin(st)) != 0) {
        ch_audit_iter_free(it);
        return rc;
    }
    /* What each record refers to, by the audit module's one rule (ch_audit_refs): the
     * arrays are reused from record to record. */
    ch_audit_refs_t cams = {0}, agencies = {0}, events = {0};
    ch_audit_record_t r;
    int step;
    while ((step = ch_audit_iter_next(it, &r)) == 0) {
        json_error_t jerr;
        json_t *rec = json_loads(r.json, 0, &jerr);
        if (rec == NULL) {
            rc = CH_EPARSE;
            break;
        }
        json_t *t = json_object_get(rec, "time");
        ch_audit_refs(rec, CH_AUDIT_CAMERA, &cams);
        ch_audit_refs(rec, CH_AUDIT_AGENCY, &agencies);
        ch_audit_refs(rec, CH_AUDIT_EVENT, &events);
        ch_store_audit_row_t row = {
            .seq = (int64_t)r.seq,
            .time_ns = json_is_integer(t) ? (int64_t)json_integer_value(t) : 0,
            .actor = json_string_value(json_object_get(rec, "actor")),
            .action = json_string_value(json_object_get(rec, "action")),
            .camera_ids = cams.ids,
            .n_camera_ids = cams.n,
            .agency_ids = agencies.ids,
            .n_agency_ids = agencies.n,
            .event_ids = events.ids,
            .n_event_ids = events.n,
        };
        rc = ch_store_audit_index_add(st, &row);
        json_decref(rec);
        if (rc != 0) {
            break;
        }
    }
    ch_audit_iter_free(it);
    ch_audit_refs_fini(&cams);
    ch_audit_refs_fini(&agencies);
    ch_audit_refs_fini(&events);
    if (rc == 0 && step != CH_ENOTFOUND) {
        rc = step;
    }
    if (rc != 0) {
        (void)ch_store_rollback(st);
        return rc;
    }
    return ch_store_commit(st);
}

/* GET /api/v1/audit: the query is checked on the loop, the index brought up to date and read
 * on the store worker (with the records it names, from the log, which is thread-safe), the
 * answer sent from the loop. The worker's handle writes the index: no watcher follows it (it
 * is the log's cache, kept by this file alone), and the worker runs one request at a time, so
 * two syncs never race. */
typedef struct audit_list {
    ch_audit_t *audit;
    ch_api__query_t q; /* f's texts point into it */
    ch_store_audit_filter_t f;
    int status;
    json_t *json;
    ch_api__err_t err;
} audit_list_t;

static int list_check(audit_list_t *l)
{
    int64_t after = 0; /* the cursor's id: seq + 1 */
    ch_store_audit_filter_t *f = &l->f;
    f->after_seq = -1;
    f->limit = 100;
    const ch_api__qparam_t spec[] = {
        {CH_API__QP_TIME("since", &f->since_ns)}, {CH_API__QP_TIME("until", &f->until_ns)},
        {CH_API__QP_ID("camera", &f->camera_id)}, {CH_API__QP_ID("agency", &f->agency_id)},
        {CH_API__QP_ID("event", &f->event_id)},   {CH_API__QP_TEXT("actor", &f->actor)},
        {CH_API__QP_TEXT("action", &f->action)},  {CH_API__QP_CURSOR("cursor", &after)},
        {CH_API__QP_LIMIT("limit", &f->limit)},   {CH_API__QP_END},
    };
    if (ch_api__query_check(&l->q, spec, &l->err) != 0) {
        return 400;
    }
    if (after > 0) {
        f->after_seq = after - 1; /* cursors hold seq + 1: they must be >= 1 */
    }
    return 200;
}

/* The store worker's thread: l->status and either l->json or l->err. */
static int list_read(ch_store_t *st, void *job)
{
    audit_list_t *l = job;
    ch_api__err_t *err = &l->err;
    l->status = 500;
    if (ch_api__audit_sync_index(l->audit, st) != 0) {
        ch_api__err_set(err, 500, "internal", NULL,
                        "the audit index could not be brought up "
                        "to date");
        return 0;
    }
    int64_t *seqs = NULL, total = 0, next = -1;
    size_t n = 0;
    if (ch_store_audit_index_query(st, &l->f, &seqs, &n, &total, &next) != 0) {
        ch_api__err_set(err, 500, "internal", NULL, "the audit index could not be read");
        return 0;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++) {
        char *text = NULL;
        size_t len = 0;
        int rc = ch_audit_read(l->audit, (uint64_t)seqs[i], &text, &len);
        json_error_t jerr;
        json_t *rec = rc == 0 ? json_loadb(text, len, 0, &jerr) : NULL;
        ch_free(text);
        if (rec == NULL) {
            ch_free(seqs);
            json_decref(items);
            ch_api__err_set(err, 500, "internal", NULL,
                            "audit record %lld cannot be read; run `cctvhub audit verify`",
                            (long long)seqs[i]);
            return 0;
        }
        json_array_append_new(items, rec);
    }
    ch_free(seqs);
    json_t *o = json_object();
    json_object_set_new(o, "items", items);
    json_object_set_new(o, "total", json_integer(total));
    if (next >= 0) {
        char cursor[CH_API__CURSOR_MAX];
        ch_api__cursor_encode(next + 1, cursor);
        json_object_set_new(o, "next", json_string(cursor));
    } else {
        json_object_set_new(o, "next", json_null());
    }
    l->json = o;
    l->status = 200;
    return 0;
}

static void list_free(audit_list_t *l)
{
    ch_api__query_fini(&l->q);
    json_decref(l->json);
    ch_free(l);
}

/* Back on the loop (c NULL: the API is being freed). */
static void list_done(api_ctx_t *c, void *job, int rc)
{
    (void)rc;
    audit_list_t *l = job;
    if (c != NULL && l->status != 200) {
        ch_api__reply_err(c, &l->err, NULL);
    } else if (c != NULL) {
        ch_api__reply_json(c, 200, NULL, l->json);
        l->json = NULL;
    }
    list_free(l);
}

static int answer_checkpoint(ch_audit_t *audit, const ch_api__query_t *q, char **text,
                             ch_api__err_t *err)
{
    static const ch_api__qparam_t none[] = {{CH_API__QP_END}};
    if (ch_api__query_check(q, none, err) != 0) {
        return 400;
    }
    if (ch_audit_size(audit) == 0) {
        ch_api__err_set(err, 404, "not_found", NULL, "the audit log holds no record yet");
        return 404;
    }
    /* The latest checkpoint may be up to a second old; a fresh one covers every record. */
    if (ch_audit_checkpoint_now(audit) != 0 || ch_audit_checkpoint_latest(audit, text) != 0) {
        ch_api__err_set(err, 500, "internal", NULL, "no checkpoint could be made");
        return 500;
    }
    return 200;
}

static int answer_proof(ch_audit_t *audit, const ch_api__query_t *q, json_t **json,
                        ch_api__err_t *err)
{
    int64_t index = 0, size = (int64_t)ch_audit_size(audit);
    int has_size = 0;
    const ch_api__qparam_t spec[] = {
        {CH_API__QP_INT("index", &index, 0, INT64_MAX), .required = 1},
        {CH_API__QP_INT("size", &size, 1, INT64_MAX), .seen = &has_size},
        {CH_API__QP_END},
    };
    if (ch_api__query_check(q, spec, err) != 0) {
        return 400;
    }
    if ((uint64_t)size > ch_audit_size(audit) || index >= size) {
        ch_api__err_set(err, 400, "invalid", has_size ? "size" : "index",
                        "need index < size <= %llu (the log's size)",
                        (unsigned long long)ch_audit_size(audit));
        return 400;
    }
    ch_audit_inclusion_t p;
    if (ch_audit_inclusion(audit, (uint64_t)index, (uint64_t)size, &p, NULL) != 0) {
        ch_api__err_set(err, 500, "internal", NULL, "the proof could not be made");
        return 500;
    }
    *json = json_pack("{s:I, s:I, s:o, s:o, s:o}", "index", (json_int_t)index, "size",
                      (json_int_t)size, "leaf_hash", ch_audit_hash_json(p.leaf_hash), "root",
                      ch_audit_hash_json(p.root), "path", ch_audit_proof_json(&p.proof));
    return 200;
}

static int answer_consistency(ch_audit_t *audit, const ch_api__query_t *q, json_t **json,
                              ch_api__err_t *err)
{
    int64_t from = 0, to = (int64_t)ch_audit_size(audit);
    int has_to = 0;
    const ch_api__qparam_t spec[] = {
        {CH_API__QP_INT("from", &from, 1, INT64_MAX), .required = 1},
        {CH_API__QP_INT("to", &to, 1, INT64_MAX), .seen = &has_to},
        {CH_API__QP_END},
    };
    if (ch_api__query_check(q, spec, err) != 0) {
        return 400;
    }
    if ((uint64_t)to > ch_audit_size(audit) || from > to) {
        ch_api__err_set(err, 400, "invalid", has_to ? "to" : "from",
                        "need 1 <= from <= to <= %llu (the log's size)",
                        (unsigned long long)ch_audit_size(audit));
        return 400;
    }
    ch_audit_consistency_t p;
    if (ch_audit_consistency(audit, (uint64_t)from, (uint64_t)to, &p, NULL) != 0) {
        ch_api__err_set(err, 500, "internal", NULL, "the proof could not be made");
        return 500;
    }
    *json = json_pack("{s:I, s:I, s:o, s:o, s:o}", "from", (json_int_t)from, "to", (json_int_t)to,
                      "root_from", ch_audit_hash_json(p.root1), "root_to",
                      ch_audit_hash_json(p.root2), "path", ch_audit_proof_json(&p.proof));
    return 200;
}

void ch_api__handle_audit(api_ctx_t *c, ch_api__route_id_t route)
{
    ch_audit_t *audit = c->api->svc.audit;
    if (audit == NULL) {
        ch_api__reply_error(c, 503, "audit_unavailable", NULL, "this server keeps no audit log");
        return;
    }
    json_t *json = NULL;
    char *text = NULL;
    ch_api__err_t e;
    ch_api__query_t q;
    int status;
    if (ch_api__query_parse(c->req->query, &q, &e) != 0) {
        ch_api__query_fini(&q);
        ch_api__reply_err(c, &e, NULL);
        return;
    }
    switch (route) {
    case CH_API__R_AUDIT_LIST: {
        audit_list_t *l = ch_calloc(1, sizeof(*l));
        l->audit = audit;
        l->q = q; /* the job's now */
        if (list_check(l) != 200) {
            ch_api__reply_err(c, &l->err, NULL);
            list_free(l);
        } else {
            ch_api__store_read(c, list_read, list_done, l);
        }
        return;
    }
    case CH_API__R_AUDIT_CHECKPOINT:
        status = answer_checkpoint(audit, &q, &text, &e);
        break;
    case CH_API__R_AUDIT_PROOF:
        status = answer_proof(audit, &q, &json, &e);
        break;
    case CH_API__R_AUDIT_CONSISTENCY:
        status = answer_consistency(audit, &q, &json, &e);
        break;
    default:
        ch_api__err_set(&e, 404, "not_found", NULL, "no such path");
        status = 404;
        break;
    }
    ch_api__query_fini(&q);
    if (status != 200) {
        ch_api__reply_err(c, &e, NULL);
    } else if (text != NULL) {
        ch_api__reply(c, 200, "text/plain; charset=utf-8", NULL, text, strlen(text));
    } else {
        ch_api__reply_json(c, 200, NULL, json);
    }
    ch_free(text);
}

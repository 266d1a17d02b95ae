/*
 * event/event_ledger.c: the provision ledger of PIPA Enforcement Decree Art. 15 (개인정보의
 * 목적 외 이용 및 제3자 제공 대장), made from the audit record, not from the store: what the
 * log holds is what happened, and an auditor can rebuild the same ledger from the log alone.
 *
 * One row per provision: an event whose access started (event.open, or event.approve of a
 * pending one). Its cameras grow with moves (event.move "added"); its period ends with the
 * first of event.close, event.revoke, event.expire or event.deny; extensions are counted.
 */
#include "event/event.h"

#include <stdio.h>
#include <string.h>

typedef struct row {
    int64_t event_id;
    int64_t agency_id;
    char actor[96];
    char service[72];
    char basis[72];
    char incident[128];
    json_t *cameras; /* array of ids, no repeats */
    int64_t start_ns, end_ns;
    char end_action[32];
    int extensions;
    int started;
    int export_allowed; /* the event's grant, from its record */
} row_t;

/* The rows in order of their first record, and an index from event id to row (open
 * addressing, at most half full): a log of a hundred thousand events looked each record's
 * event up by scanning the rows back, and an expiry long after its open scanned them all. */
typedef struct rows {
    row_t *v;
    size_t n, cap;
    size_t *slot;  /* row index + 1; 0 is free */
    size_t nslots; /* a power of two, or 0 */
} rows_t;

static size_t slot_of(const rows_t *r, int64_t event_id)
{
    unsigned bits = (unsigned)__builtin_ctzll((unsigned long long)r->nslots);
    size_t i = (size_t)(((uint64_t)event_id * 0x9e3779b97f4a7c15ULL) >> (64 - bits));
    while (r->slot[i] != 0 && r->v[r->slot[i] - 1].event_id != event_id) {
        i = (i + 1) & (r->nslots - 1);
    }
    return i;
}

static void rows_reindex(rows_t *r)
{
    ch_free(r->slot);
    r->nslots = r->nslots ? r->nslots * 2 : 256;
    r->slot = ch_calloc(r->nslots, sizeof(*r->slot));
    for (size_t k = 0; k < r->n; k++) {
        r->slot[slot_of(r, r->v[k].event_id)] = k + 1;
    }
}

static row_t *row_of(rows_t *r, int64_t event_id, int create)
{
    if (r->nslots > 0) {
        size_t i = slot_of(r, event_id);
        if (r->slot[i] != 0) {
            return &r->v[r->slot[i] - 1];
        }
    }
    if (!create) {
        return NULL;
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->v = ch_realloc(r->v, r->cap * sizeof(*r->v));
    }
    row_t *w = &r->v[r->n++];
    memset(w, 0, sizeof(*w));
    w->event_id = event_id;
    w->cameras = json_array();
    if (r->n * 2 > r->nslots) {
        rows_reindex(r);
    } else {
        r->slot[slot_of(r, event_id)] = r->n;
    }
    return w;
}

static void add_cameras(row_t *w, json_t *list)
{
    size_t i, k;
    json_t *v, *have;
    json_array_foreach(list, i, v)
    {
        int dup = 0;
        json_array_foreach(w->cameras, k, have)
        {
            dup |= json_integer_value(have) == json_integer_value(v);
        }
        if (!dup && json_is_integer(v)) {
            json_array_append(w->cameras, v);
        }
    }
}

static int64_t event_id_of(const char *object)
{
    int64_t id = 0;
    if (object == NULL || strncmp(object, "event:", 6) != 0 ||
        ch_parse_int64(object + 6, strlen(object + 6), &id) != 0) {
        return 0;
    }
    return id;
}

static void copy(char *dst, size_t cap, const char *s)
{
    snprintf(dst, cap, "%s", s != NULL ? s : "");
}

/* Folds one record into the rows. */
static void fold(rows_t *r, json_t *rec)
{
    const char *action = json_string_value(json_object_get(rec, "action"));
    const char *outcome = json_string_value(json_object_get(rec, "outcome"));
    json_t *d = json_object_get(rec, "details");
    int64_t t = json_integer_value(json_object_get(rec, "time"));
    int64_t id = event_id_of(json_string_value(json_object_get(rec, "object")));
    if (action == NULL || outcome == NULL || strcmp(outcome, "ok") != 0 || id == 0) {
        return;
    }
    int open = strcmp(action, "event.open") == 0;
    int approve = strcmp(action, "event.approve") == 0;
    if (open || approve || strcmp(action, "event.request") == 0) {
        row_t *w = row_of(r, id, 1);
        if (!approve) {
            w->agency_id = json_integer_value(json_object_get(d, "agency_id"));
            copy(w->actor, sizeof(w->actor), json_string_value(json_object_get(rec, "actor")));
            copy(w->service, sizeof(w->service),
                 json_string_value(json_object_get(rec, "purpose")));
            copy(w->incident, sizeof(w->incident),
                 json_string_value(json_object_get(d, "incident")));
            w->export_allowed = json_is_true(json_object_get(d, "export"));
        }
        copy(w->basis, sizeof(w->basis), json_string_value(json_object_get(rec, "legal_basis")));
        if (open || approve) {
            w->started = 1;
            w->start_ns = t;
            add_cameras(w, json_object_get(d, "cameras"));
        }
        return;
    }
    row_t *w = row_of(r, id, 0);
    if (w == NULL) {
        return;
    }
    if (strcmp(action, "event.move") == 0) {
        add_cameras(w, json_object_get(d, "added"));
    } else if (strcmp(action, "event.extend") == 0) {
        w->extensions++;
    } else if ((strcmp(action, "event.close") == 0 || strcmp(action, "event.revoke") == 0 ||
                strcmp(action, "event.expire") == 0 || strcmp(action, "event.deny") == 0) &&
               w->end_ns == 0) {
        w->end_ns = t;
        copy(w->end_action, sizeof(w->end_action), action);
    }
}

static json_t *time_ns_json(int64_t ns)
{
    if (ns <= 0) {
        return json_null();
    }
    char ts[32];
    ch_time_format_rfc3339(ns / 1000000, ts);
    return json_string(ts);
}

static int has_camera(const row_t *w, int64_t cam)
{
    size_t i;
    json_t *v;
    json_array_foreach(w->cameras, i, v)
    {
        if (json_integer_value(v) == cam) {
            return 1;
        }
    }
    return 0;
}

int ch_event_ledger_read(ch_audit_t *audit, ch_store_t *st, const ch_event_ledger_filter_t *f,
                         json_t **out)
{
    *out = NULL;
    ch_audit_iter_t *it = NULL;
    int rc = ch_audit_iter_new(audit, 0, &it);
    if (rc != 0) {
        return rc;
    }
    rows_t r = {0};
    ch_audit_record_t rec;
    while ((rc = ch_audit_iter_next(it, &rec)) == 0) {
        /* Cheap test first: most records are not about events. */
        if (strstr(rec.json, "\"object\":\"event:") == NULL) {
            continue;
        }
        json_t *j = json_loads(rec.json, 0, NULL);
        if (j != NULL) {
            fold(&r, j);
            json_decref(j);
        }
    }
    ch_audit_iter_free(it);
    ch_free(r.slot);
    if (rc != CH_ENOTFOUND) {
        for (size_t i = 0; i < r.n; i++) {
            json_decref(r.v[i].cameras);
        }
        ch_free(r.v);
        return rc;
    }
    json_t *items = json_array();
    int64_t now_ns = ch_time_now_ms() * 1000000;
    for (size_t i = 0; i < r.n; i++) {
        row_t *w = &r.v[i];
        /* A provision belongs to [from, to) when its period overlaps it: one that started
         * before the window and ran into it counts (who had access to camera X between T1
         * and T2). A provision still running ends now. */
        int64_t end = w->end_ns > 0 ? w->end_ns : now_ns;
        int keep = w->started && (f->from_ns == 0 || end >= f->from_ns) &&
                   (f->to_ns == 0 || w->start_ns < f->to_ns) &&
                   (f->agency_id == 0 || f->agency_id == w->agency_id) &&
                   (f->event_id == 0 || f->event_id == w->event_id) &&
                   (f->camera_id == 0 || has_camera(w, f->camera_id));
        if (keep) {
            ch_agency_t ag;
            int found = st != NULL && ch_store_agency_get(st, w->agency_id, &ag) == 0;
            /* The service's name and basis text come from the policy in force, which only the
             * loop reads (a reload replaces it): ch_event_ledger_name_services. */
            json_t *o = json_object();
            json_object_set_new(o, "provided_at", time_ns_json(w->start_ns));
            json_object_set_new(o, "recipient", found ? json_string(ag.name) : json_null());
            json_object_set_new(o, "recipient_agency_id", json_integer(w->agency_id));
            json_object_set_new(o, "purpose", json_string(w->service));
            json_object_set_new(o, "service", json_string(w->service));
            json_object_set_new(o, "legal_basis", json_string(w->basis));
            json_object_set_new(o, "legal_basis_text", json_null());
            json_object_set_new(o, "cameras", json_incref(w->cameras));
            json_object_set_new(o, "period_from", time_ns_json(w->start_ns));
            json_object_set_new(o, "period_to", time_ns_json(w->end_ns));
            json_object_set_new(o, "ended_by",
                                w->end_action[0] ? json_string(w->end_action) : json_null());
            json_object_set_new(o, "extensions", json_integer(w->extensions));
            json_object_set_new(
                o, "form",
                json_string(w->export_allowed ? "live view; export allowed" : "live view"));
            json_object_set_new(o, "event_id", json_integer(w->event_id));
            json_object_set_new(o, "incident",
                                w->incident[0] ? json_string(w->incident) : json_null());
            json_object_set_new(o, "requested_by", json_string(w->actor));
            json_array_append_new(items, o);
            if (found) {
                ch_agency_fini(&ag);
            }
        }
        json_decref(w->cameras);
    }
    ch_free(r.v);
    *out = json_pack("{s:o, s:I}", "items", items, "total", (json_int_t)json_array_size(items));
    return 0;
}

void ch_event_ledger_name_services(json_t *ledger, const ch_policy_t *policy)
{
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(ledger, "items"), i, o)
    {
        const ch_policy_service_t *svc =
            policy != NULL
                ? ch_policy_find(policy, json_string_value(json_object_get(o, "service")))
                : NULL;
        if (svc != NULL) {
            /* In place: the keys keep their order. */
            json_object_set_new(o, "purpose", json_string(svc->name));
            json_object_set_new(o, "legal_basis_text", json_string(svc->basis_text));
        }
    }
}

int ch_event_ledger(ch_audit_t *audit, ch_store_t *st, const ch_policy_t *policy,
                    const ch_event_ledger_filter_t *f, json_t **out)
{
    int rc = ch_event_ledger_read(audit, st, f, out);
    if (rc == 0) {
        ch_event_ledger_name_services(*out, policy);
    }
    return rc;
}

/* One CSV field: quoted when it holds a comma, a quote or a line break. */
static void csv_field(ch_buf_t *b, const char *s, int last)
{
    if (s == NULL) {
        s = "";
    }
    if (strpbrk(s, ",\"\r\n") != NULL) {
        ch_buf_append_char(b, '"');
        for (const char *p = s; *p != '\0'; p++) {
            if (*p == '"') {
                ch_buf_append_char(b, '"');
            }
            ch_buf_append_char(b, *p);
        }
        ch_buf_append_char(b, '"');
    } else {
        ch_buf_append_str(b, s);
    }
    ch_buf_append_str(b, last ? "\r\n" : ",");
}

char *ch_event_ledger_csv(const json_t *ledger, size_t *len)
{
    static const char *const cols[] = {"provided_at",
                                       "recipient",
                                       "recipient_agency_id",
                                       "purpose",
                                       "service",
                                       "legal_basis",
                                       "legal_basis_text",
                                       "cameras",
                                       "period_from",
                                       "period_to",
                                       "ended_by",
                                       "extensions",
                                       "form",
                                       "event_id",
                                       "incident",
                                       "requested_by"};
    static const char *const titles[] = {"제공일 (provided_at)",
                                         "제공받는 자 (recipient)",
                                         "recipient_agency_id",
                                         "이용·제공 목적 (purpose)",
                                         "service",
                                         "법적 근거 (legal_basis)",
                                         "legal_basis_text",
                                         "제공 항목: 카메라 (cameras)",
                                         "제공 기간 시작 (period_from)",
                                         "제공 기간 끝 (period_to)",
                                         "ended_by",
                                         "extensions",
                                         "제공 형태 (form)",
                                         "event_id",
                                         "incident",
                                         "requested_by"};
    size_t ncols = CH_ARRAY_SIZE(cols);
    ch_buf_t b;
    ch_buf_init(&b);
    ch_buf_append_str(&b, "\xEF\xBB\xBF"); /* the BOM: Excel then reads UTF-8 */
    for (size_t c = 0; c < ncols; c++) {
        csv_field(&b, titles[c], c + 1 == ncols);
    }
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(ledger, "items"), i, row)
    {
        for (size_t c = 0; c < ncols; c++) {
            json_t *v = json_object_get(row, cols[c]);
            char num[32];
            const char *text = NULL;
            char *cams = NULL;
            if (json_is_string(v)) {
                text = json_string_value(v);
            } else if (json_is_integer(v)) {
                snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
                text = num;
            } else if (json_is_array(v)) {
                ch_buf_t cb;
                ch_buf_init(&cb);
                size_t k;
                json_t *id;
                json_array_foreach(v, k, id)
                {
                    ch_buf_appendf(&cb, "%s%lld", k ? " " : "", (long long)json_integer_value(id));
                }
                cams = ch_buf_steal(&cb);
                text = cams;
            }
            csv_field(&b, text, c + 1 == ncols);
            ch_free(cams);
        }
    }
    *len = b.len;
    return ch_buf_steal(&b);
}

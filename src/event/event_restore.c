/*
 * event/event_restore.c: loading at start, the store made to follow the record.
 */
#include "event/event_internal.h"

#include <math.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODULE "event"

/* Whether the audit log (through the store's index of it) holds any record of an event. */
static int recorded(ch_event_engine_t *eng, int64_t event_id)
{
    if (eng->cfg.audit == NULL) {
        return 1;
    }
    ch_store_audit_filter_t f = {.event_id = event_id, .after_seq = -1, .limit = 1};
    int64_t *seqs = NULL, total = 0, next = 0;
    size_t n = 0;
    if (ch_store_audit_index_query(eng->cfg.st, &f, &seqs, &n, &total, &next) != 0) {
        return 1; /* unknown: keep it, rather than end access on a read error */
    }
    ch_free(seqs);
    return total > 0;
}

/* Whether object names exactly "<kind>:<id>"; *id (when not NULL) gets the id. */
static int object_is(const char *object, const char *kind, int64_t want, int64_t *id)
{
    size_t n = strlen(kind);
    int64_t v = 0;
    if (object == NULL || strncmp(object, kind, n) != 0 || object[n] != ':' ||
        ch_parse_int64(object + n + 1, strlen(object + n + 1), &v) != 0 || v <= 0) {
        return 0;
    }
    if (id != NULL) {
        *id = v;
    }
    return want == 0 || v == want;
}

/*
 * Decisions on the record that the store may not hold (ch_event_restore). Every decision is
 * recorded before its COMMIT, so a crash in between (or a power cut losing the last commits:
 * the store syncs its WAL lazily) leaves the log ahead of the store; an ending on the record
 * is final whatever the store says, and a revoked grant stays revoked. Such a record is newer
 * than its event's last write in the store (the decision wrote after it), so only records
 * since the oldest live event's last write are looked at, found by action through the store's
 * index of the log: never the view records, which may be thousands per event.
 */
typedef struct record_ref {
    int64_t event_id, seq;
} record_ref_t;

typedef struct ahead {
    record_ref_t *refs; /* endings and grant revocations with outcome ok, by event then seq */
    size_t n, cap;
} ahead_t;

/* What the record says about one live event. */
typedef struct last_word {
    json_t *decision; /* a record that ended it (close, revoke, expiry, denial, abort), or NULL */
    json_t *revokes;  /* its grant.revoke records (an array) */
} last_word_t;

static void last_word_fini(last_word_t *w)
{
    json_decref(w->decision);
    json_decref(w->revokes);
    memset(w, 0, sizeof(*w));
}

static int cmp_ref(const void *a, const void *b)
{
    const record_ref_t *x = a, *y = b;
    if (x->event_id != y->event_id) {
        return x->event_id < y->event_id ? -1 : 1;
    }
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Record seq as JSON, or NULL (*rc set on a read error, 0 for a record that is not JSON). */
static json_t *read_record(ch_event_engine_t *eng, int64_t seq, int *rc)
{
    char *text = NULL;
    size_t len = 0;
    if ((*rc = ch_audit_read(eng->cfg.audit, (uint64_t)seq, &text, &len)) != 0) {
        return NULL;
    }
    json_t *rec = json_loadb(text, len, 0, NULL);
    ch_free(text);
    return rec;
}

/* Collects the endings and grant revocations recorded since since_ns (outcome ok; a denied
 * approval is an "event.deny" with outcome "denied"). 0 or a store / audit code. */
static int scan_ahead(ch_event_engine_t *eng, int64_t since_ns, ahead_t *ah)
{
    static const char *const actions[] = {"event.close", "event.revoke", "event.expire",
                                          "event.deny",  "event.abort",  "grant.revoke"};
    int rc = 0;
    for (size_t a = 0; rc == 0 && a < CH_ARRAY_SIZE(actions); a++) {
        ch_store_audit_filter_t f = {
            .since_ns = since_ns, .action = actions[a], .after_seq = -1, .limit = 1000};
        for (;;) {
            int64_t *seqs = NULL, total = 0, next = -1;
            size_t k = 0;
            if ((rc = ch_store_audit_index_query(eng->cfg.st, &f, &seqs, &k, &total, &next)) != 0) {
                break;
            }
            for (size_t i = 0; rc == 0 && i < k; i++) {
                json_t *rec = read_record(eng, seqs[i], &rc);
                const char *outcome = json_string_value(json_object_get(rec, "outcome"));
                const char *object = json_string_value(json_object_get(rec, "object"));
                int64_t id = 0;
                if (outcome != NULL && strcmp(outcome, "ok") == 0) {
                    if (a + 1 == CH_ARRAY_SIZE(actions)) {
                        id = json_integer_value(
                            json_object_get(json_object_get(rec, "details"), "event_id"));
                    } else {
                        (void)object_is(object, "event", 0, &id);
                    }
                }
                json_decref(rec);
                if (id > 0) {
                    if (ah->n == ah->cap) {
                        ah->cap = ah->cap ? ah->cap * 2 : 64;
                        ah->refs = ch_realloc(ah->refs, ah->cap * sizeof(*ah->refs));
                    }
                    ah->refs[ah->n++] = (record_ref_t){id, seqs[i]};
                }
            }
            ch_free(seqs);
            if (rc != 0 || next < 0 || k == 0) {
                break;
            }
            f.after_seq = next;
        }
    }
    if (ah->n > 1) {
        qsort(ah->refs, ah->n, sizeof(*ah->refs), cmp_ref);
    }
    return rc;
}

/* What the scan found about one event. 0 or an audit code. */
static int last_word_of(ch_event_engine_t *eng, const ahead_t *ah, int64_t event_id, last_word_t *w)
{
    memset(w, 0, sizeof(*w));
    w->revokes = json_array();
    size_t lo = 0, hi = ah->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ah->refs[mid].event_id < event_id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    int rc = 0;
    for (size_t i = lo; rc == 0 && i < ah->n && ah->refs[i].event_id == event_id; i++) {
        json_t *rec = read_record(eng, ah->refs[i].seq, &rc);
        const char *action = json_string_value(json_object_get(rec, "action"));
        if (action != NULL && strcmp(action, "grant.revoke") == 0) {
            json_array_append(w->revokes, rec);
        } else if (action != NULL && w->decision == NULL) {
            w->decision = json_incref(rec);
        }
        json_decref(rec);
    }
    return rc;
}

/* When the oldest live event was last written in the store (ms), or 0 when none is live. */
static int oldest_live_write(ch_event_engine_t *eng, int64_t *out)
{
    static const char *const live[] = {"active", "pending"};
    *out = 0;
    for (size_t s = 0; s < 2; s++) {
        ch_store_filter_t f = {.status = live[s], .limit = 1000};
        for (;;) {
            ch_event_list_t l;
            int rc = ch_store_event_list(eng->cfg.st, &f, &l);
            if (rc != 0) {
                return rc;
            }
            for (size_t i = 0; i < l.count; i++) {
                int64_t t =
                    l.items[i].updated_at > 0 ? l.items[i].updated_at : l.items[i].created_at;
                t = t > 0 ? t : 1;
                *out = *out == 0 || t < *out ? t : *out;
            }
            f.after_id = l.next_id;
            ch_event_list_free(&l);
            if (f.after_id == 0) {
                break;
            }
        }
    }
    return 0;
}

/*
 * Makes the store say what the log says about a live event: when a decision on the record
 * ended it (close, revoke, expiry, denial, abort), the event and its live grants end as that
 * decision ended them (who, why, when from the record); live grants whose revocation is on
 * the record end "revoked". No record is written: the log already holds these decisions. *ended is
 * set when the event itself ended. 0 or a store code (rolled back).
 */
static int settle_from_record(ch_event_engine_t *eng, ch_event_t *ev, const last_word_t *w,
                              int *ended)
{
    static const struct {
        const char *action, *status, *gstatus;
    } endings[] = {{"event.close", "closed", "closed"},
                   {"event.revoke", "closed", "revoked"},
                   {"event.expire", "expired", "expired"},
                   {"event.deny", "denied", "denied"},
                   {"event.abort", "closed", "closed"}};
    *ended = 0;
    const char *action = json_string_value(json_object_get(w->decision, "action"));
    size_t e = CH_ARRAY_SIZE(endings);
    for (size_t i = 0; action != NULL && i < CH_ARRAY_SIZE(endings); i++) {
        e = strcmp(action, endings[i].action) == 0 ? i : e;
    }
    if (e == CH_ARRAY_SIZE(endings) && json_array_size(w->revokes) == 0) {
        return 0;
    }
    ch_grant_list_t g;
    memset(&g, 0, sizeof(g));
    int changed = 0;
    int rc = ch_store_begin(eng->cfg.st);
    if (rc == 0) {
        rc = ch_event__grants_of(eng->cfg.st, ev->id, NULL, &g);
    }
    for (size_t i = 0; rc == 0 && i < g.count; i++) {
        ch_grant_t *gr = &g.items[i];
        if (strcmp(gr->status, "active") != 0 && strcmp(gr->status, "pending") != 0) {
            continue;
        }
        json_t *by = e < CH_ARRAY_SIZE(endings) ? w->decision : NULL;
        size_t k;
        json_t *r;
        json_array_foreach(w->revokes, k, r)
        {
            if (object_is(json_string_value(json_object_get(r, "object")), "grant", gr->id, NULL)) {
                by = r;
            }
        }
        if (by == NULL) {
            continue;
        }
        const char *gstatus = by == w->decision ? endings[e].gstatus : "revoked";
        const char *actor = json_string_value(json_object_get(by, "actor"));
        rc = ch_event__end_grant(
            eng->cfg.st, gr, gstatus, actor != NULL ? actor : "system",
            json_string_value(json_object_get(json_object_get(by, "details"), "reason")),
            json_integer_value(json_object_get(by, "time")) / 1000000);
        changed++;
    }
    if (rc == 0 && e < CH_ARRAY_SIZE(endings)) {
        const char *why =
            json_string_value(json_object_get(json_object_get(w->decision, "details"), "reason"));
        ch_free(ev->status);
        ev->status = ch_strdup(endings[e].status);
        const char *actor = json_string_value(json_object_get(w->decision, "actor"));
        ch_free(ev->closed_by);
        ev->closed_by = ch_strdup(actor != NULL ? actor : "system");
        ch_free(ev->close_reason);
        ev->close_reason = why != NULL ? ch_strdup(why) : NULL;
        ev->closed_at = json_integer_value(json_object_get(w->decision, "time")) / 1000000;
        rc = ch_store_event_update(eng->cfg.st, ev);
        *ended = rc == 0;
    }
    if (rc == 0) {
        rc = ch_store_commit(eng->cfg.st);
    }
    if (rc != 0) {
        (void)ch_store_rollback(eng->cfg.st);
        *ended = 0;
    } else if (*ended || changed > 0) {
        ch_log(CH_LOG_WARN, MODULE,
               "msg=\"the audit record was ahead of the store (a stop between a decision's "
               "record and its commit); the store now follows the record\" event=%lld "
               "decision=%s grants_ended=%d",
               (long long)ev->id, *ended ? endings[e].action : "grant.revoke", changed);
    }
    ch_grant_list_free(&g);
    return rc;
}

/* The slack for clocks that stepped back between a store write and a later record. */
#define AHEAD_SLACK_MS (10LL * 60 * 1000)

int ch_event_restore(ch_event_engine_t *eng)
{
    static const char *const live[] = {"active", "pending"};
    eng->ngrants = 0;
    eng->nevents = 0;
    if (eng->mcap > 0) {
        memset(eng->map, 0, eng->mcap * sizeof(*eng->map));
    }
    ahead_t ah = {NULL, 0, 0};
    int64_t oldest = 0;
    int arc = eng->cfg.audit != NULL ? oldest_live_write(eng, &oldest) : 0;
    if (arc == 0 && oldest > 0) {
        int64_t since = oldest > AHEAD_SLACK_MS ? oldest - AHEAD_SLACK_MS : 1;
        arc = scan_ahead(eng, since * 1000000, &ah);
    }
    if (arc != 0) {
        ch_log(CH_LOG_ERROR, MODULE,
               "msg=\"the audit record could not be read back; live events kept as the store "
               "has them\" rc=%d",
               arc);
        ah.n = 0;
    }
    for (size_t s = 0; s < 2; s++) {
        ch_store_filter_t f = {.status = live[s], .limit = 1000};
        for (;;) {
            ch_event_list_t l;
            int rc = ch_store_event_list(eng->cfg.st, &f, &l);
            if (rc != 0) {
                ch_free(ah.refs);
                return rc;
            }
            for (size_t i = 0; i < l.count; i++) {
                ch_event_t *ev = &l.items[i];
                if (!recorded(eng, ev->id)) {
                    /* Written to the store, but the hub stopped before its record was
                     * durable: no token was ever answered; it must not stand. */
                    ch_fault_t err;
                    json_t *d = json_pack("{s:s}", "why", "its opening never reached the record");
                    if (ch_event__end_event(eng, ev, "closed", "closed", "system",
                                            "the decision never reached the audit record",
                                            "event.abort", d, &err) != 0) {
                        ch_event_list_free(&l);
                        ch_free(ah.refs);
                        return CH_EIO;
                    }
                    continue;
                }
                /* The log's last word on the event: a decision whose record is durable but
                 * whose COMMIT never happened (the hub stopped in between) is carried out now,
                 * so that a close or revocation on the record never comes back live. */
                last_word_t w;
                int ended = 0;
                if (last_word_of(eng, &ah, ev->id, &w) != 0) {
                    ch_log(CH_LOG_ERROR, MODULE,
                           "msg=\"the record of a live event could not be read; kept as the "
                           "store has it\" event=%lld",
                           (long long)ev->id);
                } else if ((rc = settle_from_record(eng, ev, &w, &ended)) != 0) {
                    last_word_fini(&w);
                    ch_event_list_free(&l);
                    ch_free(ah.refs);
                    return rc;
                }
                last_word_fini(&w);
                if (ended) {
                    continue;
                }
                ch_event__live_set_event(eng, ev->id, ev->expires_at);
                /* The speed check of a moving subject measures from when it was last placed:
                 * the event's last write (its last move, or a later extension: never earlier
                 * than the truth, so never more lenient), and never later than now. */
                live_event_t *le = ch_event__live_event(eng, ev->id);
                int64_t now = ch_event__now_ms(eng);
                int64_t placed = ev->updated_at > 0 ? ev->updated_at : ev->created_at;
                le->placed_at = placed > 0 && placed < now ? placed : now;
                if (s != 0) {
                    continue;
                }
                ch_grant_list_t g;
                if ((rc = ch_event__grants_of(eng->cfg.st, ev->id, "active", &g)) != 0) {
                    ch_event_list_free(&l);
                    ch_free(ah.refs);
                    return rc;
                }
                for (size_t k = 0; k < g.count; k++) {
                    ch_event__live_add_grant(eng, &g.items[k]);
                }
                ch_grant_list_free(&g);
            }
            f.after_id = l.next_id;
            ch_event_list_free(&l);
            if (f.after_id == 0) {
                break;
            }
        }
    }
    ch_free(ah.refs);
    ch_log(CH_LOG_INFO, MODULE, "msg=\"live events restored\" events=%zu grants=%zu", eng->nevents,
           eng->ngrants);
    int n = ch_event_tick(eng);
    return n < 0 ? n : ch_event__follow_store(eng);
}

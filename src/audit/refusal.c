/*
 * audit/refusal.c: refusals on the record without letting the refused decide how much the
 * hub writes. A bad API key or a viewer with a forged token costs its sender nothing, and each
 * one used to be its own fsynced record (11,900 a second were reached). Here the first refusal
 * of a peer and kind in an interval is recorded at once, with its details; the ones after it
 * are only counted, and one record per peer and kind says how many there were, when the
 * interval ends (ch_audit_refusals_flush) or when the log closes. The table has a fixed number
 * of slots: once it is full, further peers share one "other peers" slot, so memory and records
 * stay bounded however many addresses an attacker has. Refusals for rate (status 429) are not
 * recorded at all: the rate limit is what stops that flood, and a record of each would undo it.
 */
#include "audit/audit_internal.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define REASONS    4 /* distinct reasons counted per slot; the rest count as "other" */
#define OTHER_PEER "*"
#define PEER_MAX   64
#define ACTION_MAX 48
#define TEXT_MAX   48

typedef struct slot {
    int32_t next; /* the next slot in its bucket, or the next free slot; -1 ends */
    int used;
    char peer[PEER_MAX];
    char action[ACTION_MAX];
    char actor[TEXT_MAX]; /* part of the key, but in the "other peers" slot */
    uint64_t window_ms;   /* monotonic start of the interval */
    uint64_t count;       /* refusals counted (not recorded one by one) */
    int64_t first_ns, last_ns;
    char reason[REASONS][TEXT_MAX];
    uint64_t reason_n[REASONS];
    uint64_t other_reasons;
} slot_t;

struct ch_audit__refusals {
    pthread_mutex_t mu;
    uint32_t interval_ms;
    uint32_t nslots;
    int32_t *bucket; /* nslots heads */
    slot_t *slots;   /* nslots + 1: the last is the "other peers" slot */
    int32_t free_head;
    /* Figures: refusals seen, recorded at once, counted into a summary, dropped (429). */
    uint64_t m_recorded, m_counted, m_dropped, m_summaries;
};

static uint64_t mono_ms(void)
{
    return ch_time_mono_ns() / 1000000u;
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

ch_audit__refusals_t *ch_audit__refusals_new(uint32_t interval_ms, uint32_t peers)
{
    ch_audit__refusals_t *r = ch_calloc(1, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    r->interval_ms = interval_ms;
    r->nslots = peers;
    r->bucket = ch_malloc(peers * sizeof(*r->bucket));
    r->slots = ch_calloc((size_t)peers + 1, sizeof(*r->slots));
    for (uint32_t i = 0; i < peers; i++) {
        r->bucket[i] = -1;
        r->slots[i].next = i + 1 < peers ? (int32_t)(i + 1) : -1;
    }
    r->free_head = peers > 0 ? 0 : -1;
    return r;
}

void ch_audit__refusals_free(ch_audit__refusals_t *r)
{
    if (r == NULL) {
        return;
    }
    pthread_mutex_destroy(&r->mu);
    ch_free(r->bucket);
    ch_free(r->slots);
    ch_free(r);
}

/* The address without its port: "10.0.0.7:5123" -> "10.0.0.7", "[::1]:80" -> "::1". A
 * client opens a new connection (a new port) for every try; the address is who it is. */
static void peer_host(const char *peer, char out[PEER_MAX])
{
    if (peer == NULL || peer[0] == '\0') {
        snprintf(out, PEER_MAX, "unknown");
        return;
    }
    const char *start = peer, *end = peer + strlen(peer);
    if (peer[0] == '[') {
        const char *close = strchr(peer, ']');
        if (close != NULL) {
            start = peer + 1;
            end = close;
        }
    } else {
        const char *colon = strchr(peer, ':');
        if (colon != NULL && strchr(colon + 1, ':') == NULL) {
            end = colon;
        }
    }
    size_t n = (size_t)(end - start) < PEER_MAX - 1 ? (size_t)(end - start) : PEER_MAX - 1;
    memcpy(out, start, n);
    out[n] = '\0';
}

static uint32_t slot_hash(const char *peer, const char *action, const char *actor)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    const char *parts[3] = {peer, action, actor};
    for (int k = 0; k < 3; k++) {
        for (const char *p = parts[k]; *p; p++) {
            h = (h ^ (uint8_t)*p) * 16777619u;
        }
        h = (h ^ 0xff) * 16777619u;
    }
    return h;
}

/* Copies src into dst (cap bytes), cut at a character boundary when it does not fit, so that
 * the copy stays valid UTF-8 (a record refuses invalid text) and the same input always gives
 * the same key. */
static void copy_cut(char *dst, size_t cap, const char *src)
{
    size_t n = src != NULL ? strlen(src) : 0;
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((uint8_t)src[n] & 0xC0) == 0x80) {
            n--; /* src[n] continues a character: cut before the character's first byte */
        }
    }
    if (n > 0) {
        memcpy(dst, src, n);
    }
    dst[n] = '\0';
}

static void copy_text(char *dst, const char *src)
{
    copy_cut(dst, TEXT_MAX, src);
}

static void count_reason(slot_t *s, const char *reason)
{
    char why[TEXT_MAX];
    copy_text(why, reason);
    for (int i = 0; i < REASONS; i++) {
        if (s->reason_n[i] == 0) {
            memcpy(s->reason[i], why, sizeof(why));
            s->reason_n[i] = 1;
            return;
        }
        if (strcmp(s->reason[i], why) == 0) {
            s->reason_n[i]++;
            return;
        }
    }
    s->other_reasons++;
}

/* The record that sums up a slot: the refusals counted in its interval (the first one of the
 * interval was recorded on its own). details: count, first and last time, reasons. */
static int summary_append(ch_audit_t *a, const slot_t *s, uint32_t interval_ms)
{
    json_t *reasons = json_object();
    for (int i = 0; i < REASONS && s->reason_n[i] > 0; i++) {
        json_object_set_new(reasons, s->reason[i][0] ? s->reason[i] : "unknown",
                            json_integer((json_int_t)s->reason_n[i]));
    }
    if (s->other_reasons > 0) {
        json_object_set_new(reasons, "other", json_integer((json_int_t)s->other_reasons));
    }
    json_t *d =
        json_pack("{s:b, s:I, s:I, s:I, s:I, s:s, s:o}", "aggregated", 1, "count",
                  (json_int_t)s->count, "first_time", (json_int_t)s->first_ns, "last_time",
                  (json_int_t)s->last_ns, "interval_ms", (json_int_t)interval_ms, "peer",
                  strcmp(s->peer, OTHER_PEER) == 0 ? "other peers" : s->peer, "reasons", reasons);
    ch_audit_entry_t e = {.actor = s->actor[0] ? s->actor : "system",
                          .action = s->action,
                          .object = NULL, /* the refusals counted may name many */
                          .outcome = "denied",
                          .details = d};
    int rc = d != NULL ? ch_audit_append(a, &e, NULL) : CH_EINVAL;
    json_decref(d);
    if (rc != 0) {
        ch_log(CH_LOG_ERROR, "audit",
               "msg=\"refusal summary not recorded\" action=%s count=%" PRIu64 " err=\"%s\"",
               s->action, s->count, ch_strerror(rc));
    }
    return rc;
}

/* Takes the slots whose interval is over (or all, when all is set) out of the table; the
 * ones with counted refusals are copied to *due (count in *ndue) for the caller to record
 * outside the mutex. Called with the mutex held. */
static void sweep_locked(ch_audit__refusals_t *r, uint64_t now, int all, slot_t **due, size_t *ndue)
{
    *due = NULL;
    *ndue = 0;
    size_t cap = 0;
    for (uint32_t b = 0; b <= r->nslots; b++) {
        /* The buckets, then the "other peers" slot on its own. */
        int32_t *link = b < r->nslots ? &r->bucket[b] : NULL;
        int32_t i = b < r->nslots ? *link : (int32_t)r->nslots;
        while (i >= 0) {
            slot_t *s = &r->slots[i];
            int32_t next = b < r->nslots ? s->next : -1;
            int over = s->used && (all || now - s->window_ms >= r->interval_ms);
            if (over && s->count > 0) {
                if (*ndue == cap) {
                    cap = cap ? cap * 2 : 8;
                    *due = ch_realloc(*due, cap * sizeof(**due));
                }
                (*due)[(*ndue)++] = *s;
            }
            if (over && b < r->nslots) {
                *link = next;
                memset(s, 0, sizeof(*s));
                s->next = r->free_head;
                r->free_head = i;
            } else if (over) {
                memset(s, 0, sizeof(*s));
            } else if (b < r->nslots) {
                link = &s->next;
            }
            i = next;
        }
    }
}

static int record_due(ch_audit_t *a, ch_audit__refusals_t *r, slot_t *due, size_t ndue)
{
    int rc = 0;
    for (size_t i = 0; i < ndue; i++) {
        int arc = summary_append(a, &due[i], r->interval_ms);
        if (arc == 0) {
            pthread_mutex_lock(&r->mu);
            r->m_summaries++;
            pthread_mutex_unlock(&r->mu);
        } else if (rc == 0) {
            rc = arc;
        }
    }
    ch_free(due);
    return rc;
}

int ch_audit_refusal(ch_audit_t *a, const char *peer, int status, const ch_audit_entry_t *e)
{
    ch_audit__refusals_t *r = a != NULL ? ch_audit__refusals(a) : NULL;
    if (r == NULL || e == NULL || e->action == NULL) {
        return CH_EINVAL;
    }
    char host[PEER_MAX], action[ACTION_MAX], actor[TEXT_MAX];
    peer_host(peer, host);
    copy_cut(action, sizeof(action), e->action);
    /* A peer is its address and, when it authenticated, its principal (the actor). */
    copy_text(actor, e->actor);
    uint64_t now = mono_ms();
    slot_t *due = NULL;
    size_t ndue = 0;
    int record_now = 0;

    pthread_mutex_lock(&r->mu);
    if (status == 429) {
        r->m_dropped++;
        pthread_mutex_unlock(&r->mu);
        return 0;
    }
    uint32_t b = r->nslots > 0 ? slot_hash(host, action, actor) % r->nslots : 0;
    slot_t *s = NULL;
    int32_t *link = r->nslots > 0 ? &r->bucket[b] : NULL;
    for (int32_t i = link != NULL ? *link : -1; i >= 0; i = r->slots[i].next) {
        slot_t *c = &r->slots[i];
        if (strcmp(c->peer, host) == 0 && strcmp(c->action, action) == 0 &&
            strcmp(c->actor, actor) == 0) {
            s = c;
            break;
        }
        link = &c->next;
    }
    if (s != NULL && now - s->window_ms >= r->interval_ms) {
        /* Its interval is over but no flush came by yet: its sum is recorded now, and this
         * refusal starts a new interval. Only this slot: the caller may be a loop that must
         * not wait for more than its own record (ch_audit_refusals_flush does the rest). */
        int32_t i = (int32_t)(s - r->slots);
        if (s->count > 0) {
            due = ch_malloc(sizeof(*due));
            due[0] = *s;
            ndue = 1;
        }
        *link = s->next;
        memset(s, 0, sizeof(*s));
        s->next = r->free_head;
        r->free_head = i;
        s = NULL;
    }
    if (s == NULL && r->free_head >= 0) {
        /* The first refusal of this peer and kind in an interval: recorded at once. */
        int32_t i = r->free_head;
        s = &r->slots[i];
        r->free_head = s->next;
        memset(s, 0, sizeof(*s));
        s->used = 1;
        snprintf(s->peer, sizeof(s->peer), "%s", host);
        memcpy(s->action, action, sizeof(action));
        memcpy(s->actor, actor, sizeof(actor));
        s->window_ms = now;
        s->next = r->bucket[b];
        r->bucket[b] = i;
        record_now = 1;
        r->m_recorded++;
    } else {
        if (s == NULL) {
            /* The table is full: every further peer shares one slot. */
            s = &r->slots[r->nslots];
            if (!s->used) {
                s->used = 1;
                snprintf(s->peer, sizeof(s->peer), OTHER_PEER);
                memcpy(s->action, action, sizeof(action)); /* the first kind counted */
                s->window_ms = now;
            }
        }
        int64_t t = wall_ns();
        if (s->count == 0) {
            s->first_ns = t;
            if (s == &r->slots[r->nslots]) {
                copy_text(s->actor, e->actor);
            }
        }
        s->last_ns = t;
        s->count++;
        json_t *why = e->details != NULL ? json_object_get(e->details, "reason") : NULL;
        count_reason(s, json_string_value(why));
        r->m_counted++;
    }
    pthread_mutex_unlock(&r->mu);

    int rc = record_due(a, r, due, ndue);
    if (record_now) {
        ch_audit_entry_t first = *e;
        rc = ch_audit_append(a, &first, NULL);
    }
    return rc;
}

int ch_audit_refusals_flush(ch_audit_t *a, int all)
{
    ch_audit__refusals_t *r = a != NULL ? ch_audit__refusals(a) : NULL;
    if (r == NULL) {
        return 0;
    }
    slot_t *due = NULL;
    size_t ndue = 0;
    pthread_mutex_lock(&r->mu);
    sweep_locked(r, mono_ms(), all, &due, &ndue);
    pthread_mutex_unlock(&r->mu);
    return record_due(a, r, due, ndue);
}

void ch_audit__refusals_collect(ch_metrics_writer_t *w, ch_audit__refusals_t *r)
{
    if (r == NULL) {
        return;
    }
    pthread_mutex_lock(&r->mu);
    uint64_t fate[3] = {r->m_recorded, r->m_counted, r->m_dropped};
    uint64_t summaries = r->m_summaries;
    pthread_mutex_unlock(&r->mu);
    static const char *const names[3] = {"recorded", "counted", "dropped"};
    if (ch_metrics_family(w, "cctvhub_audit_refusals_total", CH_METRICS_COUNTER,
                          "Refusals passed to the audit log, by what became of them: recorded "
                          "on their own, counted into a summary record, or dropped (refused for "
                          "rate).") == 0) {
        for (int i = 0; i < 3; i++) {
            ch_metrics_label_t l = {"fate", names[i]};
            ch_metrics_value_u64(w, &l, 1, fate[i]);
        }
    }
    if (ch_metrics_family(w, "cctvhub_audit_refusal_summaries_total", CH_METRICS_COUNTER,
                          "Records that sum up the refusals of one peer and kind in an "
                          "interval.") == 0) {
        ch_metrics_value_u64(w, NULL, 0, summaries);
    }
}

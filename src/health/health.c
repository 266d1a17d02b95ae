/*
 * health/health.c: the state machine and the scheduler of camera health (see health.h), pure
 * memory driven with explicit times.
 *
 * Cameras are kept in an array sorted by id (lookups by binary search: the API asks for one
 * camera or a page of them) and in a binary min-heap on the time of their next probe, so a tick
 * costs O(log n) per due camera, not a scan of all 18,000.
 */
#include "health/health_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

const double ch_health_buckets[CH_HEALTH_NBUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                      0.5,   1,    2.5,   5,    10};

const char *const ch_health_state_names[CH_HEALTH_NSTATES + 1] = {
    "unknown", "online", "degraded", "offline", "auth-failed", NULL};

/* A live pull is judged on its fps only after this long playing (the relay's fps is measured
 * over a window that starts empty). */
#define LIVE_SETTLE_MS 5000
/* Transitions kept for the store when it cannot be written: beyond this the oldest go. */
#define MAX_RECORDS 100000

const char *ch_health_state_name(ch_health_state_t s)
{
    return (unsigned)s < CH_HEALTH_NSTATES ? ch_health_state_names[s] : "unknown";
}

int ch_health_state_parse(const char *s, ch_health_state_t *out)
{
    for (int i = 0; s != NULL && i < CH_HEALTH_NSTATES; i++) {
        if (strcmp(s, ch_health_state_names[i]) == 0) {
            *out = (ch_health_state_t)i;
            return 0;
        }
    }
    return CH_EINVAL;
}

/* ---- random numbers (jitter) --------------------------------------------------------------- */

static uint64_t rnd(ch_health_t *h)
{
    /* xorshift64*: jitter needs spread, not secrecy. */
    uint64_t x = h->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    h->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* A uniform number in [0, n); 0 when n is 0. */
static int64_t rnd_below(ch_health_t *h, int64_t n)
{
    return n > 0 ? (int64_t)(rnd(h) % (uint64_t)n) : 0;
}

/* ---- the heap of next probes --------------------------------------------------------------- */

static void heap_swap(ch_health_t *h, size_t a, size_t b)
{
    ch_health__cam_t *t = h->heap[a];
    h->heap[a] = h->heap[b];
    h->heap[b] = t;
    h->heap[a]->heap_at = a;
    h->heap[b]->heap_at = b;
}

static void heap_up(ch_health_t *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->heap[p]->next_ms <= h->heap[i]->next_ms) {
            break;
        }
        heap_swap(h, i, p);
        i = p;
    }
}

static void heap_down(ch_health_t *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->nheap && h->heap[l]->next_ms < h->heap[m]->next_ms) {
            m = l;
        }
        if (r < h->nheap && h->heap[r]->next_ms < h->heap[m]->next_ms) {
            m = r;
        }
        if (m == i) {
            return;
        }
        heap_swap(h, i, m);
        i = m;
    }
}

static void heap_push(ch_health_t *h, ch_health__cam_t *c)
{
    if (h->nheap == h->cheap) {
        h->cheap = h->cheap ? h->cheap * 2 : 256;
        h->heap = ch_realloc(h->heap, h->cheap * sizeof(*h->heap));
    }
    c->heap_at = h->nheap;
    h->heap[h->nheap++] = c;
    heap_up(h, c->heap_at);
}

static void heap_remove(ch_health_t *h, ch_health__cam_t *c)
{
    size_t i = c->heap_at;
    assert(i < h->nheap && h->heap[i] == c);
    h->nheap--;
    if (i != h->nheap) {
        h->heap[i] = h->heap[h->nheap];
        h->heap[i]->heap_at = i;
        heap_down(h, i);
        heap_up(h, i);
    }
    c->heap_at = SIZE_MAX;
}

/* Moves c's next probe to at (INT64_MAX: none). */
static void schedule(ch_health_t *h, ch_health__cam_t *c, int64_t at)
{
    int64_t old = c->next_ms;
    c->next_ms = at;
    if (at < old) {
        heap_up(h, c->heap_at);
    } else if (at > old) {
        heap_down(h, c->heap_at);
    }
}

static int64_t interval_ms(const ch_health_t *h)
{
    return (int64_t)h->cfg.probe_interval_s * 1000;
}

/* The next regular probe: a full interval away, give or take a tenth, so cameras that started
 * together drift apart instead of being probed in step for ever. */
static int64_t next_regular(ch_health_t *h, int64_t now)
{
    int64_t iv = interval_ms(h);
    if (iv <= 0) {
        return INT64_MAX;
    }
    return now + iv - iv / 10 + rnd_below(h, iv / 5 + 1);
}

/* ---- the object ---------------------------------------------------------------------------- */

ch_health_t *ch_health_new(const ch_health_config_t *cfg)
{
    ch_health_t *h = ch_calloc(1, sizeof(*h));
    h->cfg = *cfg;
    if (h->cfg.tls != NULL) {
        h->cfg.tls = ch_net_tls_ref(h->cfg.tls);
    }
    if (h->cfg.concurrency == 0) {
        h->cfg.concurrency = 64;
    }
    if (h->cfg.timeout_s == 0) {
        h->cfg.timeout_s = 5;
    }
    if (h->cfg.fail_threshold == 0) {
        h->cfg.fail_threshold = 3;
    }
    if (h->cfg.keyframe_max_s == 0) {
        h->cfg.keyframe_max_s = 10;
    }
    if (h->cfg.rescan_s == 0) {
        h->cfg.rescan_s = 30;
    }
    h->rng = cfg->seed;
    if (h->rng == 0 && getrandom(&h->rng, sizeof(h->rng), 0) != (ssize_t)sizeof(h->rng)) {
        h->rng = ch_time_mono_ns();
    }
    if (h->rng == 0) {
        h->rng = 0x9E3779B97F4A7C15ULL;
    }
    return h;
}

static void cam_free(ch_health__cam_t *c)
{
    if (c != NULL) {
        ch_free(c->url);
        ch_free(c->user);
        ch_free(c->password);
        ch_free(c->tls_pin);
        ch_free(c);
    }
}

void ch_health_free(ch_health_t *h)
{
    if (h == NULL) {
        return;
    }
    for (size_t i = 0; i < h->ncams; i++) {
        cam_free(h->cams[i]);
    }
    for (size_t i = 0; i < h->nadded; i++) {
        cam_free(h->added[i]);
    }
    ch_free(h->cams);
    ch_free(h->added);
    ch_net_tls_unref(h->cfg.tls);
    ch_free(h->heap);
    ch_free(h->records);
    ch_free(h);
}

void ch_health_set_listener(ch_health_t *h, ch_health_listener_fn fn, void *ud)
{
    h->listener = fn;
    h->listener_ud = ud;
}

ch_health__cam_t *ch_health__find(const ch_health_t *h, int64_t id)
{
    size_t lo = 0, hi = h->ncams;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t m = h->cams[mid]->id;
        if (m == id) {
            return h->cams[mid];
        }
        if (m < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

/* ---- transitions --------------------------------------------------------------------------- */

/* Copies text into dst[cap], cut short when longer (reasons are for people, not parsers). */
static void copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = src != NULL ? strnlen(src, cap - 1) : 0;
    if (n > 0) {
        memcpy(dst, src, n);
    }
    dst[n] = '\0';
}

static void set_reason(ch_health__cam_t *c, const char *reason)
{
    copy_text(c->reason, sizeof(c->reason), reason);
}

/* Queues one row for the store. */
static void add_record(ch_health_t *h, int64_t camera_id, int64_t agency_id, ch_health_state_t old,
                       ch_health_state_t s, int64_t now, const char *reason)
{
    if (h->nrecords == MAX_RECORDS) {
        memmove(h->records, h->records + 1, (h->nrecords - 1) * sizeof(*h->records));
        h->nrecords--;
        h->records_dropped++;
    }
    if (h->nrecords == h->crecords) {
        h->crecords = h->crecords ? h->crecords * 2 : 64;
        h->records = ch_realloc(h->records, h->crecords * sizeof(*h->records));
    }
    ch_health_record_t *r = &h->records[h->nrecords++];
    memset(r, 0, sizeof(*r));
    r->camera_id = camera_id;
    r->agency_id = agency_id;
    r->old_state = old;
    r->new_state = s;
    r->at_ms = now;
    copy_text(r->reason, sizeof(r->reason), reason);
}

void ch_health__end_unwatched(ch_health_t *h, int64_t camera_id, int64_t agency_id,
                              ch_health_state_t last, int64_t now)
{
    if (last != CH_HEALTH_UNKNOWN && ch_health__find(h, camera_id) == NULL) {
        add_record(h, camera_id, agency_id, last, CH_HEALTH_UNKNOWN, now,
                   "no longer watched (found at start)");
    }
}

/* Moves c to state s at now: counts, since, the store's record, the listener. */
static void transition(ch_health_t *h, ch_health__cam_t *c, ch_health_state_t s, int64_t now,
                       const char *reason)
{
    if (c->state == s) {
        return;
    }
    ch_health_state_t old = c->state;
    h->by_state[old]--;
    h->by_state[s]++;
    c->state = s;
    c->since_ms = now;
    set_reason(c, reason);
    add_record(h, c->id, c->agency_id, old, s, now, c->reason);
    ch_log(s == CH_HEALTH_ONLINE ? CH_LOG_INFO : CH_LOG_WARN, "health",
           "msg=\"camera state\" camera=%lld agency=%lld from=%s to=%s reason=\"%s\"",
           (long long)c->id, (long long)c->agency_id, ch_health_state_name(old),
           ch_health_state_name(s), c->reason);
    if (h->listener != NULL) {
        ch_health_transition_t t = {c->id, c->agency_id, old, s, now, c->reason};
        h->listener(h->listener_ud, &t);
    }
}

size_t ch_health_take_records(ch_health_t *h, ch_health_record_t **out)
{
    size_t n = h->nrecords;
    *out = h->records;
    h->records = NULL;
    h->nrecords = h->crecords = 0;
    return n;
}

/* ---- the camera set ------------------------------------------------------------------------ */

void ch_health_sync_begin(ch_health_t *h)
{
    h->sync_gen++;
    for (size_t i = 0; i < h->nadded; i++) {
        cam_free(h->added[i]);
    }
    h->nadded = 0;
}

static int str_same(const char *a, const char *b)
{
    return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

void ch_health_sync_camera(ch_health_t *h, int64_t camera_id, int64_t agency_id, const char *url,
                           const char *user, const char *password, const char *tls_pin)
{
    ch_health__cam_t *c = ch_health__find(h, camera_id);
    if (c == NULL) {
        for (size_t i = 0; i < h->nadded; i++) {
            if (h->added[i]->id == camera_id) {
                return; /* named twice */
            }
        }
        c = ch_calloc(1, sizeof(*c));
        c->id = camera_id;
        c->heap_at = SIZE_MAX;
        c->latency_s = -1;
        if (h->nadded == h->cadded) {
            h->cadded = h->cadded ? h->cadded * 2 : 64;
            h->added = ch_realloc(h->added, h->cadded * sizeof(*h->added));
        }
        h->added[h->nadded++] = c;
    } else if (!str_same(c->url, url) || !str_same(c->user, user) ||
               !str_same(c->password, password) || !str_same(c->tls_pin, tls_pin)) {
        c->changed = 1;
    }
    c->seen = h->sync_gen;
    c->agency_id = agency_id;
    if (!str_same(c->url, url) || !str_same(c->user, user) || !str_same(c->password, password) ||
        !str_same(c->tls_pin, tls_pin)) {
        ch_free(c->url);
        ch_free(c->user);
        ch_free(c->password);
        ch_free(c->tls_pin);
        c->url = ch_strdup(url);
        c->user = ch_strdup(user);
        c->password = ch_strdup(password);
        c->tls_pin = ch_strdup(tls_pin);
    }
}

static int cam_cmp(const void *a, const void *b)
{
    int64_t x = (*(ch_health__cam_t *const *)a)->id, y = (*(ch_health__cam_t *const *)b)->id;
    return x < y ? -1 : x > y;
}

void ch_health_sync_end(ch_health_t *h, int64_t now)
{
    /* Drop the cameras not named: deleted, or their URL removed. */
    size_t k = 0;
    for (size_t i = 0; i < h->ncams; i++) {
        ch_health__cam_t *c = h->cams[i];
        if (c->seen != h->sync_gen) {
            /* Its observation ends here: a report must not count an outage, or uptime, past
             * it. The listener hears it too (an alert on it can be cleared). */
            transition(h, c, CH_HEALTH_UNKNOWN, now,
                       "no longer watched (deleted, no stream URL, inactive or in maintenance)");
            heap_remove(h, c);
            h->by_state[c->state]--;
            cam_free(c);
            continue;
        }
        if (c->changed) {
            /* A new URL or credentials: what we knew may be wrong; look again within a
             * second (unless a probe is running already). */
            c->changed = 0;
            c->failures = 0;
            if (!c->running && interval_ms(h) > 0) {
                schedule(h, c, now + rnd_below(h, 1000));
            }
        }
        h->cams[k++] = c;
    }
    h->ncams = k;
    if (h->nadded > 0) {
        if (h->ncams + h->nadded > h->ccams) {
            h->ccams = (h->ncams + h->nadded) * 2;
            h->cams = ch_realloc(h->cams, h->ccams * sizeof(*h->cams));
        }
        int64_t iv = interval_ms(h);
        for (size_t i = 0; i < h->nadded; i++) {
            ch_health__cam_t *c = h->added[i];
            c->since_ms = now;
            /* Spread over the first interval: 18,000 cameras found at start are not probed at
             * once, but at an even rate. */
            c->next_ms = iv > 0 ? now + rnd_below(h, iv) : INT64_MAX;
            h->by_state[CH_HEALTH_UNKNOWN]++;
            heap_push(h, c);
            h->cams[h->ncams++] = c;
        }
        h->nadded = 0;
        qsort(h->cams, h->ncams, sizeof(*h->cams), cam_cmp);
    }
}

void ch_health_restore(ch_health_t *h, int64_t camera_id, ch_health_state_t state, int64_t since_ms)
{
    ch_health__cam_t *c = ch_health__find(h, camera_id);
    if (c == NULL || (unsigned)state >= CH_HEALTH_NSTATES) {
        return;
    }
    h->by_state[c->state]--;
    h->by_state[state]++;
    c->state = state;
    c->since_ms = since_ms;
    if (state == CH_HEALTH_OFFLINE) {
        c->failures = h->cfg.fail_threshold; /* one success brings it back, one failure keeps */
    }
}

/* ---- probes -------------------------------------------------------------------------------- */

size_t ch_health_due(ch_health_t *h, int64_t now, ch_health_probe_req_t *out, size_t max)
{
    size_t n = 0;
    while (n < max && h->nheap > 0 && h->heap[0]->next_ms <= now &&
           h->in_flight < h->cfg.concurrency) {
        ch_health__cam_t *c = h->heap[0];
        c->running = 1;
        schedule(h, c, INT64_MAX);
        h->in_flight++;
        out[n].camera_id = c->id;
        out[n].url = c->url;
        out[n].user = c->user;
        out[n].password = c->password;
        out[n].tls_pin = c->tls_pin;
        n++;
    }
    return n;
}

void ch_health_probe_done(ch_health_t *h, int64_t camera_id, const ch_health_probe_result_t *r,
                          int64_t now)
{
    if (h->in_flight > 0) {
        h->in_flight--;
    }
    ch_health__cam_t *c = ch_health__find(h, camera_id);
    if (c == NULL || !c->running) {
        return; /* dropped from the set meanwhile */
    }
    c->running = 0;
    c->last_probe_ms = now;
    c->last_probe_ok = r->outcome == CH_HEALTH_PROBE_OK;
    char why[256];
    switch (r->outcome) {
    case CH_HEALTH_PROBE_OK:
        h->probes_ok++;
        c->failures = 0;
        c->last_ok_ms = now;
        c->latency_s = r->latency_s;
        h->latency_sum += r->latency_s;
        h->latency_count++;
        for (int i = 0; i < CH_HEALTH_NBUCKETS; i++) {
            if (r->latency_s <= ch_health_buckets[i]) {
                h->latency_le[i]++;
            }
        }
        copy_text(c->codec, sizeof(c->codec), r->codec);
        /* A playing pull is better evidence (it may say degraded): it decides while it lasts. */
        if (!(c->has_live && c->live.playing)) {
            transition(h, c, CH_HEALTH_ONLINE, now, "answered OPTIONS and DESCRIBE");
        }
        schedule(h, c, next_regular(h, now));
        return;
    case CH_HEALTH_PROBE_AUTH_FAILED:
        h->probes_auth_failed++;
        c->failures++;
        set_reason(c, r->reason);
        transition(h, c, CH_HEALTH_AUTH_FAILED, now, r->reason);
        schedule(h, c, next_regular(h, now));
        return;
    case CH_HEALTH_PROBE_FAILED:
    default:
        h->probes_failed++;
        c->failures++;
        if (c->failures >= h->cfg.fail_threshold) {
            snprintf(why, sizeof(why), "%u probes in a row failed: %s", c->failures,
                     r->reason != NULL ? r->reason : "?");
            set_reason(c, why);
            transition(h, c, CH_HEALTH_OFFLINE, now, why);
            schedule(h, c, next_regular(h, now));
        } else {
            /* Short of the threshold: look again soon, so one lost probe neither flaps the
             * state nor delays the verdict on a camera that is really gone by intervals. */
            set_reason(c, r->reason);
            int64_t iv = interval_ms(h);
            schedule(h, c, iv > 0 ? now + iv / 3 + rnd_below(h, iv / 10 + 1) : INT64_MAX);
        }
        return;
    }
}

/* ---- live pulls ---------------------------------------------------------------------------- */

void ch_health_live_begin(ch_health_t *h)
{
    h->live_gen++;
}

void ch_health_live(ch_health_t *h, const ch_health_live_t *l, int64_t now)
{
    ch_health__cam_t *c = ch_health__find(h, l->camera_id);
    if (c == NULL) {
        return;
    }
    int was_playing = c->has_live && c->live.playing;
    if (l->playing) {
        if (!was_playing) {
            /* Counted from now: the pull just started, give it a keyframe interval. */
            c->last_frame_ms = now;
            c->last_keyframe_ms = now;
        } else {
            if (l->packets_in != c->live.packets_in) {
                c->last_frame_ms = now;
            }
            if (l->keyframes != c->live.keyframes) {
                c->last_keyframe_ms = now;
            }
        }
    }
    c->live = *l;
    c->has_live = 1;
    c->live_seen = h->live_gen;
    if (!l->playing) {
        if (was_playing && !c->running && interval_ms(h) > 0) {
            schedule(h, c, now + 1000); /* the pull broke: a probe tells why */
        }
        return;
    }
    c->failures = 0;
    c->last_ok_ms = now;
    if (!c->running) {
        schedule(h, c, next_regular(h, now)); /* no probe while the pull says it all */
    }
    char why[256];
    int64_t key_age = now - c->last_keyframe_ms;
    if (h->cfg.min_fps > 0 && now - l->since_ms >= LIVE_SETTLE_MS &&
        l->fps < (double)h->cfg.min_fps) {
        snprintf(why, sizeof(why), "live pull at %.1f fps, under health.min_fps %u", l->fps,
                 h->cfg.min_fps);
        transition(h, c, CH_HEALTH_DEGRADED, now, why);
    } else if (key_age > (int64_t)h->cfg.keyframe_max_s * 1000) {
        snprintf(why, sizeof(why), "live pull without a keyframe for %lld s",
                 (long long)(key_age / 1000));
        transition(h, c, CH_HEALTH_DEGRADED, now, why);
    } else {
        transition(h, c, CH_HEALTH_ONLINE, now, "live pull playing");
    }
}

void ch_health_live_end(ch_health_t *h, int64_t now)
{
    CH_UNUSED(now);
    for (size_t i = 0; i < h->ncams; i++) {
        ch_health__cam_t *c = h->cams[i];
        if (c->has_live && c->live_seen != h->live_gen) {
            c->has_live = 0; /* the pull stopped (no viewer): probes take over */
        }
    }
}

/* ---- reading ------------------------------------------------------------------------------- */

static void fill_info(const ch_health__cam_t *c, ch_health_info_t *o)
{
    memset(o, 0, sizeof(*o));
    o->camera_id = c->id;
    o->agency_id = c->agency_id;
    o->state = c->state;
    o->since_ms = c->since_ms;
    o->last_probe_ms = c->last_probe_ms;
    o->last_ok_ms = c->last_ok_ms;
    o->last_probe_ok = c->last_probe_ok;
    o->latency_s = c->latency_s;
    o->failures = c->failures;
    copy_text(o->codec, sizeof(o->codec), c->codec);
    copy_text(o->reason, sizeof(o->reason), c->reason);
    o->next_probe_ms = c->next_ms == INT64_MAX ? 0 : c->next_ms;
    o->has_live = c->has_live;
    if (c->has_live) {
        o->live = c->live;
        o->last_frame_ms = c->last_frame_ms;
        o->last_keyframe_ms = c->last_keyframe_ms;
    }
}

int ch_health_get(const ch_health_t *h, int64_t camera_id, ch_health_info_t *out)
{
    const ch_health__cam_t *c = ch_health__find(h, camera_id);
    if (c == NULL) {
        return CH_ENOTFOUND;
    }
    fill_info(c, out);
    return 0;
}

ch_health_state_t ch_health_state_of(const ch_health_t *h, int64_t camera_id)
{
    const ch_health__cam_t *c = h != NULL ? ch_health__find(h, camera_id) : NULL;
    return c != NULL ? c->state : CH_HEALTH_UNKNOWN;
}

void ch_health_states(const ch_health_t *h, const int64_t *ids, size_t n, ch_health_state_t *out)
{
    for (size_t i = 0; i < n; i++) {
        out[i] = ch_health_state_of(h, ids[i]);
    }
}

void ch_health_each(const ch_health_t *h, int64_t agency_id,
                    int (*fn)(void *ud, const ch_health_info_t *i), void *ud)
{
    ch_health_info_t info;
    for (size_t i = 0; i < h->ncams; i++) {
        const ch_health__cam_t *c = h->cams[i];
        if (agency_id != 0 && c->agency_id != agency_id) {
            continue;
        }
        fill_info(c, &info);
        if (fn(ud, &info) != 0) {
            return;
        }
    }
}

void ch_health_snapshot(const ch_health_t *h, ch_health_snapshot_t *out)
{
    memset(out, 0, sizeof(*out));
    out->cameras = h->ncams;
    memcpy(out->by_state, h->by_state, sizeof(out->by_state));
    memcpy(out->latency_buckets, h->latency_le, sizeof(out->latency_buckets));
    out->latency_sum_s = h->latency_sum;
    out->latency_count = h->latency_count;
    out->probes_ok = h->probes_ok;
    out->probes_failed = h->probes_failed;
    out->probes_auth_failed = h->probes_auth_failed;
    out->in_flight = h->in_flight;
}

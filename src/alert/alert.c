/*
 * alert/alert.c: the rules engine. It keeps, in memory, what the rules need (which cameras are
 * down and since when, how many per provider, which alert is open for which subject) and, in
 * the store, the alerts themselves. See alert.h and docs/internals/alert.md.
 */
#include "alert/alert.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LISTENERS 8

/* ---- a small map from an id to three numbers ------------------------------------------------ */

/* Open addressing with linear probing; key 0 marks a free slot (ids start at 1). Entries are
 * never removed: a camera, provider or device stays known once heard of, which at city scale
 * is tens of thousands of 32-byte slots. */
typedef struct slot {
    int64_t key;
    int64_t a, b, c;
} slot_t;

typedef struct idmap {
    slot_t *slots;
    size_t cap; /* a power of two, or 0 */
    size_t count;
} idmap_t;

static size_t idmap_hash(int64_t key, size_t cap)
{
    uint64_t x = (uint64_t)key * 0x9E3779B97F4A7C15ull;
    return (size_t)(x >> 17) & (cap - 1);
}

/* The slot of key, created (zeroed) when absent. */
static slot_t *idmap_get(idmap_t *m, int64_t key)
{
    assert(key != 0);
    if (m->count * 2 >= m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        slot_t *ns = ch_calloc(ncap, sizeof(*ns));
        for (size_t i = 0; i < m->cap; i++) {
            if (m->slots[i].key != 0) {
                size_t j = idmap_hash(m->slots[i].key, ncap);
                while (ns[j].key != 0) {
                    j = (j + 1) & (ncap - 1);
                }
                ns[j] = m->slots[i];
            }
        }
        ch_free(m->slots);
        m->slots = ns;
        m->cap = ncap;
    }
    size_t i = idmap_hash(key, m->cap);
    while (m->slots[i].key != 0 && m->slots[i].key != key) {
        i = (i + 1) & (m->cap - 1);
    }
    if (m->slots[i].key == 0) {
        m->slots[i].key = key;
        m->count++;
    }
    return &m->slots[i];
}

/* ---- the engine ----------------------------------------------------------------------------- */

struct ch_alert_engine {
    ch_store_t *st;
    ch_alert_config_t cfg;
    /* cameras: a = provider id, b = down since (ms; 0 = not down), c = open camera-offline
     * alert id. providers: a = cameras down, c = open provider-down alert id. devices: c = open
     * device-offline alert id. */
    idmap_t cams, providers, devices;
    struct {
        ch_alert_listener_fn fn;
        void *ud;
    } listeners[MAX_LISTENERS];
    int nlisteners;
    uint64_t raised, resolved;
    int64_t cameras_down;
};

static int64_t now_ms(const ch_alert_engine_t *eng)
{
    return eng->cfg.clock != NULL ? eng->cfg.clock(eng->cfg.clock_ud) : ch_time_now_ms();
}

static void rfc3339_or_null(json_t *o, const char *key, int64_t ms)
{
    if (ms <= 0) {
        json_object_set_new(o, key, json_null());
        return;
    }
    char t[32];
    ch_time_format_rfc3339(ms, t);
    json_object_set_new(o, key, json_string(t));
}

json_t *ch_alert_to_json(const ch_alert_t *a)
{
    json_t *details = NULL;
    if (a->details != NULL) {
        details = json_loads(a->details, 0, NULL);
    }
    json_t *o = json_pack("{s:I, s:s, s:s, s:{s:s, s:I}, s:I, s:s, s:o, s:s}", "id",
                          (json_int_t)a->id, "kind", a->kind, "severity", a->severity, "subject",
                          "type", a->subject_type, "id", (json_int_t)a->subject_id, "agency_id",
                          (json_int_t)a->agency_id, "message", a->message, "details",
                          details != NULL ? details : json_object(), "state", a->status);
    rfc3339_or_null(o, "raised_at", a->raised_at);
    json_object_set_new(o, "acked_by", a->acked_by ? json_string(a->acked_by) : json_null());
    rfc3339_or_null(o, "acked_at", a->acked_at);
    json_object_set_new(o, "note", a->note ? json_string(a->note) : json_null());
    rfc3339_or_null(o, "resolved_at", a->resolved_at);
    json_object_set_new(o, "resolved_reason",
                        a->resolved_reason ? json_string(a->resolved_reason) : json_null());
    return o;
}

void ch_alert_publish(ch_alert_engine_t *eng, const json_t *alert)
{
    for (int i = 0; i < eng->nlisteners; i++) {
        eng->listeners[i].fn(eng->listeners[i].ud, alert);
    }
}

void ch_alert_unlisten(ch_alert_engine_t *eng, ch_alert_listener_fn fn, void *ud)
{
    for (int i = 0; i < eng->nlisteners; i++) {
        if (eng->listeners[i].fn == fn && eng->listeners[i].ud == ud) {
            memmove(&eng->listeners[i], &eng->listeners[i + 1],
                    (size_t)(eng->nlisteners - i - 1) * sizeof(eng->listeners[0]));
            eng->nlisteners--;
            return;
        }
    }
}

int ch_alert_listen(ch_alert_engine_t *eng, ch_alert_listener_fn fn, void *ud)
{
    if (eng->nlisteners == MAX_LISTENERS) {
        return CH_ETOOBIG;
    }
    eng->listeners[eng->nlisteners].fn = fn;
    eng->listeners[eng->nlisteners].ud = ud;
    eng->nlisteners++;
    return 0;
}

/*
 * Raises an alert: stores it, tells the listeners, and returns its id (0 when the store
 * failed, which is logged: the rule tries again at its next occasion for time rules, and the
 * input is lost for edge rules; an alerting system must not stop on a full disk). details is
 * stolen (may be NULL).
 */
static int64_t raise_alert(ch_alert_engine_t *eng, const char *kind, const char *severity,
                           const char *subject_type, int64_t subject_id, int64_t agency_id,
                           const char *message, json_t *details, int64_t at_ms)
{
    ch_alert_t a;
    memset(&a, 0, sizeof(a));
    a.kind = (char *)kind;
    a.severity = (char *)severity;
    a.subject_type = (char *)subject_type;
    a.subject_id = subject_id;
    a.agency_id = agency_id;
    a.message = (char *)message;
    a.details = details != NULL ? json_dumps(details, JSON_COMPACT) : NULL;
    a.status = "open";
    a.raised_at = at_ms;
    int rc = ch_store_alert_create(eng->st, &a);
    json_decref(details);
    if (rc != 0) {
        ch_log(CH_LOG_ERROR, "alert",
               "msg=\"alert not stored\" kind=%s subject=%s:%" PRId64 " error=\"%s\"", kind,
               subject_type, subject_id, ch_store_errmsg(eng->st));
        free(a.details);
        return 0;
    }
    eng->raised++;
    ch_log(CH_LOG_WARN, "alert",
           "msg=raised id=%" PRId64 " kind=%s severity=%s subject=%s:%" PRId64, a.id, kind,
           severity, subject_type, subject_id);
    json_t *j = ch_alert_to_json(&a);
    ch_alert_publish(eng, j);
    json_decref(j);
    free(a.details);
    return a.id;
}

/* Resolves alert id (its cause cleared at at_ms for reason) and tells the listeners. */
static void resolve_alert(ch_alert_engine_t *eng, int64_t id, const char *reason, int64_t at_ms)
{
    ch_alert_t a;
    int rc = ch_store_alert_get(eng->st, id, &a);
    if (rc != 0) {
        ch_log(CH_LOG_ERROR, "alert", "msg=\"alert to resolve not found\" id=%" PRId64, id);
        return;
    }
    if (strcmp(a.status, "resolved") != 0) {
        ch_free(a.status);
        a.status = ch_strdup("resolved");
        a.resolved_at = at_ms;
        ch_free(a.resolved_reason);
        a.resolved_reason = ch_strdup(reason);
        if (ch_store_alert_update(eng->st, &a) != 0) {
            ch_log(CH_LOG_ERROR, "alert", "msg=\"alert not resolved\" id=%" PRId64 " error=\"%s\"",
                   id, ch_store_errmsg(eng->st));
        } else {
            eng->resolved++;
            ch_log(CH_LOG_INFO, "alert", "msg=resolved id=%" PRId64 " kind=%s", id, a.kind);
            json_t *j = ch_alert_to_json(&a);
            ch_alert_publish(eng, j);
            json_decref(j);
        }
    }
    ch_alert_fini(&a);
}

/* Takes up the alerts an earlier run left unresolved, so their causes can still clear them. */
static int load_unresolved(ch_alert_engine_t *eng)
{
    static const char *const states[] = {"open", "acknowledged"};
    for (size_t s = 0; s < CH_ARRAY_SIZE(states); s++) {
        ch_store_filter_t f;
        memset(&f, 0, sizeof(f));
        f.status = states[s];
        f.limit = 1000;
        for (;;) {
            ch_alert_list_t l;
            int rc = ch_store_alert_list(eng->st, &f, &l);
            if (rc != 0) {
                return rc;
            }
            for (size_t i = 0; i < l.count; i++) {
                const ch_alert_t *a = &l.items[i];
                if (strcmp(a->kind, "camera-offline") == 0) {
                    slot_t *c = idmap_get(&eng->cams, a->subject_id);
                    c->a = a->agency_id;
                    c->c = a->id;
                } else if (strcmp(a->kind, "provider-down") == 0) {
                    idmap_get(&eng->providers, a->subject_id)->c = a->id;
                } else if (strcmp(a->kind, "device-offline") == 0) {
                    idmap_get(&eng->devices, a->subject_id)->c = a->id;
                }
            }
            int64_t next = l.next_id;
            ch_alert_list_free(&l);
            if (next == 0) {
                break;
            }
            f.after_id = next;
        }
    }
    return 0;
}

int ch_alert_new(ch_store_t *st, const ch_alert_config_t *cfg, ch_alert_engine_t **out)
{
    *out = NULL;
    if (st == NULL || cfg == NULL || cfg->offline_after_ms < 0 || cfg->provider_down_count < 0) {
        return CH_EINVAL;
    }
    ch_alert_engine_t *eng = ch_calloc(1, sizeof(*eng));
    eng->st = st;
    eng->cfg = *cfg;
    int rc = load_unresolved(eng);
    if (rc != 0) {
        ch_alert_free(eng);
        return rc;
    }
    *out = eng;
    return 0;
}

void ch_alert_free(ch_alert_engine_t *eng)
{
    if (eng == NULL) {
        return;
    }
    ch_free(eng->cams.slots);
    ch_free(eng->providers.slots);
    ch_free(eng->devices.slots);
    ch_free(eng);
}

/* ---- rules ---------------------------------------------------------------------------------- */

static int camera_state_down(const char *s)
{
    return s != NULL && (strcmp(s, "offline") == 0 || strcmp(s, "auth-failed") == 0);
}

static void raise_camera_offline(ch_alert_engine_t *eng, int64_t camera_id, slot_t *c, int64_t now)
{
    char msg[160], since[32];
    ch_time_format_rfc3339(c->b, since);
    int64_t mins = (now - c->b) / 60000;
    snprintf(msg, sizeof(msg), "camera %" PRId64 " has been down for %" PRId64 " min (since %s)",
             camera_id, mins, since);
    json_t *d = json_pack("{s:s, s:I}", "down_since", since, "offline_after_s",
                          (json_int_t)(eng->cfg.offline_after_ms / 1000));
    c->c = raise_alert(eng, "camera-offline", "warning", "camera", camera_id, c->a, msg, d, now);
}

void ch_alert_camera_state(ch_alert_engine_t *eng, int64_t camera_id, int64_t provider_id,
                           const char *old_state, const char *new_state, int64_t at_ms,
                           const char *reason)
{
    CH_UNUSED(old_state);
    if (camera_id <= 0 || new_state == NULL) {
        return;
    }
    slot_t *c = idmap_get(&eng->cams, camera_id);
    if (provider_id > 0) {
        c->a = provider_id;
    }
    int down = camera_state_down(new_state);
    int was_down = c->b != 0;
    if (strcmp(new_state, "unknown") == 0) {
        /* Nothing is known: neither a new outage nor the end of one. */
        return;
    }
    if (down && !was_down) {
        c->b = at_ms > 0 ? at_ms : 1;
        eng->cameras_down++;
        if (c->a > 0) {
            slot_t *p = idmap_get(&eng->providers, c->a);
            p->a++;
            if (eng->cfg.provider_down_count > 0 && p->a >= eng->cfg.provider_down_count &&
                p->c == 0) {
                char msg[160];
                snprintf(msg, sizeof(msg),
                         "%" PRId64 " cameras of provider %" PRId64 " are down at once", p->a,
                         c->a);
                json_t *d = json_pack("{s:I, s:I}", "cameras_down", (json_int_t)p->a, "threshold",
                                      (json_int_t)eng->cfg.provider_down_count);
                p->c = raise_alert(eng, "provider-down", "critical", "agency", c->a, c->a, msg, d,
                                   at_ms);
            }
        }
        if (eng->cfg.offline_after_ms == 0 && c->c == 0) {
            raise_camera_offline(eng, camera_id, c, at_ms);
        }
        ch_log(CH_LOG_DEBUG, "alert", "msg=\"camera down\" camera=%" PRId64 " reason=\"%s\"",
               camera_id, reason ? reason : "");
    } else if (!down && was_down) {
        c->b = 0;
        eng->cameras_down--;
        if (c->a > 0) {
            slot_t *p = idmap_get(&eng->providers, c->a);
            if (p->a > 0) {
                p->a--;
            }
            if (p->c != 0 && p->a < eng->cfg.provider_down_count) {
                resolve_alert(eng, p->c, "fewer cameras down than the threshold", at_ms);
                p->c = 0;
            }
        }
    }
    if (!down && c->c != 0) {
        /* Also after a restart: an alert left open by the last run clears here. */
        char why[64];
        snprintf(why, sizeof(why), "camera %s again", new_state);
        resolve_alert(eng, c->c, why, at_ms);
        c->c = 0;
    }
}

void ch_alert_device_state(ch_alert_engine_t *eng, int64_t device_id, int64_t agency_id,
                           const char *name, const char *old_state, const char *new_state,
                           int64_t at_ms, const char *reason)
{
    CH_UNUSED(old_state);
    if (device_id <= 0 || new_state == NULL) {
        return;
    }
    slot_t *d = idmap_get(&eng->devices, device_id);
    if (strcmp(new_state, "offline") == 0) {
        if (d->c == 0) {
            char msg[200];
            snprintf(msg, sizeof(msg), "device %" PRId64 "%s%.80s%s is offline (%s)", device_id,
                     name ? " (" : "", name ? name : "", name ? ")" : "",
                     reason ? reason : "no heartbeat");
            json_t *det = json_pack("{s:s?, s:s?}", "name", name, "reason", reason);
            d->c = raise_alert(eng, "device-offline", "warning", "device", device_id, agency_id,
                               msg, det, at_ms);
        }
    } else if (d->c != 0) {
        char why[64];
        snprintf(why, sizeof(why), "device %s again", new_state);
        resolve_alert(eng, d->c, why, at_ms);
        d->c = 0;
    }
}

void ch_alert_bell(ch_alert_engine_t *eng, int64_t device_id, int64_t agency_id, const char *name,
                   int located, double lat, double lon, int64_t at_ms, json_t *cameras,
                   int64_t *alert_id)
{
    json_t *items = cameras != NULL ? json_object_get(cameras, "cameras") : NULL;
    size_t n = json_is_array(items) ? json_array_size(items) : 0;
    char msg[240];
    snprintf(msg, sizeof(msg), "emergency bell %" PRId64 "%s%.80s%s pressed: %zu camera%s see%s it",
             device_id, name ? " (" : "", name ? name : "", name ? ")" : "", n, n == 1 ? "" : "s",
             n == 1 ? "s" : "");
    json_t *d = json_pack("{s:s?, s:b}", "name", name, "located", located);
    json_object_set_new(d, "cameras", json_is_array(items) ? json_incref(items) : json_array());
    if (located) {
        json_object_set_new(d, "lat", json_real(lat));
        json_object_set_new(d, "lon", json_real(lon));
    }
    json_decref(cameras);
    int64_t id = raise_alert(eng, "bell-pressed", "critical", "device", device_id, agency_id, msg,
                             d, at_ms > 0 ? at_ms : now_ms(eng));
    if (alert_id != NULL) {
        *alert_id = id;
    }
}

void ch_alert_tick(ch_alert_engine_t *eng)
{
    if (eng->cameras_down == 0) {
        return;
    }
    int64_t now = now_ms(eng);
    for (size_t i = 0; i < eng->cams.cap; i++) {
        slot_t *c = &eng->cams.slots[i];
        if (c->key != 0 && c->b != 0 && c->c == 0 && now - c->b > eng->cfg.offline_after_ms) {
            raise_camera_offline(eng, c->key, c, now);
        }
    }
}

/* ---- queries -------------------------------------------------------------------------------- */

int ch_alert_get(ch_alert_engine_t *eng, int64_t id, json_t **out)
{
    *out = NULL;
    ch_alert_t a;
    int rc = ch_store_alert_get(eng->st, id, &a);
    if (rc != 0) {
        return rc;
    }
    *out = ch_alert_to_json(&a);
    ch_alert_fini(&a);
    return 0;
}

int ch_alert_ack(ch_alert_engine_t *eng, int64_t id, const char *by, const char *note, json_t **out)
{
    *out = NULL;
    ch_alert_t a;
    int rc = ch_store_alert_get(eng->st, id, &a);
    if (rc != 0) {
        return rc;
    }
    if (a.acked_at != 0) {
        ch_alert_fini(&a);
        return CH_ECONFLICT;
    }
    if (strcmp(a.status, "open") == 0) {
        ch_free(a.status);
        a.status = ch_strdup("acknowledged");
    }
    a.acked_by = ch_strdup(by);
    a.acked_at = now_ms(eng);
    ch_free(a.note);
    a.note = ch_strdup(note);
    rc = ch_store_alert_update(eng->st, &a);
    if (rc == 0) {
        *out = ch_alert_to_json(&a);
    }
    ch_alert_fini(&a);
    return rc;
}

json_t *ch_alert_stats(ch_alert_engine_t *eng)
{
    int64_t counts[2] = {0, 0};
    static const char *const states[] = {"open", "acknowledged"};
    for (int i = 0; i < 2; i++) {
        ch_store_filter_t f;
        memset(&f, 0, sizeof(f));
        f.status = states[i];
        f.limit = 1;
        ch_alert_list_t l;
        if (ch_store_alert_list(eng->st, &f, &l) == 0) {
            counts[i] = l.total;
            ch_alert_list_free(&l);
        }
    }
    return json_pack("{s:I, s:I, s:I, s:I, s:I}", "open", (json_int_t)counts[0], "acknowledged",
                     (json_int_t)counts[1], "raised", (json_int_t)eng->raised, "resolved",
                     (json_int_t)eng->resolved, "cameras_down", (json_int_t)eng->cameras_down);
}

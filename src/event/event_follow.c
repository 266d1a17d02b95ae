/*
 * event/event_follow.c: the gate's live grants follow the store's change feed (see event.h).
 * Whatever writes a grant (the engine on the loop's handle, another handle the feed sees), the
 * committed row decides: active is live, anything else (or no row) is ended. The gate's set
 * makes a repeated notice harmless, so an update that leaves a grant live (an extension) is
 * told as a start the gate already holds.
 *
 * The engine's live map follows the same feed (ch_event__follow_store): a live grant whose row
 * is no longer active (or gone), a live event whose row is no longer active or pending, leave
 * it, whoever wrote them. The engine's own ends are told to it
 * too, at their COMMIT: it finds them gone already, so ending is done once either way.
 */
#include "event/event_internal.h"

#include <stdlib.h>
#include <string.h>

struct ch_event_follow {
    ch_store_t *st;
    ch_event_gate_t *gate;
    ch_event_follow_fn fn;
    void *ud;
    ch_store_watch_t *watch;
};

/* The gate follows the notice, then fn hears it with the hold's change. */
static void tell(ch_event_follow_t *f, const ch_event_notice_t *n)
{
    int hold = ch_event_gate_notice(f->gate, n);
    if (f->fn != NULL) {
        f->fn(f->ud, n, hold);
    }
}

/* Reads grant id into *g (zeroed first) and its notice into *n: STARTED while the row is
 * active, else ENDED (status "gone" when no row). Returns the read's code. */
static int grant_notice(ch_store_t *st, int64_t id, ch_grant_t *g, ch_event_notice_t *n)
{
    memset(g, 0, sizeof(*g));
    *n = (ch_event_notice_t){.kind = CH_EVENT_GRANT_ENDED, .grant_id = id, .status = "gone"};
    int rc = ch_store_grant_get(st, id, g);
    if (rc == 0) {
        n->event_id = g->event_id;
        n->camera_id = g->camera_id;
        n->agency_id = g->agency_id;
        n->status = g->status;
        if (g->status != NULL && strcmp(g->status, "active") == 0) {
            n->kind = CH_EVENT_GRANT_STARTED;
        }
    }
    return rc;
}

/* The notice of grant id as the store has it now. */
static void tell_grant(ch_event_follow_t *f, int64_t id)
{
    ch_grant_t g;
    ch_event_notice_t n;
    (void)grant_notice(f->st, id, &g, &n);
    tell(f, &n);
    ch_grant_fini(&g);
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int has_id(const int64_t *ids, size_t n, int64_t id)
{
    return n > 0 && bsearch(&id, ids, n, sizeof(*ids), cmp_id) != NULL;
}

/* The ids of the store's active grants into *ids (*n of them, in id order; ch_free it); fn,
 * when given, hears each grant. 0 or the store's code. */
static int active_grants(ch_store_t *st, void (*fn)(void *ud, const ch_grant_t *g), void *ud,
                         int64_t **ids, size_t *n)
{
    ch_store_filter_t q = {.status = "active", .limit = 1000};
    int64_t *active = NULL;
    *n = 0;
    for (;;) {
        ch_grant_list_t page;
        int rc = ch_store_grant_list(st, &q, &page);
        if (rc != 0) {
            ch_free(active);
            *ids = NULL;
            *n = 0;
            return rc;
        }
        active = ch_realloc(active, (*n + page.count + 1) * sizeof(*active));
        for (size_t i = 0; i < page.count; i++) {
            if (fn != NULL) {
                fn(ud, &page.items[i]);
            }
            active[(*n)++] = page.items[i].id;
        }
        q.after_id = page.next_id;
        ch_grant_list_free(&page);
        if (q.after_id == 0) {
            *ids = active;
            return 0;
        }
    }
}

static void tell_started(void *ud, const ch_grant_t *g)
{
    ch_event_notice_t sn = {CH_EVENT_GRANT_STARTED, g->id,        g->event_id,
                            g->camera_id,           g->agency_id, g->status};
    tell(ud, &sn);
}

/* Every active grant of the store starts (the gate keeps what it holds); then every grant the
 * gate holds that is no longer active ends. */
static int reread(ch_event_follow_t *f)
{
    int64_t *active = NULL;
    size_t n = 0;
    int rc = active_grants(f->st, tell_started, f, &active, &n);
    if (rc != 0) {
        return rc;
    }
    int64_t *held = NULL;
    size_t nheld = ch_event_gate_ids(f->gate, &held);
    for (size_t i = 0; i < nheld; i++) {
        if (!has_id(active, n, held[i])) {
            tell_grant(f, held[i]);
        }
    }
    ch_free(held);
    ch_free(active);
    return 0;
}

static void on_change(void *ud, const ch_store_change_t *c)
{
    ch_event_follow_t *f = ud;
    if (c->id > 0) {
        tell_grant(f, c->id);
    } else if (reread(f) != 0) {
        ch_log(CH_LOG_ERROR, "event", "msg=\"live grants not reread\" error=\"%s\"",
               ch_store_errmsg(f->st));
    }
}

int ch_event_follow_grants(ch_store_t *st, ch_event_gate_t *gate, ch_event_follow_fn fn, void *ud,
                           ch_event_follow_t **out)
{
    ch_event_follow_t *f = ch_calloc(1, sizeof(*f));
    f->st = st;
    f->gate = gate;
    f->fn = fn;
    f->ud = ud;
    int rc = reread(f);
    if (rc == 0) {
        rc = ch_store_watch(st, CH_STORE_T_GRANTS, on_change, f, &f->watch);
    }
    if (rc != 0) {
        ch_free(f);
        f = NULL;
    }
    *out = f;
    return rc;
}

void ch_event_follow_end(ch_event_follow_t *f)
{
    if (f != NULL) {
        ch_store_unwatch(f->st, f->watch);
        ch_free(f);
    }
}

/* ---- the engine's live map ----------------------------------------------------------------- */

/* Grant id leaves the live map when its row is no longer active (or gone); a store failure
 * keeps it (the expiry ends it). */
static void engine_grant(ch_event_engine_t *eng, int64_t id)
{
    if (ch_event__live_grant(eng, id) == NULL) {
        return;
    }
    ch_grant_t g;
    ch_event_notice_t n;
    int rc = grant_notice(eng->cfg.st, id, &g, &n);
    if ((rc == 0 || rc == CH_ENOTFOUND) && n.kind == CH_EVENT_GRANT_ENDED) {
        ch_event__ended(eng, &g);
    }
    ch_grant_fini(&g);
}

/* Event id leaves the live map when its row is no longer active or pending (or gone). */
static void engine_event(ch_event_engine_t *eng, int64_t id)
{
    if (ch_event__live_event(eng, id) == NULL) {
        return;
    }
    ch_event_t ev;
    memset(&ev, 0, sizeof(ev));
    int rc = ch_store_event_get(eng->cfg.st, id, &ev);
    if (rc == CH_ENOTFOUND || (rc == 0 && !ch_event__is_live(&ev))) {
        ch_event__live_drop_event(eng, id);
    }
    ch_event_fini(&ev);
}

/* Id 0: every live grant that is not among the active rows is read again; every live event
 * is. The ids are copied first: leaving reorders the map. */
static void engine_reread(ch_event_engine_t *eng, unsigned table)
{
    if (table == CH_STORE_T_EVENTS) {
        size_t n = eng->nevents;
        int64_t *ids = ch_malloc((n + 1) * sizeof(*ids));
        for (size_t i = 0; i < n; i++) {
            ids[i] = eng->events[i].id;
        }
        for (size_t i = 0; i < n; i++) {
            engine_event(eng, ids[i]);
        }
        ch_free(ids);
        return;
    }
    int64_t *active = NULL;
    size_t nactive = 0;
    if (active_grants(eng->cfg.st, NULL, NULL, &active, &nactive) != 0) {
        ch_log(CH_LOG_ERROR, "event", "msg=\"live map not reread\" error=\"%s\"",
               ch_store_errmsg(eng->cfg.st));
        return;
    }
    size_t n = eng->ngrants;
    int64_t *ids = ch_malloc((n + 1) * sizeof(*ids));
    for (size_t i = 0; i < n; i++) {
        ids[i] = eng->grants[i].id;
    }
    for (size_t i = 0; i < n; i++) {
        if (!has_id(active, nactive, ids[i])) {
            engine_grant(eng, ids[i]);
        }
    }
    ch_free(ids);
    ch_free(active);
}

static void on_engine_change(void *ud, const ch_store_change_t *c)
{
    ch_event_engine_t *eng = ud;
    if (c->id == 0) {
        engine_reread(eng, c->table);
    } else if (c->table == CH_STORE_T_GRANTS) {
        engine_grant(eng, c->id);
    } else {
        engine_event(eng, c->id);
    }
}

int ch_event__follow_store(ch_event_engine_t *eng)
{
    if (eng->watch != NULL) {
        return 0;
    }
    return ch_store_watch(eng->cfg.st, CH_STORE_T_GRANTS | CH_STORE_T_EVENTS, on_engine_change, eng,
                          &eng->watch);
}

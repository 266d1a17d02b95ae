/*
 * event/event_follow.c: the gate's live grants follow the store's change feed (see event.h).
 * Whatever writes a grant (the engine on the loop's handle, another handle the feed sees), the
 * committed row decides: active is live, anything else (or no row) is ended. The gate's set
 * makes a repeated notice harmless, so an update that leaves a grant live (an extension) is
 * told as a start the gate already holds.
 */
#include "event/event.h"

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

/* The notice of grant id as the store has it now. */
static void tell_grant(ch_event_follow_t *f, int64_t id)
{
    ch_grant_t g;
    memset(&g, 0, sizeof(g));
    ch_event_notice_t n = {.kind = CH_EVENT_GRANT_ENDED, .grant_id = id, .status = "gone"};
    if (ch_store_grant_get(f->st, id, &g) == 0) {
        n.event_id = g.event_id;
        n.camera_id = g.camera_id;
        n.agency_id = g.agency_id;
        n.status = g.status;
        if (g.status != NULL && strcmp(g.status, "active") == 0) {
            n.kind = CH_EVENT_GRANT_STARTED;
        }
    }
    tell(f, &n);
    ch_grant_fini(&g);
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Every active grant of the store starts (the gate keeps what it holds); then every grant the
 * gate holds that is no longer active ends. The ids listed come in id order. */
static int reread(ch_event_follow_t *f)
{
    ch_store_filter_t q = {.status = "active", .limit = 1000};
    int64_t *active = NULL;
    size_t n = 0;
    for (;;) {
        ch_grant_list_t page;
        int rc = ch_store_grant_list(f->st, &q, &page);
        if (rc != 0) {
            ch_free(active);
            return rc;
        }
        active = ch_realloc(active, (n + page.count + 1) * sizeof(*active));
        for (size_t i = 0; i < page.count; i++) {
            const ch_grant_t *g = &page.items[i];
            ch_event_notice_t sn = {CH_EVENT_GRANT_STARTED, g->id,        g->event_id,
                                    g->camera_id,           g->agency_id, g->status};
            tell(f, &sn);
            active[n++] = g->id;
        }
        q.after_id = page.next_id;
        ch_grant_list_free(&page);
        if (q.after_id == 0) {
            break;
        }
    }
    int64_t *held = NULL;
    size_t nheld = ch_event_gate_ids(f->gate, &held);
    for (size_t i = 0; i < nheld; i++) {
        if (n == 0 || bsearch(&held[i], active, n, sizeof(*active), cmp_id) == NULL) {
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

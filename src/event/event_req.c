/*
 * event/event_req.c: the operations of /api/v1/events as requests (event.h): made on the loop
 * with a snapshot of what they read besides their rows, run on any thread with that thread's
 * store handle (the store worker's), finished on the loop. The synchronous calls
 * (ch_event_decide, ...) are the three steps in one, on the engine's own handle.
 */
#include "event/event_internal.h"

#include <assert.h>
#include <sodium.h>
#include <string.h>

struct ch_event_req {
    ch_event_req_kind_t kind;
    ch_event_actor_t who; /* who.actor is actor */
    char *actor;
    int64_t id;
    int approve;
    char *text;
    int64_t duration_s;
    double lat, lon;
    ch_store_filter_t list; /* list.status is status */
    char *status;
    /* The snapshot (ch_event__ctx_t points into it). */
    ch_event_config_t cfg; /* the engine's, without its store handle */
    char crash_at[64];
    ch_policy_t *policy; /* a reference (ch_policy_ref), or NULL */
    ch_geo_t *geo;       /* a reference for a move (ch_geo_ref), or NULL */
    uint8_t sk[64];
    int has_sk;
    char *rtsp_base, *ws_base;
    int64_t now;
    int has_placed; /* a move's subject was placed at placed_at (the live event's) */
    int64_t placed_at;
    /* What run leaves for finish. */
    int ran;
    int rc;
    ch_fault_t err;
    ch_event__after_t after;
    ch_event_answer_t answer;
};

/* The checks of an operation that read no row, in the order the operation has always made
 * them: refused here, nothing runs. */
static int check_args(ch_event_engine_t *eng, const ch_event_actor_t *who,
                      const ch_event_req_args_t *a, ch_fault_t *err)
{
    switch (a->kind) {
    case CH_EVENT_REQ_GET:
    case CH_EVENT_REQ_LIST:
    case CH_EVENT_REQ_REVOKE_GRANT:
        return 0; /* who may see or revoke depends on the rows */
    case CH_EVENT_REQ_DECIDE:
        return ch_event_may(who, CH_EVENT_OP_DECIDE, err);
    case CH_EVENT_REQ_EXTEND:
        if (a->duration_s < 0) {
            return ch_event__fail(err, CH_FAULT_INVALID, NULL, "duration_s",
                                  "duration_s must be a positive integer");
        }
        return ch_event_may(who, CH_EVENT_OP_EXTEND, err);
    case CH_EVENT_REQ_CLOSE:
        return ch_event_may(who, CH_EVENT_OP_CLOSE, err);
    case CH_EVENT_REQ_REVOKE:
        return ch_event_may(who, CH_EVENT_OP_REVOKE, err);
    case CH_EVENT_REQ_MOVE: {
        int rc = ch_event_may(who, CH_EVENT_OP_MOVE, err);
        return rc != 0 ? rc : ch_event__check_place(&eng->cfg, a->lat, a->lon, "position", err);
    }
    }
    return ch_event__fail(err, CH_FAULT_INTERNAL, NULL, NULL, "no such operation");
}

int ch_event_req_new(ch_event_engine_t *eng, const ch_event_actor_t *who,
                     const ch_event_req_args_t *args, ch_event_req_t **out, ch_fault_t *err)
{
    *out = NULL;
    int rc = check_args(eng, who, args, err);
    if (rc != 0) {
        return rc;
    }
    ch_event_req_t *r = ch_calloc(1, sizeof(*r));
    r->kind = args->kind;
    r->actor = ch_strdup(who->actor != NULL ? who->actor : "");
    r->who = (ch_event_actor_t){r->actor, who->role, who->agency_id};
    r->id = args->id;
    r->approve = args->approve;
    r->text = args->text != NULL ? ch_strdup(args->text) : NULL;
    r->duration_s = args->duration_s;
    r->lat = args->lat;
    r->lon = args->lon;
    if (args->list != NULL) {
        r->list = *args->list;
        r->status = args->list->status != NULL ? ch_strdup(args->list->status) : NULL;
        r->list.status = r->status;
    }
    r->cfg = eng->cfg;
    r->cfg.st = NULL; /* the loop's: never the running thread's */
    r->cfg.rtsp_base = r->cfg.ws_base = NULL;
    r->cfg.clock = NULL;
    r->cfg.clock_ud = NULL;
    memcpy(r->crash_at, eng->crash_at, sizeof(r->crash_at));
    r->policy = ch_policy_ref(eng->policy);
    if (r->kind == CH_EVENT_REQ_MOVE && eng->geo != NULL) {
        /* Only a move selects cameras; a reference makes the owner copy the index before it
         * changes it (ch_geo_unshare), so the others take none. */
        r->geo = ch_geo_ref(eng->geo);
    }
    if (eng->has_sk) {
        memcpy(r->sk, eng->sk, sizeof(r->sk));
        r->has_sk = 1;
    }
    r->rtsp_base = ch_strdup(eng->rtsp_base);
    r->ws_base = ch_strdup(eng->ws_base);
    r->now = ch_event__now_ms(eng);
    const live_event_t *le = r->kind == CH_EVENT_REQ_MOVE ? ch_event__live_event(eng, r->id) : NULL;
    if (le != NULL) {
        r->has_placed = 1;
        r->placed_at = le->placed_at;
    }
    *out = r;
    return 0;
}

int ch_event_req_run(ch_event_req_t *r, ch_store_t *st)
{
    ch_event__ctx_t cx = {.st = st,
                          .cfg = &r->cfg,
                          .crash_at = r->crash_at,
                          .policy = r->policy,
                          .geo = r->geo,
                          .sk = r->has_sk ? r->sk : NULL,
                          .rtsp_base = r->rtsp_base,
                          .ws_base = r->ws_base,
                          .now = r->now};
    ch_event_answer_t *a = &r->answer;
    const ch_event_actor_t *who = &r->who;
    ch_fault_t *err = &r->err;
    int rc;
    assert(!r->ran);
    memset(err, 0, sizeof(*err));
    /* A decision takes the write lock before it reads its rows (BEGIN IMMEDIATE on SQLite):
     * what it checks (the event still live, still pending) is what it writes over, whoever
     * else writes meanwhile (the loop's expiry tick, another request, another handle). */
    int writes = r->kind != CH_EVENT_REQ_GET && r->kind != CH_EVENT_REQ_LIST;
    if (writes && ch_store_begin(st) != 0) {
        rc = ch_event__fail_store(st, err);
        goto out;
    }
    cx.in_write = writes;
    switch (r->kind) {
    case CH_EVENT_REQ_GET:
        rc = ch_event__get(&cx, who, r->id, &a->event, err);
        break;
    case CH_EVENT_REQ_LIST:
        rc = ch_event__list(&cx, who, &r->list, &a->page, err);
        break;
    case CH_EVENT_REQ_DECIDE:
        rc = ch_event__decide(&cx, who, r->id, r->approve, r->text, &r->after, &a->event, err);
        break;
    case CH_EVENT_REQ_EXTEND:
        rc = ch_event__extend(&cx, who, r->id, r->duration_s, &r->after, &a->event, err);
        break;
    case CH_EVENT_REQ_CLOSE:
    case CH_EVENT_REQ_REVOKE:
        rc = ch_event__close_or_revoke(&cx, who, r->id, r->text, r->kind == CH_EVENT_REQ_REVOKE,
                                       &r->after, &a->event, err);
        break;
    case CH_EVENT_REQ_REVOKE_GRANT:
        rc = ch_event__revoke_grant(&cx, who, r->id, r->text, &r->after, &a->grant, err);
        break;
    case CH_EVENT_REQ_MOVE:
        rc = ch_event__move(&cx, who, r->id, r->lat, r->lon, r->has_placed, r->placed_at, &r->after,
                            &a->event, err);
        break;
    default:
        rc = ch_event__fail(err, CH_FAULT_INTERNAL, NULL, NULL, "no such operation");
        break;
    }
    if (rc != 0) {
        (void)ch_store_rollback(st); /* a refusal after its reads (none open: nothing done) */
    }
out:
    r->ran = 1;
    r->rc = rc;
    return rc;
}

int ch_event_req_finish(ch_event_engine_t *eng, ch_event_req_t *r, ch_event_answer_t *out,
                        ch_fault_t *err)
{
    assert(r->ran);
    ch_event__after_apply(eng, &r->after);
    ch_event__after_fini(&r->after);
    *out = r->answer;
    memset(&r->answer, 0, sizeof(r->answer));
    if (r->rc != 0) {
        ch_event_answer_fini(out);
        *err = r->err;
    }
    return r->rc;
}

void ch_event_req_free(ch_event_req_t *r)
{
    if (r == NULL) {
        return;
    }
    ch_event__after_fini(&r->after);
    ch_event_answer_fini(&r->answer);
    ch_policy_free(r->policy);
    ch_geo_free(r->geo);
    sodium_memzero(r->sk, sizeof(r->sk));
    ch_free(r->actor);
    ch_free(r->text);
    ch_free(r->status);
    ch_free(r->rtsp_base);
    ch_free(r->ws_base);
    ch_free(r);
}

ch_event_req_kind_t ch_event_req_kind(const ch_event_req_t *r)
{
    return r->kind;
}

void ch_event_answer_fini(ch_event_answer_t *a)
{
    if (a == NULL) {
        return;
    }
    ch_event_view_fini(&a->event);
    ch_event_grant_view_fini(&a->grant);
    ch_event_page_fini(&a->page);
}

/* ---- the synchronous calls ------------------------------------------------------------------ */

/* new, run on the engine's handle, finish: *a is the answer (zeroed on a refusal). */
static int run_here(ch_event_engine_t *eng, const ch_event_actor_t *who,
                    const ch_event_req_args_t *args, ch_event_answer_t *a, ch_fault_t *err)
{
    ch_event_req_t *r;
    memset(a, 0, sizeof(*a));
    int rc = ch_event_req_new(eng, who, args, &r, err);
    if (rc != 0) {
        return rc;
    }
    (void)ch_event_req_run(r, eng->cfg.st);
    rc = ch_event_req_finish(eng, r, a, err);
    ch_event_req_free(r);
    return rc;
}

/* One that answers an event. */
static int answer_event(ch_event_engine_t *eng, const ch_event_actor_t *who,
                        const ch_event_req_args_t *args, ch_event_view_t *out, ch_fault_t *err)
{
    ch_event_answer_t a;
    int rc = run_here(eng, who, args, &a, err);
    *out = a.event;
    return rc;
}

int ch_event_get(ch_event_engine_t *eng, const ch_event_actor_t *who, int64_t id,
                 ch_event_view_t *out, ch_fault_t *err)
{
    ch_event_req_args_t args = {.kind = CH_EVENT_REQ_GET, .id = id};
    return answer_event(eng, who, &args, out, err);
}

int ch_event_list(ch_event_engine_t *eng, const ch_event_actor_t *who, const ch_store_filter_t *f,
                  ch_event_page_t *out, ch_fault_t *err)
{
    ch_event_req_args_t args = {.kind = CH_EVENT_REQ_LIST, .list = f};
    ch_event_answer_t a;
    int rc = run_here(eng, who, &args, &a, err);
    *out = a.page;
    return rc;
}

int ch_event_decide(ch_event_engine_t *eng, const ch_event_actor_t *who, int64_t id, int approve,
                    const char *note, ch_event_view_t *out, ch_fault_t *err)
{
    ch_event_req_args_t args = {
        .kind = CH_EVENT_REQ_DECIDE, .id = id, .approve = approve, .text = note};
    return answer_event(eng, who, &args, out, err);
}

int ch_event_extend(ch_event_engine_t *eng, const ch_event_actor_t *who, int64_t id,
                    int64_t duration_s, ch_event_view_t *out, ch_fault_t *err)
{
    ch_event_req_args_t args = {.kind = CH_EVENT_REQ_EXTEND, .id = id, .duration_s = duration_s};
    return answer_event(eng, who, &args, out, err);
}

int ch_event_close(ch_event_engine_t *eng, const ch_event_actor_t *who, int64_t id,
                   const char *reason, ch_event_view_t *out, ch_fault_t *err)
{
    ch_event_req_args_t args = {.kind = CH_EVENT_REQ_CLOSE, .id = id, .text = reason};
    return answer_event(eng, who, &args, out, err);
}

int ch_event_revoke(ch_event_engine_t *eng, const ch_event_actor_t *who, int64_t id,
                    const char *reason, ch_event_view_t *out, ch_fault_t *err)
{
    ch_event_req_args_t args = {.kind = CH_EVENT_REQ_REVOKE, .id = id, .text = reason};
    return answer_event(eng, who, &args, out, err);
}

int ch_event_revoke_grant(ch_event_engine_t *eng, const ch_event_actor_t *who, int64_t grant_id,
                          const char *reason, ch_event_grant_view_t *out, ch_fault_t *err)
{
    ch_event_req_args_t args = {.kind = CH_EVENT_REQ_REVOKE_GRANT, .id = grant_id, .text = reason};
    ch_event_answer_t a;
    int rc = run_here(eng, who, &args, &a, err);
    *out = a.grant;
    return rc;
}

int ch_event_move(ch_event_engine_t *eng, const ch_event_actor_t *who, int64_t id, double lat,
                  double lon, ch_event_view_t *out, ch_fault_t *err)
{
    ch_event_req_args_t args = {.kind = CH_EVENT_REQ_MOVE, .id = id, .lat = lat, .lon = lon};
    return answer_event(eng, who, &args, out, err);
}

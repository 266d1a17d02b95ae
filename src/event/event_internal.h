/*
 * event/event_internal.h: what the engine's files share (not for other modules). The engine's
 * files: event.c (life, records, refusals, metrics), event_live.c (the live map),
 * event_select.c (camera selection), event_view.c (the answers' typed views), event_open.c
 * (opening and its batch), event_lifecycle.c (reading, approval, extension, close,
 * revocation, moves), event_expiry.c (expiry, release, cameras taken away), event_restore.c
 * (the start), event_follow.c (the live map following the store's feed, beside the gate's).
 * The gate, the tokens and the ledger are apart (event_gate.c, event_token.c, event_ledger.c).
 */
#ifndef CH_EVENT_INTERNAL_H
#define CH_EVENT_INTERNAL_H

#include "event/event.h"

typedef struct live_grant {
    int64_t id, event_id, camera_id, agency_id;
    int64_t expires_at;
} live_grant_t;

typedef struct live_event {
    int64_t id;
    int64_t expires_at; /* 0 while pending */
    int64_t placed_at;  /* when the subject was at the event's position (the speed check) */
} live_event_t;

/* Opens of one service by outcome, for GET /metrics (services come from the services file,
 * so the list stays as short as the file). */
enum { OUT_OPENED, OUT_PENDING, OUT_DENIED, OUT_FAILED, OUT_COUNT };

typedef struct service_count {
    char service[72];
    uint64_t n[OUT_COUNT];
} service_count_t;

struct ch_event_engine {
    ch_event_config_t cfg;
    char *rtsp_base, *ws_base;
    uint8_t sk[64];
    int has_sk;
    const ch_policy_t *policy;
    ch_geo_t *geo; /* borrowed; referenced by path queries (ch_event_open_prepare) */
    live_grant_t *grants;
    size_t ngrants, gcap;
    uint32_t *map;              /* grant id -> position + 1 (see live_add_grant) */
    int batch;                  /* a batch transaction of opens is open (ch_event_batch_begin) */
    ch_event_pending_t **opens; /* the opens begun in the batch, handed back at its end */
    size_t nopens, copens;
    size_t mcap;
    live_event_t *events;
    size_t nevents, ecap;
    ch_store_watch_t *watch;   /* the live map follows the store's feed (event_follow.c) */
    ch_store_worker_t *worker; /* the expiry's writes go there (ch_event_set_store_worker) */
    int expiring;              /* a pass of the expiry is on the worker */
    service_count_t *counts;   /* opens by service and outcome */
    size_t ncounts, ccounts;
    char crash_at[64]; /* a test-only crash point (crash_point); empty: none */
};

typedef struct choice {
    ch_geo_result_t r;
    int64_t provider_id;
} choice_t;

/*
 * What an operation reads besides its rows: the store handle of the thread that runs it, the
 * engine's immutable configuration and a snapshot of the rest (the policy, the geo index, the
 * key, the URL bases, the time), so that the store half of an operation can run on another
 * thread (the store worker) with another handle. ch_event__ctx_of borrows the engine's own,
 * on the loop; a request (ch_event_req_t, event_req.c) holds references and copies of its own.
 */
typedef struct ch_event__ctx {
    ch_store_t *st;               /* the running thread's handle */
    const ch_event_config_t *cfg; /* audit, bounds, grace; never cfg->st (the loop's) */
    const char *crash_at;         /* the test-only crash point, or "" */
    const ch_policy_t *policy;    /* NULL: no services file */
    ch_geo_t *geo;                /* NULL: no index (or not needed by the operation) */
    const uint8_t *sk;            /* 64 bytes, or NULL: no tokens */
    const char *rtsp_base, *ws_base;
    int64_t now;  /* the operation's time, ms since the epoch */
    int in_write; /* the operation's write transaction is open already (ch_event__begin) */
} ch_event__ctx_t;

/* Begins an operation's write transaction, unless its request took it before the operation's
 * first read (ch_event_req_run: the rows read are then the ones written over). 0 or the
 * store's code. */
int ch_event__begin(const ch_event__ctx_t *cx) CH_MUST_CHECK;

/* The engine's own, borrowed, with its handle and its clock read now. Loop. */
void ch_event__ctx_of(ch_event_engine_t *eng, ch_event__ctx_t *cx);

/*
 * What a committed operation leaves for the loop to do to the live map (the feed removes what
 * ended, but only the engine adds, and only it knows a new expiry or a placing): applied by
 * ch_event__after_apply, on the loop, once the store half has committed.
 */
typedef struct ch_event__after {
    int committed;    /* the operation's change is in the store: apply the rest */
    int64_t event_id; /* 0: the event stays as the live map has it */
    int event_live;   /* with event_id: 1 live until expires_at; 0 out of the live map */
    int64_t expires_at;
    ch_grant_list_t grants; /* written: an active one takes its expiry, the others leave */
    int join;               /* an active grant not in the live map joins it (approve, move) */
    int has_placed;         /* the subject was placed at placed_at (move) */
    int64_t placed_at;
} ch_event__after_t;

void ch_event__after_apply(ch_event_engine_t *eng, const ch_event__after_t *a);
void ch_event__after_fini(ch_event__after_t *a);

/* A refusal: fills e and returns the negative code of its kind (CH_EINVAL, CH_EPERM,
 * CH_ENOTFOUND, CH_ECONFLICT, else CH_EIO). */
int ch_event__fail(ch_fault_t *e, ch_fault_kind_t kind, const char *code, const char *field,
                   const char *fmt, ...) CH_PRINTF(5, 6);

/* event.c */
void ch_event__count_open(ch_event_engine_t *eng, const char *service, int outcome);
int64_t ch_event__now_ms(const ch_event_engine_t *eng);
void ch_event__crash_point(const char *crash_at, const char *action, const char *when);
int ch_event__fault_rc(ch_fault_kind_t kind);
/* Logs st's error, rolls back and refuses (CH_FAULT_INTERNAL). */
int ch_event__fail_store(ch_store_t *st, ch_fault_t *e);
int ch_event__record_and_commit(const ch_event__ctx_t *cx, const char *actor, const char *action,
                                const char *object, const ch_event_t *ev, json_t *details,
                                ch_fault_t *err);
const ch_policy_service_t *ch_event__service_of(const ch_policy_t *policy, const char *id);
void ch_event__object_name(char out[48], const char *kind, int64_t id);
int ch_event__grants_of(ch_store_t *st, int64_t event_id, const char *status, ch_grant_list_t *l);

/* event_live.c */
void ch_event__live_add_grant(ch_event_engine_t *eng, const ch_grant_t *g);
live_grant_t *ch_event__live_grant(ch_event_engine_t *eng, int64_t id);
void ch_event__live_remove_at(ch_event_engine_t *eng, size_t pos);
void ch_event__live_drop_grant(ch_event_engine_t *eng, int64_t id);
live_event_t *ch_event__live_event(ch_event_engine_t *eng, int64_t id);
void ch_event__live_set_event(ch_event_engine_t *eng, int64_t id, int64_t expires_at);
void ch_event__live_drop_event(ch_event_engine_t *eng, int64_t id);

/* event_select.c */
int ch_event__select_cameras(ch_store_t *st, ch_geo_t *geo, const ch_policy_service_t *svc,
                             int located, double lat, double lon, const ch_geo_line_t *line,
                             const ch_event_path_query_t *q, double radius_m, int max_cameras,
                             choice_t **out, size_t *n);
/* A query of the cameras along line within radius_m (as the policy gives it). */
ch_event_path_query_t *ch_event__path_query_new(ch_event_engine_t *eng, const ch_geo_line_t *line,
                                                double radius_m);
char *ch_event__why_text(const ch_geo_result_t *r, int path);

/* event_view.c */
/* The views: each takes over the records given (they are left zeroed). Tokens in g's view
 * when with_token, in ev's for who when ev is for who's agency (agency and operator users). */
void ch_event__grant_view(const ch_event__ctx_t *cx, ch_grant_t *g, int with_token,
                          ch_event_grant_view_t *out);
void ch_event__event_view(const ch_event__ctx_t *cx, ch_event_t *ev, ch_grant_list_t *grants,
                          const ch_event_actor_t *who, ch_event_view_t *out);
/* Reads the event id and its grants into *out (for who). 0 or a store refusal. */
int ch_event__answer_event(const ch_event__ctx_t *cx, const ch_event_actor_t *who, int64_t id,
                           ch_event_view_t *out, ch_fault_t *err);

/* event_open.c */
int ch_event__check_place(const ch_event_config_t *cfg, double lat, double lon, const char *field,
                          ch_fault_t *err);
int ch_event__deny(const ch_event__ctx_t *cx, const ch_event_actor_t *who, const char *action,
                   const char *object, const ch_policy_decision_t *d, const char *service,
                   int64_t agency_id, ch_fault_t *err);
ch_policy_role_t ch_event__policy_role(const ch_event_actor_t *who);
int ch_event__make_grants(ch_store_t *st, ch_event_t *ev, const choice_t *c, size_t n,
                          const char *status, int path, json_t *cams);
void ch_event__went_live(ch_event_engine_t *eng, const ch_event_t *ev, const ch_grant_list_t *g);

/* event_lifecycle.c: the store halves of the operations (any thread, on cx's handle); each
 * leaves in *after what the loop does once it committed. The checks that read no row (who may,
 * a duration, a place) are the request's (event_req.c), before. */
int ch_event__get(const ch_event__ctx_t *cx, const ch_event_actor_t *who, int64_t id,
                  ch_event_view_t *out, ch_fault_t *err);
int ch_event__list(const ch_event__ctx_t *cx, const ch_event_actor_t *who,
                   const ch_store_filter_t *f, ch_event_page_t *out, ch_fault_t *err);
int ch_event__decide(const ch_event__ctx_t *cx, const ch_event_actor_t *who, int64_t id,
                     int approve, const char *note, ch_event__after_t *after, ch_event_view_t *out,
                     ch_fault_t *err);
int ch_event__extend(const ch_event__ctx_t *cx, const ch_event_actor_t *who, int64_t id,
                     int64_t duration_s, ch_event__after_t *after, ch_event_view_t *out,
                     ch_fault_t *err);
int ch_event__close_or_revoke(const ch_event__ctx_t *cx, const ch_event_actor_t *who, int64_t id,
                              const char *why, int revoke, ch_event__after_t *after,
                              ch_event_view_t *out, ch_fault_t *err);
int ch_event__revoke_grant(const ch_event__ctx_t *cx, const ch_event_actor_t *who, int64_t grant_id,
                           const char *why, ch_event__after_t *after, ch_event_grant_view_t *out,
                           ch_fault_t *err);
/* placed: when the subject was placed at the event's position (has_placed 0: unknown, the
 * event is not in the live map; the speed rule then has no time to go by). */
int ch_event__move(const ch_event__ctx_t *cx, const ch_event_actor_t *who, int64_t id, double lat,
                   double lon, int has_placed, int64_t placed_at, ch_event__after_t *after,
                   ch_event_view_t *out, ch_fault_t *err);

/* Ends one grant in the store (status, when, by whom, why); the caller commits. */
int ch_event__end_grant(ch_store_t *st, ch_grant_t *g, const char *status, const char *by,
                        const char *why, int64_t when);
void ch_event__ended(ch_event_engine_t *eng, const ch_grant_t *g);
/* Ends an event and every live grant of it, in the store, with its record (action; details
 * get "cameras"), committed: the store half; *after says what leaves the live map. */
int ch_event__end_event_in(const ch_event__ctx_t *cx, ch_event_t *ev, const char *status,
                           const char *gstatus, const char *by, const char *why, const char *action,
                           json_t *details, ch_event__after_t *after, ch_fault_t *err);
/* The same on the loop, with the engine's handle, and the live map told at once. */
int ch_event__end_event(ch_event_engine_t *eng, ch_event_t *ev, const char *status,
                        const char *gstatus, const char *by, const char *why, const char *action,
                        json_t *details, ch_fault_t *err);
int ch_event__is_live(const ch_event_t *ev);

/* event_follow.c */
/* The live map follows the store's change feed from now on: grants and events another handle
 * ends leave it (ch_event_restore calls it once; the engine unwatches when freed). 0 or
 * ch_store_watch's code. */
int ch_event__follow_store(ch_event_engine_t *eng);

#endif /* CH_EVENT_INTERNAL_H */

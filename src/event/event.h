/*
 * event: events and grants, the heart of the hub (MISSION.md §2, capability 3).
 *
 * An agency raises an event (a service, a place or a path, an incident number, a reason, a
 * duration). The engine asks the policy module whether the service allows it, selects the
 * cameras that see the place through the geo module, keeps only those the service may draw on
 * (provider types, purposes, opt-outs), and grants them until an expiry. Each grant carries a
 * view token signed with the node's Ed25519 key: it names the grant, camera, agency and expiry,
 * so the media relay checks it without the database. Then the engine ends access by itself:
 * expiry runs on the control loop's timer (ch_event_tick), also across a restart
 * (ch_event_restore catches up on what expired while the hub was down).
 *
 * Every decision (open, denial, approval, extension, close, revocation, move, expiry) is
 * appended to the audit log before its answer, inside the store transaction that makes it: a
 * change the record does not hold is rolled back (a CH_FAULT_AUDIT refusal).
 *
 * The engine takes typed requests (the API turns JSON bodies into them and checks their shape)
 * and refuses with core's ch_fault_t: the kind, the answer's code, the policy rule of a denial,
 * the field. It answers with typed views (ch_event_view_t: the event, its service's legal
 * basis, its grants with their tokens and URLs), built in event_view.c; the engine speaks no
 * HTTP and renders no answer: the API serializes the views as docs/openapi.yaml says
 * (api/event_json.c), another adapter may render them otherwise.
 *
 * Threading: one engine belongs to one loop thread; every call is made from it, except a
 * request's run (ch_event_req_run, on the store worker with its own handle). The token
 * functions are pure and thread-safe; the relay's access gate (ch_event_gate_*) is
 * thread-safe.
 */
#ifndef CH_EVENT_H
#define CH_EVENT_H

#include "audit/audit.h"
#include "core/core.h"
#include "core/metrics.h"
#include "geo/geo.h"
#include "policy/policy.h"
#include "store/store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* ---- view tokens --------------------------------------------------------------------------- */

/* What a view token says. */
typedef struct ch_event_claims {
    int64_t grant_id;
    int64_t event_id;
    int64_t camera_id;
    int64_t agency_id;
    int64_t expires_s; /* seconds since the epoch */
} ch_event_claims_t;

#define CH_EVENT_TOKEN_MAX 256

/*
 * "v1.<payload>.<signature>", both unpadded base64url; the payload is
 * "<grant>.<event>.<camera>.<agency>.<expires_s>" and the signature is Ed25519 over
 * "cctvhub-view-token-v1." followed by the payload's base64url text. sk is a libsodium secret
 * key (64 bytes). out holds CH_EVENT_TOKEN_MAX bytes.
 */
void ch_event_token_make(const uint8_t sk[64], const ch_event_claims_t *c,
                         char out[CH_EVENT_TOKEN_MAX]);

/* Checks a token with the public key: 0 and *c; CH_EPARSE (not a token), CH_EPERM (bad
 * signature), CH_EEXPIRED (now_s >= expires_s; *c is still filled). */
int ch_event_token_verify(const uint8_t pk[32], const char *token, size_t len, int64_t now_s,
                          ch_event_claims_t *c) CH_MUST_CHECK;

/* ---- the engine ---------------------------------------------------------------------------- */

typedef struct ch_event_engine ch_event_engine_t;

/* Milliseconds since the epoch; tests inject their own clock. */
typedef int64_t (*ch_event_clock_fn)(void *ud);

typedef struct ch_event_config {
    ch_store_t *st;        /* borrowed: the loop's store handle */
    ch_audit_t *audit;     /* borrowed; NULL records nothing (tests of the engine alone) */
    const uint8_t *sk;     /* 64 bytes: the node's Ed25519 secret key (copied), or NULL: no
                              tokens are issued */
    const char *rtsp_base; /* "rtsp://127.0.0.1:8554": the grants' rtsp_url start */
    const char *ws_base;   /* "ws://127.0.0.1:8080": the grants' ws_url start */
    /* The city: a place or path outside [min_lat, max_lat] x [min_lon, max_lon] is refused.
     * All zero: South Korea's extent. */
    double min_lat, min_lon, max_lat, max_lon;
    int64_t grace_ms;        /* a moving subject's cameras behind it stay this long; 0 = 30 s */
    ch_event_clock_fn clock; /* NULL: the wall clock */
    void *clock_ud;
} ch_event_config_t;

/* Who asks (from the API's principal). */
typedef enum ch_event_role {
    CH_EVENT_ROLE_ADMIN = 1,
    CH_EVENT_ROLE_OPERATOR = 2,
    CH_EVENT_ROLE_AGENCY = 3,
    CH_EVENT_ROLE_PROVIDER = 4,
    CH_EVENT_ROLE_AUDITOR = 5,
} ch_event_role_t;

typedef struct ch_event_actor {
    const char *actor; /* as the audit record names it: "user:kim", "apikey:3" */
    ch_event_role_t role;
    int64_t agency_id; /* 0 when none */
} ch_event_actor_t;

/* What an actor does to events; ch_event_may says who may. */
typedef enum ch_event_op {
    CH_EVENT_OP_OPEN = 1,
    CH_EVENT_OP_DECIDE, /* approve or deny */
    CH_EVENT_OP_EXTEND,
    CH_EVENT_OP_CLOSE,
    CH_EVENT_OP_REVOKE,
    CH_EVENT_OP_MOVE,
} ch_event_op_t;

/* A notice to the media plane, from the grants table (ch_event_follow_grants, below): a grant
 * started (pre-warm its camera) or ended (close its viewers). */
typedef enum ch_event_notice_kind {
    CH_EVENT_GRANT_STARTED = 1,
    CH_EVENT_GRANT_ENDED = 2,
} ch_event_notice_kind_t;

typedef struct ch_event_notice {
    ch_event_notice_kind_t kind;
    int64_t grant_id;
    int64_t event_id;
    int64_t camera_id;
    int64_t agency_id;
    const char *status; /* the grant's status now: "active", "expired", "closed", ... */
} ch_event_notice_t;

/* A new engine (never NULL). Call ch_event_restore before serving. */
ch_event_engine_t *ch_event_engine_new(const ch_event_config_t *cfg);
void ch_event_engine_free(ch_event_engine_t *eng); /* NULL is fine */

/* The services and cameras decided on; both borrowed, replaced on reload and after imports.
 * The engine takes references to geo for queries off the loop (ch_event_open_prepare), so its
 * owner unshares it before changing it (ch_geo_unshare), as for its own queries. */
void ch_event_set_policy(ch_event_engine_t *eng, const ch_policy_t *p);
void ch_event_set_geo(ch_event_engine_t *eng, ch_geo_t *geo);
/* Replaces the bases of the grants' URLs (copied). */
void ch_event_set_urls(ch_event_engine_t *eng, const char *rtsp_base, const char *ws_base);

/*
 * Loads the live events and grants from the store and expires, at once, what expired while the
 * hub was down (recorded with their original expiry). An event the audit log holds no record
 * of (the hub stopped between ch_event_open_begin and the record) is closed and recorded as
 * "event.abort". An event or grant that a decision on the record ended (close, revocation,
 * expiry, denial, abort, grant revocation) while the store still has it live (the hub stopped
 * between the record and its COMMIT) ends as the record says, nothing recorded again. The
 * store's index of the log must be up to date first. 0 or a store / audit code.
 */
int ch_event_restore(ch_event_engine_t *eng) CH_MUST_CHECK;

/* Ends everything due by now (expiry of grants and events; cameras a moving subject left
 * behind). Returns the number of grants ended, or a negative code. With a store worker
 * (below), a tick that finds something due queues one pass of the expiry there (its reads,
 * transactions and records on the worker's handle; the live map told when it completes) and
 * returns 0; no other pass is queued while it is in flight; a busy worker is tried again at the
 * next tick. */
int ch_event_tick(ch_event_engine_t *eng);
/* The store worker the expiry's writes go to (NULL: the engine's handle, in the tick). The
 * worker is closed before the engine is freed. Loop. */
void ch_event_set_store_worker(ch_event_engine_t *eng, ch_store_worker_t *w);
/* When the next grant or event falls due (ms since the epoch), or INT64_MAX when none. */
int64_t ch_event_next_due(const ch_event_engine_t *eng);
/* Live grants held in memory (for health and metrics). */
size_t ch_event_live_grants(const ch_event_engine_t *eng);
/* The engine's metrics (a ch_metrics_collect_fn; ud is the engine; control loop):
 * cctvhub_grants_active, cctvhub_events_live, cctvhub_events_total{service,outcome}. */
void ch_event_collect(ch_metrics_writer_t *w, void *ud);

/* ---- the answers --------------------------------------------------------------------------- */

/* A grant as answered: its record and, for the agency its event is for while the grant is
 * active (and when the node has its key), the view token and the URLs that carry it. */
typedef struct ch_event_grant_view {
    ch_grant_t grant; /* the record */
    char *token;      /* the view token, or NULL: none given */
    char *rtsp_url;   /* "<rtsp_base>/cameras/<camera>?token=<token>" (NULL with token) */
    char *ws_url;     /* "<ws_base>/api/v1/cameras/<camera>/live?token=<token>" (same) */
} ch_event_grant_view_t;

/* An event as answered: its record, its service's legal basis text, and all its grants. */
typedef struct ch_event_view {
    ch_event_t event;
    char *basis_text; /* the service's (copied), or NULL: the services file has it no more */
    ch_event_grant_view_t *grants;
    size_t ngrants;
} ch_event_view_t;

/* A page of events (ch_event_list). */
typedef struct ch_event_page {
    ch_event_view_t *items;
    size_t count;
    int64_t total;      /* every event the filter matches, the cursor aside */
    int64_t next_after; /* the after_id of the next page, or 0: no more */
} ch_event_page_t;

/* Each releases what it holds and leaves it zeroed; a zeroed view is fine (NULL too). */
void ch_event_grant_view_fini(ch_event_grant_view_t *g);
void ch_event_view_fini(ch_event_view_t *v);
void ch_event_page_fini(ch_event_page_t *p);

/*
 * The operations of /api/v1/events, with typed requests (the API checks a body's shape: unknown
 * keys, types, text lengths; the engine the rules: who may, agency ownership, the area served,
 * the service's policy). Each returns 0 and fills *out, the answer (the event's view, the
 * grant's for revoke_grant, a page for list: the caller's, released with its *_fini), or a
 * negative code with err filled and *out zeroed. Text fields are borrowed for the call; NULL
 * is none. Tokens are given in the views of the agency the event is for (its agency and
 * operator users), never in a provider's nor in revoke_grant's.
 *
 *   open      POST /events                     ch_event_open_req_t
 *   get       GET /events/{id}
 *   list      GET /events?status=&agency_id=    (after_id/limit as the store's filter)
 *   decide    POST /events/{id}/approve|deny    note
 *   extend    POST /events/{id}/extend          duration_s (0: the service's)
 *   close     POST /events/{id}/close           reason
 *   revoke    POST /events/{id}/revoke          reason
 *   revoke_grant POST /grants/{id}/revoke       reason
 *   move      POST /events/{id}/positions       lat, lon
 */

/* Whether who may do op at all (by role): 0, or CH_EPERM with err a CH_FAULT_FORBIDDEN. Each
 * operation checks it too; the API asks first where the role is checked before the body. */
int ch_event_may(const ch_event_actor_t *who, ch_event_op_t op, ch_fault_t *err) CH_MUST_CHECK;

typedef struct ch_event_path_query ch_event_path_query_t;

typedef struct ch_event_open_req {
    const char *service; /* a service id of the services file (required) */
    int has_agency_id;   /* agency_id given: else the actor's own agency */
    int64_t agency_id;
    int located;               /* a place (lat, lon); else a path */
    double lat, lon;           /* the place */
    const ch_geo_line_t *path; /* the path (when !located), parsed */
    const char *path_geojson;  /* its GeoJSON text, as stored and answered */
    const char *incident, *reason, *case_name;
    int64_t duration_s; /* > 0, or 0: the service's default */
    int ptz, export_allowed;
    /* The path's cameras computed off the loop (ch_event_open_prepare), or NULL: computed in
     * the call. */
    const ch_event_path_query_t *path_cameras;
} ch_event_open_req_t;

int ch_event_open(ch_event_engine_t *eng, const ch_event_actor_t *who,
                  const ch_event_open_req_t *req, ch_event_view_t *out,
                  ch_fault_t *err) CH_MUST_CHECK;
/*
 * A request to open refused before the engine saw it (its body's shape, err as the API fills
 * it) is on the record as an "event.open" refusal, as the engine's own refusals are, unless
 * the actor may not open events at all (err becomes that CH_FAULT_FORBIDDEN, not recorded).
 * Returns a negative code (err's).
 */
int ch_event_open_refused(ch_event_engine_t *eng, const ch_event_actor_t *who, ch_fault_t *err);

/*
 * Opening in two steps, so that the control loop never waits for the disk: begin decides,
 * selects and writes the event and its grants to the store (denials and refusals are recorded
 * and answered at once: a negative code with err), and returns 0 with *p, the audit record to
 * append (p->entry; any thread may append it, so concurrent events share one fdatasync).
 * finish, on the loop, takes the append's result: 0 -> the grants go live and the answer is
 * the event; an error -> the event is undone in the store (its grants closed) and a
 * CH_FAULT_AUDIT refusal answered. A crash between the two leaves an event without its
 * record: ch_event_restore closes it. ch_event_open is begin, append, finish in one call.
 */
typedef struct ch_event_pending {
    int64_t event_id;
    int pending; /* waits for an operator's approval */
    char actor[96], action[32], object[48], purpose[72], basis[72];
    json_t *details;
    ch_audit_entry_t entry; /* points into this struct */
    void *ud;               /* the caller's (ch_event_open_begin's ud) */
} ch_event_pending_t;

int ch_event_open_begin(ch_event_engine_t *eng, const ch_event_actor_t *who,
                        const ch_event_open_req_t *req, void *ud, ch_event_pending_t **p,
                        ch_fault_t *err);
int ch_event_open_finish(ch_event_engine_t *eng, const ch_event_actor_t *who, ch_event_pending_t *p,
                         int audit_rc, ch_event_view_t *out, ch_fault_t *err);
void ch_event_pending_free(ch_event_pending_t *p); /* NULL is fine */

/*
 * Opening along a path without stalling the loop (the cameras along a path of thousands of
 * points take up to a second to find): ch_event_open_prepare checks and decides as
 * ch_event_open_begin does (refusals answered and recorded the same) and returns 0 with *q,
 * the query of the path's cameras, holding a reference to the geo index; *q is NULL when
 * there is nothing to compute off the loop (a place, or no index). ch_event_path_query_run
 * computes it on any thread (it touches only q and its index); then, on the loop, a request
 * with path_cameras = q opens as usual (the decision is taken again, the cameras come from q)
 * and ch_event_path_query_free drops q (NULL is fine). Loop, except run.
 */
int ch_event_open_prepare(ch_event_engine_t *eng, const ch_event_actor_t *who,
                          const ch_event_open_req_t *req, ch_event_path_query_t **q,
                          ch_fault_t *err) CH_MUST_CHECK;
void ch_event_path_query_run(ch_event_path_query_t *q);
void ch_event_path_query_free(ch_event_path_query_t *q);

/*
 * Batches of opens: between ch_event_batch_begin and ch_event_batch_end, each
 * ch_event_open_begin is a savepoint of one store transaction (it fails alone), and the batch
 * commits once: the pages and the commit of many events are shared. The engine keeps the
 * opens begun in the batch; ch_event_batch_end commits and hands each back, in the order
 * begun, to fn(p, rc): rc 0 -> append p's record, then ch_event_open_finish; else every open
 * of the batch is gone (rc the store's code: answer it as CH_FAULT_INTERNAL and free p).
 * Returns the commit's code (0 when no batch was open). No other engine call may run inside a
 * batch.
 */
typedef void (*ch_event_batch_fn)(ch_event_pending_t *p, int rc);
int ch_event_batch_begin(ch_event_engine_t *eng) CH_MUST_CHECK;
int ch_event_batch_end(ch_event_engine_t *eng, ch_event_batch_fn fn);
int ch_event_in_batch(const ch_event_engine_t *eng);

int ch_event_get(ch_event_engine_t *eng, const ch_event_actor_t *who, int64_t id,
                 ch_event_view_t *out, ch_fault_t *err) CH_MUST_CHECK;
int ch_event_list(ch_event_engine_t *eng, const ch_event_actor_t *who, const ch_store_filter_t *f,
                  ch_event_page_t *out, ch_fault_t *err) CH_MUST_CHECK;
int ch_event_decide(ch_event_engine_t *eng, const ch_event_actor_t *who, int64_t id, int approve,
                    const char *note, ch_event_view_t *out, ch_fault_t *err) CH_MUST_CHECK;
int ch_event_extend(ch_event_engine_t *eng, const ch_event_actor_t *who, int64_t id,
                    int64_t duration_s, ch_event_view_t *out, ch_fault_t *err) CH_MUST_CHECK;
int ch_event_close(ch_event_engine_t *eng, const ch_event_actor_t *who, int64_t id,
                   const char *reason, ch_event_view_t *out, ch_fault_t *err) CH_MUST_CHECK;
int ch_event_revoke(ch_event_engine_t *eng, const ch_event_actor_t *who, int64_t id,
                    const char *reason, ch_event_view_t *out, ch_fault_t *err) CH_MUST_CHECK;
int ch_event_revoke_grant(ch_event_engine_t *eng, const ch_event_actor_t *who, int64_t grant_id,
                          const char *reason, ch_event_grant_view_t *out,
                          ch_fault_t *err) CH_MUST_CHECK;
int ch_event_move(ch_event_engine_t *eng, const ch_event_actor_t *who, int64_t id, double lat,
                  double lon, ch_event_view_t *out, ch_fault_t *err) CH_MUST_CHECK;

/*
 * The same operations as requests, so that their store half runs off the loop (the store
 * worker, ch_store_async, with the worker's own handle): with SQLite a decision costs the loop
 * its queries and an fdatasync of its record, with a database over the network a round trip
 * per query. Each call above is ch_event_req_new, ch_event_req_run on the engine's handle and
 * ch_event_req_finish, so both answer the same.
 *
 *   ch_event_req_new     loop: who may (ch_event_may) and the checks that read no row (a
 *                        duration, the place of a move), then a snapshot of what the operation
 *                        reads besides its rows: a reference to the policy (a reload may swap
 *                        it meanwhile), the key, the URL bases, the time, for a move the geo
 *                        index (a reference) and when its subject was placed. 0 and *out, or a
 *                        negative code with err (nothing to run: *out NULL).
 *   ch_event_req_run     any thread, with that thread's handle (one request at a time per
 *                        handle): the checks that read rows, the transaction, the audit record
 *                        (durable before the commit), the commit, the answer's view. Returns
 *                        the operation's code (its refusal kept for finish).
 *   ch_event_req_finish  loop, after run, once the loop's change feed has heard run's commit
 *                        (the store worker tells it before its done callback): the live map
 *                        learns what the feed does not tell (grants that start, new expiries,
 *                        a subject's placing), and the answer is handed over: 0 and *out (the
 *                        caller's, ch_event_answer_fini), or the refusal in err.
 *   ch_event_req_free    loop; NULL is fine. A request never run (the worker was busy) is
 *                        freed without finish: nothing of it happened.
 *
 * Requests in flight see the store as committed when they run, not as when they were made:
 * each reads its rows inside its own transaction's lock (BEGIN IMMEDIATE on SQLite), so two
 * decisions on one event are taken in turn, the second on the first's result (a close after
 * an approval, a conflict after a close).
 */
typedef enum ch_event_req_kind {
    CH_EVENT_REQ_GET = 1,
    CH_EVENT_REQ_LIST,
    CH_EVENT_REQ_DECIDE,
    CH_EVENT_REQ_EXTEND,
    CH_EVENT_REQ_CLOSE,
    CH_EVENT_REQ_REVOKE,
    CH_EVENT_REQ_REVOKE_GRANT,
    CH_EVENT_REQ_MOVE,
} ch_event_req_kind_t;

/* What is asked; every field is copied by ch_event_req_new. */
typedef struct ch_event_req_args {
    ch_event_req_kind_t kind;
    int64_t id;                    /* the event's; the grant's for REVOKE_GRANT; none for LIST */
    int approve;                   /* DECIDE: approve, else deny */
    const char *text;              /* DECIDE's note; CLOSE's, REVOKE's, REVOKE_GRANT's reason */
    int64_t duration_s;            /* EXTEND: 0 is the service's */
    double lat, lon;               /* MOVE: the new position */
    const ch_store_filter_t *list; /* LIST: the filter (NULL: none) */
} ch_event_req_args_t;

/* An answer: the part of its kind is filled (grant for REVOKE_GRANT, page for LIST, else
 * event), the others are zeroed. */
typedef struct ch_event_answer {
    ch_event_view_t event;
    ch_event_grant_view_t grant;
    ch_event_page_t page;
} ch_event_answer_t;

typedef struct ch_event_req ch_event_req_t;

int ch_event_req_new(ch_event_engine_t *eng, const ch_event_actor_t *who,
                     const ch_event_req_args_t *args, ch_event_req_t **out,
                     ch_fault_t *err) CH_MUST_CHECK;
int ch_event_req_run(ch_event_req_t *req, ch_store_t *st);
int ch_event_req_finish(ch_event_engine_t *eng, ch_event_req_t *req, ch_event_answer_t *out,
                        ch_fault_t *err) CH_MUST_CHECK;
void ch_event_req_free(ch_event_req_t *req);
/* The request's kind (how its answer is rendered). */
ch_event_req_kind_t ch_event_req_kind(const ch_event_req_t *req);
void ch_event_answer_fini(ch_event_answer_t *a); /* leaves it zeroed; NULL is fine */

/*
 * Ends the grants of a camera that can no longer be watched under them: deleted (reason
 * "camera_removed") or taken out of service (its status no longer "active": reason
 * "camera_deactivated"): its live grants, and its pending grants (of events awaiting
 * approval, which an approval would make live). Each grant becomes "revoked" with that
 * end_reason, ended by actor (the person who changed the camera), with a grant.revoke record
 * saying the reason (the gate's follower then hears a live one end: the relay cuts its viewers).
 * Not inside a batch of opens (CH_EAGAIN). Returns the number of grants ended, or a negative code
 * when one could not be (those stay and the failure is logged).
 */
int ch_event_end_camera_grants(ch_event_engine_t *eng, const char *actor, int64_t camera_id,
                               const char *reason);

/*
 * As ch_event_end_camera_grants for every camera that holds a live or pending grant and is
 * no longer "active" in the store ("camera_deactivated") or no longer there
 * ("camera_removed"): for a change of many cameras at once (an import committed by another
 * store handle). Costs one camera read per granted camera (and one query per event awaiting
 * approval), whatever the number of cameras changed. Control loop; not inside a batch of
 * opens (CH_EAGAIN). The number of grants ended, or a negative code.
 */
int ch_event_end_inactive_camera_grants(ch_event_engine_t *eng, const char *actor);

/* ---- the relay's access gate -------------------------------------------------------------- */

/*
 * The gate the media relay admits viewers through: a view token's signature (with the node's
 * public key), its expiry, its camera, and that its grant is live, from the set of live grants
 * the store's change feed keeps (ch_event_follow_grants, below: so a revoked grant's token is
 * refused at once, though its signature and expiry still hold). Thread-safe: notices come from the
 * control loop while the media threads authorize; the set is behind the gate's mutex, O(1) per call
 * (a hash set of grant ids), and each thread keeps its own cache of verified tokens (the same token
 * skips the Ed25519 check; expiry, camera and grant are checked every time).
 */
typedef struct ch_event_gate ch_event_gate_t;

/* A gate checking tokens with pk (32 bytes, copied), its live set empty. Never NULL. */
ch_event_gate_t *ch_event_gate_new(const uint8_t pk[32]);
/* No call may be running on another thread. NULL is fine. */
void ch_event_gate_free(ch_event_gate_t *g);

/* Follows a notice (ch_event_follow_grants gives it each grant's). Returns
 * the change of the camera's hold: +1 when a grant the gate did not hold started, -1 when one
 * it held ended, 0 otherwise (a repeated start, the end of a grant it never held, a grant id
 * not positive). */
int ch_event_gate_notice(ch_event_gate_t *g, const ch_event_notice_t *n);

/*
 * May the bearer of token (len bytes, not NUL-terminated) watch camera_id at now_s (seconds
 * since the epoch)? 0 and *out, the token's claims; or
 *   CH_EPERM     not a token, or not signed by the node (the relay's reason: bad_token);
 *   CH_EEXPIRED  now_s >= its expiry (expired);
 *   CH_EINVAL    a good token for another camera (other_camera);
 *   CH_ENOENT    its grant is not live: ended, or never known (grant_ended).
 * Checked in that order. Any thread.
 */
int ch_event_gate_authorize(ch_event_gate_t *g, const char *token, size_t len, int64_t camera_id,
                            int64_t now_s, ch_event_claims_t *out) CH_MUST_CHECK;

/* Whether the grant is in the live set; the number of grants in it (for metrics). */
int ch_event_gate_is_live(ch_event_gate_t *g, int64_t grant_id);
size_t ch_event_gate_live(ch_event_gate_t *g);
/* The grant ids in the live set, in no order, into *out (to free; never NULL); their number. */
size_t ch_event_gate_ids(ch_event_gate_t *g, int64_t **out);

/*
 * The gate's live grants follow the store's change feed (ch_store_watch on st, the control
 * loop's handle): whoever wrote a grant (the engine, another handle the feed sees, later
 * another node), the committed row decides; an active grant starts, any other status or a row
 * gone ends it (so a revoked grant's viewers are cut at the commit that revoked it). A reread
 * of the table (a change of id 0) starts every active grant and ends every one the gate holds
 * that is no longer active. ch_event_follow_grants first loads the active grants, then
 * watches; fn (NULL is fine) hears each notice after the gate followed it, with the change of
 * its camera's hold (ch_event_gate_notice's answer): the relay cuts an ended grant's viewers
 * and pre-warms. Control loop. 0 or a store code (*out NULL).
 */
typedef struct ch_event_follow ch_event_follow_t;
typedef void (*ch_event_follow_fn)(void *ud, const ch_event_notice_t *n, int hold);
int ch_event_follow_grants(ch_store_t *st, ch_event_gate_t *gate, ch_event_follow_fn fn, void *ud,
                           ch_event_follow_t **out) CH_MUST_CHECK;
/* Ends the following (before the store or the gate go). NULL is fine. */
void ch_event_follow_end(ch_event_follow_t *f);

/* ---- the provision ledger ------------------------------------------------------------------ */

/* Which provisions: zero fields do not filter. A provision is in [from, to) when its period
 * (start to end, or to now while it runs) overlaps it. */
typedef struct ch_event_ledger_filter {
    int64_t from_ns, to_ns; /* start < to and end >= from */
    int64_t agency_id;      /* the recipient */
    int64_t event_id;
    int64_t camera_id; /* provisions that included this camera */
} ch_event_ledger_filter_t;

/*
 * The provision ledger (PIPA Enforcement Decree Art. 15), made from the audit log: one row per
 * event whose access started, with provided_at, recipient (the agency's name from st when
 * given), purpose (the service's name from policy when given), legal basis, cameras, the
 * period (from, to: null while it runs), how it ended, extensions and form. *out is
 * {"items": [...], "total": n}. 0 or an audit code. Reads the whole log: meant for exports,
 * not for the hot path.
 */
int ch_event_ledger(ch_audit_t *audit, ch_store_t *st, const ch_policy_t *policy,
                    const ch_event_ledger_filter_t *f, json_t **out) CH_MUST_CHECK;
/* ch_event_ledger in its two halves, for a caller that reads the log and the store off its loop:
 * ch_event_ledger_read (any thread; audit is thread-safe, st must be that thread's) makes the
 * ledger without the services (purpose is the service's id, legal_basis_text null), then
 * ch_event_ledger_name_services (where the policy is read; NULL: no change) names them. */
int ch_event_ledger_read(ch_audit_t *audit, ch_store_t *st, const ch_event_ledger_filter_t *f,
                         json_t **out) CH_MUST_CHECK;
void ch_event_ledger_name_services(json_t *ledger, const ch_policy_t *policy);

/* The ledger as CSV for Excel: UTF-8 with a BOM, CRLF lines, a header row in Korean and
 * English, cameras as space-separated ids. Returns a new buffer (ch_free) of *len bytes. */
char *ch_event_ledger_csv(const json_t *ledger, size_t *len);

#endif /* CH_EVENT_H */

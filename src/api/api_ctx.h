/*
 * api handler internals: the API's state and one request being answered, shared by the
 * handler files (api.c, auth_routes.c, ...). Everything here runs on the control loop.
 */
#ifndef CH_API_CTX_H
#define CH_API_CTX_H

#include "api/api_internal.h"
#include "auth/auth.h"
#include "core/metrics.h"
#include "event/event.h"
#include "registry/registry.h"

struct ch_api {
    uv_loop_t *loop;
    ch_store_t *st;
    char *store_url;
    int schema; /* the store's schema version, read once (a running hub migrates nothing) */
    json_t *capabilities[8]; /* each role's capabilities, built at first use (routes.c) */
    size_t max_import_bytes;
    int64_t started_at_ms;
    /* The services as ch_api_new was given them (api.h), all read-only here (the audit log at
     * svc.audit, NULL: nothing audited; the events engine at svc.events; the geo index at
     * *svc.geo; the registry's use cases at svc.registry; the services in force at
     * *svc.policy, never NULL here, *svc.policy NULL when none is configured; camera health at
     * svc.health, NULL when not running); svc.metrics_token is not kept (a copy is,
     * metrics_token). */
    ch_api_services_t svc;
    size_t in_flight; /* imports and geo queries on the pool, logins and passwords on the
                       * hasher, reads on the store worker, requests waiting for their
                       * principal */
    size_t geo_jobs;  /* path, area and coverage queries among them */
    int freeing;      /* ch_api_free() was called with work in flight */
    /* The /health answer, rebuilt at most once a second (or when in_flight changes): it is
     * the benchmark's target, so the common case is one comparison and a copy. It says
     * "degraded" with the reason while the audit log refuses records (ch_audit_status). */
    int64_t health_sec;
    size_t health_in_flight;
    size_t health_len;
    char health_body[512];
    /* Accounts. */
    ch_auth_config_t auth;
    ch_auth_throttle_t *throttle; /* failed logins per client address */
    ch_auth_lockout_t *lockout;   /* failed logins per user name and client address */
    ch_auth_hasher_t *hasher;     /* Argon2id off the loop, bounded; NULL once closed */
    int cookie_secure;            /* add "Secure" to the session cookie (the hub is behind TLS) */
    uv_check_t *check;            /* ends the event engine's batch of opens after each poll phase */
    /* Who a credential is, without the store (auth's principals cache); NULL once closed. */
    ch_auth_principals_t *principals;
    /* The operator console (static_routes.c): its directory or NULL, the tile URL or NULL,
     * and the Content-Security-Policy its pages are answered with (it names the origin of
     * the grants' ws_url). */
    char *web_root;
    char *tile_url;
    char *console_csp;
    /* GET /metrics (metrics_routes.c): the scrapers' bearer token (NULL: none), and the HTTP
     * figures counted on every answer. */
    char *metrics_token;
    struct ch_api__http_stats *http_stats;
};

/* One request being answered: who asks, and what the access log line needs. */
typedef struct api_ctx {
    ch_api_t *api;
    ch_http_request_t *req;
    uint64_t t0_ns;
    ch_log_level_t log_level;
    ch_auth_principal_t who; /* CH_AUTH_NONE on public routes */
    size_t route_slot;       /* for metrics: 0 when no route matched, else its index + 1 */
} api_ctx_t;

/* Answers (and logs the access line; req is invalid afterwards). */
void ch_api__reply(api_ctx_t *c, int status, const char *content_type, const char *extra_headers,
                   const void *body, size_t len);
/* Answers j (the reference is taken) as JSON. */
void ch_api__reply_json(api_ctx_t *c, int status, const char *extra_headers, json_t *j);
/* Answers a domain use case's refusal with the status faults.c's table gives its kind. */
void ch_api__reply_fault(api_ctx_t *c, const ch_fault_t *f);
void ch_api__reply_err(api_ctx_t *c, const ch_api__err_t *e, const char *extra_headers);
void ch_api__reply_error(api_ctx_t *c, int status, const char *code, const char *field,
                         const char *message);
/* A time in ms since the epoch as RFC 3339 UTC text, or null when not known (<= 0). */
json_t *ch_api__time_or_null(int64_t ms);
/* Answers a page of a list: {"items", "total", "next": cursor or null}; items is stolen. */
void ch_api__reply_page(api_ctx_t *c, json_t *items, int64_t total, int64_t next);
/* The request's JSON body, or NULL after answering the error (415, 400). */
json_t *ch_api__read_body(api_ctx_t *c);
/* Answers 400 and returns non-zero when the request has a query string. */
int ch_api__reject_query(api_ctx_t *c);
/* Reads the query against spec (see ch_api__query_read), or answers its 400 and returns -1.
 * The caller calls ch_api__query_fini(q) either way. */
int ch_api__list_query(api_ctx_t *c, const ch_api__qparam_t *spec,
                       ch_api__query_t *q) CH_MUST_CHECK;

/*
 * Puts one record on the audit log, durably, with the request's principal as actor (or actor
 * when not NULL). details is stolen (may be NULL); outcome "ok", "denied", "error". 0 when
 * recorded or when the API has no audit log, else an audit code.
 */
int ch_api__audit(api_ctx_t *c, const char *actor, const char *action, const char *object,
                  const char *outcome, json_t *details);

/* As ch_api__audit, for a record that ends access (ch_auth_record_ends_access: a key revoked,
 * a user disabled, a session ended): on a full audit disk it may use the reserve
 * (ch_audit_append_ending), so that access can always be ended. */
int ch_api__audit_ending(api_ctx_t *c, const char *actor, const char *action, const char *object,
                         const char *outcome, json_t *details);

/*
 * Puts a refusal of the request (answered with status) on the audit log, counted per client
 * address and action (ch_audit_refusal: the first of an interval recorded at once, the rest
 * summed up in one record; 429 not at all). details is stolen. 0, or an audit code.
 */
int ch_api__audit_refusal(api_ctx_t *c, const char *action, int status, json_t *details);

/*
 * Authenticates the request for its route m (m->roles: a CH_AUTH_* mask), checks its role and
 * CSRF token, and goes on to ch_api__dispatch with c->who filled; or answers 401 / 403 / 500,
 * or 503 "busy" when the store worker cannot take the read. A credential the principals cache
 * holds is answered at once; a miss is read on the store worker while the request waits
 * (counted in in_flight, like the store's reads) and is dispatched from the loop when the read
 * comes back, exactly as it would have been at once.
 */
void ch_api__authorize(api_ctx_t *c, const ch_api__match_t *m);
/* Answers the request c of route m (api.c's table of handlers); c->who is its principal. */
void ch_api__dispatch(api_ctx_t *c, const ch_api__match_t *m);

/* The account routes (auth_routes.c): session, users, API keys. id is the {id} segment. */
void ch_api__handle_session(api_ctx_t *c, ch_api__route_id_t route);
void ch_api__handle_users(api_ctx_t *c, ch_api__route_id_t route, ch_slice_t id);
void ch_api__handle_apikeys(api_ctx_t *c, ch_api__route_id_t route, ch_slice_t id);
/* The event routes (events_routes.c). */
void ch_api__handle_events(api_ctx_t *c, ch_api__route_id_t route, ch_slice_t id);
void ch_api__handle_ledger(api_ctx_t *c);
/* The audit routes (audit_routes.c); the list reads on the store worker. */
void ch_api__handle_audit(api_ctx_t *c, ch_api__route_id_t route);
/* The console's static files and its config.json (static_routes.c); path is the {path}
 * segment of /console/{path}, undecoded. */
void ch_api__handle_static(api_ctx_t *c, ch_api__route_id_t route, ch_slice_t path);
/* (Re)builds api->console_csp for ws_base ("ws://10.0.0.5:8080"; NULL: same origin only). */
void ch_api__console_csp(ch_api_t *api, const char *ws_base);

/* Metrics (metrics_routes.c). count_request runs for every answer (from ch_api__reply, with
 * the monotonic clock read once for it and the access line); handle_metrics answers
 * GET /metrics; metrics_token_ok is 1 when the request carries metrics.token as its Bearer
 * credential. stats_new/free own api->http_stats. */
void ch_api__count_request(api_ctx_t *c, int status, uint64_t now_ns);
void ch_api__handle_metrics(api_ctx_t *c);
int ch_api__metrics_token_ok(const api_ctx_t *c);
struct ch_api__http_stats *ch_api__http_stats_new(void);
/* Renders GET /metrics from m (NULL: 503) with token as metrics.token (copied), and registers
 * the API's collector of HTTP figures in m, after removing it from the registry it had. */
void ch_api__metrics_attach(ch_api_t *api, ch_metrics_t *m, const char *token);
void ch_api__http_stats_free(struct ch_api__http_stats *s);
/* The camera health routes (health_routes.c); id is the {id} segment. */
void ch_api__handle_health(api_ctx_t *c, ch_api__route_id_t route, ch_slice_t id);
/* Adds "health": state to each object of the array items, by its integer id_key (geo answers:
 * "id"; an event's grants: "camera_id"). No-op without health or an array. */
void ch_api__health_mark(const ch_api_t *api, json_t *items, const char *id_key);
/* The alert routes and the devices' state routes (alert_routes.c). */
void ch_api__handle_alerts(api_ctx_t *c, ch_api__route_id_t route, ch_slice_t id);
void ch_api__handle_device_health(api_ctx_t *c, ch_api__route_id_t route, ch_slice_t id);

/*
 * A read on the hub's store worker (store_reads.c), so that the loop does not wait for it:
 * work(st, job) runs on the worker's thread with the worker's handle (it may use only st and
 * job), then done(c, job, rc) on the loop answers the request c (a copy, valid in done). When
 * the API is being freed meanwhile, done gets c == NULL and only frees job. Without a worker
 * (or once it is closing) work runs here at once, on the API's store. The request counts in
 * ch_api_in_flight until done returns, so shutdown drains it like the pool's jobs.
 */
typedef int (*ch_api__read_work_fn)(ch_store_t *st, void *job);
typedef void (*ch_api__read_done_fn)(api_ctx_t *c, void *job, int rc);
void ch_api__store_read(api_ctx_t *c, ch_api__read_work_fn work, ch_api__read_done_fn done,
                        void *job);
/* As ch_api__store_read for a use case that writes: telling(job, rc) (may be NULL) runs on the
 * loop before what work committed is told to the watchers of the API's store
 * (ch_store_async_watched); without a worker, before work. A busy worker (CH_EAGAIN): the
 * request is answered 503 "busy" with Retry-After here, and done(NULL, job, CH_EAGAIN) only
 * frees job (for reads too). */
void ch_api__store_write(api_ctx_t *c, ch_api__read_work_fn work,
                         void (*telling)(void *job, int rc), ch_api__read_done_fn done, void *job);

/* Commits the batch of event opens and sends their records to the pool (no-op when none). */
void ch_api__flush_events(ch_api_t *api);

#endif /* CH_API_CTX_H */

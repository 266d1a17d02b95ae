/*
 * api/auth_routes.c: who may call what, and the account routes.
 *
 *  - ch_api__authorize: every non-public route passes here first: a session cookie (people)
 *    or a Bearer API key (agencies' systems), the route's roles, and for sessions the CSRF
 *    token on every request that changes state. Refusals are audited. A credential auth's
 *    principals cache does not hold is read on the store worker, the request waiting.
 *  - POST/GET/DELETE /api/v1/session: log in (Argon2id on the auth module's hash pool, so
 *    neither the loop nor the audit's appends wait for it), who am I, log out. An attempt
 *    counts against its client address (the throttle) and its user name from that address
 *    (the lock-out) before it is hashed; beyond the pool's bounds it is answered 429 at once.
 *  - /api/v1/users and /api/v1/apikeys for administrators; their reads and writes, and the
 *    login's and logout's, on the store worker.
 *
 * No password, token or key is ever logged or put on the audit record.
 */
#include "api/api_ctx.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODULE "api"

static const char *const unauth_header = "WWW-Authenticate: Bearer realm=\"cctvhub\"\r\n";

/* ---- authorization ------------------------------------------------------------------------- */

static int method_is_safe(ch_slice_t m)
{
    return ch_slice_eq(m, "GET") || ch_slice_eq(m, "HEAD");
}

/* Audits a refused request. The record names the peer (and the principal when known) and the
 * reason, never the credential. */
static void audit_refusal(api_ctx_t *c, const char *action, const char *reason)
{
    char path[200];
    size_t n = c->req->path.len < sizeof(path) - 1 ? c->req->path.len : sizeof(path) - 1;
    memcpy(path, c->req->path.ptr, n);
    path[n] = '\0';
    char method[16];
    n = c->req->method.len < sizeof(method) - 1 ? c->req->method.len : sizeof(method) - 1;
    memcpy(method, c->req->method.ptr, n);
    method[n] = '\0';
    json_t *d = json_pack("{s:s, s:s, s:s, s:s}", "reason", reason, "method", method, "path", path,
                          "peer", c->req->peer);
    (void)ch_api__audit_refusal(c, action,
                                strcmp(action, "auth.denied") == 0      ? 401
                                : strcmp(action, "auth.throttled") == 0 ? 429
                                                                        : 403,
                                d);
}

/*
 * The one place that decides what a request may do once authentication has answered (rc and
 * why as ch_auth_authenticate gives them, c->who the principal): 0 when it may go on to its
 * route, else non-zero after answering. detail is the store's message for the log, or NULL.
 */
static int authorize_decide(api_ctx_t *c, unsigned roles, int rc, const char *why,
                            const char *detail)
{
    if (rc == -EBUSY) {
        /* The store worker cannot take the read now: as its other requests, nothing ran. */
        ch_api__err_t e;
        ch_api__err_set(&e, 503, "busy", NULL, "%s",
                        "the store has too many requests waiting; try again shortly");
        ch_api__reply_err(c, &e, "Retry-After: 1\r\n");
        return -1;
    }
    if (rc == -ECANCELED) {
        ch_api__reply_error(c, 503, "unavailable", NULL, "the hub is stopping");
        return -1;
    }
    if (rc == CH_EPERM) {
        audit_refusal(c, "auth.denied", why);
        ch_api__err_t e;
        ch_api__err_set(&e, 401, "unauthenticated", NULL, "%s", why);
        ch_api__reply_err(c, &e, unauth_header);
        return -1;
    }
    if (rc != 0) {
        ch_log(CH_LOG_ERROR, MODULE, "msg=\"authentication failed\" rc=%d error=\"%s\"", rc,
               detail != NULL ? detail : "");
        ch_api__reply_error(c, 500, "internal", NULL, "the account store failed");
        return -1;
    }
    if (c->who.kind == CH_AUTH_NONE) {
        ch_api__err_t e;
        ch_api__err_set(&e, 401, "unauthenticated", NULL,
                        "log in (POST /api/v1/session) or send an API key as a Bearer token");
        ch_api__reply_err(c, &e, unauth_header);
        return -1;
    }
    if (ch_auth_tls_binding_check(&c->who, c->req->tls_peer_key, &why) != 0) {
        /* An API key bound to its agency's client certificate: the key alone is not enough. */
        audit_refusal(c, "auth.denied", why);
        ch_api__err_t e;
        ch_api__err_set(&e, 401, "unauthenticated", NULL, "%s", why);
        ch_api__reply_err(c, &e, unauth_header);
        return -1;
    }
    if (!(c->who.role & roles)) {
        audit_refusal(c, "auth.forbidden", "role not allowed");
        ch_api__err_t e;
        ch_api__err_set(&e, 403, "forbidden", NULL, "the role %s may not do this",
                        ch_auth_role_name(c->who.role));
        ch_api__reply_err(c, &e, NULL);
        return -1;
    }
    if (c->who.kind == CH_AUTH_USER && !method_is_safe(c->req->method)) {
        const ch_slice_t *t = ch_http_request_header(c->req, "X-CSRF-Token");
        if (t == NULL || !ch_auth_secret_eq(t->ptr, t->len, c->who.csrf, strlen(c->who.csrf))) {
            audit_refusal(c, "auth.forbidden", "missing or wrong CSRF token");
            ch_api__reply_error(c, 403, "csrf", "X-CSRF-Token",
                                "a request that changes state needs the session's CSRF token in "
                                "X-CSRF-Token");
            return -1;
        }
    }
    return 0;
}

/* A request waiting for its principal, read on the store worker at a miss of the cache. The
 * HTTP server keeps the request valid until it is answered. */
typedef struct auth_wait {
    ch_auth_lookup_t lookup; /* first: the cache's callback gets it back */
    api_ctx_t ctx;
    ch_api__match_t m;
} auth_wait_t;

static void auth_wait_free(auth_wait_t *w)
{
    sodium_memzero(w, sizeof(*w)); /* the principal's CSRF token goes */
    ch_free(w);
}

/* Back on the loop with the principal: the request goes on exactly where it would have. */
static void authenticated(ch_auth_lookup_t *l, int rc)
{
    auth_wait_t *w = (auth_wait_t *)l;
    ch_api_t *api = w->ctx.api;
    api->in_flight--;
    if (api->freeing) {
        auth_wait_free(w); /* nobody is left to answer */
        if (api->in_flight == 0) {
            ch_api_free(api);
        }
        return;
    }
    w->ctx.who = l->who;
    if (authorize_decide(&w->ctx, w->m.roles, rc, l->why, NULL) == 0) {
        ch_api__dispatch(&w->ctx, &w->m);
    }
    auth_wait_free(w);
}

void ch_api__authorize(api_ctx_t *c, const ch_api__match_t *m)
{
    ch_api_t *api = c->api;
    const char *why = NULL;
    const ch_slice_t *cookie = ch_http_request_header(c->req, "Cookie");
    const ch_slice_t *authz = ch_http_request_header(c->req, "Authorization");
    int64_t now = ch_time_now_ms();
    int rc;
    if (api->principals == NULL) {
        /* No cache (closed, or it could not be made): the store, on the loop. */
        rc = ch_auth_authenticate(api->st, &api->auth, cookie, authz, now, &c->who, &why);
        if (authorize_decide(c, m->roles, rc, why, ch_store_errmsg(api->st)) == 0) {
            ch_api__dispatch(c, m);
        }
        return;
    }
    auth_wait_t *w = ch_calloc(1, sizeof(*w));
    w->ctx = *c;
    w->m = *m;
    rc = ch_auth_principals_lookup(api->principals, &api->auth, cookie, authz, now, &w->lookup,
                                   authenticated);
    if (rc == CH_EAGAIN) {
        api->in_flight++; /* authenticated() answers it */
        return;
    }
    c->who = w->lookup.who;
    why = w->lookup.why;
    auth_wait_free(w);
    if (authorize_decide(c, m->roles, rc, why, ch_store_errmsg(api->st)) == 0) {
        ch_api__dispatch(c, m);
    }
}

/* ---- JSON of accounts ---------------------------------------------------------------------- */

/* Times as the rest of the API writes them: RFC 3339 UTC text, or null. */
static json_t *opt_time(int64_t ms)
{
    if (ms <= 0) {
        return json_null();
    }
    char ts[32];
    ch_time_format_rfc3339(ms, ts);
    return json_string(ts);
}

static json_t *user_json(const ch_user_t *u)
{
    return json_pack("{s:I, s:s, s:s, s:o, s:b, s:o, s:o, s:o, s:o}", "id", (json_int_t)u->id,
                     "name", u->name, "role", u->role, "agency_id",
                     u->agency_id > 0 ? json_integer(u->agency_id) : json_null(), "disabled",
                     u->disabled, "locked_until", opt_time(u->locked_until), "last_login",
                     opt_time(u->last_login), "created_at", opt_time(u->created_at), "updated_at",
                     opt_time(u->updated_at));
}

static json_t *apikey_json(const ch_apikey_t *k)
{
    return json_pack("{s:I, s:I, s:s, s:o, s:o, s:o, s:o}", "id", (json_int_t)k->id, "agency_id",
                     (json_int_t)k->agency_id, "role", k->role, "label",
                     k->label != NULL ? json_string(k->label) : json_null(), "revoked_at",
                     opt_time(k->revoked_at), "created_at", opt_time(k->created_at), "tls_key",
                     k->tls_key != NULL ? json_string(k->tls_key) : json_null());
}

/* ---- hashing: Argon2id on the hash pool -------------------------------------------------- */

typedef enum pw_job_kind {
    JOB_LOGIN,       /* verify a password */
    JOB_USER_CREATE, /* hash a new user's password */
    JOB_USER_PATCH,  /* hash a changed password */
} pw_job_kind_t;

typedef struct pw_job {
    ch_auth_hash_job_t hash; /* first: the pool's callback gets it back */
    api_ctx_t ctx;
    pw_job_kind_t kind;
    char *password; /* wiped and freed when the job ends */
    size_t password_len;
    int ok;                       /* login: the password matched; others: the hash was made */
    ch_user_t user;               /* create and patch: the record to write */
    ch_auth_login_t login;        /* login: the try (auth/login.c) */
    ch_auth_session_made_t made;  /* login: the session made (on the store worker) */
    int64_t checked_at;           /* login: when the password's verdict came back */
    int wrote;                    /* login: the session's transaction ran (the worker's flag) */
    ch_auth_user_change_t change; /* patch: the change asked (its role in role) */
    char *role;
    ch_user_t written; /* create and patch: the user as stored (on the store worker) */
    ch_fault_t err;    /* the use case's refusal */
} pw_job_t;

static void pw_job_free(pw_job_t *j)
{
    if (j->password != NULL) {
        sodium_memzero(j->password, j->password_len);
        ch_free(j->password);
    }
    sodium_memzero(j->hash.hash, sizeof(j->hash.hash));
    ch_user_fini(&j->user);
    ch_auth_login_fini(&j->login);
    ch_auth_session_made_fini(&j->made);
    ch_free(j->role);
    ch_user_fini(&j->written);
    ch_free(j);
}

static void login_finish(pw_job_t *j);
static void user_write_finish(pw_job_t *j);

static void pw_done(ch_auth_hash_job_t *hj)
{
    pw_job_t *j = (pw_job_t *)hj;
    ch_api_t *api = j->ctx.api;
    api->in_flight--;
    j->ok = j->hash.result == 0;
    if (api->freeing) {
        pw_job_free(j);
        if (api->in_flight == 0) {
            ch_api_free(api);
        }
        return;
    }
    if (j->kind == JOB_LOGIN) {
        login_finish(j); /* which frees j */
    } else {
        user_write_finish(j); /* which frees j */
    }
}

/* Hands j to the hash pool; addr is the client address a login counts against (NULL: an
 * administrator's request, never refused). 0, or non-zero after answering and freeing j. */
static int pw_queue(pw_job_t *j, const char *addr)
{
    ch_api_t *api = j->ctx.api;
    j->hash.password = j->password;
    j->hash.password_len = j->password_len;
    int rc = api->hasher != NULL ? ch_auth_hasher_submit(api->hasher, &j->hash, addr, pw_done)
                                 : -ECANCELED; /* closed: the hub is stopping */
    if (rc == CH_EAGAIN) {
        /* Beyond the pool's bounds: refused at once, without a record (a refusal for rate). */
        ch_api__err_t e;
        ch_api__err_set(&e, 429, "busy", NULL, "%s",
                        "too many logins are being checked; try again in a second");
        ch_api__reply_err(&j->ctx, &e, "Retry-After: 1\r\n");
        pw_job_free(j);
        return rc;
    }
    if (rc != 0) {
        ch_api__reply_error(&j->ctx, 503, "busy", NULL, "the hub cannot take this now");
        pw_job_free(j);
        return rc;
    }
    api->in_flight++;
    return 0;
}

static pw_job_t *pw_job_new(api_ctx_t *c, pw_job_kind_t kind, const char *pw, size_t len)
{
    pw_job_t *j = ch_calloc(1, sizeof(*j));
    j->ctx = *c;
    j->kind = kind;
    j->hash.kind = kind == JOB_LOGIN ? CH_AUTH_HASH_VERIFY : CH_AUTH_HASH_MAKE;
    j->password = ch_malloc(len + 1);
    memcpy(j->password, pw, len);
    j->password[len] = '\0';
    j->password_len = len;
    return j;
}

/* ---- the session --------------------------------------------------------------------------- */

static void reply_retry(api_ctx_t *c, const char *code, int64_t wait_ms, const char *message)
{
    char hdr[64];
    snprintf(hdr, sizeof(hdr), "Retry-After: %lld\r\n", (long long)((wait_ms + 999) / 1000));
    ch_api__err_t e;
    ch_api__err_set(&e, 429, code, NULL, "%s", message);
    ch_api__reply_err(c, &e, hdr);
}

/* The login's audit records, each with its own actor. */
static int login_record(void *data, const char *actor, const char *action, const char *object,
                        const char *outcome, json_t *details)
{
    return ch_api__audit(data, actor, action, object, outcome, details);
}

static ch_auth_login_env_t login_env(api_ctx_t *c)
{
    ch_api_t *api = c->api;
    return (ch_auth_login_env_t){.st = api->st,
                                 .cfg = &api->auth,
                                 .throttle = api->throttle,
                                 .lockout = api->lockout,
                                 .rec = {.record = login_record, .data = c}};
}

/* The store worker's thread: finds the user. */
static int login_read_work(ch_store_t *st, void *job)
{
    return ch_auth_login_read(st, &((pw_job_t *)job)->login);
}

/* A login back from the store worker: its job, with *env; or NULL after freeing it when
 * nobody is left to answer (c NULL). */
static pw_job_t *login_back(api_ctx_t *c, void *job, ch_auth_login_env_t *env)
{
    if (c == NULL) {
        pw_job_free(job);
        return NULL;
    }
    *env = login_env(c);
    return job;
}

/* Back on the loop with the user: the lock-out, then the password to the hash pool, which
 * takes j (or frees it). */
static void login_read_done(api_ctx_t *c, void *job, int rc)
{
    ch_auth_login_env_t env;
    pw_job_t *j = login_back(c, job, &env);
    if (j == NULL) {
        return;
    }
    int64_t now = ch_time_now_ms();
    int64_t wait;
    ch_fault_t f;
    if (ch_auth_login_check(&env, &j->login, rc, now, &wait, &f) != 0) {
        if (wait > 0) {
            reply_retry(c, "locked", wait, f.message);
        } else {
            ch_api__reply_fault(c, &f);
        }
        pw_job_free(j);
        return;
    }
    snprintf(j->hash.hash, sizeof(j->hash.hash), "%s", j->login.hash);
    /* Counted once queued, before hashing (ch_auth_login_count). */
    if (pw_queue(j, j->login.peer) == 0) {
        ch_auth_login_count(&env, &j->login, now);
    }
}

static void handle_login(api_ctx_t *c)
{
    ch_api_t *api = c->api;
    int64_t now = ch_time_now_ms();
    if (ch_api__reject_query(c) != 0) {
        return;
    }
    int64_t wait = ch_auth_throttle_check(api->throttle, c->req->peer, now);
    if (wait > 0) {
        audit_refusal(c, "auth.throttled", "too many failed logins from this address");
        reply_retry(c, "throttled", wait, "too many failed logins from this address; wait");
        return;
    }
    json_t *body = ch_api__read_body(c);
    if (body == NULL) {
        return;
    }
    const char *name = json_string_value(json_object_get(body, "username"));
    json_t *pwj = json_object_get(body, "password");
    const char *field = NULL;
    if (name == NULL || name[0] == '\0' || strlen(name) > 64) {
        field = "username";
    } else if (!json_is_string(pwj) || json_string_length(pwj) == 0 ||
               json_string_length(pwj) > CH_AUTH_PASSWORD_MAX) {
        field = "password";
    } else {
        const char *k;
        json_t *v;
        json_object_foreach(body, k, v)
        {
            if (strcmp(k, "username") != 0 && strcmp(k, "password") != 0) {
                field = k;
            }
        }
    }
    if (field != NULL) {
        ch_api__err_t e;
        ch_api__err_set(&e, 400, "invalid", field,
                        "send {\"username\": \"...\", \"password\": \"...\"}");
        ch_api__reply_err(c, &e, NULL);
        json_decref(body);
        return;
    }
    pw_job_t *j = pw_job_new(c, JOB_LOGIN, json_string_value(pwj), json_string_length(pwj));
    ch_auth_login_init(&j->login, name, c->req->peer);
    json_decref(body);
    ch_api__store_write(c, login_read_work, NULL, login_read_done, j);
}

/* Set-Cookie for a new session, or one that clears it (token NULL). */
static void session_cookie(const ch_api_t *api, const char *token, char out[256])
{
    if (token != NULL) {
        snprintf(out, 256,
                 "Set-Cookie: " CH_AUTH_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict%s\r\n",
                 token, api->cookie_secure ? "; Secure" : "");
    } else {
        snprintf(out, 256,
                 "Set-Cookie: " CH_AUTH_COOKIE
                 "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0%s\r\n",
                 api->cookie_secure ? "; Secure" : "");
    }
}

/* The store worker's thread: the session made, or the failure recorded (the recorder's
 * context is the job's copy). */
static int login_write_work(ch_store_t *st, void *job)
{
    pw_job_t *j = job;
    ch_auth_login_recorder_t rec = {.record = login_record, .data = &j->ctx};
    j->wrote = 1;
    return ch_auth_login_write(st, &rec, &j->ctx.api->auth, &j->login, j->checked_at, &j->made,
                               &j->err);
}

/* Back on the loop: answers the login (c NULL: nobody to answer) and frees j. */
static void login_write_done(api_ctx_t *c, void *job, int rc)
{
    ch_auth_login_env_t env;
    pw_job_t *j = job;
    if (c == NULL && !j->wrote && j->login.user_found && !j->login.user.disabled &&
        j->login.password_ok) {
        /* A busy worker refused the session's transaction (at once, inside login_finish, so
         * j->ctx is whole): the right password takes its counted try back, as a session made
         * would, so that logins refused for load never lock their user out. */
        env = login_env(&j->ctx);
        ch_auth_login_done(&env, &j->login, 0);
    }
    j = login_back(c, job, &env);
    if (j == NULL) {
        return;
    }
    ch_auth_login_done(&env, &j->login, rc);
    if (rc != 0 && j->err.kind == CH_FAULT_DENIED) {
        /* A credential refused is a 401, which no domain fault is. */
        ch_api__reply_error(c, 401, "bad_credentials", NULL, j->err.message);
    } else if (rc != 0) {
        ch_api__reply_fault(c, &j->err);
    } else {
        char cookie[256];
        session_cookie(c->api, j->made.token, cookie);
        json_t *o =
            json_pack("{s:o, s:s, s:o, s:o*}", "user", user_json(&j->made.user), "csrf",
                      j->made.csrf, "expires_at", opt_time(j->made.expires_at), "capabilities",
                      ch_api__capabilities_of(c->api, ch_auth_role_bit(j->made.user.role)));
        ch_api__reply_json(c, 200, cookie, o);
    }
    pw_job_free(j);
}

/* Back on the loop with the password's verdict: the session's transaction goes to the store
 * worker, which takes j. */
static void login_finish(pw_job_t *j)
{
    ch_auth_login_env_t env = login_env(&j->ctx);
    j->checked_at = ch_time_now_ms();
    ch_auth_login_checked(&env, &j->login, j->ok, j->checked_at);
    ch_api__store_write(&j->ctx, login_write_work, NULL, login_write_done, j);
}

static void handle_whoami(api_ctx_t *c)
{
    if (ch_api__reject_query(c) != 0) {
        return;
    }
    const ch_auth_principal_t *w = &c->who;
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:o}", "kind", w->kind == CH_AUTH_USER ? "user" : "apikey",
                  "name", w->name, "role", ch_auth_role_name(w->role), "agency_id",
                  w->agency_id > 0 ? json_integer(w->agency_id) : json_null());
    json_object_set_new(o, "capabilities", ch_api__capabilities_of(c->api, w->role));
    if (w->kind == CH_AUTH_USER) {
        json_object_set_new(o, "csrf", json_string(w->csrf));
    }
    ch_api__reply_json(c, 200, NULL, o);
}

/* A logout on the store worker: the session's deletion and its record, one transaction. */
typedef struct logout_job {
    api_ctx_t ctx;  /* the recorder's: the principal whose session ends */
    int unrecorded; /* the record could not be made: nothing changed */
} logout_job_t;

/* The store worker's thread. */
static int logout_work(ch_store_t *st, void *job)
{
    logout_job_t *j = job;
    int rc = ch_store_begin(st);
    if (rc == 0) {
        rc = ch_store_session_delete(st, j->ctx.who.session_id);
    }
    /* Ending a session ends access: it is recorded even on a full audit disk. */
    if (rc == 0 &&
        ch_api__audit_ending(&j->ctx, NULL, "auth.logout", j->ctx.who.actor, "ok", NULL) != 0) {
        (void)ch_store_rollback(st);
        j->unrecorded = 1;
        return CH_EIO;
    }
    if (rc != 0 || (rc = ch_store_commit(st)) != 0) {
        (void)ch_store_rollback(st);
        return rc;
    }
    return 0;
}

/* Back on the loop, once the deletion was told to the principals cache: the answer. */
static void logout_done(api_ctx_t *c, void *job, int rc)
{
    logout_job_t *j = job;
    if (c != NULL && j->unrecorded) {
        ch_api__reply_error(c, 503, "audit_unavailable", NULL,
                            "the logout could not be put on the audit record");
    } else if (c != NULL && rc != 0) {
        ch_api__reply_error(c, 500, "internal", NULL, "the account store failed");
    } else if (c != NULL) {
        char cookie[256];
        session_cookie(c->api, NULL, cookie);
        ch_api__reply(c, 204, NULL, cookie, NULL, 0);
    }
    sodium_memzero(j, sizeof(*j)); /* the principal's CSRF token goes */
    ch_free(j);
}

static void handle_logout(api_ctx_t *c)
{
    if (ch_api__reject_query(c) != 0) {
        return;
    }
    if (c->who.kind != CH_AUTH_USER) {
        ch_api__reply_error(c, 400, "invalid", NULL, "an API key has no session to end");
        return;
    }
    logout_job_t *j = ch_calloc(1, sizeof(*j));
    j->ctx = *c;
    ch_api__store_write(c, logout_work, NULL, logout_done, j);
}

void ch_api__handle_session(api_ctx_t *c, ch_api__route_id_t route)
{
    switch (route) {
    case CH_API__R_SESSION_LOGIN:
        handle_login(c);
        break;
    case CH_API__R_SESSION_GET:
        handle_whoami(c);
        break;
    default:
        handle_logout(c);
        break;
    }
}

/* ---- users --------------------------------------------------------------------------------- */

static void reply_bad(api_ctx_t *c, const char *field, const char *message)
{
    ch_api__reply_error(c, 400, "invalid", field, message);
}

/* The use cases' audit records over HTTP: appended to the log at once, with the request's
 * principal as actor (ch_auth_recorder_t). */
static int api_record(void *data, const char *action, const char *object, json_t *details,
                      int ends_access)
{
    api_ctx_t *c = data;
    return ends_access ? ch_api__audit_ending(c, NULL, action, object, "ok", details)
                       : ch_api__audit(c, NULL, action, object, "ok", details);
}

/* GET /api/v1/users and /api/v1/apikeys: agency_id, cursor, limit (100 by default: 0). */
static int list_query(api_ctx_t *c, ch_store_filter_t *f)
{
    ch_api__query_t q;
    memset(f, 0, sizeof(*f));
    const ch_api__qparam_t spec[] = {
        {CH_API__QP_ID("agency_id", &f->agency_id)},
        {CH_API__QP_CURSOR("cursor", &f->after_id)},
        {CH_API__QP_LIMIT("limit", &f->limit)},
        {CH_API__QP_END},
    };
    int rc = ch_api__list_query(c, spec, &q);
    ch_api__query_fini(&q);
    return rc;
}

static int id_of(api_ctx_t *c, ch_slice_t s, int64_t *id)
{
    if (ch_api__parse_id(s, id) != 0) {
        ch_api__reply_error(c, 404, "not_found", NULL, "no such record");
        return -1;
    }
    return 0;
}

/* The first field of body not in keys (borrowed from body), or NULL. */
static const char *unknown_key(json_t *body, const char *const *keys)
{
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        int known = 0;
        for (size_t i = 0; keys[i] != NULL; i++) {
            known |= strcmp(k, keys[i]) == 0;
        }
        if (!known) {
            return k;
        }
    }
    return NULL;
}

static void reply_unknown_key(api_ctx_t *c, const char *k)
{
    ch_api__err_t e;
    ch_api__err_set(&e, 400, "invalid", k, "unknown field");
    ch_api__reply_err(c, &e, NULL);
}

static int only_keys(api_ctx_t *c, json_t *body, const char *const *keys)
{
    const char *k = unknown_key(body, keys);
    if (k != NULL) {
        reply_unknown_key(c, k);
        return -1;
    }
    return 0;
}

/*
 * A user's creation or change checked on the store worker before anything is hashed or
 * written: the use case's checks read the store (the agency, the user), so they run there,
 * and the answers are given on the loop in the order the route has always given them. The
 * request's strings live in body until the answer.
 */
typedef struct user_check {
    json_t *body;
    ch_auth_user_req_t req;       /* create */
    ch_auth_user_change_t first;  /* patch: the user only (does it exist?) */
    ch_auth_user_change_t change; /* patch: role and agency, without the flags */
    ch_auth_user_change_t full;   /* patch: with the flags and the password */
    const char *unknown;          /* patch: a field the route does not take, or NULL */
    const char *bad_field;        /* patch: disabled, unlock or password of the wrong type */
    const char *bad_message;
    int failed; /* which check refused (err), 0: none */
    ch_fault_t err;
} user_check_t;

static void user_check_free(user_check_t *u)
{
    json_decref(u->body);
    ch_free(u);
}

/* The store worker's thread: a new user's rules. */
static int user_create_check_work(ch_store_t *st, void *job)
{
    user_check_t *u = job;
    int rc = ch_auth_user_check(st, &u->req, &u->err);
    u->failed = rc != 0;
    return rc;
}

/* Back on the loop: a refusal, or the password to the hash pool. */
static void user_create_check_done(api_ctx_t *c, void *job, int rc)
{
    user_check_t *u = job;
    json_t *pwj = json_object_get(u->body, "password");
    if (c == NULL) {
        /* nobody to answer */
    } else if (u->failed) {
        ch_api__reply_fault(c, &u->err);
    } else if (rc != 0) {
        ch_api__reply_error(c, 500, "internal", NULL, "the store failed");
    } else if (!json_is_string(pwj)) {
        reply_bad(c, "password", "password must be a string");
    } else {
        pw_job_t *j = pw_job_new(c, JOB_USER_CREATE, u->req.password, u->req.password_len);
        j->user.name = ch_strdup(u->req.name);
        j->user.role = ch_strdup(u->req.role);
        j->user.agency_id = u->req.agency_id;
        (void)pw_queue(j, NULL);
    }
    user_check_free(u);
}

static void user_create(api_ctx_t *c)
{
    static const char *const keys[] = {"name", "role", "agency_id", "password", NULL};
    json_t *body = ch_api__read_body(c);
    if (body == NULL) {
        return;
    }
    if (only_keys(c, body, keys) != 0) {
        json_decref(body);
        return;
    }
    /* JSON to the typed request; the rules are the use case's (ch_auth_user_check). An
     * agency_id that is not a positive integer is passed on as not an id (-1). */
    json_t *agency = json_object_get(body, "agency_id");
    json_t *pwj = json_object_get(body, "password");
    user_check_t *u = ch_calloc(1, sizeof(*u));
    u->body = body;
    u->req = (ch_auth_user_req_t){
        .name = json_string_value(json_object_get(body, "name")),
        .role = json_string_value(json_object_get(body, "role")),
        .agency_id = agency == NULL || json_is_null(agency) ? 0
                     : json_is_integer(agency) && json_integer_value(agency) >= 1
                         ? json_integer_value(agency)
                         : -1,
        .password = json_string_value(pwj),
        .password_len = json_is_string(pwj) ? json_string_length(pwj) : 0,
    };
    ch_api__store_read(c, user_create_check_work, user_create_check_done, u);
}

/* The store worker's thread: a change's checks, in the route's order, up to the first that
 * refuses (the ones without the store were judged on the loop and stop it here too). */
static int user_patch_check_work(ch_store_t *st, void *job)
{
    user_check_t *u = job;
    /* An unknown user first, then the body's fields (ch_auth_user_change_check). */
    if (ch_auth_user_change_check(st, &u->first, &u->err) != 0) {
        u->failed = 1;
    } else if (u->unknown == NULL && ch_auth_user_change_check(st, &u->change, &u->err) != 0) {
        u->failed = 2;
    } else if (u->unknown == NULL && u->bad_field == NULL && u->full.password != NULL &&
               ch_auth_user_change_check(st, &u->full, &u->err) != 0) {
        u->failed = 3;
    }
    return 0;
}

/* Back on the loop: the first refusal in the route's order, or the change to the hash pool
 * (a new password) or straight to the store worker. */
static void user_patch_check_done(api_ctx_t *c, void *job, int rc)
{
    user_check_t *u = job;
    if (c == NULL) {
        user_check_free(u);
        return;
    }
    if (u->failed == 1) {
        ch_api__reply_fault(c, &u->err);
    } else if (u->unknown != NULL) {
        reply_unknown_key(c, u->unknown);
    } else if (u->failed == 2) {
        ch_api__reply_fault(c, &u->err);
    } else if (u->bad_field != NULL) {
        reply_bad(c, u->bad_field, u->bad_message);
    } else if (u->failed == 3) {
        ch_api__reply_fault(c, &u->err);
    } else if (rc != 0) {
        ch_api__reply_error(c, 500, "internal", NULL, "the store failed");
    } else {
        const ch_auth_user_change_t *req = &u->full;
        pw_job_t *j = pw_job_new(c, JOB_USER_PATCH, req->password != NULL ? req->password : "",
                                 req->password_len);
        j->change = *req;
        j->change.password = NULL;
        j->change.password_len = 0;
        j->role = req->role != NULL ? ch_strdup(req->role) : NULL;
        j->change.role = j->role;
        if (req->password == NULL) {
            /* Nothing to hash: on to the write without the pool. */
            j->ok = 1;
            j->hash.hash[0] = '\0';
            user_write_finish(j);
        } else {
            (void)pw_queue(j, NULL);
        }
    }
    user_check_free(u);
}

static void user_patch(api_ctx_t *c, int64_t id)
{
    static const char *const keys[] = {"role", "agency_id", "password", "disabled", "unlock", NULL};
    json_t *body = ch_api__read_body(c);
    if (body == NULL) {
        return;
    }
    user_check_t *u = ch_calloc(1, sizeof(*u));
    u->body = body;
    u->first = (ch_auth_user_change_t){.id = id, .disabled = -1};
    u->unknown = unknown_key(body, keys);
    /* JSON to the typed change: a role that is not text is no role (""), an agency_id that
     * is not a positive integer or null is not an id (-1); the rules are the use case's. */
    json_t *role = json_object_get(body, "role");
    json_t *agency = json_object_get(body, "agency_id");
    json_t *dis = json_object_get(body, "disabled");
    json_t *unlock = json_object_get(body, "unlock");
    json_t *pwj = json_object_get(body, "password");
    ch_auth_user_change_t req = u->first;
    req.role = role == NULL ? NULL : json_is_string(role) ? json_string_value(role) : "";
    req.set_agency = agency != NULL;
    req.agency_id = agency == NULL || json_is_null(agency) ? 0
                    : json_is_integer(agency) && json_integer_value(agency) >= 1
                        ? json_integer_value(agency)
                        : -1;
    u->change = req;
    if (dis != NULL && !json_is_boolean(dis)) {
        u->bad_field = "disabled";
        u->bad_message = "disabled must be true or false";
    } else if (unlock != NULL && !json_is_true(unlock)) {
        u->bad_field = "unlock";
        u->bad_message = "unlock takes only true";
    } else if (pwj != NULL && !json_is_string(pwj)) {
        u->bad_field = "password";
        u->bad_message = "password must be a string";
    }
    req.disabled = dis != NULL ? json_is_true(dis) : -1;
    req.unlock = unlock != NULL;
    if (json_is_string(pwj)) {
        req.password = json_string_value(pwj);
        req.password_len = json_string_length(pwj);
    }
    u->full = req;
    ch_api__store_read(c, user_patch_check_work, user_patch_check_done, u);
}

/* The store worker's thread: the use case writes and audits the user (the recorder's context
 * is the job's copy). */
static int user_write_work(ch_store_t *st, void *job)
{
    pw_job_t *j = job;
    ch_auth_recorder_t rec = {api_record, &j->ctx};
    if (j->kind == JOB_USER_CREATE) {
        ch_auth_user_req_t req = {
            .name = j->user.name, .role = j->user.role, .agency_id = j->user.agency_id};
        return ch_auth_user_create(st, &req, j->hash.hash, &rec, &j->written, &j->err);
    }
    return ch_auth_user_update(st, &j->change, j->hash.hash[0] != '\0' ? j->hash.hash : NULL, &rec,
                               &j->written, &j->err);
}

/* Back on the loop: answers the write (c NULL: nobody to answer) and frees j. */
static void user_write_done(api_ctx_t *c, void *job, int rc)
{
    pw_job_t *j = job;
    if (c != NULL && rc != 0) {
        ch_api__reply_fault(c, &j->err);
    } else if (c != NULL) {
        ch_api__reply_json(c, j->kind == JOB_USER_CREATE ? 201 : 200, NULL, user_json(&j->written));
    }
    pw_job_free(j);
}

/* Back on the loop with the new hash (when one was asked): the write goes to the store worker,
 * which takes j. */
static void user_write_finish(pw_job_t *j)
{
    if (!j->ok) {
        ch_api__reply_error(&j->ctx, 500, "internal", NULL, "the password could not be hashed");
        pw_job_free(j);
        return;
    }
    ch_api__store_write(&j->ctx, user_write_work, NULL, user_write_done, j);
}

/* A read of the account routes on the store worker: a page of users or API keys, or one user.
 */
typedef struct account_read {
    ch_store_filter_t f;
    int64_t id; /* a user's: 0 for a list */
    ch_user_list_t users;
    ch_apikey_list_t keys;
    ch_user_t user;
} account_read_t;

static int users_work(ch_store_t *st, void *job)
{
    account_read_t *r = job;
    return r->id != 0 ? ch_store_user_get(st, r->id, &r->user)
                      : ch_store_user_list(st, &r->f, &r->users);
}

static void users_done(api_ctx_t *c, void *job, int rc)
{
    account_read_t *r = job;
    if (c == NULL) {
        /* nobody to answer */
    } else if (r->id != 0 && rc == CH_ENOTFOUND) {
        ch_api__reply_error(c, 404, "not_found", NULL, "no such user");
    } else if (rc != 0) {
        ch_api__reply_error(c, 500, "internal", NULL, "the store failed");
    } else if (r->id != 0) {
        ch_api__reply_json(c, 200, NULL, user_json(&r->user));
    } else {
        json_t *items = json_array();
        for (size_t i = 0; i < r->users.count; i++) {
            json_array_append_new(items, user_json(&r->users.items[i]));
        }
        ch_api__reply_page(c, items, r->users.total, r->users.next_id);
    }
    ch_user_fini(&r->user); /* empty for a list */
    if (rc == 0 && r->id == 0) {
        ch_user_list_free(&r->users);
    }
    ch_free(r);
}

void ch_api__handle_users(api_ctx_t *c, ch_api__route_id_t route, ch_slice_t id_text)
{
    int64_t id = 0;
    if (route == CH_API__R_USERS_LIST) {
        account_read_t *r = ch_calloc(1, sizeof(*r));
        if (list_query(c, &r->f) != 0) {
            ch_free(r);
            return;
        }
        ch_api__store_read(c, users_work, users_done, r);
        return;
    }
    if (route == CH_API__R_USERS_CREATE) {
        if (ch_api__reject_query(c) == 0) {
            user_create(c);
        }
        return;
    }
    if (ch_api__reject_query(c) != 0 || id_of(c, id_text, &id) != 0) {
        return;
    }
    if (route == CH_API__R_USERS_PATCH) {
        user_patch(c, id);
        return;
    }
    account_read_t *r = ch_calloc(1, sizeof(*r));
    r->id = id;
    ch_api__store_read(c, users_work, users_done, r);
}

/* ---- API keys ------------------------------------------------------------------------------ */

/* An API key's creation or revocation on the store worker: the request's context (the
 * recorder's), the use case's request (its strings in body, held until the answer) and what it
 * made. */
typedef struct key_job {
    api_ctx_t ctx;
    json_t *body;
    ch_auth_apikey_req_t req;
    int64_t id;     /* revoke: the key; 0: create */
    int label_bad;  /* create: the label is not text of at most CH_AUTH_LABEL_MAX bytes */
    int check_fail; /* create: ch_auth_apikey_check refused (err) */
    ch_auth_apikey_made_t made;
    ch_fault_t err;
} key_job_t;

/* The store worker's thread: a creation's checks (the agency read) then, when they and the
 * label pass, the key made; or the revocation. */
static int key_work(ch_store_t *st, void *job)
{
    key_job_t *k = job;
    ch_auth_recorder_t rec = {api_record, &k->ctx};
    if (k->id != 0) {
        return ch_auth_apikey_revoke(st, k->id, &rec, &k->err);
    }
    int rc = ch_auth_apikey_check(st, &k->req, &k->err);
    if (rc != 0) {
        k->check_fail = 1;
        return rc;
    }
    if (k->label_bad) {
        return CH_EINVAL; /* answered on the loop, nothing made */
    }
    return ch_auth_apikey_create(st, &k->req, &rec, &k->made, &k->err);
}

static void key_done(api_ctx_t *c, void *job, int rc)
{
    key_job_t *k = job;
    if (c != NULL && k->label_bad && !k->check_fail) {
        reply_bad(c, "label", "label must be text of at most 200 bytes");
    } else if (c != NULL && rc != 0) {
        ch_api__reply_fault(c, &k->err);
    } else if (c != NULL && k->id != 0) {
        ch_api__reply(c, 204, NULL, NULL, NULL, 0);
    } else if (c != NULL) {
        json_t *o = apikey_json(&k->made.key);
        json_object_set_new(o, "key", json_string(k->made.text));
        ch_api__reply_json(c, 201, NULL, o);
    }
    if (rc == 0 && k->id == 0) {
        ch_apikey_fini(&k->made.key);
    }
    sodium_memzero(k->made.text, sizeof(k->made.text));
    json_decref(k->body);
    ch_free(k);
}

static void key_start(api_ctx_t *c, key_job_t *k)
{
    k->ctx = *c;
    ch_api__store_write(c, key_work, NULL, key_done, k);
}

static void apikey_create(api_ctx_t *c)
{
    static const char *const keys[] = {"agency_id", "role", "label", "tls_key", NULL};
    json_t *body = ch_api__read_body(c);
    if (body == NULL) {
        return;
    }
    if (only_keys(c, body, keys) != 0) {
        goto out;
    }
    /* JSON to the typed request: an agency_id that is not an integer is no id (0), a role
     * that is not text no role ("") and a label that is not text is refused here; the rules
     * are the use case's. */
    json_t *aj = json_object_get(body, "agency_id");
    json_t *rj = json_object_get(body, "role");
    json_t *lj = json_object_get(body, "label");
    json_t *tj = json_object_get(body, "tls_key");
    ch_auth_apikey_req_t req = {
        .tls_key = tj == NULL || json_is_null(tj) ? NULL
                   : json_is_string(tj)           ? json_string_value(tj)
                                                  : "",
        .agency_id = json_is_integer(aj) ? json_integer_value(aj) : 0,
        .role = rj == NULL           ? NULL
                : json_is_string(rj) ? json_string_value(rj)
                                     : "",
        .label = json_string_value(lj),
    };
    /* The checks read the agency: on the store worker, before the label's (key_work). */
    key_job_t *k = ch_calloc(1, sizeof(*k));
    k->body = body; /* req's strings live in it */
    k->req = req;
    k->label_bad = lj != NULL && !json_is_null(lj) &&
                   (!json_is_string(lj) || json_string_length(lj) > CH_AUTH_LABEL_MAX);
    key_start(c, k);
    return;
out:
    json_decref(body);
}

static void apikey_revoke(api_ctx_t *c, int64_t id)
{
    key_job_t *k = ch_calloc(1, sizeof(*k));
    k->id = id;
    key_start(c, k);
}

static int keys_work(ch_store_t *st, void *job)
{
    account_read_t *r = job;
    return ch_store_apikey_list(st, &r->f, &r->keys);
}

static void keys_done(api_ctx_t *c, void *job, int rc)
{
    account_read_t *r = job;
    if (c != NULL && rc != 0) {
        ch_api__reply_error(c, 500, "internal", NULL, "the store failed");
    } else if (c != NULL) {
        json_t *items = json_array();
        for (size_t i = 0; i < r->keys.count; i++) {
            json_array_append_new(items, apikey_json(&r->keys.items[i]));
        }
        ch_api__reply_page(c, items, r->keys.total, r->keys.next_id);
    }
    if (rc == 0) {
        ch_apikey_list_free(&r->keys);
    }
    ch_free(r);
}

void ch_api__handle_apikeys(api_ctx_t *c, ch_api__route_id_t route, ch_slice_t id_text)
{
    int64_t id = 0;
    if (route == CH_API__R_APIKEYS_LIST) {
        account_read_t *r = ch_calloc(1, sizeof(*r));
        if (list_query(c, &r->f) != 0) {
            ch_free(r);
            return;
        }
        ch_api__store_read(c, keys_work, keys_done, r);
        return;
    }
    if (ch_api__reject_query(c) != 0) {
        return;
    }
    if (route == CH_API__R_APIKEYS_CREATE) {
        apikey_create(c);
    } else if (id_of(c, id_text, &id) == 0) {
        apikey_revoke(c, id);
    }
}

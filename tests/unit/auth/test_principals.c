/*
 * Unit tests of auth's principals cache (principals.c): a known credential is answered without
 * the store; every change that ends or alters access (a logout, a purge, a user disabled or
 * changed, a key revoked, a write by another handle) is seen by the very next request; refused
 * credentials are never kept; the table stays within its bound; a session's slide moves the
 * cached expiry at once and reaches the store when the slides are flushed (on the loop's handle
 * or on the store worker); a miss is read on a real store worker while the request waits
 * (ch_auth_principals_lookup): the principal or the refusal comes back on the loop, two misses
 * of one credential share one read, a read overtaken by a change is not kept (by a new row it
 * is), a full worker is busy and a cache freed meanwhile cancels its waiters; the worker's own
 * slides, told back to the loop, keep their entries.
 *
 * The tests open a fresh SQLite database in their own temporary directory and remove it after.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"

#define PW_HASH                                                                                    \
    "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$"                                       \
    "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY"

typedef struct fx {
    char dir[256];
    char db[300];
    char url[320];
    ch_store_t *st;
    ch_auth_principals_t *p;
    ch_auth_config_t cfg;
    int64_t agency;
    int64_t user;
} fx_t;

static int open_fx(void **state, size_t max_entries)
{
    fx_t *f = ch_calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof(f->dir), "%s/ch_principals_XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof(f->db), "%s/p.db", f->dir);
    snprintf(f->url, sizeof(f->url), "sqlite:%s", f->db);
    char *err = NULL;
    assert_int_equal(ch_store_open(f->url, &f->st, &err), 0);
    ch_agency_t a = {.name = "종로구 통합관제센터",
                     .kind = "both",
                     .level = "district",
                     .type = "district-center"};
    assert_int_equal(ch_store_agency_create(f->st, &a), 0);
    f->agency = a.id;
    ch_user_t u = {.name = "kim", .role = "operator", .password_hash = PW_HASH};
    assert_int_equal(ch_store_user_create(f->st, &u), 0);
    f->user = u.id;
    f->cfg = (ch_auth_config_t){.session_idle_ms = 10 * 60 * 1000, .session_max_ms = 0};
    ch_auth_principals_config_t pc = {.max_entries = max_entries};
    assert_int_equal(ch_auth_principals_new(f->st, &pc, &f->p), 0);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return open_fx(state, 0);
}

static int setup_small(void **state)
{
    return open_fx(state, 4);
}

static int teardown(void **state)
{
    fx_t *f = *state;
    static const char *const tails[] = {"", "-wal", "-shm", "-journal"};
    ch_auth_principals_free(f->p);
    ch_store_close(f->st);
    for (size_t i = 0; i < CH_ARRAY_SIZE(tails); i++) {
        char path[320];
        snprintf(path, sizeof(path), "%s%s", f->db, tails[i]);
        unlink(path);
    }
    rmdir(f->dir);
    ch_free(f);
    return 0;
}

/* A session of user_id; its cookie header text goes to cookie. */
static int64_t new_session(fx_t *f, int64_t user_id, char cookie[128])
{
    char token[CH_AUTH_TOKEN_LEN + 1];
    char csrf[CH_AUTH_TOKEN_LEN + 1];
    char hash[CH_AUTH_SHA256_HEX];
    ch_auth_random_token(token);
    ch_auth_random_token(csrf);
    ch_auth_sha256_hex(token, strlen(token), hash);
    ch_session_t s = {.token_hash = hash,
                      .user_id = user_id,
                      .csrf = csrf,
                      .expires_at = ch_time_now_ms() + 10 * 60 * 1000};
    assert_int_equal(ch_store_session_create(f->st, &s), 0);
    snprintf(cookie, 128, CH_AUTH_COOKIE "=%s", token);
    return s.id;
}

/* An API key of the agency; its Authorization header text goes to authz. */
static int64_t new_key(fx_t *f, char authz[128])
{
    char secret[CH_AUTH_TOKEN_LEN + 1];
    char hash[CH_AUTH_SHA256_HEX];
    char key[CH_AUTH_APIKEY_MAX];
    ch_auth_random_token(secret);
    ch_auth_sha256_hex(secret, strlen(secret), hash);
    ch_apikey_t k = {.agency_id = f->agency, .role = "agency", .secret_hash = hash};
    assert_int_equal(ch_store_apikey_create(f->st, &k), 0);
    ch_auth_apikey_format(k.id, secret, key);
    snprintf(authz, 128, "Bearer %s", key);
    return k.id;
}

static int auth_at(fx_t *f, const char *cookie, const char *authz, int64_t now,
                   ch_auth_principal_t *who, const char **why)
{
    ch_slice_t c = {cookie, cookie != NULL ? strlen(cookie) : 0};
    ch_slice_t a = {authz, authz != NULL ? strlen(authz) : 0};
    return ch_auth_principals_authenticate(f->p, &f->cfg, cookie != NULL ? &c : NULL,
                                           authz != NULL ? &a : NULL, now, who, why);
}

static int auth(fx_t *f, const char *cookie, const char *authz, ch_auth_principal_t *who,
                const char **why)
{
    return auth_at(f, cookie, authz, ch_time_now_ms(), who, why);
}

static void test_a_known_credential_reads_no_store(void **state)
{
    fx_t *f = *state;
    char cookie[128], authz[128];
    ch_auth_principal_t who;
    const char *why;
    int64_t sid = new_session(f, f->user, cookie);
    int64_t kid = new_key(f, authz);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(auth(f, cookie, NULL, &who, &why), 0);
        assert_int_equal(who.kind, CH_AUTH_USER);
        assert_int_equal(who.id, f->user);
        assert_int_equal(who.session_id, sid);
        assert_int_equal(who.role, CH_AUTH_OPERATOR);
        assert_string_equal(who.actor, "user:kim");
        assert_int_equal(strlen(who.csrf), CH_AUTH_TOKEN_LEN);
        assert_int_equal(auth(f, NULL, authz, &who, &why), 0);
        assert_int_equal(who.kind, CH_AUTH_APIKEY);
        assert_int_equal(who.id, kid);
        assert_int_equal(who.agency_id, f->agency);
    }
    assert_int_equal(ch_auth_principals_misses(f->p), 2);
    assert_int_equal(ch_auth_principals_count(f->p), 2);
    /* No credential: nobody, no read. */
    assert_int_equal(auth(f, NULL, NULL, &who, &why), 0);
    assert_int_equal(who.kind, CH_AUTH_NONE);
    assert_int_equal(ch_auth_principals_misses(f->p), 2);
}

static void test_refused_credentials_are_not_kept(void **state)
{
    fx_t *f = *state;
    char cookie[128], authz[128];
    ch_auth_principal_t who;
    const char *why;
    for (int i = 0; i < 50; i++) {
        char token[CH_AUTH_TOKEN_LEN + 1];
        ch_auth_random_token(token);
        snprintf(cookie, sizeof(cookie), CH_AUTH_COOKIE "=%s", token);
        assert_int_equal(auth(f, cookie, NULL, &who, &why), CH_EPERM);
        assert_string_equal(why, "unknown session");
    }
    assert_int_equal(ch_auth_principals_count(f->p), 0);
    /* A cached key's id with a wrong secret: refused, and the right one still answered. */
    (void)new_key(f, authz);
    assert_int_equal(auth(f, NULL, authz, &who, &why), 0);
    char wrong[128];
    snprintf(wrong, sizeof(wrong), "%s", authz);
    wrong[strlen(wrong) - 1] = wrong[strlen(wrong) - 1] == 'A' ? 'B' : 'A';
    assert_int_equal(auth(f, NULL, wrong, &who, &why), CH_EPERM);
    assert_string_equal(why, "unknown API key");
    assert_int_equal(auth(f, NULL, authz, &who, &why), 0);
    assert_int_equal(ch_auth_principals_misses(f->p), 51);
}

static void test_logout_and_purge_end_at_once(void **state)
{
    fx_t *f = *state;
    char c1[128], c2[128];
    ch_auth_principal_t who;
    const char *why;
    int64_t s1 = new_session(f, f->user, c1);
    (void)new_session(f, f->user, c2);
    assert_int_equal(auth(f, c1, NULL, &who, &why), 0);
    assert_int_equal(auth(f, c2, NULL, &who, &why), 0);
    assert_int_equal(ch_store_session_delete(f->st, s1), 0); /* a logout */
    assert_int_equal(auth(f, c1, NULL, &who, &why), CH_EPERM);
    assert_string_equal(why, "unknown session");
    assert_int_equal(auth(f, c2, NULL, &who, &why), 0);
    /* A purge is told as "many sessions": every session is read again. */
    uint64_t misses = ch_auth_principals_misses(f->p);
    assert_int_equal(ch_store_session_purge(f->st, 1), 0);
    assert_int_equal(auth(f, c2, NULL, &who, &why), 0);
    assert_int_equal(ch_auth_principals_misses(f->p), misses + 1);
}

static void test_a_disabled_or_changed_user_is_seen_at_once(void **state)
{
    fx_t *f = *state;
    char cookie[128];
    ch_auth_principal_t who;
    const char *why;
    int64_t sid = new_session(f, f->user, cookie);
    assert_int_equal(auth(f, cookie, NULL, &who, &why), 0);
    ch_user_t u;
    assert_int_equal(ch_store_user_get(f->st, f->user, &u), 0);
    ch_free(u.role);
    u.role = ch_strdup("auditor");
    assert_int_equal(ch_store_user_update(f->st, &u), 0);
    assert_int_equal(auth(f, cookie, NULL, &who, &why), 0);
    assert_int_equal(who.role, CH_AUTH_AUDITOR);
    u.disabled = 1;
    assert_int_equal(ch_store_user_update(f->st, &u), 0);
    ch_user_fini(&u);
    assert_int_equal(auth(f, cookie, NULL, &who, &why), CH_EPERM);
    assert_string_equal(why, "the account is disabled");
    ch_session_t s;
    char hash[CH_AUTH_SHA256_HEX];
    ch_auth_sha256_hex(cookie + strlen(CH_AUTH_COOKIE "="), CH_AUTH_TOKEN_LEN, hash);
    assert_int_equal(ch_store_session_find(f->st, hash, &s), CH_ENOTFOUND);
    (void)sid;
}

static void test_a_revoked_key_is_refused_at_once(void **state)
{
    fx_t *f = *state;
    char authz[128];
    ch_auth_principal_t who;
    const char *why;
    int64_t kid = new_key(f, authz);
    assert_int_equal(auth(f, NULL, authz, &who, &why), 0);
    ch_apikey_t k;
    assert_int_equal(ch_store_apikey_get(f->st, kid, &k), 0);
    k.revoked_at = ch_time_now_ms();
    assert_int_equal(ch_store_apikey_update(f->st, &k), 0);
    ch_apikey_fini(&k);
    assert_int_equal(auth(f, NULL, authz, &who, &why), CH_EPERM);
    assert_string_equal(why, "the API key is revoked");
}

static void test_another_handles_write_is_seen_at_once(void **state)
{
    fx_t *f = *state;
    char authz[128], cookie[128];
    ch_auth_principal_t who;
    const char *why;
    int64_t kid = new_key(f, authz);
    (void)new_session(f, f->user, cookie);
    assert_int_equal(auth(f, NULL, authz, &who, &why), 0);
    assert_int_equal(auth(f, cookie, NULL, &who, &why), 0);
    /* The command line beside a running hub: another connection, not on this handle's feed. */
    ch_store_t *other = NULL;
    char *err = NULL;
    assert_int_equal(ch_store_open(f->url, &other, &err), 0);
    ch_apikey_t k;
    assert_int_equal(ch_store_apikey_get(other, kid, &k), 0);
    k.revoked_at = ch_time_now_ms();
    assert_int_equal(ch_store_apikey_update(other, &k), 0);
    ch_apikey_fini(&k);
    assert_int_equal(ch_store_session_end_user(other, f->user), 0);
    ch_store_close(other);
    assert_int_equal(auth(f, NULL, authz, &who, &why), CH_EPERM);
    assert_string_equal(why, "the API key is revoked");
    assert_int_equal(auth(f, cookie, NULL, &who, &why), CH_EPERM);
    assert_string_equal(why, "unknown session");
}

static void test_the_table_stays_within_its_bound(void **state)
{
    fx_t *f = *state;
    char cookies[10][128];
    ch_auth_principal_t who;
    const char *why;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 10; i++) {
            if (round == 0) {
                (void)new_session(f, f->user, cookies[i]);
            }
            assert_int_equal(auth(f, cookies[i], NULL, &who, &why), 0);
            assert_true(ch_auth_principals_count(f->p) <= 4);
        }
    }
    assert_int_equal(ch_auth_principals_count(f->p), 4);
    /* The one asked for most stays: the clock passes entries used since its last turn. */
    uint64_t misses = ch_auth_principals_misses(f->p);
    assert_int_equal(auth(f, cookies[9], NULL, &who, &why), 0);
    assert_int_equal(ch_auth_principals_misses(f->p), misses);
}

static int64_t stored_expiry(fx_t *f, const char *cookie)
{
    char hash[CH_AUTH_SHA256_HEX];
    ch_session_t s;
    ch_auth_sha256_hex(cookie + strlen(CH_AUTH_COOKIE "="), CH_AUTH_TOKEN_LEN, hash);
    assert_int_equal(ch_store_session_find(f->st, hash, &s), 0);
    int64_t e = s.expires_at;
    ch_session_fini(&s);
    return e;
}

static void test_the_slide_is_cached_then_written(void **state)
{
    fx_t *f = *state;
    char cookie[128];
    ch_auth_principal_t who;
    const char *why;
    (void)new_session(f, f->user, cookie);
    int64_t now = ch_time_now_ms();
    int64_t before = stored_expiry(f, cookie);
    assert_int_equal(auth_at(f, cookie, NULL, now, &who, &why), 0);
    assert_int_equal(ch_auth_principals_pending(f->p), 0);
    /* A minute on: slid in memory at once, written later. */
    int64_t later = now + 61 * 1000;
    assert_int_equal(auth_at(f, cookie, NULL, later, &who, &why), 0);
    assert_int_equal(ch_auth_principals_pending(f->p), 1);
    assert_int_equal(stored_expiry(f, cookie), before);
    assert_int_equal(auth_at(f, cookie, NULL, later + 1000, &who, &why), 0);
    assert_int_equal(ch_auth_principals_pending(f->p), 1); /* one a minute */
    ch_auth_principals_flush(f->p);
    assert_int_equal(ch_auth_principals_pending(f->p), 0);
    assert_int_equal(stored_expiry(f, cookie), later + f->cfg.session_idle_ms);
    /* Our own slide does not drop the entry. */
    uint64_t misses = ch_auth_principals_misses(f->p);
    assert_int_equal(auth_at(f, cookie, NULL, later + 2000, &who, &why), 0);
    assert_int_equal(ch_auth_principals_misses(f->p), misses);
    /* Expired by the cached expiry: refused and deleted. */
    assert_int_equal(auth_at(f, cookie, NULL, later + f->cfg.session_idle_ms + 1, &who, &why),
                     CH_EPERM);
    assert_string_equal(why, "the session has expired");
    assert_int_equal(ch_auth_principals_count(f->p), 0);
}

static void never(uv_timer_t *t)
{
    (void)t;
}

static void test_slides_go_through_the_store_worker(void **state)
{
    fx_t *f = *state;
    char cookie[128];
    ch_auth_principal_t who;
    const char *why;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    ch_store_worker_t *w = NULL;
    char *err = NULL;
    assert_int_equal(ch_store_worker_open(&loop, f->url, &w, &err), 0);
    ch_auth_principals_free(f->p);
    ch_auth_principals_config_t pc = {.loop = &loop, .worker = w, .flush_ms = 10};
    assert_int_equal(ch_auth_principals_new(f->st, &pc, &f->p), 0);
    (void)new_session(f, f->user, cookie);
    int64_t later = ch_time_now_ms() + 61 * 1000;
    assert_int_equal(auth_at(f, cookie, NULL, later, &who, &why), 0);
    assert_int_equal(ch_auth_principals_pending(f->p), 1);
    /* The timer (10 ms) queues the batch; its completion comes back on the loop. The cache's
     * timer keeps no loop alive (the hub's server does): this one stands in for it. */
    uv_timer_t alive;
    uv_timer_init(&loop, &alive);
    uv_timer_start(&alive, never, 60 * 1000, 0);
    for (int i = 0;
         i < 1000 && ch_auth_principals_pending(f->p) +
                             (size_t)(stored_expiry(f, cookie) != later + f->cfg.session_idle_ms) >
                         0;
         i++) {
        usleep(2000);
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(stored_expiry(f, cookie), later + f->cfg.session_idle_ms);
    assert_int_equal(ch_auth_principals_pending(f->p), 0);
    /* The worker is another handle: what was cached is read again, and still valid. */
    assert_int_equal(auth_at(f, cookie, NULL, later + 1000, &who, &why), 0);
    ch_auth_principals_free(f->p);
    f->p = NULL;
    ch_store_worker_close(w);
    uv_close((uv_handle_t *)&alive, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- misses on the store worker ------------------------------------------------------------ */

/* A request waiting for its principal, as the API's is: the lookup and what came back. */
typedef struct waiter {
    ch_auth_lookup_t l;
    int calls;
    int rc;
    int order; /* the how-manieth callback it was */
    int *seq;
} waiter_t;

static void waited(ch_auth_lookup_t *l, int rc)
{
    waiter_t *w = (waiter_t *)l;
    w->calls++;
    w->rc = rc;
    w->order = ++*w->seq;
}

typedef struct wfx {
    uv_loop_t loop;
    ch_store_worker_t *w;
    int seq;
} wfx_t;

/* The cache made again over a real store worker on the same file, whose commits are told to
 * the loop's handle as the hub's are. */
static void worker_start(fx_t *f, wfx_t *x)
{
    memset(x, 0, sizeof(*x));
    assert_int_equal(uv_loop_init(&x->loop), 0);
    char *err = NULL;
    assert_int_equal(ch_store_worker_open(&x->loop, f->url, &x->w, &err), 0);
    ch_store_worker_feed(x->w, f->st);
    ch_auth_principals_free(f->p);
    ch_auth_principals_config_t pc = {.worker = x->w};
    assert_int_equal(ch_auth_principals_new(f->st, &pc, &f->p), 0);
}

static void worker_stop(fx_t *f, wfx_t *x)
{
    ch_auth_principals_free(f->p);
    f->p = NULL;
    ch_store_worker_close(x->w);
    uv_run(&x->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&x->loop), 0);
}

static int lookup(fx_t *f, wfx_t *x, waiter_t *w, const char *cookie, const char *authz)
{
    ch_slice_t c = {cookie, cookie != NULL ? strlen(cookie) : 0};
    ch_slice_t a = {authz, authz != NULL ? strlen(authz) : 0};
    memset(w, 0, sizeof(*w));
    w->seq = &x->seq;
    return ch_auth_principals_lookup(f->p, &f->cfg, cookie != NULL ? &c : NULL,
                                     authz != NULL ? &a : NULL, ch_time_now_ms(), &w->l, waited);
}

/* Turns the loop until w has been called back (or about two seconds have passed). */
static void wait_for(wfx_t *x, const waiter_t *w)
{
    for (int i = 0; i < 1000 && w->calls == 0; i++) {
        uv_run(&x->loop, UV_RUN_NOWAIT);
        if (w->calls == 0) {
            usleep(2000);
        }
    }
    assert_int_equal(w->calls, 1);
}

static void test_a_miss_is_read_on_the_store_worker(void **state)
{
    fx_t *f = *state;
    wfx_t x;
    waiter_t w;
    char cookie[128], authz[128];
    worker_start(f, &x);
    int64_t sid = new_session(f, f->user, cookie);
    int64_t kid = new_key(f, authz);
    /* The session: nothing answered until the worker's read comes back on the loop. */
    assert_int_equal(lookup(f, &x, &w, cookie, NULL), CH_EAGAIN);
    assert_int_equal(w.calls, 0);
    wait_for(&x, &w);
    assert_int_equal(w.rc, 0);
    assert_int_equal(w.l.who.kind, CH_AUTH_USER);
    assert_int_equal(w.l.who.id, f->user);
    assert_int_equal(w.l.who.session_id, sid);
    assert_int_equal(w.l.who.role, CH_AUTH_OPERATOR);
    assert_string_equal(w.l.who.actor, "user:kim");
    assert_int_equal(strlen(w.l.who.csrf), CH_AUTH_TOKEN_LEN);
    assert_int_equal(ch_auth_principals_count(f->p), 1);
    /* Kept: the next request is answered at once, without a read or a callback. */
    assert_int_equal(lookup(f, &x, &w, cookie, NULL), 0);
    assert_int_equal(w.l.who.session_id, sid);
    assert_int_equal(w.calls, 0);
    /* The API key likewise. */
    assert_int_equal(lookup(f, &x, &w, NULL, authz), CH_EAGAIN);
    wait_for(&x, &w);
    assert_int_equal(w.rc, 0);
    assert_int_equal(w.l.who.kind, CH_AUTH_APIKEY);
    assert_int_equal(w.l.who.id, kid);
    assert_int_equal(w.l.who.agency_id, f->agency);
    assert_int_equal(lookup(f, &x, &w, NULL, authz), 0);
    assert_int_equal(w.l.who.id, kid);
    assert_int_equal(ch_auth_principals_misses(f->p), 2);
    /* No credential, or one that cannot be: answered at once, no read. */
    assert_int_equal(lookup(f, &x, &w, NULL, NULL), 0);
    assert_int_equal(w.l.who.kind, CH_AUTH_NONE);
    assert_int_equal(lookup(f, &x, &w, CH_AUTH_COOKIE "=short", NULL), CH_EPERM);
    assert_string_equal(w.l.why, "unknown session");
    assert_int_equal(ch_auth_principals_misses(f->p), 2);
    worker_stop(f, &x);
}

static void test_a_revoked_credentials_miss_is_refused(void **state)
{
    fx_t *f = *state;
    wfx_t x;
    waiter_t w;
    char c1[128], c2[128], authz[128];
    worker_start(f, &x);
    /* A session logged out, a key revoked, a session of a disabled user: each refused as the
     * synchronous read refuses it, and none kept. */
    int64_t s1 = new_session(f, f->user, c1);
    assert_int_equal(ch_store_session_delete(f->st, s1), 0);
    assert_int_equal(lookup(f, &x, &w, c1, NULL), CH_EAGAIN);
    wait_for(&x, &w);
    assert_int_equal(w.rc, CH_EPERM);
    assert_string_equal(w.l.why, "unknown session");
    assert_int_equal(w.l.who.kind, CH_AUTH_NONE);
    int64_t kid = new_key(f, authz);
    ch_apikey_t k;
    assert_int_equal(ch_store_apikey_get(f->st, kid, &k), 0);
    k.revoked_at = ch_time_now_ms();
    assert_int_equal(ch_store_apikey_update(f->st, &k), 0);
    ch_apikey_fini(&k);
    assert_int_equal(lookup(f, &x, &w, NULL, authz), CH_EAGAIN);
    wait_for(&x, &w);
    assert_int_equal(w.rc, CH_EPERM);
    assert_string_equal(w.l.why, "the API key is revoked");
    (void)new_session(f, f->user, c2);
    ch_user_t u;
    assert_int_equal(ch_store_user_get(f->st, f->user, &u), 0);
    u.disabled = 1;
    assert_int_equal(ch_store_user_update(f->st, &u), 0);
    ch_user_fini(&u);
    assert_int_equal(lookup(f, &x, &w, c2, NULL), CH_EAGAIN);
    wait_for(&x, &w);
    assert_int_equal(w.rc, CH_EPERM);
    assert_string_equal(w.l.why, "the account is disabled");
    assert_int_equal(ch_auth_principals_count(f->p), 0);
    /* The disabled user's session was ended by the worker's read. */
    ch_session_t s;
    char hash[CH_AUTH_SHA256_HEX];
    ch_auth_sha256_hex(c2 + strlen(CH_AUTH_COOKIE "="), CH_AUTH_TOKEN_LEN, hash);
    assert_int_equal(ch_store_session_find(f->st, hash, &s), CH_ENOTFOUND);
    worker_stop(f, &x);
}

static void test_two_misses_of_one_credential_share_one_read(void **state)
{
    fx_t *f = *state;
    wfx_t x;
    waiter_t a, b, other;
    char cookie[128], c2[128];
    worker_start(f, &x);
    int64_t sid = new_session(f, f->user, cookie);
    (void)new_session(f, f->user, c2);
    assert_int_equal(lookup(f, &x, &a, cookie, NULL), CH_EAGAIN);
    assert_int_equal(lookup(f, &x, &b, cookie, NULL), CH_EAGAIN);
    assert_int_equal(lookup(f, &x, &other, c2, NULL), CH_EAGAIN); /* another: its own read */
    assert_int_equal(ch_auth_principals_misses(f->p), 2);
    wait_for(&x, &b);
    wait_for(&x, &other);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.rc, 0);
    assert_int_equal(b.rc, 0);
    assert_int_equal(a.l.who.session_id, sid);
    assert_int_equal(b.l.who.session_id, sid);
    assert_int_equal(a.order, 1); /* in the order they came */
    assert_int_equal(b.order, 2);
    assert_int_equal(other.rc, 0);
    assert_int_equal(ch_auth_principals_count(f->p), 2);
    assert_int_equal(ch_auth_principals_misses(f->p), 2);
    worker_stop(f, &x);
}

static void test_a_read_overtaken_by_a_change_is_not_kept(void **state)
{
    fx_t *f = *state;
    wfx_t x;
    waiter_t a, b;
    char cookie[128];
    char other[128];
    worker_start(f, &x);
    (void)new_session(f, f->user, cookie);
    /* A new row meanwhile (another login) cannot make the read stale: it is kept. */
    assert_int_equal(lookup(f, &x, &a, cookie, NULL), CH_EAGAIN);
    (void)new_session(f, f->user, other);
    wait_for(&x, &a);
    assert_int_equal(a.rc, 0);
    assert_int_equal(ch_auth_principals_count(f->p), 1);
    assert_int_equal(lookup(f, &x, &a, cookie, NULL), 0);
    ch_auth_principals_free(f->p);
    ch_auth_principals_config_t pc = {.worker = x.w};
    assert_int_equal(ch_auth_principals_new(f->st, &pc, &f->p), 0);
    assert_int_equal(lookup(f, &x, &a, cookie, NULL), CH_EAGAIN);
    /* The user changes on the loop while the read is in flight: whatever the read saw, it is
     * not kept, and a request after the change does not wait for the read before it. */
    ch_user_t u;
    assert_int_equal(ch_store_user_get(f->st, f->user, &u), 0);
    ch_free(u.role);
    u.role = ch_strdup("auditor");
    assert_int_equal(ch_store_user_update(f->st, &u), 0);
    ch_user_fini(&u);
    assert_int_equal(lookup(f, &x, &b, cookie, NULL), CH_EAGAIN);
    assert_int_equal(ch_auth_principals_misses(f->p), 2); /* a fresh cache: a's and b's */
    wait_for(&x, &a);
    assert_int_equal(a.rc, 0);
    wait_for(&x, &b);
    assert_int_equal(b.rc, 0);
    assert_int_equal(b.l.who.role, CH_AUTH_AUDITOR);
    assert_int_equal(ch_auth_principals_count(f->p), 1); /* b's read, after the change */
    assert_int_equal(lookup(f, &x, &a, cookie, NULL), 0);
    assert_int_equal(a.l.who.role, CH_AUTH_AUDITOR);
    worker_stop(f, &x);
}

static void test_a_full_worker_is_busy_and_a_freed_cache_cancels(void **state)
{
    fx_t *f = *state;
    wfx_t x;
    waiter_t a, b;
    char c1[128], c2[128];
    worker_start(f, &x);
    ch_store_worker_limit(x.w, 1);
    (void)new_session(f, f->user, c1);
    (void)new_session(f, f->user, c2);
    assert_int_equal(lookup(f, &x, &a, c1, NULL), CH_EAGAIN);
    assert_int_equal(lookup(f, &x, &b, c2, NULL), -EBUSY); /* nothing queued, no callback */
    /* Freed with a's read in flight: a is answered at once; the read ends unused. */
    ch_auth_principals_free(f->p);
    f->p = NULL;
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.rc, -ECANCELED);
    assert_int_equal(b.calls, 0);
    ch_store_worker_close(x.w);
    uv_run(&x.loop, UV_RUN_DEFAULT);
    assert_int_equal(a.calls, 1);
    assert_int_equal(uv_loop_close(&x.loop), 0);
}

static void test_the_workers_slides_keep_their_entries(void **state)
{
    fx_t *f = *state;
    wfx_t x;
    waiter_t w;
    char cookie[128];
    worker_start(f, &x);
    (void)new_session(f, f->user, cookie);
    assert_int_equal(lookup(f, &x, &w, cookie, NULL), CH_EAGAIN);
    wait_for(&x, &w);
    assert_int_equal(w.rc, 0);
    /* A minute on: slid, then written on the worker, whose commit the loop's feed is told. */
    int64_t later = ch_time_now_ms() + 61 * 1000;
    assert_int_equal(auth_at(f, cookie, NULL, later, &w.l.who, &w.l.why), 0);
    assert_int_equal(ch_auth_principals_pending(f->p), 1);
    ch_auth_principals_flush(f->p);
    for (int i = 0; i < 1000 && ch_store_worker_waiting(x.w) > 0; i++) {
        usleep(2000);
        uv_run(&x.loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(ch_store_worker_waiting(x.w), 0);
    assert_int_equal(stored_expiry(f, cookie), later + f->cfg.session_idle_ms);
    /* Our own slide told back: the entry stays, the next request is answered at once. */
    assert_int_equal(ch_auth_principals_count(f->p), 1);
    assert_int_equal(auth_at(f, cookie, NULL, later + 1000, &w.l.who, &w.l.why), 0);
    assert_int_equal(ch_auth_principals_misses(f->p), 1);
    /* Expired by its cached expiry: refused at once, deleted on the worker. */
    assert_int_equal(
        auth_at(f, cookie, NULL, later + f->cfg.session_idle_ms + 1, &w.l.who, &w.l.why), CH_EPERM);
    assert_string_equal(w.l.why, "the session has expired");
    for (int i = 0; i < 1000 && ch_store_worker_waiting(x.w) > 0; i++) {
        usleep(2000);
        uv_run(&x.loop, UV_RUN_NOWAIT);
    }
    ch_session_t s;
    char hash[CH_AUTH_SHA256_HEX];
    ch_auth_sha256_hex(cookie + strlen(CH_AUTH_COOKIE "="), CH_AUTH_TOKEN_LEN, hash);
    assert_int_equal(ch_store_session_find(f->st, hash, &s), CH_ENOTFOUND);
    worker_stop(f, &x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_known_credential_reads_no_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_credentials_are_not_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logout_and_purge_end_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_disabled_or_changed_user_is_seen_at_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_revoked_key_is_refused_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_another_handles_write_is_seen_at_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_table_stays_within_its_bound, setup_small,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_slide_is_cached_then_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slides_go_through_the_store_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_miss_is_read_on_the_store_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_revoked_credentials_miss_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_two_misses_of_one_credential_share_one_read, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_read_overtaken_by_a_change_is_not_kept, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_full_worker_is_busy_and_a_freed_cache_cancels, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_workers_slides_keep_their_entries, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

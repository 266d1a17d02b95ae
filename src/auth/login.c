/*
 * auth/login.c: the login use case (auth.h): a user name and password to a session, with the
 * lock-out by user name and address, the throttle by address and the audit records of every
 * try. The API is its adapter: it reads the body, runs the store's parts (ch_auth_login_read,
 * ch_auth_login_write) on the store worker and hashes the password on the hash pool between
 * them, and answers. ch_auth_login_start and ch_auth_login_finish run the same parts on one
 * handle, for a caller without a worker.
 */
#include "auth/auth.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static int login_record(const ch_auth_login_recorder_t *rec, const char *actor, const char *action,
                        const char *object, const char *outcome, json_t *details)
{
    if (rec->record == NULL) {
        json_decref(details);
        return 0;
    }
    return rec->record(rec->data, actor, action, object, outcome, details);
}

void ch_auth_login_init(ch_auth_login_t *l, const char *username, const char *peer)
{
    memset(l, 0, sizeof(*l));
    snprintf(l->username, sizeof(l->username), "%s", username);
    snprintf(l->peer, sizeof(l->peer), "%s", peer);
}

int ch_auth_login_read(ch_store_t *st, ch_auth_login_t *l)
{
    int rc = ch_store_user_find(st, l->username, &l->user);
    if (rc == 0) {
        l->user_found = 1;
        if (l->user.password_hash != NULL && !l->user.disabled) {
            snprintf(l->hash, sizeof(l->hash), "%s", l->user.password_hash);
        }
    }
    return rc == CH_ENOTFOUND ? 0 : rc;
}

int ch_auth_login_check(const ch_auth_login_env_t *env, ch_auth_login_t *l, int read_rc,
                        int64_t now_ms, int64_t *wait, ch_fault_t *f)
{
    *wait = 0;
    if (read_rc != 0) {
        return ch_fault_set(f, read_rc, CH_FAULT_INTERNAL, NULL, NULL, "the account store failed");
    }
    if (l->user_found) {
        /* The user's locked_until is the end of the last lock put on the name from any
         * address; an administrator's unlock clears it, and with it every address's lock. */
        *wait = l->user.locked_until > now_ms
                    ? ch_auth_lockout_check(env->lockout, l->username, l->peer, now_ms)
                    : 0;
    } else {
        /* Unknown names lock the same way, so that a lock tells nothing about a name. */
        *wait = ch_auth_lockout_check(env->lockout, l->username, l->peer, now_ms);
    }
    if (*wait > 0) {
        json_t *d = json_pack("{s:s, s:s, s:s}", "username", l->username, "reason",
                              "account locked", "peer", l->peer);
        (void)login_record(&env->rec, "anonymous", "auth.login", NULL, "denied", d);
        return ch_fault_set(f, CH_EPERM, CH_FAULT_DENIED, "locked", NULL,
                            "too many failed logins: the account is locked for a while from here");
    }
    return 0;
}

int ch_auth_login_start(const ch_auth_login_env_t *env, ch_auth_login_t *l, const char *username,
                        const char *peer, int64_t now_ms, int64_t *wait, ch_fault_t *f)
{
    ch_auth_login_init(l, username, peer);
    return ch_auth_login_check(env, l, ch_auth_login_read(env->st, l), now_ms, wait, f);
}

void ch_auth_login_count(const ch_auth_login_env_t *env, ch_auth_login_t *l, int64_t now_ms)
{
    ch_auth_throttle_fail(env->throttle, l->peer, now_ms);
    l->locks = ch_auth_lockout_fail(env->lockout, l->username, l->peer, now_ms);
}

void ch_auth_login_fini(ch_auth_login_t *l)
{
    sodium_memzero(l->hash, sizeof(l->hash));
    ch_user_fini(&l->user);
}

/* A failed login (already counted against its address and pair when it was queued). When its
 * pair is at the limit (l->wait, ch_auth_login_checked), the user's locked_until moves to the
 * end of this lock: the lock holds from this address only (ch_auth_lockout_check), and an
 * unlock clears it. Returns the refusal. */
static int login_failed(ch_store_t *st, const ch_auth_login_recorder_t *rec, ch_auth_login_t *l,
                        const char *reason, int64_t now, ch_fault_t *f)
{
    int locked = 0;
    int began = ch_store_begin(st) == 0;
    int64_t wait = l->wait;
    if (l->user_found && began && wait > 0) {
        ch_user_t u;
        if (ch_store_user_get(st, l->user.id, &u) == 0) {
            /* Reported when the limit is reached, and again after an unlock lifted it. */
            locked = l->locks || u.locked_until <= now;
            u.failed_logins++;
            if (u.locked_until < now + wait) {
                u.locked_until = now + wait;
            }
            if (ch_store_user_update(st, &u) != 0) {
                ch_log(CH_LOG_ERROR, "auth", "msg=\"lock-out not stored\" error=\"%s\"",
                       ch_store_errmsg(st));
            }
        }
        ch_user_fini(&u);
    }
    json_t *d =
        json_pack("{s:s, s:s, s:s}", "username", l->username, "reason", reason, "peer", l->peer);
    int arc = login_record(rec, "anonymous", "auth.login", NULL, "denied", d);
    if (locked && arc == 0) {
        char object[96];
        snprintf(object, sizeof(object), "user:%s", l->username);
        arc = login_record(rec, "system", "auth.lockout", object, "ok",
                           json_pack("{s:I, s:s}", "locked_ms", (json_int_t)wait, "peer", l->peer));
    }
    if (began && (arc != 0 || ch_store_commit(st) != 0)) {
        (void)ch_store_rollback(st);
    }
    return ch_fault_set(f, CH_EPERM, CH_FAULT_DENIED, "bad_credentials", NULL,
                        "wrong user name or password");
}

void ch_auth_login_checked(const ch_auth_login_env_t *env, ch_auth_login_t *l, int password_ok,
                           int64_t now_ms)
{
    l->password_ok = password_ok;
    l->wait = ch_auth_lockout_check(env->lockout, l->username, l->peer, now_ms);
}

int ch_auth_login_write(ch_store_t *st, const ch_auth_login_recorder_t *rec,
                        const ch_auth_config_t *cfg, ch_auth_login_t *l, int64_t now,
                        ch_auth_session_made_t *out, ch_fault_t *f)
{
    memset(out, 0, sizeof(*out));
    if (!l->user_found) {
        return login_failed(st, rec, l, "unknown user", now, f);
    }
    if (l->user.disabled) {
        return login_failed(st, rec, l, "account disabled", now, f);
    }
    if (!l->password_ok) {
        return login_failed(st, rec, l, "wrong password", now, f);
    }
    ch_user_t *u = &out->user;
    char hash[CH_AUTH_SHA256_HEX];
    ch_auth_random_token(out->token);
    ch_auth_random_token(out->csrf);
    ch_auth_sha256_hex(out->token, strlen(out->token), hash);
    int64_t idle = cfg->session_idle_ms > 0 ? cfg->session_idle_ms : 30LL * 60 * 1000;
    ch_session_t s = {
        .token_hash = hash, .user_id = l->user.id, .csrf = out->csrf, .expires_at = now + idle};
    int rc = ch_store_begin(st);
    if (rc == 0) {
        rc = ch_store_user_get(st, l->user.id, u);
        if (rc == 0 && u->disabled) {
            (void)ch_store_rollback(st);
            ch_auth_session_made_fini(out);
            return login_failed(st, rec, l, "account disabled", now, f);
        }
    }
    if (rc == 0) {
        u->failed_logins = 0;
        if (u->locked_until <= now) {
            u->locked_until = 0; /* a lock from another address still running stays */
        }
        u->last_login = now;
        rc = ch_store_user_update(st, u);
        if (rc == 0) {
            /* Housekeeping: sessions nobody came back to. */
            rc = ch_store_session_purge(st, now);
        }
        if (rc == 0) {
            rc = ch_store_session_create(st, &s);
        }
    }
    char object[96];
    snprintf(object, sizeof(object), "user:%s", l->username);
    if (rc == 0) {
        rc = login_record(rec, object, "auth.login", object, "ok",
                          json_pack("{s:s, s:s, s:I}", "role", u->role, "peer", l->peer, "session",
                                    (json_int_t)s.id));
        if (rc != 0) {
            (void)ch_store_rollback(st);
            ch_auth_session_made_fini(out);
            ch_fault_set(f, CH_EIO, CH_FAULT_AUDIT, NULL, NULL,
                         "the login could not be put on the audit record");
            f->rc = rc;
            return CH_EIO;
        }
        rc = ch_store_commit(st);
    }
    if (rc != 0) {
        (void)ch_store_rollback(st);
        ch_auth_session_made_fini(out);
        ch_fault_set(f, rc, CH_FAULT_INTERNAL, NULL, NULL, "the account store failed");
        f->rc = rc;
        return rc;
    }
    out->session_id = s.id;
    out->expires_at = s.expires_at;
    return 0;
}

void ch_auth_login_done(const ch_auth_login_env_t *env, ch_auth_login_t *l, int rc)
{
    if (rc == 0) {
        ch_auth_throttle_forgive(env->throttle, l->peer);
        ch_auth_lockout_clear(env->lockout, l->username, l->peer);
    }
}

int ch_auth_login_finish(const ch_auth_login_env_t *env, ch_auth_login_t *l, int password_ok,
                         int64_t now, ch_auth_session_made_t *out, ch_fault_t *f)
{
    ch_auth_login_checked(env, l, password_ok, now);
    int rc = ch_auth_login_write(env->st, &env->rec, env->cfg, l, now, out, f);
    ch_auth_login_done(env, l, rc);
    return rc;
}

void ch_auth_session_made_fini(ch_auth_session_made_t *m)
{
    sodium_memzero(m->token, sizeof(m->token));
    ch_user_fini(&m->user);
    memset(m, 0, sizeof(*m));
}

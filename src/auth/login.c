/*
 * auth/login.c: the login use case (auth.h): a user name and password to a session, with the
 * lock-out by user name and address, the throttle by address and the audit records of every
 * try. The API is its adapter: it reads the body, hashes the password on the hash pool between
 * ch_auth_login_start and ch_auth_login_finish, and answers.
 */
#include "auth/auth.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static int login_record(const ch_auth_login_env_t *env, const char *actor, const char *action,
                        const char *object, const char *outcome, json_t *details)
{
    if (env->rec.record == NULL) {
        json_decref(details);
        return 0;
    }
    return env->rec.record(env->rec.data, actor, action, object, outcome, details);
}

int ch_auth_login_start(const ch_auth_login_env_t *env, ch_auth_login_t *l, const char *username,
                        const char *peer, int64_t now_ms, int64_t *wait, ch_fault_t *f)
{
    memset(l, 0, sizeof(*l));
    *wait = 0;
    snprintf(l->username, sizeof(l->username), "%s", username);
    snprintf(l->peer, sizeof(l->peer), "%s", peer);
    int rc = ch_store_user_find(env->st, l->username, &l->user);
    if (rc == 0) {
        l->user_found = 1;
        /* The user's locked_until is the end of the last lock put on the name from any
         * address; an administrator's unlock clears it, and with it every address's lock. */
        *wait = l->user.locked_until > now_ms
                    ? ch_auth_lockout_check(env->lockout, l->username, l->peer, now_ms)
                    : 0;
        if (l->user.password_hash != NULL && !l->user.disabled) {
            snprintf(l->hash, sizeof(l->hash), "%s", l->user.password_hash);
        }
    } else if (rc == CH_ENOTFOUND) {
        /* Unknown names lock the same way, so that a lock tells nothing about a name. */
        *wait = ch_auth_lockout_check(env->lockout, l->username, l->peer, now_ms);
    } else {
        return ch_fault_set(f, rc, CH_FAULT_INTERNAL, NULL, NULL, "the account store failed");
    }
    if (*wait > 0) {
        json_t *d = json_pack("{s:s, s:s, s:s}", "username", l->username, "reason",
                              "account locked", "peer", l->peer);
        (void)login_record(env, "anonymous", "auth.login", NULL, "denied", d);
        return ch_fault_set(f, CH_EPERM, CH_FAULT_DENIED, "locked", NULL,
                            "too many failed logins: the account is locked for a while from here");
    }
    return 0;
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
 * pair is at the limit, the user's locked_until moves to the end of this lock: the lock holds
 * from this address only (ch_auth_lockout_check), and an unlock clears it. Returns the
 * refusal. */
static int login_failed(const ch_auth_login_env_t *env, ch_auth_login_t *l, const char *reason,
                        int64_t now, ch_fault_t *f)
{
    ch_store_t *st = env->st;
    int locked = 0;
    int began = ch_store_begin(st) == 0;
    int64_t wait = ch_auth_lockout_check(env->lockout, l->username, l->peer, now);
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
    int arc = login_record(env, "anonymous", "auth.login", NULL, "denied", d);
    if (locked && arc == 0) {
        char object[96];
        snprintf(object, sizeof(object), "user:%s", l->username);
        arc = login_record(env, "system", "auth.lockout", object, "ok",
                           json_pack("{s:I, s:s}", "locked_ms", (json_int_t)wait, "peer", l->peer));
    }
    if (began && (arc != 0 || ch_store_commit(st) != 0)) {
        (void)ch_store_rollback(st);
    }
    return ch_fault_set(f, CH_EPERM, CH_FAULT_DENIED, "bad_credentials", NULL,
                        "wrong user name or password");
}

int ch_auth_login_finish(const ch_auth_login_env_t *env, ch_auth_login_t *l, int password_ok,
                         int64_t now, ch_auth_session_made_t *out, ch_fault_t *f)
{
    memset(out, 0, sizeof(*out));
    if (!l->user_found) {
        return login_failed(env, l, "unknown user", now, f);
    }
    if (l->user.disabled) {
        return login_failed(env, l, "account disabled", now, f);
    }
    if (!password_ok) {
        return login_failed(env, l, "wrong password", now, f);
    }
    ch_store_t *st = env->st;
    ch_user_t *u = &out->user;
    char hash[CH_AUTH_SHA256_HEX];
    ch_auth_random_token(out->token);
    ch_auth_random_token(out->csrf);
    ch_auth_sha256_hex(out->token, strlen(out->token), hash);
    int64_t idle = env->cfg->session_idle_ms > 0 ? env->cfg->session_idle_ms : 30LL * 60 * 1000;
    ch_session_t s = {
        .token_hash = hash, .user_id = l->user.id, .csrf = out->csrf, .expires_at = now + idle};
    int rc = ch_store_begin(st);
    if (rc == 0) {
        rc = ch_store_user_get(st, l->user.id, u);
        if (rc == 0 && u->disabled) {
            (void)ch_store_rollback(st);
            ch_auth_session_made_fini(out);
            return login_failed(env, l, "account disabled", now, f);
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
        rc = login_record(env, object, "auth.login", object, "ok",
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
    ch_auth_throttle_forgive(env->throttle, l->peer);
    ch_auth_lockout_clear(env->lockout, l->username, l->peer);
    out->session_id = s.id;
    out->expires_at = s.expires_at;
    return 0;
}

void ch_auth_session_made_fini(ch_auth_session_made_t *m)
{
    sodium_memzero(m->token, sizeof(m->token));
    ch_user_fini(&m->user);
    memset(m, 0, sizeof(*m));
}

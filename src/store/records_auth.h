/*
 * store/records_auth.h: accounts: the roles, users, API keys and login sessions. One domain's
 * records, as the store keeps them; store/store.h includes it, and callers include store.h. The
 * calls that read and write them are in store.h; records returned are the caller's, released with
 * their *_fini or *_list_free.
 */
#ifndef CH_STORE_RECORDS_AUTH_H
#define CH_STORE_RECORDS_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "store/records_list.h"

/* The roles of people and systems (see docs/internals/auth.md), NULL-terminated. */
extern const char *const ch_store_roles[];

/* A person who logs in with a password. */
typedef struct ch_user {
    int64_t id;
    char *name;           /* required, unique: the login name */
    char *role;           /* required: one of ch_store_roles */
    int64_t agency_id;    /* the agency the person works for, or 0 (admin, operator, auditor) */
    char *password_hash;  /* required: an Argon2id string ($argon2id$v=19$...) */
    int disabled;         /* 1: may not log in, sessions end */
    int failed_logins;    /* consecutive failures since the last success */
    int64_t locked_until; /* ms since epoch; logins are refused before it */
    int64_t last_login;   /* ms since epoch, 0 = never */
    int64_t created_at;
    int64_t updated_at;
} ch_user_t;

/* An API key of an agency's system: "chk_<id>_<secret>"; only SHA-256(secret) is stored. */
typedef struct ch_apikey {
    int64_t id;
    int64_t agency_id;  /* required */
    char *role;         /* required: "agency" or "provider" */
    char *secret_hash;  /* required: lowercase hex SHA-256 of the secret */
    char *label;        /* optional */
    int64_t revoked_at; /* ms since epoch, 0 = live */
    int64_t created_at;
    int64_t updated_at;
    char *tls_key; /* optional: the client certificate's key ("sha256:" + 64 hex of its SPKI)
                      the agency's system must show with this key (mutual TLS) */
} ch_apikey_t;

/* A login session: the cookie holds the token; only SHA-256(token) is stored. */
typedef struct ch_session {
    int64_t id;
    char *token_hash;   /* required, unique: lowercase hex SHA-256 of the cookie token */
    int64_t user_id;    /* required */
    char *csrf;         /* required: the token state-changing requests must echo */
    int64_t expires_at; /* ms since epoch */
    int64_t created_at;
    int64_t updated_at;
} ch_session_t;

CH_STORE_LIST_TYPE(ch_user_list, ch_user_t);

CH_STORE_LIST_TYPE(ch_apikey_list, ch_apikey_t);

void ch_user_fini(ch_user_t *u);
void ch_apikey_fini(ch_apikey_t *k);
void ch_session_fini(ch_session_t *s);

#endif /* CH_STORE_RECORDS_AUTH_H */

/*
 * auth: who is asking. Passwords (Argon2id through libsodium), session tokens and CSRF tokens,
 * API keys, the roles, the parsing of Cookie and Authorization headers, and the login throttle.
 *
 * Secrets are never stored or logged in clear: the store holds Argon2id strings for passwords
 * and SHA-256 of session tokens and API key secrets (both 256 random bits, so a fast hash is
 * enough). Comparisons of secrets are constant-time.
 *
 * Threading: every function is thread-safe except the throttle, which belongs to one loop.
 * ch_auth_password_hash / _verify are slow on purpose (tens of milliseconds): call them off the
 * control loop.
 */
#ifndef CH_AUTH_H
#define CH_AUTH_H

#include "core/core.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

/* ---- roles --------------------------------------------------------------------------------- */

enum {
    CH_AUTH_ADMIN = 1u << 0,
    CH_AUTH_OPERATOR = 1u << 1,
    CH_AUTH_AGENCY = 1u << 2,
    CH_AUTH_PROVIDER = 1u << 3,
    CH_AUTH_AUDITOR = 1u << 4,
    CH_AUTH_PUBLIC = 1u << 5, /* in a route's mask: no account needed */
};

/* The bit of one role name ("admin", ...), or 0 when unknown. */
unsigned ch_auth_role_bit(const char *role);
/* The mask of a comma-separated list ("admin,operator"; "public"); unknown words give 0. */
unsigned ch_auth_roles_mask(const char *csv);
/* The name of one role bit ("admin"), or "none". */
const char *ch_auth_role_name(unsigned bit);

/* ---- passwords ----------------------------------------------------------------------------- */

#define CH_AUTH_HASH_MAX     128 /* crypto_pwhash_STRBYTES */
#define CH_AUTH_PASSWORD_MIN 10
#define CH_AUTH_PASSWORD_MAX 1024

/* Checks a new password: CH_AUTH_PASSWORD_MIN..MAX bytes, valid UTF-8, no control characters.
 * Returns 0 or CH_EINVAL with a message for people in why (static text). */
int ch_auth_password_acceptable(const char *pw, size_t len, const char **why);
/* Hashes pw with Argon2id (libsodium's interactive limits) into out. 0 or CH_ENOMEM. */
int ch_auth_password_hash(const char *pw, size_t len, char out[CH_AUTH_HASH_MAX]) CH_MUST_CHECK;
/* 0 when pw matches hash, CH_EPERM otherwise (also for a malformed hash). */
int ch_auth_password_verify(const char *hash, const char *pw, size_t len) CH_MUST_CHECK;
/* Spends the time of a verification without a user (so unknown names take as long). */
void ch_auth_password_dummy_verify(const char *pw, size_t len);

/* ---- tokens and keys ----------------------------------------------------------------------- */

#define CH_AUTH_TOKEN_LEN     43 /* 32 random bytes in unpadded base64url */
#define CH_AUTH_SHA256_HEX    65 /* 64 hex digits and NUL */
#define CH_AUTH_APIKEY_MAX    80
#define CH_AUTH_APIKEY_PREFIX "chk_"

/* 32 random bytes as unpadded base64url, NUL-terminated. */
void ch_auth_random_token(char out[CH_AUTH_TOKEN_LEN + 1]);
/* Lowercase hex SHA-256 of [p, p+n). */
void ch_auth_sha256_hex(const void *p, size_t n, char out[CH_AUTH_SHA256_HEX]);
/* Constant-time equality of two strings of the same length (0 when lengths differ). */
int ch_auth_secret_eq(const char *a, size_t alen, const char *b, size_t blen);

/* An API key as shown once: "chk_<id>_<secret>". */
void ch_auth_apikey_format(int64_t id, const char *secret, char out[CH_AUTH_APIKEY_MAX]);
/* Splits a key into its id and secret (secret borrows from p). 0 or CH_EPARSE. */
int ch_auth_apikey_parse(const char *p, size_t n, int64_t *id, ch_slice_t *secret) CH_MUST_CHECK;

/* ---- headers ------------------------------------------------------------------------------- */

#define CH_AUTH_COOKIE "cctvhub_session"

/* The value of cookie name in a Cookie header ("a=1; cctvhub_session=xyz"). 0 and *value, or
 * CH_ENOTFOUND. A cookie given twice is CH_EPARSE (which one would be meant?). */
int ch_auth_cookie_get(ch_slice_t header, const char *name, ch_slice_t *value) CH_MUST_CHECK;
/* The token of "Bearer <token>" (scheme case-insensitive, one or more spaces). 0 or CH_EPARSE. */
int ch_auth_bearer(ch_slice_t header, ch_slice_t *token) CH_MUST_CHECK;

/* ---- principals ---------------------------------------------------------------------------- */

typedef enum ch_auth_kind {
    CH_AUTH_NONE = 0,
    CH_AUTH_USER = 1,   /* a person, by session cookie */
    CH_AUTH_APIKEY = 2, /* an agency's system, by Bearer API key */
} ch_auth_kind_t;

typedef struct ch_auth_principal {
    ch_auth_kind_t kind;
    int64_t id;         /* user id or API key id */
    unsigned role;      /* one CH_AUTH_* bit */
    int64_t agency_id;  /* 0 when none */
    char name[72];      /* the user's name, or "apikey:<id>" */
    char actor[96];     /* as the audit record names it: "user:kim", "apikey:3" */
    int64_t session_id; /* for users */
    char csrf[CH_AUTH_TOKEN_LEN + 1];
} ch_auth_principal_t;

typedef struct ch_auth_config {
    int64_t session_idle_ms; /* a session unused this long ends; 0 = 30 minutes */
    int64_t session_max_ms;  /* and any session this old; 0 = 12 hours */
} ch_auth_config_t;

/*
 * Finds who sent a request from its Cookie and Authorization headers (either may be NULL).
 * Returns 0 with out->kind CH_AUTH_NONE when the request carries no credential, 0 with the
 * principal when one is valid, and CH_EPERM when a credential is given but is not valid (an
 * unknown, expired or revoked one, a disabled user); *why then says which, for the log and the
 * answer (static text, never the credential). Sessions slide: a use more than a minute after
 * the last moves their expiry. Store failures return their code.
 */
int ch_auth_authenticate(ch_store_t *st, const ch_auth_config_t *cfg, const ch_slice_t *cookie,
                         const ch_slice_t *authorization, int64_t now_ms, ch_auth_principal_t *out,
                         const char **why) CH_MUST_CHECK;

/* Fills a principal from a user (for a new session). */
void ch_auth_principal_of_user(const ch_user_t *u, int64_t session_id, const char *csrf,
                               ch_auth_principal_t *out);

/* ---- the login throttle -------------------------------------------------------------------- */

/*
 * Failed logins per client address in a sliding window: beyond max_failures within window_ms an
 * address is refused until the window has passed. A fixed table (CH_AUTH_THROTTLE_SLOTS):
 * when full, the stalest entry makes room, so a flood of addresses cannot grow memory.
 * Per-account lock-out is separate (the user's failed_logins and locked_until in the store).
 */
#define CH_AUTH_THROTTLE_SLOTS 1024

typedef struct ch_auth_throttle ch_auth_throttle_t;

ch_auth_throttle_t *ch_auth_throttle_new(int max_failures, int64_t window_ms);
void ch_auth_throttle_free(ch_auth_throttle_t *t);
/* 0 when addr may try now; else the ms to wait. */
int64_t ch_auth_throttle_check(ch_auth_throttle_t *t, const char *addr, int64_t now_ms);
void ch_auth_throttle_fail(ch_auth_throttle_t *t, const char *addr, int64_t now_ms);
void ch_auth_throttle_clear(ch_auth_throttle_t *t, const char *addr);

#endif /* CH_AUTH_H */

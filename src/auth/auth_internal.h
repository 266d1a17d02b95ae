/*
 * auth internals shared by auth.c, hasher.c and principals.c.
 */
#ifndef CH_AUTH_INTERNAL_H
#define CH_AUTH_INTERNAL_H

#include "auth/auth.h"

/* The address without its port: "127.0.0.1:5123" -> "127.0.0.1", "[::1]:80" -> "[::1]";
 * "10.0.0.1" and "2001:db8::1" (more than one colon: no port) as they are. out holds 48. */
void ch_auth__host_of(const char *addr, char out[48]);

/* ---- authentication's parts (auth.c), for ch_auth_authenticate and the cache ------------- */

/* A credential resolved against the store: the principal, and what a cache must keep to judge
 * it again without the store. */
typedef struct ch_auth__resolved {
    ch_auth_principal_t who;
    char hash[CH_AUTH_SHA256_HEX]; /* a session's token hash; a key's stored secret hash */
    int64_t created_at;            /* sessions: for the maximum age */
    int64_t expires_at;            /* sessions: the idle expiry */
    int64_t slid_at;               /* sessions: when the expiry last moved (updated_at) */
} ch_auth__resolved_t;

/* Which credential the headers carry: 0 and *kind CH_AUTH_NONE (none), CH_AUTH_USER (token is
 * the cookie's) or CH_AUTH_APIKEY (token is the Bearer's); CH_EPERM with *why. */
int ch_auth__credential(const ch_slice_t *cookie, const ch_slice_t *authorization,
                        ch_auth_kind_t *kind, ch_slice_t *token, const char **why);
/* The hash a session is found by; CH_EPERM ("unknown session") for a token of the wrong size. */
int ch_auth__token_hash(ch_slice_t token, char hash[CH_AUTH_SHA256_HEX], const char **why);
/* A key's id and the hash of its secret; CH_EPERM ("not an API key"). */
int ch_auth__apikey_parse(ch_slice_t key, int64_t *id, char secret_hash[CH_AUTH_SHA256_HEX],
                          const char **why);
/* Reads the session by token hash and its user: 0 with *r, CH_EPERM with *why (unknown,
 * expired or of a disabled user: those two are deleted), or the store's code. No slide. */
int ch_auth__session_read(ch_store_t *st, const ch_auth_config_t *cfg, const char *hash,
                          int64_t now_ms, ch_auth__resolved_t *r, const char **why);
/* Reads key id and checks secret_hash against it: 0 with *r, CH_EPERM with *why (unknown, a
 * wrong secret, revoked), or the store's code. */
int ch_auth__apikey_read(ch_store_t *st, int64_t id, const char *secret_hash,
                         ch_auth__resolved_t *r, const char **why);
/* The idle time of cfg; 1 when a session made at created_at with expires_at has ended at now;
 * 1 when a session whose expiry moved at slid_at is due to slide again (a minute). */
int64_t ch_auth__idle_ms(const ch_auth_config_t *cfg);
int ch_auth__session_expired(const ch_auth_config_t *cfg, int64_t created_at, int64_t expires_at,
                             int64_t now_ms);
int ch_auth__slide_due(int64_t slid_at, int64_t now_ms);
/* Writes the session of r with its expiry moved to expires_at (CH_ENOTFOUND once deleted). */
int ch_auth__session_slide(ch_store_t *st, const ch_auth__resolved_t *r, int64_t expires_at);
/* Deletes a session that ended (expired, its user disabled); a failure is logged (what). */
void ch_auth__session_end(ch_store_t *st, int64_t session_id, const char *what);

#endif /* CH_AUTH_INTERNAL_H */

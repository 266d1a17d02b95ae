/*
 * auth: who is asking. Passwords (Argon2id through libsodium), session tokens and CSRF tokens,
 * API keys, the roles, the parsing of Cookie and Authorization headers, and the login throttle.
 *
 * Secrets are never stored or logged in clear: the store holds Argon2id strings for passwords
 * and SHA-256 of session tokens and API key secrets (both 256 random bits, so a fast hash is
 * enough). Comparisons of secrets are constant-time.
 *
 * Threading: every function is thread-safe except the throttle, the lock-out table and the
 * hash pool's calls, which belong to one loop. ch_auth_password_hash / _verify are slow on
 * purpose (tens of milliseconds and 64 MiB each): the control loop hands them to the hash pool
 * (ch_auth_hasher_t), which bounds how many run and wait.
 */
#ifndef CH_AUTH_H
#define CH_AUTH_H

#include "core/core.h"
#include "store/store.h"

#include <stddef.h>
#include <jansson.h>
#include <stdint.h>
#include <uv.h>

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

/*
 * Whether an account change's audit record ends access: an API key revoked ("apikey.revoke"),
 * a session ended ("auth.logout"), a user disabled ("user.update" whose change sets disabled
 * true: disables). Such a record is appended with ch_audit_append_ending, which may use the
 * audit disk's reserve, so that a key or a person can always be shut out, even on a full
 * disk. Other account records (creations, enabling, new roles or passwords) may not.
 */
int ch_auth_record_ends_access(const char *action, int disables);

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
    char tls_key[72]; /* an API key bound to a client certificate: that certificate's key
                         ("sha256:..."), which the request's TLS connection must show; "" */
} ch_auth_principal_t;

/* Whether a request showing the client certificate key shown ("sha256:...", NULL: none) may
 * act as who: a principal without a bound key always; an API key bound to one only with that
 * very key. 0, or CH_EPERM with *why ("this API key needs its agency's client certificate",
 * "the client certificate is not the one this API key is bound to"). */
int ch_auth_tls_binding_check(const ch_auth_principal_t *who, const char *shown,
                              const char **why) CH_MUST_CHECK;

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

/*
 * The principals cache (principals.c): ch_auth_authenticate's answer kept in memory, so that a
 * request with a known credential reads no store. Sessions (by token hash) and API keys (by
 * id) resolved to principals, at most max_entries of them (clock eviction); a credential is
 * read from the store on a miss (synchronously, on the calling thread, by
 * ch_auth_principals_authenticate; on the store worker by ch_auth_principals_lookup) and kept
 * when valid; a refused one is never kept, so unknown tokens cannot fill it. It is kept true by the
 * store's change feed (a user changed or disabled, a session deleted or changed, a key revoked: the
 * entry goes at the commit), other handles' and processes' commits included: each lookup polls
 * the feed first (ch_store_feed_poll: one PRAGMA unless another handle committed). Expiry is judged
 * on the cached times; the once-a-minute slide of a session moves the cached expiry at once and is
 * written later, batched: every flush_ms on the loop's timer, on the store worker when given one
 * (else on st), and at free.
 *
 * Control loop only (the thread of st). ch_auth_principals_new: 0 or CH_EINVAL (no st, a
 * watch refused). loop NULL: no timer, ch_auth_principals_flush writes the slides. worker:
 * where the slides are written and ch_auth_principals_lookup's misses read (the same database;
 * its commits told to st's watchers, ch_store_worker_feed), or NULL: both on st.
 * ch_auth_principals_authenticate has ch_auth_authenticate's contract. _free writes the slides
 * left on st; with a loop its timer's memory goes on the loop's next turn.
 */
typedef struct ch_auth_principals ch_auth_principals_t;
typedef struct ch_auth_principals_config {
    size_t max_entries;        /* 0 = 4096 */
    int64_t flush_ms;          /* 0 = 5 s */
    uv_loop_t *loop;           /* the flush timer's, or NULL */
    ch_store_worker_t *worker; /* where the slides are written and misses read, or NULL */
} ch_auth_principals_config_t;

int ch_auth_principals_new(ch_store_t *st, const ch_auth_principals_config_t *cfg,
                           ch_auth_principals_t **out) CH_MUST_CHECK;
void ch_auth_principals_free(ch_auth_principals_t *p);
int ch_auth_principals_authenticate(ch_auth_principals_t *p, const ch_auth_config_t *cfg,
                                    const ch_slice_t *cookie, const ch_slice_t *authorization,
                                    int64_t now_ms, ch_auth_principal_t *out,
                                    const char **why) CH_MUST_CHECK;
/*
 * The same answer without making the loop wait for the store: a miss is read on the store
 * worker given at ch_auth_principals_new, and the caller's request waits (as libuv's requests
 * do, the caller owns l until its callback).
 *
 * ch_auth_principals_lookup answers at once, as ch_auth_principals_authenticate does, with
 * l->who and l->why, when it can without the store (a hit, no credential, a credential that
 * cannot be one) or when there is no worker (the miss is read on st, here). It returns
 * CH_EAGAIN when the miss went to the worker: cb(l, rc) is then called on the loop with the
 * answer the synchronous call would have given (rc, l->who, l->why), after the credential was
 * kept when valid. Concurrent misses of one credential share one read: the later ones wait
 * for the first's. -EBUSY: the worker has its bound of requests in flight; nothing was queued
 * and cb will not be called (answer 503 with Retry-After). A cache freed with lookups in
 * flight calls their callbacks at once with -ECANCELED (the worker's reads then end unused).
 *
 * A read that began before an update or deletion of a user, session or API key was told (the
 * feed, the worker's commits, another process's) answers its waiters but is not kept: the
 * change could concern it, and a credential kept stale would stay so. Control loop only.
 */
typedef struct ch_auth_lookup ch_auth_lookup_t;
typedef void (*ch_auth_lookup_cb)(ch_auth_lookup_t *l, int rc);
struct ch_auth_lookup {
    ch_auth_principal_t who; /* the answer: CH_AUTH_NONE without a credential */
    const char *why;         /* on CH_EPERM: static text, never the credential */
    void *data;              /* the caller's */
    /* The cache's: */
    ch_auth_lookup_cb cb;
    int64_t now_ms;
    int rc;
    ch_auth_lookup_t *next;
};

int ch_auth_principals_lookup(ch_auth_principals_t *p, const ch_auth_config_t *cfg,
                              const ch_slice_t *cookie, const ch_slice_t *authorization,
                              int64_t now_ms, ch_auth_lookup_t *l,
                              ch_auth_lookup_cb cb) CH_MUST_CHECK;

/* Writes the slides waiting (queued on the worker, or on st at once). */
void ch_auth_principals_flush(ch_auth_principals_t *p);
/* Entries held; slides waiting; store reads made (misses), for tests and metrics. */
size_t ch_auth_principals_count(const ch_auth_principals_t *p);
size_t ch_auth_principals_pending(const ch_auth_principals_t *p);
uint64_t ch_auth_principals_misses(const ch_auth_principals_t *p);

/* Fills a principal from a user (for a new session). */
void ch_auth_principal_of_user(const ch_user_t *u, int64_t session_id, const char *csrf,
                               ch_auth_principal_t *out);

/* ---- accounts: creating users and API keys ------------------------------------------------ */

/*
 * The account use cases, shared by the API (src/api/auth_routes.c) and the command line
 * (src/main/account_cmd.c): each takes a typed request, applies every rule of it here, writes
 * the store and the audit record in one transaction, and reports a refusal as core's fault
 * (what went wrong, the rule, the field; never an HTTP status or an exit code: the callers map
 * those). All of them run on one thread with the store (the control loop, or the command).
 *
 * A refusal is a ch_fault_t: kind CH_FAULT_INVALID (a field breaks a rule), NOT_FOUND (the
 * user or key named does not exist), CONFLICT (a user has this name), AUDIT (the record could not
 * be put on the audit trail: nothing changed) or INTERNAL (the store failed: nothing changed);
 * fault.rule says which rule refused: "name", "role", "agency_id", "agency_exists",
 * "agency_required", "password", "apikey_role", "label", "name_taken", "not_found", "audit",
 * "store", "hash"; fault.rc is the code the use case returned (the store's or the recorder's
 * behind AUDIT and INTERNAL).
 */

/*
 * Where a use case puts its audit record: the API appends it to the log with the request's
 * principal as actor, the command line queues it in the store's outbox. record runs inside the
 * change's store transaction, before its commit: a non-zero return undoes the change
 * (CH_FAULT_AUDIT). details is stolen; ends_access is ch_auth_record_ends_access's answer
 * (the record may use the audit disk's reserve).
 */
typedef struct ch_auth_recorder {
    int (*record)(void *data, const char *action, const char *object, json_t *details,
                  int ends_access);
    void *data;
} ch_auth_recorder_t;

/*
 * The command line's recorder (ch_auth_outbox_recorder): each record is queued in the store's
 * audit outbox (ch_store_outbox_add, inside the change's transaction) with actor as its actor
 * and "via": "cli" added to its details, for the hub to append later. Whether a record ends
 * access is decided again when the outbox is appended (ch_auth_record_ends_access). st and
 * actor are borrowed; the struct must outlive the recorder's use.
 */
typedef struct ch_auth_outbox {
    ch_store_t *st;
    const char *actor;
} ch_auth_outbox_t;

ch_auth_recorder_t ch_auth_outbox_recorder(ch_auth_outbox_t *ob);

/* Where ch_auth_outbox_drain puts each queued record: the caller's audit log. details is
 * borrowed (NULL: none); ends_access is ch_auth_record_ends_access's answer (the record may use
 * the audit disk's reserve). 0 once the record is durable, else a code. */
typedef int (*ch_auth_outbox_append_fn)(void *ud, const char *actor, const char *action,
                                        const char *object, json_t *details, int ends_access);

/*
 * Appends every record of the store's audit outbox through append, oldest first, deleting each
 * once append returned 0. A crash between the two appends it again on the next drain: at least
 * once, never lost. A record ends access by its action, or by "disabled": true in its details.
 * 0, or the store's or append's code (logged).
 */
int ch_auth_outbox_drain(ch_store_t *st, ch_auth_outbox_append_fn append, void *ud);

/* A new user: name 1 to 64 bytes without ':'; role one of the five; agency_id 0 (none) or an
 * agency's id, required for the roles agency and provider; password as
 * ch_auth_password_acceptable says. */
typedef struct ch_auth_user_req {
    const char *name;
    const char *role;
    int64_t agency_id;
    const char *password; /* NULL: not checked (not read yet, or already hashed) */
    size_t password_len;
} ch_auth_user_req_t;

/*
 * Checks a new user's request against every rule that needs no hash, in this order: name,
 * role, agency_id (positive, and an existing agency when st is not NULL), an agency for the
 * roles agency and provider, the password when given. Call it before hashing the password, so
 * that a refused request costs no Argon2id. 0, or CH_EINVAL with err filled (CH_FAULT_INVALID,
 * or CH_FAULT_INTERNAL when reading the agency failed).
 */
int ch_auth_user_check(ch_store_t *st, const ch_auth_user_req_t *req,
                       ch_fault_t *err) CH_MUST_CHECK;

/*
 * Creates the user of req with the Argon2id string hash (ch_auth_password_hash, or the hash
 * pool's) and records "user.create" {role, agency_id} on rec, in one store transaction. The
 * request's rules are checked again (the password is not: it was checked before it was
 * hashed). On success out holds the stored user (the caller frees it with ch_user_fini); on
 * failure out is empty, err says why (CH_FAULT_CONFLICT for a name taken) and a negative code
 * is returned.
 */
int ch_auth_user_create(ch_store_t *st, const ch_auth_user_req_t *req, const char *hash,
                        const ch_auth_recorder_t *rec, ch_user_t *out,
                        ch_fault_t *err) CH_MUST_CHECK;

/*
 * A new user whose password is in req (the command line: no hash pool): checks req with its
 * password (ch_auth_user_check), hashes the password on the calling thread
 * (ch_auth_password_hash, wiped after use) and creates the user (ch_auth_user_create). As
 * ch_auth_user_create, plus CH_FAULT_INTERNAL with rule "hash" when hashing failed. The caller
 * wipes the password.
 */
int ch_auth_user_add(ch_store_t *st, const ch_auth_user_req_t *req, const ch_auth_recorder_t *rec,
                     ch_user_t *out, ch_fault_t *err) CH_MUST_CHECK;

/*
 * A change of a user, found by id (or by name when id is 0). Each part is optional: role NULL
 * keeps the role; set_agency replaces the agency with agency_id (0: none; negative: not an
 * id); disabled -1 keeps the flag, 0 enables, 1 disables; unlock lifts the lock-out (the
 * failures and locked_until); a password (checked when given) is changed with the hash given
 * to ch_auth_user_update. The roles agency and provider keep needing an agency.
 */
typedef struct ch_auth_user_change {
    int64_t id;
    const char *name;
    const char *role;
    int set_agency;
    int64_t agency_id;
    int disabled;
    int unlock;
    const char *password; /* NULL: not checked (kept, or already hashed) */
    size_t password_len;
} ch_auth_user_change_t;

/* Checks a change against the user as stored: CH_FAULT_NOT_FOUND for no such user, then
 * role, agency_id (positive, an existing agency), an agency for the roles agency and provider,
 * the password when given. 0, or a negative code with err filled. */
int ch_auth_user_change_check(ch_store_t *st, const ch_auth_user_change_t *req,
                              ch_fault_t *err) CH_MUST_CHECK;

/*
 * Applies a change in one store transaction: reads the user, checks the change again (not the
 * password: hash is its Argon2id string when has_password, else NULL), writes it, ends the
 * user's sessions when it disables, changes the role or the password, and records
 * "user.update" {disabled, unlocked, role, agency_id, password_changed: what was asked} on
 * rec (an ending record when it disables). On success out holds the user as stored (free with
 * ch_user_fini); on failure out is empty and err says why.
 */
int ch_auth_user_update(ch_store_t *st, const ch_auth_user_change_t *req, const char *hash,
                        const ch_auth_recorder_t *rec, ch_user_t *out,
                        ch_fault_t *err) CH_MUST_CHECK;

/* A new API key: agency_id an existing agency's; role "agency" or "provider", or NULL for the
 * agency's kind's default (provider for an agency of kind provider, else agency); label NULL
 * or at most 200 bytes. */
typedef struct ch_auth_apikey_req {
    int64_t agency_id;
    const char *role;
    const char *label;
    const char *tls_key; /* NULL, or the agency's client certificate key ("sha256:" + 64
                            lowercase hex of its SPKI: `cctvhub tls fingerprint`) */
} ch_auth_apikey_req_t;

#define CH_AUTH_LABEL_MAX 200

/* A key made: the stored record (the caller frees it with ch_apikey_fini) and the key as
 * shown once (the caller wipes it with sodium_memzero once shown). */
typedef struct ch_auth_apikey_made {
    ch_apikey_t key;
    char text[CH_AUTH_APIKEY_MAX];
} ch_auth_apikey_made_t;

/* Checks a new key's request: agency_id positive (and an existing agency when st is not
 * NULL), role, label. 0, or CH_EINVAL with err filled. */
int ch_auth_apikey_check(ch_store_t *st, const ch_auth_apikey_req_t *req,
                         ch_fault_t *err) CH_MUST_CHECK;

/*
 * Makes an API key for req: 256 random bits of secret, only their SHA-256 stored, and
 * "apikey.create" {agency_id, role} recorded on rec, in one store transaction. 0 with out
 * filled, or a negative code with err filled and out empty.
 */
int ch_auth_apikey_create(ch_store_t *st, const ch_auth_apikey_req_t *req,
                          const ch_auth_recorder_t *rec, ch_auth_apikey_made_t *out,
                          ch_fault_t *err) CH_MUST_CHECK;

/*
 * Revokes API key id and records "apikey.revoke" {agency_id} (an ending record) on rec, in one
 * store transaction. A key already revoked stays as it was, with no record, and succeeds.
 * 0, or a negative code with err filled (CH_FAULT_NOT_FOUND for no such key).
 */
int ch_auth_apikey_revoke(ch_store_t *st, int64_t id, const ch_auth_recorder_t *rec,
                          ch_fault_t *err) CH_MUST_CHECK;

/* ---- the login throttle -------------------------------------------------------------------- */

/*
 * Failed logins per client address in a sliding window: beyond max_failures within window_ms an
 * address is refused until the window has passed. A fixed table (CH_AUTH_THROTTLE_SLOTS):
 * when full, the stalest entry makes room, so a flood of addresses cannot grow memory.
 * Addresses are "host", "host:port", "[v6]" or "[v6]:port"; the port is not part of the key.
 *
 * The login route counts an attempt (ch_auth_throttle_fail) before its password is hashed, so
 * that concurrent attempts cannot all pass the check while the first ones are still hashing,
 * and takes it back (ch_auth_throttle_forgive) when the password was right.
 */
#define CH_AUTH_THROTTLE_SLOTS 1024

typedef struct ch_auth_throttle ch_auth_throttle_t;

ch_auth_throttle_t *ch_auth_throttle_new(int max_failures, int64_t window_ms);
void ch_auth_throttle_free(ch_auth_throttle_t *t);
/* 0 when addr may try now; else the ms to wait. */
int64_t ch_auth_throttle_check(ch_auth_throttle_t *t, const char *addr, int64_t now_ms);
void ch_auth_throttle_fail(ch_auth_throttle_t *t, const char *addr, int64_t now_ms);
/* Takes back one failure of addr (an attempt counted before hashing turned out right). */
void ch_auth_throttle_forgive(ch_auth_throttle_t *t, const char *addr);
void ch_auth_throttle_clear(ch_auth_throttle_t *t, const char *addr);

/* ---- the lock-out, by user and address ----------------------------------------------------- */

/*
 * Failed logins per (user name, client address): max_failures within lock_ms of each other
 * lock that user out from that address only, for lock_ms after the last one. An attacker who
 * knows a name can then lock its owner out of the attacker's own address, never out of the
 * owner's. A fixed table of CH_AUTH_LOCKOUT_SLOTS entries, the stalest making room (the
 * per-address throttle bounds how fast one address can add entries). Attempts are counted
 * before hashing, like the throttle's; a right password clears its pair.
 */
#define CH_AUTH_LOCKOUT_SLOTS 4096

typedef struct ch_auth_throttle ch_auth_lockout_t;

ch_auth_lockout_t *ch_auth_lockout_new(int max_failures, int64_t lock_ms);
void ch_auth_lockout_free(ch_auth_lockout_t *l);
/* 0 when user may try from addr now; else the ms its lock there has left. */
int64_t ch_auth_lockout_check(ch_auth_lockout_t *l, const char *user, const char *addr,
                              int64_t now_ms);
/* Counts one failure (or attempt) of user from addr; 1 when this one reaches the limit. */
int ch_auth_lockout_fail(ch_auth_lockout_t *l, const char *user, const char *addr, int64_t now_ms);
/* Forgets user's failures from addr (a right password). */
void ch_auth_lockout_clear(ch_auth_lockout_t *l, const char *user, const char *addr);

/* ---- the hash pool ------------------------------------------------------------------------- */

/*
 * Argon2id on threads of its own, off the control loop and off libuv's pool (where the audit
 * appends run, so that a login flood can never delay an audited write). Bounded: at most
 * max_in_flight jobs queued or running, and at most max_per_address of them for one client
 * address; a job beyond either bound is refused at once (CH_EAGAIN: answer 429) instead of
 * waiting, so memory stays at threads x 64 MiB whatever the number of attempts. The threads
 * run at a lower priority (nice 10) than the loop, start with the first job, and hand results
 * back to the loop through a uv_async_t.
 *
 * The caller owns each job until its callback, which runs on the loop once the work is done.
 */
typedef struct ch_auth_hasher ch_auth_hasher_t;
typedef struct ch_auth_hash_job ch_auth_hash_job_t;
typedef void (*ch_auth_hash_cb)(ch_auth_hash_job_t *job);

typedef enum ch_auth_hash_kind {
    CH_AUTH_HASH_VERIFY = 0, /* password against hash; "" hash: the dummy verification */
    CH_AUTH_HASH_MAKE = 1,   /* a new hash of password into hash */
} ch_auth_hash_kind_t;

struct ch_auth_hash_job {
    ch_auth_hash_kind_t kind;
    const char *password; /* borrowed until the callback */
    size_t password_len;
    char hash[CH_AUTH_HASH_MAX];
    int result; /* VERIFY: 0 when the password matches, else CH_EPERM; MAKE: 0 or CH_ENOMEM */
    void *data; /* the caller's */
    /* The pool's: */
    ch_auth_hash_cb cb;
    ch_auth_hash_job_t *next;
    int counted; /* counted against its address's bound */
    char addr[48];
};

typedef struct ch_auth_hasher_config {
    unsigned threads;         /* 0: 2 */
    unsigned max_in_flight;   /* queued and running; 0: 16 */
    unsigned max_per_address; /* 0: 2 */
} ch_auth_hasher_config_t;

ch_auth_hasher_t *ch_auth_hasher_new(uv_loop_t *loop, const ch_auth_hasher_config_t *cfg);
/*
 * Queues job (its kind, password and hash set; cb runs on the loop when it is done). addr is
 * the client address it is counted against, or NULL for an authenticated request (an
 * administrator setting a password), which is never refused. 0, or CH_EAGAIN beyond a bound,
 * or -ECANCELED once the pool is closing (nothing queued; cb will not run).
 */
int ch_auth_hasher_submit(ch_auth_hasher_t *h, ch_auth_hash_job_t *job, const char *addr,
                          ch_auth_hash_cb cb) CH_MUST_CHECK;
/* Jobs queued or running. */
size_t ch_auth_hasher_in_flight(const ch_auth_hasher_t *h);
/* Stops the threads and frees the pool (its uv_async_t closes with the loop's next turn).
 * Nothing may be in flight. NULL is a no-op. */
void ch_auth_hasher_free(ch_auth_hasher_t *h);

/* ---- the login ----------------------------------------------------------------------------- */

/*
 * The login use case (login.c), in two halves around the password's hash, which the caller
 * runs on the hash pool: ch_auth_login_start finds the user and applies the lock-out,
 * ch_auth_login_count counts the try once it is queued (before the hash, so that tries in
 * flight cannot all pass the checks while the first are hashing; a right password takes it
 * back), ch_auth_login_finish makes the session or records the failure. The throttle by
 * address is the caller's first check (ch_auth_throttle_check), as it answers before reading
 * the request. start, count and finish: control loop only.
 *
 * Each half is also given in parts, so that its store calls run on a store worker
 * (ch_store_async) while the rest stays on the loop, which owns the throttle and the lock-out:
 *   start  = ch_auth_login_init (loop), ch_auth_login_read (any thread, its handle),
 *            ch_auth_login_check (loop);
 *   finish = ch_auth_login_checked (loop), ch_auth_login_write (any thread, its handle),
 *            ch_auth_login_done (loop).
 * start and finish are exactly these parts run on env->st, for a caller without a worker.
 * The recorder is called from the thread of the part that records (it must be thread-safe,
 * as the audit log is).
 */
typedef struct ch_auth_login_recorder {
    /* actor "anonymous" for a refusal, "system" for a lock-out, "user:<name>" for a login;
     * details stolen; a non-zero return undoes a login (CH_FAULT_AUDIT). */
    int (*record)(void *data, const char *actor, const char *action, const char *object,
                  const char *outcome, json_t *details);
    void *data;
} ch_auth_login_recorder_t;

/* The parts a login uses (borrowed). */
typedef struct ch_auth_login_env {
    ch_store_t *st;
    const ch_auth_config_t *cfg;
    ch_auth_throttle_t *throttle;
    ch_auth_lockout_t *lockout;
    ch_auth_login_recorder_t rec;
} ch_auth_login_env_t;

/* One try, kept by the caller between start and finish; ch_auth_login_fini releases it. */
typedef struct ch_auth_login {
    char username[72];
    char peer[64];
    char hash[CH_AUTH_HASH_MAX]; /* what to verify the password against ("": the dummy) */
    ch_user_t user;              /* the user found, when user_found */
    int user_found;
    int locks;       /* this try reached the lock-out's limit for its name and address */
    int password_ok; /* ch_auth_login_checked: the password matched hash */
    int64_t wait;    /* ch_auth_login_checked: the lock-out's ms left for the name here */
} ch_auth_login_t;

/* A session made: the user as stored, the cookie's token (wiped by _fini), the CSRF token. */
typedef struct ch_auth_session_made {
    ch_user_t user;
    char token[CH_AUTH_TOKEN_LEN + 1];
    char csrf[CH_AUTH_TOKEN_LEN + 1];
    int64_t session_id;
    int64_t expires_at;
} ch_auth_session_made_t;

/* Starts a try of username from peer: 0 with l->hash set; CH_EPERM when the name is locked
 * from this address (recorded "auth.login" denied; f: CH_FAULT_DENIED "locked", *wait the ms
 * left); or the store's code (f internal). l is filled either way (fini it). */
int ch_auth_login_start(const ch_auth_login_env_t *env, ch_auth_login_t *l, const char *username,
                        const char *peer, int64_t now_ms, int64_t *wait,
                        ch_fault_t *f) CH_MUST_CHECK;
void ch_auth_login_count(const ch_auth_login_env_t *env, ch_auth_login_t *l, int64_t now_ms);
/* start's parts. _read finds the user on st (any thread): 0 (l->user_found 0 for an unknown
 * name) or the store's code, which _check (loop) turns into the fault; _check applies the
 * lock-out as start does. */
void ch_auth_login_init(ch_auth_login_t *l, const char *username, const char *peer);
int ch_auth_login_read(ch_store_t *st, ch_auth_login_t *l);
int ch_auth_login_check(const ch_auth_login_env_t *env, ch_auth_login_t *l, int read_rc,
                        int64_t now_ms, int64_t *wait, ch_fault_t *f) CH_MUST_CHECK;
void ch_auth_login_fini(ch_auth_login_t *l);

/*
 * Ends a try whose password was checked (password_ok: it matched l->hash). A wrong password,
 * an unknown or disabled user: recorded "auth.login" denied (and "auth.lockout" when the try
 * reached the limit), CH_EPERM with f CH_FAULT_DENIED "bad_credentials" (the API answers 401).
 * Else the session is made and "auth.login" recorded in one transaction, the address's and
 * pair's failures forgiven: 0 with out filled (free with ch_auth_session_made_fini); or
 * CH_FAULT_AUDIT / CH_FAULT_INTERNAL with nothing made.
 */
int ch_auth_login_finish(const ch_auth_login_env_t *env, ch_auth_login_t *l, int password_ok,
                         int64_t now_ms, ch_auth_session_made_t *out, ch_fault_t *f) CH_MUST_CHECK;
/* finish's parts. _checked (loop) notes the password's verdict and the lock-out's state;
 * _write (any thread, on st; the recorder called there) is finish's store transaction and
 * records, returning as finish does; _done (loop) forgives the address and pair after a
 * login made (rc 0). */
void ch_auth_login_checked(const ch_auth_login_env_t *env, ch_auth_login_t *l, int password_ok,
                           int64_t now_ms);
int ch_auth_login_write(ch_store_t *st, const ch_auth_login_recorder_t *rec,
                        const ch_auth_config_t *cfg, ch_auth_login_t *l, int64_t now_ms,
                        ch_auth_session_made_t *out, ch_fault_t *f) CH_MUST_CHECK;
void ch_auth_login_done(const ch_auth_login_env_t *env, ch_auth_login_t *l, int rc);
void ch_auth_session_made_fini(ch_auth_session_made_t *m);

#endif /* CH_AUTH_H */

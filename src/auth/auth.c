/*
 * auth/auth.c: roles, passwords, tokens, API keys, header parsing, authentication of a
 * request against the store, and the login throttle.
 */
#include "auth/auth.h"
#include "auth/auth_internal.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MODULE "auth"

/* ---- roles --------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    unsigned bit;
} role_names[] = {
    {"admin", CH_AUTH_ADMIN},       {"operator", CH_AUTH_OPERATOR}, {"agency", CH_AUTH_AGENCY},
    {"provider", CH_AUTH_PROVIDER}, {"auditor", CH_AUTH_AUDITOR},   {"public", CH_AUTH_PUBLIC},
};

static unsigned role_bit_n(const char *p, size_t n)
{
    for (size_t i = 0; i < CH_ARRAY_SIZE(role_names); i++) {
        if (strlen(role_names[i].name) == n && memcmp(role_names[i].name, p, n) == 0) {
            return role_names[i].bit;
        }
    }
    return 0;
}

unsigned ch_auth_role_bit(const char *role)
{
    if (role == NULL) {
        return 0;
    }
    unsigned b = role_bit_n(role, strlen(role));
    return b == CH_AUTH_PUBLIC ? 0 : b;
}

unsigned ch_auth_roles_mask(const char *csv)
{
    unsigned m = 0;
    const char *p = csv;
    while (p != NULL && *p != '\0') {
        const char *e = strchr(p, ',');
        size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
        unsigned b = role_bit_n(p, n);
        if (b == 0) {
            return 0;
        }
        m |= b;
        p = e != NULL ? e + 1 : NULL;
    }
    return m;
}

const char *ch_auth_role_name(unsigned bit)
{
    for (size_t i = 0; i < CH_ARRAY_SIZE(role_names); i++) {
        if (role_names[i].bit == bit) {
            return role_names[i].name;
        }
    }
    return "none";
}

int ch_auth_record_ends_access(const char *action, int disables)
{
    if (action == NULL) {
        return 0;
    }
    return strcmp(action, "apikey.revoke") == 0 || strcmp(action, "auth.logout") == 0 ||
           (disables && strcmp(action, "user.update") == 0);
}

/* ---- passwords ----------------------------------------------------------------------------- */

/* 1 when [p, p+n) is valid UTF-8 without control characters. */
static int text_ok(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f) {
                return 0;
            }
            i++;
            continue;
        }
        size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
        if (len == 0 || c > 0xf4 || i + len > n) {
            return 0;
        }
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return 0;
            }
        }
        /* C1 controls (U+0080..U+009F, "\xc2\x80".."\xc2\x9f") are control characters too;
         * then overlong 3- and 4-byte forms, surrogates, beyond U+10FFFF. */
        if ((c == 0xc2 && p[i + 1] < 0xa0) || (c == 0xe0 && p[i + 1] < 0xa0) ||
            (c == 0xed && p[i + 1] >= 0xa0) || (c == 0xf0 && p[i + 1] < 0x90) ||
            (c == 0xf4 && p[i + 1] >= 0x90)) {
            return 0;
        }
        i += len;
    }
    return 1;
}

int ch_auth_password_acceptable(const char *pw, size_t len, const char **why)
{
    if (len < CH_AUTH_PASSWORD_MIN) {
        *why = "a password needs at least 10 bytes";
        return CH_EINVAL;
    }
    if (len > CH_AUTH_PASSWORD_MAX) {
        *why = "a password may have at most 1024 bytes";
        return CH_EINVAL;
    }
    if (!text_ok((const unsigned char *)pw, len)) {
        *why = "a password must be UTF-8 text without control characters";
        return CH_EINVAL;
    }
    *why = NULL;
    return 0;
}

/* libsodium's interactive limits: 2 passes over 64 MiB, tens of milliseconds here. */
#define PW_OPS crypto_pwhash_OPSLIMIT_INTERACTIVE
#define PW_MEM crypto_pwhash_MEMLIMIT_INTERACTIVE

int ch_auth_password_hash(const char *pw, size_t len, char out[CH_AUTH_HASH_MAX])
{
    if (sodium_init() < 0 ||
        crypto_pwhash_str_alg(out, pw, len, PW_OPS, PW_MEM, crypto_pwhash_ALG_ARGON2ID13) != 0) {
        return CH_ENOMEM;
    }
    return 0;
}

int ch_auth_password_verify(const char *hash, const char *pw, size_t len)
{
    if (hash == NULL || sodium_init() < 0 || strncmp(hash, "$argon2id$", 10) != 0) {
        return CH_EPERM;
    }
    return crypto_pwhash_str_verify(hash, pw, len) == 0 ? 0 : CH_EPERM;
}

void ch_auth_password_dummy_verify(const char *pw, size_t len)
{
    /* A hash made once with the same limits, so the work matches a real verification. */
    static char dummy[CH_AUTH_HASH_MAX];
    static int made;
    if (sodium_init() < 0) {
        return;
    }
    if (!__atomic_load_n(&made, __ATOMIC_ACQUIRE)) {
        char tmp[CH_AUTH_HASH_MAX];
        if (ch_auth_password_hash("cctvhub-dummy-password", 22, tmp) != 0) {
            return;
        }
        memcpy(dummy, tmp, sizeof(dummy));
        __atomic_store_n(&made, 1, __ATOMIC_RELEASE);
    }
    if (crypto_pwhash_str_verify(dummy, pw, len) == 0) {
        return; /* cannot match: the dummy password is not a user's */
    }
}

/* ---- tokens and keys ----------------------------------------------------------------------- */

void ch_auth_random_token(char out[CH_AUTH_TOKEN_LEN + 1])
{
    unsigned char raw[32];
    if (sodium_init() < 0) {
        ch_log(CH_LOG_ERROR, MODULE, "msg=\"libsodium cannot start\"");
        abort();
    }
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(out, CH_AUTH_TOKEN_LEN + 1, raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
}

void ch_auth_sha256_hex(const void *p, size_t n, char out[CH_AUTH_SHA256_HEX])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, p, n);
    ch_hex_encode(out, CH_AUTH_SHA256_HEX, h, sizeof(h), 0);
}

int ch_auth_secret_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen || alen == 0) {
        return 0;
    }
    return sodium_memcmp(a, b, alen) == 0;
}

void ch_auth_apikey_format(int64_t id, const char *secret, char out[CH_AUTH_APIKEY_MAX])
{
    snprintf(out, CH_AUTH_APIKEY_MAX, CH_AUTH_APIKEY_PREFIX "%lld_%s", (long long)id, secret);
}

int ch_auth_apikey_parse(const char *p, size_t n, int64_t *id, ch_slice_t *secret)
{
    size_t pre = sizeof(CH_AUTH_APIKEY_PREFIX) - 1;
    if (n < pre + 3 || memcmp(p, CH_AUTH_APIKEY_PREFIX, pre) != 0) {
        return CH_EPARSE;
    }
    size_t i = pre;
    int64_t v = 0;
    if (p[i] < '1' || p[i] > '9') {
        return CH_EPARSE;
    }
    while (i < n && p[i] >= '0' && p[i] <= '9') {
        int d = p[i] - '0';
        if (v > (INT64_MAX - d) / 10) { /* exact: ids up to INT64_MAX parse */
            return CH_EPARSE;
        }
        v = v * 10 + d;
        i++;
    }
    if (i >= n || p[i] != '_') {
        return CH_EPARSE;
    }
    i++;
    if (n - i != CH_AUTH_TOKEN_LEN) {
        return CH_EPARSE;
    }
    for (size_t k = i; k < n; k++) {
        char c = p[k];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_')) {
            return CH_EPARSE;
        }
    }
    *id = v;
    *secret = (ch_slice_t){p + i, n - i};
    return 0;
}

/* ---- headers ------------------------------------------------------------------------------- */

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

int ch_auth_cookie_get(ch_slice_t header, const char *name, ch_slice_t *value)
{
    /* RFC 6265 §5.4: "name=value" pairs separated by ";" and optional spaces. Pairs without
     * "=" are skipped; the value may be quoted. An empty header may be {NULL, 0}: return
     * before any pointer arithmetic on it (NULL + 0 is undefined in C). */
    if (header.len == 0) {
        return CH_ENOTFOUND;
    }
    const char *p = header.ptr;
    const char *end = p + header.len;
    size_t nlen = strlen(name);
    int found = 0;
    while (p < end) {
        while (p < end && (is_ows(*p) || *p == ';')) {
            p++;
        }
        const char *pair = p;
        while (p < end && *p != ';') {
            p++;
        }
        const char *pend = p;
        const char *eq = memchr(pair, '=', (size_t)(pend - pair));
        if (eq == NULL) {
            continue;
        }
        const char *ne = eq;
        while (ne > pair && is_ows(ne[-1])) {
            ne--;
        }
        if ((size_t)(ne - pair) != nlen || memcmp(pair, name, nlen) != 0) {
            continue;
        }
        const char *v = eq + 1;
        const char *ve = pend;
        while (v < ve && is_ows(*v)) {
            v++;
        }
        while (ve > v && is_ows(ve[-1])) {
            ve--;
        }
        if (ve - v >= 2 && *v == '"' && ve[-1] == '"') {
            v++;
            ve--;
        }
        if (found) {
            return CH_EPARSE;
        }
        found = 1;
        *value = (ch_slice_t){v, (size_t)(ve - v)};
    }
    return found ? 0 : CH_ENOTFOUND;
}

int ch_auth_bearer(ch_slice_t header, ch_slice_t *token)
{
    /* The length first: header may be {NULL, 0}, and NULL + 0 is undefined in C. */
    if (header.len < 7 || strncasecmp(header.ptr, "Bearer", 6) != 0 || !is_ows(header.ptr[6])) {
        return CH_EPARSE;
    }
    const char *p = header.ptr;
    const char *end = p + header.len;
    p += 6;
    while (p < end && is_ows(*p)) {
        p++;
    }
    const char *e = end;
    while (e > p && is_ows(e[-1])) {
        e--;
    }
    if (e == p) {
        return CH_EPARSE;
    }
    for (const char *q = p; q < e; q++) {
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f) {
            return CH_EPARSE;
        }
    }
    *token = (ch_slice_t){p, (size_t)(e - p)};
    return 0;
}

/* ---- authentication ------------------------------------------------------------------------ */

#define DEFAULT_IDLE_MS (30LL * 60 * 1000)
#define DEFAULT_MAX_MS  (12LL * 3600 * 1000)
#define SLIDE_EVERY_MS  (60LL * 1000)

void ch_auth_principal_of_user(const ch_user_t *u, int64_t session_id, const char *csrf,
                               ch_auth_principal_t *out)
{
    memset(out, 0, sizeof(*out));
    out->kind = CH_AUTH_USER;
    out->id = u->id;
    out->role = ch_auth_role_bit(u->role);
    out->agency_id = u->agency_id;
    snprintf(out->name, sizeof(out->name), "%s", u->name);
    snprintf(out->actor, sizeof(out->actor), "user:%s", u->name);
    out->session_id = session_id;
    snprintf(out->csrf, sizeof(out->csrf), "%s", csrf != NULL ? csrf : "");
}

int64_t ch_auth__idle_ms(const ch_auth_config_t *cfg)
{
    return cfg != NULL && cfg->session_idle_ms > 0 ? cfg->session_idle_ms : DEFAULT_IDLE_MS;
}

int ch_auth__session_expired(const ch_auth_config_t *cfg, int64_t created_at, int64_t expires_at,
                             int64_t now_ms)
{
    int64_t max = cfg != NULL && cfg->session_max_ms > 0 ? cfg->session_max_ms : DEFAULT_MAX_MS;
    return expires_at <= now_ms || created_at + max <= now_ms;
}

int ch_auth__slide_due(int64_t slid_at, int64_t now_ms)
{
    return now_ms - slid_at >= SLIDE_EVERY_MS;
}

void ch_auth__session_end(ch_store_t *st, int64_t session_id, const char *what)
{
    if (ch_store_session_delete(st, session_id) != 0) {
        ch_log(CH_LOG_WARN, MODULE, "msg=\"%s not deleted\"", what);
    }
}

int ch_auth__session_slide(ch_store_t *st, const ch_auth__resolved_t *r, int64_t expires_at)
{
    ch_session_t s = {0};
    s.id = r->who.session_id;
    s.token_hash = (char *)r->hash;
    s.user_id = r->who.id;
    s.csrf = (char *)r->who.csrf;
    s.expires_at = expires_at;
    return ch_store_session_update(st, &s);
}

int ch_auth__token_hash(ch_slice_t token, char hash[CH_AUTH_SHA256_HEX], const char **why)
{
    if (token.len != CH_AUTH_TOKEN_LEN) {
        *why = "unknown session";
        return CH_EPERM;
    }
    ch_auth_sha256_hex(token.ptr, token.len, hash);
    return 0;
}

int ch_auth__session_read(ch_store_t *st, const ch_auth_config_t *cfg, const char *hash,
                          int64_t now_ms, ch_auth__resolved_t *r, const char **why)
{
    ch_session_t s;
    ch_user_t u;
    memset(r, 0, sizeof(*r));
    int rc = ch_store_session_find(st, hash, &s);
    if (rc == CH_ENOTFOUND) {
        *why = "unknown session";
        return CH_EPERM;
    }
    if (rc != 0) {
        return rc;
    }
    if (ch_auth__session_expired(cfg, s.created_at, s.expires_at, now_ms)) {
        *why = "the session has expired";
        ch_auth__session_end(st, s.id, "expired session");
        ch_session_fini(&s);
        return CH_EPERM;
    }
    rc = ch_store_user_get(st, s.user_id, &u);
    if (rc != 0 || u.disabled) {
        *why = "the account is disabled";
        if (rc == 0 || rc == CH_ENOTFOUND) {
            ch_auth__session_end(st, s.id, "session of a disabled user");
            rc = CH_EPERM;
        }
        ch_user_fini(&u);
        ch_session_fini(&s);
        return rc;
    }
    ch_auth_principal_of_user(&u, s.id, s.csrf, &r->who);
    snprintf(r->hash, sizeof(r->hash), "%s", hash);
    r->created_at = s.created_at;
    r->expires_at = s.expires_at;
    r->slid_at = s.updated_at;
    ch_user_fini(&u);
    ch_session_fini(&s);
    return 0;
}

static int auth_session(ch_store_t *st, const ch_auth_config_t *cfg, ch_slice_t token,
                        int64_t now_ms, ch_auth_principal_t *out, const char **why)
{
    char hash[CH_AUTH_SHA256_HEX];
    ch_auth__resolved_t r;
    int rc = ch_auth__token_hash(token, hash, why);
    if (rc == 0) {
        rc = ch_auth__session_read(st, cfg, hash, now_ms, &r, why);
    }
    if (rc != 0) {
        return rc;
    }
    *out = r.who;
    /* At most one write a minute per session, not one per request. */
    if (ch_auth__slide_due(r.slid_at, now_ms) &&
        ch_auth__session_slide(st, &r, now_ms + ch_auth__idle_ms(cfg)) != 0) {
        ch_log(CH_LOG_WARN, MODULE, "msg=\"session expiry not moved\" error=\"%s\"",
               ch_store_errmsg(st));
    }
    return 0;
}

int ch_auth__apikey_read(ch_store_t *st, int64_t id, const char *secret_hash,
                         ch_auth__resolved_t *r, const char **why)
{
    ch_apikey_t k;
    memset(r, 0, sizeof(*r));
    int rc = ch_store_apikey_get(st, id, &k);
    if (rc == CH_ENOTFOUND) {
        *why = "unknown API key";
        return CH_EPERM;
    }
    if (rc != 0) {
        return rc;
    }
    if (!ch_auth_secret_eq(secret_hash, strlen(secret_hash), k.secret_hash,
                           strlen(k.secret_hash))) {
        *why = "unknown API key";
        ch_apikey_fini(&k);
        return CH_EPERM;
    }
    if (k.revoked_at != 0) {
        *why = "the API key is revoked";
        ch_apikey_fini(&k);
        return CH_EPERM;
    }
    ch_auth_principal_t *out = &r->who;
    out->kind = CH_AUTH_APIKEY;
    out->id = k.id;
    out->role = ch_auth_role_bit(k.role);
    out->agency_id = k.agency_id;
    snprintf(out->name, sizeof(out->name), "apikey:%lld", (long long)k.id);
    snprintf(out->actor, sizeof(out->actor), "apikey:%lld", (long long)k.id);
    snprintf(r->hash, sizeof(r->hash), "%s", k.secret_hash);
    snprintf(out->tls_key, sizeof(out->tls_key), "%s", k.tls_key != NULL ? k.tls_key : "");
    ch_apikey_fini(&k);
    return 0;
}

int ch_auth_tls_binding_check(const ch_auth_principal_t *who, const char *shown, const char **why)
{
    if (who->tls_key[0] == '\0') {
        return 0;
    }
    if (shown == NULL) {
        *why = "this API key needs its agency's client certificate";
        return CH_EPERM;
    }
    /* Not a secret (a certificate's key is public): a plain comparison will do. */
    if (strcmp(shown, who->tls_key) != 0) {
        *why = "the client certificate is not the one this API key is bound to";
        return CH_EPERM;
    }
    return 0;
}

int ch_auth__apikey_parse(ch_slice_t key, int64_t *id, char secret_hash[CH_AUTH_SHA256_HEX],
                          const char **why)
{
    ch_slice_t secret;
    if (ch_auth_apikey_parse(key.ptr, key.len, id, &secret) != 0) {
        *why = "not an API key";
        return CH_EPERM;
    }
    ch_auth_sha256_hex(secret.ptr, secret.len, secret_hash);
    return 0;
}

static int auth_apikey(ch_store_t *st, ch_slice_t key, ch_auth_principal_t *out, const char **why)
{
    int64_t id = 0;
    char hash[CH_AUTH_SHA256_HEX];
    ch_auth__resolved_t r;
    int rc = ch_auth__apikey_parse(key, &id, hash, why);
    if (rc == 0) {
        rc = ch_auth__apikey_read(st, id, hash, &r, why);
    }
    if (rc == 0) {
        *out = r.who;
    }
    return rc;
}

int ch_auth__credential(const ch_slice_t *cookie, const ch_slice_t *authorization,
                        ch_auth_kind_t *kind, ch_slice_t *token, const char **why)
{
    *kind = CH_AUTH_NONE;
    if (authorization != NULL) {
        if (ch_auth_bearer(*authorization, token) != 0) {
            *why = "the Authorization header is not \"Bearer <API key>\"";
            return CH_EPERM;
        }
        *kind = CH_AUTH_APIKEY;
        return 0;
    }
    if (cookie != NULL) {
        int rc = ch_auth_cookie_get(*cookie, CH_AUTH_COOKIE, token);
        if (rc == CH_ENOTFOUND) {
            return 0;
        }
        if (rc != 0) {
            *why = "the session cookie is given twice";
            return CH_EPERM;
        }
        *kind = CH_AUTH_USER;
    }
    return 0;
}

int ch_auth_authenticate(ch_store_t *st, const ch_auth_config_t *cfg, const ch_slice_t *cookie,
                         const ch_slice_t *authorization, int64_t now_ms, ch_auth_principal_t *out,
                         const char **why)
{
    ch_auth_kind_t kind;
    ch_slice_t token;
    memset(out, 0, sizeof(*out));
    *why = NULL;
    int rc = ch_auth__credential(cookie, authorization, &kind, &token, why);
    if (rc != 0 || kind == CH_AUTH_NONE) {
        return rc;
    }
    return kind == CH_AUTH_APIKEY ? auth_apikey(st, token, out, why)
                                  : auth_session(st, cfg, token, now_ms, out, why);
}

/* ---- the login throttle and the lock-out ----------------------------------------------------- */

/* One table serves both: keys are a host (the throttle) or "user\n host" (the lock-out). */
#define KEY_MAX 120

typedef struct slot {
    char key[KEY_MAX]; /* "" = free */
    int failures;
    int announced;   /* the lock-out: the failure that reached the limit was reported */
    int64_t last_ms; /* the last failure: the window runs from it, so slow guessing adds up */
} slot_t;

struct ch_auth_throttle {
    int max_failures;
    int64_t window_ms;
    size_t nslots;
    slot_t *slots;
};

static ch_auth_throttle_t *table_new(int max_failures, int64_t window_ms, int64_t default_ms,
                                     size_t nslots)
{
    ch_auth_throttle_t *t = ch_calloc(1, sizeof(*t));
    t->max_failures = max_failures > 0 ? max_failures : 20;
    t->window_ms = window_ms > 0 ? window_ms : default_ms;
    t->nslots = nslots;
    t->slots = ch_calloc(nslots, sizeof(slot_t));
    return t;
}

ch_auth_throttle_t *ch_auth_throttle_new(int max_failures, int64_t window_ms)
{
    return table_new(max_failures, window_ms, 5 * 60 * 1000, CH_AUTH_THROTTLE_SLOTS);
}

void ch_auth_throttle_free(ch_auth_throttle_t *t)
{
    if (t != NULL) {
        ch_free(t->slots);
        ch_free(t);
    }
}

void ch_auth__host_of(const char *addr, char out[48])
{
    size_t n = strlen(addr);
    const char *colon = strchr(addr, ':');
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        n = close != NULL ? (size_t)(close - addr) + 1 : n;
    } else if (colon != NULL && strchr(colon + 1, ':') == NULL) {
        n = (size_t)(colon - addr);
    }
    if (n > 47) {
        n = 47;
    }
    memcpy(out, addr, n);
    out[n] = '\0';
}

/* The table key of addr, with user in front when not NULL. */
static void key_of(const char *user, const char *addr, char out[KEY_MAX])
{
    char host[48];
    ch_auth__host_of(addr, host);
    if (user != NULL) {
        /* host never holds a newline, so "user\nhost" splits at its last newline one way
         * only, whatever the name holds (names are at most 64 bytes: the route checks). */
        snprintf(out, KEY_MAX, "%.70s\n%s", user, host);
    } else {
        snprintf(out, KEY_MAX, "%s", host);
    }
}

static slot_t *find_slot(ch_auth_throttle_t *t, const char *key, int create, int64_t now_ms)
{
    slot_t *victim = NULL; /* a free slot, else the one least recently failed */
    for (size_t i = 0; i < t->nslots; i++) {
        slot_t *s = &t->slots[i];
        if (s->key[0] != '\0' && now_ms - s->last_ms > t->window_ms) {
            s->key[0] = '\0';
        }
        if (s->key[0] != '\0' && strcmp(s->key, key) == 0) {
            return s;
        }
        if (victim == NULL ||
            (victim->key[0] != '\0' && (s->key[0] == '\0' || s->last_ms < victim->last_ms))) {
            victim = s;
        }
    }
    if (!create) {
        return NULL;
    }
    memset(victim, 0, sizeof(*victim));
    snprintf(victim->key, sizeof(victim->key), "%s", key);
    return victim;
}

static int64_t table_check(ch_auth_throttle_t *t, const char *key, int64_t now_ms)
{
    slot_t *s = find_slot(t, key, 0, now_ms);
    if (s == NULL || s->failures < t->max_failures) {
        return 0;
    }
    int64_t wait = s->last_ms + t->window_ms - now_ms;
    return wait > 0 ? wait : 0;
}

static slot_t *table_fail(ch_auth_throttle_t *t, const char *key, int64_t now_ms)
{
    slot_t *s = find_slot(t, key, 1, now_ms);
    s->failures++;
    s->last_ms = now_ms;
    return s;
}

static void table_clear(ch_auth_throttle_t *t, const char *key)
{
    for (size_t i = 0; i < t->nslots; i++) {
        if (strcmp(t->slots[i].key, key) == 0) {
            t->slots[i].key[0] = '\0';
        }
    }
}

int64_t ch_auth_throttle_check(ch_auth_throttle_t *t, const char *addr, int64_t now_ms)
{
    char key[KEY_MAX];
    key_of(NULL, addr, key);
    return table_check(t, key, now_ms);
}

void ch_auth_throttle_fail(ch_auth_throttle_t *t, const char *addr, int64_t now_ms)
{
    char key[KEY_MAX];
    key_of(NULL, addr, key);
    (void)table_fail(t, key, now_ms);
}

void ch_auth_throttle_forgive(ch_auth_throttle_t *t, const char *addr)
{
    char key[KEY_MAX];
    key_of(NULL, addr, key);
    for (size_t i = 0; i < t->nslots; i++) {
        slot_t *s = &t->slots[i];
        if (s->key[0] != '\0' && strcmp(s->key, key) == 0 && s->failures > 0) {
            s->failures--;
        }
    }
}

void ch_auth_throttle_clear(ch_auth_throttle_t *t, const char *addr)
{
    char key[KEY_MAX];
    key_of(NULL, addr, key);
    table_clear(t, key);
}

ch_auth_lockout_t *ch_auth_lockout_new(int max_failures, int64_t lock_ms)
{
    return table_new(max_failures > 0 ? max_failures : 5, lock_ms, 15 * 60 * 1000,
                     CH_AUTH_LOCKOUT_SLOTS);
}

void ch_auth_lockout_free(ch_auth_lockout_t *l)
{
    ch_auth_throttle_free(l);
}

int64_t ch_auth_lockout_check(ch_auth_lockout_t *l, const char *user, const char *addr,
                              int64_t now_ms)
{
    char key[KEY_MAX];
    key_of(user, addr, key);
    return table_check(l, key, now_ms);
}

int ch_auth_lockout_fail(ch_auth_lockout_t *l, const char *user, const char *addr, int64_t now_ms)
{
    char key[KEY_MAX];
    key_of(user, addr, key);
    slot_t *s = table_fail(l, key, now_ms);
    if (s->failures >= l->max_failures && !s->announced) {
        s->announced = 1;
        return 1;
    }
    return 0;
}

void ch_auth_lockout_clear(ch_auth_lockout_t *l, const char *user, const char *addr)
{
    char key[KEY_MAX];
    key_of(user, addr, key);
    table_clear(l, key);
}

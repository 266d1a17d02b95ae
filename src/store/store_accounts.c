/*
 * store/store_accounts.c: users, API keys, sessions and the audit outbox. They are generic
 * tables of the back end (ch_store__tables); this file checks records and gives them their
 * typed calls. Secrets never reach here in clear: passwords arrive as Argon2id strings,
 * API key secrets and session tokens as SHA-256 hex.
 */
#include "store/store_internal.h"

#include <string.h>

#define USERS    (&ch_store__tables[CH_STORE__USERS])
#define APIKEYS  (&ch_store__tables[CH_STORE__APIKEYS])
#define SESSIONS (&ch_store__tables[CH_STORE__SESSIONS])
#define OUTBOX   (&ch_store__tables[CH_STORE__OUTBOX])

const char *const ch_store_roles[] = {"admin", "operator", "agency", "provider", "auditor", NULL};

static const char *const apikey_roles[] = {"agency", "provider", NULL};

CH_STORE__FINI(ch_user_fini, ch_user_t, USERS)

CH_STORE__FINI(ch_apikey_fini, ch_apikey_t, APIKEYS)

CH_STORE__FINI(ch_session_fini, ch_session_t, SESSIONS)

CH_STORE__FINI(ch_outbox_fini, ch_outbox_t, OUTBOX)

CH_STORE__LIST_FREE(ch_user_list_free, ch_user_list_t, USERS)
CH_STORE__LIST_FREE(ch_apikey_list_free, ch_apikey_list_t, APIKEYS)
CH_STORE__LIST_FREE(ch_outbox_list_free, ch_outbox_list_t, OUTBOX)

/* 1 when s is 64 lowercase hex digits (a SHA-256 written out). */
static int is_sha256_hex(const char *s)
{
    uint8_t h[32];
    return s != NULL && strlen(s) == 64 &&
           ch_hex_decode(s, 64, h, sizeof(h), CH_HEX_LOWER_ONLY) == 0;
}

/* ---- users --------------------------------------------------------------------------------- */

static int user_check(ch_store_t *st, const ch_user_t *u)
{
    int rc;
    if (u->name == NULL || u->name[0] == '\0' || strlen(u->name) > 64) {
        return ch_store__fail(st, CH_EINVAL, "user: name is required (1 to 64 bytes)");
    }
    if ((rc = ch_store__check_enum(st, "user", "role", u->role, ch_store_roles)) != 0) {
        return rc;
    }
    if ((strcmp(u->role, "agency") == 0 || strcmp(u->role, "provider") == 0) && u->agency_id <= 0) {
        return ch_store__fail(st, CH_EINVAL, "user: agency_id is required for role %s", u->role);
    }
    if (u->agency_id < 0) {
        return ch_store__fail(st, CH_EINVAL, "user: agency_id must be positive");
    }
    if (u->password_hash == NULL || strncmp(u->password_hash, "$argon2id$", 10) != 0) {
        return ch_store__fail(st, CH_EINVAL, "user: password_hash must be an Argon2id string");
    }
    return 0;
}

CH_STORE__GET(ch_store_user_get, ch_user_t, USERS)

int ch_store_user_find(ch_store_t *st, const char *name, ch_user_t *out)
{
    memset(out, 0, sizeof(*out));
    if (name == NULL) {
        return ch_store__fail(st, CH_EINVAL, "user: name is required");
    }
    return st->ops->find_by_key(st, USERS, name, out);
}

CH_STORE__WRITES(ch_store_user_create, ch_store_user_update, ch_user_t, USERS, user_check)

CH_STORE__LIST(ch_store_user_list, ch_user_list_t, USERS)

/* ---- API keys ------------------------------------------------------------------------------ */

static int apikey_check(ch_store_t *st, const ch_apikey_t *k)
{
    int rc;
    if (k->agency_id <= 0) {
        return ch_store__fail(st, CH_EINVAL, "api key: agency_id is required");
    }
    if ((rc = ch_store__check_enum(st, "api key", "role", k->role, apikey_roles)) != 0) {
        return rc;
    }
    if (!is_sha256_hex(k->secret_hash)) {
        return ch_store__fail(st, CH_EINVAL, "api key: secret_hash must be SHA-256 hex");
    }
    if (k->tls_key != NULL && !ch_store_valid_tls_key(k->tls_key)) {
        return ch_store__fail(st, CH_EINVAL, "api key: tls_key must be sha256: and 64 hex");
    }
    return 0;
}

CH_STORE__GET(ch_store_apikey_get, ch_apikey_t, APIKEYS)

CH_STORE__WRITES(ch_store_apikey_create, ch_store_apikey_update, ch_apikey_t, APIKEYS, apikey_check)

CH_STORE__LIST(ch_store_apikey_list, ch_apikey_list_t, APIKEYS)

/* ---- sessions ------------------------------------------------------------------------------ */

static int session_check(ch_store_t *st, const ch_session_t *s)
{
    if (!is_sha256_hex(s->token_hash)) {
        return ch_store__fail(st, CH_EINVAL, "session: token_hash must be SHA-256 hex");
    }
    if (s->user_id <= 0 || s->csrf == NULL || s->csrf[0] == '\0') {
        return ch_store__fail(st, CH_EINVAL, "session: user_id and csrf are required");
    }
    return 0;
}

int ch_store_session_find(ch_store_t *st, const char *token_hash, ch_session_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!is_sha256_hex(token_hash)) {
        return ch_store__fail(st, CH_ENOTFOUND, "sessions: no such session");
    }
    return st->ops->find_by_key(st, SESSIONS, token_hash, out);
}

CH_STORE__WRITES(ch_store_session_create, ch_store_session_update, ch_session_t, SESSIONS,
                 session_check)

int ch_store_session_delete(ch_store_t *st, int64_t id)
{
    return ch_store__remove(st, SESSIONS, id);
}

int ch_store_session_end_user(ch_store_t *st, int64_t user_id)
{
    return ch_store__delete_where(st, SESSIONS, "user_id", 0, user_id);
}

int ch_store_session_purge(ch_store_t *st, int64_t now_ms)
{
    return ch_store__delete_where(st, SESSIONS, "expires_at", 1, now_ms);
}

/* ---- the audit outbox ---------------------------------------------------------------------- */

int ch_store_outbox_add(ch_store_t *st, ch_outbox_t *o)
{
    if (o->actor == NULL || o->action == NULL) {
        return ch_store__fail(st, CH_EINVAL, "outbox: actor and action are required");
    }
    return ch_store__create(st, OUTBOX, o);
}

CH_STORE__LIST(ch_store_outbox_list, ch_outbox_list_t, OUTBOX)

int ch_store_outbox_delete(ch_store_t *st, int64_t id)
{
    return ch_store__remove(st, OUTBOX, id);
}

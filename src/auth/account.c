/*
 * auth/account.c: the account use cases: creating a user, making and revoking an API key.
 * The API and the command line both call these, so that every rule of an account (the name,
 * the role, the agency binding, the password's rules, the key's form and its audit record)
 * is written once. Refusals are core's faults (ch_fault_t, the rule in fault.rule); the callers
 * map them to an HTTP status or an exit code.
 */
#include "auth/auth.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fills err with a refusal: the kind, the rule that refused (static text), the field and the
 * message; rc is kept in err->rc, the code the use case returns. */
static int refuse(ch_fault_t *err, ch_fault_kind_t kind, const char *rule, const char *field,
                  const char *message, int rc)
{
    (void)ch_fault_set(err, rc, kind, NULL, field, "%s", message);
    err->rule = rule;
    err->rc = rc;
    return rc;
}

static int invalid(ch_fault_t *err, const char *rule, const char *field, const char *message)
{
    return refuse(err, CH_FAULT_INVALID, rule, field, message, CH_EINVAL);
}

static int store_failed(ch_fault_t *err, int rc)
{
    return refuse(err, CH_FAULT_INTERNAL, "store", NULL, "the store failed", rc < 0 ? rc : CH_EIO);
}

/*
 * Puts a change on the audit record inside its open transaction, then commits; on either
 * failure rolls the transaction back and fills err (not_done: the refusal's message, a static
 * string). details is handed to the recorder, which owns it. 0 or err->rc.
 */
static int record_and_commit(ch_store_t *st, const ch_auth_recorder_t *rec, const char *action,
                             const char *object, json_t *details, int ends_access,
                             const char *not_done, ch_fault_t *err)
{
    int rc = rec->record(rec->data, action, object, details, ends_access);
    if (rc != 0) {
        (void)ch_store_rollback(st);
        return refuse(err, CH_FAULT_AUDIT, "audit", NULL, not_done, rc < 0 ? rc : CH_EIO);
    }
    rc = ch_store_commit(st);
    if (rc != 0) {
        (void)ch_store_rollback(st);
        return store_failed(err, rc);
    }
    return 0;
}

/* Reads agency id into *a (when a is not NULL); 0, or a refusal naming agency_id. */
static int agency_must_exist(ch_store_t *st, int64_t id, ch_agency_t *a, ch_fault_t *err)
{
    ch_agency_t tmp;
    ch_agency_t *out = a != NULL ? a : &tmp;
    int rc = ch_store_agency_get(st, id, out);
    if (a == NULL || rc != 0) {
        ch_agency_fini(out);
    }
    if (rc == CH_ENOTFOUND) {
        return invalid(err, "agency_exists", "agency_id", "no agency has this id");
    }
    if (rc != 0) {
        return store_failed(err, rc);
    }
    return 0;
}

/* ---- users --------------------------------------------------------------------------------- */

/* The rules of a role and its agency binding: the role when given, the agency when given
 * (positive, and existing when st is not NULL), and an agency for the roles agency and
 * provider once the change is made (role and agency_id are the values after it). */
static int binding_rules(ch_store_t *st, const char *role, int role_given, int64_t agency_id,
                         int agency_given, ch_fault_t *err)
{
    unsigned bit = role != NULL ? ch_auth_role_bit(role) : 0;
    if (role_given && bit == 0) {
        return invalid(err, "role", "role",
                       "role must be admin, operator, agency, provider or auditor");
    }
    if (agency_given && agency_id < 0) {
        return invalid(err, "agency_id", "agency_id", "agency_id must be an agency's id or null");
    }
    if (agency_given && agency_id > 0 && st != NULL) {
        int rc = agency_must_exist(st, agency_id, NULL, err);
        if (rc != 0) {
            return rc;
        }
    }
    if ((bit == CH_AUTH_AGENCY || bit == CH_AUTH_PROVIDER) && agency_id == 0) {
        return invalid(err, "agency_required", "agency_id",
                       "the roles agency and provider need an agency_id");
    }
    return 0;
}

static int password_rule(const char *pw, size_t len, ch_fault_t *err)
{
    const char *why = NULL;
    if (pw != NULL && ch_auth_password_acceptable(pw, len, &why) != 0) {
        return invalid(err, "password", "password", why);
    }
    return 0;
}

int ch_auth_user_check(ch_store_t *st, const ch_auth_user_req_t *req, ch_fault_t *err)
{
    memset(err, 0, sizeof(*err));
    const char *name = req->name;
    if (name == NULL || name[0] == '\0' || strlen(name) > 64 || strchr(name, ':') != NULL) {
        return invalid(err, "name", "name", "name must be 1 to 64 bytes without ':'");
    }
    int rc = binding_rules(st, req->role, 1, req->agency_id, 1, err);
    if (rc == 0) {
        rc = password_rule(req->password, req->password_len, err);
    }
    return rc;
}

int ch_auth_user_create(ch_store_t *st, const ch_auth_user_req_t *req, const char *hash,
                        const ch_auth_recorder_t *rec, ch_user_t *out, ch_fault_t *err)
{
    memset(out, 0, sizeof(*out));
    ch_auth_user_req_t hashed = *req;
    hashed.password = NULL;
    int rc = ch_auth_user_check(st, &hashed, err);
    if (rc != 0) {
        return rc;
    }
    assert(hash != NULL && hash[0] != '\0');
    out->name = ch_strdup(req->name);
    out->role = ch_strdup(req->role);
    out->agency_id = req->agency_id;
    out->password_hash = ch_strdup(hash);
    rc = ch_store_begin(st);
    if (rc == 0) {
        rc = ch_store_user_create(st, out);
    }
    if (rc == CH_EEXIST) {
        (void)ch_store_rollback(st);
        refuse(err, CH_FAULT_CONFLICT, "name_taken", "name", "a user has this name", rc);
        goto fail;
    }
    if (rc != 0) {
        (void)ch_store_rollback(st);
        store_failed(err, rc);
        goto fail;
    }
    char object[96];
    snprintf(object, sizeof(object), "user:%s", out->name);
    json_t *d = json_pack("{s:s, s:I}", "role", out->role, "agency_id", (json_int_t)out->agency_id);
    if (record_and_commit(
            st, rec, "user.create", object, d, ch_auth_record_ends_access("user.create", 0),
            "the change was not made: it could not be put on the audit record", err) != 0) {
        goto fail;
    }
    return 0;
fail:
    sodium_memzero(out->password_hash, strlen(out->password_hash));
    ch_user_fini(out);
    memset(out, 0, sizeof(*out));
    return err->rc;
}

int ch_auth_user_add(ch_store_t *st, const ch_auth_user_req_t *req, const ch_auth_recorder_t *rec,
                     ch_user_t *out, ch_fault_t *err)
{
    memset(out, 0, sizeof(*out));
    int rc = ch_auth_user_check(st, req, err);
    if (rc != 0) {
        return rc;
    }
    char hash[CH_AUTH_HASH_MAX];
    rc = ch_auth_password_hash(req->password, req->password_len, hash);
    if (rc != 0) {
        return refuse(err, CH_FAULT_INTERNAL, "hash", "password",
                      "the password could not be hashed", rc);
    }
    ch_auth_user_req_t hashed = *req;
    hashed.password = NULL;
    hashed.password_len = 0;
    rc = ch_auth_user_create(st, &hashed, hash, rec, out, err);
    sodium_memzero(hash, sizeof(hash));
    return rc;
}

/* Reads the user a change names into u. */
static int change_target(ch_store_t *st, const ch_auth_user_change_t *req, ch_user_t *u,
                         ch_fault_t *err)
{
    int rc = req->id != 0 ? ch_store_user_get(st, req->id, u)
                          : ch_store_user_find(st, req->name != NULL ? req->name : "", u);
    if (rc == CH_ENOTFOUND) {
        return refuse(err, CH_FAULT_NOT_FOUND, "not_found", NULL, "no such user", rc);
    }
    if (rc != 0) {
        return store_failed(err, rc);
    }
    return 0;
}

/* The rules of a change to u (as stored). */
static int change_rules(ch_store_t *st, const ch_auth_user_change_t *req, const ch_user_t *u,
                        ch_fault_t *err)
{
    const char *role = req->role != NULL ? req->role : u->role;
    int64_t agency_id = req->set_agency ? req->agency_id : u->agency_id;
    return binding_rules(st, role, req->role != NULL, agency_id, req->set_agency, err);
}

int ch_auth_user_change_check(ch_store_t *st, const ch_auth_user_change_t *req, ch_fault_t *err)
{
    memset(err, 0, sizeof(*err));
    ch_user_t u;
    memset(&u, 0, sizeof(u));
    int rc = change_target(st, req, &u, err);
    if (rc == 0) {
        rc = change_rules(st, req, &u, err);
    }
    if (rc == 0) {
        rc = password_rule(req->password, req->password_len, err);
    }
    ch_user_fini(&u);
    return rc;
}

int ch_auth_user_update(ch_store_t *st, const ch_auth_user_change_t *req, const char *hash,
                        const ch_auth_recorder_t *rec, ch_user_t *out, ch_fault_t *err)
{
    memset(out, 0, sizeof(*out));
    memset(err, 0, sizeof(*err));
    int rc = ch_store_begin(st);
    if (rc != 0) {
        return store_failed(err, rc);
    }
    rc = change_target(st, req, out, err);
    if (rc == 0) {
        rc = change_rules(st, req, out, err);
    }
    if (rc != 0) {
        goto fail;
    }
    /* What the record says changed: what was asked, in the order the API has always told. */
    json_t *changes = json_object();
    if (req->disabled >= 0) {
        out->disabled = req->disabled;
        json_object_set_new(changes, "disabled", json_boolean(req->disabled));
    }
    if (req->unlock) {
        out->locked_until = 0;
        out->failed_logins = 0;
        json_object_set_new(changes, "unlocked", json_true());
    }
    if (req->role != NULL) {
        ch_free(out->role);
        out->role = ch_strdup(req->role);
        json_object_set_new(changes, "role", json_string(out->role));
    }
    if (req->set_agency) {
        out->agency_id = req->agency_id;
        json_object_set_new(changes, "agency_id",
                            out->agency_id ? json_integer(out->agency_id) : json_null());
    }
    if (hash != NULL && hash[0] != '\0') {
        ch_free(out->password_hash);
        out->password_hash = ch_strdup(hash);
        json_object_set_new(changes, "password_changed", json_true());
    }
    rc = ch_store_user_update(st, out);
    /* A disabled user, a new role or a new password ends the user's sessions. */
    if (rc == 0 && json_object_size(changes) > 0 &&
        (out->disabled || req->role != NULL ||
         json_object_get(changes, "password_changed") != NULL)) {
        rc = ch_store_session_end_user(st, out->id);
    }
    if (rc != 0) {
        json_decref(changes);
        store_failed(err, rc);
        goto fail;
    }
    char object[96];
    snprintf(object, sizeof(object), "user:%s", out->name);
    /* Disabling a user ends access: it may use the audit disk's reserve. */
    int ends = ch_auth_record_ends_access("user.update", req->disabled == 1);
    if (record_and_commit(st, rec, "user.update", object, changes, ends,
                          "the change was not made: it could not be put on the audit record",
                          err) != 0) {
        goto fail;
    }
    return 0;
fail:
    (void)ch_store_rollback(st);
    ch_user_fini(out);
    return err->rc;
}

/* ---- API keys ------------------------------------------------------------------------------ */

static int apikey_rules(const ch_auth_apikey_req_t *req, ch_fault_t *err)
{
    if (req->agency_id < 1) {
        return invalid(err, "agency_id", "agency_id", "agency_id must be an agency's id");
    }
    return 0;
}

static int apikey_role_label(const ch_auth_apikey_req_t *req, ch_fault_t *err)
{
    if (req->role != NULL && strcmp(req->role, "agency") != 0 &&
        strcmp(req->role, "provider") != 0) {
        return invalid(err, "apikey_role", "role", "an API key's role is agency or provider");
    }
    if (req->label != NULL && strlen(req->label) > CH_AUTH_LABEL_MAX) {
        return invalid(err, "label", "label", "label must be text of at most 200 bytes");
    }
    if (req->tls_key != NULL) {
        if (!ch_store_valid_tls_key(req->tls_key)) {
            return invalid(err, "tls_key", "tls_key",
                           "tls_key is a client certificate's key: sha256: and 64 lowercase hex "
                           "(cctvhub tls fingerprint CERT)");
        }
    }
    return 0;
}

int ch_auth_apikey_check(ch_store_t *st, const ch_auth_apikey_req_t *req, ch_fault_t *err)
{
    memset(err, 0, sizeof(*err));
    int rc = apikey_rules(req, err);
    if (rc == 0 && st != NULL) {
        rc = agency_must_exist(st, req->agency_id, NULL, err);
    }
    if (rc == 0) {
        rc = apikey_role_label(req, err);
    }
    return rc;
}

int ch_auth_apikey_create(ch_store_t *st, const ch_auth_apikey_req_t *req,
                          const ch_auth_recorder_t *rec, ch_auth_apikey_made_t *out,
                          ch_fault_t *err)
{
    memset(out, 0, sizeof(*out));
    memset(err, 0, sizeof(*err));
    ch_agency_t a;
    memset(&a, 0, sizeof(a));
    int rc = apikey_rules(req, err);
    if (rc == 0) {
        rc = agency_must_exist(st, req->agency_id, &a, err);
    }
    if (rc == 0) {
        rc = apikey_role_label(req, err);
    }
    if (rc != 0) {
        ch_agency_fini(&a);
        return rc;
    }
    /* An agency that only provides cameras gets a provider key unless told otherwise. */
    const char *role = req->role;
    if (role == NULL) {
        role = a.kind != NULL && strcmp(a.kind, "provider") == 0 ? "provider" : "agency";
    }
    ch_agency_fini(&a);
    char secret[CH_AUTH_TOKEN_LEN + 1], hash[CH_AUTH_SHA256_HEX];
    ch_auth_random_token(secret);
    ch_auth_sha256_hex(secret, strlen(secret), hash);
    ch_apikey_t *k = &out->key;
    k->agency_id = req->agency_id;
    k->role = ch_strdup(role);
    k->secret_hash = ch_strdup(hash);
    k->label = req->label != NULL ? ch_strdup(req->label) : NULL;
    k->tls_key = req->tls_key != NULL ? ch_strdup(req->tls_key) : NULL;
    rc = ch_store_begin(st);
    if (rc == 0) {
        rc = ch_store_apikey_create(st, k);
    }
    if (rc != 0) {
        (void)ch_store_rollback(st);
        store_failed(err, rc);
        goto fail;
    }
    char object[48];
    snprintf(object, sizeof(object), "apikey:%lld", (long long)k->id);
    if (record_and_commit(st, rec, "apikey.create", object,
                          json_pack("{s:I, s:s, s:s*}", "agency_id", (json_int_t)k->agency_id,
                                    "role", role, "tls_key", k->tls_key),
                          ch_auth_record_ends_access("apikey.create", 0),
                          "the key was not made: it could not be put on the audit record",
                          err) != 0) {
        goto fail;
    }
    ch_auth_apikey_format(k->id, secret, out->text);
    sodium_memzero(secret, sizeof(secret));
    return 0;
fail:
    sodium_memzero(secret, sizeof(secret));
    ch_apikey_fini(k);
    memset(out, 0, sizeof(*out));
    return err->rc;
}

int ch_auth_apikey_revoke(ch_store_t *st, int64_t id, const ch_auth_recorder_t *rec,
                          ch_fault_t *err)
{
    memset(err, 0, sizeof(*err));
    ch_apikey_t k;
    memset(&k, 0, sizeof(k));
    int rc = ch_store_begin(st);
    if (rc == 0) {
        rc = ch_store_apikey_get(st, id, &k);
    }
    if (rc == CH_ENOTFOUND) {
        (void)ch_store_rollback(st);
        return refuse(err, CH_FAULT_NOT_FOUND, "not_found", NULL, "no such API key", rc);
    }
    if (rc == 0 && k.revoked_at == 0) {
        k.revoked_at = ch_time_now_ms();
        rc = ch_store_apikey_update(st, &k);
        char object[48];
        snprintf(object, sizeof(object), "apikey:%lld", (long long)id);
        /* Revoking ends access: the record may use the audit disk's reserve. */
        if (rc == 0) {
            int arc = rec->record(rec->data, "apikey.revoke", object,
                                  json_pack("{s:I}", "agency_id", (json_int_t)k.agency_id),
                                  ch_auth_record_ends_access("apikey.revoke", 0));
            if (arc != 0) {
                (void)ch_store_rollback(st);
                ch_apikey_fini(&k);
                return refuse(err, CH_FAULT_AUDIT, "audit", NULL,
                              "the key was not revoked: it could not be put on the audit record",
                              arc < 0 ? arc : CH_EIO);
            }
        }
    }
    ch_apikey_fini(&k);
    if (rc == 0) {
        rc = ch_store_commit(st);
    }
    if (rc != 0) {
        (void)ch_store_rollback(st);
        return store_failed(err, rc);
    }
    return 0;
}

/* ---- the command line's recorder ----------------------------------------------------------- */

static int outbox_record(void *data, const char *action, const char *object, json_t *details,
                         int ends_access)
{
    (void)ends_access; /* decided again when the outbox is appended */
    ch_auth_outbox_t *ob = data;
    if (details == NULL) {
        details = json_object();
    }
    json_object_set_new(details, "via", json_string("cli"));
    char *text = json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(details);
    ch_outbox_t o = {.actor = (char *)ob->actor,
                     .action = (char *)action,
                     .object = (char *)object,
                     .details = text};
    int rc = ch_store_outbox_add(ob->st, &o);
    free(text);
    return rc;
}

ch_auth_recorder_t ch_auth_outbox_recorder(ch_auth_outbox_t *ob)
{
    ch_auth_recorder_t rec = {outbox_record, ob};
    return rec;
}

int ch_auth_outbox_drain(ch_store_t *st, ch_auth_outbox_append_fn append, void *ud)
{
    for (;;) {
        ch_outbox_list_t l;
        ch_store_filter_t f = {.limit = 100};
        int rc = ch_store_outbox_list(st, &f, &l);
        if (rc != 0) {
            ch_log(CH_LOG_ERROR, "audit", "msg=\"outbox unreadable\" error=\"%s\"",
                   ch_store_errmsg(st));
            return rc;
        }
        size_t n = l.count;
        for (size_t i = 0; i < l.count && rc == 0; i++) {
            const ch_outbox_t *o = &l.items[i];
            json_t *details = o->details != NULL ? json_loads(o->details, 0, NULL) : NULL;
            json_t *obj = json_is_object(details) ? details : NULL;
            /* A key revoked or a user disabled from the command line ends access: its record
             * may use the reserve of a full audit disk. */
            int disables = json_is_true(json_object_get(obj, "disabled"));
            rc = append(ud, o->actor, o->action, o->object, obj,
                        ch_auth_record_ends_access(o->action, disables));
            json_decref(details);
            if (rc == 0) {
                rc = ch_store_outbox_delete(st, o->id);
            }
        }
        ch_outbox_list_free(&l);
        if (rc != 0) {
            ch_log(CH_LOG_ERROR, "audit", "msg=\"outbox not drained\" rc=%d", rc);
            return rc;
        }
        if (n < 100) {
            return 0;
        }
    }
}

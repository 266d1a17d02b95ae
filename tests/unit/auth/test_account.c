/*
 * Unit tests of auth's account use cases (account.c): creating a user, making and revoking an
 * API key, changing a user. Each rule is refused with its code, rule and field; the successes write
 * the store and put one record on the recorder; a duplicate name and a failing recorder change
 * nothing.
 *
 * The tests open a fresh SQLite database in their own temporary directory (setup) and remove
 * it afterwards (teardown).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "support/fixture.h"

/* A well-formed Argon2id string (the store checks only its prefix). */
#define FAKE_HASH                                                                                  \
    "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$"                                       \
    "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY"

/* What the use cases handed to the recorder. */
typedef struct recorded {
    int count;
    int fail; /* the code the recorder returns (0: records) */
    char action[32];
    char object[96];
    char details[256];
    int ends_access;
} recorded_t;

typedef struct fixture {
    ch_test_store_t ts;
    ch_store_t *st;
    int64_t agency_id;   /* kind "both" */
    int64_t provider_id; /* kind "provider" */
    recorded_t rec;
    ch_auth_recorder_t recorder;
} fixture_t;

static int record(void *data, const char *action, const char *object, json_t *details,
                  int ends_access)
{
    recorded_t *r = data;
    if (r->fail != 0) {
        json_decref(details);
        return r->fail;
    }
    r->count++;
    snprintf(r->action, sizeof(r->action), "%s", action);
    snprintf(r->object, sizeof(r->object), "%s", object);
    char *text = details != NULL ? json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    snprintf(r->details, sizeof(r->details), "%s", text != NULL ? text : "");
    free(text);
    json_decref(details);
    r->ends_access = ends_access;
    return 0;
}

static int setup(void **state)
{
    fixture_t *fx = ch_calloc(1, sizeof(*fx));
    if (ch_test_store_open(&fx->ts, "ch_account_test", &fx->st) != 0) {
        ch_free(fx);
        return -1;
    }
    fx->agency_id = ch_test_store_agency(fx->st, "종로구 통합관제센터", "both");
    fx->provider_id = ch_test_store_agency(fx->st, "한국도로공사", "provider");
    if (fx->agency_id == 0 || fx->provider_id == 0) {
        return -1;
    }
    fx->recorder.record = record;
    fx->recorder.data = &fx->rec;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    int rc = ch_test_store_close(&fx->ts, fx->st);
    ch_free(fx);
    return rc;
}

static void assert_refused(int rc, const ch_fault_t *err, ch_fault_kind_t kind, const char *rule,
                           const char *field)
{
    assert_true(rc < 0);
    assert_int_equal(err->kind, kind);
    assert_null(err->code);
    assert_int_equal(err->rc, rc);
    assert_non_null(err->rule);
    assert_string_equal(err->rule, rule);
    assert_string_equal(err->field, field == NULL ? "" : field);
    assert_true(err->message[0] != '\0');
}

/* ---- users --------------------------------------------------------------------------------- */

static void test_user_check_refuses_each_rule_with_its_field(void **state)
{
    fixture_t *fx = *state;
    ch_fault_t err;
    char long_name[66];
    memset(long_name, 'k', 65);
    long_name[65] = '\0';
    const char *pw = "a good long password";
    struct {
        ch_auth_user_req_t req;
        const char *rule;
        const char *field;
    } cases[] = {
        {{.name = NULL, .role = "admin"}, "name", "name"},
        {{.name = "", .role = "admin"}, "name", "name"},
        {{.name = long_name, .role = "admin"}, "name", "name"},
        {{.name = "apikey:3", .role = "admin"}, "name", "name"},
        {{.name = "kim", .role = NULL}, "role", "role"},
        {{.name = "kim", .role = "root"}, "role", "role"},
        {{.name = "kim", .role = "public"}, "role", "role"},
        {{.name = "kim", .role = "admin", .agency_id = -1}, "agency_id", "agency_id"},
        {{.name = "kim", .role = "operator", .agency_id = 9999}, "agency_exists", "agency_id"},
        {{.name = "kim", .role = "agency"}, "agency_required", "agency_id"},
        {{.name = "kim", .role = "provider"}, "agency_required", "agency_id"},
        {{.name = "kim", .role = "admin", .password = "short", .password_len = 5},
         "password",
         "password"},
        {{.name = "kim", .role = "admin", .password = "ten\nbytes!!", .password_len = 11},
         "password",
         "password"},
    };
    for (size_t i = 0; i < CH_ARRAY_SIZE(cases); i++) {
        int rc = ch_auth_user_check(fx->st, &cases[i].req, &err);
        assert_refused(rc, &err, CH_FAULT_INVALID, cases[i].rule, cases[i].field);
        assert_int_equal(rc, CH_EINVAL);
    }
    /* Every name of 64 bytes, any role with its binding, and a good password pass. */
    long_name[64] = '\0';
    ch_auth_user_req_t ok = {.name = long_name,
                             .role = "provider",
                             .agency_id = fx->agency_id,
                             .password = pw,
                             .password_len = strlen(pw)};
    assert_int_equal(ch_auth_user_check(fx->st, &ok, &err), 0);
    ok.role = "auditor";
    ok.agency_id = 0;
    assert_int_equal(ch_auth_user_check(fx->st, &ok, &err), 0);
}

static void test_user_check_without_store_leaves_the_agency_to_later(void **state)
{
    fixture_t *fx = *state;
    ch_fault_t err;
    /* The command line checks before it opens the store: an unknown agency passes then. */
    ch_auth_user_req_t req = {.name = "kim", .role = "agency", .agency_id = 9999};
    assert_int_equal(ch_auth_user_check(NULL, &req, &err), 0);
    assert_refused(ch_auth_user_check(fx->st, &req, &err), &err, CH_FAULT_INVALID, "agency_exists",
                   "agency_id");
    /* And the password only when given. */
    req.agency_id = fx->agency_id;
    assert_int_equal(ch_auth_user_check(fx->st, &req, &err), 0);
}

static void test_user_create_writes_the_user_and_its_record(void **state)
{
    fixture_t *fx = *state;
    ch_fault_t err;
    ch_user_t u;
    ch_auth_user_req_t req = {.name = "박정민", .role = "agency", .agency_id = fx->agency_id};
    assert_int_equal(ch_auth_user_create(fx->st, &req, FAKE_HASH, &fx->recorder, &u, &err), 0);
    assert_true(u.id > 0);
    assert_string_equal(u.name, "박정민");
    assert_string_equal(u.role, "agency");
    assert_int_equal(u.agency_id, fx->agency_id);
    assert_int_equal(fx->rec.count, 1);
    assert_string_equal(fx->rec.action, "user.create");
    assert_string_equal(fx->rec.object, "user:박정민");
    char want[96];
    snprintf(want, sizeof(want), "{\"agency_id\":%lld,\"role\":\"agency\"}",
             (long long)fx->agency_id);
    assert_string_equal(fx->rec.details, want);
    assert_int_equal(fx->rec.ends_access, 0);
    ch_user_t found;
    assert_int_equal(ch_store_user_find(fx->st, "박정민", &found), 0);
    assert_int_equal(found.id, u.id);
    assert_string_equal(found.password_hash, FAKE_HASH);
    assert_int_equal(found.disabled, 0);
    ch_user_fini(&found);
    ch_user_fini(&u);
}

static void test_user_create_refuses_a_name_taken(void **state)
{
    fixture_t *fx = *state;
    ch_fault_t err;
    ch_user_t u;
    ch_auth_user_req_t req = {.name = "kim", .role = "admin"};
    assert_int_equal(ch_auth_user_create(fx->st, &req, FAKE_HASH, &fx->recorder, &u, &err), 0);
    ch_user_fini(&u);
    req.role = "auditor";
    int rc = ch_auth_user_create(fx->st, &req, FAKE_HASH, &fx->recorder, &u, &err);
    assert_refused(rc, &err, CH_FAULT_CONFLICT, "name_taken", "name");
    assert_int_equal(rc, CH_EEXIST);
    assert_null(u.name);
    assert_int_equal(fx->rec.count, 1); /* only the first one's */
    ch_user_t found;
    assert_int_equal(ch_store_user_find(fx->st, "kim", &found), 0);
    assert_string_equal(found.role, "admin");
    ch_user_fini(&found);
    /* The store is usable afterwards: the refused transaction was rolled back. */
    req.name = "lee";
    assert_int_equal(ch_auth_user_create(fx->st, &req, FAKE_HASH, &fx->recorder, &u, &err), 0);
    ch_user_fini(&u);
}

static void test_user_create_checks_the_rules_again(void **state)
{
    fixture_t *fx = *state;
    ch_fault_t err;
    ch_user_t u;
    ch_auth_user_req_t req = {.name = "a:b", .role = "admin"};
    assert_refused(ch_auth_user_create(fx->st, &req, FAKE_HASH, &fx->recorder, &u, &err), &err,
                   CH_FAULT_INVALID, "name", "name");
    req = (ch_auth_user_req_t){.name = "kim", .role = "provider", .agency_id = 4242};
    assert_refused(ch_auth_user_create(fx->st, &req, FAKE_HASH, &fx->recorder, &u, &err), &err,
                   CH_FAULT_INVALID, "agency_exists", "agency_id");
    assert_int_equal(fx->rec.count, 0);
    assert_int_equal(ch_store_user_find(fx->st, "kim", &u), CH_ENOTFOUND);
}

static void test_user_create_without_its_record_changes_nothing(void **state)
{
    fixture_t *fx = *state;
    ch_fault_t err;
    ch_user_t u;
    fx->rec.fail = CH_EIO;
    ch_auth_user_req_t req = {.name = "kim", .role = "admin"};
    int rc = ch_auth_user_create(fx->st, &req, FAKE_HASH, &fx->recorder, &u, &err);
    assert_refused(rc, &err, CH_FAULT_AUDIT, "audit", NULL);
    assert_int_equal(err.rc, CH_EIO);
    assert_int_equal(ch_store_user_find(fx->st, "kim", &u), CH_ENOTFOUND);
    /* Once the record can be made again, so can the user. */
    fx->rec.fail = 0;
    assert_int_equal(ch_auth_user_create(fx->st, &req, FAKE_HASH, &fx->recorder, &u, &err), 0);
    ch_user_fini(&u);
}

static int64_t create_user(fixture_t *fx, const char *name, const char *role, int64_t agency_id)
{
    ch_fault_t err;
    ch_user_t u;
    ch_auth_user_req_t req = {.name = name, .role = role, .agency_id = agency_id};
    assert_int_equal(ch_auth_user_create(fx->st, &req, FAKE_HASH, &fx->recorder, &u, &err), 0);
    int64_t id = u.id;
    ch_user_fini(&u);
    return id;
}

static void test_user_change_check_refuses_each_rule_with_its_field(void **state)
{
    fixture_t *fx = *state;
    ch_fault_t err;
    int64_t id = create_user(fx, "kim", "provider", fx->provider_id);
    ch_auth_user_change_t none = {.id = id + 50, .disabled = -1};
    int rc = ch_auth_user_change_check(fx->st, &none, &err);
    assert_refused(rc, &err, CH_FAULT_NOT_FOUND, "not_found", NULL);
    assert_int_equal(rc, CH_ENOTFOUND);
    none = (ch_auth_user_change_t){.name = "nobody", .disabled = -1};
    assert_refused(ch_auth_user_change_check(fx->st, &none, &err), &err, CH_FAULT_NOT_FOUND,
                   "not_found", NULL);
    struct {
        ch_auth_user_change_t req;
        const char *rule;
        const char *field;
    } cases[] = {
        {{.id = id, .disabled = -1, .role = ""}, "role", "role"},
        {{.id = id, .disabled = -1, .set_agency = 1, .agency_id = -1}, "agency_id", "agency_id"},
        {{.id = id, .disabled = -1, .set_agency = 1, .agency_id = 777},
         "agency_exists",
         "agency_id"},
        /* A provider keeps needing an agency; so does a user made agency without one. */
        {{.id = id, .disabled = -1, .set_agency = 1, .agency_id = 0},
         "agency_required",
         "agency_id"},
        {{.id = id, .disabled = -1, .password = "short", .password_len = 5},
         "password",
         "password"},
    };
    for (size_t i = 0; i < CH_ARRAY_SIZE(cases); i++) {
        assert_refused(ch_auth_user_change_check(fx->st, &cases[i].req, &err), &err,
                       CH_FAULT_INVALID, cases[i].rule, cases[i].field);
    }
    /* An admin needs no agency: role and agency together pass. */
    ch_auth_user_change_t ok = {
        .id = id, .disabled = -1, .role = "admin", .set_agency = 1, .agency_id = 0};
    assert_int_equal(ch_auth_user_change_check(fx->st, &ok, &err), 0);
}

static void test_user_update_disables_ends_sessions_and_records_an_ending(void **state)
{
    fixture_t *fx = *state;
    ch_fault_t err;
    ch_user_t u;
    int64_t id = create_user(fx, "kim", "operator", 0);
    ch_session_t s = {.token_hash =
                          "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                      .user_id = id,
                      .csrf = "csrf",
                      .expires_at = ch_time_now_ms() + 60000};
    assert_int_equal(ch_store_session_create(fx->st, &s), 0);
    ch_auth_user_change_t req = {.name = "kim", .disabled = 1};
    assert_int_equal(ch_auth_user_update(fx->st, &req, NULL, &fx->recorder, &u, &err), 0);
    assert_int_equal(u.disabled, 1);
    ch_user_fini(&u);
    assert_string_equal(fx->rec.action, "user.update");
    assert_string_equal(fx->rec.object, "user:kim");
    assert_string_equal(fx->rec.details, "{\"disabled\":true}");
    assert_int_equal(fx->rec.ends_access, 1);
    ch_session_t gone;
    assert_int_equal(ch_store_session_find(fx->st, s.token_hash, &gone), CH_ENOTFOUND);
    /* Enabling with unlock lifts the lock-out and is not an ending record. */
    assert_int_equal(ch_store_user_get(fx->st, id, &u), 0);
    u.failed_logins = 5;
    u.locked_until = ch_time_now_ms() + 60000;
    assert_int_equal(ch_store_user_update(fx->st, &u), 0);
    ch_user_fini(&u);
    req = (ch_auth_user_change_t){.id = id, .disabled = 0, .unlock = 1};
    assert_int_equal(ch_auth_user_update(fx->st, &req, NULL, &fx->recorder, &u, &err), 0);
    assert_int_equal(u.disabled, 0);
    assert_int_equal(u.failed_logins, 0);
    assert_int_equal(u.locked_until, 0);
    ch_user_fini(&u);
    assert_string_equal(fx->rec.details, "{\"disabled\":false,\"unlocked\":true}");
    assert_int_equal(fx->rec.ends_access, 0);
}

static void test_user_update_role_agency_and_password(void **state)
{
    fixture_t *fx = *state;
    ch_fault_t err;
    ch_user_t u;
    int64_t id = create_user(fx, "lee", "admin", 0);
    ch_auth_user_change_t req = {
        .id = id, .disabled = -1, .role = "agency", .set_agency = 1, .agency_id = fx->agency_id};
    const char *hash = "$argon2id$v=19$m=65536,t=2,p=1$b3RoZXJzYWx0b3RoZXI$"
                       "enl4d3Z1dHNycXBvbm1sa2ppaGdmZWRjYmE5ODc2NTQ";
    assert_int_equal(ch_auth_user_update(fx->st, &req, hash, &fx->recorder, &u, &err), 0);
    assert_string_equal(u.role, "agency");
    assert_int_equal(u.agency_id, fx->agency_id);
    ch_user_fini(&u);
    char want[128];
    snprintf(want, sizeof(want),
             "{\"agency_id\":%lld,\"password_changed\":true,\"role\":\"agency\"}",
             (long long)fx->agency_id);
    assert_string_equal(fx->rec.details, want);
    assert_int_equal(ch_store_user_get(fx->st, id, &u), 0);
    assert_string_equal(u.password_hash, hash);
    ch_user_fini(&u);
    /* Refused in the transaction: nothing changes, nothing recorded. */
    int count = fx->rec.count;
    req = (ch_auth_user_change_t){.id = id, .disabled = -1, .set_agency = 1, .agency_id = 0};
    assert_refused(ch_auth_user_update(fx->st, &req, NULL, &fx->recorder, &u, &err), &err,
                   CH_FAULT_INVALID, "agency_required", "agency_id");
    assert_null(u.name);
    fx->rec.fail = CH_EIO;
    req = (ch_auth_user_change_t){.id = id, .disabled = 1};
    assert_refused(ch_auth_user_update(fx->st, &req, NULL, &fx->recorder, &u, &err), &err,
                   CH_FAULT_AUDIT, "audit", NULL);
    assert_int_equal(fx->rec.count, count);
    assert_int_equal(ch_store_user_get(fx->st, id, &u), 0);
    assert_int_equal(u.disabled, 0);
    assert_int_equal(u.agency_id, fx->agency_id);
    ch_user_fini(&u);
}

/* ---- API keys ------------------------------------------------------------------------------ */

static void test_apikey_check_refuses_each_rule_with_its_field(void **state)
{
    fixture_t *fx = *state;
    ch_fault_t err;
    char label[CH_AUTH_LABEL_MAX + 2];
    memset(label, 'x', CH_AUTH_LABEL_MAX + 1);
    label[CH_AUTH_LABEL_MAX + 1] = '\0';
    struct {
        ch_auth_apikey_req_t req;
        const char *rule;
        const char *field;
    } cases[] = {
        {{.agency_id = 0}, "agency_id", "agency_id"},
        {{.agency_id = -5}, "agency_id", "agency_id"},
        {{.agency_id = 9999}, "agency_exists", "agency_id"},
        {{.agency_id = fx->agency_id, .role = "admin"}, "apikey_role", "role"},
        {{.agency_id = fx->agency_id, .role = ""}, "apikey_role", "role"},
        {{.agency_id = fx->agency_id, .label = label}, "label", "label"},
        {{.agency_id = fx->agency_id, .tls_key = "sha256:00"}, "tls_key", "tls_key"},
        {{.agency_id = fx->agency_id,
          .tls_key = "SHA256:0000000000000000000000000000000000000000000000000000000000000000"},
         "tls_key",
         "tls_key"},
        {{.agency_id = fx->agency_id,
          .tls_key = "sha256:000000000000000000000000000000000000000000000000000000000000000G"},
         "tls_key",
         "tls_key"},
    };
    for (size_t i = 0; i < CH_ARRAY_SIZE(cases); i++) {
        assert_refused(ch_auth_apikey_check(fx->st, &cases[i].req, &err), &err, CH_FAULT_INVALID,
                       cases[i].rule, cases[i].field);
    }
    label[CH_AUTH_LABEL_MAX] = '\0';
    ch_auth_apikey_req_t ok = {.agency_id = fx->agency_id, .role = "provider", .label = label};
    assert_int_equal(ch_auth_apikey_check(fx->st, &ok, &err), 0);
    /* Without a store the agency is not looked up. */
    ok.agency_id = 9999;
    assert_int_equal(ch_auth_apikey_check(NULL, &ok, &err), 0);
}

static void test_apikey_create_makes_a_key_only_its_hash_stored(void **state)
{
    fixture_t *fx = *state;
    ch_fault_t err;
    ch_auth_apikey_made_t made;
    ch_auth_apikey_req_t req = {.agency_id = fx->agency_id, .label = "CAD"};
    assert_int_equal(ch_auth_apikey_create(fx->st, &req, &fx->recorder, &made, &err), 0);
    assert_true(made.key.id > 0);
    /* An agency of kind "both" gets an agency key by default. */
    assert_string_equal(made.key.role, "agency");
    assert_string_equal(made.key.label, "CAD");
    int64_t id = 0;
    ch_slice_t secret;
    assert_int_equal(ch_auth_apikey_parse(made.text, strlen(made.text), &id, &secret), 0);
    assert_int_equal(id, made.key.id);
    assert_int_equal(strncmp(made.text, CH_AUTH_APIKEY_PREFIX, 4), 0);
    char hash[CH_AUTH_SHA256_HEX];
    ch_auth_sha256_hex(secret.ptr, secret.len, hash);
    ch_apikey_t stored;
    assert_int_equal(ch_store_apikey_get(fx->st, id, &stored), 0);
    assert_string_equal(stored.secret_hash, hash);
    assert_null(strstr(stored.secret_hash, made.text + 4));
    ch_apikey_fini(&stored);
    assert_int_equal(fx->rec.count, 1);
    assert_string_equal(fx->rec.action, "apikey.create");
    char want[96];
    snprintf(want, sizeof(want), "apikey:%lld", (long long)id);
    assert_string_equal(fx->rec.object, want);
    snprintf(want, sizeof(want), "{\"agency_id\":%lld,\"role\":\"agency\"}",
             (long long)fx->agency_id);
    assert_string_equal(fx->rec.details, want);
    /* The key authenticates; bound to no certificate, it needs none. */
    ch_auth_principal_t who;
    const char *why = NULL;
    char header[128];
    snprintf(header, sizeof(header), "Bearer %s", made.text);
    ch_slice_t authz = {header, strlen(header)};
    ch_auth_config_t cfg = {0};
    assert_int_equal(ch_auth_authenticate(fx->st, &cfg, NULL, &authz, ch_time_now_ms(), &who, &why),
                     0);
    assert_int_equal(who.kind, CH_AUTH_APIKEY);
    assert_int_equal(who.agency_id, fx->agency_id);
    assert_int_equal(ch_auth_tls_binding_check(&who, NULL, &why), 0);
    ch_apikey_fini(&made.key);
}

/* A key bound to a client certificate's key: stored and recorded with it, and then good only
 * with that very certificate. */
static void test_apikey_bound_to_a_certificate_needs_it(void **state)
{
    fixture_t *fx = *state;
    ch_fault_t err;
    ch_auth_apikey_made_t made;
    const char *mine = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const char *other = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    ch_auth_apikey_req_t req = {.agency_id = fx->agency_id, .tls_key = mine};
    assert_int_equal(ch_auth_apikey_create(fx->st, &req, &fx->recorder, &made, &err), 0);
    assert_non_null(strstr(fx->rec.details, mine));
    ch_apikey_t stored;
    assert_int_equal(ch_store_apikey_get(fx->st, made.key.id, &stored), 0);
    assert_string_equal(stored.tls_key, mine);
    ch_apikey_fini(&stored);
    char header[128];
    snprintf(header, sizeof(header), "Bearer %s", made.text);
    ch_slice_t authz = {header, strlen(header)};
    ch_auth_config_t cfg = {0};
    ch_auth_principal_t who;
    const char *why = NULL;
    assert_int_equal(ch_auth_authenticate(fx->st, &cfg, NULL, &authz, ch_time_now_ms(), &who, &why),
                     0);
    assert_string_equal(who.tls_key, mine);
    assert_int_equal(ch_auth_tls_binding_check(&who, mine, &why), 0);
    assert_int_equal(ch_auth_tls_binding_check(&who, NULL, &why), CH_EPERM);
    assert_string_equal(why, "this API key needs its agency's client certificate");
    assert_int_equal(ch_auth_tls_binding_check(&who, other, &why), CH_EPERM);
    assert_string_equal(why, "the client certificate is not the one this API key is bound to");
    ch_apikey_fini(&made.key);
}

static void test_apikey_create_role_follows_the_agency_unless_given(void **state)
{
    fixture_t *fx = *state;
    ch_fault_t err;
    ch_auth_apikey_made_t made;
    ch_auth_apikey_req_t req = {.agency_id = fx->provider_id};
    assert_int_equal(ch_auth_apikey_create(fx->st, &req, &fx->recorder, &made, &err), 0);
    assert_string_equal(made.key.role, "provider");
    assert_null(made.key.label);
    ch_apikey_fini(&made.key);
    req.role = "agency";
    assert_int_equal(ch_auth_apikey_create(fx->st, &req, &fx->recorder, &made, &err), 0);
    assert_string_equal(made.key.role, "agency");
    ch_apikey_fini(&made.key);
    req.agency_id = 31337;
    assert_refused(ch_auth_apikey_create(fx->st, &req, &fx->recorder, &made, &err), &err,
                   CH_FAULT_INVALID, "agency_exists", "agency_id");
    assert_int_equal(made.key.id, 0);
    assert_int_equal(fx->rec.count, 2);
}

static void test_apikey_create_without_its_record_changes_nothing(void **state)
{
    fixture_t *fx = *state;
    ch_fault_t err;
    ch_auth_apikey_made_t made;
    fx->rec.fail = CH_EIO;
    ch_auth_apikey_req_t req = {.agency_id = fx->agency_id};
    assert_refused(ch_auth_apikey_create(fx->st, &req, &fx->recorder, &made, &err), &err,
                   CH_FAULT_AUDIT, "audit", NULL);
    assert_int_equal(made.text[0], '\0');
    ch_store_filter_t f = {.limit = 10};
    ch_apikey_list_t l;
    assert_int_equal(ch_store_apikey_list(fx->st, &f, &l), 0);
    assert_int_equal(l.count, 0);
    ch_apikey_list_free(&l);
}

static void test_apikey_revoke_once_with_an_ending_record(void **state)
{
    fixture_t *fx = *state;
    ch_fault_t err;
    ch_auth_apikey_made_t made;
    ch_auth_apikey_req_t req = {.agency_id = fx->agency_id};
    assert_int_equal(ch_auth_apikey_create(fx->st, &req, &fx->recorder, &made, &err), 0);
    int64_t id = made.key.id;
    ch_apikey_fini(&made.key);
    /* A failing record leaves the key live. */
    fx->rec.fail = CH_EIO;
    assert_refused(ch_auth_apikey_revoke(fx->st, id, &fx->recorder, &err), &err, CH_FAULT_AUDIT,
                   "audit", NULL);
    ch_apikey_t k;
    assert_int_equal(ch_store_apikey_get(fx->st, id, &k), 0);
    assert_int_equal(k.revoked_at, 0);
    ch_apikey_fini(&k);
    fx->rec.fail = 0;
    fx->rec.count = 0;
    assert_int_equal(ch_auth_apikey_revoke(fx->st, id, &fx->recorder, &err), 0);
    assert_int_equal(fx->rec.count, 1);
    assert_string_equal(fx->rec.action, "apikey.revoke");
    assert_int_equal(fx->rec.ends_access, 1);
    char want[64];
    snprintf(want, sizeof(want), "{\"agency_id\":%lld}", (long long)fx->agency_id);
    assert_string_equal(fx->rec.details, want);
    assert_int_equal(ch_store_apikey_get(fx->st, id, &k), 0);
    assert_true(k.revoked_at > 0);
    int64_t when = k.revoked_at;
    ch_apikey_fini(&k);
    /* Again: nothing changes, nothing is recorded, and it is not an error. */
    assert_int_equal(ch_auth_apikey_revoke(fx->st, id, &fx->recorder, &err), 0);
    assert_int_equal(fx->rec.count, 1);
    assert_int_equal(ch_store_apikey_get(fx->st, id, &k), 0);
    assert_int_equal(k.revoked_at, when);
    ch_apikey_fini(&k);
    /* An unknown key. */
    int rc = ch_auth_apikey_revoke(fx->st, id + 100, &fx->recorder, &err);
    assert_refused(rc, &err, CH_FAULT_NOT_FOUND, "not_found", NULL);
    assert_int_equal(rc, CH_ENOTFOUND);
}

/* What ch_auth_outbox_drain handed to the log. */
typedef struct drained {
    int count;
    int fail_at; /* the append that fails (-1: none) */
    char action[4][32];
    char details[4][128];
    int ends[4];
} drained_t;

static int drain_append(void *ud, const char *actor, const char *action, const char *object,
                        json_t *details, int ends_access)
{
    drained_t *d = ud;
    (void)object;
    if (d->count == d->fail_at || d->count >= 4) {
        return CH_EIO;
    }
    assert_string_equal(actor, "user:root");
    snprintf(d->action[d->count], sizeof(d->action[0]), "%s", action);
    char *text = details != NULL ? json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    snprintf(d->details[d->count], sizeof(d->details[0]), "%s", text != NULL ? text : "");
    free(text);
    d->ends[d->count++] = ends_access;
    return 0;
}

/* The command line's records: queued in the store's outbox marked "via": "cli", appended by
 * the drain in order with their ending flag and deleted once appended; a failed append keeps
 * its record (and those after it) for the next drain. */
static void test_outbox_records_and_drain(void **state)
{
    fixture_t *fx = *state;
    ch_auth_outbox_t ob = {.st = fx->st, .actor = "user:root"};
    ch_auth_recorder_t rec = ch_auth_outbox_recorder(&ob);
    ch_fault_t err;
    ch_user_t u;
    ch_auth_user_req_t req = {.name = "kim", .role = "operator"};
    assert_int_equal(ch_auth_user_create(fx->st, &req, FAKE_HASH, &rec, &u, &err), 0);
    ch_user_fini(&u);
    ch_auth_user_change_t change = {.name = "kim", .disabled = 1};
    assert_int_equal(ch_auth_user_update(fx->st, &change, NULL, &rec, &u, &err), 0);
    ch_user_fini(&u);
    drained_t d = {.fail_at = 1};
    assert_int_equal(ch_auth_outbox_drain(fx->st, drain_append, &d), CH_EIO);
    assert_int_equal(d.count, 1);
    assert_string_equal(d.action[0], "user.create");
    assert_non_null(strstr(d.details[0], "\"via\":\"cli\""));
    assert_int_equal(d.ends[0], 0);
    d.fail_at = -1;
    assert_int_equal(ch_auth_outbox_drain(fx->st, drain_append, &d), 0);
    assert_int_equal(d.count, 2);
    assert_string_equal(d.action[1], "user.update");
    assert_string_equal(d.details[1], "{\"disabled\":true,\"via\":\"cli\"}");
    assert_int_equal(d.ends[1], 1);
    assert_int_equal(ch_auth_outbox_drain(fx->st, drain_append, &d), 0);
    assert_int_equal(d.count, 2); /* nothing left */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_user_check_refuses_each_rule_with_its_field),
        T(test_user_check_without_store_leaves_the_agency_to_later),
        T(test_user_create_writes_the_user_and_its_record),
        T(test_user_create_refuses_a_name_taken),
        T(test_user_create_checks_the_rules_again),
        T(test_user_create_without_its_record_changes_nothing),
        T(test_user_change_check_refuses_each_rule_with_its_field),
        T(test_user_update_disables_ends_sessions_and_records_an_ending),
        T(test_user_update_role_agency_and_password),
        T(test_apikey_check_refuses_each_rule_with_its_field),
        T(test_apikey_create_makes_a_key_only_its_hash_stored),
        T(test_apikey_bound_to_a_certificate_needs_it),
        T(test_apikey_create_role_follows_the_agency_unless_given),
        T(test_apikey_create_without_its_record_changes_nothing),
        T(test_apikey_revoke_once_with_an_ending_record),
        T(test_outbox_records_and_drain),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Unit tests of auth's login use case (login.c): a wrong password is refused and recorded, the
 * try that reaches the limit locks the name from its address (and says so on the record), a
 * right password makes a session, and a login the audit record refuses makes none.
 *
 * The tests open a fresh SQLite database in their own temporary directory (setup) and remove
 * it afterwards (teardown). The password's hash is not computed here: the API verifies it on
 * the hash pool and hands the answer to ch_auth_login_finish.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "support/fixture.h"

#define FAKE_HASH                                                                                  \
    "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$"                                       \
    "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY"

#define PEER "192.0.2.7:40000"
#define NOW  INT64_C(1800000000000)

typedef struct recorded {
    int count;
    int fail;
    char last[128]; /* "actor action outcome" */
    int lockouts;
} recorded_t;

typedef struct fixture {
    ch_test_store_t ts;
    ch_store_t *st;
    ch_auth_config_t cfg;
    recorded_t rec;
    ch_auth_login_env_t env;
    int64_t user_id;
} fixture_t;

static int record(void *data, const char *actor, const char *action, const char *object,
                  const char *outcome, json_t *details)
{
    (void)object;
    recorded_t *r = data;
    json_decref(details);
    if (r->fail != 0 && strcmp(outcome, "ok") == 0) {
        return r->fail;
    }
    r->count++;
    r->lockouts += strcmp(action, "auth.lockout") == 0;
    snprintf(r->last, sizeof(r->last), "%s %s %s", actor, action, outcome);
    return 0;
}

static int setup(void **state)
{
    fixture_t *fx = ch_calloc(1, sizeof(*fx));
    if (ch_test_store_open(&fx->ts, "ch_login_test", &fx->st) != 0) {
        ch_free(fx);
        return -1;
    }
    ch_user_t u = {0};
    u.name = "kim";
    u.role = "operator";
    u.password_hash = FAKE_HASH;
    if (ch_store_user_create(fx->st, &u) != 0) {
        return -1;
    }
    fx->user_id = u.id;
    fx->env.st = fx->st;
    fx->env.cfg = &fx->cfg;
    fx->env.throttle = ch_auth_throttle_new(100, 0);
    fx->env.lockout = ch_auth_lockout_new(3, 60000);
    fx->env.rec.record = record;
    fx->env.rec.data = &fx->rec;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    ch_auth_throttle_free(fx->env.throttle);
    ch_auth_lockout_free(fx->env.lockout);
    int rc = ch_test_store_close(&fx->ts, fx->st);
    ch_free(fx);
    return rc;
}

/* One whole try: start, count, finish with password_ok. Returns finish's code (or start's). */
static int try_login(fixture_t *fx, const char *name, int password_ok, int64_t now,
                     ch_auth_session_made_t *made, ch_fault_t *f)
{
    ch_auth_login_t l;
    int64_t wait = 0;
    int rc = ch_auth_login_start(&fx->env, &l, name, PEER, now, &wait, f);
    if (rc == 0) {
        ch_auth_login_count(&fx->env, &l, now);
        rc = ch_auth_login_finish(&fx->env, &l, password_ok, now, made, f);
    }
    ch_auth_login_fini(&l);
    return rc;
}

static void test_a_right_password_makes_a_session(void **state)
{
    fixture_t *fx = *state;
    ch_auth_session_made_t made;
    ch_fault_t f;
    assert_int_equal(try_login(fx, "kim", 1, NOW, &made, &f), 0);
    assert_int_equal(made.user.id, fx->user_id);
    assert_int_equal((int)strlen(made.token), CH_AUTH_TOKEN_LEN);
    assert_int_equal(made.expires_at, NOW + 30LL * 60 * 1000);
    assert_string_equal(fx->rec.last, "user:kim auth.login ok");
    char hash[CH_AUTH_SHA256_HEX];
    ch_auth_sha256_hex(made.token, strlen(made.token), hash);
    ch_session_t s;
    assert_int_equal(ch_store_session_find(fx->st, hash, &s), 0);
    assert_int_equal(s.user_id, fx->user_id);
    ch_session_fini(&s);
    ch_auth_session_made_fini(&made);
}

static void test_wrong_passwords_are_refused_then_lock_the_name(void **state)
{
    fixture_t *fx = *state;
    ch_auth_session_made_t made;
    ch_fault_t f;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(try_login(fx, "kim", 0, NOW + i, &made, &f), CH_EPERM);
        assert_int_equal(f.kind, CH_FAULT_DENIED);
        assert_string_equal(ch_fault_code(&f), "bad_credentials");
    }
    assert_int_equal(fx->rec.lockouts, 1);
    /* Locked now, even with the right password: refused before any hash. */
    ch_auth_login_t l;
    int64_t wait = 0;
    assert_int_equal(ch_auth_login_start(&fx->env, &l, "kim", PEER, NOW + 10, &wait, &f), CH_EPERM);
    ch_auth_login_fini(&l);
    assert_true(wait > 0);
    assert_string_equal(ch_fault_code(&f), "locked");
    assert_string_equal(fx->rec.last, "anonymous auth.login denied");
    /* An unknown name is refused the same way as a wrong password. */
    assert_int_equal(try_login(fx, "nobody", 1, NOW, &made, &f), CH_EPERM);
    assert_string_equal(ch_fault_code(&f), "bad_credentials");
}

static void test_a_login_the_record_refuses_makes_no_session(void **state)
{
    fixture_t *fx = *state;
    ch_auth_session_made_t made;
    ch_fault_t f;
    fx->rec.fail = CH_EIO;
    assert_true(try_login(fx, "kim", 1, NOW, &made, &f) < 0);
    assert_int_equal(f.kind, CH_FAULT_AUDIT);
    ch_user_t u;
    assert_int_equal(ch_store_user_get(fx->st, fx->user_id, &u), 0);
    assert_int_equal(u.last_login, 0);
    ch_user_fini(&u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_right_password_makes_a_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_passwords_are_refused_then_lock_the_name, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_login_the_record_refuses_makes_no_session, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

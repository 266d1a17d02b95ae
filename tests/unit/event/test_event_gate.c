/*
 * Unit tests of the relay's access gate (ch_event_gate_*): the live set the engine's notices
 * keep and the hold each notice is worth, the check of real signed view tokens (the right
 * camera, another camera, expired, forged, another node's key), a token cached while its grant
 * was live and refused once the grant ends, thousands of grants started and ended against a
 * plain model, and media threads authorizing while notices arrive.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "event/event.h"

#define NOW 1767225600LL /* 2026-01-01T00:00:00Z */

typedef struct keys {
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
} keys_t;

static void make_keys(keys_t *k)
{
    assert_int_equal(sodium_init() >= 0, 1);
    crypto_sign_keypair(k->pk, k->sk);
}

static int notice(ch_event_gate_t *g, ch_event_notice_kind_t kind, int64_t grant_id,
                  int64_t camera_id)
{
    ch_event_notice_t n = {
        .kind = kind,
        .grant_id = grant_id,
        .event_id = 1,
        .camera_id = camera_id,
        .agency_id = 3,
        .status = kind == CH_EVENT_GRANT_STARTED ? "active" : "closed",
    };
    return ch_event_gate_notice(g, &n);
}

static void make_token(const keys_t *k, int64_t grant_id, int64_t camera_id, int64_t expires_s,
                       char out[CH_EVENT_TOKEN_MAX])
{
    ch_event_claims_t c = {grant_id, 11, camera_id, 3, expires_s};
    ch_event_token_make(k->sk, &c, out);
}

static int authorize(ch_event_gate_t *g, const char *token, int64_t camera_id, int64_t now_s,
                     ch_event_claims_t *cl)
{
    return ch_event_gate_authorize(g, token, strlen(token), camera_id, now_s, cl);
}

/* ---- notices ------------------------------------------------------------------------------- */

static void test_notices_hold_a_camera_once_per_live_grant(void **state)
{
    (void)state;
    keys_t k;
    make_keys(&k);
    ch_event_gate_t *g = ch_event_gate_new(k.pk);
    assert_int_equal(ch_event_gate_live(g), 0);

    assert_int_equal(notice(g, CH_EVENT_GRANT_STARTED, 1, 7), 1);
    assert_int_equal(notice(g, CH_EVENT_GRANT_STARTED, 2, 7), 1);
    assert_int_equal(notice(g, CH_EVENT_GRANT_STARTED, 1, 7), 0); /* a repeated start */
    assert_int_equal(ch_event_gate_live(g), 2);
    assert_true(ch_event_gate_is_live(g, 1));
    assert_true(ch_event_gate_is_live(g, 2));
    assert_false(ch_event_gate_is_live(g, 3));

    assert_int_equal(notice(g, CH_EVENT_GRANT_ENDED, 99, 7), 0); /* never known */
    assert_int_equal(notice(g, CH_EVENT_GRANT_ENDED, 1, 7), -1);
    assert_int_equal(notice(g, CH_EVENT_GRANT_ENDED, 1, 7), 0); /* ended twice */
    assert_false(ch_event_gate_is_live(g, 1));
    assert_true(ch_event_gate_is_live(g, 2));
    assert_int_equal(ch_event_gate_live(g), 1);

    /* Not a grant id the store hands out. */
    assert_int_equal(notice(g, CH_EVENT_GRANT_STARTED, 0, 7), 0);
    assert_int_equal(notice(g, CH_EVENT_GRANT_STARTED, -4, 7), 0);
    assert_false(ch_event_gate_is_live(g, 0));
    assert_int_equal(ch_event_gate_live(g), 1);

    /* A grant that ended may start again (a restart reloads the live set). */
    assert_int_equal(notice(g, CH_EVENT_GRANT_STARTED, 1, 7), 1);
    assert_int_equal(ch_event_gate_live(g), 2);
    ch_event_gate_free(g);
    ch_event_gate_free(NULL);
}

/* ---- tokens -------------------------------------------------------------------------------- */

static void test_a_live_grants_token_admits_its_camera_only(void **state)
{
    (void)state;
    keys_t k;
    make_keys(&k);
    ch_event_gate_t *g = ch_event_gate_new(k.pk);
    char t[CH_EVENT_TOKEN_MAX];
    make_token(&k, 5, 7, NOW + 60, t);
    ch_event_claims_t cl;

    /* Signed, in time, but its grant was never live here. */
    assert_int_equal(authorize(g, t, 7, NOW, &cl), CH_ENOENT);
    assert_int_equal(notice(g, CH_EVENT_GRANT_STARTED, 5, 7), 1);

    memset(&cl, 0, sizeof(cl));
    assert_int_equal(authorize(g, t, 7, NOW, &cl), 0);
    assert_int_equal(cl.grant_id, 5);
    assert_int_equal(cl.event_id, 11);
    assert_int_equal(cl.camera_id, 7);
    assert_int_equal(cl.agency_id, 3);
    assert_int_equal(cl.expires_s, NOW + 60);
    /* Again: from this thread's cache, the same answer. */
    assert_int_equal(authorize(g, t, 7, NOW + 59, &cl), 0);

    assert_int_equal(authorize(g, t, 8, NOW, &cl), CH_EINVAL); /* another camera */
    assert_int_equal(authorize(g, t, 7, NOW + 60, &cl), CH_EEXPIRED);
    assert_int_equal(authorize(g, t, 7, NOW + 3600, &cl), CH_EEXPIRED);
    /* Expiry comes before the camera. */
    assert_int_equal(authorize(g, t, 8, NOW + 60, &cl), CH_EEXPIRED);
    ch_event_gate_free(g);
}

static void test_an_expired_token_is_refused_even_unseen(void **state)
{
    (void)state;
    keys_t k;
    make_keys(&k);
    ch_event_gate_t *g = ch_event_gate_new(k.pk);
    assert_int_equal(notice(g, CH_EVENT_GRANT_STARTED, 6, 7), 1);
    char t[CH_EVENT_TOKEN_MAX];
    make_token(&k, 6, 7, NOW - 1, t);
    ch_event_claims_t cl;
    assert_int_equal(authorize(g, t, 7, NOW, &cl), CH_EEXPIRED);
    assert_int_equal(authorize(g, t, 7, NOW, &cl), CH_EEXPIRED); /* cached, still expired */
    ch_event_gate_free(g);
}

static void test_forged_tokens_are_refused(void **state)
{
    (void)state;
    keys_t k, other;
    make_keys(&k);
    make_keys(&other);
    ch_event_gate_t *g = ch_event_gate_new(k.pk);
    assert_int_equal(notice(g, CH_EVENT_GRANT_STARTED, 5, 7), 1);
    ch_event_claims_t cl;

    /* Signed by another node's key. */
    char t[CH_EVENT_TOKEN_MAX];
    make_token(&other, 5, 7, NOW + 60, t);
    assert_int_equal(authorize(g, t, 7, NOW, &cl), CH_EPERM);

    /* A good token with one character of its signature changed. */
    make_token(&k, 5, 7, NOW + 60, t);
    char bad[CH_EVENT_TOKEN_MAX];
    memcpy(bad, t, sizeof(bad));
    size_t n = strlen(bad);
    bad[n - 3] = bad[n - 3] == 'A' ? 'B' : 'A';
    assert_int_equal(authorize(g, bad, 7, NOW, &cl), CH_EPERM);

    /* Its payload changed (another grant) under the original signature. */
    char other_grant[CH_EVENT_TOKEN_MAX];
    make_token(&k, 6, 7, NOW + 60, other_grant);
    const char *sig = strrchr(t, '.');
    const char *payload_end = strrchr(other_grant, '.');
    char swapped[CH_EVENT_TOKEN_MAX];
    int w = snprintf(swapped, sizeof(swapped), "%.*s%s", (int)(payload_end - other_grant),
                     other_grant, sig);
    assert_true(w > 0 && (size_t)w < sizeof(swapped));
    assert_int_equal(authorize(g, swapped, 7, NOW, &cl), CH_EPERM);

    /* Not tokens at all. */
    assert_int_equal(authorize(g, "", 7, NOW, &cl), CH_EPERM);
    assert_int_equal(authorize(g, "hello", 7, NOW, &cl), CH_EPERM);
    assert_int_equal(authorize(g, "v1..", 7, NOW, &cl), CH_EPERM);
    char huge[600];
    memset(huge, 'a', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    assert_int_equal(authorize(g, huge, 7, NOW, &cl), CH_EPERM);

    /* A prefix of a good (and cached) token is not it. */
    assert_int_equal(authorize(g, t, 7, NOW, &cl), 0);
    assert_int_equal(ch_event_gate_authorize(g, t, strlen(t) - 1, 7, NOW, &cl), CH_EPERM);
    ch_event_gate_free(g);
}

static void test_a_cached_token_is_refused_once_its_grant_ends(void **state)
{
    (void)state;
    keys_t k;
    make_keys(&k);
    ch_event_gate_t *g = ch_event_gate_new(k.pk);
    char t[CH_EVENT_TOKEN_MAX];
    make_token(&k, 40, 9, NOW + 600, t);
    ch_event_claims_t cl;
    assert_int_equal(notice(g, CH_EVENT_GRANT_STARTED, 40, 9), 1);
    assert_int_equal(authorize(g, t, 9, NOW, &cl), 0); /* verified and cached */
    assert_int_equal(notice(g, CH_EVENT_GRANT_ENDED, 40, 9), -1);
    assert_int_equal(authorize(g, t, 9, NOW + 1, &cl), CH_ENOENT);
    ch_event_gate_free(g);
}

static void test_a_token_cached_by_one_gate_is_not_taken_by_another(void **state)
{
    (void)state;
    keys_t k, other;
    make_keys(&k);
    make_keys(&other);
    ch_event_gate_t *g = ch_event_gate_new(k.pk);
    ch_event_gate_t *h = ch_event_gate_new(other.pk);
    char t[CH_EVENT_TOKEN_MAX];
    make_token(&k, 5, 7, NOW + 60, t);
    ch_event_claims_t cl;
    assert_int_equal(notice(g, CH_EVENT_GRANT_STARTED, 5, 7), 1);
    assert_int_equal(notice(h, CH_EVENT_GRANT_STARTED, 5, 7), 1);
    assert_int_equal(authorize(g, t, 7, NOW, &cl), 0);
    assert_int_equal(authorize(h, t, 7, NOW, &cl), CH_EPERM);
    ch_event_gate_free(h);
    ch_event_gate_free(g);
}

/* ---- many grants --------------------------------------------------------------------------- */

#define MODEL_IDS 20000

static void test_thousands_of_grants_follow_a_plain_model(void **state)
{
    (void)state;
    keys_t k;
    make_keys(&k);
    ch_event_gate_t *g = ch_event_gate_new(k.pk);
    unsigned char *live = calloc(MODEL_IDS + 1, 1);
    assert_non_null(live);
    size_t nlive = 0, most = 0;
    uint64_t x = 0x2545f4914f6cdd1dULL;
    for (int round = 0; round < 200000; round++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* Ids clustered by a stride so that many share probe runs, and a range of them. */
        int64_t id = (int64_t)(x % MODEL_IDS) + 1;
        if (round % 3 == 0) {
            id = (int64_t)((x >> 20) % (MODEL_IDS / 64)) * 64 + 1;
        }
        /* Starts outnumber ends in the first half, ends the second: the set grows to
         * thousands, then drains. */
        int start = (x >> 40) % 100 < (round < 100000 ? 70u : 30u);
        int want = start ? (live[id] ? 0 : 1) : (live[id] ? -1 : 0);
        int got = notice(g, start ? CH_EVENT_GRANT_STARTED : CH_EVENT_GRANT_ENDED, id, id % 97);
        assert_int_equal(got, want);
        if (want == 1) {
            live[id] = 1;
            nlive++;
            most = nlive > most ? nlive : most;
        } else if (want == -1) {
            live[id] = 0;
            nlive--;
        }
        if (round % 20000 == 19999) {
            assert_int_equal(ch_event_gate_live(g), nlive);
            for (int64_t i = 1; i <= MODEL_IDS; i++) {
                assert_int_equal(ch_event_gate_is_live(g, i), live[i]);
            }
            assert_true(nlive > 0);
        }
    }
    assert_true(most > 5000);
    /* End them all: the set is empty, every id absent. */
    for (int64_t i = 1; i <= MODEL_IDS; i++) {
        assert_int_equal(notice(g, CH_EVENT_GRANT_ENDED, i, 1), live[i] ? -1 : 0);
    }
    assert_int_equal(ch_event_gate_live(g), 0);
    for (int64_t i = 1; i <= MODEL_IDS; i++) {
        assert_false(ch_event_gate_is_live(g, i));
    }
    free(live);
    ch_event_gate_free(g);
}

/* ---- threads ------------------------------------------------------------------------------- */

#define STABLE  16 /* grants 1..16: live throughout */
#define TOGGLED 16 /* grants 101..116: started and ended while viewers authorize */
#define VIEWERS 4
#define TOGGLES 4000

typedef struct shared {
    ch_event_gate_t *g;
    char tokens[STABLE + TOGGLED][CH_EVENT_TOKEN_MAX];
    atomic_int stop;
    atomic_long admitted, refused;
    atomic_int wrong; /* an answer no state of the set allows */
} shared_t;

static int64_t grant_of(int i)
{
    return i < STABLE ? i + 1 : 101 + (i - STABLE);
}

static void *viewer_thread(void *ud)
{
    shared_t *s = ud;
    unsigned r = 1;
    while (!atomic_load(&s->stop)) {
        r = r * 1103515245u + 12345u;
        int i = (int)((r >> 8) % (STABLE + TOGGLED));
        ch_event_claims_t cl;
        int rc = ch_event_gate_authorize(s->g, s->tokens[i], strlen(s->tokens[i]),
                                         1000 + grant_of(i), NOW, &cl);
        if (rc == 0 && cl.grant_id == grant_of(i)) {
            atomic_fetch_add(&s->admitted, 1);
        } else if (rc == CH_ENOENT && i >= STABLE) {
            atomic_fetch_add(&s->refused, 1);
        } else {
            atomic_fetch_add(&s->wrong, 1);
        }
        /* A token for another camera is refused whatever the set holds. */
        if (ch_event_gate_authorize(s->g, s->tokens[i], strlen(s->tokens[i]), 1, NOW, &cl) !=
            CH_EINVAL) {
            atomic_fetch_add(&s->wrong, 1);
        }
    }
    return NULL;
}

static void test_viewers_authorize_on_many_threads_while_notices_arrive(void **state)
{
    (void)state;
    keys_t k;
    make_keys(&k);
    shared_t *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->g = ch_event_gate_new(k.pk);
    for (int i = 0; i < STABLE + TOGGLED; i++) {
        make_token(&k, grant_of(i), 1000 + grant_of(i), NOW + 3600, s->tokens[i]);
    }
    for (int i = 0; i < STABLE; i++) {
        assert_int_equal(notice(s->g, CH_EVENT_GRANT_STARTED, grant_of(i), 1000 + grant_of(i)), 1);
    }
    pthread_t th[VIEWERS];
    for (int i = 0; i < VIEWERS; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, viewer_thread, s), 0);
    }
    /* The control loop: toggled grants start and end, and unrelated ones come and go (the
     * set grows and its clusters shift under the viewers). */
    for (int round = 0; round < TOGGLES; round++) {
        int64_t id = grant_of(STABLE + round % TOGGLED);
        int64_t extra = 100000 + round;
        assert_int_equal(notice(s->g, CH_EVENT_GRANT_STARTED, id, 1000 + id), 1);
        assert_int_equal(notice(s->g, CH_EVENT_GRANT_STARTED, extra, 5), 1);
        if (round % 2 == 0) {
            assert_int_equal(notice(s->g, CH_EVENT_GRANT_ENDED, extra, 5), -1);
        }
        assert_int_equal(notice(s->g, CH_EVENT_GRANT_ENDED, id, 1000 + id), -1);
    }
    /* On a loaded machine the viewers may not have run yet: let them admit some first, so that
     * the count below says something about the set and not about the scheduler. */
    while (atomic_load(&s->admitted) < 100) {
        sched_yield();
    }
    atomic_store(&s->stop, 1);
    for (int i = 0; i < VIEWERS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
    }
    assert_int_equal(atomic_load(&s->wrong), 0);
    assert_true(atomic_load(&s->admitted) > 0);
    assert_int_equal(ch_event_gate_live(s->g), STABLE + TOGGLES / 2);
    /* Every toggled grant ended last: refused now, on any thread. */
    for (int i = STABLE; i < STABLE + TOGGLED; i++) {
        ch_event_claims_t cl;
        assert_int_equal(ch_event_gate_authorize(s->g, s->tokens[i], strlen(s->tokens[i]),
                                                 1000 + grant_of(i), NOW, &cl),
                         CH_ENOENT);
    }
    ch_event_gate_free(s->g);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_notices_hold_a_camera_once_per_live_grant),
        cmocka_unit_test(test_a_live_grants_token_admits_its_camera_only),
        cmocka_unit_test(test_an_expired_token_is_refused_even_unseen),
        cmocka_unit_test(test_forged_tokens_are_refused),
        cmocka_unit_test(test_a_cached_token_is_refused_once_its_grant_ends),
        cmocka_unit_test(test_a_token_cached_by_one_gate_is_not_taken_by_another),
        cmocka_unit_test(test_thousands_of_grants_follow_a_plain_model),
        cmocka_unit_test(test_viewers_authorize_on_many_threads_while_notices_arrive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

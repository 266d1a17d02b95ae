/*
 * Unit tests of the store's change feed (ch_store_watch): a commit tells its changes in order
 * on the committing thread, a write outside a transaction is told at once, a rollback (and a
 * savepoint's) tells nothing of what it undid, masks select tables, unwatch stops the calls
 * (also from inside a call), a callback may write, and a site upsert or a purge is one
 * "reread" change (id 0). Another handle's commits (a transaction, a write outside one) are
 * told at the watching handle's next poll, in order, a big one as a reread; a handle with
 * watchers publishes nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "support/fixture.h"

typedef struct fixture {
    ch_test_store_t ts;
    ch_store_t *st;
} fixture_t;

static int setup(void **state)
{
    fixture_t *fx = ch_calloc(1, sizeof(*fx));
    if (ch_test_store_open(&fx->ts, "ch_store_watch", &fx->st) != 0) {
        return -1;
    }
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

/* What a watcher was told. */
typedef struct seen {
    ch_store_change_t c[64];
    int n;
    ch_store_t *st;
    ch_store_watch_t *self; /* unwatched by the call when stop_after reaches n */
    int stop_after;
    int write_once; /* the first call creates an agency (a write inside a call) */
} seen_t;

static void record(void *ud, const ch_store_change_t *c)
{
    seen_t *s = ud;
    assert_true(s->n < (int)CH_ARRAY_SIZE(s->c));
    s->c[s->n++] = *c;
    if (s->stop_after > 0 && s->n == s->stop_after) {
        ch_store_unwatch(s->st, s->self);
    }
    if (s->write_once) {
        s->write_once = 0;
        ch_agency_t a = {
            .name = "written by a watcher", .kind = "user", .level = "city", .type = "police-112"};
        assert_int_equal(ch_store_agency_create(s->st, &a), 0);
    }
}

static int64_t make_agency(ch_store_t *st, const char *name)
{
    ch_agency_t a = {
        .name = (char *)name, .kind = "provider", .level = "district", .type = "district-center"};
    assert_int_equal(ch_store_agency_create(st, &a), 0);
    return a.id;
}

static void make_camera(ch_store_t *st, int64_t agency, const char *name, ch_camera_t *c)
{
    ch_camera_init(c);
    c->agency_id = agency;
    c->name = (char *)name;
    c->kind = "fixed";
    c->status = "active";
}

static void assert_change(const ch_store_change_t *c, unsigned table, int64_t id, ch_store_op_t op)
{
    assert_int_equal(c->table, table);
    assert_int_equal(c->id, id);
    assert_int_equal(c->op, op);
}

static void test_commit_tells_every_change_in_order_after_the_commit(void **state)
{
    fixture_t *fx = *state;
    seen_t s = {0};
    ch_store_watch_t *w = NULL;
    assert_int_equal(
        ch_store_watch(fx->st, CH_STORE_T_AGENCIES | CH_STORE_T_CAMERAS, record, &s, &w), 0);
    assert_int_equal(ch_store_begin(fx->st), 0);
    int64_t agency = make_agency(fx->st, "A");
    ch_camera_t c;
    make_camera(fx->st, agency, "cam", &c);
    assert_int_equal(ch_store_camera_create(fx->st, &c), 0);
    c.status = "maintenance";
    assert_int_equal(ch_store_camera_update(fx->st, &c), 0);
    assert_int_equal(ch_store_camera_delete(fx->st, c.id), 0);
    assert_int_equal(s.n, 0); /* nothing before the commit */
    assert_int_equal(ch_store_commit(fx->st), 0);
    assert_int_equal(s.n, 4);
    assert_change(&s.c[0], CH_STORE_T_AGENCIES, agency, CH_STORE_INSERT);
    assert_change(&s.c[1], CH_STORE_T_CAMERAS, c.id, CH_STORE_INSERT);
    assert_change(&s.c[2], CH_STORE_T_CAMERAS, c.id, CH_STORE_UPDATE);
    assert_change(&s.c[3], CH_STORE_T_CAMERAS, c.id, CH_STORE_DELETE);
    assert_string_equal(ch_store_table_name(s.c[1].table), "cameras");

    /* Outside a transaction each write is its own commit. */
    s.n = 0;
    ch_agency_t a = {0};
    assert_int_equal(ch_store_agency_get(fx->st, agency, &a), 0);
    assert_int_equal(ch_store_agency_update(fx->st, &a), 0);
    ch_agency_fini(&a);
    assert_int_equal(s.n, 1);
    assert_change(&s.c[0], CH_STORE_T_AGENCIES, agency, CH_STORE_UPDATE);

    /* A failed write is no change. */
    ch_agency_t dup = {
        .name = "A", .kind = "provider", .level = "district", .type = "district-center"};
    assert_int_equal(ch_store_agency_create(fx->st, &dup), CH_EEXIST);
    assert_int_equal(s.n, 1);
    ch_store_unwatch(fx->st, w);
}

static void test_rollback_tells_nothing_and_a_savepoint_drops_only_its_own(void **state)
{
    fixture_t *fx = *state;
    seen_t s = {0};
    ch_store_watch_t *w = NULL;
    assert_int_equal(ch_store_watch(fx->st, CH_STORE_T_ALL, record, &s, &w), 0);
    assert_int_equal(ch_store_begin(fx->st), 0);
    make_agency(fx->st, "rolled back");
    assert_int_equal(ch_store_rollback(fx->st), 0);
    assert_int_equal(s.n, 0);
    /* The next transaction tells only its own changes. */
    assert_int_equal(ch_store_begin(fx->st), 0);
    int64_t kept = make_agency(fx->st, "kept");
    assert_int_equal(ch_store_savepoint(fx->st), 0);
    make_agency(fx->st, "undone by the savepoint");
    assert_int_equal(ch_store_rollback_savepoint(fx->st), 0);
    assert_int_equal(ch_store_savepoint(fx->st), 0);
    int64_t released = make_agency(fx->st, "released");
    assert_int_equal(ch_store_release(fx->st), 0);
    assert_int_equal(ch_store_commit(fx->st), 0);
    assert_int_equal(s.n, 2);
    assert_change(&s.c[0], CH_STORE_T_AGENCIES, kept, CH_STORE_INSERT);
    assert_change(&s.c[1], CH_STORE_T_AGENCIES, released, CH_STORE_INSERT);
    ch_store_unwatch(fx->st, w);
}

static void test_unwatch_stops_calls_and_masks_select_tables(void **state)
{
    fixture_t *fx = *state;
    seen_t cams = {0}, all = {0};
    ch_store_watch_t *wc = NULL, *wa = NULL;
    assert_int_equal(ch_store_watch(fx->st, CH_STORE_T_CAMERAS, record, &cams, &wc), 0);
    assert_int_equal(ch_store_watch(fx->st, CH_STORE_T_ALL, record, &all, &wa), 0);
    int64_t agency = make_agency(fx->st, "A");
    assert_int_equal(cams.n, 0); /* not its table */
    assert_int_equal(all.n, 1);
    ch_store_unwatch(fx->st, wa);
    ch_camera_t c;
    make_camera(fx->st, agency, "cam", &c);
    assert_int_equal(ch_store_camera_create(fx->st, &c), 0);
    assert_int_equal(cams.n, 1);
    assert_int_equal(all.n, 1);

    /* Unwatched from inside its own call: told the first change of a commit only. */
    ch_store_unwatch(fx->st, wc);
    seen_t once = {.st = fx->st, .stop_after = 1};
    assert_int_equal(ch_store_watch(fx->st, CH_STORE_T_AGENCIES, record, &once, &once.self), 0);
    assert_int_equal(ch_store_begin(fx->st), 0);
    make_agency(fx->st, "B");
    make_agency(fx->st, "C");
    assert_int_equal(ch_store_commit(fx->st), 0);
    assert_int_equal(once.n, 1);
    make_agency(fx->st, "D");
    assert_int_equal(once.n, 1);

    /* Bad subscriptions. */
    ch_store_watch_t *bad = NULL;
    assert_int_equal(ch_store_watch(fx->st, 0, record, &all, &bad), CH_EINVAL);
    assert_int_equal(ch_store_watch(fx->st, 1u << 30, record, &all, &bad), CH_EINVAL);
    assert_int_equal(ch_store_watch(fx->st, CH_STORE_T_ALL, NULL, &all, &bad), CH_EINVAL);
    assert_null(bad);
    ch_store_unwatch(fx->st, NULL);
}

static void test_a_watcher_may_write_and_is_told_its_write_after(void **state)
{
    fixture_t *fx = *state;
    seen_t s = {.write_once = 1};
    s.st = fx->st;
    ch_store_watch_t *w = NULL;
    assert_int_equal(ch_store_watch(fx->st, CH_STORE_T_AGENCIES, record, &s, &w), 0);
    assert_int_equal(ch_store_begin(fx->st), 0);
    int64_t a = make_agency(fx->st, "A");
    int64_t b = make_agency(fx->st, "B");
    assert_int_equal(ch_store_commit(fx->st), 0);
    assert_int_equal(s.n, 3);
    assert_change(&s.c[0], CH_STORE_T_AGENCIES, a, CH_STORE_INSERT);
    assert_change(&s.c[1], CH_STORE_T_AGENCIES, b, CH_STORE_INSERT);
    assert_int_equal(s.c[2].op, CH_STORE_INSERT);
    assert_true(s.c[2].id > b);
    /* Closing the store ends the subscription (no unwatch: ASan would find a leak). */
}

static void test_site_upserts_purges_and_health_are_one_reread_change(void **state)
{
    fixture_t *fx = *state;
    seen_t s = {0};
    ch_store_watch_t *w = NULL;
    int64_t agency = make_agency(fx->st, "A");
    assert_int_equal(ch_store_watch(fx->st, CH_STORE_T_ALL, record, &s, &w), 0);

    ch_camera_t c;
    make_camera(fx->st, agency, "site #1", &c);
    c.source_key = "k#1";
    ch_store_upsert_counts_t counts = {0};
    assert_int_equal(ch_store_begin(fx->st), 0);
    assert_int_equal(ch_store_camera_upsert_site(fx->st, &c, 3, &counts), 0);
    assert_int_equal(ch_store_commit(fx->st), 0);
    assert_int_equal(counts.created, 3);
    assert_int_equal(s.n, 1);
    assert_change(&s.c[0], CH_STORE_T_CAMERAS, 0, CH_STORE_INSERT);

    /* The same site again changes nothing and tells nothing. */
    assert_int_equal(ch_store_begin(fx->st), 0);
    assert_int_equal(ch_store_camera_upsert_site(fx->st, &c, 3, &counts), 0);
    assert_int_equal(ch_store_commit(fx->st), 0);
    assert_int_equal(s.n, 1);

    /* A single upsert tells its row. */
    ch_camera_t one;
    make_camera(fx->st, agency, "one", &one);
    one.source_key = "one";
    ch_store_upsert_t outcome;
    assert_int_equal(ch_store_camera_upsert(fx->st, &one, &outcome), 0);
    assert_int_equal(s.n, 2);
    assert_change(&s.c[1], CH_STORE_T_CAMERAS, one.id, CH_STORE_INSERT);

    assert_int_equal(ch_store_session_purge(fx->st, 1000), 0);
    assert_int_equal(s.n, 3);
    assert_change(&s.c[2], CH_STORE_T_SESSIONS, 0, CH_STORE_DELETE);

    ch_store_health_row_t row = {.camera_id = one.id,
                                 .agency_id = agency,
                                 .at_ms = 5,
                                 .old_state = "unknown",
                                 .new_state = "online"};
    assert_int_equal(ch_store_health_add(fx->st, &row, 1), 0);
    assert_int_equal(s.n, 4);
    assert_change(&s.c[3], CH_STORE_T_CAMERA_HEALTH, 0, CH_STORE_INSERT);
    assert_string_equal(ch_store_table_name(CH_STORE_T_CAMERA_HEALTH), "camera_health_transitions");
    assert_null(ch_store_table_name(CH_STORE_T_CAMERAS | CH_STORE_T_AGENCIES));
    ch_store_unwatch(fx->st, w);
}

/* A second handle of the same file: an import's thread, the store worker, another process. */
static ch_store_t *other_handle(const fixture_t *fx)
{
    ch_store_t *o = NULL;
    assert_int_equal(ch_store_open(fx->ts.path, &o, NULL), 0);
    return o;
}

static void test_another_handles_commits_are_told_at_the_next_poll(void **state)
{
    fixture_t *fx = *state;
    ch_store_t *o = other_handle(fx);
    int64_t before = make_agency(o, "before the watch"); /* published, but older than the mark */
    seen_t s = {0};
    ch_store_watch_t *w = NULL;
    assert_int_equal(
        ch_store_watch(fx->st, CH_STORE_T_AGENCIES | CH_STORE_T_CAMERAS, record, &s, &w), 0);
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    assert_int_equal(s.n, 0);

    /* A commit of the other handle, in order, at the poll; a rollback's nothing. */
    assert_int_equal(ch_store_begin(o), 0);
    int64_t agency = make_agency(o, "A");
    ch_camera_t c;
    make_camera(o, agency, "cam", &c);
    assert_int_equal(ch_store_camera_create(o, &c), 0);
    assert_int_equal(ch_store_savepoint(o), 0);
    make_agency(o, "undone");
    assert_int_equal(ch_store_rollback_savepoint(o), 0);
    assert_int_equal(ch_store_commit(o), 0);
    assert_int_equal(ch_store_begin(o), 0);
    make_agency(o, "rolled back");
    assert_int_equal(ch_store_rollback(o), 0);
    assert_int_equal(s.n, 0); /* nothing before the poll */
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    assert_int_equal(s.n, 2);
    assert_change(&s.c[0], CH_STORE_T_AGENCIES, agency, CH_STORE_INSERT);
    assert_change(&s.c[1], CH_STORE_T_CAMERAS, c.id, CH_STORE_INSERT);

    /* A write outside a transaction; a poll with nothing new tells nothing. */
    assert_int_equal(ch_store_camera_delete(o, c.id), 0);
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    assert_int_equal(s.n, 3);
    assert_change(&s.c[2], CH_STORE_T_CAMERAS, c.id, CH_STORE_DELETE);

    /* Not inside a transaction of the watching handle; the watching handle's own writes are
     * told at its commit and not again by a poll. */
    assert_int_equal(ch_store_begin(fx->st), 0);
    assert_int_equal(ch_store_feed_poll(fx->st), CH_EAGAIN);
    int64_t own = make_agency(fx->st, "own");
    assert_int_equal(ch_store_commit(fx->st), 0);
    assert_int_equal(s.n, 4);
    assert_change(&s.c[3], CH_STORE_T_AGENCIES, own, CH_STORE_INSERT);
    make_agency(o, "after");
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    assert_int_equal(s.n, 5);
    assert_int_not_equal(s.c[4].id, own);
    assert_int_not_equal(s.c[4].id, before);
    ch_store_unwatch(fx->st, w);
    ch_store_close(o);
}

static void test_a_big_transaction_of_another_handle_is_one_reread(void **state)
{
    fixture_t *fx = *state;
    ch_store_t *o = other_handle(fx);
    seen_t s = {0};
    ch_store_watch_t *w = NULL;
    assert_int_equal(ch_store_watch(fx->st, CH_STORE_T_ALL, record, &s, &w), 0);
    assert_int_equal(ch_store_begin(o), 0);
    int64_t agency = make_agency(o, "A");
    for (int i = 0; i < 1100; i++) {
        ch_camera_t c;
        char name[32];
        snprintf(name, sizeof(name), "cam %d", i);
        make_camera(o, agency, name, &c);
        assert_int_equal(ch_store_camera_create(o, &c), 0);
    }
    /* Sessions are shared (auth's cache follows another node's logout); camera health is not:
     * nobody follows it from another handle. */
    assert_int_equal(ch_store_session_purge(o, 0), 0);
    assert_int_equal(ch_store_commit(o), 0);
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    assert_int_equal(s.n, 3);
    assert_change(&s.c[0], CH_STORE_T_AGENCIES, 0, CH_STORE_UPDATE);
    assert_change(&s.c[1], CH_STORE_T_CAMERAS, 0, CH_STORE_UPDATE);
    assert_change(&s.c[2], CH_STORE_T_SESSIONS, 0, CH_STORE_UPDATE);
    ch_store_unwatch(fx->st, w);
    ch_store_close(o);
}

static void test_a_watching_handle_publishes_nothing(void **state)
{
    fixture_t *fx = *state;
    ch_store_t *o = other_handle(fx);
    seen_t s = {0}, t = {0};
    ch_store_watch_t *w = NULL, *wo = NULL;
    assert_int_equal(ch_store_watch(fx->st, CH_STORE_T_AGENCIES, record, &s, &w), 0);
    assert_int_equal(ch_store_watch(o, CH_STORE_T_AGENCIES, record, &t, &wo), 0);
    make_agency(o, "told to its own watcher only");
    assert_int_equal(t.n, 1);
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    assert_int_equal(s.n, 0);
    /* Unwatched, it publishes again. */
    ch_store_unwatch(o, wo);
    int64_t id = make_agency(o, "published");
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    assert_int_equal(s.n, 1);
    assert_change(&s.c[0], CH_STORE_T_AGENCIES, id, CH_STORE_INSERT);
    ch_store_unwatch(fx->st, w);
    ch_store_close(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_tells_every_change_in_order_after_the_commit,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_rollback_tells_nothing_and_a_savepoint_drops_only_its_own, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwatch_stops_calls_and_masks_select_tables, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_watcher_may_write_and_is_told_its_write_after, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_site_upserts_purges_and_health_are_one_reread_change,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_another_handles_commits_are_told_at_the_next_poll,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_big_transaction_of_another_handle_is_one_reread,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_watching_handle_publishes_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

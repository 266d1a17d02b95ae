/*
 * Unit tests of the store's asynchronous requests (ch_store_worker_open, ch_store_async) on a
 * real libuv loop: work runs on the worker's thread with its own handle and sees what the
 * loop's handle committed, done runs on the loop's thread in queue order, the loop keeps
 * turning (a timer fires) while a slow request runs, close completes what was queued, and a
 * bad URL fails the open.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "store/store.h"
#include "support/fixture.h"

typedef struct fixture {
    ch_test_store_t ts;
    ch_store_t *st; /* the loop's handle */
    uv_loop_t loop;
    ch_store_worker_t *w;
} fixture_t;

static int setup(void **state)
{
    fixture_t *fx = ch_calloc(1, sizeof(*fx));
    if (ch_test_store_open(&fx->ts, "ch_store_async", &fx->st) != 0) {
        return -1;
    }
    char *err = NULL;
    if (uv_loop_init(&fx->loop) != 0 ||
        ch_store_worker_open(&fx->loop, fx->ts.path, &fx->w, &err) != 0) {
        fprintf(stderr, "open: %s\n", err != NULL ? err : "?");
        ch_free(err);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    ch_store_worker_close(fx->w);
    uv_run(&fx->loop, UV_RUN_DEFAULT); /* the worker's handle closes */
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    int rc = ch_test_store_close(&fx->ts, fx->st);
    ch_free(fx);
    return rc;
}

/* One request: which agency to read, what was read, where work and done ran. */
typedef struct read_req {
    int64_t id;
    char name[64];
    int rc;
    uv_thread_t work_thread;
    uv_thread_t done_thread;
    int *order; /* done appends its index here */
    int *n_done;
    int index;
    unsigned sleep_ms; /* work sleeps first (a slow query) */
} read_req_t;

static int read_agency(ch_store_t *st, void *ud)
{
    read_req_t *r = ud;
    r->work_thread = uv_thread_self();
    if (r->sleep_ms > 0) {
        uv_sleep(r->sleep_ms);
    }
    ch_agency_t a = {0};
    int rc = ch_store_agency_get(st, r->id, &a);
    if (rc == 0) {
        snprintf(r->name, sizeof(r->name), "%s", a.name);
    }
    ch_agency_fini(&a);
    return rc;
}

static void read_done(void *ud, int rc)
{
    read_req_t *r = ud;
    r->rc = rc;
    r->done_thread = uv_thread_self();
    r->order[(*r->n_done)++] = r->index;
}

static int64_t make_agency(ch_store_t *st, const char *name)
{
    ch_agency_t a = {
        .name = (char *)name, .kind = "provider", .level = "district", .type = "district-center"};
    assert_int_equal(ch_store_agency_create(st, &a), 0);
    return a.id;
}

static void test_work_runs_on_the_worker_and_done_on_the_loop_in_order(void **state)
{
    fixture_t *fx = *state;
    enum { N = 40 };
    int64_t ids[3] = {make_agency(fx->st, "A"), make_agency(fx->st, "B"), make_agency(fx->st, "C")};
    read_req_t reqs[N];
    int order[N], n_done = 0;
    uv_thread_t self = uv_thread_self();
    memset(reqs, 0, sizeof(reqs));
    for (int i = 0; i < N; i++) {
        reqs[i].id = i == N - 1 ? 999 : ids[i % 3]; /* the last one finds nothing */
        reqs[i].order = order;
        reqs[i].n_done = &n_done;
        reqs[i].index = i;
        assert_int_equal(ch_store_async(fx->w, read_agency, read_done, &reqs[i]), 0);
    }
    assert_int_equal(n_done, 0); /* nothing completes outside the loop */
    assert_int_equal(uv_run(&fx->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(n_done, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(order[i], i);
        assert_true(uv_thread_equal(&reqs[i].done_thread, &self));
        assert_false(uv_thread_equal(&reqs[i].work_thread, &self));
    }
    assert_int_equal(reqs[0].rc, 0);
    assert_string_equal(reqs[0].name, "A");
    assert_string_equal(reqs[1].name, "B");
    assert_string_equal(reqs[N - 2].name, (N - 2) % 3 == 0 ? "A" : (N - 2) % 3 == 1 ? "B" : "C");
    assert_int_equal(reqs[N - 1].rc, CH_ENOTFOUND);
}

static void tick(uv_timer_t *t)
{
    (*(int *)t->data)++;
}

/* The loop turns while a request takes 300 ms: a 10 ms timer fires many times before done. */
static void test_the_loop_keeps_turning_while_a_slow_request_runs(void **state)
{
    fixture_t *fx = *state;
    int64_t id = make_agency(fx->st, "slow");
    int order[1], n_done = 0, ticks = 0, ticks_at_done = -1;
    read_req_t r = {.id = id, .order = order, .n_done = &n_done, .sleep_ms = 300};
    uv_timer_t timer;
    uv_timer_init(&fx->loop, &timer);
    timer.data = &ticks;
    uv_timer_start(&timer, tick, 10, 10);
    uv_unref((uv_handle_t *)&timer); /* the request alone keeps the loop running */
    assert_int_equal(ch_store_async(fx->w, read_agency, read_done, &r), 0);
    while (n_done == 0) {
        uv_run(&fx->loop, UV_RUN_ONCE);
    }
    ticks_at_done = ticks;
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.name, "slow");
    assert_true(ticks_at_done >= 5);
}

/* A request sees what the loop's handle committed before it was queued. */
static void test_a_request_reads_what_the_loop_committed(void **state)
{
    fixture_t *fx = *state;
    int order[2], n_done = 0;
    assert_int_equal(ch_store_begin(fx->st), 0);
    int64_t id = make_agency(fx->st, "committed later");
    assert_int_equal(ch_store_commit(fx->st), 0);
    read_req_t r = {.id = id, .order = order, .n_done = &n_done};
    assert_int_equal(ch_store_async(fx->w, read_agency, read_done, &r), 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.name, "committed later");
}

/* Close lets the worker finish what was queued and completes it before returning. */
static void test_close_completes_what_was_queued(void **state)
{
    fixture_t *fx = *state;
    enum { N = 5 };
    int64_t id = make_agency(fx->st, "A");
    read_req_t reqs[N];
    int order[N], n_done = 0;
    memset(reqs, 0, sizeof(reqs));
    for (int i = 0; i < N; i++) {
        reqs[i] =
            (read_req_t){.id = id, .order = order, .n_done = &n_done, .index = i, .sleep_ms = 5};
        assert_int_equal(ch_store_async(fx->w, read_agency, read_done, &reqs[i]), 0);
    }
    ch_store_worker_close(fx->w);
    fx->w = NULL;
    assert_int_equal(n_done, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(order[i], i);
        assert_int_equal(reqs[i].rc, 0);
    }
}

static void test_a_bad_url_fails_the_open(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    ch_store_worker_t *w = (ch_store_worker_t *)&loop;
    char *err = NULL;
    assert_int_equal(ch_store_worker_open(&loop, "postgresql://db/x", &w, &err), CH_EUNSUPP);
    assert_null(w);
    assert_non_null(err);
    ch_free(err);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_work_runs_on_the_worker_and_done_on_the_loop_in_order,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_loop_keeps_turning_while_a_slow_request_runs,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_request_reads_what_the_loop_committed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_close_completes_what_was_queued, setup, teardown),
        cmocka_unit_test(test_a_bad_url_fails_the_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

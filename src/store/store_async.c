/*
 * store: asynchronous requests (ch_store_worker_open, ch_store_async, store.h).
 *
 * One thread per worker with a handle of its own: a request queue under a mutex and a
 * condition, the thread runs each request's work with its handle, moves the request to a done
 * queue and wakes the loop with uv_async_send (which coalesces: one wake-up may carry many
 * requests). The loop's async callback takes the done queue and calls each done in order.
 *
 * Why a thread of our own and not uv_queue_work: a store handle is used by one thread at a
 * time, and libuv's pool runs each job on any of its threads; and the pool is shared with the
 * imports and the checkpoints, which run for seconds, so a read queued behind them would wait.
 * The PostgreSQL back end may replace the thread by its own socket on the loop, behind the
 * same two calls.
 *
 * Writes: the worker watches its own handle (ch_store_watch, every table), so the changes a
 * request's work commits are noted in the request on the worker's thread; on the loop they
 * are told to the watchers of the loop's handle (ch_store_worker_feed) just before the
 * request's done, as if the loop's handle had committed them. A watcher of the loop's handle
 * thus follows every write, whichever handle made it, on the loop's thread.
 *
 * Bound: a request is refused (CH_EAGAIN) while max_waiting are in flight, so that a flood of
 * clients meets a "busy" answer instead of a queue that grows without bound.
 */
#include "store/store_internal.h"

#include <assert.h>
#include <stdlib.h>
#include <uv.h>

typedef struct ch_store_req {
    struct ch_store_req *next;
    ch_store_work_fn work;
    ch_store_done_fn telling; /* may be NULL */
    ch_store_done_fn done;
    void *ud;
    int rc;
    /* What work committed (the worker's thread fills it, the loop tells it). */
    ch_store_change_t *changes;
    size_t nchanges, cap;
} ch_store_req_t;

/* A FIFO of requests. */
typedef struct req_queue {
    ch_store_req_t *head, *tail;
} req_queue_t;

struct ch_store_worker {
    uv_loop_t *loop;
    uv_async_t wake; /* the thread's signal to the loop that requests are done */
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cv;
    req_queue_t todo;       /* under mu */
    req_queue_t done;       /* under mu */
    int closing;            /* under mu: the thread ends once todo is empty */
    size_t in_flight;       /* loop thread only: queued and not yet completed */
    ch_store_t *st;         /* the worker thread's, from open to the thread's end */
    uint64_t delay_ms;      /* debug builds: CCTVHUB_TEST_STORE_DELAY_MS before each request */
    size_t max_waiting;     /* loop thread: ch_store_async refuses at this many in flight */
    ch_store_t *tell;       /* loop thread: whose watchers hear the worker's commits, or NULL */
    ch_store_watch_t *feed; /* the worker's watch of its own handle */
    ch_store_req_t *cur;    /* worker thread: the request whose work runs */
};

/* The worker's thread, from a commit of its handle: notes the change in the running request.
 * (Only a request's work writes through the handle.) */
static void noted(void *ud, const ch_store_change_t *c)
{
    ch_store_worker_t *w = ud;
    ch_store_req_t *r = w->cur;
    if (r == NULL) {
        return;
    }
    if (r->nchanges == r->cap) {
        r->cap = r->cap == 0 ? 4 : r->cap * 2;
        r->changes = ch_realloc(r->changes, r->cap * sizeof(*r->changes));
    }
    r->changes[r->nchanges++] = *c;
}

static void push(req_queue_t *q, ch_store_req_t *r)
{
    r->next = NULL;
    if (q->tail != NULL) {
        q->tail->next = r;
    } else {
        q->head = r;
    }
    q->tail = r;
}

static ch_store_req_t *take_all(req_queue_t *q)
{
    ch_store_req_t *r = q->head;
    q->head = q->tail = NULL;
    return r;
}

static void worker_main(void *arg)
{
    ch_store_worker_t *w = arg;
    uv_mutex_lock(&w->mu);
    for (;;) {
        while (w->todo.head == NULL && !w->closing) {
            uv_cond_wait(&w->cv, &w->mu);
        }
        ch_store_req_t *r = w->todo.head;
        if (r == NULL) {
            break; /* closing, and nothing left */
        }
        w->todo.head = r->next;
        if (w->todo.head == NULL) {
            w->todo.tail = NULL;
        }
        uv_mutex_unlock(&w->mu);
        if (w->delay_ms > 0) {
            uv_sleep((unsigned)w->delay_ms); /* a slow database, for the tests */
        }
        w->cur = r;
        r->rc = r->work(w->st, r->ud);
        w->cur = NULL;
        uv_mutex_lock(&w->mu);
        push(&w->done, r);
        uv_async_send(&w->wake);
    }
    uv_mutex_unlock(&w->mu);
}

/* Loop thread: tells the watchers of the loop's handle what r committed, as one commit (or, in
 * a transaction the loop's handle has open, as part of it). */
static void tell_changes(ch_store_worker_t *w, const ch_store_req_t *r)
{
    ch_store_t *st = w->tell;
    if (st == NULL || r->nchanges == 0) {
        return;
    }
    int outer = st->feed.in_tx;
    if (!outer) {
        ch_store__feed_begin(st);
    }
    for (size_t i = 0; i < r->nchanges; i++) {
        ch_store__changed(st, r->changes[i].table, r->changes[i].id, r->changes[i].op);
    }
    if (!outer) {
        ch_store__feed_commit(st);
    }
}

/* Loop thread: completes every request the worker has finished, in order. */
static void complete(ch_store_worker_t *w)
{
    uv_mutex_lock(&w->mu);
    ch_store_req_t *r = take_all(&w->done);
    uv_mutex_unlock(&w->mu);
    while (r != NULL) {
        ch_store_req_t *next = r->next;
        assert(w->in_flight > 0);
        w->in_flight--;
        if (r->telling != NULL) {
            r->telling(r->ud, r->rc);
        }
        tell_changes(w, r);
        r->done(r->ud, r->rc);
        ch_free(r->changes);
        ch_free(r);
        r = next;
    }
    /* Idle, the worker does not keep the loop running (a test's uv_run returns). */
    if (w->in_flight == 0 && !uv_is_closing((uv_handle_t *)&w->wake)) {
        uv_unref((uv_handle_t *)&w->wake);
    }
}

static void on_wake(uv_async_t *h)
{
    complete(h->data);
}

static void on_closed(uv_handle_t *h)
{
    ch_free(h->data);
}

int ch_store_worker_open(uv_loop_t *loop, const char *url, ch_store_worker_t **out, char **err)
{
    *out = NULL;
    ch_store_worker_t *w = ch_calloc(1, sizeof(*w));
    int rc = ch_store_open(url, &w->st, err);
    if (rc != 0) {
        ch_free(w);
        return rc;
    }
    w->loop = loop;
    w->max_waiting = CH_STORE_WORKER_MAX_WAITING;
    if (ch_store_watch(w->st, CH_STORE_T_ALL, noted, w, &w->feed) != 0) {
        goto fail_store;
    }
#ifndef NDEBUG
    /* Test-only (docs/internals/store.md): every request waits this long first, as over a slow
     * network, so that an integration test can show the loop answering meanwhile. Release
     * builds never read the variable. */
    const char *delay = getenv("CCTVHUB_TEST_STORE_DELAY_MS");
    if (delay != NULL) {
        w->delay_ms = strtoull(delay, NULL, 10);
    }
    /* And a smaller bound, so that a test floods it with a few clients. */
    const char *waiting = getenv("CCTVHUB_TEST_STORE_MAX_WAITING");
    if (waiting != NULL && strtoull(waiting, NULL, 10) > 0) {
        w->max_waiting = strtoull(waiting, NULL, 10);
    }
#endif
    if (uv_mutex_init(&w->mu) != 0) {
        goto fail_store;
    }
    if (uv_cond_init(&w->cv) != 0) {
        goto fail_mutex;
    }
    if (uv_async_init(loop, &w->wake, on_wake) != 0) {
        goto fail_cond;
    }
    w->wake.data = w;
    uv_unref((uv_handle_t *)&w->wake);
    if (uv_thread_create(&w->thread, worker_main, w) != 0) {
        uv_cond_destroy(&w->cv);
        uv_mutex_destroy(&w->mu);
        ch_store_close(w->st);
        /* libuv holds the async handle until the loop's next turn: free w then. */
        uv_close((uv_handle_t *)&w->wake, on_closed);
        if (err != NULL) {
            *err = ch_strdup("store: cannot start the worker thread");
        }
        return CH_EIO;
    }
    *out = w;
    return 0;

fail_cond:
    uv_cond_destroy(&w->cv);
fail_mutex:
    uv_mutex_destroy(&w->mu);
fail_store:
    ch_store_close(w->st);
    ch_free(w);
    if (err != NULL) {
        *err = ch_strdup("store: cannot set up the worker");
    }
    return CH_EIO;
}

int ch_store_async_watched(ch_store_worker_t *w, ch_store_work_fn work, ch_store_done_fn telling,
                           ch_store_done_fn done, void *ud)
{
    assert(work != NULL && done != NULL);
    if (w->in_flight >= w->max_waiting) {
        return CH_EAGAIN; /* busy: the caller answers so, nothing is queued */
    }
    ch_store_req_t *r = ch_calloc(1, sizeof(*r));
    r->work = work;
    r->telling = telling;
    r->done = done;
    r->ud = ud;
    uv_mutex_lock(&w->mu);
    if (w->closing) {
        uv_mutex_unlock(&w->mu);
        ch_free(r);
        return CH_EINVAL;
    }
    push(&w->todo, r);
    uv_cond_signal(&w->cv);
    uv_mutex_unlock(&w->mu);
    if (w->in_flight++ == 0) {
        uv_ref((uv_handle_t *)&w->wake);
    }
    return 0;
}

int ch_store_async(ch_store_worker_t *w, ch_store_work_fn work, ch_store_done_fn done, void *ud)
{
    return ch_store_async_watched(w, work, NULL, done, ud);
}

void ch_store_worker_feed(ch_store_worker_t *w, ch_store_t *st)
{
    w->tell = st;
}

void ch_store_worker_limit(ch_store_worker_t *w, size_t max_waiting)
{
    w->max_waiting = max_waiting > 0 ? max_waiting : 1;
}

size_t ch_store_worker_waiting(const ch_store_worker_t *w)
{
    return w->in_flight;
}

void ch_store_worker_close(ch_store_worker_t *w)
{
    if (w == NULL) {
        return;
    }
    uv_mutex_lock(&w->mu);
    w->closing = 1;
    uv_cond_signal(&w->cv);
    uv_mutex_unlock(&w->mu);
    uv_thread_join(&w->thread); /* it finishes what was queued first */
    complete(w);
    assert(w->in_flight == 0);
    ch_store_close(w->st);
    w->st = NULL;
    uv_cond_destroy(&w->cv);
    uv_mutex_destroy(&w->mu);
    uv_close((uv_handle_t *)&w->wake, on_closed);
}

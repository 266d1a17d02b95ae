/*
 * The heavy reads and the registry's changes on the hub's store worker (ch_store_async): the
 * route parses and checks the request on the loop, the read or the use case's transaction runs
 * on the worker's thread with the worker's own handle, and the answer is rendered and sent
 * back on the loop. Meanwhile the loop answers everything else: with SQLite a read of the whole
 * audit index takes milliseconds, with a database over the network every query is a round
 * trip. A worker with CH_STORE_WORKER_MAX_WAITING requests in flight is busy: the request is
 * answered 503 "busy" with Retry-After and nothing of it runs.
 *
 * The request's lifetime is the one of the pool's jobs (geo, imports): the HTTP server keeps
 * a request valid until it is answered, even when its connection closed meanwhile (the answer
 * then goes nowhere); the read counts in api->in_flight, which the hub drains before it stops,
 * and an API freed with reads in flight is freed by the last one to come back.
 */
#include "api/api_ctx.h"

typedef struct store_read {
    api_ctx_t ctx; /* the request, answered in done */
    ch_api__read_work_fn work;
    void (*telling)(void *job, int rc);
    ch_api__read_done_fn done;
    void *job;
} store_read_t;

/* The worker's thread. */
static int read_work(ch_store_t *st, void *ud)
{
    store_read_t *r = ud;
    return r->work(st, r->job);
}

/* Back on the loop, before the worker's commit is told. */
static void read_telling(void *ud, int rc)
{
    store_read_t *r = ud;
    if (r->telling != NULL) {
        r->telling(r->job, rc);
    }
}

/* Back on the loop. */
static void read_done(void *ud, int rc)
{
    store_read_t *r = ud;
    ch_api_t *api = r->ctx.api;
    api->in_flight--;
    if (api->freeing) {
        /* The API is gone as far as its owner knows; nobody is left to answer. */
        r->done(NULL, r->job, rc);
        ch_free(r);
        if (api->in_flight == 0) {
            ch_api_free(api);
        }
        return;
    }
    r->done(&r->ctx, r->job, rc);
    ch_free(r);
}

void ch_api__store_write(api_ctx_t *c, ch_api__read_work_fn work,
                         void (*telling)(void *job, int rc), ch_api__read_done_fn done, void *job)
{
    ch_store_worker_t *w = c->api->svc.store_worker;
    if (w != NULL) {
        store_read_t *r = ch_calloc(1, sizeof(*r));
        r->ctx = *c;
        r->work = work;
        r->telling = telling;
        r->done = done;
        r->job = job;
        int rc = ch_store_async_watched(w, read_work, read_telling, read_done, r);
        if (rc == 0) {
            c->api->in_flight++;
            return;
        }
        ch_free(r);
        if (rc == CH_EAGAIN) {
            ch_api__err_t e;
            ch_api__err_set(&e, 503, "busy", NULL, "%s",
                            "the store has too many requests waiting; try again shortly");
            ch_api__reply_err(c, &e, "Retry-After: 1\r\n");
            done(NULL, job, rc); /* frees job; nothing of it ran */
            return;
        }
        /* The worker is closing: run here, then. */
    }
    if (telling != NULL) {
        telling(job, 0); /* the loop's handle tells at its own commit */
    }
    done(c, job, work(c->api->st, job));
}

void ch_api__store_read(api_ctx_t *c, ch_api__read_work_fn work, ch_api__read_done_fn done,
                        void *job)
{
    ch_api__store_write(c, work, NULL, done, job);
}

/*
 * auth/hasher.c: the hash pool. Argon2id jobs on threads of their own, bounded in total and per
 * client address, results back on the loop through a uv_async_t. See auth.h.
 *
 * The loop side (submit, the per-address counts, the callbacks) runs on the loop only; the
 * queue of jobs to run and the list of jobs done are shared with the threads under one mutex.
 */
#include "auth/auth.h"
#include "auth/auth_internal.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define MODULE "auth"

#define DEFAULT_THREADS         2
#define DEFAULT_MAX_IN_FLIGHT   16
#define DEFAULT_MAX_PER_ADDRESS 2

/* In-flight jobs of one client address (at most max_in_flight addresses at once). */
typedef struct addr_count {
    char addr[48]; /* "" = free */
    unsigned count;
} addr_count_t;

struct ch_auth_hasher {
    uv_loop_t *loop;
    ch_auth_hasher_config_t cfg;
    /* The loop's. */
    size_t in_flight;
    addr_count_t *addrs; /* cfg.max_in_flight entries */
    int started;
    uv_async_t *async; /* allocated apart: it is freed in its close callback */
    uv_thread_t *threads;
    /* Shared with the threads, under mu. */
    uv_mutex_t mu;
    uv_cond_t cond;
    ch_auth_hash_job_t *todo_head, *todo_tail;
    ch_auth_hash_job_t *done_head, *done_tail;
    int stopping;
};

ch_auth_hasher_t *ch_auth_hasher_new(uv_loop_t *loop, const ch_auth_hasher_config_t *cfg)
{
    ch_auth_hasher_t *h = ch_calloc(1, sizeof(*h));
    h->loop = loop;
    if (cfg != NULL) {
        h->cfg = *cfg;
    }
    if (h->cfg.threads == 0) {
        h->cfg.threads = DEFAULT_THREADS;
    }
    if (h->cfg.max_in_flight == 0) {
        h->cfg.max_in_flight = DEFAULT_MAX_IN_FLIGHT;
    }
    if (h->cfg.max_per_address == 0) {
        h->cfg.max_per_address = DEFAULT_MAX_PER_ADDRESS;
    }
    h->addrs = ch_calloc(h->cfg.max_in_flight, sizeof(addr_count_t));
    return h;
}

static void run_job(ch_auth_hash_job_t *j)
{
    if (j->kind == CH_AUTH_HASH_MAKE) {
        j->result = ch_auth_password_hash(j->password, j->password_len, j->hash);
    } else if (j->hash[0] != '\0') {
        j->result = ch_auth_password_verify(j->hash, j->password, j->password_len);
    } else {
        ch_auth_password_dummy_verify(j->password, j->password_len);
        j->result = CH_EPERM;
    }
}

static void worker(void *arg)
{
    ch_auth_hasher_t *h = arg;
#ifdef __linux__
    /* Linux gives each thread its own nice value: hashing yields the cores to the loop and to
     * the audit's appends. Best effort. */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
#endif
    uv_mutex_lock(&h->mu);
    for (;;) {
        while (h->todo_head == NULL && !h->stopping) {
            uv_cond_wait(&h->cond, &h->mu);
        }
        if (h->todo_head == NULL) {
            break; /* stopping, and nothing left */
        }
        ch_auth_hash_job_t *j = h->todo_head;
        h->todo_head = j->next;
        if (h->todo_head == NULL) {
            h->todo_tail = NULL;
        }
        uv_mutex_unlock(&h->mu);
        run_job(j);
        uv_mutex_lock(&h->mu);
        j->next = NULL;
        if (h->done_tail != NULL) {
            h->done_tail->next = j;
        } else {
            h->done_head = j;
        }
        h->done_tail = j;
        uv_async_send(h->async);
    }
    uv_mutex_unlock(&h->mu);
}

static addr_count_t *addr_find(ch_auth_hasher_t *h, const char *addr, int create)
{
    addr_count_t *free_slot = NULL;
    for (unsigned i = 0; i < h->cfg.max_in_flight; i++) {
        addr_count_t *a = &h->addrs[i];
        if (a->addr[0] != '\0' && strcmp(a->addr, addr) == 0) {
            return a;
        }
        if (a->addr[0] == '\0' && free_slot == NULL) {
            free_slot = a;
        }
    }
    if (!create || free_slot == NULL) {
        return NULL;
    }
    snprintf(free_slot->addr, sizeof(free_slot->addr), "%s", addr);
    free_slot->count = 0;
    return free_slot;
}

/* Back on the loop: the callbacks of the jobs done. */
static void on_done(uv_async_t *a)
{
    ch_auth_hasher_t *h = a->data;
    uv_mutex_lock(&h->mu);
    ch_auth_hash_job_t *j = h->done_head;
    h->done_head = h->done_tail = NULL;
    uv_mutex_unlock(&h->mu);
    while (j != NULL) {
        ch_auth_hash_job_t *next = j->next;
        if (j->counted) {
            addr_count_t *ac = addr_find(h, j->addr, 0);
            if (ac != NULL && --ac->count == 0) {
                ac->addr[0] = '\0';
            }
        }
        h->in_flight--;
        if (h->in_flight == 0) {
            uv_unref((uv_handle_t *)h->async); /* idle: the pool keeps no loop alive */
        }
        /* The callback may free the pool once nothing is in flight (the last one): then j was
         * the last of the list too, and h is not touched again. */
        int last = next == NULL;
        j->cb(j);
        if (last) {
            break;
        }
        j = next;
    }
}

/* The threads and the async handle, at the first job (a hub nobody logs in to has none). */
static int start(ch_auth_hasher_t *h)
{
    h->async = ch_calloc(1, sizeof(*h->async));
    if (uv_async_init(h->loop, h->async, on_done) != 0) {
        ch_free(h->async);
        h->async = NULL;
        return CH_EIO;
    }
    h->async->data = h;
    uv_unref((uv_handle_t *)h->async);
    if (uv_mutex_init(&h->mu) != 0 || uv_cond_init(&h->cond) != 0) {
        abort();
    }
    h->threads = ch_calloc(h->cfg.threads, sizeof(uv_thread_t));
    for (unsigned i = 0; i < h->cfg.threads; i++) {
        if (uv_thread_create(&h->threads[i], worker, h) != 0) {
            ch_log(CH_LOG_ERROR, MODULE, "msg=\"hash thread not started\"");
            abort();
        }
    }
    h->started = 1;
    ch_log(CH_LOG_INFO, MODULE,
           "msg=\"hash pool started\" threads=%u max_in_flight=%u "
           "max_per_address=%u",
           h->cfg.threads, h->cfg.max_in_flight, h->cfg.max_per_address);
    return 0;
}

int ch_auth_hasher_submit(ch_auth_hasher_t *h, ch_auth_hash_job_t *job, const char *addr,
                          ch_auth_hash_cb cb)
{
    if (h->stopping) {
        return -ECANCELED;
    }
    addr_count_t *ac = NULL;
    job->counted = 0;
    job->addr[0] = '\0';
    if (addr != NULL) {
        if (h->in_flight >= h->cfg.max_in_flight) {
            return CH_EAGAIN;
        }
        char host[48];
        ch_auth__host_of(addr, host);
        ac = addr_find(h, host, 1);
        if (ac == NULL || ac->count >= h->cfg.max_per_address) {
            return CH_EAGAIN;
        }
        snprintf(job->addr, sizeof(job->addr), "%s", host);
    }
    if (!h->started && start(h) != 0) {
        if (ac != NULL && ac->count == 0) {
            ac->addr[0] = '\0';
        }
        return CH_EIO;
    }
    if (ac != NULL) {
        ac->count++;
        job->counted = 1;
    }
    job->cb = cb;
    job->next = NULL;
    if (h->in_flight++ == 0) {
        uv_ref((uv_handle_t *)h->async); /* work in flight keeps the loop running */
    }
    uv_mutex_lock(&h->mu);
    if (h->todo_tail != NULL) {
        h->todo_tail->next = job;
    } else {
        h->todo_head = job;
    }
    h->todo_tail = job;
    uv_cond_signal(&h->cond);
    uv_mutex_unlock(&h->mu);
    return 0;
}

size_t ch_auth_hasher_in_flight(const ch_auth_hasher_t *h)
{
    return h != NULL ? h->in_flight : 0;
}

static void free_async(uv_handle_t *a)
{
    ch_free(a);
}

void ch_auth_hasher_free(ch_auth_hasher_t *h)
{
    if (h == NULL) {
        return;
    }
    assert(h->in_flight == 0);
    if (h->started) {
        uv_mutex_lock(&h->mu);
        h->stopping = 1;
        uv_cond_broadcast(&h->cond);
        uv_mutex_unlock(&h->mu);
        for (unsigned i = 0; i < h->cfg.threads; i++) {
            uv_thread_join(&h->threads[i]);
        }
        uv_cond_destroy(&h->cond);
        uv_mutex_destroy(&h->mu);
        uv_close((uv_handle_t *)h->async, free_async);
        ch_free(h->threads);
    }
    ch_free(h->addrs);
    ch_free(h);
}

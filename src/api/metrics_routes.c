/*
 * api/metrics_routes.c: GET /metrics (the Prometheus text format, rendered from the registry
 * given in ch_api_services_t) and the API's own figures: requests by route and status and
 * their duration.
 *
 * The figures are counted on every answer (ch_api__reply) on the control loop and read by the
 * collector on the same loop, so they are plain integers: no atomic, no lock, no allocation
 * per request. A request is counted under its route's template ("/api/v1/cameras/{id}"), never
 * its raw path, so the number of series stays bounded by the route table (one more row,
 * "unmatched", takes 404s and 405s); each route keeps up to STATUS_SLOTS distinct status codes
 * and counts any further one as code="other".
 */
#include "api/api_ctx.h"
#include "registry/registry.h"

#include <stdio.h>
#include <string.h>

#define STATUS_SLOTS  8
#define METRICS_TYPE  "text/plain; version=0.0.4; charset=utf-8"
#define MAX_TOKEN_LEN 256

/* Request durations, in seconds: from half a millisecond (a cached answer) to ten seconds (an
 * import's upload). */
static const double duration_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define NBOUNDS CH_ARRAY_SIZE(duration_bounds)

typedef struct route_stats {
    uint16_t status[STATUS_SLOTS]; /* 0: a free slot */
    uint64_t count[STATUS_SLOTS];
    uint64_t other; /* answers with a status beyond the slots */
    uint64_t total;
    uint64_t buckets[NBOUNDS + 1]; /* per bucket, not cumulative; the last is over 10 s */
    double sum;
} route_stats_t;

struct ch_api__http_stats {
    size_t n; /* routes + 1 (slot 0: unmatched) */
    route_stats_t r[];
};

struct ch_api__http_stats *ch_api__http_stats_new(void)
{
    size_t nroutes;
    (void)ch_api_routes(&nroutes);
    struct ch_api__http_stats *s = ch_calloc(1, sizeof(*s) + (nroutes + 1) * sizeof(route_stats_t));
    s->n = nroutes + 1;
    return s;
}

void ch_api__http_stats_free(struct ch_api__http_stats *s)
{
    ch_free(s);
}

void ch_api__count_request(api_ctx_t *c, int status, uint64_t now_ns)
{
    struct ch_api__http_stats *s = c->api->http_stats;
    if (s == NULL || c->route_slot >= s->n) {
        return;
    }
    route_stats_t *r = &s->r[c->route_slot];
    size_t i = 0;
    while (i < STATUS_SLOTS && r->status[i] != 0 && r->status[i] != status) {
        i++;
    }
    if (i == STATUS_SLOTS) {
        r->other++;
    } else {
        r->status[i] = (uint16_t)status;
        r->count[i]++;
    }
    double secs = (double)(now_ns - c->t0_ns) / 1e9;
    size_t b = 0;
    while (b < NBOUNDS && secs > duration_bounds[b]) {
        b++;
    }
    r->buckets[b]++;
    r->sum += secs;
    r->total++;
}

/* The method and route labels of slot i. */
static void slot_labels(size_t i, ch_metrics_label_t l[2])
{
    size_t n;
    const ch_api_route_info_t *routes = ch_api_routes(&n);
    if (i == 0 || i > n) {
        l[0] = (ch_metrics_label_t){"method", "any"};
        l[1] = (ch_metrics_label_t){"route", "unmatched"};
    } else {
        l[0] = (ch_metrics_label_t){"method", routes[i - 1].method};
        l[1] = (ch_metrics_label_t){"route", routes[i - 1].path_template};
    }
}

/* The API's collector: requests by route and status, and their duration. */
static void collect_http(ch_metrics_writer_t *w, void *ud)
{
    const ch_api_t *api = ud;
    const struct ch_api__http_stats *s = api->http_stats;
    if (ch_metrics_family(w, "cctvhub_http_requests_total", CH_METRICS_COUNTER,
                          "HTTP requests answered by the API, by method, route template and "
                          "status code (route=\"unmatched\": no route had the path or the "
                          "method).") == 0) {
        for (size_t i = 0; i < s->n; i++) {
            const route_stats_t *r = &s->r[i];
            ch_metrics_label_t l[3];
            slot_labels(i, l);
            for (size_t k = 0; k < STATUS_SLOTS && r->status[k] != 0; k++) {
                char code[8];
                snprintf(code, sizeof(code), "%u", (unsigned)r->status[k]);
                l[2] = (ch_metrics_label_t){"code", code};
                ch_metrics_value_u64(w, l, 3, r->count[k]);
            }
            if (r->other > 0) {
                l[2] = (ch_metrics_label_t){"code", "other"};
                ch_metrics_value_u64(w, l, 3, r->other);
            }
        }
    }
    if (ch_metrics_family(w, "cctvhub_http_request_duration_seconds", CH_METRICS_HISTOGRAM,
                          "Time from a request's dispatch to its answer, by method and route "
                          "template.") == 0) {
        for (size_t i = 0; i < s->n; i++) {
            const route_stats_t *r = &s->r[i];
            if (r->total == 0) {
                continue;
            }
            uint64_t cum[NBOUNDS];
            uint64_t run = 0;
            for (size_t b = 0; b < NBOUNDS; b++) {
                run += r->buckets[b];
                cum[b] = run;
            }
            ch_metrics_hist_data_t d = {NBOUNDS, duration_bounds, cum, r->total, r->sum};
            ch_metrics_label_t l[2];
            slot_labels(i, l);
            ch_metrics_histogram(w, l, 2, &d);
        }
    }
}

void ch_api__metrics_attach(ch_api_t *api, ch_metrics_t *m, const char *token)
{
    if (api->svc.metrics != NULL) {
        ch_metrics_unregister(api->svc.metrics, collect_http, api);
    }
    api->svc.metrics = m;
    ch_free(api->metrics_token);
    api->metrics_token = token != NULL && token[0] != '\0' ? ch_strdup(token) : NULL;
    if (m != NULL) {
        (void)ch_metrics_register(m, collect_http, api);
    }
}

int ch_api__metrics_token_ok(const api_ctx_t *c)
{
    const char *tok = c->api->metrics_token;
    const ch_slice_t *h = ch_http_request_header(c->req, "Authorization");
    if (tok == NULL || h == NULL || h->len < 8 || h->len > 7 + MAX_TOKEN_LEN) {
        return 0;
    }
    ch_slice_t scheme = {h->ptr, 6};
    if (!ch_slice_eq_nocase(scheme, "Bearer") || h->ptr[6] != ' ') {
        return 0;
    }
    const char *given = h->ptr + 7;
    size_t n = h->len - 7;
    size_t tn = strlen(tok);
    /* Constant time in the token's bytes: a scraper's guess learns nothing from timing. */
    unsigned char diff = n != tn;
    for (size_t i = 0; i < tn; i++) {
        diff |= (unsigned char)(tok[i] ^ (i < n ? given[i] : 0));
    }
    return diff == 0;
}

static void render(api_ctx_t *c)
{
    ch_buf_t b;
    ch_buf_init(&b);
    ch_metrics_render(c->api->svc.metrics, &b);
    ch_api__reply(c, 200, METRICS_TYPE, NULL, b.data != NULL ? b.data : "", b.len);
    ch_buf_fini(&b);
}

static int counts_work(ch_store_t *st, void *job)
{
    return ch_registry_count_statuses(st, job);
}

static void counts_done(api_ctx_t *c, void *job, int rc)
{
    if (c != NULL) {
        if (rc == 0) {
            *c->api->svc.metrics_counts = *(ch_registry_counts_t *)job;
        }
        render(c); /* a failed count leaves the last one read (logged by the count) */
    }
    ch_free(job);
}

void ch_api__handle_metrics(api_ctx_t *c)
{
    /* Scraped every few seconds: logged at debug, like /health. */
    c->log_level = CH_LOG_DEBUG;
    if (ch_api__reject_query(c) != 0) {
        return;
    }
    if (c->api->svc.metrics == NULL) {
        ch_api__reply_error(c, 503, "unavailable", NULL, "metrics are not collected here");
        return;
    }
    if (c->api->svc.metrics_counts == NULL) {
        render(c);
        return;
    }
    /* The store's counts first, on the worker: with 18,000 cameras a few milliseconds the loop
     * need not wait for. */
    ch_api__store_read(c, counts_work, counts_done, ch_calloc(1, sizeof(ch_registry_counts_t)));
}

/*
 * main/hub_metrics.c: the hub's metrics registry (see hub_metrics.h).
 */
#include "main/hub_metrics.h"

#ifndef CH_VERSION
#define CH_VERSION "0.0.0"
#endif
#ifndef CH_GIT_REV
#define CH_GIT_REV "unknown"
#endif

struct ch_main_metrics {
    ch_metrics_t *reg;
    ch_metrics_process_t process;
    ch_store_t *st;
    ch_http_server_t *http;
};

static void collect_http_server(ch_metrics_writer_t *w, void *ud)
{
    ch_main_metrics_t *hm = ud;
    if (ch_metrics_family(w, "cctvhub_http_connections", CH_METRICS_GAUGE,
                          "Open connections of the HTTP server.") == 0) {
        ch_metrics_value_u64(w, NULL, 0, ch_http_server_connections(hm->http));
    }
    /* Refused before routing: cctvhub_http_requests_total counts only what reached a route. */
    if (ch_metrics_family(w, "cctvhub_http_refused_total", CH_METRICS_COUNTER,
                          "Requests the HTTP server answered itself before routing (limits, "
                          "malformed heads, timeouts), by status and error code.") == 0) {
        ch_http_refusal_t r[CH_HTTP_REFUSALS_MAX];
        size_t n = ch_http_server_refusals(hm->http, r, CH_ARRAY_SIZE(r));
        for (size_t i = 0; i < n; i++) {
            char status[8];
            snprintf(status, sizeof(status), "%d", r[i].status);
            ch_metrics_label_t l[2] = {{"code", status}, {"reason", r[i].code}};
            ch_metrics_value_u64(w, l, 2, r[i].count);
        }
    }
}

/* Cameras of the registry by status: one count per status from the store, on the control
 * loop (a few milliseconds at national scale, once per scrape). */
static void collect_cameras(ch_metrics_writer_t *w, void *ud)
{
    ch_main_metrics_t *hm = ud;
    int64_t totals[8];
    size_t n = 0;
    for (; ch_store_camera_statuses[n] != NULL && n < CH_ARRAY_SIZE(totals); n++) {
        ch_store_filter_t f = {.status = ch_store_camera_statuses[n], .limit = 1};
        ch_camera_list_t l = {0};
        if (ch_store_camera_list(hm->st, &f, &l) != 0) {
            ch_camera_list_free(&l);
            ch_log(CH_LOG_WARN, "metrics", "msg=\"cameras not counted\" error=\"%s\"",
                   ch_store_errmsg(hm->st));
            return; /* no family rather than a wrong one */
        }
        totals[n] = l.total;
        ch_camera_list_free(&l);
    }
    if (ch_metrics_family(w, "cctvhub_cameras_registered", CH_METRICS_GAUGE,
                          "Cameras in the registry by their registered status (not health: "
                          "see cctvhub_cameras).") != 0) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        ch_metrics_label_t l = {"status", ch_store_camera_statuses[i]};
        ch_metrics_value(w, &l, 1, (double)totals[i]);
    }
}

void ch_main__metrics_add_health(ch_main_metrics_t *hm, ch_health_t *health)
{
    if (hm != NULL && health != NULL) {
        (void)ch_metrics_register(hm->reg, ch_health_collect, health);
    }
}

ch_main_metrics_t *ch_main__metrics_new(ch_store_t *st, ch_http_server_t *http,
                                        int64_t started_at_ms)
{
    ch_main_metrics_t *hm = ch_calloc(1, sizeof(*hm));
    hm->reg = ch_metrics_new();
    hm->st = st;
    hm->http = http;
    hm->process = (ch_metrics_process_t){started_at_ms, CH_VERSION, CH_GIT_REV};
    (void)ch_metrics_register(hm->reg, ch_metrics_collect_process, &hm->process);
    (void)ch_metrics_register(hm->reg, collect_cameras, hm);
    if (http != NULL) {
        (void)ch_metrics_register(hm->reg, collect_http_server, hm);
    }
    return hm;
}

ch_metrics_t *ch_main__metrics_registry(ch_main_metrics_t *hm)
{
    return hm->reg;
}

void ch_main__metrics_free(ch_main_metrics_t *hm)
{
    if (hm == NULL) {
        return;
    }
    ch_metrics_free(hm->reg);
    ch_free(hm);
}

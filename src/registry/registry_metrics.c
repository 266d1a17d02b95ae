/*
 * The registry's family for GET /metrics: cameras registered, by status. See registry.h.
 */
#include "registry/registry.h"

/* One count per status from the store, on the control loop (a few milliseconds at national
 * scale, once per scrape). */
void ch_registry_collect(ch_metrics_writer_t *w, void *ud)
{
    ch_store_t *st = ud;
    int64_t totals[8];
    size_t n = 0;
    for (; ch_store_camera_statuses[n] != NULL && n < CH_ARRAY_SIZE(totals); n++) {
        ch_store_filter_t f = {.status = ch_store_camera_statuses[n], .limit = 1};
        ch_camera_list_t l = {0};
        if (ch_store_camera_list(st, &f, &l) != 0) {
            ch_camera_list_free(&l);
            ch_log(CH_LOG_WARN, "metrics", "msg=\"cameras not counted\" error=\"%s\"",
                   ch_store_errmsg(st));
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

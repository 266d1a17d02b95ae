/*
 * The registry's family for GET /metrics: cameras registered, by status. See registry.h.
 */
#include "registry/registry.h"

#include <string.h>

/* One count per status (a few milliseconds at national scale, once per scrape: the hub does
 * it on the store worker). */
int ch_registry_count_statuses(ch_store_t *st, ch_registry_counts_t *out)
{
    memset(out, 0, sizeof(*out));
    size_t n = 0;
    for (; ch_store_camera_statuses[n] != NULL && n < CH_ARRAY_SIZE(out->totals); n++) {
        ch_store_filter_t f = {.status = ch_store_camera_statuses[n], .limit = 1};
        ch_camera_list_t l = {0};
        int rc = ch_store_camera_list(st, &f, &l);
        if (rc != 0) {
            ch_camera_list_free(&l);
            ch_log(CH_LOG_WARN, "metrics", "msg=\"cameras not counted\" error=\"%s\"",
                   ch_store_errmsg(st));
            memset(out, 0, sizeof(*out));
            return rc;
        }
        out->totals[n] = l.total;
        ch_camera_list_free(&l);
    }
    out->n = n;
    out->known = 1;
    return 0;
}

void ch_registry_collect_counts(ch_metrics_writer_t *w, void *ud)
{
    const ch_registry_counts_t *c = ud;
    if (!c->known) {
        return; /* no family rather than a wrong one */
    }
    if (ch_metrics_family(w, "cctvhub_cameras_registered", CH_METRICS_GAUGE,
                          "Cameras in the registry by their registered status (not health: "
                          "see cctvhub_cameras).") != 0) {
        return;
    }
    for (size_t i = 0; i < c->n; i++) {
        ch_metrics_label_t l = {"status", ch_store_camera_statuses[i]};
        ch_metrics_value(w, &l, 1, (double)c->totals[i]);
    }
}

void ch_registry_collect(ch_metrics_writer_t *w, void *ud)
{
    ch_registry_counts_t c;
    if (ch_registry_count_statuses(ud, &c) == 0) {
        ch_registry_collect_counts(w, &c);
    }
}

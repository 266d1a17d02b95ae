/*
 * The alerts' metrics families (ch_alert_collect in alert.h): the engine's counts, the live
 * feed's clients and the webhook's queue and posts.
 */
#include "alert/alert.h"

/* One family whose samples are integer members of a JSON object, one label value each (no
 * label when label is NULL). */
static void collect_json(ch_metrics_writer_t *w, const char *name, ch_metrics_type_t type,
                         const char *help, const char *label, json_t *o, const char *const *keys,
                         const char *const *values, size_t n)
{
    if (o == NULL || ch_metrics_family(w, name, type, help) != 0) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        ch_metrics_label_t l = {label, values[i]};
        json_int_t v = json_integer_value(json_object_get(o, keys[i]));
        ch_metrics_value_u64(w, label != NULL ? &l : NULL, label != NULL ? 1 : 0,
                             v > 0 ? (uint64_t)v : 0);
    }
}

void ch_alert_collect(ch_metrics_writer_t *w, void *ud)
{
    const ch_alert_parts_t *p = ud;
    json_t *a = ch_alert_stats(p->eng);
    static const char *const astates[] = {"open", "acknowledged"};
    collect_json(w, "cctvhub_alerts", CH_METRICS_GAUGE, "Alerts not resolved, by state.", "state",
                 a, astates, astates, 2);
    static const char *const raised[] = {"raised"}, *const resolved[] = {"resolved"};
    collect_json(w, "cctvhub_alerts_raised_total", CH_METRICS_COUNTER,
                 "Alerts raised by the rules since start.", NULL, a, raised, raised, 1);
    collect_json(w, "cctvhub_alerts_resolved_total", CH_METRICS_COUNTER,
                 "Alerts resolved by themselves since start (their cause cleared).", NULL, a,
                 resolved, resolved, 1);
    json_decref(a);
    if (ch_metrics_family(w, "cctvhub_alert_live_clients", CH_METRICS_GAUGE,
                          "Consoles connected to the live alert feed.") == 0) {
        ch_metrics_value_u64(w, NULL, 0, p->live != NULL ? ch_alert_live_clients(p->live) : 0);
    }
    if (p->webhook != NULL) {
        json_t *h = ch_alert_webhook_stats(p->webhook);
        static const char *const queued[] = {"queued"};
        collect_json(w, "cctvhub_webhook_queued", CH_METRICS_GAUGE,
                     "Alerts waiting to be posted to alert.webhook_url.", NULL, h, queued, queued,
                     1);
        static const char *const keys[] = {"delivered", "failed_tries", "dropped"};
        static const char *const outcome[] = {"delivered", "failed", "dropped"};
        collect_json(w, "cctvhub_webhook_posts_total", CH_METRICS_COUNTER,
                     "Webhook posts by outcome: delivered (2xx), failed (a try to be retried), "
                     "dropped (out of tries or queue).",
                     "outcome", h, keys, outcome, 3);
        json_decref(h);
    }
}

/*
 * main/hub_metrics.c: the hub's metrics registry (see hub_metrics.h).
 */
#include "main/hub_metrics.h"

#include "registry/registry.h"

#ifndef CH_VERSION
#define CH_VERSION "0.0.0"
#endif
#ifndef CH_GIT_REV
#define CH_GIT_REV "unknown"
#endif

struct ch_main_metrics {
    ch_metrics_t *reg;
    ch_metrics_process_t process;
    ch_registry_counts_t counts; /* cameras by status, as the API's last scrape read them */
};

void ch_main__metrics_add_health(ch_main_metrics_t *hm, ch_health_t *health)
{
    if (hm != NULL && health != NULL) {
        (void)ch_metrics_register(hm->reg, ch_health_collect, health);
    }
}

ch_main_metrics_t *ch_main__metrics_new(ch_http_server_t *http, int64_t started_at_ms)
{
    ch_main_metrics_t *hm = ch_calloc(1, sizeof(*hm));
    hm->reg = ch_metrics_new();
    hm->process = (ch_metrics_process_t){started_at_ms, CH_VERSION, CH_GIT_REV};
    (void)ch_metrics_register(hm->reg, ch_metrics_collect_process, &hm->process);
    (void)ch_metrics_register(hm->reg, ch_registry_collect_counts, &hm->counts);
    if (http != NULL) {
        (void)ch_metrics_register(hm->reg, ch_http_server_collect, http);
    }
    return hm;
}

ch_metrics_t *ch_main__metrics_registry(ch_main_metrics_t *hm)
{
    return hm->reg;
}

ch_registry_counts_t *ch_main__metrics_counts(ch_main_metrics_t *hm)
{
    return &hm->counts;
}

void ch_main__metrics_free(ch_main_metrics_t *hm)
{
    if (hm == NULL) {
        return;
    }
    ch_metrics_free(hm->reg);
    ch_free(hm);
}

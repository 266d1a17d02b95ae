/*
 * hub_tls: the hub's TLS contexts from its configuration (see hub_tls.h).
 */
#include "main/hub_tls.h"

#include <string.h>

int ch_main__tls_load(const ch_config_t *cfg, ch_main_tls_t *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    int rc = 0;
    if (cfg->tls_cert != NULL) {
        ch_net_tls_config_t sc = {
            .cert_file = cfg->tls_cert,
            .key_file = cfg->tls_key,
            .ca_file = cfg->tls_client_ca,
            .crl_file = cfg->tls_client_crl,
            .require_client_cert = 0, /* an API key or a grant says whether one is needed */
        };
        if (ch_config_http_tls(cfg)) {
            ch_net_tls_config_t hc = sc;
            hc.alpn = "http/1.1";
            hc.lean = 1;
            rc = ch_net_tls_server_new(&hc, &t->http, err, errlen);
        }
        if (rc == 0 && cfg->rtsps_listen != NULL) {
            /* A thousand viewers' idle buffers would be 34 KiB each, cold in the cache at
             * every write: released, the next record reuses a warm one (bench/tls). */
            ch_net_tls_config_t rc_cfg = sc;
            rc_cfg.lean = 1;
            rc = ch_net_tls_server_new(&rc_cfg, &t->rtsps, err, errlen);
        }
    }
    if (rc == 0) {
        ch_net_tls_config_t cc = {.ca_file = cfg->tls_ca_bundle};
        rc = ch_net_tls_client_new(&cc, &t->client, err, errlen);
    }
    if (rc != 0) {
        ch_main__tls_fini(t);
    }
    return rc;
}

void ch_main__tls_fini(ch_main_tls_t *t)
{
    ch_net_tls_unref(t->http);
    ch_net_tls_unref(t->rtsps);
    ch_net_tls_unref(t->client);
    memset(t, 0, sizeof(*t));
}

/*
 * hub_tls: the hub's TLS contexts, made from the configuration (tls.*) at the start and made
 * again from the same files on SIGHUP (a renewed certificate): one for HTTPS (ALPN http/1.1,
 * buffers of idle connections released), one for RTSPS (the relay's viewers), both with the
 * agencies' client CAs when tls.client_ca is set, and one client context for what the hub
 * calls (cameras over rtsps://, webhooks over https://) checked against tls.ca_bundle. Each
 * listener holds the context it was given; a reload gives it the new one, and connections
 * already open keep theirs.
 */
#ifndef CH_MAIN_HUB_TLS_H
#define CH_MAIN_HUB_TLS_H

#include "core/config.h"
#include "net/net.h"

typedef struct ch_main_tls {
    ch_net_tls_t *http;   /* NULL: HTTP is plaintext */
    ch_net_tls_t *rtsps;  /* NULL: no RTSPS */
    ch_net_tls_t *client; /* always made: outgoing TLS */
} ch_main_tls_t;

/* Makes the contexts of cfg into t (zeroed first). 0, or CH_EINVAL with the reason in err
 * (the file and OpenSSL's reason); t is then empty. */
int ch_main__tls_load(const ch_config_t *cfg, ch_main_tls_t *t, char *err, size_t errlen);
/* Drops t's references. */
void ch_main__tls_fini(ch_main_tls_t *t);

#endif /* CH_MAIN_HUB_TLS_H */

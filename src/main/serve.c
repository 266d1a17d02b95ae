/*
 * cctvhub serve: the daemon. One libuv control loop carries the HTTP server, the API and the
 * store; the media relay runs on its own loops (hub_relay.c). SIGTERM/SIGINT stop it cleanly
 * (requests in flight and running imports finish, the store closes); SIGHUP reloads what can be
 * reloaded (log level and HTTP limits).
 */
#include "main/main.h"

#include "api/api.h"
#include "event/event.h"
#include "geo/geo.h"
#include "health/health.h"
#include "policy/policy.h"
#include "registry/registry.h"
#include "audit/audit.h"
#include "auth/auth.h"
#include "main/hub_alert.h"
#include "main/hub_audit.h"
#include "main/hub_metrics.h"
#include "main/hub_tls.h"
#include "main/hub_relay.h"
#include "net/net.h"
#include "store/store.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

extern char **environ;

static const char ch__serve_usage[] =
    "usage: cctvhub serve [--config FILE] [--data-dir DIR] [--http ADDR:PORT]\n"
    "                     [--rtsp ADDR:PORT] [--store URL] [--log-level LEVEL]\n"
    "\n"
    "Runs the hub: the HTTP API and the media relay (RTSP for viewers).\n"
    "\n"
    "  --config FILE      INI configuration file (keys: README \"Configuration\")\n"
    "  --data-dir DIR     data directory (default ./var; hub.data_dir, CCTVHUB_DATA_DIR)\n"
    "  --http ADDR:PORT   HTTP address (default 127.0.0.1:8080; http.listen,\n"
    "                     CCTVHUB_HTTP_LISTEN); port 0 picks a free port\n"
    "  --rtsp ADDR:PORT   the relay's RTSP address for viewers (default 127.0.0.1:8554;\n"
    "                     rtsp.listen, CCTVHUB_RTSP_LISTEN)\n"
    "  --store URL        store (default sqlite:DATA_DIR/cctvhub.db; store.url)\n"
    "  --log-level LEVEL  debug, info, warn or error (log.level, CCTVHUB_LOG_LEVEL)\n"
    "\n"
    "Precedence: flags > CCTVHUB_* environment > configuration file > defaults.\n"
    "Signals: SIGTERM or SIGINT stop cleanly; SIGHUP reloads log.level and http limits.\n"
    "Exit codes: 0 stopped cleanly; 1 runtime failure; 2 bad command line;\n"
    "            3 bad configuration; 4 store or audit log cannot be opened, or address\n"
    "            cannot be bound.\n";

/*
 * The hub: every part of the daemon, owned here and wired together by the steps below
 * (ch__serve_steps). The parts hold borrowed pointers to each other only.
 */
typedef struct ch_serve {
    uv_loop_t *loop;
    ch_main_opts_t opts;
    ch_config_t cfg;
    int64_t started_at_ms;
    ch_policy_t *policy; /* the services in force (NULL: none); a reload replaces them */
    ch_store_t *store;
    ch_audit_t *audit;
    uint8_t node_pk[32];  /* the node key's public half, for the relay's token checks */
    char rtsp_base[256];  /* the bases of the grants' URLs */
    ch_geo_keeper_t *geo; /* the cameras in memory, following their changes */
    ch_event_engine_t *events;
    ch_main_relay_t *relay;   /* the media relay (hub_relay.c) */
    ch_main_alerts_t *alerts; /* alerts and the MQTT device watch (hub_alert.c) */
    ch_health_t *health;      /* camera health: probes, live figures, transitions */
    /* The registry's use cases and their "cameras changed" notification, fed by the store's
     * change feed; geo, health, the live grants and the relay's sources follow it. */
    ch_registry_t registry;
    ch_http_server_t *http;
    ch_main_tls_t tls;               /* the TLS contexts in force (hub_tls.c); a reload swaps */
    ch_main_metrics_t *metrics;      /* GET /metrics (hub_metrics.c) */
    ch_store_worker_t *store_worker; /* the API's heavy reads, off the loop */
    ch_api_t *api;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t drain_timer;
    uv_timer_t checkpoint_timer; /* a signed checkpoint each second when records were added */
    uv_timer_t event_timer;      /* expiry of grants and events */
    uv_work_t housekeeping;      /* checkpoints, on the pool */
    int housekeeping_running;
    int64_t last_audit_checkpoint; /* ms, written by the pool job only */
    ch_store_t *checkpoint_store;  /* the pool's handle for WAL checkpoints */
    /* The size of the audit checkpoint kept in the store (the pool job's, then the stop's);
     * keeping starts once the log was found to extend the one kept before. */
    uint64_t kept_checkpoint;
    int audit_checked;
    int stopping;
} ch_serve_t;

static int ch__serve_load_services(const ch_config_t *cfg, ch_policy_t **out, int at_start);

/* Camera health's listener: every camera transition goes to the alert rules (a camera offline
 * too long, many cameras of one provider down). */
static void ch__serve_camera_state(void *ud, const ch_health_transition_t *t)
{
    ch_alert_camera_state(ch_main__alerts_engine(ud), t->camera_id, t->agency_id,
                          ch_health_state_name(t->old_state), ch_health_state_name(t->new_state),
                          t->at_ms, t->reason);
}

static void ch__serve_limits(const ch_config_t *cfg, ch_http_limits_t *l)
{
    ch_http_limits_default(l);
    l->max_head = (size_t)cfg->http_max_head;
    l->max_target = (size_t)cfg->http_max_target;
    l->max_headers = (size_t)cfg->http_max_headers;
    l->max_body = (size_t)cfg->http_max_body;
    l->request_timeout_ms = cfg->http_request_timeout_ms;
    l->idle_timeout_ms = cfg->http_idle_timeout_ms;
    l->max_connections = (size_t)cfg->http_max_connections;
    l->max_connections_per_addr = (size_t)cfg->http_max_connections_per_addr;
    l->fd_reserve = (size_t)cfg->http_fd_reserve; /* not reloadable: the start's stays */
}

/*
 * Raises the soft descriptor limit to the hard one: the relay's and HTTP's caps are checked
 * against it (ch_media_relay_start refuses caps that do not fit), and both stop accepting
 * connections before the last descriptors, which stay for the audit log and the store.
 */
static void ch__serve_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }
    rlim_t was = rl.rlim_cur;
    if (rl.rlim_cur != rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            rl.rlim_cur = was;
        }
    }
    ch_log(CH_LOG_INFO, "main", "msg=\"descriptor limit\" nofile=%llu was=%llu",
           (unsigned long long)rl.rlim_cur, (unsigned long long)was);
}

/* Last step of the stop: every handle is closed, so the loop ends and main closes the store. */
static void ch__serve_drained(ch_serve_t *s)
{
    uv_close((uv_handle_t *)&s->drain_timer, NULL);
    uv_close((uv_handle_t *)&s->checkpoint_timer, NULL);
    uv_close((uv_handle_t *)&s->event_timer, NULL);
    uv_close((uv_handle_t *)&s->sig_term, NULL);
    uv_close((uv_handle_t *)&s->sig_int, NULL);
    uv_close((uv_handle_t *)&s->sig_hup, NULL);
    /* Closing the last watcher restores the default action, which would kill us if another
     * SIGTERM came while the store closes: we are stopping already, so ignore them. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
}

/* Imports run on the thread pool and hold their own store handle: wait for them before the
 * API and the store go away. */
static void ch__serve_drain_tick(uv_timer_t *t)
{
    ch_serve_t *s = t->data;
    if (s->api != NULL && ch_api_in_flight(s->api) > 0) {
        return;
    }
    uv_timer_stop(t);
    ch__serve_drained(s);
}

static void ch__serve_http_closed(void *ud)
{
    ch_serve_t *s = ud;
    s->http = NULL;
    ch_health_stop(s->health); /* its probes and timer close with the loop's last turns */
    ch_main__alerts_close(s->alerts);
    ch_api_close(s->api); /* no request can start a batch of opens any more */
    ch_log(CH_LOG_INFO, "main", "msg=\"http server closed\"");
    uv_timer_start(&s->drain_timer, ch__serve_drain_tick, 0, 50);
}

static void ch__serve_stop(ch_serve_t *s, const char *why)
{
    if (s->stopping) {
        return;
    }
    s->stopping = 1;
    ch_log(CH_LOG_INFO, "main", "msg=stopping signal=%s in_flight=%zu", why,
           ch_http_server_in_flight(s->http));
    ch_http_server_shutdown(s->http, ch__serve_http_closed, s);
}

/* A reload that changed nothing: its reason in the log (error) and, since reloads are
 * audited, a config.reload record with outcome "error" and the reason. */
static void ch__serve_reload_refused(ch_serve_t *s, const char *msg, const char *why)
{
    ch_buf_t b;
    ch_buf_init(&b);
    ch_log_quote(&b, why);
    ch_log(CH_LOG_ERROR, "main", "msg=\"%s\" error=%s", msg, b.data);
    ch_buf_fini(&b);
    ch_audit_entry_t e = {
        .actor = "system", .action = "config.reload", .object = "config", .outcome = "error"};
    json_t *details = json_pack("{s:s?, s:s, s:s?}", "file", s->opts.config_file, "error", why,
                                "policy.services_file", s->cfg.services_file);
    e.details = details;
    if (ch_audit_append(s->audit, &e, NULL) != 0) {
        ch_log(CH_LOG_ERROR, "main", "msg=\"refused reload not audited\"");
    }
    json_decref(details);
}

/* A TLS handshake on the HTTP listener failed: on the record (hub_audit.c). */
static void ch__serve_tls_refused(void *ud, const char *peer, const char *reason)
{
    ch_serve_t *s = ud;
    ch_main__audit_tls_refusal(s->audit, "https", peer, reason);
}

/* Whether each listener speaks TLS, and whether a plaintext one is open beyond loopback (an
 * administrator's allow_plaintext: worth an alert). */
static void ch__serve_collect_listeners(ch_metrics_writer_t *w, void *ud)
{
    ch_serve_t *s = ud;
    struct {
        const char *name, *addr;
        int tls;
    } l[] = {{"http", s->cfg.http_listen, s->tls.http != NULL},
             {"rtsp", s->cfg.rtsp_listen, 0},
             {"rtsps", s->cfg.rtsps_listen, 1}};
    if (ch_metrics_family(w, "cctvhub_listener_tls", CH_METRICS_GAUGE,
                          "1 for a listener that speaks TLS, 0 for a plaintext one.") == 0) {
        for (size_t i = 0; i < CH_ARRAY_SIZE(l); i++) {
            if (l[i].addr != NULL) {
                ch_metrics_label_t lb[2] = {{"listener", l[i].name}, {"address", l[i].addr}};
                ch_metrics_value_u64(w, lb, 2, (uint64_t)l[i].tls);
            }
        }
    }
    if (ch_metrics_family(w, "cctvhub_listener_plaintext_exposed", CH_METRICS_GAUGE,
                          "1 for a plaintext listener beyond loopback (allow_plaintext).") == 0) {
        for (size_t i = 0; i < CH_ARRAY_SIZE(l); i++) {
            if (l[i].addr != NULL && !l[i].tls) {
                ch_metrics_label_t lb[2] = {{"listener", l[i].name}, {"address", l[i].addr}};
                ch_metrics_value_u64(w, lb, 2, !ch_config_listen_is_loopback(l[i].addr));
            }
        }
    }
}

/* The TLS contexts in s->tls go to the listeners (new connections take them). */
static void ch__serve_tls_apply(ch_serve_t *s, const ch_config_t *cfg)
{
    ch_http_server_set_tls(s->http, s->tls.http, cfg->tls_handshake_timeout_ms,
                           s->tls.http != NULL ? cfg->http_hsts_max_age_s : 0,
                           ch__serve_tls_refused, s);
    ch_main__relay_set_tls(s->relay, s->tls.rtsps, cfg->tls_handshake_timeout_ms);
}

/* SIGHUP: read the configuration again (file, environment, the same flags); apply what can
 * change while running and say which changes need a restart. A bad file (or a path that is no
 * longer a regular file) keeps the old configuration running, and so does one that would leave
 * no services where there were some: every event would then be refused, a silent outage. */
static void ch__serve_reload(ch_serve_t *s)
{
    ch_config_t next;
    char *err = NULL;
    if (ch_config_load(&next, s->opts.config_file, environ, s->opts.overrides, s->opts.n_overrides,
                       &err) != 0) {
        ch__serve_reload_refused(s, "reload failed; configuration unchanged",
                                 err ? err : "unknown");
        ch_free(err);
        return;
    }
    /* Services configured by name stay named: a file that no longer names them would drop
     * them (or fall back to the shipped ones, which may serve more than the operator chose). */
    if (s->cfg.services_file != NULL &&
        (next.services_file == NULL ||
         (next.services_file_default && !s->cfg.services_file_default))) {
        ch__serve_reload_refused(s, "reload refused; configuration unchanged",
                                 "policy.services_file: no longer set; the services in force "
                                 "stay (name a services file, or restart to run without)");
        ch_config_fini(&next);
        return;
    }
    if (strcmp(next.http_listen, s->cfg.http_listen) != 0) {
        ch_log(CH_LOG_WARN, "main", "msg=\"change needs a restart\" key=http.listen");
    }
    if (strcmp(next.data_dir, s->cfg.data_dir) != 0) {
        ch_log(CH_LOG_WARN, "main", "msg=\"change needs a restart\" key=hub.data_dir");
    }
    if (strcmp(next.store_url, s->cfg.store_url) != 0) {
        ch_log(CH_LOG_WARN, "main", "msg=\"change needs a restart\" key=store.url");
    }
    /* The certificates are read again (a renewed one takes effect for new connections; open
     * ones keep theirs); turning TLS on or off, or a new listener, needs a restart. */
    ch_main_tls_t tls;
    char tls_err[256];
    int tls_same = (next.tls_cert != NULL) == (s->cfg.tls_cert != NULL) &&
                   ch_config_http_tls(&next) == ch_config_http_tls(&s->cfg) &&
                   (next.rtsps_listen != NULL) == (s->cfg.rtsps_listen != NULL);
    if (!tls_same) {
        ch_log(CH_LOG_WARN, "main", "msg=\"change needs a restart\" key=tls.cert");
    } else if (ch_main__tls_load(&next, &tls, tls_err, sizeof(tls_err)) != 0) {
        ch__serve_reload_refused(s, "reload refused; configuration unchanged", tls_err);
        ch_config_fini(&next);
        return;
    } else {
        ch_main__tls_fini(&s->tls);
        s->tls = tls;
        ch__serve_tls_apply(s, &next);
        ch_log(CH_LOG_INFO, "main", "msg=\"TLS certificates reloaded\" cert=%s",
               next.tls_cert != NULL ? next.tls_cert : "(none)");
    }
    ch_http_limits_t limits;
    ch__serve_limits(&next, &limits);
    ch_http_server_set_limits(s->http, &limits);
    ch_log_set_level(next.log_level);
    /* Keep the non-reloadable values in force; take the reloadable ones. */
    s->cfg.log_level = next.log_level;
    s->cfg.http_max_head = next.http_max_head;
    s->cfg.http_max_target = next.http_max_target;
    s->cfg.http_max_headers = next.http_max_headers;
    s->cfg.http_max_body = next.http_max_body;
    s->cfg.http_request_timeout_ms = next.http_request_timeout_ms;
    s->cfg.http_idle_timeout_ms = next.http_idle_timeout_ms;
    s->cfg.http_max_connections = next.http_max_connections;
    s->cfg.http_max_connections_per_addr = next.http_max_connections_per_addr;
    ch_policy_t *services = NULL;
    if (ch__serve_load_services(&next, &services, 0) == 0) {
        /* The engine and the API read the services through the hub: the engine is told, the
         * API reads s->policy at each request. */
        ch_event_set_policy(s->events, services);
        ch_policy_free(s->policy);
        s->policy = services;
        ch_free(s->cfg.services_file);
        s->cfg.services_file = ch_strdup(next.services_file);
        s->cfg.services_file_default = next.services_file_default;
    }
    ch_config_fini(&next);
    ch_audit_entry_t e = {
        .actor = "system", .action = "config.reload", .object = "config", .outcome = "ok"};
    json_t *details = json_pack(
        "{s:s?, s:s?, s:I, s:I, s:I, s:I}", "file", s->opts.config_file, "policy.services_file",
        s->cfg.services_file, "http.max_body", (json_int_t)s->cfg.http_max_body, "http.max_head",
        (json_int_t)s->cfg.http_max_head, "http.request_timeout_ms",
        (json_int_t)s->cfg.http_request_timeout_ms, "log.level", (json_int_t)s->cfg.log_level);
    e.details = details;
    if (ch_audit_append(s->audit, &e, NULL) != 0) {
        ch_log(CH_LOG_ERROR, "main", "msg=\"reload applied but not audited\"");
    }
    json_decref(details);
    ch_log(CH_LOG_INFO, "main", "msg=reloaded max_body=%llu request_timeout_ms=%llu",
           (unsigned long long)s->cfg.http_max_body,
           (unsigned long long)s->cfg.http_request_timeout_ms);
}

static void ch__serve_event_tick(uv_timer_t *t)
{
    ch_serve_t *s = t->data;
    if (ch_api_tick(s->api) < 0) {
        ch_log(CH_LOG_ERROR, "event", "msg=\"expiry tick failed\"");
    }
    /* What other handles committed (an import, the store worker, a command beside the hub)
     * reaches the followers of the loop's handle: one PRAGMA when nothing did. A batch of opens
     * still open (CH_EAGAIN) waits for the next tick. */
    int rc = ch_store_feed_poll(s->store);
    if (rc != 0 && rc != CH_EAGAIN) {
        ch_log(CH_LOG_ERROR, "store", "msg=\"store changes not read\" error=\"%s\"",
               ch_store_errmsg(s->store));
    }
}

/* On the pool: the signed audit checkpoint (every audit.checkpoint_ms) and, five times a
 * second, the store's WAL checkpoint: both wait for the disk, so the loop never does; small
 * and frequent WAL checkpoints keep each flush short, since a large one delays the audit log's
 * fdatasync on the same disk. The store checkpoint has a handle
 * of its own (a handle is single-threaded); one job runs at a time. */
static void ch__serve_housekeeping_work(uv_work_t *w)
{
    ch_serve_t *s = w->data;
    int64_t now = ch_time_now_ms();
    if (now - s->last_audit_checkpoint >= (int64_t)s->cfg.audit_checkpoint_ms) {
        s->last_audit_checkpoint = now;
        if (ch_audit_checkpoint_now(s->audit) != 0) {
            ch_log(CH_LOG_ERROR, "audit", "msg=\"checkpoint failed\"");
        }
    }
    /* The counted refusals whose interval is over become one record each. */
    (void)ch_audit_refusals_flush(s->audit, 0);
    if (s->checkpoint_store == NULL) {
        char *err = NULL;
        if (ch_store_open(s->cfg.store_url, &s->checkpoint_store, &err) != 0) {
            ch_log(CH_LOG_WARN, "store", "msg=\"no handle for WAL checkpoints\"");
            ch_free(err);
            return;
        }
    }
    /* The latest signed checkpoint, kept in the store too (a second place to cut). */
    (void)ch_audit_kept_update(s->audit, &ch_main__store_keeper, s->checkpoint_store,
                               &s->kept_checkpoint);
    if (ch_store_maintain(s->checkpoint_store, CH_STORE_MAINTAIN_NOW) != 0) {
        ch_log(CH_LOG_WARN, "store", "msg=\"WAL checkpoint failed\" error=\"%s\"",
               ch_store_errmsg(s->checkpoint_store));
    }
}

static void ch__serve_housekeeping_done(uv_work_t *w, int status)
{
    ch_serve_t *s = w->data;
    CH_UNUSED(status);
    s->housekeeping_running = 0;
    ch_api_flush(s->api);
    /* The pool's checkpoint copied the log up to where it started; what the loop wrote
     * meanwhile is small. Copying it here completes the checkpoint, so that the next write
     * starts the WAL over instead of growing it for ever under steady load. */
    if (s->store != NULL && ch_store_maintain(s->store, CH_STORE_MAINTAIN_NOW) != 0) {
        ch_log(CH_LOG_WARN, "store", "msg=\"WAL checkpoint failed\"");
    }
}

static void ch__serve_checkpoint_tick(uv_timer_t *t)
{
    ch_serve_t *s = t->data;
    /* Records that commands (cctvhub user, apikey) left while this hub held the log. */
    ch_api_flush(s->api);
    (void)ch_auth_outbox_drain(s->store, ch_audit_append_queued, s->audit);
    if (!s->housekeeping_running) {
        s->housekeeping.data = s;
        if (uv_queue_work(s->loop, &s->housekeeping, ch__serve_housekeeping_work,
                          ch__serve_housekeeping_done) == 0) {
            s->housekeeping_running = 1;
        }
    }
}

/* Loads policy.services_file into *out (NULL when none is configured) and logs which file it
 * loaded. On failure prints or logs the reason naming the key and returns CH_EINVAL. */
static int ch__serve_load_services(const ch_config_t *cfg, ch_policy_t **out, int at_start)
{
    *out = NULL;
    if (cfg->services_file == NULL) {
        return 0;
    }
    char *err = NULL;
    int rc = ch_policy_load_file(cfg->services_file, out, &err);
    if (rc == 0) {
        /* Which file is in force, in the log: the shipped one is found, not configured. */
        ch_buf_t q;
        ch_buf_init(&q);
        ch_log_quote(&q, cfg->services_file);
        ch_log(CH_LOG_INFO, "policy", "msg=\"services loaded\" file=%s services=%zu shipped=%d",
               q.data, ch_policy_count(*out), cfg->services_file_default);
        ch_buf_fini(&q);
    } else {
        if (at_start) {
            fprintf(stderr, "cctvhub: configuration error: policy.services_file: %s\n",
                    err ? err : cfg->services_file);
        } else {
            ch_buf_t b;
            ch_buf_init(&b);
            ch_log_quote(&b, err ? err : "unknown");
            ch_log(CH_LOG_ERROR, "main",
                   "msg=\"services file not reloaded; the previous one stays\" error=%s", b.data);
            ch_buf_fini(&b);
        }
        ch_free(err);
        return CH_EINVAL;
    }
    return 0;
}

static void ch__serve_on_signal(uv_signal_t *h, int signum)
{
    ch_serve_t *s = h->data;
    if (signum == SIGHUP) {
        if (!s->stopping) {
            ch__serve_reload(s);
        }
        return;
    }
    ch__serve_stop(s, signum == SIGTERM ? "TERM" : "INT");
}

/* ---- the hub's steps ------------------------------------------------------------------------ */

/*
 * Each part of the hub is one step: start builds it from the parts before it (0, or prints
 * why and returns a CH_EXIT_* code, having undone its own partial work), stop undoes it. The
 * steps start in order; a failed start stops the steps already started, in reverse; once the
 * loop has ended (SIGTERM or SIGINT drained the HTTP server, ch__serve_http_closed), every
 * step stops, in reverse. A stop must also work after a later step failed, the loop then never
 * run: handles it closes get one more turn of the loop (UV_RUN_NOWAIT) before they are freed.
 */
typedef struct ch_serve_step {
    const char *name;
    int (*start)(ch_serve_t *s);
    void (*stop)(ch_serve_t *s);
} ch_serve_step_t;

/* Configuration first: a broken services file stops the start before anything is touched. */
static int ch__serve_policy_start(ch_serve_t *s)
{
    return ch__serve_load_services(&s->cfg, &s->policy, 1) == 0 ? CH_EXIT_OK : CH_EXIT_CONFIG;
}

static void ch__serve_policy_stop(ch_serve_t *s)
{
    ch_policy_free(s->policy);
    s->policy = NULL;
}

static int ch__serve_store_start(ch_serve_t *s)
{
    int mk = ch_main__mkdir_p(s->cfg.data_dir);
    if (mk != 0) {
        fprintf(stderr, "cctvhub serve: cannot create data directory %s: %s\n", s->cfg.data_dir,
                ch_strerror(mk));
        return CH_EXIT_STORE;
    }
    char *err = NULL;
    if (ch_store_open(s->cfg.store_url, &s->store, &err) != 0) {
        fprintf(stderr, "cctvhub serve: cannot open the store: %s\n", err ? err : "unknown");
        ch_free(err);
        return CH_EXIT_STORE;
    }
    return CH_EXIT_OK;
}

static void ch__serve_store_stop(ch_serve_t *s)
{
    ch_store_close(s->checkpoint_store);
    s->checkpoint_store = NULL;
    if (s->store != NULL && ch_store_maintain(s->store, CH_STORE_MAINTAIN_NOW) != 0) {
        ch_log(CH_LOG_WARN, "store", "msg=\"last WAL checkpoint failed\"");
    }
    ch_store_close(s->store);
    s->store = NULL;
}

static void ch__serve_audit_stop(ch_serve_t *s)
{
    if (s->audit != NULL && s->audit_checked && s->store != NULL) {
        /* The last checkpoint, kept in the store too: refusals still counted first. */
        (void)ch_audit_refusals_flush(s->audit, 1);
        if (ch_audit_checkpoint_now(s->audit) != 0) {
            ch_log(CH_LOG_ERROR, "audit", "msg=\"last checkpoint failed\"");
        }
        (void)ch_audit_kept_update(s->audit, &ch_main__store_keeper, s->store, &s->kept_checkpoint);
    }
    ch_audit_close(s->audit); /* writes a last checkpoint */
    s->audit = NULL;
}

static int ch__serve_audit_start(ch_serve_t *s)
{
    int rc = ch_main__audit_open(&s->cfg, 1, &s->audit);
    if (rc != CH_EXIT_OK) {
        return rc;
    }
    /* A log cut at its end (its checkpoints file deleted) no longer matches the checkpoint
     * the store kept: refuse to sign fresh checkpoints over it. */
    rc = ch_main__audit_check_kept(&s->cfg, s->audit, s->store);
    if (rc != CH_EXIT_OK) {
        ch_audit_close_unsigned(s->audit); /* sign nothing over it */
        s->audit = NULL;
        return rc;
    }
    s->audit_checked = 1;
    (void)ch_audit_kept_update(s->audit, &ch_main__store_keeper, s->store, &s->kept_checkpoint);
    if (ch_store_maintain(s->store, CH_STORE_MAINTAIN_DEFER) != 0) {
        ch_log(CH_LOG_WARN, "store", "msg=\"WAL checkpoints stay on the loop\"");
    }
    if (ch_auth_outbox_drain(s->store, ch_audit_append_queued, s->audit) != 0) {
        fprintf(stderr, "cctvhub serve: the audit outbox cannot be appended: %s\n",
                ch_store_errmsg(s->store));
        ch__serve_audit_stop(s);
        return CH_EXIT_STORE;
    }
    return CH_EXIT_OK;
}

static int ch__serve_loop_start(ch_serve_t *s)
{
    signal(SIGPIPE, SIG_IGN);
    s->loop = uv_default_loop();
    s->started_at_ms = ch_time_now_ms();
    return CH_EXIT_OK;
}

static void ch__serve_loop_stop(ch_serve_t *s)
{
    uv_loop_close(s->loop);
    s->loop = NULL;
}

/* The cameras in memory, for the geo routes, event selection and the bell: the hub's, kept in
 * step with the cameras' changes (ch__serve_geo_follows); readers find it in the keeper's slot. */
static int ch__serve_geo_start(ch_serve_t *s)
{
    if (ch_geo_keeper_new(s->loop, s->store, s->cfg.store_url, &s->geo) != 0) {
        ch_log(CH_LOG_ERROR, "api", "msg=\"cameras could not be loaded for the geo index\"");
        fprintf(stderr, "cctvhub serve: cannot start the API\n");
        return CH_EXIT_FAILURE;
    }
    const ch_geo_t *idx = *ch_geo_keeper_slot(s->geo);
    ch_log(CH_LOG_INFO, "geo", "msg=\"index loaded\" cameras=%zu bytes=%zu", ch_geo_count(idx),
           ch_geo_memory_bytes(idx));
    return CH_EXIT_OK;
}

static void ch__serve_geo_stop(ch_serve_t *s)
{
    ch_geo_keeper_free(s->geo);
    s->geo = NULL;
}

/* The geo index was replaced (a copy while a query reads the old one, a reload): the events
 * engine decides on the new one. */
static void ch__serve_geo_swapped(void *ud, ch_geo_t *idx)
{
    ch_serve_t *s = ud;
    ch_event_set_geo(s->events, idx);
}

/* The events engine: view tokens signed with the node key (the one that signs the audit log),
 * its live events restored from the store and the audit index before anything is served. */
static int ch__serve_events_start(ch_serve_t *s)
{
    ch_audit_key_t node_key;
    char *kerr = NULL;
    memset(&node_key, 0, sizeof(node_key));
    if (ch_audit_keys_load(s->cfg.data_dir, &node_key, &kerr) != 0 || !node_key.has_secret) {
        fprintf(stderr, "cctvhub serve: cannot load the node key: %s\n", kerr ? kerr : "no secret");
        ch_free(kerr);
        ch_audit_key_wipe(&node_key);
        return CH_EXIT_STORE;
    }
    double bounds[4];
    if (ch_config_parse_bounds(s->cfg.event_bounds, bounds) != 0) {
        bounds[0] = bounds[1] = bounds[2] = bounds[3] = 0; /* checked at load; not reached */
    }
    snprintf(s->rtsp_base, sizeof(s->rtsp_base), "rtsp://%s", s->cfg.rtsp_listen);
    ch_event_config_t ecfg = {.st = s->store,
                              .audit = s->audit,
                              .sk = node_key.sk,
                              .rtsp_base = s->rtsp_base,
                              .min_lon = bounds[0],
                              .min_lat = bounds[1],
                              .max_lon = bounds[2],
                              .max_lat = bounds[3],
                              .grace_ms = (int64_t)s->cfg.event_grace_s * 1000};
    s->events = ch_event_engine_new(&ecfg);
    memcpy(s->node_pk, node_key.pk, sizeof(s->node_pk));
    ch_audit_key_wipe(&node_key); /* the events engine keeps its own copy */
    ch_event_set_geo(s->events, *ch_geo_keeper_slot(s->geo));
    ch_geo_keeper_on_swap(s->geo, ch__serve_geo_swapped, s);
    ch_event_set_policy(s->events, s->policy);
    if ((s->audit != NULL && ch_api_audit_index_sync(s->audit, s->store) != 0) ||
        ch_event_restore(s->events) != 0) {
        ch_log(CH_LOG_ERROR, "event", "msg=\"live events could not be restored\" error=\"%s\"",
               ch_store_errmsg(s->store));
        fprintf(stderr, "cctvhub serve: cannot start the API\n");
        ch_event_engine_free(s->events);
        s->events = NULL;
        return CH_EXIT_FAILURE;
    }
    /* Cameras taken out of service while no hub could end their grants (an import from the
     * command line, a stop between a camera's change and the end of its grants) lose them
     * now, before any viewer is admitted. */
    int n = ch_event_end_inactive_camera_grants(s->events, "system");
    if (n > 0) {
        ch_log(CH_LOG_WARN, "event",
               "msg=\"grants of cameras out of service ended at start\" grants=%d", n);
    }
    return CH_EXIT_OK;
}

static void ch__serve_events_stop(ch_serve_t *s)
{
    ch_geo_keeper_on_swap(s->geo, NULL, NULL);
    ch_event_engine_free(s->events);
    s->events = NULL;
}

/* The HTTP server comes before the API (its port goes into the grants' URLs and the
 * console's policy), so it reaches the API through the hub; nothing is served before the
 * loop runs, by which time the API exists. */
static void ch__serve_handle(ch_http_request_t *req, void *ud)
{
    ch_serve_t *s = ud;
    if (s->api == NULL) { /* only while a failed start drains the server */
        ch_http_respond_error(req, 503, "unavailable", "the hub is not started", NULL);
        return;
    }
    ch_api_handle(req, s->api);
}

static size_t ch__serve_body_limit(const ch_http_request_t *req, void *ud)
{
    ch_serve_t *s = ud;
    return s->api != NULL ? ch_api_body_limit(req, s->api) : 0;
}

static void ch__serve_http_stop(ch_serve_t *s)
{
    if (s->http != NULL) { /* a failed start; a stop by signal shut it down already */
        ch_http_server_shutdown(s->http, NULL, NULL);
        s->http = NULL;
        uv_run(s->loop, UV_RUN_DEFAULT);
    }
    ch_main__tls_fini(&s->tls);
}

static int ch__serve_http_start(ch_serve_t *s)
{
    char tls_err[256];
    if (ch_main__tls_load(&s->cfg, &s->tls, tls_err, sizeof(tls_err)) != 0) {
        fprintf(stderr, "cctvhub serve: %s\n", tls_err);
        return CH_EXIT_CONFIG;
    }
    static const struct {
        const char *key;
        size_t listen, allow;
    } plain[] = {
        {"http", offsetof(ch_config_t, http_listen), offsetof(ch_config_t, http_allow_plaintext)},
        {"rtsp", offsetof(ch_config_t, rtsp_listen), offsetof(ch_config_t, rtsp_allow_plaintext)}};
    for (size_t i = 0; i < CH_ARRAY_SIZE(plain); i++) {
        const char *listen = *(char *const *)((const char *)&s->cfg + plain[i].listen);
        uint64_t allow = *(const uint64_t *)((const char *)&s->cfg + plain[i].allow);
        if ((i > 0 || s->tls.http == NULL) && allow && !ch_config_listen_is_loopback(listen)) {
            ch_log(CH_LOG_WARN, "main",
                   "msg=\"plaintext beyond this machine: credentials and video cross the "
                   "network in clear\" listener=%s addr=%s key=%s.allow_plaintext",
                   plain[i].key, listen, plain[i].key);
        }
    }
    ch_http_limits_t limits;
    ch__serve_limits(&s->cfg, &limits);
    if (ch_http_server_new(s->loop, &limits, ch__serve_handle, ch__serve_body_limit, s, &s->http) !=
        0) {
        fprintf(stderr, "cctvhub serve: cannot create the HTTP server\n");
        return CH_EXIT_FAILURE;
    }
    if (s->cfg.http_trusted_proxies != NULL) {
        ch_cidr_t nets[CH_CIDR_MAX];
        int n = ch_config_parse_cidrs(s->cfg.http_trusted_proxies, nets, CH_CIDR_MAX);
        if (n > 0) { /* checked at load */
            ch_http_server_set_trusted_proxies(s->http, nets, (size_t)n);
        }
    }
    ch__serve_tls_apply(s, &s->cfg);
    int lrc = ch_http_server_listen(s->http, s->cfg.http_listen);
    if (lrc != 0) {
        fprintf(stderr, "cctvhub serve: cannot listen on %s (http.listen): %s\n",
                s->cfg.http_listen, ch_strerror(lrc));
        ch__serve_http_stop(s);
        return CH_EXIT_STORE;
    }
    return CH_EXIT_OK;
}

/* The relay: its own threads; the engine's notices keep it in step with the grants. */
static int ch__serve_relay_start(ch_serve_t *s)
{
    return ch_main__relay_start(&s->cfg, s->tls.rtsps, s->audit, s->node_pk, s->store,
                                s->tls.client, &s->relay);
}

static void ch__serve_relay_stop(ch_serve_t *s)
{
    ch_main__relay_stop(s->relay); /* viewers' view.end records, before the log closes */
    s->relay = NULL;
}

/* The bell's cameras: the index in force. */
static const ch_geo_t *ch__serve_geo(void *ud)
{
    ch_serve_t *s = ud;
    return *ch_geo_keeper_slot(s->geo);
}

/* Alerts and devices over MQTT (hub_alert.c). */
static int ch__serve_alerts_start(ch_serve_t *s)
{
    return ch_main__alerts_start(s->loop, &s->cfg, s->store, s->tls.client, ch__serve_geo, s,
                                 &s->alerts);
}

static void ch__serve_alerts_stop(ch_serve_t *s)
{
    ch_main__alerts_close(s->alerts); /* done already when the HTTP server closed */
    uv_run(s->loop, UV_RUN_NOWAIT);
    ch_main__alerts_free(s->alerts);
    s->alerts = NULL;
}

/* Camera health on this loop: probes, the relay's live figures, transitions stored. Its
 * transitions feed the alert rules. */
static int ch__serve_health_start(ch_serve_t *s)
{
    ch_health_config_t hc = {
        .probe_interval_s = (unsigned)s->cfg.health_probe_interval,
        .concurrency = (unsigned)s->cfg.health_probe_concurrency,
        .timeout_s = (unsigned)s->cfg.health_probe_timeout_s,
        .fail_threshold = (unsigned)s->cfg.health_fail_threshold,
        .min_fps = (unsigned)s->cfg.health_min_fps,
        .keyframe_max_s = (unsigned)s->cfg.health_keyframe_max_s,
        .rescan_s = (unsigned)s->cfg.health_rescan_s,
        .tls = s->tls.client, /* rtsps:// cameras */
        .tls_handshake_ms = s->cfg.tls_handshake_timeout_ms,
    };
    s->health = ch_health_new(&hc);
    ch_health_set_listener(s->health, ch__serve_camera_state, s->alerts);
    char herr[256];
    if (ch_health_start(s->health, s->loop, s->cfg.store_url, ch_main__relay_health, s->relay, herr,
                        sizeof(herr)) != 0) {
        fprintf(stderr, "cctvhub serve: %s\n", herr);
        ch_health_free(s->health);
        s->health = NULL;
        return CH_EXIT_STORE;
    }
    return CH_EXIT_OK;
}

static void ch__serve_health_stop(ch_serve_t *s)
{
    ch_health_stop(s->health); /* done already when the HTTP server closed */
    uv_run(s->loop, UV_RUN_NOWAIT);
    ch_health_free(s->health);
    s->health = NULL;
}

/* The registry GET /metrics renders; every part adds its collector once the API has added
 * its own (ch__serve_api_start), in the order a reader of the page expects. */
static int ch__serve_metrics_start(ch_serve_t *s)
{
    s->metrics = ch_main__metrics_new(s->http, s->started_at_ms);
    return CH_EXIT_OK;
}

static void ch__serve_metrics_stop(ch_serve_t *s)
{
    ch_main__metrics_free(s->metrics);
    s->metrics = NULL;
}

/* ---- what follows a committed camera change (the registry's subscribers) ------------------ */

static void ch__serve_settle_release(void *ud)
{
    ch_registry_settle_release(ud);
}

/* The geo index: each camera changed, or a reload for many (off the loop), which whoever
 * announced them waits for (an import answers once its cameras are found). */
static void ch__serve_geo_follows(void *ud, const ch_registry_change_t *change)
{
    ch_serve_t *s = ud;
    if (change->what & CH_REGISTRY_CAMERAS_MANY) {
        ch_registry_settle_hold(change->settle);
        ch_geo_keeper_reload(s->geo, ch__serve_settle_release, change->settle);
        return;
    }
    for (size_t i = 0; i < change->count; i++) {
        const ch_camera_t *cam = change->count == 1 && !(change->what & CH_REGISTRY_CAMERA_DELETED)
                                     ? change->camera
                                     : NULL;
        ch_geo_keeper_camera(s->geo, change->ids[i], cam);
    }
}

/* Health's set of cameras to probe, at its next rescan. */
static void ch__serve_health_follows(void *ud, const ch_registry_change_t *change)
{
    (void)change;
    ch_serve_t *s = ud;
    ch_health_changed(s->health);
}

/* Ends the live and pending grants of cameras deleted or taken out of service (only active
 * cameras are granted): their viewers are cut and the records say why and who. A change of many
 * cameras that updated some (a re-import: a D row is inactive, a row without a position
 * unlocated) looks at every granted camera. */
static void ch__serve_grants_follow(void *ud, const ch_registry_change_t *change)
{
    ch_serve_t *s = ud;
    if (change->what & CH_REGISTRY_CAMERAS_MANY) {
        int n = (change->what & CH_REGISTRY_CAMERA_UPDATED)
                    ? ch_event_end_inactive_camera_grants(s->events, change->actor)
                    : 0;
        if (n > 0) {
            ch_log(CH_LOG_INFO, "api",
                   "msg=\"grants of cameras an import took out of service ended\" grants=%d", n);
        }
        return;
    }
    const char *reason = (change->what & CH_REGISTRY_CAMERA_DELETED)    ? "camera_removed"
                         : (change->what & CH_REGISTRY_CAMERA_INACTIVE) ? "camera_deactivated"
                                                                        : NULL;
    for (size_t i = 0; reason != NULL && i < change->count; i++) {
        int n = ch_event_end_camera_grants(s->events, change->actor, change->ids[i], reason);
        if (n > 0) {
            ch_log(CH_LOG_INFO, "api",
                   "msg=\"live grants of the camera ended\" camera=%lld grants=%d reason=%s",
                   (long long)change->ids[i], n, reason);
        }
    }
}

/* The relay's sources: a camera deleted or out of service has none (its running pull stops
 * rather than reconnect to the old URL); a changed stream restarts the pull against the new
 * settings. Imports never change stream settings. */
static void ch__serve_source_follows(void *ud, const ch_registry_change_t *change)
{
    ch_serve_t *s = ud;
    for (size_t i = 0; i < change->count; i++) {
        if (change->what & (CH_REGISTRY_CAMERA_DELETED | CH_REGISTRY_CAMERA_INACTIVE)) {
            ch_main__relay_camera_gone(s->relay, change->ids[i]);
        } else if (change->what & CH_REGISTRY_CAMERA_SOURCE) {
            ch_main__relay_camera_source(s->relay, change->ids[i]);
        }
    }
}

/* The registry of the loop's store handle: the store's change feed of cameras drives its
 * notification, and the followers subscribe in the order they run. */
static int ch__serve_registry_start(ch_serve_t *s)
{
    static const ch_registry_cameras_fn followers[] = {
        ch__serve_geo_follows, ch__serve_health_follows, ch__serve_grants_follow,
        ch__serve_source_follows};
    ch_registry_init(&s->registry, s->store);
    for (size_t i = 0; i < CH_ARRAY_SIZE(followers); i++) {
        if (ch_registry_subscribe(&s->registry, followers[i], s) != 0) {
            return CH_EXIT_FAILURE; /* more than CH_REGISTRY_MAX_SUBSCRIBERS: not reached */
        }
    }
    if (ch_registry_watch(&s->registry) != 0) {
        fprintf(stderr, "cctvhub serve: cannot follow the store's camera changes\n");
        return CH_EXIT_FAILURE;
    }
    return CH_EXIT_OK;
}

static void ch__serve_registry_stop(ch_serve_t *s)
{
    ch_registry_fini(&s->registry);
}

/* The grants' URLs point at the addresses actually bound (port 0 picks one); behind a proxy
 * or on 0.0.0.0, the addresses viewers use are configured. ws_base stays "" when http.listen
 * does not parse (checked at load; not reached). */
static void ch__serve_urls(ch_serve_t *s, char *ws_base, size_t cap)
{
    char h[64];
    int p = 0;
    ws_base[0] = '\0';
    if (ch_config_parse_listen(s->cfg.http_listen, h, &p) != 0) {
        return;
    }
    snprintf(ws_base, cap, "%s://%s:%d", s->tls.http != NULL ? "wss" : "ws", h,
             ch_http_server_port(s->http));
    ch_main__relay_base(s->relay, s->rtsp_base, sizeof(s->rtsp_base)); /* rtsps:// with RTSPS */
    const char *rtsp_public =
        ch_main__relay_tls(s->relay) ? s->cfg.rtsps_public_url : s->cfg.rtsp_public_url;
    if (rtsp_public != NULL) {
        snprintf(s->rtsp_base, sizeof(s->rtsp_base), "%s", rtsp_public);
    }
    if (s->cfg.http_public_url != NULL) {
        int tls = strncmp(s->cfg.http_public_url, "https://", 8) == 0;
        snprintf(ws_base, cap, "%s%s", tls ? "wss://" : "ws://",
                 s->cfg.http_public_url + (tls ? 8 : 7));
    }
    ch_event_set_urls(s->events, s->rtsp_base, ws_base);
}

/* The store worker: a thread with its own handle on the store, for the reads and the
 * registry's changes the API must not make the loop wait for (ch_api_services_t.store_worker)
 * and the alert engine's writes; what it commits is told to the watchers of the loop's handle
 * (the registry's feed, the alerts'). */
static int ch__serve_store_worker_start(ch_serve_t *s)
{
    char *err = NULL;
    if (ch_store_worker_open(s->loop, s->cfg.store_url, &s->store_worker, &err) != 0) {
        fprintf(stderr, "cctvhub serve: cannot start the store worker: %s\n",
                err ? err : "unknown");
        ch_free(err);
        return CH_EXIT_STORE;
    }
    ch_store_worker_feed(s->store_worker, s->store);
    ch_main__relay_set_worker(s->relay, s->store_worker);   /* cameras' sources */
    ch_health_set_worker(s->health, s->store_worker);       /* its rescans and writes */
    ch_main__alerts_set_worker(s->alerts, s->store_worker); /* alerts, devices, transitions */
    ch_event_set_store_worker(s->events, s->store_worker);  /* the expiry's writes */
    return CH_EXIT_OK;
}

static void ch__serve_store_worker_stop(ch_serve_t *s)
{
    /* Alerts write at once, on the loop's handle, from now on. */
    ch_main__alerts_set_worker(s->alerts, NULL);
    ch_store_worker_close(s->store_worker); /* what is queued still runs and completes */
    ch_main__relay_set_worker(s->relay, NULL);
    ch_health_set_worker(s->health, NULL);
    ch_event_set_store_worker(s->events, NULL);
    s->store_worker = NULL;
    uv_run(s->loop, UV_RUN_NOWAIT); /* its handle closes, then its memory goes */
}

/* The API: HTTP only, over the services the hub gives it once. */
static int ch__serve_api_start(ch_serve_t *s)
{
    char ws_base[256];
    ch__serve_urls(s, ws_base, sizeof(ws_base));
    ch_api_config_t acfg = {
        .store_url = s->cfg.store_url,
        .max_import_bytes = (size_t)s->cfg.import_max_bytes,
        .started_at_ms = s->started_at_ms,
        .session_idle_ms = (int64_t)s->cfg.auth_session_idle_s * 1000,
        .session_max_ms = (int64_t)s->cfg.auth_session_max_s * 1000,
        .max_failed_logins = (int)s->cfg.auth_max_failed_logins,
        .lockout_ms = (int64_t)s->cfg.auth_lockout_s * 1000,
        .max_failures_per_address = (int)s->cfg.auth_max_failures_per_address,
        .cookie_secure = (int)s->cfg.auth_cookie_secure || s->tls.http != NULL,
        .hash_threads = (unsigned)s->cfg.auth_hash_threads,
        .max_hashes_in_flight = (unsigned)s->cfg.auth_max_hashes_in_flight,
        .max_hashes_per_address = (unsigned)s->cfg.auth_max_hashes_per_address,
        .ws_base = ws_base[0] != '\0' ? ws_base : NULL,
        .web_root = s->cfg.web_root,
        .tile_url = s->cfg.console_tile_url,
    };
    ch_api_services_t svc = {
        .audit = s->audit,
        .events = s->events,
        .geo = ch_geo_keeper_slot(s->geo),
        .registry = &s->registry,
        .policy = (const ch_policy_t *const *)&s->policy,
        .health = s->health,
        .metrics = ch_main__metrics_registry(s->metrics),
        .metrics_counts = ch_main__metrics_counts(s->metrics),
        .metrics_token = s->cfg.metrics_token,
        .streams = ch_main__relay_streams,
        .streams_ud = s->relay,
        .live = ch_main__relay_live,
        .live_ud = s->relay,
        .store_worker = s->store_worker,
    };
    ch_main__alerts_services(s->alerts, &svc);
    if (ch_api_new(s->loop, s->store, &acfg, &svc, &s->api) != 0) {
        fprintf(stderr, "cctvhub serve: cannot start the API\n");
        return CH_EXIT_FAILURE;
    }
    ch_metrics_t *reg = ch_main__metrics_registry(s->metrics);
    (void)ch_metrics_register(reg, ch__serve_collect_listeners, s);
    (void)ch_metrics_register(reg, ch_event_collect, s->events);
    (void)ch_metrics_register(reg, ch_main__relay_collect, s->relay);
    (void)ch_metrics_register(reg, ch_audit_collect, s->audit);
    (void)ch_metrics_register(reg, ch_main__alerts_collect, s->alerts);
    ch_main__metrics_add_health(s->metrics, s->health);
    return CH_EXIT_OK;
}

static void ch__serve_api_stop(ch_serve_t *s)
{
    ch_api_free(s->api); /* closed already when the HTTP server closed */
    s->api = NULL;
}

/* Signals and timers; closed by ch__serve_drained when a signal has drained the hub. */
static int ch__serve_timers_start(ch_serve_t *s)
{
    uv_signal_init(s->loop, &s->sig_term);
    uv_signal_init(s->loop, &s->sig_int);
    uv_signal_init(s->loop, &s->sig_hup);
    uv_timer_init(s->loop, &s->drain_timer);
    uv_timer_init(s->loop, &s->checkpoint_timer);
    uv_timer_init(s->loop, &s->event_timer);
    s->sig_term.data = s->sig_int.data = s->sig_hup.data = s->drain_timer.data = s;
    s->checkpoint_timer.data = s->event_timer.data = s;
    /* Grants end on time: a look five times a second (a scan of the live set in memory). */
    uv_timer_start(&s->event_timer, ch__serve_event_tick, 200, 200);
    uint64_t every = s->cfg.audit_checkpoint_ms < 200 ? s->cfg.audit_checkpoint_ms : 200;
    uv_timer_start(&s->checkpoint_timer, ch__serve_checkpoint_tick, every, every);
    uv_signal_start(&s->sig_term, ch__serve_on_signal, SIGTERM);
    uv_signal_start(&s->sig_int, ch__serve_on_signal, SIGINT);
    uv_signal_start(&s->sig_hup, ch__serve_on_signal, SIGHUP);
    return CH_EXIT_OK;
}

static const ch_serve_step_t ch__serve_steps[] = {
    {"policy", ch__serve_policy_start, ch__serve_policy_stop},
    {"store", ch__serve_store_start, ch__serve_store_stop},
    {"audit", ch__serve_audit_start, ch__serve_audit_stop},
    {"loop", ch__serve_loop_start, ch__serve_loop_stop},
    {"geo", ch__serve_geo_start, ch__serve_geo_stop},
    {"events", ch__serve_events_start, ch__serve_events_stop},
    {"http", ch__serve_http_start, ch__serve_http_stop},
    {"relay", ch__serve_relay_start, ch__serve_relay_stop},
    {"alerts", ch__serve_alerts_start, ch__serve_alerts_stop},
    {"health", ch__serve_health_start, ch__serve_health_stop},
    {"metrics", ch__serve_metrics_start, ch__serve_metrics_stop},
    {"store worker", ch__serve_store_worker_start, ch__serve_store_worker_stop},
    {"registry", ch__serve_registry_start, ch__serve_registry_stop},
    {"api", ch__serve_api_start, ch__serve_api_stop},
    {"timers", ch__serve_timers_start, NULL},
};

/* Stops the first n steps, the last first. */
static void ch__serve_stop_steps(ch_serve_t *s, size_t n)
{
    while (n > 0) {
        const ch_serve_step_t *st = &ch__serve_steps[--n];
        if (st->stop != NULL) {
            st->stop(s);
        }
    }
}

/* Starts every step in order. CH_EXIT_OK with all started, or the failed step's code with
 * none left started. */
static int ch__serve_start_steps(ch_serve_t *s)
{
    for (size_t i = 0; i < CH_ARRAY_SIZE(ch__serve_steps); i++) {
        int rc = ch__serve_steps[i].start(s);
        if (rc != CH_EXIT_OK) {
            ch_log(CH_LOG_ERROR, "main", "msg=\"start failed\" step=%s", ch__serve_steps[i].name);
            ch__serve_stop_steps(s, i);
            return rc;
        }
    }
    return CH_EXIT_OK;
}

int ch_main_serve(int argc, char **argv)
{
    /* Audit appends of opened events run on the libuv pool, where concurrent appends share one
     * fdatasync: more threads than cores, since they mostly wait for the disk. */
    setenv("UV_THREADPOOL_SIZE", "32", 0);
    ch_serve_t s;
    memset(&s, 0, sizeof(s));
    for (int i = 1; i < argc; i++) {
        int r = ch_main__common_option(&s.opts, argc, argv, &i);
        if (r < 0) {
            return CH_EXIT_USAGE;
        }
        if (r > 0) {
            continue;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(ch__serve_usage, stdout);
            return CH_EXIT_OK;
        }
        if (strcmp(argv[i], "--http") == 0 && i + 1 < argc) {
            ch_main__add_override(&s.opts, "http.listen", argv[++i]);
        } else if (strncmp(argv[i], "--http=", 7) == 0) {
            ch_main__add_override(&s.opts, "http.listen", argv[i] + 7);
        } else if (strcmp(argv[i], "--rtsp") == 0 && i + 1 < argc) {
            ch_main__add_override(&s.opts, "rtsp.listen", argv[++i]);
        } else if (strncmp(argv[i], "--rtsp=", 7) == 0) {
            ch_main__add_override(&s.opts, "rtsp.listen", argv[i] + 7);
        } else {
            fprintf(stderr, "cctvhub serve: unknown or incomplete option \"%s\"\n\n%s", argv[i],
                    ch__serve_usage);
            return CH_EXIT_USAGE;
        }
    }

    int rc = ch_main__load_config(&s.opts, &s.cfg);
    if (rc != CH_EXIT_OK) {
        return rc;
    }
    ch__serve_raise_nofile();
    int exit_code = ch__serve_start_steps(&s);
    if (exit_code != CH_EXIT_OK) {
        ch_config_fini(&s.cfg);
        return exit_code;
    }

    char host[64];
    int port = 0;
    if (ch_config_parse_listen(s.cfg.http_listen, host, &port) != 0) {
        host[0] = '\0';
    }
    ch_log(CH_LOG_INFO, "main",
           "msg=listening addr=%s%s%s:%d data_dir=%s schema=%d version=%s pid=%d",
           strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
           ch_http_server_port(s.http), s.cfg.data_dir, ch_store_schema_version(s.store),
           CH_VERSION, (int)getpid());

    uv_run(s.loop, UV_RUN_DEFAULT);
    ch_log(CH_LOG_INFO, "main", "msg=stopped");
    ch__serve_stop_steps(&s, CH_ARRAY_SIZE(ch__serve_steps));
    ch_config_fini(&s.cfg);
    return CH_EXIT_OK;
}

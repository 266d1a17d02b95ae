/*
 * cctvhub serve: the daemon. One libuv control loop carries the HTTP server, the API and the
 * store; the media relay runs on its own loops (hub_relay.c). SIGTERM/SIGINT stop it cleanly
 * (requests in flight and running imports finish, the store closes); SIGHUP reloads what can be
 * reloaded (log level and HTTP limits).
 */
#include "main/main.h"

#include "api/api.h"
#include "health/health.h"
#include "policy/policy.h"
#include "audit/audit.h"
#include "main/hub_alert.h"
#include "main/hub_audit.h"
#include "main/hub_metrics.h"
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

typedef struct ch_serve {
    uv_loop_t *loop;
    ch_main_opts_t opts;
    ch_config_t cfg;
    ch_store_t *store;
    ch_audit_t *audit;
    ch_http_server_t *http;
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
    ch_main_relay_t *relay;     /* the media relay (hub_relay.c) */
    ch_main_metrics_t *metrics; /* GET /metrics (hub_metrics.c) */
    ch_health_t *health;        /* camera health: probes, live figures, transitions */
    ch_main_alerts_t *alerts;   /* alerts and the MQTT device watch (hub_alert.c) */
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
        ch_api_set_policy(s->api, services);
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
    (void)ch_main__audit_keep_checkpoint(s->audit, s->checkpoint_store, &s->kept_checkpoint);
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
    (void)ch_main__outbox_drain(s->store, s->audit);
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
    int exit_code = CH_EXIT_OK;
    ch__serve_raise_nofile();
    /* Configuration first: a broken services file stops the start before anything is
     * touched. */
    ch_policy_t *services = NULL;
    if (ch__serve_load_services(&s.cfg, &services, 1) != 0) {
        exit_code = CH_EXIT_CONFIG;
        goto out;
    }
    int mk = ch_main__mkdir_p(s.cfg.data_dir);
    if (mk != 0) {
        fprintf(stderr, "cctvhub serve: cannot create data directory %s: %s\n", s.cfg.data_dir,
                ch_strerror(mk));
        exit_code = CH_EXIT_STORE;
        goto out;
    }
    char *err = NULL;
    if (ch_store_open(s.cfg.store_url, &s.store, &err) != 0) {
        fprintf(stderr, "cctvhub serve: cannot open the store: %s\n", err ? err : "unknown");
        ch_free(err);
        exit_code = CH_EXIT_STORE;
        goto out;
    }

    rc = ch_main__audit_open(&s.cfg, 1, &s.audit);
    if (rc != CH_EXIT_OK) {
        exit_code = rc;
        goto out;
    }
    /* A log cut at its end (its checkpoints file deleted) no longer matches the checkpoint
     * the store kept: refuse to sign fresh checkpoints over it. */
    rc = ch_main__audit_check_kept(&s.cfg, s.audit, s.store);
    if (rc != CH_EXIT_OK) {
        ch_audit_close_unsigned(s.audit); /* sign nothing over it */
        s.audit = NULL;
        exit_code = rc;
        goto out;
    }
    s.audit_checked = 1;
    (void)ch_main__audit_keep_checkpoint(s.audit, s.store, &s.kept_checkpoint);
    if (ch_store_maintain(s.store, CH_STORE_MAINTAIN_DEFER) != 0) {
        ch_log(CH_LOG_WARN, "store", "msg=\"WAL checkpoints stay on the loop\"");
    }
    if (ch_main__outbox_drain(s.store, s.audit) != 0) {
        fprintf(stderr, "cctvhub serve: the audit outbox cannot be appended: %s\n",
                ch_store_errmsg(s.store));
        exit_code = CH_EXIT_STORE;
        goto out;
    }

    signal(SIGPIPE, SIG_IGN);
    s.loop = uv_default_loop();
    ch_http_limits_t limits;
    ch__serve_limits(&s.cfg, &limits);
    /* View tokens are signed with the node key (the one that signs the audit log). */
    ch_audit_key_t node_key;
    char *kerr = NULL;
    memset(&node_key, 0, sizeof(node_key));
    if (ch_audit_keys_load(s.cfg.data_dir, &node_key, &kerr) != 0 || !node_key.has_secret) {
        fprintf(stderr, "cctvhub serve: cannot load the node key: %s\n", kerr ? kerr : "no secret");
        ch_free(kerr);
        ch_audit_key_wipe(&node_key);
        exit_code = CH_EXIT_STORE;
        goto out;
    }
    double bounds[4];
    if (ch_config_parse_bounds(s.cfg.event_bounds, bounds) != 0) {
        bounds[0] = bounds[1] = bounds[2] = bounds[3] = 0; /* checked at load; not reached */
    }
    char rtsp_base[256];
    snprintf(rtsp_base, sizeof(rtsp_base), "rtsp://%s", s.cfg.rtsp_listen);
    ch_api_config_t acfg = {
        .store_url = s.cfg.store_url,
        .max_import_bytes = (size_t)s.cfg.import_max_bytes,
        .started_at_ms = ch_time_now_ms(),
        .audit = s.audit,
        .session_idle_ms = (int64_t)s.cfg.auth_session_idle_s * 1000,
        .session_max_ms = (int64_t)s.cfg.auth_session_max_s * 1000,
        .max_failed_logins = (int)s.cfg.auth_max_failed_logins,
        .lockout_ms = (int64_t)s.cfg.auth_lockout_s * 1000,
        .max_failures_per_address = (int)s.cfg.auth_max_failures_per_address,
        .cookie_secure = (int)s.cfg.auth_cookie_secure,
        .hash_threads = (unsigned)s.cfg.auth_hash_threads,
        .max_hashes_in_flight = (unsigned)s.cfg.auth_max_hashes_in_flight,
        .max_hashes_per_address = (unsigned)s.cfg.auth_max_hashes_per_address,
        .token_sk = node_key.sk,
        .rtsp_base = rtsp_base,
        .min_lon = bounds[0],
        .min_lat = bounds[1],
        .max_lon = bounds[2],
        .max_lat = bounds[3],
        .grace_ms = (int64_t)s.cfg.event_grace_s * 1000,
        .web_root = s.cfg.web_root,
        .tile_url = s.cfg.console_tile_url,
    };
    int arc = ch_api_new(s.loop, s.store, &acfg, &s.api);
    uint8_t node_pk[32];
    memcpy(node_pk, node_key.pk, sizeof(node_pk));
    ch_audit_key_wipe(&node_key); /* the events engine keeps its own copy */
    if (arc != 0) {
        fprintf(stderr, "cctvhub serve: cannot start the API\n");
        exit_code = CH_EXIT_FAILURE;
        goto out;
    }
    ch_api_set_policy(s.api, services);
    services = NULL; /* the API's now */
    if (ch_http_server_new(s.loop, &limits, ch_api_handle, ch_api_body_limit, s.api, &s.http) !=
        0) {
        fprintf(stderr, "cctvhub serve: cannot create the HTTP server\n");
        exit_code = CH_EXIT_FAILURE;
        goto out;
    }
    if (s.cfg.http_trusted_proxies != NULL) {
        ch_cidr_t nets[CH_CIDR_MAX];
        int n = ch_config_parse_cidrs(s.cfg.http_trusted_proxies, nets, CH_CIDR_MAX);
        if (n > 0) { /* checked at load */
            ch_http_server_set_trusted_proxies(s.http, nets, (size_t)n);
        }
    }
    int lrc = ch_http_server_listen(s.http, s.cfg.http_listen);
    if (lrc != 0) {
        fprintf(stderr, "cctvhub serve: cannot listen on %s (http.listen): %s\n", s.cfg.http_listen,
                ch_strerror(lrc));
        ch_http_server_shutdown(s.http, NULL, NULL);
        s.http = NULL;
        uv_run(s.loop, UV_RUN_DEFAULT);
        exit_code = CH_EXIT_STORE;
        goto out;
    }

    /* The relay: its own threads; the engine's notices keep it in step with the grants. */
    int mrc = ch_main__relay_start(&s.cfg, s.audit, node_pk, ch_api_events(s.api), &s.relay);
    if (mrc != 0) {
        ch_http_server_shutdown(s.http, NULL, NULL);
        s.http = NULL;
        uv_run(s.loop, UV_RUN_DEFAULT);
        exit_code = mrc;
        goto out;
    }
    ch_api_set_streams(s.api, ch_main__relay_streams, s.relay);
    ch_api_set_live(s.api, ch_main__relay_live, s.relay);
    ch_api_set_camera_source(s.api, ch_main__relay_camera_source, s.relay);
    s.metrics = ch_main__metrics_new(s.api, s.store, s.http, s.audit, s.relay, s.cfg.metrics_token,
                                     acfg.started_at_ms);

    /* Alerts and devices over MQTT (hub_alert.c). */
    int alrc = ch_main__alerts_start(s.loop, &s.cfg, s.store, s.api, &s.alerts);
    if (alrc != 0) {
        ch_http_server_shutdown(s.http, NULL, NULL);
        s.http = NULL;
        uv_run(s.loop, UV_RUN_DEFAULT);
        exit_code = alrc;
        goto out;
    }
    (void)ch_metrics_register(ch_main__metrics_registry(s.metrics), ch_main__alerts_collect,
                              s.alerts);

    /* Camera health on this loop: probes, the relay's live figures, transitions stored. Its
     * transitions feed the alert rules; metrics read its snapshot. */
    {
        ch_health_config_t hc = {
            .probe_interval_s = (unsigned)s.cfg.health_probe_interval,
            .concurrency = (unsigned)s.cfg.health_probe_concurrency,
            .timeout_s = (unsigned)s.cfg.health_probe_timeout_s,
            .fail_threshold = (unsigned)s.cfg.health_fail_threshold,
            .min_fps = (unsigned)s.cfg.health_min_fps,
            .keyframe_max_s = (unsigned)s.cfg.health_keyframe_max_s,
            .rescan_s = (unsigned)s.cfg.health_rescan_s,
        };
        s.health = ch_health_new(&hc);
        ch_health_set_listener(s.health, ch__serve_camera_state, s.alerts);
        char herr[256];
        if (ch_health_start(s.health, s.loop, s.cfg.store_url, ch_main__relay_health, s.relay, herr,
                            sizeof(herr)) != 0) {
            fprintf(stderr, "cctvhub serve: %s\n", herr);
            ch_health_free(s.health);
            s.health = NULL;
            ch_main__alerts_close(s.alerts);
            ch_http_server_shutdown(s.http, NULL, NULL);
            s.http = NULL;
            uv_run(s.loop, UV_RUN_DEFAULT);
            exit_code = CH_EXIT_STORE;
            goto out;
        }
        ch_api_set_health(s.api, s.health);
        ch_main__metrics_add_health(s.metrics, s.health);
    }

    uv_signal_init(s.loop, &s.sig_term);
    uv_signal_init(s.loop, &s.sig_int);
    uv_signal_init(s.loop, &s.sig_hup);
    uv_timer_init(s.loop, &s.drain_timer);
    uv_timer_init(s.loop, &s.checkpoint_timer);
    uv_timer_init(s.loop, &s.event_timer);
    s.sig_term.data = s.sig_int.data = s.sig_hup.data = s.drain_timer.data = &s;
    s.checkpoint_timer.data = s.event_timer.data = &s;
    /* Grants end on time: a look five times a second (a scan of the live set in memory). */
    uv_timer_start(&s.event_timer, ch__serve_event_tick, 200, 200);
    {
        /* The grants' URLs point at the addresses actually bound (port 0 picks one). */
        char h[64], ws_base[256];
        int p = 0;
        if (ch_config_parse_listen(s.cfg.http_listen, h, &p) == 0) {
            snprintf(ws_base, sizeof(ws_base), "ws://%s:%d", h, ch_http_server_port(s.http));
            ch_main__relay_base(s.relay, rtsp_base, sizeof(rtsp_base));
            /* Behind a proxy or on 0.0.0.0, the addresses viewers use are configured. */
            if (s.cfg.rtsp_public_url != NULL) {
                snprintf(rtsp_base, sizeof(rtsp_base), "%s", s.cfg.rtsp_public_url);
            }
            if (s.cfg.http_public_url != NULL) {
                int tls = strncmp(s.cfg.http_public_url, "https://", 8) == 0;
                snprintf(ws_base, sizeof(ws_base), "%s%s", tls ? "wss://" : "ws://",
                         s.cfg.http_public_url + (tls ? 8 : 7));
            }
            ch_api_set_urls(s.api, rtsp_base, ws_base);
        }
    }
    {
        uint64_t every = s.cfg.audit_checkpoint_ms < 200 ? s.cfg.audit_checkpoint_ms : 200;
        uv_timer_start(&s.checkpoint_timer, ch__serve_checkpoint_tick, every, every);
    }
    uv_signal_start(&s.sig_term, ch__serve_on_signal, SIGTERM);
    uv_signal_start(&s.sig_int, ch__serve_on_signal, SIGINT);
    uv_signal_start(&s.sig_hup, ch__serve_on_signal, SIGHUP);

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

out:
    ch_main__relay_stop(s.relay); /* viewers' view.end records, before the log closes */
    ch_main__metrics_remove_health(s.metrics, s.health);
    ch_health_free(s.health); /* stopped with the HTTP server; its handles are closed */
    ch_policy_free(services);
    if (s.metrics != NULL && s.alerts != NULL) {
        ch_metrics_unregister(ch_main__metrics_registry(s.metrics), ch_main__alerts_collect,
                              s.alerts);
    }
    ch_main__alerts_free(s.alerts);
    if (s.api != NULL) {
        ch_api_free(s.api);
    }
    ch_main__metrics_free(s.metrics);
    if (s.loop != NULL) {
        uv_loop_close(s.loop);
    }
    if (s.audit != NULL && s.audit_checked && s.store != NULL) {
        /* The last checkpoint, kept in the store too: refusals still counted first. */
        (void)ch_audit_refusals_flush(s.audit, 1);
        if (ch_audit_checkpoint_now(s.audit) != 0) {
            ch_log(CH_LOG_ERROR, "audit", "msg=\"last checkpoint failed\"");
        }
        (void)ch_main__audit_keep_checkpoint(s.audit, s.store, &s.kept_checkpoint);
    }
    ch_audit_close(s.audit); /* writes a last checkpoint */
    ch_store_close(s.checkpoint_store);
    if (s.store != NULL && ch_store_maintain(s.store, CH_STORE_MAINTAIN_NOW) != 0) {
        ch_log(CH_LOG_WARN, "store", "msg=\"last WAL checkpoint failed\"");
    }
    ch_store_close(s.store);
    ch_config_fini(&s.cfg);
    return exit_code;
}

/*
 * health/mqtt.c: the MQTT device watch on the control loop (see health.h, "devices over MQTT").
 *
 * libmosquitto is used through its external-loop calls: the connection's socket sits on a
 * uv_poll (readable: mosquitto_loop_read; writable while it has bytes to send:
 * mosquitto_loop_write) and a one-second timer runs mosquitto_loop_misc (keepalive) and the
 * heartbeat deadlines. Connecting resolves and dials the broker (and runs the TLS handshake)
 * with blocking calls, so it runs on the libuv thread pool; the loop does not touch the
 * client meanwhile. A blocking connect cannot be cancelled, and to a broker that drops SYNs it
 * lasts the kernel's two minutes, holding the hub's stop that long: so each dial is preceded by
 * a reachability check on the loop (net's client: resolve, a non-blocking TCP connect within
 * REACH_TIMEOUT_MS, closed at once), which a stop cancels. A lost broker is dialled again after
 * 1 s, doubling up to 30 s.
 */
#include "health/health.h"
#include "net/net.h"

#include <inttypes.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS   30000
#define KEEPALIVE_S      30
#define LOG_EVERY_MS     10000
#define READ_BURST       256
#define REACH_TIMEOUT_MS 5000

/* One device the watch has heard from. */
typedef struct dev {
    int64_t id;
    int64_t agency_id;
    char *name;
    char *kind;
    int located;
    double lat, lon;
    const char *state; /* static: "unknown", "online", "fault", "offline" */
    int64_t since_ms;
    int64_t last_seen_ms;
    int64_t heartbeat_ms; /* its own, or the default */
    int has_battery;
    double battery;
} device_entry_t;

/* Why messages were dropped, each logged at most every LOG_EVERY_MS. */
enum { DROP_TOPIC = 0, DROP_PAYLOAD = 1, DROP_DEVICE = 2, NDROP = 3 };
static const char *const drop_names[NDROP] = {"topic", "payload", "device"};

typedef enum conn_state {
    C_IDLE = 0,      /* waiting to dial (backoff) */
    C_DIALING = 1,   /* a connect runs on the pool */
    C_CONNECTED = 2, /* the socket is on the poll */
    C_REACHING = 3,  /* the reachability check before a dial runs on the loop */
} conn_state_t;

struct ch_health_devices {
    uv_loop_t *loop;
    ch_store_t *st;
    struct mosquitto *mosq;
    char *host, *client_id, *prefix, *subscription;
    int port;
    int tls;
    int64_t heartbeat_ms;
    int64_t (*clock)(void *ud);
    void *clock_ud;
    ch_health_device_fn on_state, on_bell;
    void *on_state_ud, *on_bell_ud;
    /* The connection. */
    conn_state_t cs;
    uv_poll_t *poll; /* one per connection (its socket changes) */
    int poll_events;
    uv_timer_t tick;     /* keepalive and heartbeats, every second */
    uv_timer_t backoff;  /* the next dial */
    ch_net_dial_t reach; /* the reachability check (net's client) */
    int reach_open;      /* reach started and not yet closed */
    uv_work_t dial;
    int dial_rc;
    uint64_t backoff_ms;
    int subscribed;
    int closing;
    int handles; /* open handles and running work */
    /* Devices: open addressing by id (pointer slots, NULL free). */
    device_entry_t **devs;
    size_t dcap, dcount;
    /* Counters. */
    uint64_t connects, received, accepted, dropped[NDROP], dropped_logged[NDROP];
    int64_t drop_logged_at[NDROP];
};

static int64_t now_ms(const ch_health_devices_t *d)
{
    return d->clock != NULL ? d->clock(d->clock_ud) : ch_time_now_ms();
}

/* ---- devices -------------------------------------------------------------------------------- */

static size_t dev_hash(int64_t id, size_t cap)
{
    return (size_t)(((uint64_t)id * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

static device_entry_t *dev_find(const ch_health_devices_t *d, int64_t id)
{
    if (d->dcap == 0) {
        return NULL;
    }
    for (size_t i = dev_hash(id, d->dcap);; i = (i + 1) & (d->dcap - 1)) {
        if (d->devs[i] == NULL) {
            return NULL;
        }
        if (d->devs[i]->id == id) {
            return d->devs[i];
        }
    }
}

static void dev_insert(ch_health_devices_t *d, device_entry_t *v)
{
    if ((d->dcount + 1) * 2 > d->dcap) {
        size_t ncap = d->dcap ? d->dcap * 2 : 64;
        device_entry_t **n = ch_calloc(ncap, sizeof(*n));
        for (size_t i = 0; i < d->dcap; i++) {
            if (d->devs[i] != NULL) {
                size_t j = dev_hash(d->devs[i]->id, ncap);
                while (n[j] != NULL) {
                    j = (j + 1) & (ncap - 1);
                }
                n[j] = d->devs[i];
            }
        }
        ch_free(d->devs);
        d->devs = n;
        d->dcap = ncap;
    }
    size_t j = dev_hash(v->id, d->dcap);
    while (d->devs[j] != NULL) {
        j = (j + 1) & (d->dcap - 1);
    }
    d->devs[j] = v;
    d->dcount++;
}

/* The device of a message: from memory, else from the store (then kept). NULL when the
 * registry has no such device or it belongs to another agency than the topic says. */
static device_entry_t *dev_lookup(ch_health_devices_t *d, int64_t agency_id, int64_t id)
{
    device_entry_t *v = dev_find(d, id);
    if (v != NULL) {
        return v->agency_id == agency_id ? v : NULL;
    }
    ch_device_t rec;
    if (ch_store_device_get(d->st, id, &rec) != 0) {
        return NULL;
    }
    if (rec.agency_id != agency_id) {
        ch_device_fini(&rec);
        return NULL;
    }
    v = ch_calloc(1, sizeof(*v));
    v->id = id;
    v->agency_id = rec.agency_id;
    v->name = ch_strdup(rec.name);
    v->kind = ch_strdup(rec.kind);
    v->located = rec.located;
    v->lat = rec.lat;
    v->lon = rec.lon;
    v->state = "unknown";
    v->heartbeat_ms = d->heartbeat_ms;
    ch_device_fini(&rec);
    dev_insert(d, v);
    return v;
}

static void dev_event(const device_entry_t *v, const char *old_state, int64_t at,
                      const char *reason, ch_health_device_event_t *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->device_id = v->id;
    ev->agency_id = v->agency_id;
    ev->name = v->name;
    ev->kind = v->kind;
    ev->old_state = old_state;
    ev->new_state = v->state;
    ev->at_ms = at;
    ev->reason = reason;
    ev->located = v->located;
    ev->lat = v->lat;
    ev->lon = v->lon;
}

/* Moves v to state (a static string) at time at: recorded in the store, then told. */
static void dev_transition(ch_health_devices_t *d, device_entry_t *v, const char *state, int64_t at,
                           const char *reason)
{
    if (strcmp(v->state, state) == 0) {
        return;
    }
    const char *old = v->state;
    v->state = state;
    v->since_ms = at;
    ch_device_transition_t t;
    memset(&t, 0, sizeof(t));
    t.device_id = v->id;
    t.agency_id = v->agency_id;
    t.from_state = (char *)old;
    t.to_state = (char *)state;
    t.at = at;
    t.reason = (char *)reason;
    if (ch_store_device_transition_create(d->st, &t) != 0) {
        ch_log(CH_LOG_ERROR, "health",
               "msg=\"device transition not stored\" device=%" PRId64 " error=\"%s\"", v->id,
               ch_store_errmsg(d->st));
    }
    ch_log(CH_LOG_INFO, "health",
           "msg=\"device state\" device=%" PRId64 " from=%s to=%s "
           "reason=\"%s\"",
           v->id, old, state, reason ? reason : "");
    if (d->on_state != NULL) {
        ch_health_device_event_t ev;
        dev_event(v, old, at, reason, &ev);
        d->on_state(d->on_state_ud, &ev);
    }
}

/* ---- messages ------------------------------------------------------------------------------- */

static void drop(ch_health_devices_t *d, int why_kind, const char *topic, const char *why)
{
    d->dropped[why_kind]++;
    int64_t now = ch_time_now_ms();
    if (d->drop_logged_at[why_kind] != 0 && now - d->drop_logged_at[why_kind] < LOG_EVERY_MS) {
        return;
    }
    uint64_t since = d->dropped[why_kind] - d->dropped_logged[why_kind];
    d->dropped_logged[why_kind] = d->dropped[why_kind];
    d->drop_logged_at[why_kind] = now;
    /* A topic can be 64 KiB long: the log gets its first 120 bytes. */
    char *shown = ch_strndup(topic, 120);
    ch_buf_t b;
    ch_buf_init(&b);
    ch_log_quote(&b, shown);
    ch_free(shown);
    ch_log(CH_LOG_WARN, "health",
           "msg=\"mqtt messages dropped\" reason=%s dropped=%" PRIu64 " total=%" PRIu64
           " last_topic=%s why=\"%s\"",
           drop_names[why_kind], since, d->dropped[why_kind], b.data, why);
    ch_buf_fini(&b);
}

static void handle_message(ch_health_devices_t *d, const char *topic, const void *payload,
                           size_t len)
{
    d->received++;
    ch_health_mqtt_msg_t m;
    char why[128];
    int rc = ch_health_mqtt_parse(d->prefix, topic, payload, len, &m, why, sizeof(why));
    if (rc == CH_ENOENT) {
        drop(d, DROP_TOPIC, topic, why);
        return;
    }
    if (rc != 0) {
        drop(d, DROP_PAYLOAD, topic, why);
        return;
    }
    device_entry_t *v = dev_lookup(d, m.agency_id, m.device_id);
    if (v == NULL) {
        drop(d, DROP_DEVICE, topic, "no such device of that agency in the registry");
        return;
    }
    if (m.kind == CH_HEALTH_MQTT_EVENT && strcmp(v->kind, "emergency-bell") != 0) {
        drop(d, DROP_DEVICE, topic, "a bell-pressed event from a device that is not a bell");
        return;
    }
    d->accepted++;
    int64_t now = now_ms(d);
    v->last_seen_ms = now;
    if (m.has_battery) {
        v->has_battery = 1;
        v->battery = m.battery;
    }
    switch (m.kind) {
    case CH_HEALTH_MQTT_STATE:
        if (m.heartbeat_s > 0) {
            v->heartbeat_ms = m.heartbeat_s * 1000;
        }
        if (strcmp(m.status, "ok") == 0) {
            dev_transition(d, v, "online", now, "state ok");
        } else {
            dev_transition(d, v, "fault", now,
                           strcmp(m.status, "fault") == 0 ? "state fault" : "state maintenance");
        }
        break;
    case CH_HEALTH_MQTT_HEARTBEAT:
        if (strcmp(v->state, "fault") != 0) {
            dev_transition(d, v, "online", now, "heartbeat");
        }
        break;
    case CH_HEALTH_MQTT_EVENT:
        if (strcmp(v->state, "fault") != 0) {
            dev_transition(d, v, "online", now, "event");
        }
        ch_log(CH_LOG_WARN, "health", "msg=\"bell pressed\" device=%" PRId64 " agency=%" PRId64,
               v->id, v->agency_id);
        if (d->on_bell != NULL) {
            ch_health_device_event_t ev;
            dev_event(v, v->state, m.time_ms > 0 ? m.time_ms : now, m.event_type, &ev);
            d->on_bell(d->on_bell_ud, &ev);
        }
        break;
    }
}

/* ---- the connection ------------------------------------------------------------------------- */

static void schedule_dial(ch_health_devices_t *d);
static void update_poll(ch_health_devices_t *d);
static void on_poll(uv_poll_t *p, int status, int events);

static void on_poll_closed(uv_handle_t *h)
{
    ch_health_devices_t *d = h->data;
    ch_free(h);
    d->handles--;
    if (d->closing && d->handles == 0) {
        ch_health_devices_close(d); /* finishes the free */
    }
}

/* The connection is gone (read or write failed, keepalive missed, refused): stop watching its
 * socket at once (libmosquitto has closed it) and dial again later. */
static void lost(ch_health_devices_t *d, int rc)
{
    if (d->cs != C_CONNECTED) {
        return;
    }
    d->cs = C_IDLE;
    d->subscribed = 0;
    if (d->poll != NULL) {
        uv_poll_stop(d->poll);
        uv_close((uv_handle_t *)d->poll, on_poll_closed);
        d->poll = NULL;
    }
    if (!d->closing) {
        ch_log(CH_LOG_WARN, "health", "msg=\"mqtt broker lost\" error=\"%s\" retry_ms=%" PRIu64,
               mosquitto_strerror(rc), d->backoff_ms);
        schedule_dial(d);
    }
}

static void update_poll(ch_health_devices_t *d)
{
    if (d->cs != C_CONNECTED || d->poll == NULL) {
        return;
    }
    int ev = UV_READABLE | (mosquitto_want_write(d->mosq) ? UV_WRITABLE : 0);
    if (ev != d->poll_events) {
        d->poll_events = ev;
        uv_poll_start(d->poll, ev, on_poll);
    }
}

/*
 * Reads what has arrived: libmosquitto reads one packet per call, so this calls it while the
 * socket holds more bytes (a burst of messages is taken in one loop turn, not one per turn),
 * at most READ_BURST times so other handles get their turn. Over TLS, bytes already taken
 * from the socket may wait inside OpenSSL where the poll cannot see them, so the whole burst
 * is tried (the extra calls find nothing and return at once), and the tick tries again.
 */
static int read_packets(ch_health_devices_t *d)
{
    for (int i = 0; i < READ_BURST; i++) {
        int rc = mosquitto_loop_read(d->mosq, 1);
        if (rc != MOSQ_ERR_SUCCESS || d->cs != C_CONNECTED) {
            return rc;
        }
        int pending = 0;
        if (!d->tls &&
            (ioctl(mosquitto_socket(d->mosq), FIONREAD, &pending) != 0 || pending <= 0)) {
            break;
        }
    }
    return MOSQ_ERR_SUCCESS;
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    ch_health_devices_t *d = p->data;
    int rc = MOSQ_ERR_SUCCESS;
    if (status < 0) {
        rc = MOSQ_ERR_CONN_LOST;
    }
    if (rc == MOSQ_ERR_SUCCESS && (events & UV_READABLE)) {
        rc = read_packets(d);
    }
    if (rc == MOSQ_ERR_SUCCESS && d->cs == C_CONNECTED && (events & UV_WRITABLE)) {
        rc = mosquitto_loop_write(d->mosq, 1);
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        lost(d, rc);
        return;
    }
    update_poll(d);
}

static void on_connack(struct mosquitto *mosq, void *ud, int rc)
{
    ch_health_devices_t *d = ud;
    if (rc != 0) {
        ch_log(CH_LOG_ERROR, "health", "msg=\"mqtt broker refused the connection\" error=\"%s\"",
               mosquitto_connack_string(rc));
        d->backoff_ms = BACKOFF_MAX_MS; /* a bad password does not heal in a second */
        return;                         /* the broker closes; the read fails and lost() follows */
    }
    d->backoff_ms = BACKOFF_FIRST_MS;
    int mid;
    int src = mosquitto_subscribe(mosq, &mid, d->subscription, 1);
    if (src != MOSQ_ERR_SUCCESS) {
        ch_log(CH_LOG_ERROR, "health", "msg=\"mqtt subscribe failed\" error=\"%s\"",
               mosquitto_strerror(src));
        return;
    }
    d->subscribed = 1;
    ch_buf_t b;
    ch_buf_init(&b);
    ch_log_quote(&b, d->subscription);
    ch_log(CH_LOG_INFO, "health", "msg=\"mqtt connected\" host=%s port=%d topics=%s", d->host,
           d->port, b.data);
    ch_buf_fini(&b);
}

static void on_message(struct mosquitto *mosq, void *ud, const struct mosquitto_message *msg)
{
    CH_UNUSED(mosq);
    handle_message(ud, msg->topic, msg->payload, msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0);
}

/* On the pool: dial (DNS, TCP, TLS, CONNECT) with libmosquitto's blocking call. */
static void dial_work(uv_work_t *w)
{
    ch_health_devices_t *d = w->data;
    d->dial_rc = mosquitto_connect(d->mosq, d->host, d->port, KEEPALIVE_S);
}

static void dial_done(uv_work_t *w, int status)
{
    ch_health_devices_t *d = w->data;
    d->handles--;
    if (d->closing) {
        if (d->dial_rc == MOSQ_ERR_SUCCESS) {
            mosquitto_disconnect(d->mosq);
        }
        if (d->handles == 0) {
            ch_health_devices_close(d);
        }
        return;
    }
    if (status != 0 || d->dial_rc != MOSQ_ERR_SUCCESS) {
        d->cs = C_IDLE;
        ch_log(CH_LOG_WARN, "health",
               "msg=\"mqtt broker not reached\" host=%s port=%d "
               "error=\"%s\" retry_ms=%" PRIu64,
               d->host, d->port, status != 0 ? "cancelled" : mosquitto_strerror(d->dial_rc),
               d->backoff_ms);
        schedule_dial(d);
        return;
    }
    d->connects++;
    d->cs = C_CONNECTED;
    int fd = mosquitto_socket(d->mosq);
    d->poll = ch_calloc(1, sizeof(*d->poll));
    if (uv_poll_init_socket(d->loop, d->poll, fd) != 0) {
        ch_free(d->poll);
        d->poll = NULL;
        d->cs = C_IDLE;
        mosquitto_disconnect(d->mosq);
        schedule_dial(d);
        return;
    }
    d->poll->data = d;
    d->handles++;
    d->poll_events = UV_READABLE | (mosquitto_want_write(d->mosq) ? UV_WRITABLE : 0);
    uv_poll_start(d->poll, d->poll_events, on_poll);
}

/* The dial itself, on the pool, once the broker answered the check. */
static void dial(ch_health_devices_t *d)
{
    d->cs = C_DIALING;
    d->dial.data = d;
    d->handles++;
    if (uv_queue_work(d->loop, &d->dial, dial_work, dial_done) != 0) {
        d->handles--;
        d->cs = C_IDLE;
        schedule_dial(d);
    }
}

static void reach_start(ch_health_devices_t *d);

static void on_reach_closed(ch_net_dial_t *dl)
{
    ch_health_devices_t *d = dl->data;
    d->reach_open = 0;
    d->handles--;
    if (d->closing) {
        if (d->handles == 0) {
            ch_health_devices_close(d);
        }
        return;
    }
    if (d->cs == C_REACHING) {
        reach_start(d); /* the next check came while this one was closing */
    }
}

static void reach_close(ch_health_devices_t *d)
{
    if (d->reach_open && !d->reach.closing) {
        ch_net_dial_close(&d->reach, on_reach_closed); /* a connect or lookup is cancelled */
    }
}

static void reach_fail(ch_health_devices_t *d, const char *why)
{
    reach_close(d);
    d->cs = C_IDLE;
    ch_log(CH_LOG_WARN, "health",
           "msg=\"mqtt broker not reached\" host=%s port=%d error=\"%s\" retry_ms=%" PRIu64,
           d->host, d->port, why, d->backoff_ms);
    schedule_dial(d);
}

static void on_reach_connected(ch_net_dial_t *dl, int status)
{
    ch_health_devices_t *d = dl->data;
    if (status == UV_ETIMEDOUT) {
        char why[64];
        snprintf(why, sizeof(why), "no answer within %d s", REACH_TIMEOUT_MS / 1000);
        reach_fail(d, why);
        return;
    }
    if (status != 0) {
        reach_fail(d, status == UV_ECONNREFUSED ? "connection refused" : uv_strerror(status));
        return;
    }
    reach_close(d);
    dial(d);
}

static void reach_start(ch_health_devices_t *d)
{
    d->reach_open = 1;
    d->handles++;
    d->reach.data = d;
    ch_net_dial_start(&d->reach, d->loop, d->host, (uint16_t)d->port,
                      uv_now(d->loop) + REACH_TIMEOUT_MS, on_reach_connected);
}

static void on_backoff(uv_timer_t *t)
{
    ch_health_devices_t *d = t->data;
    if (d->closing || d->cs != C_IDLE) {
        return;
    }
    d->cs = C_REACHING;
    if (!d->reach_open) {
        reach_start(d); /* else once the last check is closed */
    }
}

static void schedule_dial(ch_health_devices_t *d)
{
    uint64_t wait = d->backoff_ms;
    d->backoff_ms = d->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d->backoff_ms * 2;
    uv_timer_start(&d->backoff, on_backoff, wait, 0);
}

/* Every second: keepalive, and devices silent past their heartbeat. */
static void on_tick(uv_timer_t *t)
{
    ch_health_devices_t *d = t->data;
    if (d->cs == C_CONNECTED) {
        int rc = d->tls ? read_packets(d) : MOSQ_ERR_SUCCESS;
        if (rc == MOSQ_ERR_SUCCESS && d->cs == C_CONNECTED) {
            rc = mosquitto_loop_misc(d->mosq);
        }
        if (rc != MOSQ_ERR_SUCCESS) {
            lost(d, rc);
        } else {
            update_poll(d);
        }
    }
    int64_t now = now_ms(d);
    for (size_t i = 0; i < d->dcap; i++) {
        device_entry_t *v = d->devs[i];
        if (v != NULL && strcmp(v->state, "offline") != 0 && strcmp(v->state, "unknown") != 0 &&
            now - v->last_seen_ms > v->heartbeat_ms) {
            dev_transition(d, v, "offline", now, "heartbeat missed");
        }
    }
}

/* ---- the watch ------------------------------------------------------------------------------ */

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void lib_init(void)
{
    mosquitto_lib_init();
}

int ch_health_devices_new(uv_loop_t *loop, ch_store_t *st, const ch_health_devices_config_t *cfg,
                          ch_health_devices_t **out)
{
    *out = NULL;
    if (loop == NULL || st == NULL || cfg == NULL || cfg->host == NULL || cfg->port <= 0 ||
        cfg->client_id == NULL || cfg->topic_prefix == NULL || cfg->heartbeat_ms <= 0) {
        return CH_EINVAL;
    }
    pthread_once(&lib_once, lib_init);
    ch_health_devices_t *d = ch_calloc(1, sizeof(*d));
    d->loop = loop;
    d->st = st;
    d->host = ch_strdup(cfg->host);
    d->port = cfg->port;
    d->tls = cfg->tls;
    d->client_id = ch_strdup(cfg->client_id);
    d->prefix = ch_strdup(cfg->topic_prefix);
    ch_buf_t sub;
    ch_buf_init(&sub);
    ch_buf_appendf(&sub, "%s/+/+/+", cfg->topic_prefix);
    d->subscription = ch_buf_steal(&sub);
    d->heartbeat_ms = cfg->heartbeat_ms;
    d->clock = cfg->clock;
    d->clock_ud = cfg->clock_ud;
    d->backoff_ms = BACKOFF_FIRST_MS;
    d->mosq = mosquitto_new(d->client_id, true, d);
    int rc = 0;
    if (d->mosq == NULL) {
        rc = CH_ENOMEM;
        goto fail;
    }
    mosquitto_connect_callback_set(d->mosq, on_connack);
    mosquitto_message_callback_set(d->mosq, on_message);
    if (cfg->username != NULL &&
        mosquitto_username_pw_set(d->mosq, cfg->username, cfg->password) != MOSQ_ERR_SUCCESS) {
        rc = CH_EINVAL;
        goto fail;
    }
    if (cfg->tls) {
        int trc = mosquitto_tls_set(d->mosq, cfg->tls_ca, cfg->tls_ca ? NULL : "/etc/ssl/certs",
                                    cfg->tls_cert, cfg->tls_key, NULL);
        if (trc != MOSQ_ERR_SUCCESS) {
            ch_log(CH_LOG_ERROR, "health", "msg=\"mqtt TLS files not usable\" error=\"%s\"",
                   mosquitto_strerror(trc));
            rc = CH_EINVAL;
            goto fail;
        }
    }
    uv_timer_init(loop, &d->tick);
    uv_timer_init(loop, &d->backoff);
    d->tick.data = d->backoff.data = d;
    d->handles += 2;
    *out = d;
    return 0;
fail:
    if (d->mosq != NULL) {
        mosquitto_destroy(d->mosq);
    }
    ch_free(d->host);
    ch_free(d->client_id);
    ch_free(d->prefix);
    ch_free(d->subscription);
    ch_free(d);
    return rc;
}

void ch_health_devices_on_state(ch_health_devices_t *d, ch_health_device_fn fn, void *ud)
{
    d->on_state = fn;
    d->on_state_ud = ud;
}

void ch_health_devices_on_bell(ch_health_devices_t *d, ch_health_device_fn fn, void *ud)
{
    d->on_bell = fn;
    d->on_bell_ud = ud;
}

void ch_health_devices_start(ch_health_devices_t *d)
{
    uv_timer_start(&d->tick, on_tick, 1000, 1000);
    uv_timer_start(&d->backoff, on_backoff, 0, 0);
}

void ch_health_devices_stats(const ch_health_devices_t *d, ch_health_devices_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < d->dcap; i++) {
        const device_entry_t *v = d->devs[i];
        if (v == NULL) {
            continue;
        }
        out->online += strcmp(v->state, "online") == 0;
        out->fault += strcmp(v->state, "fault") == 0;
        out->offline += strcmp(v->state, "offline") == 0;
    }
    out->connected = d->cs == C_CONNECTED && d->subscribed;
    out->connects = d->connects;
    out->received = d->received;
    out->accepted = d->accepted;
    out->dropped_topic = d->dropped[DROP_TOPIC];
    out->dropped_payload = d->dropped[DROP_PAYLOAD];
    out->dropped_device = d->dropped[DROP_DEVICE];
}

int ch_health_devices_state(const ch_health_devices_t *d, int64_t id, ch_health_device_state_t *out)
{
    const device_entry_t *v = dev_find(d, id);
    if (v == NULL) {
        return CH_ENOENT;
    }
    *out = (ch_health_device_state_t){
        .device_id = v->id,
        .agency_id = v->agency_id,
        .state = v->state,
        .since_ms = v->since_ms,
        .last_seen_ms = v->last_seen_ms,
        .heartbeat_ms = v->heartbeat_ms,
        .has_battery = v->has_battery,
        .battery = v->battery,
    };
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    ch_health_devices_t *d = h->data;
    d->handles--;
    if (d->handles == 0) {
        ch_health_devices_close(d);
    }
}

void ch_health_devices_close(ch_health_devices_t *d)
{
    if (d == NULL) {
        return;
    }
    if (!d->closing) {
        d->closing = 1;
        if (d->cs == C_REACHING) {
            d->cs = C_IDLE;
        }
        reach_close(d); /* a connect or lookup in progress is cancelled */
        if (d->cs == C_CONNECTED) {
            mosquitto_disconnect(d->mosq); /* a DISCONNECT, written at once */
            d->cs = C_IDLE;
            if (d->poll != NULL) {
                uv_poll_stop(d->poll);
                uv_close((uv_handle_t *)d->poll, on_poll_closed);
                d->poll = NULL;
            }
        }
        uv_close((uv_handle_t *)&d->tick, on_timer_closed);
        uv_close((uv_handle_t *)&d->backoff, on_timer_closed);
        return;
    }
    if (d->handles > 0) {
        return; /* called again from the last close */
    }
    mosquitto_destroy(d->mosq);
    for (size_t i = 0; i < d->dcap; i++) {
        if (d->devs[i] != NULL) {
            ch_free(d->devs[i]->name);
            ch_free(d->devs[i]->kind);
            ch_free(d->devs[i]);
        }
    }
    ch_free(d->devs);
    ch_free(d->host);
    ch_free(d->client_id);
    ch_free(d->prefix);
    ch_free(d->subscription);
    ch_free(d);
}

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
 *
 * The devices: the registry's devices are read once at start and kept in memory, following the
 * store's change feed (whoever wrote them), so a message never waits for the store: a device
 * not in memory is not in the registry. With the hub's store worker (ch_health_devices_set_
 * worker) the feed's rereads and the transitions' writes run there, one batch of each at a
 * time and in order; a message for a device not in memory while a reread is on the worker
 * waits for it (at most PARK_MAX messages), so a device created a moment ago is not refused.
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
#define PARK_MAX         256 /* messages waiting for a reread of the registry's devices */

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
    int heard; /* a message of it was accepted: the watch knows its state */
} device_entry_t;

/* A message that waits for a reread of the registry's devices, parsed. */
typedef struct parked {
    ch_health_mqtt_msg_t m;
    int64_t at;      /* when it came */
    char topic[128]; /* its start, for the log of a drop */
} parked_t;

/* The feed's rereads of devices on the store worker: the ids to read, or all of them. */
typedef struct reread_job {
    struct ch_health_devices *d;
    int64_t *ids;
    size_t nids, cids;
    int all;
    ch_device_list_t found; /* the records read (the ids read that are not there are gone) */
} reread_job_t;

/* Transitions to write on the store worker. */
typedef struct trans_job {
    struct ch_health_devices *d;
    ch_device_transition_t *t; /* strings owned */
    size_t n, cap;
    size_t failed;
} trans_job_t;

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
    ch_store_watch_t *watch; /* the registry's changes of devices (the store's change feed) */
    /* The store worker (NULL: the loop's handle st, on the loop). */
    ch_store_worker_t *worker;
    reread_job_t *want;  /* rereads asked for, not yet on the worker */
    int rereading;       /* a reread is on the worker */
    trans_job_t *writes; /* transitions not yet on the worker */
    int writing;         /* a write is on the worker */
    parked_t *parked;    /* messages waiting for the reread, in order */
    size_t nparked;
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

static void dev_free(device_entry_t *v)
{
    ch_free(v->name);
    ch_free(v->kind);
    ch_free(v);
}

/* Takes v out of the table and frees it: the entries after it in its cluster that could no
 * longer be reached past the hole move back (no tombstones). */
static void dev_remove(ch_health_devices_t *d, device_entry_t *v)
{
    size_t mask = d->dcap - 1;
    size_t hole = dev_hash(v->id, d->dcap);
    while (d->devs[hole] != v) {
        hole = (hole + 1) & mask;
    }
    for (size_t j = (hole + 1) & mask; d->devs[j] != NULL; j = (j + 1) & mask) {
        size_t home = dev_hash(d->devs[j]->id, d->dcap);
        /* j's entry stays when its home lies cyclically in (hole, j]. */
        int stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (!stays) {
            d->devs[hole] = d->devs[j];
            hole = j;
        }
    }
    d->devs[hole] = NULL;
    d->dcount--;
    dev_free(v);
}

/* The registry's record of a device: its copy follows (its state stays), or is made. */
static void dev_set(ch_health_devices_t *d, const ch_device_t *rec)
{
    device_entry_t *v = dev_find(d, rec->id);
    if (v == NULL) {
        v = ch_calloc(1, sizeof(*v));
        v->id = rec->id;
        v->state = "unknown";
        v->heartbeat_ms = d->heartbeat_ms;
        dev_insert(d, v);
    } else {
        ch_free(v->name);
        ch_free(v->kind);
    }
    v->agency_id = rec->agency_id; /* moved: its topic's agency changes too */
    v->name = ch_strdup(rec->name);
    v->kind = ch_strdup(rec->kind);
    v->located = rec->located;
    v->lat = rec->lat;
    v->lon = rec->lon;
}

/* Reads every device of the registry into *out (appended), page by page. 0 or a store code. */
static int read_all(ch_store_t *st, ch_device_list_t *out)
{
    ch_store_filter_t f = {.limit = 1000};
    for (;;) {
        ch_device_list_t page;
        int rc = ch_store_device_list(st, &f, &page);
        if (rc != 0) {
            return rc;
        }
        if (page.count > 0) {
            out->items = ch_realloc(out->items, (out->count + page.count) * sizeof(*out->items));
            memcpy(out->items + out->count, page.items, page.count * sizeof(*page.items));
            out->count += page.count;
            f.after_id = page.items[page.count - 1].id;
        }
        size_t n = page.count;
        ch_free(page.items); /* the records moved into out */
        if (n < 1000) {
            return 0;
        }
    }
}

/* Reads the devices of j (all, or its ids) with st into j->found. */
static int reread_work(ch_store_t *st, void *ud)
{
    reread_job_t *j = ud;
    if (j->all) {
        return read_all(st, &j->found);
    }
    j->found.items = ch_calloc(j->nids + 1, sizeof(*j->found.items));
    for (size_t i = 0; i < j->nids; i++) {
        ch_device_t *rec = &j->found.items[j->found.count];
        int rc = ch_store_device_get(st, j->ids[i], rec);
        if (rc == 0) {
            j->found.count++;
        } else if (rc != CH_ENOTFOUND) {
            return rc;
        }
    }
    return 0;
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Takes what a reread found: the devices read follow their records; the ids asked for (every
 * device held, for all) that were not found are gone from the registry and go. */
static void reread_apply(ch_health_devices_t *d, reread_job_t *j)
{
    int64_t *found = ch_calloc(j->found.count + 1, sizeof(*found));
    for (size_t i = 0; i < j->found.count; i++) {
        dev_set(d, &j->found.items[i]);
        found[i] = j->found.items[i].id;
    }
    qsort(found, j->found.count, sizeof(*found), cmp_id);
    int64_t *asked = j->ids;
    size_t nasked = j->nids;
    int64_t *held = NULL;
    if (j->all) {
        held = ch_calloc(d->dcount + 1, sizeof(*held));
        nasked = 0;
        for (size_t i = 0; i < d->dcap; i++) {
            if (d->devs[i] != NULL) {
                held[nasked++] = d->devs[i]->id;
            }
        }
        asked = held;
    }
    for (size_t i = 0; i < nasked; i++) {
        if (bsearch(&asked[i], found, j->found.count, sizeof(*found), cmp_id) == NULL) {
            device_entry_t *v = dev_find(d, asked[i]);
            if (v != NULL) {
                dev_remove(d, v);
            }
        }
    }
    ch_free(held);
    ch_free(found);
}

static void reread_free(reread_job_t *j)
{
    if (j != NULL) {
        ch_free(j->ids);
        ch_device_list_free(&j->found);
        ch_free(j);
    }
}

static void replay_parked(ch_health_devices_t *d);
static void reread_send(ch_health_devices_t *d);

static void reread_done(void *ud, int rc)
{
    reread_job_t *j = ud;
    ch_health_devices_t *d = j->d;
    d->rereading = 0;
    d->handles--;
    if (d->closing) {
        reread_free(j);
        if (d->handles == 0) {
            ch_health_devices_close(d); /* finishes the free */
        }
        return;
    }
    if (rc == 0) {
        reread_apply(d, j);
    } else {
        /* The copies stay as they were; the next change of devices reads again. */
        ch_log(CH_LOG_ERROR, "health", "msg=\"devices not read again\" error=\"%s\"",
               ch_strerror(rc));
    }
    reread_free(j);
    reread_send(d);
    if (!d->rereading) {
        replay_parked(d);
    }
}

/* Sends the rereads asked for to the worker, unless one is there already; without a worker (or
 * with one that is full or closing), reads them here with the loop's handle. */
static void reread_send(ch_health_devices_t *d)
{
    reread_job_t *j = d->want;
    if (d->rereading || j == NULL) {
        return;
    }
    d->want = NULL;
    if (d->worker != NULL && ch_store_async(d->worker, reread_work, reread_done, j) == 0) {
        d->rereading = 1;
        d->handles++;
        return;
    }
    d->rereading = 1;
    d->handles++;
    reread_done(j, reread_work(d->st, j));
}

/* The store's change feed of devices, on the loop (whoever wrote them: the API, an import): the
 * devices changed are read again, after any reread asked for before. */
static void on_device_changed(void *ud, const ch_store_change_t *c)
{
    ch_health_devices_t *d = ud;
    if (d->closing) {
        return;
    }
    reread_job_t *j = d->want;
    if (j == NULL) {
        j = d->want = ch_calloc(1, sizeof(*j));
        j->d = d;
    }
    if (c->id <= 0) {
        j->all = 1; /* many devices: the registry's again */
    } else if (!j->all) {
        if (j->nids == j->cids) {
            j->cids = j->cids ? j->cids * 2 : 8;
            j->ids = ch_realloc(j->ids, j->cids * sizeof(*j->ids));
        }
        j->ids[j->nids++] = c->id;
    }
    reread_send(d);
}

/* The device of a message, from memory. NULL when the registry has no such device or it
 * belongs to another agency than the topic says. */
static device_entry_t *dev_lookup(ch_health_devices_t *d, int64_t agency_id, int64_t id)
{
    device_entry_t *v = dev_find(d, id);
    return v != NULL && v->agency_id == agency_id ? v : NULL;
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

static void trans_free(trans_job_t *j)
{
    if (j != NULL) {
        for (size_t i = 0; i < j->n; i++) {
            ch_free(j->t[i].from_state);
            ch_free(j->t[i].to_state);
            ch_free(j->t[i].reason);
        }
        ch_free(j->t);
        ch_free(j);
    }
}

static int trans_work(ch_store_t *st, void *ud)
{
    trans_job_t *j = ud;
    int rc = 0;
    for (size_t i = 0; i < j->n; i++) {
        int one = ch_store_device_transition_create(st, &j->t[i]);
        if (one != 0) {
            j->failed++;
            rc = one;
        }
    }
    return rc;
}

static void trans_send(ch_health_devices_t *d);

static void trans_done(void *ud, int rc)
{
    trans_job_t *j = ud;
    ch_health_devices_t *d = j->d;
    if (rc != 0) {
        ch_log(CH_LOG_ERROR, "health",
               "msg=\"device transitions not stored\" count=%zu error=\"%s\"", j->failed,
               ch_strerror(rc));
    }
    trans_free(j);
    d->writing = 0;
    d->handles--;
    if (d->closing && d->handles == 0) {
        trans_free(d->writes);
        d->writes = NULL;
        ch_health_devices_close(d); /* finishes the free */
        return;
    }
    trans_send(d);
}

/* Sends the transitions not yet written to the worker, unless a write is there already;
 * without a worker (or with one that is full or closing), writes them here. */
static void trans_send(ch_health_devices_t *d)
{
    trans_job_t *j = d->writes;
    if (d->writing || j == NULL) {
        return;
    }
    d->writes = NULL;
    d->writing = 1;
    d->handles++;
    if (d->worker != NULL && ch_store_async(d->worker, trans_work, trans_done, j) == 0) {
        return;
    }
    trans_done(j, trans_work(d->st, j));
}

/* Moves v to state (a static string) at time at: queued for the store (written in order, on
 * the worker when there is one), then told. */
static void dev_transition(ch_health_devices_t *d, device_entry_t *v, const char *state, int64_t at,
                           const char *reason)
{
    if (strcmp(v->state, state) == 0) {
        return;
    }
    const char *old = v->state;
    v->state = state;
    v->since_ms = at;
    trans_job_t *j = d->writes;
    if (j == NULL) {
        j = d->writes = ch_calloc(1, sizeof(*j));
        j->d = d;
    }
    if (j->n == j->cap) {
        j->cap = j->cap ? j->cap * 2 : 16;
        j->t = ch_realloc(j->t, j->cap * sizeof(*j->t));
    }
    j->t[j->n++] = (ch_device_transition_t){
        .device_id = v->id,
        .agency_id = v->agency_id,
        .from_state = ch_strdup(old),
        .to_state = ch_strdup(state),
        .at = at,
        .reason = reason != NULL ? ch_strdup(reason) : NULL,
    };
    trans_send(d);
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

/* A parsed message of a device the watch holds, come at now. */
static void handle_device(ch_health_devices_t *d, const char *topic, const ch_health_mqtt_msg_t *mp,
                          device_entry_t *v, int64_t now)
{
    const ch_health_mqtt_msg_t m = *mp;
    if (m.kind == CH_HEALTH_MQTT_EVENT && strcmp(v->kind, "emergency-bell") != 0) {
        drop(d, DROP_DEVICE, topic, "a bell-pressed event from a device that is not a bell");
        return;
    }
    d->accepted++;
    v->heard = 1;
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
    int64_t now = now_ms(d);
    device_entry_t *v = dev_lookup(d, m.agency_id, m.device_id);
    if (v == NULL && (d->rereading || d->want != NULL) && d->nparked < PARK_MAX) {
        /* The registry's devices are being read again (one was created, moved or deleted a
         * moment ago): the message waits for that read. */
        if (d->parked == NULL) {
            d->parked = ch_calloc(PARK_MAX, sizeof(*d->parked));
        }
        parked_t *p = &d->parked[d->nparked++];
        p->m = m;
        p->at = now;
        snprintf(p->topic, sizeof(p->topic), "%s", topic);
        return;
    }
    if (v == NULL) {
        drop(d, DROP_DEVICE, topic, "no such device of that agency in the registry");
        return;
    }
    handle_device(d, topic, &m, v, now);
}

/* The messages that waited for a reread, in the order they came, now that it is done. */
static void replay_parked(ch_health_devices_t *d)
{
    size_t n = d->nparked;
    d->nparked = 0;
    for (size_t i = 0; i < n; i++) {
        const parked_t *p = &d->parked[i];
        device_entry_t *v = dev_lookup(d, p->m.agency_id, p->m.device_id);
        if (v == NULL) {
            drop(d, DROP_DEVICE, p->topic, "no such device of that agency in the registry");
        } else {
            handle_device(d, p->topic, &p->m, v, p->at);
        }
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
    if (ch_store_watch(st, CH_STORE_T_DEVICES, on_device_changed, d, &d->watch) != 0) {
        rc = CH_EDB;
        goto fail;
    }
    /* The registry's devices, once; the feed keeps them (at start, on the loop's handle). */
    ch_device_list_t all = {0};
    if (read_all(st, &all) != 0) {
        ch_log(CH_LOG_ERROR, "health", "msg=\"devices not read\" error=\"%s\"",
               ch_store_errmsg(st));
        ch_device_list_free(&all);
        ch_store_unwatch(st, d->watch);
        rc = CH_EDB;
        goto fail;
    }
    for (size_t i = 0; i < all.count; i++) {
        dev_set(d, &all.items[i]);
    }
    ch_device_list_free(&all);
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

void ch_health_devices_set_worker(ch_health_devices_t *d, ch_store_worker_t *w)
{
    if (d != NULL) {
        d->worker = w;
    }
}

int ch_health_devices_state(const ch_health_devices_t *d, int64_t id, ch_health_device_state_t *out)
{
    const device_entry_t *v = dev_find(d, id);
    if (v == NULL || !v->heard) {
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
        ch_store_unwatch(d->st, d->watch);
        d->watch = NULL;
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
    reread_free(d->want);
    trans_free(d->writes);
    ch_free(d->parked);
    for (size_t i = 0; i < d->dcap; i++) {
        if (d->devs[i] != NULL) {
            dev_free(d->devs[i]);
        }
    }
    ch_free(d->devs);
    ch_free(d->host);
    ch_free(d->client_id);
    ch_free(d->prefix);
    ch_free(d->subscription);
    ch_free(d);
}

/*
 * The API end to end in one process: the real HTTP server (net) and the API on a loop thread,
 * a temporary SQLite store, and a plain blocking socket client on 127.0.0.1. Exercises CRUD,
 * filters and pagination, errors (400, 404, 405, 409, 413, 415), imports, and checks that
 * camera credentials never appear in any answer or log line. Every change goes on a real audit
 * log, and the last test reads it back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/api.h"
#include "auth/auth.h"
#include "event/event.h"
#include "geo/geo.h"
#include "registry/registry.h"

#include <jansson.h>

#define SECRET_PASSWORD "Pw-s3cret-9f1c"
#define SECRET_USER     "user-hidden-77aa"
#define SECRET_HOST     "cam-hidden-host"

typedef struct server {
    pthread_t thread;
    uv_loop_t loop;
    uv_async_t stop;
    uv_sem_t ready;
    ch_store_t *st;
    ch_api_t *api;
    ch_event_engine_t *events;
    ch_geo_t *geo;          /* the slot the API reads (the hub's keeper's in serve.c) */
    ch_registry_t registry; /* its use cases, with no follower here */
    ch_audit_t *audit;
    ch_http_server_t *http;
    char dir[64];
    char url[128];
    char log_path[128];
    int saved_stderr;
    int port;
    int failed;
    ch_buf_t answers; /* every answer received, for the credential check */
} server_t;

static server_t srv;

/* The administrator's session the client sends with every request (made in the store). */
static char admin_token[CH_AUTH_TOKEN_LEN + 1];
static char admin_csrf[CH_AUTH_TOKEN_LEN + 1];

static int make_admin_session(ch_store_t *st)
{
    char hash[CH_AUTH_HASH_MAX], token_hash[CH_AUTH_SHA256_HEX];
    if (ch_auth_password_hash("admin-password", 14, hash) != 0) {
        return -1;
    }
    ch_user_t u = {.name = "admin", .role = "admin", .password_hash = hash};
    if (ch_store_user_create(st, &u) != 0) {
        return -1;
    }
    ch_auth_random_token(admin_token);
    ch_auth_random_token(admin_csrf);
    ch_auth_sha256_hex(admin_token, strlen(admin_token), token_hash);
    ch_session_t s = {.token_hash = token_hash,
                      .user_id = u.id,
                      .csrf = admin_csrf,
                      .expires_at = ch_time_now_ms() + 3600 * 1000};
    return ch_store_session_create(st, &s);
}

static void on_server_down(void *ud)
{
    server_t *s = ud;
    uv_close((uv_handle_t *)&s->stop, NULL);
}

static void on_stop(uv_async_t *a)
{
    server_t *s = a->data;
    ch_http_server_shutdown(s->http, on_server_down, s);
}

/* What the hub builds before the API (serve.c): the geo index, the registry and the events
 * engine. */
static int start_events(server_t *s, ch_api_services_t *svc)
{
    s->geo = ch_geo_new();
    if (ch_geo_load(s->geo, s->st) != 0) {
        return -1;
    }
    ch_registry_init(&s->registry, s->st);
    ch_event_config_t ecfg = {.st = s->st, .audit = s->audit};
    s->events = ch_event_engine_new(&ecfg);
    ch_event_set_geo(s->events, s->geo);
    svc->geo = &s->geo;
    svc->registry = &s->registry;
    svc->events = s->events;
    if (ch_api_audit_index_sync(s->audit, s->st) != 0 || ch_event_restore(s->events) != 0) {
        return -1;
    }
    return 0;
}

/* The loop thread: opens everything, reports the port, and runs until asked to stop. */
static void *server_main(void *arg)
{
    server_t *s = arg;
    char *err = NULL;
    uv_loop_init(&s->loop);
    char audit_dir[96];
    snprintf(audit_dir, sizeof(audit_dir), "%s/audit", s->dir);
    ch_audit_key_t key;
    ch_audit_options_t aopt = {.dir = audit_dir, .key = &key};
    if (ch_audit_keys_init(s->dir, &err) != 0 || ch_audit_keys_load(s->dir, &key, &err) != 0 ||
        ch_audit_open(&aopt, &s->audit, &err) != 0) {
        fprintf(stderr, "audit start failed: %s\n", err ? err : "?");
        ch_free(err);
        s->failed = 1;
        uv_sem_post(&s->ready);
        return NULL;
    }
    ch_audit_key_wipe(&key);
    ch_api_config_t cfg = {.store_url = s->url, .started_at_ms = ch_time_now_ms()};
    ch_api_services_t svc = {.audit = s->audit};
    if (ch_store_open(s->url, &s->st, &err) != 0 || make_admin_session(s->st) != 0 ||
        start_events(s, &svc) != 0 || ch_api_new(&s->loop, s->st, &cfg, &svc, &s->api) != 0 ||
        ch_http_server_new(&s->loop, NULL, ch_api_handle, ch_api_body_limit, s->api, &s->http) !=
            0 ||
        ch_http_server_listen(s->http, "127.0.0.1:0") != 0) {
        fprintf(stderr, "server start failed: %s\n", err ? err : "?");
        ch_free(err);
        s->failed = 1;
        uv_sem_post(&s->ready);
        return NULL;
    }
    s->port = ch_http_server_port(s->http);
    s->stop.data = s;
    uv_async_init(&s->loop, &s->stop, on_stop);
    uv_sem_post(&s->ready);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    ch_api_free(s->api);
    ch_event_engine_free(s->events);
    ch_geo_free(s->geo);
    ch_store_close(s->st);
    ch_audit_close(s->audit);
    uv_loop_close(&s->loop);
    return NULL;
}

static int start_server(void **state)
{
    memset(&srv, 0, sizeof(srv));
    ch_buf_init(&srv.answers);
    snprintf(srv.dir, sizeof(srv.dir), "/tmp/ch_api_test_XXXXXX");
    assert_non_null(mkdtemp(srv.dir));
    snprintf(srv.url, sizeof(srv.url), "sqlite:%s/hub.db", srv.dir);
    /* Capture the log (stderr) to check what it says and what it must never say. */
    snprintf(srv.log_path, sizeof(srv.log_path), "%s/log.txt", srv.dir);
    int fd = open(srv.log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    srv.saved_stderr = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
    uv_sem_init(&srv.ready, 0);
    assert_int_equal(pthread_create(&srv.thread, NULL, server_main, &srv), 0);
    uv_sem_wait(&srv.ready);
    if (srv.failed) {
        pthread_join(srv.thread, NULL);
        dup2(srv.saved_stderr, STDERR_FILENO);
        return -1;
    }
    return 0;
}

static int stop_server(void **state)
{
    uv_async_send(&srv.stop);
    pthread_join(srv.thread, NULL);
    uv_sem_destroy(&srv.ready);
    dup2(srv.saved_stderr, STDERR_FILENO);
    close(srv.saved_stderr);
    ch_buf_fini(&srv.answers);
    /* The store (with its WAL files), the log, the keys and the audit log. */
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", srv.dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* ---- a small blocking client -------------------------------------------------------------- */

typedef struct resp {
    int status;
    char head[4096];
    char *body;
    size_t body_len;
    json_t *json; /* the body parsed, when it is JSON */
} resp_t;

static void resp_fini(resp_t *r)
{
    ch_free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

/* Finds header name in the response head; copies its value into out ("" when absent). */
static const char *resp_header(const resp_t *r, const char *name, char *out, size_t size)
{
    char needle[64];
    snprintf(needle, sizeof(needle), "\r\n%s:", name);
    const char *p = strcasestr(r->head, needle);
    out[0] = '\0';
    if (p != NULL) {
        p += strlen(needle);
        while (*p == ' ') {
            p++;
        }
        size_t n = strcspn(p, "\r\n");
        snprintf(out, size, "%.*s", (int)n, p);
    }
    return out;
}

/* Sends one request on a new connection and reads the whole response (by Content-Length). */
static void http(const char *method, const char *target, const char *content_type, const void *body,
                 size_t body_len, resp_t *r)
{
    memset(r, 0, sizeof(*r));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ch_buf_t req;
    ch_buf_init(&req);
    ch_buf_appendf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method,
                   target);
    ch_buf_appendf(&req, "Cookie: " CH_AUTH_COOKIE "=%s\r\nX-CSRF-Token: %s\r\n", admin_token,
                   admin_csrf);
    if (content_type != NULL) {
        ch_buf_appendf(&req, "Content-Type: %s\r\n", content_type);
    }
    if (body != NULL) {
        ch_buf_appendf(&req, "Content-Length: %zu\r\n", body_len);
    }
    ch_buf_append_str(&req, "\r\n");
    if (body != NULL) {
        ch_buf_append(&req, body, body_len);
    }
    size_t off = 0;
    while (off < req.len) {
        ssize_t w = send(fd, req.data + off, req.len - off, MSG_NOSIGNAL);
        if (w <= 0) {
            break; /* the server may answer (413) and close before reading everything */
        }
        off += (size_t)w;
    }
    ch_buf_fini(&req);
    ch_buf_t in;
    ch_buf_init(&in);
    char chunk[65536];
    size_t need = SIZE_MAX;
    for (;;) {
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        if (n <= 0) {
            break;
        }
        ch_buf_append(&in, chunk, (size_t)n);
        char *end = strstr(in.data, "\r\n\r\n");
        if (end != NULL && need == SIZE_MAX) {
            size_t head_len = (size_t)(end - in.data) + 4;
            char *cl = strcasestr(in.data, "\r\nContent-Length:");
            size_t len = 0;
            if (cl != NULL && cl < end) {
                len = strtoul(cl + 17, NULL, 10);
            }
            need = head_len + len;
        }
        if (need != SIZE_MAX && in.len >= need) {
            break;
        }
    }
    close(fd);
    char *end = strstr(in.data, "\r\n\r\n");
    assert_non_null(end);
    size_t head_len = (size_t)(end - in.data) + 2;
    snprintf(r->head, sizeof(r->head), "%.*s", (int)head_len, in.data);
    r->status = (int)strtol(in.data + 9, NULL, 10);
    r->body_len = in.len - head_len - 2;
    r->body = ch_strndup(end + 4, r->body_len);
    ch_buf_append(&srv.answers, in.data, in.len);
    ch_buf_append_char(&srv.answers, '\n');
    ch_buf_fini(&in);
    char ctype[128];
    if (strstr(resp_header(r, "Content-Type", ctype, sizeof(ctype)), "json") != NULL) {
        r->json = json_loadb(r->body, r->body_len, 0, NULL);
    }
}

static void http_json(const char *method, const char *target, const char *json_text, resp_t *r)
{
    http(method, target, "application/json", json_text, json_text ? strlen(json_text) : 0, r);
}

static const char *error_code(const resp_t *r)
{
    return json_string_value(json_object_get(json_object_get(r->json, "error"), "code"));
}

static const char *error_field(const resp_t *r)
{
    const char *f = json_string_value(json_object_get(json_object_get(r->json, "error"), "field"));
    return f ? f : "";
}

static int64_t id_of(const resp_t *r)
{
    return json_integer_value(json_object_get(r->json, "id"));
}

/* Creates an agency and returns its id. */
static int64_t make_agency(const char *name)
{
    char body[256];
    snprintf(body, sizeof(body),
             "{\"name\":\"%s\",\"kind\":\"provider\",\"level\":\"district\",\"type\":\"district-"
             "center\"}",
             name);
    resp_t r;
    http_json("POST", "/api/v1/agencies", body, &r);
    assert_int_equal(r.status, 201);
    int64_t id = id_of(&r);
    resp_fini(&r);
    return id;
}

static int64_t make_camera(int64_t agency_id, const char *name, double lat, double lon,
                           const char *kind)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"agency_id\":%lld,\"name\":\"%s\",\"lat\":%.6f,\"lon\":%.6f,\"kind\":\"%s\"}",
             (long long)agency_id, name, lat, lon, kind);
    resp_t r;
    http_json("POST", "/api/v1/cameras", body, &r);
    assert_int_equal(r.status, 201);
    int64_t id = id_of(&r);
    resp_fini(&r);
    return id;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_health_version_and_document_are_served(void **state)
{
    resp_t r;
    http("GET", "/api/v1/health", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "ok");
    assert_true(json_is_integer(json_object_get(r.json, "uptime_s")));
    resp_fini(&r);
    http("GET", "/api/v1/version", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "name")), "cctvhub");
    assert_string_equal(json_string_value(json_object_get(r.json, "version")), CH_VERSION);
    assert_true(json_integer_value(json_object_get(r.json, "schema")) >= 1);
    resp_fini(&r);
    http("GET", "/api/v1/openapi.yaml", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    char ctype[64];
    assert_string_equal(resp_header(&r, "Content-Type", ctype, sizeof(ctype)), "application/yaml");
    assert_true(strncmp(r.body, "openapi: 3.0.3", 14) == 0);
    resp_fini(&r);
}

static void test_unknown_path_is_404_and_wrong_method_405_with_allow(void **state)
{
    resp_t r;
    char allow[64];
    http("GET", "/api/v1/nope", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(error_code(&r), "not_found");
    resp_fini(&r);
    http("DELETE", "/api/v1/cameras", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 405);
    assert_string_equal(error_code(&r), "method_not_allowed");
    assert_string_equal(resp_header(&r, "Allow", allow, sizeof(allow)), "GET, POST");
    resp_fini(&r);
    http("POST", "/api/v1/agencies/1", "application/json", "{}", 2, &r);
    assert_int_equal(r.status, 405);
    assert_string_equal(resp_header(&r, "Allow", allow, sizeof(allow)), "GET, PUT, PATCH, DELETE");
    resp_fini(&r);
}

static void test_agency_crud_and_duplicate_name(void **state)
{
    resp_t r;
    const char *body = "{\"name\":\"대전광역시 서구\",\"kind\":\"provider\",\"level\":\"district\","
                       "\"type\":\"district-center\",\"phone\":\"042-288-2114\"}";
    http_json("POST", "/api/v1/agencies", body, &r);
    assert_int_equal(r.status, 201);
    int64_t id = id_of(&r);
    assert_true(id > 0);
    char loc[64], want[64];
    snprintf(want, sizeof(want), "/api/v1/agencies/%lld", (long long)id);
    assert_string_equal(resp_header(&r, "Location", loc, sizeof(loc)), want);
    assert_string_equal(json_string_value(json_object_get(r.json, "name")), "대전광역시 서구");
    assert_true(json_is_string(json_object_get(r.json, "created_at")));
    resp_fini(&r);

    http_json("POST", "/api/v1/agencies", body, &r);
    assert_int_equal(r.status, 409);
    assert_string_equal(error_code(&r), "exists");
    assert_string_equal(error_field(&r), "name");
    resp_fini(&r);

    http("GET", want, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "phone")), "042-288-2114");
    resp_fini(&r);

    http_json("PUT", want,
              "{\"name\":\"대전광역시 서구청\",\"kind\":\"both\",\"level\":\"district\","
              "\"type\":\"district-center\"}",
              &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "kind")), "both");
    assert_true(json_is_null(json_object_get(r.json, "phone"))); /* full update */
    resp_fini(&r);

    http_json("PATCH", want, "{\"phone\":\"042-000-0000\"}", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "phone")), "042-000-0000");
    assert_string_equal(json_string_value(json_object_get(r.json, "name")), "대전광역시 서구청");
    resp_fini(&r);

    http_json("PATCH", want, "{\"level\":\"galaxy\"}", &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(error_field(&r), "level");
    resp_fini(&r);

    http("DELETE", want, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 204);
    resp_fini(&r);
    http("GET", want, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 404);
    resp_fini(&r);
    http_json("PUT", want,
              "{\"name\":\"x\",\"kind\":\"both\",\"level\":\"city\",\"type\":\"other\"}", &r);
    assert_int_equal(r.status, 404);
    resp_fini(&r);
    http("DELETE", want, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 404);
    resp_fini(&r);
    http("GET", "/api/v1/agencies/abc", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 404);
    resp_fini(&r);
}

static void test_bodies_are_checked_before_the_store(void **state)
{
    int64_t agency = make_agency("검증구");
    resp_t r;
    http("POST", "/api/v1/cameras", "text/plain", "{}", 2, &r);
    assert_int_equal(r.status, 415);
    assert_string_equal(error_code(&r), "unsupported_media_type");
    resp_fini(&r);
    http_json("POST", "/api/v1/cameras", "{\"agency_id\":", &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(error_code(&r), "bad_json");
    resp_fini(&r);
    char body[256];
    snprintf(body, sizeof(body), "{\"agency_id\":%lld,\"name\":\"c\",\"lat\":37.5}",
             (long long)agency);
    http_json("POST", "/api/v1/cameras", body, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(error_code(&r), "invalid");
    assert_string_equal(error_field(&r), "lon");
    resp_fini(&r);
    snprintf(body, sizeof(body), "{\"agency_id\":%lld,\"name\":\"c\",\"zoom\":3}",
             (long long)agency);
    http_json("POST", "/api/v1/cameras", body, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(error_field(&r), "zoom");
    resp_fini(&r);
    http_json("POST", "/api/v1/cameras", "{\"agency_id\":987654,\"name\":\"orphan\"}", &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(error_field(&r), "agency_id");
    resp_fini(&r);
    /* 2 MiB is over the default body limit of every route but imports. */
    size_t big = 2u << 20;
    char *blob = ch_calloc(1, big);
    http("POST", "/api/v1/cameras", "application/json", blob, big, &r);
    assert_int_equal(r.status, 413);
    resp_fini(&r);
    http("POST", "/api/v1/imports", "text/csv", blob, big, &r);
    assert_int_equal(r.status, 422); /* read in full, then rejected as binary */
    assert_string_equal(error_code(&r), "import_rejected");
    resp_fini(&r);
    ch_free(blob);
}

static void test_camera_credentials_are_stored_but_never_returned(void **state)
{
    int64_t agency = make_agency("자격증명구");
    char body[512];
    snprintf(body, sizeof(body),
             "{\"agency_id\":%lld,\"name\":\"secure cam\",\"lat\":36.35,\"lon\":127.38,"
             "\"rtsp_url\":\"rtsp://" SECRET_USER ":" SECRET_PASSWORD "@" SECRET_HOST "/s1\","
             "\"rtsp_username\":\"" SECRET_USER "\",\"rtsp_password\":\"" SECRET_PASSWORD "\"}",
             (long long)agency);
    resp_t r;
    http_json("POST", "/api/v1/cameras", body, &r);
    assert_int_equal(r.status, 201);
    assert_true(json_is_true(json_object_get(r.json, "rtsp_configured")));
    assert_null(json_object_get(r.json, "rtsp_url"));
    int64_t id = id_of(&r);
    resp_fini(&r);
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/cameras/%lld", (long long)id);
    /* A full update without credentials keeps them... */
    snprintf(body, sizeof(body), "{\"agency_id\":%lld,\"name\":\"secure cam 2\"}",
             (long long)agency);
    http_json("PUT", path, body, &r);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "rtsp_configured")));
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "unlocated");
    resp_fini(&r);
    /* ...and a bad one is refused without echoing it. */
    http_json("PATCH", path, "{\"rtsp_url\":\"ftp://" SECRET_PASSWORD "@x\"}", &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(error_field(&r), "rtsp_url");
    resp_fini(&r);
    http_json("PATCH", path, "{\"rtsp_url\":null}", &r);
    assert_int_equal(r.status, 200);
    assert_true(json_is_false(json_object_get(r.json, "rtsp_configured")));
    resp_fini(&r);
    http("GET", "/api/v1/cameras?limit=1000", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    resp_fini(&r);
}

static void test_lists_filter_and_page_with_cursors(void **state)
{
    int64_t a1 = make_agency("목록구 하나");
    int64_t a2 = make_agency("목록구 둘");
    make_camera(a1, "둔산동 사거리", 36.351, 127.385, "ptz");
    make_camera(a1, "둔산동 공원", 36.352, 127.386, "fixed");
    make_camera(a1, "탄방동 학교", 36.341, 127.391, "fixed");
    make_camera(a2, "부산 해운대", 35.163, 129.163, "ptz");
    make_camera(a2, "부산 광안리", 35.153, 129.118, "fixed");
    resp_t r;
    char target[256];

    /* Page through agency a1's cameras two at a time. */
    snprintf(target, sizeof(target), "/api/v1/cameras?agency_id=%lld&limit=2", (long long)a1);
    http("GET", target, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 2);
    assert_int_equal(json_integer_value(json_object_get(r.json, "total")), 3);
    const char *next = json_string_value(json_object_get(r.json, "next"));
    assert_non_null(next);
    int64_t last = json_integer_value(
        json_object_get(json_array_get(json_object_get(r.json, "items"), 1), "id"));
    snprintf(target, sizeof(target), "/api/v1/cameras?agency_id=%lld&limit=2&cursor=%s",
             (long long)a1, next);
    resp_fini(&r);
    http("GET", target, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    json_t *items = json_object_get(r.json, "items");
    assert_int_equal(json_array_size(items), 1);
    assert_true(json_integer_value(json_object_get(json_array_get(items, 0), "id")) > last);
    assert_true(json_is_null(json_object_get(r.json, "next")));
    resp_fini(&r);

    /* Korean text, percent-encoded: "둔산" */
    http("GET", "/api/v1/cameras?q=%EB%91%94%EC%82%B0", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "total")), 2);
    resp_fini(&r);

    http("GET", "/api/v1/cameras?kind=ptz&bbox=129.0,35.0,129.5,35.5", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "total")), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(r.json, "items"), 0), "name")),
                        "부산 해운대");
    resp_fini(&r);

    http("GET", "/api/v1/agencies?type=district-center&limit=1000", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_true(json_integer_value(json_object_get(r.json, "total")) >= 2);
    resp_fini(&r);

    http("GET", "/api/v1/cameras?cursor=garbage!", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(error_field(&r), "cursor");
    resp_fini(&r);
    http("GET", "/api/v1/cameras?limit=0", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(error_field(&r), "limit");
    resp_fini(&r);
    http("GET", "/api/v1/devices?purpose=x", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(error_field(&r), "purpose");
    resp_fini(&r);
}

static void test_agency_with_cameras_cannot_be_deleted(void **state)
{
    int64_t agency = make_agency("삭제구");
    int64_t cam = make_camera(agency, "삭제 카메라", 36.0, 127.0, "fixed");
    char apath[64], cpath[64];
    snprintf(apath, sizeof(apath), "/api/v1/agencies/%lld", (long long)agency);
    snprintf(cpath, sizeof(cpath), "/api/v1/cameras/%lld", (long long)cam);
    resp_t r;
    http("DELETE", apath, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 409);
    assert_string_equal(error_code(&r), "conflict");
    resp_fini(&r);
    http("DELETE", cpath, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.body_len, 0);
    resp_fini(&r);
    http("GET", cpath, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 404);
    resp_fini(&r);
    http("DELETE", apath, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 204);
    resp_fini(&r);
}

static void test_device_crud(void **state)
{
    int64_t agency = make_agency("장치구");
    char body[256];
    snprintf(body, sizeof(body),
             "{\"agency_id\":%lld,\"name\":\"비상벨 1\",\"kind\":\"emergency-bell\",\"lat\":36.3,"
             "\"lon\":127.4,\"attrs\":{\"linked\":\"112\"}}",
             (long long)agency);
    resp_t r;
    http_json("POST", "/api/v1/devices", body, &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r.json, "attrs"), "linked")), "112");
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "active");
    int64_t id = id_of(&r);
    resp_fini(&r);
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/devices/%lld", (long long)id);
    http_json("PATCH", path, "{\"status\":\"fault\"}", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "fault");
    resp_fini(&r);
    http("GET", "/api/v1/devices?status=fault", NULL, NULL, 0, &r);
    assert_int_equal(json_integer_value(json_object_get(r.json, "total")), 1);
    resp_fini(&r);
    http("DELETE", path, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 204);
    resp_fini(&r);
}

static void test_import_of_a_real_file_answers_its_report(void **state)
{
    const char *name = "seoul_ansimi_cctv_jongno_20221201_cp949.csv";
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", CH_DATA_DIR, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    ch_buf_t b;
    ch_buf_init(&b);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        ch_buf_append(&b, chunk, n);
    }
    fclose(f);
    resp_t r;
    char target[256];
    snprintf(target, sizeof(target), "/api/v1/imports?name=%s", name);
    http("POST", target, "text/csv", b.data, b.len, &r);
    if (r.status != 201) {
        print_error("import answered %d: %.*s\n", r.status, (int)r.body_len, r.body);
    }
    assert_int_equal(r.status, 201);
    assert_true(json_is_true(json_object_get(r.json, "ok")));
    assert_true(json_integer_value(json_object_get(r.json, "cameras")) > 0);
    resp_fini(&r);
    http("GET", "/api/v1/cameras?limit=1", NULL, NULL, 0, &r);
    assert_true(json_integer_value(json_object_get(r.json, "total")) > 100);
    resp_fini(&r);
    http("POST", "/api/v1/imports?bogus=1", "text/csv", b.data, b.len, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(error_field(&r), "bogus");
    resp_fini(&r);
    ch_buf_fini(&b);
    http("POST", "/api/v1/imports", "text/csv", "hello,world\r\n1,2\r\n", 18, &r);
    assert_int_equal(r.status, 422);
    assert_string_equal(error_code(&r), "import_rejected");
    resp_fini(&r);
}

/* Runs last: everything answered and logged so far must be free of the credentials. */
static void test_credentials_never_appear_in_answers_or_logs(void **state)
{
    assert_true(srv.answers.len > 0);
    assert_null(strstr(srv.answers.data, SECRET_PASSWORD));
    assert_null(strstr(srv.answers.data, SECRET_USER));
    assert_null(strstr(srv.answers.data, SECRET_HOST));
    size_t len = 0;
    FILE *f = fopen(srv.log_path, "rb");
    assert_non_null(f);
    ch_buf_t b;
    ch_buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        ch_buf_append(&b, chunk, n);
        len += n;
    }
    fclose(f);
    assert_true(len > 0);
    assert_null(strstr(b.data, SECRET_PASSWORD));
    assert_null(strstr(b.data, SECRET_USER));
    assert_null(strstr(b.data, SECRET_HOST));
    /* One access line per request: method, path, status, duration. */
    assert_non_null(strstr(b.data, "msg=request method=POST path=/api/v1/cameras status=201 "
                                   "duration_ms="));
    assert_null(strstr(b.data, "cursor=")); /* queries are not logged */
    ch_buf_fini(&b);
}

/* Runs last: every change the tests above made through the API is on the audit record, with
 * the principal (the administrator) as actor, and no credential is. */
static void test_every_registry_change_is_on_the_audit_record(void **state)
{
    ch_audit_iter_t *it = NULL;
    assert_int_equal(ch_audit_iter_new(srv.audit, 0, &it), 0);
    ch_audit_record_t rec;
    int creates = 0, updates = 0, deletes = 0, import_starts = 0, imports = 0, records = 0;
    while (ch_audit_iter_next(it, &rec) == 0) {
        records++;
        json_error_t jerr;
        json_t *r = json_loads(rec.json, 0, &jerr);
        assert_non_null(r);
        const char *action = json_string_value(json_object_get(r, "action"));
        const char *actor = json_string_value(json_object_get(r, "actor"));
        assert_non_null(action);
        assert_non_null(actor);
        assert_string_equal(actor, "user:admin");
        assert_int_equal(json_integer_value(json_object_get(r, "seq")), (json_int_t)rec.seq);
        creates += strstr(action, ".create") != NULL;
        updates += strstr(action, ".update") != NULL;
        deletes += strstr(action, ".delete") != NULL;
        import_starts += strcmp(action, "import.start") == 0;
        imports += strcmp(action, "import") == 0;
        assert_null(strstr(rec.json, SECRET_PASSWORD));
        assert_null(strstr(rec.json, SECRET_USER));
        assert_null(strstr(rec.json, SECRET_HOST));
        json_decref(r);
    }
    ch_audit_iter_free(it);
    assert_true(records > 0);
    assert_true(creates >= 3);
    assert_true(updates >= 1);
    assert_true(deletes >= 1);
    assert_true(import_starts >= 1);
    assert_int_equal(import_starts, imports);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_version_and_document_are_served),
        cmocka_unit_test(test_unknown_path_is_404_and_wrong_method_405_with_allow),
        cmocka_unit_test(test_agency_crud_and_duplicate_name),
        cmocka_unit_test(test_bodies_are_checked_before_the_store),
        cmocka_unit_test(test_camera_credentials_are_stored_but_never_returned),
        cmocka_unit_test(test_lists_filter_and_page_with_cursors),
        cmocka_unit_test(test_agency_with_cameras_cannot_be_deleted),
        cmocka_unit_test(test_device_crud),
        cmocka_unit_test(test_import_of_a_real_file_answers_its_report),
        cmocka_unit_test(test_credentials_never_appear_in_answers_or_logs),
        cmocka_unit_test(test_every_registry_change_is_on_the_audit_record),
    };
    return cmocka_run_group_tests(tests, start_server, stop_server);
}

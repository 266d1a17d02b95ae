/*
 * api/routes.c: the route table and path matching. The table is the one list of what the API
 * serves: the dispatcher, the 405 Allow header and the OpenAPI test all read it.
 */
#include "api/api_ctx.h"
#include "auth/auth.h"

#include <stdio.h>
#include <string.h>

/* Who may call what: "public" needs no account. */
#define ROLES_ALL    "admin,operator,agency,provider,auditor"
#define ROLES_EDIT   "admin,operator,provider"
#define ROLES_ADMIN  "admin"
#define ROLES_IMPORT "admin,provider"
#define ROLES_AUDIT  "admin,auditor"
#define ROLES_GEO    "admin,operator,agency"
#define ROLES_PLAN   "admin,operator"
#define ROLES_EVENTS "admin,operator,agency"
#define ROLES_READEV "admin,operator,agency,auditor"
#define ROLES_REVOKE "admin,operator,provider"
#define ROLES_WATCH  "admin,operator,auditor"
#define ROLES_HEALTH "admin,operator,provider,auditor"
#define ROLES_ALERTS "admin,operator,auditor"
#define ROLES_ACK    "admin,operator"

/*
 * The one list of routes, expanded twice below (an X-macro): once into the public info array
 * and once into the dispatch data, so the two cannot drift apart.
 * X(method, path template, roles, route id, resource)
 */
#define RESOURCE_ROUTES(X, coll, res, edit_roles)                                                  \
    X("GET", "/api/v1/" coll, ROLES_ALL, CH_API__R_LIST, res)                                      \
    X("POST", "/api/v1/" coll, edit_roles, CH_API__R_CREATE, res)                                  \
    X("GET", "/api/v1/" coll "/{id}", ROLES_ALL, CH_API__R_GET, res)                               \
    X("PUT", "/api/v1/" coll "/{id}", edit_roles, CH_API__R_PUT, res)                              \
    X("PATCH", "/api/v1/" coll "/{id}", edit_roles, CH_API__R_PATCH, res)                          \
    X("DELETE", "/api/v1/" coll "/{id}", edit_roles, CH_API__R_DELETE, res)

#define ROUTES(X)                                                                                  \
    X("GET", "/api/v1/health", "public", CH_API__R_HEALTH, CH_API__AGENCIES)                       \
    X("GET", "/api/v1/version", "public", CH_API__R_VERSION, CH_API__AGENCIES)                     \
    X("GET", "/api/v1/openapi.yaml", "public", CH_API__R_OPENAPI, CH_API__AGENCIES)                \
    X("GET", "/metrics", ROLES_AUDIT, CH_API__R_METRICS, CH_API__AGENCIES)                         \
    RESOURCE_ROUTES(X, "agencies", CH_API__AGENCIES, ROLES_ADMIN)                                  \
    RESOURCE_ROUTES(X, "cameras", CH_API__CAMERAS, ROLES_EDIT)                                     \
    RESOURCE_ROUTES(X, "devices", CH_API__DEVICES, ROLES_EDIT)                                     \
    X("POST", "/api/v1/imports", ROLES_IMPORT, CH_API__R_IMPORT, CH_API__AGENCIES)                 \
    X("GET", "/api/v1/audit", ROLES_AUDIT, CH_API__R_AUDIT_LIST, CH_API__AGENCIES)                 \
    X("GET", "/api/v1/audit/checkpoint", "public", CH_API__R_AUDIT_CHECKPOINT, CH_API__AGENCIES)   \
    X("GET", "/api/v1/audit/proof", ROLES_AUDIT, CH_API__R_AUDIT_PROOF, CH_API__AGENCIES)          \
    X("GET", "/api/v1/audit/consistency", "public", CH_API__R_AUDIT_CONSISTENCY, CH_API__AGENCIES) \
    X("GET", "/api/v1/geo/near", ROLES_GEO, CH_API__R_GEO_NEAR, CH_API__CAMERAS)                   \
    X("POST", "/api/v1/geo/path", ROLES_GEO, CH_API__R_GEO_PATH, CH_API__CAMERAS)                  \
    X("POST", "/api/v1/geo/area", ROLES_GEO, CH_API__R_GEO_AREA, CH_API__CAMERAS)                  \
    X("POST", "/api/v1/geo/coverage", ROLES_PLAN, CH_API__R_GEO_COVERAGE, CH_API__CAMERAS)         \
    X("GET", "/api/v1/services", ROLES_ALL, CH_API__R_SERVICES, CH_API__AGENCIES)                  \
    X("POST", "/api/v1/session", "public", CH_API__R_SESSION_LOGIN, CH_API__AGENCIES)              \
    X("GET", "/api/v1/session", ROLES_ALL, CH_API__R_SESSION_GET, CH_API__AGENCIES)                \
    X("DELETE", "/api/v1/session", ROLES_ALL, CH_API__R_SESSION_LOGOUT, CH_API__AGENCIES)          \
    X("GET", "/api/v1/users", ROLES_ADMIN, CH_API__R_USERS_LIST, CH_API__AGENCIES)                 \
    X("POST", "/api/v1/users", ROLES_ADMIN, CH_API__R_USERS_CREATE, CH_API__AGENCIES)              \
    X("GET", "/api/v1/users/{id}", ROLES_ADMIN, CH_API__R_USERS_GET, CH_API__AGENCIES)             \
    X("PATCH", "/api/v1/users/{id}", ROLES_ADMIN, CH_API__R_USERS_PATCH, CH_API__AGENCIES)         \
    X("GET", "/api/v1/apikeys", ROLES_ADMIN, CH_API__R_APIKEYS_LIST, CH_API__AGENCIES)             \
    X("POST", "/api/v1/apikeys", ROLES_ADMIN, CH_API__R_APIKEYS_CREATE, CH_API__AGENCIES)          \
    X("DELETE", "/api/v1/apikeys/{id}", ROLES_ADMIN, CH_API__R_APIKEYS_REVOKE, CH_API__AGENCIES)   \
    X("POST", "/api/v1/events", ROLES_EVENTS, CH_API__R_EVENTS_OPEN, CH_API__AGENCIES)             \
    X("GET", "/api/v1/events", ROLES_READEV, CH_API__R_EVENTS_LIST, CH_API__AGENCIES)              \
    X("GET", "/api/v1/events/{id}", ROLES_ALL, CH_API__R_EVENTS_GET, CH_API__AGENCIES)             \
    X("POST", "/api/v1/events/{id}/approve", ROLES_PLAN, CH_API__R_EVENTS_APPROVE,                 \
      CH_API__AGENCIES)                                                                            \
    X("POST", "/api/v1/events/{id}/deny", ROLES_PLAN, CH_API__R_EVENTS_DENY, CH_API__AGENCIES)     \
    X("POST", "/api/v1/events/{id}/extend", ROLES_EVENTS, CH_API__R_EVENTS_EXTEND,                 \
      CH_API__AGENCIES)                                                                            \
    X("POST", "/api/v1/events/{id}/close", ROLES_EVENTS, CH_API__R_EVENTS_CLOSE, CH_API__AGENCIES) \
    X("POST", "/api/v1/events/{id}/revoke", ROLES_PLAN, CH_API__R_EVENTS_REVOKE, CH_API__AGENCIES) \
    X("POST", "/api/v1/events/{id}/positions", ROLES_EVENTS, CH_API__R_EVENTS_MOVE,                \
      CH_API__AGENCIES)                                                                            \
    X("POST", "/api/v1/grants/{id}/revoke", ROLES_REVOKE, CH_API__R_GRANTS_REVOKE,                 \
      CH_API__AGENCIES)                                                                            \
    X("GET", "/api/v1/ledger", ROLES_AUDIT, CH_API__R_LEDGER, CH_API__AGENCIES)                    \
    X("GET", "/api/v1/streams", ROLES_WATCH, CH_API__R_STREAMS, CH_API__AGENCIES)                  \
    X("GET", "/api/v1/cameras/{id}/live", "public", CH_API__R_LIVE, CH_API__CAMERAS)               \
    X("GET", "/", "public", CH_API__R_CONSOLE_INDEX, CH_API__AGENCIES)                             \
    X("GET", "/console/config.json", "public", CH_API__R_CONSOLE_CONFIG, CH_API__AGENCIES)         \
    X("GET", "/console/{path}", "public", CH_API__R_CONSOLE_FILE, CH_API__AGENCIES)                \
    X("GET", "/api/v1/cameras/{id}/health", ROLES_HEALTH, CH_API__R_CAMERA_HEALTH,                 \
      CH_API__CAMERAS)                                                                             \
    X("GET", "/api/v1/cameras/{id}/outages", ROLES_HEALTH, CH_API__R_CAMERA_OUTAGES,               \
      CH_API__CAMERAS)                                                                             \
    X("GET", "/api/v1/camera-health", ROLES_HEALTH, CH_API__R_HEALTH_LIST, CH_API__CAMERAS)        \
    X("GET", "/api/v1/reports/availability", ROLES_HEALTH, CH_API__R_AVAILABILITY,                 \
      CH_API__AGENCIES)                                                                            \
    X("GET", "/api/v1/alerts", ROLES_ALERTS, CH_API__R_ALERTS_LIST, CH_API__AGENCIES)              \
    X("GET", "/api/v1/alerts/live", ROLES_ALERTS, CH_API__R_ALERTS_LIVE, CH_API__AGENCIES)         \
    X("GET", "/api/v1/alerts/{id}", ROLES_ALERTS, CH_API__R_ALERTS_GET, CH_API__AGENCIES)          \
    X("POST", "/api/v1/alerts/{id}/ack", ROLES_ACK, CH_API__R_ALERTS_ACK, CH_API__AGENCIES)        \
    X("GET", "/api/v1/devices/{id}/state", ROLES_ALL, CH_API__R_DEVICE_STATE, CH_API__DEVICES)     \
    X("GET", "/api/v1/devices/{id}/transitions", ROLES_ALL, CH_API__R_DEVICE_TRANSITIONS,          \
      CH_API__DEVICES)                                                                             \
    X("GET", "/api/v1/mqtt", ROLES_WATCH, CH_API__R_MQTT, CH_API__AGENCIES)

#define AS_INFO(method, tmpl, roles, id, res)     {method, tmpl, roles},
#define AS_DISPATCH(method, tmpl, roles, id, res) {id, res},

static const ch_api_route_info_t route_infos[] = {ROUTES(AS_INFO)};

static const struct route_dispatch {
    ch_api__route_id_t id;
    ch_api__resource_t resource;
} route_dispatch[] = {ROUTES(AS_DISPATCH)};

const ch_api_route_info_t *ch_api_routes(size_t *count)
{
    *count = CH_ARRAY_SIZE(route_infos);
    return route_infos;
}

/*
 * What a role may call, from the same table the dispatcher enforces: "METHOD /path/template"
 * for every route the role's mask allows (public routes are not listed: anyone may call them).
 */
json_t *ch_api__capabilities_of(ch_api_t *api, unsigned role)
{
    /* A role is one bit: the list of each is built once (it depends on the route table only)
     * and shared by every answer that carries it (a new reference each; the loop's only). */
    unsigned i = 0;
    while (i < CH_ARRAY_SIZE(api->capabilities) && role != (1u << i)) {
        i++;
    }
    if (i == CH_ARRAY_SIZE(api->capabilities)) {
        return ch_api__capabilities(role);
    }
    if (api->capabilities[i] == NULL) {
        api->capabilities[i] = ch_api__capabilities(role);
    }
    return json_incref(api->capabilities[i]);
}

json_t *ch_api__capabilities(unsigned role)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < CH_ARRAY_SIZE(route_infos); i++) {
        const ch_api_route_info_t *r = &route_infos[i];
        if (role != 0 && (ch_auth_roles_mask(r->roles) & role) != 0) {
            char cap[160];
            (void)snprintf(cap, sizeof(cap), "%s %s", r->method, r->path_template);
            json_array_append_new(a, json_string(cap));
        }
    }
    return a;
}

/*
 * Matches a path against a template segment by segment; "{id}" matches one non-empty
 * segment, which is returned in *param; "{path}", last in a template, matches the non-empty
 * rest (slashes too: the console's files), returned in *param. Paths are compared undecoded:
 * every literal segment is plain ASCII, so "%61gencies" is simply not a route.
 */
static int template_match(const char *tmpl, ch_slice_t path, ch_slice_t *param)
{
    const char *p = path.ptr;
    const char *end = path.ptr + path.len;
    const char *t = tmpl;
    *param = (ch_slice_t){NULL, 0};
    while (*t != '\0') {
        if (strcmp(t, "{path}") == 0) {
            if (p == end) {
                return 0;
            }
            *param = (ch_slice_t){p, (size_t)(end - p)};
            return 1;
        }
        if (strncmp(t, "{id}", 4) == 0) {
            const char *seg = p;
            while (p < end && *p != '/') {
                p++;
            }
            if (p == seg) {
                return 0;
            }
            *param = (ch_slice_t){seg, (size_t)(p - seg)};
            t += 4;
            continue;
        }
        if (p == end || *p != *t) {
            return 0;
        }
        p++;
        t++;
    }
    return p == end;
}

/* 1 when the Allow list ("GET, POST") already names method. */
static int allow_has(const char *allow, const char *method)
{
    size_t n = strlen(method);
    for (const char *p = allow; (p = strstr(p, method)) != NULL; p += n) {
        if ((p == allow || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0')) {
            return 1;
        }
    }
    return 0;
}

int ch_api__route_match(ch_slice_t method, ch_slice_t path, ch_api__match_t *m)
{
    int path_known = 0;
    size_t allow_len = 0;
    m->allow[0] = '\0';
    for (size_t i = 0; i < CH_ARRAY_SIZE(route_infos); i++) {
        const ch_api_route_info_t *r = &route_infos[i];
        ch_slice_t param;
        if (!template_match(r->path_template, path, &param)) {
            continue;
        }
        if (ch_slice_eq(method, r->method)) {
            m->route = route_dispatch[i].id;
            m->resource = route_dispatch[i].resource;
            m->id = param;
            m->roles = ch_auth_roles_mask(r->roles);
            m->index = i;
            return 0;
        }
        path_known = 1;
        if (allow_has(m->allow, r->method)) {
            continue; /* /console/config.json also matches /console/{path} */
        }
        int n = snprintf(m->allow + allow_len, sizeof(m->allow) - allow_len, "%s%s",
                         allow_len ? ", " : "", r->method);
        if (n > 0 && (size_t)n < sizeof(m->allow) - allow_len) {
            allow_len += (size_t)n;
        }
    }
    return path_known ? CH_EUNSUPP : CH_ENOTFOUND;
}

int ch_api__parse_id(ch_slice_t s, int64_t *out)
{
    /* Leading zeros and signs are refused so that one record has one URL. */
    if (s.len == 0 || s.len > 19 || s.ptr[0] < '1' || s.ptr[0] > '9') {
        return CH_EPARSE;
    }
    int64_t v = 0;
    if (ch_parse_int64(s.ptr, s.len, &v) != 0 || v < 1) {
        return CH_EPARSE;
    }
    *out = v;
    return 0;
}

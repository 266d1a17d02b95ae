/*
 * policy: reading and validating a services file (docs/internals/policy.md has the format).
 *
 * Every field is checked for presence, type and range; unknown fields are refused, because a
 * misspelt rule ("aproval_required") silently taking its default is the worst failure a legal
 * rule file can have. The first error wins and is reported with the service id (or its index
 * when the id itself is bad) and the field's path.
 */
#include "policy/policy_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The state of one load: the message of the first error, and where we are. */
typedef struct load_ctx {
    ch_buf_t err;
    char where[96]; /* "service \"112-center\"" or "services[3]" */
} load_ctx_t;

static void fail(load_ctx_t *c, const char *field, const char *fmt, ...) CH_PRINTF(3, 4);

/* Records the first error as: <where>, field "<field>": <text>. Later errors are dropped. */
static void fail(load_ctx_t *c, const char *field, const char *fmt, ...)
{
    if (c->err.len > 0) {
        return;
    }
    if (c->where[0] != '\0') {
        ch_buf_appendf(&c->err, "%s, ", c->where);
    }
    ch_buf_appendf(&c->err, "field \"%s\": ", field);
    va_list ap;
    va_start(ap, fmt);
    ch_buf_vappendf(&c->err, fmt, ap);
    va_end(ap);
}

/* Refuses any key of obj not in allowed (a NULL-terminated list). 0 or CH_EPARSE. */
static int check_keys(load_ctx_t *c, const json_t *obj, const char *prefix,
                      const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        int ok = 0;
        for (size_t i = 0; allowed[i] != NULL; i++) {
            if (strcmp(key, allowed[i]) == 0) {
                ok = 1;
                break;
            }
        }
        if (!ok) {
            char field[160];
            snprintf(field, sizeof(field), "%s%.100s", prefix, key);
            fail(c, field, "unknown field");
            return CH_EPARSE;
        }
    }
    return 0;
}

/* A string of 1..CH_POLICY_MAX_TEXT_LEN bytes without NUL. *out is a new copy, or stays NULL
 * when the field is absent and optional. 0 or CH_EPARSE. */
static int get_text(load_ctx_t *c, const json_t *obj, const char *key, const char *field,
                    int required, char **out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        if (required) {
            fail(c, field, "is required");
            return CH_EPARSE;
        }
        return 0;
    }
    if (!json_is_string(v)) {
        fail(c, field, "must be a string");
        return CH_EPARSE;
    }
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n == 0 || n > CH_POLICY_MAX_TEXT_LEN || memchr(s, '\0', n) != NULL) {
        fail(c, field, "must be a non-empty text of at most %d bytes", CH_POLICY_MAX_TEXT_LEN);
        return CH_EPARSE;
    }
    *out = ch_strndup(s, n);
    return 0;
}

/* A required boolean. 0 or CH_EPARSE. */
static int get_bool(load_ctx_t *c, const json_t *obj, const char *key, const char *field, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        fail(c, field, "is required");
        return CH_EPARSE;
    }
    if (!json_is_boolean(v)) {
        fail(c, field, "must be true or false");
        return CH_EPARSE;
    }
    *out = json_is_true(v);
    return 0;
}

/* A required integer in [lo, hi]. 0 or CH_EPARSE. */
static int get_int(load_ctx_t *c, const json_t *obj, const char *key, const char *field, int64_t lo,
                   int64_t hi, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        fail(c, field, "is required");
        return CH_EPARSE;
    }
    if (!json_is_integer(v)) {
        fail(c, field, "must be an integer");
        return CH_EPARSE;
    }
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi) {
        fail(c, field, "must be between %lld and %lld", (long long)lo, (long long)hi);
        return CH_EPARSE;
    }
    *out = (int64_t)x;
    return 0;
}

/* A non-empty array of strings, each checked by valid() when it is not NULL (which returns 1
 * for a good value). Duplicates are refused. Each good string is passed to take(). */
typedef int (*item_valid_fn)(const char *s);
typedef void (*item_take_fn)(void *ud, const char *s, size_t n);

static int get_string_list(load_ctx_t *c, const json_t *v, const char *field, item_valid_fn valid,
                           const char *what, item_take_fn take, void *ud)
{
    if (!json_is_array(v) || json_array_size(v) == 0) {
        fail(c, field, "must be a non-empty array of strings");
        return CH_EPARSE;
    }
    size_t n = json_array_size(v);
    if (n > CH_POLICY_MAX_LIST) {
        fail(c, field, "has more than %d entries", CH_POLICY_MAX_LIST);
        return CH_EPARSE;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e)) {
            fail(c, field, "entry %zu must be a string", i);
            return CH_EPARSE;
        }
        const char *s = json_string_value(e);
        size_t len = json_string_length(e);
        if (len == 0 || len > CH_POLICY_MAX_TEXT_LEN || memchr(s, '\0', len) != NULL) {
            fail(c, field, "entry %zu must be a non-empty text", i);
            return CH_EPARSE;
        }
        if (valid != NULL && !valid(s)) {
            fail(c, field, "unknown %s \"%.100s\"", what, s);
            return CH_EPARSE;
        }
        for (size_t k = 0; k < i; k++) {
            if (json_equal(json_array_get(v, k), e)) {
                fail(c, field, "lists \"%.100s\" twice", s);
                return CH_EPARSE;
            }
        }
        take(ud, s, len);
    }
    return 0;
}

static int valid_agency_type(const char *s)
{
    return ch_policy_agency_type_index(s) >= 0;
}

static int valid_role(const char *s)
{
    ch_policy_role_t r;
    return ch_policy_role_parse(s, &r) == 0;
}

static int valid_relay(const char *s)
{
    return ch_policy__relay_bit(s) != 0;
}

static void take_agency_type(void *ud, const char *s, size_t n)
{
    CH_UNUSED(n);
    *(unsigned *)ud |= 1u << ch_policy_agency_type_index(s);
}

static void take_role(void *ud, const char *s, size_t n)
{
    CH_UNUSED(n);
    ch_policy_role_t r = CH_POLICY_ROLE_AGENCY;
    if (ch_policy_role_parse(s, &r) == 0) {
        *(unsigned *)ud |= (unsigned)r;
    }
}

static void take_relay(void *ud, const char *s, size_t n)
{
    CH_UNUSED(n);
    *(unsigned *)ud |= ch_policy__relay_bit(s);
}

/* A growable list of strings, for purposes and cases. */
typedef struct str_list {
    char **items;
    size_t count;
} str_list_t;

static void take_string(void *ud, const char *s, size_t n)
{
    str_list_t *l = ud;
    l->items = ch_realloc(l->items, (l->count + 1) * sizeof(*l->items));
    l->items[l->count++] = ch_strndup(s, n);
}

static int cmp_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* "providers": {"agency_types": "all" | [...], "purposes": "all" | [...], "opt_out": [ids]}. */
static int parse_providers(load_ctx_t *c, const json_t *v, ch_policy_service_t *s)
{
    static const char *const keys[] = {"agency_types", "purposes", "opt_out", NULL};
    if (!json_is_object(v)) {
        fail(c, "providers", "must be an object");
        return CH_EPARSE;
    }
    if (check_keys(c, v, "providers.", keys) != 0) {
        return CH_EPARSE;
    }
    json_t *t = json_object_get(v, "agency_types");
    if (t == NULL) {
        fail(c, "providers.agency_types", "is required (\"all\" or a list of agency types)");
        return CH_EPARSE;
    }
    if (json_is_string(t) && strcmp(json_string_value(t), "all") == 0) {
        s->providers_all = 1;
        s->provider_types = (1u << CH_POLICY_AT_COUNT) - 1;
    } else if (json_is_string(t)) {
        fail(c, "providers.agency_types", "must be \"all\" or a list of agency types");
        return CH_EPARSE;
    } else if (get_string_list(c, t, "providers.agency_types", valid_agency_type, "agency type",
                               take_agency_type, &s->provider_types) != 0) {
        return CH_EPARSE;
    }
    json_t *p = json_object_get(v, "purposes");
    if (p == NULL) {
        fail(c, "providers.purposes", "is required (\"all\" or a list of camera purposes)");
        return CH_EPARSE;
    }
    if (json_is_string(p) && strcmp(json_string_value(p), "all") == 0) {
        s->purposes_all = 1;
    } else if (json_is_string(p)) {
        fail(c, "providers.purposes", "must be \"all\" or a list of camera purposes");
        return CH_EPARSE;
    } else {
        str_list_t l = {NULL, 0};
        int rc = get_string_list(c, p, "providers.purposes", ch_policy_purpose_known,
                                 "camera purpose", take_string, &l);
        s->purposes = l.items;
        s->purposes_count = l.count;
        if (rc != 0) {
            return rc;
        }
    }
    json_t *o = json_object_get(v, "opt_out");
    if (o == NULL) {
        return 0;
    }
    if (!json_is_array(o) || json_array_size(o) > CH_POLICY_MAX_LIST) {
        fail(c, "providers.opt_out", "must be an array of at most %d agency ids",
             CH_POLICY_MAX_LIST);
        return CH_EPARSE;
    }
    size_t n = json_array_size(o);
    if (n == 0) {
        return 0;
    }
    s->opt_out = ch_calloc(n, sizeof(*s->opt_out));
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(o, i);
        if (!json_is_integer(e) || json_integer_value(e) <= 0) {
            fail(c, "providers.opt_out", "entry %zu must be a positive agency id", i);
            return CH_EPARSE;
        }
        s->opt_out[s->opt_out_count++] = (int64_t)json_integer_value(e);
    }
    qsort(s->opt_out, s->opt_out_count, sizeof(*s->opt_out), cmp_int64);
    for (size_t i = 1; i < s->opt_out_count; i++) {
        if (s->opt_out[i] == s->opt_out[i - 1]) {
            fail(c, "providers.opt_out", "lists agency %lld twice", (long long)s->opt_out[i]);
            return CH_EPARSE;
        }
    }
    return 0;
}

/* "extension": {"allowed": bool, "by": [roles], "max_count": n}. When allowed is false, by
 * and max_count may be left out (and must then be empty or 0 if given). */
static int parse_extension(load_ctx_t *c, const json_t *v, ch_policy_service_t *s)
{
    static const char *const keys[] = {"allowed", "by", "max_count", NULL};
    if (!json_is_object(v)) {
        fail(c, "extension", "must be an object");
        return CH_EPARSE;
    }
    if (check_keys(c, v, "extension.", keys) != 0 ||
        get_bool(c, v, "allowed", "extension.allowed", &s->extension_allowed) != 0) {
        return CH_EPARSE;
    }
    if (!s->extension_allowed) {
        json_t *by = json_object_get(v, "by");
        json_t *mc = json_object_get(v, "max_count");
        if ((by != NULL && !(json_is_array(by) && json_array_size(by) == 0)) ||
            (mc != NULL && !(json_is_integer(mc) && json_integer_value(mc) == 0))) {
            fail(c, "extension", "gives \"by\" or \"max_count\" but \"allowed\" is false");
            return CH_EPARSE;
        }
        return 0;
    }
    json_t *by = json_object_get(v, "by");
    if (by == NULL) {
        fail(c, "extension.by", "is required when extensions are allowed");
        return CH_EPARSE;
    }
    if (get_string_list(c, by, "extension.by", valid_role, "role", take_role, &s->extension_by) !=
        0) {
        return CH_EPARSE;
    }
    int64_t mc = 0;
    if (get_int(c, v, "max_count", "extension.max_count", 1, CH_POLICY_MAX_EXTENSIONS, &mc) != 0) {
        return CH_EPARSE;
    }
    s->extension_max = (int)mc;
    return 0;
}

/* "legal_basis": {"code": "PIPA-18-2-7", "text": "...", "comment": "..."}. */
static int parse_basis(load_ctx_t *c, const json_t *v, ch_policy_service_t *s)
{
    static const char *const keys[] = {"code", "text", "comment", NULL};
    if (!json_is_object(v)) {
        fail(c, "legal_basis", "must be an object with code and text");
        return CH_EPARSE;
    }
    if (check_keys(c, v, "legal_basis.", keys) != 0 ||
        get_text(c, v, "code", "legal_basis.code", 1, &s->basis_code) != 0 ||
        get_text(c, v, "text", "legal_basis.text", 1, &s->basis_text) != 0 ||
        get_text(c, v, "comment", "legal_basis.comment", 0, &s->basis_comment) != 0) {
        return CH_EPARSE;
    }
    for (const char *p = s->basis_code; *p != '\0'; p++) {
        char ch = *p;
        int ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                 ch == '-' || ch == '.' || ch == '/' || ch == '_';
        if (!ok || p - s->basis_code >= CH_POLICY_MAX_ID_LEN) {
            fail(c, "legal_basis.code", "must be 1..%d of A-Z a-z 0-9 - . / _",
                 CH_POLICY_MAX_ID_LEN);
            return CH_EPARSE;
        }
    }
    return 0;
}

/* "requires": {"incident": bool, "reason": bool, "case": [case names]}. */
static int parse_requires(load_ctx_t *c, const json_t *v, ch_policy_service_t *s)
{
    static const char *const keys[] = {"incident", "reason", "case", NULL};
    if (!json_is_object(v)) {
        fail(c, "requires", "must be an object");
        return CH_EPARSE;
    }
    if (check_keys(c, v, "requires.", keys) != 0 ||
        get_bool(c, v, "incident", "requires.incident", &s->requires_incident) != 0 ||
        get_bool(c, v, "reason", "requires.reason", &s->requires_reason) != 0) {
        return CH_EPARSE;
    }
    json_t *cs = json_object_get(v, "case");
    if (cs == NULL) {
        return 0;
    }
    str_list_t l = {NULL, 0};
    int rc = get_string_list(c, cs, "requires.case", NULL, "case", take_string, &l);
    s->cases = l.items;
    s->cases_count = l.count;
    return rc;
}

/*
 * "follows_subject": bool and "max_speed_kmh": number in (0, CH_POLICY_MAX_SPEED_KMH], both
 * optional. A service that does not say it follows a subject never moves (the safe default: a
 * services file written before the field keeps every event at its place); a speed given to
 * such a service is refused rather than silently ignored.
 */
static int parse_following(load_ctx_t *c, const json_t *v, ch_policy_service_t *s)
{
    json_t *f = json_object_get(v, "follows_subject");
    json_t *sp = json_object_get(v, "max_speed_kmh");
    if (f != NULL &&
        get_bool(c, v, "follows_subject", "follows_subject", &s->follows_subject) != 0) {
        return CH_EPARSE;
    }
    if (sp == NULL) {
        s->max_speed_kmh = s->follows_subject ? CH_POLICY_DEFAULT_SPEED_KMH : 0.0;
        return 0;
    }
    if (!s->follows_subject) {
        fail(c, "max_speed_kmh", "is given but \"follows_subject\" is not true");
        return CH_EPARSE;
    }
    if (!json_is_number(sp)) {
        fail(c, "max_speed_kmh", "must be a number");
        return CH_EPARSE;
    }
    s->max_speed_kmh = json_number_value(sp);
    if (!(s->max_speed_kmh > 0.0 && s->max_speed_kmh <= CH_POLICY_MAX_SPEED_KMH)) {
        fail(c, "max_speed_kmh", "must be greater than 0 and at most %.0f",
             CH_POLICY_MAX_SPEED_KMH);
        return CH_EPARSE;
    }
    return 0;
}

/* A service id: 1..CH_POLICY_MAX_ID_LEN of [a-z0-9-]. */
static int valid_id(const char *s, size_t n)
{
    if (n == 0 || n > CH_POLICY_MAX_ID_LEN) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-')) {
            return 0;
        }
    }
    return 1;
}

/* One element of "services"; s is zeroed by the caller and freed by it on failure. */
static int parse_service(load_ctx_t *c, const json_t *v, size_t index, ch_policy_service_t *s)
{
    static const char *const keys[] = {"id",
                                       "name",
                                       "note",
                                       "relay",
                                       "agency_types",
                                       "providers",
                                       "radius_m",
                                       "max_cameras",
                                       "duration_max_s",
                                       "extension",
                                       "ptz",
                                       "export",
                                       "approval_required",
                                       "identify_persons",
                                       "legal_basis",
                                       "requires",
                                       "follows_subject",
                                       "max_speed_kmh",
                                       NULL};
    snprintf(c->where, sizeof(c->where), "services[%zu]", index);
    if (!json_is_object(v)) {
        fail(c, "services", "entry %zu must be an object", index);
        return CH_EPARSE;
    }
    json_t *id = json_object_get(v, "id");
    if (id == NULL) {
        fail(c, "id", "is required");
        return CH_EPARSE;
    }
    if (!json_is_string(id) || !valid_id(json_string_value(id), json_string_length(id))) {
        fail(c, "id", "must be a string of 1..%d of a-z 0-9 -", CH_POLICY_MAX_ID_LEN);
        return CH_EPARSE;
    }
    s->id = ch_strdup(json_string_value(id));
    snprintf(c->where, sizeof(c->where), "service \"%s\"", s->id);
    if (check_keys(c, v, "", keys) != 0 || get_text(c, v, "name", "name", 1, &s->name) != 0 ||
        get_text(c, v, "note", "note", 0, &s->note) != 0) {
        return CH_EPARSE;
    }
    json_t *relay = json_object_get(v, "relay");
    if (relay == NULL) {
        fail(c, "relay", "is required (relay-external, relay-internal, own-use, own-monitoring)");
        return CH_EPARSE;
    }
    if (get_string_list(c, relay, "relay", valid_relay, "relay role", take_relay, &s->relay) != 0) {
        return CH_EPARSE;
    }
    json_t *at = json_object_get(v, "agency_types");
    if (at == NULL) {
        fail(c, "agency_types", "is required");
        return CH_EPARSE;
    }
    if (get_string_list(c, at, "agency_types", valid_agency_type, "agency type", take_agency_type,
                        &s->agency_types) != 0) {
        return CH_EPARSE;
    }
    json_t *prov = json_object_get(v, "providers");
    if (prov == NULL) {
        fail(c, "providers", "is required");
        return CH_EPARSE;
    }
    if (parse_providers(c, prov, s) != 0) {
        return CH_EPARSE;
    }
    json_t *r = json_object_get(v, "radius_m");
    if (r == NULL) {
        fail(c, "radius_m", "is required");
        return CH_EPARSE;
    }
    if (!json_is_number(r)) {
        fail(c, "radius_m", "must be a number");
        return CH_EPARSE;
    }
    s->radius_m = json_number_value(r);
    if (!(s->radius_m > 0.0 && s->radius_m <= CH_POLICY_MAX_RADIUS_M)) {
        fail(c, "radius_m", "must be greater than 0 and at most %.0f", CH_POLICY_MAX_RADIUS_M);
        return CH_EPARSE;
    }
    int64_t x = 0;
    if (get_int(c, v, "max_cameras", "max_cameras", 1, CH_POLICY_MAX_CAMERAS, &x) != 0) {
        return CH_EPARSE;
    }
    s->max_cameras = (int)x;
    if (get_int(c, v, "duration_max_s", "duration_max_s", 1, CH_POLICY_MAX_DURATION_S,
                &s->duration_max_s) != 0) {
        return CH_EPARSE;
    }
    json_t *ext = json_object_get(v, "extension");
    if (ext == NULL) {
        fail(c, "extension", "is required");
        return CH_EPARSE;
    }
    if (parse_extension(c, ext, s) != 0 || get_bool(c, v, "ptz", "ptz", &s->ptz) != 0 ||
        get_bool(c, v, "export", "export", &s->export_allowed) != 0 ||
        get_bool(c, v, "approval_required", "approval_required", &s->approval_required) != 0 ||
        get_bool(c, v, "identify_persons", "identify_persons", &s->identify_persons) != 0 ||
        parse_following(c, v, s) != 0) {
        return CH_EPARSE;
    }
    json_t *lb = json_object_get(v, "legal_basis");
    if (lb == NULL) {
        fail(c, "legal_basis", "is required: no video leaves its purpose without a legal basis");
        return CH_EPARSE;
    }
    if (parse_basis(c, lb, s) != 0) {
        return CH_EPARSE;
    }
    json_t *req = json_object_get(v, "requires");
    if (req == NULL) {
        fail(c, "requires", "is required");
        return CH_EPARSE;
    }
    return parse_requires(c, req, s);
}

/* The whole document: {"version": 1, "note": "...", "services": [...]}. */
static int parse_document(load_ctx_t *c, const json_t *root, ch_policy_t *p)
{
    static const char *const keys[] = {"version", "note", "services", NULL};
    if (!json_is_object(root)) {
        fail(c, "(top)", "the document must be a JSON object");
        return CH_EPARSE;
    }
    if (check_keys(c, root, "", keys) != 0) {
        return CH_EPARSE;
    }
    int64_t version = 0;
    if (get_int(c, root, "version", "version", 1, 1, &version) != 0) {
        return CH_EPARSE;
    }
    json_t *note = json_object_get(root, "note");
    if (note != NULL && !json_is_string(note)) {
        fail(c, "note", "must be a string");
        return CH_EPARSE;
    }
    json_t *svcs = json_object_get(root, "services");
    if (svcs == NULL) {
        fail(c, "services", "is required");
        return CH_EPARSE;
    }
    if (!json_is_array(svcs) || json_array_size(svcs) == 0 ||
        json_array_size(svcs) > CH_POLICY_MAX_SERVICES) {
        fail(c, "services", "must be an array of 1..%d services", CH_POLICY_MAX_SERVICES);
        return CH_EPARSE;
    }
    size_t n = json_array_size(svcs);
    p->services = ch_calloc(n, sizeof(*p->services));
    for (size_t i = 0; i < n; i++) {
        ch_policy_service_t *s = &p->services[i];
        p->count++;
        if (parse_service(c, json_array_get(svcs, i), i, s) != 0) {
            return CH_EPARSE;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(p->services[k].id, s->id) == 0) {
                fail(c, "id", "duplicate service id (also services[%zu])", k);
                return CH_EPARSE;
            }
        }
    }
    return 0;
}

int ch_policy_load_buffer(const void *data, size_t len, ch_policy_t **out, char **err)
{
    int rc = CH_EPARSE;
    load_ctx_t c;
    ch_buf_init(&c.err);
    c.where[0] = '\0';
    ch_policy_t *p = NULL;
    json_t *root = NULL;
    *out = NULL;
    if (err != NULL) {
        *err = NULL;
    }
    if (len > CH_POLICY_MAX_FILE_BYTES) {
        ch_buf_appendf(&c.err, "services file over %d bytes", CH_POLICY_MAX_FILE_BYTES);
        rc = CH_ETOOBIG;
        goto out;
    }
    json_error_t je;
    root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        ch_buf_appendf(&c.err, "invalid JSON at line %d column %d: %s", je.line, je.column,
                       je.text);
        goto out;
    }
    p = ch_calloc(1, sizeof(*p));
    atomic_init(&p->refs, 1);
    rc = parse_document(&c, root, p);
out:
    json_decref(root);
    if (rc != 0) {
        ch_policy_free(p);
        if (err != NULL) {
            *err = ch_buf_steal(&c.err);
        }
    } else {
        *out = p;
    }
    ch_buf_fini(&c.err);
    return rc;
}

int ch_policy_load_file(const char *path, ch_policy_t **out, char **err)
{
    int rc = 0;
    char *msg = NULL;
    ch_buf_t b;
    ch_buf_init(&b);
    *out = NULL;
    if (err != NULL) {
        *err = NULL;
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        rc = errno == ENOENT ? CH_ENOENT : CH_EIO;
        msg = ch_strdup(ch_strerror(rc));
        goto out;
    }
    char chunk[16384];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        ch_buf_append(&b, chunk, n);
        if (b.len > CH_POLICY_MAX_FILE_BYTES) {
            break;
        }
    }
    if (ferror(f)) {
        rc = CH_EIO;
        msg = ch_strdup("read error");
    }
    fclose(f);
    if (rc == 0) {
        rc = ch_policy_load_buffer(b.data, b.len, out, &msg);
    }
out:
    if (rc != 0 && err != NULL) {
        ch_buf_t e;
        ch_buf_init(&e);
        ch_buf_appendf(&e, "%s: %s", path, msg != NULL ? msg : ch_strerror(rc));
        *err = ch_buf_steal(&e);
        ch_buf_fini(&e);
    }
    ch_free(msg);
    ch_buf_fini(&b);
    return rc;
}

/* Frees what a service owns (not the struct itself). */
static void service_fini(ch_policy_service_t *s)
{
    ch_free(s->id);
    ch_free(s->name);
    ch_free(s->note);
    ch_free_strings(s->purposes, s->purposes_count);
    ch_free(s->opt_out);
    ch_free_strings(s->cases, s->cases_count);
    ch_free(s->basis_code);
    ch_free(s->basis_text);
    ch_free(s->basis_comment);
}

ch_policy_t *ch_policy_ref(const ch_policy_t *p)
{
    ch_policy_t *mine = (ch_policy_t *)p; /* only its count changes */
    if (mine != NULL) {
        atomic_fetch_add_explicit(&mine->refs, 1, memory_order_relaxed);
    }
    return mine;
}

void ch_policy_free(ch_policy_t *p)
{
    /* acq_rel: what the other holders did with the policy happens before it is freed. */
    if (p == NULL || atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1) {
        return;
    }
    for (size_t i = 0; i < p->count; i++) {
        service_fini(&p->services[i]);
    }
    ch_free(p->services);
    ch_free(p);
}

/*
 * What an audit record refers to: the one rule both the store's audit index (and so
 * GET /api/v1/audit) and `cctvhub audit show` apply, so that they find the same records for a
 * camera, an agency or an event. See ch_audit_refs in audit.h.
 */
#include "audit/audit.h"

#include <assert.h>
#include <string.h>

/* The member names of one kind: the object's prefix ("camera"), the detail holding one id
 * ("camera_id", and "camera") and the one holding several ("cameras"). */
typedef struct kind_names {
    const char *one;
    const char *one_id;
    const char *many;
} kind_names_t;

static const kind_names_t kind_names[] = {
    [CH_AUDIT_CAMERA] = {"camera", "camera_id", "cameras"},
    [CH_AUDIT_AGENCY] = {"agency", "agency_id", "agencies"},
    [CH_AUDIT_EVENT] = {"event", "event_id", "events"},
};

/* Called for each id found; returns nonzero to stop the walk. */
typedef int (*visit_fn)(void *ud, int64_t id);

/* The id of an object name ("camera:123") when its prefix is kind, or 0. */
static int64_t object_id(const json_t *object, const char *kind)
{
    if (!json_is_string(object)) {
        return 0;
    }
    const char *s = json_string_value(object);
    size_t k = strlen(kind);
    int64_t id;
    if (strncmp(s, kind, k) != 0 || s[k] != ':' ||
        ch_parse_int64(s + k + 1, strlen(s + k + 1), &id) != 0 || id <= 0) {
        return 0;
    }
    return id;
}

/* The id a JSON value holds: a positive integer, or 0. */
static int64_t value_id(const json_t *v)
{
    if (!json_is_integer(v) || json_integer_value(v) <= 0) {
        return 0;
    }
    return (int64_t)json_integer_value(v);
}

/* Visits every id of kind that rec refers to, in the order of the rule; returns what the last
 * visit returned (nonzero when one stopped the walk). */
static int walk(const json_t *rec, ch_audit_kind_t kind, visit_fn visit, void *ud)
{
    assert(kind >= CH_AUDIT_CAMERA && kind <= CH_AUDIT_EVENT);
    if (!json_is_object(rec)) {
        return 0;
    }
    const kind_names_t *names = &kind_names[kind];
    int64_t id = object_id(json_object_get(rec, "object"), names->one);
    if (id != 0 && visit(ud, id)) {
        return 1;
    }
    const json_t *details = json_object_get(rec, "details");
    if (!json_is_object(details)) {
        return 0;
    }
    if ((id = value_id(json_object_get(details, names->one_id))) != 0 && visit(ud, id)) {
        return 1;
    }
    if ((id = value_id(json_object_get(details, names->one))) != 0 && visit(ud, id)) {
        return 1;
    }
    const json_t *list = json_object_get(details, names->many);
    size_t n = json_array_size(list); /* 0 when not an array */
    for (size_t i = 0; i < n; i++) {
        if ((id = value_id(json_array_get(list, i))) != 0 && visit(ud, id)) {
            return 1;
        }
    }
    return 0;
}

static int collect(void *ud, int64_t id)
{
    ch_audit_refs_t *r = ud;
    if (r->n == r->cap) {
        r->cap = r->cap != 0 ? 2 * r->cap : 8;
        r->ids = ch_realloc(r->ids, r->cap * sizeof(*r->ids));
    }
    r->ids[r->n++] = id;
    return 0;
}

void ch_audit_refs(const json_t *rec, ch_audit_kind_t kind, ch_audit_refs_t *r)
{
    r->n = 0;
    (void)walk(rec, kind, collect, r);
}

static int is_wanted(void *ud, int64_t id)
{
    return id == *(const int64_t *)ud;
}

int ch_audit_refers_to(const json_t *rec, ch_audit_kind_t kind, int64_t id)
{
    return id > 0 && walk(rec, kind, is_wanted, &id);
}

void ch_audit_refs_fini(ch_audit_refs_t *r)
{
    ch_free(r->ids);
    r->ids = NULL;
    r->n = r->cap = 0;
}

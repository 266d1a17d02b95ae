/*
 * registry report: the per-file outcome of an import, and its JSON form.
 */
#include "registry/registry_private.h"

#include <string.h>

void ch_import_report_init(ch_import_report_t *rep)
{
    memset(rep, 0, sizeof(*rep));
}

static void ch_registry__issues_free(ch_import_issue_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ch_free(v[i].reason);
        ch_free(v[i].flags);
        ch_free(v[i].code);
    }
    ch_free(v);
}

void ch_import_report_fini(ch_import_report_t *rep)
{
    if (rep == NULL) {
        return;
    }
    ch_free(rep->file);
    ch_free(rep->encoding);
    ch_free(rep->layout);
    ch_free(rep->error);
    ch_registry__issues_free(rep->flagged, rep->flagged_count);
    ch_registry__issues_free(rep->skipped, rep->skipped_count);
    memset(rep, 0, sizeof(*rep));
}

static void ch_registry__issue_push(ch_import_issue_t **v, size_t *n, size_t *cap, int line,
                                    const char *flags, const char *reason)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *v = ch_realloc(*v, *cap * sizeof(**v));
    }
    (*v)[*n].line = line;
    (*v)[*n].reason = ch_strdup(reason ? reason : "");
    (*v)[*n].flags = flags ? ch_strdup(flags) : NULL;
    (*v)[*n].code = NULL;
    (*n)++;
}

void ch_registry__report_flag(ch_import_report_t *rep, int line, const char *flags,
                              const char *reason)
{
    ch_registry__issue_push(&rep->flagged, &rep->flagged_count, &rep->flagged_cap, line, flags,
                            reason);
}

void ch_registry__report_skip(ch_import_report_t *rep, int line, const char *reason)
{
    ch_registry__issue_push(&rep->skipped, &rep->skipped_count, &rep->skipped_cap, line, NULL,
                            reason);
}

/* A JSON string, or null. Text from files is valid UTF-8 by the time it gets here (the decoder
 * replaces bad bytes), but json_string would return NULL on a bad byte, so fall back rather
 * than drop the key. */
static json_t *ch_registry__jstr(const char *s)
{
    if (s == NULL) {
        return json_null();
    }
    json_t *v = json_string(s);
    return v != NULL ? v : json_string("(invalid UTF-8)");
}

static json_t *ch_registry__issues_json(const ch_import_issue_t *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "line", json_integer(v[i].line));
        json_object_set_new(o, "reason", ch_registry__jstr(v[i].reason));
        if (v[i].flags != NULL) {
            json_object_set_new(o, "flags", ch_registry__jstr(v[i].flags));
        }
        if (v[i].code != NULL) {
            json_object_set_new(o, "code", ch_registry__jstr(v[i].code));
        }
        json_array_append_new(a, o);
    }
    return a;
}

json_t *ch_import_report_to_json(const ch_import_report_t *rep)
{
    json_t *o = json_object();
    json_object_set_new(o, "file", ch_registry__jstr(rep->file));
    json_object_set_new(o, "ok", json_boolean(rep->ok));
    if (rep->error != NULL) {
        json_object_set_new(o, "error", ch_registry__jstr(rep->error));
    }
    json_object_set_new(o, "encoding", ch_registry__jstr(rep->encoding));
    json_object_set_new(o, "layout", ch_registry__jstr(rep->layout));
    json_object_set_new(o, "bytes", json_integer((json_int_t)rep->bytes));
    json_object_set_new(o, "header_line", json_integer(rep->header_line));
    json_object_set_new(o, "rows", json_integer(rep->rows));
    json_object_set_new(o, "sites", json_integer(rep->sites));
    json_object_set_new(o, "cameras", json_integer(rep->cameras));
    json_object_set_new(o, "devices", json_integer(rep->devices));
    json_object_set_new(o, "cameras_created", json_integer(rep->cameras_created));
    json_object_set_new(o, "cameras_updated", json_integer(rep->cameras_updated));
    json_object_set_new(o, "cameras_unchanged", json_integer(rep->cameras_unchanged));
    json_object_set_new(o, "devices_created", json_integer(rep->devices_created));
    json_object_set_new(o, "devices_updated", json_integer(rep->devices_updated));
    json_object_set_new(o, "devices_unchanged", json_integer(rep->devices_unchanged));
    json_object_set_new(o, "agencies_created", json_integer(rep->agencies_created));
    json_object_set_new(o, "unlocated", json_integer(rep->unlocated));
    json_object_set_new(o, "invalid_bytes", json_integer(rep->invalid_bytes));
    json_object_set_new(o, "flagged_count", json_integer((json_int_t)rep->flagged_count));
    json_object_set_new(o, "skipped_count", json_integer((json_int_t)rep->skipped_count));
    json_object_set_new(o, "flagged", ch_registry__issues_json(rep->flagged, rep->flagged_count));
    json_object_set_new(o, "skipped", ch_registry__issues_json(rep->skipped, rep->skipped_count));
    json_object_set_new(o, "duration_s", json_real(rep->duration_s));
    return o;
}

json_t *ch_import_report_to_audit_json(const ch_import_report_t *rep)
{
    json_t *o = ch_import_report_to_json(rep);
    /* The lists can run to megabytes for a national file; the audit record keeps the counts
     * (flagged_count, skipped_count) and the report itself keeps the lines. The duration is
     * not a fact about the registry, and would make equal imports differ. */
    json_object_del(o, "flagged");
    json_object_del(o, "skipped");
    json_object_del(o, "duration_s");
    return o;
}

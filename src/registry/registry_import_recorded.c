/*
 * The import as a use case on the record: "import.start" before any change, the import, and
 * "import" with its result after. See registry.h (ch_registry_import_recorded).
 */
#include "registry/registry.h"

#include <string.h>

/* Fills f with the refusal (kind, the rule that failed, message) and its code; returns rc. */
static int import_fault(ch_fault_t *f, int rc, ch_fault_kind_t kind, const char *rule,
                        const char *message)
{
    ch_fault_set(f, rc, kind, NULL, NULL, "%s", message);
    if (f != NULL) {
        f->rule = rule;
        f->rc = rc;
    }
    return rc;
}

int ch_registry_import_recorded(ch_store_t *st, const ch_registry_import_req_t *req,
                                const ch_registry_recorder_t *audit, ch_import_report_t *rep,
                                char **err, ch_fault_t *f)
{
    int recording = audit != NULL && audit->record != NULL;
    if (err != NULL) {
        *err = NULL;
    }
    ch_buf_t object;
    ch_buf_init(&object);
    ch_buf_appendf(&object, "import:%s", req->label);
    /* The attempt is on the record before any change, its result after: an import the record
     * does not announce never starts. */
    if (recording) {
        json_t *d = json_pack("{s:s, s:s?}", "file", req->label, "agency", req->options.agency);
        if (req->path == NULL) {
            json_object_set_new(d, "bytes", json_integer((json_int_t)req->len));
        }
        int rc = audit->record(audit->data, "import.start", object.data, "ok", d);
        if (rc != 0) {
            ch_buf_fini(&object);
            return import_fault(f, rc, CH_FAULT_AUDIT, "start",
                                "not imported: the audit log cannot record it");
        }
    }
    int irc = req->path != NULL ? ch_registry_import_file(st, req->path, &req->options, rep, err)
                                : ch_registry_import_buffer(st, req->label, req->data, req->len,
                                                            &req->options, rep, err);
    if (recording) {
        const char *outcome = irc == 0 ? "ok" : irc == CH_EPERM ? "denied" : "error";
        int rc = audit->record(audit->data, "import", object.data, outcome,
                               ch_import_report_to_audit_json(rep));
        if (rc != 0) {
            ch_buf_fini(&object);
            return import_fault(f, rc, CH_FAULT_AUDIT, "result",
                                "imported, but the audit log cannot record the result");
        }
    }
    ch_buf_fini(&object);
    if (irc != 0) {
        return import_fault(f, irc, irc == CH_EPERM ? CH_FAULT_FORBIDDEN : CH_FAULT_INVALID,
                            "import", err != NULL && *err != NULL ? *err : ch_strerror(irc));
    }
    return 0;
}

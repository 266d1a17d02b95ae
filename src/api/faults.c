/*
 * The one table from a domain use case's refusal (core's ch_fault_t) to an HTTP answer. The
 * domain modules (registry, auth, event, audit) never say "404"; they say CH_FAULT_NOT_FOUND,
 * and this file says what that is on the wire.
 */
#include "api_ctx.h"
#include "api_internal.h"

#include <stdio.h>

int ch_api__fault_status(const ch_fault_t *f)
{
    static const int status[] = {
        [CH_FAULT_NONE] = 500,        [CH_FAULT_INVALID] = 400,     [CH_FAULT_FORBIDDEN] = 403,
        [CH_FAULT_DENIED] = 403,      [CH_FAULT_NOT_FOUND] = 404,   [CH_FAULT_CONFLICT] = 409,
        [CH_FAULT_TOO_COMPLEX] = 422, [CH_FAULT_UNAVAILABLE] = 503, [CH_FAULT_AUDIT] = 503,
        [CH_FAULT_INTERNAL] = 500,
    };
    if ((unsigned)f->kind < CH_ARRAY_SIZE(status) && status[f->kind] != 0) {
        return status[f->kind];
    }
    return 500;
}

void ch_api__err_from_fault(ch_api__err_t *e, const ch_fault_t *f)
{
    ch_api__err_set(e, ch_api__fault_status(f), ch_fault_code(f),
                    f->field[0] != '\0' ? f->field : NULL, "%s", f->message);
}

void ch_api__reply_fault(api_ctx_t *c, const ch_fault_t *f)
{
    ch_api__err_t e;
    ch_api__err_from_fault(&e, f);
    json_t *body = ch_api__err_to_json(&e);
    if (f->rule != NULL) {
        /* A denial names the policy rule that denied. */
        json_object_set_new(json_object_get(body, "error"), "rule", json_string(f->rule));
    }
    ch_api__reply_json(c, e.status, NULL, body);
}

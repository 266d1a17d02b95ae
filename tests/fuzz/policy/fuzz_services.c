/*
 * libFuzzer target for services files: any bytes through ch_policy_load_buffer; on success,
 * decisions for every service with requests derived from the input's hash, and camera checks.
 * Checks the invariants callers rely on: a failed load leaves no policy and gives a message;
 * a decision always has a rule and a sentence; a denial grants nothing; an allowed decision
 * grants 1..duration_max_s seconds and no PTZ or export the service forbids; an approval by
 * the person who asked is never allowed; a move is allowed only for a service that follows a
 * subject, and beyond its speed only as an operator's override.
 *
 * Seeds: tests/fuzz/corpus/fuzz_services/ (the shipped file among them).
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checks one decision against the service it names. */
static void check_decision(const ch_policy_decision_t *d)
{
    assert(d->rule != NULL && d->rule[0] != '\0');
    assert(d->reason[0] != '\0');
    if (d->outcome == CH_POLICY_DENIED) {
        assert(d->duration_s == 0 && !d->ptz && !d->export_allowed);
        return;
    }
    const ch_policy_service_t *s = d->service;
    assert(s != NULL);
    assert(d->duration_s >= 1 && d->duration_s <= s->duration_max_s);
    assert(!d->ptz || s->ptz);
    assert(!d->export_allowed || s->export_allowed);
    assert(d->basis_code == s->basis_code);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ch_policy_t *p = (ch_policy_t *)0x1;
    char *err = NULL;
    int rc = ch_policy_load_buffer(data, size, &p, &err);
    if (rc != 0) {
        assert(p == NULL && err != NULL && err[0] != '\0');
        ch_free(err);
        return 0;
    }
    assert(p != NULL && err == NULL && ch_policy_count(p) >= 1);
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < size; i++) {
        h = (h ^ data[i]) * 16777619u;
    }
    static const char *const purposes[] = {"방범", "차량방범", "기타", "", NULL};
    for (size_t i = 0; i < ch_policy_count(p); i++) {
        const ch_policy_service_t *s = ch_policy_at(p, i);
        assert(ch_policy_find(p, s->id) == s);
        for (int k = 0; k < 8; k++) {
            uint32_t x = h ^ (uint32_t)(i * 131 + (size_t)k * 7919);
            x *= 2654435761u;
            ch_policy_request_t r;
            memset(&r, 0, sizeof(r));
            r.service = s->id;
            r.agency_type = ch_policy_agency_type_name((int)(x % (CH_POLICY_AT_COUNT + 1)));
            r.agency_id = (int64_t)(x >> 8) % 50;
            r.role = (x & 0x10) ? CH_POLICY_ROLE_OPERATOR : CH_POLICY_ROLE_AGENCY;
            r.action = (x & 0x20) ? CH_POLICY_EXTEND : CH_POLICY_OPEN;
            r.duration_s = (int64_t)((x >> 6) % 3) * s->duration_max_s / 2 - (k == 7);
            r.has_incident = (x >> 1) & 1;
            r.has_reason = (x >> 2) & 1;
            r.case_name = s->cases_count > 0 && (x & 0x40) ? s->cases[x % s->cases_count] : NULL;
            r.want_ptz = (x >> 3) & 1;
            r.want_export = (x >> 4) & 1;
            r.approved = (x >> 7) & 1;
            r.self_approval = (x >> 8) & 1;
            r.extension_count = (int)((x >> 9) % 4);
            ch_policy_decision_t d;
            assert(ch_policy_decide(p, &r, &d) == 0);
            check_decision(&d);
            assert(!(s->approval_required && r.approved && r.self_approval &&
                     d.outcome == CH_POLICY_ALLOWED));
            ch_policy_move_t m = {r.role, (double)(x % 400000) - (k == 6),
                                  (int64_t)((x >> 11) % 7200000) - (k == 5) * 1000};
            assert(ch_policy_decide_move(s, &m, &d) == 0);
            assert(d.rule != NULL && d.reason[0] != '\0');
            if (d.outcome == CH_POLICY_ALLOWED) {
                int fast = m.distance_m * 3600.0 > s->max_speed_kmh * (double)m.elapsed_ms;
                assert(s->follows_subject && m.distance_m >= 0);
                assert(!fast || (m.role == CH_POLICY_ROLE_OPERATOR &&
                                 strcmp(d.rule, "implausible_speed_override") == 0));
            }
            const char *rule = NULL;
            int ok = ch_policy_camera_allowed(s, r.agency_type, r.agency_id,
                                              purposes[x % CH_ARRAY_SIZE(purposes)], &rule);
            assert(rule != NULL && (ok == (strcmp(rule, "camera_allowed") == 0)));
        }
    }
    ch_policy_request_t r;
    memset(&r, 0, sizeof(r));
    r.service = "no-such-service-id-at-all-xx";
    ch_policy_decision_t d;
    assert(ch_policy_decide(p, &r, &d) == 0);
    check_decision(&d);
    ch_policy_free(p);
    return 0;
}

/*
 * policy: vocabularies, lookups and the decisions (pure functions of a policy and a request).
 */
#include "policy/policy_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* In the order of ch_policy_agency_type_t; the store's agency types. */
static const char *const agency_types[CH_POLICY_AT_COUNT] = {
    "police-112",      "police-station", "fire-119", "moj-tracking",
    "disaster-room",   "mayor-office",   "ansimi",   "military",
    "district-center", "city-agency",    "other",
};

/* Camera purposes (설치목적구분) as the national standard CCTV data publishes them. */
static const char *const purposes[] = {
    "생활방범",   "다목적",     "어린이보호", "생활안전", "교통단속",     "쓰레기단속",
    "시설물관리", "재난재해",   "도시공원",   "차량방범", "교통정보수집", "기타",
    "방범",       "불법주정차", "치수방재",   "방범용",   "약자보호",
};

int ch_policy_agency_type_index(const char *name)
{
    if (name == NULL) {
        return -1;
    }
    for (int i = 0; i < CH_POLICY_AT_COUNT; i++) {
        if (strcmp(name, agency_types[i]) == 0) {
            return i;
        }
    }
    return -1;
}

const char *ch_policy_agency_type_name(int index)
{
    if (index < 0 || index >= CH_POLICY_AT_COUNT) {
        return NULL;
    }
    return agency_types[index];
}

int ch_policy_purpose_known(const char *purpose)
{
    if (purpose == NULL) {
        return 0;
    }
    for (size_t i = 0; i < CH_ARRAY_SIZE(purposes); i++) {
        if (strcmp(purpose, purposes[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

int ch_policy_role_parse(const char *s, ch_policy_role_t *out)
{
    if (s == NULL) {
        return CH_EINVAL;
    }
    if (strcmp(s, "agency") == 0) {
        *out = CH_POLICY_ROLE_AGENCY;
        return 0;
    }
    if (strcmp(s, "operator") == 0) {
        *out = CH_POLICY_ROLE_OPERATOR;
        return 0;
    }
    return CH_EINVAL;
}

unsigned ch_policy__relay_bit(const char *name)
{
    static const struct {
        const char *name;
        unsigned bit;
    } relays[] = {
        {"relay-external", CH_POLICY_RELAY_EXTERNAL},
        {"relay-internal", CH_POLICY_RELAY_INTERNAL},
        {"own-use", CH_POLICY_OWN_USE},
        {"own-monitoring", CH_POLICY_OWN_MONITORING},
    };
    for (size_t i = 0; i < CH_ARRAY_SIZE(relays); i++) {
        if (strcmp(name, relays[i].name) == 0) {
            return relays[i].bit;
        }
    }
    return 0;
}

const char *ch_policy_outcome_name(ch_policy_outcome_t o)
{
    switch (o) {
    case CH_POLICY_ALLOWED:
        return "allowed";
    case CH_POLICY_NEEDS_APPROVAL:
        return "needs-approval";
    case CH_POLICY_DENIED:
        break;
    }
    return "denied";
}

size_t ch_policy_count(const ch_policy_t *p)
{
    return p != NULL ? p->count : 0;
}

const ch_policy_service_t *ch_policy_at(const ch_policy_t *p, size_t i)
{
    if (p == NULL || i >= p->count) {
        return NULL;
    }
    return &p->services[i];
}

const ch_policy_service_t *ch_policy_find(const ch_policy_t *p, const char *id)
{
    if (p == NULL || id == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < p->count; i++) {
        if (strcmp(p->services[i].id, id) == 0) {
            return &p->services[i];
        }
    }
    return NULL;
}

static void deny(ch_policy_decision_t *d, const char *rule, const char *fmt, ...) CH_PRINTF(3, 4);

/* Turns the decision into a denial by rule, with its sentence. */
static void deny(ch_policy_decision_t *d, const char *rule, const char *fmt, ...)
{
    d->outcome = CH_POLICY_DENIED;
    d->rule = rule;
    d->duration_s = 0;
    d->ptz = 0;
    d->export_allowed = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
    va_end(ap);
}

/* Is name one of the service's cases? */
static int case_listed(const ch_policy_service_t *s, const char *name)
{
    for (size_t i = 0; i < s->cases_count; i++) {
        if (strcmp(s->cases[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The extension rules of an EXTEND request: 0 when they pass, else d is a denial. */
static int check_extension(const ch_policy_service_t *s, const ch_policy_request_t *req,
                           ch_policy_decision_t *d)
{
    if (!s->extension_allowed) {
        deny(d, "extension_not_allowed", "Service %s does not allow extensions.", s->id);
        return -1;
    }
    if (!(s->extension_by & (unsigned)req->role)) {
        deny(d, "extension_role_not_allowed", "Service %s may not be extended by an %s.", s->id,
             req->role == CH_POLICY_ROLE_OPERATOR ? "operator" : "agency");
        return -1;
    }
    if (req->extension_count < 0 || req->extension_count >= s->extension_max) {
        deny(d, "extension_limit", "Service %s allows at most %d extension(s); %d already made.",
             s->id, s->extension_max, req->extension_count);
        return -1;
    }
    return 0;
}

/* What the agency must supply and what it may ask for: 0 when all pass, else d is a denial. */
static int check_request(const ch_policy_service_t *s, const ch_policy_request_t *req,
                         ch_policy_decision_t *d)
{
    if (s->requires_incident && !req->has_incident) {
        deny(d, "incident_required", "Service %s requires an incident number.", s->id);
        return -1;
    }
    if (s->requires_reason && !req->has_reason) {
        deny(d, "reason_required", "Service %s requires a reason.", s->id);
        return -1;
    }
    if (s->cases_count > 0) {
        if (req->case_name == NULL || req->case_name[0] == '\0') {
            deny(d, "case_required", "Service %s requires a case (one of its %zu listed cases).",
                 s->id, s->cases_count);
            return -1;
        }
        if (!case_listed(s, req->case_name)) {
            deny(d, "case_not_allowed", "Service %s does not cover the case \"%.64s\".", s->id,
                 req->case_name);
            return -1;
        }
    }
    if (req->duration_s < 0) {
        deny(d, "duration_invalid", "A duration cannot be negative.");
        return -1;
    }
    if (req->duration_s > s->duration_max_s) {
        deny(d, "duration_over_limit", "Service %s allows at most %lld s; %lld s were asked.",
             s->id, (long long)s->duration_max_s, (long long)req->duration_s);
        return -1;
    }
    if (req->want_ptz && !s->ptz) {
        deny(d, "ptz_not_allowed", "Service %s does not allow PTZ control.", s->id);
        return -1;
    }
    if (req->want_export && !s->export_allowed) {
        deny(d, "export_not_allowed", "Service %s does not allow export of video.", s->id);
        return -1;
    }
    return 0;
}

int ch_policy_decide(const ch_policy_t *p, const ch_policy_request_t *req,
                     ch_policy_decision_t *out)
{
    if (p == NULL || req == NULL || out == NULL) {
        return CH_EINVAL;
    }
    ch_policy_decision_t *d = out;
    memset(d, 0, sizeof(*d));
    const ch_policy_service_t *s = ch_policy_find(p, req->service);
    if (s == NULL) {
        deny(d, "unknown_service", "There is no service \"%.64s\".",
             req->service != NULL ? req->service : "");
        return 0;
    }
    d->service = s;
    d->radius_m = s->radius_m;
    d->max_cameras = s->max_cameras;
    d->basis_code = s->basis_code;
    d->basis_text = s->basis_text;
    if (req->role != CH_POLICY_ROLE_AGENCY && req->role != CH_POLICY_ROLE_OPERATOR) {
        deny(d, "role_invalid", "Only an agency or an operator may ask for video.");
        return 0;
    }
    int at = ch_policy_agency_type_index(req->agency_type);
    if (at < 0 || !(s->agency_types & (1u << at))) {
        deny(d, "agency_type_not_allowed", "Agencies of type \"%.32s\" may not use service %s.",
             req->agency_type != NULL ? req->agency_type : "", s->id);
        return 0;
    }
    if (req->action != CH_POLICY_OPEN && req->action != CH_POLICY_EXTEND) {
        deny(d, "action_invalid", "A request either opens or extends an event.");
        return 0;
    }
    if (req->action == CH_POLICY_EXTEND && check_extension(s, req, d) != 0) {
        return 0;
    }
    if (check_request(s, req, d) != 0) {
        return 0;
    }
    d->duration_s = req->duration_s > 0 ? req->duration_s : s->duration_max_s;
    d->ptz = req->want_ptz;
    d->export_allowed = req->want_export;
    /* Four eyes: an approval is another person's word on the request. Whoever asks (an
     * operator too) waits for it; the person who asked may not give it. */
    if (s->approval_required && req->approved && req->self_approval) {
        deny(d, "approval_by_requester",
             "Service %s needs the approval of another person than the one who asked.", s->id);
        return 0;
    }
    if (s->approval_required && !req->approved) {
        d->outcome = CH_POLICY_NEEDS_APPROVAL;
        d->rule = "approval_required";
        snprintf(d->reason, sizeof(d->reason),
                 "Service %s needs an operator's approval before access.", s->id);
        return 0;
    }
    d->outcome = CH_POLICY_ALLOWED;
    d->rule = "allowed";
    snprintf(d->reason, sizeof(d->reason), "Allowed under %s for %lld s.", s->basis_code,
             (long long)d->duration_s);
    return 0;
}

int ch_policy_decide_move(const ch_policy_service_t *svc, const ch_policy_move_t *m,
                          ch_policy_decision_t *out)
{
    if (m == NULL || out == NULL) {
        return CH_EINVAL;
    }
    ch_policy_decision_t *d = out;
    memset(d, 0, sizeof(*d));
    if (svc == NULL) {
        deny(d, "unknown_service", "The event's service is not loaded.");
        return 0;
    }
    d->service = svc;
    d->radius_m = svc->radius_m;
    d->max_cameras = svc->max_cameras;
    d->basis_code = svc->basis_code;
    d->basis_text = svc->basis_text;
    if (!svc->follows_subject) {
        deny(d, "not_moving_subject",
             "Service %s watches a place, not a moving subject: open a new event for a new "
             "place.",
             svc->id);
        return 0;
    }
    /* distance / elapsed <= max speed, without dividing by a zero time: a subject that has had
     * no time may not move at all (rapid small steps add up to no more than the speed). */
    double elapsed_ms = m->elapsed_ms > 0 ? (double)m->elapsed_ms : 0.0;
    double limit_m = svc->max_speed_kmh * elapsed_ms / 3600.0;
    int measurable = m->distance_m >= 0.0 && m->distance_m < 1e9; /* not NaN, not absurd */
    if (!measurable || m->distance_m > limit_m) {
        int override = measurable && m->role == CH_POLICY_ROLE_OPERATOR;
        double kmh = measurable && elapsed_ms > 0 ? m->distance_m * 3600.0 / elapsed_ms : -1.0;
        const char *rule = override ? "implausible_speed_override" : "implausible_speed";
        char speed[48];
        if (kmh >= 0 && kmh < 1e9) {
            snprintf(speed, sizeof(speed), "%.0f km/h", kmh);
        } else {
            snprintf(speed, sizeof(speed), "no time at all");
        }
        deny(d, rule,
             "The subject would have moved %.1f km in %.1f s (%s); service %s allows at most "
             "%.0f km/h.",
             measurable ? m->distance_m / 1000.0 : 0.0, elapsed_ms / 1000.0, speed, svc->id,
             svc->max_speed_kmh);
        if (override) {
            d->outcome = CH_POLICY_ALLOWED; /* an operator's correction, recorded as such */
        }
        return 0;
    }
    d->outcome = CH_POLICY_ALLOWED;
    d->rule = "allowed";
    snprintf(d->reason, sizeof(d->reason), "A plausible move under %s.", svc->id);
    return 0;
}

static int cmp_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Is id in the service's opt-out list (sorted by the loader)? */
static int opted_out(const ch_policy_service_t *s, int64_t id)
{
    return s->opt_out_count > 0 &&
           bsearch(&id, s->opt_out, s->opt_out_count, sizeof(*s->opt_out), cmp_int64) != NULL;
}

/* Is purpose one the service draws on? */
static int purpose_listed(const ch_policy_service_t *s, const char *purpose)
{
    if (s->purposes_all) {
        return 1;
    }
    if (purpose == NULL || purpose[0] == '\0') {
        return 0;
    }
    for (size_t i = 0; i < s->purposes_count; i++) {
        if (strcmp(s->purposes[i], purpose) == 0) {
            return 1;
        }
    }
    return 0;
}

int ch_policy_camera_allowed(const ch_policy_service_t *svc, const char *provider_type,
                             int64_t provider_id, const char *purpose, const char **rule)
{
    const char *why = "camera_allowed";
    int ok = 0;
    int at = ch_policy_agency_type_index(provider_type);
    if (svc == NULL) {
        why = "unknown_service";
    } else if (opted_out(svc, provider_id)) {
        why = "provider_opted_out";
    } else if (at < 0 || !(svc->provider_types & (1u << at))) {
        why = "provider_type_not_allowed";
    } else if (!purpose_listed(svc, purpose)) {
        why = "purpose_not_allowed";
    } else {
        ok = 1;
    }
    if (rule != NULL) {
        *rule = why;
    }
    return ok;
}

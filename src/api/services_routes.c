/*
 * GET /api/v1/services: the services of the loaded services file (policy.services_file), so
 * that agencies and the console see which services exist, who may use each, on which legal
 * basis, and what a request must supply.
 */
#include "api/api_internal.h"

#include "policy/policy.h"

static json_t *string_list(char *const *items, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(a, json_string(items[i]));
    }
    return a;
}

static json_t *agency_types(unsigned mask)
{
    json_t *a = json_array();
    for (int i = 0; i < CH_POLICY_AT_COUNT; i++) {
        if (mask & (1u << i)) {
            json_array_append_new(a, json_string(ch_policy_agency_type_name(i)));
        }
    }
    return a;
}

static json_t *roles(unsigned mask)
{
    json_t *a = json_array();
    if (mask & CH_POLICY_ROLE_AGENCY) {
        json_array_append_new(a, json_string("agency"));
    }
    if (mask & CH_POLICY_ROLE_OPERATOR) {
        json_array_append_new(a, json_string("operator"));
    }
    return a;
}

static json_t *relay(unsigned mask)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{CH_POLICY_RELAY_EXTERNAL, "relay-external"},
                 {CH_POLICY_RELAY_INTERNAL, "relay-internal"},
                 {CH_POLICY_OWN_USE, "own-use"},
                 {CH_POLICY_OWN_MONITORING, "own-monitoring"}};
    json_t *a = json_array();
    for (size_t i = 0; i < CH_ARRAY_SIZE(names); i++) {
        if (mask & names[i].bit) {
            json_array_append_new(a, json_string(names[i].name));
        }
    }
    return a;
}

/* One service as the API shows it. Provider opt-outs are the providers' business and are
 * left out. */
static json_t *service_json(const ch_policy_service_t *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(s->id));
    json_object_set_new(o, "name", json_string(s->name));
    json_object_set_new(o, "note", s->note ? json_string(s->note) : json_null());
    json_object_set_new(o, "relay", relay(s->relay));
    json_object_set_new(o, "agency_types", agency_types(s->agency_types));
    json_object_set_new(o, "provider_types",
                        s->providers_all ? json_string("all") : agency_types(s->provider_types));
    json_object_set_new(o, "purposes",
                        s->purposes_all ? json_string("all")
                                        : string_list(s->purposes, s->purposes_count));
    json_object_set_new(o, "radius_m", json_real(s->radius_m));
    json_object_set_new(o, "max_cameras", json_integer(s->max_cameras));
    json_object_set_new(o, "duration_max_s", json_integer(s->duration_max_s));
    json_object_set_new(o, "extension",
                        json_pack("{s:b, s:o, s:i}", "allowed", s->extension_allowed, "by",
                                  roles(s->extension_by), "max_count", s->extension_max));
    json_object_set_new(o, "ptz", json_boolean(s->ptz));
    json_object_set_new(o, "export", json_boolean(s->export_allowed));
    json_object_set_new(o, "approval_required", json_boolean(s->approval_required));
    json_object_set_new(o, "identify_persons", json_boolean(s->identify_persons));
    json_object_set_new(o, "follows_subject", json_boolean(s->follows_subject));
    json_object_set_new(o, "max_speed_kmh",
                        s->follows_subject ? json_real(s->max_speed_kmh) : json_null());
    json_object_set_new(o, "requires",
                        json_pack("{s:b, s:b, s:o}", "incident", s->requires_incident, "reason",
                                  s->requires_reason, "case",
                                  string_list(s->cases, s->cases_count)));
    json_object_set_new(o, "legal_basis",
                        json_pack("{s:s, s:s, s:s?}", "code", s->basis_code, "text", s->basis_text,
                                  "comment", s->basis_comment));
    return o;
}

json_t *ch_api__services_json(const ch_policy_t *p)
{
    json_t *items = json_array();
    size_t n = p ? ch_policy_count(p) : 0;
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(items, service_json(ch_policy_at(p, i)));
    }
    return json_pack("{s:o, s:I, s:b}", "items", items, "total", (json_int_t)n, "loaded",
                     p != NULL);
}

/*
 * policy: the linked services as data, and the decisions made from them.
 *
 * A services file (JSON, etc/services.json ships the 11 linked services of MISSION.md §1) says,
 * per service, which agency types may use it, which providers and camera purposes it may draw
 * on (and which providers opted out), how far and how many cameras, how long and how often it
 * may be extended, whether PTZ and export are allowed, whether an operator must approve first,
 * the legal basis to record, and what the agency must supply. docs/internals/policy.md states
 * the file format and every rule code.
 *
 * Loading is strict: unknown fields, wrong types, values out of range, duplicate ids, unknown
 * agency types, roles or camera purposes and a missing legal basis are all refused, with a
 * message that names the service and the field. A loaded policy is immutable: it may be read
 * from any number of threads at once, and a reload builds a new one and swaps it in.
 *
 * Decisions are pure functions of the policy and the request: no clock, no I/O, no state. They
 * answer allowed, denied or needs-approval with a stable rule code (for the audit log and the
 * 403 answer) and an English sentence.
 *
 * Ownership: strings and requests passed in are borrowed for the call. A decision points into
 * the policy (service, legal basis) and stays valid as long as the policy does.
 */
#ifndef CH_POLICY_H
#define CH_POLICY_H

#include "core/core.h"

#include <stddef.h>
#include <stdint.h>

/* ---- limits (docs/internals/policy.md) -------------------------------------------------- */

#define CH_POLICY_MAX_FILE_BYTES (1 << 20) /* a services file larger than this is refused */
#define CH_POLICY_MAX_SERVICES   256
#define CH_POLICY_MAX_ID_LEN     64      /* service ids: [a-z0-9-], 1..64 bytes */
#define CH_POLICY_MAX_TEXT_LEN   4096    /* names, notes, legal texts, case names */
#define CH_POLICY_MAX_RADIUS_M   50000.0 /* radius_m in (0, 50 km] */
#define CH_POLICY_MAX_CAMERAS    1000    /* max_cameras in [1, 1000] */
#define CH_POLICY_MAX_DURATION_S 604800  /* duration_max_s in [1, 7 days] */
#define CH_POLICY_MAX_EXTENSIONS 100     /* extension.max_count in [0, 100] */
#define CH_POLICY_MAX_LIST       1024    /* entries of any list in a service */
#define CH_POLICY_REASON_LEN     256     /* the decision's sentence, NUL included */

/* A following service's max_speed_kmh: (0, CH_POLICY_MAX_SPEED_KMH], 200 when not given. */
#define CH_POLICY_MAX_SPEED_KMH     1000.0
#define CH_POLICY_DEFAULT_SPEED_KMH 200.0

/* ---- vocabularies ---------------------------------------------------------------------- */

/* Agency types of the store (src/store/store.h), as bits of a mask, in this order. */
typedef enum ch_policy_agency_type {
    CH_POLICY_AT_POLICE_112 = 0,
    CH_POLICY_AT_POLICE_STATION,
    CH_POLICY_AT_FIRE_119,
    CH_POLICY_AT_MOJ_TRACKING,
    CH_POLICY_AT_DISASTER_ROOM,
    CH_POLICY_AT_MAYOR_OFFICE,
    CH_POLICY_AT_ANSIMI,
    CH_POLICY_AT_MILITARY,
    CH_POLICY_AT_DISTRICT_CENTER,
    CH_POLICY_AT_CITY_AGENCY,
    CH_POLICY_AT_OTHER,
    CH_POLICY_AT_COUNT
} ch_policy_agency_type_t;

/* The index of an agency type name ("police-112"), or -1 when it is not one of the above. */
int ch_policy_agency_type_index(const char *name);
/* The name of an agency type index, or NULL out of range. */
const char *ch_policy_agency_type_name(int index);

/* Camera purposes (설치목적구분) as the national standard data publishes them. */
int ch_policy_purpose_known(const char *purpose); /* 1 or 0 */

/* Who asks: the agency's own staff or systems, or an operator of the city center acting on an
 * event (approving it, extending it). Bits of the extension.by mask. */
typedef enum ch_policy_role {
    CH_POLICY_ROLE_AGENCY = 1,
    CH_POLICY_ROLE_OPERATOR = 2,
} ch_policy_role_t;

/* "agency" or "operator"; 0 or CH_EINVAL. */
int ch_policy_role_parse(const char *s, ch_policy_role_t *out) CH_MUST_CHECK;

/* The city's role in the service (MISSION.md §1), information only; bits of a mask. */
#define CH_POLICY_RELAY_EXTERNAL 0x1u /* "relay-external": to an agency outside the city */
#define CH_POLICY_RELAY_INTERNAL 0x2u /* "relay-internal": to a body of the city (119, ...) */
#define CH_POLICY_OWN_USE        0x4u /* "own-use": the city's own use */
#define CH_POLICY_OWN_MONITORING 0x8u /* "own-monitoring": watched by the center itself */

/* ---- the services ---------------------------------------------------------------------- */

/* One service as loaded; read-only for callers. Lists are NULL with a zero count when empty. */
typedef struct ch_policy_service {
    char *id;
    char *name;
    char *note;              /* the reasoning behind the rules; may be NULL */
    unsigned relay;          /* CH_POLICY_RELAY_* / CH_POLICY_OWN_* bits, never 0 */
    unsigned agency_types;   /* bit i: agency type i may use the service; never 0 */
    unsigned provider_types; /* bit i: providers of type i may be drawn on */
    int providers_all;       /* providers of every type (provider_types is then all bits) */
    int purposes_all;        /* cameras of every purpose */
    char **purposes;         /* else: the purposes drawn on */
    size_t purposes_count;
    int64_t *opt_out; /* provider agency ids that opted out of this service, sorted */
    size_t opt_out_count;
    double radius_m;        /* search radius around the place or path */
    int max_cameras;        /* the most cameras of one event */
    int64_t duration_max_s; /* the longest grant (and the longest extension step) */
    int extension_allowed;  /* may a grant be extended at all */
    unsigned extension_by;  /* CH_POLICY_ROLE_* bits of who may extend */
    int extension_max;      /* how many extensions at most */
    int ptz;                /* may the agency move PTZ cameras */
    int export_allowed;     /* may the agency export recorded video */
    int approval_required;  /* must an operator approve before access */
    int identify_persons;   /* 0: the use must not identify people (a dashboard) */
    int follows_subject;    /* the event follows a moving subject: positions may move it */
    double max_speed_kmh;   /* the fastest plausible move of the subject (following only) */
    int requires_incident;  /* an incident number must be supplied */
    int requires_reason;    /* a reason must be supplied */
    char **cases;           /* when non-empty, a case from this list must be supplied */
    size_t cases_count;
    char *basis_code;    /* legal basis, e.g. "PIPA-18-2-7" */
    char *basis_text;    /* the basis in words, for the ledger */
    char *basis_comment; /* why this basis, numbering remarks; may be NULL */
} ch_policy_service_t;

typedef struct ch_policy ch_policy_t;

/* Reads and validates a services file. On success *out is a new policy (ch_policy_free) and 0
 * is returned. On failure *out is NULL, *err (when err is not NULL) is a new message naming
 * the file, the service and the field (free with ch_free), and the code is CH_ENOENT or CH_EIO
 * for a file that cannot be read, CH_ETOOBIG for one over CH_POLICY_MAX_FILE_BYTES, CH_EPARSE
 * for anything invalid. */
int ch_policy_load_file(const char *path, ch_policy_t **out, char **err) CH_MUST_CHECK;

/* The same for bytes in memory (need not be NUL-terminated). */
int ch_policy_load_buffer(const void *data, size_t len, ch_policy_t **out,
                          char **err) CH_MUST_CHECK;

/* Drops a reference to a policy (the loader's, or one ch_policy_ref took); the last one frees
 * it, and decisions and services taken from it become invalid. NULL is fine. Any thread. */
void ch_policy_free(ch_policy_t *p);
/* Takes a reference, so that a policy swapped out by a reload stays whole for a reader that
 * still uses it (an event request on the store worker): the count is atomic, and the policy
 * itself never changes once loaded. Returns p (NULL is fine). Any thread. */
ch_policy_t *ch_policy_ref(const ch_policy_t *p);

size_t ch_policy_count(const ch_policy_t *p);
/* The i-th service in file order; NULL when i is out of range. */
const ch_policy_service_t *ch_policy_at(const ch_policy_t *p, size_t i);
/* The service with this id, or NULL. */
const ch_policy_service_t *ch_policy_find(const ch_policy_t *p, const char *id);

/* ---- decisions ------------------------------------------------------------------------- */

typedef enum ch_policy_action {
    CH_POLICY_OPEN = 0,   /* open an event (or approve one: role operator) */
    CH_POLICY_EXTEND = 1, /* extend the grants of an open event */
} ch_policy_action_t;

/* A question to the policy. agency_type is the type of the agency the event is for: the
 * requester's own when role is agency, the event's agency when an operator acts on it. For an
 * extension the event module passes what the event carries (incident, reason, case) and the
 * number of extensions already made. */
typedef struct ch_policy_request {
    const char *service;     /* service id */
    const char *agency_type; /* store agency type, e.g. "police-112" */
    int64_t agency_id;       /* the agency the event is for (recorded, not decided on) */
    ch_policy_role_t role;   /* who asks */
    ch_policy_action_t action;
    int64_t duration_s;    /* requested length; 0 = the longest the service allows */
    int has_incident;      /* an incident number is supplied */
    int has_reason;        /* a reason is supplied */
    const char *case_name; /* the case (anklet-violation), or NULL */
    int want_ptz;          /* PTZ control is asked */
    int want_export;       /* export is asked */
    int approved;          /* an operator has already approved this event */
    int self_approval;     /* approved by the very person who asked for the event */
    int extension_count;   /* extensions already made (action EXTEND) */
} ch_policy_request_t;

typedef enum ch_policy_outcome {
    CH_POLICY_DENIED = 0,
    CH_POLICY_ALLOWED = 1,
    CH_POLICY_NEEDS_APPROVAL = 2,
} ch_policy_outcome_t;

/* "denied", "allowed", "needs-approval". */
const char *ch_policy_outcome_name(ch_policy_outcome_t o);

/* The answer. rule is a static string; service, basis_code and basis_text point into the
 * policy (NULL when the service is unknown). Limits are the service's; duration_s is the
 * granted length (a request over the limit is refused, never silently capped). */
typedef struct ch_policy_decision {
    ch_policy_outcome_t outcome;
    const char *rule;                   /* "allowed", "approval_required", or a denial code */
    char reason[CH_POLICY_REASON_LEN];  /* one English sentence */
    const ch_policy_service_t *service; /* the service decided on, or NULL */
    int64_t duration_s;                 /* granted length (0 when denied) */
    double radius_m;
    int max_cameras;
    int ptz;            /* PTZ granted */
    int export_allowed; /* export granted */
    const char *basis_code;
    const char *basis_text;
} ch_policy_decision_t;

/* Decides a request. Rules are checked in this order, the first that fails decides:
 * unknown_service, role_invalid, agency_type_not_allowed, action_invalid; for extensions
 * extension_not_allowed, extension_role_not_allowed, extension_limit; then incident_required,
 * reason_required, case_required, case_not_allowed, duration_invalid, duration_over_limit,
 * ptz_not_allowed, export_not_allowed; then approval_by_requester (approved by the person who
 * asked: the approver must be another person); then approval_required (needs-approval) unless
 * the event is approved, whoever asks (an operator's own request is not its approval); else
 * allowed. Returns 0, or CH_EINVAL for NULL arguments (out is then untouched). */
int ch_policy_decide(const ch_policy_t *p, const ch_policy_request_t *req,
                     ch_policy_decision_t *out) CH_MUST_CHECK;

/* May a camera of this provider (agency type and id) with this purpose serve this service?
 * 1 or 0; *rule (when not NULL) is set to a static code: "camera_allowed",
 * "unknown_service" (svc NULL), "provider_opted_out", "provider_type_not_allowed" or
 * "purpose_not_allowed". A NULL or empty purpose matches only a service that draws on all purposes.
 */
int ch_policy_camera_allowed(const ch_policy_service_t *svc, const char *provider_type,
                             int64_t provider_id, const char *purpose, const char **rule);

/* A move of an event's subject: from its last position to a new one. */
typedef struct ch_policy_move {
    ch_policy_role_t role; /* who moves it */
    double distance_m;     /* from the last position to the new one */
    int64_t elapsed_ms;    /* since the subject was at the last position (<= 0: no time) */
} ch_policy_move_t;

/*
 * May the event of service svc move? Rules in order: unknown_service (svc NULL),
 * not_moving_subject (the service does not follow a subject: denied for every role, a place
 * that moves is a new event), implausible_speed (distance / elapsed over max_speed_kmh, or no
 * time at all: denied for an agency; for an operator allowed with the rule
 * implausible_speed_override, so that the caller records the override), else allowed. reason
 * says the speed and the limit. Returns 0, or CH_EINVAL for NULL arguments. Pure, like
 * ch_policy_decide.
 */
int ch_policy_decide_move(const ch_policy_service_t *svc, const ch_policy_move_t *m,
                          ch_policy_decision_t *out) CH_MUST_CHECK;

#endif /* CH_POLICY_H */

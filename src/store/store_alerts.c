/*
 * store/store_alerts.c: alerts and device transitions, generic tables of the back end with
 * their checks and typed calls. The alert module (src/alert/) owns what alerts mean; the MQTT
 * device watch (src/health/mqtt.c) writes the transitions.
 */
#include "store/store_internal.h"

#include <string.h>

#define ALERTS      (&ch_store__tables[CH_STORE__ALERTS])
#define TRANSITIONS (&ch_store__tables[CH_STORE__DEVICE_TRANSITIONS])

const char *const ch_store_alert_states[] = {"open", "acknowledged", "resolved", NULL};
const char *const ch_store_alert_kinds[] = {"camera-offline", "provider-down", "device-offline",
                                            "bell-pressed", NULL};
const char *const ch_store_alert_severities[] = {"info", "warning", "critical", NULL};

static const char *const subject_types[] = {"camera", "device", "agency", NULL};

CH_STORE__FINI(ch_alert_fini, ch_alert_t, ALERTS)

CH_STORE__FINI(ch_device_transition_fini, ch_device_transition_t, TRANSITIONS)

CH_STORE__LIST_FREE(ch_alert_list_free, ch_alert_list_t, ALERTS)

CH_STORE__LIST_FREE(ch_device_transition_list_free, ch_device_transition_list_t, TRANSITIONS)

static int alert_check(ch_store_t *st, const ch_alert_t *a)
{
    int rc;
    if (a->message == NULL || a->subject_id <= 0 || a->agency_id < 0) {
        return ch_store__fail(st, CH_EINVAL, "alert: message and subject_id are required");
    }
    if ((rc = ch_store__check_enum(st, "alert", "kind", a->kind, ch_store_alert_kinds)) != 0 ||
        (rc = ch_store__check_enum(st, "alert", "severity", a->severity,
                                   ch_store_alert_severities)) != 0 ||
        (rc = ch_store__check_enum(st, "alert", "subject_type", a->subject_type, subject_types)) !=
            0 ||
        (rc = ch_store__check_enum(st, "alert", "status", a->status, ch_store_alert_states)) != 0) {
        return rc;
    }
    return 0;
}

CH_STORE__GET(ch_store_alert_get, ch_alert_t, ALERTS)

CH_STORE__WRITES(ch_store_alert_create, ch_store_alert_update, ch_alert_t, ALERTS, alert_check)

CH_STORE__LIST(ch_store_alert_list, ch_alert_list_t, ALERTS)

int ch_store_device_transition_create(ch_store_t *st, ch_device_transition_t *t)
{
    if (t->device_id <= 0 || t->agency_id <= 0 || t->to_state == NULL) {
        return ch_store__fail(st, CH_EINVAL,
                              "device transition: device_id, agency_id and to_state are required");
    }
    return ch_store__create(st, TRANSITIONS, t);
}

CH_STORE__LIST(ch_store_device_transition_list, ch_device_transition_list_t, TRANSITIONS)

/*
 * store/records_alert.h: alerts and device transitions. One domain's records, as the store keeps
 * them; store/store.h includes it, and callers include store.h. The calls that read and write them
 * are in store.h; records returned are the caller's, released with their *_fini or *_list_free.
 */
#ifndef CH_STORE_RECORDS_ALERT_H
#define CH_STORE_RECORDS_ALERT_H

#include <stddef.h>
#include <stdint.h>

#include "store/records_list.h"

/* Values, NULL-terminated (docs/internals/alert.md). */
extern const char *const ch_store_alert_states[];     /* open acknowledged resolved */
extern const char *const ch_store_alert_kinds[];      /* camera-offline provider-down
                                                         device-offline bell-pressed */
extern const char *const ch_store_alert_severities[]; /* info warning critical */

/* An alert the rules raised (the alert module owns its meaning). The state is kept in the
 * column "status" so that the generic list filter applies; the API calls it "state". */
typedef struct ch_alert {
    int64_t id;
    char *kind;          /* required: one of ch_store_alert_kinds */
    char *severity;      /* required: one of ch_store_alert_severities */
    char *subject_type;  /* required: "camera", "device" or "agency" */
    int64_t subject_id;  /* required */
    int64_t agency_id;   /* the subject's provider or owner agency, 0 when none */
    char *message;       /* required: one English sentence for people */
    char *details;       /* a JSON object text (the bell's cameras, counts, ...), or NULL */
    char *status;        /* required: one of ch_store_alert_states */
    int64_t raised_at;   /* ms since epoch */
    char *acked_by;      /* the actor who acknowledged it, or NULL */
    int64_t acked_at;    /* 0 when not acknowledged */
    char *note;          /* the acknowledgement's note, or NULL */
    int64_t resolved_at; /* 0 while not resolved */
    char *resolved_reason;
    int64_t created_at;
    int64_t updated_at;
} ch_alert_t;

/* One change of a device's state, as the MQTT device watch saw it. */
typedef struct ch_device_transition {
    int64_t id;
    int64_t device_id; /* required */
    int64_t agency_id; /* required: the device's agency */
    char *from_state;  /* "unknown" for the first one seen */
    char *to_state;    /* required: "online", "fault", "offline" */
    int64_t at;        /* ms since epoch */
    char *reason;      /* "heartbeat missed", "status fault", ... or NULL */
    int64_t created_at;
    int64_t updated_at;
} ch_device_transition_t;

CH_STORE_LIST_TYPE(ch_alert_list, ch_alert_t);

CH_STORE_LIST_TYPE(ch_device_transition_list, ch_device_transition_t);

void ch_alert_fini(ch_alert_t *a);
void ch_device_transition_fini(ch_device_transition_t *t);

#endif /* CH_STORE_RECORDS_ALERT_H */

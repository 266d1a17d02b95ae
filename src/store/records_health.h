/*
 * store/records_health.h: camera health: the transitions of a camera's state and the cameras the
 * probes watch. One domain's records, as the store keeps them; store/store.h includes it, and
 * callers include store.h. The calls that read and write them are in store.h; records returned are
 * the caller's, released with their *_fini or *_list_free.
 */
#ifndef CH_STORE_RECORDS_HEALTH_H
#define CH_STORE_RECORDS_HEALTH_H

#include <stddef.h>
#include <stdint.h>

/* One transition of a camera's health state (camera_health_transitions). Strings borrowed. The
 * rows are kept when a camera is deleted: the outage history and monthly reports outlive it. */
typedef struct ch_store_health_row {
    int64_t id;
    int64_t camera_id;
    int64_t agency_id; /* the provider when it happened */
    int64_t at_ms;
    const char *old_state;
    const char *new_state;
    const char *reason; /* may be NULL */
} ch_store_health_row_t;

typedef int (*ch_store_health_fn)(void *ud, const ch_store_health_row_t *r);

/* A camera with a stream URL, for the probes. Strings valid during the call only. */
typedef struct ch_store_stream_row {
    int64_t id, agency_id;
    const char *url, *user, *password; /* user and password may be NULL */
    const char *tls_pin;               /* the camera's pinned TLS key, or NULL */
} ch_store_stream_row_t;

#endif /* CH_STORE_RECORDS_HEALTH_H */

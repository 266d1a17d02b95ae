/*
 * store/records_audit.h: what the store keeps for the audit log: the index's rows and filter, the
 * log's latest checkpoint, and the outbox of records waiting to be appended. One domain's records,
 * as the store keeps them; store/store.h includes it, and callers include store.h. The calls that
 * read and write them are in store.h; records returned are the caller's, released with their
 * *_fini or *_list_free.
 */
#ifndef CH_STORE_RECORDS_AUDIT_H
#define CH_STORE_RECORDS_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "store/records_list.h"

/* One audit record as the index knows it: enough to find records by camera, agency, event,
 * actor, action and time. The audit log is the truth; the index only points into it by seq,
 * and can be dropped and rebuilt from the log at any time. Strings are borrowed. */
typedef struct ch_store_audit_row {
    int64_t seq;
    int64_t time_ns;
    const char *actor;
    const char *action;
    /* What the record is about: any number of cameras, agencies and events (a grant names
     * several cameras). Borrowed arrays; NULL when the count is 0. */
    const int64_t *camera_ids;
    size_t n_camera_ids;
    const int64_t *agency_ids;
    size_t n_agency_ids;
    const int64_t *event_ids;
    size_t n_event_ids;
} ch_store_audit_row_t;

typedef struct ch_store_audit_filter {
    int64_t since_ns, until_ns;             /* 0 = open; since <= time_ns < until */
    int64_t camera_id, agency_id, event_id; /* 0 = any */
    const char *actor, *action;             /* exact; NULL = any */
    int64_t after_seq;                      /* cursor: seq > after_seq; -1 = from the start */
    int limit;                              /* 1..1000; 0 means 100 */
} ch_store_audit_filter_t;

/* The audit log's latest checkpoint, kept in the store too: a second place that whoever cuts
 * the log's end (and deletes its checkpoints file) must also find and change. One row. */
typedef struct ch_store_audit_checkpoint {
    int64_t size;     /* the tree size it signs */
    uint8_t root[32]; /* the root hash at that size */
    char *note;       /* the signed note (text); owned, free with ch_free */
} ch_store_audit_checkpoint_t;

/*
 * An audit record waiting to be appended: written by commands that change the store while the
 * hub holds the audit log (cctvhub user ..., apikey ...), in the same transaction as their
 * change, and appended by whoever holds the log next (the hub drains it every second).
 */
typedef struct ch_outbox {
    int64_t id;
    char *actor;   /* required */
    char *action;  /* required */
    char *object;  /* optional */
    char *details; /* optional: a JSON object text */
    int64_t created_at;
    int64_t updated_at;
} ch_outbox_t;

CH_STORE_LIST_TYPE(ch_outbox_list, ch_outbox_t);

void ch_outbox_fini(ch_outbox_t *o);

#endif /* CH_STORE_RECORDS_AUDIT_H */

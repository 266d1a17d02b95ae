/*
 * store/records_registry.h: the registry's records: agencies, cameras and devices, the values
 * their enumerated fields may take, and their lists. One domain's records, as the store keeps
 * them; store/store.h includes it, and callers include store.h. The calls that read and write them
 * are in store.h; records returned are the caller's, released with their *_fini or *_list_free.
 */
#ifndef CH_STORE_RECORDS_REGISTRY_H
#define CH_STORE_RECORDS_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "store/records_list.h"

/* An agency: a provider of video (district center, city agency), a user of it (112, 119, ...)
 * or both. */
typedef struct ch_agency {
    int64_t id;         /* 0 before creation */
    char *name;         /* required, unique */
    char *kind;         /* required: "provider", "user", "both" */
    char *level;        /* required: "district", "city", "national" */
    char *type;         /* required: police-112, police-station, fire-119, moj-tracking,
                           disaster-room, mayor-office, ansimi, military, district-center,
                           city-agency, other */
    char *phone;        /* optional */
    char *code;         /* optional: public-body code (개방자치단체코드) */
    char *tls_key;      /* optional: its systems' client certificate key ("sha256:" + 64
                           lowercase hex of the SPKI): the relay admits its grants' viewers over
                           RTSPS with that certificate only */
    int64_t created_at; /* ms since epoch, set by the store */
    int64_t updated_at; /* ms since epoch, set by the store */
} ch_agency_t;

/* Sentinel for "unknown" in the double fields of a camera. */
#define CH_STORE_UNKNOWN_DOUBLE (-1.0)

typedef struct ch_camera {
    int64_t id;
    int64_t agency_id;   /* required: the provider agency */
    char *name;          /* required */
    int located;         /* 1 when lat/lon are usable, 0 for "unlocated" */
    double lat, lon;     /* WGS84 degrees; 0 when !located */
    char *road_address;  /* 소재지도로명주소 */
    char *lot_address;   /* 소재지지번주소 */
    char *purpose;       /* 설치목적구분, as published (생활방범, 어린이보호, ...) */
    char *kind;          /* required: "fixed", "ptz", "unknown" */
    double heading_deg;  /* 0..360 clockwise from north, or CH_STORE_UNKNOWN_DOUBLE */
    double fov_deg;      /* horizontal field of view, 0..360, or CH_STORE_UNKNOWN_DOUBLE */
    double range_m;      /* how far it usefully sees, or CH_STORE_UNKNOWN_DOUBLE */
    int64_t pixels;      /* pixels (2,000,000 for "200" = 200만 화소), or 0 when unknown */
    int retention_days;  /* 보관일수, or 0 when unknown */
    char *installed_ym;  /* "YYYY-MM" or "YYYY", NULL when unknown */
    char *rtsp_url;      /* never returned by the API, never logged */
    char *rtsp_username; /* never returned by the API, never logged */
    char *rtsp_password; /* never returned by the API, never logged */
    char *codec;         /* "h264", "h265" or NULL */
    char *tls_pin;       /* rtsps:// with a self-signed certificate: its key's SPKI fingerprint
                            ("sha256:" + 64 lowercase hex), the only key the hub accepts; NULL:
                            the chain must lead to tls.ca_bundle and carry the URL's host */
    char *status;        /* required: "active", "inactive", "unlocated", "maintenance" */
    char *direction;     /* 촬영방면정보 as published */
    char *note;          /* free text (landmark text from 촬영방면정보, ...) */
    char *flags;         /* comma-separated import flags ("unlocated,bad-date"), or NULL */
    char *source_file;   /* file name it was imported from, or NULL when created by API */
    int source_line;     /* line in that file, or 0 */
    char *source_key;    /* stable import key: same site and camera index -> same key */
    int64_t created_at;
    int64_t updated_at;
} ch_camera_t;

/* A smart-city device: emergency bell, public Wi-Fi access point, sensor. */
typedef struct ch_device {
    int64_t id;
    int64_t agency_id; /* required: the owner agency */
    char *name;        /* required */
    char *kind;        /* required: "emergency-bell", "wifi-ap", "sensor", "other" */
    int located;
    double lat, lon;
    char *road_address;
    char *lot_address;
    char *status; /* required: "active", "inactive", "unlocated", "fault" */
    char *attrs;  /* a JSON object text of further attributes, or NULL */
    char *flags;  /* as for cameras */
    char *source_file;
    int source_line;
    char *source_key;
    int64_t created_at;
    int64_t updated_at;
} ch_device_t;

/* The values the enumerated fields may take, NULL-terminated: the store checks records against
 * them, and the API checks bodies and filters against the same lists, so a new value is added
 * in one place. */
extern const char *const ch_store_agency_kinds[];
extern const char *const ch_store_agency_levels[];
extern const char *const ch_store_agency_types[];
extern const char *const ch_store_camera_kinds[];
extern const char *const ch_store_camera_statuses[];
extern const char *const ch_store_device_kinds[];
extern const char *const ch_store_device_statuses[];

/* 1 when key is a client certificate's key as the PKI writes it (ch_net_pki_fingerprint):
 * "sha256:" and 64 lowercase hex digits; else 0. The one rule for an agency's tls_key and an
 * API key's, which are compared byte for byte with what a TLS handshake showed. */
int ch_store_valid_tls_key(const char *key);

void ch_agency_fini(ch_agency_t *a);
void ch_camera_fini(ch_camera_t *c);
void ch_device_fini(ch_device_t *d);
/* A zeroed camera with every "unknown" sentinel set. */
void ch_camera_init(ch_camera_t *c);
void ch_device_init(ch_device_t *d);

/* Pages of the lists (store/records_list.h). */
CH_STORE_LIST_TYPE(ch_agency_list, ch_agency_t);
CH_STORE_LIST_TYPE(ch_camera_list, ch_camera_t);

CH_STORE_LIST_TYPE(ch_device_list, ch_device_t);

#endif /* CH_STORE_RECORDS_REGISTRY_H */

/*
 * libFuzzer target: bytes as a request body, through the API's JSON parsing and its
 * body -> record conversion for agencies, cameras and devices; a record that converts is
 * turned back into JSON and converted again (what a client writing back an answer does).
 * Looks for crashes, leaks and sanitizer reports, and checks two invariants: every error
 * names a status and code and serialises as JSON, and answers never hold credentials.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every error must be answerable: a status, a code, and a body jansson can build. */
static void check_error(const ch_api__err_t *err)
{
    if (err->status < 400 || err->code == NULL) {
        abort();
    }
    json_t *j = ch_api__err_to_json(err);
    if (json_object_get(json_object_get(j, "error"), "message") == NULL) {
        abort();
    }
    json_decref(j);
}

static void fuzz_agency(const json_t *body)
{
    ch_agency_t a;
    ch_api__err_t err;
    memset(&a, 0, sizeof(a));
    if (ch_api__agency_from_json(body, &a, &err) == 0) {
        json_t *j = ch_api__agency_to_json(&a);
        ch_agency_t back;
        memset(&back, 0, sizeof(back));
        if (ch_api__agency_from_json(j, &back, &err) != 0) {
            abort(); /* what we answer must be accepted back */
        }
        ch_agency_fini(&back);
        json_decref(j);
    } else {
        check_error(&err);
    }
    ch_agency_fini(&a);
}

static void fuzz_camera(const json_t *body)
{
    ch_camera_t c;
    ch_api__err_t err;
    ch_camera_init(&c);
    if (ch_api__camera_from_json(body, &c, &err) == 0) {
        c.id = 1;
        json_t *j = ch_api__camera_to_json(&c);
        if (json_object_get(j, "rtsp_url") || json_object_get(j, "rtsp_username") ||
            json_object_get(j, "rtsp_password")) {
            abort();
        }
        ch_camera_t back;
        ch_camera_init(&back);
        if (ch_api__camera_from_json(j, &back, &err) != 0) {
            abort();
        }
        ch_camera_fini(&back);
        json_decref(j);
    } else {
        check_error(&err);
    }
    ch_camera_fini(&c);
}

static void fuzz_device(const json_t *body)
{
    ch_device_t d;
    ch_api__err_t err;
    ch_device_init(&d);
    if (ch_api__device_from_json(body, &d, &err) == 0) {
        json_t *j = ch_api__device_to_json(&d);
        ch_device_t back;
        ch_device_init(&back);
        if (ch_api__device_from_json(j, &back, &err) != 0) {
            abort();
        }
        ch_device_fini(&back);
        json_decref(j);
    } else {
        check_error(&err);
    }
    ch_device_fini(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ch_api__err_t err;
    json_t *body = ch_api__parse_body((const char *)data, size, &err);
    if (body == NULL) {
        check_error(&err);
        return 0;
    }
    fuzz_agency(body);
    fuzz_camera(body);
    fuzz_device(body);
    json_decref(body);
    return 0;
}

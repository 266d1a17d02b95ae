/*
 * libFuzzer target: arbitrary bytes as a CSV file (header and rows) through encoding and
 * layout detection and row-to-record conversion, without a database. Checks the invariants the
 * store relies on (required fields set, known enumerations, finite numbers, positions inside
 * Korea when located) and that the report always turns into JSON.
 */
#include "registry/registry.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void check_position(int located, double lat, double lon)
{
    if (located) {
        assert(lat >= 33.0 && lat <= 39.5 && lon >= 124.0 && lon <= 132.0);
    } else {
        assert(lat == 0 && lon == 0);
    }
}

static int check_row(void *user, ch_import_row_t *row)
{
    (void)user;
    assert(row->line >= 1);
    assert(row->agency_name != NULL && row->agency_name[0] != '\0');
    assert(row->camera_count >= 1 || row->device != NULL);
    assert(row->camera_count <= CH_REGISTRY_MAX_CAMERAS_PER_SITE);
    assert((row->camera != NULL) == (row->camera_count > 0));
    if (row->camera != NULL) {
        const ch_camera_t *c = row->camera;
        assert(c->name != NULL && c->source_key != NULL && c->kind != NULL && c->status != NULL);
        /* The site's first camera: the store numbers the others from these endings. */
        size_t nn = strlen(c->name), nk = strlen(c->source_key);
        assert(nn >= 2 && strcmp(c->name + nn - 2, "#1") == 0);
        assert(nk >= 2 && strcmp(c->source_key + nk - 2, "#1") == 0);
        assert(!strcmp(c->kind, "fixed") || !strcmp(c->kind, "ptz") || !strcmp(c->kind, "unknown"));
        assert(isfinite(c->heading_deg) && isfinite(c->fov_deg) && isfinite(c->range_m));
        assert(c->fov_deg == CH_STORE_UNKNOWN_DOUBLE || (c->fov_deg > 0 && c->fov_deg <= 360));
        assert(c->heading_deg == CH_STORE_UNKNOWN_DOUBLE ||
               (c->heading_deg >= 0 && c->heading_deg < 360));
        assert(c->pixels >= 0 && c->retention_days >= 0);
        assert(c->installed_ym == NULL || strlen(c->installed_ym) == 4 ||
               strlen(c->installed_ym) == 7);
        check_position(c->located, c->lat, c->lon);
        assert(c->source_line == row->line);
        /* Strings must be valid UTF-8, or the JSON API would fail on them. */
        json_t *s = json_string(c->name);
        assert(s != NULL);
        json_decref(s);
    }
    if (row->device != NULL) {
        const ch_device_t *d = row->device;
        assert(d->name != NULL && d->source_key != NULL);
        check_position(d->located, d->lat, d->lon);
        if (d->attrs != NULL) {
            json_t *a = json_loads(d->attrs, 0, NULL);
            assert(a != NULL && json_is_object(a));
            json_decref(a);
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20)) {
        return 0;
    }
    ch_import_options_t opt = {.now_ms = 1795564800000LL};
    ch_import_report_t rep;
    ch_import_report_init(&rep);
    char *err = NULL;
    int rc = ch_registry_convert_buffer("fuzz.csv", (const char *)data, size, &opt, check_row, NULL,
                                        &rep, &err);
    assert(rc == 0 || (err != NULL && rep.error != NULL));
    assert(rep.sites + (long)rep.skipped_count <= rep.rows + 1);
    json_t *j = ch_import_report_to_json(&rep);
    char *text = json_dumps(j, JSON_COMPACT);
    assert(text != NULL);
    free(text);
    json_decref(j);
    ch_free(err);
    ch_import_report_fini(&rep);

    /* The cell readers alone, on the raw bytes. */
    ch_direction_t d;
    ch_registry_parse_direction((const char *)data, size < 300 ? size : 300, &d);
    char ym[8];
    const char *why;
    (void)ch_registry_normalize_installed((const char *)data, size < 40 ? size : 40, 202611, ym,
                                          &why);
    int64_t px;
    (void)ch_registry_parse_pixels((const char *)data, size < 40 ? size : 40, &px);
    return 0;
}

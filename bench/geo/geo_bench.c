/*
 * geo benchmark: 1.6 million cameras scaled up from the real Busan and Daejeon files (each
 * site's declared camera count, positions jittered, copies of both cities tiled over a
 * Korea-sized box so that each copy keeps the real density), then 10,000 random point
 * queries (top 20 within 300 m, points within 150 m of a random camera so that dense districts
 * appear): p50/p99 latency, queries per second and memory, first through the geo module, then
 * in the same run through SQLite's R*Tree with the same visibility model in SQL on the same
 * data. Prints a table and the ratios.
 *
 * usage: geo-bench DATA_DIR [CAMERAS] [QUERIES]
 */
#include <iconv.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "geo/geo.h"

typedef struct site {
    double lat, lon;
    const char *kind;
    double fov, heading, range;
    int64_t pixels;
    int count;
} site_t;

static site_t *sites;
static size_t nsites, sites_cap;

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double urand(double lo, double hi)
{
    return lo + (hi - lo) * (double)(rng() >> 11) / 9007199254740992.0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = 0;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            v = strtol(line + 6, NULL, 10);
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return v;
}

static char *slurp(const char *path, size_t *len, int cp949)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "geo-bench: cannot open %s\n", path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = ch_malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        exit(2);
    }
    fclose(f);
    *len = (size_t)n;
    if (!cp949) {
        return buf;
    }
    iconv_t cd = iconv_open("UTF-8", "CP949");
    size_t cap = *len * 2 + 16, lo = cap, li = *len;
    char *out = ch_malloc(cap), *op = out, *ip = buf;
    while (li > 0) {
        if (iconv(cd, &ip, &li, &op, &lo) == (size_t)-1) {
            ip++;
            li--;
        }
    }
    iconv_close(cd);
    ch_free(buf);
    *len = (size_t)(op - out);
    return out;
}

/* The next CSV record split in place into at most 32 cells (quotes, CRLF); 0 at the end. */
static int next_record(char **pp, char *end, char *cells[32])
{
    char *p = *pp, *w = p;
    int n = 0, quoted = 0;
    if (p >= end) {
        return 0;
    }
    cells[n++] = w;
    while (p < end) {
        char ch = *p++;
        if (quoted) {
            if (ch == '"' && p < end && *p == '"') {
                *w++ = '"';
                p++;
            } else if (ch == '"') {
                quoted = 0;
            } else {
                *w++ = ch;
            }
        } else if (ch == '"') {
            quoted = 1;
        } else if (ch == ',') {
            *w++ = '\0';
            if (n < 32) {
                cells[n++] = w;
            }
        } else if (ch == '\n') {
            break;
        } else if (ch != '\r') {
            *w++ = ch;
        }
    }
    *w = '\0';
    *pp = p;
    return n;
}

static int col(char **h, int n, const char *a, const char *b)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(h[i], a) == 0 || (b != NULL && strcmp(h[i], b) == 0)) {
            return i;
        }
    }
    fprintf(stderr, "geo-bench: no column %s\n", a);
    exit(2);
}

/* Reads one file's sites: position, declared camera count and what 촬영방면정보 says (the
 * registry's rules in short: 360 -> PTZ all round, 회전 -> PTZ, 고정 -> fixed, "N도 ..." ->
 * fixed with that fov, compass words -> heading). */
static void load_sites(const char *path, int cp949)
{
    size_t len;
    char *text = slurp(path, &len, cp949);
    char *p = text, *end = text + len, *h[32], *c[32];
    int nh = next_record(&p, end, h);
    int c_lat = col(h, nh, "WGS84위도", "위도"), c_lon = col(h, nh, "WGS84경도", "경도");
    int c_dir = col(h, nh, "촬영방면정보", NULL), c_px = col(h, nh, "카메라화소수", NULL);
    int c_n = col(h, nh, "카메라대수", NULL);
    static const struct {
        const char *word;
        double heading;
    } compass[] = {{"북동", 45}, {"남동", 135}, {"남서", 225}, {"북서", 315},
                   {"북", 0},    {"동", 90},    {"남", 180},   {"서", 270}};
    int n;
    while ((n = next_record(&p, end, c)) > 0) {
        if (n < nh) {
            continue;
        }
        char *e1, *e2;
        double lat = strtod(c[c_lat], &e1), lon = strtod(c[c_lon], &e2);
        if (e1 == c[c_lat] || e2 == c[c_lon] || lat < 33.0 || lat > 39.5 || lon < 124.0 ||
            lon > 132.0) {
            continue;
        }
        if (nsites == sites_cap) {
            sites_cap = sites_cap ? sites_cap * 2 : 8192;
            sites = ch_realloc(sites, sites_cap * sizeof(site_t));
        }
        site_t *s = &sites[nsites++];
        s->lat = lat;
        s->lon = lon;
        s->kind = "unknown";
        s->fov = s->heading = s->range = -1.0;
        const char *d = c[c_dir];
        if (strstr(d, "360") != NULL) {
            s->kind = "ptz";
            s->fov = 360.0;
        } else if (strstr(d, "회전") != NULL) {
            s->kind = "ptz";
        } else if (strstr(d, "고정") != NULL) {
            s->kind = "fixed";
        } else if (strstr(d, "도 정면") != NULL || strstr(d, "도 단방향") != NULL) {
            s->kind = "fixed";
            s->fov = strtod(d, NULL);
        } else {
            for (size_t i = 0; i < sizeof(compass) / sizeof(compass[0]); i++) {
                if (strstr(d, compass[i].word) != NULL && strlen(d) <= 12) {
                    s->heading = compass[i].heading;
                    break;
                }
            }
        }
        double px = strtod(c[c_px], NULL);
        s->pixels = px >= 100000 ? (int64_t)px
                                 : (px > 0 && px < 10 ? (int64_t)(px * 1e6) : (int64_t)(px * 1e4));
        long cnt = strtol(c[c_n], NULL, 10);
        s->count = cnt < 1 ? 1 : (cnt > 8 ? 8 : (int)cnt);
    }
    ch_free(text);
}

typedef struct gcam {
    ch_geo_cam_t cam;
} gcam_t;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void percentiles(double *v, size_t n, double *p50, double *p99, double *mean)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += v[i];
    }
    qsort(v, n, sizeof(double), cmp_double);
    *p50 = v[n / 2];
    *p99 = v[(size_t)(n * 0.99)];
    *mean = sum / (double)n;
}

static void die_sql(sqlite3 *db, const char *what)
{
    fprintf(stderr, "geo-bench: sqlite %s: %s\n", what, sqlite3_errmsg(db));
    exit(1);
}

/* The same model in SQL: the frame's scales are bound per query (metres per degree at the
 * query point), visibility and score as in src/geo/geo_model.c. */
static const char *const sql_query =
    "WITH c AS (SELECT m.id, m.kind, m.heading, m.fov, m.range, m.range_known, m.px, m.status,"
    "  (m.lon - ?2) * ?4 AS dx, (m.lat - ?1) * ?3 AS dy"
    "  FROM cam_rt r JOIN cams m ON m.id = r.id"
    "  WHERE r.minlat <= ?6 AND r.maxlat >= ?5 AND r.minlon <= ?8 AND r.maxlon >= ?7),"
    " d AS (SELECT *, sqrt(dx * dx + dy * dy) AS dist,"
    "  mod(degrees(atan2(-dx, -dy)) + 360.0, 360.0) AS bearing,"
    "  CASE WHEN fov > 0 THEN fov WHEN kind = 2 THEN 60.0 ELSE 90.0 END AS fv FROM c),"
    " e AS (SELECT *, CASE WHEN heading < 0 THEN NULL ELSE"
    "  (CASE WHEN abs(bearing - heading) > 180 THEN 360 - abs(bearing - heading)"
    "   ELSE abs(bearing - heading) END) END AS off FROM d WHERE dist <= range + 0.001 AND dist <= "
    "?9),"
    " v AS (SELECT *, CASE WHEN fv >= 360 THEN 1"
    "  WHEN off IS NOT NULL THEN (CASE WHEN off <= fv / 2 + 1e-6 THEN 1 WHEN kind = 2 THEN 2 ELSE "
    "0 END)"
    "  WHEN kind = 2 THEN 2 ELSE 3 END AS vis FROM e),"
    " s AS (SELECT *, CASE WHEN kind = 2 AND vis = 2 AND off IS NOT NULL THEN off - fv / 2"
    "  WHEN kind = 2 AND vis = 1 THEN 0.0 ELSE -1.0 END AS pan FROM v WHERE vis > 0)"
    " SELECT id, dist, bearing, vis, pan, (0.45 * (CASE vis WHEN 1 THEN 1.0 WHEN 2 THEN"
    "  (CASE WHEN heading >= 0 THEN 0.8 ELSE 0.7 END) ELSE 0.4 END)"
    "  * (CASE WHEN range_known THEN 1.0 ELSE 0.9 END)"
    "  + 0.30 * max(0.0, 1.0 - dist / range)"
    "  + 0.10 * (CASE WHEN kind <> 2 THEN 1.0 WHEN pan < 0 THEN 0.5 ELSE 1.0 - pan / 180.0 END)"
    "  + 0.15 * (CASE WHEN px > 0 THEN min(1.0, max(0.25, px / 400.0)) ELSE 0.5 END))"
    "  * (CASE WHEN status = 0 THEN 1.0 ELSE 0.25 END) AS score, status"
    " FROM s ORDER BY status <> 0, score DESC, dist, id LIMIT ?10";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: geo-bench DATA_DIR [CAMERAS] [QUERIES]\n");
        return 2;
    }
    size_t ncams = argc > 2 ? strtoul(argv[2], NULL, 10) : 1600000;
    size_t nq = argc > 3 ? strtoul(argv[3], NULL, 10) : 10000;
    const double radius = 300.0;
    const size_t limit = 20;
    char path[1024];
    snprintf(path, sizeof(path), "%s/busan_cctv_std_20241206_utf8_crlf.csv", argv[1]);
    load_sites(path, 0);
    snprintf(path, sizeof(path), "%s/daejeon_5gu_cctv_std_20260520_cp949.csv", argv[1]);
    load_sites(path, 1);
    size_t per_copy = 0, kinds[3] = {0, 0, 0}, known_heading = 0;
    for (size_t i = 0; i < nsites; i++) {
        per_copy += (size_t)sites[i].count;
    }

    /* Cameras: copies of both cities tiled 0.7 degrees apart (a city is about 0.4 degrees
     * across), each camera of a site jittered by up to 5 m and each copy by up to 30 m. */
    ch_geo_cam_t *cams = ch_malloc(ncams * sizeof(*cams));
    size_t n = 0;
    for (int copy = 0; n < ncams; copy++) {
        double olat = (copy / 12) * 0.7 - 2.0 + urand(-0.0003, 0.0003);
        double olon = (copy % 12) * 0.7 - 3.5 + urand(-0.0003, 0.0003);
        for (size_t i = 0; i < nsites && n < ncams; i++) {
            for (int k = 0; k < sites[i].count && n < ncams; k++) {
                ch_camera_t c;
                ch_camera_init(&c);
                c.id = (int64_t)n + 1;
                c.agency_id = 1 + (int64_t)(i % 230);
                c.located = 1;
                c.lat = sites[i].lat + olat + urand(-0.000045, 0.000045);
                c.lon = sites[i].lon + olon + urand(-0.000055, 0.000055);
                c.kind = (char *)sites[i].kind;
                c.fov_deg = sites[i].fov;
                c.heading_deg = sites[i].heading;
                c.range_m = sites[i].range;
                c.pixels = sites[i].pixels;
                c.status = rng() % 50 == 0 ? "maintenance" : "active";
                if (ch_geo_cam_from_camera(&c, &cams[n]) != 0) {
                    continue;
                }
                kinds[cams[n].kind]++;
                known_heading += cams[n].heading_cdeg != UINT16_MAX;
                n++;
            }
        }
    }
    printf("data: %zu sites in the two files, %zu cameras a copy; %zu cameras: unknown %.1f%%, "
           "fixed %.1f%%, ptz %.1f%%, heading known %.2f%%\n",
           nsites, per_copy, n, 100.0 * kinds[0] / n, 100.0 * kinds[1] / n, 100.0 * kinds[2] / n,
           100.0 * known_heading / n);

    /* Queries: within 150 m of a random camera. */
    double *qlat = ch_malloc(nq * sizeof(double)), *qlon = ch_malloc(nq * sizeof(double));
    for (size_t q = 0; q < nq; q++) {
        const ch_geo_cam_t *c = &cams[rng() % n];
        qlat[q] = c->lat_e7 * 1e-7 + urand(-0.00135, 0.00135);
        qlon[q] = c->lon_e7 * 1e-7 + urand(-0.00165, 0.00165);
    }

    /* ---- the geo module ---- */
    long rss0 = rss_kib();
    double t0 = now_s();
    ch_geo_t *idx = ch_geo_new();
    for (size_t i = 0; i < n; i++) {
        if (ch_geo_upsert_cam(idx, &cams[i], i % 3 ? "생활방범" : "어린이보호") != 0) {
            fprintf(stderr, "geo-bench: upsert failed\n");
            return 1;
        }
    }
    double build_s = now_s() - t0;
    long rss1 = rss_kib();
    size_t geo_bytes = ch_geo_memory_bytes(idx);
    double *lat_us = ch_malloc(nq * sizeof(double));
    size_t total_results = 0, max_seen = 0;
    int64_t *first_ids = ch_malloc(nq * sizeof(int64_t));
    double tq0 = now_s();
    for (size_t q = 0; q < nq; q++) {
        ch_geo_results_t r;
        double a = now_s();
        if (ch_geo_near(idx, qlat[q], qlon[q], radius, limit, NULL, &r) != 0) {
            return 1;
        }
        lat_us[q] = (now_s() - a) * 1e6;
        total_results += r.count;
        first_ids[q] = r.count ? r.items[0].camera_id : 0;
        ch_geo_results_fini(&r);
    }
    double geo_total = now_s() - tq0;
    /* How dense: cameras within 300 m of each query point (not timed). */
    for (size_t q = 0; q < nq && q < 1000; q++) {
        ch_geo_results_t r;
        if (ch_geo_near(idx, qlat[q], qlon[q], radius, CH_GEO_MAX_LIMIT, NULL, &r) == 0) {
            max_seen = r.count > max_seen ? r.count : max_seen;
            ch_geo_results_fini(&r);
        }
    }
    double g50, g99, gmean;
    percentiles(lat_us, nq, &g50, &g99, &gmean);

    /* ---- SQLite R*Tree ---- */
    sqlite3 *db;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK) {
        return 1;
    }
    sqlite3_exec(db, "PRAGMA cache_size=-1000000", NULL, NULL, NULL);
    if (sqlite3_exec(db,
                     "CREATE TABLE cams(id INTEGER PRIMARY KEY, lat REAL, lon REAL, kind INT,"
                     " heading REAL, fov REAL, range REAL, range_known INT, px INT, status INT);"
                     "CREATE VIRTUAL TABLE cam_rt USING rtree(id, minlat, maxlat, minlon, maxlon);",
                     NULL, NULL, NULL) != SQLITE_OK) {
        die_sql(db, "schema");
    }
    double ts0 = now_s();
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    sqlite3_stmt *ins, *insr;
    if (sqlite3_prepare_v2(db, "INSERT INTO cams VALUES(?,?,?,?,?,?,?,?,?,?)", -1, &ins, NULL) ||
        sqlite3_prepare_v2(db, "INSERT INTO cam_rt VALUES(?,?,?,?,?)", -1, &insr, NULL)) {
        die_sql(db, "prepare insert");
    }
    for (size_t i = 0; i < n; i++) {
        const ch_geo_cam_t *c = &cams[i];
        double lat = c->lat_e7 * 1e-7, lon = c->lon_e7 * 1e-7;
        sqlite3_bind_int64(ins, 1, c->id);
        sqlite3_bind_double(ins, 2, lat);
        sqlite3_bind_double(ins, 3, lon);
        sqlite3_bind_int(ins, 4, c->kind);
        sqlite3_bind_double(ins, 5, c->heading_cdeg == UINT16_MAX ? -1.0 : c->heading_cdeg * 0.01);
        sqlite3_bind_double(ins, 6, c->fov_cdeg == UINT16_MAX ? -1.0 : c->fov_cdeg * 0.01);
        sqlite3_bind_double(ins, 7, c->range_dm * 0.1);
        sqlite3_bind_int(ins, 8, c->range_known);
        sqlite3_bind_int(ins, 9, (int)c->pixels_10k);
        sqlite3_bind_int(ins, 10, c->status);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            die_sql(db, "insert");
        }
        sqlite3_reset(ins);
        sqlite3_bind_int64(insr, 1, c->id);
        sqlite3_bind_double(insr, 2, lat);
        sqlite3_bind_double(insr, 3, lat);
        sqlite3_bind_double(insr, 4, lon);
        sqlite3_bind_double(insr, 5, lon);
        if (sqlite3_step(insr) != SQLITE_DONE) {
            die_sql(db, "insert rtree");
        }
        sqlite3_reset(insr);
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    double sql_build_s = now_s() - ts0;
    sqlite3_finalize(ins);
    sqlite3_finalize(insr);
    sqlite3_stmt *qs;
    if (sqlite3_prepare_v2(db, sql_query, -1, &qs, NULL) != SQLITE_OK) {
        die_sql(db, "prepare query (needs SQLite's math functions)");
    }
    /* Both sides search no farther than the largest range in the data, as the index does. */
    double max_range = 0;
    for (size_t i = 0; i < n; i++) {
        max_range = fmax(max_range, cams[i].range_dm * 0.1);
    }
    double search = fmin(radius, max_range + 0.001);
    double *sql_us = ch_malloc(nq * sizeof(double));
    size_t sql_results = 0, same_first = 0;
    double tsq0 = now_s();
    for (size_t q = 0; q < nq; q++) {
        double a = now_s();
        double phi = qlat[q] * M_PI / 180.0, e2 = 0.00669437999014,
               w = 1 - e2 * sin(phi) * sin(phi);
        double mdeg = 6378137.0 * (1 - e2) / (w * sqrt(w)) * M_PI / 180.0;
        double ndeg = 6378137.0 / sqrt(w) * cos(phi) * M_PI / 180.0;
        double dlat = search / mdeg * 1.0001, dlon = search / ndeg * 1.0001;
        sqlite3_bind_double(qs, 1, qlat[q]);
        sqlite3_bind_double(qs, 2, qlon[q]);
        sqlite3_bind_double(qs, 3, mdeg);
        sqlite3_bind_double(qs, 4, ndeg);
        sqlite3_bind_double(qs, 5, qlat[q] - dlat);
        sqlite3_bind_double(qs, 6, qlat[q] + dlat);
        sqlite3_bind_double(qs, 7, qlon[q] - dlon);
        sqlite3_bind_double(qs, 8, qlon[q] + dlon);
        sqlite3_bind_double(qs, 9, radius);
        sqlite3_bind_int(qs, 10, (int)limit);
        int rc, first = 1;
        while ((rc = sqlite3_step(qs)) == SQLITE_ROW) {
            if (first && sqlite3_column_int64(qs, 0) == first_ids[q]) {
                same_first++;
            }
            first = 0;
            sql_results++;
        }
        if (first && first_ids[q] == 0) {
            same_first++;
        }
        if (rc != SQLITE_DONE) {
            die_sql(db, "query");
        }
        sqlite3_reset(qs);
        sql_us[q] = (now_s() - a) * 1e6;
    }
    double sql_total = now_s() - tsq0;
    double s50, s99, smean;
    percentiles(sql_us, nq, &s50, &s99, &smean);
    long long sql_mem = sqlite3_memory_highwater(0);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("\n%zu cameras, %zu queries (top %zu within %.0f m); densest query point had %zu "
           "cameras that see it within %.0f m\n",
           n, nq, limit, radius, max_seen, radius);
    printf("%-22s %12s %12s %12s %12s %14s %12s\n", "engine", "p50 us", "p99 us", "mean us",
           "queries/s", "memory MiB", "build s");
    printf("%-22s %12.2f %12.2f %12.2f %12.0f %14.1f %12.2f\n", "geo module (in proc)", g50, g99,
           gmean, nq / geo_total, geo_bytes / 1048576.0, build_s);
    printf("%-22s %12.2f %12.2f %12.2f %12.0f %14.1f %12.2f\n", "SQLite R*Tree + SQL", s50, s99,
           smean, nq / sql_total, sql_mem / 1048576.0, sql_build_s);
    printf("\nratios (SQLite / geo): p50 %.0fx, p99 %.0fx, throughput %.0fx\n", s50 / g50,
           s99 / g99, (nq / geo_total) / (nq / sql_total));
    printf("geo index: %.1f bytes per camera (counted), RSS grew %.1f MiB while building; "
           "results %zu (geo) vs %zu (SQLite); same first camera in %.1f%% of queries\n",
           (double)geo_bytes / n, (rss1 - rss0) / 1024.0, total_results, sql_results,
           100.0 * same_first / nq);
    printf("peak RSS of the whole run (both engines and the generated data): %.1f MiB\n",
           ru.ru_maxrss / 1024.0);
    printf("targets: p99 <= 50 us: %s; >= 50x faster than the R*Tree (p99): %s\n",
           g99 <= 50.0 ? "met" : "NOT met", s99 / g99 >= 50.0 ? "met" : "NOT met");
    sqlite3_finalize(qs);
    sqlite3_close(db);
    ch_geo_free(idx);
    return 0;
}

/*
 * cctvhub report availability: the monthly availability report per provider (the figures a
 * city reports upward) from the store's camera health transitions, as CSV for Excel or JSON,
 * offline or beside a running hub (it only reads).
 */
#include "main/main.h"

#include "health/health.h"
#include "store/store.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: cctvhub report availability --month YYYY-MM [--format csv|json]\n"
    "                                   [--utc-offset +09:00] [options]\n"
    "\n"
    "The monthly availability report per provider agency: cameras registered, cameras probed,\n"
    "availability (time online or degraded over time observed, in percent), outages and their\n"
    "minutes, from the camera health transitions the hub keeps. The month is in local time at\n"
    "--utc-offset (Korea's +09:00 by default); the current month counts up to now. CSV (the\n"
    "default) is UTF-8 with a BOM for Excel; JSON is one object.\n"
    "\n"
    "options: --data-dir DIR, --config FILE, --store URL, --log-level L\n"
    "exit codes: 0 done; 1 the store could not be read; 2 bad command line; 3 bad\n"
    "            configuration; 4 the store cannot be opened.\n";

int ch_main_report(int argc, char **argv)
{
    ch_main_opts_t opts;
    const char *month = NULL, *format = "csv", *offset = "+09:00";
    if (argc < 2 || strcmp(argv[1], "availability") != 0) {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            fputs(usage, stdout);
            return CH_EXIT_OK;
        }
        fprintf(stderr, "cctvhub report: which report? (availability)\n\n%s", usage);
        return CH_EXIT_USAGE;
    }
    const ch_main_flag_t flags[] = {
        {"--month", &month}, {"--format", &format}, {"--utc-offset", &offset}, {NULL, NULL}};
    ch_main_cmdline_t c = {.cmd = "report", .usage = usage, .flags = flags};
    int rc = ch_main__parse(&c, &opts, argc, argv, 2);
    if (rc >= 0) {
        return rc;
    }
    int off = 0;
    int64_t from = 0, to = 0;
    if (month == NULL || ch_health_utc_offset_parse(offset, &off) != 0 ||
        ch_health_month_so_far(month, off, ch_time_now_ms(), &from, &to) != 0 ||
        (strcmp(format, "csv") != 0 && strcmp(format, "json") != 0)) {
        fprintf(stderr,
                "cctvhub report: --month YYYY-MM is required; --format csv or json; "
                "--utc-offset like +09:00\n\n%s",
                usage);
        return CH_EXIT_USAGE;
    }
    ch_config_t cfg;
    rc = ch_main__load_config(&opts, &cfg);
    if (rc != CH_EXIT_OK) {
        return rc;
    }
    ch_store_t *st = NULL;
    char *err = NULL;
    if (ch_store_open(cfg.store_url, &st, &err) != 0) {
        fprintf(stderr, "cctvhub report: cannot open the store: %s\n", err ? err : "unknown");
        ch_free(err);
        ch_config_fini(&cfg);
        return CH_EXIT_STORE;
    }
    ch_health_report_t r;
    int exit_code = CH_EXIT_OK;
    if (ch_health_report_load(st, from, to, &r) != 0) {
        fprintf(stderr, "cctvhub report: the store could not be read: %s\n", ch_store_errmsg(st));
        exit_code = CH_EXIT_FAILURE;
    } else {
        if (strcmp(format, "json") == 0) {
            json_t *j = ch_health_report_json(&r, month);
            char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            fputs(text, stdout);
            fputc('\n', stdout);
            free(text);
            json_decref(j);
        } else {
            ch_buf_t b;
            ch_buf_init(&b);
            ch_health_report_csv(&r, month, &b);
            fwrite(b.data, 1, b.len, stdout);
            ch_buf_fini(&b);
        }
        ch_health_report_fini(&r);
    }
    ch_store_close(st);
    ch_config_fini(&cfg);
    return exit_code;
}

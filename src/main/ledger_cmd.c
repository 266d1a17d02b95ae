/*
 * cctvhub ledger: the provision ledger (PIPA Enforcement Decree Art. 15) from the audit log, as
 * CSV for Excel or JSON, offline or beside a running hub (the log is opened read-only).
 */
#include "main/main.h"

#include "event/event.h"
#include "main/hub_audit.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: cctvhub ledger [--from TIME] [--to TIME] [--agency ID] [--event ID] [--camera ID]\n"
    "                      [--format csv|json] [options]\n"
    "\n"
    "The provision ledger of PIPA Enforcement Decree Art. 15, made from the audit log: one row\n"
    "per provision of video to another agency (when, to whom, purpose, legal basis, cameras,\n"
    "period, form). TIME is RFC 3339 (2026-11-01T00:00:00Z); --from/--to keep the provisions\n"
    "whose period overlaps them. CSV (the default) is UTF-8 with a BOM for Excel; JSON is one\n"
    "object.\n"
    "Recipients are named from the store and purposes from policy.services_file when set.\n"
    "\n"
    "options: --data-dir DIR, --config FILE, --store URL, --log-level L\n"
    "exit codes: 0 done; 1 the log could not be read; 2 bad command line; 3 bad configuration;\n"
    "            4 the audit log cannot be opened.\n";

int ch_main_ledger(int argc, char **argv)
{
    ch_main_opts_t opts;
    const char *from = NULL, *to = NULL, *agency = NULL, *event = NULL, *cam = NULL;
    const char *format = "csv";
    ch_event_ledger_filter_t f;
    memset(&f, 0, sizeof(f));
    const ch_main_flag_t flags[] = {{"--from", &from},   {"--to", &to},      {"--agency", &agency},
                                    {"--event", &event}, {"--camera", &cam}, {"--format", &format},
                                    {NULL, NULL}};
    ch_main_cmdline_t c = {.cmd = "ledger", .usage = usage, .flags = flags};
    int rc = ch_main__parse(&c, &opts, argc, argv, 1);
    if (rc >= 0) {
        return rc;
    }
    if ((from != NULL && ch_time_parse_ns(from, &f.from_ns) != 0) ||
        (to != NULL && ch_time_parse_ns(to, &f.to_ns) != 0) ||
        (agency != NULL && ch_main__parse_id(agency, &f.agency_id) != 0) ||
        (event != NULL && ch_main__parse_id(event, &f.event_id) != 0) ||
        (cam != NULL && ch_main__parse_id(cam, &f.camera_id) != 0) ||
        (strcmp(format, "csv") != 0 && strcmp(format, "json") != 0)) {
        fprintf(stderr,
                "cctvhub ledger: bad value: times are RFC 3339, ids positive numbers, "
                "--format csv or json\n\n%s",
                usage);
        return CH_EXIT_USAGE;
    }
    ch_config_t cfg;
    ch_audit_t *audit = NULL;
    rc = ch_main__audit_open_read("ledger", &opts, &cfg, &audit);
    if (rc != CH_EXIT_OK) {
        return rc;
    }
    char *err = NULL;
    ch_store_t *st = NULL;
    if (ch_store_open(cfg.store_url, &st, &err) != 0) {
        /* Names are a courtesy: the ledger stands on the log alone. */
        ch_log(CH_LOG_WARN, "main", "msg=\"store not readable; recipients by id only\"");
        ch_free(err);
        st = NULL;
    }
    ch_policy_t *policy = NULL;
    if (cfg.services_file != NULL && ch_policy_load_file(cfg.services_file, &policy, &err) != 0) {
        ch_log(CH_LOG_WARN, "main", "msg=\"services file not readable; purposes by id\"");
        ch_free(err);
        policy = NULL;
    }
    json_t *ledger = NULL;
    rc = ch_event_ledger(audit, st, policy, &f, &ledger);
    int exit_code = CH_EXIT_OK;
    if (rc != 0) {
        fprintf(stderr, "cctvhub ledger: the audit log could not be read: %s\n", ch_strerror(rc));
        exit_code = CH_EXIT_FAILURE;
    } else if (strcmp(format, "json") == 0) {
        char *text = json_dumps(ledger, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputs(text, stdout);
        fputc('\n', stdout);
        free(text);
    } else {
        size_t len = 0;
        char *text = ch_event_ledger_csv(ledger, &len);
        fwrite(text, 1, len, stdout);
        ch_free(text);
    }
    json_decref(ledger);
    ch_policy_free(policy);
    ch_store_close(st);
    ch_audit_close(audit);
    ch_config_fini(&cfg);
    return exit_code;
}

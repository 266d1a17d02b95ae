/*
 * cctvhub import: loads CCTV inventory files into the store, one transaction per file, and
 * reports what each did. With --json, one JSON object per file on stdout (a line each).
 */
#include "main/main.h"

#include "audit/audit.h"
#include "main/hub_audit.h"
#include "registry/registry.h"
#include "store/store.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char ch__import_usage[] =
    "usage: cctvhub import [--config FILE] [--data-dir DIR] [--store URL] [--agency NAME]\n"
    "                      [--json] [--dry-run] FILE...\n"
    "\n"
    "Imports CCTV inventory files into the store: the national CCTV standard data\n"
    "(전국CCTV표준데이터, CP949 or UTF-8, every published layout), the national emergency-bell\n"
    "standard data (into devices) and Seoul Ansimi CCTV lists. Each file is imported in one\n"
    "transaction: all of it or, when it cannot be read at all, none of it. Rows that cannot be\n"
    "used are skipped and reported with their line; doubtful values are kept and flagged.\n"
    "Importing the same file again changes nothing; a newer file from the same publisher\n"
    "updates the cameras in place. Each import is on the audit record (its start before any\n"
    "change, its result after), so the audit log must be free: while the hub runs, import\n"
    "through its API (POST /api/v1/imports) instead.\n"
    "\n"
    "  --agency NAME  provider agency of every row (for lists without 관리기관명)\n"
    "  --json         one JSON report per file on stdout\n"
    "  --dry-run      read and check every row, report, store nothing (no store is opened)\n"
    "\n"
    "Exit codes: 0 every file imported; 1 a file was rejected; 2 bad command line;\n"
    "            3 bad configuration; 4 the store or the audit log cannot be opened.\n";

typedef struct ch_import_progress_state {
    const char *file;
    int last_percent;
} ch_import_progress_state_t;

/* Draws a one-line progress bar on the terminal (stderr), redrawn only when the percentage
 * changes, so a large file costs a hundred writes, not one per row. */
static void ch__import_progress(void *ud, uint64_t done, uint64_t total)
{
    ch_import_progress_state_t *p = ud;
    if (total == 0) {
        return;
    }
    int percent = (int)(done * 100 / total);
    if (percent == p->last_percent) {
        return;
    }
    p->last_percent = percent;
    char bar[41];
    int filled = percent * 40 / 100;
    for (int i = 0; i < 40; i++) {
        bar[i] = i < filled ? '#' : '.';
    }
    bar[40] = '\0';
    fprintf(stderr, "\r%-40.40s [%s] %3d%%", p->file, bar, percent);
    if (percent >= 100) {
        fputc('\n', stderr);
    }
    fflush(stderr);
}

static void ch__import_print_summary(const json_t *r, int dry_run)
{
    if (dry_run) {
        printf("%s: %s, layout %s, %lld rows: %lld cameras, %lld devices; %zu flagged, "
               "%zu skipped (dry run: nothing stored)\n",
               json_string_value(json_object_get(r, "file")),
               json_string_value(json_object_get(r, "encoding")),
               json_string_value(json_object_get(r, "layout")),
               (long long)json_integer_value(json_object_get(r, "rows")),
               (long long)json_integer_value(json_object_get(r, "cameras")),
               (long long)json_integer_value(json_object_get(r, "devices")),
               json_array_size(json_object_get(r, "flagged")),
               json_array_size(json_object_get(r, "skipped")));
    } else {
        printf("%s: %s, layout %s, %lld rows: cameras %lld created, %lld updated, %lld unchanged; "
               "devices %lld created, %lld updated, %lld unchanged; %zu flagged, %zu skipped\n",
               json_string_value(json_object_get(r, "file")),
               json_string_value(json_object_get(r, "encoding")),
               json_string_value(json_object_get(r, "layout")),
               (long long)json_integer_value(json_object_get(r, "rows")),
               (long long)json_integer_value(json_object_get(r, "cameras_created")),
               (long long)json_integer_value(json_object_get(r, "cameras_updated")),
               (long long)json_integer_value(json_object_get(r, "cameras_unchanged")),
               (long long)json_integer_value(json_object_get(r, "devices_created")),
               (long long)json_integer_value(json_object_get(r, "devices_updated")),
               (long long)json_integer_value(json_object_get(r, "devices_unchanged")),
               json_array_size(json_object_get(r, "flagged")),
               json_array_size(json_object_get(r, "skipped")));
    }
    /* The first few skipped rows, so an operator sees why without --json. */
    const json_t *skipped = json_object_get(r, "skipped");
    size_t n = json_array_size(skipped);
    for (size_t i = 0; i < n && i < 5; i++) {
        const json_t *it = json_array_get(skipped, i);
        printf("  line %lld skipped: %s\n",
               (long long)json_integer_value(json_object_get(it, "line")),
               json_string_value(json_object_get(it, "reason")));
    }
    if (n > 5) {
        printf("  ... and %zu more skipped rows (see --json)\n", n - 5);
    }
}

/* The command's audit records (ch_registry_recorder_t): each appended durably for the
 * process's user. */
typedef struct ch_import_recorder {
    ch_audit_t *log;
    const char *actor;
} ch_import_recorder_t;

static int ch__import_record(void *data, const char *action, const char *object,
                             const char *outcome, json_t *details)
{
    ch_import_recorder_t *r = data;
    ch_audit_entry_t e = {.actor = r->actor,
                          .action = action,
                          .object = object,
                          .outcome = outcome,
                          .details = details};
    int rc = ch_audit_append(r->log, &e, NULL);
    json_decref(details);
    return rc;
}

int ch_main_import(int argc, char **argv)
{
    ch_main_opts_t opts;
    memset(&opts, 0, sizeof(opts));
    const char *agency = NULL;
    int as_json = 0;
    int dry_run = 0;
    const char *files[1024];
    size_t n_files = 0;
    for (int i = 1; i < argc; i++) {
        int r = ch_main__common_option(&opts, argc, argv, &i);
        if (r < 0) {
            return CH_EXIT_USAGE;
        }
        if (r > 0) {
            continue;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(ch__import_usage, stdout);
            return CH_EXIT_OK;
        } else if (strcmp(argv[i], "--json") == 0) {
            as_json = 1;
        } else if (strcmp(argv[i], "--dry-run") == 0) {
            dry_run = 1;
        } else if (strcmp(argv[i], "--agency") == 0 && i + 1 < argc) {
            agency = argv[++i];
        } else if (strncmp(argv[i], "--agency=", 9) == 0) {
            agency = argv[i] + 9;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "cctvhub import: unknown or incomplete option \"%s\"\n\n%s", argv[i],
                    ch__import_usage);
            return CH_EXIT_USAGE;
        } else if (n_files < CH_ARRAY_SIZE(files)) {
            files[n_files++] = argv[i];
        } else {
            fprintf(stderr, "cctvhub import: too many files (at most %zu at once)\n",
                    CH_ARRAY_SIZE(files));
            return CH_EXIT_USAGE;
        }
    }
    if (n_files == 0) {
        fprintf(stderr, "cctvhub import: no file given\n\n%s", ch__import_usage);
        return CH_EXIT_USAGE;
    }

    ch_config_t cfg;
    int rc = ch_main__load_config(&opts, &cfg);
    if (rc != CH_EXIT_OK) {
        return rc;
    }
    int exit_code = CH_EXIT_OK;
    ch_store_t *st = NULL;
    ch_audit_t *audit = NULL;
    char actor[96];
    ch_main__local_actor(actor);
    /* A dry run converts and checks without a store: the registry takes none. */
    int mk = dry_run ? 0 : ch_main__mkdir_p(cfg.data_dir);
    char *err = NULL;
    if (mk != 0) {
        fprintf(stderr, "cctvhub import: cannot create data directory %s: %s\n", cfg.data_dir,
                ch_strerror(mk));
        exit_code = CH_EXIT_STORE;
        goto out;
    }
    if (!dry_run) {
        rc = ch_main__audit_open(&cfg, 1, &audit);
        if (rc != CH_EXIT_OK) {
            exit_code = rc;
            goto out;
        }
    }
    if (!dry_run && ch_store_open(cfg.store_url, &st, &err) != 0) {
        fprintf(stderr, "cctvhub import: cannot open the store: %s\n", err ? err : "unknown");
        ch_free(err);
        exit_code = CH_EXIT_STORE;
        goto out;
    }

    int tty = isatty(STDERR_FILENO);
    ch_import_recorder_t recorder = {audit, actor};
    ch_registry_recorder_t rec = {ch__import_record, &recorder};
    for (size_t f = 0; f < n_files; f++) {
        ch_import_progress_state_t prog = {files[f], -1};
        ch_registry_import_req_t req = {.label = files[f], .path = files[f]};
        req.options.agency = agency;
        if (tty) {
            req.options.progress = ch__import_progress;
            req.options.progress_user = &prog;
        }
        ch_import_report_t rep;
        memset(&rep, 0, sizeof(rep));
        ch_fault_t fault;
        int irc =
            ch_registry_import_recorded(st, &req, audit != NULL ? &rec : NULL, &rep, &err, &fault);
        if (irc != 0 && strcmp(fault.rule, "start") == 0) {
            fprintf(stderr, "cctvhub import: %s: %s\n", files[f], fault.message);
            exit_code = CH_EXIT_FAILURE;
            break;
        }
        if (irc != 0 && strcmp(fault.rule, "result") == 0) {
            fprintf(stderr, "cctvhub import: %s: %s; stopping\n", files[f], fault.message);
            exit_code = CH_EXIT_FAILURE;
            ch_free(err);
            ch_import_report_fini(&rep);
            break;
        }
        if (irc != 0) {
            if (tty && prog.last_percent >= 0 && prog.last_percent < 100) {
                fputc('\n', stderr);
            }
            fprintf(stderr, "cctvhub import: %s: rejected: %s (nothing imported)\n", files[f],
                    err ? err : ch_strerror(irc));
            if (as_json) {
                json_t *o = json_pack("{s:s, s:s}", "file", files[f], "error",
                                      err ? err : ch_strerror(irc));
                char *text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
                printf("%s\n", text);
                free(text);
                json_decref(o);
            }
            ch_free(err);
            ch_import_report_fini(&rep);
            exit_code = CH_EXIT_FAILURE;
            continue;
        }
        json_t *report = ch_import_report_to_json(&rep);
        if (as_json) {
            char *text = json_dumps(report, JSON_COMPACT);
            printf("%s\n", text);
            free(text);
        } else {
            ch__import_print_summary(report, dry_run);
        }
        fflush(stdout);
        json_decref(report);
        ch_import_report_fini(&rep);
    }

out:
    ch_store_close(st);
    ch_audit_close(audit);
    ch_config_fini(&cfg);
    return exit_code;
}

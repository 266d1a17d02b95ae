/*
 * cctvhub keys / cctvhub audit: the node key and the audit log from the command line, with no
 * running hub.
 *
 *   keys init      makes the node's Ed25519 key pair (never overwrites one)
 *   audit verify   checks a log offline: every record, hash and checkpoint signature
 *   audit show     prints records read from the log (not from the store), filtered
 *   audit prove    prints an inclusion (or consistency) proof as JSON
 *   audit append   appends records durably: an operator's manual action, and the tests' writer
 *
 * Everything here goes through the audit module's public API (audit/audit.h); this file only
 * parses command lines, filters and prints.
 */
#include "main/main.h"

#include "audit/audit.h"
#include "main/hub_audit.h"
#include "store/store.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char ch__keys_usage[] =
    "usage: cctvhub keys init [--config FILE] [--data-dir DIR]\n"
    "\n"
    "Makes the node's Ed25519 key pair, which signs the audit log's checkpoints:\n"
    "DIR/keys/node.key (the secret key, mode 0600) and DIR/keys/node.pub (the public verifier\n"
    "key, in the C2SP signed-note format). Prints the public key on stdout: give it to the\n"
    "auditors, who verify the log with 'cctvhub audit verify --key'. Refuses to overwrite an\n"
    "existing key, since a new key would leave every checkpoint signed by the old one.\n"
    "\n"
    "Exit codes: 0 key made; 1 a key exists or it could not be written; 2 bad command line;\n"
    "            3 bad configuration; 4 the data directory cannot be created.\n";

static const char ch__audit_usage[] =
    "usage: cctvhub audit <command> [options]\n"
    "\n"
    "commands:\n"
    "  verify   check the log offline: records, hashes, checkpoint signatures, a kept checkpoint\n"
    "  show     print records, filtered (time, camera, agency, event, actor, action)\n"
    "  prove    print the inclusion proof of a record, or a consistency proof, as JSON\n"
    "  append   append a record durably (an operator's manual action, such as a paper request)\n"
    "  accept   go on with a log that no longer matches its kept checkpoint (put on the record)\n"
    "\n"
    "Run 'cctvhub audit <command> --help' for a command's options. The log lives in\n"
    "DATA_DIR/audit (hub.data_dir, --data-dir). None of these needs a running hub.\n";

static const char ch__verify_usage[] =
    "usage: cctvhub audit verify [--config FILE] [--data-dir DIR | LOGDIR] [--key PUBKEY|FILE]\n"
    "                            [--checkpoint FILE]\n"
    "\n"
    "Checks an audit log without a running hub: every segment and record frame, that sequence\n"
    "numbers run 0..n-1, every record's leaf hash, every checkpoint's signature and its root\n"
    "against the Merkle tree recomputed at its size, and, with --checkpoint, that the log still\n"
    "extends a checkpoint an auditor kept from earlier (so that a log rewritten from some point\n"
    "on, even with valid hashes and signatures, is caught). Prints a summary: records,\n"
    "checkpoints, tree size and root.\n"
    "\n"
    "  LOGDIR             the log directory itself (a copy, say); default DATA_DIR/audit\n"
    "  --key PUBKEY|FILE  the node's public key (\"name+keyid+base64\", as 'cctvhub keys init'\n"
    "                     printed it) or a file holding it; default LOGDIR/../keys/node.pub.\n"
    "                     An auditor should give the key obtained from the hub's operator\n"
    "                     beforehand: a key read from the same disk proves nothing.\n"
    "  --checkpoint FILE  a checkpoint note kept from earlier (signed note text)\n"
    "\n"
    "Exit codes: 0 everything holds; 1 something does not (the first bad record or checkpoint\n"
    "            is named on stderr), or a bad key or kept checkpoint; 2 bad command line;\n"
    "            3 bad configuration; 4 the log directory does not exist or cannot be read.\n";

static const char ch__show_usage[] =
    "usage: cctvhub audit show [--config FILE] [--data-dir DIR] [--since T] [--until T]\n"
    "                          [--camera ID] [--agency ID] [--event ID] [--actor A]\n"
    "                          [--action A] [--json] [--limit N]\n"
    "\n"
    "Prints the records of the audit log that match every filter given, oldest first: a table\n"
    "(seq, time, actor, action, object, outcome) or, with --json, each record's canonical JSON\n"
    "on a line of its own. Reads the log itself, not the store's index, so it shows the truth\n"
    "even when the index is lost.\n"
    "\n"
    "  --since T, --until T  time range, inclusive; T is RFC 3339 (2026-11-25T09:00:00Z,\n"
    "                        2026-11-25T18:00:00+09:00) or seconds since the epoch\n"
    "  --camera ID           records about camera ID: object \"camera:ID\", or details.camera,\n"
    "                        details.camera_id or details.cameras naming it (the rule of\n"
    "                        GET /api/v1/audit?camera=ID)\n"
    "  --agency ID           the same for agencies (what agency ID did: --actor agency:ID)\n"
    "  --event ID            the same for events\n"
    "  --actor A             actor exactly A (\"user:kim\", \"agency:12\", \"system\")\n"
    "  --action A            action exactly A, or a family with A.* (\"grant.*\")\n"
    "  --json                one JSON record per line\n"
    "  --limit N             stop after N matching records\n"
    "\n"
    "Exit codes: 0 done (even when nothing matched); 1 a record could not be read;\n"
    "            2 bad command line; 3 bad configuration; 4 the log cannot be opened.\n";

static const char ch__prove_usage[] =
    "usage: cctvhub audit prove N [--size S] [--config FILE] [--data-dir DIR]\n"
    "       cctvhub audit prove --consistency N1 [--size N2] [--config FILE] [--data-dir DIR]\n"
    "\n"
    "Prints, as one JSON object, the RFC 9162 inclusion proof of record N in the Merkle tree of\n"
    "the first S records: {\"index\", \"size\", \"leaf_hash\", \"root\", \"path\": [hex...]};\n"
    "or, with --consistency, the proof that the tree of N2 records extends the tree of N1:\n"
    "{\"first\", \"second\", \"root1\", \"root2\", \"path\": [hex...]}. S and N2 default to the\n"
    "size of the latest checkpoint (the current size when there is none yet), so that the root\n"
    "printed is one the hub has signed.\n"
    "\n"
    "Exit codes: 0 done; 1 N or S out of range, or a record could not be read;\n"
    "            2 bad command line; 3 bad configuration; 4 the log cannot be opened.\n";

static const char ch__append_usage[] =
    "usage: cctvhub audit append --actor A --action X [--object O] [--outcome O]\n"
    "                            [--purpose P] [--legal-basis L] [--details JSON] [--count N]\n"
    "                            [--config FILE] [--data-dir DIR]\n"
    "\n"
    "Appends a record to the audit log and prints its sequence number once it is durable (on\n"
    "disk, fdatasync'd). For operators recording an action taken outside the hub, such as a\n"
    "request received on paper; also the writer of the tests. Needs the node key ('cctvhub\n"
    "keys init') and cannot run beside a hub that has the log open.\n"
    "\n"
    "  --actor A        who acted: \"user:NAME\", \"agency:ID\", \"system\"\n"
    "  --action X       what was done: \"request.paper\", \"grant.create\", ...\n"
    "  --object O       what it was done to: \"camera:ID\", \"event:ID\", ...\n"
    "  --outcome O      \"ok\" (default), \"denied\", \"error\"\n"
    "  --purpose P, --legal-basis L   the purpose and the legal provision, where there is one\n"
    "  --details JSON   a JSON object of further details\n"
    "  --count N        append N such records (one durable append each), printing each\n"
    "                   sequence number as its append returns\n"
    "\n"
    "Exit codes: 0 appended; 1 an append failed or there is no node key; 2 bad command line;\n"
    "            3 bad configuration; 4 the log cannot be opened (locked by a running hub,\n"
    "            or damaged: run 'cctvhub audit verify').\n";

static const char ch__accept_usage[] =
    "usage: cctvhub audit accept --reason TEXT [--config FILE] [--data-dir DIR]\n"
    "\n"
    "The hub refuses to start when its audit log does not extend the checkpoint the store\n"
    "kept (records cut from its end, or rewritten), and refuses a log that has records spanning\n"
    "more than the checkpoint interval but no checkpoint (its checkpoints file deleted). After\n"
    "looking into it ('cctvhub audit verify' with a key and a checkpoint kept elsewhere), an\n"
    "operator who decides to go on with the log as it is runs this: it appends an\n"
    "\"audit.accept\" record naming the reason, the checkpoint the store kept and what the log\n"
    "holds, signs a checkpoint and keeps it in the store. The hub then starts. Cannot run\n"
    "beside a running hub.\n"
    "\n"
    "Exit codes: 0 accepted; 1 the record could not be made; 2 bad command line;\n"
    "            3 bad configuration; 4 the store or the log cannot be opened.\n";

/* Formats nanoseconds since the epoch as RFC 3339 UTC with milliseconds. */
static void ch__format_time(int64_t ns, char out[32])
{
    if (ns < 0) {
        snprintf(out, 32, "-");
        return;
    }
    ch_time_format_rfc3339(ns / 1000000, out);
}

/* Loads the configuration (common options in opts) and writes DATA_DIR/audit into dir.
 * Returns CH_EXIT_OK or the exit code to return. */
static int ch__log_dir(const ch_main_opts_t *opts, char *dir, size_t cap)
{
    ch_config_t cfg;
    int rc = ch_main__load_config(opts, &cfg);
    if (rc != CH_EXIT_OK) {
        return rc;
    }
    rc = ch_audit_node_dir(cfg.data_dir, dir, cap);
    ch_config_fini(&cfg);
    if (rc != 0) {
        fprintf(stderr, "cctvhub: data directory path too long\n");
        return CH_EXIT_CONFIG;
    }
    return CH_EXIT_OK;
}

static int ch__is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

/* Opens the log of DATA_DIR/audit (the configuration of opts) for reading. Returns
 * CH_EXIT_OK with *out set, or prints why and returns the exit code. */
static int ch__open_read_only(const char *cmd, const ch_main_opts_t *opts, ch_audit_t **out)
{
    ch_config_t cfg;
    int exit_code = ch_main__audit_open_read(cmd, opts, &cfg, out);
    if (exit_code == CH_EXIT_OK) {
        ch_config_fini(&cfg);
    }
    return exit_code;
}

/* The option loop of the keys and audit commands (ch_main__parse): at most one positional
 * argument, into *pos when pos is not NULL. -1 once read, else the exit code to return. */
static int ch__args(int argc, char **argv, ch_main_opts_t *opts, const ch_main_flag_t *flags,
                    const char *sw, int *sw_set, const char **pos, const char *cmd,
                    const char *usage)
{
    ch_main_cmdline_t c = {.cmd = cmd,
                           .usage = usage,
                           .flags = flags,
                           .sw = sw,
                           .sw_set = sw_set,
                           .pos = pos,
                           .pos_max = pos != NULL,
                           .strict = 1};
    return ch_main__parse(&c, opts, argc, argv, 1);
}

/* ---- keys init ------------------------------------------------------------------------- */

/* cctvhub keys init: makes the key pair through the audit module and prints the public key
 * (alone on stdout, so that a script can capture it). */
static int ch__keys_init(int argc, char **argv)
{
    ch_main_opts_t opts;
    int exit_code =
        ch__args(argc, argv, &opts, NULL, NULL, NULL, NULL, "keys init", ch__keys_usage);
    if (exit_code >= 0) {
        return exit_code;
    }
    ch_config_t cfg;
    exit_code = ch_main__load_config(&opts, &cfg);
    if (exit_code != CH_EXIT_OK) {
        return exit_code;
    }
    int rc = ch_main__mkdir_p(cfg.data_dir);
    if (rc != 0) {
        fprintf(stderr, "cctvhub keys init: cannot create data directory %s: %s\n", cfg.data_dir,
                ch_strerror(rc));
        exit_code = CH_EXIT_STORE;
        goto out;
    }
    char text[CH_AUDIT_KEY_NAME_MAX + 64];
    ch_fault_t f;
    char *why = NULL;
    rc = ch_audit_node_key_make(cfg.data_dir, text, sizeof(text), &f, &why);
    if (rc != 0) {
        exit_code = CH_EXIT_FAILURE;
        if (strcmp(f.rule, "exists") == 0) {
            fprintf(stderr,
                    "cctvhub keys init: %s/keys/node.key exists; refusing to overwrite it (a new "
                    "key would orphan every checkpoint the old one signed)\n",
                    cfg.data_dir);
        } else if (strcmp(f.rule, "read_back") == 0) {
            fprintf(stderr, "cctvhub keys init: key made, but cannot read it back: %s\n", why);
        } else {
            fprintf(stderr, "cctvhub keys init: %s\n", why);
        }
        ch_free(why);
        goto out;
    }
    printf("%s\n", text);
    fprintf(stderr,
            "cctvhub keys init: wrote %s/keys/node.key (secret, mode 0600) and "
            "%s/keys/node.pub; give the public key above to the auditors\n",
            cfg.data_dir, cfg.data_dir);
out:
    ch_config_fini(&cfg);
    return exit_code;
}

int ch_main_keys(int argc, char **argv)
{
    if (argc < 2) {
        fputs(ch__keys_usage, stderr);
        return CH_EXIT_USAGE;
    }
    if (ch__is_help(argv[1])) {
        fputs(ch__keys_usage, stdout);
        return CH_EXIT_OK;
    }
    if (strcmp(argv[1], "init") == 0) {
        return ch__keys_init(argc - 1, argv + 1);
    }
    fprintf(stderr, "cctvhub keys: unknown command \"%s\"\n\n%s", argv[1], ch__keys_usage);
    return CH_EXIT_USAGE;
}

/* ---- audit verify ---------------------------------------------------------------------- */

/* Prints which key verified the signatures and where it came from, and says loudly what the
 * check cannot prove: a key read from the data directory (the same disk as the log), no key,
 * a log with records but no checkpoint, no checkpoint kept outside the hub. Whoever controls
 * the disk can cut the log's end and delete or re-sign its checkpoints; only a key and a
 * checkpoint obtained elsewhere catch that. */
static void ch__verify_warnings(const char *dir, const ch_audit_verify_report_t *rep, int kept)
{
    if (rep->key_source == 1) {
        printf("key          %s (given)\n", rep->key);
    } else if (rep->key_source == 2) {
        printf("key          %s (read from %s/../keys/node.pub)\n", rep->key, dir);
        printf("WARNING      the key came from the data directory, the same disk as the log: "
               "whoever can change the log can replace the key too, so its signatures prove "
               "nothing against them. Give the key you obtained from the hub's operator "
               "beforehand (--key) and a checkpoint kept outside the hub (--checkpoint).\n");
    } else {
        printf("key          none\n");
        printf("WARNING      no key was given or found: signatures were NOT checked. Give the "
               "node's public key (--key).\n");
    }
    if (rep->checkpoints == 0 && rep->records > 0) {
        printf("WARNING      the log has no checkpoint: nothing signed covers its records, so "
               "records cut from its end (with the checkpoints file deleted) go unnoticed "
               "here. The hub writes one every audit.checkpoint_ms; a log without any is "
               "suspect.\n");
    }
    if (!kept) {
        printf("WARNING      no kept checkpoint was given (--checkpoint): a log cut at its end "
               "(with its checkpoints deleted or re-signed by the node key) passes this check. "
               "Keep a checkpoint outside the hub (GET /api/v1/audit/checkpoint) and give it "
               "here.\n");
    }
}

/* cctvhub audit verify: ch_audit_verify_dir on the log directory, a summary on stdout, the
 * first problem on stderr. */
static int ch__audit_verify(int argc, char **argv)
{
    ch_main_opts_t opts;
    const char *logdir_arg = NULL;
    const char *key_arg = NULL;
    const char *checkpoint_file = NULL;
    const ch_main_flag_t flags[] = {
        {"--key", &key_arg}, {"--checkpoint", &checkpoint_file}, {NULL, NULL}};
    int exit_code = ch__args(argc, argv, &opts, flags, NULL, NULL, &logdir_arg, "audit verify",
                             ch__verify_usage);
    if (exit_code >= 0) {
        return exit_code;
    }

    char dir[4096];
    if (logdir_arg != NULL) {
        /* A log directory is verified as it is: no configuration is read for it. */
        for (size_t k = 0; k < opts.n_overrides; k++) {
            if (strcmp(opts.overrides[k].key, "hub.data_dir") == 0) {
                fprintf(stderr, "cctvhub audit verify: give LOGDIR or --data-dir, not both\n\n%s",
                        ch__verify_usage);
                return CH_EXIT_USAGE;
            }
        }
        int n = snprintf(dir, sizeof(dir), "%s", logdir_arg);
        if (n < 0 || (size_t)n >= sizeof(dir)) {
            fprintf(stderr, "cctvhub audit verify: log directory path too long\n");
            return CH_EXIT_USAGE;
        }
    } else {
        int rc = ch__log_dir(&opts, dir, sizeof(dir));
        if (rc != CH_EXIT_OK) {
            return rc;
        }
    }

    exit_code = CH_EXIT_OK;
    ch_audit_verify_req_t req = {.dir = dir, .key = key_arg, .checkpoint_file = checkpoint_file};
    ch_audit_verify_report_t rep;
    ch_fault_t f;
    int rc = ch_audit_verify(&req, &rep, &f);
    if (rc != 0 && f.rule != NULL) {
        fprintf(stderr, "cctvhub audit verify: cannot read %s file %s: %s\n",
                strcmp(f.rule, "key_file") == 0 ? "key" : "checkpoint",
                strcmp(f.rule, "key_file") == 0 ? key_arg : checkpoint_file, strerror(-f.rc));
        return CH_EXIT_FAILURE;
    }
    if (rc == CH_ENOENT) {
        fprintf(stderr, "cctvhub audit verify: no audit log in %s\n", dir);
        return CH_EXIT_STORE;
    }
    char root_hex[2 * CH_AUDIT_HASH_SIZE + 1];
    ch_hex_encode(root_hex, sizeof(root_hex), rep.root, CH_AUDIT_HASH_SIZE, 0);
    printf("log          %s\n", dir);
    printf("records      %llu in %llu segment%s\n", (unsigned long long)rep.records,
           (unsigned long long)rep.segments, rep.segments == 1 ? "" : "s");
    printf("checkpoints  %llu (%s)\n", (unsigned long long)rep.checkpoints,
           rep.signatures_checked ? "signatures checked" : "signatures NOT checked: no key");
    ch__verify_warnings(dir, &rep, checkpoint_file != NULL);
    if (rc == 0) {
        printf("tree size    %llu\n", (unsigned long long)rep.records);
        printf("root         %s\n", root_hex);
        if (checkpoint_file != NULL) {
            printf("kept         the log extends the checkpoint in %s\n", checkpoint_file);
        }
        if (rep.torn_tail_bytes > 0) {
            printf("torn tail    %llu bytes after the last record (a crash not yet recovered: "
                   "the hub cuts it when it next opens the log)\n",
                   (unsigned long long)rep.torn_tail_bytes);
        }
        printf("result       %s\n", rep.message);
        return CH_EXIT_OK;
    }
    exit_code = rc == -EACCES || rc == -EIO ? CH_EXIT_STORE : CH_EXIT_FAILURE;
    if (exit_code == CH_EXIT_STORE) {
        fprintf(stderr, "cctvhub audit verify: cannot read %s: %s\n", dir,
                rep.message[0] ? rep.message : ch_strerror(rc));
        return exit_code;
    }
    printf("result       FAILED\n");
    if (rep.bad_segment[0] != '\0' && strstr(rep.message, rep.bad_segment) == NULL) {
        fprintf(stderr, "cctvhub audit verify: FAILED: %s (%s, offset %llu)\n", rep.message,
                rep.bad_segment, (unsigned long long)rep.bad_offset);
    } else {
        fprintf(stderr, "cctvhub audit verify: FAILED: %s\n",
                rep.message[0] ? rep.message : ch_strerror(rc));
    }
    return exit_code;
}

/* ---- audit show ------------------------------------------------------------------------ */

/* Parses the id of --camera, --agency or --event (a positive integer, as the API's query
 * takes it); says why not on stderr. */
static int ch__show_id(const char *flag, const char *text, int64_t *id)
{
    if (ch_main__parse_id(text, id) != 0) {
        fprintf(stderr, "cctvhub audit show: %s \"%s\" is not an id (a positive integer)\n", flag,
                text);
        return -1;
    }
    return 0;
}

/* A string member for the table: its value, "-" when null or absent, "?" otherwise. */
static const char *ch__cell(const json_t *rec, const char *name)
{
    const json_t *v = json_object_get(rec, name);
    if (v == NULL || json_is_null(v)) {
        return "-";
    }
    return json_is_string(v) ? json_string_value(v) : "?";
}

/* Prints one matching record: its canonical JSON on a line (ud points to 1), or a table row. */
static void ch__show_record(void *ud, const ch_audit_record_t *rec, const json_t *j)
{
    if (*(const int *)ud) {
        fwrite(rec->json, 1, rec->len, stdout);
        fputc('\n', stdout);
        return;
    }
    char when[32];
    ch__format_time(ch_audit_record_time_ns(j), when);
    printf("%-8llu %-24s %-20s %-20s %-24s %s\n", (unsigned long long)rec->seq, when,
           ch__cell(j, "actor"), ch__cell(j, "action"), ch__cell(j, "object"),
           ch__cell(j, "outcome"));
}

/* cctvhub audit show: the records the audit module selects with the filter of the command
 * line, printed as they come. */
static int ch__audit_show(int argc, char **argv)
{
    ch_main_opts_t opts;
    ch_audit_filter_t f;
    ch_audit_filter_init(&f);
    int as_json = 0;
    uint64_t limit = UINT64_MAX;
    const char *since = NULL, *until = NULL, *lim = NULL;
    const char *camera = NULL, *agency = NULL, *event = NULL;
    const ch_main_flag_t flags[] = {
        {"--since", &since},   {"--until", &until},     {"--limit", &lim},
        {"--camera", &camera}, {"--agency", &agency},   {"--event", &event},
        {"--actor", &f.actor}, {"--action", &f.action}, {NULL, NULL}};
    int exit_code =
        ch__args(argc, argv, &opts, flags, "--json", &as_json, NULL, "audit show", ch__show_usage);
    if (exit_code >= 0) {
        return exit_code;
    }
    if (since != NULL && ch_time_parse_ns(since, &f.since_ns) != 0) {
        fprintf(stderr, "cctvhub audit show: --since \"%s\" is not RFC 3339 or epoch seconds\n",
                since);
        return CH_EXIT_USAGE;
    }
    if (until != NULL && ch_time_parse_ns(until, &f.until_ns) != 0) {
        fprintf(stderr, "cctvhub audit show: --until \"%s\" is not RFC 3339 or epoch seconds\n",
                until);
        return CH_EXIT_USAGE;
    }
    if ((camera != NULL && ch__show_id("--camera", camera, &f.camera) != 0) ||
        (agency != NULL && ch__show_id("--agency", agency, &f.agency) != 0) ||
        (event != NULL && ch__show_id("--event", event, &f.event) != 0)) {
        return CH_EXIT_USAGE;
    }
    if (lim != NULL && ch_main__parse_u64(lim, &limit) != 0) {
        fprintf(stderr, "cctvhub audit show: --limit \"%s\" is not a number\n", lim);
        return CH_EXIT_USAGE;
    }

    ch_audit_t *a = NULL;
    exit_code = ch__open_read_only("audit show", &opts, &a);
    if (exit_code != CH_EXIT_OK) {
        return exit_code;
    }
    if (!as_json) {
        printf("%-8s %-24s %-20s %-20s %-24s %s\n", "SEQ", "TIME", "ACTOR", "ACTION", "OBJECT",
               "OUTCOME");
    }
    uint64_t at = 0;
    int rc = ch_audit_select(a, &f, limit, ch__show_record, &as_json, &at);
    if (rc == CH_EPARSE) {
        fprintf(stderr, "cctvhub audit show: record %llu is not a JSON object\n",
                (unsigned long long)at);
        exit_code = CH_EXIT_FAILURE;
    } else if (rc != 0) {
        fprintf(stderr, "cctvhub audit show: record %llu: %s (run 'cctvhub audit verify')\n",
                (unsigned long long)at, ch_strerror(rc));
        exit_code = CH_EXIT_FAILURE;
    }
    ch_audit_close(a);
    return exit_code;
}

/* ---- audit prove ----------------------------------------------------------------------- */

/* Prints a proof the audit module made as one JSON object on stdout; CH_EXIT_FAILURE with its
 * fault on stderr when it refused. */
static int ch__print_proof(int rc, const ch_fault_t *fault, json_t *out)
{
    if (rc != 0) {
        fprintf(stderr, "cctvhub audit prove: %s\n", fault->message);
        json_decref(out);
        return CH_EXIT_FAILURE;
    }
    char *text = json_dumps(out, JSON_COMPACT);
    printf("%s\n", text);
    free(text);
    json_decref(out);
    return CH_EXIT_OK;
}

/* cctvhub audit prove: an inclusion proof (N) or a consistency proof (--consistency N1), as
 * one JSON object on stdout. */
static int ch__audit_prove(int argc, char **argv)
{
    ch_main_opts_t opts;
    const char *index_arg = NULL, *size_arg = NULL, *first_arg = NULL;
    const ch_main_flag_t flags[] = {
        {"--size", &size_arg}, {"--consistency", &first_arg}, {NULL, NULL}};
    int exit_code =
        ch__args(argc, argv, &opts, flags, NULL, NULL, &index_arg, "audit prove", ch__prove_usage);
    if (exit_code >= 0) {
        return exit_code;
    }
    uint64_t index = 0, size = 0, first = 0;
    if ((index_arg == NULL) == (first_arg == NULL)) {
        fprintf(stderr, "cctvhub audit prove: give a record number N or --consistency N1\n\n%s",
                ch__prove_usage);
        return CH_EXIT_USAGE;
    }
    if ((index_arg != NULL && ch_main__parse_u64(index_arg, &index) != 0) ||
        (first_arg != NULL && ch_main__parse_u64(first_arg, &first) != 0) ||
        (size_arg != NULL && ch_main__parse_u64(size_arg, &size) != 0)) {
        fprintf(stderr, "cctvhub audit prove: record numbers and sizes are decimal numbers\n");
        return CH_EXIT_USAGE;
    }

    ch_audit_t *a = NULL;
    exit_code = ch__open_read_only("audit prove", &opts, &a);
    if (exit_code != CH_EXIT_OK) {
        return exit_code;
    }
    if (size_arg == NULL) {
        size = ch_audit_signed_size(a);
    }
    ch_fault_t fault;
    memset(&fault, 0, sizeof(fault));
    json_t *out = NULL;
    if (index_arg != NULL) {
        ch_audit_inclusion_t *p = ch_malloc(sizeof(*p)); /* 4 KiB: not on the stack */
        int rc = ch_audit_inclusion(a, index, size, p, &fault);
        if (rc == 0) {
            out = ch_audit_inclusion_json(p);
        }
        exit_code = ch__print_proof(rc, &fault, out);
        ch_free(p);
    } else {
        ch_audit_consistency_t *p = ch_malloc(sizeof(*p));
        int rc = ch_audit_consistency(a, first, size, p, &fault);
        if (rc == 0) {
            out = ch_audit_consistency_json(p);
        }
        exit_code = ch__print_proof(rc, &fault, out);
        ch_free(p);
    }
    ch_audit_close(a);
    return exit_code;
}
/* ---- audit append ---------------------------------------------------------------------- */

/* cctvhub audit append: opens the log writable with the node key (which recovers a torn tail
 * left by a crash), appends --count records one durable append at a time, printing and
 * flushing each sequence number as its append returns, and closes (a final checkpoint). */
static int ch__audit_append(int argc, char **argv)
{
    ch_main_opts_t opts;
    ch_audit_entry_t e;
    memset(&e, 0, sizeof(e));
    e.outcome = "ok";
    const char *details_text = NULL, *count_arg = NULL;
    const ch_main_flag_t flags[] = {
        {"--actor", &e.actor},        {"--action", &e.action},   {"--object", &e.object},
        {"--outcome", &e.outcome},    {"--purpose", &e.purpose}, {"--legal-basis", &e.legal_basis},
        {"--details", &details_text}, {"--count", &count_arg},   {NULL, NULL}};
    int exit_code =
        ch__args(argc, argv, &opts, flags, NULL, NULL, NULL, "audit append", ch__append_usage);
    if (exit_code >= 0) {
        return exit_code;
    }
    if (e.actor == NULL || e.action == NULL || e.actor[0] == '\0' || e.action[0] == '\0') {
        fprintf(stderr, "cctvhub audit append: --actor and --action are required\n\n%s",
                ch__append_usage);
        return CH_EXIT_USAGE;
    }
    uint64_t count = 1;
    if (count_arg != NULL && ch_main__parse_u64(count_arg, &count) != 0) {
        fprintf(stderr, "cctvhub audit append: --count \"%s\" is not a number\n", count_arg);
        return CH_EXIT_USAGE;
    }
    if (details_text != NULL) {
        json_error_t jerr;
        e.details = json_loads(details_text, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(e.details)) {
            fprintf(stderr, "cctvhub audit append: --details is not a JSON object: %s\n",
                    e.details == NULL ? jerr.text : "another JSON value");
            json_decref(e.details);
            return CH_EXIT_USAGE;
        }
    }

    ch_config_t cfg;
    exit_code = ch_main__load_config(&opts, &cfg);
    if (exit_code != CH_EXIT_OK) {
        json_decref(e.details);
        return exit_code;
    }
    /* The same node and checkpoint cadence as the hub's own appends (hub.node_id, audit.*). */
    ch_audit_node_req_t req = {.data_dir = cfg.data_dir};
    req.options.node_id = cfg.node_id;
    req.options.checkpoint_every_records = (uint32_t)cfg.audit_checkpoint_records;
    req.options.checkpoint_every_ms = (uint32_t)cfg.audit_checkpoint_ms;
    ch_audit_t *a = NULL;
    ch_fault_t f;
    char *why = NULL;
    int rc = ch_audit_open_node(&req, &a, &f, &why);
    if (rc != 0) {
        exit_code = CH_EXIT_STORE;
        if (strcmp(f.rule, "dir") == 0) {
            fprintf(stderr, "cctvhub audit append: data directory path too long\n");
            exit_code = CH_EXIT_CONFIG;
        } else if (strcmp(f.rule, "key") == 0 && rc == CH_ENOENT) {
            fprintf(stderr,
                    "cctvhub audit append: no node key in %s/keys: run 'cctvhub keys "
                    "init' first\n",
                    cfg.data_dir);
            exit_code = CH_EXIT_FAILURE;
        } else if (strcmp(f.rule, "key") == 0) {
            fprintf(stderr, "cctvhub audit append: cannot load the node key: %s\n", why);
            exit_code = CH_EXIT_FAILURE;
        } else {
            fprintf(stderr, "cctvhub audit append: cannot open the audit log %s/audit: %s%s\n",
                    cfg.data_dir, why,
                    rc == CH_ECONFLICT ? " (is a hub running on this data directory?)" : "");
        }
        ch_free(why);
        goto out;
    }
    for (uint64_t k = 0; k < count; k++) {
        uint64_t seq = 0;
        rc = ch_audit_append(a, &e, &seq);
        if (rc != 0) {
            fprintf(stderr, "cctvhub audit append: append failed: %s\n", ch_strerror(rc));
            exit_code = CH_EXIT_FAILURE;
            break;
        }
        /* Printed and flushed only now that the record is durable: a reader of stdout may
         * count on every seq it saw surviving a crash. */
        printf("%llu\n", (unsigned long long)seq);
        fflush(stdout);
    }
out:
    ch_audit_close(a);
    ch_config_fini(&cfg);
    json_decref(e.details);
    return exit_code;
}

/* cctvhub audit accept: an operator's decision to go on with a log that fails the trimming
 * checks (the checkpoint kept in the store, or records with no checkpoint), on the record. */
static int ch__audit_accept(int argc, char **argv)
{
    ch_main_opts_t opts;
    const char *reason = NULL;
    const ch_main_flag_t flags[] = {{"--reason", &reason}, {NULL, NULL}};
    int exit_code =
        ch__args(argc, argv, &opts, flags, NULL, NULL, NULL, "audit accept", ch__accept_usage);
    if (exit_code >= 0) {
        return exit_code;
    }
    if (reason == NULL || reason[0] == '\0') {
        fprintf(stderr, "cctvhub audit accept: --reason is required\n\n%s", ch__accept_usage);
        return CH_EXIT_USAGE;
    }
    ch_config_t cfg;
    exit_code = ch_main__load_config(&opts, &cfg);
    if (exit_code != CH_EXIT_OK) {
        return exit_code;
    }
    ch_store_t *st = NULL;
    ch_audit_t *a = NULL;
    char *err = NULL;
    if (ch_store_open(cfg.store_url, &st, &err) != 0) {
        fprintf(stderr, "cctvhub audit accept: cannot open the store: %s\n", err ? err : "?");
        exit_code = CH_EXIT_STORE;
        goto out;
    }
    exit_code = ch_main__audit_open_accept(&cfg, &a);
    if (exit_code != CH_EXIT_OK) {
        goto out;
    }
    char actor[96];
    ch_main__local_actor(actor);
    uint64_t seq = 0, kept_size = 0;
    ch_fault_t f;
    int rc =
        ch_audit_accept_kept(a, &ch_main__store_keeper, st, actor, reason, &seq, &kept_size, &f);
    if (rc != 0 && strcmp(f.rule, "read") == 0) {
        fprintf(stderr, "cctvhub audit accept: cannot read the checkpoint kept in the store: %s\n",
                ch_store_errmsg(st));
        exit_code = CH_EXIT_STORE;
        goto out;
    }
    if (rc != 0) {
        fprintf(stderr, "cctvhub audit accept: the decision could not be recorded: %s\n",
                ch_strerror(rc));
        exit_code = CH_EXIT_FAILURE;
        goto out;
    }
    printf("accepted     the log as it is (%llu records), record %llu; checkpoint of size %llu "
           "kept in the store\n",
           (unsigned long long)ch_audit_size(a), (unsigned long long)seq,
           (unsigned long long)kept_size);
out:
    ch_audit_close(a);
    ch_store_close(st);
    ch_free(err);
    ch_config_fini(&cfg);
    return exit_code;
}

int ch_main_audit(int argc, char **argv)
{
    if (argc < 2) {
        fputs(ch__audit_usage, stderr);
        return CH_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (ch__is_help(cmd) || strcmp(cmd, "help") == 0) {
        fputs(ch__audit_usage, stdout);
        return CH_EXIT_OK;
    }
    if (strcmp(cmd, "verify") == 0) {
        return ch__audit_verify(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "show") == 0) {
        return ch__audit_show(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "prove") == 0) {
        return ch__audit_prove(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "append") == 0) {
        return ch__audit_append(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "accept") == 0) {
        return ch__audit_accept(argc - 1, argv + 1);
    }
    fprintf(stderr, "cctvhub audit: unknown command \"%s\"\n\n%s", cmd, ch__audit_usage);
    return CH_EXIT_USAGE;
}

/*
 * registry import: converted rows into the store, one transaction per file.
 *
 * The transaction begins at the first converted row, so a file rejected before that (not text,
 * no header) never touches the store; any store failure later rolls the whole file back.
 * Provider agencies are found by name or created, and remembered for the rest of the file so
 * that a national file asks the store once per agency, not once per row.
 *
 * An import confined to one agency (CH_IMPORT_OWN_AGENCY: a provider's) creates no agency and
 * stores only rows of that agency, with the store's owned upserts, which refuse a key another
 * agency's record holds. Every upsert keeps the groups of fields the file has no column for
 * (ch_import_row_t.keep) as they are stored. A row refused so was converted (and counted) by the
 * converter; the storing thread notes it, and after the join it moves from the counts to the
 * skipped list.
 */
#include "registry/registry_private.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* A converted row the import's scope kept out of the store. */
typedef struct ch_registry__refused {
    int line;
    const char *code; /* CH_IMPORT_SKIP_* */
    char *reason;
    long cameras, devices, unlocated; /* what the converter counted for it */
} ch_registry__refused_t;

typedef struct ch_registry__import {
    ch_store_t *st;
    ch_import_report_t *rep;
    int began;
    int own_only;                /* CH_IMPORT_OWN_AGENCY */
    int64_t own_agency_id;       /* with own_only: the one agency rows may touch */
    ch_registry__map_t agencies; /* name hash -> index into ids */
    int64_t *ids;                /* 0: no such agency (own_only, where none is created) */
    size_t nids;
    ch_registry__refused_t *refused; /* in line order (the storing thread's) */
    size_t nrefused, refused_cap;
    char *err;
} ch_registry__import_t;

/* Strips a trailing "청" (office) and a parenthesised part: "부산광역시(자연재난과)" ->
 * "부산광역시", "부산진구청" -> "부산진구". Returns the length kept. */
static size_t ch_registry__agency_word(const char *w, size_t n)
{
    const char *paren = memchr(w, '(', n);
    if (paren != NULL) {
        n = (size_t)(paren - w);
    }
    if (n >= 3 && memcmp(w + n - 3, "청", 3) == 0) {
        n -= 3;
    }
    return n;
}

/*
 * The level of a provider agency from its name: the last word that names a local government
 * decides. "..구", "..군" (district offices) are districts; "..시", "..도" (a city, a metropolitan
 * city, a province) are cities. A department after the office ("대덕구청 공원녹지과") is passed
 * over. Names that say neither are taken as districts, the common case in the standard data.
 */
static const char *ch_registry__agency_level(const char *name)
{
    size_t n = strlen(name);
    while (n > 0) {
        size_t end = n;
        while (end > 0 && name[end - 1] == ' ') {
            end--;
        }
        size_t start = end;
        while (start > 0 && name[start - 1] != ' ') {
            start--;
        }
        size_t k = ch_registry__agency_word(name + start, end - start);
        const char *w = name + start;
        if (k >= 3 && (memcmp(w + k - 3, "구", 3) == 0 || memcmp(w + k - 3, "군", 3) == 0)) {
            return "district";
        }
        if (k >= 3 && (memcmp(w + k - 3, "시", 3) == 0 || memcmp(w + k - 3, "도", 3) == 0)) {
            return "city";
        }
        n = start;
    }
    return "district";
}

static int ch_registry__import_fail(ch_registry__import_t *im, int rc, int line, const char *what)
{
    if (im->err == NULL) {
        ch_buf_t b;
        ch_buf_init(&b);
        ch_buf_appendf(&b, "line %d: %s: %s", line, what, ch_store_errmsg(im->st));
        im->err = ch_buf_steal(&b);
    }
    return rc;
}

/* Finds the row's agency (cache, then store by name, then create; with own_only an unknown
 * name is id 0, never created). */
static int ch_registry__agency_id(ch_registry__import_t *im, const ch_import_row_t *row,
                                  int64_t *id)
{
    ch_registry__h128_t h;
    ch_registry__hash128(row->agency_name, strlen(row->agency_name), &h);
    int found;
    int *slot = ch_registry__map_upsert(&im->agencies, h, (int)im->nids, &found);
    if (slot == NULL) {
        return CH_ENOMEM;
    }
    if (found) {
        *id = im->ids[*slot];
        return 0;
    }
    ch_agency_t a;
    memset(&a, 0, sizeof(a));
    int rc = ch_store_agency_find_by_name(im->st, row->agency_name, &a);
    if (rc == 0) {
        *id = a.id;
        ch_agency_fini(&a);
    } else if (rc == CH_ENOTFOUND && im->own_only) {
        *id = 0;
    } else if (rc == CH_ENOTFOUND) {
        ch_agency_t n;
        memset(&n, 0, sizeof(n));
        const char *level = ch_registry__agency_level(row->agency_name);
        n.name = (char *)row->agency_name;
        n.kind = (char *)"provider";
        n.level = (char *)level;
        n.type = (char *)(strcmp(level, "city") == 0 ? "city-agency" : "district-center");
        n.phone = (char *)row->agency_phone;
        n.code = (char *)row->agency_code;
        rc = ch_store_agency_create(im->st, &n);
        if (rc != 0) {
            return ch_registry__import_fail(im, rc, row->line, "cannot create the agency");
        }
        *id = n.id;
        im->rep->agencies_created++;
    } else {
        return ch_registry__import_fail(im, rc, row->line, "cannot look up the agency");
    }
    im->ids = ch_realloc(im->ids, (im->nids + 1) * sizeof(*im->ids));
    im->ids[im->nids++] = *id;
    return 0;
}

static void ch_registry__count(ch_store_upsert_t o, long *created, long *updated, long *unchanged)
{
    if (o == CH_STORE_CREATED) {
        (*created)++;
    } else if (o == CH_STORE_UPDATED) {
        (*updated)++;
    } else {
        (*unchanged)++;
    }
}

/* Keeps a converted row out of the store for the import's scope, noting why (code and a
 * reason naming what, clipped). */
static void ch_registry__refuse(ch_registry__import_t *im, const ch_import_row_t *row,
                                const char *code, const char *what, const char *value,
                                const char *why)
{
    ch_buf_t b;
    ch_buf_init(&b);
    ch_buf_appendf(&b, "%s: %s \"", code, what);
    ch_registry__append_clipped(&b, value, strlen(value), 80);
    ch_buf_appendf(&b, "\" %s", why);
    if (im->nrefused == im->refused_cap) {
        im->refused_cap = im->refused_cap ? im->refused_cap * 2 : 16;
        im->refused = ch_realloc(im->refused, im->refused_cap * sizeof(*im->refused));
    }
    ch_registry__refused_t *r = &im->refused[im->nrefused++];
    r->line = row->line;
    r->code = code;
    r->reason = ch_buf_steal(&b);
    r->cameras = row->camera != NULL ? (long)row->camera_count : 0;
    r->devices = row->device != NULL ? 1 : 0;
    r->unlocated = (row->camera != NULL && !row->camera->located ? r->cameras : 0) +
                   (row->device != NULL && !row->device->located ? 1 : 0);
}

/* The row callback: opens the transaction on the first row, then upserts. A row is one site's
 * cameras or one device, never both (the layouts make one or the other). */
static int ch_registry__store_row(void *user, ch_import_row_t *row)
{
    ch_registry__import_t *im = user;
    ch_import_report_t *rep = im->rep;
    int rc;
    if (!im->began) {
        rc = ch_store_begin(im->st);
        if (rc != 0) {
            return ch_registry__import_fail(im, rc, row->line, "cannot begin a transaction");
        }
        im->began = 1;
    }
    int64_t agency_id;
    rc = ch_registry__agency_id(im, row, &agency_id);
    if (rc != 0) {
        return rc;
    }
    assert(row->camera == NULL || row->device == NULL);
    if (im->own_only && (agency_id <= 0 || agency_id != im->own_agency_id)) {
        if (agency_id > 0) {
            ch_registry__refuse(im, row, CH_IMPORT_SKIP_OTHER_AGENCY, "the row's agency",
                                row->agency_name,
                                "is another agency: a provider imports into its own only");
        } else {
            ch_registry__refuse(im, row, CH_IMPORT_SKIP_UNKNOWN_AGENCY, "the row's agency",
                                row->agency_name,
                                "is no agency of this hub, and a provider's import creates none");
        }
        return 0;
    }
    /* Only the columns the file carries are updated; a provider's upserts are owned. */
    ch_store_upsert_opts_t how = {.owned = im->own_only, .keep = row->keep};
    if (row->camera != NULL) {
        row->camera->agency_id = agency_id;
        ch_store_upsert_counts_t n = {0, 0, 0};
        rc =
            ch_store_camera_upsert_site_with(im->st, row->camera, (int)row->camera_count, &how, &n);
        if (rc == CH_EPERM && im->own_only) {
            ch_registry__refuse(im, row, CH_IMPORT_SKIP_OTHER_AGENCY_RECORD, "the site's key",
                                row->camera->source_key,
                                "is another agency's camera: a provider changes its own only");
            return 0;
        }
        if (rc != 0) {
            return ch_registry__import_fail(im, rc, row->line, "cannot store a camera");
        }
        rep->cameras_created += n.created;
        rep->cameras_updated += n.updated;
        rep->cameras_unchanged += n.unchanged;
    }
    if (row->device != NULL) {
        row->device->agency_id = agency_id;
        ch_store_upsert_t o;
        rc = ch_store_device_upsert_with(im->st, row->device, &how, &o);
        if (rc == CH_EPERM && im->own_only) {
            ch_registry__refuse(im, row, CH_IMPORT_SKIP_OTHER_AGENCY_RECORD, "the device's key",
                                row->device->source_key,
                                "is another agency's device: a provider changes its own only");
            return 0;
        }
        if (rc != 0) {
            return ch_registry__import_fail(im, rc, row->line, "cannot store a device");
        }
        ch_registry__count(o, &rep->devices_created, &rep->devices_updated,
                           &rep->devices_unchanged);
    }
    return 0;
}

/* ---- conversion and store on two threads ----------------------------------------------------- */

/*
 * Reading, decoding, checking and converting a file costs about as much as storing what it
 * makes, so an import into a store runs the two side by side: a second thread converts and
 * hands rows over in batches (their strings copied into the batch's arena); this thread stores
 * them in file order, in the one transaction. A store failure stops the conversion at its next
 * row. The report's conversion fields are the converter's and its outcome counts this
 * thread's; neither reads the other's until the converter has been joined.
 */
#define PIPE_ROWS  1024 /* rows per batch */
#define PIPE_DEPTH 4    /* batches in flight: the converter runs at most this far ahead */

typedef struct ch_registry__pipe_row {
    int line;
    const char *agency_name, *agency_phone, *agency_code;
    ch_camera_t camera;
    ch_device_t device;
    size_t camera_count; /* 0 for a device row */
    int has_device;
    unsigned keep;
} ch_registry__pipe_row_t;

typedef struct ch_registry__batch {
    ch_registry__pipe_row_t rows[PIPE_ROWS];
    size_t n;
    ch_registry__arena_t arena;
} ch_registry__batch_t;

typedef struct ch_registry__pipe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ch_registry__batch_t *batch; /* PIPE_DEPTH of them, used in turn */
    uint64_t produced;           /* batches handed over */
    uint64_t consumed;           /* batches stored */
    int done;                    /* the converter has returned */
    int stop;                    /* the store failed: the converter stops */
    /* The converter's call and its outcome. */
    const char *name;
    const char *data;
    size_t len;
    const ch_import_options_t *opt;
    ch_import_report_t *rep;
    int rc;
    char *msg;
} ch_registry__pipe_t;

static char *ch_registry__copy(ch_registry__arena_t *a, const char *s)
{
    return s != NULL ? ch_registry__arena_strndup(a, s, strlen(s)) : NULL;
}

/* The converter's row callback: copies the row into the batch being filled, and hands the
 * batch over when it is full. */
static int ch_registry__pipe_put(void *user, ch_import_row_t *row)
{
    ch_registry__pipe_t *p = user;
    ch_registry__batch_t *b = &p->batch[p->produced % PIPE_DEPTH];
    ch_registry__arena_t *a = &b->arena;
    ch_registry__pipe_row_t *r = &b->rows[b->n++];

    r->line = row->line;
    r->keep = row->keep;
    r->agency_name = ch_registry__copy(a, row->agency_name);
    r->agency_phone = ch_registry__copy(a, row->agency_phone);
    r->agency_code = ch_registry__copy(a, row->agency_code);
    r->camera_count = row->camera != NULL ? row->camera_count : 0;
    if (row->camera != NULL) {
        ch_camera_t *c = &r->camera;
        *c = *row->camera;
        char **text[] = {&c->name,          &c->road_address, &c->lot_address, &c->purpose,
                         &c->kind,          &c->installed_ym, &c->rtsp_url,    &c->rtsp_username,
                         &c->rtsp_password, &c->codec,        &c->status,      &c->direction,
                         &c->note,          &c->flags,        &c->source_file, &c->source_key,
                         &c->tls_pin};
        for (size_t i = 0; i < CH_ARRAY_SIZE(text); i++) {
            *text[i] = ch_registry__copy(a, *text[i]);
        }
    }
    r->has_device = row->device != NULL;
    if (row->device != NULL) {
        ch_device_t *d = &r->device;
        *d = *row->device;
        char **text[] = {&d->name,  &d->kind,  &d->road_address, &d->lot_address, &d->status,
                         &d->attrs, &d->flags, &d->source_file,  &d->source_key};
        for (size_t i = 0; i < CH_ARRAY_SIZE(text); i++) {
            *text[i] = ch_registry__copy(a, *text[i]);
        }
    }
    if (b->n < PIPE_ROWS) {
        return 0;
    }
    pthread_mutex_lock(&p->mu);
    p->produced++;
    pthread_cond_broadcast(&p->cv);
    while (!p->stop && p->produced - p->consumed >= PIPE_DEPTH) {
        pthread_cond_wait(&p->cv, &p->mu);
    }
    int stop = p->stop;
    pthread_mutex_unlock(&p->mu);
    return stop ? -ECANCELED : 0;
}

static void *ch_registry__pipe_convert(void *arg)
{
    ch_registry__pipe_t *p = arg;
    int rc = ch_registry_convert_buffer(p->name, p->data, p->len, p->opt, ch_registry__pipe_put, p,
                                        p->rep, &p->msg);
    pthread_mutex_lock(&p->mu);
    if (p->batch[p->produced % PIPE_DEPTH].n > 0) {
        p->produced++; /* the last, partial batch */
    }
    p->rc = rc;
    p->done = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Stores the batches as they come, until the converter is done or a row fails. Returns the
 * first store failure, else the converter's result (*msg its message). */
static int ch_registry__pipe_run(ch_registry__import_t *im, ch_registry__pipe_t *p, char **msg)
{
    pthread_t th;
    int rc = 0;
    if (pthread_create(&th, NULL, ch_registry__pipe_convert, p) != 0) {
        return CH_ENOMEM;
    }
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->consumed == p->produced && !p->done) {
            pthread_cond_wait(&p->cv, &p->mu);
        }
        int more = p->consumed < p->produced;
        pthread_mutex_unlock(&p->mu);
        if (!more) {
            break;
        }
        ch_registry__batch_t *b = &p->batch[p->consumed % PIPE_DEPTH];
        for (size_t i = 0; i < b->n && rc == 0; i++) {
            ch_registry__pipe_row_t *r = &b->rows[i];
            ch_import_row_t row = {
                .line = r->line,
                .agency_name = r->agency_name,
                .agency_phone = r->agency_phone,
                .agency_code = r->agency_code,
                .camera = r->camera_count > 0 ? &r->camera : NULL,
                .camera_count = r->camera_count,
                .device = r->has_device ? &r->device : NULL,
                .keep = r->keep,
            };
            rc = ch_registry__store_row(im, &row);
        }
        b->n = 0;
        ch_registry__arena_reset(&b->arena);
        pthread_mutex_lock(&p->mu);
        p->consumed++;
        if (rc != 0) {
            p->stop = 1;
        }
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        if (rc != 0) {
            break;
        }
    }
    pthread_join(th, NULL);
    if (rc == 0) {
        rc = p->rc;
        *msg = p->msg;
        p->msg = NULL;
    }
    return rc;
}

/*
 * Rows the scope refused were converted, so the converter counted them and listed their flags;
 * after the join they leave the counts and the flagged list and join the skipped list, whose
 * line order they keep (both lists are in file order).
 */
static void ch_registry__report_refused(ch_registry__import_t *im)
{
    ch_import_report_t *rep = im->rep;
    if (im->nrefused == 0) {
        return;
    }
    size_t n = rep->skipped_count + im->nrefused, i = 0, j = 0, k = 0;
    ch_import_issue_t *v = ch_calloc(n, sizeof(*v));
    while (k < n) {
        if (j == im->nrefused ||
            (i < rep->skipped_count && rep->skipped[i].line < im->refused[j].line)) {
            v[k++] = rep->skipped[i++];
            continue;
        }
        ch_registry__refused_t *r = &im->refused[j++];
        rep->sites--;
        rep->cameras -= r->cameras;
        rep->devices -= r->devices;
        rep->unlocated -= r->unlocated;
        v[k].line = r->line;
        v[k].reason = r->reason;
        v[k].code = ch_strdup(r->code);
        r->reason = NULL;
        k++;
    }
    ch_free(rep->skipped);
    rep->skipped = v;
    rep->skipped_count = rep->skipped_cap = n;
    size_t w = 0;
    j = 0;
    for (i = 0; i < rep->flagged_count; i++) {
        ch_import_issue_t *f = &rep->flagged[i];
        while (j < im->nrefused && im->refused[j].line < f->line) {
            j++;
        }
        if (j < im->nrefused && im->refused[j].line == f->line) {
            ch_free(f->reason);
            ch_free(f->flags);
            ch_free(f->code);
        } else {
            rep->flagged[w++] = *f;
        }
    }
    rep->flagged_count = w;
}

/* Converts and stores a file on two threads (see above). */
static int ch_registry__import_piped(ch_registry__import_t *im, const char *name, const char *data,
                                     size_t len, const ch_import_options_t *opt, char **msg)
{
    ch_registry__pipe_t p;
    memset(&p, 0, sizeof(p));
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    p.batch = ch_calloc(PIPE_DEPTH, sizeof(*p.batch));
    p.name = name;
    p.data = data;
    p.len = len;
    p.opt = opt;
    p.rep = im->rep;
    int rc = ch_registry__pipe_run(im, &p, msg);
    ch_registry__report_refused(im);
    for (int i = 0; i < PIPE_DEPTH; i++) {
        ch_registry__arena_fini(&p.batch[i].arena);
    }
    ch_free(p.batch);
    ch_free(p.msg);
    pthread_cond_destroy(&p.cv);
    pthread_mutex_destroy(&p.mu);
    return rc;
}

/* An import confined to one agency may name only that agency as the override: anything else
 * (another agency, a name no agency has) refuses the whole import before it reads a row.
 * 0, CH_EPERM (*msg says why), or the store's error. */
static int ch_registry__override_allowed(ch_registry__import_t *im, const ch_import_options_t *opt,
                                         char **msg)
{
    if (!im->own_only || opt->agency == NULL) {
        return 0;
    }
    ch_agency_t a;
    memset(&a, 0, sizeof(a));
    int rc = ch_store_agency_find_by_name(im->st, opt->agency, &a);
    int64_t id = a.id;
    ch_agency_fini(&a);
    if (rc != 0 && rc != CH_ENOTFOUND) {
        return ch_registry__import_fail(im, rc, 0, "cannot look up the agency");
    }
    if (rc == 0 && id > 0 && id == im->own_agency_id) {
        return 0;
    }
    ch_buf_t b;
    ch_buf_init(&b);
    ch_buf_append_str(&b, "the agency \"");
    ch_registry__append_clipped(&b, opt->agency, strlen(opt->agency), 80);
    ch_buf_append_str(&b, rc == 0 ? "\" is another agency: a provider imports into its own only"
                                  : "\" is no agency of this hub, and a provider's import "
                                    "creates none");
    *msg = ch_buf_steal(&b);
    return CH_EPERM;
}

int ch_registry_import_buffer(ch_store_t *st, const char *name, const char *data, size_t len,
                              const ch_import_options_t *opt, ch_import_report_t *rep, char **err)
{
    uint64_t t0 = ch_time_mono_ns();
    ch_registry__import_t im;
    memset(&im, 0, sizeof(im));
    im.st = st;
    im.rep = rep;
    im.own_only = opt != NULL && opt->scope == CH_IMPORT_OWN_AGENCY;
    im.own_agency_id = im.own_only ? opt->own_agency_id : 0;
    char *msg = NULL;
    int rc = st != NULL ? ch_registry__override_allowed(&im, opt, &msg) : 0;
    if (rc != 0) {
        if (rep->file == NULL) {
            rep->file = ch_strdup(name);
        }
    } else if (st != NULL) {
        rc = ch_registry__import_piped(&im, name, data, len, opt, &msg);
    } else {
        rc = ch_registry_convert_buffer(name, data, len, opt, NULL, NULL, rep, &msg);
    }
    if (rc == 0 && im.began) {
        rc = ch_store_commit(st);
        if (rc != 0) {
            ch_registry__import_fail(&im, rc, 0, "cannot commit");
        }
    }
    if (rc != 0) {
        if (im.began) {
            ch_store_rollback(st);
        }
        /* Nothing was stored: the outcome counts must not say otherwise. */
        rep->cameras_created = rep->cameras_updated = rep->cameras_unchanged = 0;
        rep->devices_created = rep->devices_updated = rep->devices_unchanged = 0;
        rep->agencies_created = 0;
        if (im.err != NULL) {
            ch_free(rep->error);
            rep->error = ch_strdup(im.err);
        } else if (rep->error == NULL) {
            rep->error = ch_strdup(msg ? msg : ch_strerror(rc));
        }
        if (err != NULL) {
            *err = ch_strdup(rep->error);
        }
    }
    rep->ok = rc == 0;
    rep->duration_s = (double)(ch_time_mono_ns() - t0) / 1e9;
    ch_free(msg);
    ch_free(im.err);
    ch_free(im.ids);
    for (size_t i = 0; i < im.nrefused; i++) {
        ch_free(im.refused[i].reason);
    }
    ch_free(im.refused);
    ch_registry__map_fini(&im.agencies);
    return rc;
}

/*
 * Maps the file rather than reading it: the pages are clean and shared with the page cache, so
 * a national file costs no private memory, and the decoder streams over it once.
 */
int ch_registry_import_file(ch_store_t *st, const char *path, const ch_import_options_t *opt,
                            ch_import_report_t *rep, char **err)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    int rc = 0;
    char *buf = NULL;
    void *map = MAP_FAILED;
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        goto fail;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        rc = -errno;
        goto fail;
    }
    if (S_ISDIR(sb.st_mode)) {
        rc = -EISDIR;
        goto fail;
    }
    if (S_ISREG(sb.st_mode) && sb.st_size > 0) {
        len = (size_t)sb.st_size;
        map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            rc = -errno;
            goto fail;
        }
        madvise(map, len, MADV_SEQUENTIAL);
    } else {
        /* A pipe or a device: read it whole. */
        size_t cap = 0;
        for (;;) {
            if (len == cap) {
                cap = cap ? cap * 2 : 1 << 16;
                char *nb = ch_try_realloc(buf, cap);
                if (nb == NULL) {
                    rc = CH_ENOMEM;
                    goto fail;
                }
                buf = nb;
            }
            ssize_t r = read(fd, buf + len, cap - len);
            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r < 0) {
                rc = -errno;
                goto fail;
            }
            if (r == 0) {
                break;
            }
            len += (size_t)r;
        }
    }
    close(fd);
    fd = -1;
    rc = ch_registry_import_buffer(st, name, map != MAP_FAILED ? map : buf, len, opt, rep, err);
    goto out;

fail:
    if (rep->file == NULL) {
        rep->file = ch_strdup(name);
    }
    if (rep->error == NULL) {
        ch_buf_t b;
        ch_buf_init(&b);
        ch_buf_appendf(&b, "cannot read %s: %s", path, ch_strerror(rc));
        rep->error = ch_buf_steal(&b);
    }
    rep->ok = 0;
    if (err != NULL) {
        *err = ch_strdup(rep->error);
    }
out:
    if (fd >= 0) {
        close(fd);
    }
    if (map != MAP_FAILED) {
        munmap(map, len);
    }
    ch_free(buf);
    return rc;
}

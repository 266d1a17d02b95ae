/*
 * registry import: converted rows into the store, one transaction per file.
 *
 * The transaction begins at the first converted row, so a file rejected before that (not text,
 * no header) never touches the store; any store failure later rolls the whole file back.
 * Provider agencies are found by name or created, and remembered for the rest of the file so
 * that a national file asks the store once per agency, not once per row.
 */
#include "registry/registry_private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct ch_registry__import {
    ch_store_t *st;
    ch_import_report_t *rep;
    int began;
    ch_registry__map_t agencies; /* name hash -> index into ids */
    int64_t *ids;
    size_t nids;
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

/* Finds the row's agency (cache, then store by name, then create). */
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

/* The row callback: opens the transaction on the first row, then upserts. */
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
    if (row->camera != NULL) {
        row->camera->agency_id = agency_id;
        ch_store_upsert_counts_t n = {0, 0, 0};
        rc = ch_store_camera_upsert_site(im->st, row->camera, (int)row->camera_count, &n);
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
        rc = ch_store_device_upsert(im->st, row->device, &o);
        if (rc != 0) {
            return ch_registry__import_fail(im, rc, row->line, "cannot store a device");
        }
        ch_registry__count(o, &rep->devices_created, &rep->devices_updated,
                           &rep->devices_unchanged);
    }
    return 0;
}

int ch_registry_import_buffer(ch_store_t *st, const char *name, const char *data, size_t len,
                              const ch_import_options_t *opt, ch_import_report_t *rep, char **err)
{
    uint64_t t0 = ch_time_mono_ns();
    ch_registry__import_t im;
    memset(&im, 0, sizeof(im));
    im.st = st;
    im.rep = rep;
    char *msg = NULL;
    int rc = ch_registry_convert_buffer(name, data, len, opt, st ? ch_registry__store_row : NULL,
                                        &im, rep, &msg);
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

/* Holds docs/openapi.yaml to the route table: every route the server has must be documented
 * with the same roles, and the document must not describe operations the server lacks. The
 * paths section is read with a small line scanner (two-space YAML indents), not a YAML
 * library: the document's layout is ours and this test keeps it that way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

extern const unsigned char ch_api_openapi_doc[];
extern const size_t ch_api_openapi_doc_len;

typedef struct doc_op {
    char method[8];
    char path[128];
    char roles[128]; /* comma-separated, no spaces, as in ch_api_route_info_t */
} doc_op_t;

typedef struct doc {
    char *text;
    size_t len;
    doc_op_t ops[128];
    size_t count;
} doc_t;

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    ch_buf_t b;
    ch_buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        ch_buf_append(&b, chunk, n);
    }
    fclose(f);
    *len = b.len;
    return ch_buf_steal(&b);
}

static size_t indent_of(const char *line)
{
    size_t n = 0;
    while (line[n] == ' ') {
        n++;
    }
    return n;
}

/* "[admin, operator]" -> "admin,operator". */
static void roles_from_flow_list(const char *s, char *out, size_t size)
{
    size_t j = 0;
    for (; *s && *s != ']'; s++) {
        if (*s == '[' || *s == ' ' || *s == '\'' || *s == '"') {
            continue;
        }
        if (j + 1 < size) {
            out[j++] = *s;
        }
    }
    out[j] = '\0';
}

/* Scans the paths section into d->ops. */
static void scan_paths(doc_t *d)
{
    static const char *methods[] = {"get", "put", "post", "delete", "patch", "head", "options"};
    char path[128] = "";
    int in_paths = 0;
    doc_op_t *op = NULL;
    char *next = NULL;
    for (char *line = d->text; line != NULL; line = next) {
        char *nl = strchr(line, '\n');
        if (nl != NULL) {
            *nl = '\0';
        }
        next = nl ? nl + 1 : NULL;
        size_t ind = indent_of(line);
        const char *t = line + ind;
        if (*t == '\0' || *t == '#') {
            continue;
        }
        if (ind == 0) {
            in_paths = strncmp(t, "paths:", 6) == 0;
            continue;
        }
        if (!in_paths) {
            continue;
        }
        if (ind == 2 && (*t == '/' || *t == '\'' || *t == '"')) {
            size_t j = 0;
            for (; *t && *t != ':' && j + 1 < sizeof(path); t++) {
                if (*t != '\'' && *t != '"') {
                    path[j++] = *t;
                }
            }
            path[j] = '\0';
            op = NULL;
        } else if (ind == 4) {
            op = NULL;
            for (size_t i = 0; i < CH_ARRAY_SIZE(methods); i++) {
                size_t n = strlen(methods[i]);
                if (strncmp(t, methods[i], n) == 0 && t[n] == ':') {
                    assert_true(d->count < CH_ARRAY_SIZE(d->ops));
                    op = &d->ops[d->count++];
                    memset(op, 0, sizeof(*op));
                    for (size_t k = 0; k < n && k + 1 < sizeof(op->method); k++) {
                        op->method[k] = (char)toupper((unsigned char)methods[i][k]);
                    }
                    snprintf(op->path, sizeof(op->path), "%s", path);
                }
            }
        } else if (ind == 6 && op != NULL && strncmp(t, "x-roles:", 8) == 0) {
            roles_from_flow_list(t + 8, op->roles, sizeof(op->roles));
        }
    }
}

static int load_doc(void **state)
{
    doc_t *d = ch_calloc(1, sizeof(*d));
    d->text = read_file(CH_SOURCE_DIR "/docs/openapi.yaml", &d->len);
    assert_non_null(d->text);
    *state = d;
    return 0;
}

static int free_doc(void **state)
{
    doc_t *d = *state;
    ch_free(d->text);
    ch_free(d);
    return 0;
}

/* Counts the roles of the comma-separated list a that also appear in b. */
static size_t roles_in(const char *a, const char *b)
{
    size_t hits = 0;
    char wrapped[160];
    snprintf(wrapped, sizeof(wrapped), ",%s,", b);
    for (const char *p = a; *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char needle[64];
        snprintf(needle, sizeof(needle), ",%.*s,", (int)n, p);
        hits += strstr(wrapped, needle) != NULL;
        p += n + (comma != NULL);
    }
    return hits;
}

static size_t roles_count(const char *a)
{
    size_t n = *a != '\0';
    for (; *a; a++) {
        n += *a == ',';
    }
    return n;
}

/* 1 when the comma-separated lists a and b hold the same roles, in any order. */
static int same_roles(const char *a, const char *b)
{
    return roles_count(a) == roles_count(b) && roles_in(a, b) == roles_count(a) &&
           roles_in(b, a) == roles_count(b);
}

/* Compares the document text with the route table; returns the number of problems, each
 * printed. When quiet, prints nothing (for the test that feeds a broken document). */
static int count_problems(const char *text, int quiet)
{
    doc_t *d = ch_calloc(1, sizeof(*d));
    d->text = ch_strdup(text);
    scan_paths(d);
    size_t n = 0;
    const ch_api_route_info_t *routes = ch_api_routes(&n);
    int missing = 0;
    for (size_t i = 0; i < n; i++) {
        const doc_op_t *found = NULL;
        for (size_t k = 0; k < d->count; k++) {
            if (strcmp(d->ops[k].method, routes[i].method) == 0 &&
                strcmp(d->ops[k].path, routes[i].path_template) == 0) {
                found = &d->ops[k];
            }
        }
        if (found == NULL) {
            if (!quiet) {
                print_error("docs/openapi.yaml lacks %s %s\n", routes[i].method,
                            routes[i].path_template);
            }
            missing++;
        } else if (!same_roles(found->roles, routes[i].roles)) {
            if (!quiet) {
                print_error("docs/openapi.yaml: %s %s has x-roles [%s], the server [%s]\n",
                            routes[i].method, routes[i].path_template, found->roles,
                            routes[i].roles);
            }
            missing++;
        }
    }
    /* And the other way: no documented operation the server does not have. */
    for (size_t k = 0; k < d->count; k++) {
        int known = 0;
        for (size_t i = 0; i < n; i++) {
            known |= strcmp(d->ops[k].method, routes[i].method) == 0 &&
                     strcmp(d->ops[k].path, routes[i].path_template) == 0;
        }
        if (!known) {
            if (!quiet) {
                print_error("docs/openapi.yaml documents %s %s, which the server lacks\n",
                            d->ops[k].method, d->ops[k].path);
            }
            missing++;
        }
    }
    if (d->count == 0) {
        missing++;
    }
    ch_free(d->text);
    ch_free(d);
    return missing;
}

static void test_openapi_documents_every_route_with_its_roles(void **state)
{
    doc_t *d = *state;
    assert_int_equal(count_problems(d->text, 0), 0);
}

/* The checker itself: a document that lacks routes, has wrong roles or an extra operation
 * must fail, or the test above proves nothing. */
static void test_checker_catches_missing_routes_wrong_roles_and_extras(void **state)
{
    size_t n = 0;
    ch_api_routes(&n);
    const char *partial = "openapi: 3.0.3\n"
                          "paths:\n"
                          "  /api/v1/health:\n"
                          "    get:\n"
                          "      x-roles: [public]\n"
                          "  /api/v1/version:\n"
                          "    get:\n"
                          "      x-roles: [admin]\n"
                          "  /api/v1/secret:\n"
                          "    delete:\n"
                          "      x-roles: [admin]\n"
                          "components:\n"
                          "  /api/v1/openapi.yaml:\n"
                          "    get:\n";
    /* Every route but health is missing or wrong (version's roles), plus one extra. */
    assert_int_equal(count_problems(partial, 1), (int)(n - 1) + 1);
    assert_true(count_problems("openapi: 3.0.3\n", 1) >= (int)n);
}

static void test_openapi_is_version_3_0_3_with_an_error_schema(void **state)
{
    doc_t *d = *state;
    assert_true(strncmp(d->text, "openapi: 3.0.3\n", 15) == 0);
    assert_non_null(strstr(d->text, "\n    Error:\n"));
    assert_non_null(strstr(d->text, "x-roles:"));
}

static void test_served_document_is_the_one_in_docs(void **state)
{
    doc_t *d = *state;
    assert_int_equal(ch_api_openapi_doc_len, d->len);
    assert_memory_equal(ch_api_openapi_doc, d->text, d->len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_openapi_documents_every_route_with_its_roles, load_doc,
                                        free_doc),
        cmocka_unit_test(test_checker_catches_missing_routes_wrong_roles_and_extras),
        cmocka_unit_test_setup_teardown(test_openapi_is_version_3_0_3_with_an_error_schema,
                                        load_doc, free_doc),
        cmocka_unit_test_setup_teardown(test_served_document_is_the_one_in_docs, load_doc,
                                        free_doc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Unit tests of the registry's camera rules: stream credentials stay with the place (scheme,
 * host, port) they were given for; a stream URL and a TLS pin have a shape.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "registry/registry.h"

#include <stdio.h>
#include <string.h>

/* Applies the rule from old_url to a camera at new_url holding "u" / "p"; returns what is left
 * as "user:password" ("-" for a NULL one) in out. */
static int follow(const char *old_url, const char *new_url, int user_sent, int password_sent,
                  char *out, size_t cap)
{
    ch_camera_t c;
    ch_camera_init(&c);
    c.rtsp_url = new_url != NULL ? ch_strdup(new_url) : NULL;
    c.rtsp_username = ch_strdup("u");
    c.rtsp_password = ch_strdup("p");
    int rc = ch_registry_camera_credentials_follow(old_url, &c, user_sent, password_sent);
    snprintf(out, cap, "%s:%s", c.rtsp_username ? c.rtsp_username : "-",
             c.rtsp_password ? c.rtsp_password : "-");
    ch_camera_fini(&c);
    return rc;
}

static void test_credentials_stay_with_the_same_place(void **state)
{
    (void)state;
    char got[32];
    static const char *const same[][2] = {
        {"rtsp://cam.example/a", "rtsp://cam.example/b?x=1"},
        {"rtsp://cam.example/a", "RTSP://CAM.example:554/a"},
        {"rtsps://10.0.0.1:8322/a", "rtsps://10.0.0.1:8322/"},
        {"rtsps://10.0.0.1/a", "rtsps://10.0.0.1:322/a"},
        {"rtsp://old:creds@cam.example/a", "rtsp://cam.example/a"},
        {"rtsp://[fd00::1]:8554/a", "rtsp://[FD00::1]:8554/b"},
        {NULL, NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        assert_int_equal(follow(same[i][0], same[i][1], 0, 0, got, sizeof(got)), 0);
        assert_string_equal(got, "u:p");
    }
}

static void test_credentials_are_dropped_for_another_place(void **state)
{
    (void)state;
    char got[32];
    static const char *const moved[][2] = {
        {"rtsp://cam.example/a", "rtsp://evil.example/a"},
        {"rtsp://cam.example/a", "rtsp://cam.example:8554/a"},
        {"rtsp://cam.example/a", "rtsps://cam.example/a"},
        {"rtsp://cam.example:554/a", "rtsp://cam.example:322/a"},
        {"rtsp://cam.example/a", "rtsp://cam.example.evil.example/a"},
        {"rtsp://10.0.0.1/a", "rtsp://10.0.0.10/a"},
        {NULL, "rtsp://cam.example/a"},
        {"rtsp://cam.example/a", NULL},
        {"rtsp://cam.example/a", ""},
        {"not a url", "also not"},
    };
    for (size_t i = 0; i < sizeof(moved) / sizeof(moved[0]); i++) {
        assert_int_equal(follow(moved[i][0], moved[i][1], 0, 0, got, sizeof(got)), 1);
        assert_string_equal(got, "-:-");
    }
    /* Sent again with the move (here both kept as sent; the caller put them in the record). */
    assert_int_equal(follow("rtsp://a/x", "rtsp://b/x", 1, 1, got, sizeof(got)), 0);
    assert_string_equal(got, "u:p");
    /* Only the user name sent: the old password does not go along with it. */
    assert_int_equal(follow("rtsp://a/x", "rtsp://b/x", 1, 0, got, sizeof(got)), 1);
    assert_string_equal(got, "u:-");
    assert_int_equal(follow("rtsp://a/x", "rtsp://b/x", 0, 1, got, sizeof(got)), 1);
    assert_string_equal(got, "-:p");
    /* The same unparsable text is no move. */
    assert_int_equal(follow("rtsp://a b/x", "rtsp://a b/x", 0, 0, got, sizeof(got)), 0);
    assert_string_equal(got, "u:p");
}

static void test_stream_urls_are_rtsp_or_rtsps(void **state)
{
    (void)state;
    assert_true(ch_registry_valid_rtsp_url("rtsp://10.0.0.1/s"));
    assert_true(ch_registry_valid_rtsp_url("rtsps://cam.example:8322/s"));
    assert_true(ch_registry_valid_rtsp_url("RTSPS://cam.example/s"));
    assert_false(ch_registry_valid_rtsp_url("rtsps://"));
    assert_false(ch_registry_valid_rtsp_url("https://cam.example/s"));
    assert_false(ch_registry_valid_rtsp_url("rtsps://cam example/s"));
    assert_true(ch_registry_is_rtsps("rtsps://cam/s"));
    assert_true(ch_registry_is_rtsps("RtSpS://cam/s"));
    assert_false(ch_registry_is_rtsps("rtsp://cam/s"));
    assert_false(ch_registry_is_rtsps(NULL));
}

static void test_a_tls_pin_is_sha256_and_64_hex_digits_lowercased(void **state)
{
    (void)state;
    char pin[128];
    snprintf(pin, sizeof(pin), "SHA256:%s",
             "0123456789ABCDEF0123456789abcdef"
             "0123456789ABCDEF0123456789abcdef");
    assert_true(ch_registry_canon_tls_pin(pin));
    assert_string_equal(pin, "sha256:0123456789abcdef0123456789abcdef"
                             "0123456789abcdef0123456789abcdef");
    static const char *const bad[] = {
        "",
        "sha256:",
        /* 63 digits, 65 digits */
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0",
        /* not hex */
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
        /* another hash, no prefix, base64 */
        "sha1:0123456789abcdef0123456789abcdef01234567",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "sha256:ASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4mrze8=",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(pin, sizeof(pin), "%s", bad[i]);
        if (ch_registry_canon_tls_pin(pin)) {
            fail_msg("\"%s\" was taken for a pin", bad[i]);
        }
        assert_string_equal(pin, bad[i]); /* left as it was */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_credentials_stay_with_the_same_place),
        cmocka_unit_test(test_credentials_are_dropped_for_another_place),
        cmocka_unit_test(test_stream_urls_are_rtsp_or_rtsps),
        cmocka_unit_test(test_a_tls_pin_is_sha256_and_64_hex_digits_lowercased),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * fuzz_trusted_proxies: the parsers behind http.trusted_proxies and X-Forwarded-For
 * (core/config.c: ch_config_parse_cidrs, ch_ip_parse, ch_cidr_contains) fed arbitrary bytes.
 * Whatever comes in: no crash or overflow; a list either fails or gives 1..cap networks whose
 * prefix is at most 128, whose host bits are clear, and which each contain their own address;
 * an address that parses reads back (through inet_ntop) as the same 16 bytes.
 *
 * Input: the text of a list (as a C string, up to the first NUL), also tried as one address.
 */
#include "core/config.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    ch_cidr_t nets[4];
    int n = ch_config_parse_cidrs(text, nets, 4);
    if (n != CH_EINVAL) {
        if (n < 1 || n > 4) {
            abort();
        }
        for (int i = 0; i < n; i++) {
            if (nets[i].prefix > 128) {
                abort();
            }
            for (unsigned b = nets[i].prefix; b < 128; b++) {
                if (nets[i].addr[b / 8] & (0x80u >> (b % 8))) {
                    abort();
                }
            }
            if (!ch_cidr_contains(&nets[i], 1, nets[i].addr)) {
                abort();
            }
        }
    }
    uint8_t a[16], b[16];
    if (ch_ip_parse(text, strlen(text), a) == 0) {
        char back[INET6_ADDRSTRLEN];
        if (inet_ntop(AF_INET6, a, back, sizeof(back)) == NULL ||
            ch_ip_parse(back, strlen(back), b) != 0 || memcmp(a, b, 16) != 0) {
            abort();
        }
        if (n > 0) {
            (void)ch_cidr_contains(nets, (size_t)n, a);
        }
    }
    free(text);
    return 0;
}

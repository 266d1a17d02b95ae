/*
 * libFuzzer target: bytes as a webhook receiver's answer, read by the webhook client's status
 * reader (proto's response head parser). It must return a head length within the input,
 * CH_EAGAIN or CH_EPARSE, and a status in 100..599 when it returns a length.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alert/alert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (buf == NULL) {
        return 0;
    }
    memcpy(buf, data, size);
    int status = 0;
    int rc = ch_alert_webhook_read_status(buf, size, &status);
    if (rc > 0 && ((size_t)rc > size || status < 100 || status > 599)) {
        abort();
    }
    if (rc <= 0 && rc != CH_EAGAIN && rc != CH_EPARSE) {
        abort();
    }
    /* Read byte by byte, as answers arrive: never complete before the whole head is in. */
    if (rc > 0) {
        int partial = ch_alert_webhook_read_status(buf, (size_t)rc - 1, &status);
        if (partial > 0) {
            abort();
        }
    }
    free(buf);
    return 0;
}

/*
 * policy: what the loader and the decisions share, not part of the public API.
 */
#ifndef CH_POLICY_INTERNAL_H
#define CH_POLICY_INTERNAL_H

#include "policy/policy.h"

#include <stdatomic.h>

/* A loaded services file: the services in file order. Immutable once loaded. */
struct ch_policy {
    ch_policy_service_t *services;
    size_t count;
    atomic_int refs; /* the loader's and one per ch_policy_ref: the policy is freed at 0 */
};

/* The CH_POLICY_RELAY_* / CH_POLICY_OWN_* bit of a relay role name, or 0 when unknown. */
unsigned ch_policy__relay_bit(const char *name);

#endif /* CH_POLICY_INTERNAL_H */

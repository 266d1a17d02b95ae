/*
 * store/records_list.h: the page every list call returns, whatever the record type. One layout
 * for all of them, so that the store fills any typed page from its one generic list
 * (ch_store__list_t in store_internal.h, the same page of void items).
 */
#ifndef CH_STORE_RECORDS_LIST_H
#define CH_STORE_RECORDS_LIST_H

#include <stddef.h>
#include <stdint.h>

/* Declares struct name, its typedef name##_t and name##_free: a page of a list (ch_store_*_list)
 * of records of type item_t. items holds count records, the caller's, released with name##_free
 * (which accepts NULL and leaves the page zeroed); total counts all matches of the filter, cursor
 * aside; next_id is the cursor for the next page (the last id given), or 0 when no more. */
#define CH_STORE_LIST_TYPE(name, item_t)                                                           \
    typedef struct name {                                                                          \
        item_t *items;                                                                             \
        size_t count;                                                                              \
        int64_t total;                                                                             \
        int64_t next_id;                                                                           \
    } name##_t;                                                                                    \
    void name##_free(name##_t *l)

#endif /* CH_STORE_RECORDS_LIST_H */

/*
 * codec/codec.c: placeholder until the depacketizer lands (issue 6).
 */
#include "codec/codec.h"

/*
 * codec: H.264 and H.265 as the media relay needs them (issue 6). Being written: see
 * docs/internals/codec.md once it lands.
 */
#ifndef CH_CODEC_H
#define CH_CODEC_H

#include "core/core.h"

#endif /* CH_CODEC_H */

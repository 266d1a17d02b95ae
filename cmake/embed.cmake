# Turns the file IN into a C source OUT defining ch_api_openapi_doc[] and its length.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" hexlen)
math(EXPR len "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
file(WRITE ${OUT} "/* Generated from docs/openapi.yaml; do not edit. */\n#include <stddef.h>\n"
     "extern const unsigned char ch_api_openapi_doc[];\nextern const size_t ch_api_openapi_doc_len;\n"
     "const unsigned char ch_api_openapi_doc[] = {${body}0x00};\n"
     "const size_t ch_api_openapi_doc_len = ${len};\n")

/*
 * openapi.h - the OpenAPI 3.1 document of the HTTP interface, embedded.
 *
 * docs/openapi.json is the source; at build time cmake/embed.cmake turns it
 * into a C array in the build directory (openapi_json.c), so the document
 * the server answers GET /openapi.json with (compact, like every answer:
 * server.c drops the whitespace between tokens) is always the one in the
 * tree it was built from.  The build fails if the file is not valid JSON or not
 * an OpenAPI 3.1 document.
 *
 * oe_openapi_json holds oe_openapi_json_len bytes of UTF-8 JSON followed by
 * a NUL that the length does not count.  Read-only, static storage.
 */
#ifndef OE_OPENAPI_H
#define OE_OPENAPI_H

#include <stddef.h>

extern const char oe_openapi_json[];
extern const size_t oe_openapi_json_len;

#endif

/*
 * receipt.h - receipts (SPEC 5.1 legacy check).
 */
#ifndef OE_RECEIPT_H
#define OE_RECEIPT_H

#include <stddef.h>

#include "answer.h"

/* POST /receipts/verify: {"exec_id": str, "result": str|object,
 * "receipt": str} -> {"valid": bool}; bad bodies get SPEC 2's errors. */
void receipt_verify_request(const char *body, size_t len, oe_answer *ans);

#endif

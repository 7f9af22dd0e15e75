/*
 * server.h - the HTTP server: h2o event loops, routing, limits, JSON errors.
 */
#ifndef OE_SERVER_H
#define OE_SERVER_H

#include "config.h"

/* Serves until SIGTERM or SIGINT, then drains in-flight requests, flushes
 * the store and returns 0.  Returns 1 when the server cannot start (the
 * reason is logged). */
int server_run(const oe_config *cfg);

#endif

/*
 * registry.h - the drivers this binary ships, by the name the `driver`
 * setting uses.  main.c creates the driver through here and never names a
 * driver's constructor; a new driver adds one entry to registry.c (and its
 * sources to the Makefile's DRIVER_SRC), nothing in src/.
 */
#ifndef TGT_REGISTRY_H
#define TGT_REGISTRY_H

#include "driver.h"
#include "error.h"

/* A new, unconnected driver of the registered `name` (the `driver`
 * setting).  The caller frees it with d->ops->free(d).  NULL with
 * TGT_ERR_CONFIG naming the known drivers when `name` is not one of them,
 * or with the constructor's error (out of memory). */
tgt_driver *tgt_driver_new(const char *name, tgt_error *err);

#endif

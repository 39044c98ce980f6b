/* SPDX-License-Identifier: MIT */
/*
 * Building a catalog over a container that the caller already opened (the
 * vfs does, to share it with raw/).
 * Thread-safety: as nck_catalog_open().
 */
#ifndef NCK_CATALOG_BUILD_H
#define NCK_CATALOG_BUILD_H

#include "container/container.h"
#include "nemockpt/catalog.h"

/*
 * Builds the catalog of an open container (borrowed: it must outlive the
 * catalog). A checkpoint whose layout is not recognized gets an empty
 * catalog (format "unknown"), not an error. Errors as nck_catalog_open().
 */
int nck_catalog_build(nck_catalog **out, nck_container *c, nck_diag *diag);

#endif

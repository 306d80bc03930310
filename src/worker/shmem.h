/* Shared-memory data transfer (host-protocol §6.1, §6.3, §10.19): map files in
 * <dir>/AzureFunctions/<name>, one header byte (1 = initialised), an 8-byte
 * little-endian signed content length, then the content. The directories come from
 * FUNCTIONS_UNIX_SHARED_MEMORY_DIRECTORIES (comma-separated, default /dev/shm). */
#ifndef AZF_WORKER_SHMEM_H
#define AZF_WORKER_SHMEM_H

#include "common/common_internal.h"

#include <stddef.h>
#include <stdint.h>

/* Outputs of at least this many bytes (strings: chars x 2) go to shared memory. */
#define AZF__SHMEM_MIN ((uint64_t)1 << 20)
#define AZF__SHMEM_MAX ((uint64_t)2 << 30)

/* FUNCTIONS_WORKER_SHARED_MEMORY_DATA_TRANSFER_ENABLED is true (1/true/t/yes/y). */
int azf__shmem_enabled(void);

/* Reads count bytes at offset of the content of map `name` (first directory holding
 * it) into *out (owned, azf__malloc, NUL-terminated beyond *len). Errors: AZF_E_NOTFOUND
 * (no such map), AZF_E_PARSE (bad header, offset/count out of range), AZF_E_NOMEM,
 * AZF_E_IO; the message in err. */
int azf__shmem_read(const char *name, int64_t offset, int64_t count, char **out, size_t *len,
                    azf__errmsg *err);

/* Writes a new map <dir>/AzureFunctions/<uuid4> holding data, in the first directory
 * where AzureFunctions exists or can be created; name receives the uuid. Errors:
 * AZF_E_IO, AZF_E_INVALID (too large); message in err. */
int azf__shmem_write(const void *data, size_t len, char name[37], azf__errmsg *err);

/* Deletes the map file `name` (first directory holding it). Returns 0 or AZF_E_IO. */
int azf__shmem_delete(const char *name);

#endif

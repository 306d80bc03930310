/* Shared-memory map files (see shmem.h). */
#include "shmem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER 9 /* flag byte + int64 length */
#define SUBDIR "AzureFunctions"

int azf__shmem_enabled(void)
{
    /* is_envvar_true: anything but a true value leaves the transfer off. */
    return azf__parse_bool(getenv("FUNCTIONS_WORKER_SHARED_MEMORY_DATA_TRANSFER_ENABLED")) == 1;
}

/* The i-th directory (trimmed) into buf; 0 when there is none. */
static int dir_at(size_t i, char *buf, size_t size)
{
    const char *s = getenv("FUNCTIONS_UNIX_SHARED_MEMORY_DIRECTORIES");
    if (!s || !*s)
        s = "/dev/shm";
    for (;;) {
        while (*s == ' ')
            s++;
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        while (n && s[n - 1] == ' ')
            n--;
        if (n && i-- == 0) {
            if (n >= size)
                return 0;
            memcpy(buf, s, n);
            buf[n] = 0;
            return 1;
        }
        if (!e)
            return 0;
        s = e + 1;
    }
}

/* A map name is a single path component. */
static int valid_name(const char *name)
{
    return name && *name && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..");
}

static int read_all(int fd, void *p, size_t n, off_t off)
{
    while (n) {
        ssize_t r = pread(fd, p, n, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p = (char *)p + r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

int azf__shmem_read(const char *name, int64_t offset, int64_t count, char **out, size_t *len,
                    azf__errmsg *err)
{
    if (!valid_name(name))
        return azf__err(err, AZF_E_INVALID, "invalid shared memory map name '%s'",
                        name ? name : "");
    char dir[4096], path[4200];
    int fd = -1;
    for (size_t i = 0; fd < 0 && dir_at(i, dir, sizeof dir); i++) {
        snprintf(path, sizeof path, "%s/" SUBDIR "/%s", dir, name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0)
        return azf__err(err, AZF_E_NOTFOUND, "shared memory map '%s' does not exist", name);
    struct stat st;
    unsigned char h[HEADER];
    int rc = 0;
    if (fstat(fd, &st) || st.st_size < HEADER || read_all(fd, h, HEADER, 0) || h[0] != 1) {
        rc = azf__err(err, AZF_E_PARSE, "shared memory map '%s' is not initialised", name);
        goto done;
    }
    uint64_t u = 0;
    for (int b = 8; b >= 1; b--)
        u = u << 8 | h[b];
    int64_t content = (int64_t)u;
    if (content < 0 || content > st.st_size - HEADER) {
        rc = azf__err(err, AZF_E_PARSE,
                      "shared memory map '%s' has a bad content length %lld (file size %lld)", name,
                      (long long)content, (long long)st.st_size);
        goto done;
    }
    if (offset < 0 || count < 0 || offset > content || count > content - offset) {
        rc = azf__err(err, AZF_E_PARSE,
                      "offset %lld and count %lld are outside the %lld bytes of shared memory "
                      "map '%s'",
                      (long long)offset, (long long)count, (long long)content, name);
        goto done;
    }
    char *p = azf__malloc((size_t)count + 1);
    if (!p) {
        rc = AZF_E_NOMEM;
        goto done;
    }
    if (read_all(fd, p, (size_t)count, (off_t)(HEADER + offset))) {
        azf__free(p);
        rc = azf__err(err, AZF_E_IO, "cannot read shared memory map '%s'", name);
        goto done;
    }
    p[count] = 0;
    *out = p;
    *len = (size_t)count;
done:
    close(fd);
    return rc;
}

static int write_all(int fd, const void *p, size_t n)
{
    while (n) {
        ssize_t r = write(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p = (const char *)p + r;
        n -= (size_t)r;
    }
    return 0;
}

/* mkdir -p: 0 when path is a directory afterwards. */
static int make_dirs(char *path)
{
    for (char *p = path + 1;; p++)
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            int bad = mkdir(path, 0777) && errno != EEXIST;
            *p = c;
            if (bad)
                return -1;
            if (!c)
                break;
        }
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

int azf__shmem_write(const void *data, size_t len, char name[37], azf__errmsg *err)
{
    if ((uint64_t)len > AZF__SHMEM_MAX)
        return azf__err(err, AZF_E_INVALID, "%zu bytes are too many for shared memory", len);
    unsigned char u[16];
    if (getrandom(u, sizeof u, 0) != (ssize_t)sizeof u)
        return azf__err(err, AZF_E_IO, "no random bytes for a map name");
    u[6] = (u[6] & 0x0f) | 0x40; /* version 4 */
    u[8] = (u[8] & 0x3f) | 0x80; /* RFC 4122 variant */
    snprintf(name, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
             u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
             u[14], u[15]);
    /* The first directory where AzureFunctions exists or can be made, as the official
     * worker picks it. */
    char dir[4096], path[4200];
    int fd = -1;
    for (size_t i = 0; fd < 0 && dir_at(i, dir, sizeof dir); i++) {
        snprintf(path, sizeof path, "%s/" SUBDIR, dir);
        if (make_dirs(path))
            continue;
        snprintf(path, sizeof path, "%s/" SUBDIR "/%s", dir, name);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    }
    if (fd < 0)
        return azf__err(err, AZF_E_IO, "cannot create a map in any shared memory directory (%s)",
                        getenv("FUNCTIONS_UNIX_SHARED_MEMORY_DIRECTORIES")
                            ? getenv("FUNCTIONS_UNIX_SHARED_MEMORY_DIRECTORIES")
                            : "/dev/shm");
    unsigned char h[HEADER] = {1};
    for (int b = 0; b < 8; b++)
        h[1 + b] = (unsigned char)((uint64_t)len >> (8 * b));
    int bad = write_all(fd, h, HEADER) || write_all(fd, data, len);
    if (close(fd))
        bad = 1;
    if (bad) {
        unlink(path);
        return azf__err(err, AZF_E_IO, "cannot write %s", path);
    }
    return 0;
}

int azf__shmem_delete(const char *name)
{
    char dir[4096], path[4200];
    if (!valid_name(name))
        return AZF_E_IO;
    for (size_t i = 0; dir_at(i, dir, sizeof dir); i++) {
        snprintf(path, sizeof path, "%s/" SUBDIR "/%s", dir, name);
        if (unlink(path) == 0)
            return 0;
    }
    return AZF_E_IO;
}

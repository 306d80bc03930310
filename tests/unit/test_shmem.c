/* Shared-memory map files (src/worker/shmem.c) on temporary directories. */
#include "azf_test.h"
#include "common/common_internal.h"
#include "worker/shmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir1[64], dir2[64];

/* Writes <dir>/AzureFunctions/<name>: flag, little-endian length, content. */
static void put_map(const char *dir, const char *name, int flag, int64_t len, const char *content,
                    size_t n)
{
    char path[256];
    snprintf(path, sizeof path, "%s/AzureFunctions", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/AzureFunctions/%s", dir, name);
    FILE *f = fopen(path, "wb");
    fputc(flag, f);
    for (int b = 0; b < 8; b++)
        fputc((int)(((uint64_t)len >> (8 * b)) & 0xff), f);
    fwrite(content, 1, n, f);
    fclose(f);
}

static int read_rc(const char *name, int64_t off, int64_t count, azf__errmsg *e)
{
    char *p = NULL;
    size_t n = 0;
    int rc = azf__shmem_read(name, off, count, &p, &n, e);
    azf__free(p);
    return rc;
}

int main(void)
{
    strcpy(dir1, "/tmp/azf_shm1_XXXXXX");
    strcpy(dir2, "/tmp/azf_shm2_XXXXXX");
    CHECK(mkdtemp(dir1) && mkdtemp(dir2));
    char dirs[400];
    snprintf(dirs, sizeof dirs, " %s , %s", dir1, dir2);
    setenv("FUNCTIONS_UNIX_SHARED_MEMORY_DIRECTORIES", dirs, 1);

    /* Reads from the second directory too; offset/count select the bytes. */
    put_map(dir2, "m1", 1, 5, "hello", 5);
    char *p = NULL;
    size_t n = 0;
    azf__errmsg e;
    azf__err_clear(&e);
    CHECK_INT(azf__shmem_read("m1", 1, 3, &p, &n, &e), 0);
    CHECK_INT((int)n, 3);
    CHECK_STR(p, "ell");
    azf__free(p);

    /* Missing map, bad flag, lying length, out-of-range offset/count, bad names. */
    CHECK_INT(read_rc("nope", 0, 1, &e), AZF_E_NOTFOUND);
    CHECK(strstr(e.text, "'nope' does not exist") != NULL);
    put_map(dir1, "m2", 0, 5, "hello", 5);
    CHECK_INT(read_rc("m2", 0, 5, &e), AZF_E_PARSE);
    CHECK(strstr(e.text, "not initialised") != NULL);
    put_map(dir1, "m3", 1, 50, "hello", 5);
    CHECK_INT(read_rc("m3", 0, 5, &e), AZF_E_PARSE);
    put_map(dir1, "m4", 1, -1, "hello", 5);
    CHECK_INT(read_rc("m4", 0, 5, &e), AZF_E_PARSE);
    put_map(dir1, "m5", 1, 5, "", 0); /* truncated header content */
    CHECK_INT(read_rc("m5", 0, 1, &e), AZF_E_PARSE);
    CHECK_INT(read_rc("m1", 3, 3, &e), AZF_E_PARSE);
    CHECK(strstr(e.text, "outside") != NULL);
    CHECK_INT(read_rc("m1", -1, 1, &e), AZF_E_PARSE);
    CHECK_INT(read_rc("m1", 0, -1, &e), AZF_E_PARSE);
    CHECK_INT(read_rc("m1", INT64_MAX, INT64_MAX, &e), AZF_E_PARSE);
    CHECK_INT(read_rc("m1", 5, 0, &e), 0);
    CHECK_INT(read_rc("../x", 0, 0, &e), AZF_E_INVALID);
    CHECK_INT(read_rc("", 0, 0, &e), AZF_E_INVALID);

    /* Writes go to the first directory, read back, delete once. */
    char name[37];
    CHECK_INT(azf__shmem_write("payload", 7, name, &e), 0);
    CHECK_INT((int)strlen(name), 36);
    CHECK(name[14] == '4' && name[8] == '-');
    char path[256];
    snprintf(path, sizeof path, "%s/AzureFunctions/%s", dir1, name);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size == 9 + 7);
    CHECK_INT(azf__shmem_read(name, 0, 7, &p, &n, &e), 0);
    CHECK_STR(p, "payload");
    azf__free(p);
    CHECK_INT(azf__shmem_delete(name), 0);
    CHECK(stat(path, &st) != 0);
    CHECK_INT(azf__shmem_delete(name), AZF_E_IO);

    /* is_envvar_true semantics. */
    static const struct {
        const char *v;
        int on;
    } env[] = {{"1", 1}, {" TRUE ", 1}, {"t", 1}, {"Yes", 1}, {"y", 1},
               {"0", 0}, {"false", 0},  {"", 0},  {"on", 0},  {"truee", 0}};
    for (size_t i = 0; i < sizeof env / sizeof env[0]; i++) {
        setenv("FUNCTIONS_WORKER_SHARED_MEMORY_DATA_TRANSFER_ENABLED", env[i].v, 1);
        CHECK_INT(azf__shmem_enabled(), env[i].on);
    }
    unsetenv("FUNCTIONS_WORKER_SHARED_MEMORY_DATA_TRANSFER_ENABLED");
    CHECK_INT(azf__shmem_enabled(), 0);

    /* Directories that cannot hold AzureFunctions are skipped (one under a regular
     * file); parents are created; none usable gives a clear I/O error. */
    char file[96], sub[200];
    snprintf(file, sizeof file, "%s/file", dir2);
    fclose(fopen(file, "w"));
    snprintf(dirs, sizeof dirs, "%s/x,%s/a/b", file, dir2);
    setenv("FUNCTIONS_UNIX_SHARED_MEMORY_DIRECTORIES", dirs, 1);
    CHECK_INT(azf__shmem_write("x", 1, name, &e), 0);
    snprintf(sub, sizeof sub, "%s/a/b/AzureFunctions/%s", dir2, name);
    CHECK(stat(sub, &st) == 0);
    CHECK_INT(azf__shmem_delete(name), 0);
    setenv("FUNCTIONS_UNIX_SHARED_MEMORY_DIRECTORIES", file, 1);
    CHECK_INT(azf__shmem_write("x", 1, name, &e), AZF_E_IO);
    CHECK(strstr(e.text, file) != NULL);

    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", dir1, dir2);
    CHECK(system(cmd) == 0);
    TEST_MAIN_END();
}

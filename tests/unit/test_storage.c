/* The storage client against a real Azurite started here on free loopback ports
 * (Azurite picks them: port 0). AZF_AZURITE names its executable; without it the test
 * is skipped (exit 77). Every wait is bounded. */
#include "azf_test.h"
#include "storage/storage.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t azurite_pid;
static int ports[3]; /* blob, queue, table */

static void stop_azurite(void)
{
    if (azurite_pid > 0) {
        kill(azurite_pid, SIGTERM);
        for (int i = 0; i < 100 && waitpid(azurite_pid, NULL, WNOHANG) == 0; i++)
            usleep(50000);
        kill(azurite_pid, SIGKILL);
        waitpid(azurite_pid, NULL, 0);
        azurite_pid = 0;
    }
}

/* Starts Azurite with its data in dir and its output in dir/azurite.log (a file, not a
 * pipe: Azurite keeps logging); reads its "listening at" lines (30 s at most). */
static int start_azurite(const char *exe, const char *dir)
{
    char log[512];
    snprintf(log, sizeof log, "%s/azurite.log", dir);
    azurite_pid = fork();
    if (azurite_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive a test that was killed */
        FILE *f = freopen(log, "w", stdout);
        (void)f;
        execl(exe, exe, "--silent", "--disableTelemetry", "--skipApiVersionCheck", "--location",
              dir, "--blobHost", "127.0.0.1", "--blobPort", "0", "--queueHost", "127.0.0.1",
              "--queuePort", "0", "--tableHost", "127.0.0.1", "--tablePort", "0", (char *)NULL);
        _exit(127);
    }
    static const char *const names[3] = {"Blob", "Queue", "Table"};
    int found = 0;
    for (int tries = 0; tries < 300 && found < 3; tries++) {
        usleep(100000);
        char buf[4096] = "";
        FILE *f = fopen(log, "r");
        size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[len] = '\0';
        found = 0;
        for (int i = 0; i < 3; i++) {
            char key[64];
            snprintf(key, sizeof key, "Azurite %s service is successfully listening at ", names[i]);
            const char *at = strstr(buf, key);
            const char *port = at ? strchr(at + strlen(key) + 7, ':') : NULL; /* after http:// */
            ports[i] = port && strchr(port, '\n') ? atoi(port + 1) : 0;
            found += ports[i] > 0;
        }
        if (waitpid(azurite_pid, NULL, WNOHANG) != 0)
            break;
    }
    return found == 3 ? 0 : -1;
}

static azf__storage *connect_account(void)
{
    char cs[512];
    snprintf(cs, sizeof cs,
             "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
             "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
             "K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:%d/devstoreaccount1;"
             "QueueEndpoint=http://127.0.0.1:%d/devstoreaccount1;"
             "TableEndpoint=http://127.0.0.1:%d/devstoreaccount1;",
             ports[0], ports[1], ports[2]);
    azf__storage *st = NULL;
    azf__errmsg err = {{0}};
    CHECK_INT(azf__storage_new(&st, cs, &err), 0);
    return st;
}

static void test_connection_strings(void)
{
    azf__storage *st = NULL;
    azf__errmsg err = {{0}};
    CHECK_INT(azf__storage_new(&st, "UseDevelopmentStorage=true", &err), 0);
    CHECK(azf__storage_is_development(st));
    CHECK_STR(azf__storage_endpoint(st, AZF__QUEUE), "http://127.0.0.1:10001/devstoreaccount1");
    azf__storage_free(st);
    st = NULL;
    CHECK_INT(azf__storage_new(&st,
                               "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;"
                               "EndpointSuffix=core.example.net",
                               &err),
              0);
    CHECK_STR(azf__storage_endpoint(st, AZF__BLOB), "https://acct.blob.core.example.net");
    azf__storage_free(st);
    st = NULL;
    CHECK_INT(azf__storage_new(&st, "AccountName=acct", &err), AZF_E_PARSE);
    CHECK(strstr(err.text, "AccountKey") != NULL);
    CHECK_INT(azf__storage_new(&st, "AccountName=acct;AccountKey=not*base64", &err), AZF_E_PARSE);
    CHECK_INT(azf__storage_new(&st, "garbage", &err), AZF_E_PARSE);
    CHECK(st == NULL);
}

static void test_queue(azf__storage *st)
{
    azf__errmsg err = {{0}};
    azf__queue_message *m = NULL;
    size_t n = 0;
    CHECK_INT(azf__queue_get(st, "missing-queue", 1, 30, &m, &n, &err), AZF_E_NOTFOUND);
    CHECK(strstr(err.text, "QueueNotFound") != NULL);
    CHECK_INT(azf__queue_create(st, "work", &err), 0);
    CHECK_INT(azf__queue_create(st, "work", &err), 0); /* existing: fine */
    CHECK_INT(azf__queue_put(st, "work", "one <&> \"two\"", 0, 0, &err), 0);
    CHECK_INT(azf__queue_put(st, "work", "second", 0, -1, &err), 0);

    CHECK_INT(azf__queue_peek(st, "work", 32, &m, &n, &err), 0);
    CHECK_INT(n, 2);
    CHECK_STR(n ? m[0].text : NULL, "one <&> \"two\"");
    CHECK_INT(n ? m[0].dequeue_count : -1, 0);
    azf__queue_messages_free(m, n);

    CHECK_INT(azf__queue_get(st, "work", 1, 60, &m, &n, &err), 0);
    CHECK_INT(n, 1);
    if (n == 1) {
        CHECK_STR(m[0].text, "one <&> \"two\"");
        CHECK_INT(m[0].dequeue_count, 1);
        CHECK(strlen(m[0].insertion_time) == 25 && strstr(m[0].insertion_time, "+00:00"));
        CHECK(m[0].pop_receipt && *m[0].pop_receipt);
        char old_receipt[128];
        snprintf(old_receipt, sizeof old_receipt, "%s", m[0].pop_receipt);
        char old_visible[32];
        memcpy(old_visible, m[0].next_visible_time, 32);
        /* make it visible again at once: the next get sees it with DequeueCount 2 */
        CHECK_INT(azf__queue_update(st, "work", &m[0], 0, &err), 0);
        CHECK(strcmp(old_receipt, m[0].pop_receipt) != 0);
        azf__queue_message *again = NULL;
        size_t k = 0;
        CHECK_INT(azf__queue_get(st, "work", 32, 60, &again, &k, &err), 0);
        CHECK_INT(k, 2);
        int seen = 0;
        for (size_t i = 0; i < k; i++) {
            if (strcmp(again[i].text, "one <&> \"two\"") == 0) {
                CHECK_INT(again[i].dequeue_count, 2);
                seen++;
            }
            CHECK_INT(azf__queue_delete(st, "work", &again[i], &err), 0);
        }
        CHECK_INT(seen, 1);
        /* the old receipt is stale now */
        CHECK(azf__queue_delete(st, "work", &m[0], &err) != 0);
        azf__queue_messages_free(again, k);
    }
    azf__queue_messages_free(m, n);
    CHECK_INT(azf__queue_peek(st, "work", 32, &m, &n, &err), 0);
    CHECK_INT(n, 0);
    azf__queue_messages_free(m, n);
}

static void test_blob(azf__storage *st)
{
    azf__errmsg err = {{0}};
    azf_buf data = AZF_BUF_INIT;
    azf__blob_props p;
    CHECK_INT(azf__container_create(st, "samples", &err), 0);
    CHECK_INT(azf__container_create(st, "samples", &err), 0);
    CHECK_INT(azf__blob_get(st, "samples", "nope.txt", &data, &p, &err), AZF_E_NOTFOUND);
    CHECK_INT(azf__blob_put(st, "samples", "in/a b.txt", "hello", 5, "text/plain", &err), 0);
    CHECK_INT(azf__blob_put(st, "samples", "in/c.bin", "\0\1\2", 3, NULL, &err), 0);
    CHECK_INT(azf__blob_put(st, "samples", "other.txt", "x", 1, NULL, &err), 0);
    CHECK_INT(azf__blob_get(st, "samples", "in/a b.txt", &data, &p, &err), 0);
    CHECK_STR(data.ptr, "hello");
    CHECK_INT(p.length, 5);
    CHECK_STR(p.content_type, "text/plain");
    CHECK(p.etag && *p.etag);
    char etag[128];
    snprintf(etag, sizeof etag, "%s", p.etag ? p.etag : "");
    azf__blob_props_clear(&p);

    azf__blob_props *items = NULL;
    size_t n = 0;
    CHECK_INT(azf__blob_list(st, "samples", "in/", &items, &n, &err), 0);
    CHECK_INT(n, 2);
    CHECK_STR(n ? items[0].name : NULL, "in/a b.txt");
    CHECK_STR(n ? items[0].etag : NULL, etag);
    CHECK_INT(n > 1 ? items[1].length : 0, 3);
    azf__blob_list_free(items, n);
    CHECK_INT(azf__blob_list(st, "samples", NULL, &items, &n, &err), 0);
    CHECK_INT(n, 3);
    azf__blob_list_free(items, n);

    /* a rewrite changes the ETag */
    CHECK_INT(azf__blob_put(st, "samples", "in/a b.txt", "hello again", 11, "text/plain", &err), 0);
    CHECK_INT(azf__blob_get(st, "samples", "in/a b.txt", &data, &p, &err), 0);
    CHECK_STR(data.ptr, "hello again");
    CHECK(p.etag && strcmp(p.etag, etag) != 0);
    azf__blob_props_clear(&p);
    azf_buf_dispose(&data);
}

static void test_table(azf__storage *st)
{
    azf__errmsg err = {{0}};
    char *json = NULL;
    CHECK_INT(azf__table_create(st, "people", &err), 0);
    CHECK_INT(azf__table_create(st, "people", &err), 0);
    CHECK_INT(azf__table_insert(st, "people",
                                "{\"PartitionKey\":\"p1\",\"RowKey\":\"1\",\"Name\":\"Ann\"}",
                                &err),
              0);
    CHECK_INT(azf__table_insert(st, "people",
                                "{\"PartitionKey\":\"p1\",\"RowKey\":\"1\",\"Name\":\"Bob\"}",
                                &err),
              AZF_E_EXISTS);
    CHECK_INT(azf__table_upsert(st, "people",
                                "{\"PartitionKey\":\"p1\",\"RowKey\":\"1\",\"Name\":\"Bob\"}",
                                &err),
              0);
    CHECK_INT(azf__table_upsert(st, "people",
                                "{\"PartitionKey\":\"p1\",\"RowKey\":\"it's\",\"Name\":\"Cy\"}",
                                &err),
              0);
    CHECK_INT(azf__table_upsert(st, "people",
                                "{\"PartitionKey\":\"p2\",\"RowKey\":\"3\",\"Name\":\"Di\"}", &err),
              0);
    CHECK_INT(azf__table_insert(st, "people", "[1]", &err), AZF_E_INVALID);

    CHECK_INT(azf__table_get(st, "people", "p1", "1", &json, &err), 0);
    cJSON *o = cJSON_Parse(json);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o, "Name")), "Bob");
    CHECK(cJSON_GetObjectItem(o, "odata.etag") == NULL);
    cJSON_Delete(o);
    azf__free(json);
    CHECK_INT(azf__table_get(st, "people", "p1", "it's", &json, &err), 0);
    azf__free(json);
    CHECK_INT(azf__table_get(st, "people", "p1", "none", &json, &err), AZF_E_NOTFOUND);

    CHECK_INT(azf__table_query(st, "people", "PartitionKey eq 'p1'", 0, &json, &err), 0);
    o = cJSON_Parse(json);
    CHECK_INT(cJSON_GetArraySize(o), 2);
    cJSON_Delete(o);
    azf__free(json);
    CHECK_INT(azf__table_query(st, "people", NULL, 1, &json, &err), 0);
    o = cJSON_Parse(json);
    CHECK_INT(cJSON_GetArraySize(o), 1);
    cJSON_Delete(o);
    azf__free(json);
}

static void test_bad_key(void)
{
    char cs[512];
    snprintf(cs, sizeof cs,
             "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5a2V5;"
             "QueueEndpoint=http://127.0.0.1:%d/devstoreaccount1",
             ports[1]);
    azf__storage *st = NULL;
    azf__errmsg err = {{0}};
    CHECK_INT(azf__storage_new(&st, cs, &err), 0);
    CHECK_INT(azf__queue_create(st, "denied", &err), AZF_E_PROTOCOL);
    CHECK(strstr(err.text, "403") != NULL);
    azf__storage_free(st);
}

int main(void)
{
    test_connection_strings();
    const char *exe = getenv("AZF_AZURITE");
    if (!exe || access(exe, X_OK) != 0) {
        printf("AZF_AZURITE is not an executable: skipped (scripts/setup.sh installs Azurite)\n");
        return 77;
    }
    char dir[] = "/tmp/azf-azurite-XXXXXX";
    if (!mkdtemp(dir) || start_azurite(exe, dir) != 0) {
        stop_azurite();
        fprintf(stderr, "cannot start Azurite\n");
        return 1;
    }
    azf__storage *st = connect_account();
    if (st) {
        azf__storage_set_timeout_ms(st, 20000);
        test_queue(st);
        test_blob(st);
        test_table(st);
        test_bad_key();
    }
    azf__storage_free(st);
    stop_azurite();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    TEST_MAIN_END();
}

/* W3C traceparent for the local runner (src/host/trace_context.c). */
#include "azf_test.h"
#include "host/trace_context.h"

static int is_version00(const char *tp)
{
    if (strlen(tp) != AZF__TRACE_PARENT_LEN || strncmp(tp, "00-", 3) || tp[35] != '-' ||
        tp[52] != '-')
        return 0;
    for (int i = 3; i < AZF__TRACE_PARENT_LEN; i++)
        if (i != 35 && i != 52 && !strchr("0123456789abcdef", tp[i]))
            return 0;
    return strncmp(tp + 3, "00000000000000000000000000000000", 32) &&
           strncmp(tp + 36, "0000000000000000", 16);
}

static void expect_new(const char *incoming)
{
    char out[AZF__TRACE_PARENT_LEN + 1];
    CHECK_INT(azf__trace_parent_new(incoming, out), 0);
    CHECK(is_version00(out));
    CHECK(!strcmp(out + 53, "01")); /* a new trace is sampled */
    if (incoming && strlen(incoming) > 35)
        CHECK(strncmp(out + 3, incoming + 3, 32) != 0);
}

int main(void)
{
    const char *in = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    char a[AZF__TRACE_PARENT_LEN + 1], b[AZF__TRACE_PARENT_LEN + 1];

    /* Continued: same trace id and flags, a new span id each time. */
    CHECK_INT(azf__trace_parent_new(in, a), 1);
    CHECK(is_version00(a));
    CHECK(!strncmp(a, in, 36));
    CHECK(strncmp(a + 36, in + 36, 16) != 0);
    CHECK_STR(a + 53, "00");
    CHECK_INT(azf__trace_parent_new(in, b), 1);
    CHECK(strcmp(a, b) != 0);

    /* A later version with more fields is read by its first four. */
    CHECK_INT(
        azf__trace_parent_new("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz", a), 1);
    CHECK(!strncmp(a + 3, in + 3, 32));
    CHECK_STR(a + 53, "01");

    /* Invalid: a new trace. */
    expect_new(NULL);
    expect_new("");
    expect_new("garbage");
    expect_new("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01");  /* upper case */
    expect_new("00-00000000000000000000000000000000-00f067aa0ba902b7-01");  /* zero trace */
    expect_new("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01");  /* zero span */
    expect_new("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");  /* version ff */
    expect_new("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-"); /* 00 is exact */
    expect_new("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"); /* no '-' after */
    expect_new("00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01");
    TEST_MAIN_END();
}

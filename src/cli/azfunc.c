/* azfunc: the command-line tool. Each subcommand is one entry of `commands`. */
#include "azfunc/azfunc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct command {
    const char *name;
    const char *args;
    const char *summary;
    int (*run)(int argc, char **argv);
} command;

/* Options shared by decode and encode. */
typedef struct io_opts {
    const char *path; /* NULL or "-": stdin */
    size_t max_len;
} io_opts;

static int usage_error(const char *cmd, const char *msg, const char *arg)
{
    fprintf(stderr, "azfunc %s: %s%s%s\nTry 'azfunc --help'.\n", cmd, msg, arg ? ": " : "",
            arg ? arg : "");
    return 2;
}

static int parse_io_opts(const char *cmd, int argc, char **argv, io_opts *o)
{
    o->path = NULL;
    o->max_len = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        if (strncmp(a, "--max-message-length=", 21) == 0) {
            val = a + 21;
        } else if (strcmp(a, "--max-message-length") == 0) {
            if (++i == argc)
                return usage_error(cmd, "missing value for", a);
            val = argv[i];
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage_error(cmd, "unknown option", a);
        } else if (o->path) {
            return usage_error(cmd, "more than one input file", a);
        } else {
            o->path = a;
            continue;
        }
        char *end;
        errno = 0;
        unsigned long long n = strtoull(val, &end, 10);
        if (errno || *end || !*val || val[0] == '-' || n == 0 || n > AZF_FRAME_MAX_LENGTH)
            return usage_error(cmd, "--max-message-length wants 1 to 2147483647", val);
        o->max_len = (size_t)n;
    }
    return 0;
}

static FILE *open_input(const char *cmd, const char *path)
{
    if (!path || strcmp(path, "-") == 0)
        return stdin;
    FILE *f = fopen(path, "rb");
    if (!f)
        fprintf(stderr, "azfunc %s: cannot open %s: %s\n", cmd, path, strerror(errno));
    return f;
}

/* gRPC frames in, one JSON object per line out. */
static int cmd_decode(int argc, char **argv)
{
    io_opts o;
    int rc = parse_io_opts("decode", argc, argv, &o);
    if (rc)
        return rc;
    FILE *in = open_input("decode", o.path);
    if (!in)
        return 1;
    azf_frame_reader *r = NULL;
    azf_message *m = NULL;
    azf_buf json = AZF_BUF_INIT;
    size_t cap = 1 << 20;
    uint8_t *chunk = malloc(cap);
    if (!chunk || azf_frame_reader_new(&r, o.max_len) || azf_message_new(&m)) {
        fprintf(stderr, "azfunc decode: out of memory\n");
        rc = 1;
        goto done;
    }
    size_t offset = 0;      /* bytes consumed so far */
    size_t frame_start = 0; /* offset of the current frame */
    unsigned long index = 0;
    for (;;) {
        size_t n = fread(chunk, 1, cap, in);
        if (n == 0) {
            if (ferror(in)) {
                fprintf(stderr, "azfunc decode: read error at byte %zu: %s\n", offset,
                        strerror(errno));
                rc = 1;
            } else if (azf_frame_reader_pending(r)) {
                fprintf(stderr,
                        "azfunc decode: frame %lu at byte %zu: truncated: input ended after %zu "
                        "bytes of the frame\n",
                        index, frame_start, azf_frame_reader_pending(r));
                rc = 1;
            }
            break;
        }
        size_t pos = 0;
        while (pos < n) {
            size_t used = 0;
            int frc = azf_frame_reader_feed(r, chunk + pos, n - pos, &used);
            pos += used;
            offset += used;
            if (frc < 0) {
                fprintf(stderr, "azfunc decode: frame %lu at byte %zu: %s\n", index, frame_start,
                        azf_frame_reader_errmsg(r));
                rc = 1;
                goto done;
            }
            if (frc == 0)
                continue;
            const uint8_t *data;
            size_t len;
            azf_frame_reader_message(r, &data, &len);
            json.size = 0;
            int drc = azf_message_decode(m, data, len);
            if (drc == 0)
                drc = azf_message_to_json(m, &json);
            if (drc) {
                fprintf(stderr, "azfunc decode: frame %lu at byte %zu: %s\n", index, frame_start,
                        drc == AZF_E_NOMEM ? azf_strerror(drc) : azf_message_errmsg(m));
                rc = 1;
                goto done;
            }
            azf_buf_append(&json, "\n", 1);
            fwrite(json.ptr, 1, json.size, stdout);
            index++;
            frame_start = offset;
        }
    }
done:
    if (fflush(stdout) != 0 && !rc) {
        fprintf(stderr, "azfunc decode: write error: %s\n", strerror(errno));
        rc = 1;
    }
    if (in != stdin)
        fclose(in);
    free(chunk);
    azf_buf_dispose(&json);
    azf_message_free(m);
    azf_frame_reader_free(r);
    return rc;
}

/* Reads a whole stream into memory. */
static int read_all(FILE *in, azf_buf *out)
{
    char tmp[1 << 16];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, in)) > 0)
        if (azf_buf_append(out, tmp, n))
            return AZF_E_NOMEM;
    return ferror(in) ? AZF_E_IO : 0;
}

/* One JSON object per line in, gRPC frames out. Blank lines are skipped. */
static int cmd_encode(int argc, char **argv)
{
    io_opts o;
    int rc = parse_io_opts("encode", argc, argv, &o);
    if (rc)
        return rc;
    FILE *in = open_input("encode", o.path);
    if (!in)
        return 1;
    azf_buf text = AZF_BUF_INIT, frame = AZF_BUF_INIT;
    azf_message *m = NULL;
    if ((rc = read_all(in, &text)) || (rc = azf_message_new(&m))) {
        fprintf(stderr, "azfunc encode: %s\n", rc == AZF_E_IO ? strerror(errno) : azf_strerror(rc));
        rc = 1;
        goto done;
    }
    size_t max_len = o.max_len ? o.max_len : AZF_FRAME_MAX_LENGTH;
    unsigned long line = 0;
    for (size_t pos = 0; pos < text.size;) {
        const char *s = text.ptr + pos;
        const char *nl = memchr(s, '\n', text.size - pos);
        size_t len = nl ? (size_t)(nl - s) : text.size - pos;
        pos += len + (nl ? 1 : 0);
        line++;
        size_t k = 0;
        while (k < len && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r'))
            k++;
        if (k == len)
            continue;
        frame.size = 0;
        int erc = azf_message_from_json(m, s, len);
        if (erc == 0)
            erc = azf_message_encode_frame(m, &frame);
        if (erc == 0 && frame.size - AZF_FRAME_HEADER_SIZE > max_len) {
            fprintf(stderr,
                    "azfunc encode: line %lu: message of %zu bytes is over the limit of %zu "
                    "bytes\n",
                    line, frame.size - AZF_FRAME_HEADER_SIZE, max_len);
            rc = 1;
            break;
        }
        if (erc) {
            fprintf(stderr, "azfunc encode: line %lu: %s\n", line,
                    erc == AZF_E_PARSE ? azf_message_errmsg(m) : azf_strerror(erc));
            rc = 1;
            break;
        }
        fwrite(frame.ptr, 1, frame.size, stdout);
    }
done:
    if (fflush(stdout) != 0 && !rc) {
        fprintf(stderr, "azfunc encode: write error: %s\n", strerror(errno));
        rc = 1;
    }
    if (in && in != stdin)
        fclose(in);
    azf_buf_dispose(&text);
    azf_buf_dispose(&frame);
    azf_message_free(m);
    return rc;
}

int azf__cli_start(int argc, char **argv); /* azfunc_start.c */

static const command commands[] = {
    {"decode", "[FILE|-]", "print a stream of gRPC frames as JSON, one message per line",
     cmd_decode},
    {"encode", "[FILE|-]", "turn JSON lines (one message each) into a stream of gRPC frames",
     cmd_encode},
    {"start", "[DIR] [-p PORT] [...]", "run a function app locally (docs/local-runner.md)",
     azf__cli_start},
};

static void print_help(FILE *f)
{
    fprintf(f, "usage: azfunc COMMAND [OPTIONS] [ARGS]\n"
               "       azfunc --help | --version\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %s %-10s %s\n", commands[i].name, commands[i].args, commands[i].summary);
    fprintf(f, "\noptions of decode and encode:\n"
               "  --max-message-length N  refuse messages longer than N bytes "
               "(default 2147483647)\n"
               "\nInput is read from FILE, or from standard input when FILE is - or absent;\n"
               "output goes to standard output. Messages are FunctionRpc StreamingMessages;\n"
               "JSON follows the proto3 canonical JSON mapping.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_help(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("azfunc %s\n", azf_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            /* start prints its own usage (as `func start --help` does). */
            for (int k = 2; commands[i].run != azf__cli_start && k < argc; k++) {
                if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
                    print_help(stdout);
                    return 0;
                }
            }
            if (azf_global_init() < 0) {
                fprintf(stderr, "azfunc: initialisation failed\n");
                return 1;
            }
            int rc = commands[i].run(argc - 1, argv + 1);
            azf_global_shutdown();
            return rc;
        }
    }
    fprintf(stderr, "azfunc: unknown command '%s'\nTry 'azfunc --help'.\n", argv[1]);
    return 2;
}

/* azfunc-worker: the executable the Functions host starts (host-protocol §2.1). */
#include "azfunc/worker.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: azfunc-worker --functions-uri URI --functions-worker-id ID --functions-request-id ID\n"
    "                     [--functions-grpc-max-message-length N] [options]\n"
    "   or: azfunc-worker --host HOST --port PORT --workerId ID --requestId ID\n"
    "                     [--grpcMaxMessageLength N] [options]\n"
    "\n"
    "The libazfunc language worker for the Azure Functions host. The host starts it\n"
    "with both families of flags; --functions-* values win. Unknown flags are ignored.\n"
    "\n"
    "options:\n"
    "  --tls-ca-file FILE      trust anchors for an https:// host (env AZF_TLS_CA_FILE)\n"
    "  --tls-ca-dir DIR        directory of trust anchors (env AZF_TLS_CA_DIR)\n"
    "  --tls-cert FILE         client certificate for mutual TLS (env AZF_TLS_CERT)\n"
    "  --tls-key FILE          its private key (env AZF_TLS_KEY)\n"
    "  --tls-server-name NAME  SNI and expected certificate name (env AZF_TLS_SERVER_NAME)\n"
    "  --tls-insecure          do not verify the host's certificate (env AZF_TLS_INSECURE=1)\n"
    "  --connect-timeout-ms MS bound on reaching the host (default 5000)\n"
    "  --help                  this text\n"
    "  --version               the version\n"
    "\n"
    "Exit status: 0 after WorkerTerminate or a normal end of the stream, 1 when the\n"
    "host cannot be reached or the conversation fails, 2 for bad arguments.\n";

static void log_to_stderr(int level, const char *message, void *ud)
{
    (void)ud;
    if (level >= AZF_LOG_WARNING)
        fprintf(stderr, "azfunc-worker: %s\n", message);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("azfunc-worker %s\n", azf_version());
            return 0;
        }
    }
    /* Socket writes must not kill the process when the host goes away. */
    signal(SIGPIPE, SIG_IGN);
    azf_global_init();
    azf_set_log_callback(log_to_stderr, NULL);
    azf_worker_opts *opts;
    if (azf_worker_opts_new(&opts)) {
        fprintf(stderr, "azfunc-worker: out of memory\n");
        return 1;
    }
    int rc = azf_worker_opts_from_args(opts, argc, (const char *const *)argv);
    if (rc) {
        fprintf(stderr, "azfunc-worker: %s\n(try --help)\n", azf_worker_opts_errmsg(opts));
        azf_worker_opts_free(opts);
        return 2;
    }
    azf_worker *w;
    rc = azf_worker_new(&w, opts);
    azf_worker_opts_free(opts);
    if (rc) {
        fprintf(stderr, "azfunc-worker: cannot start: %s\n", azf_strerror(rc));
        return 1;
    }
    rc = azf_worker_run(w);
    if (rc)
        fprintf(stderr, "azfunc-worker: error: %s\n", azf_worker_errmsg(w));
    else
        fprintf(stderr, "azfunc-worker: %s\n", azf_worker_errmsg(w));
    azf_worker_free(w);
    azf_global_shutdown();
    return rc ? 1 : 0;
}

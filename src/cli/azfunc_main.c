/* A minimal `azfunc` entry point that dispatches `start`; the lead merges it into the
 * subcommand table of src/cli/azfunc.c (branch codec). */
#include <stdio.h>
#include <string.h>

int azf__cli_start(int argc, char **argv);

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "start") == 0)
        return azf__cli_start(argc - 1, argv + 1);
    fprintf(stderr, "usage: azfunc start [DIR] [--port PORT] [--host ADDRESS]\n");
    return 2;
}

/* `azfunc start`, watching the app's files (in the supervisor): inotify on every folder
 * of the app but the ones no edit of the app's code touches (a venv, installed
 * packages, bytecode, the runner's own data). A change to a file the index depends on
 * starts a quiet period; the reload happens once it has passed, so a burst of writes
 * (an editor's save, a git checkout) restarts the app once. */
#include "host/runner_internal.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

enum { QUIET_MS = 300 };

struct azf__watch {
    int fd;
    long long due;  /* -1: no change pending */
    int new_folder; /* a folder appeared: watch the tree again (adding is idempotent) */
    char dir[];
};

static int ignored(const char *name)
{
    static const char *const skip[] = {".venv",   "venv", ".python_packages", "__pycache__",
                                       ".azfunc", ".git", "node_modules"};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (strcmp(name, skip[i]) == 0)
            return 1;
    return 0;
}

/* The files the index depends on. */
static int relevant(const char *name)
{
    size_t n = strlen(name);
    return (n > 3 && strcmp(name + n - 3, ".py") == 0) || strcmp(name, "function.json") == 0 ||
           strcmp(name, "host.json") == 0 || strcmp(name, "local.settings.json") == 0;
}

static const uint32_t EVENTS =
    IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ONLYDIR;

/* Watches dir and its folders, to a bounded depth. */
static void add_tree(azf__watch *w, const char *dir, int depth)
{
    if (depth > 16 || inotify_add_watch(w->fd, dir, EVENTS) < 0)
        return;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char path[PATH_MAX];
        if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            ignored(e->d_name))
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path)
            add_tree(w, path, depth + 1);
    }
    if (d)
        closedir(d);
}

azf__watch *azf__watch_open(const char *dir)
{
    azf__watch *w = calloc(1, sizeof *w + strlen(dir) + 1);
    if (!w || (w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0) {
        say(C_YELLOW, "Not watching the app's files for changes: %s", strerror(errno));
        free(w);
        return NULL;
    }
    w->due = -1;
    strcpy(w->dir, dir);
    add_tree(w, dir, 0);
    return w;
}

int azf__watch_fd(const azf__watch *w)
{
    return w->fd;
}

void azf__watch_read(azf__watch *w, long long now_ms)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n;
    while ((n = read(w->fd, buf, sizeof buf)) > 0) {
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *e = (const struct inotify_event *)p;
            if (e->len && ((e->mask & IN_ISDIR) ? !ignored(e->name) : relevant(e->name)))
                w->due = now_ms + QUIET_MS;
            if (e->len && (e->mask & IN_ISDIR) && (e->mask & (IN_CREATE | IN_MOVED_TO)))
                w->new_folder = 1;
            p += sizeof *e + e->len;
        }
    }
}

long long azf__watch_due(const azf__watch *w)
{
    return w->due;
}

int azf__watch_take(azf__watch *w, long long now_ms)
{
    if (w->due < 0 || now_ms < w->due)
        return 0;
    w->due = -1;
    if (w->new_folder) /* a new v1 function's folder, say: its files count too */
        add_tree(w, w->dir, 0);
    w->new_folder = 0;
    return 1;
}

void azf__watch_close_in_child(azf__watch *w)
{
    if (w)
        close(w->fd);
}

void azf__watch_free(azf__watch *w)
{
    if (w) {
        close(w->fd);
        free(w);
    }
}

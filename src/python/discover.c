/* Which Python runs: from the caller's wish, the environment and the file system
 * to one installation of one X.Y (and maybe a venv), without starting Python. */
#include "python/discover.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef AZF_LIBRARY_ARCH /* Debian's multiarch directory (CMAKE_LIBRARY_ARCHITECTURE) */
#define AZF_LIBRARY_ARCH ""
#endif

static int is_dir(const char *p)
{
    struct stat st;
    return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p)
{
    struct stat st;
    return p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* "3.12.1" or "3.12" -> "3.12"; 0 on success. */
static int major_minor(const char *text, char out[16])
{
    unsigned major, minor;
    if (!text || sscanf(text, "%u.%u", &major, &minor) != 2 || major > 9 || minor > 99)
        return -1;
    snprintf(out, 16, "%u.%u", major, minor);
    return 0;
}

/* The directory part of path ("/a/b" -> "/a"), newly allocated. */
static char *parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return azf__strdup(".");
    return azf__strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

/* The value of `key = value` in a pyvenv.cfg, newly allocated, or NULL. */
static char *cfg_value(const char *cfg, const char *key)
{
    FILE *f = fopen(cfg, "r");
    if (!f)
        return NULL;
    char line[PATH_MAX + 64], *out = NULL;
    size_t klen = strlen(key);
    while (!out && fgets(line, sizeof line, f)) {
        char *p = line + strspn(line, " \t");
        if (strncmp(p, key, klen) != 0)
            continue;
        p += klen;
        p += strspn(p, " \t");
        if (*p++ != '=')
            continue;
        p += strspn(p, " \t");
        size_t n = strcspn(p, "\r\n");
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        out = azf__strndup(p, n);
    }
    fclose(f);
    return out;
}

/* An installation from one of its python executables: the version from the file
 * name the executable resolves to (python3.12), else from <prefix>/lib/python3.N
 * when there is exactly one. 0, or -1 when it is not a recognisable CPython. */
static int installation_of(const char *exe, char version[16], char **prefix, char **real_exe)
{
    char real[PATH_MAX];
    if (!realpath(exe, real) || !is_file(real))
        return -1;
    char *bin = parent(real), *pre = bin ? parent(bin) : NULL;
    azf__free(bin);
    if (!pre)
        return -1;
    const char *base = strrchr(real, '/') + 1;
    int ok = strncmp(base, "python", 6) == 0 && major_minor(base + 6, version) == 0;
    if (!ok) {
        char *lib = azf__asprintf("%s/lib", pre);
        DIR *d = lib ? opendir(lib) : NULL;
        int found = 0;
        for (struct dirent *e; d && (e = readdir(d));) {
            char v[16], *os_py = NULL;
            if (strncmp(e->d_name, "python", 6) == 0 && major_minor(e->d_name + 6, v) == 0 &&
                (os_py = azf__asprintf("%s/%s/os.py", lib, e->d_name)) && is_file(os_py)) {
                memcpy(version, v, sizeof v);
                found++;
            }
            azf__free(os_py);
        }
        if (d)
            closedir(d);
        azf__free(lib);
        ok = found == 1;
    }
    if (!ok || !(*real_exe = azf__strdup(real))) {
        azf__free(pre);
        return -1;
    }
    *prefix = pre;
    return 0;
}

/* A shared libpython of the installation, or NULL (a static build). */
static char *find_libpython(const char *prefix, const char *version)
{
    const char *dirs[] = {"lib", "lib/" AZF_LIBRARY_ARCH, "lib64"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char *p = azf__asprintf("%s/%s/libpython%s.so.1.0", prefix, dirs[i], version);
        if (p && is_file(p))
            return p;
        azf__free(p);
    }
    return NULL;
}

/* The venv that dir is, if it is one (it has a pyvenv.cfg). */
static int is_venv(const char *dir)
{
    char *cfg = azf__asprintf("%s/pyvenv.cfg", dir);
    int yes = cfg && is_file(cfg);
    azf__free(cfg);
    return yes;
}

static int set_venv(azf__py_choice *c, const char *dir, const char *why)
{
    char real[PATH_MAX];
    const char *d = realpath(dir, real) ? real : dir;
    azf__free(c->venv);
    azf__free(c->venv_source);
    c->venv = azf__strdup(d);
    c->venv_source = azf__strdup(why);
    return c->venv && c->venv_source ? 0 : AZF_E_NOMEM;
}

static int set_source(azf__py_choice *c, char *text)
{
    azf__free(c->source);
    c->source = text;
    return text ? 0 : AZF_E_NOMEM;
}

/* An interpreter the caller named: a venv's python (the venv then applies) or an
 * installation's. */
static int take_interpreter(azf__py_choice *c, const char *exe, azf__errmsg *err)
{
    char *bin = parent(exe), *top = bin ? parent(bin) : NULL;
    azf__free(bin);
    if (!top)
        return azf__err(err, AZF_E_NOMEM, "out of memory");
    int rc = 0;
    if (is_venv(top)) {
        char *why = azf__asprintf("the interpreter %s", exe);
        rc = why ? set_venv(c, top, why) : AZF_E_NOMEM;
        azf__free(why);
    } else if (access(exe, X_OK) != 0) {
        rc = azf__err(err, AZF_E_NOTFOUND, "the Python interpreter %s does not exist", exe);
    } else if (installation_of(exe, c->version, &c->prefix, &c->executable) != 0) {
        rc = azf__err(err, AZF_E_INVALID, "%s is not a CPython 3 interpreter", exe);
    } else {
        rc = set_source(c, azf__asprintf("the interpreter %s", exe));
    }
    azf__free(top);
    return rc == AZF_E_NOMEM ? azf__err(err, rc, "out of memory") : rc;
}

/* The venv's version, installation and interpreter, from its pyvenv.cfg. */
static int take_venv(azf__py_choice *c, azf__errmsg *err)
{
    if (!is_dir(c->venv))
        return azf__err(err, AZF_E_NOTFOUND, "the virtual environment %s (from %s) does not exist",
                        c->venv, c->venv_source);
    char *cfg = azf__asprintf("%s/pyvenv.cfg", c->venv);
    char *home = cfg ? cfg_value(cfg, "home") : NULL;
    char *ver = cfg ? cfg_value(cfg, "version") : NULL;
    if (cfg && !ver)
        ver = cfg_value(cfg, "version_info");
    char v[16] = "", hv[16] = "", *prefix = NULL, *exe = NULL;
    int rc = 0;
    if (!cfg || !is_file(cfg)) {
        rc = azf__err(err, AZF_E_INVALID,
                      "%s (from %s) is not a virtual environment: it has no pyvenv.cfg", c->venv,
                      c->venv_source);
    } else {
        char *home_exe = home ? azf__asprintf("%s/python3", home) : NULL;
        if (home_exe && installation_of(home_exe, hv, &prefix, &exe) != 0)
            hv[0] = '\0';
        azf__free(home_exe);
        if (!ver || major_minor(ver, v) != 0)
            memcpy(v, hv, sizeof v);
        if (!*v)
            rc = azf__err(err, AZF_E_INVALID,
                          "cannot tell which Python made the virtual environment %s: its "
                          "pyvenv.cfg names no version and its home (%s) has no python3",
                          c->venv, home ? home : "not set");
    }
    if (rc == 0 && c->version[0] && strcmp(c->version, v) != 0) {
        rc = azf__err(err, AZF_E_INVALID,
                      "the virtual environment %s (from %s) is Python %s, but %s asks for "
                      "Python %s: recreate the venv with python%s -m venv, or ask for Python %s",
                      c->venv, c->venv_source, v, c->source ? c->source : "the caller", c->version,
                      c->version, v);
    }
    if (rc == 0) {
        memcpy(c->version, v, sizeof v);
        if (prefix && strcmp(hv, v) != 0) { /* home now holds another Python */
            azf__free(prefix);
            prefix = NULL;
        }
        if (!c->prefix) { /* an explicit interpreter keeps its own installation */
            c->prefix = prefix;
            prefix = NULL;
        }
        azf__free(c->executable);
        c->executable = azf__asprintf("%s/bin/python", c->venv);
        if (!c->source)
            rc = set_source(c, azf__asprintf("the virtual environment %s", c->venv));
        if (!c->executable || rc)
            rc = azf__err(err, AZF_E_NOMEM, "out of memory");
    }
    azf__free(prefix);
    azf__free(exe);
    azf__free(cfg);
    azf__free(home);
    azf__free(ver);
    return rc;
}

/* The first python3 on PATH, or NULL. */
static char *python3_on_path(void)
{
    const char *path = getenv("PATH");
    while (path && *path) {
        size_t n = strcspn(path, ":");
        char *exe = n ? azf__asprintf("%.*s/python3", (int)n, path) : NULL;
        if (exe && access(exe, X_OK) == 0 && is_file(exe))
            return exe;
        azf__free(exe);
        path += n + (path[n] == ':');
    }
    return NULL;
}

static int choose(azf__py_choice *c, const azf__py_wish *w, const char *default_version,
                  azf__errmsg *err)
{
    int rc;
    /* 1. explicit */
    if (w->interpreter && (rc = take_interpreter(c, w->interpreter, err)) != 0)
        return rc;
    if (w->version && !c->version[0]) {
        if (major_minor(w->version, c->version) != 0)
            return azf__err(err, AZF_E_INVALID, "invalid Python version \"%s\"", w->version);
        if ((rc = set_source(c, azf__strdup(w->version_source ? w->version_source
                                                              : "the version option"))) != 0)
            return azf__err(err, rc, "out of memory");
    }
    /* 2. the app's venv */
    if (!c->venv) {
        const char *env = getenv("VIRTUAL_ENV");
        rc = 0;
        if (w->venv) {
            rc = set_venv(c, w->venv, "the venv option");
        } else if (env && *env) {
            rc = set_venv(c, env, "VIRTUAL_ENV");
        } else if (w->app_dir) {
            static const char *const names[] = {".venv", "venv"};
            for (size_t i = 0; i < 2 && !c->venv && rc == 0; i++) {
                char *d = azf__asprintf("%s/%s", w->app_dir, names[i]);
                char *why = azf__asprintf("the app's %s", names[i]);
                rc = d && why ? 0 : AZF_E_NOMEM;
                if (rc == 0 && is_venv(d))
                    rc = set_venv(c, d, why);
                azf__free(d);
                azf__free(why);
            }
        }
        if (rc)
            return azf__err(err, rc, "out of memory");
    }
    if (c->venv)
        return take_venv(c, err);
    if (c->version[0])
        return 0;
    /* 3. the host's FUNCTIONS_WORKER_RUNTIME_VERSION */
    const char *fwrv = getenv("FUNCTIONS_WORKER_RUNTIME_VERSION");
    if (fwrv && *fwrv) {
        if (major_minor(fwrv, c->version) != 0)
            return azf__err(err, AZF_E_INVALID,
                            "invalid FUNCTIONS_WORKER_RUNTIME_VERSION \"%s\" (expected 3.X)", fwrv);
        rc = set_source(c, azf__strdup("FUNCTIONS_WORKER_RUNTIME_VERSION"));
        return rc ? azf__err(err, rc, "out of memory") : 0;
    }
    /* 4. python3 on PATH (a pyenv shim or other script is not an interpreter: skipped) */
    char *exe = python3_on_path();
    if (exe) {
        char *bin = parent(exe), *top = bin ? parent(bin) : NULL;
        if (top && is_venv(top)) {
            rc = set_venv(c, top, "python3 on PATH");
            if (rc == 0)
                rc = take_venv(c, err);
        } else if (installation_of(exe, c->version, &c->prefix, &c->executable) == 0) {
            rc = set_source(c, azf__asprintf("python3 on PATH (%s)", exe));
        } else {
            rc = 1; /* not recognisable: go on */
        }
        azf__free(bin);
        azf__free(top);
        azf__free(exe);
        if (rc <= 0)
            return rc == AZF_E_NOMEM ? azf__err(err, rc, "out of memory") : rc;
    }
    /* 5. the library's default */
    snprintf(c->version, sizeof c->version, "%s", default_version);
    rc = set_source(c, azf__strdup("the default Python of this libazfunc build"));
    return rc ? azf__err(err, rc, "out of memory") : 0;
}

int azf__py_choose(azf__py_choice *out, const azf__py_wish *wish, const char *default_version,
                   azf__errmsg *err)
{
    azf__py_choice c;
    memset(&c, 0, sizeof c);
    int rc = choose(&c, wish, default_version, err);
    if (rc == 0 && c.prefix && !(c.libpython = find_libpython(c.prefix, c.version))) {
        /* A static build cannot lend its libpython: the plugin's own installation of
         * the same X.Y runs (a venv still adds its site-packages). */
        azf__free(c.prefix);
        c.prefix = NULL;
    }
    if (rc != 0) {
        azf__py_choice_clear(&c);
        return rc;
    }
    *out = c;
    return 0;
}

void azf__py_choice_clear(azf__py_choice *c)
{
    if (!c)
        return;
    azf__free(c->prefix);
    azf__free(c->libpython);
    azf__free(c->executable);
    azf__free(c->venv);
    azf__free(c->venv_source);
    azf__free(c->source);
    memset(c, 0, sizeof *c);
}

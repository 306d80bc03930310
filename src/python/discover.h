/* Which Python runs (docs/local-runner.md "Which Python runs"): one rule for the
 * worker, the runner, the C API and the bindings, applied before any plugin is
 * loaded. Part of the core: no libpython. */
#ifndef AZF_PYTHON_DISCOVER_H
#define AZF_PYTHON_DISCOVER_H

#include "common/common_internal.h"

/* What the caller asked for (all borrowed, NULL = not set). */
typedef struct azf__py_wish {
    const char *interpreter;    /* a python executable (of a venv or an installation) */
    const char *version;        /* "3.12" */
    const char *version_source; /* who asks for it, for messages ("the version option") */
    const char *venv;           /* a virtual environment directory */
    const char *app_dir;        /* the app root: its .venv/ or venv/ */
} azf__py_wish;

/* The outcome: one installation of one X.Y, and maybe a venv on top of it. */
typedef struct azf__py_choice {
    char version[16];  /* "3.12" */
    char *prefix;      /* the installation (PyConfig.home), NULL: the plugin's own */
    char *libpython;   /* that installation's shared libpython, NULL: the plugin's own */
    char *executable;  /* sys.executable, or NULL */
    char *venv;        /* the venv directory, or NULL */
    char *venv_source; /* why that venv ("VIRTUAL_ENV", "the app's .venv", ...) */
    char *source;      /* why that version, for messages */
} azf__py_choice;

/* Applies the rule: an explicit interpreter or version > the venv (explicit, else
 * VIRTUAL_ENV, else .venv/ or venv/ in the app root) > FUNCTIONS_WORKER_RUNTIME_VERSION
 * > python3 on PATH > default_version. Returns 0, or AZF_E_NOTFOUND (a venv or
 * interpreter that does not exist), AZF_E_INVALID (a version mismatch, an unreadable
 * venv), AZF_E_NOMEM, with the message in err. */
int azf__py_choose(azf__py_choice *out, const azf__py_wish *wish, const char *default_version,
                   azf__errmsg *err);
void azf__py_choice_clear(azf__py_choice *c);

#endif

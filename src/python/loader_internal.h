/* What the host layer (src/host/app.c) needs of the Python loader beyond python.h. */
#ifndef AZF_PYTHON_LOADER_INTERNAL_H
#define AZF_PYTHON_LOADER_INTERNAL_H

#include "azfunc/python.h"

/* azf_python_new with opts (copied; NULL = defaults) and app_dir as the app root
 * unless opts names one. */
int azf__python_new_for_app(azf_python **out, const azf_python_opts *opts, const char *app_dir);
/* Stores message as opts' azf_python_opts_errmsg (NULL opts: nothing). */
void azf__python_opts_set_error(azf_python_opts *opts, const char *message);

#endif

/* A custom host in C: opens a Python function app in-process with libazfunc and calls
 * one HTTP-triggered function, no Functions host involved.
 *   c-host APP_DIR ROUTE [NAME]      e.g.  c-host ../hello hello Ada
 * Build against an installed libazfunc with only pkg-config (see Makefile). */
#include <azfunc/azfunc.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s APP_DIR ROUTE [NAME]\n", argv[0]);
        return 2;
    }
    azf_app *app = NULL;
    int rc = azf_app_open(&app, argv[1], NULL); /* VIRTUAL_ENV names the venv */
    if (rc != 0) {
        fprintf(stderr, "cannot open %s: %s\n", argv[1], azf_strerror(rc));
        return 1;
    }
    for (size_t i = 0; i < azf_app_function_count(app); i++) {
        const azf_function *f = azf_app_function_at(app, i);
        printf("function %s (%s)\n", azf_function_name(f),
               azf_binding_type(azf_function_trigger(f)));
    }

    /* Find the function by route, as an HTTP server would. */
    const azf_function *fn = NULL;
    azf_value_map *route = NULL;
    rc = azf_registry_match_route(azf_app_registry(app), "GET", argv[2], &fn, &route);
    if (rc != 0) {
        fprintf(stderr, "no function for GET %s: %s\n", argv[2], azf_strerror(rc));
        azf_app_free(app);
        return 1;
    }
    azf_value_map_free(route);

    azf_value *req = NULL;
    azf_invocation *inv = NULL;
    azf_value_new_http(&req);
    azf_value_http_set_method(req, "GET");
    azf_value_http_set_url(req, "http://localhost/api/hello");
    if (argc > 3)
        azf_value_http_set(req, AZF_HTTP_QUERY, "name", argv[3]);
    azf_invocation_new(&inv, fn, "c-host-1");
    azf_invocation_set_input(inv, azf_binding_name(azf_function_trigger(fn)), req);

    rc = azf_app_run(app, inv, 30000);
    int ok = rc == 0 && azf_invocation_status(inv) == AZF_INVOCATION_SUCCEEDED;
    if (ok) {
        const azf_value *res = azf_invocation_return_value(inv);
        const azf_value *body =
            azf_value_kind(res) == AZF_VALUE_HTTP ? azf_value_http_body(res) : res;
        size_t n = 0;
        const char *text = azf_value_data(body, &n);
        printf("%s %.*s\n",
               azf_value_http_status_code(res) ? azf_value_http_status_code(res) : "200", (int)n,
               text ? text : "");
    } else {
        fprintf(stderr, "invocation failed: %s\n",
                rc ? azf_strerror(rc) : azf_invocation_error_message(inv));
    }
    azf_invocation_free(inv);
    azf_app_free(app);
    return ok ? 0 : 1;
}

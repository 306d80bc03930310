/* HTTP route templates as the Functions host (ASP.NET Core routing) reads them:
 * literal segments (case-insensitive), {name}, {name?}, {name=default}, {*rest} and
 * {**rest}, and inline constraints {id:int}, {s:minlength(3):alpha}. */
#include "registry/registry_internal.h"

#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { SEG_LITERAL = 1, SEG_PARAM = 3, SEG_CATCHALL = 5 };

enum {
    C_INT,
    C_LONG,
    C_BOOL,
    C_GUID,
    C_ALPHA,
    C_DOUBLE,
    C_DECIMAL,
    C_DATETIME,
    C_MINLENGTH,
    C_MAXLENGTH,
    C_LENGTH,
    C_MIN,
    C_MAX,
    C_RANGE,
    C_REGEX,
    C_REQUIRED
};

typedef struct {
    int type;
    int64_t a, b;
    regex_t *re;
} constraint;

typedef struct {
    int kind;
    char *text; /* literal text or parameter name */
    char *dflt; /* default value, or NULL */
    int optional;
    constraint *cons;
    size_t n_cons;
} segment;

struct azf__route {
    segment *segs;
    size_t n;
};

void azf__route_free(azf__route *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        segment *s = &r->segs[i];
        azf__free(s->text);
        azf__free(s->dflt);
        for (size_t j = 0; j < s->n_cons; j++) {
            if (s->cons[j].re) {
                regfree(s->cons[j].re);
                azf__free(s->cons[j].re);
            }
        }
        azf__free(s->cons);
    }
    azf__free(r->segs);
    azf__free(r);
}

/* ---- parsing ------------------------------------------------------------------ */

typedef struct {
    const char *tmpl;
    azf__errmsg *err;
} pctx;

static int bad(pctx *p, const char *fmt, const char *arg)
{
    char reason[256];
    snprintf(reason, sizeof reason, fmt, arg ? arg : "");
    return azf__err(p->err, AZF_E_PARSE, "The route template '%s' is invalid: %s.", p->tmpl,
                    reason);
}

static int parse_int64(const char *s, size_t len, int64_t *out)
{
    char buf[32];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    const char *q = buf;
    if (*q == '+' || *q == '-')
        q++;
    if (!*q)
        return -1;
    for (; *q; q++)
        if (!isdigit((unsigned char)*q))
            return -1;
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

/* "Simple" regexes only: glibc compiles bounded repetition by copying the tree, so
 * stacked quantifiers (also .NET's lazy "*?") and large {n,m} bounds are refused
 * instead of costing gigabytes. */
static int regex_is_simple(const char *pat, size_t len)
{
    if (len > 256)
        return 0;
    int prev_quant = 0;
    long brace_weight = 0;
    for (size_t i = 0; i < len; i++) {
        char c = pat[i];
        if (c == '\\') {
            i++;
            prev_quant = 0;
            continue;
        }
        if (c == '[') { /* a bracket expression is one atom */
            size_t j = i + 1;
            if (j < len && pat[j] == '^')
                j++;
            if (j < len && pat[j] == ']')
                j++;
            while (j < len && pat[j] != ']') {
                if (pat[j] == '\\') /* POSIX brackets take '\\' literally: refuse */
                    return 0;
                j++;
            }
            if (j >= len)
                return 0;
            i = j;
            prev_quant = 0;
            continue;
        }
        int quant = c == '*' || c == '+' || c == '?' || c == '{';
        if (quant && prev_quant)
            return 0;
        if (c == '{') {
            long bound = 0;
            size_t j = i + 1;
            for (; j < len && pat[j] != '}'; j++) {
                if (pat[j] >= '0' && pat[j] <= '9') {
                    long d = pat[j] - '0';
                    bound = bound * 10 + d;
                    if (bound > 64)
                        return 0;
                } else if (pat[j] == ',') {
                    bound = 0;
                } else {
                    return 0;
                }
            }
            if (j >= len)
                return 0;
            brace_weight += bound ? bound : 1;
            if (brace_weight > 64)
                return 0;
            i = j;
        }
        prev_quant = quant;
    }
    return 1;
}

/* .NET regex shorthands that POSIX ERE lacks. */
static char *translate_regex(const char *pat, size_t len)
{
    azf_buf b = AZF_BUF_INIT;
    for (size_t i = 0; i < len; i++) {
        const char *rep = NULL;
        if (pat[i] == '\\' && i + 1 < len) {
            switch (pat[i + 1]) {
            case 'd':
                rep = "[0-9]";
                break;
            case 'D':
                rep = "[^0-9]";
                break;
            case 'w':
                rep = "[A-Za-z0-9_]";
                break;
            case 'W':
                rep = "[^A-Za-z0-9_]";
                break;
            case 's':
                rep = "[[:space:]]";
                break;
            case 'S':
                rep = "[^[:space:]]";
                break;
            default:
                break;
            }
        }
        int rc = rep ? azf_buf_append(&b, rep, strlen(rep)) : azf_buf_append(&b, &pat[i], 1);
        if (rep)
            i++;
        if (rc) {
            azf_buf_dispose(&b);
            return NULL;
        }
    }
    if (!b.ptr && azf_buf_set(&b, "", 0))
        return NULL;
    return b.ptr;
}

static int parse_constraint(pctx *p, const char *name, size_t nlen, const char *arg, size_t alen,
                            int has_arg, constraint *c)
{
    static const struct {
        const char *name;
        int type, nargs; /* nargs: 0, 1, 2, or 3 for "1 or 2", -1 for a pattern */
    } table[] = {{"int", C_INT, 0},
                 {"long", C_LONG, 0},
                 {"bool", C_BOOL, 0},
                 {"guid", C_GUID, 0},
                 {"alpha", C_ALPHA, 0},
                 {"double", C_DOUBLE, 0},
                 {"float", C_DOUBLE, 0},
                 {"decimal", C_DECIMAL, 0},
                 {"datetime", C_DATETIME, 0},
                 {"minlength", C_MINLENGTH, 1},
                 {"maxlength", C_MAXLENGTH, 1},
                 {"length", C_LENGTH, 3},
                 {"min", C_MIN, 1},
                 {"max", C_MAX, 1},
                 {"range", C_RANGE, 2},
                 {"regex", C_REGEX, -1},
                 {"required", C_REQUIRED, 0}};
    char cname[32];
    snprintf(cname, sizeof cname, "%.*s", (int)(nlen < 31 ? nlen : 31), name);
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strlen(table[i].name) != nlen || strncasecmp(table[i].name, name, nlen) != 0)
            continue;
        c->type = table[i].type;
        int nargs = table[i].nargs;
        if (nargs == 0) {
            if (has_arg)
                return bad(p, "the constraint '%s' takes no argument", cname);
            return 0;
        }
        if (!has_arg)
            return bad(p, "the constraint '%s' needs an argument", cname);
        if (nargs == -1) {
            if (!regex_is_simple(arg, alen)) {
                char shown[128];
                snprintf(shown, sizeof shown, "%.*s", (int)(alen < 100 ? alen : 100), arg);
                return bad(p, "the regex constraint pattern '%s' is not supported", shown);
            }
            char *pat = translate_regex(arg, alen);
            if (!pat)
                return AZF_E_NOMEM;
            c->re = azf__malloc(sizeof *c->re);
            if (!c->re) {
                azf__free(pat);
                return AZF_E_NOMEM;
            }
            int rc = regcomp(c->re, pat, REG_EXTENDED | REG_ICASE | REG_NOSUB);
            azf__free(pat);
            if (rc) {
                azf__free(c->re);
                c->re = NULL;
                char shown[128];
                snprintf(shown, sizeof shown, "%.*s", (int)(alen < 100 ? alen : 100), arg);
                return bad(p, "the regex constraint pattern '%s' is not supported", shown);
            }
            return 0;
        }
        const char *comma = memchr(arg, ',', alen);
        int got = comma ? 2 : 1;
        if ((nargs == 1 && got != 1) || (nargs == 2 && got != 2))
            return bad(p,
                       nargs == 1 ? "the constraint '%s' takes one integer argument"
                                  : "the constraint '%s' takes two integer arguments",
                       cname);
        size_t l1 = comma ? (size_t)(comma - arg) : alen;
        if (parse_int64(arg, l1, &c->a) || (comma && parse_int64(comma + 1, alen - l1 - 1, &c->b)))
            return bad(p, "the constraint '%s' needs integer arguments", cname);
        if (c->type == C_LENGTH && !comma)
            c->b = c->a;
        if ((c->type == C_RANGE || c->type == C_LENGTH) && c->a > c->b)
            return bad(p, "the constraint '%s' has its minimum above its maximum", cname);
        if ((c->type == C_MINLENGTH || c->type == C_MAXLENGTH || c->type == C_LENGTH) && c->a < 0)
            return bad(p, "the constraint '%s' needs a length of 0 or more", cname);
        return 0;
    }
    return bad(p, "the constraint reference '%s' could not be resolved", cname);
}

/* Parses the inside of {...} (escapes already removed) into *s. */
static int parse_param(pctx *p, const char *in, size_t len, segment *s)
{
    size_t i = 0;
    s->kind = SEG_PARAM;
    if (i < len && in[i] == '*') {
        s->kind = SEG_CATCHALL;
        i++;
        if (i < len && in[i] == '*')
            i++;
    }
    size_t name_start = i;
    while (i < len && in[i] != ':' && in[i] != '=' && in[i] != '?')
        i++;
    size_t name_len = i - name_start;
    if (name_len == 0)
        return bad(p, "a route parameter has an empty name", NULL);
    for (size_t k = name_start; k < name_start + name_len; k++)
        if (strchr("/{}*", in[k]))
            return bad(p, "a route parameter name cannot contain '/', '{', '}' or '*'", NULL);
    if (!(s->text = azf__strndup(in + name_start, name_len)))
        return AZF_E_NOMEM;
    while (i < len && in[i] == ':') {
        size_t cs = ++i;
        while (i < len && isalpha((unsigned char)in[i]))
            i++;
        size_t cl = i - cs;
        if (cl == 0)
            return bad(p, "the parameter '%s' has an empty constraint", s->text);
        const char *arg = NULL;
        size_t alen = 0;
        int has_arg = 0;
        if (i < len && in[i] == '(') {
            /* The argument runs to the ')' that ends the constraint: the last ')' before
             * the next ':', '=', '?' or the end, so regexes may contain parentheses. */
            size_t j = i + 1, close = 0;
            int depth = 1;
            for (; j < len; j++) {
                if (in[j] == '\\' && j + 1 < len) {
                    j++;
                    continue;
                }
                if (in[j] == '(')
                    depth++;
                else if (in[j] == ')' && --depth == 0) {
                    close = j;
                    break;
                }
            }
            if (!close)
                return bad(p, "the constraint of parameter '%s' has an unbalanced '('", s->text);
            arg = in + i + 1;
            alen = close - i - 1;
            has_arg = 1;
            i = close + 1;
        }
        if (azf__grow((void **)&s->cons, &(size_t){s->n_cons}, s->n_cons + 1, sizeof *s->cons))
            return AZF_E_NOMEM;
        memset(&s->cons[s->n_cons], 0, sizeof s->cons[0]);
        int rc = parse_constraint(p, in + cs, cl, arg, alen, has_arg, &s->cons[s->n_cons]);
        if (rc)
            return rc;
        s->n_cons++;
    }
    if (i < len && in[i] == '?') {
        s->optional = 1;
        i++;
    }
    if (i < len && in[i] == '=') {
        if (s->optional)
            return bad(p, "the optional parameter '%s' cannot have a default value", s->text);
        i++;
        if (!(s->dflt = azf__strndup(in + i, len - i)))
            return AZF_E_NOMEM;
        i = len;
    }
    if (i != len)
        return bad(p, "the parameter '%s' has unexpected text after it", s->text);
    if (s->kind == SEG_CATCHALL && s->optional)
        return bad(p, "the catch-all parameter '%s' cannot be marked optional", s->text);
    return 0;
}

int azf__route_parse(azf__route **out, const char *tmpl, azf__errmsg *err)
{
    pctx p = {tmpl ? tmpl : "", err};
    if (!out || !tmpl)
        return AZF_E_INVALID;
    azf__route *r = azf__calloc(1, sizeof *r);
    if (!r)
        return AZF_E_NOMEM;
    const char *t = tmpl;
    if (t[0] == '~' && t[1] == '/')
        t += 2;
    else if (t[0] == '~')
        return azf__route_free(r),
               bad(&p, "a template starting with '~' must continue with '/'", NULL);
    else if (t[0] == '/')
        t++;
    size_t cap = 0;
    int rc = 0;
    azf_buf buf = AZF_BUF_INIT;
    while (*t && !rc) {
        const char *end = t;
        /* A segment ends at '/' outside braces. */
        int in_param = 0;
        for (; *end && (in_param || *end != '/'); end++) {
            if (*end == '{' && end[1] == '{' && !in_param)
                end++;
            else if (*end == '}' && end[1] == '}')
                end++;
            else if (*end == '{')
                in_param = 1;
            else if (*end == '}')
                in_param = 0;
        }
        size_t len = (size_t)(end - t);
        if (len == 0) {
            rc = bad(&p, "the separator '/' cannot appear twice in a row", NULL);
            break;
        }
        if ((rc = azf__grow((void **)&r->segs, &cap, r->n + 1, sizeof *r->segs)))
            break;
        segment *s = &r->segs[r->n];
        memset(s, 0, sizeof *s);
        r->n++;
        /* Unescape and split into literal text and at most one whole-segment parameter. */
        buf.size = 0;
        int params = 0, literal = 0;
        for (size_t i = 0; i < len && !rc; i++) {
            char c = t[i];
            if ((c == '{' || c == '}') && i + 1 < len && t[i + 1] == c) {
                rc = azf_buf_append(&buf, &c, 1);
                literal = 1;
                i++;
            } else if (c == '{') {
                size_t j = i + 1;
                azf_buf inner = AZF_BUF_INIT;
                for (; j < len && !rc; j++) {
                    if ((t[j] == '{' || t[j] == '}') && j + 1 < len && t[j + 1] == t[j]) {
                        rc = azf_buf_append(&inner, &t[j], 1);
                        j++;
                    } else if (t[j] == '}') {
                        break;
                    } else if (t[j] == '{') {
                        rc = bad(&p,
                                 "in a route parameter, '{' and '}' must be escaped as "
                                 "'{{' and '}}'",
                                 NULL);
                    } else {
                        rc = azf_buf_append(&inner, &t[j], 1);
                    }
                }
                if (!rc && j >= len)
                    rc = bad(&p, "a '{' has no matching '}'", NULL);
                if (!rc && params++) {
                    char seg[128];
                    snprintf(seg, sizeof seg, "%.*s", (int)(len < 100 ? len : 100), t);
                    rc = bad(&p,
                             "the segment '%s' has more than one parameter (complex segments "
                             "are not supported)",
                             seg);
                }
                if (!rc)
                    rc = parse_param(&p, inner.ptr ? inner.ptr : "", inner.size, s);
                azf_buf_dispose(&inner);
                i = j;
            } else if (c == '}') {
                rc = bad(&p, "a '}' has no matching '{'", NULL);
            } else if (c == '?') {
                rc = bad(&p, "literal segments cannot contain '?'", NULL);
            } else {
                rc = azf_buf_append(&buf, &c, 1);
                literal = 1;
            }
        }
        if (!rc && params && literal) {
            char seg[128];
            snprintf(seg, sizeof seg, "%.*s", (int)(len < 100 ? len : 100), t);
            rc = bad(&p,
                     "the segment '%s' mixes literal text and a parameter (complex segments "
                     "are not supported)",
                     seg);
        }
        if (!rc && !params) {
            s->kind = SEG_LITERAL;
            if (!(s->text = azf__strndup(buf.ptr ? buf.ptr : "", buf.size)))
                rc = AZF_E_NOMEM;
        }
        t = *end ? end + 1 : end;
        if (!rc && *end == '/' && !*t)
            break; /* one trailing '/' is ignored */
    }
    azf_buf_dispose(&buf);
    /* Whole-template rules. */
    for (size_t i = 0; !rc && i < r->n; i++) {
        segment *s = &r->segs[i];
        if (s->kind == SEG_LITERAL)
            continue;
        if (s->kind == SEG_CATCHALL && i + 1 != r->n)
            rc = bad(&p, "the catch-all parameter '%s' must be the last segment", s->text);
        for (size_t j = 0; !rc && j < i; j++)
            if (r->segs[j].kind != SEG_LITERAL && strcasecmp(r->segs[j].text, s->text) == 0)
                rc = bad(&p, "the parameter name '%s' appears more than once", s->text);
        if (!rc && (s->optional || s->dflt) && i + 1 < r->n) {
            for (size_t j = i + 1; !rc && j < r->n; j++) {
                const segment *n = &r->segs[j];
                if (!(n->optional || n->dflt || n->kind == SEG_CATCHALL))
                    rc = bad(&p,
                             "the optional parameter '%s' can only be followed by optional "
                             "parameters",
                             s->text);
            }
        }
    }
    if (rc) {
        azf__route_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* ---- matching -------------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static char *decode(const char *s, size_t len)
{
    char *o = azf__malloc(len + 1);
    if (!o)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        int h, l;
        if (s[i] == '%' && i + 2 < len && (h = hexval(s[i + 1])) >= 0 &&
            (l = hexval(s[i + 2])) >= 0) {
            o[k++] = (char)(h * 16 + l);
            i += 2;
        } else {
            o[k++] = s[i];
        }
    }
    o[k] = '\0';
    return o;
}

static int is_number(const char *s, int allow_exp)
{
    const char *q = s;
    if (*q == '+' || *q == '-')
        q++;
    int digits = 0;
    while (isdigit((unsigned char)*q))
        q++, digits++;
    if (*q == '.') {
        q++;
        while (isdigit((unsigned char)*q))
            q++, digits++;
    }
    if (!digits)
        return 0;
    if (allow_exp && (*q == 'e' || *q == 'E')) {
        q++;
        if (*q == '+' || *q == '-')
            q++;
        if (!isdigit((unsigned char)*q))
            return 0;
        while (isdigit((unsigned char)*q))
            q++;
    }
    return *q == '\0';
}

static int digits(const char **q, int n)
{
    for (int i = 0; i < n; i++, (*q)++)
        if (!isdigit((unsigned char)**q))
            return 0;
    return 1;
}

/* ISO 8601-like dates as invariant-culture DateTime parsing accepts them:
 * yyyy-MM-dd or yyyy/MM/dd, optionally followed by [T ]HH:mm[:ss[.f+]] and Z or ±HH:mm. */
static int is_datetime(const char *s)
{
    const char *q = s;
    if (!digits(&q, 4) || (*q != '-' && *q != '/'))
        return 0;
    char sep = *q++;
    if (!digits(&q, 2) || *q++ != sep || !digits(&q, 2))
        return 0;
    int mo = (s[5] - '0') * 10 + (s[6] - '0'), d = (s[8] - '0') * 10 + (s[9] - '0');
    if (mo < 1 || mo > 12 || d < 1 || d > 31)
        return 0;
    if (!*q)
        return 1;
    if (*q != 'T' && *q != 't' && *q != ' ')
        return 0;
    q++;
    const char *h = q;
    if (!digits(&q, 2) || *q++ != ':' || !digits(&q, 2))
        return 0;
    if ((h[0] - '0') * 10 + (h[1] - '0') > 23 || (h[3] - '0') * 10 + (h[4] - '0') > 59)
        return 0;
    if (*q == ':') {
        q++;
        if (!digits(&q, 2) || (q[-2] - '0') * 10 + (q[-1] - '0') > 59)
            return 0;
        if (*q == '.') {
            q++;
            if (!isdigit((unsigned char)*q))
                return 0;
            while (isdigit((unsigned char)*q))
                q++;
        }
    }
    if (*q == 'Z' || *q == 'z')
        q++;
    else if (*q == '+' || *q == '-') {
        q++;
        if (!digits(&q, 2) || *q++ != ':' || !digits(&q, 2))
            return 0;
    }
    return *q == '\0';
}

static int is_guid(const char *s)
{
    size_t len = strlen(s);
    char open = 0, close = 0;
    if (len == 38 && ((s[0] == '{' && s[37] == '}') || (s[0] == '(' && s[37] == ')'))) {
        open = s[0];
        close = s[37];
        s++;
        len -= 2;
    }
    (void)open;
    (void)close;
    if (len == 32) {
        for (size_t i = 0; i < 32; i++)
            if (!isxdigit((unsigned char)s[i]))
                return 0;
        return !open;
    }
    if (len != 36)
        return 0;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

static int64_t utf8_length(const char *s)
{
    int64_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

static int check(const constraint *c, const char *v)
{
    int64_t n;
    switch (c->type) {
    case C_INT:
        return !parse_int64(v, strlen(v), &n) && n >= INT32_MIN && n <= INT32_MAX;
    case C_LONG:
        return !parse_int64(v, strlen(v), &n);
    case C_BOOL:
        return strcasecmp(v, "true") == 0 || strcasecmp(v, "false") == 0;
    case C_GUID:
        return is_guid(v);
    case C_ALPHA:
        for (const char *q = v; *q; q++)
            if (!isalpha((unsigned char)*q))
                return 0;
        return 1;
    case C_DOUBLE:
        return is_number(v, 1);
    case C_DECIMAL:
        return is_number(v, 0);
    case C_DATETIME:
        return is_datetime(v);
    case C_MINLENGTH:
        return utf8_length(v) >= c->a;
    case C_MAXLENGTH:
        return utf8_length(v) <= c->a;
    case C_LENGTH:
        return utf8_length(v) >= c->a && utf8_length(v) <= c->b;
    case C_MIN:
        return !parse_int64(v, strlen(v), &n) && n >= c->a;
    case C_MAX:
        return !parse_int64(v, strlen(v), &n) && n <= c->a;
    case C_RANGE:
        return !parse_int64(v, strlen(v), &n) && n >= c->a && n <= c->b;
    case C_REGEX:
        return regexec(c->re, v, 0, NULL, 0) == 0;
    case C_REQUIRED:
        return *v != '\0';
    default:
        return 0;
    }
}

static int put(azf_value_map *m, const char *name, const char *val)
{
    if (!m)
        return 0;
    azf_value *v;
    int rc = azf_value_new_string(&v, val);
    if (rc)
        return rc;
    if ((rc = azf_value_map_set(m, name, v)))
        azf_value_free(v);
    return rc;
}

/* A parameter's raw text: percent-decoded, checked against its constraints, stored.
 * Returns 1 (bound), 0 (a constraint refused it) or AZF_E_NOMEM. */
static int bind_value(azf_value_map *m, const segment *s, const char *raw, size_t len)
{
    char *v = decode(raw, len);
    if (!v)
        return AZF_E_NOMEM;
    int rc = 1;
    for (size_t k = 0; k < s->n_cons && rc == 1; k++)
        if (!check(&s->cons[k], v))
            rc = 0;
    if (rc == 1 && put(m, s->text, v))
        rc = AZF_E_NOMEM;
    azf__free(v);
    return rc;
}

int azf__route_match(const azf__route *r, const char *path, azf_value_map **values)
{
    if (!r || !path)
        return AZF_E_INVALID;
    if (*path == '/')
        path++;
    size_t plen = strcspn(path, "?#");
    if (plen && path[plen - 1] == '/')
        plen--;
    azf_value_map *m = NULL;
    if (values && azf_value_map_new(&m))
        return AZF_E_NOMEM;
    size_t pos = 0;
    int rc = 1, have_more = plen > 0;
    for (size_t i = 0; i < r->n && rc == 1; i++) {
        const segment *s = &r->segs[i];
        if (s->kind == SEG_CATCHALL) {
            if (have_more) {
                rc = bind_value(m, s, path + pos, plen - pos);
                pos = plen;
                have_more = 0;
            } else if (s->dflt && put(m, s->text, s->dflt)) {
                rc = AZF_E_NOMEM;
            }
            break;
        }
        if (!have_more) {
            if (s->kind == SEG_LITERAL || !(s->optional || s->dflt))
                rc = 0;
            else if (s->dflt && put(m, s->text, s->dflt))
                rc = AZF_E_NOMEM;
            continue;
        }
        const char *seg = path + pos;
        const char *slash = memchr(seg, '/', plen - pos);
        size_t slen = slash ? (size_t)(slash - seg) : plen - pos;
        pos += slen;
        if (slash)
            pos++;
        else
            have_more = 0;
        if (s->kind == SEG_LITERAL) {
            if (strlen(s->text) != slen || strncasecmp(s->text, seg, slen) != 0)
                rc = 0;
            continue;
        }
        if (slen == 0) {
            rc = 0;
            continue;
        }
        rc = bind_value(m, s, seg, slen);
    }
    if (rc == 1 && have_more)
        rc = 0; /* path segments left over */
    if (rc == 1 && values)
        *values = m;
    else
        azf_value_map_free(m);
    return rc;
}

static int seg_rank(const segment *s)
{
    if (s->kind == SEG_LITERAL)
        return 1;
    if (s->kind == SEG_CATCHALL)
        return 5;
    return s->n_cons ? 3 : 4;
}

int azf__route_compare(const azf__route *a, const azf__route *b)
{
    size_t n = a->n < b->n ? a->n : b->n;
    for (size_t i = 0; i < n; i++) {
        int d = seg_rank(&a->segs[i]) - seg_rank(&b->segs[i]);
        if (d)
            return d;
    }
    return (a->n > b->n) - (a->n < b->n);
}

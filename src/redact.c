/*
 * redact.c - masking secrets in text before it is shown (see redact.h).
 *
 * Plain substring replacement: a secret is masked wherever it appears, also
 * by coincidence, because a mangled message costs less than a leaked
 * password.  Only the connection string's own syntax is interpreted, as
 * libpq reads it: URI credentials end at the first '@' before a '/', a
 * password value ends at whitespace or '&', a quoted one at its closing
 * quote.
 */
#include "redact.h"

#include <stdlib.h>
#include <string.h>

static const char withheld[] = "(message withheld: it may hold a secret and there is no memory "
                               "to mask it)";

/* Replaces each occurrence of the len bytes at secret in text with "***". */
static void mask(char *text, size_t cap, const char *secret, size_t len)
{
    const char *first = text;
    while (*first != '\0' && strncmp(first, secret, len) != 0)
        first++;
    if (len == 0 || *first == '\0')
        return; /* nothing to mask: no copy */
    char *out = malloc(cap);
    if (out == NULL) {
        size_t n = strlen(withheld) < cap ? strlen(withheld) : cap - 1;
        memcpy(text, withheld, n);
        text[n] = '\0';
        return;
    }
    size_t n = 0;
    for (const char *p = text; *p != '\0' && n + 1 < cap;) {
        if (strncmp(p, secret, len) == 0) {
            for (const char *m = "***"; *m != '\0' && n + 1 < cap; m++)
                out[n++] = *m;
            p += len;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    memcpy(text, out, n + 1);
    free(out);
}

void tgt_redact(char *text, size_t cap, const tgt_config *cfg)
{
    if (text == NULL || cap == 0 || cfg == NULL)
        return;
    const char *ci = cfg->conninfo;
    if (ci != NULL) {
        /* the whole string first: its parts are then already gone */
        mask(text, cap, ci, strlen(ci));
        const char *p = strstr(ci, "://");
        if (p != NULL) {
            p += 3;
            size_t span = strcspn(p, "@/");
            const char *colon = memchr(p, ':', span);
            if (p[span] == '@' && colon != NULL)
                mask(text, cap, colon + 1, (size_t)(p + span - colon - 1));
        }
        for (const char *k = strstr(ci, "password"); k != NULL; k = strstr(k + 1, "password")) {
            const char *v = k + 8 + strspn(k + 8, " \t\r\n");
            if (*v != '=')
                continue;
            v += 1 + strspn(v + 1, " \t\r\n");
            size_t len;
            if (*v == '\'') { /* key='quoted value', \' and \\ escaped */
                v++;
                for (len = 0; v[len] != '\0' && v[len] != '\''; len++)
                    if (v[len] == '\\' && v[len + 1] != '\0')
                        len++;
            } else {
                len = strcspn(v, " \t\r\n&");
            }
            mask(text, cap, v, len);
        }
    }
    if (cfg->password != NULL)
        mask(text, cap, cfg->password, strlen(cfg->password));
    if (cfg->pseudonymization_key != NULL)
        mask(text, cap, cfg->pseudonymization_key, strlen(cfg->pseudonymization_key));
}

void tgt_redact_error(tgt_error *err, const tgt_config *cfg)
{
    tgt_redact(err->message, sizeof(err->message), cfg);
    tgt_redact(err->detail, sizeof(err->detail), cfg);
    tgt_redact(err->hint, sizeof(err->hint), cfg);
    tgt_redact(err->where, sizeof(err->where), cfg);
}

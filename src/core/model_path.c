#include "core/model_path.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/io.h"

/* the models scripts/fetch-models.sh knows */
static const char *known[] = {"smollm2-135m-instruct", "all-minilm-l6-v2"};

lma_status lma_model_cache_dir(char *out, size_t cap) {
    const char *home = getenv("LMA_HOME");
    int n;
    if (home && *home) n = snprintf(out, cap, "%s/models", home);
    else {
        const char *h = getenv("HOME");
        if (!h || !*h) return lma_error(LMA_ERR_IO, "neither LMA_HOME nor HOME is set: cannot find the model cache");
        n = snprintf(out, cap, "%s/.cache/lmadapt/models", h);
    }
    if (n < 0 || (size_t)n >= cap) return lma_error(LMA_ERR_ARG, "the model cache path is too long");
    return LMA_OK;
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

/* A folder without config.json/tokenizer.json holding exactly one .gguf: that file. */
static lma_status gguf_in_dir(const char *dir, char *out, size_t cap, int *found) {
    char p[4096];
    *found = 0;
    LMA_TRY(lma_path_join(p, sizeof p, dir, "config.json"));
    if (lma_file_exists(p)) return LMA_OK;
    LMA_TRY(lma_path_join(p, sizeof p, dir, "tokenizer.json"));
    if (lma_file_exists(p)) return LMA_OK;
    DIR *d = opendir(dir);
    if (!d) return LMA_OK;
    struct dirent *e;
    int n = 0;
    char name[1024] = "";
    while ((e = readdir(d)))
        if (ends_with(e->d_name, ".gguf") && strlen(e->d_name) < sizeof name) {
            n++;
            snprintf(name, sizeof name, "%s", e->d_name);
        }
    closedir(d);
    if (n != 1) return LMA_OK;
    LMA_TRY(lma_path_join(p, sizeof p, dir, name));
    if (!lma_file_exists(p)) return LMA_OK;
    if (strlen(p) >= cap) return lma_error(LMA_ERR_ARG, "%s: path too long", p);
    memcpy(out, p, strlen(p) + 1);
    *found = 1;
    return LMA_OK;
}

static lma_status resolve_existing(const char *in, char *out, size_t cap) {
    if (lma_is_dir(in)) {
        int found;
        LMA_TRY(gguf_in_dir(in, out, cap, &found));
        if (found) return LMA_OK;
    }
    if (strlen(in) >= cap) return lma_error(LMA_ERR_ARG, "%s: path too long", in);
    memcpy(out, in, strlen(in) + 1);
    return LMA_OK;
}

static int is_name(const char *s) {
    if (!*s || *s == '.') return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '.' ||
              *s == '_' || *s == '-'))
            return 0;
    return 1;
}

lma_status lma_model_path_resolve(const char *in, char *out, size_t cap) {
    if (!in || !*in) return lma_error(LMA_ERR_ARG, "empty model path");
    if (lma_file_exists(in) || lma_is_dir(in)) return resolve_existing(in, out, cap);
    if (!is_name(in)) return lma_error(LMA_ERR_IO, "%s: no such file or folder", in);
    char dir[4096], p[4096];
    LMA_TRY(lma_model_cache_dir(dir, sizeof dir));
    LMA_TRY(lma_path_join(p, sizeof p, dir, in));
    if (lma_is_dir(p)) return resolve_existing(p, out, cap);
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (!strcmp(in, known[i]))
            return lma_error(LMA_ERR_IO, "model '%s' is not in %s yet: run scripts/fetch-models.sh to fetch it", in, dir);
    return lma_error(LMA_ERR_IO, "%s: no such file or folder, and no model of that name in %s (known names: "
                     "smollm2-135m-instruct, all-minilm-l6-v2)", in, dir);
}

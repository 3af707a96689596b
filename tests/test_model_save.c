/* model save: a model dir written by lmadapt (config.json + safetensors, f32,
 * bf16, and sharded with an index) loads in transformers with identical logits.
 * tests/ref/check_saved_models.py ran `test_model_save --write DIR`, loaded each
 * dir with transformers and kept the logits and the FNV-1a 64 hash of every
 * file in tests/ref/saved/<variant>.safetensors/.json. This test writes the
 * same dirs again, checks the bytes are the ones transformers read, and that
 * lmadapt's logits on the saved dir equal transformers'. */
#include <dirent.h>
#include "core/io.h"
#include "core/json.h"
#include "model/llama.h"
#include "model/safetensors.h"
#include "test.h"

static const struct { const char *name; int bf16; size_t shard; } variants[] = {
    {"f32", 0, 0}, {"bf16", 1, 0}, {"sharded", 0, 300000}};

static uint64_t fnv1a(const unsigned char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ULL; }
    return h;
}

static lma_status write_variants(const char *out) {
    char src[1024], dir[1200];
    snprintf(src, sizeof src, "%s/tests/ref/models/qwen2", LMA_SRC_DIR);
    lma_model *m;
    LMA_TRY(lma_model_load_ex(src, lma_backend_cpu(), 0, &m));
    lma_status s = LMA_OK;
    for (size_t i = 0; i < sizeof variants / sizeof variants[0] && s == LMA_OK; i++) {
        snprintf(dir, sizeof dir, "%s/%s", out, variants[i].name);
        s = lma_model_save(m, dir, variants[i].bf16, variants[i].shard);
    }
    lma_model_free(m);
    return s;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--write")) {
        lma_status s = write_variants(argv[2]);
        if (s != LMA_OK) fprintf(stderr, "%s\n", lma_last_error());
        return s == LMA_OK ? 0 : 1;
    }
    char tmp[] = "/tmp/lma_save_XXXXXX", path[2048], ref[2048];
    CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    CHECK_OK(write_variants(tmp));
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        const char *name = variants[v].name;
        snprintf(ref, sizeof ref, "%s/tests/ref/saved/%s.json", LMA_SRC_DIR, name);
        cJSON *j = NULL;
        CHECK_OK(lma_json_load(ref, &j));
        if (!j) continue;
        /* the bytes are those transformers loaded */
        const cJSON *files = cJSON_GetObjectItemCaseSensitive(j, "fnv1a64"), *f;
        int nfiles = 0;
        cJSON_ArrayForEach(f, files) {
            snprintf(path, sizeof path, "%s/%s/%s", tmp, name, f->string);
            lma_map mp;
            CHECK_OK(lma_map_file(path, &mp));
            char hx[32];
            snprintf(hx, sizeof hx, "%016llx", (unsigned long long)fnv1a(mp.data, mp.len));
            CHECK(cJSON_IsString(f) && !strcmp(hx, f->valuestring), "%s/%s: bytes differ from what transformers loaded",
                  name, f->string);
            lma_unmap_file(&mp);
            nfiles++;
        }
        CHECK(nfiles >= (variants[v].shard ? 4 : 2), "%s: %d files checked", name, nfiles);
        cJSON_Delete(j);
        /* lmadapt's logits on the saved dir == transformers' */
        snprintf(path, sizeof path, "%s/%s", tmp, name);
        snprintf(ref, sizeof ref, "%s/tests/ref/saved/%s.safetensors", LMA_SRC_DIR, name);
        lma_model *m = NULL;
        lma_st_file *ex = NULL;
        CHECK_OK(lma_model_load_ex(path, lma_backend_cpu(), 0, &m));
        CHECK_OK(lma_st_open(ref, &ex));
        if (!m || !ex) { lma_model_free(m); lma_st_close(ex); continue; }
        const lma_st_tensor *ti = lma_st_find(ex, "input_ids"), *tl = lma_st_find(ex, "logits");
        int B = (int)ti->shape[0], T = (int)ti->shape[1], N = B * T;
        float *fid = malloc(ti->numel * 4), *want = malloc(tl->numel * 4), *got = malloc(tl->numel * 4);
        int32_t *ids = malloc(N * 4);
        CHECK_OK(lma_st_read_f32(ti, fid, ti->numel));
        CHECK_OK(lma_st_read_f32(tl, want, tl->numel));
        for (int i = 0; i < N; i++) ids[i] = (int32_t)fid[i];
        CHECK_OK(lma_model_forward(m, ids, NULL, NULL, B, T, 0, 1, NULL));
        CHECK_OK(lma_model_logits(m, got));
        double err = 0, mx = 0;
        for (size_t i = 0; i < tl->numel; i++) { err = fmax(err, fabs(got[i] - want[i])); mx = fmax(mx, fabs(want[i])); }
        CHECK(err <= 1e-4 * mx, "%s: logits max abs err %.3g vs transformers", name, err);
        free(fid); free(want); free(got); free(ids);
        lma_st_close(ex);
        lma_model_free(m);
    }
    snprintf(path, sizeof path, "rm -rf %s", tmp);
    CHECK(system(path) == 0, "cleanup");
    TEST_END();
}

/* GBNF-constrained decoding (--grammar F; infer/grammar.h through
 * lma_grammar_constraint_new): a random-weight model (tests/ref/models/llama_gqa with the
 * byte-level BPE tests/ref/tok/bl) sampled at temperature 1 over many seeds gives text that
 * a hand-written recognizer for each grammar accepts (arithmetic expressions, a list of
 * items, a JSON subset checked by cJSON, commands that share prefixes, a Unicode class),
 * also at budgets just above the shortest output; a budget below it is refused; the
 * automaton as a validator accepts and rejects hand-picked strings; malformed grammars give
 * one line with their line:column. */
#include "core/json.h"
#include "infer/generate.h"
#include "infer/grammar.h"
#include "infer/json_constraint.h"
#include "sample_loop.h"
#include "test.h"

/* ---- naive recognizers, one a grammar (written from the grammar text, not from the compiler) ---- */

typedef struct { const char *s; size_t n, i; } cur;
static int at(const cur *c, char ch) { return c->i < c->n && c->s[c->i] == ch; }
static int digit(const cur *c) { return c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9'; }

static int a_expr(cur *c);
static int a_factor(cur *c) {
    if (digit(c)) { while (digit(c)) c->i++; return 1; }
    if (!at(c, '(')) return 0;
    c->i++;
    if (at(c, ' ')) c->i++;
    if (!a_expr(c)) return 0;
    if (at(c, ' ')) c->i++;
    if (!at(c, ')')) return 0;
    c->i++;
    return 1;
}
/* operand (ws op ws operand)*: a loop step is undone when it does not finish */
static int a_chain(cur *c, const char *ops, int (*operand)(cur *)) {
    if (!operand(c)) return 0;
    for (;;) {
        size_t save = c->i;
        if (at(c, ' ')) c->i++;
        if (c->i >= c->n || !strchr(ops, c->s[c->i]) || !c->s[c->i]) { c->i = save; return 1; }
        c->i++;
        if (at(c, ' ')) c->i++;
        if (!operand(c)) { c->i = save; return 1; }
    }
}
static int a_term(cur *c) { return a_chain(c, "*/", a_factor); }
static int a_expr(cur *c) { return a_chain(c, "+-", a_term); }
static const char *ARITH =
    "# arithmetic expressions\n"
    "root   ::= expr\n"
    "expr   ::= term (ws [-+] ws term)*\n"
    "term   ::= factor (ws [*/] ws factor)*\n"
    "factor ::= number | \"(\" ws expr ws \")\"\n"
    "number ::= [0-9]+\n"
    "ws     ::= \" \"?\n";
/* the grammar is ambiguous about where a space belongs only in ways that give the same
 * text; this recognizer backtracks at each loop step, which covers it */
static int ok_arith(const char *s, size_t n) {
    cur c = {s, n, 0};
    return a_expr(&c) && c.i == n;
}

static const char *LIST =
    "root ::= \"- \" item (\"\\n- \" item){0,5}\n"
    "item ::= [a-z] [a-z ]{0,11}   # a word or a few\n";
static int ok_list(const char *s, size_t n) {
    size_t i = 0;
    for (int line = 0;; line++) {
        if (line > 5 || i + 2 > n || s[i] != '-' || s[i + 1] != ' ') return 0;
        i += 2;
        if (i >= n || s[i] < 'a' || s[i] > 'z') return 0;
        size_t k = 0;
        for (i++; i < n && ((s[i] >= 'a' && s[i] <= 'z') || s[i] == ' '); i++) k++;
        if (k > 11) return 0;
        if (i == n) return 1;
        if (s[i] != '\n') return 0;
        i++;
    }
}

static const char *JSONSUB =
    "root   ::= object\n"
    "value  ::= object | array | string | number | (\"true\" | \"false\" | \"null\")\n"
    "object ::= \"{\" ws ( string \":\" ws value (\",\" ws string \":\" ws value)* )? \"}\"\n"
    "array  ::= \"[\" ws ( value (\",\" ws value)* )? \"]\"\n"
    "string ::= \"\\\"\" ( [^\"\\\\\\x00-\\x1F\\x7F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4}) )* \"\\\"\"\n"
    "number ::= \"-\"? ([0-9] | [1-9] [0-9]{1,15}) (\".\" [0-9]+)? ([eE] [-+]? [0-9]+)?\n"
    "ws     ::= [ \\t\\n]{0,3}\n";
static int utf8_ok(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char b = (unsigned char)s[i];
        int l = b < 0x80 ? 1 : (b >= 0xC2 && b <= 0xDF) ? 2 : (b >= 0xE0 && b <= 0xEF) ? 3 : (b >= 0xF0 && b <= 0xF4) ? 4 : 0;
        if (!l || i + l > n) return 0;
        uint32_t cp = l == 1 ? b : (uint32_t)(b & (0x7F >> l));
        for (int k = 1; k < l; k++) {
            if (((unsigned char)s[i + k] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | ((unsigned char)s[i + k] & 0x3F);
        }
        static const uint32_t minv[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < minv[l] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += (size_t)l;
    }
    return 1;
}
static int ok_json(const char *s, size_t n) {
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    int ok = v && cJSON_IsObject(v) && end == s + n && utf8_ok(s, n);
    cJSON_Delete(v);
    return ok;
}

/* alternatives that share prefixes ("set x = 1" / "set x += 1", "set" / "see"): a
 * deterministic one-byte-lookahead parser could not tell them apart */
static const char *CMDS =
    "root ::= cmd (\";\" cmd){0,3}\n"
    "cmd  ::= \"set \" name \" = \" val | \"set \" name \" += \" val | \"see \" name | \"set \" name\n"
    "name ::= [a-c]+\n"
    "val  ::= [0-9] | [1-9] [0-9] | [1-9] [0-9] [0-9]\n";
static int ok_cmd(const char *s, size_t n) {
    size_t i = 0;
    int see = n >= 4 && !memcmp(s, "see ", 4), set = n >= 4 && !memcmp(s, "set ", 4);
    if (!see && !set) return 0;
    i = 4;
    size_t k = i;
    while (i < n && s[i] >= 'a' && s[i] <= 'c') i++;
    if (i == k) return 0;
    if (i == n) return 1;
    if (see) return 0;
    size_t rest = n - i;
    const char *op = rest >= 3 && !memcmp(s + i, " = ", 3) ? " = " : rest >= 4 && !memcmp(s + i, " += ", 4) ? " += " : NULL;
    if (!op) return 0;
    i += strlen(op);
    k = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    if (i == k || i - k > 3 || (i - k > 1 && s[k] == '0')) return 0;
    return i == n;
}
static int ok_cmds(const char *s, size_t n) {
    int parts = 0;
    for (size_t a = 0;; parts++) {
        size_t b = a;
        while (b < n && s[b] != ';') b++;
        if (parts > 3 || !ok_cmd(s + a, b - a)) return 0;
        if (b == n) return 1;
        a = b + 1;
    }
}

static const char *UNI = "root ::= [\\u00E0-\\u00FF\\u4E00-\\u4E0F]{1,4} \"!\" | \"\\u00A7\" .\n";
static int ok_uni(const char *s, size_t n) {
    if (!utf8_ok(s, n)) return 0;
    if (n >= 2 && !memcmp(s, "\xC2\xA7", 2)) { /* § then any one character */
        size_t l = n - 2;
        unsigned char b = l ? (unsigned char)s[2] : 0;
        return l && (size_t)(b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4) == l;
    }
    int k = 0;
    size_t i = 0;
    while (i < n && s[i] != '!') {
        unsigned char b = (unsigned char)s[i];
        uint32_t cp;
        if (b >= 0xC2 && b <= 0xDF && i + 1 < n) { cp = (uint32_t)(b & 0x1F) << 6 | ((unsigned char)s[i + 1] & 0x3F); i += 2; }
        else if (b >= 0xE0 && b <= 0xEF && i + 2 < n) {
            cp = (uint32_t)(b & 0x0F) << 12 | (uint32_t)((unsigned char)s[i + 1] & 0x3F) << 6 | ((unsigned char)s[i + 2] & 0x3F);
            i += 3;
        } else return 0;
        if (!((cp >= 0xE0 && cp <= 0xFF) || (cp >= 0x4E00 && cp <= 0x4E0F))) return 0;
        k++;
    }
    return k >= 1 && k <= 4 && i + 1 == n && s[i] == '!';
}

static const char *YN = "root ::= \"yes\" | \"no\" | \"maybe\" | \"no way\"\n";
static int ok_yn(const char *s, size_t n) {
    const char *w[] = {"yes", "no", "maybe", "no way"};
    for (int i = 0; i < 4; i++)
        if (strlen(w[i]) == n && !memcmp(s, w[i], n)) return 1;
    return 0;
}

/* ---- generation ---------------------------------------------------------------------------- */

static const lma_backend *g_be;

static int min_tokens(const lma_tokenizer *tok, const char *g) {
    lma_json_constraint *c = NULL;
    CHECK_OK(lma_grammar_constraint_new(tok, g, strlen(g), "g", &c));
    int n = c ? lma_json_constraint_min_tokens(c) : 0;
    lma_json_constraint_free(c);
    return n;
}

typedef struct {
    const char *g;
    int (*ok)(const char *, size_t);
    int max_tokens, nonascii;
} grammar_judge_ctx;

/* an output is in the grammar by its recognizer, and the automaton, used as a validator, agrees */
static int grammar_judge(void *ctx, const char *what, int seed, const lma_gen_result *r) {
    grammar_judge_ctx *x = ctx;
    int v = x->ok(r->text, r->len);
    if (!v) fprintf(stderr, "%s seed %d (max %d): not in the grammar: [%.*s]\n", what, seed, x->max_tokens, (int)r->len, r->text);
    int again = 0;
    CHECK_OK(lma_grammar_check(x->g, strlen(x->g), what, r->text, r->len, &again));
    CHECK(again, "%s seed %d: the grammar's own check accepts its output", what, seed);
    for (size_t i = 0; i < r->len; i++) x->nonascii |= (unsigned char)r->text[i] >= 0x80;
    return v;
}

/* samples `seeds` outputs at temperature 1; each must satisfy ok(); returns how many ended
 * before the budget (the grammar complete or end-of-sequence) */
static int run(lma_model *m, const lma_tokenizer *tok, const char *g, int (*ok)(const char *, size_t), int max_tokens,
               int seeds, const char *what) {
    lma_json_constraint *jc = NULL;
    CHECK_OK(lma_grammar_constraint_new(tok, g, strlen(g), what, &jc));
    if (!jc) return 0;
    grammar_judge_ctx x = {g, ok, max_tokens, 0};
    int stopped = 0;
    int good = test_sample_loop(m, tok, jc, max_tokens, seeds, 1.0f, 104729, 17, what, grammar_judge, &x, &stopped);
    CHECK(good == seeds, "%s: %d of %d outputs in the grammar (max_tokens %d)", what, good, seeds, max_tokens);
    if (g == UNI) CHECK(x.nonascii, "%s: multi-byte characters were produced", what);
    lma_json_constraint_free(jc);
    return stopped;
}

/* the mask's shortcuts against the naive mask (every token fed byte by byte) along random
 * walks: at each step the same tokens are allowed; the walk takes a random allowed token */
static void mask_parity(const lma_tokenizer *tok, const char *gtext, int seeds, const char *what) {
    int V = lma_tok_vocab_size(tok);
    unsigned char **piece = calloc((size_t)V, sizeof *piece), byte_tok[256] = {0};
    int *plen = calloc((size_t)V, sizeof *plen);
    float *a = malloc((size_t)V * sizeof *a), *b = malloc((size_t)V * sizeof *b);
    for (int id = 0; id < V; id++) {
        unsigned char buf[64];
        int n = lma_tok_piece_bytes(tok, id, buf, 64);
        if (n <= 0) continue;
        piece[id] = malloc((size_t)n);
        memcpy(piece[id], buf, (size_t)n);
        plen[id] = n;
        if (n == 1) byte_tok[buf[0]] = 1;
    }
    lma_grammar *g = NULL;
    CHECK_OK(lma_grammar_compile(gtext, strlen(gtext), what, byte_tok, &g));
    uint64_t rng = 88172645463325252ull;
    int steps = 0, diff = 0, nonascii = 0;
    for (int seed = 0; g && seed < seeds; seed++) {
        lma_grammar_reset(g);
        int max_tokens = 12 + 7 * seed;
        for (int step = 0; step < max_tokens && !lma_grammar_done(g); step++) {
            for (int i = 0; i < V; i++) a[i] = b[i] = 0;
            lma_status sa = lma_grammar_mask(g, piece, plen, V, a, V, max_tokens - step - 1, NULL, 0);
            lma_status sb = lma_grammar_mask_ref(g, piece, plen, V, b, V, max_tokens - step - 1, NULL, 0);
            lma_clear_error();
            int n_ok = 0, d = sa != sb;
            for (int i = 0; i < V; i++) {
                d += isinf(a[i]) != isinf(b[i]);
                n_ok += !isinf(b[i]);
            }
            diff += d != 0;
            steps++;
            if (!n_ok) break;
            int pick = (int)((rng = rng * 6364136223846793005ull + 1442695040888963407ull) >> 33) % n_ok, id = 0;
            for (id = 0; id < V; id++)
                if (!isinf(b[id]) && pick-- == 0) break;
            for (int k = 0; k < plen[id]; k++) nonascii |= piece[id][k] >= 0x80;
            CHECK(lma_grammar_feed(g, piece[id], (size_t)plen[id]), "%s: an allowed token is taken", what);
        }
    }
    CHECK(steps > 0 && diff == 0, "%s: the mask equals the naive mask at every step (%d of %d steps differ)", what, diff, steps);
    if (strstr(what, "unicode")) CHECK(nonascii, "%s: walks went through multi-byte characters", what);
    lma_grammar_free(g);
    for (int id = 0; id < V; id++) free(piece[id]);
    free(piece); free(plen); free(a); free(b);
}

static void check_text(const char *g, const char *text, int expect) {
    int v = -1;
    CHECK_OK(lma_grammar_check(g, strlen(g), "g", text, strlen(text), &v));
    CHECK(v == expect, "[%s] is %s", text, expect ? "in the grammar" : "not in the grammar");
}

int main(int argc, char **argv) {
    g_be = lma_backend_cpu();
    if (argc > 1 && lma_backend_select(argv[1], &g_be) != LMA_OK) {
        printf("no %s backend here: skipped\n", argv[1]);
        return 77;
    }
    /* the automaton as a validator, against hand-picked strings */
    check_text(ARITH, "12 + 7 * (3 - 1)", 1);
    check_text(ARITH, "(((1)))", 1);
    check_text(ARITH, "1 +", 0);
    check_text(ARITH, "1  + 2", 0);
    check_text(ARITH, "(1", 0);
    check_text(CMDS, "set ab += 12;see c;set a", 1);
    check_text(CMDS, "set ab += 012", 0);
    check_text(CMDS, "see a = 1", 0);
    check_text(JSONSUB, "{\"a\": [1, -2.5e3, \"x\\u00e9\"], \"b\":{}}", 1);
    check_text(JSONSUB, "{\"a\": 01}", 0);
    check_text(UNI, "\xC3\xA0\xE4\xB8\x80!", 1);  /* à一! */
    check_text(UNI, "\xC3\x9F!", 0);              /* ß is U+00DF: outside */
    check_text(UNI, "\xC2\xA7\xF0\x9F\x98\x80", 1); /* § then one 4-byte character */
    check_text(UNI, "\xC2\xA7", 0);
    check_text(LIST, "- apples\n- two pears", 1);
    check_text(LIST, "- apples\n", 0);
    check_text(LIST, "- abcdefghijklm", 0); /* 13 characters: one too many */

    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/ref/tok/bl", LMA_SRC_DIR);
    lma_tokenizer *tok = NULL;
    CHECK_OK(lma_tok_load(dir, &tok));
    if (!tok) TEST_END();
    const char *gnames[] = {"arith", "list", "json", "cmds", "unicode"}, *gtexts[] = {ARITH, LIST, JSONSUB, CMDS, UNI};
    for (int i = 0; i < 5; i++) mask_parity(tok, gtexts[i], 6, gnames[i]);
    /* a real vocabulary (SmolLM2's 49,152 tokens, many multi-byte) when the model cache has it */
    char sdir[1024];
    snprintf(sdir, sizeof sdir, "%s/.cache/lmadapt/models/smollm2-135m-instruct", getenv("HOME") ? getenv("HOME") : "/");
    lma_tokenizer *stok = NULL;
    if (lma_tok_load(sdir, &stok) == LMA_OK) {
        char nm[64];
        for (int i = 0; i < 5; i++) {
            snprintf(nm, sizeof nm, "smollm2 %s", gnames[i]);
            mask_parity(stok, gtexts[i], 2, nm);
        }
        lma_tok_free(stok);
    } else {
        printf("no SmolLM2 tokenizer in the model cache: its mask parity skipped\n");
    }
    lma_clear_error();
    lma_model *m = test_random_model(g_be, lma_tok_vocab_size(tok), 42);
    if (!m) TEST_END();

    struct { const char *name, *g; int (*ok)(const char *, size_t); int shortest; } gs[] = {
        {"arith", ARITH, ok_arith, 1},     /* "0" */
        {"list", LIST, ok_list, 3},        /* "- a" */
        {"json", JSONSUB, ok_json, 2},     /* "{}" */
        {"cmds", CMDS, ok_cmds, 5},        /* "see a" */
        {"unicode", UNI, ok_uni, 3},       /* "à!": 2 + 1 bytes */
    };
    for (size_t i = 0; i < sizeof gs / sizeof gs[0]; i++) {
        int need = min_tokens(tok, gs[i].g);
        CHECK(need == gs[i].shortest, "%s: the shortest output is %d bytes (got %d)", gs[i].name, gs[i].shortest, need);
        run(m, tok, gs[i].g, gs[i].ok, 40, 30, gs[i].name);
        run(m, tok, gs[i].g, gs[i].ok, need, 15, gs[i].name);     /* the shortest budget */
        run(m, tok, gs[i].g, gs[i].ok, need + 2, 15, gs[i].name); /* a tight one */
        /* below the shortest: refused, nothing emitted */
        lma_json_constraint *jc = NULL;
        CHECK_OK(lma_grammar_constraint_new(tok, gs[i].g, strlen(gs[i].g), gs[i].name, &jc));
        if (jc && need > 1) {
            lma_gen_params p = {0};
            p.max_tokens = need - 1;
            p.sample = lma_sample_default_params();
            p.constraint = jc;
            int32_t prompt[2] = {1, 2};
            lma_gen_result r;
            CHECK(lma_generate(m, tok, prompt, 2, &p, &r) == LMA_ERR_ARG && strstr(lma_last_error(), "too small"),
                  "%s: a budget below the shortest output is refused: %s", gs[i].name, lma_last_error());
            lma_clear_error();
        }
        lma_json_constraint_free(jc);
    }
    /* a grammar whose outputs always end (no loop) stops by itself before the budget */
    CHECK(run(m, tok, YN, ok_yn, 20, 20, "yes/no") == 20, "a finite grammar stops as soon as its output is complete");

    /* malformed grammars: one line, the place named */
    struct { const char *g, *msg; } bad[] = {
        {"root ::= foo\n", "g:1:10: the rule 'foo' is not defined"},
        {"root ::= \"abc\n", "g:1:10: a string literal without its closing quote"},
        {"root ::= [z-a]\n", "g:1:11: a range from U+007A down to U+0061"},
        {"root ::= ( \"a\"\n", "g:1:10: this '(' has no closing ')'"},
        {"root ::= root \"a\" | \"b\"\n", "g:1:1: the rule 'root' is left-recursive"},
        {"root ::= x\nx ::= \"a\" | y \"b\"\ny ::= \"c\"? x\n", "is left-recursive"},
        {"root ::= (\"a\"?)*\n", "g:1:16: this repetition repeats something that can be empty"},
        {"start ::= \"a\"\n", "g:1:1: the grammar has no 'root' rule"},
        {"root ::= \"a\"\nroot ::= \"b\"\n", "g:2:1: the rule 'root' is defined twice (first at 1:1)"},
        {"root ::= \"a\" x\nx ::= \"b\" x\n", "g:2:1: the rule 'x' can never end"},
        {"root ::= \"\\q\"\n", "g:1:11: unknown escape \\q"},
        {"root ::= * \"a\"\n", "g:1:10: '*' has nothing before it to repeat"},
        {"# c\nroot \"a\"\n", "g:2:6: expected '::=' after the rule name 'root'"},
        {"root ::= \"a\"{3,1}\n", "g:1:13: {3,1}: the maximum is below the minimum"},
        {"root ::= \"a\" )\n", "g:1:14: a ')' without its '('"},
        {"root ::= [a-\n", "g:1:10: a character class without its closing ']'"},
        {"root ::= \"a\"{99999}\n", "g:1:13: a count above 256"},
        {"root ::= \"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz\"{1000,}\n",
         "a count above 256"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lma_json_constraint *x = NULL;
        lma_status s = lma_grammar_constraint_new(tok, bad[i].g, strlen(bad[i].g), "g", &x);
        const char *e = lma_last_error();
        CHECK(s == LMA_ERR_FORMAT && !x && strstr(e, bad[i].msg) && !strchr(e, '\n'), "malformed grammar %zu: want [%s], got [%s]",
              i, bad[i].msg, e);
        lma_clear_error();
        lma_json_constraint_free(x);
    }
    { /* a repetition copies its operand: 300 bytes x 256 copies is refused */
        char big[400] = "root ::= \"";
        memset(big + 10, 'a', 300);
        strcpy(big + 310, "\"{256}\n");
        lma_json_constraint *x = NULL;
        CHECK(lma_grammar_constraint_new(tok, big, strlen(big), "g", &x) == LMA_ERR_FORMAT &&
                  strstr(lma_last_error(), "g:1:312: this repetition makes more than 65536 copies"),
              "a repetition too large: %s", lma_last_error());
        lma_clear_error();
        lma_json_constraint_free(x);
    }
    lma_model_free(m);
    lma_tok_free(tok);
    TEST_END();
}

/* JSON-constrained decoding: schema compilation, the byte automaton, the closing cost
 * and the token mask (see json_constraint.h). */
#include "infer/json_constraint.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/buf.h"
#include "infer/grammar.h"

enum { T_ANY, T_OBJECT, T_ARRAY, T_STRING, T_NUMBER, T_INTEGER, T_BOOLEAN, T_NULL, T_ENUM };
#define MAX_DEPTH 32
#define MAX_SET 64  /* properties of one object, values of one enum */
#define MAX_WS 16   /* whitespace bytes in one gap */
#define MAX_NUM 32  /* bytes of one number */
#define PIECE_MAX 64

typedef struct {
    int type;
    int first, n;      /* OBJECT: props[first..first+n); ENUM: lits[first..first+n) */
    uint64_t required; /* OBJECT: bit i = props[first + i] */
    int items;         /* ARRAY: node of the items, -1 any */
    int minlen;        /* bytes of the shortest valid serialization */
} node;

typedef struct { char *s; int len; int node; } lit; /* a property name (node: its schema) or an enum literal */

/* frame kinds */
enum { F_VALUE, F_OBJ, F_ARR, F_STR, F_NUM, F_LIT, F_ENUM, F_KEY };

typedef struct {
    uint8_t kind, phase;
    uint8_t ws;        /* whitespace bytes in the current gap */
    uint8_t key;       /* F_STR: a key of a free object */
    int16_t node;
    int16_t prop;      /* F_OBJ: property being written (index into its props), -1 none */
    int16_t pos;       /* F_LIT/F_ENUM/F_KEY: bytes matched; F_NUM: bytes; F_STR: utf-8 bytes still due */
    uint64_t mask;     /* F_OBJ: properties used; F_ENUM/F_KEY: candidates left */
    const char *litp;  /* F_LIT: "true", "false" or "null" */
} frame;

typedef struct {
    int depth, done;
    frame f[MAX_DEPTH];
} state;

struct lma_json_constraint {
    int yaml;                         /* the YAML subset (its own automaton, below) instead of JSON */
    lma_grammar *gram;                /* a GBNF grammar (infer/grammar.h: its own automaton and mask) instead */
    node *nodes; int n_nodes; size_t cap_nodes;
    lit *lits; int n_lits; size_t cap_lits;
    int root;
    state st;
    int V;
    unsigned char **piece; int *plen; /* (V) bytes each token adds (pointers into pool) */
    unsigned char *pool;              /* every piece, one after another in id order */
    unsigned char *first, *second;    /* (V) each piece's first and second byte (0 when one byte), dense:
                                         the mask's tests read these, not the scattered pieces */
    unsigned char *plain;             /* (V) 1: every byte is plain string content (no quote, backslash,
                                         control byte; whole UTF-8 sequences); YAML: every byte a
                                         plain scalar's non-first byte */
    int shared;                       /* a clone: everything but st and gram is its original's */
};

/* ---- schema --------------------------------------------------------------------------- */

static int add_node(lma_json_constraint *c, int type) {
    if (lma_grow(&c->nodes, &c->cap_nodes, (size_t)c->n_nodes + 1, sizeof *c->nodes, 16, "schema") != LMA_OK)
        return -1;
    node *n = &c->nodes[c->n_nodes];
    memset(n, 0, sizeof *n);
    n->type = type;
    n->items = -1;
    return c->n_nodes++;
}

static lma_status add_lit(lma_json_constraint *c, const char *s, size_t len, int nd) {
    LMA_TRY(lma_grow(&c->lits, &c->cap_lits, (size_t)c->n_lits + 1, sizeof *c->lits, 16, "schema"));
    char *d = malloc(len + 1);
    if (!d) return lma_error(LMA_ERR_NOMEM, "out of memory");
    memcpy(d, s, len);
    d[len] = 0;
    c->lits[c->n_lits++] = (lit){d, (int)len, nd};
    return LMA_OK;
}

#define SUPPORTED "type (object, array, string, number, integer, boolean, null), properties, required, items, " \
                  "enum, additionalProperties: false, and the annotations title, description, $schema, $id, " \
                  "default, examples"

static int plain_name(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\') return 0;
    return 1;
}

static lma_status compile(lma_json_constraint *c, const cJSON *s, int depth, int *out) {
    if (depth > MAX_DEPTH - 2) return lma_error(LMA_ERR_UNSUPPORTED, "JSON schema: nested deeper than %d", MAX_DEPTH - 2);
    if (!cJSON_IsObject(s)) return lma_error(LMA_ERR_FORMAT, "JSON schema: a schema must be an object");
    static const char *const known[] = {"type", "properties", "required", "items", "enum", "additionalProperties",
                                        "title", "description", "$schema", "$id", "default", "examples", NULL};
    for (const cJSON *k = s->child; k; k = k->next) {
        int ok = 0;
        for (int i = 0; known[i] && !ok; i++) ok = !strcmp(k->string, known[i]);
        if (!ok) return lma_error(LMA_ERR_UNSUPPORTED, "JSON schema: \"%s\" is not supported (supported: " SUPPORTED ")",
                                  k->string);
    }
    const cJSON *ap = cJSON_GetObjectItemCaseSensitive(s, "additionalProperties");
    if (ap && !cJSON_IsFalse(ap))
        return lma_error(LMA_ERR_UNSUPPORTED, "JSON schema: additionalProperties must be false when given (supported: "
                         SUPPORTED ")");
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(s, "enum");
    if (en) {
        if (!cJSON_IsArray(en) || !cJSON_GetArraySize(en) || cJSON_GetArraySize(en) > MAX_SET)
            return lma_error(LMA_ERR_FORMAT, "JSON schema: \"enum\" must list 1 to %d values", MAX_SET);
        int nd = add_node(c, T_ENUM);
        if (nd < 0) return LMA_ERR_NOMEM;
        c->nodes[nd].first = c->n_lits;
        int minlen = 1 << 30;
        for (const cJSON *v = en->child; v; v = v->next) {
            if (cJSON_IsObject(v) || cJSON_IsArray(v))
                return lma_error(LMA_ERR_UNSUPPORTED, "JSON schema: enum values must be strings, numbers, booleans or null");
            char *text = cJSON_PrintUnformatted(v);
            if (!text) return lma_error(LMA_ERR_NOMEM, "out of memory");
            lma_status st = add_lit(c, text, strlen(text), -1);
            if ((int)strlen(text) < minlen) minlen = (int)strlen(text);
            free(text);
            LMA_TRY(st);
        }
        c->nodes[nd].n = c->n_lits - c->nodes[nd].first;
        c->nodes[nd].minlen = minlen;
        *out = nd;
        return LMA_OK;
    }
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(s, "type");
    static const char *const tnames[] = {"object", "array", "string", "number", "integer", "boolean", "null"};
    static const int tvals[] = {T_OBJECT, T_ARRAY, T_STRING, T_NUMBER, T_INTEGER, T_BOOLEAN, T_NULL};
    static const int tmin[] = {2, 2, 2, 1, 1, 4, 4};
    int type = -1, minlen = 1;
    if (!ty) type = T_ANY;
    else if (cJSON_IsString(ty))
        for (int i = 0; i < 7; i++)
            if (!strcmp(ty->valuestring, tnames[i])) { type = tvals[i]; minlen = tmin[i]; }
    if (type < 0) return lma_error(LMA_ERR_UNSUPPORTED, "JSON schema: \"type\" must be one name (supported: " SUPPORTED ")");
    int nd = add_node(c, type);
    if (nd < 0) return LMA_ERR_NOMEM;
    c->nodes[nd].minlen = minlen;
    if (type == T_ARRAY) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(s, "items");
        if (it) {
            int sub;
            LMA_TRY(compile(c, it, depth + 1, &sub));
            c->nodes[nd].items = sub;
        }
    }
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
    if (props && type != T_OBJECT) return lma_error(LMA_ERR_FORMAT, "JSON schema: \"properties\" needs \"type\": \"object\"");
    if (type == T_OBJECT && props) {
        if (!cJSON_IsObject(props) || cJSON_GetArraySize(props) > MAX_SET)
            return lma_error(LMA_ERR_FORMAT, "JSON schema: \"properties\" must be an object of at most %d schemas", MAX_SET);
        /* the names first, contiguous; then their schemas */
        int first = c->n_lits, n = 0;
        for (const cJSON *p = props->child; p; p = p->next, n++) {
            if (!plain_name(p->string))
                return lma_error(LMA_ERR_UNSUPPORTED, "JSON schema: property \"%s\" has a quote, backslash or control "
                                 "character", p->string);
            LMA_TRY(add_lit(c, p->string, strlen(p->string), -1));
        }
        int k = 0;
        for (const cJSON *p = props->child; p; p = p->next, k++) {
            int sub;
            LMA_TRY(compile(c, p, depth + 1, &sub));
            c->lits[first + k].node = sub;
        }
        c->nodes[nd].first = first;
        c->nodes[nd].n = n;
    }
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(s, "required");
    if (req) {
        if (type != T_OBJECT || !cJSON_IsArray(req)) return lma_error(LMA_ERR_FORMAT, "JSON schema: \"required\" must be a list");
        for (const cJSON *r = req->child; r; r = r->next) {
            int found = -1;
            for (int i = 0; cJSON_IsString(r) && i < c->nodes[nd].n; i++)
                if (!strcmp(c->lits[c->nodes[nd].first + i].s, r->valuestring)) found = i;
            if (found < 0)
                return lma_error(LMA_ERR_FORMAT, "JSON schema: required \"%s\" is not among the properties",
                                 cJSON_IsString(r) ? r->valuestring : "?");
            c->nodes[nd].required |= 1ULL << found;
        }
    }
    if (type == T_OBJECT) { /* {"a":v,"b":w}: braces, each required member and the commas between */
        node *o = &c->nodes[nd];
        int len = 2, k = 0;
        for (int i = 0; i < o->n; i++)
            if (o->required >> i & 1) len += (k++ ? 1 : 0) + c->lits[o->first + i].len + 3 + c->nodes[c->lits[o->first + i].node].minlen;
        o->minlen = len;
    }
    *out = nd;
    return LMA_OK;
}

/* ---- the automaton ---------------------------------------------------------------------- */

static int is_ws(unsigned char b) { return b == ' ' || b == '\n' || b == '\t' || b == '\r'; }
static const lit *prop_of(const lma_json_constraint *c, const node *o, int i) { return &c->lits[o->first + i]; }

static int push(state *s, frame f) {
    if (s->depth >= MAX_DEPTH) return 0;
    s->f[s->depth++] = f;
    return 1;
}

static frame value_frame(int nd) { frame f = {0}; f.kind = F_VALUE; f.node = (int16_t)nd; f.prop = -1; return f; }

/* a frame completed: pop it and advance its parent */
static void complete(state *s) {
    s->depth--;
    if (s->depth == 0) { s->done = 1; return; }
    frame *p = &s->f[s->depth - 1];
    p->ws = 0;
    if (p->kind == F_OBJ) p->phase = p->phase == 5 ? 1 : 3; /* a key (5 -> expect ':') or a value (2 -> 3) */
    else if (p->kind == F_ARR) p->phase = 2;
}

/* number states: 0 after '-', 1 after a leading 0, 2 int digits, 3 after '.', 4 frac digits,
 * 5 after e, 6 after the exponent sign, 7 exponent digits */
static int num_can_end(int st) { return st == 1 || st == 2 || st == 4 || st == 7; }
static int num_step(int st, unsigned char b, int integer) {
    int dig = b >= '0' && b <= '9';
    switch (st) {
    case 0: return b == '0' ? 1 : dig ? 2 : -1;
    case 1: case 2:
        if (st == 2 && dig) return 2;
        if (integer) return -1;
        return b == '.' ? 3 : (b == 'e' || b == 'E') ? 5 : -1;
    case 3: case 4:
        if (dig) return 4;
        return st == 4 && (b == 'e' || b == 'E') ? 5 : -1;
    case 5: return dig ? 7 : (b == '+' || b == '-') ? 6 : -1;
    case 6: case 7: return dig ? 7 : -1;
    }
    return -1;
}

/* candidates of an enum / key frame that still match after byte b at position pos */
static uint64_t match(const lma_json_constraint *c, int first, uint64_t mask, int pos, unsigned char b) {
    uint64_t m = 0;
    for (int i = 0; i < MAX_SET; i++)
        if ((mask >> i & 1) && c->lits[first + i].len > pos && (unsigned char)c->lits[first + i].s[pos] == b) m |= 1ULL << i;
    return m;
}
static int any_complete(const lma_json_constraint *c, int first, uint64_t mask, int pos) {
    for (int i = 0; i < MAX_SET; i++)
        if ((mask >> i & 1) && c->lits[first + i].len == pos) return i;
    return -1;
}

/* starts the value of frame f (F_VALUE) with its first byte b */
static int start_value(const lma_json_constraint *c, state *s, unsigned char b) {
    frame *f = &s->f[s->depth - 1];
    const node *n = &c->nodes[f->node];
    int t = n->type, any = t == T_ANY;
    frame g = {0};
    g.node = f->node;
    g.prop = -1;
    if (t == T_ENUM) {
        uint64_t all = n->n >= 64 ? ~0ULL : (1ULL << n->n) - 1, m = match(c, n->first, all, 0, b);
        if (!m) return 0;
        g.kind = F_ENUM; g.pos = 1; g.mask = m;
        *f = g;
        int extendable = 0;
        for (int i = 0; i < MAX_SET; i++)
            if ((m >> i & 1) && c->lits[n->first + i].len > 1) extendable = 1;
        if (!extendable) complete(s); /* a one-byte literal (enum [1]) */
        return 1;
    }
    if (b == '{' && (any || t == T_OBJECT)) { g.kind = F_OBJ; g.phase = 0; if (any) g.node = (int16_t)f->node; *f = g; return 1; }
    if (b == '[' && (any || t == T_ARRAY)) { g.kind = F_ARR; g.phase = 0; *f = g; return 1; }
    if (b == '"' && (any || t == T_STRING)) { g.kind = F_STR; *f = g; return 1; }
    if ((b == '-' || (b >= '0' && b <= '9')) && (any || t == T_NUMBER || t == T_INTEGER)) {
        g.kind = F_NUM; g.phase = (uint8_t)num_step(0, b, 0); if (b == '-') g.phase = 0;
        g.pos = 1; *f = g; return 1;
    }
    const char *lits[3] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++)
        if (b == (unsigned char)lits[i][0] && (any || (i < 2 ? t == T_BOOLEAN : t == T_NULL))) {
            g.kind = F_LIT; g.litp = lits[i]; g.pos = 1; *f = g; return 1;
        }
    return 0;
}

static int obj_all_required(const node *o, uint64_t used) { return o->type != T_OBJECT || !(o->required & ~used); }
static int obj_free(const node *o) { return o->type == T_ANY || o->n == 0; }
static uint64_t obj_unused(const node *o, uint64_t used) {
    uint64_t all = o->n >= 64 ? ~0ULL : (1ULL << o->n) - 1;
    return all & ~used;
}

/* feeds one byte; 0 when the automaton rejects it */
static int feed(const lma_json_constraint *c, state *s, unsigned char b) {
    for (;;) {
        if (s->done) return 0; /* the generation stops at completion */
        frame *f = &s->f[s->depth - 1];
        const node *n = &c->nodes[f->node];
        switch (f->kind) {
        case F_VALUE:
            if (is_ws(b)) return ++f->ws <= MAX_WS;
            return start_value(c, s, b);
        case F_STR:
            if (f->pos > 0) { /* utf-8 continuation bytes still due */
                if ((b & 0xC0) != 0x80) return 0;
                f->pos--;
                return 1;
            }
            if (f->phase == 1) { /* after a backslash */
                if (b == 'u') { f->phase = 2; return 1; }
                if (!strchr("\"\\/bfnrt", b) || !b) return 0;
                f->phase = 0;
                return 1;
            }
            if (f->phase >= 2) { /* \u hex digits */
                if (!((b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F'))) return 0;
                f->phase = f->phase == 5 ? 0 : (uint8_t)(f->phase + 1);
                return 1;
            }
            if (b == '"') { complete(s); return 1; }
            if (b == '\\') { f->phase = 1; return 1; }
            if (b < 0x20) return 0;
            if (b < 0x80) return 1;
            if (b >= 0xC2 && b <= 0xDF) { f->pos = 1; return 1; }
            if (b >= 0xE0 && b <= 0xEF) { f->pos = 2; return 1; }
            if (b >= 0xF0 && b <= 0xF4) { f->pos = 3; return 1; }
            return 0;
        case F_NUM: {
            int nx = num_step(f->phase, b, n->type == T_INTEGER);
            if (nx >= 0 && f->pos < MAX_NUM) { f->phase = (uint8_t)nx; f->pos++; return 1; }
            if (!num_can_end(f->phase) || s->depth == 1) return 0;
            complete(s);
            continue; /* the parent takes b */
        }
        case F_LIT:
            if (!f->litp[f->pos] || (unsigned char)f->litp[f->pos] != b) return 0;
            if (!f->litp[++f->pos]) complete(s);
            return 1;
        case F_ENUM: {
            uint64_t m = match(c, n->first, f->mask, f->pos, b);
            if (m) {
                f->mask = m;
                f->pos++;
                /* a string literal closes itself; complete as soon as nothing can extend */
                int k = any_complete(c, n->first, m, f->pos);
                if (k >= 0) {
                    int extendable = 0;
                    for (int i = 0; i < MAX_SET; i++)
                        if ((m >> i & 1) && c->lits[n->first + i].len > f->pos) extendable = 1;
                    if (!extendable) complete(s);
                }
                return 1;
            }
            if (any_complete(c, n->first, f->mask, f->pos) < 0 || s->depth == 1) return 0;
            complete(s);
            continue;
        }
        case F_KEY: { /* a property name of a schema'd object, after its opening quote */
            const node *o = &c->nodes[s->f[s->depth - 2].node];
            if (b == '"') {
                int k = any_complete(c, o->first, f->mask, f->pos);
                if (k < 0) return 0;
                frame *p = &s->f[s->depth - 2];
                p->prop = (int16_t)k;
                p->mask |= 1ULL << k;
                complete(s);
                return 1;
            }
            uint64_t m = match(c, o->first, f->mask, f->pos, b);
            if (!m) return 0;
            f->mask = m;
            f->pos++;
            return 1;
        }
        case F_OBJ:
            if (is_ws(b) && f->phase != 2 && f->phase != 5) return ++f->ws <= MAX_WS;
            f->ws = 0;
            switch (f->phase) {
            case 0: case 4: /* a key, or '}' (not after a comma) */
                if (b == '}' && f->phase == 0 && obj_all_required(n, f->mask)) { complete(s); return 1; }
                if (b != '"') return 0;
                f->phase = 5;
                if (obj_free(n)) { frame k = {0}; k.kind = F_STR; k.key = 1; k.node = f->node; k.prop = -1; return push(s, k); }
                if (!obj_unused(n, f->mask)) return 0;
                { frame k = {0}; k.kind = F_KEY; k.node = f->node; k.prop = -1; k.mask = obj_unused(n, f->mask); return push(s, k); }
            case 1: /* ':' */
                if (b != ':') return 0;
                f->phase = 2;
                {
                    int vn = obj_free(n) ? (n->type == T_ANY ? f->node : -1) : prop_of(c, n, f->prop)->node;
                    if (vn < 0) vn = c->n_nodes - 1; /* the "any" node every constraint has last */
                    return push(s, value_frame(vn));
                }
            case 3: /* ',' or '}' */
                if (b == '}') { if (!obj_all_required(n, f->mask)) return 0; complete(s); return 1; }
                if (b != ',') return 0;
                if (!obj_free(n) && !obj_unused(n, f->mask)) return 0;
                f->phase = 4;
                return 1;
            }
            return 0;
        case F_ARR:
            if (is_ws(b) && f->phase != 1) return ++f->ws <= MAX_WS;
            f->ws = 0;
            if (f->phase == 0 && b == ']') { complete(s); return 1; }
            if (f->phase == 2) {
                if (b == ']') { complete(s); return 1; }
                if (b != ',') return 0;
                f->phase = 3;
                return 1;
            }
            if (f->phase == 0 || f->phase == 3) {
                int it = n->type == T_ARRAY && n->items >= 0 ? n->items : c->n_nodes - 1;
                f->phase = 1;
                if (!push(s, value_frame(it))) return 0;
                continue; /* the new value takes b */
            }
            return 0;
        }
        return 0;
    }
}

/* ---- the closing cost: fewest bytes that complete the output from s ------------------------ */

static int members_cost(const lma_json_constraint *c, const node *o, uint64_t used, int comma_first) {
    int len = 0, k = 0;
    for (int i = 0; o->type == T_OBJECT && i < o->n; i++)
        if ((o->required >> i & 1) && !(used >> i & 1))
            len += (k++ || comma_first ? 1 : 0) + prop_of(c, o, i)->len + 3 + c->nodes[prop_of(c, o, i)->node].minlen;
    return len;
}

static int close_cost(const lma_json_constraint *c, const state *s) {
    if (s->done) return 0;
    int cost = 0;
    for (int i = s->depth - 1; i >= 0; i--) {
        const frame *f = &s->f[i];
        const node *n = &c->nodes[f->node];
        switch (f->kind) {
        case F_VALUE: cost += n->minlen; break;
        case F_STR:
            cost += f->pos + (f->phase == 1 ? 1 : f->phase >= 2 ? 6 - f->phase : 0) + 1;
            if (f->key) cost += 2; /* ':' and a one-byte value ("0") */
            break;
        case F_NUM: cost += num_can_end(f->phase) ? 0 : 1; break;
        case F_LIT: cost += (int)strlen(f->litp) - f->pos; break;
        case F_ENUM: {
            int best = 1 << 30;
            for (int k = 0; k < MAX_SET; k++)
                if ((f->mask >> k & 1) && c->lits[n->first + k].len - f->pos < best) best = c->lits[n->first + k].len - f->pos;
            cost += best;
            break;
        }
        case F_KEY: { /* the name, its quote, ':', the shortest value, then the other required members */
            const frame *p = &s->f[i - 1];
            const node *o = &c->nodes[p->node];
            int best = 1 << 30;
            for (int k = 0; k < MAX_SET; k++) {
                if (!(f->mask >> k & 1) || prop_of(c, o, k)->len < f->pos) continue;
                int v = prop_of(c, o, k)->len - f->pos + 2 + c->nodes[prop_of(c, o, k)->node].minlen +
                        members_cost(c, o, p->mask | 1ULL << k, 1);
                if (v < best) best = v;
            }
            cost += best + 1; /* '}' */
            i--; /* the object is paid for */
            break;
        }
        case F_OBJ:
            switch (f->phase) {
            case 0: cost += members_cost(c, n, f->mask, 0) + 1; break;
            case 1: cost += 1 + c->nodes[obj_free(n) ? c->n_nodes - 1 : prop_of(c, n, f->prop)->node].minlen +
                           members_cost(c, n, f->mask, 1) + 1; break;
            case 2: case 3: cost += members_cost(c, n, f->mask, 1) + 1; break;
            case 4: { /* a member must follow the comma */
                int m = members_cost(c, n, f->mask, 0);
                if (!m) m = obj_free(n) ? 4 : 1 << 20; /* "":0 ; a schema'd object always has a required or spare key */
                if (!obj_free(n) && m == (1 << 20))
                    for (int k = 0; k < n->n; k++)
                        if (!(f->mask >> k & 1)) {
                            int v = prop_of(c, n, k)->len + 3 + c->nodes[prop_of(c, n, k)->node].minlen;
                            if (v < m) m = v;
                        }
                cost += m + 1;
                break;
            }
            case 5: cost += 1; break; /* the free key's string paid for ':' and its value; '}' */
            }
            break;
        case F_ARR:
            cost += (f->phase == 3 ? c->nodes[n->type == T_ARRAY && n->items >= 0 ? n->items : c->n_nodes - 1].minlen : 0) + 1;
            break;
        }
    }
    return cost;
}

/* ---- the YAML subset (see json_constraint.h) ---------------------------------------------------
 * One frame, f[0]: phase = the state below, pos = lines done, ws = 1 after a sequence item
 * (another item may follow), prop = bytes of the current key or scalar. */
enum { Y_LINE, Y_KEY, Y_COLON, Y_VSTART, Y_VALUE, Y_SEQ, Y_IND1, Y_IND2, Y_DASH, Y_ISTART, Y_ITEM };
#define Y_MAX_KEY 64
#define Y_MAX_SCALAR 256

static int y_key_first(unsigned char b) { return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || b == '_'; }
static int y_key_char(unsigned char b) { return y_key_first(b) || (b >= '0' && b <= '9') || b == '-'; }
static int y_scalar_first(unsigned char b) { return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9'); }
static int y_scalar_char(unsigned char b) {
    return y_scalar_first(b) || b == ' ' || b == '.' || b == ',' || b == '_' || b == '-' || b == '(' || b == ')' ||
           b == '/' || b == '\'' || b == '+' || b == '%' || b == '$' || b == '=' || b == ';' || b == '!' || b == '?';
}

static int yfeed(state *s, unsigned char b) {
    frame *f = &s->f[0];
    if (s->done) return 0;
    switch (f->phase) {
    case Y_LINE:
        if (y_key_first(b)) { f->phase = Y_KEY; f->prop = 1; f->ws = 0; return 1; }
        if (b == ' ' && f->ws) { f->phase = Y_IND1; return 1; }
        return 0;
    case Y_KEY:
        if (b == ':') { f->phase = Y_COLON; return 1; }
        if (y_key_char(b) && f->prop < Y_MAX_KEY) { f->prop++; return 1; }
        return 0;
    case Y_COLON:
        if (b == ' ') { f->phase = Y_VSTART; return 1; }
        if (b == '\n') { f->phase = Y_SEQ; return 1; }
        return 0;
    case Y_VSTART: case Y_ISTART:
        if (!y_scalar_first(b)) return 0;
        f->phase = f->phase == Y_VSTART ? Y_VALUE : Y_ITEM;
        f->prop = 1;
        return 1;
    case Y_VALUE: case Y_ITEM:
        if (b == '\n') {
            f->ws = f->phase == Y_ITEM;
            f->phase = Y_LINE;
            f->pos++;
            return 1;
        }
        if (y_scalar_char(b) && f->prop < Y_MAX_SCALAR) { f->prop++; return 1; }
        return 0;
    case Y_SEQ: case Y_IND1:
        if (b != ' ') return 0;
        f->phase = f->phase == Y_SEQ ? Y_IND1 : Y_IND2;
        return 1;
    case Y_IND2:
        if (b != '-') return 0;
        f->phase = Y_DASH;
        return 1;
    case Y_DASH:
        if (b != ' ') return 0;
        f->phase = Y_ISTART;
        return 1;
    }
    return 0;
}

/* bytes to the nearest end: "k: v" on a fresh document, the rest of a line, an item */
static int y_close_cost(const state *s) {
    const frame *f = &s->f[0];
    if (s->done) return 0;
    switch (f->phase) {
    case Y_LINE: return f->pos ? 0 : 4;
    case Y_KEY: return 3;
    case Y_COLON: return 2;
    case Y_VSTART: case Y_ISTART: return 1;
    case Y_VALUE: case Y_ITEM: return 0;
    case Y_SEQ: return 5;
    case Y_IND1: return 4;
    case Y_IND2: return 3;
    case Y_DASH: return 2;
    }
    return 1 << 20;
}

static int y_can_end(const state *s) {
    const frame *f = &s->f[0];
    return s->done || (f->phase == Y_LINE && f->pos > 0) || f->phase == Y_VALUE || f->phase == Y_ITEM;
}

static int can_end(const lma_json_constraint *c, const state *s);

static void copy_state(state *d, const state *s) {
    d->depth = s->depth;
    d->done = s->done;
    memcpy(d->f, s->f, (size_t)s->depth * sizeof d->f[0]);
}

static int feed_any(const lma_json_constraint *c, state *s, unsigned char b) { return c->yaml ? yfeed(s, b) : feed(c, s, b); }
static int close_any(const lma_json_constraint *c, const state *s) { return c->yaml ? y_close_cost(s) : close_cost(c, s); }

/* ---- the public side ------------------------------------------------------------------------ */

void lma_json_constraint_reset(lma_json_constraint *c) {
    memset(&c->st, 0, sizeof c->st);
    if (c->gram) { lma_grammar_reset(c->gram); return; }
    if (c->yaml) { c->st.depth = 1; c->st.f[0].phase = Y_LINE; return; }
    push(&c->st, value_frame(c->root));
}

int lma_json_constraint_min_tokens(const lma_json_constraint *c) {
    return c->gram ? lma_grammar_min_bytes(c->gram) : c->yaml ? 4 : c->nodes[c->root].minlen;
}

typedef struct { const char *text; size_t len; const char *name; } grammar_src;

static lma_status make(const lma_tokenizer *tok, const cJSON *schema, int yaml, const grammar_src *gs,
                       lma_json_constraint **out) {
    *out = NULL;
    lma_json_constraint *c = lma_calloc(1, sizeof *c, "json constraint");
    if (!c) return LMA_ERR_NOMEM;
    c->yaml = yaml;
    lma_status s = LMA_OK;
    if (schema) s = compile(c, schema, 0, &c->root);
    else { /* the json format: an object, any keys, any values */
        c->root = add_node(c, T_OBJECT);
        if (c->root < 0) s = LMA_ERR_NOMEM;
        else c->nodes[c->root].minlen = 2;
    }
    int any = s == LMA_OK ? add_node(c, T_ANY) : -1; /* last: values of free objects and arrays */
    if (s == LMA_OK && any < 0) s = LMA_ERR_NOMEM;
    if (s == LMA_OK) c->nodes[any].minlen = 1;
    c->V = tok ? lma_tok_vocab_size(tok) : 0; /* no tokenizer: a validator (lma_json_schema_check) */
    if (s == LMA_OK && tok) {
        c->piece = lma_calloc((size_t)c->V, sizeof *c->piece, "token pieces");
        c->plen = lma_calloc((size_t)c->V, sizeof *c->plen, "token pieces");
        c->plain = lma_calloc((size_t)c->V, 1, "token pieces");
        c->first = lma_calloc((size_t)c->V, 1, "token pieces");
        c->second = lma_calloc((size_t)c->V, 1, "token pieces");
        if (!c->piece || !c->plen || !c->plain || !c->first || !c->second) s = LMA_ERR_NOMEM;
    }
    int single[128] = {0};
    lma_buf pool = {0};
    for (int id = 0; s == LMA_OK && id < c->V; id++) { /* the pieces into one pool (the mask walks them in order) */
        unsigned char buf[PIECE_MAX];
        int n = lma_tok_piece_bytes(tok, id, buf, PIECE_MAX);
        if (n > 0 && (s = lma_buf_append(&pool, buf, (size_t)n)) == LMA_OK) c->plen[id] = n;
    }
    c->pool = (unsigned char *)pool.p;
    for (size_t id = 0, off = 0; s == LMA_OK && id < (size_t)c->V; off += (size_t)c->plen[id], id++)
        if (c->plen[id] > 0) c->piece[id] = c->pool + off;
    for (int id = 0; s == LMA_OK && id < c->V; id++) {
        int n = c->plen[id];
        if (n <= 0) continue; /* specials, unknown, too long: never allowed */
        const unsigned char *buf = c->piece[id];
        c->first[id] = buf[0];
        c->second[id] = n > 1 ? buf[1] : 0;
        int plain = 1;
        for (int k = 0; k < n && plain;) {
            unsigned char b = buf[k];
            int l = b < 0x80 ? 1 : (b >= 0xC2 && b <= 0xDF) ? 2 : (b >= 0xE0 && b <= 0xEF) ? 3 : (b >= 0xF0 && b <= 0xF4) ? 4 : 0;
            if (!l || k + l > n || b < 0x20 || b == '"' || b == '\\') { plain = 0; break; }
            for (int j = 1; j < l; j++) plain &= (buf[k + j] & 0xC0) == 0x80;
            k += l;
        }
        if (c->yaml) {
            plain = 1;
            for (int k = 0; k < n && plain; k++) plain = y_scalar_char(buf[k]);
        }
        c->plain[id] = (unsigned char)plain;
        if (n == 1 && buf[0] < 128) single[buf[0]] = 1;
    }
    for (int b = 0x20; s == LMA_OK && b < 0x7f; b++)
        if (tok && !single[b])
            s = lma_error(LMA_ERR_UNSUPPORTED, "constrained decoding needs a token for each printable byte; this tokenizer "
                          "has none for '%c'", b);
    if (s == LMA_OK && gs) { /* the budget needs a token for each byte a shortest completion uses */
        unsigned char byte_tok[256] = {0};
        for (int id = 0; id < c->V; id++)
            if (c->plen[id] == 1) byte_tok[c->piece[id][0]] = 1;
        s = lma_grammar_compile(gs->text, gs->len, gs->name, tok ? byte_tok : NULL, &c->gram);
    }
    if (s != LMA_OK) { lma_json_constraint_free(c); return s; }
    lma_json_constraint_reset(c);
    *out = c;
    return LMA_OK;
}

lma_status lma_json_constraint_new(const lma_tokenizer *tok, const cJSON *schema, lma_json_constraint **out) {
    return make(tok, schema, 0, NULL, out);
}

lma_status lma_yaml_constraint_new(const lma_tokenizer *tok, lma_json_constraint **out) { return make(tok, NULL, 1, NULL, out); }

lma_status lma_grammar_constraint_new(const lma_tokenizer *tok, const char *text, size_t len, const char *name,
                                      lma_json_constraint **out) {
    grammar_src gs = {text, len, name};
    return make(tok, NULL, 0, &gs, out);
}

lma_status lma_grammar_check(const char *grammar, size_t glen, const char *name, const char *text, size_t len, int *valid) {
    *valid = 0;
    lma_json_constraint *c = NULL;
    grammar_src gs = {grammar, glen, name};
    LMA_TRY(make(NULL, NULL, 0, &gs, &c));
    *valid = lma_grammar_matches(c->gram, text, len);
    lma_json_constraint_free(c);
    return LMA_OK;
}

lma_status lma_json_schema_check(const cJSON *schema, const char *text, size_t len, int *valid) {
    *valid = 0;
    lma_json_constraint *c = NULL;
    LMA_TRY(make(NULL, schema, 0, NULL, &c));
    int ok = 1;
    for (size_t i = 0; ok && i < len; i++) ok = feed(c, &c->st, (unsigned char)text[i]);
    *valid = ok && len > 0 && can_end(c, &c->st);
    lma_json_constraint_free(c);
    return LMA_OK;
}

lma_status lma_json_constraint_clone(const lma_json_constraint *c, lma_json_constraint **out) {
    *out = NULL;
    lma_json_constraint *k = lma_malloc(sizeof *k, "json constraint");
    if (!k) return LMA_ERR_NOMEM;
    *k = *c;
    k->shared = 1;
    k->gram = NULL;
    lma_status s = c->gram ? lma_grammar_clone(c->gram, &k->gram) : LMA_OK;
    if (s != LMA_OK) { free(k); return s; }
    lma_json_constraint_reset(k);
    *out = k;
    return LMA_OK;
}

void lma_json_constraint_free(lma_json_constraint *c) {
    if (!c) return;
    lma_grammar_free(c->gram);
    if (c->shared) { free(c); return; }
    free(c->pool);
    free(c->piece);
    free(c->first);
    free(c->second);
    free(c->plen);
    free(c->plain);
    for (int i = 0; i < c->n_lits; i++) free(c->lits[i].s);
    free(c->lits);
    free(c->nodes);
    free(c);
}

static int can_end(const lma_json_constraint *c, const state *s) {
    if (c->yaml) return y_can_end(s);
    if (s->done) return 1;
    if (s->depth != 1) return 0;
    const frame *f = &s->f[0];
    return (f->kind == F_NUM && num_can_end(f->phase)) ||
           (f->kind == F_ENUM && any_complete(c, c->nodes[f->node].first, f->mask, f->pos) >= 0);
}

lma_status lma_json_constraint_mask(lma_json_constraint *c, float *logits, int V, int tokens_left, const int32_t *eos_ids,
                                    int n_eos) {
    if (c->gram) return lma_grammar_mask(c->gram, c->piece, c->plen, c->V, logits, V, tokens_left, eos_ids, n_eos);
    int allowed = 0;
    /* three shortcuts, each exact: a token whose first byte the state rejects is rejected;
     * inside a string (no escape or UTF-8 sequence open), a plain token leaves the state as
     * it is (YAML: inside a scalar); where at most 8 first bytes pass, the state after each
     * is kept and a token whose second byte that state rejects is rejected */
    unsigned char first_ok[256], slot[256];
    int n_first = 0;
    for (int b = 0; b < 256; b++) {
        state t;
        copy_state(&t, &c->st);
        first_ok[b] = (unsigned char)feed_any(c, &t, (unsigned char)b);
        n_first += first_ok[b];
    }
    const frame *top = c->st.depth ? &c->st.f[c->st.depth - 1] : NULL;
    int in_str = !c->yaml && !c->st.done && top && top->kind == F_STR && top->phase == 0 && top->pos == 0;
    int str_ok = in_str && close_cost(c, &c->st) <= tokens_left;
    /* YAML: inside a scalar, a token of scalar bytes only keeps the state (bar the length) */
    int in_scalar = c->yaml && !c->st.done && (top->phase == Y_VALUE || top->phase == Y_ITEM);
    int room = in_scalar ? Y_MAX_SCALAR - top->prop : 0;
    state after[8];
    unsigned char second_ok[8][256];
    memset(slot, 255, sizeof slot);
    if (n_first <= 8) {
        int n = 0;
        for (int b = 0; b < 256; b++) {
            if (!first_ok[b]) continue;
            copy_state(&after[n], &c->st);
            feed_any(c, &after[n], (unsigned char)b);
            for (int b2 = 0; b2 < 256; b2++) {
                state t;
                copy_state(&t, &after[n]);
                second_ok[n][b2] = (unsigned char)feed_any(c, &t, (unsigned char)b2);
            }
            slot[b] = (unsigned char)n++;
        }
    }
    for (int id = 0; id < V; id++) {
        int ok = 0;
        if (id < c->V && c->plen[id] > 0 && in_scalar && c->plain[id]) {
            ok = c->plen[id] <= room; /* the close cost stays 0 */
        } else if (id < c->V && c->plen[id] > 0 && in_str && c->plain[id]) {
            ok = str_ok;
        } else if (id < c->V && c->plen[id] > 0 && first_ok[c->first[id]]) {
            int sl = slot[c->first[id]], k = 0;
            state t;
            if (sl != 255 && c->plen[id] > 1 && !second_ok[sl][c->second[id]]) {
                ok = 0;
            } else {
                if (sl != 255) { copy_state(&t, &after[sl]); k = 1; }
                else copy_state(&t, &c->st);
                ok = 1;
                for (; ok && k < c->plen[id]; k++) ok = feed_any(c, &t, c->piece[id][k]);
                if (ok) ok = close_any(c, &t) <= tokens_left;
            }
        }
        if (!ok) logits[id] = -INFINITY;
        allowed += ok;
    }
    if (can_end(c, &c->st))
        for (int i = 0; i < n_eos; i++)
            if (eos_ids[i] >= 0 && eos_ids[i] < V && logits[eos_ids[i]] == -INFINITY) { logits[eos_ids[i]] = 0; allowed++; }
    if (!allowed) return lma_error(LMA_ERR_ARG, "constrained decoding: no token can continue the JSON output");
    return LMA_OK;
}

lma_status lma_json_constraint_accept(lma_json_constraint *c, int32_t id, int *complete) {
    *complete = 0;
    if (c->gram) {
        if (id >= 0 && id < c->V && c->plen[id] > 0) {
            if (!lma_grammar_feed(c->gram, c->piece[id], (size_t)c->plen[id]))
                return lma_error(LMA_ERR_INTERNAL, "constrained decoding: token %d rejected by the grammar", id);
        } else if (!lma_grammar_can_end(c->gram)) {
            return lma_error(LMA_ERR_INTERNAL, "constrained decoding: token %d ends an incomplete output", id);
        } else {
            *complete = 1;
            return LMA_OK;
        }
        *complete = lma_grammar_done(c->gram);
        return LMA_OK;
    }
    if (id >= 0 && id < c->V && c->plen[id] > 0) {
        for (int k = 0; k < c->plen[id]; k++)
            if (!feed_any(c, &c->st, c->piece[id][k])) return lma_error(LMA_ERR_INTERNAL, "constrained decoding: token %d rejected", id);
    } else if (!can_end(c, &c->st)) {
        return lma_error(LMA_ERR_INTERNAL, "constrained decoding: token %d ends an incomplete value", id);
    } else {
        c->st.done = 1;
    }
    *complete = c->st.done;
    return LMA_OK;
}

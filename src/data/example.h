/* Training examples from JSONL (or a top-level JSON array), normalized.
 *
 * One reader for every dataset format lmadapt accepts (docs/formats.md "Datasets"):
 *   messages      {"messages":[{"role","content"},...]}           (OpenAI / TRL)
 *   alpaca        {"instruction","input"?,"output"}               (user = instruction
 *                                                                  + "\n\n" + input)
 *   sharegpt      {"conversations":[{"from","value"},...]}        human->user, gpt->assistant
 *   prompt/completion {"prompt","completion"} (strings or message lists)
 *   preference    {"prompt"?,"chosen","rejected"} (strings or message lists), and the
 *                 OpenAI DPO file {"input":{"messages"},"preferred_output",
 *                 "non_preferred_output"}
 *   qa            {"question","answer"}                           (GSM8K style)
 *   text          {"text"}                                        (language modelling)
 * Every record becomes an lma_example: a list of messages (for preference data: the
 * prompt messages) plus, for preference data, the chosen and rejected replies. Each
 * example carries its file, line (1-based line of the record's first byte) and index.
 *
 * Streaming: lma_ex_next() holds one record at a time; memory is bounded by the
 * longest record (at most LMA_EX_MAX_RECORD bytes), not by the number of records.
 * A file whose first non-blank byte is '[' is read as a JSON array, element by
 * element, with the same bound.
 *
 * Errors: a record that cannot be normalized (not JSON, not an object, no known
 * format, a field of the wrong type, invalid UTF-8) is not fatal: the example comes
 * back with error_code set (a short stable key, e.g. "invalid_json") and error (a
 * one-line message naming the file, line and field) so that a command can report it
 * and go on. lma_ex_next() itself fails only for i/o errors and over-long records.
 *
 * Ownership: the reader owns the example it returns; it stays valid until the next
 * lma_ex_next() or lma_ex_close(). All text pointers point into the example (its
 * parsed JSON or its own buffer) and are NUL-terminated. */
#ifndef LMA_DATA_EXAMPLE_H
#define LMA_DATA_EXAMPLE_H
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "core/buf.h" /* lma_buf: the texts and lines examples are copied into */
#include "core/io.h"
#include "core/status.h"

#define LMA_EX_MAX_RECORD ((size_t)64 << 20) /* bytes in one record */

typedef enum {
    LMA_EXF_UNKNOWN = 0,
    LMA_EXF_MESSAGES,
    LMA_EXF_ALPACA,
    LMA_EXF_SHAREGPT,
    LMA_EXF_PROMPT_COMPLETION,
    LMA_EXF_PREFERENCE,
    LMA_EXF_QA,
    LMA_EXF_TEXT,
    LMA_EXF_COUNT
} lma_ex_format;

typedef enum {
    LMA_ROLE_SYSTEM = 0,
    LMA_ROLE_USER,
    LMA_ROLE_ASSISTANT,
    LMA_ROLE_TOOL,    /* tool, function, ipython, observation */
    LMA_ROLE_TEXT,    /* the single segment of a {"text"} record */
    LMA_ROLE_UNKNOWN, /* missing or unrecognized role (role_name says which) */
    LMA_ROLE_COUNT
} lma_role;

typedef struct {
    lma_role role;
    const char *role_name; /* as written ("human", "gpt", ...); NULL when missing */
    const char *text;      /* content, "" when missing or not a string */
    size_t len;            /* bytes in text */
    int has_text;          /* 1 when the content was present and a string */
    int weight;            /* OpenAI "weight": -1 absent, else its value */
    const cJSON *json;     /* the message object in the record (NULL for plain strings) */
} lma_ex_msg;

typedef struct {
    const char *file;
    int64_t line;  /* 1-based line of the record's first byte */
    int64_t index; /* 0-based record number in the file */
    lma_ex_format format;
    lma_ex_msg *msgs;     size_t n_msgs;     /* (n_msgs) conversation, or the prompt */
    lma_ex_msg *chosen;   size_t n_chosen;   /* (n_chosen) preference: preferred reply */
    lma_ex_msg *rejected; size_t n_rejected; /* (n_rejected) preference: other reply */
    cJSON *json;          /* the parsed record; NULL when it is not JSON */
    const char *raw;      /* the record's bytes as in the file (not NUL-terminated) */
    size_t raw_len;
    const char *error_code; /* NULL when the record is usable */
    char error[320];
    /* private: storage reused from record to record */
    size_t cap_[3];
    char *buf_; size_t buf_cap_;
} lma_example;


typedef struct lma_ex_reader lma_ex_reader;

/* path "-" reads stdin. */
lma_status lma_ex_open(const char *path, lma_ex_reader **out);
/* *ex = the next example, or NULL at the end of the file. */
lma_status lma_ex_next(lma_ex_reader *r, lma_example **ex);
void lma_ex_close(lma_ex_reader *r);

/* Parses one record (text, len) into ex (zero-initialize ex before the first
 * use; reuse it for the next record; free with lma_ex_clear). Always returns
 * LMA_OK unless memory runs out: problems with the record go to ex->error_code.
 * The example points into text (raw) until the next parse. */
lma_status lma_ex_parse(const char *text, size_t len, const char *file, int64_t line, lma_example *ex);
void lma_ex_clear(lma_example *ex);

const char *lma_ex_format_name(lma_ex_format f);
const char *lma_role_name(lma_role r);

typedef enum {
    LMA_EX_PROMPT = 1,   /* system, user, tool and unknown turns */
    LMA_EX_RESPONSE = 2, /* assistant turns, chosen and rejected replies, text */
    LMA_EX_ALL = 3
} lma_ex_part;
/* Appends the text of the chosen part to b, turns separated by "\n" (b->len is
 * not reset: the caller sets b->len = 0 first when it wants only this example).
 * b->p stays NUL-terminated. */
lma_status lma_ex_text(const lma_example *ex, lma_ex_part part, lma_buf *b);

/* Appends the record as one JSONL line (without the newline) to out: the
 * original bytes when they hold no newline, else the compact JSON. */
lma_status lma_ex_line(const lma_example *ex, lma_buf *out);

/* 1 when s[0..n) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF);
 * else 0 and *bad_off = offset of the first bad byte. */
int lma_utf8_valid(const char *s, size_t n, size_t *bad_off);
#endif

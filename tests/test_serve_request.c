/* serve/request.c: the OpenAI request parser. Valid bodies give the fields (content parts
 * joined, defaults, prompt as [string], developer -> system, max_completion_tokens);
 * malformed, mistyped, out-of-range, unsupported and oversized-in-structure bodies are
 * refused with status 400 naming the field; every refusal leaves nothing to free
 * (ASan's leak check in the sanitizer pass). The embeddings request likewise. */
#include "serve/request.h"
#include "test.h"

static int parse(const char *body, lma_sreq_kind kind, lma_serve_req *r, lma_serve_error *e) {
    return lma_serve_req_parse(body, strlen(body), kind, 1000, r, e);
}

static void refused(const char *body, lma_sreq_kind kind, const char *param, const char *what) {
    lma_serve_req r;
    lma_serve_error e;
    int rc = parse(body, kind, &r, &e);
    CHECK(rc == 400 && e.status == 400 && !strcmp(e.type, "invalid_request_error") && e.message[0],
          "%s: refused with 400 (got %d: %s)", what, rc, e.message);
    CHECK(!strcmp(e.param, param), "%s: names param '%s' (got '%s')", what, param, e.param);
    CHECK(r.root_ == NULL && r.msgs == NULL, "%s: nothing left allocated", what);
}

static void valid(void) {
    lma_serve_req r;
    lma_serve_error e;
    const char *chat = "{\"model\": \"m\", \"messages\": [{\"role\": \"developer\", \"content\": \"be brief\"},"
                       "{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"a\"}, {\"type\": \"text\", "
                       "\"text\": \"b\"}]}], \"max_completion_tokens\": 7, \"temperature\": 0, \"top_p\": 0.5, "
                       "\"seed\": -1, \"stop\": [\"x\", \"yy\"], \"stream\": true, \"stream_options\": "
                       "{\"include_usage\": true}, \"n\": 1, \"presence_penalty\": 0, \"logprobs\": false, "
                       "\"response_format\": {\"type\": \"text\"}, \"user\": \"ignored\", \"tools\": []}  \n";
    CHECK(parse(chat, LMA_SREQ_CHAT, &r, &e) == 0, "chat body parses: %s", e.message);
    CHECK(r.n_msgs == 2 && !strcmp(r.msgs[0].role, "system") && !strcmp(r.msgs[0].content, "be brief"),
          "developer is system");
    CHECK(r.n_msgs == 2 && !strcmp(r.msgs[1].role, "user") && !strcmp(r.msgs[1].content, "a\nb"),
          "text parts joined with a newline (got '%s')", r.n_msgs == 2 ? r.msgs[1].content : "");
    CHECK(r.max_tokens == 7 && r.temperature == 0 && r.top_p == 0.5, "numbers read");
    CHECK(r.has_seed && r.seed == UINT64_MAX, "seed -1 is 2^64-1");
    CHECK(r.n_stop == 2 && !strcmp(r.stop[1], "yy"), "stop list");
    CHECK(r.stream && r.include_usage, "stream and include_usage");
    CHECK(r.model && !strcmp(r.model, "m"), "model");
    lma_serve_req_free(&r);

    CHECK(parse("{\"prompt\": \"a\", \"response_format\": {\"type\": \"json_object\"}}", LMA_SREQ_COMPLETION, &r, &e) == 0 &&
          r.json_mode && !r.json_schema && r.has_response_format, "json_object: constrained decoding, any object");
    lma_serve_req_free(&r);
    CHECK(parse("{\"prompt\": \"a\", \"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"name\": \"x\", "
                "\"schema\": {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"integer\"}}}}}}",
                LMA_SREQ_COMPLETION, &r, &e) == 0 && r.json_mode && r.json_schema && cJSON_IsObject(r.json_schema),
          "json_schema: its schema");
    lma_serve_req_free(&r);
    CHECK(parse("{\"prompt\": \"a\", \"grammar\": \"root ::= [0-9]+\"}", LMA_SREQ_COMPLETION, &r, &e) == 0 && r.grammar &&
          !strcmp(r.grammar, "root ::= [0-9]+") && !r.json_mode, "grammar: a GBNF grammar");
    lma_serve_req_free(&r);
    refused("{\"prompt\": \"a\", \"grammar\": 3}", LMA_SREQ_COMPLETION, "grammar", "a grammar that is not a string");
    refused("{\"prompt\": \"a\", \"grammar\": \"root ::= \\\"a\\\"\", \"response_format\": {\"type\": \"json_object\"}}", LMA_SREQ_COMPLETION,
            "grammar", "a grammar with a json response_format");
    CHECK(parse("{\"prompt\": [\"hello\"]}", LMA_SREQ_COMPLETION, &r, &e) == 0, "completion parses");
    CHECK(r.prompt && !strcmp(r.prompt, "hello") && r.max_tokens == -1 && r.temperature == 1 && r.top_p == 1 &&
          !r.has_seed && !r.stream && r.n_stop == 0 && !r.model && r.repetition_penalty == 1 && r.top_k == 0,
          "defaults: max_tokens unset, temperature 1, top_p 1, no seed, no stream");
    lma_serve_req_free(&r);
    CHECK(parse("{\"prompt\": \"p\", \"stop\": \"END\", \"top_k\": -1, \"max_tokens\": 1000}", LMA_SREQ_COMPLETION,
                &r, &e) == 0 && r.n_stop == 1 && !strcmp(r.stop[0], "END") && r.top_k == 0 && r.max_tokens == 1000,
          "stop as a string, top_k -1 is off, max_tokens at the limit");
    CHECK(!r.ignore_eos && !r.has_response_format, "ignore_eos: off by default; no response_format");
    lma_serve_req_free(&r);
    CHECK(parse("{\"prompt\": \"p\", \"ignore_eos\": true}", LMA_SREQ_COMPLETION, &r, &e) == 0 && r.ignore_eos,
          "ignore_eos: true (vLLM's extension)");
    lma_serve_req_free(&r);
    refused("{\"prompt\": \"p\", \"ignore_eos\": 1}", LMA_SREQ_COMPLETION, "ignore_eos", "ignore_eos not a boolean");
}

static void malformed(void) {
    lma_sreq_kind C = LMA_SREQ_CHAT, P = LMA_SREQ_COMPLETION;
    refused("", C, "", "empty body");
    refused("{\"messages\": [", C, "", "truncated JSON");
    refused("{\"prompt\": \"a\"} x", P, "", "bytes after the value");
    refused("[1, 2]", C, "", "not an object");
    refused("\"str\"", P, "", "a string body");
    refused("{}", C, "messages", "no messages");
    refused("{}", P, "prompt", "no prompt");
    refused("{\"messages\": {}}", C, "messages", "messages an object");
    refused("{\"messages\": []}", C, "messages", "messages empty");
    refused("{\"messages\": [1]}", C, "messages[0]", "a message that is a number");
    refused("{\"messages\": [{\"role\": \"tool\", \"content\": \"x\"}]}", C, "messages[0]", "role tool");
    refused("{\"messages\": [{\"role\": 3, \"content\": \"x\"}]}", C, "messages[0]", "role a number");
    refused("{\"messages\": [{\"role\": \"user\"}]}", C, "messages[0]", "no content");
    refused("{\"messages\": [{\"role\": \"user\", \"content\": 5}]}", C, "messages[0].content", "content a number");
    refused("{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}", C,
            "messages[0].content", "an image part");
    refused("{\"prompt\": [1, 2, 3]}", P, "prompt", "a token-id prompt");
    refused("{\"prompt\": [\"a\", \"b\"]}", P, "prompt", "two prompts");
    refused("{\"prompt\": \"a\", \"model\": 1}", P, "model", "model a number");
    refused("{\"prompt\": \"a\", \"max_tokens\": 1001}", P, "max_tokens", "max_tokens above the limit");
    refused("{\"prompt\": \"a\", \"max_tokens\": 0}", P, "max_tokens", "max_tokens 0");
    refused("{\"prompt\": \"a\", \"max_tokens\": 2.5}", P, "max_tokens", "max_tokens not an integer");
    refused("{\"prompt\": \"a\", \"max_tokens\": \"5\"}", P, "max_tokens", "max_tokens a string");
    refused("{\"prompt\": \"a\", \"max_tokens\": 1e400}", P, "max_tokens", "max_tokens infinite");
    refused("{\"prompt\": \"a\", \"temperature\": 2.5}", P, "temperature", "temperature above 2");
    refused("{\"prompt\": \"a\", \"temperature\": -0.1}", P, "temperature", "temperature negative");
    refused("{\"prompt\": \"a\", \"top_p\": 0}", P, "top_p", "top_p 0");
    refused("{\"prompt\": \"a\", \"seed\": 1e300}", P, "seed", "seed beyond 2^53");
    refused("{\"prompt\": \"a\", \"stop\": [\"1\", \"2\", \"3\", \"4\", \"5\"]}", P, "stop", "five stops");
    refused("{\"prompt\": \"a\", \"stop\": [\"\"]}", P, "stop", "an empty stop");
    refused("{\"prompt\": \"a\", \"stop\": [3]}", P, "stop", "a stop that is a number");
    refused("{\"prompt\": \"a\", \"stop\": {}}", P, "stop", "stop an object");
    refused("{\"prompt\": \"a\", \"stream\": 1}", P, "stream", "stream a number");
    refused("{\"prompt\": \"a\", \"stream_options\": {\"include_usage\": true}}", P, "stream_options",
            "stream_options without stream");
    refused("{\"prompt\": \"a\", \"n\": 2}", P, "n", "n 2");
    refused("{\"prompt\": \"a\", \"best_of\": 3}", P, "best_of", "best_of 3");
    refused("{\"prompt\": \"a\", \"logprobs\": true}", P, "logprobs", "logprobs");
    refused("{\"prompt\": \"a\", \"echo\": true}", P, "echo", "echo");
    refused("{\"prompt\": \"a\", \"frequency_penalty\": 0.5}", P, "frequency_penalty", "frequency_penalty");
    refused("{\"prompt\": \"a\", \"logit_bias\": {\"1\": 5}}", P, "logit_bias", "logit_bias");
    refused("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tools\": [{\"type\": \"function\"}]}", C,
            "tools", "tools");
    refused("{\"prompt\": \"a\", \"response_format\": {\"type\": \"yaml\"}}", P, "response_format",
            "a yaml response_format");
    refused("{\"prompt\": \"a\", \"response_format\": {\"type\": \"json_schema\", \"json_schema\": {}}}", P,
            "response_format", "json_schema without a schema");
    char long_stop[400];
    memset(long_stop, 'x', sizeof long_stop);
    memcpy(long_stop, "{\"prompt\": \"a\", \"stop\": \"", 25);
    memcpy(long_stop + sizeof long_stop - 3, "\"}", 3);
    refused(long_stop, P, "stop", "a stop string over 256 bytes");
    /* nesting deeper than cJSON's limit (1000): refused, not a stack overflow */
    size_t depth = 5000;
    char *deep = malloc(2 * depth + 32);
    strcpy(deep, "{\"prompt\": \"a\", \"x\": ");
    size_t k = strlen(deep);
    for (size_t i = 0; i < depth; i++) deep[k++] = '[';
    for (size_t i = 0; i < depth; i++) deep[k++] = ']';
    deep[k++] = '}';
    deep[k] = 0;
    refused(deep, P, "", "5000 nested arrays");
    free(deep);
    /* a body that is not NUL-terminated is read only up to its length */
    lma_serve_req r;
    lma_serve_error e;
    const char body[] = "{\"prompt\": \"abc\"}GARBAGE";
    CHECK(lma_serve_req_parse(body, 17, P, 10, &r, &e) == 0 && !strcmp(r.prompt, "abc"), "length-bounded body");
    lma_serve_req_free(&r);
}

static void embeddings(void) {
    lma_serve_embed_req r;
    lma_serve_error e;
    const char *b1 = "{\"model\": \"e\", \"input\": [\"a\", \"bc\"], \"encoding_format\": \"base64\", \"dimensions\": 384}";
    CHECK(lma_serve_embed_req_parse(b1, strlen(b1), &r, &e) == 0 && r.n_inputs == 2 && !strcmp(r.inputs[1], "bc") &&
          r.base64 && r.dimensions == 384 && !strcmp(r.model, "e"), "embeddings: array input, base64, dimensions");
    lma_serve_embed_req_free(&r);
    const char *b2 = "{\"input\": \"one\"}";
    CHECK(lma_serve_embed_req_parse(b2, strlen(b2), &r, &e) == 0 && r.n_inputs == 1 && !r.base64 && !r.model &&
          !r.dimensions, "embeddings: a string input, float by default");
    lma_serve_embed_req_free(&r);
    static const struct { const char *body, *param; } bad[] = {
        {"{}", "input"}, {"{\"input\": []}", "input"}, {"{\"input\": [1, 2]}", "input"}, {"{\"input\": \"\"}", "input"},
        {"{\"input\": 5}", "input"}, {"{\"input\": \"a\", \"encoding_format\": \"hex\"}", "encoding_format"},
        {"{\"input\": \"a\", \"dimensions\": 0}", "dimensions"}, {"{\"input\": \"a\", \"model\": 3}", "model"},
        {"[\"a\"]", ""}, {"{\"input\": \"a\"", ""}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = lma_serve_embed_req_parse(bad[i].body, strlen(bad[i].body), &r, &e);
        CHECK(rc == 400 && !strcmp(e.param, bad[i].param) && !r.root_ && !r.inputs, "embeddings: %s refused (param %s)",
              bad[i].body, e.param);
    }
    char big[8 * 300 + 32];
    size_t k = (size_t)sprintf(big, "{\"input\": [");
    for (int i = 0; i < 300; i++) k += (size_t)sprintf(big + k, "%s\"x\"", i ? ", " : "");
    sprintf(big + k, "]}");
    CHECK(lma_serve_embed_req_parse(big, strlen(big), &r, &e) == 400 && !strcmp(e.param, "input"),
          "embeddings: 300 inputs refused (256 at most)");
}

int main(void) {
    valid();
    malformed();
    embeddings();
    TEST_END();
}

#!/usr/bin/env bash
# lmadapt serve end to end, on the real SmolLM2-135M-Instruct (label model; exit 77 without it).
#   serve_openai.sh LMADAPT SRC curl     every endpoint with curl: greedy chat and completion
#                                        (streamed and not) == `lmadapt generate` on the same
#                                        rendered prompt ids; error objects and statuses (400,
#                                        401, 404, 405, 413, 429); API keys; a client that
#                                        disconnects frees its slot (non-streamed and streamed);
#                                        a slow client is cut off while others are served; an
#                                        over-long chunked body; SIGTERM lets the request in
#                                        flight finish, then the server exits 0; with
#                                        all-minilm-l6-v2 fetched, /v1/embeddings == lmadapt embed.
#   serve_openai.sh LMADAPT SRC slow     slowloris: 4 clients trickling a request (its line, a
#                                        header, the body; the next request on a kept-alive
#                                        connection) a byte every 1.5 s get 408 and are closed
#                                        by --request-timeout, while a chat request, a kept-alive
#                                        client and an oversized body (413) are served.
#   serve_openai.sh LMADAPT SRC client   the same server driven by the official `openai` Python
#                                        client (tests/serve_openai.py).
#   serve_openai.sh LMADAPT SRC rag      serve --rag on a 6-paragraph index of tests/data/squad
#                                        (all-minilm-l6-v2; 77 without it): greedy chat, streamed
#                                        and not, == `lmadapt rag ask --json` on the same question;
#                                        the "sources" field (in the first chunk of a stream) lists
#                                        the chunks rag ask packed, numbered [1].., with scores;
#                                        any [n] the answer cites is a listed source; with an
#                                        openai client, the same through model_extra.
# The openai package: $LMA_OPENAI_PYTHON (a python that has it), else a venv the test makes
# once in $LMA_SERVE_VENV (default: serve-venv beside the lmadapt binary, the build folder) with pip. When pip cannot
# install it (no network), the client mode exits 77 (skipped) saying so; the curl mode needs
# nothing but curl and python3 (for reading JSON).
set -uo pipefail
LMA=$1 SRC=$2 MODE=${3:-curl}
MODEL=${LMA_SERVE_MODEL:-smollm2-135m-instruct}
WORK=$(mktemp -d /tmp/lma_serve_test.XXXXXX)
PIDS=()
# LMA_SERVE_LOGDIR: keep the servers' logs there (e.g. to read sanitizer reports)
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    [ -n "${LMA_SERVE_LOGDIR:-}" ] && mkdir -p "$LMA_SERVE_LOGDIR" && cp "$WORK"/*.log "$LMA_SERVE_LOGDIR"/ 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
fails=0 passes=0
ok() { if [ "$1" = 0 ]; then passes=$((passes + 1)); else fails=$((fails + 1)); echo "FAIL: $2"; fi; }
check() { local what=$1; shift; "$@"; ok $? "$what"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

if ! "$LMA" tokenizer encode --tokenizer "$MODEL" --text x >/dev/null 2>&1; then
    echo "SKIP: model $MODEL not fetched (scripts/fetch-models.sh)"; exit 77
fi
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }
# /v1/embeddings is tested when the embedding model is fetched too
EMBED=all-minilm-l6-v2 EMBED_OPT=()
if "$LMA" embed --model $EMBED --text x --json >/dev/null 2>&1; then EMBED_OPT=(--embed $EMBED); else
    echo "note: $EMBED not fetched: /v1/embeddings untested"; EMBED=; fi

# start_server NAME [options...]: sets PORT and SPID; the log is $WORK/NAME.log
start_server() {
    local name=$1; shift
    "$LMA" serve --model "$MODEL" --port 0 --threads 2 "$@" >"$WORK/$name.log" 2>&1 &
    SPID=$!
    PIDS+=("$SPID")
    for _ in $(seq 1 600); do
        PORT=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$WORK/$name.log")
        [ -n "$PORT" ] && return 0
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.2
    done
    echo "FAIL: the server did not start:"; cat "$WORK/$name.log"; exit 1
}

# post PATH BODY [curl args...]: prints the body, then the status on the last line
post() { local p=$1 b=$2; shift 2; curl -s -w '\n%{http_code}' -H 'Content-Type: application/json' "$@" \
    --data-binary "$b" "http://127.0.0.1:$PORT$p"; }
status_of() { tail -n1 <<<"$1"; }
body_of() { sed '$d' <<<"$1"; }
# the error object: {"error": {"message": str, "type": str, "param": str|null, "code": str|null}}
is_error() { # RESPONSE STATUS [PARAM]
    [ "$(status_of "$1")" = "$2" ] || { echo "  status $(status_of "$1") != $2: $(body_of "$1")"; return 1; }
    body_of "$1" | python3 -c "
import json, sys
e = json.load(sys.stdin)['error']
assert isinstance(e['message'], str) and e['message'] and isinstance(e['type'], str), e
assert set(e) == {'message', 'type', 'param', 'code'}, e
want = sys.argv[1] if len(sys.argv) > 1 else None
assert want is None or e['param'] == want, (e['param'], want)" ${3:+"$3"}
}
# concatenates an SSE stream's deltas; checks it ends with [DONE] and has one finish_reason
sse_text() { python3 -c "
import json, sys
lines = [l for l in sys.stdin.read().split('\n') if l]
assert all(l.startswith('data: ') for l in lines), lines[:3]
assert lines[-1] == 'data: [DONE]', lines[-1]
text, fin, usage = '', [], None
for l in lines[:-1]:
    d = json.loads(l[6:])
    if d.get('usage'): usage = d['usage']
    for c in d['choices']:
        text += c.get('text') or (c.get('delta') or {}).get('content') or ''
        if c['finish_reason']: fin.append(c['finish_reason'])
assert len(fin) == 1, fin
print(json.dumps({'text': text, 'finish': fin[0], 'usage': usage}))"; }

# the openai client: $LMA_OPENAI_PYTHON, else the venv (made with pip; 77 when it cannot be)
openai_python() {
    PY=${LMA_OPENAI_PYTHON:-}
    [ -n "$PY" ] && return 0
    VENV=${LMA_SERVE_VENV:-$(cd "$(dirname "$LMA")" && pwd)/serve-venv}
    if ! "$VENV/bin/python" -c "import openai" 2>/dev/null; then
        echo "creating $VENV with the openai client (pip)"
        python3 -m venv "$VENV" >/dev/null 2>&1 &&
            timeout 300 "$VENV/bin/pip" install -q openai >"$WORK/pip.log" 2>&1
        if ! "$VENV/bin/python" -c "import openai" 2>/dev/null; then
            echo "SKIP: the openai Python client could not be installed with pip (no network?):"
            tail -3 "$WORK/pip.log" 2>/dev/null
            echo "set LMA_OPENAI_PYTHON to a python that has 'openai' to run this test"
            return 1
        fi
    fi
    PY=$VENV/bin/python
}

N=24
if [ "$MODE" = rag ]; then
    [ -n "$EMBED" ] || { echo "SKIP: $EMBED not fetched"; exit 77; }
    head -6 "$SRC/tests/data/squad/corpus.jsonl" >"$WORK/corpus.jsonl"
    "$LMA" rag index --db "$WORK/rag.sqlite" --embed $EMBED -q "$WORK/corpus.jsonl" >/dev/null
    ok $? "rag index"
    Q="Which NFL team represented the AFC at Super Bowl 50?"
    "$LMA" rag ask --db "$WORK/rag.sqlite" --model "$MODEL" --k 3 --max-tokens $N --json "$Q" >"$WORK/want_rag.json" 2>/dev/null
    ok $? "rag ask"
    start_server rag --rag "$WORK/rag.sqlite" --rag-k 3
    grep -q "answers from $WORK/rag.sqlite" "$WORK/rag.log"
    ok $? "the start line names the store"
    body='{"messages": [{"role": "user", "content": "'"$Q"'"}], "max_tokens": '$N', "temperature": 0}'
    post /v1/chat/completions "$body" | sed '$d' >"$WORK/got_rag.json"
    body_s='{"messages": [{"role": "user", "content": "'"$Q"'"}], "max_tokens": '$N', "temperature": 0, "stream": true}'
    post /v1/chat/completions "$body_s" | sed '$d' >"$WORK/got_rag.sse"
    check "serve --rag == rag ask (answer, sources; streamed and not)" python3 - "$WORK" <<'EOF'
import json, re, sys
w = sys.argv[1]
want = json.load(open(w + "/want_rag.json"))
got = json.load(open(w + "/got_rag.json"))
fails = []
def expect(c, what):
    if not c: fails.append(what)
ans = got["choices"][0]["message"]["content"]
expect(ans.strip() == want["answer"], f"answer {ans!r} != rag ask {want['answer']!r}")
src = got.get("sources")
expect(isinstance(src, list) and len(src) == len(want["sources"]) >= 1, f"sources {src!r}")
for i, (g, x) in enumerate(zip(src or [], want["sources"])):
    expect(g["n"] == i + 1 and g["doc_id"] == x["doc_id"] and g["chunk"] == x["chunk"] and g["text"] == x["text"],
           f"source {i}: {g!r} != {x!r}")
    expect(abs(g["score"] - x["score"]) < 1e-9 and g["score"] > 0, f"score {g['score']} != {x['score']}")
expect(src and src[0]["doc_id"] == "Super_Bowl_50/0", "the paragraph with the answer comes first")
expect(got["usage"]["prompt_tokens"] == want["prompt_tokens"], f"prompt tokens {got['usage']} != {want['prompt_tokens']}")
for n in re.findall(r"\[(\d+)\]", ans):
    expect(1 <= int(n) <= len(src), f"[{n}] cites no listed source")
# the stream: sources in the first chunk only, the text equal
events = [json.loads(l[6:]) for l in open(w + "/got_rag.sse").read().split("\n") if l.startswith("data: {")]
expect("sources" in events[0] and events[0]["sources"] == src, "the first chunk carries the sources")
expect(all("sources" not in e for e in events[1:]), "only the first chunk carries them")
text = "".join((c.get("delta") or {}).get("content") or "" for e in events for c in e["choices"])
expect(text == ans, f"streamed {text!r} != {ans!r}")
for f in fails: print("  ", f)
sys.exit(1 if fails else 0)
EOF
    check "serve --rag: a chat without a user message is a 400 naming messages" \
        is_error "$(post /v1/chat/completions '{"messages": [{"role": "system", "content": "x"}]}')" 400 messages
    r=$(post /v1/completions '{"prompt": "The sky is", "max_tokens": 2, "temperature": 0}')
    check "serve --rag: /v1/completions is a raw prompt (no sources)" test "$(body_of "$r" | json "'sources' in d")" = False
    if openai_python; then
        "$PY" "$SRC/tests/serve_openai.py" --rag "http://127.0.0.1:$PORT/v1" "$WORK/want_rag.json" "$Q" $N
        ok $? "the openai client reads the sources (tests/serve_openai.py --rag)"
    fi
    kill -TERM "$SPID"; wait "$SPID"
    ok $? "SIGTERM: exit 0"
elif [ "$MODE" = slow ]; then
    # --- slowloris: requests trickled one byte every 1.5 s (under the idle --timeout 3) are
    # answered 408 and closed by --request-timeout 4, while other clients are served
    start_server slow --timeout 3 --request-timeout 4 --max-body-kb 64
    python3 "$SRC/tests/serve_slowloris.py" "$PORT" 1.5 30 >"$WORK/loris.json" &
    loris=$!
    PIDS+=("$loris")
    sleep 1
    # a normal client meanwhile: a chat completion, and two requests on one kept-alive
    # connection 2 s apart (idle time between requests does not count against it)
    r=$(post /v1/chat/completions '{"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8, "temperature": 0}')
    check "a chat request while 4 slow clients trickle: 200" test "$(status_of "$r")/$(body_of "$r" | json "d['object']")" = \
        200/chat.completion
    ka=$(python3 - "$PORT" <<'PYEOF'
import http.client, sys, time
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
out = []
for i in range(2):
    c.request("GET", "/health"); r = c.getresponse(); r.read(); out.append(r.status)
    time.sleep(2)
print(*out)
PYEOF
)
    check "two requests on a kept-alive connection 2 s apart: 200 200 ($ka)" test "$ka" = "200 200"
    big=$(python3 -c "print('{\"prompt\": \"' + 'a' * 70000 + '\"}')")
    check "a body over --max-body-kb meanwhile: 413" is_error "$(post /v1/completions "$big")" 413
    # ignore_eos (vLLM's extension, for benchmarks): a reply that ends at end-of-turn goes on
    # to max_tokens
    b='{"messages": [{"role": "user", "content": "Say OK."}], "max_tokens": 40, "temperature": 0'
    r1=$(post /v1/chat/completions "$b}" | sed '$d' | json "d['choices'][0]['finish_reason'], d['usage']['completion_tokens'] < 40")
    r2=$(post /v1/chat/completions "$b, \"ignore_eos\": true}" | sed '$d' | json "d['choices'][0]['finish_reason'], d['usage']['completion_tokens']")
    check "ignore_eos: stop before 40 tokens without it ($r1), 40 tokens with it ($r2)" test "$r1/$r2" = "stop True/length 40"
    wait "$loris"
    cat "$WORK/loris.json"
    # the first three must be cut 4 s after they connected (+ the watchdog's 0.25 s and a
    # margin for a loaded machine); the kept-alive one after its response + idle 3 + 4 s
    check "every slow client answered 408 and closed within its deadline" python3 - "$WORK/loris.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
bound = {"line": 4 + 2.5, "header": 4 + 2.5, "body": 4 + 2.5, "keepalive": 3 + 4 + 2.5}
for k, b in bound.items():
    assert r[k]["closed"] and 3.5 <= r[k]["after"] <= b, (k, r[k])
    assert r[k]["status"] in (408, None), (k, r[k])  # None: a reset beat the 408 to the client
assert sum(v["status"] == 408 for v in r.values()) >= 3, r
PYEOF
    check "the access log has their 408 lines" test "$(grep -c '" 408 .*request not received within 4 s' "$WORK/slow.log")" = 4
    check "the server still answers" test "$(curl -s --max-time 5 "http://127.0.0.1:$PORT/health" | json "d['status']")" = ok
    greedy='{"messages": [{"role": "user", "content": "Describe a cat."}], "max_tokens": 30, "temperature": 0'
    free_text=$(post /v1/chat/completions "$greedy}" | sed '$d' | json "json.dumps(d['choices'][0]['message']['content'])")
    kill -TERM "$SPID"; wait "$SPID"
    ok $? "SIGTERM: exit 0"

    # --- --format / --json-schema: the default of a request without response_format
    printf '%s' '{"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}, "required": ["name", "age"]}' >"$WORK/schema.json"
    start_server fmt --json-schema "$WORK/schema.json"
    r=$(post /v1/chat/completions "$greedy}")
    check "--json-schema: a request without response_format gets JSON valid against it" test \
        "$(body_of "$r" | json "(lambda v: sorted(v) == ['age', 'name'] and isinstance(v['age'], int))(json.loads(d['choices'][0]['message']['content']))")" = True
    r=$(post /v1/chat/completions "$greedy, \"response_format\": {\"type\": \"text\"}}" | sed '$d' | json "json.dumps(d['choices'][0]['message']['content'])")
    check "  response_format text overrides it: the free greedy text" test "$r" = "$free_text"
    r=$(post /v1/chat/completions "$greedy, \"response_format\": {\"type\": \"json_object\"}}" | sed '$d' | json "type(json.loads(d['choices'][0]['message']['content'])).__name__")
    check "  response_format json_object overrides it: an object" test "$r" = dict
    check "  max_tokens below its shortest output: 400 max_tokens" is_error "$(post /v1/completions '{"prompt": "x", "max_tokens": 2}')" 400 max_tokens
    kill -TERM "$SPID"; wait "$SPID"
    start_server yaml --format yaml
    r=$(post /v1/completions '{"prompt": "A cat:", "max_tokens": 24, "temperature": 0}' | sed '$d' | json "json.dumps(d['choices'][0]['text'])")
    check "--format yaml: a key: value mapping ($r)" python3 -c "import json,re,sys; t=json.loads(sys.argv[1]); assert re.match(r'[A-Za-z_][A-Za-z0-9_-]*:', t), t" "$r"
    kill -TERM "$SPID"; wait "$SPID"
    printf '%s\n' 'root ::= ("yes" | "no") " because " [a-z]+ "."' >"$WORK/yn.gbnf"
    start_server gbnf --grammar "$WORK/yn.gbnf"
    r=$(post /v1/completions '{"prompt": "Is it red?", "max_tokens": 24, "temperature": 1, "seed": 3}' | sed '$d' | json "json.dumps(d['choices'][0]['text'])")
    check "--grammar: a request without response_format is a sentence of the grammar ($r)" python3 -c "import json,re,sys; t=json.loads(sys.argv[1]); assert re.fullmatch(r'(yes|no) because [a-z]+[.]', t), t" "$r"
    r=$(post /v1/completions '{"prompt": "Is it red?", "max_tokens": 24, "grammar": "root ::= \"maybe\""}' | sed '$d' | json "json.dumps(d['choices'][0]['text'])")
    check "  the request's own grammar comes first ($r)" test "$r" = '"maybe"'
    kill -TERM "$SPID"; wait "$SPID"
    printf '%s' '{"anyOf": []}' >"$WORK/bad.json"
    "$LMA" serve --model "$MODEL" --port 0 --json-schema "$WORK/bad.json" >"$WORK/bad.log" 2>&1
    check "an unsupported --json-schema stops the start naming the file" grep -q "bad.json" "$WORK/bad.log"
elif [ "$MODE" = curl ]; then
    start_server main --max-active 2 --max-queue 1 --max-prompt-tokens 300 --max-tokens-limit 2000 --timeout 3 \
        --max-body-kb 64 --log-prompts "${EMBED_OPT[@]}"
    # --- health, models
    r=$(curl -s -w '\n%{http_code}' "http://127.0.0.1:$PORT/health")
    check "health is 200 ok" test "$(status_of "$r")/$(body_of "$r" | json "d['status']")" = 200/ok
    r=$(curl -s "http://127.0.0.1:$PORT/v1/models")
    check "models lists the model" test "$(json "d['object'], d['data'][0]['id'], d['data'][0]['object']" <<<"$r")" = \
        "list $MODEL model"

    # --- embeddings == lmadapt embed, as floats and as base64
    if [ -n "$EMBED" ]; then
        for t in "Hello world" "The sky is blue today."; do "$LMA" embed --model $EMBED --text "$t" --json; done \
            >"$WORK/want_embed.jsonl" 2>/dev/null
        r=$(post /v1/embeddings '{"model": "'$EMBED'", "input": ["Hello world", "The sky is blue today."]}')
        check "embeddings: 200" test "$(status_of "$r")" = 200
        body_of "$r" >"$WORK/got_embed.json"
        r=$(post /v1/embeddings '{"input": ["Hello world", "The sky is blue today."], "encoding_format": "base64"}')
        body_of "$r" >"$WORK/got_embed64.json"
        check "embeddings == lmadapt embed (float and base64), usage, model" python3 - "$WORK" "$EMBED" <<'EOF'
import base64, json, struct, sys
w, name = sys.argv[1], sys.argv[2]
want = [json.loads(l)["embedding"] for l in open(w + "/want_embed.jsonl")]
got = json.load(open(w + "/got_embed.json"))
b64 = json.load(open(w + "/got_embed64.json"))
assert got["object"] == "list" and got["model"] == name and got["usage"]["prompt_tokens"] > 4, got.get("usage")
for i, e in enumerate(got["data"]):
    assert e["index"] == i and e["object"] == "embedding"
    assert len(e["embedding"]) == len(want[i]) == 384
    assert max(abs(a - b) for a, b in zip(e["embedding"], want[i])) < 1e-6
    raw = base64.b64decode(b64["data"][i]["embedding"])
    assert list(struct.unpack("<384f", raw)) == [struct.unpack("<f", struct.pack("<f", x))[0] for x in e["embedding"]]
EOF
        check "embeddings: unknown model 404" is_error "$(post /v1/embeddings '{"model": "x", "input": "a"}')" 404 model
        check "embeddings: dimensions mismatch 400" is_error "$(post /v1/embeddings '{"input": "a", "dimensions": 3}')" 400 dimensions
        check "models lists both" test "$(curl -s "http://127.0.0.1:$PORT/v1/models" | json "len(d['data'])")" = 2
    fi

    # --- greedy chat == lmadapt generate on the rendered prompt
    printf '%s' '[{"role": "user", "content": "Name three colors."}]' >"$WORK/msgs.json"
    ids=$("$LMA" tokenizer render --tokenizer "$MODEL" --messages "$WORK/msgs.json" --generation-prompt --json |
        json "','.join(map(str, d['ids']))")
    n_prompt=$(tr ',' '\n' <<<"$ids" | wc -l)
    want=$("$LMA" generate --model "$MODEL" --ids "$ids" --max-tokens $N --temperature 0 --json 2>/dev/null)
    want_text=$(json "json.dumps(d['text'])" <<<"$want")
    want_fin=$(json "d['finish_reason']" <<<"$want")
    want_n=$(json "len(d['ids'])" <<<"$want")
    body='{"model": "'$MODEL'", "messages": [{"role": "user", "content": "Name three colors."}], "max_tokens": '$N', "temperature": 0}'
    r=$(post /v1/chat/completions "$body")
    check "chat: 200" test "$(status_of "$r")" = 200
    got=$(body_of "$r")
    check "chat greedy == generate (text)" test "$(json "json.dumps(d['choices'][0]['message']['content'])" <<<"$got")" = "$want_text"
    check "chat: finish_reason" test "$(json "d['choices'][0]['finish_reason']" <<<"$got")" = "$want_fin"
    check "chat: usage" test "$(json "d['usage']['prompt_tokens'], d['usage']['completion_tokens'], d['usage']['total_tokens']" <<<"$got")" = \
        "$n_prompt $want_n $((n_prompt + want_n))"
    check "chat: object and role" test "$(json "d['object'], d['choices'][0]['message']['role'], d['id'][:9]" <<<"$got")" = \
        "chat.completion assistant chatcmpl-"
    body_s='{"messages": [{"role": "user", "content": "Name three colors."}], "max_tokens": '$N', "temperature": 0, "stream": true, "stream_options": {"include_usage": true}}'
    s=$(post /v1/chat/completions "$body_s" | sed '$d' | sse_text)
    check "chat streamed greedy == generate" test "$(json "json.dumps(d['text'])" <<<"$s")" = "$want_text"
    check "--log-prompts: the access log shows the messages" grep -q 'prompt=\[{"role":"user","content":"Name three colors."}\]' "$WORK/main.log"
    check "chat streamed: finish and usage" test "$(json "d['finish'], d['usage']['completion_tokens']" <<<"$s")" = "$want_fin $want_n"

    # --- greedy completion == lmadapt generate --prompt
    want=$("$LMA" generate --model "$MODEL" --prompt "The sky is" --max-tokens $N --temperature 0 --json 2>/dev/null)
    want_text=$(json "json.dumps(d['text'])" <<<"$want")
    r=$(post /v1/completions '{"prompt": "The sky is", "max_tokens": '$N', "temperature": 0}')
    check "completion greedy == generate" test "$(body_of "$r" | json "json.dumps(d['choices'][0]['text'])")" = "$want_text"
    check "completion: object" test "$(body_of "$r" | json "d['object']")" = text_completion
    s=$(post /v1/completions '{"prompt": "The sky is", "max_tokens": '$N', "temperature": 0, "stream": true}' | sed '$d' | sse_text)
    check "completion streamed greedy == generate" test "$(json "json.dumps(d['text'])" <<<"$s")" = "$want_text"
    # a stop string cuts the text (and is not part of it)
    stop=$(json "max(d['text'].split(), key=len)[1:4]" <<<"$want")
    r=$(post /v1/completions '{"prompt": "The sky is", "max_tokens": '$N', "temperature": 0, "stop": ["'"$stop"'"]}')
    check "stop string '$stop': finish stop, text cut before it" test "$(body_of "$r" | json "d['choices'][0]['finish_reason'], '$stop' not in d['choices'][0]['text'], $(json "json.dumps(d['text'])" <<<"$want").startswith(d['choices'][0]['text'])")" = "stop True True"

    # response_format: constrained decoding gives parseable JSON, valid against the schema
    r=$(post /v1/chat/completions '{"messages": [{"role": "user", "content": "Describe a cat as JSON."}], "max_tokens": 40, "temperature": 1, "seed": 7, "response_format": {"type": "json_object"}}')
    check "response_format json_object: the reply parses as an object" test "$(body_of "$r" | json "type(json.loads(d['choices'][0]['message']['content'])).__name__")" = dict
    r=$(post /v1/chat/completions '{"messages": [{"role": "user", "content": "A cat as JSON."}], "max_tokens": 60, "temperature": 1, "seed": 3, "response_format": {"type": "json_schema", "json_schema": {"name": "cat", "schema": {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "mood": {"enum": ["calm", "angry"]}}, "required": ["name", "age", "mood"]}}}}')
    check "response_format json_schema: valid against it, even at max_tokens" test "$(body_of "$r" | json "(lambda v: isinstance(v['name'], str) and isinstance(v['age'], int) and v['mood'] in ('calm', 'angry'))(json.loads(d['choices'][0]['message']['content']))")" = True
    check "a budget below the shortest valid output: 400 param max_tokens" is_error "$(post /v1/chat/completions '{"messages": [{"role": "user", "content": "x"}], "max_tokens": 3, "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}}}')" 400 max_tokens
    check "an unsupported schema: 400 param response_format" is_error "$(post /v1/chat/completions '{"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_schema", "json_schema": {"schema": {"anyOf": []}}}}')" 400 response_format

    # --- errors: the OpenAI error object with the right status
    check "malformed JSON: 400" is_error "$(post /v1/chat/completions '{"messages": [')" 400
    check "n=2: 400 param n" is_error "$(post /v1/chat/completions '{"messages": [{"role": "user", "content": "x"}], "n": 2}')" 400 n
    check "bad temperature: 400" is_error "$(post /v1/completions '{"prompt": "x", "temperature": 9}')" 400 temperature
    check "max_tokens over the limit: 400" is_error "$(post /v1/completions '{"prompt": "x", "max_tokens": 2001}')" 400 max_tokens
    long=$(python3 -c "print('word ' * 400)")
    r=$(post /v1/completions '{"prompt": "'"$long"'", "max_tokens": 2}')
    check "prompt over --max-prompt-tokens: 400 context_length_exceeded" is_error "$r" 400 prompt
    check "  code context_length_exceeded" test "$(body_of "$r" | json "d['error']['code']")" = context_length_exceeded
    check "unknown model: 404" is_error "$(post /v1/completions '{"model": "gpt-4", "prompt": "x"}')" 404 model
    check "unknown URL: 404" is_error "$(post /v1/nothing '{}')" 404
    r=$(curl -s -w '\n%{http_code}' "http://127.0.0.1:$PORT/v1/chat/completions")
    check "GET on a POST route: 405" is_error "$r" 405
    big=$(python3 -c "print('{\"prompt\": \"' + 'a' * 70000 + '\"}')")
    check "body over --max-body-kb: 413" is_error "$(post /v1/completions "$big")" 413
    # the same without Content-Length (chunked): the connection is closed, the server lives on
    curl -s -o /dev/null -H 'Transfer-Encoding: chunked' --data-binary "$big" "http://127.0.0.1:$PORT/v1/completions"
    check "after an over-long chunked body the server answers" test "$(curl -s "http://127.0.0.1:$PORT/health" | json "d['status']")" = ok

    # --- disconnects free their slots
    long_body='{"prompt": "Count: 1, 2, 3,", "max_tokens": 1500, "temperature": 0}'
    curl -s -o /dev/null --max-time 2 -H 'Content-Type: application/json' -d "$long_body" "http://127.0.0.1:$PORT/v1/completions"
    curl -s -o /dev/null --max-time 2 -H 'Content-Type: application/json' \
        -d '{"prompt": "Count: 1, 2, 3,", "max_tokens": 1500, "stream": true}' "http://127.0.0.1:$PORT/v1/completions"
    for _ in $(seq 1 50); do
        a=$(curl -s "http://127.0.0.1:$PORT/health" | json "d['active'] + d['queued']")
        [ "$a" = 0 ] && break
        sleep 0.2
    done
    check "clients that disconnect free their slots (active+queued $a)" test "$a" = 0
    check "the access log marks them aborted" test "$(grep -c 'POST /v1/completions.* aborted' "$WORK/main.log")" -ge 2

    # --- busy: 2 slots + 1 queued, the fourth request gets 429
    for i in 1 2 3; do
        curl -s -o /dev/null --max-time 60 -H 'Content-Type: application/json' -d "$long_body" \
            "http://127.0.0.1:$PORT/v1/completions" &
        PIDS+=($!)
    done
    for _ in $(seq 1 100); do
        a=$(curl -s "http://127.0.0.1:$PORT/health" | json "d['active'] + d['queued']")
        [ "$a" = 3 ] && break
        sleep 0.1
    done
    r=$(post /v1/completions '{"prompt": "x", "max_tokens": 2}')
    check "queue full: 429" is_error "$r" 429
    check "  code server_busy" test "$(body_of "$r" | json "d['error']['code']")" = server_busy
    for p in "${PIDS[@]: -3}"; do kill "$p" 2>/dev/null; done

    # --- a slow client (headers never finished) is cut off after --timeout; others are served
    python3 - "$PORT" <<'EOF' >"$WORK/slow.out" 2>&1 &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Le")
t = time.time()
s.settimeout(20)
try:
    closed = s.recv(100) == b""
except Exception:
    closed = False
print("closed" if closed else "open", round(time.time() - t, 1))
EOF
    slow=$!
    sleep 0.5
    check "health answers while a slow client holds a connection" test "$(curl -s --max-time 5 "http://127.0.0.1:$PORT/health" | json "d['status']")" = ok
    wait $slow
    check "the slow client is cut off by --timeout 3 ($(cat "$WORK/slow.out"))" grep -q '^closed' "$WORK/slow.out"

    # --- API keys
    printf '# keys\nsk-test-0123456789abcdef\n\nsk-other-0123456789abcdef\n' >"$WORK/keys"
    chmod 600 "$WORK/keys"
    kill -TERM "$SPID"; wait "$SPID"
    start_server keys --api-key-file "$WORK/keys"
    check "no key: 401" is_error "$(post /v1/completions '{"prompt": "x", "max_tokens": 1}')" 401
    check "wrong key: 401" is_error "$(post /v1/completions '{"prompt": "x", "max_tokens": 1}' -H 'Authorization: Bearer sk-test-0123456789abcdeX')" 401
    check "a prefix of the key: 401" is_error "$(curl -s -w '\n%{http_code}' -H 'Authorization: Bearer sk-test' "http://127.0.0.1:$PORT/v1/models")" 401
    r=$(post /v1/completions '{"prompt": "x", "max_tokens": 1}' -H 'Authorization: Bearer sk-other-0123456789abcdef')
    check "right key (the second of the file): 200" test "$(status_of "$r")" = 200
    check "a server without --embed: /v1/embeddings 404" is_error "$(post /v1/embeddings '{"input": "a"}' -H 'Authorization: Bearer sk-test-0123456789abcdef')" 404
    check "health needs no key" test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")" = 200

    # --- graceful shutdown: the request in flight finishes, then exit 0
    curl -s -H 'Authorization: Bearer sk-test-0123456789abcdef' -H 'Content-Type: application/json' \
        -d '{"prompt": "Once upon a time", "max_tokens": 12, "temperature": 0, "stream": true}' \
        "http://127.0.0.1:$PORT/v1/completions" >"$WORK/inflight.out" &
    c=$!
    for _ in $(seq 1 100); do grep -q 'data: {' "$WORK/inflight.out" 2>/dev/null && break; sleep 0.1; done
    kill -TERM "$SPID"
    wait "$SPID"; rc=$?
    wait $c
    check "SIGTERM: exit 0" test "$rc" = 0
    check "the request in flight finished its stream" test "$(sse_text <"$WORK/inflight.out" | json "d['finish']")" = length
    check "log says stopped" grep -q 'lmadapt serve: stopped' "$WORK/keys.log"
    check "no prompt text in the access log" test "$(grep -c 'Once upon' "$WORK/keys.log")" = 0
else
    openai_python || exit 77
    start_server client --max-active 4 --max-queue 8 "${EMBED_OPT[@]}"
    : >"$WORK/want_embed.jsonl"
    [ -n "$EMBED" ] && for t in "Hello world" "The sky is blue today."; do
        "$LMA" embed --model $EMBED --text "$t" --json; done >"$WORK/want_embed.jsonl" 2>/dev/null
    printf '%s' '[{"role": "system", "content": "You are brief."}, {"role": "user", "content": "What is 2+2?"}]' \
        >"$WORK/msgs.json"
    ids=$("$LMA" tokenizer render --tokenizer "$MODEL" --messages "$WORK/msgs.json" --generation-prompt --json |
        json "','.join(map(str, d['ids']))")
    "$LMA" generate --model "$MODEL" --ids "$ids" --max-tokens $N --temperature 0 --json 2>/dev/null >"$WORK/want_chat.json"
    "$LMA" generate --model "$MODEL" --prompt "The sky is" --max-tokens $N --temperature 0 --json 2>/dev/null \
        >"$WORK/want_completion.json"
    "$PY" "$SRC/tests/serve_openai.py" "http://127.0.0.1:$PORT/v1" "$MODEL" "$WORK/want_chat.json" \
        "$WORK/want_completion.json" $N "$EMBED" "$WORK/want_embed.jsonl"
    ok $? "the openai client tests (tests/serve_openai.py)"
    kill -TERM "$SPID"; wait "$SPID"
    ok $? "SIGTERM: exit 0"
fi
echo "$passes passed, $fails failed"
[ "$fails" = 0 ]

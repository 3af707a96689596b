"""lmadapt serve driven by the official openai Python client (run by tests/serve_openai.sh).

usage: serve_openai.py BASE_URL MODEL WANT_CHAT.json WANT_COMPLETION.json MAX_TOKENS [EMBED_MODEL WANT_EMBED.jsonl]
       serve_openai.py --rag BASE_URL WANT_RAG.json QUESTION MAX_TOKENS   (a server started with --rag:
       the answer equals `lmadapt rag ask --json` (WANT_RAG.json), and the response's extra field
       "sources", read through model_extra, lists its sources; streamed, in the first chunk)
WANT_*.json: `lmadapt generate --json` on the same rendered prompt (greedy), which the
server's greedy output must equal, streamed and not. Also: models.list, usage counts,
stop strings, errors raised as the client's typed exceptions with the right status,
concurrent requests (threads) each equal to its own greedy answer.
"""
import json
import sys
from concurrent.futures import ThreadPoolExecutor

import openai


def rag_mode(base, want_f, question, n):
    want = json.load(open(want_f))
    client = openai.OpenAI(base_url=base, api_key="none", max_retries=0, timeout=600)
    msgs = [{"role": "user", "content": question}]
    r = client.chat.completions.create(model=client.models.list().data[0].id, messages=msgs, max_tokens=n,
                                       temperature=0)
    fails = []
    if r.choices[0].message.content.strip() != want["answer"]:
        fails.append(f"answer {r.choices[0].message.content!r} != {want['answer']!r}")
    src = (r.model_extra or {}).get("sources")
    if [(s["n"], s["doc_id"], s["chunk"]) for s in src or []] != [(s["n"], s["doc_id"], s["chunk"]) for s in want["sources"]]:
        fails.append(f"sources {src!r}")
    first, text = None, ""
    for c in client.chat.completions.create(model=r.model, messages=msgs, max_tokens=n, temperature=0, stream=True):
        if first is None:
            first = (c.model_extra or {}).get("sources")
        text += (c.choices[0].delta.content or "") if c.choices else ""
    if first != src:
        fails.append("the first streamed chunk's sources differ")
    if text != r.choices[0].message.content:
        fails.append(f"streamed {text!r}")
    for f in fails:
        print("FAIL:", f)
    print(f"rag: {3 - len(fails)} of 3 checks passed")
    sys.exit(1 if fails else 0)


if sys.argv[1] == "--rag":
    rag_mode(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))

base, model, want_chat_f, want_comp_f, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
want_chat = json.load(open(want_chat_f))
want_comp = json.load(open(want_comp_f))
client = openai.OpenAI(base_url=base, api_key="none", max_retries=0, timeout=600)
fails = 0
passes = 0


def check(cond, what):
    global fails, passes
    if cond:
        passes += 1
    else:
        fails += 1
        print("FAIL:", what, flush=True)


messages = [{"role": "system", "content": "You are brief."}, {"role": "user", "content": "What is 2+2?"}]

models = client.models.list()
embed_model = sys.argv[6] if len(sys.argv) > 7 and sys.argv[6] else None
check([m.id for m in models.data] == [model] + ([embed_model] if embed_model else []),
      f"models.list: {[m.id for m in models.data]}")

r = client.chat.completions.create(model=model, messages=messages, max_tokens=n, temperature=0)
check(r.choices[0].message.content == want_chat["text"],
      f"chat greedy == generate: {r.choices[0].message.content!r} vs {want_chat['text']!r}")
check(r.choices[0].finish_reason == want_chat["finish_reason"], "chat finish_reason")
check(r.usage.completion_tokens == len(want_chat["ids"]), f"chat usage.completion_tokens {r.usage.completion_tokens}")
check(r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens, "chat usage.total_tokens")
check(r.choices[0].message.role == "assistant" and r.object == "chat.completion", "chat object, role")

text, finish, usage = "", [], None
for chunk in client.chat.completions.create(model=model, messages=messages, max_tokens=n, temperature=0, stream=True,
                                            stream_options={"include_usage": True}):
    if chunk.usage:
        usage = chunk.usage
    for c in chunk.choices:
        text += c.delta.content or ""
        if c.finish_reason:
            finish.append(c.finish_reason)
check(text == want_chat["text"], f"chat streamed greedy == generate: {text!r}")
check(finish == [want_chat["finish_reason"]], f"chat streamed finish_reason {finish}")
check(usage is not None and usage.completion_tokens == len(want_chat["ids"]), "chat streamed usage")

r = client.completions.create(model=model, prompt="The sky is", max_tokens=n, temperature=0)
check(r.choices[0].text == want_comp["text"], f"completion greedy == generate: {r.choices[0].text!r}")
check(r.choices[0].finish_reason == want_comp["finish_reason"], "completion finish_reason")
text = "".join(c.choices[0].text for c in client.completions.create(model=model, prompt="The sky is", max_tokens=n,
                                                                      temperature=0, stream=True) if c.choices)
check(text == want_comp["text"], f"completion streamed greedy == generate: {text!r}")

# a stop string: the text ends before it, finish_reason stop
word = want_comp["text"].split()[1]
r = client.completions.create(model=model, prompt="The sky is", max_tokens=n, temperature=0, stop=[word])
check(r.choices[0].finish_reason == "stop" and word not in r.choices[0].text and
      want_comp["text"].startswith(r.choices[0].text), f"stop string {word!r}: {r.choices[0].text!r}")

# seeded sampling is reproducible
a = client.completions.create(model=model, prompt="The sky is", max_tokens=12, temperature=0.9, seed=7).choices[0].text
b = client.completions.create(model=model, prompt="The sky is", max_tokens=12, temperature=0.9, seed=7).choices[0].text
check(a == b, f"same seed, same text: {a!r} vs {b!r}")

# errors: typed exceptions with the status
def raises(exc, status, fn, what):
    try:
        fn()
    except exc as e:
        check(e.status_code == status, f"{what}: status {e.status_code}")
        body = e.body if isinstance(e.body, dict) else {}
        check(isinstance(body.get("message"), str), f"{what}: error body {e.body}")
        return
    check(False, f"{what}: no exception")


raises(openai.BadRequestError, 400,
       lambda: client.chat.completions.create(model=model, messages=messages, n=2), "n=2")
raises(openai.BadRequestError, 400,
       lambda: client.chat.completions.create(model=model, messages=[{"role": "tool", "content": "x"}]), "tool role")
raises(openai.NotFoundError, 404,
       lambda: client.chat.completions.create(model="gpt-4o", messages=messages, max_tokens=1), "unknown model")
raises(openai.BadRequestError, 400,
       lambda: client.completions.create(model=model, prompt="x", max_tokens=10**7), "max_tokens too large")

# concurrent requests (batched together) each give their own greedy answer
def one(i):
    return i, client.completions.create(model=model, prompt="The sky is", max_tokens=n, temperature=0).choices[0].text


with ThreadPoolExecutor(4) as ex:
    outs = list(ex.map(one, range(4)))
check(all(t == want_comp["text"] for _, t in outs), f"4 concurrent greedy completions == generate: {outs}")

# embeddings (the client asks for base64 and decodes it) == lmadapt embed
if len(sys.argv) > 7 and sys.argv[6]:
    want = [json.loads(line)["embedding"] for line in open(sys.argv[7])]
    r = client.embeddings.create(model=sys.argv[6], input=["Hello world", "The sky is blue today."])
    got = [d.embedding for d in r.data]
    check(len(got) == 2 and all(len(g) == len(w) for g, w in zip(got, want)) and
          max(abs(a - b) for g, w in zip(got, want) for a, b in zip(g, w)) < 1e-6, "embeddings == lmadapt embed")
    check(r.usage.prompt_tokens > 4 and r.model == sys.argv[6], "embeddings usage and model")

print(f"openai client: {passes} passed, {fails} failed")
sys.exit(1 if fails else 0)

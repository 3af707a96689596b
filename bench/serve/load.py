"""Load test of `lmadapt serve` on loopback (Python stdlib only).

Starts the server (or uses --url), then for each concurrency level runs that many client
threads for --seconds: each loops over requests, half streamed (SSE, include_usage), a mix
of chat and completions, max_tokens 16-64, and a fraction (--disconnect) that hang up
mid-request (streams after the first events, others after a short timeout). Reports per
level: completed requests, errors (any non-200 or malformed answer: must be 0),
completion tokens/s, end-to-end latency p50/p99, time to first token p50/p99 (streams: the first event with text),
and the server's RSS (VmRSS) after the warm-up and at the end of each level (repeat a level,
e.g. --levels 1,4,16,64,64, to see it flat).

RSS over time (leak check): --rss-every S samples the server's VmRSS every S seconds from
the end of the warm-up (--warmup-seconds at --warmup-clients) to the end, and reports the
spread (max - min) and the growth (last - first) in % of the first sample, and the RSS at
idle (after the warm-up and 1 s after each level's requests drained) with its spread: under
load RSS holds the live KV caches, at idle it should come back to the same value.

usage: python3 bench/serve/load.py --lmadapt build/lmadapt [--model smollm2-135m-instruct]
       [--levels 1,4,16,64] [--seconds 60] [--max-active 32] [--json out.json]
       [--warmup-seconds 30 --warmup-clients 64 --rss-every 10]
"""
import argparse
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

FIXED = {"max_tokens": 0, "ignore_eos": False}
PROMPTS = ["Write a short poem about the sea.", "What is the capital of France?", "Explain what a CPU does.",
           "Give me three tips for learning to cook.", "Tell me a fun fact about space.",
           "Summarize the plot of a fairy tale in two sentences."]


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def rss_kb(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.done = 0
        self.errors = []
        self.tokens = 0
        self.lat = []
        self.ttft = []
        self.disconnects = 0

    def add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                if k == "error":
                    self.errors.append(v)
                elif k in ("lat", "ttft"):
                    getattr(self, k).append(v)
                else:
                    setattr(self, k, getattr(self, k) + v)


def one_request(port, model, rng, st, disconnect):
    chat = rng.random() < 0.5
    stream = rng.random() < 0.5
    prompt = rng.choice(PROMPTS)
    body = {"model": model, "max_tokens": FIXED["max_tokens"] or rng.randint(16, 64),
            "temperature": rng.choice([0, 0.7]), "seed": rng.randint(0, 1 << 30)}
    if FIXED["ignore_eos"]:
        body["ignore_eos"] = True
    if chat:
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    path = "/v1/chat/completions" if chat else "/v1/completions"
    t0 = time.time()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=0.3 if (disconnect and not stream) else 600)
    try:
        conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        if disconnect and not stream:
            try:
                conn.getresponse().read()
            except Exception:
                pass
            st.add(disconnects=1)
            return
        resp = conn.getresponse()
        if resp.status != 200:
            st.add(error=f"{resp.status} {resp.read()[:200]!r}")
            return
        if not stream:
            d = json.loads(resp.read())
            st.add(done=1, tokens=d["usage"]["completion_tokens"], lat=time.time() - t0)
            return
        events, usage, first, ended = 0, None, None, False
        for raw in resp:
            line = raw.decode().rstrip("\n")
            if not line:
                continue
            if not line.startswith("data: "):
                st.add(error=f"bad SSE line {line[:80]!r}")
                return
            if line == "data: [DONE]":
                ended = True
                break
            d = json.loads(line[6:])
            if "error" in d:
                st.add(error=f"stream error {d['error']}")
                return
            has_text = any((c.get("text") or (c.get("delta") or {}).get("content")) for c in d.get("choices", []))
            if first is None and has_text:
                first = time.time() - t0  # the first text (a chat's first event carries only the role)
            events += 1
            if d.get("usage"):
                usage = d["usage"]
            if disconnect and events >= 3:
                st.add(disconnects=1)
                return
        if not ended or usage is None:
            st.add(error="stream ended without [DONE] or usage")
            return
        st.add(done=1, tokens=usage["completion_tokens"], lat=time.time() - t0)
        if first is not None:
            st.add(ttft=first)
    except Exception as e:  # a refused connection, a reset: errors
        st.add(error=f"{type(e).__name__}: {e}")
    finally:
        conn.close()


def run_level(port, model, clients, seconds, disconnect, seed):
    st = Stats()
    stop = time.time() + seconds

    def worker(i):
        rng = random.Random(seed * 1000 + i)
        while time.time() < stop:
            one_request(port, model, rng, st, rng.random() < disconnect)

    ths = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    t0 = time.time()
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    return st, time.time() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lmadapt", default="build/lmadapt")
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--url", help="a running server (http://127.0.0.1:PORT) instead of starting one")
    ap.add_argument("--levels", default="1,4,16,64")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--disconnect", type=float, default=0.1, help="fraction of requests that hang up")
    ap.add_argument("--max-active", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default=None)
    ap.add_argument("--json")
    ap.add_argument("--warmup-seconds", type=float, default=5)
    ap.add_argument("--warmup-clients", type=int, default=2)
    ap.add_argument("--rss-every", type=float, default=0, help="sample the server's RSS every S seconds")
    ap.add_argument("--max-tokens", type=int, default=0, help="every request's max_tokens (default 16-64 at random)")
    ap.add_argument("--ignore-eos", action="store_true", help="ask for ignore_eos (fixed lengths; vLLM's extension)")
    a = ap.parse_args()
    global FIXED
    FIXED = {"max_tokens": a.max_tokens, "ignore_eos": a.ignore_eos}
    proc = None
    if a.url:
        port = int(a.url.rsplit(":", 1)[1].strip("/"))
        pid = None
    else:
        cmd = [a.lmadapt, "serve", "--model", a.model, "--port", "0", "--max-active", str(a.max_active),
               "--max-queue", "256", "--max-connections", "512", "--quiet"]
        if a.threads:
            cmd += ["--threads", str(a.threads)]
        if a.device:
            cmd += ["--device", a.device]
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        port = None
        for line in proc.stderr:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        if port is None:
            sys.exit("the server did not start")
        threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
        pid = proc.pid
    c = http.client.HTTPConnection("127.0.0.1", port)
    c.request("GET", "/v1/models")
    model = json.loads(c.getresponse().read())["data"][0]["id"]
    c.close()
    # warm-up
    run_level(port, model, a.warmup_clients, a.warmup_seconds, 0, 0)
    rows = []
    rss0 = rss_kb(pid) if pid else -1
    print(f"server RSS after warm-up: {rss0 / 1024:.0f} MB; load average {os.getloadavg()}", flush=True)
    samples, sampling = [], threading.Event()
    if a.rss_every and pid:
        t_start = time.time()

        def sampler():
            while True:
                samples.append((round(time.time() - t_start, 1), round(rss_kb(pid) / 1024, 1)))
                if sampling.wait(a.rss_every):
                    break
        st_thread = threading.Thread(target=sampler, daemon=True)
        st_thread.start()
    for lvl in [int(x) for x in a.levels.split(",")]:
        st, wall = run_level(port, model, lvl, a.seconds, a.disconnect, lvl)
        time.sleep(1)
        c = http.client.HTTPConnection("127.0.0.1", port)
        c.request("GET", "/health")
        health = json.loads(c.getresponse().read())
        c.close()
        row = {"clients": lvl, "seconds": round(wall, 1), "completed": st.done, "disconnects": st.disconnects,
               "errors": len(st.errors), "tokens_per_s": round(st.tokens / wall, 1),
               "lat_p50_s": round(pct(st.lat, 50), 2), "lat_p99_s": round(pct(st.lat, 99), 2),
               "ttft_p50_s": round(pct(st.ttft, 50), 2), "ttft_p99_s": round(pct(st.ttft, 99), 2),
               "rss_mb": round(rss_kb(pid) / 1024, 1) if pid else None,
               "left_active": health["active"], "left_queued": health["queued"]}
        rows.append(row)
        print(json.dumps(row), flush=True)
        for e in st.errors[:5]:
            print("  error:", e, flush=True)
    rss = None
    if samples:
        sampling.set()
        st_thread.join()
        samples.append((round(time.time() - t_start, 1), round(rss_kb(pid) / 1024, 1)))
        v = [x[1] for x in samples]
        rss = {"every_s": a.rss_every, "samples": samples, "min_mb": min(v), "max_mb": max(v),
               "spread_pct": round(100 * (max(v) - min(v)) / v[0], 2),
               "growth_pct": round(100 * (v[-1] - v[0]) / v[0], 2)}
        idle = [round(rss0 / 1024, 1)] + [r["rss_mb"] for r in rows]
        rss["idle_mb"] = idle
        rss["idle_spread_pct"] = round(100 * (max(idle) - min(idle)) / idle[0], 2)
        print(f"RSS every {a.rss_every:g} s after the warm-up (MB): {' '.join(f'{x[1]:.0f}' for x in samples)}")
        print(f"RSS at idle (after the warm-up, then 1 s after each level drained): {idle} MB, spread "
              f"{rss['idle_spread_pct']} %")
        print(f"RSS spread (max - min) {rss['spread_pct']} %, growth (last - first) {rss['growth_pct']} %; "
              f"load average {os.getloadavg()}", flush=True)
    if proc:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
        print(f"server exit status after SIGTERM: {rc}")
    print("\n| clients | completed | disconnects | errors | tokens/s | latency p50 / p99 (s) | TTFT p50 / p99 (s) | RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['clients']} | {r['completed']} | {r['disconnects']} | {r['errors']} | {r['tokens_per_s']} | "
              f"{r['lat_p50_s']} / {r['lat_p99_s']} | {r['ttft_p50_s']} / {r['ttft_p99_s']} | {r['rss_mb']} |")
    if a.json:
        json.dump({"rss_warm_mb": round(rss0 / 1024) if pid else None, "levels": rows, "rss": rss},
                  open(a.json, "w"), indent=1)
    bad = sum(r["errors"] for r in rows) + sum(r["left_active"] + r["left_queued"] for r in rows)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

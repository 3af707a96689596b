"""Slowloris clients for tests/serve_openai.sh slow: each trickles a request one byte every
STEP seconds (faster than the server's idle --timeout, so only a whole-request deadline can
stop it) and reports when the server closed the connection and whether it answered 408.

    serve_slowloris.py PORT STEP LIMIT   ->  one JSON object: {kind: {"closed": bool,
                                             "after": seconds, "status": 408 | null}}
Kinds: line (the request line itself trickled), header (a header trickled), body (headers
whole, Content-Length 200, the body trickled), keepalive (a whole GET /health answered,
then the next request trickled on the same connection). LIMIT: give up (not closed) after."""
import json, select, socket, sys, threading, time

port, step, limit = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
res = {}


def trickle(kind):
    s = socket.create_connection(("127.0.0.1", port))
    pre, drip = b"", b""
    if kind == "line":
        drip = b"GET /health" + b"x" * 200
    elif kind == "header":
        pre, drip = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Pad: ", b"a" * 1000
    elif kind == "body":
        pre = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: 200\r\n\r\n")
        drip = b" " * 200
    elif kind == "keepalive":
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while b"\r\n\r\n" not in got or not got.rstrip().endswith(b"}"):
            got += s.recv(4096)
        assert got.startswith(b"HTTP/1.1 200"), got[:40]
        drip = b"GET /health" + b"x" * 200
    t0 = time.time()
    s.sendall(pre)
    data, closed, i = b"", False, 0
    while time.time() - t0 < limit and not closed:
        r, _, _ = select.select([s], [], [], step)
        try:
            if r:
                chunk = s.recv(4096)
                if not chunk:
                    closed = True
                data += chunk
            elif i < len(drip):
                s.send(drip[i:i + 1])
                i += 1
        except OSError:  # reset, broken pipe: closed
            closed = True
    status = int(data.split()[1]) if data.startswith(b"HTTP/1.1 ") else None
    res[kind] = {"closed": closed, "after": round(time.time() - t0, 1), "status": status}
    s.close()


ts = [threading.Thread(target=trickle, args=(k,)) for k in ("line", "header", "body", "keepalive")]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(json.dumps(res, sort_keys=True))

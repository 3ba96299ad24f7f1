#!/usr/bin/env python3
"""Hostile and normal HTTP clients for the end-to-end tests of the HTTP
layer (tests/e2e/test_http_*.sh) and the soak run (bench/soak.sh).  Standard
library only; loopback only; every loop is bounded by a duration.  Each
command prints one JSON object with its figures.

  slow PORT --sources A,B.. --count N --duration S [--interval S] [--reconnect]
          [--probe-path P] [--probe-interval S] [--auth HDR]
      N connections spread over the source addresses, each sending one byte
      of a never-ending header every interval; with --reconnect a cut
      connection is opened again at once.  With --probe-path a normal client
      on 127.0.0.1 meanwhile GETs that path on a new connection each time and
      on one kept-alive connection.
  hold PORT --source A --count N --wait S
      N connections from one address that send a partial request line once;
      counts how many are still open after the wait.
  drip PORT --request FILE --interval S --max S
      Send FILE's bytes at once up to the first empty line (the headers),
      then one body byte per interval; report when the server closed.
  stalled PORT --count N --size BYTES --send BYTES --path P [--auth HDR] --hold S
          [--sources A,B..] [--pid PID]
      N connections each PUT a manifest of SIZE bytes but send only SEND
      bytes of it and stall for S seconds; prints the server's RSS (with
      --pid) sampled while they stall.
  load PORT --clients N --pushers P --duration S --repo R --auth HDR [--sources A,B..]
      N keep-alive clients in a loop (GET /v2/, GET a manifest, HEAD its
      config blob) and P pushers (monolithic blob upload, then a manifest
      naming it); counts requests, errors and statuses.  Needs R:v1 pushed.
"""
import argparse
import hashlib
import http.client
import asyncio
import json
import os
import socket
import statistics
import sys
import threading
import time

HOST = "127.0.0.1"


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def pct(values, p):
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(len(values) * p))], 3)


def client_summary(requests, errors, error_kinds, statuses, lat, max_digits):
    """The figures every normal-client report gives."""
    return {"requests": requests, "errors": errors, "error_kinds": error_kinds,
            "statuses": {str(k): v for k, v in statuses.items()},
            "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99),
            "max_ms": round(max(lat), max_digits) if lat else None}


class Probe(threading.Thread):
    """A normal client: a GET on a new connection and one on a kept-alive
    connection every interval, with latency and errors counted."""

    def __init__(self, port, path, interval, auth, stop):
        super().__init__(daemon=True)
        self.port, self.path, self.interval, self.auth, self.stop = port, path, interval, auth, stop
        self.lat, self.errors, self.statuses, self.error_kinds = [], 0, {}, {}

    def one(self, sock):
        req = "GET %s HTTP/1.1\r\nHost: %s:%d\r\n%s\r\n" % (
            self.path, HOST, self.port, ("Authorization: %s\r\n" % self.auth) if self.auth else "")
        sock.sendall(req.encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = sock.recv(65536)
            if not d:
                raise ConnectionError("closed before the answer")
            buf += d
        head, _, body = buf.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v.strip())
        while len(body) < length:
            d = sock.recv(65536)
            if not d:
                raise ConnectionError("closed in the body")
            body += d
        return status

    def run(self):
        kept = None
        while not self.stop.is_set():
            for keep in (False, True):
                t0 = time.monotonic()
                try:
                    if keep and kept is None:
                        kept = socket.create_connection((HOST, self.port), timeout=5)
                    if keep:
                        status = self.one(kept)
                    else:
                        with socket.create_connection((HOST, self.port), timeout=5) as s:
                            status = self.one(s)
                    self.statuses[status] = self.statuses.get(status, 0) + 1
                    if status >= 500:
                        self.errors += 1
                except (OSError, ValueError, IndexError) as e:
                    self.errors += 1
                    kind = type(e).__name__
                    self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1
                    if keep and kept is not None:
                        kept.close()
                        kept = None
                self.lat.append((time.monotonic() - t0) * 1000)
            self.stop.wait(self.interval)
        if kept is not None:
            kept.close()

    def report(self):
        return client_summary(len(self.lat), self.errors, self.error_kinds, self.statuses, self.lat, 3)


async def slow_conn(port, src, interval, end, reconnect, out):
    header = b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100000
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(HOST, port, local_addr=(src, 0)), 5)
        except (OSError, asyncio.TimeoutError):
            out["connect_failed"] += 1
            await asyncio.sleep(0.2)
            continue
        out["opened"] += 1
        i, closed = 0, False
        try:
            while time.monotonic() < end:
                w.write(header[i:i + 1])
                i += 1
                await w.drain()
                try:
                    d = await asyncio.wait_for(r.read(4096), interval)
                    if not d:
                        closed = True
                        break
                except asyncio.TimeoutError:
                    pass
        except OSError:
            closed = True
        w.close()
        if not closed:
            out["open_at_end"] += 1
            out["open_longest_s"] = max(out["open_longest_s"], time.monotonic() - t0)
            return
        life = time.monotonic() - t0
        # Closed at once: refused by the accept policy, not cut later.
        if life < 0.3:
            out["refused"] += 1
            await asyncio.sleep(0.2)
        else:
            out["cut_after_s"].append(life)
        if not reconnect:
            return


def cmd_slow(a):
    sources = a.sources.split(",")
    out = {"opened": 0, "connect_failed": 0, "refused": 0, "open_at_end": 0, "open_longest_s": 0.0,
           "cut_after_s": []}
    stop = threading.Event()
    probe = None
    if a.probe_path:
        probe = Probe(a.port, a.probe_path, a.probe_interval, a.auth, stop)
    end = time.monotonic() + a.duration

    async def main():
        tasks = []
        for i in range(a.count):
            tasks.append(asyncio.ensure_future(
                slow_conn(a.port, sources[i % len(sources)], a.interval, end, a.reconnect, out)))
            if i % 50 == 49:
                await asyncio.sleep(0.05)
        if probe:
            # Start probing once the attack is fully in place.
            await asyncio.sleep(1.0)
            probe.start()
        await asyncio.gather(*tasks)

    asyncio.run(main())
    stop.set()
    result = {"attack": {k: v for k, v in out.items() if k != "cut_after_s"}}
    result["attack"]["open_longest_s"] = round(out["open_longest_s"], 3)
    cuts = out["cut_after_s"]
    result["attack"].update({"cut": len(cuts), "cut_min_s": pct(cuts, 0), "cut_p50_s": pct(cuts, 0.5),
                             "cut_max_s": round(max(cuts), 3) if cuts else None})
    if probe:
        probe.join(10)
        result["normal"] = probe.report()
    print(json.dumps(result))


def cmd_hold(a):
    socks, held = [], 0
    for _ in range(a.count):
        s = socket.socket()
        s.bind((a.source, 0))
        s.settimeout(3)
        try:
            s.connect((HOST, a.port))
            s.sendall(b"GET /v2/ HTTP/1.1\r\n")
            socks.append(s)
        except OSError:
            s.close()
    time.sleep(a.wait)
    for s in socks:
        s.setblocking(False)
        try:
            d = s.recv(1)
            alive = d != b""
        except BlockingIOError:
            alive = True
        except OSError:
            alive = False
        held += alive
    print(json.dumps({"tried": a.count, "connected": len(socks), "held": held}))
    if a.keep > 0:
        time.sleep(a.keep)
    for s in socks:
        s.close()


def cmd_drip(a):
    with open(a.request, "rb") as f:
        raw = f.read()
    head, sep, body = raw.partition(b"\r\n\r\n")
    s = socket.create_connection((HOST, a.port), timeout=a.max)
    t0 = time.monotonic()
    s.sendall(head + sep)
    got, closed_after, sent = b"", None, 0
    s.settimeout(a.interval)
    while time.monotonic() - t0 < a.max:
        if sent < len(body):
            try:
                s.sendall(body[sent:sent + a.chunk])
                sent += a.chunk
            except OSError:
                closed_after = time.monotonic() - t0
                break
        try:
            d = s.recv(65536)
            if not d:
                closed_after = time.monotonic() - t0
                break
            got += d
        except socket.timeout:
            pass
        except OSError:
            closed_after = time.monotonic() - t0
            break
    s.close()
    status = None
    if got.startswith(b"HTTP/1."):
        status = int(got.split(b" ", 2)[1])
    print(json.dumps({"closed_after_s": None if closed_after is None else round(closed_after, 3),
                      "sent_body_bytes": min(sent, len(body)), "status": status}))


def cmd_stalled(a):
    socks = []
    chunk = b"{" + b" " * (a.send - 1)
    head = ("PUT %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n"
            "Content-Length: %d\r\n%s\r\n" % (a.path, a.size,
                                              ("Authorization: %s\r\n" % a.auth) if a.auth else "")).encode()
    sources = a.sources.split(",")
    for i in range(a.count):
        s = socket.create_connection((HOST, a.port), timeout=10, source_address=(sources[i % len(sources)], 0))
        s.sendall(head)
        socks.append(s)
    sent_ok = 0
    for s in socks:
        try:
            s.sendall(chunk)
            sent_ok += 1
        except OSError:
            pass
    samples = []
    end = time.monotonic() + a.hold
    while time.monotonic() < end:
        if a.pid:
            samples.append(rss_kib(a.pid))
        time.sleep(0.25)
    open_now = 0
    for s in socks:
        s.setblocking(False)
        try:
            open_now += s.recv(1) != b""
        except BlockingIOError:
            open_now += 1
        except OSError:
            pass
        s.close()
    print(json.dumps({"connections": a.count, "bodies_sent": sent_ok, "rss_max_kib": max(samples) if samples else None,
                      "open_at_end": open_now}))


class LoadStats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests, self.errors, self.statuses, self.error_kinds, self.lat = 0, 0, {}, {}, []

    def add(self, status, ms, error=None):
        with self.lock:
            self.requests += 1
            if error is not None:
                self.errors += 1
                self.error_kinds[error] = self.error_kinds.get(error, 0) + 1
            else:
                self.statuses[status] = self.statuses.get(status, 0) + 1
            if len(self.lat) < 200000:
                self.lat.append(ms)


def load_worker(a, stats, go, n, pusher, config_digest):
    go.wait()
    end = go.end
    auth = {"Authorization": a.auth}
    conn = None
    i = 0
    while time.monotonic() < end:
        i += 1
        if conn is None:
            sources = a.sources.split(",")
            conn = http.client.HTTPConnection(HOST, a.port, timeout=30,
                                              source_address=(sources[n % len(sources)], 0))
        try:
            if pusher:
                blob = ("pusher %d push %d %f" % (n, i, time.time())).encode() * 64
                d = "sha256:" + hashlib.sha256(blob).hexdigest()
                steps = [("POST", "/v2/%s/blobs/uploads/?digest=%s" % (a.repo, d), blob,
                          {"Content-Type": "application/octet-stream"}, 201)]
                man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                             "digest": d, "size": len(blob)}, "layers": []}).encode()
                steps.append(("PUT", "/v2/%s/manifests/p%d-%d" % (a.repo, n, i % 50), man,
                              {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, 201))
            else:
                steps = [("GET", "/v2/", None, {}, 200),
                         ("GET", "/v2/%s/manifests/v1" % a.repo, None,
                          {"Accept": "application/vnd.oci.image.manifest.v1+json"}, 200),
                         ("HEAD", "/v2/%s/blobs/%s" % (a.repo, config_digest), None, {}, 200)]
            for method, path, body, headers, want in steps:
                t0 = time.monotonic()
                h = dict(auth)
                h.update(headers)
                conn.request(method, path, body=body, headers=h)
                resp = conn.getresponse()
                resp.read()
                ms = (time.monotonic() - t0) * 1000
                if resp.status != want:
                    stats.add(resp.status, ms, "status %d on %s" % (resp.status, method))
                else:
                    stats.add(resp.status, ms)
        except (OSError, http.client.HTTPException) as e:
            stats.add(0, 0, type(e).__name__)
            conn.close()
            conn = None
    if conn is not None:
        conn.close()


def cmd_load(a):
    stats = LoadStats()
    c = http.client.HTTPConnection(HOST, a.port, timeout=30)
    c.request("GET", "/v2/%s/manifests/v1" % a.repo, headers={"Authorization": a.auth,
              "Accept": "application/vnd.oci.image.manifest.v1+json"})
    r = c.getresponse()
    body = r.read()
    c.close()
    if r.status != 200:
        print(json.dumps({"error": "no %s:v1 (status %d)" % (a.repo, r.status)}))
        return 1
    config_digest = json.loads(body)["config"]["digest"]
    threads = []
    # Every thread waits for the start signal: starting hundreds of threads
    # while the first ones already run would take longer than the run.
    go = threading.Event()
    for n in range(a.clients + a.pushers):
        t = threading.Thread(target=load_worker, daemon=True, args=(a, stats, go, n, n >= a.clients, config_digest))
        t.start()
        threads.append(t)
    go.end = time.monotonic() + a.duration
    go.set()
    for t in threads:
        t.join(a.duration + 60)
    result = client_summary(stats.requests, stats.errors, stats.error_kinds, stats.statuses, stats.lat, 1)
    result["req_per_s"] = round(stats.requests / a.duration, 1)
    print(json.dumps(result))
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("slow")
    s.add_argument("port", type=int)
    s.add_argument("--sources", default="127.0.0.2")
    s.add_argument("--count", type=int, default=100)
    s.add_argument("--duration", type=float, default=10)
    s.add_argument("--interval", type=float, default=1.0)
    s.add_argument("--reconnect", action="store_true")
    s.add_argument("--probe-path", default="")
    s.add_argument("--probe-interval", type=float, default=0.2)
    s.add_argument("--auth", default="")
    h = sub.add_parser("hold")
    h.add_argument("port", type=int)
    h.add_argument("--source", default="127.0.0.2")
    h.add_argument("--count", type=int, default=100)
    h.add_argument("--wait", type=float, default=1.0)
    h.add_argument("--keep", type=float, default=0)
    d = sub.add_parser("drip")
    d.add_argument("port", type=int)
    d.add_argument("--request", required=True)
    d.add_argument("--interval", type=float, default=0.5)
    d.add_argument("--chunk", type=int, default=1)
    d.add_argument("--max", type=float, default=10)
    t = sub.add_parser("stalled")
    t.add_argument("port", type=int)
    t.add_argument("--count", type=int, default=200)
    t.add_argument("--size", type=int, default=4 << 20)
    t.add_argument("--send", type=int, default=3 << 20)
    t.add_argument("--path", required=True)
    t.add_argument("--auth", default="")
    t.add_argument("--hold", type=float, default=3)
    t.add_argument("--pid", type=int, default=0)
    t.add_argument("--sources", default="127.0.0.2")
    ld = sub.add_parser("load")
    ld.add_argument("port", type=int)
    ld.add_argument("--clients", type=int, default=500)
    ld.add_argument("--pushers", type=int, default=20)
    ld.add_argument("--duration", type=float, default=60)
    ld.add_argument("--repo", required=True)
    ld.add_argument("--auth", default="")
    ld.add_argument("--sources", default="127.0.0.1")
    a = p.parse_args()
    return {"slow": cmd_slow, "hold": cmd_hold, "drip": cmd_drip, "stalled": cmd_stalled, "load": cmd_load}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Keep-alive client for test_auth_token_cache.sh: runs a scenario of
requests on named, persistent HTTP/1.1 connections (and fresh ones), so that
a token cached by the server's thread for a connection is sent again on that
very connection after its key was revoked or it expired.

Usage: token_cache_client.py BASE_URL SCENARIO_JSON TOKENS_JSON

TOKENS_JSON is {"issued": unix_seconds, "tokens": {name: token}}: the
tokens are fetched right before the client starts (they are short-lived), while
the scenario, written earlier, names them.  The scenario is a list of steps:
  {"open": [names]}                      open connections (kept open)
  {"req": name | "new", "path": p, "token": t, "want": status, "label": l,
   "tamper": [part, pos]}
      GET p with "Authorization: Bearer <token t>" on connection `name`
      ("new": a fresh connection, closed afterwards); with "tamper", the
      token with character `pos` of its part `part` (0 header, 1 payload,
      2 signature; negative from the end) changed to another base64url
      character (same length).  The status must be `want`, and a named
      connection must still be the same socket (no reconnect)
  {"run": [argv], "label": l}            run a command; exit status 0
  {"sleep_until": seconds}               wait until `issued` + seconds
                                         (bounded to 60 s)
Every check prints one line "PASS label" or "FAIL label: detail"; the
exit status is 0 unless the scenario could not be run at all.
"""
import http.client
import json
import subprocess
import sys
import time
import urllib.parse


def tamper(token, part, pos):
    parts = token.split(".")
    p = parts[part]
    pos %= len(p)
    parts[part] = p[:pos] + ("B" if p[pos] == "A" else "A") + p[pos + 1:]
    return ".".join(parts)


def main():
    base = urllib.parse.urlsplit(sys.argv[1])
    with open(sys.argv[2], encoding="utf-8") as f:
        steps = json.load(f)
    with open(sys.argv[3], encoding="utf-8") as f:
        given = json.load(f)
    tokens, issued = given["tokens"], given["issued"]
    host, port = base.hostname, base.port
    conns = {}
    local = {}

    def connect():
        c = http.client.HTTPConnection(host, port, timeout=30)
        c.connect()
        return c

    def report(ok, label, detail=""):
        print(("PASS " if ok else "FAIL ") + label + ("" if ok else ": " + detail), flush=True)

    for step in steps:
        if "open" in step:
            for name in step["open"]:
                conns[name] = connect()
                local[name] = conns[name].sock.getsockname()
        elif "req" in step:
            name = step["req"]
            label = step.get("label", "%s GET %s" % (name, step["path"]))
            token = tokens[step["token"]]
            if "tamper" in step:
                token = tamper(token, *step["tamper"])
                if len(token) != len(tokens[step["token"]]) or token == tokens[step["token"]]:
                    report(False, label, "tampering changed the length or nothing")
            c = connect() if name == "new" else conns[name]
            try:
                c.request("GET", step["path"], headers={"Authorization": "Bearer " + token})
                resp = c.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as e:
                report(False, label, "request failed: %r" % (e,))
                if name != "new":
                    conns[name] = connect()
                    local[name] = conns[name].sock.getsockname()
                continue
            if name == "new":
                c.close()
            elif c.sock is None or c.sock.getsockname() != local[name]:
                report(False, label + " (same connection)", "the server closed the connection")
                conns[name] = connect()
                local[name] = conns[name].sock.getsockname()
                continue
            report(status == step["want"], label, "status %d, want %d" % (status, step["want"]))
        elif "run" in step:
            r = subprocess.run(step["run"], capture_output=True, timeout=60, check=False)
            report(r.returncode == 0, step.get("label", " ".join(step["run"])),
                   "exit %d: %s" % (r.returncode, r.stderr.decode(errors="replace")[:500]))
        elif "sleep_until" in step:
            delay = issued + step["sleep_until"] - time.time()
            if delay > 0:
                time.sleep(min(delay, 60))
        else:
            print("bad step %r" % (step,), file=sys.stderr)
            return 2
    for c in conns.values():
        c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

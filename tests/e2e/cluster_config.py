"""Merge a YAML configuration over a berthd node's configuration.

    cluster_config.py BASE OVER OUT

Settings of OVER win, except the node's address (http.addr) and its shared
state (storage, database), which stay those of BASE: a test's own settings
(limits, auth, gc) apply to every node of the cluster it runs against.
"""
import sys

import yaml


def merge(into, over):
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value


def main():
    with open(sys.argv[1]) as f:
        base = yaml.safe_load(f) or {}
    with open(sys.argv[2]) as f:
        over = yaml.safe_load(f) or {}
    keep = {k: base[k] for k in ("storage", "database") if k in base}
    addr = (base.get("http") or {}).get("addr")
    merge(base, over)
    base.update(keep)
    if addr is not None:
        base.setdefault("http", {})["addr"] = addr
    with open(sys.argv[3], "w") as f:
        yaml.safe_dump(base, f, default_flow_style=False, sort_keys=False)


if __name__ == "__main__":
    main()

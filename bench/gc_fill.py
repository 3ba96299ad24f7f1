#!/usr/bin/env python3
"""Fill a fresh Berth metadata store (schema 6, made by berthd itself) with a
registry's worth of rows for bench/gc.sh, in large transactions, the way the
server would have left them:

  ACCOUNTS accounts, REPOS repositories spread over them, MANIFESTS image
  manifests spread over the repositories, each listing LINKS blobs (one
  config + LINKS-1 layers), so MANIFESTS * LINKS repository links
  (repository_blobs) and as many manifest_blobs rows.  The first 3 layers
  of manifest i are "base layers" shared by the same manifest index in the
  10 repositories of a group (same account): other repositories link the
  same blob row, as images built on a common base do; every other blob
  belongs to one manifest.  account_blobs counts the links per account and
  digest, accounts.used_bytes is recounted as migration 6 does.

  Every manifest had a tag; GARBAGE percent of the tags (spread evenly, every
  (100/GARBAGE)th manifest index of a repository, offset by the repository) were
  deleted: no tag row, and the manifest queued in gc_manifest_queue, as a tag
  DELETE does.  Every link has its gc_link_queue row from link time (queued_at
  = linked_at), as the server queues every new link.  All times are two days
  old, so with --grace 0s everything queued is due.

  blobs.storage_key names objects that are not stored: the metadata pass does
  not need them (removing a missing object from the outbox is ignored).

Usage: gc_fill.py DB MANIFESTS LINKS GARBAGE_PERCENT  (prints a summary line)
"""
import hashlib
import json
import sqlite3
import sys
import time

db_path = sys.argv[1]
MANIFESTS = int(sys.argv[2])
LINKS = int(sys.argv[3])
GARBAGE = int(sys.argv[4])
PER_REPO = 100                      # manifests per repository
REPOS = max(1, (MANIFESTS + PER_REPO - 1) // PER_REPO)
GROUP = 10                          # repositories sharing base layers
ACCOUNTS = max(1, (REPOS + 99) // 100)
BASE = min(3, LINKS - 1)            # shared base layers per manifest
assert LINKS >= 2 and 0 <= GARBAGE <= 100

now = int(time.time() * 1000)
t0 = now - 2 * 86400 * 1000
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def digest(*parts):
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


def storage_key(hexd):
    return "sha256/%s/%s.%016x" % (hexd[:2], hexd, int(hexd[:16], 16) ^ 0x5A5A)


def account_of_repo(r):
    return "%032x" % (0xBE27 * 2**96 + r // 100)


con = sqlite3.connect(db_path, isolation_level=None)
con.execute("PRAGMA synchronous = OFF")
con.execute("PRAGMA cache_size = -262144")
(version,) = con.execute("PRAGMA user_version").fetchone()
if version != 6:
    sys.exit("gc_fill.py: schema version %d, expected 6" % version)
if con.execute("SELECT count(*) FROM manifests").fetchone()[0]:
    sys.exit("gc_fill.py: the store is not empty")

con.execute("BEGIN")
con.executemany(
    "INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)",
    [("%032x" % (0xBE27 * 2**96 + a), "bench-%d" % a, t0) for a in range(ACCOUNTS)],
)
con.executemany(
    "INSERT INTO repositories (id, account_id, name, created_at) VALUES (?, ?, ?, ?)",
    [(r + 1, account_of_repo(r), "%s/app-%d" % (account_of_repo(r), r), t0) for r in range(REPOS)],
)
con.execute("COMMIT")

blob_seen = set()
acct_blobs = {}                     # (account, digest) -> [size, nlinks]
garbage_every = (100 // GARBAGE) if GARBAGE else 0
n_garbage = 0
BATCH = 5000
m_id = 0
rows_blobs, rows_links, rows_lq, rows_man, rows_mb, rows_tags, rows_mq = [], [], [], [], [], [], []


def flush():
    con.execute("BEGIN")
    con.executemany(
        "INSERT INTO blobs (digest, size, storage_key, created_at) VALUES (?, ?, ?, ?)", rows_blobs)
    con.executemany(
        "INSERT INTO repository_blobs (repository_id, digest, account_id, linked_at, touched_at)"
        " VALUES (?, ?, ?, ?, ?)", rows_links)
    con.executemany(
        "INSERT INTO gc_link_queue (repository_id, digest, account_id, queued_at) VALUES (?, ?, ?, ?)",
        rows_lq)
    con.executemany(
        "INSERT INTO manifests (id, repository_id, account_id, digest, media_type, size, payload,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows_man)
    con.executemany(
        "INSERT INTO manifest_blobs (manifest_id, repository_id, digest) VALUES (?, ?, ?)", rows_mb)
    con.executemany(
        "INSERT INTO tags (repository_id, name, manifest_id, updated_at) VALUES (?, ?, ?, ?)", rows_tags)
    con.executemany(
        "INSERT INTO gc_manifest_queue (manifest_id, account_id, queued_at) VALUES (?, ?, ?)", rows_mq)
    con.execute("COMMIT")
    for rows in (rows_blobs, rows_links, rows_lq, rows_man, rows_mb, rows_tags, rows_mq):
        rows.clear()


for m in range(MANIFESTS):
    r = m // PER_REPO
    i = m % PER_REPO
    repo_id = r + 1
    acct = account_of_repo(r)
    group = r // GROUP
    t = t0 + m
    layers = []
    for j in range(LINKS):
        if j == 0:
            d, size, mt = digest("config", m), 1500 + m % 500, "application/vnd.oci.image.config.v1+json"
        elif j <= BASE:
            d, size, mt = digest("base", group, i, j), 20_000_000 + j * 1_000_003, \
                "application/vnd.oci.image.layer.v1.tar+gzip"
        else:
            d, size, mt = digest("layer", m, j), 100_000 + (m * 7919 + j * 104729) % 50_000_000, \
                "application/vnd.oci.image.layer.v1.tar+gzip"
        layers.append((d, size, mt))
        if d not in blob_seen:
            blob_seen.add(d)
            rows_blobs.append(("sha256:" + d, size, storage_key(d), t))
        rows_links.append((repo_id, "sha256:" + d, acct, t, t))
        rows_lq.append((repo_id, "sha256:" + d, acct, t))
        rows_mb.append((m + 1, repo_id, "sha256:" + d))
        k = (acct, d)
        e = acct_blobs.get(k)
        if e:
            e[1] += 1
        else:
            acct_blobs[k] = [size, 1]
    cfg = layers[0]
    payload = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": cfg[2], "digest": "sha256:" + cfg[0], "size": cfg[1]},
        "layers": [{"mediaType": mt, "digest": "sha256:" + d, "size": s} for d, s, mt in layers[1:]],
    }, separators=(",", ":")).encode()
    mdig = "sha256:" + hashlib.sha256(payload).hexdigest()
    rows_man.append((m + 1, repo_id, acct, mdig, OCI_MANIFEST, len(payload), payload, t))
    # offset by repository, so that in a group the same manifest index is
    # garbage in some repositories only: its shared base layers lose links
    # but stay linked elsewhere
    if garbage_every and (i + r) % garbage_every == garbage_every - 1 and n_garbage < MANIFESTS * GARBAGE // 100:
        n_garbage += 1
        rows_mq.append((m + 1, acct, t + 1000))
    else:
        rows_tags.append((repo_id, "v%d" % i, m + 1, t))
    if len(rows_man) >= BATCH:
        flush()
flush()

con.execute("BEGIN")
con.executemany(
    "INSERT INTO account_blobs (account_id, digest, size, nlinks) VALUES (?, ?, ?, ?)",
    (("%s" % a, "sha256:" + d, v[0], v[1]) for (a, d), v in acct_blobs.items()))
con.execute(
    "UPDATE accounts SET used_bytes ="
    " (SELECT COALESCE(SUM(size), 0) FROM account_blobs ab"
    "  WHERE ab.account_id = accounts.id AND ab.nlinks > 0) +"
    " (SELECT COALESCE(SUM(size), 0) FROM manifests m WHERE m.account_id = accounts.id)")
con.execute("UPDATE sqlite_sequence SET seq = (SELECT max(id) FROM manifests) WHERE name = 'manifests'")
con.execute("INSERT INTO sqlite_sequence (name, seq) SELECT 'manifests', max(id) FROM manifests"
            " WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'manifests')")
con.execute("UPDATE sqlite_sequence SET seq = (SELECT max(id) FROM repositories) WHERE name = 'repositories'")
con.execute("INSERT INTO sqlite_sequence (name, seq) SELECT 'repositories', max(id) FROM repositories"
            " WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'repositories')")
con.execute("COMMIT")
con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
counts = {t: con.execute("SELECT count(*) FROM " + t).fetchone()[0] for t in (
    "accounts", "repositories", "blobs", "repository_blobs", "account_blobs", "manifests",
    "manifest_blobs", "tags", "gc_manifest_queue", "gc_link_queue")}
con.close()
print(" ".join("%s=%d" % kv for kv in counts.items()))

#!/usr/bin/env python3
"""Fill a Berth metadata store (schema 6 or 7, made by berthd itself, with or
without a few real pushes in it) with a large registry's rows for
bench/scale.sh, the way pushes with authentication off would have left them
once the collector had reviewed every link (a real push, read back from the
store, writes exactly these rows; see bench/scale.sh):

  REPOS repositories "<account>/app-<r>" (plus the seed's), ACCOUNTS =
  REPOS/100 accounts (32 hex, the tenant form; with authentication off no
  accounts row exists, as after a real push).  One of them,
  "<TENANT>/many-tags", holds TAGS manifests, each under its own tag
  "1.<k // 1000>.<k % 1000>" (so byte order is not insertion order);
  the other MANIFESTS - TAGS manifests are spread evenly over the other
  repositories, each tagged "v<i>".

  Every image manifest (real OCI JSON, its digest the sha256 of the stored
  bytes) lists a config blob and a layer of its own plus a base layer shared
  by every manifest of the account: blobs, repository_blobs (one link per
  repository and digest), account_blobs (nlinks = the account's links),
  manifest_blobs, manifests, tags.  All times are two days old and the GC
  queues are empty: a steady registry whose collector has reviewed every
  link (a push queues each new link; the review drops the ones a manifest
  lists), so the worker has nothing to do during the measurements.

  The stored objects of generated blobs do not exist: only the seed's real
  pushes have objects, and the request-rate runs use those.

  Schema 7: every repository's `contents` (its manifests plus its links)
  is counted at the end and `listed` set (what puts it in the catalog), as
  migration 7 does.

Usage: scale_fill.py DB REPOS MANIFESTS TAGS TENANT   (prints a summary line)
"""
import hashlib
import sqlite3
import sys
import time

db_path = sys.argv[1]
REPOS = int(sys.argv[2])
MANIFESTS = int(sys.argv[3])
TAGS = int(sys.argv[4])
TENANT = sys.argv[5]
assert REPOS >= 2 and TAGS >= 1 and MANIFESTS >= TAGS + REPOS - 1
assert len(TENANT) == 32

PER_ACCOUNT = 100
ACCOUNTS = max(1, (REPOS + PER_ACCOUNT - 1) // PER_ACCOUNT)
now = int(time.time() * 1000)
t0 = now - 2 * 86400 * 1000
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
started = time.time()


def hexdigest(*parts):
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


def storage_key(hexd):
    # "sha256/<2>/<64>.<16 hex>", as the filesystem store names objects
    return "sha256/%s/%s.%s" % (hexd[:2], hexd, hexd[48:64])


def account_of(r):
    return "%032x" % (0x5CA1E * 2**96 + r // PER_ACCOUNT)


con = sqlite3.connect(db_path, isolation_level=None)
(version,) = con.execute("PRAGMA user_version").fetchone()
if version not in (6, 7):
    sys.exit("scale_fill.py: schema version %d, expected 6 or 7" % version)
# One big transaction without a journal (a fresh benchmark store: a failed
# fill is thrown away); the store goes back to WAL at the end, as berthd
# would have left it.
con.execute("PRAGMA journal_mode = OFF")
con.execute("PRAGMA synchronous = OFF")
con.execute("PRAGMA cache_size = -4194304")
con.execute("PRAGMA foreign_keys = OFF")
(repo_base,) = con.execute("SELECT COALESCE(max(id), 0) FROM repositories").fetchone()
(man_base,) = con.execute("SELECT COALESCE(max(id), 0) FROM manifests").fetchone()

# repository index 0 is the many-tags repository, 1..REPOS-1 the others
many_name = "%s/many-tags" % TENANT
repos = [(repo_base + 1, TENANT, many_name, t0)]
repos += [(repo_base + 1 + r, account_of(r), "%s/app-%d" % (account_of(r), r), t0) for r in range(1, REPOS)]
others = MANIFESTS - TAGS
per_repo = others // (REPOS - 1)
extra = others % (REPOS - 1)

con.execute("BEGIN")
con.executemany("INSERT INTO repositories (id, account_id, name, created_at) VALUES (?, ?, ?, ?)", repos)

m_id = man_base
acct_blobs = {}                      # (account, digest) -> [size, nlinks]
B = []                               # blobs
RB = []                              # repository_blobs
MB = []                              # manifest_blobs
M = []                               # manifests
T = []                               # tags
base_seen = set()


def flush():
    con.executemany("INSERT INTO blobs (digest, size, storage_key, created_at) VALUES (?, ?, ?, ?)", B)
    con.executemany(
        "INSERT INTO repository_blobs (repository_id, digest, account_id, linked_at, touched_at)"
        " VALUES (?, ?, ?, ?, ?)", RB)
    con.executemany(
        "INSERT INTO manifests (id, repository_id, account_id, digest, media_type, size, payload,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", M)
    con.executemany("INSERT INTO manifest_blobs (manifest_id, repository_id, digest) VALUES (?, ?, ?)", MB)
    con.executemany("INSERT INTO tags (repository_id, name, manifest_id, updated_at) VALUES (?, ?, ?, ?)", T)
    for rows in (B, RB, MB, M, T):
        rows.clear()


def link(repo_id, acct, d, size, t):
    RB.append((repo_id, d, acct, t, t))
    e = acct_blobs.get((acct, d))
    if e:
        e[1] += 1
    else:
        acct_blobs[(acct, d)] = [size, 1]


def image(repo_index, repo_id, acct, tag, t):
    global m_id
    m_id += 1
    cfg_hex = hexdigest("config", m_id)
    lay_hex = hexdigest("layer", m_id)
    base_hex = hexdigest("base", acct)
    cfg_size = 1200 + m_id % 800
    lay_size = 100000 + (m_id * 7919) % 50000000
    base_size = 30000000 + len(acct)
    B.append(("sha256:" + cfg_hex, cfg_size, storage_key(cfg_hex), t))
    B.append(("sha256:" + lay_hex, lay_size, storage_key(lay_hex), t))
    if base_hex not in base_seen:
        base_seen.add(base_hex)
        B.append(("sha256:" + base_hex, base_size, storage_key(base_hex), t))
    if (repo_index, base_hex) not in base_seen:
        base_seen.add((repo_index, base_hex))
        link(repo_id, acct, "sha256:" + base_hex, base_size, t)
    link(repo_id, acct, "sha256:" + cfg_hex, cfg_size, t)
    link(repo_id, acct, "sha256:" + lay_hex, lay_size, t)
    payload = (
        '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"sha256:%s","size":%d},'
        '"layers":[{"mediaType":"%s","digest":"sha256:%s","size":%d},'
        '{"mediaType":"%s","digest":"sha256:%s","size":%d}]}'
        % (OCI_MANIFEST, OCI_CONFIG, cfg_hex, cfg_size, OCI_LAYER, base_hex, base_size, OCI_LAYER, lay_hex,
           lay_size)).encode()
    mdig = "sha256:" + hashlib.sha256(payload).hexdigest()
    M.append((m_id, repo_id, acct, mdig, OCI_MANIFEST, len(payload), payload, t))
    for d in (cfg_hex, base_hex, lay_hex):
        MB.append((m_id, repo_id, "sha256:" + d))
    T.append((repo_id, tag, m_id, t))
    if len(M) >= 20000:
        flush()


t = t0
for k in range(TAGS):
    image(0, repo_base + 1, TENANT, "1.%d.%d" % (k // 1000, k % 1000), t0 + k)
for r in range(1, REPOS):
    acct = account_of(r)
    for i in range(per_repo + (1 if r <= extra else 0)):
        image(r, repo_base + 1 + r, acct, "v%d" % i, t0 + r)
flush()
con.executemany(
    "INSERT INTO account_blobs (account_id, digest, size, nlinks) VALUES (?, ?, ?, ?)",
    ((a, d, v[0], v[1]) for (a, d), v in acct_blobs.items()))
if version >= 7:
    con.execute(
        "UPDATE repositories SET contents ="
        " (SELECT count(*) FROM manifests m WHERE m.repository_id = repositories.id) +"
        " (SELECT count(*) FROM repository_blobs rb WHERE rb.repository_id = repositories.id)")
    con.execute("UPDATE repositories SET listed = 1 WHERE contents > 0")
for name, table in (("repositories", "repositories"), ("manifests", "manifests")):
    con.execute("DELETE FROM sqlite_sequence WHERE name = ?", (name,))
    con.execute("INSERT INTO sqlite_sequence (name, seq) SELECT ?, max(id) FROM " + table, (name,))
con.execute("COMMIT")
con.execute("PRAGMA journal_mode = WAL")
con.close()

con = sqlite3.connect(db_path)
counts = {t: con.execute("SELECT count(*) FROM " + t).fetchone()[0] for t in (
    "repositories", "blobs", "repository_blobs", "account_blobs", "manifests", "manifest_blobs", "tags")}
con.close()
print(" ".join("%s=%d" % kv for kv in counts.items()) + " seconds=%.1f" % (time.time() - started))

# Golden values for quiltstub's tests: quilt3's Package._calculate_top_hash
# and the sha2-256-chunked hash, copied from quiltdata/quilt
# api/python/quilt3/packages.py and checksums.py (Apache License 2.0), run
# with python3 (no quilt3 install needed). Prints JSON.
import base64, hashlib, json, math

def chunked(data):
    if not data:
        return base64.b64encode(hashlib.sha256(b"").digest()).decode()
    size = len(data); cs = 8 * 1024 * 1024
    while math.ceil(size / cs) > 10_000:
        cs *= 2
    parts = [hashlib.sha256(data[i:i + cs]).digest() for i in range(0, size, cs)]
    return base64.b64encode(hashlib.sha256(b"".join(parts)).digest()).decode()

def top_hash(meta, entries):
    h = hashlib.sha256()
    enc = json.JSONEncoder(sort_keys=True, separators=(',', ':')).encode
    h.update(enc(meta).encode())
    for lk, size, hv in entries:
        h.update(enc({'hash': {'type': 'sha2-256-chunked', 'value': hv}, 'logical_key': lk, 'meta': {}, 'size': size}).encode())
    return h.hexdigest()

files = {"README.md": b"# hello\n", "a/b.csv": b"x,y\n1,2\n", "a-c.txt": b"", "data/\u00e9t\u00e9.bin": bytes(range(256)) * 40000}
entries = []
for lk in ["README.md", "a/b.csv", "a-c.txt", "data/\u00e9t\u00e9.bin"]:
    entries.append((lk, len(files[lk]), chunked(files[lk])))
# quilt3's walk order: per directory level, sorted by name
order = sorted(entries, key=lambda e: e[0].split("/"))
user_meta = json.loads('{"z": 1, "a": [1.0, 2.5e-7, 1e16, 123456789012345678901234567890], "s": "caf\u00e9 \\ud83d\\ude00 \\"q\\" <&> \\u007f", "n": null, "t": true}')
meta = {'version': 'v0', 'user_meta': user_meta, 'workflow': {'id': 'alpha', 'config': 's3://b/.quilt/workflows/config.yml'}, 'message': 'msg'}
print(json.dumps({
    "order": [e[0] for e in order],
    "hashes": {e[0]: e[2] for e in entries},
    "top_hash": top_hash(meta, order),
    "top_hash_no_meta": top_hash({'version': 'v0', 'user_meta': None, 'message': None}, order),
    "meta_compact": json.JSONEncoder(sort_keys=True, separators=(',', ':')).encode(meta),
    "meta_manifest": json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode(meta),
}, indent=1, ensure_ascii=True))

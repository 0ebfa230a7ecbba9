#!/usr/bin/env bash
# fhirgate soak: mixed traffic for DURATION seconds against one gateway with security on, reporting every
# INTERVAL seconds the requests done, their rate, errors, p50/p99 latency, the gateway's resident memory
# and the delivery queue; then resident memory at the start (after the first interval, once caches are
# warm) and at the end. Issue 10: run it for 30 minutes; memory must stay flat.
#
# Traffic (WORKERS threads, each on its own keep-alive connection, as fast as answers come): of every
# 20 operations, 11 reads by id, 4 searches, 3 Patient creates (each routed to a local partner, the
# bench's delivery_sink, so deliveries run all the time), 1 update and 1 HL7 v2 ADT^A01 over MLLP.
#
#   bash bench/soak.sh                 (DURATION=1800 INTERVAL=60 WORKERS=4; FHIRGATE_BIN for another binary)
set -euo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
RESULTS="$BENCH/results"
DURATION="${DURATION:-1800}"
INTERVAL="${INTERVAL:-60}"
WORKERS="${WORKERS:-4}"
STOP_TIMEOUT="${STOP_TIMEOUT:-30}"
SINK_PORT="${SINK_PORT:-18098}"
mkdir -p "$RESULTS"
exec > >(tee "$RESULTS/soak_run.log") 2>&1
. "$BENCH/lib.sh"
bench_tmpdir fhirgate-soak

build_release fhirgate delivery_sink
SINK="$ROOT/build-release/bench/delivery_sink"
echo "== fhirgate soak $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) CPUs: ${DURATION}s, $WORKERS workers"
"$SINK" "$SINK_PORT" >/dev/null 2>&1 &
_PIDS+=("$!")

CFG="$TMPD/gateway.json"
cat > "$CFG" <<JSON
{ "security": {"enabled": true, "consentPolicy": "opt-out"},
  "server": {"threads": 2},
  "profilesDir": "$ROOT/profiles",
  "logging": {"level": "warn"},
  "partners": [
    {"id": "gp-practice", "name": "Riverside Medical Practice", "odsCode": "Y12345",
     "access": {"Patient": ["create", "read", "update", "search-type"]}, "inbound": ["fhir-rest", "hl7v2-mllp"]},
    {"id": "acute-trust", "name": "Northfield Hospitals NHS Trust", "odsCode": "RX1",
     "endpoint": {"fhirBaseUrl": "http://127.0.0.1:$SINK_PORT/fhir", "timeoutMs": 2000}}],
  "roles": [{"id": "operator", "name": "Operations", "role": "operator", "access": {}}],
  "mllp": {"listeners": [{"port": 0, "partner": "gp-practice"}]},
  "routes": [{"id": "patients", "from": "gp-practice", "types": ["Patient"], "to": ["acute-trust"]}] }
JSON
GP="$("$BIN" partner add-token gp-practice --config "$CFG" --db "$TMPD/soak.db" | tail -1)"
OPS="$("$BIN" partner add-token operator --config "$CFG" --db "$TMPD/soak.db" | tail -1)"
serve_gateway "$CFG" "$TMPD/soak.db"
MLLP_PORT="$(grep -o 'MLLP listening on 127\.0\.0\.1:[0-9]*' "$TMPD/out.log" | head -1 | sed 's/.*://')"

python3 - "$URL" "$GP" "$OPS" "$PID" "$MLLP_PORT" "$DURATION" "$INTERVAL" "$WORKERS" "$ROOT/tests/data/adt_a01.hl7" "$TMPD/soak.db" <<'PY'
import http.client, json, random, socket, statistics, sys, threading, time, urllib.parse
url, gp, ops, pid, mllp_port, duration, interval, workers, adt_path, db = sys.argv[1:11]
duration, interval, workers, mllp_port = int(duration), int(interval), int(workers), int(mllp_port)
host, port = urllib.parse.urlparse(url).hostname, urllib.parse.urlparse(url).port
adt = open(adt_path).read().replace("\n", "\r")

def rss_mib():
    # (all resident, anonymous): file-backed pages are the database mapped (mmap_size) and come and go
    # with the page cache; anonymous memory is the heap (SQLite's caches included), where a leak would show.
    got = {}
    for line in open(f"/proc/{pid}/status"):
        key = line.split(":")[0]
        if key in ("VmRSS", "RssAnon"): got[key] = int(line.split()[1]) / 1024
    return got.get("VmRSS", 0.0), got.get("RssAnon", 0.0)

def db_mib():
    import os
    return sum(os.path.getsize(db + ext) for ext in ("", "-wal") if os.path.exists(db + ext)) / 2**20

def nhs(n):
    stem = 800000000 + n * 7
    while True:
        s = sum(int(d) * (10 - i) for i, d in enumerate(str(stem))); c = 11 - s % 11
        if c != 10: return str(stem) + str(0 if c == 11 else c)
        stem += 1

lock = threading.Lock()
window = {"n": 0, "errors": 0, "lat": []}
ids, counter = [], [0]
stop = time.time() + duration

def record(ms, ok):
    with lock:
        window["n"] += 1
        window["lat"].append(ms)
        if not ok: window["errors"] += 1

def worker(seed):
    rnd = random.Random(seed)
    conn = http.client.HTTPConnection(host, port, timeout=30)
    mllp = socket.create_connection(("127.0.0.1", mllp_port), timeout=30)
    headers = {"Authorization": "Bearer " + gp, "Content-Type": "application/fhir+json"}
    def call(method, path, body=None):
        t = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse(); data = r.read(); ok = r.status < 400
        except Exception:
            ok, data = False, b""
            conn.close()
        record((time.perf_counter() - t) * 1000, ok)
        return data if ok else None
    while time.time() < stop:
        op = rnd.randrange(20)
        with lock:
            counter[0] += 1; n = counter[0]
            known = ids[rnd.randrange(len(ids))] if ids else None
        if op < 3 or known is None:
            body = json.dumps({"resourceType": "Patient", "name": [{"family": f"Soak{n}", "given": ["Load"]}],
                               "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs(n)}],
                               "gender": "female", "birthDate": "1970-01-01"})
            data = call("POST", "/Patient", body)
            if data:
                with lock: ids.append(json.loads(data)["id"])
        elif op < 14:
            call("GET", f"/Patient/{known}")
        elif op < 18:
            call("GET", f"/Patient?family=Soak{rnd.randrange(max(1, n))}&_count=10")
        elif op < 19:
            call("PUT", f"/Patient/{known}", json.dumps({"resourceType": "Patient", "id": known,
                 "name": [{"family": f"Soak{n}", "given": ["Updated"]}], "gender": "female"}))
        else:
            msg = adt.replace("9434765919", nhs(n + 10**7)).replace("MSG00001", f"S{n}").replace("RX1-0042731", f"RX1-{n}")
            t = time.perf_counter(); ok = False
            try:
                mllp.sendall(b"\x0b" + msg.encode() + b"\x1c\x0d"); buf = b""
                while b"\x1c\x0d" not in buf:
                    chunk = mllp.recv(65536)
                    if not chunk: break
                    buf += chunk
                ok = b"MSA|CA" in buf or b"MSA|AA" in buf
            except Exception:
                pass
            record((time.perf_counter() - t) * 1000, ok)

def queue_depth():
    try:
        c = http.client.HTTPConnection(host, port, timeout=10)
        c.request("GET", "/_ops/stats?window=60&bucket=60", headers={"Authorization": "Bearer " + ops})
        q = json.loads(c.getresponse().read())["queues"]
        return sum(x["depth"] for x in q)
    except Exception:
        return -1

threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(workers)]
for t in threads: t.start()
start = time.time(); rows = []
print(f"   {'t (s)':>6} {'requests':>9} {'req/s':>8} {'errors':>7} {'p50 ms':>7} {'p99 ms':>7} {'RSS MiB':>8} {'anon MiB':>8} {'queued':>7}")
while time.time() < stop:
    time.sleep(min(interval, max(0.1, stop - time.time())))
    with lock:
        n, errors, lat = window["n"], window["errors"], sorted(window["lat"])
        window.update(n=0, errors=0, lat=[])
    elapsed = time.time() - start
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else 0
    rss, anon = rss_mib()
    rows.append((elapsed, n, n / interval, errors, p(0.5), p(0.99), rss, anon, queue_depth()))
    print(f"   {elapsed:6.0f} {n:9d} {n / interval:8.0f} {errors:7d} {p(0.5):7.2f} {p(0.99):7.2f} {rss:8.1f} {anon:8.1f} {rows[-1][8]:7d}", flush=True)
for t in threads: t.join(timeout=30)
if rows:
    first, last = rows[0][6], rows[-1][6]
    total = sum(r[1] for r in rows); errors = sum(r[3] for r in rows)
    print(f"   {total} operations in {rows[-1][0]:.0f} s ({total / rows[-1][0]:.0f}/s), {errors} errors; "
          f"p99 per interval {min(r[5] for r in rows):.2f}..{max(r[5] for r in rows):.2f} ms")
    print(f"   resident memory: {first:.1f} MiB after the first interval, {last:.1f} MiB at the end "
          f"({last - first:+.1f} MiB, peak {max(r[6] for r in rows):.1f} MiB)")
    print(f"   anonymous memory (heap): {rows[0][7]:.1f} MiB after the first interval, {rows[-1][7]:.1f} MiB at the end "
          f"({rows[-1][7] - rows[0][7]:+.1f} MiB); database file: {db_mib():.1f} MiB")
PY

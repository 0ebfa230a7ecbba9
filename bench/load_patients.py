#!/usr/bin/python3
"""Bulk-load synthetic Patients into a running fhirgate over keep-alive HTTP/1.1 (stdlib only).

Each worker thread owns one http.client connection and POSTs its share of the Patients to
/Patient (application/fhir+json). The server-assigned ids (the "id" of each 201 response body)
are written, one per line, to --ids (the IDS_FILE of wrk/read.lua).

The Patients are seeded/deterministic: surnames are the 50 of wrk/search.lua (round-robin, so each
family gets N/50 Patients: ~200 of 10,000), varied given names, gender, birthDate, a valid
Modulus-11 NHS number in the 999 test range, a trust MRN, phone, e-mail and a UK address.

After the load it checks, per family, that `GET /Patient?family=X&_summary=count` reports as many
matches as were created (only when the database was empty before: --expect-exact).

Exit status: 0 when every POST returned 201 with an id (and the counts matched), 1 otherwise.
usage: load_patients.py --base http://127.0.0.1:PORT --count N --ids FILE [--conns 8] [--deadline 300]
"""
import argparse
import http.client
import json
import random
import sys
import threading
import time
import urllib.parse
import uuid

# Same 50 surnames, same order, as wrk/search.lua and ../shared/bench/data/gen.py.
FAMILIES = ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies",
            "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green",
            "Hall", "Wood", "Jackson", "Clarke", "Patel", "Khan", "Lewis", "James", "Phillips",
            "Mason", "Mitchell", "Rose", "Davis", "Rodriguez", "Cox", "Alexander", "Morgan",
            "Moore", "Mills", "King", "Begum", "Hughes", "Martin", "Edwards", "Hill", "Shaw",
            "Chalmers", "Turner", "Lee", "Ward", "Baker", "Harris", "Cooper", "Allen"]
GIVEN_M = ["Oliver", "George", "Harry", "Jack", "Jacob", "Noah", "Charlie", "Muhammad",
           "Thomas", "Oscar", "William", "James", "Peter", "Arthur", "Leo"]
GIVEN_F = ["Olivia", "Amelia", "Isla", "Ava", "Emily", "Isabella", "Mia", "Poppy", "Ella",
           "Lily", "Grace", "Sophia", "Freya", "Evie", "Aisha"]
CITIES = [("Leeds", "LS"), ("Manchester", "M"), ("Birmingham", "B"), ("Bristol", "BS"),
          ("Sheffield", "S"), ("Newcastle upon Tyne", "NE"), ("London", "SE"), ("York", "YO")]
STREETS = ["High St", "Station Rd", "Church Lane", "Victoria Rd", "Green Lane", "Manor Rd",
           "Park Avenue", "Queens Rd", "Mill Lane", "Kings Rd"]


def nhs_number(rng, used=None):
    """Valid (Modulus 11) NHS number in the 999 test range, not in `used` (then added to it): the gateway
    keeps one Patient per NHS number, so a repeated one would be a 409, not a Patient."""
    while True:
        d = [9, 9, 9] + [rng.randrange(10) for _ in range(6)]
        s = sum(v * (10 - i) for i, v in enumerate(d))
        c = 11 - s % 11
        if c == 11:
            c = 0
        number = "".join(map(str, d)) + str(c)
        if c != 10 and (used is None or number not in used):
            if used is not None:
                used.add(number)
            return number


def patient(i, rng, used=None):
    male = rng.random() < 0.5
    names = GIVEN_M if male else GIVEN_F
    given = [rng.choice(names)]
    if rng.random() < 0.6:
        given.append(rng.choice(names))
    family = FAMILIES[i % len(FAMILIES)]
    city, pc = rng.choice(CITIES)
    return {
        "resourceType": "Patient",
        "identifier": [
            {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs_number(rng, used)},
            {"system": "https://fhir.example-trust.nhs.uk/Id/mrn", "value": "RX1-%07d" % i}],
        "active": True,
        "name": [{"use": "official", "family": family, "given": given, "prefix": ["Mr" if male else "Ms"]}],
        "telecom": [{"system": "phone", "value": "07700 %06d" % rng.randrange(900000, 900999), "use": "mobile"},
                    {"system": "email", "value": "%s.%s@example.org" % (given[0].lower(), family.lower()),
                     "use": "home"}],
        "gender": "male" if male else "female",
        "birthDate": "%d-%02d-%02d" % (rng.randrange(1930, 2024), rng.randrange(1, 13), rng.randrange(1, 29)),
        "address": [{"use": "home", "type": "physical",
                     "line": ["%d %s" % (rng.randrange(1, 400), rng.choice(STREETS))],
                     "city": city,
                     "postalCode": "%s%d %d%s%s" % (pc, rng.randrange(1, 20), rng.randrange(1, 9),
                                                    chr(65 + rng.randrange(26)), chr(65 + rng.randrange(26))),
                     "country": "GB"}],
    }


def post_all(host, port, path, bodies, token, conns, deadline):
    """POSTs each body to path over `conns` keep-alive connections (Bearer token when given), until the
    monotonic `deadline`. Returns (ids aligned with bodies, None where it failed; errors as (index, status
    or exception text, first 300 bytes of the body))."""
    ids = [None] * len(bodies)
    errors = []
    lock = threading.Lock()
    h = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    if token:
        h["Authorization"] = "Bearer " + token

    def worker(w):
        conn = http.client.HTTPConnection(host, port, timeout=30)
        for i in range(w, len(bodies), conns):
            if time.monotonic() > deadline:
                with lock:
                    errors.append((i, "deadline", b""))
                break
            try:
                conn.request("POST", path, body=bodies[i], headers=h)
                r = conn.getresponse()
                data = r.read()
                if r.status == 201:
                    ids[i] = json.loads(data)["id"]
                else:
                    with lock:
                        errors.append((i, r.status, data[:300]))
                if r.will_close:
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=30)
            except Exception as e:  # connection reset, timeout, bad JSON...
                with lock:
                    errors.append((i, "%s: %s" % (type(e).__name__, e), b""))
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=30)
        conn.close()

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + 35)
    return ids, errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="http://127.0.0.1:PORT (loopback only)")
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--seed", type=int, default=20240514)
    ap.add_argument("--deadline", type=float, default=300.0, help="seconds; stop loading after this")
    ap.add_argument("--expect-exact", action="store_true",
                    help="database was empty: per-family counts must equal what was created")
    a = ap.parse_args()

    u = urllib.parse.urlsplit(a.base)
    host, port = u.hostname, u.port
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("refusing non-loopback target %s" % host)
    prefix = u.path.rstrip("/")

    rng = random.Random(a.seed)
    used = set()  # NHS numbers given out: one Patient per NHS number
    bodies = [json.dumps(patient(i, rng, used), separators=(",", ":")).encode() for i in range(a.count)]
    per_family = [0] * len(FAMILIES)
    for i in range(a.count):
        per_family[i % len(FAMILIES)] += 1

    deadline = time.monotonic() + a.deadline
    t0 = time.monotonic()
    ids, errors = post_all(host, port, prefix + "/Patient", bodies, None, a.conns, deadline)
    dt = time.monotonic() - t0

    ok = [x for x in ids if x]
    with open(a.ids, "w") as f:
        f.write("\n".join(ok) + "\n")
    print("load: %d/%d Patients created in %.2f s = %.0f creates/s (%d connections, python http.client)"
          % (len(ok), a.count, dt, len(ok) / dt if dt > 0 else 0.0, a.conns))
    if len(set(ok)) != len(ok):
        print("load: ERROR duplicate ids returned: %d ids, %d distinct" % (len(ok), len(set(ok))))
        errors.append((-1, "duplicate ids", b""))
    for i, st, body in errors[:10]:
        print("load: ERROR patient #%d: %s %s" % (i, st, body.decode("utf-8", "replace")))
    if len(errors) > 10:
        print("load: ... %d errors in total" % len(errors))

    # Search check: each family must match what was created (counts come from the server).
    conn = http.client.HTTPConnection(host, port, timeout=30)
    counts = []
    bad = 0
    for fi, fam in enumerate(FAMILIES):
        conn.request("GET", prefix + "/Patient?family=%s&_summary=count" % fam, headers={"Accept": "application/fhir+json"})
        r = conn.getresponse()
        data = r.read()
        total = json.loads(data).get("total") if r.status == 200 else None
        counts.append(total)
        if a.expect_exact and not errors and total != per_family[fi]:
            bad += 1
            print("load: ERROR family=%s: server total %s, created %d" % (fam, total, per_family[fi]))
    conn.close()
    known = [c for c in counts if isinstance(c, int)]
    if known:
        print("load: search check: family totals min %d / max %d / sum %d over %d families (created %d per family)"
              % (min(known), max(known), sum(known), len(known), per_family[0]))
    else:
        print("load: search check: no totals returned")
        bad += 1
    sys.exit(1 if errors or bad else 0)


if __name__ == "__main__":
    main()

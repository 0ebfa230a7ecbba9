#!/usr/bin/python3
"""Helpers for bench/security.sh (stdlib only).

  security_setup.py config --out FILE --security on|off
      writes the bench gateway configuration: partners gp-practice (loads Patients and Consents) and
      acute-trust (reads), opt-in consent, no profile enforcement, cachedTypes Patient, Consent,
      AuditEvent, Organization; database.path bench.db (overridden by --db anyway).

  security_setup.py load --base URL --count N --ids FILE [--conns 8] [--deadline 300]
                         [--token TOKEN] [--consent-for Organization/acute-trust] [--consents M]
      POSTs N synthetic Patients (the same seeded ones as load_patients.py) over keep-alive
      connections, with `Authorization: Bearer TOKEN` when --token is given. With --consent-for it
      then POSTs, for each Patient (for the first M with --consents), an active opt-in Consent
      permitting that Organization. The Patient ids go to --ids, in load order. Exit 0 when every POST
      returned 201.

  security_setup.py check --base URL --ids FILE --reader-token T --loader-token T
      'on' mode sanity checks, before measuring: the reader gets 200 on a consented Patient; gets
      401 without a token; and gets 403/404 on a Patient the loader creates without a Consent
      (shows the consent check really runs on the measured path; 200 with --reader-is-supplier),
      which the loader (its supplier) reads with 200. Exit 0 when all hold.

  security_setup.py audit-count --db PATH
      prints the number of AuditEvents: the rows in audit_event and those still only in the audit log file
      (read-only; safe while the server runs, WAL).

  security_setup.py summary --off F1,F2.. --on F1,F2.. --off-cpu C1,C2.. --on-cpu C1,C2..
                            [--target 0.30] [--out SUMMARY.tsv]
      parses the wrk --latency outputs (report.py's parser): median req/s, p50, p99 per mode, sums of
      requests, non-2xx and socket errors, median server CPU; prints a markdown table, the cost
      1 - on/off of the medians (and per run pair), and PASS (cost <= target) or BELOW; ERRORS is
      appended when any response was non-2xx or any socket error happened. Exit 0 PASS, 1 otherwise.
"""
import argparse
import http.client
import json
import os
import sqlite3
import sys
import time
import urllib.parse
import random

sys.dont_write_bytecode = True  # no __pycache__ in bench/ from importing the sibling scripts
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load_patients import patient, post_all  # noqa: E402  (same seeded Patients and loader as the other benches)

FHIR = "application/fhir+json"


def config(out, security, registrar=True):
    cfg = {
        "server": {"bind": "127.0.0.1", "port": 0, "threads": 2},
        "database": {"path": "bench.db"},
        "security": {"enabled": security == "on", "consentPolicy": "opt-in"},
        "partners": [
            {"id": "gp-practice", "name": "Riverside Medical Practice", "odsCode": "Y12345", "consentRegistrar": True,
             "access": {"Patient": ["read", "vread", "search-type", "create", "update"],
                        "Consent": ["read", "vread", "search-type", "create", "update"],
                        "Organization": ["read", "search-type"]},
             "purposes": ["TREAT", "ETREAT"], "inbound": ["fhir-rest"]},
            {"id": "acute-trust", "name": "Northfield Hospitals NHS Trust", "odsCode": "RX1",
             "access": {"Patient": ["read", "vread", "search-type"],
                        "Consent": ["read", "vread", "search-type"],
                        "Organization": ["read", "search-type"]},
             "purposes": ["TREAT"], "inbound": ["fhir-rest"]},
        ],
        "cachedTypes": ["Patient", "Consent", "AuditEvent", "Organization"],
        "search": {"defaultPageSize": 20, "maxPageSize": 1000},
    }
    if not registrar:  # a binary from before consentRegistrar existed (any partner could write Consents)
        del cfg["partners"][0]["consentRegistrar"]
    with open(out, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")


def consent(patient_id, actor):
    return {
        "resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/" + patient_id},
        "dateTime": "2026-01-01T00:00:00Z",
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        "provision": {"type": "permit", "actor": [{
            "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                 "code": "IRCP"}]},
            "reference": {"reference": actor}}]},
    }


def target(base):
    u = urllib.parse.urlsplit(base)
    if u.hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("refusing non-loopback target %s" % u.hostname)
    return u.hostname, u.port, u.path.rstrip("/")


def headers(token, body=False):
    h = {"Accept": FHIR}
    if body:
        h["Content-Type"] = FHIR
    if token:
        h["Authorization"] = "Bearer " + token
    return h


def report_errors(what, errors):
    for i, st, body in errors[:5]:
        print("load: ERROR %s #%d: %s %s" % (what, i, st, body.decode("utf-8", "replace")))
    if len(errors) > 5:
        print("load: ... %d %s errors in total" % (len(errors), what))


def load(a):
    host, port, prefix = target(a.base)
    deadline = time.monotonic() + a.deadline
    rng = random.Random(a.seed)
    used = set()  # one Patient per NHS number
    bodies = [json.dumps(patient(i, rng, used), separators=(",", ":")).encode() for i in range(a.count)]
    t0 = time.monotonic()
    ids, errors = post_all(host, port, prefix + "/Patient", bodies, a.token, a.conns, deadline)
    dt = time.monotonic() - t0
    ok = [x for x in ids if x]
    print("load: %d/%d Patients created in %.2f s = %.0f creates/s (%d connections%s)"
          % (len(ok), a.count, dt, len(ok) / dt if dt > 0 else 0.0, a.conns, ", authenticated" if a.token else ""))
    report_errors("Patient", errors)
    with open(a.ids, "w") as f:
        f.write("\n".join(ok) + "\n")
    bad = bool(errors) or len(set(ok)) != len(ok)
    if a.consent_for and ok:
        consented = ok if a.consents is None else ok[:a.consents]
        cbodies = [json.dumps(consent(pid, a.consent_for), separators=(",", ":")).encode() for pid in consented]
        t0 = time.monotonic()
        cids, cerrors = post_all(host, port, prefix + "/Consent", cbodies, a.token, a.conns, deadline)
        dt = time.monotonic() - t0
        cok = [x for x in cids if x]
        print("load: %d/%d Consents (permit %s) created in %.2f s = %.0f creates/s"
              % (len(cok), len(consented), a.consent_for, dt, len(cok) / dt if dt > 0 else 0.0))
        report_errors("Consent", cerrors)
        bad = bad or bool(cerrors)
    sys.exit(1 if bad else 0)


def request(host, port, method, path, token=None, body=None):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers(token, body is not None))
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def check(a):
    host, port, prefix = target(a.base)
    with open(a.ids) as f:
        pid = next(line.strip() for line in f if line.strip())
    failures = 0

    def expect(label, status, allowed, body):
        nonlocal failures
        good = status in allowed
        failures += not good
        print("check: %-58s HTTP %d %s" % (label, status, "ok" if good else "UNEXPECTED " + body[:200].decode("utf-8", "replace")))

    st, body = request(host, port, "GET", prefix + "/Patient/" + pid, a.reader_token)
    expect("reader, consented Patient -> 200", st, (200,), body)
    st, body = request(host, port, "GET", prefix + "/Patient/" + pid)
    expect("no token -> 401", st, (401,), body)
    rng = random.Random(1)
    st, body = request(host, port, "POST", prefix + "/Patient", a.loader_token,
                       json.dumps(patient(10**6, rng)).encode())  # an MRN no loaded Patient has
    if st != 201:
        expect("loader creates a Patient without Consent -> 201", st, (201,), body)
    else:
        other = json.loads(body)["id"]
        st, body = request(host, port, "GET", prefix + "/Patient/" + other, a.reader_token)
        if a.reader_is_supplier:
            expect("reader (= supplier), Patient without Consent -> 200", st, (200,), body)
        else:
            expect("reader, Patient without Consent -> 403/404", st, (403, 404), body)
        st, body = request(host, port, "GET", prefix + "/Patient/" + other, a.loader_token)
        expect("loader (supplier), Patient without Consent -> 200", st, (200,), body)
    sys.exit(1 if failures else 0)


def logged_seqs(db):
    """The seqs of the AuditEvents in the audit log file(s) beside the database (a read's event is there
    until the gateway moves it into audit_event): frames "<seq> <ms> <format> <chain> <n> <m>\n", then n + m
    bytes and "\n" (gateway/store/audit_file.hpp); a frame cut short ends the list."""
    import glob
    seqs = []
    for path in sorted(glob.glob(db + ".audit-log*")):
        data = open(path, "rb").read()
        pos = 0
        while pos < len(data):
            eol = data.find(b"\n", pos)
            fields = data[pos:eol].split(b" ") if eol >= 0 else []
            if len(fields) != 6:
                break
            end = eol + 1 + int(fields[4]) + int(fields[5]) + 1
            if end > len(data):
                break
            seqs.append(int(fields[0]))
            pos = end
    return seqs


def audit_count(a):
    """AuditEvents recorded: the rows of audit_event plus those still only in the audit log file."""
    con = sqlite3.connect("file:%s?mode=ro" % urllib.parse.quote(a.db), uri=True, timeout=30,
                          isolation_level=None)
    try:
        logged = logged_seqs(a.db)  # read first: an event moved meanwhile is then found in the table
        con.execute("begin")  # one snapshot for the count and the look-ups, or a move between them hides events
        rows = con.execute("select count(*) from audit_event").fetchone()[0]
        only_logged = sum(1 for seq in set(logged)
                          if con.execute("select 1 from audit_event where seq = ?", (seq,)).fetchone() is None)
        con.execute("commit")
        print(rows + only_logged)
    finally:
        con.close()


def summary(a):
    import statistics
    from report import parse

    def mode(files, cpus):
        runs = [parse(f) for f in files.split(",") if f]
        cpu = [float(x) for x in cpus.split(",") if x not in ("", "-")]
        med = lambda k: statistics.median(r[k] for r in runs)
        return {"rps": med("rps"), "p50": med("p50"), "p99": med("p99"), "n": sum(r["n"] for r in runs),
                "non2xx": sum(r["non2xx"] for r in runs), "sock": sum(sum(r["sock"]) for r in runs),
                "runs": [r["rps"] for r in runs], "cpu": statistics.median(cpu) if cpu else float("nan")}

    try:
        off, on = mode(a.off, a.off_cpu), mode(a.on, a.on_cpu)
    except (OSError, ValueError, statistics.StatisticsError) as e:
        print("summary: FAILED: %s" % e)
        sys.exit(1)
    cost = 1.0 - on["rps"] / off["rps"]
    pairs = [1.0 - b / x for x, b in zip(off["runs"], on["runs"])]
    errs = off["non2xx"] + off["sock"] + on["non2xx"] + on["sock"]
    status = ("PASS" if cost <= a.target else "BELOW") + (" ERRORS" if errs else "")
    head = ["mode", "req/s (median)", "p50 ms", "p99 ms", "requests", "non-2xx", "socket errors",
            "server CPU %", "req/s per run"]
    rows = []
    for name, m in (("security off (no auth, consent, audit)", off),
                    ("security on (bearer + consent + audit)", on)):
        rows.append([name, "%.0f" % m["rps"], "%.3f" % m["p50"], "%.3f" % m["p99"], str(m["n"]),
                     str(m["non2xx"]), str(m["sock"]), "%.0f" % m["cpu"], ",".join("%.0f" % x for x in m["runs"])])
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()
    print("cost of the security chain = 1 - on/off = 1 - %.0f/%.0f = %.1f%% (target <= %.0f%%): %s"
          % (on["rps"], off["rps"], cost * 100, a.target * 100, status))
    print("  per run pair (off/on measured back to back): %s" % ", ".join("%.1f%%" % (c * 100) for c in pairs))
    print("  CPU per request: off %.0f us, on %.0f us (server process, from the median CPU and req/s)"
          % (off["cpu"] / 100 / off["rps"] * 1e6, on["cpu"] / 100 / on["rps"] * 1e6))
    if a.out:
        with open(a.out, "w") as f:
            f.write("\t".join(head + ["cost", "target", "status"]) + "\n")
            for r in rows:
                f.write("\t".join(r + ["%.4f" % cost, "%.2f" % a.target, status]) + "\n")
    sys.exit(0 if status == "PASS" else 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("config")
    p.add_argument("--out", required=True)
    p.add_argument("--security", choices=("on", "off"), required=True)
    p.add_argument("--no-registrar", action="store_true", help="leave consentRegistrar out (older binaries)")
    p = sub.add_parser("load")
    p.add_argument("--base", required=True)
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--conns", type=int, default=8)
    p.add_argument("--ids", required=True)
    p.add_argument("--seed", type=int, default=20240514)
    p.add_argument("--deadline", type=float, default=300.0)
    p.add_argument("--token")
    p.add_argument("--consent-for")
    p.add_argument("--consents", type=int, help="Consents for the first N Patients only (default: all)")
    p = sub.add_parser("check")
    p.add_argument("--base", required=True)
    p.add_argument("--ids", required=True)
    p.add_argument("--reader-token", required=True)
    p.add_argument("--loader-token", required=True)
    p.add_argument("--reader-is-supplier", action="store_true", help="the reader is the loading partner")
    p = sub.add_parser("audit-count")
    p.add_argument("--db", required=True)
    p = sub.add_parser("summary")
    for k in ("--off", "--on", "--off-cpu", "--on-cpu"):
        p.add_argument(k, required=True)
    p.add_argument("--target", type=float, default=0.30)
    p.add_argument("--out")
    a = ap.parse_args()
    {"config": lambda: config(a.out, a.security, not a.no_registrar), "load": lambda: load(a), "check": lambda: check(a),
     "audit-count": lambda: audit_count(a), "summary": lambda: summary(a)}[a.cmd]()


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Parse `wrk --latency` outputs and print the fhirgate bench summary (stdlib only).

  report.py add ROWS.tsv SCENARIO CPU_LIST wrk_run1.txt [wrk_run2.txt ...]
      median req/s, p50, p99 over the runs; sums of requests, non-2xx/3xx responses and socket
      errors; per-run req/s; median server CPU (% of one core, CPU_LIST = "12.5,13.0" or "-").
      Appends one line to ROWS.tsv and prints it.
  report.py summary ROWS.tsv SUMMARY.tsv
      adds the targets (issue 18: read >= READ_CEILING_SHARE, search >= SEARCH_CEILING_SHARE of the
      ceiling measured in the same run; create >= 1.5x SQLite one row per transaction at synchronous=FULL,
      which run.sh does not measure: bench/check does), prints a markdown table and writes SUMMARY.tsv
      (with a header line).

Status: PASS (>= target, 0 errors), BELOW (< target), ERRORS appended when any response was
non-2xx (wrk: status > 399) or any socket error/timeout happened, FAILED when wrk produced no result.
"""
import os
import re
import statistics
import sys

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
ROW_FIELDS = ["scenario", "rps", "p50_ms", "p99_ms", "requests", "non2xx", "socket_errors",
              "socket_detail", "runs_rps", "server_cpu_pct"]
# Recorded HTTP ceiling (../shared/bench/BASELINES.md #1), used only when no ceiling ran in this run.
RECORDED_CEILING = 40573.0


def ms(tok):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", tok)
    return float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")


def parse(path):
    t = open(path, errors="replace").read()
    m = re.search(r"Requests/sec:\s+([\d.]+)", t)
    if not m:
        raise ValueError("no Requests/sec in %s" % path)
    r = {"rps": float(m.group(1))}
    for pct in ("50", "99"):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+(\S+)" % pct, t, re.M)
        r["p" + pct] = ms(m.group(1)) if m else float("nan")
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
    r["sock"] = tuple(map(int, m.groups())) if m else (0, 0, 0, 0)
    m = re.search(r"(\d+) requests in", t)
    r["n"] = int(m.group(1)) if m else 0
    return r


def cmd_add(rows_path, scenario, cpu_list, files):
    runs, bad = [], []
    for f in files:
        try:
            runs.append(parse(f))
        except (OSError, ValueError) as e:
            bad.append(str(e))
    cpus = [float(x) for x in cpu_list.split(",") if x not in ("", "-")]
    if runs:
        med = lambda k: statistics.median(r[k] for r in runs)
        sock = [sum(r["sock"][i] for r in runs) for i in range(4)]
        row = [scenario, "%.0f" % med("rps"), "%.3f" % med("p50"), "%.3f" % med("p99"),
               str(sum(r["n"] for r in runs)), str(sum(r["non2xx"] for r in runs)), str(sum(sock)),
               "connect %d read %d write %d timeout %d" % tuple(sock),
               ",".join("%.0f" % r["rps"] for r in runs),
               "%.0f" % statistics.median(cpus) if cpus else "-"]
        if bad:
            row[7] += "; %d run(s) without result" % len(bad)
    else:
        row = [scenario, "FAILED", "-", "-", "0", "-", "-", "; ".join(bad) or "no runs", "-", "-"]
    with open(rows_path, "a") as f:
        f.write("\t".join(row) + "\n")
    print("  %s: %s req/s, p50 %s ms, p99 %s ms, non-2xx %s, socket errors %s [%s], runs %s, server CPU %s%%"
          % (row[0], row[1], row[2], row[3], row[5], row[6], row[7], row[8], row[9]))


def cmd_summary(rows_path, out_path):
    rows = []
    if os.path.exists(rows_path):
        with open(rows_path) as f:
            rows = [dict(zip(ROW_FIELDS, line.rstrip("\n").split("\t"))) for line in f if line.strip()]
    shares = {"read": float(os.environ.get("READ_CEILING_SHARE", "0.5")),
              "search": float(os.environ.get("SEARCH_CEILING_SHARE", "0.15"))}
    ceiling = next((r for r in rows if r["scenario"].startswith("ceiling") and r["rps"] != "FAILED"), None)
    out = []
    for r in rows:
        sc = r["scenario"]
        kind = sc.split()[0]
        target, tdesc = None, "reference"
        if kind in shares:
            share = shares[kind]
            if ceiling:
                target = share * float(ceiling["rps"])
                tdesc = ">= %.0f%% of ceiling (%s) = %.0f" % (share * 100, ceiling["rps"], target)
            else:
                target = share * RECORDED_CEILING
                tdesc = ">= %.0f%% of recorded ceiling %.0f = %.0f" % (share * 100, RECORDED_CEILING, target)
        elif kind == "create":
            tdesc = ">= 1.5x SQLite 1 row/txn FULL: needs bench/check"
        if r["rps"] == "FAILED":
            status = "FAILED"
        else:
            errs = int(r["non2xx"]) + int(r["socket_errors"])
            status = "-" if target is None else ("PASS" if float(r["rps"]) >= target else "BELOW")
            if errs:
                status += " ERRORS"
        pct = ""
        if ceiling and kind in shares and r["rps"] != "FAILED":
            pct = "%.0f%%" % (100.0 * float(r["rps"]) / float(ceiling["rps"]))
        out.append([sc, r["rps"], r["p50_ms"], r["p99_ms"], r["non2xx"], r["socket_errors"], r["requests"],
                    r["server_cpu_pct"], pct, tdesc, status, r["runs_rps"]])
    head = ["scenario", "req/s (median)", "p50 ms", "p99 ms", "non-2xx", "socket errors", "requests",
            "server CPU %", "vs ceiling", "target", "status", "req/s per run"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for o in out:
        print("| " + " | ".join(o) + " |")
    with open(out_path, "w") as f:
        f.write("\t".join(head) + "\n")
        for o in out:
            f.write("\t".join(o) + "\n")


def main():
    a = sys.argv[1:]
    if len(a) >= 5 and a[0] == "add":
        cmd_add(a[1], a[2], a[3], a[4:])
    elif len(a) == 3 and a[0] == "summary":
        cmd_summary(a[1], a[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Helpers for bench/check (stdlib only).

  check_report.py wrk FILE
      one `wrk --latency` output -> "rps p99_ms non2xx socket_errors requests" (report.py's parser), or
      "FAILED <why>" when wrk produced no result.
  check_report.py nhs STEM
      the first valid NHS number (Modulus 11) whose 9-digit stem is STEM or after it.
  check_report.py template --in ADT --out FILE --facility F --family NAME [--nhs N] [--local-prefix P]
      a copy of an HL7 v2 template with MSH-4 set to F, PID-5.1 to NAME, the NHS number of PID-3 (the
      repetition whose 4th component is NHS, else the first) set to N, and P put in front of the other
      PID-3 identifiers. Fails when the template has no MSH or no PID-3 / PID-5.
  check_report.py rows --gen GEN.py --out FILE --count N
      N compact ~1.1 KB Patients, one per line (GEN.py's compact_patient, seeded): sqlite_bench's input.
  check_report.py summary --raw RAW --scenarios "A B .." --baseline FILE --out TSV [--slide 0.20]
                          [--record FILE --commit TEXT --settings TEXT --note TEXT]
      the table of bench/check (see its header) from the raw lines the script wrote; exit 0 when no
      scenario slid or failed, else 1. With --record it then writes a new baseline to FILE (refused when a
      measured scenario failed; scenarios not measured keep their previous row, which the header names).

RAW lines (tab-separated): scenario, round, role, name, value, p99_ms, rss_kb, detail; role is figure
(the scenario's own run), reference (its reference's run), error (detail says what), or noref (the
reference is unavailable: detail says why).
"""
import argparse
import datetime
import json
import os
import random
import statistics
import sys

sys.dont_write_bytecode = True  # no __pycache__ in bench/ (or in ../shared) from the imports below
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# scenario -> (reference label, unit, target ratio, strictly greater, target text)
SCENARIOS = {
    "read": ("Beast ceiling", "req/s", 0.50, False, ">= 0.50 of the ceiling"),
    "audited-read": ("open gateway", "req/s", 0.70, False, "cost <= 30% (ratio >= 0.70)"),
    "search": ("Beast ceiling", "req/s", 0.15, False, ">= 0.15 of the ceiling"),
    "create": ("SQLite FULL", "req/s", 1.50, False, ">= 1.5x SQLite FULL"),
    "mllp-new": ("SQLite FULL", "msgs/s", 1.50, False, ">= 1.5x SQLite FULL"),
    "mllp-same": ("Medplum MLLP", "msgs/s", 1.00, True, "> 1.0x Medplum"),
}
FIELDS = ["scenario", "round", "role", "name", "value", "p99_ms", "rss_kb", "detail"]


def cmd_wrk(a):
    from report import parse
    try:
        r = parse(a.file)
    except (OSError, ValueError) as e:
        print("FAILED %s" % e)
        return
    print("%.1f %.3f %d %d %d" % (r["rps"], r["p99"], r["non2xx"], sum(r["sock"]), r["n"]))


def nhs_check(stem):
    s = sum(int(d) * (10 - i) for i, d in enumerate(stem))
    c = (11 - s % 11) % 11
    return None if c == 10 else stem + str(c)


def cmd_nhs(a):
    stem = int(a.stem)
    while nhs_check("%09d" % stem) is None:
        stem += 1
    print(nhs_check("%09d" % stem))


def cmd_template(a):
    text = open(a.input, newline="").read().rstrip("\r\n")
    segs = text.split("\r")
    msh = [i for i, s in enumerate(segs) if s.startswith("MSH")]
    pid = [i for i, s in enumerate(segs) if s.startswith("PID|")]
    if len(msh) != 1 or not pid:
        sys.exit("template %s: needs one MSH and a PID segment" % a.input)
    f = segs[msh[0]].split("|")
    if len(f) < 4:
        sys.exit("template %s: MSH has no MSH-4" % a.input)
    f[3] = a.facility
    segs[msh[0]] = "|".join(f)
    p = segs[pid[0]].split("|")
    if len(p) < 6 or not p[3] or not p[5]:
        sys.exit("template %s: PID has no PID-3 or PID-5" % a.input)
    reps = [r.split("^") for r in p[3].split("~")]
    nhs_rep = next((i for i, r in enumerate(reps) if len(r) > 3 and r[3] == "NHS"), 0)
    for i, r in enumerate(reps):
        if i == nhs_rep:
            if a.nhs:
                r[0] = a.nhs
        elif a.local_prefix:
            r[0] = a.local_prefix + r[0]
    p[3] = "~".join("^".join(r) for r in reps)
    name = p[5].split("^")
    name[0] = a.family
    p[5] = "^".join(name)
    segs[pid[0]] = "|".join(p)
    with open(a.out, "w", newline="") as out:
        out.write("\r".join(segs) + "\r")


def cmd_rows(a):
    sys.path.insert(0, os.path.dirname(os.path.abspath(a.gen)))
    import importlib
    gen = importlib.import_module(os.path.splitext(os.path.basename(a.gen))[0])
    rng = random.Random(20240514)
    tmp = a.out + ".part"
    with open(tmp, "w") as f:
        for _ in range(a.count):
            f.write(json.dumps(gen.compact_patient(rng), separators=(",", ":"), ensure_ascii=False) + "\n")
    os.replace(tmp, a.out)


def read_baseline(path):
    """{scenario: row dict}, and the comment lines."""
    rows, comments = {}, []
    if not path or not os.path.exists(path):
        return rows, comments
    head = None
    for line in open(path):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        if line.startswith("#"):
            comments.append(line)
            continue
        cells = line.split("\t")
        if head is None and cells[0] == "scenario":
            head = cells
            continue
        row = dict(zip(head or ["scenario", "ratio"], cells))
        rows[row["scenario"]] = row
    return rows, comments


def fnum(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def cmd_summary(a):
    wanted = a.scenarios.split()
    raw = []
    if os.path.exists(a.raw):
        for line in open(a.raw):
            if line.strip():
                raw.append(dict(zip(FIELDS, line.rstrip("\n").split("\t"))))
    base, base_comments = read_baseline(a.baseline)
    results = []
    for sc in wanted:
        ref_label, unit, target, strict, target_text = SCENARIOS[sc]
        mine = [r for r in raw if r["scenario"] == sc]
        errors = [r["detail"] for r in mine if r["role"] == "error"]
        noref = [r["detail"] for r in mine if r["role"] == "noref"]
        figs = {r["round"]: r for r in mine if r["role"] == "figure" and fnum(r["value"]) is not None}
        refs = {r["round"]: r for r in mine if r["role"] == "reference" and fnum(r["value"]) is not None}
        rounds = sorted(set(figs) & set(refs), key=int)
        ratios = [float(figs[k]["value"]) / float(refs[k]["value"]) for k in rounds if float(refs[k]["value"]) > 0]
        med = lambda xs: statistics.median(xs) if xs else None
        fig = med([float(r["value"]) for r in figs.values()])
        ref = med([float(r["value"]) for r in refs.values()])
        ratio = med(ratios)
        p99 = med([float(r["p99_ms"]) for r in figs.values() if fnum(r["p99_ms"]) is not None])
        rss = [int(r["rss_kb"]) for r in figs.values() if r["rss_kb"].isdigit()]
        b = fnum(base.get(sc, {}).get("ratio"))
        change = (ratio / b - 1.0) if ratio is not None and b else None
        slid = change is not None and ratio < b * (1.0 - a.slide)
        if errors:
            status = "ERROR"
        elif ratio is None:
            status = "NO-REFERENCE" if noref or fig is not None else "NO-RESULT"
        else:
            status = "PASS" if (ratio > target if strict else ratio >= target) else "BELOW"
            if slid:
                status += " SLID"
        results.append({
            "scenario": sc, "figure": fig, "unit": unit, "reference": ref_label, "ref_figure": ref,
            "ratio": ratio, "ratios": ratios, "p99": p99, "rss_mib": max(rss) / 1024.0 if rss else None,
            "baseline": b, "change": change, "target": target_text, "status": status,
            "errors": errors, "noref": sorted(set(noref)), "measured": fig is not None and not errors,
            "ref_range": [float(r["value"]) for r in refs.values()]})

    def f0(x):
        return "-" if x is None else "{:,.0f}".format(x)

    def ratio_text(r):
        if r["ratio"] is None:
            return "-"
        t = "%.3f" % r["ratio"]
        if r["scenario"] == "audited-read":
            t += " (cost %.0f%%)" % ((1.0 - r["ratio"]) * 100)
        return t

    head = ["scenario", "figure", "reference", "ratio", "ratio per round", "p99 ms", "peak RSS MiB",
            "baseline", "change", "target", "status"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in results:
        print("| " + " | ".join([
            r["scenario"], "%s %s" % (f0(r["figure"]), r["unit"]), "%s %s" % (r["reference"], f0(r["ref_figure"])),
            ratio_text(r), ", ".join("%.3f" % x for x in r["ratios"]) or "-",
            "-" if r["p99"] is None else "%.2f" % r["p99"], "-" if r["rss_mib"] is None else "%.0f" % r["rss_mib"],
            "-" if r["baseline"] is None else "%.3f" % r["baseline"],
            "-" if r["change"] is None else "%+.1f%%" % (r["change"] * 100), r["target"], r["status"]]) + " |")
    for r in results:
        for e in r["errors"]:
            print("ERROR %s: %s" % (r["scenario"], e))
        for n in r["noref"]:
            print("note: %s: no reference (%s): figure only, no ratio" % (r["scenario"], n))
        span = r["ref_range"]
        if len(span) > 1 and min(span) > 0 and max(span) / min(span) > 1.5:
            print("note: %s: its reference ranged %s to %s across the rounds (another load on the box?): the ratio is noisy"
                  % (r["scenario"], f0(min(span)), f0(max(span))))
    if base_comments:
        print("baseline: %s (%s)" % (a.baseline, base_comments[0].lstrip("# ")))
    else:
        print("baseline: none at %s (no change or SLID can be judged)" % a.baseline)
    with open(a.out, "w") as out:
        out.write("\t".join(["scenario", "figure", "unit", "reference", "reference_figure", "ratio",
                             "ratio_per_round", "p99_ms", "peak_rss_mib", "baseline_ratio", "change_pct", "target",
                             "status"]) + "\n")
        for r in results:
            out.write("\t".join([
                r["scenario"], f0(r["figure"]).replace(",", ""), r["unit"], r["reference"],
                f0(r["ref_figure"]).replace(",", ""), "-" if r["ratio"] is None else "%.4f" % r["ratio"],
                ",".join("%.4f" % x for x in r["ratios"]), "-" if r["p99"] is None else "%.3f" % r["p99"],
                "-" if r["rss_mib"] is None else "%.0f" % r["rss_mib"],
                "-" if r["baseline"] is None else "%.4f" % r["baseline"],
                "-" if r["change"] is None else "%.1f" % (r["change"] * 100), r["target"], r["status"]]) + "\n")
    bad = [r["scenario"] for r in results if r["status"] in ("ERROR", "NO-RESULT") or r["status"].endswith("SLID")]
    rc = 1 if bad else 0
    if a.record:
        rc = record(a, results, base)
    sys.exit(rc)


def record(a, results, base):
    failed = [r["scenario"] for r in results if r["errors"] or r["status"] == "NO-RESULT"]
    if failed:
        print("--record: not written: %s failed in this run (a ratio from a failed run is not a figure)"
              % ", ".join(failed))
        return 1
    measured = {r["scenario"]: r for r in results if r["ratio"] is not None}
    carried = [sc for sc in SCENARIOS if sc not in measured and sc in base]
    missing = [sc for sc in SCENARIOS if sc not in measured and sc not in base]
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    comment = "# bench/check baseline of %s, recorded %s (%s)" % (a.commit, when, a.settings)
    if a.note:
        comment += "; " + a.note
    if carried:
        comment += "; %s carried over from the previous baseline" % ", ".join(carried)
    if missing:
        comment += "; no ratio for %s" % ", ".join(missing)
    cols = ["scenario", "ratio", "figure", "unit", "reference", "reference_figure"]
    tmp = a.record + ".part"
    with open(tmp, "w") as out:
        out.write(comment + "\n")
        out.write("\t".join(cols) + "\n")
        for sc in SCENARIOS:
            if sc in measured:
                r = measured[sc]
                out.write("\t".join([sc, "%.4f" % r["ratio"], "%.0f" % r["figure"], r["unit"], r["reference"],
                                     "%.0f" % r["ref_figure"]]) + "\n")
            elif sc in base:
                out.write("\t".join(base[sc].get(c, "-") for c in cols) + "\n")
    os.replace(tmp, a.record)
    print("--record: wrote %s (%s)" % (a.record, comment.lstrip("# ")))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("wrk")
    p.add_argument("file")
    p = sub.add_parser("nhs")
    p.add_argument("stem")
    p = sub.add_parser("template")
    p.add_argument("--in", dest="input", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--facility", required=True)
    p.add_argument("--family", required=True)
    p.add_argument("--nhs")
    p.add_argument("--local-prefix")
    p = sub.add_parser("rows")
    p.add_argument("--gen", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--count", type=int, required=True)
    p = sub.add_parser("summary")
    p.add_argument("--raw", required=True)
    p.add_argument("--scenarios", required=True)
    p.add_argument("--baseline")
    p.add_argument("--out", required=True)
    p.add_argument("--slide", type=float, default=0.20)
    p.add_argument("--record")
    p.add_argument("--commit", default="unknown")
    p.add_argument("--settings", default="")
    p.add_argument("--note", default="")
    a = ap.parse_args()
    {"wrk": cmd_wrk, "nhs": cmd_nhs, "template": cmd_template, "rows": cmd_rows, "summary": cmd_summary}[a.cmd](a)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Turns bench/results/results.json into results.md and PNG charts.

  report.py RESULTS.json OUTDIR

Charts (gnuplot, if installed): throughput.png (TCP Gbit/s per scenario),
udp.png (UDP packets/s), setup.png (setup latency median/p99 and rate by
concurrency).
"""
import json
import os
import shutil
import subprocess
import sys

res = json.load(open(sys.argv[1]))
out = sys.argv[2]
os.makedirs(out, exist_ok=True)
rows = res["results"]


def fmt(r):
    v, m = r["value"], r["metric"]
    if m == "bits_per_s":
        return "%.2f Gbit/s" % (v / 1e9)
    if m in ("rss",) or r["unit"] == "bytes":
        return "{:,} bytes".format(int(v))
    if m == "packets_per_s":
        return "{:,} packets/s".format(int(v))
    if m == "cpu_s_per_GB":
        return "%.2f CPU-s/GB" % v
    return "%s %s" % (v, r["unit"])


with open(os.path.join(out, "results.md"), "w") as f:
    f.write("Machine: %s; %s; %d runs of %d s (medians).\n\n" % (
        res["machine"], res["date"], res["runs"], res["seconds_per_run"]))
    f.write("| scenario | metric | value |\n| --- | --- | --- |\n")
    for r in rows:
        f.write("| %s | %s | %s |\n" % (r["scenario"], r["metric"], fmt(r)))

if shutil.which("gnuplot") is None:
    print("gnuplot not installed: no charts")
    sys.exit(0)


def bars(name, title, ylabel, items, log=False):
    if not items:
        return
    dat = os.path.join(out, name + ".dat")
    with open(dat, "w") as f:
        for label, v in items:
            f.write('"%s" %f\n' % (label.replace('"', "'"), v))
    script = """
set terminal pngcairo size 900,480 font ',10'
set output '%s'
set title '%s'
set ylabel '%s'
set style fill solid 0.8
set boxwidth 0.6
%s
set xtics rotate by -25 scale 0
set grid ytics
unset key
plot '%s' using 0:2:xtic(1) with boxes lc rgb '#3465a4', '' using 0:2:(sprintf('%%.3g', $2)) with labels offset 0,0.7
""" % (os.path.join(out, name + ".png"), title, ylabel,
       "set logscale y" if log else "set yrange [0:*]", dat)
    subprocess.run(["gnuplot"], input=script.encode(), check=False)
    os.remove(dat)


def pick(metric, contains=""):
    return [(r["scenario"], r["value"]) for r in rows
            if r["metric"] == metric and contains in r["scenario"]]


bars("throughput", "TCP throughput, one stream (same run)", "Gbit/s",
     [(s, v / 1e9) for s, v in pick("bits_per_s")])
bars("udp", "UDP, 64-byte payloads (same run)", "packets/s", pick("packets_per_s"))
bars("cpu", "Busy CPU of the VM per GB moved (TCP, log scale)", "CPU seconds / GB",
     pick("cpu_s_per_GB"), log=True)
bars("setup", "Association setup latency p99 by concurrency", "ms",
     [(s.replace("setup ", ""), v) for s, v in pick("latency_p99", "setup")])
print("charts written to %s" % out)

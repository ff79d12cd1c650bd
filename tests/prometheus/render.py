#!/usr/bin/env python3
"""Draws what the dashboard would show from the data the real Prometheus answered (artifacts/prometheus/series.json,
written by real_prometheus.py): one small plot per dashboard panel, plus the alerts' states, into a PNG. There is no
Grafana here; this is the same queries' answers, plotted. Needs python3-matplotlib.

    python3 tests/prometheus/render.py [series.json] [out.png]
"""
import json
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def legend(fmt, metric):
    text = fmt
    for k, v in metric.items():
        text = text.replace("{{" + k + "}}", v)
    text = re.sub(r"\{\{\w+\}\}", "", text)
    # Long store paths of the test's temp dir say nothing in a picture.
    return text.replace("(host-local:", "(host-local").split("/tmp/")[0].strip() or metric.get("__name__", "")


def main():
    source = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "artifacts", "prometheus", "series.json")
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(REPO, "artifacts", "prometheus", "dashboard.png")
    data = json.load(open(source))
    start = data["start"]
    panels = data["panels"] + [{"title": "Alerts (ALERTS series: 1 pending, 2 firing)", "legend": "{{alertname}} {{network}}", "unit": "", "result": [
        dict(s, values=[[t, "1" if s["metric"]["alertstate"] == "pending" else "2"] for t, _ in s["values"]]) for s in data["alerts"]]}]
    # Panels with several targets (recovery) are drawn in one axis each, as the dashboard does.
    by_title = {}
    for p in panels:
        by_title.setdefault(p["title"], []).append(p)
    titles = list(by_title)
    cols = 3
    rows = (len(titles) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(12, 2.3 * rows), dpi=72)
    for ax, title in zip(axes.flat, titles):
        for p in by_title[title]:
            for s in p["result"]:
                xs = [float(t) - start for t, _ in s["values"]]
                ys = [float(v) for _, v in s["values"]]
                ax.step(xs, ys, where="post", linewidth=1.2, label=legend(p["legend"], s["metric"])[:40])
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=6)
        if title.startswith("Free addresses"):
            ax.set_yscale("symlog", linthresh=10)
        if by_title[title][0]["unit"] == "percentunit":
            ax.set_ylim(0, 1.05)
            ax.axhline(0.9, color="orange", linewidth=0.8, linestyle="--")
        ax.legend(fontsize=5, loc="upper left")
        ax.set_xlabel("s", fontsize=6)
    for ax in list(axes.flat)[len(titles):]:
        ax.axis("off")
    fig.suptitle("berth: what the dashboard shows (a real Prometheus, a real berth-agent, ranges filled by berth and host-local)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=72)
    print(f"render: {out} ({os.path.getsize(out) // 1024} KiB)")


if __name__ == "__main__":
    main()

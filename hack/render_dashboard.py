#!/usr/bin/env python3
"""Draw the Grafana dashboard's panels (charts/hybridplace/dashboards/hybridplace.json) from a
Prometheus, without Grafana: every target of every panel through Prometheus' query_range API,
one matplotlib plot per panel. The README's picture of the dashboard comes from it:

    make demo                                   # a cluster, the operator (scraped), a placed model
    python hack/render_dashboard.py --out docs/dashboard.png

--prometheus defaults to the local cluster's (HP_CLUSTER, default hybridplace). Exit 2 when a
panel's expression returns nothing (the picture would hide a broken query).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import sys
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DASHBOARD = REPO / "charts" / "hybridplace" / "dashboards" / "hybridplace.json"


def local_prometheus() -> str:
    cache = Path(os.environ.get("HP_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                 / "hybridplace")
    state = cache / "clusters" / os.environ.get("HP_CLUSTER", "hybridplace") / "state.json"
    try:
        url = json.loads(state.read_text()).get("prometheus_url")
    except (OSError, ValueError):
        url = None
    if not url:
        sys.exit(f"no local cluster Prometheus in {state}: start one (make cluster-up) or pass --prometheus")
    return url


def query_range(prometheus: str, expr: str, start: float, end: float, step: float) -> list[dict]:
    query = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{prometheus}/api/v1/query_range?{query}", timeout=30) as response:
        body = json.loads(response.read())
    if body.get("status") != "success":
        raise SystemExit(f"{expr}: {body.get('error')}")
    return body["data"]["result"]


def legend(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template) or str(labels)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prometheus", default=None, help="Prometheus URL (default: the local cluster's)")
    parser.add_argument("--minutes", type=float, default=15, help="time range drawn, minutes back from now")
    parser.add_argument("--step", type=float, default=15, help="seconds between points")
    parser.add_argument("--out", type=Path, default=Path("dashboard.png"))
    args = parser.parse_args()
    prometheus = args.prometheus or local_prometheus()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    board = json.loads(DASHBOARD.read_text())
    panels = board["panels"]
    end = time.time()
    start = end - 60 * args.minutes
    rows = math.ceil(len(panels) / 2)
    fig, axes = plt.subplots(rows, 2, figsize=(14, 3.2 * rows), dpi=72, squeeze=False)
    empty = []
    for ax, panel in zip(axes.flat, panels, strict=False):
        drawn = 0
        for target in panel["targets"]:
            for series in query_range(prometheus, target["expr"], start, end, args.step):
                points = [(float(t), float(v)) for t, v in series["values"] if math.isfinite(float(v))]
                if not points:
                    continue
                ax.plot([datetime.fromtimestamp(t, UTC) for t, _ in points], [v for _, v in points],
                        label=legend(target.get("legendFormat", ""), series["metric"])[:60], linewidth=1.2)
                drawn += 1
        if not drawn:
            empty.append(panel["title"])
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        ax.set_title(f"{panel['title']}" + (f" ({unit})" if unit and unit != "short" else ""), fontsize=10)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M" if args.minutes > 10 else "%H:%M:%S"))
        ax.tick_params(labelsize=8)
        ax.grid(True, linewidth=0.3)
        if drawn:
            ax.legend(fontsize=7, loc="upper left")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"hybridplace dashboard, drawn from Prometheus by hack/render_dashboard.py "
                 f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores)",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB): {len(panels)} panels")
    if empty:
        print(f"panels with no data: {', '.join(empty)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

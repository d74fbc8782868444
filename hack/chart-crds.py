#!/usr/bin/env python3
"""Copy crds/ into the Helm chart as templates (charts/hybridplace/templates/crds/).

crds/ is the single source of truth. In the chart each CRD sits under a switch
(`crds.install`) with `helm.sh/resource-policy: keep`: Helm never upgrades what is in a chart's
crds/ folder, but it does upgrade templates, and keep stops an uninstall from deleting every
custom object. `--check` fails (exit 1) when the chart's copies differ from a fresh copy.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "crds"
TARGET = REPO / "charts" / "hybridplace" / "templates" / "crds"
HEADER = "# Generated from crds/{name} by `make chart-crds`; edit crds/, not this file.\n"


def render(path: Path) -> str:
    text = path.read_text()
    if "{{" in text:
        raise SystemExit(f"{path}: contains '{{{{', which Helm would read as a template")
    marker = "  labels:\n"
    if marker not in text:
        raise SystemExit(f"{path}: expected metadata.labels to add the keep annotation beside")
    text = text.replace(marker, "  annotations:\n    helm.sh/resource-policy: keep\n" + marker, 1)
    return HEADER.format(name=path.name) + "{{- if .Values.crds.install }}\n" + text + "{{- end }}\n"


def main() -> int:
    check = "--check" in sys.argv[1:]
    wanted = {p.name: render(p) for p in sorted(SOURCE.glob("*.yaml"))}
    TARGET.mkdir(parents=True, exist_ok=True)
    present = {p.name: p.read_text() for p in TARGET.glob("*.yaml")}
    if check:
        stale = sorted(n for n in wanted.keys() | present.keys() if wanted.get(n) != present.get(n))
        if stale:
            print(f"the chart's CRDs differ from crds/: {', '.join(stale)}; run `make chart-crds`")
            return 1
        print("the chart's CRDs match crds/")
        return 0
    for name in present.keys() - wanted.keys():
        (TARGET / name).unlink()
    for name, text in wanted.items():
        (TARGET / name).write_text(text)
    print(f"wrote {len(wanted)} CRDs to {TARGET.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

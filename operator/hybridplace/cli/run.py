"""`hybridplace run`: the operator, against the current kubeconfig (or in-cluster config)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os

from ..config import Settings
from .errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "run", help="run the operator",
        description="Run the operator: watch InferenceDeployments, benchmark, place and keep the "
        "serving Deployments. Every flag also reads an environment variable (shown in brackets).",
    )
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: in-cluster, then $KUBECONFIG)")
    parser.add_argument("--verbose", action="store_true", help="log at debug level")
    for field in dataclasses.fields(Settings):
        flag = "--" + field.name.replace("_", "-")
        kind = str(field.type)
        convert = int if kind == "int" else float if kind == "float" else str
        parser.add_argument(flag, dest=field.name, type=convert, default=None,
                            help=f"{field.metadata['help']} [{field.metadata['env']}] "
                            f"(default: {field.default or 'none'})")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import kopf

    from ..controller import handlers

    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(Settings)}
    if isinstance(overrides.get("namespaces"), str):
        overrides["namespaces"] = tuple(n.strip() for n in overrides["namespaces"].split(",") if n.strip())
    try:
        settings = Settings.from_env(**overrides)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig  # kopf and our client read the same file
    handlers.OPERATOR.settings = settings
    handlers.OPERATOR.kubeconfig = args.kubeconfig
    try:
        handlers.start_metrics(settings)
    except OSError as err:
        raise UsageError(str(err)) from None
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.PLAIN)
    logging.getLogger("hybridplace").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    # kopf logs every handled watch event at INFO; with thousands of objects that is noise.
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    kopf.run(
        standalone=True,
        clusterwide=not settings.namespaces,
        namespaces=list(settings.namespaces),
        liveness_endpoint=settings.liveness or None,
    )
    return 0

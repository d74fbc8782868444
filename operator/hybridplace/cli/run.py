"""`hybridplace run`: the operator, against the current kubeconfig (or in-cluster config)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os

from ..config import Settings, convert_setting
from .errors import UsageError, kubeconfig_errors


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "run", help="run the operator",
        description="Run the operator: watch InferenceDeployments, benchmark, place and keep the "
        "serving Deployments. Every flag also reads an environment variable (shown in brackets).",
    )
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: in-cluster, then $KUBECONFIG)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    for field in dataclasses.fields(Settings):
        flag = "--" + field.name.replace("_", "-")
        # Text here, converted in run() as the environment variable is: one message naming both.
        parser.add_argument(flag, dest=field.name, default=None,
                            help=f"{field.metadata['help']} [{field.metadata['env']}] "
                            f"(default: {field.default or 'none'})")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import kopf

    from ..controller import handlers

    try:
        overrides = {f.name: convert_setting(f.name, getattr(args, f.name)) for f in dataclasses.fields(Settings)
                     if getattr(args, f.name) is not None}
        settings = Settings.from_env(**overrides)
    except ValueError as err:
        raise UsageError(str(err)) from None
    _check_credentials(args.kubeconfig)
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


def _check_credentials(kubeconfig: str | None) -> None:
    """Stop at once, in one line, when there is no usable kubeconfig and no in-cluster service
    account: kopf would otherwise retry its login every minute, with a traceback each time."""
    from ..controller.kube import load_client

    try:
        load_client(kubeconfig).close()
    except kubeconfig_errors() as err:
        where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise UsageError(f"no in-cluster service account, and the kubeconfig {where} cannot be used: "
                         f"{' '.join(str(err).split())[:300]}") from None

"""Errors the CLI reports as one line with exit code 2 (bad input), never as a traceback."""


class UsageError(Exception):
    """Bad input from the user: a file, an object, a flag. The message names it."""


def kubeconfig_errors() -> tuple[type[BaseException], ...]:
    """What loading a kubeconfig raises when the file is missing, not YAML or not a kubeconfig."""
    import kubernetes
    import yaml

    return (kubernetes.config.ConfigException, OSError, TypeError, ValueError, yaml.YAMLError)


def unreachable(err: BaseException) -> bool:
    """Whether `err` is the kubernetes client failing to reach the API server: urllib3's
    connection errors (refused, timed out, TLS) have no common public base."""
    return type(err).__module__.split(".")[0] in ("urllib3", "ssl", "socket")

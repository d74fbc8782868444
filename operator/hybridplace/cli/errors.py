"""Errors the CLI reports as one line with exit code 2 (bad input), never as a traceback."""


class UsageError(Exception):
    """Bad input from the user: a file, an object, a flag. The message names it."""

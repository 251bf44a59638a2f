"""The one exception type that reaches a user as a one-line message."""


class SimCLRError(Exception):
    """A problem the user can fix: bad path, bad value, unreadable file.

    The CLI prints ``error: <message>`` and exits with status 2 instead of a traceback,
    so the message must name the problem (the option, the file) on one line.
    """

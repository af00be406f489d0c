"""The one exception type the CLI turns into a one-line message and exit code 2.

Raised for problems the user can fix (missing file, malformed CSV, unknown model, unreachable
server). Anything else is a bug and keeps its traceback.
"""


class SluiceError(Exception):
    """A usage or input problem, worded so that one line tells the user what to fix."""

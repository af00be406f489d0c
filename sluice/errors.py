"""The exceptions the CLI turns into one line on stderr and an exit code.

`SluiceError` is a problem the user can fix (missing file, malformed CSV, unknown model,
unreachable server): exit 2. `Refused` is a verdict: a gate, a signature check or a policy said
no, and the reason is the message: exit 1. Anything else is a bug and keeps its traceback.
"""


class SluiceError(Exception):
    """A usage, input or reachability problem, worded so that one line tells the user what to fix."""


class Refused(Exception):
    """A refusal on the evidence (gate failed, evidence tampered, image unsigned): exit code 1.

    Not a SluiceError on purpose: code that wraps input errors with context must not turn a
    verdict into a usage error, so the two are caught separately.
    """

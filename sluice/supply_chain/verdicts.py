"""What a verification can conclude, as exceptions: the image is refused, or one layer does not count.

A refusal is a verdict (exit 1, `sluice.errors.Refused`); bad input, an unusable trusted root or an
unreachable registry stay `SluiceError` (exit 2). A layer that does not count is collected with its
reason and only becomes a refusal when no layer is left that does.
"""

from __future__ import annotations

from sluice.errors import Refused


class VerificationError(Refused):
    """The image is not acceptable: unsigned, signed by someone else, tampered with, failing evidence,
    or its attachments break a bound."""


class LayerRejected(Exception):
    """One attachment layer does not count; the message says why (collected into the verdict)."""


class EvidenceFailed(Exception):
    """A genuine attestation of the Sluice predicate says the gate did not pass."""

"""The one error of the artifact store: a URI that names no artifact, or an artifact that cannot be
read, written or verified. Raised by every module of modelops.artifacts; callers catch only this."""

from __future__ import annotations


class ArtifactError(Exception):
    """An artifact cannot be reached, read, written or trusted; the message names the URI and why.

    ``missing``: the URI names nothing (no such file, key or page), so an optional sibling can be
    skipped. ``final``: trying again cannot help (too large, too slow overall, a refused redirect).
    """

    def __init__(self, message: str, *, missing: bool = False, final: bool = False) -> None:
        super().__init__(message)
        self.missing = missing
        self.final = final

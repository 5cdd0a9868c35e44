"""The error a malformed trace.dat raises: where in the file, and what was expected."""

from __future__ import annotations

from tracetool.errors import InputError

ADVICE = (
    "the file may be truncated or damaged; check `trace-cmd dump -i FILE`, or read it "
    "with `--via trace-cmd`"
)


class TraceDatError(InputError):
    """A trace.dat that cannot be read: ``FILE: byte OFFSET: what was expected``."""

    def __init__(self, file: str, offset: int, expected: str, advice: str = ADVICE) -> None:
        super().__init__(f"{file}: byte {offset}: {expected}; {advice}")
        self.file = file
        self.offset = offset
        self.expected = expected

"""Exceptions of the BraTS conversion, export and phantom code (the CLI turns them into one-line errors)."""
from pathlib import Path
from typing import List, Optional


class BratsConversionError(Exception):
    """Base class: anything wrong with a BraTS source folder, a dataset folder or the arguments given."""


class LayoutError(BratsConversionError):
    """The source folder is not a BraTS release this package recognises (or holds something unexpected)."""


class BadCaseError(BratsConversionError):
    """One case is unusable: names the case, the offending file and the reason."""

    def __init__(self, case_id: str, path: Optional[Path], reason: str):
        self.case_id, self.path, self.reason = case_id, path, reason
        where = f" ({path})" if path is not None else ""
        super().__init__(f"case {case_id}{where}: {reason}")


class BadCasesError(BratsConversionError):
    """Validation found one or more bad cases; ``errors`` lists each of them."""

    def __init__(self, errors: List[BadCaseError]):
        self.errors = errors
        lines = "\n  ".join(str(e) for e in errors)
        super().__init__(f"{len(errors)} bad case(s), nothing was written (use --skip-bad to convert the "
                         f"others):\n  {lines}")


class AmbiguousTaskError(BratsConversionError):
    """The names and labels of a release fit more than one BraTS task: the message names the ``--task`` options."""

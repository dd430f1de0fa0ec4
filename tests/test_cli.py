"""The command line as a whole: one flag rule for every command, errors imported from one module."""
import argparse

from nnunet_msfen.cli import NNUNET_SPELLINGS, SUBCOMMANDS, build_parser


def _option_strings(parser: argparse.ArgumentParser) -> dict:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: {s for action in p._actions for s in action.option_strings} for name, p in sub.choices.items()}


def test_flags_that_mirror_nnunet_accept_both_spellings():
    options = _option_strings(build_parser())
    assert set(options) == set(SUBCOMMANDS)
    missing = [(command, ours, theirs) for command, flags in options.items()
               for ours, theirs in NNUNET_SPELLINGS.items() if (ours in flags) != (theirs in flags)]
    assert not missing, missing


def test_our_own_long_flags_use_dashes():
    nnunet_style = set(NNUNET_SPELLINGS.values())
    bad = [(command, f) for command, flags in _option_strings(build_parser()).items() for f in flags
           if f.startswith("--") and "_" in f and f not in nnunet_style]
    assert not bad, bad


def test_every_command_module_raises_the_one_command_error():
    import nnunet_msfen.cli as cli
    import nnunet_msfen.errors as errors

    assert cli.CommandError is errors.CommandError

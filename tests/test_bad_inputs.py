"""Every command, fed bad paths: a missing input, an existing output, an output where a file blocks the way. Each
must exit non-zero with one line naming the path, no traceback, and leave what was there untouched."""
import pytest

from brats_fixtures import SHAPE, write_nifti
from nnunet_msfen.cli import main

import numpy as np


@pytest.fixture
def place(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("keep me")
    (tmp_path / "existing.json").write_text("{}")
    for folder in ("pred", "ref"):
        write_nifti(tmp_path / folder / "c.nii.gz", np.zeros(SHAPE, np.uint8))
    return tmp_path


# command -> (argv with {missing} input, argv writing into {out}); {out} is replaced by an existing output, then by a
# path under a file
COMMANDS = {
    "evaluate": (["evaluate", "{missing}", "{p}/ref", "-o", "{p}/o.json"], ["evaluate", "{p}/pred", "{p}/ref", "-o", "{out}"]),
    "compare": (["compare", "--pred-a", "{missing}", "--pred-b", "{p}/pred", "--ref", "{p}/ref", "-o", "{p}/o"],
                ["compare", "--pred-a", "{p}/pred", "--pred-b", "{p}/pred", "--ref", "{p}/ref", "-o", "{out_dir}"]),
    "postprocess": (["postprocess", "{missing}", "-o", "{p}/o", "--threshold", "1"],
                    ["postprocess", "{p}/pred", "-o", "{out_dir}", "--threshold", "1"]),
    "phantom": (None, ["phantom", "{out_dir}", "-n", "1", "--shape", "16", "16", "16", "--anatomy", "procedural"]),
    "pool-accuracy": (["pool-accuracy", "{missing}", "-o", "{p}/o"], ["pool-accuracy", "{missing}", "-o", "{out_dir}"]),
    "benchmark": (None, ["benchmark", "--config", "2d", "--stages", "2", "--patch", "8", "8", "--networks", "msfen",
                         "-o", "{out}"]),
    "export-brats": (["export-brats", "{missing}", "{p}/o", "--convention", "legacy", "--mapping", "{p}/m.json"],
                     None),
    "convert-brats": (["convert-brats", "{missing}", "-d", "950"], None),
    "predict": (["predict", "-i", "{missing}", "-o", "{p}/o", "-d", "1", "-c", "2d", "-tr", "T"],
                ["predict", "-i", "{p}/pred", "-o", "{out_dir}", "-d", "1", "-c", "2d", "-tr", "T"]),
    "benchmark-accuracy": (["benchmark-accuracy", "--train", "{missing}", "--test", "{p}/ref", "--workdir", "{p}/w"],
                           None),
}


def _argv(template, place, **values):
    values = {"p": str(place), "missing": str(place / "missing_folder"), **values}
    return [part.format(**values) for part in template]


def _fails_naming(argv, capsys, needle) -> str:
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.err.startswith("nnunet-msfen ")
    assert needle in captured.err, captured.err
    return captured.err


@pytest.mark.parametrize("command", [c for c, (missing, _) in COMMANDS.items() if missing])
def test_a_missing_input_is_named(command, place, capsys):
    _fails_naming(_argv(COMMANDS[command][0], place), capsys, "missing_folder")


@pytest.mark.parametrize("command", [c for c, (_, writes) in COMMANDS.items() if writes])
def test_an_existing_output_is_refused_without_overwrite(command, place, capsys):
    argv = _argv(COMMANDS[command][1], place, out=str(place / "existing.json"), out_dir=str(place / "full"))
    if command == "pool-accuracy":  # its inputs are checked after the output; the output check comes first
        argv = _argv(COMMANDS[command][1], place, out_dir=str(place / "full"))
    _fails_naming(argv, capsys, "--overwrite")
    assert (place / "full" / "keep.txt").read_text() == "keep me" and (place / "existing.json").read_text() == "{}"


@pytest.mark.parametrize("command", [c for c, (_, writes) in COMMANDS.items() if writes])
def test_an_output_blocked_by_a_file_is_named(command, place, capsys):
    blocked = place / "a_file" / "sub" / "out.json"
    argv = _argv(COMMANDS[command][1], place, out=str(blocked), out_dir=str(blocked.parent))
    err = _fails_naming(argv, capsys, str(place / "a_file"))
    assert (place / "a_file").read_text() == "not a folder"
    assert len(err.strip().splitlines()) == 1


def test_os_errors_reach_the_user_as_one_line(place, capsys, monkeypatch):
    import nnunet_msfen.evaluation.evaluate as evaluate

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(place / "o.json"))

    monkeypatch.setattr(evaluate, "save_results", refuse)
    err = _fails_naming(["evaluate", str(place / "pred"), str(place / "ref"), "-o", str(place / "o.json")], capsys,
                        "Permission denied")
    assert str(place / "o.json") in err


@pytest.mark.parametrize("argv", [["demo", "--workdir", "{blocked}"],
                                  ["benchmark-accuracy", "--train", "{p}/pred", "--test", "{p}/ref", "--workdir",
                                   "{blocked}"]])
def test_a_working_folder_blocked_by_a_file_is_named(argv, place, capsys):
    _fails_naming(_argv(argv, place, blocked=str(place / "a_file" / "w")), capsys, str(place / "a_file"))


@pytest.mark.parametrize("argv", [["demo", "--workdir", "{p}/full"],
                                  ["benchmark-accuracy", "--train", "{p}/pred", "--test", "{p}/ref", "--workdir",
                                   "{p}/full"]])
def test_a_working_folder_that_is_not_ours_is_refused(argv, place, capsys):
    _fails_naming(_argv(argv, place), capsys, "not empty")
    assert (place / "full" / "keep.txt").read_text() == "keep me"

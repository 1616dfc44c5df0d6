"""`parley` run in this process for the command-line tests: its exit code and what it wrote, and the one line
every failure must be."""

from __future__ import annotations

from engine import cli


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    """main(argv) in this process: (exit code, stdout, stderr)."""
    try:
        code = cli.main(argv)
    except SystemExit as e:  # argparse
        code = e.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *names: str) -> str:
    """A failure's exit code and one `parley: error:` line naming each of ``names``, no traceback; the line."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code not in (0, None), err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("parley: error: "), err
    for name in names:
        assert name in lines[0], (name, err)
    return lines[0]

"""Behaviour unchanged by the redesign (issue 14): the same transcriptions with the engine of a commit from
before it and with HEAD's, each in a git worktree of its own, in one run.

    .venv/bin/python bench/before_after.py --part texts   # deterministic: any time, even beside other work
    .venv/bin/python bench/before_after.py --part timed   # with nothing else running (2 vCPUs share one core)

Configs (whisper-base int8, 2 threads, English):
  file-en        bench/clips.py's espeak-ng English (30 sentences, 1 s pauses, 2.3 min), transcribed as a file
                 (before: model.transcribe, as both front-ends called it; HEAD: plan_file_job/run_file_job)
  file-human     the recorded two_cities clip (44.1 kHz: resampled), as a file
  live-en        the espeak English through a live session fast-forwarded (no clock: deterministic), 1 s blocks;
                 each version's own LiveOptions defaults (before: a LiveSession; HEAD: start_live_job)
  live-en-old    the same with HEAD's later live settings (issue 11: hold_commits_s, first_draft_s, final_beam_size) set as the
                 behaviour before them, so what differs is the code's, not a default's

``--part texts`` runs each config once per version and says whether the texts are identical, with each WER.
``--part timed`` runs file-en and live-en ``--reps`` times per version, alternating which goes first, and
reports the median wall and CPU time of the transcription itself (the model's load apart). Both parts
write into ``--out`` (docs/results/before_after.json and .md beside it), keeping the other part's figures.

The before commit defaults to dd0cb0d, the last commit before the engine/ split (a473f76, engine/packs/, is
the first of issue 14's moves). Worktrees are made in <cache>/bench/before_after/ (``git worktree add
--detach``) and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import clips, record  # noqa: E402

BEFORE = "dd0cb0d"
OLD_LIVE_SETTINGS = {"hold_commits_s": "0.0", "first_draft_s": "null", "final_beam_size": "null"}


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True).stdout.strip()


def worktree(commit: str, folder: Path) -> Path:
    """A detached worktree of ``commit`` (made once, reused while it is at that commit)."""
    sha = git("rev-parse", "--verify", f"{commit}^{{commit}}")
    path = folder / sha[:12]
    if not (path / "engine").is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        git("worktree", "prune")  # a worktree whose folder was deleted stays registered and blocks `add`
        git("worktree", "add", "--detach", str(path), sha)
    return path


def configs(cache: Path) -> dict[str, dict]:
    long = clips.long_english(cache)
    human = {p.stem: p for p in clips.human_clips(cache)}
    return {
        "file-en": {"kind": "file", "audio": long.path, "reference": long.text, "options": {}},
        "file-human": {"kind": "file", "audio": human["two_cities"],
                       "reference": clips.HUMAN_TRANSCRIPTS["two_cities"], "options": {}},
        "live-en": {"kind": "live", "audio": long.path, "reference": long.text, "options": {}},
        "live-en-old": {"kind": "live", "audio": long.path, "reference": long.text, "options": OLD_LIVE_SETTINGS},
    }


def run_one(root: Path, config: dict, pack: Path, threads: int) -> dict:
    cmd = [sys.executable, str(ROOT / "bench" / "_before_after_run.py"), "--root", str(root), "--kind",
           config["kind"], "--pack", str(pack), "--audio", str(config["audio"]), "--threads", str(threads)]
    for k, v in config["options"].items():
        cmd += ["--option", f"{k}={v}"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=root)
    if done.returncode != 0:
        raise SystemExit(f"{root.name} {config['kind']}: exit {done.returncode}\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if not Path(out["engine"]).resolve().is_relative_to(root.resolve()):
        raise SystemExit(f"{root}: the run imported {out['engine']}, not that worktree's engine")
    out["wer"] = clips.wer(config["reference"], out["text"])
    return out


def part_texts(trees: dict[str, Path], cfgs: dict, pack: Path, threads: int) -> dict:
    rows = {}
    for name, cfg in cfgs.items():
        runs = {side: run_one(root, cfg, pack, threads) for side, root in trees.items()}
        rows[name] = {"identical": runs["before"]["text"] == runs["after"]["text"],
                      **{f"wer_{side}": round(r["wer"], 4) for side, r in runs.items()},
                      **{f"words_{side}": len(r["text"].split()) for side, r in runs.items()},
                      **{f"text_{side}": r["text"] for side, r in runs.items()},
                      "options": cfg["options"],
                      "options_not_in_before": runs["before"]["options_not_in_this_version"]}
        print(f"{name}: identical {rows[name]['identical']}, WER before {runs['before']['wer']:.4f} "
              f"after {runs['after']['wer']:.4f}", flush=True)
    return rows


def part_timed(trees: dict[str, Path], cfgs: dict, pack: Path, threads: int, reps: int) -> dict:
    rows = {}
    for name in [n for n in ("file-en", "live-en") if n in cfgs]:
        runs: dict[str, list[dict]] = {"before": [], "after": []}
        for rep in range(reps):
            order = ("before", "after") if rep % 2 == 0 else ("after", "before")
            for side in order:
                r = run_one(trees[side], cfgs[name], pack, threads)
                runs[side].append(r)
                print(f"{name} rep {rep + 1} {side}: wall {r['wall_s']:.1f} s, cpu {r['cpu_s']:.1f} s", flush=True)
        row = {"reps": reps, "identical": all(r["text"] == runs["before"][0]["text"] for r in runs["before"])
               and all(r["text"] == runs["before"][0]["text"] for r in runs["after"])}
        for side, rs in runs.items():
            row[f"wall_s_{side}"] = [round(r["wall_s"], 2) for r in rs]
            row[f"cpu_s_{side}"] = [round(r["cpu_s"], 2) for r in rs]
            row[f"median_wall_s_{side}"] = round(statistics.median(r["wall_s"] for r in rs), 2)
            row[f"median_cpu_s_{side}"] = round(statistics.median(r["cpu_s"] for r in rs), 2)
            row[f"wer_{side}"] = round(rs[0]["wer"], 4)
        row["wall_after_over_before"] = round(row["median_wall_s_after"] / row["median_wall_s_before"], 3)
        rows[name] = row
    return rows


def write(out: Path, report: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    lines = [f"# Before and after the redesign (issue 14)\n",
             f"Before: `{report['before']}` (the last commit before the engine/ split); after: `{report['after']}`. "
             f"whisper-base int8, {report['threads']} threads, CPU. Made by `bench/before_after.py`.\n"]
    texts = report.get("texts")
    if texts:
        lines += [f"## Texts (deterministic; after = `{texts['after']}`) — {record.describe(texts['header'])}\n",
                  f"`{texts['header']['command']}`\n",
                  "| config | texts identical | WER before | WER after | words before / after | options set |",
                  "|---|---|---|---|---|---|"]
        for name, r in texts["rows"].items():
            opts = ", ".join(f"{k}={v}" for k, v in r["options"].items()) or "each version's defaults"
            lines.append(f"| {name} | {'yes' if r['identical'] else 'no'} | {100 * r['wer_before']:.2f} % | "
                         f"{100 * r['wer_after']:.2f} % | {r['words_before']} / {r['words_after']} | {opts} |")
        lines.append("")
    timed = report.get("timed")
    if timed:
        lines += [f"## Time (alternating, {timed['reps']} runs each; after = `{timed['after']}`) — "
                  f"{record.describe(timed['header'])}\n",
                  f"`{timed['header']['command']}`\n",
                  "| config | wall before (median) | wall after (median) | after / before | CPU before | CPU after | "
                  "WER before | WER after | texts identical in every run |", "|---|---|---|---|---|---|---|---|---|"]
        for name, r in timed["rows"].items():
            lines.append(f"| {name} | {r['median_wall_s_before']:.1f} s {r['wall_s_before']} | "
                         f"{r['median_wall_s_after']:.1f} s {r['wall_s_after']} | {r['wall_after_over_before']:.3f} | "
                         f"{r['median_cpu_s_before']:.1f} s | {r['median_cpu_s_after']:.1f} s | "
                         f"{100 * r['wer_before']:.2f} % | {100 * r['wer_after']:.2f} % | "
                         f"{'yes' if r['identical'] else 'no'} |")
        lines.append("")
    out.with_suffix(".md").write_text("\n".join(lines))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("texts", "timed"), required=True)
    ap.add_argument("--before", default=BEFORE, help="the commit before the redesign (default %(default)s)")
    ap.add_argument("--after", default="HEAD", help="the commit after it (default: HEAD)")
    ap.add_argument("--configs", nargs="+", default=None,
                    help="these configs only (--part timed times file-en and live-en of them)")
    ap.add_argument("--reps", type=int, default=2, help="with --part timed: runs per version and config")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pack", type=Path, default=None, help="default: the installed whisper-base int8")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "before_after.json")
    args = ap.parse_args()
    from engine.packs.installed import resolve_pack

    pack = args.pack or resolve_pack("whisper-base", "int8")
    work = record.work_dir("before_after")
    trees = {"before": worktree(args.before, work), "after": worktree(args.after, work)}
    cfgs = configs(Path(os.environ.get("PARLEY_CLIPS", work / "clips")))
    if args.configs:
        cfgs = {k: v for k, v in cfgs.items() if k in args.configs}
    if args.part == "texts":
        part = {"header": None, "after": trees["after"].name, "rows": part_texts(trees, cfgs, pack, args.threads)}
    else:
        part = {"header": None, "after": trees["after"].name, "reps": args.reps,
                "rows": part_timed(trees, cfgs, pack, args.threads, args.reps)}
    part["header"] = record.header()
    report = json.loads(args.out.read_text()) if args.out.exists() else {}  # read now: the other part may have run
    report.update(before=trees["before"].name, after=trees["after"].name, pack=pack.name, threads=args.threads)
    report[args.part] = part
    write(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

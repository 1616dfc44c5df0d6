#!/usr/bin/env bash
# Re-runs every bench behind a table of the README or docs/, on a fresh clone after ./setup.sh --no-run, and
# writes their results to docs/results/ (JSON + markdown, each with the date, the machine, the versions and
# the exact command). Short forms by default (under an hour on a quiet 2-core CPU: every README table's
# bench in full, smaller runs of the docs-only ones into *_short files); --full for the long ones.
#
#   bench/reproduce.sh                     # everything, short forms
#   bench/reproduce.sh --full              # the 60-minute soak, every live setting, the large MT model, the
#                                          #   whole speech-translation table, the adaptation runs of docs/
#   bench/reproduce.sh --only file_speed bergamot_speed
#   bench/reproduce.sh --skip live_lag     # e.g. where no PulseAudio server can be started
#
# Steps: reference file_speed speech_translation mt_speed bergamot_parity bergamot_speed live_lag soak
# adaptation glossary. Each step's wall time goes to docs/results/reproduce.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
STEPS=(reference file_speed speech_translation mt_speed bergamot_parity bergamot_speed live_lag soak adaptation glossary)
full=0
only=()
skip=()
mode=""
for arg in "$@"; do
    case "$arg" in
        --full) full=1; mode="" ;;
        --only) mode=only ;;
        --skip) mode=skip ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "reproduce.sh: unknown option $arg" >&2; exit 2 ;;
        *)
            [[ " ${STEPS[*]} " == *" $arg "* ]] || { echo "reproduce.sh: no step '$arg' (steps: ${STEPS[*]})" >&2; exit 2; }
            case "$mode" in
                only) only+=("$arg") ;;
                skip) skip+=("$arg") ;;
                *) echo "reproduce.sh: '$arg' must follow --only or --skip" >&2; exit 2 ;;
            esac ;;
    esac
done
[ -x "$PY" ] || { echo "reproduce.sh: run ./setup.sh --no-run first (it builds .venv/ and the packs)" >&2; exit 1; }

wanted() {
    local step=$1
    if [ ${#only[@]} -gt 0 ] && [[ " ${only[*]} " != *" $step "* ]]; then return 1; fi
    [[ " ${skip[*]-} " != *" $step "* ]]
}

form=$([ "$full" = 1 ] && echo full || echo short)
log=docs/results/reproduce.md
started=$(date +%s)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
# With --only/--skip the rows of the steps not re-run are kept from the last reproduce.md (each row says when
# and at which commit it ran), so the file always lists every step's latest run.
kept=()
if { [ ${#only[@]} -gt 0 ] || [ ${#skip[@]} -gt 0 ]; } && [ -f "$log" ]; then
    while IFS= read -r row; do
        name=$(echo "$row" | cut -d'|' -f2 | tr -d ' ')
        wanted "$name" || kept+=("$row")
    done < <(grep -E '^[|] [a-z_]+ [|] `' "$log" || true)
fi
timings=()
failed=()
step() {
    local name=$1; shift
    wanted "$name" || return 0
    echo
    echo "== $name: $*"
    local t0=$SECONDS rc=0
    "$@" || rc=$?
    local took=$((SECONDS - t0))
    timings+=("| $name | \`$*\` | $took s | $([ $rc = 0 ] && echo ok || echo "failed ($rc)") | $(date -u '+%Y-%m-%d %H:%M') $commit |")
    [ $rc = 0 ] || failed+=("$name")
    echo "== $name: $took s, exit $rc"
}

if [ "$full" = 1 ]; then
    LIVE_CONFIGS=(default no-pause-final step-0.5 first-step-0.3)
    SOAK_MINUTES=60
    SOAK_OUT=docs/results/soak.json
    MT=()
else
    LIVE_CONFIGS=(default)
    SOAK_MINUTES=5
    SOAK_OUT=docs/results/soak_short.json   # the 60-minute soak's file (README) is only --full's
    MT=(--skip-large)
fi
# The short form re-runs every README table's bench in full (file speed, live lag, Bergamot, glossary) and a
# smaller run of the docs-only ones into *_short files (speech translation: int8 beam 1 on 4 clips per
# language; adaptation: the α = 1 and Fisher rows, no pack check — the runs are deterministic, and
# tests/test_results_cited.py checks the short rows equal the full file's); --full regenerates the docs' files.

step reference bench/setup_reference.sh
step file_speed "$PY" bench/file_speed.py --precisions int8 fp32 --beams 1 5 --out docs/results/file_speed.json
if [ "$full" = 1 ]; then
    step speech_translation "$PY" bench/speech_translation.py --precisions int8 --beams 1 5 \
        --out docs/results/speech_translation.json
    step speech_translation "$PY" bench/speech_translation.py --precisions fp32 int8 --beams 1 --no-fallback \
        --out docs/results/speech_translation_no_fallback.json
else
    step speech_translation "$PY" bench/speech_translation.py --precisions int8 --beams 1 --clips-per-language 4 \
        --out docs/results/speech_translation_short.json
fi
step mt_speed "$PY" bench/mt_speed.py "${MT[@]}" --out docs/results/mt_speed.json
step bergamot_parity "$PY" bench/bergamot_parity.py --out docs/results/bergamot_parity.json
step bergamot_speed "$PY" bench/bergamot_speed.py --threads 2 --out docs/results/bergamot_speed.json
step live_lag "$PY" bench/live_lag.py --configs "${LIVE_CONFIGS[@]}" --inputs en es en-pt --out docs/results/live_lag.json
step soak "$PY" bench/record.py --out "$SOAK_OUT" --title "Soak: one live session, fast-forwarded" \
    -- bench/soak.py --minutes "$SOAK_MINUTES" --speed 0
if [ "$full" = 1 ]; then
    step adaptation "$PY" bench/adaptation.py --alphas 1.0 0.75 --regularisers from_start fisher --epochs 5 \
        --shared-epochs 0 --threads 2 --pack-check --out docs/results/adaptation.json
    step adaptation "$PY" bench/adaptation.py --alphas 1.0 0.9 0.75 0.5 --regularisers from_start fisher --epochs 5 \
        --shared-epochs 0 --threads 2 --out docs/results/adaptation_sweep.json
    step adaptation "$PY" bench/adaptation.py --alphas --shared-epochs 20 --threads 2 \
        --out docs/results/adaptation_shared.json
else
    step adaptation "$PY" bench/adaptation.py --alphas 1.0 0.75 --regularisers fisher --epochs 5 --shared-epochs 0 \
        --threads 2 --out docs/results/adaptation_short.json
fi
step glossary "$PY" bench/glossary.py --bias 2 4 --out docs/results/glossary.json
step glossary "$PY" bench/glossary.py --beam-size 1 --bias 2 --out docs/results/glossary_greedy.json

total=$(( $(date +%s) - started ))
{
    echo "# bench/reproduce.sh ($form form)"
    echo
    echo "Last run: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), commit $commit; whole run $total s:"
    echo
    echo "    bench/reproduce.sh $*"
    echo
    echo "| step | command | wall | result | run at, commit |"
    echo "|---|---|---|---|---|"
    printf '%s\n' "${kept[@]}" "${timings[@]}" | sed '/^$/d'
} > "$log"
echo
echo "whole run: $total s; steps in $log"
if [ ${#failed[@]} -gt 0 ]; then
    echo "failed: ${failed[*]}" >&2
    exit 1
fi

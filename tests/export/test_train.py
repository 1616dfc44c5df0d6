"""Fine-tuning on a tiny random Whisper and a handful of espeak-ng clips (no real model needed).

What a user checks: the loss falls, alpha weighs the two terms as the formula says, an interrupted run
resumes to the same weights, the exported pack runs in the engine with torch's output, and bad files are
named and skipped.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bench import clips
from engine.features import N_FRAMES, N_SAMPLES, log_mel_spectrogram, pad_or_trim
from export.importers import load_openai
from export.train.base import TRAINED_CHECKPOINT, load_base
from export.train.data import TargetTokenizer, collate, load_examples
from export.train.evaluate import greedy
from export.train.loop import fine_tune
from export.train.loss import Regulariser, fisher_weights, reconstruction_loss, total_loss
from export.train.options import TrainOptions
from export.whisper_model import new_model

from tests.export.tiny import TINY, save_hf

ROOT = Path(__file__).resolve().parents[2]
FAST = TrainOptions(alpha=1.0, lr=3e-3, epochs=4, batch_size=2, held_out=0.0, progress=False)


def transcript(i: int) -> str:
    """Words of the tiny vocabulary (w0..w99) stand in for the text of clip i."""
    return " ".join(f"w{(i * 7 + k * 3) % 97 + 1}" for k in range(3 + i % 3))


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    torch.set_num_threads(2)
    return save_hf(new_model(TINY, seed=3), tmp_path_factory.mktemp("base") / "tiny-hf")


@pytest.fixture(scope="module")
def data(tmp_path_factory, clip_dir) -> Path:
    folder = tmp_path_factory.mktemp("data")
    for i, clip in enumerate(clips.clips("en")[:5]):
        shutil.copy(clips.synthesize(clip, clip_dir), folder / f"clip{i}.wav")
        (folder / f"clip{i}.txt").write_text(transcript(i) + "\n")
    return folder


def examples(base: Path, data: Path):
    model, vocab, _ = load_base(base)
    tok = TargetTokenizer(vocab)
    found, problems = load_examples(data, model.dims.n_mels, tok, "en", max_tokens=100)
    return model, tok, found, problems


def params(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_features_are_the_engines(base, data):
    _, _, found, problems = examples(base, data)
    assert problems == [] and len(found) == 5
    audio = clips.load_audio(data / "clip0.wav")
    want = pad_or_trim(log_mel_spectrogram(audio, 80, padding=N_SAMPLES), N_FRAMES)
    assert found[0].mel.shape == (80, N_FRAMES) and np.array_equal(found[0].mel, want)


def test_loss_falls(base, data, tmp_path):
    model, tok, found, _ = examples(base, data)
    result = fine_tune(model, tok, found, [], dataclasses.replace(FAST, epochs=6), tmp_path)
    losses = [r.loss for r in result.history]
    assert result.steps == 18 == len(losses)
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3]), losses


def test_alpha_one_is_reconstruction_only(base, data, tmp_path):
    model, tok, found, _ = examples(base, data)
    result = fine_tune(model, tok, found, [], dataclasses.replace(FAST, epochs=1), tmp_path)
    assert all(r.loss == r.recon for r in result.history)
    assert result.history[-1].reg > 0  # the weights moved, and L_reg says so, but it did not count


def test_alpha_zero_is_regulariser_only(base, data, tmp_path):
    model, tok, found, _ = examples(base, data)
    start = params(model)
    result = fine_tune(model, tok, found, [], dataclasses.replace(FAST, alpha=0.0, epochs=1), tmp_path / "a")
    assert all(r.loss == r.reg == 0.0 and r.recon > 0 for r in result.history)
    assert all(torch.equal(p, start[n]) for n, p in model.named_parameters())  # theta = theta_0 is the optimum
    # the plain L2 of the founding document pulls every weight towards zero instead
    plain = dataclasses.replace(FAST, alpha=0.0, epochs=1, regulariser="plain")
    result = fine_tune(model, tok, found, [], plain, tmp_path / "b")
    assert result.history[-1].reg < result.history[0].reg
    assert all(r.loss == r.reg for r in result.history)


def test_loss_is_the_alpha_weighted_sum():
    model = new_model(TINY, seed=1)
    reg = Regulariser(dict(model.named_parameters()))
    with torch.no_grad():
        model.decoder.ln.weight.add_(0.5)  # ||theta - theta_0||^2 = 64 * 0.25
    logits = torch.randn(2, 5, TINY.n_vocab)
    labels = torch.tensor([[-100, 3, 4, 5, 6], [-100, -100, 7, 8, -100]])
    recon = reconstruction_loss(logits, labels)
    assert float(reg().detach()) == pytest.approx(16.0)
    assert float(total_loss(0.25, recon, reg())) == pytest.approx(0.25 * float(recon) + 0.75 * 16.0)
    assert float(recon) == pytest.approx(float(torch.nn.functional.cross_entropy(
        logits[labels != -100], labels[labels != -100])))


def _anchor_loss(model, tok, anchors) -> float:
    mel, ids, labels = collate(anchors, tok)
    with torch.no_grad():
        return float(reconstruction_loss(model(torch.from_numpy(mel), torch.from_numpy(ids)), torch.from_numpy(labels)))


def test_fisher_weights_measure_what_the_anchor_clips_rest_on(base, data):
    model, tok, found, _ = examples(base, data)
    trained = {n: p for n, p in model.named_parameters() if n.startswith("decoder.")}
    mel, ids, labels = (torch.from_numpy(a) for a in collate(found[:2], tok))
    xa = model.encoder(mel).detach()
    weights = fisher_weights(trained, (reconstruction_loss(model.decoder(ids[i:i + 1], xa[i:i + 1]), labels[i:i + 1])
                                       for i in range(2)))
    flat = torch.cat([w.flatten() for w in weights.values()])
    assert float(flat.min()) >= 0 and float(flat.mean()) == pytest.approx(1.0, rel=1e-4)
    # positions past the longest anchor sequence play no part: those weights are free to move
    assert float(weights["decoder.positional_embedding"][ids.shape[1]:].abs().max()) == 0.0
    assert float(weights["decoder.positional_embedding"][: ids.shape[1]].sum()) > 0
    reg = Regulariser(trained, "fisher", weights)
    with torch.no_grad():
        trained["decoder.ln.weight"].add_(0.5)
    assert float(reg()) == pytest.approx(0.25 * float(weights["decoder.ln.weight"].sum()), rel=1e-5)
    with pytest.raises(ValueError, match="weights"):
        Regulariser(trained, "fisher")


def test_fisher_regulariser_needs_anchor_clips(base, data, tmp_path):
    model, tok, found, _ = examples(base, data)
    with pytest.raises(ValueError, match="anchor"):
        fine_tune(model, tok, found, [], dataclasses.replace(FAST, alpha=0.5, regulariser="fisher"), tmp_path)


def test_fisher_regulariser_keeps_the_anchor_clips_better_than_a_uniform_pull(base, data, tmp_path):
    """Train on clips 0-2 with the same alpha and each L_reg; clips 3-4 (with their own transcripts) are the
    anchors: under the fisher regulariser their loss rises less."""
    model, tok, found, _ = examples(base, data)
    train, anchors = found[:3], found[3:]
    start = _anchor_loss(model, tok, anchors)
    rises = {}
    for reg in ("from_start", "fisher"):
        model, tok, _, _ = examples(base, data)
        options = dataclasses.replace(FAST, alpha=0.5, regulariser=reg, epochs=6)
        fine_tune(model, tok, train, [], options, tmp_path / reg, anchors=anchors)
        rises[reg] = _anchor_loss(model, tok, anchors) - start
    print(rises)
    assert rises["fisher"] < rises["from_start"], rises


def test_resume_reaches_the_same_step_and_weights(base, data, tmp_path):
    options = dataclasses.replace(FAST, alpha=0.5, epochs=2, checkpoint_every=100)
    model, tok, found, _ = examples(base, data)
    whole = fine_tune(model, tok, found, [], options, tmp_path / "whole")
    want = params(model)

    model, tok, found, _ = examples(base, data)
    first = fine_tune(model, tok, found, [], dataclasses.replace(options, max_steps=4), tmp_path / "cut")
    assert first.steps == 4
    model, tok, found, _ = examples(base, data)  # a fresh process would start from the base again
    second = fine_tune(model, tok, found, [], dataclasses.replace(options, resume=first.checkpoint), tmp_path / "cut")
    assert second.steps == whole.steps == 6
    assert [r.loss for r in second.history] == [r.loss for r in whole.history]
    assert all(torch.equal(p, want[n]) for n, p in model.named_parameters())


def test_resume_refuses_other_data(base, data, tmp_path):
    model, tok, found, _ = examples(base, data)
    first = fine_tune(model, tok, found, [], dataclasses.replace(FAST, max_steps=1), tmp_path)
    with pytest.raises(ValueError, match="other data"):
        fine_tune(model, tok, found[:-1], [], dataclasses.replace(FAST, resume=first.checkpoint), tmp_path)


def bad_data(data: Path, folder: Path) -> dict[str, str]:
    """The good clips plus one of each kind of bad file; returns file name -> what stderr must say."""
    shutil.copytree(data, folder)
    shutil.copy(data / "clip0.wav", folder / "orphan.wav")  # audio without transcript
    shutil.copy(data / "clip1.wav", folder / "blank.wav")
    (folder / "blank.txt").write_text("  \n")  # empty transcript
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00not really a wave file" * 10)  # unreadable audio
    (folder / "broken.txt").write_text("w1 w2")
    (folder / "lonely.txt").write_text("w3 w4")  # transcript without audio
    return {"orphan.wav": "no transcript", "blank.wav": "empty", "broken.wav": "unreadable audio",
            "lonely.txt": "without an audio file"}


def test_bad_data_is_reported_by_name_and_skipped(base, data, tmp_path):
    expected = bad_data(data, tmp_path / "d")
    model, tok, found, problems = examples(base, tmp_path / "d")
    assert sorted(ex.path.name for ex in found) == [f"clip{i}.wav" for i in range(5)]
    reasons = {p.path.name: p.reason for p in problems}
    assert set(reasons) == set(expected)
    for name, words in expected.items():
        assert words in reasons[name]


def test_cli_trains_exports_and_the_engine_agrees_with_torch(base, data, tmp_path, capsys):
    from engine.whisper import DecodeOptions, WhisperModel

    expected = bad_data(data, tmp_path / "d")
    out = tmp_path / "tuned-fp32"
    cmd = [sys.executable, "-m", "export", "train", "--base", str(base), "--data", str(tmp_path / "d"),
           "--alpha", "0.9", "--out", str(out), "--epochs", "6", "--lr", "3e-3", "--batch-size", "2",
           "--held-out", "0.2", "--precision", "fp32", "--name", "tiny-tuned", "--device", "cpu",
           "--text-encoder-epochs", "2"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == str(out)
    for name in expected:
        assert f"{name}: " in proc.stderr, name
    assert "step 12/12" in proc.stderr and "held-out WER" in proc.stderr  # progress bar and evaluation
    report = json.loads((tmp_path / "tuned-fp32.train" / "training.json").read_text())
    assert report["n_train"] == 4 and report["n_held_out"] == 1 and report["steps"] == 12
    assert report["before"]["wer"] >= 0 and report["after"]["wer"] >= 0
    assert {Path(p["file"]).name for p in report["problems"]} == set(expected)
    meta = json.loads((out / "parley.json").read_text())
    assert meta["name"] == "tiny-tuned" and meta["text_encoder"]["file"] in meta["files"]
    assert (out / meta["text_encoder"]["file"]).is_file() and "text encoder: 4 steps" in proc.stderr

    engine_model = WhisperModel.load(out, device="cpu", threads=1)
    trained = load_openai(tmp_path / "tuned-fp32.train" / TRAINED_CHECKPOINT).eval()
    options = DecodeOptions(language="en", beam_size=1, temperatures=(0.0,), suppress_tokens=(),
                            suppress_blank=False, without_timestamps=True, compression_ratio_threshold=None,
                            log_prob_threshold=None, no_speech_threshold=None, sample_len=40)
    prompt = engine_model.tokenizer.sot_sequence("en", "transcribe") + [engine_model.tokenizer.special.no_timestamps]
    for i in range(5):
        audio = clips.load_audio(data / f"clip{i}.wav")
        mel = pad_or_trim(log_mel_spectrogram(audio, 80, padding=N_SAMPLES), N_FRAMES)
        ours = engine_model.decode_window(engine_model.encode(mel), options)
        want = greedy(trained, torch.from_numpy(mel)[None], prompt, engine_model.tokenizer.special.eot, 40)
        assert list(ours.tokens) == want, (i, ours.text)
        assert len(want) > 0

    # `parley translate --via shared` sends text through the pack's text encoder into the decoder.
    from engine.cli import main as parley
    from engine.whisper.text_encoder import text_via_shared_space

    capsys.readouterr()
    assert parley(["translate", "--via", "shared", "--model", str(out), "--from", "en", "--to", "en",
                   transcript(1)]) == 0
    assert capsys.readouterr().out.strip() == text_via_shared_space(engine_model, transcript(1))
    assert parley(["translate", "--via", "shared", "--model", str(out), "--from", "en", "--to", "de", "w1"]) == 1
    assert "--via shared writes English" in capsys.readouterr().err
    no_encoder = tmp_path / "plain"
    shutil.copytree(out, no_encoder)
    (no_encoder / meta["text_encoder"]["file"]).unlink()
    assert parley(["translate", "--via", "shared", "--model", str(no_encoder), "--from", "en", "--to", "en", "w1"]) == 1
    assert "plain: this pack has no text_encoder_model.onnx" in capsys.readouterr().err


def test_cli_refuses_the_plain_regulariser_where_it_destroys_the_model(tmp_path, capsys):
    from export.__main__ import main

    code = main(["train", "--base", "whisper-base", "--data", str(tmp_path), "--out", str(tmp_path / "p"),
                 "--regulariser", "plain", "--alpha", "0.9"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: --regulariser plain with --alpha 0.9 destroys")
    assert not (tmp_path / "p").exists()

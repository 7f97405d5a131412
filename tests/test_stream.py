"""Streaming: scores equal offline scores on the same windows, whatever the chunking;
smoothing, suppression and minimum count; make-stream, stream-eval and listen end to end."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import make_word_dataset, train_tiny_run, write
from rich.console import Console
from typer.testing import CliRunner

import features
from kws.cli import _false_accept_table, app
from kws.data.streams import (
    StreamOptions,
    StreamWord,
    make_stream,
    pool_summary,
    read_truth,
    write_truth,
)
from kws.runs import write_csv
from kws.stream import (
    Detection,
    PosteriorSmoother,
    ScoreAverager,
    SmoothingConfig,
    StreamError,
    StreamingDetector,
    StreamingScorer,
    detections_at,
    load_window_model,
    score_stream,
    smoothed_tops,
)
from kws.stream_eval import (
    FalseAcceptSource,
    evaluate_stream,
    false_accept_sources,
    score_detections,
)

runner = CliRunner()
RATE = 16_000
LABELS = ("_silence_", "_unknown_", "yes", "no", "up")


class LinearModel:
    """A fixed random linear 'model' with a softmax: fast, deterministic, any spec."""

    def __init__(self, spec: features.FeatureSpec, labels: tuple[str, ...] = LABELS) -> None:
        self.spec, self.labels, self.name = spec, labels, "linear"
        w = np.random.default_rng(0).normal(size=(int(np.prod(spec.shape)), len(labels)))
        self.w = (w / 50).astype(np.float32)

    def scores(self, window: np.ndarray) -> np.ndarray:
        z = window.reshape(-1) @ self.w
        e = np.exp(z - z.max())
        return (e / e.sum()).astype(np.float32)


def _speechy(rng: np.random.Generator, seconds: float) -> np.ndarray:
    n = int(seconds * RATE)
    x = rng.normal(0, 0.01, n)
    for start in range(RATE // 2, n - RATE, RATE):  # a tone burst every second
        x[start : start + 6000] += 0.5 * np.sin(np.arange(6000) * 0.2) * np.hanning(6000)
    return x.astype(np.float32)


@pytest.mark.parametrize("preset", ["mlperf-tiny", "tf-speech-commands"])
def test_streaming_scores_equal_offline_windows(preset: str, rng: np.random.Generator) -> None:
    spec = features.preset(preset)
    model = LinearModel(spec)
    audio = _speechy(rng, 4.3)
    hops = score_stream(model, audio, hop_ms=40, chunk_ms=70)
    hop = round(40 * RATE / 1000)
    count = (len(audio) - spec.clip_samples) // hop + 1
    assert [h.end_sample for h in hops] == [w * hop + spec.clip_samples for w in range(count)]
    clips = np.stack([audio[w * hop : w * hop + spec.clip_samples] for w in range(count)])
    offline = np.stack([model.scores(f) for f in features.mfcc(clips, spec=spec)])
    streamed = np.stack([h.scores for h in hops])
    np.testing.assert_array_equal(streamed, offline)  # same windows, same arithmetic
    np.testing.assert_array_equal([h.peak for h in hops], clips.max(axis=1))


def test_results_do_not_depend_on_chunk_size(rng: np.random.Generator) -> None:
    spec = features.preset("mlperf-tiny")
    model = LinearModel(spec)
    audio = _speechy(rng, 3.2)
    reference = np.stack([h.scores for h in score_stream(model, audio, chunk_ms=1000 * 3.2)])
    for chunk_ms in (0.0625, 7.3, 20, 333):  # 1 sample, odd, one stride, long
        scores = np.stack([h.scores for h in score_stream(model, audio, chunk_ms=chunk_ms)])
        np.testing.assert_array_equal(scores, reference)
    # irregular chunk sizes through the detector give the same detections too
    config = SmoothingConfig(threshold=0.0, average_window_ms=100, suppression_ms=300)
    one = StreamingDetector(model, smoothing=config)
    _, found_a = one.update(audio)
    two = StreamingDetector(model, smoothing=config)
    cuts = np.sort(rng.integers(0, len(audio), 40))
    found_b = []
    for piece in np.split(audio, cuts):
        found_b.extend(two.update(piece)[1])
    assert found_a and found_a == found_b


def test_scorer_memory_is_bounded_and_reset_restarts(rng: np.random.Generator) -> None:
    spec = features.preset("mlperf-tiny")
    scorer = StreamingScorer(LinearModel(spec))
    audio = _speechy(rng, 6.0)
    first = []
    for piece in np.split(audio, 60):
        first.extend(scorer.update(piece))
        assert scorer._audio.size < spec.clip_samples + scorer.hop_samples + piece.size
        assert len(scorer._mel) <= spec.num_frames + scorer.hop_frames + 1
    scorer.reset()
    again = scorer.update(audio)
    assert [h.end_sample for h in again] == [h.end_sample for h in first]
    np.testing.assert_array_equal(again[-1].scores, first[-1].scores)


def test_hop_must_be_a_multiple_of_the_stride() -> None:
    model = LinearModel(features.preset("mlperf-tiny"))
    with pytest.raises(StreamError, match="multiple of the feature stride"):
        StreamingScorer(model, hop_ms=30)
    with pytest.raises(Exception, match="float"):
        StreamingScorer(model).update(np.zeros(100, np.int16))


def _one_hot(label: int, strength: float = 0.9) -> np.ndarray:
    s = np.full(len(LABELS), (1 - strength) / (len(LABELS) - 1), np.float32)
    s[label] = strength
    return s


def test_smoother_threshold_minimum_count_and_suppression() -> None:
    hop = 320  # 20 ms
    config = SmoothingConfig(
        average_window_ms=100, threshold=0.6, suppression_ms=500, minimum_count=3
    )
    smoother = PosteriorSmoother(LABELS, config, sample_rate_hz=RATE)
    fired = []
    # "yes" held for 1.5 s: fires at the third result (minimum count), then again only after
    # the suppression time has passed (the same word may fire again)
    for k in range(75):
        d = smoother.update(_one_hot(2), sample=(k + 1) * hop)
        if d is not None:
            fired.append((k, d))
    assert [k for k, _ in fired] == [2, 28, 54]
    assert all(d.label == "yes" and d.score == pytest.approx(0.9) for _, d in fired)
    assert fired[0][1].time_s == pytest.approx(3 * hop / RATE)
    # silence and unknown never fire, however sure
    smoother.reset()
    for k in range(20):
        assert smoother.update(_one_hot(0, 0.99), sample=(k + 1) * hop) is None
        assert smoother.update(_one_hot(1, 0.99), sample=(k + 1) * hop + 1) is None
    # a different word inside the suppression time does not fire either
    smoother.reset()
    out = [smoother.update(_one_hot(2 + (k >= 5)), sample=(k + 1) * hop) for k in range(30)]
    labels = [(k, d.label) for k, d in enumerate(out) if d is not None]
    assert labels[0] == (2, "yes")
    assert labels[1][1] == "no" and (labels[1][0] + 1) * hop - 3 * hop > 500 * RATE / 1000
    # averaging: one confident hop among uncertain ones stays below the threshold
    smoother.reset()
    weak = np.full(len(LABELS), 1 / len(LABELS), np.float32)
    results = [smoother.update(weak, sample=(k + 1) * hop) for k in range(4)]
    results.append(smoother.update(_one_hot(3, 0.99), sample=5 * hop))
    assert results == [None] * 5


def test_score_averager_equals_a_brute_force_window_mean(rng: np.random.Generator) -> None:
    window = 1000
    averager = ScoreAverager(window_samples=window)
    times = np.cumsum(rng.integers(0, 200, 500))  # repeats, gaps, far past the buffer size
    scores = rng.random((500, 5)).astype(np.float32)
    for k, (t, row) in enumerate(zip(times, scores, strict=True)):
        average, count = averager.push(row, int(t))
        inside = [j for j in range(k + 1) if t - times[j] <= window]
        assert count == len(inside)
        expected = np.mean(np.stack([scores[j] for j in inside]), axis=0, dtype=np.float64)
        np.testing.assert_array_equal(average, expected)  # bit for bit
    with pytest.raises(StreamError, match="time order"):
        averager.push(scores[0], int(times[-1]) - 1)
    with pytest.raises(StreamError, match="classes"):
        averager.push(np.zeros(3, np.float32), int(times[-1]))
    averager.reset()
    assert averager.push(np.zeros(3, np.float32), 0)[1] == 1  # a new stream may change


def test_smoother_rejects_bad_settings() -> None:
    with pytest.raises(StreamError, match="threshold"):
        SmoothingConfig(threshold=1.5)
    with pytest.raises(StreamError, match="minimum count"):
        SmoothingConfig(minimum_count=0)
    for window in (0.0, float("nan"), float("inf")):
        with pytest.raises(StreamError, match="average window"):
            SmoothingConfig(average_window_ms=window)
    with pytest.raises(StreamError, match="suppression"):
        SmoothingConfig(suppression_ms=float("nan"))
    with pytest.raises(StreamError, match="no keyword"):
        PosteriorSmoother(("_silence_", "_unknown_"), sample_rate_hz=RATE)
    smoother = PosteriorSmoother(LABELS, sample_rate_hz=RATE)
    with pytest.raises(StreamError, match="5 labels"):
        smoother.update(np.zeros(3), sample=0)


def test_sweep_shortcut_equals_the_smoother(rng: np.random.Generator) -> None:
    model = LinearModel(features.preset("mlperf-tiny"))
    hops = score_stream(model, _speechy(rng, 6.0))
    tops = smoothed_tops(hops, labels=LABELS, average_window_ms=200, sample_rate_hz=RATE)
    # calibrated: floors on the score against _unknown_, at the median of the keyword hops
    level = float(np.median(tops[3][tops[1] >= 2]))
    floors = np.array([0.0, 0.0, level, level, level])
    counts = []
    for threshold in (0.0, 0.3, 0.5):
        for class_thresholds in (None, floors):
            config = SmoothingConfig(threshold=threshold, average_window_ms=200, suppression_ms=400)
            smoother = PosteriorSmoother(
                LABELS, config, sample_rate_hz=RATE, class_thresholds=class_thresholds
            )
            direct = [smoother.update(h.scores, sample=h.end_sample) for h in hops]
            shortcut = detections_at(
                LABELS, tops, config, sample_rate_hz=RATE, class_thresholds=class_thresholds
            )
            assert shortcut == [d for d in direct if d is not None]
            counts.append(len(shortcut))
    assert counts[0] > counts[1] > 0  # the floors rejected some detections, not all


def test_window_sweep_equals_one_evaluation_per_window(rng: np.random.Generator) -> None:
    model = LinearModel(features.preset("mlperf-tiny"))
    audio = _speechy(rng, 12.0)
    # a word on every tone burst, labels cycling through the keywords and another word
    truth = [
        StreamWord(("yes", "no", "_unknown_", "up")[i % 4], t + 0.05, t + 0.4, t, "")
        for i, t in enumerate(np.arange(0.5, 11.0, 1.0))
    ]
    thresholds = (0.2, 0.3, 0.4)
    smoothing = SmoothingConfig(threshold=0.3, average_window_ms=300, suppression_ms=400)
    swept = evaluate_stream(
        model, audio, truth, smoothing=smoothing, thresholds=thresholds,
        average_windows_ms=(500, 100, 300),
    )  # fmt: skip
    assert [(m.average_window_ms, m.threshold) for m in swept.sweep] == [
        (w, t) for w in (100, 300, 500) for t in thresholds
    ]
    for window in (100, 300, 500):
        alone = evaluate_stream(
            model, audio, truth, thresholds=thresholds,
            smoothing=SmoothingConfig(
                threshold=0.3, average_window_ms=window, suppression_ms=400
            ),
        )  # fmt: skip
        rows = [m for m in swept.sweep if m.average_window_ms == window]
        assert [m.to_dict(latencies=True) for m in rows] == [
            m.to_dict(latencies=True) for m in alone.sweep
        ]
        (at_threshold,) = [m for m in swept.windows if m.average_window_ms == window]
        assert at_threshold.to_dict(latencies=True) == alone.operating.to_dict(latencies=True)
        if window == 300:  # the chosen window: the same operating point and detections
            assert swept.operating.to_dict() == alone.operating.to_dict()
            assert swept.detections == alone.detections
    # the windows differ (or the comparison above proves nothing)
    curves = {w: [str(m.to_dict(latencies=True)) for m in swept.sweep if m.average_window_ms == w]
              for w in (100, 300, 500)}  # fmt: skip
    assert len({tuple(c) for c in curves.values()}) == 3
    chosen = [m for m in swept.sweep if m.average_window_ms == 300]
    assert swept.curve() == swept.curve(300) == chosen and len(chosen) == len(thresholds)
    assert {type(m.average_window_ms) for m in swept.sweep + swept.windows} == {float}
    with pytest.raises(StreamError, match="average window"):
        evaluate_stream(model, audio, truth, average_windows_ms=(0,))
    # 30 ms holds at most 2 results 20 ms apart: a minimum count of 3 could never fire
    with pytest.raises(StreamError, match="at most 2 results at a 20 ms hop"):
        evaluate_stream(model, audio, truth, average_windows_ms=(30,))
    with pytest.raises(StreamError, match="--min-count 3 is never reached"):
        StreamingDetector(model, smoothing=SmoothingConfig(average_window_ms=30))
    StreamingDetector(model, smoothing=SmoothingConfig(average_window_ms=40))  # 3 results fit


def test_matching_counts_correct_wrong_missed_and_false_accepts() -> None:
    truth = [
        StreamWord("yes", 1.0, 1.5, 0.8, ""),
        StreamWord("no", 3.0, 3.4, 2.8, ""),
        StreamWord("_unknown_", 5.0, 5.5, 4.8, "six/a_nohash_0.wav"),
        StreamWord("up", 7.0, 7.5, 6.8, ""),
        StreamWord("up", 11.0, 11.5, 10.8, ""),  # missed
    ]
    found = [
        Detection("yes", 0.9, 1.6),  # correct, 100 ms after the end
        Detection("yes", 0.9, 1.9),  # the same word again: a false accept
        Detection("up", 0.8, 3.3),  # wrong word
        Detection("no", 0.8, 5.2),  # on another word: false accept
        Detection("up", 0.8, 6.9),  # on the onset, inside the word's clip: correct
        Detection("up", 0.8, 9.0),  # on nothing: false accept
        Detection("up", 0.8, 10.7),  # before the clip of the next word: false accept
    ]
    m, outcomes, matched = score_detections(
        found, truth, seconds=3600, threshold=0.5, average_window_ms=400.0, tolerance_ms=750
    )
    assert m.to_dict()["average_window_ms"] == 400.0
    assert (m.keywords, m.other_words) == (4, 1)
    assert (m.correct, m.wrong, m.missed) == (2, 1, 1)
    assert (m.false_accepts, m.false_accepts_on_words) == (4, 1)
    assert m.false_accepts_per_hour == 4
    assert m.latency_ms == pytest.approx([100, -600])
    assert outcomes == [
        "correct",
        "false_accept",
        "wrong",
        "false_accept",
        "correct",
        "false_accept",
        "false_accept",
    ]
    assert matched == [truth[0], None, truth[1], truth[2], truth[3], None, None]
    # by clip: the three on no word together, the one on the other word with its source, and
    # how often the stream plays that clip
    sources = false_accept_sources(found, outcomes, matched, [*truth, truth[2]])
    assert [(f.source, f.word, f.count, f.times_in_stream, f.detected) for f in sources] == [
        ("", "", 3, 0, (("up", 2), ("yes", 1))),
        ("six/a_nohash_0.wav", "_unknown_", 1, 2, (("no", 1),)),
    ]
    assert sources[0].to_dict()["detected"] == {"up": 2, "yes": 1}
    # detections given out of time order pair with the outcomes of their time order
    assert false_accept_sources(found[::-1], outcomes, matched, [*truth, truth[2]]) == sources
    # TensorFlow's view: of 5 words, 4 matched (yes, no, _unknown_, up), 2 correct, 2 wrong
    assert (m.tf_matched_pct, m.tf_correct_pct, m.tf_wrong_pct) == (80, 40, 40)
    assert m.tf_false_positive_pct == 60  # the double "yes" and the two on nothing


@pytest.fixture(scope="module")
def tone_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stream")
    return train_tiny_run(root, seed=5, epochs=4, per_word=30, testing=25)


def test_pool_summary_counts_plays_clips_and_speakers() -> None:
    truth = [
        StreamWord("yes", 1.0, 1.5, 0.8, "yes/aa_nohash_0.wav"),
        StreamWord("yes", 3.0, 3.5, 2.8, "yes/aa_nohash_1.wav"),
        StreamWord("no", 5.0, 5.5, 4.8, "no/bb_nohash_0.wav"),
        StreamWord("_unknown_", 7.0, 7.5, 6.8, "six/cc_nohash_0.wav"),
        StreamWord("_unknown_", 9.0, 9.5, 8.8, "six/cc_nohash_0.wav"),
    ]
    assert pool_summary(truth) == {"keywords": (3, 3, 2), "other words": (2, 1, 1)}
    # a truth without sources (a hand-labelled recording) names no clips
    nameless = [dataclasses.replace(w, source="") for w in truth]
    assert pool_summary(nameless) == {"keywords": (3, 0, 0), "other words": (2, 0, 0)}


def test_false_accepts_of_a_truth_without_clip_names_group_by_word() -> None:
    truth = [
        StreamWord("yes", 1.0, 1.5, 0.8, ""),
        StreamWord("_unknown_", 3.0, 3.5, 2.8, ""),
        StreamWord("_unknown_", 5.0, 5.5, 4.8, ""),
    ]
    found = [Detection("yes", 0.9, 3.6), Detection("no", 0.9, 5.6), Detection("yes", 0.9, 9.0)]
    _, outcomes, matched = score_detections(
        found, truth, seconds=60, threshold=0.5, average_window_ms=400.0
    )
    assert outcomes == ["false_accept"] * 3
    sources = false_accept_sources(found, outcomes, matched, truth)
    # the two on other words together, played 0 times (no clip is named), not 3 (every word)
    assert [(f.source, f.word, f.count, f.times_in_stream) for f in sources] == [
        ("", "_unknown_", 2, 0),
        ("", "", 1, 0),
    ]
    table = _false_accept_table(sources, 0.5)
    console = Console(width=200, record=True)
    console.print(table)
    text = console.export_text()
    assert "(clip not named in the truth)" in text and "(no word: noise" in text


def test_false_accept_table_shows_the_most_and_sums_the_rest() -> None:
    sources = [
        FalseAcceptSource(f"six/[{i}]_nohash_0.wav", "_unknown_", 10 - i, 3, (("up", 10 - i),))
        for i in range(9)
    ] + [FalseAcceptSource("", "", 1, 0, (("no", 1),))]
    console = Console(width=200, record=True)
    console.print(_false_accept_table(sources, 0.7, most=8))
    text = console.export_text()
    assert "six/[0]_nohash_0.wav" in text  # rich markup in a file name is printed as it is
    assert "six/[8]_nohash_0.wav" not in text
    assert "2 more (in metrics.json)" in text
    last = next(line for line in text.splitlines() if "more (in metrics.json)" in line)
    assert last.replace("│", " ").split()[4] == "3"  # 2 (the ninth clip) + 1 (on no word)


def test_make_stream_is_seeded_and_truthful(tmp_path: Path) -> None:
    data = make_word_dataset(tmp_path / "words", np.random.default_rng(8), per_word=20)
    options = StreamOptions(minutes=0.5, seed=4, splits=("training", "validation", "testing"))
    audio, truth = make_stream(data, words=["yes", "no", "up"], options=options)
    again, truth2 = make_stream(data, words=["yes", "no", "up"], options=options)
    np.testing.assert_array_equal(audio, again)
    assert truth == truth2
    assert audio.dtype == np.float32 and len(audio) == 30 * RATE
    assert np.abs(audio).max() <= 1
    assert len(truth) == 14  # a word every 2 s, the last slot leaves room for a clip
    assert {w.label for w in truth} <= {"yes", "no", "up", "_unknown_"}
    for w in truth:
        assert w.clip_start_s <= w.start_s < w.end_s <= w.clip_start_s + 1.0
        # the tone of the word is there, in its span: loud compared with the noise bed
        seg = audio[int(w.start_s * RATE) : int(w.end_s * RATE)]
        assert np.sqrt(np.mean(seg**2)) > 0.05
    gaps = np.diff([w.clip_start_s for w in truth])
    assert gaps.min() >= 1.0  # clips never overlap
    write_truth(tmp_path / "t.csv", truth)
    assert read_truth(tmp_path / "t.csv") == [
        StreamWord(
            w.label, round(w.start_s, 4), round(w.end_s, 4), round(w.clip_start_s, 4), w.source
        )
        for w in truth
    ]
    other = make_stream(
        data,
        words=["yes", "no", "up"],
        options=StreamOptions(minutes=0.5, seed=5, splits=("training", "validation", "testing")),
    )[0]
    assert not np.array_equal(other, audio)


def test_make_stream_rejects_bad_input(tmp_path: Path) -> None:
    data = make_word_dataset(tmp_path / "words", np.random.default_rng(8), per_word=4)
    with pytest.raises(Exception, match="jitter"):
        StreamOptions(jitter_ms=800)
    with pytest.raises(Exception, match="no files for word"):
        make_stream(data, words=["yes", "maybe"])
    (tmp_path / "bad.csv").write_text("label,start_s,end_s\nyes,abc,1\n")
    with pytest.raises(Exception, match=r"bad.csv:2: start_s/end_s must be numbers"):
        read_truth(tmp_path / "bad.csv")


def test_keras_and_int8_models_stream_like_offline(
    tone_run: Path, rng: np.random.Generator
) -> None:
    from kws.export.convert import to_tflite
    from kws.train import load_run_model

    spec = features.preset("mlperf-tiny")
    audio = _speechy(rng, 2.5)
    keras_model = load_window_model(tone_run)
    hops = score_stream(keras_model, audio, chunk_ms=30)
    clips = np.stack([audio[h.end_sample - spec.clip_samples : h.end_sample] for h in hops])
    feats = features.mfcc(clips, spec=spec)
    offline = load_run_model(tone_run).predict(feats, verbose=0)
    np.testing.assert_allclose(np.stack([h.scores for h in hops]), offline, atol=1e-5)
    int8 = tone_run / "int8.tflite"
    int8.write_bytes(to_tflite(load_run_model(tone_run), representative=feats[:20]))
    tflite_model = load_window_model(int8, labels=keras_model.labels, spec=spec)
    a = np.stack([h.scores for h in score_stream(tflite_model, audio, chunk_ms=30)])
    b = np.stack([h.scores for h in score_stream(tflite_model, audio, chunk_ms=1000)])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, offline, atol=0.1)  # int8 against float


def test_cli_make_stream_listen_and_stream_eval(tone_run: Path, tmp_path: Path) -> None:
    data = Path(json.loads((tone_run / "config.json").read_text())["data_dir"])
    wav, truth = tmp_path / "long.wav", tmp_path / "truth.csv"
    result = runner.invoke(
        app,
        [
            "data",
            "make-stream",
            str(data),
            "--words",
            "yes,no,up",
            "--minutes",
            "0.5",
            "--splits",
            "training,validation,testing",
            "--out",
            str(wav),
            "--truth",
            str(truth),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = " ".join(result.output.split())
    for kind, (n, clips, speakers) in pool_summary(read_truth(truth)).items():
        assert f"{kind} │ {n} clips, speakers │ {clips}, {speakers}" in summary
    assert sf.info(wav).samplerate == RATE and sf.info(wav).frames == 30 * RATE
    assert len(read_truth(truth)) == 14

    result = runner.invoke(
        app, ["listen", str(tone_run), "--file", str(wav), "--json", "--threshold", "0.2"]
    )
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.output.splitlines()]
    assert events[-1]["event"] == "end" and events[-1]["audio_s"] == 30.0
    detections = events[:-1]
    assert len(detections) == events[-1]["detections"]
    assert all(e["event"] == "detection" and e["label"] in ("yes", "no", "up") for e in detections)
    assert [e["time_s"] for e in detections] == sorted(e["time_s"] for e in detections)

    result = runner.invoke(app, ["listen", str(tone_run), "--file", str(wav)])
    assert result.exit_code == 0, result.output
    assert "detections in 30.0 s of audio" in result.output

    out = tmp_path / "eval"
    result = runner.invoke(
        app,
        [
            "stream-eval",
            str(tone_run),
            "--wav",
            str(wav),
            "--truth",
            str(truth),
            "--threshold",
            "0.2",
            "--sweep-average-ms",
            "200,600",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    m = metrics["metrics"]
    assert m["keywords"] + m["other_words"] == 14
    assert m["correct"] + m["wrong"] + m["missed"] == m["keywords"]
    sweep_csv = (out / "sweep.csv").read_text().splitlines()
    assert len(metrics["sweep"]) == len(sweep_csv) - 1
    assert sweep_csv[0].startswith("average_window_ms,threshold,")
    windows = [w["average_window_ms"] for w in metrics["windows"]]
    assert windows == [200.0, SmoothingConfig().average_window_ms, 600.0]
    assert len(metrics["sweep"]) == 3 * len({r["threshold"] for r in metrics["sweep"]})
    assert "averaging windows at threshold 0.2" in result.output
    # the tiny tone model's scores stay low, so 0.2 is where it detects: the windows differ
    windows_rows = metrics["windows"]
    assert sum(w["correct"] + w["wrong"] + w["false_accepts"] for w in windows_rows) > 0
    timing = [(w["correct"], w["false_accepts"], w["latency_median_ms"]) for w in windows_rows]
    assert len(set(timing)) > 1
    assert metrics["windows"][1]["correct"] == m["correct"]  # the chosen window
    assert (out / "sweep.png").stat().st_size > 0
    # the CLI's detections are the listen command's at the same threshold
    rows = (out / "detections.csv").read_text().splitlines()[1:]
    assert len(rows) == len(detections)
    # each detection names the word it was matched to; the false accepts add up by clip
    table = list(csv.DictReader((out / "detections.csv").read_text().splitlines()))
    played = {w.source: w.label for w in read_truth(truth)}
    for row in table:
        assert (row["outcome"] == "correct") <= (row["word"] == row["label"])
        assert row["source"] == "" or played[row["source"]] == row["word"]
    sources = metrics["false_accept_sources"]
    assert m["false_accepts_on_words"] > 0  # the fixture keeps the clip table non-empty
    assert sum(f["count"] for f in sources) == m["false_accepts"]
    on_words = [r for r in table if r["outcome"] == "false_accept" and r["word"]]
    assert len(on_words) == m["false_accepts_on_words"]
    assert ("by clip" in result.output) == (m["false_accepts"] > 0)

    # the same evaluation through the library equals the CLI's
    model = load_window_model(tone_run)
    audio = sf.read(wav, dtype="float32")[0]
    report = evaluate_stream(
        model, audio, read_truth(truth), smoothing=SmoothingConfig(threshold=0.2)
    )
    assert report.operating.to_dict() == m


def test_cli_stream_errors_are_one_line(tone_run: Path, tmp_path: Path) -> None:
    wav = write(tmp_path / "a.wav", np.zeros(RATE * 2))
    bad = tmp_path / "truth.csv"
    bad.write_text("label,start_s,end_s\nmaybe,0.1,0.5\n")
    result = runner.invoke(
        app, ["stream-eval", str(tone_run), "--wav", str(wav), "--truth", str(bad)]
    )
    assert result.exit_code == 2
    assert "'maybe'" in result.output and "not labels of the model" in result.output
    late = tmp_path / "late.csv"
    late.write_text("label,start_s,end_s\nyes,1.5,2.5\n")
    result = runner.invoke(
        app, ["stream-eval", str(tone_run), "--wav", str(wav), "--truth", str(late)]
    )
    assert result.exit_code == 2 and "1 words end after the recording does" in result.output
    good = tmp_path / "good.csv"
    good.write_text("label,start_s,end_s\nyes,0.5,1.0\n")
    result = runner.invoke(
        app,
        ["stream-eval", str(tone_run), "--wav", str(wav), "--truth", str(good),
         "--out", str(wav / "eval")],
    )  # fmt: skip
    assert result.exit_code == 2 and "a.wav: is a file, not a folder" in result.output
    for bad_windows, message in (
        ("300,x", "--sweep-average-ms '300,x'"),
        ("0", "--sweep-average-ms 0: average window must be > 0 ms"),
        ("30", "--sweep-average-ms 30: an average over 30 ms holds at most 2 results"),
    ):
        result = runner.invoke(
            app,
            ["stream-eval", str(tone_run), "--wav", str(wav), "--truth", str(good),
             "--sweep-average-ms", bad_windows, "--out", str(tmp_path / "w")],
        )  # fmt: skip
        assert result.exit_code == 2 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
        assert not (tmp_path / "w").exists()
    result = runner.invoke(app, ["listen", str(tone_run), "--file", str(wav), "--hop-ms", "30"])
    assert result.exit_code == 2 and "multiple of the feature stride" in result.output
    text = tmp_path / "x.wav"
    text.write_text("not audio")
    result = runner.invoke(app, ["listen", str(tone_run), "--file", str(text)])
    assert result.exit_code == 2 and "x.wav: not a readable audio file" in result.output


def test_write_csv_keeps_the_header_without_rows(tmp_path: Path) -> None:
    names = ("label", "score", "time_s", "outcome", "word", "source")
    write_csv(tmp_path / "none.csv", [], fieldnames=names)
    assert (tmp_path / "none.csv").read_text().splitlines() == [",".join(names)]
    write_csv(tmp_path / "rows.csv", [{"a": 1, "b": 2}])
    assert (tmp_path / "rows.csv").read_text().splitlines() == ["a,b", "1,2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["none.csv", "rows.csv"]  # no temp files

"""Phonetic neighbours: reading espeak-ng IPA, the change rules, sampling, `kws synth --near`."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from kws import kokoro, synth
from kws.cli import app
from kws.phonetic import (
    CONSONANTS,
    NEAR_VOWELS,
    VOWELS,
    PhoneticError,
    arpabet_to_ipa,
    distance,
    ipa_to_arpabet,
    neighbour_name,
    neighbours,
    sample_neighbours,
    variants,
)

runner = CliRunner()
# espeak-ng's IPA for the seven words, as Kokoro's phonemiser writes them (en-us, en-gb)
KEYWORDS_US = {
    "yes": "jˈɛs", "no": "nˈoʊ", "up": "ˈʌp", "down": "dˈaʊn", "left": "lˈɛft",
    "right": "ɹˈaɪt", "stop": "stˈɑːp",
}  # fmt: skip
KEYWORDS_GB = {"no": "nˈəʊ", "stop": "stˈɒp"}


def _brute_distance(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """Levenshtein distance by trying every edit script of up to three steps (the oracle)."""
    frontier, seen = {a}, {a}
    alphabet = set(a) | set(b)
    for steps in range(4):
        if b in frontier:
            return steps
        nxt = set()
        for w in frontier:
            for i in range(len(w) + 1):
                nxt.add(w[:i] + w[i + 1 :])
                for p in alphabet:
                    nxt.add((*w[:i], p, *w[i:]))
                    nxt.add((*w[:i], p, *w[i + 1 :]))
        frontier = nxt - seen
        seen |= nxt
    return 4


def test_espeak_ipa_reads_as_arpabet_and_back() -> None:
    phones = {w: ipa_to_arpabet(ipa) for w, ipa in KEYWORDS_US.items()}
    assert phones["no"] == ("N", "OW") and phones["stop"] == ("S", "T", "AA", "P")
    assert phones["right"] == ("R", "AY", "T") and phones["left"] == ("L", "EH", "F", "T")
    assert ipa_to_arpabet(KEYWORDS_GB["no"]) == ("N", "OW")  # British vowels, same phones
    assert ipa_to_arpabet(KEYWORDS_GB["stop"]) == ("S", "T", "AA", "P")
    assert ipa_to_arpabet("tʃˈɜːtʃ") == ("CH", "ER", "CH")  # two-letter phones first
    for w, ipa in KEYWORDS_US.items():
        assert arpabet_to_ipa(phones[w]) == ipa, w
    assert neighbour_name(("G", "OW")) == "g-ow"
    with pytest.raises(PhoneticError, match="no English phone for 'ʀ'"):
        ipa_to_arpabet("ʀˈoʊ")
    with pytest.raises(PhoneticError, match="needs a vowel"):
        ipa_to_arpabet("st")
    with pytest.raises(PhoneticError, match="not an ARPAbet phone"):
        arpabet_to_ipa(("N", "OH"))


def test_distance_matches_a_brute_force_oracle() -> None:
    rng = np.random.default_rng(3)
    pool = ("N", "OW", "S", "T", "AA")
    for _ in range(300):
        a = tuple(rng.choice(pool, rng.integers(0, 4)))
        b = tuple(rng.choice(pool, rng.integers(0, 4)))
        assert distance(a, b) == min(_brute_distance(a, b), 4), (a, b)


def test_one_change_neighbours_are_the_hard_negatives_and_never_the_keyword() -> None:
    no = ipa_to_arpabet(KEYWORDS_US["no"])
    ring = neighbours(no)
    for expected in ("g-ow", "s-ow", "s-n-ow", "n-ow-t", "ow", "n-iy"):
        assert tuple(expected.upper().split("-")) in ring, expected
    assert ring == sorted(set(ring))
    assert all(distance(w, no) == 1 for w in ring)
    assert not set(ring) & variants(no)  # "naw", "nuh": how some accents say "no"
    assert ("N", "AO") in variants(no) and ("NG", "OW") not in ring  # no /ŋ/ onset
    left = ipa_to_arpabet(KEYWORDS_US["left"])
    assert ("L", "EH", "F") in variants(left)  # "lef" is "left" said casually
    assert ("L", "EH", "F") not in neighbours(left)
    stop = ipa_to_arpabet(KEYWORDS_US["stop"])
    stop_ring = neighbours(stop)
    assert ("S", "K", "AA", "P") in stop_ring and ("T", "AA", "P") in stop_ring
    assert ("S", "D", "AA", "P") not in stop_ring  # after /s/, /d/ sounds like /t/
    assert ("B", "T", "AA", "P") not in stop_ring  # no "bt" onset in English
    assert neighbours(no, avoid=[("G", "OW")]) == [w for w in ring if w != ("G", "OW")]


def test_two_change_neighbours_are_two_phones_away() -> None:
    up = ipa_to_arpabet(KEYWORDS_US["up"])
    outer = neighbours(up, edits=2)
    assert ("AO", "F") in outer  # "off"
    assert all(distance(w, up) == 2 for w in outer)
    assert not set(outer) & (variants(up) | set(neighbours(up)))
    with pytest.raises(PhoneticError, match="edits must be 1 or 2"):
        neighbours(up, edits=3)


def test_the_phone_tables_agree() -> None:
    from kws import phonetic

    for p, near in NEAR_VOWELS.items():
        assert p in near and near <= set(VOWELS), p
    assert set(NEAR_VOWELS) == set(VOWELS)
    assert sorted(phonetic.MANNERS) == sorted(CONSONANTS)  # every consonant in one class
    spellings = [*phonetic.VOWEL_IPA.values(), *phonetic.CONSONANT_IPA.values()]
    assert len(set(spellings)) == len(spellings)  # no two phones share an IPA spelling
    for p in (*VOWELS, *CONSONANTS):  # each phone reads back as itself
        assert ipa_to_arpabet(arpabet_to_ipa((p, "AH") if p in CONSONANTS else (p,)))[0] == p


def test_no_vowel_is_ever_swapped_for_one_near_it() -> None:
    # a vowel a keyword may be said with (an accent's) is never a neighbour's: every pair
    for v, w in itertools.product(VOWELS, VOWELS):
        word = ("N", v)
        if w in NEAR_VOWELS[v]:
            assert ("N", w) not in neighbours(word), (v, w)
    assert set(CONSONANTS) >= {"NG", "ZH", "HH"}


def test_sampling_is_seeded_disjoint_and_takes_every_one_change_first() -> None:
    keywords = {w: ipa_to_arpabet(ipa) for w, ipa in KEYWORDS_US.items()}
    a = sample_neighbours(keywords, per_keyword=120, seed=5)
    assert a == sample_neighbours(keywords, per_keyword=120, seed=5)
    assert a != sample_neighbours(keywords, per_keyword=120, seed=6)
    everything = [w for picks in a.values() for w in picks]
    assert len(everything) == len(set(everything)) == 7 * 120
    assert not set(everything) & set(keywords.values())
    taken: set[tuple[str, ...]] = set()
    for word, phones in keywords.items():  # every one-change neighbour not already taken
        ring = set(neighbours(phones, avoid=keywords.values())) - taken
        assert ring <= set(a[word]), word
        taken |= set(a[word])
    few = sample_neighbours({"no": keywords["no"]}, per_keyword=10, edits=1, seed=0)
    assert len(few["no"]) == 10 and all(distance(w, keywords["no"]) == 1 for w in few["no"])
    with pytest.raises(PhoneticError, match="per_keyword must be >= 1"):
        sample_neighbours(keywords, per_keyword=0)


def test_only_kokoro_speaks_phonemes(tmp_path: Path) -> None:
    voices = [synth.Voice("espeak-ng", "en-us")]
    with pytest.raises(synth.SynthError, match="--engine kokoro only"):
        synth.synthesize_takes(["g-ow"], tmp_path / "o", voices=voices, phonemes={"g-ow": "ɡˈoʊ"})
    assert not (tmp_path / "o").exists()
    with pytest.raises(synth.SynthError, match="only Kokoro speaks phonemes, not espeak-ng"):
        synth.synthesize("g-ow", voices[0], np.random.default_rng(0), phonemes="ɡˈoʊ")
    result = runner.invoke(
        app, ["synth", "--near", "no", "--engine", "espeak-ng", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "only Kokoro" in result.output
    result = runner.invoke(app, ["synth", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--near KEYWORDS" in result.output
    result = runner.invoke(app, ["synth", "go", "--near", "no", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "not both" in result.output
    assert not (tmp_path / "o").exists()


def test_cli_near_speaks_each_neighbour_from_its_phonemes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI path without the model: Kokoro's pronunciations and its voice are stand-ins
    that record what they were asked to say."""
    said: list[tuple[str, bool]] = []

    def speak(text: str, voice: str, *, speed: float, phonemes: bool = False) -> np.ndarray:
        said.append((text, phonemes))
        t = np.arange(8000) / 16000
        return (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)

    monkeypatch.setattr(kokoro, "pronounce", lambda w, lang="en-us": KEYWORDS_US[w])
    monkeypatch.setattr(kokoro, "speak", speak)
    monkeypatch.setattr(kokoro, "prepare", lambda folder: None)
    monkeypatch.setattr(kokoro, "kokoro_available", lambda: True)
    monkeypatch.setattr(kokoro, "kokoro_version", lambda: "stand-in")  # CI has no Kokoro
    out = tmp_path / "near"
    args = ["synth", "--near", "no,up", "--near-count", "4", "--near-edits", "1"]
    result = runner.invoke(app, [*args, "--count", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert len(folders) == 8 and all(len(list((out / f).glob("*.flac"))) == 2 for f in folders)
    manifest = json.loads((out / "synth.json").read_text())
    spoken = manifest["runs"][0]["phonemes"]
    assert sorted(spoken) == folders
    for name, ipa in spoken.items():
        assert ipa == arpabet_to_ipa(tuple(name.upper().split("-")))
    assert {text for text, _ in said} == set(spoken.values()) and all(p for _, p in said)
    audio, rate = sf.read(next((out / folders[0]).glob("*.flac")))
    assert rate == 16_000 and np.abs(audio).max() > 0.1
    again = runner.invoke(app, [*args, "--count", "2", "--out", str(out)])
    assert again.exit_code == 0 and len(said) == 16  # a rerun speaks nothing again
    empty = runner.invoke(app, ["synth", "--near", " , ", "--out", str(tmp_path / "e")])
    assert empty.exit_code == 2 and "--near needs keywords" in empty.output


def test_a_keyword_that_cannot_be_read_is_one_line_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kokoro, "pronounce", lambda w, lang="en-us": "ʀˈoʊ")  # no English /ʀ/
    monkeypatch.setattr(kokoro, "prepare", lambda folder: None)
    monkeypatch.setattr(kokoro, "kokoro_available", lambda: True)
    result = runner.invoke(app, ["synth", "--near", "roh", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no English phone for 'ʀ'" in errors[0]
    assert not (tmp_path / "o").exists()

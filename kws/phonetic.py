"""Phonetic neighbours of keywords: the hardest words a keyword spotter must reject.

In: a keyword's pronunciation (IPA as espeak-ng writes it, which is what Kokoro speaks). Out:
the pronunciations one or two sound changes away ("no" → "go", "so", "snow", "note", "nay";
"up" → "of", "ups", "cup", and with two changes "off"), written in ARPAbet (the phone set
of the CMU Pronouncing Dictionary) so that each one can name a folder, and spoken from IPA.

A change is: a consonant replaced by another consonant, a vowel replaced by a vowel that no
accent of English would use in the keyword, a consonant dropped (never the keyword's last
stop: "lef" is how many people say "left"), or a consonant added at either end where English
allows it (an empty onset or coda takes any consonant English puts there; a single onset
consonant takes /s/ before it or /l ɹ w j/ after it as in "snow", "play", "twin"; a filled
coda takes /s z t d/). Inside a consonant cluster a consonant is only replaced by one of the
same manner ("stop" → "skop", not "btop"), and never by a voiced stop after /s/ ("sdop" is
how "stop" sounds). A two-change neighbour is two phones away from the keyword, and no
neighbour is one of the keyword's `variants` (its vowels moved to near ones, its last stop
dropped). Vowels count as near each other, and are
never swapped, where accents and casual speech move between them (the cot-caught merger,
"yeah"-like /æ/ for /ɛ/, Southern monophthongs for /aɪ aʊ/, ...): `NEAR_VOWELS`. No
neighbour is the pronunciation of a keyword.

Many neighbours are not English words ("zhown"): that is on purpose. A deployed spotter hears
every sound people make, and the ones next to a keyword are where its false accepts come
from. This is the pronunciation-space version of what openWakeWord does with a dictionary
(adversarial phrases that share phonemes with the wake word), without needing one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = [
    "CONSONANTS",
    "NEAR_VOWELS",
    "VOWELS",
    "PhoneticError",
    "arpabet_to_ipa",
    "distance",
    "ipa_to_arpabet",
    "neighbour_name",
    "neighbours",
    "sample_neighbours",
    "variants",
]


class PhoneticError(ValueError):
    """A pronunciation that cannot be read or used."""


# ARPAbet → the IPA that espeak-ng (en-us) writes and Kokoro speaks
VOWEL_IPA = {
    "AA": "ɑː", "AE": "æ", "AH": "ʌ", "AO": "ɔ", "AW": "aʊ", "AY": "aɪ", "EH": "ɛ",
    "ER": "ɜː", "EY": "eɪ", "IH": "ɪ", "IY": "iː", "OW": "oʊ", "OY": "ɔɪ", "UH": "ʊ",
    "UW": "uː",
}  # fmt: skip
CONSONANT_IPA = {
    "B": "b", "CH": "tʃ", "D": "d", "DH": "ð", "F": "f", "G": "ɡ", "HH": "h", "JH": "dʒ",
    "K": "k", "L": "l", "M": "m", "N": "n", "NG": "ŋ", "P": "p", "R": "ɹ", "S": "s",
    "SH": "ʃ", "T": "t", "TH": "θ", "V": "v", "W": "w", "Y": "j", "Z": "z", "ZH": "ʒ",
}  # fmt: skip
VOWELS = tuple(VOWEL_IPA)
CONSONANTS = tuple(CONSONANT_IPA)
# what else espeak-ng (en-us or en-gb) writes for the same phones
IPA_ALIASES = {
    "ɑ": "AA", "ɒ": "AA", "ɔː": "AO", "əʊ": "OW", "o": "OW", "ə": "AH", "ɐ": "AH", "ᵻ": "IH",
    "ɚ": "ER", "ɝ": "ER", "ɜ": "ER", "i": "IY", "u": "UW", "e": "EH", "ʧ": "CH", "ʤ": "JH",
    "g": "G", "r": "R", "ɾ": "T", "ʔ": "T", "ɫ": "L",
}  # fmt: skip
IGNORED_IPA = set("ˈˌ.- ")
STOPS = ("P", "B", "T", "D", "K", "G")
S_ONSETS = ("P", "T", "K", "M", "N", "L", "W")  # consonants that /s/ may come before
ONSET_PAIRS = {  # a single onset consonant → the consonants that may follow it ("pl", "tw")
    "P": ("L", "R", "Y"), "B": ("L", "R", "Y"), "T": ("R", "W"), "D": ("R", "W"),
    "K": ("L", "R", "W", "Y"), "G": ("L", "R", "W"), "F": ("L", "R", "Y"),
    "TH": ("R", "W"), "SH": ("R",), "V": ("Y",), "M": ("Y",), "HH": ("Y",),
}  # fmt: skip
NO_ONSET = ("NG",)  # English never starts a word with these
NO_CODA = ("HH", "W", "Y")  # ... nor ends one with these
MANNER_CLASSES = (
    ("P", "B", "T", "D", "K", "G"),
    ("F", "V", "TH", "DH", "S", "Z", "SH", "ZH", "HH"),
    ("CH", "JH"),
    ("M", "N", "NG"),
    ("L", "R", "W", "Y"),
)
MANNERS = {p: cls for cls in MANNER_CLASSES for p in cls}
CODA_AFTER = ("S", "Z", "T", "D")  # suffixes a coda takes
# vowels that accents or casual speech use for each other: never swapped
NEAR_VOWELS: dict[str, frozenset[str]] = {
    v: frozenset(near)
    for v, near in {
        "AA": ("AA", "AO", "AH", "AE"),  # cot-caught, "stop" fronted in the Inland North
        "AE": ("AE", "EH", "AA"),
        "AH": ("AH", "AA", "UH", "ER"),  # Northern English "up" is /ʊp/
        "AO": ("AO", "AA", "OW"),
        "AW": ("AW", "AE", "AA"),  # Southern and Canadian /aʊ/
        "AY": ("AY", "AA", "EY", "OY"),  # Southern "raht", Australian /ɑɪ/
        "EH": ("EH", "AE", "IH", "EY"),
        "ER": ("ER", "AH"),
        "EY": ("EY", "EH", "AY"),
        "IH": ("IH", "IY", "EH"),
        "IY": ("IY", "IH"),
        "OW": ("OW", "AO", "UH"),
        "OY": ("OY", "AY"),
        "UH": ("UH", "UW", "AH"),
        "UW": ("UW", "UH"),
    }.items()
}
_IPA_TO_PHONE = {
    **{ipa: p for p, ipa in VOWEL_IPA.items()},
    **{ipa: p for p, ipa in CONSONANT_IPA.items()},
    **IPA_ALIASES,
}
_LONGEST = max(map(len, _IPA_TO_PHONE))

Phones = tuple[str, ...]


def ipa_to_arpabet(ipa: str) -> Phones:
    """espeak-ng's IPA for a word ("nˈoʊ", "stˈɑːp") as ARPAbet phones (("N", "OW"), ...),
    stress marks dropped; a length mark the table does not know is dropped too."""
    phones: list[str] = []
    i = 0
    while i < len(ipa):
        if ipa[i] in IGNORED_IPA:
            i += 1
            continue
        for size in range(min(_LONGEST, len(ipa) - i), 0, -1):
            phone = _IPA_TO_PHONE.get(ipa[i : i + size])
            if phone is not None:
                phones.append(phone)
                i += size
                break
        else:
            if ipa[i] == "ː":
                i += 1
                continue
            raise PhoneticError(f"{ipa!r}: no English phone for {ipa[i]!r} at {i}")
    if not _has_vowel(phones):
        raise PhoneticError(f"{ipa!r}: a pronunciation needs a vowel")
    return tuple(phones)


def arpabet_to_ipa(phones: Sequence[str]) -> str:
    """The IPA Kokoro speaks for ARPAbet phones, primary stress on the first vowel."""
    out: list[str] = []
    stressed = False
    for p in phones:
        if p in VOWEL_IPA:
            out.append(("" if stressed else "ˈ") + VOWEL_IPA[p])
            stressed = True
        elif p in CONSONANT_IPA:
            out.append(CONSONANT_IPA[p])
        else:
            raise PhoneticError(f"{p!r} is not an ARPAbet phone")
    return "".join(out)


def neighbour_name(phones: Sequence[str]) -> str:
    """A folder name for a pronunciation: its phones in lower case joined by "-" ("g-ow")."""
    return "-".join(p.lower() for p in phones)


def _cluster(word: Phones, i: int) -> bool:
    """Whether the consonant at ``i`` has a consonant next to it."""
    return any(0 <= j < len(word) and word[j] in CONSONANT_IPA for j in (i - 1, i + 1))


def _edits(word: Phones) -> Iterable[Phones]:
    """Every pronunciation one change from ``word`` (see the module docstring); may repeat."""
    n = len(word)
    vowels = [i for i, p in enumerate(word) if p in VOWEL_IPA]
    first, last = vowels[0], vowels[-1]
    for i, p in enumerate(word):
        if p in VOWEL_IPA:
            for v in VOWELS:
                if v not in NEAR_VOWELS[p]:
                    yield (*word[:i], v, *word[i + 1 :])
            continue
        # in a cluster only a consonant of the same manner keeps it English ("st" → "sk")
        choices = MANNERS[p] if _cluster(word, i) else CONSONANTS
        banned = NO_ONSET if i < first else NO_CODA
        if i > 0 and word[i - 1] == "S":  # after /s/ a stop is unaspirated: "sdop" is "stop"
            banned += ("B", "D", "G")
        for c in choices:
            if c != p and c not in banned and c not in word[max(i - 1, 0) : i + 2]:
                yield (*word[:i], c, *word[i + 1 :])
        if not (i == n - 1 and p in STOPS):  # "lef" is "left" said casually
            yield word[:i] + word[i + 1 :]
    # additions at the edges, where English phonotactics allows them
    if first == 0:
        yield from ((c, *word) for c in CONSONANTS if c not in NO_ONSET)
    elif first == 1:
        if word[0] in S_ONSETS:
            yield ("S", *word)
        yield from ((*word[:1], c, *word[1:]) for c in ONSET_PAIRS.get(word[0], ()))
    if last == n - 1:
        yield from ((*word, c) for c in CONSONANTS if c not in NO_CODA)
    else:
        yield from ((*word, c) for c in CODA_AFTER if c != word[-1])


def variants(keyword: Phones) -> set[Phones]:
    """The keyword as accents and casual speech say it: each vowel replaced by one near it
    (`NEAR_VOWELS`), and with a final stop dropped. Never a neighbour."""
    keyword = tuple(keyword)
    choices = [sorted(NEAR_VOWELS[p]) if p in VOWEL_IPA else [p] for p in keyword]
    said = {tuple(w) for w in itertools.product(*choices)}
    if keyword[-1] in STOPS and len(keyword) > 1 and keyword[-2] in CONSONANT_IPA:
        said |= {w[:-1] for w in said}
    return said


def distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance between two phone sequences (insertions, deletions and
    substitutions of one phone each)."""
    row = list(range(len(b) + 1))
    for i, p in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, q in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (p != q))
    return row[-1]


def _has_vowel(phones: Sequence[str]) -> bool:
    return any(p in VOWEL_IPA for p in phones)


def _rings(keyword: Phones, avoid: Iterable[Phones], edits: int) -> list[set[Phones]]:
    """The one-change neighbours of ``keyword`` and, for ``edits`` 2, the two-change ones."""
    if edits not in (1, 2):
        raise PhoneticError(f"edits must be 1 or 2, got {edits}")
    if not _has_vowel(keyword):
        raise PhoneticError(f"{neighbour_name(keyword)!r}: a pronunciation needs a vowel")
    banned = variants(keyword) | set(map(tuple, avoid))
    ring = {w for w in _edits(keyword) if _has_vowel(w)} - banned
    if edits == 1:
        return [ring]
    outer = {
        w for near in ring for w in _edits(near) if _has_vowel(w) and distance(w, keyword) == 2
    }
    return [ring, outer - banned]


def neighbours(keyword: Phones, *, edits: int = 1, avoid: Iterable[Phones] = ()) -> list[Phones]:
    """Pronunciations ``edits`` changes (1 or 2) from ``keyword`` (their phone distance is
    exactly that), sorted, each once; never a `variants` of the keyword or one of ``avoid``
    (the other keywords, other accents' pronunciations of them)."""
    return sorted(_rings(tuple(keyword), avoid, edits)[-1])


def sample_neighbours(
    keywords: dict[str, Phones],
    *,
    per_keyword: int,
    edits: int = 2,
    seed: int = 0,
    avoid: Iterable[Phones] = (),
) -> dict[str, list[Phones]]:
    """For each keyword all its one-change neighbours, then two-change ones (up to ``edits``)
    drawn at random with ``seed``, ``per_keyword`` in all (fewer where there are fewer). A
    pronunciation near two keywords goes to the first; none is a keyword's pronunciation or
    one of ``avoid`` (other accents' pronunciations of them)."""
    if per_keyword < 1:
        raise PhoneticError(f"per_keyword must be >= 1, got {per_keyword}")
    own = set(keywords.values()) | set(map(tuple, avoid))
    taken: set[Phones] = set()
    chosen: dict[str, list[Phones]] = {}
    for k, (word, phones) in enumerate(keywords.items()):
        picks: list[Phones] = []
        for e, ring in enumerate(_rings(tuple(phones), own, edits), 1):
            pool = sorted(ring - taken)
            room = per_keyword - len(picks)
            if len(pool) > room:
                rng = np.random.default_rng([seed, k, e])
                pool = sorted(pool[i] for i in rng.choice(len(pool), room, replace=False))
            picks += pool
            taken.update(pool)
        chosen[word] = picks
    return chosen

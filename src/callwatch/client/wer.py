"""Word error rate: Levenshtein distance over normalised words, numbers compared both ways.

Theory of operation. Both texts are normalised the same way:

1. Unicode NFKC, lower case, typographic apostrophes to ``'``, ``&`` to ``and``;
2. split into tokens: words (letters, with inner apostrophes kept: ``i'm``, ``don't``), and
   numerals (``457291``, ``1,250``, ``3.5``, ``$59.99``, ``10%``, ``3rd``, ``10:30``); all other
   characters (punctuation, hyphens) separate tokens and are dropped;
3. a few spelling variants are canonicalised (:data:`SPELLINGS`: ``per cent`` → ``percent``;
   :data:`CANONICAL`: ``ok`` → ``okay``, ``neighbour`` → ``neighbor``);
4. every numeral becomes a *slot of alternative readings*, because ASR writes ``457291`` where
   the speaker said "four five seven two nine one", ``1987`` for "nineteen eighty seven",
   ``$59`` for "fifty nine dollars": the cardinal ("four hundred fifty seven thousand two
   hundred ninety one", also with "and" after hundreds), digit by digit (with "zero" or "oh"),
   for four-digit numbers the year reading ("nineteen eighty seven", "twenty oh five"), plus the
   currency, percent, ordinal, decimal and clock forms.

Each text is then a small word lattice (a DAG: one path per choice of readings), and the
distance is the classic edit distance generalised to two lattices: dynamic programming over
pairs of lattice nodes, in topological order, with unit cost for substitution, deletion and
insertion. The alignment picks, for each numeral on either side, the reading that makes the
fewest errors, so "four five seven two nine one" against ``457291`` scores 0 errors, and the
reference word count is that of the chosen reference path (ties prefer the longer path). With
no numerals, the result is exactly the textbook WER over normalised words.

``WER = (substitutions + deletions + insertions) / reference words``; it can exceed 1.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Reading = tuple[str, ...]
"""One way to say a token, as words."""
Slot = tuple[Reading, ...]
"""The alternative readings of one token (a single reading for ordinary words)."""

CANONICAL: dict[str, Reading] = {
    "ok": ("okay",),
    "alright": ("all", "right"),
    "neighbour": ("neighbor",),
    "colour": ("color",),
    "favour": ("favor",),
    "centre": ("center",),
    "cancelled": ("canceled",),
    "authorised": ("authorized",),
    "apologise": ("apologize",),
}
"""Spelling variants (a few British spellings among them) mapped to one form."""
SPELLINGS = ((re.compile(r"\bper cent\b"), "percent"), (re.compile(r"\be-mail\b"), "email"))
"""Multi-token spellings rewritten before tokenising."""
MAX_WORDS = 5000
"""Longest text (in tokens) :func:`word_errors` accepts; the alignment is quadratic."""

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_IRREGULAR = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
_TOKEN = re.compile(
    r"\$\d{1,3}(?:,\d{3})+(?:\.\d+)?|\$\d+(?:\.\d+)?"  # money
    r"|\d{1,2}:\d\d"  # clock time
    r"|\d+(?:st|nd|rd|th)\b"  # ordinal
    r"|(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?"  # number, decimal, percent
    r"|[a-z]+(?:'[a-z]+)*"  # word
)


@dataclass(frozen=True, slots=True)
class WordErrors:
    """Counts from one alignment of a hypothesis against a reference."""

    substitutions: int
    deletions: int
    """Reference words the hypothesis missed."""
    insertions: int
    """Hypothesis words with no reference counterpart."""
    reference_words: int
    """Words on the chosen reference path (the WER denominator)."""

    @property
    def errors(self) -> int:
        """Substitutions + deletions + insertions."""
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        """Errors per reference word (0.0 for two empty texts, 1.0 per word if only one is)."""
        if self.reference_words == 0:
            return 0.0 if self.errors == 0 else float(self.errors)
        return self.errors / self.reference_words

    def __add__(self, other: WordErrors) -> WordErrors:
        return WordErrors(
            substitutions=self.substitutions + other.substitutions,
            deletions=self.deletions + other.deletions,
            insertions=self.insertions + other.insertions,
            reference_words=self.reference_words + other.reference_words,
        )


NO_ERRORS = WordErrors(substitutions=0, deletions=0, insertions=0, reference_words=0)


def cardinal(number: int, *, british_and: bool = False) -> Reading:
    """``number`` (≥ 0, < 10**15) in words: 1987 → one thousand nine hundred eighty seven."""
    if number < 0 or number >= 10**15:
        raise ValueError(f"cannot spell {number}")
    if number == 0:
        return ("zero",)
    words: list[str] = []
    for scale, name in _SCALES:
        if number >= scale:
            words += [*_below_thousand(number // scale, british_and), name]
            number %= scale
    if number:
        and_word = ["and"] if british_and and words and number < 100 else []
        words += [*and_word, *_below_thousand(number, british_and)]
    return tuple(words)


def _below_thousand(number: int, british_and: bool) -> list[str]:
    words: list[str] = []
    if number >= 100:
        words += [_ONES[number // 100], "hundred"]
        number %= 100
        if number and british_and:
            words.append("and")
    if number >= 20:
        words.append(_TENS[number // 10])
        number %= 10
        if number:
            words.append(_ONES[number])
    elif number or not words:
        words.append(_ONES[number])
    return words


def ordinal(number: int) -> Reading:
    """``number`` as an ordinal: 3 → third, 21 → twenty first, 40 → fortieth."""
    *head, last = cardinal(number)
    if last in _ORDINAL_IRREGULAR:
        last = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return (*head, last)


def _digits(text: str, zero: str) -> Reading:
    return tuple(zero if d == "0" else _ONES[int(d)] for d in text)


def _year(text: str) -> list[Reading]:
    """Pair readings of a four-digit number: 1987 → nineteen eighty seven, 2005 → twenty oh five."""
    if len(text) != 4 or text[0] == "0":
        return []
    high, low = int(text[:2]), int(text[2:])
    if low == 0:
        return [(*cardinal(high), "hundred")]
    tail = ("oh", _ONES[low]) if low < 10 else cardinal(low)
    return [(*cardinal(high), *tail)]


def integer_readings(text: str) -> list[Reading]:
    """All readings of a digit string (commas allowed): cardinal, digit by digit, year."""
    digits = text.replace(",", "")
    readings: list[Reading] = []
    if (digits[0] != "0" or len(digits) == 1) and len(digits) <= 15:
        value = int(digits)
        readings += [cardinal(value), cardinal(value, british_and=True)]
    readings += [_digits(digits, "zero"), _digits(digits, "oh"), *_year(digits)]
    return list(dict.fromkeys(readings))


def _decimal_readings(text: str) -> list[Reading]:
    whole, _, fraction = text.partition(".")
    if not fraction:
        return integer_readings(whole)
    tails = [("point", *_digits(fraction, zero)) for zero in ("zero", "oh")]
    return [(*w, *t) for w, t in itertools.product(integer_readings(whole), tails)]


def _money_readings(text: str) -> list[Reading]:
    whole, _, cents = text[1:].partition(".")
    dollars = [(*w, "dollars") for w in integer_readings(whole)]
    if not cents or int(cents) == 0:
        return dollars
    cent_words = integer_readings(cents)
    readings = [(*d, *c, "cents") for d, c in itertools.product(dollars, cent_words)]
    readings += [(*d, "and", *c, "cents") for d, c in itertools.product(dollars, cent_words)]
    readings += [(*w, *c) for w, c in itertools.product(integer_readings(whole), cent_words)]
    return readings


def _clock_readings(text: str) -> list[Reading]:
    hours, minutes = (int(part) for part in text.split(":"))
    if minutes == 0:
        return [cardinal(hours), (*cardinal(hours), "o'clock")]
    tail = ("oh", _ONES[minutes]) if minutes < 10 else cardinal(minutes)
    return [(*cardinal(hours), *tail)]


def _numeral_slot(token: str) -> Slot:
    if token.startswith("$"):
        readings = _money_readings(token)
    elif ":" in token:
        readings = _clock_readings(token)
    elif token[-2:] in ("st", "nd", "rd", "th"):
        readings = [ordinal(int(token[:-2]))]
    elif token.endswith("%"):
        readings = [(*r, "percent") for r in _decimal_readings(token[:-1])]
    else:
        readings = _decimal_readings(token)
    return tuple(dict.fromkeys(readings))


def normalise(text: str) -> list[Slot]:
    """``text`` as a sequence of slots of alternative readings (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("&", " and ")
    for pattern, replacement in SPELLINGS:
        text = pattern.sub(replacement, text)
    slots: list[Slot] = []
    for token in _TOKEN.findall(text):
        if token[0].isdigit() or token[0] == "$":
            slots.append(_numeral_slot(token))
        else:
            slots.append((CANONICAL.get(token, (token,)),))
    return slots


def normalised_words(text: str) -> list[str]:
    """The first reading of every slot (the cardinal for plain numbers), flattened; for display."""
    return [word for slot in normalise(text) for word in slot[0]]


class _Lattice:
    """Slots unrolled into a DAG whose node numbers are a topological order."""

    def __init__(self, slots: Sequence[Slot]) -> None:
        self.edges: list[list[tuple[int, str]]] = [[]]
        for slot in slots:
            start = len(self.edges) - 1
            ends: list[int] = []
            for reading in slot:
                node = start
                for word in reading[:-1]:
                    self.edges.append([])
                    self.edges[node].append((len(self.edges) - 1, word))
                    node = len(self.edges) - 1
                ends.append(node)
            self.edges.append([])
            final = len(self.edges) - 1
            for node, reading in zip(ends, slot, strict=True):
                self.edges[node].append((final, reading[-1]))

    @property
    def size(self) -> int:
        return len(self.edges)


_Cell = tuple[int, int, int, int, int]
"""(errors, −reference words, substitutions, deletions, insertions); tuples compare as keys."""


def _align(ref: _Lattice, hyp: _Lattice) -> WordErrors:
    inf: _Cell = (1 << 60, 0, 0, 0, 0)
    table = [[inf] * hyp.size for _ in range(ref.size)]
    table[0][0] = (0, 0, 0, 0, 0)

    def relax(a: int, b: int, cell: _Cell) -> None:
        if cell < table[a][b]:
            table[a][b] = cell

    for a in range(ref.size):
        for b in range(hyp.size):
            err, neg_ref, sub, dele, ins = table[a][b]
            if err == inf[0]:
                continue
            for b2, _ in hyp.edges[b]:
                relax(a, b2, (err + 1, neg_ref, sub, dele, ins + 1))
            for a2, ref_word in ref.edges[a]:
                relax(a2, b, (err + 1, neg_ref - 1, sub, dele + 1, ins))
                for b2, hyp_word in hyp.edges[b]:
                    miss = int(ref_word != hyp_word)
                    relax(a2, b2, (err + miss, neg_ref - 1, sub + miss, dele, ins))
    err, neg_ref, sub, dele, ins = table[-1][-1]
    return WordErrors(substitutions=sub, deletions=dele, insertions=ins, reference_words=-neg_ref)


def word_errors(reference: str, hypothesis: str) -> WordErrors:
    """Align ``hypothesis`` against ``reference`` after normalisation; return the counts.

    Raises:
        ValueError: either text has more than :data:`MAX_WORDS` tokens.
    """
    ref_slots, hyp_slots = normalise(reference), normalise(hypothesis)
    if len(ref_slots) > MAX_WORDS or len(hyp_slots) > MAX_WORDS:
        raise ValueError(f"texts longer than {MAX_WORDS} tokens are not aligned")
    return _align(_Lattice(ref_slots), _Lattice(hyp_slots))


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis`` against ``reference`` (see :func:`word_errors`)."""
    return word_errors(reference, hypothesis).wer


def corpus_errors(pairs: Iterable[tuple[str, str]]) -> WordErrors:
    """Sum of :func:`word_errors` over (reference, hypothesis) pairs (corpus-level WER)."""
    total = NO_ERRORS
    for reference, hypothesis in pairs:
        total = total + word_errors(reference, hypothesis)
    return total


__all__ = [
    "CANONICAL",
    "NO_ERRORS",
    "Reading",
    "Slot",
    "WordErrors",
    "cardinal",
    "corpus_errors",
    "integer_readings",
    "normalise",
    "normalised_words",
    "ordinal",
    "wer",
    "word_errors",
]

"""Word error rate: textbook cases, normalisation, and numbers written either way."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callwatch.client.wer import (
    NO_ERRORS,
    WordErrors,
    cardinal,
    corpus_errors,
    integer_readings,
    normalise,
    normalised_words,
    ordinal,
    wer,
    word_errors,
)


def counts(sub: int, dele: int, ins: int, ref: int) -> WordErrors:
    return WordErrors(substitutions=sub, deletions=dele, insertions=ins, reference_words=ref)


@pytest.mark.parametrize(
    ("reference", "hypothesis", "expected"),
    [
        ("the cat sat on the mat", "the cat sat on the mat", counts(0, 0, 0, 6)),
        ("the cat sat on the mat", "the cat sat on mat", counts(0, 1, 0, 6)),
        ("the cat sat on the mat", "the cat sat on the the mat", counts(0, 0, 1, 6)),
        ("the cat sat on the mat", "the dog sat on the mat", counts(1, 0, 0, 6)),
        ("a b c d", "x b d e", counts(1, 1, 1, 4)),  # a→x, c deleted, e inserted
        ("kitten sitting", "", counts(0, 2, 0, 2)),
        ("", "hello there", counts(0, 0, 2, 0)),
        ("", "", counts(0, 0, 0, 0)),
    ],
)
def test_textbook_alignments(reference: str, hypothesis: str, expected: WordErrors) -> None:
    assert word_errors(reference, hypothesis) == expected


def test_wer_is_errors_over_reference_words() -> None:
    assert wer("one two three four", "one two three") == pytest.approx(0.25)
    assert wer("a", "b c d") == pytest.approx(3.0)  # can exceed 1
    assert wer("", "") == 0.0
    assert wer("", "word") == 1.0


def test_case_and_punctuation_are_ignored() -> None:
    reference = "Thank you for calling, my name is Sarah; how can I help?"
    assert wer(reference, "thank you for calling my name is sarah how can i help") == 0.0
    assert wer("it's forty-two", "It's forty two.") == 0.0
    assert wer("don't", "dont") == 1.0  # inner apostrophes are part of the word


def test_spelling_variants() -> None:
    assert wer("okay all right", "OK, alright.") == 0.0
    assert wer("my neighbor", "my neighbour") == 0.0
    assert wer("ten percent", "ten per cent") == 0.0
    assert wer("ten percent", "10%") == 0.0
    assert wer("me and you", "me & you") == 0.0


@pytest.mark.parametrize(
    ("spoken", "written"),
    [
        ("my account number is four five seven two nine one", "My account number is 457291."),
        ("the order number is eight three one zero two six", "The order number is 831026."),
        ("two payments of fifty nine dollars", "two payments of $59"),
        ("on the third of March", "on the 3rd of March"),
        ("the fourteenth of July nineteen eighty seven", "the 14th of July 1987"),
        ("ending in six two four", "ending in 624"),
        ("a ten percent discount", "a 10% discount"),
        ("at ten thirty", "at 10:30"),
        ("one thousand two hundred fifty", "1,250"),
        ("three point five", "3.5"),
        ("nine dollars ninety nine cents", "$9.99"),
        ("twenty oh five", "2005"),
        ("one hundred and five", "105"),
        ("agent oh oh seven", "agent 007"),
    ],
)
def test_numbers_match_in_either_form(spoken: str, written: str) -> None:
    assert word_errors(spoken, written).errors == 0
    assert word_errors(written, spoken).errors == 0


def test_number_errors_count_per_word_of_the_best_reading() -> None:
    # "457292" read digit by digit differs from the reference in one word only
    assert word_errors("four five seven two nine one", "457292") == counts(1, 0, 0, 6)
    # "4500" is closest as "four five zero zero": two substitutions, two deletions
    assert word_errors("four five seven two nine one", "4500") == counts(2, 2, 0, 6)


def test_reference_length_follows_the_chosen_reading() -> None:
    # written reference, spoken hypothesis: the denominator is the words of the matched reading
    assert word_errors("call 911", "call nine one one") == counts(0, 0, 0, 4)


def test_number_words() -> None:
    assert cardinal(0) == ("zero",)
    assert " ".join(cardinal(1_234_567)) == (
        "one million two hundred thirty four thousand five hundred sixty seven"
    )
    assert " ".join(cardinal(105, british_and=True)) == "one hundred and five"
    assert ordinal(3) == ("third",)
    assert ordinal(21) == ("twenty", "first")
    assert ordinal(40) == ("fortieth",)
    assert ordinal(12) == ("twelfth",)
    assert ("nineteen", "eighty", "seven") in integer_readings("1987")
    assert ("oh", "oh", "seven") in integer_readings("007")
    with pytest.raises(ValueError, match="cannot spell"):
        cardinal(10**15)


def test_normalise_shapes() -> None:
    slots = normalise("Call me at 10:30!")
    assert slots[:2] == [(("call",),), (("me",),)]
    assert ("ten", "thirty") in slots[3]
    assert normalised_words("It is $3.50") == ["it", "is", "three", "dollars", "fifty", "cents"]


def test_corpus_errors_add_up() -> None:
    total = corpus_errors([("a b", "a b"), ("c d", "c x"), ("e", "")])
    assert total == counts(1, 1, 0, 5)
    assert corpus_errors([]) == NO_ERRORS
    assert total.wer == pytest.approx(0.4)


def test_overlong_texts_are_refused() -> None:
    with pytest.raises(ValueError, match="longer than"):
        word_errors("word " * 5001, "word")


def levenshtein(a: list[str], b: list[str]) -> int:
    """Textbook word-level edit distance (the oracle for texts without numerals)."""
    row = list(range(len(b) + 1))
    for i, word in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, other in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (word != other))
    return row[-1]


plain = st.lists(st.sampled_from(["a", "b", "c", "the", "cat"]), max_size=10)
mixed = st.lists(st.sampled_from(["a", "one", "two", "7", "$5", "3rd", "12", "10%"]), max_size=8)


@given(plain, plain)
def test_without_numerals_it_is_plain_levenshtein(
    reference: list[str], hypothesis: list[str]
) -> None:
    result = word_errors(" ".join(reference), " ".join(hypothesis))
    assert result.errors == levenshtein(reference, hypothesis)
    assert result.reference_words == len(reference)


@given(mixed, mixed)
def test_identity_and_bounds_with_numerals(reference: list[str], hypothesis: list[str]) -> None:
    ref, hyp = " ".join(reference), " ".join(hypothesis)
    assert word_errors(ref, ref).errors == 0
    result = word_errors(ref, hyp)
    assert 0 <= result.errors <= result.reference_words + result.insertions
    assert result.errors == result.substitutions + result.deletions + result.insertions

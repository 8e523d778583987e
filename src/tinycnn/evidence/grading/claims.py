"""What a step's write-up claims, read from its Result and Analysis: figures (parameters as `1622`,
`7,712`, `7.4k` or `6.3M`; best train and test accuracy with or without `%`, as a percentage or a
fraction; the epoch a target was reached) and statements the logs can refute ("overfitting",
"target achieved", an augmentation credited).

A figure written with fewer digits stands for a range: `6.3M` is 6,250,000 up to 6,400,000 (rounded
or cut off: people do both), `99.4` is 99.35 up to 99.5.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tinycnn.evidence.grading.logs import as_percent

NUMBER = r"(\d+(?:[.,]\d+)*)\s*([kKmM])?\b"
PARAMS = re.compile(
    rf"(?:parameters|params)\b[^\d\n]{{0,20}}?{NUMBER}|{NUMBER}\s*(?:parameters|params)\b", re.I
)
ACCURACY = r"[^\d\n]{0,25}?(\d{1,3}(?:\.\d{1,5})?|0?\.\d{2,6})\s*%?"
BEST_TRAIN = re.compile(rf"(?:best|max(?:imum)?|highest)\s+train(?:ing)?(?:\s+acc(?:uracy)?)?{ACCURACY}", re.I)
BEST_TEST = re.compile(
    rf"(?:best|max(?:imum)?|highest)\s+(?:(?:test|val(?:idation)?)\s*)?(?:acc(?:uracy)?)?(?<!train)(?<!training){ACCURACY}",
    re.I,
)
REACHED = re.compile(
    r"(?:from|since|at|in|by|after)\s+(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)?\s+epoch|epoch\s+(\d{1,2})\s+(?:on|onwards)"
    r"|(?:from|since)\s+epoch\s+(\d{1,2})\b", re.I
)
SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")
TARGET_WORDS = re.compile(r"99\.4|target|goal|consisten|stabl|hold|above|every epoch", re.I)
CONSISTENT = re.compile(r"\b(consisten\w*|stabl[ey]|reliabl[ey]|every\s+time|always)\b", re.I)
OVERFITTING = re.compile(r"\b(?<!no\s)(?<!not\s)(?<!less\s)(over-?fit\w*)\b(?![^.\n]{0,25}\b(?:gone|reduced|removed|fixed))",
                         re.I)
NEGATED = re.compile(r"\b(?:no|not|isn't|without|less|reduc\w*|avoid\w*|prevent\w*|little|hardly|zero)\b[^.\n]{0,30}$",
                     re.I)
ACHIEVED = re.compile(r"\b(?:target|goal)\s+(?:is\s+|was\s+|has\s+been\s+)?(achieved|reached|met|hit)\b|\b(achieved|reached)"
                      r"\s+(?:the\s+)?(?:target|goal)\b", re.I)
NOT_ACHIEVED = re.compile(r"\b(?:not|never|n't|almost|nearly|close to)\b[^.\n]{0,25}$", re.I)
AUGMENTATION = re.compile(r"\b(augment\w*|rotation|random\s*rotat\w*|affine|cutout|random\s*crop\w*)\b", re.I)


@dataclass
class Figure:
    value: float
    text: str  # as written
    low: float  # the range the text stands for
    high: float


@dataclass
class Claims:
    params: Figure | None = None
    best_train: Figure | None = None
    best_test: Figure | None = None
    reached_epoch: int | None = None
    consistent: str = ""  # a word claiming consistency ("consistently"), if any
    overfitting: str = ""  # the sentence that claims overfitting
    achieved: str = ""  # the sentence that claims the target was achieved
    augmentation: str = ""  # the augmentation the text credits


def number(digits: str, suffix: str | None) -> float:
    value = (
        float(digits.replace(",", "")) if re.fullmatch(r"\d{1,3}(,\d{3})+", digits) else float(digits.replace(",", "."))
    )
    return value * {"k": 1e3, "m": 1e6}.get((suffix or "").lower(), 1)


def accuracy(digits: str, written: str) -> Figure:
    """An accuracy as written: a percentage, or a fraction (0.9952 is 99.52%), with its range."""
    value = as_percent(digits)
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    if float(digits) <= 1:
        decimals -= 2
    unit = 10.0 ** -max(decimals, 0)
    return Figure(value, written.strip(), value - unit / 2, value + unit)


def written_range(digits: str, suffix: str | None) -> tuple[float, float]:
    """The values a written figure stands for: rounded to its last digit, or cut off there."""
    value = number(digits, suffix)
    if not suffix:
        return value, value
    decimals = len(re.split(r"[.,]", digits)[1]) if re.search(r"[.,]\d", digits) else 0
    unit = 10**-decimals * {"k": 1e3, "m": 1e6}[suffix.lower()]
    return value - unit / 2, value + unit


def sentence(text: str, match: re.Match) -> str:
    """The sentence around a match (a full stop ends one, a decimal point does not)."""
    ends = [m.end() for m in SENTENCE_END.finditer(text)]
    start = max((e for e in ends if e <= match.start()), default=0)
    end = min((e for e in ends if e > match.end()), default=len(text))
    return text[start:end].strip(" -*.\n")


def claims_in(text: str) -> Claims:
    claims = Claims()
    if match := PARAMS.search(text):
        digits, suffix = (match[1], match[2]) if match[1] else (match[3], match[4])
        low, high = written_range(digits, suffix)
        claims.params = Figure(round(number(digits, suffix)), match[0].strip(), low, high)
    if match := BEST_TRAIN.search(text):
        claims.best_train = accuracy(match[1], match[0])
    for match in BEST_TEST.finditer(text):
        if not re.search(r"train", match[0], re.I):
            claims.best_test = accuracy(match[1], match[0])
            break
    for match in REACHED.finditer(text):  # "in the 15th epoch" alone is no claim about the target
        if TARGET_WORDS.search(sentence(text, match)):
            claims.reached_epoch = int(match[1] or match[2] or match[3])
            break
    if match := CONSISTENT.search(text):
        claims.consistent = match[1]
    for match in OVERFITTING.finditer(text):
        if not NEGATED.search(text[max(0, match.start() - 40) : match.start()]):
            claims.overfitting = sentence(text, match)
            break
    for match in ACHIEVED.finditer(text):
        if not NOT_ACHIEVED.search(text[max(0, match.start() - 30) : match.start()]):
            claims.achieved = sentence(text, match)
            break
    if match := AUGMENTATION.search(text):
        claims.augmentation = match[1].lower()
    return claims

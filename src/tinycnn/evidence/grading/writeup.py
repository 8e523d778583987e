"""A submission's write-up: its steps, their Target / Result / Analysis texts and the figures they claim.

The Markdown (a README, a notebook's markdown cells) is read with markdown-it into blocks: headings,
paragraphs and list items, tables, code. A step starts at a heading that names a step or a model
(`# Step 2`, `## Step2 (fewer parameters)`, `# Model 3 - [Notebook](...)`, `# Model_3 summary`,
`## Final model`); its parts are headings of any level, or bold or plain labels at the start of a
paragraph or list item (`**Target**:`, `Results:`), and run to the next part or step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markdown_it import MarkdownIt

STEP_HEADING = re.compile(r"\b(?:step|model)[\s_-]*(\d+)\b|\bfinal\s+model\b", re.I)
PART = re.compile(r"^\s*(?:\*\*|__)?\s*(target|results?|analysis)\s*(?::\s*(?:\*\*|__)|(?:\*\*|__)\s*:?|:|$)\s*", re.I)
# Figures in many spellings: 7,712 / 7712 / 7.4k / 6.3M parameters; accuracies with or without %.
NUMBER = r"(\d+(?:[.,]\d+)*)\s*([kKmM])?\b"
PARAMS = re.compile(
    rf"(?:parameters|params)\s*:?\s*(?:count\s*:?\s*)?{NUMBER}|{NUMBER}\s*(?:parameters|params)\b", re.I
)
BEST_TRAIN = re.compile(
    r"best\s+train(?:ing)?(?:\s+acc(?:uracy)?)?\s*(?:\(\w+\))?\s*:?\s*(\d{1,3}(?:\.\d{1,4})?)\s*%?", re.I
)
BEST_TEST = re.compile(
    r"best\s+(?:test|val(?:idation)?)(?:\s+acc(?:uracy)?)?\s*(?:\(\w+\))?\s*:?\s*(\d{1,3}(?:\.\d{1,4})?)\s*%?", re.I
)
REACHED = re.compile(
    r"(?:from|since|at|in|by)\s+(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)?\s+epoch|epoch\s+(\d{1,2})\s+on", re.I
)
CONSISTENT = re.compile(r"\b(consisten\w*|stabl[ey]|reliabl[ey]|every\s+time|always)\b", re.I)


@dataclass
class Block:
    kind: str  # heading, text (a paragraph or list item), table, code
    text: str
    level: int = 0  # a heading's level


@dataclass
class Claims:
    params: int | None = None  # the parameter count claimed (7.4k: 7400)
    params_text: str = ""  # as written, for the evidence line
    params_tolerance: float = 0  # half a unit of the last digit written: 7.4k is 7,350 to 7,450
    best_train: float | None = None
    best_test: float | None = None
    reached_epoch: int | None = None
    consistent: str = ""  # a word claiming consistency ("consistently"), if any


@dataclass
class Step:
    number: int | None  # None: "Final model"
    heading: str
    source: str  # README.md or the notebook it was found in
    parts: dict[str, str] = field(default_factory=dict)  # target, result, analysis

    @property
    def text(self) -> str:
        return self.heading + "\n" + "\n".join(self.parts.values())

    @property
    def claims(self) -> Claims:
        return claims_in(self.parts.get("result", "") + "\n" + self.parts.get("analysis", "") or self.text)


def blocks(markdown: str) -> list[Block]:
    """The Markdown as headings, texts (paragraphs, list items), tables and code, in order."""
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    found, in_table = [], []
    for i, token in enumerate(tokens):
        if token.type == "table_open":
            in_table = [token.map]
        elif token.type == "table_close":
            start, end = in_table[0]
            found.append(Block("table", "\n".join(markdown.splitlines()[start:end])))
            in_table = []
        elif in_table:
            continue
        elif token.type == "inline" and i and tokens[i - 1].type == "heading_open":
            found.append(Block("heading", token.content.strip(), int(tokens[i - 1].tag[1])))
        elif token.type == "inline":
            found.append(Block("text", token.content.strip()))
        elif token.type in ("fence", "code_block"):
            found.append(Block("code", token.content))
    return found


def part_name(label: str) -> str:
    label = label.lower()
    return "result" if label.startswith("result") else label


def steps_in(markdown: str, source: str) -> list[Step]:
    """The steps of a write-up, each with the parts found under it."""
    steps: list[Step] = []
    part = None
    for block in blocks(markdown):
        if block.kind == "heading" and (match := STEP_HEADING.search(block.text)):
            number = int(match[1]) if match[1] else None
            steps.append(Step(number, block.text, source))
            part = None
            continue
        if not steps:
            continue
        step = steps[-1]
        label = PART.match(block.text) if block.kind in ("heading", "text") else None
        if label:
            part = part_name(label[1])
            rest = block.text[label.end() :].strip()
            step.parts[part] = (step.parts.get(part, "") + "\n" + rest).strip()
        elif part and block.kind in ("text", "table"):
            step.parts[part] = (step.parts.get(part, "") + "\n" + block.text).strip()
        elif block.kind == "heading" and block.level <= 2:
            part = None  # another section of the write-up (Receptive field, Logs, ...)
    return steps


def number(digits: str, suffix: str | None) -> float:
    value = (
        float(digits.replace(",", "")) if re.fullmatch(r"\d{1,3}(,\d{3})+", digits) else float(digits.replace(",", "."))
    )
    return value * {"k": 1e3, "m": 1e6}.get((suffix or "").lower(), 1)


def percent(text: str) -> float:
    value = float(text)
    return round(value * 100, 6) if value <= 1 else value  # a fraction: 0.9912 is 99.12%


def claims_in(text: str) -> Claims:
    claims = Claims()
    if match := PARAMS.search(text):
        digits, suffix = (match[1], match[2]) if match[1] else (match[3], match[4])
        claims.params, claims.params_text = round(number(digits, suffix)), match[0].strip()
        if suffix:
            decimals = len(digits.split(".")[1]) if "." in digits else 0
            claims.params_tolerance = 0.5 * 10**-decimals * {"k": 1e3, "m": 1e6}[suffix.lower()]
    if match := BEST_TRAIN.search(text):
        claims.best_train = percent(match[1])
    if match := BEST_TEST.search(text):
        claims.best_test = percent(match[1])
    if match := REACHED.search(text):
        claims.reached_epoch = int(match[1] or match[2])
    if match := CONSISTENT.search(text):
        claims.consistent = match[1]
    return claims

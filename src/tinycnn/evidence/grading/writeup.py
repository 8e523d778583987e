"""A submission's write-up: its steps and their Target / Result / Analysis texts, in the shapes
people write them (a README, a notebook's markdown cells), read with markdown-it.

A step starts at a heading, a paragraph that is bold alone (`**class Model1()**`) or a line of at
most three words, that begins by naming one: `# Step 2`, `## Code-1 - [link]`, `# CODE 5`, `### iter
3`, `Attempt 2`, `Model_3`, `MODULE-1`, `Experiment 4`, `Second model`, `## Final model`. Its parts are
headings of any level, or labels at the start of a paragraph, list item or line (`**Target**:`,
`Results:`, `##TARGET##`), a fenced block after a label included, and run to the next part or step.
Where no heading names steps, each new Target starts the next one. A table with a row per step (`| Model 1 | target | result | analysis |`) gives
each row's step its parts. Parts that stand before any step (a notebook whose last cell holds the
Target / Result / Analysis) are an unnamed step, which the reader ties to that notebook. Links in a
step's heading or text name notebooks; code blocks under a step are pasted logs; receptive fields
written in tables or lines (`RF: 5`, a column `RF`, `r_out`) are kept for the rf rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from markdown_it import MarkdownIt

ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7}
STEP_WORDS = r"step|model|code|iter(?:ation)?|attempt|experiment|exp|version|try|trial|approach|network|net|module|v(?=\d)"
STEP_HEADING = re.compile(
    rf"^[\W_]*(?:\d{{1,2}}[.)]\s*)?(?:class\s+|the\s+)?(?:(?:{STEP_WORDS})[\s_#:.\-]*0*(\d{{1,2}})(?!\d|\.\d|[kKmM]\b)"
    rf"|({'|'.join(ORDINALS)})\s+(?:{STEP_WORDS})\b|(final)\s+(?:{STEP_WORDS}|solution|submission|architecture|design)\b)",
    re.I,
)
BOLD_ALONE = re.compile(r"^(?:\*\*|__)(.+?)(?:\*\*|__)\s*:?$")
PART = re.compile(
    r"^[\s#*_>]*(targets?|results?|analysis|analyses|observations?)\s*(?::\s*(?:\*\*|__)|(?:\*\*|__|#+)\s*:?|:|$)\s*",
    re.I,
)
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?[^)]*\)|(https?://\S+?\.ipynb)\b")
RF_LINE = re.compile(r"\b(?:RF|r_?out|receptive[\s_-]*field)\b[^\d\n]{0,20}?(\d{1,3})\b(?!\s*[x×*]\s*\d)", re.I)
RF_HEADER = re.compile(r"^\s*(?:rf|r_?out|receptive[\s_-]*field|rf[\s_-]*out)\b", re.I)


@dataclass
class Block:
    kind: str  # heading, text (a paragraph or list item), table, code
    text: str
    level: int = 0  # a heading's level


@dataclass
class Step:
    number: int | None  # None: "Final model", or parts with no step heading
    heading: str
    source: str  # README.md or the notebook it was found in
    parts: dict[str, str] = field(default_factory=dict)  # target, result, analysis
    links: list[str] = field(default_factory=list)  # file names its heading and text link to
    logs: str = ""  # code blocks under it (a pasted log)
    rf: list[int] = field(default_factory=list)  # receptive fields written under it
    at: dict[str, int] = field(default_factory=dict)  # {source: the markdown chunk (a notebook's cell) it starts in}
    named: bool = True  # False: parts found with no step heading
    found_in: list[str] = field(default_factory=list)  # other sources that write this step (its notebook)

    @property
    def text(self) -> str:
        return self.heading + "\n" + "\n".join(self.parts.values())


def blocks(markdown: str) -> list[Block]:
    """The Markdown as headings, texts (paragraphs, list items), tables and code, in order."""
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    found, in_table, lines = [], [], markdown.splitlines()
    for i, token in enumerate(tokens):
        if token.type == "table_open":
            in_table = [token.map]
        elif token.type == "table_close":
            start, end = in_table[0]
            found.append(Block("table", "\n".join(lines[start:end])))
            in_table = []
        elif in_table:
            continue
        elif token.type == "inline" and i and tokens[i - 1].type == "heading_open":
            found.append(Block("heading", token.content.strip(), int(tokens[i - 1].tag[1])))
        elif token.type == "inline":
            text = token.content.strip()
            bold = BOLD_ALONE.match(text)
            if bold and STEP_HEADING.match(bold[1]) and not PART.match(text):
                found.append(Block("heading", bold[1].strip(), 4))
            else:
                found.append(Block("text", text))
        elif token.type in ("fence", "code_block"):
            found.append(Block("code", token.content))
    return found


def lines_of(block: Block) -> list[Block]:
    """A paragraph whose lines are labels (`MODULE-1`, then `##TARGET##`, then the text) read line by line."""
    lines = [line for line in block.text.splitlines() if line.strip()]
    if block.kind == "code" and len(lines) == 1 and (PART.match(lines[0]) or short_step(lines[0])):
        block = Block("text", lines[0].strip())  # an indented `##RESULTS##` line: a label, not code
    if block.kind != "text" or len(lines) < 2 or not any(PART.match(line) or short_step(line) for line in lines):
        return [Block("heading", block.text, 4) if block.kind == "text" and short_step(block.text) else block]
    return [Block("heading", line.strip(), 4) if short_step(line) else Block("text", line) for line in lines]


def short_step(line: str) -> bool:
    """A line that is only a step's name (three words at most): `MODULE-1`, `Model 2:`."""
    words = line.strip(" *_#:").split()
    picture = "![" in line or "<img" in line  # a picture's caption names no step the text writes up
    return 0 < len(words) <= 3 and not picture and not line.rstrip().endswith(".") and STEP_HEADING.match(
        line.strip()) is not None


def step_number(text: str) -> tuple[bool, int | None]:
    """(names a step, its number) of a heading's text."""
    match = STEP_HEADING.match(text)
    if not match:
        return False, None
    if match[1]:
        return True, int(match[1])
    return True, ORDINALS[match[2].lower()] if match[2] else None


def part_name(label: str) -> str:
    label = label.lower()
    if label.startswith("result"):
        return "result"
    return "target" if label.startswith("target") else "analysis"


def cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def table_rows(table: str) -> tuple[list[str], list[list[str]]]:
    lines = [line for line in table.splitlines() if line.strip()]
    return (cells(lines[0]), [cells(line) for line in lines[2:]]) if len(lines) > 2 else ([], [])


def plain(cell: str) -> str:
    """A table cell without Markdown emphasis or LaTeX markup: `$\\mathbf{RF}_{\\text{out}}$` is `RF_out`."""
    cell = re.sub(r"\\(?:mathbf|text|mathrm|textbf|mathit)\s*", "", cell)
    return re.sub(r"[*`${}\\]", "", cell).strip(" _")


def last_number(cell: str) -> int | None:
    """The value a cell ends on: `28`, `**28**`, `$1 + (3 - 1) \\times 1 = 3$` (3)."""
    found = re.findall(r"\d{1,3}", plain(cell).split("=")[-1])
    return int(found[-1]) if found else None


def rf_column(header: list[str]) -> list[int]:
    columns = [i for i, h in enumerate(header) if RF_HEADER.match(plain(h))]
    return [i for i in columns if "out" in plain(header[i]).lower()] or columns[-1:]


def rf_in(block: Block) -> list[int]:
    """Receptive fields a block writes: an RF column's values, or `RF: 5` in a line."""
    if block.kind == "table":
        header, rows = table_rows(block.text)
        return [n for row in rows for i in rf_column(header) if i < len(row) and (n := last_number(row[i])) is not None]
    if block.kind in ("text", "code", "heading"):
        return [int(m[1]) for m in RF_LINE.finditer(block.text)]
    return []


class StepReader:
    """Steps read from one source's markdown, fed chunk by chunk (a README whole; a notebook cell by cell)."""

    def __init__(self, source: str):
        self.source = source
        self.steps: list[Step] = []
        self.loose = Step(None, "", source, named=False)  # parts before any step
        self.unnamed: list[Step] = []  # earlier blocks of parts, where no heading names steps
        self.part: str | None = None
        self.rf: list[int] = []  # receptive fields written outside any step

    def feed(self, markdown: str, position: int = 0) -> None:
        for block in blocks(markdown):
            for piece in lines_of(block):
                self.take(piece, position)

    def take(self, block: Block, position: int) -> None:
        names, number = step_number(block.text) if block.kind == "heading" else (False, None)
        if names:
            self.steps.append(Step(number, block.text, self.source, at={self.source: position}))
            self.steps[-1].links += links_in(block.text)
            self.part = None
            return
        if block.kind == "table" and self.rows_as_steps(block, position):
            return
        label = PART.match(block.text) if block.kind in ("heading", "text") else None
        if label and not self.steps and part_name(label[1]) == "target" and self.loose.parts.get("target"):
            self.unnamed.append(self.loose)  # no headings, blocks of Target / Result / Analysis: one a step
            self.loose = Step(None, "", self.source, named=False, at={self.source: position})
        step = self.steps[-1] if self.steps else self.loose
        (step.rf if self.steps else self.rf).extend(rf_in(block))
        step.links += links_in(block.text) if block.kind != "code" else []
        if label:
            self.part = part_name(label[1])
            rest = block.text[label.end() :].strip()
            step.parts[self.part] = (step.parts.get(self.part, "") + "\n" + rest).strip()
        elif block.kind == "code":
            step.logs += block.text + "\n"
            if self.part:  # a part written as a code block (`**Target:**` then ``` 1. ... ```)
                step.parts[self.part] = (step.parts.get(self.part, "") + "\n" + block.text).strip()
        elif self.part and block.kind in ("text", "table"):
            step.parts[self.part] = (step.parts.get(self.part, "") + "\n" + block.text).strip()
        elif block.kind == "heading" and block.level <= 3:
            self.part = None  # another section of the write-up (Receptive field, Logs, ...)

    def rows_as_steps(self, block: Block, position: int) -> bool:
        """A table with a row per step: each row's step, its columns as parts (figures go to Result)."""
        header, rows = table_rows(block.text)
        named = [(row, step_number(row[0])) for row in rows if row]
        if not named or not all(names for _, (names, _) in named) or len(named) < 2:
            return False
        for row, (_, number) in named:
            step = next((s for s in self.steps if s.number == number and number is not None), None)
            if step is None:
                step = Step(number, row[0], self.source, at={self.source: position})
                self.steps.append(step)
            for title, value in zip(header[1:], row[1:]):
                low = title.lower()
                if RF_HEADER.match(plain(title)) and (n := last_number(value)) is not None:
                    step.rf.append(n)
                part = next((p for p in ("target", "result", "analysis") if p in low), None)
                if part is None and re.search(r"observ|remark|learning|insight|finding", low):
                    part = "analysis"
                if part is None and re.search(r"param|acc|epoch|best|test|train|rf|receptive", low):
                    part, value = "result", f"{title}: {value}"
                if part and value:
                    step.parts[part] = (step.parts.get(part, "") + "\n" + value).strip()
            step.links += links_in(" ".join(row))
        return True

    def result(self) -> list[Step]:
        """The steps, one per number (a summary table and the sections below it write the same steps);
        with no step heading, each block of Target / Result / Analysis, numbered in order."""
        if not self.steps:
            found = [s for s in [*self.unnamed, self.loose] if s.parts]
            for n, step in enumerate(found, 1):
                step.number = n if len(found) > 1 else None
            return found
        return merged([], self.steps)


def join(same: Step, step: Step) -> None:
    """Another writing of the same step (its section below a summary table, its notebook's markdown)
    joined into it: texts added part by part, the longer heading kept."""
    for part, text in step.parts.items():
        if text not in same.parts.get(part, ""):
            same.parts[part] = (same.parts.get(part, "") + "\n" + text).strip()
    same.links += step.links
    same.rf += step.rf
    same.logs += step.logs
    same.at.update({k: v for k, v in step.at.items() if k not in same.at})
    if step.source != same.source:
        same.found_in.append(step.source)
    if len(step.heading) > len(same.heading):
        same.heading = step.heading


def merged(steps: list[Step], more: list[Step]) -> list[Step]:
    """`more` added to `steps`: the same number is the same step, its writings joined."""
    for step in more:
        same = next((s for s in steps if s.number is not None and s.number == step.number), None)
        if same is None:
            steps.append(step)
        else:
            join(same, step)
    return steps


def links_in(text: str) -> list[str]:
    return [unquote((m[1] or m[2]).split("#")[0].split("?")[0]).rstrip("/").split("/")[-1] for m in LINK.finditer(text)]


def steps_in(markdown: str, source: str) -> list[Step]:
    """The steps of one write-up, each with the parts found under it."""
    reader = StepReader(source)
    reader.feed(markdown)
    return reader.result()

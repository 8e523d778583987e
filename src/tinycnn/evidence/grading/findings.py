"""What a careful reader notes beside the rules: the Analysis held against the logs (overfitting
claimed while test accuracy stays at or above train accuracy, a target called achieved that the log
does not show, an augmentation credited in a step whose training code has the same transforms as the
step before), how each step was tied to its run, and what one logged run can and cannot show.
Findings inform; they change no rule's verdict.
"""

from __future__ import annotations

import re

from tinycnn.evidence.grading.claims import claims_in
from tinycnn.evidence.grading.rubric import Rubric
from tinycnn.evidence.grading.submission import Graded, Submission

TRANSFORMS = re.compile(r"\b(Random\w+|ColorJitter|GaussianBlur|ElasticTransform|CoarseDropout|Cutout|ShiftScaleRotate|"
                        r"A\.Rotate|Affine)\s*\(")


def code_of(sub: Submission, g: Graded) -> str | None:
    notebook = next((n for n in sub.notebooks if g.run is not None and g.run in n.runs), None)
    return notebook.code if notebook else None


def analysis_findings(sub: Submission, rubric: Rubric) -> list[str]:
    found = []
    for i, g in enumerate(sub.steps):
        c = claims_in(g.step.parts.get("result", "") + "\n" + g.step.parts.get("analysis", ""))
        run = g.run
        if c.overfitting and run and run.train:
            pairs = [(e.train, e.test) for e in run.epochs if e.train is not None]
            if pairs and all(test >= train for train, test in pairs):
                train, test = pairs[-1]
                found.append(f"{g.label} says {c.overfitting!r}, yet its test accuracy is at or above its train "
                             f"accuracy in every logged epoch (last: train {train:.2f}%, test {test:.2f}%)")
        if c.achieved and run and len(run.epochs) >= rubric.scored and min(run.test[-rubric.scored:]) < rubric.target:
            found.append(f"{g.label} says {c.achieved!r}, yet its last {rubric.scored} epochs are "
                         f"{' / '.join(f'{a:.2f}%' for a in run.test[-rubric.scored:])}, not each >= "
                         f"{rubric.target:.2f}%")
        credited = claims_in(g.step.parts.get("target", "") + "\n" + g.step.parts.get("analysis", "")).augmentation
        if credited and i > 0:
            mine, before = code_of(sub, g), code_of(sub, sub.steps[i - 1])
            if mine is not None and before is not None:
                used, used_before = set(TRANSFORMS.findall(mine)), set(TRANSFORMS.findall(before))
                if used == used_before:
                    found.append(f"{g.label} credits {credited!r}, yet its training code has the same transforms as "
                                 f"{sub.steps[i - 1].label}'s ({', '.join(sorted(used)) or 'none'})")
    return found


def notes(sub: Submission, rubric: Rubric, reran: bool) -> list[str]:
    """Every finding and remark, one line each: the analysis against the logs first."""
    lines = analysis_findings(sub, rubric)
    ties = [f"{g.label}: {g.run.where if g.run else 'no run'}" + (f" ({g.tie})" if g.tie else "")
            + (f", model {g.model.label}" if g.model else "") for g in sub.steps]
    if ties:
        lines.append("tied: " + "; ".join(ties))
    claimed = [f"{g.label} says {c!r}" for g in sub.steps if (c := claims_in(g.step.text).consistent)]
    if not reran:
        lines.append("one logged run per step: whether other seeds hold is what --rerun K measures"
                     + (f" ({'; '.join(claimed)})" if claimed else ""))
    if sub.stubbed:
        lines.append(f"measured with stand-ins for libraries tinycnn's environment lacks: {sub.stubbed}")
    return lines

"""A submission's models measured where they can do no harm: built in one sandboxed child per
submission (a notebook class from the module written for it), counted, checked on (N, 1, 28, 28)
images, their receptive field traced. A library the child lacks (torchsummary, albumentations, a
Colab module) is a stand-in there, so the file that imports it at its top is still measured, and the
answer names the stand-ins. Measurements are kept in the user's cache under the SHA-256 of what was
measured (and tinycnn's and torch's versions): grading a class again does not run fifty children again.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version
from pathlib import Path

from tinycnn.evidence.grading.code import ModelRef
from tinycnn.evidence.grading.sandbox import run_isolated
from tinycnn.files import write_json
from tinycnn.train.data import default_data_dir

# Runs in the child, in the copy: each (file, class, arguments) built and measured.
MEASURE = r"""
import importlib.abc, importlib.machinery, json, os, sys, types
from dataclasses import asdict
from pathlib import Path
from tinycnn.models.model import count_parameters
from tinycnn.models.tables import NotTraceableError, receptive_field_facts, receptive_field_table
from tinycnn.models.user_file import check_output, first_line, import_file

class Stub:  # whatever a missing library would have given: callable, any attribute, empty
    def __init__(self, *args, **kwargs): pass
    def __call__(self, *args, **kwargs): return Stub()
    def __getattr__(self, name):
        if name.startswith("__"): raise AttributeError(name)
        return Stub()
    def __iter__(self): return iter(())
    def __mro_entries__(self, bases): return (object,)

class StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"): raise AttributeError(name)
        return Stub()

class Missing(importlib.abc.MetaPathFinder, importlib.abc.Loader):  # last on the path: only what is not there
    stubbed = set()
    def find_spec(self, name, path, target=None):
        frame = sys._getframe(1)
        while frame and frame.f_code.co_filename.startswith("<frozen importlib"):
            frame = frame.f_back
        if frame is None or not os.path.abspath(frame.f_code.co_filename).startswith(os.getcwd()):
            return None  # a library's own optional import: it expects ImportError
        self.stubbed.add(name.split(".")[0])
        return importlib.machinery.ModuleSpec(name, self, is_package=True)
    def create_module(self, spec):
        module = StubModule(spec.name)
        module.__path__ = []
        return module
    def exec_module(self, module): pass

sys.meta_path.append(Missing())
found = []
for file, name, args in json.loads(sys.argv[1]):
    try:
        module = import_file(Path(file).resolve(), f"{file}:{name}")
        if not hasattr(module, name):
            raise LookupError(f"{file} defines no {name}")
        model = eval(f"build({args})", {"build": getattr(module, name)})
        check_output(model, f"{file}:{name}")
    except Exception as e:  # one line: the import, the constructor or the shape
        found.append({"error": str(e).splitlines()[0] if not isinstance(e, TypeError) else first_line(e)})
        continue
    entry = {"params": count_parameters(model)}
    try:
        rows = receptive_field_table(model)
        entry.update(rf=receptive_field_facts(rows).final_rf, rf_rows=[asdict(row) for row in rows])
    except NotTraceableError as e:
        entry["rf_error"] = str(e).splitlines()[0]
    found.append(entry)
print(json.dumps({"models": found, "stubbed": sorted(Missing.stubbed)}))
"""


def cache_path(key: bytes) -> Path:
    digest = hashlib.sha256(
        b"\0".join([key, version("tinycnn").encode(), version("torch").encode(), MEASURE.encode()])
    ).hexdigest()
    return default_data_dir() / "grading" / f"{digest}.json"


def measure_refs(folder: Path, refs: list[ModelRef], seconds: float = 300) -> tuple[dict[ModelRef, dict], str]:
    """({ref: {params, rf, rf_rows} or {error}}, the stand-ins it needed), one child for them all."""
    refs = sorted(set(refs), key=lambda r: (r.file, r.name, r.args))
    if not refs:
        return {}, ""
    requests = [[r.file, r.name, r.args] for r in refs]
    extra = {r.file: r.source for r in refs if r.source}
    files = sorted({r.file for r in refs if not r.source})
    key = json.dumps(requests).encode() + b"".join((folder / f).read_bytes() for f in files if (folder / f).is_file())
    key += b"".join(text.encode() for text in extra.values())
    cached = cache_path(key)
    if cached.is_file():
        answer = json.loads(cached.read_text())
    else:
        ran = run_isolated(MEASURE, folder, [json.dumps(requests)], seconds, extra=extra)
        if not ran.ok:
            return {r: {"error": ran.error} for r in refs}, ""
        answer = ran.output
        write_json(cached, answer)
    return dict(zip(refs, answer["models"])), ", ".join(answer["stubbed"])


def measured_classes(pairs: list[tuple[Path, str]]) -> dict[tuple[Path, str], dict]:
    """Each (model file, class) of a tinycnn project measured, one sandboxed child per file."""
    by_file: dict[Path, list[str]] = {}
    for file, name in pairs:
        by_file.setdefault(file, []).append(name)
    found = {}
    for file, names in by_file.items():
        refs = [ModelRef(name, file.name, f"{file.name}:{name}") for name in sorted(set(names))]
        measured, _ = measure_refs(file.parent, refs)
        found.update({(file, ref.name): measured[ref] for ref in refs})
    return found

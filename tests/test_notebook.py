"""notebooks/quickstart.ipynb runs, headless (nbclient on an ipykernel), on a small subset through its
parameter cell, so it can never go stale; it is committed without outputs."""
import nbformat
from conftest import ROOT
from nbclient import NotebookClient

NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"


def outputs(cell) -> str:
    """Everything a cell showed, as text (text/plain, text/markdown, streams), and its image kinds."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        for kind, value in output.get("data", {}).items():
            parts.append(kind if kind.startswith("image/") else value)
    return "\n".join(parts)


def test_the_quickstart_notebook_runs_on_a_small_subset(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") and not cell.get("execution_count") for cell in notebook.cells
               if cell.cell_type == "code")  # committed without outputs
    parameters = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(parameters) == 1 and "EPOCHS = 15" in parameters[0].source
    parameters[0].source = "EPOCHS = 1\nTRAIN_SUBSET = 6000\nSEED = 0"
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    shown = [outputs(cell) for cell in notebook.cells if cell.cell_type == "code"]
    text = "\n".join(shown)
    assert "Receptive field" in text and "| features.5.0 Conv2d |" in text  # the summary, as a Markdown table
    assert "epoch 1/1" in text or "epoch  1:" in text                        # the progress, then the epoch line
    assert "the three scored epochs: [" in text and "'eval_acc':" in text    # the history, as data
    plotted = next(i for i, cell in enumerate(c for c in notebook.cells if c.cell_type == "code")
                   if cell.source.strip() == "trained.plot()")
    assert "image/png" in shown[plotted]                                      # the curves, inline
    assert "test accuracy " in text and "per digit: 0:" in text
    assert "prediction: " in text
    assert "predictions_equal_to_pytorch=10000" in text
    assert (tmp_path / "quickstart-export" / "c" / "tinycnn_model.c").is_file()
    assert (tmp_path / "quickstart-export" / "onnx" / "model.onnx").is_file()


def test_the_notebook_imports_only_the_public_api():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    assert "from tinycnn import fit, summary, evaluate, predict, export" in code
    assert "tinycnn." not in code  # no module underneath: the notebook is the API's example

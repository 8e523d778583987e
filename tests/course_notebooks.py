"""A final-step notebook shaped like the ones courses hand out, written here in this project's own
words: torchvision datasets and transforms built by a `utils.py` whose data folder is a variable, a
tqdm bar per epoch, torchsummary, a `!pip install` line, `%matplotlib inline`, a `cuda` check, the
template's habit of keeping every loss tensor, and a plotting cell that fails on newer libraries after
training. Two epochs on a subset, so a re-run takes seconds."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

UTILS = '''\
import torch
from torchvision import datasets, transforms

DATA_DIR = "../data"  # the course's folder, spelled as a variable


def loaders(batch_size=128, subset=None, **kwargs):
    train_tf = transforms.Compose([transforms.RandomRotation((-7.0, 7.0), fill=(0,)), transforms.ToTensor(),
                                   transforms.Normalize((0.1307,), (0.3081,))])
    test_tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train = datasets.MNIST(DATA_DIR, train=True, download=True, transform=train_tf)
    test = datasets.MNIST(DATA_DIR, train=False, download=True, transform=test_tf)
    if subset:
        train = torch.utils.data.Subset(train, range(subset))
        test = torch.utils.data.Subset(test, range(subset // 2))
    return (torch.utils.data.DataLoader(train, batch_size=batch_size, shuffle=True, **kwargs),
            torch.utils.data.DataLoader(test, batch_size=batch_size, shuffle=False, **kwargs))
'''

TRAINING = '''\
from tqdm import tqdm
import torch.nn.functional as F

train_losses, test_losses, train_acc, test_acc = [], [], [], []


def train(model, device, loader, optimizer):
    model.train()
    pbar = tqdm(loader)
    correct = processed = 0
    for batch_idx, (data, target) in enumerate(pbar):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        train_losses.append(loss)  # the template keeps the tensor, graph and all
        loss.backward()
        optimizer.step()
        correct += output.argmax(dim=1).eq(target).sum().item()
        processed += len(data)
        pbar.set_description(desc=f"Loss={loss.item()} Batch_id={batch_idx} Accuracy={100 * correct / processed:0.2f}")


def test(model, device, loader):
    model.eval()
    loss = correct = 0
    with torch.no_grad():
        for data, target in loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            loss += F.nll_loss(output, target, reduction="sum").item()
            correct += output.argmax(dim=1).eq(target).sum().item()
    n = len(loader.dataset)
    test_losses.append(loss / n)
    test_acc.append(100.0 * correct / n)
    print(f"\\nTest set: Average loss: {loss / n:.4f}, Accuracy: {correct}/{n} ({100.0 * correct / n:.0f}%)\\n")
'''


def write_course_notebook(folder: Path, model: str = "Model3", epochs: int = 2, subset: int = 2000,
                          utils: str = "utils") -> Path:
    """The final step's notebook at folder/step3.ipynb (a model.py beside it defines `model`), with
    the 15-epoch log its author saved; utils.py beside it builds the loaders."""
    (folder / "utils.py").write_text(UTILS)
    path = folder / "step3.ipynb"
    cells = [
        new_markdown_cell("# Step 3\n\nThe final model, trained as the course's template trains."),
        new_code_cell("!pip install torchsummary\n%matplotlib inline"),
        new_code_cell(f"import torch\nimport torch.optim as optim\nfrom torchsummary import summary\n"
                      f"from {utils} import loaders\nfrom model import {model} as Net"),
        new_code_cell("use_cuda = torch.cuda.is_available()\ndevice = torch.device('cuda' if use_cuda else 'cpu')\n"
                      "torch.manual_seed(1)\nkwargs = {'num_workers': 1, 'pin_memory': True} if use_cuda else {}\n"
                      f"train_loader, test_loader = loaders(128, subset={subset}, **kwargs)"),
        new_code_cell("model = Net().to(device)\nsummary(model, input_size=(1, 28, 28))"),
        new_code_cell(TRAINING),
        new_code_cell(f"optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)\n"
                      f"for epoch in range(1, {epochs + 1}):\n    print('EPOCH:', epoch)\n"
                      f"    train(model, device, train_loader, optimizer)\n    test(model, device, test_loader)",
                      outputs=[new_output("stream", name="stdout", text="".join(
                          f"EPOCH: {e}\nTest set: Average loss: 0.0200, Accuracy: 9950/10000 (99.50%)\n"
                          for e in range(1, 16)))]),
        new_code_cell("import matplotlib.pyplot as plt\nfig, axs = plt.subplots(1, 2)\naxs[0].plot(train_losses)\n"
                      "axs[1].plot(test_acc)"),
    ]
    nbformat.write(new_notebook(cells=cells), path)
    return path

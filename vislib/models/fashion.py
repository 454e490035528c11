"""The classroom network `fashion_cnn`: a small CNN for 28x28 grey Fashion-MNIST pictures.

Its first layer is a 7x7 convolution over ONE grey channel, so its 32 filters are large enough to
read as edge and blob detectors on the First-layer filters page. The zoo hands every network a
[3,S,S] picture; the first convolution averages those three channels itself (a grey picture
replicated three times gives back the grey picture), so its kernels stay [32,1,7,7] and any RGB
picture works too. Trained by `python -m vislib train-fashion`, weights in vislib/models/weights/.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from vislib.models.checkpoints import ModelError
from vislib.models.model import Preprocessing
from vislib.models.registry import Availability, Family, register

NAME = "fashion_cnn"
ASSETS = Path(__file__).resolve().parent / "weights"  # package data: installed with vislib
WEIGHTS = ASSETS / "fashion_cnn.safetensors"
REPORT = ASSETS / "fashion_cnn.json"
MEAN, STD = 0.2860, 0.3530  # of the Fashion-MNIST training pixels in [0, 1]
FIRST_CONV, CLASSIFIER = "conv1", "fc2.weight"


class GreyConv2d(nn.Conv2d):
    """A convolution over one grey channel that accepts an RGB tensor by averaging its channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.mean(1, keepdim=True) if x.shape[1] != 1 else x)


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class FashionCNN(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = GreyConv2d(1, 32, 7, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.relu1 = nn.ReLU(inplace=True)
        self.pool1 = nn.MaxPool2d(2)          # 28 -> 14
        self.conv2 = _block(32, 64)
        self.pool2 = nn.MaxPool2d(2)          # 14 -> 7
        self.conv3 = _block(64, 128)
        self.pool3 = nn.AdaptiveAvgPool2d(3)  # 7 -> 3: keeps where things are, unlike a global average
        self.drop = nn.Dropout(0.3)
        self.fc1 = nn.Linear(128 * 9, 256)
        self.fc2 = nn.Linear(256, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu1(self.bn1(self.conv1(x))))
        x = self.pool2(self.conv2(x))
        x = self.pool3(self.conv3(x)).flatten(1)
        return self.fc2(self.drop(F.relu(self.fc1(self.drop(x)))))


def catalogue(net: nn.Module) -> list[tuple[str, str]]:
    return [("relu1", "conv"), ("pool1", "pool"), ("conv2", "conv"), ("pool2", "pool"), ("conv3", "conv")]


def _tensors(images: np.ndarray) -> torch.Tensor:
    """uint8 [N,28,28] -> the network's normalised input [N,1,28,28] (GreyConv2d takes one channel too)."""
    return torch.from_numpy(images).float().div_(255).sub_(MEAN).div_(STD).unsqueeze(1)


@torch.no_grad()
def accuracy(net: nn.Module, images: np.ndarray, labels: np.ndarray, batch_size: int = 1000) -> float:
    net.eval()
    x, y = _tensors(images), torch.from_numpy(labels)
    right = sum(int((net(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
                for i in range(0, len(x), batch_size))
    return right / len(x)


def train(epochs: int = 6, seed: int = 0, batch_size: int = 128, lr: float = 4e-3,
          progress: Callable | None = None) -> tuple[FashionCNN, dict]:
    """Train on the training split (no augmentation) with AdamW and a one-cycle schedule.

    Reproducible: the seed fixes the initial weights and the batch order (on one device and
    thread count; floating-point sums differ between CPU kernels).
    """
    from vislib.data.collections import fashion_mnist
    train_x, train_y, note = fashion_mnist("train")
    test_x, test_y, _ = fashion_mnist("test")
    torch.manual_seed(seed)
    net = FashionCNN()
    x, y = _tensors(train_x), torch.from_numpy(train_y)
    steps = epochs * (len(x) // batch_size)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=5e-2)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    order = torch.Generator().manual_seed(seed)
    started, cpu_started, step = time.perf_counter(), time.process_time(), 0
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(x), generator=order)
        for i in range(0, len(x) - batch_size + 1, batch_size):
            idx = perm[i:i + batch_size]
            loss = F.cross_entropy(net(x[idx]), y[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            step += 1
            if progress and step % 50 == 0:
                progress(step, steps, loss=loss.item(), epoch=epoch + 1)
    report = {"test_accuracy": accuracy(net, test_x, test_y), "epochs": epochs, "seed": seed,
              "batch_size": batch_size, "max_lr": lr, "threads": torch.get_num_threads(),
              "seconds": round(time.perf_counter() - started, 1),
              "cpu_seconds": round(time.process_time() - cpu_started, 1),  # the work, whatever else ran
              "data": note, "torch": torch.__version__}
    return net.eval(), report


def save(net: nn.Module, report: dict, path: Path = WEIGHTS) -> None:
    from safetensors.torch import save_file
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    path.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")


def load(path: Path = WEIGHTS) -> FashionCNN:
    from safetensors.torch import load_file
    net = FashionCNN()
    net.load_state_dict(load_file(str(path)))
    return net.eval()


# ---------------------------------------------------------------- in the model zoo

class CommittedWeights:
    """The weights trained by `python -m vislib train-fashion`, shipped inside the package."""

    def availability(self) -> Availability:
        if WEIGHTS.exists():
            return Availability("ready", "The project's own classroom network, trained on Fashion-MNIST.")
        return Availability("unavailable", f"{WEIGHTS.name} is missing; run: python -m vislib train-fashion")

    def labels(self) -> list[str]:
        # Imported here: vislib.data imports vislib.models.
        from vislib.data.collections import FASHION_CLASSES
        return list(FASHION_CLASSES)

    def load(self) -> FashionCNN:
        if not WEIGHTS.exists():
            raise ModelError(f"The weights of {NAME} ({WEIGHTS}) are missing; run: python -m vislib train-fashion")
        return load(WEIGHTS)


# A 28x28 input, and the Fashion-MNIST normalisation on every channel (GreyConv2d averages them).
FAMILY = register(Family(
    name=NAME, build=FashionCNN, catalogue=catalogue, first_conv=FIRST_CONV, classifier=CLASSIFIER,
    preprocessing=lambda: Preprocessing(28, 28, "bilinear", (MEAN,) * 3, (STD,) * 3), weights=CommittedWeights()))

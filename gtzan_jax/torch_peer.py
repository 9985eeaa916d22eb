"""The paper's VGG in PyTorch, layer for layer the same as `gtzan_jax.models.VGG`.

Used only by `gtzan_jax.benchmark` as a speed reference on the same machine,
batch and dtype: per-band input normalisation, (3x3 conv without bias -
BatchNorm - ReLU) x convs_per_block and a 2x2 max-pool per width, global
average pooling, dropout and a dense layer to the logits. PyTorch's BatchNorm
momentum 0.1 is Flax's 0.9. Needs the `bench` extra (torch).
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import torch
from torch import nn


class VGG(nn.Module):
  """[batch, mels, frames] log-mels -> [batch, num_classes] logits."""

  def __init__(self, widths: Sequence[int] = (32, 64, 128, 256), convs_per_block: int = 2,
               dropout_rate: float = 0.0, num_classes: int = 10, n_mels: int = 128):
    super().__init__()
    self.register_buffer('band_mean', torch.zeros(n_mels, 1))
    self.register_buffer('band_var', torch.ones(n_mels, 1))
    layers, channels = [], 1
    for width in widths:
      for _ in range(convs_per_block):
        layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False),
                   nn.BatchNorm2d(width, eps=1e-5, momentum=0.1), nn.ReLU(inplace=True)]
        channels = width
      layers.append(nn.MaxPool2d(2))
    self.features = nn.Sequential(*layers)
    self.dropout = nn.Dropout(dropout_rate)
    self.head = nn.Linear(channels, num_classes)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    x = (x - self.band_mean) * torch.rsqrt(self.band_var + 1e-3)
    x = self.features(x[:, None])  # [B, 1, mels, frames]
    return self.head(self.dropout(x.mean(dim=(2, 3))))


def num_params(model: nn.Module) -> int:
  return sum(p.numel() for p in model.parameters())


def make_train_timer(widths: Sequence[int], batch_size: int, steps: int, *,
                     seed: int = 0) -> tuple[Callable[[], float], int]:
  """A timer of `steps` Adam steps on one random batch, returning examples/s, and the parameter count.

  Two warm-up steps run first. PyTorch uses as many threads as torch.set_num_threads allows.
  """
  torch.manual_seed(seed)
  model = VGG(widths).train()
  optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
  mel = torch.randn(batch_size, 128, 173)
  label = torch.randint(0, 10, (batch_size,))

  def step() -> None:
    optimizer.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(mel), label).backward()
    optimizer.step()

  def timer() -> float:
    start = time.perf_counter()
    for _ in range(steps):
      step()
    return steps * batch_size / (time.perf_counter() - start)

  for _ in range(2):
    step()
  return timer, num_params(model)

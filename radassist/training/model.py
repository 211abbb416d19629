"""The networks: a compact CNN classifier (what ships as ONNX) and the radiomics branch (training only).

The classifier's head is ONE linear layer from the pooled embedding to the logits, and the same weights
applied to the last feature map before pooling give the class activation maps; so mean(cam) == logits
exactly, and `radassist finetune` can refit the head and the temperature in numpy by rewriting the ONNX
initializers "head.weight", "head.bias" and "temperature".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

WIDTHS = (24, 32, 64, 128, 256)  # stem, then four residual stages; the last is the embedding size


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a projected shortcut when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class Encoder(nn.Module):
    """Stride-16 CNN: a 160 px input gives a 10 x 10 feature map (the CAM grid)."""

    def __init__(self, widths: tuple[int, ...] = WIDTHS):
        super().__init__()
        stem, *stages = widths
        self.stem = nn.Sequential(nn.Conv2d(1, stem, 5, 2, 2, bias=False), nn.BatchNorm2d(stem),
                                  nn.ReLU(inplace=True))
        strides = (2, 2, 2, 1)
        blocks, channels = [], stem
        for width, stride in zip(stages, strides, strict=True):
            blocks.append(ResidualBlock(channels, width, stride))
            channels = width
        self.stages = nn.Sequential(*blocks)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


class Classifier(nn.Module):
    """Image [N,1,S,S] -> (probabilities, logits, cam, embedding); exported to ONNX as is."""

    def __init__(self, num_labels: int, widths: tuple[int, ...] = WIDTHS, dropout: float = 0.2):
        super().__init__()
        self.encoder = Encoder(widths)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.encoder.out_channels, num_labels)
        self.register_buffer("temperature", torch.ones(num_labels))

    def features(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feature_map = self.encoder(image)
        return feature_map, feature_map.mean(dim=(2, 3))

    def forward(self, image: torch.Tensor):
        feature_map, embedding = self.features(image)
        logits = self.head(self.dropout(embedding))
        # bias added on the last axis before the transpose: no reshaped copy of head.bias ends up in the ONNX
        cam = (torch.einsum("ndhw,ld->nhwl", feature_map, self.head.weight) + self.head.bias).permute(0, 3, 1, 2)
        probabilities = torch.sigmoid(logits / self.temperature)
        return probabilities, logits, cam, embedding


class RadiomicsBranch(nn.Module):
    """Training only: an MLP over standardised radiomics, and the two projection heads that meet in
    the InfoNCE loss (image embedding <-> radiomics embedding of the same image)."""

    def __init__(self, num_features: int, embedding_size: int, hidden: int = 128, projection: int = 64):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(num_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                 nn.Dropout(0.1), nn.Linear(hidden, hidden), nn.ReLU(inplace=True))
        self.radiomics_projection = nn.Linear(hidden, projection)
        self.image_projection = nn.Sequential(nn.Linear(embedding_size, hidden), nn.ReLU(inplace=True),
                                              nn.Linear(hidden, projection))

    def forward(self, embedding: torch.Tensor, radiomics: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        image = F.normalize(self.image_projection(embedding), dim=1)
        features = F.normalize(self.radiomics_projection(self.mlp(radiomics)), dim=1)
        return image, features


def info_nce(image: torch.Tensor, radiomics: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE: each image's positive is its own radiomics vector, the batch's others are
    negatives (and the same the other way round)."""
    similarity = image @ radiomics.t() / temperature
    target = torch.arange(image.shape[0], device=image.device)
    return 0.5 * (F.cross_entropy(similarity, target) + F.cross_entropy(similarity.t(), target))

"""The baseline a user would pick instead: TorchXRayVision's DenseNet-121 (1 input channel, 18 outputs,
224x224), built here with random weights (no weights can be downloaded; only speed is compared).

Same layer layout as torchvision's densenet121 (growth 32, blocks 6/12/24/16, 64 initial features,
bottleneck 4x), which is what TorchXRayVision's `DenseNet(weights=...)` wraps.
"""

from __future__ import annotations

import torch
from torch import nn


class _DenseLayer(nn.Module):
    def __init__(self, channels: int, growth: int, bottleneck: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            nn.Conv2d(channels, bottleneck * growth, 1, bias=False),
            nn.BatchNorm2d(bottleneck * growth), nn.ReLU(inplace=True),
            nn.Conv2d(bottleneck * growth, growth, 3, padding=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], 1)


def _transition(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                         nn.Conv2d(channels, channels // 2, 1, bias=False), nn.AvgPool2d(2, 2))


class DenseNet121(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 18, growth: int = 32,
                 blocks: tuple[int, ...] = (6, 12, 24, 16), init_features: int = 64, bottleneck: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, init_features, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(init_features), nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1),
        ]
        channels = init_features
        for index, count in enumerate(blocks):
            for _ in range(count):
                layers.append(_DenseLayer(channels, growth, bottleneck))
                channels += growth
            if index != len(blocks) - 1:
                layers.append(_transition(channels))
                channels //= 2
        layers += [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1)
        return torch.sigmoid(self.classifier(pooled))


def baseline_model() -> DenseNet121:
    torch.manual_seed(0)
    return DenseNet121().eval()


if __name__ == "__main__":
    model = baseline_model()
    print(sum(p.numel() for p in model.parameters()), "parameters")
    with torch.inference_mode():
        print(model(torch.zeros(1, 1, 224, 224)).shape)

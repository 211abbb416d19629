"""The anatomy segmentation network, its augmentation and loss (torch; [train] extra only).

Why this shape: a U-Net is the standard for lung fields, but on a shared 2-core CPU the full-resolution
levels dominate the cost. A stride-2 stem lets the U-Net work at half the grid (128 px for a 256 grid)
and the logits are upsampled bilinearly; lung outlines are smooth, so little is lost, and the ONNX stays
well under 5 MB.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from radassist.imaging.lungs import HEART, MODEL_LABELS
from radassist.training.lungseg_data import UNKNOWN_BACKGROUND

CLASSES = len(MODEL_LABELS)  # background, right lung, left lung, heart (UNKNOWN_BACKGROUND == CLASSES)
LESION_CHANNEL = CLASSES  # one more logit: lesion (sigmoid, independent of the anatomy softmax)
MIRRORED_SHARE = 0.5  # share of training images mirrored left-right for the lesion output (see `augment`)


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class LungUNet(nn.Module):
    """Stride-2 stem, U-Net over `channels` levels, logits upsampled back to the input grid."""

    def __init__(self, channels: tuple[int, ...] = (8, 16, 32, 64, 96)) -> None:
        super().__init__()
        self.channels = channels
        self.stem = nn.Sequential(
            nn.Conv2d(1, channels[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(channels[0]),
            nn.ReLU(inplace=True),
        )
        self.encoder = nn.ModuleList(
            _conv_block(c_in, c_out) for c_in, c_out in zip((channels[0],) + channels[:-1], channels, strict=True))
        self.decoder = nn.ModuleList(
            _conv_block(channels[k + 1] + channels[k], channels[k]) for k in range(len(channels) - 1))
        self.head = nn.Conv2d(channels[0], CLASSES + 1, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(N, 1, S, S) in [0, 1] -> logits (N, CLASSES + 1, S, S): anatomy, then lesion; S must be divisible by 2 ** len(channels)."""
        x = self.stem(image)
        skips = []
        for level, block in enumerate(self.encoder):
            if level:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        for level in range(len(self.decoder) - 1, -1, -1):
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = self.decoder[level](torch.cat([x, skips[level]], dim=1))
        return F.interpolate(self.head(x), scale_factor=2, mode="bilinear", align_corners=False)


class WithSoftmax(nn.Module):
    """What is exported: probabilities, so the ONNX outputs mean the same in every host: the anatomy
    softmax (N, CLASSES, S, S) and the lesion probability (N, 1, S, S)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.net(image)
        return torch.softmax(logits[:, :LESION_CHANNEL], dim=1), torch.sigmoid(logits[:, LESION_CHANNEL:])


def _uniform(generator: torch.Generator, count: int, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(count, generator=generator)


def augment(images: torch.Tensor, targets: torch.Tensor, lesions: torch.Tensor, generator: torch.Generator
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random geometry and contrast for a batch: images (N, 1, S, S), targets (N, S, S) long, lesion
    shares (N, S, S) float (warped like the image). Also returns `teaches_anatomy` (N,) bool.

    Half of the images are mirrored left-right for the lesion output only (`teaches_anatomy` False): the
    training lesions lie more often in the patient's right lung (JSRT nodules 77 right, 48 left), and an
    unmirrored lesion output learnt that as "lesions are on the image's left". A mirrored film would
    teach the anatomy output that the right lung can sit on the image's right, so the anatomy loss skips
    those images. Besides that: small rotations, zoom/aspect/shift (film framing, cropped borders), gamma
    and contrast (exposure, processing), blur (low-resolution journal figures) and noise.
    """
    count, _, size, _ = images.shape
    mirrored = torch.rand(count, generator=generator) < MIRRORED_SHARE
    images[mirrored] = images[mirrored].flip(-1)
    lesions[mirrored] = lesions[mirrored].flip(-1)
    gamma = torch.exp(_uniform(generator, count, math.log(0.6), math.log(1.6))).view(-1, 1, 1, 1)
    contrast = _uniform(generator, count, 0.75, 1.15).view(-1, 1, 1, 1)
    images = (images.clamp(0.0, 1.0) ** gamma) * contrast
    blur_factor = _uniform(generator, count, 1.0, 4.0)
    for index in torch.nonzero(torch.rand(count, generator=generator) < 0.3).flatten().tolist():
        small = max(8, int(size / float(blur_factor[index])))
        low = F.interpolate(images[index:index + 1], size=(small, small), mode="area")
        images[index:index + 1] = F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
    noise_level = _uniform(generator, count, 0.0, 0.03).view(-1, 1, 1, 1)
    images = (images + noise_level * torch.randn(images.shape, generator=generator)).clamp(0.0, 1.0)

    angle = torch.deg2rad(_uniform(generator, count, -10.0, 10.0))
    scale = torch.exp(_uniform(generator, count, math.log(0.8), math.log(1.2)))
    aspect = torch.exp(_uniform(generator, count, -0.1, 0.1))
    shift = _uniform(generator, 2 * count, -0.1, 0.1).view(count, 2)
    theta = torch.zeros(count, 2, 3)
    theta[:, 0, 0] = scale * aspect * torch.cos(angle)
    theta[:, 0, 1] = -scale * torch.sin(angle)
    theta[:, 1, 0] = scale * aspect * torch.sin(angle)
    theta[:, 1, 1] = scale * torch.cos(angle)
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    one_hot = F.one_hot(targets, CLASSES + 1).permute(0, 3, 1, 2).float()
    one_hot = F.grid_sample(one_hot, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    lesions = F.grid_sample(lesions.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # outside the image all classes are 0 -> background
    return images, one_hot.argmax(dim=1), lesions[:, 0], ~mirrored


def segmentation_loss(logits: torch.Tensor, targets: torch.Tensor, lesions: torch.Tensor,
                      teaches_anatomy: torch.Tensor) -> torch.Tensor:
    """Anatomy loss (on the images in `teaches_anatomy`) plus lesion loss (on all)."""
    loss = lesion_loss(logits[:, LESION_CHANNEL], lesions)
    if teaches_anatomy.any():
        loss = loss + anatomy_loss(logits[teaches_anatomy, :LESION_CHANNEL], targets[teaches_anatomy])
    return loss


def lesion_loss(logits: torch.Tensor, lesions: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the lesion logit (N, S, S) against the lesion share, plus soft Dice on the
    images that hold a lesion: BCE alone lets a small nodule vanish in the background."""
    cross_entropy = F.binary_cross_entropy_with_logits(logits, lesions)
    has_lesion = lesions.flatten(1).amax(dim=1) >= 0.5
    if not has_lesion.any():
        return cross_entropy
    probabilities = torch.sigmoid(logits[has_lesion])
    truth = lesions[has_lesion]
    dice = (2 * (probabilities * truth).sum(dim=(1, 2)) + 1.0) / (probabilities.sum(dim=(1, 2)) + truth.sum(dim=(1, 2)) + 1.0)
    return cross_entropy + (1.0 - dice.mean())


def anatomy_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy plus soft Dice of the lungs and the heart: CE alone under-weights thin lung edges
    and apices.

    Partial labels: a UNKNOWN_BACKGROUND pixel (a source without heart masks) scores the probability of
    "background or heart", so such images teach the lungs without teaching "the heart is background";
    the heart Dice counts only images whose heart is annotated."""
    log_probabilities = torch.log_softmax(logits, dim=1)
    either = torch.logsumexp(log_probabilities[:, [0, HEART]], dim=1, keepdim=True)
    cross_entropy = F.nll_loss(torch.cat([log_probabilities, either], dim=1), targets)
    probabilities = log_probabilities.exp()[:, 1:]
    truth = F.one_hot(targets, CLASSES + 1).permute(0, 3, 1, 2).float()[:, 1:CLASSES]
    overlap = (probabilities * truth).sum(dim=(2, 3))
    total = probabilities.sum(dim=(2, 3)) + truth.sum(dim=(2, 3))
    dice = (2 * overlap + 1.0) / (total + 1.0)  # (N, CLASSES - 1): right lung, left lung, heart
    heart_annotated = ~(targets == UNKNOWN_BACKGROUND).flatten(1).any(dim=1)
    lung_dice = dice[:, :HEART - 1].mean()
    if heart_annotated.any():
        return cross_entropy + (1.0 - 0.5 * (lung_dice + dice[heart_annotated, HEART - 1].mean()))
    return cross_entropy + (1.0 - lung_dice)

"""Train the anatomy segmentation model (right lung, left lung, heart) from scratch, export it to ONNX,
score it, write its card.

One command reproduces models/lungseg.onnx, models/lungseg.card.json and models/lungseg.md (the file
names stay those of the lung model it replaces: every host loads it as the "lungseg" model):

    .venv/bin/python -m radassist.training.lungseg_train --data /work/shared/data --out models/

Data: jsrt (SCR right/left lung and heart masks), covid_cxr_seg (radiologist right/left lung masks and
cardiomediastinal silhouettes) and covid_qu_ex_sample (lung masks), split by patient (seeded, --split-seed);
the validation images are scored through the runtime path and listed in the card. Every batch adds nih14
"No Finding" adult films that teach the lesion output only (lungseg_data.find_lesion_negatives). A
checkpoint every 100 steps (--checkpoint) lets an interrupted run resume where it stopped, with the same
result.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

import numpy as np
import torch

from radassist.imaging.lungs import HEART, MODEL_LABELS
from radassist.inference.engine import sha256_of
from radassist.training.lungseg_data import (
    CXR_SEG,
    JSRT,
    NIH,
    QU_EX,
    find_cases,
    find_lesion_negatives,
    load_arrays,
    load_negative_inputs,
    split_by_patient,
)
from radassist.training.lungseg_evaluate import evaluate
from radassist.training.lungseg_net import LESION_CHANNEL, LungUNet, WithSoftmax, augment, segmentation_loss

log = logging.getLogger("radassist.training.lungseg")

MODEL_ID = "anatomy-unet-v5"
COMMAND = ".venv/bin/python -m radassist.training.lungseg_train --data /work/shared/data --out models/"
LICENCES = {
    CXR_SEG: "repository CC BY 4.0; images per labels.csv image_license: CC BY-NC-SA 4.0 (non-commercial), "
             "CC BY, CC BY-SA, and many not stated (see covid_cxr_seg/SOURCE.md)",
    QU_EX: "not stated by the source repository (COVID-QU-Ex, Kaggle anasmohammedtahir/covidqu; "
           "not checked here)",
    JSRT: "JSRT database and SCR masks: the data owners' terms, research and education use only "
          "(neither source repository states a licence; see jsrt/SOURCE.md)",
    NIH: "NIH ChestX-ray14 (NIH Clinical Center): no restrictions on use, citation of Wang et al., CVPR 2017 "
         "and acknowledgement of the NIH Clinical Center asked (see nih14/SOURCE.md); lesion negatives only",
}
LIMITS = [
    "Trained from scratch on about 240 adult frontal radiographs (digitised 1990s PA films with and without "
    "a nodule, COVID-19, other pneumonias, ARDS, normal), plus about 410 normal NIH films for the lesion "
    "output only: children, lateral views, rotated or inverted films are outside what it has seen.",
    "The heart outline was learnt from the JSRT/SCR masks (PA films) and the lower part of covid_cxr_seg's "
    "cardiomediastinal silhouettes (its training films: COVID-19 and other pneumonias, mostly PA); on supine "
    "films and with large effusions hiding the heart border it is less reliable, and where no heart is found "
    "no CTR is given.",
    "The lung masks follow the visible lung (SCR convention) and stop at the heart and diaphragm borders: "
    "lung behind the heart or below the dome is not included.",
    "Dense consolidation or a large effusion can be left out of the lung field; holes inside a lung are "
    "filled, but a field cut off at its edge is not restored.",
    "Left/right follows the image layout of a standard PA/AP display (patient's right on the image left); "
    "a horizontally flipped image gets swapped labels.",
    "Some training images are CC BY-NC-SA (non-commercial) and the JSRT/SCR terms are research and "
    "education only: these weights are not for commercial use.",
    "Research use only; not validated for clinical use.",
]


def train(inputs: np.ndarray, targets: np.ndarray, lesions: np.ndarray, negatives: np.ndarray,
          validation: tuple[np.ndarray, np.ndarray, np.ndarray],
          steps: int, batch_size: int, negatives_per_batch: int, learning_rate: float, seed: int,
          checkpoint: Path) -> LungUNet:
    """AdamW with a one-cycle schedule for a fixed number of steps (no checkpoint picked on validation,
    so the validation score stays an honest estimate). A batch is `batch_size` annotated images plus
    `negatives_per_batch` lesion negatives (inputs only: no lesion, no anatomy taught). Every 100 steps
    the whole training state goes to `checkpoint`; a run started with the same arguments resumes from it."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    net = LungUNet()
    optimiser = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=learning_rate, total_steps=steps,
                                                   pct_start=0.1)
    first_step = 1
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        net.load_state_dict(state["net"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        first_step = state["step"] + 1
        log.info("resuming from %s at step %d", checkpoint, first_step)
    nothing = np.zeros((len(negatives), *targets.shape[1:]), dtype=np.float32)  # no lesion; anatomy not taught
    images = torch.from_numpy(np.concatenate([inputs, negatives])).unsqueeze(1)
    labels = torch.from_numpy(np.concatenate([targets, nothing.astype(targets.dtype)])).long()
    lesion_shares = torch.from_numpy(np.concatenate([lesions, nothing]))
    annotated = torch.arange(len(images)) < len(inputs)
    start = time.perf_counter()
    for step in range(first_step, steps + 1):
        net.train()
        chosen = torch.cat([torch.randint(0, len(inputs), (batch_size,), generator=generator),
                            len(inputs) + torch.randint(0, len(negatives), (negatives_per_batch,), generator=generator)])
        batch_images, batch_labels, batch_lesions, unmirrored = augment(
            images[chosen].clone(), labels[chosen], lesion_shares[chosen].clone(), generator)
        loss = segmentation_loss(net(batch_images), batch_labels, batch_lesions, unmirrored & annotated[chosen])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % 100 == 0 or step == steps:
            lung, heart, lesion = grid_dice(net, *validation)
            log.info("step %d/%d loss %.4f grid Dice (validation, monitoring only) lungs %.4f heart %.4f "
                     "lesion %.4f  %.0f s", step, steps, loss.item(), lung, heart, lesion, time.perf_counter() - start)
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"net": net.state_dict(), "optimiser": optimiser.state_dict(),
                        "schedule": schedule.state_dict(), "generator": generator.get_state(),
                        "torch_rng": torch.get_rng_state(), "step": step}, checkpoint)
    return net.eval()


@torch.no_grad()
def grid_dice(net: LungUNet, inputs: np.ndarray, targets: np.ndarray, lesions: np.ndarray
              ) -> tuple[float, float, float]:
    """Mean Dice of the lung union, of the heart (images with a heart mask) and of the lesion (images with
    one) on the model grid: a cheap progress signal, not the reported metric."""
    net.eval()
    logits = net(torch.from_numpy(inputs).unsqueeze(1))
    predicted = logits[:, :LESION_CHANNEL].argmax(dim=1).numpy()
    lesion_found = logits[:, LESION_CHANNEL].numpy() > 0

    def mean_dice(found: np.ndarray, truth: np.ndarray) -> float:
        if len(truth) == 0:
            return 0.0
        overlap = (found & truth).sum(axis=(1, 2))
        return float(np.mean(2 * overlap / (found.sum(axis=(1, 2)) + truth.sum(axis=(1, 2)) + 1e-9)))

    lungs = mean_dice((predicted > 0) & (predicted < HEART), (targets > 0) & (targets < HEART))
    with_heart = (targets == HEART).any(axis=(1, 2))
    with_lesion = (lesions >= 0.5).any(axis=(1, 2))
    return (lungs, mean_dice(predicted[with_heart] == HEART, targets[with_heart] == HEART),
            mean_dice(lesion_found[with_lesion], lesions[with_lesion] >= 0.5))


def export_onnx(net: LungUNet, path: Path, sample: np.ndarray) -> float:
    """Single-file ONNX: input "image" [N,1,S,S], outputs "probabilities" [N,4,S,S] (anatomy softmax) and
    "lesion" [N,1,S,S]; returns the max abs difference to torch on `sample` run through onnxruntime."""
    import onnxruntime as ort

    wrapped = WithSoftmax(net).eval()
    example = torch.from_numpy(sample).unsqueeze(1)
    outputs = ["probabilities", "lesion"]
    # The TorchScript exporter writes one self-contained file and needs no onnxscript.
    torch.onnx.export(
        wrapped, (example[:1],), str(path), input_names=["image"], output_names=outputs,
        dynamic_axes={"image": {0: "batch"}, **{name: {0: "batch"} for name in outputs}}, opset_version=17,
        dynamo=False,
    )
    with torch.no_grad():
        expected = [tensor.numpy() for tensor in wrapped(example)]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    actual = session.run(outputs, {"image": example.numpy()})
    return max(float(np.abs(a - e).max()) for a, e in zip(actual, expected, strict=True))


def card_for(onnx_path: Path, size: int, training: dict, export: dict) -> dict:
    return {
        "model_id": MODEL_ID,
        "file": onnx_path.name,
        "sha256": sha256_of(onnx_path),
        "task": "lung_segmentation",
        "inputs": {"image": f"[N, 1, {size}, {size}] float32 in [0, 1], see preprocessing"},
        "outputs": {"probabilities": f"[N, {len(MODEL_LABELS)}, {size}, {size}] float32 softmax over labels",
                    "lesion": f"[N, 1, {size}, {size}] float32 sigmoid: probability of a lung lesion "
                              "(consolidation, ground-glass opacity, infection, nodule) at each grid cell"},
        "labels": list(MODEL_LABELS),
        "label_convention": "right_lung = patient's right, on the image's left in a standard PA/AP display; "
                            "lungs = the visible lung (SCR convention: the retrocardiac lung and the lung "
                            "below the diaphragm dome are not lung); heart = the cardiac silhouette",
        "preprocessing": {
            "function": "radassist.imaging.lungs.model_input",
            "input_size": size,
            "window": "radassist.imaging.windowing.normalized_for_model (DICOM default window, else "
                      "0.5-99.5 percentile window) to [0, 1]",
            "fit": "scaled to fit the square grid with the aspect kept, centred, zero padding; "
                   "Pillow bilinear (antialiased) resampling",
        },
        "postprocessing": {
            "function": "radassist.imaging.lungs.lung_fields_from_probabilities",
            "lung": "P(right) + P(left) > 0.5; side = more probable of right/left",
            "heart": "P(heart) the largest of the labels; the largest piece, holes filled",
            "cleaning": "per side: largest piece + pieces >= 20 % of it, pieces < 0.2 % of the grid dropped, "
                        "holes filled; two pieces on one side and none on the other are split by position",
            "resampling": "cleaned masks carried through the lung probability, bilinear to image size, "
                          "threshold 0.5",
        },
        "training": training,
        "export": export,
        "intended_use": "research use, not a medical device",
        "limits": LIMITS,
    }


def write_model_note(path: Path, card: dict) -> None:
    """models/lungseg.md: the card's numbers in prose, regenerated with every training run."""
    metrics, training, export = card["metrics"], card["training"], card["export"]
    low, high = metrics["dice_ci95"]
    heart_low, heart_high = metrics["heart_dice_ci95"]
    side_low, side_high = metrics["side_dice_ci95"]
    ctr_low, ctr_high = metrics["ctr_mean_absolute_error_ci95"]
    sources = ", ".join(f"{name} {value:.3f}" for name, value in metrics["dice_by_source"].items())
    limits = "\n".join(f"- {limit}" for limit in card["limits"])
    size = card["preprocessing"]["input_size"]
    localisation = card.get("localisation", {}).get("text", "Not measured for this version.")
    measured = ", ".join(f"{name} {share:.0%}" for name, share in metrics["ctr_measured_share_by_source"].items())
    if metrics["ctr_silhouette_mean_absolute_error"] is None:
        silhouette = "no validation image got a CTR."
    else:
        sil_low, sil_high = metrics["ctr_silhouette_mean_absolute_error_ci95"]
        silhouette = (f"mean absolute error against the widest row of the cardiomediastinal silhouette "
                      f"**{metrics['ctr_silhouette_mean_absolute_error']:.4f}** (95 % CI {sil_low:.4f}-{sil_high:.4f}, "
                      f"n = {metrics['n_val_ctr_silhouette']}, the images where the read measures one).")
    path.write_text(f"""# Anatomy segmentation model `{card['model_id']}` (file `{card['file']}`)

Research use, not a medical device.

## What it does
Labels each pixel of a frontal chest radiograph as background, right lung (the patient's right, on the
image's left), left lung or heart, and gives a separate lesion probability (consolidation, ground-glass
opacity, infection, nodule). `radassist.imaging.lungs.segment_lungs` turns the output into two lung fields
and the heart at the image's own size (lung labels 0/1/2 for every caller, the heart as its own mask),
with boxes and upper/middle/lower zones; `radassist.imaging.ctr.measure_ctr` measures the cardiothoracic
ratio from them; the lesion output steers where the read's saliency points; `radassist segment --out-dir`
writes one mask per structure. Lung convention: the visible lung (SCR): the lung behind the heart and
below the diaphragm dome is not lung. Clavicles are not segmented (they overlap the lungs, and a pixel
here has one anatomy label).

## Network
A small U-Net trained from scratch: {training['parameters']:,} parameters, stride-2 stem, levels
{training['architecture']['channels']}, softmax anatomy output + sigmoid lesion output. ONNX opset
{export['opset']}, {export['size_bytes'] / 1e6:.1f} MB, input {size} x {size} (aspect kept, zero padding).
Largest difference between the ONNX and torch outputs: {export['onnx_vs_torch_max_abs_diff']:.1e}.

## Data
{training['n_train']} training and {metrics['n_val']} validation images ({metrics['n_val_patients']}
patients), split by patient per source with seed {training['split_seed']}: jsrt (SCR right/left lung and heart
masks; 200 PA films, one per patient), covid_cxr_seg (radiologist right/left lung masks; the 2 images with
one lung annotated are left out) and covid_qu_ex_sample (lung masks; each image its own patient). The heart
is learnt from jsrt's heart masks and from covid_cxr_seg's cardiomediastinal silhouette: its rows from the
first one at least 3/4 of its widest width down are heart, the mediastinum above is "background or heart"
(lungseg_data.silhouette_parts), as is the background of covid_qu_ex_sample. covid_cxr_seg's lungs are drawn
through the heart; the silhouette is taken out of them (the visible-lung convention), in training and scoring.
Lesion targets: {training['lesion_targets']}. Augmentation: {training['augmentation']}; {training['steps']}
steps of {training['batch_size']} images. Licences are in the card (`training.data`): JSRT/SCR are
research and education only, some covid_cxr_seg images are CC BY-NC-SA.

## Validation (held-out patients, runtime path, each image at its own size)
- Lungs (right ∪ left): Dice **{metrics['dice']:.3f}** (95 % CI {low:.3f}-{high:.3f}, bootstrap over
  patients, n = {metrics['n_val']}; median {metrics['dice_median']:.3f}, worst {metrics['dice_min']:.3f};
  by source: {sources}). Goal 0.93.
- Each side (right lung and left lung Dice, averaged; images with both sides annotated): **{metrics['side_dice']:.3f}**
  (95 % CI {side_low:.3f}-{side_high:.3f}, n = {metrics['n_val_side']}, worst {metrics['side_dice_min']:.3f}).
  A lung piece labelled with the wrong side lowers this, not the union Dice above.
- Heart (jsrt): Dice **{metrics['heart_dice']:.3f}** (95 % CI {heart_low:.3f}-{heart_high:.3f},
  n = {metrics['n_val_heart']}; worst {metrics['heart_dice_min']:.3f}). Goal 0.90.
- Cardiothoracic ratio (jsrt): mean absolute error against the CTR of the SCR masks
  **{metrics['ctr_mean_absolute_error']:.4f}** (95 % CI {ctr_low:.4f}-{ctr_high:.4f},
  n = {metrics['n_val_ctr']}, largest {metrics['ctr_absolute_error_max']:.4f}). Goal 0.03.
- Cardiothoracic ratio (covid_cxr_seg): {silhouette}
- Share of validation images a read measures a CTR on (a heart and both lungs found, ratio plausible): {measured}.
- Localisation: {localisation}

No checkpoint was picked on the validation set.

## Speed
{metrics['runtime_ms_per_image']['median']:.0f} ms per image (median over the validation images; CPU,
preprocessing + ONNX + post-processing, measured while other jobs shared the 2 cores).

## Reproduce
    {training['command']}

Took {training['wall_time_s'] / 60:.0f} min wall and {training['cpu_time_s'] / 60:.0f} min CPU on the
shared 2-core machine (wall time grows with whatever else runs there). Re-score an existing model and
rewrite its card metrics and this note:
`.venv/bin/python -m radassist.training.lungseg_evaluate --card models/lungseg.card.json --data /work/shared/data --update`

## Limits
{limits}
""", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True,
                        help="folder holding jsrt/, covid_cxr_seg/, covid_qu_ex_sample/ and nih14/")
    parser.add_argument("--out", type=Path, required=True, help="where lungseg.onnx/.card.json/.md are written")
    parser.add_argument("--size", type=int, default=256, help="model grid (multiple of 32)")
    parser.add_argument("--steps", type=int, default=2400,
                        help="training steps; half of the images teach only the lesion output (see "
                             "lungseg_net.augment), so the anatomy sees as many images as 1200 unmirrored steps")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--negatives-per-batch", type=int, default=4,
                        help="nih14 'No Finding' adult films added to each batch as lesion negatives")
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--validation-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=20240611, help="weights, batches and augmentation")
    parser.add_argument("--split-seed", type=int, default=20240611,
                        help="which patients go to validation (kept apart from --seed, so a second training seed "
                             "is scored on the same validation images)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads; on the shared 2-core machine 1 thread ran ~3x faster per step "
                             "than 2 (threads spin against the other jobs); use 2 on an idle machine")
    parser.add_argument("--checkpoint", type=Path, default=Path("build/lungseg_checkpoint.pt"),
                        help="training state, written every 100 steps; an existing one is resumed from")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    cases = find_cases(args.data)
    train_cases, validation_cases = split_by_patient(cases, args.validation_fraction, args.split_seed)
    log.info("%d training / %d validation images", len(train_cases), len(validation_cases))
    negative_images = find_lesion_negatives(args.data)
    log.info("%d lesion negatives (nih14 adult 'No Finding', patients without a box)", len(negative_images))
    train_arrays = load_arrays(train_cases, args.size)
    validation_arrays = load_arrays(validation_cases, args.size)
    net = train(*train_arrays, load_negative_inputs(negative_images, args.size), validation_arrays, args.steps,
                args.batch_size, args.negatives_per_batch, args.learning_rate, args.seed, args.checkpoint)

    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / "lungseg.onnx"
    max_diff = export_onnx(net, onnx_path, validation_arrays[0])
    log.info("ONNX written (%d bytes); max |onnx - torch| = %.2e", onnx_path.stat().st_size, max_diff)
    training = {
        "data": [{"name": source, "licence": licence} for source, licence in LICENCES.items()],
        "n_train": len(train_cases),
        "n_lesion_negatives": len(negative_images),
        "negatives_per_batch": args.negatives_per_batch,
        "split": f"by patient, {args.validation_fraction:.0%} of each source's patients to validation",
        "validation_images": [case.name for case in validation_cases],
        "architecture": {"name": "LungUNet", "channels": list(net.channels)},
        "parameters": sum(p.numel() for p in net.parameters()),
        "steps": args.steps, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
        "optimiser": "AdamW, one-cycle schedule, cross-entropy + soft Dice of lungs and heart (where the "
                     "heart is not known the background target is 'background or heart') + binary "
                     "cross-entropy + soft Dice of the lesion output",
        "lesion_targets": "covid_cxr_seg consolidation + ground-glass masks, covid_qu_ex_sample infection "
                          "masks, jsrt nodule discs (recorded centre and diameter); other images, and nih14 "
                          "adult 'No Finding' films of patients without an NIH box (lesion output only): "
                          "no lesion",
        "augmentation": ("half of the images mirrored left-right for the lesion output only (the anatomy "
                         "loss skips them); gamma, contrast, blur, noise, rotation +-10 deg, zoom 0.8-1.2, "
                         "aspect, shift"),
        "seed": args.seed, "split_seed": args.split_seed, "threads": args.threads,
        "command": COMMAND,
        "torch": torch.__version__, "python": platform.python_version(),
    }
    export = {"format": "onnx", "opset": 17, "size_bytes": onnx_path.stat().st_size,
              "onnx_vs_torch_max_abs_diff": max_diff}
    card_path = args.out / "lungseg.card.json"
    card = card_for(onnx_path, args.size, training, export)
    card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")  # evaluation loads it
    card["metrics"] = evaluate(card_path, validation_cases, args.seed)
    training["wall_time_s"] = round(time.perf_counter() - started)
    training["cpu_time_s"] = round(time.process_time())  # unlike wall time, not inflated by other jobs
    card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    write_model_note(args.out / "lungseg.md", card)
    log.info("validation Dice lungs %.4f (95%% CI %s), n=%d; heart %.4f (95%% CI %s), n=%d; wall time %d s",
             card["metrics"]["dice"], card["metrics"]["dice_ci95"], card["metrics"]["n_val"],
             card["metrics"]["heart_dice"], card["metrics"]["heart_dice_ci95"], card["metrics"]["n_val_heart"],
             training["wall_time_s"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``fetalhc train``: the training loop, with checkpoints, resume and a log file.

Recipe defaults (see MODEL_CARD.md): pixel-wise binary cross-entropy (every pixel weighted
equally, as in the patent), AdamW with linear warm-up and the patent's poly decay,
bf16 autocast + channels_last on CPUs that support it.
"""

from __future__ import annotations

import json
import logging
import math
import random
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from fetalhc.crops import DEFAULT_Q
from fetalhc.hc18 import load_split, read_cases
from fetalhc.io_utils import display_path
from fetalhc.train.dataset import build_augment, load_samples, make_pair, random_box, zoom_training_box
from fetalhc.train.from_onnx import freeze_batchnorm, load_onnx_weights
from fetalhc.train.network import build_model

log = logging.getLogger("fetalhc.train")


@dataclass
class TrainConfig:
    data_dir: str
    split_file: str
    out_dir: str
    arch: str = "deeplabv3plus-effl0"
    pretrained: bool = True
    epochs: int = 30
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"  # or "sgd" (momentum 0.9, the patent's)
    loss: str = "ce"  # "ce" (patent), "ce+dice" or "ce+outline" (see train_loss)
    warmup_epochs: float = 1.0
    poly_power: float = 0.9
    input_hw: tuple[int, int] = (256, 384)
    q: float = DEFAULT_Q  # the patent's crop scale
    p_full: float = 0.2  # share of whole-image samples
    p_zoom: float = 0.0  # share of zoom-pass samples (head box + margin, see dataset.zoom_training_box)
    seed: int = 0
    threads: int = 2
    bf16: bool | None = None  # None: use it where the CPU has native bf16
    max_minutes: float | None = None
    device: str = "auto"  # "cpu", "cuda" or "auto"
    init_from: str | None = None  # an fp32 .onnx export to fine-tune (train.from_onnx) or a .pt checkpoint
    freeze_bn: bool | None = None  # None: frozen when fine-tuning from an ONNX model
    extra: dict[str, str] = field(default_factory=dict)


def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logits)
    inter = (p * target).sum(dim=(1, 2, 3))
    return (1 - (2 * inter + 1) / (p.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3)) + 1)).mean()


LOSSES = ("ce", "ce+dice", "ce+outline")


def outline_weights(target: torch.Tensor, radius: int = 3, gain: float = 4.0) -> torch.Tensor:
    """Per-pixel loss weights 1 + gain on a band of ``radius`` network pixels around the outline.

    The band is the soft morphological gradient of the (soft) reference mask: its max over a
    (2 * radius + 1)^2 window minus its min, so 1 within ``radius`` px of the edge, 0 far from it,
    in between where the reference itself is fractional.
    """
    k = 2 * radius + 1
    dil = F.max_pool2d(target, k, stride=1, padding=radius)
    ero = -F.max_pool2d(-target, k, stride=1, padding=radius)
    return 1.0 + gain * (dil - ero)


def train_loss(logits: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """The training loss: "ce" pixel-wise binary cross-entropy, every pixel alike (the patent's);
    "ce+dice" adds soft Dice; "ce+outline" weights the cross-entropy by :func:`outline_weights`
    (normalised to a mean weight of 1), so pixels near the skull outline count five times more."""
    if kind == "ce":
        return F.binary_cross_entropy_with_logits(logits, target)
    if kind == "ce+dice":
        return F.binary_cross_entropy_with_logits(logits, target) + soft_dice_loss(logits, target)
    if kind == "ce+outline":
        w = outline_weights(target)
        per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        return (w * per_pixel).sum() / w.sum()
    raise ValueError(f"loss must be one of {LOSSES}, got {kind!r}")


def dice_score(pred: np.ndarray, ref: np.ndarray) -> float:
    s = pred.sum() + ref.sum()
    return 1.0 if s == 0 else float(2 * np.logical_and(pred, ref).sum() / s)


def resolve_device(name: str) -> torch.device:
    """"cpu", "cuda" (or "cuda:N"), or "auto" (CUDA where torch sees a GPU, else the CPU)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA GPU (is the CPU build of torch installed?)")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu, cuda or auto, got {name!r}")
    return dev


def _start_log(out: Path) -> None:
    for old in [h for h in log.handlers if isinstance(h, logging.FileHandler)]:
        log.removeHandler(old)  # a previous run's log file in this process
        old.close()
    handler = logging.FileHandler(out / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW, or the patent's SGD (momentum 0.9)."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {cfg.optimizer!r}")


def lr_schedule(cfg: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """Learning rate at a step: linear warm-up, then the patent's poly decay to zero."""
    total = steps_per_epoch * cfg.epochs
    warm = int(cfg.warmup_epochs * steps_per_epoch)

    def lr_at(step: int) -> float:
        if step < warm:
            return cfg.lr * (step + 1) / warm
        return cfg.lr * (1 - (step - warm) / max(1, total - warm)) ** cfg.poly_power

    return lr_at


def make_batch(samples: list, idx: list[int], rng: random.Random, cfg: TrainConfig, augment: object,  # type: ignore[type-arg]
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """One augmented batch of crops (channels-last images, soft masks) on ``device``."""
    xs, ys = [], []
    for i in idx:
        s = samples[i]
        h, w = s.image.shape
        if rng.random() < cfg.p_zoom:
            box = zoom_training_box(s.mask, cfg.input_hw, rng)
        else:
            box = random_box(w, h, rng, cfg.q, cfg.p_full / max(1e-9, 1.0 - cfg.p_zoom))
        x, y = make_pair(s, box, cfg.input_hw, augment)
        xs.append(x)
        ys.append(y)
    xb = torch.from_numpy(np.stack(xs))[:, None].to(device).contiguous(memory_format=torch.channels_last)
    return xb, torch.from_numpy(np.stack(ys))[:, None].to(device)


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, xb: torch.Tensor, yb: torch.Tensor,
               cfg: TrainConfig, use_bf16: bool) -> float:
    """One optimiser step; returns the loss (:func:`train_loss` of ``cfg.loss``)."""
    with torch.autocast(xb.device.type, dtype=torch.bfloat16, enabled=use_bf16):
        logits = model(xb)
    loss = train_loss(logits.float(), yb, cfg.loss)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def save_checkpoint(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, epoch: int, step: int,
                    cfg: TrainConfig) -> None:
    """Write ``path`` atomically (a killed run keeps its previous checkpoint)."""
    tmp = path.with_suffix(".pt.tmp")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch, "step": step,
                "config": asdict(cfg)}, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer) -> tuple[int, int]:
    """Restore model and optimiser from ``path``; returns (epochs done, steps done), (0, 0) if absent."""
    if not path.exists():
        return 0, 0
    state = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    log.info("resumed from %s at epoch %d", path, state["epoch"])
    return int(state["epoch"]), int(state["step"])


CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")


def load_matching_weights(model: torch.nn.Module, path: Path,
                          state: dict[str, Any] | None = None) -> tuple[list[str], list[str]]:
    """Copy from the training checkpoint ``path`` (``state``: its content, if already loaded)
    every tensor whose name and shape ``model`` shares (e.g. the encoder, ASPP and skip of a trained
    run into a network with another decoder; tensors of a changed part that happen to keep their
    name and shape, such as the separable decoder's last 1x1 convolution, are copied too and train
    on from there).

    Returns (names copied, names of ``model`` left as they were). Raises ``ValueError`` when no
    weight matches (BatchNorm's step counters do not count): a different network, not a warm start."""
    if state is None:
        state = torch.load(path, map_location="cpu", weights_only=False)
    source = state.get("model", state)
    own = model.state_dict()
    take = {k: v for k, v in source.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    if not [k for k in take if not k.endswith("num_batches_tracked")]:
        raise ValueError(f"{path}: no tensor matches the network's names and shapes")
    model.load_state_dict(take, strict=False)
    return sorted(take), sorted(k for k in own if k not in take)


def checkpoint_froze_batchnorm(state: dict[str, Any]) -> bool:
    """Whether the run that wrote the checkpoint ``state`` kept BatchNorm frozen (it started from an
    ONNX export, whose folded BatchNorm must stay as it is)."""
    cfg = state.get("config") or {}
    return bool(cfg.get("freeze_bn")) or str(cfg.get("init_from") or "").endswith(".onnx")


def train(cfg: TrainConfig) -> Path:
    """Train; resume from ``out_dir/last.pt`` if it exists. Returns the final checkpoint path."""
    if cfg.loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {cfg.loss!r}")
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _start_log(out)
    torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    use_bf16 = (cpu_has_bf16() if device.type == "cpu" else torch.cuda.is_bf16_supported()) if cfg.bf16 is None \
        else cfg.bf16

    data_dir = Path(cfg.data_dir)
    split = load_split(Path(cfg.split_file))
    cases = {c.filename: c for c in read_cases(data_dir)}
    t0 = time.time()
    train_s = load_samples(data_dir, [cases[f] for f in split["train"]])
    val_s = load_samples(data_dir, [cases[f] for f in split["val"]])
    log.info("loaded %d train / %d val cases in %.0f s; device %s", len(train_s), len(val_s), time.time() - t0,
             device)

    from_checkpoint = bool(cfg.init_from) and Path(str(cfg.init_from)).suffix in CHECKPOINT_SUFFIXES
    # ImageNet weights are skipped when starting from an ONNX model; a checkpoint copies over them
    use_imagenet = cfg.pretrained and (not cfg.init_from or from_checkpoint)
    model = build_model(cfg.arch, pretrained=use_imagenet)
    source_state: dict[str, Any] = {}
    if from_checkpoint:
        source_state = torch.load(str(cfg.init_from), map_location="cpu", weights_only=False)
        copied, fresh = load_matching_weights(model, Path(str(cfg.init_from)), source_state)
        log.info("initialised %d tensors from %s; %d start fresh (in %s)", len(copied), display_path(cfg.init_from),
                 len(fresh), ", ".join(sorted({k.split(".")[0] for k in fresh})) or "none")
    elif cfg.init_from:
        diff = load_onnx_weights(model, Path(cfg.init_from), cfg.input_hw)
        log.info("initialised from %s (max |logit diff| vs ONNX Runtime %.2g)", display_path(cfg.init_from), diff)
    # an ONNX export has its batch norms folded into the convolutions: keep them frozen (also when
    # starting from the checkpoint of a run that began so)
    if cfg.freeze_bn is not None:
        freeze_bn = cfg.freeze_bn
    elif from_checkpoint:
        freeze_bn = checkpoint_froze_batchnorm(source_state)
    else:
        freeze_bn = bool(cfg.init_from)
    model = model.to(device).to(memory_format=torch.channels_last)
    opt = make_optimizer(model, cfg)
    steps_per_epoch = len(train_s) // cfg.batch_size
    lr_at = lr_schedule(cfg, steps_per_epoch)
    ckpt = out / "last.pt"
    start_epoch, step = load_checkpoint(ckpt, model, opt)
    # record paths relative to the working directory (the repo root) so logs carry no local paths
    paths = ("data_dir", "split_file", "out_dir", "init_from")
    record = {k: display_path(v) if k in paths and v else v for k, v in asdict(cfg).items()}
    # what was used, not what was asked: ImageNet weights are skipped when starting from a model
    record.update(pretrained=bool(use_imagenet), freeze_bn=freeze_bn)
    (out / "config.json").write_text(json.dumps(record, indent=2))
    augment = build_augment()
    rng = random.Random(cfg.seed + start_epoch)
    t_start = time.time()
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        disable=not sys.stderr.isatty())
    task = progress.add_task("training", total=steps_per_epoch * cfg.epochs, completed=step)
    with progress:
        for epoch in range(start_epoch, cfg.epochs):
            model.train()
            if freeze_bn:
                freeze_batchnorm(model)
            order = list(range(len(train_s)))
            rng.shuffle(order)
            t_ep, loss_sum = time.time(), 0.0
            for b in range(steps_per_epoch):
                xb, yb = make_batch(train_s, order[b * cfg.batch_size : (b + 1) * cfg.batch_size], rng, cfg, augment,
                                    device)
                for g in opt.param_groups:
                    g["lr"] = lr_at(step)
                loss_value = train_step(model, opt, xb, yb, cfg, use_bf16)
                step += 1
                progress.update(task, advance=1, description=f"epoch {epoch + 1}/{cfg.epochs} loss {loss_value:.3f}")
                loss_sum += loss_value
                if b % 20 == 0:
                    log.info("epoch %d step %d/%d loss %.4f lr %.2e", epoch, b, steps_per_epoch, loss_value,
                             lr_at(step))
            msg = {"epoch": epoch + 1, "loss": loss_sum / steps_per_epoch, "epoch_s": round(time.time() - t_ep, 1),
                   "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
            if (epoch + 1) % 3 == 0 or epoch + 1 == cfg.epochs:
                msg["val_dice_fullimage"] = round(validate(model, val_s, cfg.input_hw, use_bf16), 4)
                if freeze_bn:
                    freeze_batchnorm(model)
            log.info("EPOCH %s", json.dumps(msg))
            with (out / "metrics.jsonl").open("a") as f:
                f.write(json.dumps(msg) + "\n")
            save_checkpoint(ckpt, model, opt, epoch + 1, step, cfg)
            if cfg.max_minutes is not None and (time.time() - t_start) / 60 > cfg.max_minutes:
                log.info("stopping: time budget of %.0f min reached", cfg.max_minutes)
                break
    return ckpt


@torch.no_grad()
def validate(model: torch.nn.Module, samples: list, input_hw: tuple[int, int], bf16: bool) -> float:  # type: ignore[type-arg]
    """Mean Dice of single-pass whole-image predictions at network resolution."""
    from fetalhc.crops import CropBox

    model.eval()
    scores = []
    for s in samples:
        h, w = s.image.shape
        x, y = make_pair(s, CropBox("full", 0, 0, w, h), input_hw)
        device = next(model.parameters()).device
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            lg = model(torch.from_numpy(x)[None, None].to(device).contiguous(memory_format=torch.channels_last))
        scores.append(dice_score(lg.float()[0, 0].cpu().numpy() > 0, y > 0.5))
    model.train()
    return float(np.mean(scores)) if scores else math.nan

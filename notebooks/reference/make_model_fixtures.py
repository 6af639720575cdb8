#!/usr/bin/env python3
"""
Reference fixtures for geo-dino's model package (issue 3), made with Hugging Face `transformers`.

It builds small random-weight models with the real architectures:

  chmv2-vitl-like   CHMv2ForDepthEstimation on a DINOv3 ViT shaped like ViT-L/16 SAT (GELU MLP,
                    q/v bias and no k bias, 4 registers, RoPE base 100), scaled down; fp32 weights
                    written as 3 shards with an index, keys as `backbone.model.layer.N.` (newer form).
  chmv2-vit7b-like  CHMv2ForDepthEstimation on a ViT shaped like ViT-7B/16 SAT (SwiGLU, no q/k/v
                    bias), head_dim 32 (8 RoPE periods); weights stored as bfloat16.
  dinov3-lvd-like   a bare DINOv3ViTModel (the web LVD-1689M layout: `embeddings.*`, `layer.N.*`,
                    `norm.*`), stored as float16.

For each it writes `config.json` + safetensors exactly as `save_pretrained` does, and a
`reference.safetensors` with the inputs and the outputs of the HF model in float32 on the CPU
(eager attention): the normalised feature maps and cls tokens at the four output layers, the
predicted depth, and the 256-bin logits at a sample of pixels (for the uncertainty test).
Reference outputs are computed from the weights *as stored* (bf16/f16 weights are rounded first),
so the TypeScript side can read the same files and must reproduce these numbers.

`constants.safetensors` holds the mix-log bins and a RoPE sin/cos table (32x32 grid, head_dim 64)
computed by transformers' own code.

Rerun (about 20 s on 2 cores), from the repository root:

    ${GEO_DINO_TORCH_PYTHON:-python3} notebooks/reference/make_model_fixtures.py --out test/fixtures/model

Requirements: PyPI torch, transformers >= 5 (CHMv2ForDepthEstimation, DINOv3ViTBackbone),
safetensors, numpy. The outputs are deterministic for a given seed and library versions; the
versions used are recorded in `test/fixtures/model/MANIFEST.json`.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys

import numpy as np
import torch
from safetensors.torch import save_file, load_file

import transformers
from transformers import (
    CHMv2Config,
    CHMv2ForDepthEstimation,
    DINOv3ViTBackbone,
    DINOv3ViTConfig,
    DINOv3ViTModel,
)
from transformers.models.chmv2.modeling_chmv2 import CHMv2FeaturesToDepth
from transformers.models.dinov3_vit.modeling_dinov3_vit import DINOv3ViTRopePositionEmbedding

MEAN = np.array([0.420, 0.411, 0.296], dtype=np.float32)
STD = np.array([0.213, 0.156, 0.143], dtype=np.float32)


def normalise(rgb_u8: np.ndarray) -> np.ndarray:
    """uint8 [B,H,W,3] -> float32 [B,3,H,W]: x/255, then (x - mean)/std (the CHMv2 processor's math)."""
    x = rgb_u8.astype(np.float32) / np.float32(255.0)
    x = (x - MEAN) / STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)).astype(np.float32)


def smooth_image(rng: np.random.Generator, b: int, h: int, w: int) -> np.ndarray:
    """A texture with structure at several scales (not pure noise), uint8 [B,H,W,3]."""
    out = np.zeros((b, h, w, 3), dtype=np.float64)
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    for _ in range(6):
        fy, fx = rng.uniform(0.01, 0.3, size=2)
        ph = rng.uniform(0, 2 * np.pi, size=(b, 1, 1, 3))
        amp = rng.uniform(10, 40, size=(b, 1, 1, 3))
        out += amp * np.sin(fy * yy[None, :, :, None] + fx * xx[None, :, :, None] + ph)
    out += rng.normal(0, 12, size=out.shape) + 110
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


@torch.no_grad()
def randomise(model: torch.nn.Module, seed: int) -> None:
    """Replace every parameter with random values that keep activations O(1) and make every
    part of the graph matter (non-unit layer scales, non-zero biases, LN affine != identity)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        shape = tuple(p.shape)
        if name.endswith("lambda1"):
            v = torch.rand(shape, generator=g) * 0.8 + 0.2
        elif "norm" in name.split(".")[-2] and name.endswith("weight"):
            v = 1.0 + 0.2 * torch.randn(shape, generator=g)
        elif name.endswith("bias"):
            v = 0.1 * torch.randn(shape, generator=g)
        elif name.endswith(("cls_token", "register_tokens", "mask_token")):
            v = torch.randn(shape, generator=g)
        elif p.dim() >= 2:
            if "resize" in name and isinstance(_module_of(model, name), torch.nn.ConvTranspose2d):
                fan_in = shape[0]  # ConvTranspose2d weight [C_in, C_out, k, k]: each output sums C_in
            else:
                fan_in = int(np.prod(shape[1:]))
            v = torch.randn(shape, generator=g) / math.sqrt(fan_in)
        else:
            v = 0.1 * torch.randn(shape, generator=g)
        p.copy_(v)


@torch.no_grad()
def shape_bins(model: torch.nn.Module, sigma: float, gain: float, seed: int) -> None:
    """Make the 256-bin logits look like a trained model's: a peaked bump (width `sigma` bins)
    whose centre moves with one feature direction (`gain`), so heights vary over the map
    (not all near the uniform average of 33 m) and the bin distributions range from broad to
    narrow (which exercises the uncertainty output)."""
    g = torch.Generator().manual_seed(seed)
    params = dict(model.named_parameters())
    w = params["head.conv_depth.head.4.weight"]
    b = params["head.conv_depth.head.4.bias"]
    nb, hid = w.shape[0], w.shape[1]
    k = torch.arange(nb, dtype=torch.float32)
    r = torch.randn(hid, generator=g) / math.sqrt(hid)
    w.mul_(0.3)
    w.add_(gain * ((k - nb / 2) / (nb / 4))[:, None, None, None] * r[None, :, None, None])
    b.copy_(2.0 - ((k - nb / 2) / sigma) ** 2)


def _module_of(model: torch.nn.Module, param_name: str) -> torch.nn.Module:
    mod = model
    for part in param_name.split(".")[:-1]:
        mod = getattr(mod, part)
    return mod


def round_weights(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """Round fp32 parameters to `dtype` and back, so the fp32 reference uses the stored values."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(dtype).to(torch.float32))


def save_hf(model: torch.nn.Module, out_dir: str, dtype: torch.dtype, shards: int = 1, layer_prefix: str | None = None) -> None:
    """Write config.json and safetensors (sharded with an index when shards > 1)."""
    os.makedirs(out_dir, exist_ok=True)
    model.config.save_pretrained(out_dir)
    cfg_path = os.path.join(out_dir, "config.json")
    cfg = json.load(open(cfg_path))
    cfg["dtype"] = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}[dtype]
    json.dump(cfg, open(cfg_path, "w"), indent=2, sort_keys=True)
    sd = {}
    for k, v in model.state_dict().items():
        if k.endswith("inv_freq"):
            continue
        name = k
        if layer_prefix is not None:
            # in-memory names are `...model.layer.N.`; write the form the caller asks for
            name = name.replace("model.layer.", layer_prefix)
        sd[name] = v.detach().to(dtype).contiguous()
    keys = sorted(sd)
    meta = {"format": "pt"}
    if shards == 1:
        save_file(sd, os.path.join(out_dir, "model.safetensors"), metadata=meta)
        return
    weight_map = {}
    per = math.ceil(len(keys) / shards)
    total = 0
    for s in range(shards):
        part = keys[s * per : (s + 1) * per]
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        save_file({k: sd[k] for k in part}, os.path.join(out_dir, fname), metadata=meta)
        for k in part:
            weight_map[k] = fname
            total += sd[k].numel() * sd[k].element_size()
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    json.dump(index, open(os.path.join(out_dir, "model.safetensors.index.json"), "w"), indent=2)


def backbone_config(kind: str, out_indices: list[int]) -> DINOv3ViTConfig:
    common = dict(
        patch_size=16,
        num_register_tokens=4,
        layer_norm_eps=1e-5,
        rope_theta=100.0,
        out_indices=out_indices,
        reshape_hidden_states=True,
        apply_layernorm=True,
        return_class_token=True,
        image_size=64,
        key_bias=False,
        proj_bias=True,
        mlp_bias=True,
    )
    if kind == "vitl":
        return DINOv3ViTConfig(
            hidden_size=64, intermediate_size=256, num_hidden_layers=6, num_attention_heads=4,
            hidden_act="gelu", use_gated_mlp=False, query_bias=True, value_bias=True, **common,
        )
    if kind == "vit7b":
        return DINOv3ViTConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=2,
            hidden_act="silu", use_gated_mlp=True, query_bias=False, value_bias=False, **common,
        )
    raise ValueError(kind)


def chmv2(kind: str, out_indices: list[int], seed: int, sigma: float, gain: float) -> CHMv2ForDepthEstimation:
    cfg = CHMv2Config(
        backbone_config=backbone_config(kind, out_indices),
        post_process_channels=[8, 16, 32, 64],
        fusion_hidden_size=32,
        head_hidden_size=16,
        number_output_channels=256,
    )
    cfg._attn_implementation = "eager"
    m = CHMv2ForDepthEstimation(cfg).eval()
    randomise(m, seed)
    shape_bins(m, sigma, gain, seed + 100)
    return m


@torch.no_grad()
def chm_reference(model: CHMv2ForDepthEstimation, pixel_values: torch.Tensor, sample_stride: int | None) -> dict[str, torch.Tensor]:
    bb = model.backbone(pixel_values)
    out: dict[str, torch.Tensor] = {}
    for i, (f, c) in enumerate(zip(bb.feature_maps, bb.cls_tokens)):
        out[f"feat_{i}"] = f.contiguous()
        out[f"cls_{i}"] = c.contiguous()
    _, _, h, w = pixel_values.shape
    ph, pw = h // 16, w // 16
    logits = model.head(list(zip(bb.feature_maps, bb.cls_tokens)), ph, pw)
    depth = model.features_to_depth(logits).squeeze(1)
    full = model(pixel_values).predicted_depth
    assert torch.equal(full, depth), "head path differs from the full forward"
    out["predicted_depth"] = depth.contiguous()
    if sample_stride:
        # logits at pixels (y, x) = (s/2 + i*s, s/2 + j*s): [B, 256, H/s, W/s]
        s = sample_stride
        out["logits_sampled"] = logits[:, :, s // 2 :: s, s // 2 :: s].contiguous()
        out["logits_sample_stride"] = torch.tensor([s], dtype=torch.int32)
    return out


def write_case(path: str, rgb: np.ndarray, tensors: dict[str, torch.Tensor], pixel_values: torch.Tensor) -> None:
    d = {"rgb_uint8": torch.from_numpy(rgb.copy()), "pixel_values": pixel_values.contiguous()}
    d.update(tensors)
    save_file(d, path, metadata={"layout": "rgb_uint8 [B,H,W,3]; pixel_values [B,3,H,W]; feat_k [B,D,Hp,Wp]; cls_k [B,D]; predicted_depth [B,Hout,Wout]"})


def chm_cases(model: CHMv2ForDepthEstimation, mdir: str, cases: dict, rng: np.random.Generator) -> dict:
    """Run each case (batch, height, width, logit sample stride) and write its reference file."""
    summary = {}
    for case, (b, h, w, stride) in cases.items():
        rgb = smooth_image(rng, b, h, w)
        pv = torch.from_numpy(normalise(rgb))
        ref = chm_reference(model, pv, stride)
        write_case(os.path.join(mdir, f"reference-{case}.safetensors"), rgb, ref, pv)
        d = ref["predicted_depth"]
        summary[case] = {"batch": b, "height": h, "width": w, "depth_shape": list(d.shape),
                         "depth_m": {"min": round(d.min().item(), 3), "max": round(d.max().item(), 3), "std": round(d.std().item(), 3)}}
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="test/fixtures/model")
    ap.add_argument("--seed", type=int, default=20260315)
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    out = args.out
    if os.path.isdir(out):
        for name in os.listdir(out):
            p = os.path.join(out, name)
            if os.path.isdir(p):
                shutil.rmtree(p)
            elif name.endswith((".safetensors", ".json")):
                os.remove(p)
    os.makedirs(out, exist_ok=True)
    manifest: dict = {
        "made_by": "notebooks/reference/make_model_fixtures.py",
        "seed": args.seed,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "numpy": np.__version__, "python": sys.version.split()[0]},
        "models": {},
    }

    # ---- constants computed by transformers' own code ----
    f2d = CHMv2FeaturesToDepth(CHMv2Config())
    bins = f2d._create_mixlog_bins(256, torch.device("cpu"))
    rope_cfg = DINOv3ViTConfig(hidden_size=1024, num_attention_heads=16, patch_size=16, image_size=512)
    # eval(): in training mode the module applies random coordinate augmentation.
    rope = DINOv3ViTRopePositionEmbedding(rope_cfg).eval()
    cos, sin = rope(torch.zeros(1, 3, 512, 512))
    rope7 = DINOv3ViTRopePositionEmbedding(DINOv3ViTConfig(hidden_size=4096, num_attention_heads=32, patch_size=16)).eval()
    cos7, sin7 = rope7(torch.zeros(1, 3, 96, 160))
    save_file(
        {"bins": bins.contiguous(), "rope_cos_32x32_d64": cos.contiguous(), "rope_sin_32x32_d64": sin.contiguous(),
         "rope_cos_6x10_d128": cos7.contiguous(), "rope_sin_6x10_d128": sin7.contiguous()},
        os.path.join(out, "constants.safetensors"),
    )

    # ---- CHMv2 on a ViT-L-like backbone ----
    name = "chmv2-vitl-like"
    m = chmv2("vitl", [2, 4, 5, 6], args.seed + 1, sigma=40, gain=6)
    mdir = os.path.join(out, name)
    save_hf(m, mdir, torch.float32, shards=3, layer_prefix="model.layer.")
    # re-load from disk to be sure the reference runs on what was written
    m2 = CHMv2ForDepthEstimation.from_pretrained(mdir, attn_implementation="eager").eval()
    cases = {
        "square": (2, 128, 128, 8),      # even 8x8 grid, batch 2, logits sampled every 8 px
        "nonsquare": (1, 96, 160, None),  # even 6x10 grid
        "odd": (1, 80, 80, None),         # odd 5x5 grid: output 96x96 (spec 4.5)
        "odd-nonsquare": (1, 80, 112, None),  # 5x7 grid: output 96x128
    }
    manifest["models"][name] = {"dtype": "float32", "shards": 3, "cases": chm_cases(m2, mdir, cases, rng)}

    # ---- CHMv2 on a ViT-7B-like backbone, bf16 weights on disk ----
    name = "chmv2-vit7b-like"
    m = chmv2("vit7b", [1, 2, 3, 4], args.seed + 2, sigma=12, gain=6)
    round_weights(m, torch.bfloat16)
    mdir = os.path.join(out, name)
    save_hf(m, mdir, torch.bfloat16, shards=1, layer_prefix="layer.")
    m2 = CHMv2ForDepthEstimation.from_pretrained(mdir, attn_implementation="eager", dtype=torch.float32).eval()
    cases = {"square": (1, 64, 64, 4), "odd-nonsquare": (1, 48, 80, None)}
    manifest["models"][name] = {"dtype": "bfloat16", "shards": 1, "cases": chm_cases(m2, mdir, cases, rng)}

    # ---- a bare DINOv3ViTModel (web LVD layout), f16 weights on disk ----
    name = "dinov3-lvd-like"
    cfg = DINOv3ViTConfig(
        hidden_size=48, intermediate_size=192, num_hidden_layers=4, num_attention_heads=3, hidden_act="gelu",
        num_register_tokens=4, layer_norm_eps=1e-5, key_bias=False, query_bias=True, value_bias=True, image_size=224,
    )
    cfg._attn_implementation = "eager"
    bare = DINOv3ViTModel(cfg).eval()
    randomise(bare, args.seed + 3)
    round_weights(bare, torch.float16)
    mdir = os.path.join(out, name)
    save_hf(bare, mdir, torch.float16, shards=1, layer_prefix="layer.")
    # Reference through DINOv3ViTBackbone with the same weights (the layers geo-dino picks by
    # default for a bare backbone: four even intervals, HF stages [1, 2, 3, 4] for 4 layers).
    base = {k: v for k, v in cfg.to_dict().items() if k not in ("out_features", "out_indices", "stage_names")}
    bcfg = DINOv3ViTConfig(**{**base, "out_indices": [1, 2, 3, 4], "return_class_token": True, "apply_layernorm": True, "reshape_hidden_states": True})
    bcfg._attn_implementation = "eager"
    bb = DINOv3ViTBackbone(bcfg).eval()
    missing, unexpected = bb.load_state_dict(bare.state_dict(), strict=False)
    assert not unexpected and all(k.endswith("inv_freq") for k in missing), (missing, unexpected)
    manifest["models"][name] = {"dtype": "float16", "shards": 1, "out_indices": [1, 2, 3, 4], "cases": {}}
    for case, (b, h, w) in {"nonsquare": (2, 64, 96)}.items():
        rgb = smooth_image(rng, b, h, w)
        pv = torch.from_numpy(normalise(rgb))
        with torch.no_grad():
            o = bb(pv)
            full = bare(pv)
        ref = {f"feat_{i}": f.contiguous() for i, f in enumerate(o.feature_maps)}
        ref.update({f"cls_{i}": c.contiguous() for i, c in enumerate(o.cls_tokens)})
        ref["last_hidden_state"] = full.last_hidden_state.contiguous()
        write_case(os.path.join(mdir, f"reference-{case}.safetensors"), rgb, ref, pv)
        manifest["models"][name]["cases"][case] = {"batch": b, "height": h, "width": w}

    total = 0
    for root, _, files in os.walk(out):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    manifest["total_bytes"] = total
    json.dump(manifest, open(os.path.join(out, "MANIFEST.json"), "w"), indent=2)
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()

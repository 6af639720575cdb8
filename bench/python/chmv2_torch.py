#!/usr/bin/env python3
"""
PyTorch reference for `npm run bench -- model`: transformers' CHMv2ForDepthEstimation on the CPU
in float32 (or bfloat16 autocast), a fixed number of threads.

It runs as a small server so the benchmark can interleave PyTorch and geo-dino tile by tile (the
load on a shared machine then affects both alike): it loads the model, prints `{"ready": ...}`,
then for each stdin line `{"tile": i, "bf16": false}` runs tile i of the raw float32 file
[N, 3, S, S], writes the heights to `<out-dir>/torch-<fp32|bf16>-<i>.f32` (float32 [S, S]) and
prints `{"seconds": wall, "cpu_seconds": process CPU time}`. The first run of each precision is a warm-up the caller discards.

Usage: python chmv2_torch.py --model <hf-dir> --tiles <f32 file> --n N --size S --threads T --out-dir <dir>
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from transformers import CHMv2ForDepthEstimation


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--tiles", required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--attn", default="sdpa")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    t0 = time.perf_counter()
    model = CHMv2ForDepthEstimation.from_pretrained(args.model, attn_implementation=args.attn, dtype=torch.float32).eval()
    load_s = time.perf_counter() - t0
    x = np.fromfile(args.tiles, dtype=np.float32).reshape(args.n, 3, args.size, args.size)
    print(json.dumps({"ready": True, "load_s": load_s, "torch": torch.__version__, "threads": torch.get_num_threads(), "attn": args.attn}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        i = int(req["tile"])
        bf16 = bool(req.get("bf16", False))
        t = torch.from_numpy(x[i : i + 1].copy())
        t1 = time.perf_counter()
        c1 = time.process_time()
        with torch.inference_mode():
            if bf16:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    d = model(t).predicted_depth.float()
            else:
                d = model(t).predicted_depth
        seconds = time.perf_counter() - t1
        cpu_seconds = time.process_time() - c1
        out = os.path.join(args.out_dir, f"torch-{'bf16' if bf16 else 'fp32'}-{i}.f32")
        d.numpy().astype(np.float32).tofile(out)
        print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "out": out}), flush=True)


if __name__ == "__main__":
    main()

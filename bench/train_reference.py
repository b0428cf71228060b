#!/usr/bin/env python3
"""PyTorch reference for `brainscope bench train`: the paper's Voxel2StableDiffusionModel
(identical structure) trained on random data with fused AdamW, timed per step.

Run with THP_MEM_ALLOC_ENABLE=1 (transparent huge pages for PyTorch's CPU allocator), as the
benchmark does. Prints one JSON object on stdout:
  {"s_per_step", "optim_s", "fwd_bwd_s", "samples_per_s", "peak_rss_mb", "threads", "torch",
   "gemm_gflops"}
(medians over the timed steps; the first `--warmup` steps are not timed; gemm_gflops: best of 3
f32 `--gemm`^3 matrix products after the steps, null with --gemm 0). `--device cuda` runs it on
the GPU (scripts/gpu-check.sh), synchronising before each clock reading.
"""

import argparse
import json
import statistics
import time

import torch
from torch import nn
import torch.nn.functional as F


class Voxel2StableDiffusionModel(nn.Module):
    def __init__(self, v, h=2048, n_blocks=4, upsampler=True):
        super().__init__()
        self.lin0 = nn.Sequential(nn.Linear(v, h, bias=False), nn.LayerNorm(h), nn.SiLU(inplace=True), nn.Dropout(0.5))
        self.mlp = nn.ModuleList(
            [nn.Sequential(nn.Linear(h, h, bias=False), nn.LayerNorm(h), nn.SiLU(inplace=True), nn.Dropout(0.3)) for _ in range(n_blocks)]
        )
        self.lin1 = nn.Linear(h, 16384, bias=False)
        self.norm = nn.GroupNorm(1, 64)
        for m in [self.lin0[0], self.lin1] + [b[0] for b in self.mlp]:
            torch.nn.init.xavier_uniform_(m.weight)
        self.upsampler = None
        if upsampler:
            from diffusers.models.autoencoders.vae import Decoder

            self.upsampler = Decoder(
                in_channels=64,
                out_channels=4,
                up_block_types=["UpDecoderBlock2D"] * 3,
                block_out_channels=[64, 128, 256],
                layers_per_block=1,
            )

    def forward(self, x):
        x = self.lin0(x)
        residual = x
        for res_block in self.mlp:
            x = res_block(x)
            x = x + residual
            residual = x
        x = self.lin1(x.reshape(len(x), -1))
        x = self.norm(x.reshape(x.shape[0], -1, 16, 16).contiguous())
        return self.upsampler(x) if self.upsampler is not None else x


def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--voxels", type=int, default=39548)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--mlp-only", action="store_true", help="no upsampler (the MLP and projection only)")
    ap.add_argument("--gemm", type=int, default=2048, help="size of the timed GEMM (0: none)")
    ap.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    a = ap.parse_args()
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    torch.manual_seed(0)
    model = Voxel2StableDiffusionModel(a.voxels, upsampler=not a.mlp_only).to(dev)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 1e-2}, {"params": no_decay, "weight_decay": 0.0}], lr=5e-4, fused=True
    )
    x = torch.randn(a.batch, a.voxels).to(dev)
    with torch.no_grad():
        y = torch.randn_like(model(x))

    step_t, opt_t, fb_t = [], [], []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.l1_loss(model(x), y)
        loss.backward()
        sync()
        t1 = time.perf_counter()
        opt.step()
        sync()
        t2 = time.perf_counter()
        if i >= a.warmup:
            step_t.append(t2 - t0)
            opt_t.append(t2 - t1)
            fb_t.append(t1 - t0)
    s = statistics.median(step_t)
    gemm_gflops = None
    if a.gemm:
        m1, m2 = torch.randn(a.gemm, a.gemm).to(dev), torch.randn(a.gemm, a.gemm).to(dev)
        m1 @ m2
        sync()
        best = min(timed(lambda: (m1 @ m2, sync())) for _ in range(3))
        gemm_gflops = 2 * a.gemm**3 / best / 1e9
    print(
        json.dumps(
            dict(
                s_per_step=s,
                optim_s=statistics.median(opt_t),
                fwd_bwd_s=statistics.median(fb_t),
                samples_per_s=a.batch / s,
                peak_rss_mb=peak_rss_mb(),
                threads=torch.get_num_threads(),
                torch=torch.__version__,
                n_params=sum(p.numel() for p in model.parameters()),
                gemm_gflops=gemm_gflops,
            )
        )
    )


if __name__ == "__main__":
    main()

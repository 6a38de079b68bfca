#!/usr/bin/env python3
"""Time full PyTorch training steps of the study's networks, for comparison
with `ctgrad bench step`.

Run with Debian's python (torch from python3-torch, torchvision from
python3-torchvision):

    /usr/bin/python3 bench/compare_pytorch.py --net dense20 --net cnn1 \
        --net cnn2 --net resnet18 --batch 9 --size 512 --threads 2 \
        --steps 5 --warmup 2

One step = zero_grad, forward, BCEWithLogitsLoss(mean) against random 0/1
labels, backward, optimizer.step (Adam by default, or SGD; lr 5e-3,
weight_decay 1e-4), in train mode on random inputs [B, 1, S, S].  The input
batch and labels are created once, on the device, before timing.  After
`--warmup` untimed steps, each of `--steps` steps is timed with
time.perf_counter (with torch.cuda.synchronize() before each clock read on
cuda) and the median is reported.  Per net it prints exactly:

    net: NAME
    ms_per_step: X
    images_per_s: Y

(the same keys `ctgrad bench step` prints), after one header line with the
torch version, thread count and settings.
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pytorch_nets  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Time PyTorch training steps (forward+backward+optimizer) "
                    "of the study's networks.")
    p.add_argument("--net", action="append", choices=pytorch_nets.NAMES,
                   help="network to time; repeat for several (default: all)")
    p.add_argument("--batch", type=int, default=9, help="batch size (default 9)")
    p.add_argument("--size", type=int, default=512, help="image side S (default 512)")
    p.add_argument("--threads", type=int, default=2,
                   help="torch.set_num_threads value (default 2)")
    p.add_argument("--steps", type=int, default=5, help="timed steps (default 5)")
    p.add_argument("--warmup", type=int, default=2, help="untimed warm-up steps (default 2)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    p.add_argument("--lr", type=float, default=5e-3, help="learning rate (default 5e-3)")
    p.add_argument("--weight-decay", type=float, default=1e-4,
                   help="weight decay (default 1e-4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tf32", choices=("on", "off"), default="off",
                   help="let cuDNN convolutions and cuBLAS matmuls use TF32 tensor cores "
                        "(torch.backends.cudnn.allow_tf32 / torch.backends.cuda.matmul.allow_tf32; "
                        "PyTorch's defaults are cudnn on, matmul off); default off: full FP32")
    a = p.parse_args(argv)
    if not a.net:
        a.net = list(pytorch_nets.NAMES)
    if a.steps < 1:
        p.error("--steps must be >= 1")
    if a.warmup < 0:
        p.error("--warmup must be >= 0")
    if a.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda requested but torch.cuda.is_available() is False")
    return a


def time_net(name, a, device):
    torch.manual_seed(a.seed)
    model = pytorch_nets.build(name, a.size).to(device)
    model.train()
    if a.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss(reduction="mean")
    x = torch.randn(a.batch, 1, a.size, a.size, device=device)
    y = torch.randint(0, 2, (a.batch, 1), device=device).float()
    cuda = device.type == "cuda"

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(a.warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
    times = []
    for _ in range(a.steps):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000.0


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    torch.backends.cudnn.allow_tf32 = a.tf32 == "on"
    torch.backends.cuda.matmul.allow_tf32 = a.tf32 == "on"
    where = torch.cuda.get_device_name(0) if a.device == "cuda" else "cpu"
    print("# torch %s threads %d device %s (%s) batch %d size %d optimizer %s steps %d warmup %d tf32 %s"
          % (torch.__version__, torch.get_num_threads(), a.device, where, a.batch, a.size,
             a.optimizer, a.steps, a.warmup, a.tf32), flush=True)
    for name in a.net:
        ms = time_net(name, a, device)
        print("net: %s" % name)
        print("ms_per_step: %.3f" % ms)
        print("images_per_s: %.3f" % (a.batch * 1000.0 / ms), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""The plain-PyTorch peer of bench/worker_train_bench.cc.

Builds the U-Net of DESIGN.md ("The U-Net family") from an architecture's JSON with the same
layers, parameter names and op schedule as worker/unet.cc (activations in place, dead tensors
released at once), trains it exactly as worker::Trainer::Step does (learning rate of the cosine
schedule set on every parameter group, zero_grad that zeroes, forward, mean L1 loss, backward,
loss.item(), one Adam step with the defaults lr=1e-3, betas=(0.9, 0.999), eps=1e-8, no weight
decay), and times inference under torch.no_grad() in eval mode, as the median of timed forward
passes of one batch after untimed warm-up passes.

Run it with Debian's interpreter (/usr/bin/python3, which has python3-torch, the same LibTorch
1.13 the worker links).

One-shot mode prints one JSON object and exits:

    /usr/bin/python3 bench/unet_peer.py --arch examples/unet4.json --batch 8 --patch 64 \
        --steps 10 --warmup 3 --threads 2 --tile 256

Serve mode (--serve) is how the C++ benchmark interleaves its rounds with this process's: it
builds the net, prints {"ready": ...}, then reads one command per line on stdin and answers each
with one JSON line on stdout:

    train N          N timed training steps (a warm-up is a round whose reply is ignored)
    infer N W        W untimed, then N timed forward passes at --tile; their median
    check PATH       loads a torch::pickle_save'd dict from the C++ worker (its parameters by
                     name, an input, its outputs) and reports how far this net's results are
    quit             exits
"""

import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn


def parse_arch(text):
    """An architecture from a JSON file path or inline JSON, checked like search::Validate."""
    if not text.lstrip().startswith("{"):
        with open(text, encoding="utf-8") as f:
            text = f.read()
    arch = json.loads(text)
    levels = arch["levels"]
    if not 1 <= levels <= 6:
        raise ValueError(f"levels: {levels} is not in [1, 6]")
    for key, n in (("widths", levels), ("enc_blocks", levels), ("dec_blocks", levels - 1)):
        if len(arch[key]) != n:
            raise ValueError(f"{key}: expected {n} entries")
    allowed = {
        "skip": ("concat", "add"),
        "upsample": ("transposed", "bilinear", "pixelshuffle"),
        "downsample": ("strided", "maxpool"),
        "activation": ("relu", "lrelu"),
    }
    for key, names in allowed.items():
        if arch[key] not in names:
            raise ValueError(f"{key}: '{arch[key]}' is not one of {', '.join(names)}")
    return arch


def minor_faults():
    """Page faults of this process so far that needed no I/O (fresh pages the kernel zeroes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def conv(cin, cout, kernel, stride, padding):
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=True)


class UNet(nn.Module):
    """worker::UNetImpl, layer for layer and name for name (stem, l{i}_enc{b}, l{i}_down,
    l{i}_up, l{i}_dec{b}, head, registered in that order)."""

    def __init__(self, arch):
        super().__init__()
        self.levels = arch["levels"]
        self.skip = arch["skip"]
        self.upsample = arch["upsample"]
        self.downsample = arch["downsample"]
        self.lrelu = arch["activation"] == "lrelu"
        widths = arch["widths"]
        self.stem = conv(3, widths[0], 3, 1, 1)
        # Per level: lists of the modules, for the forward pass.
        self.enc, self.down, self.up, self.dec = [], [], [], []
        for i in range(self.levels):
            w = widths[i]
            p = f"l{i}_"
            enc = []
            for b in range(arch["enc_blocks"][i]):
                enc.append(self._add(p + f"enc{b}", conv(w, w, 3, 1, 1)))
            self.enc.append(enc)
            if i == self.levels - 1:
                break
            wn = widths[i + 1]
            if self.downsample == "strided":
                self.down.append(self._add(p + "down", conv(w, wn, 2, 2, 0)))
            else:
                self.down.append(self._add(p + "down", conv(w, wn, 1, 1, 0)))
            if self.upsample == "transposed":
                self.up.append(self._add(p + "up", nn.ConvTranspose2d(wn, w, 2, stride=2)))
            elif self.upsample == "bilinear":
                self.up.append(self._add(p + "up", conv(wn, w, 1, 1, 0)))
            else:
                self.up.append(self._add(p + "up", conv(wn, 4 * w, 1, 1, 0)))
            cin = 2 * w if self.skip == "concat" else w
            dec = []
            for b in range(arch["dec_blocks"][i]):
                dec.append(self._add(p + f"dec{b}", conv(cin if b == 0 else w, w, 3, 1, 1)))
            self.dec.append(dec)
        self.head = conv(widths[0], 3, 3, 1, 1)

    def _add(self, name, module):
        self.add_module(name, module)
        return module

    def _act(self, h):
        if self.lrelu:
            F.leaky_relu_(h, 0.2)
        else:
            h.relu_()

    def forward(self, x):
        L = self.levels
        skips = [None] * L
        h = self.stem(x)
        self._act(h)
        for i in range(L):
            for c in self.enc[i]:
                h = c(h)  # the old h is released by the assignment
                self._act(h)
            if i == L - 1:
                break
            skips[i] = h
            if self.downsample == "strided":
                h = self.down[i](h)
            else:
                p = F.max_pool2d(h, 2, 2)
                h = self.down[i](p)
                del p
        for i in range(L - 2, -1, -1):
            if self.upsample == "transposed":
                u = self.up[i](h)
                h = None
            elif self.upsample == "bilinear":
                b = F.interpolate(h, scale_factor=2.0, mode="bilinear", align_corners=False)
                h = None
                u = self.up[i](b)
                del b
            else:
                c = self.up[i](h)
                h = None
                u = F.pixel_shuffle(c, 2)
                del c
            if self.skip == "concat":
                h = torch.cat([u, skips[i]], 1)
                u = None
            else:
                u.add_(skips[i])
                h = u
                u = None
            skips[i] = None
            for c in self.dec[i]:
                h = c(h)
                self._act(h)
        y = self.head(h)
        h = None
        y.add_(x)
        return y


class Trainer:
    """worker::Trainer::Step with worker::TrainOptions' defaults (fp32)."""

    def __init__(self, net, steps, lr=1e-3, min_lr=1e-5):
        self.net = net
        self.steps = steps
        self.lr = lr
        self.min_lr = min_lr
        self.optimizer = torch.optim.Adam(net.parameters(), lr=lr)

    def learning_rate(self, k):
        if self.steps <= 1:
            return self.lr
        t = k / (self.steps - 1)
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1 + math.cos(math.pi * t))

    def step(self, noisy, clean, k):
        lr = self.learning_rate(k)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.net.train()
        self.optimizer.zero_grad(set_to_none=False)  # zeroes, as LibTorch 1.13's zero_grad()
        y = self.net(noisy)
        loss = F.l1_loss(y.to(torch.float32), clean)
        del y
        loss.backward()
        value = loss.item()
        del loss
        self.optimizer.step()
        return value


class Peer:
    def __init__(self, args):
        torch.manual_seed(args.seed)
        self.args = args
        self.arch = parse_arch(args.arch)
        self.net = UNet(self.arch)
        self.params = sum(p.numel() for p in self.net.parameters())
        self.trainer = Trainer(self.net, args.schedule_steps)
        self.noisy = torch.rand(args.batch, 3, args.patch, args.patch)
        self.clean = torch.rand(args.batch, 3, args.patch, args.patch)
        self.tile = torch.rand(args.tile_batch, 3, args.tile, args.tile)
        self.k = 0

    def train_round(self, steps):
        faults = minor_faults()
        cpu = time.process_time()
        start = time.perf_counter()
        for _ in range(steps):
            self.trainer.step(self.noisy, self.clean, self.k)
            self.k = (self.k + 1) % self.trainer.steps
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu
        return {"steps": steps, "seconds": seconds, "steps_per_s": steps / seconds,
                "cpu_seconds": cpu_seconds, "steps_per_cpu_s": steps / max(cpu_seconds, 1e-9),
                "faults_per_step": (minor_faults() - faults) / max(steps, 1)}

    def infer_round(self, runs, warmup):
        self.net.eval()
        times = []
        with torch.no_grad():
            for _ in range(warmup):
                self.net(self.tile)
            faults = minor_faults()
            for _ in range(runs):
                start = time.perf_counter()
                self.net(self.tile)
                times.append(time.perf_counter() - start)
        ms = statistics.median(times) * 1e3
        megapixels = self.args.tile_batch * self.args.tile * self.args.tile / 1e6
        return {"runs": len(times), "ms_per_tile": ms, "ms_per_megapixel": ms / megapixels,
                "faults_per_pass": (minor_faults() - faults) / runs}

    def check(self, path):
        """Loads the C++ worker's parameters, input and results, and reports the largest
        differences of this net's results from them."""
        data = torch.load(path)
        state = data["params"]
        mine = dict(self.net.named_parameters())
        if set(state) != set(mine):
            return {"error": "parameter names differ: C++ only "
                             f"{sorted(set(state) - set(mine))}, Python only "
                             f"{sorted(set(mine) - set(state))}"}
        for name, p in mine.items():
            if tuple(state[name].shape) != tuple(p.shape):
                return {"error": f"{name}: shape {tuple(state[name].shape)} in C++, "
                                 f"{tuple(p.shape)} here"}
        net = UNet(self.arch)
        with torch.no_grad():
            for name, p in net.named_parameters():
                p.copy_(state[name])
        net.eval()
        with torch.no_grad():
            y = net(data["x"])
        forward_diff = (y - data["y"]).abs().max().item()
        trainer = Trainer(net, int(data["schedule_steps"].item()))
        losses = [trainer.step(data["noisy"], data["clean"], k)
                  for k in range(data["losses"].numel())]
        loss_diff = max(abs(a - b) for a, b in zip(losses, data["losses"].tolist()))
        weight_diff = max((p - data["trained"][name]).abs().max().item()
                          for name, p in net.named_parameters())
        return {"forward_max_abs_diff": forward_diff, "loss_max_abs_diff": loss_diff,
                "trained_weight_max_abs_diff": weight_diff, "losses": losses}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", required=True, help="architecture JSON, a file or inline")
    parser.add_argument("--batch", type=int, default=8, help="training batch")
    parser.add_argument("--patch", type=int, default=64, help="training patch size")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per round")
    parser.add_argument("--warmup", type=int, default=3, help="untimed training steps first")
    parser.add_argument("--schedule-steps", type=int, default=1000,
                        help="length of the cosine learning-rate schedule (steps wrap)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="intra-op threads (torch.set_num_threads)")
    parser.add_argument("--tile", type=int, default=256, help="inference tile size")
    parser.add_argument("--tile-batch", type=int, default=1, help="inference batch")
    parser.add_argument("--latency-runs", type=int, default=3, help="timed passes per round")
    parser.add_argument("--latency-warmup", type=int, default=3, help="untimed passes first")
    parser.add_argument("--rounds", type=int, default=1, help="rounds (one-shot mode)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--serve", action="store_true", help="read commands on stdin")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    peer = Peer(args)
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "params": peer.params, "pid": os.getpid()}
    if not args.serve:
        peer.train_round(args.warmup)
        train = [peer.train_round(args.steps) for _ in range(args.rounds)]
        infer = [peer.infer_round(args.latency_runs, args.latency_warmup if r == 0 else 1)
                 for r in range(args.rounds)]
        info.update({
            "steps_per_s": statistics.median(r["steps_per_s"] for r in train),
            "ms_per_tile": statistics.median(r["ms_per_tile"] for r in infer),
            "ms_per_megapixel": statistics.median(r["ms_per_megapixel"] for r in infer),
            "train_rounds": train, "infer_rounds": infer,
        })
        print(json.dumps(info), flush=True)
        return 0
    print(json.dumps({"ready": info}), flush=True)
    for line in sys.stdin:
        command, _, rest = line.strip().partition(" ")
        words = rest.split()
        try:
            if command == "train":
                reply = peer.train_round(int(words[0]))
            elif command == "infer":
                reply = peer.infer_round(int(words[0]), int(words[1]))
            elif command == "check":
                reply = peer.check(rest)
            elif command == "quit":
                return 0
            else:
                reply = {"error": f"unknown command '{command}'"}
        except Exception as e:  # pylint: disable=broad-except
            reply = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(reply), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

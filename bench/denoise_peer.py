#!/usr/bin/python3
"""The peer of `peaknas-worker denoise`: a plain PyTorch tiling loop over an exported model.

  denoise_peer.py MODEL.pt IN.png OUT.png TILE OVERLAP MULTIPLE THREADS [LAYOUT]

What restoration codebases do: load the whole image (Pillow), pad it to the network's multiple
by repeating the edges, run the TorchScript model on each tile's window (the tile plus OVERLAP
pixels on each side, clipped to the image), stitch the valid centres into a whole output
tensor, and save it (Pillow, zlib level 3 as peaknas writes). The same windows as peaknas's,
so both compute the same image. Prints one JSON line: the seconds from opening the image to the
saved output, the tiles run, and the process's resident high-water mark (VmHWM). LAYOUT
`channels-last` puts the model's weights and each window in that memory format (what peaknas
does by default on the CPU); the default, `contiguous`, is what a plain loop does.
"""
import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def main():
    model_path, in_path, out_path = sys.argv[1:4]
    tile, overlap, multiple, threads = (int(v) for v in sys.argv[4:8])
    layout = {"contiguous": torch.contiguous_format, "channels-last": torch.channels_last}[
        sys.argv[8] if len(sys.argv) > 8 else "contiguous"]
    torch.set_num_threads(threads)
    model = torch.jit.load(model_path).eval().to(memory_format=layout)
    start = time.perf_counter()
    rgb = np.asarray(Image.open(in_path).convert("RGB"))
    h, w = rgb.shape[:2]
    image = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).float().div_(255)
    ph, pw = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    if (ph, pw) != (h, w):
        image = F.pad(image, (0, pw - w, 0, ph - h), mode="replicate")
    out = torch.empty_like(image)
    tiles = 0
    with torch.no_grad():
        for y0 in range(0, ph, tile):
            for x0 in range(0, pw, tile):
                y1, x1 = min(y0 + tile, ph), min(x0 + tile, pw)
                wy0, wx0 = max(0, y0 - overlap), max(0, x0 - overlap)
                wy1, wx1 = min(ph, y1 + overlap), min(pw, x1 + overlap)
                result = model(image[:, :, wy0:wy1, wx0:wx1].contiguous(memory_format=layout))
                out[:, :, y0:y1, x0:x1] = result[:, :, y0 - wy0:y1 - wy0, x0 - wx0:x1 - wx0]
                tiles += 1
    pixels = out[0, :, :h, :w].clamp_(0, 1).mul_(255).round_().to(torch.uint8)
    Image.fromarray(pixels.permute(1, 2, 0).contiguous().numpy()).save(out_path, compress_level=3)
    seconds = time.perf_counter() - start
    with open("/proc/self/status") as status:
        hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(json.dumps({"seconds": seconds, "tiles": tiles, "process_peak_bytes": hwm * 1024}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

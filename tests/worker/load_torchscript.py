#!/usr/bin/python3
"""Loads a peaknas TorchScript export in plain PyTorch and runs it on a raw input.

    load_torchscript.py MODEL INPUT OUTPUT B H W

INPUT holds B*3*H*W little-endian float32 values (a [B, 3, H, W] tensor in C order); the
model's output is written to OUTPUT in the same format. Prints one line of JSON with the
architecture attribute and the output's shape, for worker/export_test.cc to check.

Needs only torch (Debian's python3-torch, under /usr/bin/python3); peaknas is not imported.
"""
import json
import sys

import torch


def main(argv):
    if len(argv) != 7:
        sys.stderr.write(__doc__)
        return 2
    model_path, input_path, output_path = argv[1:4]
    b, h, w = (int(v) for v in argv[4:7])
    model = torch.jit.load(model_path, map_location="cpu")
    model.eval()
    with open(input_path, "rb") as f:
        data = bytearray(f.read())
    x = torch.frombuffer(data, dtype=torch.float32).reshape(b, 3, h, w)
    with torch.no_grad():
        y = model(x)
    y = y.to(torch.float32).contiguous()
    with open(output_path, "wb") as f:
        f.write(y.numpy().tobytes())
    print(json.dumps({"architecture": model.architecture, "shape": list(y.shape),
                      "parameters": sum(p.numel() for p in model.parameters())}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

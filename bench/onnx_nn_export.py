#!/usr/bin/python3
"""Exports the networks of bench/torch_nn.py (definitions in scripts/make_nn_ref.py: MobileFaceNet,
ResNet-18, embedding 128) in eval mode to ONNX, for the ONNX Runtime side of bench/run_nn.sh
(bench/onnx_nn.mjs). Random weights, seed fixed; the batch axis is dynamic; opset 13.

  onnx_nn_export.py OUT.onnx ARCH SIDE        ARCH: mobilefacenet | resnet18

Write OUT.onnx outside the repository (/tmp, $TMPDIR). Needs python3-torch and python3-onnx
(Debian); run with /usr/bin/python3.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from make_nn_ref import MobileFaceNet, ResNet  # noqa: E402


def main():
    if len(sys.argv) != 4 or sys.argv[2] not in ("mobilefacenet", "resnet18"):
        sys.stderr.write(__doc__)
        return 2
    out, arch, side = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.manual_seed(3)
    if arch == "mobilefacenet":
        model = MobileFaceNet(64, 3, side, 128)
    else:
        model = ResNet([2, 2, 2, 2], 64, 3, side, 128)
    model.eval()
    dummy = torch.randn(2, 3, side, side)
    with torch.no_grad():
        torch.onnx.export(model, (dummy,), out, input_names=["images"], output_names=["embeddings"],
                          dynamic_axes={"images": {0: "batch"}, "embeddings": {0: "batch"}},
                          opset_version=13, do_constant_folding=True)
    print("%s: %s at %d px, %.1f MB" % (out, arch, side, os.path.getsize(out) / 1e6), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

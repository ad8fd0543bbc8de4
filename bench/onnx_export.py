#!/usr/bin/python3
"""Exports the CLIP image tower of bench/torch_clip.py (the reference model of
scripts/make_clip_ref.py: OpenAI's layout, nn.MultiheadAttention, QuickGELU) to ONNX, for the
ONNX Runtime side of bench/run_clip.sh (bench/onnx_clip.mjs). Random weights, seed fixed.

  onnx_export.py OUT.onnx [ARCH]        ARCH: clip-vit-b-32 (default) | clip-vit-b-16 | clip-tiny

Input "images" (batch, 3, S, S) float32, output "embeddings" (batch, embed); the batch axis is
dynamic. Opset 17 (LayerNormalization as one op). Write OUT.onnx outside the repository (/tmp,
$TMPDIR): it is 350 MB for clip-vit-b-32 and is not committed.

Then it checks the exported graph once: the same 3 random images (traced with 2, so the dynamic
batch axis is checked too) through PyTorch and through ONNX Runtime (node bench/onnx_clip.mjs
--eval), printing the largest absolute difference. That needs onnxruntime-node (see
bench/onnx_clip.mjs); without it the check is skipped with a note.

Set-up, Debian 12 as root (the exporter needs the onnx Python package; Debian has it):
  apt-get install -y python3-torch python3-onnx
  mkdir -p /tmp/ortnode && (cd /tmp/ortnode && npm install onnxruntime-node@1.30.0 --ignore-scripts)
  ORT_NODE_DIR=/tmp/ortnode /usr/bin/python3 bench/onnx_export.py /tmp/clip-vit-b-32.onnx clip-vit-b-32
"""
import os
import shutil
import subprocess
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scripts"))
sys.path.insert(0, HERE)
from make_clip_ref import CLIP, randomise  # noqa: E402
from torch_clip import CONFIGS  # noqa: E402

OPSET = 17


def main():
    if len(sys.argv) not in (2, 3):
        sys.stderr.write(__doc__)
        return 2
    out = sys.argv[1]
    arch = sys.argv[2] if len(sys.argv) == 3 else "clip-vit-b-32"
    vision, text, embed = CONFIGS[arch]
    torch.manual_seed(1)
    model = CLIP(vision, text, embed)
    randomise(model, torch.Generator().manual_seed(1))  # weights of a sensible scale, reproducible
    visual = model.visual.eval()
    size = vision[0]
    gen = torch.Generator().manual_seed(2)
    dummy = torch.randn(2, 3, size, size, generator=gen)
    images = torch.randn(3, 3, size, size, generator=gen)  # another batch size than the traced one
    with torch.no_grad():
        ref = visual(images)
        torch.onnx.export(visual, (dummy,), out, input_names=["images"], output_names=["embeddings"],
                          dynamic_axes={"images": {0: "batch"}, "embeddings": {0: "batch"}},
                          opset_version=OPSET, do_constant_folding=True)
    print("%s: %s image tower, opset %d, %.1f MB" % (out, arch, OPSET, os.path.getsize(out) / 1e6))
    check(out, arch, images, ref)
    return 0


def check(model_path, arch, images, ref):
    """Runs the exported model in ONNX Runtime on the same images and prints max |ort - torch|."""
    if not shutil.which("node"):
        print("numeric check skipped: no node")
        return
    with tempfile.TemporaryDirectory() as tmp:
        fin, fout = os.path.join(tmp, "in.f32"), os.path.join(tmp, "out.f32")
        images.numpy().astype("<f4").tofile(fin)
        cmd = ["node", os.path.join(HERE, "onnx_clip.mjs"), "--eval", model_path, arch, str(images.shape[0]), fin, fout]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            print("numeric check skipped: %s" % (r.stderr.strip().splitlines() or ["node failed"])[0])
            return
        got = torch.from_file(fout, size=ref.numel(), dtype=torch.float32).view_as(ref)
    diff = (got - ref).abs().max().item()
    print("onnxruntime vs torch: max abs diff %.3g (outputs up to %.3g), %s" % (
        diff, ref.abs().max().item(), "ok" if diff <= 1e-3 * max(1.0, ref.abs().max().item()) else "MISMATCH"))


if __name__ == "__main__":
    sys.exit(main())
